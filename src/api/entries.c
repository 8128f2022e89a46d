/*
 * api/entries.c — ranked reads of a board window: pages (offset or cursor), one player,
 * around a player, several players (removing a player: api/player_delete.c). Each read handler checks its
 * parameters, says what it reads, and renders the result: api/read_pipeline.c does the
 * rest (the board, the response cache, Redis or PostgreSQL).
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/read_pipeline.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/rank_style.h"
#include "core/score.h"
#include "core/window.h"
#include "obs/log.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "util/alloc.h"
#include "util/buf.h"

/* ---------------------------------------------------------------- rendering */

/* A literal's bytes, without the strlen of buf_puts. */
#define PUT_LIT(o, lit) buf_append((o), "" lit, sizeof(lit) - 1)

/* A literal's bytes written at P, which moves past them ("" lit: a pointer does not compile). */
#define WRITE_LIT(p, lit) (memcpy((p), "" lit, sizeof(lit) - 1), (p) += sizeof(lit) - 1)

static void render_entry(buf_t *o, const entry_t *e)
{
    size_t meta_len = e->metadata ? strlen(e->metadata) : 0;
    /* Room for the whole entry at once (an escaped id byte takes 6 at most, a number 20, the
     * time 24 and its NUL): the entry is written straight into it, with no check per part. */
    buf_reserve(o, 128 + 6 * e->player_len + meta_len);
    char *p = o->data + o->len;
    WRITE_LIT(p, "{\"rank\":");
    p += i64_text(p, e->rank);
    WRITE_LIT(p, ",\"player_id\":");
    o->len = (size_t)(p - o->data);
    buf_json_str(o, e->player, e->player_len);
    p = o->data + o->len;
    WRITE_LIT(p, ",\"score\":");
    p += i64_text(p, e->score);
    WRITE_LIT(p, ",\"achieved_at\":\"");
    window_format_ms(e->achieved_ms, p);
    p += 24;
    *p++ = '"';
    if (e->metadata) {
        WRITE_LIT(p, ",\"metadata\":");
        memcpy(p, e->metadata, meta_len);
        p += meta_len;
    }
    *p++ = '}';
    *p = '\0';
    o->len = (size_t)(p - o->data);
}

void api_render_entry(buf_t *o, const entry_t *e)
{
    render_entry(o, e);
}

static void render_head(buf_t *o, const board_t *b, int64_t day, int64_t total)
{
    char d[11];
    window_format_day(day, d);
    buf_puts(o, "{\"board\":");
    buf_json_str(o, b->id, strlen(b->id));
    PUT_LIT(o, ",\"window\":\"");
    buf_append(o, d, 10);
    PUT_LIT(o, "\",\"total\":");
    buf_i64(o, total);
    PUT_LIT(o, ",\"entries\":[");
}

static void render_entries(buf_t *o, const entries_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        if (i)
            buf_putc(o, ',');
        render_entry(o, &e->items[i]);
    }
}

/* ---------------------------------------------------------------- parameters */

#define WINDOW_PARAM_RULE "window must be current, previous or the start date of one of the board's windows (YYYY-MM-DD)"

/* The 400 of a well-formed date that starts no window of `b`: which days do, and the window
 * holding that date. */
static int window_not_a_start(http_req_t *req, const board_t *b, const char *w)
{
    int64_t day = 0;
    if (!window_parse_day(w, &day))
        return http_bad_param(req, "window", WINDOW_PARAM_RULE);
    char holder[11], only[32];
    window_format_day(window_start_day(board_window_rule(b), day * MS_PER_DAY), holder);
    snprintf(only, sizeof only, "is the one of %s", holder); /* a board that never resets: its one window */
    const char *starts = b->reset == RESET_WEEKLY    ? "start on Mondays"
                         : b->reset == RESET_MONTHLY ? "start on the 1st of a month"
                                                     : only;
    return http_bad_param(req, "window", "window %s starts no window of this board: its %s window%s %s (the one holding "
                          "that day is window=%s)", w, board_reset_name(b->reset),
                          b->reset == RESET_NONE ? "" : "s", starts, holder);
}

/* Resolve the window= parameter; 0 or the error written (shared with api/stats.c). */
int api_param_window(const app_t *app, http_req_t *req, const board_t *b, int64_t *day)
{
    bool bad = false;
    const char *w = http_param(req, "window", &bad);
    if (bad)
        return http_bad_param(req, "window", "window must be given once");
    switch (window_resolve(board_window_rule(b), b->created_ms, config_retention_windows(app->cfg, b->id), req->received_ms, w, day)) {
    case WINDOW_OK: return 0;
    case WINDOW_MALFORMED: return window_not_a_start(req, b, w);
    case WINDOW_ABSENT: return http_not_found(req, "window", "window");
    }
    return http_bad_param(req, "window", WINDOW_PARAM_RULE);
}

