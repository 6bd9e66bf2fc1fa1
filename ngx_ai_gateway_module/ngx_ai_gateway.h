
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The nginx side of the gateway: configuration, per-request state, and the
 * calls between the handler (client side) and the upstream part (provider
 * subrequests and their filters).
 */


#ifndef _NGX_AI_GATEWAY_H_INCLUDED_
#define _NGX_AI_GATEWAY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_pure.h"


#define NGX_HTTP_AI_MAX_KEY_LEN     4096
#define NGX_HTTP_AI_MAX_MODELS      64      /* ai_max_models at most */
#define NGX_HTTP_AI_MAX_ATTEMPTS    100     /* ai_max_attempts at most */


typedef struct ngx_http_ai_vertex_s  ngx_http_ai_vertex_t;


typedef struct {
    ngx_str_t                   name;
    ngx_ai_translator_t        *translator;
    ngx_str_t                   pass;        /* internal location prefix */
    ngx_str_t                   key;         /* env:, file: or literal */
    ngx_http_complex_value_t   *key_value;   /* key=$variable */
    ngx_str_t                   other;       /* the ledger's and metrics'
                                                label of models the
                                                configuration does not
                                                name: NAME, "/", "*" */
    ngx_uint_t                  cloud;       /* NGX_HTTP_AI_CLOUD_* */
    ngx_str_t                   api_version; /* azure: api-version, "v1" */
    ngx_array_t                *deployments; /* azure: ngx_keyval_t,
                                                model -> deployment */
    unsigned                    bearer:1;    /* azure: the key is an Entra
                                                token (token=) */
    ngx_http_ai_vertex_t       *vertex;      /* type=vertex */
    ngx_str_t                   region;      /* type=bedrock: region=, */
    ngx_str_t                   host;        /* the Host signed, */
    ngx_str_t                   session_token;   /* session_token= */
    ngx_ai_sigv4_key_t         *sigkey;      /* and the day's key */
} ngx_http_ai_provider_t;

#define NGX_HTTP_AI_CLOUD_NONE      0
#define NGX_HTTP_AI_CLOUD_AZURE     1
#define NGX_HTTP_AI_CLOUD_VERTEX    2


/* type=vertex: where and as whom (ngx_ai_gateway_vertex.c) */
struct ngx_http_ai_vertex_s {
    ngx_str_t                   project;
    ngx_str_t                   region;
    ngx_str_t                   token_pass;  /* internal location of the
                                                token endpoint */
    ngx_ai_service_account_t    sa;          /* its private_key dropped */
    void                       *pkey;        /* EVP_PKEY */
    ngx_str_t                   id;          /* its token's slot */
    ngx_shm_zone_t             *zone;        /* the tokens, all workers' */
    ngx_uint_t                  anthropic;   /* publisher=anthropic */
};


typedef struct {
    ngx_str_t                   model;       /* "provider/model" */
    ngx_http_ai_provider_t     *provider;
    uint64_t                    input;       /* nano-USD per 1M tokens */
    uint64_t                    output;
    ngx_str_t                   input_text;  /* as configured, for /models */
    ngx_str_t                   output_text;
    unsigned                    family:1;    /* "provider/prefix*": every
                                                model whose name starts
                                                with the prefix */
} ngx_http_ai_price_t;


/* the policies' hooks, ngx_http_ai_policy_t (ngx_ai_gateway_policy.c) */
#define NGX_HTTP_AI_HOOK_REQUEST    0
#define NGX_HTTP_AI_HOOK_ADMIT      1
#define NGX_HTTP_AI_HOOK_ATTEMPT    2
#define NGX_HTTP_AI_HOOK_CALL_DONE  3
#define NGX_HTTP_AI_HOOK_HEADERS    4
#define NGX_HTTP_AI_HOOK_ANSWER     5
#define NGX_HTTP_AI_HOOK_ERROR      6
#define NGX_HTTP_AI_HOOK_STREAM     7
#define NGX_HTTP_AI_HOOK_END        8
#define NGX_HTTP_AI_HOOK_LOG        9
#define NGX_HTTP_AI_HOOK_PLAN       10
#define NGX_HTTP_AI_HOOKS           11


