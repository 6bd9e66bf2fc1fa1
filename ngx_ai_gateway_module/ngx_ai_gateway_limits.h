
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
#include "ngx_ai_gateway_sync.h"


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

/* empty= of ai_rate and ai_cost: a request whose key is empty */
#define NGX_HTTP_AI_EMPTY_UNSET     0
#define NGX_HTTP_AI_EMPTY_DENY      1       /* refused: 401 */
#define NGX_HTTP_AI_EMPTY_SHARED    2       /* one bucket or account */
#define NGX_HTTP_AI_EMPTY_ALLOW     3       /* not limited */

#define NGX_HTTP_AI_BUDGET_EVER     0
#define NGX_HTTP_AI_BUDGET_DAY      1
#define NGX_HTTP_AI_BUDGET_MONTH    2


/* ---- rate zones (ngx_ai_gateway_rate.c) ---- */

typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;        /* LRU, head: newest */
    ngx_uint_t                      nodes;
    ngx_http_ai_sync_sh_t           sync;
} ngx_http_ai_rate_sh_t;


/* shm_zone->data of an ai_rate_zone */
typedef struct {
    ngx_http_ai_rate_sh_t          *sh;
    ngx_slab_pool_t                *shpool;
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_ai_sync_zone_t        *sync;         /* NULL: local only */
} ngx_http_ai_rate_zone_t;


/*
 * One bucket pair in shared memory, overlaying ngx_rbtree_node_t.color;
 * data: [keyed][key_id:4][digest:32 if keyed][route].  With sync= the
 * levels are the fleet's as last known plus what was taken here since;
 * pend_* is what was taken here and not yet pushed, send_* what the
 * batch being pushed carries.
 */
typedef struct {
    u_char                          color;
    u_char                          keyed;
    u_short                         len;          /* of data */
    u_char                          batch;        /* in the batch pushed */
    ngx_queue_t                     queue;
    ngx_msec_t                      last;         /* of the last decay */
    uint64_t                        req_used;     /* in rate units */
    uint64_t                        tok_used;
    uint32_t                        rpm;          /* limits last applied */
    uint32_t                        tpm;
    ngx_uint_t                      count;        /* reservations held */
    ngx_msec_t                      used;         /* last admission */
    ngx_msec_t                      synced;       /* levels last pulled */
    int64_t                         pend_req;     /* rate units */
    int64_t                         pend_tok;
    int64_t                         send_req;
    int64_t                         send_tok;

    /* sync_mode=lease (ngx_ai_gateway_lease.c), in rate units */
    int64_t                         lease_req;    /* this host's slice, */
    int64_t                         lease_tok;    /* what is left of it */
    int64_t                         ask_req;      /* taken before a slice:
                                                     carried by the ask */
    int64_t                         ask_tok;
    uint64_t                        own_req;      /* what this host took, */
    uint64_t                        own_tok;      /* decayed: the share's */
    uint64_t                        win_req;      /* taken in this second */
    uint64_t                        win_tok;
    uint64_t                        rate_req;     /* ... in the one before */
    uint64_t                        rate_tok;
    ngx_msec_t                      win;          /* this second's start */
    ngx_msec_t                      own_last;     /* own_* decayed */
    ngx_msec_t                      lease_end;    /* the slice's, 0: none */
    ngx_msec_t                      asked;        /* a slice is on its way
                                                     since (0: none) */
    ngx_msec_t                      answered;     /* the last slice */
    u_char                          data[1];
} ngx_http_ai_rate_node_t;


/* ai_rate zone=NAME [key=$var] [rpm=N] [tpm=N] */
typedef struct {
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_complex_value_t       *key;          /* NULL: per route */
    uint32_t                        key_id;       /* crc32 of its text */
    ngx_uint_t                      rpm;          /* 0: not limited */
    ngx_uint_t                      tpm;
    ngx_uint_t                      empty;        /* NGX_HTTP_AI_EMPTY_* */
} ngx_http_ai_rate_limit_t;


