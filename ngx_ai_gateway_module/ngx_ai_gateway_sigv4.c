
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * AWS Signature Version 4 (type=bedrock): the canonical request, the
 * string to sign and the Authorization header of one call, from its
 * method, path, query, headers, body hash, date and credentials.  The
 * signing key is derived once per day, region and service and kept in
 * the caller's cache.  Pure: no request, no log; OpenSSL does the
 * hashing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>


#define NGX_AI_SIGV4_ALGORITHM  "AWS4-HMAC-SHA256"


static ngx_int_t ngx_ai_sigv4_hmac(const u_char *key, size_t klen,
    const u_char *msg, size_t mlen, u_char *out);
static ngx_int_t ngx_ai_sigv4_key(ngx_ai_sigv4_t *in,
    ngx_ai_sigv4_key_t *cache, u_char *key);
static ngx_int_t ngx_ai_sigv4_canonical(ngx_ai_sigv4_t *in, ngx_ai_buf_t *b,
    ngx_ai_buf_t *signed_headers);
static void ngx_ai_sigv4_sort(ngx_ai_sigv4_header_t *h, ngx_uint_t n);
static void ngx_ai_hex(const u_char *p, size_t len, u_char *out);
static void ngx_ai_digits(u_char *p, int v, ngx_uint_t n);


void
ngx_ai_sha256_hex(const u_char *p, size_t len, u_char *hex)
{
    u_char  md[SHA256_DIGEST_LENGTH];

    SHA256(p, len, md);
    ngx_ai_hex(md, SHA256_DIGEST_LENGTH, hex);
}


/*
 * RFC 3986 escaping as AWS does it: everything but A-Z a-z 0-9 - . _ ~
 * becomes %XX (upper case hex); "/" is kept when slash is set.
 */

