/* store/queries.c — boards and ranked reads on PostgreSQL, one statement each. */
#include "store/pg_error.h"
#include "store/queries.h"

#include <inttypes.h>
#include <libpq-events.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/window.h"
#include "obs/log.h"
#include "store/pg_deadline.h"
#include "store/pg_pipeline.h"
#include "store/write_sql.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/clock.h"

q_status_t q_failed(PGconn *c, PGresult *r, const char *what)
{
    const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    q_status_t st = PQstatus(c) != CONNECTION_OK ? Q_UNAVAILABLE
                    : code && strcmp(code, "40001") == 0 ? Q_RETRY /* e.g. conflict with recovery */
                                                         : Q_ERROR;
    char pe[PG_ERROR_MAX];
    log_error(NULL, "%s failed: %s", what, pg_error_text(c, r, pe, sizeof pe));
    if (r)
        PQclear(r);
    return st;
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static PGresult *exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    return PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
}

typedef enum {
    QS_BOARD_GET,
    QS_BOARD_LIST,
    QS_WINDOW_PLAYERS,
    QS_WINDOW_COUNTS,
    QS_PAGE_TOP,
    QS_PAGE_OFFSET,
    QS_PAGE_AFTER,
    QS_PAGE_BEFORE,
    QS_PLAYERS,
    QS_AROUND,
    QS_STANDINGS,
    QS_STANDINGS_OWN,
    QS_A_PAGE_OFFSET,
    QS_A_PAGE_AFTER,
    QS_A_PAGE_BEFORE,
    QS_A_PLAYERS,
    QS_A_AROUND,
    QS_SCORE,
    QS_A_SCORE,
    QS_BEFORE,
    QS_BEFORE_DISTINCT,
    QS_A_BEFORE,
    QS_A_BEFORE_DISTINCT,
    QS_COUNT, /* at most 32: one bit each in a connection's mask */
} q_stmt_t;

/* Run read statement `id` by name (its text when this connection could not prepare it). */
static PGresult *exec_read(PGconn *c, q_stmt_t id, const char *const *params);
static void ids_array(buf_t *arr, const char *const *ids, size_t n);

/* ---------------------------------------------------------------- boards */

#define BOARD_COLS                                                                                   \
    "id, gen, title, sort, operator, reset, metadata, min_score, max_score, created_ms, tournament, t_start_ms," \
    " t_end_ms, t_duration_s, t_max_players, t_max_attempts, t_join_required, t_category, cohort_size, tiers::text," \
    " webhook_url, client_writes, cr_max_per_minute, cr_max_rise_per_s"

/* A tournament's rules from BOARD_COLS' columns 10 to 17 (migrations/0018_tournaments.sql). */
static void tournament_from_row(const PGresult *r, int row, tournament_t *t)
{
    memset(t, 0, sizeof *t);
    t->on = PQgetvalue(r, row, 10)[0] == 't';
    if (!t->on)
        return;
    t->once = !PQgetisnull(r, row, 11);
    t->start_ms = t->once ? col_i64(r, row, 11) : 0;
    t->end_ms = t->once ? col_i64(r, row, 12) : 0;
    t->duration_s = t->once ? 0 : col_i64(r, row, 13);
    t->max_players = PQgetisnull(r, row, 14) ? 0 : col_i64(r, row, 14);
    t->max_attempts = PQgetisnull(r, row, 15) ? 0 : col_i64(r, row, 15);
    t->join_required = PQgetvalue(r, row, 16)[0] == 't';
    snprintf(t->category, sizeof t->category, "%s", PQgetisnull(r, row, 17) ? "" : PQgetvalue(r, row, 17));
}

static void board_from_row(const PGresult *r, int row, board_t *b)
{
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%s", PQgetvalue(r, row, 0));
    b->gen = col_i64(r, row, 1);
    b->title = xstrdup(PQgetvalue(r, row, 2));
    /* The table's CHECK constraints allow these names only; a newer version's would be refused
     * here, and the board read as the defaults (logged). */
    if (!board_sort_parse(PQgetvalue(r, row, 3), &b->sort) || !board_op_parse(PQgetvalue(r, row, 4), &b->op) ||
        !board_reset_parse(PQgetvalue(r, row, 5), &b->reset))
        log_error(NULL, "board %s has a sort, operator or reset this version does not know", b->id);
    b->metadata = PQgetisnull(r, row, 6) ? NULL : xstrdup(PQgetvalue(r, row, 6));
    b->has_min_score = !PQgetisnull(r, row, 7);
    b->min_score = b->has_min_score ? col_i64(r, row, 7) : 0;
    b->has_max_score = !PQgetisnull(r, row, 8);
    b->max_score = b->has_max_score ? col_i64(r, row, 8) : 0;
    b->created_ms = col_i64(r, row, 9);
    tournament_from_row(r, row, &b->tournament);
    /* A league's rules: columns 18 and 19 (migrations/0019_leagues.sql). */
    b->league.on = !PQgetisnull(r, row, 18);
    if (b->league.on) {
        b->league.size = (int)col_i64(r, row, 18);
        if (!league_tiers_parse(PQgetvalue(r, row, 19), &b->league))
            log_error(NULL, "board %s has tiers this version cannot read", b->id);
    }
    b->webhook_url = PQgetisnull(r, row, 20) ? NULL : xstrdup(PQgetvalue(r, row, 20));
    b->client_writes = PQgetvalue(r, row, 21)[0] == 't'; /* migrations/0024_player_tokens.sql */
    /* migrations/0026_client_rules.sql */
    b->max_submissions_per_minute = PQgetisnull(r, row, 22) ? 0 : (int32_t)col_i64(r, row, 22);
    b->max_rise_per_second = PQgetisnull(r, row, 23) ? 0 : strtod(PQgetvalue(r, row, 23), NULL);
}

q_status_t q_board_get(PGconn *c, const char *id, board_t *out)
{
    const char *p[] = {id};
    PGresult *r = exec_read(c, QS_BOARD_GET, p);
    if (!pg_ok(r))
        return q_failed(c, r, "board get");
    q_status_t st = Q_NOT_FOUND;
    if (PQntuples(r) == 1) {
        board_from_row(r, 0, out);
        st = Q_OK;
    }
    PQclear(r);
    return st;
}

q_status_t q_board_create(PGconn *c, const board_t *def, int64_t now_ms, board_t *out, bool *created)
{
    char minv[24], maxv[24], created_at[24];
    snprintf(minv, sizeof minv, "%" PRId64, def->min_score);
    snprintf(maxv, sizeof maxv, "%" PRId64, def->max_score);
    snprintf(created_at, sizeof created_at, "%" PRId64, now_ms);
    const tournament_t *t = &def->tournament;
    char start[24], end[24], dur[24], maxp[24], maxa[24], none_win[11];
    snprintf(start, sizeof start, "%" PRId64, t->start_ms);
    snprintf(end, sizeof end, "%" PRId64, t->end_ms);
    snprintf(dur, sizeof dur, "%" PRId64, t->duration_s);
    snprintf(maxp, sizeof maxp, "%" PRId64, t->max_players);
    snprintf(maxa, sizeof maxa, "%" PRId64, t->max_attempts);
    window_format_day(board_window_rule(def).none_day, none_win);
    char size[16];
    snprintf(size, sizeof size, "%d", def->league.size);
    char *tiers = def->league.on ? league_tiers_json(&def->league) : NULL;
    char per_minute[16], rise[32];
    snprintf(per_minute, sizeof per_minute, "%d", (int)def->max_submissions_per_minute);
    snprintf(rise, sizeof rise, "%.17g", def->max_rise_per_second);
    const char *p[] = {def->id, def->title, board_sort_name(def->sort), board_op_name(def->op),
                       board_reset_name(def->reset), def->metadata, def->has_min_score ? minv : NULL,
                       def->has_max_score ? maxv : NULL, created_at, t->on ? "t" : "f",
                       t->on && t->once ? start : NULL, t->on && t->once ? end : NULL,
                       t->on && !t->once ? dur : NULL, t->max_players > 0 ? maxp : NULL,
                       t->max_attempts > 0 ? maxa : NULL, t->join_required ? "t" : "f",
                       t->on && t->category[0] ? t->category : NULL, none_win, def->league.on ? size : NULL, tiers,
                       def->webhook_url, def->webhook_url ? def->webhook_secret : NULL,
                       def->client_writes ? "t" : "f", def->max_submissions_per_minute > 0 ? per_minute : NULL,
                       def->max_rise_per_second > 0 ? rise : NULL};
    PGresult *r = exec(c,
                       "INSERT INTO boards (id, title, sort, operator, reset, metadata, min_score, max_score, created_ms,"
                       " tournament, t_start_ms, t_end_ms, t_duration_s, t_max_players, t_max_attempts, t_join_required,"
                       " t_category, none_win, cohort_size, tiers, webhook_url, webhook_secret, client_writes, cr_max_per_minute,"
                       " cr_max_rise_per_s)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,"
                       " $21, $22, $23, $24, $25)"
                       " ON CONFLICT (id) DO NOTHING RETURNING " BOARD_COLS,
                       25, p);
    free(tiers);
    if (!pg_ok(r))
        return q_failed(c, r, "board create");
    if (PQntuples(r) == 1) {
        board_from_row(r, 0, out);
        PQclear(r);
        *created = true;
        return Q_OK;
    }
    PQclear(r);
    *created = false;
    q_status_t st = q_board_get(c, def->id, out);
    if (st == Q_NOT_FOUND) /* deleted between the two statements */
        return Q_CONFLICT;
    if (st != Q_OK)
        return st;
    if (!board_same_definition(def, out)) {
        board_clear(out);
        return Q_CONFLICT;
    }
    return Q_OK;
}

