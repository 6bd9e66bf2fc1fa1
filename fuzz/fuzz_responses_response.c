
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a chat.completion turned into a response object for the
 * inbound Responses API (ngx_ai_responses_response()).  For an
 * openai-type provider that body is the provider's own.  Byte 0: bit 0,
 * the gateway knows the usage; the rest is the body.  What it gives must
 * be one JSON object of object "response" with an "output" array whose
 * items have ids.
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON           *json, *type, *item, *output;
    u_char          *body;
    ngx_int_t        rc;
    ngx_str_t        out;
    ngx_pool_t      *pool;
    ngx_ai_usage_t   usage;

    if (size < 1) {
        return 0;
    }

    pool = fuzz_pool();

    ngx_memzero(&usage, sizeof(ngx_ai_usage_t));
    usage.prompt_tokens = 12;
    usage.completion_tokens = 34;
    usage.cached_tokens = 5;
    usage.cache_creation_tokens = 6;
    usage.known = 1;

    /* the gateway's body buffer is never NULL, even for no bytes */

    body = (u_char *) (size > 1 ? data + 1 : (const uint8_t *) "");

    rc = ngx_ai_responses_response(pool, body, size - 1,
                                  (data[0] & 1) ? &usage : NULL, &out);

    if (rc == NGX_ERROR) {
        fuzz_fail("responses response: NGX_ERROR");
    }

    if (rc == NGX_OK) {
        fuzz_check_json("responses response", out.data, out.len, 1);

        if (fuzz_utf8_valid(body, size - 1)
            && !fuzz_utf8_valid(out.data, out.len))
        {
            fuzz_fail("responses response: UTF-8 in, not UTF-8 out: "
                      "\"%.*s\"", (int) out.len, out.data);
        }

        json = cJSON_ParseWithLength((char *) out.data, out.len);
        type = cJSON_GetObjectItemCaseSensitive(json, "object");
        output = cJSON_GetObjectItemCaseSensitive(json, "output");

        if (!cJSON_IsString(type)
            || strcmp(type->valuestring, "response") != 0
            || !cJSON_IsArray(output))
        {
            cJSON_Delete(json);
            fuzz_fail("responses response: not a response: \"%.*s\"",
                      (int) out.len, out.data);
        }

        cJSON_ArrayForEach(item, output) {
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item, "id"))
                || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item,
                                                                "type")))
            {
                cJSON_Delete(json);
                fuzz_fail("responses response: an item without id or "
                          "type: \"%.*s\"", (int) out.len, out.data);
            }
        }

        cJSON_Delete(json);
    }

    ngx_destroy_pool(pool);

    return 0;
}
