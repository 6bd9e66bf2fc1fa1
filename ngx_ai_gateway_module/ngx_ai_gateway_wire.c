
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * OpenAI's wire format, shared by the translators: error objects, usage,
 * the chat.completion of a translated answer, its id, a message's text,
 * data: URLs, tool calls, SSE data events.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


static ngx_int_t ngx_ai_content_piece(ngx_ai_buf_t *b, const char *s,
    const char *sep);


void
ngx_ai_error_set(ngx_ai_error_t *err, ngx_uint_t status, const char *type,
    const char *param, const char *code, const char *msg)
{
    err->status = status;
    err->type = type;
    err->param = param;
    err->code = code;
    err->message.data = (u_char *) msg;
    err->message.len = ngx_strlen(msg);
}


/* {"error":{"message":...,"type":...,"param":...,"code":...}} */

ngx_int_t
ngx_ai_error_render(ngx_pool_t *pool, ngx_ai_error_t *err, ngx_str_t *out)
{
    ngx_ai_buf_t  b;

    if (ngx_ai_buf_init(&b, pool, err->message.len + 128) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(&b, "{\"error\":{\"message\":") != NGX_OK
        || ngx_ai_buf_append_json_string(&b, err->message.data,
                                         err->message.len) != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"type\":") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_json_string(&b, (u_char *) (err->type
                                      ? err->type : "api_error"),
                                      ngx_strlen(err->type
                                      ? err->type : "api_error"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(&b, ",\"param\":") != NGX_OK) {
        return NGX_ERROR;
    }

    if (err->param) {
        if (ngx_ai_buf_append_json_string(&b, (u_char *) err->param,
                                          ngx_strlen(err->param))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(&b, "null") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(&b, ",\"code\":") != NGX_OK) {
        return NGX_ERROR;
    }

    if (err->code) {
        if (ngx_ai_buf_append_json_string(&b, (u_char *) err->code,
                                          ngx_strlen(err->code))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(&b, "null") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(&b, "}}") != NGX_OK) {
        return NGX_ERROR;
    }

    out->data = b.data;
    out->len = b.len;

    return NGX_OK;
}


/* the OpenAI error "type" that best names a provider's HTTP status */

const char *
ngx_ai_error_type_by_status(ngx_uint_t status)
{
    switch (status) {

    case 401:
        return "authentication_error";

    case 402:
        return "insufficient_quota";

    case 403:
        return "permission_error";

    case 404:
        return "not_found_error";

    case 429:
        return "rate_limit_exceeded";

    default:
        break;
    }

    if (status >= 500) {
        return "server_error";
    }

    if (status >= 400) {
        return "invalid_request_error";
    }

    return "upstream_error";
}


/* OpenAI "usage" object -> normalised usage; NGX_DECLINED if unusable */

ngx_int_t
ngx_ai_usage_from_openai(cJSON *usage, ngx_ai_usage_t *u)
{
    cJSON     *details;
    uint64_t   v;

    if (!cJSON_IsObject(usage)) {
        return NGX_DECLINED;
    }

    if (ngx_ai_json_get_uint(usage, "prompt_tokens", &u->prompt_tokens)
        != NGX_OK
        || ngx_ai_json_get_uint(usage, "completion_tokens",
                                &u->completion_tokens)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    details = cJSON_GetObjectItemCaseSensitive(usage,
                                               "prompt_tokens_details");
    if (cJSON_IsObject(details)
        && ngx_ai_json_get_uint(details, "cached_tokens", &v) == NGX_OK)
    {
        u->cached_tokens = v;
    }

    details = cJSON_GetObjectItemCaseSensitive(usage,
                                               "completion_tokens_details");
    if (cJSON_IsObject(details)
        && ngx_ai_json_get_uint(details, "reasoning_tokens", &v) == NGX_OK)
    {
        u->reasoning_tokens = v;
    }

    u->known = 1;

    return NGX_OK;
}


/* normalised usage -> OpenAI "usage" object (not tracked: caller owns) */

cJSON *
ngx_ai_usage_to_openai(ngx_ai_usage_t *u)
{
    cJSON  *usage, *details;

    usage = cJSON_CreateObject();
    if (usage == NULL) {
        return NULL;
    }

    cJSON_AddNumberToObject(usage, "prompt_tokens",
                            (double) u->prompt_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens",
                            (double) u->completion_tokens);
    cJSON_AddNumberToObject(usage, "total_tokens",
                            (double) (u->prompt_tokens
                                      + u->completion_tokens));

    if (u->cached_tokens) {
        details = cJSON_AddObjectToObject(usage, "prompt_tokens_details");
        if (details) {
            cJSON_AddNumberToObject(details, "cached_tokens",
                                    (double) u->cached_tokens);
        }
    }

    if (u->reasoning_tokens) {
        details = cJSON_AddObjectToObject(usage,
                                          "completion_tokens_details");
        if (details) {
            cJSON_AddNumberToObject(details, "reasoning_tokens",
                                    (double) u->reasoning_tokens);
        }
    }

    return usage;
}


/* normalised usage -> OpenAI "usage" object text, as ngx_ai_usage_to_openai */

ngx_int_t
ngx_ai_buf_append_usage(ngx_ai_buf_t *b, ngx_ai_usage_t *u)
{
    if (ngx_ai_buf_append_str(b, "{\"prompt_tokens\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, u->prompt_tokens) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"completion_tokens\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, u->completion_tokens) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"total_tokens\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, u->prompt_tokens + u->completion_tokens)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (u->cached_tokens) {
        if (ngx_ai_buf_append_str(b, ",\"prompt_tokens_details\":"
                                     "{\"cached_tokens\":")
            != NGX_OK
            || ngx_ai_buf_append_uint(b, u->cached_tokens) != NGX_OK
            || ngx_ai_buf_append(b, "}", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (u->reasoning_tokens) {
        if (ngx_ai_buf_append_str(b, ",\"completion_tokens_details\":"
                                     "{\"reasoning_tokens\":")
            != NGX_OK
            || ngx_ai_buf_append_uint(b, u->reasoning_tokens) != NGX_OK
            || ngx_ai_buf_append(b, "}", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (u->priced) {
        if (ngx_ai_buf_append_str(b, ",\"cost\":") != NGX_OK
            || ngx_ai_buf_append_usd(b, u->cost) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_ai_buf_append(b, "}", 1);
}


/*
 * The cost of tokens at a price per 1M tokens, in nano-USD, rounded down
 * (the ledger's arithmetic: ngx_http_ai_cost_of() is this).
 */

uint64_t
ngx_ai_tokens_cost(uint64_t tokens, uint64_t price)
{
    return tokens * (price / 1000000)
           + tokens * (price % 1000000) / 1000000;
}


/* a known usage's cost at a known price; otherwise it has none */

void
ngx_ai_usage_price(ngx_ai_usage_t *u, ngx_ai_price_t *price)
{
    if (!u->known || !price->known) {
        u->priced = 0;
        return;
    }

    u->cost = ngx_ai_tokens_cost(u->prompt_tokens, price->input)
              + ngx_ai_tokens_cost(u->completion_tokens, price->output);
    u->priced = 1;
}


/* nano-USD as a JSON number of USD: 0.000123, 2, 0.000000001 */

ngx_int_t
ngx_ai_buf_append_usd(ngx_ai_buf_t *b, uint64_t nano)
{
    u_char      frac[10];
    uint64_t    f;
    ngx_uint_t  i, n;

    if (ngx_ai_buf_append_uint(b, nano / 1000000000) != NGX_OK) {
        return NGX_ERROR;
    }

    f = nano % 1000000000;

    if (f == 0) {
        return NGX_OK;
    }

    frac[0] = '.';

    for (i = 9; i > 0; i--) {
        frac[i] = (u_char) ('0' + f % 10);
        f /= 10;
    }

    for (n = 10; frac[n - 1] == '0'; n--) { /* void */ }

    return ngx_ai_buf_append(b, frac, n);
}


/*
 * p is at the first byte of a JSON value: the byte just past it, or last
 * when it does not end before last.  The text was parsed before (a
 * provider's answer): this only walks it.
 */

static u_char *
ngx_ai_json_value_end(u_char *p, u_char *last)
{
    ngx_uint_t  depth;

    depth = 0;

    while (p < last) {

        if (*p == '"') {
            p = ngx_ai_json_string_close(p + 1, last);

            if (p == last) {
                return last;
            }

            p++;

        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;

        } else if (*p == '}' || *p == ']') {
            if (depth == 0) {
                return p;
            }

            depth--;
            p++;

        } else if (depth == 0
                   && (*p == ',' || *p == ' ' || *p == '\t' || *p == '\r'
                       || *p == '\n'))
        {
            return p;

        } else {
            p++;
        }

        if (depth == 0 && (p[-1] == '"' || p[-1] == '}' || p[-1] == ']')) {
            return p;
        }
    }

    return last;
}


/*
 * p is at an object's '{': the first byte of the value of its member key
 * (a key written without escapes), or NULL; *end is set past the value.
 */

static u_char *
ngx_ai_json_member(u_char *p, u_char *last, const char *key, u_char **end)
{
    u_char  *k, *v;
    size_t   len;

    len = ngx_strlen(key);
    p++;

    for ( ;; ) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == '\r'
                            || *p == '\n' || *p == ','))
        {
            p++;
        }

        if (p == last || *p != '"') {
            return NULL;                /* '}' or not an object */
        }

        k = p + 1;
        p = ngx_ai_json_string_close(k, last);

        if (p == last) {
            return NULL;
        }

        v = p++;

        while (p < last && *p != ':') {
            p++;
        }

        if (p == last) {
            return NULL;
        }

        p++;

        while (p < last && (*p == ' ' || *p == '\t' || *p == '\r'
                            || *p == '\n'))
        {
            p++;
        }

        if (p == last) {
            return NULL;
        }

        *end = ngx_ai_json_value_end(p, last);

        if ((size_t) (v - k) == len && ngx_strncmp(k, key, len) == 0) {
            return p;
        }

        if (*end == last) {
            return NULL;
        }

        p = *end;
    }
}


/*
 * A chat.completion (or chunk) text with "cost" set in its top-level
 * "usage" object to the gateway's cost of u: a provider's own cost is
 * replaced, the rest of the text is left as it is.  Without a price, or
 * without a usage object, json is unchanged.
 */

ngx_int_t
ngx_ai_usage_cost_set(ngx_pool_t *pool, ngx_str_t *json, ngx_ai_usage_t *u)
{
    u_char        *p, *last, *usage, *usage_end, *cost, *cost_end, *at;
    ngx_ai_buf_t   b;

    if (!u->priced || json->len == 0) {
        return NGX_OK;
    }

    p = json->data;
    last = p + json->len;

    while (p < last && *p != '{') {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            return NGX_OK;
        }

        p++;
    }

    if (p == last) {
        return NGX_OK;
    }

    usage = ngx_ai_json_member(p, last, "usage", &usage_end);

    if (usage == NULL || *usage != '{' || usage_end == last) {
        return NGX_OK;
    }

    cost = ngx_ai_json_member(usage, usage_end, "cost", &cost_end);

    if (ngx_ai_buf_init(&b, pool, json->len + 32) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cost) {
        at = cost;

    } else {
        at = usage + 1;
        cost_end = at;
    }

    if (ngx_ai_buf_append(&b, json->data, at - json->data) != NGX_OK
        || (cost == NULL
            && ngx_ai_buf_append_str(&b, "\"cost\":") != NGX_OK)
        || ngx_ai_buf_append_usd(&b, u->cost) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cost == NULL) {

        /* a member follows unless the object was empty */

        for (p = at; p < usage_end && (*p == ' ' || *p == '\t'
                                       || *p == '\r' || *p == '\n'); p++)
        {
            /* void */
        }

        if (p < usage_end && *p != '}'
            && ngx_ai_buf_append(&b, ",", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_buf_append(&b, cost_end, last - cost_end) != NGX_OK) {
        return NGX_ERROR;
    }

    json->data = b.data;
    json->len = b.len;

    return NGX_OK;
}


/* an answer's id: "chatcmpl-" + the provider's id, or one made from the
 * time when it sent none */

ngx_int_t
ngx_ai_chat_id(ngx_pool_t *pool, cJSON *id, time_t created, ngx_str_t *out)
{
    ngx_ai_buf_t  b;

    if (ngx_ai_buf_init(&b, pool, 64) != NGX_OK
        || ngx_ai_buf_append_str(&b, "chatcmpl-") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cJSON_IsString(id) && id->valuestring[0] != '\0') {
        if (ngx_ai_buf_append_str(&b, id->valuestring) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(&b, "ai") != NGX_OK
               || ngx_ai_buf_append_uint(&b, (uint64_t) (created > 0
                                                         ? created : 0))
                  != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->data = b.data;
    out->len = b.len;

    return NGX_OK;
}


/*
 * A chat.completion with one choice, for translators of other wire
 * formats: out->content, out->finish_reason and out->usage are filled by
 * the caller; tool_calls, when not NULL or empty, is the JSON text of the
 * message's "tool_calls" array.  "content" is null when there is no text
 * but there are tool calls, as OpenAI sends it.
 */

ngx_int_t
ngx_ai_chat_completion_render(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_str_t *id, ngx_str_t *tool_calls, ngx_ai_response_t *out)
{
    ngx_uint_t    calls;
    ngx_ai_buf_t  b;

    calls = (tool_calls && tool_calls->len);

    if (ngx_ai_buf_init(&b, pool, out->content.len + (calls
                                  ? tool_calls->len : 0) + 512)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(&b, "{\"id\":") != NGX_OK
        || ngx_ai_buf_append_json_string(&b, id->data, id->len) != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"object\":\"chat.completion\","
                                     "\"created\":")
           != NGX_OK
        || ngx_ai_buf_append_uint(&b, (uint64_t) (req->created > 0
                                                  ? req->created : 0))
           != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"model\":") != NGX_OK
        || ngx_ai_buf_append_json_string(&b, req->model.data, req->model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"choices\":[{\"index\":0,"
                                     "\"message\":{\"role\":\"assistant\","
                                     "\"content\":")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (out->content.len == 0 && calls) {
        if (ngx_ai_buf_append_str(&b, "null") != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_json_string(&b, out->content.data,
                                             out->content.len)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (calls) {
        if (ngx_ai_buf_append_str(&b, ",\"tool_calls\":") != NGX_OK
            || ngx_ai_buf_append(&b, tool_calls->data, tool_calls->len)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_buf_append_str(&b, "},\"logprobs\":null,\"finish_reason\":")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (out->finish_reason.len) {
        if (ngx_ai_buf_append_json_string(&b, out->finish_reason.data,
                                          out->finish_reason.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(&b, "null") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(&b, "}]") != NGX_OK) {
        return NGX_ERROR;
    }

    if (out->usage.known) {
        if (ngx_ai_buf_append_str(&b, ",\"usage\":") != NGX_OK
            || ngx_ai_buf_append_usage(&b, &out->usage) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_buf_append(&b, "}", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    out->body.data = b.data;
    out->body.len = b.len;

    return NGX_OK;
}


/*
 * Appends the text of an OpenAI message "content" (a string, or the
 * "text" of its text parts) to b, with sep before every piece when b
 * already holds text; empty pieces are skipped.
 */

ngx_int_t
ngx_ai_content_text(cJSON *content, ngx_ai_buf_t *b, const char *sep)
{
    cJSON  *part, *type, *text;

    if (cJSON_IsString(content)) {
        return ngx_ai_content_piece(b, content->valuestring, sep);
    }

    if (!cJSON_IsArray(content)) {
        return NGX_OK;
    }

    cJSON_ArrayForEach(part, content) {
        type = cJSON_GetObjectItemCaseSensitive(part, "type");
        text = cJSON_GetObjectItemCaseSensitive(part, "text");

        if (!cJSON_IsString(type) || !cJSON_IsString(text)
            || ngx_strcmp(type->valuestring, "text") != 0)
        {
            continue;
        }

        if (ngx_ai_content_piece(b, text->valuestring, sep) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_content_piece(ngx_ai_buf_t *b, const char *s, const char *sep)
{
    if (s == NULL || *s == '\0') {
        return NGX_OK;
    }

    if (b->len && ngx_ai_buf_append_str(b, sep) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_buf_append_str(b, s);
}


/*
 * "data:image/png;base64,AAAA" -> type "image/png", data "AAAA" (both
 * point into url); NGX_DECLINED when it is not a base64 data URL with a
 * media type.
 */

ngx_int_t
ngx_ai_data_url_parse(const u_char *url, size_t len, ngx_str_t *type,
    ngx_str_t *data)
{
    const u_char  *p, *last, *comma, *semi;

    if (len < 5 || !ngx_ai_strncaseeq(url, "data:", 5)) {
        return NGX_DECLINED;
    }

    p = url + 5;
    last = url + len;

    comma = ngx_strlchr((u_char *) p, (u_char *) last, ',');

    if (comma == NULL || comma + 1 == last || comma - p < 7
        || !ngx_ai_strncaseeq(comma - 7, ";base64", 7))
    {
        return NGX_DECLINED;
    }

    semi = ngx_strlchr((u_char *) p, (u_char *) comma, ';');

    if (semi == NULL || semi == p) {
        return NGX_DECLINED;
    }

    type->data = (u_char *) p;
    type->len = semi - p;
    data->data = (u_char *) comma + 1;
    data->len = last - (comma + 1);

    return NGX_OK;
}


/* {"id":...,"type":"function","function":{"name":...,"arguments":...}} */

ngx_int_t
ngx_ai_buf_append_tool_call(ngx_ai_buf_t *b, ngx_str_t *id, ngx_str_t *name,
    ngx_str_t *args)
{
    if (ngx_ai_buf_append_str(b, "{\"id\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, id->data, id->len) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"type\":\"function\",\"function\":"
                                    "{\"name\":")
           != NGX_OK
        || ngx_ai_buf_append_json_string(b, name->data, name->len) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"arguments\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, args->data, args->len) != NGX_OK
        || ngx_ai_buf_append_str(b, "}}") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "data: <data>\n\n" */

ngx_int_t
ngx_ai_sse_data_event(ngx_ai_buf_t *out, ngx_str_t *data)
{
    if (ngx_ai_buf_reserve(out, data->len + 8) != NGX_OK) {
        return NGX_ERROR;
    }

    out->len = ngx_cpymem(out->data + out->len, "data: ", 6) - out->data;
    out->len = ngx_cpymem(out->data + out->len, data->data, data->len)
               - out->data;
    out->data[out->len++] = '\n';
    out->data[out->len++] = '\n';

    return NGX_OK;
}


/*
 * n answers of one choice each (n calls to a provider without "n") -> one
 * chat.completion: the first answer's id, model and created, choice i of
 * answer i with its "index" set to i, and usage the sum the caller gives
 * (when known).  NGX_DECLINED: an answer is not a chat.completion with a
 * choice.
 */

ngx_int_t
ngx_ai_chat_completion_merge(ngx_pool_t *pool, ngx_str_t *answers,
    ngx_uint_t n, ngx_ai_usage_t *usage, ngx_str_t *out)
{
    cJSON       *root, *choices, *other, *choice, *u;
    ngx_uint_t   i;

    root = ngx_ai_json_parse(pool, answers[0].data, answers[0].len);
    choices = cJSON_GetObjectItemCaseSensitive(root, "choices");

    if (!cJSON_IsObject(root) || !cJSON_IsArray(choices)
        || cJSON_GetArraySize(choices) < 1)
    {
        return NGX_DECLINED;
    }

    while (cJSON_GetArraySize(choices) > 1) {
        cJSON_DeleteItemFromArray(choices, 1);
    }

    for (i = 1; i < n; i++) {
        other = ngx_ai_json_parse(pool, answers[i].data, answers[i].len);
        choice = cJSON_DetachItemFromArray(
                     cJSON_GetObjectItemCaseSensitive(other, "choices"), 0);

        if (!cJSON_IsObject(choice)) {
            cJSON_Delete(choice);
            return NGX_DECLINED;
        }

        cJSON_AddItemToArray(choices, choice);
    }

    i = 0;

    cJSON_ArrayForEach(choice, choices) {
        cJSON_DeleteItemFromObjectCaseSensitive(choice, "index");

        if (cJSON_AddNumberToObject(choice, "index", (double) i++) == NULL) {
            return NGX_ERROR;
        }
    }

    /* the first answer's usage is not the sum: the sum, or none */

    if (usage) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "usage");
    }

    if (usage && usage->known) {
        u = ngx_ai_usage_to_openai(usage);
        if (u == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToObject(root, "usage", u);
    }

    return ngx_ai_json_print(pool, root, out);
}


/*
 * The check of a wire format without "n" and token log probabilities
 * (Anthropic, Gemini, Bedrock): logprobs cannot be asked, and n > 1 only
 * whole (n > 1 whole answers are n calls, made by the strategy; a stream
 * of n answers would be n streams merged).
 */

ngx_int_t
ngx_ai_check_one_answer(ngx_ai_chat_request_t *req, ngx_ai_error_t *err)
{
    if (req->logprobs) {
        ngx_ai_error_set(err, 400, "invalid_request_error", "logprobs",
                         "unsupported_parameter", "Unsupported parameter: "
                         "'logprobs' is not supported by this model's "
                         "provider.");
        return NGX_DECLINED;
    }

    if (req->stream && req->n > 1) {
        ngx_ai_error_set(err, 400, "invalid_request_error", "n",
                         "unsupported_value", "Unsupported value: 'n' "
                         "above 1 with 'stream': true is not supported by "
                         "this model's provider; ask without streaming.");
        return NGX_DECLINED;
    }

    return NGX_OK;
}
