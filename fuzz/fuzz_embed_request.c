
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a client's embeddings request body:
 * ngx_ai_embed_request_parse(), then, for a request taken, the openai,
 * gemini, Vertex and Bedrock (Titan, Cohere) embed_request()s (whose body
 * must be one JSON object; a refusal a 400).  A request refused is a 400 with
 * a renderable error.
 */


#include "fuzz.h"


typedef ngx_int_t (*fuzz_embed_pt)(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out,
    ngx_ai_error_t *err);


/* a translator that may refuse (a 400) what OpenAI's takes */

static void
fuzz_embed_one(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    const char *name, fuzz_embed_pt embed, const char *upstream)
{
    ngx_int_t                   rc;
    ngx_ai_error_t              err;
    ngx_ai_upstream_request_t   up;

    req->upstream_model.data = (u_char *) upstream;
    req->upstream_model.len = ngx_strlen(upstream);

    ngx_memzero(&err, sizeof(ngx_ai_error_t));

    rc = embed(pool, req, &up, &err);

    if (rc == NGX_OK) {
        fuzz_check_json(name, up.body.data, up.body.len, 1);

    } else if (rc != NGX_DECLINED || err.status != 400) {
        fuzz_fail("%s embed_request: rc %ld", name, (long) rc);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                     *body;
    ngx_int_t                   rc;
    ngx_uint_t                  utf8;
    ngx_pool_t                 *pool;
    ngx_ai_error_t              err;
    ngx_ai_chat_request_t       req;
    ngx_ai_upstream_request_t   up;

    pool = fuzz_pool();

    /* the request's bytes outlive the parse, as the client body does */

    body = ngx_pnalloc(pool, size + 1);
    if (body == NULL) {
        fuzz_fail("out of memory");
    }

    ngx_memcpy(body, data, size);

    ngx_memzero(&err, sizeof(ngx_ai_error_t));

    rc = ngx_ai_embed_request_parse(pool, body, size, &req, &err);

    utf8 = fuzz_utf8_valid(body, size);

    if (rc == NGX_DECLINED) {
        if (err.status != 400) {
            fuzz_fail("embed request: refused with %lu, not 400",
                      (unsigned long) err.status);
        }

        fuzz_check_error(pool, "embed request", &err, utf8);

    } else if (rc == NGX_OK) {
        ngx_str_set(&req.upstream_model, "m");

        if (ngx_ai_openai_translator.embed_request(pool, &req, &up, &err)
            != NGX_OK)
        {
            fuzz_fail("openai embed_request failed");
        }

        fuzz_check_json("openai embed_request", up.body.data, up.body.len,
                        1);

        fuzz_embed_one(pool, &req, "gemini",
                       ngx_ai_gemini_translator.embed_request, "m");
        fuzz_embed_one(pool, &req, "vertex", ngx_ai_vertex_embed_request,
                       "m");
        fuzz_embed_one(pool, &req, "titan",
                       ngx_ai_bedrock_translator.embed_request,
                       "amazon.titan-embed-text-v2:0");
        fuzz_embed_one(pool, &req, "cohere",
                       ngx_ai_bedrock_translator.embed_request,
                       "cohere.embed-v4:0");

    } else {
        fuzz_fail("embed request: rc %ld", (long) rc);
    }

    ngx_destroy_pool(pool);

    return 0;
}
