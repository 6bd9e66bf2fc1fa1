
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: secrets scrubbed from a provider's text
 * (ngx_ai_gateway_scrub.c).
 */


#include "unit.h"


static ngx_str_t  unit_secrets[] = {
    ngx_string("sk-EVILSECRET0123456789"),
    ngx_string("AIzaGEMSECRET0123456789ABCDNOPQ"),
    ngx_string("sk-ant-ANTHSECRET0123456789"),
    ngx_string("short"),                        /* ignored: < 8 bytes */
    ngx_string("pw-12345")                      /* 8 bytes: whole only */
};

#define UNIT_NSECRETS  (sizeof(unit_secrets) / sizeof(unit_secrets[0]))


/* the text scrubbed with the secrets above; *hits set */

static ngx_str_t
scrub(const char *text, ngx_uint_t *hits)
{
    ngx_str_t  t;

    t.data = (u_char *) text;
    t.len = strlen(text);

    if (ngx_ai_scrub(unit_pool(), unit_secrets, UNIT_NSECRETS, &t, hits)
        != NGX_OK)
    {
        unit_fail(__FILE__, __LINE__, "ngx_ai_scrub() failed");
    }

    return t;
}


#define UNIT_SCRUB(text, want, nhits)                                        \
    do {                                                                     \
        ngx_uint_t  unit_h_;                                                 \
        ngx_str_t   unit_s_ = scrub(text, &unit_h_);                         \
        UNIT_EQ_STR(unit_s_, want);                                          \
        UNIT_EQ_INT(unit_h_, nhits);                                         \
    } while (0)


UNIT_TEST(scrub_whole_secrets)
{
    UNIT_SCRUB("Incorrect API key provided: Authorization: Bearer "
               "sk-EVILSECRET0123456789",
               "Incorrect API key provided: Authorization: Bearer "
               "[REDACTED]", 1);
    UNIT_SCRUB("x-goog-api-key: AIzaGEMSECRET0123456789ABCDNOPQ\r\n"
               "x-api-key: sk-ant-ANTHSECRET0123456789\r\n",
               "x-goog-api-key: [REDACTED]\r\nx-api-key: [REDACTED]\r\n", 2);

    /* 8 bytes: the whole secret, not a part of it */

    UNIT_SCRUB("password pw-12345.", "password [REDACTED].", 1);
    UNIT_SCRUB("pw-1234 and pw-12346", "pw-1234 and pw-12346", 0);

    /* shorter than 8 bytes: ignored */

    UNIT_SCRUB("a short story", "a short story", 0);
}


UNIT_TEST(scrub_parts_of_secrets)
{
    /* cut at the end, at the start, in the middle; 12 bytes is enough
     * (a mask run beside a part of a secret goes with it) */

    UNIT_SCRUB("key sk-EVILSECRET0123, was refused",
               "key [REDACTED], was refused", 1);
    UNIT_SCRUB("key sk-EVILSECRET0123... was refused",
               "key [REDACTED] was refused", 1);
    UNIT_SCRUB("key ...SECRET0123456789 was refused",
               "key [REDACTED] was refused", 1);
    UNIT_SCRUB("key: SECRET0123456789.", "key: [REDACTED].", 1);
    UNIT_SCRUB("[ILSECRET0123]", "[[REDACTED]]", 1);
    UNIT_SCRUB("11 bytes: ILSECRET012 stay", "11 bytes: ILSECRET012 stay", 0);

    /* prefixed and suffixed by other text, without a separator */

    UNIT_SCRUB("Bearersk-EVILSECRET0123456789xyz", "Bearer[REDACTED]xyz", 1);
}


