
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


/* ----------------------------------------------------------- Vertex AI */


static ngx_str_t
b64url(const char *s, size_t len)
{
    ngx_str_t  out;

    if (ngx_ai_base64url(unit_pool(), (u_char *) s, len, &out) != NGX_OK) {
        unit_fail(__FILE__, __LINE__, "ngx_ai_base64url() failed");
    }

    return out;
}


UNIT_TEST(vertex_base64url_rfc4648_vectors)
{
    UNIT_EQ_STR(b64url("", 0), "");
    UNIT_EQ_STR(b64url("f", 1), "Zg");
    UNIT_EQ_STR(b64url("fo", 2), "Zm8");
    UNIT_EQ_STR(b64url("foo", 3), "Zm9v");
    UNIT_EQ_STR(b64url("foob", 4), "Zm9vYg");
    UNIT_EQ_STR(b64url("fooba", 5), "Zm9vYmE");
    UNIT_EQ_STR(b64url("foobar", 6), "Zm9vYmFy");
    UNIT_EQ_STR(b64url("\xfb\xff\xbf", 3), "-_-_");
    UNIT_EQ_STR(b64url("\x01\x02\x03\x04", 4), "AQIDBA");
}


UNIT_TEST(vertex_jwt_input_known_answer)
{
    ngx_str_t                 out, scope;
    ngx_ai_service_account_t  sa;

    ngx_str_set(&sa.client_email, "a@b.iam.gserviceaccount.com");
    ngx_str_set(&sa.private_key_id, "k1");
    ngx_str_set(&sa.token_uri, "https://oauth2.googleapis.com/token");
    ngx_str_null(&sa.private_key);
    ngx_str_set(&scope, NGX_AI_VERTEX_SCOPE);

    UNIT_EQ_INT(ngx_ai_jwt_input(unit_pool(), &sa, &scope, 1700000000, &out),
                NGX_OK);
    UNIT_EQ_STR(out,
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0."
        "eyJpc3MiOiJhQGIuaWFtLmdzZXJ2aWNlYWNjb3VudC5jb20iLCJzY29wZSI6Imh0"
        "dHBzOi8vd3d3Lmdvb2dsZWFwaXMuY29tL2F1dGgvY2xvdWQtcGxhdGZvcm0iLCJh"
        "dWQiOiJodHRwczovL29hdXRoMi5nb29nbGVhcGlzLmNvbS90b2tlbiIsImlhdCI6"
        "MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwfQ");

    /* no private_key_id: no kid */
    ngx_str_null(&sa.private_key_id);
    UNIT_EQ_INT(ngx_ai_jwt_input(unit_pool(), &sa, &scope, 1700000000, &out),
                NGX_OK);
    UNIT_CHECK(out.len > 37
               && ngx_strncmp(out.data,
                              "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", 37)
                  == 0);
}


UNIT_TEST(vertex_jwt_grant_body)
{
    ngx_str_t  in, out;

    ngx_str_set(&in, "aaa.bbb");

    UNIT_EQ_INT(ngx_ai_jwt_grant(unit_pool(), &in, (u_char *) "\xfb\xff", 2,
                                 &out), NGX_OK);
    UNIT_EQ_STR(out, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type"
                     "%3Ajwt-bearer&assertion=aaa.bbb.-_8");
}


static ngx_int_t
token(const char *body, ngx_str_t *tok, time_t *exp, const char **why)
{
    return ngx_ai_oauth_token_parse(unit_pool(), (u_char *) body,
                                    strlen(body), tok, exp, why);
}


UNIT_TEST(vertex_token_answers)
{
    time_t       exp;
    ngx_str_t    tok;
    ngx_uint_t   i;
    const char  *why;

    static const char  *bad[] = {
        "", "[]", "not json", "{}",
        "{\"access_token\":\"\",\"expires_in\":3599}",
        "{\"access_token\":7,\"expires_in\":3599}",
        "{\"access_token\":\"a b\",\"expires_in\":3599}",
        "{\"access_token\":\"a\\nb\",\"expires_in\":3599}",
        "{\"access_token\":\"caf\\u00e9\",\"expires_in\":3599}",
        "{\"access_token\":\"ya29.x\"}",
        "{\"access_token\":\"ya29.x\",\"expires_in\":0}",
        "{\"access_token\":\"ya29.x\",\"expires_in\":-5}",
        "{\"access_token\":\"ya29.x\",\"expires_in\":1.5}",
        "{\"access_token\":\"ya29.x\",\"expires_in\":86401}",
        "{\"access_token\":\"ya29.x\",\"expires_in\":\"3599\"}",
        "{\"access_token\":\"ya29.x\",\"expires_in\":3599,"
            "\"token_type\":\"MAC\"}",
        "{\"access_token\":\"ya29.x\",\"expires_in\":1e300}",
        "{\"error\":\"invalid_grant\"}"
    };

    UNIT_EQ_INT(token("{\"access_token\":\"ya29.abc-_DEF\",\"expires_in\":"
                      "3599,\"token_type\":\"Bearer\"}", &tok, &exp, &why),
                NGX_OK);
    UNIT_EQ_STR(tok, "ya29.abc-_DEF");
    UNIT_EQ_INT(exp, 3599);

    UNIT_EQ_INT(token("{\"token_type\":\"bearer\",\"expires_in\":1,"
                      "\"access_token\":\"t\"}", &tok, &exp, &why), NGX_OK);
    UNIT_EQ_INT(exp, 1);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        UNIT_EQ_INT(token(bad[i], &tok, &exp, &why), NGX_DECLINED);
        UNIT_CHECK(why != NULL && strstr(why, "ya29") == NULL);
    }
}


