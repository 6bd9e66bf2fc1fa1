
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: the cloud providers' outside bytes (ngx_ai_gateway_cloud.c):
 * byte 0 picks the parser, the rest is its input.
 *   0: Google's token endpoint answer (ngx_ai_oauth_token_parse()):
 *      taken is a token of 1 to NGX_AI_MAX_ACCESS_TOKEN printable bytes
 *      without spaces inside the input's buffer's copy, expires_in 1 to
 *      86400; refused has a reason;
 *   1: a service account key file (ngx_ai_service_account_parse()): taken
 *      has a client_email, a private_key and a token_uri;
 *   2: a model name (the client's) into Azure's and Vertex's paths: a path
 *      made is printable ASCII with no "?" but the api-version's, no "#",
 *      no "%", no ".." segment, and holds the model whole.
 */


#include "fuzz.h"


static void
fuzz_cloud_path_check(ngx_str_t *path, ngx_str_t *model, ngx_uint_t query)
{
    size_t      i;
    ngx_uint_t  q;

    q = 0;

    for (i = 0; i < path->len; i++) {
        if (path->data[i] < 0x21 || path->data[i] > 0x7e
            || path->data[i] == '#' || path->data[i] == '%')
        {
            fuzz_fail("cloud path: byte %02x", path->data[i]);
        }

        if (path->data[i] == '?') {
            q++;
        }
    }

    if (q > query) {
        fuzz_fail("cloud path: %lu \"?\"", (unsigned long) q);
    }

    if (memmem(path->data, path->len, "/../", 4)
        || memmem(path->data, path->len, "/./", 3))
    {
        fuzz_fail("cloud path: a dot segment");
    }

    if (model->len && !memmem(path->data, path->len, model->data, model->len))
    {
        fuzz_fail("cloud path: the model is not in it whole");
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    *buf;
    time_t                     exp;
    size_t                     i;
    ngx_int_t                  rc;
    ngx_str_t                  tok, in, model, path, v, proj;
    ngx_pool_t                *pool;
    const char                *why;
    ngx_ai_service_account_t   sa;

    if (size == 0) {
        return 0;
    }

    pool = fuzz_pool();

    buf = ngx_pnalloc(pool, size);
    if (buf == NULL) {
        fuzz_fail("no memory");
    }

    ngx_memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';

    switch (data[0] % 3) {

    case 0:
        why = NULL;
        rc = ngx_ai_oauth_token_parse(pool, buf, size - 1, &tok, &exp, &why);

        if (rc == NGX_DECLINED && why == NULL) {
            fuzz_fail("token: refused without a reason");
        }

        if (rc != NGX_OK) {
            break;
        }

        if (tok.len == 0 || tok.len > NGX_AI_MAX_ACCESS_TOKEN
            || exp < 1 || exp > 86400)
        {
            fuzz_fail("token: %lu bytes, expires_in %ld",
                      (unsigned long) tok.len, (long) exp);
        }

        for (i = 0; i < tok.len; i++) {
            if (tok.data[i] <= 0x20 || tok.data[i] >= 0x7f) {
                fuzz_fail("token: byte %02x", tok.data[i]);
            }
        }

        break;

    case 1:
        rc = ngx_ai_service_account_parse(pool, buf, size - 1, &sa, &why);

        if (rc == NGX_OK
            && (sa.client_email.len == 0 || sa.private_key.len == 0
                || sa.token_uri.len == 0))
        {
            fuzz_fail("service account: taken without a field");
        }

        break;

    default:
        model.data = buf;
        model.len = ngx_strlen(buf);

        ngx_str_set(&in, "/v1/chat/completions");
        ngx_str_set(&v, "2024-10-21");

        if (ngx_ai_azure_path(pool, &in, &model, &v, &path) == NGX_OK) {
            fuzz_cloud_path_check(&path, &model, 1);
        }

        ngx_str_set(&in, "/v1/messages");
        ngx_str_set(&proj, "p");

        if (ngx_ai_vertex_path(pool, &in, &proj, &proj, 1, &model, 1, &path)
            == NGX_OK)
        {
            fuzz_cloud_path_check(&path, &model, 0);
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
