
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * ai_guard's matching, shared by the request walk
 * (ngx_ai_gateway_guard_request.c) and the answers, streams and errors
 * (ngx_ai_gateway_guard.c): a rule's matches in a text (PCRE2, and the
 * Luhn check of check=luhn), every rule's matches sorted and joined, the
 * text rendered with its redactions, the counts, the request's guard ctx.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_guard.h"


static ngx_uint_t ngx_http_ai_guard_luhn(u_char *p, size_t len);
static ngx_int_t ngx_http_ai_guard_match_cmp(const void *one,
    const void *two);


static pcre2_match_data  *ngx_http_ai_guard_match_data;


ngx_http_ai_guard_ctx_t *
ngx_http_ai_guard_get_ctx(ngx_http_request_t *r)
{
    ngx_http_ai_guard_ctx_t  *gctx;

    gctx = ngx_http_get_module_ctx(r, ngx_ai_gateway_guard_module);

    if (gctx) {
        return gctx;
    }

    gctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_guard_ctx_t));
    if (gctx == NULL) {
        return NULL;
    }

    if (ngx_array_init(&gctx->hits, r->pool, 2,
                       sizeof(ngx_http_ai_guard_slot_t *))
        != NGX_OK
        || ngx_array_init(&gctx->matches, r->pool, 4,
                          sizeof(ngx_http_ai_guard_match_t))
           != NGX_OK)
    {
        return NULL;
    }

    ngx_http_set_ctx(r, gctx, ngx_ai_gateway_guard_module);

    return gctx;
}


/*
 * The first match of rule at or after offset (a card number rule only
 * takes matches that pass the Luhn check): NGX_OK with start and end,
 * NGX_DECLINED when there is none.
 */

ngx_int_t
ngx_http_ai_guard_find(ngx_http_request_t *r, ngx_http_ai_guard_rule_t *rule,
    u_char *text, size_t len, size_t offset, size_t *start, size_t *end)
{
    int         rc;
#if (NGX_PCRE2)
    PCRE2_SIZE  *ov;
#else
    int          captures[3];
    ngx_str_t    s;
#endif

    while (offset <= len) {

#if (NGX_PCRE2)

        if (ngx_http_ai_guard_match_data == NULL) {
            ngx_http_ai_guard_match_data = pcre2_match_data_create(1, NULL);

            if (ngx_http_ai_guard_match_data == NULL) {
                return NGX_ERROR;
            }
        }

        /* matched from offset in the whole text: \b and lookbehinds see
         * what comes before */

        rc = pcre2_match(rule->regex, text, len, offset, 0,
                         ngx_http_ai_guard_match_data, NULL);

        if (rc == PCRE2_ERROR_NOMATCH) {
            return NGX_DECLINED;
        }

        if (rc < 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai guard \"%V\": pcre2_match() failed: %d",
                          &rule->name, rc);
            return NGX_ERROR;
        }

        ov = pcre2_get_ovector_pointer(ngx_http_ai_guard_match_data);

        *start = ov[0];
        *end = ov[1];

#else

        s.data = text + offset;
        s.len = len - offset;

        rc = ngx_regex_exec(rule->regex, &s, captures, 3);

        if (rc == NGX_REGEX_NO_MATCHED) {
            return NGX_DECLINED;
        }

        if (rc < 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          ngx_regex_exec_n " failed: %i on \"%V\"",
                          rc, &rule->name);
            return NGX_ERROR;
        }

        *start = offset + captures[0];
        *end = offset + captures[1];

#endif

        if (!rule->luhn
            || ngx_http_ai_guard_luhn(text + *start, *end - *start))
        {
            return NGX_OK;
        }

        offset = (*end > *start) ? *end : *start + 1;
    }

    return NGX_DECLINED;
}


/* 12 to 19 digits (spaces and dashes between them) whose Luhn sum is 0 */

static ngx_uint_t
ngx_http_ai_guard_luhn(u_char *p, size_t len)
{
    u_char      *q;
    ngx_uint_t   n, d, sum;

    n = 0;
    sum = 0;

    for (q = p + len; q > p; /* void */) {
        q--;

        if (*q < '0' || *q > '9') {
            if (*q != ' ' && *q != '-') {
                return 0;
            }

            continue;
        }

        d = *q - '0';

        if (n++ % 2) {
            d *= 2;

            if (d > 9) {
                d -= 9;
            }
        }

        sum += d;
    }

    return n >= 12 && n <= 19 && sum % 10 == 0;
}


