/*
 * worker/refresher.c — the upkeep of `rankd serve`: views, partitions, idempotency keys, archives,
 * retention and the resets of windows. The jobs that write run on one instance, the upkeep
 * leader; every instance warms its own response cache at a reset.
 *
 * Every instance's refresher tries each second to take a session advisory lock
 * (upkeep_try_lead) on a connection of its own to the primary. The one that holds it leads: it
 * runs the jobs at once and then every refresh.interval_s. The lock lives as long as that
 * session: when the leader dies (kill -9 included, the kernel closes its socket) or loses the
 * connection, PostgreSQL releases it and another instance takes over within about a second.
 * The others serve everything else as before.
 *
 * The thread also wakes at the next reset instant of any board (the wall clock of
 * util/clock.h, which tests move): the leader has the new window loaded into Redis (empty, so
 * its first reads are not cold) and archives the one that closed once submissions received
 * before the reset have had time to commit (archive_grace_ms); every instance renders the
 * board's top page into its response cache.
 */
#include "worker/refresher.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"
#include "store/purge.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "store/upkeep.h"
#include "store/views.h"
#include "core/window.h"
#include "util/alloc.h"
#include "util/clock.h"

/* A hot window's number in PostgreSQL (window_counts.seq) when the Redis audit last looked. */
typedef struct {
    int64_t gen, day, seq;
} audit_mark_t;

struct refresher {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stopping;
    refresher_opts_t o;
    PGconn *lead;             /* that session: holds the leader lock while this instance leads */
    PGcancel *refreshing;     /* under lock: cancels the long statement in progress (a view refresh,
                               * an archive; NULL: none), so that a stop does not wait for it */
    atomic_bool leading;
    char refreshed_mark[96];  /* upkeep_write_mark as of this leader's last view refresh; "" none */
    board_t *boards;          /* every board, as of boards_at (this thread's own) */
    size_t n_boards;
    int64_t boards_at;        /* monotonic ms of that list; -1 never */
    int64_t last_tick_ms;     /* wall clock of the last look at the resets */
    int64_t archive_at_ms;    /* wall clock when the windows a reset closed are archived; 0 none due */
    atomic_ullong unchanged;  /* rounds that found nothing written and left the views alone */
    atomic_ullong rollovers;  /* board windows this instance saw begin */
    atomic_ullong archived;   /* windows this instance archived */
    atomic_llong last_archive_ms; /* how long the last archive took to write */
    atomic_ullong dropped;    /* partitions (archives, log months) retention dropped */
    atomic_ullong recuts;     /* rank bucket splits and merges */
    atomic_int months_ahead;  /* log partitions after the current month (upkeep_partitions_ahead); -2 unknown */
    pthread_mutex_t jobs_lock; /* guards jobs[] */
    upkeep_job_stats_t jobs[UPKEEP_JOBS];
    audit_mark_t *audited;    /* each hot window's number in PostgreSQL at the last audit, sorted */
    size_t n_audited;
    atomic_ullong audit_lost; /* windows the audit found to miss changes, marked cold */
    atomic_llong skew_ms;     /* this host's clock less PostgreSQL's, last measured */
    purge_state_t purge;      /* the purge's paces and where it was left (this thread's own) */
    atomic_llong purge_rows_left; /* standings of deleted boards still to remove; -1 not looked at */
    atomic_llong purge_log_left;  /* their log rows still to remove; -1 not looked at */
};

/* How often a follower tries to become the leader (and a leader checks its session). */
#define ELECTION_TICK_MS 1000

/* Idempotency keys and standings rows deleted per statement. */
#define DELETE_BATCH 5000

static bool stopping(refresher_t *r)
{
    pthread_mutex_lock(&r->lock);
    bool s = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return s;
}

static bool stopping_arg(void *r)
{
    return stopping(r);
}

/* A long statement begins on `c` (a view refresh, an archive): a stop cancels it rather than
 * waits. False when the refresher is stopping already (do not begin). */
static bool cancellable_begin(refresher_t *r, PGconn *c)
{
    pthread_mutex_lock(&r->lock);
    r->refreshing = r->stopping ? NULL : PQgetCancel(c);
    bool go = !r->stopping;
    pthread_mutex_unlock(&r->lock);
    return go;
}

static void cancellable_end(refresher_t *r)
{
    pthread_mutex_lock(&r->lock);
    PQfreeCancel(r->refreshing);
    r->refreshing = NULL;
    pthread_mutex_unlock(&r->lock);
}