UNIT_TEST(scrub_at_both_ends_and_overlapping)
{
    UNIT_SCRUB("sk-EVILSECRET0123456789 then sk-EVILSECRET0123456789",
               "[REDACTED] then [REDACTED]", 2);
    UNIT_SCRUB("sk-EVILSECRET0123456789", "[REDACTED]", 1);

    /* two secrets sharing bytes in the text, and back to back */

    UNIT_SCRUB("sk-EVILSECRET0123456789ABCDNOPQ!",
               "[REDACTED]!", 1);
    UNIT_SCRUB("sk-EVILSECRET0123456789sk-ant-ANTHSECRET0123456789",
               "[REDACTED]", 1);

    /* a secret inside another's text */

    {
        ngx_str_t   t, s[2];
        ngx_uint_t  hits;

        ngx_str_set(&s[0], "0123456789abcdef0123");
        ngx_str_set(&s[1], "89abcdef01");
        ngx_str_set(&t, "<89abcdef01> <0123456789abcdef0123>");

        UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), s, 2, &t, &hits), NGX_OK);
        UNIT_EQ_STR(t, "<[REDACTED]> <[REDACTED]>");
        UNIT_EQ_INT(hits, 2);
    }
}


UNIT_TEST(scrub_json_escaped)
{
    UNIT_SCRUB("{\"error\":{\"message\":\"key sk\\u002dEVILSECRET\\u0030"
               "123456789 bad\"}}",
               "{\"error\":{\"message\":\"key [REDACTED] bad\"}}", 1);
    UNIT_SCRUB("{\"m\":\"\\u0073\\u006B-EVILSECRET0123456789\"}",
               "{\"m\":\"[REDACTED]\"}", 1);

    /* \/ in a secret that holds a slash */

    {
        ngx_str_t   t, s;
        ngx_uint_t  hits;

        ngx_str_set(&s, "key/with/slashes/0123");
        ngx_str_set(&t, "{\"m\":\"got key\\/with\\/slashes\\/0123\"}");

        UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
        UNIT_EQ_STR(t, "{\"m\":\"got [REDACTED]\"}");
        UNIT_EQ_INT(hits, 1);
    }

    /* an escaped control before a part: the escape stays whole */

    UNIT_SCRUB("{\"m\":\"a\\nsk-EVILSECRET0123456789\\n\"}",
               "{\"m\":\"a\\n[REDACTED]\\n\"}", 1);

    /* an escape that begins a raw part goes with it */

    {
        ngx_str_t   t, s;
        ngx_uint_t  hits;

        ngx_str_set(&s, "nSECRETSECRET0");
        ngx_str_set(&t, "{\"m\":\"a\\nSECRETSECRET0\"}");

        UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
        UNIT_EQ_STR(t, "{\"m\":\"a[REDACTED]\"}");
    }
}


UNIT_TEST(scrub_masked_forms)
{
    UNIT_SCRUB("Incorrect API key provided: sk-EVIL***********6789. You "
               "can find your API key at ...",
               "Incorrect API key provided: [REDACTED]. You can find your "
               "API key at ...", 1);
    UNIT_SCRUB("sk-ant-...wxyz and sk-ant-...6789",
               "[REDACTED]wxyz and [REDACTED]", 2);
    UNIT_SCRUB("sk-proj-...wxyz", "sk-proj-...wxyz", 0);
    UNIT_SCRUB("sk-proj-...6789", "sk-proj-[REDACTED]", 1);
    UNIT_SCRUB("sk-EVIL-...xyz", "sk-EVIL-...xyz", 0);
    UNIT_SCRUB("key AIza\xe2\x80\xa6NOPQ is invalid",
               "key [REDACTED] is invalid", 1);
    UNIT_SCRUB("key AIza\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2 bad",
               "key [REDACTED] bad", 1);
    UNIT_SCRUB("key sk-EVxxxxxxxxxxx", "key [REDACTED]", 1);
    UNIT_SCRUB("key ****6789", "key [REDACTED]", 1);
    UNIT_SCRUB("sk-\xe2\x80\xa6", "[REDACTED]", 1);

    /* two mask characters are no mask; 2 bytes beside one are not enough */

    UNIT_SCRUB("sk-EV**6789", "sk-EV**6789", 0);
    UNIT_SCRUB("sk***89", "sk***89", 0);
}


