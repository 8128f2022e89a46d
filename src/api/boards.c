/* api/boards.c — board resources: list, create, get, patch, delete. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "api/app.h"
#include "api/body.h"
#include "cache/l1.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/window.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "store/tournament.h"
#include "util/alloc.h"
#include "util/clock.h"

typedef struct {
    const char *id;
    board_t *out;
} board_get_args_t;

static q_status_t board_get_on(PGconn *c, void *arg)
{
    board_get_args_t *a = arg;
    return q_board_get(c, a->id, a->out);
}

int api_find_board(app_t *app, const char *id, bool may_wait, http_req_t *req, board_t *out)
{
    if (!req->strong && board_cache_get(app->boards, id, out))
        return 0;
    if (!may_wait)
        return HTTP_OFF_LOOP;
    board_get_args_t a = {id, out};
    bool behind = false;
    int64_t asked_ms = clock_mono_ms();
    q_status_t st = pg_router_read_run(app->router, PG_KEY_CATALOG, req->strong, board_get_on, &a, &behind);
    if (st == Q_NOT_FOUND && !req->strong && pg_router_has_replicas(app->router)) {
        /* Another instance may have just created it, which no replica need have yet (boards
         * send no notice): the primary decides, when it answers. */
        q_status_t again = pg_router_read_run(app->router, PG_KEY_CATALOG, true, board_get_on, &a, NULL);
        if (again == Q_OK || again == Q_NOT_FOUND) {
            st = again;
            behind = false;
        }
    }
    /* No node answers: the definition PostgreSQL last gave stands (nothing can change a board
     * while the primary is down; see cache/board_catalog.h). A strong read wants the primary. */
    if (st != Q_OK && st != Q_NOT_FOUND && !req->strong && board_catalog_get(app->catalog, id, out))
        return 0;
    if (st == Q_NOT_FOUND) {
        if (!behind) /* deleted (by another instance, its notice not heard yet) */
            board_catalog_forget_id(app->catalog, id, asked_ms);
        return http_not_found(req, "board", "board");
    }
    if (st != Q_OK)
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    if (!behind) { /* a replica behind this instance's writes (the primary down): use it, keep it not */
        board_cache_put(app->boards, out);
        board_catalog_put(app->catalog, out);
    }
    return 0;
}

int api_load_board(app_t *app, const route_t *rt, http_req_t *req, board_t *out)
{
    if (rt->board_bad || !id_board_valid(rt->board, rt->board_len))
        return http_error(req, 400, "invalid_argument", "board", ID_BOARD_RULE);
    int rc = api_find_board(app, rt->board, !api_on_loop(app, req), req, out);
    return rc == HTTP_OFF_LOOP ? api_off_loop(app, rt, req) : rc;
}

bool api_render_board(app_t *app, http_req_t *req, const board_t *b, int64_t players)
{
    (void)app;
    buf_t *o = &req->out;
    int64_t now = req->received_ms;
    int64_t cur = window_start_day(board_window_rule(b), now);
    char day[11], created[25], next[25];
    window_format_day(cur, day);
    window_format_ms(b->created_ms, created);
    buf_puts(o, "{\"id\":");
    buf_json_str(o, b->id, strlen(b->id));
    buf_puts(o, ",\"title\":");
    buf_json_str(o, b->title, strlen(b->title));
    buf_printf(o, ",\"sort\":\"%s\",\"operator\":\"%s\",\"reset\":\"%s\"", board_sort_name(b->sort),
               board_op_name(b->op), board_reset_name(b->reset));
    if (b->metadata) {
        buf_puts(o, ",\"metadata\":");
        buf_puts(o, b->metadata);
    }
    if (b->has_min_score)
        buf_printf(o, ",\"min_score\":%" PRId64, b->min_score);
    if (b->has_max_score)
        buf_printf(o, ",\"max_score\":%" PRId64, b->max_score);
    buf_printf(o, ",\"created_at\":\"%s\",\"current_window\":\"%s\",\"next_reset_at\":", created, day);
    int64_t nd = window_next_day(board_window_rule(b), cur);
    if (nd < 0) {
        buf_puts(o, "null");
    } else {
        window_format_ms(nd * MS_PER_DAY, next);
        buf_printf(o, "\"%s\"", next);
    }
    api_render_tournament(o, b, now);
    api_render_league(o, b);
    bool admins_only = api_render_webhook(o, b, req->role);
    buf_printf(o, ",\"client_writes\":%s,\"client_rules\":{", b->client_writes ? "true" : "false");
    if (b->max_submissions_per_minute > 0)
        buf_printf(o, "\"max_submissions_per_minute\":%d", (int)b->max_submissions_per_minute);
    if (b->max_rise_per_second > 0)
        buf_printf(o, "%s\"max_rise_per_second\":%.15g", b->max_submissions_per_minute > 0 ? "," : "",
                   b->max_rise_per_second);
    buf_printf(o, "},\"players\":%" PRId64 "}", players);
    return admins_only;
}

