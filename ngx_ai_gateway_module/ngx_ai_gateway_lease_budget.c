
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Budget leases, sync_mode=lease of an ai_cost_zone with sync=.  A host
 * admits a request of a budget on its slice of the account's remaining
 * budget, in nano-USD: room it took from Redis, atomically
 * (sync/budget.lua), where each host's holding is kept in a hash
 * (aigw:ZONE:b:ID:PERIOD, one field a host: "NANO_USD:EXPIRES_MS") and
 * counted against the budget with the fleet's spend, so that no two
 * hosts hold the same room.
 *
 *   - admission reserves the request's estimate from the slice, in
 *     shared memory, with no round trip; each call's real cost is then
 *     taken from the slice and the estimate given back when the request
 *     ends; the spend itself reaches Redis as the ledger's deltas (the
 *     batches), so the fleet's totals stay exact;
 *   - a host's holding, as it tells Redis with each ask, is what is left
 *     of its slice, its reservations in flight and its spend Redis has
 *     not acknowledged yet: never less than what Redis misses of it;
 *   - the next slice is asked for when what is left falls below half of
 *     the next one's size (the host's rate over two sync intervals and a
 *     round trip, at least two requests' estimates and budget / (20 x
 *     hosts)), without waiting;
 *   - a request no slice covers is admitted on the fleet's figures as
 *     last known, if what the host so reserved and has in flight stays
 *     within budget / (20 x hosts), at least the request; past it, while
 *     a slice comes, it is refused (429, Retry-After 1 s);
 *   - a slice past its end, or all of them when the worker quits, goes
 *     back at the next batch: the host's field is set to what it still
 *     holds (removed at 0);
 *   - Redis away: the host's share, (budget - the fleet's spend as last
 *     known) / hosts, against what it spent since and has in flight
 *     (sync_fallback=share), or the budget as in sync_mode=async (full).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_lease.h"


static ngx_http_ai_budget_lease_t *ngx_http_ai_budget_lease_get(
    ngx_http_ai_cost_zone_t *zone, ngx_http_ai_cost_node_t *cn);
static uint64_t ngx_http_ai_budget_spent(ngx_http_ai_cost_node_t *cn,
    ngx_uint_t period);
static uint64_t ngx_http_ai_budget_unacked(ngx_http_ai_cost_node_t *cn,
    ngx_uint_t period);
static uint64_t ngx_http_ai_budget_held(ngx_http_ai_cost_node_t *cn,
    ngx_http_ai_budget_lease_t *bl, ngx_uint_t period, ngx_msec_t now);
static ngx_int_t ngx_http_ai_budget_local(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_sh_t *sy, ngx_http_ai_cost_conf_t *cc,
    ngx_http_ai_cost_node_t *cn, uint64_t spent, ngx_log_t *log);
static void ngx_http_ai_budget_want(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_cost_conf_t *cc, ngx_http_ai_cost_node_t *cn,
    uint64_t estimate, uint64_t hosts, ngx_msec_t now,
    ngx_http_ai_budget_ask_t *ask);
static ngx_msec_t ngx_http_ai_budget_life(ngx_http_ai_sync_zone_t *sz);


/*
 * A request's budget check in a lease zone, its account's figures rolled
 * to now: NGX_OK admitted (*from: 1 from the slice, 2 before one, 0 on
 * the local figures), NGX_DECLINED the budget refuses (*spent for the
 * message), NGX_BUSY no slice yet, one is asked for, NGX_DONE no memory
 * for a slice: the caller checks as sync_mode=async does.  Fills ask
 * when a slice is to be asked for.  Called locked.
 */

