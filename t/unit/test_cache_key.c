
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The edge cache's pure parts: the canonical form of a request (sorted,
 * no whitespace, stream/user/metadata left out, sampling seen), the key
 * over length-prefixed parts, the stored record (round trip, and every
 * damaged form refused), whole answers worth storing, a relayed stream
 * put back together (and what makes it unfit), a stored answer replayed
 * as chunks.
 */


#include "unit.h"
#include "ngx_ai_gateway_cache_key.h"


static ngx_str_t
canon(const char *json, ngx_ai_cache_canon_t *info)
{
    cJSON         *root;
    ngx_str_t      s;
    ngx_ai_buf_t   b;

    s.data = (u_char *) json;
    s.len = strlen(json);
    root = unit_json(&s);

    UNIT_EQ_INT(ngx_ai_cache_canon(unit_pool(), root, &b, info), NGX_OK);

    s.data = b.data;
    s.len = b.len;

    return s;
}


UNIT_TEST(cache_canon_sorted)
{
    ngx_ai_cache_canon_t  info;

    UNIT_EQ_STR(canon("{ \"b\" : [1, 2.5, {\"z\":null,\"a\":true}],"
                      "\n \"a\": \"x\\u00e9\\n\", \"stream\": true,"
                      " \"user\": \"u\", \"metadata\": {\"k\": 1},"
                      " \"stream_options\": {\"include_usage\": true},"
                      " \"temperature\": 0}", &info),
                "{\"a\":\"x\xc3\xa9\\n\",\"b\":[1,2.5,{\"a\":true,"
                "\"z\":null}],\"temperature\":0}");
    UNIT_EQ_INT(info.sampled, 0);

    /* only the top level loses those names */
    UNIT_EQ_STR(canon("{\"m\":{\"user\":1,\"stream\":2},\"temperature\":1}",
                      &info),
                "{\"m\":{\"stream\":2,\"user\":1},\"temperature\":1}");
    UNIT_EQ_INT(info.sampled, 1);

    /* no temperature: the providers' default, 1 */
    (void) canon("{\"model\":\"x\"}", &info);
    UNIT_EQ_INT(info.sampled, 1);

    /* members of one name keep their order (the last one wins at the
     * provider: two orders are two requests) */
    UNIT_EQ_STR(canon("{\"a\":2,\"b\":0,\"a\":1}", &info),
                "{\"a\":2,\"a\":1,\"b\":0}");
    UNIT_EQ_STR(canon("{\"a\":1,\"a\":2}", &info), "{\"a\":1,\"a\":2}");

    /* numbers as one form */
    UNIT_EQ_STR(canon("{\"t\":1.0,\"u\":1e2,\"v\":-0.5,\"w\":-3,"
                      "\"x\":0.2,\"y\":1e300,\"z\":-0}", &info),
                "{\"t\":1,\"u\":100,\"v\":-0.5,\"w\":-3,"
                "\"x\":0.2,\"y\":1e+300,"
                "\"z\":0}");
}


UNIT_TEST(cache_key_parts)
{
    u_char     k1[NGX_AI_CACHE_KEY_HEX], k2[NGX_AI_CACHE_KEY_HEX];
    ngx_str_t  p[2];

    ngx_str_set(&p[0], "ab");
    ngx_str_set(&p[1], "c");
    UNIT_EQ_INT(ngx_ai_cache_key(unit_pool(), p, 2, k1), NGX_OK);

    /* SHA-256 of "ai-cache/1\n2:ab1:c" */
    UNIT_CHECK(memcmp(k1, "48e77b2662b50f92169b79eb41dc7337"
                          "2ae4b0b2b62a69486f0dec20fc02b5b8",
                      NGX_AI_CACHE_KEY_HEX) == 0);

    /* the same bytes split otherwise are another key */
    ngx_str_set(&p[0], "a");
    ngx_str_set(&p[1], "bc");
    UNIT_EQ_INT(ngx_ai_cache_key(unit_pool(), p, 2, k2), NGX_OK);
    UNIT_CHECK(memcmp(k1, k2, NGX_AI_CACHE_KEY_HEX) != 0);

    ngx_str_set(&p[0], "ab");
    ngx_str_set(&p[1], "c");
    UNIT_EQ_INT(ngx_ai_cache_key(unit_pool(), p, 2, k2), NGX_OK);
    UNIT_CHECK(memcmp(k1, k2, NGX_AI_CACHE_KEY_HEX) == 0);
}


