
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The cost ledger and budgets: ai_cost_zone and ai_cost.  A cost zone
 * holds, in one rbtree with one LRU queue:
 *
 *   ledger entries  per (key digest, route, model): calls, errors, input
 *                   and output tokens, cost in nano-USD (exact figures),
 *                   and apart from them calls the gateway aborted with
 *                   their estimated input and cost; first and last seen;
 *   accounts        per key digest (per route without key=): spend this
 *                   UTC day, this UTC month and ever, and the estimated
 *                   cost of the key's requests in flight, for budgets.
 *
 * Zone totals live in the zone's header and are never evicted.  Keys are
 * SHA-256 digests; the status output shows a short prefix only.
 *
 * state=PATH: the zone is written to PATH and read back when the zone is
 * created (start, restart, a reload that resized the zone): see
 * ngx_ai_gateway_cost_state.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_lease.h"


static ngx_int_t ngx_http_ai_cost_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_cost_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_ai_cost_evict(ngx_http_ai_cost_zone_t *zone,
    ngx_uint_t quiet, ngx_uint_t force);
static ngx_uint_t ngx_http_ai_cost_kept(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_cost_node_t *cn, time_t now);
static void ngx_http_ai_cost_spend(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_cost_node_t *cn, int64_t spend, time_t when, time_t now);
static ngx_int_t ngx_http_ai_cost_check(ngx_http_ai_cost_conf_t *cc,
    ngx_http_ai_cost_node_t *cn, uint64_t estimate, uint64_t *spent,
    uint64_t *in_flight);
static void ngx_http_ai_cost_refused(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, ngx_http_ai_cost_zone_t *zone,
    uint64_t spent, uint64_t in_flight, time_t now, ngx_ai_error_t *err);
static void ngx_http_ai_cost_roll(ngx_http_ai_cost_node_t *node,
    time_t now);
static time_t ngx_http_ai_cost_renews(ngx_uint_t period, time_t now);


static ngx_uint_t  ngx_http_ai_cost_tag;


/* ai_cost_zone NAME:SIZE [state=PATH] [interval=TIME] [sync=redis://...] */

char *
ngx_http_ai_cost_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_limits_main_conf_t *lmcf = conf;

    void                     *sync;
    ssize_t                   size;
    ngx_str_t                *value, name, s;
    ngx_int_t                 interval, rc;
    ngx_uint_t                i;
    ngx_shm_zone_t           *shm_zone, **z;
    ngx_http_ai_cost_zone_t  *zone;

    value = cf->args->elts;

    if (ngx_http_ai_zone_arg(cf, &value[1], "ai_cost_zone", "ai_cost:10m",
                             &name, &size)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_cost_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->interval = 10000;
    sync = NULL;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "state=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            if (s.len == 0) {
                goto invalid;
            }

            if (ngx_conf_full_name(cf->cycle, &s, 0) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            /* NUL-terminated, for open() and rename() */

            zone->state.data = ngx_pnalloc(cf->pool, s.len + 1);
            if (zone->state.data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memcpy(zone->state.data, s.data, s.len);
            zone->state.data[s.len] = '\0';
            zone->state.len = s.len;

            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            interval = ngx_parse_time(&s, 0);

            if (interval == NGX_ERROR || interval < 100) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": expected a time of at "
                                   "least 100ms", &value[i]);
                return NGX_CONF_ERROR;
            }

            zone->interval = (ngx_msec_t) interval;
            continue;
        }

        rc = ngx_http_ai_sync_option(cf, &sync, &value[i]);

        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        goto invalid;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_ai_cost_tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate ai_cost_zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    zone->shm_zone = shm_zone;

    if (sync) {
        zone->sync = ngx_http_ai_sync_zone(cf, sync,
                                           &ngx_http_ai_cost_sync_source,
                                           zone, &name);
        if (zone->sync == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    shm_zone->init = ngx_http_ai_cost_init_zone;
    shm_zone->data = zone;

    z = ngx_array_push(&lmcf->cost_zones);
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    *z = shm_zone;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\": ai_cost_zone takes "
                       "NAME:SIZE, state=, interval= and sync= with its "
                       "options", &value[i]);
    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_ai_cost_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t                fresh;
    ngx_http_ai_cost_zone_t  *zone;

    zone = shm_zone->data;

    /* on a reload the ledger goes on in the same memory */

    zone->sh = ngx_http_ai_zone_state(shm_zone, data,
                                      sizeof(ngx_http_ai_cost_sh_t),
                                      "ai_cost_zone", &zone->shpool, &fresh);
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    if (!fresh) {
        return NGX_OK;
    }

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_ai_cost_rbtree_insert_value);

    ngx_queue_init(&zone->sh->queue);

    ngx_http_ai_sync_init_zone(&zone->sh->sync);

    /* a full zone evicts old entries: that is reported by us */
    zone->shpool->log_nomem = 0;

    /* its state file is read once the cycle is ready
     * (ngx_http_ai_cost_state_init_module) */
    zone->fresh = 1;

    return NGX_OK;
}


/* ai_cost zone=NAME [key=$var] [budget=USD[/day|/month]] */

