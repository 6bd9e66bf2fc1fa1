
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The OpenAI chunk stream that translators of other wire formats write:
 * the stream state, chat.completion.chunk events, content, tool calls,
 * the finish and usage chunks, errors.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


ngx_int_t
ngx_ai_stream_init(ngx_ai_stream_t *st, ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, time_t now)
{
    ngx_memzero(st, sizeof(ngx_ai_stream_t));

    st->pool = pool;
    st->req = req;
    st->created = now;

    return ngx_ai_buf_init(&st->out, pool, 1024);
}


/*
 * Chunk writers for translators of other wire formats.  Every chunk is
 * "data: {chat.completion.chunk}\n\n" with st->id, st->created, st->model;
 * the text is written straight into st->out, with no allocation per chunk
 * once st->out has grown to the size of what is sent between flushes.
 */

#define NGX_AI_STREAM_MAX_ID  128


/*
 * Sets st->id ("chatcmpl-" + the provider's id, or one made from
 * st->created) and st->model once, and sends the first chunk, the
 * assistant role, once.  Safe to call before every chunk.
 */

ngx_int_t
ngx_ai_stream_start(ngx_ai_stream_t *st, const u_char *id, size_t len)
{
    ngx_ai_buf_t  b;

    if (st->model.len == 0) {
        st->model = st->req->model;
    }

    if (st->id.len == 0) {
        if (len > NGX_AI_STREAM_MAX_ID) {
            len = NGX_AI_STREAM_MAX_ID;

            /* not in the middle of a UTF-8 character */

            while (len && (id[len] & 0xc0) == 0x80) {
                len--;
            }
        }

        if (ngx_ai_buf_init(&b, st->pool, len + 32) != NGX_OK) {
            return NGX_ERROR;
        }

        if (len < 9 || ngx_strncmp(id, "chatcmpl-", 9) != 0) {
            (void) ngx_ai_buf_append_str(&b, "chatcmpl-");
        }

        if (len) {
            (void) ngx_ai_buf_append(&b, id, len);

        } else {
            (void) ngx_ai_buf_append_str(&b, "ai");
            (void) ngx_ai_buf_append_uint(&b, (uint64_t) (st->created > 0
                                                         ? st->created : 0));
        }

        /* the reserve above makes these appends infallible */

        st->id.data = b.data;
        st->id.len = b.len;
    }

    if (st->role_sent) {
        return NGX_OK;
    }

    st->role_sent = 1;

    if (ngx_ai_stream_chunk_open(st) != NGX_OK
        || ngx_ai_buf_append_str(&st->out, "{\"role\":\"assistant\","
                                           "\"content\":\"\"}")
           != NGX_OK
        || ngx_ai_stream_chunk_close(st, NULL) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "data: {...,"choices":[{"index":0,"delta":" */

ngx_int_t
ngx_ai_stream_chunk_open(ngx_ai_stream_t *st)
{
    ngx_ai_buf_t  *b;

    b = &st->out;

    if (ngx_ai_buf_reserve(b, st->id.len + st->model.len + 160) != NGX_OK
        || ngx_ai_buf_append_str(b, "data: {\"id\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, st->id.data, st->id.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"object\":\"chat.completion.chunk\","
                                    "\"created\":")
           != NGX_OK
        || ngx_ai_buf_append_uint(b, (uint64_t) (st->created > 0
                                                 ? st->created : 0))
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"model\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, st->model.data, st->model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"choices\":[{\"index\":0,"
                                    "\"delta\":")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ","logprobs":null,"finish_reason":...}]}\n\n" */

ngx_int_t
ngx_ai_stream_chunk_close(ngx_ai_stream_t *st, const char *finish)
{
    ngx_ai_buf_t  *b;

    b = &st->out;

    if (ngx_ai_buf_append_str(b, ",\"logprobs\":null,\"finish_reason\":")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (finish) {
        if (ngx_ai_buf_append_json_string(b, (u_char *) finish,
                                          ngx_strlen(finish))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(b, "null") != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_ai_buf_append_str(b, "}]}\n\n");
}


/* a content delta */

ngx_int_t
ngx_ai_stream_content(ngx_ai_stream_t *st, const u_char *text, size_t len)
{
    if (len == 0) {
        return NGX_OK;
    }

    st->text_bytes += len;
    st->text_deltas++;

    if (ngx_ai_stream_start(st, NULL, 0) != NGX_OK
        || ngx_ai_stream_chunk_open(st) != NGX_OK
        || ngx_ai_buf_append_str(&st->out, "{\"content\":") != NGX_OK
        || ngx_ai_buf_append_json_string(&st->out, text, len) != NGX_OK
        || ngx_ai_buf_append(&st->out, "}", 1) != NGX_OK
        || ngx_ai_stream_chunk_close(st, NULL) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The end of a whole answer: the finish chunk (delta {}), then the usage
 * chunk (choices []) when the client asked for it; st->done is set, and
 * the gateway appends "data: [DONE]".  finish is a static string.
 */

ngx_int_t
ngx_ai_stream_finish(ngx_ai_stream_t *st, const char *finish)
{
    ngx_ai_buf_t  *b;

    if (st->finish_sent) {
        st->done = 1;
        return NGX_OK;
    }

    if (ngx_ai_stream_start(st, NULL, 0) != NGX_OK
        || ngx_ai_stream_chunk_open(st) != NGX_OK
        || ngx_ai_buf_append(&st->out, "{}", 2) != NGX_OK
        || ngx_ai_stream_chunk_close(st, finish) != NGX_OK)
    {
        return NGX_ERROR;
    }

    st->finish_sent = 1;
    st->finish_reason.data = (u_char *) finish;
    st->finish_reason.len = finish ? ngx_strlen(finish) : 0;
    st->done = 1;

    /* the usage's cost at the gateway's price, for the client and the
     * Messages API's message_delta */

    ngx_ai_usage_price(&st->usage, &st->price);

    if (!st->req->include_usage) {
        return NGX_OK;
    }

    b = &st->out;

    if (ngx_ai_buf_append_str(b, "data: {\"id\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, st->id.data, st->id.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"object\":\"chat.completion.chunk\","
                                    "\"created\":")
           != NGX_OK
        || ngx_ai_buf_append_uint(b, (uint64_t) (st->created > 0
                                                 ? st->created : 0))
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"model\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, st->model.data, st->model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"choices\":[],\"usage\":") != NGX_OK
        || ngx_ai_buf_append_usage(b, &st->usage) != NGX_OK
        || ngx_ai_buf_append_str(b, "}\n\n") != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A tool call delta, as OpenAI streams them: the first delta of a call
 * has id (not NULL), type and function.name; later ones only
 * function.arguments fragments.
 */

ngx_int_t
ngx_ai_stream_tool_call(ngx_ai_stream_t *st, ngx_uint_t index, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *args)
{
    ngx_ai_buf_t  *b;

    b = &st->out;

    st->text_bytes += args->len + (name ? name->len : 0);
    st->text_deltas++;

    if (ngx_ai_stream_start(st, NULL, 0) != NGX_OK
        || ngx_ai_stream_chunk_open(st) != NGX_OK
        || ngx_ai_buf_append_str(b, "{\"tool_calls\":[{\"index\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, index) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (id) {
        if (ngx_ai_buf_append_str(b, ",\"id\":") != NGX_OK
            || ngx_ai_buf_append_json_string(b, id->data, id->len) != NGX_OK
            || ngx_ai_buf_append_str(b, ",\"type\":\"function\","
                                        "\"function\":{\"name\":")
               != NGX_OK
            || ngx_ai_buf_append_json_string(b, name->data, name->len)
               != NGX_OK
            || ngx_ai_buf_append(b, ",", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(b, ",\"function\":{") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(b, "\"arguments\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, args->data, args->len) != NGX_OK
        || ngx_ai_buf_append_str(b, "}}]}") != NGX_OK
        || ngx_ai_stream_chunk_close(st, NULL) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Marks the stream failed with the provider's message (copied to the
 * pool), or with fallback (static) when msg is NULL or empty.
 */

ngx_int_t
ngx_ai_stream_fail(ngx_ai_stream_t *st, const char *msg,
    const char *fallback)
{
    size_t  len;

    st->failed = 1;

    len = msg ? ngx_strlen(msg) : 0;

    if (len == 0) {
        st->error.data = (u_char *) fallback;
        st->error.len = ngx_strlen(fallback);
        return NGX_OK;
    }

    st->error.data = ngx_pnalloc(st->pool, len);
    if (st->error.data == NULL) {
        st->error.len = 0;
        return NGX_ERROR;
    }

    ngx_memcpy(st->error.data, msg, len);
    st->error.len = len;

    return NGX_OK;
}
