
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the gemini translator.  The unit_ai_* helpers are defined
 * in test_anthropic.c.
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

ngx_str_t unit_ai_corpus(const char *name);
ngx_ai_chat_request_t *unit_ai_chat(const char *body);
cJSON *unit_ai_path(cJSON *root, const char *path);
const char *unit_ai_str(cJSON *root, const char *path);
double unit_ai_num(cJSON *root, const char *path);
ngx_int_t unit_ai_feed(ngx_ai_translator_t *tr, ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_str_t *in, size_t split,
    ngx_ai_stream_t *st);
void unit_ai_every_split(ngx_ai_translator_t *tr, const char *name);
void unit_ai_chunks(ngx_str_t *out, unit_ai_chunks_t *c);


#define STR_IS(j, path, s)  UNIT_CHECK(strcmp(unit_ai_str(j, path), s) == 0)


/* request */

static cJSON *
request(ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *up)
{
    UNIT_EQ_INT(ngx_ai_gemini_translator.request(unit_pool(), req, up),
                NGX_OK);

    return unit_json(&up->body);
}


UNIT_TEST(gemini_request_basic)
{
    const char                 *body;
    cJSON                      *j;
    ngx_str_t                   before, after;
    ngx_ai_chat_request_t      *req;
    ngx_ai_upstream_request_t   up;

    body = "{\"model\":\"google/gemini-2.5-pro\",\"max_tokens\":300,"
           "\"temperature\":1.5,\"top_p\":0.5,\"stop\":[\"END\",\"STOP\"],"
           "\"seed\":7,\"n\":2,\"presence_penalty\":1,\"messages\":["
           "{\"role\":\"system\",\"content\":\"Be brief.\"},"
           "{\"role\":\"user\",\"content\":\"Hi\"},"
           "{\"role\":\"developer\",\"content\":\"Answer in French.\"},"
           "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
           "\"text\":\"there\"}]},"
           "{\"role\":\"assistant\",\"content\":\"Bonjour\"},"
           "{\"role\":\"assistant\",\"content\":\"!\"},"
           "{\"role\":\"user\",\"content\":\"Why?\"}]}";

    req = unit_ai_chat(body);
    ngx_ai_json_print(unit_pool(), req->json, &before);

    j = request(req, &up);
    UNIT_EQ_STR(up.path, "/v1beta/models/gemini-2.5-pro:generateContent");

    STR_IS(j, "systemInstruction.parts.0.text",
           "Be brief.\n\nAnswer in French.");
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "contents")), 3);
    STR_IS(j, "contents.0.role", "user");
    STR_IS(j, "contents.0.parts.0.text", "Hi");
    STR_IS(j, "contents.0.parts.1.text", "there");
    STR_IS(j, "contents.1.role", "model");
    STR_IS(j, "contents.1.parts.0.text", "Bonjour");
    STR_IS(j, "contents.1.parts.1.text", "!");
    STR_IS(j, "contents.2.role", "user");

    UNIT_EQ_INT(unit_ai_num(j, "generationConfig.maxOutputTokens"), 300);
    UNIT_CHECK(unit_ai_num(j, "generationConfig.temperature") == 1.5);
    UNIT_CHECK(unit_ai_num(j, "generationConfig.topP") == 0.5);
    STR_IS(j, "generationConfig.stopSequences.1", "STOP");
    UNIT_EQ_INT(unit_ai_num(j, "generationConfig.seed"), 7);
    UNIT_CHECK(unit_ai_path(j, "generationConfig.candidateCount") == NULL);
    UNIT_CHECK(unit_ai_path(j, "generationConfig.presencePenalty") == NULL);
    UNIT_CHECK(unit_ai_path(j, "model") == NULL);
    UNIT_CHECK(unit_ai_path(j, "tools") == NULL);
    UNIT_CHECK(unit_ai_path(j, "toolConfig") == NULL);

    ngx_ai_json_print(unit_pool(), req->json, &after);
    UNIT_CHECK(before.len == after.len
               && memcmp(before.data, after.data, before.len) == 0);

    /* streaming path; nothing to configure */
    req = unit_ai_chat("{\"model\":\"google/gemini-2.5-flash\",\"stream\":"
                       "true,\"stop\":\"x\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"Hi\"}]}");
    j = request(req, &up);
    UNIT_EQ_STR(up.path, "/v1beta/models/gemini-2.5-flash:"
                "streamGenerateContent?alt=sse");
    STR_IS(j, "generationConfig.stopSequences.0", "x");
    UNIT_CHECK(unit_ai_path(j, "generationConfig.maxOutputTokens") == NULL);
    UNIT_CHECK(unit_ai_path(j, "systemInstruction") == NULL);
    UNIT_CHECK(unit_ai_path(j, "stream") == NULL);

    req = unit_ai_chat("{\"model\":\"g/m\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"Hi\"}]}");
    j = request(req, &up);
    UNIT_CHECK(unit_ai_path(j, "generationConfig") == NULL);
}


