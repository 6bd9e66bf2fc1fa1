
/*
 * Copyright (C) ngx_ai_gateway_module authors
 *
 * Fusion (ai_pool): a request goes to every member at once, as parallel
 * subrequests with their answers in memory; the gateway proceeds at the
 * earliest of every member done, `grace` after the quorum-th usable
 * answer, or `deadline`, stopping the stragglers; debate rounds let the
 * members revise against each other; then the judge picks (best-of) or
 * writes (merge, debate) the answer, or a vote decides without a judge.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_ai_gateway.h"


#define NGX_HTTP_AI_KEEPALIVE_MS    1000
#define NGX_HTTP_AI_CHUNK_WORDS     8


enum {
    NGX_HTTP_AI_MEMBERS = 0,
    NGX_HTTP_AI_JUDGE,
    NGX_HTTP_AI_DONE
};


/* one member of the pool, for one request */
typedef struct {
    ngx_array_t                *models;      /* its alternatives */
    ngx_uint_t                  next;        /* the alternative to try */
    ngx_http_ai_attempt_t      *call;        /* its call this round */
    ngx_http_ai_attempt_t      *answered_by; /* the call of its answer */
    ngx_str_t                   answer;      /* its latest usable answer */
    ngx_str_t                   finish;
} ngx_http_ai_member_t;


struct ngx_http_ai_fusion_s {
    ngx_http_ai_pool_t         *conf;
    ngx_http_ai_member_t       *members;
    ngx_uint_t                  n;
    ngx_uint_t                  round;
    ngx_uint_t                  phase;
    ngx_uint_t                  judge_next;  /* index in conf->judges */
    ngx_uint_t                  judge_mode;  /* best-of or merge */
    ngx_http_ai_attempt_t      *judge;
    ngx_uint_t                 *shown;       /* member of "Source k+1" */
    ngx_uint_t                  nshown;
    ngx_int_t                   winner;      /* member, -1: judge wrote */
    const char                 *judge_status;
    ngx_str_t                   content;
    ngx_str_t                   finish;
    ngx_event_t                 grace;
    ngx_event_t                 deadline;
    ngx_event_t                 keepalive;
    ngx_ai_stream_t             out;         /* chunks to a streaming client */
    ngx_ai_chat_request_t       out_req;
    unsigned                    cut:1;       /* proceed now */
    unsigned                    relayed:1;   /* the judge's text went out */
};


static ngx_uint_t ngx_http_ai_fusion_members(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_pool_t *pool,
    ngx_http_ai_fusion_t *fu);
