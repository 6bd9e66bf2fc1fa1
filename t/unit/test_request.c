
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: request validation and the openai-type translator.
 */


#include "unit.h"


static ngx_int_t
parse(const char *body, ngx_ai_chat_request_t *req, ngx_ai_error_t *err)
{
    return ngx_ai_chat_request_parse(unit_pool(), (u_char *) body,
                                     strlen(body), req, err);
}


UNIT_TEST(request_valid_minimal)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"hello\"}]}",
                      &req, &err), NGX_OK);
    UNIT_EQ_STR(req.provider, "openai");
    UNIT_EQ_STR(req.upstream_model, "gpt-4o");
    UNIT_EQ_INT(req.prompt_bytes, 5);
    UNIT_EQ_INT(req.stream, 0);
    UNIT_EQ_INT(req.max_tokens, -1);
}


UNIT_TEST(request_content_parts_and_options)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;

    UNIT_EQ_INT(parse("{\"model\":\"p/m\",\"stream\":true,"
                      "\"stream_options\":{\"include_usage\":true},"
                      "\"max_completion_tokens\":50,\"temperature\":0.5,"
                      "\"top_p\":1,\"stop\":[\"a\",\"b\"],\"messages\":"
                      "[{\"role\":\"system\",\"content\":\"be brief\"},"
                      "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                      "\"text\":\"abc\"},{\"type\":\"image_url\","
                      "\"image_url\":{\"url\":\"data:image/png;base64,AA\"}}"
                      "]}]}", &req, &err), NGX_OK);
    UNIT_EQ_INT(req.stream, 1);
    UNIT_EQ_INT(req.include_usage, 1);
    UNIT_EQ_INT(req.max_tokens, 50);
    UNIT_EQ_INT(req.prompt_bytes, 11);
}


UNIT_TEST(request_errors)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;

    UNIT_EQ_INT(parse("{nope", &req, &err), NGX_DECLINED);
    UNIT_EQ_INT(err.status, 400);
    UNIT_CHECK(strcmp(err.code, "invalid_json") == 0);

    UNIT_EQ_INT(parse("[1]", &req, &err), NGX_DECLINED);

    UNIT_EQ_INT(parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                      &req, &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "model") == 0);

    UNIT_EQ_INT(parse("{\"model\":\"a/b\"}", &req, &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "messages") == 0);

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":\"hi\"}", &req, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[]}", &req, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(parse("{\"model\":7,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"x\"}]}", &req, &err), NGX_DECLINED);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"stream\":\"yes\",\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"x\"}]}", &req, &err),
                NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "stream") == 0);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"max_tokens\":1.5,\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"x\"}]}", &req, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"temperature\":3,\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"x\"}]}", &req, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[{\"role\":\"king\","
                      "\"content\":\"x\"}]}", &req, &err), NGX_DECLINED);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[{\"role\":\"user\","
                      "\"content\":[{\"type\":\"text\",\"text\":5}]}]}",
                      &req, &err), NGX_DECLINED);
}


UNIT_TEST(request_depth_bound)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;
    char                   body[1024];
    int                    i, n;

    n = sprintf(body, "{\"model\":\"a/b\",\"x\":");
    for (i = 0; i < 100; i++) {
        body[n++] = '[';
    }
    for (i = 0; i < 100; i++) {
        body[n++] = ']';
    }
    sprintf(body + n, ",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");

    UNIT_EQ_INT(parse(body, &req, &err), NGX_DECLINED);
    UNIT_CONTAINS(err.message, "nested too deeply");
}


UNIT_TEST(model_names)
{
    UNIT_CHECK(ngx_ai_model_name_valid((u_char *) "openai/gpt-4o", 13));
    UNIT_CHECK(ngx_ai_model_name_valid((u_char *) "a/b.c:d", 7));
    UNIT_CHECK(!ngx_ai_model_name_valid((u_char *) "a/../b", 6));
    UNIT_CHECK(!ngx_ai_model_name_valid((u_char *) "a/..", 4));
    UNIT_CHECK(!ngx_ai_model_name_valid((u_char *) "a/%2Fb", 6));
    UNIT_CHECK(!ngx_ai_model_name_valid((u_char *) "a/b c", 5));
    UNIT_CHECK(!ngx_ai_model_name_valid((u_char *) "a/b\r\nX: y", 9));
    UNIT_CHECK(!ngx_ai_model_name_valid((u_char *) "a//b", 4));
    UNIT_CHECK(!ngx_ai_model_name_valid((u_char *) "", 0));
}


