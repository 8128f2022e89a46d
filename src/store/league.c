/* store/league.c — a league board's cohorts read from PostgreSQL. */
#include "store/league.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/window.h"
#include "store/pg_pool.h"
#include "store/queries.h"
#include "util/alloc.h"

static PGresult *exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    return PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
}

void league_cohort_init(league_cohort_t *c)
{
    memset(c, 0, sizeof *c);
    entries_init(&c->entries);
}

void league_cohort_clear(league_cohort_t *c)
{
    entries_clear(&c->entries);
    free(c->moves);
    c->moves = NULL;
    c->n_moves = 0;
}

q_status_t q_league_cohort_of(PGconn *c, int64_t gen, int64_t day, const char *player, int *cohort)
{
    char g[24], d[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    snprintf(d, sizeof d, "%" PRId64, day);
    const char *p[] = {g, d, player};
    PGresult *r = exec(c,
                       "SELECT cohort FROM league_members WHERE board_gen = $1"
                       " AND win = DATE '1970-01-01' + $2::int AND player_id = $3",
                       3, p);
    if (!pg_ok(r))
        return q_failed(c, r, "league cohort of a player");
    q_status_t st = PQntuples(r) == 1 ? Q_OK : Q_NOT_FOUND;
    if (st == Q_OK)
        *cohort = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return st;
}

/* The cohort's entries: its members' standings (or, once the window is archived, their archived
 * rows: retention deletes the standings later), ranked among themselves in the board's order. */
static const char cohort_sql[] =
    "WITH m AS (SELECT player_id FROM league_members WHERE board_gen = $1 AND win = $2::date AND cohort = $3),"
    " a AS (SELECT EXISTS (SELECT 1 FROM archived_windows WHERE board_gen = $1 AND win = $2::date) AS done),"
    " e AS (SELECT s.player_id, s.score, s.sort_key, s.achieved_ms, s.metadata FROM m"
    "   JOIN standings s ON s.board_gen = $1 AND s.win = $2::date AND s.player_id = m.player_id"
    "   WHERE NOT (SELECT done FROM a)"
    "  UNION ALL SELECT x.player_id, x.score, x.sort_key, x.achieved_ms, x.metadata FROM m"
    "   JOIN archive x ON x.board_gen = $1 AND x.win = $2::date AND x.player_id = m.player_id"
    "   WHERE (SELECT done FROM a)),"
    " r AS (SELECT e.*, row_number() OVER o AS ord, rank() OVER (ORDER BY sort_key) AS comp,"
    "   dense_rank() OVER (ORDER BY sort_key) AS dense, count(*) OVER () AS n FROM e"
    "   WINDOW o AS (ORDER BY sort_key, achieved_ms, player_id COLLATE \"C\"))"
    " SELECT player_id, score, sort_key, achieved_ms, metadata, ord, comp, dense, n FROM r"
    " ORDER BY ord LIMIT $4 OFFSET $5";

q_status_t q_league_standing(PGconn *c, const board_t *b, int64_t day, rank_style_t style, entry_t *e)
{
    char g[24], d[11], sk[24], ms[24];
    snprintf(g, sizeof g, "%" PRId64, b->gen);
    window_format_day(day, d);
    snprintf(sk, sizeof sk, "%" PRId64, e->sort_key);
    snprintf(ms, sizeof ms, "%" PRId64, e->achieved_ms);
    const char *p[] = {g, d, e->player, sk, ms};
    PGresult *r = exec(c,
                       "WITH me AS (SELECT cohort, tier FROM league_members"
                       "   WHERE board_gen = $1 AND win = $2::date AND player_id = $3),"
                       " a AS (SELECT EXISTS (SELECT 1 FROM archived_windows WHERE board_gen = $1 AND win = $2::date) AS done),"
                       " m AS (SELECT player_id FROM league_members WHERE board_gen = $1 AND win = $2::date"
                       "   AND cohort = (SELECT cohort FROM me)),"
                       " e AS (SELECT s.player_id, s.sort_key, s.achieved_ms FROM m"
                       "   JOIN standings s ON s.board_gen = $1 AND s.win = $2::date AND s.player_id = m.player_id"
                       "   WHERE NOT (SELECT done FROM a)"
                       "  UNION ALL SELECT x.player_id, x.sort_key, x.achieved_ms FROM m"
                       "   JOIN archive x ON x.board_gen = $1 AND x.win = $2::date AND x.player_id = m.player_id"
                       "   WHERE (SELECT done FROM a))"
                       " SELECT me.cohort, me.tier,"
                       "  1 + (SELECT count(*) FROM e WHERE (e.sort_key, e.achieved_ms, e.player_id COLLATE \"C\")"
                       "   < ($4::bigint, $5::bigint, $3::text COLLATE \"C\")),"
                       "  1 + (SELECT count(*) FROM e WHERE e.sort_key < $4::bigint),"
                       "  1 + (SELECT count(DISTINCT e.sort_key) FROM e WHERE e.sort_key < $4::bigint)"
                       " FROM me",
                       5, p);
    if (!pg_ok(r))
        return q_failed(c, r, "league standing");
    if (PQntuples(r) == 1) {
        e->cohort = atoi(PQgetvalue(r, 0, 0));
        e->tier = atoi(PQgetvalue(r, 0, 1));
        e->cohort_rank = strtoll(PQgetvalue(r, 0, style == RANK_COMPETITION ? 3 : style == RANK_DENSE ? 4 : 2), NULL, 10);
    }
    PQclear(r);
    return Q_OK;
}

q_status_t q_league_cohort(PGconn *c, const board_t *b, int64_t day, int cohort, rank_style_t style, int64_t limit,
                           int64_t offset, league_cohort_t *out)
{
    char g[24], d[11], co[16], lim[24], off[24];
    snprintf(g, sizeof g, "%" PRId64, b->gen);
    window_format_day(day, d);
    snprintf(co, sizeof co, "%d", cohort);
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    snprintf(off, sizeof off, "%" PRId64, offset);
    const char *p[] = {g, d, co, lim, off};
    /* One snapshot: the cohort, its entries and the window's moves agree. */
    PGresult *r = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!pg_ok(r))
        return q_failed(c, r, "league cohort");
    PQclear(r);
    q_status_t st = Q_OK;
    r = exec(c,
             "SELECT k.tier, w.settled, (SELECT count(*) FROM league_members m JOIN standings s"
             "   ON s.board_gen = m.board_gen AND s.win = m.win AND s.player_id = m.player_id"
             "   WHERE m.board_gen = $1 AND m.win = $2::date AND m.cohort = $3)"
             " FROM league_cohorts k JOIN league_windows w ON w.board_gen = k.board_gen AND w.win = k.win"
             " WHERE k.board_gen = $1 AND k.win = $2::date AND k.cohort = $3",
             3, p);
    if (!pg_ok(r)) {
        st = q_failed(c, r, "league cohort");
        goto end;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        st = Q_NOT_FOUND;
        goto end;
    }
    out->cohort = cohort;
    out->tier = atoi(PQgetvalue(r, 0, 0));
    out->settled = PQgetvalue(r, 0, 1)[0] == 't';
    out->players = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    PQclear(r);
    r = exec(c, cohort_sql, 5, p);
    if (!pg_ok(r)) {
        st = q_failed(c, r, "league cohort entries");
        goto end;
    }
    int n = PQntuples(r);
    entries_reserve(&out->entries, (size_t)n);
    int rank_col = style == RANK_COMPETITION ? 6 : style == RANK_DENSE ? 7 : 5;
    for (int i = 0; i < n; i++) {
        entry_t *e = &out->entries.items[out->entries.n++];
        memset(e, 0, sizeof *e);
        snprintf(e->player, sizeof e->player, "%s", PQgetvalue(r, i, 0));
        e->player_len = strlen(e->player);
        e->score = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        e->sort_key = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        e->achieved_ms = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        e->metadata = PQgetisnull(r, i, 4) ? NULL : xstrdup(PQgetvalue(r, i, 4));
        e->rank = strtoll(PQgetvalue(r, i, rank_col), NULL, 10);
    }
    /* The archive holds the players the standings held when it was made: its count then. */
    if (n > 0)
        out->players = strtoll(PQgetvalue(r, 0, 8), NULL, 10);
    out->entries.total = out->players;
    PQclear(r);
    if (out->settled) {
        r = exec(c,
                 "SELECT player_id, from_tier, to_tier FROM league_moves WHERE board_gen = $1 AND win = $2::date"
                 " AND cohort = $3 AND from_tier <> to_tier ORDER BY cohort_rank",
                 3, p);
        if (!pg_ok(r)) {
            st = q_failed(c, r, "league moves");
            goto end;
        }
        out->n_moves = (size_t)PQntuples(r);
        out->moves = xcalloc(out->n_moves ? out->n_moves : 1, sizeof *out->moves);
        for (size_t i = 0; i < out->n_moves; i++) {
            snprintf(out->moves[i].player, sizeof out->moves[i].player, "%s", PQgetvalue(r, (int)i, 0));
            out->moves[i].from = atoi(PQgetvalue(r, (int)i, 1));
            out->moves[i].to = atoi(PQgetvalue(r, (int)i, 2));
        }
        PQclear(r);
    }
end:
    PQclear(PQexec(c, st == Q_OK || st == Q_NOT_FOUND ? "COMMIT" : "ROLLBACK"));
    return st;
}
