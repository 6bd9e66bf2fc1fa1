
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the JSON decoder (ngx_ai_gateway_json_decode.c).
 */


#include "unit.h"
#include <limits.h>
#include <math.h>


static cJSON *
decode(ngx_pool_t *pool, const char *text, ngx_uint_t depth, ngx_uint_t *nul,
    ngx_uint_t *status)
{
    return ngx_ai_json_track(pool,
                             ngx_ai_json_decode(pool, (u_char *) text,
                                                strlen(text), depth, nul,
                                                status));
}


UNIT_TEST(json_decode_accepts_rfc8259)
{
    static const char  *good[] = {
        "{}", "[]", "0", "-0", "1", "-1", "0.5", "-0.5e-3", "1E+2", "1e2",
        "\"\"", "\"a\"", "true", "false", "null", " \t\r\n[ 1 , 2 ]\n ",
        "{\"a\":{\"b\":[{}]}}", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\"",
        "\"\\ud83d\\ude00\"", "{\"a\":1,\"a\":2}", "\xef\xbb\xbf{\"b\":1}",
        "12345678901234567890", "1e400", "\"\xff raw bytes \x01\""
    };

    ngx_uint_t   i, nul, status;
    ngx_pool_t  *pool;

    pool = unit_pool();

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (decode(pool, good[i], 64, &nul, &status) == NULL) {
            unit_fail(__FILE__, __LINE__, "refused %s (status %d)",
                      good[i], (int) status);
        }

        UNIT_EQ_INT(status, NGX_AI_JSON_DECODED);
        UNIT_EQ_INT(nul, 0);
    }
}


UNIT_TEST(json_decode_refuses_what_rfc8259_refuses)
{
    static const char  *bad[] = {
        "", " ", "{", "[", "]", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}",
        "{\"a\":1,}", "{a:1}", "{'a':1}", "01", "1.", ".5", "+1", "-",
        "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity", "tru", "nul",
        "True", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"",
        "\"\\udc00\"", "\"\\ud800\"", "\"\\ud800\\u0041\"", "[1] [2]",
        "{} x", "\x01[]", "[1\x0b]", "\"\\", "[\"a\" \"b\"]", "{\"a\" 1}",
        "\xef\xbb\xbf"
    };

    ngx_uint_t   i, nul, status;
    ngx_pool_t  *pool;

    pool = unit_pool();

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (decode(pool, bad[i], 64, &nul, &status) != NULL) {
            unit_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
        }

        UNIT_EQ_INT(status, NGX_AI_JSON_MALFORMED);
    }
}


UNIT_TEST(json_decode_values_as_cjson_has_them)
{
    cJSON       *root, *a, *item;
    ngx_uint_t   nul, status;
    ngx_pool_t  *pool;

    pool = unit_pool();

    root = decode(pool, "{\"n\":[0,-0,42,-7,2.5,1e3,2147483648,-2147483649,"
                  "123456789012345,9007199254740993,1e400],"
                  "\"s\":\"caf\\u00e9 \\ud83d\\ude00\",\"t\":true,"
                  "\"f\":false,\"z\":null,\"k\":\"v\",\"k\":\"w\"}",
                  64, &nul, &status);
    UNIT_CHECK(cJSON_IsObject(root));

    a = cJSON_GetObjectItemCaseSensitive(root, "n");
    UNIT_EQ_INT(cJSON_GetArraySize(a), 11);

    item = cJSON_GetArrayItem(a, 0);
    UNIT_CHECK(cJSON_IsNumber(item) && item->valuedouble == 0);
    UNIT_CHECK(signbit(cJSON_GetArrayItem(a, 1)->valuedouble));
    UNIT_EQ_INT(cJSON_GetArrayItem(a, 2)->valueint, 42);
    UNIT_EQ_INT(cJSON_GetArrayItem(a, 3)->valueint, -7);
    UNIT_CHECK(cJSON_GetArrayItem(a, 4)->valuedouble == 2.5);
    UNIT_EQ_INT(cJSON_GetArrayItem(a, 4)->valueint, 2);
    UNIT_EQ_INT(cJSON_GetArrayItem(a, 5)->valueint, 1000);
    UNIT_EQ_INT(cJSON_GetArrayItem(a, 6)->valueint, INT_MAX);
    UNIT_EQ_INT(cJSON_GetArrayItem(a, 7)->valueint, INT_MIN);
    UNIT_CHECK(cJSON_GetArrayItem(a, 8)->valuedouble == 123456789012345.0);
    UNIT_CHECK(cJSON_GetArrayItem(a, 9)->valuedouble
               == strtod("9007199254740993", NULL));
    UNIT_CHECK(isinf(cJSON_GetArrayItem(a, 10)->valuedouble));

    item = cJSON_GetObjectItemCaseSensitive(root, "s");
    UNIT_CHECK(cJSON_IsString(item));
    UNIT_CHECK(strcmp(item->valuestring, "caf\xc3\xa9 \xf0\x9f\x98\x80") == 0);

    UNIT_CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "t")));
    UNIT_CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(root, "f")));
    UNIT_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "z")));

    /* duplicates kept in order, as cJSON keeps them: the first is found */

    item = cJSON_GetObjectItemCaseSensitive(root, "k");
    UNIT_CHECK(strcmp(item->valuestring, "v") == 0);
    UNIT_CHECK(strcmp(item->next->valuestring, "w") == 0);

    /* cJSON's list invariant: the first child's prev is the last */

    UNIT_CHECK(root->child->prev == item->next);
    UNIT_CHECK(item->next->next == NULL);
}


