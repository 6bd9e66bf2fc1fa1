
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the client key file of ai_keys (ngx_ai_gateway_keys_file.c):
 * lines, attributes, refusals with their line, the checks across lines,
 * RFC 3339 times and models= globs.
 */


#include "unit.h"
#include "ngx_ai_gateway_keys_file.h"


#define KF_HEX                                                               \
    "00112233445566778899aabbccddeeff0123456789abcdef0123456789ABCDEF"


static ngx_int_t
kf_parse(const char *text, ngx_array_t *entries, ngx_ai_keys_error_t *err)
{
    size_t   len;
    u_char  *copy;

    len = strlen(text);
    copy = ngx_pnalloc(unit_pool(), len + 1);
    memcpy(copy, text, len + 1);

    ngx_array_init(entries, unit_pool(), 1, sizeof(ngx_ai_key_entry_t));
    ngx_memzero(err, sizeof(ngx_ai_keys_error_t));

    return ngx_ai_keys_parse(unit_pool(), copy, len, entries, err);
}


/* refused at line, with a message */

static void
kf_refused(const char *file, int line, const char *text, ngx_uint_t at)
{
    ngx_int_t            rc;
    ngx_array_t          entries;
    ngx_ai_keys_error_t  err;

    rc = kf_parse(text, &entries, &err);

    if (rc != NGX_DECLINED || err.line != at || err.why == NULL) {
        unit_fail(file, line, "\"%s\": rc %d, line %lu (%s), expected "
                  "refused at %lu", text, (int) rc, (unsigned long) err.line,
                  err.why ? err.why : "-", (unsigned long) at);
    }
}

#define KF_REFUSED(text, at)  kf_refused(__FILE__, __LINE__, text, at)


UNIT_TEST(keys_file_full_line)
{
    ngx_str_t           *m;
    ngx_array_t          entries;
    ngx_ai_keys_error_t  err;
    ngx_ai_key_entry_t  *e;

    UNIT_EQ_INT(kf_parse("# keys\n\n  sha256:" KF_HEX " name=alice "
                         "team=eng models=openai/gpt-4o,anthropic/* "
                         "rpm=60 tpm=100000 budget=12.5/month "
                         "expires=2030-01-02T03:04:05Z\r\n"
                         "plain:sk-test-123456 name=bob\n"
                         "team:eng budget=100/day\n",
                         &entries, &err), NGX_OK);

    UNIT_EQ_INT(entries.nelts, 3);
    e = entries.elts;

    UNIT_EQ_INT(e[0].type, NGX_AI_KEY_LINE);
    UNIT_EQ_INT(e[0].line, 3);
    UNIT_EQ_INT(e[0].digest[0], 0x00);
    UNIT_EQ_INT(e[0].digest[1], 0x11);
    UNIT_EQ_INT(e[0].digest[31], 0xef);
    UNIT_EQ_INT(e[0].plain.len, 0);
    UNIT_EQ_STR(e[0].name, "alice");
    UNIT_EQ_STR(e[0].team, "eng");
    UNIT_CHECK(e[0].models != NULL);
    UNIT_EQ_INT(e[0].models->nelts, 2);
    m = e[0].models->elts;
    UNIT_EQ_STR(m[0], "openai/gpt-4o");
    UNIT_EQ_STR(m[1], "anthropic/*");
    UNIT_EQ_INT(e[0].rpm, 60);
    UNIT_EQ_INT(e[0].tpm, 100000);
    UNIT_EQ_STR(e[0].budget, "12.5");
    UNIT_EQ_INT(e[0].period, NGX_AI_KEY_MONTH);
    UNIT_EQ_INT(e[0].expires, 1893553445);

    UNIT_EQ_STR(e[1].plain, "sk-test-123456");
    UNIT_EQ_STR(e[1].name, "bob");
    UNIT_CHECK(e[1].models == NULL);
    UNIT_EQ_INT(e[1].rpm, 0);
    UNIT_EQ_INT(e[1].budget.len, 0);
    UNIT_EQ_INT(e[1].expires, 0);

    UNIT_EQ_INT(e[2].type, NGX_AI_KEY_TEAM);
    UNIT_EQ_STR(e[2].name, "eng");
    UNIT_EQ_STR(e[2].budget, "100");
    UNIT_EQ_INT(e[2].period, NGX_AI_KEY_DAY);

    UNIT_EQ_INT(ngx_ai_keys_check(unit_pool(), &entries, &err), NGX_OK);
}


