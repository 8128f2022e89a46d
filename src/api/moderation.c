/*
 * api/moderation.c — an admin hides a player on a board (POST …/players/{player}/hide), shows
 * them again (DELETE of the same path), and lists the board's hidden players (GET …/hidden).
 *
 * A hide is a player's deletion as far as the ranking goes (store/moderation.c): each live
 * window the player stood in takes its next number, every instance hears its D line, and this
 * instance's Redis copy, rank tier and cached answers follow as api/player_delete.c makes them
 * follow a deletion. A restore is a write of a new standing: a W line, the same followers. The
 * hidden player's own view (their rank among the visible players) is api_own_view below.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/body.h"
#include "cache/l1.h"
#include "cache/rank_tier.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/notice.h"
#include "core/order.h"
#include "core/window.h"
#include "obs/log.h"
#include "store/moderation.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "util/alloc.h"
#include "util/buf.h"

/* As a deletion: a second at most for an archive or an import of the board, then busy. */
#define MODERATION_LOCK_WAIT_MS 1000
#define MODERATION_RETRY_AFTER_S 5
/* A reason's bytes at most. */
#define REASON_MAX 500
/* A notice's payload stays under PostgreSQL's 8000-byte NOTIFY limit. */
#define NOTICE_BYTES 7800

/* The notice line of moved window `m`: a D line (hide) or a W line of a new standing, without
 * its metadata (restore: the hint sent again after the Redis update). */
static void put_line(buf_t *line, int64_t gen, const q_moved_t *m, const char *player, size_t len, bool restore)
{
    notice_change_t c = {.gen = gen, .day = m->day, .removed = !restore, .existed = !restore,
                         .old_sort_key = m->sort_key, .old_ms = m->achieved_ms, .new_sort_key = m->sort_key,
                         .new_ms = m->achieved_ms, .player = player, .player_len = len};
    buf_reset(line);
    notice_put_change(line, &c, false);
}

/* The windows' lines again, now that Redis has the change: another instance that read Redis
 * between the commit's notice and this update, and cached the answer, drops it. A hint (the
 * commit carried the notice): a failure is logged, not answered. */
static void hint_again(PGconn *c, int64_t gen, const q_moved_t *m, size_t n, const char *player, size_t len,
                       bool restore, http_req_t *req)
{
    buf_t payload, line;
    buf_init(&payload);
    buf_init(&line);
    for (size_t i = 0; i <= n; i++) {
        bool last = i == n;
        if (!last)
            put_line(&line, gen, &m[i], player, len, restore);
        if (payload.len && (last || payload.len + 1 + line.len > NOTICE_BYTES)) {
            if (q_notify(c, payload.data) != Q_OK)
                log_req_warn(req, "the invalidation notice of a player's hide or restore failed");
            buf_reset(&payload);
        }
        if (!last) {
            if (payload.len)
                buf_putc(&payload, '\n');
            buf_append(&payload, line.data, line.len);
        }
    }
    buf_free(&payload);
    buf_free(&line);
}

/* After the commit: Redis first, then the tier and the cached answers (read-your-writes on this
 * instance; the others hear the commit's notices), then the hint. Every moved window is live
 * (store/moderation.c moves no archived one); one that is neither current nor previous is in no
 * Redis copy or tier, only in caches. */
static void follow(app_t *app, PGconn *c, const board_t *b, const route_t *rt, const q_moved_t *m, size_t n,
                   bool restore, http_req_t *req)
{
    redis_conn_t *r = redis_acquire(app->redis);
    for (size_t i = 0; i < n; i++) {
        order_pos_t o;
        order_pos_set(&o, m[i].sort_key, m[i].achieved_ms, rt->player, rt->player_len);
        l1_invalidate(app->l1, b->gen, m[i].day, restore ? NULL : &o, restore ? &o : NULL, true);
        if (!window_is_hot(board_window_rule(b), m[i].day, req->received_ms))
            continue;
        tier_change_t tc = {rt->player, rt->player_len, m[i].sort_key, m[i].achieved_ms, m[i].metadata,
                            m[i].metadata ? strlen(m[i].metadata) : 0};
        rank_tier_committed(app->tier, b->gen, m[i].day, m[i].seq, restore ? &tc : NULL, restore ? 1 : 0);
        rb_change_t ch = {.player = rt->player, .sort_key = m[i].sort_key, .achieved_ms = m[i].achieved_ms,
                          .metadata = m[i].metadata, .version = m[i].version, .removed = !restore};
        rb_status_t rs = r ? rb_apply(r, b->gen, m[i].day, &ch, 1, m[i].seq, NULL, NULL, NULL, NULL) : RB_DOWN;
        if (rs != RB_OK) /* marked cold for every instance once Redis answers */
            redis_note_unapplied(app->redis, b->gen, m[i].day);
        if (rs == RB_DOWN && r) {
            redis_release(app->redis, r, true);
            r = NULL;
        }
    }
    if (r)
        redis_release(app->redis, r, false);
    hint_again(c, b->gen, m, n, rt->player, rt->player_len, restore, req);
}

