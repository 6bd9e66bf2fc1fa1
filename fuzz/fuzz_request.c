
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a client's request body (fuzz_chat_body() in fuzz_chat.c).
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_pool_t  *pool;

    pool = fuzz_pool();

    fuzz_chat_body(pool, data, size);

    ngx_destroy_pool(pool);

    return 0;
}
