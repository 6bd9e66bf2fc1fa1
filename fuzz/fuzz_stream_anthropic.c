
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a anthropic-type provider's SSE stream, fed through
 * ngx_ai_sse_feed() into ngx_ai_anthropic_translator.stream_event() whole and
 * cut at points taken from the input, with and without include_usage
 * (fuzz_stream_target() in fuzz_common.c has the input layout).
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_stream_target(&ngx_ai_anthropic_translator,
                              "anthropic/claude-3-7-sonnet", data, size);
}
