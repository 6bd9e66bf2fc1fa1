
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The fallback strategy: which models a request may go to and in what
 * order (the plan), and the loop that runs it: start a call, wait, judge
 * its end, retry the same model after a backoff, move on to the next,
 * start a hedge in parallel when a call is slow to answer, or give up.
 * Of a streamed answer, the first call with something to say wins: the
 * client hears only it.  "n" > 1 on a provider that cannot answer it
 * (its translator's choices is 0) is n calls at once, whose answers
 * become one answer's choices (ngx_http_ai_choices_*).  The core reaches
 * it through ngx_http_ai_fallback_strategy.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


#define NGX_HTTP_AI_MAX_RETRY_WAIT  10000


/* the n calls of one answer */
struct ngx_http_ai_choices_s {
    ngx_http_ai_attempt_t     **calls;
    ngx_uint_t                  n;
    ngx_http_ai_attempt_t      *failed;      /* the first that failed */
    unsigned                    over:1;      /* failed: no answer */
};


static ngx_int_t ngx_http_ai_plan_add_name(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_str_t *name, ngx_uint_t must,
    ngx_ai_error_t *refusal);
static ngx_int_t ngx_http_ai_plan_carry(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_model_t *m, ngx_ai_error_t *refusal);
static ngx_int_t ngx_http_ai_choices_start(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_model_t *m,
    ngx_http_ai_loc_conf_t *alcf);
static ngx_int_t ngx_http_ai_choices_run(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_choices_answer(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_choices_t *g);
static void ngx_http_ai_fallback_run(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_fallback_relay(ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a);
static void ngx_http_ai_fallback_cleanup(ngx_http_ai_ctx_t *ctx);
static void ngx_http_ai_abort_others(ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *keep);
static ngx_int_t ngx_http_ai_start_next(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_start(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_model_t *m);
static ngx_int_t ngx_http_ai_attempts_spent(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_loc_conf_t *alcf);
static ngx_uint_t ngx_http_ai_trigger(ngx_http_ai_outcome_e outcome);
static void ngx_http_ai_attempt_timeout(ngx_event_t *ev);
static void ngx_http_ai_hedge_handler(ngx_event_t *ev);
static void ngx_http_ai_retry_handler(ngx_event_t *ev);


ngx_http_ai_strategy_t  ngx_http_ai_fallback_strategy = {
    ngx_http_ai_fallback_run,
    ngx_http_ai_fallback_relay,
    ngx_http_ai_fallback_cleanup
};


static ngx_conf_bitmask_t  ngx_http_ai_on_masks[] = {
    { ngx_string("error"), NGX_HTTP_AI_ON_ERROR },
    { ngx_string("timeout"), NGX_HTTP_AI_ON_TIMEOUT },
    { ngx_string("429"), NGX_HTTP_AI_ON_429 },
    { ngx_string("5xx"), NGX_HTTP_AI_ON_5XX },
    { ngx_string("invalid"), NGX_HTTP_AI_ON_INVALID },
    { ngx_string("4xx"), NGX_HTTP_AI_ON_4XX },
    { ngx_null_string, 0 }
};


/*
 * ai_fallback MODEL ... [on=error,timeout,429,5xx,invalid,4xx]
 *     [timeout=T] [retries=N] [hedge=T] [breaker=N/T | breaker=off]
 */

char *
ngx_http_ai_fallback_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_loc_conf_t *alcf = conf;

    u_char                  *p, *comma, *last, *slash;
    ngx_int_t                n;
    ngx_str_t               *value, s;
    ngx_uint_t               i, j, found;
    ngx_http_ai_model_t      *m, *model;
    ngx_http_ai_fallback_t   *fb;
    ngx_http_ai_main_conf_t  *amcf;

    if (alcf->fallback != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    fb = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_fallback_t));
    if (fb == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&fb->models, cf->pool, 4, sizeof(ngx_http_ai_model_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    fb->on = NGX_HTTP_AI_ON_DEFAULT;
    fb->breaker_failures = 5;
    fb->breaker_cooldown = 30000;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "on=", 3) == 0) {
            fb->on = 0;
            p = value[i].data + 3;
            last = value[i].data + value[i].len;

            while (p < last) {
                comma = ngx_strlchr(p, last, ',');
                if (comma == NULL) {
                    comma = last;
                }

                for (j = 0, found = 0; ngx_http_ai_on_masks[j].name.len; j++)
                {
                    if ((size_t) (comma - p)
                            == ngx_http_ai_on_masks[j].name.len
                        && ngx_strncmp(p, ngx_http_ai_on_masks[j].name.data,
                                       comma - p) == 0)
                    {
                        fb->on |= ngx_http_ai_on_masks[j].mask;
                        found = 1;
                        break;
                    }
                }

                if (!found) {
                    s.data = p;
                    s.len = comma - p;
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid trigger \"%V\" in \"%V\": "
                                       "expected error, timeout, 429, 5xx, "
                                       "invalid or 4xx", &s, &value[i]);
                    return NGX_CONF_ERROR;
                }

                p = comma + 1;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0
            || ngx_strncmp(value[i].data, "hedge=", 6) == 0)
        {
            p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')
                + 1;
            s.data = p;
            s.len = value[i].data + value[i].len - p;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid time in \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 't') {
                fb->timeout = (ngx_msec_t) n;

            } else {
                fb->hedge = (ngx_msec_t) n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "retries=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            if (n == NGX_ERROR || n > 10) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": retries takes 0 to 10",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            fb->retries = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "breaker=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
                fb->breaker_failures = 0;
                continue;
            }

            slash = ngx_strlchr(s.data, s.data + s.len, '/');
            n = slash ? ngx_atoi(s.data, slash - s.data) : NGX_ERROR;

            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": breaker takes "
                                   "FAILURES/COOLDOWN, e.g. breaker=5/30s, "
                                   "or breaker=off", &value[i]);
                return NGX_CONF_ERROR;
            }

            fb->breaker_failures = n;

            s.len = s.data + s.len - (slash + 1);
            s.data = slash + 1;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid cool-down in \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            fb->breaker_cooldown = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": ai_fallback takes "
                               "models, on=, timeout=, retries=, hedge= and "
                               "breaker=", &value[i]);
            return NGX_CONF_ERROR;
        }

        model = ngx_http_ai_model_parse(cf, &value[i]);
        if (model == NULL) {
            return NGX_CONF_ERROR;
        }

        m = fb->models.elts;

        for (j = 0; j < fb->models.nelts; j++) {
            if (m[j].name.len == model->name.len
                && ngx_strncmp(m[j].name.data, model->name.data,
                               model->name.len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "model \"%V\" is listed twice",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        m = ngx_array_push(&fb->models);
        if (m == NULL) {
            return NGX_CONF_ERROR;
        }

        *m = *model;
    }

    if (fb->models.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_fallback needs at least one model");
        return NGX_CONF_ERROR;
    }

    if (fb->breaker_failures) {
        if (ngx_http_ai_breaker_init_conf(cf) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);
        fb->breakers = amcf->breakers;
    }

    alcf->fallback = fb;

    return NGX_CONF_OK;
}


/*
 * The models a request may be sent to, in order: the requested model if
 * its provider is configured, then the request's own "models" (each must
 * be configured) or else the location's ai_fallback chain, without
 * repeats.  NGX_DECLINED: err says why there is nothing to try.
 */

ngx_int_t
ngx_http_ai_fallback_plan(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_ai_error_t *err)
{
    cJSON                   *item;
    ngx_str_t                name;
    ngx_int_t                rc;
    ngx_uint_t               i;
    ngx_ai_error_t           refusal;
    ngx_http_ai_model_t     *m;
    ngx_http_ai_loc_conf_t  *alcf;

    ngx_memzero(&refusal, sizeof(ngx_ai_error_t));

    if (ngx_http_ai_calls_init(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    if (ctx->chat.models
        && (ngx_uint_t) cJSON_GetArraySize(ctx->chat.models)
           > alcf->max_models)
    {
        ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                         "models", "too_many_models", "");
        err->message.data = ngx_pnalloc(r->pool, 128);
        if (err->message.data == NULL) {
            return NGX_ERROR;
        }

        err->message.len = ngx_sprintf(err->message.data,
                                       "Too many entries in 'models': this "
                                       "route takes at most %ui.",
                                       alcf->max_models)
                           - err->message.data;
        return NGX_DECLINED;
    }

    /*
     * A model whose wire format cannot carry the request (logprobs on
     * Anthropic ...): the requested one is a 400, one of the others is
     * left out of the plan.
     */

    rc = ngx_http_ai_plan_add_name(r, ctx, &ctx->chat.model,
                                   ctx->chat.models == NULL
                                   && ctx->fallback == NULL, &refusal);

    if (rc == NGX_ABORT) {
        *err = refusal;
        return NGX_DECLINED;
    }

    if (rc != NGX_OK && rc != NGX_DECLINED) {
        goto unknown;
    }

    if (ctx->chat.models) {
        cJSON_ArrayForEach(item, ctx->chat.models) {
            name.data = (u_char *) item->valuestring;
            name.len = ngx_strlen(item->valuestring);

            rc = ngx_http_ai_plan_add_name(r, ctx, &name, 1, &refusal);

            if (rc != NGX_OK && rc != NGX_ABORT) {
                goto unknown;
            }
        }

    } else if (ctx->fallback) {
        m = ctx->fallback->models.elts;

        for (i = 0; i < ctx->fallback->models.nelts; i++) {
            if (ngx_http_ai_plan_carry(r, ctx, &m[i], &refusal)
                == NGX_ERROR)
            {
                return NGX_ERROR;
            }
        }
    }

    if (ctx->plan.nelts) {
        return NGX_OK;
    }

    if (ctx->denied) {
        ngx_http_ai_plan_denied(ctx, err);
        return NGX_DECLINED;
    }

    if (refusal.status) {
        *err = refusal;
        return NGX_DECLINED;
    }

unknown:

    ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                     "model", "model_not_found",
                     "Unknown model: name a configured provider as "
                     "\"provider/model\" (GET models lists them)");

    return NGX_DECLINED;
}


/*
 * NGX_OK: added; NGX_DECLINED: not configured (an error when must);
 * NGX_ABORT: its wire format cannot carry the request (refusal says why)
 */

static ngx_int_t
ngx_http_ai_plan_add_name(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_str_t *name, ngx_uint_t must, ngx_ai_error_t *refusal)
{
    ngx_http_ai_model_t       m;
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_module);

    if (ngx_http_ai_model_split(amcf, name, &m) != NGX_HTTP_AI_MODEL_OK) {
        return must ? NGX_ERROR : NGX_DECLINED;
    }

    ngx_http_ai_model_label(amcf, m.provider, name, &m.label);

    return ngx_http_ai_plan_carry(r, ctx, &m, refusal);
}


