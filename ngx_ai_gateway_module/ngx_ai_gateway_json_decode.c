
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * A JSON decoder that builds cJSON trees in one pass over the bytes.
 *
 * Every request and every provider answer is decoded at least once, and
 * cJSON's own parser was half of the gateway's instructions per request:
 * a malloc() through the hooks per node and per string, strtod() and
 * localeconv() for every number, a second pass per string.  This decoder
 * builds the same trees (the rest of the code and cJSON's functions work
 * on them unchanged) with:
 *
 *   - nodes and strings carved from a pool in chunks, each block with the
 *     header ngx_ai_json_free() reads, so cJSON_Delete() on such a tree,
 *     or on any part of it, frees nothing and breaks nothing; without a
 *     pool, or outside nginx, every block comes from cJSON_malloc();
 *   - integers of up to 15 digits read exactly without strtod();
 *   - strings without escapes copied with one memcpy();
 *   - nesting checked as it goes (max_depth), and in the same pass, for
 *     the caller to refuse or not (ngx_ai_json_flags_t): a U+0000 in a
 *     string (raw, or as \u0000) rather than silently cutting the C
 *     string, a raw control byte in a string (which RFC 8259 forbids but
 *     cJSON takes), and invalid UTF-8 in a string.  Plain ASCII is still
 *     scanned sixteen bytes at a time; only runs of bytes of 0x80 and
 *     above are walked one character at a time.
 *
 * It is stricter than cJSON, never looser: RFC 8259 numbers only (no
 * leading zeros, no "1."), the four whitespace characters only, \u
 * escapes with four hex digits only.  Whatever it accepts, cJSON accepts
 * as the same tree (fuzz/fuzz_json.c checks exactly that).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"

#if (__SSE2__)
#include <emmintrin.h>
#endif


#define NGX_AI_JSON_CHUNK       2048
#define NGX_AI_JSON_EXACT_DIGITS  15

/* a zero byte in a 64-bit word (exact as to whether there is one) */
#define ngx_ai_json_swar_zero(v)                                              \
    (((v) - 0x0101010101010101ULL) & ~(v) & 0x8080808080808080ULL)

#define NGX_AI_JSON_SWAR_QUOTE      (0x0101010101010101ULL * '"')
#define NGX_AI_JSON_SWAR_BACKSLASH  (0x0101010101010101ULL * '\\')


/* bytes below 0x20 or of 0x80 and above in a 64-bit word (exact) */
#define ngx_ai_json_swar_outside(v)                                           \
    (((v) | ~(((v) & 0x7f7f7f7f7f7f7f7fULL) + 0x6060606060606060ULL))        \
     & 0x8080808080808080ULL)


/*
 * The first quote or backslash in p..last, or last: what a string scan
 * stops at; with strict, also the first byte below 0x20 (a control) or of
 * 0x80 and above (not ASCII).  Sixteen bytes at a time with SSE2 (every
 * x86-64 has it), else eight at a time in a 64-bit word on little-endian
 * machines, else one at a time.
 */

static ngx_inline const u_char *
ngx_ai_json_find_special(const u_char *p, const u_char *last,
    ngx_uint_t strict)
{
#if (__SSE2__)
    int        m;
    __m128i    x, quote, backslash, space;

    quote = _mm_set1_epi8('"');
    backslash = _mm_set1_epi8('\\');
    space = _mm_set1_epi8(0x20);

    while (last - p >= 16) {
        x = _mm_loadu_si128((const __m128i *) p);

        /* signed: below 0x20 is both the controls and 0x80..0xff */

        m = _mm_movemask_epi8(
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                          _mm_cmpeq_epi8(x, backslash)),
                             strict ? _mm_cmplt_epi8(x, space)
                                    : _mm_setzero_si128()));

        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 16;
    }

