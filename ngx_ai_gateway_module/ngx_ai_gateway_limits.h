
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Rate limits, the cost ledger and budgets, kept in shared memory zones
 * (slab + rbtree + LRU, as limit_req does): what the rate, cost and status
 * files share.  The module itself (directives, variables, the log phase
 * handler, the three hooks the gateway calls) is ngx_ai_gateway_limits.c.
 */


#ifndef _NGX_AI_GATEWAY_LIMITS_H_INCLUDED_
#define _NGX_AI_GATEWAY_LIMITS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


#define NGX_HTTP_AI_DIGEST_LEN      32      /* SHA-256 */
#define NGX_HTTP_AI_KEY_PREFIX      8       /* hex digits of it shown */
#define NGX_HTTP_AI_MAX_ROUTE_LEN   1024

/* a rate bucket unit: one request or token is 60000 units, so a limit of
 * N per minute refills exactly N units per millisecond */
#define NGX_HTTP_AI_RATE_UNIT       60000

#define NGX_HTTP_AI_RATE_MAX        1000000000

#define NGX_HTTP_AI_PAYMENT_REQUIRED  402

#define NGX_HTTP_AI_STATUS_PASSED   1
#define NGX_HTTP_AI_STATUS_REJECTED 2

#define NGX_HTTP_AI_BUDGET_EVER     0
#define NGX_HTTP_AI_BUDGET_DAY      1
#define NGX_HTTP_AI_BUDGET_MONTH    2


/* ---- rate zones (ngx_ai_gateway_rate.c) ---- */

typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;        /* LRU, head: newest */
    ngx_uint_t                      nodes;
} ngx_http_ai_rate_sh_t;


/* shm_zone->data of an ai_rate_zone */
typedef struct {
    ngx_http_ai_rate_sh_t          *sh;
    ngx_slab_pool_t                *shpool;
    ngx_shm_zone_t                 *shm_zone;
} ngx_http_ai_rate_zone_t;


/* one bucket pair in shared memory, overlaying ngx_rbtree_node_t.color;
 * data: [keyed][key_id:4][digest:32 if keyed][route] */
typedef struct {
    u_char                          color;
    u_char                          keyed;
    u_short                         len;          /* of data */
    ngx_queue_t                     queue;
    ngx_msec_t                      last;         /* of the last decay */
    uint64_t                        req_used;     /* in rate units */
    uint64_t                        tok_used;
    uint32_t                        rpm;          /* limits last applied */
    uint32_t                        tpm;
    ngx_uint_t                      count;        /* reservations held */
    u_char                          data[1];
} ngx_http_ai_rate_node_t;


/* ai_rate zone=NAME [key=$var] [rpm=N] [tpm=N] */
typedef struct {
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_complex_value_t       *key;          /* NULL: per route */
    uint32_t                        key_id;       /* crc32 of its text */
    ngx_uint_t                      rpm;          /* 0: not limited */
    ngx_uint_t                      tpm;
} ngx_http_ai_rate_limit_t;


/* what a request holds in one bucket until it ends */
typedef struct {
    ngx_http_ai_rate_limit_t       *limit;
    ngx_http_ai_rate_node_t        *node;
    uint64_t                        tokens;       /* tpm reservation */
    unsigned                        requests:1;   /* took one request */
} ngx_http_ai_rate_hold_t;


/* the x-ratelimit-* values of one dimension */
typedef struct {
    uint64_t                        limit;
    uint64_t                        remaining;
    ngx_msec_t                      reset;        /* until the bucket is
                                                     full again */
    unsigned                        set:1;
} ngx_http_ai_rate_info_t;


/* ---- cost zones (ngx_ai_gateway_cost.c) ---- */

typedef struct {
    uint64_t                        requests;     /* calls answered */
    uint64_t                        errors;       /* of which not OK */
    uint64_t                        input_tokens;
    uint64_t                        output_tokens;
    uint64_t                        cost;         /* nano-USD, exact */
    uint64_t                        aborted;      /* calls the gateway
                                                     stopped */
    uint64_t                        est_input_tokens;
    uint64_t                        est_cost;     /* nano-USD, estimated */
} ngx_http_ai_counters_t;


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;        /* LRU, head: newest */
    ngx_http_ai_counters_t          totals;       /* never evicted */
    ngx_uint_t                      entries;      /* ledger nodes */
    ngx_uint_t                      accounts;     /* account nodes */
    ngx_uint_t                      evicted;
    ngx_uint_t                      evicted_warned;   /* when last said */
    time_t                          warned;
    uint64_t                        gen;          /* bumped on change */
    uint64_t                        saved_gen;    /* in the state file */
} ngx_http_ai_cost_sh_t;


/* shm_zone->data of an ai_cost_zone */
typedef struct {
    ngx_http_ai_cost_sh_t          *sh;
    ngx_slab_pool_t                *shpool;
    ngx_shm_zone_t                 *shm_zone;
    ngx_str_t                       state;        /* path, or empty */
    ngx_msec_t                      interval;     /* state writes */
    ngx_event_t                    *timer;        /* in the writer */
} ngx_http_ai_cost_zone_t;


#define NGX_HTTP_AI_COST_LEDGER     1
#define NGX_HTTP_AI_COST_ACCOUNT    2

/*
 * A ledger entry or an account in shared memory, overlaying
 * ngx_rbtree_node_t.color.  data, the identity:
 *   ledger:  [type][keyed][digest:32 if keyed][route] 0 [model]
 *   account: [type][keyed][digest:32 if keyed, else route]
 */
