
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Bytes: growable pool buffers (ngx_ai_buf_t), a JSON writer over one
 * (ngx_ai_jw_t), percent-decoding, ASCII case-insensitive compare.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


static ngx_int_t ngx_ai_jw_value(ngx_ai_jw_t *w);
static void ngx_ai_jw_open(ngx_ai_jw_t *w, u_char c, ngx_uint_t array);


ngx_int_t
ngx_ai_buf_init(ngx_ai_buf_t *b, ngx_pool_t *pool, size_t cap)
{
    b->pool = pool;
    b->len = 0;
    b->cap = 0;
    b->data = NULL;

    return ngx_ai_buf_reserve(b, cap ? cap : 64);
}


ngx_int_t
ngx_ai_buf_reserve(ngx_ai_buf_t *b, size_t n)
{
    u_char  *p;
    size_t   cap;

    if (b->len + n <= b->cap) {
        return NGX_OK;
    }

    cap = b->cap ? b->cap * 2 : 64;

    while (cap < b->len + n) {
        cap *= 2;
    }

    p = ngx_pnalloc(b->pool, cap);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (b->len) {
        ngx_memcpy(p, b->data, b->len);
    }

    /* the old block stays in the pool: pools free everything at once */

    b->data = p;
    b->cap = cap;

    return NGX_OK;
}


ngx_int_t
ngx_ai_buf_append(ngx_ai_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return NGX_OK;
    }

    if (ngx_ai_buf_reserve(b, n) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memcpy(b->data + b->len, p, n);
    b->len += n;

    return NGX_OK;
}


/* b's text NUL-terminated (the NUL not counted), for string references */

char *
ngx_ai_buf_cstr(ngx_ai_buf_t *b)
{
    if (ngx_ai_buf_append(b, "", 1) != NGX_OK) {
        return NULL;
    }

    b->len--;

    return (char *) b->data;
}


ngx_int_t
ngx_ai_buf_append_str(ngx_ai_buf_t *b, const char *s)
{
    return ngx_ai_buf_append(b, s, ngx_strlen(s));
}


ngx_int_t
ngx_ai_buf_append_uint(ngx_ai_buf_t *b, uint64_t n)
{
    u_char   tmp[24], *p;

    p = tmp + sizeof(tmp);

    do {
        *--p = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_ai_buf_append(b, p, tmp + sizeof(tmp) - p);
}


ngx_int_t
ngx_ai_buf_append_json_string(ngx_ai_buf_t *b, const u_char *p, size_t n)
{
    u_char         c, *d;
    size_t         i;
    static u_char  hex[] = "0123456789abcdef";

    /* worst case: every byte becomes \u00XX */
    if (ngx_ai_buf_reserve(b, n * 6 + 2) != NGX_OK) {
        return NGX_ERROR;
    }

    d = b->data + b->len;
    *d++ = '"';

    for (i = 0; i < n; i++) {
        c = p[i];

        switch (c) {

        case '"':
        case '\\':
            *d++ = '\\';
            *d++ = c;
            break;

        case '\n':
            *d++ = '\\';
            *d++ = 'n';
            break;

        case '\r':
            *d++ = '\\';
            *d++ = 'r';
            break;

        case '\t':
            *d++ = '\\';
            *d++ = 't';
            break;

        default:
            if (c < 0x20 || c == 0x7f) {
                *d++ = '\\';
                *d++ = 'u';
                *d++ = '0';
                *d++ = '0';
                *d++ = hex[c >> 4];
                *d++ = hex[c & 0xf];

            } else {
                *d++ = c;
            }
        }
    }

    *d++ = '"';
    b->len = d - b->data;

    return NGX_OK;
}


/*
 * p..p+len with %XX decoded into dst (room for len bytes); printable:
 * any other byte outside 0x21-0x7e is refused.  The end of what was
 * written, or NULL for a bad %XX or byte.
 */

u_char *
ngx_ai_percent_decode(u_char *dst, u_char *p, size_t len,
    ngx_uint_t printable)
{
    u_char     *last;
    ngx_int_t   c;

    for (last = p + len; p < last; p++) {

        if (*p == '%') {
            if (last - p < 3) {
                return NULL;
            }

            c = ngx_hextoi(p + 1, 2);
            if (c == NGX_ERROR) {
                return NULL;
            }

            *dst++ = (u_char) c;
            p += 2;
            continue;
        }

        if (printable && (*p <= 0x20 || *p >= 0x7f)) {
            return NULL;
        }

        *dst++ = *p;
    }

    return dst;
}


/*
 * The first n bytes of s equal lit (n bytes, no NUL) ignoring ASCII case;
 * s may be shorter if it is NUL-terminated: its NUL ends the comparison.
 */

ngx_int_t
ngx_ai_strncaseeq(const u_char *s, const char *lit, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (ngx_tolower(s[i]) != ngx_tolower((u_char) lit[i])) {
            return 0;
        }
    }

    return 1;
}


/*
 * The JSON writer: values appended to w->buf with the commas and the
 * closing brackets it works out itself, and no check after each call.
 * The first failure (out of memory, nesting deeper than
 * NGX_AI_JW_MAX_DEPTH, an end with nothing open, a key outside an object
 * or twice in a row) sticks: later calls write nothing, and
 * ngx_ai_jw_done() says so once.
 */

void
ngx_ai_jw_init(ngx_ai_jw_t *w, ngx_ai_buf_t *b)
{
    ngx_memzero(w, sizeof(ngx_ai_jw_t));

    w->buf = b;
    w->rc = NGX_OK;
}


/* NGX_OK: every write done and every object and array closed */

