
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The pure part of the gateway: request validation, provider translation,
 * SSE parsing, JSON helpers.  Nothing here touches ngx_http_request_t or
 * logs; functions take pools and buffers, so they can be unit-tested and
 * fuzzed outside nginx (t/unit links them with a tiny pool implementation).
 *
 * Allowed nginx calls here: ngx_palloc, ngx_pnalloc, ngx_pcalloc,
 * ngx_pool_cleanup_add and the header-only macros (ngx_memcpy, ngx_cpymem,
 * ngx_strncmp, ngx_strlen, ngx_memzero, ngx_tolower ...).
 */


#ifndef _NGX_AI_GATEWAY_PURE_H_INCLUDED_
#define _NGX_AI_GATEWAY_PURE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <cjson/cJSON.h>


#define NGX_AI_GATEWAY_VERSION      "0.1.0"

/* bounds on client and provider bytes */
#define NGX_AI_MAX_JSON_DEPTH       64
#define NGX_AI_MAX_MODEL_LEN        256
#define NGX_AI_MAX_SSE_EVENT        (1024 * 1024)
#define NGX_AI_MAX_N                128        /* answers per request */
#define NGX_AI_MAX_STOP             1024       /* stop sequences; the
                                                  provider's own limit
                                                  decides below it */


/* a growable byte buffer allocated from a pool */
typedef struct {
    u_char                     *data;
    size_t                      len;
    size_t                      cap;
    ngx_pool_t                 *pool;
} ngx_ai_buf_t;


typedef enum {
    NGX_AI_PROVIDER_OPENAI = 0,
    NGX_AI_PROVIDER_ANTHROPIC,
    NGX_AI_PROVIDER_GEMINI,
    NGX_AI_PROVIDER_BEDROCK
} ngx_ai_provider_type_e;



/* token usage of one call, already normalised to OpenAI's meaning:
 * prompt_tokens includes cached tokens, completion_tokens includes
 * reasoning ("thoughts") tokens */
typedef struct {
    uint64_t                    prompt_tokens;
    uint64_t                    completion_tokens;
    uint64_t                    cached_tokens;
    uint64_t                    cache_creation_tokens;
    uint64_t                    reasoning_tokens;
    uint64_t                    cost;      /* nano-USD, when priced */
    unsigned                    known:1;
    unsigned                    priced:1;  /* cost is the gateway's */
} ngx_ai_usage_t;


/* a model's price as the gateway charges it: nano-USD per 1M tokens */
typedef struct {
    uint64_t                    input;
    uint64_t                    output;
    unsigned                    known:1;
} ngx_ai_price_t;


/* an error for the client, rendered as an OpenAI error object */
typedef struct {
    ngx_uint_t                  status;
    ngx_str_t                   message;
    const char                 *type;     /* "invalid_request_error" ... */
    const char                 *param;    /* offending field, or NULL */
    const char                 *code;     /* machine code, or NULL */
} ngx_ai_error_t;


/* a validated OpenAI chat completions request */
typedef struct {
    cJSON                      *json;      /* whole body, freed with pool */
    ngx_str_t                   raw;       /* the client's bytes of json,
                                              empty once json is changed */
    ngx_str_t                   model;     /* "provider/model" as sent */
    ngx_str_t                   provider;  /* "provider" */
    ngx_str_t                   upstream_model;  /* "model" */
    cJSON                      *models;    /* "models": [...] or NULL */
    ngx_int_t                   max_tokens;      /* -1: not given */
    ngx_uint_t                  n;         /* answers asked for, 1-128 */
    size_t                      prompt_bytes;    /* text in messages */
    ngx_int_t                   default_max_tokens;  /* for providers that
                                                    require max_tokens */
    time_t                      created;   /* "created" of translated
                                              answers: set by the caller
                                              after parsing */
    unsigned                    stream:1;
    unsigned                    include_usage:1; /* client asked for it */
    unsigned                    has_tools:1;
    ngx_uint_t                  op;        /* NGX_AI_OP_EMBED or
                                              NGX_AI_OP_COUNT; 0: chat */
    unsigned                    logprobs:1;      /* "logprobs": true */
    unsigned                    header_tokens:1; /* header_input_tokens
                                                    was sent */
    uint64_t                    header_input_tokens;  /* a call's: the
                                              input tokens its answer's
                                              headers counted (Bedrock's
                                              X-Amzn-Bedrock-Input-Token-
                                              Count), set before the
                                              answer is translated */
} ngx_ai_chat_request_t;


/* what a translator produces for the upstream call */
typedef struct {
    ngx_str_t                   path;      /* appended to pass=, with args */
    ngx_str_t                   body;      /* JSON */
} ngx_ai_upstream_request_t;


