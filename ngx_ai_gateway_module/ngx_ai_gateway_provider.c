
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Providers and prices: ai_provider, ai_price and ai_unpriced, the
 * lookups of a provider and of a model's price, a provider's key for a
 * call, "provider/model" names, and the label a model is counted under.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


typedef struct {
    ngx_str_t                   name;
    ngx_ai_translator_t        *translator;
    ngx_uint_t                  cloud;
} ngx_http_ai_type_t;


static char *ngx_http_ai_provider_key(ngx_conf_t *cf,
    ngx_http_ai_provider_t *p, ngx_str_t *value);
static ngx_int_t ngx_http_ai_key_valid(ngx_str_t *key);
static char *ngx_http_ai_provider_azure(ngx_conf_t *cf,
    ngx_http_ai_provider_t *p, ngx_str_t *value);
static char *ngx_http_ai_provider_deployments(ngx_conf_t *cf,
    ngx_http_ai_provider_t *p, ngx_str_t *value);
static ngx_uint_t ngx_http_ai_cloud_name(ngx_str_t *s, ngx_uint_t colon);
static ngx_int_t ngx_http_ai_provider_vertex(ngx_pool_t *pool,
    ngx_http_ai_provider_t *p, ngx_ai_chat_request_t *req,
    ngx_ai_upstream_request_t *up, ngx_ai_error_t *err);

static char *ngx_http_ai_provider_token(ngx_conf_t *cf,
    ngx_http_ai_provider_t *p, ngx_str_t *value);
static char *ngx_http_ai_provider_aws(ngx_conf_t *cf,
    ngx_http_ai_provider_t *p);



static ngx_http_ai_type_t  ngx_http_ai_types[] = {
    { ngx_string("openai"), &ngx_ai_openai_translator, 0 },
    { ngx_string("anthropic"), &ngx_ai_anthropic_translator, 0 },
    { ngx_string("gemini"), &ngx_ai_gemini_translator, 0 },
    { ngx_string("azure"), &ngx_ai_openai_translator,
      NGX_HTTP_AI_CLOUD_AZURE },
    { ngx_string("vertex"), &ngx_ai_gemini_translator,
      NGX_HTTP_AI_CLOUD_VERTEX },
    { ngx_string("bedrock"), &ngx_ai_bedrock_translator, 0 },
    { ngx_null_string, NULL, 0 }
};


/*
 * ai_provider NAME type=openai|anthropic|gemini|azure pass=URI [key=...]
 *     azure: api_version=V [deployments=MODEL:DEPLOYMENT,...] [token=...]
 */