/* The live player count of the board's current window; of a tournament's current or next slot:
 * its entrants where they are counted (a join required, or a cap), else its scored players. */
static q_status_t board_players(PGconn *c, const board_t *b, int64_t now, int64_t *players)
{
    int64_t day = api_tournament_players_day(b, now);
    if (tournament_counts_slot(&b->tournament))
        return q_tournament_entrants(c, b->gen, day, players);
    return q_window_players(c, b->gen, day, players);
}

static bool current_players(app_t *app, PGconn *c, const board_t *b, int64_t now, int64_t *players)
{
    (void)app;
    return board_players(c, b, now, players) == Q_OK;
}

/*
 * The live player count of the board's current window from Redis, for when no PostgreSQL node
 * can count it: Redis holds the current window of every board with every committed standing
 * (the writer applies each commit before answering), the same count the Redis path gives as
 * `total` on every page. Not RB_OK when Redis failed or the window is not loaded (cold).
 * Waits on Redis: off the event loop only.
 */
static rb_status_t redis_players(app_t *app, redis_conn_t *rc, const board_t *b, int64_t now_ms, int64_t *players)
{
    int64_t day = window_start_day(board_window_rule(b), now_ms);
    /* A tournament's places, or its next slot's players, are no count Redis holds. */
    if (tournament_counts_slot(&b->tournament) || api_tournament_players_day(b, now_ms) != day)
        return RB_COLD;
    if (!redis_window_trusted(app->redis, b->gen, day, NULL)) /* its mark not checked yet (it needs the primary) */
        rebuilder_request(app->rebuilder, b, day);
    entries_t e;
    entries_init(&e);
    rb_status_t st = rb_page(rc, b, window_start_day(board_window_rule(b), now_ms), 0, 1, &e);
    *players = e.total;
    entries_clear(&e);
    if (st == RB_COLD) /* loaded once PostgreSQL answers again */
        rebuilder_request(app->rebuilder, b, window_start_day(board_window_rule(b), now_ms));
    return st;
}

/* A connection to a Redis that may be read from (NULL when none); give it back with redis_release. */
static redis_conn_t *trusted_redis(app_t *app)
{
    return app->redis && redis_trusted(app->redis) ? redis_acquire(app->redis) : NULL;
}

typedef struct {
    const board_t *b;
    int64_t now_ms;
    int64_t players;
} players_args_t;

static q_status_t players_on(PGconn *c, void *arg)
{
    players_args_t *a = arg;
    return board_players(c, a->b, a->now_ms, &a->players);
}

/* ---------------------------------------------------------------- list and create */

/* Finish a list page of `boards[0..shown)` (with `more` after it) in req->out. */
static void render_list_tail(app_t *app, http_req_t *req, const board_t *boards, size_t shown, bool more)
{
    buf_puts(&req->out, "],\"next_cursor\":");
    if (more) {
        const char *secret = app->cfg->cursor_secret;
        cursor_t next = {.kind = CURSOR_BOARDS};
        order_pos_set(&next.pos, 0, 0, boards[shown - 1].id, strlen(boards[shown - 1].id));
        char text[CURSOR_TEXT_MAX];
        cursor_encode(&next, secret, strlen(secret), text);
        buf_printf(&req->out, "\"%s\"}", text);
    } else {
        buf_puts(&req->out, "null}");
    }
}

