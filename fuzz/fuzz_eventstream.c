
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: the AWS event stream parser (ngx_ai_gateway_eventstream.c)
 * alone.  data[0] flags (bit 0: make the CRCs right first, bit 1: a small
 * message bound), data[1..2] a split point, the rest the bytes.  The
 * events (type and data) and the outcome must not depend on how the
 * bytes are split (whole, at the split point, byte by byte); every event
 * lies within the bound; after a refusal the parser takes nothing more.
 */


#include "fuzz.h"


typedef struct {
    ngx_ai_buf_t   log;
    size_t         max;
} fuzz_es_log_t;


static ngx_int_t
fuzz_es_event(void *data, ngx_ai_sse_event_t *ev)
{
    u_char          n[8];
    fuzz_es_log_t  *l = data;

    if (ev->data.len > l->max || ev->event.len > 65535) {
        fuzz_fail("eventstream: an event of %lu bytes past the bound %lu",
                  (unsigned long) ev->data.len, (unsigned long) l->max);
    }

    n[0] = (u_char) (ev->event.len >> 8);
    n[1] = (u_char) ev->event.len;
    n[2] = (u_char) (ev->data.len >> 24);
    n[3] = (u_char) (ev->data.len >> 16);
    n[4] = (u_char) (ev->data.len >> 8);
    n[5] = (u_char) ev->data.len;

    if (ngx_ai_buf_append(&l->log, n, 6) != NGX_OK
        || ngx_ai_buf_append(&l->log, ev->event.data, ev->event.len)
           != NGX_OK
        || ngx_ai_buf_append(&l->log, ev->data.data, ev->data.len) != NGX_OK)
    {
        fuzz_fail("no memory for the log");
    }

    return NGX_OK;
}


/* the bytes fed in pieces (each its own allocation); the outcome logged */

static ngx_int_t
fuzz_es_run(ngx_pool_t *pool, const u_char *in, size_t len, size_t *cuts,
    ngx_uint_t ncuts, size_t max, fuzz_es_log_t *l, const char **error)
{
    u_char              *piece;
    size_t               pos, end;
    ngx_int_t            rc;
    ngx_uint_t           i;
    ngx_ai_es_parser_t   p;

    if (ngx_ai_es_init(&p, pool, max) != NGX_OK
        || ngx_ai_buf_init(&l->log, pool, 256) != NGX_OK)
    {
        fuzz_fail("no memory");
    }

    l->max = p.max;
    rc = NGX_OK;
    pos = 0;

    for (i = 0; i <= ncuts; i++) {
        end = (i < ncuts) ? cuts[i] : len;

        if (end <= pos) {
            continue;
        }

        piece = malloc(end - pos);
        if (piece == NULL) {
            fuzz_fail("no memory for a piece");
        }

        ngx_memcpy(piece, in + pos, end - pos);

        if (rc == NGX_OK) {
            rc = ngx_ai_es_feed(&p, piece, piece + (end - pos),
                                fuzz_es_event, l);

        } else if (ngx_ai_es_feed(&p, piece, piece + (end - pos),
                                  fuzz_es_event, l)
                   != NGX_DECLINED)
        {
            fuzz_fail("eventstream: bytes taken after a refusal");
        }

        free(piece);

        if (rc == NGX_ERROR) {
            fuzz_fail("eventstream: NGX_ERROR");
        }

        pos = end;
    }

    if (rc == NGX_DECLINED && p.error == NULL) {
        fuzz_fail("eventstream: refused without a reason");
    }

    *error = p.error;

    return rc;
}


static void
fuzz_es_compare(fuzz_es_log_t *a, ngx_int_t rca, const char *ea,
    fuzz_es_log_t *b, ngx_int_t rcb, const char *eb)
{
    if (rca != rcb || a->log.len != b->log.len
        || ngx_memcmp(a->log.data, b->log.data, a->log.len) != 0
        || (ea == NULL) != (eb == NULL)
        || (ea && strcmp(ea, eb) != 0))
    {
        fuzz_fail("eventstream: the outcome depends on the split: "
                  "rc %ld/%ld, %lu/%lu bytes of events, \"%s\"/\"%s\"",
                  (long) rca, (long) rcb, (unsigned long) a->log.len,
                  (unsigned long) b->log.len, ea ? ea : "", eb ? eb : "");
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char          *in;
    size_t           len, max, cut, i, *each;
    ngx_int_t        rc0, rc1, rc2;
    ngx_pool_t      *pool;
    const char      *e0, *e1, *e2;
    fuzz_es_log_t    l0, l1, l2;

    if (size < 3) {
        return 0;
    }

    len = size - 3;
    in = malloc(len + 1);
    if (in == NULL) {
        return 0;
    }

    ngx_memcpy(in, data + 3, len);

    if (data[0] & 1) {
        fuzz_es_fix_crcs(in, len);
    }

    max = (data[0] & 2) ? 64 : 0;
    cut = (data[1] | (data[2] << 8)) % (len + 1);

    pool = fuzz_pool();

    rc0 = fuzz_es_run(pool, in, len, NULL, 0, max, &l0, &e0);
    rc1 = fuzz_es_run(pool, in, len, &cut, 1, max, &l1, &e1);
    fuzz_es_compare(&l0, rc0, e0, &l1, rc1, e1);

    if (len > 1 && len <= 4096) {
        each = ngx_palloc(pool, len * sizeof(size_t));
        if (each == NULL) {
            fuzz_fail("no memory for the cuts");
        }

        for (i = 0; i < len - 1; i++) {
            each[i] = i + 1;
        }

        rc2 = fuzz_es_run(pool, in, len, each, len - 1, max, &l2, &e2);
        fuzz_es_compare(&l0, rc0, e0, &l2, rc2, e2);
    }

    ngx_destroy_pool(pool);
    free(in);

    return 0;
}
