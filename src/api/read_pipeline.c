/*
 * api/read_pipeline.c — a ranked read's states, from its board to its bytes (the diagram is in
 * read_pipeline.h). advance() runs the states that need no waiting, on the event loop; a state
 * that must wait (the board from PostgreSQL, another request's answer, the store) suspends the
 * connection, and the state machine goes on where it stopped when the connection resumes.
 */
#include "api/read_pipeline.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cache/l1.h"
#include "cache/rank_tier.h"
#include "core/ids.h"
#include "core/window.h"
#include "obs/metrics.h"
#include "store/league.h"
#include "store/pg_router.h"
#include "store/redis_board.h"
#include "store/redis_pipe.h"
#include "util/alloc.h"
#include "worker/offload.h"
#include "worker/turns.h"

typedef enum {
    RP_BOARD,  /* the board: from the board cache, else from PostgreSQL off the event loop */
    RP_BIND,   /* the handler's checks that need the board, and the window */
    RP_CACHE,  /* the response cache: a hit answers */
    RP_PARKED, /* another request computes the same answer: waiting for it to settle */
    RP_STORE,  /* Redis or PostgreSQL */
    RP_RENDER, /* the handler renders what was read; a 200 goes into the cache */
    RP_MISSING, /* nothing was found: the handler's missing() answers, off the event loop */
} rp_state_t;

/* The read's hold on its cache key. */
typedef enum {
    KEY_UNCACHED, /* no cache, consistency=strong, or the entry went: computed, not kept */
    KEY_CLAIMED,  /* ours to compute, then insert or abandon */
    KEY_BUSY,     /* another request computes it */
} key_hold_t;

/* How STORE reads when it does not read in place. */
typedef enum { VIA_PIPE, VIA_OFFLOAD } store_via_t;

/* Where a read through the pipe stands: one script, or an around read's two steps (its rank,
 * then its range: store/redis_board.h). */
typedef enum { STEP_ONE = 0, STEP_RANK, STEP_RANGE } pipe_step_t;

/* advance()'s answer when a state waits: not a status. */
#define RP_WAITS 0

typedef struct read_op {
    http_pending_t base;
    rp_state_t state;
    app_t *app;
    http_req_t *req;          /* the connection's: valid while it is suspended */
    char board_id[ROUTE_SEGMENT_MAX];
    read_request_t rq;        /* rq.parsed: an owned copy */
    board_t board;            /* owned once RP_BOARD found it */
    int board_status;         /* RP_BOARD off the loop: api_find_board's answer */
    buf_t key;                /* the cache key */
    key_hold_t hold;
    uint64_t epoch;           /* the window's epoch when the claim was made (l1_insert compares) */
    store_via_t via;
    offload_job_t job;        /* RP_BOARD, or STORE's PostgreSQL read, off the event loop */
    rb_read_t rd;
    redis_call_t call;
    pipe_step_t step;
    int64_t around_rank;      /* STEP_RANGE: the player's rank (0-based) the first step found */
    void (*wake)(void *arg);
    void *wake_arg;
    /* STORE's result: from Redis, or from PostgreSQL with its status. */
    entries_t got;
    bool from_redis;
    q_status_t pg_status;
    bool behind;              /* read from a replica possibly behind: answered, never cached */
    int failed;               /* STORE's error status, written into req; 0: none */
    int missing_status;       /* RP_MISSING off the loop: missing()'s answer, written into req */
} read_op_t;

/* ---------------------------------------------------------------- the store */

/* A rank style's count from PostgreSQL, in the read's snapshot (core/rank_style.h). */
typedef struct {
    PGconn *c;
    const board_t *b;
    const read_t *r;
    q_status_t st;
} pg_before_t;

static bool before_in_pg(void *arg, rank_style_t style, int64_t sk, int64_t *out)
{
    pg_before_t *a = arg;
    a->st = q_rank_before(a->c, a->b, a->r->day, a->r->closed, style == RANK_DENSE, sk, out);
    return a->st == Q_OK;
}

