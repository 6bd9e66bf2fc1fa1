
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Cloud wire helpers, pure: Azure OpenAI's paths (a deployment and an
 * api-version around OpenAI's own endpoints) and the deployment a model
 * goes to.  The translator stays OpenAI's; only where the call goes and
 * how it is authorised differ (the attempt layer's headers).
 */


#include "ngx_ai_gateway_pure.h"


static ngx_uint_t ngx_ai_azure_name(ngx_str_t *s);
static ngx_uint_t ngx_ai_cloud_ends(ngx_str_t *s, const char *suffix);
static ngx_int_t ngx_ai_vertex_instance(cJSON *instances, cJSON *text);


/*
 * OpenAI's "/v1/X" (chat/completions, embeddings) on Azure:
 *   "/openai/deployments/D/X?api-version=V", or
 *   "/openai/v1/X" when V is "v1" (the v1 API: the deployment is the body's
 *   model, and there is no api-version).
 * A deployment is what Azure's deployment names are made of (letters,
 * digits, "-", "_", "."; not "." or ".." alone), so that no "/", "?" or
 * "%" can reach another path; the version was checked by the
 * configuration.  NGX_DECLINED: not an OpenAI "/v1/" path, or a
 * deployment that cannot be one.
 */

ngx_int_t
ngx_ai_azure_path(ngx_pool_t *pool, ngx_str_t *path, ngx_str_t *deployment,
    ngx_str_t *api_version, ngx_str_t *out)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   rest;

    if (path->len <= 4 || ngx_strncmp(path->data, "/v1/", 4) != 0
        || ngx_strlchr(path->data, path->data + path->len, '?'))
    {
        return NGX_DECLINED;
    }

    rest.data = path->data + 4;
    rest.len = path->len - 4;

    if (ngx_ai_azure_v1(api_version)) {
        len = sizeof("/openai/v1/") - 1 + rest.len;

    } else {
        if (!ngx_ai_azure_name(deployment)) {
            return NGX_DECLINED;
        }

        len = sizeof("/openai/deployments/") - 1 + deployment->len + 1
              + rest.len + sizeof("?api-version=") - 1 + api_version->len;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    out->len = len;

    if (ngx_ai_azure_v1(api_version)) {
        p = ngx_cpymem(p, "/openai/v1/", sizeof("/openai/v1/") - 1);
        ngx_memcpy(p, rest.data, rest.len);
        return NGX_OK;
    }

    p = ngx_cpymem(p, "/openai/deployments/",
                   sizeof("/openai/deployments/") - 1);
    p = ngx_cpymem(p, deployment->data, deployment->len);
    *p++ = '/';
    p = ngx_cpymem(p, rest.data, rest.len);
    p = ngx_cpymem(p, "?api-version=", sizeof("?api-version=") - 1);
    ngx_memcpy(p, api_version->data, api_version->len);

    return NGX_OK;
}


/* api_version=v1: the v1 API's paths */

ngx_uint_t
ngx_ai_azure_v1(ngx_str_t *api_version)
{
    return api_version->len == 2 && api_version->data[0] == 'v'
           && api_version->data[1] == '1';
}


/*
 * The deployment of a model: the map's entry for it, else the map's "*"
 * entry, else the model's own name (Azure's usual practice of naming a
 * deployment after its model).
 */

void
ngx_ai_azure_deployment(ngx_keyval_t *map, ngx_uint_t n, ngx_str_t *model,
    ngx_str_t *out)
{
    ngx_uint_t  i;

    *out = *model;

    for (i = 0; i < n; i++) {
        if (map[i].key.len == 1 && map[i].key.data[0] == '*') {
            *out = map[i].value;
            continue;
        }

        if (map[i].key.len == model->len
            && ngx_strncmp(map[i].key.data, model->data, model->len) == 0)
        {
            *out = map[i].value;
            return;
        }
    }
}


static ngx_uint_t
ngx_ai_azure_name(ngx_str_t *s)
{
    size_t      i;
    u_char      c;
    ngx_uint_t  dots;

    if (s->len == 0 || s->len > 64) {
        return 0;
    }

    dots = 0;

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c == '.') {
            dots++;
            continue;
        }

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return 0;
        }
    }

    return dots < s->len;
}


/*
 * Google Vertex AI.  Models live under
 * /v1/projects/P/locations/R/publishers/{google,anthropic}/models/M; the
 * calls are authorised with an OAuth2 access token that the service
 * account's signed JWT buys at the token endpoint (RFC 7523).  Here: the
 * paths, the Anthropic body, the service account file, the JWT's text and
 * the token endpoint's answer; the signature is the caller's (OpenSSL).
 */

