
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: embeddings and token counts (ngx_ai_gateway_embed.c and the
 * translators' embed_* and count_* members), the routes of the new
 * endpoints, the Messages count_tokens conversion.
 */


#include "unit.h"


cJSON *unit_ai_path(cJSON *root, const char *path);
const char *unit_ai_str(cJSON *root, const char *path);
double unit_ai_num(cJSON *root, const char *path);
ngx_ai_chat_request_t *unit_ai_chat(const char *body);


static ngx_int_t
embed_parse(const char *body, ngx_ai_chat_request_t *req, ngx_ai_error_t *err)
{
    size_t   len;
    u_char  *p;

    len = strlen(body);
    p = ngx_pnalloc(unit_pool(), len + 1);
    memcpy(p, body, len + 1);

    return ngx_ai_embed_request_parse(unit_pool(), p, len, req, err);
}


static void
set_target(ngx_ai_chat_request_t *req, const char *upstream)
{
    req->upstream_model.data = (u_char *) upstream;
    req->upstream_model.len = strlen(upstream);
}


UNIT_TEST(embed_request_valid)
{
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t   req;

    UNIT_EQ_INT(embed_parse("{\"model\":\"openai/te-3\",\"input\":\"hello\","
                            "\"dimensions\":8,\"encoding_format\":\"base64\","
                            "\"user\":\"u\"}", &req, &err), NGX_OK);
    UNIT_EQ_INT(req.op, NGX_AI_OP_EMBED);
    UNIT_EQ_STR(req.provider, "openai");
    UNIT_EQ_STR(req.upstream_model, "te-3");
    UNIT_EQ_INT(req.prompt_bytes, 5);
    UNIT_EQ_INT(req.max_tokens, 0);
    UNIT_EQ_INT(req.stream, 0);
    UNIT_EQ_INT(ngx_ai_embed_inputs(&req), 1);
    UNIT_EQ_INT(ngx_ai_embed_base64(&req), 1);

    UNIT_EQ_INT(embed_parse("{\"model\":\"a/b\",\"input\":[\"ab\",\"cde\"]}",
                            &req, &err), NGX_OK);
    UNIT_EQ_INT(req.prompt_bytes, 5);
    UNIT_EQ_INT(ngx_ai_embed_inputs(&req), 2);
    UNIT_EQ_INT(ngx_ai_embed_base64(&req), 0);

    /* tokens: 4 bytes each, so the estimate is the token count */
    UNIT_EQ_INT(embed_parse("{\"model\":\"a/b\",\"input\":[1,2,3]}", &req,
                            &err), NGX_OK);
    UNIT_EQ_INT(req.prompt_bytes, 12);
    UNIT_EQ_INT(ngx_ai_embed_inputs(&req), 1);

    UNIT_EQ_INT(embed_parse("{\"model\":\"a/b\",\"input\":[[1],[2,3]],"
                            "\"models\":[\"c/d\"]}", &req, &err), NGX_OK);
    UNIT_EQ_INT(req.prompt_bytes, 12);
    UNIT_EQ_INT(ngx_ai_embed_inputs(&req), 2);
    UNIT_CHECK(req.models != NULL);
}


UNIT_TEST(embed_request_invalid)
{
    size_t                  i;
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t   req;

    static const char  *bad[][2] = {
        { "", NULL },
        { "[1]", NULL },
        { "{\"input\":\"x\"}", "model" },
        { "{\"model\":\"a/b\"}", "input" },
        { "{\"model\":\"a/b\",\"input\":\"\"}", "input" },
        { "{\"model\":\"a/b\",\"input\":[]}", "input" },
        { "{\"model\":\"a/b\",\"input\":[\"\"]}", "input" },
        { "{\"model\":\"a/b\",\"input\":[\"a\",1]}", "input" },
        { "{\"model\":\"a/b\",\"input\":[[1],\"a\"]}", "input" },
        { "{\"model\":\"a/b\",\"input\":[[]]}", "input" },
        { "{\"model\":\"a/b\",\"input\":[1.5]}", "input" },
        { "{\"model\":\"a/b\",\"input\":[4294967296]}", "input" },
        { "{\"model\":\"a/b\",\"input\":[null]}", "input" },
        { "{\"model\":\"a/b\",\"input\":true}", "input" },
        { "{\"model\":\"a/b\",\"input\":\"x\",\"dimensions\":0}",
          "dimensions" },
        { "{\"model\":\"a/b\",\"input\":\"x\",\"dimensions\":1.5}",
          "dimensions" },
        { "{\"model\":\"a/b\",\"input\":\"x\",\"dimensions\":70000}",
          "dimensions" },
        { "{\"model\":\"a/b\",\"input\":\"x\",\"encoding_format\":1}",
          "encoding_format" },
        { "{\"model\":\"a/b\",\"input\":\"x\",\"user\":1}", "user" },
        { "{\"model\":\"a b\",\"input\":\"x\"}", "model" },
        { "{\"model\":\"a/b\",\"input\":\"x\",\"models\":[1]}", "models" },
        { "{\"model\":\"a/b\",\"input\":\"x\",\"input\":\"y\"}", "input" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ngx_memzero(&err, sizeof(err));

        if (embed_parse(bad[i][0], &req, &err) != NGX_DECLINED) {
            unit_fail(__FILE__, __LINE__, "accepted: %s", bad[i][0]);
            continue;
        }

        UNIT_EQ_INT(err.status, 400);

        if (bad[i][1] == NULL ? err.param != NULL
            : err.param == NULL || strcmp(err.param, bad[i][1]) != 0)
        {
            unit_fail(__FILE__, __LINE__, "%s: param %s", bad[i][0],
                      err.param ? err.param : "(null)");
        }
    }
}


UNIT_TEST(embed_openai)
{
    cJSON                      *j;
    ngx_str_t                   body;
    ngx_ai_error_t              err;
    ngx_ai_response_t           out;
    ngx_ai_chat_request_t       req;
    ngx_ai_upstream_request_t   up;
    ngx_ai_translator_t        *t = &ngx_ai_openai_translator;

    UNIT_EQ_INT(embed_parse("{\"model\":\"openai/te-3\",\"input\":[\"a\","
                            "\"b\"],\"models\":[\"openai/x\"]}", &req, &err),
                NGX_OK);
    set_target(&req, "te-3");

    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err), NGX_OK);
    UNIT_EQ_STR(up.path, "/v1/embeddings");
    j = unit_json(&up.body);
    UNIT_CHECK(strcmp(unit_ai_str(j, "model"), "te-3") == 0);
    UNIT_CHECK(unit_ai_path(j, "models") == NULL);
    UNIT_CHECK(strcmp(unit_ai_str(j, "input.1"), "b") == 0);

    /* the client's tree is as it was */
    UNIT_CHECK(strcmp(unit_ai_str(req.json, "model"), "openai/te-3") == 0);
    UNIT_CHECK(unit_ai_path(req.json, "models") != NULL);

    ngx_str_set(&body, "{\"object\":\"list\",\"data\":["
                "{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.5,-1]},"
                "{\"object\":\"embedding\",\"index\":1,"
                "\"embedding\":[2,3e-3]}],\"model\":\"te-3\","
                "\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}");

    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_OK);
    UNIT_EQ_STR(out.body, "{\"object\":\"list\",\"data\":["
                "{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.5,-1]},"
                "{\"object\":\"embedding\",\"index\":1,"
                "\"embedding\":[2,0.003]}],\"model\":\"openai/te-3\","
                "\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}");
    UNIT_CHECK(out.usage.known);
    UNIT_EQ_INT(out.usage.prompt_tokens, 2);

    /* no usage: the estimate, not known */
    ngx_str_set(&body, "{\"data\":[{\"embedding\":[1]},{\"embedding\":[2]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_OK);
    UNIT_CHECK(!out.usage.known);

    /* not what an embeddings answer is */
    ngx_str_set(&body, "{\"data\":[{\"embedding\":[1]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_DECLINED);
    UNIT_EQ_INT(err.status, 502);
    ngx_str_set(&body, "{\"data\":[{\"embedding\":[1]},{\"embedding\":[]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_DECLINED);
    ngx_str_set(&body, "{\"data\":[{\"embedding\":[1]},"
                "{\"embedding\":[\"x\"]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_DECLINED);
    ngx_str_set(&body, "{\"data\":[{\"embedding\":[1]},{\"embedding\":[1e999]}"
                "]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_DECLINED);
    ngx_str_set(&body, "{\"data\":[{\"index\":1,\"embedding\":[1]},"
                "{\"index\":0,\"embedding\":[1]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_DECLINED);
    ngx_str_set(&body, "{\"data\":[{\"embedding\":\"AAAA\"},"
                "{\"embedding\":\"AAAA\"}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_DECLINED);

    UNIT_CHECK(t->count_request == NULL);
    UNIT_CHECK(!ngx_ai_translator_serves(t, NGX_AI_OP_COUNT));
    UNIT_CHECK(ngx_ai_translator_serves(t, NGX_AI_OP_EMBED));
}


UNIT_TEST(embed_openai_base64)
{
    ngx_str_t               body;
    ngx_ai_error_t          err;
    ngx_ai_response_t       out;
    ngx_ai_chat_request_t   req;
    ngx_ai_translator_t    *t = &ngx_ai_openai_translator;

    UNIT_EQ_INT(embed_parse("{\"model\":\"openai/te\",\"input\":\"a\","
                            "\"encoding_format\":\"base64\"}", &req, &err),
                NGX_OK);

    /* the provider's base64 as it is; floats of a provider that ignored
     * encoding_format made base64: 1.0f is 00 00 80 3f, -2.0f 00 00 00 c0 */

    ngx_str_set(&body, "{\"data\":[{\"embedding\":\"AACAPw==\"}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_OK);
    UNIT_CONTAINS(out.body, "\"embedding\":\"AACAPw==\"");

    ngx_str_set(&body, "{\"data\":[{\"embedding\":[1,-2]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_OK);
    UNIT_CONTAINS(out.body, "\"embedding\":\"AACAPwAAAMA=\"");

    ngx_str_set(&body, "{\"data\":[{\"embedding\":[1,-2,1]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_OK);
    UNIT_CONTAINS(out.body, "\"embedding\":\"AACAPwAAAMAAAIA/\"");

    ngx_str_set(&body, "{\"data\":[{\"embedding\":\"AA!A\"}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_DECLINED);
}


UNIT_TEST(embed_gemini)
{
    cJSON                      *j;
    ngx_str_t                   body;
    ngx_ai_error_t              err;
    ngx_ai_response_t           out;
    ngx_ai_chat_request_t       req;
    ngx_ai_upstream_request_t   up;
    ngx_ai_translator_t        *t = &ngx_ai_gemini_translator;

    UNIT_EQ_INT(embed_parse("{\"model\":\"google/ge-1\",\"input\":[\"hello\","
                            "\"world!\"],\"dimensions\":2}", &req, &err),
                NGX_OK);
    set_target(&req, "ge-1");

    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err), NGX_OK);
    UNIT_EQ_STR(up.path, "/v1beta/models/ge-1:batchEmbedContents");
    j = unit_json(&up.body);
    UNIT_CHECK(strcmp(unit_ai_str(j, "requests.0.model"), "models/ge-1")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "requests.1.content.parts.0.text"),
                      "world!") == 0);
    UNIT_EQ_INT(unit_ai_num(j, "requests.1.outputDimensionality"), 2);

    ngx_str_set(&body, "{\"embeddings\":[{\"values\":[0.25,1]},"
                "{\"values\":[-0.5,0]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_OK);
    UNIT_EQ_STR(out.body, "{\"object\":\"list\",\"data\":["
                "{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.25,1]},"
                "{\"object\":\"embedding\",\"index\":1,"
                "\"embedding\":[-0.5,0]}],\"model\":\"google/ge-1\","
                "\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}");
    UNIT_CHECK(!out.usage.known);

    ngx_str_set(&body, "{\"embeddings\":[{\"values\":[1]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_DECLINED);
    ngx_str_set(&body, "{\"embeddings\":[{\"values\":\"AACAPw==\"},"
                "{\"values\":[1]}]}");
    UNIT_EQ_INT(t->embed_response(unit_pool(), &req, body.data, body.len,
                                  &out, &err), NGX_DECLINED);

    /* tokens: no Gemini form */
    UNIT_EQ_INT(embed_parse("{\"model\":\"google/ge-1\",\"input\":[1,2]}",
                            &req, &err), NGX_OK);
    set_target(&req, "ge-1");
    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err), NGX_DECLINED);
    UNIT_EQ_INT(err.status, 400);
}


UNIT_TEST(count_translators)
{
    cJSON                      *j;
    ngx_str_t                   body, conv;
    ngx_ai_error_t              err;
    ngx_ai_response_t           out;
    ngx_ai_chat_request_t      *req;
    ngx_ai_upstream_request_t   up;

    ngx_str_set(&body, "{\"model\":\"anthropic/claude\",\"system\":\"terse\","
                "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    UNIT_EQ_INT(ngx_ai_messages_count_request(unit_pool(), body.data,
                                              body.len, &conv, &err),
                NGX_OK);
    UNIT_CHECK(memmem(conv.data, conv.len, "max_tokens", 10) == NULL);

    /* a Messages request would need max_tokens */
    UNIT_EQ_INT(ngx_ai_messages_request(unit_pool(), body.data, body.len,
                                        &conv, &err), NGX_DECLINED);

    req = unit_ai_chat("{\"model\":\"anthropic/claude\",\"max_tokens\":5,"
                       "\"temperature\":0.5,\"messages\":["
                       "{\"role\":\"system\",\"content\":\"terse\"},"
                       "{\"role\":\"user\",\"content\":\"Hi\"}]}");
    if (req == NULL) {
        return;
    }

    req->op = NGX_AI_OP_COUNT;
    set_target(req, "claude");

    UNIT_EQ_INT(ngx_ai_anthropic_translator.count_request(unit_pool(), req,
                                                          &up, &err),
                NGX_OK);
    UNIT_EQ_STR(up.path, "/v1/messages/count_tokens");
    j = unit_json(&up.body);
    UNIT_CHECK(strcmp(unit_ai_str(j, "model"), "claude") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "system"), "terse") == 0);
    UNIT_CHECK(unit_ai_path(j, "max_tokens") == NULL);
    UNIT_CHECK(unit_ai_path(j, "temperature") == NULL);

    ngx_str_set(&body, "{\"input_tokens\":42}");
    UNIT_EQ_INT(ngx_ai_anthropic_translator.count_response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_OK);
    UNIT_EQ_STR(out.body, "{\"input_tokens\":42}");
    UNIT_CHECK(out.usage.known);
    UNIT_EQ_INT(out.usage.prompt_tokens, 0);

    ngx_str_set(&body, "{\"input_tokens\":-1}");
    UNIT_EQ_INT(ngx_ai_anthropic_translator.count_response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_DECLINED);

    set_target(req, "gem");
    UNIT_EQ_INT(ngx_ai_gemini_translator.count_request(unit_pool(), req,
                                                       &up, &err),
                NGX_OK);
    UNIT_EQ_STR(up.path, "/v1beta/models/gem:countTokens");
    j = unit_json(&up.body);
    UNIT_CHECK(strcmp(unit_ai_str(j, "generateContentRequest.model"),
                      "models/gem") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
               "generateContentRequest.contents.0.parts.0.text"), "Hi") == 0);
    UNIT_CHECK(unit_ai_path(j, "generateContentRequest.generationConfig")
               == NULL);

    ngx_str_set(&body, "{\"totalTokens\":7,\"promptTokensDetails\":[]}");
    UNIT_EQ_INT(ngx_ai_gemini_translator.count_response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_OK);
    UNIT_EQ_STR(out.body, "{\"input_tokens\":7}");

    ngx_str_set(&body, "{\"totalTokens\":\"7\"}");
    UNIT_EQ_INT(ngx_ai_gemini_translator.count_response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_DECLINED);
}


UNIT_TEST(route_endpoints)
{
    ngx_str_t        id;
    ngx_ai_route_t  *rt;

#define ROUTE(s)  ngx_ai_route_find((u_char *) s, sizeof(s) - 1)

    UNIT_EQ_INT(ROUTE("/v1/embeddings")->op, NGX_AI_OP_EMBED);
    rt = ROUTE("/v1/messages/count_tokens");
    UNIT_EQ_INT(rt->op, NGX_AI_OP_COUNT);
    UNIT_CHECK(rt->dialect == &ngx_ai_messages_count_dialect);
    UNIT_EQ_INT(ROUTE("/v1/messages")->op, NGX_AI_OP_CHAT);
    UNIT_EQ_INT(ROUTE("/v1/messages/other")->op, NGX_AI_OP_UNKNOWN);
    UNIT_EQ_INT(ROUTE("/v1/models")->op, NGX_AI_OP_MODELS);
    UNIT_EQ_INT(ROUTE("/v1/models/")->op, NGX_AI_OP_UNKNOWN);
    UNIT_EQ_INT(ROUTE("/ai/v1/models/openai/gpt-4o")->op, NGX_AI_OP_MODEL);

    UNIT_EQ_INT(ngx_ai_route_model_id((u_char *) "/v1/models/a/b", 14, &id),
                NGX_OK);
    UNIT_EQ_STR(id, "a/b");
    UNIT_EQ_INT(ngx_ai_route_model_id((u_char *) "/v1/models/", 11, &id),
                NGX_DECLINED);

#undef ROUTE
}