q_status_t q_board_patch(PGconn *c, const char *id, const char *title, const char *metadata, bool clear_metadata,
                         int client_writes, const q_rules_patch_t *rules, board_t *out)
{
    char per_minute[16], rise[32];
    snprintf(per_minute, sizeof per_minute, "%d", rules ? (int)rules->max_submissions_per_minute : 0);
    snprintf(rise, sizeof rise, "%.17g", rules ? rules->max_rise_per_second : 0.0);
    const char *p[] = {id, title, metadata, clear_metadata ? "t" : "f",
                       client_writes < 0 ? NULL : client_writes ? "t" : "f",
                       rules && rules->set_per_minute ? "t" : "f", rules && rules->max_submissions_per_minute > 0 ? per_minute : NULL,
                       rules && rules->set_rise ? "t" : "f", rules && rules->max_rise_per_second > 0 ? rise : NULL};
    PGresult *r = exec(c,
                       "UPDATE boards SET title = coalesce($2, title),"
                       " metadata = CASE WHEN $4::boolean THEN NULL ELSE coalesce($3, metadata) END,"
                       " client_writes = coalesce($5::boolean, client_writes),"
                       " cr_max_per_minute = CASE WHEN $6::boolean THEN $7::integer ELSE cr_max_per_minute END,"
                       " cr_max_rise_per_s = CASE WHEN $8::boolean THEN $9::double precision ELSE cr_max_rise_per_s END"
                       " WHERE id = $1 RETURNING " BOARD_COLS,
                       9, p);
    if (!pg_ok(r))
        return q_failed(c, r, "board patch");
    q_status_t st = Q_NOT_FOUND;
    if (PQntuples(r) == 1) {
        board_from_row(r, 0, out);
        st = Q_OK;
    }
    PQclear(r);
    return st;
}

/* A statement `r` of a deletion's transaction failed: roll back, say why. */
static q_status_t delete_failed(PGconn *c, PGresult *r, const char *what)
{
    q_status_t st = q_failed(c, r, what);
    PQclear(PQexec(c, "ROLLBACK"));
    return st;
}

/*
 * In one transaction, locks taken in the order writers and player deletions take them: the
 * board (writers hold it FOR KEY SHARE), its standings, then its window counters, as a rank
 * re-cut takes them. The counters are locked by a statement of their own, so that the next
 * statement's snapshot holds every bucket or super a re-cut committed meanwhile: one statement
 * alone would miss those and leave them for ever. A re-cut that comes later finds no counter and
 * changes nothing.
 */
q_status_t q_board_delete(PGconn *c, const char *id, int64_t *gen)
{
    const char *p[] = {id};
    /* One statement, one transaction: the board's row goes (writers hold it FOR KEY SHARE, so
     * none is in flight when this commits, and none can begin), and the rest is queued for the
     * upkeep leader (migrations/0015_board_purges.sql): a board of millions of rows is deleted
     * as fast as one of ten. */
    PGresult *r = exec(c,
                       "WITH b AS (DELETE FROM boards WHERE id = $1 RETURNING gen),"
                       /* What is left to purge, from its counters (migrations/0023_purge_progress.sql). */
                       " n AS (SELECT coalesce(sum(w.players), 0) AS players, coalesce(sum(w.submissions), 0) AS subs"
                       "   FROM window_counts w, b WHERE w.board_gen = b.gen),"
                       " q AS (INSERT INTO board_purges (board_gen, rows_left) SELECT gen, players FROM b, n),"
                       /* The log rows go a range of blocks at a time (store/purge.c). */
                       " l AS (INSERT INTO log_purges (board_gen, rows_left) SELECT gen, subs FROM b, n)"
                       " SELECT gen, pg_notify('rankd_l1', 'B ' || gen) FROM b",
                       1, p);
    if (!pg_ok(r))
        return q_failed(c, r, "board delete");
    if (PQntuples(r) != 1) {
        PQclear(r);
        return Q_NOT_FOUND;
    }
    *gen = col_i64(r, 0, 0);
    PQclear(r);
    return Q_OK;
}

/* The boards of a list's result `r` (BOARD_COLS) into *out (the caller's, board_clear each);
 * frees `r`. */
static q_status_t boards_of(PGconn *c, PGresult *r, const char *what, board_t **out, size_t *n)
{
    if (!pg_ok(r))
        return q_failed(c, r, what);
    *n = (size_t)PQntuples(r);
    *out = xcalloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++)
        board_from_row(r, (int)i, &(*out)[i]);
    PQclear(r);
    return Q_OK;
}

q_status_t q_board_list(PGconn *c, const char *after_id, int limit, board_t **out, size_t *n)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {after_id ? after_id : "", lim};
    return boards_of(c, exec_read(c, QS_BOARD_LIST, p), "board list", out, n);
}

q_status_t q_board_list_tournaments(PGconn *c, const char *after_id, int limit, const char *category, board_t **out,
                                    size_t *n)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {after_id ? after_id : "", lim, category};
    PGresult *r = exec(c,
                       "SELECT " BOARD_COLS " FROM boards WHERE id > $1 AND tournament"
                       " AND ($3::text IS NULL OR t_category = $3) ORDER BY id LIMIT $2",
                       3, p);
    return boards_of(c, r, "tournament list", out, n);
}

q_status_t q_window_players(PGconn *c, int64_t gen, int64_t day, int64_t *players)
{
    char g[24], d[11];
    snprintf(g, sizeof g, "%" PRId64, gen);
    window_format_day(day, d);
    const char *p[] = {g, d};
    PGresult *r = exec_read(c, QS_WINDOW_PLAYERS, p);
    if (!pg_ok(r))
        return q_failed(c, r, "window players");
    *players = PQntuples(r) == 1 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    return Q_OK;
}

q_status_t q_windows_players(PGconn *c, const int64_t *gens, const int64_t *days, const bool *entrants, size_t n,
                             int64_t *players)
{
    memset(players, 0, n * sizeof *players);
    if (n == 0)
        return Q_OK;
    pg_arrays_t as;
    pg_arrays_open(&as, 3);
    for (size_t i = 0; i < n; i++) {
        pg_arr_i64(&as.a[0], gens[i]);
        pg_arr_day(&as.a[1], days[i]);
        pg_arr_i64(&as.a[2], entrants[i]);
    }
    const char *p[3];
    pg_arrays_close(&as, p);
    PGresult *r = exec(c,
                       "SELECT u.i, CASE WHEN u.slot = 1 THEN t.entrants ELSE w.players END"
                       " FROM unnest($1::bigint[], $2::date[], $3::int[]) WITH ORDINALITY AS u(gen, win, slot, i)"
                       " LEFT JOIN window_counts w ON u.slot = 0 AND w.board_gen = u.gen AND w.win = u.win"
                       " LEFT JOIN tournament_slots t ON u.slot = 1 AND t.board_gen = u.gen AND t.win = u.win",
                       3, p);
    pg_arrays_free(&as);
    if (!pg_ok(r))
        return q_failed(c, r, "windows players");
    for (int k = 0; k < PQntuples(r); k++) {
        int64_t i = col_i64(r, k, 0) - 1;
        if (i >= 0 && (size_t)i < n && !PQgetisnull(r, k, 1))
            players[i] = col_i64(r, k, 1);
    }
    PQclear(r);
    return Q_OK;
}

q_status_t q_window_seq(PGconn *c, int64_t gen, int64_t day, int64_t *seq)
{
    return q_window_seqs(c, &gen, &day, 1, seq);
}

