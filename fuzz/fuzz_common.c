
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Shared helpers of the libFuzzer targets (see fuzz.h).
 */


#include <stdarg.h>
#include "fuzz.h"


static void fuzz_merge_check(ngx_pool_t *pool, ngx_ai_translator_t *tr,
    ngx_ai_response_t *out);


#define FUZZ_ROLE  "\"delta\":{\"role\":\"assistant\""


typedef struct {
    ngx_ai_translator_t        *tr;
    ngx_ai_stream_t            *st;
} fuzz_feed_ctx_t;


static ngx_int_t fuzz_sse_event(void *data, ngx_ai_sse_event_t *ev);
static void fuzz_str_compare(const char *what, ngx_str_t *a, ngx_str_t *b);


void
fuzz_fail(const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, "\nfuzz check failed: ");
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fprintf(stderr, "\n");

    abort();
}


ngx_pool_t *
fuzz_pool(void)
{
    ngx_pool_t  *pool;

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        fuzz_fail("no memory for a pool");
    }

    return pool;
}


ngx_ai_chat_request_t *
fuzz_chat(ngx_pool_t *pool, const char *model, ngx_uint_t stream,
    ngx_uint_t include_usage)
{
    int                     n;
    char                   *body;
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t  *req;

    body = ngx_pnalloc(pool, 1024);
    req = ngx_pcalloc(pool, sizeof(ngx_ai_chat_request_t));

    if (body == NULL || req == NULL) {
        fuzz_fail("no memory for the request");
    }

    n = snprintf(body, 1024,
                 "{\"model\":\"%s\",\"stream\":%s,"
                 "\"stream_options\":{\"include_usage\":%s},"
                 "\"max_tokens\":256,\"messages\":["
                 "{\"role\":\"system\",\"content\":\"Be brief.\"},"
                 "{\"role\":\"user\",\"content\":\"What is the weather "
                 "in Paris?\"}],\"tools\":[{\"type\":\"function\","
                 "\"function\":{\"name\":\"get_weather\",\"parameters\":"
                 "{\"type\":\"object\",\"properties\":{\"city\":"
                 "{\"type\":\"string\"}}}}}]}",
                 model, stream ? "true" : "false",
                 include_usage ? "true" : "false");

    if (ngx_ai_chat_request_parse(pool, (u_char *) body, n, req, &err)
        != NGX_OK)
    {
        fuzz_fail("the fixed request does not parse: %.*s",
                  (int) err.message.len, err.message.data);
    }

    req->created = FUZZ_CREATED;
    req->default_max_tokens = 1024;

    return req;
}


void
fuzz_check_cost(ngx_pool_t *pool, ngx_str_t *answer, uint64_t nano)
{
    ngx_str_t        text;
    ngx_ai_usage_t   u;

    ngx_memzero(&u, sizeof(ngx_ai_usage_t));
    u.known = 1;
    u.priced = 1;
    u.cost = nano;

    text = *answer;

    if (ngx_ai_usage_cost_set(pool, &text, &u) != NGX_OK) {
        fuzz_fail("usage cost: NGX_ERROR");
    }

    /* a duplicate or escaped "usage" key may leave cJSON's without the
     * cost: only the text's validity is checked here (t/unit checks the
     * rest) */

    fuzz_check_json("usage cost", text.data, text.len, 1);
}


