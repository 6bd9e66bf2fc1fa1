
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * A cost zone's state file (ai_cost_zone state=PATH): the zone written to
 * PATH, read back when the zone is created.  The format, its writer and
 * its reader are pure code in ngx_ai_gateway_state.c; this file opens,
 * writes and reads the file.
 *
 * Worker 0 writes the file on a timer (nothing is written when nothing
 * changed) and at its exit; the master writes it once more when it
 * exits, after every worker is gone.  A write goes to a new file of an
 * unpredictable name in PATH's directory (O_EXCL, O_NOFOLLOW), synced,
 * renamed over PATH, and the directory synced.  The directory belongs to
 * the worker processes' user, so a master running as root acts as that
 * user (its effective ids and groups) around whatever it does there:
 * reading the file at start, writing it at exit; if it cannot, it does
 * not.  The file is read with O_NOFOLLOW, must be a regular file, and is
 * read in chunks of 64k, a line at a time.
 *
 * "nginx -t" reads the file as a start would, loads nothing and warns
 * about what a start would skip or ignore, and about a directory the
 * worker processes' user cannot write in.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_state.h"


/* the state file's reader bounds what it reads by its own copies */
#if (NGX_AI_COST_STATE_DIGEST_LEN != NGX_HTTP_AI_DIGEST_LEN                 \
     || NGX_AI_COST_STATE_MAX_ROUTE != NGX_HTTP_AI_MAX_ROUTE_LEN            \
     || NGX_AI_COST_STATE_MAX_MODEL != NGX_AI_MAX_MODEL_LEN)
#error "ngx_ai_gateway_state.h and ngx_ai_gateway_limits.h disagree"
#endif


#define NGX_HTTP_AI_COST_CHUNK       65536

/* a save error is said at most this often (seconds) */
#define NGX_HTTP_AI_COST_SAVE_SAY    60


/* the ids a root process had before acting as the workers' user */
typedef struct {
    ngx_uint_t                switched;
    ngx_uid_t                 uid;
    ngx_gid_t                 gid;
    int                       ngroups;
    gid_t                    *groups;
} ngx_http_ai_cost_cred_t;


/* a file being read into a zone */
typedef struct {
    ngx_http_ai_cost_zone_t  *zone;
    ngx_uint_t                loaded;
    ngx_uint_t                batch;    /* nodes in the batch that was out */
    ngx_uint_t                no_room;
    ngx_http_ai_counters_t    sum;      /* of the ledger records read */
} ngx_http_ai_cost_load_t;


/* where a write failed */
typedef struct {
    char                     *op;
    u_char                   *name;
    ngx_err_t                 err;
} ngx_http_ai_cost_fail_t;


static ngx_uint_t ngx_http_ai_cost_is_writer(void);
static void ngx_http_ai_cost_timer_handler(ngx_event_t *ev);
static void ngx_http_ai_cost_save_all(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_ai_cost_save(ngx_http_ai_cost_zone_t *zone,
    ngx_cycle_t *cycle, ngx_log_t *log);
static ngx_int_t ngx_http_ai_cost_write(ngx_http_ai_cost_zone_t *zone,
    ngx_pool_t *pool, ngx_ai_buf_t *b, ngx_http_ai_cost_fail_t *fail);
static ngx_int_t ngx_http_ai_cost_temp_name(u_char *p);
static void ngx_http_ai_cost_save_error(ngx_http_ai_cost_zone_t *zone,
    ngx_log_t *log, ngx_http_ai_cost_fail_t *fail);
static ngx_int_t ngx_http_ai_cost_render(ngx_http_ai_cost_zone_t *zone,
    ngx_ai_buf_t *b);
static ngx_int_t ngx_http_ai_cost_render_delta(ngx_ai_buf_t *b,
    ngx_http_ai_cost_node_t *cn, ngx_ai_cost_state_rec_t *rec);
static void ngx_http_ai_cost_load_delta(ngx_http_ai_cost_load_t *ctx,
    ngx_http_ai_cost_node_t *cn, ngx_ai_cost_state_rec_t *rec);
static void ngx_http_ai_cost_counters_set(ngx_http_ai_counters_t *c,
    uint64_t *n);
static void ngx_http_ai_cost_sync_restore(ngx_http_ai_cost_zone_t *zone,
    ngx_ai_cost_state_t *st, ngx_uint_t batch);
static void ngx_http_ai_cost_counters_get(ngx_http_ai_counters_t *c,
    uint64_t *n);
static ngx_int_t ngx_http_ai_cost_render_node(ngx_ai_buf_t *b,
    ngx_http_ai_cost_node_t *cn);
static u_char *ngx_http_ai_cost_dir(ngx_str_t *path, ngx_pool_t *pool,
    u_char **base);
static ngx_int_t ngx_http_ai_cost_as_worker(ngx_cycle_t *cycle,
    ngx_http_ai_cost_cred_t *cred, ngx_err_t *err, char **op);
static void ngx_http_ai_cost_as_before(ngx_http_ai_cost_cred_t *cred,
    ngx_log_t *log);
static void ngx_http_ai_cost_load(ngx_http_ai_cost_zone_t *zone,
    ngx_cycle_t *cycle, ngx_uint_t test);
static ngx_fd_t ngx_http_ai_cost_open(ngx_http_ai_cost_zone_t *zone,
    ngx_cycle_t *cycle, ngx_uint_t test);
static ngx_int_t ngx_http_ai_cost_read(ngx_fd_t fd, ngx_ai_cost_state_t *st,
    u_char *chunk, ngx_err_t *err);
static ngx_int_t ngx_http_ai_cost_load_rec(void *data,
    ngx_ai_cost_state_rec_t *rec);
static void ngx_http_ai_cost_loaded(ngx_http_ai_cost_zone_t *zone,
    ngx_ai_cost_state_t *st, ngx_http_ai_cost_load_t *ctx);
static void ngx_http_ai_cost_report(ngx_http_ai_cost_zone_t *zone,
    ngx_ai_cost_state_t *st, ngx_http_ai_cost_load_t *ctx, ngx_log_t *log,
    ngx_uint_t test);
static void ngx_http_ai_cost_corrupt(ngx_http_ai_cost_zone_t *zone,
    ngx_ai_cost_state_t *st, ngx_cycle_t *cycle, ngx_uint_t test);
static void ngx_http_ai_cost_test_dir(ngx_http_ai_cost_zone_t *zone,
    ngx_cycle_t *cycle);


/* ---- writing ---- */

static ngx_uint_t
ngx_http_ai_cost_is_writer(void)
{
    return (ngx_process == NGX_PROCESS_WORKER && ngx_worker == 0)
           || ngx_process == NGX_PROCESS_SINGLE;
}


ngx_int_t
ngx_http_ai_cost_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_event_t                     *ev;
    ngx_shm_zone_t                 **zones;
    ngx_http_ai_cost_zone_t         *zone;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    if (!ngx_http_ai_cost_is_writer()) {
        return NGX_OK;
    }

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_ai_gateway_limits_module);
    if (lmcf == NULL) {
        return NGX_OK;
    }

    zones = lmcf->cost_zones.elts;

    for (i = 0; i < lmcf->cost_zones.nelts; i++) {
        zone = zones[i]->data;

        if (zone->state.len == 0) {
            continue;
        }

        ev = ngx_pcalloc(cycle->pool, sizeof(ngx_event_t));
        if (ev == NULL) {
            return NGX_ERROR;
        }

        ev->handler = ngx_http_ai_cost_timer_handler;
        ev->data = zone;
        ev->log = cycle->log;
        ev->cancelable = 1;

        zone->timer = ev;

        ngx_add_timer(ev, zone->interval);
    }

    return NGX_OK;
}


