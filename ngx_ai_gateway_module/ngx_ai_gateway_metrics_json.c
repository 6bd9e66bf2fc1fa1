
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The metrics zone's JSON for ai_status: its item in "zones", the
 * "metrics" object (totals, entries, series' cumulative figures) and the
 * per-minute "series".
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_metrics.h"


/* a per-minute figure of the series output: a uint32_t or uint64_t */
typedef struct {
    const char                     *name;
    size_t                          offset;
    size_t                          width;
} ngx_http_ai_metrics_column_t;

#define ngx_http_ai_metrics_column(type, name, field)                        \
    { name, offsetof(type, field), sizeof(((type *) 0)->field) }


static void ngx_http_ai_metrics_labels_json(ngx_ai_jw_t *w,
    ngx_http_ai_metrics_node_t *mn, ngx_array_t *names);
static void ngx_http_ai_metrics_opt_string(ngx_ai_jw_t *w, u_char *p,
    size_t len);
static void ngx_http_ai_metrics_hist_json(ngx_ai_jw_t *w,
    ngx_http_ai_histogram_t *h, ngx_uint_t buckets);
static void ngx_http_ai_metrics_columns(ngx_ai_jw_t *w,
    ngx_http_ai_metrics_column_t *col, void *p, size_t stride, ngx_uint_t n);
static void ngx_http_ai_metrics_quantiles(ngx_ai_jw_t *w, const char *name,
    ngx_http_ai_metrics_minute_t *mins, ngx_uint_t n, ngx_uint_t ttft,
    ngx_uint_t permille);


static ngx_http_ai_metrics_column_t  ngx_http_ai_metrics_minute_columns[] = {
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "requests",
                               requests),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "status_4xx",
                               status_4xx),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "status_5xx",
                               status_5xx),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "fallbacks",
                               fallbacks),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "rate_limited",
                               rate_limited),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "budget_refused",
                               budget_refused),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "fusions",
                               fusions),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "input_tokens",
                               input_tokens),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "output_tokens",
                               output_tokens),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_minute_t, "cost_nano_usd",
                               cost),
    { NULL, 0, 0 }
};


static ngx_http_ai_metrics_column_t  ngx_http_ai_metrics_point_columns[] = {
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_point_t, "requests",
                               requests),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_point_t, "calls", calls),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_point_t, "input_tokens",
                               input_tokens),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_point_t, "output_tokens",
                               output_tokens),
    ngx_http_ai_metrics_column(ngx_http_ai_metrics_point_t, "cost_nano_usd",
                               cost),
    { NULL, 0, 0 }
};


/* the zone's item in the status "zones" array; none without a zone */

void
ngx_http_ai_metrics_zone_json(ngx_http_request_t *r, ngx_ai_jw_t *w)
{
    ngx_http_ai_metrics_sh_t         *sh;
    ngx_http_ai_metrics_zone_t       *mz;
    ngx_http_ai_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_metrics_module);

    if (mmcf->zone == NULL) {
        return;
    }

    mz = mmcf->zone->data;
    sh = mz->sh;

    ngx_ai_jw_object(w);
    ngx_ai_jw_key_string(w, "zone", mmcf->zone->shm.name.data,
                         mmcf->zone->shm.name.len);
    ngx_ai_jw_key_string(w, "type", (u_char *) "metrics", 7);
    ngx_ai_jw_key_uint(w, "size", mmcf->zone->shm.size);

    ngx_shmtx_lock(&mz->shpool->mutex);

    ngx_ai_jw_key_uint(w, "entries", sh->entries);
    ngx_ai_jw_key_uint(w, "series", sh->nseries);
    ngx_ai_jw_key_uint(w, "max_series", sh->max_series);
    ngx_ai_jw_key_uint(w, "evicted", sh->evicted);
    ngx_ai_jw_key_uint(w, "series_evicted", sh->series_evicted);

    ngx_shmtx_unlock(&mz->shpool->mutex);

    ngx_ai_jw_end(w);
}


