
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Secrets scrubbed from text a provider sent (error messages, answer
 * bodies) before it reaches a client: a provider that echoes the request's
 * headers would otherwise hand out its own key.
 *
 * A secret (8 bytes or more; shorter ones are ignored, they would match
 * ordinary text) is found in the text as:
 *
 *   - itself, and for one of 12 bytes or more any 12-byte part of it
 *     (a truncated or prefixed echo), as far as it matches;
 *   - JSON-escaped: \/ and \uXXXX (and the other escapes) decoded first
 *     when the text holds any, the match mapped back to the escapes;
 *   - masked as providers print keys: a run of mask characters ('*', '.',
 *     'x', U+2022 '•', U+2026 '…' counting as three) of weight 3 or more
 *     with, before it, 3 or more bytes that begin a secret, or after it, 3
 *     or more bytes that end one ("sk-EVIL*****6789", "AIza…NOPQ").
 *
 * Each place found (overlapping ones joined) becomes "[REDACTED]", its
 * edges moved out to whole UTF-8 characters and whole JSON escapes.
 *
 * The common case, no secret in the text, costs one pass of 4-byte loads
 * for all secrets together (a probe every 9 bytes, fewer for a secret of
 * less than 12, in a bit filter of the secrets' 4-byte parts: every
 * 12-byte match holds such a probe) and one SSE2 scan for mask runs and
 * escapes, 16 bytes at a time.  The filters are kept for the next call
 * with the same secrets.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"

#if (__SSE2__)
#include <emmintrin.h>
#endif


#define NGX_AI_SCRUB_MIN        8      /* shorter secrets are ignored */
#define NGX_AI_SCRUB_PART       12     /* a part this long is a match */
#define NGX_AI_SCRUB_SIDE       64     /* bytes beside a mask looked at */
#define NGX_AI_SCRUB_BITS       16     /* the 4-byte filter: 2^16 bits */
#define NGX_AI_SCRUB_SIDE_BITS  12     /* the 3-byte filters: 2^12 bits */
#define NGX_AI_SCRUB_KEEP_N     16     /* the sets kept for the next call */
#define NGX_AI_SCRUB_KEEP_BYTES 4096
#define NGX_AI_SCRUB_MARK       "[REDACTED]"

#define ngx_ai_scrub_hash(g, bits)                                            \
    (((uint32_t) (g) * 0x9e3779b1U) >> (32 - (bits)))

#define ngx_ai_scrub_masked(c)  ((c) == '*' || (c) == '.' || (c) == 'x')

#define ngx_ai_scrub_char_len(c)                                              \
    ((c) >= 0xf0 ? 4 : (c) >= 0xe0 ? 3 : 2)

#define ngx_ai_scrub_bit(map, h)                                              \
    ((map)[(h) >> 6] & ((uint64_t) 1 << ((h) & 63)))


typedef struct {
    size_t                      start;
    size_t                      end;
} ngx_ai_scrub_span_t;


/* what the secrets give, the same for every text */
typedef struct {
    ngx_uint_t                  n;
    size_t                      len[NGX_AI_SCRUB_KEEP_N];
    u_char                      data[NGX_AI_SCRUB_KEEP_BYTES];
    size_t                      stride;    /* between two probes */
    uint64_t                    parts[(1 << NGX_AI_SCRUB_BITS) / 64];
    uint64_t                    heads[(1 << NGX_AI_SCRUB_SIDE_BITS) / 64];
    uint64_t                    tails[(1 << NGX_AI_SCRUB_SIDE_BITS) / 64];
    unsigned                    kept:1;    /* n, len and data hold them */
    unsigned                    any:1;     /* a secret of 8 bytes or more */
    unsigned                    quoted:1;  /* a secret holds a byte JSON
                                              escapes as \", \\ or \n ... */
} ngx_ai_scrub_set_t;


