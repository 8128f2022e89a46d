/* api/stats.c — a window's statistics (from the materialized views) and a board's windows. */
#include <inttypes.h>
#include <string.h>

#include "api/app.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/window.h"
#include "store/pg_router.h"
#include "store/views.h"

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
        buf_double(o, s->mean);
        buf_puts(o, ",\"stddev\":");
        buf_double(o, s->stddev);
        buf_puts(o, ",\"percentiles\":{\"p50\":");
        buf_double(o, s->p50);
        buf_puts(o, ",\"p90\":");
        buf_double(o, s->p90);
        buf_puts(o, ",\"p95\":");
        buf_double(o, s->p95);
        buf_puts(o, ",\"p99\":");
        buf_double(o, s->p99);
        buf_puts(o, "},\"histogram\":[");
        double width = (double)(s->max - s->min) / s->n_buckets;
        for (int i = 0; i < s->n_buckets; i++) {
            double lower = (double)s->min + width * i;
            double upper = i == s->n_buckets - 1 ? (double)s->max : (double)s->min + width * (i + 1);
            buf_puts(o, i ? ",{\"lower\":" : "{\"lower\":");
            buf_double(o, lower);
            buf_puts(o, ",\"upper\":");
            buf_double(o, upper);
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

static q_status_t stats_on(PGconn *c, void *arg)
{
    stats_args_t *a = arg;
    return views_window_stats(c, a->gen, a->day, &a->stats);
}

int api_stats(app_t *app, const route_t *rt, http_req_t *req)
{
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    int64_t day;
    if ((rc = api_param_window(req, &b, &day))) {
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
        req->last_modified_ms = s.refreshed ? s.refreshed_ms : 0;
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
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    bool bad = false;
    uint64_t limit = 25;
    const char *lim = http_param(req, "limit", &bad);
    const char *cur = http_param(req, "cursor", &bad);
    cursor_t cursor;
    const char *secret = app->cfg->cursor_secret;
    if (bad || (lim && (!param_parse_uint(lim, 1000, &limit) || limit < 1))) {
        board_clear(&b);
        return http_bad_param(req, lim ? "limit" : "cursor");
    }
    if (cur && (!cursor_decode(cur, secret, strlen(secret), &cursor) || cursor.kind != CURSOR_WINDOWS ||
                cursor.gen != b.gen || cursor.backward)) {
        board_clear(&b);
        return http_bad_param(req, "cursor");
    }
    /* Windows run from the current one back to the one the board was created in, newest first. */
    int64_t first = window_start_day(b.reset, b.created_ms);
    int64_t day = cur ? window_prev_day(b.reset, cursor.pos.sort_key) : window_start_day(b.reset, req->received_ms);
    if (b.reset == RESET_NONE && cur)
        day = first - 1;
    int64_t days[WINDOWS_MAX];
    size_t n = 0;
    while (n < limit && day >= first) {
        days[n++] = day;
        if (b.reset == RESET_NONE)
            break;
        day = window_prev_day(b.reset, day);
    }
    bool more = n > 0 && b.reset != RESET_NONE && window_prev_day(b.reset, days[n - 1]) >= first;

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