/* what a request holds in one bucket until it ends */
typedef struct {
    ngx_http_ai_rate_limit_t       *limit;
    ngx_http_ai_rate_node_t        *node;
    uint64_t                        tokens;       /* tpm reservation */
    ngx_uint_t                      requests;     /* requests taken: one
                                                     per call made */
    unsigned                        counted:1;    /* what it took is in
                                                     the levels (and, with
                                                     sync=, pushed or to
                                                     be pushed) */
    unsigned                        deferred:1;   /* strict: Redis
                                                     decides */
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
    ngx_http_ai_sync_sh_t           sync;
    ngx_http_ai_counters_t          pend;         /* totals not pushed */
    ngx_http_ai_counters_t          send;         /* ... being pushed */
    ngx_http_ai_counters_t          global;       /* the fleet's, as last
                                                     known */
    ngx_uint_t                      global_known;
} ngx_http_ai_cost_sh_t;


/* shm_zone->data of an ai_cost_zone */
typedef struct {
    ngx_http_ai_cost_sh_t          *sh;
    ngx_slab_pool_t                *shpool;
    ngx_shm_zone_t                 *shm_zone;
    ngx_str_t                       state;        /* path, or empty */
    ngx_msec_t                      interval;     /* state writes */
    ngx_event_t                    *timer;        /* in the writer */
    ngx_http_ai_sync_zone_t        *sync;         /* NULL: local only */
    ngx_uint_t                      kept;         /* 1 << period of every
                                                     budget on the zone:
                                                     accounts with spend in
                                                     such a period are never
                                                     evicted */
    ngx_uint_t                      fresh;        /* created by this cycle:
                                                     its state is read */
    time_t                          save_logged;  /* a save error, when
                                                     last said */
    ngx_uint_t                      save_failed;  /* since the last write */
    ngx_uint_t                      save_unsaid;  /* since the last said */
} ngx_http_ai_cost_zone_t;


/* a node's identity: ngx_http_ai_cost_ledger_id(), _account_id() */
#define NGX_HTTP_AI_COST_ID_LEN                                             \
    (2 + NGX_HTTP_AI_DIGEST_LEN + NGX_HTTP_AI_MAX_ROUTE_LEN + 1             \
     + NGX_AI_MAX_MODEL_LEN)


#define NGX_HTTP_AI_COST_LEDGER     1
#define NGX_HTTP_AI_COST_ACCOUNT    2


/*
 * What a node of a synced cost zone has not pushed yet (pend) and what
 * the batch being pushed carries (send); allocated when a node first has
 * something to push, freed once it is pushed.  An account's deltas are
 * signed: a strict reservation is given back as a negative one.
 */
typedef struct {
    uint64_t                        day;
    int64_t                         day_spend;
    uint64_t                        month;
    int64_t                         month_spend;
    int64_t                         total;
} ngx_http_ai_spend_delta_t;


typedef struct {
    union {
        struct {
            ngx_http_ai_counters_t  pend;
            ngx_http_ai_counters_t  send;
        } ledger;
        struct {
            ngx_http_ai_spend_delta_t  pend;
            ngx_http_ai_spend_delta_t  send;
        } account;
    } u;
} ngx_http_ai_cost_delta_t;

/* a budget account's slice (ngx_ai_gateway_lease_budget.c) */
typedef struct ngx_http_ai_budget_lease_s  ngx_http_ai_budget_lease_t;


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
    ngx_http_ai_cost_delta_t       *delta;        /* sync=: to push */
    ngx_uint_t                      batch;        /* in the batch pushed */
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
            ngx_msec_t              used;         /* last admission */
            ngx_msec_t              synced;       /* spend last pulled */
            ngx_http_ai_budget_lease_t  *lease;   /* sync_mode=lease: its
                                                     slice, NULL: none */
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
    ngx_uint_t                      empty;        /* NGX_HTTP_AI_EMPTY_* */
    unsigned                        has_budget:1;
} ngx_http_ai_cost_conf_t;


/* ---- the module ---- */