/*
 * The list while no PostgreSQL node answers: the boards the catalog knows (a full list read at
 * most its max lag before PostgreSQL's latest answer, and what was learned since), with their
 * live counts from Redis. 503 when it knows no full list, or a board's window is not in Redis.
 * Never cached: a board made elsewhere just before the outage may be missing.
 */
static int list_fallback(app_t *app, http_req_t *req, const char *after, size_t limit)
{
    board_t *boards = NULL;
    size_t n = 0;
    bool more = false;
    if (req->strong || !board_catalog_list(app->catalog, after, limit, &boards, &n, &more))
        return http_unavailable(req, "the database");
    redis_conn_t *rc = n > 0 ? trusted_redis(app) : NULL;
    rb_status_t rs = n == 0 || rc ? RB_OK : RB_DOWN;
    buf_puts(&req->out, "{\"leaderboards\":[");
    for (size_t i = 0; i < n && rs == RB_OK; i++) {
        int64_t players = 0;
        rs = redis_players(app, rc, &boards[i], req->received_ms, &players);
        if (i)
            buf_putc(&req->out, ',');
        api_render_board(app, req, &boards[i], players);
    }
    bool ok = rs == RB_OK;
    if (ok)
        render_list_tail(app, req, boards, n, more);
    if (rc)
        redis_release(app->redis, rc, rs == RB_DOWN);
    for (size_t i = 0; i < n; i++)
        board_clear(&boards[i]);
    free(boards);
    if (!ok) {
        buf_reset(&req->out);
        return http_unavailable(req, "the database");
    }
    req->cacheable = false;
    return http_ok(req, 200);
}

/* Up to `want` tournament boards after `after` that pass filter `f` (its category in SQL, the
 * state of its slot at now_ms here), read a chunk at a time. The caller frees *out (board_clear
 * each). */
static q_status_t list_filtered(PGconn *c, const char *after, size_t want, const tournament_filter_t *f,
                                int64_t now_ms, board_t **out, size_t *n)
{
    enum { CHUNK = 500 };
    *out = xcalloc(want, sizeof **out);
    *n = 0;
    char from[BOARD_ID_MAX + 1];
    snprintf(from, sizeof from, "%s", after ? after : "");
    for (;;) {
        board_t *chunk = NULL;
        size_t k = 0;
        q_status_t st = q_board_list_tournaments(c, from[0] ? from : NULL, CHUNK, f->category[0] ? f->category : NULL,
                                                 &chunk, &k);
        if (st != Q_OK)
            return st;
        for (size_t i = 0; i < k; i++) {
            if (*n < want && api_tournament_matches(f, &chunk[i], now_ms))
                (*out)[(*n)++] = chunk[i]; /* moved */
            else
                board_clear(&chunk[i]);
        }
        if (k > 0)
            snprintf(from, sizeof from, "%s", chunk[k - 1].id);
        free(chunk);
        if (*n == want || k < CHUNK)
            return Q_OK;
    }
}

