
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Quota leases, sync_mode=lease (the default of an ai_rate_zone with
 * sync=).  A host admits a request on its slice of a bucket pair: room
 * it took from the fleet's bucket in Redis, atomically (sync/lease.lua),
 * so that no two hosts hold the same room.  Admission takes from the
 * slice in shared memory, under the zone's mutex, and asks for the next
 * slice at a low-water mark; the ask goes out on the worker's Redis
 * connection and nothing waits for it.  A slice not used by its end
 * goes back (a negative delta of the next batch, or of the last one
 * when the worker quits).
 *
 *   - a request its host's slice does not cover is admitted if the
 *     fleet's figures as last known have room and what the host admitted
 *     so and Redis has not counted yet stays within the unleased bound,
 *     limit / (20 x hosts), at least one request: the ask asked at once
 *     carries it (Redis counts it before granting), or the next batch;
 *     past the bound, while a slice comes, it is refused (429,
 *     Retry-After 1 s);
 *   - a slice is sized to what the host took in the last second over
 *     two sync intervals and a round trip (at least two requests and the
 *     unleased bound), and
 *     Redis grants at most the room left divided by the hosts that asked
 *     for a slice of the zone within 10 s;
 *   - while Redis is away, a host admits on its share of the limit:
 *     limit / the hosts Redis last counted (sync_fallback=share), or on
 *     its own figures as in sync_mode=async (sync_fallback=full); what
 *     it took is pushed when Redis is back.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_lease.h"


static ngx_uint_t ngx_http_ai_lease_unleased(ngx_http_ai_rate_hold_t *hold,
    uint64_t ur, uint64_t ut, uint64_t hosts);
static uint64_t ngx_http_ai_lease_bound(uint64_t limit, uint64_t least,
    uint64_t hosts);
static ngx_uint_t ngx_http_ai_lease_local(ngx_http_ai_rate_hold_t *hold,
    uint64_t ur, uint64_t ut, uint64_t div, ngx_msec_t *wait);
static void ngx_http_ai_lease_own(ngx_http_ai_rate_node_t *node,
    uint64_t rpm, uint64_t tpm, uint64_t hosts, ngx_msec_t now);
static void ngx_http_ai_lease_window(ngx_http_ai_rate_node_t *node,
    ngx_msec_t now);
static void ngx_http_ai_lease_want(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_rate_hold_t *hold, uint64_t ur, uint64_t ut, uint64_t hosts,
    ngx_msec_t now, ngx_http_ai_lease_ask_t *ask);


/*
 * A request's take from a bucket pair of a lease zone (hold->node, its
 * levels decayed to now), as ngx_http_ai_rate_take() does for the other
 * zones.  Returns what refused it: 0 nothing (taken), 1 requests, 2
 * tokens, NGX_HTTP_AI_LEASE_WAITING (no slice yet, one is asked for).
 * Fills ask when a slice is to be asked for.  Called locked.
 */