char *
ngx_http_ai_cost_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_limits_loc_conf_t *llcf = conf;

    u_char                            *p, *last;
    ngx_str_t                         *value, s;
    ngx_uint_t                         i;
    ngx_http_ai_cost_conf_t           *cc, **ccp;
    ngx_http_ai_limits_main_conf_t    *lmcf;
    ngx_http_compile_complex_value_t   ccv;

    if (llcf->cost != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cc = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_cost_conf_t));
    if (cc == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            if (s.len == 0) {
                goto invalid;
            }

            cc->shm_zone = ngx_shared_memory_add(cf, &s, 0,
                                                 &ngx_http_ai_cost_tag);
            if (cc->shm_zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            if (s.len == 0) {
                goto invalid;
            }

            cc->key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
            if (cc->key == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = cc->key;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "empty=", 6) == 0) {
            if (ngx_http_ai_limits_empty_arg(cf, &value[i], &cc->empty)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "budget=", 7) == 0) {
            p = value[i].data + 7;
            last = value[i].data + value[i].len;

            cc->period = NGX_HTTP_AI_BUDGET_EVER;

            if (last - p > 4 && ngx_strncmp(last - 4, "/day", 4) == 0) {
                cc->period = NGX_HTTP_AI_BUDGET_DAY;
                last -= 4;

            } else if (last - p > 6
                       && ngx_strncmp(last - 6, "/month", 6) == 0)
            {
                cc->period = NGX_HTTP_AI_BUDGET_MONTH;
                last -= 6;
            }

            if (ngx_http_ai_parse_usd(p, last - p, NGX_HTTP_AI_MAX_BUDGET,
                                      &cc->budget)
                != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": expected USD with at "
                                   "most 9 decimals, optionally followed by "
                                   "/day or /month, e.g. budget=25/day",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            cc->has_budget = 1;
            continue;
        }

        goto invalid;
    }

    if (cc->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_cost\" must have the \"zone=\" parameter");
        return NGX_CONF_ERROR;
    }

    if (cc->empty == NGX_HTTP_AI_EMPTY_UNSET) {
        /* a budget per key is no budget if a request can carry none */
        cc->empty = cc->has_budget ? NGX_HTTP_AI_EMPTY_DENY
                                   : NGX_HTTP_AI_EMPTY_ALLOW;

    } else if (cc->key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_cost\": empty= needs key=");
        return NGX_CONF_ERROR;
    }

    if (cc->has_budget) {
        lmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_ai_gateway_limits_module);

        ccp = ngx_array_push(&lmcf->budgets);
        if (ccp == NULL) {
            return NGX_CONF_ERROR;
        }

        *ccp = cc;
    }

    llcf->cost = cc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\": ai_cost takes zone=, key=, "
                       "empty= and budget=", &value[i]);
    return NGX_CONF_ERROR;
}


static void
ngx_http_ai_cost_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_http_ai_id_insert(temp, node, sentinel,
                          offsetof(ngx_http_ai_cost_node_t, len),
                          offsetof(ngx_http_ai_cost_node_t, data));
}


size_t
ngx_http_ai_cost_ledger_id(u_char *id, ngx_uint_t keyed, u_char *digest,
    ngx_str_t *route, ngx_str_t *model)
{
    u_char  *p;

    p = id;

    *p++ = NGX_HTTP_AI_COST_LEDGER;
    *p++ = (u_char) keyed;

    if (keyed) {
        p = ngx_cpymem(p, digest, NGX_HTTP_AI_DIGEST_LEN);
    }

    p = ngx_cpymem(p, route->data, route->len);
    *p++ = '\0';
    p = ngx_cpymem(p, model->data, model->len);

    return p - id;
}


size_t
ngx_http_ai_cost_account_id(u_char *id, ngx_uint_t keyed, u_char *digest,
    ngx_str_t *route)
{
    u_char  *p;

    p = id;

    *p++ = NGX_HTTP_AI_COST_ACCOUNT;
    *p++ = (u_char) keyed;

    if (keyed) {
        p = ngx_cpymem(p, digest, NGX_HTTP_AI_DIGEST_LEN);

    } else {
        p = ngx_cpymem(p, route->data, route->len);
    }

    return p - id;
}


/*
 * The node of an identity, created if need be (evicting the least
 * recently used nodes no request holds when the zone is full), moved to
 * the head of the LRU queue.  Called locked.
 */

ngx_http_ai_cost_node_t *
ngx_http_ai_cost_get(ngx_http_ai_cost_zone_t *zone, u_char *id, size_t len,
    ngx_uint_t route_len, ngx_uint_t model_len, ngx_uint_t quiet)
{
    size_t                    size;
    uint32_t                  hash;
    ngx_uint_t                tries;
    ngx_rbtree_node_t        *node;
    ngx_http_ai_cost_node_t  *cn;

    hash = ngx_murmur_hash2(id, len);

    cn = ngx_http_ai_cost_lookup(zone, hash, id, len);

    if (cn) {
        ngx_queue_remove(&cn->queue);
        ngx_queue_insert_head(&zone->sh->queue, &cn->queue);
        return cn;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_ai_cost_node_t, data)
           + len;

    for (tries = 0; /* void */; tries++) {
        node = ngx_slab_alloc_locked(zone->shpool, size);

        if (node) {
            break;
        }

        if (tries == 32
            || ngx_http_ai_cost_evict(zone, quiet, 1) != NGX_OK)
        {
            if (!quiet) {
                ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                              "ai_cost: no room for a new entry: every "
                              "entry is held by a request or is a budget "
                              "account with spend to keep%s",
                              zone->shpool->log_ctx);
            }

            return NULL;
        }
    }

    ngx_memzero(node, size);

    node->key = hash;

    cn = (ngx_http_ai_cost_node_t *) &node->color;

    cn->type = id[0];
    cn->len = (u_short) len;
    cn->route_len = (u_short) route_len;
    cn->model_len = (u_short) model_len;

    ngx_memcpy(cn->data, id, len);

    ngx_rbtree_insert(&zone->sh->rbtree, node);
    ngx_queue_insert_head(&zone->sh->queue, &cn->queue);

    if (cn->type == NGX_HTTP_AI_COST_LEDGER) {
        zone->sh->entries++;

    } else {
        zone->sh->accounts++;
    }

    return cn;
}


