
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * A Redis client on nginx's events (ngx_ai_gateway_redis.c): one
 * connection per worker and server, commands pipelined, each answered to
 * its handler or failed with the connection.  It knows nothing of what
 * it is used for: its owner (ngx_ai_gateway_sync.c) sets the scripts to
 * load on each connection and the handlers told when it is ready, down,
 * or the worker quits.
 */


#ifndef _NGX_AI_GATEWAY_REDIS_H_INCLUDED_
#define _NGX_AI_GATEWAY_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <hiredis/hiredis.h>


#define NGX_HTTP_AI_REDIS_BACKOFF_MIN    100
#define NGX_HTTP_AI_REDIS_BACKOFF_MAX    10000
#define NGX_HTTP_AI_REDIS_LOG_EVERY      60       /* seconds */

/* a connection's state, in each worker */
#define NGX_HTTP_AI_REDIS_DOWN           0
#define NGX_HTTP_AI_REDIS_CONNECTING     1
#define NGX_HTTP_AI_REDIS_HANDSHAKE      2
#define NGX_HTTP_AI_REDIS_READY          3


typedef struct ngx_http_ai_redis_s  ngx_http_ai_redis_t;

/* a command's answer; reply NULL: none, the connection failed */
typedef void (*ngx_http_ai_redis_handler_pt)(ngx_http_ai_redis_t *s,
    redisReply *reply, void *data);
typedef void (*ngx_http_ai_redis_event_pt)(ngx_http_ai_redis_t *s);


/* a script loaded on each connection (SCRIPT LOAD), for EVALSHA */
typedef struct {
    ngx_str_t                       text;
    u_char                          sha[40];      /* as Redis answered */
} ngx_http_ai_redis_script_t;


/* a Redis server: its configuration, and its connection in this worker */
struct ngx_http_ai_redis_s {
    ngx_str_t                       name;         /* redis://HOST:PORT/DB */
    ngx_addr_t                      addr;
    ngx_uint_t                      db;
    ngx_str_t                       user;
    ngx_str_t                       password;
    ngx_msec_t                      timeout;      /* connect, handshake */
    ngx_http_ai_redis_script_t     *scripts;
    ngx_uint_t                      nscripts;

    ngx_http_ai_redis_event_pt      ready;        /* the handshake done */
    ngx_http_ai_redis_event_pt      down;         /* it failed */
    ngx_http_ai_redis_event_pt      quit;         /* the worker quits
                                                     (primary only) */
    void                           *data;         /* the owner's */

    ngx_peer_connection_t           peer;
    ngx_connection_t               *c;
    ngx_uint_t                      state;
    redisReader                    *reader;
    ngx_queue_t                     cmds;         /* sent, oldest first */
    ngx_uint_t                      hello;        /* answers awaited */
    u_char                         *out;          /* to send */
    size_t                          out_pos;
    size_t                          out_len;
    size_t                          out_size;
    ngx_event_t                     reconnect;
    ngx_msec_t                      backoff;
    time_t                          down_since;   /* 0: not down */
    time_t                          logged;       /* "unreachable" said */
    ngx_uint_t                      failures;     /* since it was said */
    ngx_log_t                       log;
    u_char                          error[128];
    size_t                          error_len;
    unsigned                        exiting:1;
    unsigned                        started:1;
    unsigned                        said_down:1;
    unsigned                        primary:1;    /* the worker that says
                                                     its failures, and is
                                                     told when it quits */
};


ngx_int_t ngx_http_ai_redis_parse_url(ngx_conf_t *cf, ngx_http_ai_redis_t *s,
    ngx_str_t *url);
ngx_uint_t ngx_http_ai_redis_same(ngx_http_ai_redis_t *a,
    ngx_http_ai_redis_t *b);
ngx_int_t ngx_http_ai_redis_init(void);
void ngx_http_ai_redis_start(ngx_http_ai_redis_t *s, ngx_log_t *log);
void ngx_http_ai_redis_stop(ngx_http_ai_redis_t *s);
ngx_int_t ngx_http_ai_redis_command(ngx_http_ai_redis_t *s,
    ngx_array_t *args, ngx_http_ai_redis_handler_pt handler, void *data,
    ngx_msec_t timeout);
void ngx_http_ai_redis_send(ngx_http_ai_redis_t *s);
ngx_int_t ngx_http_ai_redis_arg(ngx_array_t *args, u_char *data,
    size_t len);
ngx_int_t ngx_http_ai_redis_arg_int(ngx_array_t *args, int64_t n);
ngx_int_t ngx_http_ai_redis_number(redisReply *r, int64_t *n);


#endif /* _NGX_AI_GATEWAY_REDIS_H_INCLUDED_ */
