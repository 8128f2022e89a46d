/* api/standings.c — GET /v1/players/{player}/standings: a player on every board's current window. */
#include <string.h>

#include "api/app.h"
#include "core/ids.h"
#include "core/rank_style.h"
#include "store/pg_router.h"
#include "store/league.h"
#include "store/queries.h"

typedef struct {
    const char *player;
    int64_t now_ms;
    rank_style_t style;
    bool snapshot;        /* read in one snapshot even in the ordinal style (a league board's row) */
    bool own;             /* the player's own token asks: the boards where they are hidden too */
    standing_row_t *rows;
    size_t n;
} standings_args_t;

/* Each row's rank in a style other than ordinal: the standings (competition) or distinct scores
 * (dense) before its score, in the snapshot the rows were read in. */
static q_status_t restyle_rows(PGconn *c, standings_args_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        board_t b = {.gen = a->rows[i].gen};
        int64_t before;
        q_status_t st = q_rank_before(c, &b, a->rows[i].day, false, a->style == RANK_DENSE, a->rows[i].entry.sort_key,
                                      &before);
        if (st != Q_OK)
            return st;
        a->rows[i].entry.rank = before + 1;
    }
    return Q_OK;
}

/* A league board's row: the player's cohort, its tier and the cohort rank, in the rows' snapshot. */
static q_status_t league_rows(PGconn *c, standings_args_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        if (!a->rows[i].league.on)
            continue;
        board_t b = {.gen = a->rows[i].gen};
        q_status_t st = q_league_standing(c, &b, a->rows[i].day, a->style, &a->rows[i].entry);
        if (st != Q_OK)
            return st;
    }
    return Q_OK;
}

static bool any_league(const standings_args_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->rows[i].league.on)
            return true;
    return false;
}

static q_status_t standings_on(PGconn *c, void *arg)
{
    standings_args_t *a = arg;
    q_standings_free(a->rows, a->n); /* a retry starts afresh */
    a->rows = NULL;
    a->n = 0;
    if (a->style == RANK_ORDINAL && !a->snapshot) {
        /* One statement is its own snapshot; a league board's cohort is read in the same one, so a
         * player on a league board is read again inside one. */
        q_status_t st = q_player_standings(c, a->player, a->now_ms, a->own, &a->rows, &a->n);
        if (st != Q_OK || !any_league(a))
            return st;
        a->snapshot = true;
        return standings_on(c, a);
    }
    q_status_t st = q_snapshot_begin(c);
    if (st != Q_OK)
        return st;
    st = q_player_standings(c, a->player, a->now_ms, a->own, &a->rows, &a->n);
    if (st == Q_OK && a->style != RANK_ORDINAL)
        st = restyle_rows(c, a);
    if (st == Q_OK)
        st = league_rows(c, a);
    q_status_t end = q_snapshot_end(c, st == Q_OK);
    return st == Q_OK ? end : st;
}

int api_standings(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    bool own = req->player && strlen(req->player->player) == rt->player_len &&
               memcmp(req->player->player, rt->player, rt->player_len) == 0;
    standings_args_t a = {rt->player, req->received_ms, RANK_ORDINAL, false, own, NULL, 0};
    int rc = api_param_rank_style(req, &a.style);
    if (rc)
        return rc;
    bool behind = false;
    q_status_t st = pg_router_read_run(app->router, PG_KEY_ALL, req->strong, standings_on, &a, &behind);
    standing_row_t *rows = a.rows;
    size_t n = a.n;
    if (st != Q_OK) {
        q_standings_free(rows, n); /* what a failed attempt had read */
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    buf_puts(&req->out, "{\"player_id\":");
    buf_json_str(&req->out, rt->player, rt->player_len);
    buf_puts(&req->out, ",\"standings\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&req->out, ',');
        api_render_standing(&req->out, rows[i].board, rows[i].day, rows[i].total, &rows[i].entry);
        api_render_cohort_standing(&req->out, &rows[i].league, &rows[i].entry);
    }
    buf_puts(&req->out, "]}");
    q_standings_free(rows, n);
    req->cacheable = !behind && !own; /* the own view is the asker's alone */
    return http_ok(req, 200);
}