/*
 * Every match in text of the redact rules of scope, into gctx->matches:
 * sorted by start, no two overlapping (the earlier wins, then the
 * longer).
 */

ngx_int_t
ngx_http_ai_guard_scan(ngx_http_request_t *r, ngx_http_ai_guard_ctx_t *gctx,
    ngx_http_ai_guards_t *g, ngx_uint_t scope, u_char *text, size_t len)
{
    size_t                      offset, start, end;
    ngx_int_t                   rc;
    ngx_uint_t                  i, n;
    ngx_http_ai_guard_rule_t   *rule;
    ngx_http_ai_guard_match_t  *m;

    gctx->matches.nelts = 0;
    rule = g->rules.elts;

    for (i = 0; i < g->rules.nelts; i++) {

        if (rule[i].action != NGX_HTTP_AI_GUARD_REDACT
            || !(rule[i].scope & scope))
        {
            continue;
        }

        offset = 0;

        for ( ;; ) {
            rc = ngx_http_ai_guard_find(r, &rule[i], text, len, offset,
                                        &start, &end);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_DECLINED) {
                break;
            }

            if (end > start) {
                m = ngx_array_push(&gctx->matches);
                if (m == NULL) {
                    return NGX_ERROR;
                }

                m->start = start;
                m->end = end;
                m->rule = &rule[i];
            }

            offset = (end > start) ? end : start + 1;
        }
    }

    if (gctx->matches.nelts < 2) {
        return NGX_OK;
    }

    m = gctx->matches.elts;

    ngx_sort(m, gctx->matches.nelts, sizeof(ngx_http_ai_guard_match_t),
             ngx_http_ai_guard_match_cmp);

    for (i = 1, n = 1; i < gctx->matches.nelts; i++) {
        if (m[i].start < m[n - 1].end) {
            continue;
        }

        m[n++] = m[i];
    }

    gctx->matches.nelts = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_guard_match_cmp(const void *one, const void *two)
{
    const ngx_http_ai_guard_match_t  *a = one, *b = two;

    if (a->start != b->start) {
        return (a->start < b->start) ? -1 : 1;
    }

    if (a->end != b->end) {
        return (a->end > b->end) ? -1 : 1;
    }

    return 0;
}


/*
 * text[0 .. cut) with the matches of gctx->matches that end by cut
 * replaced, appended to out; the replaced matches are counted.
 */

ngx_int_t
ngx_http_ai_guard_render(ngx_http_ai_guard_ctx_t *gctx, u_char *text,
    size_t cut, ngx_ai_buf_t *out)
{
    size_t                      pos;
    ngx_uint_t                  i;
    ngx_http_ai_guard_match_t  *m;

    m = gctx->matches.elts;
    pos = 0;

    for (i = 0; i < gctx->matches.nelts && m[i].end <= cut; i++) {
        if (ngx_ai_buf_append(out, text + pos, m[i].start - pos) != NGX_OK
            || ngx_ai_buf_append(out, m[i].rule->replacement.data,
                                 m[i].rule->replacement.len)
               != NGX_OK
            || ngx_http_ai_guard_hit(gctx, m[i].rule, 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        pos = m[i].end;
    }

    return ngx_ai_buf_append(out, text + pos, cut - pos);
}


/* counts n matches of rule, and the request once per rule */

ngx_int_t
ngx_http_ai_guard_hit(ngx_http_ai_guard_ctx_t *gctx,
    ngx_http_ai_guard_rule_t *rule, ngx_uint_t n)
{
    ngx_uint_t                  i;
    ngx_http_ai_guard_slot_t  **hit;

    if (rule->slot->counter) {
        (void) ngx_atomic_fetch_add(&rule->slot->counter->matches, n);
    }

    hit = gctx->hits.elts;

    for (i = 0; i < gctx->hits.nelts; i++) {
        if (hit[i] == rule->slot) {
            return NGX_OK;
        }
    }

    hit = ngx_array_push(&gctx->hits);
    if (hit == NULL) {
        return NGX_ERROR;
    }

    *hit = rule->slot;

    if (rule->slot->counter) {
        (void) ngx_atomic_fetch_add(&rule->slot->counter->requests, 1);
    }

    return NGX_OK;
}


/* the match data of the process, at its exit */

void
ngx_http_ai_guard_match_free(void)
{
    if (ngx_http_ai_guard_match_data) {
        pcre2_match_data_free(ngx_http_ai_guard_match_data);
        ngx_http_ai_guard_match_data = NULL;
    }
}
