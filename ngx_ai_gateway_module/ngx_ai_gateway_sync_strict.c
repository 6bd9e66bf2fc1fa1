
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Strict admissions (sync_mode=strict): a request's holds reserved in
 * Redis by sync/strict.lua, one script call per Redis server, before the
 * request is admitted; the answer, or sync_timeout, decides.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_redis.h"
#include "ngx_ai_gateway_sync_zone.h"


static ngx_int_t ngx_http_ai_sync_strict_args(ngx_pool_t *pool,
    ngx_http_ai_sync_waiter_t *w, ngx_uint_t first, ngx_uint_t n,
    ngx_array_t *args);
static void ngx_http_ai_sync_strict_answer(ngx_http_ai_redis_t *rd,
    redisReply *reply, void *data);
static void ngx_http_ai_sync_strict_done(ngx_event_t *ev);


ngx_uint_t
ngx_http_ai_sync_strict_ready(ngx_http_ai_sync_zone_t *sz)
{
    return sz->strict && sz->sync->redis.state == NGX_HTTP_AI_REDIS_READY;
}


/*
 * The deferred holds of a request (items) asked of Redis, one script call
 * per Redis server: NGX_AGAIN, the answers are awaited (*waiter is set;
 * done(data, ...) follows, out of the connection's handler, with *waiter
 * cleared before); NGX_DECLINED: nothing could be asked, the local
 * figures decide now.
 */

