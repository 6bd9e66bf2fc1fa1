
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
 * The connection (one per worker and Redis server) is an nginx peer
 * connection: non-blocking connect, recv and send on nginx's events,
 * event timers for its deadlines, reconnection with a backoff.  Replies
 * are parsed by hiredis's protocol reader (Debian's libhiredis); its
 * asynchronous layer is not used, since the one Debian 12 ships (0.14)
 * aborts the process on a reply nothing asked for, and a Redis server,
 * whatever it sends, must not bring a worker down.
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
#include <hiredis/hiredis.h>
#include "ngx_ai_gateway_limits.h"


#define NGX_HTTP_AI_SYNC_PREFIX         "aigw:"
#define NGX_HTTP_AI_SYNC_BATCH_MAX      256       /* items per batch */
#define NGX_HTTP_AI_SYNC_MAX_BUFFERED   (64 * 1024 * 1024)
#define NGX_HTTP_AI_SYNC_MAX_ELEMENTS   65536
#define NGX_HTTP_AI_SYNC_BACKOFF_MIN    100
#define NGX_HTTP_AI_SYNC_BACKOFF_MAX    10000
#define NGX_HTTP_AI_SYNC_LOG_EVERY      60        /* seconds */
#define NGX_HTTP_AI_SYNC_ID_HEX         32

/* a connection's state, in each worker */
#define NGX_HTTP_AI_SYNC_CONN_DOWN       0
#define NGX_HTTP_AI_SYNC_CONN_CONNECTING 1
#define NGX_HTTP_AI_SYNC_CONN_HANDSHAKE  2
#define NGX_HTTP_AI_SYNC_CONN_READY      3

/* what a command sent was */
#define NGX_HTTP_AI_SYNC_CMD_HELLO      0         /* AUTH, SELECT */
#define NGX_HTTP_AI_SYNC_CMD_LOAD       1         /* SCRIPT LOAD */
#define NGX_HTTP_AI_SYNC_CMD_BATCH      2
#define NGX_HTTP_AI_SYNC_CMD_STRICT     3
#define NGX_HTTP_AI_SYNC_CMD_PULL       4


/* the sync options of a zone directive, while it is parsed */
typedef struct {
    ngx_str_t                       url;
    ngx_str_t                       password;
    ngx_msec_t                      interval;
    ngx_msec_t                      timeout;
    ngx_uint_t                      strict;
    ngx_str_t                       first;        /* for error messages */
} ngx_http_ai_sync_opts_t;


typedef struct ngx_http_ai_sync_cmd_s     ngx_http_ai_sync_cmd_t;
typedef struct ngx_http_ai_sync_waiter_s  ngx_http_ai_sync_waiter_t;


/* a Redis server: its configuration, and its connection in this worker */
typedef struct {
    ngx_str_t                       name;         /* redis://HOST:PORT/DB */
    ngx_addr_t                      addr;
    ngx_uint_t                      db;
    ngx_str_t                       user;
    ngx_str_t                       password;
    ngx_msec_t                      timeout;      /* connect, handshake */
    ngx_uint_t                      strict;       /* a strict zone uses it */
    ngx_array_t                     zones;        /* sync_zone_t * */

    ngx_peer_connection_t           peer;
    ngx_connection_t               *c;
    ngx_uint_t                      state;
    redisReader                    *reader;
    ngx_queue_t                     cmds;         /* sent, oldest first */
    ngx_uint_t                      hello;        /* answers awaited */
    u_char                         *out;          /* to send */
    size_t                          out_pos;
    size_t                          out_len;
    size_t                          out_size;
    ngx_event_t                     reconnect;
    ngx_msec_t                      backoff;
    time_t                          down_since;   /* 0: not down */
    time_t                          logged;       /* "unreachable" said */
    ngx_uint_t                      failures;     /* since it was said */
    ngx_log_t                       log;
    u_char                          sha_batch[40];
    u_char                          sha_strict[40];
    u_char                          error[128];
    size_t                          error_len;
    unsigned                        exiting:1;
    unsigned                        started:1;
    unsigned                        said_down:1;
    unsigned                        syncer:1;
} ngx_http_ai_sync_t;


struct ngx_http_ai_sync_zone_s {
    ngx_http_ai_sync_t             *sync;
    ngx_uint_t                      type;         /* RATE or LEDGER */
    void                           *zone;         /* rate or cost zone */
    ngx_str_t                       name;
    ngx_str_t                       prefix;       /* "aigw:NAME:" */
    ngx_msec_t                      interval;
    ngx_msec_t                      timeout;
    ngx_uint_t                      strict;

    /* in the worker that syncs */
    ngx_event_t                     tick;
    ngx_http_ai_sync_batch_t       *batch;        /* out */
    unsigned                        syncer:1;
    unsigned                        busy:1;
    unsigned                        more:1;       /* go on at once */
    unsigned                        final:1;      /* exiting */
    unsigned                        stopped:1;
};


struct ngx_http_ai_sync_cmd_s {
    ngx_queue_t                     queue;
    ngx_msec_t                      deadline;
    ngx_uint_t                      type;
    ngx_http_ai_sync_zone_t        *sz;           /* a batch's */
    ngx_http_ai_sync_waiter_t      *waiter;       /* a strict one's */
    ngx_uint_t                      first;        /* its items */
    ngx_uint_t                      n;
    u_char                         *sha;          /* SCRIPT LOAD's */
    ngx_http_ai_sync_item_t        *item;         /* a pull's */
};


/* a request waiting for its strict reservations */
struct ngx_http_ai_sync_waiter_s {
    ngx_http_ai_limits_ctx_t       *lctx;         /* NULL: request gone */
    ngx_event_t                     done;
    ngx_uint_t                      calls;        /* not answered yet */
    ngx_uint_t                      nitems;
    ngx_http_ai_sync_item_t         items[1];
};


static ngx_int_t ngx_http_ai_sync_parse_url(ngx_conf_t *cf,
    ngx_http_ai_sync_t *s, ngx_str_t *url);
static ngx_uint_t ngx_http_ai_sync_same(ngx_str_t *a, ngx_str_t *b);
static ngx_int_t ngx_http_ai_sync_unescape(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_str_t *out);
static ngx_uint_t ngx_http_ai_sync_is_syncer(void);

static void ngx_http_ai_sync_connect(ngx_http_ai_sync_t *s);
static void ngx_http_ai_sync_reconnect_handler(ngx_event_t *ev);
static void ngx_http_ai_sync_read_handler(ngx_event_t *rev);
static void ngx_http_ai_sync_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_ai_sync_connected(ngx_http_ai_sync_t *s);
static void ngx_http_ai_sync_send(ngx_http_ai_sync_t *s);
static void ngx_http_ai_sync_answer(ngx_http_ai_sync_t *s,
    redisReply *reply);
static void ngx_http_ai_sync_hello_answer(ngx_http_ai_sync_t *s,
    ngx_http_ai_sync_cmd_t *cmd, redisReply *reply);
static void ngx_http_ai_sync_ready(ngx_http_ai_sync_t *s);
static void ngx_http_ai_sync_fail(ngx_http_ai_sync_t *s, const char *fmt,
    ...);
static void ngx_http_ai_sync_close(ngx_http_ai_sync_t *s);
static void ngx_http_ai_sync_cmd_done(ngx_http_ai_sync_cmd_t *cmd,
    redisReply *reply);
static void ngx_http_ai_sync_deadline(ngx_http_ai_sync_t *s);
static ngx_int_t ngx_http_ai_sync_command(ngx_http_ai_sync_t *s,
    ngx_array_t *args, ngx_http_ai_sync_cmd_t *cmd, ngx_msec_t timeout);
static ngx_int_t ngx_http_ai_sync_out(ngx_http_ai_sync_t *s, size_t need);

static void ngx_http_ai_sync_final(ngx_http_ai_sync_t *s);
static void ngx_http_ai_sync_tick(ngx_event_t *ev);
static void ngx_http_ai_sync_push(ngx_http_ai_sync_zone_t *sz,
    ngx_uint_t refresh);
static void ngx_http_ai_sync_next(ngx_http_ai_sync_zone_t *sz,
    ngx_uint_t done);
static ngx_int_t ngx_http_ai_sync_batch_args(ngx_http_ai_sync_zone_t *sz,
    ngx_http_ai_sync_batch_t *b, ngx_array_t *args);
static void ngx_http_ai_sync_batch_answer(ngx_http_ai_sync_zone_t *sz,
    redisReply *reply);
static ngx_int_t ngx_http_ai_sync_batch_results(ngx_http_ai_sync_batch_t *b,
    redisReply *reply);

static ngx_int_t ngx_http_ai_sync_strict_args(ngx_pool_t *pool,
    ngx_http_ai_sync_waiter_t *w, ngx_uint_t first, ngx_uint_t n,
    ngx_array_t *args);
static void ngx_http_ai_sync_strict_answer(ngx_http_ai_sync_cmd_t *cmd,
    redisReply *reply);
static void ngx_http_ai_sync_strict_done(ngx_event_t *ev);
static void ngx_http_ai_sync_pull_answer(ngx_http_ai_sync_cmd_t *cmd,
    redisReply *reply);

static ngx_int_t ngx_http_ai_sync_arg(ngx_array_t *args, u_char *data,
    size_t len);
