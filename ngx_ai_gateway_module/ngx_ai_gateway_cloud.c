
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
