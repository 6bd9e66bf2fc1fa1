
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Google Vertex AI's credentials: ai_provider's project=, region=,
 * publisher=, credentials=file:service-account.json and token_pass=; the
 * service account's private key (OpenSSL); the JWT it signs (RS256); the
 * access tokens the token endpoint gives for it, kept in one shared zone
 * so that all workers use one token and a refresh is one call, made by
 * whoever finds the token due first (the others use the old one while it
 * lasts, or wait for the new one).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include "ngx_ai_gateway.h"


#define NGX_HTTP_AI_VERTEX_SLOTS     32
#define NGX_HTTP_AI_VERTEX_FETCH     30       /* s a token call may take */


typedef struct {
    u_char                      id[512];     /* private_key_id client_email */
    size_t                      id_len;
    u_char                      token[NGX_AI_MAX_ACCESS_TOKEN];
    size_t                      len;
    time_t                      expires;
    time_t                      lifetime;
    time_t                      fetching;    /* a call is out until then */
    ngx_uint_t                  minted;      /* tokens bought */
} ngx_http_ai_vertex_slot_t;


typedef struct {
    ngx_http_ai_vertex_slot_t   slot[NGX_HTTP_AI_VERTEX_SLOTS];
} ngx_http_ai_vertex_sh_t;


static char *ngx_http_ai_vertex_credentials(ngx_conf_t *cf,
    ngx_http_ai_provider_t *p, ngx_http_ai_vertex_t *v, ngx_str_t *value);
static ngx_int_t ngx_http_ai_vertex_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_vertex_key_cleanup(void *data);
static ngx_http_ai_vertex_slot_t *ngx_http_ai_vertex_slot(
    ngx_http_ai_vertex_t *v);


/* type=vertex, Gemini models: filled in by ngx_http_ai_vertex_check() */
static ngx_ai_translator_t  ngx_http_ai_vertex_gemini;

static ngx_str_t  ngx_http_ai_vertex_zone_name =
    ngx_string("ai_vertex_tokens");
static ngx_str_t  ngx_http_ai_vertex_scope =
    ngx_string(NGX_AI_VERTEX_SCOPE);


/* one option of ai_provider's for type=vertex; NGX_DECLINED: not one */

char *
ngx_http_ai_vertex_option(ngx_conf_t *cf, ngx_http_ai_provider_t *p,
    ngx_str_t *value)
{
    ngx_str_t              s;
    ngx_http_ai_vertex_t  *v;

    v = p->vertex;

    if (v == NULL) {
        v = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_vertex_t));
        if (v == NULL) {
            return NGX_CONF_ERROR;
        }

        p->vertex = v;
    }

    /* region= is ai_provider's own (p->region), shared with bedrock */

    if (ngx_strncmp(value->data, "project=", 8) == 0) {
        s.data = ngx_strlchr(value->data, value->data + value->len, '=') + 1;
        s.len = value->data + value->len - s.data;

        if (!ngx_ai_vertex_name(&s, 0)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": letters, digits, \"-\", "
                               "\"_\" and \".\"", value);
            return NGX_CONF_ERROR;
        }

        v->project = s;

        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "publisher=", 10) == 0) {
        if (value->len == 16
            && ngx_strncmp(value->data + 10, "google", 6) == 0)
        {
            v->anthropic = 0;
            return NGX_CONF_OK;
        }

        if (value->len == 19
            && ngx_strncmp(value->data + 10, "anthropic", 9) == 0)
        {
            v->anthropic = 1;
            return NGX_CONF_OK;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\": publisher= takes google or "
                           "anthropic", value);
        return NGX_CONF_ERROR;
    }

    if (ngx_strncmp(value->data, "token_pass=", 11) == 0) {
        v->token_pass.data = value->data + 11;
        v->token_pass.len = value->len - 11;

        if (v->token_pass.len < 2 || v->token_pass.data[0] != '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": token_pass= takes a location "
                               "like /_ai/google-token", value);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value->data, "credentials=", 12) == 0) {
        s.data = value->data + 12;
        s.len = value->len - 12;

        return ngx_http_ai_vertex_credentials(cf, p, v, &s);
    }

    return (char *) NGX_DECLINED;
}


/* credentials=file:PATH: the service account's key file, read and its key
 * loaded now, by the master */

