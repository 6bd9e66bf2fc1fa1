
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * A client's chat request body through the gateway's pure code, for
 * fuzz_request and fuzz_messages_request (see fuzz.h, fuzz_chat_body()).
 */


#include "fuzz.h"


static void fuzz_request_translate(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_translator_t *tr, ngx_str_t *tree,
    ngx_uint_t utf8);
static void fuzz_request_check(ngx_ai_chat_request_t *req);
static ngx_uint_t fuzz_within(ngx_str_t *part, ngx_str_t *whole);
static void fuzz_canonical(ngx_pool_t *pool, cJSON *json, ngx_str_t *out);
static void fuzz_sort(cJSON *json);
static void fuzz_turns(ngx_ai_translator_t *tr, cJSON *body);
static void fuzz_bedrock_path(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_str_t *path);
static void fuzz_splice_check(ngx_pool_t *pool, ngx_ai_chat_request_t *req);
static void fuzz_check_refusal(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_translator_t *tr, ngx_uint_t utf8);


void
fuzz_chat_body(ngx_pool_t *pool, const u_char *data, size_t size)
{
    ngx_int_t               rc;
    ngx_str_t               tree;
    ngx_uint_t              utf8;
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t   req;

    utf8 = fuzz_utf8_valid(data, size);

    ngx_memzero(&err, sizeof(ngx_ai_error_t));

    rc = ngx_ai_chat_request_parse(pool, (u_char *) data, size, &req, &err);

    if (rc == NGX_ERROR) {
        fuzz_fail("request parse: NGX_ERROR");
    }

    if (rc == NGX_DECLINED) {
        if (err.status != 400) {
            fuzz_fail("request parse: a refusal gives %lu, not 400",
                      (unsigned long) err.status);
        }

        fuzz_check_error(pool, "request", &err, utf8);
        return;
    }

    fuzz_request_check(&req);

    /* what was accepted is one JSON object and whitespace */

    while (size && (data[size - 1] == ' ' || data[size - 1] == '\t'
                    || data[size - 1] == '\n' || data[size - 1] == '\r'))
    {
        size--;
    }

    fuzz_check_json("request body", data, size, 1);

    req.created = FUZZ_CREATED;
    req.default_max_tokens = (size & 1) ? 0 : 1000;

    fuzz_canonical(pool, req.json, &tree);

    fuzz_request_translate(pool, &req, &ngx_ai_openai_translator, &tree,
                           utf8);
    fuzz_request_translate(pool, &req, &ngx_ai_anthropic_translator, &tree,
                           utf8);
    fuzz_request_translate(pool, &req, &ngx_ai_gemini_translator, &tree,
                           utf8);
    fuzz_request_translate(pool, &req, &ngx_ai_bedrock_translator, &tree,
                           utf8);

    /* a second attempt at the same provider type sends the same bytes */
    fuzz_request_translate(pool, &req, &ngx_ai_openai_translator, &tree,
                           utf8);

    fuzz_splice_check(pool, &req);

    /* what a wire format cannot carry is a 400 */

    fuzz_check_refusal(pool, &req, &ngx_ai_anthropic_translator, utf8);
    fuzz_check_refusal(pool, &req, &ngx_ai_gemini_translator, utf8);
    fuzz_check_refusal(pool, &req, &ngx_ai_bedrock_translator, utf8);
}


static void
fuzz_check_refusal(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_translator_t *tr, ngx_uint_t utf8)
{
    ngx_ai_error_t  err;

    ngx_memzero(&err, sizeof(ngx_ai_error_t));

    if (tr->check(req, &err) == NGX_DECLINED) {
        if (err.status != 400 || err.param == NULL) {
            fuzz_fail("%s check: a refusal gives %lu without a param",
                      tr->name.data, (unsigned long) err.status);
        }

        fuzz_check_error(pool, (char *) tr->name.data, &err, utf8);
    }
}


/*
 * The openai translator sends the client's bytes with a few members
 * edited (the splice) when it can: what it sends must mean exactly what
 * the printed tree (the slow path) would, for every stream setting.
 */

