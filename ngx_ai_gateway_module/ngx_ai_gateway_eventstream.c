
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * AWS event stream framing (application/vnd.amazon.eventstream, Bedrock's
 * ConverseStream): an incremental parser, bytes in any split, messages
 * out as the events the stream translators take.  A message is
 *
 *   total length (4) | headers length (4) | prelude CRC32 (4) |
 *   headers | payload | message CRC32 (4)
 *
 * big endian; a header is name length (1), name, type (1), value (type
 * 7, a string: length (2), bytes).  Both CRCs are checked and every
 * length bounded before a byte of the message is kept.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define NGX_AI_ES_PRELUDE           12
#define NGX_AI_ES_MIN               16
#define NGX_AI_ES_MAX_HEADERS       (128 * 1024)


static ngx_int_t ngx_ai_es_message(ngx_ai_es_parser_t *p, u_char *m,
    size_t len, ngx_ai_sse_handler_pt handler, void *data);
static ngx_int_t ngx_ai_es_headers(ngx_ai_es_parser_t *p, u_char *h,
    u_char *last, ngx_ai_es_message_t *msg);
static uint32_t ngx_ai_es_u32(const u_char *p);


ngx_int_t
ngx_ai_es_init(ngx_ai_es_parser_t *p, ngx_pool_t *pool, size_t max)
{
    ngx_memzero(p, sizeof(ngx_ai_es_parser_t));

    p->max = max ? max : NGX_AI_MAX_SSE_EVENT;

    return ngx_ai_buf_init(&p->carry, pool, 1024);
}


/*
 * Returns NGX_OK, NGX_ERROR (allocation failed), NGX_DECLINED (bytes that
 * are not a valid message, or one larger than p->max: p->error says
 * which; the stream cannot go on), or whatever non-NGX_OK the handler
 * returned.
 */

