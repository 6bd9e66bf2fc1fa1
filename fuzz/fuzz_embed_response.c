
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a provider's embeddings answer, translated to OpenAI's
 * list by an embed_response(): openai, gemini, Vertex AI's :predict,
 * Bedrock's Titan (a request of one input) or Cohere, for a fixed request
 * of two inputs, asked as floats or as base64.  The first byte chooses:
 * its value mod 5 the translator, the next bit base64, the one after
 * whether the answer's headers counted the input tokens.  An answer taken
 * is one JSON object, UTF-8 in gives UTF-8 out; one refused is a 502 with
 * a renderable error.
 */


#include "fuzz.h"


typedef struct {
    ngx_ai_translator_t        *translator;  /* NULL: Vertex's */
    const char                 *upstream;
    const char                 *body[2];     /* floats, base64 */
} fuzz_embed_case_t;


#define FUZZ_TWO   "{\"model\":\"p/m\",\"input\":[\"a\",\"bc\"]"
#define FUZZ_ONE   "{\"model\":\"p/m\",\"input\":\"abc\""
#define FUZZ_B64   ",\"encoding_format\":\"base64\"}"

static fuzz_embed_case_t  fuzz_embed_cases[] = {
    { &ngx_ai_openai_translator, "m", { FUZZ_TWO "}", FUZZ_TWO FUZZ_B64 } },
    { &ngx_ai_gemini_translator, "m", { FUZZ_TWO "}", FUZZ_TWO FUZZ_B64 } },
    { NULL, "m", { FUZZ_TWO "}", FUZZ_TWO FUZZ_B64 } },
    { &ngx_ai_bedrock_translator, "amazon.titan-embed-text-v2:0",
      { FUZZ_ONE "}", FUZZ_ONE FUZZ_B64 } },
    { &ngx_ai_bedrock_translator, "cohere.embed-v4:0",
      { FUZZ_TWO "}", FUZZ_TWO FUZZ_B64 } }
};

static ngx_ai_translator_t  fuzz_vertex;


static ngx_ai_chat_request_t *
fuzz_embed_request(ngx_pool_t *pool, const char *body, const char *upstream)
{
    size_t                  len;
    u_char                 *p;
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t  *req;

    len = strlen(body);
    p = ngx_pnalloc(pool, len);
    req = ngx_pcalloc(pool, sizeof(ngx_ai_chat_request_t));

    if (p == NULL || req == NULL) {
        fuzz_fail("out of memory");
    }

    ngx_memcpy(p, body, len);

    if (ngx_ai_embed_request_parse(pool, p, len, req, &err) != NGX_OK) {
        fuzz_fail("the fixed embeddings request is refused");
    }

    req->upstream_model.data = (u_char *) upstream;
    req->upstream_model.len = strlen(upstream);

    return req;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                 *body;
    ngx_int_t               rc;
    ngx_uint_t              utf8;
    ngx_pool_t             *pool;
    ngx_ai_error_t          err;
    ngx_ai_response_t       out;
    ngx_ai_translator_t    *tr;
    ngx_ai_chat_request_t  *req;
    const fuzz_embed_case_t  *c;

    if (size == 0) {
        return 0;
    }

    pool = fuzz_pool();

    c = &fuzz_embed_cases[data[0] % 5];
    tr = c->translator;

    if (tr == NULL) {
        fuzz_vertex = ngx_ai_gemini_translator;
        fuzz_vertex.embed_request = ngx_ai_vertex_embed_request;
        fuzz_vertex.embed_response = ngx_ai_vertex_embed_response;
        tr = &fuzz_vertex;
    }

    req = fuzz_embed_request(pool, c->body[(data[0] / 5) & 1], c->upstream);

    /* a count from the answer's headers (Bedrock's), or none */
    req->header_tokens = (data[0] / 10) & 1;
    req->header_input_tokens = data[0];

    body = (u_char *) (size > 1 ? data + 1 : (const uint8_t *) "");
    size--;

    ngx_memzero(&err, sizeof(ngx_ai_error_t));

    rc = tr->embed_response(pool, req, body, size, &out, &err);

    utf8 = fuzz_utf8_valid(body, size);

    if (rc == NGX_OK) {
        fuzz_check_json("embed_response", out.body.data, out.body.len, 1);

        if (utf8 && !fuzz_utf8_valid(out.body.data, out.body.len)) {
            fuzz_fail("embed_response: UTF-8 in, not UTF-8 out");
        }

    } else if (rc == NGX_DECLINED) {
        if (err.status != 502) {
            fuzz_fail("embed_response: refused with %lu, not 502",
                      (unsigned long) err.status);
        }

        fuzz_check_error(pool, "embed_response", &err, utf8);

    } else {
        fuzz_fail("embed_response: rc %ld", (long) rc);
    }

    ngx_destroy_pool(pool);

    return 0;
}