#elif (NGX_HAVE_LITTLE_ENDIAN)
    uint64_t  v;

    while (last - p >= 8) {
        ngx_memcpy(&v, p, 8);

        v = ngx_ai_json_swar_zero(v ^ NGX_AI_JSON_SWAR_QUOTE)
            | ngx_ai_json_swar_zero(v ^ NGX_AI_JSON_SWAR_BACKSLASH)
            | (strict ? ngx_ai_json_swar_outside(v) : 0);

        if (v) {
            return p + __builtin_ctzll(v) / 8;
        }

        p += 8;
    }
#endif

    while (p < last && *p != '"' && *p != '\\'
           && !(strict && (*p < 0x20 || *p >= 0x80)))
    {
        p++;
    }

    return p;
}


typedef struct {
    const u_char               *p;
    const u_char               *start;
    const u_char               *end;
    ngx_pool_t                 *pool;      /* NULL: cJSON_malloc() */
    u_char                     *last;
    u_char                     *limit;
    ngx_uint_t                  depth;
    ngx_uint_t                  max_depth;
    ngx_uint_t                  status;
    ngx_ai_json_flags_t         flags;
} ngx_ai_json_decoder_t;


static cJSON *ngx_ai_json_decode_value(ngx_ai_json_decoder_t *d);
static cJSON *ngx_ai_json_decode_container(ngx_ai_json_decoder_t *d);
static char *ngx_ai_json_decode_string(ngx_ai_json_decoder_t *d);
static const u_char *ngx_ai_json_decode_utf8(ngx_ai_json_decoder_t *d,
    const u_char *p);
static ngx_int_t ngx_ai_json_decode_escape(ngx_ai_json_decoder_t *d,
    u_char **out);
static ngx_int_t ngx_ai_json_decode_number(ngx_ai_json_decoder_t *d,
    cJSON *item);
static ngx_inline void *ngx_ai_json_decode_alloc(ngx_ai_json_decoder_t *d,
    size_t size);
static void *ngx_ai_json_decode_chunk(ngx_ai_json_decoder_t *d, size_t size,
    size_t n);
static void ngx_ai_json_decode_free(ngx_ai_json_decoder_t *d, cJSON *item);


#define ngx_ai_json_decode_ws(d)                                              \
    while ((d)->p < (d)->end                                                  \
           && (*(d)->p == ' ' || *(d)->p == '\n' || *(d)->p == '\r'          \
               || *(d)->p == '\t'))                                           \
    {                                                                         \
        (d)->p++;                                                             \
    }


/*
 * The tree of exactly one JSON value in p..p+len (whitespace around it
 * allowed), or NULL with *status saying why.  With a pool, the tree's
 * memory is the pool's (when the hooks of ngx_ai_json_init_allocator()
 * are installed); without, the caller frees it with cJSON_Delete().
 * flags (may be NULL) gets what the strings held that the caller may
 * refuse; it means something only with a tree.
 */

cJSON *
ngx_ai_json_decode(ngx_pool_t *pool, const u_char *p, size_t len,
    ngx_uint_t max_depth, ngx_ai_json_flags_t *flags, ngx_uint_t *status)
{
    cJSON                  *root;
    ngx_ai_json_decoder_t   d;

    d.p = p;
    d.start = p;
    d.end = p + len;
    d.pool = ngx_ai_json_pool_blocks ? pool : NULL;
    d.last = NULL;
    d.limit = NULL;
    d.depth = 0;
    d.max_depth = max_depth;
    d.status = NGX_AI_JSON_MALFORMED;

    ngx_memzero(&d.flags, sizeof(ngx_ai_json_flags_t));

    /* a UTF-8 byte order mark, where cJSON skips one */

    if (len > 4 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
        d.p += 3;
    }

    ngx_ai_json_decode_ws(&d);

    root = ngx_ai_json_decode_value(&d);

    if (root) {
        ngx_ai_json_decode_ws(&d);

        if (d.p == d.end) {
            d.status = NGX_AI_JSON_DECODED;
            goto done;
        }

        d.status = NGX_AI_JSON_MALFORMED;
        ngx_ai_json_decode_free(&d, root);
        root = NULL;
    }

done:

    if (flags) {
        *flags = d.flags;
    }

    *status = d.status;

    return root;
}


