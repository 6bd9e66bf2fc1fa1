
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: the reader of a cost zone's state file
 * (ngx_ai_cost_state_parse(), ngx_ai_gateway_state.c).  The files are
 * written here as ngx_http_ai_cost_save() writes them: the lines, then
 * "end RECORDS CRC32" with the CRC32 of every byte before it.
 */


#include "unit.h"
#include "ngx_ai_gateway_state.h"


#define STATE_DIGEST                                                         \
    "00112233445566778899aabbccddeeff0123456789abcdef0123456789ABCDEF"

#define STATE_HEAD                                                           \
    NGX_AI_COST_STATE_MAGIC "\n"                                             \
    "zone =cost\n"                                                           \
    "time 1700000000\n"                                                      \
    "totals 1 2 3 4 5 6 7 8\n"

#define STATE_ACCOUNT  "a 0 - =/v1 19675 0 646 0 0 1700000000\n"

#define STATE_LEDGER                                                         \
    "l 1 " STATE_DIGEST " =/v1 =openai/gpt-4o-mini 3 1 100 200 12345 1 50 "  \
    "777 1699990000 1700000100\n"

#define STATE_REFUSED(f, why, at)                                            \
    state_refused(__FILE__, __LINE__, f, why, at)


static ngx_str_t  state_zone = ngx_string("cost");


/* body, then its end line: the record count given, the right CRC32 */

static ngx_str_t
state_file(const char *body, size_t len, ngx_uint_t records)
{
    int           n;
    char          end[64];
    ngx_str_t     f;
    ngx_ai_buf_t  b;

    n = snprintf(end, sizeof(end), "end %lu %08x\n", (unsigned long) records,
                 (unsigned) ngx_crc32_long((u_char *) body, len));

    ngx_ai_buf_init(&b, unit_pool(), len + sizeof(end));
    ngx_ai_buf_append(&b, body, len);
    ngx_ai_buf_append(&b, end, n);

    f.data = b.data;
    f.len = b.len;

    return f;
}


static ngx_str_t
state_text(const char *body, ngx_uint_t records)
{
    return state_file(body, strlen(body), records);
}


static char *
state_parse(ngx_str_t *f, ngx_array_t *recs, uint64_t *totals,
    ngx_uint_t *line)
{
    u_char  *copy;

    /* small, so that it grows */
    if (ngx_array_init(recs, unit_pool(), 2, sizeof(ngx_ai_cost_state_rec_t))
        != NGX_OK)
    {
        return "no memory in the test";
    }

    /* a block of its own: ASan sees a read past the end */
    copy = ngx_pnalloc(unit_pool(), f->len);
    if (copy == NULL) {
        return "no memory in the test";
    }

    ngx_memcpy(copy, f->data, f->len);

    return ngx_ai_cost_state_parse(unit_pool(), copy, f->len, &state_zone,
                                   recs, totals, line);
}


static void
state_refused(const char *file, int at_line, ngx_str_t *f, const char *want,
    ngx_uint_t want_line)
{
    char         *why;
    uint64_t      totals[NGX_AI_COST_STATE_TOTALS];
    ngx_uint_t    line;
    ngx_array_t   recs;

    line = 12345;
    why = state_parse(f, &recs, totals, &line);

    if (why == NULL || strcmp(why, want) != 0 || line != want_line) {
        unit_fail(file, at_line, "\"%s\" (line %lu), expected \"%s\" "
                  "(line %lu), for \"%.*s\"", why ? why : "NULL",
                  (unsigned long) line, want, (unsigned long) want_line,
                  (int) f->len, f->data);
    }

    if (recs.nelts != 0) {
        unit_fail(file, at_line, "%lu records left after a refusal",
                  (unsigned long) recs.nelts);
    }
}


