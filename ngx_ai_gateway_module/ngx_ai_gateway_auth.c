
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ngx_ai_gateway_auth_module: client keys.  ai_keys NAME file=PATH reads
 * a key file (ngx_ai_gateway_keys_file.c) at start and on reload into a
 * shared memory zone, as a table sorted by SHA-256 digest that every
 * worker reads under the zone's mutex; a reload swaps the table under
 * the same mutex.  ai_auth NAME checks, in the access phase of an
 * ai_gateway location, the key a request carries (Authorization: Bearer,
 * x-api-key, x-goog-api-key): its digest found and compared in constant
 * time, its expiry, and copies what the request needs into its pool, so
 * a request in flight keeps the key it started with.  The key's models=
 * keep models out of the request's plan (the plan hook); its name, team
 * and limits go to the limits (ngx_http_ai_limits_principal()).  The key
 * itself is never logged, answered, or sent to a provider.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_keys_file.h"


#define NGX_HTTP_AI_KEYS_MAX_FILE   (64 * 1024 * 1024)


/* a key as the zone keeps it */
typedef struct {
    u_char                          digest[NGX_AI_KEY_DIGEST_LEN];
    ngx_str_t                       name;
    ngx_str_t                       team;
    ngx_str_t                      *models;
    ngx_uint_t                      nmodels;  /* 0: any model */
    time_t                          expires;  /* 0: never */
    ngx_http_ai_principal_t         limits;
} ngx_http_ai_keyrec_t;


typedef struct {
    ngx_uint_t                      n;
    ngx_http_ai_keyrec_t           *recs;     /* by digest */
    size_t                          size;     /* of the whole table */
} ngx_http_ai_keytab_t;


typedef struct {
    ngx_http_ai_keytab_t           *tab;
    ngx_uint_t                      loads;    /* tables swapped in */
} ngx_http_ai_keys_sh_t;


/* one ai_keys */
typedef struct {
    ngx_str_t                       name;
    ngx_str_t                       file;
    ngx_http_ai_keytab_t           *tab;      /* read, in cf->pool */
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_ai_keys_sh_t          *sh;
    ngx_slab_pool_t                *shpool;
} ngx_http_ai_keys_t;


typedef struct {
    ngx_array_t                     stores;   /* ngx_http_ai_keys_t * */
} ngx_http_ai_auth_main_conf_t;


typedef struct {
    ngx_http_ai_keys_t             *keys;     /* NULL: off */
} ngx_http_ai_auth_loc_conf_t;


/* per main request: the key it was admitted with, copied */
typedef struct {
    ngx_http_ai_keyrec_t            key;
} ngx_http_ai_auth_ctx_t;


static char *ngx_http_ai_keys_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ai_keys_read(ngx_conf_t *cf,
    ngx_http_ai_keys_t *keys);
static ngx_int_t ngx_http_ai_keys_entry(ngx_conf_t *cf,
    ngx_http_ai_keys_t *keys, ngx_ai_key_entry_t *e);
static ngx_int_t ngx_http_ai_keys_table(ngx_conf_t *cf,
    ngx_http_ai_keys_t *keys, ngx_array_t *entries);
static int ngx_http_ai_keyrec_cmp(const void *a, const void *b);
static ngx_http_ai_keytab_t *ngx_http_ai_keys_copy(ngx_http_ai_keytab_t *src,
    u_char *dst);
static ngx_int_t ngx_http_ai_keys_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static char *ngx_http_ai_auth_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ai_auth_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_auth_presented(ngx_http_request_t *r,
    ngx_str_t *key);
static ngx_int_t ngx_http_ai_auth_lookup(ngx_http_request_t *r,
    ngx_http_ai_keys_t *keys, u_char *digest, ngx_http_ai_keyrec_t *out);
static ngx_int_t ngx_http_ai_auth_refuse(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *msg);
static ngx_int_t ngx_http_ai_auth_plan(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_model_t *m);
static ngx_int_t ngx_http_ai_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_auth_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_auth_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_auth_names(ngx_conf_t *cf);
static void *ngx_http_ai_auth_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_auth_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_auth_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);


