/*
 * store/moderation.c — hiding a player on a board and showing them again (store/moderation.h).
 *
 * Both are transactions shaped like a player's deletion (store/queries.c, q_player_delete): the
 * board's archive and import locks shared, then the player's advisory lock (the writer takes it
 * too, so no batch of the player interleaves), then the standings, the window counters (each
 * window's number moves, which locks its row) and, in a statement of their own after those
 * locks, the rank buckets. A hidden player's submissions meanwhile go to hidden_standings (the
 * writer reads hidden_players under the same lock, worker/write_steps.c) and are not counted in
 * `window_counts.submissions`; a hide takes the player's logged submissions of each window out of
 * that count and a restore puts them back, so it always counts the visible players' log rows.
 */
#include "store/moderation.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/window.h"
#include "store/pg_pipeline.h"
#include "store/pg_pool.h"
#include "store/queries.h"
#include "store/write_sql.h"
#include "util/alloc.h"

static int64_t col_i64(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static PGresult *exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    return PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
}

/* A statement `r` failed: roll back, say why. */
static q_status_t failed(PGconn *c, PGresult *r, const char *what)
{
    q_status_t st = q_failed(c, r, what);
    PQclear(PQexec(c, "ROLLBACK"));
    return st;
}

void q_moved_free(q_moved_t *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++)
        free(m[i].metadata);
    free(m);
}

/* BEGIN, the board's locks, the player's lock: as a deletion takes them. */
static q_status_t begin_locked(PGconn *c, const char *gen, int64_t gen_v, const char *player, int lock_wait_ms,
                               const char *what)
{
    PGresult *r = PQexec(c, "BEGIN");
    if (!pg_ok(r))
        return q_failed(c, r, what);
    PQclear(r);
    q_status_t st = q_board_locks_shared(c, gen, lock_wait_ms, true, what);
    if (st != Q_OK)
        return st;
    char lock[24];
    snprintf(lock, sizeof lock, "%" PRId64, id_player_lock_key(gen_v, player));
    const char *lp[] = {lock};
    r = exec(c, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lp);
    if (!pg_ok(r))
        return failed(c, r, what);
    PQclear(r);
    return Q_OK;
}

/* The rank buckets' counts of the moved standings, `delta` each (ws_buckets_sql). */
static q_status_t count_buckets(PGconn *c, int64_t gen, const char *player, const q_moved_t *m, size_t n, int delta,
                                const char *what)
{
    if (n == 0)
        return Q_OK;
    pg_arrays_t as;
    pg_arrays_open(&as, 6);
    for (size_t i = 0; i < n; i++) {
        pg_arr_i64(&as.a[0], gen);
        pg_arr_day(&as.a[1], m[i].day);
        pg_arr_i64(&as.a[2], m[i].sort_key);
        pg_arr_i64(&as.a[3], m[i].achieved_ms);
        pg_arr_text(&as.a[4], player);
        pg_arr_i64(&as.a[5], delta);
    }
    const char *bp[6];
    pg_arrays_close(&as, bp);
    PGresult *r = exec(c, ws_buckets_sql, 6, bp);
    pg_arrays_free(&as);
    if (!pg_ok(r))
        return failed(c, r, what);
    PQclear(r);
    return Q_OK;
}

static q_status_t commit(PGconn *c, const char *what)
{
    PGresult *r = PQexec(c, "COMMIT");
    if (!pg_ok(r))
        return q_failed(c, r, what);
    PQclear(r);
    return Q_OK;
}

/* The live windows of board $1: those with counters and no archive. */
#define LIVE_WINDOWS                                                                                                  \
    "ARRAY(SELECT c.win FROM window_counts c WHERE c.board_gen = $1 AND NOT EXISTS"                                   \
    " (SELECT 1 FROM archived_windows a WHERE a.board_gen = $1 AND a.win = c.win))"

