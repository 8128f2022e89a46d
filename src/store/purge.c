/* store/purge.c — removing what deleted boards left, in steps paced by the statement timeout; see purge.h. */
#include "store/purge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"

/* Rows a statement removes from a board's table, and blocks of a log partition it reads: where a
 * pace begins, and its bounds. 2^20 blocks (8 GiB) is any partition whole. */
#define ROWS_START 5000
#define ROWS_MAX 20000
#define BLOCKS_START 1024
#define BLOCKS_MAX (1 << 20)

void purge_state_init(purge_state_t *s, int timeout_ms)
{
    memset(s, 0, sizeof *s);
    step_pace_init(&s->rows, ROWS_START, 1, ROWS_MAX);
    step_pace_init(&s->blocks, BLOCKS_START, 1, BLOCKS_MAX);
    s->timeout_ms = timeout_ms;
}

/* Forget where the cursor was: the next step of a table begins at its first key. */
static void cursor_clear(purge_state_t *s)
{
    free(s->key[0]);
    free(s->key[1]);
    s->key[0] = s->key[1] = NULL;
    s->gen = 0;
    s->table = 0;
}

void purge_state_free(purge_state_t *s)
{
    cursor_clear(s);
}

static PGresult *exec_params(PGconn *c, const char *sql, int n, const char *const *p)
{
    return PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
}

static q_status_t failed(PGconn *c, PGresult *r, const char *what)
{
    log_warn(NULL, "%s failed: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    return PQstatus(c) == CONNECTION_OK ? Q_ERROR : Q_UNAVAILABLE;
}

/* Whether `r` failed by the statement timeout (or a lock timeout): the step was too big for now. */
static bool timed_out(const PGresult *r)
{
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return code && (strcmp(code, "57014") == 0 || strcmp(code, "55P03") == 0);
}

/* A step's statement `r` failed: when by the timeout, `pace` is halved and the caller goes on
 * (Q_OK, `r` cleared); at its floor already, or failed otherwise, the failure is logged and
 * returned. */
static q_status_t step_failed(PGconn *c, PGresult *r, step_pace_t *pace, const char *unit, const char *what)
{
    if (timed_out(r) && PQstatus(c) == CONNECTION_OK) {
        int64_t was = pace->size;
        if (step_pace_timed_out(pace)) {
            log_info(NULL, "%s: a step of %" PRId64 " %s outlasted the statement timeout; %" PRId64 " a step from now on",
                     what, was, unit, pace->size);
            PQclear(r);
            return Q_OK;
        }
    }
    return failed(c, r, what);
}

/* The steps read by primary key in its order: no bitmap scan (it reads every entry of the board
 * at each step) nor sequential scan (it reads every row removed before, until a vacuum). In this
 * session, until planner_restore. */
static q_status_t planner_for_steps(PGconn *c)
{
    PGresult *r = PQexec(c, "SET enable_bitmapscan = off; SET enable_seqscan = off");
    if (!pg_ok(r))
        return failed(c, r, "preparing a purge's session");
    PQclear(r);
    return Q_OK;
}

/* Put back what planner_for_steps set; Q_UNAVAILABLE when it cannot (the connection must then
 * go, not back to the pool with its plans bent). */
static q_status_t planner_restore(PGconn *c)
{
    PGresult *r = PQexec(c, "RESET enable_bitmapscan; RESET enable_seqscan");
    bool ok = pg_ok(r);
    PQclear(r);
    return ok ? Q_OK : Q_UNAVAILABLE;
}

q_status_t purge_boards_pending(PGconn *c, purge_board_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    PGresult *r = PQexec(c, "SELECT board_gen FROM board_purges ORDER BY deleted_at, board_gen");
    if (!pg_ok(r))
        return failed(c, r, "listing deleted boards to purge");
    *n = (size_t)PQntuples(r);
    *out = xcalloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++)
        (*out)[i].gen = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
    PQclear(r);
    return Q_OK;
}

