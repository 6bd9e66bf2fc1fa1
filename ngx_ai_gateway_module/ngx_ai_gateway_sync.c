
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * sync=redis://...: rate limits and budgets held across hosts through
 * Redis.  Local shared memory stays the fast path; Redis is only ever
 * spoken to on nginx's event loop, never waited for by a request (but
 * a strict one, for at most sync_timeout).
 *
 *   batches   every sync_interval one worker per host (worker 0) pushes
 *             what the host's zones took since the last push (deltas),
 *             and pulls the fleet's figures back, in one Lua script call
 *             per batch, atomic in Redis.  A batch is frozen in shared
 *             memory until Redis answers it: when Redis is away it is
 *             sent again, with the same number, so that it is applied
 *             once (the script keeps the last number applied per zone
 *             instance), and nothing is lost meanwhile.
 *   strict    an admission in a strict zone is a reservation made by a
 *             Lua script in Redis (check and take, atomic), the request
 *             waiting for its answer; without one within sync_timeout,
 *             or with Redis away, the local figures decide.
 *
 * Redis is spoken to through ngx_ai_gateway_redis.c (one connection per
 * worker and Redis server, on nginx's events); the zones are reached
 * through the source each handed over (ngx_ai_gateway_sync.h).
 *
 * Keys, all under "aigw:ZONE:": "r:ID" a rate bucket pair, "l:ID" a
 * ledger entry, "a:ID:d:DAY", "a:ID:m:MONTH", "a:ID:total" an account's
 * spend, "totals" a cost zone's totals, "seen:INSTANCE" the last batch
 * applied.  ID is the first 16 bytes of the SHA-256 of the node's
 * identity, in hex; identities hold key digests, never keys.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <ngx_http.h>
#include <openssl/rand.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_redis.h"
#include "ngx_ai_gateway_lease.h"
#include "ngx_ai_gateway_sync_lua.h"
#include "ngx_ai_gateway_sync_zone.h"


/* the sync options of a zone directive, while it is parsed */
typedef struct {
    ngx_str_t                       url;
    ngx_str_t                       password;
    ngx_msec_t                      interval;
    ngx_msec_t                      timeout;
    ngx_int_t                       mode;         /* -1: the zone's default */
    ngx_uint_t                      fallback;
    ngx_str_t                       first;        /* for error messages */
} ngx_http_ai_sync_opts_t;


static ngx_uint_t ngx_http_ai_sync_is_syncer(void);
static void ngx_http_ai_sync_ready(ngx_http_ai_redis_t *rd);
static void ngx_http_ai_sync_down(ngx_http_ai_redis_t *rd);

static void ngx_http_ai_sync_final(ngx_http_ai_redis_t *rd);
static void ngx_http_ai_sync_tick(ngx_event_t *ev);
static void ngx_http_ai_sync_push(ngx_http_ai_sync_zone_t *sz,
    ngx_uint_t refresh);
static void ngx_http_ai_sync_next(ngx_http_ai_sync_zone_t *sz,
    ngx_uint_t done);
static ngx_int_t ngx_http_ai_sync_batch_args(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_batch_t *b, ngx_array_t *args);
static void ngx_http_ai_sync_batch_answer(ngx_http_ai_redis_t *rd,
    redisReply *reply, void *data);
static ngx_int_t ngx_http_ai_sync_batch_results(ngx_http_ai_sync_batch_t *b,
    redisReply *reply);

static void ngx_http_ai_sync_pull_answer(ngx_http_ai_redis_t *rd,
    redisReply *reply, void *data);

static void ngx_http_ai_sync_set_state(ngx_http_ai_sync_t *s,
    ngx_uint_t state);


/*
 * The scripts, sync/batch.lua and sync/strict.lua, embedded by
 * sync/embed.pl.  A batch: ARGV[1] the zone's key prefix, ARGV[2] the zone
 * instance, ARGV[3] the batch number, then the items:
 *
 *   R ID RPM TPM DREQ DTOK       a bucket pair: levels in 1/60000 units
 *                                decay at RPM (TPM) units a millisecond
 *                                of Redis's clock; answers its levels
 *   L ID KEYHEX ROUTE MODEL D1..D8
 *                                a ledger entry; answers nothing
 *   A ID DAY MONTH DDAY DMONTH DTOTAL RDAY RMONTH
 *                                an account; answers its spend of day
 *                                RDAY, month RMONTH and ever
 *   T D1..D8                     the zone totals; answers them
 *
 * It answers {APPLIED, NOW_MS, answers...}; a batch number not above the
 * last one applied for the instance is not applied again.  Money and
 * counters are answered as strings: exact beyond 2^53.
 */


/*
 * A strict admission: every item is checked, then, if none refuses,
 * every one is taken, atomically.  Items:
 *
 *   R KEY RPM TPM NREQ NTOK                  a bucket pair
 *   A KEY PERIOD BUDGET ESTIMATE DAY MONTH   an account: its period's
 *                                            spend must be below BUDGET;
 *                                            ESTIMATE is then added
 *
 * It answers {1, NOW_MS, per item: R: levels; A: period spend, day,
 * month, total} or, refused, {0, INDEX, R: levels, what refused (1
 * requests, 2 tokens), wait ms; A: period spend, day, month, total}.
 */


/*
 * A slice (sync/lease.lua, ngx_ai_gateway_lease.c): ARGV[1] the prefix,
 * ARGV[2] the zone instance, then ID RPM TPM WREQ WTOK MREQ MTOK UREQ
 * UTOK: the bucket pair, the slice wanted, the least worth granting
 * (else nothing), what was used here before (added to the levels first).
 * It grants at most what is left divided by the hosts that asked for a
 * slice of the zone within 10 s, adds the grant to the levels, and
 * answers {GREQ, GTOK, LREQ, LTOK, HOSTS, NOW_MS}.
 */


static ngx_str_t  ngx_http_ai_sync_states[] = {
    ngx_string("connecting"),
    ngx_string("ok"),
    ngx_string("down")
};


static ngx_str_t  ngx_http_ai_sync_modes[] = {
    ngx_string("async"),
    ngx_string("lease"),
    ngx_string("strict")
};


/* ---- configuration ---- */

/*
 * One parameter of ai_rate_zone or ai_cost_zone, if it is a sync option:
 * sync=URL, sync_interval=TIME, sync_timeout=TIME, password=SECRET,
 * sync_mode=async|lease|strict, sync_fallback=share|full, strict (as
 * sync_mode=strict).  NGX_DECLINED: not one.
 */

ngx_int_t
ngx_http_ai_sync_option(ngx_conf_t *cf, void **opts, ngx_str_t *value)
{
    ngx_int_t                   n;
    ngx_str_t                   s;
    ngx_http_ai_sync_opts_t    *o;
    ngx_http_ai_secret_opts_t   secret;

    if (ngx_strncmp(value->data, "sync=", 5) != 0
        && ngx_strncmp(value->data, "sync_interval=", 14) != 0
        && ngx_strncmp(value->data, "sync_timeout=", 13) != 0
        && ngx_strncmp(value->data, "password=", 9) != 0
        && ngx_strncmp(value->data, "sync_mode=", 10) != 0
        && ngx_strncmp(value->data, "sync_fallback=", 14) != 0
        && !(value->len == 6 && ngx_strncmp(value->data, "strict", 6) == 0))
    {
        return NGX_DECLINED;
    }

    o = *opts;

    if (o == NULL) {
        o = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_sync_opts_t));
        if (o == NULL) {
            return NGX_ERROR;
        }

        o->interval = NGX_CONF_UNSET_MSEC;
        o->timeout = NGX_CONF_UNSET_MSEC;
        o->mode = -1;
        o->first = *value;

        *opts = o;
    }

    if (ngx_strncmp(value->data, "sync=", 5) == 0) {
        o->url.data = value->data + 5;
        o->url.len = value->len - 5;

        if (o->url.len == 0) {
            goto invalid;
        }

        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "sync_interval=", 14) == 0
        || ngx_strncmp(value->data, "sync_timeout=", 13) == 0)
    {
        s.data = (u_char *) ngx_strlchr(value->data,
                                        value->data + value->len, '=') + 1;
        s.len = value->data + value->len - s.data;

        n = ngx_parse_time(&s, 0);

        if (value->data[5] == 'i') {
            if (n == NGX_ERROR || n < 10 || n > 3600000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": expected a time from "
                                   "10ms to 1h", value);
                return NGX_ERROR;
            }

            o->interval = (ngx_msec_t) n;

        } else {
            if (n == NGX_ERROR || n < 1 || n > 60000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": expected a time from "
                                   "1ms to 60s", value);
                return NGX_ERROR;
            }

            o->timeout = (ngx_msec_t) n;
        }

        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "password=", 9) == 0) {
        s.data = value->data + 9;
        s.len = value->len - 9;

        if (s.len == 0) {
            goto invalid;
        }

        secret.file = "";
        secret.max = 1023;
        secret.unset = NULL;
        ngx_str_set(&secret.what, "password=");

        switch (ngx_http_ai_secret_read(cf, &s, &secret, &o->password)) {

        case NGX_OK:
            return NGX_OK;

        case NGX_DECLINED:
            o->password = s;
            return NGX_OK;

        default:
            return NGX_ERROR;
        }
    }

    if (ngx_strncmp(value->data, "sync_mode=", 10) == 0) {
        for (n = 0; n < 3; n++) {
            if (value->len - 10 == ngx_http_ai_sync_modes[n].len
                && ngx_strncmp(value->data + 10,
                               ngx_http_ai_sync_modes[n].data,
                               value->len - 10) == 0)
            {
                break;
            }
        }

        if (n == 3 || (o->mode != -1 && o->mode != n)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": expected one mode of "
                               "async, lease or strict", value);
            return NGX_ERROR;
        }

        o->mode = n;

        return NGX_OK;
    }

    if (ngx_strncmp(value->data, "sync_fallback=", 14) == 0) {
        s.data = value->data + 14;
        s.len = value->len - 14;

        if (s.len == 5 && ngx_strncmp(s.data, "share", 5) == 0) {
            o->fallback = NGX_HTTP_AI_SYNC_FALLBACK_SHARE;

        } else if (s.len == 4 && ngx_strncmp(s.data, "full", 4) == 0) {
            o->fallback = NGX_HTTP_AI_SYNC_FALLBACK_FULL;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": expected share or full",
                               value);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (o->mode != -1 && o->mode != NGX_HTTP_AI_SYNC_MODE_STRICT) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"strict\" with another sync_mode=");
        return NGX_ERROR;
    }

    o->mode = NGX_HTTP_AI_SYNC_MODE_STRICT;

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"%V\"", value);

    return NGX_ERROR;
}


