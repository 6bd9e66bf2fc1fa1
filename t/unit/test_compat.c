
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: what real providers take, the gateway takes (issue #16,
 * items 6 and 8): the legacy function calling form through every
 * translator, any number of stop sequences, error param paths, what a
 * wire format refuses (check), and OpenAI's reasoning models.
 */


#include "unit.h"


ngx_ai_chat_request_t *unit_ai_chat(const char *body);
cJSON *unit_ai_path(cJSON *root, const char *path);
const char *unit_ai_str(cJSON *root, const char *path);
double unit_ai_num(cJSON *root, const char *path);


static const char  *legacy =
    "{\"model\":\"p/m\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"user\",\"content\":\"weather in Paris?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"function_call\":"
    "{\"name\":\"get_weather\",\"arguments\":"
    "\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
    "{\"role\":\"function\",\"name\":\"get_weather\","
    "\"content\":\"{\\\"t\\\":21}\"}"
    "],\"functions\":[{\"name\":\"get_weather\",\"description\":\"d\","
    "\"parameters\":{\"type\":\"object\"}}],"
    "\"function_call\":{\"name\":\"get_weather\"},"
    "\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]}";


static const char *
param_of(const char *body)
{
    ngx_ai_error_t         err;
    ngx_ai_chat_request_t  req;

    err.param = NULL;

    if (ngx_ai_chat_request_parse(unit_pool(), (u_char *) body,
                                  strlen(body), &req, &err)
        != NGX_DECLINED)
    {
        unit_fail(__FILE__, __LINE__, "not refused: %s", body);
        return "";
    }

    return err.param ? err.param : "(null)";
}


static cJSON *
translate(ngx_ai_translator_t *tr, ngx_ai_chat_request_t *req)
{
    ngx_ai_upstream_request_t  up;

    if (tr->request(unit_pool(), req, &up) != NGX_OK) {
        unit_fail(__FILE__, __LINE__, "%s: request failed", tr->name.data);
        return NULL;
    }

    return unit_json(&up.body);
}


UNIT_TEST(compat_legacy_accepted)
{
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat(legacy);
    UNIT_EQ_INT(req->has_tools, 1);

    /* a function message may have null content */
    req = unit_ai_chat("{\"model\":\"p/m\",\"messages\":[{\"role\":"
                       "\"function\",\"name\":\"f\",\"content\":null}]}");
    UNIT_CHECK(req->json != NULL);
}


UNIT_TEST(compat_param_paths)
{
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"user\",\"content\":\"a\"},"
                               "{\"role\":\"user\",\"content\":\"b\"},"
                               "{\"role\":\"user\"}]}"),
                      "messages[2].content") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"robot\",\"content\":\"a\"}]}"),
                      "messages[0].role") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"user\",\"content\":[{\"type\":"
                               "\"text\",\"text\":\"a\"},{\"type\":\"text\","
                               "\"text\":7}]}]}"),
                      "messages[0].content[1].text") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"user\",\"content\":\"a\"}],"
                               "\"tools\":[{\"type\":\"function\","
                               "\"function\":{\"name\":\"ok\"}},"
                               "{\"type\":\"function\",\"function\":{}}]}"),
                      "tools[1].function.name") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"user\",\"content\":\"a\"}],"
                               "\"tools\":[{\"type\":\"function\","
                               "\"function\":{\"name\":\"x\","
                               "\"parameters\":[]}}]}"),
                      "tools[0].function.parameters") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"user\",\"content\":\"a\"}],"
                               "\"functions\":[{\"description\":\"x\"}]}"),
                      "functions[0].name") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"function\",\"content\":\"a\"}]}"),
                      "messages[0].name") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"assistant\",\"content\":null,"
                               "\"function_call\":{\"name\":\"f\","
                               "\"arguments\":{}}}]}"),
                      "messages[0].function_call.arguments") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"user\",\"content\":\"a\"}],"
                               "\"function_call\":\"always\"}"),
                      "function_call") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"user\",\"content\":\"a\"}],"
                               "\"stop\":[\"a\",3]}"),
                      "stop[1]") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"user\",\"content\":\"a\"}],"
                               "\"logprobs\":1}"),
                      "logprobs") == 0);
    UNIT_CHECK(strcmp(param_of("{\"model\":\"p/m\",\"messages\":["
                               "{\"role\":\"user\",\"content\":\"a\"}],"
                               "\"top_logprobs\":21}"),
                      "top_logprobs") == 0);
}