/* The counters first, locked (a re-cut holds them while it moves buckets), then what is keyed by
 * window: a few rows per window, in one transaction. Nothing reads a deleted board's rows, and
 * the re-cut and the archiver no longer find its windows. */
static q_status_t purge_counters(PGconn *c, const char *const *p)
{
    PGresult *r = PQexec(c, "BEGIN");
    if (!pg_ok(r))
        return failed(c, r, "purging a board");
    PQclear(r);
    r = exec_params(c, "SELECT 1 FROM window_counts WHERE board_gen = $1 ORDER BY win FOR UPDATE", 1, p);
    if (pg_ok(r)) {
        PQclear(r);
        r = exec_params(c,
                        "WITH w AS (DELETE FROM window_counts WHERE board_gen = $1),"
                        " rb AS (DELETE FROM rank_buckets WHERE board_gen = $1),"
                        " rs AS (DELETE FROM rank_supers WHERE board_gen = $1),"
                        " rc AS (DELETE FROM rank_checked WHERE board_gen = $1),"
                        /* Its archives' partitions are dropped by the leader (rankd_archive_orphans). */
                        " a AS (DELETE FROM archived_windows WHERE board_gen = $1),"
                        " ts AS (DELETE FROM tournament_slots WHERE board_gen = $1),"
                        " lw AS (DELETE FROM league_windows WHERE board_gen = $1),"
                        " lc AS (DELETE FROM league_cohorts WHERE board_gen = $1),"
                        " ev AS (DELETE FROM events WHERE board_gen = $1)"
                        " UPDATE board_purges SET counts_done = true WHERE board_gen = $1",
                        1, p);
    }
    if (!pg_ok(r)) {
        q_status_t st = failed(c, r, "purging a board's counters");
        PQclear(PQexec(c, "ROLLBACK"));
        return st;
    }
    PQclear(r);
    r = PQexec(c, "COMMIT");
    if (!pg_ok(r))
        return failed(c, r, "purging a board (commit)");
    PQclear(r);
    return Q_OK;
}

/* A table keyed by board, then `keys` (its primary key): a step takes the next rows past the
 * cursor in that order. */
typedef struct {
    const char *table;
    const char *keys;     /* "win, player_id" */
    const char *keys_desc; /* "win DESC, player_id DESC": the step's last key first */
    const char *as_text;  /* the last key's columns as text */
    const char *after;    /* past the cursor ($3, $4) */
    bool counted;         /* counts down board_purges.rows_left */
    const char *what;
} purge_table_t;

#define WIN_PLAYER "win, player_id", "win DESC, player_id DESC", "win::text, player_id", "(win, player_id) > ($3::date, $4::text)"

static const purge_table_t purge_tables[] = {
    {"standings", WIN_PLAYER, true, "purging a board's standings"},
    {"idempotency_keys", "key", "key DESC", "key, NULL", "key > $3::text", false, "purging a board's idempotency keys"},
    {"daily_activity", "day", "day DESC", "day::text, NULL", "day > $3::date", false, "purging a board's daily activity"},
    {"tournament_entrants", WIN_PLAYER, false, "purging a board's tournament entrants"},
    {"league_members", WIN_PLAYER, false, "purging a board's league members"},
    {"league_tiers", "player_id", "player_id DESC", "player_id, NULL", "player_id > $3::text", false,
     "purging a board's league tiers"},
    {"league_moves", WIN_PLAYER, false, "purging a board's league moves"},
    {"hidden_standings", WIN_PLAYER, false, "purging a board's hidden standings"},
    {"hidden_players", "player_id", "player_id DESC", "player_id, NULL", "player_id > $3::text", false,
     "purging a board's hidden players"},
};
#define PURGE_TABLES ((int)(sizeof purge_tables / sizeof *purge_tables))