ngx_int_t
ngx_ai_jw_done(ngx_ai_jw_t *w)
{
    if (w->rc == NGX_OK && (w->depth || w->key)) {
        w->rc = NGX_ERROR;
    }

    return w->rc;
}


/* a value goes here: the comma before it, unless it follows its key */

static ngx_int_t
ngx_ai_jw_value(ngx_ai_jw_t *w)
{
    uint32_t  bit;

    if (w->rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (w->key) {
        w->key = 0;
        return NGX_OK;
    }

    if (w->depth == 0) {
        return NGX_OK;
    }

    bit = 1U << (w->depth - 1);

    if (!(w->array & bit)) {
        /* a value in an object needs its key */
        w->rc = NGX_ERROR;
        return NGX_ERROR;
    }

    if (w->more & bit) {
        w->rc = ngx_ai_buf_append(w->buf, ",", 1);
        return w->rc;
    }

    w->more |= bit;

    return NGX_OK;
}


static void
ngx_ai_jw_open(ngx_ai_jw_t *w, u_char c, ngx_uint_t array)
{
    uint32_t  bit;

    if (ngx_ai_jw_value(w) != NGX_OK) {
        return;
    }

    if (w->depth == NGX_AI_JW_MAX_DEPTH) {
        w->rc = NGX_ERROR;
        return;
    }

    bit = 1U << w->depth++;

    w->more &= ~bit;

    if (array) {
        w->array |= bit;

    } else {
        w->array &= ~bit;
    }

    w->rc = ngx_ai_buf_append(w->buf, &c, 1);
}


void
ngx_ai_jw_object(ngx_ai_jw_t *w)
{
    ngx_ai_jw_open(w, '{', 0);
}


void
ngx_ai_jw_array(ngx_ai_jw_t *w)
{
    ngx_ai_jw_open(w, '[', 1);
}


/* closes the innermost object or array */

void
ngx_ai_jw_end(ngx_ai_jw_t *w)
{
    uint32_t  bit;

    if (w->rc != NGX_OK) {
        return;
    }

    if (w->depth == 0 || w->key) {
        w->rc = NGX_ERROR;
        return;
    }

    bit = 1U << --w->depth;

    w->rc = ngx_ai_buf_append(w->buf, (w->array & bit) ? "]" : "}", 1);
}


/* a member's name: a literal of the caller's, written as it is */

void
ngx_ai_jw_key(ngx_ai_jw_t *w, const char *key)
{
    uint32_t  bit;

    if (w->rc != NGX_OK) {
        return;
    }

    if (w->depth == 0 || w->key) {
        w->rc = NGX_ERROR;
        return;
    }

    bit = 1U << (w->depth - 1);

    if (w->array & bit) {
        w->rc = NGX_ERROR;
        return;
    }

    if (((w->more & bit) && ngx_ai_buf_append(w->buf, ",", 1) != NGX_OK)
        || ngx_ai_buf_append(w->buf, "\"", 1) != NGX_OK
        || ngx_ai_buf_append_str(w->buf, key) != NGX_OK
        || ngx_ai_buf_append(w->buf, "\":", 2) != NGX_OK)
    {
        w->rc = NGX_ERROR;
        return;
    }

    w->more |= bit;
    w->key = 1;
}


/* p..p+len as a JSON string, escaped */

void
ngx_ai_jw_string(ngx_ai_jw_t *w, const u_char *p, size_t len)
{
    if (ngx_ai_jw_value(w) == NGX_OK) {
        w->rc = ngx_ai_buf_append_json_string(w->buf, p, len);
    }
}


void
ngx_ai_jw_uint(ngx_ai_jw_t *w, uint64_t n)
{
    if (ngx_ai_jw_value(w) == NGX_OK) {
        w->rc = ngx_ai_buf_append_uint(w->buf, n);
    }
}


/* nano-USD as a string of USD with 6 decimals, rounded down: "0.001250" */

void
ngx_ai_jw_usd(ngx_ai_jw_t *w, uint64_t nano)
{
    u_char      frac[8];
    uint64_t    micro;
    ngx_uint_t  i;

    if (ngx_ai_jw_value(w) != NGX_OK) {
        return;
    }

    micro = nano % 1000000000 / 1000;

    frac[0] = '.';

    for (i = 6; i > 0; i--) {
        frac[i] = (u_char) ('0' + micro % 10);
        micro /= 10;
    }

    frac[7] = '"';

    if (ngx_ai_buf_append(w->buf, "\"", 1) != NGX_OK
        || ngx_ai_buf_append_uint(w->buf, nano / 1000000000) != NGX_OK
        || ngx_ai_buf_append(w->buf, frac, 8) != NGX_OK)
    {
        w->rc = NGX_ERROR;
    }
}


/* a value given as JSON text, written as it is: null, true, a number */

void
ngx_ai_jw_raw(ngx_ai_jw_t *w, const u_char *p, size_t len)
{
    if (ngx_ai_jw_value(w) == NGX_OK) {
        w->rc = ngx_ai_buf_append(w->buf, p, len);
    }
}


void
ngx_ai_jw_key_string(ngx_ai_jw_t *w, const char *key, const u_char *p,
    size_t len)
{
    ngx_ai_jw_key(w, key);
    ngx_ai_jw_string(w, p, len);
}


void
ngx_ai_jw_key_uint(ngx_ai_jw_t *w, const char *key, uint64_t n)
{
    ngx_ai_jw_key(w, key);
    ngx_ai_jw_uint(w, n);
}


void
ngx_ai_jw_key_usd(ngx_ai_jw_t *w, const char *key, uint64_t nano)
{
    ngx_ai_jw_key(w, key);
    ngx_ai_jw_usd(w, nano);
}