UNIT_TEST(keys_file_refusals)
{
    KF_REFUSED("sha256:abc name=a\n", 1);
    KF_REFUSED("sha256:" KF_HEX "0 name=a\n", 1);
    KF_REFUSED("sha256:" "g0112233445566778899aabbccddeeff0123456789abcdef"
               "0123456789ABCDEF name=a\n", 1);
    KF_REFUSED("\n#\nplain:short name=a\n", 3);
    KF_REFUSED("plain:sk-test-1234 name=a\nplain:sk-test-5678\n", 2);
    KF_REFUSED("key:sk-test-1234 name=a\n", 1);
    KF_REFUSED("sk-test-1234 name=a\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a name=b\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a b\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a color=red\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a/b\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a team=x:y\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a rpm=0\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a rpm=-1\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a rpm=1000000001\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a tpm=12x\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a budget=\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a budget=5/week\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a budget=$5\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a models=\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a models=a,,b\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a models=a*b\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a expires=2030-01-01\n", 1);
    KF_REFUSED("plain:sk-test-1234 name=a expires=2030-02-30T00:00:00Z\n",
               1);
    KF_REFUSED("plain:sk-test-1234 name=a expires=2030-01-01T24:00:00Z\n",
               1);
    KF_REFUSED("team:eng\n", 1);
    KF_REFUSED("team:eng budget=5 rpm=3\n", 1);
    KF_REFUSED("team:e/g budget=5\n", 1);
}


static void
kf_check_refused(const char *file, int line, const char *text,
    ngx_uint_t at, ngx_uint_t other)
{
    ngx_uint_t           i;
    ngx_array_t          entries;
    ngx_ai_key_entry_t  *e;
    ngx_ai_keys_error_t  err;

    if (kf_parse(text, &entries, &err) != NGX_OK) {
        unit_fail(file, line, "\"%s\": not parsed: %s", text, err.why);
        return;
    }

    /* as the module does: a plain key's digest is its hash; here its
     * first bytes will do */

    e = entries.elts;

    for (i = 0; i < entries.nelts; i++) {
        if (e[i].plain.len) {
            ngx_memcpy(e[i].digest, e[i].plain.data,
                       ngx_min(e[i].plain.len, NGX_AI_KEY_DIGEST_LEN));
        }
    }

    if (ngx_ai_keys_check(unit_pool(), &entries, &err) != NGX_DECLINED
        || err.line != at || err.other != other)
    {
        unit_fail(file, line, "\"%s\": line %lu/%lu, expected %lu/%lu",
                  text, (unsigned long) err.line, (unsigned long) err.other,
                  (unsigned long) at, (unsigned long) other);
    }
}

#define KF_CHECK_REFUSED(text, at, other)                                    \
    kf_check_refused(__FILE__, __LINE__, text, at, other)