/*
 * The status "metrics": {"zone", "histogram_bounds_ms", "since",
 * "totals", "requests", "calls", "refusals", "fusion", "keys", "models",
 * "routes"}; null without a zone.
 */

void
ngx_http_ai_metrics_json(ngx_http_request_t *r, ngx_ai_jw_t *w)
{
    ngx_uint_t                        i, type;
    ngx_queue_t                      *q, *list;
    ngx_http_ai_metrics_sh_t         *sh;
    ngx_http_ai_metrics_node_t       *mn;
    ngx_http_ai_metrics_zone_t       *mz;
    ngx_http_ai_metrics_totals_t     *tt;
    ngx_http_ai_limits_main_conf_t   *lmcf;
    ngx_http_ai_metrics_main_conf_t  *mmcf;

    static const char  *lists[] = {
        NULL, "requests", "calls", "refusals", "fusion", "keys", "models",
        "routes"
    };

    mmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_metrics_module);

    if (mmcf->zone == NULL) {
        ngx_ai_jw_null(w);
        return;
    }

    mz = mmcf->zone->data;
    sh = mz->sh;
    lmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_limits_module);

    ngx_ai_jw_object(w);
    ngx_ai_jw_key_string(w, "zone", mmcf->zone->shm.name.data,
                         mmcf->zone->shm.name.len);
    ngx_ai_jw_key(w, "histogram_bounds_ms");
    ngx_ai_jw_array(w);

    for (i = 0; i < NGX_HTTP_AI_METRICS_BUCKETS - 1; i++) {
        ngx_ai_jw_uint(w, ngx_http_ai_metrics_bounds[i]);
    }

    ngx_ai_jw_end(w);

    ngx_shmtx_lock(&mz->shpool->mutex);

    tt = &sh->totals;

    ngx_ai_jw_key_uint(w, "since", sh->started);
    ngx_ai_jw_key(w, "totals");
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_uint(w, "requests", tt->requests);
    ngx_ai_jw_key_uint(w, "status_2xx", tt->status_2xx);
    ngx_ai_jw_key_uint(w, "status_4xx", tt->status_4xx);
    ngx_ai_jw_key_uint(w, "status_5xx", tt->status_5xx);
    ngx_ai_jw_key_uint(w, "calls", tt->calls);
    ngx_ai_jw_key_uint(w, "call_errors", tt->call_errors);
    ngx_ai_jw_key_uint(w, "aborted", tt->aborted);
    ngx_ai_jw_key_uint(w, "input_tokens", tt->input_tokens);
    ngx_ai_jw_key_uint(w, "output_tokens", tt->output_tokens);
    ngx_ai_jw_key_uint(w, "cost_nano_usd", tt->cost);
    ngx_ai_jw_key_usd(w, "cost_usd", tt->cost);
    ngx_ai_jw_key_uint(w, "estimated_cost_nano_usd", tt->est_cost);
    ngx_ai_jw_key_uint(w, "fallbacks", tt->fallbacks);
    ngx_ai_jw_key_uint(w, "breaker_skips", tt->skipped);
    ngx_ai_jw_key_uint(w, "rate_limited", tt->rate_limited);
    ngx_ai_jw_key_uint(w, "budget_refused", tt->budget_refused);
    ngx_ai_jw_key_uint(w, "fusions", tt->fusions);
    ngx_ai_jw_key(w, "duration_ms");
    ngx_http_ai_metrics_hist_json(w, &tt->duration, 0);
    ngx_ai_jw_key(w, "ttft_ms");
    ngx_http_ai_metrics_hist_json(w, &tt->ttft, 0);
    ngx_ai_jw_end(w);

    for (type = NGX_HTTP_AI_METRICS_REQUEST;
         type <= NGX_HTTP_AI_METRICS_ROUTE && w->rc == NGX_OK;
         type++)
    {
        ngx_ai_jw_key(w, lists[type]);
        ngx_ai_jw_array(w);

        list = ngx_http_ai_metrics_is_series(type) ? &sh->series
                                                   : &sh->queue;

        for (q = ngx_queue_head(list);
             q != ngx_queue_sentinel(list) && w->rc == NGX_OK;
             q = ngx_queue_next(q))
        {
            mn = ngx_queue_data(q, ngx_http_ai_metrics_node_t, queue);

            if (mn->type != type) {
                continue;
            }

            ngx_ai_jw_object(w);
            ngx_http_ai_metrics_labels_json(w, mn, lmcf->key_names);

            switch (type) {

            case NGX_HTTP_AI_METRICS_REQUEST:
                ngx_ai_jw_key_uint(w, "requests", mn->u.request.requests);
                ngx_ai_jw_key(w, "duration_ms");
                ngx_http_ai_metrics_hist_json(w, &mn->u.request.duration, 1);
                ngx_ai_jw_key(w, "ttft_ms");
                ngx_http_ai_metrics_hist_json(w, &mn->u.request.ttft, 1);
                break;

            case NGX_HTTP_AI_METRICS_CALL:
                ngx_ai_jw_key_uint(w, "calls", mn->u.call.calls);
                ngx_ai_jw_key_uint(w, "errors", mn->u.call.errors);
                ngx_ai_jw_key_uint(w, "aborted", mn->u.call.aborted);
                ngx_ai_jw_key_uint(w, "input_tokens",
                                   mn->u.call.input_tokens);
                ngx_ai_jw_key_uint(w, "output_tokens",
                                   mn->u.call.output_tokens);
                ngx_ai_jw_key_uint(w, "cost_nano_usd", mn->u.call.cost);
                ngx_ai_jw_key_usd(w, "cost_usd", mn->u.call.cost);
                ngx_ai_jw_key_uint(w, "estimated_cost_nano_usd",
                                   mn->u.call.est_cost);
                ngx_ai_jw_key_uint(w, "fallbacks", mn->u.call.fallbacks);
                ngx_ai_jw_key_uint(w, "breaker_skips", mn->u.call.skipped);
                break;

            case NGX_HTTP_AI_METRICS_REFUSAL:
            case NGX_HTTP_AI_METRICS_FUSION:
                ngx_ai_jw_key_uint(w, "requests", mn->u.refusal.count);
                break;

            default: /* a series */
                ngx_ai_jw_key_uint(w, "requests", mn->u.series.requests);
                ngx_ai_jw_key_uint(w, "calls", mn->u.series.calls);
                ngx_ai_jw_key_uint(w, "input_tokens",
                                   mn->u.series.input_tokens);
                ngx_ai_jw_key_uint(w, "output_tokens",
                                   mn->u.series.output_tokens);
                ngx_ai_jw_key_uint(w, "cost_nano_usd", mn->u.series.cost);
                ngx_ai_jw_key_usd(w, "cost_usd", mn->u.series.cost);
                ngx_ai_jw_key_uint(w, "since", mn->u.series.created);
                break;
            }

            ngx_ai_jw_end(w);
        }

        ngx_ai_jw_end(w);
    }

    ngx_shmtx_unlock(&mz->shpool->mutex);

    ngx_ai_jw_end(w);
}


