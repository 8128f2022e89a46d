/*
 * api/player_export.c — GET /v1/players/{player}/export (API.md, "Import and export"): all that
 * rankd holds about one player, for a request for their data. Every standing on every board and
 * window (a closed window's from its archive, with the rank it closed with) and every logged
 * submission, read from the primary in one statement, so in one snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "core/ids.h"
#include "obs/log.h"
#include "store/pg_pool.h"

/* A time as API.md writes it: 2026-11-25T12:00:00.000Z. */
#define AT(ts) "to_char((" ts ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define AT_MS(ms) AT("timestamptz 'epoch' + (" ms ") * interval '1 millisecond'")

/* Standings of windows not archived (their rank as of now), then archived ones (the rank they
 * closed with); submissions of the boards that exist, oldest first. $1: the player. */
static const char PLAYER_EXPORT_SQL[] =
    "WITH st AS ("
    "  SELECT b.id, s.win, rankd_rank_before(s.board_gen, s.win, s.sort_key, s.achieved_ms, s.player_id) + 1 AS rank,"
    "   s.score, s.achieved_ms, s.metadata, false AS archived"
    "  FROM boards b JOIN window_counts w ON w.board_gen = b.gen"
    "  JOIN standings s ON s.board_gen = w.board_gen AND s.win = w.win AND s.player_id = $1"
    "  WHERE NOT EXISTS (SELECT 1 FROM archived_windows aw WHERE aw.board_gen = s.board_gen AND aw.win = s.win)"
    "  UNION ALL"
    "  SELECT b.id, a.win, a.rank, a.score, a.achieved_ms, a.metadata, true"
    "  FROM boards b JOIN archive a ON a.board_gen = b.gen AND a.player_id = $1),"
    " sub AS ("
    "  SELECT b.id, s.win, s.score, s.metadata, s.updated, s.received_at"
    "  FROM boards b JOIN submissions s ON s.board_gen = b.gen AND s.player_id = $1)"
    " SELECT json_build_object('player_id', $1::text,"
    "  'standings', coalesce((SELECT json_agg(json_strip_nulls(json_build_object('board', id, 'window', win,"
    "    'rank', rank, 'score', score, 'achieved_at', " AT_MS("achieved_ms") ", 'metadata', metadata::json,"
    "    'archived', archived)) ORDER BY id, win) FROM st), '[]'),"
    "  'submissions', coalesce((SELECT json_agg(json_strip_nulls(json_build_object('board', id, 'window', win,"
    "    'score', score, 'metadata', metadata::json, 'improved', updated, 'received_at', " AT("received_at") "))"
    "    ORDER BY received_at, id) FROM sub), '[]'))::text";

int api_player_export(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c)
        return http_unavailable(req, "the database");
    const char *params[1] = {rt->player};
    PGresult *r = PQexecParams(c, PLAYER_EXPORT_SQL, 1, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (!ok)
        log_error(req->request_id, "export of a player failed: %s", PQresultErrorMessage(r));
    else
        buf_append(&req->out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    bool down = !ok && !pg_conn_alive(c);
    pg_pool_release(app->primary, c, down);
    if (!ok)
        return down ? http_unavailable(req, "the database") : http_internal(req);
    return http_ok(req, 200);
}
