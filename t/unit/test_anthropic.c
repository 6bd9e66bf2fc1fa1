
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the anthropic translator.  Also defines the helpers that
 * test_gemini.c shares (unit_ai_*): corpus files, JSON paths, feeding
 * recorded streams split at every byte, reading translated chunks back.
 */


#include "unit.h"
#include <stdlib.h>
#include <unistd.h>
#include <limits.h>


#define UNIT_AI_CREATED  1700000000


/* shared with test_gemini.c */

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


static const char *
unit_ai_corpus_dir(void)
{
    static char  dir[PATH_MAX];
    static int   found;
    char         exe[PATH_MAX], probe[PATH_MAX + 32], *p;
    ssize_t      n;
    int          i;
    const char  *tries[3];

    if (found) {
        return dir;
    }

    /* $UNIT_CORPUS, the repository or t/unit as working directory, or
     * three levels up from build/unit/run_unit */

    tries[0] = getenv("UNIT_CORPUS");
    tries[1] = "t/unit/corpus";
    tries[2] = "corpus";

    for (i = 0; i < 3; i++) {
        if (tries[i] == NULL) {
            continue;
        }

        snprintf(probe, sizeof(probe), "%s/anthropic_text.sse", tries[i]);

        if (access(probe, R_OK) == 0) {
            snprintf(dir, sizeof(dir), "%s", tries[i]);
            found = 1;
            return dir;
        }
    }

    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n > 0) {
        exe[n] = '\0';

        for (i = 0; i < 3; i++) {
            p = strrchr(exe, '/');
            if (p) {
                *p = '\0';
            }
        }

        if (strlen(exe) + sizeof("/t/unit/corpus") > sizeof(dir)) {
            return NULL;
        }

        strcpy(dir, exe);
        strcat(dir, "/t/unit/corpus");
        snprintf(probe, sizeof(probe), "%s/anthropic_text.sse", dir);

        if (access(probe, R_OK) == 0) {
            found = 1;
            return dir;
        }
    }

    return NULL;
}


ngx_str_t
unit_ai_corpus(const char *name)
{
    char         path[PATH_MAX + 256];
    long         len;
    FILE        *f;
    ngx_str_t    s;
    const char  *dir;

    ngx_str_null(&s);

    dir = unit_ai_corpus_dir();

    if (dir == NULL) {
        unit_fail(__FILE__, __LINE__, "t/unit/corpus not found (set "
                  "UNIT_CORPUS)");
        return s;
    }

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    f = fopen(path, "rb");
    if (f == NULL) {
        unit_fail(__FILE__, __LINE__, "cannot open %s", path);
        return s;
    }

    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);

    s.data = ngx_pnalloc(unit_pool(), len + 1);
    s.len = fread(s.data, 1, len, f);
    s.data[s.len] = '\0';

    fclose(f);

    return s;
}


ngx_ai_chat_request_t *
unit_ai_chat(const char *body)
{
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t  *req;

    req = ngx_pcalloc(unit_pool(), sizeof(ngx_ai_chat_request_t));

    if (ngx_ai_chat_request_parse(unit_pool(), (u_char *) body, strlen(body),
                                  req, &err)
        != NGX_OK)
    {
        unit_fail(__FILE__, __LINE__, "request rejected: %.*s",
                  (int) err.message.len, err.message.data);
    }

    req->created = UNIT_AI_CREATED;

    return req;
}


/* "a.0.b": members by name, array items by number */

cJSON *
unit_ai_path(cJSON *root, const char *path)
{
    char        key[128];
    size_t      n;
    const char  *p, *dot;

    for (p = path; root && *p; p = *dot ? dot + 1 : dot) {
        dot = strchr(p, '.');
        if (dot == NULL) {
            dot = p + strlen(p);
        }

        n = dot - p;
        if (n >= sizeof(key)) {
            return NULL;
        }

        memcpy(key, p, n);
        key[n] = '\0';

        if (cJSON_IsArray(root)) {
            root = cJSON_GetArrayItem(root, atoi(key));

        } else {
            root = cJSON_GetObjectItemCaseSensitive(root, key);
        }
    }

    return root;
}


const char *
unit_ai_str(cJSON *root, const char *path)
{
    cJSON  *item;

    item = unit_ai_path(root, path);

    return cJSON_IsString(item) ? item->valuestring : "(none)";
}


double
unit_ai_num(cJSON *root, const char *path)
{
    cJSON  *item;

    item = unit_ai_path(root, path);

    return cJSON_IsNumber(item) ? item->valuedouble : -1;
}


typedef struct {
    ngx_ai_translator_t  *tr;
    ngx_ai_stream_t      *st;
} unit_ai_feed_t;


static ngx_int_t
unit_ai_event(void *data, ngx_ai_sse_event_t *ev)
{
    unit_ai_feed_t  *f = data;

    return f->tr->stream_event(f->st, ev);
}


/* two feeds, split at byte split; a failure stops the feeding */

ngx_int_t
unit_ai_feed(ngx_ai_translator_t *tr, ngx_pool_t *pool,
    ngx_ai_chat_request_t *req, ngx_str_t *in, size_t split,
    ngx_ai_stream_t *st)
{
    ngx_int_t             rc;
    unit_ai_feed_t        f;
    ngx_ai_sse_parser_t   p;

    ngx_ai_stream_init(st, pool, req, UNIT_AI_CREATED);
    ngx_ai_sse_init(&p, pool, 0);

    f.tr = tr;
    f.st = st;

    rc = ngx_ai_sse_feed(&p, in->data, in->data + split, unit_ai_event, &f);

    if (rc == NGX_OK) {
        rc = ngx_ai_sse_feed(&p, in->data + split, in->data + in->len,
                             unit_ai_event, &f);
    }

    return rc;
}


