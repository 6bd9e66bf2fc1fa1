
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the Responses API inbound (ngx_ai_gateway_responses.c,
 * _responses_out.c): Responses requests to chat requests (checked by the
 * chat request parser too), refusals and their params, chat.completion
 * answers to response objects, and chunk streams to Responses events,
 * fed whole and one byte at a time.
 */


#include "unit.h"


cJSON *unit_ai_path(cJSON *root, const char *path);
const char *unit_ai_str(cJSON *root, const char *path);
double unit_ai_num(cJSON *root, const char *path);


#define unit_str_is(root, path, s)                                           \
    UNIT_CHECK(strcmp(unit_ai_str(root, path), s) == 0)


static cJSON *
convert(const char *body)
{
    ngx_str_t               out;
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t   req;

    if (ngx_ai_responses_request(unit_pool(), (u_char *) body, strlen(body),
                                 &out, &err)
        != NGX_OK)
    {
        unit_fail(__FILE__, __LINE__, "rejected: %.*s",
                  (int) err.message.len, err.message.data);
        return NULL;
    }

    if (ngx_ai_chat_request_parse(unit_pool(), out.data, out.len, &req, &err)
        != NGX_OK)
    {
        unit_fail(__FILE__, __LINE__, "chat request rejected: %.*s (%.*s)",
                  (int) err.message.len, err.message.data, (int) out.len,
                  out.data);
        return NULL;
    }

    return unit_json(&out);
}


/* the param of the 400 a body gets, or "(accepted)" */

static const char *
refused(const char *body)
{
    ngx_int_t       rc;
    ngx_str_t       out;
    ngx_ai_error_t  err;

    ngx_memzero(&err, sizeof(ngx_ai_error_t));

    rc = ngx_ai_responses_request(unit_pool(), (u_char *) body, strlen(body),
                                  &out, &err);

    if (rc == NGX_OK) {
        return "(accepted)";
    }

    if (rc != NGX_DECLINED || err.status != 400 || err.message.len == 0) {
        unit_fail(__FILE__, __LINE__, "not a 400: %s", body);
        return "(error)";
    }

    return err.param ? err.param : "(none)";
}


UNIT_TEST(responses_request_basic)
{
    cJSON  *j;

    j = convert("{\"model\":\"openai/gpt-4o\",\"input\":\"Hello\","
                "\"instructions\":\"be brief\",\"max_output_tokens\":50,"
                "\"temperature\":0.2,\"top_p\":0.9,\"store\":true,"
                "\"stream\":true,\"metadata\":{\"a\":\"b\"},"
                "\"user\":\"u1\",\"reasoning\":{\"effort\":\"high\"},"
                "\"truncation\":\"auto\",\"include\":[\"x\"]}");
    if (j == NULL) {
        return;
    }

    unit_str_is(j, "model", "openai/gpt-4o");
    unit_str_is(j, "messages.0.role", "system");
    unit_str_is(j, "messages.0.content", "be brief");
    unit_str_is(j, "messages.1.role", "user");
    unit_str_is(j, "messages.1.content", "Hello");
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages")), 2);
    UNIT_EQ_INT(unit_ai_num(j, "max_completion_tokens"), 50);
    UNIT_CHECK(unit_ai_num(j, "temperature") == 0.2);
    UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j, "stream")));
    UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j, "stream_options.include_usage")));
    unit_str_is(j, "metadata.a", "b");
    unit_str_is(j, "user", "u1");
    unit_str_is(j, "reasoning_effort", "high");

    /* nothing of the Responses API goes on */
    UNIT_CHECK(unit_ai_path(j, "input") == NULL);
    UNIT_CHECK(unit_ai_path(j, "instructions") == NULL);
    UNIT_CHECK(unit_ai_path(j, "store") == NULL);
    UNIT_CHECK(unit_ai_path(j, "truncation") == NULL);
    UNIT_CHECK(unit_ai_path(j, "include") == NULL);
    UNIT_CHECK(unit_ai_path(j, "reasoning") == NULL);
}


