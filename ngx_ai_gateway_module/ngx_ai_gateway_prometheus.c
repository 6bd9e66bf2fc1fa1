
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ai_status?format=prometheus: the text exposition format (0.0.4).  The
 * request counters, histograms, calls, tokens, cost, fallbacks, refusals
 * and fusions come from the metrics zone, read under its mutex, in
 * integers; the breakers, rate buckets, guards and budget accounts from
 * the status JSON the other modules write (so they are the same numbers
 * as ?format=json).  Label values are escaped (\\, \", \n) and made valid
 * UTF-8; no label holds a key, only the 8 hex digits of its digest
 * ("key"), and, for an ai_auth key's name or a team's account, the name
 * and team in clear ("key_name", "team").
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_metrics.h"
#include "ngx_ai_gateway_cache.h"


typedef ngx_int_t (*ngx_http_ai_prom_sample_pt)(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_node_t *mn, ngx_uint_t which, const char *name);


static ngx_int_t ngx_http_ai_prom_family(ngx_ai_buf_t *b, const char *name,
    const char *type, const char *help);
static ngx_int_t ngx_http_ai_prom_zone(ngx_http_request_t *r,
    ngx_ai_buf_t *b);
static ngx_int_t ngx_http_ai_prom_entries(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_sh_t *sh, ngx_uint_t type, const char *name,
    ngx_uint_t which, ngx_http_ai_prom_sample_pt sample);
static ngx_int_t ngx_http_ai_prom_request(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_node_t *mn, ngx_uint_t which, const char *name);
static ngx_int_t ngx_http_ai_prom_histogram(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_node_t *mn, ngx_uint_t which, const char *name);
static ngx_int_t ngx_http_ai_prom_call(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_node_t *mn, ngx_uint_t which, const char *name);
static ngx_int_t ngx_http_ai_prom_count(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_node_t *mn, ngx_uint_t which, const char *name);
static ngx_int_t ngx_http_ai_prom_genai(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_node_t *mn, ngx_uint_t which, const char *name);
static ngx_int_t ngx_http_ai_prom_genai_one(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_node_t *mn, ngx_uint_t kind, const char *name,
    const char *extra);
static ngx_int_t ngx_http_ai_prom_genai_labels(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_node_t *mn);
static ngx_int_t ngx_http_ai_prom_fixed(ngx_ai_buf_t *b, uint64_t v,
    ngx_uint_t kind, ngx_uint_t trim);
static ngx_int_t ngx_http_ai_prom_model_labels(ngx_ai_buf_t *b,
    ngx_http_ai_metrics_node_t *mn);
static ngx_int_t ngx_http_ai_prom_sync(ngx_ai_buf_t *b, cJSON *root);
static ngx_int_t ngx_http_ai_prom_json(ngx_http_request_t *r,
    ngx_str_t *json, ngx_ai_buf_t *b);
static ngx_int_t ngx_http_ai_prom_label(ngx_ai_buf_t *b, const char *name,
    u_char *p, size_t len);
static ngx_int_t ngx_http_ai_prom_label_json(ngx_ai_buf_t *b,
    const char *name, cJSON *obj, const char *field);
static ngx_int_t ngx_http_ai_prom_key_names(ngx_ai_buf_t *b, cJSON *obj);
static ngx_int_t ngx_http_ai_prom_escape(ngx_ai_buf_t *b, u_char *p,
    size_t len);
static ngx_int_t ngx_http_ai_prom_value(ngx_ai_buf_t *b, uint64_t n);
static ngx_int_t ngx_http_ai_prom_nano(ngx_ai_buf_t *b, uint64_t nano);
static ngx_int_t ngx_http_ai_prom_ms(ngx_ai_buf_t *b, uint64_t ms);
static uint64_t ngx_http_ai_prom_uint(cJSON *obj, const char *field,
    ngx_uint_t *null);


/* "le" of the bounds of ngx_http_ai_metrics_bounds[], and +Inf */

static const char  *ngx_http_ai_prom_le[NGX_HTTP_AI_METRICS_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
    "5", "10", "30", "60", "120", "+Inf"
};


#define ngx_http_ai_prom_str(b, s)                                           \
    ngx_ai_buf_append(b, s, sizeof(s) - 1)


ngx_int_t
ngx_http_ai_prometheus(ngx_http_request_t *r, ngx_str_t *json,
    ngx_ai_buf_t *b)
{
    if (ngx_http_ai_prom_family(b, "ai_gateway_info", "gauge",
                                "The gateway's version.") != NGX_OK
        || ngx_http_ai_prom_str(b, "ai_gateway_info{version=\""
                                   NGX_AI_GATEWAY_VERSION "\"} 1\n")
           != NGX_OK
        || ngx_http_ai_prom_zone(r, b) != NGX_OK
        || ngx_http_ai_prom_json(r, json, b) != NGX_OK
        || ngx_http_ai_cache_prometheus(r, b) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_prom_family(ngx_ai_buf_t *b, const char *name, const char *type,
    const char *help)
{
    if (ngx_http_ai_prom_str(b, "# HELP ") != NGX_OK
        || ngx_ai_buf_append_str(b, name) != NGX_OK
        || ngx_http_ai_prom_str(b, " ") != NGX_OK
        || ngx_ai_buf_append_str(b, help) != NGX_OK
        || ngx_http_ai_prom_str(b, "\n# TYPE ") != NGX_OK
        || ngx_ai_buf_append_str(b, name) != NGX_OK
        || ngx_http_ai_prom_str(b, " ") != NGX_OK
        || ngx_ai_buf_append_str(b, type) != NGX_OK
        || ngx_http_ai_prom_str(b, "\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the families of the metrics zone, in one hold of its mutex */

static ngx_int_t
ngx_http_ai_prom_zone(ngx_http_request_t *r, ngx_ai_buf_t *b)
{
    ngx_int_t                         rc;
    ngx_http_ai_metrics_sh_t         *sh;
    ngx_http_ai_metrics_zone_t       *mz;
    ngx_http_ai_metrics_main_conf_t  *mmcf;

    static struct {
        const char                   *name;
        const char                   *type;
        const char                   *help;
        ngx_uint_t                    entry;
        ngx_uint_t                    which;
        ngx_http_ai_prom_sample_pt    sample;
    } families[] = {

        { "ai_gateway_requests_total", "counter",
          "Client requests by route, provider and model (the model that "
          "answered, or was called last) and HTTP status.",
          NGX_HTTP_AI_METRICS_REQUEST, 0, ngx_http_ai_prom_request },

        { "ai_gateway_request_duration_seconds", "histogram",
          "Time from the request's first byte to the end of the answer.",
          NGX_HTTP_AI_METRICS_REQUEST, 0, ngx_http_ai_prom_histogram },

        { "ai_gateway_ttft_seconds", "histogram",
          "Time to the first byte of the answer sent to the client, from "
          "the end of the request body.",
          NGX_HTTP_AI_METRICS_REQUEST, 1, ngx_http_ai_prom_histogram },

        { "ai_gateway_rate_limited_total", "counter",
          "Requests refused by ai_rate (limit=rate, 429) or by a budget "
          "(limit=budget, 402) before any provider was called.",
          NGX_HTTP_AI_METRICS_REFUSAL, 0, ngx_http_ai_prom_count },

        { "ai_gateway_provider_calls_total", "counter",
          "Provider calls by model called and outcome (ok, error, or "
          "aborted: stopped by the gateway).",
          NGX_HTTP_AI_METRICS_CALL, 0, ngx_http_ai_prom_call },

        { "ai_gateway_tokens_total", "counter",
          "Tokens of provider calls as the providers reported them "
          "(type=input or output).",
          NGX_HTTP_AI_METRICS_CALL, 1, ngx_http_ai_prom_call },

        { "ai_gateway_cost_usd_total", "counter",
          "Cost of provider calls in USD, from their usage and ai_price.",
          NGX_HTTP_AI_METRICS_CALL, 2, ngx_http_ai_prom_call },

        { "ai_gateway_estimated_cost_usd_total", "counter",
          "Estimated input cost of calls the gateway stopped (hedge "
          "losers, fusion stragglers, clients gone).",
          NGX_HTTP_AI_METRICS_CALL, 3, ngx_http_ai_prom_call },

        { "ai_gateway_fallbacks_total", "counter",
          "Failed provider calls the gateway went on from, to the next "
          "model or a retry, by the model that failed.",
          NGX_HTTP_AI_METRICS_CALL, 4, ngx_http_ai_prom_call },

        { "ai_gateway_breaker_skips_total", "counter",
          "Models skipped because their circuit breaker was open.",
          NGX_HTTP_AI_METRICS_CALL, 5, ngx_http_ai_prom_call },

        { "ai_gateway_fusion_total", "counter",
          "Fusion requests by mode and how the judging ended.",
          NGX_HTTP_AI_METRICS_FUSION, 0, ngx_http_ai_prom_count },

        /* the OpenTelemetry GenAI semantic conventions' names */

        { "gen_ai_client_token_usage", "histogram",
          "Tokens of each provider call as the provider reported them "
          "(gen_ai.client.token.usage, gen_ai_token_type input or output).",
          NGX_HTTP_AI_METRICS_GENAI, NGX_HTTP_AI_GENAI_INPUT,
          ngx_http_ai_prom_genai },

        { "gen_ai_server_request_duration_seconds", "histogram",
          "Time from the request's first byte to the end of the answer "
          "(gen_ai.server.request.duration; error_type: the HTTP status "
          "of a failed request).",
          NGX_HTTP_AI_METRICS_GENAI, NGX_HTTP_AI_GENAI_DURATION,
          ngx_http_ai_prom_genai },

        { "gen_ai_server_time_to_first_token_seconds", "histogram",
          "Time to the first byte of a stream sent to the client "
          "(gen_ai.server.time_to_first_token).",
          NGX_HTTP_AI_METRICS_GENAI, NGX_HTTP_AI_GENAI_TTFT,
          ngx_http_ai_prom_genai },

        { "gen_ai_server_time_per_output_token_seconds", "histogram",
          "Time per output token of a stream after its first byte "
          "(gen_ai.server.time_per_output_token).",
          NGX_HTTP_AI_METRICS_GENAI, NGX_HTTP_AI_GENAI_TPOT,
          ngx_http_ai_prom_genai },

        { NULL, NULL, NULL, 0, 0, NULL }
    };

    ngx_uint_t  i;

    mmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_metrics_module);

    if (mmcf->zone == NULL) {
        return NGX_OK;
    }

    mz = mmcf->zone->data;
    sh = mz->sh;

    rc = NGX_OK;

    ngx_shmtx_lock(&mz->shpool->mutex);

    for (i = 0; families[i].name; i++) {
        if (ngx_http_ai_prom_family(b, families[i].name, families[i].type,
                                    families[i].help)
            != NGX_OK
            || ngx_http_ai_prom_entries(b, sh, families[i].entry,
                                        families[i].name, families[i].which,
                                        families[i].sample)
               != NGX_OK)
        {
            rc = NGX_ERROR;
            break;
        }
    }

    if (rc == NGX_OK
        && (ngx_http_ai_prom_family(b, "ai_gateway_metrics_evicted_total",
                                    "counter",
                                    "Labelled entries and series dropped "
                                    "from a full ai_metrics_zone.")
            != NGX_OK
            || ngx_http_ai_prom_str(b, "ai_gateway_metrics_evicted_total"
                                       "{kind=\"entries\"} ") != NGX_OK
            || ngx_http_ai_prom_value(b, sh->evicted) != NGX_OK
            || ngx_http_ai_prom_str(b, "ai_gateway_metrics_evicted_total"
                                       "{kind=\"series\"} ") != NGX_OK
            || ngx_http_ai_prom_value(b, sh->series_evicted) != NGX_OK))
    {
        rc = NGX_ERROR;
    }

    ngx_shmtx_unlock(&mz->shpool->mutex);

    return rc;
}


static ngx_int_t
ngx_http_ai_prom_entries(ngx_ai_buf_t *b, ngx_http_ai_metrics_sh_t *sh,
    ngx_uint_t type, const char *name, ngx_uint_t which,
    ngx_http_ai_prom_sample_pt sample)
{
    ngx_queue_t                 *q;
    ngx_http_ai_metrics_node_t  *mn;

    for (q = ngx_queue_head(&sh->queue);
         q != ngx_queue_sentinel(&sh->queue);
         q = ngx_queue_next(q))
    {
        mn = ngx_queue_data(q, ngx_http_ai_metrics_node_t, queue);

        if (mn->type != type) {
            continue;
        }

        if (sample(b, mn, which, name) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* route="...",provider="...",model="..." */

static ngx_int_t
ngx_http_ai_prom_model_labels(ngx_ai_buf_t *b, ngx_http_ai_metrics_node_t *mn)
{
    u_char  *model, *slash;

    model = mn->data + mn->route_len;
    slash = ngx_strlchr(model, model + mn->model_len, '/');

    if (ngx_http_ai_prom_label(b, "route", mn->data, mn->route_len)
        != NGX_OK
        || ngx_http_ai_prom_str(b, ",") != NGX_OK
        || ngx_http_ai_prom_label(b, "provider", model,
                                  slash ? (size_t) (slash - model)
                                        : mn->model_len)
           != NGX_OK
        || ngx_http_ai_prom_str(b, ",") != NGX_OK
        || ngx_http_ai_prom_label(b, "model", model, mn->model_len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_prom_request(ngx_ai_buf_t *b, ngx_http_ai_metrics_node_t *mn,
    ngx_uint_t which, const char *name)
{
    u_char  *p;
    u_char   status[NGX_INT_T_LEN];

    p = ngx_sprintf(status, "%ui", (ngx_uint_t) mn->status);

    if (ngx_ai_buf_append_str(b, name) != NGX_OK
        || ngx_http_ai_prom_str(b, "{") != NGX_OK
        || ngx_http_ai_prom_model_labels(b, mn) != NGX_OK
        || ngx_http_ai_prom_str(b, ",") != NGX_OK
        || ngx_http_ai_prom_label(b, "status", status, p - status) != NGX_OK
        || ngx_http_ai_prom_str(b, "} ") != NGX_OK
        || ngx_http_ai_prom_value(b, mn->u.request.requests) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* NAME_bucket{...,le="..."} cumulative, NAME_sum (s), NAME_count */

static ngx_int_t
ngx_http_ai_prom_histogram(ngx_ai_buf_t *b, ngx_http_ai_metrics_node_t *mn,
    ngx_uint_t which, const char *name)
{
    u_char                   *p;
    uint64_t                  cum;
    ngx_uint_t                i;
    ngx_ai_buf_t              labels;
    ngx_http_ai_histogram_t  *h;
    u_char                    status[NGX_INT_T_LEN];

    h = which ? &mn->u.request.ttft : &mn->u.request.duration;

    if (which && h->count == 0) {
        /* no first byte was timed for these requests */
        return NGX_OK;
    }

    /* the labels once, in a buffer of their own */

    if (ngx_ai_buf_init(&labels, b->pool, 256) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(status, "%ui", (ngx_uint_t) mn->status);

    if (ngx_http_ai_prom_model_labels(&labels, mn) != NGX_OK
        || ngx_http_ai_prom_str(&labels, ",") != NGX_OK
        || ngx_http_ai_prom_label(&labels, "status", status, p - status)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    cum = 0;

    for (i = 0; i < NGX_HTTP_AI_METRICS_BUCKETS; i++) {
        cum += h->buckets[i];

        if (ngx_ai_buf_append_str(b, name) != NGX_OK
            || ngx_http_ai_prom_str(b, "_bucket{") != NGX_OK
            || ngx_ai_buf_append(b, labels.data, labels.len) != NGX_OK
            || ngx_http_ai_prom_str(b, ",le=\"") != NGX_OK
            || ngx_ai_buf_append_str(b, ngx_http_ai_prom_le[i]) != NGX_OK
            || ngx_http_ai_prom_str(b, "\"} ") != NGX_OK
            || ngx_http_ai_prom_value(b, cum) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_buf_append_str(b, name) != NGX_OK
        || ngx_http_ai_prom_str(b, "_sum{") != NGX_OK
        || ngx_ai_buf_append(b, labels.data, labels.len) != NGX_OK
        || ngx_http_ai_prom_str(b, "} ") != NGX_OK
        || ngx_http_ai_prom_ms(b, h->sum) != NGX_OK
        || ngx_ai_buf_append_str(b, name) != NGX_OK
        || ngx_http_ai_prom_str(b, "_count{") != NGX_OK
        || ngx_ai_buf_append(b, labels.data, labels.len) != NGX_OK
        || ngx_http_ai_prom_str(b, "} ") != NGX_OK
        || ngx_http_ai_prom_value(b, h->count) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A GenAI histogram (which: its kind; the token usage: input and output
 * as gen_ai_token_type); none for an entry that has no count of it.
 */

static ngx_int_t
ngx_http_ai_prom_genai(ngx_ai_buf_t *b, ngx_http_ai_metrics_node_t *mn,
    ngx_uint_t which, const char *name)
{
    if (which == NGX_HTTP_AI_GENAI_INPUT) {
        if (ngx_http_ai_prom_genai_one(b, mn, NGX_HTTP_AI_GENAI_INPUT, name,
                                       ",gen_ai_token_type=\"input\"")
            != NGX_OK
            || ngx_http_ai_prom_genai_one(b, mn, NGX_HTTP_AI_GENAI_OUTPUT,
                                          name,
                                          ",gen_ai_token_type=\"output\"")
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    return ngx_http_ai_prom_genai_one(b, mn, which, name, "");
}


static ngx_int_t
ngx_http_ai_prom_genai_one(ngx_ai_buf_t *b, ngx_http_ai_metrics_node_t *mn,
    ngx_uint_t kind, const char *name, const char *extra)
{
    u_char                         *p;
    uint64_t                        cum;
    ngx_uint_t                      i, n;
    ngx_ai_buf_t                    labels;
    ngx_http_ai_genai_histogram_t  *h;
    u_char                          status[NGX_INT_T_LEN];

    h = &mn->u.genai.h[kind];

    if (h->count == 0) {
        return NGX_OK;
    }

    if (ngx_ai_buf_init(&labels, b->pool, 256) != NGX_OK
        || ngx_http_ai_prom_genai_labels(&labels, mn) != NGX_OK
        || ngx_ai_buf_append_str(&labels, extra) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (mn->status) {
        p = ngx_sprintf(status, "%ui", (ngx_uint_t) mn->status);

        if (ngx_http_ai_prom_str(&labels, ",") != NGX_OK
            || ngx_http_ai_prom_label(&labels, "error_type", status,
                                      p - status)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    n = ngx_http_ai_genai_nbounds[kind];
    cum = 0;

    for (i = 0; i <= n; i++) {
        cum += h->buckets[i];

        if (ngx_ai_buf_append_str(b, name) != NGX_OK
            || ngx_http_ai_prom_str(b, "_bucket{") != NGX_OK
            || ngx_ai_buf_append(b, labels.data, labels.len) != NGX_OK
            || ngx_http_ai_prom_str(b, ",le=\"") != NGX_OK
            || (i < n ? ngx_http_ai_prom_fixed(b,
                                          ngx_http_ai_genai_bounds[kind][i],
                                          kind, 1)
                      : ngx_http_ai_prom_str(b, "+Inf")) != NGX_OK
            || ngx_http_ai_prom_str(b, "\"} ") != NGX_OK
            || ngx_http_ai_prom_value(b, cum) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_buf_append_str(b, name) != NGX_OK
        || ngx_http_ai_prom_str(b, "_sum{") != NGX_OK
        || ngx_ai_buf_append(b, labels.data, labels.len) != NGX_OK
        || ngx_http_ai_prom_str(b, "} ") != NGX_OK
        || ngx_http_ai_prom_fixed(b, h->sum, kind, 0) != NGX_OK
        || ngx_http_ai_prom_str(b, "\n") != NGX_OK
        || ngx_ai_buf_append_str(b, name) != NGX_OK
        || ngx_http_ai_prom_str(b, "_count{") != NGX_OK
        || ngx_ai_buf_append(b, labels.data, labels.len) != NGX_OK
        || ngx_http_ai_prom_str(b, "} ") != NGX_OK
        || ngx_http_ai_prom_value(b, h->count) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * gen_ai_operation_name, gen_ai_provider_name (of the model that
 * answered, else of the one asked for), gen_ai_request_model and
 * gen_ai_response_model (the parts of their labels after "provider/")
 */

static ngx_int_t
ngx_http_ai_prom_genai_labels(ngx_ai_buf_t *b, ngx_http_ai_metrics_node_t *mn)
{
    u_char  *asked, *answered, *p, *slash;
    size_t   len, alen, rlen;

    asked = mn->data + mn->route_len;
    alen = mn->model_len;
    answered = asked + alen;
    rlen = mn->extra_len;

    p = rlen ? answered : asked;
    len = rlen ? rlen : alen;
    slash = ngx_strlchr(p, p + len, '/');

    if (ngx_http_ai_prom_label(b, "gen_ai_operation_name", mn->data,
                               mn->route_len)
        != NGX_OK
        || ngx_http_ai_prom_str(b, ",") != NGX_OK
        || ngx_http_ai_prom_label(b, "gen_ai_provider_name", p,
                                  slash ? (size_t) (slash - p) : len)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    slash = ngx_strlchr(asked, asked + alen, '/');
    p = slash ? slash + 1 : asked;

    if (ngx_http_ai_prom_str(b, ",") != NGX_OK
        || ngx_http_ai_prom_label(b, "gen_ai_request_model", p,
                                  asked + alen - p)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    slash = ngx_strlchr(answered, answered + rlen, '/');
    p = slash ? slash + 1 : answered;

    if (ngx_http_ai_prom_str(b, ",") != NGX_OK
        || ngx_http_ai_prom_label(b, "gen_ai_response_model", p,
                                  answered + rlen - p)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A GenAI value in its unit as Prometheus wants it: tokens as they are;
 * ms and us as seconds (trim: without trailing zeros, for "le")
 */

static ngx_int_t
ngx_http_ai_prom_fixed(ngx_ai_buf_t *b, uint64_t v, ngx_uint_t kind,
    ngx_uint_t trim)
{
    u_char    *p, *last;
    uint64_t   div;
    u_char     buf[NGX_INT64_LEN + 16];

    if (kind <= NGX_HTTP_AI_GENAI_OUTPUT) {
        return ngx_ai_buf_append_uint(b, v);
    }

    div = (kind == NGX_HTTP_AI_GENAI_TPOT) ? 1000000 : 1000;

    last = (div == 1000000)
           ? ngx_sprintf(buf, "%uL.%06uL", v / div, v % div)
           : ngx_sprintf(buf, "%uL.%03uL", v / div, v % div);

    if (trim) {
        while (last[-1] == '0') {
            last--;
        }

        if (last[-1] == '.') {
            last--;
        }
    }

    p = buf;

    return ngx_ai_buf_append(b, p, last - p);
}


/*
 * which: 0 calls by outcome, 1 tokens by type, 2 cost, 3 estimated cost,
 * 4 fallbacks, 5 breaker skips
 */

static ngx_int_t
ngx_http_ai_prom_call(ngx_ai_buf_t *b, ngx_http_ai_metrics_node_t *mn,
    ngx_uint_t which, const char *name)
{
    ngx_uint_t   i, n;
    uint64_t     values[3];
    const char  *extra[3];

    switch (which) {

    case 0:
        n = 3;
        extra[0] = ",outcome=\"ok\"} ";
        values[0] = mn->u.call.calls - mn->u.call.errors;
        extra[1] = ",outcome=\"error\"} ";
        values[1] = mn->u.call.errors;
        extra[2] = ",outcome=\"aborted\"} ";
        values[2] = mn->u.call.aborted;
        break;

    case 1:
        n = 2;
        extra[0] = ",type=\"input\"} ";
        values[0] = mn->u.call.input_tokens;
        extra[1] = ",type=\"output\"} ";
        values[1] = mn->u.call.output_tokens;
        break;

    default:
        n = 1;
        extra[0] = "} ";
        values[0] = (which == 2) ? mn->u.call.cost
                    : (which == 3) ? mn->u.call.est_cost
                    : (which == 4) ? mn->u.call.fallbacks
                    : mn->u.call.skipped;
        break;
    }

    for (i = 0; i < n; i++) {
        if (ngx_ai_buf_append_str(b, name) != NGX_OK
            || ngx_http_ai_prom_str(b, "{") != NGX_OK
            || ngx_http_ai_prom_model_labels(b, mn) != NGX_OK
            || ngx_ai_buf_append_str(b, extra[i]) != NGX_OK
            || ((which == 2 || which == 3)
                ? ngx_http_ai_prom_nano(b, values[i])
                : ngx_http_ai_prom_value(b, values[i]))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* refusals {route,provider,model,limit}, fusions {route,mode,judge_status} */

static ngx_int_t
ngx_http_ai_prom_count(ngx_ai_buf_t *b, ngx_http_ai_metrics_node_t *mn,
    ngx_uint_t which, const char *name)
{
    u_char  *model, *extra;

    model = mn->data + mn->route_len;
    extra = model + mn->model_len;

    if (ngx_ai_buf_append_str(b, name) != NGX_OK
        || ngx_http_ai_prom_str(b, "{") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (mn->type == NGX_HTTP_AI_METRICS_FUSION) {
        if (ngx_http_ai_prom_label(b, "route", mn->data, mn->route_len)
            != NGX_OK
            || ngx_http_ai_prom_str(b, ",") != NGX_OK
            || ngx_http_ai_prom_label(b, "mode", model, mn->model_len)
               != NGX_OK
            || ngx_http_ai_prom_str(b, ",") != NGX_OK
            || ngx_http_ai_prom_label(b, "judge_status", extra,
                                      mn->extra_len)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_http_ai_prom_model_labels(b, mn) != NGX_OK
               || ngx_http_ai_prom_str(b, ",") != NGX_OK
               || ngx_http_ai_prom_label(b, "limit", extra, mn->extra_len)
                  != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_ai_prom_str(b, "} ") != NGX_OK
        || ngx_http_ai_prom_value(b, mn->u.refusal.count) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The state the other modules keep, from their part of the status JSON:
 * breakers, rate buckets, guards, budget accounts.
 */

static ngx_int_t
ngx_http_ai_prom_json(ngx_http_request_t *r, ngx_str_t *json,
    ngx_ai_buf_t *b)
{
    uint64_t     v;
    ngx_uint_t   i, k, null;
    cJSON       *root, *list, *item, *state;

    static const char  *states[] = { "closed", "open", "half-open" };

    static const char  *rate[][3] = {
        { "rpm_limit", "rpm_remaining", "requests" },
        { "tpm_limit", "tpm_remaining", "tokens" }
    };

    static const char  *spend[][2] = {
        { "day_nano_usd", "day" },
        { "month_nano_usd", "month" },
        { "total_nano_usd", "total" }
    };

    root = ngx_ai_json_parse(r->pool, json->data, json->len);

    if (root == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai_status: the status JSON does not parse");
        return NGX_ERROR;
    }

    /* breakers */

    list = cJSON_GetObjectItemCaseSensitive(root, "breakers");

    if (ngx_http_ai_prom_family(b, "ai_gateway_breaker_state", "gauge",
                                "Circuit breaker state of a model: 1 for "
                                "its current state.") != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(item, list) {
        state = cJSON_GetObjectItemCaseSensitive(item, "state");

        for (k = 0; k < 3; k++) {
            if (ngx_http_ai_prom_str(b, "ai_gateway_breaker_state{")
                != NGX_OK
                || ngx_http_ai_prom_label_json(b, "model", item, "model")
                   != NGX_OK
                || ngx_http_ai_prom_str(b, ",state=\"") != NGX_OK
                || ngx_ai_buf_append_str(b, states[k]) != NGX_OK
                || ngx_http_ai_prom_str(b, "\"} ") != NGX_OK
                || ngx_http_ai_prom_value(b, cJSON_IsString(state)
                          && ngx_strcmp(state->valuestring, states[k]) == 0)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (ngx_http_ai_prom_family(b, "ai_gateway_breaker_trips_total",
                                "counter",
                                "Times a model's circuit breaker opened.")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(item, list) {
        if (ngx_http_ai_prom_str(b, "ai_gateway_breaker_trips_total{")
            != NGX_OK
            || ngx_http_ai_prom_label_json(b, "model", item, "model")
               != NGX_OK
            || ngx_http_ai_prom_str(b, "} ") != NGX_OK
            || ngx_http_ai_prom_value(b,
                   ngx_http_ai_prom_uint(item, "trips", &null))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* rate buckets: limits and what is left now */

    list = cJSON_GetObjectItemCaseSensitive(root, "rate");

    for (i = 0; i < 2; i++) {
        if (ngx_http_ai_prom_family(b, i ? "ai_gateway_rate_remaining"
                                         : "ai_gateway_rate_limit",
                                    "gauge",
                                    i ? "What an ai_rate bucket holds now "
                                        "(type=requests or tokens)."
                                      : "An ai_rate bucket's limit per "
                                        "minute (type=requests or tokens).")
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        cJSON_ArrayForEach(item, list) {
            for (k = 0; k < 2; k++) {
                v = ngx_http_ai_prom_uint(item, rate[k][i], &null);

                if (null) {
                    continue;
                }

                if (ngx_ai_buf_append_str(b, i ? "ai_gateway_rate_remaining{"
                                               : "ai_gateway_rate_limit{")
                    != NGX_OK
                    || ngx_http_ai_prom_label_json(b, "zone", item, "zone")
                       != NGX_OK
                    || ngx_http_ai_prom_str(b, ",") != NGX_OK
                    || ngx_http_ai_prom_label_json(b, "route", item, "route")
                       != NGX_OK
                    || ngx_http_ai_prom_str(b, ",") != NGX_OK
                    || ngx_http_ai_prom_label_json(b, "key", item, "key")
                       != NGX_OK
                    || ngx_http_ai_prom_key_names(b, item) != NGX_OK
                    || ngx_http_ai_prom_str(b, ",type=\"") != NGX_OK
                    || ngx_ai_buf_append_str(b, rate[k][2]) != NGX_OK
                    || ngx_http_ai_prom_str(b, "\"} ") != NGX_OK
                    || ngx_http_ai_prom_value(b, v) != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }
        }
    }

    /* guards */

    list = cJSON_GetObjectItemCaseSensitive(root, "guards");

    for (i = 0; i < 2; i++) {
        if (ngx_http_ai_prom_family(b, i ? "ai_gateway_guard_requests_total"
                                         : "ai_gateway_guard_matches_total",
                                    "counter",
                                    i ? "Requests an ai_guard matched."
                                      : "Matches of an ai_guard's rules.")
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        cJSON_ArrayForEach(item, list) {
            if (ngx_ai_buf_append_str(b,
                                      i ? "ai_gateway_guard_requests_total{"
                                        : "ai_gateway_guard_matches_total{")
                != NGX_OK
                || ngx_http_ai_prom_label_json(b, "guard", item, "name")
                   != NGX_OK
                || ngx_http_ai_prom_str(b, ",") != NGX_OK
                || ngx_http_ai_prom_label_json(b, "action", item, "action")
                   != NGX_OK
                || ngx_http_ai_prom_str(b, "} ") != NGX_OK
                || ngx_http_ai_prom_value(b,
                       ngx_http_ai_prom_uint(item, i ? "requests"
                                                     : "matches", &null))
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    /* budget accounts */

    list = cJSON_GetObjectItemCaseSensitive(root, "spend");

    if (ngx_http_ai_prom_family(b, "ai_gateway_budget_spend_usd", "gauge",
                                "Spend of a budget account (a key, or a "
                                "route) in the current UTC day, month, "
                                "and in all.")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(item, list) {
        for (k = 0; k < 3; k++) {
            if (ngx_http_ai_prom_str(b, "ai_gateway_budget_spend_usd{")
                != NGX_OK
                || ngx_http_ai_prom_label_json(b, "zone", item, "zone")
                   != NGX_OK
                || ngx_http_ai_prom_str(b, ",") != NGX_OK
                || ngx_http_ai_prom_label_json(b, "key", item, "key")
                   != NGX_OK
                || ngx_http_ai_prom_key_names(b, item) != NGX_OK
                || ngx_http_ai_prom_str(b, ",") != NGX_OK
                || ngx_http_ai_prom_label_json(b, "route", item, "route")
                   != NGX_OK
                || ngx_http_ai_prom_str(b, ",period=\"") != NGX_OK
                || ngx_ai_buf_append_str(b, spend[k][1]) != NGX_OK
                || ngx_http_ai_prom_str(b, "\"} ") != NGX_OK
                || ngx_http_ai_prom_nano(b,
                       ngx_http_ai_prom_uint(item, spend[k][0], &null))
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return ngx_http_ai_prom_sync(b, root);
}


/*
 * The synced zones (the status's "sync"): up, failures, unsynced, and a
 * lease zone's slices, admissions on the share and Redis latency
 */

static ngx_int_t
ngx_http_ai_prom_sync(ngx_ai_buf_t *b, cJSON *root)
{
    uint64_t     v;
    ngx_uint_t   i, k, null;
    cJSON       *list, *item, *lease, *obj, *state;

    static const char  *fam[][4] = {
        { "ai_gateway_sync_up", "gauge",
          "A synced zone's Redis as its syncing worker sees it: 1 up.", "" },
        { "ai_gateway_sync_failures_total", "counter",
          "Batches of a synced zone Redis did not answer.", "failures" },
        { "ai_gateway_sync_unsynced", "gauge",
          "Nodes of a synced zone with deltas not pushed yet.", "unsynced" },
        { "ai_gateway_sync_fallback_admissions_total", "counter",
          "Requests a lease zone admitted on its share, Redis away.",
          "fallback_admissions" },
        { "ai_gateway_sync_redis_latency_seconds", "gauge",
          "Time a lease zone's slice took to come (moving average).",
          "latency_us" },
        { "ai_gateway_sync_lease_requests_total", "counter",
          "Requests of a lease zone's slices: leased, used, returned.",
          "requests" },
        { "ai_gateway_sync_lease_tokens_total", "counter",
          "Tokens of a lease zone's slices: leased, used, returned.",
          "tokens" },
        { "ai_gateway_sync_lease_usd_total", "counter",
          "USD of a cost lease zone's budget slices: leased, used, "
          "returned.", "nano_usd" }
    };

    static const char  *what[] = { "leased", "used", "returned" };

    list = cJSON_GetObjectItemCaseSensitive(root, "sync");

    for (i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
        if (ngx_http_ai_prom_family(b, fam[i][0], fam[i][1], fam[i][2])
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        cJSON_ArrayForEach(item, list) {
            lease = cJSON_GetObjectItemCaseSensitive(item, "lease");

            if ((i >= 3 && !cJSON_IsObject(lease))
                || (i >= 5
                    && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(
                                           lease, fam[i][3]))))
            {
                /* a rate zone's in requests and tokens, a cost zone's
                 * in USD */
                continue;
            }

            obj = (i >= 3) ? lease : item;

            for (k = 0; k < (i >= 5 ? 3 : 1); k++) {
                if (ngx_ai_buf_append_str(b, fam[i][0]) != NGX_OK
                    || ngx_http_ai_prom_str(b, "{") != NGX_OK
                    || ngx_http_ai_prom_label_json(b, "zone", item, "zone")
                       != NGX_OK)
                {
                    return NGX_ERROR;
                }

                if (i == 0) {
                    state = cJSON_GetObjectItemCaseSensitive(item, "state");
                    v = cJSON_IsString(state)
                        && ngx_strcmp(state->valuestring, "ok") == 0;

                    if (ngx_http_ai_prom_str(b, ",") != NGX_OK
                        || ngx_http_ai_prom_label_json(b, "mode", item,
                                                       "mode")
                           != NGX_OK)
                    {
                        return NGX_ERROR;
                    }

                } else if (i >= 5) {
                    obj = cJSON_GetObjectItemCaseSensitive(lease, fam[i][3]);
                    v = ngx_http_ai_prom_uint(obj, what[k], &null);

                    if (ngx_http_ai_prom_str(b, ",what=\"") != NGX_OK
                        || ngx_ai_buf_append_str(b, what[k]) != NGX_OK
                        || ngx_http_ai_prom_str(b, "\"") != NGX_OK)
                    {
                        return NGX_ERROR;
                    }

                } else {
                    v = ngx_http_ai_prom_uint(obj, fam[i][3], &null);
                }

                if (ngx_http_ai_prom_str(b, "} ") != NGX_OK
                    || (i == 4 ? ngx_http_ai_prom_fixed(b, v,
                                                 NGX_HTTP_AI_GENAI_TPOT, 0)
                        : i == 7 ? ngx_http_ai_prom_nano(b, v)
                        : ngx_http_ai_prom_value(b, v))
                       != NGX_OK)
                {
                    return NGX_ERROR;
                }

                if (i == 4 && ngx_http_ai_prom_str(b, "\n") != NGX_OK) {
                    return NGX_ERROR;
                }
            }
        }
    }

    /* the state and the last error as labels */

    if (ngx_http_ai_prom_family(b, "ai_gateway_sync_info", "gauge",
                                "A synced zone: its mode, its state and "
                                "its last error (\"\": none).")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(item, list) {
        if (ngx_http_ai_prom_str(b, "ai_gateway_sync_info{") != NGX_OK
            || ngx_http_ai_prom_label_json(b, "zone", item, "zone") != NGX_OK
            || ngx_http_ai_prom_str(b, ",") != NGX_OK
            || ngx_http_ai_prom_label_json(b, "mode", item, "mode") != NGX_OK
            || ngx_http_ai_prom_str(b, ",") != NGX_OK
            || ngx_http_ai_prom_label_json(b, "state", item, "state")
               != NGX_OK
            || ngx_http_ai_prom_str(b, ",") != NGX_OK
            || ngx_http_ai_prom_label_json(b, "last_error", item,
                                           "last_error")
               != NGX_OK
            || ngx_http_ai_prom_str(b, "} 1\n") != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* name="value": escaped, valid UTF-8 */

static ngx_int_t
ngx_http_ai_prom_label(ngx_ai_buf_t *b, const char *name, u_char *p,
    size_t len)
{
    if (ngx_ai_buf_append_str(b, name) != NGX_OK
        || ngx_http_ai_prom_str(b, "=\"") != NGX_OK
        || ngx_http_ai_prom_escape(b, p, len) != NGX_OK
        || ngx_http_ai_prom_str(b, "\"") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a string field of a JSON object as a label; null is "" */

static ngx_int_t
ngx_http_ai_prom_label_json(ngx_ai_buf_t *b, const char *name, cJSON *obj,
    const char *field)
{
    cJSON  *s;

    s = cJSON_GetObjectItemCaseSensitive(obj, field);

    if (!cJSON_IsString(s)) {
        return ngx_http_ai_prom_label(b, name, (u_char *) "", 0);
    }

    return ngx_http_ai_prom_label(b, name, (u_char *) s->valuestring,
                                  ngx_strlen(s->valuestring));
}


/* ,key_name="..." and ,team="..." of an entry that has them */

static ngx_int_t
ngx_http_ai_prom_key_names(ngx_ai_buf_t *b, cJSON *obj)
{
    ngx_uint_t   i;
    cJSON       *s;

    static const char  *fields[] = { "key_name", "team" };

    for (i = 0; i < 2; i++) {
        s = cJSON_GetObjectItemCaseSensitive(obj, fields[i]);

        if (!cJSON_IsString(s)) {
            continue;
        }

        if (ngx_http_ai_prom_str(b, ",") != NGX_OK
            || ngx_http_ai_prom_label(b, fields[i], (u_char *) s->valuestring,
                                      ngx_strlen(s->valuestring))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Backslash, double quote and line feed escaped as the format wants; any
 * byte that is not part of valid UTF-8, and other control characters,
 * become U+FFFD, so that no scraper refuses the page.
 */

static ngx_int_t
ngx_http_ai_prom_escape(ngx_ai_buf_t *b, u_char *p, size_t len)
{
    u_char     c, *last;
    size_t     n, k;
    uint32_t   cp;

    last = p + len;

    while (p < last) {
        c = *p;

        if (c == '\\' || c == '"') {
            if (ngx_ai_buf_append(b, "\\", 1) != NGX_OK
                || ngx_ai_buf_append(b, p, 1) != NGX_OK)
            {
                return NGX_ERROR;
            }

            p++;
            continue;
        }

        if (c == '\n') {
            if (ngx_http_ai_prom_str(b, "\\n") != NGX_OK) {
                return NGX_ERROR;
            }

            p++;
            continue;
        }

        if (c >= 0x20 && c < 0x7f) {
            if (ngx_ai_buf_append(b, p, 1) != NGX_OK) {
                return NGX_ERROR;
            }

            p++;
            continue;
        }

        /* a multi-byte sequence, checked */

        n = (c >= 0xc2 && c <= 0xdf) ? 2
            : (c >= 0xe0 && c <= 0xef) ? 3
            : (c >= 0xf0 && c <= 0xf4) ? 4
            : 0;

        if (n && (size_t) (last - p) >= n) {
            cp = c & (0xff >> (n + 1));

            for (k = 1; k < n; k++) {
                if ((p[k] & 0xc0) != 0x80) {
                    break;
                }

                cp = (cp << 6) | (p[k] & 0x3f);
            }

            if (k == n
                && !(n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
                && !(n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            {
                if (ngx_ai_buf_append(b, p, n) != NGX_OK) {
                    return NGX_ERROR;
                }

                p += n;
                continue;
            }
        }

        if (ngx_http_ai_prom_str(b, "\xef\xbf\xbd") != NGX_OK) {
            return NGX_ERROR;
        }

        p++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_prom_value(ngx_ai_buf_t *b, uint64_t n)
{
    if (ngx_ai_buf_append_uint(b, n) != NGX_OK
        || ngx_http_ai_prom_str(b, "\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* nano-USD as USD, exactly: 0.001250000 */

static ngx_int_t
ngx_http_ai_prom_nano(ngx_ai_buf_t *b, uint64_t nano)
{
    u_char  *p;
    u_char   buf[NGX_INT64_LEN + 16];

    p = ngx_sprintf(buf, "%uL.%09uL\n", nano / 1000000000,
                    nano % 1000000000);

    return ngx_ai_buf_append(b, buf, p - buf);
}


/* ms as seconds, exactly: 1.250 */

static ngx_int_t
ngx_http_ai_prom_ms(ngx_ai_buf_t *b, uint64_t ms)
{
    u_char  *p;
    u_char   buf[NGX_INT64_LEN + 16];

    p = ngx_sprintf(buf, "%uL.%03uL\n", ms / 1000, ms % 1000);

    return ngx_ai_buf_append(b, buf, p - buf);
}


static uint64_t
ngx_http_ai_prom_uint(cJSON *obj, const char *field, ngx_uint_t *null)
{
    cJSON  *n;

    n = cJSON_GetObjectItemCaseSensitive(obj, field);

    if (!cJSON_IsNumber(n) || n->valuedouble < 0) {
        *null = 1;
        return 0;
    }

    *null = 0;

    return (uint64_t) n->valuedouble;
}
