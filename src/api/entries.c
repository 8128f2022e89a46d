/*
 * api/entries.c — ranked reads of a board window: pages (offset or
 * cursor), one player, around a player, several players, and removing a
 * player. Each read asks Redis first (one Lua call) and falls back to
 * PostgreSQL when Redis is down, unconfigured, the window is cold (a
 * rebuild is then requested), or the client asked for consistency=strong.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "cache/l1.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/window.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "store/redis_pipe.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "worker/offload.h"
#include "worker/turns.h"

#define IDS_MAX 100

typedef enum { READ_PAGE, READ_CURSOR, READ_PLAYERS, READ_AROUND } read_kind_t;

typedef struct {
    read_kind_t kind;
    int64_t day;
    int limit;
    int64_t offset;
    const order_pos_t *pos;
    bool backward;
    const char *const *ids;
    size_t n_ids;
    const char *player;
    int before, after;
    bool strong;          /* consistency=strong: the primary answers */
    bool closed;          /* a window before the current one: its archive answers on PostgreSQL */
} read_t;

static rb_status_t read_redis(redis_conn_t *rc, const board_t *b, const read_t *r, entries_t *out)
{
    switch (r->kind) {
    case READ_PAGE: return rb_page(rc, b, r->day, r->offset, r->limit, out);
    case READ_CURSOR: return rb_page_cursor(rc, b, r->day, r->pos, r->backward, r->limit, out);
    case READ_PLAYERS: return rb_players(rc, b, r->day, r->ids, r->n_ids, out);
    case READ_AROUND: return rb_around(rc, b, r->day, r->player, r->before, r->after, out);
    }
    return RB_DOWN;
}

/* A closed window from its archive; `*archived` false when it has none yet. */
static q_status_t read_archive(PGconn *c, const board_t *b, const read_t *r, entries_t *out, bool *archived)
{
    static const q_archive_kind_t kinds[] = {[READ_PAGE] = QA_PAGE, [READ_CURSOR] = QA_CURSOR,
                                             [READ_PLAYERS] = QA_PLAYERS, [READ_AROUND] = QA_AROUND};
    q_archive_read_t rd = {kinds[r->kind], r->limit, r->offset, r->pos, r->backward, r->ids, r->n_ids,
                           r->player, r->before, r->after};
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
    case READ_CURSOR: return q_page_cursor(c, b, r->day, r->pos, r->backward, r->limit, out);
    case READ_PLAYERS: return q_players(c, b, r->day, r->ids, r->n_ids, out);
    case READ_AROUND: {
        q_status_t st = q_around(c, b, r->day, r->player, r->before, r->after, out);
        return st == Q_NOT_FOUND ? Q_OK : st;
    }
    }
    return Q_ERROR;
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
    return read_pg(c, a->b, a->r, a->top_below, a->out);
}

/*
 * A read on a node the router picks (a caught-up replica, or the primary); `out` is left
 * empty unless Q_OK. `*behind`: it came from a replica that may lack this instance's last
 * write of the board (the primary being down), so it must not be cached.
 */
static q_status_t pg_read(app_t *app, const board_t *b, const read_t *r, entries_t *out, bool *behind)
{
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
    bool archived = r->closed && req->received_ms >= window_next_day(b->reset, r->day) * MS_PER_DAY +
                                                         window_archive_grace_ms(app->cfg->pg_statement_timeout_ms);
    if (req->strong || archived || !window_is_hot(b->reset, r->day, req->received_ms) || !redis_trusted(app->redis))
        return false; /* also without Redis */
    if (redis_window_trusted(app->redis, b->gen, r->day, epoch))
        return true;
    /* Not checked since this instance started or Redis's last outage: PostgreSQL answers until
     * the rebuilder has compared the window's marks (and rebuilt it if Redis missed a write).
     * The check needs the primary: without it, Redis answers as it is (a ready window). */
    rebuilder_request(app->rebuilder, b, r->day);
    return !pg_router_primary_usable(app->router);
}

/* Run a read; 0 with `out` filled, or the error status written into req. `*behind` as pg_read's. */
static int run_read(app_t *app, http_req_t *req, const board_t *b, const read_t *r, entries_t *out, bool *behind)
{
    *behind = false;
    entries_init(out);
    if (redis_answers(app, req, b, r, NULL)) {
        redis_conn_t *rc = redis_acquire(app->redis);
        if (rc) {
            rb_status_t st = read_redis(rc, b, r, out);
            redis_release(app->redis, rc, st == RB_DOWN);
            if (st == RB_OK) {
                metrics_add(app->metrics, METRIC_REDIS_READS, 1);
                return 0;
            }
            if (st == RB_COLD) {
                metrics_add(app->metrics, METRIC_REDIS_COLD, 1);
                rebuilder_request(app->rebuilder, b, r->day);
            }
            entries_clear(out);
        }
    }
    return pg_read_error(req, pg_read(app, b, r, out, behind));
}

