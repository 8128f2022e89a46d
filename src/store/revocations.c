/* store/revocations.c — players' token revocations in PostgreSQL; see revocations.h. */
#include "store/revocations.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "store/queries.h"

const char q_revoke_players_sql[] =
    "WITH r AS (INSERT INTO player_token_revocations AS t (player_id, revoked_ms)"
    "  SELECT p, $1::bigint FROM unnest($2::text[]) AS u(p)"
    "  ON CONFLICT (player_id) DO UPDATE SET revoked_ms = greatest(t.revoked_ms, EXCLUDED.revoked_ms)"
    "  RETURNING player_id, revoked_ms)"
    " SELECT r.revoked_ms, count(pg_notify('" REVOCATIONS_CHANNEL "', r.revoked_ms || ' ' || r.player_id))"
    " FROM r GROUP BY r.revoked_ms";

q_status_t q_revoke_player_tokens(PGconn *c, const char *player, int64_t now_ms, int64_t *at)
{
    char ms[24], arr[PLAYER_ID_MAX * 2 + 8];
    snprintf(ms, sizeof ms, "%" PRId64, now_ms);
    /* A player id holds no quote, backslash, comma or brace (core/ids.h): quoted, it is the array's one element. */
    snprintf(arr, sizeof arr, "{\"%s\"}", player);
    const char *p[] = {ms, arr};
    PGresult *r = PQexecParams(c, q_revoke_players_sql, 2, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        return q_failed(c, r, "token revocation");
    *at = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return Q_OK;
}

q_status_t q_revocations_load(PGconn *c, void (*each)(void *arg, const char *player, size_t len, int64_t ms), void *arg)
{
    PGresult *r = PQexec(c, "SELECT player_id, revoked_ms FROM player_token_revocations");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return q_failed(c, r, "loading token revocations");
    for (int i = 0; i < PQntuples(r); i++)
        each(arg, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), strtoll(PQgetvalue(r, i, 1), NULL, 10));
    PQclear(r);
    return Q_OK;
}

bool revocation_notice_parse(const char *payload, int64_t *ms, const char **player, size_t *len)
{
    char *end = NULL;
    long long v = strtoll(payload, &end, 10);
    if (end == payload || *end != ' ' || v <= 0)
        return false;
    *ms = v;
    *player = end + 1;
    *len = strlen(end + 1);
    return id_player_valid(*player, *len);
}
