
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ngx_ai_gateway_module: its directives (their handlers live with what
 * they configure), configuration, and the postconfiguration that sets the
 * core up.  Nobody calls into this file.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


static ngx_int_t ngx_http_ai_preconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_ai_init(ngx_conf_t *cf);
static char *ngx_http_ai_gateway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_num_bounds_t  ngx_http_ai_max_tokens_bounds = {
    ngx_conf_check_num_bounds, 1, 100000000
};

static ngx_conf_num_bounds_t  ngx_http_ai_max_models_bounds = {
    ngx_conf_check_num_bounds, 0, NGX_HTTP_AI_MAX_MODELS
};

static ngx_conf_num_bounds_t  ngx_http_ai_max_attempts_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_HTTP_AI_MAX_ATTEMPTS
};


static ngx_conf_enum_t  ngx_http_ai_input_tokens[] = {
    { ngx_string("estimate"), 0 },
    { ngx_string("exact"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ai_commands[] = {

    { ngx_string("ai_provider"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_provider_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_price"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_ai_price_directive,
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

    { ngx_string("ai_messages_input_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_loc_conf_t, exact_input_tokens),
      &ngx_http_ai_input_tokens },

    { ngx_string("ai_unpriced"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_unpriced_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_ai_gateway_module_ctx = {
    ngx_http_ai_preconfiguration,          /* preconfiguration */
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
    alcf->exact_input_tokens = NGX_CONF_UNSET;
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
    ngx_conf_merge_value(conf->exact_input_tokens, prev->exact_input_tokens,
                         0);

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


/*
 * cJSON's memory from request pools (see ngx_ai_gateway_json.c), from
 * before the first directive: a tree parsed while the configuration is
 * read (a Vertex service account) is freed by the same hooks that made it.
 */

static ngx_int_t
ngx_http_ai_preconfiguration(ngx_conf_t *cf)
{
    ngx_ai_json_init_allocator();

    return ngx_http_ai_add_variables(cf);
}


static ngx_int_t
ngx_http_ai_init(ngx_conf_t *cf)
{
    if (ngx_http_ai_provider_init(cf) != NGX_OK
        || ngx_http_ai_secrets_init(cf) != NGX_OK
        || ngx_http_ai_response_init(cf) != NGX_OK
        || ngx_http_ai_breaker_init(cf) != NGX_OK
        || ngx_http_ai_handler_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

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

