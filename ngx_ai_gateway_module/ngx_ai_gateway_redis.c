
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * A Redis client on nginx's events, the library boundary of sync=
 * (ngx_ai_gateway_sync.c, which says what to ask).  The connection (one
 * per worker and Redis server) is an nginx peer connection: non-blocking
 * connect, recv and send on nginx's events, event timers for its
 * deadlines, reconnection with a backoff.  Replies are parsed by
 * hiredis's protocol reader (Debian's libhiredis); its asynchronous layer
 * is not used, since the one Debian 12 ships (0.14) aborts the process on
 * a reply nothing asked for, and a Redis server, whatever it sends, must
 * not bring a worker down.  Every failure goes through one funnel,
 * ngx_http_ai_redis_fail(): the connection is closed, what was asked on
 * it is answered NULL, and it is tried again later.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include "ngx_ai_gateway_pure.h"
#include "ngx_ai_gateway_redis.h"


#define NGX_HTTP_AI_REDIS_MAX_BUFFERED   (64 * 1024 * 1024)
#define NGX_HTTP_AI_REDIS_MAX_ELEMENTS   65536

/* what a command sent was */
#define NGX_HTTP_AI_REDIS_CMD_HELLO      0        /* AUTH, SELECT */
#define NGX_HTTP_AI_REDIS_CMD_LOAD       1        /* SCRIPT LOAD */
#define NGX_HTTP_AI_REDIS_CMD_USER       2        /* the owner's */


typedef struct {
    ngx_queue_t                     queue;
    ngx_msec_t                      deadline;
    ngx_uint_t                      type;
    ngx_http_ai_redis_handler_pt    handler;      /* a user's */
    void                           *data;
    u_char                         *sha;          /* SCRIPT LOAD's */
} ngx_http_ai_redis_cmd_t;


static ngx_uint_t ngx_http_ai_redis_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_int_t ngx_http_ai_redis_unescape(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_str_t *out);

static void ngx_http_ai_redis_connect(ngx_http_ai_redis_t *s);
static void ngx_http_ai_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_ai_redis_read_handler(ngx_event_t *rev);
static void ngx_http_ai_redis_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_ai_redis_connected(ngx_http_ai_redis_t *s);
static void ngx_http_ai_redis_answer(ngx_http_ai_redis_t *s,
    redisReply *reply);
static void ngx_http_ai_redis_hello_answer(ngx_http_ai_redis_t *s,
    ngx_http_ai_redis_cmd_t *cmd, redisReply *reply);
static void ngx_http_ai_redis_ready(ngx_http_ai_redis_t *s);
static void ngx_http_ai_redis_fail(ngx_http_ai_redis_t *s, const char *fmt,
    ...);
static void ngx_http_ai_redis_close(ngx_http_ai_redis_t *s);
static void ngx_http_ai_redis_cmd_done(ngx_http_ai_redis_t *s,
    ngx_http_ai_redis_cmd_t *cmd, redisReply *reply);
static void ngx_http_ai_redis_deadline(ngx_http_ai_redis_t *s);
static ngx_int_t ngx_http_ai_redis_queue(ngx_http_ai_redis_t *s,
    ngx_array_t *args, ngx_http_ai_redis_cmd_t *proto, ngx_msec_t timeout);
static ngx_int_t ngx_http_ai_redis_out(ngx_http_ai_redis_t *s, size_t need);

static void *ngx_http_ai_redis_create_array(const redisReadTask *task,
    int elements);


static redisReplyObjectFunctions   ngx_http_ai_redis_reply_fn;
static redisReplyObjectFunctions  *ngx_http_ai_redis_reply_default;


/* ---- configuration ---- */

/*
 * redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]: HOST is resolved now, as
 * nginx does for proxy_pass, so that connecting never waits for DNS.
 */