/* Read r as one script (an around read too), its ranks in r's style. */
static void prepare_redis(rb_read_t *rd, const board_t *b, const read_t *r)
{
    switch (r->kind) {
    case READ_PAGE: rb_prepare_page(rd, b, r->day, r->offset, r->limit); break;
    case READ_CURSOR: rb_prepare_cursor(rd, b, r->day, &r->pos, r->backward, r->limit); break;
    case READ_PLAYERS: rb_prepare_players(rd, b, r->day, r->ids, r->n_ids); break;
    case READ_AROUND: rb_prepare_around(rd, b, r->day, r->player, r->before, r->after); break;
    case READ_SCORE: rb_prepare_score(rd, b, r->day, order_sort_key(b->sort, r->score)); break;
    }
    rb_prepare_style(rd, r->style);
}

static rb_status_t read_redis(redis_conn_t *rc, const board_t *b, const read_t *r, entries_t *out)
{
    rb_read_t rd = {0};
    prepare_redis(&rd, b, r);
    return rb_read_run(rc, &rd, b, out);
}

/* A closed window from its archive; `*archived` false when it has none yet. */
static q_status_t read_archive(PGconn *c, const board_t *b, const read_t *r, entries_t *out, bool *archived)
{
    static const q_archive_kind_t kinds[] = {[READ_PAGE] = QA_PAGE, [READ_CURSOR] = QA_CURSOR,
                                             [READ_PLAYERS] = QA_PLAYERS, [READ_AROUND] = QA_AROUND,
                                             [READ_SCORE] = QA_SCORE};
    q_archive_read_t rd = {kinds[r->kind], r->limit, r->offset, &r->pos, r->backward, r->ids, r->n_ids,
                           r->player, r->before, r->after, order_sort_key(b->sort, r->score)};
    return q_archive_read(c, b, r->day, &rd, out, archived);
}

/* Offset pages shallower than a few rank buckets read from the window's start (q_page_offset). */
static int64_t page_top_below(const rankd_config_t *cfg)
{
    return 4 * (int64_t)cfg->rank_bucket_rows;
}

static q_status_t read_pg(PGconn *c, const board_t *b, const read_t *r, int64_t top_below, entries_t *out)
{
    if (r->closed) {
        bool archived = false;
        q_status_t st = read_archive(c, b, r, out, &archived);
        if (st != Q_OK || archived)
            return st;
    }
    switch (r->kind) {
    case READ_PAGE: return q_page_offset(c, b, r->day, r->limit, r->offset, top_below, out);
    case READ_CURSOR: return q_page_cursor(c, b, r->day, &r->pos, r->backward, r->limit, out);
    case READ_PLAYERS: return q_players(c, b, r->day, r->ids, r->n_ids, out);
    case READ_AROUND: {
        q_status_t st = q_around(c, b, r->day, r->player, r->before, r->after, out);
        return st == Q_NOT_FOUND ? Q_OK : st;
    }
    case READ_SCORE: return q_score(c, b, r->day, order_sort_key(b->sort, r->score), out);
    }
    return Q_ERROR;
}

/* read_pg in another rank style: the read and its counts from one snapshot. */
static q_status_t read_pg_styled(PGconn *c, const board_t *b, const read_t *r, int64_t top_below, entries_t *out)
{
    if (r->style == RANK_ORDINAL && !r->league)
        return read_pg(c, b, r, top_below, out);
    q_status_t st = q_snapshot_begin(c);
    if (st != Q_OK)
        return st;
    st = read_pg(c, b, r, top_below, out);
    /* A league standing's cohort rank counts the cohort in the same snapshot. */
    for (size_t i = 0; st == Q_OK && r->league && i < out->n; i++)
        st = q_league_standing(c, b, r->day, r->style, &out->items[i]);
    if (st == Q_OK && r->style == RANK_ORDINAL) {
        /* nothing to restyle */
    } else if (st == Q_OK && r->kind == READ_SCORE) {
        st = q_rank_before(c, b, r->day, r->closed, r->style == RANK_DENSE, order_sort_key(b->sort, r->score),
                           &out->at_or_before);
    } else if (st == Q_OK) {
        pg_before_t a = {c, b, r, Q_OK};
        if (!rank_restyle(out, r->style, r->kind != READ_PLAYERS, before_in_pg, &a))
            st = a.st;
    }
    q_status_t end = q_snapshot_end(c, st == Q_OK);
    return st == Q_OK ? end : st;
}

