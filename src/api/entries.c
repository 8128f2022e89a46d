/*
 * api/entries.c — ranked reads of a board window: pages (offset or
 * cursor), one player, around a player, several players, and removing a
 * player. Each read asks Redis first (one Lua call) and falls back to
 * PostgreSQL when Redis is down, unconfigured, the window is cold (a
 * rebuild is then requested), or the client asked for consistency=strong.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "cache/l1.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/window.h"
#include "obs/metrics.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "util/alloc.h"

typedef enum { READ_PAGE, READ_CURSOR, READ_PLAYERS, READ_AROUND } read_kind_t;

typedef struct {
    read_kind_t kind;
    int64_t day;
    int limit;
    int64_t offset;
    const order_pos_t *pos;
    bool backward;
    const char *const *ids;
    size_t n_ids;
    const char *player;
    int before, after;
} read_t;

static rb_status_t read_redis(redisContext *rc, const board_t *b, const read_t *r, entries_t *out)
{
    switch (r->kind) {
    case READ_PAGE: return rb_page(rc, b, r->day, r->offset, r->limit, out);
    case READ_CURSOR: return rb_page_cursor(rc, b, r->day, r->pos, r->backward, r->limit, out);
    case READ_PLAYERS: return rb_players(rc, b, r->day, r->ids, r->n_ids, out);
    case READ_AROUND: return rb_around(rc, b, r->day, r->player, r->before, r->after, out);
    }
    return RB_DOWN;
}

static q_status_t read_pg(PGconn *c, const board_t *b, const read_t *r, entries_t *out)
{
    switch (r->kind) {
    case READ_PAGE: return q_page_offset(c, b, r->day, r->limit, r->offset, out);
    case READ_CURSOR: return q_page_cursor(c, b, r->day, r->pos, r->backward, r->limit, out);
    case READ_PLAYERS: return q_players(c, b, r->day, r->ids, r->n_ids, out);
    case READ_AROUND: {
        q_status_t st = q_around(c, b, r->day, r->player, r->before, r->after, out);
        return st == Q_NOT_FOUND ? Q_OK : st;
    }
    }
    return Q_ERROR;
}

/* Run a read; 0 with `out` filled, or the error status written into req. */
static int run_read(app_t *app, http_req_t *req, const board_t *b, const read_t *r, entries_t *out)
{
    entries_init(out);
    if (!req->strong && app->redis) {
        redisContext *rc = redis_acquire(app->redis);
        if (rc) {
            rb_status_t st = read_redis(rc, b, r, out);
            redis_release(app->redis, rc, st == RB_DOWN);
            if (st == RB_OK) {
                metrics_add(app->metrics, METRIC_REDIS_READS, 1);
                return 0;
            }
            if (st == RB_COLD) {
                metrics_add(app->metrics, METRIC_REDIS_COLD, 1);
                rebuilder_request(app->rebuilder, b, r->day);
            }
            entries_clear(out);
        }
    }
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c)
        return http_unavailable(req, "the database");
    q_status_t st = read_pg(c, b, r, out);
    pg_pool_release(app->primary, c, st == Q_UNAVAILABLE);
    metrics_add(app->metrics, METRIC_PG_READS, 1);
    if (st != Q_OK) {
        entries_clear(out);
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    return 0;
}

/* ---------------------------------------------------------------- rendering */

static void render_entry(buf_t *o, const entry_t *e)
{
    char at[25];
    window_format_ms(e->achieved_ms, at);
    buf_printf(o, "{\"rank\":%" PRId64 ",\"player_id\":", e->rank);
    buf_json_str(o, e->player, e->player_len);
    buf_printf(o, ",\"score\":%" PRId64 ",\"achieved_at\":\"%s\"", e->score, at);
    if (e->metadata) {
        buf_puts(o, ",\"metadata\":");
        buf_puts(o, e->metadata);
    }
    buf_putc(o, '}');
}

static void render_head(buf_t *o, const board_t *b, int64_t day, int64_t total)
{
    char d[11];
    window_format_day(day, d);
    buf_puts(o, "{\"board\":");
    buf_json_str(o, b->id, strlen(b->id));
    buf_printf(o, ",\"window\":\"%s\",\"total\":%" PRId64 ",\"entries\":[", d, total);
}

static void render_entries(buf_t *o, const entries_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        if (i)
            buf_putc(o, ',');
        render_entry(o, &e->items[i]);
    }
}

/* ---------------------------------------------------------------- response cache */