static char *
ngx_http_ai_vertex_credentials(ngx_conf_t *cf, ngx_http_ai_provider_t *p,
    ngx_http_ai_vertex_t *v, ngx_str_t *value)
{
    BIO                        *bio;
    ngx_int_t                   rc;
    ngx_str_t                   text;
    const char                 *why;
    ngx_pool_cleanup_t         *cln;
    ngx_http_ai_secret_opts_t   o;

    if (value->len < 6 || ngx_strncmp(value->data, "file:", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": credentials= takes "
                           "file:service-account.json", &p->name);
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&o.what, "ai_provider credentials");
    o.file = "service account file ";
    o.max = 65536;
    o.unset = NULL;

    rc = ngx_http_ai_secret_read(cf, value, &o, &text);

    if (rc != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    rc = ngx_ai_service_account_parse(cf->pool, text.data, text.len, &v->sa,
                                      &why);

    if (rc != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": \"%V\" %s", &p->name,
                           value, rc == NGX_DECLINED ? why : "failed");
        return NGX_CONF_ERROR;
    }

    if (v->sa.client_email.len + v->sa.private_key_id.len >= 511
        || v->sa.token_uri.len > 512)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": \"%V\": client_email, "
                           "private_key_id or token_uri too long",
                           &p->name, value);
        return NGX_CONF_ERROR;
    }

    v->id.len = v->sa.private_key_id.len + 1 + v->sa.client_email.len;
    v->id.data = ngx_pnalloc(cf->pool, v->id.len);
    if (v->id.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(ngx_cpymem(v->id.data, v->sa.private_key_id.data,
                          v->sa.private_key_id.len) + 1,
               v->sa.client_email.data, v->sa.client_email.len);
    v->id.data[v->sa.private_key_id.len] = ' ';

    bio = BIO_new_mem_buf(v->sa.private_key.data,
                          (int) v->sa.private_key.len);
    if (bio == NULL) {
        return NGX_CONF_ERROR;
    }

    v->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);

    /* the key's text is not kept */
    ngx_explicit_memzero(v->sa.private_key.data, v->sa.private_key.len);
    ngx_explicit_memzero(text.data, text.len);
    ngx_str_null(&v->sa.private_key);

    if (v->pkey == NULL || EVP_PKEY_base_id(v->pkey) != EVP_PKEY_RSA) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": \"%V\": private_key is no "
                           "RSA key in PEM", &p->name, value);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_ai_vertex_key_cleanup;
    cln->data = v->pkey;

    return NGX_CONF_OK;
}


static void
ngx_http_ai_vertex_key_cleanup(void *data)
{
    EVP_PKEY_free(data);
}


/* the end of a type=vertex ai_provider: what it needs, its token's slot */

char *
ngx_http_ai_vertex_check(ngx_conf_t *cf, ngx_http_ai_provider_t *p)
{
    ngx_http_ai_vertex_t  *v;

    v = p->vertex;

    if (v && v->region.len == 0) {
        v->region = p->region;

        if (v->region.len && !ngx_ai_vertex_name(&v->region, 0)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_provider \"%V\": invalid region=: "
                               "letters, digits, \"-\", \"_\" and \".\"",
                               &p->name);
            return NGX_CONF_ERROR;
        }
    }

    if (v == NULL || v->project.len == 0 || v->region.len == 0
        || v->pkey == NULL || v->token_pass.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_provider \"%V\": type=vertex needs project=, "
                           "region=, credentials=file:... and token_pass=",
                           &p->name);
        return NGX_CONF_ERROR;
    }

    if (v->anthropic) {
        p->translator = &ngx_ai_anthropic_translator;

    } else {
        /* Gemini's wire format, with Vertex's own embeddings */

        ngx_http_ai_vertex_gemini = ngx_ai_gemini_translator;
        ngx_http_ai_vertex_gemini.embed_request = ngx_ai_vertex_embed_request;
        ngx_http_ai_vertex_gemini.embed_response =
            ngx_ai_vertex_embed_response;

        p->translator = &ngx_http_ai_vertex_gemini;
    }

    v->zone = ngx_shared_memory_add(cf, &ngx_http_ai_vertex_zone_name,
                                    sizeof(ngx_http_ai_vertex_sh_t)
                                    + 8 * ngx_pagesize,
                                    &ngx_ai_gateway_module);
    if (v->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    v->zone->init = ngx_http_ai_vertex_init_zone;
    v->zone->noreuse = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_vertex_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t        fresh;
    ngx_slab_pool_t  *shpool;

    shm_zone->data = ngx_http_ai_zone_state(shm_zone, data,
                                            sizeof(ngx_http_ai_vertex_sh_t),
                                            "ai vertex tokens", &shpool,
                                            &fresh);

    return shm_zone->data ? NGX_OK : NGX_ERROR;
}


/* the slot of a service account's key (its private_key_id and
 * client_email), made if new; the zone's lock held */