typedef struct {
    const board_t *b;
    const read_t *r;
    int64_t top_below;
    entries_t *out;
} pg_read_args_t;

static q_status_t pg_read_on(PGconn *c, void *arg)
{
    pg_read_args_t *a = arg;
    entries_clear(a->out); /* a retry starts afresh */
    entries_init(a->out);
    return read_pg_styled(c, a->b, a->r, a->top_below, a->out);
}

/*
 * A read on a node the router picks (a caught-up replica, or the primary), into `out` (an
 * initialized entries_t, emptied first); `out` is left empty unless Q_OK. `*behind`: it came from a replica that may lack this instance's last
 * write of the board (the primary being down), so it must not be cached.
 */
static q_status_t pg_read(app_t *app, const board_t *b, const read_t *r, entries_t *out, bool *behind)
{
    entries_clear(out); /* what a failed Redis read may have left */
    entries_init(out);
    pg_read_args_t a = {b, r, page_top_below(app->cfg), out};
    *behind = false;
    q_status_t st = pg_router_read_run(app->router, b->gen, r->strong, pg_read_on, &a, behind);
    metrics_add(app->metrics, METRIC_PG_READS, 1);
    if (st != Q_OK)
        entries_clear(out);
    return st;
}

/* 0, or the error a failed PostgreSQL read answers (written into req). */
static int pg_read_error(http_req_t *req, q_status_t st)
{
    if (st == Q_OK)
        return 0;
    return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
}

/* Whether Redis answers read r. It holds the current and the previous window; an older one is
 * read from PostgreSQL, never loaded into Redis (it would stay there for good). A closed window
 * is read from its archive once that is written (after the grace): its ranks are final, and it
 * knows when the window last changed (Last-Modified). Until then Redis answers the previous
 * window, as before the reset. */
static bool redis_answers(app_t *app, const http_req_t *req, const board_t *b, const read_t *r, unsigned long *epoch)
{
    bool archived = r->closed && req->received_ms >= window_next_day(board_window_rule(b), r->day) * MS_PER_DAY +
                                                         window_archive_grace_ms(app->cfg->pg_statement_timeout_ms);
    if (req->strong || archived || r->league || !window_is_hot(board_window_rule(b), r->day, req->received_ms) ||
        !redis_trusted(app->redis))
        return false; /* also without Redis; a league standing's cohort is PostgreSQL's */
    if (redis_window_trusted(app->redis, b->gen, r->day, epoch))
        return true;
    /* Not checked since this instance started or Redis's last outage: PostgreSQL answers until
     * the rebuilder has compared the window's marks (and rebuilt it if Redis missed a write).
     * The check needs the primary: without it, Redis answers as it is (a ready window). */
    rebuilder_request(app->rebuilder, b, r->day);
    return !pg_router_primary_usable(app->router);
}

/* Whether the rank tier answered read r into out: a window Redis would answer (the current or
 * the previous one, not yet archived), held by the tier with every write this instance made
 * to it applied. No I/O: it runs on the event loop. */