UNIT_TEST(compat_stop_bound)
{
    size_t         i;
    ngx_ai_buf_t   b;
    char          *s;

    UNIT_EQ_INT(ngx_ai_buf_init(&b, unit_pool(), 8192), NGX_OK);
    ngx_ai_buf_append_str(&b, "{\"model\":\"p/m\",\"messages\":[{\"role\":"
                          "\"user\",\"content\":\"a\"}],\"stop\":[");

    for (i = 0; i <= NGX_AI_MAX_STOP; i++) {
        ngx_ai_buf_append_str(&b, i ? ",\"s\"" : "\"s\"");
    }

    ngx_ai_buf_append_str(&b, "]}");
    s = ngx_ai_buf_cstr(&b);

    UNIT_CHECK(strcmp(param_of(s), "stop") == 0);
}


UNIT_TEST(compat_anthropic_legacy)
{
    cJSON                  *j;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat(legacy);
    j = translate(&ngx_ai_anthropic_translator, req);
    if (j == NULL) {
        return;
    }

    UNIT_CHECK(strcmp(unit_ai_str(j, "system"), "be brief") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.role"), "assistant") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.type"),
                      "tool_use") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.id"),
                      "call_fn_2") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.name"),
                      "get_weather") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.input.city"),
                      "Paris") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.role"), "user") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.type"),
                      "tool_result") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.tool_use_id"),
                      "call_fn_2") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.content"),
                      "{\"t\":21}") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.0.name"), "get_weather") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.0.input_schema.type"),
                      "object") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.type"), "tool") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.name"), "get_weather")
               == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "stop_sequences")), 6);
}


UNIT_TEST(compat_gemini_legacy)
{
    cJSON                  *j;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat(legacy);
    req->upstream_model.data = (u_char *) "gemini-2.5-flash";
    req->upstream_model.len = sizeof("gemini-2.5-flash") - 1;

    j = translate(&ngx_ai_gemini_translator, req);
    if (j == NULL) {
        return;
    }

    UNIT_CHECK(strcmp(unit_ai_str(j, "contents.1.role"), "model") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "contents.1.parts.0.functionCall.name"),
                      "get_weather") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "contents.1.parts.0.functionCall.args.city"),
                      "Paris") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "contents.2.role"), "user") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "contents.2.parts.0.functionResponse.name"),
                      "get_weather") == 0);
    UNIT_EQ_INT(unit_ai_num(j,
                    "contents.2.parts.0.functionResponse.response.content.t"),
                21);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "tools.0.functionDeclarations.0.name"),
                      "get_weather") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "toolConfig.functionCallingConfig.mode"),
                      "ANY") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "toolConfig.functionCallingConfig."
                                     "allowedFunctionNames.0"),
                      "get_weather") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j,
                                       "generationConfig.stopSequences")),
                6);
}


UNIT_TEST(compat_openai_legacy_passes)
{
    cJSON                  *j;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat(legacy);
    j = translate(&ngx_ai_openai_translator, req);
    if (j == NULL) {
        return;
    }

    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.function_call.name"),
                      "get_weather") == 0);
    UNIT_CHECK(cJSON_IsNull(unit_ai_path(j, "messages.2.content")));
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.3.role"), "function") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "functions.0.name"), "get_weather")
               == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "stop")), 6);
}