static int list_boards(app_t *app, http_req_t *req)
{
    bool bad = false;
    const char *lim = http_param(req, "limit", &bad);
    if (bad)
        return http_bad_param(req, "limit", "limit must be given once");
    uint64_t limit = 25;
    if (lim && (!param_parse_uint(lim, 1000, &limit) || limit < 1))
        return http_bad_param(req, "limit", "limit must be a whole number 1..1000");
    const char *cur = http_param(req, "cursor", &bad);
    if (bad)
        return http_bad_param(req, "cursor", "cursor must be given once");
    cursor_t cursor;
    const char *secret = app->cfg->cursor_secret;
    if (cur && (!cursor_decode_rotated(cur, secret, app->cfg->cursor_secret_previous, &cursor) || cursor.kind != CURSOR_BOARDS ||
                cursor.backward))
        return http_bad_param(req, "cursor", "cursor is not one this route gave: pass next_cursor or prev_cursor as it came");

    tournament_filter_t filter;
    int rc = api_tournament_filter(req, &filter);
    if (rc)
        return rc;
    const char *after = cur ? cursor.pos.player : "";
    pg_lease_t lease;
    /* A filtered list has no fallback: the catalog keeps no tournament's count of entrants. */
    if (!pg_router_read(app->router, PG_KEY_ALL, req->strong, &lease))
        return filter.on ? http_unavailable(req, "the database") : list_fallback(app, req, after, limit);
    PGconn *c = lease.conn;
    board_t *boards = NULL;
    size_t n = 0;
    int64_t begun_ms = clock_mono_ms();
    q_status_t st = filter.on ? list_filtered(c, cur ? cursor.pos.player : NULL, (size_t)limit + 1, &filter,
                                              req->received_ms, &boards, &n)
                              : q_board_list(c, cur ? cursor.pos.player : NULL, (int)limit + 1, &boards, &n);
    if (st != Q_OK) {
        for (size_t i = 0; i < n; i++)
            board_clear(&boards[i]);
        free(boards);
        pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
        if (filter.on)
            return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
        return st == Q_UNAVAILABLE ? list_fallback(app, req, after, limit) : http_internal(req);
    }
    bool more = n > limit;
    size_t shown = more ? (size_t)limit : n;
    /* Every board's live count in one round trip. */
    int64_t *gens = xcalloc(shown + 1, sizeof *gens), *days = xcalloc(shown + 1, sizeof *days);
    int64_t *players = xcalloc(shown + 1, sizeof *players);
    bool *entrants = xcalloc(shown + 1, sizeof *entrants);
    for (size_t i = 0; i < shown; i++) {
        gens[i] = boards[i].gen;
        days[i] = api_tournament_players_day(&boards[i], req->received_ms);
        entrants[i] = tournament_counts_slot(&boards[i].tournament);
    }
    bool ok = q_windows_players(c, gens, days, entrants, shown, players) == Q_OK;
    buf_puts(&req->out, "{\"leaderboards\":[");
    bool admins_only = false;
    for (size_t i = 0; i < shown; i++) {
        if (i)
            buf_putc(&req->out, ',');
        admins_only |= api_render_board(app, req, &boards[i], players[i]);
    }
    free(gens);
    free(days);
    free(players);
    free(entrants);
    render_list_tail(app, req, boards, shown, more);
    bool behind = lease.behind;
    if (!behind && !cur && !more && !filter.on) /* every board: what the catalog answers lists from */
        board_catalog_install(app->catalog, boards, n, begun_ms);
    else if (!behind)
        for (size_t i = 0; i < shown; i++)
            board_catalog_put(app->catalog, &boards[i]);
    for (size_t i = 0; i < n; i++)
        board_clear(&boards[i]);
    free(boards);
    pg_router_release(app->router, &lease, !ok);
    if (!ok) {
        buf_reset(&req->out);
        return filter.on ? http_unavailable(req, "the database") : list_fallback(app, req, after, limit);
    }
    /* A tournament's state moves with the clock; an admin's list may show webhook URLs. */
    req->cacheable = !behind && !filter.on && !admins_only;
    return http_ok(req, 200);
}

/* Read an optional integer bound; 0 when absent or good. */
static int optional_bound(http_req_t *req, json_t *obj, const char *field, bool *has, int64_t *v)
{
    json_t *x = json_object_get(obj, field);
    *has = x && !json_is_null(x);
    return *has ? body_score(req, x, field, v) : 0;
}

/* An optional boolean (false when absent); 0, or the 400 written. */
static int optional_bool(http_req_t *req, json_t *obj, const char *field, bool *v)
{
    json_t *x = json_object_get(obj, field);
    if (x && !json_is_boolean(x))
        return http_error(req, 400, "invalid_argument", field, "%s must be true or false", field);
    *v = x && json_is_true(x);
    return 0;
}