/* ---------------------------------------------------------------- rendering */

static void render_entry(buf_t *o, const entry_t *e)
{
    char at[25];
    window_format_ms(e->achieved_ms, at);
    buf_puts(o, "{\"rank\":");
    buf_i64(o, e->rank);
    buf_puts(o, ",\"player_id\":");
    buf_json_str(o, e->player, e->player_len);
    buf_puts(o, ",\"score\":");
    buf_i64(o, e->score);
    buf_puts(o, ",\"achieved_at\":\"");
    buf_append(o, at, 24);
    buf_putc(o, '"');
    if (e->metadata) {
        buf_puts(o, ",\"metadata\":");
        buf_puts(o, e->metadata);
    }
    buf_putc(o, '}');
}

static void render_head(buf_t *o, const board_t *b, int64_t day, int64_t total)
{
    char d[11];
    window_format_day(day, d);
    buf_puts(o, "{\"board\":");
    buf_json_str(o, b->id, strlen(b->id));
    buf_printf(o, ",\"window\":\"%s\",\"total\":%" PRId64 ",\"entries\":[", d, total);
}

static void render_entries(buf_t *o, const entries_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        if (i)
            buf_putc(o, ',');
        render_entry(o, &e->items[i]);
    }
}

/* ---------------------------------------------------------------- response cache */

/*
 * A cacheable read: its canonical key (route, board generation, window,
 * the parameters that shape the answer) and, after a miss, the claim and
 * the window epoch read before the store was asked.
 */
typedef struct {
    buf_t key;
    bool claimed;   /* we compute it and insert it */
    bool busy;      /* another request computes it: wait for that one */
    uint64_t epoch;
} cached_read_t;

/* True when answered from the cache; otherwise the caller computes and calls cache_store or cache_drop. */
static bool cache_lookup(app_t *app, http_req_t *req, cached_read_t *cr, route_id_t route, const board_t *b,
                         int64_t day, const char *params)
{
    buf_init(&cr->key);
    cr->claimed = false;
    cr->busy = false;
    cr->epoch = 0;
    if (!app->l1 || req->strong)
        return false;
    buf_i64(&cr->key, (int64_t)route);
    buf_putc(&cr->key, '|');
    buf_i64(&cr->key, b->gen);
    buf_putc(&cr->key, '|');
    buf_i64(&cr->key, day);
    buf_putc(&cr->key, '|');
    buf_puts(&cr->key, params);
    if (req->warm)
        l1_expect(app->l1, cr->key.data, cr->key.len);
    l1_miss_t miss = L1_MISS_UNCACHED;
    l1_entry_t *e = l1_get(app->l1, cr->key.data, cr->key.len, &miss);
    cr->claimed = !e && miss == L1_MISS_CLAIMED;
    cr->busy = !e && miss == L1_MISS_BUSY;
    if (e) {
        req->cached = e;
        req->cacheable = true;
        buf_free(&cr->key);
        http_ok(req, 200);
        return true;
    }
    if (cr->claimed)
        cr->epoch = l1_window_epoch(app->l1, b->gen, day);
    return false;
}

/* Keep the answer just rendered into req->out (status 200) for the entries it shows. */
static void cache_store(app_t *app, http_req_t *req, cached_read_t *cr, const board_t *b, const read_t *r,
                        const entries_t *e)
{
    if (cr->claimed) {
        int64_t day = r->day;
        l1_scope_t scope = {.gen = b->gen, .day = day, .total = e->total, .has_span = e->n > 0};
        if (e->n > 0) {
            const entry_t *f = &e->items[0], *l = &e->items[e->n - 1];
            order_pos_set(&scope.first, f->sort_key, f->achieved_ms, f->player, f->player_len);
            order_pos_set(&scope.last, l->sort_key, l->achieved_ms, l->player, l->player_len);
        }
        if (r->kind == READ_CURSOR) {
            /* A cursor page shows what follows (or precedes) the cursor: a standing moving
             * into the gap between the cursor and the page changes it too. */
            if (!scope.has_span) {
                order_pos_set(&scope.first, INT64_MIN, INT64_MIN, "", 0);
                order_pos_set(&scope.last, INT64_MAX, INT64_MAX, "", 0);
            }
            if (r->backward)
                scope.last = *r->pos;
            else
                scope.first = *r->pos;
            scope.has_span = true;
        }
        req->cached = l1_insert(app->l1, cr->key.data, cr->key.len, &scope, cr->epoch, req->out.data, req->out.len,
                                req->last_modified_ms);
        buf_reset(&req->out);
        cr->claimed = false;
    }
    buf_free(&cr->key);
}

