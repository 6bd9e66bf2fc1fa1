
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The rate side of sync= (ngx_ai_gateway_sync.c): what a rate zone
 * pushes to Redis in a batch, and the fleet's levels it takes back from
 * a batch's answer or a pull.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_lease.h"


static ngx_http_ai_sync_sh_t *ngx_http_ai_rate_sync_sh(void *data,
    ngx_slab_pool_t **shpool);
static ngx_int_t ngx_http_ai_rate_sync_batch(void *data,
    ngx_http_ai_sync_batch_t *b, ngx_uint_t refresh, ngx_uint_t max);
static void ngx_http_ai_rate_sync_ack(void *data,
    ngx_http_ai_sync_batch_t *b);
static void ngx_http_ai_rate_sync_pull(void *data,
    ngx_http_ai_sync_item_t *item);
static ngx_uint_t ngx_http_ai_rate_sync_unsynced(void *data,
    ngx_http_ai_counters_t *fleet, ngx_uint_t *known);
static void ngx_http_ai_rate_sync_lease(void *data,
    ngx_http_ai_sync_item_t *item);
static void ngx_http_ai_rate_sync_json(void *data, ngx_ai_jw_t *w,
    ngx_http_ai_sync_sh_t *st);


ngx_http_ai_sync_source_t  ngx_http_ai_rate_sync_source = {
    ngx_string("rate"),
    ngx_http_ai_rate_sync_sh,
    ngx_http_ai_rate_sync_batch,
    ngx_http_ai_rate_sync_ack,
    ngx_http_ai_rate_sync_pull,
    ngx_http_ai_rate_sync_unsynced,
    ngx_http_ai_rate_sync_lease,
    ngx_http_ai_rate_sync_json,
    0
};


static ngx_http_ai_sync_sh_t *
ngx_http_ai_rate_sync_sh(void *data, ngx_slab_pool_t **shpool)
{
    ngx_http_ai_rate_zone_t *zone = data;

    if (zone->sh == NULL) {
        return NULL;
    }

    *shpool = zone->shpool;
    return &zone->sh->sync;
}


/*
 * The batch to push: when none is out, one is frozen from the nodes
 * with something to push (their pending deltas become the batch's) and,
 * with refresh, the nodes used since their levels were last pulled,
 * whose fleet levels are pulled; then (also for a batch sent again) its
 * items are copied into b.  NGX_DECLINED: nothing to push.
 */

static ngx_int_t
ngx_http_ai_rate_sync_batch(void *data, ngx_http_ai_sync_batch_t *b,
    ngx_uint_t refresh, ngx_uint_t max)
{
    ngx_http_ai_rate_zone_t *zone = data;

    uint64_t                  req, tok;
    ngx_int_t                 rc;
    ngx_uint_t                n, dirty, lease;
    ngx_msec_t                now;
    ngx_queue_t              *q;
    ngx_rbtree_node_t        *rb;
    ngx_http_ai_sync_sh_t    *sy;
    ngx_http_ai_sync_item_t  *item;
    ngx_http_ai_rate_node_t  *node;

    rc = NGX_OK;

    ngx_shmtx_lock(&zone->shpool->mutex);

    sy = &zone->sh->sync;
    now = ngx_current_msec;
    lease = (ngx_http_ai_sync_mode(zone->sync, NULL)
             == NGX_HTTP_AI_SYNC_MODE_LEASE);

    if (!sy->frozen) {
        n = 0;
        b->more = 0;

        for (q = ngx_queue_head(&zone->sh->queue);
             q != ngx_queue_sentinel(&zone->sh->queue);
             q = ngx_queue_next(q))
        {
            node = ngx_queue_data(q, ngx_http_ai_rate_node_t, queue);

            if (lease) {
                ngx_http_ai_lease_return(sy, node, now, b->final);
            }

            dirty = (node->pend_req || node->pend_tok);

            if (!dirty
                && !(refresh
                     && (ngx_msec_int_t) (node->used - node->synced) >= 0))
            {
                continue;
            }

            if (n == max) {
                b->more = 1;
                break;
            }

            if (dirty) {
                /* no more than what is still in the bucket: what was
                 * taken long ago (Redis away) has refilled since */

                ngx_http_ai_rate_decay(node, node->rpm, node->tpm, now,
                                       &req, &tok);

                if (node->pend_req > (int64_t) req) {
                    node->pend_req = (int64_t) req;
                }

                if (node->pend_tok > (int64_t) tok) {
                    node->pend_tok = (int64_t) tok;
                }

                node->send_req = node->pend_req;
                node->send_tok = node->pend_tok;
                node->pend_req = 0;
                node->pend_tok = 0;
            }

            node->batch = 1;
            n++;
        }

        if (n == 0) {
            ngx_shmtx_unlock(&zone->shpool->mutex);
            return NGX_DECLINED;
        }

        sy->frozen = 1;
        sy->seq++;
        sy->items = n;
    }

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_ai_rate_node_t, queue);

        if (!node->batch) {
            continue;
        }

        item = ngx_array_push(&b->items);
        if (item == NULL) {
            rc = NGX_ERROR;
            break;
        }

        ngx_memzero(item, sizeof(ngx_http_ai_sync_item_t));

        item->id = ngx_pnalloc(b->pool, node->len);
        if (item->id == NULL) {
            rc = NGX_ERROR;
            break;
        }

        rb = (ngx_rbtree_node_t *)
                 ((u_char *) node - offsetof(ngx_rbtree_node_t, color));

        ngx_memcpy(item->id, node->data, node->len);

        item->type = NGX_HTTP_AI_SYNC_RATE;
        item->hash = (uint32_t) rb->key;
        item->len = node->len;
        item->a[0] = node->rpm;
        item->a[1] = node->tpm;
        item->d[0] = node->send_req;
        item->d[1] = node->send_tok;
    }

    b->seq = sy->seq;
    ngx_memcpy(b->instance, sy->instance, NGX_HTTP_AI_SYNC_INSTANCE_LEN);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return rc;
}


