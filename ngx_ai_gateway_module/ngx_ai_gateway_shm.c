
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Shared memory helpers of the zones (rate, cost, metrics, breakers): the
 * NAME:SIZE argument of their directives, the slab zone's shared state,
 * and the rbtree of nodes told apart by bytes.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


/*
 * A zone directive's NAME:SIZE (at least 8 pages, as limit_req wants);
 * errors are logged with the directive's name and an example.
 */

ngx_int_t
ngx_http_ai_zone_arg(ngx_conf_t *cf, ngx_str_t *arg, const char *directive,
    const char *example, ngx_str_t *name, ssize_t *size)
{
    u_char     *p;
    ngx_str_t   s;

    p = ngx_strlchr(arg->data, arg->data + arg->len, ':');

    if (p == NULL || p == arg->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\": %s takes NAME:SIZE, e.g. %s",
                           arg, directive, example);
        return NGX_ERROR;
    }

    name->data = arg->data;
    name->len = p - arg->data;

    s.data = p + 1;
    s.len = arg->data + arg->len - s.data;

    *size = ngx_parse_size(&s);

    if (*size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", arg);
        return NGX_ERROR;
    }

    if (*size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small: at least %uz bytes",
                           arg, 8 * ngx_pagesize);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The shared state of a slab zone (its rbtree, LRU queue, totals...):
 * sh_size bytes kept at shpool->data.  On a reload that keeps the zone
 * (data is the old cycle's), or in a zone that exists already, it is the
 * state found there; else a new zeroed one, which the caller initialises
 * (*fresh), with the log context " in WHAT \"NAME\"" (as limit_req's
 * zones).  NULL: no memory.
 */

void *
ngx_http_ai_zone_state(ngx_shm_zone_t *shm_zone, void *data, size_t sh_size,
    const char *what, ngx_slab_pool_t **shpool, ngx_uint_t *fresh)
{
    u_char           *sh;
    size_t            len;
    ngx_slab_pool_t  *pool;

    pool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    *shpool = pool;
    *fresh = 0;

    if (data || shm_zone->shm.exists) {
        return pool->data;
    }

    sh = ngx_slab_calloc(pool, sh_size);
    if (sh == NULL) {
        return NULL;
    }

    pool->data = sh;

    len = sizeof(" in  \"\"") + ngx_strlen(what) + shm_zone->shm.name.len;

    pool->log_ctx = ngx_slab_alloc(pool, len);
    if (pool->log_ctx == NULL) {
        return NULL;
    }

    ngx_sprintf(pool->log_ctx, " in %s \"%V\"%Z", what, &shm_zone->shm.name);

    *fresh = 1;

    return sh;
}


/*
 * The rbtrees of zones whose nodes are told apart by bytes (rate buckets,
 * cost entries, breakers): ordered by hash, then by those bytes.  The
 * node's own struct starts at the rbtree node's color, with a u_short
 * length at len_off and the bytes at data_off.
 */

#define ngx_http_ai_id_len(node, off)                                        \
    ((size_t) *(u_short *) ((u_char *) &(node)->color + (off)))
#define ngx_http_ai_id_data(node, off)  ((u_char *) &(node)->color + (off))


void
ngx_http_ai_id_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, size_t len_off, size_t data_off)
{
    ngx_rbtree_node_t  **p;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            p = (ngx_memn2cmp(ngx_http_ai_id_data(node, data_off),
                              ngx_http_ai_id_data(temp, data_off),
                              ngx_http_ai_id_len(node, len_off),
                              ngx_http_ai_id_len(temp, len_off))
                 < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


/* the struct of the node with these bytes, or NULL; called locked */

void *
ngx_http_ai_id_lookup(ngx_rbtree_t *tree, uint32_t hash, u_char *id,
    size_t len, size_t len_off, size_t data_off)
{
    ngx_int_t           rc;
    ngx_rbtree_node_t  *node, *sentinel;

    node = tree->root;
    sentinel = tree->sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        rc = ngx_memn2cmp(id, ngx_http_ai_id_data(node, data_off), len,
                          ngx_http_ai_id_len(node, len_off));

        if (rc == 0) {
            return &node->color;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}
