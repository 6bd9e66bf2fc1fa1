
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * A cost zone's state file (see ngx_ai_gateway_state.h).  One record a
 * line, fields separated by one space; strings are written "=" and the
 * string with bytes outside 0x21-0x7e and "%" as %XX; digests in hex
 * ("-": no key).  Version 2, as ngx_ai_gateway_cost_state.c writes it,
 * every line ending in " CRC32" (8 hex digits) of the bytes before it:
 *
 *   ngx_ai_gateway_cost_state 2
 *   zone =NAME
 *   time UNIX
 *   totals REQUESTS ERRORS IN OUT COST ABORTED EST_IN EST_COST
 *   a KEYED DIGEST =ROUTE DAY DAY_SPEND MONTH MONTH_SPEND TOTAL LAST
 *   l KEYED DIGEST =ROUTE =MODEL REQUESTS ERRORS IN OUT COST ABORTED
 *     EST_IN EST_COST FIRST LAST                        (one line)
 *   end RECORDS
 *
 * the accounts ("a") before the ledger entries ("l").  A line that does
 * not check out is skipped; the others are read.  A zone with sync= also
 * has, after "totals", a line of its batches to Redis, and after a
 * record with deltas not acknowledged by Redis, a line of them (signed
 * numbers; not counted in RECORDS):
 *
 *   sync INSTANCE SEQ FROZEN P1..P8 S1..S8   the totals' deltas
 *   dl KEYED DIGEST =ROUTE =MODEL BATCH P1..P8 S1..S8
 *   da KEYED DIGEST =ROUTE BATCH PDAY PDAY_SPEND PMONTH PMONTH_SPEND
 *     PTOTAL SDAY SDAY_SPEND SMONTH SMONTH_SPEND STOTAL
 *
 * P: to push, S: in the batch being pushed (FROZEN: one is, numbered
 * SEQ, BATCH: the record is in it).
 *
 * Version 1, as the module wrote it before: the same lines without
 * their CRC32, then "end RECORDS CRC32" with the CRC32 of every byte
 * before that line, which is last; read all or nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_state.h"


/* st->v1_end: what the last line read is */
#define NGX_AI_COST_STATE_END_NONE     0       /* not an "end" line */
#define NGX_AI_COST_STATE_END_FIELDS   1       /* "end", not 3 fields */
#define NGX_AI_COST_STATE_END_INVALID  2
#define NGX_AI_COST_STATE_END_OK       3

/* what a line is */
#define NGX_AI_COST_STATE_ZONE         1
#define NGX_AI_COST_STATE_OTHER_ZONE   2
#define NGX_AI_COST_STATE_TIME         3
#define NGX_AI_COST_STATE_TOTALS_LINE  4
#define NGX_AI_COST_STATE_RECORD       5
#define NGX_AI_COST_STATE_END          6
#define NGX_AI_COST_STATE_DELTA        7
#define NGX_AI_COST_STATE_SYNC         8

#define NGX_AI_COST_STATE_MAX_FIELDS   24


static ngx_int_t ngx_ai_cost_state_v1(ngx_ai_cost_state_t *st, u_char *p,
    size_t len);
static ngx_int_t ngx_ai_cost_state_v2(ngx_ai_cost_state_t *st, u_char *p,
    size_t len);
static ngx_int_t ngx_ai_cost_state_bad(ngx_ai_cost_state_t *st, char *why);
static ngx_int_t ngx_ai_cost_state_record(ngx_ai_cost_state_t *st,
    ngx_ai_cost_state_rec_t *rec);
static char *ngx_ai_cost_state_fields(ngx_ai_cost_state_t *st,
    ngx_str_t *tok, ngx_uint_t nt, ngx_ai_cost_state_rec_t *rec,
    ngx_uint_t *kind);
static char *ngx_ai_cost_state_rec(ngx_ai_cost_state_t *st, ngx_str_t *tok,
    ngx_uint_t nt, ngx_ai_cost_state_rec_t *rec, ngx_uint_t delta);
static char *ngx_ai_cost_state_sync(ngx_ai_cost_state_t *st, ngx_str_t *tok,
    ngx_uint_t nt);
static ngx_int_t ngx_ai_cost_state_i64(ngx_str_t *s, int64_t *v);
static ngx_int_t ngx_ai_cost_state_write_id(ngx_ai_buf_t *b,
    const char *type, ngx_ai_cost_state_rec_t *rec);
static ngx_uint_t ngx_ai_cost_state_split(u_char *p, u_char *last,
    ngx_str_t *tok, ngx_uint_t max);
