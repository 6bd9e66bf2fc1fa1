
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: the cost ledger's state file, read back at start from
 * bytes on disk (ngx_ai_cost_state_parse(), ngx_ai_gateway_state.c).
 *
 * The input is read twice: as it is, and sealed, so that most inputs
 * get past the checksum: if its last line is "end RECORDS XXXXXXXX", the
 * eight digits become the CRC32 of the bytes before that line; otherwise
 * a line feed (if it lacks one) and "end N CRC32" are appended, N the
 * number of lines that start "l " or "a ".
 *
 * Checks: a refusal gives a reason, leaves no records, and names a line
 * of the file or none; a file read has as many records as its end line
 * says, each of a known type and key flag, with no digest without a key,
 * a route and a model within the bounds the loader's ids are sized for,
 * and no model for an account.  Written back in the writer's format
 * (ngx_http_ai_cost_render(), ngx_ai_gateway_cost.c) and read again it
 * gives the same records and totals, and written again the same bytes.
 */


#include "fuzz.h"
#include "ngx_ai_gateway_state.h"


static ngx_str_t  fuzz_state_zone = ngx_string("cost");


/* a block of exactly len bytes: ASan sees a read past the end */

static u_char *
fuzz_state_copy(ngx_pool_t *pool, const u_char *p, size_t len)
{
    u_char  *copy;

    copy = ngx_pnalloc(pool, len);
    if (copy == NULL) {
        fuzz_fail("no memory for a copy");
    }

    if (len) {
        ngx_memcpy(copy, p, len);
    }

    return copy;
}


static char *
fuzz_state_parse(ngx_pool_t *pool, u_char *buf, size_t len,
    ngx_array_t *recs, uint64_t *totals)
{
    char        *why;
    size_t       i, lines;
    ngx_uint_t   line;

    /* small, so that it grows */
    if (ngx_array_init(recs, pool, 2, sizeof(ngx_ai_cost_state_rec_t))
        != NGX_OK)
    {
        fuzz_fail("no memory for the records");
    }

    line = 12345;

    why = ngx_ai_cost_state_parse(pool, buf, len, &fuzz_state_zone, recs,
                                  totals, &line);

    if (why == NULL) {
        if (line != 0) {
            fuzz_fail("state: read, with line %lu", (unsigned long) line);
        }

        return NULL;
    }

    if (why[0] == '\0') {
        fuzz_fail("state: refused without a reason");
    }

    if (recs->nelts != 0) {
        fuzz_fail("state: refused (%s) with %lu records", why,
                  (unsigned long) recs->nelts);
    }

    for (lines = 0, i = 0; i < len; i++) {
        if (buf[i] == '\n') {
            lines++;
        }
    }

    if (line > lines) {
        fuzz_fail("state: refused (%s) at line %lu of %lu", why,
                  (unsigned long) line, (unsigned long) lines);
    }

    return why;
}


/* the input with its checksum made right */

static ngx_str_t
fuzz_state_seal(ngx_pool_t *pool, const u_char *data, size_t size)
{
    u_char        *end, *last, *p, *q;
    char           line[64];
    size_t         body;
    uint32_t       crc;
    ngx_str_t      out;
    ngx_uint_t     n, spaces;
    ngx_ai_buf_t   b;

    if (ngx_ai_buf_init(&b, pool, size + 64) != NGX_OK
        || ngx_ai_buf_append(&b, data, size) != NGX_OK)
    {
        fuzz_fail("no memory for the sealed input");
    }

    /* its own end line, "end X XXXXXXXX": the eight digits replaced */

    if (size && data[size - 1] == '\n') {
        last = b.data + size - 1;

        for (end = last; end > b.data && end[-1] != '\n'; end--) {
            /* void */
        }

        spaces = 0;

        for (p = end; p < last; p++) {
            if (*p == ' ') {
                spaces++;
            }
        }

        q = last - 8;

        if (spaces == 2 && last - end >= 13
            && ngx_strncmp(end, "end ", 4) == 0 && q[-1] == ' ')
        {
            crc = ngx_crc32_long(b.data, end - b.data);
            snprintf(line, sizeof(line), "%08x", (unsigned) crc);
            ngx_memcpy(q, line, 8);

            goto done;
        }
    }

    /* else an end line of its own */

    if (size && data[size - 1] != '\n') {
        if (ngx_ai_buf_append(&b, "\n", 1) != NGX_OK) {
            fuzz_fail("no memory for the sealed input");
        }
    }

    body = b.len;
    n = 0;

    for (p = b.data; p < b.data + body; p = q + 1) {
        q = ngx_strlchr(p, b.data + body, '\n');

        if (q - p >= 2 && (p[0] == 'l' || p[0] == 'a') && p[1] == ' ') {
            n++;
        }
    }

    snprintf(line, sizeof(line), "end %lu %08x\n", (unsigned long) n,
             (unsigned) ngx_crc32_long(b.data, body));

    if (ngx_ai_buf_append_str(&b, line) != NGX_OK) {
        fuzz_fail("no memory for the sealed input");
    }

done:

    out.len = b.len;
    out.data = fuzz_state_copy(pool, b.data, b.len);

    return out;
}