/*
 * NGX_OK: in the plan; NGX_ABORT: left out, the first refusal kept: its
 * wire format cannot carry the request, or "n" is more calls to it than
 * ai_max_attempts allows.
 */

static ngx_int_t
ngx_http_ai_plan_carry(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_model_t *m, ngx_ai_error_t *refusal)
{
    ngx_ai_error_t           err;
    ngx_ai_translator_t     *tr;
    ngx_http_ai_loc_conf_t  *alcf;

    tr = m->provider->translator;

    if (tr->check && tr->check(&ctx->chat, &err) == NGX_DECLINED) {
        if (refusal->status == 0) {
            *refusal = err;
        }

        return NGX_ABORT;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    if (ctx->chat.n > alcf->max_attempts && !tr->choices) {
        if (refusal->status) {
            return NGX_ABORT;
        }

        ngx_ai_error_set(refusal, NGX_HTTP_BAD_REQUEST,
                         "invalid_request_error", "n", "invalid_value", "");

        refusal->message.data = ngx_pnalloc(r->pool, 160);
        if (refusal->message.data == NULL) {
            return NGX_ERROR;
        }

        refusal->message.len = ngx_sprintf(refusal->message.data,
                                  "Invalid value for 'n': %ui answers from "
                                  "this provider are %ui calls, and this "
                                  "route allows %ui (ai_max_attempts).",
                                  ctx->chat.n, ctx->chat.n,
                                  alcf->max_attempts)
                               - refusal->message.data;
        return NGX_ABORT;
    }

    return ngx_http_ai_plan_add(ctx, m);
}


/*
 * The decision loop, run when the request starts, when a call ends, when
 * a timer fires, and when the client's connection is writable.
 */

static void
ngx_http_ai_fallback_run(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t               i, active;
    ngx_http_ai_attempt_t  **calls, *a, *ok, *final, *last;

    if (ctx->finished) {
        return;
    }

    if (ctx->choices && !ctx->choices->over) {
        switch (ngx_http_ai_choices_run(r, ctx)) {

        case NGX_OK:        /* answered */
        case NGX_AGAIN:     /* calls still running */
            return;

        case NGX_ERROR:
            ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;

        default:            /* NGX_DECLINED: one of them failed */
            break;
        }
    }

    /* the call that decides what comes next: of n calls, the one failed */

    last = (ctx->choices && ctx->choices->failed) ? ctx->choices->failed
                                                  : ctx->attempt;

    calls = ctx->calls.elts;
    active = 0;
    ok = NULL;
    final = NULL;

    for (i = 0; i < ctx->calls.nelts; i++) {
        a = calls[i];

        if (!a->done) {
            active++;
            continue;
        }

        if (!a->judged && ngx_http_ai_attempt_settle(r, ctx, a) != NGX_OK) {
            ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        if (a->outcome == NGX_HTTP_AI_OK && ok == NULL && !a->choice) {
            ok = a;
        }

        if (a == last && a->outcome != NGX_HTTP_AI_OK
            && a->outcome != NGX_HTTP_AI_ABORTED
            && !(ngx_http_ai_trigger(a->outcome)
                 & (ctx->fallback ? ctx->fallback->on
                                  : NGX_HTTP_AI_ON_DEFAULT)))
        {
            final = a;
        }
    }

    if (ctx->winner) {
        /* a stream is being relayed: it ends when its call ends */

        if (active > (ctx->winner->done ? 0 : 1)) {
            ngx_http_ai_abort_others(ctx, ctx->winner);
        }

        if (ctx->winner->done) {
            ngx_http_ai_answer(r, ctx, ctx->winner);
        }

        return;
    }

    if (ok) {
        ctx->winner = ok;
        ctx->model = ok->model;
        ngx_http_ai_abort_others(ctx, ok);
        ngx_http_ai_answer(r, ctx, ok);
        return;
    }

    if (active) {
        return;
    }

    if (final == NULL && !ctx->retry.timer_set) {
        switch (ngx_http_ai_start_next(r, ctx)) {

        case NGX_OK:
        case NGX_AGAIN:
            return;

        case NGX_ERROR:
            ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;

        default: /* NGX_DECLINED: nothing left to try */
            break;
        }

    } else if (ctx->retry.timer_set) {
        return;
    }

    ngx_http_ai_fail(r, ctx);
}


/*
 * NGX_OK: a call started; NGX_AGAIN: a retry waits for its backoff;
 * NGX_DECLINED: nothing left to try.
 */

static ngx_int_t
ngx_http_ai_start_next(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_str_t               *skipped;
    ngx_msec_t               delay;
    ngx_http_ai_model_t     *plan;
    ngx_http_ai_attempt_t   *last;
    ngx_http_ai_fallback_t  *fb;

    fb = ctx->fallback;
    plan = ctx->plan.elts;
    last = ctx->attempt;

    if (ctx->refused) {
        /* a limit or ai_max_attempts: no more calls */
        return NGX_DECLINED;
    }

    /* the same model again, after a backoff the provider may have asked */

    if (last && fb && ctx->tries <= fb->retries
        && last->outcome != NGX_HTTP_AI_ABORTED
        && last->outcome != NGX_HTTP_AI_INVALID
        && last->outcome != NGX_HTTP_AI_4XX)
    {
        delay = (ngx_msec_t) 100 << (ctx->tries - 1);

        if (last->retry_delay > delay) {
            delay = last->retry_delay;
        }

        if (delay <= NGX_HTTP_AI_MAX_RETRY_WAIT) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai gateway: retrying %V in %M ms",
                           &last->model, delay);

            ctx->retry.handler = ngx_http_ai_retry_handler;
            ctx->retry.data = ctx;
            ctx->retry.log = r->connection->log;
            ngx_add_timer(&ctx->retry, delay);

            return NGX_AGAIN;
        }
    }

    while (ctx->next < ctx->plan.nelts) {
        ctx->tries = 0;

        if (fb && fb->breaker_failures
            && ngx_http_ai_breaker_allow(fb, &plan[ctx->next].name,
                                         r->connection->log)
               == NGX_DECLINED)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai gateway: %V skipped: its circuit is open",
                          &plan[ctx->next].name);

            skipped = ngx_array_push(&ctx->skipped);
            if (skipped == NULL) {
                return NGX_ERROR;
            }

            *skipped = plan[ctx->next++].name;
            continue;
        }

        return ngx_http_ai_start(r, ctx, &plan[ctx->next++]);
    }

    return NGX_DECLINED;
}


