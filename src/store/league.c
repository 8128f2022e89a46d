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

/* The players of cohort `cohort` (text) of window (g, d) with their standing, in the board's
 * order: from the archive when `archived`, else the standings. NULL after q_failed. */
static PGresult *cohort_rows(PGconn *c, const char *g, const char *d, const char *cohort, bool archived)
{
    const char *p[] = {g, d, cohort};
    return exec(c,
                archived ? "SELECT s.player_id, s.score, s.sort_key, s.achieved_ms, s.metadata FROM league_members m"
                           " JOIN archive s ON s.board_gen = m.board_gen AND s.win = m.win AND s.player_id = m.player_id"
                           " WHERE m.board_gen = $1 AND m.win = $2::date AND m.cohort = $3"
                           " ORDER BY s.sort_key, s.achieved_ms, s.player_id COLLATE \"C\""
                         : "SELECT s.player_id, s.score, s.sort_key, s.achieved_ms, s.metadata FROM league_members m"
                           " JOIN standings s ON s.board_gen = m.board_gen AND s.win = m.win AND s.player_id = m.player_id"
                           " WHERE m.board_gen = $1 AND m.win = $2::date AND m.cohort = $3"
                           " ORDER BY s.sort_key, s.achieved_ms, s.player_id COLLATE \"C\"",
                3, p);
}

/* cohort_rows from the archive once the window is archived; from the standings while it is not,
 * or when the archive shows none of the cohort (a plan made while its partition was attached may
 * not hold it; the standings stay well after the archive). */
static q_status_t cohort_read(PGconn *c, const char *g, const char *d, const char *cohort, bool archived,
                              PGresult **out)
{
    PGresult *r = cohort_rows(c, g, d, cohort, archived);
    if (r && pg_ok(r) && archived && PQntuples(r) == 0) {
        PQclear(r);
        r = cohort_rows(c, g, d, cohort, false);
    }
    if (!pg_ok(r))
        return q_failed(c, r, "league cohort entries");
    *out = r;
    return Q_OK;
}

/* The rank of each row of a cohort_rows result in `style`, into ranks[0..n). */
static void cohort_ranks(const PGresult *r, rank_style_t style, int64_t *ranks)
{
    int n = PQntuples(r);
    int64_t prev = 0, distinct = 0, first = 0;
    for (int i = 0; i < n; i++) {
        int64_t sk = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        if (i == 0 || sk != prev) {
            distinct++;
            first = i + 1;
        }
        prev = sk;
        ranks[i] = style == RANK_COMPETITION ? first : style == RANK_DENSE ? distinct : i + 1;
    }
}

q_status_t q_league_standing(PGconn *c, const board_t *b, int64_t day, rank_style_t style, entry_t *e)
{
    char g[24], d[11];
    snprintf(g, sizeof g, "%" PRId64, b->gen);
    window_format_day(day, d);
    const char *p[] = {g, d, e->player};
    PGresult *r = exec(c,
                       "SELECT m.cohort, m.tier, EXISTS (SELECT 1 FROM archived_windows a"
                       "   WHERE a.board_gen = $1 AND a.win = $2::date)"
                       " FROM league_members m WHERE m.board_gen = $1 AND m.win = $2::date AND m.player_id = $3",
                       3, p);
    if (!pg_ok(r))
        return q_failed(c, r, "league standing");
    if (PQntuples(r) != 1) {
        PQclear(r);
        return Q_OK;
    }
    char cohort[16];
    snprintf(cohort, sizeof cohort, "%s", PQgetvalue(r, 0, 0));
    int tier = atoi(PQgetvalue(r, 0, 1));
    bool archived = PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);
    q_status_t st = cohort_read(c, g, d, cohort, archived, &r);
    if (st != Q_OK)
        return st;
    int n = PQntuples(r);
    int64_t *ranks = xcalloc(n ? (size_t)n : 1, sizeof *ranks);
    cohort_ranks(r, style, ranks);
    for (int i = 0; i < n; i++)
        if (strcmp(PQgetvalue(r, i, 0), e->player) == 0) {
            e->cohort = atoi(cohort);
            e->tier = tier;
            e->cohort_rank = ranks[i];
        }
    free(ranks);
    PQclear(r);
    return Q_OK;
}

q_status_t q_league_cohort(PGconn *c, const board_t *b, int64_t day, int cohort, rank_style_t style, int64_t limit,
                           int64_t offset, league_cohort_t *out)
{
    char g[24], d[11], co[16];
    snprintf(g, sizeof g, "%" PRId64, b->gen);
    window_format_day(day, d);
    snprintf(co, sizeof co, "%d", cohort);
    const char *p[] = {g, d, co};
    /* One snapshot: the cohort, its entries and the window's moves agree. */
    PGresult *r = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (!pg_ok(r))
        return q_failed(c, r, "league cohort");
    PQclear(r);
    q_status_t st = Q_OK;
    r = exec(c,
             "SELECT k.tier, w.settled, EXISTS (SELECT 1 FROM archived_windows a WHERE a.board_gen = $1 AND a.win = $2::date)"
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
    bool archived = PQgetvalue(r, 0, 2)[0] == 't';
    PQclear(r);
    /* A cohort holds at most LEAGUE_SIZE_MAX players: read whole, paged here. */
    if ((st = cohort_read(c, g, d, co, archived, &r)) != Q_OK)
        goto end;
    int n = PQntuples(r);
    int64_t *ranks = xcalloc(n ? (size_t)n : 1, sizeof *ranks);
    cohort_ranks(r, style, ranks);
    out->players = n;
    out->entries.total = n;
    int64_t from = offset < n ? offset : n, to = from + limit < n ? from + limit : n;
    entries_reserve(&out->entries, (size_t)(to - from));
    for (int64_t i = from; i < to; i++) {
        entry_t *e = &out->entries.items[out->entries.n++];
        memset(e, 0, sizeof *e);
        snprintf(e->player, sizeof e->player, "%s", PQgetvalue(r, (int)i, 0));
        e->player_len = strlen(e->player);
        e->score = strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
        e->sort_key = strtoll(PQgetvalue(r, (int)i, 2), NULL, 10);
        e->achieved_ms = strtoll(PQgetvalue(r, (int)i, 3), NULL, 10);
        e->metadata = PQgetisnull(r, (int)i, 4) ? NULL : xstrdup(PQgetvalue(r, (int)i, 4));
        e->rank = ranks[i];
    }
    free(ranks);
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