UNIT_TEST(cache_record_round_trip)
{
    ngx_str_t              out;
    ngx_ai_cache_record_t  rec, back;

    ngx_memzero(&rec, sizeof(rec));
    rec.created = 1700000000;
    rec.input_tokens = 12;
    rec.output_tokens = 34;
    rec.cost = 567;
    ngx_str_set(&rec.model, "openai/gpt-4o");
    ngx_str_set(&rec.body, "{\"object\":\"chat.completion\"}\n\x01");

    UNIT_EQ_INT(ngx_ai_cache_record_encode(unit_pool(), &rec, &out), NGX_OK);
    UNIT_EQ_INT(ngx_ai_cache_record_decode(out.data, out.len, &back),
                NGX_OK);
    UNIT_EQ_INT(back.created, 1700000000);
    UNIT_EQ_INT(back.input_tokens, 12);
    UNIT_EQ_INT(back.output_tokens, 34);
    UNIT_EQ_INT(back.cost, 567);
    UNIT_EQ_STR(back.model, "openai/gpt-4o");
    UNIT_EQ_STR(back.body, "{\"object\":\"chat.completion\"}\n\x01");

    /* cut anywhere: refused */
    UNIT_EQ_INT(ngx_ai_cache_record_decode(out.data, out.len - 1, &back),
                NGX_DECLINED);
    UNIT_EQ_INT(ngx_ai_cache_record_decode(out.data, 10, &back),
                NGX_DECLINED);
    UNIT_EQ_INT(ngx_ai_cache_record_decode(out.data, 0, &back),
                NGX_DECLINED);

    /* a model with a newline cannot be written */
    ngx_str_set(&rec.model, "a\nb");
    UNIT_EQ_INT(ngx_ai_cache_record_encode(unit_pool(), &rec, &out),
                NGX_DECLINED);
}


static ngx_int_t
decode(const char *s)
{
    ngx_ai_cache_record_t  rec;

    return ngx_ai_cache_record_decode((u_char *) s, strlen(s), &rec);
}


UNIT_TEST(cache_record_damaged)
{
    UNIT_EQ_INT(decode("AIC1\ncreated=1\ninput=2\noutput=3\ncost=4\n"
                       "model=m\nbody=2\n{}"), NGX_OK);
    UNIT_EQ_INT(decode("AIC2\ncreated=1\ninput=2\noutput=3\ncost=4\n"
                       "model=m\nbody=2\n{}"), NGX_DECLINED);
    UNIT_EQ_INT(decode("AIC1\ncreated=1\ninput=2\noutput=3\ncost=4\n"
                       "model=m\nbody=3\n{}"), NGX_DECLINED);
    UNIT_EQ_INT(decode("AIC1\ncreated=1\ninput=2\noutput=3\ncost=4\n"
                       "model=m\nbody=1\n{}"), NGX_DECLINED);
    UNIT_EQ_INT(decode("AIC1\ncreated=1\ninput=-2\noutput=3\ncost=4\n"
                       "model=m\nbody=2\n{}"), NGX_DECLINED);
    UNIT_EQ_INT(decode("AIC1\ncreated=1\ninput=99999999999999999999\n"
                       "output=3\ncost=4\nmodel=m\nbody=2\n{}"),
                NGX_DECLINED);
    UNIT_EQ_INT(decode("AIC1\ncreated=1\noutput=3\ninput=2\ncost=4\n"
                       "model=m\nbody=2\n{}"), NGX_DECLINED);
    UNIT_EQ_INT(decode("AIC1\ncreated=1\ninput=2\noutput=3\ncost=4\n"
                       "model=m\x01\nbody=2\n{}"), NGX_DECLINED);
    UNIT_EQ_INT(decode("AIC1\ncreated=1\ninput=2\noutput=3\ncost=4\n"
                       "model=m\nbody=0\n"), NGX_DECLINED);
    UNIT_EQ_INT(decode("AIC1\ncreated=\ninput=2\noutput=3\ncost=4\n"
                       "model=m\nbody=2\n{}"), NGX_DECLINED);
}


static ngx_int_t
answer_ok(const char *s)
{
    ngx_str_t  b;

    b.data = (u_char *) s;
    b.len = strlen(s);

    return ngx_ai_cache_answer_ok(unit_pool(), &b);
}