typedef struct {
    ngx_array_t                 providers;   /* ngx_http_ai_provider_t */
    ngx_array_t                 prices;      /* ngx_http_ai_price_t */
    ngx_array_t                 models;      /* ngx_str_t: every model the
                                                configuration names */
    ngx_array_t                 secrets;     /* ngx_str_t: the providers'
                                                keys, scrubbed from what
                                                providers send */
    ngx_array_t                 hooks[NGX_HTTP_AI_HOOKS];
                                             /* per NGX_HTTP_AI_HOOK_*: the
                                                ngx_http_ai_policy_t * that
                                                have it */
    ngx_shm_zone_t             *breakers;
} ngx_http_ai_main_conf_t;


/* a model a request may be sent to */
typedef struct {
    ngx_str_t                   name;        /* "provider/model" */
    ngx_str_t                   upstream;    /* "model", NUL-terminated */
    ngx_str_t                   label;       /* in the ledger and metrics */
    ngx_http_ai_provider_t     *provider;
} ngx_http_ai_model_t;


/* fallback triggers, on= */
#define NGX_HTTP_AI_ON_ERROR        0x01
#define NGX_HTTP_AI_ON_TIMEOUT      0x02
#define NGX_HTTP_AI_ON_429          0x04
#define NGX_HTTP_AI_ON_5XX          0x08
#define NGX_HTTP_AI_ON_INVALID      0x10
#define NGX_HTTP_AI_ON_4XX          0x20
#define NGX_HTTP_AI_ON_DEFAULT      0x1f


/* ai_fallback */
typedef struct {
    ngx_array_t                 models;      /* ngx_http_ai_model_t */
    ngx_uint_t                  on;
    ngx_msec_t                  timeout;     /* per attempt, 0: none */
    ngx_uint_t                  retries;     /* per model */
    ngx_msec_t                  hedge;       /* 0: off */
    ngx_uint_t                  breaker_failures;   /* 0: off */
    ngx_msec_t                  breaker_cooldown;
    ngx_shm_zone_t             *breakers;
} ngx_http_ai_fallback_t;


/* ai_pool */
typedef struct {
    ngx_array_t                 members;     /* ngx_array_t of models: each
                                                member's alternatives */
    ngx_array_t                 judges;      /* ngx_http_ai_model_t */
    ngx_uint_t                  mode;        /* NGX_AI_FUSION_* */
    ngx_str_t                   name;        /* "fusion/merge" */
    ngx_uint_t                  quorum;      /* 0: every member */
    ngx_msec_t                  grace;
    ngx_msec_t                  deadline;    /* 0: none */
    ngx_uint_t                  rounds;
} ngx_http_ai_pool_t;


/* ai_unpriced */
#define NGX_HTTP_AI_UNPRICED_FREE     0
#define NGX_HTTP_AI_UNPRICED_REFUSE   1
#define NGX_HTTP_AI_UNPRICED_DEFAULT  2


typedef struct {
    ngx_flag_t                  gateway;
    ngx_int_t                   default_max_tokens;
    size_t                      max_response_size;
    ngx_uint_t                  max_models;  /* entries of "models" */
    ngx_uint_t                  max_attempts;    /* calls of a fallback */
    ngx_flag_t                  exact_input_tokens;  /* a Messages stream
                                                    waits for them
                                                    (ai_messages_input_tokens
                                                    exact) */
    ngx_int_t                   unpriced;    /* NGX_CONF_UNSET: refuse
                                                where a budget applies */
    ngx_http_ai_price_t        *unpriced_price;  /* ai_unpriced default= */
    ngx_http_ai_fallback_t     *fallback;
    ngx_http_ai_pool_t         *pool;
} ngx_http_ai_loc_conf_t;


typedef struct ngx_http_ai_ctx_s  ngx_http_ai_ctx_t;


/* how one provider call ended */
typedef enum {
    NGX_HTTP_AI_RUNNING = 0,
    NGX_HTTP_AI_OK,           /* a usable answer */
    NGX_HTTP_AI_ERROR,        /* connect failure, reset, dropped, cut off */
    NGX_HTTP_AI_TIMEOUT,
    NGX_HTTP_AI_429,
    NGX_HTTP_AI_5XX,
    NGX_HTTP_AI_4XX,
    NGX_HTTP_AI_INVALID,      /* a 2xx that does not parse or has no choice */
    NGX_HTTP_AI_ABORTED       /* stopped by the gateway: a hedge loser */
} ngx_http_ai_outcome_e;