ngx_uint_t
ngx_http_ai_lease_take(ngx_http_ai_sync_zone_t *sz, ngx_http_ai_sync_sh_t *sy,
    ngx_http_ai_rate_hold_t *hold, ngx_msec_t now, ngx_msec_t *wait,
    ngx_http_ai_lease_ask_t *ask, ngx_log_t *log)
{
    uint64_t                   ur, ut, hosts;
    ngx_uint_t                 refuse, fallback, slice, cold;
    ngx_http_ai_rate_node_t   *node;
    ngx_http_ai_rate_limit_t  *limit;

    node = hold->node;
    limit = hold->limit;

    ur = limit->rpm ? NGX_HTTP_AI_RATE_UNIT : 0;
    ut = limit->tpm ? hold->tokens * NGX_HTTP_AI_RATE_UNIT : 0;

    hosts = ngx_max(sy->hosts, 1);

    (void) ngx_http_ai_sync_mode(sz, &fallback);

    ngx_http_ai_lease_own(node, limit->rpm, limit->tpm, hosts, now);
    ngx_http_ai_lease_window(node, now);

    if (node->asked
        && (ngx_msec_int_t) (now - node->asked) > NGX_HTTP_AI_LEASE_LOST_MS)
    {
        /* not answered, not failed: not to wait for any longer */
        node->asked = 0;
    }

    slice = node->lease_end
            && (ngx_msec_int_t) (node->lease_end - now) > 0
            && node->lease_req >= (int64_t) ur
            && node->lease_tok >= (int64_t) ut;

    cold = 0;

    if (slice) {
        node->lease_req -= ur;
        node->lease_tok -= ut;
        sy->used[0] += ur;
        sy->used[1] += ut;

    } else if (!ngx_http_ai_lease_usable(sz, sy, now)) {
        /*
         * Redis away, or refusing slices (an error reply: say a user
         * without the rights the script needs): this host's share, or
         * its own figures; an ask is tried again every interval
         */

        if (fallback == NGX_HTTP_AI_SYNC_FALLBACK_FULL) {
            /* as sync_mode=async: the fleet's as last known, and own */
            refuse = ngx_http_ai_lease_local(hold, ur, ut, 0, wait);

        } else {
            refuse = ngx_http_ai_lease_local(hold, ur, ut, hosts, wait);
        }

        if (refuse) {
            return refuse;
        }

        node->pend_req += ur;
        node->pend_tok += ut;
        sy->fallback++;

        if (ngx_time() - sy->fallback_logged >= NGX_HTTP_AI_REDIS_LOG_EVERY) {
            sy->fallback_logged = ngx_time();

            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "ai_rate: no slices from Redis (away, or "
                          "refusing them), limits of a lease zone are this "
                          "host's %s (1/%uL of each limit) meanwhile",
                          fallback == NGX_HTTP_AI_SYNC_FALLBACK_FULL
                          ? "own figures" : "share",
                          fallback == NGX_HTTP_AI_SYNC_FALLBACK_FULL
                          ? (uint64_t) 1 : hosts);
        }

    } else {
        /* no slice: the fleet's figures as last known may refuse */

        refuse = ngx_http_ai_lease_local(hold, ur, ut, 0, wait);

        if (refuse) {
            return refuse;
        }

        if (!ngx_http_ai_lease_unleased(hold, ur, ut, hosts)) {
            /* the host's unacknowledged requests are at the bound */

            if (node->asked == 0) {
                ngx_http_ai_lease_want(sz, hold, ur, ut, hosts, now, ask);
            }

            sy->waiting++;
            *wait = ngx_max(*wait, NGX_HTTP_AI_LEASE_RETRY);

            return NGX_HTTP_AI_LEASE_WAITING;
        }

        cold = 1;
        sy->cold++;
    }

    node->req_used += ur;
    node->tok_used += ut;
    node->own_req += ur;
    node->own_tok += ut;
    node->win_req += ur;
    node->win_tok += ut;

    hold->requests = limit->rpm ? 1 : 0;
    hold->counted = 1;

    if (node->asked == 0 && ngx_http_ai_lease_usable(sz, sy, now)) {
        ngx_http_ai_lease_want(sz, hold, ur, ut, hosts, now, ask);
    }

    if (cold) {
        /* the ask asked now carries it: Redis counts it before granting;
         * else the next batch pushes it */

        if (ask->ask) {
            ask->used[0] = (int64_t) ur;
            ask->used[1] = (int64_t) ut;
            node->ask_req += ur;
            node->ask_tok += ut;

        } else {
            node->pend_req += ur;
            node->pend_tok += ut;
        }
    }

    return 0;
}


/*
 * Can slices be asked for: this worker's Redis is up, and has not
 * refused one (an error reply) within the last interval.
 */

ngx_uint_t
ngx_http_ai_lease_usable(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_sh_t *sy, ngx_msec_t now)
{
    if (!ngx_http_ai_sync_up(sz)) {
        return 0;
    }

    return sy->lease_failed == 0
           || (ngx_msec_int_t) (now - sy->lease_failed)
              >= (ngx_msec_int_t) ngx_http_ai_sync_interval(sz);
}


/*
 * May a request be admitted without a slice?  What this host admitted so
 * and Redis has not acknowledged yet (pushed or to be, carried by an ask)
 * stays within the unleased bound: 1/20 of each limit divided by the
 * hosts, at least the request.
 */

