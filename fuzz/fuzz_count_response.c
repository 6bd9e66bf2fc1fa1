
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a provider's token count, translated to Anthropic's
 * {"input_tokens":N} by the anthropic-type and gemini-type translators'
 * count_response() (the first byte chooses).  An answer taken is exactly
 * that object with usage known and zero (a count costs nothing); one
 * refused is a 502 with a renderable error.
 */


#include "fuzz.h"


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
                       : &ngx_ai_anthropic_translator;

    req = fuzz_chat(pool, "p/m", 0, 0);
    req->op = NGX_AI_OP_COUNT;

    body = (u_char *) (size > 1 ? data + 1 : (const uint8_t *) "");
    size--;

    ngx_memzero(&err, sizeof(ngx_ai_error_t));

    rc = tr->count_response(pool, req, body, size, &out, &err);

    utf8 = fuzz_utf8_valid(body, size);

    if (rc == NGX_OK) {
        fuzz_check_json("count_response", out.body.data, out.body.len, 1);

        if (out.body.len < sizeof("{\"input_tokens\":0}") - 1
            || ngx_strncmp(out.body.data, "{\"input_tokens\":",
                           sizeof("{\"input_tokens\":") - 1) != 0
            || !out.usage.known || out.usage.prompt_tokens
            || out.usage.completion_tokens)
        {
            fuzz_fail("count_response: \"%.*s\"", (int) out.body.len,
                      out.body.data);
        }

    } else if (rc == NGX_DECLINED) {
        if (err.status != 502) {
            fuzz_fail("count_response: refused with %lu, not 502",
                      (unsigned long) err.status);
        }

        fuzz_check_error(pool, "count_response", &err, utf8);

    } else {
        fuzz_fail("count_response: rc %ld", (long) rc);
    }

    ngx_destroy_pool(pool);

    return 0;
}