ngx_int_t
ngx_ai_vertex_path(ngx_pool_t *pool, ngx_str_t *path, ngx_str_t *project,
    ngx_str_t *region, ngx_uint_t anthropic, ngx_str_t *model,
    ngx_uint_t stream, ngx_str_t *out)
{
    u_char     *p;
    size_t      len;
    ngx_str_t   rest, publisher, method;

    static const char  gemini[] = "/v1beta/models/";

    if (anthropic) {
        if (path->len != sizeof("/v1/messages") - 1
            || ngx_strncmp(path->data, "/v1/messages", path->len) != 0
            || !ngx_ai_vertex_name(model, 1))
        {
            return NGX_DECLINED;
        }

        ngx_str_set(&publisher, "anthropic");
        rest = *model;

        if (stream) {
            ngx_str_set(&method, ":streamRawPredict");

        } else {
            ngx_str_set(&method, ":rawPredict");
        }

    } else {
        if (path->len <= sizeof(gemini) - 1
            || ngx_strncmp(path->data, gemini, sizeof(gemini) - 1) != 0)
        {
            return NGX_DECLINED;
        }

        rest.data = path->data + sizeof(gemini) - 1;
        rest.len = path->len - (sizeof(gemini) - 1);

        /* Vertex has no batchEmbedContents: its embeddings are :predict
         * (ngx_ai_vertex_embed_request()) */

        if (ngx_strlchr(rest.data, rest.data + rest.len, ':') == NULL
            || ngx_ai_cloud_ends(&rest, ":batchEmbedContents"))
        {
            return NGX_DECLINED;
        }

        ngx_str_set(&publisher, "google");
        ngx_str_null(&method);
    }

    len = sizeof("/v1/projects//locations//publishers//models/") - 1
          + project->len + region->len + publisher.len + rest.len
          + method.len;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    out->len = len;

    p = ngx_cpymem(p, "/v1/projects/", sizeof("/v1/projects/") - 1);
    p = ngx_cpymem(p, project->data, project->len);
    p = ngx_cpymem(p, "/locations/", sizeof("/locations/") - 1);
    p = ngx_cpymem(p, region->data, region->len);
    p = ngx_cpymem(p, "/publishers/", sizeof("/publishers/") - 1);
    p = ngx_cpymem(p, publisher.data, publisher.len);
    p = ngx_cpymem(p, "/models/", sizeof("/models/") - 1);
    p = ngx_cpymem(p, rest.data, rest.len);

    if (method.len) {                   /* gemini: in rest already */
        ngx_memcpy(p, method.data, method.len);
    }

    return NGX_OK;
}


/*
 * A project, a region or a model id in a Vertex path: letters, digits,
 * "-", "_", "." (not "." or ".." alone) and, in a model ("claude-...
 * @20241022"), "@".
 */

ngx_uint_t
ngx_ai_vertex_name(ngx_str_t *s, ngx_uint_t model)
{
    size_t      i;
    u_char      c;
    ngx_uint_t  dots;

    if (s->len == 0 || s->len > 128) {
        return 0;
    }

    dots = 0;

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if (c == '.') {
            dots++;
            continue;
        }

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'
              || (model && c == '@')))
        {
            return 0;
        }
    }

    return dots < s->len;
}


static ngx_uint_t
ngx_ai_cloud_ends(ngx_str_t *s, const char *suffix)
{
    size_t  n;

    n = ngx_strlen(suffix);

    return s->len >= n
           && ngx_strncmp(s->data + s->len - n, suffix, n) == 0;
}


/* Anthropic on Vertex: no "model" in the body, "anthropic_version" in it */

ngx_int_t
ngx_ai_vertex_anthropic_body(ngx_pool_t *pool, ngx_str_t *body,
    ngx_str_t *out)
{
    cJSON  *root;

    root = ngx_ai_json_parse(pool, body->data, body->len);

    if (!cJSON_IsObject(root)) {
        return NGX_ERROR;
    }

    cJSON_DeleteItemFromObjectCaseSensitive(root, "model");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "anthropic_version");

    if (cJSON_AddStringToObject(root, "anthropic_version",
                                NGX_AI_VERTEX_ANTHROPIC_VERSION)
        == NULL)
    {
        return NGX_ERROR;
    }

    return ngx_ai_json_print(pool, root, out);
}


