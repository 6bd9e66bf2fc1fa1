
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * type=bedrock: Amazon Bedrock's Converse and ConverseStream APIs
 * (POST /model/{modelId}/converse, /converse-stream).  OpenAI chat
 * requests become "messages" of content blocks ({text}, {image},
 * {toolUse}, {toolResult}) with "system", "inferenceConfig" and
 * "toolConfig"; answers, errors and the event stream's events come back
 * as OpenAI chat.completion objects and chunks.  The call is signed by
 * the attempt layer (ngx_ai_gateway_sigv4.c); docs/providers.md has the
 * tables.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


/* the conversation being built: appends merge consecutive same roles */
typedef struct {
    cJSON                      *messages;
    cJSON                      *content;   /* blocks of the last message */
    const char                 *role;
} ngx_ai_bedrock_conv_t;


/* per-stream state, in st->data */
typedef struct {
    const char                 *finish;    /* mapped stopReason */
    ngx_uint_t                  tools;     /* tool calls started */
    ngx_uint_t                  tool;      /* OpenAI index of the open one */
    int                         block;     /* contentBlockIndex of it */
    unsigned                    in_tool:1;
    unsigned                    args_sent:1;
    unsigned                    stopped:1; /* messageStop seen */
} ngx_ai_bedrock_stream_t;


static ngx_uint_t ngx_ai_bedrock_model_valid(const u_char *name,
    size_t len);
static ngx_int_t ngx_ai_bedrock_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out);
static ngx_int_t ngx_ai_bedrock_messages(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, cJSON *root);
static ngx_int_t ngx_ai_bedrock_add(ngx_ai_bedrock_conv_t *cv,
    const char *role, cJSON *block);
static ngx_int_t ngx_ai_bedrock_content(ngx_pool_t *pool,
    ngx_ai_bedrock_conv_t *cv, const char *role, cJSON *content);
static ngx_int_t ngx_ai_bedrock_image(ngx_pool_t *pool, cJSON *part,
    cJSON **block);
static ngx_int_t ngx_ai_bedrock_tool_calls(ngx_ai_bedrock_conv_t *cv,
    cJSON *calls);
static ngx_int_t ngx_ai_bedrock_tool_result(ngx_pool_t *pool,
    ngx_ai_bedrock_conv_t *cv, cJSON *msg);
static ngx_int_t ngx_ai_bedrock_config(ngx_ai_chat_request_t *req,
    cJSON *root);
static ngx_int_t ngx_ai_bedrock_tools(cJSON *src, cJSON *root);
static ngx_int_t ngx_ai_bedrock_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_bedrock_tool_use(ngx_ai_buf_t *tc, cJSON *use);
static void ngx_ai_bedrock_usage(cJSON *usage, ngx_ai_usage_t *u);
static const char *ngx_ai_bedrock_finish(cJSON *reason);
static void ngx_ai_bedrock_error(ngx_pool_t *pool, ngx_uint_t status,
    u_char *body, size_t len, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_bedrock_stream_event(ngx_ai_stream_t *st,
    ngx_ai_sse_event_t *ev);
static ngx_int_t ngx_ai_bedrock_stream_start(ngx_ai_stream_t *st,
    ngx_ai_bedrock_stream_t *bs, cJSON *root);
static ngx_int_t ngx_ai_bedrock_stream_delta(ngx_ai_stream_t *st,
    ngx_ai_bedrock_stream_t *bs, cJSON *root);
static ngx_int_t ngx_ai_bedrock_path(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, const char *op, ngx_str_t *out);
static ngx_uint_t ngx_ai_bedrock_embed_family(ngx_str_t *model);
static ngx_int_t ngx_ai_bedrock_embed_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_bedrock_embed_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);
static cJSON *ngx_ai_bedrock_cohere_vectors(cJSON *root);


#define NGX_AI_BEDROCK_TITAN   1
#define NGX_AI_BEDROCK_COHERE  2


ngx_ai_translator_t  ngx_ai_bedrock_translator = {
    ngx_string("bedrock"),
    NGX_AI_PROVIDER_BEDROCK,
    ngx_ai_bedrock_request,
    ngx_ai_bedrock_response,
    ngx_ai_bedrock_error,
    ngx_ai_bedrock_stream_event,
    ngx_ai_bedrock_model_valid,
    ngx_ai_bedrock_embed_request,          /* InvokeModel */
    ngx_ai_bedrock_embed_response,
    NULL,                                  /* no count_tokens */
    NULL,
    ngx_ai_check_one_answer,
    0
};


#define ngx_ai_get(obj, name)  cJSON_GetObjectItemCaseSensitive(obj, name)

#define ngx_ai_is(item, s)                                                    \
    (cJSON_IsString(item) && ngx_strcmp((item)->valuestring, s) == 0)


