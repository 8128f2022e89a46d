/*
 * api/player_delete.c — DELETE /v1/leaderboards/{board}/players/{player}: the player's rows go
 * from every window of the board (store/queries.c, q_player_delete), then this instance's Redis
 * copy, rank tier and cached answers of the windows the player stood in follow, and every other
 * instance is told again once Redis has it, as the writer does after a batch.
 *
 * A deletion changes those windows only. Each lost one standing: every cached answer of such a
 * window shows its total, which fell, and those after the player's position show ranks that
 * moved up, so each goes; the board's other windows, its other boards, its catalog entry and its
 * Redis copy's trust are untouched (docs/architecture.md, "A player's deletion").
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/player_auth.h"
#include "store/revocations.h"
#include "cache/l1.h"
#include "cache/rank_tier.h"
#include "core/ids.h"
#include "core/notice.h"
#include "core/window.h"
#include "obs/log.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "util/alloc.h"
#include "util/buf.h"

/* How long a deletion waits for an archive of its board or an import's merge into it (at most
 * half the statement timeout), and the Retry-After it answers when one still runs. */
#define DELETE_ARCHIVE_WAIT_MS 1000
#define DELETE_RETRY_AFTER_S 5
/* A notice's payload stays under PostgreSQL's 8000-byte NOTIFY limit. */
#define NOTICE_BYTES 7800

/* The D line of window `d` (core/notice.h) into `line`. */
static void put_removal(buf_t *line, int64_t gen, const q_deleted_t *d, const char *player, size_t len)
{
    notice_change_t c = {.gen = gen, .day = d->day, .removed = true, .existed = true, .old_sort_key = d->sort_key,
                         .old_ms = d->achieved_ms, .player = player, .player_len = len};
    buf_reset(line);
    notice_put_change(line, &c, false);
}

/* The live windows' D lines again, now that Redis lost the player: another instance that read
 * the player from Redis between the commit's notice and that update, and cached the answer,
 * drops it. A hint (the commit carried the notice): a failure is logged, not answered. Only
 * hot windows: no other is in Redis. */
static void hint_again(PGconn *c, const board_t *b, const q_deleted_t *del, size_t n, const char *player, size_t len,
                       int64_t now_ms, http_req_t *req)
{
    buf_t payload, line;
    buf_init(&payload);
    buf_init(&line);
    for (size_t i = 0; i <= n; i++) {
        bool last = i == n;
        if (!last) {
            if (!del[i].stood || !window_is_hot(board_window_rule(b), del[i].day, now_ms))
                continue;
            put_removal(&line, b->gen, &del[i], player, len);
        }
        if (payload.len && (last || payload.len + 1 + line.len > NOTICE_BYTES)) {
            if (q_notify(c, payload.data) != Q_OK)
                log_req_warn(req, "the invalidation notice of a player deletion failed");
            buf_reset(&payload);
        }
        if (!last) {
            if (payload.len)
                buf_putc(&payload, '\n');
            buf_append(&payload, line.data, line.len);
        }
    }
    buf_free(&payload);
    buf_free(&line);
}

/* After the commit: Redis first, then the tier and the cached answers (read-your-writes on this
 * instance; the others hear the commit's notices), then the hint. */
static void follow(app_t *app, PGconn *c, const board_t *b, const route_t *rt, const q_deleted_t *del, size_t n,
                   http_req_t *req)
{
    redis_conn_t *r = redis_acquire(app->redis);
    int64_t *missed_gens = xcalloc(n + 1, sizeof *missed_gens), *missed_days = xcalloc(n + 1, sizeof *missed_days);
    size_t n_missed = 0;
    for (size_t i = 0; i < n; i++) {
        const q_deleted_t *d = &del[i];
        if (d->stood || d->archived) {
            order_pos_t o;
            order_pos_set(&o, d->sort_key, d->achieved_ms, rt->player, rt->player_len);
            l1_invalidate(app->l1, b->gen, d->day, &o, NULL, true);
        }
        if (d->archived || !window_is_hot(board_window_rule(b), d->day, req->received_ms))
            continue; /* a window only PostgreSQL holds */
        /* The tier answers from the window once it applied the deletion's number (its D line). */
        rank_tier_committed(app->tier, b->gen, d->day, d->seq, NULL, 0);
        /* The number moves the window's Redis mark even when only log rows went. */
        rb_change_t ch = {.player = rt->player, .version = d->version, .removed = true};
        rb_status_t rs = r ? rb_apply(r, b->gen, d->day, &ch, d->stood ? 1 : 0, d->seq, NULL, NULL, NULL, NULL) : RB_DOWN;
        if (rs != RB_OK && app->redis) { /* marked cold for every instance once Redis answers; R till then */
            redis_note_unapplied(app->redis, b->gen, d->day);
            missed_gens[n_missed] = b->gen;
            missed_days[n_missed++] = d->day;
        }
        if (rs == RB_DOWN && r) {
            redis_release(app->redis, r, true);
            r = NULL;
        }
    }
    if (r)
        redis_release(app->redis, r, false);
    if (n_missed > 0 && q_notify_unapplied(c, missed_gens, missed_days, n_missed) != Q_OK)
        log_warn(req->request_id, "could not tell the other instances that Redis missed the deletion in %zu window(s)", n_missed);
    free(missed_gens);
    free(missed_days);
    hint_again(c, b, del, n, rt->player, rt->player_len, req->received_ms, req);
}

static int check_player(const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    return 0;
}

int api_player_delete(app_t *app, const route_t *rt, http_req_t *req)
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
    /* The player's tokens go first (API.md): a deletion that fails after it leaves them revoked,
     * never a deleted player with working tokens. */
    int64_t revoked_at = 0;
    q_status_t rs = q_revoke_player_tokens(c, rt->player, req->received_ms, &revoked_at);
    if (rs != Q_OK) {
        pg_router_release(app->router, &lease, rs == Q_UNAVAILABLE);
        board_clear(&b);
        return rs == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    revocations_note(player_auth_revocations(app->player_auth), rt->player, rt->player_len, revoked_at);
    /* An archive of the board holds it for minutes, an import's merge for seconds: wait a second
     * (a small window's archive or import ends within it), never as long as the statement
     * timeout, then answer busy. */
    int timeout_ms = app->cfg->pg_statement_timeout_ms;
    int lock_wait_ms = timeout_ms > 0 && timeout_ms / 2 < DELETE_ARCHIVE_WAIT_MS ? timeout_ms / 2 : DELETE_ARCHIVE_WAIT_MS;
    q_deleted_t *del = NULL;
    size_t n = 0;
    q_status_t st = q_player_delete(c, b.gen, rt->player, lock_wait_ms, &del, &n);
    if (st == Q_OK || n > 0) { /* n > 0: the live rows went even if its archives failed */
        if (st == Q_OK)
            pg_router_note_commit(app->router, c, b.gen); /* its reads wait for a replica that has it */
        follow(app, c, &b, rt, del, n, req);
    }
    if (st == Q_OK) {
        rc = http_ok(req, 204);
    } else if (st == Q_NOT_FOUND) {
        rc = http_not_found(req, "player_id", "player");
    } else if (st == Q_RETRY) { /* an archive or an import's merge held the board: a retry finishes it */
        rc = http_error(req, 503, "unavailable", NULL,
                        "the board is being archived or imported into: try the deletion again later");
        req->retry_after = DELETE_RETRY_AFTER_S;
    } else {
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    free(del);
    board_clear(&b);
    return rc;
}