static ngx_int_t ngx_http_ai_fusion_round(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_fusion_call(ngx_http_ai_ctx_t *ctx,
    ngx_uint_t i, ngx_http_ai_model_t *m, ngx_ai_chat_request_t *req);
static void ngx_http_ai_fusion_proceed(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_fusion_debate(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_fusion_judge(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static void ngx_http_ai_fusion_judged(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static void ngx_http_ai_fusion_without_judge(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_fusion_vote(ngx_http_request_t *r,
    ngx_http_ai_fusion_t *fu, ngx_uint_t *candidates, ngx_uint_t *n);
static ngx_int_t ngx_http_ai_fusion_show(ngx_http_request_t *r,
    ngx_http_ai_fusion_t *fu, ngx_uint_t *candidates, ngx_uint_t n,
    ngx_str_t **answers);
static void ngx_http_ai_fusion_respond(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static void ngx_http_ai_fusion_fail(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_fusion_object(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_ai_buf_t *b);
static ngx_int_t ngx_http_ai_fusion_call_json(ngx_ai_buf_t *b,
    ngx_http_ai_attempt_t *a);
static ngx_int_t ngx_http_ai_fusion_header(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_fusion_send(ngx_http_ai_ctx_t *ctx,
    ngx_uint_t last);
static void ngx_http_ai_fusion_run(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_fusion_relay(ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_attempt_t *a);
static void ngx_http_ai_fusion_cleanup(ngx_http_ai_ctx_t *ctx);
static void ngx_http_ai_fusion_grace_handler(ngx_event_t *ev);
static void ngx_http_ai_fusion_keepalive_handler(ngx_event_t *ev);


ngx_http_ai_strategy_t  ngx_http_ai_fusion_strategy = {
    ngx_http_ai_fusion_run,
    ngx_http_ai_fusion_relay,
    ngx_http_ai_fusion_cleanup
};


/*
 * Fusion or not: a request with tools, or one made by another gateway's
 * fusion (X-AI-Fusion-Depth), is served by the members in turn instead.
 */

ngx_int_t
ngx_http_ai_fusion_wanted(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_pool_t *pool)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (ctx->chat.has_tools) {
        return 0;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("X-AI-Fusion-Depth") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "X-AI-Fusion-Depth",
                               sizeof("X-AI-Fusion-Depth") - 1) == 0)
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The models the pool may call: the members and their alternatives, and,
 * for a fusion, the judges (which admission prices).  Without fusion
 * (tools) the members are run as a fallback chain.
 */

ngx_int_t
ngx_http_ai_fusion_plan(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_pool_t *pool, ngx_uint_t judges)
{
    ngx_uint_t            i, j;
    ngx_array_t          *members;
    ngx_http_ai_model_t  *m;

    if (ngx_http_ai_calls_init(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    members = pool->members.elts;

    for (i = 0; i < pool->members.nelts; i++) {
        m = members[i].elts;

        for (j = 0; j < members[i].nelts; j++) {
            if (ngx_http_ai_plan_add(ctx, &m[j]) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    m = pool->judges.elts;

    for (i = 0; judges && i < pool->judges.nelts; i++) {
        if (ngx_http_ai_plan_add(ctx, &m[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* models kept out of the plan (ai_auth's models=): a member with
     * none of its alternatives left is dropped, a pool with no member
     * left is refused */

    if (ctx->denied
        && ngx_http_ai_fusion_members(r, ctx, pool, NULL) == 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * The members whose alternatives are in the plan, each with only those
 * alternatives: into fu->members if fu, else only counted.
 */

static ngx_uint_t
ngx_http_ai_fusion_members(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_pool_t *pool, ngx_http_ai_fusion_t *fu)
{
    ngx_uint_t            i, j, n;
    ngx_array_t          *members, *kept;
    ngx_http_ai_model_t  *m, *k;

    members = pool->members.elts;
    n = 0;

    for (i = 0; i < pool->members.nelts; i++) {
        m = members[i].elts;
        kept = NULL;

        for (j = 0; j < members[i].nelts; j++) {
            if (!ngx_http_ai_plan_has(ctx, &m[j].name)) {
                continue;
            }

            if (fu == NULL) {
                kept = &members[i];
                break;
            }

            if (kept == NULL) {
                kept = ngx_array_create(r->pool, members[i].nelts,
                                        sizeof(ngx_http_ai_model_t));
                if (kept == NULL) {
                    return 0;
                }
            }

            k = ngx_array_push(kept);
            if (k == NULL) {
                return 0;
            }

            *k = m[j];
        }

        if (kept == NULL) {
            continue;
        }

        if (fu) {
            fu->members[n].models = kept;
        }

        n++;
    }

    return n;
}


void
ngx_http_ai_fusion_start(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_pool_t *pool)
{
    ngx_uint_t             i;
    ngx_array_t           *members;
    ngx_http_ai_fusion_t  *fu;

    /* ctx's lists of models and calls: ngx_http_ai_fusion_plan() */

    fu = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_fusion_t));
    if (fu == NULL) {
        goto failed;
    }

    ctx->fusion = fu;

    fu->conf = pool;
    fu->n = pool->members.nelts;
    fu->winner = -1;

    fu->members = ngx_pcalloc(r->pool, fu->n * sizeof(ngx_http_ai_member_t));
    fu->shown = ngx_pcalloc(r->pool, fu->n * sizeof(ngx_uint_t));
    if (fu->members == NULL || fu->shown == NULL) {
        goto failed;
    }

    members = pool->members.elts;

    for (i = 0; i < fu->n; i++) {
        fu->members[i].models = &members[i];
    }

    if (ctx->denied) {
        fu->n = ngx_http_ai_fusion_members(r, ctx, pool, fu);

        if (fu->n == 0) {
            goto failed;
        }
    }

    fu->grace.handler = ngx_http_ai_fusion_grace_handler;
    fu->grace.data = ctx;
    fu->grace.log = r->connection->log;
    fu->deadline = fu->grace;
    fu->keepalive = fu->grace;
    fu->keepalive.handler = ngx_http_ai_fusion_keepalive_handler;

    if (ctx->chat.stream) {

        /*
         * A streaming client hears at once that the answer is coming,
         * and keep-alive comments while the members work.
         */

        fu->out_req = ctx->chat;
        fu->out_req.include_usage = 0;    /* the last chunk carries it */

        if (ngx_ai_stream_init(&fu->out, r->pool, &fu->out_req, ngx_time())
            != NGX_OK)
        {
            goto failed;
        }

        fu->out.model = pool->name;

        if (ngx_http_ai_fusion_header(r, ctx) != NGX_OK) {
            goto failed;
        }

        ngx_add_timer(&fu->keepalive, NGX_HTTP_AI_KEEPALIVE_MS);
    }

    if (ngx_http_ai_fusion_round(r, ctx) != NGX_OK) {
        goto failed;
    }

    return;

failed:

    ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/* round 0: every member at once, with the client's request, not streamed */

static ngx_int_t
ngx_http_ai_fusion_round(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t              i;
    ngx_http_ai_model_t    *m;
    ngx_ai_chat_request_t   req;
    ngx_http_ai_fusion_t   *fu;

    fu = ctx->fusion;

    req = ctx->chat;
    req.stream = 0;
    req.include_usage = 0;
    req.models = NULL;

    for (i = 0; i < fu->n; i++) {
        m = fu->members[i].models->elts;

        /* NGX_DECLINED: a limit had no room for this member's call */

        if (ngx_http_ai_fusion_call(ctx, i, &m[fu->members[i].next++], &req)
            == NGX_ERROR)
        {
            return NGX_ERROR;
        }
    }

    if (fu->conf->deadline) {
        ngx_add_timer(&fu->deadline, fu->conf->deadline);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_fusion_call(ngx_http_ai_ctx_t *ctx, ngx_uint_t i,
    ngx_http_ai_model_t *m, ngx_ai_chat_request_t *req)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_attempt_start(ctx, m, req);

    if (rc != NGX_OK) {
        return rc;
    }

    ctx->attempt->member = i;
    ctx->attempt->round = ctx->fusion->round;
    ctx->fusion->members[i].call = ctx->attempt;

    return NGX_OK;
}


/* the decision loop, as ngx_http_ai_fallback_run() is for one answer */

static void
ngx_http_ai_fusion_run(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t               i, running, usable, asked, quorum;
    ngx_http_ai_fusion_t    *fu;
    ngx_http_ai_member_t    *mb;
    ngx_http_ai_model_t     *m;
    ngx_http_ai_attempt_t  **calls, *a;
    ngx_ai_chat_request_t    req;

    fu = ctx->fusion;

    if (ctx->finished) {
        return;
    }

    calls = ctx->calls.elts;

    for (i = 0; i < ctx->calls.nelts; i++) {
        if (calls[i]->done
            && ngx_http_ai_attempt_settle(r, ctx, calls[i]) != NGX_OK)
        {
            goto failed;
        }
    }

    if (fu->phase == NGX_HTTP_AI_JUDGE) {
        if (fu->judge->done) {
            ngx_http_ai_fusion_judged(r, ctx);
        }

        return;
    }

    /* members: who answered, who runs, who can try an alternative */

    running = 0;
    usable = 0;
    asked = 0;

    for (i = 0; i < fu->n; i++) {
        mb = &fu->members[i];
        a = mb->call;

        if (a == NULL || a->round != fu->round) {
            continue;
        }

        asked++;

        if (!a->done) {
            running++;
            continue;
        }

        if (a->outcome == NGX_HTTP_AI_OK && a->answer.content.len) {
            if (mb->answered_by != a) {
                mb->answered_by = a;
                mb->answer = a->answer.content;
                mb->finish = a->answer.finish_reason;
            }

            usable++;
            continue;
        }

        /* a failed member tries its next alternative, in the first round
         * and while there is time */

        if (fu->round == 0 && !fu->cut && a->outcome != NGX_HTTP_AI_ABORTED
            && mb->next < mb->models->nelts)
        {
            req = ctx->chat;
            req.stream = 0;
            req.include_usage = 0;
            req.models = NULL;
            m = mb->models->elts;

            switch (ngx_http_ai_fusion_call(ctx, i, &m[mb->next++], &req)) {

            case NGX_OK:
                running++;
                break;

            case NGX_DECLINED:
                break;

            default:
                goto failed;
            }
        }
    }

    quorum = fu->conf->quorum ? ngx_min(fu->conf->quorum, asked) : asked;

    if (running && !fu->cut && usable >= quorum) {
        if (fu->conf->grace == 0) {
            fu->cut = 1;

        } else if (!fu->grace.timer_set) {
            ngx_add_timer(&fu->grace, fu->conf->grace);
        }
    }

    if (running && !fu->cut) {
        return;
    }

    /* proceed: stop the stragglers, they would hold the connection */

    if (fu->grace.timer_set) {
        ngx_del_timer(&fu->grace);
    }

    if (fu->deadline.timer_set) {
        ngx_del_timer(&fu->deadline);
    }

    for (i = 0; i < fu->n; i++) {
        a = fu->members[i].call;

        if (a && !a->done) {
            ngx_http_ai_attempt_abort(a, NGX_HTTP_AI_ABORTED);
            ngx_str_set(&a->reason, "stopped: the pool went on without it");

            if (ngx_http_ai_attempt_settle(r, ctx, a) != NGX_OK) {
                goto failed;
            }
        }
    }

    ngx_http_ai_fusion_proceed(r, ctx);
    return;

failed:

    ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


static void
ngx_http_ai_fusion_proceed(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t             i, n, *candidates;
    ngx_http_ai_fusion_t  *fu;

    fu = ctx->fusion;

    candidates = ngx_palloc(r->pool, fu->n * sizeof(ngx_uint_t));
    if (candidates == NULL) {
        goto failed;
    }

    n = 0;

    for (i = 0; i < fu->n; i++) {
        if (fu->members[i].answered_by) {
            candidates[n++] = i;
        }
    }

    if (n == 0) {
        ngx_http_ai_fusion_fail(r, ctx);
        return;
    }

    if (fu->conf->mode == NGX_AI_FUSION_DEBATE && n >= 2) {
        switch (ngx_http_ai_fusion_debate(r, ctx)) {

        case NGX_OK:
            return;

        case NGX_ERROR:
            goto failed;

        default: /* NGX_DECLINED: the rounds are over */
            break;
        }
    }

    if (n == 1) {
        /* one usable answer is the answer: never asked again */
        fu->winner = candidates[0];
        fu->judge_status = "single_answer";
        ngx_http_ai_fusion_respond(r, ctx);
        return;
    }

    if (fu->conf->mode == NGX_AI_FUSION_VOTE) {
        if (ngx_http_ai_fusion_vote(r, fu, candidates, &n) != NGX_OK) {
            goto failed;
        }

        if (n == 1) {
            fu->winner = candidates[0];
            fu->judge_status = "majority";
            ngx_http_ai_fusion_respond(r, ctx);
            return;
        }

        /* a tie: the judge breaks it among the tied answers */

        if (fu->conf->judges.nelts == 0) {
            fu->winner = candidates[0];
            fu->judge_status = "tie_first_answer";
            ngx_http_ai_fusion_respond(r, ctx);
            return;
        }
    }

    fu->judge_mode = (fu->conf->mode == NGX_AI_FUSION_MERGE
                      || fu->conf->mode == NGX_AI_FUSION_DEBATE)
                     ? NGX_AI_FUSION_MERGE : NGX_AI_FUSION_BEST_OF;

    if (ngx_http_ai_fusion_show(r, fu, candidates, n, NULL) != NGX_OK
        || ngx_http_ai_fusion_judge(r, ctx) != NGX_OK)
    {
        goto failed;
    }

    return;

failed:

    ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/*
 * A debate round: every member that answered sees the others' answers,
 * anonymised and shuffled, and revises its own.  NGX_DECLINED: no round
 * left.
 */

static ngx_int_t
ngx_http_ai_fusion_debate(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_int_t               rc;
    ngx_str_t              *answers, *others;
    ngx_uint_t              i, j, k, n, started, *candidates;
    ngx_ai_chat_request_t   req;
    ngx_http_ai_fusion_t   *fu;
    ngx_http_ai_member_t   *mb;

    fu = ctx->fusion;

    if (fu->round >= fu->conf->rounds) {
        return NGX_DECLINED;
    }

    candidates = ngx_palloc(r->pool, fu->n * sizeof(ngx_uint_t));
    others = ngx_palloc(r->pool, fu->n * sizeof(ngx_str_t));
    if (candidates == NULL || others == NULL) {
        return NGX_ERROR;
    }

    n = 0;

    for (i = 0; i < fu->n; i++) {
        if (fu->members[i].answered_by) {
            candidates[n++] = i;
        }
    }

    fu->round++;
    fu->cut = 0;
    started = 0;

    for (i = 0; i < n; i++) {
        mb = &fu->members[candidates[i]];

        /* the others, in an order of their own for each member */

        if (ngx_http_ai_fusion_show(r, fu, candidates, n, &answers)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (j = 0, k = 0; j < n; j++) {
            if (fu->shown[j] != candidates[i]) {
                others[k++] = answers[j];
            }
        }

        if (ngx_ai_debate_request(r->pool, &ctx->chat, &mb->answer, others,
                                  k, &req)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* NGX_DECLINED: no room for the revision, the answer stands */

        rc = ngx_http_ai_fusion_call(ctx, candidates[i],
                                     mb->answered_by->target, &req);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        started += (rc == NGX_OK);
    }

    if (started == 0) {
        fu->round--;
        return NGX_DECLINED;
    }

    if (fu->conf->deadline) {
        ngx_add_timer(&fu->deadline, fu->conf->deadline);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai fusion: debate round %ui with %ui members",
                   fu->round, n);

    return NGX_OK;
}


/* the next judge; none left: a vote, then the first answer */

static ngx_int_t
ngx_http_ai_fusion_judge(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_int_t               rc;
    ngx_str_t              *answers;
    ngx_uint_t              i;
    ngx_ai_chat_request_t   req;
    ngx_http_ai_model_t    *judges;
    ngx_http_ai_fusion_t   *fu;

    fu = ctx->fusion;

    judges = fu->conf->judges.elts;

    while (ctx->denied && fu->judge_next < fu->conf->judges.nelts
           && !ngx_http_ai_plan_has(ctx, &judges[fu->judge_next].name))
    {
        /* a judge this request may not call (ai_auth's models=) */
        fu->judge_next++;
    }

    if (fu->judge_next >= fu->conf->judges.nelts) {
        ngx_http_ai_fusion_without_judge(r, ctx);
        return NGX_OK;
    }

    answers = ngx_palloc(r->pool, fu->nshown * sizeof(ngx_str_t));
    if (answers == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < fu->nshown; i++) {
        answers[i] = fu->members[fu->shown[i]].answer;
    }

    if (ngx_ai_judge_request(r->pool, &ctx->chat, fu->judge_mode, answers,
                             fu->nshown, &req)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_ai_attempt_start(ctx, &judges[fu->judge_next++], &req);

    if (rc == NGX_DECLINED) {
        /* a limit had no room for a judge call: decided without one */
        fu->judge_next = fu->conf->judges.nelts;
        ngx_http_ai_fusion_without_judge(r, ctx);
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    fu->judge = ctx->attempt;
    fu->judge->member = -1;
    fu->phase = NGX_HTTP_AI_JUDGE;

    return NGX_OK;
}


static void
ngx_http_ai_fusion_judged(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_int_t               rc;
    ngx_uint_t              k;
    ngx_http_ai_attempt_t  *a;
    ngx_http_ai_fusion_t   *fu;

    fu = ctx->fusion;
    a = fu->judge;

    if (a->outcome == NGX_HTTP_AI_OK) {

        if (fu->judge_mode == NGX_AI_FUSION_BEST_OF) {
            k = ngx_ai_judge_verdict(a->answer.content.data,
                                     a->answer.content.len, fu->nshown);
            if (k) {
                fu->winner = fu->shown[k - 1];
                fu->judge_status = (fu->conf->mode == NGX_AI_FUSION_VOTE)
                                   ? "tie_broken_by_judge"
                                   : (fu->judge_next == 1) ? "ok"
                                                           : "next_judge";
                ngx_http_ai_fusion_respond(r, ctx);
                return;
            }

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai fusion: judge %V named no source: \"%V\"",
                          &a->model, &a->answer.content);
            goto next;
        }

        fu->judge_status = (fu->judge_next == 1) ? "ok" : "next_judge";

        if (a->streaming) {
            /* its text went out as it came: only the end is left */
            ngx_http_ai_fusion_respond(r, ctx);
            return;
        }

        fu->content = a->answer.content;
        fu->finish = a->answer.finish_reason;
        ngx_http_ai_fusion_respond(r, ctx);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai fusion: judge %V failed: %V", &a->model, &a->reason);

next:

    if (fu->relayed) {
        /* half an answer reached the client: it cannot be replaced */
        fu->phase = NGX_HTTP_AI_DONE;
        ctx->model = a->model;
        ngx_http_ai_answer(r, ctx, a);
        return;
    }

    fu->phase = NGX_HTTP_AI_MEMBERS;

    rc = ngx_http_ai_fusion_judge(r, ctx);

    if (rc != NGX_OK) {
        ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/* no judge could decide: the majority of the answers shown, else the
 * first of them */

static void
ngx_http_ai_fusion_without_judge(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t             i, n, *candidates;
    ngx_http_ai_fusion_t  *fu;

    fu = ctx->fusion;

    candidates = ngx_palloc(r->pool, fu->n * sizeof(ngx_uint_t));
    if (candidates == NULL) {
        ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* in member order, not the shuffled one: "first" means first listed */

    for (i = 0, n = 0; i < fu->n; i++) {
        if (fu->members[i].answered_by) {
            candidates[n++] = i;
        }
    }

    if (ngx_http_ai_fusion_vote(r, fu, candidates, &n) != NGX_OK) {
        ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    fu->winner = candidates[0];
    fu->judge_status = (n == 1) ? "judge_failed_vote"
                                : "judge_failed_first_answer";

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai fusion: every judge failed, %s",
                  n == 1 ? "a vote decided" : "the first answer is used");

    ngx_http_ai_fusion_respond(r, ctx);
}


/*
 * Majority of the normalised answers: candidates is cut down to the
 * members with the most votes (one: a majority; more: a tie), in order.
 */

static ngx_int_t
ngx_http_ai_fusion_vote(ngx_http_request_t *r, ngx_http_ai_fusion_t *fu,
    ngx_uint_t *candidates, ngx_uint_t *n)
{
    ngx_str_t   *keys;
    ngx_uint_t   i, j, best, *votes, k;

    keys = ngx_palloc(r->pool, *n * sizeof(ngx_str_t));
    votes = ngx_pcalloc(r->pool, *n * sizeof(ngx_uint_t));
    if (keys == NULL || votes == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < *n; i++) {
        if (ngx_ai_vote_key(r->pool, &fu->members[candidates[i]].answer,
                            &keys[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    best = 0;

    for (i = 0; i < *n; i++) {
        for (j = 0; j < *n; j++) {
            if (keys[i].len == keys[j].len
                && ngx_strncmp(keys[i].data, keys[j].data, keys[i].len) == 0)
            {
                votes[i]++;
            }
        }

        if (votes[i] > best) {
            best = votes[i];
        }
    }

    /* the winning answer's first holder; a tie keeps one of each key */

    for (i = 0, k = 0; i < *n; i++) {
        if (votes[i] != best) {
            continue;
        }

        for (j = 0; j < i; j++) {
            if (votes[j] == best && keys[i].len == keys[j].len
                && ngx_strncmp(keys[i].data, keys[j].data, keys[i].len) == 0)
            {
                break;
            }
        }

        if (j == i) {
            candidates[k++] = candidates[i];
        }
    }

    *n = k;

    return NGX_OK;
}


/*
 * The candidates in a random order, as "Source 1..n" for a judge or a
 * debater: fu->shown[k] is the member shown as Source k + 1.
 */

static ngx_int_t
ngx_http_ai_fusion_show(ngx_http_request_t *r, ngx_http_ai_fusion_t *fu,
    ngx_uint_t *candidates, ngx_uint_t n, ngx_str_t **answers)
{
    ngx_uint_t  i, j, t;

    for (i = 0; i < n; i++) {
        fu->shown[i] = candidates[i];
    }

    for (i = n; i > 1; i--) {
        j = (ngx_uint_t) ngx_random() % i;
        t = fu->shown[i - 1];
        fu->shown[i - 1] = fu->shown[j];
        fu->shown[j] = t;
    }

    fu->nshown = n;

    if (answers == NULL) {
        return NGX_OK;
    }

    *answers = ngx_palloc(r->pool, n * sizeof(ngx_str_t));
    if (*answers == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        (*answers)[i] = fu->members[fu->shown[i]].answer;
    }

    return NGX_OK;
}


/*
 * The final answer: a chat.completion with model "fusion/<mode>", usage
 * summed over every call, and the "fusion" object; or, to a streaming
 * client, the rest of the stream.
 */

static void
ngx_http_ai_fusion_respond(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    u_char                *p, *last, *cut;
    ngx_str_t              body;
    ngx_uint_t             words;
    ngx_ai_buf_t           b;
    ngx_http_ai_fusion_t  *fu;
    ngx_http_ai_member_t  *mb;

    fu = ctx->fusion;
    fu->phase = NGX_HTTP_AI_DONE;

    if (fu->keepalive.timer_set) {
        ngx_del_timer(&fu->keepalive);
    }

    ngx_http_ai_attempt_abort_others(ctx, NULL);

    if (fu->winner >= 0) {
        mb = &fu->members[fu->winner];
        fu->content = mb->answer;
        fu->finish = mb->finish;
        ctx->model = mb->answered_by->model;

    } else {
        ctx->model = fu->judge->model;
    }

    if (fu->finish.len == 0) {
        ngx_str_set(&fu->finish, "stop");
    }

    /* the chunk writer takes a C string */

    p = ngx_pnalloc(r->pool, fu->finish.len + 1);
    if (p == NULL) {
        goto failed;
    }

    ngx_cpystrn(p, fu->finish.data, fu->finish.len + 1);
    fu->finish.data = p;

    if (ngx_ai_buf_init(&b, r->pool, fu->content.len + 1024) != NGX_OK) {
        goto failed;
    }

    if (ctx->chat.stream) {

        if (!fu->relayed) {
            /* the chosen answer, chunked a few words at a time */

            p = fu->content.data;
            last = p + fu->content.len;

            while (p < last) {
                for (cut = p, words = 0; cut < last; cut++) {
                    if (*cut == ' ' && ++words == NGX_HTTP_AI_CHUNK_WORDS) {
                        break;
                    }
                }

                if (ngx_ai_stream_content(&fu->out, p, cut - p) != NGX_OK) {
                    goto failed;
                }

                p = cut;
            }
        }

        if (ngx_ai_stream_finish(&fu->out, (char *) fu->finish.data)
            != NGX_OK)
        {
            goto failed;
        }

        /* the last chunk: choices [], the usage if asked, and "fusion" */

        if (ngx_ai_buf_append_str(&fu->out.out, "data: {\"id\":") != NGX_OK
            || ngx_ai_buf_append_json_string(&fu->out.out, fu->out.id.data,
                                             fu->out.id.len)
               != NGX_OK
            || ngx_ai_buf_append_str(&fu->out.out,
                                     ",\"object\":\"chat.completion.chunk\","
                                     "\"created\":")
               != NGX_OK
            || ngx_ai_buf_append_uint(&fu->out.out,
                                      (uint64_t) fu->out.created)
               != NGX_OK
            || ngx_ai_buf_append_str(&fu->out.out, ",\"model\":") != NGX_OK
            || ngx_ai_buf_append_json_string(&fu->out.out,
                                             fu->conf->name.data,
                                             fu->conf->name.len)
               != NGX_OK
            || ngx_ai_buf_append_str(&fu->out.out, ",\"choices\":[]")
               != NGX_OK)
        {
            goto failed;
        }

        if (ctx->chat.include_usage
            && (ngx_ai_buf_append_str(&fu->out.out, ",\"usage\":") != NGX_OK
                || ngx_ai_buf_append_usage(&fu->out.out, &ctx->usage)
                   != NGX_OK))
        {
            goto failed;
        }

        if (ngx_ai_buf_append_str(&fu->out.out, ",\"fusion\":") != NGX_OK
            || ngx_http_ai_fusion_object(r, ctx, &fu->out.out) != NGX_OK
            || ngx_ai_buf_append_str(&fu->out.out, "}\n\ndata: [DONE]\n\n")
               != NGX_OK)
        {
            goto failed;
        }

        ngx_http_ai_finalize(r, ctx, ngx_http_ai_fusion_send(ctx, 1));
        return;
    }

    if (ngx_ai_buf_append_str(&b, "{\"id\":\"chatcmpl-fusion-") != NGX_OK
        || ngx_ai_buf_append_uint(&b, (uint64_t) ctx->chat.created)
           != NGX_OK
        || ngx_ai_buf_append_uint(&b, (uint64_t) ngx_random()) != NGX_OK
        || ngx_ai_buf_append_str(&b, "\",\"object\":\"chat.completion\","
                                     "\"created\":")
           != NGX_OK
        || ngx_ai_buf_append_uint(&b, (uint64_t) ctx->chat.created)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"model\":") != NGX_OK
        || ngx_ai_buf_append_json_string(&b, fu->conf->name.data,
                                         fu->conf->name.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"choices\":[{\"index\":0,"
                                     "\"message\":{\"role\":\"assistant\","
                                     "\"content\":")
           != NGX_OK
        || ngx_ai_buf_append_json_string(&b, fu->content.data,
                                         fu->content.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, "},\"logprobs\":null,"
                                     "\"finish_reason\":")
           != NGX_OK
        || ngx_ai_buf_append_json_string(&b, fu->finish.data,
                                         fu->finish.len)
           != NGX_OK
        || ngx_ai_buf_append_str(&b, "}],\"usage\":") != NGX_OK
        || ngx_ai_buf_append_usage(&b, &ctx->usage) != NGX_OK
        || ngx_ai_buf_append_str(&b, ",\"fusion\":") != NGX_OK
        || ngx_http_ai_fusion_object(r, ctx, &b) != NGX_OK
        || ngx_ai_buf_append_str(&b, "}") != NGX_OK)
    {
        goto failed;
    }

    body.data = b.data;
    body.len = b.len;

    if (ngx_http_ai_fusion_header(r, ctx) != NGX_OK) {
        goto failed;
    }

    ngx_http_ai_finalize(r, ctx, ngx_http_ai_send_json(r, ctx, NGX_HTTP_OK,
                                                       &body));
    return;

failed:

    ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/* every member failed: 502 with each member's reason */

static void
ngx_http_ai_fusion_fail(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_str_t               json;
    ngx_uint_t              i;
    ngx_ai_buf_t            msg, out;
    ngx_ai_error_t          err;
    ngx_http_ai_attempt_t **calls;
    ngx_http_ai_fusion_t   *fu;

    fu = ctx->fusion;
    fu->phase = NGX_HTTP_AI_DONE;

    if (fu->keepalive.timer_set) {
        ngx_del_timer(&fu->keepalive);
    }

    if (ngx_ai_buf_init(&msg, r->pool, 256) != NGX_OK
        || ngx_ai_buf_append_str(&msg, "every member of the pool failed: ")
           != NGX_OK)
    {
        goto failed;
    }

    calls = ctx->calls.elts;

    for (i = 0; i < ctx->calls.nelts; i++) {
        if ((i && ngx_ai_buf_append_str(&msg, "; ") != NGX_OK)
            || ngx_ai_buf_append(&msg, calls[i]->model.data,
                                 calls[i]->model.len) != NGX_OK
            || ngx_ai_buf_append_str(&msg, ": ") != NGX_OK
            || ngx_ai_buf_append(&msg, calls[i]->reason.data,
                                 calls[i]->reason.len) != NGX_OK)
        {
            goto failed;
        }
    }

    ngx_ai_error_set(&err, NGX_HTTP_BAD_GATEWAY, "upstream_error", NULL,
                     "all_members_failed", "");
    err.message.data = msg.data;
    err.message.len = msg.len;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "ai fusion: %V",
                  &err.message);

    if (!ctx->header_sent) {
        ngx_http_ai_finalize(r, ctx, ngx_http_ai_send_error(r, ctx, &err));
        return;
    }

    /* a streaming client: an error event and no [DONE] */

    if (ngx_ai_error_render(r->pool, &err, &json) != NGX_OK
        || ngx_ai_buf_init(&out, r->pool, json.len + 8) != NGX_OK
        || ngx_ai_sse_data_event(&out, &json) != NGX_OK)
    {
        goto failed;
    }

    fu->out.out = out;

    ngx_http_ai_finalize(r, ctx, ngx_http_ai_fusion_send(ctx, 1));
    return;

failed:

    ngx_http_ai_finalize(r, ctx, NGX_HTTP_INTERNAL_SERVER_ERROR);
}


/*
 * {"mode","judge","judge_status","winner","rounds","members":[...],
 *  "judges":[...]}; each call {"model","status","latency_ms","usage",
 *  "cost"} (cost in USD; "estimated" for calls the gateway stopped)
 */

static ngx_int_t
ngx_http_ai_fusion_object(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_ai_buf_t *b)
{
    ngx_uint_t               i, first;
    ngx_http_ai_fusion_t    *fu;
    ngx_http_ai_attempt_t  **calls, *a;

    fu = ctx->fusion;
    calls = ctx->calls.elts;

    if (ngx_ai_buf_append_str(b, "{\"mode\":\"") != NGX_OK
        || ngx_ai_buf_append(b, ngx_http_ai_fusion_modes[fu->conf->mode].data,
                             ngx_http_ai_fusion_modes[fu->conf->mode].len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, "\",\"judge\":") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (fu->judge && fu->judge->outcome == NGX_HTTP_AI_OK) {
        if (ngx_ai_buf_append_json_string(b, fu->judge->model.data,
                                          fu->judge->model.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(b, "null") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(b, ",\"judge_status\":\"") != NGX_OK
        || ngx_ai_buf_append_str(b, fu->judge_status ? fu->judge_status
                                                     : "none")
           != NGX_OK
        || ngx_ai_buf_append_str(b, "\",\"winner\":") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (fu->winner >= 0) {
        a = fu->members[fu->winner].answered_by;

        if (ngx_ai_buf_append_json_string(b, a->model.data, a->model.len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(b, "null") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(b, ",\"rounds\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, fu->round) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"members\":[") != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0, first = 1; i < ctx->calls.nelts; i++) {
        if (calls[i]->member < 0) {
            continue;
        }

        if ((!first && ngx_ai_buf_append_str(b, ",") != NGX_OK)
            || ngx_http_ai_fusion_call_json(b, calls[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }

        first = 0;
    }

    if (ngx_ai_buf_append_str(b, "],\"judges\":[") != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0, first = 1; i < ctx->calls.nelts; i++) {
        if (calls[i]->member >= 0) {
            continue;
        }

        if ((!first && ngx_ai_buf_append_str(b, ",") != NGX_OK)
            || ngx_http_ai_fusion_call_json(b, calls[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }

        first = 0;
    }

    return ngx_ai_buf_append_str(b, "]}");
}


static ngx_int_t
ngx_http_ai_fusion_call_json(ngx_ai_buf_t *b, ngx_http_ai_attempt_t *a)
{
    u_char       usd[32], *p;
    const char  *status;

    switch (a->outcome) {

    case NGX_HTTP_AI_OK:
        status = "ok";
        break;

    case NGX_HTTP_AI_ABORTED:
        status = "aborted";
        break;

    case NGX_HTTP_AI_TIMEOUT:
        status = "timeout";
        break;

    case NGX_HTTP_AI_RUNNING:
        status = "running";
        break;

    default:
        status = "failed";
    }

    p = ngx_sprintf(usd, "%uL.%09uL", a->cost / 1000000000,
                    a->cost % 1000000000);

    if (ngx_ai_buf_append_str(b, "{\"model\":") != NGX_OK
        || ngx_ai_buf_append_json_string(b, a->model.data, a->model.len)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"status\":\"") != NGX_OK
        || ngx_ai_buf_append_str(b, status) != NGX_OK
        || ngx_ai_buf_append_str(b, "\",\"round\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, a->round) != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"latency_ms\":") != NGX_OK
        || ngx_ai_buf_append_uint(b, (a->end >= a->start)
                                     ? a->end - a->start : 0)
           != NGX_OK
        || ngx_ai_buf_append_str(b, ",\"usage\":") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (a->usage.known && !a->aborted) {
        if (ngx_ai_buf_append_usage(b, &a->usage) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_ai_buf_append_str(b, "null") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_ai_buf_append_str(b, ",\"cost\":") != NGX_OK
        || ngx_ai_buf_append(b, usd, p - usd) != NGX_OK
        || ngx_ai_buf_append_str(b, a->aborted ? ",\"estimated\":true"
                                               : "")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (a->outcome != NGX_HTTP_AI_OK && a->reason.len) {
        if (ngx_ai_buf_append_str(b, ",\"error\":") != NGX_OK
            || ngx_ai_buf_append_json_string(b, a->reason.data,
                                             a->reason.len)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_ai_buf_append_str(b, "}");
}


/* headers: X-AI-Fusion "<mode>; answered=K/N", X-AI-Model fusion/<mode> */

static ngx_int_t
ngx_http_ai_fusion_header(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    u_char                *p;
    ngx_str_t              empty;
    ngx_uint_t             i, answered;
    ngx_table_elt_t       *h;
    ngx_http_ai_fusion_t  *fu;

    fu = ctx->fusion;

    answered = 0;

    for (i = 0; i < fu->n; i++) {
        if (fu->members[i].answered_by) {
            answered++;
        }
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, 64);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-AI-Fusion");
    h->value.data = p;

    if (ctx->chat.stream) {
        h->value.len = ngx_sprintf(p, "%V; members=%ui",
                                   &ngx_http_ai_fusion_modes[fu->conf->mode],
                                   fu->n)
                       - p;

    } else {
        h->value.len = ngx_sprintf(p, "%V; answered=%ui/%ui",
                                   &ngx_http_ai_fusion_modes[fu->conf->mode],
                                   answered, fu->n)
                       - p;
    }

    ctx->model = fu->conf->name;

    if (!ctx->chat.stream) {
        return NGX_OK;
    }

    ngx_str_null(&empty);

    if (ngx_http_ai_stream_send(ctx, &empty, 0) == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* what fu->out holds, to the client */

static ngx_int_t
ngx_http_ai_fusion_send(ngx_http_ai_ctx_t *ctx, ngx_uint_t last)
{
    ngx_int_t              rc;
    ngx_str_t              out;
    ngx_http_ai_fusion_t  *fu;

    fu = ctx->fusion;

    out.data = fu->out.out.data;
    out.len = fu->out.out.len;

    rc = ngx_http_ai_stream_send(ctx, &out, last);

    fu->out.out.len = 0;

    return rc;
}


/*
 * The streamed judge's output, already OpenAI chunks of the judge's
 * model, re-chunked as the fusion's: content deltas only, under one id
 * and model "fusion/<mode>".
 */

static ngx_int_t
ngx_http_ai_fusion_relay(ngx_http_ai_ctx_t *ctx, ngx_http_ai_attempt_t *a)
{
    u_char                *p, *last, *end;
    cJSON                 *root, *choice, *delta, *content, *finish;
    ngx_http_ai_fusion_t  *fu;

    fu = ctx->fusion;

    if (a != fu->judge || ctx->finished) {
        a->stream.out.len = 0;
        return NGX_OK;
    }

    p = a->stream.out.data;
    last = p + a->stream.out.len;

    while (p < last) {
        end = ngx_strlcasestrn(p, last, (u_char *) "\n\n", 2 - 1);
        if (end == NULL) {
            end = last;
        }

        if (end - p > 6 && ngx_strncmp(p, "data: ", 6) == 0) {
            root = cJSON_ParseWithLength((char *) p + 6, end - p - 6);

            choice = cJSON_GetArrayItem(
                         cJSON_GetObjectItemCaseSensitive(root, "choices"),
                         0);
            delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
            content = cJSON_GetObjectItemCaseSensitive(delta, "content");
            finish = cJSON_GetObjectItemCaseSensitive(choice,
                                                      "finish_reason");

            if (cJSON_IsString(content) && content->valuestring[0]) {
                fu->relayed = 1;

                if (ngx_ai_stream_content(&fu->out,
                                          (u_char *) content->valuestring,
                                          ngx_strlen(content->valuestring))
                    != NGX_OK)
                {
                    cJSON_Delete(root);
                    return NGX_ERROR;
                }
            }

            if (cJSON_IsString(finish) && fu->finish.len == 0) {
                fu->finish.len = ngx_strlen(finish->valuestring);
                fu->finish.data = ngx_pnalloc(a->sr->pool,
                                              fu->finish.len + 1);
                if (fu->finish.data == NULL) {
                    cJSON_Delete(root);
                    return NGX_ERROR;
                }

                ngx_cpystrn(fu->finish.data, (u_char *) finish->valuestring,
                            fu->finish.len + 1);
            }

            cJSON_Delete(root);
        }

        p = end + 2;
    }

    a->stream.out.len = 0;

    if (fu->out.out.len == 0) {
        return NGX_OK;
    }

    if (fu->keepalive.timer_set) {
        ngx_del_timer(&fu->keepalive);
    }

    return ngx_http_ai_fusion_send(ctx, 0);
}


static void
ngx_http_ai_fusion_grace_handler(ngx_event_t *ev)
{
    ngx_connection_t      *c;
    ngx_http_request_t    *r;
    ngx_http_ai_ctx_t     *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "ai fusion: %s reached, going on",
                   ev == &ctx->fusion->grace ? "grace" : "deadline");

    ctx->fusion->cut = 1;

    ngx_http_ai_fusion_run(r, ctx);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_ai_fusion_keepalive_handler(ngx_event_t *ev)
{
    ngx_str_t              ping;
    ngx_connection_t      *c;
    ngx_http_request_t    *r;
    ngx_http_ai_ctx_t     *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    if (ctx->finished || ctx->fusion->relayed) {
        return;
    }

    ngx_str_set(&ping, ": keep-alive\n\n");

    if (ngx_http_ai_stream_send(ctx, &ping, 0) == NGX_ERROR) {
        ngx_http_ai_finalize(r, ctx, NGX_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_AI_KEEPALIVE_MS);
}


static void
ngx_http_ai_fusion_cleanup(ngx_http_ai_ctx_t *ctx)
{
    ngx_http_ai_fusion_t  *fu = ctx->fusion;

    if (fu == NULL) {
        return;
    }

    if (fu->grace.timer_set) {
        ngx_del_timer(&fu->grace);
    }

    if (fu->deadline.timer_set) {
        ngx_del_timer(&fu->deadline);
    }

    if (fu->keepalive.timer_set) {
        ngx_del_timer(&fu->keepalive);
    }
}


/* for the metrics and $ai_fusion_mode: the pool, its mode, how it ended */

void
ngx_http_ai_fusion_outcome(ngx_http_ai_ctx_t *ctx, ngx_str_t *name,
    ngx_str_t *mode, ngx_str_t *judge_status)
{
    ngx_http_ai_fusion_t  *fu = ctx->fusion;

    *name = fu->conf->name;
    *mode = ngx_http_ai_fusion_modes[fu->conf->mode];

    judge_status->data = (u_char *) (fu->judge_status ? fu->judge_status
                                                      : "none");
    judge_status->len = ngx_strlen(judge_status->data);
}
