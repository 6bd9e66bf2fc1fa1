
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * JSON and buffer helpers shared by the pure code: growable pool buffers,
 * cJSON trees freed with their pool, OpenAI error objects, usage objects.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


/* a scratch pool holds one event's tree: a few kilobytes */
#define NGX_AI_JSON_SCRATCH     4096


static void ngx_ai_json_cleanup(void *data);
static void ngx_ai_json_free_heap(cJSON *item);
static void ngx_ai_json_scratch_cleanup(void *data);
static void ngx_ai_free_cleanup(void *data);
static ngx_int_t ngx_ai_content_piece(ngx_ai_buf_t *b, const char *s,
    const char *sep);


ngx_int_t
ngx_ai_buf_init(ngx_ai_buf_t *b, ngx_pool_t *pool, size_t cap)
{
    b->pool = pool;
    b->len = 0;
    b->cap = 0;
    b->data = NULL;

    return ngx_ai_buf_reserve(b, cap ? cap : 64);
}


ngx_int_t
ngx_ai_buf_reserve(ngx_ai_buf_t *b, size_t n)
{
    u_char  *p;
    size_t   cap;

    if (b->len + n <= b->cap) {
        return NGX_OK;
    }

    cap = b->cap ? b->cap * 2 : 64;

    while (cap < b->len + n) {
        cap *= 2;
    }

    p = ngx_pnalloc(b->pool, cap);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (b->len) {
        ngx_memcpy(p, b->data, b->len);
    }

    /* the old block stays in the pool: pools free everything at once */

    b->data = p;
    b->cap = cap;

    return NGX_OK;
}


ngx_int_t
ngx_ai_buf_append(ngx_ai_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return NGX_OK;
    }

    if (ngx_ai_buf_reserve(b, n) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memcpy(b->data + b->len, p, n);
    b->len += n;

    return NGX_OK;
}


/*
 * p..p+len with %XX decoded into dst (room for len bytes); printable:
 * any other byte outside 0x21-0x7e is refused.  The end of what was
 * written, or NULL for a bad %XX or byte.
 */

u_char *
ngx_ai_percent_decode(u_char *dst, u_char *p, size_t len,
    ngx_uint_t printable)
{
    u_char     *last;
    ngx_int_t   c;

    for (last = p + len; p < last; p++) {

        if (*p == '%') {
            if (last - p < 3) {
                return NULL;
            }

            c = ngx_hextoi(p + 1, 2);
            if (c == NGX_ERROR) {
                return NULL;
            }

            *dst++ = (u_char) c;
            p += 2;
            continue;
        }

        if (printable && (*p <= 0x20 || *p >= 0x7f)) {
            return NULL;
        }

        *dst++ = *p;
    }

    return dst;
}


/* b's text NUL-terminated (the NUL not counted), for string references */

char *
ngx_ai_buf_cstr(ngx_ai_buf_t *b)
{
    if (ngx_ai_buf_append(b, "", 1) != NGX_OK) {
        return NULL;
    }

    b->len--;

    return (char *) b->data;
}


ngx_int_t
ngx_ai_buf_append_str(ngx_ai_buf_t *b, const char *s)
{
    return ngx_ai_buf_append(b, s, ngx_strlen(s));
}