static ngx_uint_t
ngx_http_ai_lease_unleased(ngx_http_ai_rate_hold_t *hold, uint64_t ur,
    uint64_t ut, uint64_t hosts)
{
    int64_t                    out;
    ngx_http_ai_rate_node_t   *node;
    ngx_http_ai_rate_limit_t  *limit;

    node = hold->node;
    limit = hold->limit;

    if (limit->rpm) {
        out = ngx_max(node->pend_req, 0) + ngx_max(node->send_req, 0)
              + node->ask_req;

        if ((uint64_t) ngx_max(out, 0) + ur
            > ngx_http_ai_lease_bound(limit->rpm, ur, hosts))
        {
            return 0;
        }
    }

    if (limit->tpm) {
        out = ngx_max(node->pend_tok, 0) + ngx_max(node->send_tok, 0)
              + node->ask_tok;

        if ((uint64_t) ngx_max(out, 0) + ut
            > ngx_http_ai_lease_bound(limit->tpm, ut, hosts))
        {
            return 0;
        }
    }

    return 1;
}


/* in rate units: limit / (20 x hosts), at least one request's worth */

static uint64_t
ngx_http_ai_lease_bound(uint64_t limit, uint64_t least, uint64_t hosts)
{
    uint64_t  b;

    b = limit * NGX_HTTP_AI_RATE_UNIT / (NGX_HTTP_AI_LEASE_SHARE * hosts);

    return ngx_max(b, least);
}


/*
 * The local check: the levels (div 0) or this host's own (div hosts)
 * against the limits (divided by the hosts).  Returns what refuses.
 */

static ngx_uint_t
ngx_http_ai_lease_local(ngx_http_ai_rate_hold_t *hold, uint64_t ur,
    uint64_t ut, uint64_t div, ngx_msec_t *wait)
{
    uint64_t                   cap, used, w, rate;
    ngx_uint_t                 refuse;
    ngx_http_ai_rate_node_t   *node;
    ngx_http_ai_rate_limit_t  *limit;

    node = hold->node;
    limit = hold->limit;
    refuse = 0;

    if (limit->rpm) {
        cap = limit->rpm * NGX_HTTP_AI_RATE_UNIT / (div ? div : 1);
        used = div ? node->own_req : node->req_used;
        rate = ngx_max(limit->rpm / (div ? div : 1), 1);

        if (used + ur > cap) {
            refuse |= 1;
            w = (used + ur - cap + rate - 1) / rate;
            *wait = ngx_max(*wait, (ngx_msec_t) w);
        }
    }

    if (limit->tpm) {
        cap = limit->tpm * NGX_HTTP_AI_RATE_UNIT / (div ? div : 1);
        used = div ? node->own_tok : node->tok_used;
        rate = ngx_max(limit->tpm / (div ? div : 1), 1);

        if (used + ut > cap) {
            refuse |= 2;
            w = (used + ut - cap + rate - 1) / rate;
            *wait = ngx_max(*wait, (ngx_msec_t) w);
        }
    }

    return refuse;
}


/* what this host took, decayed at its share of the limits */

static void
ngx_http_ai_lease_own(ngx_http_ai_rate_node_t *node, uint64_t rpm,
    uint64_t tpm, uint64_t hosts, ngx_msec_t now)
{
    uint64_t        d;
    ngx_msec_int_t  ms;

    ms = (ngx_msec_int_t) (now - node->own_last);
    node->own_last = now;

    if (ms <= 0) {
        return;
    }

    if (ms > 1000000000) {
        ms = 1000000000;
    }

    d = rpm * (uint64_t) ms / hosts;
    node->own_req = node->own_req > d ? node->own_req - d : 0;

    d = tpm * (uint64_t) ms / hosts;
    node->own_tok = node->own_tok > d ? node->own_tok - d : 0;
}


/* what was taken in the last second, for the size of the next slice */

static void
ngx_http_ai_lease_window(ngx_http_ai_rate_node_t *node, ngx_msec_t now)
{
    ngx_msec_int_t  ms;

    ms = (ngx_msec_int_t) (now - node->win);

    if (ms < 1000) {
        return;
    }

    if (ms < 2000) {
        node->rate_req = node->win_req;
        node->rate_tok = node->win_tok;

    } else {
        node->rate_req = 0;
        node->rate_tok = 0;
    }

    node->win_req = 0;
    node->win_tok = 0;
    node->win = now;
}


/*
 * The next slice, asked for when what is left of this one is below half
 * of it: what this host takes in two sync intervals and a round trip,
 * at least two requests (the request's tokens twice) and 1/20 of the
 * limit divided by the hosts.  Called locked.
 */

