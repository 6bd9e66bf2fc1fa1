
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The client key file of ai_keys, read from bytes (pure): each line's
 * syntax, then the checks across lines (a key twice, a team twice, the
 * lines of one name that disagree on its limits), and a model matched
 * against a key's models= list.  No message quotes a key.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <stdlib.h>

#include "ngx_ai_gateway_keys_file.h"


static ngx_int_t ngx_ai_keys_line(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_ai_key_entry_t *e, ngx_ai_keys_error_t *err);
static ngx_int_t ngx_ai_keys_head(u_char *p, u_char *last,
    ngx_ai_key_entry_t *e, ngx_ai_keys_error_t *err);
static ngx_int_t ngx_ai_keys_attr(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_ai_key_entry_t *e, ngx_uint_t *seen, ngx_ai_keys_error_t *err);
static ngx_int_t ngx_ai_keys_models(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_ai_key_entry_t *e);
static ngx_int_t ngx_ai_keys_number(u_char *p, u_char *last, uint64_t *n);
static ngx_int_t ngx_ai_keys_budget(u_char *p, u_char *last,
    ngx_ai_key_entry_t *e);
static ngx_int_t ngx_ai_keys_digits(u_char *p, size_t n, ngx_uint_t *v);
static int ngx_ai_keys_by_digest(const void *a, const void *b);
static int ngx_ai_keys_by_name(const void *a, const void *b);
static ngx_uint_t ngx_ai_keys_same_limits(ngx_ai_key_entry_t *a,
    ngx_ai_key_entry_t *b);
static ngx_uint_t ngx_ai_keys_str_eq(ngx_str_t *a, ngx_str_t *b);


#define NGX_AI_KEYS_A_NAME      0x01
#define NGX_AI_KEYS_A_TEAM      0x02
#define NGX_AI_KEYS_A_MODELS    0x04
#define NGX_AI_KEYS_A_RPM       0x08
#define NGX_AI_KEYS_A_TPM       0x10
#define NGX_AI_KEYS_A_BUDGET    0x20
#define NGX_AI_KEYS_A_EXPIRES   0x40


#define ngx_ai_keys_space(c)  ((c) == ' ' || (c) == '\t')


static void
ngx_ai_keys_fail(ngx_ai_keys_error_t *err, ngx_uint_t line, const char *why)
{
    err->line = line;
    err->other = 0;
    err->why = why;
}


/*
 * The file's lines into entries (ngx_ai_key_entry_t).  NGX_DECLINED: a
 * line is malformed, err says which and why; NGX_ERROR: no memory.
 */

