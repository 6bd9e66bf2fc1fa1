
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a bedrock-type provider's whole (Converse) answer and
 * error bodies: ngx_ai_bedrock_translator.response() and .error() on the
 * bytes, for a fixed valid request (fuzz_response_target() in
 * fuzz_common.c).
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_response_target(&ngx_ai_bedrock_translator,
                                "bedrock/anthropic.claude-v1:0", data, size);
}