/*
 * "route", "provider", "model", "status" ... of an entry; a key's, its
 * name and team where it is an ai_auth key's
 */

static void
ngx_http_ai_metrics_labels_json(ngx_ai_jw_t *w,
    ngx_http_ai_metrics_node_t *mn, ngx_array_t *names)
{
    u_char     *model, *extra, *slash;
    ngx_uint_t  type;

    type = mn->type;
    model = mn->data + mn->route_len;
    extra = model + mn->model_len;

    if (type >= NGX_HTTP_AI_METRICS_KEY) {
        ngx_ai_jw_key(w, type == NGX_HTTP_AI_METRICS_KEY ? "key"
                         : type == NGX_HTTP_AI_METRICS_MODEL ? "model"
                         : "route");
        ngx_ai_jw_string(w, mn->data, mn->route_len);

        if (type == NGX_HTTP_AI_METRICS_KEY) {
            ngx_http_ai_key_name_json_hex(w, names, mn->data, mn->route_len);
        }

        return;
    }

    ngx_ai_jw_key_string(w, "route", mn->data, mn->route_len);

    if (type == NGX_HTTP_AI_METRICS_FUSION) {
        ngx_ai_jw_key_string(w, "mode", model, mn->model_len);
        ngx_ai_jw_key_string(w, "judge_status", extra, mn->extra_len);
        return;
    }

    slash = ngx_strlchr(model, model + mn->model_len, '/');

    ngx_ai_jw_key(w, "provider");
    ngx_http_ai_metrics_opt_string(w, model, slash ? (size_t) (slash - model)
                                                   : mn->model_len);
    ngx_ai_jw_key(w, "model");
    ngx_http_ai_metrics_opt_string(w, model, mn->model_len);

    if (type == NGX_HTTP_AI_METRICS_REQUEST) {
        ngx_ai_jw_key_uint(w, "status", mn->status);

    } else if (type == NGX_HTTP_AI_METRICS_REFUSAL) {
        ngx_ai_jw_key_string(w, "limit", extra, mn->extra_len);
    }
}