ngx_int_t
ngx_http_ai_budget_lease_take(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_cost_conf_t *cc, ngx_http_ai_cost_node_t *cn,
    uint64_t estimate, ngx_uint_t *from, uint64_t *spent,
    ngx_http_ai_budget_ask_t *ask, ngx_log_t *log)
{
    uint64_t                     hosts, pnum, bound;
    ngx_msec_t                   now;
    ngx_msec_int_t               ms;
    ngx_http_ai_sync_sh_t       *sy;
    ngx_http_ai_sync_zone_t     *sz;
    ngx_http_ai_budget_lease_t  *bl;

    sz = zone->sync;
    sy = &zone->sh->sync;
    now = ngx_current_msec;

    bl = ngx_http_ai_budget_lease_get(zone, cn);
    if (bl == NULL) {
        return NGX_DONE;
    }

    hosts = ngx_max(sy->hosts, 1);
    *spent = ngx_http_ai_budget_spent(cn, cc->period);
    *from = 0;

    pnum = cc->period == NGX_HTTP_AI_BUDGET_DAY ? cn->u.account.day
           : cc->period == NGX_HTTP_AI_BUDGET_MONTH ? cn->u.account.month
           : 0;

    if (bl->period != cc->period || bl->pnum != pnum) {
        /* another budget's slice, or a past day's: its field expires */
        bl->left = 0;
        bl->end = 0;
        bl->others = 0;
        bl->period = cc->period;
        bl->pnum = pnum;
    }

    if (bl->asked
        && (ngx_msec_int_t) (now - bl->asked) > NGX_HTTP_AI_LEASE_LOST_MS)
    {
        bl->asked = 0;
    }

    ms = (ngx_msec_int_t) (now - bl->win_start);

    if (ms >= 1000) {
        bl->rate = (ms < 2000) ? bl->win : 0;
        bl->win = 0;
        bl->win_start = now;
    }

    if (bl->end && (ngx_msec_int_t) (bl->end - now) > 0
        && bl->left >= (int64_t) estimate)
    {
        bl->left -= estimate;
        bl->flight += estimate;
        *from = 1;

    } else if (!ngx_http_ai_lease_usable(sz, sy, now)) {
        if (ngx_http_ai_budget_local(sz, sy, cc, cn, *spent, log) != NGX_OK)
        {
            return NGX_DECLINED;
        }

    } else {
        /* no slice: the fleet's figures as last known, and the bound */

        if (bl->answered
            && (ngx_msec_int_t) (now - bl->answered)
               > (ngx_msec_int_t) ngx_http_ai_budget_life(sz))
        {
            bl->others = 0;
        }

        if (*spent + cn->u.account.in_flight + bl->others >= cc->budget) {
            return NGX_DECLINED;
        }

        bound = cc->budget / (NGX_HTTP_AI_LEASE_SHARE * hosts);
        bound = ngx_max(bound, estimate);

        if (bl->cold + estimate > bound) {
            if (bl->asked == 0) {
                ngx_http_ai_budget_want(sz, cc, cn, estimate, hosts, now,
                                        ask);
            }

            sy->waiting++;

            return NGX_BUSY;
        }

        bl->cold += estimate;
        sy->cold++;
        *from = 2;
    }

    cn->u.account.in_flight += estimate;
    bl->win += estimate;

    if (bl->asked == 0 && ngx_http_ai_lease_usable(sz, sy, now)) {
        ngx_http_ai_budget_want(sz, cc, cn, estimate, hosts, now, ask);
    }

    return NGX_OK;
}


/* the account's slice state, allocated at its first use; called locked */

static ngx_http_ai_budget_lease_t *
ngx_http_ai_budget_lease_get(ngx_http_ai_cost_zone_t *zone,
    ngx_http_ai_cost_node_t *cn)
{
    ngx_http_ai_budget_lease_t  *bl;

    bl = cn->u.account.lease;

    if (bl) {
        return bl;
    }

    bl = ngx_slab_calloc_locked(zone->shpool,
                                sizeof(ngx_http_ai_budget_lease_t));

    cn->u.account.lease = bl;

    return bl;
}


/* the account's spend in the budget's period */

static uint64_t
ngx_http_ai_budget_spent(ngx_http_ai_cost_node_t *cn, ngx_uint_t period)
{
    return period == NGX_HTTP_AI_BUDGET_DAY ? cn->u.account.day_spend
           : period == NGX_HTTP_AI_BUDGET_MONTH ? cn->u.account.month_spend
           : cn->u.account.total;
}


/* what this host spent in the period and Redis has not acknowledged */

static uint64_t
ngx_http_ai_budget_unacked(ngx_http_ai_cost_node_t *cn, ngx_uint_t period)
{
    int64_t                     v;
    ngx_uint_t                  i;
    ngx_http_ai_spend_delta_t  *d;

    if (cn->delta == NULL) {
        return 0;
    }

    v = 0;

    for (i = 0; i < 2; i++) {
        d = i ? &cn->delta->u.account.send : &cn->delta->u.account.pend;

        switch (period) {

        case NGX_HTTP_AI_BUDGET_DAY:
            v += (d->day == cn->u.account.day) ? d->day_spend : 0;
            break;

        case NGX_HTTP_AI_BUDGET_MONTH:
            v += (d->month == cn->u.account.month) ? d->month_spend : 0;
            break;

        default:
            v += d->total;
        }
    }

    return v > 0 ? (uint64_t) v : 0;
}


