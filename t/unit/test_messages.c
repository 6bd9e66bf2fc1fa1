
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the Messages API inbound (ngx_ai_gateway_messages.c):
 * Messages requests to OpenAI requests (and on through the anthropic
 * translator), chat.completion answers to messages, errors, and chunk
 * streams to Anthropic events, fed whole and split at every byte.
 */


#include "unit.h"


cJSON *unit_ai_path(cJSON *root, const char *path);
const char *unit_ai_str(cJSON *root, const char *path);
double unit_ai_num(cJSON *root, const char *path);


/* the converted request, checked by the chat request parser too */

static cJSON *
convert(const char *body, ngx_ai_chat_request_t *req)
{
    ngx_str_t       out;
    ngx_ai_error_t  err;

    if (ngx_ai_messages_request(unit_pool(), (u_char *) body, strlen(body),
                                &out, &err)
        != NGX_OK)
    {
        unit_fail(__FILE__, __LINE__, "rejected: %.*s",
                  (int) err.message.len, err.message.data);
        return NULL;
    }

    if (req && ngx_ai_chat_request_parse(unit_pool(), out.data, out.len, req,
                                         &err)
               != NGX_OK)
    {
        unit_fail(__FILE__, __LINE__, "OpenAI request rejected: %.*s (%.*s)",
                  (int) err.message.len, err.message.data, (int) out.len,
                  out.data);
        return NULL;
    }

    return unit_json(&out);
}


static ngx_str_t
refused(const char *body)
{
    ngx_int_t       rc;
    ngx_str_t       out;
    ngx_ai_error_t  err;

    ngx_str_null(&err.message);

    rc = ngx_ai_messages_request(unit_pool(), (u_char *) body, strlen(body),
                                 &out, &err);

    if (rc != NGX_DECLINED || err.status != 400) {
        unit_fail(__FILE__, __LINE__, "not refused: %s", body);
    }

    return err.message;
}


UNIT_TEST(messages_request_basic)
{
    cJSON                  *j;
    ngx_ai_chat_request_t   req;

    j = convert("{\"model\":\"anthropic/claude\",\"max_tokens\":100,"
                "\"system\":\"be brief\","
                "\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"},"
                "{\"role\":\"assistant\",\"content\":\"Hi\"},"
                "{\"role\":\"user\",\"content\":\"Again\"}],"
                "\"stop_sequences\":[\"END\"],\"temperature\":0.5,"
                "\"top_p\":0.9,\"top_k\":5,\"stream\":true,"
                "\"metadata\":{\"user_id\":\"u-1\"},"
                "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024}}",
                &req);
    if (j == NULL) {
        return;
    }

    UNIT_CHECK(strcmp(unit_ai_str(j, "model"), "anthropic/claude") == 0);
    UNIT_EQ_INT(unit_ai_num(j, "max_tokens"), 100);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.role"), "system") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content"), "be brief") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.role"), "user") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content"), "Hello") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.role"), "assistant") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.3.content"), "Again") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages")), 4);
    UNIT_CHECK(strcmp(unit_ai_str(j, "stop.0"), "END") == 0);
    UNIT_CHECK(unit_ai_num(j, "temperature") == 0.5);
    UNIT_CHECK(unit_ai_num(j, "top_p") == 0.9);
    UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j, "stream")));
    UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j,
                                         "stream_options.include_usage")));
    UNIT_CHECK(strcmp(unit_ai_str(j, "user"), "u-1") == 0);
    UNIT_CHECK(unit_ai_path(j, "top_k") == NULL);
    UNIT_CHECK(unit_ai_path(j, "thinking") == NULL);
    UNIT_CHECK(unit_ai_path(j, "metadata") == NULL);
    UNIT_CHECK(unit_ai_path(j, "stop_sequences") == NULL);

    UNIT_EQ_STR(req.model, "anthropic/claude");
    UNIT_EQ_INT(req.max_tokens, 100);
    UNIT_CHECK(req.stream && req.include_usage);

    /* no stream: no stream_options; an empty system is left out */

    j = convert("{\"model\":\"p/m\",\"max_tokens\":1,\"system\":\"\","
                "\"stream\":false,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                &req);
    if (j == NULL) {
        return;
    }

    UNIT_CHECK(unit_ai_path(j, "stream_options") == NULL);
    UNIT_CHECK(cJSON_IsFalse(unit_ai_path(j, "stream")));
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages")), 1);
    UNIT_CHECK(!req.stream);
}