/* a provider's whole (non-streamed) answer, translated */
typedef struct {
    ngx_str_t                   body;      /* chat.completion JSON */
    ngx_str_t                   content;   /* first choice's text */
    ngx_str_t                   finish_reason;
    ngx_ai_usage_t              usage;
} ngx_ai_response_t;


/* one server-sent event */
typedef struct {
    ngx_str_t                   event;     /* "event:" field, may be empty */
    ngx_str_t                   data;      /* "data:" lines joined by LF */
} ngx_ai_sse_event_t;


typedef ngx_int_t (*ngx_ai_sse_handler_pt)(void *data,
    ngx_ai_sse_event_t *ev);


/* incremental SSE parser: bytes in any split, events out */
typedef struct {
    ngx_ai_buf_t                line;      /* carry of a partial line */
    ngx_ai_buf_t                data;
    ngx_ai_buf_t                event;
    size_t                      max;       /* largest event accepted */
    unsigned                    cr:1;      /* last byte seen was CR */
    unsigned                    has_data:1;
} ngx_ai_sse_parser_t;


/* state of one streamed answer being translated to OpenAI chunks */
typedef struct ngx_ai_stream_s  ngx_ai_stream_t;

struct ngx_ai_stream_s {
    ngx_pool_t                 *pool;
    ngx_pool_t                 *scratch;   /* an event's tree, then reset */
    ngx_ai_chat_request_t      *req;
    ngx_ai_buf_t                out;       /* OpenAI SSE text to send */
    ngx_ai_usage_t              usage;
    ngx_ai_price_t              price;     /* for the usage chunk's cost */
    ngx_str_t                   id;        /* chatcmpl-... for every chunk */
    ngx_str_t                   model;     /* model named in chunks */
    time_t                      created;
    ngx_str_t                   finish_reason;
    ngx_str_t                   error;     /* why the stream failed */
    void                       *data;      /* translator's own state */
    ngx_uint_t                  events;    /* events received */
    size_t                      text_bytes;    /* of content and tool
                                                  arguments translated */
    ngx_uint_t                  text_deltas;   /* events that had some */
    unsigned                    done:1;    /* provider ended it whole */
    unsigned                    failed:1;  /* provider sent an error */
    unsigned                    role_sent:1;
    unsigned                    finish_sent:1;
};


/* one provider wire format */
typedef struct {
    ngx_str_t                   name;
    ngx_ai_provider_type_e      type;

    /* request: OpenAI chat request -> native path and body */
    ngx_int_t                 (*request)(ngx_pool_t *pool,
                                  ngx_ai_chat_request_t *req,
                                  ngx_ai_upstream_request_t *out);

    /* whole answer -> chat.completion; NGX_DECLINED: not a valid answer
     * (err->message says why) */
    ngx_int_t                 (*response)(ngx_pool_t *pool,
                                  ngx_ai_chat_request_t *req, u_char *body,
                                  size_t len, ngx_ai_response_t *out,
                                  ngx_ai_error_t *err);

    /* provider error body -> message for an OpenAI error object */
    void                      (*error)(ngx_pool_t *pool, ngx_uint_t status,
                                  u_char *body, size_t len,
                                  ngx_ai_error_t *err);

    /* streaming: one native event in, OpenAI chunks appended to st->out */
    ngx_int_t                 (*stream_event)(ngx_ai_stream_t *st,
                                  ngx_ai_sse_event_t *ev);

    /* a model name this wire format can carry (the part after
     * "provider/"); NULL: any name ngx_ai_model_name_valid() accepts */
    ngx_uint_t                (*model_valid)(const u_char *name,
                                  size_t len);

    /* the other endpoints (ngx_ai_translator_serves()); NULL: this wire
     * format has none.  A request: NGX_DECLINED when this provider cannot
     * take it (err, a 400, says why); an answer: OpenAI's embedding list
     * or Anthropic's {"input_tokens":N} in out->body */
    ngx_int_t                 (*embed_request)(ngx_pool_t *pool,
                                  ngx_ai_chat_request_t *req,
                                  ngx_ai_upstream_request_t *out,
                                  ngx_ai_error_t *err);
    ngx_int_t                 (*embed_response)(ngx_pool_t *pool,
                                  ngx_ai_chat_request_t *req, u_char *body,
                                  size_t len, ngx_ai_response_t *out,
                                  ngx_ai_error_t *err);
    ngx_int_t                 (*count_request)(ngx_pool_t *pool,
                                  ngx_ai_chat_request_t *req,
                                  ngx_ai_upstream_request_t *out,
                                  ngx_ai_error_t *err);
    ngx_int_t                 (*count_response)(ngx_pool_t *pool,
                                  ngx_ai_chat_request_t *req, u_char *body,
                                  size_t len, ngx_ai_response_t *out,
                                  ngx_ai_error_t *err);
    /* what the wire format cannot carry: NGX_DECLINED, err is the 400;
     * NULL: it carries everything the validation let through */
    ngx_int_t                 (*check)(ngx_ai_chat_request_t *req,
                                  ngx_ai_error_t *err);

    /* 1: it answers "n" > 1 itself; 0: n calls are made, one answer
     * each (the fallback strategy's choices) */
    ngx_uint_t                  choices;
} ngx_ai_translator_t;


