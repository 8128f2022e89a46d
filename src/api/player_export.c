/*
 * api/player_export.c — GET /v1/players/{player}/export (API.md, "Import and export"): all that
 * rankd holds about one player, for a request for their data, read from the primary
 * (store/player_export.c). An admin's, or a player token's for its own player; off the event
 * loop (api/router.c).
 */
#include "api/app.h"
#include "core/ids.h"
#include "obs/log.h"
#include "store/pg_pool.h"
#include "store/player_export.h"

int api_player_export(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c)
        return http_unavailable(req, "the database");
    char err[256];
    bool ok = player_export_render(c, rt->player, rt->player_len, req->role >= ROLE_ADMIN, &req->out, err, sizeof err);
    if (!ok)
        log_error(req->request_id, "export of a player failed: %s", err);
    bool down = !ok && !pg_conn_alive(c);
    pg_pool_release(app->primary, c, down);
    if (!ok)
        return down ? http_unavailable(req, "the database") : http_internal(req);
    return http_ok(req, 200);
}