UNIT_TEST(responses_request_items)
{
    cJSON  *j;

    j = convert("{\"model\":\"m/x\",\"models\":[\"a/b\"],\"input\":["
                "{\"role\":\"system\",\"content\":[{\"type\":\"input_text\","
                "\"text\":\"sys\"}]},"
                "{\"type\":\"message\",\"role\":\"user\",\"content\":["
                "{\"type\":\"input_text\",\"text\":\"look\"},"
                "{\"type\":\"input_image\",\"image_url\":\"https://x/i.png\","
                "\"detail\":\"high\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":"
                "\"output_text\",\"text\":\"A\"},{\"type\":\"output_text\","
                "\"text\":\"B\"}]},"
                "{\"type\":\"function_call\",\"id\":\"fc_1\",\"call_id\":"
                "\"c1\",\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"},"
                "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":"
                "\"g\"},"
                "{\"type\":\"function_call_output\",\"call_id\":\"c1\","
                "\"output\":\"r1\"},"
                "{\"type\":\"function_call_output\",\"call_id\":\"c2\","
                "\"output\":[{\"type\":\"input_text\",\"text\":\"r2\"},"
                "{\"type\":\"input_text\",\"text\":\"r3\"}]},"
                "{\"type\":\"reasoning\",\"summary\":[]},"
                "{\"type\":\"function_call\",\"call_id\":\"c3\",\"name\":"
                "\"h\",\"arguments\":\"{}\"}]}");
    if (j == NULL) {
        return;
    }

    unit_str_is(j, "models.0", "a/b");
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages")), 6);
    unit_str_is(j, "messages.0.content.0.type", "text");
    unit_str_is(j, "messages.0.content.0.text", "sys");
    unit_str_is(j, "messages.1.content.1.type", "image_url");
    unit_str_is(j, "messages.1.content.1.image_url.url", "https://x/i.png");
    unit_str_is(j, "messages.1.content.1.image_url.detail", "high");

    /* the text of an earlier answer and its two calls: one message */
    unit_str_is(j, "messages.2.role", "assistant");
    unit_str_is(j, "messages.2.content", "AB");
    unit_str_is(j, "messages.2.tool_calls.0.id", "c1");
    unit_str_is(j, "messages.2.tool_calls.0.type", "function");
    unit_str_is(j, "messages.2.tool_calls.0.function.name", "f");
    unit_str_is(j, "messages.2.tool_calls.0.function.arguments", "{\"x\":1}");
    unit_str_is(j, "messages.2.tool_calls.1.function.arguments", "{}");
    unit_str_is(j, "messages.3.role", "tool");
    unit_str_is(j, "messages.3.tool_call_id", "c1");
    unit_str_is(j, "messages.3.content", "r1");
    unit_str_is(j, "messages.4.content", "r2\nr3");

    /* a call after a tool message opens a new assistant message */
    unit_str_is(j, "messages.5.role", "assistant");
    UNIT_CHECK(cJSON_IsNull(unit_ai_path(j, "messages.5.content")));
    unit_str_is(j, "messages.5.tool_calls.0.id", "c3");
}


UNIT_TEST(responses_request_tools_format)
{
    cJSON  *j;

    j = convert("{\"model\":\"m/x\",\"input\":\"q\",\"tools\":[{\"type\":"
                "\"function\",\"name\":\"f\",\"description\":\"d\","
                "\"parameters\":{\"type\":\"object\"},\"strict\":true}],"
                "\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},"
                "\"parallel_tool_calls\":false,"
                "\"text\":{\"format\":{\"type\":\"json_schema\",\"schema\":"
                "{\"type\":\"object\"}},\"verbosity\":\"low\"}}");
    if (j == NULL) {
        return;
    }

    unit_str_is(j, "tools.0.type", "function");
    unit_str_is(j, "tools.0.function.name", "f");
    unit_str_is(j, "tools.0.function.description", "d");
    unit_str_is(j, "tools.0.function.parameters.type", "object");
    UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j, "tools.0.function.strict")));
    unit_str_is(j, "tool_choice.type", "function");
    unit_str_is(j, "tool_choice.function.name", "f");
    UNIT_CHECK(cJSON_IsFalse(unit_ai_path(j, "parallel_tool_calls")));
    unit_str_is(j, "response_format.type", "json_schema");
    unit_str_is(j, "response_format.json_schema.name", "response");
    unit_str_is(j, "response_format.json_schema.schema.type", "object");

    j = convert("{\"model\":\"m/x\",\"input\":\"q\",\"tools\":[{\"type\":"
                "\"function\",\"name\":\"f\"}],\"tool_choice\":\"auto\","
                "\"text\":{\"format\":{\"type\":\"text\"}}}");
    if (j == NULL) {
        return;
    }

    unit_str_is(j, "tool_choice", "auto");
    UNIT_CHECK(unit_ai_path(j, "response_format") == NULL);
}


