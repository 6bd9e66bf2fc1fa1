
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ngx_ai_gateway_metrics_module: the counters behind ai_status's metrics,
 * its Prometheus text and its dashboard (DESIGN.md section 7), in one
 * shared memory zone updated once per request from the log phase.
 *
 * The zone holds, all in integers:
 *   - totals, never evicted;
 *   - labelled entries (an rbtree keyed by a CRC32 of the labels, LRU
 *     evicted when the zone is full): per (route, model, status) requests
 *     and the duration and time-to-first-token histograms, per (route,
 *     model called) provider calls, tokens and cost, per (route, model,
 *     limit) refusals, per (route, mode, judge status) fusions, per
 *     (operation, model asked for, model that answered, error status)
 *     the OpenTelemetry GenAI histograms (tokens of each call, request
 *     duration, time to first token, time per output token), in the same
 *     LRU and the same bound;
 *   - a ring of 1440 one-minute slots (the last 24 hours) of the totals,
 *     with per-minute histograms, for the charts;
 *   - up to series=N rings of 1440 slots per key digest, model and route
 *     (requests, tokens, cost), the least recently updated one reused
 *     when the cap or the zone is reached.
 */


#ifndef _NGX_AI_GATEWAY_METRICS_H_INCLUDED_
#define _NGX_AI_GATEWAY_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"


#define NGX_HTTP_AI_METRICS_MINUTES     1440
#define NGX_HTTP_AI_METRICS_BUCKETS     15      /* 14 bounds and +Inf */
#define NGX_HTTP_AI_METRICS_MAX_LABEL   1024
#define NGX_HTTP_AI_METRICS_SERIES      64      /* default series= */
#define NGX_HTTP_AI_METRICS_SIZE        (8 * 1024 * 1024)

/* entry types */
#define NGX_HTTP_AI_METRICS_REQUEST     1       /* route, model, status */
#define NGX_HTTP_AI_METRICS_CALL        2       /* route, model called */
#define NGX_HTTP_AI_METRICS_REFUSAL     3       /* route, model, limit */
#define NGX_HTTP_AI_METRICS_FUSION      4       /* route, mode, judge */
#define NGX_HTTP_AI_METRICS_KEY         5       /* series: key digest */
#define NGX_HTTP_AI_METRICS_MODEL       6       /* series: model */
#define NGX_HTTP_AI_METRICS_ROUTE       7       /* series: route */
#define NGX_HTTP_AI_METRICS_GENAI       8       /* operation, request
                                                   model, response model,
                                                   error status */

#define ngx_http_ai_metrics_is_series(type)                                  \
    ((type) >= NGX_HTTP_AI_METRICS_KEY && (type) <= NGX_HTTP_AI_METRICS_ROUTE)

/* the GenAI histograms of an entry */
#define NGX_HTTP_AI_GENAI_INPUT         0       /* tokens */
#define NGX_HTTP_AI_GENAI_OUTPUT        1       /* tokens */
#define NGX_HTTP_AI_GENAI_DURATION      2       /* ms */
#define NGX_HTTP_AI_GENAI_TTFT          3       /* ms */
#define NGX_HTTP_AI_GENAI_TPOT          4       /* us */
#define NGX_HTTP_AI_GENAI_HISTOGRAMS    5
#define NGX_HTTP_AI_GENAI_BUCKETS       17      /* up to 16 bounds, +Inf */


/* a histogram of milliseconds: counts per bucket (not cumulative) */
typedef struct {
    uint64_t                        count;
    uint64_t                        sum;          /* ms */
    uint64_t                        buckets[NGX_HTTP_AI_METRICS_BUCKETS];
} ngx_http_ai_histogram_t;


/*
 * a GenAI histogram: counts per bucket (not cumulative) of the bounds of
 * ngx_http_ai_genai_bounds[kind], the OpenTelemetry conventions' advice
 */
typedef struct {
    uint64_t                        count;
    uint64_t                        sum;
    uint64_t                        buckets[NGX_HTTP_AI_GENAI_BUCKETS];
} ngx_http_ai_genai_histogram_t;


typedef struct {
    uint64_t                        requests;     /* client requests */
    uint64_t                        status_2xx;
    uint64_t                        status_4xx;
    uint64_t                        status_5xx;
    uint64_t                        calls;        /* provider calls answered */
    uint64_t                        call_errors;
    uint64_t                        aborted;      /* calls stopped */
    uint64_t                        input_tokens;
    uint64_t                        output_tokens;
    uint64_t                        cost;         /* nano-USD */
    uint64_t                        est_cost;     /* of aborted calls */
    uint64_t                        fallbacks;
    uint64_t                        skipped;      /* circuit open */
    uint64_t                        rate_limited;
    uint64_t                        budget_refused;
    uint64_t                        fusions;
    ngx_http_ai_histogram_t         duration;
    ngx_http_ai_histogram_t         ttft;
} ngx_http_ai_metrics_totals_t;


