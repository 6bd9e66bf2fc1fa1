
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Inside zone sync: a Redis server the zones sync through, a synced zone
 * and a request waiting for its strict reservations, shared by
 * ngx_ai_gateway_sync.c and ngx_ai_gateway_sync_strict.c only.
 */


#ifndef _NGX_AI_GATEWAY_SYNC_ZONE_H_INCLUDED_
#define _NGX_AI_GATEWAY_SYNC_ZONE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_redis.h"


#define NGX_HTTP_AI_SYNC_PREFIX         "aigw:"
#define NGX_HTTP_AI_SYNC_BATCH_MAX      256       /* items per batch */
#define NGX_HTTP_AI_SYNC_ID_HEX         32

/* the scripts of a server, in ngx_http_ai_sync_t.scripts */
#define NGX_HTTP_AI_SYNC_BATCH_LUA      0
#define NGX_HTTP_AI_SYNC_STRICT_LUA     1
#define NGX_HTTP_AI_SYNC_LEASE_LUA      2
#define NGX_HTTP_AI_SYNC_BUDGET_LUA     3


typedef struct ngx_http_ai_sync_waiter_s  ngx_http_ai_sync_waiter_t;


/* a Redis server the zones sync through, and its connection */
typedef struct {
    ngx_http_ai_redis_t             redis;
    ngx_uint_t                      strict;       /* a strict zone uses it */
    ngx_array_t                     zones;        /* sync_zone_t * */
    ngx_http_ai_redis_script_t      scripts[4];   /* batch, strict, lease,
                                                     budget.lua */
} ngx_http_ai_sync_t;


struct ngx_http_ai_sync_zone_s {
    ngx_http_ai_sync_t             *sync;
    ngx_http_ai_sync_source_t      *source;       /* the zone's side */
    void                           *zone;         /* rate or cost zone */
    ngx_str_t                       name;
    ngx_str_t                       prefix;       /* "aigw:NAME:" */
    ngx_msec_t                      interval;
    ngx_msec_t                      timeout;
    ngx_uint_t                      strict;
    ngx_uint_t                      mode;         /* NGX_HTTP_AI_SYNC_MODE_* */
    ngx_uint_t                      fallback;

    /* in the worker that syncs */
    ngx_event_t                     tick;
    ngx_http_ai_sync_batch_t       *batch;        /* out */
    unsigned                        syncer:1;
    unsigned                        busy:1;
    unsigned                        more:1;       /* go on at once */
    unsigned                        final:1;      /* exiting */
    unsigned                        stopped:1;
};


/* one strict script call: items first to first + n - 1 of a waiter */
typedef struct {
    ngx_http_ai_sync_waiter_t      *waiter;
    ngx_uint_t                      first;
    ngx_uint_t                      n;
} ngx_http_ai_sync_call_t;


/* a request waiting for its strict reservations */
struct ngx_http_ai_sync_waiter_s {
    ngx_http_ai_sync_done_pt        done;         /* the caller's */
    void                           *data;         /* NULL: request gone */
    void                          **ref;          /* the caller's pointer
                                                     to the waiter */
    ngx_event_t                     event;        /* posts done */
    ngx_uint_t                      calls;        /* not answered yet */
    ngx_http_ai_sync_call_t        *call;         /* after the items */
    ngx_uint_t                      nitems;
    ngx_http_ai_sync_item_t         items[1];
};


/* the zone's sync figures in its shared memory, and its slab pool */
ngx_http_ai_sync_sh_t *ngx_http_ai_sync_sh(ngx_http_ai_sync_zone_t *sz,
    ngx_slab_pool_t **shpool);


#endif /* _NGX_AI_GATEWAY_SYNC_ZONE_H_INCLUDED_ */
