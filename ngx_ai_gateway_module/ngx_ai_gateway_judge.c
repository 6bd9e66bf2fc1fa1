
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The words of fusion: the judge's prompts (best-of, merge), the debate
 * prompt a member revises with, reading the judge's verdict, and the
 * normal form of an answer for a vote.  Pure: pools and buffers only.
 *
 * Judge hygiene (see docs/fusion.md): members are shown as "Source 1..N"
 * in an order the caller shuffles, the rubric puts correctness before
 * length and style, and the judge runs at temperature 0.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define NGX_AI_VERDICT_MAX_TOKENS   20


static const char  ngx_ai_best_of_rubric[] =
    "You are the judge of several answers that AI assistants gave to the "
    "same conversation. The answers are labelled Source 1 to Source %N; "
    "their order is random and says nothing about their quality, and you "
    "must not guess or favour which assistant wrote which.\n"
    "Rank them by these criteria, in this order: (1) correctness: facts, "
    "reasoning and any result must be right; work a checkable problem out "
    "yourself before judging; (2) faithfulness to what the user asked; "
    "(3) completeness; (4) clarity. Length is not a merit: a shorter "
    "answer that is right beats a longer one that is not.\n"
    "Reply with JSON only, exactly {\"winner\": N} where N is the number "
    "of the best source, and nothing else.";

static const char  ngx_ai_merge_rubric[] =
    "You are given several answers that AI assistants gave to the same "
    "conversation, labelled Source 1 to Source %N in a random order. Write "
    "the single best reply to the user's last message.\n"
    "Check the answers critically: some may be wrong or biased. Keep what "
    "is correct, fix or drop what is wrong, and combine the strongest "
    "parts; correctness comes before length and style. Do not copy an "
    "answer blindly, and do not mention the sources, the other assistants "
    "or this instruction: reply to the user directly, with the answer "
    "only.";

static const char  ngx_ai_debate_prompt[] =
    "Other assistants answered the same request. Their answers, in a "
    "random order:\n\n%S\n"
    "Use them as additional information: check your own previous answer "
    "against them, correct any mistake you find, in yours or theirs, and "
    "give your best final answer to the original request. Reply with the "
    "answer only, without mentioning the other assistants.";


static ngx_int_t ngx_ai_judge_conversation(ngx_ai_buf_t *b, cJSON *messages);
static ngx_int_t ngx_ai_judge_sources(ngx_ai_buf_t *b, ngx_str_t *answers,
    ngx_uint_t n);
static ngx_int_t ngx_ai_judge_expand(ngx_ai_buf_t *b, const char *tmpl,
    ngx_uint_t n, ngx_str_t *s);
static ngx_int_t ngx_ai_judge_finish(ngx_pool_t *pool, cJSON *root,
    ngx_ai_chat_request_t *orig, ngx_ai_chat_request_t *out, size_t bytes);
static cJSON *ngx_ai_judge_message(const char *role, ngx_ai_buf_t *text);


/*
 * The judge's request: a system rubric and one user message holding the
 * conversation and the answers.  mode is NGX_AI_FUSION_BEST_OF (a small
 * verdict) or NGX_AI_FUSION_MERGE (the final answer, streamed when the
 * client streams).  out->model is left for the caller to set.
 */

