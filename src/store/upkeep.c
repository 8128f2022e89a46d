/* store/upkeep.c — the periodic upkeep statements; see upkeep.h. */
#include "store/pg_error.h"
#include "store/upkeep.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/window.h"
#include "obs/log.h"
#include "util/clock.h"
#include "util/buf.h"

static q_status_t run(PGconn *c, const char *sql, const char *what, PGresult **keep)
{
    PGresult *r = PQexec(c, sql);
    if (!pg_ok(r)) {
        char pe[PG_ERROR_MAX];
        log_warn(NULL, "%s failed: %s", what, pg_error_text(c, r, pe, sizeof pe));
        PQclear(r);
        return PQstatus(c) == CONNECTION_OK ? Q_ERROR : Q_UNAVAILABLE;
    }
    if (keep)
        *keep = r;
    else
        PQclear(r);
    return Q_OK;
}

/* Run `sql`, whose answer is one value, into `out` ("" when it gave no row). */
static q_status_t run_value(PGconn *c, const char *sql, const char *what, char *out, size_t outlen)
{
    PGresult *r = NULL;
    q_status_t st = run(c, sql, what, &r);
    if (st != Q_OK)
        return st;
    snprintf(out, outlen, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return Q_OK;
}

q_status_t upkeep_db_clock_ms(PGconn *c, int64_t *ms)
{
    char v[24];
    q_status_t st = run_value(c, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                              "reading the database's clock", v, sizeof v);
    *ms = st == Q_OK ? strtoll(v, NULL, 10) : 0;
    return st;
}

q_status_t upkeep_session_timeout(PGconn *c, int ms)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SET statement_timeout = %d", ms);
    return run(c, sql, "setting the statement timeout", NULL);
}

q_status_t upkeep_ensure_partitions(PGconn *c, int64_t now_ms, int months_ahead)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT rankd_ensure_partitions(to_timestamp(%" PRId64 " / 1000.0), %d)", now_ms,
             months_ahead + 1);
    return run(c, sql, "making the log's partitions", NULL);
}

q_status_t upkeep_partitions_ahead(PGconn *c, int64_t now_ms, int *months)
{
    char sql[512];
    /* Month 0 is the current one: the first month missing, less one. */
    snprintf(sql, sizeof sql,
             "SELECT coalesce(min(i), 121) - 1 FROM generate_series(0, 120) i"
             " WHERE to_regclass('submissions_' || to_char(date_trunc('month', (timestamptz 'epoch' + %" PRId64
             " * interval '1 millisecond') AT TIME ZONE 'UTC') + i * interval '1 month', 'YYYY_MM')) IS NULL",
             now_ms);
    char v[24];
    q_status_t st = run_value(c, sql, "counting the log's partitions ahead", v, sizeof v);
    *months = st == Q_OK ? (int)strtol(v, NULL, 10) : -2;
    return st;
}