UNIT_TEST(messages_request_blocks)
{
    cJSON                  *j;
    ngx_ai_chat_request_t   req;

    j = convert("{\"model\":\"p/m\",\"max_tokens\":10,"
        "\"system\":[{\"type\":\"text\",\"text\":\"sys one\","
        "\"cache_control\":{\"type\":\"ephemeral\"}},"
        "{\"type\":\"text\",\"text\":\"sys two\"}],"
        "\"messages\":["
        "{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"look\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\","
        "\"media_type\":\"image/png\",\"data\":\"iVBO\"}},"
        "{\"type\":\"image\",\"source\":{\"type\":\"url\","
        "\"url\":\"https://x/cat.jpg\"}},"
        "{\"type\":\"document\",\"title\":\"a.pdf\",\"source\":"
        "{\"type\":\"base64\",\"media_type\":\"application/pdf\","
        "\"data\":\"JVBE\"}},"
        "{\"type\":\"document\",\"source\":{\"type\":\"text\","
        "\"media_type\":\"text/plain\",\"data\":\"plain doc\"}},"
        "{\"type\":\"search_result\",\"source\":\"x\"}]},"
        "{\"role\":\"assistant\",\"content\":["
        "{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"s\"},"
        "{\"type\":\"text\",\"text\":\"Let me check.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"weather\","
        "\"input\":{\"city\":\"Paris\"}},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"time\","
        "\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":["
        "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
        "\"content\":\"21C\"},"
        "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\","
        "\"content\":[{\"type\":\"text\",\"text\":\"12:00\"},"
        "{\"type\":\"text\",\"text\":\"UTC\"}],\"is_error\":false},"
        "{\"type\":\"text\",\"text\":\"and tomorrow?\"}]},"
        "{\"role\":\"assistant\",\"content\":["
        "{\"type\":\"tool_use\",\"id\":\"toolu_3\",\"name\":\"weather\","
        "\"input\":{\"city\":\"Oslo\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"toolu_3\"}]}]}", &req);
    if (j == NULL) {
        return;
    }

    /* system blocks: text parts, cache_control kept */
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.role"), "system") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.0.text"),
                      "sys one") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "messages.0.content.0.cache_control.type"),
                      "ephemeral") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.1.text"),
                      "sys two") == 0);

    /* user blocks */
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.text"), "look")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.1.type"),
                      "image_url") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.1.image_url.url"),
                      "data:image/png;base64,iVBO") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.2.image_url.url"),
                      "https://x/cat.jpg") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.3.type"), "file")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.3.file.file_data"),
                      "data:application/pdf;base64,JVBE") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.3.file.filename"),
                      "a.pdf") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.4.text"),
                      "plain doc") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages.1.content")), 5);

    /* assistant: one text -> a string, tool_use -> tool_calls */
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content"), "Let me check.")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.tool_calls.0.id"),
                      "toolu_1") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.tool_calls.0.type"),
                      "function") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "messages.2.tool_calls.0.function.name"),
                      "weather") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "messages.2.tool_calls.0.function.arguments"),
                      "{\"city\":\"Paris\"}") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "messages.2.tool_calls.1.function.arguments"),
                      "{}") == 0);

    /* tool results first, as tool messages, then the user's text */
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.3.role"), "tool") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.3.tool_call_id"), "toolu_1")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.3.content"), "21C") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.4.content"), "12:00\nUTC")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.5.role"), "user") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.5.content.0.text"),
                      "and tomorrow?") == 0);

    /* only tool_use: content null; a result without content: "" */
    UNIT_CHECK(cJSON_IsNull(unit_ai_path(j, "messages.6.content")));
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.7.role"), "tool") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.7.content"), "") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages")), 8);
}


UNIT_TEST(messages_request_tools)
{
    cJSON                  *j;
    ngx_ai_chat_request_t   req;

    j = convert("{\"model\":\"p/m\",\"max_tokens\":10,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"tools\":[{\"name\":\"weather\",\"description\":\"W\","
                "\"input_schema\":{\"type\":\"object\",\"properties\":"
                "{\"city\":{\"type\":\"string\"}}}},"
                "{\"type\":\"custom\",\"name\":\"time\",\"input_schema\":"
                "{\"type\":\"object\"}},"
                "{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],"
                "\"tool_choice\":{\"type\":\"tool\",\"name\":\"weather\","
                "\"disable_parallel_tool_use\":true}}", &req);
    if (j == NULL) {
        return;
    }

    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "tools")), 2);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.0.type"), "function") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.0.function.name"), "weather")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.0.function.description"), "W")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "tools.0.function.parameters.properties.city.type"),
                      "string") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.1.function.name"), "time") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.type"), "function") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.function.name"), "weather")
               == 0);
    UNIT_CHECK(cJSON_IsFalse(unit_ai_path(j, "parallel_tool_calls")));
    UNIT_CHECK(req.has_tools);

    j = convert("{\"model\":\"p/m\",\"max_tokens\":10,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"tools\":[{\"name\":\"a\",\"input_schema\":{}}],"
                "\"tool_choice\":{\"type\":\"any\"}}", NULL);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice"), "required") == 0);

    j = convert("{\"model\":\"p/m\",\"max_tokens\":10,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"tools\":[{\"name\":\"a\",\"input_schema\":{}}],"
                "\"tool_choice\":{\"type\":\"auto\"}}", NULL);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice"), "auto") == 0);
    UNIT_CHECK(unit_ai_path(j, "parallel_tool_calls") == NULL);

    j = convert("{\"model\":\"p/m\",\"max_tokens\":10,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"tools\":[{\"name\":\"a\",\"input_schema\":{}}],"
                "\"tool_choice\":{\"type\":\"none\"}}", NULL);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice"), "none") == 0);

    /* only server tools: no tools, no tool_choice */

    j = convert("{\"model\":\"p/m\",\"max_tokens\":10,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"tools\":[{\"type\":\"bash_20250124\",\"name\":\"bash\"}],"
                "\"tool_choice\":{\"type\":\"any\"}}", &req);
    UNIT_CHECK(unit_ai_path(j, "tool_choice") == NULL);
    UNIT_CHECK(!req.has_tools);
}


