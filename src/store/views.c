/* store/views.c — refreshing the materialized views and reading window statistics. */
#include "store/pg_error.h"
#include "store/views.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/window.h"
#include "obs/log.h"
#include "store/pg_deadline.h"
#include "util/alloc.h"

#define REFRESH_LOCK 0x72656672 /* "refr" */

static const char *const views[VIEWS_MAX] = {"window_stats", "window_histograms", "daily_activity"};

bool views_known(const char *name)
{
    for (int i = 0; i < VIEWS_MAX; i++)
        if (strcmp(views[i], name) == 0)
            return true;
    return false;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool exec_ok(PGconn *c, const char *sql, int n, const char *const *params, PGresult **keep)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    bool ok = pg_ok(r);
    char pe[PG_ERROR_MAX];
    if (!ok)
        log_error(NULL, "views: %s", pg_error_text(c, r, pe, sizeof pe));
    if (keep && ok)
        *keep = r;
    else
        PQclear(r);
    return ok;
}

/* Seconds since `view` was last refreshed; -1 when never. */
static int64_t age_s(PGconn *c, const char *view)
{
    const char *p[] = {view};
    PGresult *r = NULL;
    int64_t age = -1;
    if (exec_ok(c, "SELECT extract(epoch FROM now() - refreshed_at)::bigint FROM view_refreshes WHERE view = $1", 1, p,
                &r)) {
        if (PQntuples(r) == 1)
            age = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    return age;
}

/* One view's refresh in a transaction of its own whose statement timeout is `o->timeout_s`:
 * REFRESH for the materialized views, the days that changed for daily_activity (a table,
 * migrations/0012_activity_days.sql). */
static bool refresh_one(PGconn *c, const char *view, const views_refresh_opts_t *o)
{
    char sql[320];
    if (strcmp(view, "daily_activity") == 0)
        snprintf(sql, sizeof sql,
                 "BEGIN; SET LOCAL statement_timeout = %lld;"
                 " SELECT rankd_refresh_activity(timestamptz 'epoch' + %" PRId64 " * interval '1 millisecond',"
                 " %" PRId64 " * interval '1 millisecond'); COMMIT",
                 (long long)o->timeout_s * 1000, o->now_ms, o->grace_ms);
    else
        snprintf(sql, sizeof sql, "BEGIN; SET LOCAL statement_timeout = %lld; REFRESH MATERIALIZED VIEW CONCURRENTLY %s; COMMIT",
                 (long long)o->timeout_s * 1000, view);
    PGresult *r = PQexec(c, sql);
    bool ok = pg_ok(r);
    if (!ok) {
        char pe[PG_ERROR_MAX];
        log_error(NULL, "views: refreshing %s: %s", view, pg_error_text(c, r, pe, sizeof pe));
        PQclear(r);
        r = PQexec(c, "ROLLBACK"); /* the BEGIN stands when a later statement failed */
    }
    PQclear(r);
    return ok;
}

views_status_t views_refresh(PGconn *c, const views_refresh_opts_t *o, view_refresh_t *out, size_t *n)
{
    *n = 0;
    char lock[80];
    snprintf(lock, sizeof lock, "SELECT pg_try_advisory_lock(%d)", REFRESH_LOCK);
    PGresult *r = NULL;
    if (!exec_ok(c, lock, 0, NULL, &r))
        return VIEWS_FAILED;
    bool got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!got)
        return VIEWS_BUSY;
    views_status_t st = VIEWS_DONE;
    for (int i = 0; i < VIEWS_MAX && PQstatus(c) == CONNECTION_OK; i++) {
        if (o->only && strcmp(o->only, views[i]) != 0)
            continue;
        if (o->stopped && o->stopped(o->stopped_arg)) {
            st = VIEWS_FAILED;
            break;
        }
        view_refresh_t *v = &out[(*n)++];
        memset(v, 0, sizeof *v);
        v->view = views[i];
        if (o->if_older_than_s > 0) {
            int64_t age = age_s(c, views[i]);
            if (age >= 0 && age < o->if_older_than_s) {
                v->skipped = true;
                continue;
            }
        }
        int64_t t0 = mono_ms();
        snprintf(lock, sizeof lock, "SELECT count(*) FROM %s", views[i]);
        if (!refresh_one(c, views[i], o) || !exec_ok(c, lock, 0, NULL, &r)) {
            v->failed = true;
            st = VIEWS_FAILED;
            continue; /* the next view's refresh does not depend on this one */
        }
        v->rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        v->ms = mono_ms() - t0;
        char rows[24], ms[24];
        snprintf(rows, sizeof rows, "%" PRId64, v->rows);
        snprintf(ms, sizeof ms, "%" PRId64, v->ms);
        const char *p[] = {views[i], rows, ms};
        if (!exec_ok(c,
                     "INSERT INTO view_refreshes (view, refreshed_at, rows, ms, refreshed_by)"
                     " VALUES ($1, now(), $2, $3, current_setting('application_name'))"
                     " ON CONFLICT (view) DO UPDATE SET refreshed_at = now(), rows = $2, ms = $3,"
                     " refreshed_by = current_setting('application_name')",
                     3, p, NULL)) {
            v->failed = true;
            st = VIEWS_FAILED;
        }
    }
    if (PQstatus(c) != CONNECTION_OK)
        st = VIEWS_FAILED;
    bool any = false;
    for (size_t i = 0; i < *n; i++)
        any = any || (!out[i].failed && !out[i].skipped);
    /* A refresh is a write every board's statistics read: every instance hears of it ("V"), and
     * reads no replica that has not replayed it (worker/listener.c), so that refreshed_at never
     * goes backwards on an instance. */
    if (any && !exec_ok(c, "SELECT pg_notify('rankd_l1', 'V')", 0, NULL, NULL))
        log_warn(NULL, "views: the notice of a refresh failed");
    snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%d)", REFRESH_LOCK);
    exec_ok(c, lock, 0, NULL, NULL);
    return st;
}

