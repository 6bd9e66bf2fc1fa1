
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Rate limits: ai_rate_zone and ai_rate.  One node per (route, limit key)
 * in a shared memory zone holds two token buckets, requests and tokens.
 * A bucket's level is what was taken and not yet refilled, in units of
 * 1/60000 request (or token), so that a limit of N per minute refills
 * exactly N units per millisecond: integers, no rounding drift.
 *
 * rpm takes one request at admission.  tpm reserves the request's
 * estimate (prompt bytes / 4 + max_tokens or the default) at admission
 * and, when the request ends, replaces it with the tokens its calls
 * really used.  Check and take happen under the zone's mutex, so no
 * number of concurrent requests in any number of workers gets more than
 * the buckets hold.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_lease.h"


/* nodes looked at, oldest first, for one to forget in a full zone */
#define NGX_HTTP_AI_RATE_FORGET_SCAN  64

#define NGX_HTTP_AI_RATE_ID_LEN                                             \
    (1 + 4 + NGX_HTTP_AI_DIGEST_LEN + NGX_HTTP_AI_MAX_ROUTE_LEN)


static ngx_int_t ngx_http_ai_rate_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_rate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_ai_rate_identity(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_rate_limit_t *limit, u_char *id, size_t *len);
static ngx_http_ai_rate_node_t *ngx_http_ai_rate_create(
    ngx_http_ai_rate_zone_t *zone, uint32_t hash, u_char *id, size_t len);
static void ngx_http_ai_rate_expire(ngx_http_ai_rate_zone_t *zone);
static ngx_int_t ngx_http_ai_rate_forget(ngx_http_ai_rate_zone_t *zone);
static void ngx_http_ai_rate_json_limit(ngx_ai_jw_t *w, const char *limit,
    const char *remaining, uint64_t per_minute, uint64_t used);
static ngx_uint_t ngx_http_ai_rate_forgettable(ngx_http_ai_rate_node_t *rn,
    ngx_msec_t now);
static void ngx_http_ai_rate_free(ngx_http_ai_rate_zone_t *zone,
    ngx_http_ai_rate_node_t *rn);
static void ngx_http_ai_rate_info(ngx_http_ai_rate_info_t *info,
    uint64_t used, uint64_t limit);
static void ngx_http_ai_rate_keep_tightest(ngx_http_ai_rate_info_t *dst,
    ngx_http_ai_rate_info_t *src);
static void ngx_http_ai_rate_refused(ngx_http_ai_limits_ctx_t *lctx,
    ngx_uint_t rpm, ngx_uint_t tpm, ngx_msec_t wait, ngx_ai_error_t *err);
static void ngx_http_ai_rate_less(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_rate_hold_t *hold, uint64_t tokens);
static ngx_uint_t ngx_http_ai_rate_take(ngx_http_ai_rate_zone_t *zone,
    ngx_http_ai_rate_hold_t *hold, ngx_msec_t *wait);
static void ngx_http_ai_rate_levels(ngx_http_ai_rate_limit_t *limit,
    ngx_http_ai_rate_node_t *node, ngx_http_ai_rate_info_t *ri,
    ngx_http_ai_rate_info_t *ti);
static void ngx_http_ai_rate_refusal(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_rate_limit_t *limit, ngx_uint_t refuse,
    ngx_http_ai_rate_info_t *ri, ngx_http_ai_rate_info_t *ti,
    ngx_msec_t wait, ngx_ai_error_t *err);


static ngx_uint_t  ngx_http_ai_rate_tag;


/* ai_rate_zone NAME:SIZE [sync=redis://... [sync options]] */

