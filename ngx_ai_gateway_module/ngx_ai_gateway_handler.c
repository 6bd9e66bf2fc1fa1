
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The content handler of an ai_gateway location: the route, the body, and
 * the pipeline of a request: validation (a Messages API request is
 * converted to an OpenAI one first), the policies' request hook, the plan,
 * the policies' admission (which may decide later and resume through
 * ctx->resume), then the strategy, chosen once (ctx->strategy), which
 * makes the calls and answers (embeddings and count_tokens too, each with
 * its own parse).  Also the write events while it runs, the client's
 * connection watched, GET models and models/{id}, and the one log-phase
 * handler that charges what is left and runs the policies' end hooks in
 * order.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"
#include "ngx_ai_gateway_cache.h"


static ngx_int_t ngx_http_ai_not_allowed(ngx_http_request_t *r,
    const char *allow, const char *msg, ngx_ai_error_t *err);
static void ngx_http_ai_body_handler(ngx_http_request_t *r);
static void ngx_http_ai_admitted(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_int_t rc, ngx_ai_error_t *err);
static void ngx_http_ai_admission_done(ngx_http_request_t *r, ngx_int_t rc,
    ngx_ai_error_t *err);
static void ngx_http_ai_cache_done(ngx_http_request_t *r, ngx_int_t rc);
static ngx_int_t ngx_http_ai_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static void ngx_http_ai_wev_handler(ngx_http_request_t *r);
static void ngx_http_ai_check_broken(ngx_http_request_t *r);
static void ngx_http_ai_client_gone(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_err_t err);
static ngx_int_t ngx_http_ai_parse(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_str_t *body, ngx_ai_error_t *err);
static ngx_int_t ngx_http_ai_models(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_uint_t ngx_http_ai_model_listed(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_price_t *price);
static ngx_int_t ngx_http_ai_model_entry(ngx_ai_buf_t *b,
    ngx_http_ai_price_t *price);
static ngx_int_t ngx_http_ai_model(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_log_handler(ngx_http_request_t *r);


ngx_int_t
ngx_http_ai_handler(ngx_http_request_t *r)
{
    ngx_int_t           rc;
    ngx_ai_error_t      err;
    ngx_ai_route_t     *rt;
    ngx_http_ai_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ngx_http_set_ctx(r, ctx, ngx_ai_gateway_module);

    rt = ngx_ai_route_find(r->uri.data, r->uri.len);
    ctx->route = rt;
    ctx->dialect = rt->dialect;

    if (rt->op == NGX_AI_OP_UNKNOWN) {
        ngx_ai_error_set(&err, NGX_HTTP_NOT_FOUND, "invalid_request_error",
                         NULL, "unknown_url", rt->not_allowed
                         ? rt->not_allowed
                         : "Unknown endpoint: this gateway serves "
                           "chat/completions, responses, embeddings, "
                           "messages, messages/count_tokens, models and "
                           "models/{id}");
        goto error;
    }

    if (!(r->method & (rt->methods == NGX_AI_ROUTE_POST
                       ? NGX_HTTP_POST : NGX_HTTP_GET|NGX_HTTP_HEAD)))
    {
        if (ngx_http_ai_not_allowed(r, rt->allow, rt->not_allowed, &err)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        goto error;
    }

    if (rt->methods == NGX_AI_ROUTE_POST) {
        rc = ngx_http_read_client_request_body(r, ngx_http_ai_body_handler);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (rt->op == NGX_AI_OP_MODEL) {
        return ngx_http_ai_model(r, ctx);
    }

    return ngx_http_ai_models(r, ctx);

error:

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ai_send_error(r, ctx, &err);
}


/* a 405 with its Allow header */

static ngx_int_t
ngx_http_ai_not_allowed(ngx_http_request_t *r, const char *allow,
    const char *msg, ngx_ai_error_t *err)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value.data = (u_char *) allow;
    h->value.len = ngx_strlen(allow);

    ngx_ai_error_set(err, NGX_HTTP_NOT_ALLOWED, "invalid_request_error",
                     NULL, "method_not_allowed", msg);

    return NGX_OK;
}


static void
ngx_http_ai_body_handler(ngx_http_request_t *r)
{
    ngx_str_t                 body;
    ngx_int_t                 rc;
    ngx_uint_t                fusion;
    ngx_ai_error_t            err;
    ngx_http_ai_ctx_t        *ctx;
    ngx_http_ai_loc_conf_t   *alcf;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    if (r->request_body == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_ai_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_ai_parse(r, ctx, &body, &err);

    /* the policies (ai_guard): deny or redact before any provider sees
     * the text */

    if (rc == NGX_OK) {
        rc = ngx_http_ai_policy_request(r, &ctx->chat, &err);
    }

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai gateway: invalid request: %V", &err.message);

        ngx_http_finalize_request(r, ngx_http_ai_send_error(r, ctx, &err));
        return;
    }

    ctx->chat.default_max_tokens = alcf->default_max_tokens;
    ctx->chat.created = ngx_time();
    ctx->fallback = alcf->fallback;
    ctx->start = ngx_current_msec;

    fusion = alcf->pool && ngx_http_ai_fusion_wanted(r, ctx, alcf->pool);

    ctx->strategy = fusion ? &ngx_http_ai_fusion_strategy
                           : &ngx_http_ai_fallback_strategy;

    if (alcf->pool) {
        rc = ngx_http_ai_fusion_plan(r, ctx, alcf->pool, fusion);

        if (rc == NGX_DECLINED) {
            ngx_http_ai_plan_denied(ctx, &err);
        }

    } else {
        rc = ngx_http_ai_fallback_plan(r, ctx, &err);
    }

    if (rc == NGX_OK && ctx->chat.op) {
        /* embeddings, count_tokens: providers that have the endpoint */
        rc = ngx_http_ai_plan_serves(ctx, &err);
    }

    ctx->resume = ngx_http_ai_admission_done;

    if (rc == NGX_OK) {
        rc = ngx_http_ai_policy_admit(r, ctx, &err);
    }

    if (rc == NGX_AGAIN) {
        /* a strict limit: Redis decides, then ctx->resume */
        return;
    }

    ngx_http_ai_admitted(r, ctx, rc, &err);
}


/*
 * The body as the request it is: a Messages request is served as the
 * OpenAI request it converts to; count_tokens as one that asks for no
 * output (no tokens reserved, nothing charged but the request);
 * embeddings have their own validation and are refused where fusion
 * would answer (ai_pool).
 */

static ngx_int_t
ngx_http_ai_parse(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_str_t *body, ngx_ai_error_t *err)
{
    ngx_int_t                rc;
    ngx_http_ai_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    if (ctx->route->op != NGX_AI_OP_CHAT && alcf->pool) {
        ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                         NULL, "unsupported_endpoint", "");
        ngx_str_set(&err->message, "embeddings and count_tokens are not "
                    "served where ai_pool answers; use a location with "
                    "ai_fallback or none");
        return NGX_DECLINED;
    }

    if (ctx->route->op == NGX_AI_OP_EMBED) {
        return ngx_ai_embed_request_parse(r->pool, body->data, body->len,
                                          &ctx->chat, err);
    }

    rc = ctx->dialect ? ctx->dialect->request(r->pool, body->data, body->len,
                                              body, err)
                      : NGX_OK;

    if (rc == NGX_OK) {
        rc = ngx_ai_chat_request_parse(r->pool, body->data, body->len,
                                       &ctx->chat, err);
    }

    if (rc == NGX_OK && ctx->route->op == NGX_AI_OP_COUNT) {
        ctx->chat.op = NGX_AI_OP_COUNT;
        ctx->chat.prompt_bytes = 0;
        ctx->chat.max_tokens = 0;
        ctx->chat.stream = 0;
    }

    return rc;
}


static void
ngx_http_ai_admitted(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_int_t rc, ngx_ai_error_t *err)
{
    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_ai_send_error(r, ctx, err));
        return;
    }

    /* a client that hangs up while the providers work stops them */
    r->read_event_handler = ngx_http_ai_check_broken;

    /* ai_cache: a hit is answered with no provider call; a miss may wait
     * for an identical request's answer (lock=on) */

    rc = ngx_http_ai_cache_lookup(r, ctx, ngx_http_ai_cache_done);

    if (rc == NGX_AGAIN) {
        return;
    }

    ngx_http_ai_cache_done(r, rc);
}