static void
ngx_http_ai_lease_want(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_rate_hold_t *hold, uint64_t ur, uint64_t ut, uint64_t hosts,
    ngx_msec_t now, ngx_http_ai_lease_ask_t *ask)
{
    uint64_t                   horizon, want[2], cap, ms;
    ngx_http_ai_rate_node_t   *node;
    ngx_http_ai_rate_limit_t  *limit;

    node = hold->node;
    limit = hold->limit;

    horizon = 2 * ngx_http_ai_sync_interval(sz) + NGX_HTTP_AI_LEASE_ANSWER_MS;

    /* the rate: this second's so far (as of 100 ms at least), or the
     * last one's */

    ms = (uint64_t) ngx_max((ngx_msec_int_t) (now - node->win), 100);

    want[0] = ngx_max(node->rate_req, node->win_req * 1000 / ms)
              * horizon / 1000;
    want[0] = ngx_max(want[0], 2 * ur);
    want[0] = ngx_max(want[0], ngx_http_ai_lease_bound(limit->rpm, ur,
                                                       hosts));
    cap = limit->rpm * NGX_HTTP_AI_RATE_UNIT;
    want[0] = ngx_min(want[0], cap);

    want[1] = ngx_max(node->rate_tok, node->win_tok * 1000 / ms)
              * horizon / 1000;
    want[1] = ngx_max(want[1], 2 * ut);
    want[1] = ngx_max(want[1], ngx_http_ai_lease_bound(limit->tpm, ut,
                                                       hosts));
    cap = limit->tpm * NGX_HTTP_AI_RATE_UNIT;
    want[1] = ngx_min(want[1], cap);

    if (node->lease_end && (ngx_msec_int_t) (node->lease_end - now) > 0
        && node->lease_req >= (int64_t) (want[0] / 2)
        && node->lease_tok >= (int64_t) (want[1] / 2))
    {
        return;
    }

    ask->rpm = limit->rpm;
    ask->tpm = limit->tpm;
    ask->want[0] = want[0];
    ask->want[1] = want[1];
    ask->least[0] = ur;
    ask->least[1] = ut;
    ask->ask = 1;

    node->asked = now;
}


/*
 * A slice asked for, the zone unlocked: ID RPM TPM WREQ WTOK MREQ MTOK
 * UREQ UTOK of sync/lease.lua.  Nothing waits for the answer; when it
 * cannot be asked, the zone is told as for no answer.
 */

void
ngx_http_ai_lease_ask(ngx_http_ai_sync_zone_t *sz, u_char *instance,
    uint32_t hash, u_char *id, size_t len, ngx_http_ai_lease_ask_t *ask)
{
    ngx_int_t                 rc;
    ngx_pool_t               *pool;
    ngx_array_t              *args;
    ngx_http_ai_sync_item_t  *item;

    item = ngx_http_ai_lease_item(sz, NGX_HTTP_AI_SYNC_RATE, hash, id, len,
                                  &pool, &args);
    if (item == NULL) {
        return;
    }

    item->d[0] = ask->used[0];
    item->d[1] = ask->used[1];

    rc = NGX_OK;

    if (args == NULL
        || ngx_http_ai_redis_arg(args, instance,
                                 NGX_HTTP_AI_SYNC_INSTANCE_LEN)
           != NGX_OK
        || ngx_http_ai_sync_arg_key(args, NULL, NULL, item->id, len)
           != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->rpm) != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->tpm) != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->want[0]) != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->want[1]) != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->least[0])
           != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->least[1])
           != NGX_OK
        || ngx_http_ai_redis_arg_int(args, ask->used[0]) != NGX_OK
        || ngx_http_ai_redis_arg_int(args, ask->used[1]) != NGX_OK)
    {
        rc = NGX_ERROR;
    }

    ngx_http_ai_lease_send_item(sz, item, pool, args, rc);
}


/*
 * The item of an ask (a rate slice's or a budget slice's), its id
 * copied and its start time set, with a pool and the script's first
 * arguments (*args NULL: out of memory); NULL: no item
 */