static void
ngx_http_ai_cost_timer_handler(ngx_event_t *ev)
{
    ngx_http_ai_cost_zone_t  *zone;

    zone = ev->data;

    (void) ngx_http_ai_cost_save(zone, (ngx_cycle_t *) ngx_cycle, ev->log);

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, zone->interval);
    }
}


static void
ngx_http_ai_cost_save_all(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_shm_zone_t                 **zones;
    ngx_http_ai_cost_zone_t         *zone;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_ai_gateway_limits_module);
    if (lmcf == NULL) {
        return;
    }

    zones = lmcf->cost_zones.elts;

    for (i = 0; i < lmcf->cost_zones.nelts; i++) {
        zone = zones[i]->data;

        if (zone->state.len && zone->sh) {
            (void) ngx_http_ai_cost_save(zone, cycle, cycle->log);
        }
    }
}


void
ngx_http_ai_cost_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_ai_cost_is_writer()) {
        ngx_http_ai_cost_save_all(cycle);
    }
}


void
ngx_http_ai_cost_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_ai_cost_save_all(cycle);
}


static ngx_int_t
ngx_http_ai_cost_save(ngx_http_ai_cost_zone_t *zone, ngx_cycle_t *cycle,
    ngx_log_t *log)
{
    uint64_t                  gen;
    ngx_int_t                 rc;
    ngx_uint_t                records;
    ngx_pool_t               *pool;
    ngx_ai_buf_t              b;
    ngx_http_ai_cost_cred_t   cred;
    ngx_http_ai_cost_fail_t   fail;

    if (zone->sh->gen == zone->sh->saved_gen) {
        return NGX_OK;
    }

    pool = ngx_create_pool(16384, log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_init(&b, pool, 16384) != NGX_OK) {
        goto failed;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    gen = zone->sh->gen;
    records = zone->sh->entries + zone->sh->accounts;

    rc = ngx_http_ai_cost_render(zone, &b);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (rc != NGX_OK || ngx_ai_cost_state_write_end(&b, records) != NGX_OK) {
        goto failed;
    }

    fail.name = zone->state.data;

    if (ngx_http_ai_cost_as_worker(cycle, &cred, &fail.err, &fail.op)
        != NGX_OK)
    {
        ngx_http_ai_cost_save_error(zone, log, &fail);
        goto failed;
    }

    rc = ngx_http_ai_cost_write(zone, pool, &b, &fail);

    ngx_http_ai_cost_as_before(&cred, log);

    if (rc != NGX_OK) {
        ngx_http_ai_cost_save_error(zone, log, &fail);
        goto failed;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (zone->sh->saved_gen < gen) {
        zone->sh->saved_gen = gen;
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    if (zone->save_failed) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "ai_cost_zone \"%V\": its state is written to \"%V\" "
                      "again, after %ui failed writes",
                      &zone->shm_zone->shm.name, &zone->state,
                      zone->save_failed);

        zone->save_failed = 0;
        zone->save_unsaid = 0;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_CORE, log, 0,
                   "ai_cost_zone \"%V\": %ui records written to \"%V\"",
                   &zone->shm_zone->shm.name, records, &zone->state);

    ngx_destroy_pool(pool);

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


/*
 * b written to a new file in the state's directory, synced, renamed over
 * the state, the directory synced; the new file is removed on failure.
 */

static ngx_int_t
ngx_http_ai_cost_write(ngx_http_ai_cost_zone_t *zone, ngx_pool_t *pool,
    ngx_ai_buf_t *b, ngx_http_ai_cost_fail_t *fail)
{
    int          dfd;
    u_char      *dir, *base, *tmp, *p;
    size_t       len;
    ssize_t      n;
    ngx_fd_t     fd;
    ngx_uint_t   tries;

    dir = ngx_http_ai_cost_dir(&zone->state, pool, &base);
    if (dir == NULL) {
        fail->op = "no memory for";
        fail->err = 0;
        return NGX_ERROR;
    }

    fail->name = dir;

    dfd = open((char *) dir, O_RDONLY|O_DIRECTORY|O_CLOEXEC);

    if (dfd == -1) {
        fail->op = "open() of the directory";
        fail->err = ngx_errno;
        return NGX_ERROR;
    }

    len = ngx_strlen(base);

    tmp = ngx_pnalloc(pool, len + sizeof(".0123456789abcdef.tmp"));
    if (tmp == NULL) {
        (void) close(dfd);
        fail->op = "no memory for";
        fail->err = 0;
        return NGX_ERROR;
    }

    p = ngx_cpymem(tmp, base, len);

    fail->name = tmp;
    fd = NGX_INVALID_FILE;

    for (tries = 0; tries < 8; tries++) {

        if (ngx_http_ai_cost_temp_name(p) != NGX_OK) {
            (void) close(dfd);
            fail->op = "RAND_bytes() for the name of";
            fail->err = 0;
            return NGX_ERROR;
        }

        fd = openat(dfd, (char *) tmp,
                    O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC, 0600);

        if (fd != NGX_INVALID_FILE || ngx_errno != NGX_EEXIST) {
            break;
        }
    }

    if (fd == NGX_INVALID_FILE) {
        fail->op = "open()";
        fail->err = ngx_errno;
        (void) close(dfd);
        return NGX_ERROR;
    }

    for (p = b->data, len = b->len; len; p += n, len -= n) {
        n = ngx_write_fd(fd, p, len);

        if (n <= 0) {
            fail->op = ngx_write_fd_n;
            fail->err = n ? ngx_errno : NGX_ENOSPC;
            goto failed;
        }
    }

    if (fsync(fd) == -1) {
        fail->op = "fsync()";
        fail->err = ngx_errno;
        goto failed;
    }

    if (close(fd) == -1) {
        fd = NGX_INVALID_FILE;
        fail->op = ngx_close_file_n;
        fail->err = ngx_errno;
        goto failed;
    }

    fd = NGX_INVALID_FILE;

    if (renameat(dfd, (char *) tmp, dfd, (char *) base) == -1) {
        fail->op = "rename() over the state file of";
        fail->err = ngx_errno;
        goto failed;
    }

    /* some file systems cannot sync a directory: EINVAL */

    if (fsync(dfd) == -1 && ngx_errno != NGX_EINVAL) {
        fail->op = "fsync() of the directory";
        fail->err = ngx_errno;
        fail->name = dir;
        (void) close(dfd);
        return NGX_ERROR;
    }

    (void) close(dfd);

    return NGX_OK;

failed:

    if (fd != NGX_INVALID_FILE) {
        (void) close(fd);
    }

    (void) unlinkat(dfd, (char *) tmp, 0);
    (void) close(dfd);

    return NGX_ERROR;
}


/* ".XXXXXXXXXXXXXXXX.tmp", 16 random hex digits, NUL-terminated */

static ngx_int_t
ngx_http_ai_cost_temp_name(u_char *p)
{
    u_char  rnd[8];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return NGX_ERROR;
    }

    *p++ = '.';
    p = ngx_hex_dump(p, rnd, sizeof(rnd));
    (void) ngx_cpystrn(p, (u_char *) ".tmp", sizeof(".tmp"));

    return NGX_OK;
}


/* said at most once a minute, with the failures since */

static void
ngx_http_ai_cost_save_error(ngx_http_ai_cost_zone_t *zone, ngx_log_t *log,
    ngx_http_ai_cost_fail_t *fail)
{
    time_t  now;

    zone->save_failed++;
    zone->save_unsaid++;

    now = ngx_time();

    if (zone->save_logged
        && now - zone->save_logged < NGX_HTTP_AI_COST_SAVE_SAY)
    {
        return;
    }

    if (zone->save_unsaid > 1) {
        ngx_log_error(NGX_LOG_ERR, log, fail->err,
                      "ai_cost_zone \"%V\": cannot write its state: %s "
                      "\"%s\" failed, %ui failed writes since the last "
                      "such message (said at most once a minute)",
                      &zone->shm_zone->shm.name, fail->op, fail->name,
                      zone->save_unsaid);

    } else {
        ngx_log_error(NGX_LOG_ERR, log, fail->err,
                      "ai_cost_zone \"%V\": cannot write its state: %s "
                      "\"%s\" failed (said at most once a minute)",
                      &zone->shm_zone->shm.name, fail->op, fail->name);
    }

    zone->save_logged = now;
    zone->save_unsaid = 0;
}


/*
 * The records, called locked: the budget accounts first, then the ledger
 * entries, each oldest first, so that a file cut short keeps the
 * accounts and reading it back rebuilds the LRU order of each.
 */

static ngx_int_t
ngx_http_ai_cost_render(ngx_http_ai_cost_zone_t *zone, ngx_ai_buf_t *b)
{
    ngx_uint_t                i;
    ngx_queue_t              *q;
    ngx_http_ai_sync_sh_t    *sy;
    ngx_http_ai_cost_node_t  *cn;
    uint64_t                  n[NGX_AI_COST_STATE_TOTALS];
    uint64_t                  s[NGX_AI_COST_STATE_TOTALS];

    static ngx_uint_t  types[] = { NGX_HTTP_AI_COST_ACCOUNT,
                                   NGX_HTTP_AI_COST_LEDGER };

    ngx_http_ai_cost_counters_get(&zone->sh->totals, n);

    if (ngx_ai_cost_state_write_head(b, &zone->shm_zone->shm.name,
                                     (uint64_t) ngx_time(), n)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (zone->sync) {
        /* what is not acknowledged by Redis yet, for after a restart */

        sy = &zone->sh->sync;

        ngx_http_ai_cost_counters_get(&zone->sh->pend, n);
        ngx_http_ai_cost_counters_get(&zone->sh->send, s);

        if (ngx_ai_cost_state_write_sync(b, sy->instance, sy->seq,
                                         sy->frozen, n, s)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < 2; i++) {

        for (q = ngx_queue_last(&zone->sh->queue);
             q != ngx_queue_sentinel(&zone->sh->queue);
             q = ngx_queue_prev(q))
        {
            cn = ngx_queue_data(q, ngx_http_ai_cost_node_t, queue);

            if (cn->type == types[i]
                && ngx_http_ai_cost_render_node(b, cn) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_cost_render_node(ngx_ai_buf_t *b, ngx_http_ai_cost_node_t *cn)
{
    u_char                   *digest;
    ngx_http_ai_counters_t   *c;
    ngx_ai_cost_state_rec_t   rec;

    ngx_memzero(&rec, sizeof(ngx_ai_cost_state_rec_t));

    ngx_http_ai_cost_node_parts(cn, &digest, &rec.route, &rec.model);

    if (digest) {
        rec.keyed = 1;
        ngx_memcpy(rec.digest, digest, NGX_HTTP_AI_DIGEST_LEN);
    }

    if (cn->type == NGX_HTTP_AI_COST_LEDGER) {
        c = &cn->u.ledger.c;

        rec.type = NGX_AI_COST_STATE_LEDGER;
        rec.n[0] = c->requests;
        rec.n[1] = c->errors;
        rec.n[2] = c->input_tokens;
        rec.n[3] = c->output_tokens;
        rec.n[4] = c->cost;
        rec.n[5] = c->aborted;
        rec.n[6] = c->est_input_tokens;
        rec.n[7] = c->est_cost;
        rec.n[8] = (uint64_t) cn->u.ledger.first;
        rec.n[9] = (uint64_t) cn->u.ledger.last;

    } else {
        rec.type = NGX_AI_COST_STATE_ACCOUNT;
        rec.n[0] = cn->u.account.day;
        rec.n[1] = cn->u.account.day_spend;
        rec.n[2] = cn->u.account.month;
        rec.n[3] = cn->u.account.month_spend;
        rec.n[4] = cn->u.account.total;
        rec.n[5] = (uint64_t) cn->u.account.last;
    }

    if (ngx_ai_cost_state_write_rec(b, &rec) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cn->delta == NULL && !cn->batch) {
        return NGX_OK;
    }

    return ngx_http_ai_cost_render_delta(b, cn, &rec);
}


/* a node's deltas not acknowledged by Redis, after its record */

static ngx_int_t
ngx_http_ai_cost_render_delta(ngx_ai_buf_t *b, ngx_http_ai_cost_node_t *cn,
    ngx_ai_cost_state_rec_t *rec)
{
    ngx_uint_t                  i;
    uint64_t                    n[NGX_AI_COST_STATE_TOTALS];
    ngx_http_ai_spend_delta_t  *sd;

    rec->batch = cn->batch ? 1 : 0;
    ngx_memzero(rec->d, sizeof(rec->d));

    if (cn->type == NGX_HTTP_AI_COST_LEDGER) {
        rec->type = NGX_AI_COST_STATE_DLEDGER;

        if (cn->delta) {
            ngx_http_ai_cost_counters_get(&cn->delta->u.ledger.pend, n);

            for (i = 0; i < NGX_AI_COST_STATE_TOTALS; i++) {
                rec->d[i] = (int64_t) n[i];
            }

            ngx_http_ai_cost_counters_get(&cn->delta->u.ledger.send, n);

            for (i = 0; i < NGX_AI_COST_STATE_TOTALS; i++) {
                rec->d[NGX_AI_COST_STATE_TOTALS + i] = (int64_t) n[i];
            }
        }

    } else {
        rec->type = NGX_AI_COST_STATE_DACCOUNT;

        for (i = 0; cn->delta && i < 2; i++) {
            sd = i ? &cn->delta->u.account.send : &cn->delta->u.account.pend;

            rec->d[5 * i] = (int64_t) sd->day;
            rec->d[5 * i + 1] = sd->day_spend;
            rec->d[5 * i + 2] = (int64_t) sd->month;
            rec->d[5 * i + 3] = sd->month_spend;
            rec->d[5 * i + 4] = sd->total;
        }
    }

    return ngx_ai_cost_state_write_delta(b, rec);
}


/* the counters in the state file's order, and back */

static void
ngx_http_ai_cost_counters_get(ngx_http_ai_counters_t *c, uint64_t *n)
{
    n[0] = c->requests;
    n[1] = c->errors;
    n[2] = c->input_tokens;
    n[3] = c->output_tokens;
    n[4] = c->cost;
    n[5] = c->aborted;
    n[6] = c->est_input_tokens;
    n[7] = c->est_cost;
}


static void
ngx_http_ai_cost_counters_set(ngx_http_ai_counters_t *c, uint64_t *n)
{
    c->requests = n[0];
    c->errors = n[1];
    c->input_tokens = n[2];
    c->output_tokens = n[3];
    c->cost = n[4];
    c->aborted = n[5];
    c->est_input_tokens = n[6];
    c->est_cost = n[7];
}


/* the state's directory, NUL-terminated, and its file name in *base */

static u_char *
ngx_http_ai_cost_dir(ngx_str_t *path, ngx_pool_t *pool, u_char **base)
{
    u_char  *dir, *slash;
    size_t   len;

    slash = path->data + path->len;

    while (slash > path->data && slash[-1] != '/') {
        slash--;
    }

    *base = slash;

    len = slash - path->data;

    if (len > 1) {
        len--;                                /* not the trailing "/" */
    }

    dir = ngx_pnalloc(pool, len + 2);
    if (dir == NULL) {
        return NULL;
    }

    if (len == 0) {
        dir[0] = '.';
        len = 1;

    } else {
        ngx_memcpy(dir, path->data, len);
    }

    dir[len] = '\0';

    return dir;
}


/*
 * A root process whose workers run as another user (the "user"
 * directive, or nobody by default) takes that user's effective ids and
 * groups; ngx_http_ai_cost_as_before() gives its own back.  Others stay
 * as they are (workers have the right ids already).
 */

static ngx_int_t
ngx_http_ai_cost_as_worker(ngx_cycle_t *cycle, ngx_http_ai_cost_cred_t *cred,
    ngx_err_t *err, char **op)
{
    int               n;
    ngx_core_conf_t  *ccf;

    cred->switched = 0;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (geteuid() != 0 || ccf == NULL
        || ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT || ccf->user == 0)
    {
        return NGX_OK;
    }

    cred->uid = geteuid();
    cred->gid = getegid();

    n = getgroups(0, NULL);

    if (n < 0) {
        *err = ngx_errno;
        *op = "getgroups() before acting as the worker processes' user for";
        return NGX_ERROR;
    }

    cred->groups = ngx_alloc((n + 1) * sizeof(gid_t), cycle->log);
    if (cred->groups == NULL) {
        *err = 0;
        *op = "no memory to act as the worker processes' user for";
        return NGX_ERROR;
    }

    cred->ngroups = getgroups(n, cred->groups);

    if (cred->ngroups < 0) {
        *err = ngx_errno;
        *op = "getgroups() before acting as the worker processes' user for";
        goto failed;
    }

    if ((ccf->username ? initgroups(ccf->username, ccf->group)
                       : setgroups(1, &ccf->group))
        == -1)
    {
        *err = ngx_errno;
        *op = "initgroups() to act as the worker processes' user for";
        goto failed;
    }

    cred->switched = 1;

    if (setegid(ccf->group) == -1) {
        *err = ngx_errno;
        *op = "setegid() to act as the worker processes' user for";
        ngx_http_ai_cost_as_before(cred, cycle->log);
        return NGX_ERROR;
    }

    if (seteuid(ccf->user) == -1) {
        *err = ngx_errno;
        *op = "seteuid() to act as the worker processes' user for";
        ngx_http_ai_cost_as_before(cred, cycle->log);
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    ngx_free(cred->groups);

    return NGX_ERROR;
}


static void
ngx_http_ai_cost_as_before(ngx_http_ai_cost_cred_t *cred, ngx_log_t *log)
{
    if (!cred->switched) {
        return;
    }

    cred->switched = 0;

    if (seteuid(cred->uid) == -1
        || setegid(cred->gid) == -1
        || setgroups(cred->ngroups, cred->groups) == -1)
    {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "ai_cost_zone: cannot take back the ids of the "
                      "process after acting as the worker processes' user");
    }

    ngx_free(cred->groups);
}


/* ---- reading ---- */

/*
 * Every zone this cycle created reads its state file, once the cycle is
 * configured (the workers' user is known); "nginx -t" checks it.
 */

ngx_int_t
ngx_http_ai_cost_state_init_module(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_shm_zone_t                 **zones;
    ngx_http_ai_cost_zone_t         *zone;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_ai_gateway_limits_module);
    if (lmcf == NULL) {
        return NGX_OK;
    }

    zones = lmcf->cost_zones.elts;

    for (i = 0; i < lmcf->cost_zones.nelts; i++) {
        zone = zones[i]->data;

        if (zone->state.len == 0 || !zone->fresh || zone->sh == NULL) {
            continue;
        }

        zone->fresh = 0;

        if (ngx_test_config) {
            ngx_http_ai_cost_test_dir(zone, cycle);
        }

        ngx_http_ai_cost_load(zone, cycle, ngx_test_config);
    }

    return NGX_OK;
}


/*
 * Version 2: the records that check out go into the zone as they are
 * read.  Version 1: read twice, checked whole then loaded.  test: read
 * and told about, nothing loaded.
 */

static void
ngx_http_ai_cost_load(ngx_http_ai_cost_zone_t *zone, ngx_cycle_t *cycle,
    ngx_uint_t test)
{
    u_char                   *chunk;
    ngx_fd_t                  fd;
    ngx_err_t                 err;
    ngx_uint_t                pass, level;
    ngx_ai_cost_state_t      *st;
    ngx_http_ai_cost_load_t   ctx;

    fd = ngx_http_ai_cost_open(zone, cycle, test);

    if (fd == NGX_INVALID_FILE) {
        return;
    }

    st = ngx_alloc(sizeof(ngx_ai_cost_state_t), cycle->log);
    chunk = ngx_alloc(NGX_HTTP_AI_COST_CHUNK, cycle->log);

    if (st == NULL || chunk == NULL) {
        goto done;
    }

    ngx_memzero(&ctx, sizeof(ngx_http_ai_cost_load_t));
    ctx.zone = zone;

    if (!test) {
        ngx_shmtx_lock(&zone->shpool->mutex);
        zone->sh->evicted = 0;
        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    for (pass = 0; pass < 2; pass++) {

        ngx_ai_cost_state_init(st, &zone->shm_zone->shm.name,
                               test ? NULL : ngx_http_ai_cost_load_rec,
                               &ctx, pass);

        if (pass && lseek(fd, 0, SEEK_SET) == -1) {
            err = ngx_errno;
            goto failed;
        }

        if (ngx_http_ai_cost_read(fd, st, chunk, &err) != NGX_OK) {
            goto failed;
        }

        /* version 1, checked: read again to load it */

        if (test || st->version != 1 || st->why || pass) {
            break;
        }
    }

    if (st->why) {
        ngx_http_ai_cost_corrupt(zone, st, cycle, test);
        goto done;
    }

    if (!test) {
        ngx_http_ai_cost_loaded(zone, st, &ctx);
    }

    ngx_http_ai_cost_report(zone, st, &ctx, cycle->log, test);

    goto done;

failed:

    level = test ? NGX_LOG_WARN : NGX_LOG_ERR;

    ngx_log_error(level, cycle->log, err,
                  "ai_cost_zone \"%V\": cannot read its state, "
                  ngx_read_fd_n " \"%V\" failed; %s",
                  &zone->shm_zone->shm.name, &zone->state,
                  test ? "a start would begin with an empty zone"
                       : "starting with what was read before");

done:

    (void) ngx_close_file(fd);

    if (st) {
        ngx_free(st);
    }

    if (chunk) {
        ngx_free(chunk);
    }
}


/* the state file opened as the workers' user: not a link, a regular file */

static ngx_fd_t
ngx_http_ai_cost_open(ngx_http_ai_cost_zone_t *zone, ngx_cycle_t *cycle,
    ngx_uint_t test)
{
    char                     *op, *then;
    ngx_fd_t                  fd;
    ngx_err_t                 err;
    ngx_uint_t                level;
    ngx_file_info_t           fi;
    ngx_http_ai_cost_cred_t   cred;

    level = test ? NGX_LOG_WARN : NGX_LOG_ERR;
    then = test ? "a start would begin with an empty zone"
                : "starting empty";

    if (ngx_http_ai_cost_as_worker(cycle, &cred, &err, &op) != NGX_OK) {
        ngx_log_error(level, cycle->log, err,
                      "ai_cost_zone \"%V\": cannot read its state: %s "
                      "\"%V\" failed; %s", &zone->shm_zone->shm.name, op,
                      &zone->state, then);
        return NGX_INVALID_FILE;
    }

    fd = open((char *) zone->state.data,
              O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC);
    err = ngx_errno;

    ngx_http_ai_cost_as_before(&cred, cycle->log);

    if (fd == NGX_INVALID_FILE) {

        if (err == NGX_ENOENT) {
            if (!test) {
                ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                              "ai_cost_zone \"%V\": no state file \"%V\" "
                              "yet, starting empty",
                              &zone->shm_zone->shm.name, &zone->state);
            }

        } else if (err == NGX_ELOOP) {
            ngx_log_error(level, cycle->log, 0,
                          "ai_cost_zone \"%V\": the state file \"%V\" is a "
                          "symbolic link, which is not followed: it is "
                          "ignored and left as it is; %s",
                          &zone->shm_zone->shm.name, &zone->state, then);

        } else {
            ngx_log_error(level, cycle->log, err,
                          "ai_cost_zone \"%V\": cannot read its state, "
                          "open() \"%V\" as the worker processes' user "
                          "failed; %s", &zone->shm_zone->shm.name,
                          &zone->state, then);
        }

        return NGX_INVALID_FILE;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(level, cycle->log, ngx_errno,
                      "ai_cost_zone \"%V\": cannot read its state, "
                      ngx_fd_info_n " \"%V\" failed; %s",
                      &zone->shm_zone->shm.name, &zone->state, then);
        (void) ngx_close_file(fd);
        return NGX_INVALID_FILE;
    }

    if (!ngx_is_file(&fi)) {
        ngx_log_error(level, cycle->log, 0,
                      "ai_cost_zone \"%V\": the state file \"%V\" is not a "
                      "regular file: it is ignored and left as it is; %s",
                      &zone->shm_zone->shm.name, &zone->state, then);
        (void) ngx_close_file(fd);
        return NGX_INVALID_FILE;
    }

    return fd;
}


/* the file in chunks, the reader fed until it has had it all or stops */

static ngx_int_t
ngx_http_ai_cost_read(ngx_fd_t fd, ngx_ai_cost_state_t *st, u_char *chunk,
    ngx_err_t *err)
{
    ssize_t  n;

    for ( ;; ) {
        n = read(fd, chunk, NGX_HTTP_AI_COST_CHUNK);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                continue;
            }

            *err = ngx_errno;
            return NGX_ERROR;
        }

        if (n == 0) {
            break;
        }

        if (ngx_ai_cost_state_feed(st, chunk, (size_t) n) != NGX_OK) {
            return NGX_OK;
        }
    }

    ngx_ai_cost_state_finish(st);

    return NGX_OK;
}


/* a record read, into the zone */

static ngx_int_t
ngx_http_ai_cost_load_rec(void *data, ngx_ai_cost_state_rec_t *rec)
{
    ngx_http_ai_cost_load_t *ctx = data;

    size_t                    len;
    ngx_uint_t                ledger, delta;
    ngx_http_ai_counters_t   *c;
    ngx_http_ai_cost_zone_t  *zone;
    ngx_http_ai_cost_node_t  *cn;
    u_char                    id[NGX_HTTP_AI_COST_ID_LEN];

    zone = ctx->zone;
    ledger = (rec->type == NGX_AI_COST_STATE_LEDGER
              || rec->type == NGX_AI_COST_STATE_DLEDGER);
    delta = (rec->type == NGX_AI_COST_STATE_DLEDGER
             || rec->type == NGX_AI_COST_STATE_DACCOUNT);

    if (delta && zone->sync == NULL) {
        /* the zone no longer syncs: nothing to push them to */
        return NGX_OK;
    }

    if (ledger && !delta) {
        c = &ctx->sum;

        c->requests += rec->n[0];
        c->errors += rec->n[1];
        c->input_tokens += rec->n[2];
        c->output_tokens += rec->n[3];
        c->cost += rec->n[4];
        c->aborted += rec->n[5];
        c->est_input_tokens += rec->n[6];
        c->est_cost += rec->n[7];

    }

    if (ledger) {
        len = ngx_http_ai_cost_ledger_id(id, rec->keyed, rec->digest,
                                         &rec->route, &rec->model);
    } else {
        len = ngx_http_ai_cost_account_id(id, rec->keyed, rec->digest,
                                          &rec->route);
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    cn = ngx_http_ai_cost_get(zone, id, len,
                              (ledger || !rec->keyed) ? rec->route.len : 0,
                              rec->model.len, 1);
    if (cn == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        ctx->no_room++;
        return NGX_OK;
    }

    if (delta) {
        ngx_http_ai_cost_load_delta(ctx, cn, rec);
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_OK;
    }

    if (ledger) {
        c = &cn->u.ledger.c;

        c->requests = rec->n[0];
        c->errors = rec->n[1];
        c->input_tokens = rec->n[2];
        c->output_tokens = rec->n[3];
        c->cost = rec->n[4];
        c->aborted = rec->n[5];
        c->est_input_tokens = rec->n[6];
        c->est_cost = rec->n[7];
        cn->u.ledger.first = (time_t) rec->n[8];
        cn->u.ledger.last = (time_t) rec->n[9];

    } else {
        cn->u.account.day = rec->n[0];
        cn->u.account.day_spend = rec->n[1];
        cn->u.account.month = rec->n[2];
        cn->u.account.month_spend = rec->n[3];
        cn->u.account.total = rec->n[4];
        cn->u.account.last = (time_t) rec->n[5];
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ctx->loaded++;

    return NGX_OK;
}


/*
 * A node's deltas read back: pushed after the start (the batch that was
 * out, sent again with its number).  Called locked.
 */

static void
ngx_http_ai_cost_load_delta(ngx_http_ai_cost_load_t *ctx,
    ngx_http_ai_cost_node_t *cn, ngx_ai_cost_state_rec_t *rec)
{
    ngx_uint_t                  i;
    uint64_t                    n[NGX_AI_COST_STATE_TOTALS];
    ngx_http_ai_spend_delta_t  *sd;
    ngx_http_ai_cost_delta_t   *delta;

    if ((rec->type == NGX_AI_COST_STATE_DLEDGER)
        != (cn->type == NGX_HTTP_AI_COST_LEDGER))
    {
        return;
    }

    cn->count++;                  /* not to be evicted for its delta */
    delta = ngx_http_ai_cost_delta(ctx->zone, cn);
    cn->count--;

    if (delta == NULL) {
        ctx->no_room++;
        return;
    }

    if (rec->batch && !cn->batch) {
        cn->batch = 1;
        ctx->batch++;
    }

    if (cn->type == NGX_HTTP_AI_COST_LEDGER) {
        for (i = 0; i < NGX_AI_COST_STATE_TOTALS; i++) {
            n[i] = rec->d[i] > 0 ? (uint64_t) rec->d[i] : 0;
        }

        ngx_http_ai_cost_counters_set(&delta->u.ledger.pend, n);

        for (i = 0; i < NGX_AI_COST_STATE_TOTALS; i++) {
            n[i] = rec->d[NGX_AI_COST_STATE_TOTALS + i] > 0
                   ? (uint64_t) rec->d[NGX_AI_COST_STATE_TOTALS + i] : 0;
        }

        ngx_http_ai_cost_counters_set(&delta->u.ledger.send, n);

        return;
    }

    for (i = 0; i < 2; i++) {
        sd = i ? &delta->u.account.send : &delta->u.account.pend;

        sd->day = rec->d[5 * i] > 0 ? (uint64_t) rec->d[5 * i] : 0;
        sd->day_spend = rec->d[5 * i + 1];
        sd->month = rec->d[5 * i + 2] > 0 ? (uint64_t) rec->d[5 * i + 2] : 0;
        sd->month_spend = rec->d[5 * i + 3];
        sd->total = rec->d[5 * i + 4];
    }
}


/*
 * The zone's batches as they were: its instance, the batch that was out
 * (sent again with its number, so that Redis applies it once) and the
 * totals' deltas.  The batches after it are numbered 2^20 on: a state
 * written before batches Redis applied later (nginx killed) must not
 * have the next ones taken as applied.  Called locked.
 */

static void
ngx_http_ai_cost_sync_restore(ngx_http_ai_cost_zone_t *zone,
    ngx_ai_cost_state_t *st, ngx_uint_t batch)
{
    ngx_http_ai_sync_sh_t  *sy;

    sy = &zone->sh->sync;

    ngx_memcpy(sy->instance, st->instance, NGX_HTTP_AI_SYNC_INSTANCE_LEN);

    ngx_http_ai_cost_counters_set(&zone->sh->pend, st->sync_pend);
    ngx_http_ai_cost_counters_set(&zone->sh->send, st->sync_send);

    sy->seq = st->seq;

    if (st->frozen) {
        sy->frozen = 1;
        sy->items = batch;
        sy->seq_jump = 1;

    } else {
        sy->seq += NGX_HTTP_AI_SYNC_SEQ_JUMP;
    }
}


/* the totals, as read or rebuilt from the ledger records read */

static void
ngx_http_ai_cost_loaded(ngx_http_ai_cost_zone_t *zone,
    ngx_ai_cost_state_t *st, ngx_http_ai_cost_load_t *ctx)
{
    ngx_http_ai_counters_t  *c;

    ngx_shmtx_lock(&zone->shpool->mutex);

    c = &zone->sh->totals;

    if (st->has_totals) {
        c->requests = st->totals[0];
        c->errors = st->totals[1];
        c->input_tokens = st->totals[2];
        c->output_tokens = st->totals[3];
        c->cost = st->totals[4];
        c->aborted = st->totals[5];
        c->est_input_tokens = st->totals[6];
        c->est_cost = st->totals[7];

    } else {
        *c = ctx->sum;
    }

    if (st->has_sync && zone->sync) {
        ngx_http_ai_cost_sync_restore(zone, st, ctx->batch);
    }

    ctx->no_room += zone->sh->evicted;

    /*
     * as read: nothing to write back until something changes, but a
     * version 1 file or one with damage is written anew soon
     */

    zone->sh->saved_gen = 1;
    zone->sh->gen = (st->version == 1 || st->skipped || st->truncated
                     || !st->has_totals || !st->has_zone)
                    ? 2 : 1;

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


static void
ngx_http_ai_cost_report(ngx_http_ai_cost_zone_t *zone,
    ngx_ai_cost_state_t *st, ngx_http_ai_cost_load_t *ctx, ngx_log_t *log,
    ngx_uint_t test)
{
    u_char      *p, *last;
    ngx_str_t   *name;
    ngx_uint_t   i, level, records;
    u_char       lines[NGX_AI_COST_STATE_BAD * 64];

    name = &zone->shm_zone->shm.name;
    level = test ? NGX_LOG_WARN : NGX_LOG_ERR;
    records = st->accounts + st->ledgers;

    if (!test) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "ai_cost_zone \"%V\": %ui records read from \"%V\" "
                      "(%ui budget accounts, %ui ledger entries%s)",
                      name, ctx->loaded, &zone->state, st->accounts,
                      st->ledgers,
                      st->version == 1 ? ", a version 1 file" : "");
    }

    if (st->skipped) {
        p = lines;
        last = lines + sizeof(lines);

        for (i = 0; i < st->skipped && i < NGX_AI_COST_STATE_BAD; i++) {
            p = ngx_slprintf(p, last, "%sline %ui: %s", i ? "; " : "",
                             st->bad_line[i], st->bad_why[i]);
        }

        if (st->skipped > NGX_AI_COST_STATE_BAD) {
            p = ngx_slprintf(p, last, "; and %ui more",
                             st->skipped - NGX_AI_COST_STATE_BAD);
        }

        ngx_log_error(level, log, 0,
                      "ai_cost_zone \"%V\": the state file \"%V\" is "
                      "damaged: %ui lines do not check out and %s skipped "
                      "(%*s); %ui records %s read",
                      name, &zone->state, st->skipped,
                      test ? "would be" : "were", p - lines, lines,
                      records, test ? "would be" : "were");
    }

    if (st->truncated) {
        ngx_log_error(level, log, 0,
                      "ai_cost_zone \"%V\": the state file \"%V\" is "
                      "truncated after line %ui: what followed is lost "
                      "(the budget accounts come first in the file)",
                      name, &zone->state, st->lines);

    } else if (st->end_records != records) {
        ngx_log_error(level, log, 0,
                      "ai_cost_zone \"%V\": the state file \"%V\" had "
                      "%uL records, %ui check out",
                      name, &zone->state, st->end_records, records);
    }

    if (!st->has_totals) {
        ngx_log_error(level, log, 0,
                      "ai_cost_zone \"%V\": the totals line of \"%V\" is "
                      "damaged or missing: the zone totals %s rebuilt from "
                      "the %ui ledger entries read (they lack the figures "
                      "of entries dropped from the zone before the save)",
                      name, &zone->state, test ? "would be" : "were",
                      st->ledgers);
    }

    if (!st->has_zone && st->version == 2) {
        ngx_log_error(level, log, 0,
                      "ai_cost_zone \"%V\": the zone line of \"%V\" is "
                      "damaged or missing: the file %s read without "
                      "knowing that it is this zone's",
                      name, &zone->state, test ? "would be" : "was");
    }

    if (!test && ctx->no_room) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "ai_cost_zone \"%V\": %ui records of \"%V\" did not "
                      "fit in the zone and were dropped (the totals keep "
                      "their figures); make the zone larger",
                      name, ctx->no_room, &zone->state);
    }
}


/*
 * Nothing could be read: the file is reported, moved aside to
 * PATH.corrupt (as the workers' user) and ignored.
 */

static void
ngx_http_ai_cost_corrupt(ngx_http_ai_cost_zone_t *zone,
    ngx_ai_cost_state_t *st, ngx_cycle_t *cycle, ngx_uint_t test)
{
    char                     *op;
    u_char                   *bad;
    ngx_err_t                 err;
    ngx_uint_t                moved;
    ngx_http_ai_cost_cred_t   cred;
    u_char                    at[32];

    at[0] = '\0';

    if (st->why_line) {
        (void) ngx_sprintf(at, ", line %ui%Z", st->why_line);
    }

    if (test) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "ai_cost_zone \"%V\": the state file \"%V\" is "
                      "corrupt (%s%s): a start would ignore it, keep it as "
                      "\"%V.corrupt\" and begin with an empty zone",
                      &zone->shm_zone->shm.name, &zone->state, st->why, at,
                      &zone->state);
        return;
    }

    moved = 0;

    bad = ngx_alloc(zone->state.len + sizeof(".corrupt"), cycle->log);

    if (bad) {
        ngx_sprintf(bad, "%V.corrupt%Z", &zone->state);

        if (ngx_http_ai_cost_as_worker(cycle, &cred, &err, &op) != NGX_OK) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, err, "%s \"%V\" failed",
                          op, &zone->state);

        } else {
            if (ngx_rename_file(zone->state.data, bad) == NGX_FILE_ERROR) {
                ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                              ngx_rename_file_n " \"%V\" to \"%s\" failed",
                              &zone->state, bad);
            } else {
                moved = 1;
            }

            ngx_http_ai_cost_as_before(&cred, cycle->log);
        }
    }

    ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                  "ai_cost_zone \"%V\": the state file \"%V\" is corrupt "
                  "(%s%s) and is ignored; %s \"%s\"",
                  &zone->shm_zone->shm.name, &zone->state, st->why, at,
                  moved ? "it was kept as" : "it could not be moved to",
                  bad ? bad : (u_char *) "");

    if (bad) {
        ngx_free(bad);
    }
}