static void
ngx_http_ai_cache_done(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_loc_conf_t  *alcf;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);
    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    r->write_event_handler = ngx_http_ai_wev_handler;

    if (rc == NGX_OK) {
        ngx_http_ai_cache_send(r, ctx);
        return;
    }

    if (ctx->strategy == &ngx_http_ai_fusion_strategy) {
        ngx_http_ai_fusion_start(r, ctx, alcf->pool);
        return;
    }

    ctx->strategy->run(r, ctx);
}


/* admission decided by Redis, out of the request's own events */

static void
ngx_http_ai_admission_done(ngx_http_request_t *r, ngx_int_t rc,
    ngx_ai_error_t *err)
{
    ngx_connection_t   *c;
    ngx_http_ai_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (ctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);

    } else {
        ngx_http_ai_admitted(r, ctx, rc, err);
    }

    ngx_http_run_posted_requests(c);
}


/* the whole request body as one buffer, read back from a temp file if
 * nginx wrote it there */

static ngx_int_t
ngx_http_ai_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    cl = r->request_body->bufs;

    if (cl == NULL) {
        ngx_str_null(body);
        return NGX_OK;
    }

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    p = ngx_pnalloc(r->pool, len ? len : 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);

            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ai gateway: cannot read the request body "
                              "back from its temporary file");
                return NGX_ERROR;
            }

            p += n;

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    body->len = p - body->data;

    return NGX_OK;
}