UNIT_TEST(vertex_service_account_file)
{
    const char                *why;
    ngx_ai_service_account_t   sa;

    static char  good[] =
        "{\"type\":\"service_account\",\"project_id\":\"p\","
        "\"private_key_id\":\"k\",\"private_key\":\"-----BEGIN PRIVATE KEY"
        "-----\\nMII\\n-----END PRIVATE KEY-----\\n\","
        "\"client_email\":\"a@p.iam.gserviceaccount.com\"}";
    static char  user[] = "{\"type\":\"authorized_user\"}";
    static char  nokey[] =
        "{\"type\":\"service_account\",\"client_email\":\"a@b\"}";

    UNIT_EQ_INT(ngx_ai_service_account_parse(unit_pool(), (u_char *) good,
                                             sizeof(good) - 1, &sa, &why),
                NGX_OK);
    UNIT_EQ_STR(sa.client_email, "a@p.iam.gserviceaccount.com");
    UNIT_EQ_STR(sa.private_key_id, "k");
    UNIT_EQ_STR(sa.token_uri, "https://oauth2.googleapis.com/token");
    UNIT_CONTAINS(sa.private_key, "\nMII\n");

    UNIT_EQ_INT(ngx_ai_service_account_parse(unit_pool(), (u_char *) user,
                                             sizeof(user) - 1, &sa, &why),
                NGX_DECLINED);
    UNIT_EQ_INT(ngx_ai_service_account_parse(unit_pool(), (u_char *) nokey,
                                             sizeof(nokey) - 1, &sa, &why),
                NGX_DECLINED);
    UNIT_CHECK(strstr(why, "private_key") != NULL);
}


static ngx_int_t
vpath(const char *path, ngx_uint_t anthropic, const char *model,
    ngx_uint_t stream, ngx_str_t *out)
{
    ngx_str_t  p, proj, region, m;

    p.data = (u_char *) path;
    p.len = strlen(path);
    m.data = (u_char *) model;
    m.len = strlen(model);
    ngx_str_set(&proj, "proj-1");
    ngx_str_set(&region, "us-east5");

    return ngx_ai_vertex_path(unit_pool(), &p, &proj, &region, anthropic,
                              &m, stream, out);
}


UNIT_TEST(vertex_paths)
{
    ngx_str_t  out;

    UNIT_EQ_INT(vpath("/v1beta/models/gemini-2.5-pro:generateContent", 0,
                      "gemini-2.5-pro", 0, &out), NGX_OK);
    UNIT_EQ_STR(out, "/v1/projects/proj-1/locations/us-east5/publishers/"
                     "google/models/gemini-2.5-pro:generateContent");

    UNIT_EQ_INT(vpath("/v1beta/models/g:streamGenerateContent?alt=sse", 0,
                      "g", 1, &out), NGX_OK);
    UNIT_EQ_STR(out, "/v1/projects/proj-1/locations/us-east5/publishers/"
                     "google/models/g:streamGenerateContent?alt=sse");

    UNIT_EQ_INT(vpath("/v1/messages", 1, "claude-sonnet-4@20250514", 0,
                      &out), NGX_OK);
    UNIT_EQ_STR(out, "/v1/projects/proj-1/locations/us-east5/publishers/"
                     "anthropic/models/claude-sonnet-4@20250514:rawPredict");

    UNIT_EQ_INT(vpath("/v1/messages", 1, "claude", 1, &out), NGX_OK);
    UNIT_EQ_STR(out, "/v1/projects/proj-1/locations/us-east5/publishers/"
                     "anthropic/models/claude:streamRawPredict");

    /* what Vertex has not, or cannot be a model */
    UNIT_EQ_INT(vpath("/v1beta/models/g:batchEmbedContents", 0, "g", 0,
                      &out), NGX_DECLINED);
    UNIT_EQ_INT(vpath("/v1/messages/count_tokens", 1, "c", 0, &out),
                NGX_DECLINED);
    UNIT_EQ_INT(vpath("/v1/messages", 1, "a/b", 0, &out), NGX_DECLINED);
    UNIT_EQ_INT(vpath("/v1/messages", 1, "..", 0, &out), NGX_DECLINED);
    UNIT_EQ_INT(vpath("/v1/messages", 1, "a:rawPredict?x", 0, &out),
                NGX_DECLINED);
    UNIT_EQ_INT(vpath("/v1/chat/completions", 0, "g", 0, &out),
                NGX_DECLINED);
}


UNIT_TEST(vertex_anthropic_body)
{
    ngx_str_t  in, out;

    ngx_str_set(&in, "{\"model\":\"claude\",\"max_tokens\":5,"
                     "\"anthropic_version\":\"x\",\"messages\":[]}");

    UNIT_EQ_INT(ngx_ai_vertex_anthropic_body(unit_pool(), &in, &out),
                NGX_OK);
    UNIT_EQ_STR(out, "{\"max_tokens\":5,\"messages\":[],"
                     "\"anthropic_version\":\"vertex-2023-10-16\"}");

    ngx_str_set(&in, "[1]");
    UNIT_EQ_INT(ngx_ai_vertex_anthropic_body(unit_pool(), &in, &out),
                NGX_ERROR);
}