/* a zone's sync, on the Redis server of its URL (shared with others) */

ngx_http_ai_sync_zone_t *
ngx_http_ai_sync_zone(ngx_conf_t *cf, void *opts,
    ngx_http_ai_sync_source_t *source, void *zone, ngx_str_t *name)
{
    ngx_http_ai_sync_opts_t *o = opts;

    u_char                          *p;
    ngx_uint_t                       i;
    ngx_http_ai_sync_t              *s, **ps;
    ngx_http_ai_sync_zone_t         *sz, **psz;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    if (o->url.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs sync=redis://HOST:PORT", &o->first);
        return NULL;
    }

    if (o->mode == NGX_HTTP_AI_SYNC_MODE_LEASE && source->lease == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": no sync_mode=lease here", name);
        return NULL;
    }

    s = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_sync_t));
    if (s == NULL) {
        return NULL;
    }

    if (ngx_http_ai_redis_parse_url(cf, &s->redis, &o->url) != NGX_OK) {
        return NULL;
    }

    if (o->password.len) {
        if (s->redis.password.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the password of \"%V\" is given twice: in "
                               "the URL and by password=", name);
            return NULL;
        }

        s->redis.password = o->password;
    }

    if (s->redis.user.len && s->redis.password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "sync= of \"%V\" names a Redis user without a "
                           "password", name);
        return NULL;
    }

    /* zones on the same server (and credentials) share its connection */

    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_ai_gateway_limits_module);

    if (lmcf->syncs == NULL) {
        lmcf->syncs = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_ai_sync_t *));
        if (lmcf->syncs == NULL) {
            return NULL;
        }
    }

    ps = lmcf->syncs->elts;

    for (i = 0; i < lmcf->syncs->nelts; i++) {
        if (ngx_http_ai_redis_same(&ps[i]->redis, &s->redis)) {
            s = ps[i];
            break;
        }
    }

    if (i == lmcf->syncs->nelts) {
        if (ngx_array_init(&s->zones, cf->pool, 2,
                           sizeof(ngx_http_ai_sync_zone_t *))
            != NGX_OK)
        {
            return NULL;
        }

        ps = ngx_array_push(lmcf->syncs);
        if (ps == NULL) {
            return NULL;
        }

        *ps = s;

        ngx_str_set(&s->scripts[NGX_HTTP_AI_SYNC_BATCH_LUA].text,
                    ngx_http_ai_sync_batch_lua);
        ngx_str_set(&s->scripts[NGX_HTTP_AI_SYNC_STRICT_LUA].text,
                    ngx_http_ai_sync_strict_lua);
        ngx_str_set(&s->scripts[NGX_HTTP_AI_SYNC_LEASE_LUA].text,
                    ngx_http_ai_sync_lease_lua);
        ngx_str_set(&s->scripts[NGX_HTTP_AI_SYNC_BUDGET_LUA].text,
                    ngx_http_ai_sync_budget_lua);

        s->redis.scripts = s->scripts;
        s->redis.nscripts = 4;
        s->redis.ready = ngx_http_ai_sync_ready;
        s->redis.down = ngx_http_ai_sync_down;
        s->redis.quit = ngx_http_ai_sync_final;
        s->redis.data = s;
    }

    sz = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_sync_zone_t));
    if (sz == NULL) {
        return NULL;
    }

    sz->sync = s;
    sz->source = source;
    sz->zone = zone;
    sz->name = *name;
    sz->interval = o->interval == NGX_CONF_UNSET_MSEC ? 1000 : o->interval;
    sz->timeout = o->timeout == NGX_CONF_UNSET_MSEC ? 200 : o->timeout;
    sz->mode = (o->mode != -1) ? (ngx_uint_t) o->mode
               : (source->lease && !source->usd)
                 ? NGX_HTTP_AI_SYNC_MODE_LEASE : NGX_HTTP_AI_SYNC_MODE_ASYNC;
    sz->strict = (sz->mode == NGX_HTTP_AI_SYNC_MODE_STRICT);
    sz->fallback = o->fallback;

    sz->prefix.len = sizeof(NGX_HTTP_AI_SYNC_PREFIX) - 1 + name->len + 1;
    sz->prefix.data = ngx_pnalloc(cf->pool, sz->prefix.len);
    if (sz->prefix.data == NULL) {
        return NULL;
    }

    p = ngx_cpymem(sz->prefix.data, NGX_HTTP_AI_SYNC_PREFIX,
                   sizeof(NGX_HTTP_AI_SYNC_PREFIX) - 1);
    p = ngx_cpymem(p, name->data, name->len);
    *p = ':';

    s->redis.timeout = ngx_max(s->redis.timeout, ngx_max(sz->timeout, 1000));
    s->strict |= sz->strict;

    psz = ngx_array_push(&s->zones);
    if (psz == NULL) {
        return NULL;
    }

    *psz = sz;

    return sz;
}


