
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: what fusion reads from model answers.  A judge's verdict
 * (ngx_ai_judge_verdict(): a JSON {"winner":N} or free text naming one
 * source) must be 0 or a source 1..n; a verdict {"winner":K} with K in
 * 1..n must be K.  A vote key (ngx_ai_vote_key()) is no longer than the
 * answer, and its own key no longer than it.  Byte 0: n = 1 + byte % 8;
 * the rest is the answer text.
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        json[64];
    ngx_str_t   answer, key, again;
    ngx_uint_t  n, v, k;
    ngx_pool_t *pool;

    if (size < 1) {
        return 0;
    }

    n = 1 + data[0] % 8;

    v = ngx_ai_judge_verdict(data + 1, size - 1, n);

    if (v > n) {
        fuzz_fail("judge: verdict %lu of %lu sources", (unsigned long) v,
                  (unsigned long) n);
    }

    k = 1 + (size % n);
    snprintf(json, sizeof(json), "{\"winner\": %lu}", (unsigned long) k);

    if (ngx_ai_judge_verdict((u_char *) json, ngx_strlen(json), n) != k) {
        fuzz_fail("judge: %s is not source %lu", json, (unsigned long) k);
    }

    pool = fuzz_pool();

    answer.data = (u_char *) data + 1;
    answer.len = size - 1;

    if (ngx_ai_vote_key(pool, &answer, &key) != NGX_OK) {
        fuzz_fail("vote key: NGX_ERROR");
    }

    if (key.len > answer.len) {
        fuzz_fail("vote key longer than the answer");
    }

    /* a key is a normal form: it is its own key */

    if (ngx_ai_vote_key(pool, &key, &again) != NGX_OK
        || again.len != key.len
        || ngx_memcmp(again.data, key.data, key.len) != 0)
    {
        fuzz_fail("vote key: \"%.*s\" has the key \"%.*s\"",
                  (int) key.len, key.data, (int) again.len, again.data);
    }

    ngx_destroy_pool(pool);

    return 0;
}
