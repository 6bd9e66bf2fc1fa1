
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * A cache hit sent to the client, with no provider call: the stored
 * chat.completion (or embedding list) goes out through the same writers
 * as a provider's answer, so ai_guard's response rules and the client's
 * dialect (Messages, Responses) apply to it as to any answer.  A client
 * that asked for a stream gets it as OpenAI chunks of the stored answer
 * (pieces of its content, its tool calls, the finish, the usage if asked
 * for, then [DONE]), through the dialect's stream converter.  The usage
 * is the stored one; its cost is 0, for nothing was bought.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"
#include "ngx_ai_gateway_cache.h"


static ngx_int_t ngx_http_ai_cache_send_stream(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_ai_cache_record_t *rec);


void
ngx_http_ai_cache_send(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_int_t               rc;
    ngx_str_t               body;
    ngx_ai_usage_t          usage;
    ngx_ai_cache_record_t  *rec;

    rec = ngx_http_ai_cache_hit(r);

    if (rec == NULL) {
        ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the model that answered then, for $ai_model and the metrics */
    ctx->model = rec->model;

    if (ctx->chat.stream && ctx->chat.op == 0) {
        rc = ngx_http_ai_cache_send_stream(r, ctx, rec);
        ngx_http_ai_finalize(r, ctx, rc);
        return;
    }

    body = rec->body;

    ngx_memzero(&usage, sizeof(ngx_ai_usage_t));
    usage.known = 1;
    usage.priced = 1;

    rc = ngx_ai_usage_cost_set(r->pool, &body, &usage);

    if (rc == NGX_OK) {
        rc = ngx_http_ai_send_json(r, ctx, NGX_HTTP_OK, &body);
    }

    ngx_http_ai_finalize(r, ctx, rc);
}


static ngx_int_t
ngx_http_ai_cache_send_stream(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_ai_cache_record_t *rec)
{
    ngx_int_t        rc;
    ngx_str_t        data;
    ngx_ai_stream_t  st;

    if (ngx_ai_stream_init(&st, r->pool, &ctx->chat, ngx_time()) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_ai_cache_replay(&st, &rec->body);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai gateway: a cached answer could not be replayed "
                      "as a stream");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    data.data = st.out.data;
    data.len = st.out.len;

    if (ngx_http_ai_stream_send(ctx, &data, 0) == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_str_set(&data, "data: [DONE]\n\n");

    rc = ngx_http_ai_stream_send(ctx, &data, 1);

    return (rc == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}