UNIT_TEST(gemini_request_response_format)
{
    cJSON                      *j;
    ngx_ai_upstream_request_t   up;

    j = request(unit_ai_chat("{\"model\":\"g/m\",\"response_format\":"
                             "{\"type\":\"json_object\"},\"messages\":"
                             "[{\"role\":\"user\",\"content\":\"Hi\"}]}"),
                &up);
    STR_IS(j, "generationConfig.responseMimeType", "application/json");
    UNIT_CHECK(unit_ai_path(j, "generationConfig.responseJsonSchema")
               == NULL);

    j = request(unit_ai_chat("{\"model\":\"g/m\",\"response_format\":"
                             "{\"type\":\"json_schema\",\"json_schema\":"
                             "{\"name\":\"r\",\"schema\":{\"type\":\"object\","
                             "\"additionalProperties\":false}}},\"messages\":"
                             "[{\"role\":\"user\",\"content\":\"Hi\"}]}"),
                &up);
    STR_IS(j, "generationConfig.responseMimeType", "application/json");
    STR_IS(j, "generationConfig.responseJsonSchema.type", "object");

    j = request(unit_ai_chat("{\"model\":\"g/m\",\"response_format\":"
                             "{\"type\":\"text\"},\"messages\":"
                             "[{\"role\":\"user\",\"content\":\"Hi\"}]}"),
                &up);
    UNIT_CHECK(unit_ai_path(j, "generationConfig") == NULL);
}


UNIT_TEST(gemini_request_media)
{
    cJSON                      *j;
    ngx_ai_upstream_request_t   up;

    j = request(unit_ai_chat("{\"model\":\"g/m\",\"messages\":[{\"role\":"
        "\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/webp;base64,UklGRg==\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"https://example.com/a/cat.PNG?sig=1.jpg#x\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"http://example.com/photo\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"https://example.com/v1.2/doc.pdf\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"file:///etc/passwd\"}},"
        "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"UklGRg\","
        "\"format\":\"wav\"}},"
        "{\"type\":\"file\",\"file\":{\"file_data\":"
        "\"data:application/pdf;base64,JVBERi0=\"}},"
        "{\"type\":\"file\",\"file\":{\"file_id\":\"file-1\"}}]}]}"), &up);

    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "contents.0.parts")), 7);
    STR_IS(j, "contents.0.parts.1.inlineData.mimeType", "image/webp");
    STR_IS(j, "contents.0.parts.1.inlineData.data", "UklGRg==");
    STR_IS(j, "contents.0.parts.2.fileData.mimeType", "image/png");
    STR_IS(j, "contents.0.parts.2.fileData.fileUri",
           "https://example.com/a/cat.PNG?sig=1.jpg#x");
    STR_IS(j, "contents.0.parts.3.fileData.mimeType", "image/jpeg");
    STR_IS(j, "contents.0.parts.4.fileData.mimeType", "application/pdf");
    STR_IS(j, "contents.0.parts.5.inlineData.mimeType", "audio/wav");
    STR_IS(j, "contents.0.parts.5.inlineData.data", "UklGRg");
    STR_IS(j, "contents.0.parts.6.inlineData.mimeType", "application/pdf");
    STR_IS(j, "contents.0.parts.6.inlineData.data", "JVBERi0=");
}


