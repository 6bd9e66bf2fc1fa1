
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: a bedrock-type provider's ConverseStream, AWS event stream
 * messages fed through ngx_ai_es_feed() into
 * ngx_ai_bedrock_translator.stream_event() whole and cut at points taken
 * from the input (fuzz_stream_target() in fuzz_common.c has the layout).
 * The CRCs of the messages are made right first (fuzz_es_fix_crcs()), so
 * that the fuzzer reaches the headers, the payloads and the translator,
 * not only the checksum refusals (fuzz_eventstream has those).
 */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *copy;

    if (size < 5) {
        return 0;
    }

    copy = malloc(size);
    if (copy == NULL) {
        return 0;
    }

    ngx_memcpy(copy, data, size);
    fuzz_es_fix_crcs(copy + 5, size - 5);

    (void) fuzz_stream_target(&ngx_ai_bedrock_translator,
                              "bedrock/anthropic.claude-v1:0", copy, size);

    free(copy);

    return 0;
}
