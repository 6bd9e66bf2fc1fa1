
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: the client key file of ai_keys
 * (ngx_ai_gateway_keys_file.c), read from bytes on disk at start and on
 * reload.
 *
 * Checks: the parser accepts or refuses (with a reason and a line of the
 * file); every entry it gives is of a known type, on a line of the file,
 * in order, with a valid name (and team), a plain key of printable ASCII
 * of 8 to 256 bytes or none, models= entries within bounds and "*" only
 * last, rates in bounds, a budget figure of digits and dots; the checks
 * across lines (each plain key's digest made from its bytes) accept or
 * refuse naming two lines of entries; each entry's own models match the
 * models they name.
 */


#include "fuzz.h"
#include "ngx_ai_gateway_keys_file.h"


static void
fuzz_keys_entry(ngx_ai_key_entry_t *e, ngx_uint_t lines, ngx_uint_t prev)
{
    size_t      i;
    ngx_str_t  *m;
    ngx_uint_t  j;

    if (e->type != NGX_AI_KEY_LINE && e->type != NGX_AI_KEY_TEAM) {
        fuzz_fail("keys: an entry of type %lu", (unsigned long) e->type);
    }

    if (e->line == 0 || e->line > lines || e->line <= prev) {
        fuzz_fail("keys: an entry at line %lu of %lu (after %lu)",
                  (unsigned long) e->line, (unsigned long) lines,
                  (unsigned long) prev);
    }

    if (!ngx_ai_keys_valid_name(e->name.data, e->name.len)
        || (e->team.len
            && !ngx_ai_keys_valid_name(e->team.data, e->team.len)))
    {
        fuzz_fail("keys: line %lu: an invalid name or team",
                  (unsigned long) e->line);
    }

    if (e->plain.len
        && (e->plain.len < NGX_AI_KEY_MIN_PLAIN
            || e->plain.len > NGX_AI_KEY_MAX_PLAIN))
    {
        fuzz_fail("keys: line %lu: a plain key of %lu bytes",
                  (unsigned long) e->line, (unsigned long) e->plain.len);
    }

    for (i = 0; i < e->plain.len; i++) {
        if (e->plain.data[i] < 0x21 || e->plain.data[i] > 0x7e) {
            fuzz_fail("keys: line %lu: a plain key byte %02x",
                      (unsigned long) e->line, e->plain.data[i]);
        }
    }

    if (e->rpm > NGX_AI_KEY_MAX_RATE || e->tpm > NGX_AI_KEY_MAX_RATE
        || e->period > NGX_AI_KEY_MONTH)
    {
        fuzz_fail("keys: line %lu: rates or period out of bounds",
                  (unsigned long) e->line);
    }

    for (i = 0; i < e->budget.len; i++) {
        if ((e->budget.data[i] < '0' || e->budget.data[i] > '9')
            && e->budget.data[i] != '.')
        {
            fuzz_fail("keys: line %lu: a budget byte %02x",
                      (unsigned long) e->line, e->budget.data[i]);
        }
    }

    if (e->type == NGX_AI_KEY_TEAM
        && (e->budget.len == 0 || e->models || e->rpm || e->tpm
            || e->expires || e->team.len || e->plain.len))
    {
        fuzz_fail("keys: line %lu: a team line with more than a budget",
                  (unsigned long) e->line);
    }

    if (e->models == NULL) {
        return;
    }

    if (e->models->nelts == 0 || e->models->nelts > NGX_AI_KEY_MAX_MODELS) {
        fuzz_fail("keys: line %lu: %lu models", (unsigned long) e->line,
                  (unsigned long) e->models->nelts);
    }

    m = e->models->elts;

    for (j = 0; j < e->models->nelts; j++) {
        if (m[j].len == 0 || m[j].len > NGX_AI_MAX_MODEL_LEN) {
            fuzz_fail("keys: line %lu: a model of %lu bytes",
                      (unsigned long) e->line, (unsigned long) m[j].len);
        }

        for (i = 0; i + 1 < m[j].len; i++) {
            if (m[j].data[i] == '*' || m[j].data[i] == ',') {
                fuzz_fail("keys: line %lu: \"*\" or \",\" inside a model",
                          (unsigned long) e->line);
            }
        }

        if (!ngx_ai_keys_model_allowed(m, e->models->nelts, m[j].data,
                                       m[j].len))
        {
            fuzz_fail("keys: line %lu: a model its own list refuses",
                      (unsigned long) e->line);
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char               *buf;
    size_t                i;
    ngx_int_t             rc;
    ngx_uint_t            lines, prev, k;
    ngx_pool_t           *pool;
    ngx_array_t           entries;
    ngx_ai_key_entry_t   *e;
    ngx_ai_keys_error_t   err;

    pool = fuzz_pool();

    /* exactly size bytes: ASan sees a read past the end */
    buf = ngx_pnalloc(pool, size ? size : 1);
    if (buf == NULL
        || ngx_array_init(&entries, pool, 2, sizeof(ngx_ai_key_entry_t))
           != NGX_OK)
    {
        fuzz_fail("no memory");
    }

    ngx_memcpy(buf, data, size);

    for (lines = 0, i = 0; i < size; i++) {
        if (buf[i] == '\n') {
            lines++;
        }
    }

    if (size && buf[size - 1] != '\n') {
        lines++;
    }

    ngx_memzero(&err, sizeof(err));

    rc = ngx_ai_keys_parse(pool, buf, size, &entries, &err);

    if (rc == NGX_DECLINED) {
        if (err.why == NULL || err.why[0] == '\0' || err.line == 0
            || err.line > lines)
        {
            fuzz_fail("keys: refused at line %lu of %lu: \"%s\"",
                      (unsigned long) err.line, (unsigned long) lines,
                      err.why ? err.why : "");
        }

        goto done;
    }

    if (rc != NGX_OK) {
        fuzz_fail("keys: parse rc %ld", (long) rc);
    }

    e = entries.elts;
    prev = 0;

    for (k = 0; k < entries.nelts; k++) {
        fuzz_keys_entry(&e[k], lines, prev);
        prev = e[k].line;

        if (e[k].plain.len) {
            ngx_memzero(e[k].digest, NGX_AI_KEY_DIGEST_LEN);
            ngx_memcpy(e[k].digest, e[k].plain.data,
                       ngx_min(e[k].plain.len, NGX_AI_KEY_DIGEST_LEN));
        }
    }

    rc = ngx_ai_keys_check(pool, &entries, &err);

    if (rc == NGX_DECLINED) {
        if (err.why == NULL || err.line == 0 || err.line > lines
            || err.other == 0 || err.other >= err.line)
        {
            fuzz_fail("keys: check refused at lines %lu, %lu of %lu",
                      (unsigned long) err.line, (unsigned long) err.other,
                      (unsigned long) lines);
        }

    } else if (rc != NGX_OK) {
        fuzz_fail("keys: check rc %ld", (long) rc);
    }

done:

    ngx_destroy_pool(pool);

    return 0;
}