/* one minute of the totals */
typedef struct {
    uint32_t                        requests;
    uint32_t                        status_4xx;
    uint32_t                        status_5xx;
    uint32_t                        calls;
    uint32_t                        fallbacks;
    uint32_t                        rate_limited;
    uint32_t                        budget_refused;
    uint32_t                        fusions;
    uint64_t                        input_tokens;
    uint64_t                        output_tokens;
    uint64_t                        cost;
    uint32_t                        duration[NGX_HTTP_AI_METRICS_BUCKETS];
    uint32_t                        ttft[NGX_HTTP_AI_METRICS_BUCKETS];
} ngx_http_ai_metrics_minute_t;


/* one minute of a series (a key, a model, a route) */
typedef struct {
    uint32_t                        requests;
    uint32_t                        calls;
    uint64_t                        input_tokens;
    uint64_t                        output_tokens;
    uint64_t                        cost;
} ngx_http_ai_metrics_point_t;


/*
 * An entry or a series in shared memory, overlaying ngx_rbtree_node_t.
 * color; data: [route][model][extra] (a series: its label in route).
 */
typedef struct {
    u_char                          color;
    u_char                          type;
    u_short                         status;       /* HTTP status */
    u_short                         route_len;
    u_short                         model_len;
    u_short                         extra_len;
    ngx_queue_t                     queue;        /* LRU of its kind */
    union {
        struct {
            uint64_t                    requests;
            ngx_http_ai_histogram_t     duration;
            ngx_http_ai_histogram_t     ttft;
        } request;
        struct {
            uint64_t                    calls;    /* answered */
            uint64_t                    errors;
            uint64_t                    aborted;
            uint64_t                    input_tokens;
            uint64_t                    output_tokens;
            uint64_t                    cost;
            uint64_t                    est_cost;
            uint64_t                    fallbacks;
            uint64_t                    skipped;
        } call;
        struct {
            uint64_t                    count;
        } refusal;                               /* and fusion */
        struct {
            ngx_http_ai_metrics_point_t *ring;
            uint32_t                    last;     /* its newest minute */
            uint64_t                    requests; /* since created */
            uint64_t                    calls;
            uint64_t                    input_tokens;
            uint64_t                    output_tokens;
            uint64_t                    cost;
            time_t                      created;
        } series;
        struct {
            ngx_http_ai_genai_histogram_t  *h;   /* [HISTOGRAMS], after
                                                    the labels */
        } genai;
    } u;
    u_char                          data[1];
} ngx_http_ai_metrics_node_t;


typedef struct {
    ngx_rbtree_t                    rbtree;
    ngx_rbtree_node_t               sentinel;
    ngx_queue_t                     queue;        /* entries, head: newest */
    ngx_queue_t                     series;       /* series, head: newest */
    ngx_uint_t                      entries;
    ngx_uint_t                      nseries;
    ngx_uint_t                      max_series;
    uint64_t                        evicted;
    uint64_t                        series_evicted;
    time_t                          warned;
    time_t                          started;
    ngx_http_ai_metrics_totals_t    totals;
    uint32_t                        last;         /* newest minute */
    ngx_http_ai_metrics_minute_t    minutes[NGX_HTTP_AI_METRICS_MINUTES];
} ngx_http_ai_metrics_sh_t;


typedef struct {
    ngx_http_ai_metrics_sh_t       *sh;
    ngx_slab_pool_t                *shpool;
    ngx_shm_zone_t                 *shm_zone;
    ngx_uint_t                      max_series;
} ngx_http_ai_metrics_zone_t;


typedef struct {
    ngx_shm_zone_t                 *zone;         /* NULL: no metrics */
    ngx_uint_t                      max_series;
    unsigned                        off:1;        /* ai_metrics_zone off */
    unsigned                        set:1;        /* ai_metrics_zone seen */
    unsigned                        status:1;     /* an ai_status exists */
} ngx_http_ai_metrics_main_conf_t;


extern ngx_module_t  ngx_ai_gateway_metrics_module;

extern const ngx_msec_t  ngx_http_ai_metrics_bounds[];
extern const uint64_t  *ngx_http_ai_genai_bounds[];
extern const ngx_uint_t  ngx_http_ai_genai_nbounds[];


/* ngx_ai_gateway_metrics_json.c */
ngx_uint_t ngx_http_ai_histogram_quantile(uint64_t *buckets, uint64_t count,
    ngx_uint_t permille);
void ngx_http_ai_metrics_zone_json(ngx_http_request_t *r, ngx_ai_jw_t *w);
void ngx_http_ai_metrics_json(ngx_http_request_t *r, ngx_ai_jw_t *w);
void ngx_http_ai_metrics_series_json(ngx_http_request_t *r, ngx_ai_jw_t *w,
    ngx_uint_t minutes);

/* ngx_ai_gateway_status.c */
char *ngx_http_ai_status_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_ai_gateway_prometheus.c */
ngx_int_t ngx_http_ai_prometheus(ngx_http_request_t *r, ngx_str_t *json,
    ngx_ai_buf_t *b);


#endif /* _NGX_AI_GATEWAY_METRICS_H_INCLUDED_ */