q_status_t upkeep_forget_old_keys(PGconn *c, int batch, long *done)
{
    /* Bounded batches through the age index: one statement never holds many row locks. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "WITH d AS (DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys"
             " WHERE created_at < now() - interval '25 hours' LIMIT %d)) RETURNING 1) SELECT count(*) FROM d",
             batch);
    char v[24];
    q_status_t st = run_value(c, sql, "dropping old idempotency keys", v, sizeof v);
    *done = st == Q_OK ? strtol(v, NULL, 10) : 0;
    return st;
}

q_status_t upkeep_expire_events(PGconn *c, int64_t before_ms, int batch, long *done)
{
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT rankd_events_expire(%" PRId64 ", %d)", before_ms, batch);
    char v[24];
    q_status_t st = run_value(c, sql, "dropping old end-of-window events", v, sizeof v);
    *done = st == Q_OK ? strtol(v, NULL, 10) : 0;
    return st;
}

/* The leader lock's key, apart from the view refresh lock and migrate's. */
#define LEADER_LOCK 0x6c656164 /* "lead" */

q_status_t upkeep_try_lead(PGconn *c, bool *leads)
{
    char sql[192];
    /* Session locks stack: take it once, then only ask whether this session holds it. */
    snprintf(sql, sizeof sql,
             "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
             " AND objid = %d) OR pg_try_advisory_lock(%d)", LEADER_LOCK, LEADER_LOCK);
    char v[8];
    q_status_t st = run_value(c, sql, "taking the upkeep lead", v, sizeof v);
    *leads = st == Q_OK && v[0] == 't';
    return st;
}

q_status_t upkeep_write_mark(PGconn *c, char *out, size_t outlen)
{
    /* Every writing transaction updates the window_counts rows it touches (a new row version,
     * a new xmin) and a board's deletion removes its rows: the rows' identities and xmins change
     * with every write, where sums could come back to the same values. */
    return run_value(c,
                     "SELECT count(*) || ':' || coalesce(md5(string_agg(board_gen || '/' || win || '/' || xmin, ','"
                     " ORDER BY board_gen, win)), '') FROM window_counts",
                     "reading what the views are computed from", out, outlen);
}

q_status_t upkeep_lead_session(PGconn *c)
{
    return run(c,
               "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3;"
               " SET tcp_user_timeout = 10000",
               "preparing the leader's session", NULL);
}

/* ---------------------------------------------------------------- archives and retention */

static PGresult *exec_params(PGconn *c, const char *sql, int n, const char *const *p)
{
    return PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
}

static q_status_t failed(PGconn *c, PGresult *r, const char *what)
{
    char pe[PG_ERROR_MAX];
    log_warn(NULL, "%s failed: %s", what, pg_error_text(c, r, pe, sizeof pe));
    PQclear(r);
    return PQstatus(c) == CONNECTION_OK ? Q_ERROR : Q_UNAVAILABLE;
}

/* Lift this session's statement timeout for statements that take as long as their table is large
 * (a concurrent detach, an index build), keeping its value in `saved` (sized 32) for
 * restore_timeout. RESET would not do: it restores the server's default (often none), not the
 * pool's (pg_connect sets it with SET). */
static q_status_t lift_timeout(PGconn *c, char *saved)
{
    q_status_t st = run_value(c, "SHOW statement_timeout", "reading the statement timeout", saved, 32);
    return st == Q_OK ? run(c, "SET statement_timeout = 0", "lifting the statement timeout", NULL) : st;
}

/* Put back what lift_timeout saved; Q_UNAVAILABLE when it cannot (the connection must then go,
 * not back to the pool without its timeout). */
static q_status_t restore_timeout(PGconn *c, const char *saved)
{
    char *lit = PQescapeLiteral(c, saved, strlen(saved));
    if (!lit)
        return Q_UNAVAILABLE;
    char sql[96];
    snprintf(sql, sizeof sql, "SET statement_timeout = %s", lit);
    PQfreemem(lit);
    return run(c, sql, "restoring the statement timeout", NULL) == Q_OK ? Q_OK : Q_UNAVAILABLE;
}

q_status_t upkeep_index_log_months(PGconn *c, int64_t now_ms, int max_parts, long *made)
{
    *made = 0;
    char now[24], lim[16];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(lim, sizeof lim, "%d", max_parts);
    const char *p[] = {now, lim};
    PGresult *r = exec_params(c,
                              "SELECT c.relname, EXISTS (SELECT 1 FROM pg_class x WHERE x.relname = c.relname || '_player')"
                              " FROM pg_partition_tree('submissions') t JOIN pg_class c ON c.oid = t.relid"
                              " WHERE t.isleaf AND c.relname ~ '^submissions_[0-9]{4}_[0-9]{2}_p[0-9]{2}$'"
                              "   AND to_date(substr(c.relname, 13, 7), 'YYYY_MM') + interval '1 month' + interval '1 day'"
                              "       <= (timestamptz 'epoch' + $1::bigint * interval '1 millisecond') AT TIME ZONE 'UTC'"
                              "   AND NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid"
                              "     WHERE i.indrelid = c.oid AND ic.relname = c.relname || '_player' AND i.indisvalid)"
                              " ORDER BY 1 DESC LIMIT $2::int",
                              2, p);
    if (!pg_ok(r))
        return failed(c, r, "listing the log's months to index");
    /* A build takes as long as its part is large: no statement timeout, in this session only. */
    char saved[32] = "";
    q_status_t st = PQntuples(r) > 0 ? lift_timeout(c, saved) : Q_OK;
    for (int i = 0; i < PQntuples(r) && st == Q_OK; i++) {
        const char *part = PQgetvalue(r, i, 0);
        char name[96];
        snprintf(name, sizeof name, "%s_player", part);
        char *tbl = PQescapeIdentifier(c, part, strlen(part)), *idx = PQescapeIdentifier(c, name, strlen(name));
        if (!tbl || !idx) {
            PQfreemem(tbl);
            PQfreemem(idx);
            st = Q_ERROR;
            break;
        }
        char sql[320];
        if (PQgetvalue(r, i, 1)[0] == 't') { /* an earlier build that was cut off left it invalid */
            snprintf(sql, sizeof sql, "DROP INDEX CONCURRENTLY IF EXISTS %s", idx);
            st = run(c, sql, "dropping an unfinished index of the log", NULL);
        }
        if (st == Q_OK) {
            snprintf(sql, sizeof sql, "CREATE INDEX CONCURRENTLY %s ON %s (board_gen, player_id)", idx, tbl);
            st = run(c, sql, "indexing a finished month of the log", NULL);
        }
        if (st == Q_OK)
            (*made)++;
        PQfreemem(tbl);
        PQfreemem(idx);
    }
    if (PQntuples(r) > 0 && saved[0] && restore_timeout(c, saved) != Q_OK)
        st = Q_UNAVAILABLE; /* the connection goes: it must not keep no timeout */
    PQclear(r);
    return st;
}

/* The SQL of a board's current window start at instant $1 (ms), as window_start_day computes it. */
#define CURRENT_WIN                                                                                   \
    "CASE b.reset WHEN 'none' THEN b.none_win"                                                        \
    " WHEN 'daily' THEN ((timestamptz 'epoch' + $1::bigint * interval '1 millisecond') AT TIME ZONE 'UTC')::date" \
    " WHEN 'weekly' THEN date_trunc('week', (timestamptz 'epoch' + $1::bigint * interval '1 millisecond')"       \
    "   AT TIME ZONE 'UTC')::date"                                                                    \
    " ELSE date_trunc('month', (timestamptz 'epoch' + $1::bigint * interval '1 millisecond') AT TIME ZONE 'UTC')::date END"

q_status_t upkeep_unarchived(PGconn *c, int64_t now_ms, upkeep_window_t **out, size_t *n)
{
    char now[24];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    const char *p[] = {now};
    *out = NULL;
    *n = 0;
    PGresult *r = exec_params(c,
                              "SELECT w.board_gen, w.win - DATE '1970-01-01' FROM window_counts w"
                              " JOIN boards b ON b.gen = w.board_gen"
                              /* A one-off tournament slot's window never closes as a reset's do: once the
                               * slot has ended (and the grace passed), its standings are final. */
                              " WHERE (w.win < " CURRENT_WIN " OR (b.tournament AND b.t_end_ms <= $1::bigint))"
                              " AND NOT EXISTS (SELECT 1 FROM archived_windows a"
                              "   WHERE a.board_gen = w.board_gen AND a.win = w.win)"
                              " ORDER BY w.win DESC, w.board_gen",
                              1, p);
    if (!pg_ok(r))
        return failed(c, r, "listing the closed windows to archive");
    *n = (size_t)PQntuples(r);
    *out = calloc(*n ? *n : 1, sizeof **out);
    if (!*out) {
        PQclear(r);
        *n = 0;
        return Q_ERROR;
    }
    for (size_t i = 0; i < *n; i++) {
        (*out)[i].gen = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
        (*out)[i].day = strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
    }
    PQclear(r);
    return Q_OK;
}

/* One statement of the archive's transaction into *out (the caller clears it); on failure the
 * transaction is rolled back and its status returned. */
static q_status_t archive_step(PGconn *c, const char *sql, int n, const char *const *p, const char *what,
                               PGresult **out)
{
    *out = exec_params(c, sql, n, p);
    if (pg_ok(*out))
        return Q_OK;
    q_status_t st = failed(c, *out, what);
    *out = NULL;
    PQclear(PQexec(c, "ROLLBACK"));
    return st;
}

q_status_t upkeep_archive_window(PGconn *c, int64_t gen, int64_t day, int event_standings, int64_t *rows, int64_t *ms)
{
    char g[24], d[11];
    snprintf(g, sizeof g, "%" PRId64, gen);
    window_format_day(day, d);
    const char *p[] = {g, d};
    /* A large window takes longer than a read may: no statement timeout, in this transaction only. */
    q_status_t began = run(c, "BEGIN; SET LOCAL statement_timeout = 0", "archiving a window", NULL);
    if (began != Q_OK)
        return began;
    /* A league's moves are made first, from the standings the archive copies, and kept with it
     * (nothing for another board, or a window settled already). */
    PGresult *r;
    q_status_t st = archive_step(c, "SELECT rankd_league_settle($1, $2::date)", 2, p, "settling a league window", &r);
    if (st != Q_OK)
        return st;
    PQclear(r);
    if ((st = archive_step(c, "SELECT rankd_archive_window($1, $2::date)", 2, p, "archiving a window", &r)) != Q_OK)
        return st;
    *rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    /* A statement of its own: the one above ran in a snapshot taken before the archive's row. */
    if ((st = archive_step(c, "SELECT archive_ms FROM archived_windows WHERE board_gen = $1 AND win = $2::date", 2, p,
                           "archiving a window", &r)) != Q_OK)
        return st;
    *ms = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    /* A tournament's or a league's webhook gets the closed window's final standings and moves,
     * made in this transaction from the archive just written (nothing for other boards). */
    char now[24], top[16];
    snprintf(now, sizeof now, "%" PRId64, clock_wall_ms());
    snprintf(top, sizeof top, "%d", event_standings);
    const char *ep[] = {g, d, now, top};
    if ((st = archive_step(c, "SELECT rankd_window_event($1, $2::date, $3::bigint, $4::int)", 4, ep,
                           "making a window's event", &r)) != Q_OK)
        return st;
    PQclear(r);
    r = PQexec(c, "COMMIT");
    if (!pg_ok(r))
        return failed(c, r, "archiving a window (commit)");
    PQclear(r);
    return Q_OK;
}

/* The retention arrays: {gen,...}, {previous window,...}, {first kept window,...}. */
static void retention_arrays(const upkeep_board_t *boards, size_t n, buf_t *gens, buf_t *prevs, buf_t *kept)
{
    buf_putc(gens, '{');
    buf_putc(prevs, '{');
    buf_putc(kept, '{');
    for (size_t i = 0; i < n; i++) {
        char d[11];
        if (i) {
            buf_putc(gens, ',');
            buf_putc(prevs, ',');
            buf_putc(kept, ',');
        }
        buf_i64(gens, boards[i].gen);
        window_format_day(boards[i].previous, d);
        buf_puts(prevs, d);
        window_format_day(boards[i].first_kept, d);
        buf_puts(kept, d);
    }
    buf_putc(gens, '}');
    buf_putc(prevs, '}');
    buf_putc(kept, '}');
}

/* Windows no read needs from `standings` any more: older than the previous one, and archived
 * long enough ago (a read that found no archive then reads standings in a second statement) or
 * past retention. */
#define COLD_WINDOWS                                                                                  \
    "cut AS (SELECT * FROM unnest($1::bigint[], $2::date[], $3::date[]) AS t(board_gen, prev, kept)),"  \
    " cold AS (SELECT w.board_gen, w.win FROM cut JOIN window_counts w ON w.board_gen = cut.board_gen"  \
    "   AND w.win < cut.prev WHERE w.win < cut.kept OR EXISTS (SELECT 1 FROM archived_windows a"        \
    "   WHERE a.board_gen = w.board_gen AND a.win = w.win"                                              \
    "   AND a.archived_at < now() - $4::bigint * interval '1 millisecond'))"

/* Delete `table`'s rows of the cold windows (COLD_WINDOWS over params p), `batch` rows a
 * statement, at most 100 statements a round; *deleted counts them. */
static q_status_t delete_cold(PGconn *c, const char *table, const char *const *p, int batch, long *deleted)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "WITH " COLD_WINDOWS ","
             " d AS (DELETE FROM %s WHERE ctid = ANY(ARRAY(SELECT s.ctid FROM cold"
             "   JOIN %s s ON s.board_gen = cold.board_gen AND s.win = cold.win LIMIT $5)) RETURNING 1)"
             " SELECT count(*) FROM d",
             table, table);
    for (int step = 0; step < 100; step++) {
        PGresult *r = exec_params(c, sql, 5, p);
        if (!pg_ok(r)) {
            char what[64];
            snprintf(what, sizeof what, "deleting the %s of archived windows", table);
            return failed(c, r, what);
        }
        long d = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        *deleted += d;
        if (d < batch)
            break;
    }
    return Q_OK;
}

