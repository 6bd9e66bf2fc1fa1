
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
 * nothing.  The allocator hooks are installed, as inside nginx.
 */


#include "fuzz.h"
#include <math.h>
#include <float.h>


static void fuzz_json_same(const char *what, cJSON *a, cJSON *b,
    ngx_uint_t loose);
static void fuzz_json_links(cJSON *item);
static ngx_uint_t fuzz_json_finite(cJSON *item);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_ai_json_init_allocator();

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        *printed;
    cJSON       *pooled, *heap, *ref, *again, *shallow;
    ngx_uint_t   nul, nul2, status, status2, status3;
    ngx_pool_t  *pool;
    const char  *end, *last;

    pool = fuzz_pool();

    pooled = ngx_ai_json_decode(pool, data, size, NGX_AI_JSON_MAX_DEPTH,
                                &nul, &status);
    heap = ngx_ai_json_decode(NULL, data, size, NGX_AI_JSON_MAX_DEPTH,
                              &nul2, &status2);

    if (status != status2 || (pooled == NULL) != (heap == NULL)
        || nul != nul2)
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

        /* what cJSON prints of it decodes back to the same tree */

        printed = cJSON_PrintUnformatted(pooled);
        if (printed == NULL) {
            fuzz_fail("cannot print a decoded tree");
        }

        again = ngx_ai_json_decode(pool, (u_char *) printed, strlen(printed),
                                   NGX_AI_JSON_MAX_DEPTH, &nul2, &status3);

        if (again == NULL) {
            fuzz_fail("cJSON's print of a decoded tree does not decode: %s",
                      printed);
        }

        /*
         * a NUL cuts strings and cJSON prints an infinity as null, so only
         * a tree with neither prints whole
         */

        if (!nul && fuzz_json_finite(pooled)) {
            fuzz_json_same("print", pooled, again, 1);
        }

        cJSON_free(printed);

        /* the gateway's request bound: the same tree, or too deep */

        shallow = ngx_ai_json_decode(pool, data, size, NGX_AI_MAX_JSON_DEPTH,
                                     &nul2, &status3);

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