typedef struct {
    ngx_array_t                     rate_zones;   /* ngx_shm_zone_t * */
    ngx_array_t                     cost_zones;   /* ngx_shm_zone_t * */
    ngx_array_t                     budgets;      /* ngx_http_ai_cost_conf_t
                                                     *, lines with budget= */
    ngx_array_t                    *syncs;        /* ngx_http_ai_sync_t *,
                                                     the Redis servers */
    ngx_array_t                    *key_names;    /* ngx_http_ai_key_name_t
                                                     by digest; NULL: none
                                                     (ngx_ai_gateway_key.c) */
} ngx_http_ai_limits_main_conf_t;


typedef struct {
    ngx_array_t                     rates;        /* rate_limit_t */
    ngx_http_ai_cost_conf_t        *cost;         /* NULL: none */
    ngx_int_t                       reserve_tokens;   /* -1: the
                                                    ai_default_max_tokens */
} ngx_http_ai_limits_loc_conf_t;


/*
 * The client an ai_auth key authenticated (ngx_ai_gateway_auth.c, through
 * ngx_http_ai_limits_principal()): ai_rate and ai_cost lines without
 * key= count per key name, with the key's rpm=, tpm= and budget= in
 * place of the line's; team= is a second budget account.
 */
typedef struct {
    ngx_str_t                       name;
    u_char                          digest[NGX_HTTP_AI_DIGEST_LEN];
                                                  /* of name: the key the
                                                     limits count it
                                                     under */
    ngx_str_t                       team;         /* empty: none */
    ngx_uint_t                      rpm;          /* 0: the line's */
    ngx_uint_t                      tpm;
    uint64_t                        budget;       /* nano-USD */
    ngx_uint_t                      period;       /* NGX_HTTP_AI_BUDGET_* */
    uint64_t                        team_budget;
    ngx_uint_t                      team_period;
    unsigned                        has_budget:1;
    unsigned                        has_team_budget:1;
} ngx_http_ai_principal_t;


/*
 * The name in clear of a digest that limits count under: an ai_auth key's
 * name (the digest of the name, as ai_rate and ai_cost lines without key=
 * hash it) with the key's team, or a team's account (the digest of
 * "team:" and the team), name empty.  Filled at configuration time from
 * the key stores, so that the status shows names; never a key.
 */
typedef struct {
    u_char                          digest[NGX_HTTP_AI_DIGEST_LEN];
    ngx_str_t                       name;         /* empty: a team */
    ngx_str_t                       team;         /* empty: none, or the
                                                     stores disagree */
} ngx_http_ai_key_name_t;


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
    ngx_http_ai_cost_conf_t        *account_conf;
    uint64_t                        reserved;     /* nano-USD in flight */
    uint64_t                        more;         /* ... for calls past
                                                     the first, held
                                                     locally (strict
                                                     zones too) */
    time_t                          reserved_at;

    void                           *waiter;       /* strict: Redis is
                                                     asked (sync.c's) */
    ngx_uint_t                      deferred;     /* strict holds */

    ngx_http_ai_principal_t        *principal;    /* auth: NULL, none */
    ngx_http_ai_limits_loc_conf_t  *conf;         /* the location's lines
                                                     as they apply to the
                                                     principal */
    ngx_http_ai_cost_conf_t        *team;         /* its team's account */

    unsigned                        rate_status:2;
    unsigned                        budget_status:2;
    unsigned                        admitted:1;
    unsigned                        settled:1;
    unsigned                        headers_done:1;
    unsigned                        peeked:1;
    unsigned                        account_deferred:1;   /* strict */
    unsigned                        account_strict:1; /* reserved in
                                                         Redis */
    unsigned                        account_lease:2;  /* reserved from
                                                         the slice (1) or
                                                         before one (2) */
} ngx_http_ai_limits_ctx_t;


extern ngx_module_t  ngx_ai_gateway_limits_module;


/* ngx_ai_gateway_limits.c */
ngx_http_ai_limits_ctx_t *ngx_http_ai_limits_get_ctx(ngx_http_request_t *r,
    ngx_uint_t create);
ngx_int_t ngx_http_ai_limits_principal(ngx_http_request_t *r,
    ngx_http_ai_principal_t *p);

