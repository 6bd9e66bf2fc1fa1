
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The edge response cache (ngx_ai_gateway_cache.c, the module
 * ngx_ai_gateway_cache_module) as the core and the observers see it.
 */


#ifndef _NGX_AI_GATEWAY_CACHE_H_INCLUDED_
#define _NGX_AI_GATEWAY_CACHE_H_INCLUDED_


#include "ngx_ai_gateway.h"
#include "ngx_ai_gateway_cache_key.h"


extern ngx_module_t  ngx_ai_gateway_cache_module;


/* ngx_ai_gateway_cache.c */
ngx_int_t ngx_http_ai_cache_lookup(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, void (*done)(ngx_http_request_t *r,
    ngx_int_t rc));
void ngx_http_ai_cache_cancel(ngx_http_request_t *r);
ngx_ai_cache_record_t *ngx_http_ai_cache_hit(ngx_http_request_t *r);
ngx_uint_t ngx_http_ai_cache_count(ngx_http_request_t *r);
void ngx_http_ai_cache_status_json(ngx_http_request_t *r, ngx_ai_jw_t *w);
ngx_int_t ngx_http_ai_cache_prometheus(ngx_http_request_t *r,
    ngx_ai_buf_t *b);

/* ngx_ai_gateway_cache_send.c */
void ngx_http_ai_cache_send(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx);


#endif /* _NGX_AI_GATEWAY_CACHE_H_INCLUDED_ */
