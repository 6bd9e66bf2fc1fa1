
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ngx_ai_gateway_guard_module: ai_guard rules, regular expressions (nginx's
 * PCRE2, compiled when the configuration is read) applied to every string
 * of a request the provider receives before any provider sees it, and,
 * when asked, to the answer on its way back, streams included, and to the
 * error messages the gateway sends.  A "deny" rule refuses the request
 * with 400 naming the rule; a "redact" rule replaces what it matches with
 * "[REDACTED:NAME]".  Matches are counted per rule in shared memory (for
 * ai_status) and named in $ai_guard (for access logs).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"
#include "ngx_ai_gateway_guard.h"


static ngx_int_t ngx_http_ai_guard_message(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_http_ai_guards_t *g,
    ngx_str_t *message);
static ngx_int_t ngx_http_ai_guard_error_event(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_ai_sse_event_t *ev, cJSON *root,
    cJSON *error);
static ngx_int_t ngx_http_ai_guard_text(cJSON *item, ngx_array_t *a);
static ngx_int_t ngx_http_ai_guard_redact_item(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_http_ai_guards_t *g, ngx_uint_t scope,
    cJSON *item, ngx_uint_t *changed);
static ngx_int_t ngx_http_ai_guard_sse_event(void *data,
    ngx_ai_sse_event_t *ev);
static ngx_int_t ngx_http_ai_guard_chunk(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_ai_sse_event_t *ev, cJSON *root);
static ngx_int_t ngx_http_ai_guard_release(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_uint_t all, ngx_ai_buf_t *text);
static ngx_int_t ngx_http_ai_guard_remember(ngx_pool_t *pool,
    ngx_str_t *s, cJSON *item);

static ngx_int_t ngx_http_ai_guard_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_guard_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_guard_init(ngx_conf_t *cf);
static void *ngx_http_ai_guard_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_guard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_guard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_ai_guard_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_http_ai_guard_slot_t *ngx_http_ai_guard_slot(ngx_conf_t *cf,
    ngx_str_t *name, ngx_uint_t action);