q_status_t q_window_seqs(PGconn *c, const int64_t *gens, const int64_t *days, size_t n, int64_t *seqs)
{
    pg_arrays_t as;
    pg_arrays_open(&as, 2);
    for (size_t i = 0; i < n; i++) {
        pg_arr_i64(&as.a[0], gens[i]);
        pg_arr_day(&as.a[1], days[i]);
        seqs[i] = 0;
    }
    const char *p[2];
    pg_arrays_close(&as, p);
    PGresult *r = exec(c,
                       "SELECT u.i - 1, w.seq FROM unnest($1::bigint[], $2::date[]) WITH ORDINALITY AS u(g, d, i)"
                       " JOIN window_counts w ON w.board_gen = u.g AND w.win = u.d",
                       2, p);
    pg_arrays_free(&as);
    if (!pg_ok(r))
        return q_failed(c, r, "window numbers");
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t i = col_i64(r, row, 0);
        if (i >= 0 && (size_t)i < n)
            seqs[i] = col_i64(r, row, 1);
    }
    PQclear(r);
    return Q_OK;
}

q_status_t q_window_counts(PGconn *c, int64_t gen, const int64_t *days, size_t n, int64_t *players,
                           int64_t *submissions)
{
    char g[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    buf_t arr;
    buf_init(&arr);
    buf_putc(&arr, '{');
    for (size_t i = 0; i < n; i++) {
        char d[11];
        window_format_day(days[i], d);
        if (i)
            buf_putc(&arr, ',');
        buf_puts(&arr, d);
        players[i] = submissions[i] = 0;
    }
    buf_putc(&arr, '}');
    const char *p[] = {g, arr.data};
    PGresult *r = exec_read(c, QS_WINDOW_COUNTS, p);
    buf_free(&arr);
    if (!pg_ok(r))
        return q_failed(c, r, "window counts");
    for (int row = 0; row < PQntuples(r); row++) {
        int64_t i = col_i64(r, row, 0) - 1;
        if (i >= 0 && (size_t)i < n) {
            players[i] = col_i64(r, row, 1);
            submissions[i] = col_i64(r, row, 2);
        }
    }
    PQclear(r);
    return Q_OK;
}

/* ---------------------------------------------------------------- ranked reads */

#define TOTAL_SQL "(SELECT coalesce((SELECT players FROM window_counts WHERE board_gen = $1 AND win = $2), 0) AS total)"
#define ENTRY_COLS "player_id, score, sort_key, achieved_ms, metadata"
#define RANK_ORDER "sort_key, achieved_ms, player_id"
#define RANK_ORDER_DESC "sort_key DESC, achieved_ms DESC, player_id DESC"

/*
 * The rank of row `y` in window ($1, $2): one plus the standings before it, from the window's
 * rank buckets and supers (migrations/0010_rank_supers.sql) in about 3 players^(1/3) rows, in the
 * statement's snapshot, so exact with the total beside it.
 */
#define RANK_OF_Y "(rankd_rank_before($1, $2, y.sort_key, y.achieved_ms, y.player_id) + 1)"
/* The standings at or before the cursor position ($3, $4, $5), which need not be a standing now. */
#define AT_OR_BEFORE_CURSOR                                                                          \
    "(rankd_rank_before($1, $2, $3, $4, $5) + (SELECT count(*) FROM standings WHERE board_gen = $1"  \
    " AND win = $2 AND player_id = $5 AND sort_key = $3 AND achieved_ms = $4))"

/*
 * A closed window's reads, from its archive: a rank is a stored number. Each returns one row
 * per entry (total, entry columns, rank), one row with null entry columns when none matches,
 * and no row at all when the window is not archived (yet): the caller then reads `standings`.
 */
#define ARCHIVE_READ(inner)                                                                          \
    "SELECT aw.players, (extract(epoch FROM aw.archived_at) * 1000)::bigint, a.*"                \
    " FROM archived_windows aw LEFT JOIN LATERAL (" inner ") a ON true"                           \
    " WHERE aw.board_gen = $1 AND aw.win = $2"                                                     \
    ARCHIVE_VISIBLE
/* A plan made while the archive's partition was being attached may not hold it, though the
 * statement's snapshot, taken a moment later, sees its archived_windows row: such a read counts
 * as "not archived yet" and reads `standings`, which stay until well after the archive. */
#define ARCHIVE_VISIBLE " AND (aw.players = 0 OR EXISTS (SELECT 1 FROM archive x WHERE x.board_gen = $1 AND x.win = $2))"
#define ARCHIVE_ROWS "SELECT " ENTRY_COLS ", rank FROM archive WHERE board_gen = $1 AND win = $2"
/* A player ($1) on every board's current window as of $2 (ms): board, day, entry columns, rank,
 * total, gen, a league board's tiers; `tail` adds rows and orders them. */
#define STANDINGS_SQL(tail)                                                                                        \
    "WITH t AS (SELECT (timestamptz 'epoch' + $2::bigint * interval '1 millisecond') AT TIME ZONE 'UTC' AS ts),"  \
    " cur AS (SELECT b.id, b.gen, CASE b.reset WHEN 'none' THEN b.none_win"                                       \
    "   WHEN 'daily' THEN t.ts::date WHEN 'weekly' THEN date_trunc('week', t.ts)::date"                           \
    "   ELSE date_trunc('month', t.ts)::date END AS win,"                                                         \
    "   CASE WHEN b.cohort_size IS NOT NULL THEN b.tiers::text END AS tiers FROM boards b, t)"                   \
    " SELECT cur.id, s.win - DATE '1970-01-01', s.player_id, s.score, s.sort_key, s.achieved_ms, s.metadata,"    \
    "  rankd_rank_before(s.board_gen, s.win, s.sort_key, s.achieved_ms, s.player_id) + 1,"                        \
    "  coalesce((SELECT players FROM window_counts w WHERE w.board_gen = s.board_gen AND w.win = s.win), 0),"     \
    "  cur.gen, cur.tiers"                                                                                        \
    " FROM cur JOIN standings s ON s.board_gen = cur.gen AND s.win = cur.win AND s.player_id = $1" tail

/*
 * The read statements, each prepared once per connection (exec_read): parsing and planning
 * cost PostgreSQL more than running most of them.
 */
static const struct {
    const char *name;
    int nparams;
    const char *sql;
} read_stmts[QS_COUNT] = {
    [QS_BOARD_GET] = {"rankd_board_get", 1,
        "SELECT " BOARD_COLS " FROM boards WHERE id = $1"},
    [QS_BOARD_LIST] = {"rankd_board_list", 2,
        "SELECT " BOARD_COLS " FROM boards WHERE id > $1 ORDER BY id LIMIT $2"},
    [QS_WINDOW_PLAYERS] = {"rankd_window_players", 2,
        "SELECT players FROM window_counts WHERE board_gen = $1 AND win = $2"},
    [QS_WINDOW_COUNTS] = {"rankd_window_counts", 2,
        /* An archived window's counts are in its archive's record (its standings go). */
        "SELECT u.i, coalesce(a.players, w.players), coalesce(a.submissions, w.submissions)"
        " FROM unnest($2::date[]) WITH ORDINALITY AS u(win, i)"
        " LEFT JOIN archived_windows a ON a.board_gen = $1 AND a.win = u.win"
        " LEFT JOIN window_counts w ON w.board_gen = $1 AND w.win = u.win"
        " WHERE a.board_gen IS NOT NULL OR w.board_gen IS NOT NULL"},
    [QS_PAGE_TOP] = {"rankd_page_top", 4,
        "SELECT t.total, s.* FROM " TOTAL_SQL " t LEFT JOIN LATERAL (SELECT " ENTRY_COLS
        " FROM standings WHERE board_gen = $1 AND win = $2 ORDER BY " RANK_ORDER
        " LIMIT $3 OFFSET $4) s ON true"},
    [QS_PAGE_OFFSET] = {"rankd_page_offset", 4,
        /* From the bucket that holds the offset: the offset inside it is under a bucket's size. */
        "WITH k AS (SELECT * FROM rankd_rank_bucket_at($1, $2, $4))"
        " SELECT t.total, s.* FROM " TOTAL_SQL " t LEFT JOIN LATERAL (SELECT " ENTRY_COLS
        " FROM standings WHERE board_gen = $1 AND win = $2"
        " AND (" RANK_ORDER ") >= ((SELECT lo_sk FROM k), (SELECT lo_ms FROM k), (SELECT lo_pid FROM k))"
        " ORDER BY " RANK_ORDER " LIMIT $3 OFFSET $4::bigint - (SELECT before FROM k)) s ON true"},
    [QS_PAGE_AFTER] = {"rankd_page_after", 6,
        "SELECT t.total, " AT_OR_BEFORE_CURSOR ", s.* FROM " TOTAL_SQL
        " t LEFT JOIN LATERAL (SELECT " ENTRY_COLS " FROM standings WHERE board_gen = $1 AND win = $2"
        " AND (" RANK_ORDER ") > ($3::bigint, $4::bigint, $5::text) ORDER BY " RANK_ORDER " LIMIT $6) s ON true"},
    [QS_PAGE_BEFORE] = {"rankd_page_before", 6,
        "SELECT t.total, rankd_rank_before($1, $2, $3, $4, $5), s.* FROM " TOTAL_SQL
        " t LEFT JOIN LATERAL (SELECT " ENTRY_COLS " FROM standings WHERE board_gen = $1 AND win = $2"
        " AND (" RANK_ORDER ") < ($3::bigint, $4::bigint, $5::text) ORDER BY " RANK_ORDER_DESC " LIMIT $6) s ON true"},
    /* A join on the ids, as the writer's read (store/write_sql.c), not `player_id = ANY($3)`: a
     * generic plan made while the window was empty took standings_rank on (board_gen, win), in
     * rank order, with the ids as a filter. Planned without statistics the join hashes the
     * window instead (50-100 ms a rank at 300,000 players right after a bulk load), until the
     * upkeep leader's ANALYZE (upkeep_analyze) invalidates it: with statistics, a lookup by
     * primary key per id (e2e test_plans). The rank order is applied after the lookups
     * (MATERIALIZED), so no plan can get it from walking that index. */
    [QS_PLAYERS] = {"rankd_players", 3,
        "WITH y AS MATERIALIZED (SELECT " ENTRY_COLS ", " RANK_OF_Y " AS rank"
        " FROM standings y JOIN (SELECT DISTINCT p FROM unnest($3::text[]) AS i(p)) u"
        " ON y.board_gen = $1 AND y.win = $2 AND y.player_id = u.p)"
        " SELECT t.total, s.* FROM " TOTAL_SQL " t LEFT JOIN LATERAL (SELECT * FROM y"
        " ORDER BY " RANK_ORDER ") s ON true"},
    [QS_AROUND] = {"rankd_around", 5,
        "WITH me AS (SELECT " ENTRY_COLS ", " RANK_OF_Y " AS rnk"
        " FROM standings y WHERE y.board_gen = $1 AND y.win = $2 AND y.player_id = $3)"
        " SELECT t.total, s.* FROM " TOTAL_SQL " t LEFT JOIN LATERAL ("
        /* LATERAL: the player's position bounds each index scan (joined, the planner may walk the
         * index from an end and filter, O(rank)). */
        "  SELECT 0 AS k, me.* FROM me"
        "  UNION ALL SELECT -1, a.*, 0 FROM me, LATERAL (SELECT " ENTRY_COLS " FROM standings x"
        "   WHERE x.board_gen = $1 AND x.win = $2 AND (x.sort_key, x.achieved_ms, x.player_id) <"
        "   (me.sort_key, me.achieved_ms, me.player_id) ORDER BY x.sort_key DESC, x.achieved_ms DESC,"
        "   x.player_id DESC LIMIT $4) a"
        "  UNION ALL SELECT 1, b.*, 0 FROM me, LATERAL (SELECT " ENTRY_COLS " FROM standings x"
        "   WHERE x.board_gen = $1 AND x.win = $2 AND (x.sort_key, x.achieved_ms, x.player_id) >"
        "   (me.sort_key, me.achieved_ms, me.player_id) ORDER BY x.sort_key, x.achieved_ms, x.player_id LIMIT $5) b"
        " ) s ON true"},
    [QS_STANDINGS] = {"rankd_standings", 2, STANDINGS_SQL(" ORDER BY 1")},
    /* The player's own view: with the standings a moderator hid, ranked among the visible players
     * (migrations/0025_moderation.sql); not on a league board, whose cohorts leave them out. */
    [QS_STANDINGS_OWN] = {"rankd_standings_own", 2,
        STANDINGS_SQL(" UNION ALL SELECT cur.id, h.win - DATE '1970-01-01', h.player_id, h.score, h.sort_key,"
                      "  h.achieved_ms, h.metadata,"
                      "  rankd_rank_before(h.board_gen, h.win, h.sort_key, h.achieved_ms, h.player_id) + 1,"
                      "  coalesce((SELECT players FROM window_counts w WHERE w.board_gen = h.board_gen"
                      "   AND w.win = h.win), 0) + 1, cur.gen, cur.tiers"
                      " FROM cur JOIN hidden_standings h ON h.board_gen = cur.gen AND h.win = cur.win"
                      "  AND h.player_id = $1 AND cur.tiers IS NULL"
                      " ORDER BY 1")},
    [QS_A_PAGE_OFFSET] = {"rankd_archive_page_offset", 4,
        ARCHIVE_READ(ARCHIVE_ROWS " AND rank > $4::bigint AND rank <= $4::bigint + $3::bigint ORDER BY rank")},
    [QS_A_PAGE_AFTER] = {"rankd_archive_page_after", 6,
        ARCHIVE_READ(ARCHIVE_ROWS " AND (" RANK_ORDER ") > ($3::bigint, $4::bigint, $5::text)"
                     " ORDER BY " RANK_ORDER " LIMIT $6")},
    [QS_A_PAGE_BEFORE] = {"rankd_archive_page_before", 6,
        ARCHIVE_READ(ARCHIVE_ROWS " AND (" RANK_ORDER ") < ($3::bigint, $4::bigint, $5::text)"
                     " ORDER BY " RANK_ORDER_DESC " LIMIT $6")},
    [QS_A_PLAYERS] = {"rankd_archive_players", 3,
        ARCHIVE_READ(ARCHIVE_ROWS " AND player_id = ANY($3::text[]) ORDER BY rank")},
    /* Standings with sort key $3 or a better one: every position before ($3 + 1, the earliest
     * time, the smallest id), from the rank buckets as a player's rank. */
    [QS_SCORE] = {"rankd_score", 3,
        "SELECT t.total, rankd_rank_before($1, $2, $3::bigint + 1, -9223372036854775808, '') FROM " TOTAL_SQL " t"},
    /* The same in an archive: its rows of the window, counted (closed windows are read rarely). */
    [QS_A_SCORE] = {"rankd_archive_score", 3,
        ARCHIVE_READ("SELECT count(*) FROM archive WHERE board_gen = $1 AND win = $2 AND sort_key <= $3::bigint")},
    /* Rank styles (core/rank_style.h): the standings before sort key $3, from the rank buckets;
     * the distinct sort keys before it, one index probe each (a loose scan of standings_rank). */
    [QS_BEFORE] = {"rankd_before", 3, "SELECT rankd_rank_before($1, $2, $3, -9223372036854775808, '')"},
    [QS_BEFORE_DISTINCT] = {"rankd_before_distinct", 3,
        "WITH RECURSIVE d(k) AS ("
        " SELECT (SELECT sort_key FROM standings WHERE board_gen = $1 AND win = $2 ORDER BY sort_key LIMIT 1)"
        " UNION ALL SELECT (SELECT sort_key FROM standings WHERE board_gen = $1 AND win = $2 AND sort_key > d.k"
        "  ORDER BY sort_key LIMIT 1) FROM d WHERE d.k < $3)"
        " SELECT count(*) FROM d WHERE k < $3"},
    [QS_A_BEFORE] = {"rankd_archive_before", 3,
        ARCHIVE_READ("SELECT count(*) FROM archive WHERE board_gen = $1 AND win = $2 AND sort_key < $3::bigint")},
    [QS_A_BEFORE_DISTINCT] = {"rankd_archive_before_distinct", 3,
        ARCHIVE_READ("SELECT count(DISTINCT sort_key) FROM archive WHERE board_gen = $1 AND win = $2"
                     " AND sort_key < $3::bigint")},
    [QS_A_AROUND] = {"rankd_archive_around", 5,
        ARCHIVE_READ("SELECT x.player_id, x.score, x.sort_key, x.achieved_ms, x.metadata, x.rank"
                     " FROM archive me JOIN archive x ON x.board_gen = $1 AND x.win = $2"
                     " AND x.rank BETWEEN me.rank - $4::bigint AND me.rank + $5::bigint"
                     " WHERE me.board_gen = $1 AND me.win = $2 AND me.player_id = $3 ORDER BY x.rank")},
};

/* The statements prepared on a connection, a bit each: libpq instance data of the connection,
 * freed with it. */
static int stmt_event(PGEventId event, void *info, void *pass)
{
    (void)pass;
    if (event == PGEVT_CONNDESTROY) {
        PGconn *c = ((PGEventConnDestroy *)info)->conn;
        free(PQinstanceData(c, stmt_event));
    } else if (event == PGEVT_CONNRESET) {
        uint32_t *mask = PQinstanceData(((PGEventConnReset *)info)->conn, stmt_event);
        if (mask)
            *mask = 0; /* a reset connection is a new session: nothing is prepared */
    }
    return 1;
}

static uint32_t *prepared_mask(PGconn *c)
{
    uint32_t *mask = PQinstanceData(c, stmt_event);
    if (!mask && PQregisterEventProc(c, stmt_event, "rankd statements", NULL)) {
        mask = xcalloc(1, sizeof *mask);
        if (!PQsetInstanceData(c, stmt_event, mask)) {
            free(mask);
            mask = NULL;
        }
    }
    return mask;
}

/*
 * Prepared on first use on each connection (not when it opens: preparing takes a lock on every
 * table a statement reads, and one locked table would then hold up every new connection).
 * Inside a transaction a statement not yet prepared runs as text, so that a failed PREPARE
 * cannot abort it.
 */
/* Statements slower than this many ms are logged (q_set_slow_ms; 0 = none): one value for the
 * process, set at start, read by every thread, hence atomic. */
static atomic_int slow_ms;

void q_set_slow_ms(int ms)
{
    atomic_store(&slow_ms, ms);
}

void q_log_if_slow(PGconn *c, const char *what, int64_t started_ms)
{
    int limit = atomic_load(&slow_ms);
    int64_t took = clock_mono_ms() - started_ms;
    if (limit > 0 && took >= limit) {
        /* host:port when libpq knows them (a Unix socket has a path for a host, and may have no port) */
        const char *host = c ? PQhost(c) : NULL, *port = c ? PQport(c) : NULL;
        log_warn(NULL, "slow statement %s on %s%s%s: %lld ms", what, host && *host ? host : "the primary",
                 host && *host && port && *port ? ":" : "", host && *host && port && *port ? port : "",
                 (long long)took);
    }
}

static PGresult *exec_read_timed(PGconn *c, q_stmt_t id, const char *const *params);

static PGresult *exec_read(PGconn *c, q_stmt_t id, const char *const *params)
{
    int64_t t0 = clock_mono_ms();
    pg_deadline_arm_statement(c, 2); /* a prepare, then the statement */
    PGresult *r = exec_read_timed(c, id, params);
    pg_deadline_disarm(c);
    q_log_if_slow(c, read_stmts[id].name, t0);
    return r;
}

static PGresult *exec_read_timed(PGconn *c, q_stmt_t id, const char *const *params)
{
    uint32_t bit = 1u << id;
    uint32_t *mask = prepared_mask(c);
    if (mask && !(*mask & bit) && PQtransactionStatus(c) == PQTRANS_IDLE) {
        PGresult *p = PQprepare(c, read_stmts[id].name, read_stmts[id].sql, read_stmts[id].nparams, NULL);
        if (PQresultStatus(p) == PGRES_COMMAND_OK)
            *mask |= bit;
        PQclear(p);
    }
    if (!mask || !(*mask & bit))
        return PQexecParams(c, read_stmts[id].sql, read_stmts[id].nparams, NULL, params, NULL, NULL, 0);
    PGresult *r = PQexecPrepared(c, read_stmts[id].name, read_stmts[id].nparams, params, NULL, NULL, 0);
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (code && strcmp(code, "26000") == 0 && PQtransactionStatus(c) == PQTRANS_IDLE) {
        /* Gone from the session (DISCARD ALL behind a pooler): as text now, prepared next time. */
        *mask &= ~bit;
        PQclear(r);
        r = PQexecParams(c, read_stmts[id].sql, read_stmts[id].nparams, NULL, params, NULL, NULL, 0);
    }
    return r;
}

/* Columns from `col` on: player_id, score, sort_key, achieved_ms, metadata. */
static void push_row(entries_t *out, const PGresult *r, int row, int col, int64_t rank)
{
    const char *md = PQgetisnull(r, row, col + 4) ? NULL : PQgetvalue(r, row, col + 4);
    entries_push(out, rank, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), col_i64(r, row, col + 1),
                 col_i64(r, row, col + 2), col_i64(r, row, col + 3), md, md ? strlen(md) : 0);
}