/*
 * One call to one provider: a background subrequest.  Its fields are the
 * attempt layer's (retry_delay, retry_after and retry_after_ms written by
 * its call_headers.c, on the attempt's header filter), but for its
 * charge, written by the limits' call_done hook: cost, est_cost,
 * estimated, guessed, charged_ok; and "choice", written by the strategy.
 */
typedef struct {
    ngx_http_ai_ctx_t          *ctx;
    ngx_http_request_t         *sr;
    ngx_http_ai_model_t        *target;
    ngx_ai_chat_request_t      *req;         /* as this call sends it */
    ngx_http_handler_pt         content_handler; /* of its pass location */
    ngx_http_ai_provider_t     *provider;
    ngx_str_t                   model;       /* "provider/model" */
    ngx_str_t                   label;       /* its ledger and metrics
                                                label */
    ngx_str_t                   key;         /* the key sent, from key=$var
                                                (else in amcf->secrets) */
    ngx_event_t                 timer;       /* the attempt's timeout */
    ngx_event_t                 token_wait;  /* vertex: another call buys
                                                the token */
    ngx_str_t                   uri;         /* the call's subrequest */
    ngx_str_t                   args;
    ngx_str_t                   up_body;
    ngx_str_t                   up_path;     /* the native path, with its
                                                arguments (signed) */
    ngx_msec_t                  retry_delay; /* a 429's wish, in ms */
    ngx_ai_response_t           answer;      /* translated, not streamed */
    ngx_int_t                   rc;          /* subrequest result */
    ngx_uint_t                  status;      /* provider's HTTP status */
    ngx_ai_buf_t                body;        /* whole answer, not streamed */
    ngx_str_t                   retry_after; /* of a 429, in seconds */
    ngx_str_t                   retry_after_ms;  /* ... in ms, if sent */
    ngx_ai_sse_parser_t         sse;
    ngx_ai_es_parser_t          es;          /* AWS event stream framing */
    ngx_ai_stream_t             stream;
    ngx_msec_t                  start;
    ngx_msec_t                  end;
    ngx_int_t                   member;      /* fusion: its member, -1 */
    ngx_uint_t                  round;       /* fusion: its debate round */
    ngx_http_ai_outcome_e       outcome;
    ngx_str_t                   reason;      /* why it failed, for errors */
    ngx_ai_usage_t              usage;       /* as the provider reported */
    uint64_t                    cost;        /* nano-USD, set when charged */
    uint64_t                    est_cost;    /* ... of which estimated */
    unsigned                    done:1;
    unsigned                    aborted:1;   /* usage, if any, is estimated */
    unsigned                    charged:1;
    unsigned                    header:1;    /* the provider sent a header */
    unsigned                    complete:1;  /* its answer ended normally */
    unsigned                    streaming:1; /* its events are translated */
    unsigned                    too_big:1;
    unsigned                    judged:1;    /* its outcome is decided */
    unsigned                    first_byte:1;    /* reached the client */
    unsigned                    estimated:1; /* charged as aborted */
    unsigned                    charged_ok:1;    /* charged as a success */
    unsigned                    guessed:1;   /* answered without valid
                                                usage: charged the
                                                estimate */
    unsigned                    token:1;     /* vertex: sr buys the access
                                                token */
    unsigned                    choice:1;    /* one of the n calls whose
                                                answers are one answer's
                                                choices (the strategy's) */
} ngx_http_ai_attempt_t;


typedef struct ngx_http_ai_fusion_s  ngx_http_ai_fusion_t;
typedef struct ngx_http_ai_choices_s  ngx_http_ai_choices_t;


/*
 * A strategy makes the calls of a request (ngx_ai_gateway_fallback.c,
 * ngx_ai_gateway_fusion.c); the core reaches it only through these,
 * chosen once by the handler:
 *   run      the decision loop: at the start, when a call ends, when a
 *            timer fires, when the client can take more of a stream;
 *   relay    a call has translated stream events in a->stream.out (it
 *            consumes them);
 *   cleanup  the request's pool goes: its timers must not outlive it.
 */
typedef struct {
    void                      (*run)(ngx_http_request_t *r,
                                  ngx_http_ai_ctx_t *ctx);
    ngx_int_t                 (*relay)(ngx_http_ai_ctx_t *ctx,
                                  ngx_http_ai_attempt_t *a);
    void                      (*cleanup)(ngx_http_ai_ctx_t *ctx);
} ngx_http_ai_strategy_t;


