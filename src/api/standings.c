/* api/standings.c — GET /v1/players/{player}/standings: a player on every board's current window. */
#include <string.h>

#include "api/app.h"
#include "core/ids.h"
#include "store/pg_router.h"
#include "store/queries.h"

typedef struct {
    const char *player;
    int64_t now_ms;
    standing_row_t *rows;
    size_t n;
} standings_args_t;

static q_status_t standings_on(PGconn *c, void *arg)
{
    standings_args_t *a = arg;
    q_standings_free(a->rows, a->n); /* a retry starts afresh */
    a->rows = NULL;
    a->n = 0;
    return q_player_standings(c, a->player, a->now_ms, &a->rows, &a->n);
}

int api_standings(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    standings_args_t a = {rt->player, req->received_ms, NULL, 0};
    bool behind = false;
    q_status_t st = pg_router_read_run(app->router, PG_KEY_ALL, req->strong, standings_on, &a, &behind);
    standing_row_t *rows = a.rows;
    size_t n = a.n;
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
    req->cacheable = !behind;
    return http_ok(req, 200);
}