typedef struct {
    char gen[24];
    char day[11];
} win_params_t;

static void win_params(win_params_t *w, const board_t *b, int64_t day)
{
    snprintf(w->gen, sizeof w->gen, "%" PRId64, b->gen);
    window_format_day(day, w->day);
}

q_status_t q_page_offset(PGconn *c, const board_t *b, int64_t day, int limit, int64_t offset, int64_t top_below,
                         entries_t *out)
{
    win_params_t w;
    win_params(&w, b, day);
    char lim[16], off[24];
    snprintf(lim, sizeof lim, "%d", limit);
    snprintf(off, sizeof off, "%" PRId64, offset);
    const char *p[] = {w.gen, w.day, lim, off};
    PGresult *r = exec_read(c, offset < top_below ? QS_PAGE_TOP : QS_PAGE_OFFSET, p);
    if (!pg_ok(r))
        return q_failed(c, r, "page by offset");
    out->total = col_i64(r, 0, 0);
    for (int i = 0; i < PQntuples(r); i++)
        if (!PQgetisnull(r, i, 1))
            push_row(out, r, i, 1, offset + i + 1);
    PQclear(r);
    return Q_OK;
}

q_status_t q_page_cursor(PGconn *c, const board_t *b, int64_t day, const order_pos_t *pos, bool backward, int limit,
                         entries_t *out)
{
    win_params_t w;
    win_params(&w, b, day);
    char sk[24], ms[24], lim[16];
    snprintf(sk, sizeof sk, "%" PRId64, pos->sort_key);
    snprintf(ms, sizeof ms, "%" PRId64, pos->achieved_ms);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {w.gen, w.day, sk, ms, pos->player, lim};
    PGresult *r = exec_read(c, backward ? QS_PAGE_BEFORE : QS_PAGE_AFTER, p);
    if (!pg_ok(r))
        return q_failed(c, r, "page by cursor");
    out->total = col_i64(r, 0, 0);
    int64_t count = col_i64(r, 0, 1);
    int rows = 0;
    for (int i = 0; i < PQntuples(r); i++)
        if (!PQgetisnull(r, i, 2))
            rows++;
    if (!backward) {
        for (int i = 0; i < rows; i++)
            push_row(out, r, i, 2, count + i + 1);
    } else {
        /* Rows came nearest-first; the nearest is ranked `count`. Emit in rank order. */
        for (int i = rows - 1; i >= 0; i--)
            push_row(out, r, i, 2, count - i);
    }
    PQclear(r);
    return Q_OK;
}

