
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The edge response cache's pure parts.  The key: a canonical form of the
 * request (keys sorted, no whitespace, without the fields that do not
 * change the answer) hashed with SHA-256 together with the route, the
 * plan and the tenant.  The record a cache file holds after nginx's own
 * header: a few "name=value" lines and the stored answer, read back as
 * outside bytes (strictly, every length checked).  A stream the gateway
 * relayed, put back together as one chat.completion from its own OpenAI
 * chunks; and a stored chat.completion replayed as such chunks.
 */


#define OPENSSL_SUPPRESS_DEPRECATED   /* SHA256_Init(): see below */

#include <ngx_config.h>
#include <ngx_core.h>
#include <openssl/sha.h>
#include "ngx_ai_gateway_cache_key.h"


typedef struct {
    cJSON                      *item;
    ngx_uint_t                  index;
} ngx_ai_cache_member_t;


static ngx_int_t ngx_ai_cache_canon_value(ngx_pool_t *pool, ngx_ai_buf_t *b,
    cJSON *v, ngx_uint_t top);
static ngx_int_t ngx_ai_cache_canon_object(ngx_pool_t *pool,
    ngx_ai_buf_t *b, cJSON *v, ngx_uint_t top);
static int ngx_libc_cdecl ngx_ai_cache_member_cmp(const void *one,
    const void *two);
static ngx_uint_t ngx_ai_cache_skipped(const char *name);
static u_char *ngx_ai_cache_line(u_char *p, u_char *last, const char *name,
    ngx_str_t *value);
static ngx_int_t ngx_ai_cache_uint(ngx_str_t *s, uint64_t *v);
static ngx_int_t ngx_ai_cache_finish_ok(cJSON *finish);
static ngx_int_t ngx_ai_cache_chunks_line(ngx_ai_cache_chunks_t *ch,
    u_char *p, size_t len);
static ngx_int_t ngx_ai_cache_chunks_event(ngx_ai_cache_chunks_t *ch,
    cJSON *root);
static ngx_int_t ngx_ai_cache_chunks_delta(ngx_ai_cache_chunks_t *ch,
    cJSON *delta);
static ngx_int_t ngx_ai_cache_chunks_tool(ngx_ai_cache_chunks_t *ch,
    cJSON *call);
static ngx_int_t ngx_ai_cache_copy(ngx_pool_t *pool, cJSON *s,
    ngx_str_t *out);
static ngx_int_t ngx_ai_cache_replay_tools(ngx_ai_stream_t *st,
    cJSON *calls);


#define NGX_AI_CACHE_MAGIC   "AIC1\n"


/*
 * The canonical form of a request: objects with their members sorted by
 * name (members of one name keep their order), arrays in order, numbers
 * as cJSON prints them, strings JSON-escaped, no whitespace.  At the top
 * level the fields that do not change the answer are left out: stream,
 * stream_options, user, metadata.
 */