static void cache_drop(app_t *app, cached_read_t *cr)
{
    if (cr->claimed)
        l1_abandon(app->l1, cr->key.data, cr->key.len);
    cr->claimed = false;
    buf_free(&cr->key);
}

/* ---------------------------------------------------------------- parameters */

#define WINDOW_RULE "window must be current, previous or the start date of one of the board's windows (YYYY-MM-DD)"

/* The 400 of a well-formed date that starts no window of `b`: which days do, and the window
 * holding that date. */
static int window_not_a_start(http_req_t *req, const board_t *b, const char *w)
{
    int64_t day = 0;
    if (!window_parse_day(w, &day))
        return http_bad_param(req, "window", WINDOW_RULE);
    char holder[11];
    window_format_day(window_start_day(b->reset, day * MS_PER_DAY), holder);
    const char *starts = b->reset == RESET_WEEKLY    ? "start on Mondays"
                         : b->reset == RESET_MONTHLY ? "start on the 1st of a month"
                                                     : "is the one of 1970-01-01";
    return http_bad_param(req, "window", "window %s starts no window of this board: its %s window%s %s (the one holding "
                          "that day is window=%s)", w, board_reset_name(b->reset),
                          b->reset == RESET_NONE ? "" : "s", starts, holder);
}

/* Resolve the window= parameter; 0 or the error written (shared with api/stats.c). */
int api_param_window(const app_t *app, http_req_t *req, const board_t *b, int64_t *day)
{
    bool bad = false;
    const char *w = http_param(req, "window", &bad);
    if (bad)
        return http_bad_param(req, "window", "window must be given once");
    switch (window_resolve(b->reset, b->created_ms, config_retention_windows(app->cfg, b->id), req->received_ms, w, day)) {
    case WINDOW_OK: return 0;
    case WINDOW_MALFORMED: return window_not_a_start(req, b, w);
    case WINDOW_ABSENT: return http_not_found(req, "window", "window");
    }
    return http_bad_param(req, "window", WINDOW_RULE);
}

/* The window= parameter's syntax alone, before the board is known (API.md: values are 400
 * before anything is 404); 0 or the error written. */
int api_param_window_syntax(http_req_t *req)
{
    bool bad = false;
    const char *w = http_param(req, "window", &bad);
    int64_t day;
    if (bad || (w && strcmp(w, "current") != 0 && strcmp(w, "previous") != 0 && !window_parse_day(w, &day)))
        return http_bad_param(req, "window", bad ? "window must be given once" : WINDOW_RULE);
    return 0;
}

/* An optional plain-decimal parameter within [min, max]; 0 or the error written. */
static int param_uint(http_req_t *req, const char *name, uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out)
{
    bool bad = false;
    const char *v = http_param(req, name, &bad);
    *out = dflt;
    if (bad)
        return http_bad_param(req, name, "%s must be given once", name);
    if (v && (!param_parse_uint(v, max, out) || *out < min)) {
        if (max >= UINT64_C(1) << 40)
            return http_bad_param(req, name, "%s must be a whole number, %" PRIu64 " or more", name, min);
        return http_bad_param(req, name, "%s must be a whole number %" PRIu64 "..%" PRIu64, name, min, max);
    }
    return 0;
}

static int check_player(const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    return 0;
}

/* ---------------------------------------------------------------- entries */

static void put_cursor(app_t *app, buf_t *o, const board_t *b, int64_t day, const entry_t *e, bool backward)
{
    cursor_t c = {.kind = CURSOR_ENTRIES, .backward = backward, .gen = b->gen, .day = day};
    order_pos_set(&c.pos, e->sort_key, e->achieved_ms, e->player, e->player_len);
    char text[CURSOR_TEXT_MAX];
    const char *secret = app->cfg->cursor_secret;
    cursor_encode(&c, secret, strlen(secret), text);
    buf_printf(o, "\"%s\"", text);
}

/* ---------------------------------------------------------------- reads in flight */

/*
 * A ranked read between its validation and its answer. It owns copies of
 * everything it needs, so that it can wait for Redis while the connection
 * is suspended, then be answered on another call: the pipelined Redis
 * thread runs the prepared command, and finishing falls back to PostgreSQL
 * when Redis is down or the window cold.
 */
typedef struct read_op read_op_t;
typedef int (*read_render_t)(read_op_t *op, http_req_t *req, const entries_t *e);

struct read_op {
    http_pending_t base;
    offload_job_t job;        /* its PostgreSQL read, run off the event loop */
    app_t *app;
    board_t board;
    read_t read;              /* its pointers point into the fields below */
    order_pos_t pos;
    char player[PLAYER_ID_MAX + 1];
    char *ids_copy;
    const char *ids[IDS_MAX];
    cached_read_t cr;
    read_render_t render;
    rb_read_t rd;
    redis_call_t call;
    void (*wake)(void *arg);
    void *wake_arg;
    /* The result, filled off the event loop before wake(): from Redis, or else from
     * PostgreSQL with its status. */
    entries_t got;
    bool from_redis;
    q_status_t pg_status;
    bool behind;              /* read from a replica possibly behind: answered, never cached */
};

