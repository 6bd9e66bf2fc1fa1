
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the SSE parser and the openai stream translation.
 */


#include "unit.h"


typedef struct {
    ngx_ai_buf_t  seen;
    int           n;
} sse_collect_t;


static ngx_int_t
collect(void *data, ngx_ai_sse_event_t *ev)
{
    sse_collect_t  *c = data;

    c->n++;
    ngx_ai_buf_append(&c->seen, "[", 1);
    ngx_ai_buf_append(&c->seen, ev->event.data, ev->event.len);
    ngx_ai_buf_append(&c->seen, "|", 1);
    ngx_ai_buf_append(&c->seen, ev->data.data, ev->data.len);
    ngx_ai_buf_append(&c->seen, "]", 1);

    return NGX_OK;
}


UNIT_TEST(sse_every_split)
{
    const char           *in = ": comment\r\nevent: a\r\ndata: 1\r\ndata:2\r\n"
                               "\r\ndata: x\n\ndata: y\r\rid: 4\nretry\n\n";
    size_t                len, split;
    ngx_ai_sse_parser_t   p;
    sse_collect_t         c;
    ngx_str_t             s;

    len = strlen(in);

    for (split = 0; split <= len; split++) {
        ngx_ai_sse_init(&p, unit_pool(), 0);
        ngx_ai_buf_init(&c.seen, unit_pool(), 64);
        c.n = 0;

        UNIT_EQ_INT(ngx_ai_sse_feed(&p, (u_char *) in, (u_char *) in + split,
                                    collect, &c), NGX_OK);
        UNIT_EQ_INT(ngx_ai_sse_feed(&p, (u_char *) in + split,
                                    (u_char *) in + len, collect, &c), NGX_OK);

        s.data = c.seen.data;
        s.len = c.seen.len;
        UNIT_EQ_STR(s, "[a|1\n2][|x][|y]");
    }
}


UNIT_TEST(sse_too_large)
{
    ngx_ai_sse_parser_t  p;
    sse_collect_t        c;
    char                 big[200];

    memset(big, 'a', sizeof(big));
    ngx_ai_sse_init(&p, unit_pool(), 100);
    ngx_ai_buf_init(&c.seen, unit_pool(), 64);
    UNIT_EQ_INT(ngx_ai_sse_feed(&p, (u_char *) big, (u_char *) big + 200,
                                collect, &c), NGX_DECLINED);
}


static ngx_int_t
stream_feed(void *data, ngx_ai_sse_event_t *ev)
{
    return ngx_ai_openai_translator.stream_event(data, ev);
}


UNIT_TEST(openai_stream_usage_hidden_unless_asked)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_stream_t        st;
    ngx_ai_sse_parser_t    p;
    ngx_str_t              out;
    const char            *in =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}"
        "\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
        "\"stop\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
        "\"completion_tokens\":4,\"total_tokens\":7}}\n\ndata: [DONE]\n\n";

    ngx_memzero(&req, sizeof(req));
    ngx_ai_stream_init(&st, unit_pool(), &req, 0);
    ngx_ai_sse_init(&p, unit_pool(), 0);

    UNIT_EQ_INT(ngx_ai_sse_feed(&p, (u_char *) in, (u_char *) in + strlen(in),
                                stream_feed, &st), NGX_OK);
    UNIT_EQ_INT(st.done, 1);
    UNIT_EQ_INT(st.usage.known, 1);
    UNIT_EQ_INT(st.usage.prompt_tokens, 3);
    UNIT_EQ_INT(st.usage.completion_tokens, 4);
    UNIT_EQ_STR(st.finish_reason, "stop");
    out.data = st.out.data;
    out.len = st.out.len;
    UNIT_CHECK(memmem(out.data, out.len, "usage", 5) == NULL);
    UNIT_CHECK(memmem(out.data, out.len, "[DONE]", 6) == NULL);

    req.include_usage = 1;
    ngx_ai_stream_init(&st, unit_pool(), &req, 0);
    ngx_ai_sse_init(&p, unit_pool(), 0);
    UNIT_EQ_INT(ngx_ai_sse_feed(&p, (u_char *) in, (u_char *) in + strlen(in),
                                stream_feed, &st), NGX_OK);
    out.data = st.out.data;
    out.len = st.out.len;
    UNIT_CONTAINS(out, "\"usage\":{\"prompt_tokens\":3");
}


