
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a cost zone's state file, read back at start from bytes
 * on disk by the reader of ngx_ai_gateway_state.c, fed in chunks as the
 * loader feeds it (a version 1 file checked, then read again to load).
 *
 * The input is read three ways: as it is; sealed for version 1, so that
 * most inputs get past its one checksum (if its last line is "end
 * RECORDS XXXXXXXX", the eight digits become the CRC32 of the bytes
 * before that line; otherwise a line feed if it lacks one and "end N
 * CRC32" are appended, N the number of lines that start "l " or "a ");
 * and sealed for version 2: every line ends in the CRC32 of what comes
 * before it (its last 9 bytes replaced when they are " " and 8 hex
 * digits, else appended).  Each is read whole and in chunks of a size
 * the input's first byte picks: one result.
 *
 * Checks: a refusal gives a reason, names a line of the file or none,
 * and no record was given; the lines skipped are lines of the file, in
 * order; each record is of a known type and key flag, with no digest
 * without a key, a route and a model within the bounds the loader's ids
 * are sized for, and no model for an account; a version 1 file read has
 * as many records as its end line says.  What was read, written back by
 * the writer (version 2) and read again gives the same records and
 * totals, with no line skipped, and written again the same bytes; the
 * same through the version 1 writer.
 */


#include "fuzz.h"
#include "ngx_ai_gateway_state.h"


static void fuzz_state_check_recs(ngx_array_t *recs);
static ngx_str_t fuzz_state_write_v1(ngx_pool_t *pool, ngx_array_t *recs,
    uint64_t *totals);


static ngx_str_t  fuzz_state_zone = ngx_string("cost");


/* a block of exactly len bytes: ASan sees a read past the end */

static u_char *
fuzz_state_copy(ngx_pool_t *pool, const u_char *p, size_t len)
{
    u_char  *copy;

    copy = ngx_pnalloc(pool, len ? len : 1);
    if (copy == NULL) {
        fuzz_fail("no memory for a copy");
    }

    if (len) {
        ngx_memcpy(copy, p, len);
    }

    return copy;
}


typedef struct {
    ngx_pool_t    *pool;
    ngx_array_t    recs;
} fuzz_state_got_t;


static ngx_int_t
fuzz_state_collect(void *data, ngx_ai_cost_state_rec_t *rec)
{
    fuzz_state_got_t         *got = data;
    ngx_ai_cost_state_rec_t  *r;

    r = ngx_array_push(&got->recs);
    if (r == NULL) {
        fuzz_fail("no memory for the records");
    }

    *r = *rec;
    r->route.data = fuzz_state_copy(got->pool, rec->route.data,
                                    rec->route.len);
    r->model.data = fuzz_state_copy(got->pool, rec->model.data,
                                    rec->model.len);

    return NGX_OK;
}


/* buf read as the loader reads it, chunk bytes at a time */

static ngx_ai_cost_state_t *
fuzz_state_read(ngx_pool_t *pool, u_char *buf, size_t len, size_t chunk,
    fuzz_state_got_t *got)
{
    u_char               *copy;
    size_t                off, n;
    ngx_uint_t            pass;
    ngx_ai_cost_state_t  *st;

    st = ngx_palloc(pool, sizeof(ngx_ai_cost_state_t));
    got->pool = pool;

    /* small, so that it grows */
    if (st == NULL
        || ngx_array_init(&got->recs, pool, 2,
                          sizeof(ngx_ai_cost_state_rec_t))
           != NGX_OK)
    {
        fuzz_fail("no memory for the reader");
    }

    for (pass = 0; pass < 2; pass++) {
        ngx_ai_cost_state_init(st, &fuzz_state_zone, fuzz_state_collect,
                               got, pass);
        got->recs.nelts = 0;

        for (off = 0; off < len; off += n) {
            n = ngx_min(chunk, len - off);
            copy = fuzz_state_copy(pool, buf + off, n);

            if (ngx_ai_cost_state_feed(st, copy, n) != NGX_OK) {
                break;
            }
        }

        if (off >= len) {
            ngx_ai_cost_state_finish(st);
        }

        if (st->stopped) {
            fuzz_fail("state: the reader stopped, the handler did not");
        }

        if (st->version != 1 || st->why) {
            break;
        }
    }

    return st;
}


static void
fuzz_state_check(ngx_ai_cost_state_t *st, fuzz_state_got_t *got,
    u_char *buf, size_t len)
{
    size_t      i, lines;
    ngx_uint_t  k;

    for (lines = 0, i = 0; i < len; i++) {
        if (buf[i] == '\n') {
            lines++;
        }
    }

    if (len && buf[len - 1] != '\n') {
        lines++;
    }

    if (st->lines > lines) {
        fuzz_fail("state: %lu lines read of %lu", (unsigned long) st->lines,
                  (unsigned long) lines);
    }

    if (st->why) {
        if (st->why[0] == '\0') {
            fuzz_fail("state: refused without a reason");
        }

        if (got->recs.nelts != 0) {
            fuzz_fail("state: refused (%s) with %lu records", st->why,
                      (unsigned long) got->recs.nelts);
        }

        if (st->why_line > lines) {
            fuzz_fail("state: refused (%s) at line %lu of %lu", st->why,
                      (unsigned long) st->why_line, (unsigned long) lines);
        }

        return;
    }

    if (st->version != 1 && st->version != 2) {
        fuzz_fail("state: read, version %lu", (unsigned long) st->version);
    }

    if (st->accounts + st->ledgers + st->deltas != got->recs.nelts) {
        fuzz_fail("state: %lu + %lu records and %lu deltas counted, %lu "
                  "given", (unsigned long) st->accounts,
                  (unsigned long) st->ledgers, (unsigned long) st->deltas,
                  (unsigned long) got->recs.nelts);
    }

    if (st->version == 1 && (st->deltas || st->has_sync)) {
        fuzz_fail("state: version 1 read with deltas or a sync line");
    }

    if (st->has_sync && st->frozen > 1) {
        fuzz_fail("state: a sync line with frozen %lu",
                  (unsigned long) st->frozen);
    }

    if (st->version == 1
        && (st->skipped || st->truncated || !st->has_totals
            || st->end_records != got->recs.nelts))
    {
        fuzz_fail("state: version 1 read with %lu skipped, %lu records of "
                  "%lu", (unsigned long) st->skipped,
                  (unsigned long) got->recs.nelts,
                  (unsigned long) st->end_records);
    }

    if (st->skipped > st->lines) {
        fuzz_fail("state: %lu lines skipped of %lu",
                  (unsigned long) st->skipped, (unsigned long) st->lines);
    }

    for (k = 0; k < st->skipped && k < NGX_AI_COST_STATE_BAD; k++) {
        if (st->bad_line[k] == 0 || st->bad_line[k] > st->lines
            || (k && st->bad_line[k] <= st->bad_line[k - 1])
            || st->bad_why[k] == NULL || st->bad_why[k][0] == '\0')
        {
            fuzz_fail("state: bad line %lu: line %lu of %lu",
                      (unsigned long) k, (unsigned long) st->bad_line[k],
                      (unsigned long) st->lines);
        }
    }

    fuzz_state_check_recs(&got->recs);
}


/* version 2: every line sealed with its CRC32 */

static ngx_str_t
fuzz_state_seal_v2(ngx_pool_t *pool, const u_char *data, size_t size)
{
    u_char        *p, *q, *last;
    char           crc[16];
    size_t         n;
    ngx_int_t      c;
    ngx_str_t      out;
    ngx_uint_t     i, hex;
    ngx_ai_buf_t   b;

    if (ngx_ai_buf_init(&b, pool, size + 64) != NGX_OK) {
        fuzz_fail("no memory for the sealed input");
    }

    last = (u_char *) data + size;

    for (p = (u_char *) data; p < last; p = q + 1) {
        q = ngx_strlchr(p, last, '\n');
        if (q == NULL) {
            q = last;
        }

        n = q - p;
        hex = 0;

        if (n >= 10 && p[n - 9] == ' ') {
            for (hex = 1, i = n - 8; i < n; i++) {
                c = ngx_hextoi(&p[i], 1);
                if (c == NGX_ERROR) {
                    hex = 0;
                }
            }
        }

        if (hex) {
            n -= 9;
        }

        snprintf(crc, sizeof(crc), " %08x\n",
                 (unsigned) ngx_crc32_long(p, n));

        if (ngx_ai_buf_append(&b, p, n) != NGX_OK
            || ngx_ai_buf_append_str(&b, crc) != NGX_OK)
        {
            fuzz_fail("no memory for the sealed input");
        }
    }

    out.len = b.len;
    out.data = fuzz_state_copy(pool, b.data, b.len);

    return out;
}


/* version 1: the input with its checksum made right */

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
 * as %XX, the writer of version 1 */

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


/* version 1: records and totals written as the module wrote them */

static ngx_str_t
fuzz_state_write_v1(ngx_pool_t *pool, ngx_array_t *recs, uint64_t *totals)
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
            && rec[i].type != NGX_AI_COST_STATE_ACCOUNT
            && rec[i].type != NGX_AI_COST_STATE_DLEDGER
            && rec[i].type != NGX_AI_COST_STATE_DACCOUNT)
        {
            fuzz_fail("state: record %lu of type %lu", (unsigned long) i,
                      (unsigned long) rec[i].type);
        }

        if (rec[i].type >= NGX_AI_COST_STATE_DLEDGER) {
            for (j = 0; j < 12; j++) {
                if (rec[i].n[j]) {
                    fuzz_fail("state: delta %lu with figures",
                              (unsigned long) i);
                }
            }

            if (rec[i].batch > 1
                || (rec[i].type == NGX_AI_COST_STATE_DACCOUNT
                    && (rec[i].model.len || rec[i].d[10])))
            {
                fuzz_fail("state: delta %lu: batch %lu, a model or an 11th "
                          "figure", (unsigned long) i,
                          (unsigned long) rec[i].batch);
            }

        } else {
            for (j = 0; j < 16; j++) {
                if (rec[i].d[j]) {
                    fuzz_fail("state: record %lu with deltas",
                              (unsigned long) i);
                }
            }
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
            || ngx_memcmp(ra[i].n, rb[i].n, sizeof(ra[i].n)) != 0
            || ra[i].batch != rb[i].batch
            || ngx_memcmp(ra[i].d, rb[i].d, sizeof(ra[i].d)) != 0)
        {
            fuzz_fail("state: record %lu changed by a round trip",
                      (unsigned long) i);
        }
    }
}