/*
 * NGX_OK: the call started; NGX_DECLINED: it may not be made (the
 * attempt bound, or a limit with no room for one more call: ctx->refused
 * says which).
 */

static ngx_int_t
ngx_http_ai_start(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_model_t *m)
{
    ngx_int_t                rc;
    ngx_http_ai_attempt_t   *a;
    ngx_http_ai_fallback_t  *fb;
    ngx_http_ai_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    if (ctx->attempts >= alcf->max_attempts) {
        return ngx_http_ai_attempts_spent(r, ctx, alcf);
    }

    if (ctx->chat.n > 1 && !m->provider->translator->choices) {
        return ngx_http_ai_choices_start(r, ctx, m, alcf);
    }

    rc = ngx_http_ai_attempt_start(ctx, m, NULL);

    if (rc != NGX_OK) {
        return rc;
    }

    ctx->tries++;

    a = ctx->attempt;
    fb = ctx->fallback;

    if (fb && fb->timeout) {
        a->timer.handler = ngx_http_ai_attempt_timeout;
        a->timer.data = a;
        a->timer.log = r->connection->log;
        ngx_add_timer(&a->timer, fb->timeout);
    }

    if (fb && fb->hedge && ctx->next < ctx->plan.nelts) {
        ctx->hedge.handler = ngx_http_ai_hedge_handler;
        ctx->hedge.data = ctx;
        ctx->hedge.log = r->connection->log;

        if (ctx->hedge.timer_set) {
            ngx_del_timer(&ctx->hedge);
        }

        ngx_add_timer(&ctx->hedge, fb->hedge);
    }

    return NGX_OK;
}


