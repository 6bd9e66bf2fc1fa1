
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The client side: the content handler of an ai_gateway location.  It
 * reads and validates the request, starts the provider call, and when the
 * call is over sends the answer, or an OpenAI error object, to the client.
 * A client of the Messages API (POST .../messages) is served the same way:
 * its request is converted to an OpenAI one first, and what it is sent is
 * converted back on the way out (here, and in ngx_http_ai_stream_send).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


static ngx_int_t ngx_http_ai_ends_with(ngx_str_t *s, const char *suffix);
static ngx_int_t ngx_http_ai_not_allowed(ngx_http_request_t *r,
    const char *allow, const char *msg, ngx_ai_error_t *err);
static void ngx_http_ai_body_handler(ngx_http_request_t *r);
static void ngx_http_ai_admitted(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_int_t rc, ngx_ai_error_t *err);
static ngx_int_t ngx_http_ai_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
static void ngx_http_ai_wev_handler(ngx_http_request_t *r);
static void ngx_http_ai_check_broken(ngx_http_request_t *r);
static void ngx_http_ai_client_gone(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_err_t err);
static ngx_int_t ngx_http_ai_finish_stream(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a);
static const char *ngx_http_ai_failure_code(ngx_http_ai_attempt_t *a);
static ngx_int_t ngx_http_ai_models(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);


static ngx_str_t  ngx_http_ai_json_type = ngx_string("application/json");


