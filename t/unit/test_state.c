
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Unit tests: a cost zone's state file (ngx_ai_gateway_state.c).  The
 * reader is fed each file as the loader feeds it (in chunks; a version 1
 * file checked, then read again to load it), in chunks of every size
 * from the whole file down to one byte, which must give one result.
 *
 * Version 1 files are written here as the module wrote them: the lines,
 * then "end RECORDS CRC32" with the CRC32 of every byte before it.
 * Version 2 files are written by the writer (ngx_ai_cost_state_write_*)
 * or line by line with state_sealed(), a line and its CRC32.
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


static ngx_uint_t state_rec_eq(ngx_ai_cost_state_rec_t *a,
    ngx_ai_cost_state_rec_t *b);


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


/* the handler: a copy of each record, its strings in the pool */

static ngx_int_t
state_collect(void *data, ngx_ai_cost_state_rec_t *rec)
{
    ngx_array_t              *recs = data;
    ngx_ai_cost_state_rec_t  *r;

    r = ngx_array_push(recs);
    if (r == NULL) {
        return NGX_ERROR;
    }

    *r = *rec;

    r->route.data = ngx_pnalloc(unit_pool(), rec->route.len + 1);
    r->model.data = ngx_pnalloc(unit_pool(), rec->model.len + 1);

    if (r->route.data == NULL || r->model.data == NULL) {
        return NGX_ERROR;
    }

    if (rec->route.len) {
        ngx_memcpy(r->route.data, rec->route.data, rec->route.len);
    }

    if (rec->model.len) {
        ngx_memcpy(r->model.data, rec->model.data, rec->model.len);
    }

    return NGX_OK;
}


/* f read as the loader reads it, fed chunk bytes at a time */

static ngx_ai_cost_state_t *
state_read_chunked(ngx_str_t *f, size_t chunk, ngx_array_t *recs)
{
    u_char               *copy;
    size_t                off, n;
    ngx_uint_t            pass;
    ngx_ai_cost_state_t  *st;

    st = ngx_palloc(unit_pool(), sizeof(ngx_ai_cost_state_t));

    /* small, so that it grows */
    if (st == NULL
        || ngx_array_init(recs, unit_pool(), 2,
                          sizeof(ngx_ai_cost_state_rec_t))
           != NGX_OK)
    {
        return NULL;
    }

    for (pass = 0; pass < 2; pass++) {
        ngx_ai_cost_state_init(st, &state_zone, state_collect, recs, pass);
        recs->nelts = 0;

        for (off = 0; off < f->len; off += n) {
            n = ngx_min(chunk, f->len - off);

            /* a block of its own: ASan sees a read past the end */
            copy = ngx_pnalloc(unit_pool(), n);
            if (copy == NULL) {
                return NULL;
            }

            ngx_memcpy(copy, f->data + off, n);

            if (ngx_ai_cost_state_feed(st, copy, n) != NGX_OK) {
                break;
            }
        }

        if (off >= f->len) {
            ngx_ai_cost_state_finish(st);
        }

        if (st->version != 1 || st->why) {
            break;
        }
    }

    return st;
}


/* read whole, then in chunks of every size: the same each time */

static ngx_ai_cost_state_t *
state_read(ngx_str_t *f, ngx_array_t *recs)
{
    size_t                    chunk;
    ngx_uint_t                i;
    ngx_array_t               other;
    ngx_ai_cost_state_t      *st, *again;
    ngx_ai_cost_state_rec_t  *a, *b;

    st = state_read_chunked(f, f->len ? f->len : 1, recs);
    if (st == NULL) {
        return NULL;
    }

    for (chunk = 1; chunk < f->len && chunk < 300; chunk++) {
        again = state_read_chunked(f, chunk, &other);

        if (again == NULL
            || again->why != st->why || again->why_line != st->why_line
            || again->lines != st->lines || again->skipped != st->skipped
            || again->accounts != st->accounts
            || again->ledgers != st->ledgers
            || again->has_totals != st->has_totals
            || again->truncated != st->truncated
            || other.nelts != recs->nelts)
        {
            unit_fail(__FILE__, __LINE__, "read in chunks of %lu: another "
                      "result", (unsigned long) chunk);
            return st;
        }

        a = recs->elts;
        b = other.elts;

        for (i = 0; i < other.nelts; i++) {
            if (ngx_memcmp(a[i].n, b[i].n, sizeof(a[i].n)) != 0
                || !state_rec_eq(&a[i], &b[i]))
            {
                unit_fail(__FILE__, __LINE__, "read in chunks of %lu: "
                          "record %lu differs", (unsigned long) chunk,
                          (unsigned long) i);
                return st;
            }
        }
    }

    return st;
}


/* the old shape: NULL if the file is read (as a whole), else why */

