
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Usage as the client gets it: usage.cost (nano-USD printed as USD) set
 * in a provider's answer text, the usage chunk's cost, a stream always
 * asking the provider for usage, OpenRouter's "usage": {"include": true},
 * and the Anthropic translator's usage read once (message_start and
 * message_delta replace, never add).
 */


#include "unit.h"


cJSON *unit_ai_path(cJSON *root, const char *path);
double unit_ai_num(cJSON *root, const char *path);


static ngx_str_t
usd(uint64_t nano)
{
    ngx_str_t     s;
    ngx_ai_buf_t  b;

    (void) ngx_ai_buf_init(&b, unit_pool(), 32);
    (void) ngx_ai_buf_append_usd(&b, nano);

    s.data = b.data;
    s.len = b.len;

    return s;
}


UNIT_TEST(usage_usd_number)
{
    UNIT_EQ_STR(usd(0), "0");
    UNIT_EQ_STR(usd(123000), "0.000123");
    UNIT_EQ_STR(usd(1), "0.000000001");
    UNIT_EQ_STR(usd(2000000000), "2");
    UNIT_EQ_STR(usd(2500000000ULL), "2.5");
    UNIT_EQ_INT(ngx_ai_tokens_cost(1000, 2500000000ULL), 2500000);
}


static ngx_str_t
cost_set(const char *json, uint64_t cost, ngx_uint_t priced)
{
    ngx_str_t       s;
    ngx_ai_usage_t  u;

    ngx_memzero(&u, sizeof(ngx_ai_usage_t));
    u.cost = cost;
    u.priced = priced;
    u.known = 1;

    s.data = (u_char *) json;
    s.len = strlen(json);

    UNIT_EQ_INT(ngx_ai_usage_cost_set(unit_pool(), &s, &u), NGX_OK);

    return s;
}


UNIT_TEST(usage_cost_set_in_answer_text)
{
    ngx_str_t  s;

    /* inserted first in "usage", the rest byte for byte */

    s = cost_set("{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":"
                 "\"usage {\\\"cost\\\": 9}\"},\"usage\":{\"a\":1}}],"
                 "\"usage\": {\"prompt_tokens\":3,\"completion_tokens\":2}}",
                 123000, 1);
    UNIT_EQ_STR(s, "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":"
                   "\"usage {\\\"cost\\\": 9}\"},\"usage\":{\"a\":1}}],"
                   "\"usage\": {\"cost\":0.000123,\"prompt_tokens\":3,"
                   "\"completion_tokens\":2}}");

    /* a provider's own cost (OpenRouter) replaced by the gateway's */

    s = cost_set("{\"usage\":{\"prompt_tokens\":3,\"cost\": 0.5 ,\"x\":[1]}}",
                 7000000000ULL, 1);
    UNIT_EQ_STR(s, "{\"usage\":{\"prompt_tokens\":3,\"cost\": 7 ,"
                   "\"x\":[1]}}");

    s = cost_set("{\"usage\":{\"cost\":{\"total\":1}}}", 1, 1);
    UNIT_EQ_STR(s, "{\"usage\":{\"cost\":0.000000001}}");

    /* an empty usage object; no usage; usage not an object; no price */

    s = cost_set(" {\"usage\":{ }}", 5, 1);
    UNIT_EQ_STR(s, " {\"usage\":{\"cost\":0.000000005 }}");

    s = cost_set("{\"id\":\"usage\",\"choices\":[]}", 5, 1);
    UNIT_EQ_STR(s, "{\"id\":\"usage\",\"choices\":[]}");

    s = cost_set("{\"usage\":null}", 5, 1);
    UNIT_EQ_STR(s, "{\"usage\":null}");

    s = cost_set("{\"usage\":{\"prompt_tokens\":3}}", 5, 0);
    UNIT_EQ_STR(s, "{\"usage\":{\"prompt_tokens\":3}}");

    /* text cut short or not an object: left alone */

    s = cost_set("{\"usage\":{\"prompt_tokens\":3", 5, 1);
    UNIT_EQ_STR(s, "{\"usage\":{\"prompt_tokens\":3");

    s = cost_set("[{\"usage\":{}}]", 5, 1);
    UNIT_EQ_STR(s, "[{\"usage\":{}}]");

    s = cost_set("{\"a\":\"\\\"usage\\\":{\",\"usage\":{}}", 5, 1);
    UNIT_EQ_STR(s, "{\"a\":\"\\\"usage\\\":{\",\"usage\":{\"cost\":"
                   "0.000000005}}");
}


static ngx_int_t
parse(const char *body, ngx_ai_chat_request_t *req, ngx_ai_error_t *err)
{
    return ngx_ai_chat_request_parse(unit_pool(), (u_char *) body,
                                     strlen(body), req, err);
}


/* a stream asks for usage even when the request (a fusion judge's, built
 * by the gateway) has include_usage set and no stream_options */