/*
 * A cacheable read: its canonical key (route, board generation, window,
 * the parameters that shape the answer) and, after a miss, the claim and
 * the window epoch read before the store was asked.
 */
typedef struct {
    buf_t key;
    bool claimed;
    uint64_t epoch;
} cached_read_t;

/* True when answered from the cache; otherwise the caller computes and calls cache_store or cache_drop. */
static bool cache_lookup(app_t *app, http_req_t *req, cached_read_t *cr, route_id_t route, const board_t *b,
                         int64_t day, const char *params)
{
    buf_init(&cr->key);
    cr->claimed = false;
    if (!app->l1 || req->strong)
        return false;
    buf_printf(&cr->key, "%d|%" PRId64 "|%" PRId64 "|%s", (int)route, b->gen, day, params);
    l1_entry_t *e = l1_get(app->l1, cr->key.data, cr->key.len, &cr->claimed);
    if (e) {
        req->cached = e;
        req->cacheable = true;
        buf_free(&cr->key);
        http_ok(req, 200);
        return true;
    }
    if (cr->claimed)
        cr->epoch = l1_window_epoch(app->l1, b->gen, day);
    return false;
}

/* Keep the answer just rendered into req->out (status 200) for the entries it shows. */
static void cache_store(app_t *app, http_req_t *req, cached_read_t *cr, const board_t *b, int64_t day,
                        const entries_t *e)
{
    if (cr->claimed) {
        l1_scope_t scope = {.gen = b->gen, .day = day, .total = e->total, .has_span = e->n > 0};
        if (e->n > 0) {
            const entry_t *f = &e->items[0], *l = &e->items[e->n - 1];
            order_pos_set(&scope.first, f->sort_key, f->achieved_ms, f->player, f->player_len);
            order_pos_set(&scope.last, l->sort_key, l->achieved_ms, l->player, l->player_len);
        }
        req->cached = l1_insert(app->l1, cr->key.data, cr->key.len, &scope, cr->epoch, req->out.data, req->out.len, 0);
        buf_reset(&req->out);
    }
    buf_free(&cr->key);
}

static void cache_drop(app_t *app, cached_read_t *cr)
{
    if (cr->claimed)
        l1_abandon(app->l1, cr->key.data, cr->key.len);
    buf_free(&cr->key);
}

/* ---------------------------------------------------------------- parameters */

/* Resolve the window= parameter; 0 or the error written. */
static int param_window(app_t *app, http_req_t *req, const board_t *b, int64_t *day)
{
    (void)app;
    bool bad = false;
    const char *w = http_param(req, "window", &bad);
    if (bad)
        return http_bad_param(req, "window");
    switch (window_resolve(b->reset, b->created_ms, req->received_ms, w, day)) {
    case WINDOW_OK: return 0;
    case WINDOW_MALFORMED: return http_bad_param(req, "window");
    case WINDOW_ABSENT: return http_not_found(req, "window", "window");
    }
    return http_bad_param(req, "window");
}

/* An optional plain-decimal parameter within [min, max]; 0 or the error written. */
static int param_uint(http_req_t *req, const char *name, uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out)
{
    bool bad = false;
    const char *v = http_param(req, name, &bad);
    *out = dflt;
    if (bad || (v && (!param_parse_uint(v, max, out) || *out < min)))
        return http_bad_param(req, name);
    return 0;
}

static int check_player(const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", "invalid player id");
    return 0;
}

/* ---------------------------------------------------------------- entries */

static void put_cursor(app_t *app, buf_t *o, const board_t *b, int64_t day, const entry_t *e, bool backward)
{
    cursor_t c = {.kind = CURSOR_ENTRIES, .backward = backward, .gen = b->gen, .day = day};
    order_pos_set(&c.pos, e->sort_key, e->achieved_ms, e->player, e->player_len);
    char text[CURSOR_TEXT_MAX];
    const char *secret = app->cfg->cursor_secret;
    cursor_encode(&c, secret, strlen(secret), text);
    buf_printf(o, "\"%s\"", text);
}