/* a string as the writer puts it: "=", bytes outside 0x21-0x7e and "%"
 * as %XX (ngx_http_ai_cost_append_str()) */

static void
fuzz_state_str(ngx_ai_buf_t *b, ngx_str_t *s)
{
    u_char  c, esc[3];
    size_t  i;

    static u_char  hex[] = "0123456789ABCDEF";

    if (ngx_ai_buf_append(b, "=", 1) != NGX_OK) {
        fuzz_fail("no memory for the file written back");
    }

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c <= 0x20 || c >= 0x7f || c == '%') {
            esc[0] = '%';
            esc[1] = hex[c >> 4];
            esc[2] = hex[c & 0xf];

            if (ngx_ai_buf_append(b, esc, 3) != NGX_OK) {
                fuzz_fail("no memory for the file written back");
            }

        } else if (ngx_ai_buf_append(b, &c, 1) != NGX_OK) {
            fuzz_fail("no memory for the file written back");
        }
    }
}


static void
fuzz_state_nums(ngx_ai_buf_t *b, uint64_t *n, ngx_uint_t count)
{
    ngx_uint_t  i;

    for (i = 0; i < count; i++) {
        if (ngx_ai_buf_append(b, " ", 1) != NGX_OK
            || ngx_ai_buf_append_uint(b, n[i]) != NGX_OK)
        {
            fuzz_fail("no memory for the file written back");
        }
    }
}


/* records and totals written as ngx_http_ai_cost_save() writes them */

static ngx_str_t
fuzz_state_write(ngx_pool_t *pool, ngx_array_t *recs, uint64_t *totals)
{
    char                      line[64];
    u_char                    hex[2 * NGX_AI_COST_STATE_DIGEST_LEN];
    ngx_str_t                 out;
    ngx_uint_t                i, j;
    ngx_ai_buf_t              b;
    ngx_ai_cost_state_rec_t  *rec;

    static u_char  digits[] = "0123456789abcdef";

    if (ngx_ai_buf_init(&b, pool, 1024) != NGX_OK
        || ngx_ai_buf_append_str(&b, NGX_AI_COST_STATE_MAGIC "\nzone ")
           != NGX_OK)
    {
        fuzz_fail("no memory for the file written back");
    }

    fuzz_state_str(&b, &fuzz_state_zone);

    snprintf(line, sizeof(line), "\ntime %lu\ntotals",
             (unsigned long) FUZZ_CREATED);

    if (ngx_ai_buf_append_str(&b, line) != NGX_OK) {
        fuzz_fail("no memory for the file written back");
    }

    fuzz_state_nums(&b, totals, NGX_AI_COST_STATE_TOTALS);

    rec = recs->elts;

    for (i = 0; i < recs->nelts; i++) {
        if (ngx_ai_buf_append_str(&b, rec[i].type == NGX_AI_COST_STATE_LEDGER
                                      ? "\nl " : "\na ") != NGX_OK
            || ngx_ai_buf_append_str(&b, rec[i].keyed ? "1 " : "0 ")
               != NGX_OK)
        {
            fuzz_fail("no memory for the file written back");
        }

        if (rec[i].keyed) {
            for (j = 0; j < NGX_AI_COST_STATE_DIGEST_LEN; j++) {
                hex[2 * j] = digits[rec[i].digest[j] >> 4];
                hex[2 * j + 1] = digits[rec[i].digest[j] & 0xf];
            }

            if (ngx_ai_buf_append(&b, hex, sizeof(hex)) != NGX_OK) {
                fuzz_fail("no memory for the file written back");
            }

        } else if (ngx_ai_buf_append(&b, "-", 1) != NGX_OK) {
            fuzz_fail("no memory for the file written back");
        }

        if (ngx_ai_buf_append(&b, " ", 1) != NGX_OK) {
            fuzz_fail("no memory for the file written back");
        }

        fuzz_state_str(&b, &rec[i].route);

        if (rec[i].type == NGX_AI_COST_STATE_LEDGER) {
            if (ngx_ai_buf_append(&b, " ", 1) != NGX_OK) {
                fuzz_fail("no memory for the file written back");
            }

            fuzz_state_str(&b, &rec[i].model);
            fuzz_state_nums(&b, rec[i].n, 10);

        } else {
            fuzz_state_nums(&b, rec[i].n, 6);
        }
    }

    if (ngx_ai_buf_append(&b, "\n", 1) != NGX_OK) {
        fuzz_fail("no memory for the file written back");
    }

    snprintf(line, sizeof(line), "end %lu %08x\n",
             (unsigned long) recs->nelts,
             (unsigned) ngx_crc32_long(b.data, b.len));

    if (ngx_ai_buf_append_str(&b, line) != NGX_OK) {
        fuzz_fail("no memory for the file written back");
    }

    out.len = b.len;
    out.data = fuzz_state_copy(pool, b.data, b.len);

    return out;
}