/*
 * The request's state.  Each field has one writer, named beside it:
 * handler (ngx_ai_gateway_handler.c), strategy (fallback.c, fusion.c),
 * attempt (ngx_ai_gateway_attempt.c), response (ngx_ai_gateway_response.c).
 * Policies keep their own ctxs.
 */
struct ngx_http_ai_ctx_s {
    ngx_http_request_t         *request;     /* handler */
    ngx_ai_chat_request_t       chat;        /* handler */
    ngx_http_ai_strategy_t     *strategy;    /* handler */
    ngx_http_ai_fallback_t     *fallback;    /* handler: the ai_fallback */
    ngx_http_ai_fusion_t       *fusion;      /* strategy (fusion) */
    ngx_http_ai_choices_t      *choices;     /* strategy (fallback): n calls
                                                for "n" > 1 on a provider
                                                without "n" */
    void                      (*resume)(ngx_http_request_t *r,
                                  ngx_int_t rc, ngx_ai_error_t *err);
                                             /* handler: an admission
                                                decided later (strict) */
    ngx_array_t                 plan;        /* attempt: ngx_http_ai_model_t,
                                                ngx_http_ai_plan_add() */
    ngx_uint_t                 *seen;        /* attempt: plan index + 1 by
                                                name hash */
    ngx_uint_t                  seen_size;   /* attempt */
    ngx_uint_t                  next;        /* strategy: plan index to try
                                                next */
    ngx_uint_t                  tries;       /* strategy: calls to
                                                plan[next - 1] */
    ngx_array_t                 calls;       /* attempt:
                                                ngx_http_ai_attempt_t * */
    ngx_array_t                 skipped;     /* strategy: ngx_str_t,
                                                circuit open */
    ngx_http_ai_attempt_t      *attempt;     /* attempt: the latest one
                                                started */
    ngx_http_ai_attempt_t      *winner;      /* strategy: whose answer is
                                                sent */
    ngx_event_t                 hedge;       /* strategy: starts a parallel
                                                attempt */
    ngx_event_t                 retry;       /* strategy: a backoff before
                                                a retry */
    ngx_msec_t                  start;       /* handler */
    ngx_msec_t                  ttft;        /* response: first byte to the
                                                client */
    ngx_uint_t                  attempts;    /* attempt: calls started */
    uint64_t                    cost;        /* attempt: nano-USD, every
                                                call settled */
    ngx_ai_usage_t              usage;       /* attempt: summed over every
                                                call settled */
    ngx_str_t                   model;       /* strategy (or a cache
                                                hit, which runs no
                                                strategy): the model that
                                                answered */
    ngx_str_t                   error_page;  /* response: nginx's error, as
                                                JSON */
    ngx_ai_error_t             *refused;     /* attempt: why a call was not
                                                made (a limit, the attempt
                                                bound) */
    ngx_uint_t                  denied;      /* attempt: models the plan
                                                hooks kept out of it */
    ngx_ai_route_t             *route;       /* handler: the API the path
                                                 asks for */
    ngx_ai_dialect_t           *dialect;     /* handler: the client's API
                                                when not chat completions
                                                (the Messages API) */
    void                       *dialect_stream;  /* response: its stream
                                                converter */
    unsigned                    header_sent:1;   /* response */
    unsigned                    own_response:1;  /* response */
    unsigned                    rewrite_error:1; /* response */
    unsigned                    finished:1;  /* response
                                                (ngx_http_ai_finalize) */
};


/* the hooks of a policy (ngx_ai_gateway_policy.c); NULL: none */