char *
ngx_http_ai_rate_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_limits_main_conf_t *lmcf = conf;

    void                     *sync;
    ssize_t                   size;
    ngx_int_t                 rc;
    ngx_str_t                *value, name;
    ngx_uint_t                i;
    ngx_shm_zone_t           *shm_zone, **z;
    ngx_http_ai_rate_zone_t  *zone;

    value = cf->args->elts;

    if (ngx_http_ai_zone_arg(cf, &value[1], "ai_rate_zone", "ai_rate:10m",
                             &name, &size)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    sync = NULL;

    for (i = 2; i < cf->args->nelts; i++) {

        rc = ngx_http_ai_sync_option(cf, &sync, &value[i]);

        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": ai_rate_zone takes "
                           "NAME:SIZE and sync= with its options",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_ai_rate_tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate ai_rate_zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_rate_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->shm_zone = shm_zone;

    if (sync) {
        zone->sync = ngx_http_ai_sync_zone(cf, sync,
                                           &ngx_http_ai_rate_sync_source,
                                           zone, &name);
        if (zone->sync == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    shm_zone->init = ngx_http_ai_rate_init_zone;
    shm_zone->data = zone;

    z = ngx_array_push(&lmcf->rate_zones);
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    *z = shm_zone;

    return NGX_CONF_OK;
}


/* a zone kept across reloads: the old cycle's memory, as limit_req does */

static ngx_int_t
ngx_http_ai_rate_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t                fresh;
    ngx_http_ai_rate_zone_t  *zone;

    zone = shm_zone->data;

    zone->sh = ngx_http_ai_zone_state(shm_zone, data,
                                      sizeof(ngx_http_ai_rate_sh_t),
                                      "ai_rate_zone", &zone->shpool, &fresh);
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    if (!fresh) {
        return NGX_OK;
    }

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_ai_rate_rbtree_insert_value);

    ngx_queue_init(&zone->sh->queue);

    ngx_http_ai_sync_init_zone(&zone->sh->sync);

    zone->shpool->log_nomem = 0;

    return NGX_OK;
}


/* ai_rate zone=NAME [key=$var] [rpm=N] [tpm=N] */

char *
ngx_http_ai_rate_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_limits_loc_conf_t *llcf = conf;

    ngx_int_t                          n;
    ngx_str_t                         *value, s, key;
    ngx_uint_t                         i;
    ngx_shm_zone_t                    *shm_zone;
    ngx_http_ai_rate_limit_t          *limit, *limits;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    limit = NULL;
    shm_zone = NULL;
    ngx_str_null(&key);

    if (llcf->rates.elts == NULL) {
        if (ngx_array_init(&llcf->rates, cf->pool, 2,
                           sizeof(ngx_http_ai_rate_limit_t))
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    limit = ngx_array_push(&llcf->rates);
    if (limit == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(limit, sizeof(ngx_http_ai_rate_limit_t));

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            if (s.len == 0) {
                goto invalid;
            }

            shm_zone = ngx_shared_memory_add(cf, &s, 0,
                                             &ngx_http_ai_rate_tag);
            if (shm_zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            key.data = value[i].data + 4;
            key.len = value[i].len - 4;

            if (key.len == 0) {
                goto invalid;
            }

            limit->key = ngx_palloc(cf->pool,
                                    sizeof(ngx_http_complex_value_t));
            if (limit->key == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &key;
            ccv.complex_value = limit->key;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            limit->key_id = ngx_crc32_short(key.data, key.len);

            continue;
        }

        if (ngx_strncmp(value[i].data, "empty=", 6) == 0) {
            if (ngx_http_ai_limits_empty_arg(cf, &value[i], &limit->empty)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "rpm=", 4) == 0
            || ngx_strncmp(value[i].data, "tpm=", 4) == 0)
        {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);

            if (n <= 0 || n > NGX_HTTP_AI_RATE_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": expected a number "
                                   "from 1 to %d", &value[i],
                                   NGX_HTTP_AI_RATE_MAX);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 'r') {
                limit->rpm = n;

            } else {
                limit->tpm = n;
            }

            continue;
        }

        goto invalid;
    }

    if (shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_rate\" must have the \"zone=\" parameter");
        return NGX_CONF_ERROR;
    }

    if (limit->rpm == 0 && limit->tpm == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_rate\" needs rpm= or tpm= (or both)");
        return NGX_CONF_ERROR;
    }

    limit->shm_zone = shm_zone;

    if (limit->empty == NGX_HTTP_AI_EMPTY_UNSET) {
        limit->empty = NGX_HTTP_AI_EMPTY_DENY;

    } else if (limit->key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_rate\": empty= needs key=");
        return NGX_CONF_ERROR;
    }

    /* one limit per zone and key source in a location */

    limits = llcf->rates.elts;

    for (i = 0; i < llcf->rates.nelts - 1; i++) {
        if (limits[i].shm_zone == shm_zone
            && (limits[i].key == NULL) == (limit->key == NULL)
            && limits[i].key_id == limit->key_id)
        {
            if (key.len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate \"ai_rate\" for zone \"%V\" "
                                   "and key \"%V\"", &shm_zone->shm.name,
                                   &key);
            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate \"ai_rate\" for zone \"%V\" "
                                   "without key", &shm_zone->shm.name);
            }

            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\": ai_rate takes zone=, "
                       "key=, empty=, rpm= and tpm=", &value[i]);
    return NGX_CONF_ERROR;
}


static void
ngx_http_ai_rate_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_http_ai_id_insert(temp, node, sentinel,
                          offsetof(ngx_http_ai_rate_node_t, len),
                          offsetof(ngx_http_ai_rate_node_t, data));
}


/*
 * A node's identity: [keyed][key_id:4][digest:32 if keyed][route], keyed
 * 2 for the bucket empty=shared keys share.  The limit's key is empty for
 * this request: NGX_DECLINED with empty=allow (the limit does not apply,
 * as with limit_req), NGX_BUSY with empty=deny.
 */

static ngx_int_t
ngx_http_ai_rate_identity(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_rate_limit_t *limit, u_char *id, size_t *len)
{
    u_char             *p;
    ngx_http_ai_key_t  *key;

    p = id;

    if (limit->key) {
        if (ngx_http_ai_limits_key(lctx, limit->key, &key) != NGX_OK) {
            return NGX_ERROR;
        }

        if (key->empty) {
            switch (limit->empty) {

            case NGX_HTTP_AI_EMPTY_ALLOW:
                return NGX_DECLINED;

            case NGX_HTTP_AI_EMPTY_SHARED:
                *p++ = 2;
                p = ngx_cpymem(p, &limit->key_id, 4);
                break;

            default:
                return NGX_BUSY;
            }

        } else {
            *p++ = 1;
            p = ngx_cpymem(p, &limit->key_id, 4);
            p = ngx_cpymem(p, key->digest, NGX_HTTP_AI_DIGEST_LEN);
        }

    } else {
        *p++ = 0;
        p = ngx_cpymem(p, &limit->key_id, 4);
    }

    p = ngx_cpymem(p, lctx->route.data, lctx->route.len);

    *len = p - id;

    return NGX_OK;
}


ngx_http_ai_rate_node_t *
ngx_http_ai_rate_lookup(ngx_http_ai_rate_zone_t *zone, uint32_t hash,
    u_char *id, size_t len)
{
    return ngx_http_ai_id_lookup(&zone->sh->rbtree, hash, id, len,
                                 offsetof(ngx_http_ai_rate_node_t, len),
                                 offsetof(ngx_http_ai_rate_node_t, data));
}


/*
 * A new node, at the head of the LRU queue, or NULL when the zone has no
 * room even after forgetting what can be forgotten.  Called locked.
 */

static ngx_http_ai_rate_node_t *
ngx_http_ai_rate_create(ngx_http_ai_rate_zone_t *zone, uint32_t hash,
    u_char *id, size_t len)
{
    size_t                    size;
    ngx_uint_t                tries;
    ngx_rbtree_node_t        *node;
    ngx_http_ai_rate_node_t  *rn;

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_ai_rate_node_t, data)
           + len;

    ngx_http_ai_rate_expire(zone);

    for (tries = 0; /* void */; tries++) {
        node = ngx_slab_alloc_locked(zone->shpool, size);

        if (node) {
            break;
        }

        if (tries == 8 || ngx_http_ai_rate_forget(zone) != NGX_OK) {
            return NULL;
        }
    }

    node->key = hash;

    rn = (ngx_http_ai_rate_node_t *) &node->color;

    rn->keyed = id[0];
    rn->len = (u_short) len;
    rn->last = ngx_current_msec;
    rn->req_used = 0;
    rn->tok_used = 0;
    rn->rpm = 0;
    rn->tpm = 0;
    rn->count = 0;
    rn->batch = 0;
    rn->used = ngx_current_msec;
    rn->synced = 0;
    rn->pend_req = 0;
    rn->pend_tok = 0;
    rn->send_req = 0;
    rn->send_tok = 0;

    ngx_memzero(&rn->lease_req, offsetof(ngx_http_ai_rate_node_t, data)
                                - offsetof(ngx_http_ai_rate_node_t,
                                           lease_req));

    ngx_memcpy(rn->data, id, len);

    ngx_rbtree_insert(&zone->sh->rbtree, node);
    ngx_queue_insert_head(&zone->sh->queue, &rn->queue);

    zone->sh->nodes++;

    return rn;
}