/* a new zone memory: an instance number of its own, for batch numbers */

void
ngx_http_ai_sync_init_zone(ngx_http_ai_sync_sh_t *sh)
{
    uint64_t  r;
    u_char    raw[NGX_HTTP_AI_SYNC_INSTANCE_LEN / 2];

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        r = ((uint64_t) ngx_random() << 32) ^ (uint64_t) ngx_random()
            ^ ((uint64_t) ngx_pid << 40) ^ (uint64_t) ngx_time()
            ^ ngx_current_msec;

        ngx_memcpy(raw, &r, sizeof(raw));
    }

    (void) ngx_hex_dump(sh->instance, raw, sizeof(raw));

    sh->state = NGX_HTTP_AI_SYNC_CONNECTING;
    sh->since = ngx_time();
}


/* ---- the process ---- */

/* worker 0 syncs (the state files' writer too) */

static ngx_uint_t
ngx_http_ai_sync_is_syncer(void)
{
    return (ngx_process == NGX_PROCESS_WORKER && ngx_worker == 0)
           || ngx_process == NGX_PROCESS_SINGLE;
}


ngx_int_t
ngx_http_ai_sync_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i, j, syncer;
    ngx_http_ai_sync_t             **ps, *s;
    ngx_http_ai_sync_zone_t        **psz, *sz;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_ai_gateway_limits_module);

    if (lmcf == NULL || lmcf->syncs == NULL
        || ngx_process == NGX_PROCESS_HELPER)
    {
        /* not the cache manager nor the cache loader */
        return NGX_OK;
    }

    if (ngx_http_ai_redis_init() != NGX_OK) {
        return NGX_ERROR;
    }

    syncer = ngx_http_ai_sync_is_syncer();

    ps = lmcf->syncs->elts;

    for (i = 0; i < lmcf->syncs->nelts; i++) {
        s = ps[i];

        psz = s->zones.elts;

        for (j = 0; j < s->zones.nelts; j++) {
            sz = psz[j];

            if (!syncer) {
                continue;
            }

            sz->syncer = 1;
            sz->tick.handler = ngx_http_ai_sync_tick;
            sz->tick.data = sz;
            sz->tick.log = cycle->log;
            sz->tick.cancelable = 1;

            s->redis.primary = 1;

            ngx_add_timer(&sz->tick, ngx_min(sz->interval, 100));
        }

        /* one connection per worker: admissions ask Redis from any */

        ngx_http_ai_redis_start(&s->redis, cycle->log);
    }

    return NGX_OK;
}