/* A read of board `b` (taken over). `cr`, when not NULL, is the cache lookup already made
 * for it (taken over too); else read_begin makes it. */
static read_op_t *read_op_new(app_t *app, board_t *b, read_kind_t kind, int64_t day, read_render_t render,
                              cached_read_t *cr)
{
    read_op_t *op = xcalloc(1, sizeof *op);
    op->app = app;
    op->board = *b; /* takes over the board's strings */
    memset(b, 0, sizeof *b);
    op->read.kind = kind;
    op->read.day = day;
    op->render = render;
    if (cr)
        op->cr = *cr;
    else
        buf_init(&op->cr.key);
    entries_init(&op->got);
    return op;
}

static void read_op_free(read_op_t *op)
{
    /* A client that hung up before its answer was computed still holds the claim: the
     * requests parked on it would wait forever. */
    cache_drop(op->app, &op->cr);
    rb_read_clear(&op->rd);
    entries_clear(&op->got);
    board_clear(&op->board);
    free(op->ids_copy);
    free(op);
}

/* Render the result (or an error) and keep a 200 in the cache; returns the status. */
static int read_answer(read_op_t *op, http_req_t *req, entries_t *e, int failed)
{
    int rc = failed;
    if (!failed) {
        rc = op->render(op, req, e);
        if (rc == 200 && e->modified_ms > 0) /* a closed window, from its archive */
            req->last_modified_ms = e->modified_ms;
        if (rc == 200 && !op->behind)
            cache_store(op->app, req, &op->cr, &op->board, &op->read, e);
        if (op->behind)
            req->cacheable = false; /* nor in any cache downstream */
    }
    if (rc != 200)
        cache_drop(op->app, &op->cr);
    entries_clear(e);
    return rc;
}

/* On an offload thread: read PostgreSQL, then wake the request. */
static void read_pg_job(offload_job_t *job)
{
    read_op_t *op = (read_op_t *)((char *)job - offsetof(read_op_t, job));
    op->from_redis = false;
    op->pg_status = pg_read(op->app, &op->board, &op->read, &op->got, &op->behind);
    op->wake(op->wake_arg); /* last: the request may be finished and freed at once */
}

/* Read PostgreSQL off the event loop when there are threads for it, else (at start-up
 * failure only) right here. */
static void read_pg_later(read_op_t *op)
{
    op->job.run = read_pg_job;
    if (op->app->offload)
        offload_submit(op->app->offload, &op->job);
    else
        read_pg_job(&op->job);
}

static turns_key_t window_key(const read_op_t *op)
{
    return (turns_key_t){op->board.gen, op->read.day};
}

/* On an offload thread, the window's turn held: the window may have been loaded while this
 * read waited, so Redis is asked again; PostgreSQL answers only if it is still cold. */
static void read_cold_job(offload_job_t *job)
{
    read_op_t *op = (read_op_t *)((char *)job - offsetof(read_op_t, job));
    turns_key_t key = window_key(op);
    redis_pool_t *pool = op->app->redis;
    redis_conn_t *rc = redis_window_trusted(pool, op->board.gen, op->read.day, NULL) ||
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
        op->pg_status = pg_read(op->app, &op->board, &op->read, &op->got, &op->behind);
    turns_end(op->app->cold_turns, key);
    op->wake(op->wake_arg); /* last: the request may be finished and freed at once */
}

/* On the Redis pipe thread: parse the reply; a cold window or a failed Redis goes on to
 * PostgreSQL without ever blocking the event loop. */
static void read_call_done(redis_call_t *call)
{
    read_op_t *op = call->arg;
    rb_status_t st = rb_read_parse(&op->rd, op->call.reply, &op->board, &op->got);
    if (st == RB_OK) {
        op->from_redis = true;
        op->wake(op->wake_arg);
        return;
    }
    if (st == RB_COLD) {
        metrics_add(op->app->metrics, METRIC_REDIS_COLD, 1);
        rebuilder_request(op->app->rebuilder, &op->board, op->read.day);
        if (op->app->cold_turns) {
            op->job.run = read_cold_job;
            turns_status_t ts = turns_submit(op->app->cold_turns, window_key(op), &op->job);
            if (ts == TURNS_WAITING)
                metrics_add(op->app->metrics, METRIC_COLD_WAITS, 1);
            if (ts != TURNS_FULL)
                return;
        }
    }
    read_pg_later(op);
}