static cJSON *
ngx_ai_json_decode_value(ngx_ai_json_decoder_t *d)
{
    cJSON   *item;
    size_t   left;

    if (d->p == d->end) {
        return NULL;
    }

    switch (*d->p) {

    case '{':
    case '[':
        return ngx_ai_json_decode_container(d);

    default:
        break;
    }

    item = ngx_ai_json_decode_alloc(d, sizeof(cJSON));
    if (item == NULL) {
        return NULL;
    }

    ngx_memzero(item, sizeof(cJSON));

    left = d->end - d->p;

    switch (*d->p) {

    case '"':
        item->valuestring = ngx_ai_json_decode_string(d);
        if (item->valuestring == NULL) {
            break;
        }

        item->type = cJSON_String;
        return item;

    case 't':
        if (left >= 4 && ngx_strncmp(d->p, "true", 4) == 0) {
            d->p += 4;
            item->type = cJSON_True;
            item->valueint = 1;
            return item;
        }

        break;

    case 'f':
        if (left >= 5 && ngx_strncmp(d->p, "false", 5) == 0) {
            d->p += 5;
            item->type = cJSON_False;
            return item;
        }

        break;

    case 'n':
        if (left >= 4 && ngx_strncmp(d->p, "null", 4) == 0) {
            d->p += 4;
            item->type = cJSON_NULL;
            return item;
        }

        break;

    default:
        if (ngx_ai_json_decode_number(d, item) == NGX_OK) {
            return item;
        }

        break;
    }

    ngx_ai_json_decode_free(d, item);

    return NULL;
}


/*
 * An array or an object.  Children are linked as cJSON links them:
 * next/prev along the list, and the first child's prev pointing at the
 * last (cJSON_AddItemToArray() appends there).  A child is linked before
 * the next one is decoded, so a failure frees the whole partial tree with
 * its container.
 */

static cJSON *
ngx_ai_json_decode_container(ngx_ai_json_decoder_t *d)
{
    char    *key;
    u_char   close;
    cJSON   *container, *item, *last;

    if (d->depth >= d->max_depth) {
        d->status = NGX_AI_JSON_TOO_DEEP;
        return NULL;
    }

    container = ngx_ai_json_decode_alloc(d, sizeof(cJSON));
    if (container == NULL) {
        return NULL;
    }

    ngx_memzero(container, sizeof(cJSON));

    if (*d->p == '{') {
        container->type = cJSON_Object;
        close = '}';

    } else {
        container->type = cJSON_Array;
        close = ']';
    }

    d->depth++;
    d->p++;

    ngx_ai_json_decode_ws(d);

    if (d->p < d->end && *d->p == close) {
        d->p++;
        d->depth--;
        return container;
    }

    last = NULL;

    for ( ;; ) {
        key = NULL;

        if (close == '}') {
            if (d->p == d->end || *d->p != '"') {
                goto failed;
            }

            key = ngx_ai_json_decode_string(d);
            if (key == NULL) {
                goto failed;
            }

            ngx_ai_json_decode_ws(d);

            if (d->p == d->end || *d->p != ':') {
                goto failed_key;
            }

            d->p++;

            ngx_ai_json_decode_ws(d);
        }

        item = ngx_ai_json_decode_value(d);
        if (item == NULL) {
            goto failed_key;
        }

        item->string = key;

        if (last == NULL) {
            container->child = item;

        } else {
            last->next = item;
            item->prev = last;
        }

        last = item;
        container->child->prev = last;

        ngx_ai_json_decode_ws(d);

        if (d->p == d->end) {
            goto failed;
        }

        if (*d->p == ',') {
            d->p++;
            ngx_ai_json_decode_ws(d);
            continue;
        }

        if (*d->p == close) {
            d->p++;
            d->depth--;
            return container;
        }

        goto failed;
    }

failed_key:

    if (key && d->pool == NULL) {
        cJSON_free(key);
    }

failed:

    ngx_ai_json_decode_free(d, container);

    return NULL;
}


/* d->p is at the opening quote; the decoded, NUL-terminated string */