static void
fuzz_splice_check(ngx_pool_t *pool, ngx_ai_chat_request_t *req)
{
    cJSON                      *a, *b, *opts;
    ngx_str_t                   ca, cb;
    ngx_uint_t                  mode, usage_ok;
    ngx_ai_chat_request_t       fast, slow;
    ngx_ai_upstream_request_t   up_fast, up_slow;

    /* include_usage as the parser can set it: from stream_options, or
     * without them (a request the gateway built, OpenRouter's "usage") */

    opts = cJSON_GetObjectItemCaseSensitive(req->json, "stream_options");
    usage_ok = (opts == NULL
                || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts,
                                                        "include_usage")));

    for (mode = 0; mode < 4; mode++) {
        fast = *req;
        fast.stream = mode & 1;
        fast.include_usage = ((mode >> 1) & 1) && usage_ok;

        slow = fast;
        ngx_str_null(&slow.raw);

        if (ngx_ai_openai_translator.request(pool, &fast, &up_fast) != NGX_OK
            || ngx_ai_openai_translator.request(pool, &slow, &up_slow)
               != NGX_OK)
        {
            fuzz_fail("openai request: not translated");
        }

        a = cJSON_ParseWithLength((char *) up_fast.body.data,
                                  up_fast.body.len);
        b = cJSON_ParseWithLength((char *) up_slow.body.data,
                                  up_slow.body.len);

        if (a == NULL || b == NULL) {
            cJSON_Delete(a);
            cJSON_Delete(b);
            fuzz_fail("openai request: not JSON");
        }

        /* keys sorted, duplicates in their order: the same meaning */

        fuzz_canonical(pool, a, &ca);
        fuzz_canonical(pool, b, &cb);

        cJSON_Delete(a);
        cJSON_Delete(b);

        if (ca.len != cb.len || ngx_memcmp(ca.data, cb.data, ca.len) != 0) {
            fuzz_fail("openai splice differs from the tree (stream %lu, "
                      "usage %lu):\nspliced: %.*s\nprinted: %.*s",
                      (unsigned long) fast.stream,
                      (unsigned long) fast.include_usage,
                      (int) up_fast.body.len, up_fast.body.data,
                      (int) up_slow.body.len, up_slow.body.data);
        }
    }
}


static void
fuzz_request_check(ngx_ai_chat_request_t *req)
{
    if (req->json == NULL || !cJSON_IsObject(req->json)) {
        fuzz_fail("request: accepted without a JSON object");
    }

    if (!ngx_ai_model_name_valid(req->model.data, req->model.len)) {
        fuzz_fail("request: accepted model \"%.*s\"",
                  (int) req->model.len, req->model.data);
    }

    if (!fuzz_within(&req->upstream_model, &req->model)
        || (req->provider.len && !fuzz_within(&req->provider, &req->model))
        || req->upstream_model.len == 0)
    {
        fuzz_fail("request: provider/model split of \"%.*s\"",
                  (int) req->model.len, req->model.data);
    }

    /* "model" is a C string: upstream_model must end where it ends */

    if (req->upstream_model.data[req->upstream_model.len] != '\0') {
        fuzz_fail("request: upstream model is not NUL-terminated");
    }

    if (req->max_tokens != -1
        && (req->max_tokens < 1 || req->max_tokens > 100000000))
    {
        fuzz_fail("request: max_tokens %ld", (long) req->max_tokens);
    }
}


