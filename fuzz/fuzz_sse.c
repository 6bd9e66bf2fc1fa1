
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: the SSE parser alone.  The events ngx_ai_sse_feed() gives
 * for the bytes fed whole must be those of a plain reference parser
 * written from the WHATWG event-stream rules, and the same whatever the
 * bytes are cut into; with a small size bound, what it gives before it
 * refuses must be the start of those events.
 *
 * Input: data[0] bit 7 set: a small bound, 1 + (data[0] & 0x7f) * 8
 * bytes; data[1..4] seed the cut points (data[1] % 9 of them); the rest
 * is the stream.
 */


#include "fuzz.h"


typedef struct {
    ngx_ai_buf_t                seen;      /* events, serialised */
    ngx_uint_t                  n;
    size_t                      max;
} fuzz_sse_events_t;


static ngx_int_t fuzz_sse_collect(void *data, ngx_ai_sse_event_t *ev);
static void fuzz_sse_add(fuzz_sse_events_t *evs, const u_char *event,
    size_t event_len, const u_char *data, size_t data_len);
static void fuzz_sse_reference(const u_char *p, size_t len,
    fuzz_sse_events_t *evs);
static ngx_int_t fuzz_sse_run(ngx_pool_t *pool, const u_char *in, size_t len,
    size_t *splits, ngx_uint_t nsplits, size_t max, fuzz_sse_events_t *evs);
static void fuzz_sse_init(ngx_pool_t *pool, fuzz_sse_events_t *evs,
    size_t max);
static void fuzz_sse_same(const char *what, fuzz_sse_events_t *a,
    fuzz_sse_events_t *b, ngx_uint_t prefix);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t              len, max, splits[FUZZ_MAX_SPLITS], s;
    uint32_t            x;
    ngx_int_t           rc;
    ngx_uint_t          i, j, n;
    ngx_pool_t         *pool;
    const u_char       *in;
    fuzz_sse_events_t   ref, whole, cut;

    if (size < 5) {
        return 0;
    }

    in = data + 5;
    len = size - 5;
    max = (data[0] & 0x80) ? 1 + (size_t) (data[0] & 0x7f) * 8 : 0;

    /* cut points from a xorshift seeded by the header, ascending */

    x = (uint32_t) data[1] | (uint32_t) data[2] << 8
        | (uint32_t) data[3] << 16 | (uint32_t) data[4] << 24;
    x |= 1;
    n = data[1] % (FUZZ_MAX_SPLITS + 1);

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        splits[i] = x % (len + 1);
    }

    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && splits[j - 1] > splits[j]; j--) {
            s = splits[j];
            splits[j] = splits[j - 1];
            splits[j - 1] = s;
        }
    }

    pool = fuzz_pool();

    fuzz_sse_init(pool, &ref, 0);
    fuzz_sse_reference(in, len, &ref);

    rc = fuzz_sse_run(pool, in, len, NULL, 0, max, &whole);

    if (max == 0) {
        if (rc != NGX_OK) {
            fuzz_fail("sse: feed rc %ld", (long) rc);
        }

        fuzz_sse_same("sse whole vs reference", &ref, &whole, 0);

    } else {
        fuzz_sse_same("sse bounded vs reference", &ref, &whole, 1);
    }

    rc = fuzz_sse_run(pool, in, len, splits, n, max, &cut);

    if (max == 0) {
        if (rc != NGX_OK) {
            fuzz_fail("sse: feed rc %ld (cut)", (long) rc);
        }

        fuzz_sse_same("sse cut vs whole", &whole, &cut, 0);

    } else {
        fuzz_sse_same("sse bounded cut vs reference", &ref, &cut, 1);
    }

    ngx_destroy_pool(pool);

    return 0;
}


static void
fuzz_sse_init(ngx_pool_t *pool, fuzz_sse_events_t *evs, size_t max)
{
    evs->n = 0;
    evs->max = max;

    if (ngx_ai_buf_init(&evs->seen, pool, 256) != NGX_OK) {
        fuzz_fail("no memory");
    }
}


static ngx_int_t
fuzz_sse_run(ngx_pool_t *pool, const u_char *in, size_t len, size_t *splits,
    ngx_uint_t nsplits, size_t max, fuzz_sse_events_t *evs)
{
    u_char               *piece;
    size_t                pos, end;
    ngx_int_t             rc;
    ngx_uint_t            i;
    ngx_ai_sse_parser_t   p;

    fuzz_sse_init(pool, evs, max ? max : NGX_AI_MAX_SSE_EVENT);

    if (ngx_ai_sse_init(&p, pool, max) != NGX_OK) {
        fuzz_fail("no memory");
    }

    pos = 0;
    rc = NGX_OK;

    for (i = 0; i <= nsplits && rc == NGX_OK; i++) {
        end = (i < nsplits) ? splits[i] : len;

        if (end <= pos) {
            continue;
        }

        /* its own block, freed after: no pointer may outlive a buffer */

        piece = malloc(end - pos);
        if (piece == NULL) {
            fuzz_fail("no memory");
        }

        ngx_memcpy(piece, in + pos, end - pos);

        rc = ngx_ai_sse_feed(&p, piece, piece + (end - pos),
                             fuzz_sse_collect, evs);

        free(piece);

        if (rc == NGX_ERROR) {
            fuzz_fail("sse: NGX_ERROR");
        }

        pos = end;
    }

    return rc;
}


