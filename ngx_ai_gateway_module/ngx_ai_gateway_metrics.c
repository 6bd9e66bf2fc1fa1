
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ngx_ai_gateway_metrics_module: per-request counters, histograms and
 * per-minute series in a shared memory zone (see ngx_ai_gateway_metrics.h
 * for its layout), updated by a log phase handler that runs after the
 * limits module's (every call is charged by then) and before the access
 * log.  Their JSON for ai_status is in ngx_ai_gateway_metrics_json.c.
 *
 *   ai_metrics_zone NAME:SIZE [series=N] | off;
 *
 * Without the directive, a zone "ai_gateway_metrics" of 8m with series=64
 * is made when some location has ai_status.  No zone, no handler: the
 * metrics then cost nothing.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_metrics.h"


#define NGX_HTTP_AI_METRICS_MAX_CALLS   64     /* per request, recorded */


/* a label and its hash, computed once per request */
typedef struct {
    ngx_str_t                       str;
    uint32_t                        hash;
} ngx_http_ai_metrics_label_t;


typedef struct {
    ngx_http_ai_metrics_label_t     model;
    ngx_uint_t                      ok;
    ngx_uint_t                      aborted;
    ngx_uint_t                      fallback;
    uint64_t                        in;
    uint64_t                        out;
    uint64_t                        cost;
    uint64_t                        est_cost;     /* answered without
                                                     usage: estimated */
    ngx_uint_t                      usage;        /* reported usage */
} ngx_http_ai_metrics_call_t;


/* what one request adds, gathered before the zone is locked */
typedef struct {
    ngx_http_ai_metrics_label_t     route;
    ngx_http_ai_metrics_label_t     model;        /* may be empty */
    ngx_http_ai_metrics_label_t     key;          /* 8 hex digits, or empty */
    ngx_http_ai_metrics_label_t     mode;         /* fusion mode, or empty */
    ngx_http_ai_metrics_label_t     judge;        /* fusion judge status */
    ngx_uint_t                      status;
    ngx_msec_t                      duration;
    ngx_msec_t                      ttft;
    ngx_uint_t                      has_ttft;
    ngx_uint_t                      rate_limited;
    ngx_uint_t                      budget_refused;
    ngx_uint_t                      fallbacks;
    ngx_uint_t                      answered;     /* calls not aborted */
    uint64_t                        in;           /* every call */
    uint64_t                        out;
    uint64_t                        cost;
    ngx_http_ai_metrics_call_t     *calls;
    ngx_uint_t                      ncalls;
    ngx_str_t                      *skipped;
    ngx_uint_t                      nskipped;
    ngx_http_ai_metrics_label_t     op;           /* GenAI operation */
    ngx_http_ai_metrics_label_t     asked;        /* GenAI request model */
    ngx_http_ai_metrics_label_t     answered_by;  /* ... response model */
    ngx_uint_t                      streamed;     /* a stream that began */
    uint64_t                        answer_out;   /* its output tokens */
    ngx_uint_t                      genai;        /* a model was asked */
    ngx_uint_t                      generates;    /* chat: output tokens */
} ngx_http_ai_metrics_req_t;


static void ngx_http_ai_metrics_log(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_metrics_gather(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_metrics_req_t *m, u_char *hex);
static void ngx_http_ai_metrics_record(ngx_http_ai_metrics_zone_t *mz,
    ngx_http_ai_metrics_req_t *m, ngx_log_t *log);
static void ngx_http_ai_metrics_genai(ngx_http_ai_metrics_zone_t *mz,
    ngx_http_ai_metrics_req_t *m, ngx_log_t *log);
static void ngx_http_ai_genai_add(ngx_http_ai_genai_histogram_t *h,
    ngx_uint_t kind, uint64_t v);
static void ngx_http_ai_metrics_series_add(ngx_http_ai_metrics_zone_t *mz,
    ngx_uint_t type, ngx_http_ai_metrics_label_t *label, uint32_t minute,
    ngx_uint_t requests, ngx_uint_t calls, uint64_t in, uint64_t out,
    uint64_t cost, ngx_log_t *log);
static ngx_http_ai_metrics_node_t *ngx_http_ai_metrics_get(
    ngx_http_ai_metrics_zone_t *mz, ngx_uint_t type,
    ngx_http_ai_metrics_label_t *route, ngx_http_ai_metrics_label_t *model,
    ngx_http_ai_metrics_label_t *extra, ngx_uint_t status, ngx_log_t *log);
static void ngx_http_ai_metrics_label(ngx_http_ai_metrics_label_t *l,
    u_char *p, size_t len);
static void *ngx_http_ai_metrics_alloc(ngx_http_ai_metrics_zone_t *mz,
    size_t size, ngx_uint_t series, ngx_log_t *log);
static void ngx_http_ai_metrics_evict(ngx_http_ai_metrics_zone_t *mz,
    ngx_queue_t *q);
static void ngx_http_ai_histogram_add(ngx_http_ai_histogram_t *h,
    ngx_msec_t ms);
static ngx_uint_t ngx_http_ai_histogram_bucket(ngx_msec_t ms);


static char *ngx_http_ai_metrics_zone_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_ai_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_ai_metrics_main_conf_t *mmcf, ngx_str_t *name, ssize_t size);
static ngx_int_t ngx_http_ai_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_metrics_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_ai_metrics_init(ngx_conf_t *cf);
static void *ngx_http_ai_metrics_create_main_conf(ngx_conf_t *cf);


