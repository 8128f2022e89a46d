/* store/tournament.c — a tournament's joins, attempts and places in PostgreSQL. */
#include "store/tournament.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/window.h"
#include "store/pg_pool.h"
#include "store/queries.h"

static PGresult *exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    return PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
}

q_status_t q_tournament_join(PGconn *c, const board_t *b, int64_t day, const char *player, int64_t now_ms,
                             tj_outcome_t *outcome, int64_t *joined_ms)
{
    char g[24], d[11], key[24], now[24], cap[24];
    snprintf(g, sizeof g, "%" PRId64, b->gen);
    window_format_day(day, d);
    snprintf(key, sizeof key, "%" PRId64, id_player_lock_key(b->gen, player));
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(cap, sizeof cap, "%" PRId64, b->tournament.max_players);
    const char *p[] = {g, d, player, key, now, b->tournament.max_players > 0 ? cap : NULL,
                       tournament_counts_slot(&b->tournament) ? "t" : "f"};
    PGresult *r = exec(c, "SELECT outcome, joined FROM rankd_tournament_join($1, $2, $3, $4, $5, $6, $7)", 7, p);
    if (!pg_ok(r))
        return q_failed(c, r, "tournament join");
    q_status_t st = Q_ERROR;
    if (PQntuples(r) == 1) {
        const char *o = PQgetvalue(r, 0, 0);
        st = Q_OK;
        *outcome = strcmp(o, "joined") == 0 ? TJ_JOINED : strcmp(o, "again") == 0 ? TJ_AGAIN
                   : strcmp(o, "full") == 0 ? TJ_FULL : TJ_GONE;
        *joined_ms = PQgetisnull(r, 0, 1) ? 0 : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    }
    PQclear(r);
    return st;
}

q_status_t q_tournament_add_attempts(PGconn *c, int64_t gen, int64_t day, const char *player, int64_t add,
                                     int64_t *used, int64_t *extra)
{
    char g[24], d[11], n[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    window_format_day(day, d);
    snprintf(n, sizeof n, "%" PRId64, add);
    const char *p[] = {g, d, player, n};
    /* The board's row FOR KEY SHARE: no row lands after a deletion's purge went by. */
    PGresult *r = exec(c,
                       "WITH b AS (SELECT 1 FROM boards WHERE gen = $1 FOR KEY SHARE)"
                       " INSERT INTO tournament_entrants AS t (board_gen, win, player_id, extra_attempts)"
                       " SELECT $1, $2, $3, $4 FROM b"
                       " ON CONFLICT (board_gen, win, player_id) DO UPDATE SET extra_attempts = t.extra_attempts + EXCLUDED.extra_attempts"
                       " RETURNING attempts, extra_attempts",
                       4, p);
    if (!pg_ok(r))
        return q_failed(c, r, "tournament attempts");
    q_status_t st = Q_NOT_FOUND;
    if (PQntuples(r) == 1) {
        *used = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *extra = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        st = Q_OK;
    }
    PQclear(r);
    return st;
}

q_status_t q_tournament_entrants(PGconn *c, int64_t gen, int64_t day, int64_t *n)
{
    char g[24], d[11];
    snprintf(g, sizeof g, "%" PRId64, gen);
    window_format_day(day, d);
    const char *p[] = {g, d};
    PGresult *r = exec(c, "SELECT entrants FROM tournament_slots WHERE board_gen = $1 AND win = $2", 2, p);
    if (!pg_ok(r))
        return q_failed(c, r, "tournament entrants");
    *n = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return Q_OK;
}
