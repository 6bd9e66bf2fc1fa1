
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ngx_ai_gateway_cache_module: the edge response cache, on nginx's own
 * file cache (ngx_http_file_cache.c, the one proxy_cache uses: keys in a
 * shared zone, files on disk, its cache manager and loader).
 *
 *   ai_cache_path PATH keys_zone=NAME:SIZE [levels=] [max_size=]
 *                 [inactive=] ...   (proxy_cache_path's parameters)
 *   ai_cache NAME|off [ttl=] [streams=] [sampling=] [scope=] [tenant=]
 *                 [lock=] [lock_timeout=] [max_answer=]
 *   ai_cache_bypass $var ...
 *
 * The handler asks ngx_http_ai_cache_lookup() after admission; a hit is
 * sent by ngx_ai_gateway_cache_send.c.  The rest runs in this module's
 * policy hooks: the whole answer (answer) or the relayed stream (stream)
 * is kept as it goes out, before ai_guard and the client's dialect, and
 * written to the cache in the log phase (end) when the request ended
 * with a whole, successful answer; headers adds X-AI-Cache and Age.
 * Counters per cache (hits, savings) live in the zone "ai_cache_stats".
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"
#include "ngx_ai_gateway_cache.h"


#define NGX_HTTP_AI_CACHE_NONE      0
#define NGX_HTTP_AI_CACHE_MISS      1
#define NGX_HTTP_AI_CACHE_BYPASS    2
#define NGX_HTTP_AI_CACHE_EXPIRED   3
#define NGX_HTTP_AI_CACHE_HIT       4

#define NGX_HTTP_AI_CACHE_GLOBAL    0
#define NGX_HTTP_AI_CACHE_KEY       1
#define NGX_HTTP_AI_CACHE_TEAM      2

#define NGX_HTTP_AI_CACHE_MAX_STATS 64
#define NGX_HTTP_AI_CACHE_BUFFER    1024   /* nginx's header and key fit */


/* one cache's counters, in the zone ai_cache_stats */
typedef struct {
    u_char                      name[64];
    size_t                      len;
    ngx_atomic_t                hits;
    ngx_atomic_t                misses;
    ngx_atomic_t                expired;
    ngx_atomic_t                bypasses;
    ngx_atomic_t                stores;
    ngx_atomic_t                not_stored;  /* misses not worth keeping */
    ngx_atomic_t                collapsed;   /* waited on another's miss */
    ngx_atomic_t                saved_input;
    ngx_atomic_t                saved_output;
    ngx_atomic_t                saved_cost;  /* nano-USD */
} ngx_http_ai_cache_stats_t;


typedef struct {
    ngx_http_file_cache_t      *cache;
    ngx_http_ai_cache_stats_t  *stats;
} ngx_http_ai_cache_entry_t;


typedef struct {
    ngx_array_t                 caches;      /* ngx_http_file_cache_t * */
    ngx_array_t                 entries;     /* ngx_http_ai_cache_entry_t */
    ngx_shm_zone_t             *stats_zone;
    ngx_int_t                   key_name;    /* $ai_key_name */
    ngx_int_t                   key_team;    /* $ai_key_team */
} ngx_http_ai_cache_main_conf_t;


typedef struct {
    ngx_shm_zone_t             *zone;        /* NULL: off */
    ngx_flag_t                  set;         /* ai_cache given here */
    time_t                      ttl;
    ngx_flag_t                  streams;
    ngx_flag_t                  sampling;
    ngx_uint_t                  scope;
    ngx_http_complex_value_t   *tenant;
    ngx_flag_t                  lock;
    ngx_msec_t                  lock_timeout;
    size_t                      max_answer;
    ngx_array_t                *bypass;
} ngx_http_ai_cache_loc_conf_t;


typedef struct {
    ngx_uint_t                  status;      /* NGX_HTTP_AI_CACHE_* */
    ngx_http_ai_cache_entry_t  *entry;
    ngx_ai_cache_record_t       rec;         /* of a hit */
    ngx_ai_cache_chunks_t       chunks;      /* a stream, kept */
    ngx_str_t                   answer;      /* a whole answer, kept */
    void                      (*done)(ngx_http_request_t *r,
                                  ngx_int_t rc);
    u_char                      key[NGX_AI_CACHE_KEY_HEX];
    unsigned                    store:1;     /* the answer may be written */
    unsigned                    no_store:1;
    unsigned                    stream:1;
    unsigned                    waited:1;
} ngx_http_ai_cache_ctx_t;


static ngx_int_t ngx_http_ai_cache_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_cache_init(ngx_conf_t *cf);
static void *ngx_http_ai_cache_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_cache_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_cache_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_ai_cache_path(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ai_cache_init_stats(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_uint_t ngx_http_ai_cache_wanted(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_cache_loc_conf_t *clcf,
    ngx_http_ai_cache_ctx_t *cc);
static ngx_uint_t ngx_http_ai_cache_header_has(ngx_http_request_t *r,
    const char *name, const char *token);
static ngx_int_t ngx_http_ai_cache_make_key(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_cache_loc_conf_t *clcf,
    ngx_http_ai_cache_ctx_t *cc);
static ngx_int_t ngx_http_ai_cache_tenant(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_str_t *tenant);
static ngx_int_t ngx_http_ai_cache_api_key(ngx_http_request_t *r,
    ngx_str_t *value);
static ngx_int_t ngx_http_ai_cache_open(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *cc);
static void ngx_http_ai_cache_wake(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_cache_opened(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *cc, ngx_int_t rc);
static ngx_int_t ngx_http_ai_cache_read(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *cc);
static void ngx_http_ai_cache_ledger(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *cc);
static ngx_int_t ngx_http_ai_cache_answer_hook(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_ai_cache_stream_hook(ngx_http_request_t *r,
    ngx_str_t *data, ngx_uint_t last);
static ngx_int_t ngx_http_ai_cache_headers_hook(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static void ngx_http_ai_cache_end_hook(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_cache_store(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_cache_ctx_t *cc);
static ngx_int_t ngx_http_ai_cache_write(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *cc, ngx_str_t *record);
static ngx_int_t ngx_http_ai_cache_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_cache_prom_ratio(ngx_ai_buf_t *b,
    ngx_http_ai_cache_entry_t *e, ngx_uint_t n);


static ngx_str_t  ngx_http_ai_cache_names[] = {
    ngx_null_string,
    ngx_string("MISS"),
    ngx_string("BYPASS"),
    ngx_string("EXPIRED"),
    ngx_string("HIT")
};


static ngx_command_t  ngx_http_ai_cache_commands[] = {

    { ngx_string("ai_cache_path"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_cache_path,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_cache_main_conf_t, caches),
      &ngx_ai_gateway_cache_module },

    { ngx_string("ai_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_cache_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_cache_bypass"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_set_predicate_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_cache_loc_conf_t, bypass),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_ai_gateway_cache_module_ctx = {
    ngx_http_ai_cache_add_variables,       /* preconfiguration */
    ngx_http_ai_cache_init,                /* postconfiguration */

    ngx_http_ai_cache_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_cache_create_loc_conf,     /* create location configuration */
    ngx_http_ai_cache_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_ai_gateway_cache_module = {
    NGX_MODULE_V1,
    &ngx_ai_gateway_cache_module_ctx,      /* module context */
    ngx_http_ai_cache_commands,            /* module directives */
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


static ngx_http_ai_policy_t  ngx_http_ai_cache_policy = {
    NULL,                                  /* request */
    NULL,                                  /* admit */
    NULL,                                  /* attempt */
    NULL,                                  /* call_done */
    ngx_http_ai_cache_headers_hook,        /* headers */
    ngx_http_ai_cache_answer_hook,         /* answer */
    NULL,                                  /* error */
    ngx_http_ai_cache_stream_hook,         /* stream */
    ngx_http_ai_cache_end_hook,            /* end */
    NULL,                                  /* log */
    NULL                                   /* plan */
};


static ngx_str_t  ngx_http_ai_cache_status_name =
    ngx_string("ai_cache_status");
static ngx_str_t  ngx_http_ai_cache_stats_name =
    ngx_string("ai_cache_stats");


static ngx_int_t
ngx_http_ai_cache_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_ai_cache_status_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_ai_cache_status_variable;

    return NGX_OK;
}


/*
 * The policy goes in before ai_guard's (the module is listed before it),
 * so that what is kept is the answer before its response rules: a hit is
 * sent through them again, under the rules of the day.
 */

static ngx_int_t
ngx_http_ai_cache_init(ngx_conf_t *cf)
{
    ngx_str_t                       name;
    ngx_http_ai_cache_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_cache_module);

    if (cmcf->caches.nelts == 0) {
        return NGX_OK;
    }

    ngx_str_set(&name, "ai_key_name");
    cmcf->key_name = ngx_http_get_variable_index(cf, &name);

    ngx_str_set(&name, "ai_key_team");
    cmcf->key_team = ngx_http_get_variable_index(cf, &name);

    if (cmcf->key_name == NGX_ERROR || cmcf->key_team == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_ai_policy_add(cf, &ngx_http_ai_cache_policy);
}


static void *
ngx_http_ai_cache_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_cache_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_cache_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&cmcf->caches, cf->pool, 2,
                       sizeof(ngx_http_file_cache_t *))
        != NGX_OK
        || ngx_array_init(&cmcf->entries, cf->pool, 2,
                          sizeof(ngx_http_ai_cache_entry_t))
           != NGX_OK)
    {
        return NULL;
    }

    cmcf->key_name = NGX_ERROR;
    cmcf->key_team = NGX_ERROR;

    return cmcf;
}


static void *
ngx_http_ai_cache_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_cache_loc_conf_t  *clcf;

    clcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_cache_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     clcf->zone = NULL;
     *     clcf->tenant = NULL;
     *     clcf->set = 0;
     */

    clcf->bypass = NGX_CONF_UNSET_PTR;

    return clcf;
}


static char *
ngx_http_ai_cache_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_cache_loc_conf_t  *prev = parent;
    ngx_http_ai_cache_loc_conf_t  *conf = child;

    if (!conf->set) {
        conf->set = prev->set;
        conf->zone = prev->zone;
        conf->ttl = prev->ttl;
        conf->streams = prev->streams;
        conf->sampling = prev->sampling;
        conf->scope = prev->scope;
        conf->tenant = prev->tenant;
        conf->lock = prev->lock;
        conf->lock_timeout = prev->lock_timeout;
        conf->max_answer = prev->max_answer;
    }

    ngx_conf_merge_ptr_value(conf->bypass, prev->bypass, NULL);

    return NGX_CONF_OK;
}


/*
 * ai_cache_path: nginx's own cache path directive (ngx_add_path: the cache
 * manager and loader), its zone owned by this module; and, with the
 * first one, the zone of the caches' counters.
 */

static char *
ngx_http_ai_cache_path(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_cache_main_conf_t *cmcf = conf;

    char                        *rv;
    ngx_http_file_cache_t      **cache;
    ngx_http_ai_cache_entry_t   *e;

    rv = ngx_http_file_cache_set_slot(cf, cmd, conf);

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    cache = cmcf->caches.elts;

    if (cache[cmcf->caches.nelts - 1]->shm_zone->shm.name.len > 64) {
        return "has a keys_zone name longer than 64 bytes";
    }

    e = ngx_array_push(&cmcf->entries);
    if (e == NULL) {
        return NGX_CONF_ERROR;
    }

    e->cache = cache[cmcf->caches.nelts - 1];
    e->stats = NULL;

    if (cmcf->entries.nelts > NGX_HTTP_AI_CACHE_MAX_STATS) {
        return "is given more than 64 times";
    }

    if (cmcf->stats_zone == NULL) {
        cmcf->stats_zone = ngx_shared_memory_add(cf,
                               &ngx_http_ai_cache_stats_name,
                               64 * ngx_pagesize,
                               &ngx_ai_gateway_cache_module);
        if (cmcf->stats_zone == NULL) {
            return NGX_CONF_ERROR;
        }

        cmcf->stats_zone->init = ngx_http_ai_cache_init_stats;
        cmcf->stats_zone->data = cmcf;
    }

    return NGX_CONF_OK;
}


/* every cache's counters, found again by name after a reload */

static ngx_int_t
ngx_http_ai_cache_init_stats(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_cache_main_conf_t  *cmcf = shm_zone->data;

    ngx_str_t                  *name;
    ngx_uint_t                  i, j;
    ngx_slab_pool_t            *shpool;
    ngx_http_ai_cache_stats_t  *table;
    ngx_http_ai_cache_entry_t  *e;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shpool->data) {
        table = shpool->data;

    } else {
        table = ngx_slab_calloc(shpool, NGX_HTTP_AI_CACHE_MAX_STATS
                                        * sizeof(ngx_http_ai_cache_stats_t));
        if (table == NULL) {
            return NGX_ERROR;
        }

        shpool->data = table;
    }

    e = cmcf->entries.elts;

    for (i = 0; i < cmcf->entries.nelts; i++) {
        name = &e[i].cache->shm_zone->shm.name;

        for (j = 0; j < NGX_HTTP_AI_CACHE_MAX_STATS; j++) {
            if (table[j].len == name->len
                && ngx_memcmp(table[j].name, name->data, name->len) == 0)
            {
                break;
            }
        }

        if (j == NGX_HTTP_AI_CACHE_MAX_STATS) {
            for (j = 0; j < NGX_HTTP_AI_CACHE_MAX_STATS; j++) {
                if (table[j].len == 0) {
                    break;
                }
            }

            if (j == NGX_HTTP_AI_CACHE_MAX_STATS) {
                /* slots of caches gone in earlier reloads: reused */
                j = i;
                ngx_memzero(&table[j], sizeof(ngx_http_ai_cache_stats_t));
            }

            ngx_memcpy(table[j].name, name->data, name->len);
            table[j].len = name->len;
        }

        e[i].stats = &table[j];
    }

    return NGX_OK;
}


/*
 * ai_cache NAME|off [ttl=1h] [streams=on] [sampling=off] [scope=key]
 *          [tenant=$var] [lock=on] [lock_timeout=60s] [max_answer=1m]
 */

static char *
ngx_http_ai_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_cache_loc_conf_t *clcf = conf;

    ssize_t                            size;
    ngx_str_t                         *value, s;
    ngx_int_t                          n;
    ngx_uint_t                         i;
    ngx_http_compile_complex_value_t   ccv;

    if (clcf->set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    clcf->set = 1;
    clcf->ttl = 3600;
    clcf->streams = 1;
    clcf->sampling = 0;
    clcf->scope = NGX_HTTP_AI_CACHE_KEY;
    clcf->lock = 1;
    clcf->lock_timeout = 60000;
    clcf->max_answer = 1024 * 1024;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            return "takes no parameters after \"off\"";
        }

        clcf->zone = NULL;
        return NGX_CONF_OK;
    }

    clcf->zone = ngx_shared_memory_add(cf, &value[1], 0,
                                       &ngx_ai_gateway_cache_module);
    if (clcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            clcf->ttl = ngx_parse_time(&s, 1);
            if (clcf->ttl == (time_t) NGX_ERROR || clcf->ttl == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "lock_timeout=", 13) == 0) {
            s.data = value[i].data + 13;
            s.len = value[i].len - 13;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR) {
                goto invalid;
            }

            clcf->lock_timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_answer=", 11) == 0) {
            s.data = value[i].data + 11;
            s.len = value[i].len - 11;

            size = ngx_parse_size(&s);
            if (size == NGX_ERROR || size == 0) {
                goto invalid;
            }

            clcf->max_answer = (size_t) size;
            continue;
        }

        if (ngx_strcmp(value[i].data, "streams=on") == 0
            || ngx_strcmp(value[i].data, "streams=off") == 0)
        {
            clcf->streams = (value[i].data[9] == 'n');
            continue;
        }

        if (ngx_strcmp(value[i].data, "sampling=on") == 0
            || ngx_strcmp(value[i].data, "sampling=off") == 0)
        {
            clcf->sampling = (value[i].data[10] == 'n');
            continue;
        }

        if (ngx_strcmp(value[i].data, "lock=on") == 0
            || ngx_strcmp(value[i].data, "lock=off") == 0)
        {
            clcf->lock = (value[i].data[6] == 'n');
            continue;
        }

        if (ngx_strcmp(value[i].data, "scope=global") == 0) {
            clcf->scope = NGX_HTTP_AI_CACHE_GLOBAL;
            continue;
        }

        if (ngx_strcmp(value[i].data, "scope=key") == 0) {
            clcf->scope = NGX_HTTP_AI_CACHE_KEY;
            continue;
        }

        if (ngx_strcmp(value[i].data, "scope=team") == 0) {
            clcf->scope = NGX_HTTP_AI_CACHE_TEAM;
            continue;
        }

        if (ngx_strncmp(value[i].data, "tenant=", 7) == 0
            && value[i].len > 7)
        {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            clcf->tenant = ngx_palloc(cf->pool,
                                      sizeof(ngx_http_complex_value_t));
            if (clcf->tenant == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = clcf->tenant;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);
    return NGX_CONF_ERROR;
}


/*
 * After admission: NGX_OK, a hit (ngx_http_ai_cache_hit() has it);
 * NGX_DECLINED, the providers answer; NGX_AGAIN, another request is
 * getting this answer (lock=on): done(r, rc) is called when it has it or
 * gave up, with NGX_OK or NGX_DECLINED.
 */

ngx_int_t
ngx_http_ai_cache_lookup(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    void (*done)(ngx_http_request_t *r, ngx_int_t rc))
{
    ngx_str_t                      *key;
    ngx_uint_t                      i;
    ngx_http_cache_t               *c;
    ngx_http_ai_cache_ctx_t        *cc;
    ngx_http_ai_cache_entry_t      *e;
    ngx_http_ai_cache_main_conf_t  *cmcf;
    ngx_http_ai_cache_loc_conf_t   *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_cache_module);

    if (clcf->zone == NULL || ctx->chat.op == NGX_AI_OP_COUNT) {
        return NGX_DECLINED;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_cache_module);

    cc = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_cache_ctx_t));
    if (cc == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_set_ctx(r, cc, ngx_ai_gateway_cache_module);

    e = cmcf->entries.elts;

    for (i = 0; i < cmcf->entries.nelts; i++) {
        if (e[i].cache->shm_zone == clcf->zone) {
            cc->entry = &e[i];
            break;
        }
    }

    if (cc->entry == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai gateway: \"%V\" is no ai_cache_path zone",
                      &clcf->zone->shm.name);
        return NGX_DECLINED;
    }

    cc->status = NGX_HTTP_AI_CACHE_BYPASS;
    cc->done = done;
    cc->stream = ctx->chat.stream;

    if (!ngx_http_ai_cache_wanted(r, ctx, clcf, cc)) {
        ngx_atomic_fetch_add(&cc->entry->stats->bypasses, 1);
        return NGX_DECLINED;
    }

    if (ngx_http_ai_cache_make_key(r, ctx, clcf, cc) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (ngx_http_file_cache_new(r) != NGX_OK) {
        return NGX_DECLINED;
    }

    c = r->cache;
    c->file_cache = cc->entry->cache;

    key = ngx_array_push(&c->keys);
    if (key == NULL) {
        return NGX_DECLINED;
    }

    key->data = cc->key;
    key->len = NGX_AI_CACHE_KEY_HEX;

    ngx_http_file_cache_create_key(r);

    c->body_start = NGX_HTTP_AI_CACHE_BUFFER;
    c->min_uses = 1;
    c->lock = clcf->lock;
    c->lock_timeout = clcf->lock_timeout;
    c->lock_age = clcf->lock_timeout;

    if (cc->status == NGX_HTTP_AI_CACHE_BYPASS) {
        /* the client or ai_cache_bypass said not to read: the answer
         * still refreshes the entry, as proxy_cache_bypass does */
        ngx_atomic_fetch_add(&cc->entry->stats->bypasses, 1);

        if (!cc->no_store && ngx_http_file_cache_create(r) == NGX_OK) {
            cc->store = 1;
        }

        return NGX_DECLINED;
    }

    return ngx_http_ai_cache_open(r, cc);
}