/* what this host holds of the budget, as Redis is to count it */

static uint64_t
ngx_http_ai_budget_held(ngx_http_ai_cost_node_t *cn,
    ngx_http_ai_budget_lease_t *bl, ngx_uint_t period, ngx_msec_t now)
{
    uint64_t  held;

    held = bl->flight + bl->cold + ngx_http_ai_budget_unacked(cn, period);

    if (bl->end && (ngx_msec_int_t) (bl->end - now) > 0 && bl->left > 0) {
        held += bl->left;
    }

    return held;
}


/*
 * Redis away (or refusing slices): the host's share of what is left of
 * the budget as last known (sync_fallback=share), or the whole of it
 * (full), as sync_mode=async checks it.  Called locked.
 */

static ngx_int_t
ngx_http_ai_budget_local(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_sh_t *sy, ngx_http_ai_cost_conf_t *cc,
    ngx_http_ai_cost_node_t *cn, uint64_t spent, ngx_log_t *log)
{
    uint64_t    unacked, fleet, share, hosts;
    ngx_uint_t  fallback;

    (void) ngx_http_ai_sync_mode(sz, &fallback);

    hosts = ngx_max(sy->hosts, 1);

    if (fallback == NGX_HTTP_AI_SYNC_FALLBACK_FULL) {
        if (spent + cn->u.account.in_flight >= cc->budget) {
            return NGX_DECLINED;
        }

    } else {
        unacked = ngx_http_ai_budget_unacked(cn, cc->period);
        fleet = spent > unacked ? spent - unacked : 0;
        share = cc->budget > fleet ? (cc->budget - fleet) / hosts : 0;

        if (unacked + cn->u.account.in_flight >= share) {
            return NGX_DECLINED;
        }
    }

    sy->fallback++;

    if (ngx_time() - sy->fallback_logged >= NGX_HTTP_AI_REDIS_LOG_EVERY) {
        sy->fallback_logged = ngx_time();

        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "ai_cost: no budget slices from Redis (away, or "
                      "refusing them), budgets of a lease zone are this "
                      "host's %s (1/%uL of what is left) meanwhile",
                      fallback == NGX_HTTP_AI_SYNC_FALLBACK_FULL
                      ? "own figures" : "share",
                      fallback == NGX_HTTP_AI_SYNC_FALLBACK_FULL
                      ? (uint64_t) 1 : hosts);
    }

    return NGX_OK;
}


/*
 * The next slice, asked for when what is left of this one is below half
 * of it: what this host reserves in two sync intervals and a round trip,
 * at least two estimates of the request and budget / (20 x hosts), at
 * most the budget.  Called locked.
 */

static void
ngx_http_ai_budget_want(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_cost_conf_t *cc, ngx_http_ai_cost_node_t *cn,
    uint64_t estimate, uint64_t hosts, ngx_msec_t now,
    ngx_http_ai_budget_ask_t *ask)
{
    uint64_t                     horizon, want, rate, ms;
    ngx_http_ai_budget_lease_t  *bl;

    bl = cn->u.account.lease;

    horizon = 2 * ngx_http_ai_sync_interval(sz) + NGX_HTTP_AI_LEASE_ANSWER_MS;

    ms = (uint64_t) ngx_max((ngx_msec_int_t) (now - bl->win_start), 100);
    rate = ngx_max(bl->rate, bl->win * 1000 / ms);

    want = rate * horizon / 1000;
    want = ngx_max(want, 2 * estimate);
    want = ngx_max(want, cc->budget / (NGX_HTTP_AI_LEASE_SHARE * hosts));
    want = ngx_min(want, cc->budget);
    want = ngx_max(want, 1);

    if (bl->end && (ngx_msec_int_t) (bl->end - now) > 0
        && bl->left >= (int64_t) (want / 2))
    {
        return;
    }

    ask->budget = cc->budget;
    ask->want = want;
    ask->least = ngx_max(estimate, 1);
    ask->held = ngx_http_ai_budget_held(cn, bl, cc->period, now);
    ask->period = cc->period;
    ask->pnum = bl->pnum;
    ask->ask = 1;

    bl->asked = now;
}


/* how long a host's field lives in Redis: a slice's life and 2 syncs */