UNIT_TEST(responses_request_refused)
{
    UNIT_CHECK(strcmp(refused(""), "(none)") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":"), "(none)") == 0);
    UNIT_CHECK(strcmp(refused("[1]"), "(none)") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\"}"), "input") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":[]}"), "input")
               == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":7}"), "input")
               == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"previous_response_id\":\"resp_1\"}"),
                      "previous_response_id") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"previous_response_id\":null,"
                              "\"store\":false}"), "(accepted)") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"store\":\"yes\"}"), "store") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"conversation\":{\"id\":\"c\"}}"),
                      "conversation") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"prompt\":{\"id\":\"p\"}}"), "prompt") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":[{\"role\":"
                              "\"user\",\"content\":\"x\"},{\"type\":"
                              "\"item_reference\",\"id\":\"m\"}]}"),
                      "input[1]") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":[{\"type\":"
                              "\"computer_call\"}]}"), "input[0].type") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":[{\"role\":"
                              "\"user\",\"content\":[{\"type\":"
                              "\"input_text\",\"text\":\"a\"},{\"type\":"
                              "\"input_audio\"}]}]}"),
                      "input[0].content[1]") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":[{\"role\":"
                              "\"user\",\"content\":[{\"type\":"
                              "\"input_image\",\"file_id\":\"f\"}]}]}"),
                      "input[0].content[0]") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":[{\"type\":"
                              "\"function_call\",\"name\":\"f\"}]}"),
                      "input[0].call_id") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":[{\"type\":"
                              "\"function_call_output\",\"call_id\":\"c\","
                              "\"output\":5}]}"), "input[0].output") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"tools\":[{\"type\":\"function\",\"name\":"
                              "\"f\"},{\"type\":\"file_search\"}]}"),
                      "tools[1].type") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"tools\":[{\"type\":\"function\",\"name\":"
                              "\"f\"}],\"tool_choice\":{\"type\":"
                              "\"allowed_tools\"}}"), "tool_choice") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"max_output_tokens\":1.5}"),
                      "max_output_tokens") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"text\":{\"format\":{\"type\":"
                              "\"json_schema\"}}}"),
                      "text.format.schema") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"reasoning\":\"high\"}"), "reasoning") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"x\","
                              "\"stream\":1}"), "stream") == 0);
    UNIT_CHECK(strcmp(refused("{\"model\":\"a/b\",\"input\":\"\\u0000\"}"),
                      "(none)") == 0);
}