extern ngx_ai_translator_t  ngx_ai_openai_translator;
extern ngx_ai_translator_t  ngx_ai_anthropic_translator;
extern ngx_ai_translator_t  ngx_ai_gemini_translator;
extern ngx_ai_translator_t  ngx_ai_bedrock_translator;


/*
 * cJSON blocks allocated by the gateway carry a header saying where they
 * came from (see ngx_ai_json_init_allocator()); pool blocks are freed
 * with their pool only.
 */
#define NGX_AI_JSON_HEADER          16
#define NGX_AI_JSON_FROM_POOL       0x6c6f6f702d69612bULL
#define NGX_AI_JSON_FROM_HEAP       0x706165682d69612bULL

/* ngx_ai_gateway_json_decode.c */
#define NGX_AI_JSON_DECODED         0
#define NGX_AI_JSON_MALFORMED       1
#define NGX_AI_JSON_TOO_DEEP        2
#define NGX_AI_JSON_NO_MEMORY       3

#define NGX_AI_JSON_MAX_DEPTH       1000       /* cJSON's own limit */

/* what a decoded text's strings held that the caller may refuse; the
 * offsets (from the text's first byte) are of the first such byte */
typedef struct {
    size_t                      control_at;
    size_t                      utf8_at;
    unsigned                    nul:1;      /* U+0000, raw or \u0000 */
    unsigned                    control:1;  /* a raw byte below 0x20 */
    unsigned                    utf8:1;     /* invalid UTF-8 */
} ngx_ai_json_flags_t;

cJSON *ngx_ai_json_decode(ngx_pool_t *pool, const u_char *p, size_t len,
    ngx_uint_t max_depth, ngx_ai_json_flags_t *flags, ngx_uint_t *status);
u_char *ngx_ai_json_string_close(u_char *p, u_char *last);
ngx_int_t ngx_ai_json_hex4(const u_char *p, ngx_uint_t *v);
size_t ngx_ai_utf8_char(const u_char *p, const u_char *last);

/* ngx_ai_gateway_buf.c: buffers, the JSON writer, bytes */

#define NGX_AI_JW_MAX_DEPTH         32

/* a JSON text written into buf value by value (ngx_ai_jw_init()) */
typedef struct {
    ngx_ai_buf_t               *buf;
    ngx_int_t                   rc;        /* NGX_ERROR once one failed */
    ngx_uint_t                  depth;     /* objects and arrays open */
    uint32_t                    array;     /* bit d: level d is an array */
    uint32_t                    more;      /* bit d: level d has a member */
    unsigned                    key:1;     /* a key written, no value yet */
} ngx_ai_jw_t;

ngx_int_t ngx_ai_buf_init(ngx_ai_buf_t *b, ngx_pool_t *pool, size_t cap);
ngx_int_t ngx_ai_buf_reserve(ngx_ai_buf_t *b, size_t n);
ngx_int_t ngx_ai_buf_append(ngx_ai_buf_t *b, const void *p, size_t n);
ngx_int_t ngx_ai_buf_append_str(ngx_ai_buf_t *b, const char *s);
char *ngx_ai_buf_cstr(ngx_ai_buf_t *b);
ngx_int_t ngx_ai_buf_append_uint(ngx_ai_buf_t *b, uint64_t n);
ngx_int_t ngx_ai_buf_append_json_string(ngx_ai_buf_t *b, const u_char *p,
    size_t n);
u_char *ngx_ai_percent_decode(u_char *dst, u_char *p, size_t len,
    ngx_uint_t printable);
ngx_int_t ngx_ai_strncaseeq(const u_char *s, const char *lit, size_t n);

void ngx_ai_jw_init(ngx_ai_jw_t *w, ngx_ai_buf_t *b);
ngx_int_t ngx_ai_jw_done(ngx_ai_jw_t *w);
void ngx_ai_jw_object(ngx_ai_jw_t *w);
void ngx_ai_jw_array(ngx_ai_jw_t *w);
void ngx_ai_jw_end(ngx_ai_jw_t *w);
void ngx_ai_jw_key(ngx_ai_jw_t *w, const char *key);
void ngx_ai_jw_string(ngx_ai_jw_t *w, const u_char *p, size_t len);
void ngx_ai_jw_uint(ngx_ai_jw_t *w, uint64_t n);
void ngx_ai_jw_usd(ngx_ai_jw_t *w, uint64_t nano);
void ngx_ai_jw_raw(ngx_ai_jw_t *w, const u_char *p, size_t len);
void ngx_ai_jw_key_string(ngx_ai_jw_t *w, const char *key, const u_char *p,
    size_t len);