static ngx_msec_t
ngx_http_ai_budget_life(ngx_http_ai_sync_zone_t *sz)
{
    return 4 * ngx_http_ai_sync_interval(sz) + 2 * NGX_HTTP_AI_LEASE_END_MS;
}


/*
 * A slice asked for (or given back, want 0), the zone unlocked: ID
 * PERIOD BUDGET WANT LEAST HELD LIFE of sync/budget.lua.  Nothing waits
 * for the answer; when it cannot be asked, the zone is told as for no
 * answer.
 */

void
ngx_http_ai_budget_lease_ask(ngx_http_ai_sync_zone_t *sz, u_char *instance,
    uint32_t hash, u_char *id, size_t len, ngx_http_ai_budget_ask_t *ask)
{
    u_char                   *p;
    ngx_int_t                 rc;
    ngx_pool_t               *pool;
    ngx_array_t              *args;
    ngx_http_ai_sync_item_t  *item;
    u_char                    period[NGX_INT64_LEN + 3];

    item = ngx_http_ai_lease_item(sz, NGX_HTTP_AI_SYNC_ACCOUNT, hash, id,
                                  len, &pool, &args);
    if (item == NULL) {
        return;
    }

    item->a[2] = (ask->want == 0);
    item->a[3] = ask->pnum;

    switch (ask->period) {

    case NGX_HTTP_AI_BUDGET_DAY:
        p = ngx_sprintf(period, "d:%uL", ask->pnum);
        break;

    case NGX_HTTP_AI_BUDGET_MONTH:
        p = ngx_sprintf(period, "m:%uL", ask->pnum);
        break;

    default:
        p = ngx_cpymem(period, "total", 5);
    }

    rc = NGX_OK;

    if (args == NULL
        || ngx_http_ai_redis_arg(args, instance,
                                 NGX_HTTP_AI_SYNC_INSTANCE_LEN)
           != NGX_OK
        || ngx_http_ai_sync_arg_key(args, NULL, NULL, item->id, len)
           != NGX_OK
        || ngx_http_ai_redis_arg(args, period, p - period) != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->budget) != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->want) != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->least) != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) ask->held) != NGX_OK
        || ngx_http_ai_redis_arg_int(args,
                                     (int64_t) ngx_http_ai_budget_life(sz))
           != NGX_OK)
    {
        rc = NGX_ERROR;
    }

    ngx_http_ai_lease_send_item(sz, item, pool, args, rc);
}


/*
 * A budget slice's answer {GRANT, 0, SPEND, OTHERS, HOSTS, NOW_MS}, into
 * its account (NULL: evicted meanwhile, the field expires in Redis).
 * Called locked.
 */

void
ngx_http_ai_budget_lease_answer(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_sh_t *sy, ngx_http_ai_cost_node_t *cn,
    ngx_http_ai_sync_item_t *item)
{
    size_t                       n;
    uint64_t                     us;
    ngx_msec_t                   now;
    ngx_http_ai_budget_lease_t  *bl;

    now = ngx_current_msec;
    bl = cn ? cn->u.account.lease : NULL;

    if (item->a[1] >= item->a[0]) {
        us = item->a[1] - item->a[0];
        sy->latency_us = sy->latency_us ? (7 * sy->latency_us + us) / 8 : us;
    }

    if (bl && !item->a[2]) {
        bl->asked = 0;
    }

    if (item->status != NGX_HTTP_AI_STRICT_OK) {
        if (item->route.len) {
            /* an error reply: Redis is there, but grants nothing */

            sy->lease_failed = now ? now : 1;

            n = ngx_min(item->route.len, sizeof(sy->error));
            ngx_memcpy(sy->error, item->route.data, n);
            sy->error_len = n;
        }

        return;
    }

    sy->asks++;
    sy->hosts = (ngx_uint_t) item->res[4];
    sy->lease_failed = 0;

    if (item->res[0]) {
        sy->slices++;
        sy->leased[0] += item->res[0];
    }

    if (bl == NULL || bl->pnum != item->a[3]) {
        /* a past day's slice: it expires in Redis */
        return;
    }

    bl->others = (uint64_t) item->res[3];
    bl->answered = now;

    if (!item->a[2]) {
        /* a slice's ask (a return set the field as it told) */
        bl->held = 1;
    }

    if (item->res[0]) {
        bl->left = ngx_max(bl->left, 0) + item->res[0];
        bl->end = now + 2 * ngx_http_ai_sync_interval(sz)
                  + NGX_HTTP_AI_LEASE_END_MS;
    }
}


