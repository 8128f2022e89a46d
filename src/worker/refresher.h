/*
 * worker/refresher.h — the periodic maintenance thread of `rankd serve`.
 *
 * Of several instances, only the upkeep leader runs the jobs (a PostgreSQL advisory lock held by
 * a session of its own; another instance takes over within about a second of its death). When
 * it begins leading and every refresh.interval_s it refreshes the materialized views when what
 * they are computed from changed since its last refresh (upkeep_write_mark; a `rankd refresh`
 * from cron running meanwhile is kept apart by an advisory lock), creates the submission
 * log's monthly partitions ahead, forgets idempotency keys older than
 * 25 hours, removes the Redis keys of windows older than the previous one, archives closed
 * windows and applies retention (upkeep.h). At each board's reset instant it warms the new
 * window (Redis, and every instance's response cache), and archives the one that closed a few
 * seconds later, once what was received before the reset has committed. Each second the leader
 * re-cuts the PostgreSQL rank buckets that drifted from their size (upkeep_recut) and removes
 * what deleted boards left, their log rows included (store/purge.h).
 * Every instance reads the list of every board each refresh.interval_s (and at a reset) and hands it
 * to the board catalog, so that board reads go on while PostgreSQL is down (cache/board_catalog.h).
 * It sleeps on a condition variable, so stopping is immediate.
 */
#ifndef RANKD_WORKER_REFRESHER_H
#define RANKD_WORKER_REFRESHER_H

#include "cache/board_catalog.h"
#include "config/config.h"
#include "store/pg_pool.h"
#include "store/redis.h"
#include "worker/rebuilder.h"
#include "util/must_use.h"

typedef struct refresher refresher_t;

typedef struct {
    pg_pool_t *primary;
    redis_pool_t *redis;          /* NULL without Redis */
    const rankd_config_t *cfg;    /* interval, retention, the primary's conninfo for the lead session */
    rebuilder_t *rebuilder;       /* loads a window that just began into Redis (NULL: none) */
    /* Render board `board`'s top page into this instance's response cache (NULL: none). */
    void (*warm)(void *arg, const char *board, int64_t now_ms);
    void *warm_arg;
    board_catalog_t *catalog;     /* given every board list read (NULL: none) */
} refresher_opts_t;

/* Start the thread; NULL when refresh.interval_s is 0 (this instance never leads) or the thread
 * cannot start. */
MUST_USE refresher_t *refresher_start(const refresher_opts_t *opts);
/* Whether this instance leads the upkeep jobs now (false for NULL). */
bool refresher_leads(const refresher_t *r);

/* The upkeep jobs. Each runs and is timed on its own, on a connection of its own: one that fails
 * (a view refresh past its timeout, a lock it cannot get) leaves the others running. */
typedef enum {
    UPKEEP_PARTITIONS,  /* the log's monthly partitions made ahead */
    UPKEEP_VIEWS,       /* the statistics views and daily activity */
    UPKEEP_KEYS,        /* idempotency keys past their 24 hours */
    UPKEEP_LOG_PURGE,   /* deleted boards' log rows, each second while any is left */
    UPKEEP_ARCHIVE,     /* closed windows archived (at the reset's grace, and any missed) */
    UPKEEP_RETENTION,   /* windows, archives and log months past retention */
    UPKEEP_RECUT,       /* rank buckets split and merged, each second */
    UPKEEP_ROLLOVER,    /* a reset: the new window loaded, the closed one's archive scheduled */
    UPKEEP_REDIS_SWEEP, /* Redis keys of windows older than the previous one */
    UPKEEP_BOARD_PURGE, /* the rows and Redis keys of deleted boards, each second while any is left */
    UPKEEP_REDIS_AUDIT, /* each hot window's Redis mark against PostgreSQL's number */
    UPKEEP_LOG_INDEX,   /* the log's finished months indexed by player */
    UPKEEP_ANALYZE,     /* statistics of the hot tables, each second while half a table changed since */
    UPKEEP_EVENTS,      /* end-of-window events delivered or failed more than events.keep_days ago */
    UPKEEP_JOBS
} upkeep_job_t;

/* The job's name in metrics and logs ("partitions", "views", ...). */
const char *refresher_job_name(upkeep_job_t job);

typedef struct {
    unsigned long long ok, failed; /* runs by outcome */
    unsigned long long refused;    /* runs a destructive job refused: the clocks disagreed */
    int64_t last_success_ms;       /* wall clock of the last run that succeeded; 0 never */
    int64_t last_ms;               /* how long the last run took */
} upkeep_job_stats_t;

typedef struct {
    unsigned long long unchanged_rounds;   /* rounds that found nothing written and left the views alone */
    unsigned long long rollovers;          /* board windows this instance saw begin */
    unsigned long long archived;           /* windows this instance archived */
    long long last_archive_ms;             /* how long the last of them took */
    unsigned long long partitions_dropped; /* archive and log partitions retention dropped */
    unsigned long long rank_bucket_recuts; /* rank bucket splits and merges (upkeep_recut) */
    upkeep_job_stats_t jobs[UPKEEP_JOBS];
    unsigned long long redis_audit_lost;   /* hot windows the Redis audit found to miss changes */
    int64_t clock_skew_ms;                 /* this host's clock less PostgreSQL's, as last measured
                                            * before archiving or retention */
    int log_months_ahead;                  /* months of log partitions after the current one (-1:
                                            * the current one is missing; -2: not looked at yet) */
    int64_t purge_rows_left;               /* standings of deleted boards still to remove (-1: not
                                            * the leader, or not looked at yet) */
    int64_t purge_log_left;                /* their log rows still to remove (-1: as above) */
} refresher_stats_t;
/* What the thread did so far (zeros for NULL). */
void refresher_stats(refresher_t *r, refresher_stats_t *out);
void refresher_stop(refresher_t *r);

#endif