UNIT_TEST(messages_request_errors)
{
    ngx_str_t  m;

    m = refused("");
    UNIT_CONTAINS(m, "empty");
    m = refused("{\"model\":");
    UNIT_CONTAINS(m, "not valid JSON");
    m = refused("[1]");
    UNIT_CONTAINS(m, "JSON object");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":"
                "[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}");
    UNIT_CONTAINS(m, "NUL");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":"
                "[{\"role\":\"user\",\"content\":\"a\tb\"}]}");
    UNIT_CONTAINS(m, "not valid JSON: the raw control character 0x09 at "
                  "offset 69");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":"
                "[{\"role\":\"user\",\"content\":\"a\xc0\xaf" "b\"}]}");
    UNIT_CONTAINS(m, "not valid UTF-8: the byte 0xC0 at offset 69");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"system\":"
                "\"\xf4\x90\x80\x80\",\"messages\":[]}");
    UNIT_CONTAINS(m, "0xF4 at offset 40");
    m = refused("{\"max_tokens\":1,\"messages\":[]}");
    UNIT_EQ_STR(m, "model: Field required");
    m = refused("{\"model\":\"p/m\",\"messages\":[]}");
    UNIT_EQ_STR(m, "max_tokens: Field required");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1}");
    UNIT_EQ_STR(m, "messages: Field required");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":{}}");
    UNIT_CONTAINS(m, "messages: Input should be a valid list");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":[]}");
    UNIT_CONTAINS(m, "at least one message");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":"
                "[{\"role\":\"user\",\"content\":\"a\"},"
                "{\"role\":\"system\",\"content\":\"b\"}]}");
    UNIT_EQ_STR(m, "messages.1.role: Input should be 'user' or 'assistant'");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":"
                "[{\"role\":\"user\",\"content\":7}]}");
    UNIT_CONTAINS(m, "messages.0.content: ");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":"
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}");
    UNIT_CONTAINS(m, "messages.0.content.0: text");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":"
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                "\"text\":\"a\"},{\"type\":\"image\",\"source\":"
                "{\"type\":\"file\",\"file_id\":\"f\"}}]}]}");
    UNIT_CONTAINS(m, "messages.0.content.1: image.source");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":"
                "[{\"role\":\"assistant\",\"content\":[{\"type\":"
                "\"tool_use\",\"name\":\"x\"}]}]}");
    UNIT_CONTAINS(m, "tool_use");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"messages\":"
                "[{\"role\":\"user\",\"content\":[{\"type\":"
                "\"tool_result\"}]}]}");
    UNIT_CONTAINS(m, "tool_use_id");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,\"system\":7,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}");
    UNIT_CONTAINS(m, "system:");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,"
                "\"stop_sequences\":\"a\","
                "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}");
    UNIT_CONTAINS(m, "stop_sequences");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                "\"tools\":[{\"name\":\"a\"}],\"tool_choice\":{\"type\":"
                "\"tool\"}}");
    UNIT_CONTAINS(m, "tool_choice: ");
    m = refused("{\"model\":\"p/m\",\"max_tokens\":1,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],"
                "\"tools\":[{\"description\":\"a\"}]}");
    UNIT_CONTAINS(m, "tools: ");
}


/* a Messages request through the gateway to an Anthropic provider */

UNIT_TEST(messages_request_to_anthropic)
{
    cJSON                      *j;
    ngx_ai_chat_request_t       req;
    ngx_ai_upstream_request_t   up;

    j = convert("{\"model\":\"anthropic/claude-x\",\"max_tokens\":64,"
        "\"system\":\"sys\",\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\","
        "\"cache_control\":{\"type\":\"ephemeral\"}},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\","
        "\"media_type\":\"image/jpeg\",\"data\":\"/9j/\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
        "\"id\":\"toolu_1\",\"name\":\"w\",\"input\":{\"a\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
        "\"tool_use_id\":\"toolu_1\",\"content\":\"ok\"},"
        "{\"type\":\"text\",\"text\":\"next\"}]}],"
        "\"tools\":[{\"name\":\"w\",\"input_schema\":{\"type\":\"object\"}}],"
        "\"tool_choice\":{\"type\":\"any\"},\"stop_sequences\":[\"X\"]}",
        &req);
    if (j == NULL) {
        return;
    }

    UNIT_EQ_INT(ngx_ai_anthropic_translator.request(unit_pool(), &req, &up),
                NGX_OK);

    j = unit_json(&up.body);
    if (j == NULL) {
        return;
    }

    UNIT_CHECK(strcmp(unit_ai_str(j, "model"), "claude-x") == 0);
    UNIT_EQ_INT(unit_ai_num(j, "max_tokens"), 64);
    UNIT_CHECK(strcmp(unit_ai_str(j, "system"), "sys") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.0.text"), "hi")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "messages.0.content.0.cache_control.type"),
                      "ephemeral") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                          "messages.0.content.1.source.media_type"),
                      "image/jpeg") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.1.source.data"),
                      "/9j/") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.type"),
                      "tool_use") == 0);
    UNIT_EQ_INT(unit_ai_num(j, "messages.1.content.0.input.a"), 1);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.type"),
                      "tool_result") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.tool_use_id"),
                      "toolu_1") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.content"), "ok")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.1.text"), "next")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.0.name"), "w") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.type"), "any") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "stop_sequences.0"), "X") == 0);
}


static cJSON *
answer(const char *body, ngx_ai_usage_t *u)
{
    ngx_str_t  out;

    if (ngx_ai_messages_response(unit_pool(), (u_char *) body, strlen(body),
                                 u, &out)
        != NGX_OK)
    {
        unit_fail(__FILE__, __LINE__, "not converted: %s", body);
        return NULL;
    }

    return unit_json(&out);
}