ngx_int_t
ngx_ai_cache_canon(ngx_pool_t *pool, cJSON *request, ngx_ai_buf_t *out,
    ngx_ai_cache_canon_t *info)
{
    cJSON  *t;

    ngx_memzero(info, sizeof(ngx_ai_cache_canon_t));

    if (!cJSON_IsObject(request)) {
        return NGX_DECLINED;
    }

    t = cJSON_GetObjectItemCaseSensitive(request, "temperature");

    info->sampled = (t == NULL || cJSON_IsNull(t)
                     || (cJSON_IsNumber(t) && t->valuedouble > 0));

    if (ngx_ai_buf_init(out, pool, 256) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_cache_canon_value(pool, out, request, 1);
}


static ngx_int_t
ngx_ai_cache_canon_value(ngx_pool_t *pool, ngx_ai_buf_t *b, cJSON *v,
    ngx_uint_t top)
{
    cJSON   *item;
    double   d;
    char     num[64];

    switch (v->type & 0xff) {

    case cJSON_False:
        return ngx_ai_buf_append_str(b, "false");

    case cJSON_True:
        return ngx_ai_buf_append_str(b, "true");

    case cJSON_NULL:
        return ngx_ai_buf_append_str(b, "null");

    case cJSON_Number:
        d = v->valuedouble;

        if (d > -9007199254740992.0 && d < 9007199254740992.0
            && d == (double) (int64_t) d)
        {
            /* whole numbers (most of a request's) without printf */
            if (d < 0 && ngx_ai_buf_append(b, "-", 1) != NGX_OK) {
                return NGX_ERROR;
            }

            return ngx_ai_buf_append_uint(b, (uint64_t) (d < 0 ? -d : d));
        }

        /* cJSON's shortest form that reads back as the same double */

        if (!cJSON_PrintPreallocated(v, num, sizeof(num), 0)) {
            return NGX_ERROR;
        }

        return ngx_ai_buf_append_str(b, num);

    case cJSON_String:
        if (v->valuestring == NULL) {
            return NGX_ERROR;
        }

        return ngx_ai_buf_append_json_string(b, (u_char *) v->valuestring,
                                             ngx_strlen(v->valuestring));

    case cJSON_Array:
        if (ngx_ai_buf_append(b, "[", 1) != NGX_OK) {
            return NGX_ERROR;
        }

        for (item = v->child; item; item = item->next) {
            if ((item != v->child && ngx_ai_buf_append(b, ",", 1) != NGX_OK)
                || ngx_ai_cache_canon_value(pool, b, item, 0) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        return ngx_ai_buf_append(b, "]", 1);

    case cJSON_Object:
        return ngx_ai_cache_canon_object(pool, b, v, top);
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_ai_cache_canon_object(ngx_pool_t *pool, ngx_ai_buf_t *b, cJSON *v,
    ngx_uint_t top)
{
    cJSON                  *item;
    ngx_uint_t              i, n, w;
    ngx_ai_cache_member_t  *m;

    n = 0;

    for (item = v->child; item; item = item->next) {
        if (item->string == NULL) {
            return NGX_ERROR;
        }

        n++;
    }

    m = NULL;

    if (n) {
        m = ngx_palloc(pool, n * sizeof(ngx_ai_cache_member_t));
        if (m == NULL) {
            return NGX_ERROR;
        }
    }

    for (item = v->child, i = 0; item; item = item->next, i++) {
        m[i].item = item;
        m[i].index = i;
    }

    if (n > 1) {
        ngx_qsort(m, n, sizeof(ngx_ai_cache_member_t),
                  ngx_ai_cache_member_cmp);
    }

    if (ngx_ai_buf_append(b, "{", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0, w = 0; i < n; i++) {
        item = m[i].item;

        if (top && ngx_ai_cache_skipped(item->string)) {
            continue;
        }

        if ((w++ && ngx_ai_buf_append(b, ",", 1) != NGX_OK)
            || ngx_ai_buf_append_json_string(b, (u_char *) item->string,
                                             ngx_strlen(item->string))
               != NGX_OK
            || ngx_ai_buf_append(b, ":", 1) != NGX_OK
            || ngx_ai_cache_canon_value(pool, b, item, 0) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_ai_buf_append(b, "}", 1);
}


static int ngx_libc_cdecl
ngx_ai_cache_member_cmp(const void *one, const void *two)
{
    int                     rc;
    ngx_ai_cache_member_t  *a, *b;

    a = (ngx_ai_cache_member_t *) one;
    b = (ngx_ai_cache_member_t *) two;

    rc = ngx_strcmp(a->item->string, b->item->string);

    if (rc) {
        return rc;
    }

    return (a->index < b->index) ? -1 : 1;
}


static ngx_uint_t
ngx_ai_cache_skipped(const char *name)
{
    static const char  *skipped[] = {
        "stream", "stream_options", "user", "metadata", NULL
    };

    ngx_uint_t  i;

    for (i = 0; skipped[i]; i++) {
        if (ngx_strcmp(name, skipped[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * The key: SHA-256 over the parts, each as its length in decimal, ':'
 * and its bytes, after a version tag; so that no two lists of parts give
 * the same bytes.  hex: NGX_AI_CACHE_KEY_HEX bytes.
 */

ngx_int_t
ngx_ai_cache_key(ngx_pool_t *pool, ngx_str_t *parts, ngx_uint_t n,
    u_char *hex)
{
    u_char      *p;
    size_t       v;
    ngx_uint_t   i;
    SHA256_CTX   sha;
    u_char       len[NGX_SIZE_T_LEN + 1];
    u_char       md[SHA256_DIGEST_LENGTH];

    static u_char  digits[] = "0123456789abcdef";

    /* the low-level calls: SHA256() of OpenSSL 3 fetches the algorithm
     * on every call, a quarter of a cache hit's instructions */

    if (!SHA256_Init(&sha)
        || !SHA256_Update(&sha, "ai-cache/1\n", sizeof("ai-cache/1\n") - 1))
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        p = len + sizeof(len);
        *--p = ':';
        v = parts[i].len;

        do {
            *--p = (u_char) ('0' + v % 10);
            v /= 10;
        } while (v);

        if (!SHA256_Update(&sha, p, len + sizeof(len) - p)
            || !SHA256_Update(&sha, parts[i].data, parts[i].len))
        {
            return NGX_ERROR;
        }
    }

    if (!SHA256_Final(md, &sha)) {
        return NGX_ERROR;
    }

    for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        *hex++ = digits[md[i] >> 4];
        *hex++ = digits[md[i] & 0xf];
    }

    return NGX_OK;
}


/*
 * The record:
 *
 *   AIC1
 *   created=SECONDS
 *   input=TOKENS
 *   output=TOKENS
 *   cost=NANO_USD
 *   model=NAME
 *   body=LENGTH
 *   BODY
 */

ngx_int_t
ngx_ai_cache_record_encode(ngx_pool_t *pool, ngx_ai_cache_record_t *rec,
    ngx_str_t *out)
{
    ngx_uint_t    i;
    ngx_ai_buf_t  b;

    if (rec->model.len > NGX_AI_CACHE_MAX_MODEL) {
        return NGX_DECLINED;
    }

    for (i = 0; i < rec->model.len; i++) {
        if (rec->model.data[i] < 0x20 || rec->model.data[i] == 0x7f) {
            return NGX_DECLINED;
        }
    }

    if (ngx_ai_buf_init(&b, pool, rec->body.len + rec->model.len + 160)
        != NGX_OK
        || ngx_ai_buf_append_str(&b, NGX_AI_CACHE_MAGIC "created=") != NGX_OK
        || ngx_ai_buf_append_uint(&b, (uint64_t) (rec->created > 0
                                                  ? rec->created : 0))
           != NGX_OK
        || ngx_ai_buf_append_str(&b, "\ninput=") != NGX_OK
        || ngx_ai_buf_append_uint(&b, rec->input_tokens) != NGX_OK
        || ngx_ai_buf_append_str(&b, "\noutput=") != NGX_OK
        || ngx_ai_buf_append_uint(&b, rec->output_tokens) != NGX_OK
        || ngx_ai_buf_append_str(&b, "\ncost=") != NGX_OK
        || ngx_ai_buf_append_uint(&b, rec->cost) != NGX_OK
        || ngx_ai_buf_append_str(&b, "\nmodel=") != NGX_OK
        || ngx_ai_buf_append(&b, rec->model.data, rec->model.len) != NGX_OK
        || ngx_ai_buf_append_str(&b, "\nbody=") != NGX_OK
        || ngx_ai_buf_append_uint(&b, rec->body.len) != NGX_OK
        || ngx_ai_buf_append(&b, "\n", 1) != NGX_OK
        || ngx_ai_buf_append(&b, rec->body.data, rec->body.len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->data = b.data;
    out->len = b.len;

    return NGX_OK;
}


/* NGX_DECLINED: not a record (a damaged or foreign file) */

ngx_int_t
ngx_ai_cache_record_decode(u_char *p, size_t len, ngx_ai_cache_record_t *rec)
{
    u_char     *last;
    uint64_t    v;
    ngx_str_t   s;

    ngx_memzero(rec, sizeof(ngx_ai_cache_record_t));

    last = p + len;

    if (len < sizeof(NGX_AI_CACHE_MAGIC) - 1
        || ngx_memcmp(p, NGX_AI_CACHE_MAGIC, sizeof(NGX_AI_CACHE_MAGIC) - 1)
           != 0)
    {
        return NGX_DECLINED;
    }

    p += sizeof(NGX_AI_CACHE_MAGIC) - 1;

    p = ngx_ai_cache_line(p, last, "created", &s);
    if (p == NULL || ngx_ai_cache_uint(&s, &v) != NGX_OK
        || v > (uint64_t) NGX_MAX_INT32_VALUE)
    {
        return NGX_DECLINED;
    }

    rec->created = (time_t) v;

    p = ngx_ai_cache_line(p, last, "input", &s);
    if (p == NULL || ngx_ai_cache_uint(&s, &rec->input_tokens) != NGX_OK) {
        return NGX_DECLINED;
    }

    p = ngx_ai_cache_line(p, last, "output", &s);
    if (p == NULL || ngx_ai_cache_uint(&s, &rec->output_tokens) != NGX_OK) {
        return NGX_DECLINED;
    }

    p = ngx_ai_cache_line(p, last, "cost", &s);
    if (p == NULL || ngx_ai_cache_uint(&s, &rec->cost) != NGX_OK) {
        return NGX_DECLINED;
    }

    p = ngx_ai_cache_line(p, last, "model", &rec->model);
    if (p == NULL || rec->model.len > NGX_AI_CACHE_MAX_MODEL) {
        return NGX_DECLINED;
    }

    p = ngx_ai_cache_line(p, last, "body", &s);
    if (p == NULL || ngx_ai_cache_uint(&s, &v) != NGX_OK
        || v != (uint64_t) (last - p) || v == 0)
    {
        return NGX_DECLINED;
    }

    rec->body.data = p;
    rec->body.len = (size_t) v;

    return NGX_OK;
}


/* "name=value\n": value without control bytes; the byte after it */

static u_char *
ngx_ai_cache_line(u_char *p, u_char *last, const char *name,
    ngx_str_t *value)
{
    size_t   n;
    u_char  *start;

    n = ngx_strlen(name);

    if ((size_t) (last - p) < n + 2
        || ngx_memcmp(p, name, n) != 0 || p[n] != '=')
    {
        return NULL;
    }

    p += n + 1;
    start = p;

    while (p < last && *p != '\n') {
        if (*p < 0x20 || *p == 0x7f) {
            return NULL;
        }

        p++;
    }

    if (p == last) {
        return NULL;
    }

    value->data = start;
    value->len = p - start;

    return p + 1;
}


static ngx_int_t
ngx_ai_cache_uint(ngx_str_t *s, uint64_t *v)
{
    size_t  i;

    if (s->len == 0 || s->len > 19) {
        return NGX_DECLINED;
    }

    *v = 0;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < '0' || s->data[i] > '9') {
            return NGX_DECLINED;
        }

        *v = *v * 10 + (s->data[i] - '0');
    }

    return NGX_OK;
}


/*
 * A whole answer worth keeping: a chat.completion of one choice that
 * ended normally (stop, length, tool_calls, function_call), or an
 * embedding list.  NGX_DECLINED: not to be stored.
 */

ngx_int_t
ngx_ai_cache_answer_ok(ngx_pool_t *pool, ngx_str_t *body)
{
    cJSON      *root, *object, *choices, *choice, *data;
    ngx_int_t   rc;

    root = ngx_ai_json_parse(pool, body->data, body->len);

    if (!cJSON_IsObject(root)) {
        return NGX_DECLINED;
    }

    object = cJSON_GetObjectItemCaseSensitive(root, "object");

    if (!cJSON_IsString(object)) {
        return NGX_DECLINED;
    }

    if (ngx_strcmp(object->valuestring, "list") == 0) {
        data = cJSON_GetObjectItemCaseSensitive(root, "data");
        return (cJSON_IsArray(data) && data->child) ? NGX_OK : NGX_DECLINED;
    }

    if (ngx_strcmp(object->valuestring, "chat.completion") != 0) {
        return NGX_DECLINED;
    }

    choices = cJSON_GetObjectItemCaseSensitive(root, "choices");

    if (!cJSON_IsArray(choices) || choices->child == NULL
        || choices->child->next)
    {
        /* n > 1 is not cached: it could not be replayed as one stream */
        return NGX_DECLINED;
    }

    rc = NGX_OK;

    for (choice = choices->child; choice; choice = choice->next) {
        if (!cJSON_IsObject(choice)
            || ngx_ai_cache_finish_ok(cJSON_GetObjectItemCaseSensitive(
                                          choice, "finish_reason"))
               != NGX_OK)
        {
            rc = NGX_DECLINED;
            break;
        }
    }

    return rc;
}


static ngx_int_t
ngx_ai_cache_finish_ok(cJSON *finish)
{
    static const char  *ok[] = {
        "stop", "length", "tool_calls", "function_call", NULL
    };

    ngx_uint_t  i;

    if (!cJSON_IsString(finish)) {
        return NGX_DECLINED;
    }

    for (i = 0; ok[i]; i++) {
        if (ngx_strcmp(finish->valuestring, ok[i]) == 0) {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/*
 * A relayed stream, fed as the gateway sends it (its own OpenAI chunks,
 * before the client's dialect): content and tool calls of choice 0, the
 * finish reason, the usage chunk, [DONE].  Anything it cannot put back
 * together exactly (another choice, an error event, more than max bytes)
 * marks it failed, and a failed stream is never stored.
 */

ngx_int_t
ngx_ai_cache_chunks_init(ngx_ai_cache_chunks_t *ch, ngx_pool_t *pool,
    size_t max)
{
    ngx_memzero(ch, sizeof(ngx_ai_cache_chunks_t));

    ch->pool = pool;
    ch->max = max;

    if (ngx_ai_buf_init(&ch->line, pool, 256) != NGX_OK
        || ngx_ai_buf_init(&ch->content, pool, 256) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_ai_cache_chunks_feed(ngx_ai_cache_chunks_t *ch, u_char *p, size_t len)
{
    u_char  *last, *nl;

    last = p + len;

    while (p < last && !ch->failed) {
        nl = ngx_strlchr(p, last, '\n');

        if (nl == NULL) {
            if (ch->line.len + (last - p) > ch->max) {
                ch->failed = 1;
                return NGX_OK;
            }

            return ngx_ai_buf_append(&ch->line, p, last - p);
        }

        if (ch->line.len) {
            if (ngx_ai_buf_append(&ch->line, p, nl - p) != NGX_OK) {
                return NGX_ERROR;
            }

            if (ngx_ai_cache_chunks_line(ch, ch->line.data, ch->line.len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            ch->line.len = 0;

        } else if (ngx_ai_cache_chunks_line(ch, p, nl - p) != NGX_OK) {
            return NGX_ERROR;
        }

        p = nl + 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_cache_chunks_line(ngx_ai_cache_chunks_t *ch, u_char *p, size_t len)
{
    cJSON      *root;
    ngx_int_t   rc;
    ngx_str_t   data;

    if (len && p[len - 1] == '\r') {
        len--;
    }

    if (len < 5 || ngx_strncmp(p, "data:", 5) != 0) {
        /* blank lines, comments (": ping"), event names */
        return NGX_OK;
    }

    p += 5;
    len -= 5;

    if (len && *p == ' ') {
        p++;
        len--;
    }

    if (ch->done) {
        /* nothing may follow [DONE] */
        ch->failed = 1;
        return NGX_OK;
    }

    if (len == 6 && ngx_strncmp(p, "[DONE]", 6) == 0) {
        ch->done = 1;
        return NGX_OK;
    }

    data.data = p;
    data.len = len;

    root = ngx_ai_json_scratch(&ch->scratch, ch->pool, &data);

    if (root == NULL) {
        if (ch->scratch == NULL) {
            return NGX_ERROR;
        }

        ch->failed = 1;
        ngx_ai_json_scratch_done(ch->scratch, NULL);
        return NGX_OK;
    }

    rc = ngx_ai_cache_chunks_event(ch, root);

    ngx_ai_json_scratch_done(ch->scratch, root);

    if (ch->content.len > ch->max) {
        ch->failed = 1;
    }

    return rc;
}


static ngx_int_t
ngx_ai_cache_chunks_event(ngx_ai_cache_chunks_t *ch, cJSON *root)
{
    cJSON  *choices, *choice, *index, *finish, *usage, *item;

    if (!cJSON_IsObject(root)
        || cJSON_GetObjectItemCaseSensitive(root, "error"))
    {
        ch->failed = 1;
        return NGX_OK;
    }

    if (ch->id.len == 0) {
        item = cJSON_GetObjectItemCaseSensitive(root, "id");

        if (cJSON_IsString(item)
            && ngx_ai_cache_copy(ch->pool, item, &ch->id) != NGX_OK)
        {
            return NGX_ERROR;
        }

        item = cJSON_GetObjectItemCaseSensitive(root, "model");

        if (cJSON_IsString(item)
            && ngx_ai_cache_copy(ch->pool, item, &ch->model) != NGX_OK)
        {
            return NGX_ERROR;
        }

        item = cJSON_GetObjectItemCaseSensitive(root, "created");

        if (cJSON_IsNumber(item) && item->valuedouble > 0
            && item->valuedouble < NGX_MAX_INT32_VALUE)
        {
            ch->created = (time_t) item->valuedouble;
        }
    }

    usage = cJSON_GetObjectItemCaseSensitive(root, "usage");

    if (cJSON_IsObject(usage)) {
        (void) ngx_ai_usage_from_openai(usage, &ch->usage);
    }

    choices = cJSON_GetObjectItemCaseSensitive(root, "choices");

    if (choices == NULL) {
        return NGX_OK;
    }

    if (!cJSON_IsArray(choices)) {
        ch->failed = 1;
        return NGX_OK;
    }

    for (choice = choices->child; choice; choice = choice->next) {
        index = cJSON_GetObjectItemCaseSensitive(choice, "index");

        if (!cJSON_IsObject(choice)
            || (index && (!cJSON_IsNumber(index) || index->valuedouble != 0)))
        {
            /* n > 1: not put back together */
            ch->failed = 1;
            return NGX_OK;
        }

        if (ngx_ai_cache_chunks_delta(ch, cJSON_GetObjectItemCaseSensitive(
                                              choice, "delta"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");

        if (cJSON_IsString(finish)) {
            if (ngx_ai_cache_finish_ok(finish) != NGX_OK) {
                ch->failed = 1;
                return NGX_OK;
            }

            if (ngx_ai_cache_copy(ch->pool, finish, &ch->finish) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_cache_chunks_delta(ngx_ai_cache_chunks_t *ch, cJSON *delta)
{
    cJSON  *content, *calls, *call;

    if (delta == NULL) {
        return NGX_OK;
    }

    if (!cJSON_IsObject(delta)) {
        ch->failed = 1;
        return NGX_OK;
    }

    content = cJSON_GetObjectItemCaseSensitive(delta, "content");

    if (cJSON_IsString(content)) {
        ch->content_seen = 1;

        if (ngx_ai_buf_append_str(&ch->content, content->valuestring)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (cJSON_GetObjectItemCaseSensitive(delta, "refusal")
        && !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(delta, "refusal")))
    {
        ch->failed = 1;
        return NGX_OK;
    }

    calls = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");

    if (calls == NULL) {
        return NGX_OK;
    }

    if (!cJSON_IsArray(calls)) {
        ch->failed = 1;
        return NGX_OK;
    }

    for (call = calls->child; call && !ch->failed; call = call->next) {
        if (ngx_ai_cache_chunks_tool(ch, call) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a tool call's first delta (id, name) or a fragment of its arguments */

static ngx_int_t
ngx_ai_cache_chunks_tool(ngx_ai_cache_chunks_t *ch, cJSON *call)
{
    cJSON                *index, *id, *fn, *name, *args;
    ngx_uint_t            i;
    ngx_ai_cache_tool_t  *t;

    index = cJSON_GetObjectItemCaseSensitive(call, "index");

    if (!cJSON_IsNumber(index) || index->valuedouble < 0
        || index->valuedouble >= NGX_AI_CACHE_MAX_TOOLS
        || index->valuedouble != (double) (ngx_uint_t) index->valuedouble)
    {
        ch->failed = 1;
        return NGX_OK;
    }

    i = (ngx_uint_t) index->valuedouble;

    if (i > ch->ntools) {
        ch->failed = 1;
        return NGX_OK;
    }

    t = &ch->tools[i];
    id = cJSON_GetObjectItemCaseSensitive(call, "id");
    fn = cJSON_GetObjectItemCaseSensitive(call, "function");
    name = cJSON_IsObject(fn) ? cJSON_GetObjectItemCaseSensitive(fn, "name")
                              : NULL;
    args = cJSON_IsObject(fn)
           ? cJSON_GetObjectItemCaseSensitive(fn, "arguments") : NULL;

    if (i == ch->ntools) {
        /* a new call: it must say who it is */

        if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
            ch->failed = 1;
            return NGX_OK;
        }

        if (ngx_ai_cache_copy(ch->pool, id, &t->id) != NGX_OK
            || ngx_ai_cache_copy(ch->pool, name, &t->name) != NGX_OK
            || ngx_ai_buf_init(&t->args, ch->pool, 64) != NGX_OK)
        {
            return NGX_ERROR;
        }

        ch->ntools++;
    }

    if (cJSON_IsString(args)) {
        if (t->args.len + ngx_strlen(args->valuestring) > ch->max) {
            ch->failed = 1;
            return NGX_OK;
        }

        if (ngx_ai_buf_append_str(&t->args, args->valuestring) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_cache_copy(ngx_pool_t *pool, cJSON *s, ngx_str_t *out)
{
    size_t  len;

    len = ngx_strlen(s->valuestring);

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, s->valuestring, len + 1);
    out->len = len;

    return NGX_OK;
}


/*
 * The stream as the chat.completion a client asking for no stream would
 * have got.  NGX_DECLINED: not whole ([DONE] or the finish missing, or it
 * failed).  usage: the usage the gateway read, when the chunks had none.
 */

ngx_int_t
ngx_ai_cache_chunks_answer(ngx_ai_cache_chunks_t *ch, ngx_ai_usage_t *usage,
    ngx_str_t *out)
{
    ngx_uint_t     i;
    ngx_ai_buf_t   b;
    ngx_ai_usage_t u;

    if (!ch->done || ch->failed || ch->finish.len == 0 || ch->line.len) {
        return NGX_DECLINED;
    }

    u = ch->usage.known ? ch->usage : *usage;
    u.priced = 0;

    if (ngx_ai_buf_init(&b, ch->pool, ch->content.len + 512) != NGX_OK
        || ngx_ai_buf_append_str(&b, "{\"id\":") != NGX_OK
        || ngx_ai_buf_append_json_string(&b, ch->id.data, ch->id.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"object\":\"chat.completion\","
                                     "\"created\":")
           != NGX_OK
        || ngx_ai_buf_append_uint(&b, (uint64_t) ch->created) != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"model\":") != NGX_OK
        || ngx_ai_buf_append_json_string(&b, ch->model.data, ch->model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"choices\":[{\"index\":0,"
                                     "\"message\":{\"role\":\"assistant\","
                                     "\"content\":")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ch->content_seen || ch->ntools == 0) {
        if (ngx_ai_buf_append_json_string(&b, ch->content.data,
                                          ch->content.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(&b, "null") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ch->ntools) {
        if (ngx_ai_buf_append_str(&b, ",\"tool_calls\":[") != NGX_OK) {
            return NGX_ERROR;
        }

        for (i = 0; i < ch->ntools; i++) {
            if ((i && ngx_ai_buf_append(&b, ",", 1) != NGX_OK)
                || ngx_ai_buf_append_str(&b, "{\"id\":") != NGX_OK
                || ngx_ai_buf_append_json_string(&b, ch->tools[i].id.data,
                                                 ch->tools[i].id.len)
                   != NGX_OK
                || ngx_ai_buf_append_str(&b, ",\"type\":\"function\","
                                             "\"function\":{\"name\":")
                   != NGX_OK
                || ngx_ai_buf_append_json_string(&b, ch->tools[i].name.data,
                                                 ch->tools[i].name.len)
                   != NGX_OK
                || ngx_ai_buf_append_str(&b, ",\"arguments\":") != NGX_OK
                || ngx_ai_buf_append_json_string(&b, ch->tools[i].args.data,
                                                 ch->tools[i].args.len)
                   != NGX_OK
                || ngx_ai_buf_append_str(&b, "}}") != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (ngx_ai_buf_append(&b, "]", 1) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_ai_buf_append_str(&b, "},\"logprobs\":null,\"finish_reason\":")
        != NGX_OK
        || ngx_ai_buf_append_json_string(&b, ch->finish.data, ch->finish.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, "}],\"usage\":") != NGX_OK
        || ngx_ai_buf_append_usage(&b, &u) != NGX_OK
        || ngx_ai_buf_append(&b, "}", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->data = b.data;
    out->len = b.len;

    return NGX_OK;
}


/*
 * A stored chat.completion as OpenAI chunks in st->out: the role, the
 * content in pieces of NGX_AI_CACHE_PIECE bytes (never inside a UTF-8
 * character), the tool calls, the finish and, if the client asked for
 * it, the usage at cost 0.  The caller sends "data: [DONE]" after them.
 * NGX_DECLINED: not a stored chat answer with one choice.
 */

ngx_int_t
ngx_ai_cache_replay(ngx_ai_stream_t *st, ngx_str_t *body)
{
    u_char  *p, *last, *q;
    cJSON   *root, *choices, *choice, *message, *content, *item, *finish;

    root = ngx_ai_json_parse(st->pool, body->data, body->len);

    if (!cJSON_IsObject(root)) {
        return NGX_DECLINED;
    }

    choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    choice = cJSON_IsArray(choices) ? choices->child : NULL;

    if (!cJSON_IsObject(choice) || choice->next) {
        return NGX_DECLINED;
    }

    message = cJSON_GetObjectItemCaseSensitive(choice, "message");
    finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");

    if (!cJSON_IsObject(message) || ngx_ai_cache_finish_ok(finish) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "model");

    if (cJSON_IsString(item)) {
        st->model.data = (u_char *) item->valuestring;
        st->model.len = ngx_strlen(item->valuestring);
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "usage");

    if (cJSON_IsObject(item)) {
        (void) ngx_ai_usage_from_openai(item, &st->usage);
    }

    /* a hit costs nothing: the usage chunk says 0 */

    st->price.known = 1;
    st->price.input = 0;
    st->price.output = 0;

    item = cJSON_GetObjectItemCaseSensitive(root, "id");

    if (cJSON_IsString(item)) {
        if (ngx_ai_stream_start(st, (u_char *) item->valuestring,
                                ngx_strlen(item->valuestring))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_stream_start(st, NULL, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    content = cJSON_GetObjectItemCaseSensitive(message, "content");

    if (cJSON_IsString(content)) {
        p = (u_char *) content->valuestring;
        last = p + ngx_strlen(content->valuestring);

        while (p < last) {
            q = p;

            while (q < last && q - p < NGX_AI_CACHE_PIECE) {
                q += ngx_max(ngx_ai_utf8_char(q, last), 1);
            }

            if (q > last) {
                q = last;
            }

            if (ngx_ai_stream_content(st, p, q - p) != NGX_OK) {
                return NGX_ERROR;
            }

            p = q;
        }
    }

    if (ngx_ai_cache_replay_tools(st, cJSON_GetObjectItemCaseSensitive(
                                          message, "tool_calls"))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_ai_stream_finish(st, finish->valuestring);
}


static ngx_int_t
ngx_ai_cache_replay_tools(ngx_ai_stream_t *st, cJSON *calls)
{
    cJSON       *call, *id, *fn, *name, *args;
    ngx_str_t    sid, sname, sargs;
    ngx_uint_t   i;

    if (!cJSON_IsArray(calls)) {
        return NGX_OK;
    }

    for (call = calls->child, i = 0; call; call = call->next, i++) {
        id = cJSON_GetObjectItemCaseSensitive(call, "id");
        fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        name = cJSON_IsObject(fn)
               ? cJSON_GetObjectItemCaseSensitive(fn, "name") : NULL;
        args = cJSON_IsObject(fn)
               ? cJSON_GetObjectItemCaseSensitive(fn, "arguments") : NULL;

        if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
            return NGX_DECLINED;
        }

        sid.data = (u_char *) id->valuestring;
        sid.len = ngx_strlen(id->valuestring);
        sname.data = (u_char *) name->valuestring;
        sname.len = ngx_strlen(name->valuestring);

        if (cJSON_IsString(args)) {
            sargs.data = (u_char *) args->valuestring;
            sargs.len = ngx_strlen(args->valuestring);

        } else {
            ngx_str_set(&sargs, "");
        }

        if (ngx_ai_stream_tool_call(st, i, &sid, &sname, &sargs) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