void
fuzz_check_json(const char *what, const u_char *p, size_t len,
    ngx_uint_t want_object)
{
    cJSON       *json;
    const char  *end;

    if (len == 0 || p == NULL) {
        fuzz_fail("%s: empty JSON", what);
    }

    end = NULL;
    json = cJSON_ParseWithLengthOpts((const char *) p, len, &end, 0);

    if (json == NULL) {
        fuzz_fail("%s: not JSON: \"%.*s\"", what, (int) len, p);
    }

    /* JSON allows whitespace around the value */

    while (end && end < (const char *) p + len
           && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
    {
        end++;
    }

    if (end != (const char *) p + len) {
        cJSON_Delete(json);
        fuzz_fail("%s: bytes after the JSON value: \"%.*s\"", what,
                  (int) len, p);
    }

    if (want_object && !cJSON_IsObject(json)) {
        cJSON_Delete(json);
        fuzz_fail("%s: not a JSON object: \"%.*s\"", what, (int) len, p);
    }

    cJSON_Delete(json);
}


/*
 * What a client's SSE parser must see: each event one "data: " line of a
 * JSON object and an empty line; no CR or LF inside, which would cut the
 * line or start a new field.
 */

void
fuzz_check_sse(const char *what, const u_char *p, size_t len)
{
    const u_char  *last, *data, *eol;

    last = p + len;

    while (p < last) {
        if ((size_t) (last - p) < 8 || ngx_strncmp(p, "data: ", 6) != 0) {
            fuzz_fail("%s: an event does not start with \"data: \": "
                      "\"%.*s\"", what, (int) (last - p), p);
        }

        data = p + 6;

        for (eol = data; eol < last; eol++) {
            if (*eol == '\n' || *eol == '\r') {
                break;
            }
        }

        if (last - eol < 2 || eol[0] != '\n' || eol[1] != '\n') {
            fuzz_fail("%s: an event does not end with an empty line: "
                      "\"%.*s\"", what, (int) (last - p), p);
        }

        fuzz_check_json(what, data, eol - data, 1);

        p = eol + 2;
    }
}


ngx_uint_t
fuzz_utf8_valid(const u_char *p, size_t len)
{
    size_t    i, n, k;
    uint32_t  c, min;

    for (i = 0; i < len; /* void */) {
        c = p[i];

        if (c < 0x80) {
            i++;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            c &= 0x1f;
            min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            c &= 0x0f;
            min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            c &= 0x07;
            min = 0x10000;

        } else {
            return 0;
        }

        if (len - i - 1 < n) {
            return 0;
        }

        for (k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            c = (c << 6) | (p[i + k] & 0x3f);
        }

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
            return 0;
        }

        i += n + 1;
    }

    return 1;
}


void
fuzz_check_error(ngx_pool_t *pool, const char *what, ngx_ai_error_t *err,
    ngx_uint_t utf8)
{
    ngx_str_t  out;

    if (err->status < 400 || err->status > 599) {
        fuzz_fail("%s: error status %lu", what, (unsigned long) err->status);
    }

    if (err->message.len && err->message.data == NULL) {
        fuzz_fail("%s: error message with no data", what);
    }

    if (ngx_ai_error_render(pool, err, &out) != NGX_OK) {
        fuzz_fail("%s: error not rendered", what);
    }

    fuzz_check_json(what, out.data, out.len, 1);

    if (utf8 && !fuzz_utf8_valid(out.data, out.len)) {
        fuzz_fail("%s: UTF-8 in, not UTF-8 out: \"%.*s\"", what,
                  (int) out.len, out.data);
    }
}


static ngx_int_t
fuzz_sse_event(void *data, ngx_ai_sse_event_t *ev)
{
    fuzz_feed_ctx_t  *ctx = data;

    size_t      before;
    ngx_int_t   rc;
    ngx_uint_t  done;

    /* as ngx_http_ai_sse_event(): nothing after a failure */

    if (ctx->st->failed) {
        return NGX_DECLINED;
    }

    before = ctx->st->out.len;
    done = ctx->st->done;

    rc = ctx->tr->stream_event(ctx->st, ev);

    /* translated streams end with their finish (and usage) chunks */

    if (done && ctx->tr->type != NGX_AI_PROVIDER_OPENAI
        && ctx->st->out.len != before)
    {
        fuzz_fail("%s stream: output after the end: \"%.*s\"",
                  ctx->tr->name.data, (int) (ctx->st->out.len - before),
                  ctx->st->out.data + before);
    }

    return rc;
}