q_status_t q_players(PGconn *c, const board_t *b, int64_t day, const char *const *ids, size_t n, entries_t *out)
{
    win_params_t w;
    win_params(&w, b, day);
    buf_t arr;
    buf_init(&arr);
    ids_array(&arr, ids, n);
    const char *p[] = {w.gen, w.day, arr.data};
    PGresult *r = exec_read(c, QS_PLAYERS, p);
    buf_free(&arr);
    if (!pg_ok(r))
        return q_failed(c, r, "players by id");
    out->total = col_i64(r, 0, 0);
    for (int i = 0; i < PQntuples(r); i++)
        if (!PQgetisnull(r, i, 1))
            push_row(out, r, i, 1, col_i64(r, i, 6));
    PQclear(r);
    return Q_OK;
}

q_status_t q_ranks_at(PGconn *c, const board_t *b, int64_t day, const order_pos_t *pos, size_t n, int64_t *ranks)
{
    win_params_t w;
    win_params(&w, b, day);
    pg_arrays_t as;
    pg_arrays_open(&as, 3);
    for (size_t i = 0; i < n; i++) {
        pg_arr_i64(&as.a[0], pos[i].sort_key);
        pg_arr_i64(&as.a[1], pos[i].achieved_ms);
        pg_arr_text(&as.a[2], pos[i].player);
    }
    const char *p[5] = {w.gen, w.day};
    pg_arrays_close(&as, p + 2);
    PGresult *r = exec(c,
                       "SELECT rankd_rank_before($1, $2, u.sk, u.ms, u.p) + 1 FROM unnest($3::bigint[],"
                       " $4::bigint[], $5::text[]) WITH ORDINALITY AS u(sk, ms, p, i) ORDER BY u.i",
                       5, p);
    pg_arrays_free(&as);
    if (!pg_ok(r))
        return q_failed(c, r, "ranks at positions");
    if ((size_t)PQntuples(r) != n) {
        log_error(NULL, "ranks at positions: %d rows for %zu positions", PQntuples(r), n);
        PQclear(r);
        return Q_ERROR;
    }
    for (size_t i = 0; i < n; i++)
        ranks[i] = col_i64(r, (int)i, 0);
    PQclear(r);
    return Q_OK;
}