UNIT_TEST(json_decode_tree_works_with_cjson_functions)
{
    char        *printed;
    cJSON       *root;
    ngx_uint_t   nul, status;
    ngx_pool_t  *pool;

    pool = unit_pool();

    root = decode(pool, "{\"a\":[1,2],\"b\":\"x\"}", 64, &nul, &status);
    UNIT_CHECK(root != NULL);

    /* appended at the end through the first child's prev */

    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(root, "a"),
                         cJSON_CreateNumber(3));
    cJSON_AddStringToObject(root, "c", "y");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "b");

    printed = cJSON_PrintUnformatted(root);
    UNIT_CHECK(printed && strcmp(printed, "{\"a\":[1,2,3],\"c\":\"y\"}") == 0);
    cJSON_free(printed);
}


UNIT_TEST(json_decode_nesting_bound)
{
    char         text[2 * 70 + 1];
    ngx_uint_t   i, nul, status;
    ngx_pool_t  *pool;

    pool = unit_pool();

    /* 64 levels pass a bound of 64; 65 do not */

    for (i = 0; i < 64; i++) {
        text[i] = '[';
        text[64 + i] = ']';
    }

    text[128] = '\0';

    UNIT_CHECK(decode(pool, text, 64, &nul, &status) != NULL);

    for (i = 0; i < 65; i++) {
        text[i] = '[';
        text[65 + i] = ']';
    }

    text[130] = '\0';

    UNIT_CHECK(decode(pool, text, 64, &nul, &status) == NULL);
    UNIT_EQ_INT(status, NGX_AI_JSON_TOO_DEEP);

    UNIT_CHECK(decode(pool, "{\"a\":{\"b\":{}}}", 2, &nul, &status) == NULL);
    UNIT_EQ_INT(status, NGX_AI_JSON_TOO_DEEP);
}


UNIT_TEST(json_decode_reports_nul)
{
    cJSON       *root;
    ngx_uint_t   nul, status;
    ngx_pool_t  *pool;
    static u_char  raw[] = "[\"a\0b\"]";

    pool = unit_pool();

    root = decode(pool, "[\"a\\u0000b\"]", 64, &nul, &status);
    UNIT_CHECK(root != NULL);
    UNIT_EQ_INT(nul, 1);

    root = ngx_ai_json_track(pool, ngx_ai_json_decode(pool, raw,
                                                      sizeof(raw) - 1, 64,
                                                      &nul, &status));
    UNIT_CHECK(root != NULL);
    UNIT_EQ_INT(nul, 1);

    /* a NUL outside a string is no whitespace */

    root = ngx_ai_json_track(pool, ngx_ai_json_decode(pool,
                                                      (u_char *) "[1]\0", 4,
                                                      64, &nul, &status));
    UNIT_CHECK(root == NULL);
    UNIT_EQ_INT(status, NGX_AI_JSON_MALFORMED);
}