UNIT_TEST(state_stand_in_crc32_hextoi)
{
    UNIT_EQ_INT(ngx_crc32_long((u_char *) "123456789", 9), 0xcbf43926);
    UNIT_EQ_INT(ngx_crc32_long((u_char *) "", 0), 0);
    UNIT_EQ_INT(ngx_hextoi((u_char *) "fF09", 4), 0xff09);
    UNIT_EQ_INT(ngx_hextoi((u_char *) "ffffffff", 8), 0xffffffff);
    UNIT_EQ_INT(ngx_hextoi((u_char *) "", 0), NGX_ERROR);
    UNIT_EQ_INT(ngx_hextoi((u_char *) "0g", 2), NGX_ERROR);
    UNIT_EQ_INT(ngx_hextoi((u_char *) "+1", 2), NGX_ERROR);
}


UNIT_TEST(state_reads_what_the_writer_writes)
{
    char                     *why;
    uint64_t                  totals[NGX_AI_COST_STATE_TOTALS];
    ngx_str_t                 f;
    ngx_uint_t                i, line;
    ngx_array_t               recs;
    ngx_ai_cost_state_rec_t  *rec;

    f = state_text(STATE_HEAD
                   "a 1 " STATE_DIGEST " =/v1 19675 150 646 900 1200 "
                   "1700000100\n"
                   "a 0 - =/v1%20chat 19675 0 646 0 0 1700000000\n"
                   STATE_LEDGER
                   "l 0 - =/v1 =m%25%0A%C3%a9 18446744073709551615 0 0 0 0 "
                   "0 0 0 0 0\n"
                   "a 0 - = 0 0 0 0 0 0\n", 5);

    why = state_parse(&f, &recs, totals, &line);

    UNIT_CHECK(why == NULL);
    UNIT_EQ_INT(line, 0);

    for (i = 0; i < NGX_AI_COST_STATE_TOTALS; i++) {
        UNIT_EQ_INT(totals[i], i + 1);
    }

    UNIT_EQ_INT(recs.nelts, 5);

    if (recs.nelts != 5) {
        return;
    }

    rec = recs.elts;

    UNIT_EQ_INT(rec[0].type, NGX_AI_COST_STATE_ACCOUNT);
    UNIT_EQ_INT(rec[0].keyed, 1);
    UNIT_EQ_INT(rec[0].digest[0], 0x00);
    UNIT_EQ_INT(rec[0].digest[1], 0x11);
    UNIT_EQ_INT(rec[0].digest[15], 0xff);
    UNIT_EQ_INT(rec[0].digest[31], 0xef);
    UNIT_EQ_STR(rec[0].route, "/v1");
    UNIT_EQ_INT(rec[0].model.len, 0);
    UNIT_EQ_INT(rec[0].n[0], 19675);
    UNIT_EQ_INT(rec[0].n[1], 150);
    UNIT_EQ_INT(rec[0].n[2], 646);
    UNIT_EQ_INT(rec[0].n[3], 900);
    UNIT_EQ_INT(rec[0].n[4], 1200);
    UNIT_EQ_INT(rec[0].n[5], 1700000100);
    UNIT_EQ_INT(rec[0].n[6], 0);

    UNIT_EQ_INT(rec[1].type, NGX_AI_COST_STATE_ACCOUNT);
    UNIT_EQ_INT(rec[1].keyed, 0);
    UNIT_EQ_STR(rec[1].route, "/v1 chat");

    UNIT_EQ_INT(rec[2].type, NGX_AI_COST_STATE_LEDGER);
    UNIT_EQ_INT(rec[2].keyed, 1);
    UNIT_EQ_INT(rec[2].digest[16], 0x01);
    UNIT_EQ_STR(rec[2].route, "/v1");
    UNIT_EQ_STR(rec[2].model, "openai/gpt-4o-mini");
    UNIT_EQ_INT(rec[2].n[0], 3);
    UNIT_EQ_INT(rec[2].n[4], 12345);
    UNIT_EQ_INT(rec[2].n[7], 777);
    UNIT_EQ_INT(rec[2].n[8], 1699990000);
    UNIT_EQ_INT(rec[2].n[9], 1700000100);

    UNIT_EQ_INT(rec[3].type, NGX_AI_COST_STATE_LEDGER);
    UNIT_EQ_INT(rec[3].keyed, 0);
    UNIT_EQ_STR(rec[3].model, "m%\n\xc3\xa9");
    UNIT_CHECK(rec[3].n[0] == (uint64_t) -1);

    UNIT_EQ_INT(rec[4].route.len, 0);
}


