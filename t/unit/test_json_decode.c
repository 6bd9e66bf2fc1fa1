
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the JSON decoder (ngx_ai_gateway_json_decode.c).
 */


#include "unit.h"
#include <limits.h>
#include <math.h>


static cJSON *
decode(ngx_pool_t *pool, const char *text, ngx_uint_t depth,
    ngx_ai_json_flags_t *flags, ngx_uint_t *status)
{
    return ngx_ai_json_track(pool,
                             ngx_ai_json_decode(pool, (u_char *) text,
                                                strlen(text), depth, flags,
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

    ngx_uint_t            i, status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

    pool = unit_pool();

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (decode(pool, good[i], 64, &flags, &status) == NULL) {
            unit_fail(__FILE__, __LINE__, "refused %s (status %d)",
                      good[i], (int) status);
        }

        UNIT_EQ_INT(status, NGX_AI_JSON_DECODED);
        UNIT_EQ_INT(flags.nul, 0);
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

    ngx_uint_t            i, status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

    pool = unit_pool();

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (decode(pool, bad[i], 64, &flags, &status) != NULL) {
            unit_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
        }

        UNIT_EQ_INT(status, NGX_AI_JSON_MALFORMED);
    }
}


UNIT_TEST(json_decode_values_as_cjson_has_them)
{
    cJSON                *root, *a, *item;
    ngx_uint_t            status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

    pool = unit_pool();

    root = decode(pool, "{\"n\":[0,-0,42,-7,2.5,1e3,2147483648,-2147483649,"
                  "123456789012345,9007199254740993,1e400],"
                  "\"s\":\"caf\\u00e9 \\ud83d\\ude00\",\"t\":true,"
                  "\"f\":false,\"z\":null,\"k\":\"v\",\"k\":\"w\"}",
                  64, &flags, &status);
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
    char                 *printed;
    cJSON                *root;
    ngx_uint_t            status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

    pool = unit_pool();

    root = decode(pool, "{\"a\":[1,2],\"b\":\"x\"}", 64, &flags, &status);
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
    char                  text[2 * 70 + 1];
    ngx_uint_t            i, status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

    pool = unit_pool();

    /* 64 levels pass a bound of 64; 65 do not */

    for (i = 0; i < 64; i++) {
        text[i] = '[';
        text[64 + i] = ']';
    }

    text[128] = '\0';

    UNIT_CHECK(decode(pool, text, 64, &flags, &status) != NULL);

    for (i = 0; i < 65; i++) {
        text[i] = '[';
        text[65 + i] = ']';
    }

    text[130] = '\0';

    UNIT_CHECK(decode(pool, text, 64, &flags, &status) == NULL);
    UNIT_EQ_INT(status, NGX_AI_JSON_TOO_DEEP);

    UNIT_CHECK(decode(pool, "{\"a\":{\"b\":{}}}", 2, &flags, &status)
               == NULL);
    UNIT_EQ_INT(status, NGX_AI_JSON_TOO_DEEP);
}


UNIT_TEST(json_decode_reports_nul)
{
    cJSON                *root;
    ngx_uint_t            status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;
    static u_char         raw[] = "[\"a\0b\"]";

    pool = unit_pool();

    root = decode(pool, "[\"a\\u0000b\"]", 64, &flags, &status);
    UNIT_CHECK(root != NULL);
    UNIT_EQ_INT(flags.nul, 1);

    root = ngx_ai_json_track(pool, ngx_ai_json_decode(pool, raw,
                                                      sizeof(raw) - 1, 64,
                                                      &flags, &status));
    UNIT_CHECK(root != NULL);
    UNIT_EQ_INT(flags.nul, 1);

    /* a NUL outside a string is no whitespace */

    root = ngx_ai_json_track(pool, ngx_ai_json_decode(pool,
                                                      (u_char *) "[1]\0", 4,
                                                      64, &flags, &status));
    UNIT_CHECK(root == NULL);
    UNIT_EQ_INT(status, NGX_AI_JSON_MALFORMED);
}


UNIT_TEST(json_decode_heap_trees_free_cleanly)
{
    cJSON                *root;
    ngx_uint_t            i, status;
    ngx_ai_json_flags_t   flags;

    static const char  *texts[] = {
        "{\"a\":[1,\"x\",{\"b\":null}],\"c\":\"\\u00e9\"}",
        "{\"a\":[1,\"x\",{\"b\":nul}]}", "{\"a\":\"\\u12\"}", "[1,2,"
    };

    /* no pool: the caller frees (failures free their partial trees) */

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        root = ngx_ai_json_decode(NULL, (u_char *) texts[i],
                                  strlen(texts[i]), 64, &flags, &status);
        UNIT_EQ_INT(root != NULL, i == 0);
        cJSON_Delete(root);
    }
}