UNIT_TEST(scrub_nothing_to_find)
{
    ngx_str_t   t;
    ngx_uint_t  hits;

    /* prose with "...", "***", "x" and bullets stays as it is */

    UNIT_SCRUB("Well... that was odd. *** Note: the box (3x4) is "
               "e.g. 12 cm\xe2\x80\xa6 \xe2\x80\xa2 a list \xe2\x80\xa2 "
               "xxx marks the spot. Keys look like 'sk-' plus letters.",
               "Well... that was odd. *** Note: the box (3x4) is "
               "e.g. 12 cm\xe2\x80\xa6 \xe2\x80\xa2 a list \xe2\x80\xa2 "
               "xxx marks the spot. Keys look like 'sk-' plus letters.", 0);

    /* only mask characters */

    UNIT_SCRUB("****************....................xxxxxxxxxxxxxx",
               "****************....................xxxxxxxxxxxxxx", 0);

    /* empty, and without secrets */

    ngx_str_set(&t, "");
    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), unit_secrets, UNIT_NSECRETS, &t,
                             &hits), NGX_OK);
    UNIT_EQ_INT(t.len, 0);
    UNIT_EQ_INT(hits, 0);

    ngx_str_set(&t, "sk-EVILSECRET0123456789");
    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), NULL, 0, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "sk-EVILSECRET0123456789");

    /* the same memory when nothing is found */

    {
        static const char  text[] = "an answer with no secret in it, long "
                                    "enough to be probed a few times";

        t.data = (u_char *) text;
        t.len = sizeof(text) - 1;

        UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), unit_secrets, UNIT_NSECRETS,
                                 &t, &hits), NGX_OK);
        UNIT_CHECK(t.data == (u_char *) text);
    }
}


/* a secret at every offset of the probes' stride and the 16-byte scan */

UNIT_TEST(scrub_at_every_offset)
{
    char        text[128], want[128];
    size_t      i;
    ngx_str_t   t;
    ngx_uint_t  hits, form;

    static const char  *forms[] = {
        "sk-EVILSECRET0123456789", "ILSECRET0123", "sk-EVIL****6789",
        "pw-12345", "sk\\u002dEVILSECRET0123456789"
    };

    for (form = 0; form < sizeof(forms) / sizeof(forms[0]); form++) {
        for (i = 0; i < 40; i++) {
            ngx_memset(text, 'a', i);
            ngx_memcpy(text + i, forms[form], strlen(forms[form]));
            ngx_memcpy(text + i + strlen(forms[form]), " bb", 4);

            ngx_memset(want, 'a', i);
            ngx_memcpy(want + i, "[REDACTED] bb", 14);

            t.data = (u_char *) text;
            t.len = strlen(text);

            UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), unit_secrets,
                                     UNIT_NSECRETS, &t, &hits), NGX_OK);

            if (t.len != strlen(want) || memcmp(t.data, want, t.len) != 0) {
                unit_fail(__FILE__, __LINE__, "form %d at %d: \"%.*s\"",
                          (int) form, (int) i, (int) t.len, t.data);
            }
        }
    }
}


/* edges moved out to whole UTF-8 characters */

UNIT_TEST(scrub_keeps_utf8_whole)
{
    ngx_str_t   t, s;
    ngx_uint_t  hits;

    ngx_str_set(&s, "\xa9secretsecret");
    ngx_str_set(&t, "caf\xc3\xa9secretsecret!");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "caf[REDACTED]!");

    ngx_str_set(&s, "secretsecret\xe2\x82");
    ngx_str_set(&t, "secretsecret\xe2\x82\xac!");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "[REDACTED]!");
}


/* found by fuzz/fuzz_scrub: a stray continuation byte before a part took
 * the quote before it along (fuzz/regressions/fuzz_scrub/) */