void
fuzz_stream_run(ngx_ai_translator_t *tr, ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, const u_char *in, size_t len, size_t *splits,
    ngx_uint_t nsplits, fuzz_stream_result_t *res)
{
    u_char               *piece, *role, *first;
    size_t                pos, end;
    ngx_int_t             rc;
    ngx_uint_t            i;
    ngx_ai_stream_t       st;
    fuzz_feed_ctx_t       ctx;
    ngx_ai_es_parser_t    es;
    ngx_ai_sse_parser_t   p;

    ngx_memzero(res, sizeof(fuzz_stream_result_t));

    res->utf8 = fuzz_utf8_valid(in, len);

    if (ngx_ai_sse_init(&p, pool, 0) != NGX_OK
        || ngx_ai_es_init(&es, pool, 0) != NGX_OK
        || ngx_ai_stream_init(&st, pool, req, FUZZ_CREATED) != NGX_OK
        || ngx_ai_buf_init(&res->out, pool, 1024) != NGX_OK)
    {
        fuzz_fail("no memory for a stream");
    }

    ctx.tr = tr;
    ctx.st = &st;

    rc = NGX_OK;
    pos = 0;

    for (i = 0; i <= nsplits; i++) {
        end = (i < nsplits) ? splits[i] : len;

        if (end <= pos) {
            continue;           /* the body filter skips empty buffers */
        }

        /*
         * Each piece is its own allocation, freed after it was fed: ASan
         * catches reads past a piece and pointers kept into an old
         * buffer, which nginx reuses for the next bytes.
         */

        piece = malloc(end - pos);
        if (piece == NULL) {
            fuzz_fail("no memory for a piece");
        }

        ngx_memcpy(piece, in + pos, end - pos);

        if (!st.failed) {

            /* the attempt layer's framing switch: AWS event stream */

            rc = (tr->type == NGX_AI_PROVIDER_BEDROCK)
                 ? ngx_ai_es_feed(&es, piece, piece + (end - pos),
                                  fuzz_sse_event, &ctx)
                 : ngx_ai_sse_feed(&p, piece, piece + (end - pos),
                                   fuzz_sse_event, &ctx);

            if (rc == NGX_ERROR) {
                fuzz_fail("%s stream: NGX_ERROR (out of memory, or a "
                          "translator failed on input it should refuse)",
                          tr->name.data);
            }

            if (rc == NGX_DECLINED && !st.failed) {
                st.failed = 1;

                if (tr->type == NGX_AI_PROVIDER_BEDROCK && es.error) {
                    st.error.data = (u_char *) es.error;
                    st.error.len = ngx_strlen(es.error);

                } else {
                    ngx_str_set(&st.error, "an event larger than accepted");
                }
            }
        }

        free(piece);

        if (st.out.len) {
            fuzz_check_sse((char *) tr->name.data, st.out.data, st.out.len);

            if (res->utf8 && !fuzz_utf8_valid(st.out.data, st.out.len)) {
                fuzz_fail("%s stream: UTF-8 in, not UTF-8 out: \"%.*s\"",
                          tr->name.data, (int) st.out.len, st.out.data);
            }

            if (ngx_ai_buf_append(&res->out, st.out.data, st.out.len)
                != NGX_OK)
            {
                fuzz_fail("no memory for the output");
            }

            st.out.len = 0;
        }

        pos = end;
    }

    if (st.failed && st.error.len == 0) {
        fuzz_fail("%s stream: failed without a reason", tr->name.data);
    }

    /* a translated stream opens with the one assistant role chunk */

    if (tr->type != NGX_AI_PROVIDER_OPENAI && res->out.len) {
        role = (u_char *) memmem(res->out.data, res->out.len,
                                 FUZZ_ROLE, sizeof(FUZZ_ROLE) - 1);
        first = (u_char *) memmem(res->out.data, res->out.len, "\n\n", 2);

        if (role == NULL || role > first
            || memmem(first, res->out.data + res->out.len - first,
                      "{\"role\":", sizeof("{\"role\":") - 1) != NULL)
        {
            fuzz_fail("%s stream: not one role chunk first: \"%.*s\"",
                      tr->name.data, (int) res->out.len, res->out.data);
        }
    }

    res->usage = st.usage;
    res->finish = st.finish_reason;
    res->error = st.error;
    res->events = st.events;
    res->rc = rc;
    res->done = st.done;
    res->failed = st.failed;
}