static char *
ngx_ai_json_decode_string(ngx_ai_json_decoder_t *d)
{
    u_char        *s, *out;
    ngx_uint_t     escaped;
    const u_char  *start, *q, *end, *bs;

    start = d->p + 1;
    end = d->end;
    escaped = 0;
    q = start;

    for ( ;; ) {
        q = ngx_ai_json_find_special(q, end, 1);

        if (q == end) {
            return NULL;
        }

        if (*q == '"') {
            break;
        }

        if (*q == '\\') {
            if (end - q < 2) {
                return NULL;
            }

            escaped = 1;
            q += 2;
            continue;
        }

        if (*q >= 0x80) {
            q = ngx_ai_json_decode_utf8(d, q);
            continue;
        }

        /* a raw control byte; a NUL also ends the C string there */

        if (!d->flags.control) {
            d->flags.control = 1;
            d->flags.control_at = q - d->start;
        }

        if (*q == '\0') {
            d->flags.nul = 1;
        }

        q++;
    }

    /* decoded, a string is never longer than its JSON text */

    s = ngx_ai_json_decode_alloc(d, q - start + 1);
    if (s == NULL) {
        return NULL;
    }

    if (!escaped) {
        ngx_memcpy(s, start, q - start);
        s[q - start] = '\0';
        d->p = q + 1;

        return (char *) s;
    }

    out = s;
    d->p = start;

    while (d->p < q) {

        /* the run up to the next backslash in one copy */

        bs = memchr(d->p, '\\', q - d->p);

        if (bs == NULL) {
            out = ngx_cpymem(out, d->p, q - d->p);
            break;
        }

        out = ngx_cpymem(out, d->p, bs - d->p);
        d->p = bs;

        if (ngx_ai_json_decode_escape(d, &out) != NGX_OK) {
            if (d->pool == NULL) {
                cJSON_free(s);
            }

            return NULL;
        }
    }

    *out = '\0';
    d->p = q + 1;

    return (char *) s;
}


/*
 * p is at a byte of 0x80 or above in a string: past the run of such
 * characters, each checked, the first invalid byte flagged.  A single
 * plain ASCII byte between two of them (a space between words) stays in
 * the run; the common two- and three-byte forms are checked inline.
 */

static const u_char *
ngx_ai_json_decode_utf8(ngx_ai_json_decoder_t *d, const u_char *p)
{
    u_char         c;
    size_t         n;
    const u_char  *end;

    end = d->end;

    while (p < end) {
        c = *p;

        if (c < 0x80) {
            if (c >= 0x20 && c != '"' && c != '\\'
                && end - p > 1 && p[1] >= 0x80)
            {
                p++;
                continue;
            }

            break;
        }

        /* a byte x is a continuation byte if (x ^ 0x80) < 0x40 */

        if (end - p > 2) {
            if ((u_char) (c - 0xc2) <= 0xdf - 0xc2
                && (u_char) (p[1] ^ 0x80) < 0x40)
            {
                p += 2;
                continue;
            }

            if ((u_char) (c - 0xe1) <= 0xef - 0xe1 && c != 0xed
                && (u_char) ((p[1] ^ 0x80) | (p[2] ^ 0x80)) < 0x40)
            {
                p += 3;
                continue;
            }
        }

        n = ngx_ai_utf8_char(p, end);

        if (n == 0) {
            if (!d->flags.utf8) {
                d->flags.utf8 = 1;
                d->flags.utf8_at = p - d->start;
            }

            n = 1;
        }

        p += n;
    }

    return p;
}


/*
 * The length of the well-formed UTF-8 character at p (before last), 1 for
 * ASCII; 0 for a byte that starts none (Unicode's table 3-7): a stray
 * continuation byte, a lead byte of an overlong form (C0, C1, E0 80..9F,
 * F0 80..8F), of a UTF-16 surrogate (ED A0..BF), of a code point above
 * U+10FFFF (F4 90.., F5..FF), or of a sequence cut short.
 */