static bool tier_answers(app_t *app, const http_req_t *req, const board_t *b, const read_t *r, entries_t *out)
{
    if (!app->tier || (req->strong && !req->tier_first) || r->league ||
        !window_is_hot(board_window_rule(b), r->day, req->received_ms))
        return false; /* a cohort is PostgreSQL's */
    if (r->closed && req->received_ms >= window_next_day(board_window_rule(b), r->day) * MS_PER_DAY +
                                              window_archive_grace_ms(app->cfg->pg_statement_timeout_ms))
        return false; /* archived: its ranks are final there, and it knows when it last changed */
    bool ok = false;
    const tier_read_t how = {req->received_ms, r->style};
    switch (r->kind) {
    case READ_PAGE: ok = rank_tier_page(app->tier, b, r->day, r->offset, r->limit, &how, out); break;
    case READ_CURSOR: ok = rank_tier_cursor(app->tier, b, r->day, &r->pos, r->backward, r->limit, &how, out); break;
    case READ_PLAYERS: ok = rank_tier_players(app->tier, b, r->day, r->ids, r->n_ids, &how, out); break;
    case READ_AROUND: ok = rank_tier_around(app->tier, b, r->day, r->player, r->before, r->after, &how, out); break;
    case READ_SCORE: ok = rank_tier_score(app->tier, b, r->day, order_sort_key(b->sort, r->score), &how, out); break;
    }
    if (ok)
        metrics_add(app->metrics, METRIC_TIER_READS, 1);
    else
        entries_clear(out); /* what a read that could not finish left */
    return ok;
}

/* STORE in place (a /v1/batch item, or no thread to wait on), after the rank tier declined:
 * op->got, or op->failed. */
static void store_in_place(read_op_t *op, http_req_t *req)
{
    app_t *app = op->app;
    if (redis_answers(app, req, &op->board, &op->rq.read, NULL)) {
        redis_conn_t *rc = redis_acquire(app->redis);
        if (rc) {
            rb_status_t st = read_redis(rc, &op->board, &op->rq.read, &op->got);
            redis_release(app->redis, rc, st == RB_DOWN);
            if (st == RB_OK) {
                metrics_add(app->metrics, METRIC_REDIS_READS, 1);
                return;
            }
            if (st == RB_COLD) {
                metrics_add(app->metrics, METRIC_REDIS_COLD, 1);
                rebuilder_request(app->rebuilder, &op->board, op->rq.read.day);
            }
            entries_clear(&op->got);
            entries_init(&op->got);
        }
    }
    op->failed = pg_read_error(req, pg_read(app, &op->board, &op->rq.read, &op->got, &op->behind));
}

/* On an offload thread: read PostgreSQL, then wake the request. */
static void store_pg_job(offload_job_t *job)
{
    read_op_t *op = WORKQ_OWNER(job, read_op_t, job);
    op->from_redis = false;
    op->pg_status = pg_read(op->app, &op->board, &op->rq.read, &op->got, &op->behind);
    op->wake(op->wake_arg); /* last: the request may be finished and freed at once */
}

/* Read PostgreSQL off the event loop; without offload threads (they failed to start) right
 * here, on the thread that calls (the Redis pipe's, then). */
static void store_pg_later(read_op_t *op)
{
    op->job.run = store_pg_job;
    if (op->app->offload)
        offload_submit(op->app->offload, &op->job);
    else
        store_pg_job(&op->job);
}

static turns_key_t window_key(const read_op_t *op)
{
    return (turns_key_t){op->board.gen, op->rq.read.day};
}

/* On an offload thread, the window's turn held: the window may have been loaded while this
 * read waited, so Redis is asked again; PostgreSQL answers only if it is still cold. */
static void store_cold_job(offload_job_t *job)
{
    read_op_t *op = WORKQ_OWNER(job, read_op_t, job);
    turns_key_t key = window_key(op);
    redis_pool_t *pool = op->app->redis;
    redis_conn_t *rc = redis_window_trusted(pool, op->board.gen, op->rq.read.day, NULL) ||
                               (redis_trusted(pool) && !pg_router_primary_usable(op->app->router))
                           ? redis_acquire(pool)
                           : NULL;
    rb_status_t st = RB_DOWN;
    if (rc) {
        st = rb_read_run(rc, &op->rd, &op->board, &op->got);
        redis_release(pool, rc, st == RB_DOWN);
    }
    op->from_redis = st == RB_OK;
    if (!op->from_redis)
        op->pg_status = pg_read(op->app, &op->board, &op->rq.read, &op->got, &op->behind);
    turns_end(op->app->cold_turns, key);
    op->wake(op->wake_arg); /* last: the request may be finished and freed at once */
}