void ngx_ai_jw_key_uint(ngx_ai_jw_t *w, const char *key, uint64_t n);
void ngx_ai_jw_key_usd(ngx_ai_jw_t *w, const char *key, uint64_t nano);

#define ngx_ai_jw_null(w)        ngx_ai_jw_raw(w, (u_char *) "null", 4)
#define ngx_ai_jw_bool(w, v)                                                 \
    ngx_ai_jw_raw(w, (u_char *) ((v) ? "true" : "false"), (v) ? 4 : 5)
#define ngx_ai_jw_str(w, s)                                                  \
    ngx_ai_jw_string(w, (u_char *) (s), ngx_strlen(s))

/* ngx_ai_gateway_json.c: cJSON in pools, parsing, printing */
extern ngx_uint_t  ngx_ai_json_pool_blocks;

ngx_pool_t *ngx_ai_json_arena_set(ngx_pool_t *pool);
void ngx_ai_json_init_allocator(void);
cJSON *ngx_ai_json_parse(ngx_pool_t *pool, const u_char *p, size_t len);
cJSON *ngx_ai_json_parse_whole(const u_char *p, size_t len);
cJSON *ngx_ai_json_track(ngx_pool_t *pool, cJSON *json);
void ngx_ai_json_release(cJSON *json);
cJSON *ngx_ai_json_scratch(ngx_pool_t **scratch, ngx_pool_t *owner,
    ngx_str_t *data);
void ngx_ai_json_scratch_done(ngx_pool_t *scratch, cJSON *root);
ngx_int_t ngx_ai_json_print(ngx_pool_t *pool, cJSON *json, ngx_str_t *out);
ngx_int_t ngx_ai_json_get_uint(cJSON *obj, const char *name, uint64_t *v);
ngx_int_t ngx_ai_json_add(cJSON *obj, const char *key, cJSON *item);
ngx_int_t ngx_ai_json_turn(cJSON *list, const char *key, const char *role,
    const char **cur_role, cJSON **items);
ngx_int_t ngx_ai_json_add_ref(cJSON *obj, const char *key, const char *s);
cJSON *ngx_ai_json_text_object(const char *text);
ngx_int_t ngx_ai_json_tool_schema(cJSON *obj, const char *key, cJSON *fn);
cJSON *ngx_ai_json_parse_args(const char *s);
const char *ngx_ai_json_unique(cJSON *obj, const char **names);

/* ngx_ai_gateway_wire.c: OpenAI's wire format for the translators */
ngx_int_t ngx_ai_check_one_answer(ngx_ai_chat_request_t *req,
    ngx_ai_error_t *err);
void ngx_ai_error_set(ngx_ai_error_t *err, ngx_uint_t status,
    const char *type, const char *param, const char *code, const char *msg);
ngx_int_t ngx_ai_error_render(ngx_pool_t *pool, ngx_ai_error_t *err,
    ngx_str_t *out);
const char *ngx_ai_error_type_by_status(ngx_uint_t status);
ngx_int_t ngx_ai_usage_from_openai(cJSON *usage, ngx_ai_usage_t *u);
cJSON *ngx_ai_usage_to_openai(ngx_ai_usage_t *u);
ngx_int_t ngx_ai_buf_append_usage(ngx_ai_buf_t *b, ngx_ai_usage_t *u);
uint64_t ngx_ai_tokens_cost(uint64_t tokens, uint64_t price);
void ngx_ai_usage_price(ngx_ai_usage_t *u, ngx_ai_price_t *price);
ngx_int_t ngx_ai_buf_append_usd(ngx_ai_buf_t *b, uint64_t nano);
ngx_int_t ngx_ai_usage_cost_set(ngx_pool_t *pool, ngx_str_t *json,
    ngx_ai_usage_t *u);
ngx_int_t ngx_ai_chat_id(ngx_pool_t *pool, cJSON *id, time_t created,
    ngx_str_t *out);
ngx_int_t ngx_ai_chat_completion_render(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_str_t *id, ngx_str_t *tool_calls,
    ngx_ai_response_t *out);
ngx_int_t ngx_ai_content_text(cJSON *content, ngx_ai_buf_t *b,
    const char *sep);
ngx_int_t ngx_ai_data_url_parse(const u_char *url, size_t len,
    ngx_str_t *type, ngx_str_t *data);
ngx_int_t ngx_ai_buf_append_tool_call(ngx_ai_buf_t *b, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *args);
ngx_int_t ngx_ai_sse_data_event(ngx_ai_buf_t *out, ngx_str_t *data);
ngx_int_t ngx_ai_chat_completion_merge(ngx_pool_t *pool, ngx_str_t *answers,
    ngx_uint_t n, ngx_ai_usage_t *usage, ngx_str_t *out);

