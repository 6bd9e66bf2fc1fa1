
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The ai_pool directive: a location's fusion pool (its members and their
 * alternatives, the judges, the mode and the waiting bounds), checked
 * when the configuration is read; ngx_ai_gateway_fusion.c runs it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


/* by mode (NGX_AI_FUSION_*), also for fusion.c */
ngx_str_t  ngx_http_ai_fusion_modes[] = {
    ngx_string("best-of"),
    ngx_string("merge"),
    ngx_string("debate"),
    ngx_string("vote")
};


/*
 * ai_pool MEMBER[|ALTERNATIVE...] ... judge=MODEL[,MODEL]
 *     [mode=best-of|merge|debate|vote] [quorum=K] [grace=T] [deadline=T]
 *     [rounds=N]
 */

char *
ngx_http_ai_pool_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_loc_conf_t *alcf = conf;

    u_char                   *p, *sep, *last;
    ngx_int_t                 n;
    ngx_str_t                *value, s;
    ngx_uint_t                i, j;
    ngx_array_t              *alts;
    ngx_http_ai_pool_t       *pool;
    ngx_http_ai_model_t      *m, *model;

    if (alcf->pool != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    pool = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_pool_t));
    if (pool == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_array_init(&pool->members, cf->pool, 4, sizeof(ngx_array_t))
           != NGX_OK
        || ngx_array_init(&pool->judges, cf->pool, 2,
                          sizeof(ngx_http_ai_model_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    pool->mode = NGX_AI_FUSION_BEST_OF;
    pool->rounds = 1;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "judge=", 6) == 0) {
            p = value[i].data + 6;
            last = value[i].data + value[i].len;

            while (p < last) {
                sep = ngx_strlchr(p, last, ',');
                if (sep == NULL) {
                    sep = last;
                }

                s.data = p;
                s.len = sep - p;

                /* a NUL-terminated copy: translators need one */
                s.data = ngx_pstrdup(cf->pool, &s);
                if (s.data == NULL) {
                    return NGX_CONF_ERROR;
                }

                model = ngx_http_ai_model_parse(cf, &s);
                if (model == NULL) {
                    return NGX_CONF_ERROR;
                }

                m = ngx_array_push(&pool->judges);
                if (m == NULL) {
                    return NGX_CONF_ERROR;
                }

                *m = *model;
                m->upstream.data = ngx_pnalloc(cf->pool, m->upstream.len + 1);
                if (m->upstream.data == NULL) {
                    return NGX_CONF_ERROR;
                }

                ngx_cpystrn(m->upstream.data, model->upstream.data,
                            m->upstream.len + 1);

                p = sep + 1;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "mode=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            for (j = 0; j < 4; j++) {
                if (ngx_http_ai_fusion_modes[j].len == s.len
                    && ngx_strncmp(ngx_http_ai_fusion_modes[j].data, s.data,
                                   s.len) == 0)
                {
                    break;
                }
            }

            if (j == 4) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid mode \"%V\": expected best-of, "
                                   "merge, debate or vote", &s);
                return NGX_CONF_ERROR;
            }

            pool->mode = j;
            continue;
        }

        if (ngx_strncmp(value[i].data, "quorum=", 7) == 0
            || ngx_strncmp(value[i].data, "rounds=", 7) == 0)
        {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);

            if (n == NGX_ERROR || n == 0 || n > 16) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": expected 1 to 16",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 'q') {
                pool->quorum = n;

            } else {
                pool->rounds = n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "grace=", 6) == 0
            || ngx_strncmp(value[i].data, "deadline=", 9) == 0)
        {
            p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')
                + 1;
            s.data = p;
            s.len = value[i].data + value[i].len - p;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid time in \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (value[i].data[0] == 'g') {
                pool->grace = (ngx_msec_t) n;

            } else {
                pool->deadline = (ngx_msec_t) n;
            }

            continue;
        }

        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": ai_pool takes "
                               "members, judge=, mode=, quorum=, grace=, "
                               "deadline= and rounds=", &value[i]);
            return NGX_CONF_ERROR;
        }

        /* a member: "model" or "model|fallback|..." */

        alts = ngx_array_push(&pool->members);
        if (alts == NULL
            || ngx_array_init(alts, cf->pool, 1, sizeof(ngx_http_ai_model_t))
               != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        p = value[i].data;
        last = value[i].data + value[i].len;

        while (p < last) {
            sep = ngx_strlchr(p, last, '|');
            if (sep == NULL) {
                sep = last;
            }

            s.len = sep - p;
            s.data = ngx_pnalloc(cf->pool, s.len + 1);
            if (s.data == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_cpystrn(s.data, p, s.len + 1);

            model = ngx_http_ai_model_parse(cf, &s);
            if (model == NULL) {
                return NGX_CONF_ERROR;
            }

            m = ngx_array_push(alts);
            if (m == NULL) {
                return NGX_CONF_ERROR;
            }

            *m = *model;
            p = sep + 1;
        }
    }

    if (pool->members.nelts < 2 || pool->members.nelts > 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_pool takes 2 to 16 members");
        return NGX_CONF_ERROR;
    }

    if (pool->judges.nelts == 0 && pool->mode != NGX_AI_FUSION_VOTE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_pool needs judge=MODEL in mode=%V",
                           &ngx_http_ai_fusion_modes[pool->mode]);
        return NGX_CONF_ERROR;
    }

    if (pool->quorum > pool->members.nelts) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "quorum=%ui is more than the %ui members",
                           pool->quorum, pool->members.nelts);
        return NGX_CONF_ERROR;
    }

    pool->name.len = sizeof("fusion/") - 1
                     + ngx_http_ai_fusion_modes[pool->mode].len;
    pool->name.data = ngx_pnalloc(cf->pool, pool->name.len);
    if (pool->name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(pool->name.data, "fusion/%V",
                &ngx_http_ai_fusion_modes[pool->mode]);

    alcf->pool = pool;

    return NGX_CONF_OK;
}