UNIT_TEST(gemini_request_tools)
{
    cJSON                      *j;
    ngx_ai_upstream_request_t   up;
    const char                 *head, *msgs;
    char                        body[4096];

    head = "{\"model\":\"g/m\",\"tools\":[{\"type\":\"function\",\"function\":"
           "{\"name\":\"get_weather\",\"description\":\"Weather now\","
           "\"parameters\":{\"type\":\"object\",\"properties\":{\"location\":"
           "{\"type\":\"string\"}},\"additionalProperties\":false}}},"
           "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}},"
           "{\"type\":\"custom\",\"custom\":{\"name\":\"x\"}}]";

    msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},"
           "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
           "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":"
           "\"get_weather\",\"arguments\":\"{\\\"location\\\":\\\"Paris\\\"}"
           "\"}},{\"id\":\"call_1\",\"type\":\"function\",\"function\":"
           "{\"name\":\"get_time\",\"arguments\":\"\"}}]},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":"
           "\"{\\\"temp\\\":21}\"},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":"
           "\"noon\"},"
           "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
           "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":"
           "\"get_time\",\"arguments\":\"{}\"}}]},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":"
           "\"42 apples\"},"
           "{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"name\":\"legacy\","
           "\"content\":\"[1,2]\"}]}";

    snprintf(body, sizeof(body), "%s,\"tool_choice\":\"auto\",%s", head,
             msgs);
    j = request(unit_ai_chat(body), &up);

    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "tools")), 1);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j,
                                   "tools.0.functionDeclarations")), 2);
    STR_IS(j, "tools.0.functionDeclarations.0.name", "get_weather");
    STR_IS(j, "tools.0.functionDeclarations.0.description", "Weather now");
    STR_IS(j, "tools.0.functionDeclarations.0.parametersJsonSchema."
              "properties.location.type", "string");
    UNIT_CHECK(cJSON_IsFalse(unit_ai_path(j, "tools.0.functionDeclarations."
                             "0.parametersJsonSchema.additionalProperties")));
    UNIT_CHECK(unit_ai_path(j, "tools.0.functionDeclarations.1."
                               "parametersJsonSchema") == NULL);
    STR_IS(j, "toolConfig.functionCallingConfig.mode", "AUTO");

    /* model turn: text and calls, the first call signed */
    STR_IS(j, "contents.1.role", "model");
    STR_IS(j, "contents.1.parts.0.text", "Checking.");
    STR_IS(j, "contents.1.parts.1.functionCall.name", "get_weather");
    STR_IS(j, "contents.1.parts.1.functionCall.args.location", "Paris");
    STR_IS(j, "contents.1.parts.1.thoughtSignature",
           "skip_thought_signature_validator");
    STR_IS(j, "contents.1.parts.2.functionCall.name", "get_time");
    UNIT_CHECK(cJSON_IsObject(unit_ai_path(j,
                              "contents.1.parts.2.functionCall.args")));
    UNIT_CHECK(unit_ai_path(j, "contents.1.parts.2.thoughtSignature")
               == NULL);

    /* the two results in one user turn, named by the calls' ids */
    STR_IS(j, "contents.2.role", "user");
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "contents.2.parts")), 2);
    STR_IS(j, "contents.2.parts.0.functionResponse.name", "get_weather");
    UNIT_EQ_INT(unit_ai_num(j, "contents.2.parts.0.functionResponse."
                               "response.content.temp"), 21);
    STR_IS(j, "contents.2.parts.1.functionResponse.name", "get_time");
    STR_IS(j, "contents.2.parts.1.functionResponse.response.content",
           "noon");

    /* a reused id names the latest call; text that is not all JSON stays
     * text; an unknown id falls back to the message's name */
    STR_IS(j, "contents.3.role", "model");
    STR_IS(j, "contents.3.parts.0.thoughtSignature",
           "skip_thought_signature_validator");
    STR_IS(j, "contents.4.parts.0.functionResponse.name", "get_time");
    STR_IS(j, "contents.4.parts.0.functionResponse.response.content",
           "42 apples");
    STR_IS(j, "contents.4.parts.1.functionResponse.name", "legacy");
    UNIT_EQ_INT(unit_ai_num(j, "contents.4.parts.1.functionResponse."
                               "response.content.1"), 2);

    snprintf(body, sizeof(body), "%s,\"tool_choice\":\"required\",%s", head,
             msgs);
    j = request(unit_ai_chat(body), &up);
    STR_IS(j, "toolConfig.functionCallingConfig.mode", "ANY");
    UNIT_CHECK(unit_ai_path(j, "toolConfig.functionCallingConfig."
                               "allowedFunctionNames") == NULL);

    snprintf(body, sizeof(body), "%s,\"tool_choice\":\"none\",%s", head,
             msgs);
    j = request(unit_ai_chat(body), &up);
    STR_IS(j, "toolConfig.functionCallingConfig.mode", "NONE");

    snprintf(body, sizeof(body), "%s,\"tool_choice\":{\"type\":\"function\","
             "\"function\":{\"name\":\"get_time\"}},%s", head, msgs);
    j = request(unit_ai_chat(body), &up);
    STR_IS(j, "toolConfig.functionCallingConfig.mode", "ANY");
    STR_IS(j, "toolConfig.functionCallingConfig.allowedFunctionNames.0",
           "get_time");

    snprintf(body, sizeof(body), "%s,%s", head, msgs);
    j = request(unit_ai_chat(body), &up);
    UNIT_CHECK(unit_ai_path(j, "toolConfig") == NULL);
}


