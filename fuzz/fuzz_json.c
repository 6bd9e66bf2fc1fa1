
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fuzz target: the JSON decoder (ngx_ai_gateway_json_decode.c) against
 * cJSON's own parser.  Whatever the decoder accepts, cJSON must accept as
 * the same tree (types, keys, strings, numbers to the bit, valueint,
 * order); what it refuses as too deep, cJSON must refuse too.  The pool
 * tree and the cJSON_malloc() tree must be the same; both must be what
 * cJSON's functions expect (prev links, printable, and the print decodes
 * back to the same tree); cJSON_Delete() on the pool tree must free
 * nothing.  The flags of a decoded text (a U+0000, the first raw control
 * byte and the first invalid UTF-8 in a string) must be what a slow walk
 * of the bytes finds, with a code point decoder of its own.  The
 * allocator hooks are installed, as inside nginx.
 */


#include "fuzz.h"
#include <math.h>
#include <float.h>


static void fuzz_json_same(const char *what, cJSON *a, cJSON *b,
    ngx_uint_t loose);
static void fuzz_json_links(cJSON *item);
static ngx_uint_t fuzz_json_finite(cJSON *item);
static void fuzz_json_flags(const uint8_t *data, size_t size,
    ngx_ai_json_flags_t *flags);
static size_t fuzz_json_utf8(const uint8_t *p, const uint8_t *last);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_ai_json_init_allocator();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                 *printed;
    cJSON                *pooled, *heap, *ref, *again, *shallow;
    ngx_uint_t            status, status2, status3;
    ngx_pool_t           *pool;
    const char           *end, *last;
    ngx_ai_json_flags_t   flags, flags2;

    pool = fuzz_pool();

    pooled = ngx_ai_json_decode(pool, data, size, NGX_AI_JSON_MAX_DEPTH,
                                &flags, &status);
    heap = ngx_ai_json_decode(NULL, data, size, NGX_AI_JSON_MAX_DEPTH,
                              &flags2, &status2);

    if (status != status2 || (pooled == NULL) != (heap == NULL)
        || memcmp(&flags, &flags2, sizeof(ngx_ai_json_flags_t)) != 0)
    {
        fuzz_fail("pool and heap decoding differ: %d/%d", (int) status,
                  (int) status2);
    }

    if ((pooled == NULL) != (status != NGX_AI_JSON_DECODED)) {
        fuzz_fail("a tree with status %d", (int) status);
    }

    /* cJSON's parser on the same bytes, whitespace only after the value */

    end = NULL;
    ref = size ? cJSON_ParseWithLengthOpts((const char *) data, size, &end, 0)
               : NULL;

    if (ref) {
        last = (const char *) data + size;

        while (end < last
               && (*end == ' ' || *end == '\t' || *end == '\n'
                   || *end == '\r'))
        {
            end++;
        }

        if (end != last) {
            cJSON_Delete(ref);
            ref = NULL;
        }
    }

    if (status == NGX_AI_JSON_TOO_DEEP && ref) {
        fuzz_fail("too deep for the decoder, not for cJSON");
    }

    if (pooled) {
        if (ref == NULL) {
            fuzz_fail("the decoder accepts what cJSON refuses");
        }

        fuzz_json_same("cJSON", pooled, ref, 0);
        fuzz_json_same("heap", pooled, heap, 0);
        fuzz_json_links(pooled);
        fuzz_json_links(heap);
        fuzz_json_flags(data, size, &flags);

        /* what cJSON prints of it decodes back to the same tree */

        printed = cJSON_PrintUnformatted(pooled);
        if (printed == NULL) {
            fuzz_fail("cannot print a decoded tree");
        }

        again = ngx_ai_json_decode(pool, (u_char *) printed, strlen(printed),
                                   NGX_AI_JSON_MAX_DEPTH, &flags2, &status3);

        if (again == NULL) {
            fuzz_fail("cJSON's print of a decoded tree does not decode: %s",
                      printed);
        }

        /*
         * a NUL cuts strings and cJSON prints an infinity as null, so only
         * a tree with neither prints whole
         */

        if (!flags.nul && fuzz_json_finite(pooled)) {
            fuzz_json_same("print", pooled, again, 1);
        }

        cJSON_free(printed);

        /* the gateway's request bound: the same tree, or too deep */

        shallow = ngx_ai_json_decode(pool, data, size, NGX_AI_MAX_JSON_DEPTH,
                                     &flags2, &status3);

        if (shallow) {
            fuzz_json_same("shallow", pooled, shallow, 0);

        } else if (status3 != NGX_AI_JSON_TOO_DEEP) {
            fuzz_fail("a lower depth bound gives status %d", (int) status3);
        }

        /* as the pool cleanup does: pool blocks are not freed */

        cJSON_Delete(pooled);
        cJSON_Delete(heap);
    }

    cJSON_Delete(ref);

    ngx_destroy_pool(pool);

    return 0;
}


/*
 * loose: numbers equal to cJSON's own precision (it prints a double with
 * 15 digits when they give it back within its epsilon, not exactly)
 */

