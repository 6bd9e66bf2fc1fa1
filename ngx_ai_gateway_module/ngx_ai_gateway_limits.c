
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ngx_ai_gateway_limits_module: rate limits, the cost ledger and budgets.
 * Directives, configuration, variables, and the three hooks the gateway
 * calls: admission before any provider call, a charge per provider call,
 * and response headers.  Reservations taken at admission are settled in
 * the log phase (and, should the request's context be lost to an
 * internal redirect, by a cleanup of its pool), which runs for every
 * finalized main request, client aborts included.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"


static ngx_int_t ngx_http_ai_limits_admit(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_ai_error_t *err);
static ngx_int_t ngx_http_ai_limits_attempt(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_str_t *model, ngx_ai_chat_request_t *req,
    ngx_ai_error_t *err);
static void ngx_http_ai_limits_charge(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a);
static ngx_int_t ngx_http_ai_limits_headers(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_limits_strict(ngx_http_ai_limits_ctx_t *lctx);
static void ngx_http_ai_limits_strict_done(void *data,
    ngx_http_ai_sync_item_t *items, ngx_uint_t n);
static ngx_int_t ngx_http_ai_limits_resolve(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_sync_item_t *items, ngx_uint_t n, ngx_ai_error_t *err);
static void ngx_http_ai_limits_settle(ngx_http_ai_limits_ctx_t *lctx);
static void ngx_http_ai_limits_cleanup(void *data);
static void ngx_http_ai_limits_end(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_limits_push_header(ngx_http_request_t *r,
    const char *name, u_char *value, size_t len);
static ngx_int_t ngx_http_ai_limits_info_headers(ngx_http_request_t *r,
    ngx_http_ai_rate_info_t *info, const char *limit,
    const char *remaining, const char *reset);
static uint64_t ngx_http_ai_limits_reserve_tokens(ngx_http_request_t *r,
    ngx_ai_chat_request_t *req);
static ngx_int_t ngx_http_ai_limits_plan_price(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, uint64_t in, uint64_t out, uint64_t *estimate,
    ngx_ai_error_t *err);
static ngx_uint_t ngx_http_ai_limits_refuse_unpriced(ngx_http_request_t *r);
static ngx_http_ai_price_t *ngx_http_ai_limits_price(ngx_http_request_t *r,
    ngx_str_t *model);
static void ngx_http_ai_limits_estimate_charge(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a,
    ngx_http_ai_price_t *price, ngx_ai_usage_t *u,
    ngx_http_ai_counters_t *add);

static ngx_http_ai_limits_loc_conf_t *ngx_http_ai_limits_conf(
    ngx_http_request_t *r);
static ngx_http_ai_limits_loc_conf_t *ngx_http_ai_limits_principal_conf(
    ngx_http_ai_limits_ctx_t *lctx, ngx_http_ai_limits_loc_conf_t *llcf);
static ngx_http_complex_value_t *ngx_http_ai_limits_const_key(
    ngx_pool_t *pool, ngx_str_t *prefix, ngx_str_t *name);
static ngx_uint_t ngx_http_ai_limits_team(ngx_http_request_t *r);

static ngx_int_t ngx_http_ai_cost_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_limits_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_limits_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_limits_init(ngx_conf_t *cf);
static void *ngx_http_ai_limits_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_limits_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_limits_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_ai_limits_init_process(ngx_cycle_t *cycle);
static void ngx_http_ai_limits_exit_process(ngx_cycle_t *cycle);
static void ngx_http_ai_limits_exit_master(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_ai_reserve_tokens_bounds = {
    ngx_conf_check_num_bounds, 0, 100000000
};


static ngx_command_t  ngx_http_ai_limits_commands[] = {

    { ngx_string("ai_rate_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ai_rate_zone_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_rate_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_cost_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ai_cost_zone_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_cost"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_cost_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_reserve_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_limits_loc_conf_t, reserve_tokens),
      &ngx_http_ai_reserve_tokens_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_ai_gateway_limits_module_ctx = {
    ngx_http_ai_limits_add_variables,      /* preconfiguration */
    ngx_http_ai_limits_init,               /* postconfiguration */

    ngx_http_ai_limits_create_main_conf,   /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_limits_create_loc_conf,    /* create location configuration */
    ngx_http_ai_limits_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_ai_gateway_limits_module = {
    NGX_MODULE_V1,
    &ngx_ai_gateway_limits_module_ctx,     /* module context */
    ngx_http_ai_limits_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_ai_cost_state_init_module,    /* init module */
    ngx_http_ai_limits_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ai_limits_exit_process,       /* exit process */
    ngx_http_ai_limits_exit_master,        /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_ai_limits_vars[] = {

    { ngx_string("ai_cost"), NULL,
      ngx_http_ai_cost_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_rate_status"), NULL,
      ngx_http_ai_limits_status_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_budget_status"), NULL,
      ngx_http_ai_limits_status_variable, 1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_ai_limits_status[] = {
    ngx_string("PASSED"),
    ngx_string("REJECTED")
};


/*
 * Admission: budget first (a key past its budget takes nothing from the
 * rate buckets), then every ai_rate of the location.  Each check and its
 * reservation happen under the zone's mutex, so concurrent requests in
 * any worker see each other's reservations; a refusal later in the list
 * gives back what the earlier ones took.
 *
 * In a strict zone (sync= ... strict) whose Redis is reachable, Redis
 * checks and reserves: NGX_AGAIN, the request waits for its answer, and
 * ctx->resume follows.
 */

static ngx_int_t
ngx_http_ai_limits_admit(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_ai_error_t *err)
{
    uint64_t                        in, out, estimate;
    ngx_int_t                       rc;
    ngx_http_ai_limits_ctx_t       *lctx;
    ngx_http_ai_limits_loc_conf_t  *llcf;

    llcf = ngx_http_ai_limits_conf(r);
    if (llcf == NULL) {
        return NGX_ERROR;
    }

    in = ctx->chat.prompt_bytes / 4;
    out = ngx_http_ai_limits_reserve_tokens(r, &ctx->chat);

    rc = ngx_http_ai_limits_plan_price(r, ctx, in, out, &estimate, err);

    if (rc != NGX_OK) {
        return rc;
    }

    if (llcf->rates.nelts == 0
        && (llcf->cost == NULL || !llcf->cost->has_budget)
        && !ngx_http_ai_limits_team(r))
    {
        return NGX_OK;
    }

    lctx = ngx_http_ai_limits_get_ctx(r, 1);
    if (lctx == NULL) {
        return NGX_ERROR;
    }

    lctx->ai = ctx;

    if (lctx->admitted) {
        return NGX_OK;
    }

    lctx->estimate = in + out;

    if (lctx->team) {
        rc = ngx_http_ai_cost_team_admit(lctx, lctx->team, err);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (llcf->cost && llcf->cost->has_budget) {
        rc = ngx_http_ai_cost_admit(lctx, llcf->cost, estimate, err);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (llcf->rates.nelts) {
        rc = ngx_http_ai_rate_admit(lctx, llcf, err);

        if (rc != NGX_OK) {
            ngx_http_ai_cost_release(lctx);
            return rc;
        }
    }

    if (lctx->deferred) {
        rc = ngx_http_ai_limits_strict(lctx);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc == NGX_ERROR) {
            ngx_http_ai_rate_release(lctx);
            ngx_http_ai_cost_release(lctx);
            return NGX_ERROR;
        }

        /* Redis could not be asked: as without strict */

        rc = ngx_http_ai_limits_resolve(lctx, NULL, 0, err);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    lctx->admitted = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai limits: admitted, %uL tokens and %uL nano-USD "
                   "reserved", lctx->estimate, lctx->reserved);

    return NGX_OK;
}


/*
 * What the first call of a request may cost: the costliest model of its
 * plan (a fallback chain, a request's "models", a pool's members and
 * judges), so that an unpriced "model" with priced alternatives reserves
 * what they cost.  Where unpriced models are refused (ai_unpriced refuse,
 * by default where a budget applies), a plan with one is refused: 400.
 */

static ngx_int_t
ngx_http_ai_limits_plan_price(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    uint64_t in, uint64_t out, uint64_t *estimate, ngx_ai_error_t *err)
{
    u_char                         *p;
    uint64_t                        cost;
    ngx_uint_t                      i, refuse;
    ngx_http_ai_model_t            *m;
    ngx_http_ai_price_t            *price;
    ngx_http_ai_limits_loc_conf_t  *llcf;

    refuse = ngx_http_ai_limits_refuse_unpriced(r);

    *estimate = 0;

    llcf = ngx_http_ai_limits_conf(r);
    if (llcf == NULL) {
        return NGX_ERROR;
    }

    if (!refuse && (llcf->cost == NULL || !llcf->cost->has_budget)) {
        /* nothing to check, nothing to reserve */
        return NGX_OK;
    }

    m = ctx->plan.elts;

    for (i = 0; i < ctx->plan.nelts; i++) {
        price = ngx_http_ai_limits_price(r, &m[i].name);

        if (price) {
            cost = ngx_http_ai_cost_of(in, price->input)
                   + ngx_http_ai_cost_of(out, price->output);

            *estimate = ngx_max(*estimate, cost);
            continue;
        }

        if (!refuse) {
            continue;
        }

        ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                         "model", "model_not_priced", "");

        p = ngx_pnalloc(r->pool, 160 + m[i].name.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        err->message.data = p;
        err->message.len = ngx_sprintf(p, "Model %V has no price on this "
                                       "gateway, and this route refuses "
                                       "models it cannot charge for "
                                       "(ai_unpriced).", &m[i].name)
                           - p;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai limits: %V refused: no ai_price", &m[i].name);

        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* ai_unpriced refuse, or unset where a budget applies */

static ngx_uint_t
ngx_http_ai_limits_refuse_unpriced(ngx_http_request_t *r)
{
    ngx_http_ai_loc_conf_t         *alcf;
    ngx_http_ai_limits_loc_conf_t  *llcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    if (alcf->unpriced != NGX_CONF_UNSET) {
        return alcf->unpriced == NGX_HTTP_AI_UNPRICED_REFUSE;
    }

    llcf = ngx_http_ai_limits_conf(r);

    return llcf == NULL || (llcf->cost && llcf->cost->has_budget);
}


/* a model's price here (the rule is the core's: the answers' usage.cost
 * is the same) */

static ngx_http_ai_price_t *
ngx_http_ai_limits_price(ngx_http_request_t *r, ngx_str_t *model)
{
    return ngx_http_ai_price_here(r, model);
}


/*
 * A call past the first of an admitted request (a retry, the next model
 * of a chain, a hedge, a fusion member, debate round or judge): it takes
 * one more request from every rpm bucket the request holds, its own
 * token estimate from every tpm bucket and its own cost estimate from the
 * budget, or it is not made (NGX_DECLINED, err says why).
 */

static ngx_int_t
ngx_http_ai_limits_attempt(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_str_t *model, ngx_ai_chat_request_t *req, ngx_ai_error_t *err)
{
    uint64_t                   in, out, tokens, estimate;
    ngx_int_t                  rc;
    ngx_http_ai_price_t       *price;
    ngx_http_ai_limits_ctx_t  *lctx;

    lctx = ngx_http_ai_limits_get_ctx(r, 0);

    if (lctx == NULL || !lctx->admitted) {
        /* no limit, or none that took anything */
        return NGX_OK;
    }

    in = req->prompt_bytes / 4;
    out = ngx_http_ai_limits_reserve_tokens(r, req);
    tokens = in + out;

    price = ngx_http_ai_limits_price(r, model);

    estimate = price ? ngx_http_ai_cost_of(in, price->input)
                       + ngx_http_ai_cost_of(out, price->output)
                     : 0;

    rc = ngx_http_ai_cost_more(lctx, estimate, err);

    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_rate_more(lctx, tokens, err);

    if (rc != NGX_OK) {
        ngx_http_ai_cost_less(lctx, estimate);
        return rc;
    }

    lctx->estimate += tokens;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai limits: another call to %V, %uL tokens and %uL "
                   "nano-USD more reserved", model, tokens, estimate);

    return NGX_OK;
}


/*
 * The deferred holds of a request, the budget first, asked of Redis
 * (ngx_ai_gateway_sync.c): NGX_AGAIN, ngx_http_ai_limits_strict_done()
 * follows.
 */

static ngx_int_t
ngx_http_ai_limits_strict(ngx_http_ai_limits_ctx_t *lctx)
{
    ngx_array_t  items;

    if (ngx_array_init(&items, lctx->request->pool, 4,
                       sizeof(ngx_http_ai_sync_item_t))
        != NGX_OK
        || ngx_http_ai_cost_strict_item(lctx, &items) != NGX_OK
        || ngx_http_ai_rate_strict_items(lctx, &items) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_ai_sync_strict(lctx->request, &items,
                                   ngx_http_ai_limits_strict_done, lctx,
                                   &lctx->waiter);
}


/*
 * A strict admission's answers are in (ngx_ai_gateway_sync.c): the
 * request goes on, or is refused.
 */

static void
ngx_http_ai_limits_strict_done(void *data, ngx_http_ai_sync_item_t *items,
    ngx_uint_t n)
{
    ngx_http_ai_limits_ctx_t *lctx = data;

    ngx_int_t       rc;
    ngx_ai_error_t  err;

    ngx_memzero(&err, sizeof(ngx_ai_error_t));

    rc = ngx_http_ai_limits_resolve(lctx, items, n, &err);

    if (rc == NGX_OK) {
        lctx->admitted = 1;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP,
                       lctx->request->connection->log, 0,
                       "ai limits: admitted (strict), %uL tokens and %uL "
                       "nano-USD reserved", lctx->estimate, lctx->reserved);
    }

    lctx->ai->resume(lctx->request, rc, &err);
}


/*
 * Each deferred reservation as Redis answered it (items NULL: no answer,
 * the local figures decide), the budget first.  A refusal gives back
 * every reservation of the request, those made in Redis too.
 */

static ngx_int_t
ngx_http_ai_limits_resolve(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_sync_item_t *items, ngx_uint_t n, ngx_ai_error_t *err)
{
    ngx_int_t                 rc, refused;
    ngx_uint_t                i, pass;
    ngx_array_t               local;
    ngx_ai_error_t            scratch;
    ngx_http_ai_sync_item_t  *item;

    if (items == NULL) {
        if (ngx_array_init(&local, lctx->request->pool, 4,
                           sizeof(ngx_http_ai_sync_item_t))
            != NGX_OK
            || ngx_http_ai_cost_strict_item(lctx, &local) != NGX_OK
            || ngx_http_ai_rate_strict_items(lctx, &local) != NGX_OK)
        {
            ngx_http_ai_rate_release(lctx);
            ngx_http_ai_cost_release(lctx);
            return NGX_ERROR;
        }

        /* all NGX_HTTP_AI_STRICT_FAILED: zeroed */

        items = local.elts;
        n = local.nelts;
    }

    refused = 0;
    rc = NGX_OK;

    for (pass = 0; pass < 2; pass++) {

        for (i = 0; i < n; i++) {
            item = &items[i];

            if ((item->type == NGX_HTTP_AI_SYNC_ACCOUNT) != (pass == 0)) {
                continue;
            }

            rc = (item->type == NGX_HTTP_AI_SYNC_ACCOUNT)
                 ? ngx_http_ai_cost_strict_resolve(lctx, item,
                                                   refused ? &scratch : err)
                 : ngx_http_ai_rate_strict_resolve(lctx, item,
                                                   refused ? &scratch : err);

            if (rc == NGX_DECLINED) {
                refused = 1;

            } else if (rc != NGX_OK) {
                refused = 2;
            }
        }
    }

    lctx->deferred = 0;

    if (refused) {
        ngx_http_ai_rate_release(lctx);
        ngx_http_ai_cost_release(lctx);

        return refused == 1 ? NGX_DECLINED : NGX_ERROR;
    }

    if (lctx->nholds) {
        lctx->rate_status = NGX_HTTP_AI_STATUS_PASSED;
    }

    return NGX_OK;
}


/* output tokens assumed for a request: max_tokens (else the default)
 * for each of its n answers */

static uint64_t
ngx_http_ai_limits_reserve_tokens(ngx_http_request_t *r,
    ngx_ai_chat_request_t *req)
{
    uint64_t                        out;
    ngx_http_ai_limits_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_limits_module);

    if (req->max_tokens >= 0) {
        out = (uint64_t) req->max_tokens;

    } else if (llcf->reserve_tokens >= 0) {
        out = (uint64_t) llcf->reserve_tokens;

    } else if (req->default_max_tokens > 0) {
        out = (uint64_t) req->default_max_tokens;

    } else {
        out = 4096;
    }

    return out * ngx_max(req->n, 1);
}


/*
 * One provider call is over: its cost from its usage and the model's
 * price, added to the request and written to the ledger under the
 * model's label.  A call without usage is charged an estimate, recorded
 * apart as one: a call the gateway stopped (or whose client went away)
 * its input and, for a stream, the output relayed so far; an answer whose
 * usage is missing or invalid what admission reserved for it.
 */

static void
ngx_http_ai_limits_charge(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a)
{
    uint64_t                        in, out;
    ngx_uint_t                      ok;
    ngx_ai_usage_t                 *u;
    ngx_http_ai_price_t            *price;
    ngx_http_ai_counters_t          add;
    ngx_http_ai_limits_ctx_t       *lctx;
    ngx_http_ai_limits_loc_conf_t  *llcf;

    r = r->main;

    llcf = ngx_http_ai_limits_conf(r);
    if (llcf == NULL) {
        return;
    }

    price = ngx_http_ai_limits_price(r, &a->model);

    ngx_memzero(&add, sizeof(ngx_http_ai_counters_t));

    lctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_limits_module);

    u = a->usage.known ? &a->usage
        : (a->streaming && a->stream.usage.known) ? &a->stream.usage
        : NULL;

    if (a->aborted || a->outcome == NGX_HTTP_AI_ABORTED
        || (u == NULL && r->connection->error
            && a->outcome != NGX_HTTP_AI_OK))
    {
        /* stopped by the gateway, or cut because the client went away */

        add.aborted = 1;
        a->estimated = 1;

        ngx_http_ai_limits_estimate_charge(r, ctx, a, price, u, &add);

    } else {
        if (a->outcome == NGX_HTTP_AI_RUNNING) {
            /* not judged by the caller: a 2xx that ended whole is OK */
            ok = a->header && a->status >= 200 && a->status < 300
                 && a->complete && !a->too_big
                 && !(a->streaming && a->stream.failed);

        } else {
            ok = (a->outcome == NGX_HTTP_AI_OK);
        }

        add.requests = 1;
        add.errors = ok ? 0 : 1;
        a->charged_ok = ok;

        if (u == NULL && ok) {
            /* an answer the provider did not say the usage of */
            a->guessed = 1;
            ngx_http_ai_limits_estimate_charge(r, ctx, a, price, NULL, &add);

        } else {
            in = u ? u->prompt_tokens : 0;
            out = u ? u->completion_tokens : 0;

            add.input_tokens = in;
            add.output_tokens = out;
            add.cost = price ? ngx_http_ai_cost_of(in, price->input)
                               + ngx_http_ai_cost_of(out, price->output)
                             : 0;
            a->cost = add.cost;

            if (lctx) {
                lctx->tokens += in + out;
            }
        }
    }

    ngx_log_debug7(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai limits: charge %V: in %uL out %uL cost %uL, "
                   "aborted %uL est in %uL est cost %uL",
                   &a->model, add.input_tokens, add.output_tokens, add.cost,
                   add.aborted, add.est_input_tokens, add.est_cost);

    if (llcf->cost == NULL) {
        return;
    }

    if (lctx == NULL) {
        lctx = ngx_http_ai_limits_get_ctx(r, 1);
        if (lctx == NULL) {
            return;
        }

        lctx->ai = ctx;
    }

    (void) ngx_http_ai_cost_record(lctx, llcf->cost,
                                   a->label.len ? &a->label : &a->model,
                                   &add);

    if (lctx->team) {
        /* the team's own ledger rows and account */
        (void) ngx_http_ai_cost_record(lctx, lctx->team,
                                       a->label.len ? &a->label : &a->model,
                                       &add);
    }
}


/*
 * The estimate a call is charged when its usage is not known: input from
 * the usage if the provider said it early, else a quarter of the prompt's
 * bytes; output, for a call stopped in the middle of a stream, from what
 * was relayed (a quarter of the text's bytes, at least one token per
 * delta, at least what the provider said so far), for an answer without
 * usage what admission reserved.  It counts for tpm and the budget.
 */

static void
ngx_http_ai_limits_estimate_charge(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a,
    ngx_http_ai_price_t *price, ngx_ai_usage_t *u,
    ngx_http_ai_counters_t *add)
{
    uint64_t                   in, out;
    ngx_ai_chat_request_t     *req;
    ngx_http_ai_limits_ctx_t  *lctx;

    req = a->req ? a->req : &ctx->chat;

    in = (u && u->prompt_tokens) ? u->prompt_tokens : req->prompt_bytes / 4;

    if (a->guessed) {
        out = ngx_http_ai_limits_reserve_tokens(r, req);

    } else if (a->streaming) {
        out = (a->stream.text_bytes + 3) / 4;
        out = ngx_max(out, a->stream.text_deltas);

        if (u) {
            out = ngx_max(out, u->completion_tokens);
        }

    } else {
        out = 0;
    }

    add->est_input_tokens = in;
    add->est_cost = price ? ngx_http_ai_cost_of(in, price->input)
                            + ngx_http_ai_cost_of(out, price->output)
                          : 0;

    a->cost = add->est_cost;
    a->est_cost = add->est_cost;

    lctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_limits_module);

    if (lctx) {
        lctx->tokens += in + out;
    }
}


/*
 * Response headers: x-ratelimit-* of the location's limits (the tightest
 * of them), Retry-After on a refusal of ours, X-AI-Cost once every call
 * is over (not for a streamed answer, whose header leaves first).
 */

static ngx_int_t
ngx_http_ai_limits_headers(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    u_char                         *p;
    size_t                          len;
    ngx_http_ai_limits_ctx_t       *lctx;
    ngx_http_ai_limits_loc_conf_t  *llcf;
    u_char                          buf[NGX_INT64_LEN + 8];

    r = r->main;

    llcf = ngx_http_ai_limits_conf(r);
    if (llcf == NULL) {
        return NGX_ERROR;
    }

    lctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_limits_module);

    if (lctx && lctx->headers_done) {
        return NGX_OK;
    }

    if (llcf->rates.nelts) {

        if (lctx == NULL) {
            lctx = ngx_http_ai_limits_get_ctx(r, 1);
            if (lctx == NULL) {
                return NGX_ERROR;
            }

            lctx->ai = ctx;
        }

        if (lctx->rate_status == 0 && !lctx->peeked) {
            /* not through admission (a bad request, models): as it is */
            if (ngx_http_ai_rate_peek(lctx, llcf) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        if (ngx_http_ai_limits_info_headers(r, &lctx->req_info,
                                            "x-ratelimit-limit-requests",
                                            "x-ratelimit-remaining-requests",
                                            "x-ratelimit-reset-requests")
            != NGX_OK
            || ngx_http_ai_limits_info_headers(r, &lctx->tok_info,
                                            "x-ratelimit-limit-tokens",
                                            "x-ratelimit-remaining-tokens",
                                            "x-ratelimit-reset-tokens")
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (lctx == NULL) {
        lctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_limits_module);
    }

    if (lctx) {
        lctx->headers_done = 1;

        if (lctx->retry_after) {
            len = ngx_sprintf(buf, "%T", lctx->retry_after) - buf;

            if (ngx_http_ai_limits_push_header(r, "Retry-After", buf, len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (ctx == NULL
        || (ctx->attempts == 0
            && (lctx == NULL
                || (lctx->rate_status != NGX_HTTP_AI_STATUS_REJECTED
                    && lctx->budget_status != NGX_HTTP_AI_STATUS_REJECTED))))
    {
        /* no call was made and none refused: nothing was priced */
        return NGX_OK;
    }

    if (ctx->chat.stream
        && (r->headers_out.status == NGX_HTTP_OK
            || (ctx->winner && ctx->winner->streaming && !ctx->winner->done)
            || (ctx->attempt && ctx->attempt->streaming
                && !ctx->attempt->done)))
    {
        /* a stream: its cost is known at its end ($ai_cost) */
        return NGX_OK;
    }

    p = ngx_http_ai_sprint_usd(buf, ctx->cost);

    return ngx_http_ai_limits_push_header(r, "X-AI-Cost", buf, p - buf);
}


static ngx_int_t
ngx_http_ai_limits_info_headers(ngx_http_request_t *r,
    ngx_http_ai_rate_info_t *info, const char *limit, const char *remaining,
    const char *reset)
{
    u_char  *p;
    u_char   buf[NGX_INT64_LEN + 16];

    if (!info->set) {
        return NGX_OK;
    }

    p = ngx_sprintf(buf, "%uL", info->limit);

    if (ngx_http_ai_limits_push_header(r, limit, buf, p - buf) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(buf, "%uL", info->remaining);

    if (ngx_http_ai_limits_push_header(r, remaining, buf, p - buf)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_http_ai_sprint_duration(buf, info->reset);

    return ngx_http_ai_limits_push_header(r, reset, buf, p - buf);
}


static ngx_int_t
ngx_http_ai_limits_push_header(ngx_http_request_t *r, const char *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, len);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    ngx_memcpy(h->value.data, value, len);
    h->value.len = len;

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->lowcase_key = NULL;

    return NGX_OK;
}


ngx_http_ai_limits_ctx_t *
ngx_http_ai_limits_get_ctx(ngx_http_request_t *r, ngx_uint_t create)
{
    size_t                     len;
    ngx_pool_cleanup_t        *cln;
    ngx_http_ai_limits_ctx_t  *lctx;
    ngx_http_core_loc_conf_t  *clcf;

    r = r->main;

    lctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_limits_module);

    if (lctx || !create) {
        return lctx;
    }

    lctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_limits_ctx_t));
    if (lctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_ai_limits_cleanup;
    cln->data = lctx;

    lctx->request = r;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    len = ngx_min(clcf->name.len, NGX_HTTP_AI_MAX_ROUTE_LEN);
    lctx->route.data = clcf->name.data;
    lctx->route.len = len;

    ngx_http_set_ctx(r, lctx, ngx_ai_gateway_limits_module);

    return lctx;
}


/*
 * An authenticated client (ai_auth): what its limits and budgets are
 * counted under; kept until the request ends.
 */

ngx_int_t
ngx_http_ai_limits_principal(ngx_http_request_t *r,
    ngx_http_ai_principal_t *p)
{
    ngx_http_ai_limits_ctx_t  *lctx;

    lctx = ngx_http_ai_limits_get_ctx(r, 1);
    if (lctx == NULL) {
        return NGX_ERROR;
    }

    lctx->principal = p;
    lctx->conf = NULL;
    lctx->team = NULL;

    return NGX_OK;
}


/* the location's lines, as they apply to this request's principal */

static ngx_http_ai_limits_loc_conf_t *
ngx_http_ai_limits_conf(ngx_http_request_t *r)
{
    ngx_http_ai_limits_ctx_t       *lctx;
    ngx_http_ai_limits_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r->main,
                                        ngx_ai_gateway_limits_module);

    lctx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_limits_module);

    if (lctx == NULL || lctx->principal == NULL) {
        return llcf;
    }

    if (lctx->conf == NULL) {
        lctx->conf = ngx_http_ai_limits_principal_conf(lctx, llcf);
    }

    return lctx->conf;
}


static ngx_uint_t
ngx_http_ai_limits_team(ngx_http_request_t *r)
{
    ngx_http_ai_limits_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_limits_module);

    return lctx && lctx->team;
}


/*
 * A copy of the location's lines for one principal: an ai_rate or ai_cost
 * line without key= counts per key name, with the key's rpm=, tpm= and
 * budget= in place of the line's; the team's account, if the key has a
 * team with a budget, in the zone of the ai_cost line.
 */

static ngx_http_ai_limits_loc_conf_t *
ngx_http_ai_limits_principal_conf(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_limits_loc_conf_t *llcf)
{
    ngx_str_t                       prefix;
    ngx_uint_t                      i;
    ngx_pool_t                     *pool;
    ngx_http_complex_value_t       *key;
    ngx_http_ai_cost_conf_t        *cc;
    ngx_http_ai_principal_t        *p;
    ngx_http_ai_rate_limit_t       *from, *to;
    ngx_http_ai_limits_loc_conf_t  *conf;

    pool = lctx->request->pool;
    p = lctx->principal;

    conf = ngx_palloc(pool, sizeof(ngx_http_ai_limits_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    *conf = *llcf;

    ngx_str_null(&prefix);

    key = ngx_http_ai_limits_const_key(pool, &prefix, &p->name);
    if (key == NULL) {
        return NULL;
    }

    if (llcf->rates.nelts) {
        if (ngx_array_init(&conf->rates, pool, llcf->rates.nelts,
                           sizeof(ngx_http_ai_rate_limit_t))
            != NGX_OK)
        {
            return NULL;
        }

        from = llcf->rates.elts;

        for (i = 0; i < llcf->rates.nelts; i++) {
            to = ngx_array_push(&conf->rates);
            if (to == NULL) {
                return NULL;
            }

            *to = from[i];

            if (to->key) {
                continue;
            }

            to->key = key;
            to->rpm = p->rpm ? p->rpm : to->rpm;
            to->tpm = p->tpm ? p->tpm : to->tpm;
        }
    }

    if (llcf->cost == NULL) {
        return conf;
    }

    if (llcf->cost->key == NULL) {
        cc = ngx_palloc(pool, sizeof(ngx_http_ai_cost_conf_t));
        if (cc == NULL) {
            return NULL;
        }

        *cc = *llcf->cost;
        cc->key = key;

        if (p->has_budget) {
            cc->budget = p->budget;
            cc->period = p->period;
            cc->has_budget = 1;
        }

        conf->cost = cc;
    }

    if (p->team.len && p->has_team_budget) {
        cc = ngx_palloc(pool, sizeof(ngx_http_ai_cost_conf_t));
        if (cc == NULL) {
            return NULL;
        }

        *cc = *llcf->cost;

        ngx_str_set(&prefix, "team:");

        cc->key = ngx_http_ai_limits_const_key(pool, &prefix, &p->team);
        if (cc->key == NULL) {
            return NULL;
        }

        cc->budget = p->team_budget;
        cc->period = p->team_period;
        cc->has_budget = 1;

        lctx->team = cc;
    }

    return conf;
}


/* a key= whose value is prefix and name, as a variable would give it */

static ngx_http_complex_value_t *
ngx_http_ai_limits_const_key(ngx_pool_t *pool, ngx_str_t *prefix,
    ngx_str_t *name)
{
    u_char                    *p;
    ngx_http_complex_value_t  *cv;

    cv = ngx_pcalloc(pool, sizeof(ngx_http_complex_value_t));
    if (cv == NULL) {
        return NULL;
    }

    p = ngx_pnalloc(pool, prefix->len + name->len);
    if (p == NULL) {
        return NULL;
    }

    cv->value.data = p;

    if (prefix->len) {                  /* none: data is NULL */
        p = ngx_cpymem(p, prefix->data, prefix->len);
    }

    p = ngx_cpymem(p, name->data, name->len);
    cv->value.len = p - cv->value.data;

    return cv;
}


/*
 * The end of a request: tpm reservations are replaced by the tokens the
 * calls really used, budget reservations are given back (the calls'
 * costs were added as they were charged).  Idempotent.
 */

static void
ngx_http_ai_limits_settle(ngx_http_ai_limits_ctx_t *lctx)
{
    if (lctx->settled) {
        return;
    }

    lctx->settled = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, lctx->request->connection->log, 0,
                   "ai limits: settle, %uL tokens used, %uL reserved",
                   lctx->tokens, lctx->estimate);

    ngx_http_ai_rate_settle(lctx);
    ngx_http_ai_cost_release(lctx);
}


static void
ngx_http_ai_limits_cleanup(void *data)
{
    ngx_http_ai_limits_ctx_t  *lctx = data;

    /* gone while Redis was asked: its answers will find no request */
    ngx_http_ai_sync_strict_cancel(&lctx->waiter);

    ngx_http_ai_limits_settle(lctx);
}


/*
 * The request's end (the core's log phase, after every call was
 * charged): the reservations are settled, so that $ai_cost and the
 * ledger agree.
 */

static void
ngx_http_ai_limits_end(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_http_ai_limits_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_limits_module);

    if (lctx) {
        ngx_http_ai_limits_settle(lctx);
    }
}


static ngx_int_t
ngx_http_ai_cost_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                    *p;
    ngx_http_ai_ctx_t         *ctx;
    ngx_http_ai_limits_ctx_t  *lctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_module);
    lctx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_limits_module);

    /* as X-AI-Cost: once calls were made, or refused by a limit */

    if (ctx == NULL
        || (ctx->attempts == 0
            && (lctx == NULL
                || (lctx->rate_status != NGX_HTTP_AI_STATUS_REJECTED
                    && lctx->budget_status != NGX_HTTP_AI_STATUS_REJECTED))))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 8);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    v->len = ngx_http_ai_sprint_usd(p, ctx->cost) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_limits_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t                 status;
    ngx_http_ai_limits_ctx_t  *lctx;

    lctx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_limits_module);

    status = lctx == NULL ? 0
             : data ? lctx->budget_status : lctx->rate_status;

    if (status == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = ngx_http_ai_limits_status[status - 1].len;
    v->data = ngx_http_ai_limits_status[status - 1].data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_limits_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ai_limits_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/* the hooks the core calls (ngx_ai_gateway_policy.c) */

static ngx_http_ai_policy_t  ngx_http_ai_limits_policy = {
    NULL,                                  /* request */
    ngx_http_ai_limits_admit,              /* admit */
    ngx_http_ai_limits_attempt,            /* attempt */
    ngx_http_ai_limits_charge,             /* call_done */
    ngx_http_ai_limits_headers,            /* headers */
    NULL,                                  /* answer */
    NULL,                                  /* error */
    NULL,                                  /* stream */
    ngx_http_ai_limits_end,                /* end */
    NULL,                                  /* log */
    NULL                                   /* plan */
};


static ngx_int_t
ngx_http_ai_limits_init(ngx_conf_t *cf)
{
    ngx_http_ai_limits_main_conf_t  *lmcf;

    /* every zone is known now: which accounts each one must keep */

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_ai_gateway_limits_module);

    ngx_http_ai_cost_keep_budgets(lmcf);

    return ngx_http_ai_policy_add(cf, &ngx_http_ai_limits_policy);
}


static void *
ngx_http_ai_limits_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_limits_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_limits_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&lmcf->rate_zones, cf->pool, 2,
                       sizeof(ngx_shm_zone_t *))
        != NGX_OK
        || ngx_array_init(&lmcf->cost_zones, cf->pool, 2,
                          sizeof(ngx_shm_zone_t *))
           != NGX_OK
        || ngx_array_init(&lmcf->budgets, cf->pool, 2,
                          sizeof(ngx_http_ai_cost_conf_t *))
           != NGX_OK)
    {
        return NULL;
    }

    return lmcf;
}


static void *
ngx_http_ai_limits_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_limits_loc_conf_t  *llcf;

    llcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_limits_loc_conf_t));
    if (llcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     llcf->rates.elts = NULL;
     *     llcf->rates.nelts = 0;
     */

    llcf->cost = NGX_CONF_UNSET_PTR;
    llcf->reserve_tokens = NGX_CONF_UNSET;

    return llcf;
}


static char *
ngx_http_ai_limits_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_limits_loc_conf_t  *prev = parent;
    ngx_http_ai_limits_loc_conf_t  *conf = child;

    /* as limit_req: a level with ai_rate replaces the inherited set */

    if (conf->rates.elts == NULL) {
        conf->rates = prev->rates;
    }

    ngx_conf_merge_ptr_value(conf->cost, prev->cost, NULL);
    ngx_conf_merge_value(conf->reserve_tokens, prev->reserve_tokens, -1);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_limits_init_process(ngx_cycle_t *cycle)
{
    if (ngx_http_ai_cost_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_sync_init_process(cycle);
}


static void
ngx_http_ai_limits_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_sync_exit_process(cycle);
    ngx_http_ai_cost_exit_process(cycle);
}


static void
ngx_http_ai_limits_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_ai_cost_exit_master(cycle);
}