UNIT_TEST(json_pool_tree_frees_the_heap_items_added_to_it)
{
    cJSON                *root, *arr, *heap;
    ngx_uint_t            status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

    /* its own pool, destroyed here: ASan's leak check sees the rest */

    pool = ngx_create_pool(4096, NULL);
    UNIT_CHECK(pool != NULL);

    root = decode(pool, "{\"a\":[1,{\"b\":\"c\"}],\"d\":\"e\"}", 64, &flags,
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
    char                  text[128], want[128];
    cJSON                *root;
    ngx_uint_t            i, j, status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

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

            root = decode(pool, text, 64, &flags, &status);

            if (root == NULL || !cJSON_IsString(root)
                || strcmp(root->valuestring, want) != 0)
            {
                unit_fail(__FILE__, __LINE__, "offset %d, case %d", (int) i,
                          (int) j);
            }

            UNIT_EQ_INT(flags.nul, 0);

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
                                        (u_char *) text, 42, 64, &flags,
                                        &status));
        UNIT_CHECK(root != NULL);
        UNIT_EQ_INT(flags.nul, 1);
        UNIT_EQ_INT(strlen(root->valuestring), i);
    }
}


/*
 * Invalid UTF-8 of every kind, and well-formed characters at the edges of
 * the table, at every offset of the 16-byte scan: in a value and in a key,
 * followed by more text or by the closing quote.  The bytes are kept as
 * they are; only the flag and the offset of the first bad byte tell.
 */

static const struct {
    const char  *bytes;
    ngx_int_t    bad;           /* offset of the first bad byte, or -1 */
} unit_utf8[] = {
    { "\xc3\xa9", -1 }, { "\xc2\x80", -1 }, { "\xdf\xbf", -1 },
    { "\xe0\xa0\x80", -1 }, { "\xed\x9f\xbf", -1 }, { "\xee\x80\x80", -1 },
    { "\xef\xbf\xbf", -1 }, { "\xf0\x90\x80\x80", -1 },
    { "\xf4\x8f\xbf\xbf", -1 }, { "\xe2\x80\xa2\xe2\x80\xa6", -1 },

    /* overlong */
    { "\xc0\x80", 0 }, { "\xc1\xbf", 0 }, { "\xe0\x80\x80", 0 },
    { "\xe0\x9f\xbf", 0 }, { "\xf0\x80\x80\x80", 0 }, { "\xf0\x8f\xbf\xbf", 0 },

    /* UTF-16 surrogates */
    { "\xed\xa0\x80", 0 }, { "\xed\xbf\xbf", 0 }, { "\xed\xb0\x80", 0 },

    /* above U+10FFFF, and bytes that start nothing */
    { "\xf4\x90\x80\x80", 0 }, { "\xf5\x80\x80\x80", 0 },
    { "\xf7\xbf\xbf\xbf", 0 }, { "\xf8\x88\x80\x80\x80", 0 }, { "\xfe", 0 },
    { "\xff", 0 },

    /* stray continuation bytes */
    { "\x80", 0 }, { "\xbf", 0 }, { "\xc3\xa9\xa9", 2 }, { "a\x80", 1 },

    /* cut short: by ASCII, by another lead byte */
    { "\xc3", 0 }, { "\xe2\x82", 0 }, { "\xf0\x9f\x98", 0 }, { "\xc3" "a", 0 },
    { "\xe2\x82" "a", 0 }, { "\xc3\xc3\xa9", 0 }, { "\xc3\xa9\xe2", 2 }
};