static void read_start(http_pending_t *p, void (*wake)(void *), void *wake_arg)
{
    read_op_t *op = (read_op_t *)p;
    op->wake = wake;
    op->wake_arg = wake_arg;
    op->call.argc = op->rd.argc;
    op->call.argv = op->rd.argv;
    op->call.argvlen = op->rd.argvlen;
    op->call.merge = op->rd.merge;
    op->call.done = read_call_done;
    op->call.arg = op;
    redis_pipe_submit(op->app->pipe, &op->call);
}

/* Back on the event loop: render what was read. */
static int read_finish(http_pending_t *p, http_req_t *req)
{
    read_op_t *op = (read_op_t *)p;
    if (op->from_redis)
        metrics_add(op->app->metrics, METRIC_REDIS_READS, 1);
    int failed = op->from_redis ? 0 : pg_read_error(req, op->pg_status);
    return read_answer(op, req, &op->got, failed);
}

/* A read that goes to PostgreSQL only (no Redis, Redis distrusted, or consistency=strong). */
static void pg_start(http_pending_t *p, void (*wake)(void *), void *wake_arg)
{
    read_op_t *op = (read_op_t *)p;
    op->wake = wake;
    op->wake_arg = wake_arg;
    read_pg_later(op);
}

static void read_release(http_pending_t *p)
{
    read_op_free((read_op_t *)p);
}

static void prepare_redis(read_op_t *op)
{
    const read_t *r = &op->read;
    switch (r->kind) {
    case READ_PAGE: rb_prepare_page(&op->rd, &op->board, r->day, r->offset, r->limit); break;
    case READ_CURSOR: rb_prepare_cursor(&op->rd, &op->board, r->day, r->pos, r->backward, r->limit); break;
    case READ_PLAYERS: rb_prepare_players(&op->rd, &op->board, r->day, r->ids, r->n_ids); break;
    case READ_AROUND: rb_prepare_around(&op->rd, &op->board, r->day, r->player, r->before, r->after); break;
    }
}

/* Another request is computing this answer: park until it settles (see l1_wait). */
static void wait_start(http_pending_t *p, void (*wake)(void *), void *wake_arg)
{
    read_op_t *op = (read_op_t *)p;
    if (!l1_wait(op->app->l1, op->cr.key.data, op->cr.key.len, wake, wake_arg))
        wake(wake_arg);
}

/*
 * Start op's read off the event loop: through the Redis pipe, or on the offload threads when
 * only PostgreSQL can answer. False when it must run here (a /v1/batch item, or no such path).
 */
static bool read_async(app_t *app, http_req_t *req, read_op_t *op)
{
    if (req->inline_only)
        return false;
    unsigned long epoch = 0;
    bool use_redis = redis_answers(app, req, &op->board, &op->read, &epoch);
    if (app->pipe && use_redis) {
        prepare_redis(op);
        op->call.epoch = epoch; /* the pipe sends it only if no outage began since */
        op->base.start = read_start;
    } else if (app->offload && !use_redis) {
        op->base.start = pg_start;
    } else {
        return false;
    }
    op->base.finish = read_finish;
    op->base.release = read_release;
    req->pending = &op->base;
    return true;
}

/* Woken: the answer is most likely cached now. If not, wait again without holding this
 * thread: on whoever claimed the key since, or for a read of our own. */
static int wait_finish(http_pending_t *p, http_req_t *req)
{
    read_op_t *op = (read_op_t *)p;
    l1_miss_t miss = L1_MISS_UNCACHED;
    l1_entry_t *e = l1_get(op->app->l1, op->cr.key.data, op->cr.key.len, &miss);
    if (e) {
        req->cached = e;
        req->cacheable = true;
        return http_ok(req, 200);
    }
    if (miss == L1_MISS_BUSY)
        return HTTP_PENDING_AGAIN; /* still wait_start / wait_finish */
    op->cr.claimed = miss == L1_MISS_CLAIMED;
    if (op->cr.claimed)
        op->cr.epoch = l1_window_epoch(op->app->l1, op->board.gen, op->read.day);
    if (read_async(op->app, req, op))
        return HTTP_PENDING_AGAIN;
    entries_t out;
    int failed = run_read(op->app, req, &op->board, &op->read, &out, &op->behind);
    return read_answer(op, req, &out, failed);
}

/* A hit answers before a read is even allocated: true when `req` was answered from the
 * cache (the board is cleared then); else `cr` goes to read_op_new. */
static bool answered_from_cache(app_t *app, http_req_t *req, cached_read_t *cr, route_id_t route, board_t *b,
                                int64_t day, const char *params)
{
    if (!cache_lookup(app, req, cr, route, b, day, params))
        return false;
    board_clear(b);
    return true;
}

/*
 * Start a read the cache did not answer: wait for the request computing the same answer,
 * or read through the Redis pipe (the answer comes later: req->pending), or at once.
 * Takes `op` over.
 */
