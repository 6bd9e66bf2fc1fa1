
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The policies' hooks.  ai_guard, the limits and the metrics register a
 * table of hooks at postconfiguration (ngx_http_ai_policy_add()), and the
 * core calls each hook from one place, for every table in the order they
 * were registered:
 *
 *   request    the handler, after the request was validated
 *   admit      the handler, after the plan; NGX_AGAIN: ctx->resume later
 *   attempt    ngx_http_ai_attempt_start(), for a call past the first
 *   call_done  ngx_http_ai_attempt_settle(), and the log phase for a call
 *              never settled
 *   headers    ngx_http_ai_send_header()
 *   answer     ngx_http_ai_send_json(), a chat answer
 *   error      ngx_http_ai_send_error()
 *   stream     ngx_http_ai_stream_send()
 *   end        the log phase: reservations settled
 *   log        the log phase, after every end: observers record
 *
 * A hook returning anything but NGX_OK stops the others of its kind.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


ngx_int_t
ngx_http_ai_policy_add(ngx_conf_t *cf, ngx_http_ai_policy_t *policy)
{
    ngx_http_ai_policy_t     **p;
    ngx_http_ai_main_conf_t   *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);

    p = ngx_array_push(&amcf->policies);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *p = policy;

    return NGX_OK;
}


#define ngx_http_ai_policies(r, n, p)                                         \
    p = ((ngx_http_ai_main_conf_t *)                                          \
         ngx_http_get_module_main_conf(r, ngx_ai_gateway_module))            \
        ->policies.elts;                                                      \
    n = ((ngx_http_ai_main_conf_t *)                                          \
         ngx_http_get_module_main_conf(r, ngx_ai_gateway_module))            \
        ->policies.nelts


ngx_int_t
ngx_http_ai_policy_request(ngx_http_request_t *r, ngx_ai_chat_request_t *chat,
    ngx_ai_error_t *err)
{
    ngx_int_t               rc;
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, n, p);

    for (i = 0; i < n; i++) {
        if (p[i]->request) {
            rc = p[i]->request(r, chat, err);

            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_policy_admit(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_ai_error_t *err)
{
    ngx_int_t               rc;
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, n, p);

    for (i = 0; i < n; i++) {
        if (p[i]->admit) {
            rc = p[i]->admit(r, ctx, err);

            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_policy_attempt(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_str_t *model, ngx_ai_chat_request_t *req, ngx_ai_error_t *err)
{
    ngx_int_t               rc;
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, n, p);

    for (i = 0; i < n; i++) {
        if (p[i]->attempt) {
            rc = p[i]->attempt(r, ctx, model, req, err);

            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


void
ngx_http_ai_policy_call_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a)
{
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, n, p);

    for (i = 0; i < n; i++) {
        if (p[i]->call_done) {
            p[i]->call_done(r, ctx, a);
        }
    }
}


ngx_int_t
ngx_http_ai_policy_headers(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, n, p);

    for (i = 0; i < n; i++) {
        if (p[i]->headers && p[i]->headers(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_policy_text(ngx_http_request_t *r, ngx_uint_t what,
    ngx_str_t *text, ngx_uint_t last)
{
    ngx_int_t               rc;
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, n, p);

    for (i = 0; i < n; i++) {

        switch (what) {

        case NGX_HTTP_AI_POLICY_ANSWER:
            rc = p[i]->answer ? p[i]->answer(r, text) : NGX_OK;
            break;

        case NGX_HTTP_AI_POLICY_ERROR:
            rc = p[i]->error ? p[i]->error(r, text) : NGX_OK;
            break;

        default: /* NGX_HTTP_AI_POLICY_STREAM */
            rc = p[i]->stream ? p[i]->stream(r, text, last) : NGX_OK;
            break;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


void
ngx_http_ai_policy_end(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, n, p);

    for (i = 0; i < n; i++) {
        if (p[i]->end) {
            p[i]->end(r, ctx);
        }
    }

    for (i = 0; i < n; i++) {
        if (p[i]->log) {
            p[i]->log(r, ctx);
        }
    }
}
