/*
 * api/tournaments.c — tournament boards (API.md, "Competitions"): the `tournament` object of a
 * board's creation and its rendering, a player's join, an admin's added attempts, and the
 * filters of the board list. The writer enforces the rules on submissions (worker/write_competitions.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/body.h"
#include "core/ids.h"
#include "core/window.h"
#include "obs/metrics.h"
#include "store/pg_router.h"
#include "store/tournament.h"
#include "util/alloc.h"
#include "worker/joiner.h"

/* ---------------------------------------------------------------- the definition */

/* An optional whole number lo..hi at obj[name] into *out (0 when absent or null). */
static int optional_count(http_req_t *req, json_t *obj, const char *name, const char *field, int64_t lo, int64_t hi,
                          int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return http_error(req, 400, "invalid_argument", field, "%s must be a whole number %lld..%lld", field,
                          (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

/* An RFC 3339 instant at obj[name]; *has says whether it was given. */
static int optional_instant(http_req_t *req, json_t *obj, const char *name, const char *field, bool *has, int64_t *ms)
{
    json_t *v = json_object_get(obj, name);
    *has = v && !json_is_null(v);
    if (!*has)
        return 0;
    if (!json_is_string(v) || !window_parse_ms(json_string_value(v), json_string_length(v), ms))
        return http_error(req, 400, "invalid_argument", field,
                          "%s must be an RFC 3339 instant, such as 2026-12-01T12:00:00Z", field);
    return 0;
}

int api_tournament_body(http_req_t *req, json_t *obj, board_reset_t reset, tournament_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *t = json_object_get(obj, "tournament");
    if (!t || json_is_null(t))
        return 0;
    if (!json_is_object(t))
        return http_error(req, 400, "invalid_argument", "tournament", "tournament must be an object");
    const char *key;
    json_t *v;
    static const char *const allowed[] = {"start_at", "end_at", "duration_s", "max_players", "max_attempts",
                                          "join_required", "category", NULL};
    json_object_foreach(t, key, v) {
        bool known = false;
        for (size_t i = 0; allowed[i] && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            char field[96];
            snprintf(field, sizeof field, "tournament.%.80s", key);
            return http_error(req, 400, "invalid_argument", field,
                              "tournament takes start_at, end_at, duration_s, max_players, max_attempts,"
                              " join_required and category only");
        }
    }
    out->on = true;
    bool has_start, has_end;
    int rc;
    if ((rc = optional_instant(req, t, "start_at", "tournament.start_at", &has_start, &out->start_ms)) ||
        (rc = optional_instant(req, t, "end_at", "tournament.end_at", &has_end, &out->end_ms)) ||
        (rc = optional_count(req, t, "duration_s", "tournament.duration_s", 1, 31 * 86400, &out->duration_s)) ||
        (rc = optional_count(req, t, "max_players", "tournament.max_players", 1, TOURNAMENT_PLAYERS_MAX,
                             &out->max_players)) ||
        (rc = optional_count(req, t, "max_attempts", "tournament.max_attempts", 1, TOURNAMENT_ATTEMPTS_MAX,
                             &out->max_attempts)))
        return rc;
    if (has_start != has_end)
        return http_error(req, 400, "invalid_argument", has_start ? "tournament.end_at" : "tournament.start_at",
                          "a one-off slot takes both start_at and end_at");
    if (has_start && out->duration_s)
        return http_error(req, 400, "invalid_argument", "tournament.duration_s",
                          "a slot is either one-off (start_at and end_at) or recurring (duration_s), never both");
    if (!has_start && !out->duration_s)
        return http_error(req, 400, "invalid_argument", "tournament",
                          "tournament needs start_at and end_at (a one-off slot) or duration_s (a slot at each reset)");
    out->once = has_start;
    json_t *jr = json_object_get(t, "join_required");
    if (jr && !json_is_null(jr) && !json_is_boolean(jr))
        return http_error(req, 400, "invalid_argument", "tournament.join_required", "join_required must be true or false");
    out->join_required = jr && json_is_true(jr);
    json_t *cat = json_object_get(t, "category");
    if (cat && !json_is_null(cat)) {
        /* "" is no category, as absent is */
        if (!json_is_string(cat) || json_string_length(cat) > TOURNAMENT_CATEGORY_MAX ||
            strlen(json_string_value(cat)) != json_string_length(cat))
            return http_error(req, 400, "invalid_argument", "tournament.category",
                              "category must be a string of at most %d bytes", TOURNAMENT_CATEGORY_MAX);
        snprintf(out->category, sizeof out->category, "%s", json_string_value(cat));
    }
    char msg[200];
    const char *field = tournament_check(out, reset, msg, sizeof msg);
    if (field)
        return http_error(req, 400, "invalid_argument", field, "%s", msg);
    return 0;
}

void api_render_tournament(buf_t *o, const board_t *b, int64_t now_ms)
{
    const tournament_t *t = &b->tournament;
    if (!t->on)
        return;
    char at[25], until[25];
    buf_puts(o, ",\"tournament\":{");
    if (t->once) {
        window_format_ms(t->start_ms, at);
        window_format_ms(t->end_ms, until);
        buf_printf(o, "\"start_at\":\"%s\",\"end_at\":\"%s\"", at, until);
    } else {
        buf_printf(o, "\"duration_s\":%" PRId64, t->duration_s);
    }
    buf_puts(o, ",\"max_players\":");
    if (t->max_players > 0)
        buf_i64(o, t->max_players);
    else
        buf_puts(o, "null");
    buf_puts(o, ",\"max_attempts\":");
    if (t->max_attempts > 0)
        buf_i64(o, t->max_attempts);
    else
        buf_puts(o, "null");
    buf_printf(o, ",\"join_required\":%s,\"category\":", t->join_required ? "true" : "false");
    if (t->category[0])
        buf_json_str(o, t->category, strlen(t->category));
    else
        buf_puts(o, "null");
    slot_state_t state;
    tournament_slot_t s = tournament_slot_at(t, b->reset, now_ms, &state);
    char day[11];
    window_format_day(s.day, day);
    window_format_ms(s.opens_ms, at);
    window_format_ms(s.closes_ms, until);
    buf_printf(o, "},\"state\":\"%s\",\"window\":\"%s\",\"opens_at\":\"%s\",\"closes_at\":\"%s\",\"max_players\":",
               tournament_state_name(state), day, at, until);
    if (t->max_players > 0)
        buf_i64(o, t->max_players);
    else
        buf_puts(o, "null");
}

int64_t api_tournament_players_day(const board_t *b, int64_t now_ms)
{
    if (!b->tournament.on)
        return window_start_day(board_window_rule(b), now_ms);
    slot_state_t state;
    return tournament_slot_at(&b->tournament, b->reset, now_ms, &state).day;
}

/* ---------------------------------------------------------------- the list's filters */

int api_tournament_filter(http_req_t *req, tournament_filter_t *f)
{
    memset(f, 0, sizeof *f);
    bool bad = false;
    const char *kind = http_param(req, "kind", &bad);
    if (bad)
        return http_bad_param(req, "kind", "kind must be given once");
    const char *state = http_param(req, "state", &bad);
    if (bad)
        return http_bad_param(req, "state", "state must be given once");
    const char *cat = http_param(req, "category", &bad);
    if (bad)
        return http_bad_param(req, "category", "category must be given once");
    if (kind && strcmp(kind, "tournament") != 0)
        return http_bad_param(req, "kind", "kind must be tournament");
    if ((state || cat) && !kind)
        return http_bad_param(req, state ? "state" : "category", "state and category filter kind=tournament");
    if (state && !tournament_state_parse(state, &f->state))
        return http_bad_param(req, "state", "state must be upcoming, active or ended");
    if (cat && (strlen(cat) < 1 || strlen(cat) > TOURNAMENT_CATEGORY_MAX))
        return http_bad_param(req, "category", "category must be 1 to %d bytes", TOURNAMENT_CATEGORY_MAX);
    f->on = kind != NULL;
    f->has_state = state != NULL;
    if (cat)
        snprintf(f->category, sizeof f->category, "%s", cat);
    return 0;
}

bool api_tournament_matches(const tournament_filter_t *f, const board_t *b, int64_t now_ms)
{
    if (!f->on)
        return true;
    if (!b->tournament.on || (f->category[0] && strcmp(f->category, b->tournament.category) != 0))
        return false;
    slot_state_t state;
    tournament_slot_at(&b->tournament, b->reset, now_ms, &state);
    return !f->has_state || state == f->state;
}

/* ---------------------------------------------------------------- join and attempts */

/* The board of a join or of attempts, and the slot they are for: the active one, else the next
 * to open; 0, or the error written (a board that is no tournament, or whose one slot closed). */
static int tournament_slot(app_t *app, const route_t *rt, http_req_t *req, board_t *b, tournament_slot_t *slot)
{
    /* API.md: values are 400 before anything is 404 */
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    int rc = api_load_board(app, rt, req, b);
    if (rc)
        return rc;
    if (!b->tournament.on) {
        board_clear(b);
        return http_error(req, 409, "conflict", NULL, "this board is not a tournament");
    }
    slot_state_t state;
    *slot = tournament_slot_at(&b->tournament, b->reset, req->received_ms, &state);
    if (state == SLOT_ENDED) {
        board_clear(b);
        return http_error(req, 409, "not_active", NULL, "the tournament's slot has closed");
    }
    return 0;
}

/* A join while the joiner commits it: the connection is suspended meanwhile. */
typedef struct {
    http_pending_t base;
    app_t *app;
    join_job_t job;
    board_t board;                  /* owned; the job's item points to it */
    char player[PLAYER_ID_MAX + 1];
    void (*wake)(void *arg);
    void *wake_arg;
} join_op_t;

static void join_done(join_job_t *job)
{
    join_op_t *op = job->arg;
    op->wake(op->wake_arg); /* last: the request may be finished and freed at once */
}

static void join_start(http_pending_t *p, void (*wake)(void *), void *wake_arg)
{
    join_op_t *op = (join_op_t *)p;
    op->wake = wake;
    op->wake_arg = wake_arg;
    joiner_enqueue(op->app->joiner, &op->job);
}

static int join_finish(http_pending_t *p, http_req_t *req)
{
    join_op_t *op = (join_op_t *)p;
    const tj_item_t *it = &op->job.item;
    if (op->job.failed) {
        req->retry_after = 1;
        return http_unavailable(req, "the primary database");
    }
    metrics_add(op->app->metrics, it->outcome == TJ_JOINED  ? METRIC_TOURNAMENT_JOINED
                                  : it->outcome == TJ_AGAIN ? METRIC_TOURNAMENT_JOINED_AGAIN
                                                            : METRIC_TOURNAMENT_FULL,
                it->outcome != TJ_GONE);
    if (it->outcome == TJ_GONE)
        return http_not_found(req, "board", "board");
    if (it->outcome == TJ_FULL)
        return http_error(req, 409, "tournament_full", NULL, "the tournament's slot has as many players as its max_players");
    char day[11], at[25];
    window_format_day(it->day, day);
    window_format_ms(it->joined_ms, at);
    buf_puts(&req->out, "{\"board\":");
    buf_json_str(&req->out, op->board.id, strlen(op->board.id));
    buf_printf(&req->out, ",\"window\":\"%s\",\"player_id\":", day);
    buf_json_str(&req->out, op->player, strlen(op->player));
    buf_printf(&req->out, ",\"joined_at\":\"%s\"}", at);
    return http_ok(req, 200);
}

static void join_release(http_pending_t *p)
{
    join_op_t *op = (join_op_t *)p;
    board_clear(&op->board);
    free(op);
}

int api_join(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    tournament_slot_t slot;
    int rc = tournament_slot(app, rt, req, &b, &slot);
    if (rc)
        return rc;
    if ((rc = api_player_write_allowed(req, &b, rt->player, true))) { /* a player token: its rules */
        board_clear(&b);
        return rc;
    }
    join_op_t *op = xcalloc(1, sizeof *op);
    op->base = (http_pending_t){join_start, join_finish, join_release};
    op->app = app;
    op->board = b; /* moved */
    memcpy(op->player, rt->player, rt->player_len);
    op->job.item = (tj_item_t){.board = &op->board, .day = slot.day, .player = op->player, .at_ms = req->received_ms};
    op->job.done = join_done;
    op->job.arg = op;
    req->pending = &op->base;
    return 0;
}

int api_attempts(app_t *app, const route_t *rt, http_req_t *req)
{
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const allowed[] = {"add", NULL};
    json_t *add = json_object_get(obj, "add");
    if ((rc = body_only(req, obj, allowed))) {
        json_decref(obj);
        return rc;
    }
    if (!add || !json_is_integer(add) || json_integer_value(add) < 1 || json_integer_value(add) > TOURNAMENT_ADD_MAX) {
        json_decref(obj);
        return http_error(req, 400, "invalid_argument", "add", "add must be a whole number 1..%d", TOURNAMENT_ADD_MAX);
    }
    int64_t n = json_integer_value(add);
    json_decref(obj);
    board_t b;
    tournament_slot_t slot;
    if ((rc = tournament_slot(app, rt, req, &b, &slot)))
        return rc;
    if (b.tournament.max_attempts == 0) {
        board_clear(&b);
        return http_error(req, 409, "conflict", NULL, "this tournament has no max_attempts: attempts are unlimited");
    }
    pg_lease_t lease;
    if (!pg_router_primary(app->router, &lease)) {
        board_clear(&b);
        return http_unavailable(req, "the primary database");
    }
    int64_t used = 0, extra = 0;
    q_status_t st = q_tournament_add_attempts(lease.conn, b.gen, slot.day, rt->player, n, &used, &extra);
    if (st == Q_OK)
        pg_router_note_commit(app->router, lease.conn, b.gen);
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    if (st == Q_NOT_FOUND)
        rc = http_not_found(req, "board", "board");
    else if (st != Q_OK)
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    else {
        int64_t left = b.tournament.max_attempts + extra - used;
        char day[11];
        window_format_day(slot.day, day);
        buf_puts(&req->out, "{\"board\":");
        buf_json_str(&req->out, b.id, strlen(b.id));
        buf_printf(&req->out, ",\"window\":\"%s\",\"player_id\":", day);
        buf_json_str(&req->out, rt->player, rt->player_len);
        buf_printf(&req->out, ",\"attempts_left\":%" PRId64 "}", left > 0 ? left : 0);
        rc = http_ok(req, 200);
    }
    board_clear(&b);
    return rc;
}
