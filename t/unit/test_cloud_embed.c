
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: embeddings on the clouds: Vertex AI's :predict
 * (ngx_ai_vertex_embed_request/response in ngx_ai_gateway_cloud.c) and
 * Bedrock's InvokeModel for Amazon Titan and Cohere (the bedrock
 * translator's embed_* members).
 */


#include "unit.h"


cJSON *unit_ai_path(cJSON *root, const char *path);
const char *unit_ai_str(cJSON *root, const char *path);
double unit_ai_num(cJSON *root, const char *path);


static ngx_int_t
ce_parse(const char *body, const char *upstream, ngx_ai_chat_request_t *req)
{
    size_t           len;
    u_char          *p;
    ngx_int_t        rc;
    ngx_ai_error_t   err;

    len = strlen(body);
    p = ngx_pnalloc(unit_pool(), len + 1);
    memcpy(p, body, len + 1);

    rc = ngx_ai_embed_request_parse(unit_pool(), p, len, req, &err);

    req->upstream_model.data = (u_char *) upstream;
    req->upstream_model.len = strlen(upstream);

    return rc;
}


static ngx_int_t
ce_answer(ngx_ai_translator_t *t, ngx_ai_chat_request_t *req,
    const char *body, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    return t->embed_response(unit_pool(), req, (u_char *) body, strlen(body),
                             out, err);
}


static ngx_ai_translator_t  ce_vertex;