static void store_call_done(redis_call_t *call);

/* Hand op->rd to the pipe; store_call_done takes the reply. */
static void submit_call(read_op_t *op)
{
    op->call.argc = op->rd.argc;
    op->call.argv = op->rd.argv;
    op->call.argvlen = op->rd.argvlen;
    op->call.merge = op->rd.merge;
    op->call.done = store_call_done;
    op->call.arg = op;
    redis_pipe_submit(op->app->pipe, &op->call);
}

/* An around read's step that came back (on the pipe's thread): true when it went on (the next
 * step, or the one-script read, submitted); else *st says how it ended. */
static bool around_step_done(read_op_t *op, const redis_call_t *call, rb_status_t *st)
{
    const read_t *r = &op->rq.read;
    if (op->step == STEP_RANK) {
        int64_t rank, total;
        *st = rb_around_rank_parse(call->reply, &rank, &total);
        if (*st == RB_OK && rank < 0) {
            op->got.total = total; /* no standing: an empty answer, as script_around's */
            return false;
        }
        if (*st == RB_OK) {
            op->step = STEP_RANGE;
            op->around_rank = rank;
            rb_prepare_around_range(&op->rd, rank, r->before, r->after);
            submit_call(op);
            return true;
        }
    } else {
        *st = rb_around_range_parse(call->reply, call->merged_at, r->player, op->around_rank, r->before, &op->board,
                                    &op->got);
        if (*st == RB_OK)
            return false;
    }
    /* Whatever else happens next (the one script after a move between the steps; the cold
     * window's turn, PostgreSQL) reads op->rd as the one-script read. */
    op->step = STEP_ONE;
    prepare_redis(&op->rd, &op->board, r);
    if (*st != RB_AGAIN)
        return false;
    submit_call(op);
    return true;
}

/* On the Redis pipe thread: parse the reply; a cold window waits its turn behind the window's
 * load, or PostgreSQL answers, never on the event loop. */
static void store_call_done(redis_call_t *call)
{
    read_op_t *op = call->arg;
    rb_status_t st;
    if (op->step != STEP_ONE) {
        if (around_step_done(op, call, &st))
            return;
    } else {
        st = rb_read_parse(&op->rd, op->call.reply, &op->board, &op->got);
    }
    if (st == RB_OK) {
        op->from_redis = true;
        op->wake(op->wake_arg);
        return;
    }
    if (st == RB_COLD) {
        metrics_add(op->app->metrics, METRIC_REDIS_COLD, 1);
        rebuilder_request(op->app->rebuilder, &op->board, op->rq.read.day);
        if (op->app->cold_turns) {
            op->job.run = store_cold_job;
            turns_status_t ts = turns_submit(op->app->cold_turns, window_key(op), &op->job);
            if (ts == TURNS_WAITING)
                metrics_add(op->app->metrics, METRIC_COLD_WAITS, 1);
            if (ts != TURNS_FULL)
                return;
        }
    }
    store_pg_later(op);
}

/* ---------------------------------------------------------------- the response cache */

/* The key: route | board generation | window | the parameters bind() wrote. */
static void key_begin(read_op_t *op)
{
    buf_reset(&op->key);
    buf_i64(&op->key, (int64_t)op->rq.route);
    buf_putc(&op->key, '|');
    buf_i64(&op->key, op->board.gen);
    buf_putc(&op->key, '|');
    buf_i64(&op->key, op->rq.read.day);
    buf_putc(&op->key, '|');
}

/* Look the key up: true when the cache answered (req holds the entry); else op->hold says
 * whether the answer is ours to compute. */