/*
 * "n" > 1 to a provider without "n": n calls of one answer each, at once.
 * Each is a call as any other: the attempt hook counts every one past the
 * request's first against the limits, ai_max_attempts bounds them all
 * (the n calls start only when all n may be made), each is charged on
 * its own.  No hedge, no retry of the same model: when one fails, the
 * others are stopped and the plan goes on as after that call.
 * NGX_OK: started; NGX_DECLINED: not all n may be made (ctx->refused).
 */

static ngx_int_t
ngx_http_ai_choices_start(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_model_t *m, ngx_http_ai_loc_conf_t *alcf)
{
    ngx_int_t                 rc;
    ngx_uint_t                i;
    ngx_http_ai_attempt_t    *a;
    ngx_http_ai_choices_t    *g;
    ngx_http_ai_fallback_t   *fb;
    ngx_ai_chat_request_t    *one;

    if (ctx->attempts + ctx->chat.n > alcf->max_attempts) {
        return ngx_http_ai_attempts_spent(r, ctx, alcf);
    }

    g = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_choices_t));
    one = ngx_palloc(r->pool, sizeof(ngx_ai_chat_request_t));

    if (g == NULL || one == NULL) {
        return NGX_ERROR;
    }

    g->calls = ngx_pcalloc(r->pool,
                           ctx->chat.n * sizeof(ngx_http_ai_attempt_t *));
    if (g->calls == NULL) {
        return NGX_ERROR;
    }

    /* each call asks for one answer, and is estimated so by the limits */

    *one = ctx->chat;
    one->n = 1;

    ctx->choices = g;
    ctx->tries++;
    fb = ctx->fallback;

    for (i = 0; i < ctx->chat.n; i++) {
        rc = ngx_http_ai_attempt_start(ctx, m, one);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            /* a limit has no room for all n: none of them answers */
            g->over = 1;
            ngx_http_ai_attempt_abort_others(ctx, NULL);
            return NGX_DECLINED;
        }

        a = ctx->attempt;
        a->choice = 1;
        g->calls[g->n++] = a;

        if (fb && fb->timeout) {
            a->timer.handler = ngx_http_ai_attempt_timeout;
            a->timer.data = a;
            a->timer.log = r->connection->log;
            ngx_add_timer(&a->timer, fb->timeout);
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway: %ui calls to %V for n", g->n, &m->name);

    return NGX_OK;
}