void
fuzz_stream_compare(fuzz_stream_result_t *a, fuzz_stream_result_t *b)
{
    if (a->out.len != b->out.len
        || ngx_memcmp(a->out.data, b->out.data, a->out.len) != 0)
    {
        fuzz_fail("the output depends on how the input is split:\n"
                  "whole: \"%.*s\"\nsplit: \"%.*s\"",
                  (int) a->out.len, a->out.data,
                  (int) b->out.len, b->out.data);
    }

    if (a->done != b->done || a->failed != b->failed
        || a->events != b->events
        || ngx_memcmp(&a->usage, &b->usage, sizeof(ngx_ai_usage_t)) != 0)
    {
        fuzz_fail("the stream state depends on how the input is split: "
                  "done %d/%d failed %d/%d events %lu/%lu",
                  a->done, b->done, a->failed, b->failed,
                  (unsigned long) a->events, (unsigned long) b->events);
    }

    fuzz_str_compare("finish_reason", &a->finish, &b->finish);
    fuzz_str_compare("error", &a->error, &b->error);
}


static void
fuzz_str_compare(const char *what, ngx_str_t *a, ngx_str_t *b)
{
    if (a->len != b->len
        || (a->len && ngx_memcmp(a->data, b->data, a->len) != 0))
    {
        fuzz_fail("the stream's %s depends on how the input is split: "
                  "\"%.*s\" / \"%.*s\"", what, (int) a->len, a->data,
                  (int) b->len, b->data);
    }
}


int
fuzz_stream_target(ngx_ai_translator_t *tr, const char *model,
    const uint8_t *data, size_t size)
{
    size_t                  len, i, splits[FUZZ_MAX_SPLITS], s;
    ngx_pool_t             *pool;
    const u_char           *in;
    ngx_ai_chat_request_t  *req;
    fuzz_stream_result_t    whole, cut, bytes;
    size_t                 *each;

    if (size < 5) {
        return 0;
    }

    in = data + 5;
    len = size - 5;

    pool = fuzz_pool();

    req = fuzz_chat(pool, model, 1, data[0] & 1);

    fuzz_stream_run(tr, pool, req, in, len, NULL, 0, &whole);

    splits[0] = (data[1] | (data[2] << 8)) % (len + 1);
    splits[1] = (data[3] | (data[4] << 8)) % (len + 1);

    if (splits[0] > splits[1]) {
        s = splits[0];
        splits[0] = splits[1];
        splits[1] = s;
    }

    fuzz_stream_run(tr, pool, req, in, len, splits, 2, &cut);
    fuzz_stream_compare(&whole, &cut);

    if ((data[0] & 2) && len > 1 && len <= 4096) {
        each = ngx_palloc(pool, len * sizeof(size_t));
        if (each == NULL) {
            fuzz_fail("no memory for the splits");
        }

        for (i = 0; i < len - 1; i++) {
            each[i] = i + 1;
        }

        fuzz_stream_run(tr, pool, req, in, len, each, len - 1, &bytes);
        fuzz_stream_compare(&whole, &bytes);
    }

    ngx_destroy_pool(pool);

    return 0;
}