typedef struct {
    ngx_int_t                 (*request)(ngx_http_request_t *r,
                                  ngx_ai_chat_request_t *chat,
                                  ngx_ai_error_t *err);
    ngx_int_t                 (*admit)(ngx_http_request_t *r,
                                  ngx_http_ai_ctx_t *ctx,
                                  ngx_ai_error_t *err);
    ngx_int_t                 (*attempt)(ngx_http_request_t *r,
                                  ngx_http_ai_ctx_t *ctx, ngx_str_t *model,
                                  ngx_ai_chat_request_t *req,
                                  ngx_ai_error_t *err);
    void                      (*call_done)(ngx_http_request_t *r,
                                  ngx_http_ai_ctx_t *ctx,
                                  ngx_http_ai_attempt_t *a);
    ngx_int_t                 (*headers)(ngx_http_request_t *r,
                                  ngx_http_ai_ctx_t *ctx);
    ngx_int_t                 (*answer)(ngx_http_request_t *r,
                                  ngx_str_t *body);
    ngx_int_t                 (*error)(ngx_http_request_t *r,
                                  ngx_str_t *message);
    ngx_int_t                 (*stream)(ngx_http_request_t *r,
                                  ngx_str_t *data, ngx_uint_t last);
    void                      (*end)(ngx_http_request_t *r,
                                  ngx_http_ai_ctx_t *ctx);
    void                      (*log)(ngx_http_request_t *r,
                                  ngx_http_ai_ctx_t *ctx);
    ngx_int_t                 (*plan)(ngx_http_request_t *r,
                                  ngx_http_ai_ctx_t *ctx,
                                  ngx_http_ai_model_t *m);
                                             /* NGX_DECLINED: m may not be
                                                called for this request */
} ngx_http_ai_policy_t;


extern ngx_module_t  ngx_ai_gateway_module;
extern ngx_module_t  ngx_ai_gateway_attempt_module;
extern ngx_module_t  ngx_ai_gateway_guard_module;

extern ngx_http_ai_strategy_t  ngx_http_ai_fallback_strategy;
extern ngx_http_ai_strategy_t  ngx_http_ai_fusion_strategy;


/* ngx_ai_gateway_usd.c */
#define NGX_HTTP_AI_MAX_PRICE       1000000     /* whole USD per 1M tokens */
#define NGX_HTTP_AI_MAX_BUDGET      999999999   /* whole USD */

ngx_int_t ngx_http_ai_parse_usd(u_char *p, size_t len, uint64_t limit,
    uint64_t *nano);
uint64_t ngx_http_ai_cost_of(uint64_t tokens, uint64_t price);
u_char *ngx_http_ai_sprint_usd(u_char *p, uint64_t nano);

/* ngx_ai_gateway_provider.c */
#define NGX_HTTP_AI_MODEL_OK                0
#define NGX_HTTP_AI_MODEL_NO_PROVIDER       1   /* no "provider/" */
#define NGX_HTTP_AI_MODEL_UNKNOWN_PROVIDER  2
#define NGX_HTTP_AI_MODEL_INVALID           3   /* not for its wire format */

char *ngx_http_ai_provider_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_price_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_unpriced_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_provider_init(ngx_conf_t *cf);
ngx_http_ai_provider_t *ngx_http_ai_find_provider(
    ngx_http_ai_main_conf_t *amcf, ngx_str_t *name);
ngx_uint_t ngx_http_ai_model_split(ngx_http_ai_main_conf_t *amcf,
    ngx_str_t *name, ngx_http_ai_model_t *m);
ngx_http_ai_model_t *ngx_http_ai_model_parse(ngx_conf_t *cf,
    ngx_str_t *name);
ngx_http_ai_price_t *ngx_http_ai_find_price(ngx_http_ai_main_conf_t *amcf,
    ngx_str_t *model);
ngx_http_ai_price_t *ngx_http_ai_price_here(ngx_http_request_t *r,
    ngx_str_t *model);
void ngx_http_ai_model_label(ngx_http_ai_main_conf_t *amcf,
    ngx_http_ai_provider_t *provider, ngx_str_t *name, ngx_str_t *label);
ngx_int_t ngx_http_ai_model_known(ngx_conf_t *cf, ngx_str_t *name);
ngx_int_t ngx_http_ai_provider_key_value(ngx_http_request_t *r,
    ngx_http_ai_provider_t *p, ngx_str_t *key);
ngx_int_t ngx_http_ai_provider_prepare(ngx_http_ai_provider_t *p,
    ngx_ai_chat_request_t *req);
ngx_int_t ngx_http_ai_provider_path(ngx_pool_t *pool,
    ngx_http_ai_provider_t *p, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *up, ngx_ai_error_t *err);

/* ngx_ai_gateway_vertex.c: Vertex AI's service account and tokens */
char *ngx_http_ai_vertex_option(ngx_conf_t *cf, ngx_http_ai_provider_t *p,
    ngx_str_t *value);