UNIT_TEST(embed_vertex)
{
    cJSON                      *j;
    ngx_ai_error_t              err;
    ngx_ai_response_t           out;
    ngx_ai_chat_request_t       req;
    ngx_ai_upstream_request_t   up;

    /* the translator type=vertex builds: Gemini's, with :predict */
    ce_vertex = ngx_ai_gemini_translator;
    ce_vertex.embed_request = ngx_ai_vertex_embed_request;
    ce_vertex.embed_response = ngx_ai_vertex_embed_response;

    UNIT_EQ_INT(ce_parse("{\"model\":\"v/text-embedding-005\",\"input\":"
                         "[\"hello\",\"world!\"],\"dimensions\":2}",
                         "text-embedding-005", &req), NGX_OK);
    UNIT_EQ_INT(ce_vertex.embed_request(unit_pool(), &req, &up, &err),
                NGX_OK);
    UNIT_EQ_STR(up.path, "/v1beta/models/text-embedding-005:predict");
    j = unit_json(&up.body);
    UNIT_CHECK(strcmp(unit_ai_str(j, "instances.0.content"), "hello") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "instances.1.content"), "world!") == 0);
    UNIT_CHECK(unit_ai_path(j, "instances.2") == NULL);
    UNIT_EQ_INT(unit_ai_num(j, "parameters.outputDimensionality"), 2);
    UNIT_CHECK(cJSON_IsFalse(unit_ai_path(j, "parameters.autoTruncate")));

    /* exact usage: the sum of the token counts */
    UNIT_EQ_INT(ce_answer(&ce_vertex, &req,
                          "{\"predictions\":[{\"embeddings\":{\"values\":"
                          "[0.25,1],\"statistics\":{\"token_count\":2,"
                          "\"truncated\":false}}},{\"embeddings\":{"
                          "\"values\":[-0.5,0],\"statistics\":{"
                          "\"token_count\":3}}}],\"metadata\":{}}",
                          &out, &err), NGX_OK);
    UNIT_EQ_STR(out.body, "{\"object\":\"list\",\"data\":["
                "{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.25,1]},"
                "{\"object\":\"embedding\",\"index\":1,"
                "\"embedding\":[-0.5,0]}],\"model\":\"v/text-embedding-005\","
                "\"usage\":{\"prompt_tokens\":5,\"total_tokens\":5}}");
    UNIT_CHECK(out.usage.known);
    UNIT_EQ_INT(out.usage.prompt_tokens, 5);

    /* a count missing: the estimate, not known */
    UNIT_EQ_INT(ce_answer(&ce_vertex, &req,
                          "{\"predictions\":[{\"embeddings\":{\"values\":"
                          "[1],\"statistics\":{\"token_count\":2}}},"
                          "{\"embeddings\":{\"values\":[2]}}]}",
                          &out, &err), NGX_OK);
    UNIT_CHECK(!out.usage.known);
    UNIT_CONTAINS(out.body, "\"prompt_tokens\":2,");

    /* hostile answers: 502, nothing charged from them */
    UNIT_EQ_INT(ce_answer(&ce_vertex, &req, "{\"predictions\":[{"
                          "\"embeddings\":{\"values\":[1]}}]}", &out, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(err.status, 502);
    UNIT_EQ_INT(ce_answer(&ce_vertex, &req, "{\"predictions\":[{"
                          "\"embeddings\":{\"values\":\"AACAPw==\"}},{"
                          "\"embeddings\":{\"values\":[1]}}]}", &out, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(ce_answer(&ce_vertex, &req, "{\"predictions\":[{"
                          "\"embeddings\":{\"values\":[]}},{"
                          "\"embeddings\":{\"values\":[1]}}]}", &out, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(ce_answer(&ce_vertex, &req, "{\"predictions\":{}}", &out,
                          &err), NGX_DECLINED);
    UNIT_EQ_INT(ce_answer(&ce_vertex, &req, "not json", &out, &err),
                NGX_DECLINED);

    /* a count past any bound is not believed */
    UNIT_EQ_INT(ce_answer(&ce_vertex, &req,
                          "{\"predictions\":[{\"embeddings\":{\"values\":"
                          "[1],\"statistics\":{\"token_count\":1e30}}},"
                          "{\"embeddings\":{\"values\":[2],\"statistics\":"
                          "{\"token_count\":1}}}]}", &out, &err), NGX_OK);
    UNIT_CHECK(!out.usage.known);

    /* one string, base64 asked: floats made base64 by the gateway */
    UNIT_EQ_INT(ce_parse("{\"model\":\"v/te\",\"input\":\"x\","
                         "\"encoding_format\":\"base64\"}", "te", &req),
                NGX_OK);
    UNIT_EQ_INT(ce_vertex.embed_request(unit_pool(), &req, &up, &err),
                NGX_OK);
    j = unit_json(&up.body);
    UNIT_CHECK(unit_ai_path(j, "parameters.outputDimensionality") == NULL);
    UNIT_EQ_INT(ce_answer(&ce_vertex, &req, "{\"predictions\":[{"
                          "\"embeddings\":{\"values\":[1]}}]}", &out, &err),
                NGX_OK);
    UNIT_CONTAINS(out.body, "\"embedding\":\"AACAPw==\"");

    /* tokens: no Vertex form */
    UNIT_EQ_INT(ce_parse("{\"model\":\"v/te\",\"input\":[1,2]}", "te", &req),
                NGX_OK);
    UNIT_EQ_INT(ce_vertex.embed_request(unit_pool(), &req, &up, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(err.status, 400);
}


UNIT_TEST(embed_bedrock_titan)
{
    cJSON                      *j;
    ngx_ai_error_t              err;
    ngx_ai_response_t           out;
    ngx_ai_chat_request_t       req;
    ngx_ai_upstream_request_t   up;
    ngx_ai_translator_t        *t = &ngx_ai_bedrock_translator;

    UNIT_CHECK(ngx_ai_translator_serves(t, NGX_AI_OP_EMBED));

    UNIT_EQ_INT(ce_parse("{\"model\":\"b/amazon.titan-embed-text-v2:0\","
                         "\"input\":\"hello\",\"dimensions\":256}",
                         "amazon.titan-embed-text-v2:0", &req), NGX_OK);
    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err), NGX_OK);
    UNIT_EQ_STR(up.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    j = unit_json(&up.body);
    UNIT_CHECK(strcmp(unit_ai_str(j, "inputText"), "hello") == 0);
    UNIT_EQ_INT(unit_ai_num(j, "dimensions"), 256);
    UNIT_CHECK(unit_ai_path(j, "texts") == NULL);

    UNIT_EQ_INT(ce_answer(t, &req, "{\"embedding\":[0.5,-1],"
                          "\"inputTextTokenCount\":3}", &out, &err), NGX_OK);
    UNIT_EQ_STR(out.body, "{\"object\":\"list\",\"data\":["
                "{\"object\":\"embedding\",\"index\":0,\"embedding\":"
                "[0.5,-1]}],\"model\":\"b/amazon.titan-embed-text-v2:0\","
                "\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}");
    UNIT_CHECK(out.usage.known);

    /* no count: the estimate */
    UNIT_EQ_INT(ce_answer(t, &req, "{\"embedding\":[1]}", &out, &err),
                NGX_OK);
    UNIT_CHECK(!out.usage.known);

    UNIT_EQ_INT(ce_answer(t, &req, "{\"embedding\":\"AAAA\"}", &out, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(ce_answer(t, &req, "{\"embedding\":[\"x\"]}", &out, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(ce_answer(t, &req, "{\"embeddings\":[[1]]}", &out, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(err.status, 502);

    /* one input per call; an array of one is one */
    UNIT_EQ_INT(ce_parse("{\"model\":\"b/t\",\"input\":[\"a\"]}",
                         "amazon.titan-embed-text-v1", &req), NGX_OK);
    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err), NGX_OK);
    UNIT_CHECK(strcmp(unit_ai_str(unit_json(&up.body), "inputText"), "a")
               == 0);
    UNIT_EQ_INT(ce_parse("{\"model\":\"b/t\",\"input\":[\"a\",\"b\"]}",
                         "amazon.titan-embed-text-v1", &req), NGX_OK);
    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(err.status, 400);
    UNIT_CONTAINS(err.message, "one input per call");

    /* a model of another family, and tokens */
    UNIT_EQ_INT(ce_parse("{\"model\":\"b/c\",\"input\":\"a\"}",
                         "anthropic.claude-3-7-sonnet-20250219-v1:0", &req),
                NGX_OK);
    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err),
                NGX_DECLINED);
    UNIT_CONTAINS(err.message, "no embeddings");
    UNIT_EQ_INT(ce_parse("{\"model\":\"b/t\",\"input\":[1,2]}",
                         "amazon.titan-embed-text-v2:0", &req), NGX_OK);
    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err),
                NGX_DECLINED);
}


UNIT_TEST(embed_bedrock_cohere)
{
    cJSON                      *j;
    ngx_ai_error_t              err;
    ngx_ai_response_t           out;
    ngx_ai_chat_request_t       req;
    ngx_ai_upstream_request_t   up;
    ngx_ai_translator_t        *t = &ngx_ai_bedrock_translator;

    /* a foundation-model ARN names the family too */
    UNIT_EQ_INT(ce_parse("{\"model\":\"b/x\",\"input\":[\"ab\",\"cde\"],"
                         "\"encoding_format\":\"base64\"}",
                         "arn:aws:bedrock:us-east-1::foundation-model/"
                         "cohere.embed-english-v3", &req), NGX_OK);
    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err), NGX_OK);
    UNIT_EQ_STR(up.path, "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3A"
                "foundation-model%2Fcohere.embed-english-v3/invoke");
    j = unit_json(&up.body);
    UNIT_CHECK(strcmp(unit_ai_str(j, "texts.1"), "cde") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "input_type"), "search_document") == 0);
    UNIT_CHECK(unit_ai_path(j, "output_dimension") == NULL);

    UNIT_EQ_INT(ce_answer(t, &req, "{\"id\":\"x\",\"embeddings\":[[1],[2]],"
                          "\"response_type\":\"embeddings_floats\"}",
                          &out, &err), NGX_OK);
    UNIT_CONTAINS(out.body, "\"index\":1,\"embedding\":\"AAAAQA==\"");
    UNIT_CHECK(!out.usage.known);
    UNIT_CONTAINS(out.body, "\"prompt_tokens\":1,");

    /* by type, with Cohere's own count */
    UNIT_EQ_INT(ce_answer(t, &req, "{\"embeddings\":{\"float\":[[1],[2]]},"
                          "\"meta\":{\"billed_units\":{\"input_tokens\":4}}}",
                          &out, &err), NGX_OK);
    UNIT_CHECK(out.usage.known);
    UNIT_EQ_INT(out.usage.prompt_tokens, 4);

    UNIT_EQ_INT(ce_answer(t, &req, "{\"embeddings\":[[1]]}", &out, &err),
                NGX_DECLINED);
    UNIT_EQ_INT(ce_answer(t, &req, "{\"embeddings\":[[1],\"AAAA\"]}", &out,
                          &err), NGX_DECLINED);
    UNIT_EQ_INT(ce_answer(t, &req, "{\"embeddings\":{\"int8\":[[1],[2]]}}",
                          &out, &err), NGX_DECLINED);
    UNIT_EQ_INT(ce_answer(t, &req, "{\"embeddings\":[[1],[null]]}", &out,
                          &err), NGX_DECLINED);

    /* no count in the body: Bedrock's header, when the attempt read one */
    req.header_input_tokens = 7;
    req.header_tokens = 1;
    UNIT_EQ_INT(ce_answer(t, &req, "{\"embeddings\":[[1],[2]]}", &out, &err),
                NGX_OK);
    UNIT_CHECK(out.usage.known);
    UNIT_EQ_INT(out.usage.prompt_tokens, 7);
    UNIT_CONTAINS(out.body, "\"prompt_tokens\":7,");

    /* Cohere's own count first */
    UNIT_EQ_INT(ce_answer(t, &req, "{\"embeddings\":[[1],[2]],\"meta\":{"
                          "\"billed_units\":{\"input_tokens\":4}}}",
                          &out, &err), NGX_OK);
    UNIT_EQ_INT(out.usage.prompt_tokens, 4);

    /* dimensions go as output_dimension; one string is one text */
    UNIT_EQ_INT(ce_parse("{\"model\":\"b/x\",\"input\":\"a\","
                         "\"dimensions\":512}", "us.cohere.embed-v4:0", &req),
                NGX_OK);
    UNIT_EQ_INT(t->embed_request(unit_pool(), &req, &up, &err), NGX_OK);
    j = unit_json(&up.body);
    UNIT_EQ_INT(unit_ai_num(j, "output_dimension"), 512);
    UNIT_CHECK(strcmp(unit_ai_str(j, "texts.0"), "a") == 0);
}
