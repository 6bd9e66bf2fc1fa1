
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ai_status: the gateway's state (DESIGN.md section 7).
 *
 *   ?format=json (default)  version, time, totals and ledger of the cost
 *                           zones, the spend of budget accounts, the
 *                           zones, the rate buckets, the guards, the
 *                           circuit breakers, and the metrics zone's
 *                           counters; &series=1[&minutes=N] adds the
 *                           per-minute series of the last N minutes
 *   ?format=prometheus      the text exposition format
 *   ?format=html            the dashboard: one page, its CSS and JS
 *                           inline, drawing the JSON above
 *
 * Keys appear as a short prefix of their SHA-256 digest, never in clear.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_metrics.h"
#include "ngx_ai_gateway_dashboard.h"


#define NGX_HTTP_AI_STATUS_JSON         0
#define NGX_HTTP_AI_STATUS_PROMETHEUS   1
#define NGX_HTTP_AI_STATUS_HTML         2


static ngx_int_t ngx_http_ai_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_status_state(ngx_http_request_t *r,
    ngx_ai_buf_t *b);
static ngx_int_t ngx_http_ai_status_send(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, u_char *data, size_t len);


static ngx_str_t  ngx_http_ai_status_formats[] = {
    ngx_string("json"),
    ngx_string("prometheus"),
    ngx_string("html")
};


char *
ngx_http_ai_status_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_ai_status_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_ai_status_handler;

    /* the metrics zone is made by default where ai_status is used */
    ngx_http_ai_metrics_status_seen(cf);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc, n;
    ngx_str_t                        arg, body, json;
    ngx_uint_t                       format, minutes;
    ngx_ai_buf_t                     b, out;
    ngx_ai_error_t                   err;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    format = NGX_HTTP_AI_STATUS_JSON;

    if (ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK) {

        for (format = 0; format < 3; format++) {
            if (arg.len == ngx_http_ai_status_formats[format].len
                && ngx_strncmp(arg.data,
                               ngx_http_ai_status_formats[format].data,
                               arg.len) == 0)
            {
                break;
            }
        }

        if (format == 3) {
            ngx_ai_error_set(&err, NGX_HTTP_BAD_REQUEST,
                             "invalid_request_error", "format",
                             "unsupported_format",
                             "ai_status serves format=json, "
                             "format=prometheus and format=html");

            if (ngx_ai_error_render(r->pool, &err, &body) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_ai_status_send(r, NGX_HTTP_BAD_REQUEST,
                                           "application/json",
                                           body.data, body.len);
        }
    }

    if (format == NGX_HTTP_AI_STATUS_HTML) {
        return ngx_http_ai_status_send(r, NGX_HTTP_OK,
                                       "text/html; charset=utf-8",
                                       (u_char *) ngx_http_ai_dashboard_html,
                                       sizeof(ngx_http_ai_dashboard_html)
                                       - 1);
    }

    if (ngx_ai_buf_init(&b, r->pool, 8192) != NGX_OK
        || ngx_http_ai_status_state(r, &b) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (format == NGX_HTTP_AI_STATUS_PROMETHEUS) {
        if (ngx_ai_buf_append_str(&b, "}") != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        json.data = b.data;
        json.len = b.len;

        if (ngx_ai_buf_init(&out, r->pool, 16384) != NGX_OK
            || ngx_http_ai_prometheus(r, &json, &out) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_ai_status_send(r, NGX_HTTP_OK,
                                       "text/plain; version=0.0.4; "
                                       "charset=utf-8",
                                       out.data, out.len);
    }

    if (ngx_ai_buf_append_str(&b, ",\"metrics\":") != NGX_OK
        || ngx_http_ai_metrics_json(r, &b) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "series", 6, &arg) == NGX_OK
        && !(arg.len == 1 && arg.data[0] == '0'))
    {
        minutes = 60;

        if (ngx_http_arg(r, (u_char *) "minutes", 7, &arg) == NGX_OK) {
            n = ngx_atoi(arg.data, arg.len);

            if (n > 0) {
                minutes = ngx_min((ngx_uint_t) n,
                                  NGX_HTTP_AI_METRICS_MINUTES);
            }
        }

        if (ngx_ai_buf_append_str(&b, ",\"series\":") != NGX_OK
            || ngx_http_ai_metrics_series_json(r, &b, minutes) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_ai_buf_append_str(&b, "}\n") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_status_send(r, NGX_HTTP_OK, "application/json",
                                   b.data, b.len);
}


/* the object's members up to the breakers, without its closing brace */

static ngx_int_t
ngx_http_ai_status_state(ngx_http_request_t *r, ngx_ai_buf_t *b)
{
    ngx_http_ai_main_conf_t         *amcf;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_module);
    lmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_limits_module);

    if (ngx_ai_buf_append_str(b, "{\"version\":\"" NGX_AI_GATEWAY_VERSION
                                 "\",\"time\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, (uint64_t) ngx_time()) != NGX_OK
        || ngx_ai_buf_append_str(b, ",") != NGX_OK
        || ngx_http_ai_cost_json(r, lmcf, b) != NGX_OK
        || ngx_http_ai_rate_zones_json(lmcf, b,
                                       lmcf->cost_zones.nelts == 0)
           != NGX_OK
        || ngx_http_ai_metrics_zone_json(r, b,
                                         lmcf->cost_zones.nelts == 0
                                         && lmcf->rate_zones.nelts == 0)
           != NGX_OK
        || ngx_ai_buf_append_str(b, "],\"rate\":[") != NGX_OK
        || ngx_http_ai_rate_json(r, lmcf, b) != NGX_OK
        || ngx_ai_buf_append_str(b, "],") != NGX_OK
        || ngx_http_ai_sync_json(lmcf, b) != NGX_OK   /* "sync":[...], */
        || ngx_http_ai_guard_status_json(r, b) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"breakers\":") != NGX_OK
        || ngx_http_ai_breaker_json(amcf, b) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_status_send(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *data, size_t len)
{
    u_char           *semi;
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

    if (type[5] == 'h') {
        /*
         * text/html: the page may run its own inline code and fetch its
         * own location, nothing else
         */

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Content-Security-Policy");
        ngx_str_set(&h->value, "default-src 'none'; "
                               "script-src 'unsafe-inline'; "
                               "style-src 'unsafe-inline'; "
                               "connect-src 'self'; img-src data:; "
                               "base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'");

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "X-Content-Type-Options");
        ngx_str_set(&h->value, "nosniff");
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_lowcase = NULL;

    semi = (u_char *) ngx_strchr(type, ';');
    r->headers_out.content_type_len = semi ? (size_t) (semi - (u_char *) type)
                                           : r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
