
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
 *                           &zone=, &key=, &route=, &model= keep the
 *                           ledger, spend and rate entries that match;
 *                           &limit=, &offset= page them (a "page" object
 *                           then says how many matched)
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
#include "ngx_ai_gateway_cache.h"
#include "ngx_ai_gateway_dashboard.h"


#define NGX_HTTP_AI_STATUS_JSON         0
#define NGX_HTTP_AI_STATUS_PROMETHEUS   1
#define NGX_HTTP_AI_STATUS_HTML         2


static ngx_int_t ngx_http_ai_status_handler(ngx_http_request_t *r);
static void ngx_http_ai_status_state(ngx_http_request_t *r, ngx_ai_jw_t *w,
    ngx_http_ai_status_filter_t *f);
static ngx_int_t ngx_http_ai_status_filter(ngx_http_request_t *r,
    ngx_http_ai_status_filter_t *f, ngx_ai_error_t *err);
static ngx_int_t ngx_http_ai_status_string(ngx_http_request_t *r,
    const char *name, ngx_str_t *value, ngx_ai_error_t *err);
static ngx_int_t ngx_http_ai_status_number(ngx_http_request_t *r,
    const char *name, ngx_uint_t max, ngx_uint_t *value,
    ngx_ai_error_t *err);
static ngx_uint_t ngx_http_ai_status_keep(ngx_http_ai_status_filter_t *f,
    ngx_uint_t list, ngx_str_t *zone, u_char *digest, ngx_str_t *route,
    ngx_str_t *model);
