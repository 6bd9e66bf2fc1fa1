
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The reader of a cost zone's state file (see ngx_ai_gateway_state.h).
 * The format, as ngx_http_ai_cost_save() in ngx_ai_gateway_cost.c writes
 * it: one record a line, fields separated by one space; strings are
 * written "=" and the string with bytes outside 0x21-0x7e and "%" as %XX;
 * digests in hex ("-": no key):
 *
 *   ngx_ai_gateway_cost_state 1
 *   zone =NAME
 *   time UNIX
 *   totals REQUESTS ERRORS IN OUT COST ABORTED EST_IN EST_COST
 *   a KEYED DIGEST =ROUTE DAY DAY_SPEND MONTH MONTH_SPEND TOTAL LAST
 *   l KEYED DIGEST =ROUTE =MODEL REQUESTS ERRORS IN OUT COST ABORTED
 *     EST_IN EST_COST FIRST LAST                        (one line)
 *   end RECORDS CRC32
 *
 * CRC32 (8 hex digits) is of every byte before the "end" line, which is
 * last.  The whole file is checked before the caller loads anything.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_state.h"


static char *ngx_ai_cost_state_check(ngx_pool_t *pool, u_char *buf,
    size_t size, ngx_str_t *zone, ngx_array_t *recs, uint64_t *totals,
    ngx_uint_t *line);
static ngx_uint_t ngx_ai_cost_state_split(u_char *p, u_char *last,
    ngx_str_t *tok, ngx_uint_t max);
static ngx_int_t ngx_ai_cost_state_u64(ngx_str_t *s, uint64_t *v);
static ngx_int_t ngx_ai_cost_state_str(ngx_pool_t *pool, ngx_str_t *s,
    ngx_str_t *out);
static ngx_int_t ngx_ai_cost_state_digest(ngx_str_t *s, ngx_uint_t keyed,
    u_char *digest);


char *
ngx_ai_cost_state_parse(ngx_pool_t *pool, u_char *buf, size_t size,
    ngx_str_t *zone, ngx_array_t *recs, uint64_t *totals, ngx_uint_t *line)
{
    char  *why;

    *line = 0;

    why = ngx_ai_cost_state_check(pool, buf, size, zone, recs, totals, line);

    if (why) {
        recs->nelts = 0;
    }

    return why;
}