/*
 * A recorded stream fed in two parts split at every byte gives the same
 * chunks, state and usage as fed whole, with and without include_usage.
 */

void
unit_ai_every_split(ngx_ai_translator_t *tr, const char *name)
{
    size_t                  split;
    ngx_int_t               rc, rc0;
    ngx_str_t               in;
    ngx_uint_t              usage;
    ngx_pool_t             *pool;
    ngx_ai_stream_t         st, st0;
    ngx_ai_chat_request_t   req;

    in = unit_ai_corpus(name);
    if (in.len == 0) {
        return;
    }

    for (usage = 0; usage < 2; usage++) {
        ngx_memzero(&req, sizeof(req));
        ngx_str_set(&req.model, "p/m");
        req.stream = 1;
        req.include_usage = usage;

        rc0 = unit_ai_feed(tr, unit_pool(), &req, &in, in.len, &st0);

        if (st0.out.len == 0) {
            unit_fail(__FILE__, __LINE__, "%s: no output", name);
            return;
        }

        for (split = 0; split <= in.len; split++) {
            pool = ngx_create_pool(4096, NULL);

            rc = unit_ai_feed(tr, pool, &req, &in, split, &st);

            if (rc != rc0 || st.done != st0.done || st.failed != st0.failed
                || st.out.len != st0.out.len
                || memcmp(st.out.data, st0.out.data, st.out.len) != 0
                || st.usage.prompt_tokens != st0.usage.prompt_tokens
                || st.usage.completion_tokens != st0.usage.completion_tokens
                || st.usage.cached_tokens != st0.usage.cached_tokens
                || st.usage.reasoning_tokens != st0.usage.reasoning_tokens)
            {
                unit_fail(__FILE__, __LINE__, "%s split at %d differs: "
                          "\"%.*s\"", name, (int) split, (int) st.out.len,
                          st.out.data);
                ngx_destroy_pool(pool);
                return;
            }

            ngx_destroy_pool(pool);
        }
    }
}


static void
unit_ai_copy(char *dst, size_t size, cJSON *s)
{
    if (cJSON_IsString(s)) {
        snprintf(dst, size, "%s", s->valuestring);
    }
}


/*
 * Reads translated chunks back: every one is "data: {json}\n\n", one id,
 * the role chunk first, nothing but a usage chunk after the finish chunk.
 */

void
unit_ai_chunks(ngx_str_t *out, unit_ai_chunks_t *c)
{
    int         i, finished;
    char        id[256];
    cJSON      *j, *choice, *delta, *calls, *call, *s, *usage;
    u_char     *p, *last, *end;
    ngx_str_t   data;

    ngx_memzero(c, sizeof(unit_ai_chunks_t));
    ngx_ai_buf_init(&c->content, unit_pool(), 64);

    for (i = 0; i < 4; i++) {
        ngx_ai_buf_init(&c->args[i], unit_pool(), 64);
    }

    id[0] = '\0';
    finished = 0;

    p = out->data;
    last = out->data + out->len;

    while (p < last) {
        end = memmem(p, last - p, "\n\n", 2);

        if (end == NULL || last - p < 6 || memcmp(p, "data: ", 6) != 0) {
            unit_fail(__FILE__, __LINE__, "not an SSE data event: \"%.*s\"",
                      (int) (last - p), p);
            return;
        }

        data.data = p + 6;
        data.len = end - (p + 6);
        p = end + 2;

        j = unit_json(&data);
        if (j == NULL) {
            return;
        }

        if (strcmp(unit_ai_str(j, "object"), "chat.completion.chunk") != 0
            || unit_ai_num(j, "created") != UNIT_AI_CREATED
            || !cJSON_IsString(unit_ai_path(j, "model")))
        {
            unit_fail(__FILE__, __LINE__, "bad chunk: %.*s", (int) data.len,
                      data.data);
        }

        if (c->chunks++ == 0) {
            snprintf(id, sizeof(id), "%s", unit_ai_str(j, "id"));

            if (strcmp(unit_ai_str(j, "choices.0.delta.role"), "assistant")
                != 0)
            {
                unit_fail(__FILE__, __LINE__, "first chunk without role");
            }

        } else if (strcmp(id, unit_ai_str(j, "id")) != 0) {
            unit_fail(__FILE__, __LINE__, "chunk ids differ");
        }

        usage = unit_ai_path(j, "usage");

        if (cJSON_IsObject(usage)) {
            if (cJSON_GetArraySize(unit_ai_path(j, "choices")) != 0) {
                unit_fail(__FILE__, __LINE__, "usage chunk with choices");
            }

            c->usage_chunks++;
            c->prompt = unit_ai_num(usage, "prompt_tokens");
            c->completion = unit_ai_num(usage, "completion_tokens");
            c->cached = unit_ai_num(usage,
                                    "prompt_tokens_details.cached_tokens");
            c->reasoning = unit_ai_num(usage,
                              "completion_tokens_details.reasoning_tokens");

            if (unit_ai_num(usage, "total_tokens") != c->prompt
                                                      + c->completion)
            {
                unit_fail(__FILE__, __LINE__, "total_tokens is not the sum");
            }

            continue;
        }

        if (finished) {
            unit_fail(__FILE__, __LINE__, "a chunk after the finish chunk");
        }

        choice = unit_ai_path(j, "choices.0");
        delta = unit_ai_path(choice, "delta");

        if (!cJSON_IsObject(delta)) {
            unit_fail(__FILE__, __LINE__, "chunk without delta");
            continue;
        }

        s = unit_ai_path(delta, "content");

        if (cJSON_IsString(s)) {
            ngx_ai_buf_append_str(&c->content, s->valuestring);
        }

        calls = unit_ai_path(delta, "tool_calls");

        cJSON_ArrayForEach(call, calls) {
            i = (int) unit_ai_num(call, "index");

            if (i < 0 || i > 3) {
                unit_fail(__FILE__, __LINE__, "tool call index %d", i);
                continue;
            }

            if (cJSON_IsString(unit_ai_path(call, "id"))) {
                if (i != c->tools) {
                    unit_fail(__FILE__, __LINE__, "tool call %d out of "
                              "order", i);
                }

                c->tools++;
                unit_ai_copy(c->tool_id[i], 64, unit_ai_path(call, "id"));
                unit_ai_copy(c->tool_name[i], 64,
                             unit_ai_path(call, "function.name"));

                if (strcmp(unit_ai_str(call, "type"), "function") != 0) {
                    unit_fail(__FILE__, __LINE__, "tool call type");
                }

            } else if (i >= c->tools) {
                unit_fail(__FILE__, __LINE__, "arguments before the call");
            }

            s = unit_ai_path(call, "function.arguments");

            if (cJSON_IsString(s)) {
                ngx_ai_buf_append_str(&c->args[i], s->valuestring);
            }
        }

        s = unit_ai_path(choice, "finish_reason");

        if (cJSON_IsString(s)) {
            unit_ai_copy(c->finish, sizeof(c->finish), s);
            finished = 1;

            if (cJSON_GetArraySize(delta) != 0) {
                unit_fail(__FILE__, __LINE__, "finish chunk with a delta");
            }
        }
    }

    if (memmem(out->data, out->len, "[DONE]", 6)) {
        unit_fail(__FILE__, __LINE__, "[DONE] written by a translator");
    }
}


