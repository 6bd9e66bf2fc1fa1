
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: Azure OpenAI's paths and deployments
 * (ngx_ai_gateway_cloud.c).
 */


#include "unit.h"


static ngx_int_t
azure(const char *path, const char *dep, const char *ver, ngx_str_t *out)
{
    ngx_str_t  p, d, v;

    p.data = (u_char *) path;
    p.len = strlen(path);
    d.data = (u_char *) dep;
    d.len = strlen(dep);
    v.data = (u_char *) ver;
    v.len = strlen(ver);

    return ngx_ai_azure_path(unit_pool(), &p, &d, &v, out);
}


UNIT_TEST(azure_deployment_paths)
{
    ngx_str_t  out;

    UNIT_EQ_INT(azure("/v1/chat/completions", "prod-4o", "2024-10-21", &out),
                NGX_OK);
    UNIT_EQ_STR(out, "/openai/deployments/prod-4o/chat/completions"
                     "?api-version=2024-10-21");

    UNIT_EQ_INT(azure("/v1/embeddings", "emb_1.v2", "2025-01-01-preview",
                      &out), NGX_OK);
    UNIT_EQ_STR(out, "/openai/deployments/emb_1.v2/embeddings"
                     "?api-version=2025-01-01-preview");
}


UNIT_TEST(azure_v1_paths)
{
    ngx_str_t  out;

    UNIT_EQ_INT(azure("/v1/chat/completions", "anything", "v1", &out),
                NGX_OK);
    UNIT_EQ_STR(out, "/openai/v1/chat/completions");

    /* on the v1 API the deployment is the body's: no check of it here */
    UNIT_EQ_INT(azure("/v1/embeddings", "", "v1", &out), NGX_OK);
    UNIT_EQ_STR(out, "/openai/v1/embeddings");
}


UNIT_TEST(azure_refuses_what_is_no_deployment)
{
    ngx_str_t   out;
    ngx_uint_t  i;

    static const char  *bad[] = {
        "", ".", "..", "...", "a/b", "a?b", "a#b", "a%2Fb", "a b", "a:b",
        "caf\xc3\xa9", "a\nb",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        UNIT_EQ_INT(azure("/v1/chat/completions", bad[i], "2024-10-21",
                          &out), NGX_DECLINED);
    }

    /* 64 bytes is Azure's longest name; ".x" and "x." are names */
    UNIT_EQ_INT(azure("/v1/chat/completions",
                      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                      "xxxxxxxxxxx", "2024-10-21", &out), NGX_OK);
    UNIT_EQ_INT(azure("/v1/chat/completions", ".x", "2024-10-21", &out),
                NGX_OK);

    /* not an OpenAI path: nothing to map */
    UNIT_EQ_INT(azure("/v1beta/models/m:generateContent", "d", "v1", &out),
                NGX_DECLINED);
    UNIT_EQ_INT(azure("/v2/chat", "d", "2024-10-21", &out), NGX_DECLINED);
    UNIT_EQ_INT(azure("/v1/", "d", "2024-10-21", &out), NGX_DECLINED);
    UNIT_EQ_INT(azure("/v1/x?y=1", "d", "2024-10-21", &out), NGX_DECLINED);
}


UNIT_TEST(azure_deployment_of_a_model)
{
    ngx_str_t     m, out;
    ngx_keyval_t  map[3];

    ngx_str_set(&map[0].key, "gpt-4o");
    ngx_str_set(&map[0].value, "prod-4o");
    ngx_str_set(&map[1].key, "*");
    ngx_str_set(&map[1].value, "default-dep");
    ngx_str_set(&map[2].key, "gpt-4o-mini");
    ngx_str_set(&map[2].value, "mini");

    ngx_str_set(&m, "gpt-4o");
    ngx_ai_azure_deployment(map, 3, &m, &out);
    UNIT_EQ_STR(out, "prod-4o");

    ngx_str_set(&m, "gpt-4o-mini");
    ngx_ai_azure_deployment(map, 3, &m, &out);
    UNIT_EQ_STR(out, "mini");

    ngx_str_set(&m, "gpt-4");
    ngx_ai_azure_deployment(map, 3, &m, &out);
    UNIT_EQ_STR(out, "default-dep");

    ngx_ai_azure_deployment(map, 1, &m, &out);
    UNIT_EQ_STR(out, "gpt-4");

    ngx_ai_azure_deployment(NULL, 0, &m, &out);
    UNIT_EQ_STR(out, "gpt-4");
}