q_status_t upkeep_retire(PGconn *c, const upkeep_board_t *boards, size_t n, int64_t guard_ms, int batch,
                         upkeep_retired_t *out)
{
    memset(out, 0, sizeof *out);
    buf_t gens, prevs, kept;
    buf_init(&gens);
    buf_init(&prevs);
    buf_init(&kept);
    retention_arrays(boards, n, &gens, &prevs, &kept);
    char guard[24], lim[16];
    snprintf(guard, sizeof guard, "%" PRId64, guard_ms);
    snprintf(lim, sizeof lim, "%d", batch);
    const char *p[] = {gens.data, prevs.data, kept.data, guard, lim};
    q_status_t st = Q_OK;
    /* Archived windows past retention: their reads answer 404 already (window_resolve); the
     * record goes, and with it the partition (upkeep_drop_orphans). */
    PGresult *r = exec_params(c,
                              "WITH cut AS (SELECT * FROM unnest($1::bigint[], $2::date[], $3::date[])"
                              "   AS t(board_gen, prev, kept)),"
                              " d AS (DELETE FROM archived_windows a USING cut WHERE a.board_gen = cut.board_gen"
                              "   AND a.win < cut.kept RETURNING 1) SELECT count(*) FROM d",
                              3, p);
    if (!pg_ok(r)) {
        st = failed(c, r, "retention of archived windows");
        goto out;
    }
    out->windows_expired = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    st = delete_cold(c, "standings", p, batch, &out->standings_deleted);
    /* The standings a moderator hid go with their window (migrations/0025_moderation.sql): an
     * archive never holds them, and a restore brings back live windows' only. */
    long hidden = 0;
    if (st == Q_OK)
        st = delete_cold(c, "hidden_standings", p, batch, &hidden);
    if (st != Q_OK)
        goto out;
    /* The counters first, in a statement of their own (q_board_delete says why): the buckets
     * and supers a re-cut committed meanwhile are then in the next statement's snapshot. */
    if ((st = run(c, "BEGIN", "retiring windows", NULL)) != Q_OK)
        goto out;
    r = exec_params(c,
                    "WITH " COLD_WINDOWS
                    " SELECT 1 FROM window_counts w JOIN cold ON w.board_gen = cold.board_gen AND w.win = cold.win"
                    " ORDER BY w.board_gen, w.win FOR UPDATE OF w",
                    4, p);
    if (!pg_ok(r)) {
        st = failed(c, r, "locking the counts of archived windows");
        PQclear(PQexec(c, "ROLLBACK"));
        goto out;
    }
    PQclear(r);
    r = exec_params(c,
                    "WITH " COLD_WINDOWS ","
                    " d AS (DELETE FROM window_counts w USING cold WHERE w.board_gen = cold.board_gen"
                    "   AND w.win = cold.win AND NOT EXISTS (SELECT 1 FROM standings s"
                    "   WHERE s.board_gen = w.board_gen AND s.win = w.win) RETURNING w.board_gen, w.win),"
                    " rb AS (DELETE FROM rank_buckets r USING d WHERE r.board_gen = d.board_gen AND r.win = d.win),"
                    " rs AS (DELETE FROM rank_supers r USING d WHERE r.board_gen = d.board_gen AND r.win = d.win)"
                    " SELECT count(*) FROM d",
                    4, p);
    if (!pg_ok(r)) {
        st = failed(c, r, "deleting the counts of archived windows");
        PQclear(PQexec(c, "ROLLBACK"));
        goto out;
    }
    out->windows_retired = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    st = run(c, "COMMIT", "retiring windows", NULL);
out:
    buf_free(&gens);
    buf_free(&prevs);
    buf_free(&kept);
    return st;
}