/* "NAME_limit":N,"NAME_remaining":N of a bucket, or nulls without one */

static void
ngx_http_ai_rate_json_limit(ngx_ai_jw_t *w, const char *limit,
    const char *remaining, uint64_t per_minute, uint64_t used)
{
    uint64_t  cap;

    cap = per_minute * NGX_HTTP_AI_RATE_UNIT;

    ngx_ai_jw_key(w, limit);

    if (per_minute == 0) {
        ngx_ai_jw_null(w);
        ngx_ai_jw_key(w, remaining);
        ngx_ai_jw_null(w);
        return;
    }

    ngx_ai_jw_uint(w, per_minute);
    ngx_ai_jw_key_uint(w, remaining,
                       used < cap ? (cap - used) / NGX_HTTP_AI_RATE_UNIT : 0);
}


/*
 * A node that can go without changing any limit: no request holds it,
 * nothing of it waits to be pushed to Redis, and its buckets are full
 * again (a new node would start full too).  Called locked.
 */

static ngx_uint_t
ngx_http_ai_rate_forgettable(ngx_http_ai_rate_node_t *rn, ngx_msec_t now)
{
    uint64_t  req, tok;

    if (rn->count || rn->batch || rn->pend_req || rn->pend_tok
        || rn->ask_req || rn->ask_tok || rn->lease_req > 0
        || rn->lease_tok > 0)
    {
        /* deltas to push, or a slice held (lease.c): given back first */
        return 0;
    }

    ngx_http_ai_rate_decay(rn, rn->rpm, rn->tpm, now, &req, &tok);

    return req == 0 && tok == 0;
}


static void
ngx_http_ai_rate_free(ngx_http_ai_rate_zone_t *zone,
    ngx_http_ai_rate_node_t *rn)
{
    ngx_rbtree_node_t  *node;

    ngx_queue_remove(&rn->queue);

    node = (ngx_rbtree_node_t *)
               ((u_char *) rn - offsetof(ngx_rbtree_node_t, color));

    ngx_rbtree_delete(&zone->sh->rbtree, node);

    ngx_slab_free_locked(zone->shpool, node);

    zone->sh->nodes--;
}


/*
 * Before a new node: frees up to two nodes at the LRU tail that are idle
 * for a minute and forgettable.  Called locked.
 */

static void
ngx_http_ai_rate_expire(ngx_http_ai_rate_zone_t *zone)
{
    ngx_uint_t                n;
    ngx_msec_t                now;
    ngx_queue_t              *q;
    ngx_http_ai_rate_node_t  *rn;

    now = ngx_current_msec;

    for (n = 0; n < 2 && !ngx_queue_empty(&zone->sh->queue); n++) {

        q = ngx_queue_last(&zone->sh->queue);
        rn = ngx_queue_data(q, ngx_http_ai_rate_node_t, queue);

        if ((ngx_msec_int_t) (now - rn->last) < 60000
            || !ngx_http_ai_rate_forgettable(rn, now))
        {
            return;
        }

        ngx_http_ai_rate_free(zone, rn);
    }
}


/*
 * The zone is full: frees the least recently used forgettable node among
 * the oldest NGX_HTTP_AI_RATE_FORGET_SCAN.  A node whose buckets are not
 * full is never freed, unlike limit_req's oldest node: a flood of new
 * keys must not give other keys their limits back.  NGX_DECLINED: none.
 * Called locked.
 */