/* request */

static cJSON *
request(ngx_ai_chat_request_t *req, ngx_ai_upstream_request_t *up)
{
    UNIT_EQ_INT(ngx_ai_anthropic_translator.request(unit_pool(), req, up),
                NGX_OK);
    UNIT_EQ_STR(up->path, "/v1/messages");

    return unit_json(&up->body);
}


UNIT_TEST(anthropic_request_basic)
{
    const char                 *body;
    cJSON                      *j;
    ngx_str_t                   before, after;
    ngx_ai_chat_request_t      *req;
    ngx_ai_upstream_request_t   up;

    body = "{\"model\":\"anthropic/claude-3-7-sonnet\",\"stream\":true,"
           "\"max_tokens\":300,\"temperature\":1.5,\"top_p\":0.5,"
           "\"stop\":\"END\",\"user\":\"u-42\",\"n\":1,\"logprobs\":true,"
           "\"messages\":["
           "{\"role\":\"system\",\"content\":\"Be brief.\"},"
           "{\"role\":\"user\",\"content\":\"Hi\"},"
           "{\"role\":\"developer\",\"content\":[{\"type\":\"text\","
           "\"text\":\"Answer in French.\"}]},"
           "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
           "\"text\":\"there\"},{\"type\":\"text\",\"text\":\"\"}]},"
           "{\"role\":\"assistant\",\"content\":\"Bonjour\"},"
           "{\"role\":\"assistant\",\"content\":[{\"type\":\"refusal\","
           "\"refusal\":\"no\"}]},"
           "{\"role\":\"user\",\"content\":\"\"},"
           "{\"role\":\"user\",\"content\":\"Why?\"}]}";

    req = unit_ai_chat(body);
    ngx_ai_json_print(unit_pool(), req->json, &before);

    j = request(req, &up);

    UNIT_CHECK(strcmp(unit_ai_str(j, "model"), "claude-3-7-sonnet") == 0);
    UNIT_EQ_INT(unit_ai_num(j, "max_tokens"), 300);
    UNIT_CHECK(strcmp(unit_ai_str(j, "system"),
                      "Be brief.\n\nAnswer in French.") == 0);

    /* temperature clamped to Anthropic's 0..1; top_p not sent with it */
    UNIT_CHECK(unit_ai_num(j, "temperature") == 1.0);
    UNIT_CHECK(unit_ai_path(j, "top_p") == NULL);

    UNIT_CHECK(strcmp(unit_ai_str(j, "stop_sequences.0"), "END") == 0);
    UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j, "stream")));
    UNIT_CHECK(strcmp(unit_ai_str(j, "metadata.user_id"), "u-42") == 0);
    UNIT_CHECK(unit_ai_path(j, "n") == NULL);
    UNIT_CHECK(unit_ai_path(j, "logprobs") == NULL);
    UNIT_CHECK(unit_ai_path(j, "user") == NULL);

    /* user, user -> one turn; assistant, assistant -> one turn; empty
     * texts dropped */
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages")), 3);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.role"), "user") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages.0.content")), 2);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.0.type"), "text")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.0.text"), "Hi")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.1.text"), "there")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.role"), "assistant") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.text"),
                      "Bonjour") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.1.text"), "no")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.role"), "user") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages.2.content")), 1);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.text"), "Why?")
               == 0);

    /* the client's tree is unchanged, for the next provider */
    ngx_ai_json_print(unit_pool(), req->json, &after);
    UNIT_CHECK(before.len == after.len
               && memcmp(before.data, after.data, before.len) == 0);
}


