/*
 * store/player_export.c — one player's standings and submissions, rendered as the other answers
 * are (metadata as it was stored).
 */
#include "store/pg_error.h"
#include "store/player_export.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/window.h"

/*
 * One row per standing ('s': not archived, its rank now; 'h': hidden by a moderator, its rank among
 * the visible players; 'a': archived, the rank it closed with),
 * then one per submission ('u', oldest first). Columns: kind, board, window, rank, score,
 * achieved or received (ms), metadata, improved, and a submission's audit: what authorised it and
 * the client's address (migrations/0024_player_tokens.sql), and the client rule it broke when it
 * was flagged (migrations/0026_client_rules.sql). $1: the player.
 */
static const char PLAYER_EXPORT_SQL[] =
    "SELECT kind, id, to_char(win, 'YYYY-MM-DD'), rank, score, ms, metadata, improved, auth_by, client_addr, flagged FROM ("
    " SELECT 's' AS kind, b.id, s.win, rankd_rank_before(s.board_gen, s.win, s.sort_key, s.achieved_ms, s.player_id) + 1"
    "  AS rank, s.score, s.achieved_ms AS ms, s.metadata, false AS improved, NULL::timestamptz AS ts,"
    "  NULL::text AS auth_by, NULL::text AS client_addr, NULL::text AS flagged"
    " FROM boards b JOIN window_counts w ON w.board_gen = b.gen"
    " JOIN standings s ON s.board_gen = w.board_gen AND s.win = w.win AND s.player_id = $1"
    " WHERE NOT EXISTS (SELECT 1 FROM archived_windows aw WHERE aw.board_gen = s.board_gen AND aw.win = s.win)"
    " UNION ALL"
    /* 'h': a standing hidden by a moderator (migrations/0025_moderation.sql), its rank among the
     * visible players (their own view). */
    " SELECT 'h', b.id, h.win, rankd_rank_before(h.board_gen, h.win, h.sort_key, h.achieved_ms, h.player_id) + 1,"
    "  h.score, h.achieved_ms, h.metadata, false, NULL, NULL, NULL, NULL"
    " FROM boards b JOIN hidden_standings h ON h.board_gen = b.gen AND h.player_id = $1"
    " UNION ALL"
    " SELECT 'a', b.id, a.win, a.rank, a.score, a.achieved_ms, a.metadata, false, NULL, NULL, NULL, NULL"
    " FROM boards b JOIN archive a ON a.board_gen = b.gen AND a.player_id = $1"
    " UNION ALL"
    " SELECT 'u', b.id, s.win, 0, s.score, (extract(epoch FROM s.received_at) * 1000)::bigint, s.metadata, s.updated,"
    "  s.received_at, s.auth_by, s.client_addr, s.flagged"
    " FROM boards b JOIN submissions s ON s.board_gen = b.gen AND s.player_id = $1"
    ") x ORDER BY kind = 'u', ts, id, win";