static ngx_int_t ngx_ai_cost_state_u64(ngx_str_t *s, uint64_t *v);
static ngx_int_t ngx_ai_cost_state_crc(u_char *p, uint32_t *crc);
static ngx_int_t ngx_ai_cost_state_str(ngx_str_t *s, u_char *buf,
    size_t size, size_t max, ngx_str_t *out);
static ngx_int_t ngx_ai_cost_state_digest(ngx_str_t *s, ngx_uint_t keyed,
    u_char *digest);
static ngx_int_t ngx_ai_cost_state_nums(ngx_ai_buf_t *b, uint64_t *n,
    ngx_uint_t count);
static ngx_int_t ngx_ai_cost_state_seal(ngx_ai_buf_t *b, size_t start);


static u_char  ngx_ai_cost_state_hex[] = "0123456789abcdef";


void
ngx_ai_cost_state_init(ngx_ai_cost_state_t *st, ngx_str_t *zone,
    ngx_ai_cost_state_handler_pt handler, void *data, ngx_uint_t load)
{
    ngx_memzero(st, offsetof(ngx_ai_cost_state_t, buf));

    st->zone = zone;
    st->handler = handler;
    st->data = data;
    st->load = load;
}


/* the bytes split into lines; a line over the bound is skipped whole */

ngx_int_t
ngx_ai_cost_state_feed(ngx_ai_cost_state_t *st, u_char *p, size_t len)
{
    u_char     *last, *nl;
    size_t      n;
    ngx_int_t   rc;

    for (last = p + len; p < last; p = nl + 1) {

        nl = ngx_strlchr(p, last, '\n');
        n = (nl ? nl : last) - p;

        if (nl && st->len == 0 && !st->long_line
            && n <= NGX_AI_COST_STATE_MAX_LINE)
        {
            rc = ngx_ai_cost_state_line(st, p, n);

            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (!st->long_line) {
            if (st->len + n > NGX_AI_COST_STATE_MAX_LINE) {
                st->long_line = 1;

                /* version 1: its bytes still go into the running CRC32 */

                if (st->version == 1) {
                    st->crc_before = st->crc;
                    ngx_crc32_update(&st->crc, st->buf, st->len);
                }

                st->len = 0;

            } else {
                ngx_memcpy(st->buf + st->len, p, n);
                st->len += n;
            }
        }

        if (st->long_line && st->version == 1) {
            ngx_crc32_update(&st->crc, p, n);
        }

        if (nl == NULL) {
            break;
        }

        if (st->long_line) {
            st->long_line = 0;
            st->lines++;

            if (st->version == 1) {
                ngx_crc32_update(&st->crc, (u_char *) "\n", 1);
            }

            if (st->version == 0) {
                st->version = 2;
            }

            rc = ngx_ai_cost_state_bad(st, "a line too long");

        } else {
            rc = ngx_ai_cost_state_line(st, st->buf, st->len);
        }

        st->len = 0;

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_ai_cost_state_line(ngx_ai_cost_state_t *st, u_char *p, size_t len)
{
    if (st->why || st->stopped) {
        return NGX_DONE;
    }

    st->lines++;

    if (st->lines == 1) {

        if (len == sizeof(NGX_AI_COST_STATE_MAGIC) - 1
            && ngx_strncmp(p, NGX_AI_COST_STATE_MAGIC, len) == 0)
        {
            st->version = 1;
            st->has_head = 1;

            ngx_crc32_init(st->crc);
            ngx_crc32_update(&st->crc, p, len);
            ngx_crc32_update(&st->crc, (u_char *) "\n", 1);

            return NGX_OK;
        }

        st->version = 2;
    }

    if (st->version == 1) {
        return ngx_ai_cost_state_v1(st, p, len);
    }

    return ngx_ai_cost_state_v2(st, p, len);
}


static ngx_int_t
ngx_ai_cost_state_v1(ngx_ai_cost_state_t *st, u_char *p, size_t len)
{
    char                     *why;
    ngx_str_t                 tok[NGX_AI_COST_STATE_MAX_FIELDS];
    ngx_uint_t                nt, kind;
    ngx_ai_cost_state_rec_t   rec;

    st->crc_before = st->crc;
    ngx_crc32_update(&st->crc, p, len);
    ngx_crc32_update(&st->crc, (u_char *) "\n", 1);

    why = NULL;

    if (st->v1_end != NGX_AI_COST_STATE_END_NONE) {

        /* an "end" line, not the last one */

        st->v1_end = NGX_AI_COST_STATE_END_NONE;

        if (st->v1_why == NULL) {
            st->v1_why = "an unknown record";
            st->v1_line = st->end_line;
        }
    }

    nt = ngx_ai_cost_state_split(p, p + len, tok,
                                 NGX_AI_COST_STATE_MAX_FIELDS);

    if (nt && tok[0].len == 3 && ngx_strncmp(tok[0].data, "end", 3) == 0) {
        st->end_line = st->lines;
        st->v1_end = NGX_AI_COST_STATE_END_FIELDS;

        if (nt == 3) {
            st->v1_end = NGX_AI_COST_STATE_END_INVALID;

            if (ngx_ai_cost_state_u64(&tok[1], &st->end_records) == NGX_OK
                && tok[2].len == 8
                && ngx_ai_cost_state_crc(tok[2].data, &st->end_crc)
                   == NGX_OK)
            {
                st->v1_end = NGX_AI_COST_STATE_END_OK;
            }
        }

        return NGX_OK;
    }

    if (nt == 0) {
        why = "an empty line";

    } else {
        why = ngx_ai_cost_state_fields(st, tok, nt, &rec, &kind);
    }

    if (why) {
        if (st->load) {
            st->why = "it changed while it was read";
            st->why_line = st->lines;
            return NGX_DONE;
        }

        if (st->v1_why == NULL) {
            st->v1_why = why;
            st->v1_line = st->lines;
        }

        return NGX_OK;
    }

    if (kind == NGX_AI_COST_STATE_RECORD
        || kind == NGX_AI_COST_STATE_DELTA)
    {
        return ngx_ai_cost_state_record(st, &rec);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_cost_state_v2(ngx_ai_cost_state_t *st, u_char *p, size_t len)
{
    char                     *why;
    uint32_t                  crc;
    ngx_str_t                 tok[NGX_AI_COST_STATE_MAX_FIELDS];
    ngx_uint_t                nt, kind;
    ngx_ai_cost_state_rec_t   rec;

    if (len == 0) {
        return ngx_ai_cost_state_bad(st, "an empty line");
    }

    if (len < 10 || p[len - 9] != ' '
        || ngx_ai_cost_state_crc(p + len - 8, &crc) != NGX_OK)
    {
        return ngx_ai_cost_state_bad(st, "a line without a checksum");
    }

    len -= 9;

    if (ngx_crc32_long(p, len) != crc) {
        return ngx_ai_cost_state_bad(st, "its checksum does not match");
    }

    if (st->lines == 1) {

        if (len == sizeof(NGX_AI_COST_STATE_MAGIC2) - 1
            && ngx_strncmp(p, NGX_AI_COST_STATE_MAGIC2, len) == 0)
        {
            st->has_head = 1;
            return NGX_OK;
        }

        if (len > sizeof("ngx_ai_gateway_cost_state ") - 1
            && ngx_strncmp(p, "ngx_ai_gateway_cost_state ",
                           sizeof("ngx_ai_gateway_cost_state ") - 1) == 0)
        {
            st->why = "it is not a state file of a version this module "
                      "reads";
            st->why_line = 1;
            return NGX_DONE;
        }
    }

    if (st->has_end) {
        return ngx_ai_cost_state_bad(st, "a line after the end line");
    }

    /* at least one field: len is 1 or more */

    nt = ngx_ai_cost_state_split(p, p + len, tok,
                                 NGX_AI_COST_STATE_MAX_FIELDS);

    why = ngx_ai_cost_state_fields(st, tok, nt, &rec, &kind);

    if (why) {

        /* refused as a whole, unless records were given already */

        if (kind == NGX_AI_COST_STATE_OTHER_ZONE
            && st->accounts + st->ledgers + st->deltas == 0)
        {
            st->why = why;
            st->why_line = st->lines;
            return NGX_DONE;
        }

        return ngx_ai_cost_state_bad(st, why);
    }

    if (kind == NGX_AI_COST_STATE_RECORD
        || kind == NGX_AI_COST_STATE_DELTA)
    {
        return ngx_ai_cost_state_record(st, &rec);
    }

    return NGX_OK;
}


/*
 * A version 2 line that does not check out: skipped, counted.  In
 * version 1, a line too long: a fault, the file is refused.
 */

static ngx_int_t
ngx_ai_cost_state_bad(ngx_ai_cost_state_t *st, char *why)
{
    if (st->version == 1) {
        if (st->v1_end != NGX_AI_COST_STATE_END_NONE) {
            st->v1_end = NGX_AI_COST_STATE_END_NONE;

            if (st->v1_why == NULL) {
                st->v1_why = "an unknown record";
                st->v1_line = st->end_line;
            }
        }

        if (st->v1_why == NULL) {
            st->v1_why = why;
            st->v1_line = st->lines;
        }

        if (st->load) {
            st->why = "it changed while it was read";
            st->why_line = st->lines;
            return NGX_DONE;
        }

        return NGX_OK;
    }

    if (st->skipped < NGX_AI_COST_STATE_BAD) {
        st->bad_line[st->skipped] = st->lines;
        st->bad_why[st->skipped] = why;
    }

    st->skipped++;

    return NGX_OK;
}


static ngx_int_t
ngx_ai_cost_state_record(ngx_ai_cost_state_t *st,
    ngx_ai_cost_state_rec_t *rec)
{
    if (rec->type == NGX_AI_COST_STATE_LEDGER) {
        st->ledgers++;

    } else if (rec->type == NGX_AI_COST_STATE_ACCOUNT) {
        st->accounts++;

    } else {
        st->deltas++;
    }

    if (st->handler == NULL || (st->version == 1 && !st->load)) {
        return NGX_OK;
    }

    if (st->handler(st->data, rec) != NGX_OK) {
        st->stopped = 1;
        return NGX_DONE;
    }

    return NGX_OK;
}


void
ngx_ai_cost_state_finish(ngx_ai_cost_state_t *st)
{
    ngx_uint_t  cut;

    if (st->why || st->stopped) {
        return;
    }

    cut = (st->len || st->long_line);

    if (st->lines == 0 && !cut) {
        st->why = "it is empty";
        return;
    }

    if (st->version != 2) {

        if (cut) {
            st->why = "it is truncated";

        } else if (st->v1_end == NGX_AI_COST_STATE_END_NONE
                   || st->v1_end == NGX_AI_COST_STATE_END_FIELDS)
        {
            st->why = "it is truncated: no end line";

        } else if (st->v1_end == NGX_AI_COST_STATE_END_INVALID) {
            st->why = "its end line is invalid";

        } else if ((st->crc_before ^ 0xffffffff) != st->end_crc) {
            st->why = "its checksum does not match";

        } else if (st->v1_why) {
            st->why = st->v1_why;
            st->why_line = st->v1_line;

        } else if (!st->has_totals) {
            st->why = "it has no totals";
            st->why_line = st->end_line;

        } else if (st->end_records != st->accounts + st->ledgers) {
            st->why = "its record count does not match";

        } else {
            st->has_end = 1;
        }

        return;
    }

    if (cut) {
        st->lines++;
        st->len = 0;
        st->long_line = 0;
        st->truncated = 1;

        (void) ngx_ai_cost_state_bad(st, "a line cut short");
    }

    if (!st->has_end) {
        st->truncated = 1;
    }

    if (!st->has_head && !st->has_zone && !st->has_totals && !st->has_end
        && !st->has_sync && st->accounts + st->ledgers + st->deltas == 0)
    {
        st->why = "no line of it checks out";
    }
}


/* the fields of a line (its CRC32 apart): a header line or a record */

static char *
ngx_ai_cost_state_fields(ngx_ai_cost_state_t *st, ngx_str_t *tok,
    ngx_uint_t nt, ngx_ai_cost_state_rec_t *rec, ngx_uint_t *kind)
{
    ngx_str_t   name;
    ngx_uint_t  i;
    uint64_t    v, n[NGX_AI_COST_STATE_TOTALS];

    *kind = 0;

    if (tok[0].len == 4 && ngx_strncmp(tok[0].data, "zone", 4) == 0) {
        if (nt != 2
            || ngx_ai_cost_state_str(&tok[1], st->route, sizeof(st->route),
                                     sizeof(st->route), &name)
               != NGX_OK)
        {
            return "an invalid zone line";
        }

        if (name.len != st->zone->len
            || ngx_strncmp(name.data, st->zone->data, name.len) != 0)
        {
            *kind = NGX_AI_COST_STATE_OTHER_ZONE;
            return "it is the state of another zone";
        }

        *kind = NGX_AI_COST_STATE_ZONE;
        st->has_zone = 1;

        return NULL;
    }

    if (tok[0].len == 4 && ngx_strncmp(tok[0].data, "time", 4) == 0) {
        if (nt != 2 || ngx_ai_cost_state_u64(&tok[1], &v) != NGX_OK) {
            return "an invalid time line";
        }

        *kind = NGX_AI_COST_STATE_TIME;

        return NULL;
    }

    if (tok[0].len == 6 && ngx_strncmp(tok[0].data, "totals", 6) == 0) {
        if (nt != 1 + NGX_AI_COST_STATE_TOTALS) {
            return "an invalid totals line";
        }

        for (i = 0; i < NGX_AI_COST_STATE_TOTALS; i++) {
            if (ngx_ai_cost_state_u64(&tok[1 + i], &n[i]) != NGX_OK) {
                return "an invalid number";
            }
        }

        ngx_memcpy(st->totals, n, sizeof(n));

        *kind = NGX_AI_COST_STATE_TOTALS_LINE;
        st->has_totals = 1;

        return NULL;
    }

    /* version 1 reads its end line apart */

    if (st->version == 2
        && tok[0].len == 3 && ngx_strncmp(tok[0].data, "end", 3) == 0)
    {
        if (nt != 2 || ngx_ai_cost_state_u64(&tok[1], &v) != NGX_OK) {
            return "an invalid end line";
        }

        *kind = NGX_AI_COST_STATE_END;
        st->end_records = v;
        st->end_line = st->lines;
        st->has_end = 1;

        return NULL;
    }

    if (st->version == 2
        && tok[0].len == 4 && ngx_strncmp(tok[0].data, "sync", 4) == 0)
    {
        *kind = NGX_AI_COST_STATE_SYNC;
        return ngx_ai_cost_state_sync(st, tok, nt);
    }

    if (st->version == 2 && tok[0].len == 2 && tok[0].data[0] == 'd'
        && (tok[0].data[1] == 'l' || tok[0].data[1] == 'a'))
    {
        *kind = NGX_AI_COST_STATE_DELTA;
        return ngx_ai_cost_state_rec(st, tok, nt, rec, 1);
    }

    if (tok[0].len != 1 || (tok[0].data[0] != 'l' && tok[0].data[0] != 'a'))
    {
        return "an unknown record";
    }

    *kind = NGX_AI_COST_STATE_RECORD;

    return ngx_ai_cost_state_rec(st, tok, nt, rec, 0);
}


/* "sync INSTANCE SEQ FROZEN P1..P8 S1..S8" */

static char *
ngx_ai_cost_state_sync(ngx_ai_cost_state_t *st, ngx_str_t *tok,
    ngx_uint_t nt)
{
    u_char      c;
    uint64_t    v, pend[NGX_AI_COST_STATE_TOTALS];
    uint64_t    send[NGX_AI_COST_STATE_TOTALS];
    ngx_uint_t  i;

    if (nt != 4 + 2 * NGX_AI_COST_STATE_TOTALS
        || tok[1].len != NGX_AI_COST_STATE_INSTANCE
        || tok[3].len != 1
        || (tok[3].data[0] != '0' && tok[3].data[0] != '1')
        || ngx_ai_cost_state_u64(&tok[2], &v) != NGX_OK)
    {
        return "an invalid sync line";
    }

    for (i = 0; i < NGX_AI_COST_STATE_INSTANCE; i++) {
        c = tok[1].data[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return "an invalid sync line";
        }
    }

    for (i = 0; i < NGX_AI_COST_STATE_TOTALS; i++) {
        if (ngx_ai_cost_state_u64(&tok[4 + i], &pend[i]) != NGX_OK
            || ngx_ai_cost_state_u64(&tok[4 + NGX_AI_COST_STATE_TOTALS + i],
                                     &send[i])
               != NGX_OK)
        {
            return "an invalid number";
        }
    }

    ngx_memcpy(st->instance, tok[1].data, NGX_AI_COST_STATE_INSTANCE);
    ngx_memcpy(st->sync_pend, pend, sizeof(pend));
    ngx_memcpy(st->sync_send, send, sizeof(send));
    st->seq = v;
    st->frozen = tok[3].data[0] - '0';
    st->has_sync = 1;

    return NULL;
}


static char *
ngx_ai_cost_state_rec(ngx_ai_cost_state_t *st, ngx_str_t *tok,
    ngx_uint_t nt, ngx_ai_cost_state_rec_t *rec, ngx_uint_t delta)
{
    ngx_uint_t  i, j, want, ledger;

    ngx_memzero(rec, sizeof(ngx_ai_cost_state_rec_t));

    ledger = (tok[0].data[delta] == 'l');

    if (ledger) {
        rec->type = delta ? NGX_AI_COST_STATE_DLEDGER
                          : NGX_AI_COST_STATE_LEDGER;
        want = delta ? 22 : 15;

    } else {
        rec->type = delta ? NGX_AI_COST_STATE_DACCOUNT
                          : NGX_AI_COST_STATE_ACCOUNT;
        want = delta ? 15 : 10;
    }

    if (nt != want) {
        return "a record with a wrong number of fields";
    }

    if (tok[1].len != 1 || (tok[1].data[0] != '0' && tok[1].data[0] != '1'))
    {
        return "an invalid key flag";
    }

    rec->keyed = tok[1].data[0] - '0';

    if (ngx_ai_cost_state_digest(&tok[2], rec->keyed, rec->digest) != NGX_OK)
    {
        return "an invalid key digest";
    }

    if (ngx_ai_cost_state_str(&tok[3], st->route, sizeof(st->route),
                              NGX_AI_COST_STATE_MAX_ROUTE, &rec->route)
        != NGX_OK)
    {
        return "an invalid route";
    }

    i = 4;

    if (ledger) {
        if (ngx_ai_cost_state_str(&tok[4], st->model, sizeof(st->model),
                                  NGX_AI_COST_STATE_MAX_MODEL, &rec->model)
            != NGX_OK)
        {
            return "an invalid model";
        }

        i = 5;
    }

    if (delta) {
        if (tok[i].len != 1
            || (tok[i].data[0] != '0' && tok[i].data[0] != '1'))
        {
            return "an invalid batch flag";
        }

        rec->batch = tok[i].data[0] - '0';

        for (i++, j = 0; i < nt; i++, j++) {
            if (ngx_ai_cost_state_i64(&tok[i], &rec->d[j]) != NGX_OK) {
                return "an invalid number";
            }
        }

        return NULL;
    }

    for (j = 0; i < nt; i++, j++) {
        if (ngx_ai_cost_state_u64(&tok[i], &rec->n[j]) != NGX_OK) {
            return "an invalid number";
        }
    }

    return NULL;
}


/* the fields of p..last split on single spaces; max + 1: too many */

static ngx_uint_t
ngx_ai_cost_state_split(u_char *p, u_char *last, ngx_str_t *tok,
    ngx_uint_t max)
{
    u_char      *s;
    ngx_uint_t   n;

    n = 0;

    while (p < last) {
        s = p;

        while (p < last && *p != ' ') {
            p++;
        }

        if (n == max) {
            return max + 1;
        }

        tok[n].data = s;
        tok[n].len = p - s;
        n++;

        if (p < last) {
            p++;
        }
    }

    return n;
}


/* 1 to 20 decimal digits, no sign, at most 2^64 - 1 */

static ngx_int_t
ngx_ai_cost_state_u64(ngx_str_t *s, uint64_t *v)
{
    size_t    i;
    uint64_t  n;

    if (s->len == 0 || s->len > 20) {
        return NGX_ERROR;
    }

    n = 0;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < '0' || s->data[i] > '9') {
            return NGX_ERROR;
        }

        if (n > ((uint64_t) -1 - (s->data[i] - '0')) / 10) {
            return NGX_ERROR;
        }

        n = n * 10 + (s->data[i] - '0');
    }

    *v = n;

    return NGX_OK;
}


/* an optional "-" and 1 to 19 decimal digits, within int64_t */

static ngx_int_t
ngx_ai_cost_state_i64(ngx_str_t *s, int64_t *v)
{
    uint64_t   n;
    ngx_str_t  digits;

    digits = *s;

    if (digits.len && digits.data[0] == '-') {
        digits.data++;
        digits.len--;
    }

    if (ngx_ai_cost_state_u64(&digits, &n) != NGX_OK
        || n > (uint64_t) INT64_MAX)
    {
        return NGX_ERROR;
    }

    *v = (digits.len == s->len) ? (int64_t) n : -(int64_t) n;

    return NGX_OK;
}


/* 8 hex digits, in two halves: 8 overflow a 32-bit ngx_int_t */

static ngx_int_t
ngx_ai_cost_state_crc(u_char *p, uint32_t *crc)
{
    ngx_int_t  hi, lo;

    hi = ngx_hextoi(p, 4);
    lo = ngx_hextoi(p + 4, 4);

    if (hi == NGX_ERROR || lo == NGX_ERROR) {
        return NGX_ERROR;
    }

    *crc = ((uint32_t) hi << 16) | (uint32_t) lo;

    return NGX_OK;
}


/*
 * "=" and the string, bytes outside 0x21-0x7e and "%" as %XX, decoded
 * into buf (size bytes: a string of max bytes is at most 3 * max
 * written); at most max bytes
 */

static ngx_int_t
ngx_ai_cost_state_str(ngx_str_t *s, u_char *buf, size_t size, size_t max,
    ngx_str_t *out)
{
    u_char  *d;

    if (s->len == 0 || s->data[0] != '=' || s->len - 1 > size) {
        return NGX_ERROR;
    }

    d = ngx_ai_percent_decode(buf, s->data + 1, s->len - 1, 1);

    if (d == NULL || (size_t) (d - buf) > max) {
        return NGX_ERROR;
    }

    out->data = buf;
    out->len = d - buf;

    return NGX_OK;
}


/* 64 hex digits, or "-" for no key */

static ngx_int_t
ngx_ai_cost_state_digest(ngx_str_t *s, ngx_uint_t keyed, u_char *digest)
{
    ngx_int_t   c;
    ngx_uint_t  i;

    if (!keyed) {
        return (s->len == 1 && s->data[0] == '-') ? NGX_OK : NGX_ERROR;
    }

    if (s->len != 2 * NGX_AI_COST_STATE_DIGEST_LEN) {
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_AI_COST_STATE_DIGEST_LEN; i++) {
        c = ngx_hextoi(s->data + 2 * i, 2);
        if (c == NGX_ERROR) {
            return NGX_ERROR;
        }

        digest[i] = (u_char) c;
    }

    return NGX_OK;
}


/* ---- the writer ---- */

ngx_int_t
ngx_ai_cost_state_write_head(ngx_ai_buf_t *b, ngx_str_t *zone, uint64_t now,
    uint64_t *totals)
{
    size_t  start;

    start = b->len;

    if (ngx_ai_buf_append_str(b, NGX_AI_COST_STATE_MAGIC2) != NGX_OK
        || ngx_ai_cost_state_seal(b, start) != NGX_OK)
    {
        return NGX_ERROR;
    }

    start = b->len;

    if (ngx_ai_buf_append_str(b, "zone ") != NGX_OK
        || ngx_ai_cost_state_write_str(b, zone) != NGX_OK
        || ngx_ai_cost_state_seal(b, start) != NGX_OK)
    {
        return NGX_ERROR;
    }

    start = b->len;

    if (ngx_ai_buf_append_str(b, "time ") != NGX_OK
        || ngx_ai_buf_append_uint(b, now) != NGX_OK
        || ngx_ai_cost_state_seal(b, start) != NGX_OK)
    {
        return NGX_ERROR;
    }

    start = b->len;

    if (ngx_ai_buf_append_str(b, "totals") != NGX_OK
        || ngx_ai_cost_state_nums(b, totals, NGX_AI_COST_STATE_TOTALS)
           != NGX_OK
        || ngx_ai_cost_state_seal(b, start) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_ai_cost_state_write_rec(ngx_ai_buf_t *b, ngx_ai_cost_state_rec_t *rec)
{
    size_t  start;

    start = b->len;

    if (ngx_ai_cost_state_write_id(b, rec->type == NGX_AI_COST_STATE_LEDGER
                                      ? "l " : "a ", rec)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rec->type == NGX_AI_COST_STATE_LEDGER) {
        if (ngx_ai_cost_state_nums(b, rec->n, 10) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_ai_cost_state_nums(b, rec->n, 6) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_cost_state_seal(b, start);
}


ngx_int_t
ngx_ai_cost_state_write_delta(ngx_ai_buf_t *b, ngx_ai_cost_state_rec_t *rec)
{
    size_t      start;
    ngx_uint_t  i, n;

    start = b->len;

    if (ngx_ai_cost_state_write_id(b, rec->type == NGX_AI_COST_STATE_DLEDGER
                                      ? "dl " : "da ", rec)
        != NGX_OK
        || ngx_ai_buf_append_str(b, rec->batch ? " 1" : " 0") != NGX_OK)
    {
        return NGX_ERROR;
    }

    n = (rec->type == NGX_AI_COST_STATE_DLEDGER) ? 16 : 10;

    for (i = 0; i < n; i++) {
        if (ngx_ai_buf_append_str(b, rec->d[i] < 0 ? " -" : " ") != NGX_OK
            || ngx_ai_buf_append_uint(b, rec->d[i] < 0
                                         ? (uint64_t) 0 - (uint64_t) rec->d[i]
                                         : (uint64_t) rec->d[i])
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_ai_cost_state_seal(b, start);
}


ngx_int_t
ngx_ai_cost_state_write_sync(ngx_ai_buf_t *b, u_char *instance, uint64_t seq,
    ngx_uint_t frozen, uint64_t *pend, uint64_t *send)
{
    size_t  start;

    start = b->len;

    if (ngx_ai_buf_append_str(b, "sync ") != NGX_OK
        || ngx_ai_buf_append(b, instance, NGX_AI_COST_STATE_INSTANCE)
           != NGX_OK
        || ngx_ai_buf_append_str(b, " ") != NGX_OK
        || ngx_ai_buf_append_uint(b, seq) != NGX_OK
        || ngx_ai_buf_append_str(b, frozen ? " 1" : " 0") != NGX_OK
        || ngx_ai_cost_state_nums(b, pend, NGX_AI_COST_STATE_TOTALS)
           != NGX_OK
        || ngx_ai_cost_state_nums(b, send, NGX_AI_COST_STATE_TOTALS)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_ai_cost_state_seal(b, start);
}


/* TYPE KEYED DIGEST =ROUTE [=MODEL]: a record's identity */

static ngx_int_t
ngx_ai_cost_state_write_id(ngx_ai_buf_t *b, const char *type,
    ngx_ai_cost_state_rec_t *rec)
{
    u_char      *d;
    ngx_uint_t   i;

    if (ngx_ai_buf_append_str(b, type) != NGX_OK
        || ngx_ai_buf_append_str(b, rec->keyed ? "1 " : "0 ") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rec->keyed) {
        if (ngx_ai_buf_reserve(b, 2 * NGX_AI_COST_STATE_DIGEST_LEN)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        d = b->data + b->len;

        for (i = 0; i < NGX_AI_COST_STATE_DIGEST_LEN; i++) {
            *d++ = ngx_ai_cost_state_hex[rec->digest[i] >> 4];
            *d++ = ngx_ai_cost_state_hex[rec->digest[i] & 0xf];
        }

        b->len = d - b->data;

    } else if (ngx_ai_buf_append_str(b, "-") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(b, " ") != NGX_OK
        || ngx_ai_cost_state_write_str(b, &rec->route) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rec->type == NGX_AI_COST_STATE_LEDGER
        || rec->type == NGX_AI_COST_STATE_DLEDGER)
    {
        if (ngx_ai_buf_append_str(b, " ") != NGX_OK
            || ngx_ai_cost_state_write_str(b, &rec->model) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_ai_cost_state_write_end(ngx_ai_buf_t *b, uint64_t records)
{
    size_t  start;

    start = b->len;

    if (ngx_ai_buf_append_str(b, "end ") != NGX_OK
        || ngx_ai_buf_append_uint(b, records) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_ai_cost_state_seal(b, start);
}


ngx_int_t
ngx_ai_cost_state_write_str(ngx_ai_buf_t *b, ngx_str_t *s)
{
    u_char   c, *d;
    size_t   i;

    static u_char  hex[] = "0123456789ABCDEF";

    if (ngx_ai_buf_reserve(b, 1 + 3 * s->len) != NGX_OK) {
        return NGX_ERROR;
    }

    d = b->data + b->len;
    *d++ = '=';

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c <= 0x20 || c >= 0x7f || c == '%') {
            *d++ = '%';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 0xf];

        } else {
            *d++ = c;
        }
    }

    b->len = d - b->data;

    return NGX_OK;
}


static ngx_int_t
ngx_ai_cost_state_nums(ngx_ai_buf_t *b, uint64_t *n, ngx_uint_t count)
{
    ngx_uint_t  i;

    for (i = 0; i < count; i++) {
        if (ngx_ai_buf_append_str(b, " ") != NGX_OK
            || ngx_ai_buf_append_uint(b, n[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the line from start on: " CRC32" of it and a line feed */

static ngx_int_t
ngx_ai_cost_state_seal(ngx_ai_buf_t *b, size_t start)
{
    u_char    *d;
    uint32_t   crc;
    ngx_int_t  i;

    crc = ngx_crc32_long(b->data + start, b->len - start);

    if (ngx_ai_buf_reserve(b, 10) != NGX_OK) {
        return NGX_ERROR;
    }

    d = b->data + b->len;
    *d++ = ' ';

    for (i = 28; i >= 0; i -= 4) {
        *d++ = ngx_ai_cost_state_hex[(crc >> i) & 0xf];
    }

    *d++ = '\n';

    b->len = d - b->data;

    return NGX_OK;
}