UNIT_TEST(anthropic_request_max_tokens_and_sampling)
{
    cJSON                      *j;
    ngx_ai_chat_request_t      *req;
    ngx_ai_upstream_request_t   up;

    req = unit_ai_chat("{\"model\":\"a/c\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"x\"}]}");
    j = request(req, &up);
    UNIT_EQ_INT(unit_ai_num(j, "max_tokens"), 4096);
    UNIT_CHECK(unit_ai_path(j, "stream") == NULL);
    UNIT_CHECK(unit_ai_path(j, "system") == NULL);
    UNIT_CHECK(unit_ai_path(j, "tools") == NULL);
    UNIT_CHECK(unit_ai_path(j, "stop_sequences") == NULL);
    UNIT_CHECK(unit_ai_path(j, "temperature") == NULL);

    req->default_max_tokens = 1000;
    j = request(req, &up);
    UNIT_EQ_INT(unit_ai_num(j, "max_tokens"), 1000);

    req = unit_ai_chat("{\"model\":\"a/c\",\"max_completion_tokens\":77,"
                       "\"top_p\":0.25,\"stop\":[\"a\",\"b\"],\"messages\":"
                       "[{\"role\":\"user\",\"content\":\"x\"}]}");
    req->default_max_tokens = 1000;
    j = request(req, &up);
    UNIT_EQ_INT(unit_ai_num(j, "max_tokens"), 77);
    UNIT_CHECK(unit_ai_num(j, "top_p") == 0.25);
    UNIT_CHECK(strcmp(unit_ai_str(j, "stop_sequences.1"), "b") == 0);

    req = unit_ai_chat("{\"model\":\"a/c\",\"temperature\":0.3,\"messages\":"
                       "[{\"role\":\"user\",\"content\":\"x\"}]}");
    j = request(req, &up);
    UNIT_CHECK(unit_ai_num(j, "temperature") == 0.3);
}


UNIT_TEST(anthropic_request_images_and_files)
{
    cJSON                      *j;
    ngx_ai_chat_request_t      *req;
    ngx_ai_upstream_request_t   up;

    req = unit_ai_chat("{\"model\":\"a/c\",\"messages\":[{\"role\":\"user\","
        "\"content\":[{\"type\":\"text\",\"text\":\"What is this?\","
        "\"cache_control\":{\"type\":\"ephemeral\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/png;base64,iVBORw0KGgo=\",\"detail\":\"high\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"https://example.com/cat.jpg\"}},"
        "{\"type\":\"image_url\",\"image_url\":\"ftp://example.com/x.png\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:,nobase64\"}},"
        "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AAA\","
        "\"format\":\"wav\"}},"
        "{\"type\":\"file\",\"file\":{\"filename\":\"a.pdf\",\"file_data\":"
        "\"data:application/pdf;base64,JVBERi0=\"}},"
        "{\"type\":\"file\",\"file\":{\"file_id\":\"file-abc\"}}]}]}");

    j = request(req, &up);

    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages.0.content")), 4);
    UNIT_CHECK(strcmp(unit_ai_str(j,
               "messages.0.content.0.cache_control.type"), "ephemeral") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.1.type"), "image")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.1.source.type"),
                      "base64") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                      "messages.0.content.1.source.media_type"), "image/png")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.1.source.data"),
                      "iVBORw0KGgo=") == 0);
    UNIT_CHECK(unit_ai_path(j, "messages.0.content.1.detail") == NULL);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.2.source.type"),
                      "url") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.2.source.url"),
                      "https://example.com/cat.jpg") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.3.type"),
                      "document") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                      "messages.0.content.3.source.media_type"),
                      "application/pdf") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.0.content.3.source.data"),
                      "JVBERi0=") == 0);
}


UNIT_TEST(anthropic_request_tools)
{
    cJSON                      *j;
    ngx_ai_chat_request_t      *req;
    ngx_ai_upstream_request_t   up;
    const char                 *head, *msgs;
    char                        body[4096];

    head = "{\"model\":\"a/c\",\"tools\":[{\"type\":\"function\",\"function\":"
           "{\"name\":\"get_weather\",\"description\":\"Weather now\","
           "\"parameters\":{\"type\":\"object\",\"properties\":{\"location\":"
           "{\"type\":\"string\"}},\"required\":[\"location\"],"
           "\"additionalProperties\":false}}},{\"type\":\"function\","
           "\"function\":{\"name\":\"get_time\"}},{\"type\":\"web_search\"}]";

    msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"},"
           "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
           "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":"
           "\"get_weather\",\"arguments\":\"{\\\"location\\\":\\\"Paris\\\"}"
           "\"}},{\"id\":\"call_2\",\"type\":\"function\",\"function\":"
           "{\"name\":\"get_time\",\"arguments\":\"not json\"}},"
           "{\"id\":\"call_3\",\"type\":\"function\",\"function\":{\"name\":"
           "\"get_time\",\"arguments\":\"{}x\"}}]},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":"
           "\"sunny\"},"
           "{\"role\":\"user\",\"content\":\"and?\"},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":"
           "[{\"type\":\"text\",\"text\":\"noon\"}]},"
           "{\"role\":\"tool\",\"content\":\"lost id\"}]}";

    snprintf(body, sizeof(body), "%s,\"tool_choice\":\"auto\","
             "\"parallel_tool_calls\":false,%s", head, msgs);
    req = unit_ai_chat(body);
    j = request(req, &up);

    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "tools")), 2);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.0.name"), "get_weather") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.0.description"), "Weather now")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                      "tools.0.input_schema.properties.location.type"),
                      "string") == 0);
    UNIT_CHECK(cJSON_IsFalse(unit_ai_path(j,
                      "tools.0.input_schema.additionalProperties")));
    UNIT_CHECK(strcmp(unit_ai_str(j, "tools.1.input_schema.type"), "object")
               == 0);
    UNIT_CHECK(cJSON_IsObject(unit_ai_path(j,
                                           "tools.1.input_schema.properties")));
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.type"), "auto") == 0);
    UNIT_CHECK(cJSON_IsTrue(unit_ai_path(j,
                            "tool_choice.disable_parallel_tool_use")));

    /* the assistant's calls */
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.role"), "assistant") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages.1.content")), 3);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.type"),
                      "tool_use") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.id"), "call_1")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.1.content.0.name"),
                      "get_weather") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                      "messages.1.content.0.input.location"), "Paris") == 0);
    UNIT_CHECK(cJSON_IsObject(unit_ai_path(j, "messages.1.content.1.input")));
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j,
                                   "messages.1.content.1.input")), 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j,
                                   "messages.1.content.2.input")), 0);

    /* tool, user, tool, tool -> one user turn, tool_results first */
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages")), 3);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.role"), "user") == 0);
    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j, "messages.2.content")), 4);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.type"),
                      "tool_result") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.tool_use_id"),
                      "call_1") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.0.content"),
                      "sunny") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.1.tool_use_id"),
                      "call_2") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.1.content"), "noon")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.2.text"), "and?")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "messages.2.content.3.text"),
                      "lost id") == 0);

    /* tool_choice forms */
    snprintf(body, sizeof(body), "%s,\"tool_choice\":\"required\",%s", head,
             msgs);
    j = request(unit_ai_chat(body), &up);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.type"), "any") == 0);
    UNIT_CHECK(unit_ai_path(j, "tool_choice.disable_parallel_tool_use")
               == NULL);

    snprintf(body, sizeof(body), "%s,\"tool_choice\":\"none\","
             "\"parallel_tool_calls\":false,%s", head, msgs);
    j = request(unit_ai_chat(body), &up);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.type"), "none") == 0);
    UNIT_CHECK(unit_ai_path(j, "tool_choice.disable_parallel_tool_use")
               == NULL);

    snprintf(body, sizeof(body), "%s,\"tool_choice\":{\"type\":\"function\","
             "\"function\":{\"name\":\"get_time\"}},%s", head, msgs);
    j = request(unit_ai_chat(body), &up);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.type"), "tool") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "tool_choice.name"), "get_time") == 0);

    /* no usable tools: no tool_choice either */
    j = request(unit_ai_chat("{\"model\":\"a/c\",\"tools\":[],\"tool_choice\":"
                             "\"auto\",\"messages\":[{\"role\":\"user\","
                             "\"content\":\"x\"}]}"), &up);
    UNIT_CHECK(unit_ai_path(j, "tools") == NULL);
    UNIT_CHECK(unit_ai_path(j, "tool_choice") == NULL);
}