q_status_t q_around(PGconn *c, const board_t *b, int64_t day, const char *player, int before, int after,
                    entries_t *out)
{
    win_params_t w;
    win_params(&w, b, day);
    char bf[16], af[16];
    snprintf(bf, sizeof bf, "%d", before);
    snprintf(af, sizeof af, "%d", after);
    const char *p[] = {w.gen, w.day, player, bf, af};
    PGresult *r = exec_read(c, QS_AROUND, p);
    if (!pg_ok(r))
        return q_failed(c, r, "around player");
    out->total = col_i64(r, 0, 0);
    int rows = PQntuples(r);
    int me = -1, n_above = 0;
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(r, i, 1))
            continue;
        int k = atoi(PQgetvalue(r, i, 1));
        if (k == 0)
            me = i;
        else if (k < 0)
            n_above++;
    }
    if (me < 0) {
        PQclear(r);
        return Q_NOT_FOUND;
    }
    int64_t my_rank = col_i64(r, me, 7);
    /* Above rows arrive nearest-first: walk them backwards for rank order. */
    for (int i = rows - 1; i >= 0; i--)
        if (!PQgetisnull(r, i, 1) && atoi(PQgetvalue(r, i, 1)) < 0)
            push_row(out, r, i, 2, my_rank - n_above + (int64_t)(out->n));
    push_row(out, r, me, 2, my_rank);
    int64_t next = my_rank + 1;
    for (int i = 0; i < rows; i++)
        if (!PQgetisnull(r, i, 1) && atoi(PQgetvalue(r, i, 1)) > 0)
            push_row(out, r, i, 2, next++);
    PQclear(r);
    return Q_OK;
}

/* The text[] literal of player ids (validated: no quotes or backslashes) into `arr`. */
static void ids_array(buf_t *arr, const char *const *ids, size_t n)
{
    buf_putc(arr, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(arr, ',');
        buf_putc(arr, '"');
        buf_puts(arr, ids[i]);
        buf_putc(arr, '"');
    }
    buf_putc(arr, '}');
}

/* Run read statement `id` with the window's parameters and a sort key ($1 gen, $2 day, $3). */
static PGresult *exec_window_key(PGconn *c, q_stmt_t id, const board_t *b, int64_t day, int64_t sort_key)
{
    win_params_t w;
    win_params(&w, b, day);
    char sk[24];
    snprintf(sk, sizeof sk, "%" PRId64, sort_key);
    const char *p[] = {w.gen, w.day, sk};
    return exec_read(c, id, p);
}

q_status_t q_score(PGconn *c, const board_t *b, int64_t day, int64_t sort_key, entries_t *out)
{
    PGresult *r = exec_window_key(c, QS_SCORE, b, day, sort_key);
    if (!pg_ok(r))
        return q_failed(c, r, "rank of a score");
    out->total = col_i64(r, 0, 0);
    out->at_or_before = col_i64(r, 0, 1);
    PQclear(r);
    return Q_OK;
}

q_status_t q_snapshot_begin(PGconn *c)
{
    PGresult *r = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!pg_ok(r))
        return q_failed(c, r, "snapshot");
    PQclear(r);
    return Q_OK;
}

q_status_t q_snapshot_end(PGconn *c, bool ok)
{
    PGresult *r = PQexec(c, ok ? "COMMIT" : "ROLLBACK");
    if (!pg_ok(r))
        return q_failed(c, r, "snapshot end");
    PQclear(r);
    return Q_OK;
}

q_status_t q_rank_before(PGconn *c, const board_t *b, int64_t day, bool closed, bool distinct, int64_t sort_key,
                         int64_t *out)
{
    if (closed) { /* its archive, once written */
        PGresult *r = exec_window_key(c, distinct ? QS_A_BEFORE_DISTINCT : QS_A_BEFORE, b, day, sort_key);
        if (!pg_ok(r))
            return q_failed(c, r, "archived ranks before a score");
        bool archived = PQntuples(r) > 0;
        if (archived)
            *out = col_i64(r, 0, 2);
        PQclear(r);
        if (archived)
            return Q_OK;
    }
    PGresult *r = exec_window_key(c, distinct ? QS_BEFORE_DISTINCT : QS_BEFORE, b, day, sort_key);
    if (!pg_ok(r))
        return q_failed(c, r, "ranks before a score");
    *out = col_i64(r, 0, 0);
    PQclear(r);
    return Q_OK;
}

/* A closed window's q_score from its archive; *archived false when it has none yet. */
static q_status_t archive_score(PGconn *c, const board_t *b, int64_t day, int64_t sort_key, entries_t *out,
                                bool *archived)
{
    PGresult *r = exec_window_key(c, QS_A_SCORE, b, day, sort_key);
    if (!pg_ok(r))
        return q_failed(c, r, "archived rank of a score");
    *archived = PQntuples(r) > 0;
    if (*archived) {
        out->total = col_i64(r, 0, 0);
        out->modified_ms = col_i64(r, 0, 1);
        out->at_or_before = col_i64(r, 0, 2);
    }
    PQclear(r);
    return Q_OK;
}

q_status_t q_archive_read(PGconn *c, const board_t *b, int64_t day, const q_archive_read_t *rd, entries_t *out,
                          bool *archived)
{
    if (rd->kind == QA_SCORE)
        return archive_score(c, b, day, rd->sort_key, out, archived);
    win_params_t w;
    win_params(&w, b, day);
    char a[24], bb[24], lim[16];
    buf_t arr;
    buf_init(&arr);
    const char *p[6] = {w.gen, w.day};
    q_stmt_t id;
    switch (rd->kind) {
    case QA_PAGE:
        snprintf(lim, sizeof lim, "%d", rd->limit);
        snprintf(a, sizeof a, "%" PRId64, rd->offset);
        p[2] = lim;
        p[3] = a;
        id = QS_A_PAGE_OFFSET;
        break;
    case QA_CURSOR:
        snprintf(a, sizeof a, "%" PRId64, rd->pos->sort_key);
        snprintf(bb, sizeof bb, "%" PRId64, rd->pos->achieved_ms);
        snprintf(lim, sizeof lim, "%d", rd->limit);
        p[2] = a;
        p[3] = bb;
        p[4] = rd->pos->player;
        p[5] = lim;
        id = rd->backward ? QS_A_PAGE_BEFORE : QS_A_PAGE_AFTER;
        break;
    case QA_PLAYERS:
        ids_array(&arr, rd->ids, rd->n_ids);
        p[2] = arr.data;
        id = QS_A_PLAYERS;
        break;
    default: /* QA_AROUND */
        snprintf(a, sizeof a, "%d", rd->before);
        snprintf(bb, sizeof bb, "%d", rd->after);
        p[2] = rd->player;
        p[3] = a;
        p[4] = bb;
        id = QS_A_AROUND;
        break;
    }
    PGresult *r = exec_read(c, id, p);
    buf_free(&arr);
    if (!pg_ok(r))
        return q_failed(c, r, "archived window read");
    *archived = PQntuples(r) > 0;
    if (*archived) {
        out->total = col_i64(r, 0, 0);
        out->modified_ms = col_i64(r, 0, 1);
    }
    int rows = PQntuples(r);
    bool reverse = rd->kind == QA_CURSOR && rd->backward; /* nearest first: emit in rank order */
    for (int k = 0; k < rows; k++) {
        int i = reverse ? rows - 1 - k : k;
        if (!PQgetisnull(r, i, 2))
            push_row(out, r, i, 2, col_i64(r, i, 7));
    }
    PQclear(r);
    return Q_OK;
}

/*
 * In a deletion's transaction, the board's archive lock shared (an archive holds it exclusively
 * while it copies the board's standings: minutes for millions), and with `imports` the import
 * lock of each of the board's windows shared (an import holds its window's exclusively from
 * before its fold to its commit: a deletion committed in between would leave the rows the import
 * then logs, and its standing, if the fold had found none), each waited for `wait_ms` at most,
 * then lock_timeout back to its default. Statements of their own: a statement's snapshot is
 * taken before a lock it waits for inside it, so what committed during the wait would not be
 * seen. An import that takes its lock after these waits for the deletion's commit, then folds
 * without the player. Q_RETRY (rolled back) when one of them was held all that time.
 */
q_status_t q_board_locks_shared(PGconn *c, const char *gen, int wait_ms, bool imports, const char *what)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SET LOCAL lock_timeout = %d", wait_ms > 0 ? wait_ms : 1);
    PGresult *r = PQexec(c, sql);
    if (!pg_ok(r))
        return delete_failed(c, r, what);
    PQclear(r);
    const char *p[] = {gen};
    static const char *const locks[] = {
        "SELECT pg_advisory_xact_lock_shared(rankd_archive_lock_key($1::bigint))",
        /* An import into a window the board has no counts of yet finds no standing to fold
         * either: it imports the player after the deletion, whole. */
        "SELECT count(pg_advisory_xact_lock_shared(" WS_IMPORT_LOCK_KEY("$1::bigint", "w.win") "))"
        " FROM (SELECT win FROM window_counts WHERE board_gen = $1::bigint ORDER BY win) w",
    };
    static const char *const holders[] = {"an archive", "an import"};
    for (int i = 0; i < (imports ? 2 : 1); i++) {
        r = exec(c, locks[i], 1, p);
        if (pg_ok(r)) {
            PQclear(r);
            continue;
        }
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (code && strcmp(code, "55P03") == 0 && PQstatus(c) == CONNECTION_OK) { /* lock_not_available */
            log_warn(NULL, "%s: %s of board generation %s holds the board; answered busy", what, holders[i], gen);
            PQclear(r);
            PQclear(PQexec(c, "ROLLBACK"));
            return Q_RETRY;
        }
        return delete_failed(c, r, what);
    }
    r = PQexec(c, "SET LOCAL lock_timeout = DEFAULT");
    if (!pg_ok(r))
        return delete_failed(c, r, what);
    PQclear(r);
    return Q_OK;
}