static void
fuzz_json_same(const char *what, cJSON *a, cJSON *b, ngx_uint_t loose)
{
    cJSON  *x, *y;

    if ((a->type & 0xff) != (b->type & 0xff)) {
        fuzz_fail("%s: type %d, not %d", what, a->type & 0xff,
                  b->type & 0xff);
    }

    if ((a->string == NULL) != (b->string == NULL)
        || (a->string && strcmp(a->string, b->string) != 0))
    {
        fuzz_fail("%s: key \"%s\", not \"%s\"", what,
                  a->string ? a->string : "(none)",
                  b->string ? b->string : "(none)");
    }

    if (a->valueint != b->valueint && !loose) {
        fuzz_fail("%s: valueint %d, not %d", what, a->valueint, b->valueint);
    }

    switch (a->type & 0xff) {

    case cJSON_String:
        if (strcmp(a->valuestring, b->valuestring) != 0) {
            fuzz_fail("%s: string \"%s\", not \"%s\"", what, a->valuestring,
                      b->valuestring);
        }

        break;

    case cJSON_Number:
        if (loose
            && fabs(a->valuedouble - b->valuedouble)
               <= fmax(fabs(a->valuedouble), fabs(b->valuedouble))
                  * DBL_EPSILON * 2)
        {
            break;
        }

        if (memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0) {
            fuzz_fail("%s: number %.17g, not %.17g", what, a->valuedouble,
                      b->valuedouble);
        }

        break;

    case cJSON_Array:
    case cJSON_Object:
        for (x = a->child, y = b->child; x && y; x = x->next, y = y->next) {
            fuzz_json_same(what, x, y, loose);
        }

        if (x || y) {
            fuzz_fail("%s: %s children", what, x ? "more" : "fewer");
        }

        break;

    default:
        break;
    }
}


/* children linked as cJSON links them: the first's prev is the last */

static void
fuzz_json_links(cJSON *item)
{
    cJSON  *c, *prev;

    if (!cJSON_IsArray(item) && !cJSON_IsObject(item)) {
        if (item->child) {
            fuzz_fail("a leaf with children");
        }

        return;
    }

    prev = NULL;

    for (c = item->child; c; c = c->next) {
        if (prev && c->prev != prev) {
            fuzz_fail("a broken prev link");
        }

        if (cJSON_IsObject(item) != (c->string != NULL)) {
            fuzz_fail("a key where there is none, or none where one is");
        }

        fuzz_json_links(c);
        prev = c;
    }

    if (item->child && item->child->prev != prev) {
        fuzz_fail("the first child's prev is not the last child");
    }
}


static ngx_uint_t
fuzz_json_finite(cJSON *item)
{
    cJSON  *c;

    if (cJSON_IsNumber(item) && !isfinite(item->valuedouble)) {
        return 0;
    }

    for (c = item->child; c; c = c->next) {
        if (!fuzz_json_finite(c)) {
            return 0;
        }
    }

    return 1;
}


/*
 * The flags of a text that decoded, found the slow way: outside strings
 * there is only ASCII (and a leading BOM), so every string is found by
 * its quotes, escapes skipped two bytes at a time.
 */

static void
fuzz_json_flags(const uint8_t *data, size_t size, ngx_ai_json_flags_t *flags)
{
    size_t          n, control_at, utf8_at;
    ngx_uint_t      in, nul, control, utf8;
    const uint8_t  *p, *last;

    p = data;
    last = data + size;
    in = 0;
    nul = 0;
    control = 0;
    utf8 = 0;
    control_at = 0;
    utf8_at = 0;

    if (size > 4 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
        p += 3;
    }

    while (p < last) {
        if (!in) {
            if (*p >= 0x80 || *p < 0x20) {
                if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                    fuzz_fail("byte 0x%02x outside strings", *p);
                }
            }

            in = (*p == '"');
            p++;
            continue;
        }

        if (*p == '"') {
            in = 0;
            p++;
            continue;
        }

        if (*p == '\\') {
            if (last - p >= 6 && memcmp(p, "\\u0000", 6) == 0) {
                nul = 1;
            }

            p += 2;
            continue;
        }

        if (*p < 0x20) {
            if (!control) {
                control = 1;
                control_at = p - data;
            }

            if (*p == 0) {
                nul = 1;
            }

            p++;
            continue;
        }

        n = fuzz_json_utf8(p, last);

        if (n == 0) {
            if (!utf8) {
                utf8 = 1;
                utf8_at = p - data;
            }

            n = 1;
        }

        p += n;
    }

    if (nul != flags->nul || control != flags->control
        || utf8 != flags->utf8
        || (control && control_at != flags->control_at)
        || (utf8 && utf8_at != flags->utf8_at))
    {
        fuzz_fail("flags nul %d control %d at %zu utf8 %d at %zu, the slow "
                  "walk: nul %d control %d at %zu utf8 %d at %zu",
                  (int) flags->nul, (int) flags->control, flags->control_at,
                  (int) flags->utf8, flags->utf8_at, (int) nul,
                  (int) control, control_at, (int) utf8, utf8_at);
    }

    /* the decoder's own character check agrees at every position */

    for (p = data; p < last; p++) {
        if (ngx_ai_utf8_char(p, last) != fuzz_json_utf8(p, last)) {
            fuzz_fail("ngx_ai_utf8_char() differs at %zu", p - data);
        }
    }
}


/*
 * The length of the character at p, decoded to a code point and judged by
 * it: the shortest form, no surrogate, at most U+10FFFF; 0 if none
 */

static size_t
fuzz_json_utf8(const uint8_t *p, const uint8_t *last)
{
    size_t    n, i;
    uint32_t  cp, min;

    if (p[0] < 0x80) {
        return 1;
    }

    if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1f;
        min = 0x80;

    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0f;
        min = 0x800;

    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if ((size_t) (last - p) < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        cp = (cp << 6) | (p[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    return n;
}
