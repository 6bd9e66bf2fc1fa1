
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The client key file of ai_keys (ngx_ai_gateway_keys_file.c, pure): its
 * lines read from bytes, the checks across lines, a model against a
 * key's models= list.  One line per key:
 *
 *   sha256:<64 hex> name=NAME [team=TEAM] [models=a/b,c/x*] [rpm=N]
 *       [tpm=N] [budget=USD[/day|/month]] [expires=RFC3339]
 *   plain:<key> name=NAME ...          (tests only: the key in clear)
 *   team:TEAM budget=USD[/day|/month]  (a team's budget)
 *
 * Blank lines and lines starting with "#" are skipped.
 */


#ifndef _NGX_AI_GATEWAY_KEYS_FILE_H_INCLUDED_
#define _NGX_AI_GATEWAY_KEYS_FILE_H_INCLUDED_


#include "ngx_ai_gateway_pure.h"


#define NGX_AI_KEY_DIGEST_LEN       32          /* SHA-256 */
#define NGX_AI_KEY_MAX_NAME         64          /* name=, team= */
#define NGX_AI_KEY_MIN_PLAIN        8
#define NGX_AI_KEY_MAX_PLAIN        256
#define NGX_AI_KEY_MAX_MODELS       64          /* entries of models= */
#define NGX_AI_KEY_MAX_RATE         1000000000  /* rpm=, tpm= */
#define NGX_AI_KEY_MAX_LINE         4096

#define NGX_AI_KEY_LINE             1
#define NGX_AI_KEY_TEAM             2

#define NGX_AI_KEY_EVER             0           /* budget= periods */
#define NGX_AI_KEY_DAY              1
#define NGX_AI_KEY_MONTH            2


/* one line of the file */
typedef struct {
    ngx_uint_t                  type;        /* NGX_AI_KEY_LINE, _TEAM */
    ngx_uint_t                  line;        /* 1-based */
    u_char                      digest[NGX_AI_KEY_DIGEST_LEN];
    ngx_str_t                   plain;       /* plain:KEY, its digest left
                                                to the caller */
    ngx_str_t                   name;        /* the team's, for a team */
    ngx_str_t                   team;
    ngx_array_t                *models;      /* ngx_str_t; NULL: any */
    uint64_t                    rpm;         /* 0: not set */
    uint64_t                    tpm;
    ngx_str_t                   budget;      /* the USD figure, as written;
                                                empty: none */
    ngx_uint_t                  period;      /* NGX_AI_KEY_EVER ... */
    time_t                      expires;     /* 0: never */
} ngx_ai_key_entry_t;


/* why the file was refused: a fixed message and its line (0: none) */
typedef struct {
    ngx_uint_t                  line;
    ngx_uint_t                  other;       /* a duplicate's first line */
    const char                 *why;
} ngx_ai_keys_error_t;


ngx_int_t ngx_ai_keys_parse(ngx_pool_t *pool, u_char *buf, size_t len,
    ngx_array_t *entries, ngx_ai_keys_error_t *err);
ngx_int_t ngx_ai_keys_check(ngx_pool_t *pool, ngx_array_t *entries,
    ngx_ai_keys_error_t *err);
ngx_uint_t ngx_ai_keys_model_allowed(ngx_str_t *models, ngx_uint_t n,
    u_char *model, size_t len);
ngx_int_t ngx_ai_keys_parse_time(u_char *p, size_t len, time_t *t);
ngx_uint_t ngx_ai_keys_valid_name(u_char *p, size_t len);


#endif /* _NGX_AI_GATEWAY_KEYS_FILE_H_INCLUDED_ */
