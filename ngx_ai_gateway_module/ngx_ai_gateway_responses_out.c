
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The OpenAI Responses API inbound, its answer side: the gateway's
 * chat.completion answers become response objects, its chunk streams
 * Responses events (ngx_ai_gateway_responses.c has the request side and
 * the dialect).  docs/responses-api.md has the event sequence.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define ngx_ai_get(obj, name)  cJSON_GetObjectItemCaseSensitive(obj, name)

#define ngx_ai_is(item, s)                                                    \
    (cJSON_IsString(item) && ngx_strcmp((item)->valuestring, s) == 0)

#define ngx_ai_given(item)     ((item) != NULL && !cJSON_IsNull(item))


#define NGX_AI_RESP_MESSAGE     0
#define NGX_AI_RESP_CALL        1

#define NGX_AI_RESP_MAX_ITEMS   1024       /* output items kept */
#define NGX_AI_RESP_MAX_ID      64         /* bytes of an id's base */


/* one output item: a message or a function call */
typedef struct {
    ngx_uint_t                  type;      /* NGX_AI_RESP_* */
    ngx_int_t                   index;     /* chat tool call index */
    ngx_str_t                   id;        /* msg_..., fc_... */
    ngx_str_t                   call_id;
    ngx_str_t                   name;
    ngx_ai_buf_t                text;      /* text, or arguments */
    unsigned                    done:1;
} ngx_ai_resp_item_t;


/* a response being written: a whole answer, or a stream of events */
typedef struct {
    ngx_pool_t                 *pool;
    ngx_pool_t                 *scratch;   /* an event's tree, then reset */
    ngx_ai_sse_parser_t         sse;
    ngx_ai_buf_t                out;       /* what is to be sent */
    ngx_ai_usage_t              usage;
    ngx_str_t                   base;      /* of the ids */
    ngx_str_t                   id;        /* resp_BASE */
    ngx_str_t                   model;
    uint64_t                    created;
    const char                 *incomplete;    /* reason, or NULL */
    ngx_ai_resp_item_t         *items;
    ngx_uint_t                  nitems;
    ngx_uint_t                  nalloc;
    ngx_uint_t                  seq;       /* the next sequence_number */
    ngx_int_t                   open;      /* the open item, -1: none */
    ngx_int_t                   tool;      /* the last chat tool index
                                              started, -1 */
    unsigned                    started:1; /* response.created sent */
    unsigned                    usage_fixed:1;
    unsigned                    done:1;
    unsigned                    failed:1;
} ngx_ai_resp_t;


static ngx_int_t ngx_ai_resp_init(ngx_ai_resp_t *rs, ngx_pool_t *pool);
static ngx_int_t ngx_ai_resp_ids(ngx_ai_resp_t *rs, cJSON *root);
static ngx_ai_resp_item_t *ngx_ai_resp_item_add(ngx_ai_resp_t *rs,
    ngx_uint_t type, ngx_int_t index, cJSON *call_id, cJSON *name);
static ngx_int_t ngx_ai_resp_copy_str(ngx_pool_t *pool, ngx_str_t *dst,
    cJSON *s);
static void ngx_ai_resp_object(ngx_ai_resp_t *rs, ngx_ai_jw_t *w,
    const char *status, cJSON *error, ngx_str_t *fusion);
static void ngx_ai_resp_item_json(ngx_ai_jw_t *w, ngx_ai_resp_item_t *it,
    ngx_uint_t added);
static void ngx_ai_resp_text_part(ngx_ai_jw_t *w, ngx_ai_resp_item_t *it);
static void ngx_ai_resp_usage(ngx_ai_jw_t *w, ngx_ai_usage_t *u);
static const char *ngx_ai_resp_status(ngx_ai_resp_t *rs);
static const char *ngx_ai_resp_incomplete(const char *finish);

static ngx_int_t ngx_ai_resp_sse_event(void *data, ngx_ai_sse_event_t *ev);
static ngx_int_t ngx_ai_resp_chunk(ngx_ai_resp_t *rs, cJSON *root);
static ngx_int_t ngx_ai_resp_start(ngx_ai_resp_t *rs, cJSON *root);
static ngx_int_t ngx_ai_resp_text(ngx_ai_resp_t *rs, cJSON *text);
static ngx_int_t ngx_ai_resp_tool(ngx_ai_resp_t *rs, cJSON *call);
static ngx_int_t ngx_ai_resp_close(ngx_ai_resp_t *rs);
static ngx_int_t ngx_ai_resp_end(ngx_ai_resp_t *rs);
static ngx_int_t ngx_ai_resp_fail(ngx_ai_resp_t *rs, cJSON *error);
static void ngx_ai_resp_event(ngx_ai_resp_t *rs, ngx_ai_jw_t *w,
    const char *type);
