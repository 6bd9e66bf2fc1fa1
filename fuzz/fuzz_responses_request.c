
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a client's OpenAI Responses request body (the inbound
 * Responses API).  ngx_ai_responses_request() on the bytes: a refusal
 * must be a 400 that renders as an OpenAI error object; what it accepts
 * must be one JSON object, which then goes through the chat request path
 * as the handler sends it (fuzz_chat_body()).
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_int_t        rc;
    ngx_str_t        out, rendered;
    ngx_uint_t       utf8;
    ngx_pool_t      *pool;
    ngx_ai_error_t   err;

    pool = fuzz_pool();
    utf8 = fuzz_utf8_valid(data, size);

    ngx_memzero(&err, sizeof(ngx_ai_error_t));
    ngx_str_null(&out);

    rc = ngx_ai_responses_request(pool, (u_char *) data, size, &out, &err);

    if (rc == NGX_ERROR) {
        fuzz_fail("responses request: NGX_ERROR");
    }

    if (rc == NGX_DECLINED) {
        if (err.status != 400) {
            fuzz_fail("responses request: a refusal gives %lu, not 400",
                      (unsigned long) err.status);
        }

        fuzz_check_error(pool, "responses request", &err, utf8);

        if (ngx_ai_error_render(pool, &err, &rendered) != NGX_OK) {
            fuzz_fail("responses request: error not rendered");
        }

        fuzz_check_json("responses error", rendered.data, rendered.len, 1);

        ngx_destroy_pool(pool);
        return 0;
    }

    fuzz_check_json("responses request", out.data, out.len, 1);

    if (utf8 && !fuzz_utf8_valid(out.data, out.len)) {
        fuzz_fail("responses request: UTF-8 in, not UTF-8 out: \"%.*s\"",
                  (int) out.len, out.data);
    }

    fuzz_chat_body(pool, out.data, out.len);

    ngx_destroy_pool(pool);

    return 0;
}