static ngx_int_t ngx_http_ai_sync_arg_int(ngx_array_t *args, int64_t n);
static ngx_int_t ngx_http_ai_sync_arg_key(ngx_array_t *args,
    ngx_str_t *prefix, const char *kind, u_char *id, size_t len);
static ngx_int_t ngx_http_ai_sync_number(redisReply *r, int64_t *n);
static ngx_http_ai_sync_sh_t *ngx_http_ai_sync_sh(ngx_http_ai_sync_zone_t *sz,
    ngx_slab_pool_t **shpool);
static void ngx_http_ai_sync_set_state(ngx_http_ai_sync_t *s,
    ngx_uint_t state);

static void *ngx_http_ai_sync_create_array(const redisReadTask *task,
    int elements);


/*
 * The scripts.  A batch: ARGV[1] the zone's key prefix, ARGV[2] the zone
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

static const char  ngx_http_ai_sync_batch_lua[] =
"if redis.replicate_commands then redis.replicate_commands() end\n"
"local p = ARGV[1]\n"
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
"local sk = p .. 'seen:' .. ARGV[2]\n"
"local apply = tonumber(ARGV[3]) > tonumber(redis.call('GET', sk) or '0')\n"
"if apply then redis.call('SET', sk, ARGV[3], 'PX', 604800000) end\n"
"local names = {'requests', 'errors', 'input_tokens', 'output_tokens',\n"
"  'cost_nano_usd', 'aborted', 'estimated_input_tokens',\n"
"  'estimated_cost_nano_usd'}\n"
"local out = {apply and 1 or 0, now}\n"
"local i = 4\n"
"while i <= #ARGV do\n"
"  local ty = ARGV[i]\n"
"  if ty == 'R' then\n"
"    local k = p .. 'r:' .. ARGV[i + 1]\n"
"    local rpm = tonumber(ARGV[i + 2])\n"
"    local tpm = tonumber(ARGV[i + 3])\n"
"    local v = redis.call('HMGET', k, 'r', 't', 'ts')\n"
"    local ms = now - (tonumber(v[3]) or now)\n"
"    if ms < 0 then ms = 0 end\n"
"    local r = math.max(0, (tonumber(v[1]) or 0) - rpm * ms)\n"
"    local tk = math.max(0, (tonumber(v[2]) or 0) - tpm * ms)\n"
"    if apply and (ARGV[i + 4] ~= '0' or ARGV[i + 5] ~= '0') then\n"
"      r = math.max(0, r + tonumber(ARGV[i + 4]))\n"
"      tk = math.max(0, tk + tonumber(ARGV[i + 5]))\n"
"      redis.call('HSET', k, 'r', string.format('%.0f', r),\n"
"        't', string.format('%.0f', tk), 'ts', now)\n"
"      redis.call('PEXPIRE', k, 120000)\n"
"    end\n"
"    out[#out + 1] = r\n"
"    out[#out + 1] = tk\n"
"    i = i + 6\n"
"  elseif ty == 'L' then\n"
"    if apply then\n"
"      local k = p .. 'l:' .. ARGV[i + 1]\n"
"      redis.call('HSET', k, 'key', ARGV[i + 2], 'route', ARGV[i + 3],\n"
"        'model', ARGV[i + 4])\n"
"      for j = 1, 8 do\n"
"        if ARGV[i + 4 + j] ~= '0' then\n"
"          redis.call('HINCRBY', k, names[j], ARGV[i + 4 + j])\n"
"        end\n"
"      end\n"
"    end\n"
"    i = i + 13\n"
"  elseif ty == 'A' then\n"
"    local k = p .. 'a:' .. ARGV[i + 1]\n"
"    if apply then\n"
"      if ARGV[i + 4] ~= '0' then\n"
"        redis.call('INCRBY', k .. ':d:' .. ARGV[i + 2], ARGV[i + 4])\n"
"        redis.call('EXPIRE', k .. ':d:' .. ARGV[i + 2], 172800)\n"
"      end\n"
"      if ARGV[i + 5] ~= '0' then\n"
"        redis.call('INCRBY', k .. ':m:' .. ARGV[i + 3], ARGV[i + 5])\n"
"        redis.call('EXPIRE', k .. ':m:' .. ARGV[i + 3], 5356800)\n"
"      end\n"
"      if ARGV[i + 6] ~= '0' then\n"
"        redis.call('INCRBY', k .. ':total', ARGV[i + 6])\n"
"      end\n"
"    end\n"
"    out[#out + 1] = redis.call('GET', k .. ':d:' .. ARGV[i + 7]) or '0'\n"
"    out[#out + 1] = redis.call('GET', k .. ':m:' .. ARGV[i + 8]) or '0'\n"
"    out[#out + 1] = redis.call('GET', k .. ':total') or '0'\n"
"    i = i + 9\n"
"  elseif ty == 'T' then\n"
"    local k = p .. 'totals'\n"
"    for j = 1, 8 do\n"
"      if apply and ARGV[i + j] ~= '0' then\n"
"        redis.call('HINCRBY', k, names[j], ARGV[i + j])\n"
"      end\n"
"    end\n"
"    local v = redis.call('HMGET', k, unpack(names))\n"
"    for j = 1, 8 do out[#out + 1] = v[j] or '0' end\n"
"    i = i + 9\n"
"  else\n"
"    return redis.error_reply('aigw: invalid batch')\n"
"  end\n"
"end\n"
"return out\n";


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

static const char  ngx_http_ai_sync_strict_lua[] =
"if redis.replicate_commands then redis.replicate_commands() end\n"
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
"local function period(k, i)\n"
"  if ARGV[i + 2] == '1' then return k .. ':d:' .. ARGV[i + 5] end\n"
"  if ARGV[i + 2] == '2' then return k .. ':m:' .. ARGV[i + 6] end\n"
"  return k .. ':total'\n"
"end\n"
"local function spend(k, i)\n"
"  return redis.call('GET', period(k, i)) or '0',\n"
"    redis.call('GET', k .. ':d:' .. ARGV[i + 5]) or '0',\n"
"    redis.call('GET', k .. ':m:' .. ARGV[i + 6]) or '0',\n"
"    redis.call('GET', k .. ':total') or '0'\n"
"end\n"
"local st = {}\n"
"local i = 1\n"
"local n = 0\n"
"while i <= #ARGV do\n"
"  n = n + 1\n"
"  local ty = ARGV[i]\n"
"  if ty == 'R' then\n"
"    local rpm = tonumber(ARGV[i + 2])\n"
"    local tpm = tonumber(ARGV[i + 3])\n"
"    local nr = tonumber(ARGV[i + 4])\n"
"    local nt = tonumber(ARGV[i + 5])\n"
"    local v = redis.call('HMGET', ARGV[i + 1], 'r', 't', 'ts')\n"
"    local ms = now - (tonumber(v[3]) or now)\n"
"    if ms < 0 then ms = 0 end\n"
"    local r = math.max(0, (tonumber(v[1]) or 0) - rpm * ms)\n"
"    local tk = math.max(0, (tonumber(v[2]) or 0) - tpm * ms)\n"
"    local why = 0\n"
"    local wait = 0\n"
"    if rpm > 0 and r + nr > rpm * 60000 then\n"
"      why = 1\n"
"      wait = math.ceil((r + nr - rpm * 60000) / rpm)\n"
"    end\n"
"    if tpm > 0 and tk + nt > tpm * 60000 then\n"
"      why = why + 2\n"
"      wait = math.max(wait, math.ceil((tk + nt - tpm * 60000) / tpm))\n"
"    end\n"
"    if why > 0 then return {0, n, r, tk, why, wait} end\n"
"    st[n] = {r + nr, tk + nt}\n"
"    i = i + 6\n"
"  elseif ty == 'A' then\n"
"    local k = ARGV[i + 1]\n"
"    local s = tonumber(redis.call('GET', period(k, i)) or '0')\n"
"    if s >= tonumber(ARGV[i + 3]) then\n"
"      local a, b, c, d = spend(k, i)\n"
"      return {0, n, a, b, c, d}\n"
"    end\n"
"    i = i + 7\n"
"  else\n"
"    return redis.error_reply('aigw: invalid reservation')\n"
"  end\n"
"end\n"
"local out = {1, now}\n"
"i = 1\n"
"n = 0\n"
"while i <= #ARGV do\n"
"  n = n + 1\n"
"  local k = ARGV[i + 1]\n"
"  if ARGV[i] == 'R' then\n"
"    redis.call('HSET', k, 'r', string.format('%.0f', st[n][1]),\n"
"      't', string.format('%.0f', st[n][2]), 'ts', now)\n"
"    redis.call('PEXPIRE', k, 120000)\n"
"    out[#out + 1] = st[n][1]\n"
"    out[#out + 1] = st[n][2]\n"
"    i = i + 6\n"
"  else\n"
"    if ARGV[i + 4] ~= '0' then\n"
"      redis.call('INCRBY', k .. ':d:' .. ARGV[i + 5], ARGV[i + 4])\n"
"      redis.call('EXPIRE', k .. ':d:' .. ARGV[i + 5], 172800)\n"
"      redis.call('INCRBY', k .. ':m:' .. ARGV[i + 6], ARGV[i + 4])\n"
"      redis.call('EXPIRE', k .. ':m:' .. ARGV[i + 6], 5356800)\n"
"      redis.call('INCRBY', k .. ':total', ARGV[i + 4])\n"
"    end\n"
"    local a, b, c, d = spend(k, i)\n"
"    out[#out + 1] = a\n"
"    out[#out + 1] = b\n"
"    out[#out + 1] = c\n"
"    out[#out + 1] = d\n"
"    i = i + 7\n"
"  end\n"
"end\n"
"return out\n";


static redisReplyObjectFunctions   ngx_http_ai_sync_reply_fn;
static redisReplyObjectFunctions  *ngx_http_ai_sync_reply_default;

static ngx_str_t  ngx_http_ai_sync_states[] = {
    ngx_string("connecting"),
    ngx_string("ok"),
    ngx_string("down")
};


/* ---- configuration ---- */