/* response */

static ngx_int_t
response(const char *name, ngx_ai_response_t *out, cJSON **j)
{
    ngx_int_t               rc;
    ngx_str_t               body;
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat("{\"model\":\"google/gemini-2.5-pro\",\"messages\":"
                       "[{\"role\":\"user\",\"content\":\"x\"}]}");
    body = unit_ai_corpus(name);

    rc = ngx_ai_gemini_translator.response(unit_pool(), req, body.data,
                                           body.len, out, &err);
    *j = rc == NGX_OK ? unit_json(&out->body) : NULL;

    return rc;
}


UNIT_TEST(gemini_response_text_and_thoughts)
{
    cJSON              *j;
    ngx_ai_response_t   out;

    UNIT_EQ_INT(response("gemini_response.json", &out, &j), NGX_OK);

    /* the thought summary is not content; thoughts are billed as output */
    UNIT_EQ_STR(out.content, "Paris is the capital of France.");
    UNIT_EQ_STR(out.finish_reason, "stop");
    UNIT_EQ_INT(out.usage.known, 1);
    UNIT_EQ_INT(out.usage.prompt_tokens, 1500);
    UNIT_EQ_INT(out.usage.cached_tokens, 1024);
    UNIT_EQ_INT(out.usage.completion_tokens, 107);
    UNIT_EQ_INT(out.usage.reasoning_tokens, 100);

    STR_IS(j, "id", "chatcmpl-Y2hhdGNtcGwtZ2VtaW5p");
    STR_IS(j, "object", "chat.completion");
    UNIT_CHECK(unit_ai_num(j, "created") == UNIT_AI_CREATED);
    STR_IS(j, "model", "google/gemini-2.5-pro");
    STR_IS(j, "choices.0.message.content", "Paris is the capital of France.");
    STR_IS(j, "choices.0.finish_reason", "stop");
    UNIT_EQ_INT(unit_ai_num(j, "usage.prompt_tokens"), 1500);
    UNIT_EQ_INT(unit_ai_num(j, "usage.completion_tokens"), 107);
    UNIT_EQ_INT(unit_ai_num(j, "usage.total_tokens"), 1607);
    UNIT_EQ_INT(unit_ai_num(j, "usage.prompt_tokens_details.cached_tokens"),
                1024);
    UNIT_EQ_INT(unit_ai_num(j,
                "usage.completion_tokens_details.reasoning_tokens"), 100);
}


