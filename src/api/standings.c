/* api/standings.c — GET /v1/players/{player}/standings: a player on every board's current window. */
#include <string.h>

#include "api/app.h"
#include "core/ids.h"
#include "store/queries.h"

int api_standings(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", "invalid player id");
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c)
        return http_unavailable(req, "the database");
    standing_row_t *rows = NULL;
    size_t n = 0;
    q_status_t st = q_player_standings(c, rt->player, req->received_ms, &rows, &n);
    pg_pool_release(app->primary, c, st == Q_UNAVAILABLE);
    if (st != Q_OK)
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    buf_puts(&req->out, "{\"player_id\":");
    buf_json_str(&req->out, rt->player, rt->player_len);
    buf_puts(&req->out, ",\"standings\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&req->out, ',');
        api_render_standing(&req->out, rows[i].board, rows[i].day, rows[i].total, &rows[i].entry);
    }
    buf_puts(&req->out, "]}");
    q_standings_free(rows, n);
    req->cacheable = true;
    return http_ok(req, 200);
}