static void
fuzz_request_translate(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_translator_t *tr, ngx_str_t *tree, ngx_uint_t utf8)
{
    size_t                      i;
    cJSON                      *body, *model;
    ngx_str_t                   after;
    ngx_ai_upstream_request_t   up;

    ngx_memzero(&up, sizeof(ngx_ai_upstream_request_t));

    if (tr->request(pool, req, &up) != NGX_OK) {
        fuzz_fail("%s request: not translated", tr->name.data);
    }

    fuzz_check_json((char *) tr->name.data, up.body.data, up.body.len, 1);

    if (utf8 && !fuzz_utf8_valid(up.body.data, up.body.len)) {
        fuzz_fail("%s request: UTF-8 in, not UTF-8 out: \"%.*s\"",
                  tr->name.data, (int) up.body.len, up.body.data);
    }

    /* the path goes into a URI after pass=: printable, no spaces */

    if (up.path.len == 0 || up.path.data[0] != '/') {
        fuzz_fail("%s request: path \"%.*s\"", tr->name.data,
                  (int) up.path.len, up.path.data);
    }

    for (i = 0; i < up.path.len; i++) {
        if (up.path.data[i] <= 0x20 || up.path.data[i] >= 0x7f
            || up.path.data[i] == '#'
            || (up.path.data[i] == '%'
                && tr->type != NGX_AI_PROVIDER_BEDROCK))
        {
            fuzz_fail("%s request: path \"%.*s\"", tr->name.data,
                      (int) up.path.len, up.path.data);
        }
    }

    if (tr->type == NGX_AI_PROVIDER_BEDROCK) {
        fuzz_bedrock_path(pool, req, &up.path);
    }

    body = cJSON_ParseWithLength((char *) up.body.data, up.body.len);

    if (tr->type != NGX_AI_PROVIDER_OPENAI) {
        fuzz_turns(tr, body);
    }

    if (tr->type == NGX_AI_PROVIDER_OPENAI
        || tr->type == NGX_AI_PROVIDER_ANTHROPIC)
    {
        /* the upstream sees the model without the provider prefix */

        model = cJSON_GetObjectItemCaseSensitive(body, "model");

        if (!cJSON_IsString(model)
            || ngx_strlen(model->valuestring) != req->upstream_model.len
            || ngx_strncmp(model->valuestring, req->upstream_model.data,
                           req->upstream_model.len) != 0)
        {
            cJSON_Delete(body);
            fuzz_fail("%s request: upstream \"model\" is not \"%.*s\": %.*s",
                      tr->name.data, (int) req->upstream_model.len,
                      req->upstream_model.data, (int) up.body.len,
                      up.body.data);
        }
    }

    cJSON_Delete(body);

    fuzz_canonical(pool, req->json, &after);

    if (after.len != tree->len
        || ngx_memcmp(after.data, tree->data, tree->len) != 0)
    {
        fuzz_fail("%s request: the client's tree changed:\nbefore: %.*s\n"
                  "after:  %.*s", tr->name.data, (int) tree->len,
                  tree->data, (int) after.len, after.data);
    }
}


static ngx_uint_t
fuzz_within(ngx_str_t *part, ngx_str_t *whole)
{
    return part->data >= whole->data
           && part->data + part->len <= whole->data + whole->len;
}


/*
 * The tree's JSON text with every object's members in key order (stable:
 * duplicate keys keep their order), so that a translator may move a
 * member but not change, add or drop one.
 */

static void
fuzz_canonical(ngx_pool_t *pool, cJSON *json, ngx_str_t *out)
{
    char   *s;
    cJSON  *copy;

    copy = cJSON_Duplicate(json, 1);
    if (copy == NULL) {
        fuzz_fail("request: the client's tree does not copy");
    }

    fuzz_sort(copy);

    s = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);

    if (s == NULL) {
        fuzz_fail("request: the client's tree does not print");
    }

    out->len = ngx_strlen(s);
    out->data = ngx_pnalloc(pool, out->len);

    if (out->data == NULL) {
        fuzz_fail("no memory");
    }

    ngx_memcpy(out->data, s, out->len);
    cJSON_free(s);
}


static void
fuzz_sort(cJSON *json)
{
    cJSON  *item, *next, *sorted, *p;

    for (item = json->child; item; item = item->next) {
        fuzz_sort(item);
    }

    if (!cJSON_IsObject(json) || json->child == NULL) {
        return;
    }

    /* insertion sort of the children list by key, rebuilt via ->next */

    sorted = NULL;

    for (item = json->child; item; item = next) {
        next = item->next;
        item->next = NULL;

        if (sorted == NULL || strcmp(item->string, sorted->string) < 0) {
            item->next = sorted;
            sorted = item;
            continue;
        }

        for (p = sorted; p->next && strcmp(p->next->string, item->string)
                                    <= 0; p = p->next)
        {
            /* void */
        }

        item->next = p->next;
        p->next = item;
    }

    /* cJSON lists: prev links, and the head's prev is the tail */

    json->child = sorted;

    for (p = sorted; p->next; p = p->next) {
        p->next->prev = p;
    }

    sorted->prev = p;
}


/*
 * What Anthropic and Gemini require of a conversation: turns of the two
 * roles alternating, none empty; in an Anthropic user turn the
 * tool_result blocks come before anything else.
 */