/* The window= parameter's syntax alone, before the board is known (API.md: values are 400
 * before anything is 404); 0 or the error written. */
int api_param_window_syntax(http_req_t *req)
{
    bool bad = false;
    const char *w = http_param(req, "window", &bad);
    int64_t day;
    if (bad || (w && strcmp(w, "current") != 0 && strcmp(w, "previous") != 0 && !window_parse_day(w, &day)))
        return http_bad_param(req, "window", bad ? "window must be given once" : WINDOW_PARAM_RULE);
    return 0;
}

/* An optional plain-decimal parameter within [min, max]; 0 or the error written. */
int api_param_rank_style(http_req_t *req, rank_style_t *out)
{
    bool bad = false;
    const char *v = http_param(req, "rank_style", &bad);
    if (bad || !rank_style_parse(v, out))
        return http_bad_param(req, "rank_style", RANK_STYLE_RULE);
    return 0;
}

int api_param_uint(http_req_t *req, const char *name, uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out)
{
    bool bad = false;
    const char *v = http_param(req, name, &bad);
    *out = dflt;
    if (bad)
        return http_bad_param(req, name, "%s must be given once", name);
    if (v && (!param_parse_uint(v, max, out) || *out < min)) {
        if (max >= UINT64_C(1) << 40)
            return http_bad_param(req, name, "%s must be a whole number, %" PRIu64 " or more", name, min);
        return http_bad_param(req, name, "%s must be a whole number %" PRIu64 "..%" PRIu64, name, min, max);
    }
    return 0;
}