/* The test clock moved: look at the resets again now rather than at the next tick. */
static void clock_moved(void *arg)
{
    refresher_t *r = arg;
    pthread_mutex_lock(&r->lock);
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

/* ---------------------------------------------------------------- jobs */

static const char *const job_names[UPKEEP_JOBS] = {
    [UPKEEP_PARTITIONS] = "partitions", [UPKEEP_VIEWS] = "views",         [UPKEEP_KEYS] = "idempotency_keys",
    [UPKEEP_LOG_PURGE] = "log_purge",   [UPKEEP_ARCHIVE] = "archive",     [UPKEEP_RETENTION] = "retention",
    [UPKEEP_RECUT] = "recut",           [UPKEEP_ROLLOVER] = "rollover",   [UPKEEP_REDIS_SWEEP] = "redis_sweep",
    [UPKEEP_BOARD_PURGE] = "board_purge", [UPKEEP_REDIS_AUDIT] = "redis_audit", [UPKEEP_LOG_INDEX] = "log_index",
    [UPKEEP_ANALYZE] = "analyze", [UPKEEP_EVENTS] = "events",
};

const char *refresher_job_name(upkeep_job_t job)
{
    return job < UPKEEP_JOBS ? job_names[job] : "unknown";
}

typedef enum { JOB_OK, JOB_FAILED, JOB_REFUSED } job_outcome_t;

/* Count one run of `job`, begun at monotonic `began_ms`. A failure is logged here, once (a
 * refusal where it was decided). */
static void job_done(refresher_t *r, upkeep_job_t job, job_outcome_t out, int64_t began_ms)
{
    pthread_mutex_lock(&r->jobs_lock);
    upkeep_job_stats_t *s = &r->jobs[job];
    if (out == JOB_OK) {
        s->ok++;
        s->last_success_ms = clock_wall_ms();
    } else if (out == JOB_REFUSED) {
        s->refused++;
    } else {
        s->failed++;
    }
    s->last_ms = clock_mono_ms() - began_ms;
    pthread_mutex_unlock(&r->jobs_lock);
    if (out == JOB_FAILED)
        log_warn(NULL, "upkeep job %s failed; the other jobs go on, and it runs again next round", job_names[job]);
}

/* A job's work on `c`, a connection to the primary of its own: true when it was done. */
typedef bool (*job_fn)(refresher_t *r, PGconn *c, int64_t now_ms);

/*
 * Whether this host's clock agrees with PostgreSQL's within retention.max_clock_skew_ms. The jobs
 * that delete or close for good (archiving closes a window; retention deletes standings, archives
 * and log months) go by the leader's clock alone: one running ahead would archive a live window
 * or delete what retention still keeps. They refuse while it is off, logged and counted.
 */
static bool clock_agrees(refresher_t *r, PGconn *c, upkeep_job_t job, int64_t now_ms)
{
    int max = r->o.cfg->retention_max_clock_skew_ms;
    if (max <= 0)
        return true;
    /* The job acts as of `now_ms`, read when the round began: a clock set back since (right
     * again after running ahead) agrees with PostgreSQL now, but that instant is still ahead. */
    int64_t stale = now_ms - clock_wall_ms();
    if (stale > max) {
        log_warn(NULL, "upkeep job %s refused: the clock went back by %lld ms since its round began; it runs next round",
                 job_names[job], (long long)stale);
        return false;
    }
    int64_t before = clock_mono_ms(), db_ms = 0;
    if (upkeep_db_clock_ms(c, &db_ms) != Q_OK)
        return false;
    /* PostgreSQL read its clock about halfway through the round trip. */
    int64_t ours = clock_wall_ms() - clock_test_offset_ms() - (clock_mono_ms() - before) / 2;
    int64_t skew = ours - db_ms;
    atomic_store(&r->skew_ms, skew);
    if (skew <= max && skew >= -max)
        return true;
    log_warn(NULL, "upkeep job %s refused: this host's clock is %lld ms %s PostgreSQL's (retention.max_clock_skew_ms"
                   " is %d); fix the clock (NTP)", job_names[job], (long long)(skew < 0 ? -skew : skew),
             skew > 0 ? "ahead of" : "behind", max);
    return false;
}

/* Run one job on a connection of its own and count it. A `guarded` job closes or deletes for
 * good, and runs only while clock_agrees. A failed job's connection is closed (its session may be
 * mid-transaction or without its timeout); the next job takes another. */
static bool run_job(refresher_t *r, upkeep_job_t job, job_fn fn, int64_t now_ms, bool guarded)
{
    int64_t began = clock_mono_ms();
    PGconn *c = pg_pool_acquire(r->o.primary, 5000);
    job_outcome_t out = JOB_FAILED;
    if (c && guarded && !clock_agrees(r, c, job, now_ms))
        out = PQstatus(c) == CONNECTION_OK ? JOB_REFUSED : JOB_FAILED;
    else if (c && fn(r, c, now_ms))
        out = JOB_OK;
    if (c)
        pg_pool_release(r->o.primary, c, out == JOB_FAILED);
    job_done(r, job, out, began);
    return out == JOB_OK;
}

/* Redis holds each board's current and previous window: the keys of older ones go. */
static void forget_cold_windows(refresher_t *r, int64_t now_ms)
{
    if (!r->o.redis)
        return;
    int64_t began = clock_mono_ms();
    /* A clock running ahead would take the live windows for old ones: as archive and retention,
     * no sweep while the last measure of it (clock_agrees) was off. */
    int max = r->o.cfg->retention_max_clock_skew_ms;
    int64_t skew = atomic_load(&r->skew_ms);
    if (max > 0 && (skew > max || skew < -max)) {
        job_done(r, UPKEEP_REDIS_SWEEP, JOB_REFUSED, began);
        return;
    }
    redis_conn_t *rc = redis_acquire(r->o.redis);
    if (!rc) {
        job_done(r, UPKEEP_REDIS_SWEEP, JOB_FAILED, began);
        return;
    }
    long deleted = 0;
    rb_status_t rs = rb_forget_cold_windows(rc, r->boards, r->n_boards, now_ms, &deleted);
    redis_release(r->o.redis, rc, rs == RB_DOWN); /* RB_AGAIN: the next round */
    job_done(r, UPKEEP_REDIS_SWEEP, rs == RB_OK ? JOB_OK : JOB_FAILED, began);
    if (deleted > 0)
        log_info(NULL, "removed %ld Redis keys of windows older than the previous one", deleted);
}

/* Read every board again (the list resets and retention work from); false when it failed. */
static bool load_boards(refresher_t *r)
{
    PGconn *c = pg_pool_acquire(r->o.primary, 5000);
    if (!c)
        return false;
    board_t *boards = NULL;
    size_t n = 0;
    int64_t begun_ms = clock_mono_ms();
    q_status_t st = q_board_list(c, NULL, 1000000, &boards, &n);
    pg_pool_release(r->o.primary, c, st == Q_UNAVAILABLE);
    if (st != Q_OK)
        return false;
    if (r->o.catalog) /* every instance's reads go on from it while PostgreSQL is down */
        board_catalog_install(r->o.catalog, boards, n, begun_ms);
    for (size_t i = 0; i < r->n_boards; i++)
        board_clear(&r->boards[i]);
    free(r->boards);
    r->boards = boards;
    r->n_boards = n;
    r->boards_at = clock_mono_ms();
    return true;
}

/* The first reset instant of any board after `now_ms` (INT64_MAX when none resets). */
static int64_t next_reset_ms(const refresher_t *r, int64_t now_ms)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < r->n_boards; i++) {
        if (r->boards[i].reset == RESET_NONE)
            continue;
        window_rule_t rule = board_window_rule(&r->boards[i]);
        int64_t at = window_next_day(rule, window_start_day(rule, now_ms)) * MS_PER_DAY;
        if (at < next)
            next = at;
    }
    return next;
}

