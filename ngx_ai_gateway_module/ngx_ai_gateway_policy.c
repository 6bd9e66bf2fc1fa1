
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
 *   plan       ngx_http_ai_plan_add(), each model a strategy plans:
 *              NGX_DECLINED keeps it out of the request (ai_auth's
 *              models=)
 *
 * A hook returning anything but NGX_OK stops the others of its kind.
 * Each hook has a list of only the tables that fill it, so a request pays
 * for the hooks it has; one table is called without the loop.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


/* where each hook is in a table, in the order of NGX_HTTP_AI_HOOK_* */
static size_t  ngx_http_ai_hook_offsets[] = {
    offsetof(ngx_http_ai_policy_t, request),
    offsetof(ngx_http_ai_policy_t, admit),
    offsetof(ngx_http_ai_policy_t, attempt),
    offsetof(ngx_http_ai_policy_t, call_done),
    offsetof(ngx_http_ai_policy_t, headers),
    offsetof(ngx_http_ai_policy_t, answer),
    offsetof(ngx_http_ai_policy_t, error),
    offsetof(ngx_http_ai_policy_t, stream),
    offsetof(ngx_http_ai_policy_t, end),
    offsetof(ngx_http_ai_policy_t, log),
    offsetof(ngx_http_ai_policy_t, plan)
};


ngx_int_t
ngx_http_ai_policy_add(ngx_conf_t *cf, ngx_http_ai_policy_t *policy)
{
    ngx_uint_t                 i;
    ngx_http_ai_policy_t     **p;
    ngx_http_ai_main_conf_t   *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);

    /* one list per hook, of the tables that have it */

    for (i = 0; i < NGX_HTTP_AI_HOOKS; i++) {

        if (*(void **) ((u_char *) policy + ngx_http_ai_hook_offsets[i])
            == NULL)
        {
            continue;
        }

        if (amcf->hooks[i].elts == NULL
            && ngx_array_init(&amcf->hooks[i], cf->pool, 2,
                              sizeof(ngx_http_ai_policy_t *))
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = ngx_array_push(&amcf->hooks[i]);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *p = policy;
    }

    return NGX_OK;
}


#define ngx_http_ai_policies(r, hook, n, p)                                   \
    do {                                                                      \
        ngx_array_t  *a_;                                                     \
                                                                              \
        a_ = &((ngx_http_ai_main_conf_t *)                                    \
               ngx_http_get_module_main_conf(r, ngx_ai_gateway_module))      \
              ->hooks[hook];                                                  \
        p = a_->elts;                                                         \
        n = a_->nelts;                                                        \
    } while (0)


ngx_int_t
ngx_http_ai_policy_request(ngx_http_request_t *r, ngx_ai_chat_request_t *chat,
    ngx_ai_error_t *err)
{
    ngx_int_t               rc;
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, NGX_HTTP_AI_HOOK_REQUEST, n, p);

    if (n == 1) {
        /* the common case, without the loop */
        return p[0]->request(r, chat, err);
    }

    for (i = 0; i < n; i++) {
        rc = p[i]->request(r, chat, err);

        if (rc != NGX_OK) {
            return rc;
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

    ngx_http_ai_policies(r, NGX_HTTP_AI_HOOK_ADMIT, n, p);

    if (n == 1) {
        /* the common case, without the loop */
        return p[0]->admit(r, ctx, err);
    }

    for (i = 0; i < n; i++) {
        rc = p[i]->admit(r, ctx, err);

        if (rc != NGX_OK) {
            return rc;
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

    ngx_http_ai_policies(r, NGX_HTTP_AI_HOOK_ATTEMPT, n, p);

    if (n == 1) {
        /* the common case, without the loop */
        return p[0]->attempt(r, ctx, model, req, err);
    }

    for (i = 0; i < n; i++) {
        rc = p[i]->attempt(r, ctx, model, req, err);

        if (rc != NGX_OK) {
            return rc;
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

    ngx_http_ai_policies(r, NGX_HTTP_AI_HOOK_CALL_DONE, n, p);

    if (n == 1) {
        /* the common case, without the loop */
        p[0]->call_done(r, ctx, a);
        return;
    }

    for (i = 0; i < n; i++) {
        p[i]->call_done(r, ctx, a);
    }
}


ngx_int_t
ngx_http_ai_policy_headers(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, NGX_HTTP_AI_HOOK_HEADERS, n, p);

    if (n == 1) {
        /* the common case, without the loop */
        return p[0]->headers(r, ctx);
    }

    for (i = 0; i < n; i++) {
        if (p[i]->headers(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the answer, an error message or stream text on its way to the client */

ngx_int_t
ngx_http_ai_policy_text(ngx_http_request_t *r, ngx_uint_t hook,
    ngx_str_t *text, ngx_uint_t last)
{
    ngx_int_t               rc;
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, hook, n, p);

    for (i = 0; i < n; i++) {

        switch (hook) {

        case NGX_HTTP_AI_HOOK_ANSWER:
            rc = p[i]->answer(r, text);
            break;

        case NGX_HTTP_AI_HOOK_ERROR:
            rc = p[i]->error(r, text);
            break;

        default: /* NGX_HTTP_AI_HOOK_STREAM */
            rc = p[i]->stream(r, text, last);
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

    ngx_http_ai_policies(r, NGX_HTTP_AI_HOOK_END, n, p);

    for (i = 0; i < n; i++) {
        p[i]->end(r, ctx);
    }

    ngx_http_ai_policies(r, NGX_HTTP_AI_HOOK_LOG, n, p);

    for (i = 0; i < n; i++) {
        p[i]->log(r, ctx);
    }
}


/* NGX_OK: m may be called for this request; NGX_DECLINED: not */

ngx_int_t
ngx_http_ai_policy_plan(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_model_t *m)
{
    ngx_int_t               rc;
    ngx_uint_t              i, n;
    ngx_http_ai_policy_t  **p;

    ngx_http_ai_policies(r, NGX_HTTP_AI_HOOK_PLAN, n, p);

    for (i = 0; i < n; i++) {
        rc = p[i]->plan(r, ctx, m);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}