q_status_t views_window_stats(PGconn *c, int64_t gen, int64_t day, window_stats_t *out)
{
    memset(out, 0, sizeof *out);
    char g[24], d[11];
    snprintf(g, sizeof g, "%" PRId64, gen);
    window_format_day(day, d);
    const char *p[] = {g, d};
    pg_deadline_arm_statement(c, 1);
    PGresult *r = PQexecParams(
        c,
        /* An archived window's statistics were computed when it was archived, final since. */
        "SELECT * FROM (SELECT (extract(epoch FROM a.archived_at) * 1000)::bigint, a.players, a.submissions, a.min_score,"
        " a.max_score, a.mean, a.stddev, a.percentiles[1], a.percentiles[2], a.percentiles[3], a.percentiles[4],"
        " (SELECT string_agg(i || ':' || n, ',') FROM unnest(a.histogram) WITH ORDINALITY u(n, i)), 1 AS pri"
        " FROM archived_windows a WHERE a.board_gen = $1 AND a.win = $2"
        " UNION ALL (SELECT (SELECT (extract(epoch FROM refreshed_at) * 1000)::bigint FROM view_refreshes"
        "   WHERE view = 'window_stats'),"
        " s.players, s.submissions, s.min_score, s.max_score, s.mean, s.stddev,"
        " s.percentiles[1], s.percentiles[2], s.percentiles[3], s.percentiles[4],"
        " (SELECT string_agg(bucket || ':' || players, ',') FROM window_histograms h"
        "   WHERE h.board_gen = $1 AND h.win = $2), 2"
        " FROM (SELECT 1) one LEFT JOIN window_stats s ON s.board_gen = $1 AND s.win = $2)) x ORDER BY pri LIMIT 1",
        2, NULL, p, NULL, NULL, 0);
    pg_deadline_disarm(c);
    if (!pg_ok(r))
        return q_failed(c, r, "window stats");
    out->refreshed = !PQgetisnull(r, 0, 0);
    out->refreshed_ms = out->refreshed ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    if (!PQgetisnull(r, 0, 1)) {
        out->players = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        out->submissions = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    }
    out->has_values = out->players > 0 && !PQgetisnull(r, 0, 3);
    if (out->has_values) {
        out->min = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        out->max = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
        out->mean = strtod(PQgetvalue(r, 0, 5), NULL);
        out->stddev = strtod(PQgetvalue(r, 0, 6), NULL);
        out->p50 = strtod(PQgetvalue(r, 0, 7), NULL);
        out->p90 = strtod(PQgetvalue(r, 0, 8), NULL);
        out->p95 = strtod(PQgetvalue(r, 0, 9), NULL);
        out->p99 = strtod(PQgetvalue(r, 0, 10), NULL);
        out->n_buckets = out->min == out->max ? 1 : 20;
        const char *h = PQgetisnull(r, 0, 11) ? "" : PQgetvalue(r, 0, 11);
        while (*h) {
            char *end;
            long bucket = strtol(h, &end, 10);
            long long count = *end == ':' ? strtoll(end + 1, &end, 10) : 0;
            if (bucket >= 1 && bucket <= out->n_buckets)
                out->buckets[bucket - 1] = count;
            if (*end != ',')
                break;
            h = end + 1;
        }
    }
    PQclear(r);
    return Q_OK;
}

