/* worker/refresher.c — periodic view refresh, partition upkeep, idempotency key expiry. */
#include "worker/refresher.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "obs/log.h"
#include "store/upkeep.h"
#include "store/views.h"
#include "util/alloc.h"

struct refresher {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stopping;
    pg_pool_t *primary;
    int interval_s;
};

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

static void maintain(refresher_t *r)
{
    PGconn *c = pg_pool_acquire(r->primary, 5000);
    if (!c)
        return;
    view_refresh_t done[VIEWS_MAX];
    size_t n = 0;
    views_status_t st = views_refresh(c, NULL, r->interval_s, done, &n);
    for (size_t i = 0; st == VIEWS_DONE && i < n; i++)
        if (!done[i].skipped)
            log_info(NULL, "refreshed view %s: %lld rows in %lld ms", done[i].view, (long long)done[i].rows,
                     (long long)done[i].ms);
    bool ok = st != VIEWS_FAILED && upkeep_ensure_partitions(c, 3) == Q_OK && upkeep_forget_old_keys(c) == Q_OK &&
              purge_log(r, c);
    pg_pool_release(r->primary, c, !ok);
}

static void *refresher_main(void *arg)
{
    refresher_t *r = arg;
    maintain(r); /* once at start: statistics exist from the first minute */
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += r->interval_s;
        pthread_cond_timedwait(&r->wake, &r->lock, &until);
        if (r->stopping)
            break;
        pthread_mutex_unlock(&r->lock);
        maintain(r);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

refresher_t *refresher_start(pg_pool_t *primary, int interval_s)
{
    if (interval_s <= 0)
        return NULL;
    refresher_t *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    r->primary = primary;
    r->interval_s = interval_s;
    if (pthread_create(&r->thread, NULL, refresher_main, r) != 0) {
        log_error(NULL, "cannot start the refresher thread");
        pthread_mutex_destroy(&r->lock);
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
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}