UNIT_TEST(openai_request_strips_prefix_and_restores)
{
    ngx_ai_chat_request_t      req;
    ngx_ai_upstream_request_t  up;
    ngx_ai_error_t             err;
    ngx_str_t                  again;
    cJSON                     *j;

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"models\":[\"x/y\"],"
                      "\"stream\":true,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\"}]}", &req, &err), NGX_OK);
    UNIT_EQ_INT(ngx_ai_openai_translator.request(unit_pool(), &req, &up),
                NGX_OK);
    UNIT_EQ_STR(up.path, "/v1/chat/completions");

    j = unit_json(&up.body);
    UNIT_CHECK(strcmp(cJSON_GetObjectItem(j, "model")->valuestring,
                      "gpt-4o") == 0);
    UNIT_CHECK(cJSON_GetObjectItem(j, "models") == NULL);
    UNIT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(
                   cJSON_GetObjectItem(j, "stream_options"),
                   "include_usage")));

    /* the client's tree is unchanged */
    UNIT_EQ_INT(ngx_ai_json_print(unit_pool(), req.json, &again), NGX_OK);
    UNIT_CONTAINS(again, "\"model\":\"openai/gpt-4o\"");
    UNIT_CONTAINS(again, "\"models\":[\"x/y\"]");
    UNIT_CHECK(memmem(again.data, again.len, "stream_options", 14) == NULL);
}


UNIT_TEST(error_render)
{
    ngx_ai_error_t  err;
    ngx_str_t       out;

    ngx_ai_error_set(&err, 400, "invalid_request_error", "model", NULL,
                     "bad \"model\"\n");
    UNIT_EQ_INT(ngx_ai_error_render(unit_pool(), &err, &out), NGX_OK);
    UNIT_EQ_STR(out, "{\"error\":{\"message\":\"bad \\\"model\\\"\\n\","
                "\"type\":\"invalid_request_error\",\"param\":\"model\","
                "\"code\":null}}");
}


/* found by fuzz/fuzz_request: (int64_t) 1e300 is undefined behaviour */

UNIT_TEST(request_max_tokens_out_of_range)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"max_tokens\":1e300,\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"x\"}]}", &req, &err),
                NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "max_tokens") == 0);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"max_completion_tokens\":-1e300,"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                      &req, &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "max_completion_tokens") == 0);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"max_tokens\":100000000,"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                      &req, &err), NGX_OK);
    UNIT_EQ_INT(req.max_tokens, 100000000);
}


/*
 * Found by fuzz/fuzz_request: with "model" twice, the first was
 * validated and the second reached the provider unchecked.
 */

UNIT_TEST(request_duplicate_members)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"x\"}],\"model\":\"../../x\"}",
                      &req, &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "model") == 0);
    UNIT_CHECK(strcmp(err.code, "duplicate_parameter") == 0);

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"stream\":true,\"stream_options\":"
                      "{\"include_usage\":false,\"include_usage\":true},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                      &req, &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "include_usage") == 0);

    /* members the gateway does not read may repeat */
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"x\":1,\"x\":2,\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"x\"}]}", &req, &err),
                NGX_OK);
}


/* n: every answer asked for is reserved, so it is checked and unique */

UNIT_TEST(request_n)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"

    UNIT_EQ_INT(parse("{\"model\":\"a/b\"," MSGS "}", &req, &err), NGX_OK);
    UNIT_EQ_INT((int) req.n, 1);

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"n\":128," MSGS "}", &req, &err),
                NGX_OK);
    UNIT_EQ_INT((int) req.n, 128);

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"n\":null," MSGS "}", &req, &err),
                NGX_OK);
    UNIT_EQ_INT((int) req.n, 1);

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"n\":129," MSGS "}", &req, &err),
                NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "n") == 0);

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"n\":0," MSGS "}", &req, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"n\":2.5," MSGS "}", &req, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"n\":1e300," MSGS "}", &req, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"n\":\"2\"," MSGS "}", &req,
                      &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.code, "invalid_type") == 0);

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"n\":1,\"n\":100," MSGS "}", &req,
                      &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.code, "duplicate_parameter") == 0);

#undef MSGS
}


/* found by fuzz/fuzz_request: bytes after the object were ignored */

