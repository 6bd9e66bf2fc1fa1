
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Circuit breakers, one per provider/model, in shared memory so that all
 * workers see the same state: after N consecutive failures a model is
 * skipped for a cool-down, then a single probe is let through (half-open);
 * its success closes the circuit, its failure opens it again.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


#define NGX_HTTP_AI_BREAKER_ZONE_SIZE  (256 * 1024)


typedef enum {
    NGX_HTTP_AI_CLOSED = 0,
    NGX_HTTP_AI_OPEN,
    NGX_HTTP_AI_HALF_OPEN
} ngx_http_ai_breaker_state_e;


typedef struct {
    u_char                      color;
    u_char                      state;
    u_short                     len;
    ngx_queue_t                 queue;       /* LRU */
    ngx_uint_t                  failures;    /* consecutive */
    ngx_msec_t                  opened;
    ngx_msec_t                  probe;       /* a probe's start, 0: none */
    ngx_uint_t                  trips;       /* times it opened */
    u_char                      data[1];
} ngx_http_ai_breaker_node_t;


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 queue;
} ngx_http_ai_breaker_shctx_t;


typedef struct {
    ngx_http_ai_breaker_shctx_t  *sh;
    ngx_slab_pool_t              *shpool;
} ngx_http_ai_breaker_ctx_t;


static ngx_int_t ngx_http_ai_breaker_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_breaker_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_ai_breaker_node_t *ngx_http_ai_breaker_lookup(
    ngx_http_ai_breaker_ctx_t *ctx, ngx_str_t *model, uint32_t hash,
    ngx_uint_t create);
static void ngx_http_ai_breaker_record(ngx_http_ai_fallback_t *fb,
    ngx_str_t *model, ngx_uint_t ok, ngx_log_t *log);
static void ngx_http_ai_breaker_call_done(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a);


static ngx_str_t  ngx_http_ai_breaker_zone_name =
    ngx_string("ai_gateway_breakers");

static const char  *ngx_http_ai_breaker_states[] = {
    "closed", "open", "half-open"
};


/* the zone, once per configuration, shared by every ai_fallback */

ngx_int_t
ngx_http_ai_breaker_init_conf(ngx_conf_t *cf)
{
    ngx_shm_zone_t            *zone;
    ngx_http_ai_main_conf_t   *amcf;
    ngx_http_ai_breaker_ctx_t *ctx;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);

    if (amcf->breakers) {
        return NGX_OK;
    }

    zone = ngx_shared_memory_add(cf, &ngx_http_ai_breaker_zone_name,
                                 NGX_HTTP_AI_BREAKER_ZONE_SIZE,
                                 &ngx_ai_gateway_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_breaker_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_ai_breaker_init_zone;
    zone->data = ctx;

    amcf->breakers = zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_breaker_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t                  fresh;
    ngx_http_ai_breaker_ctx_t  *ctx;

    ctx = shm_zone->data;

    /* on a reload the breakers keep their state */

    ctx->sh = ngx_http_ai_zone_state(shm_zone, data,
                                     sizeof(ngx_http_ai_breaker_shctx_t),
                                     "ai_gateway_breakers zone",
                                     &ctx->shpool, &fresh);
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    if (fresh) {
        ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                        ngx_http_ai_breaker_insert);
        ngx_queue_init(&ctx->sh->queue);
    }

    return NGX_OK;
}


static void
ngx_http_ai_breaker_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel)
{
    ngx_http_ai_id_insert(temp, node, sentinel,
                          offsetof(ngx_http_ai_breaker_node_t, len),
                          offsetof(ngx_http_ai_breaker_node_t, data));
}


/* call with the zone locked; NULL when absent (or no room to create) */