UNIT_TEST(responses_answer)
{
    cJSON           *j;
    ngx_str_t        out, body;
    ngx_ai_usage_t   u;

    ngx_str_set(&body, "{\"id\":\"chatcmpl-abc\",\"object\":"
                "\"chat.completion\",\"created\":1700000000,\"model\":"
                "\"openai/gpt-4o\",\"choices\":[{\"index\":0,\"message\":"
                "{\"role\":\"assistant\",\"content\":\"Hi \\\"there\\\"\","
                "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
                "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\""
                "}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{"
                "\"prompt_tokens\":10,\"completion_tokens\":4,"
                "\"total_tokens\":14}}");

    UNIT_EQ_INT(ngx_ai_responses_response(unit_pool(), body.data, body.len,
                                          NULL, &out), NGX_OK);
    j = unit_json(&out);
    if (j == NULL) {
        return;
    }

    unit_str_is(j, "id", "resp_abc");
    unit_str_is(j, "object", "response");
    unit_str_is(j, "status", "completed");
    UNIT_EQ_INT(unit_ai_num(j, "created_at"), 1700000000);
    unit_str_is(j, "model", "openai/gpt-4o");
    UNIT_CHECK(cJSON_IsNull(unit_ai_path(j, "error")));
    UNIT_CHECK(cJSON_IsNull(unit_ai_path(j, "incomplete_details")));
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "output")), 2);
    unit_str_is(j, "output.0.id", "msg_abc");
    unit_str_is(j, "output.0.type", "message");
    unit_str_is(j, "output.0.role", "assistant");
    unit_str_is(j, "output.0.content.0.type", "output_text");
    unit_str_is(j, "output.0.content.0.text", "Hi \"there\"");
    unit_str_is(j, "output.1.id", "fc_abc_1");
    unit_str_is(j, "output.1.type", "function_call");
    unit_str_is(j, "output.1.call_id", "call_1");
    unit_str_is(j, "output.1.name", "f");
    unit_str_is(j, "output.1.arguments", "{\"a\":1}");
    UNIT_EQ_INT(unit_ai_num(j, "usage.input_tokens"), 10);
    UNIT_EQ_INT(unit_ai_num(j, "usage.output_tokens"), 4);
    UNIT_EQ_INT(unit_ai_num(j, "usage.total_tokens"), 14);

    /* the exact usage the gateway knows wins, details included */

    ngx_memzero(&u, sizeof(ngx_ai_usage_t));
    u.prompt_tokens = 30;
    u.completion_tokens = 9;
    u.cached_tokens = 8;
    u.reasoning_tokens = 3;
    u.known = 1;

    UNIT_EQ_INT(ngx_ai_responses_response(unit_pool(), body.data, body.len,
                                          &u, &out), NGX_OK);
    j = unit_json(&out);
    if (j == NULL) {
        return;
    }

    UNIT_EQ_INT(unit_ai_num(j, "usage.input_tokens"), 30);
    UNIT_EQ_INT(unit_ai_num(j, "usage.input_tokens_details.cached_tokens"), 8);
    UNIT_EQ_INT(unit_ai_num(j, "usage.output_tokens"), 9);
    UNIT_EQ_INT(unit_ai_num(j,
                            "usage.output_tokens_details.reasoning_tokens"),
                3);
    UNIT_EQ_INT(unit_ai_num(j, "usage.total_tokens"), 39);

    /* cut by its length; a hostile id keeps its safe bytes only */

    ngx_str_set(&body, "{\"id\":\"x\\\"<y>\",\"choices\":[{\"message\":{"
                "\"content\":\"cut\"},\"finish_reason\":\"length\"}]}");

    UNIT_EQ_INT(ngx_ai_responses_response(unit_pool(), body.data, body.len,
                                          NULL, &out), NGX_OK);
    j = unit_json(&out);
    if (j == NULL) {
        return;
    }

    unit_str_is(j, "id", "resp_xy");
    unit_str_is(j, "status", "incomplete");
    unit_str_is(j, "incomplete_details.reason", "max_output_tokens");

    ngx_str_set(&body, "{\"choices\":[]}");
    UNIT_EQ_INT(ngx_ai_responses_response(unit_pool(), body.data, body.len,
                                          NULL, &out), NGX_DECLINED);
}


/* a stream's events: their names, joined by spaces, and the JSON of each */

typedef struct {
    char                 names[2048];
    cJSON               *json[64];
    ngx_uint_t           n;
} unit_resp_events_t;


static void
events_of(ngx_str_t *s, unit_resp_events_t *e)
{
    u_char     *p, *last, *eol, *data;
    ngx_str_t   d;

    ngx_memzero(e, sizeof(unit_resp_events_t));

    p = s->data;
    last = s->data + s->len;

    while (p < last && e->n < 64) {
        if (*p == ':') {
            p = (u_char *) memmem(p, last - p, "\n\n", 2) + 2;
            continue;
        }

        eol = memchr(p, '\n', last - p);
        if (eol == NULL || ngx_strncmp(p, "event: ", 7) != 0) {
            unit_fail(__FILE__, __LINE__, "not an event: %.*s",
                      (int) (last - p), p);
            return;
        }

        if (e->n) {
            strcat(e->names, " ");
        }

        strncat(e->names, (char *) p + 7, eol - p - 7);

        data = eol + 7;
        eol = (u_char *) memmem(data, last - data, "\n\n", 2);
        d.data = data;
        d.len = eol - data;
        e->json[e->n++] = unit_json(&d);

        p = eol + 2;
    }
}


/* out without its ": keep-alive" comments, appended to b */