/*
 * One parameter of ai_rate_zone or ai_cost_zone, if it is a sync option:
 * sync=URL, sync_interval=TIME, sync_timeout=TIME, password=SECRET,
 * strict.  NGX_DECLINED: not one.
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

    o->strict = 1;

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid \"%V\"", value);

    return NGX_ERROR;
}


/* a zone's sync, on the Redis server of its URL (shared with others) */

ngx_http_ai_sync_zone_t *
ngx_http_ai_sync_zone(ngx_conf_t *cf, void *opts, ngx_uint_t type,
    void *zone, ngx_str_t *name)
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

    s = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_sync_t));
    if (s == NULL) {
        return NULL;
    }

    if (ngx_http_ai_sync_parse_url(cf, s, &o->url) != NGX_OK) {
        return NULL;
    }

    if (o->password.len) {
        if (s->password.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the password of \"%V\" is given twice: in "
                               "the URL and by password=", name);
            return NULL;
        }

        s->password = o->password;
    }

    if (s->user.len && s->password.len == 0) {
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
        if (ngx_http_ai_sync_same(&ps[i]->name, &s->name)
            && ngx_http_ai_sync_same(&ps[i]->user, &s->user)
            && ngx_http_ai_sync_same(&ps[i]->password, &s->password))
        {
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
    }

    sz = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_sync_zone_t));
    if (sz == NULL) {
        return NULL;
    }

    sz->sync = s;
    sz->type = type;
    sz->zone = zone;
    sz->name = *name;
    sz->interval = o->interval == NGX_CONF_UNSET_MSEC ? 1000 : o->interval;
    sz->timeout = o->timeout == NGX_CONF_UNSET_MSEC ? 200 : o->timeout;
    sz->strict = o->strict;

    sz->prefix.len = sizeof(NGX_HTTP_AI_SYNC_PREFIX) - 1 + name->len + 1;
    sz->prefix.data = ngx_pnalloc(cf->pool, sz->prefix.len);
    if (sz->prefix.data == NULL) {
        return NULL;
    }

    p = ngx_cpymem(sz->prefix.data, NGX_HTTP_AI_SYNC_PREFIX,
                   sizeof(NGX_HTTP_AI_SYNC_PREFIX) - 1);
    p = ngx_cpymem(p, name->data, name->len);
    *p = ':';

    s->timeout = ngx_max(s->timeout, ngx_max(sz->timeout, 1000));
    s->strict |= sz->strict;

    psz = ngx_array_push(&s->zones);
    if (psz == NULL) {
        return NULL;
    }

    *psz = sz;

    return sz;
}


/*
 * redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]: HOST is resolved now, as
 * nginx does for proxy_pass, so that connecting never waits for DNS.
 */

static ngx_int_t
ngx_http_ai_sync_parse_url(ngx_conf_t *cf, ngx_http_ai_sync_t *s,
    ngx_str_t *url)
{
    u_char     *p, *last, *at, *colon, *slash;
    size_t      len;
    ngx_int_t   db;
    ngx_url_t   u;

    p = url->data;
    last = p + url->len;

    if (url->len > 9 && ngx_strncasecmp(p, (u_char *) "rediss://", 9) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sync=%V\": TLS to Redis (rediss://) is not "
                           "available: the hiredis of Debian 12 (0.14) has "
                           "no TLS; reach Redis on a private network, or "
                           "through a TLS tunnel (stunnel, spiped) with "
                           "redis:// to its local end", url);
        return NGX_ERROR;
    }

    if (url->len <= 8 || ngx_strncasecmp(p, (u_char *) "redis://", 8) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"sync=%V\": expected "
                           "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]", url);
        return NGX_ERROR;
    }

    p += 8;

    /* the last "@" ends the credentials, which may contain one encoded */

    at = NULL;

    for (slash = p; slash < last && *slash != '/'; slash++) {
        if (*slash == '@') {
            at = slash;
        }
    }

    if (at) {
        colon = ngx_strlchr(p, at, ':');

        if (colon == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid credentials in \"sync=\": write "
                               "redis://:PASSWORD@HOST or "
                               "redis://USER:PASSWORD@HOST");
            return NGX_ERROR;
        }

        if (ngx_http_ai_sync_unescape(cf->pool, p, colon - p, &s->user)
            != NGX_OK
            || ngx_http_ai_sync_unescape(cf->pool, colon + 1,
                                         at - colon - 1, &s->password)
               != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid credentials in \"sync=\": bad "
                               "%%-escape");
            return NGX_ERROR;
        }

        p = at + 1;
    }

    s->db = 0;

    if (slash < last) {
        len = last - slash - 1;

        if (len) {
            db = ngx_atoi(slash + 1, len);

            if (db == NGX_ERROR || db > 100000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid database in \"sync=%V\"", url);
                return NGX_ERROR;
            }

            s->db = (ngx_uint_t) db;
        }
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.data = p;
    u.url.len = slash - p;
    u.default_port = 6379;

    if (u.url.len == 0 || ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in \"sync=\" of Redis \"%V\"", u.err,
                               &u.url);
        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid host in \"sync=\"");
        }

        return NGX_ERROR;
    }

    if (u.naddrs == 0 || u.family == AF_UNIX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sync=\": no address for \"%V\"", &u.url);
        return NGX_ERROR;
    }

    /* the first address, as proxy_pass with a name would use them all */

    s->addr = u.addrs[0];

    /* the name, without credentials, for the logs and the status */

    len = sizeof("redis://") - 1 + u.addrs[0].name.len + 1 + NGX_INT_T_LEN;

    s->name.data = ngx_pnalloc(cf->pool, len);
    if (s->name.data == NULL) {
        return NGX_ERROR;
    }

    s->name.len = ngx_sprintf(s->name.data, "redis://%V/%ui",
                              &u.addrs[0].name, s->db)
                  - s->name.data;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_ai_sync_same(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


static ngx_int_t
ngx_http_ai_sync_unescape(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *out)
{
    u_char  *d;

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    d = ngx_ai_percent_decode(out->data, p, len, 0);
    if (d == NULL) {
        return NGX_ERROR;
    }

    out->len = d - out->data;

    return NGX_OK;
}


/* password=: env:VAR, file:PATH or the password itself */

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
    redisReader                     *r;
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

    if (ngx_http_ai_sync_reply_default == NULL) {
        /* hiredis's reply functions, with arrays of a sane size */

        r = redisReaderCreate();
        if (r == NULL) {
            return NGX_ERROR;
        }

        ngx_http_ai_sync_reply_fn = *r->fn;
        ngx_http_ai_sync_reply_default = r->fn;
        ngx_http_ai_sync_reply_fn.createArray = ngx_http_ai_sync_create_array;

        redisReaderFree(r);
    }

    syncer = ngx_http_ai_sync_is_syncer();

    ps = lmcf->syncs->elts;

    for (i = 0; i < lmcf->syncs->nelts; i++) {
        s = ps[i];

        s->log = *cycle->log;
        s->backoff = NGX_HTTP_AI_SYNC_BACKOFF_MIN;
        ngx_queue_init(&s->cmds);

        s->reconnect.handler = ngx_http_ai_sync_reconnect_handler;
        s->reconnect.data = s;
        s->reconnect.log = cycle->log;
        s->reconnect.cancelable = 1;

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

            s->syncer = 1;

            ngx_add_timer(&sz->tick, ngx_min(sz->interval, 100));
        }

        /* one connection per worker: admissions ask Redis from any */

        s->started = 1;
        ngx_http_ai_sync_connect(s);
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

        if (!s->started) {
            continue;
        }

        s->exiting = 1;

        psz = s->zones.elts;

        for (j = 0; j < s->zones.nelts; j++) {
            psz[j]->final = 1;
            psz[j]->stopped = 1;

            if (psz[j]->tick.timer_set) {
                ngx_del_timer(&psz[j]->tick);
            }
        }

        if (s->reconnect.timer_set) {
            ngx_del_timer(&s->reconnect);
        }

        /* what is out is not lost: its batch is still frozen */

        ngx_http_ai_sync_close(s);

        if (s->out) {
            ngx_free(s->out);
            s->out = NULL;
        }
    }
}


/* ---- the connection ---- */

