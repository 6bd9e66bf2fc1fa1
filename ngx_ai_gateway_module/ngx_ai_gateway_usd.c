
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Money as integer nano-USD: prices and budgets parsed from decimals
 * exactly, printed with 6 decimals, and the cost of a number of tokens.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


/*
 * tokens * price / 1M, where price is nano-USD per 1M tokens: the cost in
 * nano-USD, rounded down, in integers (split so that it cannot overflow
 * for any realistic count).
 */

uint64_t
ngx_http_ai_cost_of(uint64_t tokens, uint64_t price)
{
    return ngx_ai_tokens_cost(tokens, price);
}


/*
 * "25", "0.50", "1.000000001" -> nano-USD, exactly, with at most 9
 * decimals; the whole part takes another digit only while it is at most
 * limit (1000000 for prices per 1M tokens, 999999999 for budgets).
 */

ngx_int_t
ngx_http_ai_parse_usd(u_char *p, size_t len, uint64_t limit, uint64_t *nano)
{
    u_char      *last;
    uint64_t     whole, frac;
    ngx_uint_t   digits, decimals, dot;

    whole = 0;
    frac = 0;
    digits = 0;
    decimals = 0;
    dot = 0;

    for (last = p + len; p < last; p++) {

        if (*p == '.' && !dot) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        if (dot) {
            if (++decimals > 9) {
                return NGX_ERROR;
            }

            frac = frac * 10 + (*p - '0');

        } else {
            if (whole > limit) {
                return NGX_ERROR;
            }

            whole = whole * 10 + (*p - '0');
        }

        digits++;
    }

    if (digits == 0) {
        return NGX_ERROR;
    }

    while (decimals++ < 9) {
        frac *= 10;
    }

    *nano = whole * 1000000000 + frac;

    return NGX_OK;
}


/* nano-USD as USD with 6 decimals (rounded down), e.g. "0.001250" */

u_char *
ngx_http_ai_sprint_usd(u_char *p, uint64_t nano)
{
    return ngx_sprintf(p, "%uL.%06uL", nano / 1000000000,
                       (nano % 1000000000) / 1000);
}
