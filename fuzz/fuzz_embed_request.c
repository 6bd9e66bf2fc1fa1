
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a client's embeddings request body:
 * ngx_ai_embed_request_parse(), then, for a request taken, the openai-type
 * and gemini-type translators' embed_request() (whose body must be one
 * JSON object; a gemini refusal a 400).  A request refused is a 400 with
 * a renderable error.
 */


#include "fuzz.h"


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

        rc = ngx_ai_gemini_translator.embed_request(pool, &req, &up, &err);

        if (rc == NGX_OK) {
            fuzz_check_json("gemini embed_request", up.body.data,
                            up.body.len, 1);

        } else if (rc != NGX_DECLINED || err.status != 400) {
            fuzz_fail("gemini embed_request: rc %ld", (long) rc);
        }

    } else {
        fuzz_fail("embed request: rc %ld", (long) rc);
    }

    ngx_destroy_pool(pool);

    return 0;
}