void
ngx_http_ai_sync_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i, j;
    ngx_http_ai_sync_t             **ps, *s;
    ngx_http_ai_sync_zone_t        **psz;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_ai_gateway_limits_module);

    if (lmcf == NULL || lmcf->syncs == NULL) {
        return;
    }

    ps = lmcf->syncs->elts;

    for (i = 0; i < lmcf->syncs->nelts; i++) {
        s = ps[i];

        if (!s->redis.started) {
            continue;
        }

        psz = s->zones.elts;

        for (j = 0; j < s->zones.nelts; j++) {
            psz[j]->final = 1;
            psz[j]->stopped = 1;

            if (psz[j]->tick.timer_set) {
                ngx_del_timer(&psz[j]->tick);
            }
        }

        /* what is out is not lost: its batch is still frozen */

        ngx_http_ai_redis_stop(&s->redis);
    }
}


/* ---- batches ---- */

/*
 * Every sync_interval: a batch of the zone's deltas, and the fleet's
 * figures of what was used in the last minute.  An exiting worker pushes
 * what it has, then stops (the worker waits for this timer).
 */

static void
ngx_http_ai_sync_tick(ngx_event_t *ev)
{
    ngx_uint_t                refresh;
    ngx_http_ai_sync_t       *s;
    ngx_http_ai_sync_zone_t  *sz;

    sz = ev->data;
    s = sz->sync;

    if (sz->stopped) {
        return;
    }

    if (sz->busy) {
        /* while exiting, this timer keeps the worker for the answer */
        ngx_add_timer(&sz->tick, sz->final ? 100 : sz->interval);
        return;
    }

    if (s->redis.state != NGX_HTTP_AI_REDIS_READY) {
        if (sz->final) {
            sz->stopped = 1;
            return;
        }

        ngx_add_timer(&sz->tick, sz->interval);
        return;
    }

    refresh = !sz->more && !sz->final;
    sz->more = 0;

    ngx_http_ai_sync_push(sz, refresh);
}


/*
 * The worker quits: one last push of each zone it syncs, the worker
 * waiting for it (the timer is no longer cancelable) at most as long as
 * a batch's answer may take.
 */

static void
ngx_http_ai_sync_final(ngx_http_ai_redis_t *rd)
{
    ngx_http_ai_sync_t *s = rd->data;

    ngx_uint_t                 i;
    ngx_http_ai_sync_zone_t  **psz, *sz;

    psz = s->zones.elts;

    for (i = 0; i < s->zones.nelts; i++) {
        sz = psz[i];

        if (!sz->syncer || sz->stopped || sz->final) {
            continue;
        }

        sz->final = 1;

        if (sz->tick.timer_set) {
            ngx_del_timer(&sz->tick);
        }

        sz->tick.cancelable = 0;

        ngx_add_timer(&sz->tick, sz->busy ? 100 : 1);
    }
}


static void
ngx_http_ai_sync_push(ngx_http_ai_sync_zone_t *sz, ngx_uint_t refresh)
{
    ngx_int_t                  rc;
    ngx_pool_t                *pool;
    ngx_array_t               *args;
    ngx_http_ai_sync_t        *s;
    ngx_http_ai_sync_batch_t  *b;

    s = sz->sync;

    pool = ngx_create_pool(16384, &s->redis.log);
    if (pool == NULL) {
        ngx_http_ai_sync_next(sz, 1);
        return;
    }

    b = ngx_pcalloc(pool, sizeof(ngx_http_ai_sync_batch_t));
    if (b == NULL
        || ngx_array_init(&b->items, pool, 64,
                          sizeof(ngx_http_ai_sync_item_t))
           != NGX_OK)
    {
        goto failed;
    }

    b->pool = pool;
    b->final = sz->final;

    rc = sz->source->batch(sz->zone, b, refresh, NGX_HTTP_AI_SYNC_BATCH_MAX);

    if (rc == NGX_DECLINED) {
        ngx_destroy_pool(pool);
        ngx_http_ai_sync_next(sz, 1);
        return;
    }

    if (rc != NGX_OK) {
        goto failed;
    }

    args = ngx_array_create(pool, 16 + 13 * b->items.nelts,
                            sizeof(ngx_str_t));
    if (args == NULL
        || ngx_http_ai_redis_arg(args, (u_char *) "EVALSHA", 7) != NGX_OK
        || ngx_http_ai_redis_arg(args,
                                 s->scripts[NGX_HTTP_AI_SYNC_BATCH_LUA].sha, 40)
           != NGX_OK
        || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
        || ngx_http_ai_sync_batch_args(sz, b, args) != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_ai_redis_command(&s->redis, args,
                                  ngx_http_ai_sync_batch_answer, sz,
                                  ngx_max(sz->timeout, 1000))
        != NGX_OK)
    {
        goto failed;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, &s->redis.log, 0,
                   "ai sync: zone \"%V\" batch %uL, %ui items, more %d",
                   &sz->name, b->seq, b->items.nelts, (int) b->more);

    sz->batch = b;
    sz->busy = 1;

    ngx_http_ai_redis_send(&s->redis);

    return;

failed:

    ngx_log_error(NGX_LOG_ALERT, &s->redis.log, 0,
                  "ai sync: zone \"%V\": no memory for a batch", &sz->name);

    ngx_destroy_pool(pool);
    ngx_http_ai_sync_next(sz, 1);
}


/* after a batch (or none): at once when there is more, else later */