typedef struct {
    ngx_pool_t                 *pool;
    ngx_str_t                  *secrets;
    ngx_uint_t                  n;
    ngx_ai_scrub_set_t         *set;
    ngx_array_t                 spans;     /* of ngx_ai_scrub_span_t */

    /* the last match, so that probes inside it are not matched again */
    ngx_uint_t                  last_secret;
    size_t                      last_diag;
    size_t                      last_end;

    unsigned                    escapes:1; /* the text holds an escape a
                                              secret may hide behind */
} ngx_ai_scrub_t;


static ngx_ai_scrub_set_t *ngx_ai_scrub_set(ngx_pool_t *pool,
    ngx_str_t *secrets, ngx_uint_t n);
static ngx_int_t ngx_ai_scrub_find(ngx_ai_scrub_t *sc, const u_char *text,
    size_t len, ngx_uint_t raw);
static ngx_inline const u_char *ngx_ai_scrub_special(const u_char *p,
    const u_char *last, ngx_uint_t quoted);
static ngx_int_t ngx_ai_scrub_probe(ngx_ai_scrub_t *sc, const u_char *text,
    size_t len, size_t p);
static ngx_int_t ngx_ai_scrub_mask(ngx_ai_scrub_t *sc, const u_char *text,
    size_t len, size_t rs, size_t re);
static size_t ngx_ai_scrub_mask_run(const u_char *p, const u_char *last,
    ngx_uint_t *weight);
static ngx_int_t ngx_ai_scrub_add(ngx_ai_scrub_t *sc, size_t start,
    size_t end);
static ngx_int_t ngx_ai_scrub_view(ngx_ai_scrub_t *sc, const u_char *text,
    size_t len);
static size_t ngx_ai_scrub_escape(const u_char *t, size_t len, size_t i,
    ngx_uint_t *c);
static ngx_int_t ngx_ai_scrub_write(ngx_ai_scrub_t *sc, ngx_str_t *text,
    ngx_uint_t *hits);
static ngx_uint_t ngx_ai_scrub_join(ngx_ai_scrub_span_t *sp,
    ngx_uint_t nspans);
static void ngx_ai_scrub_escapes(const u_char *t, size_t len,
    ngx_ai_scrub_span_t *sp, ngx_uint_t nspans);
static size_t ngx_ai_scrub_token(const u_char *t, size_t len, size_t *i,
    size_t x);
static size_t ngx_ai_scrub_char(const u_char *t, size_t len, size_t i);
static int ngx_libc_cdecl ngx_ai_scrub_cmp(const void *a, const void *b);


/* the last secrets' set: the same secrets (by their bytes) reuse it */
static ngx_ai_scrub_set_t  ngx_ai_scrub_kept;