/*
 * The main request's write handler runs when a provider call ends (its
 * post_subrequest handler posts us) and when the client's connection
 * becomes writable again while a stream is being relayed.
 */

static void
ngx_http_ai_wev_handler(ngx_http_request_t *r)
{
    ngx_event_t        *wev;
    ngx_connection_t   *c;
    ngx_http_ai_ctx_t  *ctx;

    c = r->connection;
    wev = c->write;
    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (ctx == NULL || ctx->finished) {
        return;
    }

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;
        ngx_http_ai_finalize(r, ctx, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    /* a stream is relayed: push what the client lagged on */

    if (ngx_http_ai_stream_flush(r) != NGX_OK) {
        return;
    }

    ctx->strategy->run(r, ctx);
}


/*
 * The client's connection while the calls run, as nginx's upstream
 * watches it (ngx_http_upstream_check_broken_connection): a client that
 * closes it, before the first byte of the answer or in the middle of a
 * stream, ends the request (499) and its calls, which are charged as
 * stopped.  Pipelined bytes of a next request are left where they are.
 */

static void
ngx_http_ai_check_broken(ngx_http_request_t *r)
{
    int                 n;
    char                buf[1];
    ngx_err_t           err;
    ngx_event_t        *ev;
    ngx_connection_t   *c;
    ngx_http_ai_ctx_t  *ctx;
#if (NGX_HAVE_EPOLLRDHUP)
    socklen_t           len;
#endif

    c = r->connection;
    ev = c->read;
    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (ctx == NULL || ctx->finished) {
        return;
    }

#if (NGX_HTTP_V2)
    if (r->stream) {
        return;
    }
#endif

    err = 0;

    if (c->error) {
        goto gone;
    }

#if (NGX_HAVE_EPOLLRDHUP)

    if ((ngx_event_flags & NGX_USE_EPOLL_EVENT) && ngx_use_epoll_rdhup) {

        if (!ev->pending_eof) {
            return;
        }

        ev->eof = 1;

        len = sizeof(ngx_err_t);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        goto gone;
    }

#endif

    n = recv(c->fd, buf, 1, MSG_PEEK);

    err = ngx_socket_errno;

    if (n > 0) {
        /* the next request, pipelined: not read until this one is done */

        if ((ngx_event_flags & NGX_USE_LEVEL_EVENT) && ev->active) {
            if (ngx_del_event(ev, NGX_READ_EVENT, 0) != NGX_OK) {
                ngx_http_ai_client_gone(r, ctx, 0);
            }
        }

        return;
    }

    if (n == -1) {
        if (err == NGX_EAGAIN) {
            return;
        }

        ev->error = 1;

    } else {
        ev->eof = 1;
        err = 0;
    }

gone:

    ngx_http_ai_client_gone(r, ctx, err);
}


static void
ngx_http_ai_client_gone(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_err_t err)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_log_error(NGX_LOG_INFO, c->log, err,
                  "client prematurely closed connection while the gateway "
                  "waited for the provider");

    c->error = 1;

    ngx_http_ai_cache_cancel(r);

    /* the calls' upstream connections close with the request; the log
     * phase charges them as stopped */

    ngx_http_ai_stop_timers(ctx);

    ngx_http_ai_finalize(r, ctx, NGX_HTTP_CLIENT_CLOSED_REQUEST);
}


/* GET {location}models: the configured models, in OpenAI's list form */