UNIT_TEST(state_minimal_and_upper_case_crc)
{
    char        *why, *body;
    u_char      *p;
    uint64_t     totals[NGX_AI_COST_STATE_TOTALS];
    ngx_str_t    f;
    ngx_uint_t   line;
    ngx_array_t  recs;

    /* only the magic and the totals are required */

    body = NGX_AI_COST_STATE_MAGIC "\ntotals 0 0 0 0 0 0 0 0\n";
    f = state_text(body, 0);

    why = state_parse(&f, &recs, totals, &line);
    UNIT_CHECK(why == NULL);
    UNIT_EQ_INT(recs.nelts, 0);

    /* the writer prints lower case hex; the reader takes both */

    for (p = f.data + f.len - 9; p < f.data + f.len - 1; p++) {
        *p = ngx_toupper(*p);
    }

    UNIT_CONTAINS(f, "end 0 ");

    why = state_parse(&f, &recs, totals, &line);
    UNIT_CHECK(why == NULL);
}


UNIT_TEST(state_zero_length_and_garbage)
{
    ngx_str_t  f;

    f.data = (u_char *) "";
    f.len = 0;
    STATE_REFUSED(&f, "it is empty", 0);

    ngx_str_set(&f, "garbage\n");
    STATE_REFUSED(&f, "it is truncated: no end line", 0);

    ngx_str_set(&f, "\n");
    STATE_REFUSED(&f, "it is truncated: no end line", 0);

    /* an end line alone: the CRC32 of nothing is 0 */

    ngx_str_set(&f, "end 0 00000000\n");
    STATE_REFUSED(&f, "it has no totals", 1);
}


UNIT_TEST(state_every_cut_is_refused)
{
    char        *why;
    size_t       len;
    uint64_t     totals[NGX_AI_COST_STATE_TOTALS];
    ngx_str_t    f, cut;
    ngx_uint_t   line;
    ngx_array_t  recs;

    f = state_text(STATE_HEAD STATE_ACCOUNT STATE_LEDGER, 2);

    why = state_parse(&f, &recs, totals, &line);
    UNIT_CHECK(why == NULL);

    cut.data = f.data;

    for (len = 0; len < f.len; len++) {
        cut.len = len;

        STATE_REFUSED(&cut, len == 0 ? "it is empty"
                            : (f.data[len - 1] == '\n'
                               ? "it is truncated: no end line"
                               : "it is truncated"), 0);
    }
}


UNIT_TEST(state_checksum_and_end_line)
{
    ngx_str_t  f;
    u_char    *p;

    f = state_text(STATE_HEAD STATE_LEDGER, 1);

    /* a changed figure */

    p = memmem(f.data, f.len, " 12345 ", 7);
    UNIT_CHECK(p != NULL);

    if (p == NULL) {
        return;
    }

    p[1] = '2';
    STATE_REFUSED(&f, "its checksum does not match", 0);
    p[1] = '1';

    /* a changed checksum: its last digit */

    p = f.data + f.len - 2;
    *p = (*p == '0') ? '1' : '0';
    STATE_REFUSED(&f, "its checksum does not match", 0);

    f = state_text(STATE_HEAD, 0);
    f.data[f.len - 2] = 'g';
    STATE_REFUSED(&f, "its end line is invalid", 0);

    ngx_str_set(&f, STATE_HEAD "end 0 0000000\n");
    STATE_REFUSED(&f, "its end line is invalid", 0);

    ngx_str_set(&f, STATE_HEAD "end 0 000000000\n");
    STATE_REFUSED(&f, "its end line is invalid", 0);

    ngx_str_set(&f, STATE_HEAD "end -1 00000000\n");
    STATE_REFUSED(&f, "its end line is invalid", 0);

    ngx_str_set(&f, STATE_HEAD "end  00000000\n");
    STATE_REFUSED(&f, "its end line is invalid", 0);

    ngx_str_set(&f, STATE_HEAD "end 0 00000000 0\n");
    STATE_REFUSED(&f, "it is truncated: no end line", 0);

    ngx_str_set(&f, STATE_HEAD "END 0 00000000\n");
    STATE_REFUSED(&f, "it is truncated: no end line", 0);

    ngx_str_set(&f, STATE_HEAD "end 0 00000000\r\n");
    STATE_REFUSED(&f, "its end line is invalid", 0);
}