/* "nginx -t": can the workers' user make files in the state's directory */

static void
ngx_http_ai_cost_test_dir(ngx_http_ai_cost_zone_t *zone, ngx_cycle_t *cycle)
{
    int                       rc;
    char                     *op;
    u_char                   *dir, *base;
    ngx_err_t                 err;
    ngx_core_conf_t          *ccf;
    ngx_http_ai_cost_cred_t   cred;

    dir = ngx_http_ai_cost_dir(&zone->state, cycle->pool, &base);
    if (dir == NULL) {
        return;
    }

    if (ngx_http_ai_cost_as_worker(cycle, &cred, &err, &op) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, err,
                      "ai_cost_zone \"%V\": %s \"%V\" failed: its state "
                      "will not be saved", &zone->shm_zone->shm.name, op,
                      &zone->state);
        return;
    }

    rc = faccessat(AT_FDCWD, (char *) dir, W_OK|X_OK, AT_EACCESS);
    err = ngx_errno;

    ngx_http_ai_cost_as_before(&cred, cycle->log);

    if (rc == 0) {
        return;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    ngx_log_error(NGX_LOG_WARN, cycle->log, err,
                  "ai_cost_zone \"%V\": the worker processes' user (\"%s\") "
                  "cannot write in the directory \"%s\" of the state file "
                  "\"%V\": the state will not be saved",
                  &zone->shm_zone->shm.name,
                  (ccf && ccf->username) ? ccf->username : "this one",
                  dir, &zone->state);
}