static void
ngx_http_ai_metrics_opt_string(ngx_ai_jw_t *w, u_char *p, size_t len)
{
    if (len == 0) {
        ngx_ai_jw_null(w);
        return;
    }

    ngx_ai_jw_string(w, p, len);
}


/* {"count","sum","p50","p90","p99"[,"buckets":[...]]}, ms */

static void
ngx_http_ai_metrics_hist_json(ngx_ai_jw_t *w, ngx_http_ai_histogram_t *h,
    ngx_uint_t buckets)
{
    ngx_uint_t  i;

    ngx_ai_jw_object(w);
    ngx_ai_jw_key_uint(w, "count", h->count);
    ngx_ai_jw_key_uint(w, "sum", h->sum);
    ngx_ai_jw_key_uint(w, "p50",
               ngx_http_ai_histogram_quantile(h->buckets, h->count, 500));
    ngx_ai_jw_key_uint(w, "p90",
               ngx_http_ai_histogram_quantile(h->buckets, h->count, 900));
    ngx_ai_jw_key_uint(w, "p99",
               ngx_http_ai_histogram_quantile(h->buckets, h->count, 990));

    if (buckets) {
        ngx_ai_jw_key(w, "buckets");
        ngx_ai_jw_array(w);

        for (i = 0; i < NGX_HTTP_AI_METRICS_BUCKETS; i++) {
            ngx_ai_jw_uint(w, h->buckets[i]);
        }

        ngx_ai_jw_end(w);
    }

    ngx_ai_jw_end(w);
}


/*
 * The status "series": the last N minutes (the current one last) for the
 * dashboard: {"start","step","minutes","totals":{NAME:[...],...},
 * "keys":[...],"models":[...],"routes":[...]}; null without a zone.  The
 * rings are copied under the mutex and written out after.
 */

