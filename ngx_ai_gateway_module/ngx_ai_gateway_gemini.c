
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * type=gemini: the Gemini API generateContent and streamGenerateContent
 * (?alt=sse).  OpenAI chat requests become "contents" of user/model turns
 * with a systemInstruction, generationConfig, functionDeclarations;
 * answers, errors and streams come back as OpenAI chat.completion objects
 * and chunks.  docs/providers.md has the tables.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


/*
 * Gemini 3 refuses a replayed functionCall without the thoughtSignature it
 * came with; OpenAI messages have nowhere to keep one, so replayed calls
 * carry the sentinel Google documents for history from elsewhere.
 */
#define NGX_AI_GEMINI_SIGNATURE  "skip_thought_signature_validator"


/* the conversation being built: appends merge consecutive same roles */
typedef struct {
    cJSON                      *contents;
    cJSON                      *parts;     /* parts of the last turn */
    const char                 *role;      /* role of the last turn */
    unsigned                    signed_call:1;
} ngx_ai_gemini_conv_t;


/* per-stream state, in st->data */
typedef struct {
    ngx_uint_t                  tools;     /* tool calls sent */
} ngx_ai_gemini_stream_t;


static ngx_int_t ngx_ai_gemini_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out);
static ngx_int_t ngx_ai_gemini_contents(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, cJSON *root);
static ngx_int_t ngx_ai_gemini_add(ngx_ai_gemini_conv_t *cv,
    const char *role, cJSON *part);
static ngx_int_t ngx_ai_gemini_content(ngx_pool_t *pool,
    ngx_ai_gemini_conv_t *cv, const char *role, cJSON *content);
static ngx_int_t ngx_ai_gemini_image_part(ngx_pool_t *pool, cJSON *part,
    cJSON **out);
static ngx_int_t ngx_ai_gemini_audio_part(ngx_pool_t *pool, cJSON *part,
    cJSON **out);
static ngx_int_t ngx_ai_gemini_file_part(ngx_pool_t *pool, cJSON *part,
    cJSON **out);
static cJSON *ngx_ai_gemini_inline(ngx_pool_t *pool, ngx_str_t *type,
    const char *data);
static const char *ngx_ai_gemini_mime(const char *url);
static ngx_int_t ngx_ai_gemini_function_call(ngx_ai_gemini_conv_t *cv,
    cJSON *name, cJSON *args);
static ngx_int_t ngx_ai_gemini_tool_calls(ngx_ai_gemini_conv_t *cv,
    cJSON *calls);
static ngx_int_t ngx_ai_gemini_tool_result(ngx_pool_t *pool,
    ngx_ai_gemini_conv_t *cv, cJSON *messages, cJSON *msg);
static const char *ngx_ai_gemini_tool_name(cJSON *messages, cJSON *msg,
    cJSON *id);
static ngx_int_t ngx_ai_gemini_config(ngx_ai_chat_request_t *req,
    cJSON *root);
static ngx_int_t ngx_ai_gemini_tools(cJSON *src, cJSON *root);
static ngx_int_t ngx_ai_gemini_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);
static void ngx_ai_gemini_usage(cJSON *meta, ngx_ai_usage_t *u);
static const char *ngx_ai_gemini_finish(cJSON *reason);
static ngx_int_t ngx_ai_gemini_call(cJSON *part, ngx_uint_t index,
    u_char *idbuf, ngx_str_t *id, ngx_str_t *name, char **args);
