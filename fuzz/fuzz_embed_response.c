
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a provider's embeddings answer, translated to OpenAI's
 * list by the openai-type and gemini-type translators' embed_response(),
 * for a fixed request of two inputs, asked as floats or as base64 (the
 * first byte chooses).  An answer taken is one JSON object, UTF-8 in
 * gives UTF-8 out; one refused is a 502 with a renderable error.
 */


#include "fuzz.h"


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

    if (size == 0) {
        return 0;
    }

    pool = fuzz_pool();

    tr = (data[0] & 1) ? &ngx_ai_gemini_translator
                       : &ngx_ai_openai_translator;

    req = fuzz_embed_request(pool, (data[0] & 2)
                             ? "{\"model\":\"p/m\",\"input\":[\"a\",\"bc\"],"
                               "\"encoding_format\":\"base64\"}"
                             : "{\"model\":\"p/m\",\"input\":[\"a\",\"bc\"]}",
                             "m");

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