/* the node of an identity, or NULL; called locked */

ngx_http_ai_cost_node_t *
ngx_http_ai_cost_lookup(ngx_http_ai_cost_zone_t *zone, uint32_t hash,
    u_char *id, size_t len)
{
    return ngx_http_ai_id_lookup(&zone->sh->rbtree, hash, id, len,
                                 offsetof(ngx_http_ai_cost_node_t, len),
                                 offsetof(ngx_http_ai_cost_node_t, data));
}


/*
 * Frees the least recently used node no request holds; called locked.
 * A node with deltas not yet pushed to Redis goes only when nothing else
 * can (force), and what it had to push is then counted as lost.
 */

static ngx_int_t
ngx_http_ai_cost_evict(ngx_http_ai_cost_zone_t *zone, ngx_uint_t quiet,
    ngx_uint_t force)
{
    u_char                   *digest;
    time_t                    now;
    ngx_str_t                 route, model;
    ngx_uint_t                pass;
    ngx_queue_t              *q;
    ngx_rbtree_node_t        *node;
    ngx_http_ai_cost_node_t  *cn;
    u_char                    hex[NGX_HTTP_AI_KEY_PREFIX];

    cn = NULL;
    now = ngx_time();

    for (pass = 0; pass < (force ? 2 : 1) && cn == NULL; pass++) {

        for (q = ngx_queue_last(&zone->sh->queue);
             q != ngx_queue_sentinel(&zone->sh->queue);
             q = ngx_queue_prev(q))
        {
            cn = ngx_queue_data(q, ngx_http_ai_cost_node_t, queue);

            if (cn->count == 0
                && (pass == 1
                    || (cn->delta == NULL && !cn->batch
                        && !ngx_http_ai_budget_lease_busy(cn)))
                && !ngx_http_ai_cost_kept(zone, cn, now))
            {
                break;
            }

            cn = NULL;
        }
    }

    if (cn == NULL) {
        return NGX_DECLINED;
    }

    if (cn->delta || cn->batch) {
        zone->sh->sync.lost++;
    }

    if (cn->delta) {
        ngx_slab_free_locked(zone->shpool, cn->delta);
        cn->delta = NULL;
    }

    ngx_http_ai_budget_lease_free(zone->shpool, cn);

    /* said at most once a minute: a full zone evicts all the time */

    if (!quiet && ngx_time() - zone->sh->warned >= 60) {
        ngx_http_ai_cost_node_parts(cn, &digest, &route, &model);

        if (digest) {
            ngx_http_ai_digest_hex(hex, digest, NGX_HTTP_AI_KEY_PREFIX / 2);

        } else {
            ngx_memset(hex, '-', NGX_HTTP_AI_KEY_PREFIX);
        }

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "ai_cost_zone \"%V\" is full: dropped the least "
                      "recently used %s (key %*s, route \"%V\", "
                      "model \"%V\") and %ui more since the last such "
                      "message; the zone totals keep their figures; "
                      "make the zone larger",
                      &zone->shm_zone->shm.name,
                      cn->type == NGX_HTTP_AI_COST_LEDGER
                      ? "ledger entry" : "budget account",
                      (size_t) NGX_HTTP_AI_KEY_PREFIX, hex, &route,
                      &model,
                      zone->sh->evicted - zone->sh->evicted_warned);

        zone->sh->warned = ngx_time();
        zone->sh->evicted_warned = zone->sh->evicted + 1;
    }

    if (cn->type == NGX_HTTP_AI_COST_LEDGER) {
        zone->sh->entries--;

    } else {
        zone->sh->accounts--;
    }

    zone->sh->evicted++;

    ngx_queue_remove(&cn->queue);

    node = (ngx_rbtree_node_t *)
               ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

    ngx_rbtree_delete(&zone->sh->rbtree, node);

    ngx_slab_free_locked(zone->shpool, node);

    return NGX_OK;
}


/*
 * An account a budget still counts on: spend in a period some budget of
 * the zone has (today, this month, ever).  Evicting it would forget that
 * spend and give the key its budget again, so it is never evicted; a
 * full zone refuses new keys instead.  Called locked.
 */

static ngx_uint_t
ngx_http_ai_cost_kept(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_cost_node_t *cn, time_t now)
{
    ngx_tm_t  tm;

    if (cn->type != NGX_HTTP_AI_COST_ACCOUNT || zone->kept == 0) {
        return 0;
    }

    if ((zone->kept & (1 << NGX_HTTP_AI_BUDGET_EVER))
        && cn->u.account.total)
    {
        return 1;
    }

    if ((zone->kept & (1 << NGX_HTTP_AI_BUDGET_DAY))
        && cn->u.account.day_spend
        && cn->u.account.day == (uint64_t) now / 86400)
    {
        return 1;
    }

    if ((zone->kept & (1 << NGX_HTTP_AI_BUDGET_MONTH))
        && cn->u.account.month_spend)
    {
        ngx_gmtime(now, &tm);

        if (cn->u.account.month
            == (uint64_t) tm.ngx_tm_year * 12 + tm.ngx_tm_mon - 1)
        {
            return 1;
        }
    }

    return 0;
}


