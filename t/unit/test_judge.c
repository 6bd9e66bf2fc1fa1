
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: fusion's judge prompts, verdicts and vote keys.
 */


#include "unit.h"


static ngx_ai_chat_request_t *
judge_orig(void)
{
    static ngx_ai_chat_request_t  req;
    ngx_ai_error_t                err;
    const char                   *body =
        "{\"model\":\"fusion/x\",\"max_tokens\":300,\"messages\":["
        "{\"role\":\"system\",\"content\":\"be exact\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"What is 6*7?\"}]}]}";

    UNIT_EQ_INT(ngx_ai_chat_request_parse(unit_pool(), (u_char *) body,
                                          strlen(body), &req, &err), NGX_OK);
    return &req;
}


UNIT_TEST(judge_best_of_prompt)
{
    ngx_ai_chat_request_t  out;
    ngx_str_t              answers[2], sys, user;
    cJSON                 *msgs;

    ngx_str_set(&answers[0], "It is 42.");
    ngx_str_set(&answers[1], "Forty-one");

    UNIT_EQ_INT(ngx_ai_judge_request(unit_pool(), judge_orig(),
                                     NGX_AI_FUSION_BEST_OF, answers, 2, &out),
                NGX_OK);
    UNIT_EQ_INT(out.max_tokens, 20);
    UNIT_EQ_INT(out.stream, 0);

    msgs = cJSON_GetObjectItem(out.json, "messages");
    UNIT_EQ_INT(cJSON_GetArraySize(msgs), 2);

    sys.data = (u_char *) cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0),
                                             "content")->valuestring;
    sys.len = strlen((char *) sys.data);
    user.data = (u_char *) cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1),
                                              "content")->valuestring;
    user.len = strlen((char *) user.data);

    UNIT_CONTAINS(sys, "Source 1 to Source 2");
    UNIT_CONTAINS(sys, "Length is not a merit");
    UNIT_CONTAINS(sys, "{\"winner\": N}");
    UNIT_CONTAINS(user, "user: What is 6*7?");
    UNIT_CONTAINS(user, "system: be exact");
    UNIT_CONTAINS(user, "### Source 1\n\nIt is 42.");
    UNIT_CONTAINS(user, "### Source 2\n\nForty-one");
    UNIT_CHECK(cJSON_GetObjectItem(out.json, "temperature")->valuedouble == 0);
}


UNIT_TEST(judge_merge_prompt_keeps_stream_and_length)
{
    ngx_ai_chat_request_t  *orig, out;
    ngx_str_t               answers[3];

    orig = judge_orig();
    orig->stream = 1;
    ngx_str_set(&answers[0], "a");
    ngx_str_set(&answers[1], "b");
    ngx_str_set(&answers[2], "c");

    UNIT_EQ_INT(ngx_ai_judge_request(unit_pool(), orig, NGX_AI_FUSION_MERGE,
                                     answers, 3, &out), NGX_OK);
    UNIT_EQ_INT(out.stream, 1);
    UNIT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(out.json, "stream")));
    UNIT_EQ_INT(cJSON_GetObjectItem(out.json, "max_tokens")->valueint, 300);
}


UNIT_TEST(judge_debate_prompt)
{
    ngx_ai_chat_request_t  out;
    ngx_str_t              own, others[2], last;
    cJSON                 *msgs, *m;

    ngx_str_set(&own, "my answer 41");
    ngx_str_set(&others[0], "other says 42");
    ngx_str_set(&others[1], "third says 42");

    UNIT_EQ_INT(ngx_ai_debate_request(unit_pool(), judge_orig(), &own, others,
                                      2, &out), NGX_OK);
    msgs = cJSON_GetObjectItem(out.json, "messages");
    UNIT_EQ_INT(cJSON_GetArraySize(msgs), 4);

    m = cJSON_GetArrayItem(msgs, 2);
    UNIT_CHECK(strcmp(cJSON_GetObjectItem(m, "role")->valuestring,
                      "assistant") == 0);
    m = cJSON_GetArrayItem(msgs, 3);
    last.data = (u_char *) cJSON_GetObjectItem(m, "content")->valuestring;
    last.len = strlen((char *) last.data);
    UNIT_CONTAINS(last, "### Source 2\n\nthird says 42");
    UNIT_CONTAINS(last, "give your best final answer");

    /* the client's own tree is untouched */
    UNIT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(judge_orig()->json,
                                                       "messages")), 2);
}


UNIT_TEST(judge_verdicts)
{
    UNIT_EQ_INT(ngx_ai_judge_verdict((u_char *) "{\"winner\": 2}", 13, 3), 2);
    UNIT_EQ_INT(ngx_ai_judge_verdict((u_char *) "{\"winner\":\"Source 3\"}",
                                     21, 3), 3);
    UNIT_EQ_INT(ngx_ai_judge_verdict((u_char *) "```json\n{\"winner\": 1}\n```",
                                     24, 2), 1);
    UNIT_EQ_INT(ngx_ai_judge_verdict((u_char *) "Source 2 is best", 16, 2), 2);
    UNIT_EQ_INT(ngx_ai_judge_verdict((u_char *) "{\"winner\": 4}", 13, 3), 0);
    UNIT_EQ_INT(ngx_ai_judge_verdict((u_char *) "1 or 2", 6, 2), 0);
    UNIT_EQ_INT(ngx_ai_judge_verdict((u_char *) "none", 4, 2), 0);
    UNIT_EQ_INT(ngx_ai_judge_verdict((u_char *) "{\"winner\": 1.5}", 15, 2),
                0);
    UNIT_EQ_INT(ngx_ai_judge_verdict((u_char *) "99999999999", 11, 2), 0);
}


UNIT_TEST(vote_keys)
{
    ngx_str_t  a, k;

    ngx_str_set(&a, "Let me think. 6*7 = 42.");
    UNIT_EQ_INT(ngx_ai_vote_key(unit_pool(), &a, &k), NGX_OK);
    UNIT_EQ_STR(k, "42");

    ngx_str_set(&a, "The total is 1,000");
    ngx_ai_vote_key(unit_pool(), &a, &k);
    UNIT_EQ_STR(k, "1000");

    ngx_str_set(&a, "It is -3.5!");
    ngx_ai_vote_key(unit_pool(), &a, &k);
    UNIT_EQ_STR(k, "-3.5");

    ngx_str_set(&a, "Reasoning...\n\n  **Paris**.  \n");
    ngx_ai_vote_key(unit_pool(), &a, &k);
    UNIT_EQ_STR(k, "paris");

    ngx_str_set(&a, "");
    UNIT_EQ_INT(ngx_ai_vote_key(unit_pool(), &a, &k), NGX_OK);
    UNIT_EQ_INT(k.len, 0);
}