static ngx_int_t ngx_ai_resp_event_end(ngx_ai_resp_t *rs, ngx_ai_jw_t *w);
static void ngx_ai_resp_item_ref(ngx_ai_resp_t *rs, ngx_ai_jw_t *w,
    ngx_ai_resp_item_t *it);


/*
 * response: the gateway's chat.completion -> a response object.  usage,
 * when known, is the answer's exact usage; otherwise the body's is read.
 * NGX_DECLINED: the body is not a chat.completion.
 */

ngx_int_t
ngx_ai_responses_response(ngx_pool_t *pool, u_char *body, size_t len,
    ngx_ai_usage_t *usage, ngx_str_t *out)
{
    cJSON               *root, *choice, *msg, *call, *fn, *finish, *fusion;
    ngx_str_t            report;
    ngx_ai_jw_t          w;
    ngx_ai_buf_t         t;
    ngx_ai_resp_t        rs;
    ngx_ai_resp_item_t  *it;

    root = ngx_ai_json_parse(pool, body, len);
    choice = cJSON_GetArrayItem(ngx_ai_get(root, "choices"), 0);

    if (!cJSON_IsObject(root) || !cJSON_IsObject(choice)) {
        return NGX_DECLINED;
    }

    if (ngx_ai_resp_init(&rs, pool) != NGX_OK
        || ngx_ai_resp_ids(&rs, root) != NGX_OK
        || ngx_ai_buf_init(&t, pool, 256) != NGX_OK)
    {
        return NGX_ERROR;
    }

    msg = ngx_ai_get(choice, "message");

    if (ngx_ai_content_text(ngx_ai_get(msg, "content"), &t, "") != NGX_OK
        || (t.len == 0
            && ngx_ai_content_text(ngx_ai_get(msg, "refusal"), &t, "")
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    /* a message item when there is text, or when there is nothing else */

    if (t.len || cJSON_GetArraySize(ngx_ai_get(msg, "tool_calls")) == 0) {
        it = ngx_ai_resp_item_add(&rs, NGX_AI_RESP_MESSAGE, -1, NULL, NULL);
        if (it == NULL) {
            return NGX_ERROR;
        }

        it->text = t;
        it->done = 1;
    }

    cJSON_ArrayForEach(call, ngx_ai_get(msg, "tool_calls")) {
        fn = ngx_ai_get(call, "function");

        if (!cJSON_IsString(ngx_ai_get(fn, "name"))) {
            continue;
        }

        it = ngx_ai_resp_item_add(&rs, NGX_AI_RESP_CALL, -1,
                                  ngx_ai_get(call, "id"),
                                  ngx_ai_get(fn, "name"));
        if (it == NULL) {
            return NGX_ERROR;
        }

        if (ngx_ai_content_text(ngx_ai_get(fn, "arguments"), &it->text, "")
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        it->done = 1;
    }

    finish = ngx_ai_get(choice, "finish_reason");
    rs.incomplete = ngx_ai_resp_incomplete(cJSON_IsString(finish)
                                           ? finish->valuestring : NULL);

    if (usage && usage->known) {
        rs.usage = *usage;

    } else {
        (void) ngx_ai_usage_from_openai(ngx_ai_get(root, "usage"), &rs.usage);
    }

    /* fusion's report travels along */

    ngx_str_null(&report);

    fusion = ngx_ai_get(root, "fusion");

    if (cJSON_IsObject(fusion)
        && ngx_ai_json_print(pool, fusion, &report) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_ai_jw_init(&w, &rs.out);
    ngx_ai_resp_object(&rs, &w, ngx_ai_resp_status(&rs), NULL, &report);

    if (ngx_ai_jw_done(&w) != NGX_OK) {
        return NGX_ERROR;
    }

    out->data = rs.out.data;
    out->len = rs.out.len;

    return NGX_OK;
}


static ngx_int_t
ngx_ai_resp_init(ngx_ai_resp_t *rs, ngx_pool_t *pool)
{
    ngx_memzero(rs, sizeof(ngx_ai_resp_t));

    rs->pool = pool;
    rs->open = -1;
    rs->tool = -1;

    return ngx_ai_buf_init(&rs->out, pool, 1024);
}


/*
 * The ids' base, the model and created_at from the first chunk or the
 * answer: "chatcmpl-abc" gives resp_abc, msg_abc, fc_abc_1.  The base
 * keeps [A-Za-z0-9_-] only and at most NGX_AI_RESP_MAX_ID bytes.
 */

static ngx_int_t
ngx_ai_resp_ids(ngx_ai_resp_t *rs, cJSON *root)
{
    u_char        c;
    cJSON        *id, *created;
    const char   *s;
    ngx_ai_buf_t  b;

    created = ngx_ai_get(root, "created");

    if (cJSON_IsNumber(created) && created->valuedouble >= 0
        && created->valuedouble < 1e12)
    {
        rs->created = (uint64_t) created->valuedouble;
    }

    if (ngx_ai_resp_copy_str(rs->pool, &rs->model, ngx_ai_get(root, "model"))
        != NGX_OK
        || ngx_ai_buf_init(&b, rs->pool, NGX_AI_RESP_MAX_ID + 24) != NGX_OK)
    {
        return NGX_ERROR;
    }

    id = ngx_ai_get(root, "id");
    s = cJSON_IsString(id) ? id->valuestring : "";

    if (ngx_strncmp(s, "chatcmpl-", 9) == 0) {
        s += 9;
    }

    for ( /* void */ ; *s && b.len < NGX_AI_RESP_MAX_ID; s++) {
        c = (u_char) *s;

        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
            || (c >= 'A' && c <= 'Z') || c == '_' || c == '-')
        {
            b.data[b.len++] = c;
        }
    }

    if (b.len == 0
        && (ngx_ai_buf_append_str(&b, "gw") != NGX_OK
            || ngx_ai_buf_append_uint(&b, rs->created) != NGX_OK))
    {
        return NGX_ERROR;
    }

    rs->base.data = b.data;
    rs->base.len = b.len;

    rs->id.data = ngx_pnalloc(rs->pool, b.len + 5);
    if (rs->id.data == NULL) {
        return NGX_ERROR;
    }

    rs->id.len = ngx_cpymem(ngx_cpymem(rs->id.data, "resp_", 5), b.data,
                            b.len)
                 - rs->id.data;

    return NGX_OK;
}


/* a new output item; its id is msg_BASE, msg_BASE_N or fc_BASE_N */

static ngx_ai_resp_item_t *
ngx_ai_resp_item_add(ngx_ai_resp_t *rs, ngx_uint_t type, ngx_int_t index,
    cJSON *call_id, cJSON *name)
{
    ngx_uint_t           n;
    ngx_ai_buf_t         b;
    ngx_ai_resp_item_t  *items, *it;

    if (rs->nitems == rs->nalloc) {
        n = rs->nalloc ? rs->nalloc * 2 : 4;

        items = ngx_palloc(rs->pool, n * sizeof(ngx_ai_resp_item_t));
        if (items == NULL) {
            return NULL;
        }

        if (rs->nitems) {
            ngx_memcpy(items, rs->items,
                       rs->nitems * sizeof(ngx_ai_resp_item_t));
        }

        rs->items = items;
        rs->nalloc = n;
    }

    n = rs->nitems;
    it = &rs->items[n];

    ngx_memzero(it, sizeof(ngx_ai_resp_item_t));
    it->type = type;
    it->index = index;

    if (ngx_ai_buf_init(&it->text, rs->pool, 64) != NGX_OK
        || ngx_ai_buf_init(&b, rs->pool, rs->base.len + 32) != NGX_OK
        || ngx_ai_buf_append_str(&b, type == NGX_AI_RESP_CALL ? "fc_" : "msg_")
           != NGX_OK
        || ngx_ai_buf_append(&b, rs->base.data, rs->base.len) != NGX_OK
        || ((n || type == NGX_AI_RESP_CALL)
            && (ngx_ai_buf_append(&b, "_", 1) != NGX_OK
                || ngx_ai_buf_append_uint(&b, n) != NGX_OK)))
    {
        return NULL;
    }

    it->id.data = b.data;
    it->id.len = b.len;

    if (type == NGX_AI_RESP_CALL) {
        if (cJSON_IsString(call_id) && call_id->valuestring[0] != '\0') {
            if (ngx_ai_resp_copy_str(rs->pool, &it->call_id, call_id)
                != NGX_OK)
            {
                return NULL;
            }

        } else {
            if (ngx_ai_buf_init(&b, rs->pool, 32) != NGX_OK
                || ngx_ai_buf_append_str(&b, "call_") != NGX_OK
                || ngx_ai_buf_append_uint(&b, n) != NGX_OK)
            {
                return NULL;
            }

            it->call_id.data = b.data;
            it->call_id.len = b.len;
        }

        if (ngx_ai_resp_copy_str(rs->pool, &it->name, name) != NGX_OK) {
            return NULL;
        }
    }

    rs->nitems++;

    return it;
}


/* a string member's value into the pool; "" when it is not a string */

static ngx_int_t
ngx_ai_resp_copy_str(ngx_pool_t *pool, ngx_str_t *dst, cJSON *s)
{
    size_t  len;

    if (!cJSON_IsString(s)) {
        ngx_str_set(dst, "");
        return NGX_OK;
    }

    len = ngx_strlen(s->valuestring);

    dst->data = ngx_pnalloc(pool, len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, s->valuestring, len + 1);
    dst->len = len;

    return NGX_OK;
}


/*
 * The response object: in progress (no output, no usage yet), or at the
 * end with every item and the usage; error: the gateway's error object of
 * a failed one.
 */

static void
ngx_ai_resp_object(ngx_ai_resp_t *rs, ngx_ai_jw_t *w, const char *status,
    cJSON *error, ngx_str_t *fusion)
{
    cJSON       *code, *msg;
    ngx_uint_t   i, end;

    end = ngx_strcmp(status, "in_progress") != 0;

    ngx_ai_jw_object(w);
    ngx_ai_jw_key_string(w, "id", rs->id.data, rs->id.len);
    ngx_ai_jw_key_string(w, "object", (u_char *) "response", 8);
    ngx_ai_jw_key_uint(w, "created_at", rs->created);
    ngx_ai_jw_key_string(w, "status", (u_char *) status, ngx_strlen(status));

    ngx_ai_jw_key(w, "error");

    if (error) {
        code = ngx_ai_get(error, "code");
        msg = ngx_ai_get(error, "message");

        ngx_ai_jw_object(w);
        ngx_ai_jw_key(w, "code");
        ngx_ai_jw_str(w, (cJSON_IsString(code) ? code->valuestring
                                              : "server_error"));
        ngx_ai_jw_key(w, "message");
        ngx_ai_jw_str(w, (cJSON_IsString(msg) ? msg->valuestring
                                             : "the stream failed"));
        ngx_ai_jw_end(w);

    } else {
        ngx_ai_jw_null(w);
    }

    ngx_ai_jw_key(w, "incomplete_details");

    if (end && rs->incomplete && !error) {
        ngx_ai_jw_object(w);
        ngx_ai_jw_key(w, "reason");
        ngx_ai_jw_str(w, rs->incomplete);
        ngx_ai_jw_end(w);

    } else {
        ngx_ai_jw_null(w);
    }

    ngx_ai_jw_key_string(w, "model", rs->model.data, rs->model.len);
    ngx_ai_jw_key(w, "output");
    ngx_ai_jw_array(w);

    for (i = 0; end && i < rs->nitems; i++) {
        ngx_ai_resp_item_json(w, &rs->items[i], 0);
    }

    ngx_ai_jw_end(w);

    ngx_ai_jw_key(w, "parallel_tool_calls");
    ngx_ai_jw_bool(w, 1);
    ngx_ai_jw_key(w, "store");
    ngx_ai_jw_bool(w, 0);
    ngx_ai_jw_key(w, "usage");

    if (end && (rs->usage.known || !error)) {
        ngx_ai_resp_usage(w, &rs->usage);

    } else {
        ngx_ai_jw_null(w);
    }

    if (fusion && fusion->len) {
        ngx_ai_jw_key(w, "fusion");
        ngx_ai_jw_raw(w, fusion->data, fusion->len);
    }

    ngx_ai_jw_end(w);
}


/* an output item; added: as response.output_item.added shows it */

static void
ngx_ai_resp_item_json(ngx_ai_jw_t *w, ngx_ai_resp_item_t *it,
    ngx_uint_t added)
{
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_string(w, "id", it->id.data, it->id.len);

    if (it->type == NGX_AI_RESP_MESSAGE) {
        ngx_ai_jw_key_string(w, "type", (u_char *) "message", 7);
        ngx_ai_jw_key(w, "status");
        ngx_ai_jw_str(w, (it->done ? "completed" : "in_progress"));
        ngx_ai_jw_key_string(w, "role", (u_char *) "assistant", 9);
        ngx_ai_jw_key(w, "content");
        ngx_ai_jw_array(w);

        if (!added) {
            ngx_ai_resp_text_part(w, it);
        }

        ngx_ai_jw_end(w);

    } else {
        ngx_ai_jw_key_string(w, "type", (u_char *) "function_call", 13);
        ngx_ai_jw_key(w, "status");
        ngx_ai_jw_str(w, (it->done ? "completed" : "in_progress"));
        ngx_ai_jw_key_string(w, "arguments", it->text.data,
                             added ? 0 : it->text.len);
        ngx_ai_jw_key_string(w, "call_id", it->call_id.data, it->call_id.len);
        ngx_ai_jw_key_string(w, "name", it->name.data, it->name.len);
    }

    ngx_ai_jw_end(w);
}


/* {"type":"output_text","text":...,"annotations":[],"logprobs":[]} */

static void
ngx_ai_resp_text_part(ngx_ai_jw_t *w, ngx_ai_resp_item_t *it)
{
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_string(w, "type", (u_char *) "output_text", 11);
    ngx_ai_jw_key_string(w, "text", it ? it->text.data : NULL,
                         it ? it->text.len : 0);
    ngx_ai_jw_key(w, "annotations");
    ngx_ai_jw_array(w);
    ngx_ai_jw_end(w);
    ngx_ai_jw_key(w, "logprobs");
    ngx_ai_jw_array(w);
    ngx_ai_jw_end(w);
    ngx_ai_jw_end(w);
}


static void
ngx_ai_resp_usage(ngx_ai_jw_t *w, ngx_ai_usage_t *u)
{
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_uint(w, "input_tokens", u->prompt_tokens);
    ngx_ai_jw_key(w, "input_tokens_details");
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_uint(w, "cached_tokens", u->cached_tokens);
    ngx_ai_jw_end(w);
    ngx_ai_jw_key_uint(w, "output_tokens", u->completion_tokens);
    ngx_ai_jw_key(w, "output_tokens_details");
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_uint(w, "reasoning_tokens", u->reasoning_tokens);
    ngx_ai_jw_end(w);
    ngx_ai_jw_key_uint(w, "total_tokens",
                       u->prompt_tokens + u->completion_tokens);
    ngx_ai_jw_end(w);
}


static const char *
ngx_ai_resp_status(ngx_ai_resp_t *rs)
{
    return rs->incomplete ? "incomplete" : "completed";
}


/* a chat finish_reason -> incomplete_details.reason, or NULL */

static const char *
ngx_ai_resp_incomplete(const char *finish)
{
    if (finish == NULL) {
        return NULL;
    }

    if (ngx_strcmp(finish, "length") == 0) {
        return "max_output_tokens";
    }

    if (ngx_strcmp(finish, "content_filter") == 0) {
        return "content_filter";
    }

    return NULL;
}


/*
 * streams: the gateway's chat.completion.chunk events (whole or split
 * anywhere) -> Responses events: response.created, response.in_progress,
 * then for each output item output_item.added, its content_part.added and
 * output_text.delta events (a message) or function_call_arguments.delta
 * events (a call), their ...done events and output_item.done; at
 * "data: [DONE]" response.completed (response.incomplete when the answer
 * was cut by its length) with every item and the usage.  The gateway's
 * error event becomes response.failed and an error event.  Each delta is
 * sent as it comes; the text is kept only for the ...done events.
 */

static ngx_int_t
ngx_ai_resp_sse_event(void *data, ngx_ai_sse_event_t *ev)
{
    ngx_ai_resp_t *rs = data;

    cJSON      *root, *error;
    ngx_int_t   rc;

    if (rs->done || rs->failed) {
        return NGX_OK;
    }

    if (ev->data.len == 6 && ngx_strncmp(ev->data.data, "[DONE]", 6) == 0) {
        return ngx_ai_resp_end(rs);
    }

    root = ngx_ai_json_scratch(&rs->scratch, rs->pool, &ev->data);

    if (!cJSON_IsObject(root)) {
        ngx_ai_json_scratch_done(rs->scratch, root);
        return NGX_OK;                  /* not the gateway's: not ours */
    }

    error = ngx_ai_get(root, "error");

    if (ngx_ai_given(error)) {
        rc = ngx_ai_resp_fail(rs, error);

    } else {
        rc = ngx_ai_resp_chunk(rs, root);
    }

    ngx_ai_json_scratch_done(rs->scratch, root);

    return rc;
}


static ngx_int_t
ngx_ai_resp_chunk(ngx_ai_resp_t *rs, cJSON *root)
{
    cJSON  *choice, *delta, *usage, *text, *call, *finish;

    if (ngx_ai_resp_start(rs, root) != NGX_OK) {
        return NGX_ERROR;
    }

    usage = ngx_ai_get(root, "usage");

    if (cJSON_IsObject(usage) && !rs->usage_fixed) {
        (void) ngx_ai_usage_from_openai(usage, &rs->usage);
    }

    choice = cJSON_GetArrayItem(ngx_ai_get(root, "choices"), 0);
    delta = ngx_ai_get(choice, "delta");

    text = ngx_ai_get(delta, "content");

    if (!cJSON_IsString(text) || text->valuestring[0] == '\0') {
        text = ngx_ai_get(delta, "refusal");
    }

    if (cJSON_IsString(text) && text->valuestring[0] != '\0'
        && ngx_ai_resp_text(rs, text) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(call, ngx_ai_get(delta, "tool_calls")) {
        if (ngx_ai_resp_tool(rs, call) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    finish = ngx_ai_get(choice, "finish_reason");

    if (cJSON_IsString(finish)) {
        rs->incomplete = ngx_ai_resp_incomplete(finish->valuestring);
    }

    return NGX_OK;
}


/* response.created and response.in_progress, once, before anything */

static ngx_int_t
ngx_ai_resp_start(ngx_ai_resp_t *rs, cJSON *root)
{
    ngx_ai_jw_t  w;

    if (rs->started) {
        return NGX_OK;
    }

    rs->started = 1;

    if (ngx_ai_resp_ids(rs, root) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_ai_resp_event(rs, &w, "response.created");
    ngx_ai_jw_key(&w, "response");
    ngx_ai_resp_object(rs, &w, "in_progress", NULL, NULL);

    if (ngx_ai_resp_event_end(rs, &w) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_ai_resp_event(rs, &w, "response.in_progress");
    ngx_ai_jw_key(&w, "response");
    ngx_ai_resp_object(rs, &w, "in_progress", NULL, NULL);

    return ngx_ai_resp_event_end(rs, &w);
}


/* a text delta: a message item opened when none is, then the delta */

static ngx_int_t
ngx_ai_resp_text(ngx_ai_resp_t *rs, cJSON *text)
{
    size_t               len;
    ngx_ai_jw_t          w;
    ngx_ai_resp_item_t  *it;

    it = (rs->open >= 0) ? &rs->items[rs->open] : NULL;

    if (it == NULL || it->type != NGX_AI_RESP_MESSAGE) {
        if (ngx_ai_resp_close(rs) != NGX_OK) {
            return NGX_ERROR;
        }

        if (rs->nitems == NGX_AI_RESP_MAX_ITEMS) {
            return NGX_OK;
        }

        it = ngx_ai_resp_item_add(rs, NGX_AI_RESP_MESSAGE, -1, NULL, NULL);
        if (it == NULL) {
            return NGX_ERROR;
        }

        rs->open = rs->nitems - 1;

        ngx_ai_resp_event(rs, &w, "response.output_item.added");
        ngx_ai_jw_key_uint(&w, "output_index", rs->open);
        ngx_ai_jw_key(&w, "item");
        ngx_ai_resp_item_json(&w, it, 1);

        if (ngx_ai_resp_event_end(rs, &w) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_ai_resp_event(rs, &w, "response.content_part.added");
        ngx_ai_resp_item_ref(rs, &w, it);
        ngx_ai_jw_key_uint(&w, "content_index", 0);
        ngx_ai_jw_key(&w, "part");
        ngx_ai_resp_text_part(&w, NULL);

        if (ngx_ai_resp_event_end(rs, &w) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    len = ngx_strlen(text->valuestring);

    if (ngx_ai_buf_append(&it->text, text->valuestring, len) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_ai_resp_event(rs, &w, "response.output_text.delta");
    ngx_ai_resp_item_ref(rs, &w, it);
    ngx_ai_jw_key_uint(&w, "content_index", 0);
    ngx_ai_jw_key_string(&w, "delta", (u_char *) text->valuestring, len);
    ngx_ai_jw_key(&w, "logprobs");
    ngx_ai_jw_array(&w);
    ngx_ai_jw_end(&w);

    return ngx_ai_resp_event_end(rs, &w);
}


/*
 * A tool call delta: the first one of a call (a new index) opens a
 * function_call item, arguments fragments become
 * function_call_arguments.delta.  Chat streams calls one after the other;
 * a fragment of a call whose item is closed cannot be placed and is
 * dropped.
 */

static ngx_int_t
ngx_ai_resp_tool(ngx_ai_resp_t *rs, cJSON *call)
{
    cJSON               *index, *fn, *args;
    ngx_int_t            i;
    ngx_ai_jw_t          w;
    ngx_ai_resp_item_t  *it;

    index = ngx_ai_get(call, "index");
    fn = ngx_ai_get(call, "function");
    args = ngx_ai_get(fn, "arguments");

    i = (cJSON_IsNumber(index) && index->valuedouble >= 0
         && index->valuedouble < 1000000)
        ? (ngx_int_t) index->valuedouble : 0;

    if (i > rs->tool) {
        rs->tool = i;

        if (ngx_ai_resp_close(rs) != NGX_OK) {
            return NGX_ERROR;
        }

        if (rs->nitems == NGX_AI_RESP_MAX_ITEMS) {
            return NGX_OK;
        }

        it = ngx_ai_resp_item_add(rs, NGX_AI_RESP_CALL, i,
                                  ngx_ai_get(call, "id"),
                                  ngx_ai_get(fn, "name"));
        if (it == NULL) {
            return NGX_ERROR;
        }

        rs->open = rs->nitems - 1;

        ngx_ai_resp_event(rs, &w, "response.output_item.added");
        ngx_ai_jw_key_uint(&w, "output_index", rs->open);
        ngx_ai_jw_key(&w, "item");
        ngx_ai_resp_item_json(&w, it, 1);

        if (ngx_ai_resp_event_end(rs, &w) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    it = (rs->open >= 0) ? &rs->items[rs->open] : NULL;

    if (it == NULL || it->type != NGX_AI_RESP_CALL || it->index != i
        || !cJSON_IsString(args) || args->valuestring[0] == '\0')
    {
        return NGX_OK;
    }

    if (ngx_ai_buf_append_str(&it->text, args->valuestring) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_ai_resp_event(rs, &w, "response.function_call_arguments.delta");
    ngx_ai_resp_item_ref(rs, &w, it);
    ngx_ai_jw_key(&w, "delta");
    ngx_ai_jw_str(&w, args->valuestring);

    return ngx_ai_resp_event_end(rs, &w);
}


/* the open item's ...done events and output_item.done */

static ngx_int_t
ngx_ai_resp_close(ngx_ai_resp_t *rs)
{
    ngx_ai_jw_t          w;
    ngx_ai_resp_item_t  *it;

    if (rs->open < 0) {
        return NGX_OK;
    }

    it = &rs->items[rs->open];
    it->done = 1;

    if (it->type == NGX_AI_RESP_MESSAGE) {
        ngx_ai_resp_event(rs, &w, "response.output_text.done");
        ngx_ai_resp_item_ref(rs, &w, it);
        ngx_ai_jw_key_uint(&w, "content_index", 0);
        ngx_ai_jw_key_string(&w, "text", it->text.data, it->text.len);
        ngx_ai_jw_key(&w, "logprobs");
        ngx_ai_jw_array(&w);
        ngx_ai_jw_end(&w);

        if (ngx_ai_resp_event_end(rs, &w) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_ai_resp_event(rs, &w, "response.content_part.done");
        ngx_ai_resp_item_ref(rs, &w, it);
        ngx_ai_jw_key_uint(&w, "content_index", 0);
        ngx_ai_jw_key(&w, "part");
        ngx_ai_resp_text_part(&w, it);

    } else {
        ngx_ai_resp_event(rs, &w, "response.function_call_arguments.done");
        ngx_ai_resp_item_ref(rs, &w, it);
        ngx_ai_jw_key_string(&w, "name", it->name.data, it->name.len);
        ngx_ai_jw_key_string(&w, "arguments", it->text.data, it->text.len);
    }

    if (ngx_ai_resp_event_end(rs, &w) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_ai_resp_event(rs, &w, "response.output_item.done");
    ngx_ai_jw_key_uint(&w, "output_index", rs->open);
    ngx_ai_jw_key(&w, "item");
    ngx_ai_resp_item_json(&w, it, 0);

    rs->open = -1;

    return ngx_ai_resp_event_end(rs, &w);
}


/* [DONE]: the open item ends, then response.completed (or .incomplete) */

static ngx_int_t
ngx_ai_resp_end(ngx_ai_resp_t *rs)
{
    const char   *status;
    ngx_ai_jw_t   w;

    if (ngx_ai_resp_start(rs, NULL) != NGX_OK
        || ngx_ai_resp_close(rs) != NGX_OK)
    {
        return NGX_ERROR;
    }

    status = ngx_ai_resp_status(rs);

    ngx_ai_resp_event(rs, &w, rs->incomplete ? "response.incomplete"
                                             : "response.completed");
    ngx_ai_jw_key(&w, "response");
    ngx_ai_resp_object(rs, &w, status, NULL, NULL);

    rs->done = 1;

    return ngx_ai_resp_event_end(rs, &w);
}


/*
 * The gateway's error event: the stream is cut with response.failed (the
 * items so far, the open one in progress) and an error event, never a
 * response.completed.
 */

static ngx_int_t
ngx_ai_resp_fail(ngx_ai_resp_t *rs, cJSON *error)
{
    cJSON        *code, *msg;
    ngx_ai_jw_t   w;

    if (ngx_ai_resp_start(rs, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    rs->failed = 1;

    ngx_ai_resp_event(rs, &w, "response.failed");
    ngx_ai_jw_key(&w, "response");
    ngx_ai_resp_object(rs, &w, "failed", error, NULL);

    if (ngx_ai_resp_event_end(rs, &w) != NGX_OK) {
        return NGX_ERROR;
    }

    code = ngx_ai_get(error, "code");
    msg = ngx_ai_get(error, "message");

    ngx_ai_resp_event(rs, &w, "error");
    ngx_ai_jw_key(&w, "code");
    ngx_ai_jw_str(&w, (cJSON_IsString(code) ? code->valuestring
                                           : "server_error"));
    ngx_ai_jw_key(&w, "message");
    ngx_ai_jw_str(&w, (cJSON_IsString(msg) ? msg->valuestring
                                          : "the stream failed"));
    ngx_ai_jw_key(&w, "param");
    ngx_ai_jw_null(&w);

    return ngx_ai_resp_event_end(rs, &w);
}


/* "event: TYPE\ndata: {"type":TYPE,"sequence_number":N" */

static void
ngx_ai_resp_event(ngx_ai_resp_t *rs, ngx_ai_jw_t *w, const char *type)
{
    ngx_ai_jw_init(w, &rs->out);

    if (ngx_ai_buf_append_str(&rs->out, "event: ") != NGX_OK
        || ngx_ai_buf_append_str(&rs->out, type) != NGX_OK
        || ngx_ai_buf_append_str(&rs->out, "\ndata: ") != NGX_OK)
    {
        w->rc = NGX_ERROR;
        return;
    }

    ngx_ai_jw_object(w);
    ngx_ai_jw_key(w, "type");
    ngx_ai_jw_str(w, type);
    ngx_ai_jw_key_uint(w, "sequence_number", rs->seq++);
}


static ngx_int_t
ngx_ai_resp_event_end(ngx_ai_resp_t *rs, ngx_ai_jw_t *w)
{
    ngx_ai_jw_end(w);

    if (ngx_ai_jw_done(w) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_buf_append(&rs->out, "\n\n", 2);
}


/* "item_id":...,"output_index":N of an event about an item */

static void
ngx_ai_resp_item_ref(ngx_ai_resp_t *rs, ngx_ai_jw_t *w,
    ngx_ai_resp_item_t *it)
{
    ngx_ai_jw_key_string(w, "item_id", it->id.data, it->id.len);
    ngx_ai_jw_key_uint(w, "output_index", (uint64_t) (it - rs->items));
}


/* the dialect's stream: ngx_ai_resp_t behind a void pointer */

void *
ngx_ai_responses_stream_create(ngx_pool_t *pool, uint64_t input,
    ngx_uint_t exact)
{
    ngx_ai_resp_t  *rs;

    rs = ngx_palloc(pool, sizeof(ngx_ai_resp_t));

    if (rs == NULL
        || ngx_ai_resp_init(rs, pool) != NGX_OK
        || ngx_ai_sse_init(&rs->sse, pool, 0) != NGX_OK)
    {
        return NULL;
    }

    return rs;
}


/* the usage as the gateway knows it: it replaces the chunks' usage */

void
ngx_ai_responses_stream_usage(void *st, ngx_ai_usage_t *u)
{
    ngx_ai_resp_t  *rs = st;

    rs->usage = *u;
    rs->usage_fixed = 1;
}


/*
 * OpenAI chunk text in, Responses events out (in *out, valid until the
 * next feed).  SSE comments (the gateway's ": keep-alive" while fusion
 * members work) go out as they are, ahead of the events of the same feed.
 */

ngx_int_t
ngx_ai_responses_stream_feed(void *st, u_char *p, size_t len, ngx_str_t *out)
{
    ngx_ai_resp_t  *rs = st;

    size_t     i;
    ngx_int_t  rc;

    rs->out.len = 0;

    if (!rs->done && !rs->failed) {
        for (i = 0; i < len; i++) {
            if (p[i] == ':'
                && (i ? p[i - 1] == '\n' || p[i - 1] == '\r'
                      : rs->sse.line.len == 0)
                && ngx_ai_buf_append_str(&rs->out, ": keep-alive\n\n")
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        rc = ngx_ai_sse_feed(&rs->sse, p, p + len, ngx_ai_resp_sse_event,
                             rs);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    out->data = rs->out.data;
    out->len = rs->out.len;

    return NGX_OK;
}
