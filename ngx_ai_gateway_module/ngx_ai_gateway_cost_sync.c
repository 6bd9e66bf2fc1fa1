
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The cost side of sync= (ngx_ai_gateway_sync.c): what a cost zone
 * pushes to Redis in a batch (its totals, ledger entries and accounts),
 * and the fleet's figures it takes back from a batch's answer or a pull.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_lease.h"


#define NGX_HTTP_AI_COST_RETURNS  32          /* slices given back a batch */


/* a slice to give back, once the zone is unlocked */
typedef struct {
    uint32_t                        hash;
    u_char                         *id;
    size_t                          len;
    ngx_http_ai_budget_ask_t        ask;
} ngx_http_ai_cost_return_t;


static ngx_http_ai_sync_sh_t *ngx_http_ai_cost_sync_sh(void *data,
    ngx_slab_pool_t **shpool);
static ngx_int_t ngx_http_ai_cost_sync_batch(void *data,
    ngx_http_ai_sync_batch_t *b, ngx_uint_t refresh, ngx_uint_t max);
static void ngx_http_ai_cost_counters_delta(int64_t *d,
    ngx_http_ai_counters_t *c);
static void ngx_http_ai_cost_sync_ack(void *data,
    ngx_http_ai_sync_batch_t *b);
static void ngx_http_ai_cost_sync_pull(void *data,
    ngx_http_ai_sync_item_t *item);
static ngx_uint_t ngx_http_ai_cost_sync_unsynced(void *data,
    ngx_http_ai_counters_t *fleet, ngx_uint_t *known);
static ngx_uint_t ngx_http_ai_cost_sync_returns(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_sync_batch_t *b, ngx_http_ai_cost_return_t *ret);
static void ngx_http_ai_cost_sync_lease(void *data,
    ngx_http_ai_sync_item_t *item);
static void ngx_http_ai_cost_sync_json(void *data, ngx_ai_jw_t *w,
    ngx_http_ai_sync_sh_t *st);


ngx_http_ai_sync_source_t  ngx_http_ai_cost_sync_source = {
    ngx_string("cost"),
    ngx_http_ai_cost_sync_sh,
    ngx_http_ai_cost_sync_batch,
    ngx_http_ai_cost_sync_ack,
    ngx_http_ai_cost_sync_pull,
    ngx_http_ai_cost_sync_unsynced,
    ngx_http_ai_cost_sync_lease,
    ngx_http_ai_cost_sync_json,
    1
};


static ngx_http_ai_sync_sh_t *
ngx_http_ai_cost_sync_sh(void *data, ngx_slab_pool_t **shpool)
{
    ngx_http_ai_cost_zone_t *zone = data;

    if (zone->sh == NULL) {
        return NULL;
    }

    *shpool = zone->shpool;
    return &zone->sh->sync;
}


/*
 * The batch to push: when none is out, one is frozen from the zone
 * totals, the nodes with something to push and, with refresh, the
 * accounts used in the last minute, whose fleet spend is pulled; then
 * (also for a batch sent again) its items are copied into b, the totals
 * first.  NGX_DECLINED: nothing to push.
 */