/* Detach (CONCURRENTLY: readers and writers of the other partitions never wait) and drop each
 * partition `list_sql` names (name, detaching); a detach interrupted earlier is finished. */
static q_status_t drop_partitions(PGconn *c, const char *parent, const char *list_sql, const char *const *p,
                                  int np, long *dropped)
{
    *dropped = 0;
    PGresult *r = exec_params(c, list_sql, np, p);
    if (!pg_ok(r))
        return failed(c, r, "listing partitions to drop");
    /* A concurrent detach waits for every transaction that may still see the partition: longer
     * than a read may take. Only this session, for these statements. */
    char saved[32] = "";
    q_status_t st = PQntuples(r) > 0 ? lift_timeout(c, saved) : Q_OK;
    for (int i = 0; i < PQntuples(r) && st == Q_OK; i++) {
        char *name = PQescapeIdentifier(c, PQgetvalue(r, i, 0), strlen(PQgetvalue(r, i, 0)));
        if (!name) {
            st = Q_ERROR;
            break;
        }
        char sql[256];
        /* detaching: t (a detach to finish), f (attached), or null (detached already, a drop
         * that failed: just drop it). */
        const char *how = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1)[0] == 't' ? "FINALIZE" : "CONCURRENTLY";
        if (how) {
            snprintf(sql, sizeof sql, "ALTER TABLE %s DETACH PARTITION %s %s", parent, name, how);
            st = run(c, sql, "detaching a partition", NULL);
        }
        if (st == Q_OK) {
            snprintf(sql, sizeof sql, "DROP TABLE %s", name);
            st = run(c, sql, "dropping a partition", NULL);
        }
        if (st == Q_OK)
            (*dropped)++;
        PQfreemem(name);
    }
    if (PQntuples(r) > 0 && saved[0] && restore_timeout(c, saved) != Q_OK)
        st = Q_UNAVAILABLE; /* the connection goes: it must not keep no timeout */
    PQclear(r);
    return st;
}