/* ngx_ai_gateway_key.c */
ngx_int_t ngx_http_ai_limits_key(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_complex_value_t *cv, ngx_http_ai_key_t **key);
void ngx_http_ai_digest_hex(u_char *dst, u_char *digest, size_t n);
void ngx_http_ai_limits_zone_full(ngx_http_ai_limits_ctx_t *lctx,
    ngx_shm_zone_t *shm_zone, ngx_ai_error_t *err);
ngx_int_t ngx_http_ai_limits_empty_arg(ngx_conf_t *cf, ngx_str_t *value,
    ngx_uint_t *empty);
void ngx_http_ai_limits_key_missing(ngx_http_ai_limits_ctx_t *lctx,
    ngx_ai_error_t *err);
ngx_int_t ngx_http_ai_sha256(u_char *data, size_t len, u_char *digest);
ngx_int_t ngx_http_ai_key_names_add(ngx_pool_t *pool, ngx_array_t **names,
    ngx_str_t *name, ngx_str_t *team);
void ngx_http_ai_key_names_sort(ngx_array_t *names);
ngx_http_ai_key_name_t *ngx_http_ai_key_name_find(ngx_array_t *names,
    u_char *digest, size_t len);
void ngx_http_ai_key_name_json(ngx_ai_jw_t *w, ngx_array_t *names,
    u_char *digest, size_t len);
void ngx_http_ai_key_name_json_hex(ngx_ai_jw_t *w, ngx_array_t *names,
    u_char *hex, size_t len);

/* ngx_ai_gateway_status.c: ai_status ?zone= ?key= ?route= ?model=
 * ?limit= ?offset= for the ledger, spend and rate arrays */
#define NGX_HTTP_AI_STATUS_LEDGER   0
#define NGX_HTTP_AI_STATUS_SPEND    1
#define NGX_HTTP_AI_STATUS_RATE     2

#define NGX_HTTP_AI_STATUS_MAX_LIMIT  100000

typedef struct ngx_http_ai_status_filter_s  ngx_http_ai_status_filter_t;

/* an entry of list passes f: counted, and kept (1) if in the page too;
 * set by status.c, called by the renderers it hands f to */
typedef ngx_uint_t (*ngx_http_ai_status_keep_pt)(
    ngx_http_ai_status_filter_t *f, ngx_uint_t list, ngx_str_t *zone,
    u_char *digest, ngx_str_t *route, ngx_str_t *model);

struct ngx_http_ai_status_filter_s {
    ngx_http_ai_status_keep_pt      keep;
    ngx_str_t                       zone;      /* empty: any */
    ngx_str_t                       route;
    ngx_str_t                       model;
    u_char                          key[NGX_HTTP_AI_DIGEST_LEN * 2];
    size_t                          key_len;   /* hex digits, as nibbles */
    ngx_uint_t                      limit;
    ngx_uint_t                      offset;
    ngx_uint_t                      total[3];  /* entries that match */
    unsigned                        limited:1;
    unsigned                        has_route:1;
    unsigned                        has_model:1;
};

/* ngx_ai_gateway_rate.c */
char *ngx_http_ai_rate_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_rate_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_rate_admit(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_limits_loc_conf_t *llcf, ngx_ai_error_t *err);
void ngx_http_ai_rate_release(ngx_http_ai_limits_ctx_t *lctx);
ngx_int_t ngx_http_ai_rate_more(ngx_http_ai_limits_ctx_t *lctx,
    uint64_t tokens, ngx_ai_error_t *err);
ngx_int_t ngx_http_ai_rate_peek(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_limits_loc_conf_t *llcf);
void ngx_http_ai_rate_settle(ngx_http_ai_limits_ctx_t *lctx);
void ngx_http_ai_rate_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w, ngx_http_ai_status_filter_t *f);
void ngx_http_ai_rate_zones_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w);
u_char *ngx_http_ai_sprint_duration(u_char *p, ngx_msec_t ms);
ngx_int_t ngx_http_ai_rate_strict_items(ngx_http_ai_limits_ctx_t *lctx,
    ngx_array_t *items);
ngx_int_t ngx_http_ai_rate_strict_resolve(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_sync_item_t *item, ngx_ai_error_t *err);
ngx_http_ai_rate_node_t *ngx_http_ai_rate_lookup(
    ngx_http_ai_rate_zone_t *zone, uint32_t hash, u_char *id, size_t len);