/* may this request be served from the cache, or its answer stored */

static ngx_uint_t
ngx_http_ai_cache_wanted(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_ctx_t *cc)
{
    ngx_int_t  rc;

    if (ctx->chat.json == NULL || ctx->chat.n > 1) {
        return 0;
    }

    if (ctx->chat.stream && !clcf->streams) {
        return 0;
    }

    cc->no_store = ngx_http_ai_cache_header_has(r, "cache-control",
                                                "no-store");

    if (clcf->bypass) {
        rc = ngx_http_test_predicates(r, clcf->bypass);

        if (rc == NGX_ERROR) {
            return 0;
        }

        if (rc == NGX_DECLINED) {
            cc->status = NGX_HTTP_AI_CACHE_BYPASS;
            return 1;
        }
    }

    if (ngx_http_ai_cache_header_has(r, "cache-control", "no-cache")
        || ngx_http_ai_cache_header_has(r, "x-ai-cache", "bypass"))
    {
        cc->status = NGX_HTTP_AI_CACHE_BYPASS;
        return 1;
    }

    cc->status = NGX_HTTP_AI_CACHE_MISS;

    return 1;
}


static ngx_uint_t
ngx_http_ai_cache_header_has(ngx_http_request_t *r, const char *name,
    const char *token)
{
    size_t            n;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    n = ngx_strlen(name);
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

        if (h[i].key.len == n
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, n) == 0
            && ngx_strlcasestrn(h[i].value.data,
                                h[i].value.data + h[i].value.len,
                                (u_char *) token, ngx_strlen(token) - 1)
               != NULL)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The key: the route and the client's dialect, the plan (the models the
 * strategy may call, and the pool), the tenant, and the request in its
 * canonical form.  A request that samples (temperature absent or above 0)
 * is not cached unless sampling=on: its answers differ by design, and a
 * cache would freeze one of them.
 */