/* at the end of the configuration: the budget periods of each zone */

void
ngx_http_ai_cost_keep_budgets(ngx_http_ai_limits_main_conf_t *lmcf)
{
    ngx_uint_t                 i;
    ngx_http_ai_cost_conf_t  **cc;
    ngx_http_ai_cost_zone_t   *zone;

    cc = lmcf->budgets.elts;

    for (i = 0; i < lmcf->budgets.nelts; i++) {
        zone = cc[i]->shm_zone->data;

        if (zone) {
            zone->kept |= (ngx_uint_t) 1 << cc[i]->period;
        }
    }
}


void
ngx_http_ai_cost_node_parts(ngx_http_ai_cost_node_t *cn, u_char **digest,
    ngx_str_t *route, ngx_str_t *model)
{
    u_char  *p;

    p = cn->data + 2;

    if (cn->data[1]) {
        *digest = p;
        p += NGX_HTTP_AI_DIGEST_LEN;

    } else {
        *digest = NULL;
    }

    route->data = p;
    route->len = cn->route_len;

    if (cn->type == NGX_HTTP_AI_COST_LEDGER) {
        model->data = p + cn->route_len + 1;
        model->len = cn->model_len;

    } else {
        ngx_str_null(model);
    }
}


/* an account's day and month follow the UTC calendar */

static void
ngx_http_ai_cost_roll(ngx_http_ai_cost_node_t *cn, time_t now)
{
    uint64_t  day, month;
    ngx_tm_t  tm;

    day = (uint64_t) now / 86400;

    if (cn->u.account.day != day) {
        cn->u.account.day = day;
        cn->u.account.day_spend = 0;
    }

    ngx_gmtime(now, &tm);

    month = (uint64_t) tm.ngx_tm_year * 12 + tm.ngx_tm_mon - 1;

    if (cn->u.account.month != month) {
        cn->u.account.month = month;
        cn->u.account.month_spend = 0;
    }
}


/* seconds until a budget's period renews; 0: never */

static time_t
ngx_http_ai_cost_renews(ngx_uint_t period, time_t now)
{
    ngx_uint_t  days, year, mon;
    ngx_tm_t    tm;

    static ngx_uint_t  mdays[] = { 31, 28, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31 };

    if (period == NGX_HTTP_AI_BUDGET_DAY) {
        return 86400 - now % 86400;
    }

    if (period != NGX_HTTP_AI_BUDGET_MONTH) {
        return 0;
    }

    ngx_gmtime(now, &tm);

    year = tm.ngx_tm_year;
    mon = tm.ngx_tm_mon;
    days = mdays[mon - 1];

    if (mon == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) {
        days = 29;
    }

    return (time_t) (days - tm.ngx_tm_mday) * 86400 + 86400 - now % 86400;
}


/*
 * A budget check: the key's spend in the period plus what its requests in
 * flight are estimated to cost must be below the budget; then this
 * request's estimate joins those in flight until it ends.  Check and
 * reservation under one lock: concurrent requests overshoot the budget by
 * at most what one request costs beyond its estimate.  With sync= the
 * spend is the fleet's as last known plus what was spent here since; in
 * a strict zone whose Redis is reachable the check is deferred: Redis
 * checks and reserves (ngx_http_ai_cost_strict_resolve).
 */

