
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * type=anthropic: the Messages API (POST /v1/messages).  OpenAI chat
 * requests become Messages requests (system prompt apart, strictly
 * alternating user/assistant turns of content blocks, tool_use and
 * tool_result blocks); answers, errors and streams come back as OpenAI
 * chat.completion objects and chunks.  docs/providers.md has the tables.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define NGX_AI_ANTHROPIC_MAX_TOKENS  4096


/* the conversation being built: appends merge consecutive same roles */
typedef struct {
    cJSON                      *messages;
    cJSON                      *content;   /* blocks of the last message */
    const char                 *role;      /* role of the last message */
    int                         results;   /* tool_result blocks heading
                                              the last message */
} ngx_ai_anthropic_conv_t;


/* Anthropic usage as sent: every field is replaced when present */
typedef struct {
    uint64_t                    input;
    uint64_t                    output;
    uint64_t                    cache_creation;
    uint64_t                    cache_read;
} ngx_ai_anthropic_usage_t;


typedef enum {
    NGX_AI_ANTHROPIC_BLOCK_NONE = 0,
    NGX_AI_ANTHROPIC_BLOCK_TEXT,
    NGX_AI_ANTHROPIC_BLOCK_TOOL,
    NGX_AI_ANTHROPIC_BLOCK_OTHER
} ngx_ai_anthropic_block_e;


/* per-stream state, in st->data */
typedef struct {
    ngx_ai_anthropic_usage_t    usage;
    const char                 *finish;    /* mapped stop_reason */
    ngx_uint_t                  tools;     /* tool calls started */
    ngx_uint_t                  tool;      /* OpenAI index of the open one */
    ngx_ai_anthropic_block_e    block;     /* the open content block */
    unsigned                    args_sent:1;
} ngx_ai_anthropic_stream_t;


static ngx_int_t ngx_ai_anthropic_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out);
static ngx_int_t ngx_ai_anthropic_messages(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, cJSON *root);
static ngx_int_t ngx_ai_anthropic_add(ngx_ai_anthropic_conv_t *cv,
    const char *role, cJSON *block, ngx_uint_t result);
static ngx_int_t ngx_ai_anthropic_insert(ngx_ai_anthropic_conv_t *cv,
    cJSON *block);
static ngx_int_t ngx_ai_anthropic_content(ngx_pool_t *pool,
    ngx_ai_anthropic_conv_t *cv, const char *role, cJSON *content);
static cJSON *ngx_ai_anthropic_text_block(const char *text, cJSON *part);
static ngx_int_t ngx_ai_anthropic_image_block(ngx_pool_t *pool,
    cJSON *part, cJSON **block);
static ngx_int_t ngx_ai_anthropic_file_block(ngx_pool_t *pool, cJSON *part,
    cJSON **block);
static cJSON *ngx_ai_anthropic_base64_source(ngx_pool_t *pool,
    ngx_str_t *type, ngx_str_t *data);
static ngx_int_t ngx_ai_anthropic_use(ngx_ai_anthropic_conv_t *cv,
    const char *id, cJSON *name, cJSON *args);
static char *ngx_ai_anthropic_legacy_id(ngx_pool_t *pool, ngx_uint_t i);
static ngx_int_t ngx_ai_anthropic_function(ngx_pool_t *pool,
    ngx_ai_anthropic_conv_t *cv, cJSON *messages, cJSON *msg);
static ngx_int_t ngx_ai_anthropic_tool_calls(ngx_ai_anthropic_conv_t *cv,
    cJSON *calls);
static ngx_int_t ngx_ai_anthropic_tool_result(ngx_pool_t *pool,
    ngx_ai_anthropic_conv_t *cv, cJSON *msg, cJSON *id);
static ngx_int_t ngx_ai_anthropic_options(ngx_ai_chat_request_t *req,
    cJSON *root);
static ngx_int_t ngx_ai_anthropic_tools(cJSON *src, cJSON *root);
static ngx_int_t ngx_ai_anthropic_count_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_anthropic_count_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_anthropic_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);
static void ngx_ai_anthropic_usage_read(cJSON *usage,
    ngx_ai_anthropic_usage_t *au);
static void ngx_ai_anthropic_usage_set(ngx_ai_anthropic_usage_t *au,
    ngx_ai_usage_t *u);
static const char *ngx_ai_anthropic_finish(cJSON *reason);
static void ngx_ai_anthropic_error(ngx_pool_t *pool, ngx_uint_t status,
    u_char *body, size_t len, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_anthropic_stream_event(ngx_ai_stream_t *st,
    ngx_ai_sse_event_t *ev);
static ngx_int_t ngx_ai_anthropic_stream_block(ngx_ai_stream_t *st,
    ngx_ai_anthropic_stream_t *as, cJSON *root);
static ngx_int_t ngx_ai_anthropic_stream_delta(ngx_ai_stream_t *st,
    ngx_ai_anthropic_stream_t *as, cJSON *root);


ngx_ai_translator_t  ngx_ai_anthropic_translator = {
    ngx_string("anthropic"),
    NGX_AI_PROVIDER_ANTHROPIC,
    ngx_ai_anthropic_request,
    ngx_ai_anthropic_response,
    ngx_ai_anthropic_error,
    ngx_ai_anthropic_stream_event,
    NULL,
    NULL,                                  /* no embeddings endpoint */
    NULL,
    ngx_ai_anthropic_count_request,
    ngx_ai_anthropic_count_response,
    ngx_ai_check_one_answer,
    0
};


#define ngx_ai_get(obj, name)  cJSON_GetObjectItemCaseSensitive(obj, name)

#define ngx_ai_is(item, s)                                                    \
    (cJSON_IsString(item) && ngx_strcmp((item)->valuestring, s) == 0)


/* request */

static ngx_int_t
ngx_ai_anthropic_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out)
{
    cJSON      *root;
    ngx_int_t   rc, max;

    /*
     * The new tree references the client's strings instead of copying
     * them (prompts and images can be large); it is printed and deleted
     * here, and the client's tree is not changed.
     */

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_ERROR;
    }

    max = req->max_tokens > 0 ? req->max_tokens : req->default_max_tokens;

    if (max <= 0) {
        max = NGX_AI_ANTHROPIC_MAX_TOKENS;
    }

    rc = NGX_ERROR;

    if (ngx_ai_json_add_ref(root, "model",
                            (char *) req->upstream_model.data) != NGX_OK
        || ngx_ai_json_add(root, "max_tokens", cJSON_CreateNumber(max))
           != NGX_OK
        || ngx_ai_anthropic_messages(pool, req, root) != NGX_OK
        || ngx_ai_anthropic_options(req, root) != NGX_OK)
    {
        goto done;
    }

    rc = ngx_ai_json_print(pool, root, &out->body);