/* a call's real cost, taken from the slice it was reserved from */

void
ngx_http_ai_budget_lease_spent(ngx_http_ai_sync_sh_t *sy,
    ngx_http_ai_cost_node_t *cn, uint64_t cost)
{
    ngx_http_ai_budget_lease_t  *bl;

    bl = cn->u.account.lease;

    if (bl == NULL || bl->end == 0) {
        return;
    }

    bl->left -= (int64_t) cost;
    sy->used[0] += cost;
}


/* the request is over: its estimate goes back to the slice */

void
ngx_http_ai_budget_lease_release(ngx_http_ai_cost_node_t *cn,
    ngx_uint_t from, uint64_t estimate)
{
    ngx_http_ai_budget_lease_t  *bl;

    bl = cn->u.account.lease;

    if (bl == NULL) {
        return;
    }

    if (from == 1) {
        bl->flight -= ngx_min(estimate, bl->flight);

        if (bl->end) {
            bl->left += estimate;
        }

    } else if (from == 2) {
        bl->cold -= ngx_min(estimate, bl->cold);
    }
}


/*
 * A batch is frozen: a slice past its end (all of them when the worker
 * quits) goes back, and a host's field no slice covers any more follows
 * what it still holds (spend not acknowledged, reservations in flight)
 * down to 0.  Fills ask (want 0) when Redis is to be told.  Called
 * locked.
 */

ngx_uint_t
ngx_http_ai_budget_lease_return(ngx_http_ai_sync_sh_t *sy,
    ngx_http_ai_cost_node_t *cn, ngx_msec_t now, ngx_uint_t all,
    ngx_http_ai_budget_ask_t *ask)
{
    ngx_http_ai_budget_lease_t  *bl;

    bl = cn->u.account.lease;

    if (bl == NULL || !bl->held || bl->asked) {
        return 0;
    }

    if (bl->end) {
        if (!all && (ngx_msec_int_t) (bl->end - now) > 0) {
            return 0;
        }

        if (bl->left > 0) {
            sy->returned[0] += bl->left;
        }

        bl->left = 0;
        bl->end = 0;
    }

    ngx_memzero(ask, sizeof(ngx_http_ai_budget_ask_t));

    ask->held = ngx_http_ai_budget_held(cn, bl, bl->period, now);
    ask->period = bl->period;
    ask->pnum = bl->pnum;
    ask->ask = 1;

    bl->held = (ask->held != 0);

    return 1;
}


/*
 * Does an account hold a slice, or a field in Redis: then it is evicted
 * from a full zone only when nothing else can be.  Called locked.
 */

ngx_uint_t
ngx_http_ai_budget_lease_busy(ngx_http_ai_cost_node_t *cn)
{
    ngx_http_ai_budget_lease_t  *bl;

    if (cn->type != NGX_HTTP_AI_COST_ACCOUNT) {
        return 0;
    }

    bl = cn->u.account.lease;

    return bl && (bl->held || bl->end || bl->flight || bl->cold);
}


/* an account evicted, or its zone: its slice state goes; called locked */

void
ngx_http_ai_budget_lease_free(ngx_slab_pool_t *shpool,
    ngx_http_ai_cost_node_t *cn)
{
    if (cn->type == NGX_HTTP_AI_COST_ACCOUNT && cn->u.account.lease) {
        ngx_slab_free_locked(shpool, cn->u.account.lease);
        cn->u.account.lease = NULL;
    }
}


/*
 * The status "lease" object of a cost zone: as a rate zone's, with
 * "nano_usd" and "usd" {"leased","used","returned"} for its slices
 */

void
ngx_http_ai_budget_lease_json(ngx_ai_jw_t *w, ngx_http_ai_sync_sh_t *st,
    ngx_uint_t fallback)
{
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

    ngx_ai_jw_key(w, "nano_usd");
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_uint(w, "leased", st->leased[0]);
    ngx_ai_jw_key_uint(w, "used", st->used[0]);
    ngx_ai_jw_key_uint(w, "returned", st->returned[0]);
    ngx_ai_jw_end(w);

    ngx_ai_jw_key(w, "usd");
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_usd(w, "leased", st->leased[0]);
    ngx_ai_jw_key_usd(w, "used", st->used[0]);
    ngx_ai_jw_key_usd(w, "returned", st->returned[0]);
    ngx_ai_jw_end(w);

    ngx_ai_jw_end(w);
}