static void ngx_http_ai_status_page(ngx_ai_jw_t *w,
    ngx_http_ai_status_filter_t *f);
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
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_ai_metrics_main_conf_t  *mmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_ai_status_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_ai_status_handler;

    /* the metrics zone is made by default where ai_status is used */

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_ai_gateway_metrics_module);
    mmcf->status = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc, n;
    ngx_str_t                        arg, body, json;
    ngx_uint_t                       format, minutes;
    ngx_ai_jw_t                      w;
    ngx_ai_buf_t                     b, out;
    ngx_ai_error_t                   err;
    ngx_http_ai_status_filter_t      filter, *f;

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
            goto invalid;
        }
    }

    /* the filters and the page: JSON only */

    f = NULL;

    if (format == NGX_HTTP_AI_STATUS_JSON) {
        rc = ngx_http_ai_status_filter(r, &filter, &err);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            goto invalid;
        }

        if (rc == NGX_OK) {
            f = &filter;
        }
    }

    if (format == NGX_HTTP_AI_STATUS_HTML) {
        return ngx_http_ai_status_send(r, NGX_HTTP_OK,
                                       "text/html; charset=utf-8",
                                       (u_char *) ngx_http_ai_dashboard_html,
                                       sizeof(ngx_http_ai_dashboard_html)
                                       - 1);
    }

    /* the document: its members in order, each subsystem's value whole */

    if (ngx_ai_buf_init(&b, r->pool, 8192) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_ai_jw_init(&w, &b);
    ngx_ai_jw_object(&w);

    ngx_http_ai_status_state(r, &w, f);

    if (format == NGX_HTTP_AI_STATUS_PROMETHEUS) {
        ngx_ai_jw_end(&w);

        if (ngx_ai_jw_done(&w) != NGX_OK) {
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

    ngx_ai_jw_key(&w, "metrics");
    ngx_http_ai_metrics_json(r, &w);

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

        ngx_ai_jw_key(&w, "series");
        ngx_http_ai_metrics_series_json(r, &w, minutes);
    }

    if (f) {
        ngx_http_ai_status_page(&w, f);
    }

    ngx_ai_jw_end(&w);

    if (ngx_ai_jw_done(&w) != NGX_OK
        || ngx_ai_buf_append(&b, "\n", 1) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_status_send(r, NGX_HTTP_OK, "application/json",
                                   b.data, b.len);

invalid:

    if (ngx_ai_error_render(r->pool, &err, &body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_status_send(r, NGX_HTTP_BAD_REQUEST,
                                   "application/json", body.data, body.len);
}


/*
 * ?zone= ?key= ?route= ?model= ?limit= ?offset=: NGX_OK, f filled;
 * NGX_DONE: none given (the output stays as it always was); NGX_DECLINED:
 * err names the bad one; NGX_ERROR: out of memory
 */

static ngx_int_t
ngx_http_ai_status_filter(ngx_http_request_t *r,
    ngx_http_ai_status_filter_t *f, ngx_ai_error_t *err)
{
    u_char                            c;
    size_t                            i;
    ngx_int_t                         rc, given;
    ngx_str_t                         key, *name;
    ngx_uint_t                        n, found;
    ngx_shm_zone_t                  **zones;
    ngx_http_ai_limits_main_conf_t   *lmcf;

    ngx_memzero(f, sizeof(ngx_http_ai_status_filter_t));
    f->keep = ngx_http_ai_status_keep;
    given = 0;

    rc = ngx_http_ai_status_string(r, "zone", &f->zone, err);
    if (rc != NGX_DONE) {
        if (rc != NGX_OK) {
            return rc;
        }

        given = 1;

        /* a name no zone has is a mistake, not an empty answer */

        lmcf = ngx_http_get_module_main_conf(r,
                                             ngx_ai_gateway_limits_module);
        found = 0;

        zones = lmcf->cost_zones.elts;

        for (n = 0; n < lmcf->cost_zones.nelts; n++) {
            name = &zones[n]->shm.name;
            found |= (name->len == f->zone.len
                      && ngx_strncmp(name->data, f->zone.data, name->len)
                         == 0);
        }

        zones = lmcf->rate_zones.elts;

        for (n = 0; n < lmcf->rate_zones.nelts; n++) {
            name = &zones[n]->shm.name;
            found |= (name->len == f->zone.len
                      && ngx_strncmp(name->data, f->zone.data, name->len)
                         == 0);
        }

        if (!found) {
            ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST,
                             "invalid_request_error", "zone",
                             "invalid_value", "zone: no ai_cost_zone or "
                             "ai_rate_zone has that name");
            return NGX_DECLINED;
        }
    }

    rc = ngx_http_ai_status_string(r, "key", &key, err);
    if (rc != NGX_DONE) {
        if (rc != NGX_OK) {
            return rc;
        }

        given = 1;

        if (key.len > NGX_HTTP_AI_DIGEST_LEN * 2) {
            goto bad_key;
        }

        for (i = 0; i < key.len; i++) {
            c = ngx_tolower(key.data[i]);

            if (c >= '0' && c <= '9') {
                f->key[i] = c - '0';

            } else if (c >= 'a' && c <= 'f') {
                f->key[i] = c - 'a' + 10;

            } else {
                goto bad_key;
            }
        }

        f->key_len = key.len;
    }

    rc = ngx_http_ai_status_string(r, "route", &f->route, err);
    if (rc != NGX_DONE) {
        if (rc != NGX_OK) {
            return rc;
        }

        given = 1;
        f->has_route = 1;
    }

    rc = ngx_http_ai_status_string(r, "model", &f->model, err);
    if (rc != NGX_DONE) {
        if (rc != NGX_OK) {
            return rc;
        }

        given = 1;
        f->has_model = 1;
    }

    rc = ngx_http_ai_status_number(r, "limit", NGX_HTTP_AI_STATUS_MAX_LIMIT,
                                   &f->limit, err);
    if (rc != NGX_DONE) {
        if (rc != NGX_OK) {
            return rc;
        }

        given = 1;
        f->limited = 1;
    }

    rc = ngx_http_ai_status_number(r, "offset", NGX_MAX_INT_T_VALUE,
                                   &f->offset, err);
    if (rc != NGX_DONE) {
        if (rc != NGX_OK) {
            return rc;
        }

        given = 1;
    }

    return given ? NGX_OK : NGX_DONE;

bad_key:

    ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                     "key", "invalid_value", "key: 1 to 64 hex digits of "
                     "the key's SHA-256 digest, as the entries show it");
    return NGX_DECLINED;
}


/* ?name=value, %XX decoded: NGX_OK; NGX_DONE: not given; NGX_DECLINED */

static ngx_int_t
ngx_http_ai_status_string(ngx_http_request_t *r, const char *name,
    ngx_str_t *value, ngx_ai_error_t *err)
{
    u_char     *last;
    ngx_str_t   arg;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &arg) != NGX_OK) {
        return NGX_DONE;
    }

    value->data = ngx_pnalloc(r->pool, arg.len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    last = ngx_ai_percent_decode(value->data, arg.data, arg.len, 0);

    if (last == NULL || last == value->data) {
        ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                         name, "invalid_value", "an empty value, or a bad "
                         "%XX in it");
        return NGX_DECLINED;
    }

    value->len = last - value->data;

    return NGX_OK;
}


/* ?name=N, 0 <= N <= max: NGX_OK; NGX_DONE: not given; NGX_DECLINED */

static ngx_int_t
ngx_http_ai_status_number(ngx_http_request_t *r, const char *name,
    ngx_uint_t max, ngx_uint_t *value, ngx_ai_error_t *err)
{
    ngx_int_t  n;
    ngx_str_t  arg;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &arg) != NGX_OK) {
        return NGX_DONE;
    }

    n = ngx_atoi(arg.data, arg.len);

    if (n == NGX_ERROR || (ngx_uint_t) n > max) {
        ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                         name, "invalid_value",
                         max == NGX_HTTP_AI_STATUS_MAX_LIMIT
                         ? "limit: an integer from 0 to 100000"
                         : "offset: an integer from 0");
        return NGX_DECLINED;
    }

    *value = n;

    return NGX_OK;
}