/* The optional body of a hide: `{"reason"?}` (none at all is no reason). `*reason` points into
 * the request's parsed body (freed with `*obj`). */
static int hide_body(http_req_t *req, json_t **obj, const char **reason)
{
    *obj = NULL;
    *reason = NULL;
    if (req->body_len == 0)
        return 0;
    int rc = body_object(req, obj);
    if (rc)
        return rc;
    static const char *const allowed[] = {"reason", NULL};
    if ((rc = body_only(req, *obj, allowed)))
        return rc;
    json_t *v = json_object_get(*obj, "reason");
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > REASON_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
        return http_error(req, 400, "invalid_argument", "reason",
                          "reason must be a string of 1..%d bytes without NUL characters", REASON_MAX);
    *reason = json_string_value(v);
    return 0;
}

int api_player_hide(app_t *app, const route_t *rt, http_req_t *req)
{
    bool restore = strcmp(req->method, "DELETE") == 0;
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    json_t *obj = NULL;
    const char *reason = NULL;
    int rc = restore ? body_none(req) : hide_body(req, &obj, &reason);
    board_t b;
    if (rc || (rc = api_load_board(app, rt, req, &b))) {
        if (obj)
            json_decref(obj);
        return rc;
    }
    pg_lease_t lease;
    if (!pg_router_primary(app->router, &lease)) {
        board_clear(&b);
        if (obj)
            json_decref(obj);
        return http_unavailable(req, "the primary database");
    }
    PGconn *c = lease.conn;
    int timeout_ms = app->cfg->pg_statement_timeout_ms;
    int wait_ms = timeout_ms > 0 && timeout_ms / 2 < MODERATION_LOCK_WAIT_MS ? timeout_ms / 2 : MODERATION_LOCK_WAIT_MS;
    q_moved_t *m = NULL;
    size_t n = 0;
    q_status_t st = restore ? q_player_restore(c, b.gen, rt->player, wait_ms, &m, &n)
                            : q_player_hide(c, b.gen, rt->player, reason, req->received_ms, wait_ms, &m, &n);
    if (obj)
        json_decref(obj);
    if (st == Q_OK) {
        pg_router_note_commit(app->router, c, b.gen); /* its reads wait for a replica that has it */
        follow(app, c, &b, rt, m, n, restore, req);
        rc = http_ok(req, 204);
    } else if (st == Q_NOT_FOUND) {
        rc = restore ? http_error(req, 404, "not_found", "player_id", "this player is not hidden on this board")
                     : http_not_found(req, "player_id", "player");
    } else if (st == Q_CONFLICT) {
        rc = http_error(req, 409, "conflict", "player_id", "this player is hidden on this board already");
    } else if (st == Q_RETRY) {
        rc = http_error(req, 503, "unavailable", NULL,
                        "the board is being archived or imported into: try again later");
        req->retry_after = MODERATION_RETRY_AFTER_S;
    } else {
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    q_moved_free(m, n);
    board_clear(&b);
    return rc;
}

/* ---------------------------------------------------------------- the list */

int api_hidden(app_t *app, const route_t *rt, http_req_t *req)
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
    if (cur && (!cursor_decode_rotated(cur, secret, app->cfg->cursor_secret_previous, &cursor) ||
                cursor.kind != CURSOR_HIDDEN || cursor.backward))
        return http_bad_param(req, "cursor", "cursor is not one this route gave: pass next_cursor as it came");
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    if (cur && cursor.gen != b.gen) {
        board_clear(&b);
        return http_bad_param(req, "cursor", "cursor is not one this route gave: pass next_cursor as it came");
    }
    pg_lease_t lease;
    if (!pg_router_primary(app->router, &lease)) { /* the admin's list: what the primary says now */
        board_clear(&b);
        return http_unavailable(req, "the primary database");
    }
    q_hidden_t *h = NULL;
    size_t n = 0;
    q_status_t st = q_hidden_list(lease.conn, b.gen, cur ? cursor.pos.achieved_ms : 0, cur ? cursor.pos.player : NULL,
                                  (int)limit + 1, &h, &n);
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    if (st != Q_OK) {
        board_clear(&b);
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    bool more = n > limit;
    size_t shown = more ? (size_t)limit : n;
    buf_puts(&req->out, "{\"board\":");
    buf_json_str(&req->out, b.id, strlen(b.id));
    buf_puts(&req->out, ",\"hidden\":[");
    for (size_t i = 0; i < shown; i++) {
        char at[25];
        window_format_ms(h[i].hidden_ms, at);
        buf_puts(&req->out, i ? ",{\"player_id\":" : "{\"player_id\":");
        buf_json_str(&req->out, h[i].player, strlen(h[i].player));
        buf_printf(&req->out, ",\"hidden_at\":\"%s\",\"reason\":", at);
        if (h[i].reason)
            buf_json_str(&req->out, h[i].reason, strlen(h[i].reason));
        else
            buf_puts(&req->out, "null");
        buf_putc(&req->out, '}');
    }
    buf_puts(&req->out, "],\"next_cursor\":");
    if (more) {
        cursor_t next = {.kind = CURSOR_HIDDEN, .gen = b.gen};
        order_pos_set(&next.pos, 0, h[shown - 1].hidden_ms, h[shown - 1].player, strlen(h[shown - 1].player));
        char text[CURSOR_TEXT_MAX];
        cursor_encode(&next, secret, strlen(secret), text);
        buf_printf(&req->out, "\"%s\"}", text);
    } else {
        buf_puts(&req->out, "null}");
    }
    q_hidden_free(h, n);
    board_clear(&b);
    return http_ok(req, 200);
}

/* ---------------------------------------------------------------- the own view */

int api_own_view(app_t *app, http_req_t *req, const board_t *b, int64_t day, const char *player, rank_style_t style,
                 bool flagged, bool *hidden)
{
    *hidden = false;
    /* A replica only once it replayed the board's last commit this instance knows of (a hide
     * notes its commit): read-your-writes, and the primary's outage survived. */
    pg_lease_t lease;
    if (!pg_router_read(app->router, b->gen, req->strong, &lease)) /* no node: the read goes on as any other's */
        return 0;
    int64_t hidden_ms = 0;
    q_status_t st = q_player_hidden(lease.conn, b->gen, player, hidden, &hidden_ms);
    entry_t e;
    memset(&e, 0, sizeof e);
    int64_t total = 0;
    if (st == Q_OK && *hidden)
        st = q_own_view(lease.conn, b, day, player, style, &e, &total);
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    if (st == Q_OK && !*hidden)
        return 0;
    *hidden = true; /* answered here, whatever the outcome */
    if (st == Q_NOT_FOUND)
        return http_not_found(req, "player_id", "player");
    if (st != Q_OK)
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    api_render_standing(&req->out, b->id, day, total, &e);
    if (flagged) { /* reopen the object: the admin sees why no one else does */
        req->out.len--;
        buf_puts(&req->out, ",\"hidden\":true}");
    }
    free(e.metadata);
    req->cacheable = false;
    return http_ok(req, 200);
}

int api_own_around(app_t *app, http_req_t *req, const board_t *b, int64_t day, const char *player, int before,
                   int after, rank_style_t style, bool flagged, bool *hidden)
{
    *hidden = false;
    pg_lease_t lease;
    if (!pg_router_read(app->router, b->gen, req->strong, &lease))
        return 0;
    int64_t hidden_ms = 0;
    q_status_t st = q_player_hidden(lease.conn, b->gen, player, hidden, &hidden_ms);
    entries_t e;
    entries_init(&e);
    if (st == Q_OK && *hidden)
        st = q_own_around(lease.conn, b, day, player, before, after, style, &e);
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    if (st == Q_OK && !*hidden) {
        entries_clear(&e);
        return 0;
    }
    *hidden = true; /* answered here, whatever the outcome */
    if (st != Q_OK) {
        entries_clear(&e);
        if (st == Q_NOT_FOUND)
            return http_not_found(req, "player_id", "player");
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    char d[11];
    window_format_day(day, d);
    buf_puts(&req->out, "{\"board\":");
    buf_json_str(&req->out, b->id, strlen(b->id));
    buf_printf(&req->out, ",\"window\":\"%s\",\"total\":%" PRId64 ",\"entries\":[", d, e.total);
    for (size_t i = 0; i < e.n; i++) {
        if (i)
            buf_putc(&req->out, ',');
        api_render_entry(&req->out, &e.items[i]);
        if (flagged && strcmp(e.items[i].player, player) == 0) { /* reopen the entry: why no one else sees it */
            req->out.len--;
            buf_puts(&req->out, ",\"hidden\":true}");
        }
    }
    buf_puts(&req->out, "]}");
    entries_clear(&e);
    req->cacheable = false;
    return http_ok(req, 200);
}