static void
ngx_http_ai_sync_connect(ngx_http_ai_sync_t *s)
{
    ngx_int_t                rc;
    ngx_uint_t               level;
    ngx_pool_t              *pool;
    ngx_array_t             *args;
    ngx_connection_t        *c;
    ngx_http_ai_sync_cmd_t   proto;

    if (s->exiting || s->c) {
        return;
    }

    ngx_memzero(&s->peer, sizeof(ngx_peer_connection_t));

    s->peer.sockaddr = s->addr.sockaddr;
    s->peer.socklen = s->addr.socklen;
    s->peer.name = &s->addr.name;
    s->peer.get = ngx_event_get_peer;
    s->peer.log = &s->log;
    s->peer.log_error = NGX_ERROR_INFO;

    s->state = NGX_HTTP_AI_SYNC_CONN_CONNECTING;

    /* a refused connection is said once a minute, by us */

    level = s->log.log_level;
    s->log.log_level = NGX_LOG_CRIT;

    rc = ngx_event_connect_peer(&s->peer);

    s->log.log_level = level;

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        s->peer.connection = NULL;
        ngx_http_ai_sync_fail(s, "connect() to %V failed%s", &s->addr.name,
                              rc == NGX_DECLINED ? " (refused)" : "");
        return;
    }

    c = s->peer.connection;

    c->data = s;
    c->read->handler = ngx_http_ai_sync_read_handler;
    c->write->handler = ngx_http_ai_sync_write_handler;

    s->c = c;

    s->reader = redisReaderCreateWithFunctions(&ngx_http_ai_sync_reply_fn);
    if (s->reader == NULL) {
        ngx_http_ai_sync_fail(s, "no memory for a reader");
        return;
    }

    /* the handshake: AUTH, SELECT, the scripts */

    pool = ngx_create_pool(1024, &s->log);
    if (pool == NULL) {
        ngx_http_ai_sync_fail(s, "no memory");
        return;
    }

    args = ngx_array_create(pool, 4, sizeof(ngx_str_t));
    if (args == NULL) {
        goto nomem;
    }

    s->hello = 0;

    if (s->password.len) {
        args->nelts = 0;

        if (ngx_http_ai_sync_arg(args, (u_char *) "AUTH", 4) != NGX_OK
            || (s->user.len
                && ngx_http_ai_sync_arg(args, s->user.data, s->user.len)
                   != NGX_OK)
            || ngx_http_ai_sync_arg(args, s->password.data, s->password.len)
               != NGX_OK
            || ngx_http_ai_sync_command(s, args, NULL, s->timeout)
               != NGX_OK)
        {
            goto nomem;
        }

        s->hello++;
    }

    if (s->db) {
        args->nelts = 0;

        if (ngx_http_ai_sync_arg(args, (u_char *) "SELECT", 6) != NGX_OK
            || ngx_http_ai_sync_arg_int(args, s->db) != NGX_OK
            || ngx_http_ai_sync_command(s, args, NULL, s->timeout)
               != NGX_OK)
        {
            goto nomem;
        }

        s->hello++;
    }

    ngx_memzero(&proto, sizeof(ngx_http_ai_sync_cmd_t));
    proto.type = NGX_HTTP_AI_SYNC_CMD_LOAD;
    proto.sha = s->sha_batch;

    args->nelts = 0;

    if (ngx_http_ai_sync_arg(args, (u_char *) "SCRIPT", 6) != NGX_OK
        || ngx_http_ai_sync_arg(args, (u_char *) "LOAD", 4) != NGX_OK
        || ngx_http_ai_sync_arg(args, (u_char *) ngx_http_ai_sync_batch_lua,
                                sizeof(ngx_http_ai_sync_batch_lua) - 1)
           != NGX_OK
        || ngx_http_ai_sync_command(s, args, &proto, s->timeout) != NGX_OK)
    {
        goto nomem;
    }

    proto.sha = s->sha_strict;
    args->nelts = 2;

    if (ngx_http_ai_sync_arg(args, (u_char *) ngx_http_ai_sync_strict_lua,
                             sizeof(ngx_http_ai_sync_strict_lua) - 1)
        != NGX_OK
        || ngx_http_ai_sync_command(s, args, &proto, s->timeout) != NGX_OK)
    {
        goto nomem;
    }

    s->hello += 2;

    ngx_destroy_pool(pool);

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &s->log, 0,
                   "ai sync: connecting to %V", &s->name);

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, s->timeout);
        return;
    }

    /* connected at once (a local address) */

    if (ngx_http_ai_sync_connected(s) == NGX_OK) {
        ngx_http_ai_sync_send(s);
    }

    return;

nomem:

    ngx_destroy_pool(pool);
    ngx_http_ai_sync_fail(s, "no memory");
}


static void
ngx_http_ai_sync_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_ai_sync_t  *s = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        /* an exiting worker does not come back to Redis */
        return;
    }

    ngx_http_ai_sync_connect(s);
}


/* the connection is up: the handshake's answers are awaited */

static ngx_int_t
ngx_http_ai_sync_connected(ngx_http_ai_sync_t *s)
{
    int                err;
    socklen_t          len;
    ngx_connection_t  *c;

    c = s->c;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        ngx_http_ai_sync_fail(s, "connect() to %V failed (%d: %s)",
                              &s->addr.name, err, strerror(err));
        return NGX_ERROR;
    }

    s->state = NGX_HTTP_AI_SYNC_CONN_HANDSHAKE;

    ngx_http_ai_sync_deadline(s);

    return NGX_OK;
}


static void
ngx_http_ai_sync_write_handler(ngx_event_t *wev)
{
    ngx_connection_t    *c;
    ngx_http_ai_sync_t  *s;

    c = wev->data;
    s = c->data;

    if (wev->timedout) {
        ngx_http_ai_sync_fail(s, "connecting to %V timed out",
                              &s->addr.name);
        return;
    }

    if (s->state == NGX_HTTP_AI_SYNC_CONN_CONNECTING
        && ngx_http_ai_sync_connected(s) != NGX_OK)
    {
        return;
    }

    ngx_http_ai_sync_send(s);
}


static void
ngx_http_ai_sync_read_handler(ngx_event_t *rev)
{
    ssize_t              n;
    void                *reply;
    ngx_connection_t    *c;
    ngx_http_ai_sync_t  *s;
    u_char               buf[16384];

    c = rev->data;
    s = c->data;

    if (c->close) {

        if (c->idle) {
            /*
             * The worker is told to quit (ngx_close_idle_connections()):
             * it pushes what it has before it goes.
             */

            c->close = 0;
            c->idle = 0;

            ngx_http_ai_sync_final(s);
            return;
        }

        /* worker_shutdown_timeout */

        s->exiting = 1;
        ngx_http_ai_sync_close(s);
        return;
    }

    if (rev->timedout) {
        ngx_http_ai_sync_fail(s, "%V did not answer within its "
                              "sync_timeout", &s->name);
        return;
    }

    if (s->state == NGX_HTTP_AI_SYNC_CONN_CONNECTING) {
        if (ngx_http_ai_sync_connected(s) != NGX_OK) {
            return;
        }

        ngx_http_ai_sync_send(s);

        if (s->c == NULL) {
            return;
        }
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0 || n == NGX_ERROR) {
            ngx_http_ai_sync_fail(s, "%V closed the connection", &s->name);
            return;
        }

        if (redisReaderFeed(s->reader, (char *) buf, n) != REDIS_OK
            || s->reader->len - s->reader->pos
               > NGX_HTTP_AI_SYNC_MAX_BUFFERED)
        {
            ngx_http_ai_sync_fail(s, "an answer of %V is too large",
                                  &s->name);
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(s->reader, &reply) != REDIS_OK) {
                ngx_http_ai_sync_fail(s, "invalid answer from %V: %s",
                                      &s->name, s->reader->errstr);
                return;
            }

            if (reply == NULL) {
                break;
            }

            ngx_http_ai_sync_answer(s, reply);

            freeReplyObject(reply);

            if (s->c == NULL) {
                /* the answer closed the connection */
                return;
            }
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_ai_sync_fail(s, "cannot wait for %V", &s->name);
    }
}


/* what is to be sent is sent, as far as the socket takes it */

static void
ngx_http_ai_sync_send(ngx_http_ai_sync_t *s)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = s->c;

    if (c == NULL || s->state == NGX_HTTP_AI_SYNC_CONN_CONNECTING) {
        return;
    }

    while (s->out_pos < s->out_len) {
        n = c->send(c, s->out + s->out_pos, s->out_len - s->out_pos);

        if (n == NGX_ERROR) {
            ngx_http_ai_sync_fail(s, "send() to %V failed", &s->name);
            return;
        }

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ngx_http_ai_sync_fail(s, "cannot wait for %V", &s->name);
            }

            return;
        }

        s->out_pos += n;
    }

    s->out_pos = 0;
    s->out_len = 0;
}


/* an answer, to the oldest command sent */

static void
ngx_http_ai_sync_answer(ngx_http_ai_sync_t *s, redisReply *reply)
{
    ngx_queue_t             *q;
    ngx_http_ai_sync_cmd_t  *cmd;

    if (ngx_queue_empty(&s->cmds)) {
        ngx_http_ai_sync_fail(s, "%V sent an answer nothing asked for",
                              &s->name);
        return;
    }

    q = ngx_queue_head(&s->cmds);
    ngx_queue_remove(q);

    cmd = ngx_queue_data(q, ngx_http_ai_sync_cmd_t, queue);

    ngx_http_ai_sync_deadline(s);

    if (cmd->type == NGX_HTTP_AI_SYNC_CMD_HELLO
        || cmd->type == NGX_HTTP_AI_SYNC_CMD_LOAD)
    {
        ngx_http_ai_sync_hello_answer(s, cmd, reply);
        ngx_free(cmd);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR && reply->len >= 8
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        /* the scripts were flushed: a new connection loads them */
        ngx_http_ai_sync_cmd_done(cmd, NULL);
        ngx_http_ai_sync_fail(s, "%V: %*s", &s->name,
                              ngx_min(reply->len, 100), reply->str);
        return;
    }

    ngx_http_ai_sync_cmd_done(cmd, reply);
}