UNIT_TEST(json_decode_flags_invalid_utf8_at_every_offset)
{
    char                  text[128], want[128];
    size_t                n, len;
    cJSON                *root;
    ngx_uint_t            i, k, key, tail, status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

    pool = unit_pool();

    for (k = 0; k < sizeof(unit_utf8) / sizeof(unit_utf8[0]); k++) {
        n = strlen(unit_utf8[k].bytes);

        for (i = 0; i < 40; i++) {
            for (key = 0; key < 2; key++) {
                for (tail = 0; tail < 2; tail++) {

                    /* "aaa<bytes>[bb]" or {"aaa<bytes>[bb]":1} */

                    len = 0;

                    if (key) {
                        text[len++] = '{';
                    }

                    text[len++] = '"';
                    ngx_memset(text + len, 'a', i);
                    ngx_memset(want, 'a', i);
                    ngx_memcpy(text + len + i, unit_utf8[k].bytes, n);
                    ngx_memcpy(want + i, unit_utf8[k].bytes, n);
                    len += i + n;
                    want[i + n] = '\0';

                    if (tail) {
                        ngx_memcpy(text + len, "bb", 2);
                        ngx_memcpy(want + i + n, "bb", 3);
                        len += 2;
                    }

                    text[len++] = '"';

                    if (key) {
                        ngx_memcpy(text + len, ":1}", 3);
                        len += 3;
                    }

                    root = ngx_ai_json_track(pool,
                               ngx_ai_json_decode(pool, (u_char *) text, len,
                                                  64, &flags, &status));

                    if (root == NULL
                        || strcmp(key ? root->child->string
                                      : root->valuestring, want) != 0)
                    {
                        unit_fail(__FILE__, __LINE__, "case %d offset %d: "
                                  "not decoded as is", (int) k, (int) i);
                        continue;
                    }

                    if (flags.utf8 != (unit_utf8[k].bad >= 0)
                        || (flags.utf8
                            && flags.utf8_at != key + 1 + i
                                                + unit_utf8[k].bad)
                        || flags.control || flags.nul)
                    {
                        unit_fail(__FILE__, __LINE__, "case %d offset %d "
                                  "key %d: utf8 %d at %d", (int) k, (int) i,
                                  (int) key, (int) flags.utf8,
                                  (int) flags.utf8_at);
                    }
                }
            }
        }
    }
}


/* every raw control byte at every offset; DEL and escapes are no control */

UNIT_TEST(json_decode_flags_control_bytes_at_every_offset)
{
    char                  text[64];
    cJSON                *root;
    ngx_uint_t            c, i, status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

    pool = unit_pool();

    for (c = 0; c <= 0x7f; c++) {
        if (c >= 0x20 && c != 0x7f) {
            continue;
        }

        for (i = 0; i < 40; i++) {
            text[0] = '"';
            ngx_memset(text + 1, 'a', 44);
            text[1 + i] = (char) c;
            text[45] = '"';

            root = ngx_ai_json_track(pool,
                       ngx_ai_json_decode(pool, (u_char *) text, 46, 64,
                                          &flags, &status));

            if (root == NULL) {
                unit_fail(__FILE__, __LINE__, "byte %d at %d refused",
                          (int) c, (int) i);
                continue;
            }

            UNIT_EQ_INT(flags.control, c != 0x7f);
            UNIT_EQ_INT(flags.nul, c == 0);
            UNIT_EQ_INT(flags.utf8, 0);

            if (c != 0x7f) {
                UNIT_EQ_INT(flags.control_at, 1 + i);
            }

            if (c != 0) {
                UNIT_EQ_INT(strlen(root->valuestring), 44);
                UNIT_EQ_INT((u_char) root->valuestring[i], c);
            }
        }
    }

    /* escaped, they are text */

    UNIT_CHECK(decode(pool, "[\"\\u0001\\u001f\\n\\t\\b\\f\\r\"]", 64,
                      &flags, &status) != NULL);
    UNIT_EQ_INT(flags.control, 0);

    /* in a key; a later one does not move the first offset */

    UNIT_CHECK(decode(pool, "{\"k\x1f\":\"v\x01\"}", 64, &flags, &status)
               != NULL);
    UNIT_EQ_INT(flags.control, 1);
    UNIT_EQ_INT(flags.control_at, 3);

    /* outside strings a control byte is no JSON at all */

    UNIT_CHECK(decode(pool, "[1,\x01" "2]", 64, &flags, &status) == NULL);
    UNIT_EQ_INT(status, NGX_AI_JSON_MALFORMED);
}