UNIT_TEST(messages_response)
{
    cJSON           *j;
    ngx_str_t        out;
    ngx_ai_usage_t   u;

    j = answer("{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion\","
               "\"created\":1,\"model\":\"openai/gpt-4o\",\"choices\":[{"
               "\"index\":0,\"message\":{\"role\":\"assistant\","
               "\"content\":\"Hello \\\"you\\\"\"},\"finish_reason\":"
               "\"length\"}],\"usage\":{\"prompt_tokens\":20,"
               "\"completion_tokens\":5,\"total_tokens\":25,"
               "\"prompt_tokens_details\":{\"cached_tokens\":8}}}", NULL);
    if (j == NULL) {
        return;
    }

    UNIT_CHECK(strcmp(unit_ai_str(j, "id"), "msg_abc") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "type"), "message") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "role"), "assistant") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "model"), "openai/gpt-4o") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "content.0.type"), "text") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "content.0.text"), "Hello \"you\"")
               == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "content")), 1);
    UNIT_CHECK(strcmp(unit_ai_str(j, "stop_reason"), "max_tokens") == 0);
    UNIT_CHECK(cJSON_IsNull(unit_ai_path(j, "stop_sequence")));
    UNIT_EQ_INT(unit_ai_num(j, "usage.input_tokens"), 12);
    UNIT_EQ_INT(unit_ai_num(j, "usage.cache_read_input_tokens"), 8);
    UNIT_EQ_INT(unit_ai_num(j, "usage.cache_creation_input_tokens"), 0);
    UNIT_EQ_INT(unit_ai_num(j, "usage.output_tokens"), 5);

    /* tool calls; an Anthropic id comes back as it was; usage given */

    ngx_memzero(&u, sizeof(ngx_ai_usage_t));
    u.prompt_tokens = 30;
    u.completion_tokens = 6;
    u.cached_tokens = 7;
    u.cache_creation_tokens = 5;
    u.known = 1;

    j = answer("{\"id\":\"chatcmpl-msg_01X\",\"model\":\"a/c\",\"choices\":"
               "[{\"index\":0,\"message\":{\"role\":\"assistant\","
               "\"content\":null,\"tool_calls\":[{\"id\":\"toolu_9\","
               "\"type\":\"function\",\"function\":{\"name\":\"weather\","
               "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
               "{\"id\":\"call_2\",\"type\":\"function\",\"function\":"
               "{\"name\":\"t\",\"arguments\":\"not json\"}}]},"
               "\"finish_reason\":\"tool_calls\"}],\"usage\":"
               "{\"prompt_tokens\":1,\"completion_tokens\":1}}", &u);
    if (j == NULL) {
        return;
    }

    UNIT_CHECK(strcmp(unit_ai_str(j, "id"), "msg_01X") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "content")), 2);
    UNIT_CHECK(strcmp(unit_ai_str(j, "content.0.type"), "tool_use") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "content.0.id"), "toolu_9") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "content.0.name"), "weather") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "content.0.input.city"), "Paris") == 0);
    UNIT_CHECK(cJSON_IsObject(unit_ai_path(j, "content.1.input")));
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "content.1.input")), 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "stop_reason"), "tool_use") == 0);
    UNIT_EQ_INT(unit_ai_num(j, "usage.input_tokens"), 18);
    UNIT_EQ_INT(unit_ai_num(j, "usage.cache_read_input_tokens"), 7);
    UNIT_EQ_INT(unit_ai_num(j, "usage.cache_creation_input_tokens"), 5);
    UNIT_EQ_INT(unit_ai_num(j, "usage.output_tokens"), 6);

    /* text and a call; a refusal; fusion's report kept */

    j = answer("{\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"message\":"
               "{\"content\":\"I will\",\"tool_calls\":[{\"id\":\"c\","
               "\"function\":{\"name\":\"n\",\"arguments\":\"{}\"}}]},"
               "\"finish_reason\":\"stop\"}],\"fusion\":{\"mode\":"
               "\"merge\"}}", NULL);
    UNIT_CHECK(strcmp(unit_ai_str(j, "id"), "msg_x") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "content.0.text"), "I will") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "content.1.type"), "tool_use") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "stop_reason"), "end_turn") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "fusion.mode"), "merge") == 0);
    UNIT_EQ_INT(unit_ai_num(j, "usage.output_tokens"), 0);

    j = answer("{\"choices\":[{\"message\":{\"content\":null,"
               "\"refusal\":\"No.\"},\"finish_reason\":\"content_filter\"}]}",
               NULL);
    UNIT_CHECK(strcmp(unit_ai_str(j, "content.0.text"), "No.") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "stop_reason"), "refusal") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "id"), "msg_gateway") == 0);

    UNIT_EQ_INT(ngx_ai_messages_response(unit_pool(), (u_char *) "{}", 2,
                                         NULL, &out),
                NGX_DECLINED);
    UNIT_EQ_INT(ngx_ai_messages_response(unit_pool(), (u_char *) "nope", 4,
                                         NULL, &out),
                NGX_DECLINED);
}


UNIT_TEST(messages_errors)
{
    cJSON           *j;
    ngx_str_t        out;
    ngx_uint_t       i;
    ngx_ai_error_t   err;

    static struct {
        ngx_uint_t   status;
        const char  *type;
    } cases[] = {
        { 400, "invalid_request_error" }, { 401, "authentication_error" },
        { 402, "billing_error" }, { 403, "permission_error" },
        { 404, "not_found_error" }, { 405, "invalid_request_error" },
        { 413, "request_too_large" }, { 429, "rate_limit_error" },
        { 500, "api_error" }, { 502, "api_error" },
        { 503, "overloaded_error" }, { 504, "timeout_error" },
        { 529, "overloaded_error" }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ngx_ai_error_set(&err, cases[i].status, "x", NULL, "c",
                         "went \"bad\"");

        UNIT_EQ_INT(ngx_ai_messages_error(unit_pool(), &err, &out), NGX_OK);

        j = unit_json(&out);
        UNIT_CHECK(strcmp(unit_ai_str(j, "type"), "error") == 0);
        UNIT_CHECK(strcmp(unit_ai_str(j, "error.type"), cases[i].type) == 0);
        UNIT_CHECK(strcmp(unit_ai_str(j, "error.message"), "went \"bad\"")
                   == 0);
    }

    ngx_ai_error_set(&err, 400, "invalid_request_error", "max_tokens",
                     "invalid_value", "Invalid value.");
    UNIT_EQ_INT(ngx_ai_messages_error(unit_pool(), &err, &out), NGX_OK);
    UNIT_EQ_STR(out, "{\"type\":\"error\",\"error\":{\"type\":"
                     "\"invalid_request_error\",\"message\":"
                     "\"max_tokens: Invalid value.\"}}");
}


/* streams */

#define CHUNK(delta, finish)                                                  \
    "data: {\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\","     \
    "\"created\":1,\"model\":\"openai/gpt-4o\",\"choices\":[{\"index\":0,"    \
    "\"delta\":" delta ",\"logprobs\":null,\"finish_reason\":" finish "}]}\n\n"

