
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The Anthropic Messages API's streams: the gateway's OpenAI chunk stream
 * turned into Anthropic's events (the Messages dialect's stream
 * converter), and the pieces its whole answers share with it: the
 * message id, the stop reason, the usage object.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define ngx_ai_get(obj, name)  cJSON_GetObjectItemCaseSensitive(obj, name)

#define ngx_ai_is(item, s)                                                    \
    (cJSON_IsString(item) && ngx_strcmp((item)->valuestring, s) == 0)


static ngx_int_t ngx_ai_messages_sse_event(void *data,
    ngx_ai_sse_event_t *ev);
static ngx_int_t ngx_ai_messages_stream_chunk(ngx_ai_messages_stream_t *ms,
    cJSON *root);
static ngx_int_t ngx_ai_messages_stream_start(ngx_ai_messages_stream_t *ms,
    cJSON *root);
static ngx_int_t ngx_ai_messages_stream_text(ngx_ai_messages_stream_t *ms,
    const char *text);
static ngx_int_t ngx_ai_messages_stream_tool(ngx_ai_messages_stream_t *ms,
    cJSON *call);
static ngx_int_t ngx_ai_messages_stream_head(ngx_ai_messages_stream_t *ms,
    ngx_ai_buf_t *b);
static ngx_int_t ngx_ai_messages_stream_release(ngx_ai_messages_stream_t *ms);
static void ngx_ai_messages_stream_cost(ngx_ai_messages_stream_t *ms,
    cJSON *usage);
static ngx_int_t ngx_ai_messages_copy(ngx_pool_t *pool, cJSON *item,
    ngx_str_t *out);
static ngx_int_t ngx_ai_messages_stream_close(ngx_ai_messages_stream_t *ms);
static ngx_int_t ngx_ai_messages_stream_end(ngx_ai_messages_stream_t *ms);
static ngx_int_t ngx_ai_messages_stream_error(ngx_ai_messages_stream_t *ms,
    cJSON *error);
static ngx_int_t ngx_ai_messages_event(ngx_ai_messages_stream_t *ms,
    const char *type);


/* "msg_..." from "chatcmpl-...": the provider's id when there was one */

ngx_int_t
ngx_ai_messages_id(ngx_ai_buf_t *b, cJSON *id)
{
    return ngx_ai_messages_id_text(b, cJSON_IsString(id) ? id->valuestring
                                                         : "");
}