q_status_t q_player_hide(PGconn *c, int64_t gen, const char *player, const char *reason, int64_t now_ms,
                         int lock_wait_ms, q_moved_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char g[24], now[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    q_status_t st = begin_locked(c, g, gen, player, lock_wait_ms, "player hide");
    if (st != Q_OK)
        return st;
    const char *hp[] = {g, player, now, reason};
    PGresult *r = exec(c,
                       "INSERT INTO hidden_players (board_gen, player_id, hidden_at, reason)"
                       " VALUES ($1, $2, timestamptz 'epoch' + $3::bigint * interval '1 millisecond', $4)"
                       " ON CONFLICT DO NOTHING RETURNING 1",
                       4, hp);
    if (!pg_ok(r))
        return failed(c, r, "player hide");
    bool fresh = PQntuples(r) == 1;
    PQclear(r);
    if (!fresh) {
        PQclear(PQexec(c, "ROLLBACK"));
        return Q_CONFLICT;
    }
    const char *p[] = {g, player};
    r = exec(c,
             "WITH s AS (DELETE FROM standings WHERE board_gen = $1 AND player_id = $2 AND win = ANY(" LIVE_WINDOWS ")"
             "   RETURNING board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version),"
             " hs AS (INSERT INTO hidden_standings SELECT * FROM s),"
             " lc AS (SELECT l.win, count(*) AS n FROM submissions l"
             "   WHERE l.board_gen = $1 AND l.player_id = $2 AND l.win IN (SELECT win FROM s) AND l.flagged IS NULL GROUP BY l.win),"
             " w AS (UPDATE window_counts c SET players = c.players - 1,"
             "   submissions = c.submissions - coalesce((SELECT n FROM lc WHERE lc.win = c.win), 0), seq = c.seq + 1"
             "   WHERE c.board_gen = $1 AND c.win IN (SELECT win FROM s) RETURNING c.win, c.seq)"
             /* As a deletion tells it (core/notice.h): the window's S line, then the D line of the
              * position the standing left. */
             " SELECT w.win - DATE '1970-01-01', nextval('standing_version'),"
             "  pg_notify('rankd_l1', 'S ' || $1 || ' ' || (w.win - DATE '1970-01-01') || ' ' || w.seq || ' 1 1'"
             "   || E'\\n' || 'D ' || $1 || ' ' || (w.win - DATE '1970-01-01') || ' ' || s.sort_key || ' '"
             "   || s.achieved_ms || ' ' || $2),"
             "  s.sort_key, s.achieved_ms, w.seq"
             " FROM w JOIN s ON s.win = w.win ORDER BY 1",
             2, p);
    if (!pg_ok(r))
        return failed(c, r, "player hide");
    size_t k = (size_t)PQntuples(r);
    q_moved_t *m = xcalloc(k ? k : 1, sizeof *m);
    for (size_t i = 0; i < k; i++)
        m[i] = (q_moved_t){.day = col_i64(r, (int)i, 0), .version = col_i64(r, (int)i, 1),
                           .sort_key = col_i64(r, (int)i, 3), .achieved_ms = col_i64(r, (int)i, 4),
                           .seq = col_i64(r, (int)i, 5)};
    PQclear(r);
    if (k == 0) { /* no live standing: a player of the board's archives only, or of none */
        r = exec(c, "SELECT EXISTS (SELECT 1 FROM archive WHERE board_gen = $1 AND player_id = $2)", 2, p);
        if (!pg_ok(r)) {
            q_moved_free(m, 0);
            return failed(c, r, "player hide (archives)");
        }
        bool archived = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        if (!archived) {
            q_moved_free(m, 0);
            PQclear(PQexec(c, "ROLLBACK"));
            return Q_NOT_FOUND;
        }
    }
    if ((st = count_buckets(c, gen, player, m, k, -1, "player hide (rank buckets)")) != Q_OK ||
        (st = commit(c, "player hide commit")) != Q_OK) {
        q_moved_free(m, k);
        return st;
    }
    *out = m;
    *n = k;
    return Q_OK;
}

q_status_t q_player_restore(PGconn *c, int64_t gen, const char *player, int lock_wait_ms, q_moved_t **out,
                            size_t *n)
{
    *out = NULL;
    *n = 0;
    char g[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    q_status_t st = begin_locked(c, g, gen, player, lock_wait_ms, "player restore");
    if (st != Q_OK)
        return st;
    const char *p[] = {g, player};
    PGresult *r = exec(c, "DELETE FROM hidden_players WHERE board_gen = $1 AND player_id = $2 RETURNING 1", 2, p);
    if (!pg_ok(r))
        return failed(c, r, "player restore");
    bool was = PQntuples(r) == 1;
    PQclear(r);
    if (!was) {
        PQclear(PQexec(c, "ROLLBACK"));
        return Q_NOT_FOUND;
    }
    r = exec(c,
             /* A hidden standing of a window archived meanwhile stays where it is: that archive,
              * made while the player was hidden, is final, and a deletion of the player finds
              * which windows' log rows were never counted by these rows. */
             "WITH live AS (DELETE FROM hidden_standings WHERE board_gen = $1 AND player_id = $2"
             "   AND win = ANY(" LIVE_WINDOWS ")"
             "   RETURNING board_gen, win, player_id, score, sort_key, achieved_ms, metadata),"
             /* A new version: Redis holds the hide's tombstone, which an older one would not pass. */
             " st AS (INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)"
             "   SELECT board_gen, win, player_id, score, sort_key, achieved_ms, metadata, nextval('standing_version')"
             "   FROM live RETURNING win, sort_key, achieved_ms, metadata, version),"
             " lc AS (SELECT l.win, count(*) AS n FROM submissions l"
             "   WHERE l.board_gen = $1 AND l.player_id = $2 AND l.win IN (SELECT win FROM st) AND l.flagged IS NULL GROUP BY l.win),"
             " w AS (UPDATE window_counts c SET players = c.players + 1,"
             "   submissions = c.submissions + coalesce((SELECT n FROM lc WHERE lc.win = c.win), 0), seq = c.seq + 1"
             "   WHERE c.board_gen = $1 AND c.win IN (SELECT win FROM st) RETURNING c.win, c.seq),"
             /* Each window's first rank bucket and super (a window only the hidden player wrote to
              * has none yet): the buckets' statement after this one counts into them. */
             " fb AS (INSERT INTO rank_buckets (board_gen, win, lo_sk, lo_ms, lo_pid, n)"
             "   SELECT $1, win, -9223372036854775808, -9223372036854775808, '', 0 FROM st ON CONFLICT DO NOTHING),"
             " fs AS (INSERT INTO rank_supers (board_gen, win, lo_sk, lo_ms, lo_pid, n)"
             "   SELECT $1, win, -9223372036854775808, -9223372036854775808, '', 0 FROM st ON CONFLICT DO NOTHING)"
             /* As a write of a new standing tells it: the S line, then a W line with no old place. */
             " SELECT w.win - DATE '1970-01-01', st.version,"
             "  pg_notify('rankd_l1', 'S ' || $1 || ' ' || (w.win - DATE '1970-01-01') || ' ' || w.seq || ' 1 1'"
             "   || E'\\n' || 'W ' || $1 || ' ' || (w.win - DATE '1970-01-01') || ' - - ' || st.sort_key || ' '"
             "   || st.achieved_ms || ' ' || $2 || coalesce(' ' || st.metadata, '')),"
             "  st.sort_key, st.achieved_ms, w.seq, st.metadata"
             " FROM w JOIN st ON st.win = w.win ORDER BY 1",
             2, p);
    if (!pg_ok(r))
        return failed(c, r, "player restore");
    size_t k = (size_t)PQntuples(r);
    q_moved_t *m = xcalloc(k ? k : 1, sizeof *m);
    for (size_t i = 0; i < k; i++)
        m[i] = (q_moved_t){.day = col_i64(r, (int)i, 0), .version = col_i64(r, (int)i, 1),
                           .sort_key = col_i64(r, (int)i, 3), .achieved_ms = col_i64(r, (int)i, 4),
                           .seq = col_i64(r, (int)i, 5),
                           .metadata = PQgetisnull(r, (int)i, 6) ? NULL : xstrdup(PQgetvalue(r, (int)i, 6))};
    PQclear(r);
    if ((st = count_buckets(c, gen, player, m, k, 1, "player restore (rank buckets)")) != Q_OK ||
        (st = commit(c, "player restore commit")) != Q_OK) {
        q_moved_free(m, k);
        return st;
    }
    *out = m;
    *n = k;
    return Q_OK;
}

q_status_t q_hidden_list(PGconn *c, int64_t gen, int64_t after_ms, const char *after_player, int limit,
                         q_hidden_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char g[24], ms[24], lim[16];
    snprintf(g, sizeof g, "%" PRId64, gen);
    snprintf(ms, sizeof ms, "%" PRId64, after_ms);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {g, after_player ? ms : NULL, after_player, lim};
    PGresult *r = exec(c,
                       "SELECT player_id, (extract(epoch FROM hidden_at) * 1000)::bigint AS ms, reason"
                       " FROM hidden_players WHERE board_gen = $1 AND ($2::bigint IS NULL OR"
                       "  (hidden_at, player_id) > (timestamptz 'epoch' + $2::bigint * interval '1 millisecond', $3::text))"
                       " ORDER BY hidden_at, player_id LIMIT $4::int",
                       4, p);
    if (!pg_ok(r))
        return q_failed(c, r, "hidden players");
    size_t k = (size_t)PQntuples(r);
    q_hidden_t *h = xcalloc(k ? k : 1, sizeof *h);
    for (size_t i = 0; i < k; i++)
        h[i] = (q_hidden_t){.player = xstrdup(PQgetvalue(r, (int)i, 0)), .hidden_ms = col_i64(r, (int)i, 1),
                            .reason = PQgetisnull(r, (int)i, 2) ? NULL : xstrdup(PQgetvalue(r, (int)i, 2))};
    PQclear(r);
    *out = h;
    *n = k;
    return Q_OK;
}

void q_hidden_free(q_hidden_t *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].player);
        free(h[i].reason);
    }
    free(h);
}

