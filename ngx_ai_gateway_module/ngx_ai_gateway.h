
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The nginx side of the gateway: configuration, per-request state, and the
 * calls between the handler (client side) and the upstream part (provider
 * subrequests and their filters).
 */


#ifndef _NGX_AI_GATEWAY_H_INCLUDED_
#define _NGX_AI_GATEWAY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_pure.h"


#define NGX_HTTP_AI_MAX_KEY_LEN     4096


typedef struct {
    ngx_str_t                   name;
    ngx_ai_translator_t        *translator;
    ngx_str_t                   pass;        /* internal location prefix */
    ngx_str_t                   key;         /* env:, file: or literal */
    ngx_http_complex_value_t   *key_value;   /* key=$variable */
} ngx_http_ai_provider_t;


typedef struct {
    ngx_str_t                   model;       /* "provider/model" */
    ngx_http_ai_provider_t     *provider;
    uint64_t                    input;       /* nano-USD per 1M tokens */
    uint64_t                    output;
    ngx_str_t                   input_text;  /* as configured, for /models */
    ngx_str_t                   output_text;
} ngx_http_ai_price_t;


typedef struct {
    ngx_array_t                 providers;   /* ngx_http_ai_provider_t */
    ngx_array_t                 prices;      /* ngx_http_ai_price_t */
} ngx_http_ai_main_conf_t;


typedef struct {
    ngx_flag_t                  gateway;
    ngx_int_t                   default_max_tokens;
    size_t                      max_response_size;
} ngx_http_ai_loc_conf_t;


typedef struct ngx_http_ai_ctx_s  ngx_http_ai_ctx_t;


/* how one provider call ended */
typedef enum {
    NGX_HTTP_AI_RUNNING = 0,
    NGX_HTTP_AI_OK,           /* a usable answer */
    NGX_HTTP_AI_ERROR,        /* connect failure, reset, dropped, cut off */
    NGX_HTTP_AI_TIMEOUT,
    NGX_HTTP_AI_429,
    NGX_HTTP_AI_5XX,
    NGX_HTTP_AI_4XX,
    NGX_HTTP_AI_INVALID,      /* a 2xx that does not parse or has no choice */
    NGX_HTTP_AI_ABORTED       /* stopped by the gateway: a hedge loser */
} ngx_http_ai_outcome_e;


/* one call to one provider: a background subrequest */
typedef struct {
    ngx_http_ai_ctx_t          *ctx;
    ngx_http_request_t         *sr;
    ngx_http_ai_provider_t     *provider;
    ngx_str_t                   model;       /* "provider/model" */
    ngx_int_t                   rc;          /* subrequest result */
    ngx_uint_t                  status;      /* provider's HTTP status */
    ngx_ai_buf_t                body;        /* whole answer, not streamed */
    ngx_str_t                   retry_after; /* of a 429, in seconds */
    ngx_ai_sse_parser_t         sse;
    ngx_ai_stream_t             stream;
    ngx_msec_t                  start;
    ngx_http_ai_outcome_e       outcome;
    ngx_str_t                   reason;      /* why it failed, for errors */
    ngx_ai_usage_t              usage;       /* as the provider reported */
    uint64_t                    cost;        /* nano-USD, set when charged */
    unsigned                    done:1;
    unsigned                    aborted:1;   /* usage, if any, is estimated */
    unsigned                    charged:1;
    unsigned                    header:1;    /* the provider sent a header */
    unsigned                    complete:1;  /* its answer ended normally */
    unsigned                    streaming:1; /* its events are translated */
    unsigned                    too_big:1;
} ngx_http_ai_attempt_t;


struct ngx_http_ai_ctx_s {
    ngx_http_request_t         *request;
    ngx_ai_chat_request_t       chat;
    ngx_http_ai_attempt_t      *attempt;
    ngx_uint_t                  attempts;
    uint64_t                    cost;        /* nano-USD, every call */
    ngx_ai_usage_t              usage;       /* summed over every call */
    ngx_str_t                   model;       /* the model that answered */
    ngx_str_t                   error_page;  /* nginx's error, as JSON */
    unsigned                    header_sent:1;   /* to the client */
    unsigned                    own_response:1;
    unsigned                    rewrite_error:1;
    unsigned                    finished:1;
};


extern ngx_module_t  ngx_ai_gateway_module;


/* ngx_ai_gateway_limits: rate limits, the cost ledger and budgets */
ngx_int_t ngx_http_ai_limits_admit(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_ai_error_t *err);
void ngx_http_ai_limits_charge(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a);
ngx_int_t ngx_http_ai_limits_headers(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);

/* ngx_ai_gateway_module.c */
ngx_http_ai_provider_t *ngx_http_ai_find_provider(
    ngx_http_ai_main_conf_t *amcf, ngx_str_t *name);
ngx_http_ai_price_t *ngx_http_ai_find_price(ngx_http_ai_main_conf_t *amcf,
    ngx_str_t *model);
ngx_int_t ngx_http_ai_provider_key_value(ngx_http_request_t *r,
    ngx_http_ai_provider_t *p, ngx_str_t *key);
ngx_int_t ngx_http_ai_next_header_filter(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_next_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);

/* ngx_ai_gateway_handler.c */
ngx_int_t ngx_http_ai_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_send_header(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_uint_t status, const char *type,
    off_t length);
ngx_int_t ngx_http_ai_error_page_header(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_error_page_body(ngx_http_request_t *r,
    ngx_chain_t *in);

/* ngx_ai_gateway_upstream.c */
ngx_int_t ngx_http_ai_attempt_start(ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_provider_t *provider);
ngx_int_t ngx_http_ai_upstream_header_filter(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_upstream_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
ngx_int_t ngx_http_ai_stream_send(ngx_http_ai_ctx_t *ctx, ngx_str_t *data,
    ngx_uint_t last);


#endif /* _NGX_AI_GATEWAY_H_INCLUDED_ */