size_t
ngx_ai_utf8_char(const u_char *p, const u_char *last)
{
    u_char  c, lo, hi;
    size_t  n, i;

    c = *p;

    if (c < 0x80) {
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = (c == 0xe0) ? 0xa0 : 0x80;
        hi = (c == 0xed) ? 0x9f : 0xbf;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = (c == 0xf0) ? 0x90 : 0x80;
        hi = (c == 0xf4) ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if ((size_t) (last - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


/*
 * p is just past a string's opening quote: its closing quote, or last if
 * it does not end before last.  Escapes are skipped, not checked: for
 * bytes already decoded, walked again (the openai request splice).
 */

u_char *
ngx_ai_json_string_close(u_char *p, u_char *last)
{
    for ( ;; ) {
        p = (u_char *) ngx_ai_json_find_special(p, last, 0);

        if (p == last || *p == '"') {
            return p;
        }

        /* a backslash and the byte it escapes */

        if (last - p < 2) {
            return last;
        }

        p += 2;
    }
}


/* d->p is at a backslash inside a string; as cJSON decodes it */

static ngx_int_t
ngx_ai_json_decode_escape(ngx_ai_json_decoder_t *d, u_char **out)
{
    u_char      *o;
    ngx_uint_t   c, lo;

    o = *out;

    switch (d->p[1]) {

    case 'b':
        *o++ = '\b';
        break;

    case 'f':
        *o++ = '\f';
        break;

    case 'n':
        *o++ = '\n';
        break;

    case 'r':
        *o++ = '\r';
        break;

    case 't':
        *o++ = '\t';
        break;

    case '"':
    case '\\':
    case '/':
        *o++ = d->p[1];
        break;

    case 'u':
        if (d->end - d->p < 6
            || ngx_ai_json_hex4(d->p + 2, &c) != NGX_OK
            || (c >= 0xdc00 && c <= 0xdfff))
        {
            return NGX_ERROR;
        }

        if (c >= 0xd800 && c <= 0xdbff) {

            /* a surrogate pair, or nothing */

            if (d->end - d->p < 12
                || d->p[6] != '\\' || d->p[7] != 'u'
                || ngx_ai_json_hex4(d->p + 8, &lo) != NGX_OK
                || lo < 0xdc00 || lo > 0xdfff)
            {
                return NGX_ERROR;
            }

            c = 0x10000 + (((c & 0x3ff) << 10) | (lo & 0x3ff));
            d->p += 6;
        }

        if (c == 0) {
            d->flags.nul = 1;
        }

        if (c < 0x80) {
            *o++ = (u_char) c;

        } else if (c < 0x800) {
            *o++ = (u_char) (0xc0 | (c >> 6));
            *o++ = (u_char) (0x80 | (c & 0x3f));

        } else if (c < 0x10000) {
            *o++ = (u_char) (0xe0 | (c >> 12));
            *o++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
            *o++ = (u_char) (0x80 | (c & 0x3f));

        } else {
            *o++ = (u_char) (0xf0 | (c >> 18));
            *o++ = (u_char) (0x80 | ((c >> 12) & 0x3f));
            *o++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
            *o++ = (u_char) (0x80 | (c & 0x3f));
        }

        d->p += 6;
        *out = o;

        return NGX_OK;

    default:
        return NGX_ERROR;
    }

    d->p += 2;
    *out = o;

    return NGX_OK;
}


/* the four hex digits of a \u escape; NGX_ERROR: not hex digits */

ngx_int_t
ngx_ai_json_hex4(const u_char *p, ngx_uint_t *v)
{
    u_char      c;
    ngx_uint_t  i, n;

    n = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            n = n * 16 + (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            n = n * 16 + ((c | 0x20) - 'a' + 10);

        } else {
            return NGX_ERROR;
        }
    }

    *v = n;

    return NGX_OK;
}


/*
 * An RFC 8259 number.  Up to 15 digits with neither fraction nor exponent
 * are read exactly (a double holds them); anything else goes to strtod(),
 * as cJSON does.  valueint saturates as in cJSON.
 */

static ngx_int_t
ngx_ai_json_decode_number(ngx_ai_json_decoder_t *d, cJSON *item)
{
    char          *buf, *e, tmp[64];
    double         v;
    size_t         n;
    uint64_t       i;
    ngx_uint_t     neg, exact;
    const u_char  *p, *start, *digits;

    p = d->p;
    start = p;
    neg = 0;
    exact = 1;

    if (*p == '-') {
        neg = 1;
        p++;
    }

    digits = p;

    if (p == d->end) {
        return NGX_ERROR;
    }

    if (*p == '0') {
        p++;

    } else if (*p >= '1' && *p <= '9') {
        while (p < d->end && *p >= '0' && *p <= '9') {
            p++;
        }

    } else {
        return NGX_ERROR;
    }

    if (p - digits > NGX_AI_JSON_EXACT_DIGITS) {
        exact = 0;
    }

    if (p < d->end && *p == '.') {
        p++;
        exact = 0;

        if (p == d->end || *p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        while (p < d->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < d->end && (*p == 'e' || *p == 'E')) {
        p++;
        exact = 0;

        if (p < d->end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p == d->end || *p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        while (p < d->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (exact) {
        i = 0;

        while (digits < p) {
            i = i * 10 + (*digits++ - '0');
        }

        v = (double) i;

        if (neg) {
            v = -v;
        }

    } else {
        n = p - start;

        if (n < sizeof(tmp)) {
            buf = tmp;

        } else {
            buf = cJSON_malloc(n + 1);
            if (buf == NULL) {
                d->status = NGX_AI_JSON_NO_MEMORY;
                return NGX_ERROR;
            }
        }

        ngx_memcpy(buf, start, n);
        buf[n] = '\0';

        v = strtod(buf, &e);

        if (buf != tmp) {
            cJSON_free(buf);
        }
    }

    item->type = cJSON_Number;
    item->valuedouble = v;

    if (v >= INT_MAX) {
        item->valueint = INT_MAX;

    } else if (v <= (double) INT_MIN) {
        item->valueint = INT_MIN;

    } else {
        item->valueint = (int) v;
    }

    d->p = p;

    return NGX_OK;
}


/*
 * Pool blocks carry the header ngx_ai_json_free() checks, so cJSON's
 * free is a no-op on them; the chunk is the pool's.  The common case, room
 * in the chunk, is inline.
 */

static ngx_inline void *
ngx_ai_json_decode_alloc(ngx_ai_json_decoder_t *d, size_t size)
{
    u_char  *p;
    size_t   n;

    n = NGX_AI_JSON_HEADER + ngx_align(size, sizeof(uint64_t));

    if (d->pool == NULL || (size_t) (d->limit - d->last) < n) {
        return ngx_ai_json_decode_chunk(d, size, n);
    }

    p = d->last;
    d->last += n;

    *(uint64_t *) p = NGX_AI_JSON_FROM_POOL;

    return p + NGX_AI_JSON_HEADER;
}


/* without a pool: cJSON_malloc(); else a new chunk */

static void *
ngx_ai_json_decode_chunk(ngx_ai_json_decoder_t *d, size_t size, size_t n)
{
    u_char  *p;
    size_t   chunk;

    if (d->pool == NULL) {
        p = cJSON_malloc(size);

        if (p == NULL) {
            d->status = NGX_AI_JSON_NO_MEMORY;
        }

        return p;
    }

    chunk = ngx_max(n, NGX_AI_JSON_CHUNK);

    p = ngx_palloc(d->pool, chunk);
    if (p == NULL) {
        d->status = NGX_AI_JSON_NO_MEMORY;
        return NULL;
    }

    d->last = p + n;
    d->limit = p + chunk;

    *(uint64_t *) p = NGX_AI_JSON_FROM_POOL;

    return p + NGX_AI_JSON_HEADER;
}


/* a partial tree: the pool keeps its blocks, cJSON_malloc()'s are freed */

static void
ngx_ai_json_decode_free(ngx_ai_json_decoder_t *d, cJSON *item)
{
    if (d->pool == NULL) {
        cJSON_Delete(item);
    }
}
