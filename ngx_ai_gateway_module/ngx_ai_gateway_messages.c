
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The Anthropic Messages API inbound (POST {location}messages).  A
 * Messages request becomes an OpenAI chat request, which the gateway then
 * validates and serves like any other (every provider type, fallback,
 * fusion, limits, guards); the OpenAI answers, errors and chunk streams
 * the gateway produces are turned back into Anthropic messages, error
 * objects and event streams.  docs/messages-api.md has the tables.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define ngx_ai_get(obj, name)  cJSON_GetObjectItemCaseSensitive(obj, name)

#define ngx_ai_is(item, s)                                                    \
    (cJSON_IsString(item) && ngx_strcmp((item)->valuestring, s) == 0)


/* the request being converted */
typedef struct {
    ngx_pool_t                 *pool;
    cJSON                      *messages;  /* OpenAI "messages" */
    ngx_ai_error_t             *err;
    const char                 *field;     /* where an error is: */
    ngx_int_t                   message;   /* "messages.3.content.1" is */
    const char                 *sub;       /* "messages", 3, "content", */
    ngx_int_t                   block;     /* 1; -1: no index */
} ngx_ai_messages_conv_t;


#define ngx_ai_messages_at(cv, f, m, s, b)                                    \
    (cv)->field = f; (cv)->message = m; (cv)->sub = s; (cv)->block = b


static ngx_int_t ngx_ai_messages_system(ngx_ai_messages_conv_t *cv,
    cJSON *system);
static ngx_int_t ngx_ai_messages_message(ngx_ai_messages_conv_t *cv,
    cJSON *msg, int n);
static ngx_int_t ngx_ai_messages_user(ngx_ai_messages_conv_t *cv,
    cJSON *content, int n);
static ngx_int_t ngx_ai_messages_assistant(ngx_ai_messages_conv_t *cv,
    cJSON *content, int n);
static ngx_int_t ngx_ai_messages_text_part(cJSON *parts, cJSON *block);
static ngx_int_t ngx_ai_messages_image_part(ngx_ai_messages_conv_t *cv,
    cJSON *parts, cJSON *block);
static ngx_int_t ngx_ai_messages_document_part(ngx_ai_messages_conv_t *cv,
    cJSON *parts, cJSON *block);
static ngx_int_t ngx_ai_messages_tool_result(ngx_ai_messages_conv_t *cv,
    cJSON *block);
static ngx_int_t ngx_ai_messages_tool_use(ngx_ai_messages_conv_t *cv,
    cJSON *calls, cJSON *block);
static ngx_int_t ngx_ai_messages_tools(ngx_ai_messages_conv_t *cv,
    cJSON *src, cJSON *dst);
static char *ngx_ai_messages_data_url(ngx_pool_t *pool, cJSON *source);
static ngx_int_t ngx_ai_messages_invalid(ngx_ai_messages_conv_t *cv,
    const char *msg);
static const char *ngx_ai_messages_error_type(ngx_uint_t status);
static ngx_int_t ngx_ai_messages_convert(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_str_t *out, ngx_ai_error_t *err, ngx_uint_t count);
static ngx_int_t ngx_ai_messages_count_answer(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_ai_usage_t *usage, ngx_str_t *out);


ngx_ai_dialect_t  ngx_ai_messages_dialect = {
    ngx_string("messages"),
    ngx_ai_messages_request,
    ngx_ai_messages_response,
    ngx_ai_messages_error,
    ngx_ai_messages_stream_create,
    ngx_ai_messages_stream_set_usage,
    ngx_ai_messages_stream_put
};


/* messages/count_tokens: the request without max_tokens, the answer
 * already Anthropic's {"input_tokens":N} */

ngx_ai_dialect_t  ngx_ai_messages_count_dialect = {
    ngx_string("messages"),
    ngx_ai_messages_count_request,
    ngx_ai_messages_count_answer,
    ngx_ai_messages_error,
    ngx_ai_messages_stream_create,
    ngx_ai_messages_stream_set_usage,
    ngx_ai_messages_stream_put
};


/*
 * request: Messages JSON -> OpenAI chat request JSON, for
 * ngx_ai_chat_request_parse().  The new tree references the client's
 * strings (both trees go with the pool); it is printed here.  NGX_DECLINED:
 * err (400) says what is wrong; NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_ai_messages_request(ngx_pool_t *pool, u_char *body, size_t len,
    ngx_str_t *out, ngx_ai_error_t *err)
{
    return ngx_ai_messages_convert(pool, body, len, out, err, 0);
}


/*
 * A count_tokens request: the same conversion, with neither max_tokens
 * nor stream (the endpoint takes neither), so that the conversation, its
 * system prompt and its tools are counted as a message would send them.
 */

ngx_int_t
ngx_ai_messages_count_request(ngx_pool_t *pool, u_char *body, size_t len,
    ngx_str_t *out, ngx_ai_error_t *err)
{
    return ngx_ai_messages_convert(pool, body, len, out, err, 1);
}