/* ngx_ai_gateway_judge.c: fusion's prompts, verdicts and votes */
#define NGX_AI_FUSION_BEST_OF       0
#define NGX_AI_FUSION_MERGE         1
#define NGX_AI_FUSION_DEBATE        2
#define NGX_AI_FUSION_VOTE          3

ngx_int_t ngx_ai_judge_request(ngx_pool_t *pool, ngx_ai_chat_request_t *orig,
    ngx_uint_t mode, ngx_str_t *answers, ngx_uint_t n,
    ngx_ai_chat_request_t *out);
ngx_int_t ngx_ai_debate_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *orig, ngx_str_t *own, ngx_str_t *others,
    ngx_uint_t n, ngx_ai_chat_request_t *out);
ngx_uint_t ngx_ai_judge_verdict(const u_char *text, size_t len, ngx_uint_t n);
ngx_int_t ngx_ai_vote_key(ngx_pool_t *pool, ngx_str_t *answer,
    ngx_str_t *key);

/*
 * A client API served on top of chat completions: its request becomes an
 * OpenAI chat request, and what is sent back, the chat answer, an error
 * or the OpenAI chunks of a stream, is turned into its own form.
 */
typedef struct {
    ngx_str_t                   name;

    ngx_int_t                 (*request)(ngx_pool_t *pool, u_char *body,
                                  size_t len, ngx_str_t *out,
                                  ngx_ai_error_t *err);

    /* a chat.completion; usage: the exact usage when the gateway knows it
     * better than the answer says, or NULL */
    ngx_int_t                 (*answer)(ngx_pool_t *pool, u_char *body,
                                  size_t len, ngx_ai_usage_t *usage,
                                  ngx_str_t *out);

    ngx_int_t                 (*error)(ngx_pool_t *pool, ngx_ai_error_t *err,
                                  ngx_str_t *out);

    /* streams: the converter's state (input: the gateway's estimate of
     * the input tokens; exact: wait for the provider's own count where
     * the dialect tells it first), the exact usage when known, and
     * OpenAI chunk text in, the dialect's events out */
    void                     *(*stream_create)(ngx_pool_t *pool,
                                  uint64_t input, ngx_uint_t exact);
    void                      (*stream_usage)(void *st, ngx_ai_usage_t *u);
    ngx_int_t                 (*stream_feed)(void *st, u_char *p,
                                  size_t len, ngx_str_t *out);
} ngx_ai_dialect_t;


/* ngx_ai_gateway_messages.c: the Anthropic Messages API inbound */
extern ngx_ai_dialect_t  ngx_ai_messages_dialect;
extern ngx_ai_dialect_t  ngx_ai_messages_count_dialect;

/* ngx_ai_gateway_responses.c: the OpenAI Responses API inbound */
extern ngx_ai_dialect_t  ngx_ai_responses_dialect;

ngx_int_t ngx_ai_responses_request(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_str_t *out, ngx_ai_error_t *err);

/* ngx_ai_gateway_responses_out.c: its answers and streams */
ngx_int_t ngx_ai_responses_response(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_ai_usage_t *usage, ngx_str_t *out);
void *ngx_ai_responses_stream_create(ngx_pool_t *pool, uint64_t input,
    ngx_uint_t exact);
void ngx_ai_responses_stream_usage(void *st, ngx_ai_usage_t *u);
ngx_int_t ngx_ai_responses_stream_feed(void *st, u_char *p, size_t len,
    ngx_str_t *out);


/* ngx_ai_gateway_route.c: which API a path asks for */

#define NGX_AI_OP_UNKNOWN           0
#define NGX_AI_OP_CHAT              1      /* chat, Messages */
#define NGX_AI_OP_MODELS            2      /* the model list */
#define NGX_AI_OP_EMBED             3      /* embeddings */
#define NGX_AI_OP_COUNT             4      /* messages/count_tokens */
#define NGX_AI_OP_MODEL             5      /* models/{id} */

#define NGX_AI_ROUTE_POST           1
#define NGX_AI_ROUTE_GET            2      /* GET and HEAD */

typedef struct {
    ngx_str_t                   suffix;    /* the path ends with it */
    ngx_uint_t                  op;        /* NGX_AI_OP_* */
    ngx_uint_t                  methods;   /* NGX_AI_ROUTE_*, 0: none */
    const char                 *allow;     /* the 405's Allow header */
    const char                 *not_allowed;   /* and its message (of
                                                  the 404 for an unknown
                                                  op) */
    ngx_ai_dialect_t           *dialect;   /* NULL: OpenAI's own */
} ngx_ai_route_t;