ngx_int_t
ngx_ai_buf_append_uint(ngx_ai_buf_t *b, uint64_t n)
{
    u_char   tmp[24], *p;

    p = tmp + sizeof(tmp);

    do {
        *--p = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_ai_buf_append(b, p, tmp + sizeof(tmp) - p);
}


ngx_int_t
ngx_ai_buf_append_json_string(ngx_ai_buf_t *b, const u_char *p, size_t n)
{
    u_char         c, *d;
    size_t         i;
    static u_char  hex[] = "0123456789abcdef";

    /* worst case: every byte becomes \u00XX */
    if (ngx_ai_buf_reserve(b, n * 6 + 2) != NGX_OK) {
        return NGX_ERROR;
    }

    d = b->data + b->len;
    *d++ = '"';

    for (i = 0; i < n; i++) {
        c = p[i];

        switch (c) {

        case '"':
        case '\\':
            *d++ = '\\';
            *d++ = c;
            break;

        case '\n':
            *d++ = '\\';
            *d++ = 'n';
            break;

        case '\r':
            *d++ = '\\';
            *d++ = 'r';
            break;

        case '\t':
            *d++ = '\\';
            *d++ = 't';
            break;

        default:
            if (c < 0x20 || c == 0x7f) {
                *d++ = '\\';
                *d++ = 'u';
                *d++ = '0';
                *d++ = '0';
                *d++ = hex[c >> 4];
                *d++ = hex[c & 0xf];

            } else {
                *d++ = c;
            }
        }
    }

    *d++ = '"';
    b->len = d - b->data;

    return NGX_OK;
}


/*
 * A tree tracked by a pool goes with it.  With the hooks installed its
 * pool blocks need nothing, so only blocks malloc()ed into it later (items
 * added while no arena was set) are freed: a walk that reads each block's
 * header, cheaper than cJSON_Delete()'s three indirect calls per node.
 */

static void
ngx_ai_json_cleanup(void *data)
{
    ngx_ai_json_release(data);
}


/*
 * The tree of one event's JSON data (a stream's events are decoded one
 * after the other), or NULL: not one JSON value, or out of memory.  It
 * lives in *scratch, a pool created on first use and destroyed with owner,
 * which ngx_ai_json_scratch_done() resets after the event: a stream mallocs
 * nothing per node and keeps none of its events' trees.  Nothing of the
 * tree may be kept past the event (what is, is copied elsewhere).
 */

cJSON *
ngx_ai_json_scratch(ngx_pool_t **scratch, ngx_pool_t *owner,
    ngx_str_t *data)
{
    ngx_uint_t           status;
    ngx_pool_cleanup_t  *cln;

    if (*scratch == NULL) {
        *scratch = ngx_create_pool(NGX_AI_JSON_SCRATCH, owner->log);
        if (*scratch == NULL) {
            return NULL;
        }

        cln = ngx_pool_cleanup_add(owner, 0);
        if (cln == NULL) {
            ngx_destroy_pool(*scratch);
            *scratch = NULL;
            return NULL;
        }

        cln->handler = ngx_ai_json_scratch_cleanup;
        cln->data = *scratch;
    }

    return ngx_ai_json_decode(*scratch, data->data, data->len,
                              NGX_AI_JSON_MAX_DEPTH, NULL, &status);
}


void
ngx_ai_json_scratch_done(ngx_pool_t *scratch, cJSON *root)
{
    if (root) {
        ngx_ai_json_release(root);
    }

    if (scratch) {
        ngx_reset_pool(scratch);
    }
}


static void
ngx_ai_json_scratch_cleanup(void *data)
{
    ngx_destroy_pool(data);
}


/* a tree of pool blocks (ngx_ai_json_decode()) done with, or any tree */

void
ngx_ai_json_release(cJSON *json)
{
    if (ngx_ai_json_pool_blocks) {
        ngx_ai_json_free_heap(json);

    } else {
        cJSON_Delete(json);
    }
}


#define ngx_ai_json_from_heap(p)                                             \
    (*(uint64_t *) ((u_char *) (p) - NGX_AI_JSON_HEADER)                    \
     == NGX_AI_JSON_FROM_HEAP)


static void
ngx_ai_json_free_heap(cJSON *item)
{
    cJSON  *next;

    for ( /* void */ ; item; item = next) {
        next = item->next;

        if (ngx_ai_json_from_heap(item)) {
            /* a heap item and what it holds, as cJSON frees them */
            item->next = NULL;
            cJSON_Delete(item);
            continue;
        }

        if (!(item->type & cJSON_IsReference)) {
            if (item->child) {
                ngx_ai_json_free_heap(item->child);
            }

            if (item->valuestring && ngx_ai_json_from_heap(item->valuestring))
            {
                cJSON_free(item->valuestring);
            }
        }

        if (!(item->type & cJSON_StringIsConst)
            && item->string && ngx_ai_json_from_heap(item->string))
        {
            cJSON_free(item->string);
        }
    }
}


static void
ngx_ai_free_cleanup(void *data)
{
    cJSON_free(data);
}


/* ties a cJSON tree's lifetime to the pool; returns json, or NULL */

cJSON *
ngx_ai_json_track(ngx_pool_t *pool, cJSON *json)
{
    ngx_pool_cleanup_t  *cln;

    if (json == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        cJSON_Delete(json);
        return NULL;
    }

    cln->handler = ngx_ai_json_cleanup;
    cln->data = json;

    return json;
}


cJSON *
ngx_ai_json_parse(ngx_pool_t *pool, const u_char *p, size_t len)
{
    cJSON       *json;
    ngx_uint_t   status;

    json = ngx_ai_json_decode(pool, p, len, NGX_AI_JSON_MAX_DEPTH, NULL,
                              &status);

    return ngx_ai_json_track(pool, json);
}


/*
 * cJSON's memory.  Inside nginx (ngx_ai_json_init_allocator() installs
 * these hooks) the trees the gateway parses and the strings it prints
 * while an arena pool is set come from that pool: one request's JSON is
 * freed with its pool, without a malloc() and a free() per node.  Every
 * block carries a small header saying where it came from, so cJSON's free
 * is a no-op for pool blocks and free() for the others.  Outside nginx
 * (unit tests, fuzzers) the hooks are not installed and cJSON uses
 * malloc() as usual.
 */

ngx_uint_t  ngx_ai_json_pool_blocks;

static ngx_pool_t  *ngx_ai_json_arena;


ngx_pool_t *
ngx_ai_json_arena_set(ngx_pool_t *pool)
{
    ngx_pool_t  *old;

    old = ngx_ai_json_arena;
    ngx_ai_json_arena = pool;

    return old;
}


static void *
ngx_ai_json_malloc(size_t size)
{
    u_char  *p;

    if (ngx_ai_json_arena) {
        p = ngx_palloc(ngx_ai_json_arena, size + NGX_AI_JSON_HEADER);
        if (p == NULL) {
            return NULL;
        }

        *(uint64_t *) p = NGX_AI_JSON_FROM_POOL;

        return p + NGX_AI_JSON_HEADER;
    }

    p = malloc(size + NGX_AI_JSON_HEADER);
    if (p == NULL) {
        return NULL;
    }

    *(uint64_t *) p = NGX_AI_JSON_FROM_HEAP;

    return p + NGX_AI_JSON_HEADER;
}


static void
ngx_ai_json_free(void *ptr)
{
    u_char  *p;

    if (ptr == NULL) {
        return;
    }

    p = (u_char *) ptr - NGX_AI_JSON_HEADER;

    if (*(uint64_t *) p == NGX_AI_JSON_FROM_HEAP) {
        *(uint64_t *) p = 0;
        free(p);
    }

    /* a pool block goes with its pool */
}


void
ngx_ai_json_init_allocator(void)
{
    cJSON_Hooks  hooks;

    hooks.malloc_fn = ngx_ai_json_malloc;
    hooks.free_fn = ngx_ai_json_free;

    cJSON_InitHooks(&hooks);

    /* ngx_ai_json_decode() may now carve pool blocks with the header */
    ngx_ai_json_pool_blocks = 1;
}


/*
 * Exactly one JSON value in p..p+len, with only whitespace around it (the
 * caller owns the tree and frees it with cJSON_Delete()), or NULL.
 * Providers' bytes are not scanned first: the decoder stops at cJSON's
 * nesting limit, and a NUL in a string ends that C string, as in cJSON.
 */

cJSON *
ngx_ai_json_parse_whole(const u_char *p, size_t len)
{
    ngx_uint_t  status;

    return ngx_ai_json_decode(NULL, p, len, NGX_AI_JSON_MAX_DEPTH, NULL,
                              &status);
}


ngx_int_t
ngx_ai_json_print(ngx_pool_t *pool, cJSON *json, ngx_str_t *out)
{
    char                *s;
    ngx_pool_t          *arena;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    arena = ngx_ai_json_arena_set(pool);
    s = cJSON_PrintUnformatted(json);
    (void) ngx_ai_json_arena_set(arena);

    if (s == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_ai_free_cleanup;
    cln->data = s;

    out->data = (u_char *) s;
    out->len = ngx_strlen(s);

    return NGX_OK;
}


/* a non-negative integer member; NGX_DECLINED when absent or not one */

ngx_int_t
ngx_ai_json_get_uint(cJSON *obj, const char *name, uint64_t *v)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (!cJSON_IsNumber(item) || item->valuedouble < 0
        || item->valuedouble > 9007199254740992.0)
    {
        return NGX_DECLINED;
    }

    *v = (uint64_t) item->valuedouble;

    return NGX_OK;
}


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

    return ngx_ai_buf_append(b, "}", 1);
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


/*
 * Adds item to an object under key (a string that outlives the tree: it
 * is not copied), or to an array when key is NULL; item is deleted when
 * it cannot be added.  NGX_ERROR when item is NULL or on failure.
 */

/*
 * A conversation of turns {"role": ROLE, KEY: [items]} (Anthropic's
 * messages, Gemini's contents): a new turn is appended to list unless the
 * last one (*cur_role, *items) is already role's.  NGX_OK: a new turn was
 * opened; NGX_DECLINED: the last one goes on; NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_ai_json_turn(cJSON *list, const char *key, const char *role,
    const char **cur_role, cJSON **items)
{
    cJSON  *turn;

    if (*cur_role && ngx_strcmp(*cur_role, role) == 0) {
        return NGX_DECLINED;
    }

    turn = cJSON_CreateObject();

    if (ngx_ai_json_add(list, NULL, turn) != NGX_OK
        || ngx_ai_json_add_ref(turn, "role", role) != NGX_OK)
    {
        return NGX_ERROR;
    }

    *items = cJSON_CreateArray();

    if (ngx_ai_json_add(turn, key, *items) != NGX_OK) {
        return NGX_ERROR;
    }

    *cur_role = role;

    return NGX_OK;
}


ngx_int_t
ngx_ai_json_add(cJSON *obj, const char *key, cJSON *item)
{
    cJSON_bool  ok;

    if (item == NULL) {
        return NGX_ERROR;
    }

    ok = key ? cJSON_AddItemToObjectCS(obj, key, item)
             : cJSON_AddItemToArray(obj, item);

    if (!ok) {
        cJSON_Delete(item);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a string member that references s (not copied: s outlives the tree) */

ngx_int_t
ngx_ai_json_add_ref(cJSON *obj, const char *key, const char *s)
{
    return ngx_ai_json_add(obj, key, cJSON_CreateStringReference(s));
}


/*
 * Tool call "arguments" (a JSON text) -> an object tree the caller owns;
 * anything that is not a JSON object, or nests too deeply, gives {}.
 * NULL only when out of memory.
 */

cJSON *
ngx_ai_json_parse_args(const char *s)
{
    size_t       len;
    cJSON       *json;
    ngx_uint_t   status;

    len = s ? ngx_strlen(s) : 0;

    if (len) {
        json = ngx_ai_json_decode(NULL, (u_char *) s, len,
                                  NGX_AI_MAX_JSON_DEPTH, NULL, &status);

        if (cJSON_IsObject(json)) {
            return json;
        }

        cJSON_Delete(json);
    }

    return cJSON_CreateObject();
}


/*
 * The first n bytes of s equal lit (n bytes, no NUL) ignoring ASCII case;
 * s may be shorter if it is NUL-terminated: its NUL ends the comparison.
 */

ngx_int_t
ngx_ai_strncaseeq(const u_char *s, const char *lit, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (ngx_tolower(s[i]) != ngx_tolower((u_char) lit[i])) {
            return 0;
        }
    }

    return 1;
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
