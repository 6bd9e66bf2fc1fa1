
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Provider keys stay out of the logs.  nginx's proxy module writes the
 * whole request it builds for an upstream to the debug log ("http proxy
 * header: ..."), and a provider call's request holds the provider's key.
 * For the gateway's own provider subrequests, the content handler of the
 * pass location (proxy_pass) runs with the connection's debug logging
 * switched off; it builds the upstream request synchronously inside that
 * call, so nothing else is silenced.  Errors and warnings still log.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


static ngx_int_t ngx_http_ai_secrets_precontent(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_secrets_content(ngx_http_request_t *r);


ngx_int_t
ngx_http_ai_secrets_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_secrets_precontent;

    return NGX_OK;
}


/* a provider call: its content handler is wrapped */

static ngx_int_t
ngx_http_ai_secrets_precontent(ngx_http_request_t *r)
{
    ngx_http_ai_attempt_t  *a;

    if (r == r->main) {
        return NGX_DECLINED;
    }

    a = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

    if (a == NULL || r->content_handler == NULL
        || r->content_handler == ngx_http_ai_secrets_content)
    {
        return NGX_DECLINED;
    }

    a->content_handler = r->content_handler;
    r->content_handler = ngx_http_ai_secrets_content;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_secrets_content(ngx_http_request_t *r)
{
    ngx_int_t               rc;
    ngx_uint_t              level;
    ngx_log_t              *log;
    ngx_http_ai_attempt_t  *a;

    a = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);
    log = r->connection->log;

    level = log->log_level;
    log->log_level &= ~NGX_LOG_DEBUG_ALL;

    rc = a->content_handler(r);

    log->log_level = level;

    return rc;
}