/* records and totals through the writer of version 2, as the module
 * writes them (ngx_http_ai_cost_render()) */

static ngx_str_t
fuzz_state_write_v2(ngx_pool_t *pool, ngx_array_t *recs, uint64_t *totals)
{
    ngx_str_t                 out;
    ngx_uint_t                i, n;
    ngx_ai_buf_t              b;
    ngx_ai_cost_state_rec_t  *rec;

    if (ngx_ai_buf_init(&b, pool, 1024) != NGX_OK
        || ngx_ai_cost_state_write_head(&b, &fuzz_state_zone, FUZZ_CREATED,
                                        totals)
           != NGX_OK)
    {
        fuzz_fail("no memory for the file written back");
    }

    rec = recs->elts;
    n = 0;

    for (i = 0; i < recs->nelts; i++) {
        if (rec[i].type >= NGX_AI_COST_STATE_DLEDGER) {
            if (ngx_ai_cost_state_write_delta(&b, &rec[i]) != NGX_OK) {
                fuzz_fail("no memory for the file written back");
            }

            continue;
        }

        if (ngx_ai_cost_state_write_rec(&b, &rec[i]) != NGX_OK) {
            fuzz_fail("no memory for the file written back");
        }

        n++;
    }

    if (ngx_ai_cost_state_write_end(&b, n) != NGX_OK) {
        fuzz_fail("no memory for the file written back");
    }

    out.len = b.len;
    out.data = fuzz_state_copy(pool, b.data, b.len);

    return out;
}