static void ngx_ai_gemini_error(ngx_pool_t *pool, ngx_uint_t status,
    u_char *body, size_t len, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_gemini_stream_event(ngx_ai_stream_t *st,
    ngx_ai_sse_event_t *ev);
static ngx_uint_t ngx_ai_gemini_model_valid(const u_char *name, size_t len);
static ngx_int_t ngx_ai_gemini_path(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, const char *method, ngx_str_t *path);
static ngx_int_t ngx_ai_gemini_embed_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_gemini_embed_one(cJSON *requests, const char *model,
    cJSON *text, cJSON *dims);
static ngx_int_t ngx_ai_gemini_embed_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_gemini_count_request(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *out,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_gemini_count_response(ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, u_char *body, size_t len,
    ngx_ai_response_t *out, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_gemini_stream_parts(ngx_ai_stream_t *st,
    ngx_ai_gemini_stream_t *gs, cJSON *parts);


ngx_ai_translator_t  ngx_ai_gemini_translator = {
    ngx_string("gemini"),
    NGX_AI_PROVIDER_GEMINI,
    ngx_ai_gemini_request,
    ngx_ai_gemini_response,
    ngx_ai_gemini_error,
    ngx_ai_gemini_stream_event,
    ngx_ai_gemini_model_valid,
    ngx_ai_gemini_embed_request,
    ngx_ai_gemini_embed_response,
    ngx_ai_gemini_count_request,
    ngx_ai_gemini_count_response,
    ngx_ai_check_one_answer,
    0
};


/*
 * The model is a segment of the path (.../models/MODEL:generateContent):
 * only what Gemini's model ids are made of, so that no ":", "/", ";" or
 * "@" can change the method or alias another model.
 */

static ngx_uint_t
ngx_ai_gemini_model_valid(const u_char *name, size_t len)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= '0' && name[i] <= '9')
              || name[i] == '-' || name[i] == '.' || name[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


#define ngx_ai_get(obj, name)  cJSON_GetObjectItemCaseSensitive(obj, name)

#define ngx_ai_is(item, s)                                                    \
    (cJSON_IsString(item) && ngx_strcmp((item)->valuestring, s) == 0)

/* "call_" and up to 20 digits */
#define NGX_AI_GEMINI_CALL_ID_LEN  32


/* request */

static ngx_int_t
ngx_ai_gemini_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out)
{
    cJSON         *root;
    ngx_int_t      rc;
    ngx_ai_buf_t   path;

    if (ngx_ai_buf_init(&path, pool, req->upstream_model.len + 64) != NGX_OK
        || ngx_ai_buf_append_str(&path, "/v1beta/models/") != NGX_OK
        || ngx_ai_buf_append(&path, req->upstream_model.data,
                             req->upstream_model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&path, req->stream
                                 ? ":streamGenerateContent?alt=sse"
                                 : ":generateContent")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->path.data = path.data;
    out->path.len = path.len;

    /*
     * The new tree references the client's strings instead of copying
     * them; it is printed and deleted here, and the client's tree is not
     * changed.
     */

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_ai_gemini_contents(pool, req, root) == NGX_OK
        && ngx_ai_gemini_config(req, root) == NGX_OK
        && ngx_ai_gemini_tools(req->json, root) == NGX_OK)
    {
        rc = ngx_ai_json_print(pool, root, &out->body);
    }

    cJSON_Delete(root);

    return rc;
}


/* "systemInstruction" and "contents" */

static ngx_int_t
ngx_ai_gemini_contents(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    cJSON *root)
{
    char                  *s;
    cJSON                 *messages, *msg, *role, *content, *si, *parts;
    cJSON                 *call;
    const char            *r;
    ngx_ai_buf_t           sys;
    ngx_ai_gemini_conv_t   cv;

    if (ngx_ai_buf_init(&sys, pool, 256) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&cv, sizeof(ngx_ai_gemini_conv_t));

    cv.contents = cJSON_CreateArray();
    if (ngx_ai_json_add(root, "contents", cv.contents) != NGX_OK) {
        return NGX_ERROR;
    }

    messages = ngx_ai_get(req->json, "messages");

    cJSON_ArrayForEach(msg, messages) {

        role = ngx_ai_get(msg, "role");
        content = ngx_ai_get(msg, "content");

        if (!cJSON_IsString(role)) {
            continue;
        }

        r = role->valuestring;

        if (ngx_strcmp(r, "system") == 0 || ngx_strcmp(r, "developer") == 0)
        {
            if (ngx_ai_content_text(content, &sys, "\n\n") != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(r, "assistant") == 0) {
            call = ngx_ai_get(msg, "function_call");

            if (ngx_ai_gemini_content(pool, &cv, "model", content) != NGX_OK
                || ngx_ai_gemini_tool_calls(&cv, ngx_ai_get(msg,
                                                            "tool_calls"))
                   != NGX_OK
                || (cJSON_IsObject(call)
                    && ngx_ai_gemini_function_call(&cv,
                                                   ngx_ai_get(call, "name"),
                                                   ngx_ai_get(call,
                                                              "arguments"))
                       != NGX_OK))
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(r, "tool") == 0 || ngx_strcmp(r, "function") == 0) {
            if (ngx_ai_gemini_tool_result(pool, &cv, messages, msg)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_ai_gemini_content(pool, &cv, "user", content) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (sys.len == 0) {
        return NGX_OK;
    }

    s = ngx_ai_buf_cstr(&sys);
    if (s == NULL) {
        return NGX_ERROR;
    }

    si = cJSON_CreateObject();
    if (ngx_ai_json_add(root, "systemInstruction", si) != NGX_OK) {
        return NGX_ERROR;
    }

    parts = cJSON_CreateArray();

    if (ngx_ai_json_add(si, "parts", parts) != NGX_OK
        || ngx_ai_json_add(parts, NULL, ngx_ai_json_text_object(s)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* appends a part to the conversation, opening a turn when roles change */

static ngx_int_t
ngx_ai_gemini_add(ngx_ai_gemini_conv_t *cv, const char *role, cJSON *part)
{
    ngx_int_t  rc;

    if (part == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_ai_json_turn(cv->contents, "parts", role, &cv->role,
                          &cv->parts);

    if (rc == NGX_ERROR) {
        cJSON_Delete(part);
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        cv->signed_call = 0;
    }

    return ngx_ai_json_add(cv->parts, NULL, part);
}


/* a message's "content" (string or parts) -> parts */

static ngx_int_t
ngx_ai_gemini_content(ngx_pool_t *pool, ngx_ai_gemini_conv_t *cv,
    const char *role, cJSON *content)
{
    cJSON       *part, *type, *text, *out;
    ngx_int_t    rc;
    const char  *t;

    if (cJSON_IsString(content)) {
        if (content->valuestring[0] == '\0') {
            return NGX_OK;
        }

        return ngx_ai_gemini_add(cv, role,
                                 ngx_ai_json_text_object(content->valuestring));
    }

    cJSON_ArrayForEach(part, content) {

        type = ngx_ai_get(part, "type");

        if (!cJSON_IsString(type)) {
            continue;
        }

        t = type->valuestring;
        out = NULL;

        if (ngx_strcmp(t, "text") == 0 || ngx_strcmp(t, "refusal") == 0) {
            text = ngx_ai_get(part, t);

            if (!cJSON_IsString(text) || text->valuestring[0] == '\0') {
                continue;
            }

            out = ngx_ai_json_text_object(text->valuestring);
            rc = NGX_OK;

        } else if (ngx_strcmp(t, "image_url") == 0) {
            rc = ngx_ai_gemini_image_part(pool, part, &out);

        } else if (ngx_strcmp(t, "input_audio") == 0) {
            rc = ngx_ai_gemini_audio_part(pool, part, &out);

        } else if (ngx_strcmp(t, "file") == 0) {
            rc = ngx_ai_gemini_file_part(pool, part, &out);

        } else {
            continue;
        }

        if (rc == NGX_DECLINED) {
            continue;                           /* not representable */
        }

        if (rc != NGX_OK || ngx_ai_gemini_add(cv, role, out) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * image_url -> inlineData for base64 data URLs, fileData for http(s) URLs
 * (media type from the extension); NGX_DECLINED for anything else.
 */

static ngx_int_t
ngx_ai_gemini_image_part(ngx_pool_t *pool, cJSON *part, cJSON **out)
{
    char       *url;
    cJSON      *image, *p, *fd;
    ngx_str_t   type, data;

    image = ngx_ai_get(part, "image_url");

    if (cJSON_IsObject(image)) {
        image = ngx_ai_get(image, "url");
    }

    if (!cJSON_IsString(image)) {
        return NGX_DECLINED;
    }

    url = image->valuestring;

    if (ngx_ai_data_url_parse((u_char *) url, ngx_strlen(url), &type, &data)
        == NGX_OK)
    {
        *out = ngx_ai_gemini_inline(pool, &type, (char *) data.data);
        return *out ? NGX_OK : NGX_ERROR;
    }

    if (!ngx_ai_strncaseeq((u_char *) url, "https://", 8)
        && !ngx_ai_strncaseeq((u_char *) url, "http://", 7))
    {
        return NGX_DECLINED;
    }

    p = cJSON_CreateObject();
    fd = cJSON_CreateObject();

    if (ngx_ai_json_add(p, "fileData", fd) != NGX_OK
        || ngx_ai_json_add_ref(fd, "mimeType", ngx_ai_gemini_mime(url))
           != NGX_OK
        || ngx_ai_json_add_ref(fd, "fileUri", url) != NGX_OK)
    {
        cJSON_Delete(p);
        return NGX_ERROR;
    }

    *out = p;

    return NGX_OK;
}


/* input_audio {data, format} -> inlineData audio/<format> */

static ngx_int_t
ngx_ai_gemini_audio_part(ngx_pool_t *pool, cJSON *part, cJSON **out)
{
    cJSON         *audio, *data, *format;
    ngx_str_t      type;
    ngx_ai_buf_t   b;

    audio = ngx_ai_get(part, "input_audio");
    data = ngx_ai_get(audio, "data");
    format = ngx_ai_get(audio, "format");

    if (!cJSON_IsString(data) || !cJSON_IsString(format)) {
        return NGX_DECLINED;
    }

    if (ngx_ai_buf_init(&b, pool, 32) != NGX_OK
        || ngx_ai_buf_append_str(&b, "audio/") != NGX_OK
        || ngx_ai_buf_append_str(&b, format->valuestring) != NGX_OK)
    {
        return NGX_ERROR;
    }

    type.data = b.data;
    type.len = b.len;

    *out = ngx_ai_gemini_inline(pool, &type, data->valuestring);

    return *out ? NGX_OK : NGX_ERROR;
}


/* file {file_data: data URL} -> inlineData; file ids cannot be sent */

static ngx_int_t
ngx_ai_gemini_file_part(ngx_pool_t *pool, cJSON *part, cJSON **out)
{
    cJSON      *data_url;
    ngx_str_t   type, data;

    data_url = ngx_ai_get(ngx_ai_get(part, "file"), "file_data");

    if (!cJSON_IsString(data_url)
        || ngx_ai_data_url_parse((u_char *) data_url->valuestring,
                                 ngx_strlen(data_url->valuestring),
                                 &type, &data)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    *out = ngx_ai_gemini_inline(pool, &type, (char *) data.data);

    return *out ? NGX_OK : NGX_ERROR;
}


/* {"inlineData":{"mimeType":...,"data":...}}; data outlives the tree */

static cJSON *
ngx_ai_gemini_inline(ngx_pool_t *pool, ngx_str_t *type, const char *data)
{
    u_char  *mt;
    cJSON   *part, *inl;

    mt = ngx_pnalloc(pool, type->len + 1);
    if (mt == NULL) {
        return NULL;
    }

    *ngx_cpymem(mt, type->data, type->len) = '\0';

    part = cJSON_CreateObject();
    inl = cJSON_CreateObject();

    if (ngx_ai_json_add(part, "inlineData", inl) != NGX_OK
        || ngx_ai_json_add_ref(inl, "mimeType", (char *) mt) != NGX_OK
        || ngx_ai_json_add_ref(inl, "data", data) != NGX_OK)
    {
        cJSON_Delete(part);
        return NULL;
    }

    return part;
}


/* a media type from a URL's extension; image/jpeg when it tells nothing */

static const char *
ngx_ai_gemini_mime(const char *url)
{
    size_t       i, len;
    const char  *end, *dot;

    static const char  *types[] = {
        ".png", "image/png",
        ".jpg", "image/jpeg",
        ".jpeg", "image/jpeg",
        ".gif", "image/gif",
        ".webp", "image/webp",
        ".heic", "image/heic",
        ".heif", "image/heif",
        ".pdf", "application/pdf",
        NULL
    };

    for (end = url; *end && *end != '?' && *end != '#'; end++) {
        /* void */
    }

    dot = NULL;

    for (i = 0; url + i < end; i++) {
        if (url[i] == '.') {
            dot = url + i;

        } else if (url[i] == '/') {
            dot = NULL;
        }
    }

    if (dot) {
        len = end - dot;

        for (i = 0; types[i]; i += 2) {
            if (len == ngx_strlen(types[i])
                && ngx_ai_strncaseeq((u_char *) dot, types[i], len))
            {
                return types[i + 1];
            }
        }
    }

    return "image/jpeg";
}


/* assistant "tool_calls" -> functionCall parts of a model turn */

static ngx_int_t
ngx_ai_gemini_tool_calls(ngx_ai_gemini_conv_t *cv, cJSON *calls)
{
    cJSON  *call, *fn;

    cJSON_ArrayForEach(call, calls) {

        fn = ngx_ai_get(call, "function");

        if (ngx_ai_gemini_function_call(cv, ngx_ai_get(fn, "name"),
                                        ngx_ai_get(fn, "arguments"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* one call (a tool call, or the legacy "function_call") -> functionCall */

static ngx_int_t
ngx_ai_gemini_function_call(ngx_ai_gemini_conv_t *cv, cJSON *name,
    cJSON *args)
{
    cJSON  *part, *fc;

    if (!cJSON_IsString(name)) {
        return NGX_OK;
    }

    part = cJSON_CreateObject();
    fc = cJSON_CreateObject();

    if (ngx_ai_json_add(part, "functionCall", fc) != NGX_OK
        || ngx_ai_json_add_ref(fc, "name", name->valuestring) != NGX_OK
        || ngx_ai_json_add(fc, "args", ngx_ai_json_parse_args(
                               cJSON_IsString(args) ? args->valuestring
                                                    : NULL))
           != NGX_OK)
    {
        cJSON_Delete(part);
        return NGX_ERROR;
    }

    if (ngx_ai_gemini_add(cv, "model", part) != NGX_OK) {
        return NGX_ERROR;
    }

    /* only the first call of a turn carries the signature */

    if (!cv->signed_call) {
        cv->signed_call = 1;

        if (ngx_ai_json_add_ref(part, "thoughtSignature",
                                NGX_AI_GEMINI_SIGNATURE)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A "tool" message -> functionResponse {name, response: {content}} in a
 * user turn; the name is the one of the earlier call with the same id,
 * content the tool's output parsed as JSON, or the text itself.
 */

static ngx_int_t
ngx_ai_gemini_tool_result(ngx_pool_t *pool, ngx_ai_gemini_conv_t *cv,
    cJSON *messages, cJSON *msg)
{
    char          *s;
    cJSON         *part, *fr, *resp, *value;
    size_t         len;
    ngx_uint_t     status;
    const char    *name;
    ngx_ai_buf_t   text;

    name = ngx_ai_gemini_tool_name(messages, msg,
                                   ngx_ai_get(msg, "tool_call_id"));

    if (ngx_ai_buf_init(&text, pool, 256) != NGX_OK
        || ngx_ai_content_text(ngx_ai_get(msg, "content"), &text, "\n")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    len = text.len;

    s = ngx_ai_buf_cstr(&text);
    if (s == NULL) {
        return NGX_ERROR;
    }

    /* each node is attached as soon as it is made: one delete frees all */

    part = cJSON_CreateObject();
    fr = cJSON_CreateObject();

    if (ngx_ai_json_add(part, "functionResponse", fr) != NGX_OK) {
        cJSON_Delete(part);
        return NGX_ERROR;
    }

    resp = cJSON_CreateObject();

    if (ngx_ai_json_add_ref(fr, "name", name) != NGX_OK
        || ngx_ai_json_add(fr, "response", resp) != NGX_OK)
    {
        cJSON_Delete(part);
        return NGX_ERROR;
    }

    value = NULL;

    if (len) {
        value = ngx_ai_json_decode(NULL, (u_char *) s, len,
                                   NGX_AI_MAX_JSON_DEPTH, NULL, &status);
    }

    if (value == NULL) {
        value = cJSON_CreateStringReference(s);
    }

    if (ngx_ai_json_add(resp, "content", value) != NGX_OK) {
        cJSON_Delete(part);
        return NGX_ERROR;
    }

    return ngx_ai_gemini_add(cv, "user", part);
}


/*
 * The function name for a tool message: the latest earlier assistant
 * tool call with its id, else the message's own "name".
 */

static const char *
ngx_ai_gemini_tool_name(cJSON *messages, cJSON *msg, cJSON *id)
{
    cJSON       *m, *call, *cid, *name;
    const char  *found;

    found = NULL;

    if (cJSON_IsString(id)) {
        for (m = messages->child; m && m != msg; m = m->next) {

            cJSON_ArrayForEach(call, ngx_ai_get(m, "tool_calls")) {
                cid = ngx_ai_get(call, "id");
                name = ngx_ai_get(ngx_ai_get(call, "function"), "name");

                if (cJSON_IsString(cid) && cJSON_IsString(name)
                    && ngx_strcmp(cid->valuestring, id->valuestring) == 0)
                {
                    found = name->valuestring;
                }
            }
        }
    }

    if (found) {
        return found;
    }

    name = ngx_ai_get(msg, "name");

    if (cJSON_IsString(name) && name->valuestring[0] != '\0') {
        return name->valuestring;
    }

    return "function";
}


/* "generationConfig" */

static ngx_int_t
ngx_ai_gemini_config(ngx_ai_chat_request_t *req, cJSON *root)
{
    cJSON  *src, *gc, *item, *array, *rf, *schema;

    src = req->json;

    gc = cJSON_CreateObject();
    if (gc == NULL) {
        return NGX_ERROR;
    }

    if (req->max_tokens > 0
        && ngx_ai_json_add(gc, "maxOutputTokens",
                           cJSON_CreateNumber((double) req->max_tokens))
           != NGX_OK)
    {
        goto failed;
    }

    item = ngx_ai_get(src, "temperature");

    if (cJSON_IsNumber(item)
        && ngx_ai_json_add(gc, "temperature",
                           cJSON_CreateNumber(item->valuedouble))
           != NGX_OK)
    {
        goto failed;
    }

    item = ngx_ai_get(src, "top_p");

    if (cJSON_IsNumber(item)
        && ngx_ai_json_add(gc, "topP", cJSON_CreateNumber(item->valuedouble))
           != NGX_OK)
    {
        goto failed;
    }

    item = ngx_ai_get(src, "stop");

    if (cJSON_IsString(item) && item->valuestring[0] != '\0') {
        array = cJSON_CreateArray();

        if (ngx_ai_json_add(gc, "stopSequences", array) != NGX_OK
            || ngx_ai_json_add_ref(array, NULL, item->valuestring) != NGX_OK)
        {
            goto failed;
        }

    } else if (cJSON_IsArray(item) && cJSON_GetArraySize(item) > 0) {
        if (!cJSON_AddItemReferenceToObject(gc, "stopSequences", item)) {
            goto failed;
        }
    }

    item = ngx_ai_get(src, "seed");

    if (cJSON_IsNumber(item)
        && ngx_ai_json_add(gc, "seed", cJSON_CreateNumber(item->valuedouble))
           != NGX_OK)
    {
        goto failed;
    }

    /* response_format: JSON mode, and JSON Schema as it is */

    rf = ngx_ai_get(src, "response_format");
    item = ngx_ai_get(rf, "type");
    schema = ngx_ai_get(ngx_ai_get(rf, "json_schema"), "schema");

    if (ngx_ai_is(item, "json_object") || ngx_ai_is(item, "json_schema")) {
        if (ngx_ai_json_add_ref(gc, "responseMimeType", "application/json")
            != NGX_OK)
        {
            goto failed;
        }

        if (ngx_ai_is(item, "json_schema") && cJSON_IsObject(schema)
            && !cJSON_AddItemReferenceToObject(gc, "responseJsonSchema",
                                               schema))
        {
            goto failed;
        }
    }

    if (gc->child == NULL) {
        cJSON_Delete(gc);
        return NGX_OK;
    }

    return ngx_ai_json_add(root, "generationConfig", gc);

failed:

    cJSON_Delete(gc);

    return NGX_ERROR;
}


/* "tools" -> functionDeclarations, "tool_choice" -> toolConfig */

static ngx_int_t
ngx_ai_gemini_tools(cJSON *src, cJSON *root)
{
    cJSON       *tool, *type, *fn, *name, *desc, *params, *decls, *d, *t;
    cJSON       *choice, *tc, *fcc, *allowed, *tools;
    ngx_uint_t   legacy;
    const char  *mode;

    decls = NULL;

    tools = ngx_ai_get(src, "tools");
    legacy = (cJSON_GetArraySize(tools) == 0);

    if (legacy) {
        tools = ngx_ai_get(src, "functions");      /* the legacy form */
    }

    cJSON_ArrayForEach(tool, tools) {

        type = legacy ? NULL : ngx_ai_get(tool, "type");
        fn = legacy ? tool : ngx_ai_get(tool, "function");
        name = ngx_ai_get(fn, "name");

        if (!cJSON_IsString(name) || (type && !ngx_ai_is(type, "function"))) {
            continue;
        }

        if (decls == NULL) {
            t = cJSON_CreateArray();
            if (ngx_ai_json_add(root, "tools", t) != NGX_OK) {
                return NGX_ERROR;
            }

            d = cJSON_CreateObject();
            if (ngx_ai_json_add(t, NULL, d) != NGX_OK) {
                return NGX_ERROR;
            }

            decls = cJSON_CreateArray();
            if (ngx_ai_json_add(d, "functionDeclarations", decls) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        d = cJSON_CreateObject();

        if (ngx_ai_json_add(decls, NULL, d) != NGX_OK
            || ngx_ai_json_add_ref(d, "name", name->valuestring) != NGX_OK)
        {
            return NGX_ERROR;
        }

        desc = ngx_ai_get(fn, "description");

        if (cJSON_IsString(desc)
            && ngx_ai_json_add_ref(d, "description", desc->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        /*
         * OpenAI parameters are JSON Schema; Gemini's "parameters" is an
         * OpenAPI subset that refuses e.g. additionalProperties, while
         * "parametersJsonSchema" takes JSON Schema as it is.
         */

        params = ngx_ai_get(fn, "parameters");

        if (cJSON_IsObject(params)
            && !cJSON_AddItemReferenceToObject(d, "parametersJsonSchema",
                                               params))
        {
            return NGX_ERROR;
        }
    }

    choice = ngx_ai_get(src, legacy ? "function_call" : "tool_choice");

    if (decls == NULL || choice == NULL || cJSON_IsNull(choice)) {
        return NGX_OK;
    }

    name = legacy ? ngx_ai_get(choice, "name")
                  : ngx_ai_get(ngx_ai_get(choice, "function"), "name");

    if (ngx_ai_is(choice, "none")) {
        mode = "NONE";

    } else if (ngx_ai_is(choice, "required")
               || (cJSON_IsObject(choice) && cJSON_IsString(name)))
    {
        mode = "ANY";

    } else {
        mode = "AUTO";
    }

    tc = cJSON_CreateObject();
    if (ngx_ai_json_add(root, "toolConfig", tc) != NGX_OK) {
        return NGX_ERROR;
    }

    fcc = cJSON_CreateObject();

    if (ngx_ai_json_add(tc, "functionCallingConfig", fcc) != NGX_OK
        || ngx_ai_json_add_ref(fcc, "mode", mode) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (cJSON_IsObject(choice) && cJSON_IsString(name)) {
        allowed = cJSON_CreateArray();

        if (ngx_ai_json_add(fcc, "allowedFunctionNames", allowed) != NGX_OK
            || ngx_ai_json_add_ref(allowed, NULL, name->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* response */

static ngx_int_t
ngx_ai_gemini_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    char          *args;
    u_char         idbuf[NGX_AI_GEMINI_CALL_ID_LEN];
    cJSON         *root, *cand, *parts, *part, *text, *feedback;
    ngx_int_t      rc;
    ngx_str_t      id, name, sargs, rid, calls;
    ngx_uint_t     n;
    const char    *finish;
    ngx_ai_buf_t   b, tc;

    ngx_memzero(out, sizeof(ngx_ai_response_t));

    root = ngx_ai_json_parse(pool, body, len);
    cand = cJSON_GetArrayItem(ngx_ai_get(root, "candidates"), 0);
    feedback = ngx_ai_get(ngx_ai_get(root, "promptFeedback"), "blockReason");

    if (!cJSON_IsObject(root)
        || (!cJSON_IsObject(cand) && !cJSON_IsString(feedback)))
    {
        ngx_ai_error_set(err, 502, "upstream_error", NULL,
                         "invalid_response",
                         "the provider's answer has no candidates");
        return NGX_DECLINED;
    }

    if (ngx_ai_buf_init(&b, pool, 256) != NGX_OK
        || ngx_ai_buf_init(&tc, pool, 64) != NGX_OK)
    {
        return NGX_ERROR;
    }

    n = 0;
    parts = ngx_ai_get(ngx_ai_get(cand, "content"), "parts");

    cJSON_ArrayForEach(part, parts) {

        if (cJSON_IsTrue(ngx_ai_get(part, "thought"))) {
            continue;                   /* thought summaries are not content */
        }

        text = ngx_ai_get(part, "text");

        if (cJSON_IsString(text)) {
            if (ngx_ai_buf_append_str(&b, text->valuestring) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        rc = ngx_ai_gemini_call(part, n, idbuf, &id, &name, &args);

        if (rc == NGX_DECLINED) {
            continue;                   /* code execution and the like */
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        sargs.data = (u_char *) args;
        sargs.len = ngx_strlen(args);

        rc = ngx_ai_buf_append(&tc, n ? "," : "[", 1);

        if (rc == NGX_OK) {
            rc = ngx_ai_buf_append_tool_call(&tc, &id, &name, &sargs);
        }

        cJSON_free(args);

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        n++;
    }

    if (n && ngx_ai_buf_append(&tc, "]", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cJSON_IsObject(cand)) {
        finish = ngx_ai_gemini_finish(ngx_ai_get(cand, "finishReason"));

        if (n && ngx_strcmp(finish, "stop") == 0) {
            finish = "tool_calls";
        }

    } else {
        finish = "content_filter";      /* the prompt itself was blocked */
    }

    out->content.data = b.data;
    out->content.len = b.len;
    out->finish_reason.data = (u_char *) finish;
    out->finish_reason.len = ngx_strlen(finish);

    ngx_ai_gemini_usage(ngx_ai_get(root, "usageMetadata"), &out->usage);

    if (ngx_ai_chat_id(pool, ngx_ai_get(root, "responseId"), req->created,
                         &rid)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    calls.data = tc.data;
    calls.len = tc.len;

    return ngx_ai_chat_completion_render(pool, req, &rid, &calls, out);
}


/*
 * usageMetadata -> usage: promptTokenCount includes cached tokens, tool
 * use prompts are counted apart, and thoughts are billed as output.
 */

static void
ngx_ai_gemini_usage(cJSON *meta, ngx_ai_usage_t *u)
{
    uint64_t  prompt, tool, cached, cand, thoughts;

    if (!cJSON_IsObject(meta)) {
        return;
    }

    prompt = 0;
    tool = 0;
    cached = 0;
    cand = 0;
    thoughts = 0;

    (void) ngx_ai_json_get_uint(meta, "promptTokenCount", &prompt);
    (void) ngx_ai_json_get_uint(meta, "toolUsePromptTokenCount", &tool);
    (void) ngx_ai_json_get_uint(meta, "cachedContentTokenCount", &cached);
    (void) ngx_ai_json_get_uint(meta, "candidatesTokenCount", &cand);
    (void) ngx_ai_json_get_uint(meta, "thoughtsTokenCount", &thoughts);

    u->prompt_tokens = prompt + tool;
    u->completion_tokens = cand + thoughts;
    u->cached_tokens = cached;
    u->cache_creation_tokens = 0;
    u->reasoning_tokens = thoughts;
    u->known = 1;
}


static const char *
ngx_ai_gemini_finish(cJSON *reason)
{
    ngx_uint_t   i;
    const char  *r;

    static const char  *filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
        NULL
    };

    if (!cJSON_IsString(reason)) {
        return "stop";
    }

    r = reason->valuestring;

    if (ngx_strcmp(r, "MAX_TOKENS") == 0) {
        return "length";
    }

    for (i = 0; filtered[i]; i++) {
        if (ngx_strcmp(r, filtered[i]) == 0) {
            return "content_filter";
        }
    }

    /* STOP, OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL ... */

    return "stop";
}


/*
 * A functionCall part -> tool call id (Gemini's own, or "call_<index>"
 * written to idbuf), name, and arguments JSON (to be cJSON_free()d);
 * NGX_DECLINED when the part is not a function call.
 */

static ngx_int_t
ngx_ai_gemini_call(cJSON *part, ngx_uint_t index, u_char *idbuf,
    ngx_str_t *id, ngx_str_t *name, char **args)
{
    u_char  *p, tmp[NGX_INT_T_LEN];
    cJSON   *fc, *fid, *fname, *fargs, *empty;

    fc = ngx_ai_get(part, "functionCall");
    fname = ngx_ai_get(fc, "name");

    if (!cJSON_IsString(fname)) {
        return NGX_DECLINED;
    }

    name->data = (u_char *) fname->valuestring;
    name->len = ngx_strlen(fname->valuestring);

    fid = ngx_ai_get(fc, "id");

    if (cJSON_IsString(fid) && fid->valuestring[0] != '\0') {
        id->data = (u_char *) fid->valuestring;
        id->len = ngx_strlen(fid->valuestring);

    } else {
        p = tmp + sizeof(tmp);

        do {
            *--p = (u_char) ('0' + index % 10);
            index /= 10;
        } while (index);

        id->data = idbuf;
        id->len = ngx_cpymem(ngx_cpymem(idbuf, "call_", 5), p,
                             tmp + sizeof(tmp) - p)
                  - idbuf;
    }

    fargs = ngx_ai_get(fc, "args");

    if (cJSON_IsObject(fargs)) {
        *args = cJSON_PrintUnformatted(fargs);

    } else {
        empty = cJSON_CreateObject();
        *args = empty ? cJSON_PrintUnformatted(empty) : NULL;
        cJSON_Delete(empty);
    }

    return *args ? NGX_OK : NGX_ERROR;
}



/* errors: {"error":{"code":429,"message":...,"status":"RESOURCE_..."}} */

static void
ngx_ai_gemini_error(ngx_pool_t *pool, ngx_uint_t status, u_char *body,
    size_t len, ngx_ai_error_t *err)
{
    cJSON       *root, *error, *message, *code, *detail;
    ngx_uint_t   i;
    const char  *s;

    static const char  *types[] = {
        "INVALID_ARGUMENT", "invalid_request_error",
        "FAILED_PRECONDITION", "invalid_request_error",
        "OUT_OF_RANGE", "invalid_request_error",
        "UNAUTHENTICATED", "authentication_error",
        "PERMISSION_DENIED", "permission_error",
        "NOT_FOUND", "not_found_error",
        "RESOURCE_EXHAUSTED", "rate_limit_exceeded",
        "INTERNAL", "server_error",
        "UNAVAILABLE", "server_error",
        "DEADLINE_EXCEEDED", "server_error",
        "UNKNOWN", "server_error",
        NULL
    };

    ngx_ai_error_set(err, status, ngx_ai_error_type_by_status(status), NULL,
                     NULL, "the provider answered with an error");

    root = ngx_ai_json_parse(pool, body, len);

    /* the non-SSE streaming endpoint wraps it in an array */

    if (cJSON_IsArray(root)) {
        root = cJSON_GetArrayItem(root, 0);
    }

    error = ngx_ai_get(root, "error");

    if (!cJSON_IsObject(error)) {
        return;
    }

    message = ngx_ai_get(error, "message");

    if (cJSON_IsString(message) && message->valuestring[0] != '\0') {
        err->message.data = (u_char *) message->valuestring;
        err->message.len = ngx_strlen(message->valuestring);
    }

    code = ngx_ai_get(error, "status");

    if (cJSON_IsString(code)) {
        s = code->valuestring;
        err->code = s;

        for (i = 0; types[i]; i += 2) {
            if (ngx_strcmp(s, types[i]) == 0) {
                err->type = types[i + 1];
                break;
            }
        }
    }

    /* a bad key is a 400 INVALID_ARGUMENT with reason API_KEY_INVALID */

    cJSON_ArrayForEach(detail, ngx_ai_get(error, "details")) {
        if (ngx_ai_is(ngx_ai_get(detail, "reason"), "API_KEY_INVALID")) {
            err->type = "authentication_error";
            err->code = "API_KEY_INVALID";
        }
    }
}


/* streams: every event is a whole GenerateContentResponse */

static ngx_int_t
ngx_ai_gemini_stream_event(ngx_ai_stream_t *st, ngx_ai_sse_event_t *ev)
{
    cJSON                   *root, *error, *msg, *cand, *rid, *reason;
    cJSON                   *feedback;
    ngx_int_t                rc;
    const char              *finish;
    ngx_ai_gemini_stream_t  *gs;

    st->events++;

    gs = st->data;

    if (gs == NULL) {
        gs = ngx_pcalloc(st->pool, sizeof(ngx_ai_gemini_stream_t));
        if (gs == NULL) {
            return NGX_ERROR;
        }

        st->data = gs;
    }

    root = ngx_ai_json_scratch(&st->scratch, st->pool, &ev->data);

    if (!cJSON_IsObject(root)) {
        ngx_ai_json_scratch_done(st->scratch, root);

        if (st->done) {
            return NGX_OK;
        }

        (void) ngx_ai_stream_fail(st, NULL, "the provider sent an event "
                                            "that is not JSON");
        return NGX_DECLINED;
    }

    rc = NGX_OK;

    error = ngx_ai_get(root, "error");

    if (cJSON_IsObject(error)) {
        msg = ngx_ai_get(error, "message");

        rc = ngx_ai_stream_fail(st, cJSON_IsString(msg) ? msg->valuestring
                                                        : NULL,
                                "the provider sent an error event");
        if (rc == NGX_OK) {
            rc = NGX_DECLINED;
        }

        goto done;
    }

    /*
     * Usage comes with running totals, possibly on several chunks and
     * after the finish one: the last wins, even after the finish chunk
     * was sent (the client's usage chunk has what was known then).
     */

    if (cJSON_IsObject(ngx_ai_get(root, "usageMetadata"))) {
        ngx_ai_gemini_usage(ngx_ai_get(root, "usageMetadata"), &st->usage);
    }

    if (st->done) {
        goto done;
    }

    rid = ngx_ai_get(root, "responseId");

    if (ngx_ai_stream_start(st, cJSON_IsString(rid)
                                ? (u_char *) rid->valuestring : NULL,
                            cJSON_IsString(rid)
                                ? ngx_strlen(rid->valuestring) : 0)
        != NGX_OK)
    {
        rc = NGX_ERROR;
        goto done;
    }

    cand = cJSON_GetArrayItem(ngx_ai_get(root, "candidates"), 0);

    if (!cJSON_IsObject(cand)) {
        feedback = ngx_ai_get(ngx_ai_get(root, "promptFeedback"),
                              "blockReason");

        if (cJSON_IsString(feedback)) {
            rc = ngx_ai_stream_finish(st, "content_filter");
        }

        goto done;                      /* a usage-only chunk */
    }

    rc = ngx_ai_gemini_stream_parts(st, gs,
             ngx_ai_get(ngx_ai_get(cand, "content"), "parts"));

    if (rc != NGX_OK) {
        goto done;
    }

    reason = ngx_ai_get(cand, "finishReason");

    if (cJSON_IsString(reason)
        && ngx_strcmp(reason->valuestring, "FINISH_REASON_UNSPECIFIED") != 0)
    {
        finish = ngx_ai_gemini_finish(reason);

        if (gs->tools && ngx_strcmp(finish, "stop") == 0) {
            finish = "tool_calls";
        }

        rc = ngx_ai_stream_finish(st, finish);
    }

done:

    ngx_ai_json_scratch_done(st->scratch, root);

    return rc;
}


static ngx_int_t
ngx_ai_gemini_stream_parts(ngx_ai_stream_t *st, ngx_ai_gemini_stream_t *gs,
    cJSON *parts)
{
    char       *args;
    u_char      idbuf[NGX_AI_GEMINI_CALL_ID_LEN];
    cJSON      *part, *text;
    ngx_int_t   rc;
    ngx_str_t   id, name, sargs;

    cJSON_ArrayForEach(part, parts) {

        if (cJSON_IsTrue(ngx_ai_get(part, "thought"))) {
            continue;
        }

        text = ngx_ai_get(part, "text");

        if (cJSON_IsString(text)) {
            if (ngx_ai_stream_content(st, (u_char *) text->valuestring,
                                      ngx_strlen(text->valuestring))
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        rc = ngx_ai_gemini_call(part, gs->tools, idbuf, &id, &name, &args);

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        /* Gemini sends whole calls: one delta with all the arguments */

        sargs.data = (u_char *) args;
        sargs.len = ngx_strlen(args);

        rc = ngx_ai_stream_tool_call(st, gs->tools, &id, &name, &sargs);

        cJSON_free(args);

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        gs->tools++;
    }

    return NGX_OK;
}


/* /v1beta/models/MODEL:METHOD */

static ngx_int_t
ngx_ai_gemini_path(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    const char *method, ngx_str_t *path)
{
    ngx_ai_buf_t  b;

    if (ngx_ai_buf_init(&b, pool, req->upstream_model.len + 64) != NGX_OK
        || ngx_ai_buf_append_str(&b, "/v1beta/models/") != NGX_OK
        || ngx_ai_buf_append(&b, req->upstream_model.data,
                             req->upstream_model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, method) != NGX_OK)
    {
        return NGX_ERROR;
    }

    path->data = b.data;
    path->len = b.len;

    return NGX_OK;
}


/*
 * embeddings -> :batchEmbedContents, one request per input:
 * {"model":"models/M","content":{"parts":[{"text":...}]},
 *  "outputDimensionality":D}.  Token arrays have no Gemini form: 400.
 */

static ngx_int_t
ngx_ai_gemini_embed_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out, ngx_ai_error_t *err)
{
    u_char     *model;
    cJSON      *root, *requests, *input, *item, *dims;
    ngx_int_t   rc;

    input = ngx_ai_embed_texts(req, err);
    if (input == NULL) {
        return NGX_DECLINED;
    }

    dims = ngx_ai_get(req->json, "dimensions");

    if (ngx_ai_gemini_path(pool, req, ":batchEmbedContents", &out->path)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    model = ngx_pnalloc(pool, sizeof("models/") + req->upstream_model.len);
    if (model == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(ngx_cpymem(model, "models/", sizeof("models/") - 1),
                req->upstream_model.data, req->upstream_model.len) = '\0';

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    requests = cJSON_CreateArray();
    if (ngx_ai_json_add(root, "requests", requests) != NGX_OK) {
        goto done;
    }

    for (item = ngx_ai_embed_next(input, NULL);
         item;
         item = ngx_ai_embed_next(input, item))
    {
        if (ngx_ai_gemini_embed_one(requests, (char *) model, item, dims)
            != NGX_OK)
        {
            goto done;
        }
    }

    rc = ngx_ai_json_print(pool, root, &out->body);

done:

    cJSON_Delete(root);

    return rc;
}


static ngx_int_t
ngx_ai_gemini_embed_one(cJSON *requests, const char *model, cJSON *text,
    cJSON *dims)
{
    cJSON  *r, *content, *parts, *part;

    r = cJSON_CreateObject();
    if (ngx_ai_json_add(requests, NULL, r) != NGX_OK
        || ngx_ai_json_add_ref(r, "model", model) != NGX_OK)
    {
        return NGX_ERROR;
    }

    content = cJSON_CreateObject();
    if (ngx_ai_json_add(r, "content", content) != NGX_OK) {
        return NGX_ERROR;
    }

    parts = cJSON_CreateArray();
    if (ngx_ai_json_add(content, "parts", parts) != NGX_OK) {
        return NGX_ERROR;
    }

    part = cJSON_CreateObject();
    if (ngx_ai_json_add(parts, NULL, part) != NGX_OK
        || ngx_ai_json_add_ref(part, "text", text->valuestring) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ai_embed_dims(r, "outputDimensionality", dims) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * {"embeddings":[{"values":[...]}, ...]} -> OpenAI's list.  Gemini says
 * no usage: the answer shows the estimate (a quarter of the input's
 * bytes) and the ledger charges it, marked as estimated.
 */

static ngx_int_t
ngx_ai_gemini_embed_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    cJSON         *root, *list, *item;
    ngx_int_t      rc;
    ngx_uint_t     i, base64;
    ngx_ai_jw_t    w;
    ngx_ai_buf_t   b;

    ngx_memzero(out, sizeof(ngx_ai_response_t));

    root = ngx_ai_json_parse(pool, body, len);
    list = ngx_ai_get(root, "embeddings");

    base64 = ngx_ai_embed_base64(req);

    rc = ngx_ai_embed_start(&w, &b, pool, req, list, len, err);
    if (rc != NGX_OK) {
        return rc;
    }

    i = 0;

    cJSON_ArrayForEach(item, list) {
        rc = ngx_ai_embed_vector(&w, pool, i++, ngx_ai_get(item, "values"),
                                 base64, 0, err);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_ai_embed_finish(&w, req, 0, 0, out);
}


/*
 * messages/count_tokens -> :countTokens with the conversation as a
 * generateContentRequest (system instruction and tools count too)
 */

static ngx_int_t
ngx_ai_gemini_count_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out, ngx_ai_error_t *err)
{
    u_char     *model;
    cJSON      *root, *inner;
    ngx_int_t   rc;

    if (ngx_ai_gemini_path(pool, req, ":countTokens", &out->path) != NGX_OK) {
        return NGX_ERROR;
    }

    model = ngx_pnalloc(pool, sizeof("models/") + req->upstream_model.len);
    if (model == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(ngx_cpymem(model, "models/", sizeof("models/") - 1),
                req->upstream_model.data, req->upstream_model.len) = '\0';

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    inner = cJSON_CreateObject();

    if (ngx_ai_json_add(root, "generateContentRequest", inner) == NGX_OK
        && ngx_ai_json_add_ref(inner, "model", (char *) model) == NGX_OK
        && ngx_ai_gemini_contents(pool, req, inner) == NGX_OK
        && ngx_ai_gemini_tools(req->json, inner) == NGX_OK)
    {
        rc = ngx_ai_json_print(pool, root, &out->body);
    }

    cJSON_Delete(root);

    return rc;
}


static ngx_int_t
ngx_ai_gemini_count_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    cJSON     *root;
    uint64_t   tokens;

    root = ngx_ai_json_parse(pool, body, len);

    if (ngx_ai_json_get_uint(root, "totalTokens", &tokens) != NGX_OK) {
        return ngx_ai_embed_invalid_answer(err, "the provider's answer has "
                                           "no totalTokens");
    }

    return ngx_ai_count_render(pool, tokens, out);
}