ngx_int_t
ngx_ai_es_feed(ngx_ai_es_parser_t *p, u_char *pos, u_char *last,
    ngx_ai_sse_handler_pt handler, void *data)
{
    u_char     *m;
    size_t      n, have, need;
    uint32_t    total;
    ngx_int_t   rc;

    if (p->error) {
        return NGX_DECLINED;
    }

    while (pos < last) {

        /* a message whole in the input, nothing carried: parsed there */

        have = p->carry.len;

        if (have == 0 && (size_t) (last - pos) >= NGX_AI_ES_PRELUDE) {
            total = ngx_ai_es_u32(pos);

            if (total >= NGX_AI_ES_MIN && total <= p->max
                && (size_t) (last - pos) >= total)
            {
                rc = ngx_ai_es_message(p, pos, total, handler, data);

                if (rc != NGX_OK) {
                    return rc;
                }

                pos += total;
                continue;
            }
        }

        /* else the prelude, then the rest, are gathered in the carry */

        need = NGX_AI_ES_PRELUDE;

        if (have >= NGX_AI_ES_PRELUDE) {
            need = ngx_ai_es_u32(p->carry.data);
        }

        n = ngx_min((size_t) (last - pos), need - have);

        if (ngx_ai_buf_append(&p->carry, pos, n) != NGX_OK) {
            return NGX_ERROR;
        }

        pos += n;

        if (p->carry.len < need) {
            continue;
        }

        if (need == NGX_AI_ES_PRELUDE) {

            /* the prelude: its length and CRC checked before the rest */

            m = p->carry.data;
            total = ngx_ai_es_u32(m);

            if (total < NGX_AI_ES_MIN || total > p->max
                || ngx_crc32_long(m, 8) != ngx_ai_es_u32(m + 8))
            {
                goto invalid_prelude;
            }

            if (ngx_ai_buf_reserve(&p->carry, total - NGX_AI_ES_PRELUDE)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        rc = ngx_ai_es_message(p, p->carry.data, p->carry.len, handler,
                               data);
        p->carry.len = 0;

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;

invalid_prelude:

    p->error = (ngx_ai_es_u32(p->carry.data) > p->max
                && ngx_crc32_long(p->carry.data, 8)
                   == ngx_ai_es_u32(p->carry.data + 8))
               ? "the provider sent an event larger than the gateway "
                 "accepts"
               : "the provider sent an event stream message with a bad "
                 "prelude";

    return NGX_DECLINED;
}


/* one message of len bytes at m, its total length already read */

static ngx_int_t
ngx_ai_es_message(ngx_ai_es_parser_t *p, u_char *m, size_t len,
    ngx_ai_sse_handler_pt handler, void *data)
{
    uint32_t             hlen;
    ngx_ai_es_message_t  msg;
    ngx_ai_sse_event_t   ev;

    if (len > p->max) {
        p->error = "the provider sent an event larger than the gateway "
                   "accepts";
        return NGX_DECLINED;
    }

    hlen = ngx_ai_es_u32(m + 4);

    if (ngx_crc32_long(m, 8) != ngx_ai_es_u32(m + 8)) {
        p->error = "the provider sent an event stream message with a bad "
                   "prelude";
        return NGX_DECLINED;
    }

    if (ngx_crc32_long(m, len - 4) != ngx_ai_es_u32(m + len - 4)) {
        p->error = "the provider sent an event stream message with a bad "
                   "checksum";
        return NGX_DECLINED;
    }

    if (hlen > len - NGX_AI_ES_MIN || hlen > NGX_AI_ES_MAX_HEADERS) {
        goto invalid;
    }

    ngx_memzero(&msg, sizeof(ngx_ai_es_message_t));

    if (ngx_ai_es_headers(p, m + NGX_AI_ES_PRELUDE,
                          m + NGX_AI_ES_PRELUDE + hlen, &msg)
        != NGX_OK)
    {
        goto invalid;
    }

    msg.payload.data = m + NGX_AI_ES_PRELUDE + hlen;
    msg.payload.len = len - NGX_AI_ES_MIN - hlen;

    p->messages++;

    ngx_ai_es_event(&msg, &ev);

    return handler(data, &ev);

invalid:

    p->error = "the provider sent an event stream message with bad "
               "headers";
    return NGX_DECLINED;
}


/* the headers the gateway reads; the others, of any type, are skipped */

static ngx_int_t
ngx_ai_es_headers(ngx_ai_es_parser_t *p, u_char *h, u_char *last,
    ngx_ai_es_message_t *msg)
{
    size_t      nlen, vlen;
    u_char     *name;
    ngx_str_t  *v;

    while (h < last) {
        nlen = *h++;

        if (nlen == 0 || (size_t) (last - h) < nlen + 1) {
            return NGX_ERROR;
        }

        name = h;
        h += nlen;

        switch (*h++) {

        case 0:                             /* true */
        case 1:                             /* false */
            continue;

        case 2:                             /* byte */
            vlen = 1;
            break;

        case 3:                             /* short */
            vlen = 2;
            break;

        case 4:                             /* integer */
            vlen = 4;
            break;

        case 5:                             /* long */
        case 8:                             /* timestamp */
            vlen = 8;
            break;

        case 9:                             /* uuid */
            vlen = 16;
            break;

        case 6:                             /* bytes */
        case 7:                             /* string */
            if (last - h < 2) {
                return NGX_ERROR;
            }

            vlen = ((size_t) h[0] << 8) | h[1];
            h += 2;

            if ((size_t) (last - h) < vlen) {
                return NGX_ERROR;
            }

            v = NULL;

#define ngx_ai_es_is(s)                                                       \
    (nlen == sizeof(s) - 1 && ngx_memcmp(name, s, sizeof(s) - 1) == 0)

            if (ngx_ai_es_is(":message-type")) {
                v = &msg->message_type;

            } else if (ngx_ai_es_is(":event-type")
                       || ngx_ai_es_is(":exception-type"))
            {
                v = &msg->event_type;

            } else if (ngx_ai_es_is(":error-code")) {
                v = &msg->error_code;

            } else if (ngx_ai_es_is(":error-message")) {
                v = &msg->error_message;
            }

#undef ngx_ai_es_is

            if (v) {
                v->data = h;
                v->len = vlen;
            }

            h += vlen;
            continue;

        default:
            return NGX_ERROR;
        }

        if ((size_t) (last - h) < vlen) {
            return NGX_ERROR;
        }

        h += vlen;
    }

    return NGX_OK;
}


/*
 * A message as the translators see events: an "event" message is its
 * :event-type and payload; an "exception" its :exception-type (names
 * ending in "Exception") and payload; an "error" is "error" with the
 * :error-message (or :error-code) as its data.
 */

void
ngx_ai_es_event(ngx_ai_es_message_t *msg, ngx_ai_sse_event_t *ev)
{
    ev->event = msg->event_type;
    ev->data = msg->payload;

    if (msg->message_type.len == 5
        && ngx_memcmp(msg->message_type.data, "error", 5) == 0)
    {
        ngx_str_set(&ev->event, "error");
        ev->data = msg->error_message.len ? msg->error_message
                                          : msg->error_code;
    }
}


static uint32_t
ngx_ai_es_u32(const u_char *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}