ngx_int_t
ngx_http_ai_redis_parse_url(ngx_conf_t *cf, ngx_http_ai_redis_t *s,
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

        if (ngx_http_ai_redis_unescape(cf->pool, p, colon - p, &s->user)
            != NGX_OK
            || ngx_http_ai_redis_unescape(cf->pool, colon + 1,
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


/* the same server, with the same credentials */

ngx_uint_t
ngx_http_ai_redis_same(ngx_http_ai_redis_t *a, ngx_http_ai_redis_t *b)
{
    return ngx_http_ai_redis_eq(&a->name, &b->name)
           && ngx_http_ai_redis_eq(&a->user, &b->user)
           && ngx_http_ai_redis_eq(&a->password, &b->password);
}


static ngx_uint_t
ngx_http_ai_redis_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || ngx_memcmp(a->data, b->data, a->len) == 0);
}


static ngx_int_t
ngx_http_ai_redis_unescape(ngx_pool_t *pool, u_char *p, size_t len,
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


/* ---- the process ---- */

/* hiredis's reply functions, with arrays of a sane size */

ngx_int_t
ngx_http_ai_redis_init(void)
{
    redisReader  *r;

    if (ngx_http_ai_redis_reply_default) {
        return NGX_OK;
    }

    r = redisReaderCreate();
    if (r == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ai_redis_reply_fn = *r->fn;
    ngx_http_ai_redis_reply_default = r->fn;
    ngx_http_ai_redis_reply_fn.createArray = ngx_http_ai_redis_create_array;

    redisReaderFree(r);

    return NGX_OK;
}


/* the connection of this worker: connected now, and kept */

void
ngx_http_ai_redis_start(ngx_http_ai_redis_t *s, ngx_log_t *log)
{
    s->log = *log;
    s->backoff = NGX_HTTP_AI_REDIS_BACKOFF_MIN;
    ngx_queue_init(&s->cmds);

    s->reconnect.handler = ngx_http_ai_redis_reconnect_handler;
    s->reconnect.data = s;
    s->reconnect.log = log;
    s->reconnect.cancelable = 1;

    s->started = 1;
    ngx_http_ai_redis_connect(s);
}


/* the worker exits: what was asked fails, nothing is tried again */

void
ngx_http_ai_redis_stop(ngx_http_ai_redis_t *s)
{
    s->exiting = 1;

    if (s->reconnect.timer_set) {
        ngx_del_timer(&s->reconnect);
    }

    ngx_http_ai_redis_close(s);

    if (s->out) {
        ngx_free(s->out);
        s->out = NULL;
    }
}


/* ---- the connection ---- */

static void
ngx_http_ai_redis_connect(ngx_http_ai_redis_t *s)
{
    ngx_int_t                 rc;
    ngx_uint_t                i, level;
    ngx_pool_t               *pool;
    ngx_array_t              *args;
    ngx_connection_t         *c;
    ngx_http_ai_redis_cmd_t   proto;

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

    s->state = NGX_HTTP_AI_REDIS_CONNECTING;

    /* a refused connection is said once a minute, by us */

    level = s->log.log_level;
    s->log.log_level = NGX_LOG_CRIT;

    rc = ngx_event_connect_peer(&s->peer);

    s->log.log_level = level;

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        s->peer.connection = NULL;
        ngx_http_ai_redis_fail(s, "connect() to %V failed%s", &s->addr.name,
                               rc == NGX_DECLINED ? " (refused)" : "");
        return;
    }

    c = s->peer.connection;

    c->data = s;
    c->read->handler = ngx_http_ai_redis_read_handler;
    c->write->handler = ngx_http_ai_redis_write_handler;

    s->c = c;

    s->reader = redisReaderCreateWithFunctions(&ngx_http_ai_redis_reply_fn);
    if (s->reader == NULL) {
        ngx_http_ai_redis_fail(s, "no memory for a reader");
        return;
    }

    /* the handshake: AUTH, SELECT, the scripts */

    pool = ngx_create_pool(1024, &s->log);
    if (pool == NULL) {
        ngx_http_ai_redis_fail(s, "no memory");
        return;
    }

    args = ngx_array_create(pool, 4, sizeof(ngx_str_t));
    if (args == NULL) {
        goto nomem;
    }

    s->hello = 0;

    if (s->password.len) {
        args->nelts = 0;

        if (ngx_http_ai_redis_arg(args, (u_char *) "AUTH", 4) != NGX_OK
            || (s->user.len
                && ngx_http_ai_redis_arg(args, s->user.data, s->user.len)
                   != NGX_OK)
            || ngx_http_ai_redis_arg(args, s->password.data, s->password.len)
               != NGX_OK
            || ngx_http_ai_redis_queue(s, args, NULL, s->timeout)
               != NGX_OK)
        {
            goto nomem;
        }

        s->hello++;
    }

    if (s->db) {
        args->nelts = 0;

        if (ngx_http_ai_redis_arg(args, (u_char *) "SELECT", 6) != NGX_OK
            || ngx_http_ai_redis_arg_int(args, s->db) != NGX_OK
            || ngx_http_ai_redis_queue(s, args, NULL, s->timeout)
               != NGX_OK)
        {
            goto nomem;
        }

        s->hello++;
    }

    ngx_memzero(&proto, sizeof(ngx_http_ai_redis_cmd_t));
    proto.type = NGX_HTTP_AI_REDIS_CMD_LOAD;

    for (i = 0; i < s->nscripts; i++) {
        proto.sha = s->scripts[i].sha;
        args->nelts = 0;

        if (ngx_http_ai_redis_arg(args, (u_char *) "SCRIPT", 6) != NGX_OK
            || ngx_http_ai_redis_arg(args, (u_char *) "LOAD", 4) != NGX_OK
            || ngx_http_ai_redis_arg(args, s->scripts[i].text.data,
                                     s->scripts[i].text.len)
               != NGX_OK
            || ngx_http_ai_redis_queue(s, args, &proto, s->timeout)
               != NGX_OK)
        {
            goto nomem;
        }

        s->hello++;
    }

    ngx_destroy_pool(pool);

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &s->log, 0,
                   "ai sync: connecting to %V", &s->name);

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, s->timeout);
        return;
    }

    /* connected at once (a local address) */

    if (ngx_http_ai_redis_connected(s) == NGX_OK) {
        ngx_http_ai_redis_send(s);
    }

    return;

