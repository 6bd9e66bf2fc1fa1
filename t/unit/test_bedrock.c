
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: AWS Signature V4 (known answers of AWS's test suite), the
 * event stream framing, and the bedrock translator.  The unit_ai_*
 * helpers are defined in test_anthropic.c.
 */


#include "unit.h"


#define UNIT_AI_CREATED  1700000000


typedef struct {
    ngx_ai_buf_t   content;
    ngx_ai_buf_t   args[4];
    char           tool_id[4][64];
    char           tool_name[4][64];
    char           finish[32];
    int            chunks;
    int            tools;
    int            usage_chunks;
    long long      prompt;
    long long      completion;
    long long      cached;
    long long      reasoning;
} unit_ai_chunks_t;

ngx_ai_chat_request_t *unit_ai_chat(const char *body);
cJSON *unit_ai_path(cJSON *root, const char *path);
const char *unit_ai_str(cJSON *root, const char *path);
double unit_ai_num(cJSON *root, const char *path);
void unit_ai_chunks(ngx_str_t *out, unit_ai_chunks_t *c);


#define STR_IS(j, path, s)                                                   \
    do {                                                                     \
        if (strcmp(unit_ai_str(j, path), s) != 0) {                          \
            unit_fail(__FILE__, __LINE__, "%s is \"%s\", expected \"%s\"",   \
                      path, unit_ai_str(j, path), s);                        \
        }                                                                    \
    } while (0)


/* SigV4: aws-sig-v4-test-suite, get-vanilla and post-vanilla */

#define UNIT_AKID    "AKIDEXAMPLE"
#define UNIT_SECRET  "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define UNIT_EMPTY   \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


static ngx_int_t
unit_vanilla(const char *method, ngx_ai_sigv4_key_t *cache, ngx_str_t *auth,
    ngx_str_t *canonical)
{
    ngx_ai_sigv4_t         in;
    ngx_ai_sigv4_header_t  h[2];

    ngx_memzero(&in, sizeof(in));

    in.method.data = (u_char *) method;
    in.method.len = strlen(method);
    ngx_str_set(&in.path, "/");
    ngx_str_set(&in.body_hash, UNIT_EMPTY);
    ngx_str_set(&in.date, "20150830T123600Z");
    ngx_str_set(&in.region, "us-east-1");
    ngx_str_set(&in.service, "service");
    ngx_str_set(&in.akid, UNIT_AKID);
    ngx_str_set(&in.secret, UNIT_SECRET);

    /* given unsorted: the signer sorts */
    ngx_str_set(&h[0].name, "x-amz-date");
    ngx_str_set(&h[0].value, "20150830T123600Z");
    ngx_str_set(&h[1].name, "host");
    ngx_str_set(&h[1].value, "example.amazonaws.com");

    in.headers = h;
    in.nheaders = 2;
    in.canonical = canonical;

    return ngx_ai_sigv4_sign(unit_pool(), &in, cache, auth);
}


UNIT_TEST(sigv4_get_vanilla)
{
    ngx_str_t           auth, canonical;
    ngx_ai_sigv4_key_t  cache;

    ngx_memzero(&cache, sizeof(cache));

    UNIT_EQ_INT(unit_vanilla("GET", &cache, &auth, &canonical), NGX_OK);

    UNIT_EQ_STR(canonical, "GET\n/\n\nhost:example.amazonaws.com\n"
                           "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
                           UNIT_EMPTY);
    UNIT_EQ_STR(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
                      "us-east-1/service/aws4_request, SignedHeaders=host;"
                      "x-amz-date, Signature=5fa00fa31553b73ebf1942676e8629"
                      "1e8372ff2a2260956d9b8aae1d763fbf31");
    UNIT_EQ_INT(cache.derived, 1);
}


UNIT_TEST(sigv4_post_vanilla_and_key_cache)
{
    ngx_str_t           auth;
    ngx_ai_sigv4_key_t  cache;

    ngx_memzero(&cache, sizeof(cache));

    UNIT_EQ_INT(unit_vanilla("POST", &cache, &auth, NULL), NGX_OK);
    UNIT_CONTAINS(auth, "Signature=5da7c1a2acd57cee7505fc6676e4e544621c3086"
                        "2966e37dddb68e92efbe5d6b");

    /* the same day: the key comes from the cache, same signature */

    UNIT_EQ_INT(unit_vanilla("POST", &cache, &auth, NULL), NGX_OK);
    UNIT_CONTAINS(auth, "Signature=5da7c1a2acd57cee7505fc6676e4e544621c3086"
                        "2966e37dddb68e92efbe5d6b");
    UNIT_EQ_INT(cache.derived, 1);
    UNIT_EQ_INT(cache.hits, 1);

    /* without a cache: the same */

    UNIT_EQ_INT(unit_vanilla("GET", NULL, &auth, NULL), NGX_OK);
    UNIT_CONTAINS(auth, "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a"
                        "2260956d9b8aae1d763fbf31");

    /* GET, the same day, region, service and secret: a hit again */

    UNIT_EQ_INT(unit_vanilla("GET", &cache, &auth, NULL), NGX_OK);
    UNIT_EQ_INT(cache.hits, 2);
    UNIT_EQ_INT(cache.derived, 1);
}


UNIT_TEST(sigv4_refuses)
{
    ngx_str_t              auth;
    ngx_ai_sigv4_t         in;

    ngx_memzero(&in, sizeof(in));
    ngx_str_set(&in.method, "POST");
    ngx_str_set(&in.date, "20150830");          /* not a full date */
    ngx_str_set(&in.akid, UNIT_AKID);
    ngx_str_set(&in.secret, UNIT_SECRET);

    UNIT_EQ_INT(ngx_ai_sigv4_sign(unit_pool(), &in, NULL, &auth),
                NGX_DECLINED);

    ngx_str_set(&in.date, "20150830T123600Z");
    ngx_str_null(&in.secret);

    UNIT_EQ_INT(ngx_ai_sigv4_sign(unit_pool(), &in, NULL, &auth),
                NGX_DECLINED);
}


UNIT_TEST(sigv4_date_and_escape)
{
    u_char        date[16];
    ngx_str_t     s;
    ngx_ai_buf_t  b;

    ngx_ai_sigv4_date(1440938160, date);        /* 2015-08-30 12:36:00 */
    s.data = date;
    s.len = 16;
    UNIT_EQ_STR(s, "20150830T123600Z");

    ngx_ai_buf_init(&b, unit_pool(), 16);
    ngx_ai_uri_escape(&b, (u_char *) "arn:aws:bedrock:us-east-1:1:"
                      "inference-profile/us.a-b_c~d v1:0",
                      strlen("arn:aws:bedrock:us-east-1:1:"
                             "inference-profile/us.a-b_c~d v1:0"), 0);
    UNIT_EQ_STR(b, "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile"
                   "%2Fus.a-b_c~d%20v1%3A0");

    /* the canonical URI: escaped once more, "/" kept */
    b.len = 0;
    ngx_ai_uri_escape(&b, (u_char *) "/model/a.b-v1%3A0/converse", 26, 1);
    UNIT_EQ_STR(b, "/model/a.b-v1%253A0/converse");
}


/* the canonical URI of a Bedrock call escapes the escaped model id */

UNIT_TEST(sigv4_bedrock_path)
{
    ngx_str_t              auth, canonical;
    ngx_ai_sigv4_t         in;
    ngx_ai_sigv4_header_t  h[1];

    ngx_memzero(&in, sizeof(in));
    ngx_str_set(&in.method, "POST");
    ngx_str_set(&in.path, "/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0"
                          "/converse");
    ngx_str_set(&in.body_hash, UNIT_EMPTY);
    ngx_str_set(&in.date, "20250301T000000Z");
    ngx_str_set(&in.region, "us-west-2");
    ngx_str_set(&in.service, "bedrock");
    ngx_str_set(&in.akid, UNIT_AKID);
    ngx_str_set(&in.secret, UNIT_SECRET);
    ngx_str_set(&h[0].name, "host");
    ngx_str_set(&h[0].value, "  bedrock-runtime.us-west-2.amazonaws.com ");
    in.headers = h;
    in.nheaders = 1;
    in.canonical = &canonical;

    UNIT_EQ_INT(ngx_ai_sigv4_sign(unit_pool(), &in, NULL, &auth), NGX_OK);
    UNIT_CONTAINS(canonical, "POST\n/model/anthropic.claude-3-7-sonnet-"
                             "20250219-v1%253A0/converse\n\nhost:bedrock-"
                             "runtime.us-west-2.amazonaws.com\n\nhost\n");
    UNIT_CONTAINS(auth, "Credential=AKIDEXAMPLE/20250301/us-west-2/bedrock/"
                        "aws4_request, SignedHeaders=host, Signature=");
}


/* event stream: an encoder for the tests */

static void
unit_es_header(ngx_ai_buf_t *b, const char *name, const char *value)
{
    u_char  c[3];
    size_t  n;

    c[0] = (u_char) strlen(name);
    ngx_ai_buf_append(b, c, 1);
    ngx_ai_buf_append_str(b, name);
    n = strlen(value);
    c[0] = 7;
    c[1] = (u_char) (n >> 8);
    c[2] = (u_char) n;
    ngx_ai_buf_append(b, c, 3);
    ngx_ai_buf_append(b, value, n);
}


static void
unit_u32(u_char *p, uint32_t v)
{
    p[0] = (u_char) (v >> 24);
    p[1] = (u_char) (v >> 16);
    p[2] = (u_char) (v >> 8);
    p[3] = (u_char) v;
}


/* one message: kind "event" or "exception", type, JSON payload */

static void
unit_es(ngx_ai_buf_t *out, const char *kind, const char *type,
    const char *payload)
{
    u_char        pre[12], crc[4];
    size_t        total;
    ngx_ai_buf_t  h;

    ngx_ai_buf_init(&h, unit_pool(), 128);

    unit_es_header(&h, ":message-type", kind);
    unit_es_header(&h, strcmp(kind, "exception") == 0 ? ":exception-type"
                                                      : ":event-type", type);
    unit_es_header(&h, ":content-type", "application/json");

    total = 12 + h.len + strlen(payload) + 4;
    unit_u32(pre, (uint32_t) total);
    unit_u32(pre + 4, (uint32_t) h.len);
    unit_u32(pre + 8, ngx_crc32_long(pre, 8));

    {
        size_t  start = out->len;

        ngx_ai_buf_append(out, pre, 12);
        ngx_ai_buf_append(out, h.data, h.len);
        ngx_ai_buf_append_str(out, payload);
        unit_u32(crc, ngx_crc32_long(out->data + start, out->len - start));
        ngx_ai_buf_append(out, crc, 4);
    }
}


typedef struct {
    ngx_ai_buf_t   log;        /* "type=payload\n" per event */
    ngx_uint_t     n;
} unit_es_seen_t;


static ngx_int_t
unit_es_record(void *data, ngx_ai_sse_event_t *ev)
{
    unit_es_seen_t  *s = data;

    ngx_ai_buf_append(&s->log, ev->event.data, ev->event.len);
    ngx_ai_buf_append(&s->log, "=", 1);
    ngx_ai_buf_append(&s->log, ev->data.data, ev->data.len);
    ngx_ai_buf_append(&s->log, "\n", 1);
    s->n++;

    return NGX_OK;
}


static ngx_int_t
unit_es_parse(ngx_ai_buf_t *in, size_t split, size_t max,
    unit_es_seen_t *seen, ngx_ai_es_parser_t *p)
{
    ngx_int_t  rc;

    ngx_memzero(seen, sizeof(unit_es_seen_t));
    ngx_ai_buf_init(&seen->log, unit_pool(), 256);
    ngx_ai_es_init(p, unit_pool(), max);

    rc = ngx_ai_es_feed(p, in->data, in->data + split, unit_es_record, seen);

    if (rc == NGX_OK) {
        rc = ngx_ai_es_feed(p, in->data + split, in->data + in->len,
                            unit_es_record, seen);
    }

    return rc;
}


UNIT_TEST(eventstream_every_split)
{
    size_t              split;
    ngx_str_t           whole;
    ngx_ai_buf_t        in;
    unit_es_seen_t      seen;
    ngx_ai_es_parser_t  p;

    ngx_ai_buf_init(&in, unit_pool(), 512);
    unit_es(&in, "event", "messageStart", "{\"role\":\"assistant\"}");
    unit_es(&in, "event", "contentBlockDelta",
            "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}");
    unit_es(&in, "exception", "throttlingException",
            "{\"message\":\"slow down\"}");

    UNIT_EQ_INT(unit_es_parse(&in, in.len, 0, &seen, &p), NGX_OK);
    UNIT_EQ_INT(seen.n, 3);
    whole.data = seen.log.data;
    whole.len = seen.log.len;
    UNIT_EQ_STR(whole, "messageStart={\"role\":\"assistant\"}\n"
                "contentBlockDelta={\"contentBlockIndex\":0,\"delta\":"
                "{\"text\":\"Hi\"}}\n"
                "throttlingException={\"message\":\"slow down\"}\n");

    for (split = 0; split <= in.len; split++) {
        UNIT_EQ_INT(unit_es_parse(&in, split, 0, &seen, &p), NGX_OK);

        if (seen.log.len != whole.len
            || memcmp(seen.log.data, whole.data, whole.len) != 0)
        {
            unit_fail(__FILE__, __LINE__, "split at %uz differs", split);
            return;
        }
    }

    /* byte by byte */

    ngx_memzero(&seen, sizeof(seen));
    ngx_ai_buf_init(&seen.log, unit_pool(), 256);
    ngx_ai_es_init(&p, unit_pool(), 0);

    for (split = 0; split < in.len; split++) {
        UNIT_EQ_INT(ngx_ai_es_feed(&p, in.data + split, in.data + split + 1,
                                   unit_es_record, &seen),
                    NGX_OK);
    }

    UNIT_EQ_INT(seen.n, 3);
    UNIT_EQ_INT(p.messages, 3);
}


UNIT_TEST(eventstream_refuses)
{
    size_t              split, first;
    ngx_ai_buf_t        in;
    unit_es_seen_t      seen;
    ngx_ai_es_parser_t  p;

    ngx_ai_buf_init(&in, unit_pool(), 512);
    unit_es(&in, "event", "messageStart", "{\"role\":\"assistant\"}");
    first = in.len;
    unit_es(&in, "event", "messageStop", "{\"stopReason\":\"end_turn\"}");

    /* a payload byte changed: the message CRC, at every split */

    in.data[in.len - 6] ^= 1;

    for (split = 0; split <= in.len; split++) {
        UNIT_EQ_INT(unit_es_parse(&in, split, 0, &seen, &p), NGX_DECLINED);
        UNIT_EQ_INT(seen.n, 1);
        UNIT_CHECK(strstr(p.error, "bad checksum") != NULL);
    }

    in.data[in.len - 6] ^= 1;

    /* the prelude CRC */

    in.data[first + 9] ^= 0x40;

    for (split = 0; split <= in.len; split++) {
        UNIT_EQ_INT(unit_es_parse(&in, split, 0, &seen, &p), NGX_DECLINED);
        UNIT_EQ_INT(seen.n, 1);
        UNIT_CHECK(strstr(p.error, "bad prelude") != NULL);
    }

    in.data[first + 9] ^= 0x40;

    /* larger than the bound: refused from its prelude alone */

    UNIT_EQ_INT(unit_es_parse(&in, first + 12, 60, &seen, &p), NGX_DECLINED);
    UNIT_CHECK(strstr(p.error, "larger") != NULL);
    UNIT_EQ_INT(seen.n, 0);

    /* a total length below the minimum */

    in.len = 0;
    ngx_ai_buf_append(&in, "\0\0\0\x08\0\0\0\0", 8);
    unit_u32(in.data + in.len, ngx_crc32_long(in.data, 8));
    in.len += 4;
    ngx_ai_buf_append(&in, "\0\0\0\0", 4);

    UNIT_EQ_INT(unit_es_parse(&in, in.len, 0, &seen, &p), NGX_DECLINED);

    /* headers longer than the message, with right CRCs */

    in.len = 0;
    unit_es(&in, "event", "x", "{}");
    unit_u32(in.data + 4, 1000);
    unit_u32(in.data + 8, ngx_crc32_long(in.data, 8));
    unit_u32(in.data + in.len - 4, ngx_crc32_long(in.data, in.len - 4));

    UNIT_EQ_INT(unit_es_parse(&in, in.len, 0, &seen, &p), NGX_DECLINED);
    UNIT_CHECK(strstr(p.error, "bad headers") != NULL);

    /* after a refusal, nothing more is taken */

    UNIT_EQ_INT(ngx_ai_es_feed(&p, in.data, in.data + in.len,
                               unit_es_record, &seen),
                NGX_DECLINED);
}


/* translator: request */

static cJSON *
request(ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *up)
{
    UNIT_EQ_INT(ngx_ai_bedrock_translator.request(unit_pool(), req, up),
                NGX_OK);

    return unit_json(&up->body);
}


UNIT_TEST(bedrock_request)
{
    cJSON                      *j;
    ngx_ai_chat_request_t      *req;
    ngx_ai_upstream_request_t   up;

    req = unit_ai_chat(
        "{\"model\":\"bedrock/anthropic.claude-3-7-sonnet-20250219-v1:0\","
        "\"max_tokens\":300,\"temperature\":1.5,\"top_p\":0.5,"
        "\"stop\":[\"END\"],\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/png;base64,iVBORw0K\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"https://example.com/a.png\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
        "\"t1\",\"type\":\"function\",\"function\":{\"name\":\"get\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"sunny\"},"
        "{\"role\":\"user\",\"content\":\"And?\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\","
        "\"description\":\"weather\",\"parameters\":{\"type\":\"object\"}}}],"
        "\"tool_choice\":\"required\"}");

    req->upstream_model.data = (u_char *)
        "anthropic.claude-3-7-sonnet-20250219-v1:0";
    req->upstream_model.len = strlen((char *) req->upstream_model.data);

    j = request(req, &up);

    UNIT_EQ_STR(up.path, "/model/anthropic.claude-3-7-sonnet-20250219-v1%3A0"
                         "/converse");
    UNIT_CHECK(unit_ai_path(j, "model") == NULL);
    STR_IS(j, "system.0.text", "Be brief.");
    STR_IS(j, "messages.0.role", "user");
    STR_IS(j, "messages.0.content.0.text", "Hi");
    STR_IS(j, "messages.0.content.1.image.format", "png");
    STR_IS(j, "messages.0.content.1.image.source.bytes", "iVBORw0K");
    UNIT_CHECK(unit_ai_path(j, "messages.0.content.2") == NULL);
    STR_IS(j, "messages.1.role", "assistant");
    STR_IS(j, "messages.1.content.0.toolUse.toolUseId", "t1");
    STR_IS(j, "messages.1.content.0.toolUse.name", "get");
    STR_IS(j, "messages.1.content.0.toolUse.input.city", "Paris");
    STR_IS(j, "messages.2.role", "user");
    STR_IS(j, "messages.2.content.0.toolResult.toolUseId", "t1");
    STR_IS(j, "messages.2.content.0.toolResult.content.0.text", "sunny");
    STR_IS(j, "messages.2.content.1.text", "And?");
    UNIT_CHECK(unit_ai_path(j, "messages.3") == NULL);
    UNIT_CHECK(unit_ai_num(j, "inferenceConfig.maxTokens") == 300);
    UNIT_CHECK(unit_ai_num(j, "inferenceConfig.temperature") == 1.0);
    UNIT_CHECK(unit_ai_num(j, "inferenceConfig.topP") == 0.5);
    STR_IS(j, "inferenceConfig.stopSequences.0", "END");
    STR_IS(j, "toolConfig.tools.0.toolSpec.name", "get");
    STR_IS(j, "toolConfig.tools.0.toolSpec.description", "weather");
    STR_IS(j, "toolConfig.tools.0.toolSpec.inputSchema.json.type", "object");
    UNIT_CHECK(cJSON_IsObject(unit_ai_path(j, "toolConfig.toolChoice.any")));
}


UNIT_TEST(bedrock_request_stream_arn)
{
    ngx_ai_chat_request_t      *req;
    ngx_ai_upstream_request_t   up;

    req = unit_ai_chat("{\"model\":\"b/x\",\"stream\":true,\"messages\":"
                       "[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    req->upstream_model.data = (u_char *) "arn:aws:bedrock:us-east-1:"
        "123456789012:inference-profile/us.anthropic.claude-v1:0";
    req->upstream_model.len = strlen((char *) req->upstream_model.data);

    (void) request(req, &up);

    UNIT_EQ_STR(up.path, "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A"
                         "123456789012%3Ainference-profile%2Fus.anthropic."
                         "claude-v1%3A0/converse-stream");

    UNIT_CHECK(ngx_ai_bedrock_translator.model_valid(
                   (u_char *) "a.b-v1:0", 8));
    UNIT_CHECK(!ngx_ai_bedrock_translator.model_valid((u_char *) "a b", 3));
    UNIT_CHECK(!ngx_ai_bedrock_translator.model_valid((u_char *) "a%2F", 4));
    UNIT_CHECK(!ngx_ai_bedrock_translator.model_valid((u_char *) "a?b", 3));
}


/* translator: answers and errors */

UNIT_TEST(bedrock_response)
{
    cJSON                  *j;
    ngx_str_t               body;
    ngx_ai_error_t          err;
    ngx_ai_response_t       out;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat("{\"model\":\"bedrock/m\",\"messages\":"
                       "[{\"role\":\"user\",\"content\":\"Hi\"}]}");

    ngx_str_set(&body,
        "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":["
        "{\"text\":\"Hello \"},{\"text\":\"there\"},"
        "{\"toolUse\":{\"toolUseId\":\"tu1\",\"name\":\"get\",\"input\":"
        "{\"a\":1}}}]}},\"stopReason\":\"tool_use\",\"usage\":{"
        "\"inputTokens\":10,\"outputTokens\":5,\"totalTokens\":45,"
        "\"cacheReadInputTokens\":20,\"cacheWriteInputTokens\":10},"
        "\"metrics\":{\"latencyMs\":100}}");

    UNIT_EQ_INT(ngx_ai_bedrock_translator.response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_OK);

    j = unit_json(&out.body);
    STR_IS(j, "object", "chat.completion");
    STR_IS(j, "choices.0.message.content", "Hello there");
    STR_IS(j, "choices.0.finish_reason", "tool_calls");
    STR_IS(j, "choices.0.message.tool_calls.0.id", "tu1");
    STR_IS(j, "choices.0.message.tool_calls.0.function.name", "get");
    STR_IS(j, "choices.0.message.tool_calls.0.function.arguments",
           "{\"a\":1}");
    UNIT_EQ_INT(out.usage.prompt_tokens, 40);
    UNIT_EQ_INT(out.usage.completion_tokens, 5);
    UNIT_EQ_INT(out.usage.cached_tokens, 20);
    UNIT_EQ_INT(out.usage.cache_creation_tokens, 10);
    UNIT_CHECK(unit_ai_num(j, "usage.total_tokens") == 45);

    ngx_str_set(&body, "{\"output\":{\"message\":{\"content\":[{\"text\":"
                       "\"cut\"}]}},\"stopReason\":\"max_tokens\"}");

    UNIT_EQ_INT(ngx_ai_bedrock_translator.response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_OK);
    UNIT_EQ_STR(out.finish_reason, "length");
    UNIT_EQ_INT(out.usage.known, 0);

    ngx_str_set(&body, "{\"output\":{\"message\":{\"content\":[]}},"
                       "\"stopReason\":\"guardrail_intervened\"}");

    UNIT_EQ_INT(ngx_ai_bedrock_translator.response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_OK);
    UNIT_EQ_STR(out.finish_reason, "content_filter");

    ngx_str_set(&body, "{\"message\":\"not an answer\"}");

    UNIT_EQ_INT(ngx_ai_bedrock_translator.response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_DECLINED);
    UNIT_EQ_INT(err.status, 502);
}


UNIT_TEST(bedrock_error)
{
    ngx_str_t       body;
    ngx_ai_error_t  err;

    ngx_str_set(&body, "{\"message\":\"The security token included in the "
                       "request is expired\"}");
    ngx_ai_bedrock_translator.error(unit_pool(), 403, body.data, body.len,
                                    &err);
    UNIT_EQ_INT(err.status, 403);
    UNIT_EQ_STR(err.message, "The security token included in the request "
                             "is expired");
    UNIT_CHECK(strcmp(err.type, "permission_error") == 0);

    ngx_str_set(&body, "{\"Message\":\"Too many requests\"}");
    ngx_ai_bedrock_translator.error(unit_pool(), 429, body.data, body.len,
                                    &err);
    UNIT_EQ_STR(err.message, "Too many requests");
    UNIT_CHECK(strcmp(err.code, "ThrottlingException") == 0);

    ngx_str_set(&body, "<html>");
    ngx_ai_bedrock_translator.error(unit_pool(), 500, body.data, body.len,
                                    &err);
    UNIT_EQ_STR(err.message, "the provider answered with an error");
}


/* translator: streams, through the event stream parser */

typedef struct {
    ngx_ai_stream_t  *st;
} unit_br_feed_t;


static ngx_int_t
unit_br_event(void *data, ngx_ai_sse_event_t *ev)
{
    unit_br_feed_t  *f = data;

    return ngx_ai_bedrock_translator.stream_event(f->st, ev);
}


static ngx_int_t
unit_br_stream(ngx_ai_buf_t *in, size_t split, ngx_uint_t usage,
    ngx_ai_stream_t *st)
{
    ngx_int_t               rc;
    unit_br_feed_t          f;
    ngx_ai_es_parser_t      p;
    ngx_ai_chat_request_t  *req;

    req = ngx_pcalloc(unit_pool(), sizeof(ngx_ai_chat_request_t));
    ngx_str_set(&req->model, "bedrock/m");
    req->stream = 1;
    req->include_usage = usage;

    ngx_ai_stream_init(st, unit_pool(), req, UNIT_AI_CREATED);
    ngx_ai_es_init(&p, unit_pool(), 0);
    f.st = st;

    rc = ngx_ai_es_feed(&p, in->data, in->data + split, unit_br_event, &f);

    if (rc == NGX_OK) {
        rc = ngx_ai_es_feed(&p, in->data + split, in->data + in->len,
                            unit_br_event, &f);
    }

    return rc;
}


UNIT_TEST(bedrock_stream)
{
    size_t            split;
    ngx_str_t         out0;
    ngx_ai_buf_t      in;
    ngx_ai_stream_t   st;
    unit_ai_chunks_t  c;

    ngx_ai_buf_init(&in, unit_pool(), 1024);
    unit_es(&in, "event", "messageStart", "{\"p\":\"abc\",\"role\":"
                                          "\"assistant\"}");
    unit_es(&in, "event", "contentBlockDelta",
            "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hel\"}}");
    unit_es(&in, "event", "contentBlockDelta",
            "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"lo\"}}");
    unit_es(&in, "event", "contentBlockStop", "{\"contentBlockIndex\":0}");
    unit_es(&in, "event", "contentBlockStart",
            "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"toolUseId\":"
            "\"tu1\",\"name\":\"get\"}}}");
    unit_es(&in, "event", "contentBlockDelta",
            "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":"
            "\"{\\\"a\\\":\"}}}");
    unit_es(&in, "event", "contentBlockDelta",
            "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":"
            "\"1}\"}}}");
    unit_es(&in, "event", "contentBlockStop", "{\"contentBlockIndex\":1}");
    unit_es(&in, "event", "messageStop", "{\"stopReason\":\"tool_use\"}");
    unit_es(&in, "event", "metadata", "{\"usage\":{\"inputTokens\":7,"
            "\"outputTokens\":3,\"totalTokens\":12,\"cacheReadInputTokens\":"
            "2},\"metrics\":{\"latencyMs\":5}}");

    UNIT_EQ_INT(unit_br_stream(&in, in.len, 1, &st), NGX_OK);
    UNIT_CHECK(st.done);
    UNIT_CHECK(!st.failed);

    out0.data = st.out.data;
    out0.len = st.out.len;
    unit_ai_chunks(&out0, &c);

    UNIT_EQ_STR(c.content, "Hello");
    UNIT_EQ_INT(c.tools, 1);
    UNIT_CHECK(strcmp(c.tool_id[0], "tu1") == 0);
    UNIT_CHECK(strcmp(c.tool_name[0], "get") == 0);
    UNIT_EQ_STR(c.args[0], "{\"a\":1}");
    UNIT_CHECK(strcmp(c.finish, "tool_calls") == 0);
    UNIT_EQ_INT(c.usage_chunks, 1);
    UNIT_EQ_INT(c.prompt, 9);
    UNIT_EQ_INT(c.completion, 3);
    UNIT_EQ_INT(c.cached, 2);

    for (split = 0; split <= in.len; split += 7) {
        UNIT_EQ_INT(unit_br_stream(&in, split, 1, &st), NGX_OK);

        if (st.out.len != out0.len
            || memcmp(st.out.data, out0.data, out0.len) != 0)
        {
            unit_fail(__FILE__, __LINE__, "split at %d differs", (int) split);
            return;
        }
    }
}


UNIT_TEST(bedrock_stream_exception)
{
    ngx_ai_buf_t     in;
    ngx_ai_stream_t  st;

    ngx_ai_buf_init(&in, unit_pool(), 512);
    unit_es(&in, "event", "messageStart", "{\"role\":\"assistant\"}");
    unit_es(&in, "event", "contentBlockDelta",
            "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}");
    unit_es(&in, "exception", "modelStreamErrorException",
            "{\"message\":\"the model broke\"}");
    unit_es(&in, "event", "messageStop", "{\"stopReason\":\"end_turn\"}");

    UNIT_EQ_INT(unit_br_stream(&in, in.len, 0, &st), NGX_DECLINED);
    UNIT_CHECK(st.failed);
    UNIT_CHECK(!st.done);
    UNIT_EQ_STR(st.error, "the model broke");

    /* messageStop without metadata: not a whole stream */

    in.len = 0;
    unit_es(&in, "event", "messageStart", "{\"role\":\"assistant\"}");
    unit_es(&in, "event", "messageStop", "{\"stopReason\":\"end_turn\"}");

    UNIT_EQ_INT(unit_br_stream(&in, in.len, 0, &st), NGX_OK);
    UNIT_CHECK(!st.done);

    /* an event that is not JSON */

    in.len = 0;
    unit_es(&in, "event", "contentBlockDelta", "{not json");

    UNIT_EQ_INT(unit_br_stream(&in, in.len, 0, &st), NGX_DECLINED);
    UNIT_CHECK(st.failed);
}
