/* store/upkeep.c — the periodic upkeep statements; see upkeep.h. */
#include "store/upkeep.h"

#include <stdio.h>
#include <stdlib.h>

#include "obs/log.h"

static q_status_t run(PGconn *c, const char *sql, const char *what, PGresult **keep)
{
    PGresult *r = PQexec(c, sql);
    if (!pg_ok(r)) {
        log_warn(NULL, "%s failed: %s", what, PQresultErrorMessage(r));
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

q_status_t upkeep_ensure_partitions(PGconn *c, int months_ahead)
{
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT rankd_ensure_partitions(now(), %d)", months_ahead);
    return run(c, sql, "making the log's partitions", NULL);
}

q_status_t upkeep_forget_old_keys(PGconn *c)
{
    return run(c, "DELETE FROM idempotency_keys WHERE created_at < now() - interval '25 hours'",
               "dropping old idempotency keys", NULL);
}

q_status_t upkeep_purge_log(PGconn *c, int parts, long *done)
{
    char sql[48];
    snprintf(sql, sizeof sql, "SELECT rankd_purge_log(%d)", parts);
    char v[24];
    q_status_t st = run_value(c, sql, "purging the log of deleted boards", v, sizeof v);
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