int
fuzz_response_target(ngx_ai_translator_t *tr, const char *model,
    const uint8_t *data, size_t size)
{
    u_char                 *body;
    ngx_int_t               rc;
    ngx_uint_t              i, sum, utf8;
    ngx_pool_t             *pool;
    ngx_ai_error_t          err;
    ngx_ai_response_t       out;
    ngx_ai_chat_request_t  *req;

    static ngx_uint_t  statuses[] = { 400, 401, 403, 404, 429, 500, 503,
                                      529 };

    pool = fuzz_pool();

    req = fuzz_chat(pool, model, 0, 0);

    /* the gateway's body buffer is never NULL, even for no bytes */

    body = (u_char *) (size ? data : (const uint8_t *) "");

    ngx_memzero(&err, sizeof(ngx_ai_error_t));

    rc = tr->response(pool, req, body, size, &out, &err);

    utf8 = fuzz_utf8_valid(body, size);

    if (rc == NGX_OK) {
        fuzz_check_json((char *) tr->name.data, out.body.data, out.body.len,
                        1);

        /* usage.cost written into the answer's text keeps it JSON, with
         * the cost where a usage object is */

        fuzz_check_cost(pool, &out.body, size);

        if (utf8 && !fuzz_utf8_valid(out.body.data, out.body.len)) {
            fuzz_fail("%s response: UTF-8 in, not UTF-8 out: \"%.*s\"",
                      tr->name.data, (int) out.body.len, out.body.data);
        }

        /* make ASan look at every byte the gateway would read */

        sum = 0;

        for (i = 0; i < out.content.len; i++) {
            sum += out.content.data[i];
        }

        for (i = 0; i < out.finish_reason.len; i++) {
            sum += out.finish_reason.data[i];
        }

        if (sum == (ngx_uint_t) -1) {
            fuzz_fail("impossible");
        }

        fuzz_merge_check(pool, tr, &out);

    } else if (rc == NGX_DECLINED) {
        if (err.status != 502) {
            fuzz_fail("%s response: an unusable answer gives %lu, not 502",
                      tr->name.data, (unsigned long) err.status);
        }

        fuzz_check_error(pool, (char *) tr->name.data, &err, utf8);

    } else {
        fuzz_fail("%s response: rc %ld", tr->name.data, (long) rc);
    }

    /* the same bytes as the body of an error status */

    ngx_memzero(&err, sizeof(ngx_ai_error_t));
    tr->error(pool, statuses[size % (sizeof(statuses) / sizeof(statuses[0]))],
              body, size, &err);
    fuzz_check_error(pool, (char *) tr->name.data, &err, utf8);

    ngx_destroy_pool(pool);

    return 0;
}


/*
 * n > 1 on a provider without "n": three copies of a translated answer
 * merge into one chat.completion with choices 0, 1, 2 and the summed
 * usage.
 */

static void
fuzz_merge_check(ngx_pool_t *pool, ngx_ai_translator_t *tr,
    ngx_ai_response_t *out)
{
    cJSON           *j, *choices, *u;
    ngx_int_t        rc;
    ngx_str_t        answers[3], merged;
    ngx_ai_usage_t   sum;

    answers[0] = out->body;
    answers[1] = out->body;
    answers[2] = out->body;

    sum = out->usage;
    sum.prompt_tokens *= 3;
    sum.completion_tokens *= 3;

    rc = ngx_ai_chat_completion_merge(pool, answers, 3, &sum, &merged);

    if (rc != NGX_OK) {
        fuzz_fail("%s answer: three copies do not merge (rc %ld)",
                  tr->name.data, (long) rc);
    }

    fuzz_check_json((char *) tr->name.data, merged.data, merged.len, 1);

    j = ngx_ai_json_parse(pool, merged.data, merged.len);
    choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    u = cJSON_GetObjectItemCaseSensitive(j, "usage");

    if (cJSON_GetArraySize(choices) != 3
        || cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 2),
                                            "index")->valuedouble != 2
        || (out->usage.known != (u != NULL)))
    {
        fuzz_fail("%s answer: the merge of three is wrong: \"%.*s\"",
                  tr->name.data, (int) merged.len, merged.data);
    }
}


static uint32_t
fuzz_u32(const u_char *p)
{
    return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
}


static void
fuzz_put_u32(u_char *p, uint32_t v)
{
    p[0] = (u_char) (v >> 24);
    p[1] = (u_char) (v >> 16);
    p[2] = (u_char) (v >> 8);
    p[3] = (u_char) v;
}


void
fuzz_es_fix_crcs(u_char *p, size_t len)
{
    uint32_t  total;

    while (len >= 16) {
        total = fuzz_u32(p);

        if (total < 16 || total > len) {
            return;
        }

        fuzz_put_u32(p + 8, ngx_crc32_long(p, 8));
        fuzz_put_u32(p + total - 4, ngx_crc32_long(p, total - 4));

        p += total;
        len -= total;
    }
}