static char *
ngx_ai_cost_state_check(ngx_pool_t *pool, u_char *buf, size_t size,
    ngx_str_t *zone, ngx_array_t *recs, uint64_t *totals, ngx_uint_t *line)
{
    u_char                   *p, *eol, *end, *last;
    uint32_t                  crc;
    uint64_t                  v, records, n[NGX_AI_COST_STATE_TOTALS];
    ngx_int_t                 hi, lo;
    ngx_str_t                 tok[16], name;
    ngx_uint_t                i, j, nt, want, seen_totals;
    ngx_ai_cost_state_rec_t  *rec;

    if (size == 0) {
        return "it is empty";
    }

    last = buf + size;

    if (last[-1] != '\n') {
        return "it is truncated";
    }

    /* the "end" line: the last one */

    for (end = last - 1; end > buf && end[-1] != '\n'; end--) {
        /* void */
    }

    nt = ngx_ai_cost_state_split(end, last - 1, tok, 16);

    if (nt != 3 || tok[0].len != 3 || ngx_strncmp(tok[0].data, "end", 3) != 0)
    {
        return "it is truncated: no end line";
    }

    /* the CRC in two halves: 8 hex digits overflow a 32-bit ngx_int_t */

    if (ngx_ai_cost_state_u64(&tok[1], &records) != NGX_OK
        || tok[2].len != 8)
    {
        return "its end line is invalid";
    }

    hi = ngx_hextoi(tok[2].data, 4);
    lo = ngx_hextoi(tok[2].data + 4, 4);

    if (hi == NGX_ERROR || lo == NGX_ERROR) {
        return "its end line is invalid";
    }

    crc = ((uint32_t) hi << 16) | (uint32_t) lo;

    if (ngx_crc32_long(buf, end - buf) != crc) {
        return "its checksum does not match";
    }

    ngx_memzero(totals, NGX_AI_COST_STATE_TOTALS * sizeof(uint64_t));
    seen_totals = 0;

    for (p = buf, *line = 1; p < end; p = eol + 1, (*line)++) {

        eol = ngx_strlchr(p, end, '\n');
        if (eol == NULL) {
            return "a line is not terminated";
        }

        nt = ngx_ai_cost_state_split(p, eol, tok, 16);

        if (*line == 1) {
            if ((size_t) (eol - p) != sizeof(NGX_AI_COST_STATE_MAGIC) - 1
                || ngx_strncmp(p, NGX_AI_COST_STATE_MAGIC, eol - p) != 0)
            {
                return "it is not a state file of this version";
            }

            continue;
        }

        if (nt == 0) {
            return "an empty line";
        }

        if (tok[0].len == 4 && ngx_strncmp(tok[0].data, "zone", 4) == 0) {
            if (nt != 2
                || ngx_ai_cost_state_str(pool, &tok[1], &name) != NGX_OK)
            {
                return "an invalid zone line";
            }

            if (name.len != zone->len
                || ngx_strncmp(name.data, zone->data, name.len) != 0)
            {
                return "it is the state of another zone";
            }

            continue;
        }

        if (tok[0].len == 4 && ngx_strncmp(tok[0].data, "time", 4) == 0) {
            if (nt != 2 || ngx_ai_cost_state_u64(&tok[1], &v) != NGX_OK) {
                return "an invalid time line";
            }

            continue;
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

            ngx_memcpy(totals, n, sizeof(n));

            seen_totals = 1;
            continue;
        }

        if (tok[0].len != 1 || (tok[0].data[0] != 'l' && tok[0].data[0] != 'a'))
        {
            return "an unknown record";
        }

        rec = ngx_array_push(recs);
        if (rec == NULL) {
            return "out of memory";
        }

        ngx_memzero(rec, sizeof(ngx_ai_cost_state_rec_t));

        if (tok[0].data[0] == 'l') {
            rec->type = NGX_AI_COST_STATE_LEDGER;
            want = 15;

        } else {
            rec->type = NGX_AI_COST_STATE_ACCOUNT;
            want = 10;
        }

        if (nt != want) {
            return "a record with a wrong number of fields";
        }

        if (tok[1].len != 1 || (tok[1].data[0] != '0' && tok[1].data[0] != '1'))
        {
            return "an invalid key flag";
        }

        rec->keyed = tok[1].data[0] - '0';

        if (ngx_ai_cost_state_digest(&tok[2], rec->keyed, rec->digest)
            != NGX_OK)
        {
            return "an invalid key digest";
        }

        if (ngx_ai_cost_state_str(pool, &tok[3], &rec->route) != NGX_OK
            || rec->route.len > NGX_AI_COST_STATE_MAX_ROUTE)
        {
            return "an invalid route";
        }

        i = 4;

        if (rec->type == NGX_AI_COST_STATE_LEDGER) {
            if (ngx_ai_cost_state_str(pool, &tok[4], &rec->model) != NGX_OK
                || rec->model.len > NGX_AI_COST_STATE_MAX_MODEL)
            {
                return "an invalid model";
            }

            i = 5;
        }

        for (j = 0; i < nt; i++, j++) {
            if (ngx_ai_cost_state_u64(&tok[i], &rec->n[j]) != NGX_OK) {
                return "an invalid number";
            }
        }
    }

    if (!seen_totals) {
        return "it has no totals";
    }

    *line = 0;

    if (records != recs->nelts) {
        return "its record count does not match";
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


/* "=" and the string, bytes outside 0x21-0x7e and "%" as %XX */

static ngx_int_t
ngx_ai_cost_state_str(ngx_pool_t *pool, ngx_str_t *s, ngx_str_t *out)
{
    u_char  *d;

    if (s->len == 0 || s->data[0] != '=') {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, s->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    d = ngx_ai_percent_decode(out->data, s->data + 1, s->len - 1, 1);
    if (d == NULL) {
        return NGX_ERROR;
    }

    out->len = d - out->data;

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