ngx_int_t
ngx_ai_uri_escape(ngx_ai_buf_t *b, const u_char *p, size_t len,
    ngx_uint_t slash)
{
    u_char        c, *d;
    size_t        i;
    static u_char hex[] = "0123456789ABCDEF";

    if (ngx_ai_buf_reserve(b, len * 3) != NGX_OK) {
        return NGX_ERROR;
    }

    d = b->data + b->len;

    for (i = 0; i < len; i++) {
        c = p[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~' || (c == '/' && slash))
        {
            *d++ = c;
            continue;
        }

        *d++ = '%';
        *d++ = hex[c >> 4];
        *d++ = hex[c & 0xf];
    }

    b->len = d - b->data;

    return NGX_OK;
}


/*
 * Authorization: AWS4-HMAC-SHA256 Credential=AKID/DAY/REGION/SERVICE/
 * aws4_request, SignedHeaders=a;b, Signature=HEX.  in->headers are
 * sorted here (names must be lower case); in->path is the path as sent,
 * escaped once more for the canonical URI unless in->s3.
 */

ngx_int_t
ngx_ai_sigv4_sign(ngx_pool_t *pool, ngx_ai_sigv4_t *in,
    ngx_ai_sigv4_key_t *cache, ngx_str_t *authorization)
{
    u_char        key[32], sig[32], hash[64], sighex[64];
    ngx_ai_buf_t  cr, sts, sh, *a;

    if (in->date.len != 16 || in->akid.len == 0 || in->secret.len == 0
        || in->secret.len > NGX_AI_SIGV4_MAX_SECRET)
    {
        return NGX_DECLINED;
    }

    if (ngx_ai_buf_init(&cr, pool, 512) != NGX_OK
        || ngx_ai_buf_init(&sh, pool, 64) != NGX_OK
        || ngx_ai_buf_init(&sts, pool, 256) != NGX_OK
        || ngx_ai_sigv4_canonical(in, &cr, &sh) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_ai_sha256_hex(cr.data, cr.len, hash);

    /* the string to sign */

    if (ngx_ai_buf_append_str(&sts, NGX_AI_SIGV4_ALGORITHM "\n") != NGX_OK
        || ngx_ai_buf_append(&sts, in->date.data, 16) != NGX_OK
        || ngx_ai_buf_append(&sts, "\n", 1) != NGX_OK
        || ngx_ai_buf_append(&sts, in->date.data, 8) != NGX_OK
        || ngx_ai_buf_append(&sts, "/", 1) != NGX_OK
        || ngx_ai_buf_append(&sts, in->region.data, in->region.len) != NGX_OK
        || ngx_ai_buf_append(&sts, "/", 1) != NGX_OK
        || ngx_ai_buf_append(&sts, in->service.data, in->service.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&sts, "/aws4_request\n") != NGX_OK
        || ngx_ai_buf_append(&sts, hash, 64) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ai_sigv4_key(in, cache, key) != NGX_OK
        || ngx_ai_sigv4_hmac(key, 32, sts.data, sts.len, sig) != NGX_OK)
    {
        ngx_memzero(key, sizeof(key));
        return NGX_ERROR;
    }

    ngx_memzero(key, sizeof(key));
    ngx_ai_hex(sig, 32, sighex);

    if (in->canonical) {
        in->canonical->data = cr.data;
        in->canonical->len = cr.len;
    }

    /* reuse cr's pool for the header */

    a = &sts;
    a->len = 0;

    if (ngx_ai_buf_append_str(a, NGX_AI_SIGV4_ALGORITHM " Credential=")
        != NGX_OK
        || ngx_ai_buf_append(a, in->akid.data, in->akid.len) != NGX_OK
        || ngx_ai_buf_append(a, "/", 1) != NGX_OK
        || ngx_ai_buf_append(a, in->date.data, 8) != NGX_OK
        || ngx_ai_buf_append(a, "/", 1) != NGX_OK
        || ngx_ai_buf_append(a, in->region.data, in->region.len) != NGX_OK
        || ngx_ai_buf_append(a, "/", 1) != NGX_OK
        || ngx_ai_buf_append(a, in->service.data, in->service.len) != NGX_OK
        || ngx_ai_buf_append_str(a, "/aws4_request, SignedHeaders=")
           != NGX_OK
        || ngx_ai_buf_append(a, sh.data, sh.len) != NGX_OK
        || ngx_ai_buf_append_str(a, ", Signature=") != NGX_OK
        || ngx_ai_buf_append(a, sighex, 64) != NGX_OK)
    {
        return NGX_ERROR;
    }

    authorization->data = a->data;
    authorization->len = a->len;

    return NGX_OK;
}


/*
 * METHOD \n URI \n QUERY \n name:value \n ... \n \n SIGNED \n BODYHASH
 */

static ngx_int_t
ngx_ai_sigv4_canonical(ngx_ai_sigv4_t *in, ngx_ai_buf_t *b,
    ngx_ai_buf_t *sh)
{
    u_char                 *v, *e;
    ngx_uint_t              i;
    ngx_ai_sigv4_header_t  *h;

    if (ngx_ai_buf_append(b, in->method.data, in->method.len) != NGX_OK
        || ngx_ai_buf_append(b, "\n", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (in->path.len == 0) {
        if (ngx_ai_buf_append(b, "/", 1) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (in->s3) {
        if (ngx_ai_buf_append(b, in->path.data, in->path.len) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_ai_uri_escape(b, in->path.data, in->path.len, 1)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append(b, "\n", 1) != NGX_OK
        || ngx_ai_buf_append(b, in->query.data, in->query.len) != NGX_OK
        || ngx_ai_buf_append(b, "\n", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    h = in->headers;
    ngx_ai_sigv4_sort(h, in->nheaders);

    for (i = 0; i < in->nheaders; i++) {

        /* values trimmed of leading and trailing blanks */

        v = h[i].value.data;
        e = v + h[i].value.len;

        while (v < e && (*v == ' ' || *v == '\t')) {
            v++;
        }

        while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }

        if (ngx_ai_buf_append(b, h[i].name.data, h[i].name.len) != NGX_OK
            || ngx_ai_buf_append(b, ":", 1) != NGX_OK
            || ngx_ai_buf_append(b, v, e - v) != NGX_OK
            || ngx_ai_buf_append(b, "\n", 1) != NGX_OK
            || (i && ngx_ai_buf_append(sh, ";", 1) != NGX_OK)
            || ngx_ai_buf_append(sh, h[i].name.data, h[i].name.len)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_buf_append(b, "\n", 1) != NGX_OK
        || ngx_ai_buf_append(b, sh->data, sh->len) != NGX_OK
        || ngx_ai_buf_append(b, "\n", 1) != NGX_OK
        || ngx_ai_buf_append(b, in->body_hash.data, in->body_hash.len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a few headers: insertion sort by name */

static void
ngx_ai_sigv4_sort(ngx_ai_sigv4_header_t *h, ngx_uint_t n)
{
    size_t                 len;
    ngx_int_t              rc;
    ngx_uint_t             i, j;
    ngx_ai_sigv4_header_t  t;

    for (i = 1; i < n; i++) {
        t = h[i];

        for (j = i; j > 0; j--) {
            len = ngx_min(h[j - 1].name.len, t.name.len);
            rc = ngx_memcmp(h[j - 1].name.data, t.name.data, len);

            if (rc < 0 || (rc == 0 && h[j - 1].name.len <= t.name.len)) {
                break;
            }

            h[j] = h[j - 1];
        }

        h[j] = t;
    }
}


/*
 * kDate = HMAC("AWS4" + secret, DAY), kRegion, kService, kSigning =
 * HMAC(kService, "aws4_request"); kept for the day, region, service and
 * secret it was made for (the cache knows the secret by its hash).
 */

static ngx_int_t
ngx_ai_sigv4_key(ngx_ai_sigv4_t *in, ngx_ai_sigv4_key_t *cache, u_char *key)
{
    u_char   k[32], id[SHA256_DIGEST_LENGTH];
    u_char   secret[4 + NGX_AI_SIGV4_MAX_SECRET];
    EVP_MD_CTX  *md;
    unsigned int  n;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(md, in->secret.data, in->secret.len) != 1
        || EVP_DigestUpdate(md, "\n", 1) != 1
        || EVP_DigestUpdate(md, in->region.data, in->region.len) != 1
        || EVP_DigestUpdate(md, "\n", 1) != 1
        || EVP_DigestUpdate(md, in->service.data, in->service.len) != 1
        || EVP_DigestFinal_ex(md, id, &n) != 1)
    {
        EVP_MD_CTX_free(md);
        return NGX_ERROR;
    }

    EVP_MD_CTX_free(md);

    if (cache && cache->valid
        && ngx_memcmp(cache->day, in->date.data, 8) == 0
        && ngx_memcmp(cache->id, id, sizeof(id)) == 0)
    {
        ngx_memcpy(key, cache->key, 32);
        cache->hits++;
        return NGX_OK;
    }

    ngx_memcpy(secret, "AWS4", 4);
    ngx_memcpy(secret + 4, in->secret.data, in->secret.len);

    if (ngx_ai_sigv4_hmac(secret, 4 + in->secret.len, in->date.data, 8, k)
        != NGX_OK
        || ngx_ai_sigv4_hmac(k, 32, in->region.data, in->region.len, k)
           != NGX_OK
        || ngx_ai_sigv4_hmac(k, 32, in->service.data, in->service.len, k)
           != NGX_OK
        || ngx_ai_sigv4_hmac(k, 32, (u_char *) "aws4_request", 12, key)
           != NGX_OK)
    {
        ngx_memzero(secret, sizeof(secret));
        ngx_memzero(k, sizeof(k));
        return NGX_ERROR;
    }

    ngx_memzero(secret, sizeof(secret));
    ngx_memzero(k, sizeof(k));

    if (cache) {
        ngx_memcpy(cache->day, in->date.data, 8);
        ngx_memcpy(cache->id, id, sizeof(id));
        ngx_memcpy(cache->key, key, 32);
        cache->valid = 1;
        cache->derived++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_sigv4_hmac(const u_char *key, size_t klen, const u_char *msg,
    size_t mlen, u_char *out)
{
    u_char        md[EVP_MAX_MD_SIZE];
    unsigned int  n;

    if (HMAC(EVP_sha256(), key, (int) klen, msg, mlen, md, &n) == NULL
        || n != 32)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(out, md, 32);

    return NGX_OK;
}


/* "20150830T123600Z" of a time */

void
ngx_ai_sigv4_date(time_t t, u_char *out)
{
    struct tm  tm;

    ngx_memzero(&tm, sizeof(struct tm));
    (void) gmtime_r(&t, &tm);

    ngx_ai_digits(out, tm.tm_year + 1900, 4);
    ngx_ai_digits(out + 4, tm.tm_mon + 1, 2);
    ngx_ai_digits(out + 6, tm.tm_mday, 2);
    out[8] = 'T';
    ngx_ai_digits(out + 9, tm.tm_hour, 2);
    ngx_ai_digits(out + 11, tm.tm_min, 2);
    ngx_ai_digits(out + 13, tm.tm_sec, 2);
    out[15] = 'Z';
}


static void
ngx_ai_digits(u_char *p, int v, ngx_uint_t n)
{
    while (n--) {
        p[n] = (u_char) ('0' + v % 10);
        v /= 10;
    }
}


static void
ngx_ai_hex(const u_char *p, size_t len, u_char *out)
{
    size_t         i;
    static u_char  hex[] = "0123456789abcdef";

    for (i = 0; i < len; i++) {
        *out++ = hex[p[i] >> 4];
        *out++ = hex[p[i] & 0xf];
    }
}