#define USAGE_CHUNK                                                           \
    "data: {\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\","     \
    "\"created\":1,\"model\":\"openai/gpt-4o\",\"choices\":[],\"usage\":"     \
    "{\"prompt_tokens\":11,\"completion_tokens\":3,\"total_tokens\":14,"      \
    "\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n"


static const char  unit_messages_text_stream[] =
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    CHUNK("{\"content\":\"Hello\"}", "null")
    CHUNK("{\"content\":\" \\\"world\\\"\"}", "null")
    CHUNK("{}", "\"stop\"")
    USAGE_CHUNK
    "data: [DONE]\n\n";

static const char  unit_messages_tool_stream[] =
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    CHUNK("{\"content\":\"Checking.\"}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":"
          "\"function\",\"function\":{\"name\":\"weather\","
          "\"arguments\":\"\"}}]}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
          "\"{\\\"city\\\":\"}}]}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
          "\"\\\"Paris\\\"}\"}}]}", "null")
    CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":"
          "\"function\",\"function\":{\"name\":\"time\","
          "\"arguments\":\"{}\"}}]}", "null")
    CHUNK("{}", "\"tool_calls\"")
    USAGE_CHUNK
    "data: [DONE]\n\n";

static const char  unit_messages_error_stream[] =
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    CHUNK("{\"content\":\"Half\"}", "null")
    "data: {\"error\":{\"message\":\"the provider timed out\",\"type\":"
    "\"upstream_error\",\"param\":null,\"code\":\"provider_timeout\"}}\n\n";

static const char  unit_messages_fusion_stream[] =
    ": keep-alive\n\n"
    ": keep-alive\n\n"
    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    CHUNK("{\"content\":\"Merged\"}", "null")
    CHUNK("{}", "\"length\"")
    "data: {\"id\":\"chatcmpl-s1\",\"object\":\"chat.completion.chunk\","
    "\"created\":1,\"model\":\"fusion/merge\",\"choices\":[],\"usage\":"
    "{\"prompt_tokens\":40,\"completion_tokens\":9,\"total_tokens\":49},"
    "\"fusion\":{\"mode\":\"merge\"}}\n\n"
    "data: [DONE]\n\n";


/* the events of an Anthropic stream, checked: "event: T\ndata: {T}" */

typedef struct {
    char            types[64][24];
    int             n;
    ngx_ai_buf_t    text;
    ngx_ai_buf_t    json[4];          /* input_json_delta per block */
    cJSON          *start;            /* message_start's message */
    cJSON          *delta;            /* message_delta */
    cJSON          *error;
    cJSON          *blocks[8];        /* content_block_start blocks */
} unit_messages_events_t;


static void
events(ngx_str_t *out, unit_messages_events_t *e)
{
    int         i, index, open;
    cJSON      *j;
    u_char     *p, *last, *nl, *end;
    ngx_str_t   type, data;

    ngx_memzero(e, sizeof(unit_messages_events_t));
    ngx_ai_buf_init(&e->text, unit_pool(), 64);

    for (i = 0; i < 4; i++) {
        ngx_ai_buf_init(&e->json[i], unit_pool(), 64);
    }

    open = -1;
    p = out->data;
    last = out->data + out->len;

    while (p < last) {
        end = memmem(p, last - p, "\n\n", 2);
        nl = memchr(p, '\n', last - p);

        if (end == NULL || last - p < 7 || memcmp(p, "event: ", 7) != 0
            || nl == end || end - nl < 7 || memcmp(nl, "\ndata: ", 7) != 0)
        {
            unit_fail(__FILE__, __LINE__, "not an Anthropic event: \"%.*s\"",
                      (int) (last - p), p);
            return;
        }

        type.data = p + 7;
        type.len = nl - type.data;
        data.data = nl + 7;
        data.len = end - data.data;
        p = end + 2;

        j = unit_json(&data);
        if (j == NULL || e->n == 64) {
            return;
        }

        if (type.len >= 24
            || strlen(unit_ai_str(j, "type")) != type.len
            || memcmp(unit_ai_str(j, "type"), type.data, type.len) != 0)
        {
            unit_fail(__FILE__, __LINE__, "event name and type differ: %.*s",
                      (int) data.len, data.data);
            return;
        }

        memcpy(e->types[e->n], type.data, type.len);
        e->types[e->n][type.len] = '\0';
        e->n++;

        index = (int) unit_ai_num(j, "index");

        if (type.len == 19 && memcmp(type.data, "content_block_start", 19)
                              == 0)
        {
            if (open != -1 || index < 0 || index > 7
                || (index > 0 && e->blocks[index - 1] == NULL))
            {
                unit_fail(__FILE__, __LINE__, "block %d opened wrongly",
                          index);
                return;
            }

            open = index;
            e->blocks[index] = unit_ai_path(j, "content_block");

        } else if (type.len == 19
                   && memcmp(type.data, "content_block_delta", 19) == 0)
        {
            if (index != open) {
                unit_fail(__FILE__, __LINE__, "delta of a closed block");
            }

            if (strcmp(unit_ai_str(j, "delta.type"), "text_delta") == 0) {
                ngx_ai_buf_append_str(&e->text, unit_ai_str(j, "delta.text"));

            } else if (index < 4) {
                ngx_ai_buf_append_str(&e->json[index],
                                      unit_ai_str(j, "delta.partial_json"));
            }

        } else if (type.len == 18
                   && memcmp(type.data, "content_block_stop", 18) == 0)
        {
            if (index != open) {
                unit_fail(__FILE__, __LINE__, "stop of a closed block");
            }

            open = -1;

        } else if (type.len == 13
                   && memcmp(type.data, "message_start", 13) == 0)
        {
            e->start = unit_ai_path(j, "message");

        } else if (type.len == 13
                   && memcmp(type.data, "message_delta", 13) == 0)
        {
            e->delta = j;

        } else if (type.len == 5 && memcmp(type.data, "error", 5) == 0) {
            e->error = j;
        }
    }
}