static bool cache_lookup(read_op_t *op, http_req_t *req)
{
    l1_t *l1 = op->app->l1;
    l1_miss_t miss = L1_MISS_UNCACHED;
    l1_entry_t *e = l1_get(l1, op->key.data, op->key.len, &miss);
    if (e) {
        req->cached = e;
        req->cacheable = true;
        http_ok(req, 200);
        return true;
    }
    op->hold = miss == L1_MISS_CLAIMED ? KEY_CLAIMED : miss == L1_MISS_BUSY ? KEY_BUSY : KEY_UNCACHED;
    if (op->hold == KEY_CLAIMED)
        op->epoch = l1_window_epoch(l1, op->board.gen, op->rq.read.day);
    return false;
}

/* Keep the answer just rendered into req->out (status 200) for the entries it shows. */
static void cache_insert(read_op_t *op, http_req_t *req, const entries_t *e)
{
    const read_t *r = &op->rq.read;
    l1_scope_t scope = {.gen = op->board.gen, .day = r->day, .total = e->total, .has_span = e->n > 0};
    if (e->n > 0) {
        const entry_t *f = &e->items[0], *l = &e->items[e->n - 1];
        order_pos_set(&scope.first, f->sort_key, f->achieved_ms, f->player, f->player_len);
        order_pos_set(&scope.last, l->sort_key, l->achieved_ms, l->player, l->player_len);
    }
    if (r->kind == READ_SCORE) {
        /* A score's rank counts every standing up to it: a write that moves one into or out of
         * that span, or changes the total, changes the answer. */
        order_pos_set(&scope.first, INT64_MIN, INT64_MIN, "", 0);
        order_pos_set(&scope.last, order_sort_key(op->board.sort, r->score), INT64_MAX, "", 0);
        scope.has_span = true;
    }
    if (r->kind == READ_CURSOR) {
        /* A cursor page shows what follows (or precedes) the cursor: a standing moving into the
         * gap between the cursor and the page changes it too. */
        if (!scope.has_span) {
            order_pos_set(&scope.first, INT64_MIN, INT64_MIN, "", 0);
            order_pos_set(&scope.last, INT64_MAX, INT64_MAX, "", 0);
        }
        if (r->backward)
            scope.last = r->pos;
        else
            scope.first = r->pos;
        scope.has_span = true;
    }
    if (r->style != RANK_ORDINAL && scope.has_span) {
        /* A style's ranks count what lies before the answer: the standings tied with its first
         * entry (competition), every standing before it (dense, and named players in any style). */
        if (r->style == RANK_COMPETITION && r->kind != READ_PLAYERS)
            order_pos_set(&scope.first, scope.first.sort_key, INT64_MIN, "", 0);
        else
            order_pos_set(&scope.first, INT64_MIN, INT64_MIN, "", 0);
    }
    req->cached = l1_insert(op->app->l1, op->key.data, op->key.len, &scope, op->epoch, req->out.data, req->out.len,
                            req->last_modified_ms);
    buf_reset(&req->out);
    op->hold = KEY_UNCACHED;
}

/* A claim not inserted is given up: the requests parked on it would wait forever. */
static void cache_abandon(read_op_t *op)
{
    if (op->hold == KEY_CLAIMED)
        l1_abandon(op->app->l1, op->key.data, op->key.len);
    op->hold = KEY_UNCACHED;
}

/* ---------------------------------------------------------------- the states */

/* RP_BOARD off the event loop: the board from PostgreSQL. */
static void board_job(offload_job_t *job)
{
    read_op_t *op = WORKQ_OWNER(job, read_op_t, job);
    op->board_status = api_find_board(op->app, op->board_id, true, op->req, &op->board);
    op->wake(op->wake_arg); /* last: the request may be finished and freed at once */
}

/* RP_MISSING off the event loop: the handler's answer for a read that found nothing. */
static void missing_job(offload_job_t *job)
{
    read_op_t *op = WORKQ_OWNER(job, read_op_t, job);
    op->missing_status = op->rq.missing(op->app, op->req, &op->board, &op->rq.read);
    op->wake(op->wake_arg); /* last: the request may be finished and freed at once */
}