ngx_ai_route_t *ngx_ai_route_find(u_char *p, size_t len);
u_char *ngx_ai_route_segment(u_char *p, size_t len, ngx_str_t *seg);
ngx_int_t ngx_ai_route_model_id(u_char *p, size_t len, ngx_str_t *id);


/* the most a Messages stream holds back for its input tokens */
#define NGX_AI_MESSAGES_MAX_HOLD    (256 * 1024)

/* an OpenAI chunk stream being turned into Anthropic events */
typedef struct {
    ngx_pool_t                 *pool;
    ngx_pool_t                 *scratch;   /* an event's tree, then reset */
    ngx_ai_sse_parser_t         sse;
    ngx_ai_buf_t                out;       /* Anthropic SSE text to send */
    ngx_ai_usage_t              usage;
    ngx_str_t                   id;        /* of the first chunk */
    ngx_str_t                   model;
    ngx_ai_buf_t                held;      /* events held for the usage */
    size_t                      hold;      /* ... from here in out */
    uint64_t                    estimate;  /* input tokens, until known */
    const char                 *stop;      /* Anthropic stop_reason */
    ngx_uint_t                  blocks;    /* content blocks closed */
    ngx_int_t                   tool;      /* OpenAI index of the last
                                              tool call started, -1 */
    unsigned                    started:1; /* the first chunk seen */
    unsigned                    holding:1; /* message_start waits for the
                                              input tokens */
    unsigned                    exact:1;   /* ... it may (else it carries
                                              the estimate) */
    unsigned                    open:1;    /* a content block is open */
    unsigned                    text:1;    /* ... and it is text */
    unsigned                    usage_fixed:1;
    unsigned                    done:1;    /* message_stop sent */
    unsigned                    failed:1;  /* an error event sent */
} ngx_ai_messages_stream_t;

ngx_int_t ngx_ai_messages_request(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_str_t *out, ngx_ai_error_t *err);
ngx_int_t ngx_ai_messages_count_request(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_str_t *out, ngx_ai_error_t *err);
ngx_int_t ngx_ai_messages_response(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_ai_usage_t *usage, ngx_str_t *out);
ngx_int_t ngx_ai_messages_error(ngx_pool_t *pool, ngx_ai_error_t *err,
    ngx_str_t *out);
ngx_int_t ngx_ai_messages_stream_init(ngx_ai_messages_stream_t *ms,
    ngx_pool_t *pool);
void ngx_ai_messages_stream_usage(ngx_ai_messages_stream_t *ms,
    ngx_ai_usage_t *u);
ngx_int_t ngx_ai_messages_stream_feed(ngx_ai_messages_stream_t *ms,
    u_char *p, size_t len);

/* ngx_ai_gateway_messages_stream.c: the stream converter behind the
 * dialect's pointers, and what whole answers share with it */
void *ngx_ai_messages_stream_create(ngx_pool_t *pool, uint64_t input,
    ngx_uint_t exact);
void ngx_ai_messages_stream_set_usage(void *st, ngx_ai_usage_t *u);
ngx_int_t ngx_ai_messages_stream_put(void *st, u_char *p, size_t len,
    ngx_str_t *out);
ngx_int_t ngx_ai_messages_id(ngx_ai_buf_t *b, cJSON *id);
ngx_int_t ngx_ai_messages_id_text(ngx_ai_buf_t *b, const char *s);
const char *ngx_ai_messages_stop(const char *finish);
ngx_int_t ngx_ai_messages_usage(ngx_ai_buf_t *b, ngx_ai_usage_t *u,
    ngx_uint_t output);

/* ngx_ai_gateway_request.c */
ngx_int_t ngx_ai_chat_request_parse(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_ai_chat_request_t *req, ngx_ai_error_t *err);
ngx_int_t ngx_ai_request_bytes(ngx_pool_t *pool, u_char *body,
    ngx_ai_json_flags_t *flags, ngx_ai_error_t *err);
ngx_int_t ngx_ai_model_name_valid(const u_char *p, size_t len);

/* ngx_ai_gateway_embed.c: embeddings and token counts, for the
 * translators */
#define NGX_AI_MAX_EMBED_INPUTS     2048       /* OpenAI's own bound */
#define NGX_AI_MAX_EMBED_TOKENS     65536      /* of one token array */
#define NGX_AI_MAX_EMBED_DIMENSIONS 65536

ngx_int_t ngx_ai_embed_request_parse(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_ai_chat_request_t *req, ngx_ai_error_t *err);
ngx_uint_t ngx_ai_translator_serves(ngx_ai_translator_t *t, ngx_uint_t op);
ngx_uint_t ngx_ai_embed_inputs(ngx_ai_chat_request_t *req);
ngx_uint_t ngx_ai_embed_base64(ngx_ai_chat_request_t *req);
ngx_int_t ngx_ai_embed_item(ngx_ai_jw_t *w, ngx_pool_t *pool,
    ngx_uint_t index, cJSON *values, ngx_uint_t base64);