UNIT_TEST(cache_answer_ok)
{
    UNIT_EQ_INT(answer_ok("{\"object\":\"chat.completion\",\"choices\":"
                          "[{\"finish_reason\":\"stop\"}]}"), NGX_OK);
    UNIT_EQ_INT(answer_ok("{\"object\":\"chat.completion\",\"choices\":"
                          "[{\"finish_reason\":\"length\"}]}"), NGX_OK);
    UNIT_EQ_INT(answer_ok("{\"object\":\"chat.completion\",\"choices\":"
                          "[{\"finish_reason\":\"content_filter\"}]}"),
                NGX_DECLINED);
    UNIT_EQ_INT(answer_ok("{\"object\":\"chat.completion\",\"choices\":"
                          "[{\"finish_reason\":null}]}"), NGX_DECLINED);
    UNIT_EQ_INT(answer_ok("{\"object\":\"chat.completion\",\"choices\":[]}"),
                NGX_DECLINED);
    UNIT_EQ_INT(answer_ok("{\"object\":\"chat.completion\",\"choices\":"
                          "[{\"finish_reason\":\"stop\"},"
                          "{\"finish_reason\":\"stop\"}]}"), NGX_DECLINED);
    UNIT_EQ_INT(answer_ok("{\"object\":\"list\",\"data\":[{}]}"), NGX_OK);
    UNIT_EQ_INT(answer_ok("{\"object\":\"list\",\"data\":[]}"),
                NGX_DECLINED);
    UNIT_EQ_INT(answer_ok("{\"error\":{}}"), NGX_DECLINED);
    UNIT_EQ_INT(answer_ok("not json"), NGX_DECLINED);
}


#define CHUNK(delta, finish)                                                 \
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","     \
    "\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,"             \
    "\"delta\":" delta ",\"finish_reason\":" finish "}]}\n\n"


static ngx_int_t
reassemble(const char *stream, size_t split, ngx_str_t *out)
{
    size_t                 len;
    ngx_ai_usage_t         u;
    ngx_ai_cache_chunks_t  ch;

    len = strlen(stream);
    split = ngx_min(split, len);

    UNIT_EQ_INT(ngx_ai_cache_chunks_init(&ch, unit_pool(), 4096), NGX_OK);
    UNIT_EQ_INT(ngx_ai_cache_chunks_feed(&ch, (u_char *) stream, split),
                NGX_OK);
    UNIT_EQ_INT(ngx_ai_cache_chunks_feed(&ch, (u_char *) stream + split,
                                         len - split),
                NGX_OK);

    ngx_memzero(&u, sizeof(u));
    u.known = 1;
    u.prompt_tokens = 7;
    u.completion_tokens = 2;

    return ngx_ai_cache_chunks_answer(&ch, &u, out);
}


UNIT_TEST(cache_chunks_whole)
{
    size_t      i;
    ngx_str_t   out;
    const char *s;

    s = CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
        CHUNK("{\"content\":\"Hel\"}", "null")
        ": ping\n\n"
        CHUNK("{\"content\":\"lo \\u00e9\"}", "null")
        CHUNK("{}", "\"stop\"")
        "data: [DONE]\n\n";

    for (i = 0; i < strlen(s); i += 7) {
        UNIT_EQ_INT(reassemble(s, i, &out), NGX_OK);
        UNIT_EQ_STR(out, "{\"id\":\"chatcmpl-1\",\"object\":"
                    "\"chat.completion\",\"created\":5,\"model\":\"gpt\","
                    "\"choices\":[{\"index\":0,\"message\":{\"role\":"
                    "\"assistant\",\"content\":\"Hello \xc3\xa9\"},"
                    "\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                    "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,"
                    "\"total_tokens\":9}}");
    }
}


UNIT_TEST(cache_chunks_tools)
{
    ngx_str_t  out;

    UNIT_EQ_INT(reassemble(
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":"
              "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
              "\"\"}}]}", "null")
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
              "\"{\\\"a\\\"\"}}]}", "null")
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
              "\":1}\"}}]}", "null")
        CHUNK("{}", "\"tool_calls\"")
        "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":"
        "{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
        "data: [DONE]\n\n", 0, &out), NGX_OK);

    UNIT_EQ_STR(out, "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
                "\"created\":5,\"model\":\"gpt\",\"choices\":[{\"index\":0,"
                "\"message\":{\"role\":\"assistant\",\"content\":null,"
                "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
                "\"function\":{\"name\":\"f\",\"arguments\":"
                "\"{\\\"a\\\":1}\"}}]},\"logprobs\":null,"
                "\"finish_reason\":\"tool_calls\"}],\"usage\":"
                "{\"prompt_tokens\":3,\"completion_tokens\":4,"
                "\"total_tokens\":7}}");
}


