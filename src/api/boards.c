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
    if (st != Q_OK && st != Q_NOT_FOUND && board_cache_get_stale(app->boards, id, out))
        return 0; /* no node answers: the last definition read stands */
    if (st == Q_NOT_FOUND)
        return http_not_found(req, "board", "board");
    if (st != Q_OK)
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    if (!behind) /* a replica behind this instance's writes (the primary down): use it, keep it not */
        board_cache_put(app->boards, out);
    return 0;
}

int api_load_board(app_t *app, const route_t *rt, http_req_t *req, board_t *out)
{
    if (rt->board_bad || !id_board_valid(rt->board, rt->board_len))
        return http_error(req, 400, "invalid_argument", "board", "invalid board id");
    int rc = api_find_board(app, rt->board, !api_on_loop(app, req), req, out);
    return rc == HTTP_OFF_LOOP ? api_off_loop(app, rt, req) : rc;
}

void api_render_board(app_t *app, http_req_t *req, const board_t *b, int64_t players)
{
    (void)app;
    buf_t *o = &req->out;
    int64_t now = req->received_ms;
    int64_t cur = window_start_day(b->reset, now);
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
    int64_t nd = window_next_day(b->reset, cur);
    if (nd < 0) {
        buf_puts(o, "null");
    } else {
        window_format_ms(nd * MS_PER_DAY, next);
        buf_printf(o, "\"%s\"", next);
    }
    buf_printf(o, ",\"players\":%" PRId64 "}", players);
}

/* The live player count of the board's current window. */
static bool current_players(app_t *app, PGconn *c, const board_t *b, int64_t now, int64_t *players)
{
    (void)app;
    return q_window_players(c, b->gen, window_start_day(b->reset, now), players) == Q_OK;
}

typedef struct {
    const board_t *b;
    int64_t now_ms;
    int64_t players;
} players_args_t;

static q_status_t players_on(PGconn *c, void *arg)
{
    players_args_t *a = arg;
    return q_window_players(c, a->b->gen, window_start_day(a->b->reset, a->now_ms), &a->players);
}

/* ---------------------------------------------------------------- list and create */

static int list_boards(app_t *app, http_req_t *req)
{
    bool bad = false;
    const char *lim = http_param(req, "limit", &bad);
    if (bad)
        return http_bad_param(req, "limit");
    uint64_t limit = 25;
    if (lim && (!param_parse_uint(lim, 1000, &limit) || limit < 1))
        return http_bad_param(req, "limit");
    const char *cur = http_param(req, "cursor", &bad);
    if (bad)
        return http_bad_param(req, "cursor");
    cursor_t cursor;
    const char *secret = app->cfg->cursor_secret;
    if (cur && (!cursor_decode(cur, secret, strlen(secret), &cursor) || cursor.kind != CURSOR_BOARDS ||
                cursor.backward))
        return http_bad_param(req, "cursor");

    pg_lease_t lease;
    if (!pg_router_read(app->router, PG_KEY_ALL, req->strong, &lease))
        return http_unavailable(req, "the database");
    PGconn *c = lease.conn;
    board_t *boards = NULL;
    size_t n = 0;
    q_status_t st = q_board_list(c, cur ? cursor.pos.player : NULL, (int)limit + 1, &boards, &n);
    if (st != Q_OK) {
        pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    bool more = n > limit;
    size_t shown = more ? (size_t)limit : n;
    buf_puts(&req->out, "{\"leaderboards\":[");
    bool ok = true;
    for (size_t i = 0; i < shown; i++) {
        int64_t players = 0;
        ok = ok && current_players(app, c, &boards[i], req->received_ms, &players);
        if (i)
            buf_putc(&req->out, ',');
        api_render_board(app, req, &boards[i], players);
    }
    buf_puts(&req->out, "],\"next_cursor\":");
    if (more) {
        cursor_t next = {.kind = CURSOR_BOARDS};
        order_pos_set(&next.pos, 0, 0, boards[shown - 1].id, strlen(boards[shown - 1].id));
        char text[CURSOR_TEXT_MAX];
        cursor_encode(&next, secret, strlen(secret), text);
        buf_printf(&req->out, "\"%s\"}", text);
    } else {
        buf_puts(&req->out, "null}");
    }
    for (size_t i = 0; i < n; i++)
        board_clear(&boards[i]);
    free(boards);
    bool behind = lease.behind;
    pg_router_release(app->router, &lease, !ok);
    if (!ok) {
        buf_reset(&req->out);
        return http_unavailable(req, "the database");
    }
    req->cacheable = !behind;
    return http_ok(req, 200);
}

/* Read an optional integer bound; 0 when absent or good. */
static int optional_bound(http_req_t *req, json_t *obj, const char *field, bool *has, int64_t *v)
{
    json_t *x = json_object_get(obj, field);
    *has = x && !json_is_null(x);
    return *has ? body_score(req, x, field, v) : 0;
}

static int create_board(app_t *app, http_req_t *req)
{
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const allowed[] = {"id", "title", "sort", "operator", "reset", "metadata", "min_score",
                                          "max_score", NULL};
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
        api_render_board(app, req, &b, players);
        if (created)
            snprintf(req->location, sizeof req->location, "/v1/leaderboards/%s", b.id);
        board_clear(&b);
        rc = http_ok(req, created ? 201 : 200);
    }
done:
    free(metadata);
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
        return http_error(req, 400, "invalid_argument", "board", "invalid board id");
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const allowed[] = {"title", "metadata", NULL};
    const char *title = NULL;
    char *metadata = NULL;
    json_t *md = json_object_get(obj, "metadata");
    bool clear = md && json_is_null(md);
    if ((rc = body_only(req, obj, allowed)))
        goto done;
    if (json_object_get(obj, "title") && (rc = body_string(req, obj, "title", TITLE_MAX, &title)))
        goto done;
    if ((rc = body_metadata(req, clear ? NULL : md, &metadata)))
        goto done;
    pg_lease_t lease;
    if (!pg_router_primary(app->router, &lease)) {
        rc = http_unavailable(req, "the primary database");
        goto done;
    }
    PGconn *c = lease.conn;
    board_t b;
    q_status_t st = q_board_patch(c, rt->board, title, metadata, clear, &b);
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
        return http_error(req, 400, "invalid_argument", "board", "invalid board id");
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
    l1_invalidate_board(app->l1, gen);
    redis_conn_t *rc = redis_acquire(app->redis);
    if (rc) {
        rb_status_t rs = rb_forget_board(rc, gen);
        redis_release(app->redis, rc, rs == RB_DOWN);
    }
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
    if (st == Q_OK)
        api_render_board(app, req, &b, a.players);
    board_clear(&b);
    if (st != Q_OK)
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    req->cacheable = !behind;
    return http_ok(req, 200);
}