static void
ngx_http_ai_sync_next(ngx_http_ai_sync_zone_t *sz, ngx_uint_t done)
{
    sz->busy = 0;

    if (sz->stopped || sz->sync->redis.exiting) {
        return;
    }

    if (sz->tick.timer_set) {
        ngx_del_timer(&sz->tick);
    }

    if (!done && sz->sync->redis.state == NGX_HTTP_AI_REDIS_READY) {
        sz->more = 1;
        ngx_add_timer(&sz->tick, 1);
        return;
    }

    if (sz->final) {
        sz->stopped = 1;
        return;
    }

    ngx_add_timer(&sz->tick, sz->interval);
}


static ngx_int_t
ngx_http_ai_sync_batch_args(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_batch_t *b, ngx_array_t *args)
{
    ngx_uint_t                i, j;
    ngx_http_ai_sync_item_t  *item;

    if (ngx_http_ai_redis_arg(args, sz->prefix.data, sz->prefix.len)
        != NGX_OK
        || ngx_http_ai_redis_arg(args, b->instance,
                                 NGX_HTTP_AI_SYNC_INSTANCE_LEN)
           != NGX_OK
        || ngx_http_ai_redis_arg_int(args, (int64_t) b->seq) != NGX_OK)
    {
        return NGX_ERROR;
    }

    item = b->items.elts;

    for (i = 0; i < b->items.nelts; i++) {

        switch (item[i].type) {

        case NGX_HTTP_AI_SYNC_RATE:
            if (ngx_http_ai_redis_arg(args, (u_char *) "R", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, NULL, NULL, item[i].id,
                                            item[i].len)
                   != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].a[0]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].a[1]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].d[0]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].d[1]) != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;

        case NGX_HTTP_AI_SYNC_LEDGER:
            if (ngx_http_ai_redis_arg(args, (u_char *) "L", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, NULL, NULL, item[i].id,
                                            item[i].len)
                   != NGX_OK
                || ngx_http_ai_redis_arg(args, item[i].key.data,
                                         item[i].key.len)
                   != NGX_OK
                || ngx_http_ai_redis_arg(args, item[i].route.data,
                                         item[i].route.len)
                   != NGX_OK
                || ngx_http_ai_redis_arg(args, item[i].model.data,
                                         item[i].model.len)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            for (j = 0; j < 8; j++) {
                if (ngx_http_ai_redis_arg_int(args, item[i].d[j]) != NGX_OK) {
                    return NGX_ERROR;
                }
            }

            break;

        case NGX_HTTP_AI_SYNC_ACCOUNT:
            if (ngx_http_ai_redis_arg(args, (u_char *) "A", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, NULL, NULL, item[i].id,
                                            item[i].len)
                   != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].a[0]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].a[1]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].d[0]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].d[1]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].d[2]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].a[2]) != NGX_OK
                || ngx_http_ai_redis_arg_int(args, item[i].a[3]) != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;

        default: /* NGX_HTTP_AI_SYNC_TOTALS */
            if (ngx_http_ai_redis_arg(args, (u_char *) "T", 1) != NGX_OK) {
                return NGX_ERROR;
            }

            for (j = 0; j < 8; j++) {
                if (ngx_http_ai_redis_arg_int(args, item[i].d[j]) != NGX_OK) {
                    return NGX_ERROR;
                }
            }

            break;
        }
    }

    return NGX_OK;
}


/* a batch's answer (NULL: none): acknowledged, or kept to be sent again */

static void
ngx_http_ai_sync_batch_answer(ngx_http_ai_redis_t *rd, redisReply *reply,
    void *data)
{
    ngx_http_ai_sync_zone_t *sz = data;

    size_t                     len;
    ngx_uint_t                 ok;
    ngx_slab_pool_t           *shpool;
    ngx_http_ai_sync_t        *s;
    ngx_http_ai_sync_sh_t     *sy;
    ngx_http_ai_sync_batch_t  *b;

    s = sz->sync;
    b = sz->batch;
    sz->batch = NULL;

    if (b == NULL) {
        ngx_http_ai_sync_next(sz, 1);
        return;
    }

    ok = (reply && ngx_http_ai_sync_batch_results(b, reply) == NGX_OK);

    if (ok) {
        s->redis.backoff = NGX_HTTP_AI_REDIS_BACKOFF_MIN;

        sz->source->ack(sz->zone, b);

    } else if (reply) {
        if (reply->type == REDIS_REPLY_ERROR) {
            len = ngx_min(reply->len, sizeof(s->redis.error));
            ngx_memcpy(s->redis.error, reply->str, len);
            s->redis.error_len = len;

        } else {
            s->redis.error_len = ngx_sprintf(s->redis.error, "an invalid "
                                             "answer to a batch")
                                 - s->redis.error;
        }

        if (ngx_time() - s->redis.logged >= NGX_HTTP_AI_REDIS_LOG_EVERY) {
            ngx_log_error(NGX_LOG_ERR, &s->redis.log, 0,
                          "ai sync: zone \"%V\": %V did not apply a batch: "
                          "%*s; it is kept and sent again", &sz->name,
                          &s->redis.name, s->redis.error_len, s->redis.error);
            s->redis.logged = ngx_time();
        }
    }

    sy = s->redis.exiting ? NULL : ngx_http_ai_sync_sh(sz, &shpool);

    if (sy) {
        ngx_shmtx_lock(&shpool->mutex);

        if (ok) {
            sy->batches++;
            sy->last_ok = ngx_time();

            if (sy->state != NGX_HTTP_AI_SYNC_OK) {
                sy->state = NGX_HTTP_AI_SYNC_OK;
                sy->since = ngx_time();
            }

        } else {
            sy->failures++;

            len = ngx_min(s->redis.error_len, sizeof(sy->error));
            ngx_memcpy(sy->error, s->redis.error, len);
            sy->error_len = len;
        }

        ngx_shmtx_unlock(&shpool->mutex);
    }

    ngx_http_ai_sync_next(sz, !(ok && b->more));

    ngx_destroy_pool(b->pool);
}