static int read_missed(app_t *app, http_req_t *req, read_op_t *op)
{
    op->read.strong = req->strong;
    op->read.closed = op->read.day < window_start_day(op->board.reset, req->received_ms);
    if (op->cr.busy && !req->inline_only) {
        op->base.start = wait_start;
        op->base.finish = wait_finish;
        op->base.release = read_release;
        req->pending = &op->base;
        return 0;
    }
    if (read_async(app, req, op))
        return 0;
    entries_t e;
    int failed = run_read(app, req, &op->board, &op->read, &e, &op->behind);
    int rc = read_answer(op, req, &e, failed);
    read_op_free(op);
    return rc;
}

/* Answer `op` from the cache, or start its read. Takes `op` over. */
static int read_begin(app_t *app, http_req_t *req, read_op_t *op, route_id_t route, const char *params)
{
    if (cache_lookup(app, req, &op->cr, route, &op->board, op->read.day, params)) {
        read_op_free(op);
        return 200;
    }
    return read_missed(app, req, op);
}

/* ---------------------------------------------------------------- entries */

static int render_page(read_op_t *op, http_req_t *req, const entries_t *e)
{
    const board_t *b = &op->board;
    int64_t day = op->read.day;
    buf_t *o = &req->out;
    render_head(o, b, day, e->total);
    render_entries(o, e);
    buf_puts(o, "],\"next_cursor\":");
    if (e->n > 0 && e->items[e->n - 1].rank < e->total)
        put_cursor(op->app, o, b, day, &e->items[e->n - 1], false);
    else
        buf_puts(o, "null");
    buf_puts(o, ",\"prev_cursor\":");
    if (e->n > 0 && e->items[0].rank > 1)
        put_cursor(op->app, o, b, day, &e->items[0], true);
    else
        buf_puts(o, "null");
    buf_putc(o, '}');
    req->cacheable = true;
    return http_ok(req, 200);
}

int api_entries(app_t *app, const route_t *rt, http_req_t *req)
{
    uint64_t limit, offset;
    bool bad = false;
    const char *cur = http_param(req, "cursor", &bad);
    const char *off = http_param(req, "offset", &bad);
    cursor_t cursor;
    const char *secret = app->cfg->cursor_secret;
    int rc;
    /* What needs no board first: a bad value is 400 even on a board that does not exist. */
    if ((rc = api_param_window_syntax(req)) || (rc = param_uint(req, "limit", 1, 1000, 10, &limit)) ||
        (rc = param_uint(req, "offset", 0, INT64_MAX / 2, 0, &offset)))
        return rc;
    if (bad)
        return http_bad_param(req, "cursor", "cursor and offset must each be given at most once");
    if (cur && off)
        return http_bad_param(req, "offset", "offset and cursor cannot be used together: a cursor already says where "
                              "its page starts");
    if (cur && (!cursor_decode_rotated(cur, secret, app->cfg->cursor_secret_previous, &cursor) || cursor.kind != CURSOR_ENTRIES))
        return http_bad_param(req, "cursor", "cursor is not one this route gave: pass next_cursor or prev_cursor as it came");
    board_t b;
    if ((rc = api_load_board(app, rt, req, &b)))
        return rc;
    int64_t day = 0;
    /* A cursor of another board is 400, even one naming a window that is gone. */
    if (cur && cursor.gen != b.gen) {
        rc = http_bad_param(req, "cursor", "cursor was given by another board (or by this board before it was "
                            "deleted and made again)");
        goto fail;
    }
    bool window_bad = false;
    if (cur && !http_param(req, "window", &window_bad) && !window_bad) {
        /* Without window=, a cursor goes on paging the window it was taken in: a reset between
         * two pages does not end the paging (the answer's "window" names it). */
        char taken[11];
        window_format_day(cursor.day, taken);
        if (window_resolve(b.reset, b.created_ms, config_retention_windows(app->cfg, b.id), req->received_ms, taken,
                           &day) != WINDOW_OK) {
            rc = http_bad_param(req, "cursor", "cursor pages window %s, which this board no longer keeps", taken);
            goto fail;
        }
    } else {
        if ((rc = api_param_window(app, req, &b, &day)))
            goto fail;
        if (cur && cursor.day != day) {
            char taken[11];
            window_format_day(cursor.day, taken);
            rc = http_bad_param(req, "cursor", "cursor pages window %s: send it with window=%s, or without window",
                                taken, taken);
            goto fail;
        }
    }
    /* limit|offset|cursor: a decoded cursor is at most CURSOR_TEXT_MAX bytes */
    char params[CURSOR_TEXT_MAX + 48], *p = params;
    size_t cur_len = cur ? strnlen(cur, CURSOR_TEXT_MAX + 1) : 0;
    if (cur_len > CURSOR_TEXT_MAX) {
        rc = http_bad_param(req, "cursor", "cursor is not one this route gave: pass next_cursor or prev_cursor as it came");
        goto fail;
    }
    p += u64_digits(p, limit);
    *p++ = '|';
    p += u64_digits(p, offset);
    *p++ = '|';
    memcpy(p, cur ? cur : "", cur_len);
    p[cur_len] = '\0';
    cached_read_t cr;
    if (answered_from_cache(app, req, &cr, R_ENTRIES, &b, day, params))
        return 200;
    read_op_t *op = read_op_new(app, &b, cur ? READ_CURSOR : READ_PAGE, day, render_page, &cr);
    op->read.limit = (int)limit;
    op->read.offset = (int64_t)offset;
    if (cur) {
        op->pos = cursor.pos;
        op->read.pos = &op->pos;
        op->read.backward = cursor.backward;
    }
    return read_missed(app, req, op);
fail:
    board_clear(&b);
    return rc;
}