static void
append_events(ngx_ai_buf_t *b, ngx_str_t *out)
{
    u_char  *p, *last, *c;

    p = out->data;
    last = out->data + out->len;

    while (p < last) {
        c = (u_char *) memmem(p, last - p, ": keep-alive\n\n", 14);
        if (c == NULL) {
            c = last;
        }

        UNIT_CHECK(ngx_ai_buf_append(b, p, c - p) == NGX_OK);
        p = (c == last) ? last : c + 14;
    }
}


/*
 * feeds text whole, and one byte at a time: the same events (a comment
 * goes out ahead of the events of its feed, so comments are left out of
 * the comparison)
 */

static void
feed(const char *text, ngx_ai_usage_t *u, ngx_str_t *whole)
{
    void          *st;
    size_t         i, len;
    ngx_str_t      out;
    ngx_ai_buf_t   b, bytes;

    len = strlen(text);

    st = ngx_ai_responses_stream_create(unit_pool(), 0, 0);
    UNIT_CHECK(st != NULL);

    if (u) {
        ngx_ai_responses_stream_usage(st, u);
    }

    UNIT_EQ_INT(ngx_ai_responses_stream_feed(st, (u_char *) text, len, &out),
                NGX_OK);

    whole->data = ngx_pnalloc(unit_pool(), out.len + 1);
    UNIT_CHECK(whole->data != NULL);
    ngx_memcpy(whole->data, out.data, out.len);
    whole->len = out.len;

    UNIT_CHECK(ngx_ai_buf_init(&b, unit_pool(), out.len + 1) == NGX_OK);
    append_events(&b, &out);

    st = ngx_ai_responses_stream_create(unit_pool(), 0, 0);

    if (u) {
        ngx_ai_responses_stream_usage(st, u);
    }

    UNIT_CHECK(ngx_ai_buf_init(&bytes, unit_pool(), out.len + 1) == NGX_OK);

    for (i = 0; i < len; i++) {
        UNIT_EQ_INT(ngx_ai_responses_stream_feed(st, (u_char *) text + i, 1,
                                                 &out), NGX_OK);
        append_events(&bytes, &out);
    }

    UNIT_EQ_INT(bytes.len, b.len);
    UNIT_CHECK(bytes.len == b.len && memcmp(bytes.data, b.data, b.len) == 0);
}


#define UNIT_CHUNK(delta, finish)                                            \
    "data: {\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\","   \
    "\"created\":1700000000,\"model\":\"openai/gpt-4o\",\"choices\":[{"     \
    "\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish "}]}\n\n"


UNIT_TEST(responses_stream_text)
{
    ngx_str_t           out;
    unit_resp_events_t  e;

    feed(UNIT_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
         UNIT_CHUNK("{\"content\":\"Hel\"}", "null")
         ": keep-alive\n\n"
         UNIT_CHUNK("{\"content\":\"lo\"}", "null")
         UNIT_CHUNK("{}", "\"stop\"")
         "data: {\"id\":\"chatcmpl-s1\",\"choices\":[],\"usage\":{"
         "\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}"
         "\n\n"
         "data: [DONE]\n\n", NULL, &out);

    UNIT_CONTAINS(out, ": keep-alive\n\n");

    events_of(&out, &e);

    UNIT_CHECK(strcmp(e.names, "response.created response.in_progress "
                      "response.output_item.added "
                      "response.content_part.added "
                      "response.output_text.delta response.output_text.delta "
                      "response.output_text.done response.content_part.done "
                      "response.output_item.done response.completed") == 0);

    if (e.n != 10) {
        unit_fail(__FILE__, __LINE__, "events: %s", e.names);
        return;
    }

    unit_str_is(e.json[0], "response.id", "resp_s1");
    unit_str_is(e.json[0], "response.status", "in_progress");
    UNIT_EQ_INT(unit_ai_num(e.json[0], "sequence_number"), 0);
    UNIT_EQ_INT(unit_ai_num(e.json[9], "sequence_number"), 9);
    unit_str_is(e.json[2], "item.id", "msg_s1");
    unit_str_is(e.json[4], "item_id", "msg_s1");
    unit_str_is(e.json[4], "delta", "Hel");
    unit_str_is(e.json[6], "text", "Hello");
    unit_str_is(e.json[8], "item.content.0.text", "Hello");
    unit_str_is(e.json[8], "item.status", "completed");
    unit_str_is(e.json[9], "response.status", "completed");
    unit_str_is(e.json[9], "response.output.0.content.0.text", "Hello");
    UNIT_EQ_INT(unit_ai_num(e.json[9], "response.usage.input_tokens"), 7);
    UNIT_EQ_INT(unit_ai_num(e.json[9], "response.usage.total_tokens"), 9);
}