static void
stream(const char *in, size_t split, ngx_ai_usage_t *u, ngx_pool_t *pool,
    ngx_ai_messages_stream_t *ms)
{
    size_t  len;

    len = strlen(in);

    UNIT_EQ_INT(ngx_ai_messages_stream_init(ms, pool), NGX_OK);

    if (u) {
        ngx_ai_messages_stream_usage(ms, u);
    }

    UNIT_EQ_INT(ngx_ai_messages_stream_feed(ms, (u_char *) in, split),
                NGX_OK);
    UNIT_EQ_INT(ngx_ai_messages_stream_feed(ms, (u_char *) in + split,
                                            len - split),
                NGX_OK);
}


static int
types_are(unit_messages_events_t *e, const char **want)
{
    int  i;

    for (i = 0; want[i]; i++) {
        if (i >= e->n || strcmp(e->types[i], want[i]) != 0) {
            unit_fail(__FILE__, __LINE__, "event %d is %s, expected %s", i,
                      i < e->n ? e->types[i] : "(none)", want[i]);
            return 0;
        }
    }

    if (i != e->n) {
        unit_fail(__FILE__, __LINE__, "%d events, expected %d", e->n, i);
        return 0;
    }

    return 1;
}


UNIT_TEST(messages_stream_text)
{
    ngx_str_t                  out;
    ngx_ai_messages_stream_t   ms;
    unit_messages_events_t     e;

    static const char  *want[] = {
        "message_start", "content_block_start", "content_block_delta",
        "content_block_delta", "content_block_stop", "message_delta",
        "message_stop", NULL
    };

    stream(unit_messages_text_stream, strlen(unit_messages_text_stream),
           NULL, unit_pool(), &ms);

    out.data = ms.out.data;
    out.len = ms.out.len;
    events(&out, &e);

    if (!types_are(&e, want)) {
        return;
    }

    UNIT_CHECK(ms.done && !ms.failed);
    UNIT_EQ_STR(e.text, "Hello \"world\"");
    UNIT_CHECK(strcmp(unit_ai_str(e.start, "id"), "msg_s1") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(e.start, "model"), "openai/gpt-4o") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(e.start, "role"), "assistant") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(e.start, "content")), 0);
    /* the OpenAI-type usage chunk came at the end: message_start waited
     * for it and has its input tokens, and no output tokens to add */

    UNIT_EQ_INT(unit_ai_num(e.start, "usage.input_tokens"), 7);
    UNIT_EQ_INT(unit_ai_num(e.start, "usage.output_tokens"), 0);
    UNIT_CHECK(strcmp(unit_ai_str(e.blocks[0], "type"), "text") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(e.delta, "delta.stop_reason"), "end_turn")
               == 0);
    UNIT_CHECK(cJSON_IsNull(unit_ai_path(e.delta, "delta.stop_sequence")));
    UNIT_EQ_INT(unit_ai_num(e.delta, "usage.input_tokens"), 7);
    UNIT_EQ_INT(unit_ai_num(e.delta, "usage.cache_read_input_tokens"), 4);
    UNIT_EQ_INT(unit_ai_num(e.delta, "usage.output_tokens"), 3);

    /* nothing more after the end */

    out.len = ms.out.len;
    UNIT_EQ_INT(ngx_ai_messages_stream_feed(&ms,
                    (u_char *) "data: [DONE]\n\n", 14), NGX_OK);
    UNIT_EQ_INT(ms.out.len, out.len);
}


UNIT_TEST(messages_stream_tools)
{
    ngx_str_t                  out;
    ngx_ai_usage_t             u;
    ngx_ai_messages_stream_t   ms;
    unit_messages_events_t     e;

    static const char  *want[] = {
        "message_start",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop", NULL
    };

    /* the usage the gateway knows (an Anthropic provider's, with cache
     * creation) wins over the chunks' and is in message_start too */

    ngx_memzero(&u, sizeof(ngx_ai_usage_t));
    u.prompt_tokens = 22;
    u.completion_tokens = 9;
    u.cached_tokens = 7;
    u.cache_creation_tokens = 5;
    u.known = 1;

    stream(unit_messages_tool_stream, strlen(unit_messages_tool_stream),
           &u, unit_pool(), &ms);

    out.data = ms.out.data;
    out.len = ms.out.len;
    events(&out, &e);

    if (!types_are(&e, want)) {
        return;
    }

    UNIT_EQ_STR(e.text, "Checking.");
    UNIT_CHECK(strcmp(unit_ai_str(e.blocks[1], "type"), "tool_use") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(e.blocks[1], "id"), "call_1") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(e.blocks[1], "name"), "weather") == 0);
    UNIT_CHECK(cJSON_IsObject(unit_ai_path(e.blocks[1], "input")));
    UNIT_EQ_STR(e.json[1], "{\"city\":\"Paris\"}");
    UNIT_CHECK(strcmp(unit_ai_str(e.blocks[2], "name"), "time") == 0);
    UNIT_EQ_STR(e.json[2], "{}");
    UNIT_CHECK(strcmp(unit_ai_str(e.delta, "delta.stop_reason"), "tool_use")
               == 0);
    UNIT_EQ_INT(unit_ai_num(e.start, "usage.input_tokens"), 10);
    UNIT_EQ_INT(unit_ai_num(e.delta, "usage.input_tokens"), 10);
    UNIT_EQ_INT(unit_ai_num(e.delta, "usage.cache_creation_input_tokens"),
                5);
    UNIT_EQ_INT(unit_ai_num(e.delta, "usage.cache_read_input_tokens"), 7);
    UNIT_EQ_INT(unit_ai_num(e.delta, "usage.output_tokens"), 9);
}


