
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The gateway's routes: which API a request's path asks for, the methods
 * it takes and the client dialect it is answered in.  A path is matched
 * by its end, so a route works under any location ("/v1/", "/ai/v1/",
 * a regex location); "models/{id}" is matched by the "/models/" segment.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_ai_gateway_pure.h"


static ngx_uint_t ngx_ai_route_suffix(u_char *p, size_t len,
    ngx_str_t *suffix);


/* first match wins: longer suffixes before the routes they end with */

static ngx_ai_route_t  ngx_ai_routes[] = {

    { ngx_string("/chat/completions"), NGX_AI_OP_CHAT, NGX_AI_ROUTE_POST,
      "POST", "chat/completions takes POST", NULL },

    { ngx_string("/messages/count_tokens"), NGX_AI_OP_COUNT,
      NGX_AI_ROUTE_POST, "POST", "messages/count_tokens takes POST",
      &ngx_ai_messages_count_dialect },

    { ngx_string("/messages"), NGX_AI_OP_CHAT, NGX_AI_ROUTE_POST,
      "POST", "messages takes POST", &ngx_ai_messages_dialect },

    { ngx_string("/embeddings"), NGX_AI_OP_EMBED, NGX_AI_ROUTE_POST,
      "POST", "embeddings takes POST", NULL },
    { ngx_string("/responses"), NGX_AI_OP_CHAT, NGX_AI_ROUTE_POST,
      "POST", "responses takes POST", &ngx_ai_responses_dialect },

    { ngx_string("/models"), NGX_AI_OP_MODELS, NGX_AI_ROUTE_GET,
      "GET, HEAD", "models takes GET", NULL },

    { ngx_null_string, 0, 0, NULL, NULL, NULL }
};


/* models/{id}: the id is the rest of the path, and may hold '/' */

static ngx_ai_route_t  ngx_ai_route_model = {
    ngx_string("/models/"), NGX_AI_OP_MODEL, NGX_AI_ROUTE_GET,
    "GET, HEAD", "models takes GET", NULL
};


/* an unknown path under the Messages API is answered as Anthropic errors */

static ngx_ai_route_t  ngx_ai_route_unknown_messages = {
    ngx_string("/messages/"), NGX_AI_OP_UNKNOWN, 0, NULL, NULL,
    &ngx_ai_messages_dialect
};


/* responses/{id} and what hangs off it look up stored responses */

static ngx_ai_route_t  ngx_ai_route_stored_response = {
    ngx_string("/responses/"), NGX_AI_OP_UNKNOWN, 0, NULL,
    "The gateway stores no responses: retrieving, cancelling, deleting a "
    "response or listing its input items is not served; send the whole "
    "input with each request", NULL
};


static ngx_ai_route_t  ngx_ai_route_unknown = {
    ngx_null_string, NGX_AI_OP_UNKNOWN, 0, NULL, NULL, NULL
};


ngx_ai_route_t *
ngx_ai_route_find(u_char *p, size_t len)
{
    ngx_ai_route_t  *rt;

    for (rt = ngx_ai_routes; rt->suffix.len; rt++) {
        if (ngx_ai_route_suffix(p, len, &rt->suffix)) {
            return rt;
        }
    }

    if (ngx_ai_route_model_id(p, len, NULL) == NGX_OK) {
        return &ngx_ai_route_model;
    }

    if (ngx_ai_route_segment(p, len, &ngx_ai_route_unknown_messages.suffix)
        != NULL)
    {
        return &ngx_ai_route_unknown_messages;
    }

    if (ngx_ai_route_segment(p, len, &ngx_ai_route_stored_response.suffix)
        != NULL)
    {
        return &ngx_ai_route_stored_response;
    }

    return &ngx_ai_route_unknown;
}


static ngx_uint_t
ngx_ai_route_suffix(u_char *p, size_t len, ngx_str_t *suffix)
{
    return len >= suffix->len
           && ngx_strncmp(p + len - suffix->len, suffix->data, suffix->len)
              == 0;
}


/* the first byte after the first "seg" in the path, or NULL */

u_char *
ngx_ai_route_segment(u_char *p, size_t len, ngx_str_t *seg)
{
    u_char  *last;

    if (len < seg->len) {
        return NULL;
    }

    for (last = p + len - seg->len; p <= last; p++) {
        if (ngx_strncmp(p, seg->data, seg->len) == 0) {
            return p + seg->len;
        }
    }

    return NULL;
}


/* the id of models/{id}, everything after the first "/models/" */

ngx_int_t
ngx_ai_route_model_id(u_char *p, size_t len, ngx_str_t *id)
{
    u_char  *start;

    start = ngx_ai_route_segment(p, len, &ngx_ai_route_model.suffix);

    if (start == NULL || start == p + len) {
        return NGX_DECLINED;
    }

    if (id) {
        id->data = start;
        id->len = p + len - start;
    }

    return NGX_OK;
}