ngx_int_t
ngx_http_ai_cost_admit(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, uint64_t estimate, ngx_ai_error_t *err)
{
    size_t                    len;
    time_t                    now;
    uint64_t                  spent, in_flight;
    ngx_int_t                 lease;
    ngx_uint_t                keyed, defer, pull, from;
    ngx_http_ai_key_t        *key;
    ngx_http_ai_cost_node_t  *cn;
    ngx_http_ai_cost_zone_t  *zone;
    ngx_http_ai_budget_ask_t  ask;
    u_char                    id[NGX_HTTP_AI_COST_ID_LEN];

    zone = cc->shm_zone->data;
    key = NULL;
    keyed = 0;

    if (cc->key) {
        if (ngx_http_ai_limits_key(lctx, cc->key, &key) != NGX_OK) {
            return NGX_ERROR;
        }

        if (key->empty) {
            switch (cc->empty) {

            case NGX_HTTP_AI_EMPTY_DENY:
                lctx->budget_status = NGX_HTTP_AI_STATUS_REJECTED;
                ngx_http_ai_limits_key_missing(lctx, err);
                return NGX_DECLINED;

            case NGX_HTTP_AI_EMPTY_ALLOW:
                /* no key, no account: as limit_req does with empty keys */
                return NGX_OK;

            default: /* NGX_HTTP_AI_EMPTY_SHARED: the route's account */
                break;
            }

        } else {
            keyed = 1;
        }
    }

    len = ngx_http_ai_cost_account_id(id, keyed, key ? key->digest : NULL,
                                      &lctx->route);

    now = ngx_time();

    ngx_shmtx_lock(&zone->shpool->mutex);

    cn = ngx_http_ai_cost_get(zone, id, len, keyed ? 0 : lctx->route.len, 0,
                              0);

    if (cn == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);

        lctx->budget_status = NGX_HTTP_AI_STATUS_REJECTED;
        ngx_http_ai_limits_zone_full(lctx, cc->shm_zone, err);

        return NGX_DECLINED;
    }

    ngx_http_ai_cost_roll(cn, now);

    cn->u.account.used = ngx_current_msec;

    lctx->account_zone = zone;
    lctx->account_conf = cc;

    defer = zone->sync && ngx_http_ai_sync_strict_ready(zone->sync);
    pull = 0;

    if (zone->sync && !defer
        && ngx_http_ai_sync_stale(zone->sync, ngx_current_msec,
                                  cn->u.account.synced))
    {
        /* first seen here, or not pulled for long: pulled at once */
        cn->u.account.synced = ngx_current_msec;
        pull = 1;
    }

    if (defer) {
        cn->count++;

        ngx_shmtx_unlock(&zone->shpool->mutex);

        lctx->account = cn;
        lctx->reserved = estimate;
        lctx->reserved_at = now;
        lctx->account_deferred = 1;
        lctx->deferred++;

        return NGX_OK;
    }

    lease = NGX_DONE;
    from = 0;
    ask.ask = 0;

    if (zone->sync
        && ngx_http_ai_sync_mode(zone->sync, NULL)
           == NGX_HTTP_AI_SYNC_MODE_LEASE)
    {
        lease = ngx_http_ai_budget_lease_take(zone, cc, cn, estimate, &from,
                                              &spent, &ask,
                                              lctx->request->connection->log);
        in_flight = cn->u.account.in_flight;
    }

    if (lease == NGX_DONE) {
        lease = ngx_http_ai_cost_check(cc, cn, estimate, &spent, &in_flight);
    }

    if (lease == NGX_OK) {
        cn->count++;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (ask.ask) {
        ngx_http_ai_budget_lease_ask(zone->sync, zone->sh->sync.instance,
                                     ngx_murmur_hash2(id, len), id, len,
                                     &ask);
    }

    if (lease == NGX_BUSY) {
        /* the host's reservations without a slice are at the bound */
        lctx->budget_status = NGX_HTTP_AI_STATUS_REJECTED;
        lctx->retry_after = NGX_HTTP_AI_LEASE_RETRY / 1000;

        ngx_ai_error_set(err, NGX_HTTP_TOO_MANY_REQUESTS,
                         "rate_limit_exceeded", NULL, "rate_limit_exceeded",
                         "Budget check pending. Please try again later.");
        return NGX_DECLINED;
    }

    if (lease != NGX_OK) {
        ngx_http_ai_cost_refused(lctx, cc, zone, spent, in_flight, now, err);
        return NGX_DECLINED;
    }

    if (pull) {
        ngx_http_ai_sync_pull(zone->sync, NGX_HTTP_AI_SYNC_ACCOUNT,
                              ngx_murmur_hash2(id, len), id, len,
                              (uint64_t) now / 86400,
                              ngx_http_ai_cost_month(now));
    }

    lctx->account = cn;
    lctx->reserved = estimate;
    lctx->reserved_at = now;
    lctx->account_lease = from;
    lctx->budget_status = NGX_HTTP_AI_STATUS_PASSED;

    return NGX_OK;
}


/*
 * A team's budget (ai_auth's team=): its account's spend, counted by
 * every request of its keys, is checked before the key's own; nothing is
 * reserved in it, so requests in flight may take it past its budget by
 * what they cost.
 */

ngx_int_t
ngx_http_ai_cost_team_admit(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, ngx_ai_error_t *err)
{
    size_t                    len;
    time_t                    now;
    uint64_t                  spent;
    ngx_http_ai_key_t        *key;
    ngx_http_ai_cost_node_t  *cn;
    ngx_http_ai_cost_zone_t  *zone;
    u_char                    id[NGX_HTTP_AI_COST_ID_LEN];

    zone = cc->shm_zone->data;

    if (ngx_http_ai_limits_key(lctx, cc->key, &key) != NGX_OK) {
        return NGX_ERROR;
    }

    len = ngx_http_ai_cost_account_id(id, 1, key->digest, &lctx->route);

    now = ngx_time();
    spent = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    cn = ngx_http_ai_cost_lookup(zone, ngx_murmur_hash2(id, len), id, len);

    if (cn) {
        ngx_http_ai_cost_roll(cn, now);

        spent = cc->period == NGX_HTTP_AI_BUDGET_DAY
                ? cn->u.account.day_spend
                : cc->period == NGX_HTTP_AI_BUDGET_MONTH
                  ? cn->u.account.month_spend
                : cn->u.account.total;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (spent < cc->budget) {
        return NGX_OK;
    }

    ngx_http_ai_cost_refused(lctx, cc, zone, spent, 0, now, err);

    return NGX_DECLINED;
}


/* the check itself, and the reservation; called locked */

static ngx_int_t
ngx_http_ai_cost_check(ngx_http_ai_cost_conf_t *cc,
    ngx_http_ai_cost_node_t *cn, uint64_t estimate, uint64_t *spent,
    uint64_t *in_flight)
{
    *spent = cc->period == NGX_HTTP_AI_BUDGET_DAY ? cn->u.account.day_spend
             : cc->period == NGX_HTTP_AI_BUDGET_MONTH
               ? cn->u.account.month_spend
             : cn->u.account.total;

    *in_flight = cn->u.account.in_flight;

    if (*spent + *in_flight >= cc->budget) {
        return NGX_DECLINED;
    }

    cn->u.account.in_flight += estimate;

    return NGX_OK;
}


/* a refusal: the 402's message, Retry-After, the log */

static void
ngx_http_ai_cost_refused(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, ngx_http_ai_cost_zone_t *zone,
    uint64_t spent, uint64_t in_flight, time_t now, ngx_ai_error_t *err)
{
    u_char              *p;
    ngx_http_request_t  *r;
    u_char               usd[3][NGX_INT64_LEN + 8];

    static const char  *per[] = { "", " per day (UTC)", " per month (UTC)" };

    r = lctx->request;

    lctx->budget_status = NGX_HTTP_AI_STATUS_REJECTED;
    lctx->retry_after = ngx_http_ai_cost_renews(cc->period, now);

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai_cost: budget of zone \"%V\" reached on \"%V\"",
                  &zone->shm_zone->shm.name, &lctx->route);

    ngx_ai_error_set(err, NGX_HTTP_AI_PAYMENT_REQUIRED,
                     "insufficient_quota", NULL, "budget_exceeded",
                     "Budget exceeded.");

    p = ngx_pnalloc(r->pool, 256 + 3 * NGX_INT64_LEN);
    if (p == NULL) {
        return;
    }

    *ngx_http_ai_sprint_usd(usd[0], cc->budget) = '\0';
    *ngx_http_ai_sprint_usd(usd[1], spent) = '\0';
    *ngx_http_ai_sprint_usd(usd[2], in_flight) = '\0';

    err->message.data = p;
    p = ngx_sprintf(p, "Budget exceeded: the budget of %s USD%s for "
                    "this %s is spent (%s USD, and %s USD in requests "
                    "in flight).", usd[0], per[cc->period],
                    cc->key ? "key" : "route", usd[1], usd[2]);

    if (lctx->retry_after) {
        p = ngx_sprintf(p, " It renews in %Ts.", lctx->retry_after);
    }

    err->message.len = p - err->message.data;
}