void ngx_http_ai_rate_decay(ngx_http_ai_rate_node_t *node, uint64_t rpm,
    uint64_t tpm, ngx_msec_t now, uint64_t *req, uint64_t *tok);

/* ngx_ai_gateway_rate_sync.c */
extern ngx_http_ai_sync_source_t  ngx_http_ai_rate_sync_source;

/* ngx_ai_gateway_cost.c */
void ngx_http_ai_cost_keep_budgets(ngx_http_ai_limits_main_conf_t *lmcf);
char *ngx_http_ai_cost_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_cost_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_cost_team_admit(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, ngx_ai_error_t *err);
ngx_int_t ngx_http_ai_cost_admit(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, uint64_t estimate, ngx_ai_error_t *err);
void ngx_http_ai_cost_release(ngx_http_ai_limits_ctx_t *lctx);
ngx_int_t ngx_http_ai_cost_more(ngx_http_ai_limits_ctx_t *lctx,
    uint64_t estimate, ngx_ai_error_t *err);
void ngx_http_ai_cost_less(ngx_http_ai_limits_ctx_t *lctx,
    uint64_t estimate);
ngx_int_t ngx_http_ai_cost_record(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, ngx_str_t *model,
    ngx_http_ai_counters_t *add);
void ngx_http_ai_cost_add(ngx_http_ai_counters_t *to,
    ngx_http_ai_counters_t *add);
ngx_int_t ngx_http_ai_cost_strict_item(ngx_http_ai_limits_ctx_t *lctx,
    ngx_array_t *items);
ngx_int_t ngx_http_ai_cost_strict_resolve(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_sync_item_t *item, ngx_ai_error_t *err);
void ngx_http_ai_cost_fleet_spend(ngx_http_ai_cost_node_t *cn,
    ngx_http_ai_sync_item_t *item, time_t now);
size_t ngx_http_ai_cost_ledger_id(u_char *id, ngx_uint_t keyed,
    u_char *digest, ngx_str_t *route, ngx_str_t *model);
size_t ngx_http_ai_cost_account_id(u_char *id, ngx_uint_t keyed,
    u_char *digest, ngx_str_t *route);
ngx_http_ai_cost_node_t *ngx_http_ai_cost_get(ngx_http_ai_cost_zone_t *zone,
    u_char *id, size_t len, ngx_uint_t route_len, ngx_uint_t model_len,
    ngx_uint_t quiet);
ngx_http_ai_cost_delta_t *ngx_http_ai_cost_delta(
    ngx_http_ai_cost_zone_t *zone, ngx_http_ai_cost_node_t *cn);
void ngx_http_ai_cost_node_parts(ngx_http_ai_cost_node_t *cn,
    u_char **digest, ngx_str_t *route, ngx_str_t *model);
ngx_http_ai_cost_node_t *ngx_http_ai_cost_lookup(
    ngx_http_ai_cost_zone_t *zone, uint32_t hash, u_char *id, size_t len);
uint64_t ngx_http_ai_cost_month(time_t now);

/* ngx_ai_gateway_cost_sync.c */
extern ngx_http_ai_sync_source_t  ngx_http_ai_cost_sync_source;

/* ngx_ai_gateway_cost_json.c: the cost zones in ai_status */
void ngx_http_ai_cost_totals_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w);
void ngx_http_ai_cost_entries_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w, ngx_http_ai_status_filter_t *f, ngx_uint_t list);
void ngx_http_ai_cost_zones_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w);

/* ngx_ai_gateway_cost_state.c */
ngx_int_t ngx_http_ai_cost_state_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_ai_cost_init_process(ngx_cycle_t *cycle);
void ngx_http_ai_cost_exit_process(ngx_cycle_t *cycle);
void ngx_http_ai_cost_exit_master(ngx_cycle_t *cycle);

/* ngx_ai_gateway_sync.c (the rest: ngx_ai_gateway_sync.h) */
void ngx_http_ai_sync_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w);


#endif /* _NGX_AI_GATEWAY_LIMITS_H_INCLUDED_ */