static void
fuzz_state_round_trip(ngx_pool_t *pool, ngx_array_t *recs, uint64_t *totals,
    ngx_uint_t version)
{
    ngx_str_t             back, again;
    fuzz_state_got_t      got;
    ngx_ai_cost_state_t  *st;

    back = (version == 2) ? fuzz_state_write_v2(pool, recs, totals)
                          : fuzz_state_write_v1(pool, recs, totals);

    st = fuzz_state_read(pool, back.data, back.len, back.len, &got);

    if (st->why || st->version != version || st->skipped || st->truncated
        || !st->has_totals || !st->has_zone || !st->has_end)
    {
        fuzz_fail("state: written back (version %lu), read as version %lu, "
                  "\"%s\", %lu skipped: \"%.*s\"", (unsigned long) version,
                  (unsigned long) st->version, st->why ? st->why : "",
                  (unsigned long) st->skipped, (int) back.len, back.data);
    }

    fuzz_state_compare(recs, totals, &got.recs, st->totals);

    again = (version == 2) ? fuzz_state_write_v2(pool, &got.recs, st->totals)
                           : fuzz_state_write_v1(pool, &got.recs,
                                                 st->totals);

    if (again.len != back.len
        || ngx_memcmp(again.data, back.data, back.len) != 0)
    {
        fuzz_fail("state: written twice, two files");
    }
}