/* The board of generation `gen` in the list, or NULL. */
static const board_t *board_of(const refresher_t *r, int64_t gen)
{
    for (size_t i = 0; i < r->n_boards; i++)
        if (r->boards[i].gen == gen)
            return &r->boards[i];
    return NULL;
}

/*
 * How long after a reset the window it closed is archived. A submission belongs to the window of
 * the instant it was received, and commits later: it waits in the writer's queue, its batch may
 * be retried, and the instance that received it may run a little behind on the clock. Archiving
 * only after twice the statement timeout and five seconds more leaves every such submission
 * time to land in the standings the archive is copied from.
 */
static int64_t archive_grace_ms(const refresher_t *r)
{
    return window_archive_grace_ms(r->o.cfg->pg_statement_timeout_ms);
}

/* Archive every window closed for longer than the grace that has no archive yet (the one a
 * reset closed, or any a leader missed); false when PostgreSQL failed. */
static bool archive_closed(refresher_t *r, PGconn *c, int64_t now_ms)
{
    upkeep_window_t *todo = NULL;
    size_t n = 0;
    if (upkeep_unarchived(c, now_ms - archive_grace_ms(r), &todo, &n) != Q_OK)
        return false;
    bool ok = true;
    for (size_t i = 0; i < n && ok && !stopping(r); i++) {
        const board_t *b = board_of(r, todo[i].gen);
        if (!b || todo[i].day < window_first_kept(board_window_rule(b), b->created_ms,
                                                  config_retention_windows(r->o.cfg, b->id), now_ms))
            continue; /* past retention already (or a board this list does not know yet): never archived */
        int64_t rows = 0, ms = 0;
        /* Paced (migrations/0016_archive_pacing.sql): a big window's takes a while. */
        if (!cancellable_begin(r, c))
            break;
        ok = upkeep_archive_window(c, todo[i].gen, todo[i].day, r->o.cfg->events_standings_limit, &rows, &ms) ==
             Q_OK;
        cancellable_end(r);
        if (ok && rows >= 0) {
            char d[11];
            window_format_day(todo[i].day, d);
            log_info(NULL, "archived window %s of board generation %lld: %lld players in %lld ms", d,
                     (long long)todo[i].gen, (long long)rows, (long long)ms);
            atomic_fetch_add(&r->archived, 1);
            atomic_store(&r->last_archive_ms, ms);
        }
    }
    free(todo);
    return ok;
}

