
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ngx_ai_gateway_attempt_module: one provider call, and the calls of a
 * request.  A call is a background subrequest to the provider's pass=
 * location with its own body and a fresh header set (the provider's key,
 * never the client's headers), its state in this module's ctx slot.  Its
 * header and body filters take the answer: whole answers are collected
 * for translation, streams are parsed event by event and handed to the
 * request's strategy (ctx->strategy->relay).  When a call ends, its
 * outcome is decided, the policies charge it, and it joins the request's
 * totals (ngx_http_ai_attempt_settle).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


static ngx_int_t ngx_http_ai_attempt_request(ngx_http_ai_ctx_t *ctx,
    ngx_ai_translator_t *t, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *up);
static ngx_int_t ngx_http_ai_attempt_response(ngx_http_request_t *r,
    ngx_http_ai_attempt_t *a, ngx_ai_error_t *err);
static ngx_int_t ngx_http_ai_attempt_call(ngx_http_ai_attempt_t *a,
    ngx_str_t *key);
static ngx_int_t ngx_http_ai_token_start(ngx_http_ai_attempt_t *a,
    ngx_int_t rc);
static ngx_int_t ngx_http_ai_token_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc);
static void ngx_http_ai_token_wait(ngx_event_t *ev);
static void ngx_http_ai_token_fail(ngx_http_ai_attempt_t *a,
    const char *why);
static ngx_int_t ngx_http_ai_attempt_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_ai_stream_feed(ngx_http_ai_attempt_t *a,
    ngx_buf_t *b);