static ngx_int_t
ngx_http_ai_models(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_str_t                 body;
    ngx_uint_t                i, n;
    ngx_ai_buf_t              b;
    ngx_http_ai_price_t      *price;
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_module);

    if (ngx_ai_buf_init(&b, r->pool, 256) != NGX_OK
        || ngx_ai_buf_append_str(&b, "{\"object\":\"list\",\"data\":[")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    price = amcf->prices.elts;

    for (i = 0, n = 0; i < amcf->prices.nelts; i++) {

        if (price[i].family || !ngx_http_ai_model_listed(r, ctx, &price[i]))
        {
            /* a price for many names, not a model; or a model the
             * client's key may not use */
            continue;
        }

        if ((n++ && ngx_ai_buf_append_str(&b, ",") != NGX_OK)
            || ngx_http_ai_model_entry(&b, &price[i]) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_ai_buf_append_str(&b, "]}") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = b.data;
    body.len = b.len;

    return ngx_http_ai_send_json(r, ctx, NGX_HTTP_OK, &body);
}


/* a model is listed when the policies would let the request call it
 * (ai_auth: the key's models=) */

static ngx_uint_t
ngx_http_ai_model_listed(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_price_t *price)
{
    ngx_http_ai_model_t  m;

    ngx_memzero(&m, sizeof(ngx_http_ai_model_t));
    m.name = price->model;
    m.provider = price->provider;

    return ngx_http_ai_policy_plan(r, ctx, &m) == NGX_OK;
}


/* one model of the list: its id, owner and prices */

static ngx_int_t
ngx_http_ai_model_entry(ngx_ai_buf_t *b, ngx_http_ai_price_t *price)
{
    if (ngx_ai_buf_append_str(b, "{\"id\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, price->model.data,
                                         price->model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"object\":\"model\","
                                 "\"created\":0,\"owned_by\":")
           != NGX_OK
        || ngx_ai_buf_append_json_string(b, price->provider->name.data,
                                         price->provider->name.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"pricing\":"
                                 "{\"input_usd_per_1m\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, price->input_text.data,
                                         price->input_text.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"output_usd_per_1m\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, price->output_text.data,
                                         price->output_text.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, "}}") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * GET {location}models/{id}: the entry of the list with that id, or 404.
 * The id may hold '/' ("openai/gpt-4o"); a client percent-encodes it and
 * r->uri has it decoded.
 */

static ngx_int_t
ngx_http_ai_model(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_str_t                 id, body;
    ngx_uint_t                i;
    ngx_ai_buf_t              b;
    ngx_ai_error_t            err;
    ngx_http_ai_price_t      *price;
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_module);

    if (ngx_ai_route_model_id(r->uri.data, r->uri.len, &id) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    price = amcf->prices.elts;

    for (i = 0; i < amcf->prices.nelts; i++) {

        if (price[i].family || price[i].model.len != id.len
            || ngx_strncmp(price[i].model.data, id.data, id.len) != 0
            || !ngx_http_ai_model_listed(r, ctx, &price[i]))
        {
            continue;
        }

        if (ngx_ai_buf_init(&b, r->pool, 256) != NGX_OK
            || ngx_http_ai_model_entry(&b, &price[i]) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        body.data = b.data;
        body.len = b.len;

        return ngx_http_ai_send_json(r, ctx, NGX_HTTP_OK, &body);
    }

    ngx_ai_error_set(&err, NGX_HTTP_NOT_FOUND, "invalid_request_error",
                     "model", "model_not_found", "");

    /* the id is echoed only when it is a model name */

    if (!ngx_ai_model_name_valid(id.data, id.len)) {
        ngx_str_set(&id, "requested");
    }

    if (ngx_ai_buf_init(&b, r->pool, 128) != NGX_OK
        || ngx_ai_buf_append_str(&b, "The model '") != NGX_OK
        || ngx_ai_buf_append(&b, id.data, id.len) != NGX_OK
        || ngx_ai_buf_append_str(&b, "' is not configured here (GET models "
                                 "lists those that are).")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    err.message.data = b.data;
    err.message.len = b.len;

    return ngx_http_ai_send_error(r, ctx, &err);
}


/*
 * Log phase, before the access log: every call of the request is charged
 * (one not charged yet, stopped by the gateway or still running when the
 * request ended because the client went away, as aborted if it had not
 * ended), then the policies settle what they reserved, then the observers
 * record: so that variables logged and the ledger agree.
 */

static ngx_int_t
ngx_http_ai_log_handler(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (ctx == NULL) {
        /* not a gateway request */
        return NGX_OK;
    }

    ngx_http_ai_calls_end(r, ctx);

    ngx_http_ai_policy_end(r, ctx);

    return NGX_OK;
}


/* the log phase handler goes first, before the access log's */

ngx_int_t
ngx_http_ai_handler_init(ngx_conf_t *cf)
{
    ngx_array_t                *a;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    a = &cmcf->phases[NGX_HTTP_LOG_PHASE].handlers;

    h = ngx_array_push(a);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = a->elts;

    ngx_memmove(&h[1], &h[0], (a->nelts - 1) * sizeof(ngx_http_handler_pt));

    h[0] = ngx_http_ai_log_handler;

    return NGX_OK;
}
