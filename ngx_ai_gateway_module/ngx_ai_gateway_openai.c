
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * type=openai: OpenAI and every OpenAI-compatible provider.  Requests go
 * out as the client sent them, with the provider prefix stripped from
 * "model"; answers come back as they are, after a check that they are real
 * answers and with their usage read.  Streams always ask the provider for
 * usage; the extra usage chunk is dropped when the client did not ask.
 * OpenAI's reasoning models get "max_completion_tokens" and the
 * "developer" role for what the client sent as "max_tokens" and "system"
 * (ngx_ai_openai_reasoning()).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


/* what a reasoning model's call changed in the client's tree */
typedef struct {
    cJSON                      *max_tokens;  /* detached, put back */
    cJSON                     **roles;       /* "system" -> "developer" */
    char                      **names;       /* ... their own strings */
    ngx_uint_t                  nroles;
    unsigned                    added:1;     /* max_completion_tokens */
} ngx_ai_openai_renamed_t;


static ngx_int_t ngx_ai_openai_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out);
static ngx_int_t ngx_ai_openai_splice(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out);
static ngx_int_t ngx_ai_openai_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);
static void ngx_ai_openai_error(ngx_pool_t *pool, ngx_uint_t status,
    u_char *body, size_t len, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_openai_stream_event(ngx_ai_stream_t *st,
    ngx_ai_sse_event_t *ev);
static void ngx_ai_openai_stream_text(ngx_ai_stream_t *st, cJSON *choice);
static ngx_int_t ngx_ai_openai_embed_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_openai_embed_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);
static ngx_uint_t ngx_ai_openai_reasoning(ngx_str_t *model);
static ngx_uint_t ngx_ai_openai_legacy_fields(cJSON *root);
static ngx_int_t ngx_ai_openai_rename(ngx_pool_t *pool, cJSON *root,
    ngx_ai_openai_renamed_t *rn);
static void ngx_ai_openai_restore(cJSON *root, ngx_ai_openai_renamed_t *rn);
static ngx_int_t ngx_ai_openai_stream_cost(ngx_ai_stream_t *st, cJSON *root,
    cJSON *usage);


ngx_ai_translator_t  ngx_ai_openai_translator = {
    ngx_string("openai"),
    NGX_AI_PROVIDER_OPENAI,
    ngx_ai_openai_request,
    ngx_ai_openai_response,
    ngx_ai_openai_error,
    ngx_ai_openai_stream_event,
    NULL,
    ngx_ai_openai_embed_request,
    ngx_ai_openai_embed_response,
    NULL,                                  /* no count_tokens endpoint */
    NULL,
    NULL,
    1
};