static ngx_int_t
ngx_http_ai_cache_make_key(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_ctx_t *cc)
{
    ngx_str_t                parts[4];
    ngx_uint_t               i;
    ngx_ai_buf_t             canon, route, plan;
    ngx_http_ai_model_t     *m;
    ngx_ai_cache_canon_t     info;
    ngx_http_ai_loc_conf_t  *alcf;

    if (ngx_ai_cache_canon(r->pool, ctx->chat.json, &canon, &info) != NGX_OK)
    {
        cc->status = NGX_HTTP_AI_CACHE_BYPASS;
        return NGX_DECLINED;
    }

    if (ctx->chat.op == 0 && info.sampled && !clcf->sampling) {
        cc->status = NGX_HTTP_AI_CACHE_BYPASS;
        ngx_atomic_fetch_add(&cc->entry->stats->bypasses, 1);
        return NGX_DECLINED;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    if (ngx_ai_buf_init(&route, r->pool, 64) != NGX_OK
        || ngx_ai_buf_init(&plan, r->pool, 128) != NGX_OK
        || ngx_ai_buf_append_str(&route, ctx->chat.op == NGX_AI_OP_EMBED
                                         ? "embeddings/" : "chat/")
           != NGX_OK
        || (ctx->dialect
            && ngx_ai_buf_append(&route, ctx->dialect->name.data,
                                 ctx->dialect->name.len)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (alcf->pool
        && (ngx_ai_buf_append_str(&plan, "pool=") != NGX_OK
            || ngx_ai_buf_append(&plan, alcf->pool->name.data,
                                 alcf->pool->name.len)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    m = ctx->plan.elts;

    for (i = 0; i < ctx->plan.nelts; i++) {
        if (ngx_ai_buf_append(&plan, ",", 1) != NGX_OK
            || ngx_ai_buf_append(&plan, m[i].name.data, m[i].name.len)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    parts[0].data = route.data;
    parts[0].len = route.len;
    parts[1].data = plan.data;
    parts[1].len = plan.len;
    parts[3].data = canon.data;
    parts[3].len = canon.len;

    if (ngx_http_ai_cache_tenant(r, clcf, &parts[2]) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_cache_key(r->pool, parts, 4, cc->key);
}


/*
 * scope=key: the ai_auth key's name; team: its team; without ai_auth (no
 * name) the client's own credential, Authorization or x-api-key, so that
 * two clients never share an entry by default.  tenant= overrides.
 */

static ngx_int_t
ngx_http_ai_cache_tenant(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_str_t *tenant)
{
    ngx_str_t                       value;
    ngx_int_t                       index;
    ngx_ai_buf_t                    b;
    ngx_http_variable_value_t      *vv;
    ngx_http_ai_cache_main_conf_t  *cmcf;

    static const char  *scopes[] = { "global:", "key:", "team:" };

    ngx_str_null(&value);

    if (clcf->tenant) {
        if (ngx_http_complex_value(r, clcf->tenant, &value) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (clcf->scope != NGX_HTTP_AI_CACHE_GLOBAL) {
        cmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_cache_module);

        index = (clcf->scope == NGX_HTTP_AI_CACHE_KEY) ? cmcf->key_name
                                                       : cmcf->key_team;

        vv = ngx_http_get_indexed_variable(r, index);

        if (vv && !vv->not_found && vv->len) {
            value.data = vv->data;
            value.len = vv->len;

        } else if (r->headers_in.authorization) {
            value = r->headers_in.authorization->value;
            clcf = NULL;

        } else if (ngx_http_ai_cache_api_key(r, &value) == NGX_OK) {
            clcf = NULL;
        }
    }

    if (ngx_ai_buf_init(&b, r->pool, value.len + 16) != NGX_OK
        || ngx_ai_buf_append_str(&b, clcf == NULL ? "credential:"
                                     : clcf->tenant ? "tenant:"
                                     : scopes[clcf->scope])
           != NGX_OK
        || ngx_ai_buf_append(&b, value.data, value.len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    tenant->data = b.data;
    tenant->len = b.len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_cache_api_key(ngx_http_request_t *r, ngx_str_t *value)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_DECLINED;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("x-api-key") - 1 && h[i].value.len
            && ngx_strncasecmp(h[i].key.data, (u_char *) "x-api-key",
                               sizeof("x-api-key") - 1) == 0)
        {
            *value = h[i].value;
            return NGX_OK;
        }
    }
}


static ngx_int_t
ngx_http_ai_cache_open(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *cc)
{
    ngx_int_t  rc;

    r->write_event_handler = ngx_http_ai_cache_wake;

    rc = ngx_http_file_cache_open(r);

    if (rc == NGX_AGAIN) {
        if (!cc->waited) {
            cc->waited = 1;
            ngx_atomic_fetch_add(&cc->entry->stats->collapsed, 1);
        }

        return NGX_AGAIN;
    }

    return ngx_http_ai_cache_opened(r, cc, rc);
}


/* the lock is free (or timed out): open again */

static void
ngx_http_ai_cache_wake(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_ai_ctx_t        *ctx;
    ngx_http_ai_cache_ctx_t  *cc;

    cc = ngx_http_get_module_ctx(r, ngx_ai_gateway_cache_module);
    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (cc == NULL || ctx == NULL || ctx->finished || r->cache == NULL
        || r->cache->waiting)
    {
        return;
    }

    rc = ngx_http_ai_cache_open(r, cc);

    if (rc == NGX_AGAIN) {
        return;
    }

    cc->done(r, rc);
}


/* the client went away while the request waited on another's answer */

void
ngx_http_ai_cache_cancel(ngx_http_request_t *r)
{
    ngx_http_cache_t  *c;

    c = r->cache;

    if (c == NULL || !c->waiting) {
        return;
    }

    if (c->wait_event.timer_set) {
        ngx_del_timer(&c->wait_event);
    }

    c->waiting = 0;
    r->main->blocked--;
}


static ngx_int_t
ngx_http_ai_cache_opened(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *cc,
    ngx_int_t rc)
{
    ngx_http_ai_cache_stats_t  *st;

    st = cc->entry->stats;

    switch (rc) {

    case NGX_OK:
        if (ngx_http_ai_cache_read(r, cc) == NGX_OK) {
            cc->status = NGX_HTTP_AI_CACHE_HIT;
            ngx_atomic_fetch_add(&st->hits, 1);
            ngx_atomic_fetch_add(&st->saved_input, cc->rec.input_tokens);
            ngx_atomic_fetch_add(&st->saved_output, cc->rec.output_tokens);
            ngx_atomic_fetch_add(&st->saved_cost, cc->rec.cost);
            ngx_http_ai_cache_ledger(r, cc);
            return NGX_OK;
        }

        /* a damaged or foreign file: replaced by this request's answer */
        cc->status = NGX_HTTP_AI_CACHE_MISS;
        cc->store = 1;
        break;

    case NGX_HTTP_CACHE_STALE:
        cc->status = NGX_HTTP_AI_CACHE_EXPIRED;
        cc->store = 1;
        break;

    case NGX_HTTP_CACHE_UPDATING:
        /* expired, and another request is getting the new answer */
        cc->status = NGX_HTTP_AI_CACHE_EXPIRED;
        break;

    case NGX_DECLINED:
        cc->status = NGX_HTTP_AI_CACHE_MISS;
        cc->store = 1;
        break;

    case NGX_HTTP_CACHE_SCARCE:
        /* the lock timed out: this request calls, and does not store */
        cc->status = NGX_HTTP_AI_CACHE_MISS;
        break;

    default:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai gateway: cache \"%V\" could not be read, the "
                      "request goes to the providers",
                      &cc->entry->cache->shm_zone->shm.name);
        cc->status = NGX_HTTP_AI_CACHE_MISS;
    }

    if (cc->no_store) {
        cc->store = 0;
    }

    if (cc->status == NGX_HTTP_AI_CACHE_EXPIRED) {
        ngx_atomic_fetch_add(&st->expired, 1);

    } else {
        ngx_atomic_fetch_add(&st->misses, 1);
    }

    return NGX_DECLINED;
}


/* the record after nginx's header: read whole and checked */

static ngx_int_t
ngx_http_ai_cache_read(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *cc)
{
    u_char                        *p;
    off_t                          len;
    ssize_t                        n;
    ngx_http_cache_t              *c;
    ngx_http_ai_cache_loc_conf_t  *clcf;

    c = r->cache;
    clcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_cache_module);

    len = c->length - (off_t) c->body_start;

    if (len <= 0 || len > (off_t) clcf->max_answer + 1024) {
        goto damaged;
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    n = ngx_read_file(&c->file, p, (size_t) len, c->body_start);

    if (n != (ssize_t) len) {
        goto damaged;
    }

    if (ngx_ai_cache_record_decode(p, (size_t) len, &cc->rec) != NGX_OK) {
        goto damaged;
    }

    return NGX_OK;

damaged:

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai gateway: cache file \"%s\" is not a valid record",
                  c->file.name.data);

    return NGX_DECLINED;
}


/*
 * A hit in the ai_cost ledger: one request under the model's label, no
 * tokens, no cost (what it saved is in the cache's own counters).
 * Written while the request still holds its budget account, as a call's
 * charge is.
 */

static void
ngx_http_ai_cache_ledger(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *cc)
{
    ngx_str_t                       label;
    ngx_uint_t                      i;
    ngx_http_ai_ctx_t              *ctx;
    ngx_http_ai_model_t            *m;
    ngx_http_ai_counters_t          add;
    ngx_http_ai_limits_ctx_t       *lctx;
    ngx_http_ai_limits_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_limits_module);
    lctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_limits_module);

    if (lctx && lctx->principal) {
        /* the key's own lines, as admission made them */
        llcf = lctx->conf;
    }

    if (llcf == NULL || llcf->cost == NULL) {
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (lctx == NULL) {
        lctx = ngx_http_ai_limits_get_ctx(r, 1);
        if (lctx == NULL) {
            return;
        }

        lctx->ai = ctx;
    }

    /* the label the model's calls are counted under */

    label = cc->rec.model;
    m = ctx->plan.elts;

    for (i = 0; i < ctx->plan.nelts; i++) {
        if (m[i].name.len == label.len && m[i].label.len
            && ngx_strncmp(m[i].name.data, label.data, label.len) == 0)
        {
            label = m[i].label;
            break;
        }
    }

    ngx_memzero(&add, sizeof(ngx_http_ai_counters_t));
    add.requests = 1;

    (void) ngx_http_ai_cost_record(lctx, llcf->cost, &label, &add);

    if (lctx->team) {
        (void) ngx_http_ai_cost_record(lctx, lctx->team, &label, &add);
    }
}


ngx_ai_cache_record_t *
ngx_http_ai_cache_hit(ngx_http_request_t *r)
{
    ngx_http_ai_cache_ctx_t  *cc;

    cc = ngx_http_get_module_ctx(r, ngx_ai_gateway_cache_module);

    if (cc == NULL || cc->status != NGX_HTTP_AI_CACHE_HIT) {
        return NULL;
    }

    return &cc->rec;
}


/* a whole chat answer, before ai_guard and the dialect: kept */

static ngx_int_t
ngx_http_ai_cache_answer_hook(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_http_ai_cache_ctx_t  *cc;

    cc = ngx_http_get_module_ctx(r, ngx_ai_gateway_cache_module);

    if (cc && cc->store) {
        cc->answer = *body;
    }

    return NGX_OK;
}


/* a relayed stream's chunks, before ai_guard and the dialect: kept */

static ngx_int_t
ngx_http_ai_cache_stream_hook(ngx_http_request_t *r, ngx_str_t *data,
    ngx_uint_t last)
{
    ngx_http_ai_cache_ctx_t       *cc;
    ngx_http_ai_cache_loc_conf_t  *clcf;

    cc = ngx_http_get_module_ctx(r, ngx_ai_gateway_cache_module);

    if (cc == NULL || !cc->store || !cc->stream) {
        return NGX_OK;
    }

    if (cc->chunks.pool == NULL) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_cache_module);

        if (ngx_ai_cache_chunks_init(&cc->chunks, r->pool, clcf->max_answer)
            != NGX_OK)
        {
            cc->store = 0;
            return NGX_OK;
        }
    }

    if (ngx_ai_cache_chunks_feed(&cc->chunks, data->data, data->len)
        != NGX_OK)
    {
        cc->store = 0;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_cache_headers_hook(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    u_char                   *p;
    time_t                    age;
    ngx_table_elt_t          *h;
    ngx_http_ai_cache_ctx_t  *cc;

    cc = ngx_http_get_module_ctx(r, ngx_ai_gateway_cache_module);

    if (cc == NULL || cc->status == NGX_HTTP_AI_CACHE_NONE) {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-AI-Cache");
    h->value = ngx_http_ai_cache_names[cc->status];

    if (cc->status != NGX_HTTP_AI_CACHE_HIT) {
        return NGX_OK;
    }

    age = ngx_time() - cc->rec.created;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Age");
    h->value.data = p;
    h->value.len = ngx_sprintf(p, "%T", age > 0 ? age : 0) - p;

    if (cc->rec.model.len == 0) {
        return NGX_OK;
    }

    /* the model that answered then (no call: no X-AI-Attempts) */

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-AI-Model");
    h->value = cc->rec.model;

    return NGX_OK;
}


/*
 * The log phase: a miss that ended with a whole, successful answer is
 * written; any other gives back the lock it held, so that a waiting
 * request makes the call itself.
 */

static void
ngx_http_ai_cache_end_hook(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_int_t                 rc;
    ngx_http_ai_cache_ctx_t  *cc;

    cc = ngx_http_get_module_ctx(r, ngx_ai_gateway_cache_module);

    if (cc == NULL || cc->entry == NULL) {
        return;
    }

    rc = NGX_DECLINED;

    if (cc->store) {
        rc = ngx_http_ai_cache_store(r, ctx, cc);

        ngx_atomic_fetch_add(rc == NGX_OK ? &cc->entry->stats->stores
                                          : &cc->entry->stats->not_stored,
                             1);
    }

    if (rc != NGX_OK && r->cache) {
        ngx_http_file_cache_free(r->cache, NULL);
    }
}


static ngx_int_t
ngx_http_ai_cache_store(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_cache_ctx_t *cc)
{
    ngx_str_t                      body, record;
    ngx_ai_usage_t                *usage;
    ngx_ai_cache_record_t          rec;
    ngx_http_ai_attempt_t         *a;
    ngx_http_ai_cache_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_cache_module);

    if (r->headers_out.status != NGX_HTTP_OK || r->connection->error
        || ctx->error_page.len)
    {
        return NGX_DECLINED;
    }

    a = ctx->fusion ? NULL : ctx->winner;

    if (ctx->fusion == NULL
        && (a == NULL || a->outcome != NGX_HTTP_AI_OK))
    {
        return NGX_DECLINED;
    }

    usage = a ? (a->streaming ? &a->stream.usage : &a->usage) : &ctx->usage;

    if (cc->stream) {
        if (cc->chunks.pool == NULL
            || ngx_ai_cache_chunks_answer(&cc->chunks, usage, &body)
               != NGX_OK)
        {
            return NGX_DECLINED;
        }

    } else if (ctx->chat.op == NGX_AI_OP_EMBED) {
        if (a == NULL) {
            return NGX_DECLINED;
        }

        body = a->answer.body;

    } else {
        body = cc->answer;
    }

    if (body.len == 0 || body.len > clcf->max_answer
        || ngx_ai_cache_answer_ok(r->pool, &body) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_memzero(&rec, sizeof(ngx_ai_cache_record_t));

    rec.created = ngx_time();
    rec.input_tokens = usage->prompt_tokens;
    rec.output_tokens = usage->completion_tokens;
    rec.cost = a ? a->cost : ctx->cost;
    rec.model = ctx->model;
    rec.body = body;

    if (rec.model.len > NGX_AI_CACHE_MAX_MODEL) {
        rec.model.len = 0;
    }

    if (ngx_ai_cache_record_encode(r->pool, &rec, &record) != NGX_OK) {
        return NGX_DECLINED;
    }

    return ngx_http_ai_cache_write(r, cc, &record);
}


/*
 * A cache file as proxy_cache writes one: a temporary file in the cache's
 * own directory holding nginx's header and key (no HTTP header: the body
 * starts right after the key), then the record; renamed into place by
 * ngx_http_file_cache_update(), which counts it in the zone.
 */

static ngx_int_t
ngx_http_ai_cache_write(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *cc,
    ngx_str_t *record)
{
    u_char                        *h;
    time_t                         now;
    ngx_temp_file_t               *tf;
    ngx_http_cache_t              *c;
    ngx_http_ai_cache_loc_conf_t  *clcf;

    c = r->cache;
    clcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_cache_module);

    now = ngx_time();

    c->valid_sec = now + clcf->ttl;
    c->date = now;
    c->last_modified = -1;
    c->body_start = c->header_start;

    h = ngx_pnalloc(r->pool, c->header_start);
    if (h == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_file_cache_set_header(r, h) != NGX_OK) {
        return NGX_ERROR;
    }

    tf = ngx_pcalloc(r->pool, sizeof(ngx_temp_file_t));
    if (tf == NULL) {
        return NGX_ERROR;
    }

    tf->file.fd = NGX_INVALID_FILE;
    tf->file.log = r->connection->log;
    tf->path = cc->entry->cache->path;
    tf->pool = r->pool;
    tf->persistent = 1;

    if (ngx_create_temp_file(&tf->file, tf->path, tf->pool, 1, 0,
                             NGX_FILE_OWNER_ACCESS)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_write_file(&tf->file, h, c->header_start, 0)
        != (ssize_t) c->header_start
        || ngx_write_file(&tf->file, record->data, record->len,
                          c->header_start)
           != (ssize_t) record->len)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai gateway: cache file \"%s\" could not be written",
                      tf->file.name.data);

        if (ngx_delete_file(tf->file.name.data) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_CRIT, r->connection->log, ngx_errno,
                          ngx_delete_file_n " \"%s\" failed",
                          tf->file.name.data);
        }

        return NGX_ERROR;
    }

    ngx_http_file_cache_update(r, tf);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_cache_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_cache_ctx_t  *cc;

    cc = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_cache_module);

    if (cc == NULL || cc->status == NGX_HTTP_AI_CACHE_NONE) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ngx_http_ai_cache_names[cc->status].data;
    v->len = ngx_http_ai_cache_names[cc->status].len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* caches configured: the status document has "cache" only with some */

ngx_uint_t
ngx_http_ai_cache_count(ngx_http_request_t *r)
{
    ngx_http_ai_cache_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_cache_module);

    return cmcf->entries.nelts;
}


/* the status document's "cache": each cache's counters and size */

void
ngx_http_ai_cache_status_json(ngx_http_request_t *r, ngx_ai_jw_t *w)
{
    ngx_uint_t                      i;
    ngx_atomic_uint_t               hits, lookups;
    ngx_http_ai_cache_stats_t      *st;
    ngx_http_ai_cache_entry_t      *e;
    ngx_http_ai_cache_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_cache_module);

    ngx_ai_jw_array(w);

    e = cmcf->entries.elts;

    for (i = 0; i < cmcf->entries.nelts; i++) {
        st = e[i].stats;

        if (st == NULL) {
            continue;
        }

        hits = st->hits;
        lookups = hits + st->misses + st->expired;

        ngx_ai_jw_object(w);
        ngx_ai_jw_key(w, "name");
        ngx_ai_jw_string(w, st->name, st->len);
        ngx_ai_jw_key_uint(w, "hits", hits);
        ngx_ai_jw_key_uint(w, "misses", st->misses);
        ngx_ai_jw_key_uint(w, "expired", st->expired);
        ngx_ai_jw_key_uint(w, "bypasses", st->bypasses);
        ngx_ai_jw_key_uint(w, "stored", st->stores);
        ngx_ai_jw_key_uint(w, "not_stored", st->not_stored);
        ngx_ai_jw_key_uint(w, "collapsed", st->collapsed);
        ngx_ai_jw_key_uint(w, "hit_ratio_permille",
                           lookups ? hits * 1000 / lookups : 0);
        ngx_ai_jw_key_uint(w, "saved_input_tokens", st->saved_input);
        ngx_ai_jw_key_uint(w, "saved_output_tokens", st->saved_output);
        ngx_ai_jw_key(w, "saved_usd");
        ngx_ai_jw_usd(w, st->saved_cost);
        ngx_ai_jw_key_uint(w, "size_bytes",
                           (uint64_t) e[i].cache->sh->size
                           * e[i].cache->bsize);
        ngx_ai_jw_end(w);
    }

    ngx_ai_jw_end(w);
}


/* the hit ratio as a gauge: hits / (hits + misses + expired) */

static ngx_int_t
ngx_http_ai_cache_prom_ratio(ngx_ai_buf_t *b, ngx_http_ai_cache_entry_t *e,
    ngx_uint_t n)
{
    u_char                     *p;
    ngx_uint_t                  i;
    ngx_atomic_uint_t           hits, lookups, permille;
    ngx_http_ai_cache_stats_t  *st;
    u_char                      line[256];

    if (ngx_ai_buf_append_str(b, "# HELP ai_gateway_cache_hit_ratio Hits "
                              "per lookup (hits, misses, expired) since "
                              "the start\n# TYPE ai_gateway_cache_hit_ratio "
                              "gauge\n")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        st = e[i].stats;

        if (st == NULL) {
            continue;
        }

        hits = st->hits;
        lookups = hits + st->misses + st->expired;
        permille = lookups ? hits * 1000 / lookups : 0;

        p = ngx_snprintf(line, sizeof(line),
                         "ai_gateway_cache_hit_ratio{cache=\"%*s\"} "
                         "%uA.%03uA\n", st->len, st->name,
                         permille / 1000, permille % 1000);

        if (ngx_ai_buf_append(b, line, p - line) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* Prometheus: ai_gateway_cache_* per cache */

ngx_int_t
ngx_http_ai_cache_prometheus(ngx_http_request_t *r, ngx_ai_buf_t *b)
{
    u_char                         *p;
    ngx_uint_t                      i, k;
    ngx_http_ai_cache_stats_t      *st;
    ngx_http_ai_cache_entry_t      *e;
    ngx_http_ai_cache_main_conf_t  *cmcf;
    u_char                          line[256];

    static struct {
        const char  *name;
        const char  *help;
        size_t       offset;
    }  families[] = {
        { "ai_gateway_cache_hits_total", "Requests answered from the cache",
          offsetof(ngx_http_ai_cache_stats_t, hits) },
        { "ai_gateway_cache_misses_total",
          "Cacheable requests the providers answered",
          offsetof(ngx_http_ai_cache_stats_t, misses) },
        { "ai_gateway_cache_expired_total",
          "Requests whose entry had expired",
          offsetof(ngx_http_ai_cache_stats_t, expired) },
        { "ai_gateway_cache_bypasses_total",
          "Requests not read from the cache",
          offsetof(ngx_http_ai_cache_stats_t, bypasses) },
        { "ai_gateway_cache_stored_total", "Answers written to the cache",
          offsetof(ngx_http_ai_cache_stats_t, stores) },
        { "ai_gateway_cache_collapsed_total",
          "Requests that waited for another's identical miss",
          offsetof(ngx_http_ai_cache_stats_t, collapsed) },
        { "ai_gateway_cache_saved_input_tokens_total",
          "Input tokens not sent to providers thanks to hits",
          offsetof(ngx_http_ai_cache_stats_t, saved_input) },
        { "ai_gateway_cache_saved_output_tokens_total",
          "Output tokens not bought thanks to hits",
          offsetof(ngx_http_ai_cache_stats_t, saved_output) }
    };

    cmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_cache_module);

    if (cmcf->entries.nelts == 0) {
        return NGX_OK;
    }

    e = cmcf->entries.elts;

    if (ngx_http_ai_cache_prom_ratio(b, e, cmcf->entries.nelts) != NGX_OK) {
        return NGX_ERROR;
    }

    for (k = 0; k < sizeof(families) / sizeof(families[0]) + 1; k++) {

        p = (k < sizeof(families) / sizeof(families[0]))
            ? ngx_snprintf(line, sizeof(line),
                           "# HELP %s %s\n# TYPE %s counter\n",
                           families[k].name, families[k].help,
                           families[k].name)
            : ngx_snprintf(line, sizeof(line),
                           "# HELP ai_gateway_cache_saved_usd_total USD "
                           "not spent thanks to hits\n# TYPE "
                           "ai_gateway_cache_saved_usd_total counter\n");

        if (ngx_ai_buf_append(b, line, p - line) != NGX_OK) {
            return NGX_ERROR;
        }

        for (i = 0; i < cmcf->entries.nelts; i++) {
            st = e[i].stats;

            if (st == NULL) {
                continue;
            }

            if (k < sizeof(families) / sizeof(families[0])) {
                p = ngx_snprintf(line, sizeof(line), "%s{cache=\"%*s\"} %uA\n",
                                 families[k].name, st->len, st->name,
                                 *(ngx_atomic_t *) ((u_char *) st
                                                    + families[k].offset));

            } else {
                p = ngx_snprintf(line, sizeof(line),
                                 "ai_gateway_cache_saved_usd_total"
                                 "{cache=\"%*s\"} %uA.%09uA\n",
                                 st->len, st->name,
                                 st->saved_cost / 1000000000,
                                 st->saved_cost % 1000000000);
            }

            if (ngx_ai_buf_append(b, line, p - line) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}