UNIT_TEST(scrub_stray_continuation_keeps_the_quote)
{
    ngx_str_t   t, s;
    ngx_uint_t  hits;

    ngx_str_set(&s, "AIz\x96\xb8\xba\xb2" "ANTHSECRET0246");
    ngx_str_set(&t, "{\"\xba\xb2" "ANTHSECRETage\":1}");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "{\"[REDACTED]age\":1}");
}


/* found by fuzz/fuzz_scrub: a part that ended in the first byte of a "\\"
 * left the second one before "u0003", which then escaped it and made the
 * next secret whole, \u-escaped, in the text a client gets
 * (fuzz/regressions/fuzz_scrub/half-escape-after-part) */

UNIT_TEST(scrub_half_escape_after_part)
{
    ngx_str_t   t, s[2];
    ngx_uint_t  hits;

    ngx_str_set(&s[0], "nnnnnn\\\\\\\\8\\");
    ngx_str_set(&s[1], "\x03\x17" "3j-NTHd_ap");
    ngx_str_set(&t, "\\\\\\nnnnnn\\\\\\\\8\\\\u0003\x17" "\\u0033j\\u002DN"
                    "\\u0054H\\u0064_\\u0061p");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), s, 2, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "\\\\[REDACTED]u0003\x17" "\\u0033j\\u002DN\\u0054H"
                   "\\u0064_\\u0061p");
    UNIT_EQ_INT(hits, 1);

    /* a second pass: the \u escapes left hold 11 bytes of it, not 12 */

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), s, 2, &t, &hits), NGX_OK);
    UNIT_EQ_INT(hits, 0);

    /* the same in JSON: the "\\" a part ends inside goes with it */

    ngx_str_set(&s[0], "SECRETSECRET\\");
    ngx_str_set(&t, "{\"m\":\"SECRETSECRET\\\\\"}");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), s, 1, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "{\"m\":\"[REDACTED]\"}");
}


/* a raw part that begins inside a \u escape takes the whole escape: no
 * "\u00" left before the mark (the JSON stays JSON) */

UNIT_TEST(scrub_part_inside_an_escape)
{
    ngx_str_t   t, s;
    ngx_uint_t  hits;

    ngx_str_set(&s, "41SECRETSECRET");
    ngx_str_set(&t, "{\"m\":\"a\\u0041SECRETSECRET\"}");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "{\"m\":\"a[REDACTED]\"}");
    UNIT_EQ_INT(hits, 1);

    /* between the two halves of a surrogate pair */

    ngx_str_set(&s, "DE00SECRETSECRET");
    ngx_str_set(&t, "{\"m\":\"\\uD83D\\uDE00SECRETSECRET!\"}");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "{\"m\":\"[REDACTED]!\"}");
}


/* found by fuzz/fuzz_scrub: a part that ended before a stray continuation
 * byte, after 0xff (no lead byte), moved its end 3 bytes on, over the
 * key's closing quote (fuzz/regressions/fuzz_scrub/
 * bad-lead-before-continuation): an edge moves over continuation bytes
 * only, to a lead byte whose character is whole */

UNIT_TEST(scrub_no_character_without_a_lead)
{
    ngx_str_t   t, s;
    ngx_uint_t  hits;

    ngx_str_set(&s, "SECRETSECRET\xff");
    ngx_str_set(&t, "{\"SECRETSECRET\xff\x9a\":1}");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "{\"[REDACTED]\x9a\":1}");

    /* a lead byte of 4 with 1 continuation byte after it: no character */

    ngx_str_set(&s, "SECRETSECRET\xf0");
    ngx_str_set(&t, "{\"SECRETSECRET\xf0\x9a\":1}");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "{\"[REDACTED]\x9a\":1}");

    /* a whole one still goes with the part */

    ngx_str_set(&s, "SECRETSECRET\xf0\x9f");
    ngx_str_set(&t, "{\"SECRETSECRET\xf0\x9f\x98\x80\":1}");

    UNIT_EQ_INT(ngx_ai_scrub(unit_pool(), &s, 1, &t, &hits), NGX_OK);
    UNIT_EQ_STR(t, "{\"[REDACTED]\":1}");
}
