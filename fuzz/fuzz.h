
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Shared helpers of the libFuzzer targets: a fixed client request, the
 * stream driver that feeds bytes through the SSE parser into a
 * translator as the upstream body filter does, and the checks every
 * target makes on what the pure code produces (valid JSON, well-formed
 * SSE).  A failed check calls fuzz_fail(), which aborts: libFuzzer
 * reports it as a crash and saves the input.
 */


#ifndef _FUZZ_H_INCLUDED_
#define _FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ngx_ai_gateway_pure.h"


#define FUZZ_CREATED  1700000000

/* most pieces a stream input is cut into */
#define FUZZ_MAX_SPLITS  8


/* a stream translated once: what the client would have received */
typedef struct {
    ngx_ai_buf_t                out;       /* every flushed st->out */
    ngx_ai_usage_t              usage;
    ngx_str_t                   finish;
    ngx_str_t                   error;
    ngx_uint_t                  events;
    ngx_int_t                   rc;        /* last ngx_ai_sse_feed() rc */
    ngx_uint_t                  utf8;      /* the input is valid UTF-8 */
    unsigned                    done:1;
    unsigned                    failed:1;
} fuzz_stream_result_t;


void fuzz_fail(const char *fmt, ...) __attribute__((noreturn));

ngx_pool_t *fuzz_pool(void);

/* a parsed request: stream, include_usage as asked; aborts on failure */
ngx_ai_chat_request_t *fuzz_chat(ngx_pool_t *pool, const char *model,
    ngx_uint_t stream, ngx_uint_t include_usage);

/* p..p+len is one whole JSON value (object if want_object) */
void fuzz_check_cost(ngx_pool_t *pool, ngx_str_t *answer, uint64_t nano);
void fuzz_check_json(const char *what, const u_char *p, size_t len,
    ngx_uint_t want_object);

/* p..p+len is a run of "data: {json}\n\n" events */
void fuzz_check_sse(const char *what, const u_char *p, size_t len);

/* strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF */
ngx_uint_t fuzz_utf8_valid(const u_char *p, size_t len);

/* an error the gateway would render: renders it and checks the JSON */
void fuzz_check_error(ngx_pool_t *pool, const char *what,
    ngx_ai_error_t *err, ngx_uint_t utf8);

/*
 * Feeds in..in+len through ngx_ai_sse_feed() into tr->stream_event()
 * cut at the offsets in splits[] (ascending, each <= len), flushing
 * st->out after each piece as ngx_http_ai_upstream_body_filter() does.
 */
void fuzz_stream_run(ngx_ai_translator_t *tr, ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, const u_char *in, size_t len,
    size_t *splits, ngx_uint_t nsplits, fuzz_stream_result_t *res);

/* the same input translated whole and cut must give the same answer */
void fuzz_stream_compare(fuzz_stream_result_t *a, fuzz_stream_result_t *b);

/*
 * The body of a fuzz_stream_* target: data[0] flags (bit 0:
 * include_usage, bit 1: also feed one byte at a time), data[1..4] two
 * split points (little-endian 16-bit, taken modulo the length), the rest
 * the provider's SSE bytes.
 */
int fuzz_stream_target(ngx_ai_translator_t *tr, const char *model,
    const uint8_t *data, size_t size);

/*
 * A client's chat request body, as the handler takes it:
 * ngx_ai_chat_request_parse(); a refusal must render as an OpenAI 400
 * error; an accepted request goes through every translator's request(),
 * as a fallback chain would, and each must give a JSON body, a clean
 * path, the model without its provider prefix, a well-formed
 * conversation, and leave the client's tree as it was.
 */
void fuzz_chat_body(ngx_pool_t *pool, const u_char *data, size_t size);

/*
 * The body of a fuzz_response_* target: the whole input is the
 * provider's answer to a fixed non-streamed request, and its error body.
 */
int fuzz_response_target(ngx_ai_translator_t *tr, const char *model,
    const uint8_t *data, size_t size);

/*
 * AWS event stream bytes with every message's CRCs made right, walking
 * the total lengths from the start while they fit (the rest is left).
 */
void fuzz_es_fix_crcs(u_char *p, size_t len);


#endif /* _FUZZ_H_INCLUDED_ */