UNIT_TEST(gemini_response_function_calls)
{
    cJSON              *j;
    ngx_ai_response_t   out;

    UNIT_EQ_INT(response("gemini_function_call.json", &out, &j), NGX_OK);

    UNIT_EQ_STR(out.finish_reason, "tool_calls");
    UNIT_EQ_INT(out.usage.prompt_tokens, 67);
    UNIT_EQ_INT(out.usage.completion_tokens, 20);

    UNIT_CHECK(cJSON_IsNull(unit_ai_path(j, "choices.0.message.content")));
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j,
                                   "choices.0.message.tool_calls")), 2);
    STR_IS(j, "choices.0.message.tool_calls.0.id", "call_0");
    STR_IS(j, "choices.0.message.tool_calls.0.type", "function");
    STR_IS(j, "choices.0.message.tool_calls.0.function.name", "get_weather");
    STR_IS(j, "choices.0.message.tool_calls.0.function.arguments",
           "{\"location\":\"Boston\",\"unit\":\"fahrenheit\"}");
    STR_IS(j, "choices.0.message.tool_calls.1.id", "call_1");
    STR_IS(j, "choices.0.message.tool_calls.1.function.arguments", "{}");
    STR_IS(j, "choices.0.finish_reason", "tool_calls");
}


UNIT_TEST(gemini_response_blocked_and_finish_reasons)
{
    int                     i;
    cJSON                  *j;
    ngx_str_t               body;
    ngx_ai_error_t          err;
    ngx_ai_response_t       out;
    ngx_ai_chat_request_t  *req;
    const char             *reasons[] = {
        "STOP", "stop", "MAX_TOKENS", "length", "SAFETY", "content_filter",
        "RECITATION", "content_filter", "BLOCKLIST", "content_filter",
        "PROHIBITED_CONTENT", "content_filter", "SPII", "content_filter",
        "OTHER", "stop", "MALFORMED_FUNCTION_CALL", "stop", NULL
    };
    char                    in[512];

    UNIT_EQ_INT(response("gemini_blocked.json", &out, &j), NGX_OK);
    UNIT_EQ_STR(out.content, "");
    UNIT_EQ_STR(out.finish_reason, "content_filter");
    UNIT_EQ_INT(out.usage.prompt_tokens, 12);
    STR_IS(j, "choices.0.message.content", "");
    STR_IS(j, "id", "chatcmpl-ai1700000000");

    UNIT_EQ_INT(response("gemini_max_tokens.json", &out, &j), NGX_OK);
    UNIT_EQ_STR(out.content, "");
    UNIT_EQ_STR(out.finish_reason, "length");
    UNIT_EQ_INT(out.usage.completion_tokens, 64);
    UNIT_EQ_INT(out.usage.reasoning_tokens, 64);

    req = unit_ai_chat("{\"model\":\"g/m\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"x\"}]}");

    for (i = 0; reasons[i]; i += 2) {
        snprintf(in, sizeof(in), "{\"candidates\":[{\"content\":{\"parts\":"
                 "[{\"text\":\"a\"}]},\"finishReason\":\"%s\"}]}",
                 reasons[i]);

        UNIT_EQ_INT(ngx_ai_gemini_translator.response(unit_pool(), req,
                        (u_char *) in, strlen(in), &out, &err), NGX_OK);

        if (strlen(reasons[i + 1]) != out.finish_reason.len
            || memcmp(out.finish_reason.data, reasons[i + 1],
                      out.finish_reason.len) != 0)
        {
            unit_fail(__FILE__, __LINE__, "%s -> %.*s", reasons[i],
                      (int) out.finish_reason.len, out.finish_reason.data);
        }
    }

    /* not answers */
    ngx_str_set(&body, "{\"candidates\":[]}");
    UNIT_EQ_INT(ngx_ai_gemini_translator.response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_DECLINED);
    UNIT_EQ_INT(err.status, 502);
    UNIT_CHECK(strcmp(err.code, "invalid_response") == 0);

    ngx_str_set(&body, "<html>");
    UNIT_EQ_INT(ngx_ai_gemini_translator.response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_DECLINED);

    ngx_str_set(&body, "{\"error\":{\"code\":500}}");
    UNIT_EQ_INT(ngx_ai_gemini_translator.response(unit_pool(), req,
                    body.data, body.len, &out, &err), NGX_DECLINED);
}