/* The largest values the client rules take (API.md, "Plausibility rules"). */

/*
 * The client_rules object of a create (`patch` false: every rule absent or null is off) or a
 * PATCH (`patch` true: a rule absent is kept, null removes it; `client_rules: null` removes
 * both). 0, or the 400 naming the field written into req.
 */
static int client_rules_body(http_req_t *req, json_t *obj, bool patch, q_rules_patch_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *v = json_object_get(obj, "client_rules");
    if (!v)
        return 0;
    if (json_is_null(v)) {
        out->set_per_minute = out->set_rise = true;
        return 0;
    }
    if (!json_is_object(v))
        return http_error(req, 400, "invalid_argument", "client_rules",
                          "client_rules must be an object: {\"max_submissions_per_minute\"?, \"max_rise_per_second\"?}");
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
        if (strcmp(key, "max_submissions_per_minute") != 0 && strcmp(key, "max_rise_per_second") != 0)
            return http_error(req, 400, "invalid_argument", "client_rules",
                              "client_rules has no rule %.64s: the rules are max_submissions_per_minute and "
                              "max_rise_per_second", key);
    }
    json_t *pm = json_object_get(v, "max_submissions_per_minute");
    if (pm) {
        out->set_per_minute = true;
        if (!json_is_null(pm) && (!json_is_integer(pm) || json_integer_value(pm) < 1 ||
                                  json_integer_value(pm) > RULE_PER_MINUTE_MAX))
            return http_error(req, 400, "invalid_argument", "client_rules.max_submissions_per_minute",
                              "client_rules.max_submissions_per_minute must be a whole number 1..%d, or null for none",
                              RULE_PER_MINUTE_MAX);
        out->max_submissions_per_minute = json_is_null(pm) ? 0 : (int32_t)json_integer_value(pm);
    }
    json_t *rs = json_object_get(v, "max_rise_per_second");
    if (rs) {
        out->set_rise = true;
        double d = json_is_number(rs) ? json_number_value(rs) : 0;
        if (!json_is_null(rs) && (!json_is_number(rs) || !(d > 0) || d > RULE_RISE_MAX))
            return http_error(req, 400, "invalid_argument", "client_rules.max_rise_per_second",
                              "client_rules.max_rise_per_second must be a number above 0 and at most 1e18, or null "
                              "for none");
        out->max_rise_per_second = json_is_null(rs) ? 0 : d;
    }
    if (!patch) /* a create: what is not given is off */
        out->set_per_minute = out->set_rise = true;
    return 0;
}

