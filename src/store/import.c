/* store/import.c — the import's transaction: COPY, then a set-based merge; see import.h. */
#include "store/import.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "store/pg_error.h"
#include "store/pg_pool.h"
#include "store/write_sql.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/clock.h"

struct store_import {
    PGconn *c;
    int64_t gen, day, now_ms;
    board_sort_t sort;
    board_op_t op;
    import_mode_t mode;
    bool copying;   /* COPY FROM STDIN under way */
    bool repeats;   /* some player has more than one row: the fold goes row by row */
    bool once_known; /* no player has two rows, as the importer knows: no need to look */
    bool in_txn;
    char gen_text[24], day_text[24], now_text[24];
    int64_t lap_ms;     /* monotonic: the end of the last step timed */
    char laps[320];     /* "copy 812 ms, fold 950 ms, …" for the log */
};

/* Note how long the step that just ended took. */
static void lap(store_import_t *im, const char *step)
{
    int64_t now = clock_mono_ms();
    size_t n = strlen(im->laps);
    if (n < sizeof im->laps - 1)
        snprintf(im->laps + n, sizeof im->laps - n, "%s%s %lld ms", n ? ", " : "", step, (long long)(now - im->lap_ms));
    im->lap_ms = now;
}

bool import_mode_parse(const char *s, import_mode_t *out)
{
    if (strcmp(s, "submit") == 0)
        *out = IMPORT_SUBMIT;
    else if (strcmp(s, "replace") == 0)
        *out = IMPORT_REPLACE;
    else
        return false;
    return true;
}

static void fail(import_error_t *err, int status, const char *code, const char *field, long line, const char *fmt,
                 ...) __attribute__((format(printf, 6, 7)));
