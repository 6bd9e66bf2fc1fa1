
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The provider side: one call is a background subrequest to the
 * provider's pass= location with its own body and a fresh header set (the
 * provider's key, never the client's headers).  Its header and body
 * filters take the answer: whole answers are collected for translation,
 * streams are parsed event by event and relayed to the client as they
 * come.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


/* seconds: a longer Retry-After of a provider is passed on as this */
#define NGX_HTTP_AI_MAX_RETRY_AFTER  600


static ngx_int_t ngx_http_ai_set_headers(ngx_http_request_t *sr,
    ngx_http_ai_attempt_t *a, ngx_str_t *key);
static ngx_int_t ngx_http_ai_push_header(ngx_http_request_t *sr,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_ai_attempt_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_ai_find_retry_after(ngx_http_request_t *r,
    ngx_http_ai_attempt_t *a);
static ngx_int_t ngx_http_ai_sse_event(void *data, ngx_ai_sse_event_t *ev);
static ngx_int_t ngx_http_ai_messages_stream(ngx_http_ai_ctx_t *ctx,
    ngx_str_t *data);


static ngx_str_t  ngx_http_ai_post = ngx_string("POST");


ngx_int_t
ngx_http_ai_attempt_start(ngx_http_ai_ctx_t *ctx, ngx_http_ai_model_t *target,
    ngx_ai_chat_request_t *req)
{
    u_char                       *p, *q;
    ngx_int_t                     rc;
    ngx_str_t                     uri, args, key;
    ngx_ai_error_t                refusal;
    ngx_buf_t                    *b;
    ngx_http_request_t           *r, *sr;
    ngx_http_ai_attempt_t        *a, **call;
    ngx_http_ai_provider_t       *provider;
    ngx_ai_upstream_request_t     up;
    ngx_http_request_body_t      *rb;
    ngx_http_post_subrequest_t   *ps;

    r = ctx->request;
    provider = target->provider;

    if (ctx->refused) {
        return NGX_DECLINED;
    }

    if (ctx->attempts) {

        /* every call past the first counts against the limits too */

        rc = ngx_http_ai_limits_attempt(r, ctx, &target->name,
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

    /* the call's own view of the request: the translators read the
     * model from it */

    a->req = ngx_palloc(r->pool, sizeof(ngx_ai_chat_request_t));
    if (a->req == NULL) {
        return NGX_ERROR;
    }

    *a->req = req ? *req : ctx->chat;
    a->req->model = target->name;
    a->req->upstream_model = target->upstream;

    if (provider->translator->request(r->pool, a->req, &up) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_provider_key_value(r, provider, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (provider->key_value) {
        a->key = key;
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

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_ai_attempt_done;
    ps->data = a;

    if (ngx_http_subrequest(r, &uri, &args, &sr, ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    a->sr = sr;
    ctx->attempt = a;
    ctx->attempts++;

    ngx_http_set_ctx(sr, a, ngx_ai_gateway_module);

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

    b->pos = up.body.data;
    b->last = up.body.data + up.body.len;
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
    sr->headers_in.content_length_n = up.body.len;
    sr->headers_in.chunked = 0;

    /* bodies come to the filters in memory, never as file buffers */
    sr->filter_need_in_memory = 1;

    if (ngx_http_ai_set_headers(sr, a, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway: calling %V at \"%V\", %uz body bytes",
                   &a->model, &uri, up.body.len);

    return NGX_OK;
}


/*
 * A fresh header list: the subrequest's list would otherwise be the
 * client's (ngx_http_subrequest copies headers_in by value), and the
 * client's Authorization, cookies and Accept-Encoding must not leave.
 */

static ngx_int_t
ngx_http_ai_set_headers(ngx_http_request_t *sr, ngx_http_ai_attempt_t *a,
    ngx_str_t *key)
{
    u_char     *p;
    ngx_str_t   v;

    if (ngx_list_init(&sr->headers_in.headers, sr->pool, 6,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->headers_in.authorization = NULL;
    sr->headers_in.content_type = NULL;
    sr->headers_in.content_length = NULL;

    ngx_str_set(&v, "application/json");

    if (ngx_http_ai_push_header(sr, "Content-Type", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    if (a->req->stream) {
        ngx_str_set(&v, "text/event-stream");
    }

    if (ngx_http_ai_push_header(sr, "Accept", &v) != NGX_OK) {
        return NGX_ERROR;
    }

    if (a->ctx->fusion) {
        /* fusion never recurses through another gateway */
        ngx_str_set(&v, "1");

        if (ngx_http_ai_push_header(sr, "X-AI-Fusion-Depth", &v) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (key->len == 0) {
        return NGX_OK;
    }

    switch (a->provider->translator->type) {

    case NGX_AI_PROVIDER_ANTHROPIC:
        ngx_str_set(&v, "2023-06-01");

        if (ngx_http_ai_push_header(sr, "x-api-key", key) != NGX_OK
            || ngx_http_ai_push_header(sr, "anthropic-version", &v) != NGX_OK)
        {
            return NGX_ERROR;
        }

        break;

    case NGX_AI_PROVIDER_GEMINI:
        if (ngx_http_ai_push_header(sr, "x-goog-api-key", key) != NGX_OK) {
            return NGX_ERROR;
        }

        break;

    default: /* NGX_AI_PROVIDER_OPENAI */
        v.len = sizeof("Bearer ") - 1 + key->len;
        v.data = ngx_pnalloc(sr->pool, v.len);
        if (v.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(v.data, "Bearer ", sizeof("Bearer ") - 1);
        ngx_memcpy(p, key->data, key->len);

        if (ngx_http_ai_push_header(sr, "Authorization", &v) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_push_header(ngx_http_request_t *sr, const char *name,
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


ngx_int_t
ngx_http_ai_upstream_header_filter(ngx_http_request_t *r)
{
    ngx_http_ai_attempt_t  *a;

    a = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

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

    if (a->status == NGX_HTTP_TOO_MANY_REQUESTS) {
        ngx_http_ai_find_retry_after(r, a);
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
            || ngx_ai_stream_init(&a->stream, r->pool, a->req,
                                  ngx_time())
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        a->stream.model = a->model;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_upstream_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                   size;
    ngx_int_t                rc;
    ngx_buf_t               *b;
    ngx_str_t                out;
    ngx_chain_t             *cl;
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_attempt_t   *a;
    ngx_http_ai_loc_conf_t  *alcf;

    a = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

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
                rc = ngx_ai_sse_feed(&a->sse, b->pos, b->last,
                                     ngx_http_ai_sse_event, a);

                if (rc == NGX_ERROR) {
                    return NGX_ERROR;
                }

                if (rc == NGX_DECLINED && !a->stream.failed) {
                    a->stream.failed = 1;
                    ngx_str_set(&a->stream.error, "the provider sent an "
                                "event larger than the gateway accepts");
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

    if (a->streaming && a->stream.out.len && a->ctx->fusion) {
        /* a fusion's judge writing the answer */
        return ngx_http_ai_fusion_relay(a->ctx, a);
    }

    if (a->streaming && a->stream.out.len) {
        ctx = a->ctx;

        /*
         * The first call with something to say wins the stream: from now
         * on the client hears only it, and the others are stopped.
         */

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

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
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
        a->timed_out = 1;
        ngx_str_set(&a->reason, "gave no answer within the timeout");

    } else {
        ngx_str_set(&a->reason, "stopped: another model answered first");
    }

    if (a->timer.timer_set) {
        ngx_del_timer(&a->timer);
    }

    sr = a->sr;

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
 * A 429's wish: Retry-After in seconds (kept for the client too) or
 * retry-after-ms, as a delay in milliseconds for a retry of this model.
 */

static void
ngx_http_ai_find_retry_after(ngx_http_request_t *r, ngx_http_ai_attempt_t *a)
{
    ngx_int_t         n;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0 || h[i].value.len == 0 || h[i].value.len > 9) {
            continue;
        }

        if (h[i].key.len == sizeof("Retry-After") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Retry-After",
                               sizeof("Retry-After") - 1) == 0)
        {
            n = ngx_atoi(h[i].value.data, h[i].value.len);

            if (n != NGX_ERROR) {
                a->retry_after = h[i].value;

                if (n > NGX_HTTP_AI_MAX_RETRY_AFTER) {
                    /* a provider's wish is passed on, within reason */
                    n = NGX_HTTP_AI_MAX_RETRY_AFTER;
                    ngx_str_set(&a->retry_after, "600");
                }

                if (a->retry_delay == 0) {
                    a->retry_delay = (ngx_msec_t) n * 1000;
                }
            }

        } else if (h[i].key.len == sizeof("retry-after-ms") - 1
                   && ngx_strncasecmp(h[i].key.data,
                                      (u_char *) "retry-after-ms",
                                      sizeof("retry-after-ms") - 1) == 0)
        {
            n = ngx_atoi(h[i].value.data, h[i].value.len);

            if (n != NGX_ERROR) {
                a->retry_delay = (ngx_msec_t)
                                 ngx_min(n, NGX_HTTP_AI_MAX_RETRY_AFTER
                                            * 1000);
            }
        }
    }
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
 * Sends SSE text to the client: the response header first if it is not
 * out yet, then the data with flush, so each event leaves at once.  The
 * text is the gateway's OpenAI chunks: ai_guard's response rules see them
 * first, and a client of the Messages API gets them as Anthropic events.
 */

ngx_int_t
ngx_http_ai_stream_send(ngx_http_ai_ctx_t *ctx, ngx_str_t *data,
    ngx_uint_t last)
{
    ngx_int_t                  rc;
    ngx_str_t                  text;
    ngx_buf_t                 *b;
    ngx_chain_t                out;
    ngx_table_elt_t           *h;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;

    r = ctx->request;
    c = r->connection;

    if (c->error) {
        return NGX_ERROR;
    }

    text = *data;
    data = &text;

    if (ngx_http_ai_guard_stream(r, data, last) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->messages && ngx_http_ai_messages_stream(ctx, data) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!ctx->header_sent) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Cache-Control");
        ngx_str_set(&h->value, "no-cache");

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-Accel-Buffering");
        ngx_str_set(&h->value, "no");

        rc = ngx_http_ai_send_header(r, ctx, NGX_HTTP_OK,
                                     "text/event-stream", -1);

        if (rc == NGX_ERROR || rc > NGX_OK) {
            return NGX_ERROR;
        }

        if (r->header_only) {
            return NGX_OK;
        }
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (data->len) {
        b->start = ngx_pnalloc(r->pool, data->len);
        if (b->start == NULL) {
            return NGX_ERROR;
        }

        b->pos = b->start;
        b->last = ngx_cpymem(b->pos, data->data, data->len);
        b->end = b->last;
        b->temporary = 1;
    }

    b->flush = 1;
    b->last_buf = last;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_output_filter(r, &out);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_AGAIN || c->buffered) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (ngx_handle_write_event(c->write, clcf->send_lowat) != NGX_OK) {
            return NGX_ERROR;
        }

        if (!c->write->ready && !c->write->timer_set) {
            ngx_add_timer(c->write, clcf->send_timeout);
        }
    }

    return rc;
}


/*
 * OpenAI chunks -> Anthropic events for a client of the Messages API.
 * The usage the gateway read from the provider is exact (an Anthropic
 * provider's cache creation tokens included) and known early for some
 * providers, so it is preferred to the chunks' own.
 */

static ngx_int_t
ngx_http_ai_messages_stream(ngx_http_ai_ctx_t *ctx, ngx_str_t *data)
{
    ngx_http_ai_attempt_t     *a;
    ngx_ai_messages_stream_t  *ms;

    ms = ctx->messages_stream;

    if (ms == NULL) {
        ms = ngx_palloc(ctx->request->pool, sizeof(ngx_ai_messages_stream_t));
        if (ms == NULL
            || ngx_ai_messages_stream_init(ms, ctx->request->pool) != NGX_OK)
        {
            return NGX_ERROR;
        }

        ctx->messages_stream = ms;
    }

    a = ctx->winner;

    if (a && !ctx->fusion && a->streaming && a->stream.usage.known) {
        ngx_ai_messages_stream_usage(ms, &a->stream.usage);
    }

    ms->out.len = 0;

    if (ngx_ai_messages_stream_feed(ms, data->data, data->len) != NGX_OK) {
        return NGX_ERROR;
    }

    data->data = ms->out.data;
    data->len = ms->out.len;

    return NGX_OK;
}