ngx_http_ai_sync_item_t *
ngx_http_ai_lease_item(ngx_http_ai_sync_zone_t *sz, ngx_uint_t type,
    uint32_t hash, u_char *id, size_t len, ngx_pool_t **pool,
    ngx_array_t **args)
{
    struct timeval            tv;
    ngx_http_ai_sync_item_t  *item;

    item = ngx_alloc(sizeof(ngx_http_ai_sync_item_t) + len
                     + NGX_HTTP_AI_LEASE_ERROR_LEN, ngx_cycle->log);
    if (item == NULL) {
        return NULL;
    }

    ngx_memzero(item, sizeof(ngx_http_ai_sync_item_t));

    item->type = type;
    item->hash = hash;
    item->id = (u_char *) (item + 1);
    item->len = len;
    item->sync = sz;
    item->status = NGX_HTTP_AI_STRICT_FAILED;

    ngx_memcpy(item->id, id, len);

    ngx_gettimeofday(&tv);
    item->a[0] = (uint64_t) tv.tv_sec * 1000000 + tv.tv_usec;

    *pool = ngx_create_pool(1024, ngx_cycle->log);
    *args = *pool ? ngx_http_ai_sync_lease_args(sz, *pool) : NULL;

    return item;
}


/*
 * An ask whose arguments are complete (rc NGX_OK) goes out, answered to
 * ngx_http_ai_lease_handler(); one that is not, or cannot be sent, ends
 * as unanswered at once
 */

void
ngx_http_ai_lease_send_item(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_item_t *item, ngx_pool_t *pool, ngx_array_t *args,
    ngx_int_t rc)
{
    if (rc == NGX_OK
        && ngx_http_ai_sync_lease_send(sz, args, ngx_http_ai_lease_handler,
                                       item)
           == NGX_OK)
    {
        ngx_destroy_pool(pool);
        return;
    }

    if (pool) {
        ngx_destroy_pool(pool);
    }

    ngx_http_ai_sync_lease_done(item);
    ngx_free(item);
}


/*
 * {GREQ, GTOK, LREQ, LTOK, HOSTS, NOW_MS}, or none (reply NULL); a budget
 * slice's {GRANT, 0, SPEND, OTHERS, HOSTS, NOW_MS} too
 */

void
ngx_http_ai_lease_handler(ngx_http_ai_redis_t *rd, redisReply *reply,
    void *data)
{
    ngx_http_ai_sync_item_t *item = data;

    size_t          n;
    ngx_uint_t      j;
    struct timeval  tv;

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        /* kept for the status; said once a minute at most */

        n = ngx_min((size_t) reply->len, NGX_HTTP_AI_LEASE_ERROR_LEN);
        item->route.data = item->id + item->len;
        item->route.len = n;
        ngx_memcpy(item->route.data, reply->str, n);

        if (ngx_time() - rd->logged >= NGX_HTTP_AI_REDIS_LOG_EVERY) {
            ngx_log_error(NGX_LOG_ERR, &rd->log, 0,
                          "ai sync: %V did not grant a slice: %*s; the "
                          "lease zones admit on their share meanwhile",
                          &rd->name, n, item->route.data);
            rd->logged = ngx_time();
        }
    }

    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 6) {

        for (j = 0; j < 6; j++) {
            if (ngx_http_ai_redis_number(reply->element[j], &item->res[j])
                != NGX_OK
                || item->res[j] < 0)
            {
                break;
            }
        }

        if (j == 6 && item->res[4] > 0) {
            item->status = NGX_HTTP_AI_STRICT_OK;
            rd->backoff = NGX_HTTP_AI_REDIS_BACKOFF_MIN;
        }
    }

    ngx_gettimeofday(&tv);
    item->a[1] = (uint64_t) tv.tv_sec * 1000000 + tv.tv_usec;

    ngx_http_ai_sync_lease_done(item);
    ngx_free(item);
}


/*
 * A slice's answer, into its node: the grant is added to the slice, the
 * levels become the fleet's (less what is left of the slice, plus what
 * was taken here and not pushed).  No answer: what the ask carried is
 * pushed by a batch instead.  Called locked.
 */

