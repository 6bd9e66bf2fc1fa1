
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * sync=redis:// (ngx_ai_gateway_sync.c), as the zones it syncs see it.
 * A zone with sync= is a source: when it asks for its sync zone it hands
 * over a vtable, ngx_http_ai_sync_source_t, and sync reaches the zone
 * only through that.  What goes between them is a batch of items (what
 * the zone took, to push; what Redis answered, to take back), items of a
 * pull, and the sync state kept in the zone's shared memory.
 */


#ifndef _NGX_AI_GATEWAY_SYNC_H_INCLUDED_
#define _NGX_AI_GATEWAY_SYNC_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_pure.h"


typedef struct ngx_http_ai_sync_zone_s  ngx_http_ai_sync_zone_t;

#define NGX_HTTP_AI_SYNC_INSTANCE_LEN  16

/* batch numbers skipped after a restart from a state file */
#define NGX_HTTP_AI_SYNC_SEQ_JUMP      (1 << 20)

/* a sync state as the status shows it */
#define NGX_HTTP_AI_SYNC_CONNECTING  0
#define NGX_HTTP_AI_SYNC_OK          1
#define NGX_HTTP_AI_SYNC_DOWN        2

/* sync_mode= */
#define NGX_HTTP_AI_SYNC_MODE_ASYNC  0
#define NGX_HTTP_AI_SYNC_MODE_LEASE  1
#define NGX_HTTP_AI_SYNC_MODE_STRICT 2

/* sync_fallback=: what a lease zone admits while Redis is away */
#define NGX_HTTP_AI_SYNC_FALLBACK_SHARE  0        /* limit / hosts */
#define NGX_HTTP_AI_SYNC_FALLBACK_FULL   1        /* the whole limit */

/*
 * The sync state of a zone, in the zone's shared memory: the batch being
 * pushed (one at a time, numbered, so that a batch sent again after a
 * lost answer is applied once), and figures for the status.
 */
typedef struct {
    u_char                          instance[NGX_HTTP_AI_SYNC_INSTANCE_LEN];
    uint64_t                        seq;          /* of the frozen batch */
    ngx_uint_t                      items;        /* in it */
    ngx_uint_t                      frozen;       /* a batch is out */
    ngx_uint_t                      seq_jump;     /* once it is answered,
                                                     skip
                                                     NGX_HTTP_AI_SYNC_SEQ_JUMP
                                                     numbers */

    ngx_uint_t                      state;        /* NGX_HTTP_AI_SYNC_* */
    time_t                          since;        /* of the state */
    time_t                          last_ok;      /* last batch answered */
    uint64_t                        batches;      /* answered */
    uint64_t                        failures;     /* batches not answered */
    uint64_t                        lost;         /* deltas dropped: their
                                                     node was evicted */
    uint64_t                        strict;       /* strict admissions */
    uint64_t                        strict_local; /* ... decided locally */

    /* leases (ngx_ai_gateway_lease.c), in rate units */
    uint64_t                        slices;       /* granted */
    uint64_t                        asks;         /* slices asked for */
    uint64_t                        leased[2];    /* requests, tokens */
    uint64_t                        used[2];
    uint64_t                        returned[2];
    uint64_t                        cold;         /* admitted before a
                                                     slice came */
    uint64_t                        waiting;      /* refused: a slice was
                                                     on its way */
    uint64_t                        fallback;     /* admitted on the local
                                                     share, Redis away */
    ngx_uint_t                      hosts;        /* active, as last
                                                     answered */
    uint64_t                        latency_us;   /* of a slice, moving
                                                     average */
    time_t                          fallback_logged;
    ngx_msec_t                      lease_failed; /* an ask refused (an
                                                     error reply), 0: not
                                                     since the last slice */
    u_char                          error[128];
    size_t                          error_len;
} ngx_http_ai_sync_sh_t;


/* a node in a batch, or a reservation of a strict admission */
#define NGX_HTTP_AI_SYNC_RATE        1
#define NGX_HTTP_AI_SYNC_LEDGER      2
#define NGX_HTTP_AI_SYNC_ACCOUNT     3
#define NGX_HTTP_AI_SYNC_TOTALS      4

/* how a strict reservation ended */
#define NGX_HTTP_AI_STRICT_FAILED    0            /* no answer: local */
#define NGX_HTTP_AI_STRICT_OK        1
#define NGX_HTTP_AI_STRICT_REFUSED   2
#define NGX_HTTP_AI_STRICT_NOT_TAKEN 3            /* another one refused */

typedef struct {
    ngx_uint_t                      type;
    uint32_t                        hash;         /* of the identity */
    u_char                         *id;           /* the node's identity */
    size_t                          len;
    ngx_str_t                       key;          /* ledger: digest hex */
    ngx_str_t                       route;        /* ledger */
    ngx_str_t                       model;        /* ledger */
    uint64_t                        a[4];         /* arguments */
    int64_t                         d[8];         /* deltas */
    int64_t                         res[8];       /* what Redis answered */
    ngx_uint_t                      index;        /* strict: of the hold */
    ngx_uint_t                      status;       /* strict: how it ended */
    ngx_http_ai_sync_zone_t        *sync;
} ngx_http_ai_sync_item_t;


/* a batch as it is sent: copies of what the zone holds */
typedef struct {
    ngx_pool_t                     *pool;
    ngx_array_t                     items;        /* ngx_http_ai_sync_item_t */
    uint64_t                        seq;
    u_char                          instance[NGX_HTTP_AI_SYNC_INSTANCE_LEN];
    unsigned                        more:1;       /* nodes left for another
                                                     batch */
    unsigned                        final:1;      /* the worker quits:
                                                     slices go back */
} ngx_http_ai_sync_batch_t;


