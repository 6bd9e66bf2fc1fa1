
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The OpenAI Responses API inbound (POST {location}responses), its
 * request side.  A Responses request becomes an OpenAI chat request,
 * which the gateway then validates and serves like any other (every
 * provider type, fallback, fusion, limits, guards); the gateway never
 * sends the Responses API upstream.  Answers and streams are turned back
 * by ngx_ai_gateway_responses_out.c; errors stay OpenAI error objects.
 * The gateway stores nothing: what would look a stored response, item,
 * conversation or prompt up is refused.  docs/responses-api.md has the
 * tables.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define ngx_ai_get(obj, name)  cJSON_GetObjectItemCaseSensitive(obj, name)

#define ngx_ai_is(item, s)                                                    \
    (cJSON_IsString(item) && ngx_strcmp((item)->valuestring, s) == 0)

#define ngx_ai_given(item)     ((item) != NULL && !cJSON_IsNull(item))


/* the request being converted */
typedef struct {
    ngx_pool_t                 *pool;
    cJSON                      *messages;  /* OpenAI "messages" */
    cJSON                      *assistant; /* the last message, when it is
                                              an assistant's that function
                                              calls may join */
    ngx_ai_error_t             *err;
} ngx_ai_resp_conv_t;



static ngx_int_t ngx_ai_resp_stored(ngx_ai_resp_conv_t *cv, cJSON *src);
static ngx_int_t ngx_ai_resp_input(ngx_ai_resp_conv_t *cv, cJSON *input);
static ngx_int_t ngx_ai_resp_item(ngx_ai_resp_conv_t *cv, cJSON *item,
    int i);
static ngx_int_t ngx_ai_resp_message(ngx_ai_resp_conv_t *cv, cJSON *item,
    int i);
static ngx_int_t ngx_ai_resp_parts(ngx_ai_resp_conv_t *cv, cJSON *content,
    cJSON *parts, int i);
static ngx_int_t ngx_ai_resp_image(ngx_ai_resp_conv_t *cv, cJSON *parts,
    cJSON *part, int i, int j);
static ngx_int_t ngx_ai_resp_file(ngx_ai_resp_conv_t *cv, cJSON *parts,
    cJSON *part, int i, int j);
static ngx_int_t ngx_ai_resp_assistant_text(ngx_ai_resp_conv_t *cv,
    cJSON *content, ngx_ai_buf_t *b, int i);
static ngx_int_t ngx_ai_resp_call(ngx_ai_resp_conv_t *cv, cJSON *item,
    int i);
static ngx_int_t ngx_ai_resp_output(ngx_ai_resp_conv_t *cv, cJSON *item,
    int i);
static ngx_int_t ngx_ai_resp_options(ngx_ai_resp_conv_t *cv, cJSON *src,
    cJSON *dst);
static ngx_int_t ngx_ai_resp_format(ngx_ai_resp_conv_t *cv, cJSON *text,
    cJSON *dst);
static ngx_int_t ngx_ai_resp_tools(ngx_ai_resp_conv_t *cv, cJSON *src,
    cJSON *dst);
static ngx_int_t ngx_ai_resp_tool_choice(ngx_ai_resp_conv_t *cv,
    cJSON *choice, cJSON *dst);
static ngx_int_t ngx_ai_resp_copy(cJSON *src, cJSON *dst, const char *from,
    const char *to);
static ngx_int_t ngx_ai_resp_invalid(ngx_ai_resp_conv_t *cv,
    const char *field, int i, const char *sub, int j, const char *msg);

ngx_ai_dialect_t  ngx_ai_responses_dialect = {
    ngx_string("responses"),
    ngx_ai_responses_request,
    ngx_ai_responses_response,
    ngx_ai_error_render,
    ngx_ai_responses_stream_create,
    ngx_ai_responses_stream_usage,
    ngx_ai_responses_stream_feed
};