void
ngx_http_ai_metrics_series_json(ngx_http_request_t *r, ngx_ai_jw_t *w,
    ngx_uint_t minutes)
{
    uint32_t                          now, from, m, last;
    ngx_uint_t                        i, j, n, ns, type;
    ngx_queue_t                      *q;
    ngx_http_ai_metrics_sh_t         *sh;
    ngx_http_ai_metrics_node_t       *mn, **nodes;
    ngx_http_ai_metrics_zone_t       *mz;
    ngx_http_ai_metrics_point_t      *pts;
    ngx_http_ai_metrics_minute_t     *mins;
    ngx_http_ai_limits_main_conf_t   *lmcf;
    ngx_http_ai_metrics_main_conf_t  *mmcf;

    static const char  *lists[] = { "keys", "models", "routes" };
    static const char  *labels[] = { "key", "model", "route" };

    mmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_metrics_module);

    if (mmcf->zone == NULL) {
        ngx_ai_jw_null(w);
        return;
    }

    mz = mmcf->zone->data;
    sh = mz->sh;
    lmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_limits_module);

    n = ngx_max(1, ngx_min(minutes, NGX_HTTP_AI_METRICS_MINUTES));
    now = (uint32_t) (ngx_time() / 60);
    from = now - (uint32_t) n + 1;

    mins = ngx_pcalloc(r->pool, n * sizeof(ngx_http_ai_metrics_minute_t));
    if (mins == NULL) {
        w->rc = NGX_ERROR;
        return;
    }

    /*
     * room for the series there are now (read unlocked, as a hint: series
     * made meanwhile wait for the next request)
     */

    ns = sh->nseries;

    nodes = ngx_palloc(r->pool,
                       (ns + 1) * sizeof(ngx_http_ai_metrics_node_t *));
    pts = ngx_pcalloc(r->pool,
                      (ns + 1) * n * sizeof(ngx_http_ai_metrics_point_t));

    if (nodes == NULL || pts == NULL) {
        w->rc = NGX_ERROR;
        return;
    }

    ngx_shmtx_lock(&mz->shpool->mutex);

    /* a slot holds minute m when m is within the ring behind "last" */

    last = sh->last;

    for (i = 0; i < n; i++) {
        m = from + (uint32_t) i;

        if (m <= last && last - m < NGX_HTTP_AI_METRICS_MINUTES) {
            mins[i] = sh->minutes[m % NGX_HTTP_AI_METRICS_MINUTES];
        }
    }

    j = 0;

    for (q = ngx_queue_head(&sh->series);
         q != ngx_queue_sentinel(&sh->series) && j < ns;
         q = ngx_queue_next(q))
    {
        mn = ngx_queue_data(q, ngx_http_ai_metrics_node_t, queue);

        /* the label is copied: the node may go once the mutex is free */

        nodes[j] = ngx_palloc(r->pool, offsetof(ngx_http_ai_metrics_node_t,
                                                data) + mn->route_len);
        if (nodes[j] == NULL) {
            ngx_shmtx_unlock(&mz->shpool->mutex);
            w->rc = NGX_ERROR;
            return;
        }

        ngx_memcpy(nodes[j], mn,
                   offsetof(ngx_http_ai_metrics_node_t, data) + mn->route_len);

        last = mn->u.series.last;

        for (i = 0; i < n; i++) {
            m = from + (uint32_t) i;

            if (m <= last && last - m < NGX_HTTP_AI_METRICS_MINUTES) {
                pts[j * n + i] =
                           mn->u.series.ring[m % NGX_HTTP_AI_METRICS_MINUTES];
            }
        }

        j++;
    }

    ns = j;

    ngx_shmtx_unlock(&mz->shpool->mutex);

    /* out */

    ngx_ai_jw_object(w);
    ngx_ai_jw_key_uint(w, "start", (uint64_t) from * 60);
    ngx_ai_jw_key_uint(w, "step", 60);
    ngx_ai_jw_key_uint(w, "minutes", n);
    ngx_ai_jw_key(w, "totals");
    ngx_ai_jw_object(w);
    ngx_http_ai_metrics_columns(w, ngx_http_ai_metrics_minute_columns, mins,
                                sizeof(*mins), n);
    ngx_http_ai_metrics_quantiles(w, "duration_p50_ms", mins, n, 0, 500);
    ngx_http_ai_metrics_quantiles(w, "duration_p90_ms", mins, n, 0, 900);
    ngx_http_ai_metrics_quantiles(w, "duration_p99_ms", mins, n, 0, 990);
    ngx_http_ai_metrics_quantiles(w, "ttft_p50_ms", mins, n, 1, 500);
    ngx_http_ai_metrics_quantiles(w, "ttft_p90_ms", mins, n, 1, 900);
    ngx_ai_jw_end(w);

    for (type = NGX_HTTP_AI_METRICS_KEY;
         type <= NGX_HTTP_AI_METRICS_ROUTE;
         type++)
    {
        ngx_ai_jw_key(w, lists[type - NGX_HTTP_AI_METRICS_KEY]);
        ngx_ai_jw_array(w);

        for (j = 0; j < ns && w->rc == NGX_OK; j++) {
            mn = nodes[j];

            if (mn->type != type) {
                continue;
            }

            ngx_ai_jw_object(w);
            ngx_ai_jw_key_string(w, labels[type - NGX_HTTP_AI_METRICS_KEY],
                                 mn->data, mn->route_len);

            if (type == NGX_HTTP_AI_METRICS_KEY) {
                ngx_http_ai_key_name_json_hex(w, lmcf->key_names, mn->data,
                                              mn->route_len);
            }
            ngx_http_ai_metrics_columns(w, ngx_http_ai_metrics_point_columns,
                                        &pts[j * n], sizeof(*pts), n);
            ngx_ai_jw_end(w);
        }

        ngx_ai_jw_end(w);
    }

    ngx_ai_jw_end(w);
}