/* ---------------------------------------------------------------- one player */

void api_render_standing(buf_t *o, const char *board_id, int64_t day, int64_t total, const entry_t *e)
{
    char d[11];
    window_format_day(day, d);
    buf_t tmp;
    buf_init(&tmp);
    render_entry(&tmp, e);
    tmp.data[tmp.len - 1] = '\0'; /* reopen the entry object */
    tmp.len--;
    buf_append(o, tmp.data, tmp.len);
    buf_free(&tmp);
    buf_puts(o, ",\"board\":");
    buf_json_str(o, board_id, strlen(board_id));
    /* top_percent = 100 * rank / total, rounded up to two decimals: ceil(10000 * rank / total) / 100 */
    int64_t hundredths = total > 0 ? (e->rank * 10000 + total - 1) / total : 0;
    buf_puts(o, ",\"window\":\"");
    buf_append(o, d, 10);
    buf_puts(o, "\",\"total\":");
    buf_i64(o, total);
    buf_puts(o, ",\"top_percent\":");
    buf_i64(o, hundredths / 100);
    if (hundredths % 100) {
        char frac[3] = {(char)('0' + hundredths % 100 / 10), (char)('0' + hundredths % 10), '\0'};
        buf_putc(o, '.');
        buf_puts(o, frac);
    }
    buf_putc(o, '}');
}

static int render_player(read_op_t *op, http_req_t *req, const entries_t *e)
{
    if (e->n == 0)
        return http_not_found(req, "player_id", "player");
    api_render_standing(&req->out, op->board.id, op->read.day, e->total, &e->items[0]);
    req->cacheable = true;
    return http_ok(req, 200);
}

static int get_player(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc;
    if ((rc = check_player(rt, req)) || (rc = api_param_window_syntax(req)) ||
        (rc = api_load_board(app, rt, req, &b)))
        return rc;
    int64_t day;
    if ((rc = api_param_window(app, req, &b, &day))) {
        board_clear(&b);
        return rc;
    }
    char player[PLAYER_ID_MAX + 1];
    memcpy(player, rt->player, rt->player_len); /* validated: at most PLAYER_ID_MAX bytes */
    player[rt->player_len] = '\0';
    cached_read_t cr;
    if (answered_from_cache(app, req, &cr, R_PLAYER, &b, day, player))
        return 200;
    read_op_t *op = read_op_new(app, &b, READ_PLAYERS, day, render_player, &cr);
    memcpy(op->player, player, rt->player_len + 1);
    op->ids[0] = op->player;
    op->read.ids = op->ids;
    op->read.n_ids = 1;
    return read_missed(app, req, op);
}

