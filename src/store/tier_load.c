/* store/tier_load.c — a window's standings and number from one snapshot; see tier_load.h. */
#include "store/pg_error.h"
#include "store/tier_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "store/pg_pool.h"

#define FETCH_ROWS 20000
#define FETCH_SQL "FETCH 20000 FROM rankd_tier" /* FETCH_ROWS */

static bool run(PGconn *c, const char *sql, int n, const char *const *params, PGresult **out)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    bool ok = pg_ok(r);
    char pe[PG_ERROR_MAX];
    if (!ok)
        log_warn(NULL, "rank tier load: %s", pg_error_text(c, r, pe, sizeof pe));
    if (ok && out)
        *out = r;
    else
        PQclear(r);
    return ok;
}

q_status_t tier_load_window(PGconn *c, int64_t gen, int64_t day, const tier_load_sink_t *sink, int64_t *seq)
{
    char g[24], d[24];
    snprintf(g, sizeof g, "%lld", (long long)gen);
    snprintf(d, sizeof d, "%lld", (long long)day);
    const char *params[2] = {g, d};
    PGresult *r = NULL;
    *seq = 0;
    /* One snapshot for the number and the rows: a transaction is in both or in neither. */
    if (!run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL))
        return PQstatus(c) == CONNECTION_OK ? Q_ERROR : Q_UNAVAILABLE;
    if (!run(c, "SELECT coalesce((SELECT seq FROM window_counts WHERE board_gen = $1 AND win = DATE '1970-01-01' + $2::int), 0)",
             2, params, &r))
        goto failed;
    *seq = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (!run(c,
             "DECLARE rankd_tier NO SCROLL CURSOR FOR SELECT player_id, sort_key, achieved_ms, metadata FROM standings"
             " WHERE board_gen = $1 AND win = DATE '1970-01-01' + $2::int ORDER BY sort_key, achieved_ms, player_id",
             2, params, NULL))
        goto failed;
    for (;;) {
        if (sink->cancelled && sink->cancelled(sink->arg)) {
            PQclear(PQexec(c, "ROLLBACK"));
            return Q_UNAVAILABLE;
        }
        if (!run(c, FETCH_SQL, 0, NULL, &r))
            goto failed;
        int n = PQntuples(r);
        for (int i = 0; i < n; i++)
            sink->row(sink->arg, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), strtoll(PQgetvalue(r, i, 1), NULL, 10),
                      strtoll(PQgetvalue(r, i, 2), NULL, 10), PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3),
                      (size_t)PQgetlength(r, i, 3));
        PQclear(r);
        if (n < FETCH_ROWS)
            break;
    }
    if (!run(c, "COMMIT", 0, NULL, NULL))
        return PQstatus(c) == CONNECTION_OK ? Q_ERROR : Q_UNAVAILABLE;
    return Q_OK;
failed:
    if (PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));
    return PQstatus(c) == CONNECTION_OK ? Q_ERROR : Q_UNAVAILABLE;
}