UNIT_TEST(keys_file_check)
{
    ngx_array_t          entries;
    ngx_ai_keys_error_t  err;

    KF_CHECK_REFUSED("plain:sk-test-1234 name=a\n"
                     "plain:sk-test-5678 name=b\n"
                     "plain:sk-test-1234 name=c\n", 3, 1);
    KF_CHECK_REFUSED("sha256:" KF_HEX " name=a\n"
                     "sha256:" KF_HEX " name=a\n", 2, 1);
    KF_CHECK_REFUSED("team:eng budget=1\nteam:ops budget=1\n"
                     "team:eng budget=2\n", 3, 1);
    KF_CHECK_REFUSED("plain:sk-test-1234 name=a rpm=5\n"
                     "plain:sk-test-5678 name=a rpm=6\n", 2, 1);
    KF_CHECK_REFUSED("plain:sk-test-1234 name=a team=x\n"
                     "plain:sk-test-5678 name=a\n", 2, 1);
    KF_CHECK_REFUSED("plain:sk-test-1234 name=a budget=5/day\n"
                     "plain:sk-test-5678 name=a budget=5\n", 2, 1);

    /* a rotation: two keys of one name, the old one expiring; a team
     * and a key of the same name */

    UNIT_EQ_INT(kf_parse("plain:sk-test-1234 name=a rpm=5 "
                         "expires=2020-01-01T00:00:00+02:00 models=x/y\n"
                         "plain:sk-test-5678 name=a rpm=5\n"
                         "team:a budget=3\n", &entries, &err), NGX_OK);
    ngx_memcpy(((ngx_ai_key_entry_t *) entries.elts)[0].digest, "1", 1);
    UNIT_EQ_INT(ngx_ai_keys_check(unit_pool(), &entries, &err), NGX_OK);
    UNIT_EQ_INT(((ngx_ai_key_entry_t *) entries.elts)[0].expires,
                1577829600);
}


UNIT_TEST(keys_file_time)
{
    time_t  t;

    UNIT_EQ_INT(ngx_ai_keys_parse_time((u_char *) "1970-01-01T00:00:01Z",
                                       20, &t), NGX_OK);
    UNIT_EQ_INT(t, 1);
    UNIT_EQ_INT(ngx_ai_keys_parse_time((u_char *) "2024-02-29T12:30:00.25Z",
                                       23, &t), NGX_OK);
    UNIT_EQ_INT(t, 1709209800);
    UNIT_EQ_INT(ngx_ai_keys_parse_time((u_char *) "2024-02-29t12:30:00-01:30",
                                       25, &t), NGX_OK);
    UNIT_EQ_INT(t, 1709209800 + 5400);
    UNIT_EQ_INT(ngx_ai_keys_parse_time((u_char *) "2023-02-29T12:30:00Z",
                                       20, &t), NGX_DECLINED);
    UNIT_EQ_INT(ngx_ai_keys_parse_time((u_char *) "2023-01-01T12:30:00.Z",
                                       21, &t), NGX_DECLINED);
    UNIT_EQ_INT(ngx_ai_keys_parse_time((u_char *) "2023-01-01T12:30:00",
                                       19, &t), NGX_DECLINED);
    UNIT_EQ_INT(ngx_ai_keys_parse_time((u_char *) "2023-01-01T12:30:00Zx",
                                       21, &t), NGX_DECLINED);
    UNIT_EQ_INT(ngx_ai_keys_parse_time((u_char *) "1969-12-31T23:59:59Z",
                                       20, &t), NGX_DECLINED);
}


UNIT_TEST(keys_file_models)
{
    ngx_str_t  m[3];

    ngx_str_set(&m[0], "openai/gpt-4o");
    ngx_str_set(&m[1], "anthropic/*");
    ngx_str_set(&m[2], "gemini/gemini-2*");

#define KF_ALLOWED(s)                                                        \
    ngx_ai_keys_model_allowed(m, 3, (u_char *) s, sizeof(s) - 1)

    UNIT_CHECK(KF_ALLOWED("openai/gpt-4o"));
    UNIT_CHECK(!KF_ALLOWED("openai/gpt-4o-mini"));
    UNIT_CHECK(!KF_ALLOWED("openai/gpt-4"));
    UNIT_CHECK(KF_ALLOWED("anthropic/claude-3-5-haiku"));
    UNIT_CHECK(KF_ALLOWED("anthropic/"));
    UNIT_CHECK(!KF_ALLOWED("anthropic"));
    UNIT_CHECK(KF_ALLOWED("gemini/gemini-2.0-flash"));
    UNIT_CHECK(!KF_ALLOWED("gemini/gemini-1.5-pro"));
    UNIT_CHECK(ngx_ai_keys_model_allowed(m, 0, (u_char *) "x/y", 3));

    ngx_str_set(&m[0], "*");
    UNIT_CHECK(ngx_ai_keys_model_allowed(m, 1, (u_char *) "x/y", 3));

#undef KF_ALLOWED
}