q_status_t upkeep_drop_orphans(PGconn *c, long *dropped)
{
    return drop_partitions(c, "archive", "SELECT name, detaching FROM rankd_archive_orphans()", NULL, 0, dropped);
}

q_status_t upkeep_drop_log_months(PGconn *c, int64_t before_ms, long *dropped)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%" PRId64, before_ms);
    const char *p[] = {ms};
    q_status_t st = drop_partitions(c, "submissions",
                                    "SELECT name, detaching FROM rankd_log_months_before("
                                    "timestamptz 'epoch' + $1::bigint * interval '1 millisecond')",
                                    p, 1, dropped);
    if (st != Q_OK)
        return st;
    PGresult *r = exec_params(c, "SELECT rankd_activity_forget(timestamptz 'epoch' + $1::bigint * interval '1 millisecond')",
                              1, p);
    if (!pg_ok(r))
        return failed(c, r, "forgetting the activity of dropped log months");
    PQclear(r);
    return Q_OK;
}

/* ---------------------------------------------------------------- old tournament entrants */

/* Run `sql` ($1 = gen, $2 = batch) until it removes fewer than `batch` rows or `until` passes:
 * true in `*all` when it got to the end. */
static q_status_t delete_in_batches(PGconn *c, const char *sql, const char *const *p, int batch, int64_t until,
                                    const char *what, bool *all)
{
    *all = false;
    while (clock_mono_ms() < until) {
        PGresult *r = exec_params(c, sql, 2, p);
        if (!pg_ok(r))
            return failed(c, r, what);
        long d = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        if (d < batch) {
            *all = true;
            break;
        }
    }
    return Q_OK;
}