ngx_int_t
ngx_ai_keys_parse(ngx_pool_t *pool, u_char *buf, size_t len,
    ngx_array_t *entries, ngx_ai_keys_error_t *err)
{
    u_char              *p, *q, *last, *end;
    ngx_int_t            rc;
    ngx_uint_t           line;
    ngx_ai_key_entry_t  *e;

    last = buf + len;
    line = 0;

    for (p = buf; p < last; p = q + 1) {
        line++;

        q = ngx_strlchr(p, last, '\n');
        if (q == NULL) {
            q = last;
        }

        if ((size_t) (q - p) > NGX_AI_KEY_MAX_LINE) {
            ngx_ai_keys_fail(err, line, "line too long");
            return NGX_DECLINED;
        }

        end = q;

        if (end > p && end[-1] == '\r') {
            end--;
        }

        while (p < end && ngx_ai_keys_space(*p)) {
            p++;
        }

        while (end > p && ngx_ai_keys_space(end[-1])) {
            end--;
        }

        if (p == end || *p == '#') {
            continue;
        }

        e = ngx_array_push(entries);
        if (e == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(e, sizeof(ngx_ai_key_entry_t));
        e->line = line;

        rc = ngx_ai_keys_line(pool, p, end, e, err);

        if (rc != NGX_OK) {
            entries->nelts--;
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_keys_line(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_ai_key_entry_t *e, ngx_ai_keys_error_t *err)
{
    u_char      *q;
    ngx_int_t    rc;
    ngx_uint_t   seen;

    for (q = p; q < last && !ngx_ai_keys_space(*q); q++) {
        /* void */
    }

    if (ngx_ai_keys_head(p, q, e, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    seen = 0;

    for (p = q; p < last; p = q) {

        while (p < last && ngx_ai_keys_space(*p)) {
            p++;
        }

        for (q = p; q < last && !ngx_ai_keys_space(*q); q++) {
            /* void */
        }

        rc = ngx_ai_keys_attr(pool, p, q, e, &seen, err);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (e->type == NGX_AI_KEY_TEAM) {
        if (seen & ~NGX_AI_KEYS_A_BUDGET) {
            ngx_ai_keys_fail(err, e->line, "a team line takes only budget=");
            return NGX_DECLINED;
        }

        if (!(seen & NGX_AI_KEYS_A_BUDGET)) {
            ngx_ai_keys_fail(err, e->line, "a team line needs budget=");
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (!(seen & NGX_AI_KEYS_A_NAME)) {
        ngx_ai_keys_fail(err, e->line, "a key needs name=");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* sha256:<64 hex>, plain:<key> or team:<name> */

static ngx_int_t
ngx_ai_keys_head(u_char *p, u_char *last, ngx_ai_key_entry_t *e,
    ngx_ai_keys_error_t *err)
{
    u_char      *q;
    size_t       len;
    ngx_int_t    hi, lo;
    ngx_uint_t   i;

    len = last - p;

    if (len > 7 && ngx_strncmp(p, "sha256:", 7) == 0) {
        p += 7;

        if (last - p != 2 * NGX_AI_KEY_DIGEST_LEN) {
            ngx_ai_keys_fail(err, e->line, "sha256: takes 64 hex digits");
            return NGX_DECLINED;
        }

        for (i = 0; i < NGX_AI_KEY_DIGEST_LEN; i++) {
            hi = ngx_hextoi(&p[2 * i], 1);
            lo = ngx_hextoi(&p[2 * i + 1], 1);

            if (hi == NGX_ERROR || lo == NGX_ERROR) {
                ngx_ai_keys_fail(err, e->line,
                                 "sha256: takes 64 hex digits");
                return NGX_DECLINED;
            }

            e->digest[i] = (u_char) (hi * 16 + lo);
        }

        e->type = NGX_AI_KEY_LINE;
        return NGX_OK;
    }

    if (len > 6 && ngx_strncmp(p, "plain:", 6) == 0) {
        p += 6;

        if (last - p < NGX_AI_KEY_MIN_PLAIN
            || last - p > NGX_AI_KEY_MAX_PLAIN)
        {
            ngx_ai_keys_fail(err, e->line, "plain: takes a key of 8 to 256 "
                             "bytes");
            return NGX_DECLINED;
        }

        for (q = p; q < last; q++) {
            if (*q < 0x21 || *q > 0x7e) {
                ngx_ai_keys_fail(err, e->line, "plain: a key of printable "
                                 "ASCII");
                return NGX_DECLINED;
            }
        }

        e->plain.data = p;
        e->plain.len = last - p;
        e->type = NGX_AI_KEY_LINE;
        return NGX_OK;
    }

    if (len > 5 && ngx_strncmp(p, "team:", 5) == 0) {
        p += 5;

        if (!ngx_ai_keys_valid_name(p, last - p)) {
            ngx_ai_keys_fail(err, e->line, "invalid team name");
            return NGX_DECLINED;
        }

        e->name.data = p;
        e->name.len = last - p;
        e->type = NGX_AI_KEY_TEAM;
        return NGX_OK;
    }

    ngx_ai_keys_fail(err, e->line, "a line starts with sha256:, plain: or "
                     "team:");

    return NGX_DECLINED;
}


static ngx_int_t
ngx_ai_keys_attr(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_ai_key_entry_t *e, ngx_uint_t *seen, ngx_ai_keys_error_t *err)
{
    u_char      *v;
    ngx_int_t    rc;
    ngx_uint_t   bit;
    const char  *why;

    v = ngx_strlchr(p, last, '=');

    if (v == NULL) {
        ngx_ai_keys_fail(err, e->line, "an attribute is NAME=VALUE");
        return NGX_DECLINED;
    }

    v++;
    rc = NGX_DECLINED;

#define ngx_ai_keys_is(s)                                                    \
    ((size_t) (v - p) == sizeof(s) - 1 && ngx_strncmp(p, s, v - p) == 0)

    if (ngx_ai_keys_is("name=")) {
        bit = NGX_AI_KEYS_A_NAME;
        why = "invalid name=: 1 to 64 of A-Z a-z 0-9 . _ -";

        if (ngx_ai_keys_valid_name(v, last - v)) {
            e->name.data = v;
            e->name.len = last - v;
            rc = NGX_OK;
        }

    } else if (ngx_ai_keys_is("team=")) {
        bit = NGX_AI_KEYS_A_TEAM;
        why = "invalid team=: 1 to 64 of A-Z a-z 0-9 . _ -";

        if (ngx_ai_keys_valid_name(v, last - v)) {
            e->team.data = v;
            e->team.len = last - v;
            rc = NGX_OK;
        }

    } else if (ngx_ai_keys_is("models=")) {
        bit = NGX_AI_KEYS_A_MODELS;
        why = "invalid models=: a comma list of provider/model, "
              "provider/prefix* or *";
        rc = ngx_ai_keys_models(pool, v, last, e);

    } else if (ngx_ai_keys_is("rpm=")) {
        bit = NGX_AI_KEYS_A_RPM;
        why = "invalid rpm=: 1 to 1000000000";
        rc = ngx_ai_keys_number(v, last, &e->rpm);

    } else if (ngx_ai_keys_is("tpm=")) {
        bit = NGX_AI_KEYS_A_TPM;
        why = "invalid tpm=: 1 to 1000000000";
        rc = ngx_ai_keys_number(v, last, &e->tpm);

    } else if (ngx_ai_keys_is("budget=")) {
        bit = NGX_AI_KEYS_A_BUDGET;
        why = "invalid budget=: USD[/day|/month]";
        rc = ngx_ai_keys_budget(v, last, e);

    } else if (ngx_ai_keys_is("expires=")) {
        bit = NGX_AI_KEYS_A_EXPIRES;
        why = "invalid expires=: an RFC 3339 time, "
              "2026-01-31T00:00:00Z";
        rc = ngx_ai_keys_parse_time(v, last - v, &e->expires);

    } else {
        ngx_ai_keys_fail(err, e->line, "unknown attribute");
        return NGX_DECLINED;
    }

#undef ngx_ai_keys_is

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (*seen & bit) {
        ngx_ai_keys_fail(err, e->line, "an attribute given twice");
        return NGX_DECLINED;
    }

    *seen |= bit;

    if (rc != NGX_OK) {
        ngx_ai_keys_fail(err, e->line, why);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_ai_keys_valid_name(u_char *p, size_t len)
{
    size_t  i;
    u_char  c;

    if (len == 0 || len > NGX_AI_KEY_MAX_NAME) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_'
              || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* a, b/c, d/e*: "*" only last; NGX_DECLINED: malformed */

static ngx_int_t
ngx_ai_keys_models(ngx_pool_t *pool, u_char *p, u_char *last,
    ngx_ai_key_entry_t *e)
{
    u_char     *q, *c;
    ngx_str_t  *m;

    e->models = ngx_palloc(pool, sizeof(ngx_array_t));
    if (e->models == NULL
        || ngx_array_init(e->models, pool, 4, sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    for ( ;; ) {
        q = ngx_strlchr(p, last, ',');
        if (q == NULL) {
            q = last;
        }

        if (q == p || q - p > NGX_AI_MAX_MODEL_LEN
            || e->models->nelts == NGX_AI_KEY_MAX_MODELS)
        {
            return NGX_DECLINED;
        }

        for (c = p; c < q; c++) {
            if (*c < 0x21 || *c > 0x7e || (*c == '*' && c != q - 1)) {
                return NGX_DECLINED;
            }
        }

        m = ngx_array_push(e->models);
        if (m == NULL) {
            return NGX_ERROR;
        }

        m->data = p;
        m->len = q - p;

        if (q == last) {
            return NGX_OK;
        }

        p = q + 1;
    }
}


static ngx_int_t
ngx_ai_keys_number(u_char *p, u_char *last, uint64_t *n)
{
    uint64_t  v;

    if (p == last || last - p > 10) {
        return NGX_DECLINED;
    }

    for (v = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_DECLINED;
        }

        v = v * 10 + (*p - '0');
    }

    if (v == 0 || v > NGX_AI_KEY_MAX_RATE) {
        return NGX_DECLINED;
    }

    *n = v;

    return NGX_OK;
}


/* USD[/day|/month]: the figure is checked by the caller's USD parser */

static ngx_int_t
ngx_ai_keys_budget(u_char *p, u_char *last, ngx_ai_key_entry_t *e)
{
    u_char  *s, *c;

    s = ngx_strlchr(p, last, '/');

    e->period = NGX_AI_KEY_EVER;

    if (s) {
        if (last - s == 4 && ngx_strncmp(s, "/day", 4) == 0) {
            e->period = NGX_AI_KEY_DAY;

        } else if (last - s == 6 && ngx_strncmp(s, "/month", 6) == 0) {
            e->period = NGX_AI_KEY_MONTH;

        } else {
            return NGX_DECLINED;
        }

        last = s;
    }

    if (p == last || last - p > 32) {
        return NGX_DECLINED;
    }

    for (c = p; c < last; c++) {
        if ((*c < '0' || *c > '9') && *c != '.') {
            return NGX_DECLINED;
        }
    }

    e->budget.data = p;
    e->budget.len = last - p;

    return NGX_OK;
}


/*
 * RFC 3339: 2026-01-31T12:00:00[.frac](Z|+hh:mm|-hh:mm), "t" and " " for
 * "T" too.  Years 1970 to 9999.
 */

ngx_int_t
ngx_ai_keys_parse_time(u_char *p, size_t len, time_t *t)
{
    u_char      *last;
    int64_t      days, secs, y, m, era, yoe, doy, doe;
    ngx_int_t    sign;
    ngx_uint_t   year, mon, mday, hour, min, sec, oh, om, dim;

    static ngx_uint_t  mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                   30, 31 };

    last = p + len;

    if (len < 20
        || ngx_ai_keys_digits(p, 4, &year) != NGX_OK || p[4] != '-'
        || ngx_ai_keys_digits(p + 5, 2, &mon) != NGX_OK || p[7] != '-'
        || ngx_ai_keys_digits(p + 8, 2, &mday) != NGX_OK
        || (p[10] != 'T' && p[10] != 't' && p[10] != ' ')
        || ngx_ai_keys_digits(p + 11, 2, &hour) != NGX_OK || p[13] != ':'
        || ngx_ai_keys_digits(p + 14, 2, &min) != NGX_OK || p[16] != ':'
        || ngx_ai_keys_digits(p + 17, 2, &sec) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    p += 19;

    if (*p == '.') {
        for (p++; p < last && *p >= '0' && *p <= '9'; p++) {
            /* void: fractions of a second are dropped */
        }

        if (p[-1] == '.') {
            return NGX_DECLINED;
        }
    }

    if (p < last && (*p == 'Z' || *p == 'z') && p + 1 == last) {
        oh = 0;
        om = 0;
        sign = 1;

    } else if (last - p == 6 && (*p == '+' || *p == '-')
               && ngx_ai_keys_digits(p + 1, 2, &oh) == NGX_OK
               && p[3] == ':'
               && ngx_ai_keys_digits(p + 4, 2, &om) == NGX_OK
               && oh <= 23 && om <= 59)
    {
        sign = (*p == '+') ? 1 : -1;

    } else {
        return NGX_DECLINED;
    }

    if (year < 1970 || mon < 1 || mon > 12 || mday < 1 || hour > 23
        || min > 59 || sec > 60)
    {
        return NGX_DECLINED;
    }

    dim = mdays[mon - 1];

    if (mon == 2 && !((year % 4 == 0 && year % 100 != 0)
                      || year % 400 == 0))
    {
        dim = 28;
    }

    if (mday > dim) {
        return NGX_DECLINED;
    }

    /* days from the civil date (proleptic Gregorian) */

    y = (int64_t) year - (mon <= 2);
    m = mon;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + mday - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = era * 146097 + doe - 719468;

    secs = days * 86400 + hour * 3600 + min * 60 + sec
           - sign * (int64_t) (oh * 3600 + om * 60);

    if (secs <= 0) {
        return NGX_DECLINED;
    }

    if (sizeof(time_t) == 4 && secs > 0x7fffffff) {
        secs = 0x7fffffff;
    }

    *t = (time_t) secs;

    return NGX_OK;
}


static ngx_int_t
ngx_ai_keys_digits(u_char *p, size_t n, ngx_uint_t *v)
{
    size_t  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return NGX_DECLINED;
        }

        *v = *v * 10 + (p[i] - '0');
    }

    return NGX_OK;
}


/*
 * Across lines, every key's digest known (plain: keys hashed by the
 * caller): a key on two lines, a team on two lines, and the lines of one
 * name that differ in team=, rpm=, tpm= or budget= (a rotation's lines
 * share one rate bucket and one budget account) are refused.
 */

ngx_int_t
ngx_ai_keys_check(ngx_pool_t *pool, ngx_array_t *entries,
    ngx_ai_keys_error_t *err)
{
    ngx_uint_t           i, n;
    ngx_ai_key_entry_t  *e, **v;

    e = entries->elts;
    n = entries->nelts;

    if (n < 2) {
        return NGX_OK;
    }

    v = ngx_palloc(pool, n * sizeof(ngx_ai_key_entry_t *));
    if (v == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        v[i] = &e[i];
    }

    qsort(v, n, sizeof(ngx_ai_key_entry_t *), ngx_ai_keys_by_digest);

    for (i = 1; i < n; i++) {
        if (v[i]->type == NGX_AI_KEY_LINE && v[i - 1]->type == NGX_AI_KEY_LINE
            && ngx_memcmp(v[i]->digest, v[i - 1]->digest,
                          NGX_AI_KEY_DIGEST_LEN) == 0)
        {
            ngx_ai_keys_fail(err, v[i]->line, "a key on two lines");
            err->other = v[i - 1]->line;
            return NGX_DECLINED;
        }
    }

    qsort(v, n, sizeof(ngx_ai_key_entry_t *), ngx_ai_keys_by_name);

    for (i = 1; i < n; i++) {
        if (v[i]->type != v[i - 1]->type
            || !ngx_ai_keys_str_eq(&v[i]->name, &v[i - 1]->name))
        {
            continue;
        }

        if (v[i]->type == NGX_AI_KEY_TEAM) {
            ngx_ai_keys_fail(err, v[i]->line, "a team on two lines");
            err->other = v[i - 1]->line;
            return NGX_DECLINED;
        }

        if (!ngx_ai_keys_same_limits(v[i], v[i - 1])) {
            ngx_ai_keys_fail(err, v[i]->line, "the lines of a name differ "
                             "in team=, rpm=, tpm= or budget=");
            err->other = v[i - 1]->line;
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static int
ngx_ai_keys_by_digest(const void *a, const void *b)
{
    int                  rc;
    ngx_ai_key_entry_t  *x, *y;

    x = *(ngx_ai_key_entry_t **) a;
    y = *(ngx_ai_key_entry_t **) b;

    rc = ngx_memcmp(x->digest, y->digest, NGX_AI_KEY_DIGEST_LEN);

    if (rc) {
        return rc;
    }

    return (x->line > y->line) - (x->line < y->line);
}


static int
ngx_ai_keys_by_name(const void *a, const void *b)
{
    int                  rc;
    ngx_ai_key_entry_t  *x, *y;

    x = *(ngx_ai_key_entry_t **) a;
    y = *(ngx_ai_key_entry_t **) b;

    if (x->type != y->type) {
        return (x->type > y->type) - (x->type < y->type);
    }

    if (x->name.len != y->name.len) {
        return (x->name.len > y->name.len) - (x->name.len < y->name.len);
    }

    rc = x->name.len ? ngx_memcmp(x->name.data, y->name.data, x->name.len)
                     : 0;

    if (rc) {
        return rc;
    }

    return (x->line > y->line) - (x->line < y->line);
}


static ngx_uint_t
ngx_ai_keys_same_limits(ngx_ai_key_entry_t *a, ngx_ai_key_entry_t *b)
{
    return ngx_ai_keys_str_eq(&a->team, &b->team)
           && a->rpm == b->rpm && a->tpm == b->tpm
           && a->period == b->period
           && ngx_ai_keys_str_eq(&a->budget, &b->budget);
}


static ngx_uint_t
ngx_ai_keys_str_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


/* a model allowed by a key's models= (n == 0: any model) */

ngx_uint_t
ngx_ai_keys_model_allowed(ngx_str_t *models, ngx_uint_t n, u_char *model,
    size_t len)
{
    size_t      plen;
    ngx_uint_t  i;

    if (n == 0) {
        return 1;
    }

    for (i = 0; i < n; i++) {
        plen = models[i].len;

        if (plen && models[i].data[plen - 1] == '*') {
            plen--;

            if (len >= plen && ngx_memcmp(model, models[i].data, plen) == 0)
            {
                return 1;
            }

            continue;
        }

        if (plen == len && ngx_memcmp(model, models[i].data, len) == 0) {
            return 1;
        }
    }

    return 0;
}