UNIT_TEST(messages_stream_error_and_pings)
{
    ngx_str_t                  out;
    ngx_ai_messages_stream_t   ms;
    unit_messages_events_t     e;

    static const char  *want_error[] = {
        "message_start", "content_block_start", "content_block_delta",
        "error", NULL
    };

    static const char  *want_fusion[] = {
        "ping", "ping", "message_start", "content_block_start",
        "content_block_delta", "content_block_stop", "message_delta",
        "message_stop", NULL
    };

    stream(unit_messages_error_stream, strlen(unit_messages_error_stream),
           NULL, unit_pool(), &ms);

    out.data = ms.out.data;
    out.len = ms.out.len;
    events(&out, &e);

    if (types_are(&e, want_error)) {
        UNIT_CHECK(ms.failed && !ms.done);
        UNIT_CHECK(strcmp(unit_ai_str(e.error, "error.type"),
                          "timeout_error") == 0);
        UNIT_CHECK(strcmp(unit_ai_str(e.error, "error.message"),
                          "the provider timed out") == 0);
    }

    stream(unit_messages_fusion_stream, strlen(unit_messages_fusion_stream),
           NULL, unit_pool(), &ms);

    out.data = ms.out.data;
    out.len = ms.out.len;
    events(&out, &e);

    if (types_are(&e, want_fusion)) {
        UNIT_EQ_STR(e.text, "Merged");
        UNIT_CHECK(strcmp(unit_ai_str(e.start, "model"), "fusion/merge")
                   != 0);
        UNIT_CHECK(strcmp(unit_ai_str(e.delta, "delta.stop_reason"),
                          "max_tokens") == 0);
        UNIT_EQ_INT(unit_ai_num(e.delta, "usage.input_tokens"), 40);
        UNIT_EQ_INT(unit_ai_num(e.delta, "usage.output_tokens"), 9);
    }

    /* [DONE] alone: a whole, empty message */

    stream("data: [DONE]\n\n", 5, NULL, unit_pool(), &ms);
    out.data = ms.out.data;
    out.len = ms.out.len;
    events(&out, &e);
    UNIT_EQ_INT(e.n, 3);
    UNIT_CHECK(strcmp(unit_ai_str(e.start, "id"), "msg_gateway") == 0);

    /* garbage is not the gateway's and is skipped */

    stream("data: nope\n\n", 12, NULL, unit_pool(), &ms);
    UNIT_EQ_INT(ms.out.len, 0);
}


/* fed in two parts split at every byte: the same events */

UNIT_TEST(messages_stream_every_split)
{
    size_t                     i, split, len;
    ngx_pool_t                *pool;
    ngx_ai_messages_stream_t   ms, ms0;

    static const char  *inputs[] = {
        unit_messages_text_stream, unit_messages_tool_stream,
        unit_messages_error_stream, unit_messages_fusion_stream
    };

    for (i = 0; i < 4; i++) {
        len = strlen(inputs[i]);

        stream(inputs[i], len, NULL, unit_pool(), &ms0);

        for (split = 0; split <= len; split++) {
            pool = ngx_create_pool(4096, NULL);

            stream(inputs[i], split, NULL, pool, &ms);

            if (ms.out.len != ms0.out.len
                || memcmp(ms.out.data, ms0.out.data, ms.out.len) != 0)
            {
                unit_fail(__FILE__, __LINE__, "input %d split at %d "
                          "differs: \"%.*s\"", (int) i, (int) split,
                          (int) ms.out.len, ms.out.data);
                ngx_destroy_pool(pool);
                return;
            }

            if (ms.done != ms0.done || ms.failed != ms0.failed) {
                unit_fail(__FILE__, __LINE__, "input %d split at %d: state",
                          (int) i, (int) split);
            }

            ngx_destroy_pool(pool);
        }
    }
}


/* any number of stop sequences: the provider's own limit decides */

UNIT_TEST(messages_request_many_stops)
{
    cJSON                  *j;
    ngx_ai_chat_request_t   req;

    j = convert("{\"model\":\"p/m\",\"max_tokens\":1,"
                "\"stop_sequences\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"],"
                "\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
                &req);
    if (j == NULL) {
        return;
    }

    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "stop")), 6);
    UNIT_CHECK(strcmp(unit_ai_str(j, "stop.5"), "f") == 0);
}


/*
 * Fed one chunk at a time (an OpenAI-type provider): nothing but pings
 * leaves before the usage chunk; then message_start with the input tokens,
 * and the held events in order.
 */

UNIT_TEST(messages_stream_holds_for_input_tokens)
{
    size_t                     i, n;
    ngx_str_t                  out;
    ngx_ai_buf_t               all;
    ngx_ai_messages_stream_t   ms;
    unit_messages_events_t     e;

    static const char  *feeds[] = {
        CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
        ": keep-alive\n\n",
        CHUNK("{\"content\":\"Hello\"}", "null"),
        CHUNK("{}", "\"stop\""),
        USAGE_CHUNK,
        "data: [DONE]\n\n",
        NULL
    };

    static const char  *want[] = {
        "ping", "message_start", "content_block_start",
        "content_block_delta", "content_block_stop", "message_delta",
        "message_stop", NULL
    };

    UNIT_EQ_INT(ngx_ai_messages_stream_init(&ms, unit_pool()), NGX_OK);
    UNIT_EQ_INT(ngx_ai_buf_init(&all, unit_pool(), 1024), NGX_OK);

    for (i = 0; feeds[i]; i++) {
        ms.out.len = 0;
        n = strlen(feeds[i]);

        UNIT_EQ_INT(ngx_ai_messages_stream_feed(&ms, (u_char *) feeds[i], n),
                    NGX_OK);

        if (i == 0 || i == 2 || i == 3) {
            UNIT_EQ_INT(ms.out.len, 0);
        }

        if (i == 1) {
            UNIT_CHECK(ms.out.len > 0
                       && ngx_strncmp(ms.out.data, "event: ping", 11) == 0);
        }

        (void) ngx_ai_buf_append(&all, ms.out.data, ms.out.len);
    }

    out.data = all.data;
    out.len = all.len;
    events(&out, &e);

    if (!types_are(&e, want)) {
        return;
    }

    UNIT_EQ_INT(unit_ai_num(e.start, "usage.input_tokens"), 7);
    UNIT_EQ_INT(unit_ai_num(e.start, "usage.output_tokens"), 0);
    UNIT_EQ_INT(unit_ai_num(e.delta, "usage.output_tokens"), 3);
    UNIT_EQ_STR(e.text, "Hello");
}


