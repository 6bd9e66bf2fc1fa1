
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the JSON writer (ngx_ai_jw_t) and the buffer helpers.
 */


#include "unit.h"


static ngx_ai_buf_t *
jw_start(ngx_ai_jw_t *w)
{
    ngx_ai_buf_t  *b;

    b = ngx_pcalloc(unit_pool(), sizeof(ngx_ai_buf_t));
    UNIT_CHECK(b != NULL && ngx_ai_buf_init(b, unit_pool(), 4) == NGX_OK);

    ngx_ai_jw_init(w, b);

    return b;
}


UNIT_TEST(jw_document)
{
    ngx_ai_jw_t    w;
    ngx_ai_buf_t  *b;

    b = jw_start(&w);

    ngx_ai_jw_object(&w);
    ngx_ai_jw_key(&w, "version");
    ngx_ai_jw_str(&w, "0.1.0");
    ngx_ai_jw_key_uint(&w, "time", 1700000000);
    ngx_ai_jw_key(&w, "empty");
    ngx_ai_jw_array(&w);
    ngx_ai_jw_end(&w);
    ngx_ai_jw_key(&w, "none");
    ngx_ai_jw_object(&w);
    ngx_ai_jw_end(&w);
    ngx_ai_jw_key(&w, "zones");
    ngx_ai_jw_array(&w);

    ngx_ai_jw_object(&w);
    ngx_ai_jw_key_string(&w, "zone", (u_char *) "a\"b\\c\n", 6);
    ngx_ai_jw_key_usd(&w, "cost_usd", 1250000);
    ngx_ai_jw_key(&w, "key");
    ngx_ai_jw_null(&w);
    ngx_ai_jw_key(&w, "strict");
    ngx_ai_jw_bool(&w, 1);
    ngx_ai_jw_end(&w);

    ngx_ai_jw_object(&w);
    ngx_ai_jw_key(&w, "strict");
    ngx_ai_jw_bool(&w, 0);
    ngx_ai_jw_key(&w, "n");
    ngx_ai_jw_array(&w);
    ngx_ai_jw_uint(&w, 0);
    ngx_ai_jw_uint(&w, 18446744073709551615ULL);
    ngx_ai_jw_null(&w);
    ngx_ai_jw_array(&w);
    ngx_ai_jw_end(&w);
    ngx_ai_jw_raw(&w, (u_char *) "{\"x\":1}", 7);
    ngx_ai_jw_end(&w);
    ngx_ai_jw_end(&w);

    ngx_ai_jw_end(&w);
    ngx_ai_jw_end(&w);

    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_OK);
    UNIT_EQ_STR(*b, "{\"version\":\"0.1.0\",\"time\":1700000000,\"empty\":[],"
                "\"none\":{},\"zones\":[{\"zone\":\"a\\\"b\\\\c\\n\","
                "\"cost_usd\":\"0.001250\",\"key\":null,\"strict\":true},"
                "{\"strict\":false,\"n\":[0,18446744073709551615,null,[],"
                "{\"x\":1}]}]}");
}


/* a renderer's one value, written after the caller's key */

UNIT_TEST(jw_value_after_key)
{
    ngx_ai_jw_t    w;
    ngx_ai_buf_t  *b;

    b = jw_start(&w);

    ngx_ai_jw_object(&w);
    ngx_ai_jw_key_uint(&w, "a", 1);
    ngx_ai_jw_key(&w, "list");
    ngx_ai_jw_array(&w);
    ngx_ai_jw_uint(&w, 7);
    ngx_ai_jw_end(&w);
    ngx_ai_jw_key(&w, "b");
    ngx_ai_jw_uint(&w, 2);
    ngx_ai_jw_end(&w);

    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_OK);
    UNIT_EQ_STR(*b, "{\"a\":1,\"list\":[7],\"b\":2}");
}