UNIT_TEST(request_trailing_bytes)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"x\"}]}{\"model\":\"c/d\"}", &req, &err),
                NGX_DECLINED);
    UNIT_CHECK(strcmp(err.code, "invalid_json") == 0);
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"x\"}]} \r\n", &req, &err), NGX_OK);
}


/* found by fuzz/fuzz_request: "stream_options": null was dropped */

UNIT_TEST(openai_request_restores_null_stream_options)
{
    ngx_ai_chat_request_t      req;
    ngx_ai_upstream_request_t  up;
    ngx_ai_error_t             err;
    ngx_str_t                  again;
    cJSON                     *j;

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"stream\":true,"
                      "\"stream_options\":null,\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"hi\"}]}", &req, &err), NGX_OK);
    UNIT_EQ_INT(ngx_ai_openai_translator.request(unit_pool(), &req, &up),
                NGX_OK);

    j = unit_json(&up.body);
    UNIT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(
                   cJSON_GetObjectItem(j, "stream_options"),
                   "include_usage")));

    UNIT_EQ_INT(ngx_ai_json_print(unit_pool(), req.json, &again), NGX_OK);
    UNIT_CONTAINS(again, "\"stream_options\":null");
}


/*
 * Found by fuzz/fuzz_response_openai: an answer with bytes after its
 * JSON was passed on as it was, so the client got a body that is not
 * JSON instead of a fallback or a 502.
 */

UNIT_TEST(openai_response_trailing_bytes)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_response_t      out;
    ngx_ai_error_t         err;
    ngx_str_t              body;

    UNIT_EQ_INT(parse("{\"model\":\"openai/gpt-4o\",\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"hi\"}]}", &req, &err), NGX_OK);

    ngx_str_set(&body, "{\"choices\":[{\"message\":{\"content\":\"a\"}}]}x");
    UNIT_EQ_INT(ngx_ai_openai_translator.response(unit_pool(), &req,
                    body.data, body.len, &out, &err), NGX_DECLINED);
    UNIT_EQ_INT(err.status, 502);

    ngx_str_set(&body, "{\"choices\":[{\"message\":{\"content\":\"a\"}}]}\n");
    UNIT_EQ_INT(ngx_ai_openai_translator.response(unit_pool(), &req,
                    body.data, body.len, &out, &err), NGX_OK);
    UNIT_EQ_STR(out.content, "a");

    /* a member twice: the client's parser would read another usage or
     * answer than the gateway's */

    ngx_str_set(&body, "{\"choices\":[{\"message\":{\"content\":\"a\"}}],"
                       "\"usage\":{\"prompt_tokens\":1},"
                       "\"usage\":{\"prompt_tokens\":900}}");
    UNIT_EQ_INT(ngx_ai_openai_translator.response(unit_pool(), &req,
                    body.data, body.len, &out, &err), NGX_DECLINED);
    UNIT_EQ_INT(err.status, 502);

    ngx_str_set(&body, "{\"choices\":[{\"message\":{\"content\":\"a\","
                       "\"content\":\"b\"}}]}");
    UNIT_EQ_INT(ngx_ai_openai_translator.response(unit_pool(), &req,
                    body.data, body.len, &out, &err), NGX_DECLINED);
}


UNIT_TEST(request_nul_refused)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;

    UNIT_EQ_INT(parse("{\"model\":\"a/b\\u0000c\",\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"x\"}]}", &req, &err),
                NGX_DECLINED);
    UNIT_CONTAINS(err.message, "NUL");

    /* cJSON decodes a malformed \u escape as a NUL too */
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"x\\uu0 y\"}]}", &req, &err),
                NGX_DECLINED);
    {
        static const char  raw[] = "{\"model\0x\":\"a/b\",\"messages\":"
                                   "[{\"role\":\"user\",\"content\":\"x\"}]}";

        UNIT_EQ_INT(ngx_ai_chat_request_parse(unit_pool(), (u_char *) raw,
                                              sizeof(raw) - 1, &req, &err),
                    NGX_DECLINED);
    }

    /* an escaped backslash before u0000 is text, not a NUL */
    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"\\\\u0000\"}]}", &req, &err),
                NGX_OK);
}


/* RFC 8259 forbids raw control bytes in strings; providers want UTF-8 */