/* One step of table `s->table` of board `gen`: up to s->rows.size rows past the cursor. `*end`
 * when the table has none left; a timed-out step leaves the cursor and halves the pace. */
static q_status_t table_step(PGconn *c, purge_state_t *s, const char *gen, bool *end)
{
    const purge_table_t *t = &purge_tables[s->table];
    *end = false;
    bool from_start = !s->key[0];
    int nkeys = strchr(t->keys, ',') ? 2 : 1;
    char sql[1024], lim[24];
    int len = snprintf(sql, sizeof sql,
             "WITH k AS (SELECT ctid, %s FROM %s WHERE board_gen = $1%s%s ORDER BY %s LIMIT $2::bigint),"
             " d AS (DELETE FROM %s WHERE ctid = ANY(ARRAY(SELECT ctid FROM k)) RETURNING 1)%s"
             " SELECT (SELECT count(*) FROM k), %s FROM k ORDER BY %s LIMIT 1",
             t->keys, t->table, from_start ? "" : " AND ", from_start ? "" : t->after, t->keys, t->table,
             t->counted ? ", u AS (UPDATE board_purges SET rows_left = greatest(rows_left - (SELECT count(*) FROM d), 0)"
                          " WHERE board_gen = $1)"
                        : "",
             t->as_text, t->keys_desc);
    if (len < 0 || (size_t)len >= sizeof sql)
        return failed(c, NULL, t->what);
    int64_t asked = s->rows.size;
    snprintf(lim, sizeof lim, "%" PRId64, asked);
    const char *p[] = {gen, lim, s->key[0], s->key[1]};
    int64_t t0 = clock_mono_ms();
    PGresult *r = exec_params(c, sql, from_start ? 2 : 2 + nkeys, p);
    if (!pg_ok(r))
        return step_failed(c, r, &s->rows, "rows", t->what);
    step_pace_took(&s->rows, clock_mono_ms() - t0, s->timeout_ms);
    /* Fewer than asked for: nothing is left past them (no row of a deleted board arrives). */
    if (PQntuples(r) == 0 || strtoll(PQgetvalue(r, 0, 0), NULL, 10) < asked) {
        PQclear(r);
        *end = true;
        return Q_OK;
    }
    free(s->key[0]);
    free(s->key[1]);
    s->key[0] = xstrdup(PQgetvalue(r, 0, 1));
    s->key[1] = PQgetisnull(r, 0, 2) ? NULL : xstrdup(PQgetvalue(r, 0, 2));
    PQclear(r);
    return Q_OK;
}

/* The rows of board `gen`'s tables, a step at a time, until `until` (monotonic ms): `*all`
 * when none is left. The cursor in `s` carries over to the next call. */
static q_status_t purge_rows(PGconn *c, purge_state_t *s, int64_t gen, const char *g, int64_t until, bool *all)
{
    *all = false;
    if (s->gen != gen) {
        cursor_clear(s);
        s->gen = gen;
    }
    q_status_t st = planner_for_steps(c);
    while (st == Q_OK && s->table < PURGE_TABLES && clock_mono_ms() < until) {
        bool end = false;
        st = table_step(c, s, g, &end);
        if (st == Q_OK && end) {
            free(s->key[0]);
            free(s->key[1]);
            s->key[0] = s->key[1] = NULL;
            s->table++;
        }
    }
    if (planner_restore(c) != Q_OK)
        st = Q_UNAVAILABLE; /* the connection goes: it must not keep those settings */
    *all = st == Q_OK && s->table >= PURGE_TABLES;
    return st;
}

