
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The headers of a provider call (for ngx_ai_gateway_attempt.c): those
 * it is sent (a fresh list with the provider's key in its type's header,
 * or an AWS Signature V4) and those read back from the provider's answer
 * (a 429's Retry-After, Bedrock's token count).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


/* seconds: a longer Retry-After of a provider is passed on as this */
#define NGX_HTTP_AI_MAX_RETRY_AFTER  600


static ngx_int_t ngx_http_ai_call_header_number(ngx_http_request_t *r,
    ngx_str_t *name);


/*
 * A fresh header list: the subrequest's list would otherwise be the
 * client's (ngx_http_subrequest copies headers_in by value), and the
 * client's Authorization, cookies and Accept-Encoding must not leave.
 */

ngx_int_t
ngx_http_ai_call_headers(ngx_http_request_t *sr, ngx_http_ai_attempt_t *a,
    ngx_str_t *key)
{
    u_char      *p;
    ngx_str_t    v;
    const char  *accept;

    accept = !a->req->stream ? "application/json"
             : (a->provider->translator->type == NGX_AI_PROVIDER_BEDROCK)
               ? "application/vnd.amazon.eventstream" : "text/event-stream";

    if (ngx_http_ai_call_fresh_headers(sr, "application/json", accept)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (a->ctx->fusion) {
        /* fusion never recurses through another gateway */
        ngx_str_set(&v, "1");

        if (ngx_http_ai_call_push_header(sr, "X-AI-Fusion-Depth", &v)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (key->len == 0) {
        return NGX_OK;
    }

    if (a->provider->cloud == NGX_HTTP_AI_CLOUD_AZURE && !a->provider->bearer)
    {
        return ngx_http_ai_call_push_header(sr, "api-key", key);
    }

    switch (a->provider->cloud == NGX_HTTP_AI_CLOUD_VERTEX
            ? NGX_AI_PROVIDER_OPENAI : a->provider->translator->type)
    {

    case NGX_AI_PROVIDER_ANTHROPIC:
        ngx_str_set(&v, "2023-06-01");

        if (ngx_http_ai_call_push_header(sr, "x-api-key", key) != NGX_OK
            || ngx_http_ai_call_push_header(sr, "anthropic-version", &v)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        break;

    case NGX_AI_PROVIDER_GEMINI:
        if (ngx_http_ai_call_push_header(sr, "x-goog-api-key", key) != NGX_OK) {
            return NGX_ERROR;
        }

        break;

    case NGX_AI_PROVIDER_BEDROCK:
        break;                          /* ngx_http_ai_call_sign_aws() */

    default: /* NGX_AI_PROVIDER_OPENAI */
        v.len = sizeof("Bearer ") - 1 + key->len;
        v.data = ngx_pnalloc(sr->pool, v.len);
        if (v.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(v.data, "Bearer ", sizeof("Bearer ") - 1);
        ngx_memcpy(p, key->data, key->len);

        if (ngx_http_ai_call_push_header(sr, "Authorization", &v) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The list of a call's own: Content-Type and Accept, and room for the
 * provider's headers; none of the client's
 */

ngx_int_t
ngx_http_ai_call_fresh_headers(ngx_http_request_t *sr,
    const char *content_type, const char *accept)
{
    ngx_str_t  v;

    if (ngx_list_init(&sr->headers_in.headers, sr->pool, 6,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->headers_in.authorization = NULL;
    sr->headers_in.content_type = NULL;
    sr->headers_in.content_length = NULL;

    v.data = (u_char *) content_type;
    v.len = ngx_strlen(content_type);

    if (ngx_http_ai_call_push_header(sr, "Content-Type", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    v.data = (u_char *) accept;
    v.len = ngx_strlen(accept);

    return ngx_http_ai_call_push_header(sr, "Accept", &v);
}


/*
 * type=bedrock: AWS Signature V4 over the call as the pass= location
 * sends it: the path after the pass= prefix (the location forwards it
 * unchanged, docs/providers.md), the Host of the provider's host=, the
 * body's SHA-256; the signing key is derived once a day.
 */

ngx_int_t
ngx_http_ai_call_sign_aws(ngx_http_request_t *sr, ngx_http_ai_attempt_t *a,
    ngx_str_t *key, ngx_str_t *path, ngx_str_t *body)
{
    u_char                 *colon, date[16], hash[64];
    ngx_int_t               rc;
    ngx_str_t               auth, v;
    ngx_uint_t              n;
    ngx_ai_sigv4_t          in;
    ngx_http_ai_provider_t *p;
    ngx_ai_sigv4_header_t   h[NGX_AI_SIGV4_MAX_HEADERS];

    p = a->provider;

    colon = ngx_strlchr(key->data, key->data + key->len, ':');

    if (colon == NULL || colon == key->data
        || colon == key->data + key->len - 1)
    {
        ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                      "ai_provider \"%V\": the key is not "
                      "ACCESS_KEY_ID:SECRET_ACCESS_KEY", &p->name);
        return NGX_ERROR;
    }

    ngx_memzero(&in, sizeof(ngx_ai_sigv4_t));

    ngx_str_set(&in.method, "POST");
    in.path = *path;
    in.akid.data = key->data;
    in.akid.len = colon - key->data;
    in.secret.data = colon + 1;
    in.secret.len = key->data + key->len - (colon + 1);
    in.region = p->region;
    ngx_str_set(&in.service, "bedrock");

    ngx_ai_sigv4_date(ngx_time(), date);
    ngx_ai_sha256_hex(body->data, body->len, hash);

    in.date.data = ngx_pnalloc(sr->pool, sizeof(date) + sizeof(hash));
    if (in.date.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(in.date.data, date, sizeof(date));
    in.date.len = sizeof(date);
    in.body_hash.data = in.date.data + sizeof(date);
    in.body_hash.len = sizeof(hash);
    ngx_memcpy(in.body_hash.data, hash, sizeof(hash));

    ngx_str_set(&h[0].name, "content-type");
    ngx_str_set(&h[0].value, "application/json");
    ngx_str_set(&h[1].name, "host");
    h[1].value = p->host;
    ngx_str_set(&h[2].name, "x-amz-content-sha256");
    h[2].value = in.body_hash;
    ngx_str_set(&h[3].name, "x-amz-date");
    h[3].value = in.date;
    n = 4;

    if (p->session_token.len) {
        ngx_str_set(&h[n].name, "x-amz-security-token");
        h[n].value = p->session_token;
        n++;
    }

    in.headers = h;
    in.nheaders = n;

    rc = ngx_ai_sigv4_sign(sr->pool, &in, p->sigkey, &auth);

    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_ERR, sr->connection->log, 0,
                          "ai_provider \"%V\": the key cannot sign a "
                          "request (a secret of at most %d bytes)",
                          &p->name, NGX_AI_SIGV4_MAX_SECRET);
        }

        return NGX_ERROR;
    }

    /* the signed Host, also as $http_host for proxy_set_header */

    v = p->host;

    if (ngx_http_ai_call_push_header(sr, "Host", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    sr->headers_in.host = (ngx_table_elt_t *) sr->headers_in.headers.last->elts
                          + sr->headers_in.headers.last->nelts - 1;

    if (ngx_http_ai_call_push_header(sr, "X-Amz-Date", &in.date) != NGX_OK
        || ngx_http_ai_call_push_header(sr, "X-Amz-Content-Sha256",
                                   &in.body_hash)
           != NGX_OK
        || (p->session_token.len
            && ngx_http_ai_call_push_header(sr, "X-Amz-Security-Token",
                                       &p->session_token)
               != NGX_OK)
        || ngx_http_ai_call_push_header(sr, "Authorization", &auth) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_call_push_header(ngx_http_request_t *sr, const char *name,
    ngx_str_t *value)
{
    size_t            len;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(name);

    h->key.data = (u_char *) name;
    h->key.len = len;
    h->value = *value;

    h->lowcase_key = ngx_pnalloc(sr->pool, len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(h->lowcase_key, h->key.data, len);
    h->hash = ngx_hash_key(h->lowcase_key, len);

    return NGX_OK;
}


/*
 * A 429's wish: Retry-After in seconds or retry-after-ms (OpenAI, Azure),
 * as a delay in milliseconds for a retry of this model and for the
 * client: Retry-After the longer of the two (retry-after-ms rounded up to
 * seconds), and retry-after-ms as the provider sent it; both at most 600
 * seconds.
 */

void
ngx_http_ai_call_retry_after(ngx_http_request_t *r, ngx_http_ai_attempt_t *a)
{
    u_char     *p;
    ngx_int_t   secs, ms;

    static ngx_str_t  retry_after = ngx_string("Retry-After");
    static ngx_str_t  retry_after_ms = ngx_string("retry-after-ms");

    /* a provider's wish is passed on, within reason */

    secs = ngx_http_ai_call_header_number(r, &retry_after);
    secs = (secs == NGX_ERROR) ? -1 : ngx_min(secs,
                                              NGX_HTTP_AI_MAX_RETRY_AFTER);

    ms = ngx_http_ai_call_header_number(r, &retry_after_ms);
    ms = (ms == NGX_ERROR) ? -1 : ngx_min(ms,
                                          NGX_HTTP_AI_MAX_RETRY_AFTER * 1000);

    if (ms >= 0) {
        a->retry_delay = (ngx_msec_t) ms;
        secs = ngx_max(secs, (ms + 999) / 1000);

    } else if (secs >= 0) {
        a->retry_delay = (ngx_msec_t) secs * 1000;
    }

    p = ngx_pnalloc(r->pool, 2 * NGX_INT_T_LEN);
    if (p == NULL) {
        return;
    }

    if (secs >= 0) {
        a->retry_after.data = p;
        a->retry_after.len = ngx_sprintf(p, "%i", secs) - p;
        p += a->retry_after.len;
    }

    if (ms >= 0) {
        a->retry_after_ms.data = p;
        a->retry_after_ms.len = ngx_sprintf(p, "%i", ms) - p;
    }
}


/*
 * The provider's count of input tokens in its answer's headers (Bedrock:
 * X-Amzn-Bedrock-Input-Token-Count, the only count of some InvokeModel
 * answers) into the call's request, for its translator
 */

void
ngx_http_ai_call_header_tokens(ngx_http_request_t *r,
    ngx_http_ai_attempt_t *a)
{
    ngx_int_t  n;

    static ngx_str_t  name = ngx_string("X-Amzn-Bedrock-Input-Token-Count");

    n = ngx_http_ai_call_header_number(r, &name);

    if (n != NGX_ERROR) {
        a->req->header_input_tokens = (uint64_t) n;
        a->req->header_tokens = 1;
    }
}


/*
 * The value of the provider's header NAME (the first of that name) as a
 * number of at most 9 digits; NGX_ERROR: none, or not one
 */

static ngx_int_t
ngx_http_ai_call_header_number(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_ERROR;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0 || h[i].key.len != name->len
            || ngx_strncasecmp(h[i].key.data, name->data, name->len) != 0)
        {
            continue;
        }

        if (h[i].value.len == 0 || h[i].value.len > 9) {
            return NGX_ERROR;
        }

        return ngx_atoi(h[i].value.data, h[i].value.len);
    }
}