static ngx_int_t
ngx_ai_messages_count_answer(ngx_pool_t *pool, u_char *body, size_t len,
    ngx_ai_usage_t *usage, ngx_str_t *out)
{
    out->data = body;
    out->len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_ai_messages_convert(ngx_pool_t *pool, u_char *body, size_t len,
    ngx_str_t *out, ngx_ai_error_t *err, ngx_uint_t count)
{
    int                      n;
    cJSON                   *src, *dst, *item, *msg, *opts;
    ngx_int_t                rc;
    ngx_uint_t               status;
    ngx_ai_json_flags_t      flags;
    ngx_ai_messages_conv_t   cv;

    ngx_memzero(&cv, sizeof(ngx_ai_messages_conv_t));
    cv.pool = pool;
    cv.err = err;

    if (len == 0) {
        return ngx_ai_messages_invalid(&cv, "The request body is empty; "
                                       "expected a JSON object.");
    }

    src = ngx_ai_json_track(pool,
                            ngx_ai_json_decode(pool, body, len,
                                               NGX_AI_MAX_JSON_DEPTH, &flags,
                                               &status));

    if (status == NGX_AI_JSON_TOO_DEEP) {
        return ngx_ai_messages_invalid(&cv, "The request body is nested "
                                       "too deeply.");
    }

    if (status == NGX_AI_JSON_NO_MEMORY) {
        return NGX_ERROR;
    }

    if (src == NULL) {
        return ngx_ai_messages_invalid(&cv, "The request body is not valid "
                                       "JSON.");
    }

    /* before converting: the printed OpenAI request would escape a raw
     * control byte and carry invalid UTF-8 on */

    rc = ngx_ai_request_bytes(pool, body, &flags, err);
    if (rc != NGX_OK) {
        return rc;
    }

    if (flags.nul) {
        return ngx_ai_messages_invalid(&cv, "The request body holds a NUL "
                                       "character (\\u0000), which the "
                                       "gateway does not accept.");
    }

    if (!cJSON_IsObject(src)) {
        return ngx_ai_messages_invalid(&cv, "The request body must be a "
                                       "JSON object.");
    }

    dst = ngx_ai_json_track(pool, cJSON_CreateObject());
    if (dst == NULL) {
        return NGX_ERROR;
    }

    /* model and max_tokens: required, as Anthropic requires them; their
     * types and ranges are checked with the OpenAI request */

    item = ngx_ai_get(src, "model");

    if (item == NULL || cJSON_IsNull(item)) {
        return ngx_ai_messages_invalid(&cv, "model: Field required");
    }

    if (!cJSON_AddItemReferenceToObject(dst, "model", item)) {
        return NGX_ERROR;
    }

    item = count ? NULL : ngx_ai_get(src, "max_tokens");

    if (!count && (item == NULL || cJSON_IsNull(item))) {
        return ngx_ai_messages_invalid(&cv, "max_tokens: Field required");
    }

    if (item && !cJSON_AddItemReferenceToObject(dst, "max_tokens", item)) {
        return NGX_ERROR;
    }

    cv.messages = cJSON_CreateArray();
    if (ngx_ai_json_add(dst, "messages", cv.messages) != NGX_OK) {
        return NGX_ERROR;
    }

    item = ngx_ai_get(src, "system");

    if (item && !cJSON_IsNull(item)) {
        rc = ngx_ai_messages_system(&cv, item);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    item = ngx_ai_get(src, "messages");

    if (item == NULL || cJSON_IsNull(item)) {
        return ngx_ai_messages_invalid(&cv, "messages: Field required");
    }

    if (!cJSON_IsArray(item)) {
        return ngx_ai_messages_invalid(&cv, "messages: Input should be a "
                                       "valid list");
    }

    n = 0;

    cJSON_ArrayForEach(msg, item) {
        rc = ngx_ai_messages_message(&cv, msg, n++);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (n == 0) {
        return ngx_ai_messages_invalid(&cv, "messages: at least one "
                                       "message is required");
    }

    /* sampling, stop sequences, streaming */

    item = ngx_ai_get(src, "temperature");

    if (item && !cJSON_AddItemReferenceToObject(dst, "temperature", item)) {
        return NGX_ERROR;
    }

    item = ngx_ai_get(src, "top_p");

    if (item && !cJSON_AddItemReferenceToObject(dst, "top_p", item)) {
        return NGX_ERROR;
    }

    item = ngx_ai_get(src, "stop_sequences");

    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsArray(item)) {
            return ngx_ai_messages_invalid(&cv, "stop_sequences: Input "
                                           "should be a valid list");
        }

        /* as many as the provider takes: its own limit decides */

        if (cJSON_GetArraySize(item) > NGX_AI_MAX_STOP) {
            return ngx_ai_messages_invalid(&cv, "stop_sequences: more than "
                                           "1024 stop sequences");
        }

        if (cJSON_GetArraySize(item)
            && !cJSON_AddItemReferenceToObject(dst, "stop", item))
        {
            return NGX_ERROR;
        }
    }

    item = count ? NULL : ngx_ai_get(src, "stream");

    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_AddItemReferenceToObject(dst, "stream", item)) {
            return NGX_ERROR;
        }

        /* usage comes at the end of the chunks: message_delta needs it */

        if (cJSON_IsTrue(item)) {
            opts = cJSON_CreateObject();

            if (ngx_ai_json_add(dst, "stream_options", opts) != NGX_OK
                || ngx_ai_json_add(opts, "include_usage", cJSON_CreateTrue())
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    item = ngx_ai_get(ngx_ai_get(src, "metadata"), "user_id");

    if (cJSON_IsString(item)
        && !cJSON_AddItemReferenceToObject(dst, "user", item))
    {
        return NGX_ERROR;
    }

    rc = ngx_ai_messages_tools(&cv, src, dst);
    if (rc != NGX_OK) {
        return rc;
    }

    /* top_k, thinking, service_tier, container, mcp_servers: no OpenAI
     * equivalent, dropped */

    return ngx_ai_json_print(pool, dst, out);
}


/* "system": a string or text blocks -> the first message, role system */

static ngx_int_t
ngx_ai_messages_system(ngx_ai_messages_conv_t *cv, cJSON *system)
{
    cJSON  *msg, *parts, *block;

    if (cJSON_IsString(system)) {
        if (system->valuestring[0] == '\0') {
            return NGX_OK;
        }

        msg = cJSON_CreateObject();

        if (ngx_ai_json_add(cv->messages, NULL, msg) != NGX_OK
            || ngx_ai_json_add_ref(msg, "role", "system") != NGX_OK
            || ngx_ai_json_add_ref(msg, "content", system->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (!cJSON_IsArray(system)) {
        return ngx_ai_messages_invalid(cv, "system: Input should be a "
                                       "valid string or a list of text "
                                       "blocks");
    }

    parts = cJSON_CreateArray();
    if (parts == NULL) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(block, system) {
        if (!ngx_ai_is(ngx_ai_get(block, "type"), "text")
            || !cJSON_IsString(ngx_ai_get(block, "text")))
        {
            cJSON_Delete(parts);
            return ngx_ai_messages_invalid(cv, "system: expected text "
                                           "blocks with a 'text' string");
        }

        if (ngx_ai_messages_text_part(parts, block) != NGX_OK) {
            cJSON_Delete(parts);
            return NGX_ERROR;
        }
    }

    if (cJSON_GetArraySize(parts) == 0) {
        cJSON_Delete(parts);
        return NGX_OK;
    }

    msg = cJSON_CreateObject();

    if (ngx_ai_json_add(cv->messages, NULL, msg) != NGX_OK
        || ngx_ai_json_add_ref(msg, "role", "system") != NGX_OK)
    {
        cJSON_Delete(parts);
        return NGX_ERROR;
    }

    return ngx_ai_json_add(msg, "content", parts);
}


static ngx_int_t
ngx_ai_messages_message(ngx_ai_messages_conv_t *cv, cJSON *msg, int n)
{
    cJSON  *role, *content, *m;

    ngx_ai_messages_at(cv, "messages", n, NULL, -1);

    if (!cJSON_IsObject(msg)) {
        return ngx_ai_messages_invalid(cv, "Input should be an object");
    }

    role = ngx_ai_get(msg, "role");
    content = ngx_ai_get(msg, "content");

    if (!ngx_ai_is(role, "user") && !ngx_ai_is(role, "assistant")) {
        ngx_ai_messages_at(cv, "messages", n, "role", -1);
        return ngx_ai_messages_invalid(cv, "Input should be 'user' or "
                                       "'assistant'");
    }

    if (cJSON_IsString(content)) {
        m = cJSON_CreateObject();

        if (ngx_ai_json_add(cv->messages, NULL, m) != NGX_OK
            || ngx_ai_json_add_ref(m, "role", role->valuestring) != NGX_OK
            || ngx_ai_json_add_ref(m, "content", content->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (!cJSON_IsArray(content)) {
        ngx_ai_messages_at(cv, "messages", n, "content", -1);
        return ngx_ai_messages_invalid(cv, "Input should be a valid string "
                                       "or a list of content blocks");
    }

    if (role->valuestring[0] == 'u') {
        return ngx_ai_messages_user(cv, content, n);
    }

    return ngx_ai_messages_assistant(cv, content, n);
}


/*
 * A user turn: its tool_result blocks become "tool" messages (they answer
 * the previous assistant turn's calls, so they come first), the rest one
 * user message of content parts.
 */

static ngx_int_t
ngx_ai_messages_user(ngx_ai_messages_conv_t *cv, cJSON *content, int n)
{
    int          i;
    cJSON       *parts, *block, *type, *m;
    ngx_int_t    rc;
    const char  *t;

    parts = ngx_ai_json_track(cv->pool, cJSON_CreateArray());
    if (parts == NULL) {
        return NGX_ERROR;
    }

    i = 0;

    cJSON_ArrayForEach(block, content) {

        ngx_ai_messages_at(cv, "messages", n, "content", i++);

        type = ngx_ai_get(block, "type");

        if (!cJSON_IsObject(block) || !cJSON_IsString(type)) {
            return ngx_ai_messages_invalid(cv, "expected a content block "
                                           "with a 'type' string");
        }

        t = type->valuestring;

        if (ngx_strcmp(t, "text") == 0) {
            if (!cJSON_IsString(ngx_ai_get(block, "text"))) {
                return ngx_ai_messages_invalid(cv, "text: Input should be "
                                               "a valid string");
            }

            rc = ngx_ai_messages_text_part(parts, block);

        } else if (ngx_strcmp(t, "image") == 0) {
            rc = ngx_ai_messages_image_part(cv, parts, block);

        } else if (ngx_strcmp(t, "document") == 0) {
            rc = ngx_ai_messages_document_part(cv, parts, block);

        } else if (ngx_strcmp(t, "tool_result") == 0) {
            rc = ngx_ai_messages_tool_result(cv, block);

        } else {
            /* search_result, server tool results ...: no OpenAI part */
            continue;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (cJSON_GetArraySize(parts) == 0) {
        return NGX_OK;
    }

    m = cJSON_CreateObject();

    if (ngx_ai_json_add(cv->messages, NULL, m) != NGX_OK
        || ngx_ai_json_add_ref(m, "role", "user") != NGX_OK
        || !cJSON_AddItemReferenceToObject(m, "content", parts))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * An assistant turn: text blocks -> content (a string when there is one,
 * text parts when several), tool_use blocks -> tool_calls; thinking
 * blocks are dropped.
 */

static ngx_int_t
ngx_ai_messages_assistant(ngx_ai_messages_conv_t *cv, cJSON *content, int n)
{
    int          i;
    cJSON       *parts, *calls, *block, *type, *text, *m;
    ngx_int_t    rc;

    parts = ngx_ai_json_track(cv->pool, cJSON_CreateArray());
    calls = ngx_ai_json_track(cv->pool, cJSON_CreateArray());
    if (parts == NULL || calls == NULL) {
        return NGX_ERROR;
    }

    i = 0;

    cJSON_ArrayForEach(block, content) {

        ngx_ai_messages_at(cv, "messages", n, "content", i++);

        type = ngx_ai_get(block, "type");

        if (!cJSON_IsObject(block) || !cJSON_IsString(type)) {
            return ngx_ai_messages_invalid(cv, "expected a content block "
                                           "with a 'type' string");
        }

        if (ngx_strcmp(type->valuestring, "text") == 0) {
            text = ngx_ai_get(block, "text");

            if (!cJSON_IsString(text)) {
                return ngx_ai_messages_invalid(cv, "text: Input should be "
                                               "a valid string");
            }

            if (text->valuestring[0] == '\0') {
                continue;
            }

            rc = ngx_ai_messages_text_part(parts, block);

        } else if (ngx_strcmp(type->valuestring, "tool_use") == 0) {
            rc = ngx_ai_messages_tool_use(cv, calls, block);

        } else {
            continue;       /* thinking, redacted_thinking, server tools */
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    m = cJSON_CreateObject();

    if (ngx_ai_json_add(cv->messages, NULL, m) != NGX_OK
        || ngx_ai_json_add_ref(m, "role", "assistant") != NGX_OK)
    {
        return NGX_ERROR;
    }

    switch (cJSON_GetArraySize(parts)) {

    case 0:
        rc = cJSON_GetArraySize(calls)
             ? ngx_ai_json_add(m, "content", cJSON_CreateNull())
             : ngx_ai_json_add_ref(m, "content", "");
        break;

    case 1:
        rc = ngx_ai_json_add_ref(m, "content",
                 ngx_ai_get(cJSON_GetArrayItem(parts, 0), "text")
                     ->valuestring);
        break;

    default:
        rc = cJSON_AddItemReferenceToObject(m, "content", parts)
             ? NGX_OK : NGX_ERROR;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (cJSON_GetArraySize(calls)
        && !cJSON_AddItemReferenceToObject(m, "tool_calls", calls))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* {"type":"text","text":...} with the block's cache_control, if any */

static ngx_int_t
ngx_ai_messages_text_part(cJSON *parts, cJSON *block)
{
    cJSON  *part, *cache;

    part = cJSON_CreateObject();

    if (ngx_ai_json_add(parts, NULL, part) != NGX_OK
        || ngx_ai_json_add_ref(part, "type", "text") != NGX_OK
        || ngx_ai_json_add_ref(part, "text",
                               ngx_ai_get(block, "text")->valuestring)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    cache = ngx_ai_get(block, "cache_control");

    if (cJSON_IsObject(cache)
        && !cJSON_AddItemReferenceToObject(part, "cache_control", cache))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* image block: base64 -> a data: URL, url -> the URL */

static ngx_int_t
ngx_ai_messages_image_part(ngx_ai_messages_conv_t *cv, cJSON *parts,
    cJSON *block)
{
    char   *url;
    cJSON  *source, *part, *image, *cache;

    source = ngx_ai_get(block, "source");

    if (ngx_ai_is(ngx_ai_get(source, "type"), "url")
        && cJSON_IsString(ngx_ai_get(source, "url")))
    {
        url = ngx_ai_get(source, "url")->valuestring;

    } else if (ngx_ai_is(ngx_ai_get(source, "type"), "base64")) {
        url = ngx_ai_messages_data_url(cv->pool, source);

        if (url == NULL) {
            return cJSON_IsString(ngx_ai_get(source, "data"))
                   && cJSON_IsString(ngx_ai_get(source, "media_type"))
                   ? NGX_ERROR
                   : ngx_ai_messages_invalid(cv, "image.source: base64 "
                                             "needs 'media_type' and "
                                             "'data' strings");
        }

    } else {
        return ngx_ai_messages_invalid(cv, "image.source: expected a "
                                       "base64 or url source");
    }

    part = cJSON_CreateObject();
    image = cJSON_CreateObject();

    if (ngx_ai_json_add(parts, NULL, part) != NGX_OK
        || ngx_ai_json_add_ref(part, "type", "image_url") != NGX_OK
        || ngx_ai_json_add(part, "image_url", image) != NGX_OK
        || ngx_ai_json_add_ref(image, "url", url) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cache = ngx_ai_get(block, "cache_control");

    if (cJSON_IsObject(cache)
        && !cJSON_AddItemReferenceToObject(part, "cache_control", cache))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * document block: a base64 PDF -> a file part, a plain-text source -> a
 * text part; other documents (URLs, content blocks) are dropped.
 */

static ngx_int_t
ngx_ai_messages_document_part(ngx_ai_messages_conv_t *cv, cJSON *parts,
    cJSON *block)
{
    char   *url;
    cJSON  *source, *part, *file, *data, *title;

    source = ngx_ai_get(block, "source");
    data = ngx_ai_get(source, "data");

    if (ngx_ai_is(ngx_ai_get(source, "type"), "text") && cJSON_IsString(data))
    {
        part = cJSON_CreateObject();

        if (ngx_ai_json_add(parts, NULL, part) != NGX_OK
            || ngx_ai_json_add_ref(part, "type", "text") != NGX_OK
            || ngx_ai_json_add_ref(part, "text", data->valuestring) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (!ngx_ai_is(ngx_ai_get(source, "type"), "base64")
        || !ngx_ai_is(ngx_ai_get(source, "media_type"), "application/pdf")
        || !cJSON_IsString(data))
    {
        return NGX_OK;
    }

    url = ngx_ai_messages_data_url(cv->pool, source);
    if (url == NULL) {
        return NGX_ERROR;
    }

    part = cJSON_CreateObject();
    file = cJSON_CreateObject();

    if (ngx_ai_json_add(parts, NULL, part) != NGX_OK
        || ngx_ai_json_add_ref(part, "type", "file") != NGX_OK
        || ngx_ai_json_add(part, "file", file) != NGX_OK
        || ngx_ai_json_add_ref(file, "file_data", url) != NGX_OK)
    {
        return NGX_ERROR;
    }

    title = ngx_ai_get(block, "title");

    if (cJSON_IsString(title)
        && ngx_ai_json_add_ref(file, "filename", title->valuestring)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * tool_result -> {"role":"tool","tool_call_id":...,"content":text}; a
 * list content gives the text of its text blocks joined by "\n" (images
 * are dropped: OpenAI tool messages carry text only).
 */

static ngx_int_t
ngx_ai_messages_tool_result(ngx_ai_messages_conv_t *cv, cJSON *block)
{
    cJSON         *id, *content, *m;
    ngx_ai_buf_t   b;

    id = ngx_ai_get(block, "tool_use_id");

    if (!cJSON_IsString(id)) {
        return ngx_ai_messages_invalid(cv, "tool_result: tool_use_id should "
                                       "be a valid string");
    }

    content = ngx_ai_get(block, "content");

    if (ngx_ai_buf_init(&b, cv->pool, 64) != NGX_OK
        || ngx_ai_content_text(content, &b, "\n") != NGX_OK
        || ngx_ai_buf_append(&b, "", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    m = cJSON_CreateObject();

    if (ngx_ai_json_add(cv->messages, NULL, m) != NGX_OK
        || ngx_ai_json_add_ref(m, "role", "tool") != NGX_OK
        || ngx_ai_json_add_ref(m, "tool_call_id", id->valuestring) != NGX_OK
        || ngx_ai_json_add_ref(m, "content", (char *) b.data) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* tool_use -> {"id","type":"function","function":{"name","arguments"}} */

static ngx_int_t
ngx_ai_messages_tool_use(ngx_ai_messages_conv_t *cv, cJSON *calls,
    cJSON *block)
{
    cJSON      *id, *name, *input, *call, *fn;
    ngx_str_t   args;

    id = ngx_ai_get(block, "id");
    name = ngx_ai_get(block, "name");
    input = ngx_ai_get(block, "input");

    if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
        return ngx_ai_messages_invalid(cv, "tool_use: 'id' and 'name' "
                                       "should be valid strings");
    }

    if (cJSON_IsObject(input)) {
        if (ngx_ai_json_print(cv->pool, input, &args) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        ngx_str_set(&args, "{}");
    }

    call = cJSON_CreateObject();
    fn = cJSON_CreateObject();

    if (ngx_ai_json_add(calls, NULL, call) != NGX_OK
        || ngx_ai_json_add_ref(call, "id", id->valuestring) != NGX_OK
        || ngx_ai_json_add_ref(call, "type", "function") != NGX_OK
        || ngx_ai_json_add(call, "function", fn) != NGX_OK
        || ngx_ai_json_add_ref(fn, "name", name->valuestring) != NGX_OK
        || ngx_ai_json_add_ref(fn, "arguments", (char *) args.data) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * "tools" (client tools: no type, or type "custom"; server tools are
 * dropped), "tool_choice" and its disable_parallel_tool_use.
 */

static ngx_int_t
ngx_ai_messages_tools(ngx_ai_messages_conv_t *cv, cJSON *src, cJSON *dst)
{
    cJSON  *tools, *tool, *type, *name, *desc, *schema, *t, *fn, *choice;
    cJSON  *entry, *tc;

    ngx_ai_messages_at(cv, "tools", -1, NULL, -1);

    tools = ngx_ai_get(src, "tools");

    if (tools == NULL || cJSON_IsNull(tools)) {
        return NGX_OK;
    }

    if (!cJSON_IsArray(tools)) {
        return ngx_ai_messages_invalid(cv, "Input should be a valid list");
    }

    t = cJSON_CreateArray();
    if (ngx_ai_json_add(dst, "tools", t) != NGX_OK) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(tool, tools) {
        type = ngx_ai_get(tool, "type");

        if (type && !cJSON_IsNull(type) && !ngx_ai_is(type, "custom")) {
            continue;                           /* a server tool */
        }

        name = ngx_ai_get(tool, "name");
        desc = ngx_ai_get(tool, "description");
        schema = ngx_ai_get(tool, "input_schema");

        if (!cJSON_IsString(name)) {
            return ngx_ai_messages_invalid(cv, "a tool needs a 'name' "
                                           "string");
        }

        fn = cJSON_CreateObject();
        entry = cJSON_CreateObject();

        if (ngx_ai_json_add(t, NULL, entry) != NGX_OK
            || ngx_ai_json_add_ref(entry, "type", "function") != NGX_OK
            || ngx_ai_json_add(entry, "function", fn) != NGX_OK
            || ngx_ai_json_add_ref(fn, "name", name->valuestring) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (cJSON_IsString(desc)
            && ngx_ai_json_add_ref(fn, "description", desc->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (cJSON_IsObject(schema)
            && !cJSON_AddItemReferenceToObject(fn, "parameters", schema))
        {
            return NGX_ERROR;
        }
    }

    choice = ngx_ai_get(src, "tool_choice");

    if (choice == NULL || cJSON_IsNull(choice)
        || cJSON_GetArraySize(t) == 0)
    {
        return NGX_OK;
    }

    ngx_ai_messages_at(cv, "tool_choice", -1, NULL, -1);

    type = ngx_ai_get(choice, "type");

    if (ngx_ai_is(type, "auto")) {
        tc = cJSON_CreateStringReference("auto");

    } else if (ngx_ai_is(type, "any")) {
        tc = cJSON_CreateStringReference("required");

    } else if (ngx_ai_is(type, "none")) {
        tc = cJSON_CreateStringReference("none");

    } else if (ngx_ai_is(type, "tool")
               && cJSON_IsString(ngx_ai_get(choice, "name")))
    {
        tc = cJSON_CreateObject();
        fn = cJSON_CreateObject();

        if (ngx_ai_json_add_ref(tc, "type", "function") != NGX_OK
            || ngx_ai_json_add(tc, "function", fn) != NGX_OK
            || ngx_ai_json_add_ref(fn, "name",
                                   ngx_ai_get(choice, "name")->valuestring)
               != NGX_OK)
        {
            cJSON_Delete(tc);
            return NGX_ERROR;
        }

    } else {
        return ngx_ai_messages_invalid(cv, "expected type auto, any, tool "
                                       "(with a name) or none");
    }

    if (ngx_ai_json_add(dst, "tool_choice", tc) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cJSON_IsTrue(ngx_ai_get(choice, "disable_parallel_tool_use"))
        && ngx_ai_json_add(dst, "parallel_tool_calls", cJSON_CreateFalse())
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "data:<media_type>;base64,<data>" in the pool, or NULL */

static char *
ngx_ai_messages_data_url(ngx_pool_t *pool, cJSON *source)
{
    u_char  *p, *url;
    size_t   tlen, dlen;
    cJSON   *type, *data;

    type = ngx_ai_get(source, "media_type");
    data = ngx_ai_get(source, "data");

    if (!cJSON_IsString(type) || !cJSON_IsString(data)) {
        return NULL;
    }

    tlen = ngx_strlen(type->valuestring);
    dlen = ngx_strlen(data->valuestring);

    url = ngx_pnalloc(pool, sizeof("data:;base64,") + tlen + dlen);
    if (url == NULL) {
        return NULL;
    }

    p = ngx_cpymem(url, "data:", 5);
    p = ngx_cpymem(p, type->valuestring, tlen);
    p = ngx_cpymem(p, ";base64,", 8);
    p = ngx_cpymem(p, data->valuestring, dlen);
    *p = '\0';

    return (char *) url;
}


/* a 400 invalid_request_error; its message is "where: msg" when the
 * converter knows where, e.g. "messages.3.content.1: ..." */

static ngx_int_t
ngx_ai_messages_invalid(ngx_ai_messages_conv_t *cv, const char *msg)
{
    ngx_ai_buf_t  b;

    ngx_ai_error_set(cv->err, 400, "invalid_request_error", NULL,
                     "invalid_value", msg);

    if (cv->field == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_ai_buf_init(&b, cv->pool, 64) != NGX_OK
        || ngx_ai_buf_append_str(&b, cv->field) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cv->message >= 0
        && (ngx_ai_buf_append(&b, ".", 1) != NGX_OK
            || ngx_ai_buf_append_uint(&b, cv->message) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (cv->sub
        && (ngx_ai_buf_append(&b, ".", 1) != NGX_OK
            || ngx_ai_buf_append_str(&b, cv->sub) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (cv->block >= 0
        && (ngx_ai_buf_append(&b, ".", 1) != NGX_OK
            || ngx_ai_buf_append_uint(&b, cv->block) != NGX_OK))
    {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(&b, ": ") != NGX_OK
        || ngx_ai_buf_append_str(&b, msg) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cv->err->message.data = b.data;
    cv->err->message.len = b.len;

    return NGX_DECLINED;
}


/*
 * response: the gateway's chat.completion -> an Anthropic message.  usage,
 * when known, is the answer's normalised usage (it keeps the cache
 * creation tokens that OpenAI's usage object has no field for); otherwise
 * the body's is read.  NGX_DECLINED: the body is not a chat.completion.
 */

ngx_int_t
ngx_ai_messages_response(ngx_pool_t *pool, u_char *body, size_t len,
    ngx_ai_usage_t *usage, ngx_str_t *out)
{
    char            *args;
    cJSON           *root, *choice, *msg, *content, *calls, *call, *fn;
    cJSON           *text, *finish, *fusion, *input, *id, *name;
    ngx_int_t        rc;
    ngx_uint_t       blocks;
    ngx_ai_buf_t     b, t;
    ngx_ai_usage_t   u;
    const char      *stop;

    root = ngx_ai_json_parse(pool, body, len);
    choice = cJSON_GetArrayItem(ngx_ai_get(root, "choices"), 0);

    if (!cJSON_IsObject(root) || !cJSON_IsObject(choice)) {
        return NGX_DECLINED;
    }

    msg = ngx_ai_get(choice, "message");
    content = ngx_ai_get(msg, "content");
    calls = ngx_ai_get(msg, "tool_calls");

    if (ngx_ai_buf_init(&b, pool, len + 256) != NGX_OK
        || ngx_ai_buf_init(&t, pool, 256) != NGX_OK
        || ngx_ai_buf_append_str(&b, "{\"id\":") != NGX_OK
        || ngx_ai_messages_id(&b, ngx_ai_get(root, "id")) != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"type\":\"message\",\"role\":"
                                     "\"assistant\",\"model\":")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    text = ngx_ai_get(root, "model");

    if (cJSON_IsString(text)) {
        rc = ngx_ai_buf_append_json_string(&b, (u_char *) text->valuestring,
                                           ngx_strlen(text->valuestring));

    } else {
        rc = ngx_ai_buf_append_str(&b, "\"\"");
    }

    if (rc != NGX_OK || ngx_ai_buf_append_str(&b, ",\"content\":[") != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the text: a string, or text parts; else a refusal */

    if (ngx_ai_content_text(content, &t, "") != NGX_OK) {
        return NGX_ERROR;
    }

    if (t.len == 0
        && ngx_ai_content_text(ngx_ai_get(msg, "refusal"), &t, "") != NGX_OK)
    {
        return NGX_ERROR;
    }

    blocks = 0;

    if (t.len) {
        if (ngx_ai_buf_append_str(&b, "{\"type\":\"text\",\"text\":")
            != NGX_OK
            || ngx_ai_buf_append_json_string(&b, t.data, t.len) != NGX_OK
            || ngx_ai_buf_append(&b, "}", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        blocks++;
    }

    cJSON_ArrayForEach(call, calls) {
        fn = ngx_ai_get(call, "function");
        id = ngx_ai_get(call, "id");
        name = ngx_ai_get(fn, "name");

        if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
            continue;
        }

        text = ngx_ai_get(fn, "arguments");

        input = ngx_ai_json_track(pool, ngx_ai_json_parse_args(
                    cJSON_IsString(text) ? text->valuestring : NULL));
        if (input == NULL) {
            return NGX_ERROR;
        }

        args = cJSON_PrintUnformatted(input);
        if (args == NULL) {
            return NGX_ERROR;
        }

        rc = (blocks++ && ngx_ai_buf_append(&b, ",", 1) != NGX_OK)
             || ngx_ai_buf_append_str(&b, "{\"type\":\"tool_use\",\"id\":")
                != NGX_OK
             || ngx_ai_buf_append_json_string(&b, (u_char *) id->valuestring,
                                              ngx_strlen(id->valuestring))
                != NGX_OK
             || ngx_ai_buf_append_str(&b, ",\"name\":") != NGX_OK
             || ngx_ai_buf_append_json_string(&b,
                                              (u_char *) name->valuestring,
                                              ngx_strlen(name->valuestring))
                != NGX_OK
             || ngx_ai_buf_append_str(&b, ",\"input\":") != NGX_OK
             || ngx_ai_buf_append_str(&b, args) != NGX_OK
             || ngx_ai_buf_append(&b, "}", 1) != NGX_OK;

        cJSON_free(args);

        if (rc) {
            return NGX_ERROR;
        }
    }

    finish = ngx_ai_get(choice, "finish_reason");
    stop = ngx_ai_messages_stop(cJSON_IsString(finish) ? finish->valuestring
                                                      : NULL);

    ngx_memzero(&u, sizeof(ngx_ai_usage_t));

    if (usage && usage->known) {
        u = *usage;

    } else {
        (void) ngx_ai_usage_from_openai(ngx_ai_get(root, "usage"), &u);
    }

    if (ngx_ai_buf_append_str(&b, "],\"stop_reason\":\"") != NGX_OK
        || ngx_ai_buf_append_str(&b, stop) != NGX_OK
        || ngx_ai_buf_append_str(&b, "\",\"stop_sequence\":null,\"usage\":")
           != NGX_OK
        || ngx_ai_messages_usage(&b, &u, 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* fusion's report travels along */

    fusion = ngx_ai_get(root, "fusion");

    if (cJSON_IsObject(fusion)) {
        args = cJSON_PrintUnformatted(fusion);
        if (args == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_ai_buf_append_str(&b, ",\"fusion\":") != NGX_OK
             || ngx_ai_buf_append_str(&b, args) != NGX_OK;

        cJSON_free(args);

        if (rc) {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_buf_append(&b, "}", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    out->data = b.data;
    out->len = b.len;

    return NGX_OK;
}


/* errors: {"type":"error","error":{"type":...,"message":...}} */

ngx_int_t
ngx_ai_messages_error(ngx_pool_t *pool, ngx_ai_error_t *err, ngx_str_t *out)
{
    u_char        *p;
    ngx_str_t      msg;
    ngx_ai_buf_t   b;

    /* Anthropic's errors have no "param": the message names it */

    msg = err->message;

    if (err->param) {
        msg.len = ngx_strlen(err->param) + 2 + err->message.len;
        msg.data = ngx_pnalloc(pool, msg.len);
        if (msg.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(msg.data, err->param, ngx_strlen(err->param));
        p = ngx_cpymem(p, ": ", 2);
        ngx_memcpy(p, err->message.data, err->message.len);
    }

    if (ngx_ai_buf_init(&b, pool, msg.len + 128) != NGX_OK
        || ngx_ai_buf_append_str(&b, "{\"type\":\"error\",\"error\":"
                                     "{\"type\":\"") != NGX_OK
        || ngx_ai_buf_append_str(&b, ngx_ai_messages_error_type(err->status))
           != NGX_OK
        || ngx_ai_buf_append_str(&b, "\",\"message\":") != NGX_OK
        || ngx_ai_buf_append_json_string(&b, msg.data, msg.len) != NGX_OK
        || ngx_ai_buf_append_str(&b, "}}") != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->data = b.data;
    out->len = b.len;

    return NGX_OK;
}


/* Anthropic's error type for an HTTP status */

static const char *
ngx_ai_messages_error_type(ngx_uint_t status)
{
    switch (status) {

    case 401:
        return "authentication_error";

    case 402:
        return "billing_error";

    case 403:
        return "permission_error";

    case 404:
        return "not_found_error";

    case 413:
        return "request_too_large";

    case 429:
        return "rate_limit_error";

    case 503:
    case 529:
        return "overloaded_error";

    case 504:
        return "timeout_error";

    default:
        break;
    }

    return (status >= 500 || status < 400) ? "api_error"
                                           : "invalid_request_error";
}