/* the answers of a batch's items, checked, into the items */

static ngx_int_t
ngx_http_ai_sync_batch_results(ngx_http_ai_sync_batch_t *b,
    redisReply *reply)
{
    size_t                    k, n;
    ngx_uint_t                i, j;
    ngx_http_ai_sync_item_t  *item;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        return NGX_ERROR;
    }

    item = b->items.elts;

    n = 2;

    for (i = 0; i < b->items.nelts; i++) {
        n += item[i].type == NGX_HTTP_AI_SYNC_RATE ? 2
             : item[i].type == NGX_HTTP_AI_SYNC_ACCOUNT ? 3
             : item[i].type == NGX_HTTP_AI_SYNC_TOTALS ? 8
             : 0;
    }

    if (reply->elements != n) {
        return NGX_ERROR;
    }

    k = 2;

    for (i = 0; i < b->items.nelts; i++) {

        switch (item[i].type) {

        case NGX_HTTP_AI_SYNC_RATE:
            if (ngx_http_ai_redis_number(reply->element[k], &item[i].res[0])
                != NGX_OK
                || ngx_http_ai_redis_number(reply->element[k + 1],
                                            &item[i].res[1])
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            k += 2;
            break;

        case NGX_HTTP_AI_SYNC_ACCOUNT:
            /* as a strict answer has them: day, month, total */

            for (j = 0; j < 3; j++) {
                if (ngx_http_ai_redis_number(reply->element[k + j],
                                             &item[i].res[j + 1])
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }

            k += 3;
            break;

        case NGX_HTTP_AI_SYNC_TOTALS:
            for (j = 0; j < 8; j++) {
                if (ngx_http_ai_redis_number(reply->element[k + j],
                                             &item[i].res[j])
                    != NGX_OK
                    || item[i].res[j] < 0)
                {
                    return NGX_ERROR;
                }
            }

            k += 8;
            break;

        default:
            break;
        }
    }

    return NGX_OK;
}


/* ---- pulls ---- */

/*
 * A node's fleet figures are stale when it has not been pulled (by a
 * batch, or alone) for two intervals: the syncing worker refreshes only
 * the nodes used since their last pull, and one used here after a pause
 * is pulled at once.
 */

ngx_uint_t
ngx_http_ai_sync_stale(ngx_http_ai_sync_zone_t *sz, ngx_msec_t now,
    ngx_msec_t synced)
{
    return synced == 0
           || (ngx_msec_int_t) (now - synced) > (ngx_msec_int_t)
                                                (2 * sz->interval);
}


/*
 * A node this host had not seen, or not for a while: its fleet figures
 * are asked for at once (the batch script, applying nothing), not to
 * wait for the next sync.  Nothing waits for the answer.
 */

void
ngx_http_ai_sync_pull(ngx_http_ai_sync_zone_t *sz, ngx_uint_t type,
    uint32_t hash, u_char *id, size_t len, uint64_t a0, uint64_t a1)
{
    ngx_pool_t               *pool;
    ngx_array_t              *args;
    ngx_http_ai_sync_t       *s;
    ngx_http_ai_sync_item_t  *item;

    s = sz->sync;

    if (s->redis.state != NGX_HTTP_AI_REDIS_READY) {
        return;
    }

    item = ngx_alloc(sizeof(ngx_http_ai_sync_item_t) + len, &s->redis.log);
    if (item == NULL) {
        return;
    }

    ngx_memzero(item, sizeof(ngx_http_ai_sync_item_t));

    item->type = type;
    item->hash = hash;
    item->id = (u_char *) (item + 1);
    item->len = len;
    item->sync = sz;
    item->a[2] = a0;
    item->a[3] = a1;

    ngx_memcpy(item->id, id, len);

    pool = ngx_create_pool(1024, &s->redis.log);
    if (pool == NULL) {
        ngx_free(item);
        return;
    }

    args = ngx_array_create(pool, 16, sizeof(ngx_str_t));

    if (args == NULL
        || ngx_http_ai_redis_arg(args, (u_char *) "EVALSHA", 7) != NGX_OK
        || ngx_http_ai_redis_arg(args,
                                 s->scripts[NGX_HTTP_AI_SYNC_BATCH_LUA].sha, 40)
           != NGX_OK
        || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
        || ngx_http_ai_redis_arg(args, sz->prefix.data, sz->prefix.len)
           != NGX_OK
        || ngx_http_ai_redis_arg(args, (u_char *) "-", 1) != NGX_OK
        || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
        || ngx_http_ai_redis_arg(args, (u_char *) (type
                                          == NGX_HTTP_AI_SYNC_RATE
                                          ? "R" : "A"), 1)
           != NGX_OK
        || ngx_http_ai_sync_arg_key(args, NULL, NULL, item->id, len)
           != NGX_OK)
    {
        goto failed;
    }

    if (type == NGX_HTTP_AI_SYNC_RATE) {
        /* R ID RPM TPM 0 0 */

        if (ngx_http_ai_redis_arg_int(args, a0) != NGX_OK
            || ngx_http_ai_redis_arg_int(args, a1) != NGX_OK
            || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK)
        {
            goto failed;
        }

    } else {
        /* A ID 0 0 0 0 0 RDAY RMONTH */

        if (ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_redis_arg_int(args, a0) != NGX_OK
            || ngx_http_ai_redis_arg_int(args, a1) != NGX_OK)
        {
            goto failed;
        }
    }

    if (ngx_http_ai_redis_command(&s->redis, args,
                                  ngx_http_ai_sync_pull_answer, item,
                                  sz->timeout)
        != NGX_OK)
    {
        goto failed;
    }

    ngx_destroy_pool(pool);

    ngx_http_ai_redis_send(&s->redis);

    return;

failed:

    ngx_destroy_pool(pool);
    ngx_free(item);
}


static void
ngx_http_ai_sync_pull_answer(ngx_http_ai_redis_t *rd, redisReply *reply,
    void *data)
{
    ngx_http_ai_sync_item_t *item = data;

    size_t      n;
    ngx_uint_t  j;

    /* {0, NOW, R: two levels | A: day, month, total} */

    n = (item->type == NGX_HTTP_AI_SYNC_RATE) ? 2 : 3;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2 + n)
    {
        goto done;
    }

    for (j = 0; j < n; j++) {
        if (ngx_http_ai_redis_number(reply->element[2 + j],
                                     &item->res[item->type
                                               == NGX_HTTP_AI_SYNC_RATE
                                               ? j : j + 1])
            != NGX_OK)
        {
            goto done;
        }
    }

    item->sync->sync->redis.backoff = NGX_HTTP_AI_REDIS_BACKOFF_MIN;

    item->sync->source->pull(item->sync->zone, item);

done:

    ngx_free(item);
}