/*
 * A model id ("anthropic.claude-3-7-sonnet-20250219-v1:0") or an
 * inference profile or model ARN ("arn:aws:bedrock:us-east-1:123:
 * inference-profile/us.anthropic..."): printable ASCII without blanks,
 * quotes, "?", "#" or "%"; it is escaped into the path.
 */

static ngx_uint_t
ngx_ai_bedrock_model_valid(const u_char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_AI_MAX_MODEL_LEN) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (name[i] <= 0x20 || name[i] >= 0x7f || name[i] == '"'
            || name[i] == '?' || name[i] == '#' || name[i] == '%'
            || name[i] == '\\')
        {
            return 0;
        }
    }

    return 1;
}


/* request */

static ngx_int_t
ngx_ai_bedrock_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out)
{
    cJSON      *root;
    ngx_int_t   rc;

    if (ngx_ai_bedrock_path(pool, req, req->stream ? "/converse-stream"
                                                   : "/converse",
                            &out->path)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the new tree references the client's strings, as Anthropic's does */

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_ai_bedrock_messages(pool, req, root) != NGX_OK
        || ngx_ai_bedrock_config(req, root) != NGX_OK
        || ngx_ai_bedrock_tools(req->json, root) != NGX_OK)
    {
        goto done;
    }

    rc = ngx_ai_json_print(pool, root, &out->body);

done:

    cJSON_Delete(root);

    return rc;
}


/* /model/{modelId escaped once}/OP */

