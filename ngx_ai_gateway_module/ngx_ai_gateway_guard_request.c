
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ai_guard on requests: one walk over the request tree (after a Messages
 * request is converted, and after validation) collects every string the
 * provider receives; deny rules refuse the request, redact rules rewrite
 * those strings in the tree, which every provider call then prints.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"
#include "ngx_ai_gateway_guard.h"


/* the most text of one data: URL the request rules decode and check */
#define NGX_HTTP_AI_GUARD_MAX_DECODED  (1024 * 1024)

/* what a string of the request tree is to the rules */
#define NGX_HTTP_AI_GUARD_VALUE      0       /* item->valuestring */
#define NGX_HTTP_AI_GUARD_KEY        1       /* item->string, a member name */
#define NGX_HTTP_AI_GUARD_DATA       2       /* a data: URL, decoded */
#define NGX_HTTP_AI_GUARD_ARGS       3       /* tool call arguments */


/* tool call arguments: the string as sent and the JSON it holds */
typedef struct {
    cJSON                          *item;
    cJSON                          *tree;       /* NULL: not JSON */
    unsigned                        changed:1;  /* tree redacted */
} ngx_http_ai_guard_args_t;


/* a string of the request tree the provider receives */
typedef struct {
    cJSON                          *item;
    ngx_str_t                       text;       /* what the rules see */
    ngx_uint_t                      kind;
    ngx_http_ai_guard_args_t       *args;       /* the arguments it is in */
} ngx_http_ai_guard_text_t;


/* the walk over a request tree */
typedef struct {
    ngx_http_request_t             *r;
    ngx_array_t                     texts;      /* ngx_http_ai_guard_text_t */
    const char                     *unchecked;  /* why a part cannot be */
} ngx_http_ai_guard_walk_t;


static ngx_int_t ngx_http_ai_guard_walk(ngx_http_ai_guard_walk_t *w,
    cJSON *node, const char *name, ngx_uint_t level, ngx_uint_t data,
    ngx_http_ai_guard_args_t *args);
static ngx_uint_t ngx_http_ai_guard_skip(const char *parent,
    const char *name, ngx_uint_t level);
static ngx_int_t ngx_http_ai_guard_push(ngx_http_ai_guard_walk_t *w,
    cJSON *item, ngx_uint_t kind, u_char *text, size_t len,
    ngx_http_ai_guard_args_t *args);
static ngx_int_t ngx_http_ai_guard_arguments(ngx_http_ai_guard_walk_t *w,
    cJSON *item);
static ngx_int_t ngx_http_ai_guard_data_url(ngx_http_ai_guard_walk_t *w,
    cJSON *item, ngx_http_ai_guard_args_t *args);
static ngx_uint_t ngx_http_ai_guard_textual(u_char *type, size_t len);
static ngx_int_t ngx_http_ai_guard_redact_text(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_http_ai_guards_t *g,
    ngx_http_ai_guard_text_t *t, ngx_uint_t *changed);
static ngx_int_t ngx_http_ai_guard_set_key(cJSON *item, u_char *name);
static u_char *ngx_http_ai_guard_data_encode(ngx_pool_t *pool, u_char *p,
    size_t len);


/*
 * The request, before any provider call: every string of the tree the
 * provider receives (ngx_http_ai_guard_walk() says which).  NGX_DECLINED
 * when a deny rule matches, or a part cannot be checked (err is the 400),
 * else the redact rules have replaced their matches in the tree.
 */

