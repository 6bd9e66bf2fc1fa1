
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The module: directives, configuration, filter registration.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


typedef struct {
    ngx_str_t                   name;
    ngx_ai_translator_t        *translator;
} ngx_http_ai_type_t;


static void *ngx_http_ai_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_ai_init(ngx_conf_t *cf);
static char *ngx_http_ai_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_provider_key(ngx_conf_t *cf,
    ngx_http_ai_provider_t *p, ngx_str_t *value);
static ngx_int_t ngx_http_ai_key_valid(ngx_str_t *key);
static char *ngx_http_ai_price(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ai_parse_usd(ngx_str_t *s, uint64_t *nano);
static char *ngx_http_ai_gateway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_unpriced(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ai_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_ai_type_t  ngx_http_ai_types[] = {
    { ngx_string("openai"), &ngx_ai_openai_translator },
    { ngx_string("anthropic"), &ngx_ai_anthropic_translator },
    { ngx_string("gemini"), &ngx_ai_gemini_translator },
    { ngx_null_string, NULL }
};


static ngx_conf_num_bounds_t  ngx_http_ai_max_tokens_bounds = {
    ngx_conf_check_num_bounds, 1, 100000000
};

static ngx_conf_num_bounds_t  ngx_http_ai_max_models_bounds = {
    ngx_conf_check_num_bounds, 0, NGX_HTTP_AI_MAX_MODELS
};

static ngx_conf_num_bounds_t  ngx_http_ai_max_attempts_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_HTTP_AI_MAX_ATTEMPTS
};


static ngx_command_t  ngx_http_ai_commands[] = {

    { ngx_string("ai_provider"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_price"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_ai_price,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_gateway,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_fallback"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_fallback_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_pool"),
      NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ai_pool_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_default_max_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_loc_conf_t, default_max_tokens),
      &ngx_http_ai_max_tokens_bounds },

    { ngx_string("ai_max_response_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_loc_conf_t, max_response_size),
      NULL },

    { ngx_string("ai_max_models"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_loc_conf_t, max_models),
      &ngx_http_ai_max_models_bounds },

    { ngx_string("ai_max_attempts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_loc_conf_t, max_attempts),
      &ngx_http_ai_max_attempts_bounds },

    { ngx_string("ai_unpriced"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_unpriced,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_ai_gateway_module_ctx = {
    ngx_http_ai_add_variables,             /* preconfiguration */
    ngx_http_ai_init,                      /* postconfiguration */

    ngx_http_ai_create_main_conf,          /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_create_loc_conf,           /* create location configuration */
    ngx_http_ai_merge_loc_conf             /* merge location configuration */
};


ngx_module_t  ngx_ai_gateway_module = {
    NGX_MODULE_V1,
    &ngx_ai_gateway_module_ctx,            /* module context */
    ngx_http_ai_commands,                  /* module directives */
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


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static void *
ngx_http_ai_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->providers, cf->pool, 4,
                       sizeof(ngx_http_ai_provider_t))
        != NGX_OK
        || ngx_array_init(&amcf->prices, cf->pool, 8,
                          sizeof(ngx_http_ai_price_t))
           != NGX_OK
        || ngx_array_init(&amcf->models, cf->pool, 8, sizeof(ngx_str_t))
           != NGX_OK
        || ngx_array_init(&amcf->secrets, cf->pool, 4, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NULL;
    }

    return amcf;
}


static void *
ngx_http_ai_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    alcf->gateway = NGX_CONF_UNSET;
    alcf->default_max_tokens = NGX_CONF_UNSET;
    alcf->max_response_size = NGX_CONF_UNSET_SIZE;
    alcf->max_models = NGX_CONF_UNSET_UINT;
    alcf->max_attempts = NGX_CONF_UNSET_UINT;
    alcf->unpriced = NGX_CONF_UNSET;
    alcf->unpriced_price = NGX_CONF_UNSET_PTR;
    alcf->fallback = NGX_CONF_UNSET_PTR;
    alcf->pool = NGX_CONF_UNSET_PTR;

    return alcf;
}


static char *
ngx_http_ai_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_loc_conf_t  *prev = parent;
    ngx_http_ai_loc_conf_t  *conf = child;

    /* ai_gateway is not inherited: nested locations choose for themselves */

    ngx_conf_init_value(conf->gateway, 0);
    ngx_conf_merge_value(conf->default_max_tokens, prev->default_max_tokens,
                         4096);
    ngx_conf_merge_size_value(conf->max_response_size,
                              prev->max_response_size, 8 * 1024 * 1024);
    ngx_conf_merge_uint_value(conf->max_models, prev->max_models, 8);
    ngx_conf_merge_uint_value(conf->max_attempts, prev->max_attempts, 10);

    if (conf->unpriced == NGX_CONF_UNSET) {
        conf->unpriced = prev->unpriced;
        conf->unpriced_price = prev->unpriced_price;
    }

    ngx_conf_merge_ptr_value(conf->unpriced_price, prev->unpriced_price,
                             NULL);
    ngx_conf_merge_ptr_value(conf->fallback, prev->fallback, NULL);
    ngx_conf_merge_ptr_value(conf->pool, prev->pool, NULL);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_init(ngx_conf_t *cf)
{
    ngx_uint_t                i;
    ngx_str_t                *secret;
    ngx_http_ai_provider_t   *p;
    ngx_http_ai_main_conf_t  *amcf;

    /* cJSON's memory from request pools (see ngx_ai_gateway_json.c) */
    ngx_ai_json_init_allocator();

    /* the keys a provider could echo back (ngx_http_ai_attempt_scrub) */

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);
    p = amcf->providers.elts;

    for (i = 0; i < amcf->providers.nelts; i++) {
        if (p[i].key.len == 0) {
            continue;
        }

        secret = ngx_array_push(&amcf->secrets);
        if (secret == NULL) {
            return NGX_ERROR;
        }

        *secret = p[i].key;
    }

    if (ngx_http_ai_secrets_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ai_body_filter;

    return NGX_OK;
}


/*
 * One filter pair for two jobs: provider subrequests carry an attempt
 * context and are consumed by the upstream part; a main request in an
 * ai_gateway location that nginx itself answers with an error page (413,
 * 500 ...) gets that page rewritten as an OpenAI error object.
 */

static ngx_int_t
ngx_http_ai_header_filter(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r != r->main) {
        if (ngx_http_get_module_ctx(r, ngx_ai_gateway_module)) {
            return ngx_http_ai_upstream_header_filter(r);
        }

        return ngx_http_next_header_filter(r);
    }

    rc = ngx_http_ai_error_page_header(r);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_ai_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_http_ai_ctx_t  *ctx;

    if (r != r->main) {
        if (ngx_http_get_module_ctx(r, ngx_ai_gateway_module)) {
            return ngx_http_ai_upstream_body_filter(r, in);
        }

        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (ctx && ctx->rewrite_error) {
        return ngx_http_ai_error_page_body(r, in);
    }

    return ngx_http_next_body_filter(r, in);
}


ngx_int_t
ngx_http_ai_next_header_filter(ngx_http_request_t *r)
{
    return ngx_http_next_header_filter(r);
}


ngx_int_t
ngx_http_ai_next_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    return ngx_http_next_body_filter(r, in);
}


ngx_http_ai_provider_t *
ngx_http_ai_find_provider(ngx_http_ai_main_conf_t *amcf, ngx_str_t *name)
{
    ngx_uint_t               i;
    ngx_http_ai_provider_t  *p;

    p = amcf->providers.elts;

    for (i = 0; i < amcf->providers.nelts; i++) {
        if (p[i].name.len == name->len
            && ngx_strncmp(p[i].name.data, name->data, name->len) == 0)
        {
            return &p[i];
        }
    }

    return NULL;
}


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


/*
 * A model's ai_price: its own, else the family ("provider/prefix*") with
 * the longest prefix of its name; NULL: none.
 */

ngx_http_ai_price_t *
ngx_http_ai_find_price(ngx_http_ai_main_conf_t *amcf, ngx_str_t *model)
{
    size_t                len;
    ngx_uint_t            i;
    ngx_http_ai_price_t  *price, *family;

    price = amcf->prices.elts;
    family = NULL;

    for (i = 0; i < amcf->prices.nelts; i++) {

        if (price[i].family) {
            len = price[i].model.len - 1;

            if (model->len >= len
                && ngx_strncmp(price[i].model.data, model->data, len) == 0
                && (family == NULL || family->model.len < len + 1))
            {
                family = &price[i];
            }

            continue;
        }

        if (price[i].model.len == model->len
            && ngx_strncmp(price[i].model.data, model->data, model->len) == 0)
        {
            return &price[i];
        }
    }

    return family;
}


/*
 * What the ledger and the metrics call a model: its name when the
 * configuration names it (ai_price, ai_fallback, ai_pool), the family
 * that prices it, else the provider's "other" label (its name, a slash
 * and a star): names a client makes up do not each become a series.
 */

void
ngx_http_ai_model_label(ngx_http_ai_main_conf_t *amcf,
    ngx_http_ai_provider_t *provider, ngx_str_t *name, ngx_str_t *label)
{
    ngx_uint_t            i;
    ngx_str_t            *known;
    ngx_http_ai_price_t  *price;

    known = amcf->models.elts;

    for (i = 0; i < amcf->models.nelts; i++) {
        if (known[i].len == name->len
            && ngx_strncmp(known[i].data, name->data, name->len) == 0)
        {
            *label = known[i];
            return;
        }
    }

    price = ngx_http_ai_find_price(amcf, name);

    *label = price ? price->model : provider->other;
}


/* a model named by the configuration, for ngx_http_ai_model_label() */

ngx_int_t
ngx_http_ai_model_known(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                i;
    ngx_str_t                *known;
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);

    known = amcf->models.elts;

    for (i = 0; i < amcf->models.nelts; i++) {
        if (known[i].len == name->len
            && ngx_strncmp(known[i].data, name->data, name->len) == 0)
        {
            return NGX_OK;
        }
    }

    known = ngx_array_push(&amcf->models);
    if (known == NULL) {
        return NGX_ERROR;
    }

    *known = *name;

    return NGX_OK;
}


/* ai_provider NAME type=openai|anthropic|gemini pass=URI [key=...] */

static char *
ngx_http_ai_provider(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_main_conf_t *amcf = conf;

    u_char                  *c;
    ngx_str_t               *value, s;
    ngx_uint_t               i, j;
    ngx_http_ai_type_t      *t;
    ngx_http_ai_provider_t  *p;

    value = cf->args->elts;

    for (c = value[1].data; c < value[1].data + value[1].len; c++) {
        if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z')
            && !(*c >= '0' && *c <= '9') && *c != '-' && *c != '_'
            && *c != '.')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid provider name \"%V\": use letters, "
                               "digits, \"-\", \"_\" and \".\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0 || value[1].len > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid provider name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_find_provider(amcf, &value[1])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate ai_provider \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    p = ngx_array_push(&amcf->providers);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(p, sizeof(ngx_http_ai_provider_t));
    p->name = value[1];
    p->translator = &ngx_ai_openai_translator;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "type=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            for (t = ngx_http_ai_types, j = 0; t[j].translator; j++) {
                if (t[j].name.len == s.len
                    && ngx_strncmp(t[j].name.data, s.data, s.len) == 0)
                {
                    break;
                }
            }

            if (t[j].translator == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid provider type \"%V\": expected "
                                   "openai, anthropic or gemini", &s);
                return NGX_CONF_ERROR;
            }

            p->translator = t[j].translator;
            continue;
        }

        if (ngx_strncmp(value[i].data, "pass=", 5) == 0) {
            p->pass.data = value[i].data + 5;
            p->pass.len = value[i].len - 5;

            if (p->pass.len < 2 || p->pass.data[0] != '/'
                || p->pass.data[p->pass.len - 1] == '/')
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": pass= takes a location "
                                   "prefix like /_ai/openai (starting with "
                                   "\"/\", no trailing \"/\")", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            if (ngx_http_ai_provider_key(cf, p, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": ai_provider takes "
                           "type=, pass= and key=", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (p->pass.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\" needs pass=/internal/location",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    p->other.len = p->name.len + 2;
    p->other.data = ngx_pnalloc(cf->pool, p->other.len);
    if (p->other.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(p->other.data, p->name.data, p->name.len), "/*", 2);

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_provider_key(ngx_conf_t *cf, ngx_http_ai_provider_t *p,
    ngx_str_t *value)
{
    char                              *env;
    u_char                            *buf;
    ssize_t                            n;
    ngx_fd_t                           fd;
    ngx_str_t                          name;
    ngx_file_info_t                    fi;
    ngx_http_compile_complex_value_t   ccv;

    if (value->len > 4 && ngx_strncmp(value->data, "env:", 4) == 0) {
        name.len = value->len - 4;
        name.data = ngx_pnalloc(cf->pool, name.len + 1);
        if (name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(name.data, value->data + 4, name.len + 1);

        env = getenv((char *) name.data);

        if (env == NULL || *env == '\0') {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "ai_provider \"%V\": environment variable "
                               "\"%V\" is not set, requests to this "
                               "provider are sent without a key",
                               &p->name, &name);
            ngx_str_null(&p->key);
            return NGX_CONF_OK;
        }

        p->key.len = ngx_strlen(env);
        p->key.data = ngx_pnalloc(cf->pool, p->key.len);
        if (p->key.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p->key.data, env, p->key.len);

    } else if (value->len > 5 && ngx_strncmp(value->data, "file:", 5) == 0) {
        name.len = value->len - 5;
        name.data = value->data + 5;

        if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
        if (fd == NGX_INVALID_FILE) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "ai_provider \"%V\": cannot open key file "
                               "\"%V\"", &p->name, &name);
            return NGX_CONF_ERROR;
        }

        if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
            || ngx_file_size(&fi) > NGX_HTTP_AI_MAX_KEY_LEN)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_provider \"%V\": key file \"%V\" is not "
                               "a readable file of at most %d bytes",
                               &p->name, &name, NGX_HTTP_AI_MAX_KEY_LEN);
            (void) ngx_close_file(fd);
            return NGX_CONF_ERROR;
        }

        buf = ngx_pnalloc(cf->pool, NGX_HTTP_AI_MAX_KEY_LEN);
        if (buf == NULL) {
            (void) ngx_close_file(fd);
            return NGX_CONF_ERROR;
        }

        n = ngx_read_fd(fd, buf, NGX_HTTP_AI_MAX_KEY_LEN);
        (void) ngx_close_file(fd);

        if (n < 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "ai_provider \"%V\": cannot read key file "
                               "\"%V\"", &p->name, &name);
            return NGX_CONF_ERROR;
        }

        /* the usual trailing newline of a key file is not part of it */

        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'
                         || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        {
            n--;
        }

        p->key.data = buf;
        p->key.len = n;

        if (n == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_provider \"%V\": key file \"%V\" is "
                               "empty", &p->name, &name);
            return NGX_CONF_ERROR;
        }

    } else if (ngx_http_script_variables_count(value)) {
        p->key_value = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (p->key_value == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = value;
        ccv.complex_value = p->key_value;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;

    } else {
        p->key = *value;
    }

    if (!ngx_http_ai_key_valid(&p->key)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": the key holds control "
                           "characters or spaces", &p->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a key goes into a request header: nothing that could end or split it */

static ngx_int_t
ngx_http_ai_key_valid(ngx_str_t *key)
{
    size_t  i;

    for (i = 0; i < key->len; i++) {
        if (key->data[i] <= 0x20 || key->data[i] >= 0x7f) {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_http_ai_provider_key_value(ngx_http_request_t *r,
    ngx_http_ai_provider_t *p, ngx_str_t *key)
{
    if (p->key_value == NULL) {
        *key = p->key;
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, p->key_value, key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key->len > NGX_HTTP_AI_MAX_KEY_LEN || !ngx_http_ai_key_valid(key)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_provider \"%V\": the key variable's value is not "
                      "a valid key", &p->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ai_price provider/model INPUT OUTPUT   (USD per 1M tokens) */

static char *
ngx_http_ai_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_main_conf_t *amcf = conf;

    u_char               *slash, *star;
    ngx_str_t            *value, provider;
    ngx_uint_t            i;
    ngx_http_ai_price_t  *price;

    value = cf->args->elts;

    slash = ngx_strlchr(value[1].data, value[1].data + value[1].len, '/');

    if (slash == NULL
        || !ngx_ai_model_name_valid(value[1].data, value[1].len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid model \"%V\": ai_price takes "
                           "provider/model", &value[1]);
        return NGX_CONF_ERROR;
    }

    provider.data = value[1].data;
    provider.len = slash - value[1].data;

    price = amcf->prices.elts;

    for (i = 0; i < amcf->prices.nelts; i++) {
        if (price[i].model.len == value[1].len
            && ngx_strncmp(price[i].model.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate ai_price for \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    price = ngx_array_push(&amcf->prices);
    if (price == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(price, sizeof(ngx_http_ai_price_t));

    price->model = value[1];
    price->provider = ngx_http_ai_find_provider(amcf, &provider);

    star = ngx_strlchr(slash, value[1].data + value[1].len, '*');

    if (star) {
        if (star != value[1].data + value[1].len - 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid model \"%V\": a price family is "
                               "\"provider/prefix*\", with \"*\" last",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        price->family = 1;
    }

    if (price->provider == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_price \"%V\": unknown provider \"%V\" "
                           "(declare it with ai_provider before ai_price)",
                           &value[1], &provider);
        return NGX_CONF_ERROR;
    }

    if (!price->family && ngx_http_ai_model_known(cf, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < 4; i++) {
        if (ngx_http_ai_parse_usd(&value[i], i == 2 ? &price->input
                                                    : &price->output)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid price \"%V\": expected USD per 1M "
                               "tokens like 2.50 (at most 9 decimals)",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    price->input_text = value[2];
    price->output_text = value[3];

    return NGX_CONF_OK;
}


/* "2.50" -> 2500000000 nano-USD: exact, no floating point */

static ngx_int_t
ngx_http_ai_parse_usd(ngx_str_t *s, uint64_t *nano)
{
    u_char      *p, *last;
    uint64_t     whole, frac;
    ngx_uint_t   digits, decimals, dot;

    whole = 0;
    frac = 0;
    digits = 0;
    decimals = 0;
    dot = 0;

    last = s->data + s->len;

    for (p = s->data; p < last; p++) {

        if (*p == '.' && !dot) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        if (dot) {
            if (++decimals > 9) {
                return NGX_ERROR;
            }

            frac = frac * 10 + (*p - '0');

        } else {
            if (whole > 1000000) {
                return NGX_ERROR;
            }

            whole = whole * 10 + (*p - '0');
        }

        digits++;
    }

    if (digits == 0) {
        return NGX_ERROR;
    }

    while (decimals++ < 9) {
        frac *= 10;
    }

    *nano = whole * 1000000000 + frac;

    return NGX_OK;
}


static char *
ngx_http_ai_gateway(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_loc_conf_t *alcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (alcf->gateway != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    alcf->gateway = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_handler;

    return NGX_CONF_OK;
}


/* ai_unpriced refuse | free | default=IN,OUT   (USD per 1M tokens) */

static char *
ngx_http_ai_unpriced(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_loc_conf_t *alcf = conf;

    u_char               *comma;
    ngx_str_t            *value, in, out;
    ngx_http_ai_price_t  *price;

    if (alcf->unpriced != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 6 && ngx_strncmp(value[1].data, "refuse", 6) == 0) {
        alcf->unpriced = NGX_HTTP_AI_UNPRICED_REFUSE;
        alcf->unpriced_price = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len == 4 && ngx_strncmp(value[1].data, "free", 4) == 0) {
        alcf->unpriced = NGX_HTTP_AI_UNPRICED_FREE;
        alcf->unpriced_price = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len < 8 || ngx_strncmp(value[1].data, "default=", 8) != 0) {
        goto invalid;
    }

    in.data = value[1].data + 8;
    comma = ngx_strlchr(in.data, value[1].data + value[1].len, ',');

    if (comma == NULL) {
        goto invalid;
    }

    in.len = comma - in.data;
    out.data = comma + 1;
    out.len = value[1].data + value[1].len - out.data;

    price = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_price_t));
    if (price == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_parse_usd(&in, &price->input) != NGX_OK
        || ngx_http_ai_parse_usd(&out, &price->output) != NGX_OK)
    {
        goto invalid;
    }

    ngx_str_set(&price->model, "unpriced");
    price->input_text = in;
    price->output_text = out;

    alcf->unpriced = NGX_HTTP_AI_UNPRICED_DEFAULT;
    alcf->unpriced_price = price;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"%V\": ai_unpriced takes refuse, free or "
                       "default=IN,OUT (USD per 1M tokens, e.g. "
                       "default=2.50,10.00)", &value[1]);
    return NGX_CONF_ERROR;
}