ngx_int_t ngx_ai_embed_list_open(ngx_ai_jw_t *w, ngx_ai_buf_t *b,
    ngx_pool_t *pool, size_t size);
ngx_int_t ngx_ai_embed_list_close(ngx_ai_jw_t *w, ngx_ai_chat_request_t *req,
    uint64_t prompt_tokens, ngx_ai_response_t *out);
ngx_int_t ngx_ai_count_render(ngx_pool_t *pool, uint64_t tokens,
    ngx_ai_response_t *out);
ngx_int_t ngx_ai_embed_invalid_answer(ngx_ai_error_t *err, const char *msg);
cJSON *ngx_ai_embed_texts(ngx_ai_chat_request_t *req, ngx_ai_error_t *err);
cJSON *ngx_ai_embed_next(cJSON *input, cJSON *prev);
ngx_int_t ngx_ai_embed_dims(cJSON *obj, const char *key, cJSON *dims);
ngx_int_t ngx_ai_embed_start(ngx_ai_jw_t *w, ngx_ai_buf_t *b,
    ngx_pool_t *pool, ngx_ai_chat_request_t *req, cJSON *list, size_t len,
    ngx_ai_error_t *err);
ngx_int_t ngx_ai_embed_vector(ngx_ai_jw_t *w, ngx_pool_t *pool,
    ngx_uint_t index, cJSON *values, ngx_uint_t base64, ngx_uint_t strings,
    ngx_ai_error_t *err);
ngx_int_t ngx_ai_embed_finish(ngx_ai_jw_t *w, ngx_ai_chat_request_t *req,
    ngx_uint_t known, uint64_t tokens, ngx_ai_response_t *out);

/* ngx_ai_gateway_cloud.c: Azure OpenAI's paths and deployments */
ngx_int_t ngx_ai_azure_path(ngx_pool_t *pool, ngx_str_t *path,
    ngx_str_t *deployment, ngx_str_t *api_version, ngx_str_t *out);
ngx_uint_t ngx_ai_azure_v1(ngx_str_t *api_version);
void ngx_ai_azure_deployment(ngx_keyval_t *map, ngx_uint_t n,
    ngx_str_t *model, ngx_str_t *out);

/* ngx_ai_gateway_cloud.c: Google Vertex AI's paths, bodies and tokens */
#define NGX_AI_VERTEX_ANTHROPIC_VERSION  "vertex-2023-10-16"
#define NGX_AI_VERTEX_TOKEN_URI     "https://oauth2.googleapis.com/token"
#define NGX_AI_VERTEX_SCOPE                                                  \
    "https://www.googleapis.com/auth/cloud-platform"
#define NGX_AI_JWT_LIFETIME         3600
#define NGX_AI_MAX_ACCESS_TOKEN     4096

typedef struct {
    ngx_str_t                   client_email;
    ngx_str_t                   private_key;     /* PEM */
    ngx_str_t                   private_key_id;  /* may be empty */
    ngx_str_t                   token_uri;
} ngx_ai_service_account_t;

ngx_int_t ngx_ai_vertex_path(ngx_pool_t *pool, ngx_str_t *path,
    ngx_str_t *project, ngx_str_t *region, ngx_uint_t anthropic,
    ngx_str_t *model, ngx_uint_t stream, ngx_str_t *out);
ngx_uint_t ngx_ai_vertex_name(ngx_str_t *s, ngx_uint_t model);
ngx_int_t ngx_ai_vertex_anthropic_body(ngx_pool_t *pool, ngx_str_t *body,
    ngx_str_t *out);
ngx_int_t ngx_ai_service_account_parse(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_ai_service_account_t *sa, const char **why);
ngx_int_t ngx_ai_base64url(ngx_pool_t *pool, const u_char *src, size_t len,
    ngx_str_t *out);
ngx_int_t ngx_ai_jwt_input(ngx_pool_t *pool, ngx_ai_service_account_t *sa,
    ngx_str_t *scope, time_t now, ngx_str_t *out);
ngx_int_t ngx_ai_jwt_grant(ngx_pool_t *pool, ngx_str_t *input, u_char *sig,
    size_t siglen, ngx_str_t *out);
ngx_int_t ngx_ai_oauth_token_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *token, time_t *expires_in, const char **why);
ngx_int_t ngx_ai_vertex_embed_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out,
    ngx_ai_error_t *err);
ngx_int_t ngx_ai_vertex_embed_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);

/* ngx_ai_gateway_scrub.c: secrets out of a provider's text */
ngx_int_t ngx_ai_scrub(ngx_pool_t *pool, ngx_str_t *secrets, ngx_uint_t n,
    ngx_str_t *text, ngx_uint_t *hits);