/*
 * request: Responses JSON -> OpenAI chat request JSON, for
 * ngx_ai_chat_request_parse().  The new tree references the client's
 * strings (both trees go with the pool).  NGX_DECLINED: err (400) says
 * what is wrong, with its param; NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_ai_responses_request(ngx_pool_t *pool, u_char *body, size_t len,
    ngx_str_t *out, ngx_ai_error_t *err)
{
    cJSON                *src, *dst, *item, *msg;
    ngx_int_t             rc;
    ngx_uint_t            status;
    ngx_ai_json_flags_t   flags;
    ngx_ai_resp_conv_t    cv;

    ngx_memzero(&cv, sizeof(ngx_ai_resp_conv_t));
    cv.pool = pool;
    cv.err = err;

    if (len == 0) {
        return ngx_ai_resp_invalid(&cv, NULL, -1, NULL, -1, "The request "
                                   "body is empty; expected a JSON object.");
    }

    src = ngx_ai_json_track(pool,
                            ngx_ai_json_decode(pool, body, len,
                                               NGX_AI_MAX_JSON_DEPTH, &flags,
                                               &status));

    if (status == NGX_AI_JSON_NO_MEMORY) {
        return NGX_ERROR;
    }

    if (status == NGX_AI_JSON_TOO_DEEP) {
        return ngx_ai_resp_invalid(&cv, NULL, -1, NULL, -1, "The request "
                                   "body is nested too deeply.");
    }

    if (src == NULL) {
        return ngx_ai_resp_invalid(&cv, NULL, -1, NULL, -1, "The request "
                                   "body is not valid JSON.");
    }

    rc = ngx_ai_request_bytes(pool, body, &flags, err);
    if (rc != NGX_OK) {
        return rc;
    }

    if (flags.nul) {
        return ngx_ai_resp_invalid(&cv, NULL, -1, NULL, -1, "The request "
                                   "body holds a NUL character (\\u0000), "
                                   "which the gateway does not accept.");
    }

    if (!cJSON_IsObject(src)) {
        return ngx_ai_resp_invalid(&cv, NULL, -1, NULL, -1, "The request "
                                   "body must be a JSON object.");
    }

    rc = ngx_ai_resp_stored(&cv, src);
    if (rc != NGX_OK) {
        return rc;
    }

    dst = ngx_ai_json_track(pool, cJSON_CreateObject());
    cv.messages = cJSON_CreateArray();

    if (dst == NULL || ngx_ai_json_add(dst, "messages", cv.messages) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* model (and the gateway's "models") as for chat: checked there */

    if (ngx_ai_resp_copy(src, dst, "model", "model") != NGX_OK
        || ngx_ai_resp_copy(src, dst, "models", "models") != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* instructions: the first message, a system one */

    item = ngx_ai_get(src, "instructions");

    if (ngx_ai_given(item)) {
        if (!cJSON_IsString(item)) {
            return ngx_ai_resp_invalid(&cv, "instructions", -1, NULL, -1,
                                       "Invalid type for 'instructions': "
                                       "expected a string.");
        }

        if (item->valuestring[0] != '\0') {
            msg = cJSON_CreateObject();

            if (ngx_ai_json_add(cv.messages, NULL, msg) != NGX_OK
                || ngx_ai_json_add_ref(msg, "role", "system") != NGX_OK
                || ngx_ai_json_add_ref(msg, "content", item->valuestring)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    item = ngx_ai_get(src, "input");

    if (!ngx_ai_given(item)) {
        ngx_ai_error_set(err, 400, "invalid_request_error", "input",
                         "missing_required_parameter", "Missing required "
                         "parameter: 'input' (the gateway keeps no "
                         "conversation, so every request carries its "
                         "whole input).");
        return NGX_DECLINED;
    }

    rc = ngx_ai_resp_input(&cv, item);
    if (rc != NGX_OK) {
        return rc;
    }

    if (cJSON_GetArraySize(cv.messages) == 0) {
        return ngx_ai_resp_invalid(&cv, "input", -1, NULL, -1, "Invalid "
                                   "'input': at least one message or item "
                                   "is required.");
    }

    rc = ngx_ai_resp_options(&cv, src, dst);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_ai_resp_tools(&cv, src, dst);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_ai_json_print(pool, dst, out);
}


/*
 * What needs a stored response, conversation or prompt: the gateway
 * stores nothing, so it cannot serve them.  "store" itself is accepted.
 */

static ngx_int_t
ngx_ai_resp_stored(ngx_ai_resp_conv_t *cv, cJSON *src)
{
    cJSON  *item;

    item = ngx_ai_get(src, "previous_response_id");

    if (ngx_ai_given(item)) {
        ngx_ai_error_set(cv->err, 400, "invalid_request_error",
                         "previous_response_id", "unsupported_parameter",
                         "The gateway stores no responses, so "
                         "'previous_response_id' cannot be looked up: send "
                         "the whole conversation in 'input' instead.");
        return NGX_DECLINED;
    }

    item = ngx_ai_get(src, "conversation");

    if (ngx_ai_given(item)) {
        ngx_ai_error_set(cv->err, 400, "invalid_request_error",
                         "conversation", "unsupported_parameter",
                         "The gateway stores no conversations: send the "
                         "whole conversation in 'input' instead.");
        return NGX_DECLINED;
    }

    item = ngx_ai_get(src, "prompt");

    if (ngx_ai_given(item)) {
        ngx_ai_error_set(cv->err, 400, "invalid_request_error", "prompt",
                         "unsupported_parameter", "The gateway has no "
                         "stored prompts: send 'instructions' and 'input' "
                         "instead.");
        return NGX_DECLINED;
    }

    if (cJSON_IsTrue(ngx_ai_get(src, "background"))) {
        ngx_ai_error_set(cv->err, 400, "invalid_request_error", "background",
                         "unsupported_parameter", "The gateway stores no "
                         "responses, so it cannot run one in the "
                         "background.");
        return NGX_DECLINED;
    }

    item = ngx_ai_get(src, "store");

    if (ngx_ai_given(item) && !cJSON_IsBool(item)) {
        ngx_ai_error_set(cv->err, 400, "invalid_request_error", "store",
                         "invalid_type", "Invalid type for 'store': "
                         "expected a boolean.");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* "input": a string (one user message) or a list of items */

static ngx_int_t
ngx_ai_resp_input(ngx_ai_resp_conv_t *cv, cJSON *input)
{
    int        i;
    cJSON     *item, *msg;
    ngx_int_t  rc;

    if (cJSON_IsString(input)) {
        msg = cJSON_CreateObject();

        if (ngx_ai_json_add(cv->messages, NULL, msg) != NGX_OK
            || ngx_ai_json_add_ref(msg, "role", "user") != NGX_OK
            || ngx_ai_json_add_ref(msg, "content", input->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (!cJSON_IsArray(input)) {
        return ngx_ai_resp_invalid(cv, "input", -1, NULL, -1, "Invalid type "
                                   "for 'input': expected a string or an "
                                   "array of input items.");
    }

    i = 0;

    cJSON_ArrayForEach(item, input) {
        rc = ngx_ai_resp_item(cv, item, i++);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_resp_item(ngx_ai_resp_conv_t *cv, cJSON *item, int i)
{
    cJSON       *type;
    const char  *t;

    if (!cJSON_IsObject(item)) {
        return ngx_ai_resp_invalid(cv, "input", i, NULL, -1, "Invalid input "
                                   "item: expected an object.");
    }

    type = ngx_ai_get(item, "type");

    if (!ngx_ai_given(type) || ngx_ai_is(type, "message")) {
        return ngx_ai_resp_message(cv, item, i);
    }

    if (!cJSON_IsString(type)) {
        return ngx_ai_resp_invalid(cv, "input", i, "type", -1, "Invalid "
                                   "type for an input item's 'type': "
                                   "expected a string.");
    }

    t = type->valuestring;

    if (ngx_strcmp(t, "function_call") == 0) {
        return ngx_ai_resp_call(cv, item, i);
    }

    if (ngx_strcmp(t, "function_call_output") == 0) {
        return ngx_ai_resp_output(cv, item, i);
    }

    if (ngx_strcmp(t, "reasoning") == 0) {
        return NGX_OK;          /* a model's own reasoning: no chat form */
    }

    if (ngx_strcmp(t, "item_reference") == 0) {
        return ngx_ai_resp_invalid(cv, "input", i, NULL, -1, "An "
                                   "item_reference looks up a stored item, "
                                   "and the gateway stores no responses: "
                                   "send the item itself (the Vercel AI SDK "
                                   "does with providerOptions.openai.store "
                                   "= false).");
    }

    return ngx_ai_resp_invalid(cv, "input", i, "type", -1, "Unsupported "
                               "input item type: the gateway takes "
                               "messages, function_call and "
                               "function_call_output items (built-in tools "
                               "of OpenAI's Responses API are not "
                               "served).");
}


/* a message item (or an easy input message: no "type") */

static ngx_int_t
ngx_ai_resp_message(ngx_ai_resp_conv_t *cv, cJSON *item, int i)
{
    cJSON         *role, *content, *msg, *parts;
    ngx_int_t      rc;
    const char    *r;
    ngx_ai_buf_t   b;

    role = ngx_ai_get(item, "role");
    content = ngx_ai_get(item, "content");

    if (!ngx_ai_is(role, "user") && !ngx_ai_is(role, "assistant")
        && !ngx_ai_is(role, "system") && !ngx_ai_is(role, "developer"))
    {
        return ngx_ai_resp_invalid(cv, "input", i, "role", -1, "Invalid "
                                   "'role': expected one of user, "
                                   "assistant, system, developer.");
    }

    r = role->valuestring;

    if (!cJSON_IsString(content) && !cJSON_IsArray(content)) {
        return ngx_ai_resp_invalid(cv, "input", i, "content", -1, "Invalid "
                                   "type for 'content': expected a string "
                                   "or an array of content parts.");
    }

    msg = cJSON_CreateObject();

    if (ngx_ai_json_add(cv->messages, NULL, msg) != NGX_OK
        || ngx_ai_json_add_ref(msg, "role", r) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cv->assistant = NULL;

    if (cJSON_IsString(content)) {
        rc = ngx_ai_json_add_ref(msg, "content", content->valuestring);

    } else if (r[0] == 'a') {

        /* an earlier answer: its text parts as one string */

        if (ngx_ai_buf_init(&b, cv->pool, 64) != NGX_OK) {
            return NGX_ERROR;
        }

        rc = ngx_ai_resp_assistant_text(cv, content, &b, i);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_ai_buf_append(&b, "", 1) != NGX_OK) {
            return NGX_ERROR;
        }

        rc = ngx_ai_json_add_ref(msg, "content", (char *) b.data);

    } else {
        parts = cJSON_CreateArray();

        if (ngx_ai_json_add(msg, "content", parts) != NGX_OK) {
            return NGX_ERROR;
        }

        rc = ngx_ai_resp_parts(cv, content, parts, i);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (r[0] == 'a') {
        cv->assistant = msg;
    }

    return NGX_OK;
}


/* user, system, developer parts -> chat content parts */

static ngx_int_t
ngx_ai_resp_parts(ngx_ai_resp_conv_t *cv, cJSON *content, cJSON *parts,
    int i)
{
    int          j;
    cJSON       *part, *type, *text, *p;
    ngx_int_t    rc;
    const char  *t;

    j = 0;

    cJSON_ArrayForEach(part, content) {

        type = ngx_ai_get(part, "type");

        if (!cJSON_IsObject(part) || !cJSON_IsString(type)) {
            return ngx_ai_resp_invalid(cv, "input", i, "content", j,
                                       "Invalid content part: expected an "
                                       "object with a 'type' string.");
        }

        t = type->valuestring;

        if (ngx_strcmp(t, "input_text") == 0
            || ngx_strcmp(t, "output_text") == 0)
        {
            text = ngx_ai_get(part, "text");

            if (!cJSON_IsString(text)) {
                return ngx_ai_resp_invalid(cv, "input", i, "content", j,
                                           "Invalid text part: 'text' must "
                                           "be a string.");
            }

            p = cJSON_CreateObject();

            rc = (ngx_ai_json_add(parts, NULL, p) != NGX_OK
                  || ngx_ai_json_add_ref(p, "type", "text") != NGX_OK
                  || ngx_ai_json_add_ref(p, "text", text->valuestring)
                     != NGX_OK)
                 ? NGX_ERROR : NGX_OK;

        } else if (ngx_strcmp(t, "input_image") == 0) {
            rc = ngx_ai_resp_image(cv, parts, part, i, j);

        } else if (ngx_strcmp(t, "input_file") == 0) {
            rc = ngx_ai_resp_file(cv, parts, part, i, j);

        } else {
            return ngx_ai_resp_invalid(cv, "input", i, "content", j,
                                       "Unsupported content part type: "
                                       "expected input_text, input_image "
                                       "or input_file.");
        }

        if (rc != NGX_OK) {
            return rc;
        }

        j++;
    }

    return NGX_OK;
}


/* input_image: image_url (a URL or a data: URL) -> an image_url part */

static ngx_int_t
ngx_ai_resp_image(ngx_ai_resp_conv_t *cv, cJSON *parts, cJSON *part, int i,
    int j)
{
    cJSON  *url, *detail, *p, *image;

    url = ngx_ai_get(part, "image_url");
    detail = ngx_ai_get(part, "detail");

    if (!cJSON_IsString(url)) {
        return ngx_ai_resp_invalid(cv, "input", i, "content", j,
                                   ngx_ai_given(ngx_ai_get(part, "file_id"))
                                   ? "An input_image by file_id names a "
                                     "file stored at OpenAI, which the "
                                     "gateway does not have: send "
                                     "'image_url' (a URL or a data: URL)."
                                   : "An input_image needs an 'image_url' "
                                     "string (a URL or a data: URL).");
    }

    p = cJSON_CreateObject();
    image = cJSON_CreateObject();

    if (ngx_ai_json_add(parts, NULL, p) != NGX_OK
        || ngx_ai_json_add_ref(p, "type", "image_url") != NGX_OK
        || ngx_ai_json_add(p, "image_url", image) != NGX_OK
        || ngx_ai_json_add_ref(image, "url", url->valuestring) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cJSON_IsString(detail)
        && ngx_ai_json_add_ref(image, "detail", detail->valuestring)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* input_file: file_data (a data: URL) -> a file part */

static ngx_int_t
ngx_ai_resp_file(ngx_ai_resp_conv_t *cv, cJSON *parts, cJSON *part, int i,
    int j)
{
    cJSON  *data, *name, *p, *file;

    data = ngx_ai_get(part, "file_data");
    name = ngx_ai_get(part, "filename");

    if (!cJSON_IsString(data)) {
        return ngx_ai_resp_invalid(cv, "input", i, "content", j, "An "
                                   "input_file needs 'file_data' (a data: "
                                   "URL); files by file_id or file_url are "
                                   "not fetched by the gateway.");
    }

    p = cJSON_CreateObject();
    file = cJSON_CreateObject();

    if (ngx_ai_json_add(parts, NULL, p) != NGX_OK
        || ngx_ai_json_add_ref(p, "type", "file") != NGX_OK
        || ngx_ai_json_add(p, "file", file) != NGX_OK
        || ngx_ai_json_add_ref(file, "file_data", data->valuestring)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cJSON_IsString(name)
        && ngx_ai_json_add_ref(file, "filename", name->valuestring) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* an assistant message's output_text (and refusal) parts, joined */

static ngx_int_t
ngx_ai_resp_assistant_text(ngx_ai_resp_conv_t *cv, cJSON *content,
    ngx_ai_buf_t *b, int i)
{
    int     j;
    cJSON  *part, *type, *text;

    j = 0;

    cJSON_ArrayForEach(part, content) {

        type = ngx_ai_get(part, "type");

        if (ngx_ai_is(type, "output_text") || ngx_ai_is(type, "input_text")) {
            text = ngx_ai_get(part, "text");

        } else if (ngx_ai_is(type, "refusal")) {
            text = ngx_ai_get(part, "refusal");

        } else {
            return ngx_ai_resp_invalid(cv, "input", i, "content", j,
                                       "Unsupported content part type in "
                                       "an assistant message: expected "
                                       "output_text or refusal.");
        }

        if (!cJSON_IsString(text)) {
            return ngx_ai_resp_invalid(cv, "input", i, "content", j,
                                       "Invalid text part: its text must "
                                       "be a string.");
        }

        if (ngx_ai_buf_append_str(b, text->valuestring) != NGX_OK) {
            return NGX_ERROR;
        }

        j++;
    }

    return NGX_OK;
}


/*
 * function_call -> a tool call of an assistant message: the one before it
 * when the item follows an assistant message or another call (parallel
 * calls are one chat message), else a new one with no content.
 */

static ngx_int_t
ngx_ai_resp_call(ngx_ai_resp_conv_t *cv, cJSON *item, int i)
{
    cJSON  *call_id, *name, *args, *calls, *call, *fn, *msg;

    call_id = ngx_ai_get(item, "call_id");
    name = ngx_ai_get(item, "name");
    args = ngx_ai_get(item, "arguments");

    if (!cJSON_IsString(call_id) || call_id->valuestring[0] == '\0') {
        return ngx_ai_resp_invalid(cv, "input", i, "call_id", -1, "A "
                                   "function_call needs a 'call_id' "
                                   "string.");
    }

    if (!cJSON_IsString(name) || name->valuestring[0] == '\0') {
        return ngx_ai_resp_invalid(cv, "input", i, "name", -1, "A "
                                   "function_call needs a 'name' string.");
    }

    if (ngx_ai_given(args) && !cJSON_IsString(args)) {
        return ngx_ai_resp_invalid(cv, "input", i, "arguments", -1, "A "
                                   "function_call's 'arguments' must be a "
                                   "string (JSON text).");
    }

    msg = cv->assistant;

    if (msg == NULL) {
        msg = cJSON_CreateObject();

        if (ngx_ai_json_add(cv->messages, NULL, msg) != NGX_OK
            || ngx_ai_json_add_ref(msg, "role", "assistant") != NGX_OK
            || ngx_ai_json_add(msg, "content", cJSON_CreateNull()) != NGX_OK)
        {
            return NGX_ERROR;
        }

        cv->assistant = msg;
    }

    calls = ngx_ai_get(msg, "tool_calls");

    if (calls == NULL) {
        calls = cJSON_CreateArray();

        if (ngx_ai_json_add(msg, "tool_calls", calls) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    call = cJSON_CreateObject();
    fn = cJSON_CreateObject();

    if (ngx_ai_json_add(calls, NULL, call) != NGX_OK
        || ngx_ai_json_add_ref(call, "id", call_id->valuestring) != NGX_OK
        || ngx_ai_json_add_ref(call, "type", "function") != NGX_OK
        || ngx_ai_json_add(call, "function", fn) != NGX_OK
        || ngx_ai_json_add_ref(fn, "name", name->valuestring) != NGX_OK
        || ngx_ai_json_add_ref(fn, "arguments",
                               cJSON_IsString(args) ? args->valuestring
                                                    : "{}")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* function_call_output -> a tool message; a list output: its text parts */

static ngx_int_t
ngx_ai_resp_output(ngx_ai_resp_conv_t *cv, cJSON *item, int i)
{
    cJSON         *call_id, *output, *msg, *part, *text;
    ngx_ai_buf_t   b;

    call_id = ngx_ai_get(item, "call_id");
    output = ngx_ai_get(item, "output");

    if (!cJSON_IsString(call_id) || call_id->valuestring[0] == '\0') {
        return ngx_ai_resp_invalid(cv, "input", i, "call_id", -1, "A "
                                   "function_call_output needs a 'call_id' "
                                   "string.");
    }

    if (ngx_ai_buf_init(&b, cv->pool, 64) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cJSON_IsString(output)) {
        if (ngx_ai_buf_append_str(&b, output->valuestring) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (cJSON_IsArray(output)) {
        cJSON_ArrayForEach(part, output) {
            text = ngx_ai_get(part, "text");

            if (ngx_ai_is(ngx_ai_get(part, "type"), "input_text")
                && cJSON_IsString(text)
                && ((b.len && ngx_ai_buf_append(&b, "\n", 1) != NGX_OK)
                    || ngx_ai_buf_append_str(&b, text->valuestring)
                       != NGX_OK))
            {
                return NGX_ERROR;
            }
        }

    } else {
        return ngx_ai_resp_invalid(cv, "input", i, "output", -1, "A "
                                   "function_call_output's 'output' must be "
                                   "a string or an array of content "
                                   "parts.");
    }

    if (ngx_ai_buf_append(&b, "", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    msg = cJSON_CreateObject();

    if (ngx_ai_json_add(cv->messages, NULL, msg) != NGX_OK
        || ngx_ai_json_add_ref(msg, "role", "tool") != NGX_OK
        || ngx_ai_json_add_ref(msg, "tool_call_id", call_id->valuestring)
           != NGX_OK
        || ngx_ai_json_add_ref(msg, "content", (char *) b.data) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cv->assistant = NULL;

    return NGX_OK;
}


/*
 * Sampling, length, reasoning, format, streaming and tags.  Types and
 * ranges of what is copied as it is are checked by the chat request's
 * parser; max_output_tokens here, so the error names it.
 */

static ngx_int_t
ngx_ai_resp_options(ngx_ai_resp_conv_t *cv, cJSON *src, cJSON *dst)
{
    cJSON      *item, *opts;
    ngx_int_t   rc;

    item = ngx_ai_get(src, "max_output_tokens");

    if (ngx_ai_given(item)) {
        if (!cJSON_IsNumber(item) || item->valuedouble < 1
            || item->valuedouble > 100000000
            || item->valuedouble != (double) (ngx_int_t) item->valuedouble)
        {
            return ngx_ai_resp_invalid(cv, "max_output_tokens", -1, NULL, -1,
                                       "Invalid 'max_output_tokens': "
                                       "expected an integer between 1 and "
                                       "100000000.");
        }

        if (ngx_ai_resp_copy(src, dst, "max_output_tokens",
                             "max_completion_tokens")
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_resp_copy(src, dst, "temperature", "temperature") != NGX_OK
        || ngx_ai_resp_copy(src, dst, "top_p", "top_p") != NGX_OK
        || ngx_ai_resp_copy(src, dst, "metadata", "metadata") != NGX_OK)
    {
        return NGX_ERROR;
    }

    item = ngx_ai_get(src, "user");

    if (!cJSON_IsString(item)) {
        item = ngx_ai_get(src, "safety_identifier");
    }

    if (cJSON_IsString(item)
        && !cJSON_AddItemReferenceToObject(dst, "user", item))
    {
        return NGX_ERROR;
    }

    item = ngx_ai_get(src, "reasoning");

    if (ngx_ai_given(item)) {
        if (!cJSON_IsObject(item)) {
            return ngx_ai_resp_invalid(cv, "reasoning", -1, NULL, -1,
                                       "Invalid type for 'reasoning': "
                                       "expected an object.");
        }

        opts = ngx_ai_get(item, "effort");

        if (ngx_ai_given(opts) && !cJSON_IsString(opts)) {
            return ngx_ai_resp_invalid(cv, "reasoning.effort", -1, NULL, -1,
                                       "Invalid type for "
                                       "'reasoning.effort': expected a "
                                       "string.");
        }

        if (cJSON_IsString(opts)
            && !cJSON_AddItemReferenceToObject(dst, "reasoning_effort", opts))
        {
            return NGX_ERROR;
        }
    }

    item = ngx_ai_get(src, "text");

    if (ngx_ai_given(item)) {
        rc = ngx_ai_resp_format(cv, item, dst);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    item = ngx_ai_get(src, "stream");

    if (ngx_ai_given(item)) {
        if (!cJSON_IsBool(item)) {
            return ngx_ai_resp_invalid(cv, "stream", -1, NULL, -1, "Invalid "
                                       "type for 'stream': expected a "
                                       "boolean.");
        }

        if (!cJSON_AddItemReferenceToObject(dst, "stream", item)) {
            return NGX_ERROR;
        }

        /* usage comes at the end of the chunks: response.completed has it */

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

    /* store (nothing is stored), include, truncation, service_tier,
     * prompt_cache_key, top_logprobs, max_tool_calls, text.verbosity,
     * stream_options: no chat equivalent the gateway serves, dropped */

    return NGX_OK;
}


/* text.format: json_schema or json_object -> response_format */

static ngx_int_t
ngx_ai_resp_format(ngx_ai_resp_conv_t *cv, cJSON *text, cJSON *dst)
{
    cJSON  *format, *type, *schema, *name, *rf, *js, *item;

    if (!cJSON_IsObject(text)) {
        return ngx_ai_resp_invalid(cv, "text", -1, NULL, -1, "Invalid type "
                                   "for 'text': expected an object.");
    }

    format = ngx_ai_get(text, "format");

    if (!ngx_ai_given(format)) {
        return NGX_OK;
    }

    type = ngx_ai_get(format, "type");

    if (ngx_ai_is(type, "text")) {
        return NGX_OK;
    }

    if (ngx_ai_is(type, "json_object")) {
        rf = cJSON_CreateObject();

        if (ngx_ai_json_add(dst, "response_format", rf) != NGX_OK
            || ngx_ai_json_add_ref(rf, "type", "json_object") != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (!ngx_ai_is(type, "json_schema")) {
        return ngx_ai_resp_invalid(cv, "text.format.type", -1, NULL, -1,
                                   "Invalid 'text.format.type': expected "
                                   "text, json_object or json_schema.");
    }

    schema = ngx_ai_get(format, "schema");
    name = ngx_ai_get(format, "name");

    if (!cJSON_IsObject(schema)) {
        return ngx_ai_resp_invalid(cv, "text.format.schema", -1, NULL, -1,
                                   "A json_schema format needs a 'schema' "
                                   "object.");
    }

    rf = cJSON_CreateObject();
    js = cJSON_CreateObject();

    if (ngx_ai_json_add(dst, "response_format", rf) != NGX_OK
        || ngx_ai_json_add_ref(rf, "type", "json_schema") != NGX_OK
        || ngx_ai_json_add(rf, "json_schema", js) != NGX_OK
        || ngx_ai_json_add_ref(js, "name", cJSON_IsString(name)
                                           ? name->valuestring : "response")
           != NGX_OK
        || !cJSON_AddItemReferenceToObject(js, "schema", schema))
    {
        return NGX_ERROR;
    }

    item = ngx_ai_get(format, "description");

    if (cJSON_IsString(item)
        && !cJSON_AddItemReferenceToObject(js, "description", item))
    {
        return NGX_ERROR;
    }

    item = ngx_ai_get(format, "strict");

    if (cJSON_IsBool(item)
        && !cJSON_AddItemReferenceToObject(js, "strict", item))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "tools" (function tools, flat), "tool_choice", "parallel_tool_calls" */

static ngx_int_t
ngx_ai_resp_tools(ngx_ai_resp_conv_t *cv, cJSON *src, cJSON *dst)
{
    int     i;
    cJSON  *tools, *tool, *t, *entry, *fn, *name, *item;

    tools = ngx_ai_get(src, "tools");

    if (!ngx_ai_given(tools)) {
        return NGX_OK;
    }

    if (!cJSON_IsArray(tools)) {
        return ngx_ai_resp_invalid(cv, "tools", -1, NULL, -1, "Invalid type "
                                   "for 'tools': expected an array.");
    }

    if (cJSON_GetArraySize(tools) == 0) {
        return NGX_OK;
    }

    t = cJSON_CreateArray();
    if (ngx_ai_json_add(dst, "tools", t) != NGX_OK) {
        return NGX_ERROR;
    }

    i = 0;

    cJSON_ArrayForEach(tool, tools) {

        if (!ngx_ai_is(ngx_ai_get(tool, "type"), "function")) {
            return ngx_ai_resp_invalid(cv, "tools", i, "type", -1, "The "
                                       "gateway serves function tools only; "
                                       "built-in tools of OpenAI's "
                                       "Responses API (web_search, "
                                       "file_search, code_interpreter, "
                                       "mcp ...) are not available through "
                                       "it.");
        }

        name = ngx_ai_get(tool, "name");

        if (!cJSON_IsString(name) || name->valuestring[0] == '\0') {
            return ngx_ai_resp_invalid(cv, "tools", i, "name", -1, "A "
                                       "function tool needs a 'name' "
                                       "string.");
        }

        entry = cJSON_CreateObject();
        fn = cJSON_CreateObject();

        if (ngx_ai_json_add(t, NULL, entry) != NGX_OK
            || ngx_ai_json_add_ref(entry, "type", "function") != NGX_OK
            || ngx_ai_json_add(entry, "function", fn) != NGX_OK
            || ngx_ai_json_add_ref(fn, "name", name->valuestring) != NGX_OK)
        {
            return NGX_ERROR;
        }

        item = ngx_ai_get(tool, "description");

        if (cJSON_IsString(item)
            && !cJSON_AddItemReferenceToObject(fn, "description", item))
        {
            return NGX_ERROR;
        }

        item = ngx_ai_get(tool, "parameters");

        if (cJSON_IsObject(item)
            && !cJSON_AddItemReferenceToObject(fn, "parameters", item))
        {
            return NGX_ERROR;
        }

        item = ngx_ai_get(tool, "strict");

        if (cJSON_IsBool(item)
            && !cJSON_AddItemReferenceToObject(fn, "strict", item))
        {
            return NGX_ERROR;
        }

        i++;
    }

    item = ngx_ai_get(src, "parallel_tool_calls");

    if (ngx_ai_given(item)) {
        if (!cJSON_IsBool(item)) {
            return ngx_ai_resp_invalid(cv, "parallel_tool_calls", -1, NULL,
                                       -1, "Invalid type for "
                                       "'parallel_tool_calls': expected a "
                                       "boolean.");
        }

        if (!cJSON_AddItemReferenceToObject(dst, "parallel_tool_calls", item))
        {
            return NGX_ERROR;
        }
    }

    item = ngx_ai_get(src, "tool_choice");

    if (!ngx_ai_given(item)) {
        return NGX_OK;
    }

    return ngx_ai_resp_tool_choice(cv, item, dst);
}


static ngx_int_t
ngx_ai_resp_tool_choice(ngx_ai_resp_conv_t *cv, cJSON *choice, cJSON *dst)
{
    cJSON  *name, *tc, *fn;

    if (ngx_ai_is(choice, "auto") || ngx_ai_is(choice, "none")
        || ngx_ai_is(choice, "required"))
    {
        return cJSON_AddItemReferenceToObject(dst, "tool_choice", choice)
               ? NGX_OK : NGX_ERROR;
    }

    name = ngx_ai_get(choice, "name");

    if (!ngx_ai_is(ngx_ai_get(choice, "type"), "function")
        || !cJSON_IsString(name))
    {
        return ngx_ai_resp_invalid(cv, "tool_choice", -1, NULL, -1,
                                   "Invalid 'tool_choice': expected auto, "
                                   "none, required or {\"type\": "
                                   "\"function\", \"name\": ...}.");
    }

    tc = cJSON_CreateObject();
    fn = cJSON_CreateObject();

    if (ngx_ai_json_add(dst, "tool_choice", tc) != NGX_OK
        || ngx_ai_json_add_ref(tc, "type", "function") != NGX_OK
        || ngx_ai_json_add(tc, "function", fn) != NGX_OK
        || ngx_ai_json_add_ref(fn, "name", name->valuestring) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* src[from], when given, as dst[to] (a reference: no copy) */

static ngx_int_t
ngx_ai_resp_copy(cJSON *src, cJSON *dst, const char *from, const char *to)
{
    cJSON  *item;

    item = ngx_ai_get(src, from);

    if (!ngx_ai_given(item)) {
        return NGX_OK;
    }

    return cJSON_AddItemReferenceToObject(dst, to, item) ? NGX_OK : NGX_ERROR;
}


/*
 * A 400 invalid_request_error whose param is where the fault is, as
 * "input[3].content[1]"; NGX_DECLINED (NGX_ERROR: out of memory).
 */

static ngx_int_t
ngx_ai_resp_invalid(ngx_ai_resp_conv_t *cv, const char *field, int i,
    const char *sub, int j, const char *msg)
{
    ngx_ai_buf_t  b;

    ngx_ai_error_set(cv->err, 400, "invalid_request_error", NULL,
                     "invalid_value", msg);

    if (field == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_ai_buf_init(&b, cv->pool, 64) != NGX_OK
        || ngx_ai_buf_append_str(&b, field) != NGX_OK
        || (i >= 0
            && (ngx_ai_buf_append(&b, "[", 1) != NGX_OK
                || ngx_ai_buf_append_uint(&b, i) != NGX_OK
                || ngx_ai_buf_append(&b, "]", 1) != NGX_OK))
        || (sub
            && (ngx_ai_buf_append(&b, ".", 1) != NGX_OK
                || ngx_ai_buf_append_str(&b, sub) != NGX_OK))
        || (j >= 0
            && (ngx_ai_buf_append(&b, "[", 1) != NGX_OK
                || ngx_ai_buf_append_uint(&b, j) != NGX_OK
                || ngx_ai_buf_append(&b, "]", 1) != NGX_OK))
        || ngx_ai_buf_append(&b, "", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cv->err->param = (const char *) b.data;

    return NGX_DECLINED;
}
