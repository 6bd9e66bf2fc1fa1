
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The reader of a cost zone's state file (ai_cost_zone state=PATH), as a
 * pure function: bytes in, records and totals or a reason out.  It knows
 * no zone, no slab and no request, so the unit tests and a fuzz target
 * link it as they link the other pure files.  ngx_ai_gateway_cost.c
 * writes the file (ngx_http_ai_cost_save) and loads what this reads.
 *
 * Besides what ngx_ai_gateway_pure.h allows, it calls ngx_array_push,
 * ngx_hextoi and ngx_crc32_long (ngx_crc32_table256): t/unit's stand-in
 * for nginx's core provides them too.
 */


#ifndef _NGX_AI_GATEWAY_STATE_H_INCLUDED_
#define _NGX_AI_GATEWAY_STATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define NGX_AI_COST_STATE_MAGIC      "ngx_ai_gateway_cost_state 1"

/* the same as NGX_HTTP_AI_DIGEST_LEN and NGX_HTTP_AI_MAX_ROUTE_LEN of
 * ngx_ai_gateway_limits.h (ngx_ai_gateway_cost.c checks it) */
#define NGX_AI_COST_STATE_DIGEST_LEN  32
#define NGX_AI_COST_STATE_MAX_ROUTE   1024
#define NGX_AI_COST_STATE_MAX_MODEL   NGX_AI_MAX_MODEL_LEN

/* rec->type */
#define NGX_AI_COST_STATE_LEDGER     1       /* an "l" line */
#define NGX_AI_COST_STATE_ACCOUNT    2       /* an "a" line */

/* the figures of the "totals" line: requests, errors, input tokens,
 * output tokens, cost, aborted, estimated input tokens, estimated cost */
#define NGX_AI_COST_STATE_TOTALS     8


/* a record of the state file, parsed */
typedef struct {
    ngx_uint_t                  type;
    ngx_uint_t                  keyed;     /* 0: no key, digest unset */
    u_char                      digest[NGX_AI_COST_STATE_DIGEST_LEN];
    ngx_str_t                   route;
    ngx_str_t                   model;     /* ledger records only */

    /*
     * ledger: requests, errors, input tokens, output tokens, cost,
     *         aborted, estimated input tokens, estimated cost, first, last;
     * account: day, day spend, month, month spend, total, last
     */
    uint64_t                    n[12];
} ngx_ai_cost_state_rec_t;


/*
 * Checks and parses a whole state file buf..buf+size.  recs: an array of
 * ngx_ai_cost_state_rec_t the caller initialised (strings and growth
 * are allocated from pool).  zone: the name the file must carry.
 * totals: NGX_AI_COST_STATE_TOTALS figures.
 *
 * Returns NULL if the file is good, else why not (a static string), with
 * *line the line at fault (1-based), or 0 when the reason is about the
 * file as a whole; on refusal recs is left empty.
 */
char *ngx_ai_cost_state_parse(ngx_pool_t *pool, u_char *buf, size_t size,
    ngx_str_t *zone, ngx_array_t *recs, uint64_t *totals, ngx_uint_t *line);


#endif /* _NGX_AI_GATEWAY_STATE_H_INCLUDED_ */
