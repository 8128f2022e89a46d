/* store/flagged.c — a board's flagged submissions; see flagged.h. */
#include "store/flagged.h"

#include <inttypes.h>
#include <stdio.h>

#include "store/pg_pool.h"
#include "store/queries.h"

/* Through the log's partial index of flagged rows (board_gen, received_at), newest first; ties
 * at one instant ordered by player and score. */
q_status_t q_flagged_page(PGconn *c, int64_t gen, bool after, int64_t after_ms, const char *after_player,
                          int64_t after_score, int limit, PGresult **out)
{
    char g[24], ms[24], sc[24], lim[16];
    snprintf(g, sizeof g, "%" PRId64, gen);
    snprintf(ms, sizeof ms, "%" PRId64, after_ms);
    snprintf(sc, sizeof sc, "%" PRId64, after_score);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {g, after ? ms : NULL, after ? after_player : NULL, after ? sc : NULL, lim};
    PGresult *r = PQexecParams(
        c,
        "SELECT player_id, score, (extract(epoch FROM received_at) * 1000)::bigint, to_char(win, 'YYYY-MM-DD'),"
        " flagged, auth_by, client_addr, metadata FROM submissions"
        " WHERE board_gen = $1 AND flagged IS NOT NULL"
        " AND ($2::bigint IS NULL OR (received_at, player_id, score) <"
        "  (timestamptz 'epoch' + $2::bigint * interval '1 millisecond', $3::text COLLATE \"C\", $4::bigint))"
        " ORDER BY received_at DESC, player_id DESC, score DESC LIMIT $5::int",
        5, NULL, p, NULL, NULL, 0);
    if (!pg_ok(r))
        return q_failed(c, r, "flagged submissions");
    *out = r;
    return Q_OK;
}
