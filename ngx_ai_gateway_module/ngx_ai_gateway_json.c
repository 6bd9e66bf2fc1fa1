
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * cJSON for the pure code: the allocator hooks that put trees in pools,
 * trees freed with their pool, one event's tree in a scratch pool,
 * parsing one whole value, printing, small helpers to build trees.
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


/* {"text": TEXT}, TEXT referenced: a text part of Gemini and Bedrock */

cJSON *
ngx_ai_json_text_object(const char *text)
{
    cJSON  *obj;

    obj = cJSON_CreateObject();

    if (ngx_ai_json_add_ref(obj, "text", text) != NGX_OK) {
        cJSON_Delete(obj);
        return NULL;
    }

    return obj;
}


/*
 * A function's JSON schema as obj's KEY: its "parameters" referenced, or,
 * for a function without them, {"type":"object","properties":{}} (for
 * the wire formats that require a schema)
 */

ngx_int_t
ngx_ai_json_tool_schema(cJSON *obj, const char *key, cJSON *fn)
{
    cJSON  *params, *schema;

    params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");

    if (cJSON_IsObject(params)) {
        return cJSON_AddItemReferenceToObject(obj, key, params)
               ? NGX_OK : NGX_ERROR;
    }

    schema = cJSON_CreateObject();

    if (ngx_ai_json_add(obj, key, schema) != NGX_OK
        || ngx_ai_json_add_ref(schema, "type", "object") != NGX_OK
        || ngx_ai_json_add(schema, "properties", cJSON_CreateObject())
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
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
 * The first of names (at most 32) that is a member of obj twice, or NULL.
 * cJSON finds the first of duplicate names, most parsers keep the last:
 * what the gateway reads and what a client or a provider reads would
 * differ.
 */

const char *
ngx_ai_json_unique(cJSON *obj, const char **names)
{
    cJSON       *item;
    uint32_t     seen;
    ngx_uint_t   i;

    seen = 0;

    cJSON_ArrayForEach(item, obj) {

        if (item->string == NULL) {
            continue;
        }

        for (i = 0; names[i] && i < 32; i++) {
            if (item->string[0] != names[i][0]
                || ngx_strcmp(item->string, names[i]) != 0)
            {
                continue;
            }

            if (seen & (1u << i)) {
                return names[i];
            }

            seen |= 1u << i;
            break;
        }
    }

    return NULL;
}