/*
 * The request is over: its estimate leaves the account's in-flight sum,
 * or, reserved in Redis by a strict admission, is given back there by a
 * negative delta at the next sync.
 */

void
ngx_http_ai_cost_release(ngx_http_ai_limits_ctx_t *lctx)
{
    ngx_http_ai_cost_node_t  *cn;
    ngx_http_ai_cost_zone_t  *zone;

    cn = lctx->account;

    if (cn == NULL) {
        return;
    }

    zone = lctx->account_zone;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (lctx->account_strict) {
        ngx_http_ai_cost_spend(zone, cn, - (int64_t) lctx->reserved,
                               lctx->reserved_at, ngx_time());

    } else if (!lctx->account_deferred) {
        cn->u.account.in_flight -= ngx_min(lctx->reserved,
                                           cn->u.account.in_flight);

        if (lctx->account_lease) {
            ngx_http_ai_budget_lease_release(cn, lctx->account_lease,
                                             lctx->reserved);
        }
    }

    cn->u.account.in_flight -= ngx_min(lctx->more, cn->u.account.in_flight);

    cn->count--;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    lctx->account = NULL;
    lctx->reserved = 0;
    lctx->more = 0;
    lctx->account_strict = 0;
    lctx->account_deferred = 0;
    lctx->account_lease = 0;
}


/*
 * Another call of an admitted request: the budget is checked again, with
 * every request's reservations in flight, and the call's own estimate
 * joins them; spent, it is refused (402) before the call is made.
 */