ngx_int_t
ngx_http_ai_handler(ngx_http_request_t *r)
{
    ngx_int_t           rc;
    ngx_ai_error_t      err;
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

    ctx->messages = ngx_http_ai_ends_with(&r->uri, "/messages");

    if (ctx->messages || ngx_http_ai_ends_with(&r->uri, "/chat/completions")) {
        if (r->method != NGX_HTTP_POST) {
            if (ngx_http_ai_not_allowed(r, "POST", ctx->messages
                                        ? "messages takes POST"
                                        : "chat/completions takes POST",
                                        &err)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            goto error;
        }

        rc = ngx_http_read_client_request_body(r, ngx_http_ai_body_handler);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    if (ngx_http_ai_ends_with(&r->uri, "/models")) {

        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            if (ngx_http_ai_not_allowed(r, "GET, HEAD", "models takes GET",
                                        &err)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            goto error;
        }

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_ai_models(r, ctx);
    }

    ngx_ai_error_set(&err, NGX_HTTP_NOT_FOUND, "invalid_request_error", NULL,
                     "unknown_url", "Unknown endpoint: this gateway serves "
                     "chat/completions, messages and models");

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


static ngx_int_t
ngx_http_ai_ends_with(ngx_str_t *s, const char *suffix)
{
    size_t  n;

    n = ngx_strlen(suffix);

    return s->len >= n
           && ngx_strncmp(s->data + s->len - n, suffix, n) == 0;
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

    /* a Messages request is served as the OpenAI request it converts to */

    rc = ctx->messages ? ngx_ai_messages_request(r->pool, body.data,
                                                 body.len, &body, &err)
                       : NGX_OK;

    if (rc == NGX_OK) {
        rc = ngx_ai_chat_request_parse(r->pool, body.data, body.len,
                                       &ctx->chat, &err);
    }

    /* ai_guard: deny or redact before any provider sees the text */

    if (rc == NGX_OK) {
        rc = ngx_http_ai_guard_request(r, &ctx->chat, &err);
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

    if (alcf->pool) {
        rc = ngx_http_ai_fusion_plan(r, ctx, alcf->pool, fusion);

    } else {
        rc = ngx_http_ai_plan(r, ctx, &err);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_ai_limits_admit(r, ctx, &err);
    }

    if (rc == NGX_AGAIN) {
        /* a strict limit: Redis decides, ngx_http_ai_admission_done() */
        return;
    }

    ngx_http_ai_admitted(r, ctx, rc, &err);
}


static void
ngx_http_ai_admitted(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_int_t rc, ngx_ai_error_t *err)
{
    ngx_http_ai_loc_conf_t  *alcf;

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_ai_send_error(r, ctx, err));
        return;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    r->write_event_handler = ngx_http_ai_wev_handler;

    /* a client that hangs up while the providers work stops them */
    r->read_event_handler = ngx_http_ai_check_broken;

    if (alcf->pool && ngx_http_ai_fusion_wanted(r, ctx, alcf->pool)) {
        ngx_http_ai_fusion_start(r, ctx, alcf->pool);
        return;
    }

    ngx_http_ai_run(r, ctx);
}


/* admission decided by Redis, out of the request's own events */

void
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
    ngx_int_t                  rc;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_http_ai_ctx_t         *ctx;
    ngx_http_core_loc_conf_t  *clcf;

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
        ctx->finished = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (ctx->header_sent && (c->buffered || r->buffered)) {

        /* a stream is relayed: push what the client lagged on */

        rc = ngx_http_output_filter(r, NULL);

        if (rc == NGX_ERROR) {
            ctx->finished = 1;
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ctx->finished = 1;
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }
    }

    if (ctx->fusion) {
        ngx_http_ai_fusion_run(r, ctx);
        return;
    }

    ngx_http_ai_run(r, ctx);
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

    ctx->finished = 1;
    c->error = 1;

    /* the calls' upstream connections close with the request; the log
     * phase charges them as stopped */

    ngx_http_ai_stop_timers(ctx);

    ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);
}


/*
 * How a finished call ended: a->outcome, a->reason and, for a usable
 * answer, a->usage and the translated a->answer.
 */

ngx_int_t
ngx_http_ai_judge_attempt(ngx_http_request_t *r, ngx_http_ai_attempt_t *a)
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

    rc = a->provider->translator->response(r->pool, a->req,
                                           a->body.data, a->body.len,
                                           &a->answer, &err);
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


/* the winner's answer to the client, whole or the end of its stream */

void
ngx_http_ai_answer(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a)
{
    ngx_int_t  rc;

    ctx->finished = 1;
    ctx->model = a->model;

    if (r->connection->error) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (a->streaming) {
        rc = ngx_http_ai_finish_stream(r, ctx, a);

    } else {
        rc = ngx_http_ai_send_json(r, ctx, NGX_HTTP_OK, &a->answer.body);
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * Nothing usable came back.  One call that the provider refused: its own
 * status and message.  A call a limit did not let the request make: the
 * limit's refusal (429, 402).  Otherwise 502 (504 when every call timed
 * out) with every call's model and reason.
 */

void
ngx_http_ai_fail(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_str_t               *skipped;
    ngx_uint_t               i, timeouts;
    ngx_ai_buf_t             msg;
    ngx_ai_error_t           err;
    ngx_http_ai_attempt_t  **calls, *a;

    ctx->finished = 1;

    calls = ctx->calls.elts;
    skipped = ctx->skipped.elts;

    if (ctx->calls.nelts == 1 && ctx->skipped.nelts == 0
        && ctx->refused == NULL)
    {
        a = calls[0];

        if (a->header && (a->status < 200 || a->status >= 300)) {
            a->provider->translator->error(r->pool, a->status, a->body.data,
                                           a->body.len, &err);

            if (ngx_http_ai_attempt_scrub(a, &err.message) != NGX_OK) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            ngx_http_finalize_request(r, ngx_http_ai_send_error(r, ctx,
                                                                &err));
            return;
        }
    }

    if (ngx_ai_buf_init(&msg, r->pool, 256) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    timeouts = 0;

    for (i = 0; i < ctx->calls.nelts; i++) {
        a = calls[i];

        if (a->outcome == NGX_HTTP_AI_TIMEOUT) {
            timeouts++;
        }

        if ((i && ngx_ai_buf_append_str(&msg, "; ") != NGX_OK)
            || ngx_ai_buf_append(&msg, a->model.data, a->model.len) != NGX_OK
            || ngx_ai_buf_append_str(&msg, ": ") != NGX_OK
            || ngx_ai_buf_append(&msg, a->reason.data, a->reason.len)
               != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    for (i = 0; i < ctx->skipped.nelts; i++) {
        if ((msg.len && ngx_ai_buf_append_str(&msg, "; ") != NGX_OK)
            || ngx_ai_buf_append(&msg, skipped[i].data, skipped[i].len)
               != NGX_OK
            || ngx_ai_buf_append_str(&msg, ": skipped, its circuit is open")
               != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (ctx->refused
        && ((msg.len && ngx_ai_buf_append_str(&msg, "; ") != NGX_OK)
            || ngx_ai_buf_append(&msg, ctx->refused->message.data,
                                 ctx->refused->message.len)
               != NGX_OK))
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->refused
        && ctx->refused->status != NGX_HTTP_BAD_GATEWAY)
    {
        /* a limit's refusal, with the calls that were made */
        err = *ctx->refused;

    } else if (timeouts && timeouts == ctx->calls.nelts) {
        ngx_ai_error_set(&err, NGX_HTTP_GATEWAY_TIME_OUT, "upstream_error",
                         NULL, "provider_timeout", "");

    } else if (ctx->calls.nelts == 1 && ctx->skipped.nelts == 0) {
        ngx_ai_error_set(&err, NGX_HTTP_BAD_GATEWAY, "upstream_error", NULL,
                         ngx_http_ai_failure_code(calls[0]), "");

    } else {
        ngx_ai_error_set(&err, NGX_HTTP_BAD_GATEWAY, "upstream_error", NULL,
                         ctx->calls.nelts ? "all_providers_failed"
                                          : "all_circuits_open", "");
    }

    err.message.data = msg.data;
    err.message.len = msg.len;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ai gateway: no answer: %V", &err.message);

    ngx_http_finalize_request(r, ngx_http_ai_send_error(r, ctx, &err));
}


static const char *
ngx_http_ai_failure_code(ngx_http_ai_attempt_t *a)
{
    if (a->outcome == NGX_HTTP_AI_TIMEOUT) {
        return "provider_timeout";
    }

    if (!a->header) {
        return "provider_unreachable";
    }

    if (a->too_big) {
        return "response_too_large";
    }

    if (a->streaming) {
        return a->stream.failed ? "stream_error" : "stream_incomplete";
    }

    return (a->outcome == NGX_HTTP_AI_INVALID) ? "invalid_response"
                                               : "response_incomplete";
}


/*
 * The end of a relayed stream: "data: [DONE]" after a whole answer; after
 * a broken one an error event and no [DONE], so that no client takes a
 * cut answer for a whole one.  Nothing sent yet: a plain error answer.
 */

static ngx_int_t
ngx_http_ai_finish_stream(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a)
{
    ngx_str_t       tail, json;
    ngx_ai_buf_t    out;
    ngx_ai_error_t  err;

    if (a->outcome == NGX_HTTP_AI_OK) {
        ngx_str_set(&tail, "data: [DONE]\n\n");
        return ngx_http_ai_stream_send(ctx, &tail, 1);
    }

    if (a->stream.failed) {
        ngx_ai_error_set(&err, NGX_HTTP_BAD_GATEWAY, "upstream_error", NULL,
                         "stream_error", "");
        err.message = a->stream.error;

    } else if (a->outcome == NGX_HTTP_AI_TIMEOUT
               || a->rc == NGX_HTTP_GATEWAY_TIME_OUT)
    {
        ngx_ai_error_set(&err, NGX_HTTP_GATEWAY_TIME_OUT, "upstream_error",
                         NULL, "provider_timeout",
                         "the provider timed out in the middle of the "
                         "stream");

    } else {
        ngx_ai_error_set(&err, NGX_HTTP_BAD_GATEWAY, "upstream_error", NULL,
                         "stream_incomplete",
                         "the provider's stream ended before the answer "
                         "was complete");
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ai gateway: %V: stream failed: %V", &a->model,
                  &err.message);

    if (ngx_ai_error_render(r->pool, &err, &json) != NGX_OK
        || ngx_ai_buf_init(&out, r->pool, json.len + 8) != NGX_OK
        || ngx_ai_sse_data_event(&out, &json) != NGX_OK)
    {
        return NGX_ERROR;
    }

    tail.data = out.data;
    tail.len = out.len;

    return ngx_http_ai_stream_send(ctx, &tail, 1);
}


ngx_int_t
ngx_http_ai_send_header(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_uint_t status, const char *type, off_t length)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    if (status == NGX_HTTP_TOO_MANY_REQUESTS && ctx->attempt
        && ctx->attempt->retry_after.len)
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        h->value = ctx->attempt->retry_after;
    }

    ctx->own_response = 1;
    ctx->header_sent = 1;

    if (ctx->start) {
        ctx->ttft = ngx_current_msec - ctx->start;
    }

    r->headers_out.status = status;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = length;

    if (ngx_http_ai_limits_headers(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->attempt) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-AI-Model");
        h->value = ctx->model.len ? ctx->model : ctx->attempt->model;

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-AI-Attempts");
        h->value.data = p;
        h->value.len = ngx_sprintf(p, "%ui", ctx->attempts) - p;
    }

    return ngx_http_send_header(r);
}


ngx_int_t
ngx_http_ai_send_json(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_str_t     answer;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (status == NGX_HTTP_OK && ctx->chat.json) {

        /* a chat answer: ai_guard's response rules, then the client's
         * API */

        answer = *body;
        body = &answer;

        if (ngx_http_ai_guard_answer(r, body) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ctx->messages) {
            rc = ngx_ai_messages_response(r->pool, body->data, body->len,
                                          (ctx->winner && !ctx->fusion)
                                          ? &ctx->winner->usage : NULL,
                                          body);
            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_DECLINED) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ai gateway: the answer could not be "
                              "converted to a message");
                return NGX_ERROR;
            }
        }
    }

    rc = ngx_http_ai_send_header(r, ctx, status,
                                 (char *) ngx_http_ai_json_type.data,
                                 body->len);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = body->len ? 1 : 0;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_ai_send_error(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_ai_error_t *err)
{
    ngx_int_t  rc;
    ngx_str_t  body;

    /* ai_guard: what a provider echoed in its error, too */

    if (ngx_http_ai_guard_error(r, &err->message) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ctx->messages ? ngx_ai_messages_error(r->pool, err, &body)
                       : ngx_ai_error_render(r->pool, err, &body);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_send_json(r, ctx, err->status, &body);
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

        if (price[i].family) {
            /* a price for many names, not a model */
            continue;
        }

        if ((n++ && ngx_ai_buf_append_str(&b, ",") != NGX_OK)
            || ngx_ai_buf_append_str(&b, "{\"id\":") != NGX_OK
            || ngx_ai_buf_append_json_string(&b, price[i].model.data,
                                             price[i].model.len)
               != NGX_OK
            || ngx_ai_buf_append_str(&b, ",\"object\":\"model\","
                                     "\"created\":0,\"owned_by\":")
               != NGX_OK
            || ngx_ai_buf_append_json_string(&b,
                                             price[i].provider->name.data,
                                             price[i].provider->name.len)
               != NGX_OK
            || ngx_ai_buf_append_str(&b, ",\"pricing\":"
                                     "{\"input_usd_per_1m\":") != NGX_OK
            || ngx_ai_buf_append_json_string(&b, price[i].input_text.data,
                                             price[i].input_text.len)
               != NGX_OK
            || ngx_ai_buf_append_str(&b, ",\"output_usd_per_1m\":")
               != NGX_OK
            || ngx_ai_buf_append_json_string(&b, price[i].output_text.data,
                                             price[i].output_text.len)
               != NGX_OK
            || ngx_ai_buf_append_str(&b, "}}") != NGX_OK)
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


/*
 * Error pages nginx makes itself in an ai_gateway location (413 for a body
 * over client_max_body_size, 500, 503 from limit_req ...) are sent as
 * OpenAI error objects (Anthropic ones on .../messages), so SDKs can read
 * them.
 */

ngx_int_t
ngx_http_ai_error_page_header(ngx_http_request_t *r)
{
    ngx_str_t                body;
    ngx_ai_error_t           err;
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_loc_conf_t  *alcf;

    if (r->err_status < NGX_HTTP_BAD_REQUEST) {
        return NGX_DECLINED;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    if (alcf == NULL || !alcf->gateway) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ctx->request = r;
        ngx_http_set_ctx(r, ctx, ngx_ai_gateway_module);

        /* refused before the handler ran (413 by Content-Length) */

        ctx->messages = ngx_http_ai_ends_with(&r->uri, "/messages");
    }

    if (ctx->own_response || ctx->rewrite_error) {
        return NGX_DECLINED;
    }

    switch (r->err_status) {

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        ngx_ai_error_set(&err, r->err_status, "invalid_request_error", NULL,
                         "request_too_large", "The request body is larger "
                         "than client_max_body_size allows.");
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
    case NGX_HTTP_TOO_MANY_REQUESTS:
        ngx_ai_error_set(&err, r->err_status, "rate_limit_exceeded", NULL,
                         "rate_limit_exceeded", "Too many requests.");
        break;

    default:
        ngx_ai_error_set(&err, r->err_status,
                         r->err_status >= NGX_HTTP_INTERNAL_SERVER_ERROR
                         ? "api_error" : "invalid_request_error", NULL, NULL,
                         r->err_status >= NGX_HTTP_INTERNAL_SERVER_ERROR
                         ? "The gateway failed to handle the request."
                         : "The request was refused.");
    }

    if ((ctx->messages ? ngx_ai_messages_error(r->pool, &err, &body)
                       : ngx_ai_error_render(r->pool, &err, &body))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->rewrite_error = 1;
    ctx->error_page = body;

    r->headers_out.content_type_len = ngx_http_ai_json_type.len;
    r->headers_out.content_type = ngx_http_ai_json_type;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return ngx_http_ai_next_header_filter(r);
}


ngx_int_t
ngx_http_ai_error_page_body(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_uint_t          last;
    ngx_buf_t          *b;
    ngx_chain_t        *cl, out;
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            last = 1;
        }

        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (!last) {
        return NGX_OK;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->error_page.data;
    b->last = ctx->error_page.data + ctx->error_page.len;
    b->memory = 1;
    b->last_buf = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_ai_next_body_filter(r, &out);
}
