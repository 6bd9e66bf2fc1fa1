
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The key of a limit or a ledger (key= of ai_rate and ai_cost) for one
 * request: its value, evaluated once and kept only as a SHA-256 digest,
 * what an empty key gets (empty=), and the refusal of a new key that a
 * full zone has no room for; the names in clear of the digests that are
 * an ai_auth key's name or a team's account.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include "ngx_ai_gateway_limits.h"


static ngx_int_t ngx_http_ai_key_names_push(ngx_array_t *names,
    u_char *value, size_t len, ngx_str_t *name, ngx_str_t *team);
static int ngx_http_ai_key_name_cmp(const void *a, const void *b);


/* a key's value and its SHA-256 digest, computed once per request */

ngx_int_t
ngx_http_ai_limits_key(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_complex_value_t *cv, ngx_http_ai_key_t **key)
{
    ngx_str_t            value;
    ngx_uint_t           i;
    ngx_http_ai_key_t   *k;
    ngx_http_request_t  *r;

    r = lctx->request;

    if (ngx_http_complex_value(r, cv, &value) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < lctx->nkeys; i++) {
        k = &lctx->keys[i];

        if (k->value.len == value.len
            && ngx_memcmp(k->value.data, value.data, value.len) == 0)
        {
            *key = k;
            return NGX_OK;
        }
    }

    if (lctx->nkeys < sizeof(lctx->keys) / sizeof(lctx->keys[0])) {
        k = &lctx->keys[lctx->nkeys++];

    } else {
        k = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_key_t));
        if (k == NULL) {
            return NGX_ERROR;
        }
    }

    k->value = value;
    k->empty = (value.len == 0);

    if (!k->empty
        && ngx_http_ai_sha256(value.data, value.len, k->digest) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai limits: SHA-256 of a key failed");
        return NGX_ERROR;
    }

    *key = k;

    return NGX_OK;
}


/*
 * SHA-256 with the algorithm fetched and the context allocated once per
 * process: EVP_Digest() looks the algorithm up on every call, which costs
 * more than hashing a key.
 */