static ngx_http_ai_breaker_node_t *
ngx_http_ai_breaker_lookup(ngx_http_ai_breaker_ctx_t *ctx, ngx_str_t *model,
    uint32_t hash, ngx_uint_t create)
{
    size_t                       size;
    ngx_queue_t                 *q;
    ngx_rbtree_node_t           *node;
    ngx_http_ai_breaker_node_t  *bn;

    bn = ngx_http_ai_id_lookup(&ctx->sh->rbtree, hash, model->data,
                               model->len,
                               offsetof(ngx_http_ai_breaker_node_t, len),
                               offsetof(ngx_http_ai_breaker_node_t, data));

    if (bn) {
        ngx_queue_remove(&bn->queue);
        ngx_queue_insert_head(&ctx->sh->queue, &bn->queue);
        return bn;
    }

    if (!create) {
        return NULL;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_ai_breaker_node_t, data)
           + model->len;

    node = ngx_slab_alloc_locked(ctx->shpool, size);

    if (node == NULL) {
        /* full: forget the least recently used closed breaker */

        for (q = ngx_queue_last(&ctx->sh->queue);
             q != ngx_queue_sentinel(&ctx->sh->queue);
             q = ngx_queue_prev(q))
        {
            bn = ngx_queue_data(q, ngx_http_ai_breaker_node_t, queue);

            if (bn->state == NGX_HTTP_AI_CLOSED) {
                ngx_queue_remove(q);
                node = (ngx_rbtree_node_t *)
                           ((u_char *) bn
                            - offsetof(ngx_rbtree_node_t, color));
                ngx_rbtree_delete(&ctx->sh->rbtree, node);
                ngx_slab_free_locked(ctx->shpool, node);
                break;
            }
        }

        node = ngx_slab_alloc_locked(ctx->shpool, size);
        if (node == NULL) {
            return NULL;
        }
    }

    node->key = hash;

    bn = (ngx_http_ai_breaker_node_t *) &node->color;

    bn->state = NGX_HTTP_AI_CLOSED;
    bn->len = (u_short) model->len;
    bn->failures = 0;
    bn->opened = 0;
    bn->probe = 0;
    bn->trips = 0;
    ngx_memcpy(bn->data, model->data, model->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &bn->queue);

    return bn;
}


/*
 * NGX_OK: call the model (closed, or the half-open probe);
 * NGX_DECLINED: its circuit is open, skip it.
 */

ngx_int_t
ngx_http_ai_breaker_allow(ngx_http_ai_fallback_t *fb, ngx_str_t *model,
    ngx_log_t *log)
{
    uint32_t                     hash;
    ngx_int_t                    rc;
    ngx_msec_t                   now;
    ngx_http_ai_breaker_ctx_t   *ctx;
    ngx_http_ai_breaker_node_t  *bn;

    if (fb->breakers == NULL || model->len > 65535) {
        return NGX_OK;
    }

    ctx = fb->breakers->data;
    hash = ngx_crc32_short(model->data, model->len);
    now = ngx_current_msec;
    rc = NGX_OK;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    bn = ngx_http_ai_breaker_lookup(ctx, model, hash, 0);

    if (bn == NULL || bn->state == NGX_HTTP_AI_CLOSED) {
        goto done;
    }

    if (bn->state == NGX_HTTP_AI_OPEN) {
        if (now - bn->opened < fb->breaker_cooldown) {
            rc = NGX_DECLINED;
            goto done;
        }

        bn->state = NGX_HTTP_AI_HALF_OPEN;
        bn->probe = now;

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "ai gateway: circuit of %V half-open, probing", model);
        goto done;
    }

    /* half-open: one probe at a time; a probe lost for a whole cool-down
     * (its worker died) is replaced */

    if (bn->probe && now - bn->probe < fb->breaker_cooldown) {
        rc = NGX_DECLINED;
        goto done;
    }

    bn->probe = now;

done:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


