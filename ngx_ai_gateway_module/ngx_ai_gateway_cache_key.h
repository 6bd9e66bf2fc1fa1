
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The pure parts of the edge response cache (ngx_ai_gateway_cache_key.c):
 * the canonical form of a request and its SHA-256 key, the record stored
 * in a cache file, a streamed answer put back together from the gateway's
 * own OpenAI chunks, and a stored answer replayed as chunks.
 */


#ifndef _NGX_AI_GATEWAY_CACHE_KEY_H_INCLUDED_
#define _NGX_AI_GATEWAY_CACHE_KEY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define NGX_AI_CACHE_KEY_HEX        64       /* SHA-256, hex */
#define NGX_AI_CACHE_MAX_MODEL      256
#define NGX_AI_CACHE_MAX_TOOLS      16       /* tool calls of a stream */
#define NGX_AI_CACHE_PIECE          64       /* bytes of a replayed delta */


/* what the canonical form found out about sampling */
typedef struct {
    unsigned                    sampled:1;   /* temperature absent (the
                                                providers' default is 1)
                                                or > 0 */
} ngx_ai_cache_canon_t;


/* one cache file's record, after nginx's own header and key */
typedef struct {
    time_t                      created;
    uint64_t                    input_tokens;
    uint64_t                    output_tokens;
    uint64_t                    cost;        /* nano-USD the answer cost */
    ngx_str_t                   model;       /* that answered */
    ngx_str_t                   body;        /* canonical chat.completion,
                                                or the embedding list */
} ngx_ai_cache_record_t;


typedef struct {
    ngx_str_t                   id;
    ngx_str_t                   name;
    ngx_ai_buf_t                args;
} ngx_ai_cache_tool_t;


/* a stream the gateway relayed, put back together */
typedef struct {
    ngx_pool_t                 *pool;
    ngx_pool_t                 *scratch;
    ngx_ai_buf_t                line;        /* a partial line */
    ngx_ai_buf_t                content;
    ngx_str_t                   id;
    ngx_str_t                   model;
    ngx_str_t                   finish;
    time_t                      created;
    ngx_ai_usage_t              usage;
    ngx_ai_cache_tool_t         tools[NGX_AI_CACHE_MAX_TOOLS];
    ngx_uint_t                  ntools;
    size_t                      max;         /* bytes kept at most */
    unsigned                    done:1;      /* [DONE] seen */
    unsigned                    failed:1;    /* an error event, or more
                                                than can be kept */
    unsigned                    content_seen:1;
} ngx_ai_cache_chunks_t;


ngx_int_t ngx_ai_cache_canon(ngx_pool_t *pool, cJSON *request,
    ngx_ai_buf_t *out, ngx_ai_cache_canon_t *info);
ngx_int_t ngx_ai_cache_key(ngx_pool_t *pool, ngx_str_t *parts,
    ngx_uint_t n, u_char *hex);
ngx_int_t ngx_ai_cache_record_encode(ngx_pool_t *pool,
    ngx_ai_cache_record_t *rec, ngx_str_t *out);
ngx_int_t ngx_ai_cache_record_decode(u_char *p, size_t len,
    ngx_ai_cache_record_t *rec);
ngx_int_t ngx_ai_cache_answer_ok(ngx_pool_t *pool, ngx_str_t *body);
ngx_int_t ngx_ai_cache_chunks_init(ngx_ai_cache_chunks_t *ch,
    ngx_pool_t *pool, size_t max);
ngx_int_t ngx_ai_cache_chunks_feed(ngx_ai_cache_chunks_t *ch, u_char *p,
    size_t len);
ngx_int_t ngx_ai_cache_chunks_answer(ngx_ai_cache_chunks_t *ch,
    ngx_ai_usage_t *usage, ngx_str_t *out);
ngx_int_t ngx_ai_cache_replay(ngx_ai_stream_t *st, ngx_str_t *body);


#endif /* _NGX_AI_GATEWAY_CACHE_KEY_H_INCLUDED_ */