/* Retention and the cleanup of what archives replaced; false when PostgreSQL failed. */
static bool retire(refresher_t *r, PGconn *c, int64_t now_ms)
{
    const rankd_config_t *cfg = r->o.cfg;
    upkeep_board_t *ub = xcalloc(r->n_boards ? r->n_boards : 1, sizeof *ub);
    size_t n = 0;
    for (size_t i = 0; i < r->n_boards; i++) {
        const board_t *b = &r->boards[i];
        if (b->reset == RESET_NONE)
            continue;
        int64_t cur = window_start_day(board_window_rule(b), now_ms);
        ub[n++] = (upkeep_board_t){b->gen, window_prev_day(board_window_rule(b), cur),
                                   window_first_kept(board_window_rule(b), b->created_ms, config_retention_windows(cfg, b->id),
                                                     now_ms)};
    }
    upkeep_retired_t done;
    /* A read of a closed window that found no archive reads standings next, within its
     * statement timeout: rows go only after twice that since the archive was written. */
    int64_t guard_ms = 2 * (int64_t)cfg->pg_statement_timeout_ms + 1000;
    bool ok = upkeep_retire(c, ub, n, guard_ms, DELETE_BATCH, &done) == Q_OK;
    free(ub);
    if (ok && (done.windows_expired || done.standings_deleted || done.windows_retired))
        log_info(NULL, "retention: %ld archived windows expired; %ld standings of archived windows deleted, %ld windows retired",
                 done.windows_expired, done.standings_deleted, done.windows_retired);
    bool entrants_gone = false; /* what is left goes at the next round */
    ok = ok && upkeep_drop_old_entrants(c, now_ms, DELETE_BATCH, 200, &entrants_gone) == Q_OK;
    long dropped = 0;
    ok = ok && upkeep_drop_orphans(c, &dropped) == Q_OK;
    atomic_fetch_add(&r->dropped, (unsigned long long)dropped);
    if (ok && cfg->retention_log_months > 0) {
        /* Keep the month of now_ms and the retention_log_months - 1 before it. */
        int64_t y;
        unsigned m, d;
        window_civil_from_days(window_start_day(WINDOW_RULE(RESET_MONTHLY), now_ms), &y, &m, &d);
        int64_t months = y * 12 + (m - 1) - (cfg->retention_log_months - 1);
        int64_t before = window_days_from_civil(months / 12, (unsigned)(months % 12) + 1, 1) * MS_PER_DAY;
        long log_dropped = 0;
        ok = upkeep_drop_log_months(c, before, &log_dropped) == Q_OK;
        atomic_fetch_add(&r->dropped, (unsigned long long)log_dropped);
        dropped += log_dropped;
    }
    if (dropped > 0)
        log_info(NULL, "retention: dropped %ld partitions", dropped);
    return ok;
}

/* Forget idempotency keys past their 24 hours, a batch per statement. */
static bool forget_old_keys(refresher_t *r, PGconn *c, int64_t now_ms)
{
    (void)now_ms;
    for (int step = 0; step < 100 && !stopping(r); step++) {
        long done = 0;
        if (upkeep_forget_old_keys(c, DELETE_BATCH, &done) != Q_OK)
            return false;
        if (done < DELETE_BATCH)
            break;
    }
    return true;
}

/* Drop the end-of-window events delivered or given up on more than events.keep_days ago (their
 * creation is the clock: a failed one is given up on a day after it), a batch per statement. */
static bool expire_events(refresher_t *r, PGconn *c, int64_t now_ms)
{
    int64_t before = now_ms - (int64_t)r->o.cfg->events_keep_days * 86400000;
    long total = 0;
    for (int step = 0; step < 100 && !stopping(r); step++) {
        long done = 0;
        if (upkeep_expire_events(c, before, DELETE_BATCH, &done) != Q_OK)
            return false;
        total += done;
        if (done < DELETE_BATCH)
            break;
    }
    if (total > 0)
        log_info(NULL, "dropped %ld end-of-window events past events.keep_days", total);
    return true;
}

/* The log's months ahead: three made ahead, and the gauge of how many exist. */
static bool make_partitions(refresher_t *r, PGconn *c, int64_t now_ms)
{
    int ahead = -2;
    bool made = upkeep_ensure_partitions(c, now_ms, 3) == Q_OK;
    /* Counted even when making them failed: that is when the gauge must fall. */
    bool counted = upkeep_partitions_ahead(c, now_ms, &ahead) == Q_OK;
    if (counted)
        atomic_store(&r->months_ahead, ahead);
    return made && counted;
}