static ngx_int_t
ngx_ai_openai_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out)
{
    cJSON                    *root, *model, *models, *opts, *usage;
    cJSON                    *upstream_model;
    cJSON                    *null_opts, *stream, *stream_opts, *usage_opt;
    ngx_int_t                 rc;
    ngx_uint_t                added_opts, rename;
    ngx_ai_openai_renamed_t   rn;

    rename = ngx_ai_openai_reasoning(&req->upstream_model)
             && ngx_ai_openai_legacy_fields(req->json);

    /* the client's own bytes, edited where needed: no print of the tree */

    if (!rename) {
        rc = ngx_ai_openai_splice(pool, req, out);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    /*
     * The client's tree is changed in place for the print and restored
     * after it, so the next attempt (another provider) sees it unchanged.
     */

    root = req->json;

    model = cJSON_DetachItemFromObjectCaseSensitive(root, "model");
    models = cJSON_DetachItemFromObjectCaseSensitive(root, "models");
    usage_opt = cJSON_DetachItemFromObjectCaseSensitive(root, "usage");

    /* the call may stream or not whatever the client asked (fusion's
     * members do not): "stream" says what this call does */

    stream = cJSON_DetachItemFromObjectCaseSensitive(root, "stream");
    stream_opts = NULL;

    if (!req->stream) {
        stream_opts = cJSON_DetachItemFromObjectCaseSensitive(root,
                                                          "stream_options");

    } else if (cJSON_AddTrueToObject(root, "stream") == NULL) {
        rc = NGX_ERROR;
        goto restore;
    }

    null_opts = NULL;

    upstream_model = cJSON_CreateStringReference(
                         (char *) req->upstream_model.data);

    /* upstream_model points into the client's "model" string, which ends
     * with the string; the reference needs a terminated string */

    if (upstream_model == NULL) {
        rc = NGX_ERROR;
        goto restore;
    }

    cJSON_AddItemToObject(root, "model", upstream_model);

    ngx_memzero(&rn, sizeof(ngx_ai_openai_renamed_t));

    if (rename && ngx_ai_openai_rename(pool, root, &rn) != NGX_OK) {
        ngx_ai_openai_restore(root, &rn);
        cJSON_DeleteItemFromObjectCaseSensitive(root, "model");
        rc = NGX_ERROR;
        goto restore;
    }

    usage = NULL;
    added_opts = 0;

    /* a stream asks for usage whatever the request says (a fusion judge's
     * request has no stream_options of its own) */

    opts = cJSON_GetObjectItemCaseSensitive(root, "stream_options");

    if (!req->stream
        || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts,
                                                         "include_usage")))
    {
        opts = NULL;                    /* as the client wrote it */

    } else {

        if (!cJSON_IsObject(opts)) {
            opts = cJSON_CreateObject();
            if (opts == NULL) {
                ngx_ai_openai_restore(root, &rn);
                cJSON_DeleteItemFromObjectCaseSensitive(root, "model");
                rc = NGX_ERROR;
                goto restore;
            }

            /* a "stream_options": null is put back after the print */

            null_opts = cJSON_DetachItemFromObjectCaseSensitive(root,
                                                         "stream_options");
            cJSON_AddItemToObject(root, "stream_options", opts);
            added_opts = 1;
        }

        usage = cJSON_DetachItemFromObjectCaseSensitive(opts,
                                                        "include_usage");
        cJSON_AddTrueToObject(opts, "include_usage");
    }

    rc = ngx_ai_json_print(pool, root, &out->body);

    ngx_ai_openai_restore(root, &rn);

    if (opts) {
        cJSON_DeleteItemFromObjectCaseSensitive(opts, "include_usage");

        if (usage) {
            cJSON_AddItemToObject(opts, "include_usage", usage);
        }

        if (added_opts) {
            cJSON_DeleteItemFromObjectCaseSensitive(root, "stream_options");

            if (null_opts) {
                cJSON_AddItemToObject(root, "stream_options", null_opts);
            }
        }
    }

    cJSON_DeleteItemFromObjectCaseSensitive(root, "model");

restore:

    cJSON_DeleteItemFromObjectCaseSensitive(root, "stream");

    if (stream) {
        cJSON_AddItemToObject(root, "stream", stream);
    }

    if (stream_opts) {
        cJSON_AddItemToObject(root, "stream_options", stream_opts);
    }

    if (model) {
        cJSON_AddItemToObject(root, "model", model);
    }

    if (models) {
        cJSON_AddItemToObject(root, "models", models);
    }

    if (usage_opt) {
        cJSON_AddItemToObject(root, "usage", usage_opt);
    }

    ngx_str_set(&out->path, "/v1/chat/completions");

    return rc;
}


/*
 * OpenAI's reasoning models refuse "max_tokens" and take "system" only as
 * "developer"; a client that sends "openai/o3-mini" cannot know it names
 * one.  The rule: the upstream model's last path segment starts with
 * "o1", "o3" or "o4" followed by its end or '-', or with "gpt-5"
 * followed by its end, '-' or '.'.
 */

static ngx_uint_t
ngx_ai_openai_reasoning(ngx_str_t *model)
{
    u_char  *p, *last, *slash;
    size_t   len;

    p = model->data;
    last = p + model->len;

    while ((slash = ngx_strlchr(p, last, '/')) != NULL) {
        p = slash + 1;
    }

    len = last - p;

    if (len >= 2 && p[0] == 'o' && (p[1] == '1' || p[1] == '3'
                                    || p[1] == '4'))
    {
        return len == 2 || p[2] == '-';
    }

    if (len >= 5 && ngx_strncmp(p, "gpt-5", 5) == 0) {
        return len == 5 || p[5] == '-' || p[5] == '.';
    }

    return 0;
}