/*
 * The usage known before the first chunk (Anthropic, Gemini providers):
 * no wait; message_start's output tokens plus message_delta's are the
 * answer's, whether a client adds them (LangChain) or replaces them
 * (Anthropic's SDK); the gateway's cost goes in message_delta's usage.
 */

UNIT_TEST(messages_stream_output_tokens_once)
{
    ngx_str_t                  out;
    ngx_ai_usage_t             u;
    ngx_ai_messages_stream_t   ms;
    unit_messages_events_t     e;

    ngx_memzero(&u, sizeof(ngx_ai_usage_t));
    u.prompt_tokens = 12;
    u.completion_tokens = 5;
    u.cost = 123000;
    u.known = 1;
    u.priced = 1;

    UNIT_EQ_INT(ngx_ai_messages_stream_init(&ms, unit_pool()), NGX_OK);
    ngx_ai_messages_stream_usage(&ms, &u);

    UNIT_EQ_INT(ngx_ai_messages_stream_feed(&ms, (u_char *)
                    CHUNK("{\"role\":\"assistant\",\"content\":\"\"}",
                          "null"),
                    strlen(CHUNK("{\"role\":\"assistant\",\"content\":"
                                 "\"\"}", "null"))),
                NGX_OK);
    UNIT_CHECK(ms.out.len > 0 && !ms.holding);

    UNIT_EQ_INT(ngx_ai_messages_stream_feed(&ms,
                    (u_char *) unit_messages_text_stream,
                    strlen(unit_messages_text_stream)), NGX_OK);

    out.data = ms.out.data;
    out.len = ms.out.len;
    events(&out, &e);

    UNIT_EQ_INT(unit_ai_num(e.start, "usage.input_tokens"), 12);
    UNIT_EQ_INT(unit_ai_num(e.start, "usage.output_tokens")
                + unit_ai_num(e.delta, "usage.output_tokens"), 5);
    UNIT_EQ_INT(unit_ai_num(e.delta, "usage.output_tokens"), 5);
    UNIT_CHECK(unit_ai_path(e.start, "usage.cost") == NULL);
    UNIT_CHECK(unit_ai_num(e.delta, "usage.cost") == 0.000123);
}


/* a stream that fails before its usage came: message_start, then the
 * error, nothing lost */

UNIT_TEST(messages_stream_error_while_holding)
{
    ngx_str_t                  out;
    ngx_ai_messages_stream_t   ms;
    unit_messages_events_t     e;

    static const char  in[] =
        CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
        CHUNK("{\"content\":\"Hel\"}", "null")
        "data: {\"error\":{\"message\":\"cut\",\"type\":\"api_error\"}}"
        "\n\n";

    static const char  *want[] = {
        "message_start", "content_block_start", "content_block_delta",
        "error", NULL
    };

    stream(in, 40, NULL, unit_pool(), &ms);

    out.data = ms.out.data;
    out.len = ms.out.len;
    events(&out, &e);

    (void) types_are(&e, want);
    UNIT_CHECK(ms.failed && !ms.holding);
}


/*
 * Not exact (the default): message_start goes out with the first chunk
 * and the estimate; exact but a long answer: the hold ends at its bound.
 */

UNIT_TEST(messages_stream_estimate_and_hold_bound)
{
    size_t                     i;
    ngx_str_t                  out;
    ngx_ai_messages_stream_t  *ms;
    unit_messages_events_t     e;
    static const char          first[] =
        CHUNK("{\"role\":\"assistant\",\"content\":\"Hi\"}", "null");
    static const char          word[] = CHUNK("{\"content\":\"word \"}", "null");

    ms = ngx_ai_messages_stream_create(unit_pool(), 9, 0);
    UNIT_CHECK(ms != NULL);
    if (ms == NULL) {
        return;
    }

    UNIT_EQ_INT(ngx_ai_messages_stream_feed(ms, (u_char *) first,
                                            sizeof(first) - 1),
                NGX_OK);
    out.data = ms->out.data;
    out.len = ms->out.len;
    events(&out, &e);
    UNIT_CHECK(e.start != NULL);
    UNIT_EQ_INT(unit_ai_num(e.start, "usage.input_tokens"), 9);

    ms = ngx_ai_messages_stream_create(unit_pool(), 9, 1);
    UNIT_CHECK(ms != NULL);
    if (ms == NULL) {
        return;
    }

    UNIT_EQ_INT(ngx_ai_messages_stream_feed(ms, (u_char *) first,
                                            sizeof(first) - 1),
                NGX_OK);
    UNIT_EQ_INT(ms->out.len, 0);

    for (i = 0; ms->holding && i < 100000; i++) {
        ms->out.len = 0;
        UNIT_EQ_INT(ngx_ai_messages_stream_feed(ms, (u_char *) word,
                                                sizeof(word) - 1),
                    NGX_OK);
    }

    UNIT_CHECK(!ms->holding);
    UNIT_CHECK(ms->held.len == 0);
    UNIT_CHECK(i > 1000 && i < 100000);      /* it held, then let go */
    UNIT_CHECK(ms->out.len > NGX_AI_MESSAGES_MAX_HOLD
               && ngx_strncmp(ms->out.data, "event: message_start", 20) == 0);
}
