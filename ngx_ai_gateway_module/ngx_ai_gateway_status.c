
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ai_status: the gateway's state as JSON (DESIGN.md section 7): version,
 * time, totals and ledger of the cost zones, the spend of budget
 * accounts, the rate buckets, the circuit breakers.  Keys appear as a
 * short prefix of their SHA-256 digest, never in clear.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"


static ngx_int_t ngx_http_ai_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_status_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);


char *
ngx_http_ai_status_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_ai_status_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_ai_status_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        format, body;
    ngx_ai_buf_t                     b;
    ngx_ai_error_t                   err;
    ngx_http_ai_main_conf_t         *amcf;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
        && !(format.len == 4 && ngx_strncmp(format.data, "json", 4) == 0))
    {
        ngx_ai_error_set(&err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                         "format", "unsupported_format",
                         "ai_status serves format=json");

        if (ngx_ai_error_render(r->pool, &err, &body) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_ai_status_send(r, NGX_HTTP_BAD_REQUEST, &body);
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_module);
    lmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_limits_module);

    if (ngx_ai_buf_init(&b, r->pool, 4096) != NGX_OK
        || ngx_ai_buf_append_str(&b, "{\"version\":\"" NGX_AI_GATEWAY_VERSION
                                 "\",\"time\":") != NGX_OK
        || ngx_ai_buf_append_uint(&b, (uint64_t) ngx_time()) != NGX_OK
        || ngx_ai_buf_append_str(&b, ",") != NGX_OK
        || ngx_http_ai_cost_json(r, lmcf, &b) != NGX_OK
        || ngx_http_ai_rate_zones_json(lmcf, &b,
                                       lmcf->cost_zones.nelts == 0)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, "],\"rate\":[") != NGX_OK
        || ngx_http_ai_rate_json(r, lmcf, &b) != NGX_OK
        || ngx_ai_buf_append_str(&b, "],") != NGX_OK
        || ngx_http_ai_guard_status_json(r, &b) != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"breakers\":") != NGX_OK
        || ngx_http_ai_breaker_json(amcf, &b) != NGX_OK
        || ngx_ai_buf_append_str(&b, "}\n") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = b.data;
    body.len = b.len;

    return ngx_http_ai_status_send(r, NGX_HTTP_OK, &body);
}


static ngx_int_t
ngx_http_ai_status_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
