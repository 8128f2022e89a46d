/* api/stats.c — a window's statistics and a board's daily activity (from the materialized views),
 * and a board's windows. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/window.h"
#include "store/pg_router.h"
#include "store/views.h"
#include "util/alloc.h"

/*
 * A statistic of integer scores (mean, stddev, a percentile, a histogram edge), to 4 decimal
 * places: more than integer scores can mean, and no binary noise (375963.70000000007) in the
 * answer. Past 2^53 / 10^4 a double holds no fourth decimal anyway: written as it is.
 */
static void stat_number(buf_t *o, double v)
{
    double r = round(v * 1e4) / 1e4;
    buf_double(o, isfinite(r) && fabs(v) < 9.0e11 ? r : v);
}

static void render_stats(buf_t *o, const board_t *b, int64_t day, const window_stats_t *s)
{
    char d[11], at[25];
    window_format_day(day, d);
    buf_puts(o, "{\"board\":");
    buf_json_str(o, b->id, strlen(b->id));
    buf_printf(o, ",\"window\":\"%s\",\"players\":%" PRId64 ",\"submissions\":%" PRId64, d, s->players,
               s->submissions);
    if (!s->has_values) {
        buf_puts(o, ",\"min\":null,\"max\":null,\"mean\":null,\"stddev\":null,"
                    "\"percentiles\":{\"p50\":null,\"p90\":null,\"p95\":null,\"p99\":null},\"histogram\":[]");
    } else {
        buf_printf(o, ",\"min\":%" PRId64 ",\"max\":%" PRId64 ",\"mean\":", s->min, s->max);
        stat_number(o, s->mean);
        buf_puts(o, ",\"stddev\":");
        stat_number(o, s->stddev);
        buf_puts(o, ",\"percentiles\":{\"p50\":");
        stat_number(o, s->p50);
        buf_puts(o, ",\"p90\":");
        stat_number(o, s->p90);
        buf_puts(o, ",\"p95\":");
        stat_number(o, s->p95);
        buf_puts(o, ",\"p99\":");
        stat_number(o, s->p99);
        buf_puts(o, "},\"histogram\":[");
        double width = (double)(s->max - s->min) / s->n_buckets;
        for (int i = 0; i < s->n_buckets; i++) {
            double lower = (double)s->min + width * i;
            double upper = i == s->n_buckets - 1 ? (double)s->max : (double)s->min + width * (i + 1);
            buf_puts(o, i ? ",{\"lower\":" : "{\"lower\":");
            stat_number(o, lower);
            buf_puts(o, ",\"upper\":");
            stat_number(o, upper);
            buf_printf(o, ",\"count\":%" PRId64 "}", s->buckets[i]);
        }
        buf_putc(o, ']');
    }
    buf_puts(o, ",\"refreshed_at\":");
    if (s->refreshed) {
        window_format_ms(s->refreshed_ms, at);
        buf_printf(o, "\"%s\"}", at);
    } else {
        buf_puts(o, "null}");
    }
}

typedef struct {
    int64_t gen, day;
    window_stats_t stats;
} stats_args_t;