/* errors */

UNIT_TEST(gemini_errors)
{
    ngx_str_t       body;
    ngx_ai_error_t  err;

    body = unit_ai_corpus("gemini_error_429.json");
    ngx_ai_gemini_translator.error(unit_pool(), 429, body.data, body.len,
                                   &err);
    UNIT_EQ_INT(err.status, 429);
    UNIT_CHECK(strcmp(err.type, "rate_limit_exceeded") == 0);
    UNIT_CHECK(strcmp(err.code, "RESOURCE_EXHAUSTED") == 0);
    UNIT_CONTAINS(err.message, "Resource has been exhausted");

    body = unit_ai_corpus("gemini_error_key.json");
    ngx_ai_gemini_translator.error(unit_pool(), 400, body.data, body.len,
                                   &err);
    UNIT_EQ_INT(err.status, 400);
    UNIT_CHECK(strcmp(err.type, "authentication_error") == 0);
    UNIT_CHECK(strcmp(err.code, "API_KEY_INVALID") == 0);

    ngx_str_set(&body, "[{\"error\":{\"code\":503,\"message\":\"The model is "
                "overloaded.\",\"status\":\"UNAVAILABLE\"}}]");
    ngx_ai_gemini_translator.error(unit_pool(), 503, body.data, body.len,
                                   &err);
    UNIT_EQ_INT(err.status, 503);
    UNIT_CHECK(strcmp(err.type, "server_error") == 0);
    UNIT_EQ_STR(err.message, "The model is overloaded.");

    ngx_str_set(&body, "{\"error\":{\"code\":404,\"message\":\"models/x is "
                "not found\",\"status\":\"NOT_FOUND\"}}");
    ngx_ai_gemini_translator.error(unit_pool(), 404, body.data, body.len,
                                   &err);
    UNIT_CHECK(strcmp(err.type, "not_found_error") == 0);

    ngx_str_set(&body, "{\"error\":{\"code\":403,\"message\":\"denied\","
                "\"status\":\"PERMISSION_DENIED\"}}");
    ngx_ai_gemini_translator.error(unit_pool(), 403, body.data, body.len,
                                   &err);
    UNIT_CHECK(strcmp(err.type, "permission_error") == 0);

    /* never the raw body */
    ngx_str_set(&body, "<html>Error 502 (Server Error)!!1</html>");
    ngx_ai_gemini_translator.error(unit_pool(), 502, body.data, body.len,
                                   &err);
    UNIT_EQ_INT(err.status, 502);
    UNIT_CHECK(strcmp(err.type, "server_error") == 0);
    UNIT_EQ_STR(err.message, "the provider answered with an error");

    ngx_ai_gemini_translator.error(unit_pool(), 429, NULL, 0, &err);
    UNIT_CHECK(strcmp(err.type, "rate_limit_exceeded") == 0);
}


/* streams */