UNIT_TEST(cache_chunks_unfit)
{
    ngx_str_t  out;

    /* no [DONE]: cut */
    UNIT_EQ_INT(reassemble(CHUNK("{\"content\":\"a\"}", "\"stop\""), 0,
                           &out), NGX_DECLINED);

    /* no finish */
    UNIT_EQ_INT(reassemble(CHUNK("{\"content\":\"a\"}", "null")
                           "data: [DONE]\n\n", 0, &out), NGX_DECLINED);

    /* an error event */
    UNIT_EQ_INT(reassemble(CHUNK("{\"content\":\"a\"}", "null")
                           "data: {\"error\":{\"message\":\"x\"}}\n\n"
                           "data: [DONE]\n\n", 0, &out), NGX_DECLINED);

    /* a filtered answer */
    UNIT_EQ_INT(reassemble(CHUNK("{\"content\":\"a\"}", "\"content_filter\"")
                           "data: [DONE]\n\n", 0, &out), NGX_DECLINED);

    /* another choice */
    UNIT_EQ_INT(reassemble(
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"a\"}}]}"
        "\n\n" CHUNK("{}", "\"stop\"") "data: [DONE]\n\n", 0, &out),
        NGX_DECLINED);

    /* garbage, and anything after [DONE] */
    UNIT_EQ_INT(reassemble("data: {nope\n\n" CHUNK("{}", "\"stop\"")
                           "data: [DONE]\n\n", 0, &out), NGX_DECLINED);
    UNIT_EQ_INT(reassemble(CHUNK("{}", "\"stop\"") "data: [DONE]\n\n"
                           CHUNK("{\"content\":\"a\"}", "null"), 0, &out),
                NGX_DECLINED);

    /* a tool call fragment for a call never opened */
    UNIT_EQ_INT(reassemble(
        CHUNK("{\"tool_calls\":[{\"index\":3,\"function\":{\"arguments\":"
              "\"x\"}}]}", "null")
        CHUNK("{}", "\"tool_calls\"") "data: [DONE]\n\n", 0, &out),
        NGX_DECLINED);
}


/* a NUL-terminated copy, for strstr() */

static char *
cstr(ngx_str_t *s)
{
    char  *p;

    p = ngx_pnalloc(unit_pool(), s->len + 1);
    UNIT_CHECK(p != NULL);

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    return p;
}


/* 63 bytes, then a character of two: the first piece ends before it */
#define LONG_TEXT                                                            \
    "012345678901234567890123456789012345678901234567890123456789012"       \
    "\xc3\xa9" "0123456789"


UNIT_TEST(cache_replay)
{
    ngx_str_t              body, out;
    ngx_ai_stream_t        st;
    ngx_ai_chat_request_t  req;

    ngx_memzero(&req, sizeof(req));
    req.include_usage = 1;
    ngx_str_set(&req.model, "openai/gpt-4o");

    ngx_str_set(&body, "{\"id\":\"chatcmpl-9\",\"object\":"
                "\"chat.completion\",\"created\":1,\"model\":\"gpt\","
                "\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":\"" LONG_TEXT "\"},"
                "\"finish_reason\":\"stop\"}],\"usage\":"
                "{\"prompt_tokens\":3,\"completion_tokens\":4,\"cost\":1}}");

    UNIT_EQ_INT(ngx_ai_stream_init(&st, unit_pool(), &req, 7), NGX_OK);
    UNIT_EQ_INT(ngx_ai_cache_replay(&st, &body), NGX_OK);

    /* the replay puts itself back together: content, finish, usage */
    out.data = st.out.data;
    out.len = st.out.len;

    {
        ngx_ai_buf_t           b;
        ngx_ai_cache_chunks_t  ch;
        ngx_ai_usage_t         u;
        ngx_str_t              again;

        ngx_memzero(&u, sizeof(u));
        (void) ngx_ai_buf_init(&b, unit_pool(), out.len + 16);
        (void) ngx_ai_buf_append(&b, out.data, out.len);
        (void) ngx_ai_buf_append_str(&b, "data: [DONE]\n\n");

        UNIT_EQ_INT(ngx_ai_cache_chunks_init(&ch, unit_pool(), 4096),
                    NGX_OK);
        UNIT_EQ_INT(ngx_ai_cache_chunks_feed(&ch, b.data, b.len), NGX_OK);
        UNIT_EQ_INT(ngx_ai_cache_chunks_answer(&ch, &u, &again), NGX_OK);
        UNIT_CHECK(strstr(cstr(&again), "\"content\":\"" LONG_TEXT "\"")
                   != NULL);
        UNIT_CHECK(strstr(cstr(&again), "\"prompt_tokens\":3,"
                              "\"completion_tokens\":4") != NULL);
        UNIT_EQ_INT(ch.usage.cost, 0);
    }

    /* a piece never ends inside the two bytes of U+00E9 */
    UNIT_CHECK(strstr(cstr(&out), "\"content\":\"\xc3\"") == NULL);
    UNIT_CHECK(strstr(cstr(&out), "\"cost\":0") != NULL);

    /* two choices cannot be one stream */
    ngx_str_set(&body, "{\"choices\":[{\"message\":{},\"finish_reason\":"
                "\"stop\"},{\"message\":{},\"finish_reason\":\"stop\"}]}");
    UNIT_EQ_INT(ngx_ai_stream_init(&st, unit_pool(), &req, 7), NGX_OK);
    UNIT_EQ_INT(ngx_ai_cache_replay(&st, &body), NGX_DECLINED);
}
