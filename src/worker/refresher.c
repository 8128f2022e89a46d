/*
 * worker/refresher.c — periodic view refresh, partition upkeep, idempotency key expiry, run by
 * one instance: the upkeep leader.
 *
 * Every instance's refresher tries each second to take a session advisory lock
 * (upkeep_try_lead) on a connection of its own to the primary. The one that holds it leads: it
 * runs the jobs at once and then every refresh.interval_s. The lock lives as long as that
 * session: when the leader dies (kill -9 included, the kernel closes its socket) or loses the
 * connection, PostgreSQL releases it and another instance takes over within about a second.
 * The others serve everything else as before.
 */
#include "worker/refresher.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "obs/log.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "store/upkeep.h"
#include "store/views.h"
#include "util/alloc.h"
#include "util/clock.h"

struct refresher {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stopping;
    pg_pool_t *primary;
    int interval_s;
    redis_pool_t *redis;      /* NULL without Redis */
    char *conninfo;           /* the primary, for the leader's own session */
    int connect_timeout_s;
    PGconn *lead;             /* that session: holds the leader lock while this instance leads */
    atomic_bool leading;
    char refreshed_mark[96];  /* upkeep_write_mark as of this leader's last view refresh; "" none */
    atomic_ullong unchanged;  /* rounds that found nothing written and left the views alone */
};

/* How often a follower tries to become the leader (and a leader checks its session). */
#define ELECTION_TICK_MS 1000

/* Log partitions purged per statement (each part a bounded scan) and statements per round:
 * what is left waits for the next round. */
#define PURGE_PARTS 4
#define PURGE_STEPS_MAX 64

static bool stopping(refresher_t *r)
{
    pthread_mutex_lock(&r->lock);
    bool s = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return s;
}

/* Remove the log rows of deleted boards (rankd_purge_log), a few partitions per statement so
 * that no statement outlasts the statement timeout; false on failure. */
static bool purge_log(refresher_t *r, PGconn *c)
{
    long total = 0;
    for (int step = 0; step < PURGE_STEPS_MAX && !stopping(r); step++) {
        long purged = 0;
        if (upkeep_purge_log(c, PURGE_PARTS, &purged) != Q_OK)
            return false;
        total += purged;
        if (purged < PURGE_PARTS)
            break;
    }
    if (total > 0)
        log_info(NULL, "purged the log of deleted boards: %ld partitions", total);
    return true;
}

/* Redis holds each board's current and previous window: the keys of older ones go. */
static bool forget_cold_windows(refresher_t *r, PGconn *c)
{
    if (!r->redis)
        return true;
    board_t *boards = NULL;
    size_t n = 0;
    q_status_t st = q_board_list(c, NULL, 1000000, &boards, &n);
    if (st != Q_OK)
        return st != Q_UNAVAILABLE;
    redisContext *rc = redis_acquire(r->redis);
    if (rc) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        long deleted = 0;
        rb_status_t rs = rb_forget_cold_windows(rc, boards, n, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, &deleted);
        redis_release(r->redis, rc, rs != RB_OK);
        if (deleted > 0)
            log_info(NULL, "removed %ld Redis keys of windows older than the previous one", deleted);
    }
    for (size_t i = 0; i < n; i++)
        board_clear(&boards[i]);
    free(boards);
    return true;
}

static void maintain(refresher_t *r)
{
    PGconn *c = pg_pool_acquire(r->primary, 5000);
    if (!c)
        return;
    /* The views are refreshed only when what they are computed from changed since this leader
     * last refreshed them (the mark is read first: a write during the refresh counts next time). */
    char mark[96] = "";
    bool marked = upkeep_write_mark(c, mark, sizeof mark) == Q_OK;
    views_status_t st = VIEWS_DONE;
    if (!marked || !r->refreshed_mark[0] || strcmp(mark, r->refreshed_mark) != 0) {
        view_refresh_t done[VIEWS_MAX];
        size_t n = 0;
        st = views_refresh(c, NULL, 0, done, &n);
        for (size_t i = 0; st == VIEWS_DONE && i < n; i++)
            log_info(NULL, "refreshed view %s: %lld rows in %lld ms", done[i].view, (long long)done[i].rows,
                     (long long)done[i].ms);
        if (st == VIEWS_DONE && marked)
            snprintf(r->refreshed_mark, sizeof r->refreshed_mark, "%s", mark);
    } else {
        atomic_fetch_add(&r->unchanged, 1);
    }
    bool ok = st != VIEWS_FAILED && upkeep_ensure_partitions(c, 3) == Q_OK && upkeep_forget_old_keys(c) == Q_OK &&
              purge_log(r, c);
    if (ok)
        ok = forget_cold_windows(r, c);
    pg_pool_release(r->primary, c, !ok);
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
        r->lead = pg_connect(r->conninfo, 0, r->connect_timeout_s, err, sizeof err);
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
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        int64_t now = clock_mono_ms();
        if (!lead(r)) {
            last = -1;
            r->refreshed_mark[0] = '\0'; /* a leader again refreshes at once */
        }
        else if (last < 0 || now - last >= (int64_t)r->interval_s * 1000) {
            maintain(r); /* at once on taking the lead: statistics exist from the first minute */
            last = clock_mono_ms();
        }
        pthread_mutex_lock(&r->lock);
        if (r->stopping)
            break;
        struct timespec until = clock_deadline_ms(ELECTION_TICK_MS);
        pthread_cond_timedwait(&r->wake, &r->lock, &until);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

bool refresher_leads(const refresher_t *r)
{
    return r && atomic_load(&r->leading);
}

unsigned long long refresher_unchanged_rounds(const refresher_t *r)
{
    return r ? atomic_load(&r->unchanged) : 0;
}

refresher_t *refresher_start(pg_pool_t *primary, redis_pool_t *redis, int interval_s, const char *conninfo,
                             int connect_timeout_s)
{
    if (interval_s <= 0)
        return NULL;
    refresher_t *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    r->primary = primary;
    r->redis = redis;
    r->interval_s = interval_s;
    r->conninfo = xstrdup(conninfo);
    r->connect_timeout_s = connect_timeout_s;
    if (pthread_create(&r->thread, NULL, refresher_main, r) != 0) {
        log_error(NULL, "cannot start the refresher thread");
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->wake);
        free(r->conninfo);
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
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    if (r->lead)
        PQfinish(r->lead); /* hands the lead over at once */
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r->conninfo);
    free(r);
}