static ngx_int_t
ngx_http_ai_cost_sync_batch(void *data, ngx_http_ai_sync_batch_t *b,
    ngx_uint_t refresh, ngx_uint_t max)
{
    ngx_http_ai_cost_zone_t *zone = data;

    u_char                    *digest, *p;
    time_t                     now;
    ngx_int_t                  rc;
    ngx_uint_t                 n, dirty;
    ngx_queue_t               *q;
    ngx_rbtree_node_t         *rb;
    ngx_http_ai_sync_sh_t     *sy;
    ngx_http_ai_cost_node_t   *cn;
    ngx_http_ai_sync_item_t   *item;
    ngx_http_ai_cost_delta_t  *delta;
    ngx_uint_t                 nret, i;
    ngx_http_ai_cost_return_t  ret[NGX_HTTP_AI_COST_RETURNS];

    static ngx_http_ai_counters_t  zero;

    rc = NGX_OK;
    now = ngx_time();

    ngx_shmtx_lock(&zone->shpool->mutex);

    sy = &zone->sh->sync;

    nret = ngx_http_ai_cost_sync_returns(zone, b, ret);

    if (!sy->frozen) {
        n = 0;
        b->more = 0;

        for (q = ngx_queue_head(&zone->sh->queue);
             q != ngx_queue_sentinel(&zone->sh->queue);
             q = ngx_queue_next(q))
        {
            cn = ngx_queue_data(q, ngx_http_ai_cost_node_t, queue);
            delta = cn->delta;

            dirty = delta
                    && (cn->type == NGX_HTTP_AI_COST_LEDGER
                        ? ngx_memcmp(&delta->u.ledger.pend, &zero,
                                     sizeof(ngx_http_ai_counters_t)) != 0
                        : (delta->u.account.pend.day_spend
                           || delta->u.account.pend.month_spend
                           || delta->u.account.pend.total));

            /* accounts used in the last minute are kept fresh: money */

            if (!dirty
                && !(refresh && cn->type == NGX_HTTP_AI_COST_ACCOUNT
                     && (ngx_msec_int_t) (ngx_current_msec
                                          - cn->u.account.used) < 60000))
            {
                continue;
            }

            if (n == max) {
                b->more = 1;
                break;
            }

            if (dirty) {
                if (cn->type == NGX_HTTP_AI_COST_LEDGER) {
                    delta->u.ledger.send = delta->u.ledger.pend;
                    ngx_memzero(&delta->u.ledger.pend,
                                sizeof(ngx_http_ai_counters_t));

                } else {
                    delta->u.account.send = delta->u.account.pend;
                    delta->u.account.pend.day_spend = 0;
                    delta->u.account.pend.month_spend = 0;
                    delta->u.account.pend.total = 0;
                }
            }

            cn->batch = 1;
            n++;
        }

        if (n == 0 && !refresh
            && ngx_memcmp(&zone->sh->pend, &zero,
                          sizeof(ngx_http_ai_counters_t)) == 0)
        {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            rc = NGX_DECLINED;
            goto returns;
        }

        zone->sh->send = zone->sh->pend;
        ngx_memzero(&zone->sh->pend, sizeof(ngx_http_ai_counters_t));

        sy->frozen = 1;
        sy->seq++;
        sy->items = n;
    }

    /* the zone totals, first */

    item = ngx_array_push(&b->items);
    if (item == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memzero(item, sizeof(ngx_http_ai_sync_item_t));

    item->type = NGX_HTTP_AI_SYNC_TOTALS;
    ngx_http_ai_cost_counters_delta(item->d, &zone->sh->send);

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        cn = ngx_queue_data(q, ngx_http_ai_cost_node_t, queue);

        if (!cn->batch) {
            continue;
        }

        item = ngx_array_push(&b->items);
        if (item == NULL) {
            rc = NGX_ERROR;
            break;
        }

        ngx_memzero(item, sizeof(ngx_http_ai_sync_item_t));

        /* the identity, and for a ledger entry the key digest in hex */

        item->id = ngx_pnalloc(b->pool, cn->len + 2 * NGX_HTTP_AI_DIGEST_LEN);
        if (item->id == NULL) {
            rc = NGX_ERROR;
            break;
        }

        ngx_memcpy(item->id, cn->data, cn->len);

        rb = (ngx_rbtree_node_t *)
                 ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

        item->hash = (uint32_t) rb->key;
        item->len = cn->len;
        delta = cn->delta;

        if (cn->type == NGX_HTTP_AI_COST_LEDGER) {
            item->type = NGX_HTTP_AI_SYNC_LEDGER;

            ngx_http_ai_cost_node_parts(cn, &digest, &item->route,
                                        &item->model);

            /* the copy's, not the zone's */
            item->route.data = item->id + (item->route.data - cn->data);
            item->model.data = item->id + (item->model.data - cn->data);

            if (digest) {
                p = item->id + cn->len;
                ngx_http_ai_digest_hex(p, digest, NGX_HTTP_AI_DIGEST_LEN);

                item->key.data = p;
                item->key.len = 2 * NGX_HTTP_AI_DIGEST_LEN;
            }

            if (delta) {
                ngx_http_ai_cost_counters_delta(item->d,
                                                &delta->u.ledger.send);
            }

        } else {
            item->type = NGX_HTTP_AI_SYNC_ACCOUNT;
            item->a[2] = (uint64_t) now / 86400;
            item->a[3] = ngx_http_ai_cost_month(now);

            if (delta) {
                item->a[0] = delta->u.account.send.day;
                item->a[1] = delta->u.account.send.month;
                item->d[0] = delta->u.account.send.day_spend;
                item->d[1] = delta->u.account.send.month_spend;
                item->d[2] = delta->u.account.send.total;
            }
        }
    }

    b->seq = sy->seq;
    ngx_memcpy(b->instance, sy->instance, NGX_HTTP_AI_SYNC_INSTANCE_LEN);

    ngx_shmtx_unlock(&zone->shpool->mutex);

returns:

    for (i = 0; i < nret; i++) {
        ngx_http_ai_budget_lease_ask(zone->sync, b->instance, ret[i].hash,
                                     ret[i].id, ret[i].len, &ret[i].ask);
    }

    return rc;
}