UNIT_TEST(compat_checks)
{
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat("{\"model\":\"p/m\",\"logprobs\":true,"
                       "\"top_logprobs\":2,\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"a\"}]}");
    UNIT_EQ_INT(req->logprobs, 1);
    UNIT_CHECK(ngx_ai_openai_translator.check == NULL);
    UNIT_EQ_INT(ngx_ai_openai_translator.choices, 1);

    UNIT_EQ_INT(ngx_ai_anthropic_translator.check(req, &err), NGX_DECLINED);
    UNIT_EQ_INT(err.status, 400);
    UNIT_CHECK(strcmp(err.param, "logprobs") == 0);
    UNIT_CHECK(strcmp(err.code, "unsupported_parameter") == 0);
    UNIT_EQ_INT(ngx_ai_gemini_translator.check(req, &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "logprobs") == 0);

    req = unit_ai_chat("{\"model\":\"p/m\",\"n\":3,\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"a\"}]}");
    UNIT_EQ_INT(ngx_ai_anthropic_translator.check(req, &err), NGX_OK);
    UNIT_EQ_INT(ngx_ai_gemini_translator.check(req, &err), NGX_OK);
    UNIT_EQ_INT(ngx_ai_anthropic_translator.choices, 0);
    UNIT_EQ_INT(ngx_ai_gemini_translator.choices, 0);

    req->stream = 1;
    UNIT_EQ_INT(ngx_ai_anthropic_translator.check(req, &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "n") == 0);
    UNIT_EQ_INT(ngx_ai_gemini_translator.check(req, &err), NGX_DECLINED);
    UNIT_CHECK(strcmp(err.param, "n") == 0);
}


static cJSON *
openai_for(const char *body, const char *upstream, ngx_str_t *again)
{
    cJSON                  *j;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat(body);
    req->upstream_model.data = (u_char *) upstream;
    req->upstream_model.len = strlen(upstream);

    j = translate(&ngx_ai_openai_translator, req);

    if (ngx_ai_json_print(unit_pool(), req->json, again) != NGX_OK) {
        unit_fail(__FILE__, __LINE__, "print failed");
    }

    return j;
}


UNIT_TEST(compat_reasoning_models)
{
    cJSON        *j;
    ngx_str_t     again;
    ngx_uint_t    i;
    const char   *body;

    static const char  *reasoning[] = {
        "o1", "o1-mini", "o3-mini", "o3", "o4-mini", "gpt-5", "gpt-5-mini",
        "gpt-5.1", "openai/o3-mini", NULL
    };

    static const char  *plain[] = {
        "gpt-4o", "o2", "o10", "gpt-50", "gpt-5x", "omni", "o", NULL
    };

    body = "{\"model\":\"openai/x\",\"max_tokens\":77,\"messages\":["
           "{\"role\":\"system\",\"content\":\"s1\"},"
           "{\"role\":\"user\",\"content\":\"u\"},"
           "{\"role\":\"system\",\"content\":\"s2\"}]}";

    for (i = 0; reasoning[i]; i++) {
        j = openai_for(body, reasoning[i], &again);
        if (j == NULL) {
            continue;
        }

        UNIT_CHECK(unit_ai_path(j, "max_tokens") == NULL);
        UNIT_EQ_INT(unit_ai_num(j, "max_completion_tokens"), 77);
        UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.role"), "developer")
                   == 0);
        UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.role"), "user") == 0);
        UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.role"), "developer")
                   == 0);
        UNIT_CHECK(strcmp(unit_ai_str(j, "model"), reasoning[i]) == 0);

        /* the client's tree as it was, for the next call */
        UNIT_CONTAINS(again, "\"max_tokens\":77");
        UNIT_CONTAINS(again, "\"role\":\"system\",\"content\":\"s2\"");
        UNIT_CHECK(memmem(again.data, again.len, "developer", 9) == NULL);
        UNIT_CHECK(memmem(again.data, again.len, "max_completion", 14)
                   == NULL);
    }

    for (i = 0; plain[i]; i++) {
        j = openai_for(body, plain[i], &again);
        if (j == NULL) {
            continue;
        }

        UNIT_EQ_INT(unit_ai_num(j, "max_tokens"), 77);
        UNIT_CHECK(unit_ai_path(j, "max_completion_tokens") == NULL);
        UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.role"), "system") == 0);
    }

    /* max_completion_tokens given too: it wins, max_tokens is dropped */

    j = openai_for("{\"model\":\"openai/x\",\"max_tokens\":5,"
                   "\"max_completion_tokens\":9,\"stream\":true,"
                   "\"messages\":[{\"role\":\"user\",\"content\":\"u\"}]}",
                   "o3-mini", &again);
    if (j) {
        UNIT_CHECK(unit_ai_path(j, "max_tokens") == NULL);
        UNIT_EQ_INT(unit_ai_num(j, "max_completion_tokens"), 9);
        UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j,
                                         "stream_options.include_usage")));
        UNIT_CONTAINS(again, "\"max_tokens\":5");
    }
}