/*
 * The counters of a ledger entry and of a cost zone's totals, in the
 * order the batch script names them (its L and T items carry them as
 * D1..D8).
 */
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


/*
 * A source: a zone that sync pushes and pulls (ngx_ai_gateway_rate_sync.c,
 * ngx_ai_gateway_cost_sync.c).  Each function gets the zone given to
 * ngx_http_ai_sync_zone().
 *
 *   sh        the zone's sync state and slab pool (NULL: no memory yet)
 *   batch     the batch to push, into b (the frozen one when one is out,
 *             else a new one of at most max nodes; refresh: with the nodes
 *             whose fleet figures are due); NGX_DECLINED: nothing to push
 *   ack       Redis applied the batch; its answers are in the items
 *   pull      the fleet's figures of one node, as Redis answered them
 *   unsynced  for the status: how many nodes (and totals) are not pushed
 *             yet, and the fleet's totals if the zone keeps any (known);
 *             called with the zone's mutex held
 *   lease     the answer to a slice asked for (ngx_ai_gateway_lease.c)
 *   json      the zone's own status fields, from a copy of its sync state
 */

typedef ngx_http_ai_sync_sh_t *(*ngx_http_ai_sync_sh_pt)(void *zone,
    ngx_slab_pool_t **shpool);
typedef ngx_int_t (*ngx_http_ai_sync_batch_pt)(void *zone,
    ngx_http_ai_sync_batch_t *b, ngx_uint_t refresh, ngx_uint_t max);
typedef void (*ngx_http_ai_sync_ack_pt)(void *zone,
    ngx_http_ai_sync_batch_t *b);
typedef void (*ngx_http_ai_sync_pull_pt)(void *zone,
    ngx_http_ai_sync_item_t *item);
typedef ngx_uint_t (*ngx_http_ai_sync_unsynced_pt)(void *zone,
    ngx_http_ai_counters_t *fleet, ngx_uint_t *known);
typedef void (*ngx_http_ai_sync_lease_pt)(void *zone,
    ngx_http_ai_sync_item_t *item);
typedef void (*ngx_http_ai_sync_json_pt)(void *zone, ngx_ai_jw_t *w,
    ngx_http_ai_sync_sh_t *st);

typedef struct {
    ngx_str_t                       type;         /* the status's "type" */
    ngx_http_ai_sync_sh_pt          sh;
    ngx_http_ai_sync_batch_pt       batch;
    ngx_http_ai_sync_ack_pt         ack;
    ngx_http_ai_sync_pull_pt        pull;
    ngx_http_ai_sync_unsynced_pt    unsynced;
    ngx_http_ai_sync_lease_pt       lease;        /* a slice answered (or
                                                     not: status); NULL: no
                                                     leases */
    ngx_http_ai_sync_json_pt        json;         /* more status fields
                                                     (NULL: none) */
    ngx_uint_t                      usd;          /* slices of budgets
                                                     (sync/budget.lua), and
                                                     sync_mode=async the
                                                     default */
} ngx_http_ai_sync_source_t;


/*
 * A strict admission answered (ngx_http_ai_sync_strict()): data as the
 * caller gave it, and its items, each with how it ended (status) and
 * what Redis answered (res).
 */
typedef void (*ngx_http_ai_sync_done_pt)(void *data,
    ngx_http_ai_sync_item_t *items, ngx_uint_t n);


ngx_int_t ngx_http_ai_sync_option(ngx_conf_t *cf, void **opts,
    ngx_str_t *value);
ngx_http_ai_sync_zone_t *ngx_http_ai_sync_zone(ngx_conf_t *cf, void *opts,
    ngx_http_ai_sync_source_t *source, void *zone, ngx_str_t *name);
void ngx_http_ai_sync_init_zone(ngx_http_ai_sync_sh_t *sh);
ngx_uint_t ngx_http_ai_sync_strict_ready(ngx_http_ai_sync_zone_t *sz);
ngx_uint_t ngx_http_ai_sync_stale(ngx_http_ai_sync_zone_t *sz,
    ngx_msec_t now, ngx_msec_t synced);
void ngx_http_ai_sync_pull(ngx_http_ai_sync_zone_t *sz, ngx_uint_t type,
    uint32_t hash, u_char *id, size_t len, uint64_t a0, uint64_t a1);
ngx_int_t ngx_http_ai_sync_strict(ngx_http_request_t *r, ngx_array_t *items,
    ngx_http_ai_sync_done_pt done, void *data, void **waiter);
void ngx_http_ai_sync_strict_cancel(void **waiter);
ngx_uint_t ngx_http_ai_sync_mode(ngx_http_ai_sync_zone_t *sz,
    ngx_uint_t *fallback);
ngx_uint_t ngx_http_ai_sync_up(ngx_http_ai_sync_zone_t *sz);
ngx_msec_t ngx_http_ai_sync_interval(ngx_http_ai_sync_zone_t *sz);
ngx_array_t *ngx_http_ai_sync_lease_args(ngx_http_ai_sync_zone_t *sz,
    ngx_pool_t *pool);
ngx_int_t ngx_http_ai_sync_arg_key(ngx_array_t *args, ngx_str_t *prefix,
    const char *kind, u_char *id, size_t len);
ngx_int_t ngx_http_ai_sync_init_process(ngx_cycle_t *cycle);
void ngx_http_ai_sync_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_AI_GATEWAY_SYNC_H_INCLUDED_ */