static ngx_int_t
stream(const char *name, ngx_uint_t include_usage, ngx_ai_stream_t *st,
    unit_ai_chunks_t *c)
{
    ngx_int_t               rc;
    ngx_str_t               in, out;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat("{\"model\":\"google/gemini-2.5-pro\",\"stream\":true,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    req->include_usage = include_usage;

    in = unit_ai_corpus(name);
    rc = unit_ai_feed(&ngx_ai_gemini_translator, unit_pool(), req, &in,
                      in.len, st);

    out.data = st->out.data;
    out.len = st->out.len;
    unit_ai_chunks(&out, c);

    return rc;
}


UNIT_TEST(gemini_stream_text_running_usage)
{
    ngx_ai_stream_t   st;
    unit_ai_chunks_t  c;

    UNIT_EQ_INT(stream("gemini_text.sse", 0, &st, &c), NGX_OK);
    UNIT_EQ_INT(st.done, 1);
    UNIT_EQ_STR(c.content, "The sky is blue \xe2\x80\x94 \"Rayleigh\"\n"
                "scattering.");
    UNIT_CHECK(strcmp(c.finish, "stop") == 0);
    UNIT_EQ_STR(st.id, "chatcmpl-mKdJaPqGN4yBz7IP_tS1oQk");
    UNIT_EQ_INT(c.usage_chunks, 0);

    /* the last usageMetadata wins; thoughts are output */
    UNIT_EQ_INT(st.usage.known, 1);
    UNIT_EQ_INT(st.usage.prompt_tokens, 1200);
    UNIT_EQ_INT(st.usage.cached_tokens, 1024);
    UNIT_EQ_INT(st.usage.completion_tokens, 51);
    UNIT_EQ_INT(st.usage.reasoning_tokens, 40);

    UNIT_EQ_INT(stream("gemini_text.sse", 1, &st, &c), NGX_OK);
    UNIT_EQ_INT(c.usage_chunks, 1);
    UNIT_EQ_INT(c.prompt, 1200);
    UNIT_EQ_INT(c.cached, 1024);
    UNIT_EQ_INT(c.completion, 51);
    UNIT_EQ_INT(c.reasoning, 40);
}


UNIT_TEST(gemini_stream_tool_calls)
{
    ngx_ai_stream_t   st;
    unit_ai_chunks_t  c;

    UNIT_EQ_INT(stream("gemini_tool.sse", 1, &st, &c), NGX_OK);
    UNIT_EQ_INT(st.done, 1);
    UNIT_EQ_STR(c.content, "Checking both cities.");
    UNIT_EQ_INT(c.tools, 2);
    UNIT_CHECK(strcmp(c.tool_id[0], "call_0") == 0);
    UNIT_CHECK(strcmp(c.tool_name[0], "get_weather") == 0);
    UNIT_EQ_STR(c.args[0], "{\"location\":\"Paris\",\"unit\":\"celsius\"}");
    UNIT_CHECK(strcmp(c.tool_id[1], "call_1") == 0);
    UNIT_EQ_STR(c.args[1], "{\"location\":\"Tokyo\"}");
    UNIT_CHECK(strcmp(c.finish, "tool_calls") == 0);
    UNIT_EQ_INT(c.prompt, 85);
    UNIT_EQ_INT(c.completion, 55);
    UNIT_CHECK(memmem(st.out.data, st.out.len, "Planning", 8) == NULL);
}


UNIT_TEST(gemini_stream_late_usage_blocked_error)
{
    ngx_ai_stream_t   st;
    unit_ai_chunks_t  c;

    /*
     * The finish chunk ends the stream for the client; a usage-only chunk
     * after it still updates st->usage (for billing), while the client's
     * usage chunk has what was known at the finish.
     */

    UNIT_EQ_INT(stream("gemini_usage_after.sse", 1, &st, &c), NGX_OK);
    UNIT_EQ_INT(st.done, 1);
    UNIT_EQ_STR(c.content, "Hi!");
    UNIT_CHECK(strcmp(c.finish, "length") == 0);
    UNIT_EQ_INT(c.usage_chunks, 1);
    UNIT_EQ_INT(c.prompt, 0);
    UNIT_EQ_INT(st.usage.known, 1);
    UNIT_EQ_INT(st.usage.prompt_tokens, 3);
    UNIT_EQ_INT(st.usage.completion_tokens, 2);
    UNIT_EQ_INT(st.events, 3);

    UNIT_EQ_INT(stream("gemini_blocked.sse", 1, &st, &c), NGX_OK);
    UNIT_EQ_INT(st.done, 1);
    UNIT_CHECK(strcmp(c.finish, "content_filter") == 0);
    UNIT_EQ_STR(c.content, "");
    UNIT_EQ_INT(c.prompt, 9);

    UNIT_EQ_INT(stream("gemini_error.sse", 1, &st, &c), NGX_DECLINED);
    UNIT_EQ_INT(st.failed, 1);
    UNIT_EQ_INT(st.done, 0);
    UNIT_EQ_STR(st.error, "An internal error has occurred.");
    UNIT_EQ_STR(c.content, "Par");
    UNIT_CHECK(c.finish[0] == '\0');
}


UNIT_TEST(gemini_stream_exact_chunks_and_garbage)
{
    ngx_ai_stream_t         st;
    ngx_ai_sse_event_t      ev;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat("{\"model\":\"google/g\",\"stream\":true,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");

    ngx_ai_stream_init(&st, unit_pool(), req, UNIT_AI_CREATED);
    ngx_str_set(&ev.event, "");
    ngx_str_set(&ev.data, "{\"candidates\":[{\"content\":{\"parts\":[{"
                "\"functionCall\":{\"name\":\"f\",\"args\":{\"a\":1}}}]},"
                "\"finishReason\":\"STOP\"}],\"responseId\":\"r1\"}");
    UNIT_EQ_INT(ngx_ai_gemini_translator.stream_event(&st, &ev), NGX_OK);

#define UNIT_HEAD  "data: {\"id\":\"chatcmpl-r1\",\"object\":"                 \
                   "\"chat.completion.chunk\",\"created\":1700000000,"       \
                   "\"model\":\"google/g\","

    UNIT_EQ_STR(st.out,
        UNIT_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":"
        "\"assistant\",\"content\":\"\"},\"logprobs\":null,"
        "\"finish_reason\":null}]}\n\n"
        UNIT_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{"
        "\"index\":0,\"id\":\"call_0\",\"type\":\"function\",\"function\":"
        "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
        "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        UNIT_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
        "\"finish_reason\":\"tool_calls\"}]}\n\n");

#undef UNIT_HEAD

    UNIT_EQ_INT(st.done, 1);
    UNIT_EQ_INT(st.usage.known, 0);

    ngx_ai_stream_init(&st, unit_pool(), req, UNIT_AI_CREATED);
    ngx_str_set(&ev.data, "data: not json");
    UNIT_EQ_INT(ngx_ai_gemini_translator.stream_event(&st, &ev),
                NGX_DECLINED);
    UNIT_EQ_INT(st.failed, 1);
    UNIT_CHECK(st.error.len > 0);

    ngx_ai_stream_init(&st, unit_pool(), req, UNIT_AI_CREATED);
    ngx_str_set(&ev.data, "[1]");
    UNIT_EQ_INT(ngx_ai_gemini_translator.stream_event(&st, &ev),
                NGX_DECLINED);
}


UNIT_TEST(gemini_stream_every_split)
{
    unit_ai_every_split(&ngx_ai_gemini_translator, "gemini_text.sse");
    unit_ai_every_split(&ngx_ai_gemini_translator, "gemini_tool.sse");
    unit_ai_every_split(&ngx_ai_gemini_translator, "gemini_usage_after.sse");
    unit_ai_every_split(&ngx_ai_gemini_translator, "gemini_blocked.sse");
    unit_ai_every_split(&ngx_ai_gemini_translator, "gemini_error.sse");
}