/* The views, refreshed only when what they are computed from changed since this leader last
 * refreshed them (the mark is read first: a write during the refresh counts next time). */
static bool refresh_views(refresher_t *r, PGconn *c, int64_t now_ms)
{
    char mark[96] = "";
    bool marked = upkeep_write_mark(c, mark, sizeof mark) == Q_OK;
    if (marked && r->refreshed_mark[0] && strcmp(mark, r->refreshed_mark) == 0) {
        atomic_fetch_add(&r->unchanged, 1);
        return true;
    }
    view_refresh_t done[VIEWS_MAX];
    size_t n = 0;
    bool stop = !cancellable_begin(r, c);
    const views_refresh_opts_t o = {.timeout_s = r->o.cfg->refresh_timeout_s, .now_ms = now_ms,
                                    .grace_ms = archive_grace_ms(r), .stopped = stopping_arg, .stopped_arg = r};
    views_status_t st = stop ? VIEWS_BUSY : views_refresh(c, &o, done, &n);
    cancellable_end(r);
    for (size_t i = 0; i < n; i++)
        if (!done[i].failed && !done[i].skipped)
            log_info(NULL, "refreshed view %s: %lld rows in %lld ms", done[i].view, (long long)done[i].rows,
                     (long long)done[i].ms);
    if (st == VIEWS_DONE && marked)
        snprintf(r->refreshed_mark, sizeof r->refreshed_mark, "%s", mark);
    return st != VIEWS_FAILED && marked;
}

static int audit_cmp(const void *a, const void *b)
{
    const audit_mark_t *x = a, *y = b;
    if (x->gen != y->gen)
        return x->gen < y->gen ? -1 : 1;
    return (x->day > y->day) - (x->day < y->day);
}

/*
 * The backstop of Redis's trust (worker/rebuilder.c checks a window when an instance first reads
 * it): every hot window's mark in Redis against its number in PostgreSQL, Redis read first. A
 * mark still behind the number PostgreSQL had at the previous audit, a whole round ago, missed a
 * change for good (its writer died between the commit and the update, or Redis lost it without
 * any instance seeing an outage); a mark ahead of PostgreSQL's number means PostgreSQL lost
 * commits (a failover). Either way the window is marked cold for every instance and rebuilt at
 * its next read.
 */
static bool audit_redis(refresher_t *r, PGconn *c, int64_t now_ms)
{
    if (!r->o.redis)
        return true;
    size_t cap = 2 * r->n_boards + 1, n = 0;
    audit_mark_t *now = xcalloc(cap, sizeof *now);
    int64_t *gens = xcalloc(cap, sizeof *gens), *days = xcalloc(cap, sizeof *days);
    int64_t *in_redis = xcalloc(cap, sizeof *in_redis), *in_pg = xcalloc(cap, sizeof *in_pg);
    bool *ready = xcalloc(cap, sizeof *ready);
    for (size_t i = 0; i < r->n_boards; i++) {
        const board_t *b = &r->boards[i];
        int64_t cur = window_start_day(board_window_rule(b), now_ms);
        gens[n] = b->gen, days[n++] = cur;
        if (b->reset != RESET_NONE)
            gens[n] = b->gen, days[n++] = window_prev_day(board_window_rule(b), cur);
    }
    redis_conn_t *rc = redis_acquire(r->o.redis);
    rb_status_t rs = rc ? RB_OK : RB_DOWN;
    for (size_t i = 0; i < n && rs == RB_OK; i++)
        rs = rb_window_mark(rc, gens[i], days[i], &ready[i], &in_redis[i]);
    bool ok = rs == RB_OK && q_window_seqs(c, gens, days, n, in_pg) == Q_OK;
    for (size_t i = 0; ok && i < n; i++) {
        now[i] = (audit_mark_t){gens[i], days[i], in_pg[i]};
        if (!ready[i])
            continue;
        audit_mark_t key = {gens[i], days[i], 0};
        const audit_mark_t *before =
            r->audited ? bsearch(&key, r->audited, r->n_audited, sizeof *r->audited, audit_cmp) : NULL;
        if (in_redis[i] <= in_pg[i] && !(before && in_redis[i] < before->seq))
            continue;
        log_warn(NULL, "redis audit: board generation %lld window %lld: redis applied changes up to %lld, postgres has %lld"
                       "%s; marked cold", (long long)gens[i], (long long)days[i], (long long)in_redis[i],
                 (long long)in_pg[i], in_redis[i] > in_pg[i] ? " (postgres lost commits)" : " (a change never reached it)");
        rs = rb_forget_window(rc, gens[i], days[i]);
        ok = rs == RB_OK;
        redis_window_distrust(r->o.redis, gens[i], days[i]);
        atomic_fetch_add(&r->audit_lost, 1);
    }
    if (rc)
        redis_release(r->o.redis, rc, rs == RB_DOWN);
    if (ok) {
        qsort(now, n, sizeof *now, audit_cmp);
        free(r->audited);
        r->audited = now;
        r->n_audited = n;
        now = NULL;
    }
    free(now);
    free(gens);
    free(days);
    free(in_redis);
    free(in_pg);
    free(ready);
    return ok;
}