typedef struct {
    u_char                          color;
    u_char                          type;
    u_short                         len;          /* of data */
    u_short                         route_len;
    u_short                         model_len;
    ngx_queue_t                     queue;
    ngx_uint_t                      count;        /* requests holding it */
    union {
        struct {
            ngx_http_ai_counters_t  c;
            time_t                  first;
            time_t                  last;
        } ledger;
        struct {
            uint64_t                day;          /* days since 1970 */
            uint64_t                day_spend;    /* nano-USD */
            uint64_t                month;        /* year * 12 + month */
            uint64_t                month_spend;
            uint64_t                total;
            uint64_t                in_flight;    /* reservations */
            time_t                  last;
        } account;
    } u;
    u_char                          data[1];
} ngx_http_ai_cost_node_t;


/* ai_cost zone=NAME [key=$var] [budget=USD[/day|/month]] */
typedef struct {
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_complex_value_t       *key;          /* NULL: per route */
    uint64_t                        budget;       /* nano-USD */
    ngx_uint_t                      period;       /* EVER, DAY, MONTH */
    unsigned                        has_budget:1;
} ngx_http_ai_cost_conf_t;


/* ---- the module ---- */

typedef struct {
    ngx_array_t                     rate_zones;   /* ngx_shm_zone_t * */
    ngx_array_t                     cost_zones;   /* ngx_shm_zone_t * */
} ngx_http_ai_limits_main_conf_t;


typedef struct {
    ngx_array_t                     rates;        /* rate_limit_t */
    ngx_http_ai_cost_conf_t        *cost;         /* NULL: none */
    ngx_int_t                       reserve_tokens;   /* -1: the
                                                    ai_default_max_tokens */
} ngx_http_ai_limits_loc_conf_t;


/* a key evaluated for one request: its digest */
typedef struct {
    ngx_str_t                       value;
    u_char                          digest[NGX_HTTP_AI_DIGEST_LEN];
    unsigned                        empty:1;
} ngx_http_ai_key_t;


/* per main request */
typedef struct {
    ngx_http_request_t             *request;
    ngx_http_ai_ctx_t              *ai;
    ngx_str_t                       route;        /* location name */

    ngx_http_ai_key_t               keys[4];      /* digests, cached */
    ngx_uint_t                      nkeys;

    ngx_http_ai_rate_hold_t        *holds;
    ngx_uint_t                      nholds;
    uint64_t                        estimate;     /* tokens, admission */
    uint64_t                        tokens;       /* counted so far */
    ngx_http_ai_rate_info_t         req_info;
    ngx_http_ai_rate_info_t         tok_info;
    time_t                          retry_after;  /* seconds, refusals */

    ngx_http_ai_cost_node_t        *account;      /* held for budget */
    ngx_http_ai_cost_zone_t        *account_zone;
    uint64_t                        reserved;     /* nano-USD in flight */

    unsigned                        rate_status:2;
    unsigned                        budget_status:2;
    unsigned                        admitted:1;
    unsigned                        settled:1;
    unsigned                        headers_done:1;
    unsigned                        peeked:1;
} ngx_http_ai_limits_ctx_t;


extern ngx_module_t  ngx_ai_gateway_limits_module;


/* ngx_ai_gateway_limits.c */
ngx_http_ai_limits_ctx_t *ngx_http_ai_limits_get_ctx(ngx_http_request_t *r,
    ngx_uint_t create);
ngx_int_t ngx_http_ai_limits_key(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_complex_value_t *cv, ngx_http_ai_key_t **key);
void ngx_http_ai_digest_hex(u_char *dst, u_char *digest, size_t n);
uint64_t ngx_http_ai_cost_of(uint64_t tokens, uint64_t price);
ngx_int_t ngx_http_ai_parse_nano_usd(u_char *p, size_t len,
    uint64_t *nano);
u_char *ngx_http_ai_sprint_usd(u_char *p, uint64_t nano);
ngx_int_t ngx_http_ai_buf_append_usd(ngx_ai_buf_t *b, uint64_t nano);

/* ngx_ai_gateway_rate.c */
char *ngx_http_ai_rate_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_rate_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_rate_admit(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_limits_loc_conf_t *llcf, ngx_ai_error_t *err);
void ngx_http_ai_rate_release(ngx_http_ai_limits_ctx_t *lctx);
ngx_int_t ngx_http_ai_rate_peek(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_limits_loc_conf_t *llcf);
void ngx_http_ai_rate_settle(ngx_http_ai_limits_ctx_t *lctx);
ngx_int_t ngx_http_ai_rate_json(ngx_http_request_t *r,
    ngx_http_ai_limits_main_conf_t *lmcf, ngx_ai_buf_t *b);
ngx_int_t ngx_http_ai_rate_zones_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_buf_t *b, ngx_uint_t first);
u_char *ngx_http_ai_sprint_duration(u_char *p, ngx_msec_t ms);

/* ngx_ai_gateway_cost.c */
char *ngx_http_ai_cost_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_cost_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_cost_admit(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, uint64_t estimate, ngx_ai_error_t *err);
void ngx_http_ai_cost_release(ngx_http_ai_limits_ctx_t *lctx);
ngx_int_t ngx_http_ai_cost_record(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, ngx_str_t *model,
    ngx_http_ai_counters_t *add);
ngx_int_t ngx_http_ai_cost_init_process(ngx_cycle_t *cycle);
void ngx_http_ai_cost_exit_process(ngx_cycle_t *cycle);
void ngx_http_ai_cost_exit_master(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_cost_json(ngx_http_request_t *r,
    ngx_http_ai_limits_main_conf_t *lmcf, ngx_ai_buf_t *b);

/* ngx_ai_gateway_status.c */
char *ngx_http_ai_status_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_AI_GATEWAY_LIMITS_H_INCLUDED_ */