UNIT_TEST(responses_stream_tools_failure)
{
    ngx_str_t           out;
    ngx_ai_usage_t      u;
    unit_resp_events_t  e;

    ngx_memzero(&u, sizeof(ngx_ai_usage_t));
    u.prompt_tokens = 22;
    u.completion_tokens = 9;
    u.known = 1;

    feed(UNIT_CHUNK("{\"content\":\"Checking.\"}", "null")
         UNIT_CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\","
                    "\"type\":\"function\",\"function\":{\"name\":\"w\","
                    "\"arguments\":\"\"}}]}", "null")
         UNIT_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{"
                    "\"arguments\":\"{\\\"c\\\":\"}}]}", "null")
         UNIT_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{"
                    "\"arguments\":\"1}\"}}]}", "null")
         UNIT_CHUNK("{}", "\"tool_calls\"")
         "data: [DONE]\n\n", &u, &out);

    events_of(&out, &e);

    UNIT_CHECK(strcmp(e.names, "response.created response.in_progress "
                      "response.output_item.added "
                      "response.content_part.added "
                      "response.output_text.delta "
                      "response.output_text.done response.content_part.done "
                      "response.output_item.done "
                      "response.output_item.added "
                      "response.function_call_arguments.delta "
                      "response.function_call_arguments.delta "
                      "response.function_call_arguments.done "
                      "response.output_item.done response.completed") == 0);

    if (e.n != 14) {
        unit_fail(__FILE__, __LINE__, "events: %s", e.names);
        return;
    }

    unit_str_is(e.json[8], "item.type", "function_call");
    unit_str_is(e.json[8], "item.id", "fc_s1_1");
    unit_str_is(e.json[8], "item.call_id", "call_1");
    unit_str_is(e.json[8], "item.arguments", "");
    UNIT_EQ_INT(unit_ai_num(e.json[8], "output_index"), 1);
    unit_str_is(e.json[11], "arguments", "{\"c\":1}");
    unit_str_is(e.json[11], "name", "w");
    unit_str_is(e.json[13], "response.output.1.arguments", "{\"c\":1}");
    UNIT_EQ_INT(unit_ai_num(e.json[13], "response.usage.input_tokens"), 22);
    UNIT_EQ_INT(unit_ai_num(e.json[13], "response.usage.output_tokens"), 9);

    /* the gateway's error event after the first bytes */

    feed(UNIT_CHUNK("{\"content\":\"Hi\"}", "null")
         "data: {\"error\":{\"message\":\"cut\",\"type\":\"upstream_error\","
         "\"code\":\"stream_error\"}}\n\n"
         "data: [DONE]\n\n", NULL, &out);

    events_of(&out, &e);

    UNIT_CHECK(strcmp(e.names, "response.created response.in_progress "
                      "response.output_item.added "
                      "response.content_part.added "
                      "response.output_text.delta "
                      "response.failed error") == 0);

    if (e.n != 7) {
        unit_fail(__FILE__, __LINE__, "events: %s", e.names);
        return;
    }

    unit_str_is(e.json[5], "response.status", "failed");
    unit_str_is(e.json[5], "response.error.code", "stream_error");
    unit_str_is(e.json[5], "response.error.message", "cut");
    unit_str_is(e.json[5], "response.output.0.status", "in_progress");
    unit_str_is(e.json[6], "code", "stream_error");
    unit_str_is(e.json[6], "message", "cut");

    /* cut by its length: response.incomplete */

    feed(UNIT_CHUNK("{\"content\":\"a\"}", "\"length\"") "data: [DONE]\n\n",
         NULL, &out);
    UNIT_CONTAINS(out, "event: response.incomplete\n");
    UNIT_CONTAINS(out, "\"incomplete_details\":{\"reason\":"
                       "\"max_output_tokens\"}");
}