/* the request has "max_tokens" or a "system" message */

static ngx_uint_t
ngx_ai_openai_legacy_fields(cJSON *root)
{
    cJSON  *item, *msg, *role;

    item = cJSON_GetObjectItemCaseSensitive(root, "max_tokens");

    if (item && !cJSON_IsNull(item)) {
        return 1;
    }

    cJSON_ArrayForEach(msg, cJSON_GetObjectItemCaseSensitive(root,
                                                             "messages"))
    {
        role = cJSON_GetObjectItemCaseSensitive(msg, "role");

        if (cJSON_IsString(role)
            && ngx_strcmp(role->valuestring, "system") == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * "max_tokens" becomes "max_completion_tokens" (unless the client gave
 * that too: it wins, as it does for OpenAI) and every "system" role
 * "developer", in the client's tree, for one print; undone by
 * ngx_ai_openai_restore().
 */

static ngx_int_t
ngx_ai_openai_rename(ngx_pool_t *pool, cJSON *root,
    ngx_ai_openai_renamed_t *rn)
{
    cJSON       *msg, *role, *messages;
    ngx_uint_t   n;

    rn->max_tokens = cJSON_DetachItemFromObjectCaseSensitive(root,
                                                             "max_tokens");

    if (cJSON_IsNumber(rn->max_tokens)
        && cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens")
           == NULL)
    {
        if (ngx_ai_json_add(root, "max_completion_tokens",
                            cJSON_CreateNumber(rn->max_tokens->valuedouble))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        rn->added = 1;
    }

    messages = cJSON_GetObjectItemCaseSensitive(root, "messages");
    n = cJSON_GetArraySize(messages);

    if (n == 0) {
        return NGX_OK;
    }

    rn->roles = ngx_palloc(pool, n * sizeof(cJSON *));
    rn->names = ngx_palloc(pool, n * sizeof(char *));

    if (rn->roles == NULL || rn->names == NULL) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(msg, messages) {
        role = cJSON_GetObjectItemCaseSensitive(msg, "role");

        if (!cJSON_IsString(role)
            || ngx_strcmp(role->valuestring, "system") != 0)
        {
            continue;
        }

        rn->roles[rn->nroles] = role;
        rn->names[rn->nroles++] = role->valuestring;
        role->valuestring = (char *) "developer";
    }

    return NGX_OK;
}


static void
ngx_ai_openai_restore(cJSON *root, ngx_ai_openai_renamed_t *rn)
{
    ngx_uint_t  i;

    for (i = 0; i < rn->nroles; i++) {
        rn->roles[i]->valuestring = rn->names[i];
    }

    rn->nroles = 0;

    if (rn->added) {
        cJSON_DeleteItemFromObjectCaseSensitive(root,
                                                "max_completion_tokens");
        rn->added = 0;
    }

    if (rn->max_tokens) {
        cJSON_AddItemToObject(root, "max_tokens", rn->max_tokens);
        rn->max_tokens = NULL;
    }
}


/*
 * The request body the client sent, copied member by member with the
 * top-level "model" rewritten (the provider prefix stripped), "models"
 * and OpenRouter's "usage" dropped, "stream" saying what this call does, and
 * "stream_options":{"include_usage":true} added to a stream that has no
 * stream_options of its own.  NGX_DECLINED: the slow path (print the
 * tree) is needed: no client bytes (a request the gateway built), a key
 * written with escapes, stream_options to merge into, or a stream asked
 * for usage by OpenRouter's "usage".
 */

static ngx_int_t
ngx_ai_openai_splice(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out)
{
    u_char        *p, *last, *key, *value, *end;
    size_t         klen;
    ngx_uint_t     first, depth, had_opts;
    ngx_ai_buf_t   b;

    if (req->raw.len == 0) {
        return NGX_DECLINED;
    }

    p = req->raw.data;
    last = p + req->raw.len;

    if (ngx_ai_buf_init(&b, pool, req->raw.len + req->upstream_model.len
                                  + 64)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    while (p < last && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    if (p == last || *p++ != '{') {
        return NGX_DECLINED;
    }

    (void) ngx_ai_buf_append(&b, "{", 1);
    first = 1;
    had_opts = 0;

    for ( ;; ) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == '\r'
                            || *p == '\n' || *p == ','))
        {
            p++;
        }

        if (p == last) {
            return NGX_DECLINED;
        }

        if (*p == '}') {
            break;
        }

        if (*p != '"') {
            return NGX_DECLINED;
        }

        key = ++p;

        while (p < last && *p != '"') {
            if (*p == '\\') {
                return NGX_DECLINED;        /* an escaped key */
            }

            p++;
        }

        if (p == last) {
            return NGX_DECLINED;
        }

        klen = p - key;
        p++;

        while (p < last && *p != ':') {
            p++;
        }

        if (p == last) {
            return NGX_DECLINED;
        }

        p++;

        while (p < last && (*p == ' ' || *p == '\t' || *p == '\r'
                            || *p == '\n'))
        {
            p++;
        }

        /* the value: a string, an object or array, or a bare literal */

        value = p;
        depth = 0;

        while (p < last) {
            if (*p == '"') {
                p = ngx_ai_json_string_close(p + 1, last) + 1;

            } else if (*p == '{' || *p == '[') {
                depth++;
                p++;

            } else if (*p == '}' || *p == ']') {
                if (depth == 0) {
                    break;
                }

                depth--;
                p++;

            } else if (*p == ',' && depth == 0) {
                break;

            } else {
                p++;
            }

            if (depth == 0 && *value == '"' && p > value) {
                break;
            }
        }

        if (p > last) {
            return NGX_DECLINED;
        }

        end = p;

        while (end > value && (end[-1] == ' ' || end[-1] == '\t'
                               || end[-1] == '\r' || end[-1] == '\n'))
        {
            end--;
        }

        /* the member, as this call needs it */

        if (klen == 5 && ngx_strncmp(key, "model", 5) == 0) {
            if ((!first && ngx_ai_buf_append(&b, ",", 1) != NGX_OK)
                || ngx_ai_buf_append_str(&b, "\"model\":") != NGX_OK
                || ngx_ai_buf_append_json_string(&b, req->upstream_model.data,
                                                 req->upstream_model.len)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            first = 0;
            continue;
        }

        if ((klen == 6 && ngx_strncmp(key, "models", 6) == 0)
            || (klen == 6 && ngx_strncmp(key, "stream", 6) == 0))
        {
            continue;
        }

        /* OpenRouter's "usage": the gateway's own; a stream's
         * stream_options are then the tree's to write */

        if (klen == 5 && ngx_strncmp(key, "usage", 5) == 0) {
            if (req->stream) {
                return NGX_DECLINED;
            }

            continue;
        }

        if (klen == 14 && ngx_strncmp(key, "stream_options", 14) == 0) {
            if (!req->stream) {
                continue;
            }

            if (!req->include_usage) {
                return NGX_DECLINED;        /* options to merge into */
            }

            had_opts = 1;
        }

        if ((!first && ngx_ai_buf_append(&b, ",", 1) != NGX_OK)
            || ngx_ai_buf_append(&b, key - 1, klen + 2) != NGX_OK
            || ngx_ai_buf_append(&b, ":", 1) != NGX_OK
            || ngx_ai_buf_append(&b, value, end - value) != NGX_OK)
        {
            return NGX_ERROR;
        }

        first = 0;
    }

    if (req->stream) {
        if (ngx_ai_buf_append_str(&b, first ? "\"stream\":true"
                                            : ",\"stream\":true")
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (!had_opts
            && ngx_ai_buf_append_str(&b, ",\"stream_options\":"
                                         "{\"include_usage\":true}")
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_buf_append(&b, "}", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    out->body.data = b.data;
    out->body.len = b.len;
    ngx_str_set(&out->path, "/v1/chat/completions");

    return NGX_OK;
}


/* the members of an answer the gateway reads or the client relies on */

static const char  *ngx_ai_openai_answer_members[] = {
    "id", "object", "created", "model", "choices", "usage",
    "system_fingerprint", "service_tier", NULL
};

static const char  *ngx_ai_openai_choice_members[] = {
    "index", "message", "finish_reason", "logprobs", NULL
};

static const char  *ngx_ai_openai_message_members[] = {
    "role", "content", "refusal", "tool_calls", "function_call", NULL
};

static const char  *ngx_ai_openai_usage_members[] = {
    "prompt_tokens", "completion_tokens", "total_tokens",
    "prompt_tokens_details", "completion_tokens_details", "cost", NULL
};


static ngx_int_t
ngx_ai_openai_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    cJSON  *root, *choices, *choice, *message, *content, *finish;

    ngx_memzero(out, sizeof(ngx_ai_response_t));

    root = ngx_ai_json_parse(pool, body, len);

    if (!cJSON_IsObject(root)) {
        ngx_ai_error_set(err, 502, "upstream_error", NULL,
                         "invalid_response",
                         "the provider's answer is not a JSON object");
        return NGX_DECLINED;
    }

    /* the answer goes to the client as it came: what the gateway reads
     * in it (the ledger's usage) must be what the client reads */

    choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    choice = cJSON_GetArrayItem(choices, 0);
    message = cJSON_GetObjectItemCaseSensitive(choice, "message");

    if (ngx_ai_json_unique(root, ngx_ai_openai_answer_members) != NULL
        || ngx_ai_json_unique(choice, ngx_ai_openai_choice_members) != NULL
        || ngx_ai_json_unique(message, ngx_ai_openai_message_members)
           != NULL
        || ngx_ai_json_unique(cJSON_GetObjectItemCaseSensitive(root, "usage"),
                              ngx_ai_openai_usage_members)
           != NULL)
    {
        ngx_ai_error_set(err, 502, "upstream_error", NULL,
                         "invalid_response",
                         "the provider's answer names a member twice");
        return NGX_DECLINED;
    }

    if (!cJSON_IsArray(choices) || !cJSON_IsObject(choice)) {
        ngx_ai_error_set(err, 502, "upstream_error", NULL,
                         "invalid_response",
                         "the provider's answer has no choices");
        return NGX_DECLINED;
    }

    content = cJSON_GetObjectItemCaseSensitive(message, "content");

    if (cJSON_IsString(content)) {
        out->content.data = (u_char *) content->valuestring;
        out->content.len = ngx_strlen(content->valuestring);
    }

    finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");

    if (cJSON_IsString(finish)) {
        out->finish_reason.data = (u_char *) finish->valuestring;
        out->finish_reason.len = ngx_strlen(finish->valuestring);
    }

    (void) ngx_ai_usage_from_openai(
               cJSON_GetObjectItemCaseSensitive(root, "usage"), &out->usage);

    /* an OpenAI-type answer is already what the client expects */

    out->body.data = body;
    out->body.len = len;

    return NGX_OK;
}


static void
ngx_ai_openai_error(ngx_pool_t *pool, ngx_uint_t status, u_char *body,
    size_t len, ngx_ai_error_t *err)
{
    cJSON  *root, *error, *message, *type, *code;

    ngx_ai_error_set(err, status, "upstream_error", NULL, NULL,
                     "the provider answered with an error");

    root = ngx_ai_json_parse(pool, body, len);
    error = cJSON_GetObjectItemCaseSensitive(root, "error");

    if (cJSON_IsString(error)) {
        err->message.data = (u_char *) error->valuestring;
        err->message.len = ngx_strlen(error->valuestring);
        return;
    }

    if (!cJSON_IsObject(error)) {
        return;
    }

    message = cJSON_GetObjectItemCaseSensitive(error, "message");
    type = cJSON_GetObjectItemCaseSensitive(error, "type");
    code = cJSON_GetObjectItemCaseSensitive(error, "code");

    if (cJSON_IsString(message) && message->valuestring[0] != '\0') {
        err->message.data = (u_char *) message->valuestring;
        err->message.len = ngx_strlen(message->valuestring);
    }

    if (cJSON_IsString(type)) {
        err->type = type->valuestring;
    }

    if (cJSON_IsString(code)) {
        err->code = code->valuestring;
    }
}


static ngx_int_t
ngx_ai_openai_stream_event(ngx_ai_stream_t *st, ngx_ai_sse_event_t *ev)
{
    char       *line;
    cJSON      *root, *error, *message, *choices, *choice, *finish, *usage;
    ngx_int_t   rc;
    ngx_str_t   data;

    st->events++;

    if (ev->data.len == 6 && ngx_strncmp(ev->data.data, "[DONE]", 6) == 0) {
        st->done = 1;
        return NGX_OK;
    }

    root = ngx_ai_json_scratch(&st->scratch, st->pool, &ev->data);

    if (!cJSON_IsObject(root)) {
        ngx_ai_json_scratch_done(st->scratch, root);
        st->failed = 1;
        ngx_str_set(&st->error, "the provider sent an event that is not "
                                "JSON");
        return NGX_DECLINED;
    }

    rc = NGX_OK;

    error = cJSON_GetObjectItemCaseSensitive(root, "error");

    if (error && !cJSON_IsNull(error)) {
        message = cJSON_GetObjectItemCaseSensitive(error, "message");

        rc = ngx_ai_stream_fail(st, cJSON_IsString(message)
                                    ? message->valuestring : NULL,
                                "the provider sent an error event")
             == NGX_OK ? NGX_DECLINED : NGX_ERROR;
        goto done;
    }

    choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    usage = cJSON_GetObjectItemCaseSensitive(root, "usage");

    if (cJSON_IsObject(usage)) {
        (void) ngx_ai_usage_from_openai(usage, &st->usage);
        ngx_ai_usage_price(&st->usage, &st->price);
    }

    choice = cJSON_GetArrayItem(choices, 0);

    if (choice) {
        st->role_sent = 1;

        ngx_ai_openai_stream_text(st, choice);

        finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");

        if (cJSON_IsString(finish)) {
            st->finish_sent = 1;
            st->finish_reason.len = ngx_strlen(finish->valuestring);
            st->finish_reason.data = ngx_pnalloc(st->pool,
                                                 st->finish_reason.len);
            if (st->finish_reason.data == NULL) {
                rc = NGX_ERROR;
                goto done;
            }

            ngx_memcpy(st->finish_reason.data, finish->valuestring,
                       st->finish_reason.len);
        }

    } else if (cJSON_IsObject(usage) && !st->req->include_usage) {
        /* the usage chunk the gateway asked for on its own behalf */
        goto done;
    }

    /* the usage chunk: its cost at the gateway's price (OpenRouter's
     * "usage.cost"), a provider's own replaced */

    if (cJSON_IsObject(usage) && st->usage.priced) {
        rc = ngx_ai_openai_stream_cost(st, root, usage);
        goto done;
    }

    /*
     * An event sent as several "data:" lines reaches us joined by LF;
     * passed on as it is, the client would read its first line alone.
     */

    if (ngx_strlchr(ev->data.data, ev->data.data + ev->data.len, '\n')
        == NULL)
    {
        if (ngx_ai_sse_data_event(&st->out, &ev->data) != NGX_OK) {
            rc = NGX_ERROR;
        }

        goto done;
    }

    line = cJSON_PrintUnformatted(root);
    if (line == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    data.data = (u_char *) line;
    data.len = ngx_strlen(line);

    if (ngx_ai_sse_data_event(&st->out, &data) != NGX_OK) {
        rc = NGX_ERROR;
    }

    cJSON_free(line);

done:

    ngx_ai_json_scratch_done(st->scratch, root);

    return rc;
}


/* the usage chunk with "cost", printed whole (once a stream) */

static ngx_int_t
ngx_ai_openai_stream_cost(ngx_ai_stream_t *st, cJSON *root, cJSON *usage)
{
    char          *line;
    cJSON         *cost;
    ngx_int_t      rc;
    ngx_str_t      data;
    ngx_ai_buf_t   b;

    if (ngx_ai_buf_init(&b, st->pool, 32) != NGX_OK
        || ngx_ai_buf_append_usd(&b, st->usage.cost) != NGX_OK
        || ngx_ai_buf_append(&b, "", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cost = cJSON_CreateRaw((char *) b.data);
    if (cost == NULL) {
        return NGX_ERROR;
    }

    cJSON_DeleteItemFromObjectCaseSensitive(usage, "cost");
    cJSON_AddItemToObject(usage, "cost", cost);

    line = cJSON_PrintUnformatted(root);
    if (line == NULL) {
        return NGX_ERROR;
    }

    data.data = (u_char *) line;
    data.len = ngx_strlen(line);

    rc = ngx_ai_sse_data_event(&st->out, &data);

    cJSON_free(line);

    return rc;
}


/* what a delta says, counted for the charge of a stream cut short */

static void
ngx_ai_openai_stream_text(ngx_ai_stream_t *st, cJSON *choice)
{
    size_t   n;
    cJSON   *delta, *content, *calls, *call, *fn, *args;

    delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");

    if (!cJSON_IsObject(delta)) {
        return;
    }

    n = 0;

    content = cJSON_GetObjectItemCaseSensitive(delta, "content");

    if (cJSON_IsString(content)) {
        n += ngx_strlen(content->valuestring);
    }

    calls = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");

    cJSON_ArrayForEach(call, calls) {
        fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");

        if (cJSON_IsString(args)) {
            n += ngx_strlen(args->valuestring);
        }
    }

    if (n) {
        st->text_bytes += n;
        st->text_deltas++;
    }
}


/*
 * POST /v1/embeddings: the client's request with the provider prefix
 * stripped from "model" and "models" dropped.  The tree is printed (ai_guard
 * may have redacted it) and restored for the next attempt.
 */

static ngx_int_t
ngx_ai_openai_embed_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out, ngx_ai_error_t *err)
{
    cJSON      *root, *model, *models, *upstream;
    ngx_int_t   rc;

    root = req->json;

    model = cJSON_DetachItemFromObjectCaseSensitive(root, "model");
    models = cJSON_DetachItemFromObjectCaseSensitive(root, "models");

    rc = NGX_ERROR;

    upstream = cJSON_CreateStringReference((char *) req->upstream_model.data);

    if (upstream != NULL) {
        cJSON_AddItemToObject(root, "model", upstream);
        rc = ngx_ai_json_print(pool, root, &out->body);
        cJSON_DeleteItemFromObjectCaseSensitive(root, "model");
    }

    if (model) {
        cJSON_AddItemToObject(root, "model", model);
    }

    if (models) {
        cJSON_AddItemToObject(root, "models", models);
    }

    ngx_str_set(&out->path, "/v1/embeddings");

    return rc;
}


/*
 * The provider's embedding list, checked (a vector for every input, each
 * an array of finite numbers or a base64 string) and written again with
 * the model the client named and its usage.
 */

static ngx_int_t
ngx_ai_openai_embed_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    cJSON         *root, *data, *item, *index;
    uint64_t       tokens;
    ngx_int_t      rc;
    ngx_uint_t     i, base64, known;
    ngx_ai_jw_t    w;
    ngx_ai_buf_t   b;

    ngx_memzero(out, sizeof(ngx_ai_response_t));

    root = ngx_ai_json_parse(pool, body, len);
    data = cJSON_GetObjectItemCaseSensitive(root, "data");
    base64 = ngx_ai_embed_base64(req);

    rc = ngx_ai_embed_start(&w, &b, pool, req, data, len, err);
    if (rc != NGX_OK) {
        return rc;
    }

    i = 0;

    cJSON_ArrayForEach(item, data) {
        index = cJSON_GetObjectItemCaseSensitive(item, "index");

        if (index && !(cJSON_IsNumber(index) && index->valuedouble == i)) {
            return ngx_ai_embed_invalid_answer(err, "the provider's "
                                               "embeddings are out of "
                                               "order");
        }

        rc = ngx_ai_embed_vector(&w, pool, i++,
                                 cJSON_GetObjectItemCaseSensitive(item,
                                                                "embedding"),
                                 base64, 1, err);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    known = ngx_ai_json_get_uint(cJSON_GetObjectItemCaseSensitive(root,
                                                                   "usage"),
                                 "prompt_tokens", &tokens)
            == NGX_OK;

    return ngx_ai_embed_finish(&w, req, known, tokens, out);
}
