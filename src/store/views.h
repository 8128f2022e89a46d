/*
 * store/views.h — the materialized views (statistics, histograms, daily
 * activity): refreshing them and reading a window's statistics.
 *
 * A refresh recomputes whole views, never one board, CONCURRENTLY so that
 * readers are never blocked. Refreshers on any instance or cron take one
 * session advisory lock without waiting: a second one skips and says so.
 */
#ifndef RANKD_STORE_VIEWS_H
#define RANKD_STORE_VIEWS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/queries.h"
#include "util/must_use.h"

#define VIEWS_MAX 3

typedef struct {
    const char *view;  /* static name */
    int64_t rows;
    int64_t ms;
    bool skipped;      /* refreshed recently enough (if_older_than) */
    bool failed;       /* its refresh failed (logged) */
} view_refresh_t;

typedef enum { VIEWS_DONE = 0, VIEWS_BUSY = 1, VIEWS_FAILED = -1 } views_status_t;

/* True when `name` is one of the views. */
bool views_known(const char *name);

/* What views_refresh does. */
typedef struct {
    const char *only;        /* one view, or NULL for every view */
    int64_t if_older_than_s; /* skip a view refreshed less than this long ago (0: refresh always) */
    int timeout_s;           /* each view's own statement timeout (refresh.timeout_s) */
    int64_t now_ms;          /* rankd's clock: daily_activity counts again the days since its last
                              * refresh, from `now_ms - grace_ms` at the latest */
    int64_t grace_ms;        /* how long a received submission may take to commit (window_archive_grace_ms) */
    bool (*stopped)(void *arg); /* when not NULL and true, no further view is begun (a shutdown) */
    void *stopped_arg;
} views_refresh_opts_t;

/*
 * Refresh every view (or only `o->only`). Each view's refresh may take up to `o->timeout_s`
 * seconds, not the connection's statement timeout: over ten million players it takes longer
 * than a read may. A view that fails does not keep the others from their refresh (the result is
 * then VIEWS_FAILED, and out[i].failed says which). Fills out[0..*n).
 */
MUST_USE views_status_t views_refresh(PGconn *c, const views_refresh_opts_t *o, view_refresh_t *out, size_t *n);

typedef struct {
    int64_t players;
    int64_t submissions;
    bool has_values;           /* false for an empty window: statistics are null */
    int64_t min, max;
    double mean, stddev;
    double p50, p90, p95, p99;
    int64_t buckets[20];       /* players per bucket (1-based bucket i at [i-1]) */
    int n_buckets;             /* 20, 1 when min == max, 0 when empty */
    bool refreshed;            /* the view was ever refreshed */
    int64_t refreshed_ms;
} window_stats_t;

/* Accepted submissions and distinct players of one UTC day (daily_activity). */
typedef struct {
    int64_t day;
    int64_t submissions;
    int64_t players;
} day_activity_t;

/*
 * A board's days from `from` to `to` (days since epoch, inclusive) that had submissions, oldest
 * first, as of the last refresh of daily_activity: `*rows` (caller frees) and `*n`; `*refreshed`
 * and `*refreshed_ms` say when that refresh was.
 */
MUST_USE q_status_t views_activity(PGconn *c, int64_t gen, int64_t from, int64_t to, day_activity_t **rows, size_t *n,
                          bool *refreshed, int64_t *refreshed_ms);

/* Statistics of one window as of the last refresh. */
MUST_USE q_status_t views_window_stats(PGconn *c, int64_t gen, int64_t day, window_stats_t *out);

/* How long ago each view was refreshed (those refreshed at least once), by name. */
typedef struct {
    char view[32];
    double age_s;
} view_age_t;
MUST_USE q_status_t views_ages(PGconn *c, view_age_t *out, size_t max, size_t *n);

#endif