static int delete_player(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc;
    if ((rc = check_player(rt, req)) || (rc = api_load_board(app, rt, req, &b)))
        return rc;
    pg_lease_t lease;
    if (!pg_router_primary(app->router, &lease)) {
        board_clear(&b);
        return http_unavailable(req, "the primary database");
    }
    PGconn *c = lease.conn;
    int64_t *days = NULL, *versions = NULL, *seqs = NULL;
    size_t n = 0;
    q_status_t st = q_player_delete(c, b.gen, rt->player, &days, &versions, &seqs, &n);
    if (st == Q_OK || n > 0) { /* n > 0: the live rows went even if its archives failed */
        if (st == Q_OK)
            pg_router_note_commit(app->router, c, b.gen); /* its reads wait for a replica that has it */
        /* Redis first, then the caches, then tell the other instances again (as the writer does). */
        redis_conn_t *r = redis_acquire(app->redis);
        for (size_t i = 0; i < n; i++) {
            if (!window_is_hot(b.reset, days[i], req->received_ms))
                continue; /* a window only PostgreSQL holds */
            rb_change_t ch = {.player = rt->player, .version = versions[i], .removed = true};
            rb_status_t rs = r ? rb_apply(r, b.gen, days[i], &ch, 1, seqs[i], NULL, NULL, NULL) : RB_DOWN;
            if (rs != RB_OK) /* marked cold for every instance once Redis answers */
                redis_note_unapplied(app->redis, b.gen, days[i]);
            if (rs == RB_DOWN && r) {
                redis_release(app->redis, r, true);
                r = NULL;
            }
        }
        if (r)
            redis_release(app->redis, r, false);
        /* The whole board: its archived windows changed too (ranks, statistics, Last-Modified),
         * and a deletion is rare enough for every cached answer of the board to go. */
        l1_invalidate_board(app->l1, b.gen);
        char note[32];
        snprintf(note, sizeof note, "B %" PRId64, b.gen);
        if (q_notify(c, note) != Q_OK) /* also when only the live rows went: they changed */
            log_req_warn(req, "the invalidation notice of a player deletion failed");
    }
    if (st == Q_OK) {
        rc = http_ok(req, 204);
    } else if (st == Q_NOT_FOUND) {
        rc = http_not_found(req, "player_id", "player");
    } else {
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    free(days);
    free(versions);
    free(seqs);
    board_clear(&b);
    return rc;
}

int api_player(app_t *app, const route_t *rt, http_req_t *req)
{
    return strcmp(req->method, "DELETE") == 0 ? delete_player(app, rt, req) : get_player(app, rt, req);
}

/* ---------------------------------------------------------------- around and several */

static int render_list(read_op_t *op, http_req_t *req, const entries_t *e)
{
    if (op->read.kind == READ_AROUND && e->n == 0)
        return http_not_found(req, "player_id", "player");
    render_head(&req->out, &op->board, op->read.day, e->total);
    render_entries(&req->out, e);
    buf_puts(&req->out, "]}");
    req->cacheable = true;
    return http_ok(req, 200);
}

int api_around(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc;
    int64_t day;
    uint64_t before, after;
    if ((rc = check_player(rt, req)) || (rc = api_param_window_syntax(req)) ||
        (rc = param_uint(req, "before", 0, 100, 5, &before)) || (rc = param_uint(req, "after", 0, 100, 5, &after)) ||
        (rc = api_load_board(app, rt, req, &b)))
        return rc;
    if ((rc = api_param_window(app, req, &b, &day))) {
        board_clear(&b);
        return rc;
    }
    /* player|before|after */
    char params[PLAYER_ID_MAX + 48], *p = params;
    memcpy(p, rt->player, rt->player_len); /* validated: at most PLAYER_ID_MAX bytes */
    p += rt->player_len;
    *p++ = '|';
    p += u64_digits(p, before);
    *p++ = '|';
    p += u64_digits(p, after);
    *p = '\0';
    cached_read_t cr;
    if (answered_from_cache(app, req, &cr, R_AROUND, &b, day, params))
        return 200;
    read_op_t *op = read_op_new(app, &b, READ_AROUND, day, render_list, &cr);
    memcpy(op->player, rt->player, rt->player_len);
    op->player[rt->player_len] = '\0';
    op->read.player = op->player;
    op->read.before = (int)before;
    op->read.after = (int)after;
    return read_missed(app, req, op);
}

int api_players(app_t *app, const route_t *rt, http_req_t *req)
{
    int rc;
    if ((rc = api_param_window_syntax(req)))
        return rc;
    bool bad = false;
    const char *list = http_param(req, "ids", &bad);
    if (bad || !list || !*list)
        return http_bad_param(req, "ids", "ids must be given once, a comma-separated list of player ids");
    /* The ids are checked before the board is looked up (400 before 404): the board comes later. */
    board_t none;
    memset(&none, 0, sizeof none);
    read_op_t *op = read_op_new(app, &none, READ_PLAYERS, 0, render_list, NULL);
    op->ids_copy = xstrdup(list);
    size_t n = 0;
    char *p = op->ids_copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!id_player_valid(p, strlen(p))) {
            read_op_free(op);
            return http_error(req, 400, "invalid_argument", "ids", "ids: " ID_PLAYER_RULE);
        }
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(op->ids[i], p) == 0;
        if (!dup) {
            if (n == IDS_MAX) {
                read_op_free(op);
                return http_error(req, 400, "invalid_argument", "ids", "at most 100 distinct ids");
            }
            op->ids[n++] = p;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    board_t b;
    int64_t day;
    if ((rc = api_load_board(app, rt, req, &b))) {
        read_op_free(op);
        return rc;
    }
    if ((rc = api_param_window(app, req, &b, &day))) {
        board_clear(&b);
        read_op_free(op);
        return rc;
    }
    op->board = b; /* takes over the board's strings */
    op->read.day = day;
    op->read.ids = op->ids;
    op->read.n_ids = n;
    return read_begin(app, req, op, R_PLAYERS, list);
}