q_status_t views_activity(PGconn *c, int64_t gen, int64_t from, int64_t to, day_activity_t **rows, size_t *n,
                          bool *refreshed, int64_t *refreshed_ms)
{
    char g[24], f[11], t[11];
    snprintf(g, sizeof g, "%" PRId64, gen);
    window_format_day(from, f);
    window_format_day(to, t);
    const char *p[] = {g, f, t};
    *rows = NULL;
    *n = 0;
    pg_deadline_arm_statement(c, 1);
    PGresult *r = PQexecParams(
        c,
        "SELECT 0, (extract(epoch FROM refreshed_at) * 1000)::bigint, 0, 0 FROM view_refreshes"
        " WHERE view = 'daily_activity'"
        " UNION ALL (SELECT 1, day - DATE '1970-01-01', submissions, players FROM daily_activity"
        "  WHERE board_gen = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day)",
        3, NULL, p, NULL, NULL, 0);
    pg_deadline_disarm(c);
    if (!pg_ok(r))
        return q_failed(c, r, "activity");
    *refreshed = false;
    *rows = xcalloc((size_t)PQntuples(r) + 1, sizeof **rows);
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t v = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        if (PQgetvalue(r, i, 0)[0] == '0') {
            *refreshed = true;
            *refreshed_ms = v;
            continue;
        }
        day_activity_t *d = &(*rows)[(*n)++];
        d->day = v;
        d->submissions = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        d->players = strtoll(PQgetvalue(r, i, 3), NULL, 10);
    }
    PQclear(r);
    return Q_OK;
}

q_status_t views_ages(PGconn *c, view_age_t *out, size_t max, size_t *n)
{
    *n = 0;
    pg_deadline_arm_statement(c, 1);
    PGresult *r = PQexec(c, "SELECT view, extract(epoch FROM now() - refreshed_at)::float8 FROM view_refreshes ORDER BY view");
    pg_deadline_disarm(c);
    if (!pg_ok(r))
        return q_failed(c, r, "view ages");
    for (int i = 0; i < PQntuples(r) && *n < max; i++) {
        if (!views_known(PQgetvalue(r, i, 0)))
            continue;
        snprintf(out[*n].view, sizeof out[*n].view, "%s", PQgetvalue(r, i, 0));
        out[*n].age_s = strtod(PQgetvalue(r, i, 1), NULL);
        (*n)++;
    }
    PQclear(r);
    return Q_OK;
}