nomem:

    ngx_destroy_pool(pool);
    ngx_http_ai_redis_fail(s, "no memory");
}


static void
ngx_http_ai_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_ai_redis_t  *s = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        /* an exiting worker does not come back to Redis */
        return;
    }

    ngx_http_ai_redis_connect(s);
}


/* the connection is up: the handshake's answers are awaited */

static ngx_int_t
ngx_http_ai_redis_connected(ngx_http_ai_redis_t *s)
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
        ngx_http_ai_redis_fail(s, "connect() to %V failed (%d: %s)",
                               &s->addr.name, err, strerror(err));
        return NGX_ERROR;
    }

    s->state = NGX_HTTP_AI_REDIS_HANDSHAKE;

    ngx_http_ai_redis_deadline(s);

    return NGX_OK;
}


static void
ngx_http_ai_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t    *c;
    ngx_http_ai_redis_t  *s;

    c = wev->data;
    s = c->data;

    if (wev->timedout) {
        ngx_http_ai_redis_fail(s, "connecting to %V timed out",
                               &s->addr.name);
        return;
    }

    if (s->state == NGX_HTTP_AI_REDIS_CONNECTING
        && ngx_http_ai_redis_connected(s) != NGX_OK)
    {
        return;
    }

    ngx_http_ai_redis_send(s);
}


static void
ngx_http_ai_redis_read_handler(ngx_event_t *rev)
{
    ssize_t              n;
    void                *reply;
    ngx_connection_t    *c;
    ngx_http_ai_redis_t  *s;
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

            s->quit(s);
            return;
        }

        /* worker_shutdown_timeout */

        s->exiting = 1;
        ngx_http_ai_redis_close(s);
        return;
    }

    if (rev->timedout) {
        ngx_http_ai_redis_fail(s, "%V did not answer within its "
                               "sync_timeout", &s->name);
        return;
    }

    if (s->state == NGX_HTTP_AI_REDIS_CONNECTING) {
        if (ngx_http_ai_redis_connected(s) != NGX_OK) {
            return;
        }

        ngx_http_ai_redis_send(s);

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
            ngx_http_ai_redis_fail(s, "%V closed the connection", &s->name);
            return;
        }

        if (redisReaderFeed(s->reader, (char *) buf, n) != REDIS_OK
            || s->reader->len - s->reader->pos
               > NGX_HTTP_AI_REDIS_MAX_BUFFERED)
        {
            ngx_http_ai_redis_fail(s, "an answer of %V is too large",
                                   &s->name);
            return;
        }

        for ( ;; ) {
            reply = NULL;

            if (redisReaderGetReply(s->reader, &reply) != REDIS_OK) {
                ngx_http_ai_redis_fail(s, "invalid answer from %V: %s",
                                       &s->name, s->reader->errstr);
                return;
            }

            if (reply == NULL) {
                break;
            }

            ngx_http_ai_redis_answer(s, reply);

            freeReplyObject(reply);

            if (s->c == NULL) {
                /* the answer closed the connection */
                return;
            }
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_ai_redis_fail(s, "cannot wait for %V", &s->name);
    }
}


/* what is to be sent is sent, as far as the socket takes it */