char *
ngx_http_ai_provider_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_main_conf_t *amcf = conf;

    char                    *rv;
    u_char                  *c;
    ngx_str_t               *value, s;
    ngx_uint_t               i, j;
    ngx_http_ai_type_t      *t;
    ngx_http_ai_provider_t  *p;

    value = cf->args->elts;

    for (c = value[1].data; c < value[1].data + value[1].len; c++) {
        if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z')
            && !(*c >= '0' && *c <= '9') && *c != '-' && *c != '_'
            && *c != '.')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid provider name \"%V\": use letters, "
                               "digits, \"-\", \"_\" and \".\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0 || value[1].len > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid provider name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_find_provider(amcf, &value[1])) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate ai_provider \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    p = ngx_array_push(&amcf->providers);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(p, sizeof(ngx_http_ai_provider_t));
    p->name = value[1];
    p->translator = &ngx_ai_openai_translator;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "type=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            for (t = ngx_http_ai_types, j = 0; t[j].translator; j++) {
                if (t[j].name.len == s.len
                    && ngx_strncmp(t[j].name.data, s.data, s.len) == 0)
                {
                    break;
                }
            }

            if (t[j].translator == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid provider type \"%V\": expected "
                                   "openai, anthropic, gemini, azure, vertex "
                                   "or bedrock",
                                   &s);
                return NGX_CONF_ERROR;
            }

            p->translator = t[j].translator;
            p->cloud = t[j].cloud;
            continue;
        }

        if (ngx_strncmp(value[i].data, "pass=", 5) == 0) {
            p->pass.data = value[i].data + 5;
            p->pass.len = value[i].len - 5;

            if (p->pass.len < 2 || p->pass.data[0] != '/'
                || p->pass.data[p->pass.len - 1] == '/')
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": pass= takes a location "
                                   "prefix like /_ai/openai (starting with "
                                   "\"/\", no trailing \"/\")", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0
            || ngx_strncmp(value[i].data, "token=", 6) == 0)
        {
            if (p->key.len || p->key_value) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_provider \"%V\" takes one key= "
                                   "or token=", &p->name);
                return NGX_CONF_ERROR;
            }

            p->bearer = (value[i].data[0] == 't');
            s.data = value[i].data + (p->bearer ? 6 : 4);
            s.len = value[i].len - (p->bearer ? 6 : 4);

            if (ngx_http_ai_provider_key(cf, p, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "api_version=", 12) == 0
            || ngx_strncmp(value[i].data, "deployments=", 12) == 0)
        {
            if (ngx_http_ai_provider_azure(cf, p, &value[i])
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "region=", 7) == 0) {
            p->region.data = value[i].data + 7;
            p->region.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "host=", 5) == 0) {
            p->host.data = value[i].data + 5;
            p->host.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "session_token=", 14) == 0) {
            s.data = value[i].data + 14;
            s.len = value[i].len - 14;

            if (ngx_http_ai_provider_token(cf, p, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        rv = ngx_http_ai_vertex_option(cf, p, &value[i]);

        if (rv != (char *) NGX_DECLINED) {
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": ai_provider takes "
                           "type=, pass=, key=, for type=azure "
                           "api_version=, deployments= and token=, for "
                           "type=vertex project=, region=, publisher=, "
                           "credentials= and token_pass=, for "
                           "type=bedrock region=, session_token= and "
                           "host=", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (p->cloud == NGX_HTTP_AI_CLOUD_VERTEX) {
        if (ngx_http_ai_vertex_check(cf, p) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        if (p->key.len || p->key_value) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_provider \"%V\": type=vertex takes "
                               "credentials=, not key=", &value[1]);
            return NGX_CONF_ERROR;
        }

    } else if (p->vertex) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": project=, region=, "
                           "publisher=, credentials= and token_pass= are "
                           "for type=vertex", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (p->cloud == NGX_HTTP_AI_CLOUD_AZURE && p->api_version.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": type=azure needs "
                           "api_version= (e.g. 2024-10-21, or v1)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (p->cloud != NGX_HTTP_AI_CLOUD_AZURE
        && (p->bearer || p->api_version.len || p->deployments))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": api_version=, deployments= "
                           "and token= are for type=azure", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (p->pass.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\" needs pass=/internal/location",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_provider_aws(cf, p) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    p->other.len = p->name.len + 2;
    p->other.data = ngx_pnalloc(cf->pool, p->other.len);
    if (p->other.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(p->other.data, p->name.data, p->name.len), "/*", 2);

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_provider_key(ngx_conf_t *cf, ngx_http_ai_provider_t *p,
    ngx_str_t *value)
{
    u_char                            *q;
    ngx_int_t                          rc;
    ngx_http_ai_secret_opts_t          o;
    ngx_http_compile_complex_value_t   ccv;

    o.what.len = sizeof("ai_provider \"\"") - 1 + p->name.len;
    o.what.data = ngx_pnalloc(cf->pool, o.what.len);
    if (o.what.data == NULL) {
        return NGX_CONF_ERROR;
    }

    q = ngx_cpymem(o.what.data, "ai_provider \"", sizeof("ai_provider \"") - 1);
    q = ngx_cpymem(q, p->name.data, p->name.len);
    *q = '"';

    o.file = "key file ";
    o.max = NGX_HTTP_AI_MAX_KEY_LEN;
    o.unset = ", requests to this provider are sent without a key";

    rc = ngx_http_ai_secret_read(cf, value, &o, &p->key);

    if (rc == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (rc == NGX_DECLINED) {

        if (ngx_http_script_variables_count(value) == 0) {
            p->key = *value;

        } else {
            p->key_value = ngx_palloc(cf->pool,
                                      sizeof(ngx_http_complex_value_t));
            if (p->key_value == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = value;
            ccv.complex_value = p->key_value;

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            return NGX_CONF_OK;
        }
    }

    if (!ngx_http_ai_key_valid(&p->key)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": the key holds control "
                           "characters or spaces", &p->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* api_version=V, deployments=MODEL:DEPLOYMENT,... (type=azure) */

static char *
ngx_http_ai_provider_azure(ngx_conf_t *cf, ngx_http_ai_provider_t *p,
    ngx_str_t *value)
{
    ngx_str_t  s;

    s.data = value->data + 12;
    s.len = value->len - 12;

    if (value->data[0] == 'd') {
        return ngx_http_ai_provider_deployments(cf, p, &s);
    }

    if (s.len == 0 || s.len > 64 || !ngx_http_ai_cloud_name(&s, 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": api_version= takes a version "
                           "like 2024-10-21 or v1", value);
        return NGX_CONF_ERROR;
    }

    p->api_version = s;

    return NGX_CONF_OK;
}


/* session_token=: env:VAR, file:PATH or the token */

static char *
ngx_http_ai_provider_token(ngx_conf_t *cf, ngx_http_ai_provider_t *p,
    ngx_str_t *value)
{
    u_char                     *q;
    ngx_int_t                   rc;
    ngx_http_ai_secret_opts_t   o;

    o.what.len = sizeof("ai_provider \"\"") - 1 + p->name.len;
    o.what.data = ngx_pnalloc(cf->pool, o.what.len);
    if (o.what.data == NULL) {
        return NGX_CONF_ERROR;
    }

    q = ngx_cpymem(o.what.data, "ai_provider \"", sizeof("ai_provider \"") - 1);
    q = ngx_cpymem(q, p->name.data, p->name.len);
    *q = '"';

    o.file = "session token file ";
    o.max = NGX_HTTP_AI_MAX_KEY_LEN;
    o.unset = ", requests to this provider are signed without a session "
              "token";

    rc = ngx_http_ai_secret_read(cf, value, &o, &p->session_token);

    if (rc == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (rc == NGX_DECLINED) {
        p->session_token = *value;
    }

    if (!ngx_http_ai_key_valid(&p->session_token)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": the session token holds "
                           "control characters or spaces", &p->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_provider_deployments(ngx_conf_t *cf, ngx_http_ai_provider_t *p,
    ngx_str_t *value)
{
    u_char        *c, *end, *comma, *colon;
    ngx_str_t      item;
    ngx_keyval_t  *kv;

    if (p->deployments == NULL) {
        p->deployments = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
        if (p->deployments == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    end = value->data + value->len;

    for (c = value->data; c <= end; c = comma + 1) {
        comma = ngx_strlchr(c, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        item.data = c;
        item.len = comma - c;

        /* the last colon: a model name may hold one, a deployment not */

        for (colon = comma; colon > c && colon[-1] != ':'; colon--) {
            /* void */
        }

        if (colon <= c + 1 || colon == comma) {
            goto invalid;
        }

        kv = ngx_array_push(p->deployments);
        if (kv == NULL) {
            return NGX_CONF_ERROR;
        }

        kv->key.data = c;
        kv->key.len = colon - 1 - c;
        kv->value.data = colon;
        kv->value.len = comma - colon;

        if (kv->value.len > 64 || !ngx_http_ai_cloud_name(&kv->value, 0)
            || !ngx_http_ai_cloud_name(&kv->key, 1))
        {
            goto invalid;
        }

        /* the translator needs a NUL after an upstream model (v1 form) */

        kv->value.data = ngx_pnalloc(cf->pool, kv->value.len + 1);
        if (kv->value.data == NULL) {
            return NGX_CONF_ERROR;
        }

        *ngx_cpymem(kv->value.data, colon, kv->value.len) = '\0';
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid deployments= entry \"%V\": use "
                       "MODEL:DEPLOYMENT (a deployment: letters, digits, "
                       "\"-\", \"_\" and \".\", at most 64)", &item);
    return NGX_CONF_ERROR;
}


/* letters, digits, "-", "_", "." (and, for a model, ":", "/", "*") */

static ngx_uint_t
ngx_http_ai_cloud_name(ngx_str_t *s, ngx_uint_t model)
{
    size_t  i;
    u_char  c;

    if (s->len == 0) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')
        {
            continue;
        }

        if (model && (c == ':' || c == '/' || c == '*')) {
            continue;
        }

        return 0;
    }

    return 1;
}


/*
 * Before the translator: on Azure's v1 API the body's model is the
 * deployment.
 */

ngx_int_t
ngx_http_ai_provider_prepare(ngx_http_ai_provider_t *p,
    ngx_ai_chat_request_t *req)
{
    ngx_str_t  d;

    if (p->cloud != NGX_HTTP_AI_CLOUD_AZURE
        || !ngx_ai_azure_v1(&p->api_version))
    {
        return NGX_OK;
    }

    ngx_ai_azure_deployment(p->deployments ? p->deployments->elts : NULL,
                            p->deployments ? p->deployments->nelts : 0,
                            &req->upstream_model, &d);

    req->upstream_model = d;

    return NGX_OK;
}


/*
 * After the translator: the cloud's path for the translator's one.
 * NGX_DECLINED: the model cannot go there (err, a 400, says why).
 */

ngx_int_t
ngx_http_ai_provider_path(ngx_pool_t *pool, ngx_http_ai_provider_t *p,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *up,
    ngx_ai_error_t *err)
{
    ngx_str_t  d, path;
    ngx_int_t  rc;

    if (p->cloud == NGX_HTTP_AI_CLOUD_VERTEX) {
        return ngx_http_ai_provider_vertex(pool, p, req, up, err);
    }

    if (p->cloud != NGX_HTTP_AI_CLOUD_AZURE) {
        return NGX_OK;
    }

    ngx_ai_azure_deployment(p->deployments ? p->deployments->elts : NULL,
                            p->deployments ? p->deployments->nelts : 0,
                            &req->upstream_model, &d);

    rc = ngx_ai_azure_path(pool, &up->path, &d, &p->api_version, &path);

    if (rc == NGX_DECLINED) {
        ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                         "model", "invalid_model",
                         "the model names no valid Azure deployment "
                         "(letters, digits, \"-\", \"_\", \".\"): "
                         "map it with deployments=");
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    up->path = path;

    return NGX_OK;
}


/*
 * Vertex AI: the publisher's path for the model; Anthropic's body without
 * its model and with Vertex's anthropic_version.  Vertex has no Gemini
 * batchEmbedContents (its embeddings are :predict) and no Anthropic
 * count_tokens: a 400.
 */

static ngx_int_t
ngx_http_ai_provider_vertex(ngx_pool_t *pool, ngx_http_ai_provider_t *p,
    ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *up,
    ngx_ai_error_t *err)
{
    ngx_int_t              rc;
    ngx_str_t              path, body;
    ngx_http_ai_vertex_t  *v;

    v = p->vertex;

    rc = ngx_ai_vertex_path(pool, &up->path, &v->project, &v->region,
                            v->anthropic, &req->upstream_model, req->stream,
                            &path);

    if (rc == NGX_DECLINED) {
        ngx_ai_error_set(err, NGX_HTTP_BAD_REQUEST, "invalid_request_error",
                         "model", "unsupported_on_vertex",
                         "Vertex AI takes no such call for this model (no "
                         "token counts for Anthropic models, or a model id "
                         "that is not one)");
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    up->path = path;

    if (!v->anthropic) {
        return NGX_OK;
    }

    if (ngx_ai_vertex_anthropic_body(pool, &up->body, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    up->body = body;

    return NGX_OK;
}


/*
 * type=bedrock: region= is required, the key is ACCESS_KEY_ID:SECRET, the
 * Host signed is bedrock-runtime.REGION.amazonaws.com unless host= says
 * otherwise; the other types take none of these.
 */

static char *
ngx_http_ai_provider_aws(ngx_conf_t *cf, ngx_http_ai_provider_t *p)
{
    u_char  *c, *q;

    if (p->translator->type != NGX_AI_PROVIDER_BEDROCK) {
        if ((p->region.len && p->cloud != NGX_HTTP_AI_CLOUD_VERTEX)
            || p->host.len || p->session_token.len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_provider \"%V\": region=, host= and "
                               "session_token= are for type=bedrock "
                               "(region= also for type=vertex)", &p->name);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    for (c = p->region.data; c < p->region.data + p->region.len; c++) {
        if (!(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9')
            && *c != '-')
        {
            break;
        }
    }

    if (p->region.len == 0 || p->region.len > 32
        || c != p->region.data + p->region.len)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": type=bedrock needs "
                           "region= like us-east-1", &p->name);
        return NGX_CONF_ERROR;
    }

    if (p->key_value == NULL && p->key.len
        && (ngx_strlchr(p->key.data, p->key.data + p->key.len, ':') == NULL
            || p->key.data[0] == ':'
            || p->key.data[p->key.len - 1] == ':'
            || p->key.len > NGX_AI_SIGV4_MAX_SECRET + 128))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": a type=bedrock key is "
                           "ACCESS_KEY_ID:SECRET_ACCESS_KEY", &p->name);
        return NGX_CONF_ERROR;
    }

    if (p->host.len == 0) {
        p->host.len = sizeof("bedrock-runtime..amazonaws.com") - 1
                      + p->region.len;
        p->host.data = ngx_pnalloc(cf->pool, p->host.len);
        if (p->host.data == NULL) {
            return NGX_CONF_ERROR;
        }

        q = ngx_cpymem(p->host.data, "bedrock-runtime.",
                       sizeof("bedrock-runtime.") - 1);
        q = ngx_cpymem(q, p->region.data, p->region.len);
        ngx_memcpy(q, ".amazonaws.com", sizeof(".amazonaws.com") - 1);

    } else if (!ngx_http_ai_key_valid(&p->host)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": invalid host=", &p->name);
        return NGX_CONF_ERROR;
    }

    p->sigkey = ngx_pcalloc(cf->pool, sizeof(ngx_ai_sigv4_key_t));
    if (p->sigkey == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a key goes into a request header: nothing that could end or split it */

static ngx_int_t
ngx_http_ai_key_valid(ngx_str_t *key)
{
    size_t  i;

    for (i = 0; i < key->len; i++) {
        if (key->data[i] <= 0x20 || key->data[i] >= 0x7f) {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_http_ai_provider_key_value(ngx_http_request_t *r,
    ngx_http_ai_provider_t *p, ngx_str_t *key)
{
    if (p->key_value == NULL) {
        *key = p->key;
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, p->key_value, key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key->len > NGX_HTTP_AI_MAX_KEY_LEN || !ngx_http_ai_key_valid(key)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_provider \"%V\": the key variable's value is not "
                      "a valid key", &p->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_http_ai_provider_t *
ngx_http_ai_find_provider(ngx_http_ai_main_conf_t *amcf, ngx_str_t *name)
{
    ngx_uint_t               i;
    ngx_http_ai_provider_t  *p;

    p = amcf->providers.elts;

    for (i = 0; i < amcf->providers.nelts; i++) {
        if (p[i].name.len == name->len
            && ngx_strncmp(p[i].name.data, name->data, name->len) == 0)
        {
            return &p[i];
        }
    }

    return NULL;
}


/* ai_price provider/model INPUT OUTPUT   (USD per 1M tokens) */

char *
ngx_http_ai_price_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_main_conf_t *amcf = conf;

    u_char               *slash, *star;
    ngx_str_t            *value, provider;
    ngx_uint_t            i;
    ngx_http_ai_price_t  *price;

    value = cf->args->elts;

    slash = ngx_strlchr(value[1].data, value[1].data + value[1].len, '/');

    if (slash == NULL
        || !ngx_ai_model_name_valid(value[1].data, value[1].len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid model \"%V\": ai_price takes "
                           "provider/model", &value[1]);
        return NGX_CONF_ERROR;
    }

    provider.data = value[1].data;
    provider.len = slash - value[1].data;

    price = amcf->prices.elts;

    for (i = 0; i < amcf->prices.nelts; i++) {
        if (price[i].model.len == value[1].len
            && ngx_strncmp(price[i].model.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate ai_price for \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    price = ngx_array_push(&amcf->prices);
    if (price == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(price, sizeof(ngx_http_ai_price_t));

    price->model = value[1];
    price->provider = ngx_http_ai_find_provider(amcf, &provider);

    star = ngx_strlchr(slash, value[1].data + value[1].len, '*');

    if (star) {
        if (star != value[1].data + value[1].len - 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid model \"%V\": a price family is "
                               "\"provider/prefix*\", with \"*\" last",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        price->family = 1;
    }

    if (price->provider == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_price \"%V\": unknown provider \"%V\" "
                           "(declare it with ai_provider before ai_price)",
                           &value[1], &provider);
        return NGX_CONF_ERROR;
    }

    if (!price->family && ngx_http_ai_model_known(cf, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < 4; i++) {
        if (ngx_http_ai_parse_usd(value[i].data, value[i].len,
                                  NGX_HTTP_AI_MAX_PRICE,
                                  i == 2 ? &price->input : &price->output)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid price \"%V\": expected USD per 1M "
                               "tokens like 2.50 (at most 9 decimals)",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    price->input_text = value[2];
    price->output_text = value[3];

    return NGX_CONF_OK;
}


/* ai_unpriced refuse | free | default=IN,OUT   (USD per 1M tokens) */

char *
ngx_http_ai_unpriced_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_loc_conf_t *alcf = conf;

    u_char               *comma;
    ngx_str_t            *value, in, out;
    ngx_http_ai_price_t  *price;

    if (alcf->unpriced != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 6 && ngx_strncmp(value[1].data, "refuse", 6) == 0) {
        alcf->unpriced = NGX_HTTP_AI_UNPRICED_REFUSE;
        alcf->unpriced_price = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len == 4 && ngx_strncmp(value[1].data, "free", 4) == 0) {
        alcf->unpriced = NGX_HTTP_AI_UNPRICED_FREE;
        alcf->unpriced_price = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len < 8 || ngx_strncmp(value[1].data, "default=", 8) != 0) {
        goto invalid;
    }

    in.data = value[1].data + 8;
    comma = ngx_strlchr(in.data, value[1].data + value[1].len, ',');

    if (comma == NULL) {
        goto invalid;
    }

    in.len = comma - in.data;
    out.data = comma + 1;
    out.len = value[1].data + value[1].len - out.data;

    price = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_price_t));
    if (price == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_parse_usd(in.data, in.len, NGX_HTTP_AI_MAX_PRICE,
                              &price->input)
        != NGX_OK
        || ngx_http_ai_parse_usd(out.data, out.len, NGX_HTTP_AI_MAX_PRICE,
                                 &price->output)
           != NGX_OK)
    {
        goto invalid;
    }

    ngx_str_set(&price->model, "unpriced");
    price->input_text = in;
    price->output_text = out;

    alcf->unpriced = NGX_HTTP_AI_UNPRICED_DEFAULT;
    alcf->unpriced_price = price;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid \"%V\": ai_unpriced takes refuse, free or "
                       "default=IN,OUT (USD per 1M tokens, e.g. "
                       "default=2.50,10.00)", &value[1]);
    return NGX_CONF_ERROR;
}


/*
 * A model's ai_price: its own, else the family ("provider/prefix*") with
 * the longest prefix of its name; NULL: none.
 */

ngx_http_ai_price_t *
ngx_http_ai_find_price(ngx_http_ai_main_conf_t *amcf, ngx_str_t *model)
{
    size_t                len;
    ngx_uint_t            i;
    ngx_http_ai_price_t  *price, *family;

    price = amcf->prices.elts;
    family = NULL;

    for (i = 0; i < amcf->prices.nelts; i++) {

        if (price[i].family) {
            len = price[i].model.len - 1;

            if (model->len >= len
                && ngx_strncmp(price[i].model.data, model->data, len) == 0
                && (family == NULL || family->model.len < len + 1))
            {
                family = &price[i];
            }

            continue;
        }

        if (price[i].model.len == model->len
            && ngx_strncmp(price[i].model.data, model->data, model->len) == 0)
        {
            return &price[i];
        }
    }

    return family;
}


/* a model's price in r's location: its ai_price, else ai_unpriced
 * default=; NULL: none */

ngx_http_ai_price_t *
ngx_http_ai_price_here(ngx_http_request_t *r, ngx_str_t *model)
{
    ngx_http_ai_price_t      *price;
    ngx_http_ai_loc_conf_t   *alcf;
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_module);

    price = ngx_http_ai_find_price(amcf, model);

    if (price) {
        return price;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_module);

    return (alcf->unpriced == NGX_HTTP_AI_UNPRICED_DEFAULT)
           ? alcf->unpriced_price : NULL;
}


/*
 * What the ledger and the metrics call a model: its name when the
 * configuration names it (ai_price, ai_fallback, ai_pool), the family
 * that prices it, else the provider's "other" label (its name, a slash
 * and a star): names a client makes up do not each become a series.
 */

void
ngx_http_ai_model_label(ngx_http_ai_main_conf_t *amcf,
    ngx_http_ai_provider_t *provider, ngx_str_t *name, ngx_str_t *label)
{
    ngx_uint_t            i;
    ngx_str_t            *known;
    ngx_http_ai_price_t  *price;

    known = amcf->models.elts;

    for (i = 0; i < amcf->models.nelts; i++) {
        if (known[i].len == name->len
            && ngx_strncmp(known[i].data, name->data, name->len) == 0)
        {
            *label = known[i];
            return;
        }
    }

    price = ngx_http_ai_find_price(amcf, name);

    *label = price ? price->model : provider->other;
}


/* a model named by the configuration, for ngx_http_ai_model_label() */

ngx_int_t
ngx_http_ai_model_known(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                i;
    ngx_str_t                *known;
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);

    known = amcf->models.elts;

    for (i = 0; i < amcf->models.nelts; i++) {
        if (known[i].len == name->len
            && ngx_strncmp(known[i].data, name->data, name->len) == 0)
        {
            return NGX_OK;
        }
    }

    known = ngx_array_push(&amcf->models);
    if (known == NULL) {
        return NGX_ERROR;
    }

    *known = *name;

    return NGX_OK;
}


/* the keys a provider could echo back (ngx_http_ai_attempt_scrub) */

ngx_int_t
ngx_http_ai_provider_init(ngx_conf_t *cf)
{
    u_char                   *q;
    ngx_uint_t                i;
    ngx_str_t                *secret;
    ngx_http_ai_provider_t   *p;
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);
    p = amcf->providers.elts;

    for (i = 0; i < amcf->providers.nelts; i++) {
        if (p[i].key.len == 0) {
            continue;
        }

        secret = ngx_array_push(&amcf->secrets);
        if (secret == NULL) {
            return NGX_ERROR;
        }

        *secret = p[i].key;

        /* type=bedrock: the secret alone, and the session token */

        if (p[i].sigkey) {
            q = ngx_strlchr(p[i].key.data, p[i].key.data + p[i].key.len,
                            ':');

            if (q) {
                secret = ngx_array_push(&amcf->secrets);
                if (secret == NULL) {
                    return NGX_ERROR;
                }

                secret->data = q + 1;
                secret->len = p[i].key.data + p[i].key.len - (q + 1);
            }
        }

        if (p[i].session_token.len) {
            secret = ngx_array_push(&amcf->secrets);
            if (secret == NULL) {
                return NGX_ERROR;
            }

            *secret = p[i].session_token;
        }
    }

    return NGX_OK;
}


/*
 * "provider/model": the configured provider and the model after the
 * slash, which the provider's wire format must be able to carry.  Names
 * come from the configuration or the request's JSON: both end with a NUL,
 * which the translators need after the upstream model.
 */

ngx_uint_t
ngx_http_ai_model_split(ngx_http_ai_main_conf_t *amcf, ngx_str_t *name,
    ngx_http_ai_model_t *m)
{
    u_char     *slash;
    ngx_str_t   provider;

    slash = ngx_strlchr(name->data, name->data + name->len, '/');

    if (slash == NULL) {
        return NGX_HTTP_AI_MODEL_NO_PROVIDER;
    }

    provider.data = name->data;
    provider.len = slash - name->data;

    m->provider = ngx_http_ai_find_provider(amcf, &provider);

    if (m->provider == NULL) {
        return NGX_HTTP_AI_MODEL_UNKNOWN_PROVIDER;
    }

    m->name = *name;
    m->upstream.data = slash + 1;
    m->upstream.len = name->data + name->len - (slash + 1);

    if (m->provider->translator->model_valid
        && !m->provider->translator->model_valid(m->upstream.data,
                                                 m->upstream.len))
    {
        return NGX_HTTP_AI_MODEL_INVALID;
    }

    return NGX_HTTP_AI_MODEL_OK;
}


/* "provider/model" from the configuration, its provider declared */

ngx_http_ai_model_t *
ngx_http_ai_model_parse(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_str_t                 provider;
    ngx_http_ai_model_t      *m;
    ngx_http_ai_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_ai_gateway_module);

    m = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_model_t));
    if (m == NULL) {
        return NULL;
    }

    if (!ngx_ai_model_name_valid(name->data, name->len)) {
        goto invalid;
    }

    switch (ngx_http_ai_model_split(amcf, name, m)) {

    case NGX_HTTP_AI_MODEL_OK:
        break;

    case NGX_HTTP_AI_MODEL_UNKNOWN_PROVIDER:
        provider.data = name->data;
        provider.len = ngx_strlchr(name->data, name->data + name->len, '/')
                       - name->data;
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "model \"%V\": unknown provider \"%V\" (declare "
                           "it with ai_provider first)", name, &provider);
        return NULL;

    case NGX_HTTP_AI_MODEL_INVALID:
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid model \"%V\": a %V model is named with "
                           "letters, digits, \"-\", \".\" and \"_\"",
                           name, &m->provider->translator->name);
        return NULL;

    default: /* NGX_HTTP_AI_MODEL_NO_PROVIDER */
        goto invalid;
    }

    m->label = *name;

    if (ngx_http_ai_model_known(cf, name) != NGX_OK) {
        return NULL;
    }

    return m;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid model \"%V\": expected provider/model", name);
    return NULL;
}