UNIT_TEST(compat_merge_choices)
{
    cJSON           *j;
    ngx_str_t        answers[3], out;
    ngx_ai_usage_t   sum;

    ngx_str_set(&answers[0], "{\"id\":\"a\",\"object\":\"chat.completion\","
                "\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":\"one\"},\"finish_reason\":"
                "\"stop\"}],\"usage\":{\"prompt_tokens\":1,"
                "\"completion_tokens\":1,\"total_tokens\":2}}");
    ngx_str_set(&answers[1], "{\"id\":\"b\",\"choices\":[{\"index\":0,"
                "\"message\":{\"role\":\"assistant\",\"content\":\"two\"},"
                "\"finish_reason\":\"length\"}]}");
    ngx_str_set(&answers[2], "{\"id\":\"c\",\"choices\":[{\"message\":"
                "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},"
                "\"finish_reason\":\"tool_calls\"}]}");

    ngx_memzero(&sum, sizeof(ngx_ai_usage_t));
    sum.prompt_tokens = 30;
    sum.completion_tokens = 12;
    sum.cached_tokens = 3;
    sum.known = 1;

    UNIT_EQ_INT(ngx_ai_chat_completion_merge(unit_pool(), answers, 3, &sum,
                                             &out), NGX_OK);
    j = unit_json(&out);
    if (j == NULL) {
        return;
    }

    UNIT_CHECK(strcmp(unit_ai_str(j, "id"), "a") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "choices")), 3);
    UNIT_EQ_INT(unit_ai_num(j, "choices.0.index"), 0);
    UNIT_EQ_INT(unit_ai_num(j, "choices.1.index"), 1);
    UNIT_EQ_INT(unit_ai_num(j, "choices.2.index"), 2);
    UNIT_CHECK(strcmp(unit_ai_str(j, "choices.1.message.content"), "two")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "choices.2.finish_reason"),
                      "tool_calls") == 0);
    UNIT_EQ_INT(unit_ai_num(j, "usage.prompt_tokens"), 30);
    UNIT_EQ_INT(unit_ai_num(j, "usage.completion_tokens"), 12);
    UNIT_EQ_INT(unit_ai_num(j, "usage.total_tokens"), 42);
    UNIT_EQ_INT(unit_ai_num(j, "usage.prompt_tokens_details.cached_tokens"),
                3);

    /* an unknown sum: no usage rather than the first answer's */

    sum.known = 0;
    UNIT_EQ_INT(ngx_ai_chat_completion_merge(unit_pool(), answers, 2, &sum,
                                             &out), NGX_OK);
    j = unit_json(&out);
    UNIT_CHECK(j && unit_ai_path(j, "usage") == NULL);
    UNIT_CHECK(j && cJSON_GetArraySize(unit_ai_path(j, "choices")) == 2);

    /* not an answer with a choice */

    ngx_str_set(&answers[1], "{\"choices\":[]}");
    UNIT_EQ_INT(ngx_ai_chat_completion_merge(unit_pool(), answers, 2, &sum,
                                             &out), NGX_DECLINED);
    ngx_str_set(&answers[0], "[1]");
    UNIT_EQ_INT(ngx_ai_chat_completion_merge(unit_pool(), answers, 2, &sum,
                                             &out), NGX_DECLINED);
}