static ngx_int_t
ngx_http_ai_rate_forget(ngx_http_ai_rate_zone_t *zone)
{
    ngx_uint_t                n;
    ngx_msec_t                now;
    ngx_queue_t              *q;
    ngx_http_ai_rate_node_t  *rn;

    now = ngx_current_msec;
    n = 0;

    for (q = ngx_queue_last(&zone->sh->queue);
         q != ngx_queue_sentinel(&zone->sh->queue)
         && n++ < NGX_HTTP_AI_RATE_FORGET_SCAN;
         q = ngx_queue_prev(q))
    {
        rn = ngx_queue_data(q, ngx_http_ai_rate_node_t, queue);

        if (ngx_http_ai_rate_forgettable(rn, now)) {
            ngx_http_ai_rate_free(zone, rn);
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* the bucket levels at "now": what was taken less what refilled since */

void
ngx_http_ai_rate_decay(ngx_http_ai_rate_node_t *node, uint64_t rpm,
    uint64_t tpm, ngx_msec_t now, uint64_t *req, uint64_t *tok)
{
    uint64_t        d;
    ngx_msec_int_t  ms;

    ms = (ngx_msec_int_t) (now - node->last);

    if (ms <= 0) {
        *req = node->req_used;
        *tok = node->tok_used;
        return;
    }

    if (ms > 1000000000) {
        ms = 1000000000;
    }

    d = rpm * (uint64_t) ms;
    *req = node->req_used > d ? node->req_used - d : 0;

    d = tpm * (uint64_t) ms;
    *tok = node->tok_used > d ? node->tok_used - d : 0;
}


static void
ngx_http_ai_rate_info(ngx_http_ai_rate_info_t *info, uint64_t used,
    uint64_t limit)
{
    uint64_t  cap;

    cap = limit * NGX_HTTP_AI_RATE_UNIT;

    info->limit = limit;
    info->remaining = used < cap ? (cap - used) / NGX_HTTP_AI_RATE_UNIT : 0;
    info->reset = (ngx_msec_t) ((used + limit - 1) / limit);
    info->set = 1;
}


static void
ngx_http_ai_rate_keep_tightest(ngx_http_ai_rate_info_t *dst,
    ngx_http_ai_rate_info_t *src)
{
    if (!src->set) {
        return;
    }

    if (!dst->set || src->remaining < dst->remaining
        || (src->remaining == dst->remaining && src->reset > dst->reset))
    {
        *dst = *src;
    }
}


/*
 * A request's admission by every ai_rate line of its location.  With
 * sync= the levels a host sees are the fleet's as last known plus what
 * it took since; what it takes is pushed at the next sync.  A line whose
 * zone is strict (and whose Redis is reachable) takes nothing here: the
 * hold is deferred, and Redis decides (ngx_http_ai_rate_strict_resolve).
 */

ngx_int_t
ngx_http_ai_rate_admit(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_limits_loc_conf_t *llcf, ngx_ai_error_t *err)
{
    size_t                     len;
    uint32_t                   hash;
    uint64_t                   req, tok;
    ngx_int_t                  rc;
    ngx_uint_t                 i, refuse, defer, pull, lease;
    ngx_msec_t                 now, wait;
    ngx_http_request_t        *r;
    ngx_http_ai_lease_ask_t    ask;
    ngx_http_ai_rate_node_t   *node;
    ngx_http_ai_rate_zone_t   *zone;
    ngx_http_ai_rate_hold_t   *hold;
    ngx_http_ai_rate_info_t    ri, ti;
    ngx_http_ai_rate_limit_t  *limit, *limits;
    u_char                     id[NGX_HTTP_AI_RATE_ID_LEN];

    r = lctx->request;
    limits = llcf->rates.elts;

    lctx->holds = ngx_pcalloc(r->pool, llcf->rates.nelts
                                       * sizeof(ngx_http_ai_rate_hold_t));
    if (lctx->holds == NULL) {
        return NGX_ERROR;
    }

    lctx->peeked = 1;

    for (i = 0; i < llcf->rates.nelts; i++) {
        limit = &limits[i];

        rc = ngx_http_ai_rate_identity(lctx, limit, id, &len);

        if (rc == NGX_ERROR) {
            ngx_http_ai_rate_release(lctx);
            return NGX_ERROR;
        }

        if (rc == NGX_BUSY) {
            ngx_http_ai_rate_release(lctx);
            lctx->rate_status = NGX_HTTP_AI_STATUS_REJECTED;
            ngx_http_ai_limits_key_missing(lctx, err);
            return NGX_DECLINED;
        }

        if (rc == NGX_DECLINED) {
            continue;
        }

        zone = limit->shm_zone->data;
        hash = ngx_murmur_hash2(id, len);

        defer = zone->sync && ngx_http_ai_sync_strict_ready(zone->sync);
        lease = zone->sync
                && ngx_http_ai_sync_mode(zone->sync, NULL)
                   == NGX_HTTP_AI_SYNC_MODE_LEASE;

        hold = &lctx->holds[lctx->nholds];
        ngx_memzero(hold, sizeof(ngx_http_ai_rate_hold_t));

        hold->limit = limit;

        if (limit->tpm) {
            /* a request larger than the whole minute waits for all of it */
            hold->tokens = ngx_min(lctx->estimate, (uint64_t) limit->tpm);
        }

        wait = 0;
        pull = 0;
        ngx_memzero(&ask, sizeof(ngx_http_ai_lease_ask_t));

        ngx_shmtx_lock(&zone->shpool->mutex);

        now = ngx_current_msec;

        node = ngx_http_ai_rate_lookup(zone, hash, id, len);

        if (node == NULL) {
            node = ngx_http_ai_rate_create(zone, hash, id, len);

            if (node == NULL) {
                ngx_shmtx_unlock(&zone->shpool->mutex);
                ngx_http_ai_rate_release(lctx);

                lctx->rate_status = NGX_HTTP_AI_STATUS_REJECTED;
                ngx_http_ai_limits_zone_full(lctx, limit->shm_zone, err);

                return NGX_DECLINED;
            }

        } else {
            ngx_queue_remove(&node->queue);
            ngx_queue_insert_head(&zone->sh->queue, &node->queue);
        }

        ngx_http_ai_rate_decay(node, limit->rpm, limit->tpm, now, &req,
                               &tok);

        node->req_used = req;
        node->tok_used = tok;
        node->last = now;
        node->used = now;
        node->rpm = (uint32_t) limit->rpm;
        node->tpm = (uint32_t) limit->tpm;

        hold->node = node;

        if (zone->sync && !defer && !lease
            && ngx_http_ai_sync_stale(zone->sync, now, node->synced))
        {
            /* first seen here, or not pulled for long: pulled at once */
            node->synced = now;
            pull = 1;
        }

        if (defer) {
            node->count++;

            ngx_shmtx_unlock(&zone->shpool->mutex);

            hold->deferred = 1;
            lctx->nholds++;
            lctx->deferred++;

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai_rate \"%V\" [%ui]: strict, Redis decides",
                           &limit->shm_zone->shm.name, i);
            continue;
        }

        if (lease) {
            refuse = ngx_http_ai_lease_take(zone->sync, &zone->sh->sync,
                                            hold, now, &wait, &ask,
                                            r->connection->log);

            if (refuse & NGX_HTTP_AI_LEASE_WAITING) {
                /* what its host holds is used up, a slice comes */
                refuse = limit->rpm ? 1 : 2;
            }

        } else {
            refuse = ngx_http_ai_rate_take(zone, hold, &wait);
        }

        if (!refuse) {
            node->count++;
        }

        ngx_http_ai_rate_levels(limit, node, &ri, &ti);

        ngx_shmtx_unlock(&zone->shpool->mutex);

        if (pull) {
            ngx_http_ai_sync_pull(zone->sync, NGX_HTTP_AI_SYNC_RATE, hash,
                                  id, len, limit->rpm, limit->tpm);
        }

        if (ask.ask) {
            ngx_http_ai_lease_ask(zone->sync, zone->sh->sync.instance, hash,
                                  id, len, &ask);
        }

        ngx_log_debug7(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai_rate \"%V\" [%ui]: requests %uL/%ui, tokens "
                       "%uL/%ui, wait %M",
                       &limit->shm_zone->shm.name, i,
                       ri.set ? ri.remaining : 0, limit->rpm,
                       ti.set ? ti.remaining : 0, limit->tpm, wait);

        if (refuse) {
            hold->node = NULL;

            ngx_http_ai_rate_release(lctx);

            ngx_http_ai_rate_refusal(lctx, limit, refuse, &ri, &ti, wait,
                                     err);
            return NGX_DECLINED;
        }

        lctx->nholds++;

        ngx_http_ai_rate_keep_tightest(&lctx->req_info, &ri);
        ngx_http_ai_rate_keep_tightest(&lctx->tok_info, &ti);
    }

    if (lctx->nholds && lctx->deferred == 0) {
        /* with deferred holds, once Redis has answered */
        lctx->rate_status = NGX_HTTP_AI_STATUS_PASSED;
    }

    return NGX_OK;
}


/*
 * Checks a bucket pair, its levels decayed to now, for a request and
 * takes what the request needs.  Returns what refused it: 1 requests, 2
 * tokens, 0 nothing (taken).  Called locked.
 */

static ngx_uint_t
ngx_http_ai_rate_take(ngx_http_ai_rate_zone_t *zone,
    ngx_http_ai_rate_hold_t *hold, ngx_msec_t *wait)
{
    uint64_t                   cap, need, w;
    ngx_uint_t                 refuse;
    ngx_http_ai_rate_node_t   *node;
    ngx_http_ai_rate_limit_t  *limit;

    limit = hold->limit;
    node = hold->node;
    refuse = 0;
    need = hold->tokens * NGX_HTTP_AI_RATE_UNIT;

    if (limit->rpm) {
        cap = limit->rpm * NGX_HTTP_AI_RATE_UNIT;

        if (node->req_used + NGX_HTTP_AI_RATE_UNIT > cap) {
            refuse |= 1;
            w = (node->req_used + NGX_HTTP_AI_RATE_UNIT - cap + limit->rpm - 1)
                / limit->rpm;
            *wait = ngx_max(*wait, (ngx_msec_t) w);
        }
    }

    if (limit->tpm) {
        cap = limit->tpm * NGX_HTTP_AI_RATE_UNIT;

        if (node->tok_used + need > cap) {
            refuse |= 2;
            w = (node->tok_used + need - cap + limit->tpm - 1) / limit->tpm;
            *wait = ngx_max(*wait, (ngx_msec_t) w);
        }
    }

    if (refuse) {
        return refuse;
    }

    if (limit->rpm) {
        node->req_used += NGX_HTTP_AI_RATE_UNIT;
        hold->requests = 1;

        if (zone->sync) {
            node->pend_req += NGX_HTTP_AI_RATE_UNIT;
        }
    }

    if (limit->tpm) {
        node->tok_used += need;

        if (zone->sync) {
            node->pend_tok += (int64_t) need;
        }
    }

    hold->counted = 1;

    return 0;
}


/* the header values of a bucket pair as it is; called locked */

static void
ngx_http_ai_rate_levels(ngx_http_ai_rate_limit_t *limit,
    ngx_http_ai_rate_node_t *node, ngx_http_ai_rate_info_t *ri,
    ngx_http_ai_rate_info_t *ti)
{
    ngx_memzero(ri, sizeof(ngx_http_ai_rate_info_t));
    ngx_memzero(ti, sizeof(ngx_http_ai_rate_info_t));

    if (limit->rpm) {
        ngx_http_ai_rate_info(ri, node->req_used, limit->rpm);
    }

    if (limit->tpm) {
        ngx_http_ai_rate_info(ti, node->tok_used, limit->tpm);
    }
}


/* a refusal by a line: the headers, the 429's message, the log */

static void
ngx_http_ai_rate_refusal(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_rate_limit_t *limit, ngx_uint_t refuse,
    ngx_http_ai_rate_info_t *ri, ngx_http_ai_rate_info_t *ti,
    ngx_msec_t wait, ngx_ai_error_t *err)
{
    if (refuse & 1) {
        lctx->req_info = *ri;

    } else {
        ngx_http_ai_rate_keep_tightest(&lctx->req_info, ri);
    }

    if (refuse & 2) {
        lctx->tok_info = *ti;

    } else {
        ngx_http_ai_rate_keep_tightest(&lctx->tok_info, ti);
    }

    ngx_http_ai_rate_refused(lctx, (refuse & 1) ? limit->rpm : 0,
                             (refuse & 2) ? limit->tpm : 0, wait, err);

    ngx_log_error(NGX_LOG_WARN, lctx->request->connection->log, 0,
                  "ai_rate: limiting %s by zone \"%V\", retry in %T s",
                  (refuse & 1) ? "requests" : "tokens",
                  &limit->shm_zone->shm.name, lctx->retry_after);
}



static void
ngx_http_ai_rate_refused(ngx_http_ai_limits_ctx_t *lctx, ngx_uint_t rpm,
    ngx_uint_t tpm, ngx_msec_t wait, ngx_ai_error_t *err)
{
    u_char              *p;
    size_t               len;
    ngx_http_request_t  *r;

    r = lctx->request;

    lctx->rate_status = NGX_HTTP_AI_STATUS_REJECTED;
    lctx->retry_after = (time_t) ((wait + 999) / 1000);

    if (lctx->retry_after == 0) {
        lctx->retry_after = 1;
    }

    ngx_ai_error_set(err, NGX_HTTP_TOO_MANY_REQUESTS, "rate_limit_exceeded",
                     NULL, "rate_limit_exceeded",
                     "Rate limit reached. Please try again later.");

    len = 256 + lctx->route.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return;
    }

    err->message.data = p;

    if (rpm) {
        p = ngx_sprintf(p, "Rate limit reached for requests per minute on "
                        "%V: limit %ui.", &lctx->route, rpm);

    } else {
        p = ngx_sprintf(p, "Rate limit reached for tokens per minute on "
                        "%V: limit %ui. This request was estimated at %uL "
                        "tokens.", &lctx->route, tpm,
                        ngx_min(lctx->estimate, (uint64_t) tpm));
    }

    p = ngx_sprintf(p, " Please try again in %Ts.", lctx->retry_after);

    err->message.len = p - err->message.data;
}


/*
 * Gives back what admission took (a refusal by a later limit).  With
 * sync=, what was pushed (or reserved in Redis by a strict admission) is
 * given back by a negative delta at the next sync.
 */

void
ngx_http_ai_rate_release(ngx_http_ai_limits_ctx_t *lctx)
{
    uint64_t                  n;
    ngx_uint_t                i;
    ngx_http_ai_rate_node_t  *node;
    ngx_http_ai_rate_hold_t  *hold;
    ngx_http_ai_rate_zone_t  *zone;

    for (i = 0; i < lctx->nholds; i++) {
        hold = &lctx->holds[i];
        node = hold->node;

        if (node == NULL) {
            continue;
        }

        zone = hold->limit->shm_zone->data;

        ngx_shmtx_lock(&zone->shpool->mutex);

        if (hold->counted) {
            if (hold->requests) {
                n = hold->requests * NGX_HTTP_AI_RATE_UNIT;
                node->req_used -= ngx_min(n, node->req_used);

                if (zone->sync) {
                    node->pend_req -= (int64_t) n;
                }
            }

            n = hold->tokens * NGX_HTTP_AI_RATE_UNIT;
            node->tok_used -= ngx_min(n, node->tok_used);

            if (zone->sync) {
                node->pend_tok -= (int64_t) n;
            }
        }

        node->count--;

        ngx_shmtx_unlock(&zone->shpool->mutex);

        hold->node = NULL;
    }

    lctx->nholds = 0;
}


/*
 * Another call of an admitted request: one more request and its tokens
 * from every bucket pair the request holds, each under its zone's lock;
 * the first pair without room refuses it (429, as admission would) and
 * what the earlier ones took for it is given back.
 */

ngx_int_t
ngx_http_ai_rate_more(ngx_http_ai_limits_ctx_t *lctx, uint64_t tokens,
    ngx_ai_error_t *err)
{
    uint64_t                   req, tok;
    ngx_uint_t                 i, j, refuse;
    ngx_msec_t                 now, wait;
    ngx_http_ai_rate_hold_t   *hold, more;
    ngx_http_ai_rate_zone_t   *zone;
    ngx_http_ai_rate_info_t    ri, ti;
    ngx_http_ai_rate_limit_t  *limit;

    for (i = 0; i < lctx->nholds; i++) {
        hold = &lctx->holds[i];

        if (hold->node == NULL || !hold->counted) {
            continue;
        }

        limit = hold->limit;
        zone = limit->shm_zone->data;

        more = *hold;
        more.requests = 0;
        more.tokens = limit->tpm ? ngx_min(tokens, (uint64_t) limit->tpm)
                                 : 0;
        wait = 0;

        ngx_shmtx_lock(&zone->shpool->mutex);

        now = ngx_current_msec;

        ngx_http_ai_rate_decay(hold->node, limit->rpm, limit->tpm, now,
                               &req, &tok);

        hold->node->req_used = req;
        hold->node->tok_used = tok;
        hold->node->last = now;
        hold->node->used = now;

        refuse = ngx_http_ai_rate_take(zone, &more, &wait);

        ngx_http_ai_rate_levels(limit, hold->node, &ri, &ti);

        ngx_shmtx_unlock(&zone->shpool->mutex);

        if (refuse) {
            for (j = 0; j < i; j++) {
                ngx_http_ai_rate_less(lctx, &lctx->holds[j], tokens);
            }

            ngx_http_ai_rate_refusal(lctx, limit, refuse, &ri, &ti, wait,
                                     err);
            return NGX_DECLINED;
        }

        hold->requests += more.requests;
        hold->tokens += more.tokens;

        ngx_http_ai_rate_keep_tightest(&lctx->req_info, &ri);
        ngx_http_ai_rate_keep_tightest(&lctx->tok_info, &ti);
    }

    return NGX_OK;
}


/* what ngx_http_ai_rate_more() took for a call, given back */

static void
ngx_http_ai_rate_less(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_rate_hold_t *hold, uint64_t tokens)
{
    uint64_t                  n;
    ngx_http_ai_rate_node_t  *node;
    ngx_http_ai_rate_zone_t  *zone;

    node = hold->node;

    if (node == NULL || !hold->counted) {
        return;
    }

    zone = hold->limit->shm_zone->data;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (hold->limit->rpm && hold->requests) {
        node->req_used -= ngx_min(NGX_HTTP_AI_RATE_UNIT, node->req_used);
        hold->requests--;

        if (zone->sync) {
            node->pend_req -= NGX_HTTP_AI_RATE_UNIT;
        }
    }

    if (hold->limit->tpm) {
        n = ngx_min(ngx_min(tokens, (uint64_t) hold->limit->tpm),
                    hold->tokens);
        hold->tokens -= n;
        n *= NGX_HTTP_AI_RATE_UNIT;
        node->tok_used -= ngx_min(n, node->tok_used);

        if (zone->sync) {
            node->pend_tok -= (int64_t) n;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/* the request is over: its tpm reservations become what it really used */

void
ngx_http_ai_rate_settle(ngx_http_ai_limits_ctx_t *lctx)
{
    uint64_t                  reserved, used, n;
    ngx_uint_t                i;
    ngx_http_ai_rate_node_t  *node;
    ngx_http_ai_rate_hold_t  *hold;
    ngx_http_ai_rate_zone_t  *zone;

    for (i = 0; i < lctx->nholds; i++) {
        hold = &lctx->holds[i];
        node = hold->node;

        if (node == NULL) {
            continue;
        }

        zone = hold->limit->shm_zone->data;

        reserved = hold->tokens;
        used = lctx->tokens;

        ngx_shmtx_lock(&zone->shpool->mutex);

        if (hold->limit->tpm && hold->counted) {
            if (used >= reserved) {
                n = (used - reserved) * NGX_HTTP_AI_RATE_UNIT;
                node->tok_used += n;

                if (zone->sync) {
                    node->pend_tok += (int64_t) n;
                }

            } else {
                n = (reserved - used) * NGX_HTTP_AI_RATE_UNIT;
                node->tok_used -= ngx_min(n, node->tok_used);

                if (zone->sync) {
                    node->pend_tok -= (int64_t) n;
                }
            }
        }

        node->count--;

        ngx_shmtx_unlock(&zone->shpool->mutex);

        hold->node = NULL;
    }
}


/* ---- strict admission: Redis decides ---- */

/* what a request asks of Redis for its deferred holds */

ngx_int_t
ngx_http_ai_rate_strict_items(ngx_http_ai_limits_ctx_t *lctx,
    ngx_array_t *items)
{
    ngx_uint_t                 i;
    ngx_http_ai_rate_hold_t   *hold;
    ngx_http_ai_rate_zone_t   *zone;
    ngx_http_ai_sync_item_t   *item;
    ngx_http_ai_rate_limit_t  *limit;

    for (i = 0; i < lctx->nholds; i++) {
        hold = &lctx->holds[i];

        if (!hold->deferred || hold->node == NULL) {
            continue;
        }

        limit = hold->limit;
        zone = limit->shm_zone->data;

        item = ngx_array_push(items);
        if (item == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(item, sizeof(ngx_http_ai_sync_item_t));

        /* a held node's identity does not change: no lock needed */

        item->type = NGX_HTTP_AI_SYNC_RATE;
        item->id = hold->node->data;
        item->len = hold->node->len;
        item->index = i;
        item->sync = zone->sync;
        item->a[0] = limit->rpm;
        item->a[1] = limit->tpm;
        item->d[0] = limit->rpm ? NGX_HTTP_AI_RATE_UNIT : 0;
        item->d[1] = (int64_t) (hold->tokens * NGX_HTTP_AI_RATE_UNIT);
    }

    return NGX_OK;
}


/*
 * What Redis said of a deferred hold: taken there (the levels become the
 * fleet's), refused (res[2]: what refused it, res[3]: the wait in ms),
 * not taken because another line refused, or no answer, in which case
 * the local levels decide as without strict.  NGX_DECLINED: refused, err
 * is the 429; the caller then gives back every hold.
 */

ngx_int_t
ngx_http_ai_rate_strict_resolve(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_sync_item_t *item, ngx_ai_error_t *err)
{
    int64_t                    v;
    uint64_t                   req, tok;
    ngx_uint_t                 refuse;
    ngx_msec_t                 now, wait;
    ngx_http_ai_rate_node_t   *node;
    ngx_http_ai_rate_hold_t   *hold;
    ngx_http_ai_rate_zone_t   *zone;
    ngx_http_ai_rate_info_t    ri, ti;
    ngx_http_ai_rate_limit_t  *limit;

    hold = &lctx->holds[item->index];
    node = hold->node;

    if (!hold->deferred || node == NULL) {
        return NGX_OK;
    }

    hold->deferred = 0;
    limit = hold->limit;
    zone = limit->shm_zone->data;
    refuse = 0;
    wait = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    now = ngx_current_msec;

    switch (item->status) {

    case NGX_HTTP_AI_STRICT_OK:
    case NGX_HTTP_AI_STRICT_REFUSED:

        /* the fleet's levels, and what is still to be pushed from here */

        v = item->res[0] + node->pend_req;
        node->req_used = v > 0 ? (uint64_t) v : 0;

        v = item->res[1] + node->pend_tok;
        node->tok_used = v > 0 ? (uint64_t) v : 0;

        node->last = now;
        node->synced = now;

        if (item->status == NGX_HTTP_AI_STRICT_OK) {
            hold->requests = limit->rpm ? 1 : 0;
            hold->counted = 1;

        } else {
            refuse = (ngx_uint_t) item->res[2] & 3;
            wait = item->res[3] > 0 ? (ngx_msec_t) item->res[3] : 0;
            hold->tokens = 0;

            if (refuse == 0) {
                refuse = limit->rpm ? 1 : 2;
            }
        }

        break;

    case NGX_HTTP_AI_STRICT_NOT_TAKEN:
        hold->tokens = 0;
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_OK;

    default: /* NGX_HTTP_AI_STRICT_FAILED */

        ngx_http_ai_rate_decay(node, limit->rpm, limit->tpm, now, &req,
                               &tok);

        node->req_used = req;
        node->tok_used = tok;
        node->last = now;

        refuse = ngx_http_ai_rate_take(zone, hold, &wait);

        if (refuse) {
            hold->tokens = 0;
        }

        break;
    }

    ngx_http_ai_rate_levels(limit, node, &ri, &ti);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, lctx->request->connection->log, 0,
                   "ai_rate \"%V\": strict %ui, refused %ui, wait %M",
                   &limit->shm_zone->shm.name, item->status, refuse, wait);

    if (refuse) {
        ngx_http_ai_rate_refusal(lctx, limit, refuse, &ri, &ti, wait, err);
        return NGX_DECLINED;
    }

    ngx_http_ai_rate_keep_tightest(&lctx->req_info, &ri);
    ngx_http_ai_rate_keep_tightest(&lctx->tok_info, &ti);

    return NGX_OK;
}


/* the headers' values for a request that did not go through admission */

ngx_int_t
ngx_http_ai_rate_peek(ngx_http_ai_limits_ctx_t *lctx,
    ngx_http_ai_limits_loc_conf_t *llcf)
{
    size_t                     len;
    uint32_t                   hash;
    uint64_t                   req, tok;
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_http_ai_rate_node_t   *node;
    ngx_http_ai_rate_zone_t   *zone;
    ngx_http_ai_rate_info_t    ri, ti;
    ngx_http_ai_rate_limit_t  *limit, *limits;
    u_char                     id[NGX_HTTP_AI_RATE_ID_LEN];

    lctx->peeked = 1;

    limits = llcf->rates.elts;

    for (i = 0; i < llcf->rates.nelts; i++) {
        limit = &limits[i];

        rc = ngx_http_ai_rate_identity(lctx, limit, id, &len);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED || rc == NGX_BUSY) {
            continue;
        }

        zone = limit->shm_zone->data;
        hash = ngx_murmur_hash2(id, len);

        req = 0;
        tok = 0;

        ngx_shmtx_lock(&zone->shpool->mutex);

        node = ngx_http_ai_rate_lookup(zone, hash, id, len);

        if (node) {
            ngx_http_ai_rate_decay(node, limit->rpm, limit->tpm,
                                   ngx_current_msec, &req, &tok);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_memzero(&ri, sizeof(ngx_http_ai_rate_info_t));
        ngx_memzero(&ti, sizeof(ngx_http_ai_rate_info_t));

        if (limit->rpm) {
            ngx_http_ai_rate_info(&ri, req, limit->rpm);
        }

        if (limit->tpm) {
            ngx_http_ai_rate_info(&ti, tok, limit->tpm);
        }

        ngx_http_ai_rate_keep_tightest(&lctx->req_info, &ri);
        ngx_http_ai_rate_keep_tightest(&lctx->tok_info, &ti);
    }

    return NGX_OK;
}


/* the "rate" array of the status JSON: every node of every zone (with f,
 * those it keeps) */

void
ngx_http_ai_rate_json(ngx_http_ai_limits_main_conf_t *lmcf, ngx_ai_jw_t *w,
    ngx_http_ai_status_filter_t *f)
{
    size_t                    off;
    uint64_t                  req, tok;
    ngx_str_t                 route;
    ngx_uint_t                i;
    ngx_msec_t                now;
    ngx_queue_t              *q;
    ngx_shm_zone_t          **zones;
    ngx_http_ai_rate_node_t  *node;
    ngx_http_ai_rate_zone_t  *zone;
    u_char                    hex[NGX_HTTP_AI_KEY_PREFIX];

    zones = lmcf->rate_zones.elts;

    ngx_ai_jw_array(w);

    for (i = 0; i < lmcf->rate_zones.nelts && w->rc == NGX_OK; i++) {
        zone = zones[i]->data;

        if (zone->sh == NULL) {
            continue;
        }

        ngx_shmtx_lock(&zone->shpool->mutex);

        now = ngx_current_msec;

        for (q = ngx_queue_head(&zone->sh->queue);
             q != ngx_queue_sentinel(&zone->sh->queue) && w->rc == NGX_OK;
             q = ngx_queue_next(q))
        {
            node = ngx_queue_data(q, ngx_http_ai_rate_node_t, queue);

            off = 1 + 4 + (node->keyed ? NGX_HTTP_AI_DIGEST_LEN : 0);

            route.data = node->data + off;
            route.len = node->len - off;

            if (f && !f->keep(f, NGX_HTTP_AI_STATUS_RATE,
                              &zones[i]->shm.name,
                              node->keyed ? node->data + 5 : NULL, &route,
                              NULL))
            {
                continue;
            }

            ngx_http_ai_rate_decay(node, node->rpm, node->tpm, now, &req,
                                   &tok);

            ngx_ai_jw_object(w);
            ngx_ai_jw_key_string(w, "zone", zones[i]->shm.name.data,
                                 zones[i]->shm.name.len);
            ngx_ai_jw_key(w, "key");

            if (node->keyed) {
                ngx_http_ai_digest_hex(hex, node->data + 5,
                                       NGX_HTTP_AI_KEY_PREFIX / 2);
                ngx_ai_jw_string(w, hex, NGX_HTTP_AI_KEY_PREFIX);
                ngx_http_ai_key_name_json(w, lmcf->key_names, node->data + 5,
                                          NGX_HTTP_AI_DIGEST_LEN);

            } else {
                ngx_ai_jw_null(w);
            }

            ngx_ai_jw_key_string(w, "route", route.data, route.len);
            ngx_http_ai_rate_json_limit(w, "rpm_limit", "rpm_remaining",
                                        node->rpm, req);
            ngx_http_ai_rate_json_limit(w, "tpm_limit", "tpm_remaining",
                                        node->tpm, tok);
            ngx_ai_jw_key_uint(w, "in_flight", node->count);
            ngx_ai_jw_end(w);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    ngx_ai_jw_end(w);
}


/* an item of the status "zones" array for every rate zone */

void
ngx_http_ai_rate_zones_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w)
{
    ngx_uint_t                i, nodes;
    ngx_shm_zone_t          **zones;
    ngx_http_ai_rate_zone_t  *zone;

    zones = lmcf->rate_zones.elts;

    for (i = 0; i < lmcf->rate_zones.nelts; i++) {
        zone = zones[i]->data;

        ngx_shmtx_lock(&zone->shpool->mutex);
        nodes = zone->sh->nodes;
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_ai_jw_object(w);
        ngx_ai_jw_key_string(w, "zone", zones[i]->shm.name.data,
                             zones[i]->shm.name.len);
        ngx_ai_jw_key_string(w, "type", (u_char *) "rate", 4);
        ngx_ai_jw_key_uint(w, "size", zones[i]->shm.size);
        ngx_ai_jw_key_uint(w, "buckets", nodes);
        ngx_ai_jw_end(w);
    }
}


/* a duration as OpenAI writes them in x-ratelimit-reset-*: "1s", "6m0s",
 * "250ms", "1.5s" */

u_char *
ngx_http_ai_sprint_duration(u_char *p, ngx_msec_t ms)
{
    ngx_msec_t  h, m, s, frac;

    if (ms < 1000) {
        return ms ? ngx_sprintf(p, "%Mms", ms) : ngx_cpymem(p, "0s", 2);
    }

    h = ms / 3600000;
    m = ms / 60000 % 60;
    s = ms / 1000 % 60;
    frac = ms % 1000;

    if (h) {
        p = ngx_sprintf(p, "%Mh%Mm", h, m);

    } else if (m) {
        p = ngx_sprintf(p, "%Mm", m);
    }

    p = ngx_sprintf(p, "%M", s);

    if (frac) {
        if (frac % 100 == 0) {
            p = ngx_sprintf(p, ".%M", frac / 100);

        } else if (frac % 10 == 0) {
            p = ngx_sprintf(p, ".%02M", frac / 10);

        } else {
            p = ngx_sprintf(p, ".%03M", frac);
        }
    }

    *p++ = 's';

    return p;
}