q_status_t q_player_hidden(PGconn *c, int64_t gen, const char *player, bool *hidden, int64_t *hidden_ms)
{
    *hidden = false;
    *hidden_ms = 0;
    char g[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    const char *p[] = {g, player};
    PGresult *r = exec(c,
                       "SELECT (extract(epoch FROM hidden_at) * 1000)::bigint FROM hidden_players"
                       " WHERE board_gen = $1 AND player_id = $2",
                       2, p);
    if (!pg_ok(r))
        return q_failed(c, r, "hidden player");
    if (PQntuples(r) == 1) {
        *hidden = true;
        *hidden_ms = col_i64(r, 0, 0);
    }
    PQclear(r);
    return Q_OK;
}

/* The hidden standing of `player` in window `day` into `*out` (metadata owned); Q_NOT_FOUND when
 * none. Inside the caller's snapshot. */
static q_status_t hidden_standing(PGconn *c, const board_t *b, int64_t day, const char *player, entry_t *out)
{
    memset(out, 0, sizeof *out);
    char g[24], d[11];
    snprintf(g, sizeof g, "%" PRId64, b->gen);
    window_format_day(day, d);
    const char *p[] = {g, d, player};
    PGresult *r = exec(c,
                       "SELECT score, sort_key, achieved_ms, metadata FROM hidden_standings"
                       " WHERE board_gen = $1 AND win = $2::date AND player_id = $3",
                       3, p);
    if (!pg_ok(r))
        return q_failed(c, r, "own view");
    if (PQntuples(r) != 1) {
        PQclear(r);
        return Q_NOT_FOUND;
    }
    out->score = col_i64(r, 0, 0);
    out->sort_key = col_i64(r, 0, 1);
    out->achieved_ms = col_i64(r, 0, 2);
    out->metadata = PQgetisnull(r, 0, 3) ? NULL : xstrdup(PQgetvalue(r, 0, 3));
    PQclear(r);
    out->player_len = strlen(player);
    memcpy(out->player, player, out->player_len + 1); /* a valid id: at most PLAYER_ID_MAX bytes */
    return Q_OK;
}

/* The own view's rank of the hidden standing `me` in `style` (1 + the visible standings before
 * its place; competition: of a better score; dense: the better distinct scores), and the visible
 * total. Inside the caller's snapshot. */
static q_status_t own_rank(PGconn *c, const board_t *b, int64_t day, rank_style_t style, entry_t *me, int64_t *visible)
{
    order_pos_t pos;
    (void)order_pos_set(&pos, me->sort_key, me->achieved_ms, me->player, me->player_len);
    entries_t e;
    entries_init(&e);
    int64_t before = 0;
    q_status_t st = q_score(c, b, day, me->sort_key, &e);
    *visible = e.total;
    entries_clear(&e);
    if (st == Q_OK && style == RANK_ORDINAL)
        st = q_ranks_at(c, b, day, &pos, 1, &me->rank);
    else if (st == Q_OK && (st = q_rank_before(c, b, day, false, style == RANK_DENSE, me->sort_key, &before)) == Q_OK)
        me->rank = before + 1;
    return st;
}

q_status_t q_own_view(PGconn *c, const board_t *b, int64_t day, const char *player, rank_style_t style,
                      entry_t *out, int64_t *total)
{
    *total = 0;
    memset(out, 0, sizeof *out);
    q_status_t st = q_snapshot_begin(c);
    if (st != Q_OK)
        return st;
    int64_t visible = 0;
    if ((st = hidden_standing(c, b, day, player, out)) == Q_OK)
        st = own_rank(c, b, day, style, out, &visible);
    *total = visible + 1;
    q_status_t end = q_snapshot_end(c, st == Q_OK || st == Q_NOT_FOUND);
    if (st == Q_OK)
        st = end;
    if (st != Q_OK) {
        free(out->metadata);
        out->metadata = NULL;
    }
    return st;
}

/* The styled rank of visible entry `x` in the own view of `me` (not ordinal): its visible rank
 * in `style`, and one more when `me` is better (dense: with a score no visible standing holds,
 * `me_new`). `memo` holds the last sort key counted (entries come in rank order). */
static q_status_t styled_rank(PGconn *c, const board_t *b, int64_t day, rank_style_t style, const entry_t *me,
                              bool me_new, entry_t *x, int64_t memo[2], bool *memo_set)
{
    if (!*memo_set || memo[0] != x->sort_key) {
        int64_t before = 0;
        q_status_t st = q_rank_before(c, b, day, false, style == RANK_DENSE, x->sort_key, &before);
        if (st != Q_OK)
            return st;
        memo[0] = x->sort_key;
        memo[1] = before;
        *memo_set = true;
    }
    bool ahead = me->sort_key < x->sort_key && (style == RANK_COMPETITION || me_new);
    x->rank = 1 + memo[1] + (ahead ? 1 : 0);
    return Q_OK;
}

q_status_t q_own_around(PGconn *c, const board_t *b, int64_t day, const char *player, int before, int after,
                        rank_style_t style, entries_t *out)
{
    q_status_t st = q_snapshot_begin(c);
    if (st != Q_OK)
        return st;
    entry_t me;
    int64_t visible = 0, ordinal = 0;
    entries_t page;
    entries_init(&page);
    if ((st = hidden_standing(c, b, day, player, &me)) != Q_OK) {
        (void)q_snapshot_end(c, st == Q_NOT_FOUND);
        return st;
    }
    st = own_rank(c, b, day, RANK_ORDINAL, &me, &visible);
    ordinal = me.rank; /* 1 + the visible standings before its place */
    int64_t ahead = ordinal - 1, from = ahead > before ? ahead - before : 0;
    if (st == Q_OK)
        st = q_page_offset(c, b, day, (int)(ahead - from) + after, from, 0, &page);
    /* Dense: whether `me` brings a score of its own (no visible standing holds it). */
    bool me_new = false;
    if (st == Q_OK && style == RANK_DENSE) {
        entries_t at;
        entries_init(&at);
        int64_t strictly = 0;
        if ((st = q_score(c, b, day, me.sort_key, &at)) == Q_OK &&
            (st = q_rank_before(c, b, day, false, false, me.sort_key, &strictly)) == Q_OK)
            me_new = at.at_or_before == strictly;
        entries_clear(&at);
    }
    if (st == Q_OK && style != RANK_ORDINAL)
        st = own_rank(c, b, day, style, &me, &visible);
    int64_t memo[2] = {0, 0};
    bool memo_set = false;
    if (st == Q_OK) {
        out->total = visible + 1;
        entries_reserve(out, page.n + 1);
        bool placed = false;
        for (size_t i = 0; st == Q_OK && i <= page.n; i++) {
            entry_t *x = i < page.n ? &page.items[i] : NULL;
            bool after_me = x && x->rank > ahead; /* visible ranks past `ahead` come after its place */
            if (!placed && (!x || after_me)) {
                entries_push(out, me.rank, me.player, me.player_len, me.score, me.sort_key, me.achieved_ms,
                             me.metadata, me.metadata ? strlen(me.metadata) : 0);
                placed = true;
            }
            if (!x)
                break;
            entry_t *y = entries_push(out, x->rank + (after_me ? 1 : 0), x->player, x->player_len, x->score,
                                      x->sort_key, x->achieved_ms, x->metadata, x->metadata ? strlen(x->metadata) : 0);
            if (style != RANK_ORDINAL)
                st = styled_rank(c, b, day, style, &me, me_new, y, memo, &memo_set);
        }
    }
    free(me.metadata);
    entries_clear(&page);
    q_status_t end = q_snapshot_end(c, st == Q_OK);
    if (st == Q_OK)
        st = end;
    return st;
}