/* Parts of the log's finished months indexed by player per round (each a CREATE INDEX
 * CONCURRENTLY over a 32nd of a month). */
#define LOG_INDEX_PARTS 8

static bool index_log(refresher_t *r, PGconn *c, int64_t now_ms)
{
    long made = 0;
    bool ok = upkeep_index_log_months(c, now_ms, LOG_INDEX_PARTS, &made) == Q_OK;
    if (made > 0)
        log_info(NULL, "indexed %ld part(s) of the log's finished months by player", made);
    (void)r;
    return ok;
}

/* Every periodic job, each on its own: a failure of one (counted, logged) stops none of the
 * others. The partitions come first: without next month's, every write fails. */
static void maintain(refresher_t *r, int64_t now_ms)
{
    run_job(r, UPKEEP_PARTITIONS, make_partitions, now_ms, false);
    run_job(r, UPKEEP_VIEWS, refresh_views, now_ms, false);
    run_job(r, UPKEEP_KEYS, forget_old_keys, now_ms, false);
    run_job(r, UPKEEP_ARCHIVE, archive_closed, now_ms, true);
    run_job(r, UPKEEP_RETENTION, retire, now_ms, true);
    run_job(r, UPKEEP_EVENTS, expire_events, now_ms, true);
    run_job(r, UPKEEP_REDIS_AUDIT, audit_redis, now_ms, false);
    run_job(r, UPKEEP_LOG_INDEX, index_log, now_ms, false);
    forget_cold_windows(r, now_ms);
}

/* Statistics where a table outgrew its own (upkeep_analyze): each second, as a bulk load on a new
 * database doubles standings every few seconds, long before autovacuum's next look. */
static bool analyze(refresher_t *r, PGconn *c, int64_t now_ms)
{
    (void)r;
    (void)now_ms;
    return upkeep_analyze(c) == Q_OK;
}

/* Keep the rank buckets near their size (upkeep_recut): each second, for at most a fifth of it. */
static bool recut(refresher_t *r, PGconn *c, int64_t now_ms)
{
    (void)now_ms;
    long changes = 0;
    q_status_t st = upkeep_recut(c, r->o.cfg->rank_bucket_rows, ELECTION_TICK_MS / 5, &changes);
    atomic_fetch_add(&r->recuts, (unsigned long long)changes);
    return st == Q_OK;
}

/* How long each second the purges of deleted boards (their rows, their log) may take. */
#define PURGE_BUDGET_MS (ELECTION_TICK_MS / 4)

/* Remove the log rows of deleted boards (purge_log_step), a range of a partition's blocks per
 * statement, for at most PURGE_BUDGET_MS a second; false on failure. */
static bool purge_log(refresher_t *r, PGconn *c, int64_t now_ms)
{
    (void)now_ms;
    long parts = 0;
    bool all = false;
    bool ok = purge_log_step(c, &r->purge, PURGE_BUDGET_MS, &parts, &all) == Q_OK;
    if (parts > 0)
        log_info(NULL, "purged the log of deleted boards: %ld partitions%s", parts, all ? "" : ", more to go");
    return ok;
}

/* Remove what deleted boards left (purge_board_step): their rows a step at a time, for at most
 * PURGE_BUDGET_MS a second; once no row is left, their Redis keys. Then what is left to do goes
 * to /metrics. */
static bool purge_boards(refresher_t *r, PGconn *c, int64_t now_ms)
{
    (void)now_ms;
    purge_board_t *q = NULL;
    size_t n = 0;
    if (purge_boards_pending(c, &q, &n) != Q_OK)
        return false;
    bool ok = true;
    int64_t until = clock_mono_ms() + PURGE_BUDGET_MS;
    for (size_t i = 0; i < n && ok && !stopping(r) && clock_mono_ms() < until; i++) {
        bool rows_gone = false;
        ok = purge_board_step(c, &r->purge, q[i].gen, (int)(until - clock_mono_ms()), &rows_gone) == Q_OK;
        if (!ok || !rows_gone)
            continue; /* rows left for the next second, or only its log's (purge_log) */
        rb_status_t rs = RB_OK;
        if (r->o.redis) {
            redis_conn_t *rc = redis_acquire(r->o.redis);
            rs = rc ? rb_forget_board(rc, q[i].gen) : RB_DOWN;
            redis_release(r->o.redis, rc, rs == RB_DOWN);
        }
        if (rs != RB_OK) /* down, or the slot map moved during the sweep: again next second */
            continue;
        ok = purge_board_redis_done(c, q[i].gen) == Q_OK;
        if (ok)
            log_info(NULL, "deleted board generation %lld: every row and Redis key removed", (long long)q[i].gen);
    }
    free(q);
    int64_t rows = -1, log = -1;
    if (ok && purge_rows_left(c, &rows, &log) == Q_OK) {
        atomic_store(&r->purge_rows_left, rows);
        atomic_store(&r->purge_log_left, log);
    }
    return ok;
}