static int64_t latest(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static q_status_t stats_on(PGconn *c, void *arg)
{
    stats_args_t *a = arg;
    return views_window_stats(c, a->gen, a->day, &a->stats);
}

int api_stats(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc;
    if ((rc = api_param_window_syntax(req)) || (rc = api_load_board(app, rt, req, &b)))
        return rc;
    int64_t day;
    if ((rc = api_param_window(app, req, &b, &day))) {
        board_clear(&b);
        return rc;
    }
    stats_args_t a = {b.gen, day, {0}};
    bool behind = false;
    q_status_t st = pg_router_read_run(app->router, b.gen, req->strong, stats_on, &a, &behind);
    window_stats_t s = a.stats;
    if (st != Q_OK)
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    else {
        render_stats(&req->out, &b, day, &s);
        /* What the body depends on besides the refresh: which window "current" is today, and
         * the board itself (a board re-created under its id is another). */
        /* A one-off tournament's window may be named by a day still to come: never a time ahead. */
        int64_t named = window_start_day(board_window_rule(&b), req->received_ms) * MS_PER_DAY;
        req->last_modified_ms = s.refreshed ? latest(latest(s.refreshed_ms, b.created_ms),
                                                     named < req->received_ms ? named : req->received_ms)
                                            : 0;
        req->cacheable = !behind;
        rc = http_ok(req, 200);
    }
    board_clear(&b);
    return rc;
}

/* ---------------------------------------------------------------- windows */

#define WINDOWS_MAX 1000

typedef struct {
    int64_t gen;
    const int64_t *days;
    size_t n;
    int64_t players[WINDOWS_MAX], submissions[WINDOWS_MAX];
} counts_args_t;

static q_status_t counts_on(PGconn *c, void *arg)
{
    counts_args_t *a = arg;
    return q_window_counts(c, a->gen, a->days, a->n, a->players, a->submissions);
}

int api_windows(app_t *app, const route_t *rt, http_req_t *req)
{
    bool bad = false;
    uint64_t limit = 25;
    const char *lim = http_param(req, "limit", &bad);
    const char *cur = http_param(req, "cursor", &bad);
    cursor_t cursor;
    const char *secret = app->cfg->cursor_secret;
    /* Values before the board's existence (400 before 404). */
    if (bad)
        return http_bad_param(req, NULL, "limit and cursor must each be given at most once");
    if (lim && (!param_parse_uint(lim, 1000, &limit) || limit < 1))
        return http_bad_param(req, "limit", "limit must be a whole number 1..1000");
    if (cur && (!cursor_decode_rotated(cur, secret, app->cfg->cursor_secret_previous, &cursor) || cursor.kind != CURSOR_WINDOWS ||
                cursor.backward))
        return http_bad_param(req, "cursor", "cursor is not one this route gave: pass next_cursor or prev_cursor as it came");
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    if (cur && cursor.gen != b.gen) {
        board_clear(&b);
        return http_bad_param(req, "cursor", "cursor was given by another board");
    }
    /* Windows run from the current one back to the one the board was created in (or the oldest
     * retention keeps), newest first. */
    int64_t first = window_first_kept(board_window_rule(&b), b.created_ms, config_retention_windows(app->cfg, b.id),
                                      req->received_ms);
    int64_t day = cur ? window_prev_day(board_window_rule(&b), cursor.pos.sort_key) : window_start_day(board_window_rule(&b), req->received_ms);
    if (b.reset == RESET_NONE && cur)
        day = first - 1;
    int64_t days[WINDOWS_MAX];
    size_t n = 0;
    while (n < limit && day >= first) {
        days[n++] = day;
        if (b.reset == RESET_NONE)
            break;
        day = window_prev_day(board_window_rule(&b), day);
    }
    bool more = n > 0 && b.reset != RESET_NONE && window_prev_day(board_window_rule(&b), days[n - 1]) >= first;

    counts_args_t a = {b.gen, days, n, {0}, {0}};
    bool behind = false;
    q_status_t st = pg_router_read_run(app->router, b.gen, req->strong, counts_on, &a, &behind);
    if (st != Q_OK) {
        board_clear(&b);
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    buf_t *o = &req->out;
    buf_puts(o, "{\"board\":");
    buf_json_str(o, b.id, strlen(b.id));
    buf_puts(o, ",\"windows\":[");
    for (size_t i = 0; i < n; i++) {
        char d[11];
        window_format_day(days[i], d);
        buf_printf(o, "%s{\"window\":\"%s\",\"players\":%" PRId64 ",\"submissions\":%" PRId64 "}", i ? "," : "", d,
                   a.players[i], a.submissions[i]);
    }
    buf_puts(o, "],\"next_cursor\":");
    if (more) {
        cursor_t next = {.kind = CURSOR_WINDOWS, .gen = b.gen};
        order_pos_set(&next.pos, days[n - 1], 0, "", 0);
        char text[CURSOR_TEXT_MAX];
        cursor_encode(&next, secret, strlen(secret), text);
        buf_printf(o, "\"%s\"}", text);
    } else {
        buf_puts(o, "null}");
    }
    board_clear(&b);
    req->cacheable = !behind;
    return http_ok(req, 200);
}

/* ---------------------------------------------------------------- activity */

#define ACTIVITY_DEFAULT_DAYS 30
#define ACTIVITY_MAX_SPAN 366

typedef struct {
    int64_t gen, from, to;
    day_activity_t *rows;
    size_t n;
    bool refreshed;
    int64_t refreshed_ms;
} activity_args_t;

static q_status_t activity_on(PGconn *c, void *arg)
{
    activity_args_t *a = arg;
    free(a->rows); /* a retry starts afresh */
    a->rows = NULL;
    return views_activity(c, a->gen, a->from, a->to, &a->rows, &a->n, &a->refreshed, &a->refreshed_ms);
}

/* An optional YYYY-MM-DD parameter: 0 (set when present), or the 400 written. */
static int param_day(http_req_t *req, const char *name, bool *given, int64_t *day)
{
    bool bad = false;
    const char *v = http_param(req, name, &bad);
    *given = v != NULL;
    if (bad || (v && !window_parse_day(v, day)))
        return http_bad_param(req, name, "%s must be a date, YYYY-MM-DD, given once", name);
    return 0;
}

int api_activity(app_t *app, const route_t *rt, http_req_t *req)
{
    int64_t today = req->received_ms / MS_PER_DAY, from = 0, to = today;
    bool has_from, has_to;
    int rc;
    /* Values before the board's existence (400 before 404). */
    if ((rc = param_day(req, "from", &has_from, &from)) || (rc = param_day(req, "to", &has_to, &to)))
        return rc;
    if (!has_from)
        from = to - (ACTIVITY_DEFAULT_DAYS - 1) < 0 && to >= 0 ? 0 : to - (ACTIVITY_DEFAULT_DAYS - 1);
    if (from < 0 || to < 0) /* before any submission could exist (and before year 1 for PostgreSQL) */
        return http_bad_param(req, to < 0 ? "to" : "from", "%s must be 1970-01-01 or later", to < 0 ? "to" : "from");
    if (to < from || to - from > ACTIVITY_MAX_SPAN)
        return http_error(req, 400, "invalid_argument", "from", "from must be at most %d days before to",
                          ACTIVITY_MAX_SPAN);
    board_t b;
    if ((rc = api_load_board(app, rt, req, &b)))
        return rc;
    activity_args_t a = {.gen = b.gen, .from = from, .to = to};
    bool behind = false;
    q_status_t st = pg_router_read_run(app->router, b.gen, req->strong, activity_on, &a, &behind);
    if (st != Q_OK) {
        free(a.rows);
        board_clear(&b);
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    /* Every day of the span, with zeros where the view has none. */
    size_t span = (size_t)(to - from + 1);
    day_activity_t *days = xcalloc(span, sizeof *days);
    for (size_t i = 0; i < a.n; i++)
        if (a.rows[i].day >= from && a.rows[i].day <= to)
            days[a.rows[i].day - from] = a.rows[i];
    buf_t *o = &req->out;
    buf_puts(o, "{\"board\":");
    buf_json_str(o, b.id, strlen(b.id));
    buf_puts(o, ",\"days\":[");
    for (size_t i = 0; i < span; i++) {
        char d[11];
        window_format_day(from + (int64_t)i, d);
        buf_printf(o, "%s{\"day\":\"%s\",\"submissions\":%" PRId64 ",\"players\":%" PRId64 "}", i ? "," : "", d,
                   days[i].submissions, days[i].players);
    }
    buf_puts(o, "],\"refreshed_at\":");
    if (a.refreshed) {
        char at[25];
        window_format_ms(a.refreshed_ms, at);
        buf_printf(o, "\"%s\"}", at);
        /* The default span moves with the day; a board re-created under its id is another. */
        req->last_modified_ms = latest(latest(a.refreshed_ms, b.created_ms), has_to ? 0 : today * MS_PER_DAY);
    } else {
        buf_puts(o, "null}");
    }
    free(days);
    free(a.rows);
    board_clear(&b);
    req->cacheable = !behind;
    return http_ok(req, 200);
}