/* histogram bucket bounds in ms (Prometheus "le"), then +Inf */

const ngx_msec_t  ngx_http_ai_metrics_bounds[NGX_HTTP_AI_METRICS_BUCKETS - 1]
    = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
        60000, 120000 };


/*
 * the GenAI histograms' bounds, as the OpenTelemetry conventions advise:
 * tokens; request duration in ms (0.01 s to 81.92 s); time to first token
 * in ms (0.001 s to 10 s); time per output token in us (0.01 s to 2.5 s)
 */

static const uint64_t  ngx_http_ai_genai_tokens[] = {
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
    16777216, 67108864
};

static const uint64_t  ngx_http_ai_genai_duration[] = {
    10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 40960,
    81920
};

static const uint64_t  ngx_http_ai_genai_ttft[] = {
    1, 5, 10, 20, 40, 60, 80, 100, 250, 500, 750, 1000, 2500, 5000, 7500,
    10000
};

static const uint64_t  ngx_http_ai_genai_tpot[] = {
    10000, 25000, 50000, 75000, 100000, 150000, 200000, 300000, 400000,
    500000, 750000, 1000000, 2500000
};

const uint64_t  *ngx_http_ai_genai_bounds[NGX_HTTP_AI_GENAI_HISTOGRAMS] = {
    ngx_http_ai_genai_tokens, ngx_http_ai_genai_tokens,
    ngx_http_ai_genai_duration, ngx_http_ai_genai_ttft,
    ngx_http_ai_genai_tpot
};

const ngx_uint_t  ngx_http_ai_genai_nbounds[NGX_HTTP_AI_GENAI_HISTOGRAMS] = {
    sizeof(ngx_http_ai_genai_tokens) / sizeof(uint64_t),
    sizeof(ngx_http_ai_genai_tokens) / sizeof(uint64_t),
    sizeof(ngx_http_ai_genai_duration) / sizeof(uint64_t),
    sizeof(ngx_http_ai_genai_ttft) / sizeof(uint64_t),
    sizeof(ngx_http_ai_genai_tpot) / sizeof(uint64_t)
};


static ngx_str_t  ngx_http_ai_metrics_default_name =
    ngx_string("ai_gateway_metrics");

static ngx_http_ai_metrics_label_t  ngx_http_ai_metrics_empty;

static ngx_str_t  ngx_http_ai_metrics_limits[] = {
    ngx_string("rate"),
    ngx_string("budget")
};