q_status_t upkeep_drop_old_entrants(PGconn *c, int64_t now_ms, int batch, int budget_ms, bool *all)
{
    char now[24], lim[16];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(lim, sizeof lim, "%d", batch);
    const char *p[] = {now, lim};
    /* Older than the previous window: a day, a week, or (from a month's first day) 31 days back. */
#define OLD_WIN "e.win < " CURRENT_WIN " - CASE b.reset WHEN 'daily' THEN 1 WHEN 'weekly' THEN 7 ELSE 31 END"
    PGresult *r = exec_params(c,
                              "WITH s AS (DELETE FROM tournament_slots e USING boards b"
                              "  WHERE b.gen = e.board_gen AND b.reset <> 'none' AND " OLD_WIN ")"
                              " SELECT 1",
                              1, p);
    if (!pg_ok(r))
        return failed(c, r, "dropping old tournament slots");
    PQclear(r);
    q_status_t st = delete_in_batches(c,
                                      "WITH d AS (DELETE FROM tournament_entrants WHERE ctid = ANY(ARRAY("
                                      "  SELECT e.ctid FROM tournament_entrants e JOIN boards b ON b.gen = e.board_gen"
                                      "  WHERE b.reset <> 'none' AND " OLD_WIN " LIMIT $2::int)) RETURNING 1)"
                                      " SELECT count(*) FROM d",
                                      p, batch, clock_mono_ms() + budget_ms, "dropping old tournament entrants", all);
#undef OLD_WIN
    return st;
}