/*
 * type=bedrock: /model/{the upstream model, every byte but A-Za-z0-9-._~
 * as %XX}/converse[-stream], which decodes back to the model.
 */

static void
fuzz_bedrock_path(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_str_t *path)
{
    u_char      *p, *last, *d, *dec;
    ngx_int_t    hi, lo;
    const char  *op;

    op = req->stream ? "/converse-stream" : "/converse";

    if (path->len < 7 + ngx_strlen(op)
        || ngx_strncmp(path->data, "/model/", 7) != 0
        || ngx_strncmp(path->data + path->len - ngx_strlen(op), op,
                       ngx_strlen(op)) != 0)
    {
        fuzz_fail("bedrock request: path \"%.*s\"", (int) path->len,
                  path->data);
    }

    p = path->data + 7;
    last = path->data + path->len - ngx_strlen(op);

    dec = ngx_pnalloc(pool, last - p + 1);
    if (dec == NULL) {
        fuzz_fail("no memory");
    }

    for (d = dec; p < last; p++) {
        if (*p != '%') {
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
                  || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'
                  || *p == '_' || *p == '~'))
            {
                fuzz_fail("bedrock request: \"%c\" not escaped", *p);
            }

            *d++ = *p;
            continue;
        }

        hi = (last - p > 2) ? ngx_hextoi(p + 1, 1) : NGX_ERROR;
        lo = (last - p > 2) ? ngx_hextoi(p + 2, 1) : NGX_ERROR;

        if (hi == NGX_ERROR || lo == NGX_ERROR
            || (p[1] >= 'a' && p[1] <= 'f') || (p[2] >= 'a' && p[2] <= 'f'))
        {
            fuzz_fail("bedrock request: a bad escape in \"%.*s\"",
                      (int) path->len, path->data);
        }

        *d++ = (u_char) (hi * 16 + lo);
        p += 2;
    }

    if ((size_t) (d - dec) != req->upstream_model.len
        || ngx_memcmp(dec, req->upstream_model.data, d - dec) != 0)
    {
        fuzz_fail("bedrock request: the path's model is not \"%.*s\"",
                  (int) req->upstream_model.len, req->upstream_model.data);
    }
}


static void
fuzz_turns(ngx_ai_translator_t *tr, cJSON *body)
{
    cJSON       *turns, *turn, *role, *blocks, *block, *type;
    const char  *list, *other, *items, *prev;
    ngx_uint_t   others;

    if (tr->type == NGX_AI_PROVIDER_ANTHROPIC
        || tr->type == NGX_AI_PROVIDER_BEDROCK)
    {
        list = "messages";
        other = "assistant";
        items = "content";

    } else {
        list = "contents";
        other = "model";
        items = "parts";
    }

    turns = cJSON_GetObjectItemCaseSensitive(body, list);

    if (!cJSON_IsArray(turns)) {
        fuzz_fail("%s request: no \"%s\" array", tr->name.data, list);
    }

    prev = NULL;

    cJSON_ArrayForEach(turn, turns) {
        role = cJSON_GetObjectItemCaseSensitive(turn, "role");
        blocks = cJSON_GetObjectItemCaseSensitive(turn, items);

        if (!cJSON_IsString(role)
            || (strcmp(role->valuestring, "user") != 0
                && strcmp(role->valuestring, other) != 0))
        {
            fuzz_fail("%s request: a turn's role", tr->name.data);
        }

        if (prev && strcmp(prev, role->valuestring) == 0) {
            fuzz_fail("%s request: two \"%s\" turns in a row",
                      tr->name.data, prev);
        }

        if (!cJSON_IsArray(blocks) || blocks->child == NULL) {
            fuzz_fail("%s request: a turn with no %s", tr->name.data,
                      items);
        }

        prev = role->valuestring;

        if (tr->type != NGX_AI_PROVIDER_ANTHROPIC
            || strcmp(prev, "user") != 0)
        {
            continue;
        }

        others = 0;

        cJSON_ArrayForEach(block, blocks) {
            type = cJSON_GetObjectItemCaseSensitive(block, "type");

            if (!cJSON_IsString(type)
                || strcmp(type->valuestring, "tool_result") != 0)
            {
                others++;

            } else if (others) {
                fuzz_fail("anthropic request: a tool_result after other "
                          "blocks in a user turn");
            }
        }
    }
}