/* Whether board `b`'s window changed between `then_ms` and `now_ms`. */
static bool rolled(const board_t *b, int64_t then_ms, int64_t now_ms)
{
    return b->reset != RESET_NONE && window_start_day(board_window_rule(b), now_ms) != window_start_day(board_window_rule(b), then_ms);
}

/* Boards whose window changed between the last look and `now_ms`: the leader has the new window
 * loaded into Redis and the closed one archived after the grace; every instance renders its top
 * page. */
static void roll_over(refresher_t *r, bool leads, int64_t now_ms)
{
    unsigned long long n = 0;
    for (size_t i = 0; i < r->n_boards; i++) {
        const board_t *b = &r->boards[i];
        if (!rolled(b, r->last_tick_ms, now_ms))
            continue;
        n++;
        if (leads && r->o.rebuilder)
            rebuilder_request(r->o.rebuilder, b, window_start_day(board_window_rule(b), now_ms));
    }
    if (n == 0)
        return;
    if (leads) {
        run_job(r, UPKEEP_ROLLOVER, make_partitions, now_ms, false);
        forget_cold_windows(r, now_ms);
        r->archive_at_ms = now_ms + archive_grace_ms(r);
    }
    for (size_t i = 0; r->o.warm && i < r->n_boards; i++) {
        const board_t *b = &r->boards[i];
        if (rolled(b, r->last_tick_ms, now_ms))
            r->o.warm(r->o.warm_arg, b->id, now_ms);
    }
    /* Counted once done: a test that sees the count move finds the archive and the warm page. */
    atomic_fetch_add(&r->rollovers, n);
}

/* Whether this instance leads now: keep the leader's session, or try to become the leader. */
static bool lead(refresher_t *r)
{
    if (r->lead && !pg_conn_alive(r->lead)) {
        PQfinish(r->lead); /* the lock went with the session */
        r->lead = NULL;
    }
    if (!r->lead) {
        char err[512];
        r->lead = pg_connect(r->o.cfg->pg_primary, 0, r->o.cfg->pg_connect_timeout_s, err, sizeof err);
        if (r->lead && upkeep_lead_session(r->lead) != Q_OK) {
            PQfinish(r->lead);
            r->lead = NULL;
        }
    }
    bool leads = false;
    if (r->lead && upkeep_try_lead(r->lead, &leads) != Q_OK) {
        PQfinish(r->lead);
        r->lead = NULL;
        leads = false;
    }
    bool was = atomic_exchange(&r->leading, leads);
    if (leads && !was)
        log_info(NULL, "this instance leads the upkeep jobs (view refresh, partitions, purges)");
    else if (!leads && was)
        log_warn(NULL, "this instance no longer leads the upkeep jobs");
    return leads;
}