static void render_row(buf_t *o, PGresult *r, int i, bool submission, bool moderator)
{
    char at[25];
    window_format_ms(strtoll(PQgetvalue(r, i, 5), NULL, 10), at);
    buf_puts(o, "{\"board\":");
    buf_json_str(o, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
    buf_puts(o, ",\"window\":\"");
    buf_puts(o, PQgetvalue(r, i, 2));
    buf_putc(o, '"');
    if (!submission) {
        buf_puts(o, ",\"rank\":");
        buf_puts(o, PQgetvalue(r, i, 3));
    }
    buf_puts(o, ",\"score\":");
    buf_puts(o, PQgetvalue(r, i, 4));
    buf_puts(o, submission ? ",\"received_at\":\"" : ",\"achieved_at\":\"");
    buf_append(o, at, 24);
    buf_putc(o, '"');
    if (!PQgetisnull(r, i, 6)) {
        buf_puts(o, ",\"metadata\":");
        buf_puts(o, PQgetvalue(r, i, 6));
    }
    if (submission) {
        buf_puts(o, PQgetvalue(r, i, 7)[0] == 't' ? ",\"improved\":true" : ",\"improved\":false");
        /* Its audit, when logged by a version that keeps one (not an import's rows). */
        if (!PQgetisnull(r, i, 8)) {
            buf_puts(o, ",\"auth_by\":");
            buf_json_str(o, PQgetvalue(r, i, 8), (size_t)PQgetlength(r, i, 8));
        }
        if (!PQgetisnull(r, i, 9)) {
            buf_puts(o, ",\"client_addr\":");
            buf_json_str(o, PQgetvalue(r, i, 9), (size_t)PQgetlength(r, i, 9));
        }
        /* A token's submission that broke a client rule: logged, never applied. */
        if (!PQgetisnull(r, i, 10)) {
            buf_puts(o, ",\"flagged\":");
            buf_json_str(o, PQgetvalue(r, i, 10), (size_t)PQgetlength(r, i, 10));
        }
        buf_putc(o, '}');
    }
    else
        buf_puts(o, PQgetvalue(r, i, 0)[0] == 'a'   ? ",\"archived\":true}"
                    : PQgetvalue(r, i, 0)[0] == 'h' && moderator ? ",\"archived\":false,\"hidden\":true}"
                                                    : ",\"archived\":false}");
}

bool player_export_render(PGconn *c, const char *player, size_t len, bool moderator, buf_t *out, char *err,
                          size_t errlen)
{
    const char *params[1] = {player};
    PGresult *r = PQexecParams(c, PLAYER_EXPORT_SQL, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 11) {
        pg_error_text(c, r, err, errlen);
        PQclear(r);
        return false;
    }
    buf_puts(out, "{\"player_id\":");
    buf_json_str(out, player, len);
    buf_puts(out, ",\"standings\":[");
    int n = PQntuples(r), i = 0;
    for (bool first = true; i < n && PQgetvalue(r, i, 0)[0] != 'u'; i++, first = false) {
        if (!first)
            buf_putc(out, ',');
        render_row(out, r, i, false, moderator);
    }
    buf_puts(out, "],\"submissions\":[");
    for (bool first = true; i < n; i++, first = false) {
        if (!first)
            buf_putc(out, ',');
        render_row(out, r, i, true, moderator);
    }
    PQclear(r);
    /* Tournaments: the slots the player joined or played in, with their attempts. */
    r = PQexecParams(c,
                     "SELECT b.id, to_char(e.win, 'YYYY-MM-DD'), e.joined_ms, e.attempts, e.extra_attempts"
                     " FROM boards b JOIN tournament_entrants e ON e.board_gen = b.gen AND e.player_id = $1"
                     " ORDER BY b.id, e.win",
                     1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != 5) {
        pg_error_text(c, r, err, errlen);
        PQclear(r);
        return false;
    }
    buf_puts(out, "],\"tournaments\":[");
    for (int k = 0; k < PQntuples(r); k++) {
        if (k)
            buf_putc(out, ',');
        buf_puts(out, "{\"board\":");
        buf_json_str(out, PQgetvalue(r, k, 0), (size_t)PQgetlength(r, k, 0));
        buf_printf(out, ",\"window\":\"%s\",\"joined_at\":", PQgetvalue(r, k, 1));
        if (PQgetisnull(r, k, 2)) {
            buf_puts(out, "null");
        } else {
            char at[25];
            window_format_ms(strtoll(PQgetvalue(r, k, 2), NULL, 10), at);
            buf_printf(out, "\"%s\"", at);
        }
        buf_printf(out, ",\"attempts\":%s,\"extra_attempts\":%s}", PQgetvalue(r, k, 3), PQgetvalue(r, k, 4));
    }
    buf_puts(out, "]}");
    PQclear(r);
    return true;
}