UNIT_TEST(openai_stream_always_asks_for_usage)
{
    cJSON                      *j;
    ngx_ai_error_t              err;
    ngx_ai_chat_request_t       req;
    ngx_ai_upstream_request_t   up;

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"stream\":true,"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                      &req, &err), NGX_OK);

    req.include_usage = 1;
    ngx_str_null(&req.raw);

    UNIT_EQ_INT(ngx_ai_openai_translator.request(unit_pool(), &req, &up),
                NGX_OK);

    j = unit_json(&up.body);
    UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j, "stream_options.include_usage")));
}


/* OpenRouter's "usage": {"include": true}: the client's usage chunk;
 * never forwarded */

UNIT_TEST(request_openrouter_usage_include)
{
    cJSON                      *j;
    ngx_uint_t                  raw;
    ngx_ai_error_t              err;
    ngx_ai_chat_request_t       req;
    ngx_ai_upstream_request_t   up;

    static const char  body[] =
        "{\"model\":\"openai/gpt-4o\",\"stream\":true,\"usage\":"
        "{\"include\":true},\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi\"}]}";

    for (raw = 0; raw < 2; raw++) {
        UNIT_EQ_INT(parse(body, &req, &err), NGX_OK);
        UNIT_CHECK(req.include_usage);

        if (!raw) {
            ngx_str_null(&req.raw);     /* the tree's print */
        }

        UNIT_EQ_INT(ngx_ai_openai_translator.request(unit_pool(), &req,
                                                     &up),
                    NGX_OK);

        j = unit_json(&up.body);
        UNIT_CHECK(unit_ai_path(j, "usage") == NULL);
        UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j,
                                             "stream_options.include_usage")));
    }

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"usage\":{\"include\":"
                      "false},\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\"}]}", &req, &err), NGX_OK);
    UNIT_CHECK(!req.include_usage);

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"usage\":true,"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                      &req, &err), NGX_DECLINED);
    UNIT_EQ_INT(err.status, 400);

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"usage\":{\"include\":"
                      "1},\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\"}]}", &req, &err), NGX_DECLINED);
}


static ngx_int_t
feed(ngx_ai_translator_t *t, ngx_ai_stream_t *st, const char *event,
    const char *data)
{
    ngx_ai_sse_event_t  ev;

    ev.event.data = (u_char *) event;
    ev.event.len = strlen(event);
    ev.data.data = (u_char *) data;
    ev.data.len = strlen(data);

    return t->stream_event(st, &ev);
}


/* the usage chunk of an OpenAI-type stream carries the gateway's cost */

UNIT_TEST(openai_stream_usage_chunk_cost)
{
    ngx_str_t               out;
    ngx_ai_stream_t         st;
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t   req;

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"stream\":true,"
                      "\"stream_options\":{\"include_usage\":true},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                      &req, &err), NGX_OK);

    UNIT_EQ_INT(ngx_ai_stream_init(&st, unit_pool(), &req, 1), NGX_OK);
    st.price.input = 2500000000ULL;          /* $2.50 / 1M */
    st.price.output = 10000000000ULL;        /* $10 / 1M */
    st.price.known = 1;

    UNIT_EQ_INT(feed(&ngx_ai_openai_translator, &st, "",
                     "{\"id\":\"c\",\"choices\":[],\"usage\":"
                     "{\"prompt_tokens\":100,\"completion_tokens\":10,"
                     "\"total_tokens\":110,"
                     "\"cost\":99}}"), NGX_OK);

    out.data = st.out.data;
    out.len = st.out.len;

    UNIT_CONTAINS(out, "\"cost\":0.00035");
    UNIT_CHECK(memmem(out.data, out.len, "99", 2) == NULL);
    UNIT_CHECK(st.usage.priced && st.usage.cost == 350000);
}


/* Anthropic provider: message_start's output tokens are replaced by
 * message_delta's cumulative count, not added */

UNIT_TEST(anthropic_stream_usage_replaced)
{
    ngx_ai_stream_t         st;
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t   req;

    UNIT_EQ_INT(parse("{\"model\":\"claude/x\",\"stream\":true,"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
                      &req, &err), NGX_OK);
    UNIT_EQ_INT(ngx_ai_stream_init(&st, unit_pool(), &req, 1), NGX_OK);

    UNIT_EQ_INT(feed(&ngx_ai_anthropic_translator, &st, "message_start",
                     "{\"type\":\"message_start\",\"message\":{\"id\":\"m\","
                     "\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}"),
                NGX_OK);
    UNIT_EQ_INT(st.usage.prompt_tokens, 9);

    UNIT_EQ_INT(feed(&ngx_ai_anthropic_translator, &st, "message_delta",
                     "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                     "\"end_turn\"},\"usage\":{\"output_tokens\":5}}"),
                NGX_OK);
    UNIT_EQ_INT(feed(&ngx_ai_anthropic_translator, &st, "message_stop",
                     "{\"type\":\"message_stop\"}"), NGX_OK);

    UNIT_EQ_INT(st.usage.prompt_tokens, 9);
    UNIT_EQ_INT(st.usage.completion_tokens, 5);
}