done:

    cJSON_Delete(root);

    ngx_str_set(&out->path, "/v1/messages");

    return rc;
}


/* "system" and "messages" */

static ngx_int_t
ngx_ai_anthropic_messages(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    cJSON *root)
{
    char                     *s;
    cJSON                    *messages, *msg, *role, *content, *call;
    ngx_uint_t                i;
    const char               *r;
    ngx_ai_buf_t              sys;
    ngx_ai_anthropic_conv_t   cv;

    if (ngx_ai_buf_init(&sys, pool, 256) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&cv, sizeof(ngx_ai_anthropic_conv_t));

    cv.messages = cJSON_CreateArray();
    if (ngx_ai_json_add(root, "messages", cv.messages) != NGX_OK) {
        return NGX_ERROR;
    }

    messages = ngx_ai_get(req->json, "messages");
    i = 0;

    cJSON_ArrayForEach(msg, messages) {

        role = ngx_ai_get(msg, "role");
        content = ngx_ai_get(msg, "content");

        if (!cJSON_IsString(role)) {
            i++;
            continue;
        }

        r = role->valuestring;

        if (ngx_strcmp(r, "system") == 0 || ngx_strcmp(r, "developer") == 0)
        {
            if (ngx_ai_content_text(content, &sys, "\n\n") != NGX_OK) {
                return NGX_ERROR;
            }

            i++;
            continue;
        }

        if (ngx_strcmp(r, "assistant") == 0) {
            call = ngx_ai_get(msg, "function_call");

            if (ngx_ai_anthropic_content(pool, &cv, "assistant", content)
                != NGX_OK
                || ngx_ai_anthropic_tool_calls(&cv,
                                               ngx_ai_get(msg, "tool_calls"))
                   != NGX_OK
                || (cJSON_IsObject(call)
                    && ngx_ai_anthropic_use(&cv,
                                            ngx_ai_anthropic_legacy_id(pool,
                                                                       i),
                                            ngx_ai_get(call, "name"),
                                            ngx_ai_get(call, "arguments"))
                       != NGX_OK))
            {
                return NGX_ERROR;
            }

            i++;
            continue;
        }

        if (ngx_strcmp(r, "tool") == 0) {
            if (ngx_ai_anthropic_tool_result(pool, &cv, msg,
                                             ngx_ai_get(msg, "tool_call_id"))
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            i++;
            continue;
        }

        if (ngx_strcmp(r, "function") == 0) {
            if (ngx_ai_anthropic_function(pool, &cv, messages, msg)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            i++;
            continue;
        }

        if (ngx_ai_anthropic_content(pool, &cv, "user", content) != NGX_OK) {
            return NGX_ERROR;
        }

        i++;
    }

    if (sys.len == 0) {
        return NGX_OK;
    }

    s = ngx_ai_buf_cstr(&sys);
    if (s == NULL) {
        return NGX_ERROR;
    }

    return ngx_ai_json_add_ref(root, "system", s);
}


/*
 * Appends a content block to the conversation, opening a new message when
 * the role changes.  Anthropic wants a user turn's tool_result blocks
 * before anything else in it, so they are inserted after the ones there.
 */

static ngx_int_t
ngx_ai_anthropic_add(ngx_ai_anthropic_conv_t *cv, const char *role,
    cJSON *block, ngx_uint_t result)
{
    ngx_int_t  rc;

    if (block == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_ai_json_turn(cv->messages, "content", role, &cv->role,
                          &cv->content);

    if (rc == NGX_ERROR) {
        cJSON_Delete(block);
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        cv->results = 0;
    }

    if (result && cv->results < cJSON_GetArraySize(cv->content)) {
        return ngx_ai_anthropic_insert(cv, block);
    }

    if (ngx_ai_json_add(cv->content, NULL, block) != NGX_OK) {
        return NGX_ERROR;
    }

    if (result) {
        cv->results++;
    }

    return NGX_OK;
}


/*
 * Puts a tool_result block after the ones heading the last message.
 * (cJSON_InsertItemInArray() of Debian's libcjson 1.7.15 fails for a
 * position inside the array, so the tail is moved aside and back.)
 */

static ngx_int_t
ngx_ai_anthropic_insert(ngx_ai_anthropic_conv_t *cv, cJSON *block)
{
    cJSON      *rest, *item;
    ngx_int_t   rc;

    rest = cJSON_CreateArray();
    if (rest == NULL) {
        cJSON_Delete(block);
        return NGX_ERROR;
    }

    while (cJSON_GetArraySize(cv->content) > cv->results) {
        item = cJSON_DetachItemFromArray(cv->content, cv->results);
        cJSON_AddItemToArray(rest, item);
    }

    rc = ngx_ai_json_add(cv->content, NULL, block);

    while ((item = cJSON_DetachItemFromArray(rest, 0)) != NULL) {
        cJSON_AddItemToArray(cv->content, item);
    }

    cJSON_Delete(rest);

    if (rc == NGX_OK) {
        cv->results++;
    }

    return rc;
}


/* a message's "content" (string or parts) -> blocks */

static ngx_int_t
ngx_ai_anthropic_content(ngx_pool_t *pool, ngx_ai_anthropic_conv_t *cv,
    const char *role, cJSON *content)
{
    cJSON      *part, *type, *text, *block;
    ngx_int_t   rc;

    if (cJSON_IsString(content)) {
        if (content->valuestring[0] == '\0') {
            return NGX_OK;
        }

        return ngx_ai_anthropic_add(cv, role,
                   ngx_ai_anthropic_text_block(content->valuestring, NULL),
                   0);
    }

    cJSON_ArrayForEach(part, content) {

        type = ngx_ai_get(part, "type");

        if (!cJSON_IsString(type)) {
            continue;
        }

        if (ngx_strcmp(type->valuestring, "text") == 0
            || ngx_strcmp(type->valuestring, "refusal") == 0)
        {
            text = ngx_ai_get(part, type->valuestring);

            if (!cJSON_IsString(text) || text->valuestring[0] == '\0') {
                continue;
            }

            block = ngx_ai_anthropic_text_block(text->valuestring, part);
            rc = NGX_OK;

        } else if (ngx_strcmp(type->valuestring, "image_url") == 0) {
            rc = ngx_ai_anthropic_image_block(pool, part, &block);

        } else if (ngx_strcmp(type->valuestring, "file") == 0) {
            rc = ngx_ai_anthropic_file_block(pool, part, &block);

        } else {
            /* input_audio: Anthropic has no audio input */
            continue;
        }

        if (rc == NGX_DECLINED) {
            continue;                           /* not representable */
        }

        if (rc != NGX_OK || ngx_ai_anthropic_add(cv, role, block, 0) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * {"type":"text","text":...}; a part's "cache_control" (an Anthropic
 * extension some OpenAI clients send) is kept.
 */

static cJSON *
ngx_ai_anthropic_text_block(const char *text, cJSON *part)
{
    cJSON  *block, *cache;

    block = cJSON_CreateObject();

    if (ngx_ai_json_add_ref(block, "type", "text") != NGX_OK
        || ngx_ai_json_add_ref(block, "text", text) != NGX_OK)
    {
        cJSON_Delete(block);
        return NULL;
    }

    cache = ngx_ai_get(part, "cache_control");

    if (cJSON_IsObject(cache)
        && !cJSON_AddItemReferenceToObject(block, "cache_control", cache))
    {
        cJSON_Delete(block);
        return NULL;
    }

    return block;
}


/*
 * image_url part -> image block: base64 data URLs inline, http(s) URLs by
 * reference; NGX_DECLINED for anything else, which is dropped.
 */

static ngx_int_t
ngx_ai_anthropic_image_block(ngx_pool_t *pool, cJSON *part, cJSON **block)
{
    char       *url;
    cJSON      *image, *b, *source, *cache;
    size_t      len;
    ngx_str_t   type, data;

    *block = NULL;

    image = ngx_ai_get(part, "image_url");

    if (cJSON_IsObject(image)) {
        image = ngx_ai_get(image, "url");
    }

    if (!cJSON_IsString(image)) {
        return NGX_DECLINED;
    }

    url = image->valuestring;
    len = ngx_strlen(url);

    if (ngx_ai_data_url_parse((u_char *) url, len, &type, &data) == NGX_OK) {
        source = ngx_ai_anthropic_base64_source(pool, &type, &data);

    } else if (ngx_ai_strncaseeq((u_char *) url, "https://", 8)
               || ngx_ai_strncaseeq((u_char *) url, "http://", 7))
    {
        source = cJSON_CreateObject();

        if (ngx_ai_json_add_ref(source, "type", "url") != NGX_OK
            || ngx_ai_json_add_ref(source, "url", url) != NGX_OK)
        {
            cJSON_Delete(source);
            return NGX_ERROR;
        }

    } else {
        return NGX_DECLINED;
    }

    b = cJSON_CreateObject();

    if (ngx_ai_json_add_ref(b, "type", "image") != NGX_OK) {
        cJSON_Delete(source);
        cJSON_Delete(b);
        return NGX_ERROR;
    }

    if (ngx_ai_json_add(b, "source", source) != NGX_OK) {
        cJSON_Delete(b);
        return NGX_ERROR;
    }

    cache = ngx_ai_get(part, "cache_control");

    if (cJSON_IsObject(cache)
        && !cJSON_AddItemReferenceToObject(b, "cache_control", cache))
    {
        cJSON_Delete(b);
        return NGX_ERROR;
    }

    *block = b;

    return NGX_OK;
}


/* file part with a base64 PDF data URL -> document block, else dropped */

static ngx_int_t
ngx_ai_anthropic_file_block(ngx_pool_t *pool, cJSON *part, cJSON **block)
{
    cJSON      *file, *data_url, *b;
    ngx_str_t   type, data;

    *block = NULL;

    file = ngx_ai_get(part, "file");
    data_url = ngx_ai_get(file, "file_data");

    if (!cJSON_IsString(data_url)
        || ngx_ai_data_url_parse((u_char *) data_url->valuestring,
                                 ngx_strlen(data_url->valuestring),
                                 &type, &data)
           != NGX_OK
        || type.len != 15
        || !ngx_ai_strncaseeq(type.data, "application/pdf", 15))
    {
        return NGX_DECLINED;
    }

    b = cJSON_CreateObject();

    if (ngx_ai_json_add_ref(b, "type", "document") != NGX_OK
        || ngx_ai_json_add(b, "source",
                           ngx_ai_anthropic_base64_source(pool, &type, &data))
           != NGX_OK)
    {
        cJSON_Delete(b);
        return NGX_ERROR;
    }

    *block = b;

    return NGX_OK;
}


/* {"type":"base64","media_type":...,"data":...}; data ends the string */

static cJSON *
ngx_ai_anthropic_base64_source(ngx_pool_t *pool, ngx_str_t *type,
    ngx_str_t *data)
{
    u_char  *mt;
    cJSON   *source;

    mt = ngx_pnalloc(pool, type->len + 1);
    if (mt == NULL) {
        return NULL;
    }

    *ngx_cpymem(mt, type->data, type->len) = '\0';

    source = cJSON_CreateObject();

    if (ngx_ai_json_add_ref(source, "type", "base64") != NGX_OK
        || ngx_ai_json_add_ref(source, "media_type", (char *) mt) != NGX_OK
        || ngx_ai_json_add_ref(source, "data", (char *) data->data)
           != NGX_OK)
    {
        cJSON_Delete(source);
        return NULL;
    }

    return source;
}


/* assistant "tool_calls" -> tool_use blocks */

static ngx_int_t
ngx_ai_anthropic_tool_calls(ngx_ai_anthropic_conv_t *cv, cJSON *calls)
{
    cJSON  *call, *id, *fn;

    cJSON_ArrayForEach(call, calls) {

        id = ngx_ai_get(call, "id");
        fn = ngx_ai_get(call, "function");

        if (!cJSON_IsString(id)) {
            continue;
        }

        if (ngx_ai_anthropic_use(cv, id->valuestring, ngx_ai_get(fn, "name"),
                                 ngx_ai_get(fn, "arguments"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* one call -> a tool_use block; a call without a name is left out */

static ngx_int_t
ngx_ai_anthropic_use(ngx_ai_anthropic_conv_t *cv, const char *id,
    cJSON *name, cJSON *args)
{
    cJSON  *block;

    if (id == NULL) {
        return NGX_ERROR;
    }

    if (!cJSON_IsString(name)) {
        return NGX_OK;
    }

    block = cJSON_CreateObject();

    if (ngx_ai_json_add_ref(block, "type", "tool_use") != NGX_OK
        || ngx_ai_json_add_ref(block, "id", id) != NGX_OK
        || ngx_ai_json_add_ref(block, "name", name->valuestring) != NGX_OK
        || ngx_ai_json_add(block, "input", ngx_ai_json_parse_args(
                               cJSON_IsString(args) ? args->valuestring
                                                    : NULL))
           != NGX_OK)
    {
        cJSON_Delete(block);
        return NGX_ERROR;
    }

    return ngx_ai_anthropic_add(cv, "assistant", block, 0);
}


/*
 * The legacy "function_call" of messages[i] has no id: the tool_use
 * block gets "call_fn_<i>", and the "function" message that answers it
 * (the next one, ngx_ai_anthropic_function()) the same.
 */

static char *
ngx_ai_anthropic_legacy_id(ngx_pool_t *pool, ngx_uint_t i)
{
    ngx_ai_buf_t  b;

    if (ngx_ai_buf_init(&b, pool, 32) != NGX_OK
        || ngx_ai_buf_append_str(&b, "call_fn_") != NGX_OK
        || ngx_ai_buf_append_uint(&b, i) != NGX_OK)
    {
        return NULL;
    }

    return ngx_ai_buf_cstr(&b);
}


/*
 * A legacy "function" message -> the tool_result of the latest earlier
 * assistant "function_call"; with none before it, user text.
 */

static ngx_int_t
ngx_ai_anthropic_function(ngx_pool_t *pool, ngx_ai_anthropic_conv_t *cv,
    cJSON *messages, cJSON *msg)
{
    char        *s;
    cJSON       *m, *id;
    ngx_int_t    rc;
    ngx_uint_t   i, found;

    found = 0;
    i = 0;

    for (m = messages->child; m && m != msg; m = m->next, i++) {
        if (cJSON_IsObject(ngx_ai_get(m, "function_call"))
            && ngx_ai_is(ngx_ai_get(m, "role"), "assistant"))
        {
            found = i + 1;
        }
    }

    if (!found) {
        return ngx_ai_anthropic_content(pool, cv, "user",
                                        ngx_ai_get(msg, "content"));
    }

    s = ngx_ai_anthropic_legacy_id(pool, found - 1);
    if (s == NULL) {
        return NGX_ERROR;
    }

    id = cJSON_CreateStringReference(s);
    if (id == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_ai_anthropic_tool_result(pool, cv, msg, id);

    cJSON_Delete(id);

    return rc;
}


/* a "tool" message -> a tool_result block in a user turn */

static ngx_int_t
ngx_ai_anthropic_tool_result(ngx_pool_t *pool, ngx_ai_anthropic_conv_t *cv,
    cJSON *msg, cJSON *id)
{
    char          *s;
    cJSON         *block;
    ngx_ai_buf_t   text;

    if (!cJSON_IsString(id)) {
        /* without an id it cannot be a tool_result: keep it as text */
        return ngx_ai_anthropic_content(pool, cv, "user",
                                        ngx_ai_get(msg, "content"));
    }

    if (ngx_ai_buf_init(&text, pool, 256) != NGX_OK
        || ngx_ai_content_text(ngx_ai_get(msg, "content"), &text, "\n")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    block = cJSON_CreateObject();

    if (ngx_ai_json_add_ref(block, "type", "tool_result") != NGX_OK
        || ngx_ai_json_add_ref(block, "tool_use_id", id->valuestring)
           != NGX_OK)
    {
        cJSON_Delete(block);
        return NGX_ERROR;
    }

    if (text.len) {
        s = ngx_ai_buf_cstr(&text);

        if (s == NULL || ngx_ai_json_add_ref(block, "content", s) != NGX_OK) {
            cJSON_Delete(block);
            return NGX_ERROR;
        }
    }

    return ngx_ai_anthropic_add(cv, "user", block, 1);
}


/* sampling, stop, stream, tools, user */

static ngx_int_t
ngx_ai_anthropic_options(ngx_ai_chat_request_t *req, cJSON *root)
{
    cJSON   *src, *item, *array, *meta;
    double   t;

    src = req->json;

    item = ngx_ai_get(src, "stop");

    if (cJSON_IsString(item) && item->valuestring[0] != '\0') {
        array = cJSON_CreateArray();

        if (ngx_ai_json_add(root, "stop_sequences", array) != NGX_OK
            || ngx_ai_json_add_ref(array, NULL, item->valuestring) != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (cJSON_IsArray(item) && cJSON_GetArraySize(item) > 0) {
        if (!cJSON_AddItemReferenceToObject(root, "stop_sequences", item)) {
            return NGX_ERROR;
        }
    }

    /*
     * Anthropic's temperature is 0..1: OpenAI's 1..2 is sent as 1.  Recent
     * Claude models refuse temperature and top_p together; temperature
     * wins, as Anthropic advises altering only one of them.
     */

    item = ngx_ai_get(src, "temperature");

    if (cJSON_IsNumber(item)) {
        t = item->valuedouble > 1.0 ? 1.0 : item->valuedouble;

        if (ngx_ai_json_add(root, "temperature", cJSON_CreateNumber(t))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        item = ngx_ai_get(src, "top_p");

        if (cJSON_IsNumber(item)
            && ngx_ai_json_add(root, "top_p",
                               cJSON_CreateNumber(item->valuedouble))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (req->stream
        && ngx_ai_json_add(root, "stream", cJSON_CreateTrue()) != NGX_OK)
    {
        return NGX_ERROR;
    }

    item = ngx_ai_get(src, "user");

    if (cJSON_IsString(item) && item->valuestring[0] != '\0') {
        meta = cJSON_CreateObject();

        if (ngx_ai_json_add(root, "metadata", meta) != NGX_OK
            || ngx_ai_json_add_ref(meta, "user_id", item->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_ai_anthropic_tools(src, root);
}


/* "tools", "tool_choice", "parallel_tool_calls" */

static ngx_int_t
ngx_ai_anthropic_tools(cJSON *src, cJSON *root)
{
    cJSON       *tools, *tool, *type, *fn, *name, *desc, *out, *t;
    cJSON       *choice, *tc, *parallel;
    ngx_uint_t   legacy;

    tools = ngx_ai_get(src, "tools");
    legacy = (cJSON_GetArraySize(tools) == 0);

    if (legacy) {
        tools = ngx_ai_get(src, "functions");      /* the legacy form */
    }

    out = NULL;

    cJSON_ArrayForEach(tool, tools) {

        type = legacy ? NULL : ngx_ai_get(tool, "type");
        fn = legacy ? tool : ngx_ai_get(tool, "function");
        name = ngx_ai_get(fn, "name");

        if (!cJSON_IsString(name) || (type && !ngx_ai_is(type, "function"))) {
            continue;
        }

        if (out == NULL) {
            out = cJSON_CreateArray();
            if (ngx_ai_json_add(root, "tools", out) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        t = cJSON_CreateObject();
        if (ngx_ai_json_add(out, NULL, t) != NGX_OK
            || ngx_ai_json_add_ref(t, "name", name->valuestring) != NGX_OK)
        {
            return NGX_ERROR;
        }

        desc = ngx_ai_get(fn, "description");

        if (cJSON_IsString(desc)
            && ngx_ai_json_add_ref(t, "description", desc->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* input_schema is required, also of a function without
         * parameters */

        if (ngx_ai_json_tool_schema(t, "input_schema", fn) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (out == NULL) {
        return NGX_OK;                  /* tool_choice needs tools */
    }

    choice = ngx_ai_get(src, legacy ? "function_call" : "tool_choice");
    parallel = ngx_ai_get(src, "parallel_tool_calls");

    tc = cJSON_CreateObject();
    if (ngx_ai_json_add(root, "tool_choice", tc) != NGX_OK) {
        return NGX_ERROR;
    }

    name = legacy ? ngx_ai_get(choice, "name")
                  : ngx_ai_get(ngx_ai_get(choice, "function"), "name");

    if (ngx_ai_is(choice, "none")) {
        return ngx_ai_json_add_ref(tc, "type", "none");
    }

    if (ngx_ai_is(choice, "required")) {
        if (ngx_ai_json_add_ref(tc, "type", "any") != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (cJSON_IsObject(choice) && cJSON_IsString(name)) {
        if (ngx_ai_json_add_ref(tc, "type", "tool") != NGX_OK
            || ngx_ai_json_add_ref(tc, "name", name->valuestring) != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_json_add_ref(tc, "type", "auto") != NGX_OK) {
        return NGX_ERROR;
    }

    if (cJSON_IsFalse(parallel)
        && ngx_ai_json_add(tc, "disable_parallel_tool_use",
                           cJSON_CreateTrue())
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* response */

static ngx_int_t
ngx_ai_anthropic_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    char                      *args;
    const char                *finish;
    cJSON                     *root, *content, *block, *type, *text, *id;
    cJSON                     *name, *input, *usage;
    ngx_int_t                  rc;
    ngx_str_t                  sid, sname, sargs, msg_id, calls;
    ngx_ai_buf_t               b, tc;
    ngx_ai_anthropic_usage_t   au;

    ngx_memzero(out, sizeof(ngx_ai_response_t));

    root = ngx_ai_json_parse(pool, body, len);
    content = ngx_ai_get(root, "content");

    if (!cJSON_IsObject(root) || !cJSON_IsArray(content)) {
        ngx_ai_error_set(err, 502, "upstream_error", NULL,
                         "invalid_response",
                         "the provider's answer is not a message");
        return NGX_DECLINED;
    }

    if (ngx_ai_buf_init(&b, pool, 256) != NGX_OK
        || ngx_ai_buf_init(&tc, pool, 64) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(block, content) {

        type = ngx_ai_get(block, "type");

        if (ngx_ai_is(type, "text")) {
            text = ngx_ai_get(block, "text");

            if (cJSON_IsString(text)
                && ngx_ai_buf_append_str(&b, text->valuestring) != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (!ngx_ai_is(type, "tool_use")) {
            continue;               /* thinking, server tools: not OpenAI */
        }

        id = ngx_ai_get(block, "id");
        name = ngx_ai_get(block, "name");
        input = ngx_ai_get(block, "input");

        if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
            continue;
        }

        args = input ? cJSON_PrintUnformatted(input) : NULL;

        sid.data = (u_char *) id->valuestring;
        sid.len = ngx_strlen(id->valuestring);
        sname.data = (u_char *) name->valuestring;
        sname.len = ngx_strlen(name->valuestring);

        if (args) {
            sargs.data = (u_char *) args;
            sargs.len = ngx_strlen(args);

        } else {
            ngx_str_set(&sargs, "{}");
        }

        rc = ngx_ai_buf_append(&tc, tc.len ? "," : "[", 1);

        if (rc == NGX_OK) {
            rc = ngx_ai_buf_append_tool_call(&tc, &sid, &sname, &sargs);
        }

        cJSON_free(args);

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (tc.len && ngx_ai_buf_append(&tc, "]", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    out->content.data = b.data;
    out->content.len = b.len;

    finish = ngx_ai_anthropic_finish(ngx_ai_get(root, "stop_reason"));

    if (tc.len && ngx_strcmp(finish, "stop") == 0) {
        finish = "tool_calls";
    }

    out->finish_reason.data = (u_char *) finish;
    out->finish_reason.len = ngx_strlen(finish);

    usage = ngx_ai_get(root, "usage");

    if (cJSON_IsObject(usage)) {
        ngx_memzero(&au, sizeof(ngx_ai_anthropic_usage_t));
        ngx_ai_anthropic_usage_read(usage, &au);
        ngx_ai_anthropic_usage_set(&au, &out->usage);
    }

    if (ngx_ai_chat_id(pool, ngx_ai_get(root, "id"), req->created,
                            &msg_id)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    calls.data = tc.data;
    calls.len = tc.len;

    return ngx_ai_chat_completion_render(pool, req, &msg_id, &calls, out);
}


static void
ngx_ai_anthropic_usage_read(cJSON *usage, ngx_ai_anthropic_usage_t *au)
{
    (void) ngx_ai_json_get_uint(usage, "input_tokens", &au->input);
    (void) ngx_ai_json_get_uint(usage, "output_tokens", &au->output);
    (void) ngx_ai_json_get_uint(usage, "cache_creation_input_tokens",
                                &au->cache_creation);
    (void) ngx_ai_json_get_uint(usage, "cache_read_input_tokens",
                                &au->cache_read);
}


/* input_tokens excludes cached tokens; OpenAI's prompt_tokens has them */

static void
ngx_ai_anthropic_usage_set(ngx_ai_anthropic_usage_t *au, ngx_ai_usage_t *u)
{
    u->prompt_tokens = au->input + au->cache_creation + au->cache_read;
    u->completion_tokens = au->output;
    u->cached_tokens = au->cache_read;
    u->cache_creation_tokens = au->cache_creation;
    u->reasoning_tokens = 0;
    u->known = 1;
}


static const char *
ngx_ai_anthropic_finish(cJSON *reason)
{
    if (!cJSON_IsString(reason)) {
        return "stop";
    }

    if (ngx_strcmp(reason->valuestring, "max_tokens") == 0
        || ngx_strcmp(reason->valuestring, "model_context_window_exceeded")
           == 0)
    {
        return "length";
    }

    if (ngx_strcmp(reason->valuestring, "tool_use") == 0) {
        return "tool_calls";
    }

    if (ngx_strcmp(reason->valuestring, "refusal") == 0) {
        return "content_filter";
    }

    /* end_turn, stop_sequence, pause_turn */

    return "stop";
}


/* "chatcmpl-" + the message id, or one made from the time */



/* errors */

static void
ngx_ai_anthropic_error(ngx_pool_t *pool, ngx_uint_t status, u_char *body,
    size_t len, ngx_ai_error_t *err)
{
    cJSON       *root, *error, *message, *type;
    const char  *t;

    /* 529 is Anthropic's "overloaded": to clients, a 503 */

    if (status == 529) {
        status = 503;
    }

    ngx_ai_error_set(err, status, ngx_ai_error_type_by_status(status), NULL,
                     NULL, "the provider answered with an error");

    root = ngx_ai_json_parse(pool, body, len);
    error = ngx_ai_get(root, "error");

    if (!cJSON_IsObject(error)) {
        return;
    }

    message = ngx_ai_get(error, "message");
    type = ngx_ai_get(error, "type");

    if (cJSON_IsString(message) && message->valuestring[0] != '\0') {
        err->message.data = (u_char *) message->valuestring;
        err->message.len = ngx_strlen(message->valuestring);
    }

    if (!cJSON_IsString(type)) {
        return;
    }

    t = type->valuestring;
    err->code = t;

    if (ngx_strcmp(t, "invalid_request_error") == 0
        || ngx_strcmp(t, "request_too_large") == 0)
    {
        err->type = "invalid_request_error";

    } else if (ngx_strcmp(t, "authentication_error") == 0) {
        err->type = "authentication_error";

    } else if (ngx_strcmp(t, "permission_error") == 0) {
        err->type = "permission_error";

    } else if (ngx_strcmp(t, "not_found_error") == 0) {
        err->type = "not_found_error";

    } else if (ngx_strcmp(t, "rate_limit_error") == 0) {
        err->type = "rate_limit_exceeded";

    } else if (ngx_strcmp(t, "billing_error") == 0) {
        err->type = "insufficient_quota";

    } else if (ngx_strcmp(t, "api_error") == 0
               || ngx_strcmp(t, "overloaded_error") == 0
               || ngx_strcmp(t, "timeout_error") == 0)
    {
        err->type = "server_error";
    }
}


/* streams */

static ngx_int_t
ngx_ai_anthropic_stream_event(ngx_ai_stream_t *st, ngx_ai_sse_event_t *ev)
{
    cJSON                      *root, *type, *msg, *delta, *error, *usage;
    ngx_int_t                   rc;
    ngx_str_t                   t, id;
    const char                 *finish;
    ngx_ai_anthropic_stream_t  *as;

    st->events++;

    as = st->data;

    if (as == NULL) {
        as = ngx_pcalloc(st->pool, sizeof(ngx_ai_anthropic_stream_t));
        if (as == NULL) {
            return NGX_ERROR;
        }

        st->data = as;
    }

    if (st->done
        || (ev->event.len == 4 && ngx_strncmp(ev->event.data, "ping", 4) == 0))
    {
        return NGX_OK;
    }

    root = ngx_ai_json_scratch(&st->scratch, st->pool, &ev->data);

    if (!cJSON_IsObject(root)) {
        ngx_ai_json_scratch_done(st->scratch, root);
        (void) ngx_ai_stream_fail(st, NULL, "the provider sent an event "
                                            "that is not JSON");
        return NGX_DECLINED;
    }

    type = ngx_ai_get(root, "type");

    if (cJSON_IsString(type)) {
        t.data = (u_char *) type->valuestring;
        t.len = ngx_strlen(type->valuestring);

    } else {
        t = ev->event;
    }

    rc = NGX_OK;

#define ngx_ai_type_is(s)                                                     \
    (t.len == sizeof(s) - 1 && ngx_strncmp(t.data, s, sizeof(s) - 1) == 0)

    if (ngx_ai_type_is("content_block_delta")) {
        rc = ngx_ai_anthropic_stream_delta(st, as, root);

    } else if (ngx_ai_type_is("content_block_start")) {
        rc = ngx_ai_anthropic_stream_block(st, as, root);

    } else if (ngx_ai_type_is("content_block_stop")) {

        /* a tool called with no arguments still gets a JSON object */

        if (as->block == NGX_AI_ANTHROPIC_BLOCK_TOOL && !as->args_sent) {
            ngx_str_set(&t, "{}");
            rc = ngx_ai_stream_tool_call(st, as->tool, NULL, NULL, &t);
        }

        as->block = NGX_AI_ANTHROPIC_BLOCK_NONE;

    } else if (ngx_ai_type_is("message_start")) {
        msg = ngx_ai_get(root, "message");
        usage = ngx_ai_get(msg, "usage");

        if (cJSON_IsObject(usage)) {
            ngx_ai_anthropic_usage_read(usage, &as->usage);
            ngx_ai_anthropic_usage_set(&as->usage, &st->usage);
        }

        type = ngx_ai_get(msg, "id");
        id.len = cJSON_IsString(type) ? ngx_strlen(type->valuestring) : 0;
        id.data = id.len ? (u_char *) type->valuestring : NULL;

        rc = ngx_ai_stream_start(st, id.data, id.len);

    } else if (ngx_ai_type_is("message_delta")) {
        delta = ngx_ai_get(root, "delta");
        usage = ngx_ai_get(root, "usage");

        if (cJSON_IsString(ngx_ai_get(delta, "stop_reason"))) {
            as->finish = ngx_ai_anthropic_finish(ngx_ai_get(delta,
                                                            "stop_reason"));
        }

        /* output_tokens is cumulative; newer APIs repeat input fields */

        if (cJSON_IsObject(usage)) {
            ngx_ai_anthropic_usage_read(usage, &as->usage);
            ngx_ai_anthropic_usage_set(&as->usage, &st->usage);
        }

    } else if (ngx_ai_type_is("message_stop")) {
        finish = as->finish ? as->finish : "stop";

        /* as in whole answers: a message with tool_use blocks */

        if (as->tools && ngx_strcmp(finish, "stop") == 0) {
            finish = "tool_calls";
        }

        rc = ngx_ai_stream_finish(st, finish);

    } else if (ngx_ai_type_is("error")) {
        error = ngx_ai_get(root, "error");
        msg = ngx_ai_get(error, "message");

        rc = ngx_ai_stream_fail(st, cJSON_IsString(msg) ? msg->valuestring
                                                        : NULL,
                                "the provider sent an error event");
        if (rc == NGX_OK) {
            rc = NGX_DECLINED;
        }
    }

    /* ping and unknown events are ignored */

#undef ngx_ai_type_is

    ngx_ai_json_scratch_done(st->scratch, root);

    return rc;
}


static ngx_int_t
ngx_ai_anthropic_stream_block(ngx_ai_stream_t *st,
    ngx_ai_anthropic_stream_t *as, cJSON *root)
{
    char       *args;
    cJSON      *block, *type, *text, *id, *name, *input;
    ngx_int_t   rc;
    ngx_str_t   sid, sname, sargs;

    block = ngx_ai_get(root, "content_block");
    type = ngx_ai_get(block, "type");

    if (ngx_ai_is(type, "text")) {
        as->block = NGX_AI_ANTHROPIC_BLOCK_TEXT;
        text = ngx_ai_get(block, "text");

        if (ngx_ai_stream_start(st, NULL, 0) != NGX_OK) {
            return NGX_ERROR;
        }

        if (!cJSON_IsString(text)) {
            return NGX_OK;
        }

        return ngx_ai_stream_content(st, (u_char *) text->valuestring,
                                     ngx_strlen(text->valuestring));
    }

    id = ngx_ai_get(block, "id");
    name = ngx_ai_get(block, "name");

    if (!ngx_ai_is(type, "tool_use") || !cJSON_IsString(id)
        || !cJSON_IsString(name))
    {
        /* thinking, redacted_thinking, server tool blocks */
        as->block = NGX_AI_ANTHROPIC_BLOCK_OTHER;
        return NGX_OK;
    }

    as->block = NGX_AI_ANTHROPIC_BLOCK_TOOL;
    as->tool = as->tools++;
    as->args_sent = 0;

    sid.data = (u_char *) id->valuestring;
    sid.len = ngx_strlen(id->valuestring);
    sname.data = (u_char *) name->valuestring;
    sname.len = ngx_strlen(name->valuestring);
    ngx_str_set(&sargs, "");

    rc = ngx_ai_stream_tool_call(st, as->tool, &sid, &sname, &sargs);

    if (rc != NGX_OK) {
        return rc;
    }

    /* the input is streamed as input_json_delta; a non-empty one here is
     * sent whole */

    input = ngx_ai_get(block, "input");

    if (!cJSON_IsObject(input) || input->child == NULL) {
        return NGX_OK;
    }

    args = cJSON_PrintUnformatted(input);
    if (args == NULL) {
        return NGX_ERROR;
    }

    sargs.data = (u_char *) args;
    sargs.len = ngx_strlen(args);

    rc = ngx_ai_stream_tool_call(st, as->tool, NULL, NULL, &sargs);
    as->args_sent = 1;

    cJSON_free(args);

    return rc;
}


static ngx_int_t
ngx_ai_anthropic_stream_delta(ngx_ai_stream_t *st,
    ngx_ai_anthropic_stream_t *as, cJSON *root)
{
    cJSON      *delta, *type, *s;
    ngx_str_t   args;

    delta = ngx_ai_get(root, "delta");
    type = ngx_ai_get(delta, "type");

    if (ngx_ai_is(type, "text_delta")) {
        s = ngx_ai_get(delta, "text");

        if (!cJSON_IsString(s)) {
            return NGX_OK;
        }

        return ngx_ai_stream_content(st, (u_char *) s->valuestring,
                                     ngx_strlen(s->valuestring));
    }

    if (ngx_ai_is(type, "input_json_delta")
        && as->block == NGX_AI_ANTHROPIC_BLOCK_TOOL)
    {
        s = ngx_ai_get(delta, "partial_json");

        if (!cJSON_IsString(s) || s->valuestring[0] == '\0') {
            return NGX_OK;
        }

        args.data = (u_char *) s->valuestring;
        args.len = ngx_strlen(s->valuestring);
        as->args_sent = 1;

        return ngx_ai_stream_tool_call(st, as->tool, NULL, NULL, &args);
    }

    /* thinking_delta, signature_delta, citations_delta */

    return NGX_OK;
}


/*
 * POST /v1/messages/count_tokens: the conversation as a Messages request
 * with only what the endpoint takes (model, system, messages, tools,
 * tool_choice); it refuses max_tokens, sampling and stream.
 */

static ngx_int_t
ngx_ai_anthropic_count_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out, ngx_ai_error_t *err)
{
    cJSON      *root;
    ngx_int_t   rc;

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_ai_json_add_ref(root, "model",
                            (char *) req->upstream_model.data) == NGX_OK
        && ngx_ai_anthropic_messages(pool, req, root) == NGX_OK
        && ngx_ai_anthropic_tools(req->json, root) == NGX_OK)
    {
        rc = ngx_ai_json_print(pool, root, &out->body);
    }

    cJSON_Delete(root);

    ngx_str_set(&out->path, "/v1/messages/count_tokens");

    return rc;
}


static ngx_int_t
ngx_ai_anthropic_count_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    cJSON     *root;
    uint64_t   tokens;

    root = ngx_ai_json_parse(pool, body, len);

    if (ngx_ai_json_get_uint(root, "input_tokens", &tokens) != NGX_OK) {
        return ngx_ai_embed_invalid_answer(err, "the provider's answer has "
                                           "no input_tokens");
    }

    return ngx_ai_count_render(pool, tokens, out);
}