static int check_player(const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
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

static int render_page(app_t *app, http_req_t *req, const board_t *b, const read_t *r, const entries_t *e)
{
    int64_t day = r->day;
    buf_t *o = &req->out;
    buf_reserve(o, 512 + 160 * e->n);
    render_head(o, b, day, e->total);
    render_entries(o, e);
    buf_puts(o, "],\"next_cursor\":");
    if (e->n > 0 && e->items[e->n - 1].rank < e->total)
        put_cursor(app, o, b, day, &e->items[e->n - 1], false);
    else
        buf_puts(o, "null");
    buf_puts(o, ",\"prev_cursor\":");
    if (e->n > 0 && e->items[0].rank > 1)
        put_cursor(app, o, b, day, &e->items[0], true);
    else
        buf_puts(o, "null");
    buf_putc(o, '}');
    req->cacheable = true;
    return http_ok(req, 200);
}

/* What api_entries parsed that needs the board to be checked: the cursor, if one was given. */
typedef struct {
    bool given;
    cursor_t cursor;
    char text[CURSOR_TEXT_MAX + 1];
} entries_cursor_t;

/* The board's checks of a page read, and its cache key's parameters: limit|offset|cursor. */
static int bind_page(app_t *app, http_req_t *req, const board_t *b, read_request_t *rq, buf_t *key)
{
    const entries_cursor_t *c = rq->parsed;
    read_t *r = &rq->read;
    /* A cursor of another board is 400, even one naming a window that is gone. */
    if (c->given && c->cursor.gen != b->gen)
        return http_bad_param(req, "cursor", "cursor was given by another board (or by this board before it was "
                              "deleted and made again)");
    bool window_bad = false;
    if (c->given && !http_param(req, "window", &window_bad) && !window_bad) {
        /* Without window=, a cursor goes on paging the window it was taken in: a reset between
         * two pages does not end the paging (the answer's "window" names it). */
        char taken[11];
        window_format_day(c->cursor.day, taken);
        if (window_resolve(board_window_rule(b), b->created_ms, config_retention_windows(app->cfg, b->id), req->received_ms, taken,
                           &r->day) != WINDOW_OK)
            return http_bad_param(req, "cursor", "cursor pages window %s, which this board no longer keeps", taken);
    } else {
        int rc = api_param_window(app, req, b, &r->day);
        if (rc)
            return rc;
        if (c->given && c->cursor.day != r->day) {
            char taken[11];
            window_format_day(c->cursor.day, taken);
            return http_bad_param(req, "cursor", "cursor pages window %s: send it with window=%s, or without window",
                                  taken, taken);
        }
    }
    buf_i64(key, r->limit);
    buf_putc(key, '|');
    buf_i64(key, r->offset);
    buf_putc(key, '|');
    buf_puts(key, c->given ? c->text : "");
    return 0;
}

int api_entries(app_t *app, const route_t *rt, http_req_t *req)
{
    uint64_t limit, offset;
    bool bad = false;
    const char *cur = http_param(req, "cursor", &bad);
    const char *off = http_param(req, "offset", &bad);
    const char *secret = app->cfg->cursor_secret;
    entries_cursor_t c = {.given = cur != NULL};
    int rc;
    /* What needs no board first: a bad value is 400 even on a board that does not exist. */
    rank_style_t style;
    if ((rc = api_param_window_syntax(req)) || (rc = api_param_uint(req, "limit", 1, 1000, 10, &limit)) ||
        (rc = api_param_uint(req, "offset", 0, INT64_MAX / 2, 0, &offset)) || (rc = api_param_rank_style(req, &style)))
        return rc;
    if (bad)
        return http_bad_param(req, "cursor", "cursor and offset must each be given at most once");
    if (cur && off)
        return http_bad_param(req, "offset", "offset and cursor cannot be used together: a cursor already says where "
                              "its page starts");
    if (cur && (strnlen(cur, CURSOR_TEXT_MAX + 1) > CURSOR_TEXT_MAX ||
                !cursor_decode_rotated(cur, secret, app->cfg->cursor_secret_previous, &c.cursor) ||
                c.cursor.kind != CURSOR_ENTRIES))
        return http_bad_param(req, "cursor", "cursor is not one this route gave: pass next_cursor or prev_cursor as it came");
    if (cur)
        strcpy(c.text, cur); /* at most CURSOR_TEXT_MAX bytes: checked above */
    read_request_t rq = {.route = R_ENTRIES, .parsed = &c, .parsed_len = sizeof c, .bind = bind_page,
                         .render = render_page};
    rq.read.kind = cur ? READ_CURSOR : READ_PAGE;
    rq.read.style = style;
    rq.read.limit = (int)limit;
    rq.read.offset = (int64_t)offset;
    if (cur) {
        rq.read.pos = c.cursor.pos;
        rq.read.backward = c.cursor.backward;
    }
    return read_pipeline_run(app, rt, req, &rq);
}

/* ---------------------------------------------------------------- one player */

/* ,"top_percent":100 * rank / of, rounded up to two decimals: ceil(10000 * rank / of) / 100 */
static void put_top_percent(buf_t *o, int64_t rank, int64_t of)
{
    int64_t hundredths = of > 0 ? (rank * 10000 + of - 1) / of : 0;
    buf_puts(o, ",\"top_percent\":");
    buf_i64(o, hundredths / 100);
    if (hundredths % 100) {
        char frac[3] = {(char)('0' + hundredths % 100 / 10), (char)('0' + hundredths % 10), '\0'};
        buf_putc(o, '.');
        buf_puts(o, frac);
    }
}

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
    buf_puts(o, ",\"window\":\"");
    buf_append(o, d, 10);
    buf_puts(o, "\",\"total\":");
    buf_i64(o, total);
    put_top_percent(o, e->rank, total);
    buf_putc(o, '}');
}

static int render_player(app_t *app, http_req_t *req, const board_t *b, const read_t *r, const entries_t *e)
{
    (void)app;
    if (e->n == 0)
        return http_not_found(req, "player_id", "player");
    api_render_standing(&req->out, b->id, r->day, e->total, &e->items[0]);
    if (r->league)
        api_render_cohort_standing(&req->out, &b->league, &e->items[0]);
    req->cacheable = true;
    return http_ok(req, 200);
}

/* The board's checks of a read of one player or of the players around one: the window. The
 * cache key's parameters: the player, and for around before|after. */
static int bind_player(app_t *app, http_req_t *req, const board_t *b, read_request_t *rq, buf_t *key)
{
    int rc = api_param_window(app, req, b, &rq->read.day);
    if (rc)
        return rc;
    rq->read.league = rq->route == R_PLAYER && b->league.on;
    buf_puts(key, rq->read.player);
    if (rq->read.kind == READ_AROUND) {
        buf_putc(key, '|');
        buf_i64(key, rq->read.before);
        buf_putc(key, '|');
        buf_i64(key, rq->read.after);
    }
    return 0;
}

/* A read of the asker's own standing: a player token's of its own player. */
static bool own_read(const route_t *rt, const http_req_t *req)
{
    return req->player && strlen(req->player->player) == rt->player_len &&
           memcmp(req->player->player, rt->player, rt->player_len) == 0;
}