/*
 * "NAME":[v0,v1,...],... for each column: a uint32_t or uint64_t field of
 * n structs at p, stride apart
 */

static void
ngx_http_ai_metrics_columns(ngx_ai_jw_t *w,
    ngx_http_ai_metrics_column_t *col, void *p, size_t stride, ngx_uint_t n)
{
    u_char      *f;
    uint64_t     v;
    ngx_uint_t   i, c;

    for (c = 0; col[c].name; c++) {
        ngx_ai_jw_key(w, col[c].name);
        ngx_ai_jw_array(w);

        for (i = 0; i < n; i++) {
            f = (u_char *) p + i * stride + col[c].offset;
            v = (col[c].width == sizeof(uint32_t)) ? *(uint32_t *) f
                                                   : *(uint64_t *) f;

            ngx_ai_jw_uint(w, v);
        }

        ngx_ai_jw_end(w);
    }
}


/* "NAME":[q or null per minute] from the per-minute histograms */

static void
ngx_http_ai_metrics_quantiles(ngx_ai_jw_t *w, const char *name,
    ngx_http_ai_metrics_minute_t *mins, ngx_uint_t n, ngx_uint_t ttft,
    ngx_uint_t permille)
{
    uint32_t    *h;
    uint64_t     count, buckets[NGX_HTTP_AI_METRICS_BUCKETS];
    ngx_uint_t   i, k;

    ngx_ai_jw_key(w, name);
    ngx_ai_jw_array(w);

    for (i = 0; i < n; i++) {
        h = ttft ? mins[i].ttft : mins[i].duration;
        count = 0;

        for (k = 0; k < NGX_HTTP_AI_METRICS_BUCKETS; k++) {
            buckets[k] = h[k];
            count += h[k];
        }

        if (count == 0) {
            ngx_ai_jw_null(w);

        } else {
            ngx_ai_jw_uint(w, ngx_http_ai_histogram_quantile(buckets, count,
                                                             permille));
        }
    }

    ngx_ai_jw_end(w);
}


/*
 * The permille-th quantile of a histogram in ms, interpolated linearly in
 * its bucket as Prometheus's histogram_quantile() does; the last finite
 * bound for the +Inf bucket.
 */

ngx_uint_t
ngx_http_ai_histogram_quantile(uint64_t *buckets, uint64_t count,
    ngx_uint_t permille)
{
    uint64_t    rank, cum, lower, upper;
    ngx_uint_t  i;

    if (count == 0) {
        return 0;
    }

    rank = count * permille;         /* in 1/1000 of an observation */
    cum = 0;

    for (i = 0; i < NGX_HTTP_AI_METRICS_BUCKETS; i++) {

        if (buckets[i] && (cum + buckets[i]) * 1000 >= rank) {
            break;
        }

        cum += buckets[i];
    }

    if (i >= NGX_HTTP_AI_METRICS_BUCKETS - 1) {
        return ngx_http_ai_metrics_bounds[NGX_HTTP_AI_METRICS_BUCKETS - 2];
    }

    lower = i ? ngx_http_ai_metrics_bounds[i - 1] : 0;
    upper = ngx_http_ai_metrics_bounds[i];

    if (rank <= cum * 1000) {
        return (ngx_uint_t) lower;
    }

    return (ngx_uint_t) (lower + (upper - lower) * (rank - cum * 1000)
                                 / (buckets[i] * 1000));
}
