
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: secrets scrubbed from a provider's text
 * (ngx_ai_gateway_scrub.c).  The input gives up to three secrets, how to
 * plant each in the text (a part of it as is, JSON-escaped, or masked as
 * providers print keys) and the text.  After ngx_ai_scrub(): no secret of
 * 8 bytes or more and no 12-byte part of one of 12 or more is left in the
 * text; the text is valid UTF-8 if it was; a JSON text is still JSON and
 * none of its decoded strings holds a secret either (for secrets without
 * bytes JSON escapes other than '/', and whose every part has a byte that
 * JSON has only in strings: a secret echoed as a number or as JSON's own
 * syntax is scrubbed there too); nothing found, the text is the same
 * memory; a second pass finds nothing.
 *
 * Secrets never hold '[' or ']' (made '-'): a secret that holds part of
 * the mark "[REDACTED]" could be made again where a mark meets the text.
 */


#include "fuzz.h"


#define FUZZ_SCRUB_SECRETS  3
#define FUZZ_SCRUB_MAX      48


typedef struct {
    const uint8_t              *p;
    const uint8_t              *last;
} fuzz_scrub_in_t;


static ngx_uint_t fuzz_scrub_byte(fuzz_scrub_in_t *in);
static void fuzz_scrub_plant(ngx_ai_buf_t *b, ngx_str_t *s, ngx_uint_t mode,
    ngx_uint_t from, ngx_uint_t len);
static ngx_uint_t fuzz_scrub_in_strings(ngx_str_t *s);
static void fuzz_scrub_left(const char *what, ngx_str_t *secrets,
    ngx_uint_t n, const u_char *p, size_t len);
static void fuzz_scrub_strings(ngx_str_t *secrets, ngx_uint_t n,
    cJSON *item);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_ai_json_init_allocator();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char               *copy;
    size_t                at, base_len;
    cJSON                *before, *after;
    ngx_str_t             secrets[FUZZ_SCRUB_SECRETS], text, again;
    ngx_uint_t            n, i, j, len, mode, from, part, hits, hits2;
    ngx_uint_t            status, quoted, utf8;
    ngx_pool_t           *pool;
    ngx_ai_buf_t          b;
    fuzz_scrub_in_t       in;
    const uint8_t        *base;

    pool = fuzz_pool();

    in.p = data;
    in.last = data + size;

    n = fuzz_scrub_byte(&in) % (FUZZ_SCRUB_SECRETS + 1);
    quoted = 0;

    for (i = 0; i < n; i++) {
        len = fuzz_scrub_byte(&in) % (FUZZ_SCRUB_MAX + 1);
        len = ngx_min(len, (size_t) (in.last - in.p));

        copy = ngx_pnalloc(pool, len + 1);
        if (copy == NULL) {
            fuzz_fail("no memory");
        }

        ngx_memcpy(copy, in.p, len);
        in.p += len;

        for (j = 0; j < len; j++) {
            if (copy[j] == '[' || copy[j] == ']') {
                copy[j] = '-';
            }

            if (copy[j] < 0x20 || copy[j] == '"' || copy[j] == '\\') {
                quoted = 1;
            }
        }

        if (len == 8 && ngx_memcmp(copy, "REDACTED", 8) == 0) {
            copy[0] = 'r';
        }

        secrets[i].data = copy;
        secrets[i].len = len;

        if (!fuzz_scrub_in_strings(&secrets[i])) {
            quoted = 1;
        }
    }

    /* how each secret is planted: mode, where from, how much, where to */

    if (ngx_ai_buf_init(&b, pool, size + 256) != NGX_OK) {
        fuzz_fail("no memory");
    }

    base = in.p + 4 * n > in.last ? in.last : in.p + 4 * n;
    base_len = in.last - base;
    at = 0;

    for (i = 0; i < n; i++) {
        mode = fuzz_scrub_byte(&in) % 4;
        from = fuzz_scrub_byte(&in);
        part = fuzz_scrub_byte(&in);
        j = base_len ? fuzz_scrub_byte(&in) % (base_len + 1) : 0;

        if (j < at) {
            j = at;
        }

        if (ngx_ai_buf_append(&b, base + at, j - at) != NGX_OK) {
            fuzz_fail("no memory");
        }

        at = j;

        fuzz_scrub_plant(&b, &secrets[i], mode, from, part);
    }

    if (ngx_ai_buf_append(&b, base + at, base_len - at) != NGX_OK) {
        fuzz_fail("no memory");
    }

    text.data = b.data;
    text.len = b.len;

    utf8 = fuzz_utf8_valid(text.data, text.len);

    before = ngx_ai_json_decode(pool, text.data, text.len,
                                NGX_AI_JSON_MAX_DEPTH, NULL, &status);

    if (ngx_ai_scrub(pool, secrets, n, &text, &hits) != NGX_OK) {
        fuzz_fail("ngx_ai_scrub() failed");
    }

    if (hits == 0 && text.data != b.data) {
        fuzz_fail("nothing found, yet new memory");
    }

    if (hits && text.data == b.data) {
        fuzz_fail("%d places found, the same memory", (int) hits);
    }

    fuzz_scrub_left("the text", secrets, n, text.data, text.len);

    if (utf8 && !fuzz_utf8_valid(text.data, text.len)) {
        fuzz_fail("the UTF-8 text is no longer UTF-8");
    }

    if (before && !quoted) {
        after = ngx_ai_json_decode(pool, text.data, text.len,
                                   NGX_AI_JSON_MAX_DEPTH, NULL, &status);
        if (after == NULL) {
            fuzz_fail("the JSON text is no longer JSON: %.*s",
                      (int) text.len, text.data);
        }

        fuzz_scrub_strings(secrets, n, after);
    }

    again = text;

    if (ngx_ai_scrub(pool, secrets, n, &again, &hits2) != NGX_OK) {
        fuzz_fail("ngx_ai_scrub() failed");
    }

    if (hits2) {
        fuzz_fail("a second pass found %d places in %.*s", (int) hits2,
                  (int) text.len, text.data);
    }

    ngx_destroy_pool(pool);

    return 0;
}