static ngx_command_t  ngx_http_ai_metrics_commands[] = {

    { ngx_string("ai_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_metrics_zone_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_status_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


/* its hook: the log phase, after the policies (ngx_ai_gateway_policy.c) */

static ngx_http_ai_policy_t  ngx_http_ai_metrics_policy = {
    NULL,                                  /* request */
    NULL,                                  /* admit */
    NULL,                                  /* attempt */
    NULL,                                  /* call_done */
    NULL,                                  /* headers */
    NULL,                                  /* answer */
    NULL,                                  /* error */
    NULL,                                  /* stream */
    NULL,                                  /* end */
    ngx_http_ai_metrics_log,               /* log */
    NULL                                   /* plan */
};


static ngx_http_module_t  ngx_ai_gateway_metrics_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_ai_metrics_init,              /* postconfiguration */

    ngx_http_ai_metrics_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_ai_gateway_metrics_module = {
    NGX_MODULE_V1,
    &ngx_ai_gateway_metrics_module_ctx,    /* module context */
    ngx_http_ai_metrics_commands,          /* module directives */
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


/* ---- the log phase ---- */

static void
ngx_http_ai_metrics_log(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_http_ai_metrics_req_t         m;
    ngx_http_ai_metrics_main_conf_t  *mmcf;
    u_char                            hex[NGX_HTTP_AI_KEY_PREFIX];

    mmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_metrics_module);

    if (mmcf->zone == NULL) {
        return;
    }

    if (ngx_http_ai_metrics_gather(r, ctx, &m, hex) != NGX_OK) {
        return;
    }

    ngx_http_ai_metrics_record(mmcf->zone->data, &m, r->connection->log);
}


/*
 * The request's labels and figures, as the access log would see them:
 * status as $status, duration as $request_time, the model as $ai_model
 * (a fusion: its pool's name; refused by a limit before any call: the
 * model asked for), calls as the ledger charged them.
 */

static ngx_int_t
ngx_http_ai_metrics_gather(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_metrics_req_t *m, u_char *hex)
{
    size_t                          len;
    ngx_int_t                       ms;
    ngx_str_t                       model, mode, judge;
    ngx_uint_t                      i, n;
    ngx_time_t                     *tp;
    ngx_ai_usage_t                 *u;
    ngx_http_ai_key_t              *k;
    ngx_http_ai_attempt_t          *a, *extra, **calls;
    ngx_http_ai_rate_limit_t       *rl;
    ngx_http_complex_value_t       *cv;
    ngx_http_ai_limits_ctx_t       *lctx, tmp;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_ai_metrics_call_t     *mc;
    ngx_http_ai_genai_t             g;
    ngx_http_ai_limits_loc_conf_t  *llcf;

    ngx_memzero(m, sizeof(ngx_http_ai_metrics_req_t));

    ngx_http_ai_metrics_label(&m->key, NULL, 0);
    m->mode = m->key;
    m->judge = m->key;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ngx_http_ai_metrics_label(&m->route, clcf->name.data,
                              ngx_min(clcf->name.len,
                                      NGX_HTTP_AI_METRICS_MAX_LABEL));

    if (r->err_status) {
        m->status = r->err_status;

    } else {
        m->status = r->headers_out.status;
    }

    tp = ngx_timeofday();
    ms = (ngx_int_t) ((tp->sec - r->start_sec) * 1000
                      + (tp->msec - r->start_msec));
    m->duration = (ngx_msec_t) ngx_max(ms, 0);

    if (ctx->attempts && ctx->header_sent && ctx->start) {
        m->has_ttft = 1;
        m->ttft = ctx->ttft;
    }

    lctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_limits_module);

    if (lctx) {
        m->rate_limited = (lctx->rate_status == NGX_HTTP_AI_STATUS_REJECTED);
        m->budget_refused =
                        (lctx->budget_status == NGX_HTTP_AI_STATUS_REJECTED);
    }

    /* the model label */

    ngx_str_null(&model);

    if (ctx->fusion) {
        ngx_http_ai_fusion_outcome(ctx, &model, &mode, &judge);
        ngx_http_ai_metrics_label(&m->mode, mode.data, mode.len);
        ngx_http_ai_metrics_label(&m->judge, judge.data, judge.len);

    } else if (ctx->winner) {
        model = ctx->winner->label;

    } else if (ctx->attempts && ctx->attempt) {
        model = ctx->attempt->label;

    } else if ((m->rate_limited || m->budget_refused) && ctx->plan.nelts) {
        /* the first model it would have called, as the ledger names it */
        model = ((ngx_http_ai_model_t *) ctx->plan.elts)[0].label;
    }

    ngx_http_ai_metrics_label(&m->model, model.data,
                              ngx_min(model.len,
                                      NGX_HTTP_AI_METRICS_MAX_LABEL));

    /*
     * the key: of ai_cost key=, else of the first ai_rate with key=; its
     * digest as the limits computed it, or now for a request that did not
     * reach them (a bad request); else the name of the ai_auth key, by
     * the digest the limits count it under (computed with the key store)
     */

    llcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_limits_module);

    cv = (llcf->cost && llcf->cost->key) ? llcf->cost->key : NULL;

    rl = llcf->rates.elts;

    for (i = 0; cv == NULL && i < llcf->rates.nelts; i++) {
        cv = rl[i].key;
    }

    if (cv) {
        if (lctx == NULL) {
            ngx_memzero(&tmp, sizeof(ngx_http_ai_limits_ctx_t));
            tmp.request = r;
            lctx = &tmp;
        }

        if (ngx_http_ai_limits_key(lctx, cv, &k) == NGX_OK && !k->empty) {
            ngx_http_ai_digest_hex(hex, k->digest, NGX_HTTP_AI_KEY_PREFIX / 2);
            ngx_http_ai_metrics_label(&m->key, hex, NGX_HTTP_AI_KEY_PREFIX);
        }

    } else if (lctx && lctx->principal) {
        ngx_http_ai_digest_hex(hex, lctx->principal->digest,
                               NGX_HTTP_AI_KEY_PREFIX / 2);
        ngx_http_ai_metrics_label(&m->key, hex, NGX_HTTP_AI_KEY_PREFIX);
    }

    /* the calls, as charged (and the latest, should it not be listed) */

    calls = ctx->calls.elts;
    n = ctx->calls.nelts;

    for (i = 0; i < n; i++) {
        if (calls[i] == ctx->attempt) {
            break;
        }
    }

    extra = (ctx->attempt && i == n) ? ctx->attempt : NULL;

    len = ngx_min(n + (extra != NULL), NGX_HTTP_AI_METRICS_MAX_CALLS);

    m->calls = ngx_palloc(r->pool,
                          (len + 1) * sizeof(ngx_http_ai_metrics_call_t));
    if (m->calls == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        a = (i < n) ? calls[i] : extra;

        mc = &m->calls[m->ncalls++];

        ngx_http_ai_metrics_label(&mc->model, a->label.data,
                                  ngx_min(a->label.len,
                                          NGX_HTTP_AI_METRICS_MAX_LABEL));
        mc->cost = a->estimated ? a->cost : a->cost - a->est_cost;
        mc->est_cost = a->estimated ? 0 : a->est_cost;
        mc->aborted = a->estimated;
        mc->ok = a->charged_ok;
        mc->in = 0;
        mc->out = 0;
        mc->fallback = 0;
        mc->usage = 0;

        if (mc->aborted) {
            continue;
        }

        m->answered++;

        u = a->usage.known ? &a->usage
            : (a->streaming && a->stream.usage.known) ? &a->stream.usage
            : NULL;

        if (u) {
            mc->in = u->prompt_tokens;
            mc->out = u->completion_tokens;
            mc->usage = 1;

            if (a == ctx->winner) {
                m->answer_out = mc->out;
            }
        }

        m->in += mc->in;
        m->out += mc->out;
        m->cost += mc->cost;

        /* a failed call the gateway went on from, outside fusion */

        if (ctx->fusion == NULL && i + 1 < len) {
            switch (a->outcome) {

            case NGX_HTTP_AI_ERROR:
            case NGX_HTTP_AI_TIMEOUT:
            case NGX_HTTP_AI_429:
            case NGX_HTTP_AI_5XX:
            case NGX_HTTP_AI_4XX:
            case NGX_HTTP_AI_INVALID:
                mc->fallback = 1;
                m->fallbacks++;
                break;

            default:
                break;
            }
        }
    }

    m->skipped = ctx->skipped.elts;
    m->nskipped = ngx_min(ctx->skipped.nelts, NGX_HTTP_AI_METRICS_MAX_CALLS);

    /* the OpenTelemetry GenAI names (ngx_ai_gateway_variables.c) */

    ngx_http_ai_genai_names(ctx, &g);

    ngx_http_ai_metrics_label(&m->op, g.operation.data, g.operation.len);
    ngx_http_ai_metrics_label(&m->asked, g.request.data,
                              ngx_min(g.request.len,
                                      NGX_HTTP_AI_METRICS_MAX_LABEL));
    ngx_http_ai_metrics_label(&m->answered_by, g.response.data,
                              ngx_min(g.response.len,
                                      NGX_HTTP_AI_METRICS_MAX_LABEL));

    m->streamed = ctx->chat.stream && m->has_ttft;
    m->genai = (g.request.len != 0);
    m->generates = (g.operation.len == 4
                    && ngx_strncmp(g.operation.data, "chat", 4) == 0);

    if (ctx->fusion) {
        m->answer_out = 0;
    }

    return NGX_OK;
}


static void
ngx_http_ai_metrics_record(ngx_http_ai_metrics_zone_t *mz,
    ngx_http_ai_metrics_req_t *m, ngx_log_t *log)
{
    uint32_t                       minute, k, steps;
    ngx_uint_t                     i, b, d, t, credited;
    ngx_http_ai_metrics_sh_t      *sh;
    ngx_http_ai_metrics_node_t    *mn;
    ngx_http_ai_metrics_call_t    *mc;
    ngx_http_ai_metrics_label_t   *empty, limit, skipped;
    ngx_http_ai_metrics_minute_t  *mi;
    ngx_http_ai_metrics_totals_t  *tt;

    empty = &ngx_http_ai_metrics_empty;

    minute = (uint32_t) (ngx_time() / 60);

    d = ngx_http_ai_histogram_bucket(m->duration);
    t = ngx_http_ai_histogram_bucket(m->ttft);

    sh = mz->sh;

    ngx_shmtx_lock(&mz->shpool->mutex);

    /* totals */

    tt = &sh->totals;

    tt->requests++;
    tt->status_2xx += (m->status >= 200 && m->status < 300);
    tt->status_4xx += (m->status >= 400 && m->status < 500);
    tt->status_5xx += (m->status >= 500);
    tt->input_tokens += m->in;
    tt->output_tokens += m->out;
    tt->cost += m->cost;
    tt->fallbacks += m->fallbacks;
    tt->skipped += m->nskipped;
    tt->rate_limited += m->rate_limited;
    tt->budget_refused += m->budget_refused;
    tt->fusions += (m->mode.str.len != 0);

    for (i = 0; i < m->ncalls; i++) {
        mc = &m->calls[i];

        if (mc->aborted) {
            tt->aborted++;
            tt->est_cost += mc->cost;

        } else {
            tt->calls++;
            tt->call_errors += !mc->ok;
            tt->est_cost += mc->est_cost;
        }
    }

    ngx_http_ai_histogram_add(&tt->duration, m->duration);

    if (m->has_ttft) {
        ngx_http_ai_histogram_add(&tt->ttft, m->ttft);
    }

    /* this minute */

    if (minute > sh->last) {
        steps = ngx_min(minute - sh->last, NGX_HTTP_AI_METRICS_MINUTES);

        for (k = 1; k <= steps; k++) {
            ngx_memzero(&sh->minutes[(sh->last + k)
                                     % NGX_HTTP_AI_METRICS_MINUTES],
                        sizeof(ngx_http_ai_metrics_minute_t));
        }

        sh->last = minute;
    }

    mi = &sh->minutes[sh->last % NGX_HTTP_AI_METRICS_MINUTES];

    mi->requests++;
    mi->status_4xx += (m->status >= 400 && m->status < 500);
    mi->status_5xx += (m->status >= 500);
    mi->calls += m->answered;
    mi->fallbacks += m->fallbacks;
    mi->rate_limited += m->rate_limited;
    mi->budget_refused += m->budget_refused;
    mi->fusions += (m->mode.str.len != 0);
    mi->input_tokens += m->in;
    mi->output_tokens += m->out;
    mi->cost += m->cost;
    mi->duration[d]++;

    if (m->has_ttft) {
        mi->ttft[t]++;
    }

    /* labelled entries */

    mn = ngx_http_ai_metrics_get(mz, NGX_HTTP_AI_METRICS_REQUEST, &m->route,
                                 &m->model, empty, m->status, log);
    if (mn) {
        mn->u.request.requests++;
        ngx_http_ai_histogram_add(&mn->u.request.duration, m->duration);

        if (m->has_ttft) {
            ngx_http_ai_histogram_add(&mn->u.request.ttft, m->ttft);
        }
    }

    for (b = 0; b < 2; b++) {
        if (!(b ? m->budget_refused : m->rate_limited)) {
            continue;
        }

        ngx_http_ai_metrics_label(&limit, ngx_http_ai_metrics_limits[b].data,
                                  ngx_http_ai_metrics_limits[b].len);

        mn = ngx_http_ai_metrics_get(mz, NGX_HTTP_AI_METRICS_REFUSAL,
                                     &m->route, &m->model, &limit, 0, log);
        if (mn) {
            mn->u.refusal.count++;
        }
    }

    if (m->mode.str.len) {
        mn = ngx_http_ai_metrics_get(mz, NGX_HTTP_AI_METRICS_FUSION,
                                     &m->route, &m->mode, &m->judge, 0, log);
        if (mn) {
            mn->u.refusal.count++;
        }
    }

    for (i = 0; i < m->ncalls; i++) {
        mc = &m->calls[i];

        mn = ngx_http_ai_metrics_get(mz, NGX_HTTP_AI_METRICS_CALL, &m->route,
                                     &mc->model, empty, 0, log);
        if (mn == NULL) {
            continue;
        }

        if (mc->aborted) {
            mn->u.call.aborted++;
            mn->u.call.est_cost += mc->cost;
            continue;
        }

        mn->u.call.calls++;
        mn->u.call.errors += !mc->ok;
        mn->u.call.input_tokens += mc->in;
        mn->u.call.output_tokens += mc->out;
        mn->u.call.cost += mc->cost;
        mn->u.call.est_cost += mc->est_cost;
        mn->u.call.fallbacks += mc->fallback;
    }

    for (i = 0; i < m->nskipped; i++) {
        ngx_http_ai_metrics_label(&skipped, m->skipped[i].data,
                                  ngx_min(m->skipped[i].len,
                                          NGX_HTTP_AI_METRICS_MAX_LABEL));

        mn = ngx_http_ai_metrics_get(mz, NGX_HTTP_AI_METRICS_CALL, &m->route,
                                     &skipped, empty, 0, log);
        if (mn) {
            mn->u.call.skipped++;
        }
    }

    if (m->genai) {
        ngx_http_ai_metrics_genai(mz, m, log);
    }

    /*
     * series: the route, the key, the models called (their tokens and
     * cost) and the model of the request (the request itself)
     */

    ngx_http_ai_metrics_series_add(mz, NGX_HTTP_AI_METRICS_ROUTE, &m->route,
                                   minute, 1, m->answered, m->in, m->out,
                                   m->cost, log);

    if (m->key.str.len) {
        ngx_http_ai_metrics_series_add(mz, NGX_HTTP_AI_METRICS_KEY, &m->key,
                                       minute, 1, m->answered, m->in, m->out,
                                       m->cost, log);
    }

    credited = (m->model.str.len == 0);

    for (i = 0; i < m->ncalls; i++) {
        mc = &m->calls[i];

        if (mc->aborted || mc->model.str.len == 0) {
            continue;
        }

        b = !credited && mc->model.hash == m->model.hash
            && mc->model.str.len == m->model.str.len
            && ngx_memcmp(mc->model.str.data, m->model.str.data,
                          m->model.str.len) == 0;

        credited |= b;

        ngx_http_ai_metrics_series_add(mz, NGX_HTTP_AI_METRICS_MODEL,
                                       &mc->model, minute, b, 1, mc->in,
                                       mc->out, mc->cost, log);
    }

    if (!credited) {
        ngx_http_ai_metrics_series_add(mz, NGX_HTTP_AI_METRICS_MODEL,
                                       &m->model, minute, 1, 0, 0, 0, 0, log);
    }

    ngx_shmtx_unlock(&mz->shpool->mutex);
}


/*
 * The GenAI histograms: each call's tokens, under the model it called;
 * the request's duration under the model that answered and, when it
 * failed, its status (error.type); a stream's time to first token and
 * time per output token after the first.
 */

static void
ngx_http_ai_metrics_genai(ngx_http_ai_metrics_zone_t *mz,
    ngx_http_ai_metrics_req_t *m, ngx_log_t *log)
{
    uint64_t                     tpot;
    ngx_uint_t                   i, error;
    ngx_http_ai_metrics_node_t  *mn;
    ngx_http_ai_metrics_call_t  *mc;

    for (i = 0; i < m->ncalls; i++) {
        mc = &m->calls[i];

        if (mc->aborted || !mc->usage) {
            continue;
        }

        mn = ngx_http_ai_metrics_get(mz, NGX_HTTP_AI_METRICS_GENAI, &m->op,
                                     &m->asked, &mc->model, 0, log);
        if (mn == NULL) {
            continue;
        }

        ngx_http_ai_genai_add(mn->u.genai.h, NGX_HTTP_AI_GENAI_INPUT, mc->in);

        if (m->generates) {
            ngx_http_ai_genai_add(mn->u.genai.h, NGX_HTTP_AI_GENAI_OUTPUT,
                                  mc->out);
        }
    }

    error = (m->status >= 400) ? m->status : 0;

    mn = ngx_http_ai_metrics_get(mz, NGX_HTTP_AI_METRICS_GENAI, &m->op,
                                 &m->asked, &m->answered_by, error, log);
    if (mn == NULL) {
        return;
    }

    ngx_http_ai_genai_add(mn->u.genai.h, NGX_HTTP_AI_GENAI_DURATION,
                          m->duration);

    if (error || !m->streamed) {
        return;
    }

    ngx_http_ai_genai_add(mn->u.genai.h, NGX_HTTP_AI_GENAI_TTFT, m->ttft);

    if (m->answer_out > 1 && m->duration >= m->ttft) {
        tpot = (uint64_t) (m->duration - m->ttft) * 1000
               / (m->answer_out - 1);
        ngx_http_ai_genai_add(mn->u.genai.h, NGX_HTTP_AI_GENAI_TPOT, tpot);
    }
}


static void
ngx_http_ai_genai_add(ngx_http_ai_genai_histogram_t *h, ngx_uint_t kind,
    uint64_t v)
{
    ngx_uint_t       i, n;
    const uint64_t  *bounds;

    bounds = ngx_http_ai_genai_bounds[kind];
    n = ngx_http_ai_genai_nbounds[kind];

    for (i = 0; i < n; i++) {
        if (v <= bounds[i]) {
            break;
        }
    }

    h[kind].count++;
    h[kind].sum += v;
    h[kind].buckets[i]++;
}


static void
ngx_http_ai_metrics_series_add(ngx_http_ai_metrics_zone_t *mz,
    ngx_uint_t type, ngx_http_ai_metrics_label_t *label, uint32_t minute,
    ngx_uint_t requests, ngx_uint_t calls, uint64_t in, uint64_t out,
    uint64_t cost, ngx_log_t *log)
{
    uint32_t                      k, steps;
    ngx_http_ai_metrics_node_t   *mn;
    ngx_http_ai_metrics_point_t  *pt;

    mn = ngx_http_ai_metrics_get(mz, type, label, &ngx_http_ai_metrics_empty,
                                 &ngx_http_ai_metrics_empty, 0, log);
    if (mn == NULL) {
        return;
    }

    if (minute > mn->u.series.last) {
        steps = ngx_min(minute - mn->u.series.last,
                        NGX_HTTP_AI_METRICS_MINUTES);

        for (k = 1; k <= steps; k++) {
            ngx_memzero(&mn->u.series.ring[(mn->u.series.last + k)
                                           % NGX_HTTP_AI_METRICS_MINUTES],
                        sizeof(ngx_http_ai_metrics_point_t));
        }

        mn->u.series.last = minute;
    }

    pt = &mn->u.series.ring[mn->u.series.last % NGX_HTTP_AI_METRICS_MINUTES];

    pt->requests += requests;
    pt->calls += calls;
    pt->input_tokens += in;
    pt->output_tokens += out;
    pt->cost += cost;

    mn->u.series.requests += requests;
    mn->u.series.calls += calls;
    mn->u.series.input_tokens += in;
    mn->u.series.output_tokens += out;
    mn->u.series.cost += cost;
}


static void
ngx_http_ai_metrics_label(ngx_http_ai_metrics_label_t *l, u_char *p,
    size_t len)
{
    /* never NULL: memcmp() and memcpy() want a pointer even for 0 bytes */

    l->str.data = p ? p : (u_char *) "";
    l->str.len = len;
    l->hash = ngx_murmur_hash2(l->str.data, len);
}


/*
 * An entry or a series, found or made; under the zone's mutex.  Its hash
 * mixes the hashes of its labels (each computed once per request) with
 * its type and status.
 */

static ngx_http_ai_metrics_node_t *
ngx_http_ai_metrics_get(ngx_http_ai_metrics_zone_t *mz, ngx_uint_t type,
    ngx_http_ai_metrics_label_t *route, ngx_http_ai_metrics_label_t *model,
    ngx_http_ai_metrics_label_t *extra, ngx_uint_t status, ngx_log_t *log)
{
    size_t                       size;
    uint32_t                     hash;
    ngx_int_t                    rc;
    ngx_uint_t                   series;
    ngx_queue_t                 *queue, *q;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_ai_metrics_sh_t    *sh;
    ngx_http_ai_metrics_node_t  *mn;

    sh = mz->sh;
    series = ngx_http_ai_metrics_is_series(type);
    queue = series ? &sh->series : &sh->queue;

    hash = route->hash
           ^ (model->hash * 0x9e3779b1)
           ^ (extra->hash * 0x85ebca6b)
           ^ ((uint32_t) ((type << 16) | status) * 0xc2b2ae35);

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        mn = (ngx_http_ai_metrics_node_t *) &node->color;

        rc = (ngx_int_t) type - mn->type;

        if (rc == 0) {
            rc = (ngx_int_t) status - mn->status;
        }

        if (rc == 0) {
            rc = (ngx_int_t) route->str.len - mn->route_len;
        }

        if (rc == 0) {
            rc = (ngx_int_t) model->str.len - mn->model_len;
        }

        if (rc == 0) {
            rc = (ngx_int_t) extra->str.len - mn->extra_len;
        }

        /* the same lengths: the data in one piece, as the insert compares */

        if (rc == 0) {
            rc = ngx_memcmp(route->str.data, mn->data, route->str.len);
        }

        if (rc == 0) {
            rc = ngx_memcmp(model->str.data, mn->data + mn->route_len,
                            model->str.len);
        }

        if (rc == 0) {
            rc = ngx_memcmp(extra->str.data,
                            mn->data + mn->route_len + mn->model_len,
                            extra->str.len);
        }

        if (rc == 0) {
            if (ngx_queue_prev(&mn->queue) != queue) {
                ngx_queue_remove(&mn->queue);
                ngx_queue_insert_head(queue, &mn->queue);
            }

            return mn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    /* a new one */

    if (series && sh->max_series == 0) {
        return NULL;
    }

    if (series && sh->nseries >= sh->max_series && sh->nseries) {

        /*
         * the least recently updated series of the same kind, else of any:
         * many keys coming and going do not push the models and routes out
         */

        for (q = ngx_queue_last(&sh->series);
             q != ngx_queue_sentinel(&sh->series);
             q = ngx_queue_prev(q))
        {
            mn = ngx_queue_data(q, ngx_http_ai_metrics_node_t, queue);

            if (mn->type == type) {
                break;
            }
        }

        if (q == ngx_queue_sentinel(&sh->series)) {
            q = ngx_queue_last(&sh->series);
        }

        ngx_http_ai_metrics_evict(mz, q);
        sh->series_evicted++;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_ai_metrics_node_t, data)
           + route->str.len + model->str.len + extra->str.len;

    if (type == NGX_HTTP_AI_METRICS_GENAI) {
        /* its histograms after the labels, in the same allocation */
        size = ngx_align(size, 8) + NGX_HTTP_AI_GENAI_HISTOGRAMS
                                    * sizeof(ngx_http_ai_genai_histogram_t);
    }

    node = ngx_http_ai_metrics_alloc(mz, size, 0, log);
    if (node == NULL) {
        return NULL;
    }

    mn = (ngx_http_ai_metrics_node_t *) &node->color;

    ngx_memzero(mn, size - offsetof(ngx_rbtree_node_t, color));

    if (type == NGX_HTTP_AI_METRICS_GENAI) {
        mn->u.genai.h = (ngx_http_ai_genai_histogram_t *)
            ((u_char *) node + size - NGX_HTTP_AI_GENAI_HISTOGRAMS
                                      * sizeof(ngx_http_ai_genai_histogram_t));
    }

    if (series) {
        mn->u.series.ring = ngx_http_ai_metrics_alloc(mz,
                                NGX_HTTP_AI_METRICS_MINUTES
                                * sizeof(ngx_http_ai_metrics_point_t), 1, log);

        if (mn->u.series.ring == NULL) {
            ngx_slab_free_locked(mz->shpool, node);
            return NULL;
        }

        ngx_memzero(mn->u.series.ring, NGX_HTTP_AI_METRICS_MINUTES
                                       * sizeof(ngx_http_ai_metrics_point_t));

        mn->u.series.last = (uint32_t) (ngx_time() / 60);
        mn->u.series.created = ngx_time();
        sh->nseries++;

    } else {
        sh->entries++;
    }

    node->key = hash;
    mn->type = (u_char) type;
    mn->status = (u_short) status;
    mn->route_len = (u_short) route->str.len;
    mn->model_len = (u_short) model->str.len;
    mn->extra_len = (u_short) extra->str.len;

    ngx_memcpy(ngx_cpymem(ngx_cpymem(mn->data, route->str.data,
                                     route->str.len),
                          model->str.data, model->str.len),
               extra->str.data, extra->str.len);

    ngx_rbtree_insert(&sh->rbtree, node);
    ngx_queue_insert_head(queue, &mn->queue);

    return mn;
}


/*
 * Slab memory; when the zone is full the least recently used entry (or,
 * for a series' ring, series) is dropped to make room, with a warning at
 * most once a minute.  The totals are never dropped.
 */

static void *
ngx_http_ai_metrics_alloc(ngx_http_ai_metrics_zone_t *mz, size_t size,
    ngx_uint_t series, ngx_log_t *log)
{
    void                      *p;
    ngx_uint_t                 n;
    ngx_queue_t               *q;
    ngx_http_ai_metrics_sh_t  *sh;

    sh = mz->sh;

    for (n = 0; n < 16; n++) {

        p = ngx_slab_alloc_locked(mz->shpool, size);
        if (p) {
            return p;
        }

        if (series || ngx_queue_empty(&sh->queue)) {
            if (ngx_queue_empty(&sh->series)) {
                break;
            }

            q = ngx_queue_last(&sh->series);
            sh->series_evicted++;

        } else {
            q = ngx_queue_last(&sh->queue);
            sh->evicted++;
        }

        ngx_http_ai_metrics_evict(mz, q);

        if (sh->warned != ngx_time() / 60) {
            sh->warned = ngx_time() / 60;

            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "ai_metrics_zone \"%V\" is full: the least "
                          "recently used entries are dropped (%uL entries, "
                          "%uL series so far)", &mz->shm_zone->shm.name,
                          sh->evicted, sh->series_evicted);
        }
    }

    return NULL;
}


static void
ngx_http_ai_metrics_evict(ngx_http_ai_metrics_zone_t *mz, ngx_queue_t *q)
{
    ngx_rbtree_node_t           *node;
    ngx_http_ai_metrics_node_t  *mn;

    mn = ngx_queue_data(q, ngx_http_ai_metrics_node_t, queue);
    node = (ngx_rbtree_node_t *)
               ((u_char *) mn - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(q);
    ngx_rbtree_delete(&mz->sh->rbtree, node);

    if (ngx_http_ai_metrics_is_series(mn->type)) {
        ngx_slab_free_locked(mz->shpool, mn->u.series.ring);
        mz->sh->nseries--;

    } else {
        mz->sh->entries--;
    }

    ngx_slab_free_locked(mz->shpool, node);
}


static ngx_uint_t
ngx_http_ai_histogram_bucket(ngx_msec_t ms)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_AI_METRICS_BUCKETS - 1; i++) {
        if (ms <= ngx_http_ai_metrics_bounds[i]) {
            break;
        }
    }

    return i;
}