/*
 * An entry of list (ledger, spend or rate) passes the filter: counted;
 * kept if it is also in the page.  digest, route and model are NULL when
 * the entry shows none (a keyless entry's key is null, a keyed account's
 * route is null, only ledger entries have a model).
 */

static ngx_uint_t
ngx_http_ai_status_keep(ngx_http_ai_status_filter_t *f, ngx_uint_t list,
    ngx_str_t *zone, u_char *digest, ngx_str_t *route, ngx_str_t *model)
{
    size_t      i;
    ngx_uint_t  n;

    if (f->zone.len
        && (zone->len != f->zone.len
            || ngx_strncmp(zone->data, f->zone.data, zone->len) != 0))
    {
        return 0;
    }

    if (f->key_len) {
        if (digest == NULL) {
            return 0;
        }

        for (i = 0; i < f->key_len; i++) {
            if (((i % 2) ? (digest[i / 2] & 0xf) : (digest[i / 2] >> 4))
                != f->key[i])
            {
                return 0;
            }
        }
    }

    if (f->has_route
        && (route == NULL || route->len != f->route.len
            || ngx_strncmp(route->data, f->route.data, route->len) != 0))
    {
        return 0;
    }

    if (f->has_model
        && (model == NULL || model->len != f->model.len
            || ngx_strncmp(model->data, f->model.data, model->len) != 0))
    {
        return 0;
    }

    n = f->total[list]++;

    return n >= f->offset && (!f->limited || n - f->offset < f->limit);
}


/* "page":{...}: how the arrays were cut */

static void
ngx_http_ai_status_page(ngx_ai_jw_t *w, ngx_http_ai_status_filter_t *f)
{
    ngx_ai_jw_key(w, "page");
    ngx_ai_jw_object(w);
    ngx_ai_jw_key(w, "limit");

    if (f->limited) {
        ngx_ai_jw_uint(w, f->limit);

    } else {
        ngx_ai_jw_null(w);
    }

    ngx_ai_jw_key_uint(w, "offset", f->offset);
    ngx_ai_jw_key_uint(w, "ledger_total", f->total[NGX_HTTP_AI_STATUS_LEDGER]);
    ngx_ai_jw_key_uint(w, "spend_total", f->total[NGX_HTTP_AI_STATUS_SPEND]);
    ngx_ai_jw_key_uint(w, "rate_total", f->total[NGX_HTTP_AI_STATUS_RATE]);
    ngx_ai_jw_end(w);
}


/*
 * The members every format has, up to the breakers: the cost zones'
 * totals, ledger and spend, the zones, the rate buckets, the sync zones,
 * the guards and the breakers
 */

static void
ngx_http_ai_status_state(ngx_http_request_t *r, ngx_ai_jw_t *w,
    ngx_http_ai_status_filter_t *f)
{
    ngx_http_ai_main_conf_t         *amcf;
    ngx_http_ai_limits_main_conf_t  *lmcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_module);
    lmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_limits_module);

    ngx_ai_jw_key(w, "version");
    ngx_ai_jw_str(w, NGX_AI_GATEWAY_VERSION);
    ngx_ai_jw_key_uint(w, "time", (uint64_t) ngx_time());

    ngx_ai_jw_key(w, "totals");
    ngx_http_ai_cost_totals_json(lmcf, w);
    ngx_ai_jw_key(w, "ledger");
    ngx_http_ai_cost_entries_json(lmcf, w, f, NGX_HTTP_AI_STATUS_LEDGER);
    ngx_ai_jw_key(w, "spend");
    ngx_http_ai_cost_entries_json(lmcf, w, f, NGX_HTTP_AI_STATUS_SPEND);

    ngx_ai_jw_key(w, "zones");
    ngx_ai_jw_array(w);
    ngx_http_ai_cost_zones_json(lmcf, w);
    ngx_http_ai_rate_zones_json(lmcf, w);
    ngx_http_ai_metrics_zone_json(r, w);
    ngx_ai_jw_end(w);

    ngx_ai_jw_key(w, "rate");
    ngx_http_ai_rate_json(lmcf, w, f);
    ngx_ai_jw_key(w, "sync");
    ngx_http_ai_sync_json(lmcf, w);
    ngx_ai_jw_key(w, "guards");
    ngx_http_ai_guard_status_json(r, w);
    ngx_ai_jw_key(w, "breakers");
    ngx_http_ai_breaker_json(amcf, w);

    if (ngx_http_ai_cache_count(r)) {
        ngx_ai_jw_key(w, "cache");
        ngx_http_ai_cache_status_json(r, w);
    }
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
