
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * A cost zone's state file (ai_cost_zone state=PATH), as pure code: the
 * writer of its lines and a reader fed the file in chunks of any size,
 * one line at a time, with a bound on the line length, so that a file
 * is never held whole.  It knows no zone, no slab and no request, so the
 * unit tests and a fuzz target link it as they link the other pure
 * files.  ngx_ai_gateway_cost_state.c opens, writes and reads the file
 * and loads what this reads.
 *
 * Besides what ngx_ai_gateway_pure.h allows, it calls ngx_hextoi and
 * ngx_crc32_update (ngx_crc32_table256): t/unit's stand-in for nginx's
 * core provides them too.
 */


#ifndef _NGX_AI_GATEWAY_STATE_H_INCLUDED_
#define _NGX_AI_GATEWAY_STATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_ai_gateway_pure.h"


#define NGX_AI_COST_STATE_MAGIC      "ngx_ai_gateway_cost_state 1"
#define NGX_AI_COST_STATE_MAGIC2     "ngx_ai_gateway_cost_state 2"

/* the same as NGX_HTTP_AI_DIGEST_LEN and NGX_HTTP_AI_MAX_ROUTE_LEN of
 * ngx_ai_gateway_limits.h (ngx_ai_gateway_cost_state.c checks it) */
#define NGX_AI_COST_STATE_DIGEST_LEN  32
#define NGX_AI_COST_STATE_MAX_ROUTE   1024
#define NGX_AI_COST_STATE_MAX_MODEL   NGX_AI_MAX_MODEL_LEN

/* the longest line read; the writer's longest is about 4200 bytes */
#define NGX_AI_COST_STATE_MAX_LINE   8192

/* bad lines told by number */
#define NGX_AI_COST_STATE_BAD        5

/* rec->type */
#define NGX_AI_COST_STATE_LEDGER     1       /* an "l" line */
#define NGX_AI_COST_STATE_ACCOUNT    2       /* an "a" line */
#define NGX_AI_COST_STATE_DLEDGER    3       /* a "dl" line: deltas */
#define NGX_AI_COST_STATE_DACCOUNT   4       /* a "da" line */

/* the zone instance of sync= in a "sync" line, hex */
#define NGX_AI_COST_STATE_INSTANCE   16

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

    /*
     * deltas not acknowledged by Redis yet (sync=), signed: ledger: the
     * 8 counters to push, then the 8 being pushed; account: day, day
     * spend, month, month spend, total to push, then being pushed
     */
    ngx_uint_t                  batch;     /* in the batch being pushed */
    int64_t                     d[16];
} ngx_ai_cost_state_rec_t;


/* a record read: NGX_OK, or NGX_ERROR to stop reading */
typedef ngx_int_t (*ngx_ai_cost_state_handler_pt)(void *data,
    ngx_ai_cost_state_rec_t *rec);


/*
 * The reader's state: set up by ngx_ai_cost_state_init(), then fed the
 * file (ngx_ai_cost_state_feed(), or ngx_ai_cost_state_line() a line at
 * a time), then ngx_ai_cost_state_finish().  A record read is given to
 * the handler, its strings valid during the call only.
 *
 * Version 2 (every line with its own CRC32): each good record is given
 * at once; a line that does not check out is skipped and counted.
 * Version 1 (one CRC32 at the end): all or nothing, so the file is read
 * twice: first with load = 0, which gives no record and checks the
 * whole file (why stays NULL if it is good), then, if it is, again with
 * load = 1, which gives the records.
 */
