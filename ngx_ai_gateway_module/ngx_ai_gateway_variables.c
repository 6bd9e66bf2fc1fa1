
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Variables for log_format: which model answered, after how many calls,
 * the tokens of every call, the time to the first byte, the fusion mode;
 * and the OpenTelemetry GenAI span attributes ($ai_gen_ai_*, the same
 * values as the gen_ai_* Prometheus labels).  ($ai_cost, $ai_rate_status
 * and $ai_budget_status are the limits module's.)
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


typedef enum {
    NGX_HTTP_AI_VAR_MODEL = 0,
    NGX_HTTP_AI_VAR_PROVIDER,
    NGX_HTTP_AI_VAR_ATTEMPTS,
    NGX_HTTP_AI_VAR_PROMPT_TOKENS,
    NGX_HTTP_AI_VAR_COMPLETION_TOKENS,
    NGX_HTTP_AI_VAR_TTFT,
    NGX_HTTP_AI_VAR_FUSION_MODE,
    NGX_HTTP_AI_VAR_GENAI_OPERATION,
    NGX_HTTP_AI_VAR_GENAI_PROVIDER,
    NGX_HTTP_AI_VAR_GENAI_REQUEST_MODEL,
    NGX_HTTP_AI_VAR_GENAI_RESPONSE_MODEL
} ngx_http_ai_var_e;


static ngx_int_t ngx_http_ai_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_genai_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static void ngx_http_ai_genai_split(ngx_str_t *label, ngx_str_t *provider,
    ngx_str_t *model);


static ngx_str_t  ngx_http_ai_genai_ops[] = {
    ngx_string("chat"),
    ngx_string("embeddings"),
    ngx_string("count_tokens")
};


static ngx_http_variable_t  ngx_http_ai_vars[] = {

    { ngx_string("ai_model"), NULL, ngx_http_ai_variable,
      NGX_HTTP_AI_VAR_MODEL, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_provider"), NULL, ngx_http_ai_variable,
      NGX_HTTP_AI_VAR_PROVIDER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_attempts"), NULL, ngx_http_ai_variable,
      NGX_HTTP_AI_VAR_ATTEMPTS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_prompt_tokens"), NULL, ngx_http_ai_variable,
      NGX_HTTP_AI_VAR_PROMPT_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_completion_tokens"), NULL, ngx_http_ai_variable,
      NGX_HTTP_AI_VAR_COMPLETION_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_ttft"), NULL, ngx_http_ai_variable,
      NGX_HTTP_AI_VAR_TTFT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_fusion_mode"), NULL, ngx_http_ai_variable,
      NGX_HTTP_AI_VAR_FUSION_MODE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gen_ai_operation_name"), NULL,
      ngx_http_ai_genai_variable, NGX_HTTP_AI_VAR_GENAI_OPERATION,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gen_ai_provider_name"), NULL,
      ngx_http_ai_genai_variable, NGX_HTTP_AI_VAR_GENAI_PROVIDER,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gen_ai_request_model"), NULL,
      ngx_http_ai_genai_variable, NGX_HTTP_AI_VAR_GENAI_REQUEST_MODEL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gen_ai_response_model"), NULL,
      ngx_http_ai_genai_variable, NGX_HTTP_AI_VAR_GENAI_RESPONSE_MODEL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gen_ai_usage_input_tokens"), NULL, ngx_http_ai_variable,
      NGX_HTTP_AI_VAR_PROMPT_TOKENS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gen_ai_usage_output_tokens"), NULL,
      ngx_http_ai_variable, NGX_HTTP_AI_VAR_COMPLETION_TOKENS,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_ai_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ai_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char             *p, *slash;
    ngx_str_t           model, name, mode, judge;
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_module);

    if (ctx == NULL || ctx->attempts == 0
        || (data == NGX_HTTP_AI_VAR_FUSION_MODE && ctx->fusion == NULL))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    model = ctx->model.len ? ctx->model : ctx->attempt->model;

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    switch (data) {

    case NGX_HTTP_AI_VAR_MODEL:
        v->data = model.data;
        v->len = model.len;
        return NGX_OK;

    case NGX_HTTP_AI_VAR_PROVIDER:
        slash = ngx_strlchr(model.data, model.data + model.len, '/');
        v->data = model.data;
        v->len = slash ? (size_t) (slash - model.data) : model.len;
        return NGX_OK;

    case NGX_HTTP_AI_VAR_FUSION_MODE:
        ngx_http_ai_fusion_outcome(ctx, &name, &mode, &judge);
        v->data = mode.data;
        v->len = mode.len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    switch (data) {

    case NGX_HTTP_AI_VAR_ATTEMPTS:
        p = ngx_sprintf(p, "%ui", ctx->attempts);
        break;

    case NGX_HTTP_AI_VAR_PROMPT_TOKENS:
        p = ngx_sprintf(p, "%uL", ctx->usage.prompt_tokens);
        break;

    case NGX_HTTP_AI_VAR_COMPLETION_TOKENS:
        p = ngx_sprintf(p, "%uL", ctx->usage.completion_tokens);
        break;

    default: /* NGX_HTTP_AI_VAR_TTFT */
        if (!ctx->header_sent) {
            v->not_found = 1;
            return NGX_OK;
        }

        p = ngx_sprintf(p, "%M", ctx->ttft);
        break;
    }

    v->len = p - v->data;

    return NGX_OK;
}


/*
 * The OpenTelemetry GenAI names of a request, as labels (bounded: the
 * configuration's model labels, never a client's bytes): its operation
 * (chat, embeddings, count_tokens), the label of the model asked for
 * (the first of its plan; a fusion: its pool) and of the model that
 * answered (empty when none did).  "provider/model" labels; the
 * provider is the part before the slash.
 */

void
ngx_http_ai_genai_names(ngx_http_ai_ctx_t *ctx, ngx_http_ai_genai_t *g)
{
    ngx_uint_t            op;
    ngx_str_t             mode, judge;
    ngx_http_ai_model_t  *m;

    op = ctx->route ? ctx->route->op : ctx->chat.op;

    g->operation = ngx_http_ai_genai_ops[(op == NGX_AI_OP_EMBED) ? 1
                                         : (op == NGX_AI_OP_COUNT) ? 2 : 0];

    ngx_str_null(&g->request);
    ngx_str_null(&g->response);

    if (ctx->fusion) {
        ngx_http_ai_fusion_outcome(ctx, &g->request, &mode, &judge);

        if (ctx->winner || ctx->header_sent) {
            g->response = g->request;
        }

        return;
    }

    if (ctx->plan.nelts) {
        m = ctx->plan.elts;
        g->request = m[0].label.len ? m[0].label : m[0].name;
    }

    if (ctx->winner) {
        g->response = ctx->winner->label;
    }
}


static ngx_int_t
ngx_http_ai_genai_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t            *s, provider, model;
    ngx_http_ai_ctx_t    *ctx;
    ngx_http_ai_genai_t   g;

    ctx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_ai_genai_names(ctx, &g);

    switch (data) {

    case NGX_HTTP_AI_VAR_GENAI_OPERATION:
        s = &g.operation;
        break;

    case NGX_HTTP_AI_VAR_GENAI_PROVIDER:
        ngx_http_ai_genai_split(g.response.len ? &g.response : &g.request,
                                &provider, &model);
        s = &provider;
        break;

    case NGX_HTTP_AI_VAR_GENAI_REQUEST_MODEL:
        ngx_http_ai_genai_split(&g.request, &provider, &model);
        s = &model;
        break;

    default: /* NGX_HTTP_AI_VAR_GENAI_RESPONSE_MODEL */
        ngx_http_ai_genai_split(&g.response, &provider, &model);
        s = &model;
        break;
    }

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;
    v->len = s->len;

    return NGX_OK;
}


static void
ngx_http_ai_genai_split(ngx_str_t *label, ngx_str_t *provider,
    ngx_str_t *model)
{
    u_char  *slash;

    slash = ngx_strlchr(label->data, label->data + label->len, '/');

    if (slash == NULL) {
        *provider = *label;
        *model = *label;
        return;
    }

    provider->data = label->data;
    provider->len = slash - label->data;
    model->data = slash + 1;
    model->len = label->data + label->len - model->data;
}
