
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Embeddings and token counts, the parts the translators share: the
 * validation of a client's embeddings request (OpenAI's form: model,
 * input as a string, strings or token arrays, dimensions,
 * encoding_format), OpenAI's embedding list written from any provider's
 * vectors (floats, or little-endian float32 in base64 as OpenAI sends
 * them), and Anthropic's {"input_tokens":N}.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <math.h>
#include "ngx_ai_gateway_pure.h"


static ngx_int_t ngx_ai_embed_model(cJSON *item, const char *param,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_embed_input(cJSON *input, size_t *bytes,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_embed_tokens(cJSON *tokens, size_t *bytes,
    ngx_ai_error_t *err);
static ngx_int_t ngx_ai_embed_options(cJSON *root, ngx_ai_error_t *err);
static ngx_int_t ngx_ai_embed_b64_string(cJSON *item);
static ngx_int_t ngx_ai_embed_b64_floats(ngx_ai_jw_t *w, ngx_pool_t *pool,
    cJSON *values);


#define ngx_ai_get(obj, name)  cJSON_GetObjectItemCaseSensitive(obj, name)

#define ngx_ai_embed_invalid(err, param, code, msg)                         \
    ngx_ai_error_set(err, 400, "invalid_request_error", param, code, msg)


static const char  *ngx_ai_embed_members[] = {
    "model", "models", "input", "dimensions", "encoding_format", "user",
    NULL
};


/*
 * NGX_OK: req is filled (op NGX_AI_OP_EMBED, no output tokens, never a
 * stream, prompt_bytes the input's text or 4 bytes a token);
 * NGX_DECLINED: err (400) says what is wrong; NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_ai_embed_request_parse(ngx_pool_t *pool, u_char *body, size_t len,
    ngx_ai_chat_request_t *req, ngx_ai_error_t *err)
{
    cJSON                *root, *item, *seen[8], *opt;
    u_char               *slash;
    ngx_int_t             rc;
    ngx_uint_t            status, i;
    ngx_ai_json_flags_t   flags;

    ngx_memzero(req, sizeof(ngx_ai_chat_request_t));
    req->op = NGX_AI_OP_EMBED;
    req->max_tokens = 0;
    req->n = 1;

    if (len == 0) {
        ngx_ai_embed_invalid(err, NULL, "invalid_value", "The request body "
                             "is empty; expected a JSON object.");
        return NGX_DECLINED;
    }

    root = ngx_ai_json_track(pool,
                             ngx_ai_json_decode(pool, body, len,
                                                NGX_AI_MAX_JSON_DEPTH, &flags,
                                                &status));

    if (status == NGX_AI_JSON_NO_MEMORY) {
        return NGX_ERROR;
    }

    if (root == NULL) {
        ngx_ai_embed_invalid(err, NULL, "invalid_json",
                             status == NGX_AI_JSON_TOO_DEEP
                             ? "The request body is nested too deeply."
                             : "The request body is not valid JSON.");
        return NGX_DECLINED;
    }

    rc = ngx_ai_request_bytes(pool, body, &flags, err);
    if (rc != NGX_OK) {
        return rc;
    }

    if (flags.nul || !cJSON_IsObject(root)) {
        ngx_ai_embed_invalid(err, NULL, "invalid_value", flags.nul
                             ? "The request body holds a NUL character "
                               "(\\u0000)."
                             : "The request body must be a JSON object.");
        return NGX_DECLINED;
    }

    /* a member named twice could pass here with one value and reach the
     * provider with the other */

    ngx_memzero(seen, sizeof(seen));

    cJSON_ArrayForEach(item, root) {
        for (i = 0; item->string && ngx_ai_embed_members[i]; i++) {
            if (ngx_strcmp(item->string, ngx_ai_embed_members[i]) != 0) {
                continue;
            }

            if (seen[i]) {
                ngx_ai_embed_invalid(err, ngx_ai_embed_members[i],
                                     "duplicate_parameter", "Invalid "
                                     "request: a parameter is given more "
                                     "than once.");
                return NGX_DECLINED;
            }

            seen[i] = item;
            break;
        }
    }

    req->json = root;
    req->raw.data = body;
    req->raw.len = len;

    item = ngx_ai_get(root, "model");

    if (item == NULL || cJSON_IsNull(item)) {
        ngx_ai_embed_invalid(err, "model", "missing_required_parameter",
                             "you must provide a model parameter");
        return NGX_DECLINED;
    }

    if (ngx_ai_embed_model(item, "model", err) != NGX_OK) {
        return NGX_DECLINED;
    }

    req->model.data = (u_char *) item->valuestring;
    req->model.len = ngx_strlen(item->valuestring);

    slash = ngx_strlchr(req->model.data, req->model.data + req->model.len,
                        '/');
    if (slash) {
        req->provider.data = req->model.data;
        req->provider.len = slash - req->model.data;
        req->upstream_model.data = slash + 1;
        req->upstream_model.len = req->model.data + req->model.len
                                  - (slash + 1);

    } else {
        req->upstream_model = req->model;
    }

    item = ngx_ai_get(root, "models");

    if (item && !cJSON_IsNull(item)) {
        if (!cJSON_IsArray(item)) {
            ngx_ai_embed_invalid(err, "models", "invalid_type", "Invalid "
                                 "type for 'models': expected an array of "
                                 "model names.");
            return NGX_DECLINED;
        }

        cJSON_ArrayForEach(opt, item) {
            if (ngx_ai_embed_model(opt, "models", err) != NGX_OK) {
                return NGX_DECLINED;
            }
        }

        req->models = item;
    }

    item = ngx_ai_get(root, "input");

    if (item == NULL || cJSON_IsNull(item)) {
        ngx_ai_embed_invalid(err, "input", "missing_required_parameter",
                             "Missing required parameter: 'input'.");
        return NGX_DECLINED;
    }

    if (ngx_ai_embed_input(item, &req->prompt_bytes, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    return ngx_ai_embed_options(root, err);
}


static ngx_int_t
ngx_ai_embed_model(cJSON *item, const char *param, ngx_ai_error_t *err)
{
    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        ngx_ai_embed_invalid(err, param, "invalid_type", "Invalid type for "
                             "model: expected a string like "
                             "\"provider/model\".");
        return NGX_DECLINED;
    }

    if (!ngx_ai_model_name_valid((u_char *) item->valuestring,
                                 ngx_strlen(item->valuestring)))
    {
        ngx_ai_embed_invalid(err, param, "invalid_value", "Invalid model "
                             "name: a model is named \"provider/model\" "
                             "with printable characters, no spaces, '%', "
                             "'?', '#' or \"..\" segments, at most 256 "
                             "bytes.");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a string, strings, a token array or token arrays, none of them empty */

static ngx_int_t
ngx_ai_embed_input(cJSON *input, size_t *bytes, ngx_ai_error_t *err)
{
    int     n;
    cJSON  *item, *first;

    if (cJSON_IsString(input)) {
        if (input->valuestring[0] == '\0') {
            goto empty;
        }

        *bytes = ngx_strlen(input->valuestring);
        return NGX_OK;
    }

    n = cJSON_GetArraySize(input);

    if (!cJSON_IsArray(input) || n == 0) {
        ngx_ai_embed_invalid(err, "input", "invalid_type", "Invalid type "
                             "for 'input': expected a non-empty string, an "
                             "array of strings, an array of tokens or an "
                             "array of token arrays.");
        return NGX_DECLINED;
    }

    first = input->child;

    if (cJSON_IsNumber(first)) {
        return ngx_ai_embed_tokens(input, bytes, err);
    }

    if (n > NGX_AI_MAX_EMBED_INPUTS) {
        ngx_ai_embed_invalid(err, "input", "invalid_value", "Too many "
                             "inputs: 'input' takes at most 2048 entries.");
        return NGX_DECLINED;
    }

    *bytes = 0;

    cJSON_ArrayForEach(item, input) {

        if (cJSON_IsString(first)) {
            if (!cJSON_IsString(item)) {
                goto mixed;
            }

            if (item->valuestring[0] == '\0') {
                goto empty;
            }

            *bytes += ngx_strlen(item->valuestring);
            continue;
        }

        if (!cJSON_IsArray(item) || !cJSON_IsArray(first)) {
            goto mixed;
        }

        if (ngx_ai_embed_tokens(item, bytes, err) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;

empty:

    ngx_ai_embed_invalid(err, "input", "invalid_value", "Invalid 'input': "
                         "an input may not be empty.");
    return NGX_DECLINED;

mixed:

    ngx_ai_embed_invalid(err, "input", "invalid_type", "Invalid 'input': "
                         "every entry must be of the same kind, all strings "
                         "or all token arrays.");
    return NGX_DECLINED;
}


/* token ids: integers 0 .. 2^32 - 1; 4 bytes each for the estimate */

static ngx_int_t
ngx_ai_embed_tokens(cJSON *tokens, size_t *bytes, ngx_ai_error_t *err)
{
    int     n;
    cJSON  *item;

    n = cJSON_GetArraySize(tokens);

    if (n == 0 || n > NGX_AI_MAX_EMBED_TOKENS) {
        ngx_ai_embed_invalid(err, "input", "invalid_value", "Invalid "
                             "'input': a token array holds 1 to 65536 "
                             "tokens.");
        return NGX_DECLINED;
    }

    cJSON_ArrayForEach(item, tokens) {
        if (!cJSON_IsNumber(item) || item->valuedouble < 0
            || item->valuedouble > 4294967295.0
            || item->valuedouble != (double) (uint64_t) item->valuedouble)
        {
            ngx_ai_embed_invalid(err, "input", "invalid_type", "Invalid "
                                 "'input': a token is a non-negative "
                                 "integer.");
            return NGX_DECLINED;
        }
    }

    *bytes += (size_t) n * 4;

    return NGX_OK;
}


static ngx_int_t
ngx_ai_embed_options(cJSON *root, ngx_ai_error_t *err)
{
    cJSON  *item;

    item = ngx_ai_get(root, "dimensions");

    if (item && !cJSON_IsNull(item)
        && (!cJSON_IsNumber(item) || item->valuedouble < 1
            || item->valuedouble > NGX_AI_MAX_EMBED_DIMENSIONS
            || item->valuedouble != (double) (uint64_t) item->valuedouble))
    {
        ngx_ai_embed_invalid(err, "dimensions", "invalid_value", "Invalid "
                             "'dimensions': expected an integer from 1 to "
                             "65536.");
        return NGX_DECLINED;
    }

    item = ngx_ai_get(root, "encoding_format");

    if (item && !cJSON_IsNull(item)
        && !(cJSON_IsString(item)
             && (ngx_strcmp(item->valuestring, "float") == 0
                 || ngx_strcmp(item->valuestring, "base64") == 0)))
    {
        ngx_ai_embed_invalid(err, "encoding_format", "invalid_value",
                             "Invalid 'encoding_format': expected \"float\" "
                             "or \"base64\".");
        return NGX_DECLINED;
    }

    item = ngx_ai_get(root, "user");

    if (item && !cJSON_IsNull(item) && !cJSON_IsString(item)) {
        ngx_ai_embed_invalid(err, "user", "invalid_type", "Invalid type for "
                             "'user': expected a string.");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* whether a wire format has the endpoint an operation needs */

ngx_uint_t
ngx_ai_translator_serves(ngx_ai_translator_t *t, ngx_uint_t op)
{
    switch (op) {

    case NGX_AI_OP_EMBED:
        return t->embed_request != NULL && t->embed_response != NULL;

    case NGX_AI_OP_COUNT:
        return t->count_request != NULL && t->count_response != NULL;

    default:
        return 1;
    }
}


/* the inputs of a validated request: the vectors an answer must hold */

ngx_uint_t
ngx_ai_embed_inputs(ngx_ai_chat_request_t *req)
{
    cJSON  *input;

    input = ngx_ai_get(req->json, "input");

    if (!cJSON_IsArray(input) || cJSON_IsNumber(input->child)) {
        return 1;
    }

    return (ngx_uint_t) cJSON_GetArraySize(input);
}


ngx_uint_t
ngx_ai_embed_base64(ngx_ai_chat_request_t *req)
{
    cJSON  *item;

    item = ngx_ai_get(req->json, "encoding_format");

    return cJSON_IsString(item)
           && ngx_strcmp(item->valuestring, "base64") == 0;
}


/*
 * {"object":"list","data":[ then one ngx_ai_embed_item() per vector, then
 * ngx_ai_embed_list_close()
 */

ngx_int_t
ngx_ai_embed_list_open(ngx_ai_jw_t *w, ngx_ai_buf_t *b, ngx_pool_t *pool,
    size_t size)
{
    if (ngx_ai_buf_init(b, pool, size + 256) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_ai_jw_init(w, b);
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_string(w, "object", (u_char *) "list", 4);
    ngx_ai_jw_key(w, "data");
    ngx_ai_jw_array(w);

    return w->rc;
}


/*
 * One {"object":"embedding","index":N,"embedding":...}: values an array
 * of finite numbers, or (from an OpenAI-type provider) a base64 string;
 * written as floats, or as base64 when base64.  NGX_DECLINED: not a
 * vector.
 */

ngx_int_t
ngx_ai_embed_item(ngx_ai_jw_t *w, ngx_pool_t *pool, ngx_uint_t index,
    cJSON *values, ngx_uint_t base64)
{
    cJSON      *v;
    ngx_str_t   s;

    ngx_ai_jw_object(w);
    ngx_ai_jw_key_string(w, "object", (u_char *) "embedding", 9);
    ngx_ai_jw_key_uint(w, "index", index);
    ngx_ai_jw_key(w, "embedding");

    if (cJSON_IsString(values)) {
        if (!base64 || ngx_ai_embed_b64_string(values) != NGX_OK) {
            return NGX_DECLINED;
        }

        ngx_ai_jw_str(w, values->valuestring);
        ngx_ai_jw_end(w);

        return w->rc;
    }

    if (!cJSON_IsArray(values) || values->child == NULL) {
        return NGX_DECLINED;
    }

    cJSON_ArrayForEach(v, values) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
            return NGX_DECLINED;
        }
    }

    if (base64) {
        if (ngx_ai_embed_b64_floats(w, pool, values) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        if (ngx_ai_json_print(pool, values, &s) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_ai_jw_raw(w, s.data, s.len);
    }

    ngx_ai_jw_end(w);

    return w->rc;
}


static ngx_int_t
ngx_ai_embed_b64_string(cJSON *item)
{
    u_char  *p, c;
    size_t   n;

    n = 0;

    for (p = (u_char *) item->valuestring; *p; p++, n++) {
        c = *p;

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
        {
            return NGX_DECLINED;
        }
    }

    return (n && n % 4 == 0) ? NGX_OK : NGX_DECLINED;
}


/* the vector as OpenAI's base64: each value a little-endian float32 */

static ngx_int_t
ngx_ai_embed_b64_floats(ngx_ai_jw_t *w, ngx_pool_t *pool, cJSON *values)
{
    u_char     *raw, *dst, *s;
    size_t      n, i, len;
    cJSON      *v;
    uint32_t    bits;
    union {
        float     f;
        uint32_t  u;
    } cv;

    static u_char  b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    n = (size_t) cJSON_GetArraySize(values);

    raw = ngx_pnalloc(pool, n * 4);
    dst = ngx_pnalloc(pool, (n * 4 + 2) / 3 * 4);
    if (raw == NULL || dst == NULL) {
        return NGX_ERROR;
    }

    i = 0;

    cJSON_ArrayForEach(v, values) {
        cv.f = (float) v->valuedouble;
        bits = cv.u;

        raw[i++] = (u_char) (bits & 0xff);
        raw[i++] = (u_char) ((bits >> 8) & 0xff);
        raw[i++] = (u_char) ((bits >> 16) & 0xff);
        raw[i++] = (u_char) (bits >> 24);
    }

    len = n * 4;
    s = dst;

    for (i = 0; i + 2 < len; i += 3) {
        *s++ = b64[raw[i] >> 2];
        *s++ = b64[((raw[i] & 0x03) << 4) | (raw[i + 1] >> 4)];
        *s++ = b64[((raw[i + 1] & 0x0f) << 2) | (raw[i + 2] >> 6)];
        *s++ = b64[raw[i + 2] & 0x3f];
    }

    if (i < len) {
        *s++ = b64[raw[i] >> 2];

        if (i + 1 < len) {
            *s++ = b64[((raw[i] & 0x03) << 4) | (raw[i + 1] >> 4)];
            *s++ = b64[(raw[i + 1] & 0x0f) << 2];

        } else {
            *s++ = b64[(raw[i] & 0x03) << 4];
            *s++ = '=';
        }

        *s++ = '=';
    }

    ngx_ai_jw_string(w, dst, s - dst);

    return w->rc;
}


/* ],"model":...,"usage":{...}} into out->body */

ngx_int_t
ngx_ai_embed_list_close(ngx_ai_jw_t *w, ngx_ai_chat_request_t *req,
    uint64_t prompt_tokens, ngx_ai_response_t *out)
{
    ngx_ai_jw_end(w);
    ngx_ai_jw_key_string(w, "model", req->model.data, req->model.len);
    ngx_ai_jw_key(w, "usage");
    ngx_ai_jw_object(w);
    ngx_ai_jw_key_uint(w, "prompt_tokens", prompt_tokens);
    ngx_ai_jw_key_uint(w, "total_tokens", prompt_tokens);
    ngx_ai_jw_end(w);
    ngx_ai_jw_end(w);

    if (ngx_ai_jw_done(w) != NGX_OK) {
        return NGX_ERROR;
    }

    out->body.data = w->buf->data;
    out->body.len = w->buf->len;

    return NGX_OK;
}


/*
 * Anthropic's count_tokens answer.  A count costs nothing: its usage is
 * known and zero, so the ledger has the request and no tokens.
 */

ngx_int_t
ngx_ai_count_render(ngx_pool_t *pool, uint64_t tokens,
    ngx_ai_response_t *out)
{
    ngx_ai_jw_t   w;
    ngx_ai_buf_t  b;

    ngx_memzero(out, sizeof(ngx_ai_response_t));

    if (ngx_ai_buf_init(&b, pool, 48) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_ai_jw_init(&w, &b);
    ngx_ai_jw_object(&w);
    ngx_ai_jw_key_uint(&w, "input_tokens", tokens);
    ngx_ai_jw_end(&w);

    if (ngx_ai_jw_done(&w) != NGX_OK) {
        return NGX_ERROR;
    }

    out->body.data = b.data;
    out->body.len = b.len;
    out->usage.known = 1;

    return NGX_OK;
}


/*
 * The input of a text-only embeddings endpoint: a string or strings (its
 * texts walked with ngx_ai_embed_next()); NULL, and err the 400, for
 * token arrays.
 */

cJSON *
ngx_ai_embed_texts(ngx_ai_chat_request_t *req, ngx_ai_error_t *err)
{
    cJSON  *input;

    input = cJSON_GetObjectItemCaseSensitive(req->json, "input");

    if (cJSON_IsString(input)
        || (cJSON_IsArray(input) && cJSON_IsString(input->child)))
    {
        return input;
    }

    ngx_ai_error_set(err, 400, "invalid_request_error", "input",
                     "unsupported_input", "This provider embeds text only: "
                     "'input' must be a string or an array of strings, not "
                     "tokens.");
    return NULL;
}


/* the client's "dimensions" (when given) as the provider's KEY in obj */

ngx_int_t
ngx_ai_embed_dims(cJSON *obj, const char *key, cJSON *dims)
{
    if (!cJSON_IsNumber(dims)) {
        return NGX_OK;
    }

    return ngx_ai_json_add(obj, key, cJSON_CreateNumber(dims->valuedouble));
}


/* the text after prev (NULL: the first) of such an input; NULL: done */

cJSON *
ngx_ai_embed_next(cJSON *input, cJSON *prev)
{
    if (cJSON_IsString(input)) {
        return prev ? NULL : input;
    }

    return prev ? prev->next : input->child;
}


/*
 * The list of a provider's answer opened for writing, its vectors (list)
 * checked to be one for every input (else NGX_DECLINED, err the 502)
 */

ngx_int_t
ngx_ai_embed_start(ngx_ai_jw_t *w, ngx_ai_buf_t *b, ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, cJSON *list, size_t len, ngx_ai_error_t *err)
{
    if (!cJSON_IsArray(list)
        || (ngx_uint_t) cJSON_GetArraySize(list) != ngx_ai_embed_inputs(req))
    {
        return ngx_ai_embed_invalid_answer(err, "the provider's answer has "
                                           "no embedding for every input");
    }

    return ngx_ai_embed_list_open(w, b, pool, len);
}


/*
 * One vector of a provider's answer into the list: NGX_DECLINED (err the
 * 502) when it is not one; floats only unless the provider may send
 * base64 strings (OpenAI's)
 */

ngx_int_t
ngx_ai_embed_vector(ngx_ai_jw_t *w, ngx_pool_t *pool, ngx_uint_t index,
    cJSON *values, ngx_uint_t base64, ngx_uint_t strings, ngx_ai_error_t *err)
{
    ngx_int_t  rc;

    rc = (cJSON_IsString(values) && !strings)
         ? NGX_DECLINED : ngx_ai_embed_item(w, pool, index, values, base64);

    if (rc == NGX_DECLINED) {
        return ngx_ai_embed_invalid_answer(err, "the provider's answer "
                                           "holds an embedding that is not "
                                           "a vector");
    }

    return rc;
}


/*
 * The list's end with the usage: the provider's count when it gave one
 * (known), else the estimate (a quarter of the input's bytes), which the
 * ledger charges marked as one
 */

ngx_int_t
ngx_ai_embed_finish(ngx_ai_jw_t *w, ngx_ai_chat_request_t *req,
    ngx_uint_t known, uint64_t tokens, ngx_ai_response_t *out)
{
    if (known) {
        out->usage.prompt_tokens = tokens;
        out->usage.known = 1;

    } else {
        tokens = req->prompt_bytes / 4;
    }

    return ngx_ai_embed_list_close(w, req, tokens, out);
}


/* an answer that is not what the endpoint returns */

ngx_int_t
ngx_ai_embed_invalid_answer(ngx_ai_error_t *err, const char *msg)
{
    ngx_ai_error_set(err, 502, "upstream_error", NULL, "invalid_response",
                     msg);
    return NGX_DECLINED;
}
