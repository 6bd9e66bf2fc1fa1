
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a anthropic-type provider's whole answer and error bodies:
 * ngx_ai_anthropic_translator.response() and .error() on the bytes, for a
 * fixed valid request (fuzz_response_target() in fuzz_common.c).
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_response_target(&ngx_ai_anthropic_translator,
                                "anthropic/claude-3-7-sonnet", data, size);
}