/* ---------------------------------------------------------------- statistics */

q_status_t upkeep_analyze(PGconn *c)
{
    PGresult *r = exec_params(c,
                              "SELECT format('%I.%I', schemaname, relname), relname FROM pg_stat_user_tables"
                              " WHERE schemaname = current_schema()"
                              "   AND relname IN ('standings', 'rank_buckets', 'rank_supers', 'window_counts',"
                              "                   'idempotency_keys', 'league_members', 'league_cohorts',"
                              "                   'tournament_entrants')"
                              "   AND n_mod_since_analyze >= greatest(1000, n_live_tup / 2)"
                              " ORDER BY relname",
                              0, NULL);
    if (!pg_ok(r))
        return failed(c, r, "finding tables to analyze");
    q_status_t st = Q_OK;
    char saved[32];
    if (PQntuples(r) > 0)
        st = lift_timeout(c, saved); /* a big table's sample takes a while to read */
    for (int i = 0; st == Q_OK && i < PQntuples(r); i++) {
        char sql[256];
        snprintf(sql, sizeof sql, "ANALYZE %s", PQgetvalue(r, i, 0));
        int64_t t0 = clock_mono_ms();
        st = run(c, sql, "analyzing a table", NULL);
        if (st == Q_OK) {
            log_info(NULL, "analyzed %s in %lld ms: half its rows or more changed since its last statistics",
                     PQgetvalue(r, i, 1), (long long)(clock_mono_ms() - t0));
        }
    }
    if (PQntuples(r) > 0 && restore_timeout(c, saved) != Q_OK)
        st = Q_UNAVAILABLE;
    PQclear(r);
    return st;
}

/* ---------------------------------------------------------------- rank buckets */

/* At most 8 splits and merges per transaction: each holds the window's counter row, so its
 * writers wait for at most 8 reads of one bucket's worth of the index. */
static const char recut_sql[] = "SELECT rankd_rank_buckets_recut($1, $2, $3, 8)";

q_status_t upkeep_recut(PGconn *c, int min_rows, int budget_ms, long *changes)
{
    *changes = 0;
    int64_t until = clock_mono_ms() + budget_ms;
    char min[16];
    snprintf(min, sizeof min, "%d", min_rows);
    const char *p[] = {min};
    PGresult *w = exec_params(c, "SELECT board_gen, win, target FROM rankd_rank_buckets_drifted($1)", 1, p);
    if (!pg_ok(w))
        return failed(c, w, "finding rank buckets to re-cut");
    q_status_t st = Q_OK;
    /* A window that fails (logged) does not hold back the others; a broken connection does. */
    for (int i = 0; i < PQntuples(w) && st != Q_UNAVAILABLE && clock_mono_ms() < until; i++) {
        const char *rp[] = {PQgetvalue(w, i, 0), PQgetvalue(w, i, 1), PQgetvalue(w, i, 2)};
        for (long done = 1; done > 0 && clock_mono_ms() < until;) {
            PGresult *r = exec_params(c, recut_sql, 3, rp);
            if (!pg_ok(r)) {
                st = failed(c, r, "re-cutting rank buckets");
                break;
            }
            done = strtol(PQgetvalue(r, 0, 0), NULL, 10);
            *changes += done;
            PQclear(r);
        }
    }
    PQclear(w);
    return st;
}