static char *
state_parse(ngx_str_t *f, ngx_array_t *recs, uint64_t *totals,
    ngx_uint_t *line)
{
    ngx_ai_cost_state_t  *st;

    st = state_read(f, recs);
    if (st == NULL) {
        return "no memory in the test";
    }

    ngx_memcpy(totals, st->totals, sizeof(st->totals));
    *line = st->why_line;

    return st->why;
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

    /* not the version 1 header: read as version 2, where nothing checks
     * out */

    ngx_str_set(&f, "garbage\n");
    STATE_REFUSED(&f, "no line of it checks out", 0);

    ngx_str_set(&f, "\n");
    STATE_REFUSED(&f, "no line of it checks out", 0);

    ngx_str_set(&f, "end 0 00000000\n");
    STATE_REFUSED(&f, "no line of it checks out", 0);

    /* no line feed at all */

    ngx_str_set(&f, "garbage");
    STATE_REFUSED(&f, "it is truncated", 0);

    ngx_str_set(&f, NGX_AI_COST_STATE_MAGIC);
    STATE_REFUSED(&f, "it is truncated", 0);
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

    /* a first line other than version 1's: version 2, without CRCs */

    f = state_text("ngx_ai_gateway_cost_state 2\ntotals 0 0 0 0 0 0 0 0\n",
                   0);
    STATE_REFUSED(&f, "no line of it checks out", 0);

    f = state_text(NGX_AI_COST_STATE_MAGIC " \ntotals 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "no line of it checks out", 0);

    f = state_text("totals 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "no line of it checks out", 0);

    f = state_text("ngx_ai_gateway_cost_state\n", 0);
    STATE_REFUSED(&f, "no line of it checks out", 0);

    /* the version 1 header later on */

    f = state_text(NGX_AI_COST_STATE_MAGIC "\n" NGX_AI_COST_STATE_MAGIC "\n"
                   "totals 0 0 0 0 0 0 0 0\n", 0);
    STATE_REFUSED(&f, "an unknown record", 2);
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


/* ---- version 2 ---- */

/* a line and its CRC32, appended to b */

static void
state_sealed(ngx_ai_buf_t *b, const char *line)
{
    char    crc[16];
    size_t  len;

    len = strlen(line);

    snprintf(crc, sizeof(crc), " %08x\n",
             (unsigned) ngx_crc32_long((u_char *) line, len));

    ngx_ai_buf_append(b, line, len);
    ngx_ai_buf_append_str(b, crc);
}


static ngx_str_t
state_buf_str(ngx_ai_buf_t *b)
{
    ngx_str_t  s;

    s.data = b->data;
    s.len = b->len;

    return s;
}


/* the records of the version 1 tests, written by the writer */

static ngx_uint_t
state_v2_records(ngx_ai_cost_state_rec_t *rec)
{
    ngx_uint_t  i;

    ngx_memzero(rec, 4 * sizeof(ngx_ai_cost_state_rec_t));

    rec[0].type = NGX_AI_COST_STATE_ACCOUNT;
    rec[0].keyed = 1;
    for (i = 0; i < NGX_AI_COST_STATE_DIGEST_LEN; i++) {
        rec[0].digest[i] = (u_char) (i * 17);
    }
    ngx_str_set(&rec[0].route, "/v1");
    rec[0].n[0] = 19675;
    rec[0].n[1] = 150;
    rec[0].n[2] = 646;
    rec[0].n[3] = 900;
    rec[0].n[4] = 1200;
    rec[0].n[5] = 1700000100;

    rec[1].type = NGX_AI_COST_STATE_ACCOUNT;
    ngx_str_set(&rec[1].route, "/v1 chat%\n");
    rec[1].n[5] = 1700000000;

    rec[2].type = NGX_AI_COST_STATE_LEDGER;
    rec[2].keyed = 1;
    rec[2].digest[31] = 0xff;
    ngx_str_set(&rec[2].route, "/v1");
    ngx_str_set(&rec[2].model, "openai/gpt-4o-mini");
    for (i = 0; i < 10; i++) {
        rec[2].n[i] = 1000 + i;
    }

    rec[3].type = NGX_AI_COST_STATE_LEDGER;
    ngx_str_set(&rec[3].route, "");
    ngx_str_set(&rec[3].model, "m\xc3\xa9");
    rec[3].n[0] = (uint64_t) -1;

    return 4;
}


static uint64_t  state_totals[NGX_AI_COST_STATE_TOTALS] =
    { 1, 2, 3, 4, 5, 6, 7, 8 };


static ngx_str_t
state_v2_file(ngx_ai_cost_state_rec_t *rec, ngx_uint_t n)
{
    ngx_uint_t    i;
    ngx_ai_buf_t  b;

    ngx_ai_buf_init(&b, unit_pool(), 256);

    UNIT_CHECK(ngx_ai_cost_state_write_head(&b, &state_zone, 1700000000,
                                            state_totals) == NGX_OK);

    for (i = 0; i < n; i++) {
        UNIT_CHECK(ngx_ai_cost_state_write_rec(&b, &rec[i]) == NGX_OK);
    }

    UNIT_CHECK(ngx_ai_cost_state_write_end(&b, n) == NGX_OK);

    return state_buf_str(&b);
}


static ngx_uint_t
state_rec_eq(ngx_ai_cost_state_rec_t *a, ngx_ai_cost_state_rec_t *b)
{
    return a->type == b->type
           && a->keyed == b->keyed
           && ngx_memcmp(a->digest, b->digest,
                         NGX_AI_COST_STATE_DIGEST_LEN) == 0
           && a->route.len == b->route.len
           && (a->route.len == 0
               || ngx_memcmp(a->route.data, b->route.data, a->route.len)
                  == 0)
           && a->model.len == b->model.len
           && (a->model.len == 0
               || ngx_memcmp(a->model.data, b->model.data, a->model.len)
                  == 0)
           && ngx_memcmp(a->n, b->n, sizeof(a->n)) == 0;
}


UNIT_TEST(state_v2_writer_format)
{
    ngx_str_t                 f;
    ngx_ai_buf_t              b;
    ngx_ai_cost_state_rec_t   rec[4];

    /* the exact bytes: fields, a space, the CRC32 of the fields */

    ngx_ai_buf_init(&b, unit_pool(), 64);
    UNIT_CHECK(ngx_ai_cost_state_write_end(&b, 3) == NGX_OK);
    UNIT_EQ_INT(ngx_crc32_long((u_char *) "end 3", 5), 0x2983a958);
    UNIT_EQ_STR(b, "end 3 2983a958\n");

    (void) state_v2_records(rec);

    ngx_ai_buf_init(&b, unit_pool(), 64);
    UNIT_CHECK(ngx_ai_cost_state_write_rec(&b, &rec[1]) == NGX_OK);
    f = state_buf_str(&b);
    UNIT_CONTAINS(f, "a 0 - =/v1%20chat%25%0A 0 0 0 0 0 1700000000 ");

    ngx_ai_buf_init(&b, unit_pool(), 64);
    UNIT_CHECK(ngx_ai_cost_state_write_rec(&b, &rec[2]) == NGX_OK);
    f = state_buf_str(&b);
    UNIT_CONTAINS(f, "l 1 0000000000000000000000000000000000000000000000000"
                  "0000000000000ff =/v1 =openai/gpt-4o-mini 1000 1001 1002 "
                  "1003 1004 1005 1006 1007 1008 1009 ");

    f = state_v2_file(rec, 4);
    UNIT_CONTAINS(f, NGX_AI_COST_STATE_MAGIC2 " ");
    UNIT_CONTAINS(f, "\nzone =cost ");
    UNIT_CONTAINS(f, "\ntime 1700000000 ");
    UNIT_CONTAINS(f, "\ntotals 1 2 3 4 5 6 7 8 ");
    UNIT_CONTAINS(f, "\nl 0 - = =m%C3%A9 18446744073709551615 0 0 0 0 0 0 0 "
                  "0 0 ");
}


UNIT_TEST(state_v2_round_trip)
{
    ngx_str_t                 f;
    ngx_uint_t                i, n;
    ngx_array_t               recs;
    ngx_ai_cost_state_t      *st;
    ngx_ai_cost_state_rec_t   rec[4], *got;

    n = state_v2_records(rec);
    f = state_v2_file(rec, n);

    st = state_read(&f, &recs);
    if (st == NULL) {
        UNIT_CHECK(st != NULL);
        return;
    }

    UNIT_CHECK(st->why == NULL);
    UNIT_EQ_INT(st->version, 2);
    UNIT_EQ_INT(st->lines, 9);
    UNIT_EQ_INT(st->accounts, 2);
    UNIT_EQ_INT(st->ledgers, 2);
    UNIT_EQ_INT(st->skipped, 0);
    UNIT_EQ_INT(st->end_records, 4);
    UNIT_CHECK(st->has_head && st->has_zone && st->has_totals && st->has_end);
    UNIT_CHECK(!st->truncated);
    UNIT_CHECK(ngx_memcmp(st->totals, state_totals, sizeof(state_totals))
               == 0);

    UNIT_EQ_INT(recs.nelts, n);

    got = recs.elts;

    for (i = 0; i < recs.nelts && i < n; i++) {
        if (!state_rec_eq(&got[i], &rec[i])) {
            unit_fail(__FILE__, __LINE__, "record %lu read back differs",
                      (unsigned long) i);
        }
    }

    /* a line at a time, as the reader's other entry */

    ngx_ai_cost_state_init(st, &state_zone, NULL, NULL, 0);
    UNIT_EQ_INT(ngx_ai_cost_state_line(st, f.data,
                                       sizeof(NGX_AI_COST_STATE_MAGIC2 " "
                                              "00000000") - 1), NGX_OK);
    UNIT_EQ_INT(st->version, 2);
    UNIT_CHECK(st->has_head);
}


/*
 * Every byte changed, one at a time: the line it is in is skipped (a
 * CRC32 finds every change of one byte), every other line is read.
 */

UNIT_TEST(state_v2_every_byte_changed)
{
    u_char                   *p, *nl, save;
    size_t                    i;
    ngx_str_t                 f;
    ngx_uint_t                n, line, lines, records, recline;
    ngx_array_t               recs;
    ngx_ai_cost_state_t      *st;
    ngx_ai_cost_state_rec_t   rec[4];

    n = state_v2_records(rec);
    f = state_v2_file(rec, n);

    lines = 9;

    for (i = 0; i < f.len; i++) {

        /* the line of byte i, 1-based */

        line = 1;

        for (p = f.data; p < f.data + i; p++) {
            if (*p == '\n') {
                line++;
            }
        }

        save = f.data[i];
        f.data[i] ^= (save == '\n') ? 0x01 : 0x04;

        st = state_read_chunked(&f, 4096, &recs);

        f.data[i] = save;

        if (st == NULL) {
            return;
        }

        records = st->accounts + st->ledgers;

        if (st->why || st->skipped != 1) {
            unit_fail(__FILE__, __LINE__, "byte %lu: \"%s\", %lu skipped",
                      (unsigned long) i, st->why ? st->why : "",
                      (unsigned long) st->skipped);
            continue;
        }

        if (save == '\n') {

            /* two lines made one: both lost, or a line cut short at the
             * end */

            UNIT_EQ_INT(st->lines, (line == lines) ? lines : lines - 1);
            UNIT_EQ_INT(st->bad_line[0], line);

            recline = (line >= 5 && line <= 8) + (line + 1 >= 5
                                                  && line + 1 <= 8);
            UNIT_EQ_INT(records, n - (line == lines ? 0 : recline));
            continue;
        }

        UNIT_EQ_INT(st->bad_line[0], line);
        UNIT_EQ_INT(st->lines, lines);
        UNIT_EQ_INT(records, n - (line >= 5 && line <= 8));
        UNIT_EQ_INT(st->has_head, line != 1);
        UNIT_EQ_INT(st->has_zone, line != 2);
        UNIT_EQ_INT(st->has_totals, line != 4);
        UNIT_EQ_INT(st->has_end, line != 9);
        UNIT_EQ_INT(st->truncated, line == 9);

        nl = ngx_strlchr(f.data + i, f.data + f.len, '\n');
        UNIT_CHECK(nl != NULL);
    }
}


/* each kind of bad line, between two good records */

UNIT_TEST(state_v2_every_bad_line)
{
    ngx_str_t                 f;
    ngx_uint_t                i;
    ngx_array_t               recs;
    ngx_ai_buf_t              b;
    ngx_ai_cost_state_t      *st;
    char                      route[3 * (NGX_AI_COST_STATE_MAX_ROUTE + 1)
                                    + 64];

    static struct {
        const char  *line;
        const char  *why;
        ngx_uint_t   sealed;
    } bad[] = {
        { "x 0 - =/v1 0 0 0 0 0 0", "an unknown record", 1 },
        { "ll 0 - =/v1 0 0 0 0 0 0", "an unknown record", 1 },
        { NGX_AI_COST_STATE_MAGIC2, "an unknown record", 1 },
        { "a 0 - =/v1 0 0 0 0 0", "a record with a wrong number of fields",
          1 },
        { "l 0 - =/v1 0 0 0 0 0 0", "a record with a wrong number of fields",
          1 },
        { "a 2 - =/v1 0 0 0 0 0 0", "an invalid key flag", 1 },
        { "a 1 - =/v1 0 0 0 0 0 0", "an invalid key digest", 1 },
        { "a 0 " STATE_DIGEST " =/v1 0 0 0 0 0 0", "an invalid key digest",
          1 },
        { "a 0 - /v1 0 0 0 0 0 0", "an invalid route", 1 },
        { "a 0 - =/v1%zz 0 0 0 0 0 0", "an invalid route", 1 },
        { "a 0 - =/v\x7f 0 0 0 0 0 0", "an invalid route", 1 },
        { "l 0 - =/v1 m 0 0 0 0 0 0 0 0 0 0", "an invalid model", 1 },
        { "a 0 - =/v1 0 0 0 0 0 -1", "an invalid number", 1 },
        { "a 0 - =/v1 0 0 0 0 0 18446744073709551616", "an invalid number",
          1 },
        { "zone cost", "an invalid zone line", 1 },
        { "time -5", "an invalid time line", 1 },
        { "totals 0 0 0", "an invalid totals line", 1 },
        { "totals 0 0 0 0 0 0 0 x", "an invalid number", 1 },
        { "end x", "an invalid end line", 1 },
        { "end 1 2", "an invalid end line", 1 },
        { "", "an empty line", 0 },
        { "a 0 - =/v1 0 0 0 0 0 0", "a line without a checksum", 0 },
        { "a 0 - =/v1 0 0 0 0 0 0 0000000g", "a line without a checksum",
          0 },
        { "a 0 - =/v1 0 0 0 0 0 0 00000000", "its checksum does not match",
          0 },
        { "a 0 - =/v1 0 0 0 0 0 0  00000000", "its checksum does not match",
          0 },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ngx_ai_buf_init(&b, unit_pool(), 256);
        state_sealed(&b, NGX_AI_COST_STATE_MAGIC2);
        state_sealed(&b, "zone =cost");
        state_sealed(&b, "a 0 - =/first 1 2 3 4 5 6");

        if (bad[i].sealed) {
            state_sealed(&b, bad[i].line);

        } else {
            ngx_ai_buf_append_str(&b, bad[i].line);
            ngx_ai_buf_append_str(&b, "\n");
        }

        state_sealed(&b, "a 0 - =/last 1 2 3 4 5 6");
        state_sealed(&b, "totals 1 2 3 4 5 6 7 8");
        state_sealed(&b, "end 3");

        f = state_buf_str(&b);
        st = state_read(&f, &recs);

        if (st == NULL) {
            return;
        }

        if (st->why || st->skipped != 1 || st->bad_line[0] != 4
            || strcmp(st->bad_why[0], bad[i].why) != 0
            || recs.nelts != 2 || st->end_records != 3)
        {
            unit_fail(__FILE__, __LINE__, "\"%s\": \"%s\" %lu skipped, "
                      "line %lu \"%s\", %lu records; expected \"%s\"",
                      bad[i].line, st->why ? st->why : "",
                      (unsigned long) st->skipped,
                      (unsigned long) st->bad_line[0],
                      st->skipped ? st->bad_why[0] : "",
                      (unsigned long) recs.nelts, bad[i].why);
        }
    }

    /* a route one byte too long, a line too long, a line after the end */

    ngx_memcpy(route, "a 0 - =", 7);
    ngx_memset(route + 7, 'r', NGX_AI_COST_STATE_MAX_ROUTE + 1);
    ngx_memcpy(route + 7 + NGX_AI_COST_STATE_MAX_ROUTE + 1, " 0 0 0 0 0 0",
               sizeof(" 0 0 0 0 0 0"));

    ngx_ai_buf_init(&b, unit_pool(), 256);
    state_sealed(&b, NGX_AI_COST_STATE_MAGIC2);
    state_sealed(&b, route);

    for (i = 0; i < NGX_AI_COST_STATE_MAX_LINE + 1; i++) {
        ngx_ai_buf_append_str(&b, "y");
    }

    ngx_ai_buf_append_str(&b, "\n");
    state_sealed(&b, "a 0 - =/v1 1 2 3 4 5 6");
    state_sealed(&b, "end 1");
    state_sealed(&b, "a 0 - =/v2 1 2 3 4 5 6");

    f = state_buf_str(&b);
    st = state_read(&f, &recs);

    if (st == NULL) {
        return;
    }

    UNIT_CHECK(st->why == NULL);
    UNIT_EQ_INT(st->skipped, 3);
    UNIT_EQ_INT(st->lines, 6);
    UNIT_EQ_STR(((ngx_ai_cost_state_rec_t *) recs.elts)[0].route, "/v1");
    UNIT_EQ_INT(recs.nelts, 1);
    UNIT_EQ_INT(st->bad_line[0], 2);
    UNIT_CHECK(strcmp(st->bad_why[0], "an invalid route") == 0);
    UNIT_EQ_INT(st->bad_line[1], 3);
    UNIT_CHECK(strcmp(st->bad_why[1], "a line too long") == 0);
    UNIT_EQ_INT(st->bad_line[2], 6);
    UNIT_CHECK(strcmp(st->bad_why[2], "a line after the end line") == 0);
    UNIT_CHECK(!st->has_totals && !st->has_zone && st->has_end);
}


/* the longest line read, and one byte more */

UNIT_TEST(state_v2_line_bound)
{
    size_t                 len;
    ngx_str_t              f;
    ngx_ai_buf_t           b;
    ngx_array_t            recs;
    ngx_ai_cost_state_t   *st;
    ngx_uint_t             extra;

    for (extra = 0; extra < 2; extra++) {
        ngx_ai_buf_init(&b, unit_pool(), 256);
        state_sealed(&b, NGX_AI_COST_STATE_MAGIC2);

        /* "a 0 - =/rrr... 0 0 0 0 0 0 CRC32": an invalid route, the CRC
         * right, MAX_LINE bytes in all */

        len = NGX_AI_COST_STATE_MAX_LINE + extra - 9 - 7 - 12;

        ngx_ai_buf_append_str(&b, "a 0 - =");
        while (len--) {
            ngx_ai_buf_append_str(&b, "r");
        }

        ngx_ai_buf_append_str(&b, " 0 0 0 0 0 0");

        {
            char      crc[16];
            u_char   *line;

            line = b.data + sizeof(NGX_AI_COST_STATE_MAGIC2) + 9;
            snprintf(crc, sizeof(crc), " %08x\n",
                     (unsigned) ngx_crc32_long(line,
                                               b.data + b.len - line));
            ngx_ai_buf_append_str(&b, crc);
        }

        state_sealed(&b, "end 0");

        f = state_buf_str(&b);
        st = state_read_chunked(&f, 1000, &recs);

        if (st == NULL) {
            return;
        }

        UNIT_EQ_INT(st->skipped, 1);
        UNIT_EQ_INT(st->lines, 3);
        UNIT_CHECK(st->has_end);

        if (st->skipped) {
            UNIT_CHECK(strcmp(st->bad_why[0], extra ? "a line too long"
                                                    : "an invalid route")
                       == 0);
        }
    }
}


/* cut anywhere: the lines before the cut are read, accounts first */

UNIT_TEST(state_v2_every_cut)
{
    size_t                    len;
    ngx_str_t                 f, cut;
    ngx_uint_t                i, n, lines;
    ngx_array_t               recs;
    ngx_ai_cost_state_t      *st;
    ngx_ai_cost_state_rec_t   rec[4], *got;

    n = state_v2_records(rec);
    f = state_v2_file(rec, n);

    for (len = 0; len < f.len; len++) {
        cut.data = f.data;
        cut.len = len;

        st = state_read_chunked(&cut, 64, &recs);

        if (st == NULL) {
            return;
        }

        lines = 0;

        for (i = 0; i < len; i++) {
            if (f.data[i] == '\n') {
                lines++;
            }
        }

        if (len == 0) {
            UNIT_CHECK(st->why && strcmp(st->why, "it is empty") == 0);
            continue;
        }

        if (lines == 0) {
            UNIT_CHECK(st->why && strcmp(st->why, "it is truncated") == 0);
            continue;
        }

        UNIT_CHECK(st->why == NULL);
        UNIT_CHECK(st->truncated);
        UNIT_EQ_INT(st->skipped, f.data[len - 1] != '\n');
        UNIT_EQ_INT(st->has_totals, lines >= 4);

        /* records 1..4 on lines 5..8 */

        UNIT_EQ_INT(recs.nelts, lines <= 4 ? 0 : ngx_min(lines - 4, n));

        got = recs.elts;

        for (i = 0; i < recs.nelts; i++) {
            UNIT_CHECK(state_rec_eq(&got[i], &rec[i]));
        }
    }
}


UNIT_TEST(state_v2_refused_whole)
{
    ngx_str_t                 f;
    ngx_array_t               recs;
    ngx_ai_buf_t              b;
    ngx_ai_cost_state_t      *st;

    /* another zone: refused before any record */

    ngx_ai_buf_init(&b, unit_pool(), 256);
    state_sealed(&b, NGX_AI_COST_STATE_MAGIC2);
    state_sealed(&b, "zone =budget");
    state_sealed(&b, "a 0 - =/v1 1 2 3 4 5 6");
    state_sealed(&b, "end 1");
    f = state_buf_str(&b);
    STATE_REFUSED(&f, "it is the state of another zone", 2);

    /* ... after records were read: only that line is skipped */

    ngx_ai_buf_init(&b, unit_pool(), 256);
    state_sealed(&b, NGX_AI_COST_STATE_MAGIC2);
    state_sealed(&b, "a 0 - =/v1 1 2 3 4 5 6");
    state_sealed(&b, "zone =budget");
    state_sealed(&b, "end 1");
    f = state_buf_str(&b);
    st = state_read(&f, &recs);

    if (st) {
        UNIT_CHECK(st->why == NULL);
        UNIT_EQ_INT(st->skipped, 1);
        UNIT_EQ_INT(recs.nelts, 1);
        UNIT_CHECK(!st->has_zone);
    }

    /* a later version */

    ngx_ai_buf_init(&b, unit_pool(), 256);
    state_sealed(&b, "ngx_ai_gateway_cost_state 3");
    state_sealed(&b, "a 0 - =/v1 1 2 3 4 5 6");
    f = state_buf_str(&b);
    STATE_REFUSED(&f, "it is not a state file of a version this module "
                  "reads", 1);

    /* version 1's header with a CRC32: not version 1 */

    ngx_ai_buf_init(&b, unit_pool(), 256);
    state_sealed(&b, NGX_AI_COST_STATE_MAGIC);
    f = state_buf_str(&b);
    STATE_REFUSED(&f, "it is not a state file of a version this module "
                  "reads", 1);

    /* nothing checks out */

    ngx_ai_buf_init(&b, unit_pool(), 256);
    ngx_ai_buf_append_str(&b, NGX_AI_COST_STATE_MAGIC2 " 00000000\n"
                          "a 0 - =/v1 1 2 3 4 5 6 00000000\n");
    f = state_buf_str(&b);
    STATE_REFUSED(&f, "no line of it checks out", 0);

    /* the header alone: an empty zone, cut short */

    ngx_ai_buf_init(&b, unit_pool(), 256);
    state_sealed(&b, NGX_AI_COST_STATE_MAGIC2);
    f = state_buf_str(&b);
    st = state_read(&f, &recs);

    if (st) {
        UNIT_CHECK(st->why == NULL);
        UNIT_CHECK(st->truncated && !st->has_totals);
        UNIT_EQ_INT(recs.nelts, 0);
    }
}


UNIT_TEST(state_v2_bad_lines_told)
{
    ngx_str_t                 f;
    ngx_uint_t                i;
    ngx_array_t               recs;
    ngx_ai_buf_t              b;
    ngx_ai_cost_state_t      *st;

    ngx_ai_buf_init(&b, unit_pool(), 256);
    state_sealed(&b, NGX_AI_COST_STATE_MAGIC2);

    for (i = 0; i < NGX_AI_COST_STATE_BAD + 2; i++) {
        ngx_ai_buf_append_str(&b, "a 0 - =/v1 0 0 0 0 0 0 00000000\n");
        state_sealed(&b, "a 0 - =/v1 1 2 3 4 5 6");
    }

    state_sealed(&b, "end 5");

    f = state_buf_str(&b);
    st = state_read(&f, &recs);

    if (st == NULL) {
        return;
    }

    UNIT_CHECK(st->why == NULL);
    UNIT_EQ_INT(st->skipped, NGX_AI_COST_STATE_BAD + 2);
    UNIT_EQ_INT(st->accounts, NGX_AI_COST_STATE_BAD + 2);
    UNIT_EQ_INT(st->end_records, 5);

    for (i = 0; i < NGX_AI_COST_STATE_BAD; i++) {
        UNIT_EQ_INT(st->bad_line[i], 2 + 2 * i);
    }
}


static ngx_int_t
state_refuse_second(void *data, ngx_ai_cost_state_rec_t *rec)
{
    ngx_uint_t  *n = data;

    return (++*n == 2) ? NGX_ERROR : NGX_OK;
}


UNIT_TEST(state_handler_stops_and_v1_changed)
{
    ngx_str_t             f;
    ngx_uint_t            n;
    ngx_ai_buf_t          b;
    ngx_ai_cost_state_t  *st;

    st = ngx_palloc(unit_pool(), sizeof(ngx_ai_cost_state_t));
    if (st == NULL) {
        return;
    }

    ngx_ai_buf_init(&b, unit_pool(), 256);
    state_sealed(&b, NGX_AI_COST_STATE_MAGIC2);
    state_sealed(&b, "a 0 - =/v1 1 2 3 4 5 6");
    state_sealed(&b, "a 0 - =/v2 1 2 3 4 5 6");
    state_sealed(&b, "a 0 - =/v3 1 2 3 4 5 6");
    f = state_buf_str(&b);

    n = 0;
    ngx_ai_cost_state_init(st, &state_zone, state_refuse_second, &n, 0);
    UNIT_EQ_INT(ngx_ai_cost_state_feed(st, f.data, f.len), NGX_DONE);
    UNIT_CHECK(st->stopped);
    UNIT_EQ_INT(n, 2);
    UNIT_EQ_INT(st->lines, 3);
    UNIT_EQ_INT(ngx_ai_cost_state_feed(st, f.data, f.len), NGX_DONE);

    /* version 1 read to load (checked before): a fault is a change */

    f = state_text(STATE_HEAD STATE_ACCOUNT "a x\n", 2);

    n = 0;
    ngx_ai_cost_state_init(st, &state_zone, state_refuse_second, &n, 1);
    UNIT_EQ_INT(ngx_ai_cost_state_feed(st, f.data, f.len), NGX_DONE);
    UNIT_CHECK(st->why
               && strcmp(st->why, "it changed while it was read") == 0);
    UNIT_EQ_INT(st->why_line, 6);
    UNIT_EQ_INT(n, 1);

    /* checked only: no record given */

    f = state_text(STATE_HEAD STATE_ACCOUNT STATE_LEDGER, 2);

    n = 0;
    ngx_ai_cost_state_init(st, &state_zone, state_refuse_second, &n, 0);
    UNIT_EQ_INT(ngx_ai_cost_state_feed(st, f.data, f.len), NGX_OK);
    ngx_ai_cost_state_finish(st);
    UNIT_CHECK(st->why == NULL);
    UNIT_EQ_INT(st->version, 1);
    UNIT_EQ_INT(n, 0);
    UNIT_EQ_INT(st->accounts + st->ledgers, 2);
}


/* version 1: a line too long is a fault, its bytes in the CRC32 */

UNIT_TEST(state_v1_long_line)
{
    ngx_str_t     f;
    ngx_uint_t    i;
    ngx_ai_buf_t  b;

    ngx_ai_buf_init(&b, unit_pool(), 256);
    ngx_ai_buf_append_str(&b, STATE_HEAD "end 0 00000000\n");

    for (i = 0; i < NGX_AI_COST_STATE_MAX_LINE + 1; i++) {
        ngx_ai_buf_append_str(&b, "y");
    }

    ngx_ai_buf_append_str(&b, "\n");

    f = state_file((char *) b.data, b.len, 0);
    STATE_REFUSED(&f, "an unknown record", 5);

    /* the line too long itself: in the CRC32, then the fault */

    ngx_ai_buf_init(&b, unit_pool(), 256);
    ngx_ai_buf_append_str(&b, STATE_HEAD);

    for (i = 0; i < NGX_AI_COST_STATE_MAX_LINE + 1; i++) {
        ngx_ai_buf_append_str(&b, "y");
    }

    ngx_ai_buf_append_str(&b, "\n");

    f = state_file((char *) b.data, b.len, 0);
    STATE_REFUSED(&f, "a line too long", 5);
}


/*
 * sync=: the "sync" line and the "dl" / "da" lines of deltas not
 * acknowledged by Redis, written and read back (signed numbers, the
 * batch flags); not counted as records; bad ones skipped
 */

UNIT_TEST(state_v2_deltas)
{
    ngx_str_t                 f;
    ngx_uint_t                i;
    ngx_array_t               recs;
    ngx_ai_buf_t              b;
    ngx_ai_cost_state_t      *st;
    ngx_ai_cost_state_rec_t   rec[4], *got;

    static uint64_t  pend[8] = { 1, 0, 10, 20, 42500, 0, 10, 40000 };
    static uint64_t  send[8] = { 2, 1, 20, 40, 85000, 1, 20, 80000 };

    (void) state_v2_records(rec);

    rec[1] = rec[0];
    rec[1].type = NGX_AI_COST_STATE_DACCOUNT;
    ngx_memzero(rec[1].n, sizeof(rec[1].n));
    rec[1].batch = 1;
    rec[1].d[0] = 19675;
    rec[1].d[1] = -4000;
    rec[1].d[2] = 646;
    rec[1].d[3] = -4000;
    rec[1].d[4] = INT64_MAX;
    rec[1].d[9] = 7;

    rec[3] = rec[2];
    rec[3].type = NGX_AI_COST_STATE_DLEDGER;
    ngx_memzero(rec[3].n, sizeof(rec[3].n));
    for (i = 0; i < 16; i++) {
        rec[3].d[i] = (int64_t) i * 1000;
    }

    ngx_ai_buf_init(&b, unit_pool(), 256);

    UNIT_CHECK(ngx_ai_cost_state_write_head(&b, &state_zone, 1700000000,
                                            state_totals) == NGX_OK);
    UNIT_CHECK(ngx_ai_cost_state_write_sync(&b, (u_char *) "0123456789abcdef",
                                            77, 1, pend, send)
               == NGX_OK);
    UNIT_CHECK(ngx_ai_cost_state_write_rec(&b, &rec[0]) == NGX_OK);
    UNIT_CHECK(ngx_ai_cost_state_write_delta(&b, &rec[1]) == NGX_OK);
    UNIT_CHECK(ngx_ai_cost_state_write_rec(&b, &rec[2]) == NGX_OK);
    UNIT_CHECK(ngx_ai_cost_state_write_delta(&b, &rec[3]) == NGX_OK);
    UNIT_CHECK(ngx_ai_cost_state_write_end(&b, 2) == NGX_OK);

    f = state_buf_str(&b);
    UNIT_CONTAINS(f, "\nsync 0123456789abcdef 77 1 1 0 10 20 42500 0 10 "
                  "40000 2 1 20 40 85000 1 20 80000 ");
    UNIT_CONTAINS(f, " =/v1 1 19675 -4000 646 -4000 9223372036854775807 0 0 "
                  "0 0 7 ");
    UNIT_CONTAINS(f, "\ndl 1 ");

    st = state_read(&f, &recs);
    if (st == NULL) {
        UNIT_CHECK(st != NULL);
        return;
    }

    UNIT_CHECK(st->why == NULL);
    UNIT_EQ_INT(st->skipped, 0);
    UNIT_EQ_INT(st->accounts, 1);
    UNIT_EQ_INT(st->ledgers, 1);
    UNIT_EQ_INT(st->deltas, 2);
    UNIT_CHECK(!st->truncated);
    UNIT_CHECK(st->has_sync);
    UNIT_CHECK(ngx_memcmp(st->instance, "0123456789abcdef", 16) == 0);
    UNIT_EQ_INT(st->seq, 77);
    UNIT_EQ_INT(st->frozen, 1);
    UNIT_CHECK(ngx_memcmp(st->sync_pend, pend, sizeof(pend)) == 0);
    UNIT_CHECK(ngx_memcmp(st->sync_send, send, sizeof(send)) == 0);

    UNIT_EQ_INT(recs.nelts, 4);

    got = recs.elts;

    for (i = 0; i < recs.nelts && i < 4; i++) {
        if (!state_rec_eq(&got[i], &rec[i])
            || got[i].batch != rec[i].batch
            || ngx_memcmp(got[i].d, rec[i].d, sizeof(rec[i].d)) != 0)
        {
            unit_fail(__FILE__, __LINE__, "record %lu read back differs",
                      (unsigned long) i);
        }
    }

    /* bad lines: each skipped, the rest read */

    ngx_ai_buf_init(&b, unit_pool(), 256);

    UNIT_CHECK(ngx_ai_cost_state_write_head(&b, &state_zone, 1700000000,
                                            state_totals) == NGX_OK);
    state_sealed(&b, "sync 0123456789ABCDEF 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
                 "0 0");
    state_sealed(&b, "sync 0123456789abcde 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
                 "0 0");
    state_sealed(&b, "sync 0123456789abcdef 1 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 "
                 "0 0");
    state_sealed(&b, "sync 0123456789abcdef 1 0 0 0 0 0 0 0 0 -1 0 0 0 0 0 0 "
                 "0 0");
    state_sealed(&b, "da 0 - =/v1 2 0 0 0 0 0 0 0 0 0 0");
    state_sealed(&b, "da 0 - =/v1 1 0 --1 0 0 0 0 0 0 0 0");
    state_sealed(&b, "da 0 - =/v1 1 0 - 0 0 0 0 0 0 0 0");
    state_sealed(&b, "da 0 - =/v1 1 0 9223372036854775808 0 0 0 0 0 0 0 0");
    state_sealed(&b, "da 0 - =/v1 1 0 0 0 0 0 0 0 0 0");
    state_sealed(&b, "dl 0 - =/v1 =m 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
    state_sealed(&b, "dx 0 - =/v1 1 0 0 0 0 0 0 0 0 0 0");
    state_sealed(&b, "da 0 - =/v1 0 -9223372036854775807 0 0 0 0 0 0 0 0 0");
    UNIT_CHECK(ngx_ai_cost_state_write_end(&b, 0) == NGX_OK);

    f = state_buf_str(&b);
    st = state_read(&f, &recs);
    if (st == NULL) {
        UNIT_CHECK(st != NULL);
        return;
    }

    UNIT_CHECK(st->why == NULL);
    UNIT_EQ_INT(st->skipped, 11);
    UNIT_CHECK(!st->has_sync);
    UNIT_EQ_INT(st->deltas, 1);
    UNIT_EQ_INT(recs.nelts, 1);

    got = recs.elts;
    UNIT_CHECK(recs.nelts == 1 && got[0].d[0] == -INT64_MAX
               && got[0].type == NGX_AI_COST_STATE_DACCOUNT);

    /* version 1 knows no such line */

    f = state_file(STATE_HEAD "sync 0123456789abcdef 1 0 0 0 0 0 0 0 0 0 0 0 "
                   "0 0 0 0 0 0\n",
                   sizeof(STATE_HEAD "sync 0123456789abcdef 1 0 0 0 0 0 0 0 "
                          "0 0 0 0 0 0 0 0 0 0\n") - 1, 0);
    st = state_read(&f, &recs);
    UNIT_CHECK(st != NULL && st->why != NULL && !st->has_sync);
}
