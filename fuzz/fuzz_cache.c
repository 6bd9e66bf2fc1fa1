
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: the edge cache's pure parts (ngx_ai_gateway_cache_key.c).
 * The input's first byte picks what the rest is:
 *
 *   0  a cache file's record, read back from disk: a record decoded lies
 *      within the input, and encoded again decodes to the same fields;
 *   1  a relayed chunk stream, fed in two pieces split where the second
 *      byte says: an answer put back together is a JSON object the store
 *      accepts, its replay is well-formed SSE, and the replay put back
 *      together again is the same answer but for usage's cost;
 *   2  a request body: its canonical form (when it is an object) is JSON,
 *      and canonical again gives the same bytes.
 */


#include "fuzz.h"
#include "ngx_ai_gateway_cache_key.h"


static void fuzz_cache_record(ngx_pool_t *pool, u_char *p, size_t len);
static void fuzz_cache_chunks(ngx_pool_t *pool, u_char *p, size_t len,
    size_t split);
static void fuzz_cache_canon(ngx_pool_t *pool, u_char *p, size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      *buf;
    ngx_pool_t  *pool;

    if (size < 2) {
        return 0;
    }

    pool = fuzz_pool();

    /* exactly the bytes: ASan sees a read past the end */
    buf = ngx_pnalloc(pool, size - 2 ? size - 2 : 1);
    if (buf == NULL) {
        fuzz_fail("no memory");
    }

    ngx_memcpy(buf, data + 2, size - 2);

    switch (data[0] % 3) {

    case 0:
        fuzz_cache_record(pool, buf, size - 2);
        break;

    case 1:
        fuzz_cache_chunks(pool, buf, size - 2,
                          size > 2 ? data[1] % (size - 1) : 0);
        break;

    default:
        fuzz_cache_canon(pool, buf, size - 2);
    }

    ngx_destroy_pool(pool);

    return 0;
}


static void
fuzz_cache_record(ngx_pool_t *pool, u_char *p, size_t len)
{
    ngx_str_t              out;
    ngx_ai_cache_record_t  rec, back;

    if (ngx_ai_cache_record_decode(p, len, &rec) != NGX_OK) {
        return;
    }

    if (rec.body.data < p || rec.body.data + rec.body.len != p + len
        || rec.body.len == 0
        || rec.model.data < p || rec.model.data + rec.model.len > p + len
        || rec.model.len > NGX_AI_CACHE_MAX_MODEL)
    {
        fuzz_fail("a record's fields outside its bytes");
    }

    if (ngx_ai_cache_record_encode(pool, &rec, &out) != NGX_OK) {
        fuzz_fail("a record read cannot be written");
    }

    if (ngx_ai_cache_record_decode(out.data, out.len, &back) != NGX_OK
        || back.created != rec.created
        || back.input_tokens != rec.input_tokens
        || back.output_tokens != rec.output_tokens
        || back.cost != rec.cost
        || back.model.len != rec.model.len
        || ngx_memcmp(back.model.data, rec.model.data, rec.model.len) != 0
        || back.body.len != rec.body.len
        || ngx_memcmp(back.body.data, rec.body.data, rec.body.len) != 0)
    {
        fuzz_fail("a record written and read is another record");
    }
}


static void
fuzz_cache_chunks(ngx_pool_t *pool, u_char *p, size_t len, size_t split)
{
    ngx_str_t               answer, again;
    ngx_ai_buf_t            b;
    ngx_ai_usage_t          usage;
    ngx_ai_stream_t         st;
    ngx_ai_cache_chunks_t   ch, ch2;
    ngx_ai_chat_request_t  *req;

    if (ngx_ai_cache_chunks_init(&ch, pool, 8192) != NGX_OK) {
        fuzz_fail("no memory");
    }

    if (ngx_ai_cache_chunks_feed(&ch, p, split) != NGX_OK
        || ngx_ai_cache_chunks_feed(&ch, p + split, len - split) != NGX_OK)
    {
        fuzz_fail("chunks feed failed");
    }

    ngx_memzero(&usage, sizeof(usage));
    usage.known = 1;
    usage.prompt_tokens = 3;
    usage.completion_tokens = 4;

    if (ngx_ai_cache_chunks_answer(&ch, &usage, &answer) != NGX_OK) {
        return;
    }

    fuzz_check_json("reassembled answer", answer.data, answer.len, 1);

    if (ngx_ai_cache_answer_ok(pool, &answer) != NGX_OK) {
        fuzz_fail("a reassembled answer the store refuses");
    }

    req = fuzz_chat(pool, "openai/gpt-4o", 1, 1);

    if (ngx_ai_stream_init(&st, pool, req, FUZZ_CREATED) != NGX_OK) {
        fuzz_fail("no memory");
    }

    if (ngx_ai_cache_replay(&st, &answer) != NGX_OK) {
        fuzz_fail("a stored answer that cannot be replayed");
    }

    fuzz_check_sse("replayed stream", st.out.data, st.out.len);

    if (ngx_ai_buf_init(&b, pool, st.out.len + 16) != NGX_OK
        || ngx_ai_buf_append(&b, st.out.data, st.out.len) != NGX_OK
        || ngx_ai_buf_append_str(&b, "data: [DONE]\n\n") != NGX_OK
        || ngx_ai_cache_chunks_init(&ch2, pool, 1024 * 1024) != NGX_OK
        || ngx_ai_cache_chunks_feed(&ch2, b.data, b.len) != NGX_OK)
    {
        fuzz_fail("no memory");
    }

    if (ngx_ai_cache_chunks_answer(&ch2, &usage, &again) != NGX_OK) {
        fuzz_fail("a replay that is not a whole stream");
    }

    if (ch2.content.len != ch.content.len
        || ngx_memcmp(ch2.content.data, ch.content.data, ch.content.len)
           != 0
        || ch2.ntools != ch.ntools
        || ch2.finish.len != ch.finish.len)
    {
        fuzz_fail("a replay says another answer");
    }
}


static void
fuzz_cache_canon(ngx_pool_t *pool, u_char *p, size_t len)
{
    cJSON                 *root, *again;
    ngx_ai_buf_t           b, b2;
    ngx_ai_cache_canon_t   info;

    root = ngx_ai_json_parse(pool, p, len);

    if (root == NULL) {
        return;
    }

    if (ngx_ai_cache_canon(pool, root, &b, &info) != NGX_OK) {
        if (cJSON_IsObject(root)) {
            fuzz_fail("no canonical form of an object");
        }

        return;
    }

    fuzz_check_json("canonical form", b.data, b.len, 1);

    again = ngx_ai_json_parse(pool, b.data, b.len);

    if (again == NULL
        || ngx_ai_cache_canon(pool, again, &b2, &info) != NGX_OK
        || b2.len != b.len || ngx_memcmp(b2.data, b.data, b.len) != 0)
    {
        fuzz_fail("the canonical form is not canonical");
    }
}