static ngx_uint_t
fuzz_scrub_byte(fuzz_scrub_in_t *in)
{
    return (in->p < in->last) ? *in->p++ : 0;
}


/*
 * mode 0: nothing; 1: the part from..from+len as is; 2: the secret
 * JSON-escaped (every other byte as \u00XX, '/' as \/); 3: masked, the
 * first len % 8 + 3 bytes, "***", the last from % 8 + 3
 */

static void
fuzz_scrub_plant(ngx_ai_buf_t *b, ngx_str_t *s, ngx_uint_t mode,
    ngx_uint_t from, ngx_uint_t len)
{
    u_char      tmp[8];
    size_t      i, k;
    ngx_int_t   rc;

    static u_char  hex[] = "0123456789ABCDEF";

    if (s->len == 0) {
        return;
    }

    rc = NGX_OK;

    switch (mode) {

    case 1:
        from %= s->len;
        len = ngx_min(len, s->len - from);
        rc = ngx_ai_buf_append(b, s->data + from, len);
        break;

    case 2:
        for (i = 0; rc == NGX_OK && i < s->len; i++) {
            if (s->data[i] == '/') {
                rc = ngx_ai_buf_append(b, "\\/", 2);

            } else if ((i + from) % 2 && s->data[i] < 0x80) {
                ngx_memcpy(tmp, "\\u00", 4);
                tmp[4] = hex[s->data[i] >> 4];
                tmp[5] = hex[s->data[i] & 0xf];
                rc = ngx_ai_buf_append(b, tmp, 6);

            } else {
                rc = ngx_ai_buf_append(b, s->data + i, 1);
            }
        }

        break;

    case 3:
        k = ngx_min(len % 8 + 3, s->len);
        rc = ngx_ai_buf_append(b, s->data, k);

        if (rc == NGX_OK) {
            rc = ngx_ai_buf_append(b, "***", 3);
        }

        k = ngx_min(from % 8 + 3, s->len);

        if (rc == NGX_OK) {
            rc = ngx_ai_buf_append(b, s->data + s->len - k, k);
        }

        break;

    default:
        break;
    }

    if (rc != NGX_OK) {
        fuzz_fail("no memory");
    }
}


/* every part a match can be has a byte that JSON has only in strings */

static ngx_uint_t
fuzz_scrub_in_strings(ngx_str_t *s)
{
    size_t      i, win, last;
    ngx_uint_t  found;

    if (s->len < 8) {
        return 1;
    }

    win = s->len >= 12 ? 12 : s->len;
    last = 0;
    found = 0;

    /* the last byte of a string-only kind seen, less than win ago */

    for (i = 0; i < s->len; i++) {
        if (strchr(" \t\r\n{}[]:,0123456789+-.eEtrufalsn", s->data[i]) == NULL
            || s->data[i] == '\0')
        {
            found = 1;
            last = i;
        }

        if (i + 1 >= win && (!found || last + win <= i)) {
            return 0;
        }
    }

    return 1;
}


/* no secret of 8 bytes or more, no 12-byte part of one of 12 or more */

static void
fuzz_scrub_left(const char *what, ngx_str_t *secrets, ngx_uint_t n,
    const u_char *p, size_t len)
{
    size_t      i, w, win;
    ngx_uint_t  k;

    for (k = 0; k < n; k++) {
        if (secrets[k].len < 8) {
            continue;
        }

        win = secrets[k].len >= 12 ? 12 : secrets[k].len;

        for (w = 0; w + win <= secrets[k].len; w++) {
            for (i = 0; i + win <= len; i++) {
                if (p[i] == secrets[k].data[w]
                    && ngx_memcmp(p + i, secrets[k].data + w, win) == 0)
                {
                    fuzz_fail("%s keeps %d bytes of secret %d (from its "
                              "byte %d) at %d", what, (int) win, (int) k,
                              (int) w, (int) i);
                }
            }
        }
    }
}


static void
fuzz_scrub_strings(ngx_str_t *secrets, ngx_uint_t n, cJSON *item)
{
    cJSON  *c;

    if (item->string) {
        fuzz_scrub_left("a decoded key", secrets, n, (u_char *) item->string,
                        ngx_strlen(item->string));
    }

    if (cJSON_IsString(item)) {
        fuzz_scrub_left("a decoded string", secrets, n,
                        (u_char *) item->valuestring,
                        ngx_strlen(item->valuestring));
    }

    for (c = item->child; c; c = c->next) {
        fuzz_scrub_strings(secrets, n, c);
    }
}