/* Run the states from op->state until one waits (RP_WAITS: op->state says on what) or the read
 * is answered (its status). */
static int advance(read_op_t *op, http_req_t *req)
{
    app_t *app = op->app;
    for (;;) {
        switch (op->state) {
        case RP_BOARD: {
            int rc = api_find_board(app, op->board_id, !api_on_loop(app, req), req, &op->board);
            if (rc == HTTP_OFF_LOOP)
                return RP_WAITS;
            if (rc)
                return rc;
            op->state = RP_BIND;
            break;
        }
        case RP_BIND: {
            buf_t params;
            buf_init(&params);
            int rc = op->rq.bind(app, req, &op->board, &op->rq, &params);
            if (rc) {
                buf_free(&params);
                return rc;
            }
            op->rq.read.strong = req->strong;
            op->rq.read.closed = op->rq.read.day < window_start_day(board_window_rule(&op->board), req->received_ms);
            key_begin(op);
            buf_append(&op->key, params.data, params.len);
            buf_free(&params);
            if (op->rq.read.style != RANK_ORDINAL) {
                buf_puts(&op->key, "|style=");
                buf_puts(&op->key, rank_style_name(op->rq.read.style));
            }
            op->state = app->l1 && !req->strong ? RP_CACHE : RP_STORE;
            break;
        }
        case RP_CACHE:
        case RP_PARKED:
            if (op->state == RP_CACHE && req->warm)
                l1_expect(app->l1, op->key.data, op->key.len);
            if (cache_lookup(op, req))
                return 200;
            if (op->hold == KEY_BUSY && !req->inline_only) {
                op->state = RP_PARKED;
                return RP_WAITS;
            }
            op->state = RP_STORE; /* a /v1/batch item computes it rather than wait */
            break;
        case RP_STORE: {
            if (tier_answers(app, req, &op->board, &op->rq.read, &op->got)) {
                req->tier_answered = true;
                op->state = RP_RENDER;
                break;
            }
            if (!req->inline_only) {
                unsigned long epoch = 0;
                bool use_redis = redis_answers(app, req, &op->board, &op->rq.read, &epoch);
                if (app->pipe && use_redis) {
                    const read_t *r = &op->rq.read;
                    if (r->kind == READ_AROUND && r->style == RANK_ORDINAL) {
                        /* In two steps; a styled one counts in the script that reads its range. */
                        rb_prepare_around_rank(&op->rd, &op->board, r->day, r->player, r->before, r->after);
                        op->step = STEP_RANK;
                    } else {
                        prepare_redis(&op->rd, &op->board, r);
                    }
                    op->call.epoch = epoch; /* the pipe sends it only if no outage began since */
                    op->via = VIA_PIPE;
                    return RP_WAITS;
                }
                if (app->offload && !use_redis) {
                    op->via = VIA_OFFLOAD;
                    return RP_WAITS;
                }
            }
            store_in_place(op, req);
            op->state = RP_RENDER;
            break;
        }
        case RP_RENDER: {
            int rc = op->failed;
            if (!rc && op->got.n == 0 && op->rq.missing) {
                cache_abandon(op); /* the missing answer is the asker's own: never cached */
                if (req->inline_only || req->off_loop || !app->offload)
                    return op->rq.missing(app, req, &op->board, &op->rq.read);
                op->state = RP_MISSING;
                return RP_WAITS;
            }
            if (!rc) {
                rc = op->rq.render(app, req, &op->board, &op->rq.read, &op->got);
                if (rc == 200 && op->got.modified_ms > 0) /* a closed window, from its archive */
                    req->last_modified_ms = op->got.modified_ms;
                if (rc == 200 && !op->behind && op->hold == KEY_CLAIMED)
                    cache_insert(op, req, &op->got);
                if (op->behind)
                    req->cacheable = false; /* nor in any cache downstream */
            }
            if (rc != 200)
                cache_abandon(op);
            return rc;
        }
        case RP_MISSING:
            return op->missing_status;
        }
    }
}

