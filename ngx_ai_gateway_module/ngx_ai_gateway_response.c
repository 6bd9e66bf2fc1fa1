
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Everything the client is sent: the response header with X-AI-* and the
 * policies' headers, whole answers and errors as JSON (OpenAI objects, or
 * Anthropic ones for a client of the Messages API), the end of a request
 * that has an answer or none, streams relayed event by event (translated
 * for a Messages client), and nginx's own error pages in an ai_gateway
 * location rewritten as API errors.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


static const char *ngx_http_ai_failure_code(ngx_http_ai_attempt_t *a);
static ngx_int_t ngx_http_ai_finish_stream(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a);
static ngx_int_t ngx_http_ai_dialect_stream(ngx_http_ai_ctx_t *ctx,
    ngx_str_t *data);
static ngx_int_t ngx_http_ai_response_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_response_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_ai_error_page_header(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_error_page_body(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

static ngx_str_t  ngx_http_ai_json_type = ngx_string("application/json");


/* nginx's error pages in ai_gateway locations, as API errors */

ngx_int_t
ngx_http_ai_response_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_response_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ai_response_body_filter;

    return NGX_OK;
}


/* the request is decided: nothing more runs for it */

void
ngx_http_ai_finalize(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_int_t rc)
{
    ctx->finished = 1;
    ngx_http_finalize_request(r, rc);
}


/* the winner's answer to the client, whole or the end of its stream */

void
ngx_http_ai_answer(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a)
{
    ngx_int_t  rc;
    ngx_str_t  body;

    if (r->connection->error) {
        ngx_http_ai_finalize(r, ctx, NGX_ERROR);
        return;
    }

    if (a->streaming) {
        rc = ngx_http_ai_finish_stream(r, ctx, a);

    } else {
        body = a->answer.body;

        /* usage.cost: what the call was charged (OpenRouter's field) */

        rc = ngx_ai_usage_cost_set(r->pool, &body, &a->usage);

        if (rc == NGX_OK) {
            rc = ngx_http_ai_send_json(r, ctx, NGX_HTTP_OK, &body);
        }
    }

    ngx_http_ai_finalize(r, ctx, rc);
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
                ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            ngx_http_ai_finalize(r, ctx, ngx_http_ai_send_error(r, ctx,
                                                                &err));
            return;
        }
    }

    if (ngx_ai_buf_init(&msg, r->pool, 256) != NGX_OK) {
        ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
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
            ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
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
            ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (ctx->refused
        && ((msg.len && ngx_ai_buf_append_str(&msg, "; ") != NGX_OK)
            || ngx_ai_buf_append(&msg, ctx->refused->message.data,
                                 ctx->refused->message.len)
               != NGX_OK))
    {
        ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
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

    ngx_http_ai_finalize(r, ctx, ngx_http_ai_send_error(r, ctx, &err));
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

        if (ctx->attempt->retry_after_ms.len) {
            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                return NGX_ERROR;
            }

            h->hash = 1;
            ngx_str_set(&h->key, "retry-after-ms");
            h->value = ctx->attempt->retry_after_ms;
        }
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

    if (ngx_http_ai_policy_headers(r, ctx) != NGX_OK) {
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

    if (status == NGX_HTTP_OK && ctx->chat.json && ctx->chat.op == 0) {

        /* a chat answer: ai_guard's response rules, then the client's
         * API (embeddings and token counts are sent as they are) */

        answer = *body;
        body = &answer;

        if (ngx_http_ai_policy_text(r, NGX_HTTP_AI_HOOK_ANSWER, body, 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ctx->dialect) {
            rc = ctx->dialect->answer(r->pool, body->data, body->len,
                                      (ctx->winner && !ctx->fusion)
                                      ? &ctx->winner->usage : NULL,
                                      body);
            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_DECLINED) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ai gateway: the answer could not be "
                              "converted to the %V API",
                              &ctx->dialect->name);
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

    if (ngx_http_ai_policy_text(r, NGX_HTTP_AI_HOOK_ERROR, &err->message,
                                0)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ctx->dialect ? ctx->dialect->error(r->pool, err, &body)
                      : ngx_ai_error_render(r->pool, err, &body);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_send_json(r, ctx, err->status, &body);
}


/*
 * Error pages nginx makes itself in an ai_gateway location (413 for a body
 * over client_max_body_size, 500, 503 from limit_req ...) are sent as
 * OpenAI error objects (Anthropic ones on .../messages), so SDKs can read
 * them.
 */

static ngx_int_t
ngx_http_ai_response_header_filter(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r == r->main) {
        rc = ngx_http_ai_error_page_header(r);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_ai_response_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_http_ai_ctx_t  *ctx;

    if (r == r->main) {
        ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

        if (ctx && ctx->rewrite_error) {
            return ngx_http_ai_error_page_body(r, in);
        }
    }

    return ngx_http_next_body_filter(r, in);
}


static ngx_int_t
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

        ctx->dialect = ngx_ai_route_find(r->uri.data, r->uri.len)->dialect;
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

    if ((ctx->dialect ? ctx->dialect->error(r->pool, &err, &body)
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

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
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

    return ngx_http_next_body_filter(r, &out);
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

    if (ngx_http_ai_policy_text(r, NGX_HTTP_AI_HOOK_STREAM, data, last)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ctx->dialect && ngx_http_ai_dialect_stream(ctx, data) != NGX_OK) {
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
ngx_http_ai_dialect_stream(ngx_http_ai_ctx_t *ctx, ngx_str_t *data)
{
    ngx_http_ai_attempt_t   *a;
    ngx_http_ai_loc_conf_t  *alcf;

    if (ctx->dialect_stream == NULL) {
        alcf = ngx_http_get_module_loc_conf(ctx->request,
                                            ngx_ai_gateway_module);

        /* the estimate is the one admission made: 4 bytes a token */

        ctx->dialect_stream = ctx->dialect->stream_create(ctx->request->pool,
                                  ngx_max(ctx->chat.prompt_bytes / 4, 1),
                                  alcf->exact_input_tokens);
        if (ctx->dialect_stream == NULL) {
            return NGX_ERROR;
        }
    }

    a = ctx->winner;

    if (a && !ctx->fusion && a->streaming && a->stream.usage.known) {
        ctx->dialect->stream_usage(ctx->dialect_stream, &a->stream.usage);
    }

    return ctx->dialect->stream_feed(ctx->dialect_stream, data->data,
                                     data->len, data);
}


/*
 * The client's connection is writable again while a stream is relayed:
 * what it lagged on is pushed.  NGX_ERROR: the request is finalized.
 */

ngx_int_t
ngx_http_ai_stream_flush(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_connection_t          *c;
    ngx_http_ai_ctx_t         *ctx;
    ngx_http_core_loc_conf_t  *clcf;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (!ctx->header_sent || !(c->buffered || r->buffered)) {
        return NGX_OK;
    }

    rc = ngx_http_output_filter(r, NULL);

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (rc == NGX_ERROR
        || ngx_handle_write_event(c->write, clcf->send_lowat) != NGX_OK)
    {
        ngx_http_ai_finalize(r, ctx, NGX_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}