static void
ngx_http_ai_histogram_add(ngx_http_ai_histogram_t *h, ngx_msec_t ms)
{
    h->count++;
    h->sum += ms;
    h->buckets[ngx_http_ai_histogram_bucket(ms)]++;
}


/* ---- configuration ---- */

/* ai_metrics_zone NAME:SIZE [series=N] | off */

static char *
ngx_http_ai_metrics_zone_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_metrics_main_conf_t *mmcf = conf;

    u_char     *p;
    ssize_t     size;
    ngx_int_t   n;
    ngx_str_t  *value, name, s;

    if (mmcf->set) {
        return "is duplicate";
    }

    mmcf->set = 1;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            return "takes no parameters with \"off\"";
        }

        mmcf->off = 1;
        return NGX_CONF_OK;
    }

    p = (u_char *) ngx_strlchr(value[1].data, value[1].data + value[1].len,
                               ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\": ai_metrics_zone takes "
                           "NAME:SIZE, e.g. ai_metrics:8m, or off",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < 1024 * 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small: at least 1m (the "
                           "24-hour series of the totals take 260k)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts > 2) {
        if (ngx_strncmp(value[2].data, "series=", 7) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        n = ngx_atoi(value[2].data + 7, value[2].len - 7);

        if (n == NGX_ERROR || n > 100000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": expected 0 to 100000",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        mmcf->max_series = n;
    }

    if (ngx_http_ai_metrics_add_zone(cf, mmcf, &name, size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_ai_metrics_main_conf_t *mmcf, ngx_str_t *name, ssize_t size)
{
    ngx_shm_zone_t              *shm_zone;
    ngx_http_ai_metrics_zone_t  *mz;

    shm_zone = ngx_shared_memory_add(cf, name, size,
                                     &ngx_ai_gateway_metrics_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    mz = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_metrics_zone_t));
    if (mz == NULL) {
        return NGX_ERROR;
    }

    mz->shm_zone = shm_zone;
    mz->max_series = (mmcf->max_series == NGX_CONF_UNSET_UINT)
                     ? NGX_HTTP_AI_METRICS_SERIES : mmcf->max_series;

    shm_zone->init = ngx_http_ai_metrics_init_zone;
    shm_zone->data = mz;

    mmcf->zone = shm_zone;

    return NGX_OK;
}


/* kept across reloads (same name and size), as limit_req's zones */

static ngx_int_t
ngx_http_ai_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t                   fresh;
    ngx_http_ai_metrics_zone_t  *mz;

    mz = shm_zone->data;

    mz->sh = ngx_http_ai_zone_state(shm_zone, data,
                                    sizeof(ngx_http_ai_metrics_sh_t),
                                    "ai_metrics_zone", &mz->shpool, &fresh);
    if (mz->sh == NULL) {
        return NGX_ERROR;
    }

    if (!fresh) {
        if (data) {
            /* a reload: the series go on, within the new bound */
            mz->sh->max_series = mz->max_series;
        }

        return NGX_OK;
    }

    ngx_rbtree_init(&mz->sh->rbtree, &mz->sh->sentinel,
                    ngx_http_ai_metrics_rbtree_insert);
    ngx_queue_init(&mz->sh->queue);
    ngx_queue_init(&mz->sh->series);

    mz->sh->max_series = mz->max_series;
    mz->sh->started = ngx_time();
    mz->sh->last = (uint32_t) (ngx_time() / 60);

    mz->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_ai_metrics_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_int_t                    rc;
    ngx_rbtree_node_t          **p;
    ngx_http_ai_metrics_node_t  *mn, *mnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            mn = (ngx_http_ai_metrics_node_t *) &node->color;
            mnt = (ngx_http_ai_metrics_node_t *) &temp->color;

            rc = (ngx_int_t) mn->type - mnt->type;

            if (rc == 0) {
                rc = (ngx_int_t) mn->status - mnt->status;
            }

            if (rc == 0) {
                rc = (ngx_int_t) mn->route_len - mnt->route_len;
            }

            if (rc == 0) {
                rc = (ngx_int_t) mn->model_len - mnt->model_len;
            }

            if (rc == 0) {
                rc = (ngx_int_t) mn->extra_len - mnt->extra_len;
            }

            if (rc == 0) {
                rc = ngx_memcmp(mn->data, mnt->data, mn->route_len
                                + mn->model_len + mn->extra_len);
            }

            p = (rc < 0) ? &temp->left : &temp->right;
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


/*
 * The default zone, then the log phase handler, inserted first.  This
 * module is listed before ngx_ai_gateway_limits_module in `config`, so
 * the limits module's postconfiguration runs after this one and puts its
 * own handler in front of it: the limits handler (which charges calls
 * still uncharged) runs first, then this one, then the access log.
 */

static ngx_int_t
ngx_http_ai_metrics_init(ngx_conf_t *cf)
{
    ngx_http_ai_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_ai_gateway_metrics_module);

    ngx_http_ai_metrics_label(&ngx_http_ai_metrics_empty, (u_char *) "", 0);

    if (mmcf->zone == NULL && !mmcf->off && mmcf->status) {
        if (ngx_http_ai_metrics_add_zone(cf, mmcf,
                                         &ngx_http_ai_metrics_default_name,
                                         NGX_HTTP_AI_METRICS_SIZE)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (mmcf->zone == NULL) {
        return NGX_OK;
    }

    /* recorded after the policies settled (ngx_ai_gateway_policy.c) */

    return ngx_http_ai_policy_add(cf, &ngx_http_ai_metrics_policy);
}


static void *
ngx_http_ai_metrics_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_metrics_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_metrics_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    mmcf->max_series = NGX_CONF_UNSET_UINT;

    return mmcf;
}