/*
 * Redis applied the batch (now or before, when it was sent again): its
 * deltas are done with, and each node's levels become the fleet's plus
 * what was taken here since the batch was frozen.
 */

static void
ngx_http_ai_rate_sync_ack(void *data, ngx_http_ai_sync_batch_t *b)
{
    ngx_http_ai_rate_zone_t *zone = data;

    int64_t                   v;
    ngx_uint_t                i;
    ngx_msec_t                now;
    ngx_http_ai_sync_sh_t    *sy;
    ngx_http_ai_sync_item_t  *item;
    ngx_http_ai_rate_node_t  *node;

    item = b->items.elts;

    ngx_shmtx_lock(&zone->shpool->mutex);

    sy = &zone->sh->sync;

    if (!sy->frozen || sy->seq != b->seq) {
        /* acknowledged already, by a worker that sent it too */
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return;
    }

    now = ngx_current_msec;

    for (i = 0; i < b->items.nelts; i++) {
        node = ngx_http_ai_rate_lookup(zone, item[i].hash, item[i].id,
                                       item[i].len);

        if (node == NULL || !node->batch) {
            continue;
        }

        node->batch = 0;
        node->send_req = 0;
        node->send_tok = 0;

        /* a lease zone's: less what is left of the slice, plus what an
         * ask out carries (as ngx_http_ai_lease_answer() has them) */

        v = item[i].res[0] + node->pend_req - node->lease_req
            + node->ask_req;
        node->req_used = v > 0 ? (uint64_t) v : 0;

        v = item[i].res[1] + node->pend_tok - node->lease_tok
            + node->ask_tok;
        node->tok_used = v > 0 ? (uint64_t) v : 0;

        node->last = now;
        node->synced = now;
    }

    sy->frozen = 0;
    sy->items = 0;

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * The fleet's levels of a node first seen here, pulled at once: they
 * become its levels, with what was taken here since.  A node in a batch
 * being pushed is left to the batch's answer.
 */

static void
ngx_http_ai_rate_sync_pull(void *data, ngx_http_ai_sync_item_t *item)
{
    ngx_http_ai_rate_zone_t *zone = data;

    int64_t                   v;
    ngx_http_ai_rate_node_t  *node;

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_ai_rate_lookup(zone, item->hash, item->id, item->len);

    if (node && !node->batch) {
        v = item->res[0] + node->pend_req;
        node->req_used = v > 0 ? (uint64_t) v : 0;

        v = item->res[1] + node->pend_tok;
        node->tok_used = v > 0 ? (uint64_t) v : 0;

        node->last = ngx_current_msec;
        node->synced = ngx_current_msec;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* for the status: the nodes with deltas not pushed yet; called locked */

static ngx_uint_t
ngx_http_ai_rate_sync_unsynced(void *data, ngx_http_ai_counters_t *fleet,
    ngx_uint_t *known)
{
    ngx_http_ai_rate_zone_t *zone = data;

    ngx_uint_t                unsynced;
    ngx_queue_t              *q;
    ngx_http_ai_rate_node_t  *rn;

    unsynced = 0;

    for (q = ngx_queue_head(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue);
         q = ngx_queue_next(q))
    {
        rn = ngx_queue_data(q, ngx_http_ai_rate_node_t, queue);

        unsynced += (rn->pend_req || rn->pend_tok
                     || rn->send_req || rn->send_tok);
    }

    return unsynced;
}


/* a slice's answer (ngx_ai_gateway_lease.c), or none */

static void
ngx_http_ai_rate_sync_lease(void *data, ngx_http_ai_sync_item_t *item)
{
    ngx_http_ai_rate_zone_t *zone = data;

    ngx_http_ai_rate_node_t  *node;

    if (zone->sh == NULL) {
        return;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    node = ngx_http_ai_rate_lookup(zone, item->hash, item->id, item->len);

    ngx_http_ai_lease_answer(zone->sync, &zone->sh->sync, node, item);

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


static void
ngx_http_ai_rate_sync_json(void *data, ngx_ai_jw_t *w,
    ngx_http_ai_sync_sh_t *st)
{
    ngx_http_ai_rate_zone_t *zone = data;

    ngx_uint_t  fallback;

    if (ngx_http_ai_sync_mode(zone->sync, &fallback)
        == NGX_HTTP_AI_SYNC_MODE_LEASE)
    {
        ngx_http_ai_lease_json(w, st, fallback);
    }
}