ngx_int_t
ngx_ai_judge_request(ngx_pool_t *pool, ngx_ai_chat_request_t *orig,
    ngx_uint_t mode, ngx_str_t *answers, ngx_uint_t n,
    ngx_ai_chat_request_t *out)
{
    cJSON         *root, *messages, *msg;
    ngx_ai_buf_t   sys, user;

    if (ngx_ai_buf_init(&sys, pool, 1024) != NGX_OK
        || ngx_ai_buf_init(&user, pool, 4096) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_ai_judge_expand(&sys, mode == NGX_AI_FUSION_BEST_OF
                                  ? ngx_ai_best_of_rubric
                                  : ngx_ai_merge_rubric, n, NULL)
           != NGX_OK
        || ngx_ai_buf_append_str(&user, "## Conversation\n\n") != NGX_OK
        || ngx_ai_judge_conversation(&user,
               cJSON_GetObjectItemCaseSensitive(orig->json, "messages"))
           != NGX_OK
        || ngx_ai_buf_append_str(&user, "\n## Answers\n\n") != NGX_OK
        || ngx_ai_judge_sources(&user, answers, n) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (mode == NGX_AI_FUSION_BEST_OF
        && ngx_ai_buf_append_str(&user, "\nWhich source is best? Reply "
                                        "with {\"winner\": N} only.")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    root = ngx_ai_json_track(pool, cJSON_CreateObject());
    if (root == NULL) {
        return NGX_ERROR;
    }

    messages = cJSON_AddArrayToObject(root, "messages");
    if (messages == NULL) {
        return NGX_ERROR;
    }

    msg = ngx_ai_judge_message("system", &sys);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(messages, msg);

    msg = ngx_ai_judge_message("user", &user);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(messages, msg);

    if (cJSON_AddNumberToObject(root, "temperature", 0) == NULL) {
        return NGX_ERROR;
    }

    if (ngx_ai_judge_finish(pool, root, orig, out, sys.len + user.len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->n = 1;                     /* the judge's request has no "n" */

    if (mode == NGX_AI_FUSION_BEST_OF) {
        out->max_tokens = NGX_AI_VERDICT_MAX_TOKENS;
        out->stream = 0;
        out->include_usage = 0;

        if (cJSON_AddNumberToObject(root, "max_tokens",
                                    NGX_AI_VERDICT_MAX_TOKENS)
            == NULL)
        {
            return NGX_ERROR;
        }

    } else if (orig->max_tokens > 0) {
        if (cJSON_AddNumberToObject(root, "max_tokens",
                                    (double) orig->max_tokens)
            == NULL)
        {
            return NGX_ERROR;
        }
    }

    if (out->stream) {
        if (cJSON_AddTrueToObject(root, "stream") == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A debate round for one member: its conversation, its own answer as the
 * assistant's turn, then the others' answers and the request to revise.
 */

ngx_int_t
ngx_ai_debate_request(ngx_pool_t *pool, ngx_ai_chat_request_t *orig,
    ngx_str_t *own, ngx_str_t *others, ngx_uint_t n,
    ngx_ai_chat_request_t *out)
{
    cJSON         *root, *messages, *msg;
    ngx_str_t      sources;
    ngx_ai_buf_t   b, text;

    root = ngx_ai_json_track(pool, cJSON_Duplicate(orig->json, 1));
    if (root == NULL) {
        return NGX_ERROR;
    }

    cJSON_DeleteItemFromObjectCaseSensitive(root, "model");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "models");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "stream");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "stream_options");

    messages = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(messages)) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_init(&b, pool, own->len + 16) != NGX_OK
        || ngx_ai_buf_append(&b, own->data, own->len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    msg = ngx_ai_judge_message("assistant", &b);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(messages, msg);

    if (ngx_ai_buf_init(&b, pool, 4096) != NGX_OK
        || ngx_ai_judge_sources(&b, others, n) != NGX_OK
        || ngx_ai_buf_init(&text, pool, b.len + sizeof(ngx_ai_debate_prompt))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    sources.data = b.data;
    sources.len = b.len;

    if (ngx_ai_judge_expand(&text, ngx_ai_debate_prompt, n, &sources)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    msg = ngx_ai_judge_message("user", &text);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToArray(messages, msg);

    if (ngx_ai_judge_finish(pool, root, orig, out,
                            orig->prompt_bytes + own->len + text.len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->max_tokens = orig->max_tokens;
    out->stream = 0;
    out->include_usage = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_ai_judge_finish(ngx_pool_t *pool, cJSON *root,
    ngx_ai_chat_request_t *orig, ngx_ai_chat_request_t *out, size_t bytes)
{
    *out = *orig;

    out->json = root;
    ngx_str_null(&out->raw);
    out->models = NULL;
    out->has_tools = 0;
    out->prompt_bytes = bytes;

    /* the placeholder the translators replace with the upstream model */

    if (cJSON_AddStringToObject(root, "model", "") == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static cJSON *
ngx_ai_judge_message(const char *role, ngx_ai_buf_t *text)
{
    cJSON  *msg, *content;

    msg = cJSON_CreateObject();
    if (msg == NULL) {
        return NULL;
    }

    content = cJSON_CreateString("");

    if (content == NULL
        || cJSON_AddStringToObject(msg, "role", role) == NULL)
    {
        cJSON_Delete(content);
        cJSON_Delete(msg);
        return NULL;
    }

    /* the text may hold any byte but NUL: set it without a copy of a
     * copy */

    cJSON_free(content->valuestring);
    content->valuestring = cJSON_malloc(text->len + 1);

    if (content->valuestring == NULL) {
        cJSON_Delete(content);
        cJSON_Delete(msg);
        return NULL;
    }

    ngx_memcpy(content->valuestring, text->data, text->len);
    content->valuestring[text->len] = '\0';

    cJSON_AddItemToObject(msg, "content", content);

    return msg;
}


/* "role: text" per message, text parts only */

static ngx_int_t
ngx_ai_judge_conversation(ngx_ai_buf_t *b, cJSON *messages)
{
    cJSON         *msg, *role, *content;
    ngx_ai_buf_t   text;

    if (ngx_ai_buf_init(&text, b->pool, 256) != NGX_OK) {
        return NGX_ERROR;
    }

    cJSON_ArrayForEach(msg, messages) {
        role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        content = cJSON_GetObjectItemCaseSensitive(msg, "content");

        if (!cJSON_IsString(role) || content == NULL
            || cJSON_IsNull(content))
        {
            continue;
        }

        text.len = 0;

        if (ngx_ai_content_text(content, &text, " ") != NGX_OK
            || ngx_ai_buf_append_str(b, role->valuestring) != NGX_OK
            || ngx_ai_buf_append_str(b, ": ") != NGX_OK
            || ngx_ai_buf_append(b, text.data, text.len) != NGX_OK
            || ngx_ai_buf_append_str(b, "\n\n") != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_ai_judge_sources(ngx_ai_buf_t *b, ngx_str_t *answers, ngx_uint_t n)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (ngx_ai_buf_append_str(b, "### Source ") != NGX_OK
            || ngx_ai_buf_append_uint(b, i + 1) != NGX_OK
            || ngx_ai_buf_append_str(b, "\n\n") != NGX_OK
            || ngx_ai_buf_append(b, answers[i].data, answers[i].len)
               != NGX_OK
            || ngx_ai_buf_append_str(b, "\n\n") != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a template with %N (the number of sources) and %S (a string) */

static ngx_int_t
ngx_ai_judge_expand(ngx_ai_buf_t *b, const char *tmpl, ngx_uint_t n,
    ngx_str_t *s)
{
    const char  *p;

    for (p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1] == 'N') {
            if (ngx_ai_buf_append_uint(b, n) != NGX_OK) {
                return NGX_ERROR;
            }

            p++;
            continue;
        }

        if (p[0] == '%' && p[1] == 'S' && s) {
            if (ngx_ai_buf_append(b, s->data, s->len) != NGX_OK) {
                return NGX_ERROR;
            }

            p++;
            continue;
        }

        if (ngx_ai_buf_append(b, p, 1) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The judge's verdict: {"winner": N}, tolerating what judges add around
 * it (code fences, "Source N", a sentence).  1..n, or 0 when it names no
 * source or names more than one.
 */

ngx_uint_t
ngx_ai_judge_verdict(const u_char *text, size_t len, ngx_uint_t n)
{
    cJSON       *root, *winner;
    ngx_uint_t   i, v, found, digits;

    root = cJSON_ParseWithLength((const char *) text, len);

    if (cJSON_IsObject(root)) {
        winner = cJSON_GetObjectItemCaseSensitive(root, "winner");
        v = 0;

        if (cJSON_IsNumber(winner) && winner->valuedouble >= 1
            && winner->valuedouble <= (double) n
            && winner->valuedouble == (double) (ngx_uint_t)
                                          winner->valuedouble)
        {
            v = (ngx_uint_t) winner->valuedouble;

        } else if (cJSON_IsString(winner)) {
            v = ngx_ai_judge_verdict((u_char *) winner->valuestring,
                                     ngx_strlen(winner->valuestring), n);
        }

        cJSON_Delete(root);
        return v;
    }

    cJSON_Delete(root);

    /* free text: exactly one distinct number in 1..n */

    found = 0;

    for (i = 0; i < len; /* void */) {
        if (text[i] < '0' || text[i] > '9') {
            i++;
            continue;
        }

        v = 0;
        digits = 0;

        while (i < len && text[i] >= '0' && text[i] <= '9') {
            if (++digits <= 6) {
                v = v * 10 + (text[i] - '0');
            }

            i++;
        }

        if (digits > 6 || v < 1 || v > n) {
            return 0;
        }

        if (found && found != v) {
            return 0;
        }

        found = v;
    }

    return found;
}


/*
 * The normal form of an answer for a vote: its final number if it has
 * one (so "The answer is 42." and "42" agree), else its final non-empty
 * line; trimmed, case-folded, without trailing punctuation.
 */

ngx_int_t
ngx_ai_vote_key(ngx_pool_t *pool, ngx_str_t *answer, ngx_str_t *key)
{
    u_char  *p, *start, *end, *last, *d;
    size_t   i;

    start = answer->data;
    last = answer->data + answer->len;

    /* the final number: digits with an inner '.' or ',' */

    for (p = last; p > start; p--) {
        if (p[-1] >= '0' && p[-1] <= '9') {
            break;
        }
    }

    if (p > start) {
        end = p;

        while (p > start
               && ((p[-1] >= '0' && p[-1] <= '9')
                   || ((p[-1] == '.' || p[-1] == ',') && p - 1 > start
                       && p[-2] >= '0' && p[-2] <= '9')))
        {
            p--;
        }

        if (p > start && p[-1] == '-') {
            p--;
        }

        start = p;
        last = end;

    } else {
        /* the final non-empty line */

        while (last > start && (last[-1] == '\n' || last[-1] == '\r'
                                || last[-1] == ' ' || last[-1] == '\t'))
        {
            last--;
        }

        for (p = last; p > start && p[-1] != '\n'; p--) { /* void */ }

        start = p;
    }

    while (start < last && (*start == ' ' || *start == '\t'
                            || *start == '*' || *start == '"'
                            || *start == ',' || *start == '\r'))
    {
        start++;
    }

    while (last > start && (last[-1] == ' ' || last[-1] == '\t'
                            || last[-1] == '.' || last[-1] == '!'
                            || last[-1] == '*' || last[-1] == '"'
                            || last[-1] == ',' || last[-1] == '\r'))
    {
        last--;
    }

    key->data = ngx_pnalloc(pool, (last - start) ? (last - start) : 1);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    d = key->data;

    for (i = 0; i < (size_t) (last - start); i++) {
        if (start[i] == ',') {
            continue;                       /* 1,000 and 1000 agree */
        }

        *d++ = ngx_tolower(start[i]);
    }

    key->len = d - key->data;

    return NGX_OK;
}