int api_entries(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    int64_t day = 0;
    uint64_t limit, offset;
    bool bad = false;
    const char *cur = http_param(req, "cursor", &bad);
    const char *off = http_param(req, "offset", &bad);
    cursor_t cursor;
    const char *secret = app->cfg->cursor_secret;
    if ((rc = param_window(app, req, &b, &day)) || (rc = param_uint(req, "limit", 1, 1000, 10, &limit)) ||
        (rc = param_uint(req, "offset", 0, INT64_MAX / 2, 0, &offset)))
        goto done;
    if (bad || (cur && off)) {
        rc = http_bad_param(req, cur && off ? "offset" : "cursor");
        goto done;
    }
    if (cur && (!cursor_decode(cur, secret, strlen(secret), &cursor) || cursor.kind != CURSOR_ENTRIES ||
                cursor.gen != b.gen || cursor.day != day)) {
        rc = http_bad_param(req, "cursor");
        goto done;
    }
    read_t r = {.kind = cur ? READ_CURSOR : READ_PAGE, .day = day, .limit = (int)limit, .offset = (int64_t)offset};
    if (cur) {
        r.pos = &cursor.pos;
        r.backward = cursor.backward;
    }
    char params[CURSOR_TEXT_MAX + 64];
    snprintf(params, sizeof params, "%" PRIu64 "|%" PRIu64 "|%s", limit, offset, cur ? cur : "");
    cached_read_t cr;
    if (cache_lookup(app, req, &cr, R_ENTRIES, &b, day, params)) {
        rc = 200;
        goto done;
    }
    entries_t e;
    if ((rc = run_read(app, req, &b, &r, &e))) {
        cache_drop(app, &cr);
        goto done;
    }
    buf_t *o = &req->out;
    render_head(o, &b, day, e.total);
    render_entries(o, &e);
    buf_puts(o, "],\"next_cursor\":");
    if (e.n > 0 && e.items[e.n - 1].rank < e.total)
        put_cursor(app, o, &b, day, &e.items[e.n - 1], false);
    else
        buf_puts(o, "null");
    buf_puts(o, ",\"prev_cursor\":");
    if (e.n > 0 && e.items[0].rank > 1)
        put_cursor(app, o, &b, day, &e.items[0], true);
    else
        buf_puts(o, "null");
    buf_putc(o, '}');
    req->cacheable = true;
    rc = http_ok(req, 200);
    cache_store(app, req, &cr, &b, day, &e);
    entries_clear(&e);
done:
    board_clear(&b);
    return rc;
}

/* ---------------------------------------------------------------- one player */

void api_render_standing(buf_t *o, const char *board_id, int64_t day, int64_t total, const entry_t *e)
{
    char d[11];
    window_format_day(day, d);
    buf_t tmp;
    buf_init(&tmp);
    render_entry(&tmp, e);
    tmp.data[tmp.len - 1] = '\0'; /* reopen the entry object */
    tmp.len--;
    buf_append(o, tmp.data, tmp.len);
    buf_free(&tmp);
    buf_puts(o, ",\"board\":");
    buf_json_str(o, board_id, strlen(board_id));
    /* top_percent = 100 * rank / total, rounded up to two decimals: ceil(10000 * rank / total) / 100 */
    int64_t hundredths = total > 0 ? (e->rank * 10000 + total - 1) / total : 0;
    buf_printf(o, ",\"window\":\"%s\",\"total\":%" PRId64 ",\"top_percent\":%" PRId64, d, total, hundredths / 100);
    if (hundredths % 100)
        buf_printf(o, ".%02" PRId64, hundredths % 100);
    buf_putc(o, '}');
}

static int get_player(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    int64_t day;
    if ((rc = check_player(rt, req)) || (rc = param_window(app, req, &b, &day)))
        goto done;
    const char *ids[] = {rt->player};
    read_t r = {.kind = READ_PLAYERS, .day = day, .ids = ids, .n_ids = 1};
    cached_read_t cr;
    if (cache_lookup(app, req, &cr, R_PLAYER, &b, day, rt->player)) {
        rc = 200;
        goto done;
    }
    entries_t e;
    if ((rc = run_read(app, req, &b, &r, &e))) {
        cache_drop(app, &cr);
        goto done;
    }
    if (e.n == 0) {
        cache_drop(app, &cr);
        rc = http_not_found(req, "player_id", "player");
    } else {
        api_render_standing(&req->out, b.id, day, e.total, &e.items[0]);
        req->cacheable = true;
        rc = http_ok(req, 200);
        cache_store(app, req, &cr, &b, day, &e);
    }
    entries_clear(&e);
done:
    board_clear(&b);
    return rc;
}

