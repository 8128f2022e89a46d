/*
 * api/leagues.c — league boards (API.md, "Competitions"): the `cohorts` and `tiers` of a board's
 * creation and their rendering, a player's cohort and a cohort's pages. Players are placed by the
 * writer (rankd_league_place in the submission's transaction) and moves are made when a window is
 * settled (migrations/0019_leagues.sql); these reads run off the event loop, on PostgreSQL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/body.h"
#include "core/ids.h"
#include "core/league.h"
#include "core/window.h"
#include "store/league.h"
#include "store/pg_router.h"
#include "util/alloc.h"

/* ---------------------------------------------------------------- the definition */

static int tier_body(http_req_t *req, json_t *t, league_tier_t *out)
{
    if (!json_is_object(t))
        return http_error(req, 400, "invalid_argument", "tiers", "each tier must be an object {\"name\",\"promote\",\"relegate\"}");
    const char *key;
    json_t *v;
    json_object_foreach(t, key, v) {
        if (strcmp(key, "name") != 0 && strcmp(key, "promote") != 0 && strcmp(key, "relegate") != 0)
            return http_error(req, 400, "invalid_argument", "tiers", "a tier takes name, promote and relegate only");
    }
    json_t *name = json_object_get(t, "name");
    if (!json_is_string(name) || json_string_length(name) < 1 || json_string_length(name) > LEAGUE_TIER_NAME_MAX ||
        strlen(json_string_value(name)) != json_string_length(name))
        return http_error(req, 400, "invalid_argument", "tiers", "each tier needs a name of 1 to %d bytes",
                          LEAGUE_TIER_NAME_MAX);
    snprintf(out->name, sizeof out->name, "%s", json_string_value(name));
    json_t *up = json_object_get(t, "promote"), *down = json_object_get(t, "relegate");
    if ((up && !json_is_null(up) && (!json_is_integer(up) || json_integer_value(up) < 0 ||
                                     json_integer_value(up) > LEAGUE_SIZE_MAX)) ||
        (down && !json_is_null(down) && (!json_is_integer(down) || json_integer_value(down) < 0 ||
                                         json_integer_value(down) > LEAGUE_SIZE_MAX)))
        return http_error(req, 400, "invalid_argument", "tiers", "a tier's promote and relegate must be whole numbers >= 0");
    out->promote = json_is_integer(up) ? (int)json_integer_value(up) : 0;
    out->relegate = json_is_integer(down) ? (int)json_integer_value(down) : 0;
    return 0;
}

int api_league_body(http_req_t *req, json_t *obj, bool tournament, league_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *co = json_object_get(obj, "cohorts"), *tiers = json_object_get(obj, "tiers");
    bool has_tiers = tiers && !json_is_null(tiers);
    if (!co || json_is_null(co)) {
        if (has_tiers)
            return http_error(req, 400, "invalid_argument", "tiers", "tiers belong to a league: give cohorts too");
        return 0;
    }
    if (tournament)
        return http_error(req, 400, "invalid_argument", "cohorts", "a board is a tournament or a league, not both");
    if (!json_is_object(co) || json_object_size(co) != 1 || !json_is_integer(json_object_get(co, "size")))
        return http_error(req, 400, "invalid_argument", "cohorts.size", "cohorts must be {\"size\": N}, N %d..%d",
                          LEAGUE_SIZE_MIN, LEAGUE_SIZE_MAX);
    json_int_t size = json_integer_value(json_object_get(co, "size"));
    if (size < LEAGUE_SIZE_MIN || size > LEAGUE_SIZE_MAX)
        return http_error(req, 400, "invalid_argument", "cohorts.size", "cohorts.size must be a whole number %d..%d",
                          LEAGUE_SIZE_MIN, LEAGUE_SIZE_MAX);
    out->on = true;
    out->size = (int)size;
    league_alloc_tiers(out);
    if (!has_tiers) {
        out->n_tiers = 1;
        snprintf(out->tiers[0].name, sizeof out->tiers[0].name, "%s", LEAGUE_DEFAULT_TIER);
    } else {
        if (!json_is_array(tiers) || json_array_size(tiers) < 1 || json_array_size(tiers) > LEAGUE_TIERS_MAX)
            return http_error(req, 400, "invalid_argument", "tiers", "tiers must be a list of 1 to %d tiers, lowest first",
                              LEAGUE_TIERS_MAX);
        for (size_t i = 0; i < json_array_size(tiers); i++) {
            int rc = tier_body(req, json_array_get(tiers, i), &out->tiers[i]);
            if (rc)
                return rc;
            out->n_tiers++;
        }
    }
    char msg[200];
    const char *field = league_check(out, msg, sizeof msg);
    return field ? http_error(req, 400, "invalid_argument", field, "%s", msg) : 0;
}

void api_render_league(buf_t *o, const board_t *b)
{
    if (!b->league.on)
        return;
    char *tiers = league_tiers_json(&b->league);
    buf_printf(o, ",\"cohorts\":{\"size\":%d},\"tiers\":", b->league.size);
    buf_puts(o, tiers);
    free(tiers);
}

void api_render_cohort_standing(buf_t *o, const league_t *l, const entry_t *e)
{
    if (!l->on || e->cohort <= 0 || e->tier < 0 || e->tier >= l->n_tiers || o->len == 0)
        return;
    o->len--; /* reopen the standing */
    buf_printf(o, ",\"cohort\":%d,\"cohort_rank\":%" PRId64 ",\"tier\":", e->cohort, e->cohort_rank);
    buf_json_str(o, l->tiers[e->tier].name, strlen(l->tiers[e->tier].name));
    buf_putc(o, '}');
}

