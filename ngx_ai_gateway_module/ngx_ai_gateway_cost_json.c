
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * The cost zones in ai_status: the totals, the ledger and spend arrays
 * (filtered and paged through the status filter), with the key's name
 * and team where the key is an ai_auth key's (or a team's account), and
 * the zones' items.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway_limits.h"


static void ngx_http_ai_cost_json_counters(ngx_ai_jw_t *w,
    ngx_http_ai_counters_t *c);


static void
ngx_http_ai_cost_json_counters(ngx_ai_jw_t *w, ngx_http_ai_counters_t *c)
{
    ngx_ai_jw_key_uint(w, "requests", c->requests);
    ngx_ai_jw_key_uint(w, "errors", c->errors);
    ngx_ai_jw_key_uint(w, "input_tokens", c->input_tokens);
    ngx_ai_jw_key_uint(w, "output_tokens", c->output_tokens);
    ngx_ai_jw_key_uint(w, "cost_nano_usd", c->cost);
    ngx_ai_jw_key_usd(w, "cost_usd", c->cost);
    ngx_ai_jw_key_uint(w, "aborted", c->aborted);
    ngx_ai_jw_key_uint(w, "estimated_input_tokens", c->est_input_tokens);
    ngx_ai_jw_key_uint(w, "estimated_cost_nano_usd", c->est_cost);
}


/* the status "totals": the counters of every cost zone added up */

void
ngx_http_ai_cost_totals_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w)
{
    ngx_uint_t                i;
    ngx_shm_zone_t          **zones;
    ngx_http_ai_counters_t    totals;
    ngx_http_ai_cost_zone_t  *zone;

    zones = lmcf->cost_zones.elts;

    ngx_memzero(&totals, sizeof(ngx_http_ai_counters_t));

    for (i = 0; i < lmcf->cost_zones.nelts; i++) {
        zone = zones[i]->data;

        ngx_shmtx_lock(&zone->shpool->mutex);
        ngx_http_ai_cost_add(&totals, &zone->sh->totals);
        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    ngx_ai_jw_object(w);
    ngx_http_ai_cost_json_counters(w, &totals);
    ngx_ai_jw_end(w);
}


/*
 * The status "ledger" (list NGX_HTTP_AI_STATUS_LEDGER) or "spend"
 * (NGX_HTTP_AI_STATUS_SPEND) array of every cost zone; with f, the
 * entries it keeps
 */

void
ngx_http_ai_cost_entries_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w, ngx_http_ai_status_filter_t *f, ngx_uint_t list)
{
    u_char                   *digest;
    time_t                    now;
    uint64_t                  day, month;
    ngx_str_t                 route, model;
    ngx_uint_t                i, spend;
    ngx_tm_t                  tm;
    ngx_queue_t              *q;
    ngx_shm_zone_t          **zones;
    ngx_http_ai_cost_node_t  *cn;
    ngx_http_ai_cost_zone_t  *zone;
    u_char                    hex[NGX_HTTP_AI_KEY_PREFIX];

    zones = lmcf->cost_zones.elts;
    spend = (list == NGX_HTTP_AI_STATUS_SPEND);

    now = ngx_time();
    day = (uint64_t) now / 86400;
    ngx_gmtime(now, &tm);
    month = (uint64_t) tm.ngx_tm_year * 12 + tm.ngx_tm_mon - 1;

    ngx_ai_jw_array(w);

    for (i = 0; i < lmcf->cost_zones.nelts && w->rc == NGX_OK; i++) {
        zone = zones[i]->data;

        ngx_shmtx_lock(&zone->shpool->mutex);

        for (q = ngx_queue_head(&zone->sh->queue);
             q != ngx_queue_sentinel(&zone->sh->queue) && w->rc == NGX_OK;
             q = ngx_queue_next(q))
        {
            cn = ngx_queue_data(q, ngx_http_ai_cost_node_t, queue);

            if ((cn->type == NGX_HTTP_AI_COST_LEDGER) == spend) {
                continue;
            }

            ngx_http_ai_cost_node_parts(cn, &digest, &route, &model);

            if (f && !f->keep(f, list, &zones[i]->shm.name, digest,
                              (spend && digest) ? NULL : &route,
                              spend ? NULL : &model))
            {
                continue;
            }

            ngx_ai_jw_object(w);
            ngx_ai_jw_key_string(w, "zone", zones[i]->shm.name.data,
                                 zones[i]->shm.name.len);
            ngx_ai_jw_key(w, "key");

            if (digest) {
                ngx_http_ai_digest_hex(hex, digest,
                                       NGX_HTTP_AI_KEY_PREFIX / 2);
                ngx_ai_jw_string(w, hex, NGX_HTTP_AI_KEY_PREFIX);
                ngx_http_ai_key_name_json(w, lmcf->key_names, digest,
                                          NGX_HTTP_AI_DIGEST_LEN);

            } else {
                ngx_ai_jw_null(w);
            }

            ngx_ai_jw_key(w, "route");

            if (spend && digest) {
                ngx_ai_jw_null(w);

            } else {
                ngx_ai_jw_string(w, route.data, route.len);
            }

            if (!spend) {
                ngx_ai_jw_key_string(w, "model", model.data, model.len);
                ngx_http_ai_cost_json_counters(w, &cn->u.ledger.c);
                ngx_ai_jw_key_uint(w, "first_seen",
                                   (uint64_t) cn->u.ledger.first);
                ngx_ai_jw_key_uint(w, "last_seen",
                                   (uint64_t) cn->u.ledger.last);

            } else {
                ngx_ai_jw_key_uint(w, "day_nano_usd",
                                   cn->u.account.day == day
                                   ? cn->u.account.day_spend : 0);
                ngx_ai_jw_key_uint(w, "month_nano_usd",
                                   cn->u.account.month == month
                                   ? cn->u.account.month_spend : 0);
                ngx_ai_jw_key_uint(w, "total_nano_usd", cn->u.account.total);
                ngx_ai_jw_key_usd(w, "total_usd", cn->u.account.total);
                ngx_ai_jw_key_uint(w, "in_flight_nano_usd",
                                   cn->u.account.in_flight);
            }

            ngx_ai_jw_end(w);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);
    }

    ngx_ai_jw_end(w);
}