static ngx_int_t ngx_http_ai_sse_event(void *data, ngx_ai_sse_event_t *ev);
static ngx_http_ai_attempt_t *ngx_http_ai_attempt_get(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_attempt_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_attempt_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_ai_plan_rehash(ngx_http_ai_ctx_t *ctx);
static void ngx_http_ai_attempt_totals(ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a);
static void ngx_http_ai_calls_cleanup(void *data);
static ngx_int_t ngx_http_ai_attempt_init(ngx_conf_t *cf);


static ngx_http_module_t  ngx_ai_gateway_attempt_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_ai_attempt_init,              /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_ai_gateway_attempt_module = {
    NGX_MODULE_V1,
    &ngx_ai_gateway_attempt_module_ctx,    /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_str_t  ngx_http_ai_post = ngx_string("POST");


ngx_int_t
ngx_http_ai_attempt_start(ngx_http_ai_ctx_t *ctx, ngx_http_ai_model_t *target,
    ngx_ai_chat_request_t *req)
{
    u_char                       *p, *q;
    ngx_int_t                     rc;
    ngx_str_t                     uri, args, key;
    ngx_ai_error_t                refusal;
    ngx_http_request_t           *r;
    ngx_http_ai_attempt_t        *a, **call;
    ngx_ai_chat_request_t        *own;
    ngx_http_ai_provider_t       *provider;
    ngx_ai_upstream_request_t     up;

    r = ctx->request;
    provider = target->provider;

    if (ctx->refused) {
        return NGX_DECLINED;
    }

    /* the call's own view of the request: the translators read the
     * model from it */

    own = ngx_palloc(r->pool, sizeof(ngx_ai_chat_request_t));
    if (own == NULL) {
        return NGX_ERROR;
    }

    *own = req ? *req : ctx->chat;
    own->model = target->name;
    own->upstream_model = target->upstream;

    if (ngx_http_ai_provider_prepare(provider, own) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_ai_attempt_request(ctx, provider->translator, own, &up);

    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_provider_path(r->pool, provider, own, &up, &refusal);

    if (rc == NGX_DECLINED) {
        ctx->refused = ngx_palloc(r->pool, sizeof(ngx_ai_error_t));
        if (ctx->refused == NULL) {
            return NGX_ERROR;
        }

        *ctx->refused = refusal;
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->attempts) {

        /* every call past the first counts against the limits too */

        rc = ngx_http_ai_policy_attempt(r, ctx, &target->name,
                                        req ? req : &ctx->chat, &refusal);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ctx->refused = ngx_palloc(r->pool, sizeof(ngx_ai_error_t));
            if (ctx->refused == NULL) {
                return NGX_ERROR;
            }

            *ctx->refused = refusal;

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai gateway: %V not called: %V", &target->name,
                          &refusal.message);
            return NGX_DECLINED;
        }
    }

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_attempt_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    call = ngx_array_push(&ctx->calls);
    if (call == NULL) {
        return NGX_ERROR;
    }

    *call = a;

    a->ctx = ctx;
    a->target = target;
    a->provider = provider;
    a->model = target->name;
    a->label = target->label.len ? target->label : target->name;
    a->start = ngx_current_msec;

    a->req = own;

    if (ngx_http_ai_provider_key_value(r, provider, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (provider->key_value) {
        a->key = key;

        /* type=bedrock: AKID:SECRET, the secret is what must not echo */

        q = provider->sigkey ? ngx_strlchr(key.data, key.data + key.len, ':')
                             : NULL;

        if (q) {
            a->key.data = q + 1;
            a->key.len = key.data + key.len - (q + 1);
        }
    }

    /* Vertex: the shared access token, or one bought first */

    rc = NGX_OK;

    if (provider->cloud == NGX_HTTP_AI_CLOUD_VERTEX) {
        rc = ngx_http_ai_vertex_token(provider, r->pool, &key);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            a->key = key;
        }
    }

    /* pass= prefix + native path; the native path may carry arguments */

    q = ngx_strlchr(up.path.data, up.path.data + up.path.len, '?');

    uri.len = provider->pass.len + (q ? (size_t) (q - up.path.data)
                                      : up.path.len);
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(uri.data, provider->pass.data, provider->pass.len);
    ngx_memcpy(p, up.path.data, uri.len - provider->pass.len);

    if (q) {
        args.data = q + 1;
        args.len = up.path.data + up.path.len - (q + 1);

    } else {
        ngx_str_null(&args);
    }

    a->uri = uri;
    a->args = args;
    a->up_body = up.body;
    a->up_path = up.path;

    ctx->attempt = a;
    ctx->attempts++;

    if (rc != NGX_OK) {
        return ngx_http_ai_token_start(a, rc);
    }

    return ngx_http_ai_attempt_call(a, &key);
}


/* the call's subrequest to its pass= location, with its body and headers */

static ngx_int_t
ngx_http_ai_attempt_call(ngx_http_ai_attempt_t *a, ngx_str_t *key)
{
    ngx_buf_t                    *b;
    ngx_http_request_t           *r, *sr;
    ngx_http_request_body_t      *rb;
    ngx_http_post_subrequest_t   *ps;

    r = a->ctx->request;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_ai_attempt_done;
    ps->data = a;

    if (ngx_http_subrequest(r, &a->uri, &a->args, &sr, ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    a->sr = sr;

    ngx_http_set_ctx(sr, a, ngx_ai_gateway_attempt_module);

    sr->method = NGX_HTTP_POST;
    sr->method_name = ngx_http_ai_post;

    /* the subrequest's own body: the translated request */

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = a->up_body.data;
    b->last = a->up_body.data + a->up_body.len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    rb->bufs = ngx_alloc_chain_link(r->pool);
    if (rb->bufs == NULL) {
        return NGX_ERROR;
    }

    rb->bufs->buf = b;
    rb->bufs->next = NULL;
    rb->buf = b;

    sr->request_body = rb;
    sr->headers_in.content_length_n = a->up_body.len;
    sr->headers_in.chunked = 0;

    /* bodies come to the filters in memory, never as file buffers */
    sr->filter_need_in_memory = 1;

    if (ngx_http_ai_call_headers(sr, a, key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (a->provider->sigkey && key->len
        && ngx_http_ai_call_sign_aws(sr, a, key, &a->up_path, &a->up_body)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway: calling %V at \"%V\", %uz body bytes",
                   &a->model, &a->uri, a->up_body.len);

    return NGX_OK;
}


/*
 * The native request of the operation (chat, embeddings, count_tokens).
 * NGX_DECLINED: this provider cannot take it (its refusal, a 400, goes to
 * ctx->refused; the plan keeps only providers that have the endpoint).
 */

static ngx_int_t
ngx_http_ai_attempt_request(ngx_http_ai_ctx_t *ctx, ngx_ai_translator_t *t,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *up)
{
    ngx_int_t        rc;
    ngx_ai_error_t   err;

    switch (req->op) {

    case NGX_AI_OP_EMBED:
        rc = t->embed_request ? t->embed_request(ctx->request->pool, req, up,
                                                 &err)
                              : NGX_ERROR;
        break;

    case NGX_AI_OP_COUNT:
        rc = t->count_request ? t->count_request(ctx->request->pool, req, up,
                                                 &err)
                              : NGX_ERROR;
        break;

    default:
        return t->request(ctx->request->pool, req, up);
    }

    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx->refused = ngx_palloc(ctx->request->pool, sizeof(ngx_ai_error_t));
    if (ctx->refused == NULL) {
        return NGX_ERROR;
    }

    *ctx->refused = err;

    return NGX_DECLINED;
}


/*
 * Vertex AI: the access token first.  NGX_AGAIN: this call buys it, a
 * subrequest to the provider's token_pass= location with the signed JWT
 * (its answer comes through this module's filters into a->body, like any
 * whole answer), then the call proper (ngx_http_ai_token_done());
 * NGX_BUSY: another call, maybe of another worker, is buying it: looked
 * for again every 20 ms.  The call's timeout covers both.
 */

static ngx_int_t
ngx_http_ai_token_start(ngx_http_ai_attempt_t *a, ngx_int_t rc)
{
    ngx_str_t                     body, v;
    ngx_buf_t                    *b;
    const char                   *why;
    ngx_http_request_t           *r, *sr;
    ngx_http_ai_vertex_t         *vx;
    ngx_http_request_body_t      *rb;
    ngx_http_post_subrequest_t   *ps;

    r = a->ctx->request;
    vx = a->provider->vertex;

    if (rc == NGX_BUSY) {
        a->token_wait.handler = ngx_http_ai_token_wait;
        a->token_wait.data = a;
        a->token_wait.log = r->connection->log;
        ngx_add_timer(&a->token_wait, 20);
        return NGX_OK;
    }

    if (ngx_http_ai_vertex_grant(a->provider, r->pool, r->connection->log,
                                 &body)
        != NGX_OK)
    {
        (void) ngx_http_ai_vertex_token_set(a->provider, 0, NULL, 0,
                                            r->pool, &v, &why);
        return NGX_ERROR;
    }

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_ai_token_done;
    ps->data = a;

    if (ngx_http_subrequest(r, &vx->token_pass, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    a->sr = sr;
    a->token = 1;

    ngx_http_set_ctx(sr, a, ngx_ai_gateway_attempt_module);

    sr->method = NGX_HTTP_POST;
    sr->method_name = ngx_http_ai_post;

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    b = ngx_calloc_buf(r->pool);

    if (rb == NULL || b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body.data;
    b->last = body.data + body.len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    rb->bufs = ngx_alloc_chain_link(r->pool);
    if (rb->bufs == NULL) {
        return NGX_ERROR;
    }

    rb->bufs->buf = b;
    rb->bufs->next = NULL;
    rb->buf = b;

    sr->request_body = rb;
    sr->headers_in.content_length_n = body.len;
    sr->headers_in.chunked = 0;
    sr->filter_need_in_memory = 1;

    if (ngx_http_ai_call_fresh_headers(sr,
                                       "application/x-www-form-urlencoded",
                                       "application/json")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway: %V: buying an access token", &a->model);

    return NGX_OK;
}


/* the token endpoint answered: the token kept for all, the call made */

static ngx_int_t
ngx_http_ai_token_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_ai_attempt_t *a = data;

    ngx_int_t            trc;
    ngx_str_t            token;
    ngx_uint_t           status;
    const char          *why;
    ngx_http_request_t  *r;

    r = a->ctx->request;

    if (a->token) {
        a->token = 0;
        status = (a->header && a->complete) ? a->status : 0;

        trc = ngx_http_ai_vertex_token_set(a->provider, status,
                                           a->body.data, a->body.len,
                                           r->pool, &token, &why);

        /* the call proper starts afresh */

        a->header = 0;
        a->complete = 0;
        a->status = 0;
        a->too_big = 0;
        a->body.len = 0;
        ngx_str_null(&a->retry_after);
        ngx_str_null(&a->retry_after_ms);

        if (a->done) {
            /* timed out meanwhile: the token is kept all the same */

        } else if (trc == NGX_OK) {
            a->key = token;

            if (ngx_http_ai_attempt_call(a, &token) != NGX_OK) {
                ngx_http_ai_token_fail(a, "the call could not be made");
            }

        } else {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai gateway: %V: %s (HTTP %ui)", &a->model,
                          trc == NGX_DECLINED ? why : "no token",
                          status);
            ngx_http_ai_token_fail(a, "no Vertex AI access token: the "
                                      "token endpoint refused the "
                                      "service account or did not "
                                      "answer");
        }
    }

    if (sr->connection->error
        || rc == NGX_HTTP_REQUEST_TIME_OUT
        || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST)
    {
        return rc;
    }

    return (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) ? NGX_OK
                                                                : rc;
}


static void
ngx_http_ai_token_wait(ngx_event_t *ev)
{
    ngx_http_ai_attempt_t *a = ev->data;

    ngx_int_t            rc;
    ngx_str_t            token;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = a->ctx->request;
    c = r->connection;

    if (a->done) {
        return;
    }

    rc = ngx_http_ai_vertex_token(a->provider, r->pool, &token);

    if (rc == NGX_OK) {
        a->key = token;
        rc = ngx_http_ai_attempt_call(a, &token);

    } else if (rc != NGX_ERROR) {
        rc = ngx_http_ai_token_start(a, rc);
    }

    if (rc != NGX_OK) {
        ngx_http_ai_token_fail(a, "the call could not be made");
    }

    ngx_http_run_posted_requests(c);
}


/* the call ends before it was made: the strategy hears of it */

static void
ngx_http_ai_token_fail(ngx_http_ai_attempt_t *a, const char *why)
{
    a->done = 1;
    a->end = ngx_current_msec;
    a->outcome = NGX_HTTP_AI_ERROR;
    a->reason.data = (u_char *) why;
    a->reason.len = ngx_strlen(why);

    if (a->timer.timer_set) {
        ngx_del_timer(&a->timer);
    }

    (void) ngx_http_post_request(a->ctx->request, NULL);
}


/*
 * Called when the subrequest finalizes, possibly more than once.  Errors
 * of the provider call (connect failure, timeout, a cut answer) are the
 * gateway's to handle: they are recorded and turned into NGX_OK, since
 * NGX_ERROR from a subrequest would terminate the client's request.
 */

static ngx_int_t
ngx_http_ai_attempt_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_ai_attempt_t  *a = data;

    if (a->done) {
        return (rc == NGX_ERROR && !sr->connection->error) ? NGX_OK : rc;
    }

    a->done = 1;
    a->rc = rc;
    a->end = ngx_current_msec;

    if (a->timer.timer_set) {
        ngx_del_timer(&a->timer);
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "ai gateway: %V done: rc %i, status %ui",
                   &a->model, rc, a->status);

    if (ngx_http_post_request(a->ctx->request, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    if (sr->connection->error
        || rc == NGX_HTTP_REQUEST_TIME_OUT
        || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST)
    {
        return rc;
    }

    return (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE) ? NGX_OK
                                                                : rc;
}


/*
 * The call of a subrequest: its ctx, or, after an internal redirect in the
 * pass= location (which clears the ctx), its post_subrequest data.
 */

static ngx_http_ai_attempt_t *
ngx_http_ai_attempt_get(ngx_http_request_t *r)
{
    ngx_http_ai_attempt_t  *a;

    if (r == r->main) {
        return NULL;
    }

    a = ngx_http_get_module_ctx(r, ngx_ai_gateway_attempt_module);

    if (a == NULL && r->post_subrequest
        && (r->post_subrequest->handler == ngx_http_ai_attempt_done
            || r->post_subrequest->handler == ngx_http_ai_token_done))
    {
        a = r->post_subrequest->data;
        ngx_http_set_ctx(r, a, ngx_ai_gateway_attempt_module);
    }

    return a;
}


static ngx_int_t
ngx_http_ai_attempt_header_filter(ngx_http_request_t *r)
{
    ngx_http_ai_price_t    *price;
    ngx_http_ai_attempt_t  *a;

    a = ngx_http_ai_attempt_get(r);

    if (a == NULL) {
        return ngx_http_next_header_filter(r);
    }

    r->header_sent = 1;

    if (a->done || a->header) {
        return NGX_OK;
    }

    a->status = r->headers_out.status;

    if (r->upstream == NULL || r->upstream->headers_in.status_n == 0) {
        /* nginx's own error page, no provider answer */
        return NGX_OK;
    }

    a->header = 1;

    if (a->token) {
        /* the token endpoint's answer: whole, into a->body */
        r->upstream->buffering = 0;
        return ngx_ai_buf_init(&a->body, r->pool, 2048);
    }

    if (a->status == NGX_HTTP_TOO_MANY_REQUESTS) {
        ngx_http_ai_call_retry_after(r, a);
    }

    if (a->provider->translator->type == NGX_AI_PROVIDER_BEDROCK
        && a->req->op == NGX_AI_OP_EMBED)
    {
        ngx_http_ai_call_header_tokens(r, a);
    }

    /*
     * The answer is consumed here, never buffered to temp files: relay
     * streams as they come and collect whole answers in memory.  Called
     * from ngx_http_upstream_send_response() before it picks a mode.
     */

    r->upstream->buffering = 0;

    if (ngx_ai_buf_init(&a->body, r->pool, 4096) != NGX_OK) {
        return NGX_ERROR;
    }

    if (a->req->stream && a->status >= 200 && a->status < 300) {
        a->streaming = 1;

        if (ngx_ai_sse_init(&a->sse, r->pool, 0) != NGX_OK
            || ngx_ai_es_init(&a->es, r->pool, 0) != NGX_OK
            || ngx_ai_stream_init(&a->stream, r->pool, a->req,
                                  ngx_time())
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        a->stream.model = a->model;

        /* the usage chunk's cost, at the price the call is charged at */

        price = ngx_http_ai_price_here(a->ctx->request, &a->model);

        if (price) {
            a->stream.price.input = price->input;
            a->stream.price.output = price->output;
            a->stream.price.known = 1;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_attempt_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                   size;
    ngx_int_t                rc;
    ngx_buf_t               *b;
    ngx_str_t                out;
    ngx_chain_t             *cl;
    ngx_http_ai_attempt_t   *a;
    ngx_http_ai_loc_conf_t  *alcf;

    a = ngx_http_ai_attempt_get(r);

    if (a == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        /*
         * Only a whole answer ends with the subrequest's last_in_chain
         * (ngx_http_send_special(NGX_HTTP_LAST)); an answer the provider
         * cut off ends with a mere flush.
         */

        if ((b->last_in_chain || b->last_buf) && a->header && !a->done) {
            a->complete = 1;
        }

        if (a->done || !a->header || !ngx_buf_in_memory(b)) {
            b->pos = b->last;
            b->file_pos = b->file_last;
            continue;
        }

        size = b->last - b->pos;

        if (a->streaming) {
            if (!a->stream.failed && size) {
                rc = ngx_http_ai_stream_feed(a, b);

                if (rc == NGX_ERROR) {
                    return NGX_ERROR;
                }
            }

        } else if (!a->too_big && size) {
            alcf = ngx_http_get_module_loc_conf(a->ctx->request,
                                                ngx_ai_gateway_module);

            if (a->body.len + size > alcf->max_response_size) {
                a->too_big = 1;

            } else if (ngx_ai_buf_append(&a->body, b->pos, size) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        b->pos = b->last;
    }

    if (a->streaming && a->stream.out.len) {
        out.data = a->stream.out.data;
        out.len = a->stream.out.len;

        if (ngx_http_ai_attempt_scrub(a, &out) != NGX_OK) {
            return NGX_ERROR;
        }

        if (out.data != a->stream.out.data) {
            a->stream.out.len = 0;

            if (ngx_ai_buf_append(&a->stream.out, out.data, out.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (a->streaming && a->stream.out.len) {
        /* translated events: the strategy says who hears them */
        return a->ctx->strategy->relay(a->ctx, a);
    }

    return NGX_OK;
}


/*
 * The gateway stops a call: its upstream connection is closed and the
 * subrequest released, so that it holds neither a provider slot nor the
 * client's keep-alive connection.
 */

void
ngx_http_ai_attempt_abort(ngx_http_ai_attempt_t *a,
    ngx_http_ai_outcome_e outcome)
{
    ngx_http_request_t  *sr;

    if (a->done) {
        return;
    }

    a->done = 1;
    a->end = ngx_current_msec;
    a->outcome = outcome;
    a->aborted = 1;

    if (outcome == NGX_HTTP_AI_TIMEOUT) {
        ngx_str_set(&a->reason, "gave no answer within the timeout");

    } else {
        ngx_str_set(&a->reason, "stopped: another model answered first");
    }

    if (a->timer.timer_set) {
        ngx_del_timer(&a->timer);
    }

    if (a->token_wait.timer_set) {
        ngx_del_timer(&a->token_wait);
    }

    sr = a->sr;

    if (sr == NULL) {
        /* waiting for another call's token: nothing to stop */
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "ai gateway: aborting %V: %V", &a->model, &a->reason);

    if (sr->upstream && sr->upstream->cleanup) {
        (*sr->upstream->cleanup)(sr);
    }
}


/*
 * What a provider sent, before anything of it reaches the client: every
 * provider key taken out, whole, in part, JSON-escaped or masked
 * (ngx_ai_scrub()), since a provider that echoes the request's headers
 * in an error or an answer would hand its key to whoever asked.
 */

ngx_int_t
ngx_http_ai_attempt_scrub(ngx_http_ai_attempt_t *a, ngx_str_t *text)
{
    ngx_uint_t                hits, more;
    ngx_http_request_t       *r;
    ngx_http_ai_main_conf_t  *amcf;

    if (text->len == 0) {
        return NGX_OK;
    }

    r = a->ctx->request;
    amcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_module);

    hits = 0;
    more = 0;

    if (amcf->secrets.nelts
        && ngx_ai_scrub(r->pool, amcf->secrets.elts, amcf->secrets.nelts,
                        text, &hits)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (a->key.len
        && ngx_ai_scrub(r->pool, &a->key, 1, text, &more) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (hits + more) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai gateway: %V sent a provider key back, %ui times: "
                      "redacted", &a->model, hits + more);
    }

    return NGX_OK;
}


/*
 * A stream's bytes through its provider's framing: server-sent events,
 * or AWS event stream messages (type=bedrock); either way its events go
 * to the translator's stream_event.
 */

static ngx_int_t
ngx_http_ai_stream_feed(ngx_http_ai_attempt_t *a, ngx_buf_t *b)
{
    ngx_int_t    rc;
    const char  *why;

    if (a->provider->translator->type == NGX_AI_PROVIDER_BEDROCK) {
        rc = ngx_ai_es_feed(&a->es, b->pos, b->last, ngx_http_ai_sse_event,
                            a);
        why = a->es.error;

    } else {
        rc = ngx_ai_sse_feed(&a->sse, b->pos, b->last, ngx_http_ai_sse_event,
                             a);
        why = NULL;
    }

    if (rc == NGX_DECLINED && !a->stream.failed) {
        a->stream.failed = 1;

        if (why == NULL) {
            why = "the provider sent an event larger than the gateway "
                  "accepts";
        }

        a->stream.error.data = (u_char *) why;
        a->stream.error.len = ngx_strlen(why);
    }

    return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


static ngx_int_t
ngx_http_ai_sse_event(void *data, ngx_ai_sse_event_t *ev)
{
    ngx_http_ai_attempt_t *a = data;

    if (a->stream.failed) {
        return NGX_DECLINED;
    }

    return a->provider->translator->stream_event(&a->stream, ev);
}



/*
 * How a finished call ended: a->outcome, a->reason and, for a usable
 * answer, a->usage and the translated a->answer.
 */

ngx_int_t
ngx_http_ai_attempt_outcome(ngx_http_request_t *r, ngx_http_ai_attempt_t *a)
{
    u_char          *p;
    ngx_int_t        rc;
    ngx_ai_error_t   err;

    if (a->outcome != NGX_HTTP_AI_RUNNING) {
        /* stopped by the gateway: timed out or lost a hedge */
        return NGX_OK;
    }

    if (!a->header) {
        if (a->rc == NGX_HTTP_GATEWAY_TIME_OUT) {
            a->outcome = NGX_HTTP_AI_TIMEOUT;
            ngx_str_set(&a->reason, "timed out");

        } else {
            a->outcome = NGX_HTTP_AI_ERROR;
            ngx_str_set(&a->reason, "could not be reached or closed the "
                                    "connection");
        }

        return NGX_OK;
    }

    if (a->status < 200 || a->status >= 300) {
        a->outcome = (a->status == NGX_HTTP_TOO_MANY_REQUESTS)
                     ? NGX_HTTP_AI_429
                     : (a->status >= 500) ? NGX_HTTP_AI_5XX
                                          : NGX_HTTP_AI_4XX;

        a->provider->translator->error(r->pool, a->status, a->body.data,
                                       a->body.len, &err);

        if (ngx_http_ai_attempt_scrub(a, &err.message) != NGX_OK) {
            return NGX_ERROR;
        }

        p = ngx_pnalloc(r->pool, sizeof("HTTP 999: ") - 1 + err.message.len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        a->reason.data = p;
        a->reason.len = ngx_sprintf(p, "HTTP %03ui: %V", a->status,
                                    &err.message)
                        - p;
        return NGX_OK;
    }

    if (a->too_big) {
        a->outcome = NGX_HTTP_AI_INVALID;
        ngx_str_set(&a->reason, "the answer is larger than "
                                "ai_max_response_size");
        return NGX_OK;
    }

    if (a->streaming) {
        a->usage = a->stream.usage;

        if (a->stream.failed) {
            a->outcome = NGX_HTTP_AI_INVALID;

            if (ngx_http_ai_attempt_scrub(a, &a->stream.error) != NGX_OK) {
                return NGX_ERROR;
            }

            a->reason = a->stream.error;

        } else if (!a->stream.done) {
            a->outcome = NGX_HTTP_AI_ERROR;
            ngx_str_set(&a->reason, "the stream ended before the answer "
                                    "was complete");

        } else if (!a->first_byte && a->ctx->fusion == NULL) {
            /* a lone terminator is no answer: the next model may give one */
            a->outcome = NGX_HTTP_AI_INVALID;
            ngx_str_set(&a->reason, "the stream ended without an answer");

        } else {
            a->outcome = NGX_HTTP_AI_OK;
        }

        return NGX_OK;
    }

    if (!a->complete) {
        a->outcome = NGX_HTTP_AI_ERROR;
        ngx_str_set(&a->reason, "the answer was cut off before its end");
        return NGX_OK;
    }

    rc = ngx_http_ai_attempt_response(r, a, &err);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        a->outcome = NGX_HTTP_AI_INVALID;
        a->reason = err.message;

        return ngx_http_ai_attempt_scrub(a, &a->reason);
    }

    if (ngx_http_ai_attempt_scrub(a, &a->answer.body) != NGX_OK
        || ngx_http_ai_attempt_scrub(a, &a->answer.content) != NGX_OK)
    {
        return NGX_ERROR;
    }

    a->outcome = NGX_HTTP_AI_OK;
    a->usage = a->answer.usage;

    return NGX_OK;
}


/* the answer of the call's operation, translated */

static ngx_int_t
ngx_http_ai_attempt_response(ngx_http_request_t *r, ngx_http_ai_attempt_t *a,
    ngx_ai_error_t *err)
{
    ngx_ai_translator_t  *t;

    t = a->provider->translator;

    switch (a->req->op) {

    case NGX_AI_OP_EMBED:
        return t->embed_response(r->pool, a->req, a->body.data, a->body.len,
                                 &a->answer, err);

    case NGX_AI_OP_COUNT:
        return t->count_response(r->pool, a->req, a->body.data, a->body.len,
                                 &a->answer, err);

    default:
        return t->response(r->pool, a->req, a->body.data, a->body.len,
                           &a->answer, err);
    }
}


/* the request's lists of models and calls, and its timers' cleanup */

ngx_int_t
ngx_http_ai_calls_init(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    if (ngx_array_init(&ctx->plan, r->pool, 4, sizeof(ngx_http_ai_model_t))
           != NGX_OK
        || ngx_array_init(&ctx->calls, r->pool, 4,
                          sizeof(ngx_http_ai_attempt_t *))
           != NGX_OK
        || ngx_array_init(&ctx->skipped, r->pool, 1, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->seen = NULL;
    ctx->seen_size = 0;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_ai_calls_cleanup;
    cln->data = ctx;

    return NGX_OK;
}


/*
 * A model added to the plan once: the names already in it are found in a
 * small open-addressing table of plan indexes, so that a long plan costs
 * no more than its length.
 */

ngx_int_t
ngx_http_ai_plan_add(ngx_http_ai_ctx_t *ctx, ngx_http_ai_model_t *m)
{
    ngx_int_t             rc;
    ngx_uint_t            i, key, slot;
    ngx_http_ai_model_t  *p;

    /* a model a policy keeps out of this request (ai_auth's models=) is
     * skipped, and counted for the refusal of a plan left empty */

    rc = ngx_http_ai_policy_plan(ctx->request, ctx, m);

    if (rc == NGX_DECLINED) {
        ctx->denied++;
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->plan.nelts * 2 >= ctx->seen_size
        && ngx_http_ai_plan_rehash(ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ctx->plan.elts;
    key = ngx_hash_key(m->name.data, m->name.len);

    for (slot = key & (ctx->seen_size - 1);
         ctx->seen[slot];
         slot = (slot + 1) & (ctx->seen_size - 1))
    {
        i = ctx->seen[slot] - 1;

        if (p[i].name.len == m->name.len
            && ngx_strncmp(p[i].name.data, m->name.data, m->name.len) == 0)
        {
            return NGX_OK;
        }
    }

    p = ngx_array_push(&ctx->plan);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *p = *m;
    ctx->seen[slot] = ctx->plan.nelts;

    return NGX_OK;
}


/* a model is in the plan: the strategies call nothing else */

ngx_uint_t
ngx_http_ai_plan_has(ngx_http_ai_ctx_t *ctx, ngx_str_t *name)
{
    ngx_uint_t            i, slot;
    ngx_http_ai_model_t  *p;

    if (ctx->seen_size == 0) {
        return 0;
    }

    p = ctx->plan.elts;

    for (slot = ngx_hash_key(name->data, name->len) & (ctx->seen_size - 1);
         ctx->seen[slot];
         slot = (slot + 1) & (ctx->seen_size - 1))
    {
        i = ctx->seen[slot] - 1;

        if (p[i].name.len == name->len
            && ngx_strncmp(p[i].name.data, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* every model the request could use was kept out of its plan */

void
ngx_http_ai_plan_denied(ngx_http_ai_ctx_t *ctx, ngx_ai_error_t *err)
{
    ngx_ai_error_set(err, NGX_HTTP_FORBIDDEN, "invalid_request_error",
                     "model", "model_not_allowed", "This API key may not "
                     "use the model requested (nor any of its "
                     "alternatives).");
}


/*
 * Embeddings and count_tokens go only to providers whose wire format has
 * the endpoint: the others leave the plan.  NGX_DECLINED: none is left,
 * err (400) names the first model's provider type.
 */

ngx_int_t
ngx_http_ai_plan_serves(ngx_http_ai_ctx_t *ctx, ngx_ai_error_t *err)
{
    u_char               *p;
    ngx_uint_t            i, n;
    ngx_http_ai_model_t  *plan;
    ngx_ai_translator_t  *t;

    plan = ctx->plan.elts;
    t = ctx->plan.nelts ? plan[0].provider->translator : NULL;

    for (i = 0, n = 0; i < ctx->plan.nelts; i++) {
        if (ngx_ai_translator_serves(plan[i].provider->translator,
                                     ctx->chat.op))
        {
            plan[n++] = plan[i];
        }
    }

    if (n == ctx->plan.nelts) {
        return NGX_OK;
    }

    ctx->plan.nelts = n;

    if (n) {
        /* the names' table indexes the plan as it was */
        ctx->seen_size /= 2;
        return ngx_http_ai_plan_rehash(ctx);
    }

    ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                     "model", "unsupported_endpoint", "");

    p = ngx_pnalloc(ctx->request->pool, 160);
    if (p == NULL) {
        return NGX_ERROR;
    }

    err->message.data = p;
    err->message.len = ngx_snprintf(p, 160, "%V-type providers have no %s "
                                    "endpoint; name a model of a provider "
                                    "that has one",
                                    t ? &t->name : &ctx->chat.provider,
                                    ctx->chat.op == NGX_AI_OP_EMBED
                                    ? "embeddings" : "count_tokens")
                       - p;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_plan_rehash(ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t            i, size, slot;
    ngx_http_ai_model_t  *p;

    size = ctx->seen_size ? ctx->seen_size * 2 : 16;

    ctx->seen = ngx_pcalloc(ctx->request->pool, size * sizeof(ngx_uint_t));
    if (ctx->seen == NULL) {
        return NGX_ERROR;
    }

    ctx->seen_size = size;
    p = ctx->plan.elts;

    for (i = 0; i < ctx->plan.nelts; i++) {
        for (slot = ngx_hash_key(p[i].name.data, p[i].name.len) & (size - 1);
             ctx->seen[slot];
             slot = (slot + 1) & (size - 1))
        {
            /* void */
        }

        ctx->seen[slot] = i + 1;
    }

    return NGX_OK;
}


/*
 * A call is over: how it ended, the call_done hooks (its charge in the
 * ledger, its mark on its model's circuit breaker), its part of the
 * request's totals.  Once per call.
 */

ngx_int_t
ngx_http_ai_attempt_settle(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a)
{
    if (a->judged) {
        return NGX_OK;
    }

    if (ngx_http_ai_attempt_outcome(r, a) == NGX_ERROR) {
        return NGX_ERROR;
    }

    a->judged = 1;
    a->charged = 1;

    /* the ledger, the circuit breaker */
    ngx_http_ai_policy_call_done(r, ctx, a);

    ngx_http_ai_attempt_totals(ctx, a);

    return NGX_OK;
}


/*
 * What a charged call adds to the request's totals ($ai_cost, X-AI-Cost,
 * $ai_prompt_tokens ...): its cost unless it is the estimate of a call
 * stopped, and its usage as the provider reported it.
 */

static void
ngx_http_ai_attempt_totals(ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a)
{
    ngx_ai_usage_t  *u;

    if (a->estimated) {
        return;
    }

    ctx->cost += a->cost;

    if (a->guessed) {
        return;
    }

    u = a->usage.known ? &a->usage
        : (a->streaming && a->stream.usage.known) ? &a->stream.usage
        : NULL;

    if (u == NULL) {
        return;
    }

    ctx->usage.prompt_tokens += u->prompt_tokens;
    ctx->usage.completion_tokens += u->completion_tokens;
    ctx->usage.cached_tokens += u->cached_tokens;
    ctx->usage.cache_creation_tokens += u->cache_creation_tokens;
    ctx->usage.reasoning_tokens += u->reasoning_tokens;
    ctx->usage.known = 1;

    /* usage.cost for the client: the charge, when the model has a price */

    if (ngx_http_ai_price_here(ctx->request, &a->model)) {
        u->cost = a->cost;
        u->priced = 1;
        ctx->usage.priced = 1;
    }

    ctx->usage.cost = ctx->cost;
}


/* every call still running but keep is stopped: it lost */

void
ngx_http_ai_attempt_abort_others(ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *keep)
{
    ngx_uint_t               i;
    ngx_http_ai_attempt_t  **calls;

    calls = ctx->calls.elts;

    for (i = 0; i < ctx->calls.nelts; i++) {
        if (calls[i] != keep && !calls[i]->done) {
            ngx_http_ai_attempt_abort(calls[i], NGX_HTTP_AI_ABORTED);

            /* charged now, with an estimate: it will not end by itself
             * (NGX_ERROR here is an allocation failure of its outcome,
             * which leaves it to the log phase's charge) */
            (void) ngx_http_ai_attempt_settle(ctx->request, ctx, calls[i]);
        }
    }
}


/*
 * The request ends (its log phase): a call not charged yet, stopped by
 * the gateway or still running because the client went away, is charged
 * now, as stopped if it had not ended.
 */

void
ngx_http_ai_calls_end(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t               i;
    ngx_http_ai_attempt_t  **calls, *a;

    calls = ctx->calls.elts;

    for (i = 0; i < ctx->calls.nelts; i++) {
        a = calls[i];

        if (a->charged) {
            continue;
        }

        if (!a->done) {
            a->aborted = 1;
            a->outcome = NGX_HTTP_AI_ABORTED;
        }

        a->charged = 1;

        ngx_http_ai_policy_call_done(r, ctx, a);
        ngx_http_ai_attempt_totals(ctx, a);
    }
}


/* every timer of the request's calls, for a request that ends early */

void
ngx_http_ai_stop_timers(ngx_http_ai_ctx_t *ctx)
{
    if (ctx->calls.elts) {
        ngx_http_ai_calls_cleanup(ctx);
    }
}


/* the request's memory goes with its pool: no timer may outlive it */

static void
ngx_http_ai_calls_cleanup(void *data)
{
    ngx_http_ai_ctx_t *ctx = data;

    ngx_uint_t               i;
    ngx_http_ai_attempt_t  **calls;

    calls = ctx->calls.elts;

    for (i = 0; i < ctx->calls.nelts; i++) {
        if (calls[i]->timer.timer_set) {
            ngx_del_timer(&calls[i]->timer);
        }

        if (calls[i]->token_wait.timer_set) {
            ngx_del_timer(&calls[i]->token_wait);
        }
    }

    if (ctx->strategy) {
        ctx->strategy->cleanup(ctx);
    }
}


/* the filters of provider subrequests, before everyone else's */

static ngx_int_t
ngx_http_ai_attempt_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_attempt_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ai_attempt_body_filter;

    return NGX_OK;
}