ngx_int_t
ngx_http_ai_sha256(u_char *data, size_t len, u_char *digest)
{
    unsigned int         n;

    static EVP_MD_CTX   *mdctx;
#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
    static EVP_MD       *md;

    if (md == NULL) {
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (md == NULL) {
            return NGX_ERROR;
        }
    }
#else
    static const EVP_MD *md;

    if (md == NULL) {
        md = EVP_sha256();
    }
#endif

    if (mdctx == NULL) {
        mdctx = EVP_MD_CTX_new();
        if (mdctx == NULL) {
            return NGX_ERROR;
        }
    }

    n = 0;

    if (EVP_DigestInit_ex(mdctx, md, NULL) != 1
        || EVP_DigestUpdate(mdctx, data, len) != 1
        || EVP_DigestFinal_ex(mdctx, digest, &n) != 1
        || n != NGX_HTTP_AI_DIGEST_LEN)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A rate or cost zone with no room for a new key: nothing that holds a
 * limit or a budget is dropped to make room (a flood of new keys would
 * otherwise reset other keys' limits and spend), so the request is
 * refused, before any provider call, as a server at capacity.
 */

void
ngx_http_ai_limits_zone_full(ngx_http_ai_limits_ctx_t *lctx,
    ngx_shm_zone_t *shm_zone, ngx_ai_error_t *err)
{
    ngx_log_error(NGX_LOG_WARN, lctx->request->connection->log, 0,
                  "zone \"%V\" is full: refused a request with a key it "
                  "has no room for; make the zone larger",
                  &shm_zone->shm.name);

    lctx->retry_after = 60;

    ngx_ai_error_set(err, NGX_HTTP_SERVICE_UNAVAILABLE, "server_error", NULL,
                     "zone_full", "The gateway has no room for a new key in "
                     "its rate-limit or budget zone. Please try again "
                     "later.");
}


/* empty=deny|shared|allow of ai_rate and ai_cost */

ngx_int_t
ngx_http_ai_limits_empty_arg(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t *empty)
{
    ngx_str_t  s;

    s.data = value->data + 6;
    s.len = value->len - 6;

    if (s.len == 4 && ngx_strncmp(s.data, "deny", 4) == 0) {
        *empty = NGX_HTTP_AI_EMPTY_DENY;

    } else if (s.len == 6 && ngx_strncmp(s.data, "shared", 6) == 0) {
        *empty = NGX_HTTP_AI_EMPTY_SHARED;

    } else if (s.len == 5 && ngx_strncmp(s.data, "allow", 5) == 0) {
        *empty = NGX_HTTP_AI_EMPTY_ALLOW;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": empty= takes deny, shared or "
                           "allow", value);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A limit or budget counted per key, and the request has none (key=
 * evaluates empty) with empty=deny: refused, as an unauthenticated call.
 */

void
ngx_http_ai_limits_key_missing(ngx_http_ai_limits_ctx_t *lctx,
    ngx_ai_error_t *err)
{
    ngx_log_error(NGX_LOG_INFO, lctx->request->connection->log, 0,
                  "ai limits: refused a request without a key on \"%V\"",
                  &lctx->route);

    ngx_ai_error_set(err, NGX_HTTP_UNAUTHORIZED, "invalid_request_error",
                     NULL, "missing_key", "This route limits requests per "
                     "key, and the request carries none.");
}


void
ngx_http_ai_digest_hex(u_char *dst, u_char *digest, size_t n)
{
    (void) ngx_hex_dump(dst, digest, n);
}


/*
 * The names of the digests limits count an ai_auth key under (by
 * ngx_http_ai_limits_principal_conf(): the digest of the key's name, and
 * of "team:" and its team for the team's account), added by the auth
 * module at configuration time for every key of its stores; a reload
 * builds the table of the new cycle anew.  The status writers look a
 * digest up: a binary search in the sorted table.
 */

ngx_int_t
ngx_http_ai_key_names_add(ngx_pool_t *pool, ngx_array_t **names,
    ngx_str_t *name, ngx_str_t *team)
{
    u_char     *p;
    ngx_str_t   none;

    if (*names == NULL) {
        *names = ngx_array_create(pool, 16, sizeof(ngx_http_ai_key_name_t));
        if (*names == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_key_names_push(*names, name->data, name->len, name, team)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (team->len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, sizeof("team:") - 1 + team->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, "team:", sizeof("team:") - 1);
    ngx_memcpy(p + sizeof("team:") - 1, team->data, team->len);

    ngx_str_null(&none);

    return ngx_http_ai_key_names_push(*names, p,
                                      sizeof("team:") - 1 + team->len,
                                      &none, team);
}


static ngx_int_t
ngx_http_ai_key_names_push(ngx_array_t *names, u_char *value, size_t len,
    ngx_str_t *name, ngx_str_t *team)
{
    ngx_http_ai_key_name_t  *e;

    e = ngx_array_push(names);
    if (e == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_sha256(value, len, e->digest) != NGX_OK) {
        return NGX_ERROR;
    }

    e->name = *name;
    e->team = *team;

    return NGX_OK;
}


/*
 * Sorted by digest, one entry per digest (the lines of a rotation share a
 * name); a name whose stores give it different teams keeps none.
 */

void
ngx_http_ai_key_names_sort(ngx_array_t *names)
{
    ngx_uint_t               i, n;
    ngx_http_ai_key_name_t  *e;

    if (names == NULL || names->nelts == 0) {
        return;
    }

    e = names->elts;

    ngx_qsort(e, names->nelts, sizeof(ngx_http_ai_key_name_t),
              ngx_http_ai_key_name_cmp);

    for (n = 0, i = 1; i < names->nelts; i++) {
        if (ngx_memcmp(e[i].digest, e[n].digest, NGX_HTTP_AI_DIGEST_LEN)
            != 0)
        {
            e[++n] = e[i];
            continue;
        }

        if (e[i].team.len != e[n].team.len
            || (e[n].team.len
                && ngx_memcmp(e[i].team.data, e[n].team.data,
                              e[n].team.len)
                   != 0))
        {
            e[n].team.len = 0;
            e[n].team.data = (u_char *) "";
        }
    }

    names->nelts = n + 1;
}


static int
ngx_http_ai_key_name_cmp(const void *a, const void *b)
{
    return ngx_memcmp(((ngx_http_ai_key_name_t *) a)->digest,
                      ((ngx_http_ai_key_name_t *) b)->digest,
                      NGX_HTTP_AI_DIGEST_LEN);
}


/*
 * The entry of a digest, or of the first len bytes of one (the metrics
 * zone keeps 4); NULL if none, or if a prefix is not one entry's alone
 */

ngx_http_ai_key_name_t *
ngx_http_ai_key_name_find(ngx_array_t *names, u_char *digest, size_t len)
{
    ngx_int_t                rc;
    ngx_uint_t               lo, hi, mid;
    ngx_http_ai_key_name_t  *e;

    if (names == NULL || len == 0 || len > NGX_HTTP_AI_DIGEST_LEN) {
        return NULL;
    }

    e = names->elts;
    lo = 0;
    hi = names->nelts;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        rc = ngx_memcmp(digest, e[mid].digest, len);

        if (rc < 0) {
            hi = mid;

        } else if (rc > 0) {
            lo = mid + 1;

        } else {
            if ((mid > 0 && ngx_memcmp(digest, e[mid - 1].digest, len) == 0)
                || (mid + 1 < names->nelts
                    && ngx_memcmp(digest, e[mid + 1].digest, len) == 0))
            {
                return NULL;
            }

            return &e[mid];
        }
    }

    return NULL;
}


/* "key_name" and "team" of an entry of the status, where known */

void
ngx_http_ai_key_name_json(ngx_ai_jw_t *w, ngx_array_t *names,
    u_char *digest, size_t len)
{
    ngx_http_ai_key_name_t  *e;

    e = ngx_http_ai_key_name_find(names, digest, len);

    if (e == NULL) {
        return;
    }

    if (e->name.len) {
        ngx_ai_jw_key_string(w, "key_name", e->name.data, e->name.len);
    }

    if (e->team.len) {
        ngx_ai_jw_key_string(w, "team", e->team.data, e->team.len);
    }
}


/* the same, for the hex digits of a digest's first bytes */

void
ngx_http_ai_key_name_json_hex(ngx_ai_jw_t *w, ngx_array_t *names,
    u_char *hex, size_t len)
{
    size_t     i;
    ngx_int_t  n;
    u_char     digest[NGX_HTTP_AI_DIGEST_LEN];

    if (names == NULL || len == 0 || len % 2
        || len > 2 * NGX_HTTP_AI_DIGEST_LEN)
    {
        return;
    }

    for (i = 0; i < len / 2; i++) {
        n = ngx_hextoi(hex + 2 * i, 2);

        if (n == NGX_ERROR) {
            return;
        }

        digest[i] = (u_char) n;
    }

    ngx_http_ai_key_name_json(w, names, digest, len / 2);
}
