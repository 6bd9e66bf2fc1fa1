
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: the gateway's chat.completion.chunk stream turned into
 * Responses events for the inbound Responses API
 * (ngx_ai_responses_stream_feed()); for an openai-type provider the
 * chunks' JSON is the provider's own.  Input as the fuzz_stream_*
 * targets: byte 0 flags (bit 0: the gateway knows the usage, bit 1: also
 * one byte at a time), bytes 1-4 two cut points, then the stream.
 *
 * Every flush must be "event: NAME\ndata: {"type":"NAME",...}\n\n"
 * events whose sequence_number counts 0, 1, 2 ... over the stream, with
 * nothing after response.completed or .incomplete and only the error
 * event after response.failed; the events must not depend on the cuts,
 * except for the ": keep-alive" comments, which a comment in the input
 * sends ahead of the events of its feed.
 */


#include "fuzz.h"


#define FUZZ_PING  ": keep-alive\n\n"


static void fuzz_responses_run(ngx_pool_t *pool, const u_char *in, size_t len,
    size_t *splits, ngx_uint_t nsplits, ngx_uint_t known, ngx_ai_buf_t *res);
static void fuzz_responses_check(const u_char *p, size_t len,
    ngx_uint_t utf8, ngx_uint_t *seq, ngx_uint_t *state);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t         len, i, splits[2], s, *each;
    ngx_pool_t    *pool;
    const u_char  *in;
    ngx_ai_buf_t   whole, cut, bytes;

    if (size < 5) {
        return 0;
    }

    in = data + 5;
    len = size - 5;

    pool = fuzz_pool();

    fuzz_responses_run(pool, in, len, NULL, 0, data[0] & 1, &whole);

    splits[0] = (data[1] | (data[2] << 8)) % (len + 1);
    splits[1] = (data[3] | (data[4] << 8)) % (len + 1);

    if (splits[0] > splits[1]) {
        s = splits[0];
        splits[0] = splits[1];
        splits[1] = s;
    }

    fuzz_responses_run(pool, in, len, splits, 2, data[0] & 1, &cut);

    if (whole.len != cut.len || ngx_memcmp(whole.data, cut.data, cut.len))
    {
        fuzz_fail("responses stream: the events depend on how the input is "
                  "split:\nwhole: \"%.*s\"\nsplit: \"%.*s\"",
                  (int) whole.len, whole.data, (int) cut.len, cut.data);
    }

    if ((data[0] & 2) && len > 1 && len <= 4096) {
        each = ngx_palloc(pool, len * sizeof(size_t));
        if (each == NULL) {
            fuzz_fail("no memory");
        }

        for (i = 0; i < len - 1; i++) {
            each[i] = i + 1;
        }

        fuzz_responses_run(pool, in, len, each, len - 1, data[0] & 1, &bytes);

        if (whole.len != bytes.len
            || ngx_memcmp(whole.data, bytes.data, bytes.len))
        {
            fuzz_fail("responses stream: the events depend on how the input "
                      "is split:\nwhole: \"%.*s\"\nbytes: \"%.*s\"",
                      (int) whole.len, whole.data, (int) bytes.len,
                      bytes.data);
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}


/* feeds the pieces, checks each flush, collects the events but pings */

static void
fuzz_responses_run(ngx_pool_t *pool, const u_char *in, size_t len,
    size_t *splits, ngx_uint_t nsplits, ngx_uint_t known, ngx_ai_buf_t *res)
{
    void            *rs;
    u_char          *piece, *p, *last, *ping;
    size_t           pos, end;
    ngx_str_t        out;
    ngx_uint_t       i, utf8, seq, state;
    ngx_ai_usage_t   usage;

    rs = ngx_ai_responses_stream_create(pool, 0, 0);

    if (rs == NULL || ngx_ai_buf_init(res, pool, 1024) != NGX_OK) {
        fuzz_fail("no memory");
    }

    seq = 0;
    state = 0;

    utf8 = fuzz_utf8_valid(in, len);
    pos = 0;

    for (i = 0; i <= nsplits; i++) {
        end = (i < nsplits) ? splits[i] : len;

        if (end <= pos) {
            continue;
        }

        if (known) {
            ngx_memzero(&usage, sizeof(ngx_ai_usage_t));
            usage.prompt_tokens = 100;
            usage.completion_tokens = 7;
            usage.known = 1;
            ngx_ai_responses_stream_usage(rs, &usage);
        }

        piece = malloc(end - pos);
        if (piece == NULL) {
            fuzz_fail("no memory");
        }

        ngx_memcpy(piece, in + pos, end - pos);

        if (ngx_ai_responses_stream_feed(rs, piece, end - pos, &out)
            != NGX_OK)
        {
            fuzz_fail("responses stream: NGX_ERROR");
        }

        free(piece);

        fuzz_responses_check(out.data, out.len, utf8, &seq, &state);

        p = out.data;
        last = out.data + out.len;

        while (p < last) {
            ping = (u_char *) memmem(p, last - p, FUZZ_PING,
                                     sizeof(FUZZ_PING) - 1);
            if (ping == NULL) {
                ping = last;
            }

            if (ngx_ai_buf_append(res, p, ping - p) != NGX_OK) {
                fuzz_fail("no memory");
            }

            p = (ping == last) ? last : ping + sizeof(FUZZ_PING) - 1;
        }

        pos = end;
    }
}


/* state: 0 going, 1 ended (completed, incomplete), 2 failed, 3 error sent */

static void
fuzz_responses_check(const u_char *p, size_t len, ngx_uint_t utf8,
    ngx_uint_t *seq, ngx_uint_t *state)
{
    cJSON         *json, *type, *n;
    size_t         name_len;
    const u_char  *last, *name, *data, *eol;

    if (utf8 && !fuzz_utf8_valid(p, len)) {
        fuzz_fail("responses stream: UTF-8 in, not UTF-8 out: \"%.*s\"",
                  (int) len, p);
    }

    last = p + len;

    while (p < last) {
        if ((size_t) (last - p) >= sizeof(FUZZ_PING) - 1
            && ngx_strncmp(p, FUZZ_PING, sizeof(FUZZ_PING) - 1) == 0)
        {
            p += sizeof(FUZZ_PING) - 1;
            continue;
        }

        if ((size_t) (last - p) < 7 || ngx_strncmp(p, "event: ", 7) != 0) {
            fuzz_fail("responses stream: an event does not start with "
                      "\"event: \": \"%.*s\"", (int) (last - p), p);
        }

        name = p + 7;
        eol = memchr(name, '\n', last - name);

        if (eol == NULL || (size_t) (last - eol) < 7
            || ngx_strncmp(eol, "\ndata: ", 7) != 0)
        {
            fuzz_fail("responses stream: no data line: \"%.*s\"",
                      (int) (last - p), p);
        }

        name_len = eol - name;
        data = eol + 7;
        eol = memchr(data, '\n', last - data);

        if (eol == NULL || last - eol < 2 || eol[1] != '\n'
            || memchr(data, '\r', eol - data))
        {
            fuzz_fail("responses stream: an event does not end with an "
                      "empty line: \"%.*s\"", (int) (last - p), p);
        }

        fuzz_check_json("responses stream", data, eol - data, 1);

        json = cJSON_ParseWithLength((char *) data, eol - data);
        type = cJSON_GetObjectItemCaseSensitive(json, "type");

        if (!cJSON_IsString(type)
            || ngx_strlen(type->valuestring) != name_len
            || ngx_strncmp(type->valuestring, name, name_len) != 0)
        {
            cJSON_Delete(json);
            fuzz_fail("responses stream: event and \"type\" differ: "
                      "\"%.*s\"", (int) (eol - p), p);
        }

        n = cJSON_GetObjectItemCaseSensitive(json, "sequence_number");

        if (!cJSON_IsNumber(n) || n->valuedouble != (double) *seq) {
            cJSON_Delete(json);
            fuzz_fail("responses stream: sequence_number is not %lu: "
                      "\"%.*s\"", (unsigned long) *seq, (int) (eol - p), p);
        }

        (*seq)++;

        if (*state == 1 || *state == 3
            || (*state == 2 && strcmp(type->valuestring, "error") != 0))
        {
            cJSON_Delete(json);
            fuzz_fail("responses stream: an event after the end: \"%.*s\"",
                      (int) (eol - p), p);
        }

        if (strcmp(type->valuestring, "response.completed") == 0
            || strcmp(type->valuestring, "response.incomplete") == 0)
        {
            *state = 1;

        } else if (strcmp(type->valuestring, "response.failed") == 0) {
            *state = 2;

        } else if (*state == 2) {
            *state = 3;
        }

        cJSON_Delete(json);

        p = eol + 2;
    }
}