UNIT_TEST(json_decode_flags_first_offsets_and_escapes)
{
    cJSON                *root;
    ngx_uint_t            status;
    ngx_ai_json_flags_t   flags;
    ngx_pool_t           *pool;

    pool = unit_pool();

    /* both kinds, each at its first place; the BOM is not a string */

    root = decode(pool, "\xef\xbb\xbf[\"ok \xc3\xa9\", \"x\x02\xff\","
                  " \"\x03\xc0\xaf\"]", 64, &flags, &status);
    UNIT_CHECK(root != NULL);
    UNIT_EQ_INT(flags.control, 1);
    UNIT_EQ_INT(flags.control_at, 15);
    UNIT_EQ_INT(flags.utf8, 1);
    UNIT_EQ_INT(flags.utf8_at, 16);

    /* a later, clean decode starts from none */

    UNIT_CHECK(decode(pool, "[\"clean\"]", 64, &flags, &status) != NULL);
    UNIT_CHECK(!flags.control && !flags.utf8 && !flags.nul);

    /* \u escapes always make well-formed UTF-8, or are refused */

    root = decode(pool, "[\"\\u00e9\\u20ac\\ud83d\\ude00\\udbff\\udfff\"]", 64,
                  &flags, &status);
    UNIT_CHECK(root != NULL);
    UNIT_EQ_INT(flags.utf8, 0);
    UNIT_CHECK(strcmp(root->child->valuestring, "\xc3\xa9\xe2\x82\xac"
                      "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf") == 0);

    UNIT_CHECK(decode(pool, "[\"\\ud800\\ud800\"]", 64, &flags, &status)
               == NULL);
    UNIT_CHECK(decode(pool, "[\"\\ude00\\ud83d\"]", 64, &flags, &status)
               == NULL);
    UNIT_CHECK(decode(pool, "[\"\\ud83d\"]", 64, &flags, &status) == NULL);

    /* an escaped backslash before a high byte does not hide it */

    UNIT_CHECK(decode(pool, "[\"\\\\\xff\"]", 64, &flags, &status) != NULL);
    UNIT_EQ_INT(flags.utf8, 1);
    UNIT_EQ_INT(flags.utf8_at, 4);

    /* outside strings a high byte is no JSON at all */

    UNIT_CHECK(decode(pool, "[1,\xc3\xa9]", 64, &flags, &status) == NULL);
}


/* one character's length, at the end of the buffer too */

UNIT_TEST(json_utf8_char_lengths)
{
    ngx_uint_t  i;

    static const struct {
        const char  *s;
        size_t       len;
        size_t       want;
    } cases[] = {
        { "a", 1, 1 }, { "\x7f", 1, 1 }, { "\xc3\xa9", 2, 2 },
        { "\xc3\xa9", 1, 0 }, { "\xe2\x82\xac", 3, 3 },
        { "\xe2\x82\xac", 2, 0 }, { "\xf0\x9f\x98\x80", 4, 4 },
        { "\xf0\x9f\x98\x80", 3, 0 }, { "\xed\xa0\x80", 3, 0 },
        { "\xf4\x90\x80\x80", 4, 0 }, { "\xc1\x81", 2, 0 },
        { "\x80", 1, 0 }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        UNIT_EQ_INT(ngx_ai_utf8_char((u_char *) cases[i].s,
                                     (u_char *) cases[i].s + cases[i].len),
                    cases[i].want);
    }
}