/*
 * *text without the n secrets (see above); *text is left as it is when
 * nothing is found, else points to new pool memory (the input may be
 * read-only).  *hits: the places replaced.  NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_ai_scrub(ngx_pool_t *pool, ngx_str_t *secrets, ngx_uint_t n,
    ngx_str_t *text, ngx_uint_t *hits)
{
    ngx_ai_scrub_t  sc;

    *hits = 0;

    /* the shortest place: 3 bytes of a secret beside a '…' */

    if (text->len < 6) {
        return NGX_OK;
    }

    ngx_memzero(&sc, sizeof(ngx_ai_scrub_t));

    sc.pool = pool;
    sc.secrets = secrets;
    sc.n = n;

    sc.set = ngx_ai_scrub_set(pool, secrets, n);
    if (sc.set == NULL) {
        return NGX_ERROR;
    }

    if (!sc.set->any) {
        return NGX_OK;
    }

    if (ngx_ai_scrub_find(&sc, text->data, text->len, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (sc.escapes && ngx_ai_scrub_view(&sc, text->data, text->len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (sc.spans.nelts == 0) {
        return NGX_OK;
    }

    return ngx_ai_scrub_write(&sc, text, hits);
}


/*
 * The filters of the secrets: every 4-byte part of each in parts, every 3
 * bytes that can end a secret's first 64 bytes in heads, that can start
 * its last 64 in tails.  The last set is kept (up to 16 secrets, 4 KB):
 * called with the same secrets, byte for byte, it is not built again.
 */

static ngx_ai_scrub_set_t *
ngx_ai_scrub_set(ngx_pool_t *pool, ngx_str_t *secrets, ngx_uint_t n)
{
    size_t               i, len, total, max;
    uint32_t             g, h;
    ngx_uint_t           k;
    const u_char        *s;
    ngx_ai_scrub_set_t  *set;

    set = &ngx_ai_scrub_kept;
    total = 0;

    for (k = 0; k < n; k++) {
        total += secrets[k].len;
    }

    if (n > NGX_AI_SCRUB_KEEP_N || total > NGX_AI_SCRUB_KEEP_BYTES) {
        set = ngx_palloc(pool, sizeof(ngx_ai_scrub_set_t));
        if (set == NULL) {
            return NULL;
        }

        set->kept = 0;

    } else if (set->kept && set->n == n) {
        total = 0;

        for (k = 0; k < n; k++) {
            if (set->len[k] != secrets[k].len
                || ngx_memcmp(set->data + total, secrets[k].data,
                              secrets[k].len)
                   != 0)
            {
                break;
            }

            total += secrets[k].len;
        }

        if (k == n) {
            return set;
        }
    }

    ngx_memzero(set->parts, sizeof(set->parts));
    ngx_memzero(set->heads, sizeof(set->heads));
    ngx_memzero(set->tails, sizeof(set->tails));

    set->stride = NGX_AI_SCRUB_PART - 3;
    set->any = 0;
    set->quoted = 0;

    for (k = 0; k < n; k++) {
        len = secrets[k].len;
        s = secrets[k].data;

        if (len < NGX_AI_SCRUB_MIN) {
            continue;
        }

        set->any = 1;

        /* every match (12 bytes, or the whole secret) holds a probe */

        set->stride = ngx_min(set->stride,
                              ngx_min(len, NGX_AI_SCRUB_PART) - 3);

        for (i = 0; i < len; i++) {
            if (s[i] < 0x20 || s[i] == '"' || s[i] == '\\') {
                set->quoted = 1;
            }

            if (i + 4 <= len) {
                ngx_memcpy(&g, s + i, 4);
                h = ngx_ai_scrub_hash(g, NGX_AI_SCRUB_BITS);
                set->parts[h >> 6] |= (uint64_t) 1 << (h & 63);
            }
        }

        max = ngx_min(len, NGX_AI_SCRUB_SIDE);

        for (i = 0; i + 3 <= max; i++) {
            g = s[i] | (s[i + 1] << 8) | (s[i + 2] << 16);
            h = ngx_ai_scrub_hash(g, NGX_AI_SCRUB_SIDE_BITS);
            set->heads[h >> 6] |= (uint64_t) 1 << (h & 63);

            g = s[len - max + i] | (s[len - max + i + 1] << 8)
                | (s[len - max + i + 2] << 16);
            h = ngx_ai_scrub_hash(g, NGX_AI_SCRUB_SIDE_BITS);
            set->tails[h >> 6] |= (uint64_t) 1 << (h & 63);
        }
    }

    if (set == &ngx_ai_scrub_kept) {
        set->n = n;
        total = 0;

        for (k = 0; k < n; k++) {
            set->len[k] = secrets[k].len;
            ngx_memcpy(set->data + total, secrets[k].data, secrets[k].len);
            total += secrets[k].len;
        }

        set->kept = 1;
    }

    return set;
}


/*
 * The places in text..text+len: probes through the filter, then the scan
 * for mask runs (and, on the raw text, for escapes); spans are in text's
 * offsets.
 */

static ngx_int_t
ngx_ai_scrub_find(ngx_ai_scrub_t *sc, const u_char *text, size_t len,
    ngx_uint_t raw)
{
    size_t          p, re, stride;
    uint32_t        g, h;
    uint64_t       *parts;
    ngx_uint_t      weight;
    const u_char   *q, *last;

    parts = sc->set->parts;
    stride = sc->set->stride;
    sc->last_secret = sc->n;

    for (p = 0; p + 4 <= len; p += stride) {
        ngx_memcpy(&g, text + p, 4);
        h = ngx_ai_scrub_hash(g, NGX_AI_SCRUB_BITS);

        if (ngx_ai_scrub_bit(parts, h)
            && ngx_ai_scrub_probe(sc, text, len, p) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    last = text + len;

    for (q = ngx_ai_scrub_special(text, last, sc->set->quoted);
         q < last;
         q = ngx_ai_scrub_special(q, last, sc->set->quoted))
    {
        if (*q == '\\') {
            if (raw) {
                sc->escapes = 1;
            }

            q++;
            continue;
        }

        /* a '•' may end a run of fewer than 3 ASCII mask characters */

        while (q > text && ngx_ai_scrub_masked(q[-1])) {
            q--;
        }

        re = (q - text) + ngx_ai_scrub_mask_run(q, last, &weight);

        if (weight >= 3
            && ngx_ai_scrub_mask(sc, text, len, q - text, re) != NGX_OK)
        {
            return NGX_ERROR;
        }

        q = (re > (size_t) (q - text)) ? text + re : q + 1;
    }

    return NGX_OK;
}


/*
 * The first place in p..last a mask run or an escape may start at, or
 * last: three ASCII mask characters in a row, a '•' or a '…', a \u or a
 * \/ (with quoted, any backslash).  Sixteen places at a time with SSE2,
 * most of them let through on one load and four compares; (c | 4) == '.'
 * is '*' or '.'.
 */

static ngx_inline const u_char *
ngx_ai_scrub_special(const u_char *p, const u_char *last, ngx_uint_t quoted)
{
#if (__SSE2__)
    int       m;
    __m128i   x0, x1, x2, four, dot, ex, lead, cont, ell, bul, bs, u, sl;
    __m128i   m0, m1, m2, esc;

    four = _mm_set1_epi8(4);
    dot = _mm_set1_epi8('.');
    ex = _mm_set1_epi8('x');
    lead = _mm_set1_epi8((char) 0xe2);
    cont = _mm_set1_epi8((char) 0x80);
    ell = _mm_set1_epi8((char) 0xa6);
    bul = _mm_set1_epi8((char) 0xa2);
    bs = _mm_set1_epi8('\\');
    u = _mm_set1_epi8('u');
    sl = _mm_set1_epi8('/');

    while (last - p >= 18) {
        x0 = _mm_loadu_si128((const __m128i *) p);

        m0 = _mm_or_si128(_mm_cmpeq_epi8(_mm_or_si128(x0, four), dot),
                          _mm_cmpeq_epi8(x0, ex));

        /* most blocks hold none of the bytes at all */

        if (_mm_movemask_epi8(_mm_or_si128(
                                  _mm_or_si128(m0, _mm_cmpeq_epi8(x0, bs)),
                                  _mm_cmpeq_epi8(x0, lead)))
            == 0)
        {
            p += 16;
            continue;
        }

        x1 = _mm_loadu_si128((const __m128i *) (p + 1));
        x2 = _mm_loadu_si128((const __m128i *) (p + 2));

        m1 = _mm_or_si128(_mm_cmpeq_epi8(_mm_or_si128(x1, four), dot),
                          _mm_cmpeq_epi8(x1, ex));
        m2 = _mm_or_si128(_mm_cmpeq_epi8(_mm_or_si128(x2, four), dot),
                          _mm_cmpeq_epi8(x2, ex));

        esc = _mm_cmpeq_epi8(x0, bs);

        if (!quoted) {
            esc = _mm_and_si128(esc, _mm_or_si128(_mm_cmpeq_epi8(x1, u),
                                                  _mm_cmpeq_epi8(x1, sl)));
        }

        m = _mm_movemask_epi8(
                _mm_or_si128(
                    _mm_or_si128(_mm_and_si128(m0, _mm_and_si128(m1, m2)),
                                 esc),
                    _mm_and_si128(
                        _mm_and_si128(_mm_cmpeq_epi8(x0, lead),
                                      _mm_cmpeq_epi8(x1, cont)),
                        _mm_or_si128(_mm_cmpeq_epi8(x2, ell),
                                     _mm_cmpeq_epi8(x2, bul)))));
        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 16;
    }
#endif

    for ( /* void */ ; p < last; p++) {
        if (last - p >= 3
            && ((ngx_ai_scrub_masked(p[0]) && ngx_ai_scrub_masked(p[1])
                 && ngx_ai_scrub_masked(p[2]))
                || (p[0] == 0xe2 && p[1] == 0x80
                    && (p[2] == 0xa6 || p[2] == 0xa2))))
        {
            return p;
        }

        if (p[0] == '\\'
            && (quoted || (last - p >= 2 && (p[1] == 'u' || p[1] == '/'))))
        {
            return p;
        }
    }

    return p;
}


/* a probe's 4 bytes at p passed the filter: where they are in a secret */

static ngx_int_t
ngx_ai_scrub_probe(ngx_ai_scrub_t *sc, const u_char *text, size_t len,
    size_t p)
{
    size_t         a, b, o, m, slen;
    ngx_uint_t     k;
    const u_char  *s, *f;

    for (k = 0; k < sc->n; k++) {
        slen = sc->secrets[k].len;
        s = sc->secrets[k].data;

        if (slen < NGX_AI_SCRUB_MIN) {
            continue;
        }

        for (f = s; f + 4 <= s + slen; f++) {
            f = memchr(f, text[p], s + slen - 4 - f + 1);
            if (f == NULL) {
                break;
            }

            if (ngx_memcmp(f, text + p, 4) != 0) {
                continue;
            }

            o = f - s;

            /* a probe inside the last match, on its diagonal */

            if (k == sc->last_secret && p - o == sc->last_diag
                && p + 4 <= sc->last_end)
            {
                continue;
            }

            for (a = 0; a < o && a < p && text[p - a - 1] == s[o - a - 1];
                 a++)
            {
                /* void */
            }

            for (b = 0; o + 4 + b < slen && p + 4 + b < len
                        && text[p + 4 + b] == s[o + 4 + b];
                 b++)
            {
                /* void */
            }

            m = a + 4 + b;

            if (slen >= NGX_AI_SCRUB_PART ? m < NGX_AI_SCRUB_PART
                                          : m < slen)
            {
                continue;
            }

            sc->last_secret = k;
            sc->last_diag = p - o;
            sc->last_end = p + 4 + b;

            if (ngx_ai_scrub_add(sc, p - a, p + 4 + b) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/*
 * The end of the mask run at p, its weight in *weight (a '…' counts as
 * the three dots it stands for); p itself if p is no mask character
 */

static size_t
ngx_ai_scrub_mask_run(const u_char *p, const u_char *last,
    ngx_uint_t *weight)
{
    const u_char  *q;

    *weight = 0;

    for (q = p; q < last; ) {
        if (ngx_ai_scrub_masked(*q)) {
            *weight += 1;
            q++;
            continue;
        }

        if (*q == 0xe2 && last - q >= 3 && q[1] == 0x80
            && (q[2] == 0xa2 || q[2] == 0xa6))
        {
            *weight += (q[2] == 0xa6) ? 3 : 1;
            q += 3;
            continue;
        }

        break;
    }

    return q - p;
}


/*
 * A mask run at rs..re: 3 or more bytes before it that begin a secret, or
 * after it that end one, make it (with them) a place
 */

static ngx_int_t
ngx_ai_scrub_mask(ngx_ai_scrub_t *sc, const u_char *text, size_t len,
    size_t rs, size_t re)
{
    size_t         kl, kr, k, max, slen, start, end;
    uint32_t       g, h;
    ngx_uint_t     i, head, tail;
    const u_char  *s, *f, *from;

    /* the 3 bytes before can end a secret's head, or after start a tail */

    head = 0;
    tail = 0;

    if (rs >= 3) {
        g = text[rs - 3] | (text[rs - 2] << 8) | (text[rs - 1] << 16);
        h = ngx_ai_scrub_hash(g, NGX_AI_SCRUB_SIDE_BITS);
        head = ngx_ai_scrub_bit(sc->set->heads, h) != 0;
    }

    if (len - re >= 3) {
        g = text[re] | (text[re + 1] << 8) | (text[re + 2] << 16);
        h = ngx_ai_scrub_hash(g, NGX_AI_SCRUB_SIDE_BITS);
        tail = ngx_ai_scrub_bit(sc->set->tails, h) != 0;
    }

    if (!head && !tail) {
        return NGX_OK;
    }

    start = rs;
    end = re;

    for (i = 0; i < sc->n; i++) {
        slen = sc->secrets[i].len;
        s = sc->secrets[i].data;

        if (slen < NGX_AI_SCRUB_MIN) {
            continue;
        }

        /* before: text[rs - k .. rs) is s[0 .. k), the longest k */

        max = head ? ngx_min(ngx_min(slen, NGX_AI_SCRUB_SIDE), rs) : 0;
        kl = 0;

        for (from = text + rs - max; from + 3 <= text + rs; from = f + 1) {
            f = memchr(from, s[0], text + rs - 3 - from + 1);
            if (f == NULL) {
                break;
            }

            k = text + rs - f;

            if (ngx_memcmp(f, s, k) == 0) {
                kl = k;
                break;
            }
        }

        /* after: text[re .. re + k) is s[slen - k .. slen), the longest k */

        max = tail ? ngx_min(ngx_min(slen, NGX_AI_SCRUB_SIDE), len - re) : 0;
        kr = 0;

        for (from = s + slen - max; from + 3 <= s + slen; from = f + 1) {
            f = memchr(from, text[re], s + slen - 3 - from + 1);
            if (f == NULL) {
                break;
            }

            k = s + slen - f;

            if (ngx_memcmp(text + re, f, k) == 0) {
                kr = k;
                break;
            }
        }

        if (kl >= 3 && rs - kl < start) {
            start = rs - kl;
        }

        if (kr >= 3 && re + kr > end) {
            end = re + kr;
        }
    }

    if (start == rs && end == re) {
        return NGX_OK;
    }

    return ngx_ai_scrub_add(sc, start, end);
}


static ngx_int_t
ngx_ai_scrub_add(ngx_ai_scrub_t *sc, size_t start, size_t end)
{
    ngx_ai_scrub_span_t  *sp;

    if (sc->spans.elts == NULL
        && ngx_array_init(&sc->spans, sc->pool, 4,
                          sizeof(ngx_ai_scrub_span_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    sp = ngx_array_push(&sc->spans);
    if (sp == NULL) {
        return NGX_ERROR;
    }

    sp->start = start;
    sp->end = end;

    return NGX_OK;
}


/*
 * The text with its JSON escapes decoded, each byte knowing where its
 * escape starts: searched as the text is, its places mapped back to whole
 * escapes and added to the raw text's.
 */

static ngx_int_t
ngx_ai_scrub_view(ngx_ai_scrub_t *sc, const u_char *text, size_t len)
{
    u_char               *view, *o;
    size_t                i, n, j, e, vlen;
    uint32_t             *at;
    ngx_uint_t            c, k, first, last;
    ngx_ai_scrub_span_t  *sp;

    if (len >= 0xffffffff) {
        return NGX_OK;
    }

    view = ngx_pnalloc(sc->pool, len);
    at = ngx_palloc(sc->pool, (len + 4) * sizeof(uint32_t));

    if (view == NULL || at == NULL) {
        return NGX_ERROR;
    }

    o = view;

    for (i = 0; i < len; i += n) {
        n = ngx_ai_scrub_escape(text, len, i, &c);

        if (n == 1) {
            at[o - view] = i;
            *o++ = text[i];
            continue;
        }

        /* an escape: its byte, or its code point's UTF-8 bytes */

        for (k = 0; k < 4; k++) {
            at[o - view + k] = i;
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
    }

    vlen = o - view;
    at[vlen] = len;

    first = sc->spans.elts ? sc->spans.nelts : 0;

    if (ngx_ai_scrub_find(sc, view, vlen, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    last = sc->spans.elts ? sc->spans.nelts : 0;
    sp = sc->spans.elts;

    for (k = first; k < last; k++) {
        j = sp[k].start;
        e = sp[k].end;

        /* the end moves to the end of its escape */

        while (e < vlen && at[e] == at[e - 1]) {
            e++;
        }

        sp[k].start = at[j];
        sp[k].end = at[e];
    }

    return NGX_OK;
}


/*
 * The length of the JSON escape at t[i] (2, 6, or 12 for a surrogate
 * pair), its code point in *c; 1 if t[i] starts none (a byte, or a
 * backslash JSON would refuse).  A run of backslashes pairs up from its
 * first: the view and the edges of the places cut the text alike.
 */

static size_t
ngx_ai_scrub_escape(const u_char *t, size_t len, size_t i, ngx_uint_t *c)
{
    ngx_uint_t  lo;

    *c = t[i];

    if (t[i] != '\\' || i + 1 >= len) {
        return 1;
    }

    switch (t[i + 1]) {

    case '"': case '\\': case '/':
        *c = t[i + 1];
        return 2;

    case 'b':
        *c = '\b';
        return 2;

    case 'f':
        *c = '\f';
        return 2;

    case 'n':
        *c = '\n';
        return 2;

    case 'r':
        *c = '\r';
        return 2;

    case 't':
        *c = '\t';
        return 2;

    case 'u':
        break;

    default:
        return 1;
    }

    if (i + 6 > len || ngx_ai_json_hex4(t + i + 2, c) != NGX_OK
        || (*c >= 0xdc00 && *c <= 0xdfff))
    {
        *c = '\\';
        return 1;
    }

    if (*c < 0xd800 || *c > 0xdbff) {
        return 6;
    }

    if (i + 12 > len || t[i + 6] != '\\' || t[i + 7] != 'u'
        || ngx_ai_json_hex4(t + i + 8, &lo) != NGX_OK
        || lo < 0xdc00 || lo > 0xdfff)
    {
        *c = '\\';
        return 1;
    }

    *c = 0x10000 + (((*c & 0x3ff) << 10) | (lo & 0x3ff));

    return 12;
}


/*
 * The places sorted and joined, their edges moved out to whole UTF-8
 * characters and whole escapes, each written as the mark
 */

static ngx_int_t
ngx_ai_scrub_write(ngx_ai_scrub_t *sc, ngx_str_t *text, ngx_uint_t *hits)
{
    u_char               *out, *o;
    size_t                i, cut, start, end, pos;
    ngx_uint_t            k, nspans;
    const u_char         *t;
    ngx_ai_scrub_span_t  *sp;

    t = text->data;
    sp = sc->spans.elts;
    nspans = sc->spans.nelts;

    for (k = 0; k < nspans; k++) {
        start = ngx_ai_scrub_char(t, text->len, sp[k].start);
        end = sp[k].end;

        if (end < text->len) {
            i = ngx_ai_scrub_char(t, text->len, end);

            if (i < end) {
                end = i + ngx_ai_scrub_char_len(t[i]);
            }
        }

        sp[k].start = start;
        sp[k].end = end;
    }

    ngx_qsort(sp, nspans, sizeof(ngx_ai_scrub_span_t), ngx_ai_scrub_cmp);

    nspans = ngx_ai_scrub_join(sp, nspans);

    /*
     * an edge inside an escape moves out to it: half an escape left
     * beside the mark would make the text beyond it decode otherwise
     * ("\\" cut after its first byte leaves a "\" that escapes what
     * follows, and may make a secret whole)
     */

    if (memchr(t, '\\', text->len) != NULL) {
        ngx_ai_scrub_escapes(t, text->len, sp, nspans);
        nspans = ngx_ai_scrub_join(sp, nspans);
    }

    cut = 0;

    for (k = 0; k < nspans; k++) {
        cut += sp[k].end - sp[k].start;
    }

    out = ngx_pnalloc(sc->pool, text->len - cut
                                + nspans * (sizeof(NGX_AI_SCRUB_MARK) - 1));
    if (out == NULL) {
        return NGX_ERROR;
    }

    o = out;
    pos = 0;

    for (k = 0; k < nspans; k++) {
        o = ngx_cpymem(o, t + pos, sp[k].start - pos);
        o = ngx_cpymem(o, NGX_AI_SCRUB_MARK, sizeof(NGX_AI_SCRUB_MARK) - 1);
        pos = sp[k].end;
    }

    o = ngx_cpymem(o, t + pos, text->len - pos);

    text->data = out;
    text->len = o - out;
    *hits = nspans;

    return NGX_OK;
}


/* sorted places: overlapping and touching ones joined; how many are left */

static ngx_uint_t
ngx_ai_scrub_join(ngx_ai_scrub_span_t *sp, ngx_uint_t nspans)
{
    ngx_uint_t  k, n;

    n = 0;

    for (k = 1; k < nspans; k++) {
        if (sp[k].start <= sp[n].end) {
            sp[n].end = ngx_max(sp[n].end, sp[k].end);
            continue;
        }

        sp[++n] = sp[k];
    }

    return n + 1;
}


/*
 * Sorted, joined places' edges moved out to whole escapes: the text's
 * escapes read once from its start, as the view reads them, from one
 * backslash to the next
 */

static void
ngx_ai_scrub_escapes(const u_char *t, size_t len, ngx_ai_scrub_span_t *sp,
    ngx_uint_t nspans)
{
    size_t      i, n;
    ngx_uint_t  k;

    i = 0;

    for (k = 0; k < nspans; k++) {
        n = ngx_ai_scrub_token(t, len, &i, sp[k].start);

        if (i < sp[k].start) {
            sp[k].start = i;
        }

        n = ngx_ai_scrub_token(t, len, &i, sp[k].end - 1);

        if (i + n > sp[k].end) {
            sp[k].end = i + n;
        }
    }
}


/*
 * The escape (or byte) that holds t[x], read on from *i (at a token, not
 * after x): *i set to its start, its length returned
 */

static size_t
ngx_ai_scrub_token(const u_char *t, size_t len, size_t *i, size_t x)
{
    size_t         n;
    ngx_uint_t     c;
    const u_char  *b;

    for ( ;; ) {
        if (t[*i] != '\\') {
            b = memchr(t + *i, '\\', x + 1 - *i);

            if (b == NULL) {
                *i = x;
                return 1;
            }

            *i = b - t;
        }

        n = ngx_ai_scrub_escape(t, len, *i, &c);

        if (*i + n > x) {
            return n;
        }

        *i += n;
    }
}


/*
 * The first byte of the UTF-8 character that holds t[i]: a lead byte up
 * to 3 bytes before it, followed by as many continuation bytes as it
 * calls for (all in the text), that reach i; else i itself (ASCII, or not
 * UTF-8: a stray continuation byte, or one after 0xf8..0xff, is a
 * character of its own, and the edge moves over nothing else)
 */

static size_t
ngx_ai_scrub_char(const u_char *t, size_t len, size_t i)
{
    size_t  j, k, n;

    for (j = i; j > 0 && i - j < 3 && (t[j] & 0xc0) == 0x80; j--) {
        /* void */
    }

    if (j == i || t[j] < 0xc0 || t[j] >= 0xf8) {
        return i;
    }

    n = ngx_ai_scrub_char_len(t[j]);

    if (j + n <= i || j + n > len) {
        return i;
    }

    for (k = j + 1; k < j + n; k++) {
        if ((t[k] & 0xc0) != 0x80) {
            return i;
        }
    }

    return j;
}


static int ngx_libc_cdecl
ngx_ai_scrub_cmp(const void *a, const void *b)
{
    const ngx_ai_scrub_span_t  *x = a, *y = b;

    if (x->start != y->start) {
        return (x->start < y->start) ? -1 : 1;
    }

    return (x->end < y->end) ? -1 : (x->end > y->end);
}