q_status_t purge_board_step(PGconn *c, purge_state_t *s, int64_t gen, int budget_ms, bool *done)
{
    *done = false;
    int64_t until = clock_mono_ms() + budget_ms;
    char g[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    const char *p[] = {g};
    PGresult *r = exec_params(c, "SELECT counts_done, rows_done FROM board_purges WHERE board_gen = $1", 1, p);
    if (!pg_ok(r))
        return failed(c, r, "reading a board's purge");
    if (PQntuples(r) != 1) { /* purged already */
        PQclear(r);
        *done = true;
        return Q_OK;
    }
    bool counts_done = PQgetvalue(r, 0, 0)[0] == 't', rows_done = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    q_status_t st = Q_OK;
    if (!counts_done && (st = purge_counters(c, p)) != Q_OK)
        return st;
    if (!rows_done) {
        bool all = false;
        if ((st = purge_rows(c, s, gen, g, until, &all)) != Q_OK)
            return st;
        if (!all)
            return Q_OK; /* the budget ran out: the next round goes on */
        r = exec_params(c, "UPDATE board_purges SET rows_done = true, rows_left = 0 WHERE board_gen = $1", 1, p);
        if (!pg_ok(r))
            return failed(c, r, "purging a board");
        PQclear(r);
        cursor_clear(s);
    }
    /* Then the log's purge (purge_log_step) must be done too. */
    r = exec_params(c, "SELECT NOT EXISTS (SELECT 1 FROM log_purges WHERE board_gen = $1)", 1, p);
    if (!pg_ok(r))
        return failed(c, r, "purging a board");
    *done = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return Q_OK;
}

q_status_t purge_board_redis_done(PGconn *c, int64_t gen)
{
    char g[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    const char *p[] = {g};
    PGresult *r = exec_params(c, "DELETE FROM board_purges WHERE board_gen = $1 AND counts_done AND rows_done", 1, p);
    if (!pg_ok(r))
        return failed(c, r, "recording a board's purge done");
    PQclear(r);
    return Q_OK;
}

/* ---------------------------------------------------------------- the log */

/* Where the log's purge is: the first board in log_purges, the partition after the last one done
 * (in pg_partition_tree's leaves by name) and its size in blocks, and the block to go on from. */
typedef struct {
    char gen[24];
    char leaf[128];  /* "" when every partition is done */
    int64_t blocks;  /* the partition's size */
    int64_t next;    /* the first block not yet purged */
} log_place_t;

/* The place of the first board still to purge into `*at`; `*none` when no board is left. */
static q_status_t log_place(PGconn *c, log_place_t *at, bool *none)
{
    *none = false;
    /* Each leaf's name by its oid: a join with pg_class would walk pg_class in name order and
     * run pg_partition_tree once per row of it (40-80 ms, past a short statement timeout). */
    PGresult *r = PQexec(c,
                         "SELECT p.board_gen, l.name, pg_relation_size(l.relid) / current_setting('block_size')::bigint,"
                         "   p.next_block FROM"
                         " (SELECT board_gen, done_through, next_block FROM log_purges ORDER BY board_gen LIMIT 1) p"
                         " LEFT JOIN LATERAL (SELECT relid, name FROM"
                         "   (SELECT relid, (SELECT relname FROM pg_class WHERE oid = relid) AS name"
                         "    FROM pg_partition_tree('submissions') WHERE isleaf) x"
                         "   WHERE name COLLATE \"C\" > p.done_through ORDER BY name COLLATE \"C\" LIMIT 1) l ON true");
    if (!pg_ok(r))
        return failed(c, r, "finding where the log's purge is");
    if (PQntuples(r) == 0) {
        PQclear(r);
        *none = true;
        return Q_OK;
    }
    snprintf(at->gen, sizeof at->gen, "%s", PQgetvalue(r, 0, 0));
    snprintf(at->leaf, sizeof at->leaf, "%s", PQgetvalue(r, 0, 1));
    at->blocks = PQgetisnull(r, 0, 2) ? 0 : strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    at->next = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    PQclear(r);
    return Q_OK;
}

/* Remove board `at->gen`'s rows from blocks [at->next, to) of `at->leaf` (all of it when `whole`)
 * and record the place after them, in one statement: `*ran` unless it timed out (the pace is then
 * halved, and the place kept). */
static q_status_t log_range(PGconn *c, purge_state_t *s, const log_place_t *at, bool whole, int64_t to, bool *ran)
{
    *ran = false;
    char *leaf = PQescapeIdentifier(c, at->leaf, strlen(at->leaf));
    if (!leaf)
        return failed(c, NULL, "purging the log of deleted boards");
    char sql[768], from_tid[40], to_tid[40], next[24];
    /* A partition finished is done through (next block 0); one left halfway is where it was. */
    snprintf(sql, sizeof sql,
             "WITH d AS (DELETE FROM %s WHERE board_gen = $1%s RETURNING 1),"
             " u AS (UPDATE log_purges SET next_block = $3::bigint,"
             "   done_through = CASE WHEN $3::bigint = 0 THEN $2 ELSE done_through END,"
             "   rows_left = greatest(rows_left - (SELECT count(*) FROM d), 0) WHERE board_gen = $1)"
             " SELECT count(*) FROM d",
             leaf, whole ? "" : " AND ctid >= $4::tid AND ctid < $5::tid");
    PQfreemem(leaf);
    snprintf(from_tid, sizeof from_tid, "(%" PRId64 ",0)", at->next);
    snprintf(to_tid, sizeof to_tid, "(%" PRId64 ",0)", to);
    snprintf(next, sizeof next, "%" PRId64, whole || to >= at->blocks ? (int64_t)0 : to);
    const char *p[] = {at->gen, at->leaf, next, from_tid, to_tid};
    int64_t t0 = clock_mono_ms();
    PGresult *r = exec_params(c, sql, whole ? 3 : 5, p);
    if (!pg_ok(r))
        return step_failed(c, r, &s->blocks, "blocks", "purging the log of deleted boards");
    step_pace_took(&s->blocks, clock_mono_ms() - t0, s->timeout_ms);
    PQclear(r);
    *ran = true;
    return Q_OK;
}

q_status_t purge_log_step(PGconn *c, purge_state_t *s, int budget_ms, long *parts, bool *all)
{
    *parts = 0;
    *all = false;
    int64_t until = clock_mono_ms() + budget_ms;
    q_status_t st = Q_OK;
    /* (No planner settings: a range of blocks is a TID range scan, a whole partition is read by
     * its index when it has one, else in full.) */
    while (st == Q_OK && clock_mono_ms() < until) {
        log_place_t at;
        bool none = false;
        if ((st = log_place(c, &at, &none)) != Q_OK)
            break;
        if (none) {
            *all = true;
            break;
        }
        const char *p[] = {at.gen};
        if (!at.leaf[0]) { /* every partition done: the board leaves the queue */
            PGresult *r = exec_params(c, "DELETE FROM log_purges WHERE board_gen = $1", 1, p);
            st = pg_ok(r) ? Q_OK : failed(c, r, "purging the log of deleted boards");
            if (st == Q_OK)
                PQclear(r);
            continue;
        }
        bool whole = at.next == 0 && s->blocks.size >= at.blocks;
        int64_t to = at.next + s->blocks.size < at.blocks ? at.next + s->blocks.size : at.blocks;
        bool ran = false;
        if ((st = log_range(c, s, &at, whole, to, &ran)) == Q_OK && ran && (whole || to >= at.blocks))
            (*parts)++;
    }
    return st;
}

q_status_t purge_rows_left(PGconn *c, int64_t *standings, int64_t *log)
{
    *standings = *log = -1;
    PGresult *r = PQexec(c, "SELECT (SELECT coalesce(sum(rows_left), 0) FROM board_purges WHERE NOT rows_done),"
                            " (SELECT coalesce(sum(rows_left), 0) FROM log_purges)");
    if (!pg_ok(r))
        return failed(c, r, "counting the rows of deleted boards left");
    *standings = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *log = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return Q_OK;
}