static int delete_player(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    if ((rc = check_player(rt, req))) {
        board_clear(&b);
        return rc;
    }
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c) {
        board_clear(&b);
        return http_unavailable(req, "the database");
    }
    int64_t *days = NULL, *versions = NULL;
    size_t n = 0;
    q_status_t st = q_player_delete(c, b.gen, rt->player, &days, &versions, &n);
    pg_pool_release(app->primary, c, st == Q_UNAVAILABLE);
    if (st == Q_OK) {
        for (size_t i = 0; i < n; i++)
            l1_invalidate(app->l1, b.gen, days[i], NULL, NULL, true);
        redisContext *r = redis_acquire(app->redis);
        for (size_t i = 0; r && i < n; i++) {
            rb_change_t ch = {.player = rt->player, .version = versions[i], .removed = true};
            rb_status_t rs = rb_apply(r, b.gen, days[i], &ch, 1, NULL, NULL, NULL);
            if (rs != RB_OK) {
                redis_release(app->redis, r, true);
                r = NULL;
            }
        }
        if (r)
            redis_release(app->redis, r, false);
        rc = http_ok(req, 204);
    } else if (st == Q_NOT_FOUND) {
        rc = http_not_found(req, "player_id", "player");
    } else {
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    free(days);
    free(versions);
    board_clear(&b);
    return rc;
}

int api_player(app_t *app, const route_t *rt, http_req_t *req)
{
    return strcmp(req->method, "DELETE") == 0 ? delete_player(app, rt, req) : get_player(app, rt, req);
}

/* ---------------------------------------------------------------- around and several */

int api_around(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    int64_t day;
    uint64_t before, after;
    if ((rc = check_player(rt, req)) || (rc = param_window(app, req, &b, &day)) ||
        (rc = param_uint(req, "before", 0, 100, 5, &before)) || (rc = param_uint(req, "after", 0, 100, 5, &after)))
        goto done;
    read_t r = {.kind = READ_AROUND, .day = day, .player = rt->player, .before = (int)before, .after = (int)after};
    char params[320];
    snprintf(params, sizeof params, "%s|%" PRIu64 "|%" PRIu64, rt->player, before, after);
    cached_read_t cr;
    if (cache_lookup(app, req, &cr, R_AROUND, &b, day, params)) {
        rc = 200;
        goto done;
    }
    entries_t e;
    if ((rc = run_read(app, req, &b, &r, &e))) {
        cache_drop(app, &cr);
        goto done;
    }
    if (e.n == 0) {
        cache_drop(app, &cr);
        rc = http_not_found(req, "player_id", "player");
    } else {
        render_head(&req->out, &b, day, e.total);
        render_entries(&req->out, &e);
        buf_puts(&req->out, "]}");
        req->cacheable = true;
        rc = http_ok(req, 200);
        cache_store(app, req, &cr, &b, day, &e);
    }
    entries_clear(&e);
done:
    board_clear(&b);
    return rc;
}

#define IDS_MAX 100

int api_players(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    int64_t day;
    char *copy = NULL;
    const char *ids[IDS_MAX];
    size_t n = 0;
    if ((rc = param_window(app, req, &b, &day)))
        goto done;
    bool bad = false;
    const char *list = http_param(req, "ids", &bad);
    if (bad || !list || !*list) {
        rc = http_bad_param(req, "ids");
        goto done;
    }
    copy = xstrdup(list);
    char *p = copy;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!id_player_valid(p, strlen(p))) {
            rc = http_error(req, 400, "invalid_argument", "ids", "invalid player id in ids");
            goto done;
        }
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(ids[i], p) == 0;
        if (!dup) {
            if (n == IDS_MAX) {
                rc = http_error(req, 400, "invalid_argument", "ids", "at most 100 distinct ids");
                goto done;
            }
            ids[n++] = p;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    read_t r = {.kind = READ_PLAYERS, .day = day, .ids = ids, .n_ids = n};
    cached_read_t cr;
    if (cache_lookup(app, req, &cr, R_PLAYERS, &b, day, list)) {
        rc = 200;
        goto done;
    }
    entries_t e;
    if ((rc = run_read(app, req, &b, &r, &e))) {
        cache_drop(app, &cr);
        goto done;
    }
    render_head(&req->out, &b, day, e.total);
    render_entries(&req->out, &e);
    buf_puts(&req->out, "]}");
    req->cacheable = true;
    rc = http_ok(req, 200);
    cache_store(app, req, &cr, &b, day, &e);
    entries_clear(&e);
done:
    free(copy);
    board_clear(&b);
    return rc;
}