/* response */

static ngx_int_t
response(const char *name, ngx_ai_response_t *out, cJSON **j)
{
    ngx_int_t               rc;
    ngx_str_t               body;
    ngx_ai_error_t          err;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat("{\"model\":\"anthropic/claude-3-7-sonnet\","
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    body = unit_ai_corpus(name);

    rc = ngx_ai_anthropic_translator.response(unit_pool(), req, body.data,
                                              body.len, out, &err);
    *j = rc == NGX_OK ? unit_json(&out->body) : NULL;

    return rc;
}


UNIT_TEST(anthropic_response_text_and_cache_usage)
{
    cJSON              *j;
    ngx_ai_response_t   out;

    UNIT_EQ_INT(response("anthropic_message.json", &out, &j), NGX_OK);

    UNIT_EQ_STR(out.content, "Hi! My name is Claude. How can I help?");
    UNIT_EQ_STR(out.finish_reason, "stop");
    UNIT_EQ_INT(out.usage.known, 1);
    UNIT_EQ_INT(out.usage.prompt_tokens, 2095 + 2048 + 1800);
    UNIT_EQ_INT(out.usage.cached_tokens, 1800);
    UNIT_EQ_INT(out.usage.cache_creation_tokens, 2048);
    UNIT_EQ_INT(out.usage.completion_tokens, 503);

    UNIT_CHECK(strcmp(unit_ai_str(j, "id"),
                      "chatcmpl-msg_013Zva2CMHLNnXjNJJKqJ2EF") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "object"), "chat.completion") == 0);
    UNIT_CHECK(unit_ai_num(j, "created") == UNIT_AI_CREATED);
    UNIT_CHECK(strcmp(unit_ai_str(j, "model"),
                      "anthropic/claude-3-7-sonnet") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "choices.0.message.role"), "assistant")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "choices.0.message.content"),
                      "Hi! My name is Claude. How can I help?") == 0);
    UNIT_CHECK(unit_ai_path(j, "choices.0.message.tool_calls") == NULL);
    UNIT_CHECK(strcmp(unit_ai_str(j, "choices.0.finish_reason"), "stop")
               == 0);
    UNIT_CHECK(unit_ai_num(j, "usage.prompt_tokens") == 5943);
    UNIT_CHECK(unit_ai_num(j, "usage.completion_tokens") == 503);
    UNIT_CHECK(unit_ai_num(j, "usage.total_tokens") == 6446);
    UNIT_CHECK(unit_ai_num(j, "usage.prompt_tokens_details.cached_tokens")
               == 1800);
}


UNIT_TEST(anthropic_response_tool_use)
{
    cJSON              *j, *args;
    ngx_str_t           s;
    ngx_ai_response_t   out;

    UNIT_EQ_INT(response("anthropic_tool_use.json", &out, &j), NGX_OK);

    UNIT_EQ_STR(out.content, "I'll check the weather.");
    UNIT_EQ_STR(out.finish_reason, "tool_calls");
    UNIT_EQ_INT(out.usage.prompt_tokens, 350);
    UNIT_EQ_INT(out.usage.completion_tokens, 95);

    UNIT_EQ_INT(cJSON_GetArraySize(unit_ai_path(j,
                                   "choices.0.message.tool_calls")), 2);
    UNIT_CHECK(strcmp(unit_ai_str(j, "choices.0.message.tool_calls.0.id"),
                      "toolu_01A09q90qw90lq917835lq9") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "choices.0.message.tool_calls.0.type"),
                      "function") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                      "choices.0.message.tool_calls.0.function.name"),
                      "get_weather") == 0);

    /* arguments are a JSON text, as OpenAI sends them */
    s.data = (u_char *) unit_ai_str(j,
                 "choices.0.message.tool_calls.0.function.arguments");
    s.len = strlen((char *) s.data);
    args = unit_json(&s);
    UNIT_CHECK(strcmp(unit_ai_str(args, "location"), "San Francisco, CA")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j,
                      "choices.0.message.tool_calls.1.function.arguments"),
                      "{}") == 0);
    UNIT_CHECK(strcmp(unit_ai_str(j, "choices.0.finish_reason"),
                      "tool_calls") == 0);
    UNIT_CHECK(memmem(out.body.data, out.body.len, "I should call", 13)
               == NULL);
}