UNIT_TEST(jw_usd)
{
    ngx_uint_t     i;
    ngx_ai_jw_t    w;
    ngx_ai_buf_t  *b;

    static struct {
        uint64_t     nano;
        const char  *text;
    } cases[] = {
        { 0, "\"0.000000\"" },
        { 999, "\"0.000000\"" },
        { 1000, "\"0.000001\"" },
        { 999999999, "\"0.999999\"" },
        { 1000000000, "\"1.000000\"" },
        { 123456789012345ULL, "\"123456.789012\"" },
        { 18446744073709551615ULL, "\"18446744073.709551\"" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        b = jw_start(&w);
        ngx_ai_jw_usd(&w, cases[i].nano);
        UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_OK);
        UNIT_EQ_STR(*b, cases[i].text);
    }
}


/* every misuse sticks: nothing written after it, done says so */

UNIT_TEST(jw_misuse)
{
    size_t         len;
    ngx_ai_jw_t    w;
    ngx_ai_buf_t  *b;

    /* a value in an object without its key */
    b = jw_start(&w);
    ngx_ai_jw_object(&w);
    ngx_ai_jw_uint(&w, 1);
    len = b->len;
    ngx_ai_jw_key_uint(&w, "a", 2);
    ngx_ai_jw_end(&w);
    UNIT_EQ_INT(b->len, len);
    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_ERROR);

    /* a key in an array */
    b = jw_start(&w);
    ngx_ai_jw_array(&w);
    ngx_ai_jw_key(&w, "a");
    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_ERROR);
    UNIT_EQ_STR(*b, "[");

    /* a key at the top */
    b = jw_start(&w);
    ngx_ai_jw_key(&w, "a");
    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_ERROR);
    UNIT_EQ_INT(b->len, 0);

    /* two keys in a row */
    b = jw_start(&w);
    ngx_ai_jw_object(&w);
    ngx_ai_jw_key(&w, "a");
    ngx_ai_jw_key(&w, "b");
    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_ERROR);
    UNIT_EQ_STR(*b, "{\"a\":");

    /* a key without its value */
    b = jw_start(&w);
    ngx_ai_jw_object(&w);
    ngx_ai_jw_key(&w, "a");
    ngx_ai_jw_end(&w);
    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_ERROR);

    /* an end with nothing open */
    b = jw_start(&w);
    ngx_ai_jw_uint(&w, 1);
    ngx_ai_jw_end(&w);
    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_ERROR);

    /* left open */
    b = jw_start(&w);
    ngx_ai_jw_array(&w);
    ngx_ai_jw_object(&w);
    ngx_ai_jw_end(&w);
    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_ERROR);
    UNIT_EQ_STR(*b, "[{}");
}


UNIT_TEST(jw_depth)
{
    ngx_uint_t     i;
    ngx_ai_jw_t    w;
    ngx_ai_buf_t  *b;

    b = jw_start(&w);

    for (i = 0; i < NGX_AI_JW_MAX_DEPTH; i++) {
        ngx_ai_jw_array(&w);
    }

    for (i = 0; i < NGX_AI_JW_MAX_DEPTH; i++) {
        ngx_ai_jw_end(&w);
    }

    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_OK);
    UNIT_EQ_INT(b->len, 2 * NGX_AI_JW_MAX_DEPTH);

    b = jw_start(&w);

    for (i = 0; i <= NGX_AI_JW_MAX_DEPTH; i++) {
        ngx_ai_jw_array(&w);
    }

    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_ERROR);
    UNIT_EQ_INT(b->len, NGX_AI_JW_MAX_DEPTH);
}


/* what the writer writes is what cJSON reads back */

UNIT_TEST(jw_parses)
{
    u_char         bytes[256];
    cJSON         *j, *s;
    ngx_str_t      text;
    ngx_uint_t     i;
    ngx_ai_jw_t    w;
    ngx_ai_buf_t  *b;

    for (i = 0; i < 256; i++) {
        bytes[i] = (u_char) (i ? i : ' ');
    }

    b = jw_start(&w);
    ngx_ai_jw_object(&w);
    ngx_ai_jw_key_string(&w, "s", bytes + 1, 127);
    ngx_ai_jw_end(&w);
    UNIT_EQ_INT(ngx_ai_jw_done(&w), NGX_OK);

    text.data = b->data;
    text.len = b->len;

    j = unit_json(&text);
    s = cJSON_GetObjectItemCaseSensitive(j, "s");
    UNIT_CHECK(cJSON_IsString(s) && strlen(s->valuestring) == 127
               && memcmp(s->valuestring, bytes + 1, 127) == 0);
}