static ngx_http_ai_vertex_slot_t *
ngx_http_ai_vertex_slot(ngx_http_ai_vertex_t *v)
{
    ngx_uint_t                  i;
    ngx_http_ai_vertex_sh_t    *sh;
    ngx_http_ai_vertex_slot_t  *s;

    sh = v->zone->data;

    for (i = 0; i < NGX_HTTP_AI_VERTEX_SLOTS; i++) {
        s = &sh->slot[i];

        if (s->id_len == 0) {
            ngx_memcpy(s->id, v->id.data, v->id.len);
            s->id_len = v->id.len;
            return s;
        }

        if (s->id_len == v->id.len
            && ngx_strncmp(s->id, v->id.data, s->id_len) == 0)
        {
            return s;
        }
    }

    return NULL;
}


/*
 * The access token to send: NGX_OK with a copy in *token; NGX_AGAIN: the
 * caller is to buy one (it has the claim: ngx_http_ai_vertex_token_set()
 * or _failed() must follow); NGX_BUSY: another call is buying it, try
 * again soon.  A token is refreshed when its last quarter (at most five
 * minutes) begins; while the refresh is out, the old one is used.
 */

ngx_int_t
ngx_http_ai_vertex_token(ngx_http_ai_provider_t *p, ngx_pool_t *pool,
    ngx_str_t *token)
{
    time_t                      now, margin;
    ngx_int_t                   rc;
    ngx_slab_pool_t            *shpool;
    ngx_http_ai_vertex_slot_t  *s;

    now = ngx_time();
    shpool = (ngx_slab_pool_t *) p->vertex->zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    s = ngx_http_ai_vertex_slot(p->vertex);

    if (s == NULL) {
        ngx_shmtx_unlock(&shpool->mutex);
        return NGX_ERROR;
    }

    margin = ngx_min(s->lifetime / 4, 300);

    if (s->len && (now < s->expires - margin
                   || (now < s->fetching && now < s->expires - 5)))
    {
        token->data = ngx_pnalloc(pool, s->len);

        if (token->data) {
            token->len = s->len;
            ngx_memcpy(token->data, s->token, s->len);
        }

        ngx_shmtx_unlock(&shpool->mutex);

        return token->data ? NGX_OK : NGX_ERROR;
    }

    if (now < s->fetching) {
        rc = NGX_BUSY;

    } else {
        s->fetching = now + NGX_HTTP_AI_VERTEX_FETCH;
        rc = NGX_AGAIN;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return rc;
}


/* the token endpoint's form body: a fresh JWT signed with the key */

ngx_int_t
ngx_http_ai_vertex_grant(ngx_http_ai_provider_t *p, ngx_pool_t *pool,
    ngx_log_t *log, ngx_str_t *body)
{
    u_char                *sig;
    size_t                 siglen;
    ngx_int_t              rc;
    ngx_str_t              input;
    EVP_MD_CTX            *md;
    ngx_http_ai_vertex_t  *v;

    v = p->vertex;

    if (ngx_ai_jwt_input(pool, &v->sa, &ngx_http_ai_vertex_scope, ngx_time(),
                         &input)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    siglen = (size_t) EVP_PKEY_size(v->pkey);

    sig = ngx_pnalloc(pool, siglen);
    if (sig == NULL) {
        return NGX_ERROR;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, v->pkey) == 1
        && EVP_DigestSign(md, sig, &siglen, input.data, input.len) == 1)
    {
        rc = ngx_ai_jwt_grant(pool, &input, sig, siglen, body);

    } else {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "ai_provider \"%V\": signing the JWT failed",
                      &p->name);
    }

    EVP_MD_CTX_free(md);

    return rc;
}


/* the token endpoint's answer, whatever it was: the claim ends */

ngx_int_t
ngx_http_ai_vertex_token_set(ngx_http_ai_provider_t *p, ngx_uint_t status,
    u_char *body, size_t len, ngx_pool_t *pool, ngx_str_t *token,
    const char **why)
{
    time_t                      expires_in;
    ngx_int_t                   rc;
    ngx_slab_pool_t            *shpool;
    ngx_http_ai_vertex_slot_t  *s;

    shpool = (ngx_slab_pool_t *) p->vertex->zone->shm.addr;

    if (status != NGX_HTTP_OK) {
        *why = "the token endpoint refused the service account's JWT";
        rc = NGX_DECLINED;

    } else {
        rc = ngx_ai_oauth_token_parse(pool, body, len, token, &expires_in,
                                      why);
    }

    ngx_shmtx_lock(&shpool->mutex);

    s = ngx_http_ai_vertex_slot(p->vertex);

    if (s == NULL) {
        ngx_shmtx_unlock(&shpool->mutex);
        return NGX_ERROR;
    }

    s->fetching = 0;

    if (rc == NGX_OK) {
        ngx_memcpy(s->token, token->data, token->len);
        s->len = token->len;
        s->lifetime = expires_in;
        s->expires = ngx_time() + expires_in;
        s->minted++;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return rc;
}