UNIT_TEST(anthropic_response_refusal_and_invalid)
{
    cJSON                  *j;
    ngx_ai_error_t          err;
    ngx_ai_response_t       out;
    ngx_ai_chat_request_t  *req;
    const char             *bad[] = {
        "{}", "<html>502</html>", "[1,2]",
        "{\"type\":\"error\",\"error\":{\"type\":\"api_error\"}}",
        "{\"content\":\"text\"}", NULL
    };
    int                     i;

    UNIT_EQ_INT(response("anthropic_refusal.json", &out, &j), NGX_OK);
    UNIT_EQ_STR(out.content, "");
    UNIT_EQ_STR(out.finish_reason, "content_filter");
    UNIT_CHECK(strcmp(unit_ai_str(j, "choices.0.message.content"), "") == 0);

    req = unit_ai_chat("{\"model\":\"a/c\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"x\"}]}");

    for (i = 0; bad[i]; i++) {
        UNIT_EQ_INT(ngx_ai_anthropic_translator.response(unit_pool(), req,
                        (u_char *) bad[i], strlen(bad[i]), &out, &err),
                    NGX_DECLINED);
        UNIT_EQ_INT(err.status, 502);
        UNIT_CHECK(strcmp(err.code, "invalid_response") == 0);
    }

    /* stop reasons */
    {
        const char  *in = "{\"id\":\"m\",\"content\":[{\"type\":\"text\","
                          "\"text\":\"abc\"}],\"stop_reason\":\"max_tokens\"}";

        UNIT_EQ_INT(ngx_ai_anthropic_translator.response(unit_pool(), req,
                        (u_char *) in, strlen(in), &out, &err), NGX_OK);
        UNIT_EQ_STR(out.finish_reason, "length");
        UNIT_EQ_INT(out.usage.known, 0);
    }
}


/* errors */

UNIT_TEST(anthropic_errors)
{
    ngx_str_t       body;
    ngx_ai_error_t  err;

    body = unit_ai_corpus("anthropic_error_rate_limit.json");
    ngx_ai_anthropic_translator.error(unit_pool(), 429, body.data, body.len,
                                      &err);
    UNIT_EQ_INT(err.status, 429);
    UNIT_CHECK(strcmp(err.type, "rate_limit_exceeded") == 0);
    UNIT_CHECK(strcmp(err.code, "rate_limit_error") == 0);
    UNIT_CONTAINS(err.message, "exceed the rate limit");

    body = unit_ai_corpus("anthropic_error_overloaded.json");
    ngx_ai_anthropic_translator.error(unit_pool(), 529, body.data, body.len,
                                      &err);
    UNIT_EQ_INT(err.status, 503);
    UNIT_CHECK(strcmp(err.type, "server_error") == 0);
    UNIT_CHECK(strcmp(err.code, "overloaded_error") == 0);
    UNIT_EQ_STR(err.message, "Overloaded");

    ngx_str_set(&body, "{\"type\":\"error\",\"error\":{\"type\":"
                "\"authentication_error\",\"message\":\"invalid x-api-key\"}}");
    ngx_ai_anthropic_translator.error(unit_pool(), 401, body.data, body.len,
                                      &err);
    UNIT_EQ_INT(err.status, 401);
    UNIT_CHECK(strcmp(err.type, "authentication_error") == 0);

    ngx_str_set(&body, "{\"type\":\"error\",\"error\":{\"type\":"
                "\"not_found_error\",\"message\":\"model: claude-x\"}}");
    ngx_ai_anthropic_translator.error(unit_pool(), 404, body.data, body.len,
                                      &err);
    UNIT_CHECK(strcmp(err.type, "not_found_error") == 0);

    /* never the raw body */
    ngx_str_set(&body, "<html><body>secret upstream page</body></html>");
    ngx_ai_anthropic_translator.error(unit_pool(), 502, body.data, body.len,
                                      &err);
    UNIT_EQ_INT(err.status, 502);
    UNIT_CHECK(strcmp(err.type, "server_error") == 0);
    UNIT_CHECK(err.code == NULL);
    UNIT_EQ_STR(err.message, "the provider answered with an error");

    ngx_ai_anthropic_translator.error(unit_pool(), 400, NULL, 0, &err);
    UNIT_CHECK(strcmp(err.type, "invalid_request_error") == 0);
    UNIT_EQ_STR(err.message, "the provider answered with an error");
}


/* streams */