UNIT_TEST(openai_stream_error_and_garbage)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_stream_t        st;
    ngx_ai_sse_event_t     ev;

    ngx_memzero(&req, sizeof(req));
    ngx_ai_stream_init(&st, unit_pool(), &req, 0);
    ngx_str_set(&ev.event, "");
    ngx_str_set(&ev.data, "{\"error\":{\"message\":\"overloaded\"}}");
    UNIT_EQ_INT(ngx_ai_openai_translator.stream_event(&st, &ev),
                NGX_DECLINED);
    UNIT_EQ_INT(st.failed, 1);
    UNIT_EQ_STR(st.error, "overloaded");

    ngx_ai_stream_init(&st, unit_pool(), &req, 0);
    ngx_str_set(&ev.data, "<html>");
    UNIT_EQ_INT(ngx_ai_openai_translator.stream_event(&st, &ev),
                NGX_DECLINED);
    UNIT_EQ_INT(st.failed, 1);

    /* found by fuzz_stream_openai: an empty message left no reason */

    ngx_ai_stream_init(&st, unit_pool(), &req, 0);
    ngx_str_set(&ev.data, "{\"error\":{\"message\":\"\"}}");
    UNIT_EQ_INT(ngx_ai_openai_translator.stream_event(&st, &ev),
                NGX_DECLINED);
    UNIT_EQ_INT(st.failed, 1);
    UNIT_EQ_STR(st.error, "the provider sent an error event");
}


/*
 * Found by fuzz/fuzz_stream_openai: an event sent as several "data:"
 * lines was passed on with the LF that joins them, so the client read
 * its first line alone; and bytes after an event's JSON were passed on.
 */

UNIT_TEST(openai_stream_multiline_and_trailing_bytes)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_stream_t        st;
    ngx_ai_sse_parser_t    p;
    ngx_ai_sse_event_t     ev;
    ngx_str_t              out;
    const char            *in =
        "data: {\"choices\":[{\"index\":0,\"delta\":\n"
        "data: {\"content\":\"x\"}}]}\n\n";

    ngx_memzero(&req, sizeof(req));
    ngx_ai_stream_init(&st, unit_pool(), &req, 0);
    ngx_ai_sse_init(&p, unit_pool(), 0);

    UNIT_EQ_INT(ngx_ai_sse_feed(&p, (u_char *) in, (u_char *) in + strlen(in),
                                stream_feed, &st), NGX_OK);
    out.data = st.out.data;
    out.len = st.out.len;
    UNIT_EQ_STR(out, "data: {\"choices\":[{\"index\":0,\"delta\":"
                "{\"content\":\"x\"}}]}\n\n");

    ngx_ai_stream_init(&st, unit_pool(), &req, 0);
    ngx_str_set(&ev.event, "");
    ngx_str_set(&ev.data, "{\"choices\":[{\"delta\":{}}]}]}");
    UNIT_EQ_INT(ngx_ai_openai_translator.stream_event(&st, &ev),
                NGX_DECLINED);
    UNIT_EQ_INT(st.failed, 1);
    UNIT_EQ_INT(st.out.len, 0);
}


/*
 * Found by fuzz/fuzz_stream_gemini (the UTF-8 check): a provider id
 * longer than the chunk id bound was cut inside a UTF-8 character.
 */

UNIT_TEST(stream_id_cut_at_a_character)
{
    ngx_ai_chat_request_t  req;
    ngx_ai_stream_t        st;
    u_char                 id[130];

    ngx_memset(id, 'a', 127);
    id[127] = 0xc3;                                     /* U+00E9 */
    id[128] = 0xa9;
    id[129] = 'b';

    ngx_memzero(&req, sizeof(req));
    ngx_str_set(&req.model, "p/m");
    ngx_ai_stream_init(&st, unit_pool(), &req, 0);

    UNIT_EQ_INT(ngx_ai_stream_start(&st, id, sizeof(id)), NGX_OK);
    UNIT_EQ_INT(st.id.len, 9 + 127);
    UNIT_EQ_INT(st.id.data[st.id.len - 1], 'a');
}