/* A player's own read that found them nowhere: hidden by a moderator, they still see themselves
 * (a shadow ban), ranked among the visible players; else the 404 stands. Off the event loop. */
static int own_player_missing(app_t *app, http_req_t *req, const board_t *b, const read_t *r)
{
    bool hidden = false;
    int rc = api_own_view(app, req, b, r->day, r->player, r->style, false, &hidden);
    return rc || hidden ? rc : http_not_found(req, "player_id", "player");
}

static int own_around_missing(app_t *app, http_req_t *req, const board_t *b, const read_t *r)
{
    bool hidden = false;
    int rc = api_own_around(app, req, b, r->day, r->player, r->before, r->after, r->style, false, &hidden);
    return rc || hidden ? rc : http_not_found(req, "player_id", "player");
}

static int get_player(app_t *app, const route_t *rt, http_req_t *req)
{
    int rc;
    rank_style_t style;
    if ((rc = check_player(rt, req)) || (rc = api_param_window_syntax(req)) || (rc = api_param_rank_style(req, &style)))
        return rc;
    if (req->role >= ROLE_ADMIN) { /* the admin sees a hidden player, flagged (api/moderation.c) */
        if (api_on_loop(app, req))
            return api_off_loop(app, rt, req);
        board_t b;
        int64_t day;
        bool hidden = false;
        if ((rc = api_load_board(app, rt, req, &b)))
            return rc;
        if (!(rc = api_param_window(app, req, &b, &day)))
            rc = api_own_view(app, req, &b, day, rt->player, style, true, &hidden);
        board_clear(&b);
        if (rc || hidden)
            return rc;
    }
    read_request_t rq = {.route = R_PLAYER, .bind = bind_player, .render = render_player};
    if (own_read(rt, req))
        rq.missing = own_player_missing;
    rq.read.style = style;
    rq.read.kind = READ_PLAYERS;
    memcpy(rq.read.player, rt->player, rt->player_len); /* validated: at most PLAYER_ID_MAX bytes */
    rq.read.ids[0] = rq.read.player;
    rq.read.n_ids = 1;
    return read_pipeline_run(app, rt, req, &rq);
}

int api_player(app_t *app, const route_t *rt, http_req_t *req)
{
    return strcmp(req->method, "DELETE") == 0 ? api_player_delete(app, rt, req) : get_player(app, rt, req);
}

/* ---------------------------------------------------------------- the rank of a score */

/* The answer: the rank a submission of the score made now would take (after every standing
 * with a better or equal score: it would be their later achiever), the total as it is, and the
 * top percent the standing would show, of the total with it. */
static int render_score(app_t *app, http_req_t *req, const board_t *b, const read_t *r, const entries_t *e)
{
    (void)app;
    char d[11];
    window_format_day(r->day, d);
    buf_t *o = &req->out;
    buf_puts(o, "{\"board\":");
    buf_json_str(o, b->id, strlen(b->id));
    buf_puts(o, ",\"window\":\"");
    buf_append(o, d, 10);
    buf_puts(o, "\",\"score\":");
    buf_i64(o, r->score);
    buf_puts(o, ",\"rank\":");
    buf_i64(o, e->at_or_before + 1);
    buf_puts(o, ",\"total\":");
    buf_i64(o, e->total);
    put_top_percent(o, e->at_or_before + 1, e->total + 1);
    buf_putc(o, '}');
    req->cacheable = true;
    return http_ok(req, 200);
}

/* The board's checks of a score's rank: the window, and the score within the board's bounds.
 * The cache key's parameter: the score. */
static int bind_score(app_t *app, http_req_t *req, const board_t *b, read_request_t *rq, buf_t *key)
{
    int rc = api_param_window(app, req, b, &rq->read.day);
    if (rc || (rc = api_score_bounds(req, b, rq->read.score)))
        return rc;
    buf_i64(key, rq->read.score);
    return 0;
}

/* A decimal integer within the score range, written as JSON writes one: no sign but a minus, no
 * leading zero, nothing else. */
static bool parse_score(const char *s, int64_t *out)
{
    const char *p = s + (*s == '-');
    size_t n = strlen(p);
    if (n == 0 || n > 16 || (p[0] == '0' && n > 1) || strspn(p, "0123456789") != n)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    *out = *s == '-' ? -v : v;
    return score_in_range(*out);
}