char *ngx_http_ai_vertex_check(ngx_conf_t *cf, ngx_http_ai_provider_t *p);
ngx_int_t ngx_http_ai_vertex_token(ngx_http_ai_provider_t *p,
    ngx_pool_t *pool, ngx_str_t *token);
ngx_int_t ngx_http_ai_vertex_grant(ngx_http_ai_provider_t *p,
    ngx_pool_t *pool, ngx_log_t *log, ngx_str_t *body);
ngx_int_t ngx_http_ai_vertex_token_set(ngx_http_ai_provider_t *p,
    ngx_uint_t status, u_char *body, size_t len, ngx_pool_t *pool,
    ngx_str_t *token, const char **why);

/* ngx_ai_gateway_shm.c */
ngx_int_t ngx_http_ai_zone_arg(ngx_conf_t *cf, ngx_str_t *arg,
    const char *directive, const char *example, ngx_str_t *name,
    ssize_t *size);
void *ngx_http_ai_zone_state(ngx_shm_zone_t *shm_zone, void *data,
    size_t sh_size, const char *what, ngx_slab_pool_t **shpool,
    ngx_uint_t *fresh);
void ngx_http_ai_id_insert(ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel, size_t len_off, size_t data_off);
void *ngx_http_ai_id_lookup(ngx_rbtree_t *tree, uint32_t hash, u_char *id,
    size_t len, size_t len_off, size_t data_off);

/* ngx_ai_gateway_secrets.c */
typedef struct {
    ngx_str_t                   what;        /* first in messages */
    const char                 *file;        /* "key file " or "" */
    size_t                      max;         /* bytes of a file */
    const char                 *unset;       /* an unset env: is no error,
                                                the warning ends with this;
                                                NULL: an error */
} ngx_http_ai_secret_opts_t;

ngx_int_t ngx_http_ai_secrets_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_secret_read(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_ai_secret_opts_t *o, ngx_str_t *out);