UNIT_TEST(state_wrong_magic)
{
    ngx_str_t  f;

    f = state_text("ngx_ai_gateway_cost_state 2\ntotals 0 0 0 0 0 0 0 0\n",
                   0);
    STATE_REFUSED(&f, "it is not a state file of this version", 1);

    f = state_text(NGX_AI_COST_STATE_MAGIC " \ntotals 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "it is not a state file of this version", 1);

    f = state_text("totals 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "it is not a state file of this version", 1);

    f = state_text("ngx_ai_gateway_cost_state\n", 0);
    STATE_REFUSED(&f, "it is not a state file of this version", 1);
}


UNIT_TEST(state_bad_numbers)
{
    char         *why;
    uint64_t      totals[NGX_AI_COST_STATE_TOTALS];
    ngx_str_t     f;
    ngx_uint_t    line;
    ngx_array_t   recs;

    /* 2^64 - 1 is the largest, 20 digits the longest */

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 18446744073709551615 0 0 0 0 0 0 "
                   "00000000000000000001\n", 0);
    why = state_parse(&f, &recs, totals, &line);
    UNIT_CHECK(why == NULL);
    UNIT_CHECK(totals[0] == (uint64_t) -1);
    UNIT_EQ_INT(totals[7], 1);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 18446744073709551616 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an invalid number", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 0 0 0 0 0 0 0 99999999999999999999\n", 0);
    STATE_REFUSED(&f, "an invalid number", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 0 0 0 0 0 0 0 000000000000000000001\n", 0);
    STATE_REFUSED(&f, "an invalid number", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 0 -1 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an invalid number", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 0 +1 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an invalid number", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 0 1x 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an invalid number", 2);

    /* an empty field: two spaces */

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 0  0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an invalid number", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an invalid totals line", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 0 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an invalid totals line", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\ntime -5\n", 0);
    STATE_REFUSED(&f, "an invalid time line", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\ntime\n", 0);
    STATE_REFUSED(&f, "an invalid time line", 2);

    /* in records */

    f = state_text(STATE_HEAD "a 0 - =/v1 1 2 3 4 5 -6\n", 1);
    STATE_REFUSED(&f, "an invalid number", 5);

    f = state_text(STATE_HEAD "a 0 - =/v1 1 2 3 4 5 18446744073709551616\n",
                   1);
    STATE_REFUSED(&f, "an invalid number", 5);

    f = state_text(STATE_HEAD STATE_ACCOUNT
                   "l 0 - =/v1 =m 1 2 3 4 5 6 7 8 9 1.5\n", 2);
    STATE_REFUSED(&f, "an invalid number", 6);
}


UNIT_TEST(state_route_and_model_bounds)
{
    char          *why;
    uint64_t       totals[NGX_AI_COST_STATE_TOTALS];
    ngx_str_t      f;
    ngx_uint_t     line;
    ngx_array_t    recs;
    ngx_ai_buf_t   b;
    char           route[3 * (NGX_AI_COST_STATE_MAX_ROUTE + 1) + 1];
    char           model[NGX_AI_COST_STATE_MAX_MODEL + 2];
    ngx_uint_t     i;

    /* a route of the largest length, written escaped: 3 bytes each */

    for (i = 0; i < NGX_AI_COST_STATE_MAX_ROUTE; i++) {
        ngx_memcpy(route + 3 * i, "%41", 3);
    }

    route[3 * i] = '\0';

    ngx_memset(model, 'm', NGX_AI_COST_STATE_MAX_MODEL);
    model[NGX_AI_COST_STATE_MAX_MODEL] = '\0';

    ngx_ai_buf_init(&b, unit_pool(), 8192);
    ngx_ai_buf_append_str(&b, STATE_HEAD "l 0 - =");
    ngx_ai_buf_append_str(&b, route);
    ngx_ai_buf_append_str(&b, " =");
    ngx_ai_buf_append_str(&b, model);
    ngx_ai_buf_append_str(&b, " 0 0 0 0 0 0 0 0 0 0\n");

    f = state_file((char *) b.data, b.len, 1);
    why = state_parse(&f, &recs, totals, &line);
    UNIT_CHECK(why == NULL);

    if (why == NULL) {
        UNIT_EQ_INT(((ngx_ai_cost_state_rec_t *) recs.elts)->route.len,
                    NGX_AI_COST_STATE_MAX_ROUTE);
        UNIT_EQ_INT(((ngx_ai_cost_state_rec_t *) recs.elts)->model.len,
                    NGX_AI_COST_STATE_MAX_MODEL);
    }

    /* one byte more, either */

    ngx_memcpy(route + 3 * i, "B", 2);

    ngx_ai_buf_init(&b, unit_pool(), 8192);
    ngx_ai_buf_append_str(&b, STATE_HEAD "a 0 - =");
    ngx_ai_buf_append_str(&b, route);
    ngx_ai_buf_append_str(&b, " 0 0 0 0 0 0\n");
    f = state_file((char *) b.data, b.len, 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    model[NGX_AI_COST_STATE_MAX_MODEL] = 'm';
    model[NGX_AI_COST_STATE_MAX_MODEL + 1] = '\0';

    ngx_ai_buf_init(&b, unit_pool(), 8192);
    ngx_ai_buf_append_str(&b, STATE_HEAD "l 0 - =/v1 =");
    ngx_ai_buf_append_str(&b, model);
    ngx_ai_buf_append_str(&b, " 0 0 0 0 0 0 0 0 0 0\n");
    f = state_file((char *) b.data, b.len, 1);
    STATE_REFUSED(&f, "an invalid model", 5);
}


UNIT_TEST(state_bad_strings)
{
    ngx_str_t  f;

    f = state_text(STATE_HEAD "a 0 - /v1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    f = state_text(STATE_HEAD "a 0 - =/v1%2 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    f = state_text(STATE_HEAD "a 0 - =/v1% 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    f = state_text(STATE_HEAD "a 0 - =/v1%zz 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    f = state_text(STATE_HEAD "a 0 - =/v1%+1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    /* bytes the writer escapes must be escaped */

    f = state_text(STATE_HEAD "a 0 - =/v\x7f 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    f = state_text(STATE_HEAD "a 0 - =/v\xc3\xa9 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    f = state_text(STATE_HEAD "a 0 - =/v\t 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    f = state_file(STATE_HEAD "a 0 - =/v\0 0 0 0 0 0 0\n",
                   sizeof(STATE_HEAD "a 0 - =/v\0 0 0 0 0 0 0\n") - 1, 1);
    STATE_REFUSED(&f, "an invalid route", 5);

    f = state_text(STATE_HEAD "l 0 - =/v1 m 0 0 0 0 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid model", 5);

    f = state_text(STATE_HEAD "l 0 - =/v1 =m%0 0 0 0 0 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid model", 5);
}


UNIT_TEST(state_bad_records)
{
    ngx_str_t  f;

    f = state_text(STATE_HEAD STATE_ACCOUNT "x 0 - =/v1 0 0 0 0 0 0\n", 2);
    STATE_REFUSED(&f, "an unknown record", 6);

    f = state_text(STATE_HEAD "ll 0 - =/v1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an unknown record", 5);

    f = state_text(STATE_HEAD "\n", 0);
    STATE_REFUSED(&f, "an empty line", 5);

    f = state_text(STATE_HEAD "a 0 - =/v1 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "a record with a wrong number of fields", 5);

    f = state_text(STATE_HEAD "a 0 - =/v1 0 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "a record with a wrong number of fields", 5);

    /* a ledger line of an account's length, and one of 17 fields */

    f = state_text(STATE_HEAD "l 0 - =/v1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "a record with a wrong number of fields", 5);

    f = state_text(STATE_HEAD "l 0 - =/v1 =m 0 0 0 0 0 0 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "a record with a wrong number of fields", 5);

    f = state_text(STATE_HEAD "a 2 - =/v1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid key flag", 5);

    f = state_text(STATE_HEAD "a 00 - =/v1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid key flag", 5);

    f = state_text(STATE_HEAD "a 1 - =/v1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid key digest", 5);

    f = state_text(STATE_HEAD "a 0 " STATE_DIGEST " =/v1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid key digest", 5);

    f = state_text(STATE_HEAD "a 1 " STATE_DIGEST "0 =/v1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid key digest", 5);

    f = state_text(STATE_HEAD "a 1 "
                   "00112233445566778899aabbccddeeff0123456789abcdef0123456789"
                   "abcdeg =/v1 0 0 0 0 0 0\n", 1);
    STATE_REFUSED(&f, "an invalid key digest", 5);
}


UNIT_TEST(state_zone_and_totals_lines)
{
    char         *why;
    uint64_t      totals[NGX_AI_COST_STATE_TOTALS];
    ngx_str_t     f;
    ngx_uint_t    line;
    ngx_array_t   recs;

    f = state_text(NGX_AI_COST_STATE_MAGIC "\nzone =budget\n"
                   "totals 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "it is the state of another zone", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\nzone =costs\n"
                   "totals 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "it is the state of another zone", 2);

    /* the name as written escaped */

    f = state_text(NGX_AI_COST_STATE_MAGIC "\nzone =co%73t\n"
                   "totals 0 0 0 0 0 0 0 0\n", 0);
    why = state_parse(&f, &recs, totals, &line);
    UNIT_CHECK(why == NULL);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\nzone cost\n"
                   "totals 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an invalid zone line", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\nzone =cost =cost\n"
                   "totals 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an invalid zone line", 2);

    f = state_text(NGX_AI_COST_STATE_MAGIC "\nzone =cost\n" STATE_ACCOUNT, 1);
    STATE_REFUSED(&f, "it has no totals", 4);
}


UNIT_TEST(state_wrong_record_count)
{
    ngx_str_t  f;

    f = state_text(STATE_HEAD STATE_ACCOUNT STATE_LEDGER, 3);
    STATE_REFUSED(&f, "its record count does not match", 0);

    f = state_text(STATE_HEAD STATE_ACCOUNT STATE_LEDGER, 1);
    STATE_REFUSED(&f, "its record count does not match", 0);

    f = state_text(STATE_HEAD, 1);
    STATE_REFUSED(&f, "its record count does not match", 0);

    f = state_text(STATE_HEAD STATE_ACCOUNT, 18446744073709551615ULL);
    STATE_REFUSED(&f, "its record count does not match", 0);
}


/*
 * The CRC32 is read in two halves: 8 hex digits from 0x80000000 on
 * overflow a 32-bit ngx_int_t, so ngx_hextoi() of all 8 refused about
 * half of all good files on 32-bit platforms.
 */

UNIT_TEST(state_high_crc)
{
    int           n;
    char         *why;
    char          body[128];
    uint32_t      crc;
    uint64_t      totals[NGX_AI_COST_STATE_TOTALS];
    ngx_str_t     f;
    ngx_uint_t    t, line;
    ngx_array_t   recs;

    for (t = 1700000000; /* void */; t++) {
        n = snprintf(body, sizeof(body), NGX_AI_COST_STATE_MAGIC "\n"
                     "time %lu\ntotals 0 0 0 0 0 0 0 0\n", (unsigned long) t);
        crc = ngx_crc32_long((u_char *) body, n);

        if (crc >= 0xf0000000) {
            break;
        }
    }

    f = state_file(body, n, 0);
    UNIT_CONTAINS(f, "end 0 f");

    why = state_parse(&f, &recs, totals, &line);
    UNIT_CHECK(why == NULL);
}