/*
 * NGX_AGAIN: calls still running; NGX_OK: every call answered, the
 * answer is sent; NGX_DECLINED: one failed, the others are stopped.
 */

static ngx_int_t
ngx_http_ai_choices_run(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t              i, running;
    ngx_http_ai_attempt_t  *a;
    ngx_http_ai_choices_t  *g;

    g = ctx->choices;
    running = 0;

    for (i = 0; i < g->n; i++) {
        a = g->calls[i];

        if (!a->done) {
            running++;
            continue;
        }

        if (ngx_http_ai_attempt_settle(r, ctx, a) != NGX_OK) {
            return NGX_ERROR;
        }

        if (a->outcome != NGX_HTTP_AI_OK && g->failed == NULL) {
            g->failed = a;
        }
    }

    if (g->failed) {
        g->over = 1;

        for (i = 0; i < g->n; i++) {
            a = g->calls[i];

            if (!a->done) {
                ngx_http_ai_attempt_abort(a, NGX_HTTP_AI_ABORTED);
                (void) ngx_http_ai_attempt_settle(r, ctx, a);
            }
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai gateway: %V failed one of %ui calls for n: %V",
                      &g->failed->model, g->n, &g->failed->reason);

        return NGX_DECLINED;
    }

    if (running) {
        return NGX_AGAIN;
    }

    return ngx_http_ai_choices_answer(r, ctx, g);
}