typedef struct {
    /* set by ngx_ai_cost_state_init() */
    ngx_str_t                      *zone;      /* the name it must carry */
    ngx_ai_cost_state_handler_pt    handler;   /* NULL: none */
    void                           *data;
    ngx_uint_t                      load;      /* version 1: checked */

    /* what was read */
    ngx_uint_t                      version;   /* 1, 2; 0: not known */
    char                           *why;       /* the file is refused as a
                                                  whole: nothing to load */
    ngx_uint_t                      why_line;  /* 0: the file as a whole */
    ngx_uint_t                      lines;
    ngx_uint_t                      accounts;  /* good records */
    ngx_uint_t                      ledgers;
    ngx_uint_t                      skipped;   /* version 2: bad lines */
    ngx_uint_t                      bad_line[NGX_AI_COST_STATE_BAD];
    char                           *bad_why[NGX_AI_COST_STATE_BAD];
    uint64_t                        totals[NGX_AI_COST_STATE_TOTALS];
    uint64_t                        end_records;   /* as the end line says */
    ngx_uint_t                      deltas;        /* good delta records */

    /* the "sync" line: the zone's batches to Redis as they were */
    u_char                          instance[NGX_AI_COST_STATE_INSTANCE];
    uint64_t                        seq;
    ngx_uint_t                      frozen;
    uint64_t                        sync_pend[NGX_AI_COST_STATE_TOTALS];
    uint64_t                        sync_send[NGX_AI_COST_STATE_TOTALS];
    unsigned                        has_sync:1;
    unsigned                        has_head:1;
    unsigned                        has_zone:1;
    unsigned                        has_totals:1;
    unsigned                        has_end:1;
    unsigned                        truncated:1;   /* no end line, or the
                                                      last line cut */
    unsigned                        stopped:1;     /* the handler failed */

    /* the reader's own */
    unsigned                        long_line:1;   /* being skipped */
    unsigned                        v1_end:2;      /* the last line */
    uint32_t                        crc;           /* version 1: running */
    uint32_t                        crc_before;    /* ... before the last
                                                      line */
    uint32_t                        end_crc;
    ngx_uint_t                      end_line;
    char                           *v1_why;        /* the first fault */
    ngx_uint_t                      v1_line;
    size_t                          len;           /* of buf */
    u_char                          buf[NGX_AI_COST_STATE_MAX_LINE];
    u_char                          route[3 * NGX_AI_COST_STATE_MAX_ROUTE];
    u_char                          model[3 * NGX_AI_COST_STATE_MAX_MODEL];
} ngx_ai_cost_state_t;


void ngx_ai_cost_state_init(ngx_ai_cost_state_t *st, ngx_str_t *zone,
    ngx_ai_cost_state_handler_pt handler, void *data, ngx_uint_t load);

/* bytes of the file, in order; NGX_OK: go on, NGX_DONE: refused as a
 * whole (st->why) or the handler failed (st->stopped), stop reading */
ngx_int_t ngx_ai_cost_state_feed(ngx_ai_cost_state_t *st, u_char *p,
    size_t len);

/* one line, without its line feed; returns as ngx_ai_cost_state_feed() */
ngx_int_t ngx_ai_cost_state_line(ngx_ai_cost_state_t *st, u_char *p,
    size_t len);

/* the end of the file: sets why, truncated, ... */
void ngx_ai_cost_state_finish(ngx_ai_cost_state_t *st);


/*
 * The writer, version 2: each line is its fields separated by one space,
 * then a space and the CRC32 of the bytes before it (8 hex digits).
 */
ngx_int_t ngx_ai_cost_state_write_head(ngx_ai_buf_t *b, ngx_str_t *zone,
    uint64_t now, uint64_t *totals);
ngx_int_t ngx_ai_cost_state_write_rec(ngx_ai_buf_t *b,
    ngx_ai_cost_state_rec_t *rec);
ngx_int_t ngx_ai_cost_state_write_end(ngx_ai_buf_t *b, uint64_t records);

/* "dl"/"da": a record's deltas (rec->type NGX_AI_COST_STATE_D*) */
ngx_int_t ngx_ai_cost_state_write_delta(ngx_ai_buf_t *b,
    ngx_ai_cost_state_rec_t *rec);

/* "sync INSTANCE SEQ FROZEN P1..P8 S1..S8": the totals' deltas */
ngx_int_t ngx_ai_cost_state_write_sync(ngx_ai_buf_t *b, u_char *instance,
    uint64_t seq, ngx_uint_t frozen, uint64_t *pend, uint64_t *send);

/* "=" and s, bytes outside 0x21-0x7e and "%" as %XX */
ngx_int_t ngx_ai_cost_state_write_str(ngx_ai_buf_t *b, ngx_str_t *s);


#endif /* _NGX_AI_GATEWAY_STATE_H_INCLUDED_ */