ngx_int_t
ngx_ai_messages_id_text(ngx_ai_buf_t *b, const char *s)
{
    if (ngx_strncmp(s, "chatcmpl-", 9) == 0) {
        s += 9;
    }

    if (ngx_ai_buf_append(b, "\"", 1) != NGX_OK
        || (ngx_strncmp(s, "msg_", 4) != 0
            && ngx_ai_buf_append_str(b, "msg_") != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (*s == '\0') {
        s = "gateway";
    }

    /* JSON-escaped without its quotes: ids are printable */

    for ( /* void */ ; *s; s++) {
        if (*s == '"' || *s == '\\' || (u_char) *s < 0x20) {
            continue;
        }

        if (ngx_ai_buf_append(b, s, 1) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_ai_buf_append(b, "\"", 1);
}


const char *
ngx_ai_messages_stop(const char *finish)
{
    if (finish == NULL) {
        return "end_turn";
    }

    if (ngx_strcmp(finish, "length") == 0) {
        return "max_tokens";
    }

    if (ngx_strcmp(finish, "tool_calls") == 0
        || ngx_strcmp(finish, "function_call") == 0)
    {
        return "tool_use";
    }

    if (ngx_strcmp(finish, "content_filter") == 0) {
        return "refusal";
    }

    return "end_turn";
}


/*
 * {"input_tokens":...,"cache_creation_input_tokens":...,
 *  "cache_read_input_tokens":...,"output_tokens":...}: Anthropic's
 * input_tokens leaves out the cached tokens that OpenAI's prompt_tokens
 * counts.  Without output (message_start), the output tokens are 0 and
 * there is no cost: clients add message_start's output tokens to
 * message_delta's (LangChain) or replace them (Anthropic's SDK).
 */

ngx_int_t
ngx_ai_messages_usage(ngx_ai_buf_t *b, ngx_ai_usage_t *u, ngx_uint_t output)
{
    uint64_t  input, cached;

    cached = u->cached_tokens + u->cache_creation_tokens;
    input = u->prompt_tokens > cached ? u->prompt_tokens - cached : 0;

    if (ngx_ai_buf_append_str(b, "{\"input_tokens\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, input) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"cache_creation_input_tokens\":")
           != NGX_OK
        || ngx_ai_buf_append_uint(b, u->cache_creation_tokens) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"cache_read_input_tokens\":")
           != NGX_OK
        || ngx_ai_buf_append_uint(b, u->cached_tokens) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"output_tokens\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, output ? u->completion_tokens : 0)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the gateway's cost, as OpenRouter's Messages API tells it */

    if (output && u->priced
        && (ngx_ai_buf_append_str(b, ",\"cost\":") != NGX_OK
            || ngx_ai_buf_append_usd(b, u->cost) != NGX_OK))
    {
        return NGX_ERROR;
    }

    return ngx_ai_buf_append(b, "}", 1);
}


/*
 * streams: the gateway's chat.completion.chunk events (whole or split
 * anywhere) -> Anthropic's events: message_start, content_block_start /
 * _delta / _stop for text and tool_use blocks, message_delta with the
 * stop reason and the usage, message_stop; "data: [DONE]" ends a whole
 * answer, an OpenAI error event becomes "event: error".  Whatever is to
 * be sent is appended to ms->out.
 */

ngx_int_t
ngx_ai_messages_stream_init(ngx_ai_messages_stream_t *ms, ngx_pool_t *pool)
{
    ngx_memzero(ms, sizeof(ngx_ai_messages_stream_t));

    ms->pool = pool;
    ms->tool = -1;
    ms->exact = 1;

    if (ngx_ai_sse_init(&ms->sse, pool, 0) != NGX_OK
        || ngx_ai_buf_init(&ms->out, pool, 1024) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the usage as the gateway knows it: it replaces the chunks' usage */

void
ngx_ai_messages_stream_usage(ngx_ai_messages_stream_t *ms, ngx_ai_usage_t *u)
{
    ms->usage = *u;
    ms->usage_fixed = 1;
}


ngx_int_t
ngx_ai_messages_stream_feed(ngx_ai_messages_stream_t *ms, u_char *p,
    size_t len)
{
    size_t     i;
    ngx_int_t  rc;

    if (ms->done || ms->failed || len == 0) {
        return NGX_OK;
    }

    /*
     * SSE comments (the gateway's ": keep-alive" while fusion members
     * work) are not events; Anthropic streams say "ping" instead.  They
     * go out ahead of the events of the same feed.
     */

    for (i = 0; i < len; i++) {
        if (p[i] == ':'
            && (i ? p[i - 1] == '\n' || p[i - 1] == '\r'
                  : ms->sse.line.len == 0))
        {
            if (ngx_ai_messages_event(ms, "ping") != NGX_OK
                || ngx_ai_buf_append_str(&ms->out, "{\"type\":\"ping\"}\n\n")
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    /* events wait in ms->held while message_start does (pings do not) */

    ms->hold = ms->out.len;

    rc = ngx_ai_sse_feed(&ms->sse, p, p + len, ngx_ai_messages_sse_event, ms);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ms->holding) {
        if (ngx_ai_buf_append(&ms->held, ms->out.data + ms->hold,
                              ms->out.len - ms->hold)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        ms->out.len = ms->hold;

        /* a long answer does not wait whole: it goes on with the
         * estimate, the exact count comes in message_delta */

        if (ms->held.len > NGX_AI_MESSAGES_MAX_HOLD
            && ngx_ai_messages_stream_release(ms) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_messages_sse_event(void *data, ngx_ai_sse_event_t *ev)
{
    ngx_ai_messages_stream_t *ms = data;

    cJSON      *root, *error;
    ngx_int_t   rc;

    if (ms->done || ms->failed) {
        return NGX_OK;
    }

    if (ev->data.len == 6 && ngx_strncmp(ev->data.data, "[DONE]", 6) == 0) {
        return ngx_ai_messages_stream_end(ms);
    }

    root = ngx_ai_json_scratch(&ms->scratch, ms->pool, &ev->data);

    if (!cJSON_IsObject(root)) {
        ngx_ai_json_scratch_done(ms->scratch, root);
        return NGX_OK;                  /* not the gateway's: not ours */
    }

    error = ngx_ai_get(root, "error");

    if (error && !cJSON_IsNull(error)) {
        rc = ngx_ai_messages_stream_error(ms, error);

    } else {
        rc = ngx_ai_messages_stream_chunk(ms, root);
    }

    ngx_ai_json_scratch_done(ms->scratch, root);

    return rc;
}


static ngx_int_t
ngx_ai_messages_stream_chunk(ngx_ai_messages_stream_t *ms, cJSON *root)
{
    cJSON  *choice, *delta, *usage, *text, *call, *finish;

    usage = ngx_ai_get(root, "usage");

    if (cJSON_IsObject(usage) && !ms->usage_fixed
        && ngx_ai_usage_from_openai(usage, &ms->usage) == NGX_OK)
    {
        ngx_ai_messages_stream_cost(ms, usage);
    }

    if (ngx_ai_messages_stream_start(ms, root) != NGX_OK
        || (ms->holding && ms->usage.known
            && ngx_ai_messages_stream_release(ms) != NGX_OK))
    {
        return NGX_ERROR;
    }

    choice = cJSON_GetArrayItem(ngx_ai_get(root, "choices"), 0);
    delta = ngx_ai_get(choice, "delta");

    text = ngx_ai_get(delta, "content");

    if (!cJSON_IsString(text) || text->valuestring[0] == '\0') {
        text = ngx_ai_get(delta, "refusal");
    }

    if (cJSON_IsString(text) && text->valuestring[0] != '\0'
        && ngx_ai_messages_stream_text(ms, text->valuestring) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(call, ngx_ai_get(delta, "tool_calls")) {
        if (ngx_ai_messages_stream_tool(ms, call) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    finish = ngx_ai_get(choice, "finish_reason");

    if (cJSON_IsString(finish)) {
        ms->stop = ngx_ai_messages_stop(finish->valuestring);
    }

    return NGX_OK;
}


/*
 * The first chunk: message_start, with the input tokens.  A provider that
 * tells them first (Anthropic, Gemini) has them in the gateway's usage
 * already; an OpenAI-type provider tells them in its usage chunk at the
 * end, so message_start and the events after it wait for that chunk
 * (ngx_ai_messages_stream_release()): the clients read the input tokens
 * from message_start only.
 */

static ngx_int_t
ngx_ai_messages_stream_start(ngx_ai_messages_stream_t *ms, cJSON *root)
{
    if (ms->started) {
        return NGX_OK;
    }

    ms->started = 1;

    if (ngx_ai_messages_copy(ms->pool, ngx_ai_get(root, "id"), &ms->id)
        != NGX_OK
        || ngx_ai_messages_copy(ms->pool, ngx_ai_get(root, "model"),
                                &ms->model)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (root && !ms->usage.known && ms->exact) {
        ms->holding = 1;

        return ngx_ai_buf_init(&ms->held, ms->pool, 1024);
    }

    return ngx_ai_messages_stream_head(ms, &ms->out);
}


/* the usage is known: message_start, then what waited for it */

static ngx_int_t
ngx_ai_messages_stream_release(ngx_ai_messages_stream_t *ms)
{
    size_t        len;
    ngx_ai_buf_t  b;

    ms->holding = 0;

    len = ms->out.len - ms->hold;

    if (ngx_ai_buf_init(&b, ms->pool, ms->held.len + len + 512) != NGX_OK
        || ngx_ai_messages_stream_head(ms, &b) != NGX_OK
        || ngx_ai_buf_append(&b, ms->held.data, ms->held.len) != NGX_OK
        || ngx_ai_buf_append(&b, ms->out.data + ms->hold, len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ms->out.len = ms->hold;
    ms->held.len = 0;

    return ngx_ai_buf_append(&ms->out, b.data, b.len);
}


static ngx_int_t
ngx_ai_messages_stream_head(ngx_ai_messages_stream_t *ms, ngx_ai_buf_t *b)
{
    ngx_ai_usage_t   estimated, *u;

    /* not known yet: the gateway's estimate, as exact as it can be */

    u = &ms->usage;

    if (!u->known) {
        ngx_memzero(&estimated, sizeof(ngx_ai_usage_t));
        estimated.prompt_tokens = ms->estimate;
        u = &estimated;
    }

    if (ngx_ai_buf_append_str(b, "event: message_start\ndata: "
                                 "{\"type\":\"message_start\","
                                 "\"message\":{\"id\":")
        != NGX_OK
        || ngx_ai_messages_id_text(b, ms->id.len ? (char *) ms->id.data
                                                 : "")
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"type\":\"message\",\"role\":"
                                    "\"assistant\",\"model\":")
           != NGX_OK
        || ngx_ai_buf_append_json_string(b, ms->model.data, ms->model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"content\":[],\"stop_reason\":null,"
                                    "\"stop_sequence\":null,\"usage\":")
           != NGX_OK
        || ngx_ai_messages_usage(b, u, 0) != NGX_OK
        || ngx_ai_buf_append_str(b, "}}\n\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the gateway's own "cost" of a usage chunk, in USD */

static void
ngx_ai_messages_stream_cost(ngx_ai_messages_stream_t *ms, cJSON *usage)
{
    cJSON  *cost;

    cost = ngx_ai_get(usage, "cost");

    if (cJSON_IsNumber(cost) && cost->valuedouble >= 0
        && cost->valuedouble < 1e9)
    {
        ms->usage.cost = (uint64_t) (cost->valuedouble * 1e9 + 0.5);
        ms->usage.priced = 1;
    }
}


/* a string member kept past its event's tree; anything else: empty */

static ngx_int_t
ngx_ai_messages_copy(ngx_pool_t *pool, cJSON *item, ngx_str_t *out)
{
    ngx_str_null(out);

    if (!cJSON_IsString(item)) {
        return NGX_OK;
    }

    out->len = ngx_strlen(item->valuestring);
    out->data = ngx_pnalloc(pool, out->len + 1);

    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, item->valuestring, out->len + 1);

    return NGX_OK;
}


static ngx_int_t
ngx_ai_messages_stream_text(ngx_ai_messages_stream_t *ms, const char *text)
{
    ngx_ai_buf_t  *b;

    b = &ms->out;

    if (!ms->open || !ms->text) {
        if (ngx_ai_messages_stream_close(ms) != NGX_OK
            || ngx_ai_messages_event(ms, "content_block_start") != NGX_OK
            || ngx_ai_buf_append_str(b, "{\"type\":\"content_block_start\","
                                        "\"index\":") != NGX_OK
            || ngx_ai_buf_append_uint(b, ms->blocks) != NGX_OK
            || ngx_ai_buf_append_str(b, ",\"content_block\":{\"type\":"
                                        "\"text\",\"text\":\"\"}}\n\n")
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        ms->open = 1;
        ms->text = 1;
    }

    if (ngx_ai_messages_event(ms, "content_block_delta") != NGX_OK
        || ngx_ai_buf_append_str(b, "{\"type\":\"content_block_delta\","
                                    "\"index\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, ms->blocks) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"delta\":{\"type\":\"text_delta\","
                                    "\"text\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, (u_char *) text,
                                         ngx_strlen(text))
           != NGX_OK
        || ngx_ai_buf_append_str(b, "}}\n\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A tool call delta: the first one of a call (a new index) opens a
 * tool_use block, arguments fragments become input_json_delta.  OpenAI
 * streams calls one after the other; a fragment of a call whose block is
 * already closed cannot be placed and is dropped.
 */

static ngx_int_t
ngx_ai_messages_stream_tool(ngx_ai_messages_stream_t *ms, cJSON *call)
{
    cJSON         *index, *id, *fn, *name, *args;
    ngx_int_t      i;
    ngx_ai_buf_t  *b;

    b = &ms->out;

    index = ngx_ai_get(call, "index");
    fn = ngx_ai_get(call, "function");
    id = ngx_ai_get(call, "id");
    name = ngx_ai_get(fn, "name");
    args = ngx_ai_get(fn, "arguments");

    i = (cJSON_IsNumber(index) && index->valuedouble >= 0
         && index->valuedouble < 1000000)
        ? (ngx_int_t) index->valuedouble : 0;

    if (i > ms->tool) {
        ms->tool = i;

        if (ngx_ai_messages_stream_close(ms) != NGX_OK
            || ngx_ai_messages_event(ms, "content_block_start") != NGX_OK
            || ngx_ai_buf_append_str(b, "{\"type\":\"content_block_start\","
                                        "\"index\":") != NGX_OK
            || ngx_ai_buf_append_uint(b, ms->blocks) != NGX_OK
            || ngx_ai_buf_append_str(b, ",\"content_block\":{\"type\":"
                                        "\"tool_use\",\"id\":") != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (cJSON_IsString(id)) {
            if (ngx_ai_buf_append_json_string(b, (u_char *) id->valuestring,
                                              ngx_strlen(id->valuestring))
                != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else if (ngx_ai_buf_append_str(b, "\"toolu_") != NGX_OK
                   || ngx_ai_buf_append_uint(b, i) != NGX_OK
                   || ngx_ai_buf_append(b, "\"", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_ai_buf_append_str(b, ",\"name\":") != NGX_OK
            || ngx_ai_buf_append_json_string(b,
                   (u_char *) (cJSON_IsString(name) ? name->valuestring : ""),
                   cJSON_IsString(name) ? ngx_strlen(name->valuestring) : 0)
               != NGX_OK
            || ngx_ai_buf_append_str(b, ",\"input\":{}}}\n\n") != NGX_OK)
        {
            return NGX_ERROR;
        }

        ms->open = 1;
        ms->text = 0;

    } else if (i != ms->tool || !ms->open || ms->text) {
        return NGX_OK;
    }

    if (!cJSON_IsString(args) || args->valuestring[0] == '\0') {
        return NGX_OK;
    }

    if (ngx_ai_messages_event(ms, "content_block_delta") != NGX_OK
        || ngx_ai_buf_append_str(b, "{\"type\":\"content_block_delta\","
                                    "\"index\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, ms->blocks) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"delta\":{\"type\":"
                                    "\"input_json_delta\",\"partial_json\":")
           != NGX_OK
        || ngx_ai_buf_append_json_string(b, (u_char *) args->valuestring,
                                         ngx_strlen(args->valuestring))
           != NGX_OK
        || ngx_ai_buf_append_str(b, "}}\n\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* content_block_stop for the open block, if any */

static ngx_int_t
ngx_ai_messages_stream_close(ngx_ai_messages_stream_t *ms)
{
    if (!ms->open) {
        return NGX_OK;
    }

    if (ngx_ai_messages_event(ms, "content_block_stop") != NGX_OK
        || ngx_ai_buf_append_str(&ms->out, "{\"type\":\"content_block_stop\","
                                           "\"index\":") != NGX_OK
        || ngx_ai_buf_append_uint(&ms->out, ms->blocks) != NGX_OK
        || ngx_ai_buf_append_str(&ms->out, "}\n\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    ms->open = 0;
    ms->blocks++;

    return NGX_OK;
}


/* [DONE]: the open block ends, then message_delta and message_stop */

static ngx_int_t
ngx_ai_messages_stream_end(ngx_ai_messages_stream_t *ms)
{
    ngx_ai_buf_t  *b;

    b = &ms->out;

    if (ngx_ai_messages_stream_start(ms, NULL) != NGX_OK
        || (ms->holding && ngx_ai_messages_stream_release(ms) != NGX_OK)
        || ngx_ai_messages_stream_close(ms) != NGX_OK
        || ngx_ai_messages_event(ms, "message_delta") != NGX_OK
        || ngx_ai_buf_append_str(b, "{\"type\":\"message_delta\",\"delta\":"
                                    "{\"stop_reason\":\"") != NGX_OK
        || ngx_ai_buf_append_str(b, ms->stop ? ms->stop : "end_turn")
           != NGX_OK
        || ngx_ai_buf_append_str(b, "\",\"stop_sequence\":null},\"usage\":")
           != NGX_OK
        || ngx_ai_messages_usage(b, &ms->usage, 1) != NGX_OK
        || ngx_ai_buf_append_str(b, "}\n\n") != NGX_OK
        || ngx_ai_messages_event(ms, "message_stop") != NGX_OK
        || ngx_ai_buf_append_str(b, "{\"type\":\"message_stop\"}\n\n")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ms->done = 1;

    return NGX_OK;
}


/*
 * The gateway's error event: the stream is cut, Anthropic's way, with an
 * error event and no message_stop.
 */

static ngx_int_t
ngx_ai_messages_stream_error(ngx_ai_messages_stream_t *ms, cJSON *error)
{
    cJSON         *msg, *type, *code;
    const char    *t;
    ngx_ai_buf_t  *b;

    b = &ms->out;

    msg = ngx_ai_get(error, "message");
    type = ngx_ai_get(error, "type");
    code = ngx_ai_get(error, "code");

    if (ngx_ai_is(code, "provider_timeout")) {
        t = "timeout_error";

    } else if (ngx_ai_is(type, "rate_limit_exceeded")) {
        t = "rate_limit_error";

    } else if (ngx_ai_is(type, "invalid_request_error")) {
        t = "invalid_request_error";

    } else {
        t = "api_error";
    }

    ms->failed = 1;

    if ((ms->holding && ngx_ai_messages_stream_release(ms) != NGX_OK)
        || ngx_ai_messages_event(ms, "error") != NGX_OK
        || ngx_ai_buf_append_str(b, "{\"type\":\"error\",\"error\":"
                                    "{\"type\":\"") != NGX_OK
        || ngx_ai_buf_append_str(b, t) != NGX_OK
        || ngx_ai_buf_append_str(b, "\",\"message\":") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cJSON_IsString(msg)) {
        if (ngx_ai_buf_append_json_string(b, (u_char *) msg->valuestring,
                                          ngx_strlen(msg->valuestring))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(b, "\"the stream failed\"") != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_buf_append_str(b, "}}\n\n");
}


/* "event: <type>\ndata: " */

static ngx_int_t
ngx_ai_messages_event(ngx_ai_messages_stream_t *ms, const char *type)
{
    if (ngx_ai_buf_append_str(&ms->out, "event: ") != NGX_OK
        || ngx_ai_buf_append_str(&ms->out, type) != NGX_OK
        || ngx_ai_buf_append_str(&ms->out, "\ndata: ") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the dialect's stream: ngx_ai_messages_stream_t behind a void pointer */

void *
ngx_ai_messages_stream_create(ngx_pool_t *pool, uint64_t input,
    ngx_uint_t exact)
{
    ngx_ai_messages_stream_t  *ms;

    ms = ngx_palloc(pool, sizeof(ngx_ai_messages_stream_t));
    if (ms == NULL || ngx_ai_messages_stream_init(ms, pool) != NGX_OK) {
        return NULL;
    }

    ms->estimate = input;
    ms->exact = exact ? 1 : 0;

    return ms;
}


void
ngx_ai_messages_stream_set_usage(void *st, ngx_ai_usage_t *u)
{
    ngx_ai_messages_stream_usage(st, u);
}


ngx_int_t
ngx_ai_messages_stream_put(void *st, u_char *p, size_t len, ngx_str_t *out)
{
    ngx_ai_messages_stream_t  *ms = st;

    ms->out.len = 0;

    if (ngx_ai_messages_stream_feed(ms, p, len) != NGX_OK) {
        return NGX_ERROR;
    }

    out->data = ms->out.data;
    out->len = ms->out.len;

    return NGX_OK;
}