static ngx_command_t  ngx_http_ai_auth_commands[] = {

    { ngx_string("ai_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_ai_keys_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_auth_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_ai_gateway_auth_module_ctx = {
    ngx_http_ai_auth_add_variables,        /* preconfiguration */
    ngx_http_ai_auth_init,                 /* postconfiguration */

    ngx_http_ai_auth_create_main_conf,     /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_auth_create_loc_conf,      /* create location configuration */
    ngx_http_ai_auth_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_ai_gateway_auth_module = {
    NGX_MODULE_V1,
    &ngx_ai_gateway_auth_module_ctx,       /* module context */
    ngx_http_ai_auth_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_ai_policy_t  ngx_http_ai_auth_policy = {
    NULL,                                  /* request */
    NULL,                                  /* admit */
    NULL,                                  /* attempt */
    NULL,                                  /* call_done */
    NULL,                                  /* headers */
    NULL,                                  /* answer */
    NULL,                                  /* error */
    NULL,                                  /* stream */
    NULL,                                  /* end */
    NULL,                                  /* log */
    ngx_http_ai_auth_plan                  /* plan */
};


static ngx_http_variable_t  ngx_http_ai_auth_vars[] = {

    { ngx_string("ai_key_name"), NULL,
      ngx_http_ai_auth_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_key_team"), NULL,
      ngx_http_ai_auth_variable, 1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* ai_keys NAME file=PATH */

static char *
ngx_http_ai_keys_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_auth_main_conf_t *amcf = conf;

    size_t               size;
    ngx_str_t           *value;
    ngx_uint_t           i;
    ngx_http_ai_keys_t  *keys, **k;

    value = cf->args->elts;

    if (!ngx_ai_keys_valid_name(value[1].data, value[1].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid ai_keys name "
                           "\"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[2].len <= 5 || ngx_strncmp(value[2].data, "file=", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ai_keys takes file=PATH, "
                           "not \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    k = amcf->stores.elts;

    for (i = 0; i < amcf->stores.nelts; i++) {
        if (k[i]->name.len == value[1].len
            && ngx_strncmp(k[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "duplicate ai_keys "
                               "\"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    keys = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_keys_t));
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    keys->name = value[1];
    keys->file.data = value[2].data + 5;
    keys->file.len = value[2].len - 5;

    if (ngx_conf_full_name(cf->cycle, &keys->file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_keys_read(cf, keys) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* room for the table twice (a reload copies the new one in before
     * the old one goes), in a size that small changes of the file keep,
     * so that a reload reuses the zone */

    size = 128 * 1024;

    while (size < 2 * keys->tab->size + 64 * 1024) {
        size *= 2;
    }

    keys->shm_zone = ngx_shared_memory_add(cf, &keys->name, size,
                                           &ngx_ai_gateway_auth_module);
    if (keys->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (keys->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "zone \"%V\" is already "
                           "used", &keys->name);
        return NGX_CONF_ERROR;
    }

    keys->shm_zone->init = ngx_http_ai_keys_init_zone;
    keys->shm_zone->data = keys;

    k = ngx_array_push(&amcf->stores);
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    *k = keys;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_keys_read(ngx_conf_t *cf, ngx_http_ai_keys_t *keys)
{
    u_char               *buf;
    ssize_t               n;
    ngx_fd_t              fd;
    ngx_int_t             rc;
    ngx_uint_t            i;
    ngx_file_t            file;
    ngx_array_t           entries;
    ngx_file_info_t       fi;
    ngx_ai_key_entry_t   *e;
    ngx_ai_keys_error_t   err;

    fd = ngx_open_file(keys->file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno, "ai_keys \"%V\": "
                           ngx_open_file_n " \"%V\" failed", &keys->name,
                           &keys->file);
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.fd = fd;
    file.name = keys->file;
    file.log = cf->log;

    rc = NGX_ERROR;
    buf = NULL;
    n = 0;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno, "ai_keys \"%V\": "
                           ngx_fd_info_n " \"%V\" failed", &keys->name,
                           &keys->file);

    } else if (ngx_file_size(&fi) > NGX_HTTP_AI_KEYS_MAX_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ai_keys \"%V\": \"%V\" is "
                           "larger than 64M", &keys->name, &keys->file);

    } else {
        buf = ngx_pnalloc(cf->pool, (size_t) ngx_file_size(&fi) + 1);

        if (buf) {
            n = ngx_read_file(&file, buf, (size_t) ngx_file_size(&fi), 0);
            rc = (n == NGX_ERROR) ? NGX_ERROR : NGX_OK;
        }
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", &keys->file);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&entries, cf->pool, 16, sizeof(ngx_ai_key_entry_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&err, sizeof(ngx_ai_keys_error_t));

    rc = ngx_ai_keys_parse(cf->pool, buf, n, &entries, &err);

    if (rc == NGX_DECLINED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ai_keys \"%V\": %V:%ui: "
                           "%s", &keys->name, &keys->file, err.line,
                           err.why);
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    e = entries.elts;

    for (i = 0; i < entries.nelts; i++) {
        if (ngx_http_ai_keys_entry(cf, keys, &e[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    rc = ngx_ai_keys_check(cf->pool, &entries, &err);

    if (rc == NGX_DECLINED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ai_keys \"%V\": %V:%ui: "
                           "%s (and line %ui)", &keys->name, &keys->file,
                           err.line, err.why, err.other);
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_keys_table(cf, keys, &entries);
}


/* a plain: key hashed (and warned of); a budget's figure checked */

static ngx_int_t
ngx_http_ai_keys_entry(ngx_conf_t *cf, ngx_http_ai_keys_t *keys,
    ngx_ai_key_entry_t *e)
{
    uint64_t  nano;

    if (e->plain.len) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0, "ai_keys \"%V\": %V:%ui: a "
                           "plain: key is for tests; store its sha256: in "
                           "production", &keys->name, &keys->file, e->line);

        if (ngx_http_ai_sha256(e->plain.data, e->plain.len, e->digest)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (e->budget.len
        && ngx_http_ai_parse_usd(e->budget.data, e->budget.len,
                                 NGX_HTTP_AI_MAX_BUDGET, &nano)
           != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ai_keys \"%V\": %V:%ui: "
                           "invalid budget=", &keys->name, &keys->file,
                           e->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the entries as a table sorted by digest, with their teams' budgets */

static ngx_int_t
ngx_http_ai_keys_table(ngx_conf_t *cf, ngx_http_ai_keys_t *keys,
    ngx_array_t *entries)
{
    size_t                 size;
    uint64_t               nano;
    ngx_uint_t             i, j, n;
    ngx_ai_key_entry_t    *e;
    ngx_http_ai_keyrec_t  *k;
    ngx_http_ai_keytab_t  *tab;

    e = entries->elts;

    for (n = 0, i = 0; i < entries->nelts; i++) {
        if (e[i].type == NGX_AI_KEY_LINE) {
            n++;
        }
    }

    tab = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_keytab_t));
    if (tab == NULL) {
        return NGX_ERROR;
    }

    tab->recs = ngx_pcalloc(cf->pool, (n ? n : 1)
                                      * sizeof(ngx_http_ai_keyrec_t));
    if (tab->recs == NULL) {
        return NGX_ERROR;
    }

    size = sizeof(ngx_http_ai_keytab_t) + n * sizeof(ngx_http_ai_keyrec_t);

    for (i = 0; i < entries->nelts; i++) {
        if (e[i].type != NGX_AI_KEY_LINE) {
            continue;
        }

        k = &tab->recs[tab->n++];

        ngx_memcpy(k->digest, e[i].digest, NGX_AI_KEY_DIGEST_LEN);
        k->name = e[i].name;
        k->team = e[i].team;
        k->expires = e[i].expires;

        if (e[i].models) {
            k->models = e[i].models->elts;
            k->nmodels = e[i].models->nelts;
        }

        if (ngx_http_ai_sha256(k->name.data, k->name.len, k->limits.digest)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        k->limits.rpm = (ngx_uint_t) e[i].rpm;
        k->limits.tpm = (ngx_uint_t) e[i].tpm;

        if (e[i].budget.len) {
            (void) ngx_http_ai_parse_usd(e[i].budget.data, e[i].budget.len,
                                         NGX_HTTP_AI_MAX_BUDGET,
                                         &k->limits.budget);
            k->limits.period = e[i].period;
            k->limits.has_budget = 1;
        }

        for (j = 0; k->team.len && j < entries->nelts; j++) {
            if (e[j].type == NGX_AI_KEY_TEAM
                && e[j].name.len == k->team.len
                && ngx_strncmp(e[j].name.data, k->team.data, k->team.len)
                   == 0)
            {
                (void) ngx_http_ai_parse_usd(e[j].budget.data,
                                             e[j].budget.len,
                                             NGX_HTTP_AI_MAX_BUDGET, &nano);
                k->limits.team_budget = nano;
                k->limits.team_period = e[j].period;
                k->limits.has_team_budget = 1;
            }
        }

        size += ngx_align(k->name.len + k->team.len, sizeof(void *))
                + k->nmodels * sizeof(ngx_str_t);

        for (j = 0; j < k->nmodels; j++) {
            size += ngx_align(k->models[j].len, sizeof(void *));
        }
    }

    ngx_qsort(tab->recs, tab->n, sizeof(ngx_http_ai_keyrec_t),
              ngx_http_ai_keyrec_cmp);

    tab->size = size;
    keys->tab = tab;

    return NGX_OK;
}


static int
ngx_http_ai_keyrec_cmp(const void *a, const void *b)
{
    return ngx_memcmp(((ngx_http_ai_keyrec_t *) a)->digest,
                      ((ngx_http_ai_keyrec_t *) b)->digest,
                      NGX_AI_KEY_DIGEST_LEN);
}


/* the table, strings and all, into one block of src->size bytes */

static ngx_http_ai_keytab_t *
ngx_http_ai_keys_copy(ngx_http_ai_keytab_t *src, u_char *dst)
{
    u_char                *p;
    ngx_uint_t             i, j;
    ngx_http_ai_keyrec_t  *k, *s;
    ngx_http_ai_keytab_t  *tab;

    tab = (ngx_http_ai_keytab_t *) dst;
    *tab = *src;

    p = dst + sizeof(ngx_http_ai_keytab_t);
    tab->recs = (ngx_http_ai_keyrec_t *) p;
    p += src->n * sizeof(ngx_http_ai_keyrec_t);

    for (i = 0; i < src->n; i++) {
        s = &src->recs[i];
        k = &tab->recs[i];
        *k = *s;

        k->models = (ngx_str_t *) p;
        p += s->nmodels * sizeof(ngx_str_t);

        for (j = 0; j < s->nmodels; j++) {
            k->models[j].len = s->models[j].len;
            k->models[j].data = p;
            ngx_memcpy(p, s->models[j].data, s->models[j].len);
            p += ngx_align(s->models[j].len, sizeof(void *));
        }

        k->name.data = p;
        p = ngx_cpymem(p, s->name.data, s->name.len);
        k->team.data = p;

        if (s->team.len) {              /* no team: data is NULL */
            p = ngx_cpymem(p, s->team.data, s->team.len);
        }

        p = ngx_align_ptr(p, sizeof(void *));
    }

    return tab;
}


/*
 * The zone gets the table this configuration read.  A reload that keeps
 * the zone swaps the table under the zone's mutex: the old cycle's
 * workers, still finishing their requests, see either table whole.
 */

static ngx_int_t
ngx_http_ai_keys_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    u_char                *p;
    ngx_uint_t             fresh;
    ngx_http_ai_keys_t    *keys;
    ngx_http_ai_keytab_t  *old;

    keys = shm_zone->data;

    keys->sh = ngx_http_ai_zone_state(shm_zone, data,
                                      sizeof(ngx_http_ai_keys_sh_t),
                                      "ai_keys", &keys->shpool, &fresh);
    if (keys->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_shmtx_lock(&keys->shpool->mutex);

    p = ngx_slab_alloc_locked(keys->shpool, keys->tab->size);

    if (p == NULL) {
        ngx_shmtx_unlock(&keys->shpool->mutex);
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ai_keys \"%V\": no room for the keys in its zone",
                      &keys->name);
        return NGX_ERROR;
    }

    old = keys->sh->tab;
    keys->sh->tab = ngx_http_ai_keys_copy(keys->tab, p);
    keys->sh->loads++;

    if (old) {
        ngx_slab_free_locked(keys->shpool, old);
    }

    ngx_shmtx_unlock(&keys->shpool->mutex);

    return NGX_OK;
}


/* ai_auth NAME | off */

static char *
ngx_http_ai_auth_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_auth_loc_conf_t *alcf = conf;

    ngx_str_t                     *value;
    ngx_uint_t                     i;
    ngx_http_ai_keys_t           **k;
    ngx_http_ai_auth_main_conf_t  *amcf;

    if (alcf->keys != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        alcf->keys = NULL;
        return NGX_CONF_OK;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_auth_module);
    k = amcf->stores.elts;

    for (i = 0; i < amcf->stores.nelts; i++) {
        if (k[i]->name.len == value[1].len
            && ngx_strncmp(k[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            alcf->keys = k[i];
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "unknown ai_keys \"%V\" (an "
                       "ai_keys line must come before)", &value[1]);

    return NGX_CONF_ERROR;
}


/*
 * The access phase of an ai_gateway location with ai_auth: a request
 * without a key of the store, or with an expired one, is answered 401
 * before its body is read.
 */

static ngx_int_t
ngx_http_ai_auth_handler(ngx_http_request_t *r)
{
    ngx_str_t                     key;
    ngx_http_ai_keyrec_t          rec;
    ngx_http_ai_auth_ctx_t       *ctx;
    ngx_http_ai_loc_conf_t       *gwcf;
    ngx_http_ai_auth_loc_conf_t  *alcf;
    u_char                        digest[NGX_AI_KEY_DIGEST_LEN];

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_auth_module);
    gwcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    if (alcf->keys == NULL || gwcf == NULL || gwcf->gateway != 1) {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_auth_presented(r, &key) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_auth: a request without a key");

        return ngx_http_ai_auth_refuse(r, NGX_HTTP_UNAUTHORIZED,
                                       "invalid_api_key", "Missing API key: "
                                       "send it as \"Authorization: Bearer "
                                       "KEY\" or \"x-api-key: KEY\".");
    }

    if (key.len > NGX_HTTP_AI_MAX_KEY_LEN
        || ngx_http_ai_sha256(key.data, key.len, digest) != NGX_OK
        || ngx_http_ai_auth_lookup(r, alcf->keys, digest, &rec) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_auth: a request with an unknown key");

        return ngx_http_ai_auth_refuse(r, NGX_HTTP_UNAUTHORIZED,
                                       "invalid_api_key", "Incorrect API "
                                       "key provided.");
    }

    if (rec.expires && rec.expires <= ngx_time()) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_auth: an expired key of \"%V\"", &rec.name);

        return ngx_http_ai_auth_refuse(r, NGX_HTTP_UNAUTHORIZED,
                                       "key_expired", "This API key has "
                                       "expired.");
    }

    ctx = ngx_palloc(r->pool, sizeof(ngx_http_ai_auth_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->key = rec;
    ctx->key.limits.name = rec.name;
    ctx->key.limits.team = rec.team;

    ngx_http_set_ctx(r, ctx, ngx_ai_gateway_auth_module);

    if (ngx_http_ai_limits_principal(r, &ctx->key.limits) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_auth: key of \"%V\"", &rec.name);

    return NGX_OK;
}


/* the key a request carries, in the headers the SDKs send */

static ngx_int_t
ngx_http_ai_auth_presented(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *auth;

    auth = r->headers_in.authorization;

    if (auth && auth->value.len > 7
        && ngx_strncasecmp(auth->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        key->data = auth->value.data + 7;
        key->len = auth->value.len - 7;

        while (key->len && key->data[0] == ' ') {
            key->data++;
            key->len--;
        }

        return key->len ? NGX_OK : NGX_DECLINED;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if ((h[i].key.len == sizeof("x-api-key") - 1
             && ngx_strncasecmp(h[i].key.data, (u_char *) "x-api-key",
                                sizeof("x-api-key") - 1) == 0)
            || (h[i].key.len == sizeof("x-goog-api-key") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "x-goog-api-key",
                                   sizeof("x-goog-api-key") - 1) == 0))
        {
            if (h[i].value.len == 0) {
                continue;
            }

            *key = h[i].value;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/*
 * The key of a digest, copied into the request's pool.  The search is by
 * the digest's order; the digest found is compared whole in constant
 * time.
 */

static ngx_int_t
ngx_http_ai_auth_lookup(ngx_http_request_t *r, ngx_http_ai_keys_t *keys,
    u_char *digest, ngx_http_ai_keyrec_t *out)
{
    u_char                *p;
    size_t                 size;
    ngx_int_t              rc;
    ngx_uint_t             lo, hi, mid, j;
    ngx_http_ai_keyrec_t  *k;
    ngx_http_ai_keytab_t  *tab;

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&keys->shpool->mutex);

    tab = keys->sh->tab;
    k = NULL;
    lo = 0;
    hi = tab ? tab->n : 0;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (ngx_memcmp(tab->recs[mid].digest, digest, NGX_AI_KEY_DIGEST_LEN)
            < 0)
        {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    if (tab && lo < tab->n
        && CRYPTO_memcmp(tab->recs[lo].digest, digest,
                         NGX_AI_KEY_DIGEST_LEN) == 0)
    {
        k = &tab->recs[lo];
    }

    if (k == NULL) {
        goto done;
    }

    size = k->name.len + k->team.len + k->nmodels * sizeof(ngx_str_t);

    for (j = 0; j < k->nmodels; j++) {
        size += k->models[j].len;
    }

    p = ngx_pnalloc(r->pool, ngx_align(size, sizeof(void *))
                             + sizeof(void *));
    if (p == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    *out = *k;

    out->models = (ngx_str_t *) ngx_align_ptr(p, sizeof(void *));
    p = (u_char *) (out->models + k->nmodels);

    for (j = 0; j < k->nmodels; j++) {
        out->models[j].len = k->models[j].len;
        out->models[j].data = p;
        p = ngx_cpymem(p, k->models[j].data, k->models[j].len);
    }

    out->name.data = p;
    p = ngx_cpymem(p, k->name.data, k->name.len);
    out->team.data = p;
    (void) ngx_cpymem(p, k->team.data, k->team.len);

    rc = NGX_OK;

done:

    ngx_shmtx_unlock(&keys->shpool->mutex);

    return rc;
}


/* a 401 or 403 in the route's API (OpenAI's, Anthropic's on messages) */

static ngx_int_t
ngx_http_ai_auth_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *msg)
{
    ngx_int_t          rc;
    ngx_str_t          body;
    ngx_buf_t         *b;
    ngx_chain_t        out;
    ngx_ai_error_t     err;
    ngx_ai_dialect_t  *dialect;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_ai_error_set(&err, status, "invalid_request_error", NULL, code, msg);

    dialect = ngx_ai_route_find(r->uri.data, r->uri.len)->dialect;

    rc = dialect ? dialect->error(r->pool, &err, &body)
                 : ngx_ai_error_render(r->pool, &err, &body);

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = body.len;

    b->pos = body.data;
    b->last = body.data + body.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_send_header(r);

    if (rc != NGX_ERROR && rc <= NGX_OK && !r->header_only) {
        rc = ngx_http_output_filter(r, &out);
    }

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


/* the plan hook: a model outside the key's models= is not planned */

static ngx_int_t
ngx_http_ai_auth_plan(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_model_t *m)
{
    ngx_http_ai_auth_ctx_t  *actx;

    actx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_auth_module);

    if (actx == NULL
        || ngx_ai_keys_model_allowed(actx->key.models, actx->key.nmodels,
                                     m->name.data, m->name.len))
    {
        return NGX_OK;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_auth: model \"%V\" not allowed", &m->name);

    return NGX_DECLINED;
}


/* $ai_key_name, $ai_key_team */

static ngx_int_t
ngx_http_ai_auth_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *s;
    ngx_http_ai_auth_ctx_t  *actx;

    actx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_auth_module);

    if (actx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = data ? &actx->key.team : &actx->key.name;

    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_auth_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ai_auth_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_auth_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_auth_handler;

    if (ngx_http_ai_auth_names(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_policy_add(cf, &ngx_http_ai_auth_policy);
}


/*
 * The names of the keys of every store (and their teams' accounts), for
 * the status to show by the digests the limits count them under: read by
 * this configuration, so that a reload's cycle has its own, and every
 * worker is forked with them.
 */

static ngx_int_t
ngx_http_ai_auth_names(ngx_conf_t *cf)
{
    ngx_uint_t                       i, j;
    ngx_http_ai_keys_t             **keys;
    ngx_http_ai_keyrec_t            *k;
    ngx_http_ai_auth_main_conf_t    *amcf;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_auth_module);
    lmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_ai_gateway_limits_module);

    keys = amcf->stores.elts;

    for (i = 0; i < amcf->stores.nelts; i++) {
        k = keys[i]->tab->recs;

        for (j = 0; j < keys[i]->tab->n; j++) {
            if (ngx_http_ai_key_names_add(cf->pool, &lmcf->key_names,
                                          &k[j].name, &k[j].team)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    ngx_http_ai_key_names_sort(lmcf->key_names);

    return NGX_OK;
}


static void *
ngx_http_ai_auth_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_auth_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_auth_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->stores, cf->pool, 1,
                       sizeof(ngx_http_ai_keys_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return amcf;
}


static void *
ngx_http_ai_auth_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_auth_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_auth_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    alcf->keys = NGX_CONF_UNSET_PTR;

    return alcf;
}


static char *
ngx_http_ai_auth_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_auth_loc_conf_t  *prev = parent;
    ngx_http_ai_auth_loc_conf_t  *conf = child;

    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);

    return NGX_CONF_OK;
}
