
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Validation of an inbound OpenAI chat completions request: the body is
 * parsed once with cJSON and every field the gateway reads or forwards is
 * type-checked, so the translators can trust the tree.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


static ngx_int_t ngx_ai_request_messages(ngx_pool_t *pool, cJSON *messages,
    size_t *bytes, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_message(ngx_pool_t *pool, cJSON *msg,
    ngx_uint_t i, size_t *bytes, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_content(ngx_pool_t *pool, cJSON *content,
    ngx_uint_t i, size_t *bytes, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_call(ngx_pool_t *pool, cJSON *call,
    ngx_uint_t i, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_functions(ngx_pool_t *pool, cJSON *root,
    const char *name, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_choice(cJSON *root, const char *name,
    ngx_ai_error_t *err);
static const char *ngx_ai_request_path(ngx_pool_t *pool, const char *list,
    ngx_uint_t i, const char *field, ngx_int_t j, const char *sub);
static ngx_int_t ngx_ai_request_model(cJSON *item, const char *param,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_number(cJSON *root, const char *name,
    double min, double max, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_max_tokens(cJSON *root, const char *name,
    ngx_int_t *value, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_n(cJSON *root, ngx_uint_t *n,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_stop(ngx_pool_t *pool, cJSON *stop,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_request_unique(cJSON *obj, const char **names,
    ngx_ai_error_t *err);


/*
 * Members the gateway reads or rewrites.  cJSON finds the first of
 * duplicate names, most providers' parsers keep the last: a request that
 * names one twice could pass validation with one value and reach the
 * provider with the other.
 */

static const char  *ngx_ai_request_members[] = {
    "model", "models", "messages", "stream", "stream_options",
    "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
    "tools", "tool_choice", "parallel_tool_calls", "user", "seed",
    "response_format", "n", "reasoning_effort", "prediction", "metadata",
    "store", "service_tier", "logprobs", "top_logprobs", "modalities",
    "audio", "functions", "function_call", "usage", NULL
};

static const char  *ngx_ai_request_stream_options[] = {
    "include_usage", NULL
};


#define ngx_ai_invalid(err, param, msg)                                     \
    ngx_ai_error_set(err, 400, "invalid_request_error", param,              \
                     "invalid_value", msg)

#define ngx_ai_wrong_type(err, param, msg)                                  \
    ngx_ai_error_set(err, 400, "invalid_request_error", param,              \
                     "invalid_type", msg)

#define ngx_ai_missing(err, param, msg)                                     \
    ngx_ai_error_set(err, 400, "invalid_request_error", param,              \
                     "missing_required_parameter", msg)


/*
 * NGX_OK: req is filled; NGX_DECLINED: err says what is wrong (status 400);
 * NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_ai_chat_request_parse(ngx_pool_t *pool, u_char *body, size_t len,
    ngx_ai_chat_request_t *req, ngx_ai_error_t *err)
{
    cJSON                *root, *item, *opt;
    u_char               *slash;
    ngx_int_t             rc;
    ngx_uint_t            status;
    ngx_ai_json_flags_t   flags;

    ngx_memzero(req, sizeof(ngx_ai_chat_request_t));
    req->max_tokens = -1;
    req->n = 1;

    if (len == 0) {
        ngx_ai_invalid(err, NULL, "The request body is empty; expected a "
                       "JSON object.");
        return NGX_DECLINED;
    }

    root = ngx_ai_json_track(pool,
                             ngx_ai_json_decode(pool, body, len,
                                                NGX_AI_MAX_JSON_DEPTH, &flags,
                                                &status));

    if (status == NGX_AI_JSON_TOO_DEEP) {
        ngx_ai_invalid(err, NULL, "The request body is nested too deeply.");
        return NGX_DECLINED;
    }

    if (status == NGX_AI_JSON_NO_MEMORY) {
        return NGX_ERROR;
    }

    if (root == NULL) {
        ngx_ai_error_set(err, 400, "invalid_request_error", NULL,
                         "invalid_json", "The request body is not valid "
                         "JSON.");
        return NGX_DECLINED;
    }

    rc = ngx_ai_request_bytes(pool, body, &flags, err);
    if (rc != NGX_OK) {
        return rc;
    }

    if (flags.nul) {
        ngx_ai_invalid(err, NULL, "The request body holds a NUL character "
                       "(\\u0000).");
        return NGX_DECLINED;
    }

    if (!cJSON_IsObject(root)) {
        ngx_ai_wrong_type(err, NULL, "The request body must be a JSON "
                          "object.");
        return NGX_DECLINED;
    }

    req->json = root;
    req->raw.data = body;
    req->raw.len = len;

    if (ngx_ai_request_unique(root, ngx_ai_request_members, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    /* model */

    item = cJSON_GetObjectItemCaseSensitive(root, "model");

    if (item == NULL || cJSON_IsNull(item)) {
        ngx_ai_missing(err, "model", "you must provide a model parameter");
        return NGX_DECLINED;
    }

    if (ngx_ai_request_model(item, "model", err) != NGX_OK) {
        return NGX_DECLINED;
    }

    req->model.data = (u_char *) item->valuestring;
    req->model.len = ngx_strlen(item->valuestring);

    slash = ngx_strlchr(req->model.data, req->model.data + req->model.len,
                        '/');
    if (slash) {
        req->provider.data = req->model.data;
        req->provider.len = slash - req->model.data;
        req->upstream_model.data = slash + 1;
        req->upstream_model.len = req->model.data + req->model.len
                                  - (slash + 1);

    } else {
        req->upstream_model = req->model;
    }

    /* models: an OpenRouter-style list of models to try */

    item = cJSON_GetObjectItemCaseSensitive(root, "models");

    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsArray(item)) {
            ngx_ai_wrong_type(err, "models", "Invalid type for 'models': "
                              "expected an array of model names.");
            return NGX_DECLINED;
        }

        cJSON_ArrayForEach(opt, item) {
            if (ngx_ai_request_model(opt, "models", err) != NGX_OK) {
                return NGX_DECLINED;
            }
        }

        req->models = item;
    }

    /* messages */

    item = cJSON_GetObjectItemCaseSensitive(root, "messages");

    if (item == NULL || cJSON_IsNull(item)) {
        ngx_ai_missing(err, "messages", "Missing required parameter: "
                       "'messages'.");
        return NGX_DECLINED;
    }

    rc = ngx_ai_request_messages(pool, item, &req->prompt_bytes, err);
    if (rc != NGX_OK) {
        return rc;
    }

    /* stream, stream_options */

    item = cJSON_GetObjectItemCaseSensitive(root, "stream");

    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsBool(item)) {
            ngx_ai_wrong_type(err, "stream", "Invalid type for 'stream': "
                              "expected a boolean.");
            return NGX_DECLINED;
        }

        req->stream = cJSON_IsTrue(item) ? 1 : 0;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "stream_options");

    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsObject(item)) {
            ngx_ai_wrong_type(err, "stream_options", "Invalid type for "
                              "'stream_options': expected an object.");
            return NGX_DECLINED;
        }

        if (ngx_ai_request_unique(item, ngx_ai_request_stream_options, err)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        opt = cJSON_GetObjectItemCaseSensitive(item, "include_usage");

        if (opt && !cJSON_IsNull(opt)) {
            if (!cJSON_IsBool(opt)) {
                ngx_ai_wrong_type(err, "stream_options.include_usage",
                                  "Invalid type for "
                                  "'stream_options.include_usage': "
                                  "expected a boolean.");
                return NGX_DECLINED;
            }

            req->include_usage = cJSON_IsTrue(opt) ? 1 : 0;
        }
    }

    /* OpenRouter's way: "usage": {"include": true} */

    item = cJSON_GetObjectItemCaseSensitive(root, "usage");

    if (item && !cJSON_IsNull(item)) {
        opt = cJSON_GetObjectItemCaseSensitive(item, "include");

        if (!cJSON_IsObject(item) || (opt && !cJSON_IsNull(opt)
                                      && !cJSON_IsBool(opt)))
        {
            ngx_ai_wrong_type(err, "usage.include", "Invalid type for "
                              "'usage': expected an object with a boolean "
                              "'include'.");
            return NGX_DECLINED;
        }

        if (cJSON_IsTrue(opt)) {
            req->include_usage = 1;
        }
    }

    /* sampling and length */

    if (ngx_ai_request_max_tokens(root, "max_tokens", &req->max_tokens, err)
        != NGX_OK
        || ngx_ai_request_max_tokens(root, "max_completion_tokens",
                                     &req->max_tokens, err)
           != NGX_OK
        || ngx_ai_request_number(root, "temperature", 0, 2, err) != NGX_OK
        || ngx_ai_request_number(root, "top_p", 0, 1, err) != NGX_OK
        || ngx_ai_request_n(root, &req->n, err) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "stop");

    if (item && ngx_ai_request_stop(pool, item, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "logprobs");

    if (item && !cJSON_IsNull(item) && !cJSON_IsBool(item)) {
        ngx_ai_wrong_type(err, "logprobs", "Invalid type for 'logprobs': "
                          "expected a boolean.");
        return NGX_DECLINED;
    }

    req->logprobs = cJSON_IsTrue(item) ? 1 : 0;

    if (ngx_ai_request_number(root, "top_logprobs", 0, 20, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    /*
     * tools (and the legacy "functions") are forwarded or translated;
     * fusion needs to know of them
     */

    if (ngx_ai_request_functions(pool, root, "tools", err) != NGX_OK
        || ngx_ai_request_functions(pool, root, "functions", err) != NGX_OK
        || ngx_ai_request_choice(root, "function_call", err) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "tools");
    req->has_tools = cJSON_GetArraySize(item) > 0;

    item = cJSON_GetObjectItemCaseSensitive(root, "functions");

    if (cJSON_GetArraySize(item) > 0) {
        req->has_tools = 1;
    }

    return NGX_OK;
}


/*
 * "tools" [{type: "function", function: {name, description, parameters}}]
 * or the legacy "functions" [{name, description, parameters}]: each entry
 * an object with a name, errors naming the entry as OpenAI does
 * ("tools[0].function.name").
 */

static ngx_int_t
ngx_ai_request_functions(ngx_pool_t *pool, cJSON *root, const char *name,
    ngx_ai_error_t *err)
{
    cJSON       *list, *tool, *type, *fn, *fname, *params;
    ngx_uint_t   i, legacy;
    const char  *sub;

    list = cJSON_GetObjectItemCaseSensitive(root, name);

    if (list == NULL || cJSON_IsNull(list)) {
        return NGX_OK;
    }

    legacy = (name[0] == 'f');

    if (!cJSON_IsArray(list)) {
        ngx_ai_wrong_type(err, name, legacy ? "Invalid type for 'functions':"
                          " expected an array." : "Invalid type for 'tools': "
                          "expected an array.");
        return NGX_DECLINED;
    }

    i = 0;

    cJSON_ArrayForEach(tool, list) {

        if (!cJSON_IsObject(tool)) {
            ngx_ai_wrong_type(err, ngx_ai_request_path(pool, name, i, NULL,
                                                       -1, NULL),
                              "Invalid type: expected an object.");
            return NGX_DECLINED;
        }

        fn = tool;
        sub = "";

        if (!legacy) {
            type = cJSON_GetObjectItemCaseSensitive(tool, "type");

            if (type && !cJSON_IsString(type)) {
                ngx_ai_wrong_type(err, ngx_ai_request_path(pool, name, i,
                                                           ".type", -1, NULL),
                                  "Invalid type: expected a string.");
                return NGX_DECLINED;
            }

            if (type && ngx_strcmp(type->valuestring, "function") != 0) {
                i++;
                continue;           /* other tool types go on as they are */
            }

            fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
            sub = ".function";

            if (!cJSON_IsObject(fn)) {
                ngx_ai_missing(err, ngx_ai_request_path(pool, name, i, sub,
                                                        -1, NULL),
                               "A function tool needs a 'function' object.");
                return NGX_DECLINED;
            }
        }

        fname = cJSON_GetObjectItemCaseSensitive(fn, "name");

        if (!cJSON_IsString(fname) || fname->valuestring[0] == '\0') {
            ngx_ai_missing(err, ngx_ai_request_path(pool, name, i, sub, -1,
                                                    ".name"),
                           "A function needs a 'name' string.");
            return NGX_DECLINED;
        }

        params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");

        if (params && !cJSON_IsNull(params) && !cJSON_IsObject(params)) {
            ngx_ai_wrong_type(err, ngx_ai_request_path(pool, name, i, sub, -1,
                                                       ".parameters"),
                              "Invalid type: 'parameters' must be a JSON "
                              "Schema object.");
            return NGX_DECLINED;
        }

        i++;
    }

    return NGX_OK;
}


/* the legacy "function_call": "none", "auto" or {"name": ...} */

static ngx_int_t
ngx_ai_request_choice(cJSON *root, const char *name, ngx_ai_error_t *err)
{
    cJSON  *item, *fname;

    item = cJSON_GetObjectItemCaseSensitive(root, name);

    if (item == NULL || cJSON_IsNull(item)) {
        return NGX_OK;
    }

    if (cJSON_IsString(item)) {
        if (ngx_strcmp(item->valuestring, "none") == 0
            || ngx_strcmp(item->valuestring, "auto") == 0)
        {
            return NGX_OK;
        }

        ngx_ai_invalid(err, name, "Invalid 'function_call': expected "
                       "\"none\", \"auto\" or {\"name\": ...}.");
        return NGX_DECLINED;
    }

    fname = cJSON_GetObjectItemCaseSensitive(item, "name");

    if (!cJSON_IsObject(item) || !cJSON_IsString(fname)) {
        ngx_ai_wrong_type(err, name, "Invalid 'function_call': expected "
                          "\"none\", \"auto\" or {\"name\": ...}.");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The name of a field inside a list, as OpenAI's errors give it:
 * list[i]field, or list[i]field[j]sub; the list's own name when the
 * pool is out of memory.
 */

static const char *
ngx_ai_request_path(ngx_pool_t *pool, const char *list, ngx_uint_t i,
    const char *field, ngx_int_t j, const char *sub)
{
    ngx_ai_buf_t  b;

    if (ngx_ai_buf_init(&b, pool, 64) != NGX_OK
        || ngx_ai_buf_append_str(&b, list) != NGX_OK
        || ngx_ai_buf_append(&b, "[", 1) != NGX_OK
        || ngx_ai_buf_append_uint(&b, i) != NGX_OK
        || ngx_ai_buf_append(&b, "]", 1) != NGX_OK
        || (field && ngx_ai_buf_append_str(&b, field) != NGX_OK))
    {
        return list;
    }

    if (j >= 0
        && (ngx_ai_buf_append(&b, "[", 1) != NGX_OK
            || ngx_ai_buf_append_uint(&b, (uint64_t) j) != NGX_OK
            || ngx_ai_buf_append(&b, "]", 1) != NGX_OK))
    {
        return list;
    }

    if (sub && ngx_ai_buf_append_str(&b, sub) != NGX_OK) {
        return list;
    }

    return ngx_ai_buf_cstr(&b) ? (const char *) b.data : list;
}


/*
 * A model name is what a URL path or a header may safely carry: printable
 * ASCII without spaces, '%', '\', '?', '#', quotes, and no "." or ".."
 * path segment.  Provider prefixes and names are checked against the
 * configuration later.
 */

ngx_int_t
ngx_ai_model_name_valid(const u_char *p, size_t len)
{
    u_char  c;
    size_t  i, seg;

    if (len == 0 || len > NGX_AI_MAX_MODEL_LEN) {
        return 0;
    }

    seg = 0;

    for (i = 0; i < len; i++) {
        c = p[i];

        if (c <= 0x20 || c >= 0x7f || c == '%' || c == '\\' || c == '?'
            || c == '#' || c == '"' || c == '\'' || c == '<' || c == '>')
        {
            return 0;
        }

        if (c == '/') {
            if (i - seg == 0
                || (i - seg == 1 && p[seg] == '.')
                || (i - seg == 2 && p[seg] == '.' && p[seg + 1] == '.'))
            {
                return 0;
            }

            seg = i + 1;
        }
    }

    if (i - seg == 0
        || (i - seg == 1 && p[seg] == '.')
        || (i - seg == 2 && p[seg] == '.' && p[seg + 1] == '.'))
    {
        return 0;
    }

    return 1;
}


static ngx_int_t
ngx_ai_request_model(cJSON *item, const char *param, ngx_ai_error_t *err)
{
    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        ngx_ai_wrong_type(err, param, "Invalid type for model: expected a "
                          "string like \"provider/model\".");
        return NGX_DECLINED;
    }

    if (!ngx_ai_model_name_valid((u_char *) item->valuestring,
                                 ngx_strlen(item->valuestring)))
    {
        ngx_ai_invalid(err, param, "Invalid model name: a model is named "
                       "\"provider/model\" with printable characters, no "
                       "spaces, '%', '?', '#' or \"..\" segments, at most "
                       "256 bytes.");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A decoded body's strings with a raw control byte (RFC 8259 forbids it;
 * cJSON and so the splice would pass it on) or invalid UTF-8: refused,
 * naming the first such byte, before any provider sees them.  NGX_OK: none;
 * NGX_DECLINED: err (400) says where; NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_ai_request_bytes(ngx_pool_t *pool, u_char *body,
    ngx_ai_json_flags_t *flags, ngx_ai_error_t *err)
{
    u_char         c, hex[4];
    size_t         at;
    const char    *code, *msg, *tail;
    ngx_ai_buf_t   b;

    static u_char  digits[] = "0123456789ABCDEF";

    if (flags->control
        && (!flags->utf8 || flags->control_at < flags->utf8_at))
    {
        at = flags->control_at;
        code = "invalid_json";
        msg = "The request body is not valid JSON: the raw control "
              "character ";
        tail = " is inside a string; control characters must be escaped "
               "(\\n, \\t, \\u0001 ...).";

    } else if (flags->utf8) {
        at = flags->utf8_at;
        code = "invalid_encoding";
        msg = "The request body is not valid UTF-8: the byte ";
        tail = " starts no well-formed UTF-8 character (overlong, "
               "surrogate, above U+10FFFF, cut short or a stray "
               "continuation byte).";

    } else {
        return NGX_OK;
    }

    c = body[at];

    hex[0] = '0';
    hex[1] = 'x';
    hex[2] = digits[c >> 4];
    hex[3] = digits[c & 0xf];

    if (ngx_ai_buf_init(&b, pool, 256) != NGX_OK
        || ngx_ai_buf_append_str(&b, msg) != NGX_OK
        || ngx_ai_buf_append(&b, hex, 4) != NGX_OK
        || ngx_ai_buf_append_str(&b, " at offset ") != NGX_OK
        || ngx_ai_buf_append_uint(&b, at) != NGX_OK
        || ngx_ai_buf_append_str(&b, tail) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_ai_error_set(err, 400, "invalid_request_error", NULL, code, "");

    err->message.data = b.data;
    err->message.len = b.len;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_ai_request_messages(ngx_pool_t *pool, cJSON *messages, size_t *bytes,
    ngx_ai_error_t *err)
{
    cJSON       *msg;
    ngx_int_t    rc;
    ngx_uint_t   i;

    if (!cJSON_IsArray(messages)) {
        ngx_ai_wrong_type(err, "messages", "Invalid type for 'messages': "
                          "expected an array of message objects.");
        return NGX_DECLINED;
    }

    if (cJSON_GetArraySize(messages) == 0) {
        ngx_ai_invalid(err, "messages", "Invalid 'messages': empty array. "
                       "Expected an array with minimum length 1.");
        return NGX_DECLINED;
    }

    i = 0;

    cJSON_ArrayForEach(msg, messages) {
        rc = ngx_ai_request_message(pool, msg, i++, bytes, err);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * One message.  What real providers take, the gateway takes: an assistant
 * message with "content": null and "tool_calls" or the legacy
 * "function_call", and the legacy "function" role (its "name" says which
 * function answered).
 */

static ngx_int_t
ngx_ai_request_message(ngx_pool_t *pool, cJSON *msg, ngx_uint_t i,
    size_t *bytes, ngx_ai_error_t *err)
{
    cJSON       *role, *content, *calls, *call, *name;
    ngx_uint_t   assistant, function;
    const char  *r;

    if (!cJSON_IsObject(msg)) {
        ngx_ai_wrong_type(err, ngx_ai_request_path(pool, "messages", i, NULL,
                                                   -1, NULL),
                          "Invalid type for 'messages[]': expected an "
                          "object.");
        return NGX_DECLINED;
    }

    role = cJSON_GetObjectItemCaseSensitive(msg, "role");

    if (!cJSON_IsString(role)) {
        ngx_ai_missing(err, ngx_ai_request_path(pool, "messages", i, ".role",
                                                -1, NULL),
                       "Each message needs a 'role' string.");
        return NGX_DECLINED;
    }

    r = role->valuestring;

    if (ngx_strcmp(r, "system") != 0
        && ngx_strcmp(r, "developer") != 0
        && ngx_strcmp(r, "user") != 0
        && ngx_strcmp(r, "assistant") != 0
        && ngx_strcmp(r, "tool") != 0
        && ngx_strcmp(r, "function") != 0)
    {
        ngx_ai_invalid(err, ngx_ai_request_path(pool, "messages", i, ".role",
                                                -1, NULL),
                       "Invalid 'messages[].role': expected one of system, "
                       "developer, user, assistant, tool, function.");
        return NGX_DECLINED;
    }

    assistant = (ngx_strcmp(r, "assistant") == 0);
    function = (ngx_strcmp(r, "function") == 0);

    calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    call = cJSON_GetObjectItemCaseSensitive(msg, "function_call");

    if (calls && !cJSON_IsNull(calls) && !cJSON_IsArray(calls)) {
        ngx_ai_wrong_type(err, ngx_ai_request_path(pool, "messages", i,
                                                   ".tool_calls", -1, NULL),
                          "Invalid type for 'tool_calls': expected an "
                          "array.");
        return NGX_DECLINED;
    }

    if (call && !cJSON_IsNull(call)
        && ngx_ai_request_call(pool, call, i, err) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (function) {
        name = cJSON_GetObjectItemCaseSensitive(msg, "name");

        if (!cJSON_IsString(name) || name->valuestring[0] == '\0') {
            ngx_ai_missing(err, ngx_ai_request_path(pool, "messages", i,
                                                    ".name", -1, NULL),
                           "A 'function' message needs the 'name' of the "
                           "function that answered.");
            return NGX_DECLINED;
        }
    }

    content = cJSON_GetObjectItemCaseSensitive(msg, "content");

    if (content == NULL || cJSON_IsNull(content)) {

        if (function
            || (assistant && (cJSON_IsArray(calls) || cJSON_IsObject(call))))
        {
            return NGX_OK;
        }

        ngx_ai_missing(err, ngx_ai_request_path(pool, "messages", i,
                                                ".content", -1, NULL),
                       "Each message needs 'content' (a string or an array "
                       "of content parts).");
        return NGX_DECLINED;
    }

    return ngx_ai_request_content(pool, content, i, bytes, err);
}


/* an assistant's legacy "function_call": {name, arguments} */

static ngx_int_t
ngx_ai_request_call(ngx_pool_t *pool, cJSON *call, ngx_uint_t i,
    ngx_ai_error_t *err)
{
    cJSON  *name, *args;

    if (!cJSON_IsObject(call)) {
        ngx_ai_wrong_type(err, ngx_ai_request_path(pool, "messages", i,
                                                   ".function_call", -1,
                                                   NULL),
                          "Invalid type for 'function_call': expected an "
                          "object with 'name' and 'arguments'.");
        return NGX_DECLINED;
    }

    name = cJSON_GetObjectItemCaseSensitive(call, "name");
    args = cJSON_GetObjectItemCaseSensitive(call, "arguments");

    if (!cJSON_IsString(name) || name->valuestring[0] == '\0') {
        ngx_ai_missing(err, ngx_ai_request_path(pool, "messages", i,
                                                ".function_call.name", -1,
                                                NULL),
                       "A 'function_call' needs a 'name' string.");
        return NGX_DECLINED;
    }

    if (args && !cJSON_IsString(args)) {
        ngx_ai_wrong_type(err, ngx_ai_request_path(pool, "messages", i,
                                                   ".function_call.arguments",
                                                   -1, NULL),
                          "Invalid type for 'arguments': expected a string "
                          "(the arguments as JSON text).");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_request_content(ngx_pool_t *pool, cJSON *content, ngx_uint_t i,
    size_t *bytes, ngx_ai_error_t *err)
{
    cJSON       *part, *type, *text, *image, *url;
    ngx_int_t    j;
    const char  *t;

    if (cJSON_IsString(content)) {
        *bytes += ngx_strlen(content->valuestring);
        return NGX_OK;
    }

    if (!cJSON_IsArray(content)) {
        ngx_ai_wrong_type(err, ngx_ai_request_path(pool, "messages", i,
                                                   ".content", -1, NULL),
                          "Invalid type for 'messages[].content': expected "
                          "a string or an array of content parts.");
        return NGX_DECLINED;
    }

    j = 0;

    cJSON_ArrayForEach(part, content) {

        type = cJSON_GetObjectItemCaseSensitive(part, "type");

        if (!cJSON_IsObject(part) || !cJSON_IsString(type)) {
            ngx_ai_wrong_type(err, ngx_ai_request_path(pool, "messages", i,
                                                       ".content", j,
                                                       ".type"),
                              "Invalid content part: expected an object "
                              "with a 'type' string.");
            return NGX_DECLINED;
        }

        t = type->valuestring;

        if (ngx_strcmp(t, "text") == 0) {
            text = cJSON_GetObjectItemCaseSensitive(part, "text");

            if (!cJSON_IsString(text)) {
                ngx_ai_wrong_type(err, ngx_ai_request_path(pool, "messages",
                                                           i, ".content", j,
                                                           ".text"),
                                  "Invalid text content part: 'text' must "
                                  "be a string.");
                return NGX_DECLINED;
            }

            *bytes += ngx_strlen(text->valuestring);
            j++;
            continue;
        }

        if (ngx_strcmp(t, "image_url") == 0) {
            image = cJSON_GetObjectItemCaseSensitive(part, "image_url");
            url = cJSON_IsObject(image)
                  ? cJSON_GetObjectItemCaseSensitive(image, "url") : image;

            if (!cJSON_IsString(url)) {
                ngx_ai_wrong_type(err, ngx_ai_request_path(pool, "messages",
                                                           i, ".content", j,
                                                           ".image_url.url"),
                                  "Invalid image_url content part: expected "
                                  "'image_url.url' string.");
                return NGX_DECLINED;
            }

            j++;
            continue;
        }

        if (ngx_strcmp(t, "input_audio") == 0
            || ngx_strcmp(t, "file") == 0
            || ngx_strcmp(t, "refusal") == 0)
        {
            j++;
            continue;
        }

        ngx_ai_invalid(err, ngx_ai_request_path(pool, "messages", i,
                                                ".content", j, ".type"),
                       "Invalid content part type: expected text, "
                       "image_url, input_audio or file.");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_request_number(cJSON *root, const char *name, double min, double max,
    ngx_ai_error_t *err)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(root, name);

    if (item == NULL || cJSON_IsNull(item)) {
        return NGX_OK;
    }

    if (!cJSON_IsNumber(item)) {
        ngx_ai_wrong_type(err, name, "Invalid type: expected a number.");
        return NGX_DECLINED;
    }

    if (item->valuedouble < min || item->valuedouble > max) {
        ngx_ai_invalid(err, name, "Number out of range.");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_request_max_tokens(cJSON *root, const char *name, ngx_int_t *value,
    ngx_ai_error_t *err)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(root, name);

    if (item == NULL || cJSON_IsNull(item)) {
        return NGX_OK;
    }

    if (!cJSON_IsNumber(item)) {
        ngx_ai_wrong_type(err, name, "Invalid type: expected an integer.");
        return NGX_DECLINED;
    }

    /* the range first: casting a double beyond it is undefined */

    if (item->valuedouble < 1 || item->valuedouble > 100000000) {
        ngx_ai_invalid(err, name, "Invalid value: expected an integer "
                       "between 1 and 100000000.");
        return NGX_DECLINED;
    }

    if (item->valuedouble != (double) (ngx_int_t) item->valuedouble) {
        ngx_ai_wrong_type(err, name, "Invalid type: expected an integer.");
        return NGX_DECLINED;
    }

    *value = (ngx_int_t) item->valuedouble;

    return NGX_OK;
}


/* n: answers asked for; every one of them is paid for */

static ngx_int_t
ngx_ai_request_n(cJSON *root, ngx_uint_t *n, ngx_ai_error_t *err)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(root, "n");

    if (item == NULL || cJSON_IsNull(item)) {
        return NGX_OK;
    }

    if (!cJSON_IsNumber(item)) {
        ngx_ai_wrong_type(err, "n", "Invalid type for 'n': expected an "
                          "integer.");
        return NGX_DECLINED;
    }

    if (item->valuedouble < 1 || item->valuedouble > NGX_AI_MAX_N
        || item->valuedouble != (double) (ngx_int_t) item->valuedouble)
    {
        ngx_ai_invalid(err, "n", "Invalid value for 'n': expected an "
                       "integer between 1 and 128.");
        return NGX_DECLINED;
    }

    *n = (ngx_uint_t) item->valuedouble;

    return NGX_OK;
}


/*
 * "stop": a string or an array of strings.  How many a provider takes is
 * its own limit (OpenAI 4, Gemini 5, Anthropic more): the gateway passes
 * them all on, bounded only by NGX_AI_MAX_STOP.
 */

static ngx_int_t
ngx_ai_request_stop(ngx_pool_t *pool, cJSON *stop, ngx_ai_error_t *err)
{
    cJSON       *s;
    ngx_uint_t   i;

    if (cJSON_IsNull(stop) || cJSON_IsString(stop)) {
        return NGX_OK;
    }

    if (!cJSON_IsArray(stop)) {
        ngx_ai_wrong_type(err, "stop", "Invalid 'stop': expected a string "
                          "or an array of strings.");
        return NGX_DECLINED;
    }

    if (cJSON_GetArraySize(stop) > NGX_AI_MAX_STOP) {
        ngx_ai_invalid(err, "stop", "Invalid 'stop': more than 1024 stop "
                       "sequences.");
        return NGX_DECLINED;
    }

    i = 0;

    cJSON_ArrayForEach(s, stop) {
        if (!cJSON_IsString(s)) {
            ngx_ai_wrong_type(err, ngx_ai_request_path(pool, "stop", i, NULL,
                                                       -1, NULL),
                              "Invalid 'stop': expected a string or an "
                              "array of strings.");
            return NGX_DECLINED;
        }

        i++;
    }

    return NGX_OK;
}


/* NGX_DECLINED when one of names is a member of obj twice */

static ngx_int_t
ngx_ai_request_unique(cJSON *obj, const char **names, ngx_ai_error_t *err)
{
    const char  *dup;

    dup = ngx_ai_json_unique(obj, names);

    if (dup == NULL) {
        return NGX_OK;
    }

    ngx_ai_error_set(err, 400, "invalid_request_error", dup,
                     "duplicate_parameter", "Invalid request: a parameter "
                     "is given more than once.");

    return NGX_DECLINED;
}
