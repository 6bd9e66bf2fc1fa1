
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Quota leases of sync_mode=lease (ngx_ai_gateway_lease.c): a host takes
 * a slice of a rate bucket pair's room from Redis, atomically, admits
 * from it with no round trip, and asks for the next slice at a low-water
 * mark, without waiting for it.
 */


#ifndef _NGX_AI_GATEWAY_LEASE_H_INCLUDED_
#define _NGX_AI_GATEWAY_LEASE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_redis.h"


/* what ngx_http_ai_lease_take() refused, beyond 1 requests, 2 tokens */
#define NGX_HTTP_AI_LEASE_WAITING    4            /* a slice is on its way */

/* Retry-After of a request refused while its host's slice comes */
#define NGX_HTTP_AI_LEASE_RETRY      1000

#define NGX_HTTP_AI_LEASE_ERROR_LEN  128          /* of an error reply kept */
#define NGX_HTTP_AI_LEASE_ANSWER_MS  200          /* in a slice's size */
#define NGX_HTTP_AI_LEASE_END_MS     1000         /* a slice lasts this
                                                     beyond 2 intervals */
#define NGX_HTTP_AI_LEASE_LOST_MS    10000        /* an ask unanswered */
#define NGX_HTTP_AI_LEASE_SHARE      20           /* the unleased bound and
                                                     the least slice: the
                                                     limit / (20 x hosts) */


/* a slice to ask for, once the zone is unlocked */
typedef struct {
    uint64_t                        rpm;
    uint64_t                        tpm;
    uint64_t                        want[2];      /* requests, tokens */
    uint64_t                        least[2];
    int64_t                         used[2];      /* taken before it */
    ngx_uint_t                      ask;
} ngx_http_ai_lease_ask_t;


/*
 * A budget account's slice (ngx_ai_gateway_lease_budget.c), in nano-USD,
 * in the cost zone's shared memory.
 */
struct ngx_http_ai_budget_lease_s {
    int64_t                         left;         /* of the slice, not
                                                     reserved */
    uint64_t                        flight;       /* reserved from it */
    uint64_t                        cold;         /* reserved without one */
    uint64_t                        others;       /* what the other hosts
                                                     hold, as last answered */
    uint64_t                        win;          /* reserved this second */
    uint64_t                        rate;         /* ... the last one */
    uint64_t                        pnum;         /* the day or month */
    ngx_uint_t                      period;       /* of the budget */
    ngx_msec_t                      win_start;
    ngx_msec_t                      end;          /* of the slice, 0: none */
    ngx_msec_t                      asked;        /* an ask out, 0: none */
    ngx_msec_t                      answered;
    ngx_uint_t                      held;         /* Redis holds some of
                                                     this host's */
};


/* a budget slice to ask for (want 0: to give back), the zone unlocked */
typedef struct {
    uint64_t                        budget;
    uint64_t                        want;
    uint64_t                        least;
    uint64_t                        held;         /* this host's, before */
    uint64_t                        pnum;
    ngx_uint_t                      period;
    ngx_uint_t                      ask;
} ngx_http_ai_budget_ask_t;


ngx_uint_t ngx_http_ai_lease_take(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_sh_t *sy, ngx_http_ai_rate_hold_t *hold,
    ngx_msec_t now, ngx_msec_t *wait, ngx_http_ai_lease_ask_t *ask,
    ngx_log_t *log);
void ngx_http_ai_lease_ask(ngx_http_ai_sync_zone_t *sz, u_char *instance,
    uint32_t hash, u_char *id, size_t len, ngx_http_ai_lease_ask_t *ask);
void ngx_http_ai_lease_answer(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_sh_t *sy, ngx_http_ai_rate_node_t *node,
    ngx_http_ai_sync_item_t *item);
void ngx_http_ai_lease_return(ngx_http_ai_sync_sh_t *sy,
    ngx_http_ai_rate_node_t *node, ngx_msec_t now, ngx_uint_t all);
void ngx_http_ai_lease_json(ngx_ai_jw_t *w, ngx_http_ai_sync_sh_t *st,
    ngx_uint_t fallback);

ngx_uint_t ngx_http_ai_lease_usable(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_sh_t *sy, ngx_msec_t now);
ngx_http_ai_sync_item_t *ngx_http_ai_lease_item(ngx_http_ai_sync_zone_t *sz,
    ngx_uint_t type, uint32_t hash, u_char *id, size_t len,
    ngx_pool_t **pool, ngx_array_t **args);
void ngx_http_ai_lease_send_item(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_item_t *item, ngx_pool_t *pool, ngx_array_t *args,
    ngx_int_t rc);
void ngx_http_ai_lease_handler(ngx_http_ai_redis_t *rd, redisReply *reply,
    void *data);

/* ngx_ai_gateway_lease_budget.c */
ngx_int_t ngx_http_ai_budget_lease_take(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_cost_conf_t *cc, ngx_http_ai_cost_node_t *cn,
    uint64_t estimate, ngx_uint_t *from, uint64_t *spent,
    ngx_http_ai_budget_ask_t *ask, ngx_log_t *log);
void ngx_http_ai_budget_lease_ask(ngx_http_ai_sync_zone_t *sz,
    u_char *instance, uint32_t hash, u_char *id, size_t len,
    ngx_http_ai_budget_ask_t *ask);
void ngx_http_ai_budget_lease_answer(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_sh_t *sy, ngx_http_ai_cost_node_t *cn,
    ngx_http_ai_sync_item_t *item);
void ngx_http_ai_budget_lease_spent(ngx_http_ai_sync_sh_t *sy,
    ngx_http_ai_cost_node_t *cn, uint64_t cost);
void ngx_http_ai_budget_lease_release(ngx_http_ai_cost_node_t *cn,
    ngx_uint_t from, uint64_t estimate);
ngx_uint_t ngx_http_ai_budget_lease_return(ngx_http_ai_sync_sh_t *sy,
    ngx_http_ai_cost_node_t *cn, ngx_msec_t now, ngx_uint_t all,
    ngx_http_ai_budget_ask_t *ask);
ngx_uint_t ngx_http_ai_budget_lease_busy(ngx_http_ai_cost_node_t *cn);
void ngx_http_ai_budget_lease_free(ngx_slab_pool_t *shpool,
    ngx_http_ai_cost_node_t *cn);
void ngx_http_ai_budget_lease_json(ngx_ai_jw_t *w, ngx_http_ai_sync_sh_t *st,
    ngx_uint_t fallback);

/* ngx_ai_gateway_sync.c */
ngx_int_t ngx_http_ai_sync_lease_send(ngx_http_ai_sync_zone_t *sz,
    ngx_array_t *args, ngx_http_ai_redis_handler_pt handler, void *data);
void ngx_http_ai_sync_lease_done(ngx_http_ai_sync_item_t *item);


#endif /* _NGX_AI_GATEWAY_LEASE_H_INCLUDED_ */