/* ---------------------------------------------------------------- cohorts */

static void put_tier(buf_t *o, const board_t *b, int tier)
{
    const char *name = tier >= 0 && tier < b->league.n_tiers ? b->league.tiers[tier].name : "";
    buf_json_str(o, name, strlen(name));
}

/* {"board","window","cohort","tier","total","entries":[...],"moves"?} */
static void render_cohort(buf_t *o, const board_t *b, int64_t day, const league_cohort_t *k)
{
    char d[11];
    window_format_day(day, d);
    buf_puts(o, "{\"board\":");
    buf_json_str(o, b->id, strlen(b->id));
    buf_printf(o, ",\"window\":\"%s\",\"cohort\":%d,\"tier\":", d, k->cohort);
    put_tier(o, b, k->tier);
    buf_printf(o, ",\"total\":%" PRId64 ",\"entries\":[", k->players);
    for (size_t i = 0; i < k->entries.n; i++) {
        if (i)
            buf_putc(o, ',');
        api_render_entry(o, &k->entries.items[i]);
    }
    buf_putc(o, ']');
    if (k->settled) {
        buf_puts(o, ",\"moves\":[");
        for (size_t i = 0; i < k->n_moves; i++) {
            buf_puts(o, i ? ",{\"player_id\":" : "{\"player_id\":");
            buf_json_str(o, k->moves[i].player, strlen(k->moves[i].player));
            buf_puts(o, ",\"from\":");
            put_tier(o, b, k->moves[i].from);
            buf_puts(o, ",\"to\":");
            put_tier(o, b, k->moves[i].to);
            buf_putc(o, '}');
        }
        buf_putc(o, ']');
    }
    buf_putc(o, '}');
}

typedef struct {
    const board_t *b;
    int64_t day;
    const char *player; /* a player's cohort; NULL: `cohort` */
    int cohort;
    rank_style_t style;
    int64_t limit, offset;
    league_cohort_t out;
} cohort_args_t;

static q_status_t cohort_on(PGconn *c, void *arg)
{
    cohort_args_t *a = arg;
    league_cohort_clear(&a->out);
    league_cohort_init(&a->out);
    if (a->player) {
        q_status_t st = q_league_cohort_of(c, a->b->gen, a->day, a->player, &a->cohort);
        if (st != Q_OK)
            return st;
    }
    return q_league_cohort(c, a->b, a->day, a->cohort, a->style, a->limit, a->offset, &a->out);
}

/* Both routes: the parameters, then the board (400 before 404), then the cohort. */
static int cohort_read(app_t *app, const route_t *rt, http_req_t *req, bool of_player)
{
    int rc;
    cohort_args_t a = {.player = NULL};
    league_cohort_init(&a.out);
    if (of_player && (rt->player_bad || !id_player_valid(rt->player, rt->player_len)))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    int64_t cohort = 0;
    if (!of_player) {
        /* The cohort's number rides in the route's player segment (api/router.c). */
        uint64_t n = 0;
        if (rt->player_bad || !param_parse_uint(rt->player, INT32_MAX, &n) || n < 1)
            return http_error(req, 400, "invalid_argument", "cohort", "cohort must be a whole number >= 1");
        cohort = (int64_t)n;
    }
    uint64_t limit, offset;
    if ((rc = api_param_window_syntax(req)) || (rc = api_param_rank_style(req, &a.style)) ||
        (rc = api_param_uint(req, "limit", 1, LEAGUE_SIZE_MAX, of_player ? LEAGUE_SIZE_MAX : 10, &limit)) ||
        (rc = api_param_uint(req, "offset", 0, LEAGUE_SIZE_MAX, 0, &offset)))
        return rc;
    a.limit = (int64_t)limit;
    a.offset = (int64_t)offset;
    board_t b;
    if ((rc = api_load_board(app, rt, req, &b)))
        return rc;
    if (!b.league.on) {
        rc = http_error(req, 404, "not_found", "board", "board %s is not a league (it was created without cohorts)", b.id);
        board_clear(&b);
        return rc;
    }
    if ((rc = api_param_window(app, req, &b, &a.day))) {
        board_clear(&b);
        return rc;
    }
    a.b = &b;
    a.player = of_player ? rt->player : NULL;
    a.cohort = (int)cohort;
    bool behind = false;
    q_status_t st = pg_router_read_run(app->router, b.gen, req->strong, cohort_on, &a, &behind);
    if (st == Q_NOT_FOUND)
        rc = of_player ? http_not_found(req, "player_id", "player") : http_not_found(req, "cohort", "cohort");
    else if (st != Q_OK)
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    else {
        render_cohort(&req->out, &b, a.day, &a.out);
        req->cacheable = !behind;
        rc = http_ok(req, 200);
    }
    league_cohort_clear(&a.out);
    board_clear(&b);
    return rc;
}

int api_cohort(app_t *app, const route_t *rt, http_req_t *req)
{
    return cohort_read(app, rt, req, true);
}

int api_cohort_entries(app_t *app, const route_t *rt, http_req_t *req)
{
    return cohort_read(app, rt, req, false);
}