/* ---- what the leases (ngx_ai_gateway_lease.c) ask ---- */

ngx_uint_t
ngx_http_ai_sync_mode(ngx_http_ai_sync_zone_t *sz, ngx_uint_t *fallback)
{
    if (fallback) {
        *fallback = sz->fallback;
    }

    return sz->mode;
}


ngx_uint_t
ngx_http_ai_sync_up(ngx_http_ai_sync_zone_t *sz)
{
    return sz->sync->redis.state == NGX_HTTP_AI_REDIS_READY;
}


ngx_msec_t
ngx_http_ai_sync_interval(ngx_http_ai_sync_zone_t *sz)
{
    return sz->interval;
}


/* EVALSHA LEASE|BUDGET 0 PREFIX: a slice's call starts; NULL: no Redis */

ngx_array_t *
ngx_http_ai_sync_lease_args(ngx_http_ai_sync_zone_t *sz, ngx_pool_t *pool)
{
    ngx_array_t         *args;
    ngx_http_ai_sync_t  *s;

    s = sz->sync;

    if (s->redis.state != NGX_HTTP_AI_REDIS_READY) {
        return NULL;
    }

    args = ngx_array_create(pool, 16, sizeof(ngx_str_t));

    if (args == NULL
        || ngx_http_ai_redis_arg(args, (u_char *) "EVALSHA", 7) != NGX_OK
        || ngx_http_ai_redis_arg(args, s->scripts[sz->source->usd
                                              ? NGX_HTTP_AI_SYNC_BUDGET_LUA
                                              : NGX_HTTP_AI_SYNC_LEASE_LUA].sha,
                                 40)
           != NGX_OK
        || ngx_http_ai_redis_arg(args, (u_char *) "0", 1) != NGX_OK
        || ngx_http_ai_redis_arg(args, sz->prefix.data, sz->prefix.len)
           != NGX_OK)
    {
        return NULL;
    }

    return args;
}


/* a slice's call sent; its answer (or none) goes to handler */