void
ngx_http_ai_lease_answer(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_sh_t *sy, ngx_http_ai_rate_node_t *node,
    ngx_http_ai_sync_item_t *item)
{
    size_t      n;
    int64_t     v;
    uint64_t    us;
    ngx_msec_t  now;

    now = ngx_current_msec;

    if (item->a[1] >= item->a[0]) {
        us = item->a[1] - item->a[0];
        sy->latency_us = sy->latency_us ? (7 * sy->latency_us + us) / 8 : us;
    }

    if (item->status != NGX_HTTP_AI_STRICT_OK) {
        if (item->route.len) {
            /* an error reply: Redis is there, but grants nothing */

            sy->lease_failed = now ? now : 1;

            n = ngx_min(item->route.len, sizeof(sy->error));
            ngx_memcpy(sy->error, item->route.data, n);
            sy->error_len = n;
        }

        if (node) {
            node->pend_req += item->d[0];
            node->pend_tok += item->d[1];
            node->ask_req -= item->d[0];
            node->ask_tok -= item->d[1];
            node->asked = 0;
            node->answered = 0;
        }

        return;
    }

    sy->asks++;
    sy->hosts = (ngx_uint_t) item->res[4];
    sy->lease_failed = 0;

    if (item->res[0] || item->res[1]) {
        sy->slices++;
        sy->leased[0] += item->res[0];
        sy->leased[1] += item->res[1];
    }

    if (node == NULL) {
        /* evicted meanwhile: the slice goes unused, it decays in Redis */
        return;
    }

    node->ask_req -= item->d[0];
    node->ask_tok -= item->d[1];

    node->lease_req += item->res[0];
    node->lease_tok += item->res[1];

    if (item->res[0] || item->res[1]) {
        node->lease_end = now + 2 * ngx_http_ai_sync_interval(sz)
                          + NGX_HTTP_AI_LEASE_END_MS;
    }

    v = item->res[2] - node->lease_req + node->pend_req + node->ask_req;
    node->req_used = v > 0 ? (uint64_t) v : 0;

    v = item->res[3] - node->lease_tok + node->pend_tok + node->ask_tok;
    node->tok_used = v > 0 ? (uint64_t) v : 0;

    node->last = now;
    node->synced = now;
    node->asked = 0;
    node->answered = now;
}


/*
 * A batch is frozen: a slice past its end (all of them when the worker
 * quits) goes back to the fleet, as a negative delta.  Called locked.
 */

void
ngx_http_ai_lease_return(ngx_http_ai_sync_sh_t *sy,
    ngx_http_ai_rate_node_t *node, ngx_msec_t now, ngx_uint_t all)
{
    if (node->lease_end == 0
        || (!all && (ngx_msec_int_t) (node->lease_end - now) > 0))
    {
        return;
    }

    if (node->lease_req > 0) {
        node->pend_req -= node->lease_req;
        sy->returned[0] += node->lease_req;
    }

    if (node->lease_tok > 0) {
        node->pend_tok -= node->lease_tok;
        sy->returned[1] += node->lease_tok;
    }

    node->lease_req = 0;
    node->lease_tok = 0;
    node->lease_end = 0;
}


/*
 * The status "lease" object of a lease zone: {"fallback":"share"|"full",
 * "hosts":N,"asks":N,"slices":N,"latency_us":N,"unleased":N,"waiting":N,
 * "fallback_admissions":N,"requests":{"leased","used","returned"},
 * "tokens":{...}}, in requests and tokens
 */

void
ngx_http_ai_lease_json(ngx_ai_jw_t *w, ngx_http_ai_sync_sh_t *st,
    ngx_uint_t fallback)
{
    ngx_uint_t  i;

    static const char  *dims[] = { "requests", "tokens" };

    ngx_ai_jw_key(w, "lease");
    ngx_ai_jw_object(w);

    if (fallback == NGX_HTTP_AI_SYNC_FALLBACK_FULL) {
        ngx_ai_jw_key_string(w, "fallback", (u_char *) "full", 4);

    } else {
        ngx_ai_jw_key_string(w, "fallback", (u_char *) "share", 5);
    }

    ngx_ai_jw_key_uint(w, "hosts", st->hosts);
    ngx_ai_jw_key_uint(w, "asks", st->asks);
    ngx_ai_jw_key_uint(w, "slices", st->slices);
    ngx_ai_jw_key_uint(w, "latency_us", st->latency_us);
    ngx_ai_jw_key_uint(w, "unleased", st->cold);
    ngx_ai_jw_key_uint(w, "waiting", st->waiting);
    ngx_ai_jw_key_uint(w, "fallback_admissions", st->fallback);

    for (i = 0; i < 2; i++) {
        ngx_ai_jw_key(w, dims[i]);
        ngx_ai_jw_object(w);
        ngx_ai_jw_key_uint(w, "leased",
                           st->leased[i] / NGX_HTTP_AI_RATE_UNIT);
        ngx_ai_jw_key_uint(w, "used", st->used[i] / NGX_HTTP_AI_RATE_UNIT);
        ngx_ai_jw_key_uint(w, "returned",
                           st->returned[i] / NGX_HTTP_AI_RATE_UNIT);
        ngx_ai_jw_end(w);
    }

    ngx_ai_jw_end(w);
}