/*
 * A service account key file (the JSON Google hands out): its
 * client_email, private_key (PEM), private_key_id and token_uri.
 * NGX_DECLINED: not one (*why says what is missing).
 */

ngx_int_t
ngx_ai_service_account_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_ai_service_account_t *sa, const char **why)
{
    cJSON       *root, *v;
    ngx_uint_t   i;
    ngx_str_t   *field[4];

    static const char  *names[] = {
        "client_email", "private_key", "private_key_id", "token_uri"
    };

    root = ngx_ai_json_parse(pool, p, len);

    if (!cJSON_IsObject(root)) {
        *why = "is not JSON";
        return NGX_DECLINED;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "type");

    if (!cJSON_IsString(v)
        || ngx_strcmp(v->valuestring, "service_account") != 0)
    {
        *why = "is no service account key (\"type\" is not "
               "\"service_account\")";
        return NGX_DECLINED;
    }

    field[0] = &sa->client_email;
    field[1] = &sa->private_key;
    field[2] = &sa->private_key_id;
    field[3] = &sa->token_uri;

    for (i = 0; i < 4; i++) {
        v = cJSON_GetObjectItemCaseSensitive(root, names[i]);

        if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {

            if (i == 2) {
                ngx_str_null(field[i]);
                continue;
            }

            if (i == 3) {
                ngx_str_set(field[i], NGX_AI_VERTEX_TOKEN_URI);
                continue;
            }

            *why = (i == 0) ? "has no \"client_email\""
                            : "has no \"private_key\"";
            return NGX_DECLINED;
        }

        field[i]->len = ngx_strlen(v->valuestring);
        field[i]->data = ngx_pnalloc(pool, field[i]->len + 1);
        if (field[i]->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(field[i]->data, v->valuestring, field[i]->len + 1);

        if (i == 1) {
            /* one copy of the key only: the caller wipes it after use */
            ngx_memzero(v->valuestring, field[i]->len);
        }
    }

    return NGX_OK;
}


/* base64url without padding (RFC 7515, 2) */

ngx_int_t
ngx_ai_base64url(ngx_pool_t *pool, const u_char *src, size_t len,
    ngx_str_t *out)
{
    u_char  *d;
    size_t   i;

    static u_char  b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    d = ngx_pnalloc(pool, (len + 2) / 3 * 4);
    if (d == NULL) {
        return NGX_ERROR;
    }

    out->data = d;

    for (i = 0; i + 2 < len; i += 3) {
        *d++ = b64[src[i] >> 2];
        *d++ = b64[((src[i] & 0x03) << 4) | (src[i + 1] >> 4)];
        *d++ = b64[((src[i + 1] & 0x0f) << 2) | (src[i + 2] >> 6)];
        *d++ = b64[src[i + 2] & 0x3f];
    }

    if (len - i == 1) {
        *d++ = b64[src[i] >> 2];
        *d++ = b64[(src[i] & 0x03) << 4];

    } else if (len - i == 2) {
        *d++ = b64[src[i] >> 2];
        *d++ = b64[((src[i] & 0x03) << 4) | (src[i + 1] >> 4)];
        *d++ = b64[(src[i + 1] & 0x0f) << 2];
    }

    out->len = d - out->data;

    return NGX_OK;
}


/*
 * The JWT's signing input: base64url(header) "." base64url(claims), with
 * header {"alg":"RS256","typ":"JWT"[,"kid":KEY_ID]} and claims iss (the
 * service account), scope, aud (its token_uri), iat (now) and exp (now +
 * 3600, the longest Google takes).
 */

ngx_int_t
ngx_ai_jwt_input(ngx_pool_t *pool, ngx_ai_service_account_t *sa,
    ngx_str_t *scope, time_t now, ngx_str_t *out)
{
    u_char       *p;
    ngx_str_t     h64, c64;
    ngx_ai_jw_t   w;
    ngx_ai_buf_t  h, c;

    if (ngx_ai_buf_init(&h, pool, 128) != NGX_OK
        || ngx_ai_buf_init(&c, pool, 512) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_ai_jw_init(&w, &h);
    ngx_ai_jw_object(&w);
    ngx_ai_jw_key(&w, "alg");
    ngx_ai_jw_str(&w, "RS256");
    ngx_ai_jw_key(&w, "typ");
    ngx_ai_jw_str(&w, "JWT");

    if (sa->private_key_id.len) {
        ngx_ai_jw_key_string(&w, "kid", sa->private_key_id.data,
                             sa->private_key_id.len);
    }

    ngx_ai_jw_end(&w);

    if (ngx_ai_jw_done(&w) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_ai_jw_init(&w, &c);
    ngx_ai_jw_object(&w);
    ngx_ai_jw_key_string(&w, "iss", sa->client_email.data,
                         sa->client_email.len);
    ngx_ai_jw_key_string(&w, "scope", scope->data, scope->len);
    ngx_ai_jw_key_string(&w, "aud", sa->token_uri.data, sa->token_uri.len);
    ngx_ai_jw_key_uint(&w, "iat", (uint64_t) now);
    ngx_ai_jw_key_uint(&w, "exp", (uint64_t) now + NGX_AI_JWT_LIFETIME);
    ngx_ai_jw_end(&w);

    if (ngx_ai_jw_done(&w) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_base64url(pool, h.data, h.len, &h64) != NGX_OK
        || ngx_ai_base64url(pool, c.data, c.len, &c64) != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->len = h64.len + 1 + c64.len;
    out->data = ngx_pnalloc(pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, h64.data, h64.len);
    *p++ = '.';
    ngx_memcpy(p, c64.data, c64.len);

    return NGX_OK;
}


/*
 * The token endpoint's form body: the JWT bearer grant with the signed
 * JWT (its characters are base64url and ".": nothing to escape).
 */

ngx_int_t
ngx_ai_jwt_grant(ngx_pool_t *pool, ngx_str_t *input, u_char *sig,
    size_t siglen, ngx_str_t *out)
{
    u_char     *p;
    ngx_str_t   s64;

    static const char  grant[] =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
        "&assertion=";

    if (ngx_ai_base64url(pool, sig, siglen, &s64) != NGX_OK) {
        return NGX_ERROR;
    }

    out->len = sizeof(grant) - 1 + input->len + 1 + s64.len;
    out->data = ngx_pnalloc(pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, grant, sizeof(grant) - 1);
    p = ngx_cpymem(p, input->data, input->len);
    *p++ = '.';
    ngx_memcpy(p, s64.data, s64.len);

    return NGX_OK;
}


/*
 * The token endpoint's answer: {"access_token":"...","expires_in":N,
 * "token_type":"Bearer"}.  The token goes into a header: printable ASCII
 * without spaces, at most NGX_AI_MAX_ACCESS_TOKEN bytes; expires_in a
 * whole number of seconds, 1 to a day.  NGX_DECLINED: not such an answer
 * (*why says why; never the token).
 */

ngx_int_t
ngx_ai_oauth_token_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *token, time_t *expires_in, const char **why)
{
    cJSON   *root, *v;
    size_t   i, n;
    double   d;

    root = ngx_ai_json_parse(pool, p, len);

    if (!cJSON_IsObject(root)) {
        *why = "the token endpoint's answer is not a JSON object";
        return NGX_DECLINED;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "token_type");

    if (v && (!cJSON_IsString(v)
              || ngx_strlen(v->valuestring) != 6
              || !ngx_ai_strncaseeq((u_char *) v->valuestring, "bearer", 6)))
    {
        *why = "the token endpoint's token is no Bearer token";
        return NGX_DECLINED;
    }

    v = cJSON_GetObjectItemCaseSensitive(root, "access_token");

    if (!cJSON_IsString(v)) {
        *why = "the token endpoint's answer has no access_token";
        return NGX_DECLINED;
    }

    n = ngx_strlen(v->valuestring);

    if (n == 0 || n > NGX_AI_MAX_ACCESS_TOKEN) {
        *why = "the token endpoint's access_token is empty or too long";
        return NGX_DECLINED;
    }

    for (i = 0; i < n; i++) {
        if ((u_char) v->valuestring[i] <= 0x20
            || (u_char) v->valuestring[i] >= 0x7f)
        {
            *why = "the token endpoint's access_token holds spaces or "
                   "control characters";
            return NGX_DECLINED;
        }
    }

    token->len = n;
    token->data = (u_char *) v->valuestring;

    v = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    d = cJSON_IsNumber(v) ? v->valuedouble : -1;

    if (!(d >= 1 && d <= 86400) || d != (double) (time_t) d) {
        *why = "the token endpoint's expires_in is not 1 to 86400 seconds";
        return NGX_DECLINED;
    }

    *expires_in = (time_t) d;

    return NGX_OK;
}


/*
 * Embeddings on Vertex AI: the publisher model's :predict, not Gemini's
 * batchEmbedContents:
 *   {"instances":[{"content":TEXT},...],
 *    "parameters":{"autoTruncate":false[,"outputDimensionality":D]}}
 * autoTruncate false: an input past the model's window is refused, as
 * OpenAI refuses it, rather than embedded cut short.  Token arrays have no
 * Vertex form: 400.
 */

ngx_int_t
ngx_ai_vertex_embed_request(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *out, ngx_ai_error_t *err)
{
    cJSON         *root, *instances, *params, *input, *item, *dims;
    ngx_int_t      rc;
    ngx_ai_buf_t   path;

    input = ngx_ai_embed_texts(req, err);
    if (input == NULL) {
        return NGX_DECLINED;
    }

    dims = cJSON_GetObjectItemCaseSensitive(req->json, "dimensions");

    /* Gemini's path form; the provider puts it under the project */

    if (ngx_ai_buf_init(&path, pool, 32 + req->upstream_model.len) != NGX_OK
        || ngx_ai_buf_append_str(&path, "/v1beta/models/") != NGX_OK
        || ngx_ai_buf_append(&path, req->upstream_model.data,
                             req->upstream_model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&path, ":predict") != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->path.data = path.data;
    out->path.len = path.len;

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    instances = cJSON_CreateArray();
    if (ngx_ai_json_add(root, "instances", instances) != NGX_OK) {
        goto done;
    }

    for (item = ngx_ai_embed_next(input, NULL);
         item;
         item = ngx_ai_embed_next(input, item))
    {
        if (ngx_ai_vertex_instance(instances, item) != NGX_OK) {
            goto done;
        }
    }

    params = cJSON_CreateObject();

    if (ngx_ai_json_add(root, "parameters", params) != NGX_OK
        || ngx_ai_json_add(params, "autoTruncate", cJSON_CreateFalse())
           != NGX_OK)
    {
        goto done;
    }

    if (ngx_ai_embed_dims(params, "outputDimensionality", dims) != NGX_OK) {
        goto done;
    }

    rc = ngx_ai_json_print(pool, root, &out->body);

done:

    cJSON_Delete(root);

    return rc;
}


static ngx_int_t
ngx_ai_vertex_instance(cJSON *instances, cJSON *text)
{
    cJSON  *instance;

    instance = cJSON_CreateObject();

    if (ngx_ai_json_add(instances, NULL, instance) != NGX_OK
        || ngx_ai_json_add_ref(instance, "content", text->valuestring)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * {"predictions":[{"embeddings":{"values":[...],"statistics":
 * {"token_count":N,"truncated":false}}},...]} -> OpenAI's list.  The
 * usage is the sum of the token counts, exact; an answer without every
 * count is charged the estimate, marked as one.
 */

ngx_int_t
ngx_ai_vertex_embed_response(ngx_pool_t *pool, ngx_ai_chat_request_t *req,
    u_char *body, size_t len, ngx_ai_response_t *out, ngx_ai_error_t *err)
{
    cJSON         *root, *list, *item, *emb, *values;
    uint64_t       tokens, n;
    ngx_int_t      rc;
    ngx_uint_t     i, base64, counted;
    ngx_ai_jw_t    w;
    ngx_ai_buf_t   b;

    ngx_memzero(out, sizeof(ngx_ai_response_t));

    root = ngx_ai_json_parse(pool, body, len);
    list = cJSON_GetObjectItemCaseSensitive(root, "predictions");

    base64 = ngx_ai_embed_base64(req);

    rc = ngx_ai_embed_start(&w, &b, pool, req, list, len, err);
    if (rc != NGX_OK) {
        return rc;
    }

    i = 0;
    tokens = 0;
    counted = 1;

    cJSON_ArrayForEach(item, list) {
        emb = cJSON_GetObjectItemCaseSensitive(item, "embeddings");
        values = cJSON_GetObjectItemCaseSensitive(emb, "values");

        rc = ngx_ai_embed_vector(&w, pool, i++, values, base64, 0, err);
        if (rc != NGX_OK) {
            return rc;
        }

        if (ngx_ai_json_get_uint(cJSON_GetObjectItemCaseSensitive(emb,
                                                              "statistics"),
                                 "token_count", &n)
            != NGX_OK
            || n > NGX_AI_MAX_EMBED_TOKENS)
        {
            counted = 0;
            continue;
        }

        tokens += n;
    }

    return ngx_ai_embed_finish(&w, req, counted, tokens, out);
}