/* one input: read whole and in chunks, checked, written back */

static void
fuzz_state_one(ngx_pool_t *pool, u_char *buf, size_t len, size_t chunk)
{
    uint64_t                  totals[NGX_AI_COST_STATE_TOTALS];
    ngx_uint_t                i;
    ngx_array_t               v1;
    fuzz_state_got_t          got, got2;
    ngx_ai_cost_state_rec_t  *rec;
    ngx_ai_cost_state_t  *st, *st2;

    st = fuzz_state_read(pool, buf, len, len ? len : 1, &got);
    fuzz_state_check(st, &got, buf, len);

    st2 = fuzz_state_read(pool, buf, len, chunk, &got2);

    if (st2->why != st->why || st2->why_line != st->why_line
        || st2->lines != st->lines || st2->skipped != st->skipped
        || st2->has_totals != st->has_totals
        || st2->truncated != st->truncated
        || st2->has_sync != st->has_sync || st2->seq != st->seq
        || st2->deltas != st->deltas
        || ngx_memcmp(st2->totals, st->totals, sizeof(st->totals)) != 0)
    {
        fuzz_fail("state: read in chunks of %lu, another result",
                  (unsigned long) chunk);
    }

    fuzz_state_compare(&got.recs, st->totals, &got2.recs, st2->totals);

    if (st->why) {
        return;
    }

    /* the totals as the loader takes them: read, or none */

    ngx_memcpy(totals, st->totals, sizeof(totals));

    if (!st->has_totals) {
        ngx_memzero(totals, sizeof(totals));
    }

    fuzz_state_round_trip(pool, &got.recs, totals, 2);

    /* version 1 has no deltas */

    if (ngx_array_init(&v1, pool, got.recs.nelts + 1,
                       sizeof(ngx_ai_cost_state_rec_t))
        != NGX_OK)
    {
        fuzz_fail("no memory for the records");
    }

    rec = got.recs.elts;

    for (i = 0; i < got.recs.nelts; i++) {
        if (rec[i].type < NGX_AI_COST_STATE_DLEDGER) {
            *(ngx_ai_cost_state_rec_t *) ngx_array_push(&v1) = rec[i];
        }
    }

    fuzz_state_round_trip(pool, &v1, totals, 1);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t       chunk;
    ngx_str_t    sealed;
    ngx_pool_t  *pool;

    pool = fuzz_pool();

    chunk = size ? 1 + data[0] % 97 : 1;

    fuzz_state_one(pool, fuzz_state_copy(pool, data, size), size, chunk);

    sealed = fuzz_state_seal(pool, data, size);

    if (sealed.len != size || ngx_memcmp(sealed.data, data, size) != 0) {
        fuzz_state_one(pool, sealed.data, sealed.len, chunk);
    }

    sealed = fuzz_state_seal_v2(pool, data, size);

    if (sealed.len != size || ngx_memcmp(sealed.data, data, size) != 0) {
        fuzz_state_one(pool, sealed.data, sealed.len, chunk);
    }

    ngx_destroy_pool(pool);

    return 0;
}