static int create_board(app_t *app, http_req_t *req)
{
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const allowed[] = {"id", "title", "sort", "operator", "reset", "metadata", "min_score",
                                          "max_score", "tournament", "cohorts", "tiers", "webhook", "client_writes",
                                          "client_rules", NULL};
    board_t def;
    memset(&def, 0, sizeof def);
    const char *id = NULL, *title = NULL, *sort = NULL, *op = NULL, *reset = NULL;
    char *metadata = NULL;
    if ((rc = body_only(req, obj, allowed)))
        goto done;
    /* API.md: a board id that breaks its rule is field "board", wherever it comes from. */
    json_t *idv = json_object_get(obj, "id");
    id = json_is_string(idv) ? json_string_value(idv) : NULL;
    if (!id || strlen(id) != json_string_length(idv) || !id_board_valid(id, strlen(id))) {
        rc = http_error(req, 400, "invalid_argument", "board",
                        "id must be a board id: 1 to %d bytes of a-z, 0-9, _ and -, starting with a letter or digit",
                        BOARD_ID_MAX);
        goto done;
    }
    if ((rc = body_string(req, obj, "title", TITLE_MAX, &title)) || (rc = body_string(req, obj, "sort", 8, &sort)) ||
        (rc = body_string(req, obj, "operator", 8, &op)) || (rc = body_string(req, obj, "reset", 8, &reset)))
        goto done;
    if (!board_sort_parse(sort, &def.sort)) {
        rc = http_error(req, 400, "invalid_argument", "sort", "sort must be asc or desc");
        goto done;
    }
    if (!board_op_parse(op, &def.op)) {
        rc = http_error(req, 400, "invalid_argument", "operator", "operator must be best, latest or sum");
        goto done;
    }
    if (!board_reset_parse(reset, &def.reset)) {
        rc = http_error(req, 400, "invalid_argument", "reset", "reset must be none, daily, weekly or monthly");
        goto done;
    }
    json_t *md = json_object_get(obj, "metadata");
    if ((rc = body_metadata(req, json_is_null(md) ? NULL : md, &metadata)) ||
        (rc = optional_bound(req, obj, "min_score", &def.has_min_score, &def.min_score)) ||
        (rc = optional_bound(req, obj, "max_score", &def.has_max_score, &def.max_score)))
        goto done;
    if (def.has_min_score && def.has_max_score && def.min_score > def.max_score) {
        rc = http_error(req, 400, "invalid_argument", "min_score", "min_score is above max_score");
        goto done;
    }
    if ((rc = optional_bool(req, obj, "client_writes", &def.client_writes)))
        goto done;
    q_rules_patch_t rules;
    if ((rc = client_rules_body(req, obj, false, &rules)))
        goto done;
    def.max_submissions_per_minute = rules.max_submissions_per_minute;
    def.max_rise_per_second = rules.max_rise_per_second;
    if ((rc = api_tournament_body(req, obj, def.reset, &def.tournament)) ||
        (rc = api_league_body(req, obj, def.tournament.on, &def.league)) ||
        (rc = api_webhook_body(req, obj, &def)))
        goto done;
    snprintf(def.id, sizeof def.id, "%s", id);
    def.title = (char *)title;
    def.metadata = metadata;

    pg_lease_t lease;
    if (!pg_router_primary(app->router, &lease)) {
        rc = http_unavailable(req, "the primary database");
        goto done;
    }
    PGconn *c = lease.conn;
    board_t b;
    bool created = false;
    q_status_t st = q_board_create(c, &def, req->received_ms, &b, &created);
    int64_t players = 0;
    if (st == Q_OK && !created)
        st = current_players(app, c, &b, req->received_ms, &players) ? Q_OK : Q_ERROR;
    if (st == Q_OK) /* created here, or by another instance a moment ago: either way, read it back */
        pg_router_note_commit(app->router, c, PG_KEY_CATALOG);
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    if (st == Q_CONFLICT) {
        rc = http_error(req, 409, "conflict", "id", "a different board with this id exists");
    } else if (st != Q_OK) {
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    } else {
        board_cache_forget(app->boards, b.id);
        board_catalog_put(app->catalog, &b);
        api_render_board(app, req, &b, players);
        if (created)
            snprintf(req->location, sizeof req->location, "/v1/leaderboards/%s", b.id);
        board_clear(&b);
        rc = http_ok(req, created ? 201 : 200);
    }
done:
    free(metadata);
    league_clear(&def.league);
    json_decref(obj);
    return rc;
}

int api_boards(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    return strcmp(req->method, "POST") == 0 ? create_board(app, req) : list_boards(app, req);
}

/* ---------------------------------------------------------------- one board */