static void
ngx_http_ai_sync_hello_answer(ngx_http_ai_sync_t *s,
    ngx_http_ai_sync_cmd_t *cmd, redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_ai_sync_fail(s, "%V refused the %s: %*s", &s->name,
                              cmd->type == NGX_HTTP_AI_SYNC_CMD_LOAD
                              ? "scripts" : "AUTH or SELECT",
                              ngx_min(reply->len, 100), reply->str);
        return;
    }

    if (cmd->type == NGX_HTTP_AI_SYNC_CMD_LOAD) {
        if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
            ngx_http_ai_sync_fail(s, "%V did not load the scripts",
                                  &s->name);
            return;
        }

        ngx_memcpy(cmd->sha, reply->str, 40);
    }

    if (--s->hello == 0) {
        ngx_http_ai_sync_ready(s);
    }
}


static void
ngx_http_ai_sync_ready(ngx_http_ai_sync_t *s)
{
    time_t                    now;
    ngx_uint_t                i, level;
    ngx_http_ai_sync_zone_t **psz, *sz;

    now = ngx_time();

    /* the backoff is reset by the first answer that checks out */

    s->state = NGX_HTTP_AI_SYNC_CONN_READY;

    if (s->said_down) {
        level = s->syncer ? NGX_LOG_NOTICE : NGX_LOG_INFO;

        ngx_log_error(level, &s->log, 0,
                      "ai sync: %V is reachable again, after %T s; "
                      "pending deltas are pushed now", &s->name,
                      now - s->down_since);
        s->said_down = 0;
    }

    s->down_since = 0;
    s->failures = 0;

    if (s->syncer && !ngx_exiting) {
        /* told when the worker is to quit: see the read handler */
        s->c->idle = 1;
    }

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


/*
 * Redis is away (or said something it should not): the connection is
 * closed, what was asked fails (batches stay frozen, strict admissions
 * are decided locally), and it is tried again after a backoff.  Said in
 * the error log once a minute.
 */

static void
ngx_http_ai_sync_fail(ngx_http_ai_sync_t *s, const char *fmt, ...)
{
    u_char      *p;
    time_t       now;
    va_list      args;
    ngx_uint_t   level;

    va_start(args, fmt);
    p = ngx_vslprintf(s->error, s->error + sizeof(s->error), fmt, args);
    va_end(args);

    s->error_len = p - s->error;

    ngx_http_ai_sync_close(s);

    s->state = NGX_HTTP_AI_SYNC_CONN_DOWN;

    if (s->exiting) {
        return;
    }

    now = ngx_time();

    if (s->down_since == 0) {
        s->down_since = now;
    }

    s->failures++;

    if (now - s->logged >= NGX_HTTP_AI_SYNC_LOG_EVERY) {

        /* said by the worker that syncs; the others tell it to the curious */

        level = s->syncer ? NGX_LOG_ERR : NGX_LOG_INFO;

        ngx_log_error(level, &s->log, 0,
                      "ai sync: %*s; the limits and budgets synced "
                      "through %V are local until it is back, and their "
                      "deltas are kept (%ui failures since the last such "
                      "message)", s->error_len, s->error, &s->name,
                      s->failures);

        s->logged = now;
        s->failures = 0;
        s->said_down = 1;
    }

    ngx_http_ai_sync_set_state(s, NGX_HTTP_AI_SYNC_DOWN);

    if (!s->reconnect.timer_set && !ngx_exiting && !ngx_quit) {
        ngx_add_timer(&s->reconnect, s->backoff);
        s->backoff = ngx_min(s->backoff * 2, NGX_HTTP_AI_SYNC_BACKOFF_MAX);
    }
}


/* the connection closed; what was asked on it fails */

static void
ngx_http_ai_sync_close(ngx_http_ai_sync_t *s)
{
    ngx_queue_t             *q;
    ngx_http_ai_sync_cmd_t  *cmd;

    if (s->c) {
        ngx_close_connection(s->c);
        s->c = NULL;
    }

    if (s->reader) {
        redisReaderFree(s->reader);
        s->reader = NULL;
    }

    s->out_pos = 0;
    s->out_len = 0;

    while (!ngx_queue_empty(&s->cmds)) {
        q = ngx_queue_head(&s->cmds);
        ngx_queue_remove(q);

        cmd = ngx_queue_data(q, ngx_http_ai_sync_cmd_t, queue);

        ngx_http_ai_sync_cmd_done(cmd, NULL);
    }
}


/* a command answered (reply NULL: it failed); cmd is freed */

static void
ngx_http_ai_sync_cmd_done(ngx_http_ai_sync_cmd_t *cmd, redisReply *reply)
{
    switch (cmd->type) {

    case NGX_HTTP_AI_SYNC_CMD_BATCH:
        ngx_http_ai_sync_batch_answer(cmd->sz, reply);
        break;

    case NGX_HTTP_AI_SYNC_CMD_STRICT:
        ngx_http_ai_sync_strict_answer(cmd, reply);
        break;

    case NGX_HTTP_AI_SYNC_CMD_PULL:
        ngx_http_ai_sync_pull_answer(cmd, reply);
        break;

    default:
        break;
    }

    ngx_free(cmd);
}


/* the read timer: the deadline of the oldest command sent */

static void
ngx_http_ai_sync_deadline(ngx_http_ai_sync_t *s)
{
    ngx_msec_t               deadline;
    ngx_event_t             *rev;
    ngx_queue_t             *q;
    ngx_msec_int_t           left;
    ngx_http_ai_sync_cmd_t  *cmd;

    if (s->c == NULL) {
        return;
    }

    rev = s->c->read;

    if (rev->timer_set) {
        ngx_del_timer(rev);
    }

    if (ngx_queue_empty(&s->cmds)
        || s->state == NGX_HTTP_AI_SYNC_CONN_CONNECTING)
    {
        return;
    }

    /* the earliest: a strict admission's may come before a batch's */

    q = ngx_queue_head(&s->cmds);
    cmd = ngx_queue_data(q, ngx_http_ai_sync_cmd_t, queue);
    deadline = cmd->deadline;

    for (q = ngx_queue_next(q);
         q != ngx_queue_sentinel(&s->cmds);
         q = ngx_queue_next(q))
    {
        cmd = ngx_queue_data(q, ngx_http_ai_sync_cmd_t, queue);

        if ((ngx_msec_int_t) (cmd->deadline - deadline) < 0) {
            deadline = cmd->deadline;
        }
    }

    left = (ngx_msec_int_t) (deadline - ngx_current_msec);

    ngx_add_timer(rev, left > 0 ? (ngx_msec_t) left : 1);
}


/*
 * A command, in the protocol's form, to be sent; its record (a copy of
 * proto, or a plain one) joins the queue of those awaiting an answer.
 */

static ngx_int_t
ngx_http_ai_sync_command(ngx_http_ai_sync_t *s, ngx_array_t *args,
    ngx_http_ai_sync_cmd_t *proto, ngx_msec_t timeout)
{
    u_char                  *p;
    size_t                   len;
    ngx_str_t               *a;
    ngx_uint_t               i;
    ngx_http_ai_sync_cmd_t  *cmd;

    a = args->elts;

    len = 1 + NGX_INT_T_LEN + 2;

    for (i = 0; i < args->nelts; i++) {
        len += 1 + NGX_SIZE_T_LEN + 2 + a[i].len + 2;
    }

    if (ngx_http_ai_sync_out(s, len) != NGX_OK) {
        return NGX_ERROR;
    }

    cmd = ngx_alloc(sizeof(ngx_http_ai_sync_cmd_t), &s->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    if (proto) {
        *cmd = *proto;

    } else {
        ngx_memzero(cmd, sizeof(ngx_http_ai_sync_cmd_t));
    }

    cmd->deadline = ngx_current_msec + timeout;

    p = s->out + s->out_len;
    p = ngx_sprintf(p, "*%ui\r\n", args->nelts);

    for (i = 0; i < args->nelts; i++) {
        p = ngx_sprintf(p, "$%uz\r\n", a[i].len);
        p = ngx_cpymem(p, a[i].data, a[i].len);
        *p++ = CR;
        *p++ = LF;
    }

    s->out_len = p - s->out;

    ngx_queue_insert_tail(&s->cmds, &cmd->queue);

    ngx_http_ai_sync_deadline(s);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_sync_out(ngx_http_ai_sync_t *s, size_t need)
{
    u_char  *p;
    size_t   size;

    if (s->out_size - s->out_len >= need) {
        return NGX_OK;
    }

    if (s->out_pos && s->out_pos == s->out_len) {
        s->out_pos = 0;
        s->out_len = 0;

        if (s->out_size >= need) {
            return NGX_OK;
        }
    }

    size = ngx_max(s->out_size * 2, s->out_len + need);
    size = ngx_max(size, 4096);

    p = ngx_alloc(size, &s->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (s->out) {
        ngx_memcpy(p, s->out, s->out_len);
        ngx_free(s->out);
    }

    s->out = p;
    s->out_size = size;

    return NGX_OK;
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

    if (s->state != NGX_HTTP_AI_SYNC_CONN_READY) {
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
ngx_http_ai_sync_final(ngx_http_ai_sync_t *s)
{
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
    ngx_http_ai_sync_cmd_t     proto;
    ngx_http_ai_sync_batch_t  *b;

    s = sz->sync;

    pool = ngx_create_pool(16384, &s->log);
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

    if (sz->type == NGX_HTTP_AI_SYNC_RATE) {
        rc = ngx_http_ai_rate_sync_batch(sz->zone, b, refresh,
                                         NGX_HTTP_AI_SYNC_BATCH_MAX);
    } else {
        rc = ngx_http_ai_cost_sync_batch(sz->zone, b, refresh,
                                         NGX_HTTP_AI_SYNC_BATCH_MAX);
    }

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
        || ngx_http_ai_sync_arg(args, (u_char *) "EVALSHA", 7) != NGX_OK
        || ngx_http_ai_sync_arg(args, s->sha_batch, 40) != NGX_OK
        || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
        || ngx_http_ai_sync_batch_args(sz, b, args) != NGX_OK)
    {
        goto failed;
    }

    ngx_memzero(&proto, sizeof(ngx_http_ai_sync_cmd_t));
    proto.type = NGX_HTTP_AI_SYNC_CMD_BATCH;
    proto.sz = sz;

    if (ngx_http_ai_sync_command(s, args, &proto,
                                 ngx_max(sz->timeout, 1000))
        != NGX_OK)
    {
        goto failed;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_EVENT, &s->log, 0,
                   "ai sync: zone \"%V\" batch %uL, %ui items, more %d",
                   &sz->name, b->seq, b->items.nelts, (int) b->more);

    sz->batch = b;
    sz->busy = 1;

    ngx_http_ai_sync_send(s);

    return;

failed:

    ngx_log_error(NGX_LOG_ALERT, &s->log, 0,
                  "ai sync: zone \"%V\": no memory for a batch", &sz->name);

    ngx_destroy_pool(pool);
    ngx_http_ai_sync_next(sz, 1);
}


/* after a batch (or none): at once when there is more, else later */

static void
ngx_http_ai_sync_next(ngx_http_ai_sync_zone_t *sz, ngx_uint_t done)
{
    sz->busy = 0;

    if (sz->stopped || sz->sync->exiting) {
        return;
    }

    if (sz->tick.timer_set) {
        ngx_del_timer(&sz->tick);
    }

    if (!done && sz->sync->state == NGX_HTTP_AI_SYNC_CONN_READY) {
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

    if (ngx_http_ai_sync_arg(args, sz->prefix.data, sz->prefix.len)
        != NGX_OK
        || ngx_http_ai_sync_arg(args, b->instance,
                                NGX_HTTP_AI_SYNC_INSTANCE_LEN)
           != NGX_OK
        || ngx_http_ai_sync_arg_int(args, (int64_t) b->seq) != NGX_OK)
    {
        return NGX_ERROR;
    }

    item = b->items.elts;

    for (i = 0; i < b->items.nelts; i++) {

        switch (item[i].type) {

        case NGX_HTTP_AI_SYNC_RATE:
            if (ngx_http_ai_sync_arg(args, (u_char *) "R", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, NULL, NULL, item[i].id,
                                            item[i].len)
                   != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].a[0]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].a[1]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].d[0]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].d[1]) != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;

        case NGX_HTTP_AI_SYNC_LEDGER:
            if (ngx_http_ai_sync_arg(args, (u_char *) "L", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, NULL, NULL, item[i].id,
                                            item[i].len)
                   != NGX_OK
                || ngx_http_ai_sync_arg(args, item[i].key.data,
                                        item[i].key.len)
                   != NGX_OK
                || ngx_http_ai_sync_arg(args, item[i].route.data,
                                        item[i].route.len)
                   != NGX_OK
                || ngx_http_ai_sync_arg(args, item[i].model.data,
                                        item[i].model.len)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            for (j = 0; j < 8; j++) {
                if (ngx_http_ai_sync_arg_int(args, item[i].d[j]) != NGX_OK) {
                    return NGX_ERROR;
                }
            }

            break;

        case NGX_HTTP_AI_SYNC_ACCOUNT:
            if (ngx_http_ai_sync_arg(args, (u_char *) "A", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, NULL, NULL, item[i].id,
                                            item[i].len)
                   != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].a[0]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].a[1]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].d[0]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].d[1]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].d[2]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].a[2]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item[i].a[3]) != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;

        default: /* NGX_HTTP_AI_SYNC_TOTALS */
            if (ngx_http_ai_sync_arg(args, (u_char *) "T", 1) != NGX_OK) {
                return NGX_ERROR;
            }

            for (j = 0; j < 8; j++) {
                if (ngx_http_ai_sync_arg_int(args, item[i].d[j]) != NGX_OK) {
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
ngx_http_ai_sync_batch_answer(ngx_http_ai_sync_zone_t *sz,
    redisReply *reply)
{
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
        s->backoff = NGX_HTTP_AI_SYNC_BACKOFF_MIN;

        if (sz->type == NGX_HTTP_AI_SYNC_RATE) {
            ngx_http_ai_rate_sync_ack(sz->zone, b);

        } else {
            ngx_http_ai_cost_sync_ack(sz->zone, b);
        }

    } else if (reply) {
        if (reply->type == REDIS_REPLY_ERROR) {
            len = ngx_min(reply->len, sizeof(s->error));
            ngx_memcpy(s->error, reply->str, len);
            s->error_len = len;

        } else {
            s->error_len = ngx_sprintf(s->error, "an invalid answer to "
                                       "a batch") - s->error;
        }

        if (ngx_time() - s->logged >= NGX_HTTP_AI_SYNC_LOG_EVERY) {
            ngx_log_error(NGX_LOG_ERR, &s->log, 0,
                          "ai sync: zone \"%V\": %V did not apply a batch: "
                          "%*s; it is kept and sent again", &sz->name,
                          &s->name, s->error_len, s->error);
            s->logged = ngx_time();
        }
    }

    sy = s->exiting ? NULL : ngx_http_ai_sync_sh(sz, &shpool);

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

            len = ngx_min(s->error_len, sizeof(sy->error));
            ngx_memcpy(sy->error, s->error, len);
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
            if (ngx_http_ai_sync_number(reply->element[k], &item[i].res[0])
                != NGX_OK
                || ngx_http_ai_sync_number(reply->element[k + 1],
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
                if (ngx_http_ai_sync_number(reply->element[k + j],
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
                if (ngx_http_ai_sync_number(reply->element[k + j],
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
    ngx_http_ai_sync_cmd_t    proto;
    ngx_http_ai_sync_item_t  *item;

    s = sz->sync;

    if (s->state != NGX_HTTP_AI_SYNC_CONN_READY) {
        return;
    }

    item = ngx_alloc(sizeof(ngx_http_ai_sync_item_t) + len, &s->log);
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

    pool = ngx_create_pool(1024, &s->log);
    if (pool == NULL) {
        ngx_free(item);
        return;
    }

    args = ngx_array_create(pool, 16, sizeof(ngx_str_t));

    if (args == NULL
        || ngx_http_ai_sync_arg(args, (u_char *) "EVALSHA", 7) != NGX_OK
        || ngx_http_ai_sync_arg(args, s->sha_batch, 40) != NGX_OK
        || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
        || ngx_http_ai_sync_arg(args, sz->prefix.data, sz->prefix.len)
           != NGX_OK
        || ngx_http_ai_sync_arg(args, (u_char *) "-", 1) != NGX_OK
        || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
        || ngx_http_ai_sync_arg(args, (u_char *) (type
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

        if (ngx_http_ai_sync_arg_int(args, a0) != NGX_OK
            || ngx_http_ai_sync_arg_int(args, a1) != NGX_OK
            || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK)
        {
            goto failed;
        }

    } else {
        /* A ID 0 0 0 0 0 RDAY RMONTH */

        if (ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_sync_arg_int(args, a0) != NGX_OK
            || ngx_http_ai_sync_arg_int(args, a1) != NGX_OK)
        {
            goto failed;
        }
    }

    ngx_memzero(&proto, sizeof(ngx_http_ai_sync_cmd_t));
    proto.type = NGX_HTTP_AI_SYNC_CMD_PULL;
    proto.item = item;

    if (ngx_http_ai_sync_command(s, args, &proto, sz->timeout) != NGX_OK) {
        goto failed;
    }

    ngx_destroy_pool(pool);

    ngx_http_ai_sync_send(s);

    return;

failed:

    ngx_destroy_pool(pool);
    ngx_free(item);
}


static void
ngx_http_ai_sync_pull_answer(ngx_http_ai_sync_cmd_t *cmd, redisReply *reply)
{
    size_t                    n;
    ngx_uint_t                j;
    ngx_http_ai_sync_item_t  *item;

    item = cmd->item;

    /* {0, NOW, R: two levels | A: day, month, total} */

    n = (item->type == NGX_HTTP_AI_SYNC_RATE) ? 2 : 3;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2 + n)
    {
        goto done;
    }

    for (j = 0; j < n; j++) {
        if (ngx_http_ai_sync_number(reply->element[2 + j],
                                    &item->res[item->type
                                               == NGX_HTTP_AI_SYNC_RATE
                                               ? j : j + 1])
            != NGX_OK)
        {
            goto done;
        }
    }

    item->sync->sync->backoff = NGX_HTTP_AI_SYNC_BACKOFF_MIN;

    if (item->type == NGX_HTTP_AI_SYNC_RATE) {
        ngx_http_ai_rate_sync_pull(item->sync->zone, item);

    } else {
        ngx_http_ai_cost_sync_pull(item->sync->zone, item);
    }

done:

    ngx_free(item);
}


/* ---- strict admissions ---- */

ngx_uint_t
ngx_http_ai_sync_strict_ready(ngx_http_ai_sync_zone_t *sz)
{
    return sz->strict && sz->sync->state == NGX_HTTP_AI_SYNC_CONN_READY;
}


/*
 * The deferred holds of a request asked of Redis, one script call per
 * Redis server: NGX_AGAIN, the answers are awaited (and
 * ngx_http_ai_limits_strict_done() follows); NGX_DECLINED: nothing could
 * be asked, the local figures decide now.
 */

ngx_int_t
ngx_http_ai_sync_strict(ngx_http_ai_limits_ctx_t *lctx)
{
    ngx_uint_t                  i, j, n;
    ngx_array_t                 items, *args;
    ngx_http_request_t         *r;
    ngx_http_ai_sync_t         *s;
    ngx_http_ai_sync_cmd_t      proto;
    ngx_http_ai_sync_item_t    *it, tmp;
    ngx_http_ai_sync_waiter_t  *w;

    r = lctx->request;

    if (ngx_array_init(&items, r->pool, 4, sizeof(ngx_http_ai_sync_item_t))
        != NGX_OK
        || ngx_http_ai_cost_strict_item(lctx, &items) != NGX_OK
        || ngx_http_ai_rate_strict_items(lctx, &items) != NGX_OK)
    {
        return NGX_ERROR;
    }

    n = items.nelts;

    if (n == 0) {
        return NGX_DECLINED;
    }

    /* grouped by Redis server, the order kept within a group */

    it = items.elts;

    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && it[j - 1].sync->sync > it[j].sync->sync; j--) {
            tmp = it[j];
            it[j] = it[j - 1];
            it[j - 1] = tmp;
        }
    }

    w = ngx_alloc(sizeof(ngx_http_ai_sync_waiter_t)
                  + (n - 1) * sizeof(ngx_http_ai_sync_item_t),
                  r->connection->log);
    if (w == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(w, sizeof(ngx_http_ai_sync_waiter_t));
    ngx_memcpy(w->items, it, n * sizeof(ngx_http_ai_sync_item_t));

    w->nitems = n;
    w->lctx = lctx;
    w->done.handler = ngx_http_ai_sync_strict_done;
    w->done.data = w;
    w->done.log = r->connection->log;

    for (i = 0; i < n; i = j) {
        s = w->items[i].sync->sync;

        for (j = i; j < n && w->items[j].sync->sync == s; j++) {
            /* void */
        }

        if (s->state != NGX_HTTP_AI_SYNC_CONN_READY) {
            continue;
        }

        args = ngx_array_create(r->pool, 4 + 7 * (j - i), sizeof(ngx_str_t));

        if (args == NULL
            || ngx_http_ai_sync_arg(args, (u_char *) "EVALSHA", 7) != NGX_OK
            || ngx_http_ai_sync_arg(args, s->sha_strict, 40) != NGX_OK
            || ngx_http_ai_sync_arg(args, (u_char *) "0", 1) != NGX_OK
            || ngx_http_ai_sync_strict_args(r->pool, w, i, j - i, args)
               != NGX_OK)
        {
            break;
        }

        ngx_memzero(&proto, sizeof(ngx_http_ai_sync_cmd_t));
        proto.type = NGX_HTTP_AI_SYNC_CMD_STRICT;
        proto.waiter = w;
        proto.first = i;
        proto.n = j - i;

        if (ngx_http_ai_sync_command(s, args, &proto,
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

    lctx->waiter = w;

    /*
     * Sent once every call is counted: a send that fails answers its
     * calls at once (NULL), and the last answer posts w->done.
     */

    for (i = 0; i < n; i = j) {
        s = w->items[i].sync->sync;

        for (j = i; j < n && w->items[j].sync->sync == s; j++) {
            /* void */
        }

        ngx_http_ai_sync_send(s);
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
            if (ngx_http_ai_sync_arg(args, (u_char *) "R", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, &item->sync->prefix, "r:",
                                            item->id, item->len)
                   != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item->a[0]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item->a[1]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item->d[0]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item->d[1]) != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else {
            if (ngx_http_ai_sync_arg(args, (u_char *) "A", 1) != NGX_OK
                || ngx_http_ai_sync_arg_key(args, &item->sync->prefix, "a:",
                                            item->id, item->len)
                   != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item->a[0]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item->a[1]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item->d[0]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item->a[2]) != NGX_OK
                || ngx_http_ai_sync_arg_int(args, item->a[3]) != NGX_OK)
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
ngx_http_ai_sync_strict_answer(ngx_http_ai_sync_cmd_t *cmd,
    redisReply *reply)
{
    size_t                      k, want;
    int64_t                     ok, idx;
    ngx_uint_t                  i, j;
    ngx_http_ai_sync_item_t    *item;
    ngx_http_ai_sync_waiter_t  *w;

    w = cmd->waiter;

    /* NGX_HTTP_AI_STRICT_FAILED (0) unless the answer checks out */

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2
        || ngx_http_ai_sync_number(reply->element[0], &ok) != NGX_OK)
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
                if (ngx_http_ai_sync_number(reply->element[k + j],
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

        w->items[cmd->first].sync->sync->backoff =
                                               NGX_HTTP_AI_SYNC_BACKOFF_MIN;
        goto done;
    }

    /* refused: {0, INDEX, four figures of the item that refused} */

    if (ok != 0 || reply->elements != 6
        || ngx_http_ai_sync_number(reply->element[1], &idx) != NGX_OK
        || idx < 1 || idx > (int64_t) cmd->n)
    {
        goto done;
    }

    item = &w->items[cmd->first + idx - 1];

    for (j = 0; j < 4; j++) {
        if (ngx_http_ai_sync_number(reply->element[2 + j], &item->res[j])
            != NGX_OK)
        {
            goto failed;
        }
    }

    for (i = cmd->first; i < cmd->first + cmd->n; i++) {
        w->items[i].status = NGX_HTTP_AI_STRICT_NOT_TAKEN;
    }

    item->status = NGX_HTTP_AI_STRICT_REFUSED;

    item->sync->sync->backoff = NGX_HTTP_AI_SYNC_BACKOFF_MIN;
    goto done;

failed:

    for (i = cmd->first; i < cmd->first + cmd->n; i++) {
        w->items[i].status = NGX_HTTP_AI_STRICT_FAILED;
    }

done:

    if (--w->calls) {
        return;
    }

    if (w->lctx == NULL) {
        /* the request is gone */
        ngx_free(w);
        return;
    }

    /* the request goes on out of the connection's handler */

    ngx_post_event(&w->done, &ngx_posted_events);
}


static void
ngx_http_ai_sync_strict_done(ngx_event_t *ev)
{
    ngx_uint_t                  i, local;
    ngx_slab_pool_t            *shpool;
    ngx_http_ai_sync_sh_t      *sy;
    ngx_http_ai_sync_item_t    *item;
    ngx_http_ai_limits_ctx_t   *lctx;
    ngx_http_ai_sync_waiter_t  *w;

    w = ev->data;
    lctx = w->lctx;

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

    if (lctx) {
        lctx->waiter = NULL;
        ngx_http_ai_limits_strict_done(lctx, w->items, w->nitems);
    }

    ngx_free(w);
}


/* the request is gone before its answers */

void
ngx_http_ai_sync_strict_cancel(ngx_http_ai_limits_ctx_t *lctx)
{
    ngx_http_ai_sync_waiter_t  *w;

    w = lctx->waiter;

    if (w == NULL) {
        return;
    }

    lctx->waiter = NULL;
    w->lctx = NULL;
}


/* ---- helpers ---- */

static ngx_int_t
ngx_http_ai_sync_arg(ngx_array_t *args, u_char *data, size_t len)
{
    ngx_str_t  *a;

    a = ngx_array_push(args);
    if (a == NULL) {
        return NGX_ERROR;
    }

    a->data = data;
    a->len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_sync_arg_int(ngx_array_t *args, int64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(args->pool, NGX_INT64_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_ai_sync_arg(args, p, ngx_sprintf(p, "%L", n) - p);
}


/* [PREFIX KIND] and the hex of the SHA-256 of an identity (16 bytes) */

static ngx_int_t
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

    return ngx_http_ai_sync_arg(args, start, p - start);
}


/* an integer answered as an integer, a string of digits, or nil (0) */

static ngx_int_t
ngx_http_ai_sync_number(redisReply *r, int64_t *n)
{
    u_char      *p, *last;
    uint64_t     v;
    ngx_uint_t   neg;

    if (r == NULL) {
        return NGX_ERROR;
    }

    if (r->type == REDIS_REPLY_INTEGER) {
        *n = r->integer;
        return NGX_OK;
    }

    if (r->type == REDIS_REPLY_NIL) {
        *n = 0;
        return NGX_OK;
    }

    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20) {
        return NGX_ERROR;
    }

    p = (u_char *) r->str;
    last = p + r->len;
    neg = 0;

    if (*p == '-') {
        neg = 1;

        if (++p == last) {
            return NGX_ERROR;
        }
    }

    for (v = 0; p < last; p++) {
        if (*p < '0' || *p > '9' || v > (uint64_t) INT64_MAX / 10) {
            return NGX_ERROR;
        }

        v = v * 10 + (*p - '0');
    }

    if (v > (uint64_t) INT64_MAX) {
        return NGX_ERROR;
    }

    *n = neg ? - (int64_t) v : (int64_t) v;

    return NGX_OK;
}


static ngx_http_ai_sync_sh_t *
ngx_http_ai_sync_sh(ngx_http_ai_sync_zone_t *sz, ngx_slab_pool_t **shpool)
{
    ngx_http_ai_rate_zone_t  *rz;
    ngx_http_ai_cost_zone_t  *cz;

    if (sz->type == NGX_HTTP_AI_SYNC_RATE) {
        rz = sz->zone;

        if (rz->sh == NULL) {
            return NULL;
        }

        *shpool = rz->shpool;
        return &rz->sh->sync;
    }

    cz = sz->zone;

    if (cz->sh == NULL) {
        return NULL;
    }

    *shpool = cz->shpool;
    return &cz->sh->sync;
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
            len = ngx_min(s->error_len, sizeof(sy->error));
            ngx_memcpy(sy->error, s->error, len);
            sy->error_len = len;
        }

        ngx_shmtx_unlock(&shpool->mutex);
    }
}


/* hiredis's arrays, refused beyond a sane size rather than allocated */

static void *
ngx_http_ai_sync_create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > NGX_HTTP_AI_SYNC_MAX_ELEMENTS) {
        return NULL;
    }

    return ngx_http_ai_sync_reply_default->createArray(task, elements);
}


/* ---- status ---- */

/*
 * "sync":[{"zone":..,"type":"rate"|"cost","redis":"redis://HOST:PORT/DB",
 * "state":"ok"|"connecting"|"down","since":UNIX,"strict":BOOL,
 * "interval_ms":N,"last_sync":UNIX|null,"batches":N,"failures":N,
 * "timeout_ms":N,"unsynced":N,"lost":N,"strict_admissions":N,
 * "strict_local":N,"last_error":STRING|null[,"fleet_totals":{...}]}],
 */

ngx_int_t
ngx_http_ai_sync_json(ngx_http_ai_limits_main_conf_t *lmcf, ngx_ai_buf_t *b)
{
    ngx_uint_t                 i, j, first, unsynced, known;
    ngx_queue_t               *q;
    ngx_slab_pool_t           *shpool;
    ngx_http_ai_sync_t       **ps;
    ngx_http_ai_sync_sh_t     *sy, st;
    ngx_http_ai_sync_zone_t  **psz, *sz;
    ngx_http_ai_counters_t     global;
    ngx_http_ai_rate_node_t   *rn;
    ngx_http_ai_cost_node_t   *cn;
    ngx_http_ai_rate_zone_t   *rz;
    ngx_http_ai_cost_zone_t   *cz;

    static ngx_http_ai_counters_t  zero;

    if (ngx_ai_buf_append_str(b, "\"sync\":[") != NGX_OK) {
        return NGX_ERROR;
    }

    first = 1;
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

            unsynced = 0;
            known = 0;
            ngx_memzero(&global, sizeof(ngx_http_ai_counters_t));

            ngx_shmtx_lock(&shpool->mutex);

            st = *sy;

            if (sz->type == NGX_HTTP_AI_SYNC_RATE) {
                rz = sz->zone;

                for (q = ngx_queue_head(&rz->sh->queue);
                     q != ngx_queue_sentinel(&rz->sh->queue);
                     q = ngx_queue_next(q))
                {
                    rn = ngx_queue_data(q, ngx_http_ai_rate_node_t, queue);

                    unsynced += (rn->pend_req || rn->pend_tok
                                 || rn->send_req || rn->send_tok);
                }

            } else {
                cz = sz->zone;

                for (q = ngx_queue_head(&cz->sh->queue);
                     q != ngx_queue_sentinel(&cz->sh->queue);
                     q = ngx_queue_next(q))
                {
                    cn = ngx_queue_data(q, ngx_http_ai_cost_node_t, queue);
                    unsynced += (cn->delta != NULL);
                }

                unsynced += (ngx_memcmp(&cz->sh->pend, &zero,
                                        sizeof(ngx_http_ai_counters_t)) != 0
                             || ngx_memcmp(&cz->sh->send, &zero,
                                           sizeof(ngx_http_ai_counters_t))
                                != 0);

                global = cz->sh->global;
                known = cz->sh->global_known;
            }

            ngx_shmtx_unlock(&shpool->mutex);

            if (st.state > NGX_HTTP_AI_SYNC_DOWN) {
                st.state = NGX_HTTP_AI_SYNC_CONNECTING;
            }

            if ((!first && ngx_ai_buf_append_str(b, ",") != NGX_OK)
                || ngx_ai_buf_append_str(b, "{\"zone\":") != NGX_OK
                || ngx_ai_buf_append_json_string(b, sz->name.data,
                                                 sz->name.len)
                   != NGX_OK
                || ngx_ai_buf_append_str(b, sz->type == NGX_HTTP_AI_SYNC_RATE
                                            ? ",\"type\":\"rate\""
                                            : ",\"type\":\"cost\"")
                   != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"redis\":") != NGX_OK
                || ngx_ai_buf_append_json_string(b, ps[i]->name.data,
                                                 ps[i]->name.len)
                   != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"state\":") != NGX_OK
                || ngx_ai_buf_append_json_string(b,
                                   ngx_http_ai_sync_states[st.state].data,
                                   ngx_http_ai_sync_states[st.state].len)
                   != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"since\":") != NGX_OK
                || ngx_ai_buf_append_uint(b, (uint64_t) st.since) != NGX_OK
                || ngx_ai_buf_append_str(b, sz->strict ? ",\"strict\":true"
                                                       : ",\"strict\":false")
                   != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"interval_ms\":") != NGX_OK
                || ngx_ai_buf_append_uint(b, sz->interval) != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"timeout_ms\":") != NGX_OK
                || ngx_ai_buf_append_uint(b, sz->timeout) != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"last_sync\":") != NGX_OK
                || (st.last_ok
                    ? ngx_ai_buf_append_uint(b, (uint64_t) st.last_ok)
                    : ngx_ai_buf_append_str(b, "null"))
                   != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"batches\":") != NGX_OK
                || ngx_ai_buf_append_uint(b, st.batches) != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"failures\":") != NGX_OK
                || ngx_ai_buf_append_uint(b, st.failures) != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"unsynced\":") != NGX_OK
                || ngx_ai_buf_append_uint(b, unsynced) != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"lost\":") != NGX_OK
                || ngx_ai_buf_append_uint(b, st.lost) != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"strict_admissions\":")
                   != NGX_OK
                || ngx_ai_buf_append_uint(b, st.strict) != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"strict_local\":") != NGX_OK
                || ngx_ai_buf_append_uint(b, st.strict_local) != NGX_OK
                || ngx_ai_buf_append_str(b, ",\"last_error\":") != NGX_OK
                || (st.error_len
                    ? ngx_ai_buf_append_json_string(b, st.error,
                                        ngx_min(st.error_len,
                                                sizeof(st.error)))
                    : ngx_ai_buf_append_str(b, "null"))
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            first = 0;

            if (known) {
                if (ngx_ai_buf_append_str(b, ",\"fleet_totals\":{"
                                             "\"requests\":") != NGX_OK
                    || ngx_ai_buf_append_uint(b, global.requests) != NGX_OK
                    || ngx_ai_buf_append_str(b, ",\"errors\":") != NGX_OK
                    || ngx_ai_buf_append_uint(b, global.errors) != NGX_OK
                    || ngx_ai_buf_append_str(b, ",\"input_tokens\":")
                       != NGX_OK
                    || ngx_ai_buf_append_uint(b, global.input_tokens)
                       != NGX_OK
                    || ngx_ai_buf_append_str(b, ",\"output_tokens\":")
                       != NGX_OK
                    || ngx_ai_buf_append_uint(b, global.output_tokens)
                       != NGX_OK
                    || ngx_ai_buf_append_str(b, ",\"cost_nano_usd\":")
                       != NGX_OK
                    || ngx_ai_buf_append_uint(b, global.cost) != NGX_OK
                    || ngx_ai_buf_append_str(b, ",\"cost_usd\":") != NGX_OK
                    || ngx_http_ai_buf_append_usd(b, global.cost) != NGX_OK
                    || ngx_ai_buf_append_str(b, "}") != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }

            if (ngx_ai_buf_append_str(b, "}") != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return ngx_ai_buf_append_str(b, "],");
}