/* the n answers as one: choices 0..n-1, usage summed */

static ngx_int_t
ngx_http_ai_choices_answer(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_choices_t *g)
{
    ngx_int_t                rc;
    ngx_str_t               *answers, body;
    ngx_uint_t               i;
    ngx_ai_usage_t           usage, *u;

    answers = ngx_palloc(r->pool, g->n * sizeof(ngx_str_t));
    if (answers == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&usage, sizeof(ngx_ai_usage_t));
    usage.known = 1;

    for (i = 0; i < g->n; i++) {
        answers[i] = g->calls[i]->answer.body;
        u = &g->calls[i]->answer.usage;

        if (!u->known) {
            usage.known = 0;
        }

        usage.prompt_tokens += u->prompt_tokens;
        usage.completion_tokens += u->completion_tokens;
        usage.cached_tokens += u->cached_tokens;
        usage.cache_creation_tokens += u->cache_creation_tokens;
        usage.reasoning_tokens += u->reasoning_tokens;
    }

    ctx->winner = g->calls[0];
    ctx->model = g->calls[0]->model;

    if (r->connection->error) {
        ngx_http_ai_finalize(r, ctx, NGX_ERROR);
        return NGX_OK;
    }

    rc = ngx_ai_chat_completion_merge(r->pool, answers, g->n, &usage, &body);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        /* the answers were judged valid one by one: not expected */
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai gateway: the %ui answers of %V do not merge",
                      g->n, &ctx->model);
        return NGX_ERROR;
    }

    ngx_http_ai_finalize(r, ctx,
                         ngx_http_ai_send_json(r, ctx, NGX_HTTP_OK, &body));

    return NGX_OK;
}


/* ai_max_attempts calls were made: the request ends with what it has */

static ngx_int_t
ngx_http_ai_attempts_spent(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_loc_conf_t *alcf)
{
    ngx_ai_error_t  *err;

    err = ngx_pcalloc(r->pool, sizeof(ngx_ai_error_t));
    if (err == NULL) {
        return NGX_ERROR;
    }

    ngx_ai_error_set(err, NGX_HTTP_BAD_GATEWAY, "upstream_error", NULL,
                     "too_many_attempts", "");

    err->message.data = ngx_pnalloc(r->pool, 96);
    if (err->message.data == NULL) {
        return NGX_ERROR;
    }

    err->message.len = ngx_sprintf(err->message.data,
                                   "not tried: the request made the %ui "
                                   "calls ai_max_attempts allows",
                                   alcf->max_attempts)
                       - err->message.data;

    ctx->refused = err;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai gateway: %V", &err->message);

    return NGX_DECLINED;
}