static ngx_int_t
fuzz_sse_collect(void *data, ngx_ai_sse_event_t *ev)
{
    fuzz_sse_events_t  *evs = data;

    if (memchr(ev->event.data, '\r', ev->event.len)
        || memchr(ev->event.data, '\n', ev->event.len)
        || memchr(ev->data.data, '\r', ev->data.len))
    {
        fuzz_fail("sse: a line break inside an event's fields");
    }

    if (ev->data.len > evs->max) {
        fuzz_fail("sse: %lu bytes of data past the bound of %lu",
                  (unsigned long) ev->data.len, (unsigned long) evs->max);
    }

    fuzz_sse_add(evs, ev->event.data, ev->event.len, ev->data.data,
                 ev->data.len);

    return NGX_OK;
}


static void
fuzz_sse_add(fuzz_sse_events_t *evs, const u_char *event, size_t event_len,
    const u_char *data, size_t data_len)
{
    if (ngx_ai_buf_append_uint(&evs->seen, event_len) != NGX_OK
        || ngx_ai_buf_append(&evs->seen, ":", 1) != NGX_OK
        || ngx_ai_buf_append(&evs->seen, event, event_len) != NGX_OK
        || ngx_ai_buf_append_uint(&evs->seen, data_len) != NGX_OK
        || ngx_ai_buf_append(&evs->seen, ":", 1) != NGX_OK
        || ngx_ai_buf_append(&evs->seen, data, data_len) != NGX_OK
        || ngx_ai_buf_append(&evs->seen, "\n", 1) != NGX_OK)
    {
        fuzz_fail("no memory");
    }

    evs->n++;
}


/*
 * The event-stream rules, read over the whole input at once: lines end
 * in CRLF, LF or CR; an empty line dispatches the event if there were
 * data lines; ':' starts a comment; "field: value" loses one space; an
 * unterminated last line and an undispatched last event are dropped.
 */

static void
fuzz_sse_reference(const u_char *p, size_t len, fuzz_sse_events_t *evs)
{
    size_t         i, start, eol, name_len, vstart;
    ngx_uint_t     has_data;
    ngx_ai_buf_t   data, event;

    if (ngx_ai_buf_init(&data, evs->seen.pool, 256) != NGX_OK
        || ngx_ai_buf_init(&event, evs->seen.pool, 32) != NGX_OK)
    {
        fuzz_fail("no memory");
    }

    has_data = 0;
    start = 0;

    while (start < len) {

        for (eol = start; eol < len; eol++) {
            if (p[eol] == '\r' || p[eol] == '\n') {
                break;
            }
        }

        if (eol == len) {
            break;                              /* unterminated */
        }

        if (eol == start) {
            if (has_data) {
                fuzz_sse_add(evs, event.data, event.len, data.data,
                             data.len - 1);
            }

            data.len = 0;
            event.len = 0;
            has_data = 0;

        } else if (p[start] != ':') {

            for (i = start; i < eol && p[i] != ':'; i++) {
                /* void */
            }

            name_len = i - start;
            vstart = (i < eol) ? i + 1 : eol;

            if (vstart < eol && p[vstart] == ' ') {
                vstart++;
            }

            if (name_len == 4 && ngx_memcmp(p + start, "data", 4) == 0) {
                if (ngx_ai_buf_append(&data, p + vstart, eol - vstart)
                    != NGX_OK
                    || ngx_ai_buf_append(&data, "\n", 1) != NGX_OK)
                {
                    fuzz_fail("no memory");
                }

                has_data = 1;

            } else if (name_len == 5
                       && ngx_memcmp(p + start, "event", 5) == 0)
            {
                event.len = 0;

                if (ngx_ai_buf_append(&event, p + vstart, eol - vstart)
                    != NGX_OK)
                {
                    fuzz_fail("no memory");
                }
            }
        }

        if (p[eol] == '\r' && eol + 1 < len && p[eol + 1] == '\n') {
            eol++;
        }

        start = eol + 1;
    }
}


/*
 * b's events equal a's, or, with prefix, are the first of a's (a parser
 * that refused part way gave fewer)
 */

static void
fuzz_sse_same(const char *what, fuzz_sse_events_t *a, fuzz_sse_events_t *b,
    ngx_uint_t prefix)
{
    if (b->seen.len > a->seen.len || (!prefix && b->seen.len != a->seen.len)
        || ngx_memcmp(a->seen.data, b->seen.data, b->seen.len) != 0)
    {
        fuzz_fail("%s: events differ:\nexpected (%lu): \"%.*s\"\n"
                  "got (%lu):      \"%.*s\"", what, (unsigned long) a->n,
                  (int) a->seen.len, a->seen.data, (unsigned long) b->n,
                  (int) b->seen.len, b->seen.data);
    }
}