static void
ngx_http_ai_breaker_record(ngx_http_ai_fallback_t *fb, ngx_str_t *model,
    ngx_uint_t ok, ngx_log_t *log)
{
    uint32_t                     hash;
    ngx_http_ai_breaker_ctx_t   *ctx;
    ngx_http_ai_breaker_node_t  *bn;

    if (fb->breakers == NULL || model->len > 65535) {
        return;
    }

    ctx = fb->breakers->data;
    hash = ngx_crc32_short(model->data, model->len);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    bn = ngx_http_ai_breaker_lookup(ctx, model, hash, !ok);

    if (bn == NULL) {
        goto done;
    }

    if (ok) {
        if (bn->state != NGX_HTTP_AI_CLOSED) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "ai gateway: circuit of %V closed", model);
        }

        bn->state = NGX_HTTP_AI_CLOSED;
        bn->failures = 0;
        bn->probe = 0;
        goto done;
    }

    bn->failures++;

    if (bn->state == NGX_HTTP_AI_HALF_OPEN
        || (bn->state == NGX_HTTP_AI_CLOSED
            && bn->failures >= fb->breaker_failures))
    {
        bn->state = NGX_HTTP_AI_OPEN;
        bn->opened = ngx_current_msec;
        bn->probe = 0;
        bn->trips++;

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "ai gateway: circuit of %V open for %M ms after %ui "
                      "consecutive failures", model, fb->breaker_cooldown,
                      bn->failures);
    }

done:

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/*
 * The breakers as a JSON array for the status page:
 * [{"model":...,"state":...,"consecutive_failures":N,"trips":N}]
 */

void
ngx_http_ai_breaker_json(ngx_http_ai_main_conf_t *amcf, ngx_ai_jw_t *w)
{
    ngx_queue_t                 *q;
    ngx_http_ai_breaker_ctx_t   *ctx;
    ngx_http_ai_breaker_node_t  *bn;

    ngx_ai_jw_array(w);

    if (amcf->breakers == NULL) {
        ngx_ai_jw_end(w);
        return;
    }

    ctx = amcf->breakers->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    for (q = ngx_queue_head(&ctx->sh->queue);
         q != ngx_queue_sentinel(&ctx->sh->queue) && w->rc == NGX_OK;
         q = ngx_queue_next(q))
    {
        bn = ngx_queue_data(q, ngx_http_ai_breaker_node_t, queue);

        ngx_ai_jw_object(w);
        ngx_ai_jw_key_string(w, "model", bn->data, bn->len);
        ngx_ai_jw_key(w, "state");
        ngx_ai_jw_str(w, ngx_http_ai_breaker_states[bn->state]);
        ngx_ai_jw_key_uint(w, "consecutive_failures", bn->failures);
        ngx_ai_jw_key_uint(w, "trips", bn->trips);
        ngx_ai_jw_end(w);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ngx_ai_jw_end(w);
}


/*
 * A call is over (the call_done hook): its mark on its model's circuit,
 * where the location's ai_fallback has a breaker.  Calls the gateway
 * stopped, calls charged unjudged at the request's end, and 4xx answers
 * (the request's fault) leave no mark.
 */

static void
ngx_http_ai_breaker_call_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a)
{
    if (ctx->fallback && ctx->fallback->breaker_failures
        && a->outcome != NGX_HTTP_AI_RUNNING
        && a->outcome != NGX_HTTP_AI_ABORTED
        && a->outcome != NGX_HTTP_AI_4XX)
    {
        ngx_http_ai_breaker_record(ctx->fallback, &a->model,
                                   a->outcome == NGX_HTTP_AI_OK,
                                   r->connection->log);
    }
}


static ngx_http_ai_policy_t  ngx_http_ai_breaker_policy = {
    NULL,                                  /* request */
    NULL,                                  /* admit */
    NULL,                                  /* attempt */
    ngx_http_ai_breaker_call_done,         /* call_done */
    NULL,                                  /* headers */
    NULL,                                  /* answer */
    NULL,                                  /* error */
    NULL,                                  /* stream */
    NULL,                                  /* end */
    NULL,                                  /* log */
    NULL                                   /* plan */
};


ngx_int_t
ngx_http_ai_breaker_init(ngx_conf_t *cf)
{
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);

    if (amcf->breakers == NULL) {
        return NGX_OK;
    }

    return ngx_http_ai_policy_add(cf, &ngx_http_ai_breaker_policy);
}