static ngx_int_t
stream(const char *name, ngx_uint_t include_usage, ngx_ai_stream_t *st,
    unit_ai_chunks_t *c)
{
    ngx_int_t               rc;
    ngx_str_t               in, out;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat("{\"model\":\"anthropic/claude\",\"stream\":true,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    req->include_usage = include_usage;

    in = unit_ai_corpus(name);
    rc = unit_ai_feed(&ngx_ai_anthropic_translator, unit_pool(), req, &in,
                      in.len, st);

    out.data = st->out.data;
    out.len = st->out.len;
    unit_ai_chunks(&out, c);

    return rc;
}


UNIT_TEST(anthropic_stream_text_with_cache_usage)
{
    ngx_ai_stream_t   st;
    unit_ai_chunks_t  c;

    UNIT_EQ_INT(stream("anthropic_text.sse", 0, &st, &c), NGX_OK);
    UNIT_EQ_INT(st.done, 1);
    UNIT_EQ_INT(st.failed, 0);
    UNIT_EQ_STR(c.content, "Hello, \"world\"\n\xe2\x80\x94 caf\xc3\xa9 "
                "\xe2\x98\x95");
    UNIT_CHECK(strcmp(c.finish, "stop") == 0);
    UNIT_EQ_STR(st.finish_reason, "stop");
    UNIT_EQ_STR(st.id, "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL");
    UNIT_EQ_INT(c.usage_chunks, 0);

    /* usage is captured even when the client did not ask for it */
    UNIT_EQ_INT(st.usage.known, 1);
    UNIT_EQ_INT(st.usage.prompt_tokens, 25 + 100 + 2000);
    UNIT_EQ_INT(st.usage.cached_tokens, 2000);
    UNIT_EQ_INT(st.usage.cache_creation_tokens, 100);
    UNIT_EQ_INT(st.usage.completion_tokens, 15);

    UNIT_EQ_INT(stream("anthropic_text.sse", 1, &st, &c), NGX_OK);
    UNIT_EQ_INT(c.usage_chunks, 1);
    UNIT_EQ_INT(c.prompt, 2125);
    UNIT_EQ_INT(c.cached, 2000);
    UNIT_EQ_INT(c.completion, 15);
}


UNIT_TEST(anthropic_stream_tool_calls)
{
    cJSON             *args;
    ngx_str_t          s;
    ngx_ai_stream_t    st;
    unit_ai_chunks_t   c;

    UNIT_EQ_INT(stream("anthropic_tool.sse", 1, &st, &c), NGX_OK);
    UNIT_EQ_INT(st.done, 1);
    UNIT_EQ_STR(c.content, "Let me check the weather.");
    UNIT_EQ_INT(c.tools, 2);
    UNIT_CHECK(strcmp(c.tool_id[0], "toolu_01T1x1fJ34qAmk2tNTrN7Up6") == 0);
    UNIT_CHECK(strcmp(c.tool_name[0], "get_weather") == 0);

    s.data = c.args[0].data;
    s.len = c.args[0].len;
    args = unit_json(&s);
    UNIT_CHECK(strcmp(unit_ai_str(args, "location"), "San Francisco, CA")
               == 0);
    UNIT_CHECK(strcmp(unit_ai_str(args, "unit"), "fahrenheit") == 0);

    /* no arguments streamed: "{}", so clients can parse them */
    UNIT_CHECK(strcmp(c.tool_name[1], "get_time") == 0);
    UNIT_EQ_STR(c.args[1], "{}");

    UNIT_CHECK(strcmp(c.finish, "tool_calls") == 0);
    UNIT_EQ_INT(c.prompt, 472);
    UNIT_EQ_INT(c.completion, 89);

    /* the thinking block is not content */
    UNIT_CHECK(memmem(st.out.data, st.out.len, "The user wants", 14) == NULL);
}


UNIT_TEST(anthropic_stream_length_and_error)
{
    ngx_ai_stream_t   st;
    unit_ai_chunks_t  c;

    UNIT_EQ_INT(stream("anthropic_length.sse", 0, &st, &c), NGX_OK);
    UNIT_CHECK(strcmp(c.finish, "length") == 0);
    UNIT_EQ_INT(st.usage.completion_tokens, 4);

    UNIT_EQ_INT(stream("anthropic_error.sse", 1, &st, &c), NGX_DECLINED);
    UNIT_EQ_INT(st.failed, 1);
    UNIT_EQ_INT(st.done, 0);
    UNIT_EQ_STR(st.error, "Overloaded");
    UNIT_EQ_STR(c.content, "Par");
    UNIT_CHECK(c.finish[0] == '\0');
    UNIT_EQ_INT(c.usage_chunks, 0);
}


UNIT_TEST(anthropic_stream_exact_chunks)
{
    ngx_ai_stream_t         st;
    ngx_ai_sse_event_t      ev;
    ngx_ai_chat_request_t  *req;
    int                     i;
    const char             *events[] = {
        "message_start", "{\"type\":\"message_start\",\"message\":{\"id\":"
        "\"msg_1\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}",
        "message_delta", "{\"type\":\"message_delta\",\"delta\":"
        "{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}",
        "message_stop", "{\"type\":\"message_stop\"}",
        "message_stop", "{\"type\":\"message_stop\"}",
        NULL
    };

    req = unit_ai_chat("{\"model\":\"anthropic/claude\",\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    ngx_ai_stream_init(&st, unit_pool(), req, UNIT_AI_CREATED);

    for (i = 0; events[i]; i += 2) {
        ev.event.data = (u_char *) events[i];
        ev.event.len = strlen(events[i]);
        ev.data.data = (u_char *) events[i + 1];
        ev.data.len = strlen(events[i + 1]);

        UNIT_EQ_INT(ngx_ai_anthropic_translator.stream_event(&st, &ev),
                    NGX_OK);
    }

#define UNIT_HEAD  "data: {\"id\":\"chatcmpl-msg_1\",\"object\":"              \
                   "\"chat.completion.chunk\",\"created\":1700000000,"       \
                   "\"model\":\"anthropic/claude\","

    UNIT_EQ_STR(st.out,
        UNIT_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":"
        "\"assistant\",\"content\":\"\"},\"logprobs\":null,"
        "\"finish_reason\":null}]}\n\n"
        UNIT_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
        "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        UNIT_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
        "\"finish_reason\":\"stop\"}]}\n\n"
        UNIT_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
        "\"completion_tokens\":2,\"total_tokens\":5}}\n\n");

#undef UNIT_HEAD

    UNIT_EQ_INT(st.done, 1);
    UNIT_EQ_INT(st.events, 6);
}


/*
 * A stream whose tool_use blocks end with a stop_reason other than
 * "tool_use" (end_turn, stop_sequence, or no message_delta) finishes with
 * "tool_calls", as the whole answer does.
 */

UNIT_TEST(anthropic_stream_tool_use_end_turn)
{
    ngx_ai_stream_t         st;
    ngx_ai_sse_event_t      ev;
    ngx_ai_chat_request_t  *req;
    unit_ai_chunks_t        c;
    ngx_str_t               out;
    int                     i, k;
    const char             *events[] = {
        "message_start", "{\"type\":\"message_start\",\"message\":{\"id\":"
        "\"msg_1\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}",
        "content_block_start", "{\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\","
        "\"name\":\"get_time\",\"input\":{}}}",
        "content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}",
        "message_delta", "{\"type\":\"message_delta\",\"delta\":"
        "{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}",
        "message_stop", "{\"type\":\"message_stop\"}",
        NULL
    };

    req = unit_ai_chat("{\"model\":\"anthropic/claude\",\"stream\":true,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");

    /* k == 0: with the message_delta; k == 1: without it */

    for (k = 0; k < 2; k++) {
        ngx_ai_stream_init(&st, unit_pool(), req, UNIT_AI_CREATED);

        for (i = 0; events[i]; i += 2) {
            if (k == 1 && strcmp(events[i], "message_delta") == 0) {
                continue;
            }

            ev.event.data = (u_char *) events[i];
            ev.event.len = strlen(events[i]);
            ev.data.data = (u_char *) events[i + 1];
            ev.data.len = strlen(events[i + 1]);

            UNIT_EQ_INT(ngx_ai_anthropic_translator.stream_event(&st, &ev),
                        NGX_OK);
        }

        out.data = st.out.data;
        out.len = st.out.len;
        unit_ai_chunks(&out, &c);

        UNIT_EQ_INT(st.done, 1);
        UNIT_EQ_INT(c.tools, 1);
        UNIT_EQ_STR(c.args[0], "{}");
        UNIT_CHECK(strcmp(c.finish, "tool_calls") == 0);
        UNIT_EQ_STR(st.finish_reason, "tool_calls");
    }

    /* without tool calls, end_turn stays "stop" */

    ngx_ai_stream_init(&st, unit_pool(), req, UNIT_AI_CREATED);

    for (i = 0; events[i]; i += 2) {
        if (strcmp(events[i], "content_block_start") == 0
            || strcmp(events[i], "content_block_stop") == 0)
        {
            continue;
        }

        ev.event.data = (u_char *) events[i];
        ev.event.len = strlen(events[i]);
        ev.data.data = (u_char *) events[i + 1];
        ev.data.len = strlen(events[i + 1]);

        UNIT_EQ_INT(ngx_ai_anthropic_translator.stream_event(&st, &ev),
                    NGX_OK);
    }

    UNIT_EQ_STR(st.finish_reason, "stop");
}


UNIT_TEST(anthropic_stream_garbage_and_no_start)
{
    ngx_ai_stream_t         st;
    ngx_ai_sse_event_t      ev;
    ngx_ai_chat_request_t  *req;

    req = unit_ai_chat("{\"model\":\"anthropic/claude\",\"stream\":true,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");

    ngx_ai_stream_init(&st, unit_pool(), req, UNIT_AI_CREATED);
    ngx_str_set(&ev.event, "content_block_delta");
    ngx_str_set(&ev.data, "<html>bad gateway</html>");
    UNIT_EQ_INT(ngx_ai_anthropic_translator.stream_event(&st, &ev),
                NGX_DECLINED);
    UNIT_EQ_INT(st.failed, 1);
    UNIT_CHECK(st.error.len > 0);
    UNIT_CHECK(memmem(st.error.data, st.error.len, "html", 4) == NULL);

    /* an error event without a message */
    ngx_ai_stream_init(&st, unit_pool(), req, UNIT_AI_CREATED);
    ngx_str_set(&ev.event, "error");
    ngx_str_set(&ev.data, "{\"type\":\"error\"}");
    UNIT_EQ_INT(ngx_ai_anthropic_translator.stream_event(&st, &ev),
                NGX_DECLINED);
    UNIT_EQ_INT(st.failed, 1);
    UNIT_EQ_STR(st.error, "the provider sent an error event");

    /* content without message_start: role chunk and an id all the same */
    ngx_ai_stream_init(&st, unit_pool(), req, UNIT_AI_CREATED);
    ngx_str_set(&ev.event, "content_block_delta");
    ngx_str_set(&ev.data, "{\"type\":\"content_block_delta\",\"index\":0,"
                "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}");
    UNIT_EQ_INT(ngx_ai_anthropic_translator.stream_event(&st, &ev), NGX_OK);
    UNIT_EQ_STR(st.id, "chatcmpl-ai1700000000");
    UNIT_CONTAINS(st.out, "\"role\":\"assistant\"");
    UNIT_CONTAINS(st.out, "{\"content\":\"x\"}");
}


UNIT_TEST(anthropic_stream_every_split)
{
    unit_ai_every_split(&ngx_ai_anthropic_translator, "anthropic_text.sse");
    unit_ai_every_split(&ngx_ai_anthropic_translator, "anthropic_tool.sse");
    unit_ai_every_split(&ngx_ai_anthropic_translator, "anthropic_error.sse");
    unit_ai_every_split(&ngx_ai_anthropic_translator, "anthropic_length.sse");
}