/* Append a window to a deletion's list (grown as needed). */
static void deleted_push(q_deleted_t **out, size_t *n, size_t *cap, const q_deleted_t *d)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *out = xrealloc(*out, *cap * sizeof **out);
    }
    (*out)[(*n)++] = *d;
}

/*
 * Its archives, in a transaction of their own once the live rows are gone and the player's lock
 * is released (a closed window takes no write, and rewriting the ranks of a big archived window
 * takes long): its rows and league moves go, the ranks below move up, each window's statistics
 * are computed again and its readers told (a D line: the window's cached answers go; no Redis
 * copy or tier holds an archive), and the board's end-of-window events are made again without
 * the player. Each archived window it stood in is appended to out (archived).
 */
static q_status_t delete_archived(PGconn *c, const char *const *p, int lock_wait_ms, q_deleted_t **out, size_t *n,
                                  size_t *cap)
{
    PGresult *r = PQexec(c, "BEGIN; SET LOCAL statement_timeout = '10min'");
    if (!pg_ok(r))
        return q_failed(c, r, "player delete (archives)");
    PQclear(r);
    q_status_t st = q_board_locks_shared(c, p[0], lock_wait_ms, false, "player delete (archive lock)");
    if (st != Q_OK)
        return st;
    r = exec(c,
             "WITH a AS (DELETE FROM archive WHERE board_gen = $1 AND player_id = $2"
             "   RETURNING win, rank, sort_key, achieved_ms),"
             " ar AS (UPDATE archive x SET rank = x.rank - 1 FROM a"
             "   WHERE x.board_gen = $1 AND x.win = a.win AND x.rank > a.rank)"
             " SELECT win::text, pg_notify('rankd_l1', 'D ' || $1 || ' ' || (win - DATE '1970-01-01') || ' '"
             "  || sort_key || ' ' || achieved_ms || ' ' || $2),"
             "  win - DATE '1970-01-01', sort_key, achieved_ms FROM a",
             2, p);
    if (!pg_ok(r))
        return delete_failed(c, r, "player delete (archives)");
    for (int i = 0; i < PQntuples(r); i++) {
        const char *sp[] = {p[0], PQgetvalue(r, i, 0)};
        PGresult *stats = exec(c, "SELECT rankd_archive_stats($1, $2::date)", 2, sp);
        if (!pg_ok(stats)) {
            PQclear(r);
            return delete_failed(c, stats, "archived statistics after a player delete");
        }
        PQclear(stats);
    }
    size_t from = *n;
    for (int i = 0; i < PQntuples(r); i++) {
        q_deleted_t d = {.day = col_i64(r, i, 2), .archived = true, .sort_key = col_i64(r, i, 3),
                         .achieved_ms = col_i64(r, i, 4)};
        deleted_push(out, n, cap, &d);
    }
    PQclear(r);
    /* The player's league moves go with the archives they were settled with (under the archive
     * lock, so also a window's settled while the live rows went), then the board's end-of-window
     * events that name the player are made again from the archives and moves without them. */
    r = exec(c, "DELETE FROM league_moves WHERE board_gen = $1 AND player_id = $2", 2, p);
    if (pg_ok(r)) {
        PQclear(r);
        r = exec(c, "SELECT rankd_events_forget($1, $2)", 2, p);
        if (pg_ok(r)) {
            PQclear(r);
            r = PQexec(c, "COMMIT");
            if (pg_ok(r)) {
                PQclear(r);
                return Q_OK;
            }
            *n = from; /* rolled back: the archives keep the player */
            return q_failed(c, r, "player delete (archives) commit");
        }
    }
    *n = from;
    return delete_failed(c, r, "player delete (league moves, events)");
}