ngx_int_t
ngx_http_ai_sync_strict(ngx_http_request_t *r, ngx_array_t *items,
    ngx_http_ai_sync_done_pt done, void *data, void **waiter)
{
    u_char                     *sha;
    ngx_uint_t                  i, j, n;
    ngx_array_t                *args;
    ngx_http_ai_sync_t         *s;
    ngx_http_ai_sync_call_t    *call;
    ngx_http_ai_sync_item_t    *it, tmp;
    ngx_http_ai_sync_waiter_t  *w;

    n = items->nelts;

    if (n == 0) {
        return NGX_DECLINED;
    }

    /* grouped by Redis server, the order kept within a group */

    it = items->elts;

    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && it[j - 1].sync->sync > it[j].sync->sync; j--) {
            tmp = it[j];
            it[j] = it[j - 1];
            it[j - 1] = tmp;
        }
    }

    w = ngx_alloc(sizeof(ngx_http_ai_sync_waiter_t)
                  + (n - 1) * sizeof(ngx_http_ai_sync_item_t)
                  + n * sizeof(ngx_http_ai_sync_call_t),
                  r->connection->log);
    if (w == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(w, sizeof(ngx_http_ai_sync_waiter_t));
    ngx_memcpy(w->items, it, n * sizeof(ngx_http_ai_sync_item_t));

    w->nitems = n;
    w->call = (ngx_http_ai_sync_call_t *) &w->items[n];
    w->done = done;
    w->data = data;
    w->ref = waiter;
    w->event.handler = ngx_http_ai_sync_strict_done;
    w->event.data = w;
    w->event.log = r->connection->log;

    for (i = 0; i < n; i = j) {
        s = w->items[i].sync->sync;

        for (j = i; j < n && w->items[j].sync->sync == s; j++) {
            /* void */
        }

        if (s->redis.state != NGX_HTTP_AI_REDIS_READY) {
            continue;
        }

        sha = s->scripts[NGX_HTTP_AI_SYNC_STRICT_LUA].sha;
        args = ngx_array_create(r->pool, 4 + 7 * (j - i), sizeof(ngx_str_t));

        if (args == NULL
            || ngx_http_ai_redis_arg(args, (u_char *) "EVALSHA", 7) != NGX_OK
            || ngx_http_ai_redis_arg(args, sha, 40) != NGX_OK
            || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_sync_strict_args(r->pool, w, i, j - i, args)
               != NGX_OK)
        {
            break;
        }

        call = &w->call[w->calls];
        call->waiter = w;
        call->first = i;
        call->n = j - i;

        if (ngx_http_ai_redis_command(&s->redis, args,
                                      ngx_http_ai_sync_strict_answer, call,
                                      w->items[i].sync->timeout)
            != NGX_OK)
        {
            break;
        }

        w->calls++;
    }

    if (w->calls == 0) {
        ngx_free(w);
        return NGX_DECLINED;
    }

    *waiter = w;

    /*
     * Sent once every call is counted: a send that fails answers its
     * calls at once (NULL), and the last answer posts w->event.
     */

    for (i = 0; i < n; i = j) {
        s = w->items[i].sync->sync;

        for (j = i; j < n && w->items[j].sync->sync == s; j++) {
            /* void */
        }

        ngx_http_ai_redis_send(&s->redis);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai sync: strict admission, %ui reservations in %ui "
                   "calls", n, w->calls);

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_ai_sync_strict_args(ngx_pool_t *pool, ngx_http_ai_sync_waiter_t *w,
    ngx_uint_t first, ngx_uint_t n, ngx_array_t *args)
{
    ngx_uint_t                i;
    ngx_http_ai_sync_item_t  *item;

    for (i = first; i < first + n; i++) {
        item = &w->items[i];

        if (item->type == NGX_HTTP_AI_SYNC_RATE) {
            if (ngx_http_ai_redis_arg(args, (u_char *) "R", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, &item->sync->prefix, "r:",
                                            item->id, item->len)
                   != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item->a[0]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item->a[1]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item->d[0]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item->d[1]) != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else {
            if (ngx_http_ai_redis_arg(args, (u_char *) "A", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, &item->sync->prefix, "a:",
                                            item->id, item->len)
                   != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item->a[0]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item->a[1]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item->d[0]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item->a[2]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item->a[3]) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        /* the identity is the zone's: not to be used after this */
        item->id = NULL;
    }

    return NGX_OK;
}


/* a strict call's answer (NULL: none, the local figures decide) */

static void
ngx_http_ai_sync_strict_answer(ngx_http_ai_redis_t *rd, redisReply *reply,
    void *data)
{
    ngx_http_ai_sync_call_t *cmd = data;

    size_t                      k, want;
    int64_t                     ok, idx;
    ngx_uint_t                  i, j;
    ngx_http_ai_sync_item_t    *item;
    ngx_http_ai_sync_waiter_t  *w;

    w = cmd->waiter;

    /* NGX_HTTP_AI_STRICT_FAILED (0) unless the answer checks out */

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2
        || ngx_http_ai_redis_number(reply->element[0], &ok) != NGX_OK)
    {
        goto done;
    }

    if (ok == 1) {
        want = 2;

        for (i = cmd->first; i < cmd->first + cmd->n; i++) {
            want += w->items[i].type == NGX_HTTP_AI_SYNC_RATE ? 2 : 4;
        }

        if (reply->elements != want) {
            goto done;
        }

        k = 2;

        for (i = cmd->first; i < cmd->first + cmd->n; i++) {
            item = &w->items[i];
            want = item->type == NGX_HTTP_AI_SYNC_RATE ? 2 : 4;

            for (j = 0; j < want; j++) {
                if (ngx_http_ai_redis_number(reply->element[k + j],
                                             &item->res[j])
                    != NGX_OK)
                {
                    goto failed;
                }
            }

            k += want;
        }

        for (i = cmd->first; i < cmd->first + cmd->n; i++) {
            w->items[i].status = NGX_HTTP_AI_STRICT_OK;
        }

        w->items[cmd->first].sync->sync->redis.backoff =
                                               NGX_HTTP_AI_REDIS_BACKOFF_MIN;
        goto done;
    }

    /* refused: {0, INDEX, four figures of the item that refused} */

    if (ok != 0 || reply->elements != 6
        || ngx_http_ai_redis_number(reply->element[1], &idx) != NGX_OK
        || idx < 1 || idx > (int64_t) cmd->n)
    {
        goto done;
    }

    item = &w->items[cmd->first + idx - 1];

    for (j = 0; j < 4; j++) {
        if (ngx_http_ai_redis_number(reply->element[2 + j], &item->res[j])
            != NGX_OK)
        {
            goto failed;
        }
    }

    for (i = cmd->first; i < cmd->first + cmd->n; i++) {
        w->items[i].status = NGX_HTTP_AI_STRICT_NOT_TAKEN;
    }

    item->status = NGX_HTTP_AI_STRICT_REFUSED;

    item->sync->sync->redis.backoff = NGX_HTTP_AI_REDIS_BACKOFF_MIN;
    goto done;

failed:

    for (i = cmd->first; i < cmd->first + cmd->n; i++) {
        w->items[i].status = NGX_HTTP_AI_STRICT_FAILED;
    }

done:

    if (--w->calls) {
        return;
    }

    if (w->data == NULL) {
        /* the request is gone */
        ngx_free(w);
        return;
    }

    /* the request goes on out of the connection's handler */

    ngx_post_event(&w->event, &ngx_posted_events);
}


static void
ngx_http_ai_sync_strict_done(ngx_event_t *ev)
{
    ngx_uint_t                  i, local;
    ngx_slab_pool_t            *shpool;
    ngx_http_ai_sync_sh_t      *sy;
    ngx_http_ai_sync_item_t    *item;
    ngx_http_ai_sync_waiter_t  *w;

    w = ev->data;

    for (i = 0; i < w->nitems; i++) {
        item = &w->items[i];
        local = (item->status == NGX_HTTP_AI_STRICT_FAILED);

        sy = ngx_http_ai_sync_sh(item->sync, &shpool);

        if (sy) {
            ngx_shmtx_lock(&shpool->mutex);
            sy->strict++;
            sy->strict_local += local;
            ngx_shmtx_unlock(&shpool->mutex);
        }
    }

    if (w->data) {
        *w->ref = NULL;
        w->done(w->data, w->items, w->nitems);
    }

    ngx_free(w);
}


/* the request is gone before its answers */

void
ngx_http_ai_sync_strict_cancel(void **waiter)
{
    ngx_http_ai_sync_waiter_t  *w;

    w = *waiter;

    if (w == NULL) {
        return;
    }

    *waiter = NULL;
    w->data = NULL;
}