void
ngx_http_ai_redis_send(ngx_http_ai_redis_t *s)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = s->c;

    if (c == NULL || s->state == NGX_HTTP_AI_REDIS_CONNECTING) {
        return;
    }

    while (s->out_pos < s->out_len) {
        n = c->send(c, s->out + s->out_pos, s->out_len - s->out_pos);

        if (n == NGX_ERROR) {
            ngx_http_ai_redis_fail(s, "send() to %V failed", &s->name);
            return;
        }

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
                ngx_http_ai_redis_fail(s, "cannot wait for %V", &s->name);
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
ngx_http_ai_redis_answer(ngx_http_ai_redis_t *s, redisReply *reply)
{
    ngx_queue_t             *q;
    ngx_http_ai_redis_cmd_t  *cmd;

    if (ngx_queue_empty(&s->cmds)) {
        ngx_http_ai_redis_fail(s, "%V sent an answer nothing asked for",
                               &s->name);
        return;
    }

    q = ngx_queue_head(&s->cmds);
    ngx_queue_remove(q);

    cmd = ngx_queue_data(q, ngx_http_ai_redis_cmd_t, queue);

    ngx_http_ai_redis_deadline(s);

    if (cmd->type == NGX_HTTP_AI_REDIS_CMD_HELLO
        || cmd->type == NGX_HTTP_AI_REDIS_CMD_LOAD)
    {
        ngx_http_ai_redis_hello_answer(s, cmd, reply);
        ngx_free(cmd);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR && reply->len >= 8
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        /* the scripts were flushed: a new connection loads them */
        ngx_http_ai_redis_cmd_done(s, cmd, NULL);
        ngx_http_ai_redis_fail(s, "%V: %*s", &s->name,
                               ngx_min(reply->len, 100), reply->str);
        return;
    }

    ngx_http_ai_redis_cmd_done(s, cmd, reply);
}


static void
ngx_http_ai_redis_hello_answer(ngx_http_ai_redis_t *s,
    ngx_http_ai_redis_cmd_t *cmd, redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_ai_redis_fail(s, "%V refused the %s: %*s", &s->name,
                               cmd->type == NGX_HTTP_AI_REDIS_CMD_LOAD
                               ? "scripts" : "AUTH or SELECT",
                               ngx_min(reply->len, 100), reply->str);
        return;
    }

    if (cmd->type == NGX_HTTP_AI_REDIS_CMD_LOAD) {
        if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
            ngx_http_ai_redis_fail(s, "%V did not load the scripts",
                                   &s->name);
            return;
        }

        ngx_memcpy(cmd->sha, reply->str, 40);
    }

    if (--s->hello == 0) {
        ngx_http_ai_redis_ready(s);
    }
}


static void
ngx_http_ai_redis_ready(ngx_http_ai_redis_t *s)
{
    time_t      now;
    ngx_uint_t  level;

    now = ngx_time();

    /* the backoff is reset by the first answer that checks out */

    s->state = NGX_HTTP_AI_REDIS_READY;

    if (s->said_down) {
        level = s->primary ? NGX_LOG_NOTICE : NGX_LOG_INFO;

        ngx_log_error(level, &s->log, 0,
                      "ai sync: %V is reachable again, after %T s; "
                      "pending deltas are pushed now", &s->name,
                      now - s->down_since);
        s->said_down = 0;
    }

    s->down_since = 0;
    s->failures = 0;

    if (s->primary && !ngx_exiting) {
        /* told when the worker is to quit: see the read handler */
        s->c->idle = 1;
    }

    s->ready(s);
}


/*
 * Redis is away (or said something it should not): the connection is
 * closed, what was asked fails (batches stay frozen, strict admissions
 * are decided locally), and it is tried again after a backoff.  Said in
 * the error log once a minute.
 */

static void
ngx_http_ai_redis_fail(ngx_http_ai_redis_t *s, const char *fmt, ...)
{
    u_char      *p;
    time_t       now;
    va_list      args;
    ngx_uint_t   level;

    va_start(args, fmt);
    p = ngx_vslprintf(s->error, s->error + sizeof(s->error), fmt, args);
    va_end(args);

    s->error_len = p - s->error;

    ngx_http_ai_redis_close(s);

    s->state = NGX_HTTP_AI_REDIS_DOWN;

    if (s->exiting) {
        return;
    }

    now = ngx_time();

    if (s->down_since == 0) {
        s->down_since = now;
    }

    s->failures++;

    if (now - s->logged >= NGX_HTTP_AI_REDIS_LOG_EVERY) {

        /* said by the worker that syncs; the others tell it to the curious */

        level = s->primary ? NGX_LOG_ERR : NGX_LOG_INFO;

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

    s->down(s);

    if (!s->reconnect.timer_set && !ngx_exiting && !ngx_quit) {
        ngx_add_timer(&s->reconnect, s->backoff);
        s->backoff = ngx_min(s->backoff * 2, NGX_HTTP_AI_REDIS_BACKOFF_MAX);
    }
}


/* the connection closed; what was asked on it fails */

static void
ngx_http_ai_redis_close(ngx_http_ai_redis_t *s)
{
    ngx_queue_t             *q;
    ngx_http_ai_redis_cmd_t  *cmd;

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

        cmd = ngx_queue_data(q, ngx_http_ai_redis_cmd_t, queue);

        ngx_http_ai_redis_cmd_done(s, cmd, NULL);
    }
}