int api_rank_of_score(app_t *app, const route_t *rt, http_req_t *req)
{
    int rc;
    read_request_t rq = {.route = R_RANK_OF_SCORE, .bind = bind_score, .render = render_score};
    if ((rc = api_param_window_syntax(req)) || (rc = api_param_rank_style(req, &rq.read.style)))
        return rc;
    bool bad = false;
    const char *s = http_param(req, "score", &bad);
    if (bad || !s || !parse_score(s, &rq.read.score))
        return http_bad_param(req, "score", "score must be given once, an integer within ±(2^53-1)");
    rq.read.kind = READ_SCORE;
    return read_pipeline_run(app, rt, req, &rq);
}

/* ---------------------------------------------------------------- around and several */

static int render_list(app_t *app, http_req_t *req, const board_t *b, const read_t *r, const entries_t *e)
{
    (void)app;
    if (r->kind == READ_AROUND && e->n == 0)
        return http_not_found(req, "player_id", "player");
    buf_reserve(&req->out, 256 + 160 * e->n); /* most pages in one allocation */
    render_head(&req->out, b, r->day, e->total);
    render_entries(&req->out, e);
    buf_puts(&req->out, "]}");
    req->cacheable = true;
    return http_ok(req, 200);
}

int api_around(app_t *app, const route_t *rt, http_req_t *req)
{
    int rc;
    uint64_t before, after;
    rank_style_t style;
    if ((rc = check_player(rt, req)) || (rc = api_param_window_syntax(req)) ||
        (rc = api_param_uint(req, "before", 0, 100, 5, &before)) || (rc = api_param_uint(req, "after", 0, 100, 5, &after)) ||
        (rc = api_param_rank_style(req, &style)))
        return rc;
    if (req->role >= ROLE_ADMIN) { /* the admin sees a hidden player among the others, flagged */
        if (api_on_loop(app, req))
            return api_off_loop(app, rt, req);
        board_t b;
        int64_t day;
        bool hidden = false;
        if ((rc = api_load_board(app, rt, req, &b)))
            return rc;
        if (!(rc = api_param_window(app, req, &b, &day)))
            rc = api_own_around(app, req, &b, day, rt->player, (int)before, (int)after, style, true, &hidden);
        board_clear(&b);
        if (rc || hidden)
            return rc;
    }
    read_request_t rq = {.route = R_AROUND, .bind = bind_player, .render = render_list};
    if (own_read(rt, req))
        rq.missing = own_around_missing;
    rq.read.style = style;
    rq.read.kind = READ_AROUND;
    memcpy(rq.read.player, rt->player, rt->player_len); /* validated: at most PLAYER_ID_MAX bytes */
    rq.read.before = (int)before;
    rq.read.after = (int)after;
    return read_pipeline_run(app, rt, req, &rq);
}

/* The board's checks of a read of several players: the window. The cache key's parameters:
 * the ids as given. */
static int bind_players(app_t *app, http_req_t *req, const board_t *b, read_request_t *rq, buf_t *key)
{
    int rc = api_param_window(app, req, b, &rq->read.day);
    if (rc)
        return rc;
    bool bad = false;
    buf_puts(key, http_param(req, "ids", &bad)); /* checked by api_players */
    return 0;
}

int api_players(app_t *app, const route_t *rt, http_req_t *req)
{
    int rc;
    rank_style_t style;
    if ((rc = api_param_window_syntax(req)) || (rc = api_param_rank_style(req, &style)))
        return rc;
    bool bad = false;
    const char *list = http_param(req, "ids", &bad);
    if (bad || !list || !*list)
        return http_bad_param(req, "ids", "ids must be given once, a comma-separated list of player ids");
    /* The ids are checked before the board is looked up (400 before 404). */
    read_request_t rq = {.route = R_PLAYERS, .bind = bind_players, .render = render_list};
    rq.read.kind = READ_PLAYERS;
    rq.read.style = style;
    rq.read.ids_text = xstrdup(list);
    size_t n = 0;
    char *p = rq.read.ids_text;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!id_player_valid(p, strlen(p))) {
            free(rq.read.ids_text);
            return http_error(req, 400, "invalid_argument", "ids", "ids: " ID_PLAYER_RULE);
        }
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(rq.read.ids[i], p) == 0;
        if (!dup) {
            if (n == READ_IDS_MAX) {
                free(rq.read.ids_text);
                return http_error(req, 400, "invalid_argument", "ids", "at most 100 distinct ids");
            }
            rq.read.ids[n++] = p;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    rq.read.n_ids = n;
    return read_pipeline_run(app, rt, req, &rq);
}