/* an item of the status "zones" array for every cost zone */

void
ngx_http_ai_cost_zones_json(ngx_http_ai_limits_main_conf_t *lmcf,
    ngx_ai_jw_t *w)
{
    ngx_uint_t                i, entries, accounts, evicted;
    ngx_shm_zone_t          **zones;
    ngx_http_ai_counters_t    totals;
    ngx_http_ai_cost_zone_t  *zone;

    zones = lmcf->cost_zones.elts;

    for (i = 0; i < lmcf->cost_zones.nelts; i++) {
        zone = zones[i]->data;

        ngx_shmtx_lock(&zone->shpool->mutex);

        totals = zone->sh->totals;
        entries = zone->sh->entries;
        accounts = zone->sh->accounts;
        evicted = zone->sh->evicted;

        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_ai_jw_object(w);
        ngx_ai_jw_key_string(w, "zone", zones[i]->shm.name.data,
                             zones[i]->shm.name.len);
        ngx_ai_jw_key_string(w, "type", (u_char *) "cost", 4);
        ngx_ai_jw_key_uint(w, "size", zones[i]->shm.size);
        ngx_ai_jw_key_uint(w, "entries", entries);
        ngx_ai_jw_key_uint(w, "accounts", accounts);
        ngx_ai_jw_key_uint(w, "evicted", evicted);
        ngx_ai_jw_key(w, "totals");
        ngx_ai_jw_object(w);
        ngx_http_ai_cost_json_counters(w, &totals);
        ngx_ai_jw_end(w);
        ngx_ai_jw_end(w);
    }
}