/* Start what op->state waits on; wake() is called once it is done. */
static void rp_start(http_pending_t *p, void (*wake)(void *), void *wake_arg)
{
    read_op_t *op = (read_op_t *)p;
    op->wake = wake;
    op->wake_arg = wake_arg;
    switch (op->state) {
    case RP_BOARD:
        op->job.run = board_job;
        offload_submit(op->app->offload, &op->job);
        return;
    case RP_PARKED:
        if (!l1_wait(op->app->l1, op->key.data, op->key.len, wake, wake_arg))
            wake(wake_arg);
        return;
    case RP_STORE:
        if (op->via == VIA_OFFLOAD) {
            store_pg_later(op);
            return;
        }
        submit_call(op);
        return;
    case RP_MISSING:
        op->job.run = missing_job;
        offload_submit(op->app->offload, &op->job);
        return;
    case RP_BIND:
    case RP_CACHE:
    case RP_RENDER:
        break; /* they never wait */
    }
    wake(wake_arg);
}

/* Back on the event loop: take what the wait brought, and go on. */
static int rp_finish(http_pending_t *p, http_req_t *req)
{
    read_op_t *op = (read_op_t *)p;
    switch (op->state) {
    case RP_BOARD:
        if (op->board_status)
            return op->board_status; /* written into req off the loop */
        op->state = RP_BIND;
        break;
    case RP_STORE:
        if (op->from_redis)
            metrics_add(op->app->metrics, METRIC_REDIS_READS, 1);
        op->failed = op->from_redis ? 0 : pg_read_error(req, op->pg_status);
        op->state = RP_RENDER;
        break;
    case RP_PARKED: /* settled: most likely cached now */
    case RP_BIND:
    case RP_CACHE:
    case RP_RENDER:
    case RP_MISSING: /* answered: advance() returns its status */
        break;
    }
    int rc = advance(op, req);
    return rc == RP_WAITS ? HTTP_PENDING_AGAIN : rc;
}

static void read_op_free(read_op_t *op)
{
    cache_abandon(op);
    rb_read_clear(&op->rd);
    entries_clear(&op->got);
    board_clear(&op->board);
    buf_free(&op->key);
    free(op->rq.read.ids_text);
    free(op->rq.parsed);
    free(op);
}

static void rp_release(http_pending_t *p)
{
    read_op_free((read_op_t *)p);
}

int read_pipeline_run(app_t *app, const route_t *rt, http_req_t *req, read_request_t *rq)
{
    if (rt->board_bad || !id_board_valid(rt->board, rt->board_len)) {
        free(rq->read.ids_text);
        return http_error(req, 400, "invalid_argument", "board", ID_BOARD_RULE);
    }
    read_op_t *op = xcalloc(1, sizeof *op);
    op->base = (http_pending_t){.start = rp_start, .finish = rp_finish, .release = rp_release};
    op->state = RP_BOARD;
    op->app = app;
    op->req = req;
    memcpy(op->board_id, rt->board, rt->board_len); /* valid: shorter than ROUTE_SEGMENT_MAX */
    op->rq = *rq;
    op->rq.parsed = NULL; /* op's own copy, or none */
    if (rq->parsed && rq->parsed_len > 0) {
        op->rq.parsed = xmalloc(rq->parsed_len);
        memcpy(op->rq.parsed, rq->parsed, rq->parsed_len);
    }
    /* The ids point into the request's own copies: make them point into op's. */
    for (size_t i = 0; i < op->rq.read.n_ids; i++) {
        const char *id = rq->read.ids[i];
        if (id >= rq->read.player && id < rq->read.player + sizeof rq->read.player)
            op->rq.read.ids[i] = op->rq.read.player + (id - rq->read.player);
    }
    buf_init(&op->key);
    entries_init(&op->got);
    int rc = advance(op, req);
    if (rc != RP_WAITS) {
        read_op_free(op);
        return rc;
    }
    req->pending = &op->base;
    return 0;
}
