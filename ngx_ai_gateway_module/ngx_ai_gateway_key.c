
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The key of a limit or a ledger (key= of ai_rate and ai_cost) for one
 * request: its value, evaluated once and kept only as a SHA-256 digest,
 * what an empty key gets (empty=), and the refusal of a new key that a
 * full zone has no room for.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include "ngx_ai_gateway_limits.h"


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