/* a command answered (reply NULL: it failed); cmd is freed */

static void
ngx_http_ai_redis_cmd_done(ngx_http_ai_redis_t *s,
    ngx_http_ai_redis_cmd_t *cmd, redisReply *reply)
{
    if (cmd->handler) {
        cmd->handler(s, reply, cmd->data);
    }

    ngx_free(cmd);
}


/* the read timer: the deadline of the oldest command sent */

static void
ngx_http_ai_redis_deadline(ngx_http_ai_redis_t *s)
{
    ngx_msec_t               deadline;
    ngx_event_t             *rev;
    ngx_queue_t             *q;
    ngx_msec_int_t           left;
    ngx_http_ai_redis_cmd_t  *cmd;

    if (s->c == NULL) {
        return;
    }

    rev = s->c->read;

    if (rev->timer_set) {
        ngx_del_timer(rev);
    }

    if (ngx_queue_empty(&s->cmds)
        || s->state == NGX_HTTP_AI_REDIS_CONNECTING)
    {
        return;
    }

    /* the earliest: a strict admission's may come before a batch's */

    q = ngx_queue_head(&s->cmds);
    cmd = ngx_queue_data(q, ngx_http_ai_redis_cmd_t, queue);
    deadline = cmd->deadline;

    for (q = ngx_queue_next(q);
         q != ngx_queue_sentinel(&s->cmds);
         q = ngx_queue_next(q))
    {
        cmd = ngx_queue_data(q, ngx_http_ai_redis_cmd_t, queue);

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
ngx_http_ai_redis_queue(ngx_http_ai_redis_t *s, ngx_array_t *args,
    ngx_http_ai_redis_cmd_t *proto, ngx_msec_t timeout)
{
    u_char                  *p;
    size_t                   len;
    ngx_str_t               *a;
    ngx_uint_t               i;
    ngx_http_ai_redis_cmd_t  *cmd;

    a = args->elts;

    len = 1 + NGX_INT_T_LEN + 2;

    for (i = 0; i < args->nelts; i++) {
        len += 1 + NGX_SIZE_T_LEN + 2 + a[i].len + 2;
    }

    if (ngx_http_ai_redis_out(s, len) != NGX_OK) {
        return NGX_ERROR;
    }

    cmd = ngx_alloc(sizeof(ngx_http_ai_redis_cmd_t), &s->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    if (proto) {
        *cmd = *proto;

    } else {
        ngx_memzero(cmd, sizeof(ngx_http_ai_redis_cmd_t));
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

    ngx_http_ai_redis_deadline(s);

    return NGX_OK;
}


/*
 * A command, queued to be sent (ngx_http_ai_redis_send()): handler gets
 * its answer, or NULL when the connection fails first (at once, should a
 * send fail).
 */

ngx_int_t
ngx_http_ai_redis_command(ngx_http_ai_redis_t *s, ngx_array_t *args,
    ngx_http_ai_redis_handler_pt handler, void *data, ngx_msec_t timeout)
{
    ngx_http_ai_redis_cmd_t  proto;

    ngx_memzero(&proto, sizeof(ngx_http_ai_redis_cmd_t));
    proto.type = NGX_HTTP_AI_REDIS_CMD_USER;
    proto.handler = handler;
    proto.data = data;

    return ngx_http_ai_redis_queue(s, args, &proto, timeout);
}


static ngx_int_t
ngx_http_ai_redis_out(ngx_http_ai_redis_t *s, size_t need)
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


/* ---- commands and answers ---- */

ngx_int_t
ngx_http_ai_redis_arg(ngx_array_t *args, u_char *data, size_t len)
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


ngx_int_t
ngx_http_ai_redis_arg_int(ngx_array_t *args, int64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(args->pool, NGX_INT64_LEN + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_ai_redis_arg(args, p, ngx_sprintf(p, "%L", n) - p);
}


/* an integer answered as an integer, a string of digits, or nil (0) */

ngx_int_t
ngx_http_ai_redis_number(redisReply *r, int64_t *n)
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


/* hiredis's arrays, refused beyond a sane size rather than allocated */

static void *
ngx_http_ai_redis_create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > NGX_HTTP_AI_REDIS_MAX_ELEMENTS) {
        return NULL;
    }

    return ngx_http_ai_redis_reply_default->createArray(task, elements);
}