q_status_t q_player_delete(PGconn *c, int64_t gen, const char *player, int lock_wait_ms, q_deleted_t **out,
                           size_t *n)
{
    char g[24], lock[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    snprintf(lock, sizeof lock, "%" PRId64, id_player_lock_key(gen, player));
    const char *p[] = {g, player};
    const char *lp[] = {lock};
    *n = 0;
    *out = NULL;
    size_t cap = 0;
    PGresult *r = PQexec(c, "BEGIN");
    if (!pg_ok(r))
        return q_failed(c, r, "player delete");
    PQclear(r);
    /* An archive of the board in progress first (it must not copy the player after this; busy
     * while one runs), an import's merge next (busy too), then the player's own lock, which the
     * writer takes too (held for a batch's round trips): a removal never interleaves with a
     * submission or an import of the player. */
    q_status_t st = q_board_locks_shared(c, g, lock_wait_ms, true, "player delete lock");
    if (st != Q_OK)
        return st;
    r = exec(c, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lp);
    if (!pg_ok(r))
        return delete_failed(c, r, "player delete lock");
    PQclear(r);
    /* A tournament's entrant rows go, and the places they held: a statement of its own, before
     * the window counters' rows, in the order writers and joins lock (the player, a slot, then
     * the counters). */
    r = exec(c,
             "WITH te AS (DELETE FROM tournament_entrants WHERE board_gen = $1 AND player_id = $2"
             "   RETURNING win, joined_ms IS NOT NULL OR attempts > 0 AS placed)"
             " UPDATE tournament_slots t SET entrants = t.entrants - d.n"
             " FROM (SELECT win, count(*) AS n FROM te WHERE placed GROUP BY win) d"
             " WHERE t.board_gen = $1 AND t.win = d.win",
             2, p);
    if (!pg_ok(r))
        return delete_failed(c, r, "player delete: tournament entrants");
    PQclear(r);
    /* A league's rows of the player go; the cohorts' counts stay (a place is not given again).
     * Their moves belong to settled windows, and go with the archives (delete_archived). */
    r = exec(c,
             "WITH lm AS (DELETE FROM league_members WHERE board_gen = $1 AND player_id = $2)"
             " DELETE FROM league_tiers WHERE board_gen = $1 AND player_id = $2",
             2, p);
    if (!pg_ok(r))
        return delete_failed(c, r, "player delete: league rows");
    PQclear(r);
    /* A hidden player (store/moderation.c) may have no other rows: found all the same. */
    r = exec(c,
             "SELECT EXISTS (SELECT 1 FROM hidden_players WHERE board_gen = $1 AND player_id = $2)"
             " OR EXISTS (SELECT 1 FROM hidden_standings WHERE board_gen = $1 AND player_id = $2)",
             2, p);
    if (!pg_ok(r))
        return delete_failed(c, r, "player delete: hidden rows");
    bool hidden = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    r = exec(c,
             /* By window (the primary key's order is board, window, player): every window with a
              * standing has its counters' row. Without the window, the whole board's part of the
              * index was read: 0.6 s on ten million players. */
             "WITH s AS (DELETE FROM standings WHERE board_gen = $1 AND player_id = $2"
             "   AND win = ANY(ARRAY(SELECT win FROM window_counts WHERE board_gen = $1))"
             "   RETURNING win, sort_key, achieved_ms),"
             /* Flagged rows (migrations/0026_client_rules.sql) go too; they were never counted. */
             " l AS (DELETE FROM submissions WHERE board_gen = $1 AND player_id = $2"
             "   RETURNING win, received_at, flagged IS NULL AS counted),"
             /* A hidden player's log rows of a window with a hidden standing were never counted
              * in its counters (store/moderation.c): only the others are taken out. */
             " hs AS (DELETE FROM hidden_standings WHERE board_gen = $1 AND player_id = $2 RETURNING win),"
             " hp AS (DELETE FROM hidden_players WHERE board_gen = $1 AND player_id = $2),"
             " lc AS (SELECT win, count(*) AS n FROM l WHERE counted AND win NOT IN (SELECT win FROM hs) GROUP BY win),"
             /* Its submissions leave the daily activity of the days the next refresh does not count
              * again (migrations/0012_activity_days.sql); the mark's row FOR SHARE: a refresh under
              * way ends first, and one after this counts without it. */
             " ma AS (SELECT recounted_from FROM activity_mark FOR SHARE),"
             " ad AS (UPDATE daily_activity a SET submissions = a.submissions - d.n, players = a.players - 1"
             "   FROM (SELECT (received_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM l WHERE counted GROUP BY 1) d, ma"
             "   WHERE a.board_gen = $1 AND a.day = d.day AND d.day < ma.recounted_from),"
             " w AS (UPDATE window_counts c SET"
             "   players = c.players - (SELECT count(*) FROM s WHERE s.win = c.win),"
             "   submissions = c.submissions - coalesce((SELECT n FROM lc WHERE lc.win = c.win), 0),"
             "   seq = c.seq + 1"
             "   WHERE c.board_gen = $1 AND (c.win IN (SELECT win FROM s) OR c.win IN (SELECT win FROM lc))"
             "   RETURNING c.win, c.seq),"
             /* Archived windows count its submissions too; their players follow with their rows. */
             " aw AS (UPDATE archived_windows aw SET submissions = aw.submissions - lc.n FROM lc"
             "   WHERE aw.board_gen = $1 AND aw.win = lc.win)"
             /* Each window whose number moved tells it, as a write does (core/notice.h): its S
              * line, then the D line of the standing that went (none when only log rows went).
              * Listeners take the player out of the tier's copy and drop the window's cached
              * answers, and no more: the board's other windows, its catalog entry, its Redis
              * copy's trust stay. */
             " SELECT w.win - DATE '1970-01-01', CASE WHEN s.win IS NULL THEN 0 ELSE nextval('standing_version') END,"
             "  pg_notify('rankd_l1', 'S ' || $1 || ' ' || (w.win - DATE '1970-01-01') || ' ' || w.seq || ' 1 1'"
             "   || CASE WHEN s.win IS NULL THEN '' ELSE E'\\n' || 'D ' || $1 || ' ' || (w.win - DATE '1970-01-01')"
             "   || ' ' || s.sort_key || ' ' || s.achieved_ms || ' ' || $2 END),"
             "  coalesce(s.sort_key, 0), coalesce(s.achieved_ms, 0), w.seq, s.win IS NOT NULL"
             " FROM w LEFT JOIN s ON s.win = w.win",
             2, p);
    if (!pg_ok(r))
        return delete_failed(c, r, "player delete");
    /* The rank buckets lose the rows: a statement of its own, after the counters' locks
     * (migrations/0009_rank_buckets.sql). */
    bool stood = false;
    for (int i = 0; i < PQntuples(r); i++)
        stood |= strcmp(PQgetvalue(r, i, 6), "t") == 0;
    if (stood) {
        pg_arrays_t as;
        pg_arrays_open(&as, 6);
        for (int i = 0; i < PQntuples(r); i++) {
            if (strcmp(PQgetvalue(r, i, 6), "t") != 0)
                continue;
            pg_arr_i64(&as.a[0], gen);
            pg_arr_day(&as.a[1], col_i64(r, i, 0));
            pg_arr_i64(&as.a[2], col_i64(r, i, 3));
            pg_arr_i64(&as.a[3], col_i64(r, i, 4));
            pg_arr_text(&as.a[4], player);
            pg_arr_i64(&as.a[5], -1);
        }
        const char *bp[6];
        pg_arrays_close(&as, bp);
        PGresult *b = exec(c, ws_buckets_sql, 6, bp);
        pg_arrays_free(&as);
        if (!pg_ok(b)) {
            PQclear(r);
            return delete_failed(c, b, "player delete (rank buckets)");
        }
        PQclear(b);
    }
    PGresult *commit = PQexec(c, "COMMIT");
    if (!pg_ok(commit)) {
        PQclear(r);
        return q_failed(c, commit, "player delete commit");
    }
    PQclear(commit);
    for (int i = 0; i < PQntuples(r); i++) {
        q_deleted_t d = {.day = col_i64(r, i, 0), .stood = strcmp(PQgetvalue(r, i, 6), "t") == 0,
                         .version = col_i64(r, i, 1), .seq = col_i64(r, i, 5), .sort_key = col_i64(r, i, 3),
                         .achieved_ms = col_i64(r, i, 4)};
        deleted_push(out, n, &cap, &d);
    }
    PQclear(r);
    st = delete_archived(c, p, lock_wait_ms, out, n, &cap);
    if (st != Q_OK)
        return st; /* the live rows are gone; a retry of the deletion finishes the archives */
    bool found = hidden;
    for (size_t i = 0; i < *n; i++)
        found |= (*out)[i].stood || (*out)[i].archived;
    return found ? Q_OK : Q_NOT_FOUND;
}

q_status_t q_player_standings(PGconn *c, const char *player, int64_t now_ms, bool own, standing_row_t **rows,
                              size_t *n)
{
    char now[24];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    const char *p[] = {player, now};
    PGresult *r = exec_read(c, own ? QS_STANDINGS_OWN : QS_STANDINGS, p);
    if (!pg_ok(r))
        return q_failed(c, r, "player standings");
    *n = (size_t)PQntuples(r);
    *rows = xcalloc(*n ? *n : 1, sizeof **rows);
    for (size_t i = 0; i < *n; i++) {
        standing_row_t *row = &(*rows)[i];
        snprintf(row->board, sizeof row->board, "%s", PQgetvalue(r, (int)i, 0));
        row->day = col_i64(r, (int)i, 1);
        row->total = col_i64(r, (int)i, 8);
        row->gen = col_i64(r, (int)i, 9);
        if (!PQgetisnull(r, (int)i, 10)) {
            row->league.on = league_tiers_parse(PQgetvalue(r, (int)i, 10), &row->league);
            if (!row->league.on)
                log_error(NULL, "board %s has tiers this version cannot read", row->board);
        }
        entries_t one;
        entries_init(&one);
        push_row(&one, r, (int)i, 2, col_i64(r, (int)i, 7));
        row->entry = one.items[0];
        free(one.items);
    }
    PQclear(r);
    return Q_OK;
}

void q_standings_free(standing_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].entry.metadata);
        league_clear(&rows[i].league);
    }
    free(rows);
}

q_status_t q_notify(PGconn *c, const char *payload)
{
    const char *p[] = {payload};
    PGresult *r = exec(c, "SELECT pg_notify('rankd_l1', $1)", 1, p);
    if (!pg_ok(r))
        return q_failed(c, r, "notify");
    PQclear(r);
    return Q_OK;
}

q_status_t q_notify_unapplied(PGconn *c, const int64_t *gens, const int64_t *days, size_t n)
{
    buf_t payload;
    buf_init(&payload);
    q_status_t st = Q_OK;
    for (size_t i = 0; i < n && st == Q_OK; i++) {
        if (payload.len > 0)
            buf_putc(&payload, '\n');
        buf_printf(&payload, "R %" PRId64 " %" PRId64, gens[i], days[i]);
        /* A notice carries up to 8000 bytes: sent in parts well below that. */
        if (i + 1 == n || payload.len > 7000) {
            st = q_notify(c, payload.data); /* buf_t keeps its text NUL-terminated */
            buf_reset(&payload);
        }
    }
    buf_free(&payload);
    return st;
}

long q_rank_buckets_check(PGconn *c, const board_t *b, int64_t day, FILE *out)
{
    win_params_t w;
    win_params(&w, b, day);
    const char *p[] = {w.gen, w.day};
    PGresult *r = exec(c, "SELECT level, lo_sk, lo_ms, lo_pid, n, actual FROM rankd_rank_buckets_check($1, $2)", 2, p);
    if (!pg_ok(r))
        return q_failed(c, r, "rank buckets check") == Q_OK ? 0 : -1; /* logged; never Q_OK */
    long diffs = PQntuples(r);
    for (int i = 0; i < PQntuples(r); i++) {
        const char *level = PQgetvalue(r, i, 0);
        if (strcmp(level, "players") == 0)
            fprintf(out, "%s window %s: its player count is %s, its standings %s\n", b->id, w.day, PQgetvalue(r, i, 4),
                    PQgetvalue(r, i, 5));
        else if (PQgetisnull(r, i, 1))
            fprintf(out, "%s window %s: %s standings before its first rank %s\n", b->id, w.day, PQgetvalue(r, i, 5),
                    level);
        else if (PQgetisnull(r, i, 5))
            fprintf(out, "%s window %s: rank %s from (%s, %s, %s) starts where no bucket does\n", b->id, w.day, level,
                    PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3));
        else
            fprintf(out, "%s window %s: rank %s from (%s, %s, %s) counts %s, holds %s\n", b->id, w.day, level,
                    PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 4),
                    PQgetvalue(r, i, 5));
    }
    if (diffs > 0)
        fprintf(out, "%s window %s: to cut its rank buckets afresh: SELECT rankd_rank_buckets_build(%s, '%s')\n",
                b->id, w.day, w.gen, w.day);
    PQclear(r);
    return diffs;
}