UNIT_TEST(json_decode_heap_trees_free_cleanly)
{
    cJSON       *root;
    ngx_uint_t   i, nul, status;

    static const char  *texts[] = {
        "{\"a\":[1,\"x\",{\"b\":null}],\"c\":\"\\u00e9\"}",
        "{\"a\":[1,\"x\",{\"b\":nul}]}", "{\"a\":\"\\u12\"}", "[1,2,"
    };

    /* no pool: the caller frees (failures free their partial trees) */

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        root = ngx_ai_json_decode(NULL, (u_char *) texts[i],
                                  strlen(texts[i]), 64, &nul, &status);
        UNIT_EQ_INT(root != NULL, i == 0);
        cJSON_Delete(root);
    }
}


UNIT_TEST(json_pool_tree_frees_the_heap_items_added_to_it)
{
    cJSON       *root, *arr, *heap;
    ngx_uint_t   nul, status;
    ngx_pool_t  *pool;

    /* its own pool, destroyed here: ASan's leak check sees the rest */

    pool = ngx_create_pool(4096, NULL);
    UNIT_CHECK(pool != NULL);

    root = decode(pool, "{\"a\":[1,{\"b\":\"c\"}],\"d\":\"e\"}", 64, &nul,
                  &status);
    UNIT_CHECK(root != NULL);

    /* items malloc()ed later, in and under pool items, and a heap key */

    arr = cJSON_GetObjectItemCaseSensitive(root, "a");
    cJSON_AddItemToArray(arr, cJSON_CreateString("heap string"));

    heap = cJSON_CreateObject();
    cJSON_AddItemToObject(heap, "n", cJSON_CreateNumber(1));
    cJSON_AddItemToArray(cJSON_GetArrayItem(arr, 1), cJSON_CreateTrue());
    cJSON_AddItemToObject(root, "heap", heap);

    /* a pool item moved under a heap item */

    cJSON_AddItemToObject(heap, "d",
                          cJSON_DetachItemFromObject(root, "d"));

    /* a pool string replaced by a heap one */

    cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(
                             cJSON_GetArrayItem(arr, 1), "b"),
                         "a longer heap string");

    ngx_destroy_pool(pool);
}


/* an escape, a raw NUL and the end at every offset of the 16-byte scan */

UNIT_TEST(json_decode_specials_at_every_offset)
{
    char         text[128], want[128];
    cJSON       *root;
    ngx_uint_t   i, j, nul, status;
    ngx_pool_t  *pool;

    pool = unit_pool();

    for (i = 0; i < 40; i++) {
        for (j = 0; j < 3; j++) {
            text[0] = '"';
            ngx_memset(text + 1, 'a', i);
            ngx_memset(want, 'a', i);

            if (j == 0) {
                ngx_memcpy(text + 1 + i, "\\nbb\"", 6);
                ngx_memcpy(want + i, "\nbb", 3);
                want[i + 3] = '\0';

            } else if (j == 1) {
                ngx_memcpy(text + 1 + i, "\\\"\"", 4);
                want[i] = '"';
                want[i + 1] = '\0';

            } else {
                ngx_memcpy(text + 1 + i, "\"", 2);
                want[i] = '\0';
            }

            root = decode(pool, text, 64, &nul, &status);

            if (root == NULL || !cJSON_IsString(root)
                || strcmp(root->valuestring, want) != 0)
            {
                unit_fail(__FILE__, __LINE__, "offset %d, case %d", (int) i,
                          (int) j);
            }

            UNIT_EQ_INT(nul, 0);

            /* the splice's scan finds the same closing quote */

            UNIT_CHECK(ngx_ai_json_string_close((u_char *) text + 1,
                                                (u_char *) text
                                                + strlen(text))
                       == (u_char *) text + strlen(text) - 1);
        }

        /* a raw NUL at offset i */

        text[0] = '"';
        ngx_memset(text + 1, 'a', 40);
        text[1 + i] = '\0';
        text[41] = '"';

        root = ngx_ai_json_track(pool, ngx_ai_json_decode(pool,
                                        (u_char *) text, 42, 64, &nul,
                                        &status));
        UNIT_CHECK(root != NULL);
        UNIT_EQ_INT(nul, 1);
        UNIT_EQ_INT(strlen(root->valuestring), i);
    }
}