/* ngx_ai_gateway_sse.c: the SSE parser */
ngx_int_t ngx_ai_sse_init(ngx_ai_sse_parser_t *p, ngx_pool_t *pool,
    size_t max);
ngx_int_t ngx_ai_sse_feed(ngx_ai_sse_parser_t *p, u_char *pos, u_char *last,
    ngx_ai_sse_handler_pt handler, void *data);

/* ngx_ai_gateway_eventstream.c: AWS event stream framing */
typedef struct {
    ngx_ai_buf_t                carry;     /* an unfinished message */
    size_t                      max;       /* largest message accepted */
    ngx_uint_t                  messages;
    const char                 *error;     /* why the bytes were refused */
} ngx_ai_es_parser_t;

typedef struct {
    ngx_str_t                   message_type;  /* event, exception, error */
    ngx_str_t                   event_type;    /* or the exception's */
    ngx_str_t                   error_code;
    ngx_str_t                   error_message;
    ngx_str_t                   payload;
} ngx_ai_es_message_t;

ngx_int_t ngx_ai_es_init(ngx_ai_es_parser_t *p, ngx_pool_t *pool,
    size_t max);
ngx_int_t ngx_ai_es_feed(ngx_ai_es_parser_t *p, u_char *pos, u_char *last,
    ngx_ai_sse_handler_pt handler, void *data);
void ngx_ai_es_event(ngx_ai_es_message_t *msg, ngx_ai_sse_event_t *ev);

/* ngx_ai_gateway_sigv4.c: AWS Signature Version 4 */
#define NGX_AI_SIGV4_MAX_SECRET     256
#define NGX_AI_SIGV4_MAX_HEADERS    8

typedef struct {
    ngx_str_t                   name;      /* lower case */
    ngx_str_t                   value;
} ngx_ai_sigv4_header_t;

typedef struct {
    ngx_str_t                   method;
    ngx_str_t                   path;      /* as sent (escaped once) */
    ngx_str_t                   query;     /* canonical query string */
    ngx_ai_sigv4_header_t      *headers;   /* the signed ones; sorted by
                                              ngx_ai_sigv4_sign() */
    ngx_uint_t                  nheaders;
    ngx_str_t                   body_hash; /* hex SHA-256 of the body */
    ngx_str_t                   date;      /* 20150830T123600Z */
    ngx_str_t                   region;
    ngx_str_t                   service;
    ngx_str_t                   akid;
    ngx_str_t                   secret;
    ngx_str_t                  *canonical; /* if set: the canonical
                                              request, for tests */
    unsigned                    s3:1;      /* path not escaped again */
} ngx_ai_sigv4_t;

/* the signing key of one day, region, service and secret */
typedef struct {
    u_char                      day[8];
    u_char                      id[32];    /* SHA-256 of secret, region,
                                              service */
    u_char                      key[32];
    ngx_uint_t                  derived;
    ngx_uint_t                  hits;
    unsigned                    valid:1;
} ngx_ai_sigv4_key_t;

void ngx_ai_sha256_hex(const u_char *p, size_t len, u_char *hex);
ngx_int_t ngx_ai_uri_escape(ngx_ai_buf_t *b, const u_char *p, size_t len,
    ngx_uint_t slash);
ngx_int_t ngx_ai_sigv4_sign(ngx_pool_t *pool, ngx_ai_sigv4_t *in,
    ngx_ai_sigv4_key_t *cache, ngx_str_t *authorization);
void ngx_ai_sigv4_date(time_t t, u_char *out);

/* ngx_ai_gateway_stream.c: the OpenAI chunk stream, for the translators */
ngx_int_t ngx_ai_stream_init(ngx_ai_stream_t *st, ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, time_t now);
ngx_int_t ngx_ai_stream_start(ngx_ai_stream_t *st, const u_char *id,
    size_t len);
ngx_int_t ngx_ai_stream_chunk_open(ngx_ai_stream_t *st);
ngx_int_t ngx_ai_stream_chunk_close(ngx_ai_stream_t *st, const char *finish);
ngx_int_t ngx_ai_stream_content(ngx_ai_stream_t *st, const u_char *text,
    size_t len);
ngx_int_t ngx_ai_stream_finish(ngx_ai_stream_t *st, const char *finish);
ngx_int_t ngx_ai_stream_tool_call(ngx_ai_stream_t *st, ngx_uint_t index,
    ngx_str_t *id, ngx_str_t *name, ngx_str_t *args);
ngx_int_t ngx_ai_stream_fail(ngx_ai_stream_t *st, const char *msg,
    const char *fallback);


#endif /* _NGX_AI_GATEWAY_PURE_H_INCLUDED_ */