ngx_int_t
ngx_http_ai_cost_more(ngx_http_ai_limits_ctx_t *lctx, uint64_t estimate,
    ngx_ai_error_t *err)
{
    time_t                    now;
    uint64_t                  spent, in_flight;
    ngx_http_ai_cost_node_t  *cn;
    ngx_http_ai_cost_zone_t  *zone;

    cn = lctx->account;

    if (cn == NULL || lctx->account_deferred) {
        return NGX_OK;
    }

    zone = lctx->account_zone;
    now = ngx_time();

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_ai_cost_roll(cn, now);

    if (ngx_http_ai_cost_check(lctx->account_conf, cn, estimate, &spent,
                               &in_flight)
        != NGX_OK)
    {
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_http_ai_cost_refused(lctx, lctx->account_conf, zone, spent,
                                 in_flight, now, err);
        return NGX_DECLINED;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    lctx->more += estimate;

    return NGX_OK;
}


/* what ngx_http_ai_cost_more() reserved for a call not made, given back */

void
ngx_http_ai_cost_less(ngx_http_ai_limits_ctx_t *lctx, uint64_t estimate)
{
    ngx_http_ai_cost_node_t  *cn;
    ngx_http_ai_cost_zone_t  *zone;

    cn = lctx->account;

    if (cn == NULL || lctx->account_deferred) {
        return;
    }

    zone = lctx->account_zone;
    estimate = ngx_min(estimate, lctx->more);

    ngx_shmtx_lock(&zone->shpool->mutex);

    cn->u.account.in_flight -= ngx_min(estimate, cn->u.account.in_flight);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    lctx->more -= estimate;
}


void
ngx_http_ai_cost_add(ngx_http_ai_counters_t *to, ngx_http_ai_counters_t *add)
{
    to->requests += add->requests;
    to->errors += add->errors;
    to->input_tokens += add->input_tokens;
    to->output_tokens += add->output_tokens;
    to->cost += add->cost;
    to->aborted += add->aborted;
    to->est_input_tokens += add->est_input_tokens;
    to->est_cost += add->est_cost;
}


/* one call's figures into the ledger, the zone totals and the account */

ngx_int_t
ngx_http_ai_cost_record(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_cost_conf_t *cc, ngx_str_t *model,
    ngx_http_ai_counters_t *add)
{
    size_t                     len, alen;
    time_t                     now;
    uint64_t                   spend;
    ngx_str_t                  m;
    ngx_uint_t                 keyed, account;
    ngx_http_ai_key_t         *key;
    ngx_http_ai_cost_node_t   *ln, *an;
    ngx_http_ai_cost_zone_t   *zone;
    ngx_http_ai_cost_delta_t  *delta;
    u_char                     id[NGX_HTTP_AI_COST_ID_LEN];
    u_char                     aid[NGX_HTTP_AI_COST_ID_LEN];

    zone = cc->shm_zone->data;
    key = NULL;
    keyed = 0;
    account = 1;

    if (cc->key) {
        if (ngx_http_ai_limits_key(lctx, cc->key, &key) != NGX_OK) {
            return NGX_ERROR;
        }

        keyed = !key->empty;
        account = keyed || cc->empty == NGX_HTTP_AI_EMPTY_SHARED;
    }

    m.data = model->data;
    m.len = ngx_min(model->len, NGX_AI_MAX_MODEL_LEN);

    len = ngx_http_ai_cost_ledger_id(id, keyed, keyed ? key->digest : NULL,
                                     &lctx->route, &m);

    alen = ngx_http_ai_cost_account_id(aid, keyed,
                                       keyed ? key->digest : NULL,
                                       &lctx->route);

    now = ngx_time();
    spend = add->cost + add->est_cost;

    ngx_shmtx_lock(&zone->shpool->mutex);

    ngx_http_ai_cost_add(&zone->sh->totals, add);

    if (zone->sync) {
        /* never evicted: the fleet's totals miss nothing */
        ngx_http_ai_cost_add(&zone->sh->pend, add);
    }

    ln = ngx_http_ai_cost_get(zone, id, len, lctx->route.len, m.len, 0);

    if (ln) {
        /* held while the account may need room */
        ln->count++;

        ngx_http_ai_cost_add(&ln->u.ledger.c, add);

        if (ln->u.ledger.first == 0) {
            ln->u.ledger.first = now;
        }

        ln->u.ledger.last = now;

        if (zone->sync) {
            delta = ngx_http_ai_cost_delta(zone, ln);

            if (delta) {
                ngx_http_ai_cost_add(&delta->u.ledger.pend, add);
            }
        }
    }

    an = NULL;

    /* the account held for the budget is the key's, not its team's: the
     * team's is found by its own id */

    if (lctx->account && lctx->account_zone == zone && cc != lctx->team) {
        an = lctx->account;

    } else if (account) {
        an = ngx_http_ai_cost_get(zone, aid, alen,
                                  keyed ? 0 : lctx->route.len, 0, 0);
    }

    if (an) {
        an->u.account.last = now;
        ngx_http_ai_cost_spend(zone, an, (int64_t) spend, now, now);

        if (an == lctx->account && lctx->account_lease == 1) {
            /* settled: the real cost, from the slice */
            ngx_http_ai_budget_lease_spent(&zone->sh->sync, an, spend);
        }
    }

    if (ln) {
        ln->count--;
    }

    zone->sh->gen++;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


/*
 * Spend added to an account (or taken back from it: a strict reservation
 * given back), in the UTC day and month of "when": a past day's or
 * month's figure is not kept, only the total then.  With sync= it is
 * also a delta to push.  Called locked.
 */

static void
ngx_http_ai_cost_spend(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_cost_node_t *cn, int64_t spend, time_t when, time_t now)
{
    uint64_t                    day, month;
    ngx_uint_t                  same_day, same_month;
    ngx_http_ai_cost_delta_t   *delta;
    ngx_http_ai_spend_delta_t  *p;

    ngx_http_ai_cost_roll(cn, now);

    day = (uint64_t) when / 86400;
    month = ngx_http_ai_cost_month(when);

    same_day = (cn->u.account.day == day);
    same_month = (cn->u.account.month == month);

#define ngx_http_ai_cost_plus(v, d)                                          \
    (v) = ((d) >= 0 || (uint64_t) - (d) < (v)) ? (v) + (d) : 0

    if (same_day) {
        ngx_http_ai_cost_plus(cn->u.account.day_spend, spend);
    }

    if (same_month) {
        ngx_http_ai_cost_plus(cn->u.account.month_spend, spend);
    }

    ngx_http_ai_cost_plus(cn->u.account.total, spend);

#undef ngx_http_ai_cost_plus

    if (zone->sync == NULL || spend == 0) {
        return;
    }

    cn->count++;
    delta = ngx_http_ai_cost_delta(zone, cn);
    cn->count--;

    if (delta == NULL) {
        return;
    }

    p = &delta->u.account.pend;

    if (same_day) {
        if (p->day != day) {
            /* what is left of a past day no longer counts anywhere */
            p->day = day;
            p->day_spend = 0;
        }

        p->day_spend += spend;
    }

    if (same_month) {
        if (p->month != month) {
            p->month = month;
            p->month_spend = 0;
        }

        p->month_spend += spend;
    }

    p->total += spend;
}


/* year * 12 + month - 1 of a UTC time, as accounts keep it */

uint64_t
ngx_http_ai_cost_month(time_t now)
{
    ngx_tm_t  tm;

    ngx_gmtime(now, &tm);

    return (uint64_t) tm.ngx_tm_year * 12 + tm.ngx_tm_mon - 1;
}


/*
 * A node's deltas to push, allocated when it first has some.  When the
 * zone has no room even after evicting a node that has nothing to push,
 * the delta is dropped (the zone totals keep it) and counted as lost.
 * Called locked, with the node held.
 */

ngx_http_ai_cost_delta_t *
ngx_http_ai_cost_delta(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_cost_node_t *cn)
{
    ngx_uint_t                 tries;
    ngx_http_ai_cost_delta_t  *delta;

    if (cn->delta) {
        return cn->delta;
    }

    for (tries = 0; /* void */; tries++) {
        delta = ngx_slab_calloc_locked(zone->shpool,
                                       sizeof(ngx_http_ai_cost_delta_t));
        if (delta) {
            break;
        }

        if (tries == 8 || ngx_http_ai_cost_evict(zone, 0, 0) != NGX_OK) {
            zone->sh->sync.lost++;
            return NULL;
        }
    }

    cn->delta = delta;

    return delta;
}


/* ---- strict admission: Redis checks and reserves ---- */

ngx_int_t
ngx_http_ai_cost_strict_item(ngx_http_ai_limits_ctx_t *lctx,
    ngx_array_t *items)
{
    ngx_http_ai_cost_node_t  *cn;
    ngx_http_ai_cost_conf_t  *cc;
    ngx_http_ai_sync_item_t  *item;

    cn = lctx->account;

    if (!lctx->account_deferred || cn == NULL) {
        return NGX_OK;
    }

    cc = lctx->account_conf;

    item = ngx_array_push(items);
    if (item == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(item, sizeof(ngx_http_ai_sync_item_t));

    /* a held node's identity does not change: no lock needed */

    item->type = NGX_HTTP_AI_SYNC_ACCOUNT;
    item->id = cn->data;
    item->len = cn->len;
    item->sync = lctx->account_zone->sync;
    item->a[0] = cc->period;
    item->a[1] = cc->budget;
    item->a[2] = (uint64_t) lctx->reserved_at / 86400;
    item->a[3] = ngx_http_ai_cost_month(lctx->reserved_at);
    item->d[0] = (int64_t) lctx->reserved;

    return NGX_OK;
}


/*
 * What Redis said of a deferred budget check: reserved there (res: the
 * period's spend, day, month, total after it), refused (res[0]: the
 * spend), not reserved because a rate limit refused, or no answer, in
 * which case the local figures decide as without strict.
 */

ngx_int_t
ngx_http_ai_cost_strict_resolve(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_sync_item_t *item, ngx_ai_error_t *err)
{
    time_t                    now;
    uint64_t                  spent, in_flight;
    ngx_int_t                 rc;
    ngx_http_ai_cost_node_t  *cn;
    ngx_http_ai_cost_zone_t  *zone;
    ngx_http_ai_cost_conf_t  *cc;

    cn = lctx->account;

    if (!lctx->account_deferred || cn == NULL) {
        return NGX_OK;
    }

    zone = lctx->account_zone;
    cc = lctx->account_conf;
    now = ngx_time();
    rc = NGX_OK;
    spent = 0;
    in_flight = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    lctx->account_deferred = 0;

    switch (item->status) {

    case NGX_HTTP_AI_STRICT_OK:
        ngx_http_ai_cost_fleet_spend(cn, item, now);
        lctx->account_strict = 1;
        break;

    case NGX_HTTP_AI_STRICT_REFUSED:
        ngx_http_ai_cost_fleet_spend(cn, item, now);
        spent = item->res[0] > 0 ? (uint64_t) item->res[0] : 0;
        in_flight = cn->u.account.in_flight;
        lctx->reserved = 0;
        rc = NGX_DECLINED;
        break;

    case NGX_HTTP_AI_STRICT_NOT_TAKEN:
        lctx->reserved = 0;
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_OK;

    default: /* NGX_HTTP_AI_STRICT_FAILED */
        ngx_http_ai_cost_roll(cn, now);

        if (ngx_http_ai_cost_check(cc, cn, lctx->reserved, &spent,
                                   &in_flight)
            != NGX_OK)
        {
            lctx->reserved = 0;
            rc = NGX_DECLINED;
        }

        break;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc == NGX_DECLINED) {
        ngx_http_ai_cost_refused(lctx, cc, zone, spent, in_flight, now, err);
        return NGX_DECLINED;
    }

    lctx->budget_status = NGX_HTTP_AI_STATUS_PASSED;

    return NGX_OK;
}


/*
 * An account's figures become the fleet's, as Redis answered them for
 * the day a[2] and month a[3] (res[1], res[2]) and ever (res[3]), plus
 * what was spent here and not pushed yet.  Called locked.
 */

void
ngx_http_ai_cost_fleet_spend(ngx_http_ai_cost_node_t *cn,
    ngx_http_ai_sync_item_t *item, time_t now)
{
    int64_t                     v;
    ngx_http_ai_spend_delta_t  *p;

    ngx_http_ai_cost_roll(cn, now);

    p = cn->delta ? &cn->delta->u.account.pend : NULL;

    if (cn->u.account.day == item->a[2]) {
        v = item->res[1] + ((p && p->day == item->a[2]) ? p->day_spend : 0);
        cn->u.account.day_spend = v > 0 ? (uint64_t) v : 0;
    }

    if (cn->u.account.month == item->a[3]) {
        v = item->res[2]
            + ((p && p->month == item->a[3]) ? p->month_spend : 0);
        cn->u.account.month_spend = v > 0 ? (uint64_t) v : 0;
    }

    v = item->res[3] + (p ? p->total : 0);
    cn->u.account.total = v > 0 ? (uint64_t) v : 0;

    cn->u.account.synced = ngx_current_msec;
}