/* ngx_ai_gateway_breaker.c */
ngx_int_t ngx_http_ai_breaker_init_conf(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_breaker_allow(ngx_http_ai_fallback_t *fb,
    ngx_str_t *model, ngx_log_t *log);
ngx_int_t ngx_http_ai_breaker_init(ngx_conf_t *cf);
void ngx_http_ai_breaker_json(ngx_http_ai_main_conf_t *amcf,
    ngx_ai_jw_t *w);

/* ngx_ai_gateway_guard.c: ai_guard (its hooks: ngx_ai_gateway_guard.h) */
void ngx_http_ai_guard_status_json(ngx_http_request_t *r, ngx_ai_jw_t *w);

/* ngx_ai_gateway_policy.c: the policies' hooks (see there) */

ngx_int_t ngx_http_ai_policy_add(ngx_conf_t *cf,
    ngx_http_ai_policy_t *policy);
ngx_int_t ngx_http_ai_policy_request(ngx_http_request_t *r,
    ngx_ai_chat_request_t *chat, ngx_ai_error_t *err);
ngx_int_t ngx_http_ai_policy_admit(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_ai_error_t *err);
ngx_int_t ngx_http_ai_policy_attempt(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_str_t *model, ngx_ai_chat_request_t *req,
    ngx_ai_error_t *err);
void ngx_http_ai_policy_call_done(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a);
ngx_int_t ngx_http_ai_policy_headers(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
ngx_int_t ngx_http_ai_policy_text(ngx_http_request_t *r, ngx_uint_t hook,
    ngx_str_t *text, ngx_uint_t last);
void ngx_http_ai_policy_end(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx);
ngx_int_t ngx_http_ai_policy_plan(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_model_t *m);

/* ngx_ai_gateway_call_headers.c: a provider call's headers, sent and read */
ngx_int_t ngx_http_ai_call_headers(ngx_http_request_t *sr,
    ngx_http_ai_attempt_t *a, ngx_str_t *key);
ngx_int_t ngx_http_ai_call_sign_aws(ngx_http_request_t *sr,
    ngx_http_ai_attempt_t *a, ngx_str_t *key, ngx_str_t *path,
    ngx_str_t *body);
ngx_int_t ngx_http_ai_call_fresh_headers(ngx_http_request_t *sr,
    const char *content_type, const char *accept);
ngx_int_t ngx_http_ai_call_push_header(ngx_http_request_t *sr,
    const char *name, ngx_str_t *value);
void ngx_http_ai_call_retry_after(ngx_http_request_t *r,
    ngx_http_ai_attempt_t *a);
void ngx_http_ai_call_header_tokens(ngx_http_request_t *r,
    ngx_http_ai_attempt_t *a);

/* ngx_ai_gateway_attempt.c: one provider call, and the request's calls;
 * attempt_start: NGX_DECLINED when the call may not be made, ctx->refused
 * says why */
ngx_int_t ngx_http_ai_attempt_start(ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_model_t *target, ngx_ai_chat_request_t *req);
void ngx_http_ai_attempt_abort(ngx_http_ai_attempt_t *a,
    ngx_http_ai_outcome_e outcome);
ngx_int_t ngx_http_ai_attempt_outcome(ngx_http_request_t *r,
    ngx_http_ai_attempt_t *a);
ngx_int_t ngx_http_ai_attempt_scrub(ngx_http_ai_attempt_t *a,
    ngx_str_t *text);
ngx_int_t ngx_http_ai_calls_init(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
ngx_int_t ngx_http_ai_plan_add(ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_model_t *m);
ngx_uint_t ngx_http_ai_plan_has(ngx_http_ai_ctx_t *ctx, ngx_str_t *name);
void ngx_http_ai_plan_denied(ngx_http_ai_ctx_t *ctx, ngx_ai_error_t *err);
ngx_int_t ngx_http_ai_plan_serves(ngx_http_ai_ctx_t *ctx,
    ngx_ai_error_t *err);
ngx_int_t ngx_http_ai_attempt_settle(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a);
void ngx_http_ai_attempt_abort_others(ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *keep);
void ngx_http_ai_calls_end(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx);
void ngx_http_ai_stop_timers(ngx_http_ai_ctx_t *ctx);

/* ngx_ai_gateway_response.c: what the client is sent */
ngx_int_t ngx_http_ai_response_init(ngx_conf_t *cf);
void ngx_http_ai_finalize(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_int_t rc);
ngx_int_t ngx_http_ai_send_header(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_uint_t status, const char *type,
    off_t length);
ngx_int_t ngx_http_ai_send_json(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_uint_t status, ngx_str_t *body);
ngx_int_t ngx_http_ai_send_error(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_ai_error_t *err);
void ngx_http_ai_answer(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a);
void ngx_http_ai_fail(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx);
ngx_int_t ngx_http_ai_stream_send(ngx_http_ai_ctx_t *ctx, ngx_str_t *data,
    ngx_uint_t last);
ngx_int_t ngx_http_ai_stream_flush(ngx_http_request_t *r);

/* ngx_ai_gateway_fallback.c: the fallback strategy */
char *ngx_http_ai_fallback_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_fallback_plan(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_ai_error_t *err);

/* ngx_ai_gateway_pool.c: ai_pool, and the modes' names */
extern ngx_str_t  ngx_http_ai_fusion_modes[];
char *ngx_http_ai_pool_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_ai_gateway_fusion.c: the fusion strategy */
ngx_int_t ngx_http_ai_fusion_wanted(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_pool_t *pool);
ngx_int_t ngx_http_ai_fusion_plan(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_pool_t *pool, ngx_uint_t judges);
void ngx_http_ai_fusion_start(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_pool_t *pool);
void ngx_http_ai_fusion_outcome(ngx_http_ai_ctx_t *ctx, ngx_str_t *name,
    ngx_str_t *mode, ngx_str_t *judge_status);

/* ngx_ai_gateway_handler.c: the content handler */
ngx_int_t ngx_http_ai_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_handler_init(ngx_conf_t *cf);

/* ngx_ai_gateway_variables.c */
typedef struct {
    ngx_str_t                   operation;   /* chat, embeddings, ... */
    ngx_str_t                   request;     /* label asked for, or "" */
    ngx_str_t                   response;    /* label that answered, "" */
} ngx_http_ai_genai_t;

ngx_int_t ngx_http_ai_add_variables(ngx_conf_t *cf);
void ngx_http_ai_genai_names(ngx_http_ai_ctx_t *ctx, ngx_http_ai_genai_t *g);


#endif /* _NGX_AI_GATEWAY_H_INCLUDED_ */