UNIT_TEST(request_raw_controls_and_bad_utf8_refused)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_error_t         err;

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"hi\x01there\"}]}", &req, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(err.status, 400);
    UNIT_CHECK(strcmp(err.code, "invalid_json") == 0);
    UNIT_CHECK(err.param == NULL);
    UNIT_CONTAINS(err.message, "control character 0x01 at offset 55");

    /* a raw LF in a key, before a bad byte: the first is named */

    UNIT_EQ_INT(parse("{\"mo\ndel\":1,\"model\":\"a/b\",\"messages\":"
                      "[{\"role\":\"user\",\"content\":\"\xff\"}]}", &req,
                      &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.code, "invalid_json") == 0);
    UNIT_CONTAINS(err.message, "0x0A at offset 4");

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"caf\xc3\xa9 \xed\xa0\x80\"}]}",
                      &req, &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.code, "invalid_encoding") == 0);
    UNIT_CONTAINS(err.message, "not valid UTF-8: the byte 0xED at offset 59");

    /* a raw NUL is a raw control byte */

    {
        static const char  raw[] = "{\"model\":\"a/b\",\"messages\":"
                                   "[{\"role\":\"user\",\"content\":\"x\0\"}]}";

        UNIT_EQ_INT(ngx_ai_chat_request_parse(unit_pool(), (u_char *) raw,
                                              sizeof(raw) - 1, &req, &err),
                    NGX_DECLINED);
        UNIT_CHECK(strcmp(err.code, "invalid_json") == 0);
        UNIT_CONTAINS(err.message, "0x00 at offset 54");
    }

    /* escaped, and well-formed UTF-8, they pass */

    UNIT_EQ_INT(parse("{\"model\":\"a/b\",\"messages\":[{\"role\":"
                      "\"user\",\"content\":\"hi\\u0001\\n\xc3\xa9\xe2\x82\xac"
                      "\xf0\x9f\x98\x80\x7f\"}]}", &req, &err), NGX_OK);
}


/* the openai translator edits the client's bytes instead of printing the
 * tree: it must send what the printed tree would mean */

static cJSON *
spliced(const char *body, ngx_uint_t stream, ngx_uint_t include_usage)
{
    ngx_ai_chat_request_t      req;
    ngx_ai_upstream_request_t  up;
    ngx_ai_error_t             err;

    UNIT_EQ_INT(parse(body, &req, &err), NGX_OK);
    req.stream = stream;
    req.include_usage = include_usage;

    UNIT_EQ_INT(ngx_ai_openai_translator.request(unit_pool(), &req, &up),
                NGX_OK);

    return unit_json(&up.body);
}


UNIT_TEST(openai_splice_matches_the_tree)
{
    cJSON  *j, *o;

    j = spliced("{ \"messages\": [{\"role\":\"user\",\"content\":\"a,}]\\\"\"}],"
                "\"model\" : \"openai/gpt-4o\", \"models\":[\"x/y\",\"z/w\"],"
                "\"temperature\":0.5,\"stream\":true,\"extra\":{\"a\":[1,{}]}}",
                1, 0);
    UNIT_CHECK(strcmp(cJSON_GetObjectItem(j, "model")->valuestring,
                      "gpt-4o") == 0);
    UNIT_CHECK(cJSON_GetObjectItem(j, "models") == NULL);
    UNIT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
    o = cJSON_GetObjectItem(j, "stream_options");
    UNIT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(o, "include_usage")));
    UNIT_CHECK(strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(
                   cJSON_GetObjectItem(j, "messages"), 0), "content")
                   ->valuestring, "a,}]\"") == 0);
    UNIT_CHECK(cJSON_GetObjectItem(j, "temperature")->valuedouble == 0.5);
    UNIT_CHECK(cJSON_IsObject(cJSON_GetObjectItem(j, "extra")));

    /* a call that does not stream: no stream, no stream_options */
    j = spliced("{\"model\":\"p/m\",\"stream\":true,\"stream_options\":"
                "{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
                "\"content\":\"x\"}]}", 0, 0);
    UNIT_CHECK(cJSON_GetObjectItem(j, "stream") == NULL);
    UNIT_CHECK(cJSON_GetObjectItem(j, "stream_options") == NULL);
    UNIT_CHECK(strcmp(cJSON_GetObjectItem(j, "model")->valuestring, "m")
               == 0);

    /* an escaped key: the tree is printed instead, with the same result */
    j = spliced("{\"mod\\u0065l\":\"p/m\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"x\"}]}", 0, 0);
    UNIT_CHECK(strcmp(cJSON_GetObjectItem(j, "model")->valuestring, "m")
               == 0);
}