static void *refresher_main(void *arg)
{
    refresher_t *r = arg;
    int64_t last = -1; /* when this leader last ran the jobs; -1: not since it began leading */
    int interval_ms = r->o.cfg->refresh_interval_s * 1000;
    r->last_tick_ms = clock_wall_ms();
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        bool leads = lead(r);
        if (!leads) {
            last = -1;
            r->refreshed_mark[0] = '\0'; /* a leader again refreshes at once */
            /* Only the leader looks: a former leader's last count would hide the new one's. */
            atomic_store(&r->months_ahead, -2);
            atomic_store(&r->purge_rows_left, -1);
            atomic_store(&r->purge_log_left, -1);
        }
        int64_t now = clock_wall_ms();
        if (now < r->last_tick_ms) {
            /* The clock went back (set right after running ahead): the next reset is the one
             * after now, not after where the clock had been, and so is the archive it brings.
             * Set back by more than the skew tolerated, it had also done today's reset before
             * its time (its archive refused, its new window checked early): today's is done
             * again, now that the clock is right (each of its steps may run twice). */
            int64_t back = r->last_tick_ms - now;
            bool redo = back > r->o.cfg->retention_max_clock_skew_ms;
            log_warn(NULL, "the wall clock went back by %lld ms; resets are looked at from %s on", (long long)back,
                     redo ? "today's" : "now");
            r->last_tick_ms = redo ? now - now % MS_PER_DAY - 1 : now;
            if (r->archive_at_ms > now + archive_grace_ms(r))
                r->archive_at_ms = now + archive_grace_ms(r);
        }
        /* Every reset is at a UTC midnight: crossing one, the list is read again first, so that a
         * board made since the last read rolls over too (it did not, made within
         * refresh.interval_s of its first reset). */
        bool new_day = now / MS_PER_DAY != r->last_tick_ms / MS_PER_DAY;
        if (r->boards_at < 0 || clock_mono_ms() - r->boards_at >= interval_ms || new_day)
            load_boards(r);
        if (now >= next_reset_ms(r, r->last_tick_ms))
            roll_over(r, leads, now);
        r->last_tick_ms = now;
        if (leads && r->archive_at_ms > 0 && now >= r->archive_at_ms) {
            r->archive_at_ms = 0;
            run_job(r, UPKEEP_ARCHIVE, archive_closed, now, true);
        }
        if (leads) {
            run_job(r, UPKEEP_ANALYZE, analyze, now, false);
            run_job(r, UPKEEP_RECUT, recut, now, false);
            run_job(r, UPKEEP_LOG_PURGE, purge_log, now, false);
            run_job(r, UPKEEP_BOARD_PURGE, purge_boards, now, false);
        }
        if (leads && (last < 0 || clock_mono_ms() - last >= interval_ms)) {
            maintain(r, now); /* at once on taking the lead: statistics exist from the first minute */
            last = clock_mono_ms();
        }
        /* Wake for the election tick, or the next reset or archive if sooner. */
        int64_t to_reset = next_reset_ms(r, now) - clock_wall_ms();
        if (r->archive_at_ms > 0 && r->archive_at_ms - clock_wall_ms() < to_reset)
            to_reset = r->archive_at_ms - clock_wall_ms();
        int wait_ms = to_reset < ELECTION_TICK_MS ? (int)(to_reset < 10 ? 10 : to_reset) : ELECTION_TICK_MS;
        pthread_mutex_lock(&r->lock);
        if (r->stopping)
            break;
        struct timespec until = clock_deadline_ms(wait_ms);
        pthread_cond_timedwait(&r->wake, &r->lock, &until);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

bool refresher_leads(const refresher_t *r)
{
    return r && atomic_load(&r->leading);
}

void refresher_stats(refresher_t *r, refresher_stats_t *out)
{
    *out = (refresher_stats_t){.log_months_ahead = -2, .purge_rows_left = -1, .purge_log_left = -1};
    if (!r)
        return;
    out->unchanged_rounds = atomic_load(&r->unchanged);
    out->rollovers = atomic_load(&r->rollovers);
    out->archived = atomic_load(&r->archived);
    out->last_archive_ms = atomic_load(&r->last_archive_ms);
    out->partitions_dropped = atomic_load(&r->dropped);
    out->rank_bucket_recuts = atomic_load(&r->recuts);
    out->log_months_ahead = atomic_load(&r->months_ahead);
    out->redis_audit_lost = atomic_load(&r->audit_lost);
    out->clock_skew_ms = atomic_load(&r->skew_ms);
    out->purge_rows_left = atomic_load(&r->purge_rows_left);
    out->purge_log_left = atomic_load(&r->purge_log_left);
    pthread_mutex_lock(&r->jobs_lock);
    memcpy(out->jobs, r->jobs, sizeof out->jobs);
    pthread_mutex_unlock(&r->jobs_lock);
}

refresher_t *refresher_start(const refresher_opts_t *opts)
{
    if (opts->cfg->refresh_interval_s <= 0)
        return NULL;
    refresher_t *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    pthread_mutex_init(&r->jobs_lock, NULL);
    atomic_init(&r->months_ahead, -2);
    atomic_init(&r->purge_rows_left, -1);
    atomic_init(&r->purge_log_left, -1);
    purge_state_init(&r->purge, pg_pool_statement_timeout_ms(opts->primary));
    r->o = *opts;
    r->boards_at = -1;
    (void)clock_test_watch(clock_moved, r); /* a no-op without the test clock */
    if (pthread_create(&r->thread, NULL, refresher_main, r) != 0) {
        clock_test_unwatch(clock_moved, r);
        log_error(NULL, "cannot start the refresher thread");
        pthread_mutex_destroy(&r->lock);
        pthread_mutex_destroy(&r->jobs_lock);
        pthread_cond_destroy(&r->wake);
        free(r);
        return NULL;
    }
    return r;
}

void refresher_stop(refresher_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    char err[256];
    if (r->refreshing && !PQcancel(r->refreshing, err, sizeof err))
        log_warn(NULL, "stopping: cannot cancel the upkeep statement in progress: %s", err);
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    clock_test_unwatch(clock_moved, r);
    if (r->lead)
        PQfinish(r->lead); /* hands the lead over at once */
    for (size_t i = 0; i < r->n_boards; i++)
        board_clear(&r->boards[i]);
    free(r->boards);
    free(r->audited);
    purge_state_free(&r->purge);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->jobs_lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}