static int patch_board(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->board_bad || !id_board_valid(rt->board, rt->board_len))
        return http_error(req, 400, "invalid_argument", "board", ID_BOARD_RULE);
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const allowed[] = {"title", "metadata", "client_writes", "client_rules", NULL};
    const char *title = NULL;
    char *metadata = NULL;
    json_t *md = json_object_get(obj, "metadata");
    bool clear = md && json_is_null(md);
    /* A board's other fields are fixed once it is made: say so, not "unknown field". */
    static const char *const fixed[] = {"id", "sort", "operator", "reset", "min_score", "max_score", "tournament",
                                        "cohorts", "tiers", "webhook", NULL};
    for (const char *const *f = fixed; *f; f++)
        if (json_object_get(obj, *f)) {
            rc = http_error(req, 400, "invalid_argument", *f, "%s cannot be changed once a board is made: a PATCH may "
                            "change title, metadata, client_writes and client_rules; make a new board for another %s", *f, *f);
            goto done;
        }
    if ((rc = body_only(req, obj, allowed)))
        goto done;
    if (json_object_get(obj, "title") && (rc = body_string(req, obj, "title", TITLE_MAX, &title)))
        goto done;
    if ((rc = body_metadata(req, clear ? NULL : md, &metadata)))
        goto done;
    bool client_writes = false;
    bool has_client_writes = json_object_get(obj, "client_writes") != NULL;
    if ((rc = optional_bool(req, obj, "client_writes", &client_writes)))
        goto done;
    q_rules_patch_t rules;
    if ((rc = client_rules_body(req, obj, true, &rules)))
        goto done;
    pg_lease_t lease;
    if (!pg_router_primary(app->router, &lease)) {
        rc = http_unavailable(req, "the primary database");
        goto done;
    }
    PGconn *c = lease.conn;
    board_t b;
    q_status_t st = q_board_patch(c, rt->board, title, metadata, clear, has_client_writes ? client_writes : -1, &rules, &b);
    int64_t players = 0;
    if (st == Q_OK) {
        pg_router_note_commit(app->router, c, PG_KEY_CATALOG);
        st = current_players(app, c, &b, req->received_ms, &players) ? Q_OK : Q_ERROR;
    }
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    board_cache_forget(app->boards, rt->board);
    if (st == Q_NOT_FOUND) {
        rc = http_not_found(req, "board", "board");
    } else if (st != Q_OK) {
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    } else {
        board_catalog_put(app->catalog, &b);
        api_render_board(app, req, &b, players);
        board_clear(&b);
        rc = http_ok(req, 200);
    }
done:
    free(metadata);
    json_decref(obj);
    return rc;
}

static int delete_board(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->board_bad || !id_board_valid(rt->board, rt->board_len))
        return http_error(req, 400, "invalid_argument", "board", ID_BOARD_RULE);
    pg_lease_t lease;
    if (!pg_router_primary(app->router, &lease))
        return http_unavailable(req, "the primary database");
    int64_t gen = 0;
    q_status_t st = q_board_delete(lease.conn, rt->board, &gen);
    if (st == Q_OK)
        pg_router_note_commit(app->router, lease.conn, PG_KEY_CATALOG);
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    board_cache_forget(app->boards, rt->board);
    if (st == Q_NOT_FOUND)
        return http_not_found(req, "board", "board");
    if (st != Q_OK)
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    board_catalog_forget_gen(app->catalog, gen); /* the other instances: by its notice */
    l1_invalidate_board(app->l1, gen);
    /* Its Redis keys go with the rest of it, in the upkeep leader's purge (a sweep of every master
     * would take this request as long as Redis is large). */
    return http_ok(req, 204);
}

int api_board(app_t *app, const route_t *rt, http_req_t *req)
{
    if (strcmp(req->method, "PATCH") == 0)
        return patch_board(app, rt, req);
    if (strcmp(req->method, "DELETE") == 0)
        return delete_board(app, rt, req);
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    players_args_t a = {&b, req->received_ms, 0};
    bool behind = false;
    q_status_t st = pg_router_read_run(app->router, b.gen, req->strong, players_on, &a, &behind);
    if (st == Q_UNAVAILABLE && !req->strong) {
        /* No node answers: the count from Redis (see redis_players); the definition may come
         * from the catalog too, so the answer is kept out of every cache as a late one is. */
        redis_conn_t *conn = trusted_redis(app);
        if (conn) {
            rb_status_t rs = redis_players(app, conn, &b, req->received_ms, &a.players);
            redis_release(app->redis, conn, rs == RB_DOWN);
            st = rs == RB_OK ? Q_OK : st;
            behind = true;
        }
    }
    bool admins_only = st == Q_OK && api_render_board(app, req, &b, a.players);
    board_clear(&b);
    if (st != Q_OK)
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    req->cacheable = !behind && !admins_only; /* an admin's Board may show its webhook's URL */
    return http_ok(req, 200);
}