static ngx_int_t ngx_http_ai_guard_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_guard_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_ai_guard_commands[] = {

    { ngx_string("ai_guard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_guard_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_ai_gateway_guard_module_ctx = {
    ngx_http_ai_guard_add_variables,       /* preconfiguration */
    ngx_http_ai_guard_init,                /* postconfiguration */

    ngx_http_ai_guard_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_guard_create_loc_conf,     /* create location configuration */
    ngx_http_ai_guard_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_ai_gateway_guard_module = {
    NGX_MODULE_V1,
    &ngx_ai_gateway_guard_module_ctx,      /* module context */
    ngx_http_ai_guard_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ai_guard_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_ai_guard_zone_name =
    ngx_string("ai_gateway_guards");

static ngx_str_t  ngx_http_ai_guard_var = ngx_string("ai_guard");

static ngx_str_t  ngx_http_ai_guard_actions[] = {
    ngx_null_string,
    ngx_string("deny"),
    ngx_string("redact")
};


#if (NGX_PCRE2)
#endif


/*
 * A whole answer (a chat.completion) with the response-scope matches of
 * its choices' text replaced; *body is left as it is when nothing
 * matched.
 */

ngx_int_t
ngx_http_ai_guard_answer(ngx_http_request_t *r, ngx_str_t *body)
{
    cJSON                         *root, *choice, *msg, *item;
    ngx_uint_t                     i, changed;
    ngx_array_t                    texts;
    ngx_http_ai_guards_t          *g;
    ngx_http_ai_guard_ctx_t       *gctx;
    ngx_http_ai_guard_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_guard_module);
    g = glcf->guards;

    if (g == NULL || !(g->redact & NGX_HTTP_AI_GUARD_RESPONSE)) {
        return NGX_OK;
    }

    gctx = ngx_http_ai_guard_get_ctx(r);
    if (gctx == NULL) {
        return NGX_ERROR;
    }

    root = ngx_ai_json_parse(r->pool, body->data, body->len);

    if (!cJSON_IsObject(root)) {
        return NGX_OK;
    }

    if (ngx_array_init(&texts, r->pool, 4, sizeof(cJSON *)) != NGX_OK) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(choice,
                       cJSON_GetObjectItemCaseSensitive(root, "choices"))
    {
        msg = cJSON_GetObjectItemCaseSensitive(choice, "message");

        if (!cJSON_IsObject(msg)) {
            continue;
        }

        cJSON_ArrayForEach(item, msg) {
            if (ngx_http_ai_guard_text(item, &texts) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    changed = 0;

    for (i = 0; i < texts.nelts; i++) {
        if (ngx_http_ai_guard_redact_item(r, gctx, g,
                                          NGX_HTTP_AI_GUARD_RESPONSE,
                                          ((cJSON **) texts.elts)[i],
                                          &changed)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (!changed) {
        return NGX_OK;
    }

    return ngx_ai_json_print(r->pool, root, body);
}


/*
 * A piece of the answer's stream (OpenAI chunks as the gateway sends
 * them) with the response-scope matches of its content deltas replaced.
 * Content is held back (NGX_HTTP_AI_GUARD_WINDOW bytes, and any match
 * that reaches the end of what came so far) until the next delta shows
 * that no match continues into it; a chunk whose delta is all held back
 * is not sent, and what is held is sent before the finish chunk, an
 * error event, or the end.  *data is replaced by what to send.
 */

ngx_int_t
ngx_http_ai_guard_stream(ngx_http_request_t *r, ngx_str_t *data,
    ngx_uint_t last)
{
    size_t                         i, e;
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_http_ai_ctx_t             *ctx;
    ngx_http_ai_guards_t          *g;
    ngx_http_ai_guard_ctx_t       *gctx;
    ngx_http_ai_guard_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_guard_module);
    g = glcf->guards;

    if (g == NULL) {
        return NGX_OK;
    }

    /* deny rules alone: they see the error event, which comes last */

    if (!(g->redact & NGX_HTTP_AI_GUARD_RESPONSE) && (!g->deny || !last)) {
        return NGX_OK;
    }

    gctx = ngx_http_ai_guard_get_ctx(r);
    if (gctx == NULL) {
        return NGX_ERROR;
    }

    if (!gctx->stream) {
        ctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_module);

        /* ctx->chat: the model for chunks that named none */

        if (ctx == NULL
            || ngx_ai_sse_init(&gctx->sse, r->pool, 0) != NGX_OK
            || ngx_ai_stream_init(&gctx->st, r->pool, &ctx->chat, 0)
               != NGX_OK
            || ngx_ai_buf_init(&gctx->pending, r->pool, 256) != NGX_OK)
        {
            return NGX_ERROR;
        }

        gctx->st.role_sent = 1;         /* chunks of content only */
        gctx->stream = 1;
        gctx->light = !(g->redact & NGX_HTTP_AI_GUARD_RESPONSE);
    }

    gctx->st.out.len = 0;
    p = data->data;

    /* comments (": keep-alive") pass as they are, ahead of the events */

    for (i = 0; i < data->len; i++) {
        if (p[i] == ':'
            && (i ? p[i - 1] == '\n' || p[i - 1] == '\r'
                  : gctx->sse.line.len == 0))
        {
            for (e = i; e < data->len && p[e] != '\n' && p[e] != '\r'; e++) {
                /* void */
            }

            if (ngx_ai_buf_append(&gctx->st.out, p + i, e - i) != NGX_OK
                || ngx_ai_buf_append(&gctx->st.out, "\n\n", 2) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    rc = ngx_ai_sse_feed(&gctx->sse, p, p + data->len,
                         ngx_http_ai_guard_sse_event, r);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (last && gctx->pending.len
        && ngx_http_ai_guard_release(r, gctx, 1, NULL) != NGX_OK)
    {
        return NGX_ERROR;
    }

    data->data = gctx->st.out.data;
    data->len = gctx->st.out.len;

    return NGX_OK;
}


/*
 * An error message for the client (the gateway's own, a provider's
 * relayed): a deny rule's match withholds it, since what deny rules match
 * must not cross the gateway, and the response-scope redact rules replace
 * their matches.  *message is left as it is when nothing matched; the
 * refusal of a deny rule itself is not checked again.
 */

ngx_int_t
ngx_http_ai_guard_error(ngx_http_request_t *r, ngx_str_t *message)
{
    ngx_http_ai_guards_t          *g;
    ngx_http_ai_guard_ctx_t       *gctx;
    ngx_http_ai_guard_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_guard_module);
    g = glcf->guards;

    if (g == NULL || message->len == 0
        || (!g->deny && !(g->redact & NGX_HTTP_AI_GUARD_RESPONSE)))
    {
        return NGX_OK;
    }

    gctx = ngx_http_ai_guard_get_ctx(r);
    if (gctx == NULL) {
        return NGX_ERROR;
    }

    if (gctx->deny) {
        return NGX_OK;
    }

    return ngx_http_ai_guard_message(r, gctx, g, message);
}


/* as above; a changed message is NUL-terminated */

static ngx_int_t
ngx_http_ai_guard_message(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_http_ai_guards_t *g,
    ngx_str_t *message)
{
    u_char                    *p;
    size_t                     start, end;
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_ai_buf_t               b;
    ngx_http_ai_guard_rule_t  *rule;

    rule = g->rules.elts;

    for (i = 0; g->deny && i < g->rules.nelts; i++) {

        if (rule[i].action != NGX_HTTP_AI_GUARD_DENY) {
            continue;
        }

        rc = ngx_http_ai_guard_find(r, &rule[i], message->data, message->len,
                                    0, &start, &end);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rule[i].slot->counter) {
            (void) ngx_atomic_fetch_add(&rule[i].slot->counter->matches, 1);
            (void) ngx_atomic_fetch_add(&rule[i].slot->counter->requests, 1);
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai guard: error message withheld by rule \"%V\"",
                      &rule[i].name);

        p = ngx_pnalloc(r->pool, rule[i].name.len + 64);
        if (p == NULL) {
            return NGX_ERROR;
        }

        message->data = p;
        message->len = ngx_sprintf(p, "The error message was withheld by a "
                                   "guard (%V).%Z", &rule[i].name)
                       - p - 1;
        return NGX_OK;
    }

    if (!(g->redact & NGX_HTTP_AI_GUARD_RESPONSE)) {
        return NGX_OK;
    }

    if (ngx_http_ai_guard_scan(r, gctx, g, NGX_HTTP_AI_GUARD_RESPONSE,
                               message->data, message->len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (gctx->matches.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_ai_buf_init(&b, r->pool, message->len + 64) != NGX_OK
        || ngx_http_ai_guard_render(gctx, message->data, message->len, &b)
           != NGX_OK
        || ngx_ai_buf_append(&b, "", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    message->data = b.data;
    message->len = b.len - 1;

    return NGX_OK;
}


/*
 * The status "guards" array, [{"name","action","matches","requests"}]:
 * the rules of the running configuration, counted by every worker.
 */

void
ngx_http_ai_guard_status_json(ngx_http_request_t *r, ngx_ai_jw_t *w)
{
    ngx_uint_t                      i;
    ngx_http_ai_guard_slot_t      **slot;
    ngx_http_ai_guard_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_ai_gateway_guard_module);

    ngx_ai_jw_array(w);

    slot = gmcf->slots.elts;

    for (i = 0; i < gmcf->slots.nelts; i++) {
        ngx_ai_jw_object(w);
        ngx_ai_jw_key_string(w, "name", slot[i]->name.data,
                             slot[i]->name.len);
        ngx_ai_jw_key_string(w, "action",
                             ngx_http_ai_guard_actions[slot[i]->action].data,
                             ngx_http_ai_guard_actions[slot[i]->action].len);
        ngx_ai_jw_key_uint(w, "matches",
                           slot[i]->counter ? slot[i]->counter->matches : 0);
        ngx_ai_jw_key_uint(w, "requests",
                           slot[i]->counter ? slot[i]->counter->requests : 0);
        ngx_ai_jw_end(w);
    }

    ngx_ai_jw_end(w);
}


/* collects item when it is a "content", "text" or "refusal" string */

static ngx_int_t
ngx_http_ai_guard_text(cJSON *item, ngx_array_t *a)
{
    cJSON  **p;

    if (!cJSON_IsString(item) || item->valuestring == NULL
        || item->valuestring[0] == '\0' || item->string == NULL
        || (ngx_strcmp(item->string, "content") != 0
            && ngx_strcmp(item->string, "text") != 0
            && ngx_strcmp(item->string, "refusal") != 0))
    {
        return NGX_OK;
    }

    p = ngx_array_push(a);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *p = item;

    return NGX_OK;
}


/* a string item of a JSON tree with its matches replaced */

static ngx_int_t
ngx_http_ai_guard_redact_item(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_http_ai_guards_t *g, ngx_uint_t scope,
    cJSON *item, ngx_uint_t *changed)
{
    u_char        *text;
    size_t         len;
    ngx_ai_buf_t   b;

    text = (u_char *) item->valuestring;
    len = ngx_strlen(item->valuestring);

    if (ngx_http_ai_guard_scan(r, gctx, g, scope, text, len) != NGX_OK) {
        return NGX_ERROR;
    }

    if (gctx->matches.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_ai_buf_init(&b, r->pool, len + 64) != NGX_OK
        || ngx_http_ai_guard_render(gctx, text, len, &b) != NGX_OK
        || ngx_ai_buf_append(&b, "", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the trees are parsed ones: their strings are their own */

    if (cJSON_SetValuestring(item, (char *) b.data) == NULL) {
        return NGX_ERROR;
    }

    *changed = 1;

    return NGX_OK;
}


/* one event of the answer's stream */

static ngx_int_t
ngx_http_ai_guard_sse_event(void *data, ngx_ai_sse_event_t *ev)
{
    ngx_http_request_t *r = data;

    cJSON                    *root, *error;
    ngx_int_t                 rc;
    ngx_http_ai_guard_ctx_t  *gctx;

    gctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_guard_module);

    root = ngx_ai_json_scratch(&gctx->st.scratch, r->pool, &ev->data);
    error = cJSON_GetObjectItemCaseSensitive(root, "error");

    if (cJSON_IsObject(root) && error == NULL && !gctx->light) {
        rc = ngx_http_ai_guard_chunk(r, gctx, ev, root);
        ngx_ai_json_scratch_done(gctx->st.scratch, root);
        return rc;
    }

    /* [DONE], an error event: what is held goes first */

    rc = NGX_OK;

    if (gctx->pending.len) {
        rc = ngx_http_ai_guard_release(r, gctx, 1, NULL);
    }

    if (rc == NGX_OK) {
        rc = cJSON_IsObject(root) && cJSON_IsObject(error)
             ? ngx_http_ai_guard_error_event(r, gctx, ev, root, error)
             : ngx_ai_sse_data_event(&gctx->st.out, &ev->data);
    }

    ngx_ai_json_scratch_done(gctx->st.scratch, root);

    return rc;
}


/* the gateway's error event, its message as ngx_http_ai_guard_error() */

static ngx_int_t
ngx_http_ai_guard_error_event(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_ai_sse_event_t *ev, cJSON *root,
    cJSON *error)
{
    cJSON                         *msg;
    ngx_str_t                      s, line;
    ngx_http_ai_guard_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_guard_module);

    msg = cJSON_GetObjectItemCaseSensitive(error, "message");

    if (!cJSON_IsString(msg)) {
        return ngx_ai_sse_data_event(&gctx->st.out, &ev->data);
    }

    s.data = (u_char *) msg->valuestring;
    s.len = ngx_strlen(msg->valuestring);

    if (ngx_http_ai_guard_message(r, gctx, glcf->guards, &s) != NGX_OK) {
        return NGX_ERROR;
    }

    if (s.data == (u_char *) msg->valuestring) {
        return ngx_ai_sse_data_event(&gctx->st.out, &ev->data);
    }

    if (cJSON_SetValuestring(msg, (char *) s.data) == NULL
        || ngx_ai_json_print(r->pool, root, &line) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_ai_sse_data_event(&gctx->st.out, &line);
}


static ngx_int_t
ngx_http_ai_guard_chunk(ngx_http_request_t *r, ngx_http_ai_guard_ctx_t *gctx,
    ngx_ai_sse_event_t *ev, cJSON *root)
{
    cJSON         *choices, *choice, *delta, *content, *finish, *created;
    ngx_str_t      line;
    ngx_uint_t     all, others;
    ngx_ai_buf_t   text;

    if (ngx_http_ai_guard_remember(r->pool, &gctx->st.id,
            cJSON_GetObjectItemCaseSensitive(root, "id")) != NGX_OK
        || ngx_http_ai_guard_remember(r->pool, &gctx->st.model,
               cJSON_GetObjectItemCaseSensitive(root, "model")) != NGX_OK)
    {
        return NGX_ERROR;
    }

    created = cJSON_GetObjectItemCaseSensitive(root, "created");

    if (cJSON_IsNumber(created) && created->valuedouble >= 0
        && created->valuedouble < 1e12)
    {
        gctx->st.created = (time_t) created->valuedouble;
    }

    choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    choice = cJSON_GetArrayItem(choices, 0);
    delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    content = cJSON_GetObjectItemCaseSensitive(delta, "content");
    finish = cJSON_GetObjectItemCaseSensitive(choice, "finish_reason");

    /* the end of the text: a finish, the usage chunk, a tool call */

    all = cJSON_IsString(finish) || choice == NULL
          || cJSON_GetObjectItemCaseSensitive(delta, "tool_calls") != NULL;

    if (!cJSON_IsString(content) || content->valuestring[0] == '\0') {

        if (all && gctx->pending.len
            && ngx_http_ai_guard_release(r, gctx, 1, NULL) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_ai_sse_data_event(&gctx->st.out, &ev->data);
    }

    if (ngx_ai_buf_append_str(&gctx->pending, content->valuestring)
        != NGX_OK
        || ngx_ai_buf_init(&text, r->pool, gctx->pending.len + 64) != NGX_OK
        || ngx_http_ai_guard_release(r, gctx, all, &text) != NGX_OK
        || ngx_ai_buf_append(&text, "", 1) != NGX_OK)
    {
        return NGX_ERROR;
    }

    others = cJSON_GetArraySize(delta) > 1 || all;

    if (text.len == 1 && !others) {
        return NGX_OK;                      /* all of it held back */
    }

    if (cJSON_SetValuestring(content, (char *) text.data) == NULL) {
        return NGX_ERROR;
    }

    if (ngx_ai_json_print(r->pool, root, &line) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_sse_data_event(&gctx->st.out, &line);
}


/*
 * What of gctx->pending may go out, redacted: all of it, or all but what
 * a match may still continue from.  Into text, or as a content chunk of
 * its own when text is NULL.
 */

static ngx_int_t
ngx_http_ai_guard_release(ngx_http_request_t *r,
    ngx_http_ai_guard_ctx_t *gctx, ngx_uint_t all, ngx_ai_buf_t *text)
{
    u_char                        *p;
    size_t                         len, cut;
    ngx_uint_t                     i, moved;
    ngx_ai_buf_t                   b;
    ngx_http_ai_guard_match_t     *m;
    ngx_http_ai_guard_loc_conf_t  *glcf;

    glcf = ngx_http_get_module_loc_conf(r, ngx_ai_gateway_guard_module);

    p = gctx->pending.data;
    len = gctx->pending.len;

    if (ngx_http_ai_guard_scan(r, gctx, glcf->guards,
                               NGX_HTTP_AI_GUARD_RESPONSE, p, len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    m = gctx->matches.elts;

    if (all || len > NGX_HTTP_AI_GUARD_MAX_HOLD) {
        cut = len;

    } else {
        cut = (len > NGX_HTTP_AI_GUARD_WINDOW)
              ? len - NGX_HTTP_AI_GUARD_WINDOW : 0;

        do {
            moved = 0;

            /* not in the middle of a UTF-8 character */

            while (cut > 0 && cut < len && (p[cut] & 0xc0) == 0x80) {
                cut--;
            }

            /* not in a match, nor after the start of one that reaches
             * the end: it may go on in the next delta */

            for (i = 0; i < gctx->matches.nelts; i++) {
                if (m[i].start < cut && (m[i].end > cut || m[i].end == len)) {
                    cut = m[i].start;
                    moved = 1;
                }
            }

        } while (moved);
    }

    if (text == NULL) {
        if (ngx_ai_buf_init(&b, r->pool, cut + 64) != NGX_OK) {
            return NGX_ERROR;
        }

        text = &b;
    }

    if (ngx_http_ai_guard_render(gctx, p, cut, text) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memmove(p, p + cut, len - cut);
    gctx->pending.len = len - cut;

    if (text != &b) {
        return NGX_OK;
    }

    return ngx_ai_stream_content(&gctx->st, b.data, b.len);
}


/* keeps a chunk's string member (id, model) for chunks made here */

static ngx_int_t
ngx_http_ai_guard_remember(ngx_pool_t *pool, ngx_str_t *s, cJSON *item)
{
    if (!cJSON_IsString(item) || s->len) {
        return NGX_OK;
    }

    s->len = ngx_strlen(item->valuestring);

    s->data = ngx_pnalloc(pool, s->len);
    if (s->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(s->data, item->valuestring, s->len);

    return NGX_OK;
}


/* $ai_guard: "deny:NAME", "redact:NAME,NAME", or not found ("-") */

static ngx_int_t
ngx_http_ai_guard_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                     *p;
    size_t                      len;
    ngx_uint_t                  i;
    ngx_http_ai_guard_ctx_t    *gctx;
    ngx_http_ai_guard_slot_t  **hit;

    gctx = ngx_http_get_module_ctx(r->main, ngx_ai_gateway_guard_module);

    if (gctx == NULL || (gctx->deny == NULL && gctx->hits.nelts == 0)) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    if (gctx->deny) {
        len = sizeof("deny:") - 1 + gctx->deny->name.len;

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        v->len = ngx_sprintf(p, "deny:%V", &gctx->deny->name) - p;

        return NGX_OK;
    }

    hit = gctx->hits.elts;
    len = sizeof("redact:") - 1;

    for (i = 0; i < gctx->hits.nelts; i++) {
        len += hit[i]->name.len + 1;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    p = ngx_cpymem(p, "redact:", sizeof("redact:") - 1);

    for (i = 0; i < gctx->hits.nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, hit[i]->name.data, hit[i]->name.len);
    }

    v->len = p - v->data;

    return NGX_OK;
}


/* the hooks the core calls (ngx_ai_gateway_policy.c) */

static ngx_http_ai_policy_t  ngx_http_ai_guard_policy = {
    ngx_http_ai_guard_request,             /* request */
    NULL,                                  /* admit */
    NULL,                                  /* attempt */
    NULL,                                  /* call_done */
    NULL,                                  /* headers */
    ngx_http_ai_guard_answer,              /* answer */
    ngx_http_ai_guard_error,               /* error */
    ngx_http_ai_guard_stream,              /* stream */
    NULL,                                  /* end */
    NULL,                                  /* log */
    NULL                                   /* plan */
};


static ngx_int_t
ngx_http_ai_guard_init(ngx_conf_t *cf)
{
    return ngx_http_ai_policy_add(cf, &ngx_http_ai_guard_policy);
}


static ngx_int_t
ngx_http_ai_guard_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    var = ngx_http_add_variable(cf, &ngx_http_ai_guard_var,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_ai_guard_variable;

    return NGX_OK;
}


static void *
ngx_http_ai_guard_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_guard_main_conf_t  *gmcf;

    gmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_main_conf_t));
    if (gmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&gmcf->slots, cf->pool, 4,
                       sizeof(ngx_http_ai_guard_slot_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return gmcf;
}


static void *
ngx_http_ai_guard_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_guard_loc_conf_t  *glcf;

    glcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_loc_conf_t));
    if (glcf == NULL) {
        return NULL;
    }

    glcf->guards = NGX_CONF_UNSET_PTR;

    return glcf;
}


/* as add_header: a level with ai_guard rules of its own does not inherit */

static char *
ngx_http_ai_guard_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_guard_loc_conf_t  *prev = parent;
    ngx_http_ai_guard_loc_conf_t  *conf = child;

    ngx_conf_merge_ptr_value(conf->guards, prev->guards, NULL);

    return NGX_CONF_OK;
}


/*
 * ai_guard NAME regex=RE action=deny|redact [scope=request|response|both]
 *     [check=luhn]
 * ai_guard off
 */

static char *
ngx_http_ai_guard_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_loc_conf_t *glcf = conf;

    u_char                    *c, errstr[NGX_MAX_CONF_ERRSTR];
    ngx_str_t                 *value, s, regex;
    ngx_uint_t                 i;
    ngx_regex_compile_t        rc;
    ngx_http_ai_guards_t      *g;
    ngx_http_ai_guard_rule_t  *rule;

    value = cf->args->elts;

    if (cf->args->nelts == 2 && value[1].len == 3
        && ngx_strncmp(value[1].data, "off", 3) == 0)
    {
        if (glcf->guards != NGX_CONF_UNSET_PTR) {
            return "is duplicate, or mixes \"off\" with rules";
        }

        glcf->guards = NULL;
        return NGX_CONF_OK;
    }

    if (glcf->guards == NULL) {
        return "mixes \"off\" with rules";
    }

    if (value[1].len == 0 || value[1].len > NGX_HTTP_AI_GUARD_NAME_LEN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid guard name \"%V\": 1 to %d characters",
                           &value[1], NGX_HTTP_AI_GUARD_NAME_LEN);
        return NGX_CONF_ERROR;
    }

    for (c = value[1].data; c < value[1].data + value[1].len; c++) {
        if (!(*c >= 'a' && *c <= 'z') && !(*c >= 'A' && *c <= 'Z')
            && !(*c >= '0' && *c <= '9') && *c != '-' && *c != '_'
            && *c != '.')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid guard name \"%V\": use letters, "
                               "digits, \"-\", \"_\" and \".\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (glcf->guards == NGX_CONF_UNSET_PTR) {
        g = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guards_t));
        if (g == NULL
            || ngx_array_init(&g->rules, cf->pool, 4,
                              sizeof(ngx_http_ai_guard_rule_t))
               != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        glcf->guards = g;
    }

    g = glcf->guards;
    rule = g->rules.elts;

    for (i = 0; i < g->rules.nelts; i++) {
        if (rule[i].name.len == value[1].len
            && ngx_strncmp(rule[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate ai_guard \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(&g->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_ai_guard_rule_t));
    rule->name = value[1];
    rule->scope = NGX_HTTP_AI_GUARD_REQUEST;
    ngx_str_null(&regex);

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "regex=", 6) == 0) {
            regex.data = value[i].data + 6;
            regex.len = value[i].len - 6;
            continue;
        }

        if (ngx_strncmp(value[i].data, "action=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            if (s.len == 4 && ngx_strncmp(s.data, "deny", 4) == 0) {
                rule->action = NGX_HTTP_AI_GUARD_DENY;

            } else if (s.len == 6 && ngx_strncmp(s.data, "redact", 6) == 0) {
                rule->action = NGX_HTTP_AI_GUARD_REDACT;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": action is deny or "
                                   "redact", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "scope=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            if (s.len == 7 && ngx_strncmp(s.data, "request", 7) == 0) {
                rule->scope = NGX_HTTP_AI_GUARD_REQUEST;

            } else if (s.len == 8 && ngx_strncmp(s.data, "response", 8) == 0)
            {
                rule->scope = NGX_HTTP_AI_GUARD_RESPONSE;

            } else if (s.len == 4 && ngx_strncmp(s.data, "both", 4) == 0) {
                rule->scope = NGX_HTTP_AI_GUARD_REQUEST
                              |NGX_HTTP_AI_GUARD_RESPONSE;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": scope is request, "
                                   "response or both", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (value[i].len == 10
            && ngx_strncmp(value[i].data, "check=luhn", 10) == 0)
        {
            rule->luhn = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": ai_guard takes "
                           "regex=, action=, scope= and check=luhn",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    if (regex.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard \"%V\" needs regex=", &rule->name);
        return NGX_CONF_ERROR;
    }

    if (rule->action == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard \"%V\" needs action=deny or "
                           "action=redact", &rule->name);
        return NGX_CONF_ERROR;
    }

    if (rule->action == NGX_HTTP_AI_GUARD_DENY
        && rule->scope != NGX_HTTP_AI_GUARD_REQUEST)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_guard \"%V\": action=deny applies to "
                           "requests only (an answer cannot be refused "
                           "once it streams); use action=redact for "
                           "responses", &rule->name);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = regex;
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "ai_guard \"%V\": %V",
                           &rule->name, &rc.err);
        return NGX_CONF_ERROR;
    }

    rule->regex = rc.regex;

    rule->replacement.len = sizeof("[REDACTED:]") - 1 + rule->name.len;
    rule->replacement.data = ngx_pnalloc(cf->pool, rule->replacement.len);
    if (rule->replacement.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(rule->replacement.data, "[REDACTED:%V]", &rule->name);

    rule->slot = ngx_http_ai_guard_slot(cf, &rule->name, rule->action);
    if (rule->slot == NULL) {
        return NGX_CONF_ERROR;
    }

    g->scopes |= rule->scope;

    if (rule->action == NGX_HTTP_AI_GUARD_REDACT) {
        g->redact |= rule->scope;

    } else {
        g->deny = 1;
    }

    return NGX_CONF_OK;
}


/* the counted rule of that name and action; the zone on the first one */

static ngx_http_ai_guard_slot_t *
ngx_http_ai_guard_slot(ngx_conf_t *cf, ngx_str_t *name, ngx_uint_t action)
{
    ngx_uint_t                      i;
    ngx_http_ai_guard_slot_t       *slot, **s;
    ngx_http_ai_guard_main_conf_t  *gmcf;

    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_ai_gateway_guard_module);

    s = gmcf->slots.elts;

    for (i = 0; i < gmcf->slots.nelts; i++) {
        if (s[i]->action == action && s[i]->name.len == name->len
            && ngx_strncmp(s[i]->name.data, name->data, name->len) == 0)
        {
            return s[i];
        }
    }

    if (gmcf->zone == NULL) {
        gmcf->zone = ngx_shared_memory_add(cf, &ngx_http_ai_guard_zone_name,
                                           NGX_HTTP_AI_GUARD_ZONE_SIZE,
                                           &ngx_ai_gateway_guard_module);
        if (gmcf->zone == NULL) {
            return NULL;
        }

        gmcf->zone->init = ngx_http_ai_guard_init_zone;
        gmcf->zone->data = gmcf;
    }

    slot = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_slot_t));
    s = ngx_array_push(&gmcf->slots);
    if (slot == NULL || s == NULL) {
        return NULL;
    }

    slot->name = *name;
    slot->action = action;
    *s = slot;

    return slot;
}


/*
 * The counters live across reloads: a rule keeps its counts as long as
 * its name and action stay.  Rules new to the zone get a counter while
 * there is room.
 */

static ngx_int_t
ngx_http_ai_guard_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_guard_main_conf_t  *ogmcf = data;

    ngx_uint_t                      i, j;
    ngx_slab_pool_t                *shpool;
    ngx_http_ai_guard_sh_t         *sh;
    ngx_http_ai_guard_slot_t      **slot;
    ngx_http_ai_guard_counter_t    *c;
    ngx_http_ai_guard_main_conf_t  *gmcf;

    gmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ogmcf) {
        sh = ogmcf->sh;

    } else if (shm_zone->shm.exists) {
        sh = shpool->data;

    } else {
        sh = ngx_slab_calloc(shpool, sizeof(ngx_http_ai_guard_sh_t));
        if (sh == NULL) {
            return NGX_ERROR;
        }

        shpool->data = sh;
    }

    gmcf->sh = sh;

    ngx_shmtx_lock(&shpool->mutex);

    slot = gmcf->slots.elts;

    for (i = 0; i < gmcf->slots.nelts; i++) {
        c = NULL;

        for (j = 0; j < sh->n; j++) {
            if (sh->counters[j].action == slot[i]->action
                && sh->counters[j].len == slot[i]->name.len
                && ngx_strncmp(sh->counters[j].name, slot[i]->name.data,
                               slot[i]->name.len) == 0)
            {
                c = &sh->counters[j];
                break;
            }
        }

        if (c == NULL && sh->n < NGX_HTTP_AI_GUARD_MAX) {
            c = &sh->counters[sh->n++];
            c->len = slot[i]->name.len;
            c->action = slot[i]->action;
            ngx_memcpy(c->name, slot[i]->name.data, c->len);
        }

        if (c == NULL) {
            ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                          "ai_guard \"%V\" is not counted: more than %d "
                          "rules since the start", &slot[i]->name,
                          NGX_HTTP_AI_GUARD_MAX);
        }

        slot[i]->counter = c;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    return NGX_OK;
}


static void
ngx_http_ai_guard_exit_process(ngx_cycle_t *cycle)
{
#if (NGX_PCRE2)
    ngx_http_ai_guard_match_free();
#endif
}