static void fail(import_error_t *err, int status, const char *code, const char *field, long line, const char *fmt, ...)
{
    err->status = status;
    err->code = code;
    err->field = field;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* A failed statement: 503 when the database is gone, else 500; the details go to the log only. */
static void failed_statement(store_import_t *im, const char *what, const PGresult *r, import_error_t *err)
{
    char pe[PG_ERROR_MAX];
    log_error(NULL, "import of board generation %" PRId64 ": %s failed: %s", im->gen, what,
              pg_error_text(im->c, r, pe, sizeof pe));
    if (PQstatus(im->c) != CONNECTION_OK)
        fail(err, 503, "unavailable", NULL, 0, "the primary database is unavailable");
    else
        fail(err, 500, "internal", NULL, 0, "the import could not be stored");
}

/* Run `sql` with the window's parameters ($1 gen, $2 day, $3 now_ms, then `extra`); the result
 * when it succeeded (the caller clears it), else NULL with `err` set. */
static PGresult *run(store_import_t *im, const char *what, const char *sql, int n_extra, const char *const *extra,
                     import_error_t *err)
{
    const char *params[8] = {im->gen_text, im->day_text, im->now_text};
    for (int i = 0; i < n_extra && i < 5; i++)
        params[3 + i] = extra[i];
    /* $1..$3 are bigints whether a statement names them or not; the others take their type from
     * where they stand. */
    static const Oid types[8] = {20, 20, 20};
    PGresult *r = PQexecParams(im->c, sql, 3 + n_extra, types, params, NULL, NULL, 0);
    if (pg_ok(r))
        return r;
    failed_statement(im, what, r, err);
    PQclear(r);
    return NULL;
}

static bool run_ok(store_import_t *im, const char *what, const char *sql, import_error_t *err)
{
    PGresult *r = run(im, what, sql, 0, NULL, err);
    PQclear(r);
    return r != NULL;
}

static bool simple(store_import_t *im, const char *sql, import_error_t *err)
{
    PGresult *r = PQexec(im->c, sql);
    bool ok = pg_ok(r);
    if (!ok)
        failed_statement(im, sql, r, err);
    PQclear(r);
    return ok;
}

store_import_t *store_import_begin(PGconn *c, const board_t *b, int64_t day, import_mode_t mode, int64_t now_ms,
                                   int64_t idle_ms, import_error_t *err)
{
    store_import_t *im = xcalloc(1, sizeof *im);
    im->c = c;
    im->gen = b->gen;
    im->day = day;
    im->now_ms = now_ms;
    im->sort = b->sort;
    im->op = b->op;
    im->mode = mode;
    im->lap_ms = clock_mono_ms();
    snprintf(im->gen_text, sizeof im->gen_text, "%" PRId64, b->gen);
    snprintf(im->day_text, sizeof im->day_text, "%" PRId64, day);
    snprintf(im->now_text, sizeof im->now_text, "%" PRId64, now_ms);
    char sql[512];
    /* The merge of a million rows takes seconds: no statement limit, room to sort and hash in
     * memory, and the staging table in memory (temp_buffers counts before its first use). */
    snprintf(sql, sizeof sql,
             "SET temp_buffers = '256MB'; BEGIN; SET LOCAL statement_timeout = 0; SET LOCAL work_mem = '128MB';"
             " SET LOCAL idle_in_transaction_session_timeout = %lld",
             (long long)(idle_ms > 0 ? idle_ms : 0));
    bool ok = simple(im, sql, err);
    im->in_txn = ok;
    ok = ok && simple(im,
                      "CREATE TEMP TABLE rankd_import (line bigint NOT NULL, player_id text COLLATE \"C\" NOT NULL,"
                      " score bigint NOT NULL, achieved_ms bigint, metadata text) ON COMMIT DROP",
                      err);
    if (ok) {
        PGresult *r = PQexec(c, "COPY rankd_import FROM STDIN");
        ok = PQresultStatus(r) == PGRES_COPY_IN;
        if (!ok)
            failed_statement(im, "COPY", r, err);
        PQclear(r);
        im->copying = ok;
    }
    if (!ok) {
        store_import_end(im);
        return NULL;
    }
    return im;
}

void store_import_players_once(store_import_t *im)
{
    im->once_known = true;
}

bool store_import_send(store_import_t *im, const char *data, size_t len, import_error_t *err)
{
    if (len == 0)
        return true;
    if (PQputCopyData(im->c, data, (int)len) != 1) {
        failed_statement(im, "COPY", NULL, err);
        return false;
    }
    return true;
}

/* The sort key of a score column (score for asc boards, -score for desc). */
static const char *sk(const store_import_t *im)
{
    return im->sort == SORT_DESC ? "-" : "";
}

/* The first row whose SQL `condition` holds over rankd_import_fold (or rankd_import): 0 when none. */
static long first_line(store_import_t *im, const char *sql, import_error_t *err, bool *ok)
{
    PGresult *r = run(im, "a check", sql, 0, NULL, err);
    *ok = r != NULL;
    long line = r && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return line;
}

/* rankd_import_fold: each row, whether it changed its player's standing, and that standing's
 * score after it, folded in file order from the standing read under the window's lock. */
static bool fold(store_import_t *im, import_error_t *err)
{
    char sql[2048];
    const char *join = "FROM rankd_import r LEFT JOIN standings s"
                       " ON s.board_gen = $1 AND s.win = DATE '1970-01-01' + $2::int AND s.player_id = r.player_id";
    if (!im->repeats) {
        /* An empty window (a board's first load; checked under the window's lock, which keeps
         * writers out): every row makes its player's standing, with nothing to join or copy. */
        PGresult *r = run(im, "a check",
                          "SELECT NOT EXISTS (SELECT 1 FROM standings WHERE board_gen = $1"
                          " AND win = DATE '1970-01-01' + $2::int)",
                          0, NULL, err);
        if (!r)
            return false;
        bool empty = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        if (empty) {
            snprintf(sql, sizeof sql,
                     "CREATE TEMP VIEW rankd_import_fold AS SELECT line, player_id, score,"
                     " coalesce(achieved_ms, %s::bigint) AS achieved_ms, metadata, false AS existed, true AS updated,"
                     " score::numeric AS after FROM rankd_import",
                     im->now_text);
            return simple(im, sql, err);
        }
    }
    if (im->mode == IMPORT_REPLACE) {
        /* A row without achieved_at keeps the standing's time when the score stays. */
        snprintf(sql, sizeof sql,
                 "CREATE TEMP TABLE rankd_import_fold ON COMMIT DROP AS"
                 " SELECT r.line, r.player_id, r.score, a.ms AS achieved_ms, r.metadata, s.player_id IS NOT NULL AS existed,"
                 "  (s.player_id IS NULL OR s.score <> r.score OR s.achieved_ms <> a.ms"
                 "   OR s.metadata IS DISTINCT FROM r.metadata) AS updated, r.score::numeric AS after"
                 " %s CROSS JOIN LATERAL (SELECT coalesce(r.achieved_ms,"
                 "  CASE WHEN s.score = r.score THEN s.achieved_ms ELSE $3 END) AS ms) a",
                 join);
        return run_ok(im, "the fold", sql, err);
    }
    if (!im->repeats) {
        /* Each player once (a dump of another service): a row is folded with the stored standing
         * alone, no sort by player needed. */
        char updated[160];
        const char *after = "r.score::numeric";
        switch (im->op) {
        case OP_BEST:
            snprintf(updated, sizeof updated, "(s.player_id IS NULL OR %sr.score < s.sort_key)", sk(im));
            break;
        case OP_LATEST:
            snprintf(updated, sizeof updated, "s.score IS DISTINCT FROM r.score");
            break;
        case OP_SUM:
            snprintf(updated, sizeof updated, "(s.player_id IS NULL OR r.score <> 0)");
            after = "coalesce(s.score, 0) + r.score";
            break;
        }
        snprintf(sql, sizeof sql,
                 "CREATE TEMP TABLE rankd_import_fold ON COMMIT DROP AS"
                 " SELECT r.line, r.player_id, r.score, coalesce(r.achieved_ms, $3) AS achieved_ms, r.metadata,"
                 "  s.player_id IS NOT NULL AS existed, %s AS updated, %s AS after %s",
                 updated, after, join);
        return run_ok(im, "the fold", sql, err);
    }
    const char *window_col = "", *updated = "", *after = "";
    char best_updated[256];
    switch (im->op) {
    case OP_BEST: {
        snprintf(best_updated, sizeof best_updated,
                 "(least(old_sk, prior_sk) IS NULL OR %sscore < least(old_sk, prior_sk))", sk(im));
        window_col = im->sort == SORT_DESC
                         ? "min(-r.score) OVER (p ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prior_sk"
                         : "min(r.score) OVER (p ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prior_sk";
        updated = best_updated;
        after = "score::numeric";
        break;
    }
    case OP_LATEST:
        window_col = "lag(r.score) OVER p AS prev_score";
        updated = "CASE WHEN nth = 1 THEN old_score IS DISTINCT FROM score ELSE prev_score <> score END";
        after = "score::numeric";
        break;
    case OP_SUM:
        window_col = "sum(r.score) OVER (p ROWS UNBOUNDED PRECEDING) AS running";
        updated = "((nth = 1 AND old_score IS NULL) OR score <> 0)";
        after = "coalesce(old_score, 0) + running";
        break;
    }
    snprintf(sql, sizeof sql,
             "CREATE TEMP TABLE rankd_import_fold ON COMMIT DROP AS"
             " SELECT line, player_id, score, achieved_ms, metadata, existed, %s AS updated, %s AS after FROM ("
             "  SELECT r.line, r.player_id, r.score, coalesce(r.achieved_ms, $3) AS achieved_ms, r.metadata,"
             "   s.player_id IS NOT NULL AS existed, s.score AS old_score, s.sort_key AS old_sk,"
             "   row_number() OVER p AS nth, %s"
             "  %s WINDOW p AS (PARTITION BY r.player_id ORDER BY r.line)) x",
             updated, after, window_col, join);
    return run_ok(im, "the fold", sql, err);
}

/* In replace mode, a player named twice. */
static bool check_players_once(store_import_t *im, import_error_t *err)
{
    if (im->once_known) {
        im->repeats = false;
        return true;
    }
    PGresult *r = run(im, "a check",
                      "SELECT EXISTS (SELECT 1 FROM rankd_import GROUP BY player_id HAVING count(*) > 1)", 0, NULL, err);
    if (!r)
        return false;
    im->repeats = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    bool ok = true;
    long line;
    if (im->mode == IMPORT_REPLACE && im->repeats) {
        line = first_line(im,
                          "SELECT line FROM (SELECT line, row_number() OVER (PARTITION BY player_id ORDER BY line) AS n"
                          " FROM rankd_import) x WHERE n = 2 ORDER BY line LIMIT 1",
                          err, &ok);
        if (ok && line > 0) {
            fail(err, 400, "invalid_argument", "player_id", line,
                 "line %ld names a player an earlier line named: in replace mode each player has one row", line);
            return false;
        }
    }
    return ok;
}

/* On a sum board, a row whose running sum leaves the score range (as a submission it would fail). */
static bool check_sums(store_import_t *im, import_error_t *err)
{
    bool ok = true;
    long line;
    if (im->mode == IMPORT_SUBMIT && im->op == OP_SUM) {
        line = first_line(im,
                          "SELECT min(line) FROM rankd_import_fold"
                          " WHERE after < -9007199254740991 OR after > 9007199254740991",
                          err, &ok);
        if (ok && line > 0) {
            fail(err, 400, "invalid_argument", "score", line, "line %ld: the sum would leave the score range", line);
            return false;
        }
    }
    return ok;
}

/* Count a statement's rows: -1 when it failed. */
static long command_rows(store_import_t *im, const char *what, const char *sql, import_error_t *err)
{
    PGresult *r = run(im, what, sql, 0, NULL, err);
    long n = r ? strtol(PQcmdTuples(r), NULL, 10) : -1;
    PQclear(r);
    return n;
}

static bool merge(store_import_t *im, int rank_bucket_rows, import_counts_t *out, import_error_t *err)
{
    char sql[1024];
    /* A player's standing after the file: its last row that changed it. With each player once, that
     * is the row itself (a view, not a copy of the rows). */
    bool ok = run_ok(im, "the final standings",
                     im->repeats ? "CREATE TEMP TABLE rankd_import_final ON COMMIT DROP AS"
                                   " SELECT DISTINCT ON (player_id) player_id, after::bigint AS score, achieved_ms,"
                                   " metadata, existed FROM rankd_import_fold WHERE updated ORDER BY player_id, line DESC"
                                 : "CREATE TEMP VIEW rankd_import_final AS SELECT player_id, after::bigint AS score,"
                                   " achieved_ms, metadata, existed FROM rankd_import_fold WHERE updated",
                     err);
    PGresult *r = ok ? run(im, "the counts",
                           im->repeats
                               ? "SELECT (SELECT count(*) FROM rankd_import),"
                                 " (SELECT count(*) FROM (SELECT DISTINCT player_id FROM rankd_import) d),"
                                 " count(*) FILTER (WHERE NOT existed), count(*) FILTER (WHERE existed)"
                                 " FROM rankd_import_final"
                               : "SELECT count(*), count(*), count(*) FILTER (WHERE updated AND NOT existed),"
                                 " count(*) FILTER (WHERE updated AND existed) FROM rankd_import_fold",
                           0, NULL, err)
                     : NULL;
    if (!r)
        return false;
    out->rows = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    long players = strtol(PQgetvalue(r, 0, 1), NULL, 10);
    out->created = strtol(PQgetvalue(r, 0, 2), NULL, 10);
    out->updated = strtol(PQgetvalue(r, 0, 3), NULL, 10);
    out->unchanged = players - out->created - out->updated;
    PQclear(r);
    const char *win = "DATE '1970-01-01' + $2::int";
    if (im->mode == IMPORT_REPLACE) {
        snprintf(sql, sizeof sql,
                 "DELETE FROM standings s WHERE s.board_gen = $1 AND s.win = %s"
                 " AND NOT EXISTS (SELECT 1 FROM rankd_import r WHERE r.player_id = s.player_id)",
                 win);
        out->removed = command_rows(im, "removing standings", sql, err);
        if (out->removed < 0)
            return false;
    }
    /* Nobody else writes the window while the import holds its lock: a standing that existed
     * under the lock is updated, the others inserted. */
    snprintf(sql, sizeof sql,
             "UPDATE standings s SET score = f.score, sort_key = %sf.score, achieved_ms = f.achieved_ms,"
             " metadata = f.metadata, version = nextval('standing_version') FROM rankd_import_final f"
             " WHERE f.existed AND s.board_gen = $1 AND s.win = %s AND s.player_id = f.player_id",
             sk(im), win);
    lap(im, "final");
    if (command_rows(im, "updating standings", sql, err) < 0)
        return false;
    snprintf(sql, sizeof sql,
             "INSERT INTO standings (board_gen, win, player_id, score, sort_key, achieved_ms, metadata, version)"
             " SELECT $1, %s, f.player_id, f.score, %sf.score, f.achieved_ms, f.metadata, nextval('standing_version')"
             " FROM rankd_import_final f WHERE NOT f.existed",
             win, sk(im));
    if (command_rows(im, "inserting standings", sql, err) < 0)
        return false;
    /* The hidden players' standings back where no ranking counts them (a hidden player new to
     * the window included), before the buckets are cut and the players counted; their rows are
     * logged, not counted in the window's submissions (store/moderation.c). */
    r = run(im, "hidden standings",
            "WITH m AS (DELETE FROM standings s USING hidden_players h WHERE s.board_gen = $1"
            " AND s.win = DATE '1970-01-01' + $2::int AND h.board_gen = $1 AND h.player_id = s.player_id RETURNING s.*),"
            " i AS (INSERT INTO hidden_standings SELECT * FROM m)"
            " SELECT count(*) FROM rankd_import r JOIN hidden_players h ON h.board_gen = $1 AND h.player_id = r.player_id",
            0, NULL, err);
    if (!r)
        return false;
    long hidden_rows = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    lap(im, "standings");
    /* Logged as received now, as the merge logs them (rankd's clock), not at the row's
     * achieved_at: a dump's rows are years old (or 1970), and the log is partitioned by month of
     * receipt, made ahead from now only. So every row lands in the month being written, where
     * retention, the daily activity (it counts the days from its last run on, and a body may
     * stream for minutes before this) and a player's deletion find it; the row's time stays in
     * its standing. */
    char logged_text[24];
    snprintf(logged_text, sizeof logged_text, "%" PRId64, clock_wall_ms());
    const char *log_params[] = {logged_text};
    snprintf(sql, sizeof sql,
             "INSERT INTO submissions (board_gen, win, player_id, score, metadata, updated, received_at)"
             " SELECT $1, %s, player_id, score, metadata, updated,"
             " timestamptz 'epoch' + $4::bigint * interval '1 millisecond' FROM rankd_import_fold",
             win);
    r = run(im, "logging the rows", sql, 1, log_params, err);
    PQclear(r);
    if (!r)
        return false;
    lap(im, "log");
    char rows_text[24], min_rows[24];
    snprintf(rows_text, sizeof rows_text, "%ld", out->rows - hidden_rows);
    snprintf(min_rows, sizeof min_rows, "%d", rank_bucket_rows);
    const char *counts_params[] = {rows_text};
    snprintf(sql, sizeof sql,
             "INSERT INTO window_counts (board_gen, win, players, submissions, seq) VALUES ($1, %s, 0, $4, 1)"
             " ON CONFLICT (board_gen, win) DO UPDATE SET submissions = window_counts.submissions + EXCLUDED.submissions,"
             " seq = window_counts.seq + 1 RETURNING seq",
             win);
    r = run(im, "the window's counts", sql, 1, counts_params, err);
    if (!r)
        return false;
    out->seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    /* The buckets cut afresh (and the window's player count set): exact ranks at once. */
    const char *bucket_params[] = {min_rows};
    snprintf(sql, sizeof sql, "SELECT rankd_rank_buckets_build($1, %s, $4)", win);
    r = run(im, "cutting the rank buckets", sql, 1, bucket_params, err);
    PQclear(r);
    if (!r)
        return false;
    lap(im, "buckets");
    char notice[64];
    snprintf(notice, sizeof notice, "P %" PRId64 " %" PRId64, im->gen, im->day);
    const char *notice_params[] = {notice};
    r = run(im, "the notice", "SELECT pg_notify('rankd_l1', $4)", 1, notice_params, err);
    PQclear(r);
    return r != NULL;
}

/* Claim the key, or find what it answered. 1: claimed; 0: replayed or refused (`err`/`answer`);
 * -1: failed. */
static int claim_key(store_import_t *im, const import_key_t *key, char **answer, import_error_t *err)
{
    const char *p[] = {im->gen_text, key->key, key->request};
    PGresult *r = PQexecParams(im->c,
                               "INSERT INTO idempotency_keys (board_gen, key, request) VALUES ($1, $2, $3)"
                               " ON CONFLICT DO NOTHING RETURNING 1",
                               3, NULL, p, NULL, NULL, 0);
    if (!pg_ok(r)) {
        failed_statement(im, "claiming the idempotency key", r, err);
        PQclear(r);
        return -1;
    }
    int claimed = PQntuples(r) == 1;
    PQclear(r);
    if (claimed)
        return 1;
    r = PQexecParams(im->c, "SELECT request, response FROM idempotency_keys WHERE board_gen = $1 AND key = $2", 2, NULL,
                     p, NULL, NULL, 0);
    if (!pg_ok(r) || PQntuples(r) != 1) {
        failed_statement(im, "reading the idempotency key", r, err);
        PQclear(r);
        return -1;
    }
    if (strcmp(PQgetvalue(r, 0, 0), key->request) != 0)
        fail(err, 409, "conflict", NULL, 0, "idempotency key was used with a different request");
    else if (PQgetisnull(r, 0, 1))
        fail(err, 409, "conflict", NULL, 0, "an import with this idempotency key is under way");
    else
        *answer = xstrdup(PQgetvalue(r, 0, 1));
    PQclear(r);
    return 0;
}

import_result_t store_import_finish(store_import_t *im, const import_key_t *key, int rank_bucket_rows,
                                    import_render_fn render, void *render_arg, import_counts_t *out, char **answer,
                                    import_error_t *err)
{
    memset(out, 0, sizeof *out);
    *answer = NULL;
    im->copying = false;
    PGresult *r;
    if (PQputCopyEnd(im->c, NULL) != 1) {
        failed_statement(im, "ending the COPY", NULL, err);
        return IMPORT_FAILED;
    }
    r = PQgetResult(im->c);
    bool ok = pg_ok(r);
    if (!ok)
        failed_statement(im, "COPY", r, err);
    PQclear(r);
    while ((r = PQgetResult(im->c)))
        PQclear(r);
    if (!ok)
        return IMPORT_FAILED;
    lap(im, "rows in");
    if (!simple(im, "ANALYZE rankd_import", err))
        return IMPORT_FAILED;
    lap(im, "analyze");
    if (!check_players_once(im, err))
        return IMPORT_FAILED;
    lap(im, im->once_known ? "players once (known)" : "players once");
    if (key) {
        int k = claim_key(im, key, answer, err);
        if (k <= 0)
            return *answer ? IMPORT_REPLAYED : IMPORT_FAILED;
    }
    /* The board still there, then the window to ourselves (writers of it wait from here on). */
    r = run(im, "locking the board", "SELECT 1 FROM boards WHERE gen = $1 FOR KEY SHARE", 0, NULL, err);
    if (!r)
        return IMPORT_FAILED;
    bool board = PQntuples(r) == 1;
    PQclear(r);
    if (!board) {
        fail(err, 404, "not_found", NULL, 0, "the board was deleted during the import");
        return IMPORT_FAILED;
    }
    /* The import's own lock first: a writer that timed out on the window's lock sees it, and
     * waits for the import instead of giving up (worker/writer.c). */
    if (!run_ok(im, "locking the window",
                "SELECT pg_advisory_xact_lock(" WS_IMPORT_LOCK_KEY("$1::bigint", "DATE '1970-01-01' + $2::int") "),"
                " pg_advisory_xact_lock(rankd_archive_window_lock_key($1, DATE '1970-01-01' + $2::int))",
                err))
        return IMPORT_FAILED;
    lap(im, "lock");
    r = run(im, "the archive check",
            "SELECT 1 FROM archived_windows WHERE board_gen = $1 AND win = DATE '1970-01-01' + $2::int",
            0, NULL, err);
    if (!r)
        return IMPORT_FAILED;
    bool archived = PQntuples(r) > 0;
    PQclear(r);
    if (archived) {
        fail(err, 409, "conflict", NULL, 0, "the window closed and was archived during the import");
        return IMPORT_FAILED;
    }
    /* Hidden players' standings of the window (migrations/0025_moderation.sql) join the fold as
     * any others, under this lock (a hide or a restore waits for the import's), and go back to
     * hidden_standings in merge(): nothing outside the transaction sees them. */
    if (!run_ok(im, "hidden standings",
                "WITH h AS (DELETE FROM hidden_standings WHERE board_gen = $1 AND win = DATE '1970-01-01' + $2::int"
                " RETURNING *) INSERT INTO standings SELECT * FROM h",
                err))
        return IMPORT_FAILED;
    if (!fold(im, err) || !check_sums(im, err))
        return IMPORT_FAILED;
    lap(im, "fold");
    if (!merge(im, rank_bucket_rows, out, err))
        return IMPORT_FAILED;
    if (key) {
        *answer = render(out, render_arg);
        const char *p[] = {im->gen_text, key->key, *answer};
        r = PQexecParams(im->c, "UPDATE idempotency_keys SET response = $3 WHERE board_gen = $1 AND key = $2", 3, NULL,
                         p, NULL, NULL, 0);
        ok = pg_ok(r);
        if (!ok)
            failed_statement(im, "storing the answer", r, err);
        PQclear(r);
        if (!ok) {
            free(*answer);
            *answer = NULL;
            return IMPORT_FAILED;
        }
    }
    if (!simple(im, "COMMIT", err)) {
        free(*answer);
        *answer = NULL;
        im->in_txn = false;
        return IMPORT_FAILED;
    }
    im->in_txn = false;
    lap(im, "commit");
    log_info(NULL, "import into board generation %" PRId64 ": %ld rows; %s", im->gen, out->rows, im->laps);
    return IMPORT_DONE;
}

void store_import_end(store_import_t *im)
{
    if (!im)
        return;
    if (im->copying && PQstatus(im->c) == CONNECTION_OK) {
        if (PQputCopyEnd(im->c, "import abandoned") == 1) {
            PGresult *r;
            while ((r = PQgetResult(im->c)))
                PQclear(r);
        }
    }
    if (im->in_txn && PQstatus(im->c) == CONNECTION_OK) {
        PGresult *r = PQexec(im->c, "ROLLBACK");
        PQclear(r);
    }
    free(im);
}