static ngx_int_t
ngx_ai_bedrock_path(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    const char *op, ngx_str_t *out)
{
    ngx_ai_buf_t  path;

    if (ngx_ai_buf_init(&path, pool, 64 + 3 * req->upstream_model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&path, "/model/") != NGX_OK
        || ngx_ai_uri_escape(&path, req->upstream_model.data,
                             req->upstream_model.len, 0)
           != NGX_OK
        || ngx_ai_buf_append_str(&path, op) != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->data = path.data;
    out->len = path.len;

    return NGX_OK;
}


/* "system" and "messages" */

static ngx_int_t
ngx_ai_bedrock_messages(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    cJSON *root)
{
    char                   *s;
    cJSON                  *msg, *role, *content, *system;
    const char             *r;
    ngx_ai_buf_t            sys;
    ngx_ai_bedrock_conv_t   cv;

    if (ngx_ai_buf_init(&sys, pool, 256) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&cv, sizeof(ngx_ai_bedrock_conv_t));

    cv.messages = cJSON_CreateArray();
    if (ngx_ai_json_add(root, "messages", cv.messages) != NGX_OK) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(msg, ngx_ai_get(req->json, "messages")) {

        role = ngx_ai_get(msg, "role");
        content = ngx_ai_get(msg, "content");

        if (!cJSON_IsString(role)) {
            continue;
        }

        r = role->valuestring;

        if (ngx_strcmp(r, "system") == 0 || ngx_strcmp(r, "developer") == 0)
        {
            if (ngx_ai_content_text(content, &sys, "\n\n") != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(r, "assistant") == 0) {
            if (ngx_ai_bedrock_content(pool, &cv, "assistant", content)
                != NGX_OK
                || ngx_ai_bedrock_tool_calls(&cv,
                                             ngx_ai_get(msg, "tool_calls"))
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(r, "tool") == 0) {
            if (ngx_ai_bedrock_tool_result(pool, &cv, msg) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_ai_bedrock_content(pool, &cv, "user", content) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (sys.len == 0) {
        return NGX_OK;
    }

    s = ngx_ai_buf_cstr(&sys);
    if (s == NULL) {
        return NGX_ERROR;
    }

    system = cJSON_CreateArray();

    if (ngx_ai_json_add(root, "system", system) != NGX_OK
        || ngx_ai_json_add(system, NULL, ngx_ai_json_text_object(s)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_bedrock_add(ngx_ai_bedrock_conv_t *cv, const char *role,
    cJSON *block)
{
    if (block == NULL) {
        return NGX_ERROR;
    }

    if (ngx_ai_json_turn(cv->messages, "content", role, &cv->role,
                         &cv->content)
        == NGX_ERROR)
    {
        cJSON_Delete(block);
        return NGX_ERROR;
    }

    return ngx_ai_json_add(cv->content, NULL, block);
}


/* a message's "content" (string or parts) -> blocks */

static ngx_int_t
ngx_ai_bedrock_content(ngx_pool_t *pool, ngx_ai_bedrock_conv_t *cv,
    const char *role, cJSON *content)
{
    cJSON      *part, *type, *text, *block;
    ngx_int_t   rc;

    if (cJSON_IsString(content)) {
        if (content->valuestring[0] == '\0') {
            return NGX_OK;
        }

        return ngx_ai_bedrock_add(cv, role, ngx_ai_json_text_object(
                                                content->valuestring));
    }

    cJSON_ArrayForEach(part, content) {

        type = ngx_ai_get(part, "type");

        if (ngx_ai_is(type, "text") || ngx_ai_is(type, "refusal")) {
            text = ngx_ai_get(part, type->valuestring);

            if (!cJSON_IsString(text) || text->valuestring[0] == '\0') {
                continue;
            }

            block = ngx_ai_json_text_object(text->valuestring);
            rc = NGX_OK;

        } else if (ngx_ai_is(type, "image_url")) {
            rc = ngx_ai_bedrock_image(pool, part, &block);

        } else {
            continue;                   /* audio, files: not carried */
        }

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc != NGX_OK || ngx_ai_bedrock_add(cv, role, block) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A base64 data URL of PNG, JPEG, GIF or WebP -> {"image": {"format",
 * "source": {"bytes"}}}; Bedrock takes no image by URL: NGX_DECLINED,
 * the part is dropped.
 */

static ngx_int_t
ngx_ai_bedrock_image(ngx_pool_t *pool, cJSON *part, cJSON **block)
{
    char        *data, *format;
    cJSON       *url, *image, *source;
    ngx_str_t    type, b64;

    url = ngx_ai_get(ngx_ai_get(part, "image_url"), "url");

    if (!cJSON_IsString(url)
        || ngx_ai_data_url_parse((u_char *) url->valuestring,
                                 ngx_strlen(url->valuestring), &type, &b64)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

#define ngx_ai_type_is(s)                                                     \
    (type.len == sizeof(s) - 1 && ngx_ai_strncaseeq(type.data, s,            \
                                                    sizeof(s) - 1))

    if (ngx_ai_type_is("image/png")) {
        format = "png";

    } else if (ngx_ai_type_is("image/jpeg") || ngx_ai_type_is("image/jpg")) {
        format = "jpeg";

    } else if (ngx_ai_type_is("image/gif")) {
        format = "gif";

    } else if (ngx_ai_type_is("image/webp")) {
        format = "webp";

    } else {
        return NGX_DECLINED;
    }

#undef ngx_ai_type_is

    /* the base64 text ends the URL: it is referenced, not copied */

    data = (char *) b64.data;

    if (b64.data + b64.len
        != (u_char *) url->valuestring + ngx_strlen(url->valuestring))
    {
        data = ngx_pnalloc(pool, b64.len + 1);
        if (data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(data, b64.data, b64.len);
        data[b64.len] = '\0';
    }

    *block = cJSON_CreateObject();
    image = cJSON_CreateObject();
    source = cJSON_CreateObject();

    if (ngx_ai_json_add(*block, "image", image) != NGX_OK
        || ngx_ai_json_add_ref(image, "format", format) != NGX_OK
        || ngx_ai_json_add(image, "source", source) != NGX_OK
        || ngx_ai_json_add_ref(source, "bytes", data) != NGX_OK)
    {
        cJSON_Delete(*block);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* an assistant's "tool_calls" -> toolUse blocks */

static ngx_int_t
ngx_ai_bedrock_tool_calls(ngx_ai_bedrock_conv_t *cv, cJSON *calls)
{
    cJSON  *call, *id, *fn, *name, *args, *block, *use;

    cJSON_ArrayForEach(call, calls) {

        id = ngx_ai_get(call, "id");
        fn = ngx_ai_get(call, "function");
        name = ngx_ai_get(fn, "name");
        args = ngx_ai_get(fn, "arguments");

        if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
            continue;
        }

        block = cJSON_CreateObject();
        use = cJSON_CreateObject();

        if (ngx_ai_json_add(block, "toolUse", use) != NGX_OK
            || ngx_ai_json_add_ref(use, "toolUseId", id->valuestring)
               != NGX_OK
            || ngx_ai_json_add_ref(use, "name", name->valuestring) != NGX_OK
            || ngx_ai_json_add(use, "input", ngx_ai_json_parse_args(
                                   cJSON_IsString(args) ? args->valuestring
                                                        : NULL))
               != NGX_OK)
        {
            cJSON_Delete(block);
            return NGX_ERROR;
        }

        if (ngx_ai_bedrock_add(cv, "assistant", block) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a "tool" message -> a toolResult block in a user turn */

static ngx_int_t
ngx_ai_bedrock_tool_result(ngx_pool_t *pool, ngx_ai_bedrock_conv_t *cv,
    cJSON *msg)
{
    char          *s;
    cJSON         *id, *block, *result, *content;
    ngx_ai_buf_t   text;

    id = ngx_ai_get(msg, "tool_call_id");

    if (!cJSON_IsString(id)) {
        return ngx_ai_bedrock_content(pool, cv, "user",
                                      ngx_ai_get(msg, "content"));
    }

    if (ngx_ai_buf_init(&text, pool, 256) != NGX_OK
        || ngx_ai_content_text(ngx_ai_get(msg, "content"), &text, "\n")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    s = ngx_ai_buf_cstr(&text);
    if (s == NULL) {
        return NGX_ERROR;
    }

    block = cJSON_CreateObject();
    result = cJSON_CreateObject();
    content = cJSON_CreateArray();

    if (ngx_ai_json_add(block, "toolResult", result) != NGX_OK
        || ngx_ai_json_add_ref(result, "toolUseId", id->valuestring)
           != NGX_OK
        || ngx_ai_json_add(result, "content", content) != NGX_OK
        || ngx_ai_json_add(content, NULL, ngx_ai_json_text_object(s)) != NGX_OK)
    {
        cJSON_Delete(block);
        return NGX_ERROR;
    }

    return ngx_ai_bedrock_add(cv, "user", block);
}


/* "inferenceConfig": maxTokens, temperature, topP, stopSequences */

static ngx_int_t
ngx_ai_bedrock_config(ngx_ai_chat_request_t *req, cJSON *root)
{
    cJSON      *cfg, *item, *array;
    ngx_int_t   max;

    cfg = cJSON_CreateObject();
    if (ngx_ai_json_add(root, "inferenceConfig", cfg) != NGX_OK) {
        return NGX_ERROR;
    }

    max = req->max_tokens > 0 ? req->max_tokens : req->default_max_tokens;

    if (max > 0
        && ngx_ai_json_add(cfg, "maxTokens", cJSON_CreateNumber(max))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    item = ngx_ai_get(req->json, "temperature");

    if (cJSON_IsNumber(item)
        && ngx_ai_json_add(cfg, "temperature",
                           cJSON_CreateNumber(item->valuedouble > 1.0
                                              ? 1.0 : item->valuedouble))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    item = ngx_ai_get(req->json, "top_p");

    if (cJSON_IsNumber(item)
        && ngx_ai_json_add(cfg, "topP",
                           cJSON_CreateNumber(item->valuedouble))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    item = ngx_ai_get(req->json, "stop");

    if (cJSON_IsString(item) && item->valuestring[0] != '\0') {
        array = cJSON_CreateArray();

        if (ngx_ai_json_add(cfg, "stopSequences", array) != NGX_OK
            || ngx_ai_json_add_ref(array, NULL, item->valuestring) != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (cJSON_IsArray(item) && cJSON_GetArraySize(item) > 0) {
        if (!cJSON_AddItemReferenceToObject(cfg, "stopSequences", item)) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * "toolConfig": {"tools": [{"toolSpec": {name, description, inputSchema:
 * {json}}}], "toolChoice": {"auto"|"any": {}} or {"tool": {name}}}.
 * Bedrock has no "none": the tools are sent (history may use them) and
 * the model chooses.
 */

static ngx_int_t
ngx_ai_bedrock_tools(cJSON *src, cJSON *root)
{
    cJSON  *tools, *tool, *fn, *name, *desc, *cfg, *out, *spec, *schema;
    cJSON  *choice, *tc, *named;

    tools = ngx_ai_get(src, "tools");
    cfg = NULL;
    out = NULL;

    cJSON_ArrayForEach(tool, tools) {

        fn = ngx_ai_get(tool, "function");
        name = ngx_ai_get(fn, "name");

        if (!ngx_ai_is(ngx_ai_get(tool, "type"), "function")
            || !cJSON_IsString(name))
        {
            continue;
        }

        if (cfg == NULL) {
            cfg = cJSON_CreateObject();
            out = cJSON_CreateArray();

            if (ngx_ai_json_add(root, "toolConfig", cfg) != NGX_OK
                || ngx_ai_json_add(cfg, "tools", out) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        tool = cJSON_CreateObject();
        spec = cJSON_CreateObject();
        schema = cJSON_CreateObject();

        if (ngx_ai_json_add(out, NULL, tool) != NGX_OK
            || ngx_ai_json_add(tool, "toolSpec", spec) != NGX_OK
            || ngx_ai_json_add_ref(spec, "name", name->valuestring) != NGX_OK)
        {
            cJSON_Delete(schema);
            return NGX_ERROR;
        }

        desc = ngx_ai_get(fn, "description");

        if (cJSON_IsString(desc) && desc->valuestring[0] != '\0'
            && ngx_ai_json_add_ref(spec, "description", desc->valuestring)
               != NGX_OK)
        {
            cJSON_Delete(schema);
            return NGX_ERROR;
        }

        if (ngx_ai_json_add(spec, "inputSchema", schema) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_ai_json_tool_schema(schema, "json", fn) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (cfg == NULL) {
        return NGX_OK;
    }

    choice = ngx_ai_get(src, "tool_choice");
    name = ngx_ai_get(ngx_ai_get(choice, "function"), "name");

    tc = cJSON_CreateObject();

    if (ngx_ai_is(choice, "required")) {
        if (ngx_ai_json_add(tc, "any", cJSON_CreateObject()) != NGX_OK) {
            cJSON_Delete(tc);
            return NGX_ERROR;
        }

    } else if (cJSON_IsObject(choice) && cJSON_IsString(name)) {
        named = cJSON_CreateObject();

        if (ngx_ai_json_add(tc, "tool", named) != NGX_OK
            || ngx_ai_json_add_ref(named, "name", name->valuestring)
               != NGX_OK)
        {
            cJSON_Delete(tc);
            return NGX_ERROR;
        }

    } else if (ngx_ai_json_add(tc, "auto", cJSON_CreateObject()) != NGX_OK) {
        cJSON_Delete(tc);
        return NGX_ERROR;
    }

    return ngx_ai_json_add(cfg, "toolChoice", tc);
}


/* response */

static ngx_int_t
ngx_ai_bedrock_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    cJSON         *root, *content, *block, *text, *use;
    ngx_str_t      msg_id, calls;
    const char    *finish;
    ngx_ai_buf_t   b, tc;

    ngx_memzero(out, sizeof(ngx_ai_response_t));

    root = ngx_ai_json_parse(pool, body, len);
    content = ngx_ai_get(ngx_ai_get(ngx_ai_get(root, "output"), "message"),
                         "content");

    if (!cJSON_IsObject(root) || !cJSON_IsArray(content)) {
        ngx_ai_error_set(err, 502, "upstream_error", NULL,
                         "invalid_response",
                         "the provider's answer is not a Converse answer");
        return NGX_DECLINED;
    }

    if (ngx_ai_buf_init(&b, pool, 256) != NGX_OK
        || ngx_ai_buf_init(&tc, pool, 64) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(block, content) {

        text = ngx_ai_get(block, "text");

        if (cJSON_IsString(text)) {
            if (ngx_ai_buf_append_str(&b, text->valuestring) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        use = ngx_ai_get(block, "toolUse");

        if (cJSON_IsObject(use) && ngx_ai_bedrock_tool_use(&tc, use)
                                   != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* reasoningContent, citations...: not OpenAI's */
    }

    if (tc.len && ngx_ai_buf_append(&tc, "]", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    out->content.data = b.data;
    out->content.len = b.len;

    finish = ngx_ai_bedrock_finish(ngx_ai_get(root, "stopReason"));

    if (tc.len && ngx_strcmp(finish, "stop") == 0) {
        finish = "tool_calls";
    }

    out->finish_reason.data = (u_char *) finish;
    out->finish_reason.len = ngx_strlen(finish);

    ngx_ai_bedrock_usage(ngx_ai_get(root, "usage"), &out->usage);

    /* Converse answers carry no id; the request id is a header */

    if (ngx_ai_chat_id(pool, NULL, req->created, &msg_id) != NGX_OK) {
        return NGX_ERROR;
    }

    calls.data = tc.data;
    calls.len = tc.len;

    return ngx_ai_chat_completion_render(pool, req, &msg_id, &calls, out);
}


static ngx_int_t
ngx_ai_bedrock_tool_use(ngx_ai_buf_t *tc, cJSON *use)
{
    char       *args;
    cJSON      *id, *name, *input;
    ngx_int_t   rc;
    ngx_str_t   sid, sname, sargs;

    id = ngx_ai_get(use, "toolUseId");
    name = ngx_ai_get(use, "name");
    input = ngx_ai_get(use, "input");

    if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
        return NGX_OK;
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

    rc = ngx_ai_buf_append(tc, tc->len ? "," : "[", 1);

    if (rc == NGX_OK) {
        rc = ngx_ai_buf_append_tool_call(tc, &sid, &sname, &sargs);
    }

    cJSON_free(args);

    return rc;
}


/*
 * inputTokens excludes the cache's (cacheReadInputTokens,
 * cacheWriteInputTokens); OpenAI's prompt_tokens has them.
 */

static void
ngx_ai_bedrock_usage(cJSON *usage, ngx_ai_usage_t *u)
{
    uint64_t  input, output, read, write;

    if (!cJSON_IsObject(usage)) {
        return;
    }

    input = 0;
    output = 0;
    read = 0;
    write = 0;

    (void) ngx_ai_json_get_uint(usage, "inputTokens", &input);
    (void) ngx_ai_json_get_uint(usage, "outputTokens", &output);
    (void) ngx_ai_json_get_uint(usage, "cacheReadInputTokens", &read);
    (void) ngx_ai_json_get_uint(usage, "cacheWriteInputTokens", &write);

    if (input > NGX_MAX_UINT32_VALUE || output > NGX_MAX_UINT32_VALUE
        || read > NGX_MAX_UINT32_VALUE || write > NGX_MAX_UINT32_VALUE)
    {
        return;                         /* not counts a model could make */
    }

    u->prompt_tokens = input + read + write;
    u->completion_tokens = output;
    u->cached_tokens = read;
    u->cache_creation_tokens = write;
    u->reasoning_tokens = 0;
    u->known = 1;
}


static const char *
ngx_ai_bedrock_finish(cJSON *reason)
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

    if (ngx_strcmp(reason->valuestring, "guardrail_intervened") == 0
        || ngx_strcmp(reason->valuestring, "content_filtered") == 0)
    {
        return "content_filter";
    }

    /* end_turn, stop_sequence */

    return "stop";
}


/*
 * errors: {"message": "..."} (or "Message"); the exception's name is the
 * x-amzn-ErrorType header, which the status tells well enough.
 */

static void
ngx_ai_bedrock_error(ngx_pool_t *pool, ngx_uint_t status, u_char *body,
    size_t len, ngx_ai_error_t *err)
{
    cJSON  *root, *message;

    ngx_ai_error_set(err, status, ngx_ai_error_type_by_status(status), NULL,
                     NULL, "the provider answered with an error");

    switch (status) {

    case 400:
        err->code = "ValidationException";
        break;

    case 403:
        err->type = "permission_error";
        err->code = "AccessDeniedException";
        break;

    case 404:
        err->code = "ResourceNotFoundException";
        break;

    case 408:
        err->code = "ModelTimeoutException";
        break;

    case 424:
        err->code = "ModelErrorException";
        break;

    case 429:
        err->code = "ThrottlingException";
        break;

    case 503:
        err->code = "ServiceUnavailableException";
        break;
    }

    root = ngx_ai_json_parse(pool, body, len);
    message = ngx_ai_get(root, "message");

    if (!cJSON_IsString(message)) {
        message = ngx_ai_get(root, "Message");
    }

    if (cJSON_IsString(message) && message->valuestring[0] != '\0') {
        err->message.data = (u_char *) message->valuestring;
        err->message.len = ngx_strlen(message->valuestring);
    }
}


/* streams: the event stream's events, ngx_ai_es_event() */

static ngx_int_t
ngx_ai_bedrock_stream_event(ngx_ai_stream_t *st, ngx_ai_sse_event_t *ev)
{
    cJSON                    *root, *msg;
    ngx_int_t                 rc;
    ngx_str_t                *t, args;
    const char               *finish;
    ngx_ai_bedrock_stream_t  *bs;

    st->events++;

    bs = st->data;

    if (bs == NULL) {
        bs = ngx_pcalloc(st->pool, sizeof(ngx_ai_bedrock_stream_t));
        if (bs == NULL) {
            return NGX_ERROR;
        }

        bs->block = -1;
        st->data = bs;
    }

    if (st->done) {
        return NGX_OK;
    }

    t = &ev->event;

#define ngx_ai_type_is(s)                                                     \
    (t->len == sizeof(s) - 1 && ngx_strncmp(t->data, s, sizeof(s) - 1) == 0)

    if (ngx_ai_type_is("error")) {
        (void) ngx_ai_stream_fail(st, NULL, "the provider sent an error "
                                            "in its event stream");
        return NGX_DECLINED;
    }

    root = ngx_ai_json_scratch(&st->scratch, st->pool, &ev->data);

    if (!cJSON_IsObject(root)) {
        ngx_ai_json_scratch_done(st->scratch, root);
        (void) ngx_ai_stream_fail(st, NULL, "the provider sent an event "
                                            "that is not JSON");
        return NGX_DECLINED;
    }

    rc = NGX_OK;

    if (t->len > 9
        && ngx_strncmp(t->data + t->len - 9, "Exception", 9) == 0)
    {
        msg = ngx_ai_get(root, "message");

        rc = ngx_ai_stream_fail(st, cJSON_IsString(msg) ? msg->valuestring
                                                        : NULL,
                                "the provider sent an exception in its "
                                "event stream");
        if (rc == NGX_OK) {
            rc = NGX_DECLINED;
        }

    } else if (ngx_ai_type_is("contentBlockDelta")) {
        rc = ngx_ai_bedrock_stream_delta(st, bs, root);

    } else if (ngx_ai_type_is("contentBlockStart")) {
        rc = ngx_ai_bedrock_stream_start(st, bs, root);

    } else if (ngx_ai_type_is("contentBlockStop")) {
        if (bs->in_tool && !bs->args_sent) {
            ngx_str_set(&args, "{}");
            rc = ngx_ai_stream_tool_call(st, bs->tool, NULL, NULL, &args);
        }

        bs->in_tool = 0;
        bs->block = -1;

    } else if (ngx_ai_type_is("messageStart")) {
        rc = ngx_ai_stream_start(st, NULL, 0);

    } else if (ngx_ai_type_is("messageStop")) {
        bs->finish = ngx_ai_bedrock_finish(ngx_ai_get(root, "stopReason"));
        bs->stopped = 1;

    } else if (ngx_ai_type_is("metadata")) {

        /* the last event: the usage comes after messageStop */

        ngx_ai_bedrock_usage(ngx_ai_get(root, "usage"), &st->usage);

        if (bs->stopped) {
            finish = bs->finish;

            if (bs->tools && ngx_strcmp(finish, "stop") == 0) {
                finish = "tool_calls";
            }

            rc = ngx_ai_stream_finish(st, finish);
        }
    }

    /* unknown events are ignored */

#undef ngx_ai_type_is

    ngx_ai_json_scratch_done(st->scratch, root);

    return rc;
}


/* {"contentBlockIndex": N, "start": {"toolUse": {toolUseId, name}}} */

static ngx_int_t
ngx_ai_bedrock_stream_start(ngx_ai_stream_t *st, ngx_ai_bedrock_stream_t *bs,
    cJSON *root)
{
    cJSON      *use, *id, *name, *index;
    ngx_str_t   sid, sname, sargs;

    use = ngx_ai_get(ngx_ai_get(root, "start"), "toolUse");
    id = ngx_ai_get(use, "toolUseId");
    name = ngx_ai_get(use, "name");
    index = ngx_ai_get(root, "contentBlockIndex");

    if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
        return NGX_OK;
    }

    bs->in_tool = 1;
    bs->args_sent = 0;
    bs->tool = bs->tools++;
    bs->block = cJSON_IsNumber(index) ? index->valueint : -1;

    sid.data = (u_char *) id->valuestring;
    sid.len = ngx_strlen(id->valuestring);
    sname.data = (u_char *) name->valuestring;
    sname.len = ngx_strlen(name->valuestring);
    ngx_str_set(&sargs, "");

    return ngx_ai_stream_tool_call(st, bs->tool, &sid, &sname, &sargs);
}


/* {"contentBlockIndex": N, "delta": {"text"} or {"toolUse": {"input"}}} */

static ngx_int_t
ngx_ai_bedrock_stream_delta(ngx_ai_stream_t *st, ngx_ai_bedrock_stream_t *bs,
    cJSON *root)
{
    cJSON      *delta, *s;
    ngx_str_t   args;

    delta = ngx_ai_get(root, "delta");
    s = ngx_ai_get(delta, "text");

    if (cJSON_IsString(s)) {
        return ngx_ai_stream_content(st, (u_char *) s->valuestring,
                                     ngx_strlen(s->valuestring));
    }

    s = ngx_ai_get(ngx_ai_get(delta, "toolUse"), "input");

    if (!bs->in_tool || !cJSON_IsString(s) || s->valuestring[0] == '\0') {
        return NGX_OK;              /* reasoningContent, citations */
    }

    args.data = (u_char *) s->valuestring;
    args.len = ngx_strlen(s->valuestring);
    bs->args_sent = 1;

    return ngx_ai_stream_tool_call(st, bs->tool, NULL, NULL, &args);
}


/*
 * Embeddings: InvokeModel (POST /model/{modelId}/invoke) in the model's
 * own body, which depends on its family, read from the id (a model id, a
 * cross-region profile "us.cohere.embed-v4:0" or a foundation-model ARN
 * hold it):
 *   Amazon Titan   {"inputText":TEXT[,"dimensions":D]}: one input a call
 *   Cohere         {"texts":[...],"input_type":"search_document"
 *                   [,"output_dimension":D]}
 * Other models have no embeddings: 400.
 */

static ngx_uint_t
ngx_ai_bedrock_embed_family(ngx_str_t *model)
{
    size_t   i, n;
    u_char  *p;

    static const char  titan[] = "amazon.titan-embed";
    static const char  cohere[] = "cohere.embed";

    p = model->data;
    n = model->len;

    for (i = 0; i < n; i++) {
        if (n - i >= sizeof(titan) - 1
            && ngx_strncmp(p + i, titan, sizeof(titan) - 1) == 0)
        {
            return NGX_AI_BEDROCK_TITAN;
        }

        if (n - i >= sizeof(cohere) - 1
            && ngx_strncmp(p + i, cohere, sizeof(cohere) - 1) == 0)
        {
            return NGX_AI_BEDROCK_COHERE;
        }
    }

    return 0;
}


static ngx_int_t
ngx_ai_bedrock_embed_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out, ngx_ai_error_t *err)
{
    cJSON       *root, *input, *dims, *texts, *item;
    ngx_int_t    rc;
    ngx_uint_t   family;

    dims = ngx_ai_get(req->json, "dimensions");
    family = ngx_ai_bedrock_embed_family(&req->upstream_model);

    if (family == 0) {
        ngx_ai_error_set(err, 400, "invalid_request_error", "model",
                         "unsupported_model", "This Bedrock model has no "
                         "embeddings: use an amazon.titan-embed-* or a "
                         "cohere.embed-* model.");
        return NGX_DECLINED;
    }

    input = ngx_ai_embed_texts(req, err);
    if (input == NULL) {
        return NGX_DECLINED;
    }

    if (family == NGX_AI_BEDROCK_TITAN && cJSON_IsArray(input)
        && input->child->next)
    {
        ngx_ai_error_set(err, 400, "invalid_request_error", "input",
                         "unsupported_input", "Amazon Titan embeds one "
                         "input per call: send one string, or use a "
                         "cohere.embed-* model for arrays.");
        return NGX_DECLINED;
    }

    if (ngx_ai_bedrock_path(pool, req, "/invoke", &out->path) != NGX_OK) {
        return NGX_ERROR;
    }

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (family == NGX_AI_BEDROCK_TITAN) {
        item = ngx_ai_embed_next(input, NULL);

        if (ngx_ai_json_add_ref(root, "inputText", item->valuestring)
            != NGX_OK
            || ngx_ai_embed_dims(root, "dimensions", dims) != NGX_OK)
        {
            goto done;
        }

    } else {
        texts = cJSON_CreateArray();

        if (ngx_ai_json_add(root, "texts", texts) != NGX_OK
            || ngx_ai_json_add_ref(root, "input_type", "search_document")
               != NGX_OK
            || ngx_ai_embed_dims(root, "output_dimension", dims) != NGX_OK)
        {
            goto done;
        }

        for (item = ngx_ai_embed_next(input, NULL);
             item;
             item = ngx_ai_embed_next(input, item))
        {
            if (ngx_ai_json_add_ref(texts, NULL, item->valuestring)
                != NGX_OK)
            {
                goto done;
            }
        }
    }

    rc = ngx_ai_json_print(pool, root, &out->body);

done:

    cJSON_Delete(root);

    return rc;
}


/*
 * Titan: {"embedding":[...],"inputTextTokenCount":N}, its usage exact.
 * Cohere: {"embeddings":[[...],...]} or, by type, {"embeddings":{"float":
 * [[...],...]}}, with no token count in the body: Cohere's own
 * meta.billed_units.input_tokens when there, else Bedrock's header
 * X-Amzn-Bedrock-Input-Token-Count (req->header_input_tokens), else the
 * estimate, charged marked as one.
 */

static ngx_int_t
ngx_ai_bedrock_embed_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    cJSON         *root, *list, *item;
    uint64_t       tokens;
    ngx_int_t      rc, counted;
    ngx_uint_t     i, base64;
    ngx_ai_jw_t    w;
    ngx_ai_buf_t   b;

    ngx_memzero(out, sizeof(ngx_ai_response_t));

    root = ngx_ai_json_parse(pool, body, len);
    base64 = ngx_ai_embed_base64(req);

    if (ngx_ai_bedrock_embed_family(&req->upstream_model)
        == NGX_AI_BEDROCK_TITAN)
    {
        /* the request had one input */

        counted = ngx_ai_json_get_uint(root, "inputTextTokenCount", &tokens);

        rc = ngx_ai_embed_list_open(&w, &b, pool, len);

        if (rc == NGX_OK) {
            rc = ngx_ai_embed_vector(&w, pool, 0, ngx_ai_get(root, "embedding"),
                                     base64, 0, err);
        }

    } else {
        counted = ngx_ai_json_get_uint(ngx_ai_get(ngx_ai_get(root, "meta"),
                                                  "billed_units"),
                                       "input_tokens", &tokens);

        list = ngx_ai_bedrock_cohere_vectors(root);

        rc = ngx_ai_embed_start(&w, &b, pool, req, list, len, err);

        for (i = 0, item = list ? list->child : NULL;
             rc == NGX_OK && item;
             item = item->next)
        {
            rc = ngx_ai_embed_vector(&w, pool, i++, item, base64, 0, err);
        }
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (counted != NGX_OK && req->header_tokens) {
        /* Cohere's count: in Bedrock's header only */
        tokens = req->header_input_tokens;
        counted = NGX_OK;
    }

    counted = (counted == NGX_OK
               && tokens <= NGX_AI_MAX_EMBED_TOKENS
                            * (uint64_t) NGX_AI_MAX_EMBED_INPUTS);

    return ngx_ai_embed_finish(&w, req, counted, tokens, out);
}


/* Cohere's vectors: "embeddings" a list, or its "float" list by type */

static cJSON *
ngx_ai_bedrock_cohere_vectors(cJSON *root)
{
    cJSON  *list;

    list = ngx_ai_get(root, "embeddings");

    if (cJSON_IsObject(list)) {
        list = ngx_ai_get(list, "float");
    }

    return cJSON_IsArray(list) ? list : NULL;
}
