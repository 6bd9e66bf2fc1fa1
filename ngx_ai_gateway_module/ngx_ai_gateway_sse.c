
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Server-sent events: an incremental parser (bytes may be split anywhere,
 * lines end in LF, CRLF or CR, as the WHATWG event-stream format says).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


static ngx_int_t ngx_ai_sse_line(ngx_ai_sse_parser_t *p, u_char *pos,
    u_char *last, ngx_ai_sse_handler_pt handler, void *data);


ngx_int_t
ngx_ai_sse_init(ngx_ai_sse_parser_t *p, ngx_pool_t *pool, size_t max)
{
    ngx_memzero(p, sizeof(ngx_ai_sse_parser_t));

    p->max = max ? max : NGX_AI_MAX_SSE_EVENT;

    if (ngx_ai_buf_init(&p->line, pool, 256) != NGX_OK
        || ngx_ai_buf_init(&p->data, pool, 1024) != NGX_OK
        || ngx_ai_buf_init(&p->event, pool, 32) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Returns NGX_OK, NGX_ERROR (allocation failed), NGX_DECLINED (an event
 * or line larger than p->max), or whatever non-NGX_OK the handler returned.
 */

ngx_int_t
ngx_ai_sse_feed(ngx_ai_sse_parser_t *p, u_char *pos, u_char *last,
    ngx_ai_sse_handler_pt handler, void *data)
{
    u_char     *eol;
    ngx_int_t   rc;

    while (pos < last) {

        if (p->cr) {
            p->cr = 0;

            if (*pos == '\n') {
                pos++;
                continue;
            }
        }

        for (eol = pos; eol < last; eol++) {
            if (*eol == '\n' || *eol == '\r') {
                break;
            }
        }

        if (eol == last) {
            /* a partial line: keep it for the next buffer */

            if (p->line.len + (last - pos) > p->max) {
                return NGX_DECLINED;
            }

            return ngx_ai_buf_append(&p->line, pos, last - pos);
        }

        if (*eol == '\r') {
            p->cr = 1;
        }

        if (p->line.len) {
            if (p->line.len + (eol - pos) > p->max) {
                return NGX_DECLINED;
            }

            if (ngx_ai_buf_append(&p->line, pos, eol - pos) != NGX_OK) {
                return NGX_ERROR;
            }

            rc = ngx_ai_sse_line(p, p->line.data, p->line.data + p->line.len,
                                 handler, data);
            p->line.len = 0;

        } else {
            rc = ngx_ai_sse_line(p, pos, eol, handler, data);
        }

        if (rc != NGX_OK) {
            return rc;
        }

        pos = eol + 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_sse_line(ngx_ai_sse_parser_t *p, u_char *pos, u_char *last,
    ngx_ai_sse_handler_pt handler, void *data)
{
    u_char              *colon, *value;
    size_t               name_len;
    ngx_int_t            rc;
    ngx_ai_sse_event_t   ev;

    if (pos == last) {
        /* an empty line dispatches the event */

        if (!p->has_data) {
            p->event.len = 0;
            return NGX_OK;
        }

        ev.event.data = p->event.data;
        ev.event.len = p->event.len;
        ev.data.data = p->data.data;
        ev.data.len = p->data.len;

        /* the data buffer holds "line\n" per data line; drop the last LF */
        if (ev.data.len) {
            ev.data.len--;
        }

        p->has_data = 0;

        rc = handler(data, &ev);

        p->data.len = 0;
        p->event.len = 0;

        return rc;
    }

    if (*pos == ':') {
        return NGX_OK;                                  /* a comment */
    }

    colon = ngx_strlchr(pos, last, ':');

    if (colon) {
        name_len = colon - pos;
        value = colon + 1;

        if (value < last && *value == ' ') {
            value++;
        }

    } else {
        name_len = last - pos;
        value = last;
    }

    if (name_len == 4 && ngx_strncmp(pos, "data", 4) == 0) {

        if (p->data.len + (last - value) + 1 > p->max) {
            return NGX_DECLINED;
        }

        if (ngx_ai_buf_append(&p->data, value, last - value) != NGX_OK
            || ngx_ai_buf_append(&p->data, "\n", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        p->has_data = 1;

        return NGX_OK;
    }

    if (name_len == 5 && ngx_strncmp(pos, "event", 5) == 0) {
        p->event.len = 0;
        return ngx_ai_buf_append(&p->event, value, last - value);
    }

    /* "id", "retry" and unknown fields are not needed */

    return NGX_OK;
}