/*
 * Lease zones: the slices past their end (all when the worker quits) to
 * give back, at most NGX_HTTP_AI_COST_RETURNS a batch (the others at the
 * next one).  Called locked.
 */

static ngx_uint_t
ngx_http_ai_cost_sync_returns(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_sync_batch_t *b, ngx_http_ai_cost_return_t *ret)
{
    ngx_uint_t                n;
    ngx_queue_t              *q;
    ngx_rbtree_node_t        *rb;
    ngx_http_ai_cost_node_t  *cn;

    ngx_memcpy(b->instance, zone->sh->sync.instance,
               NGX_HTTP_AI_SYNC_INSTANCE_LEN);

    if (ngx_http_ai_sync_mode(zone->sync, NULL)
        != NGX_HTTP_AI_SYNC_MODE_LEASE)
    {
        return 0;
    }

    n = 0;

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue)
         && n < NGX_HTTP_AI_COST_RETURNS;
         q = ngx_queue_next(q))
    {
        cn = ngx_queue_data(q, ngx_http_ai_cost_node_t, queue);

        if (cn->type != NGX_HTTP_AI_COST_ACCOUNT
            || !ngx_http_ai_budget_lease_return(&zone->sh->sync, cn,
                                                ngx_current_msec, b->final,
                                                &ret[n].ask))
        {
            continue;
        }

        ret[n].id = ngx_pnalloc(b->pool, cn->len);
        if (ret[n].id == NULL) {
            break;
        }

        ngx_memcpy(ret[n].id, cn->data, cn->len);

        rb = (ngx_rbtree_node_t *)
                 ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

        ret[n].hash = (uint32_t) rb->key;
        ret[n].len = cn->len;
        n++;
    }

    return n;
}


/* a budget slice's answer (ngx_ai_gateway_lease_budget.c), or none */