static void
fuzz_state_check_recs(ngx_array_t *recs)
{
    ngx_uint_t                i, j;
    ngx_ai_cost_state_rec_t  *rec;

    rec = recs->elts;

    for (i = 0; i < recs->nelts; i++) {
        if (rec[i].type != NGX_AI_COST_STATE_LEDGER
            && rec[i].type != NGX_AI_COST_STATE_ACCOUNT)
        {
            fuzz_fail("state: record %lu of type %lu", (unsigned long) i,
                      (unsigned long) rec[i].type);
        }

        if (rec[i].keyed > 1) {
            fuzz_fail("state: record %lu with key flag %lu",
                      (unsigned long) i, (unsigned long) rec[i].keyed);
        }

        if (!rec[i].keyed) {
            for (j = 0; j < NGX_AI_COST_STATE_DIGEST_LEN; j++) {
                if (rec[i].digest[j]) {
                    fuzz_fail("state: record %lu: a digest without a key",
                              (unsigned long) i);
                }
            }
        }

        if (rec[i].route.len > NGX_AI_COST_STATE_MAX_ROUTE
            || rec[i].model.len > NGX_AI_COST_STATE_MAX_MODEL)
        {
            fuzz_fail("state: record %lu: route %lu, model %lu bytes",
                      (unsigned long) i, (unsigned long) rec[i].route.len,
                      (unsigned long) rec[i].model.len);
        }

        if (rec[i].type == NGX_AI_COST_STATE_ACCOUNT
            && (rec[i].model.len || rec[i].n[6]))
        {
            fuzz_fail("state: account %lu with a model or a 7th figure",
                      (unsigned long) i);
        }

        if (rec[i].n[10] || rec[i].n[11]) {
            fuzz_fail("state: record %lu with an 11th figure",
                      (unsigned long) i);
        }
    }
}


/* an account has no model: its data is NULL */

static ngx_uint_t
fuzz_state_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


static void
fuzz_state_compare(ngx_array_t *a, uint64_t *ta, ngx_array_t *b,
    uint64_t *tb)
{
    ngx_uint_t                i;
    ngx_ai_cost_state_rec_t  *ra, *rb;

    if (ngx_memcmp(ta, tb, NGX_AI_COST_STATE_TOTALS * sizeof(uint64_t))
        != 0)
    {
        fuzz_fail("state: totals changed by a round trip");
    }

    if (a->nelts != b->nelts) {
        fuzz_fail("state: %lu records, %lu after a round trip",
                  (unsigned long) a->nelts, (unsigned long) b->nelts);
    }

    ra = a->elts;
    rb = b->elts;

    for (i = 0; i < a->nelts; i++) {
        if (ra[i].type != rb[i].type
            || ra[i].keyed != rb[i].keyed
            || ngx_memcmp(ra[i].digest, rb[i].digest,
                          NGX_AI_COST_STATE_DIGEST_LEN) != 0
            || !fuzz_state_str_eq(&ra[i].route, &rb[i].route)
            || !fuzz_state_str_eq(&ra[i].model, &rb[i].model)
            || ngx_memcmp(ra[i].n, rb[i].n, sizeof(ra[i].n)) != 0)
        {
            fuzz_fail("state: record %lu changed by a round trip",
                      (unsigned long) i);
        }
    }
}


/* one read; a file read is written back and read again */

static void
fuzz_state_one(ngx_pool_t *pool, u_char *buf, size_t len)
{
    char         *why;
    uint64_t      totals[NGX_AI_COST_STATE_TOTALS];
    uint64_t      totals2[NGX_AI_COST_STATE_TOTALS];
    ngx_str_t     back, again;
    ngx_array_t   recs, recs2;

    why = fuzz_state_parse(pool, buf, len, &recs, totals);

    if (why) {
        return;
    }

    fuzz_state_check_recs(&recs);

    back = fuzz_state_write(pool, &recs, totals);

    why = fuzz_state_parse(pool, back.data, back.len, &recs2, totals2);

    if (why) {
        fuzz_fail("state: written back, refused: %s: \"%.*s\"", why,
                  (int) back.len, back.data);
    }

    fuzz_state_compare(&recs, totals, &recs2, totals2);

    again = fuzz_state_write(pool, &recs2, totals2);

    if (again.len != back.len
        || ngx_memcmp(again.data, back.data, back.len) != 0)
    {
        fuzz_fail("state: written twice, two files");
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_str_t    sealed;
    ngx_pool_t  *pool;

    pool = fuzz_pool();

    fuzz_state_one(pool, fuzz_state_copy(pool, data, size), size);

    sealed = fuzz_state_seal(pool, data, size);

    if (sealed.len != size || ngx_memcmp(sealed.data, data, size) != 0) {
        fuzz_state_one(pool, sealed.data, sealed.len);
    }

    ngx_destroy_pool(pool);

    return 0;
}