static ngx_uint_t
ngx_http_ai_trigger(ngx_http_ai_outcome_e outcome)
{
    switch (outcome) {

    case NGX_HTTP_AI_ERROR:
        return NGX_HTTP_AI_ON_ERROR;

    case NGX_HTTP_AI_TIMEOUT:
        return NGX_HTTP_AI_ON_TIMEOUT;

    case NGX_HTTP_AI_429:
        return NGX_HTTP_AI_ON_429;

    case NGX_HTTP_AI_5XX:
        return NGX_HTTP_AI_ON_5XX;

    case NGX_HTTP_AI_INVALID:
        return NGX_HTTP_AI_ON_INVALID;

    case NGX_HTTP_AI_4XX:
        return NGX_HTTP_AI_ON_4XX;

    default:
        return 0;
    }
}


static void
ngx_http_ai_attempt_timeout(ngx_event_t *ev)
{
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_ai_attempt_t  *a;

    a = ev->data;
    r = a->ctx->request;
    c = r->connection;

    ngx_log_error(NGX_LOG_WARN, c->log, 0,
                  "ai gateway: %V gave no answer within %M ms",
                  &a->model, a->ctx->fallback->timeout);

    ngx_http_ai_attempt_abort(a, NGX_HTTP_AI_TIMEOUT);
    ngx_http_ai_fallback_run(r, a->ctx);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_ai_hedge_handler(ngx_event_t *ev)
{
    ngx_connection_t       *c;
    ngx_http_request_t     *r;
    ngx_http_ai_ctx_t      *ctx;
    ngx_http_ai_model_t    *plan;
    ngx_http_ai_attempt_t  *a;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;
    a = ctx->attempt;

    if (ctx->finished || ctx->winner || a == NULL || a->done || a->header
        || ctx->next >= ctx->plan.nelts)
    {
        return;
    }

    plan = ctx->plan.elts;

    if (ctx->chat.n > 1 && !plan[ctx->next].provider->translator->choices) {
        return;         /* n calls are no hedge: the next model waits */
    }

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "ai gateway: %V silent for %M ms, hedging with %V",
                  &a->model, ctx->fallback->hedge, &plan[ctx->next].name);

    if (ngx_http_ai_start(r, ctx, &plan[ctx->next++]) == NGX_ERROR) {
        /* NGX_DECLINED: no hedge, the call running goes on alone */
        ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_ai_retry_handler(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;
    ngx_http_ai_ctx_t   *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    if (!ctx->finished) {
        switch (ngx_http_ai_start(r, ctx, ctx->attempt->target)) {

        case NGX_OK:
            break;

        case NGX_DECLINED:
            /* no room for the retry: the request ends with what it has */
            ngx_http_ai_fallback_run(r, ctx);
            break;

        default:
            ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }
    }

    ngx_http_run_posted_requests(c);
}


/* every call still running but keep is stopped: it lost, and no hedge */

static void
ngx_http_ai_abort_others(ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *keep)
{
    if (ctx->hedge.timer_set) {
        ngx_del_timer(&ctx->hedge);
    }

    ngx_http_ai_attempt_abort_others(ctx, keep);
}


/*
 * A call has translated events for the client: the first call with
 * something to say wins the stream, from then on the client hears only
 * it, and the others are stopped (by the run loop, posted here).
 */

static ngx_int_t
ngx_http_ai_fallback_relay(ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a)
{
    ngx_int_t  rc;
    ngx_str_t  out;

    if (ctx->winner == NULL && !ctx->finished) {
        ctx->winner = a;
        ctx->model = a->model;
        a->first_byte = 1;

        if (a->timer.timer_set) {
            ngx_del_timer(&a->timer);
        }

        if (ctx->calls.nelts > 1
            && ngx_http_post_request(ctx->request, NULL) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    rc = NGX_OK;

    if (ctx->winner == a) {
        out.data = a->stream.out.data;
        out.len = a->stream.out.len;

        rc = ngx_http_ai_stream_send(ctx, &out, 0);
    }

    a->stream.out.len = 0;

    return (rc == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


/* the request's memory goes with its pool: no timer may outlive it */

static void
ngx_http_ai_fallback_cleanup(ngx_http_ai_ctx_t *ctx)
{
    if (ctx->hedge.timer_set) {
        ngx_del_timer(&ctx->hedge);
    }

    if (ctx->retry.timer_set) {
        ngx_del_timer(&ctx->retry);
    }
}