static void
ngx_http_ai_cost_sync_lease(void *data, ngx_http_ai_sync_item_t *item)
{
    ngx_http_ai_cost_zone_t *zone = data;

    ngx_http_ai_cost_node_t  *cn;

    if (zone->sh == NULL) {
        return;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    cn = ngx_http_ai_cost_lookup(zone, item->hash, item->id, item->len);

    if (cn && cn->type != NGX_HTTP_AI_COST_ACCOUNT) {
        cn = NULL;
    }

    ngx_http_ai_budget_lease_answer(zone->sync, &zone->sh->sync, cn, item);

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


static void
ngx_http_ai_cost_sync_json(void *data, ngx_ai_jw_t *w,
    ngx_http_ai_sync_sh_t *st)
{
    ngx_http_ai_cost_zone_t *zone = data;

    ngx_uint_t  fallback;

    if (ngx_http_ai_sync_mode(zone->sync, &fallback)
        == NGX_HTTP_AI_SYNC_MODE_LEASE)
    {
        ngx_http_ai_budget_lease_json(w, st, fallback);
    }
}


static void
ngx_http_ai_cost_counters_delta(int64_t *d, ngx_http_ai_counters_t *c)
{
    d[0] = (int64_t) c->requests;
    d[1] = (int64_t) c->errors;
    d[2] = (int64_t) c->input_tokens;
    d[3] = (int64_t) c->output_tokens;
    d[4] = (int64_t) c->cost;
    d[5] = (int64_t) c->aborted;
    d[6] = (int64_t) c->est_input_tokens;
    d[7] = (int64_t) c->est_cost;
}


/*
 * Redis applied the batch (now or before, when it was sent again): its
 * deltas are done with; the fleet's totals, and each account's spend,
 * are as Redis answered plus what was spent here since.
 */

static void
ngx_http_ai_cost_sync_ack(void *data, ngx_http_ai_sync_batch_t *b)
{
    ngx_http_ai_cost_zone_t *zone = data;

    time_t                     now;
    ngx_uint_t                 i;
    ngx_http_ai_sync_sh_t     *sy;
    ngx_http_ai_cost_node_t   *cn;
    ngx_http_ai_sync_item_t   *item;
    ngx_http_ai_cost_delta_t  *delta;
    ngx_http_ai_counters_t    *g;

    static ngx_http_ai_cost_delta_t  zero;

    item = b->items.elts;
    now = ngx_time();

    ngx_shmtx_lock(&zone->shpool->mutex);

    sy = &zone->sh->sync;

    if (!sy->frozen || sy->seq != b->seq) {
        /* acknowledged already, by a worker that sent it too */
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return;
    }

    for (i = 0; i < b->items.nelts; i++) {

        if (item[i].type == NGX_HTTP_AI_SYNC_TOTALS) {
            ngx_memzero(&zone->sh->send, sizeof(ngx_http_ai_counters_t));

            /* the fleet's totals, and what is not pushed from here yet */

            g = &zone->sh->global;

            g->requests = item[i].res[0] + zone->sh->pend.requests;
            g->errors = item[i].res[1] + zone->sh->pend.errors;
            g->input_tokens = item[i].res[2] + zone->sh->pend.input_tokens;
            g->output_tokens = item[i].res[3] + zone->sh->pend.output_tokens;
            g->cost = item[i].res[4] + zone->sh->pend.cost;
            g->aborted = item[i].res[5] + zone->sh->pend.aborted;
            g->est_input_tokens = item[i].res[6]
                                  + zone->sh->pend.est_input_tokens;
            g->est_cost = item[i].res[7] + zone->sh->pend.est_cost;

            zone->sh->global_known = 1;
            continue;
        }

        cn = ngx_http_ai_cost_lookup(zone, item[i].hash, item[i].id,
                                     item[i].len);

        if (cn == NULL || !cn->batch) {
            continue;
        }

        cn->batch = 0;
        delta = cn->delta;

        if (delta) {
            if (cn->type == NGX_HTTP_AI_COST_LEDGER) {
                ngx_memzero(&delta->u.ledger.send,
                            sizeof(ngx_http_ai_counters_t));

            } else {
                ngx_memzero(&delta->u.account.send,
                            sizeof(ngx_http_ai_spend_delta_t));
            }
        }

        if (cn->type == NGX_HTTP_AI_COST_ACCOUNT) {
            ngx_http_ai_cost_fleet_spend(cn, &item[i], now);
            zone->sh->gen++;

            if (delta && delta->u.account.pend.day_spend == 0
                && delta->u.account.pend.month_spend == 0
                && delta->u.account.pend.total == 0)
            {
                ngx_slab_free_locked(zone->shpool, delta);
                cn->delta = NULL;
            }

        } else if (delta
                   && ngx_memcmp(delta, &zero,
                                 sizeof(ngx_http_ai_cost_delta_t)) == 0)
        {
            ngx_slab_free_locked(zone->shpool, delta);
            cn->delta = NULL;
        }
    }

    sy->frozen = 0;
    sy->items = 0;

    if (sy->seq_jump) {
        sy->seq += NGX_HTTP_AI_SYNC_SEQ_JUMP;
        sy->seq_jump = 0;
    }

    /* the state file is written again, without what was pushed */
    zone->sh->gen++;

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* the fleet's spend of an account first seen here, pulled at once */

static void
ngx_http_ai_cost_sync_pull(void *data, ngx_http_ai_sync_item_t *item)
{
    ngx_http_ai_cost_zone_t *zone = data;

    ngx_http_ai_cost_node_t  *cn;

    ngx_shmtx_lock(&zone->shpool->mutex);

    cn = ngx_http_ai_cost_lookup(zone, item->hash, item->id, item->len);

    if (cn && cn->type == NGX_HTTP_AI_COST_ACCOUNT && !cn->batch) {
        ngx_http_ai_cost_fleet_spend(cn, item, ngx_time());
        zone->sh->gen++;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * For the status: the nodes with deltas not pushed yet, and the totals
 * if they have some; the fleet's totals, as last known.  Called locked.
 */

static ngx_uint_t
ngx_http_ai_cost_sync_unsynced(void *data, ngx_http_ai_counters_t *fleet,
    ngx_uint_t *known)
{
    ngx_http_ai_cost_zone_t *zone = data;

    ngx_uint_t                unsynced;
    ngx_queue_t              *q;
    ngx_http_ai_cost_node_t  *cn;

    static ngx_http_ai_counters_t  zero;

    unsynced = 0;

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        cn = ngx_queue_data(q, ngx_http_ai_cost_node_t, queue);
        unsynced += (cn->delta != NULL);
    }

    unsynced += (ngx_memcmp(&zone->sh->pend, &zero,
                            sizeof(ngx_http_ai_counters_t)) != 0
                 || ngx_memcmp(&zone->sh->send, &zero,
                               sizeof(ngx_http_ai_counters_t))
                    != 0);

    *fleet = zone->sh->global;
    *known = zone->sh->global_known;

    return unsynced;
}