ngx_int_t
ngx_http_ai_sync_lease_send(ngx_http_ai_sync_zone_t *sz, ngx_array_t *args,
    ngx_http_ai_redis_handler_pt handler, void *data)
{
    if (ngx_http_ai_redis_command(&sz->sync->redis, args, handler, data,
                                  sz->timeout)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_ai_redis_send(&sz->sync->redis);

    return NGX_OK;
}


/* a slice answered, or not (item->status): to its zone */

void
ngx_http_ai_sync_lease_done(ngx_http_ai_sync_item_t *item)
{
    item->sync->source->lease(item->sync->zone, item);
}


/* [PREFIX KIND] and the hex of the SHA-256 of an identity (16 bytes) */

ngx_int_t
ngx_http_ai_sync_arg_key(ngx_array_t *args, ngx_str_t *prefix,
    const char *kind, u_char *id, size_t len)
{
    u_char  *p, *start;
    size_t   size;
    u_char   digest[NGX_HTTP_AI_DIGEST_LEN];

    if (ngx_http_ai_sha256(id, len, digest) != NGX_OK) {
        return NGX_ERROR;
    }

    size = NGX_HTTP_AI_SYNC_ID_HEX;

    if (prefix) {
        size += prefix->len + ngx_strlen(kind);
    }

    start = ngx_pnalloc(args->pool, size);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;

    if (prefix) {
        p = ngx_cpymem(p, prefix->data, prefix->len);
        p = ngx_cpymem(p, kind, ngx_strlen(kind));
    }

    p = ngx_hex_dump(p, digest, NGX_HTTP_AI_SYNC_ID_HEX / 2);

    return ngx_http_ai_redis_arg(args, start, p - start);
}


/* the zone's sync state and slab pool, NULL before its memory exists */

ngx_http_ai_sync_sh_t *
ngx_http_ai_sync_sh(ngx_http_ai_sync_zone_t *sz, ngx_slab_pool_t **shpool)
{
    return sz->source->sh(sz->zone, shpool);
}


/* the state the status shows, for the zones this worker syncs */

static void
ngx_http_ai_sync_set_state(ngx_http_ai_sync_t *s, ngx_uint_t state)
{
    size_t                     len;
    ngx_uint_t                 i;
    ngx_slab_pool_t           *shpool;
    ngx_http_ai_sync_sh_t     *sy;
    ngx_http_ai_sync_zone_t  **psz;

    psz = s->zones.elts;

    for (i = 0; i < s->zones.nelts; i++) {
        if (!psz[i]->syncer) {
            continue;
        }

        sy = ngx_http_ai_sync_sh(psz[i], &shpool);

        if (sy == NULL) {
            continue;
        }

        ngx_shmtx_lock(&shpool->mutex);

        if (sy->state != state) {
            sy->state = state;
            sy->since = ngx_time();
        }

        if (state == NGX_HTTP_AI_SYNC_DOWN) {
            len = ngx_min(s->redis.error_len, sizeof(sy->error));
            ngx_memcpy(sy->error, s->redis.error, len);
            sy->error_len = len;
        }

        ngx_shmtx_unlock(&shpool->mutex);
    }
}


/* the connection is ready: the status says so, and what piled up goes */

static void
ngx_http_ai_sync_ready(ngx_http_ai_redis_t *rd)
{
    ngx_http_ai_sync_t *s = rd->data;

    ngx_uint_t                 i;
    ngx_http_ai_sync_zone_t  **psz, *sz;

    ngx_http_ai_sync_set_state(s, NGX_HTTP_AI_SYNC_OK);

    /* push at once what piled up */

    psz = s->zones.elts;

    for (i = 0; i < s->zones.nelts; i++) {
        sz = psz[i];

        if (sz->syncer && !sz->busy && !sz->stopped) {
            if (sz->tick.timer_set) {
                ngx_del_timer(&sz->tick);
            }

            ngx_add_timer(&sz->tick, 1);
        }
    }
}


/* the connection failed: the status says why */

static void
ngx_http_ai_sync_down(ngx_http_ai_redis_t *rd)
{
    ngx_http_ai_sync_set_state(rd->data, NGX_HTTP_AI_SYNC_DOWN);
}


/* ---- status ---- */

/*
 * The status "sync" array: [{"zone","type":"rate"|"cost",
 * "redis":"redis://HOST:PORT/DB","state":"ok"|"connecting"|"down",
 * "since":UNIX,"strict":BOOL,"interval_ms":N,"timeout_ms":N,
 * "last_sync":UNIX|null,"batches":N,"failures":N,"unsynced":N,"lost":N,
 * "strict_admissions":N,"strict_local":N,"last_error":STRING|null
 * [,"fleet_totals":{...}]}]
 */

void
ngx_http_ai_sync_json(ngx_http_ai_limits_main_conf_t *lmcf, ngx_ai_jw_t *w)
{
    ngx_uint_t                 i, j, unsynced, known;
    ngx_slab_pool_t           *shpool;
    ngx_http_ai_sync_t       **ps;
    ngx_http_ai_sync_sh_t     *sy, st;
    ngx_http_ai_sync_zone_t  **psz, *sz;
    ngx_http_ai_counters_t     global;

    ngx_ai_jw_array(w);

    ps = lmcf->syncs ? lmcf->syncs->elts : NULL;

    for (i = 0; lmcf->syncs && i < lmcf->syncs->nelts; i++) {
        psz = ps[i]->zones.elts;

        for (j = 0; j < ps[i]->zones.nelts; j++) {
            sz = psz[j];

            sy = ngx_http_ai_sync_sh(sz, &shpool);
            if (sy == NULL) {
                continue;
            }

            /* what is not pushed yet: nodes with deltas, and the totals */

            known = 0;
            ngx_memzero(&global, sizeof(ngx_http_ai_counters_t));

            ngx_shmtx_lock(&shpool->mutex);

            st = *sy;
            unsynced = sz->source->unsynced(sz->zone, &global, &known);

            ngx_shmtx_unlock(&shpool->mutex);

            if (st.state > NGX_HTTP_AI_SYNC_DOWN) {
                st.state = NGX_HTTP_AI_SYNC_CONNECTING;
            }

            ngx_ai_jw_object(w);
            ngx_ai_jw_key_string(w, "zone", sz->name.data, sz->name.len);
            ngx_ai_jw_key_string(w, "type", sz->source->type.data,
                                 sz->source->type.len);
            ngx_ai_jw_key_string(w, "redis", ps[i]->redis.name.data,
                                 ps[i]->redis.name.len);
            ngx_ai_jw_key_string(w, "state",
                                 ngx_http_ai_sync_states[st.state].data,
                                 ngx_http_ai_sync_states[st.state].len);
            ngx_ai_jw_key_uint(w, "since", (uint64_t) st.since);
            ngx_ai_jw_key_string(w, "mode",
                                 ngx_http_ai_sync_modes[sz->mode].data,
                                 ngx_http_ai_sync_modes[sz->mode].len);
            ngx_ai_jw_key(w, "strict");
            ngx_ai_jw_bool(w, sz->strict);
            ngx_ai_jw_key_uint(w, "interval_ms", sz->interval);
            ngx_ai_jw_key_uint(w, "timeout_ms", sz->timeout);
            ngx_ai_jw_key(w, "last_sync");

            if (st.last_ok) {
                ngx_ai_jw_uint(w, (uint64_t) st.last_ok);

            } else {
                ngx_ai_jw_null(w);
            }

            ngx_ai_jw_key_uint(w, "batches", st.batches);
            ngx_ai_jw_key_uint(w, "failures", st.failures);
            ngx_ai_jw_key_uint(w, "unsynced", unsynced);
            ngx_ai_jw_key_uint(w, "lost", st.lost);
            ngx_ai_jw_key_uint(w, "strict_admissions", st.strict);
            ngx_ai_jw_key_uint(w, "strict_local", st.strict_local);
            ngx_ai_jw_key(w, "last_error");

            if (st.error_len) {
                ngx_ai_jw_string(w, st.error,
                                 ngx_min(st.error_len, sizeof(st.error)));

            } else {
                ngx_ai_jw_null(w);
            }

            if (sz->source->json) {
                sz->source->json(sz->zone, w, &st);
            }

            if (known) {
                ngx_ai_jw_key(w, "fleet_totals");
                ngx_ai_jw_object(w);
                ngx_ai_jw_key_uint(w, "requests", global.requests);
                ngx_ai_jw_key_uint(w, "errors", global.errors);
                ngx_ai_jw_key_uint(w, "input_tokens", global.input_tokens);
                ngx_ai_jw_key_uint(w, "output_tokens", global.output_tokens);
                ngx_ai_jw_key_uint(w, "cost_nano_usd", global.cost);
                ngx_ai_jw_key_usd(w, "cost_usd", global.cost);
                ngx_ai_jw_end(w);
            }

            ngx_ai_jw_end(w);
        }
    }

    ngx_ai_jw_end(w);
}