ngx_int_t
ngx_http_ai_guard_request(ngx_http_request_t *r, ngx_ai_chat_request_t *chat,
    ngx_ai_error_t *err)
{
    u_char                        *p;
    size_t                         start, end;
    ngx_int_t                      rc;
    ngx_uint_t                     i, j, changed;
    ngx_http_ai_guards_t          *g;
    ngx_http_ai_guard_ctx_t       *gctx;
    ngx_http_ai_guard_rule_t      *rule;
    ngx_http_ai_guard_text_t      *text;
    ngx_http_ai_guard_walk_t       w;
    ngx_http_ai_guard_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_guard_module);
    g = glcf->guards;

    if (g == NULL || !(g->scopes & NGX_HTTP_AI_GUARD_REQUEST)) {
        return NGX_OK;
    }

    gctx = ngx_http_ai_guard_get_ctx(r);
    if (gctx == NULL) {
        return NGX_ERROR;
    }

    w.r = r;
    w.unchecked = NULL;

    if (ngx_array_init(&w.texts, r->pool, 16,
                       sizeof(ngx_http_ai_guard_text_t))
        != NGX_OK
        || ngx_http_ai_guard_walk(&w, chat->json, NULL, 0, 0, NULL) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (w.unchecked) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai guard: request refused: %s", w.unchecked);

        ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                         NULL, "guard_denied", w.unchecked);
        return NGX_DECLINED;
    }

    text = w.texts.elts;
    rule = g->rules.elts;

    /* deny rules first, in the order they are configured */

    for (i = 0; i < g->rules.nelts; i++) {

        if (rule[i].action != NGX_HTTP_AI_GUARD_DENY) {
            continue;
        }

        for (j = 0; j < w.texts.nelts; j++) {
            rc = ngx_http_ai_guard_find(r, &rule[i], text[j].text.data,
                                        text[j].text.len, 0, &start, &end);
            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_DECLINED) {
                continue;
            }

            gctx->deny = &rule[i];

            if (ngx_http_ai_guard_hit(gctx, &rule[i], 1) != NGX_OK) {
                return NGX_ERROR;
            }

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai guard: request denied by rule \"%V\"",
                          &rule[i].name);

            p = ngx_pnalloc(r->pool, rule[i].name.len + 64);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST,
                             "invalid_request_error", NULL, "guard_denied",
                             "");
            err->message.data = p;
            err->message.len = ngx_sprintf(p, "The request was refused by "
                                           "the gateway's guard \"%V\".",
                                           &rule[i].name)
                               - p;
            return NGX_DECLINED;
        }
    }

    if (!(g->redact & NGX_HTTP_AI_GUARD_REQUEST)) {
        return NGX_OK;
    }

    changed = 0;

    for (j = 0; j < w.texts.nelts; j++) {
        if (ngx_http_ai_guard_redact_text(r, gctx, g, &text[j], &changed)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* a changed tree goes to providers printed, not as the client's
     * bytes */

    if (changed) {
        chat->raw.len = 0;
    }

    return NGX_OK;
}


/*
 * Collects the strings of a request tree that the provider receives:
 * every string value but those ngx_http_ai_guard_skip() names, the
 * member names of schema properties, and in data (metadata, tool call
 * arguments) every member name; the text of a data: URL decoded; tool
 * call arguments as sent and, when they are JSON, the strings in them.
 * Members are walked, not looked up, so that a key sent twice is checked
 * twice: a provider's parser may keep the one a lookup would not find.
 * The decoder bounds the depth (NGX_AI_MAX_JSON_DEPTH, arguments again).
 */

static ngx_int_t
ngx_http_ai_guard_walk(ngx_http_ai_guard_walk_t *w, cJSON *node,
    const char *name, ngx_uint_t level, ngx_uint_t data,
    ngx_http_ai_guard_args_t *args)
{
    cJSON       *item;
    ngx_int_t    rc;
    ngx_uint_t   keys, clevel;
    const char  *cname;

    keys = data
           || (cJSON_IsObject(node) && name
               && (name[0] == 'p' || name[0] == '$' || name[0] == 'd')
               && (ngx_strcmp(name, "properties") == 0
                   || ngx_strcmp(name, "patternProperties") == 0
                   || ngx_strcmp(name, "$defs") == 0
                   || ngx_strcmp(name, "definitions") == 0));

    cJSON_ArrayForEach(item, node) {

        /* an array's elements go by the array's name */

        cname = item->string ? item->string : name;
        clevel = item->string ? level + 1 : level;

        if (keys && item->string && item->string[0] != '\0'
            && ngx_http_ai_guard_push(w, item, NGX_HTTP_AI_GUARD_KEY,
                                      (u_char *) item->string,
                                      ngx_strlen(item->string), args)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
            rc = ngx_http_ai_guard_walk(w, item, cname, clevel,
                                        data
                                        || (clevel == 1
                                            && ngx_strcmp(cname, "metadata")
                                               == 0),
                                        args);

        } else if (!cJSON_IsString(item) || item->valuestring[0] == '\0'
                   || (!data && cname
                       && ngx_http_ai_guard_skip(name, cname, clevel)))
        {
            continue;

        } else if (!data && cname && ngx_strcmp(cname, "arguments") == 0) {
            rc = ngx_http_ai_guard_arguments(w, item);

        } else if (!data && cname
                   && (ngx_strcmp(cname, "url") == 0
                       || ngx_strcmp(cname, "image_url") == 0
                       || ngx_strcmp(cname, "file_data") == 0)
                   && ngx_strncasecmp((u_char *) item->valuestring,
                                      (u_char *) "data:", 5) == 0)
        {
            rc = ngx_http_ai_guard_data_url(w, item, args);

        } else {
            rc = ngx_http_ai_guard_push(w, item, NGX_HTTP_AI_GUARD_VALUE,
                                        (u_char *) item->valuestring,
                                        ngx_strlen(item->valuestring), args);
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Strings that are protocol, not text: what the gateway routes on
 * ("model", "models"), roles, types and ids, values from a fixed set, and
 * input audio (base64 of sound).  docs/guards.md lists them.
 */

static ngx_uint_t
ngx_http_ai_guard_skip(const char *parent, const char *name,
    ngx_uint_t level)
{
    ngx_uint_t           i;
    static const char   *names[] = {
        "role", "type", "id", "tool_call_id", "file_id", "detail", "format",
        "tool_choice", "reasoning_effort", "service_tier", "verbosity",
        "modalities", "voice", NULL
    };

    if (level == 1 && name[0] == 'm'
        && (ngx_strcmp(name, "model") == 0 || ngx_strcmp(name, "models") == 0))
    {
        return 1;
    }

    if (name[0] == 'd' && parent && ngx_strcmp(name, "data") == 0
        && ngx_strcmp(parent, "input_audio") == 0)
    {
        return 1;
    }

    for (i = 0; names[i]; i++) {
        if (name[0] == names[i][0] && ngx_strcmp(name, names[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_ai_guard_push(ngx_http_ai_guard_walk_t *w, cJSON *item,
    ngx_uint_t kind, u_char *text, size_t len, ngx_http_ai_guard_args_t *args)
{
    ngx_http_ai_guard_text_t  *t;

    t = ngx_array_push(&w->texts);
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->item = item;
    t->text.data = text;
    t->text.len = len;
    t->kind = kind;
    t->args = args;

    return NGX_OK;
}


/*
 * Tool call arguments: the strings of the JSON they hold (its escapes
 * decoded: "s\u006b-..." is "sk-..."), then the string as sent.  JSON the
 * decoder refuses for depth, or with a U+0000 that would cut its strings
 * short, cannot be checked.
 */

static ngx_int_t
ngx_http_ai_guard_arguments(ngx_http_ai_guard_walk_t *w, cJSON *item)
{
    u_char                    *p, *last;
    cJSON                     *tree;
    ngx_uint_t                 status;
    ngx_ai_json_flags_t        flags;
    ngx_http_ai_guard_args_t  *args;

    args = ngx_pcalloc(w->r->pool, sizeof(ngx_http_ai_guard_args_t));
    if (args == NULL) {
        return NGX_ERROR;
    }

    args->item = item;

    p = (u_char *) item->valuestring;
    last = p + ngx_strlen(item->valuestring);

    while (p < last && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    if (p < last && (*p == '{' || *p == '[')) {
        tree = ngx_ai_json_decode(w->r->pool, p, last - p,
                                  NGX_AI_MAX_JSON_DEPTH, &flags, &status);

        if (status == NGX_AI_JSON_NO_MEMORY) {
            return NGX_ERROR;
        }

        if (tree) {
            args->tree = ngx_ai_json_track(w->r->pool, tree);
            if (args->tree == NULL) {
                return NGX_ERROR;
            }
        }

        if (status == NGX_AI_JSON_TOO_DEEP || (tree && flags.nul)) {
            w->unchecked = "The request was refused by the gateway's "
                           "guards: tool call arguments nested too deeply, "
                           "or holding a NUL character, cannot be checked.";
            return NGX_OK;
        }

        if (args->tree
            && ngx_http_ai_guard_walk(w, args->tree, NULL, 0, 1, args)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* last: what was redacted in the JSON is printed into it first */

    return ngx_http_ai_guard_push(w, item, NGX_HTTP_AI_GUARD_ARGS,
                                  (u_char *) item->valuestring,
                                  last - (u_char *) item->valuestring, args);
}


/*
 * A data: URL (RFC 2397) of text: its "data:...," head and its text,
 * decoded from base64 or %XX, are what the rules see.  The data of other
 * media types is not text; a URL without a comma is not one, and base64
 * that does not decode is only checked as sent.
 */

static ngx_int_t
ngx_http_ai_guard_data_url(ngx_http_ai_guard_walk_t *w, cJSON *item,
    ngx_http_ai_guard_args_t *args)
{
    u_char     *p, *last, *comma, *semi, *d, *s;
    size_t      len, head, size;
    ngx_int_t   c;
    ngx_str_t   src, dst;
    ngx_uint_t  base64;

    p = (u_char *) item->valuestring;
    len = ngx_strlen(item->valuestring);
    last = p + len;

    comma = ngx_strlchr(p + 5, last, ',');

    if (comma == NULL) {
        return ngx_http_ai_guard_push(w, item, NGX_HTTP_AI_GUARD_VALUE, p,
                                      len, args);
    }

    semi = ngx_strlchr(p + 5, comma, ';');

    if (!ngx_http_ai_guard_textual(p + 5, (semi ? semi : comma) - (p + 5))) {
        return NGX_OK;
    }

    head = comma + 1 - p;
    base64 = head >= sizeof("data:;base64,") - 1
             && ngx_strncasecmp(comma - 7, (u_char *) ";base64", 7) == 0;

    src.data = comma + 1;
    src.len = last - src.data;

    size = base64 ? ngx_base64_decoded_length(src.len) : src.len;

    if (size > (base64 ? 1 : 3) * NGX_HTTP_AI_GUARD_MAX_DECODED) {
        goto unchecked;
    }

    d = ngx_pnalloc(w->r->pool, head + size);
    if (d == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(d, p, head);
    dst.data = d + head;

    if (base64) {

        /* without the line breaks and spaces lenient decoders skip */

        for (s = src.data; s < last; s++) {
            if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
                break;
            }
        }

        if (s < last) {
            s = ngx_pnalloc(w->r->pool, src.len);
            if (s == NULL) {
                return NGX_ERROR;
            }

            src.len = 0;

            for (p = comma + 1; p < last; p++) {
                if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
                    s[src.len++] = *p;
                }
            }

            src.data = s;
        }

        if (ngx_decode_base64(&dst, &src) != NGX_OK
            && ngx_decode_base64url(&dst, &src) != NGX_OK)
        {
            return ngx_http_ai_guard_push(w, item, NGX_HTTP_AI_GUARD_VALUE,
                                          (u_char *) item->valuestring, len,
                                          args);
        }

    } else {

        /* %XX decoded, a "%" that starts none kept, as browsers do */

        for (s = src.data, p = dst.data; s < last; s++) {
            if (*s == '%' && last - s >= 3
                && (c = ngx_hextoi(s + 1, 2)) != NGX_ERROR)
            {
                *p++ = (u_char) c;
                s += 2;
                continue;
            }

            *p++ = *s;
        }

        dst.len = p - dst.data;

        if (dst.len > NGX_HTTP_AI_GUARD_MAX_DECODED) {
            goto unchecked;
        }
    }

    return ngx_http_ai_guard_push(w, item, NGX_HTTP_AI_GUARD_DATA, d,
                                  head + dst.len, args);

unchecked:

    w->unchecked = "The request was refused by the gateway's guards: a "
                   "data: URL holds more text than they check (1 MiB).";
    return NGX_OK;
}


/* text media types: text and message ones, JSON, XML, YAML, scripts, CSV */

static ngx_uint_t
ngx_http_ai_guard_textual(u_char *type, size_t len)
{
    ngx_uint_t        i;
    static ngx_str_t  types[] = {
        ngx_string("json"), ngx_string("xml"), ngx_string("javascript"),
        ngx_string("x-javascript"), ngx_string("ecmascript"),
        ngx_string("yaml"), ngx_string("x-yaml"), ngx_string("x-ndjson"),
        ngx_string("ndjson"), ngx_string("toml"), ngx_string("sql"),
        ngx_string("x-sh"), ngx_string("csv"), ngx_string("graphql"),
        ngx_string("x-www-form-urlencoded"), ngx_null_string
    };
    static ngx_str_t  suffixes[] = {
        ngx_string("+json"), ngx_string("+xml"), ngx_string("+yaml"),
        ngx_null_string
    };

    if (len == 0) {
        return 1;                               /* text/plain */
    }

    if ((len > 5 && ngx_strncasecmp(type, (u_char *) "text/", 5) == 0)
        || (len > 8 && ngx_strncasecmp(type, (u_char *) "message/", 8) == 0))
    {
        return 1;
    }

    for (i = 0; suffixes[i].len; i++) {
        if (len > suffixes[i].len
            && ngx_strncasecmp(type + len - suffixes[i].len,
                               suffixes[i].data, suffixes[i].len) == 0)
        {
            return 1;
        }
    }

    if (len <= 12 || ngx_strncasecmp(type, (u_char *) "application/", 12))
    {
        return 0;
    }

    for (i = 0; types[i].len; i++) {
        if (len - 12 == types[i].len
            && ngx_strncasecmp(type + 12, types[i].data, types[i].len) == 0)
        {
            return 1;
        }
    }

    return 0;
}




/*
 * A string of the request with the request-scope matches replaced:
 * arguments whose JSON was redacted are that JSON printed first; a data:
 * URL gets its text encoded again as it was (base64 or %XX).
 */

static ngx_int_t
ngx_http_ai_guard_redact_text(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_http_ai_guards_t *g,
    ngx_http_ai_guard_text_t *t, ngx_uint_t *changed)
{
    u_char        *text, *url;
    size_t         len;
    ngx_str_t      json;
    ngx_ai_buf_t   b;

    switch (t->kind) {

    case NGX_HTTP_AI_GUARD_KEY:
        text = (u_char *) t->item->string;
        len = ngx_strlen(text);
        break;

    case NGX_HTTP_AI_GUARD_DATA:
        text = t->text.data;
        len = t->text.len;
        break;

    default: /* NGX_HTTP_AI_GUARD_VALUE, NGX_HTTP_AI_GUARD_ARGS */

        if (t->kind == NGX_HTTP_AI_GUARD_ARGS && t->args->changed) {
            if (ngx_ai_json_print(r->pool, t->args->tree, &json) != NGX_OK
                || cJSON_SetValuestring(t->item, (char *) json.data) == NULL)
            {
                return NGX_ERROR;
            }

            *changed = 1;
        }

        text = (u_char *) t->item->valuestring;
        len = ngx_strlen(text);
    }

    if (ngx_http_ai_guard_scan(r, gctx, g, NGX_HTTP_AI_GUARD_REQUEST, text,
                               len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (gctx->matches.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_ai_buf_init(&b, r->pool, len + 64) != NGX_OK
        || ngx_http_ai_guard_render(gctx, text, len, &b) != NGX_OK
        || ngx_ai_buf_append(&b, "", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    switch (t->kind) {

    case NGX_HTTP_AI_GUARD_KEY:
        if (ngx_http_ai_guard_set_key(t->item, b.data) != NGX_OK) {
            return NGX_ERROR;
        }

        break;

    case NGX_HTTP_AI_GUARD_DATA:
        url = ngx_http_ai_guard_data_encode(r->pool, b.data, b.len - 1);

        if (url == NULL
            || cJSON_SetValuestring(t->item, (char *) url) == NULL)
        {
            return NGX_ERROR;
        }

        break;

    default:
        if (cJSON_SetValuestring(t->item, (char *) b.data) == NULL) {
            return NGX_ERROR;
        }
    }

    if (t->args && t->kind != NGX_HTTP_AI_GUARD_ARGS) {
        t->args->changed = 1;
    }

    *changed = 1;

    return NGX_OK;
}


/* a member's name replaced, in memory cJSON frees as it frees names */

static ngx_int_t
ngx_http_ai_guard_set_key(cJSON *item, u_char *name)
{
    char    *s;
    size_t   len;

    len = ngx_strlen(name) + 1;

    s = cJSON_malloc(len);
    if (s == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s, name, len);

    if (!(item->type & cJSON_StringIsConst)) {
        cJSON_free(item->string);
    }

    item->string = s;
    item->type &= ~cJSON_StringIsConst;

    return NGX_OK;
}


/*
 * "data:...," and text (p, len) as a data: URL: the text in base64 when
 * the head ends with ";base64,", else %XX-escaped but for unreserved
 * characters.  A match that took the comma leaves no head: all of it is
 * then the text of a "data:," URL.
 */

static u_char *
ngx_http_ai_guard_data_encode(ngx_pool_t *pool, u_char *p, size_t len)
{
    u_char           *comma, *url, *d;
    size_t            head;
    ngx_str_t         src, dst;
    ngx_uint_t        base64;
    static u_char     hex[] = "0123456789ABCDEF";

    comma = ngx_strlchr(p, p + len, ',');
    head = comma ? (size_t) (comma + 1 - p) : 0;

    base64 = head >= sizeof("data:;base64,") - 1
             && ngx_strncasecmp(comma - 7, (u_char *) ";base64", 7) == 0;

    src.data = p + head;
    src.len = len - head;

    url = ngx_pnalloc(pool, sizeof("data:,") + head
                            + (base64 ? ngx_base64_encoded_length(src.len)
                                      : 3 * src.len));
    if (url == NULL) {
        return NULL;
    }

    d = head ? ngx_cpymem(url, p, head)
             : ngx_cpymem(url, "data:,", sizeof("data:,") - 1);

    if (base64) {
        dst.data = d;
        ngx_encode_base64(&dst, &src);
        d += dst.len;

    } else {
        for (p = src.data; p < src.data + src.len; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                || (*p >= '0' && *p <= '9')
                || *p == '-' || *p == '.' || *p == '_' || *p == '~')
            {
                *d++ = *p;
                continue;
            }

            *d++ = '%';
            *d++ = hex[*p >> 4];
            *d++ = hex[*p & 0xf];
        }
    }

    *d = '\0';

    return url;
}
