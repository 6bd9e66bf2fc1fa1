
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ai_guard's rules and per-request state, shared by
 * ngx_ai_gateway_guard.c (configuration, answers, streams, errors),
 * ngx_ai_gateway_guard_request.c (the request walk) and
 * ngx_ai_gateway_guard_match.c (matching, below both).
 */


#ifndef _NGX_AI_GATEWAY_GUARD_H_INCLUDED_
#define _NGX_AI_GATEWAY_GUARD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


#if !(NGX_PCRE)
#error "ai_guard needs nginx built with PCRE (--with-pcre)"
#endif


#define NGX_HTTP_AI_GUARD_DENY       1
#define NGX_HTTP_AI_GUARD_REDACT     2

#define NGX_HTTP_AI_GUARD_REQUEST    1
#define NGX_HTTP_AI_GUARD_RESPONSE   2

#define NGX_HTTP_AI_GUARD_MAX        256     /* rules counted in the zone */
#define NGX_HTTP_AI_GUARD_NAME_LEN   64
#define NGX_HTTP_AI_GUARD_ZONE_SIZE  (64 * 1024)

/*
 * A streamed answer is sent with its last bytes held back, so that a
 * match split across two deltas is still caught: at least this many, and
 * every match that reaches the end of what has come so far.
 */
#define NGX_HTTP_AI_GUARD_WINDOW     64

/* ... but never more than this: a match that goes on and on is released */
#define NGX_HTTP_AI_GUARD_MAX_HOLD   4096


/* one rule's counts, in shared memory */
typedef struct {
    u_char                          name[NGX_HTTP_AI_GUARD_NAME_LEN];
    size_t                          len;
    ngx_uint_t                      action;
    ngx_atomic_t                    matches;
    ngx_atomic_t                    requests;
} ngx_http_ai_guard_counter_t;


typedef struct {
    ngx_uint_t                      n;
    ngx_http_ai_guard_counter_t     counters[NGX_HTTP_AI_GUARD_MAX];
} ngx_http_ai_guard_sh_t;


/* a rule as counted: one per distinct name and action */
typedef struct {
    ngx_str_t                       name;
    ngx_uint_t                      action;
    ngx_http_ai_guard_counter_t    *counter;    /* NULL: zone full */
} ngx_http_ai_guard_slot_t;


typedef struct {
    ngx_str_t                       name;
    ngx_regex_t                    *regex;
    ngx_uint_t                      action;
    ngx_uint_t                      scope;
    ngx_uint_t                      luhn;
    ngx_str_t                       replacement;   /* [REDACTED:NAME] */
    ngx_http_ai_guard_slot_t       *slot;
} ngx_http_ai_guard_rule_t;


/* the rules of one configuration level */
typedef struct {
    ngx_array_t                     rules;      /* ngx_http_ai_guard_rule_t */
    ngx_uint_t                      scopes;     /* REQUEST|RESPONSE used */
    ngx_uint_t                      redact;     /* scopes of redact rules */
    ngx_uint_t                      deny;       /* there are deny rules */
} ngx_http_ai_guards_t;


typedef struct {
    ngx_array_t                     slots;      /* of slot pointers */
    ngx_shm_zone_t                 *zone;
    ngx_http_ai_guard_sh_t         *sh;
} ngx_http_ai_guard_main_conf_t;


typedef struct {
    ngx_http_ai_guards_t           *guards;     /* NULL: none or "off" */
} ngx_http_ai_guard_loc_conf_t;


typedef struct {
    size_t                          start;
    size_t                          end;
    ngx_http_ai_guard_rule_t       *rule;
} ngx_http_ai_guard_match_t;


/* per request */
typedef struct {
    ngx_http_ai_guard_rule_t       *deny;
    ngx_array_t                     hits;       /* slots hit: pointers */
    ngx_array_t                     matches;    /* scratch */

    /* the answer's stream: st.out is what goes out, st.id, st.model and
     * st.created are the chunks' own, for content chunks made here */
    ngx_ai_sse_parser_t             sse;
    ngx_ai_stream_t                 st;
    ngx_ai_buf_t                    pending;    /* content not sent yet */
    unsigned                        stream:1;   /* the above are set up */
    unsigned                        light:1;    /* error events only */
} ngx_http_ai_guard_ctx_t;


/* ngx_ai_gateway_guard_match.c */
ngx_http_ai_guard_ctx_t *ngx_http_ai_guard_get_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_guard_find(ngx_http_request_t *r,
    ngx_http_ai_guard_rule_t *rule, u_char *text, size_t len, size_t offset,
    size_t *start, size_t *end);
ngx_int_t ngx_http_ai_guard_scan(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_http_ai_guards_t *g, ngx_uint_t scope,
    u_char *text, size_t len);
ngx_int_t ngx_http_ai_guard_render(ngx_http_ai_guard_ctx_t *gctx,
    u_char *text, size_t cut, ngx_ai_buf_t *out);
ngx_int_t ngx_http_ai_guard_hit(ngx_http_ai_guard_ctx_t *gctx,
    ngx_http_ai_guard_rule_t *rule, ngx_uint_t n);


void ngx_http_ai_guard_match_free(void);

/* the hooks (ngx_ai_gateway_policy.c) */
ngx_int_t ngx_http_ai_guard_request(ngx_http_request_t *r,
    ngx_ai_chat_request_t *chat, ngx_ai_error_t *err);
ngx_int_t ngx_http_ai_guard_answer(ngx_http_request_t *r, ngx_str_t *body);
ngx_int_t ngx_http_ai_guard_error(ngx_http_request_t *r, ngx_str_t *message);
ngx_int_t ngx_http_ai_guard_stream(ngx_http_request_t *r, ngx_str_t *data,
    ngx_uint_t last);


#endif /* _NGX_AI_GATEWAY_GUARD_H_INCLUDED_ */
