/*
 * worker/rebuilder.c — reloads cold Redis windows from PostgreSQL.
 *
 * One thread, one queue of (board, window) requests guarded by a mutex and
 * a condition variable. The thread pops a request, releases the lock, and
 * only then talks to Redis and PostgreSQL, so a request never blocks a
 * reader. Every second it also asks the Redis pool whether Redis came back
 * after an outage; if so it forgets every "ready" flag, and ends every
 * rebuild under way, so that each window is reloaded on its next read.
 */
#include "worker/rebuilder.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"
#include "store/redis_board.h"
#include "util/alloc.h"

#define QUEUE_MAX 256

typedef struct {
    board_t board;
    int64_t day;
} job_t;

struct rebuilder {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stopping;
    job_t queue[QUEUE_MAX];
    size_t n_queued;
    pg_pool_t *primary;        /* its own connection to the primary, without replicas */
    pg_router_t *router;       /* with replicas: one that has replayed the board's last write */
    redis_pool_t *redis;
};

/*
 * Where a window loads from (an rb_source_t, asked once the window has been cleared): the
 * primary's WAL position is read on the rebuilder's own connection, recorded for the board, and
 * a replica that has replayed it answers, so that the largest reads rankd makes stay off the
 * primary while nothing the clear erased can be missing. A replica still short of it after a
 * few tries, or none (or no replicas at all): the rebuilder's own connection to the primary.
 */
typedef struct {
    rb_source_t base;
    rebuilder_t *r;
    const board_t *board;
    PGconn *primary;    /* the rebuilder's own, held for the job */
    pg_lease_t lease;   /* a replica's, when one answers */
    bool on_replica;    /* the load read a replica */
} job_source_t;

#define REPLICA_TRIES 5

static PGconn *source_open(rb_source_t *s)
{
    job_source_t *js = (job_source_t *)s;
    rebuilder_t *r = js->r;
    memset(&js->lease, 0, sizeof js->lease);
    if (!pg_router_has_replicas(r->router))
        return js->primary;
    uint64_t lsn = pg_wal_lsn(js->primary);
    if (lsn == 0)
        return js->primary;
    pg_router_saw_lsn(r->router, js->board->gen, lsn);
    for (int i = 0; i < REPLICA_TRIES; i++) {
        if (pg_router_read_replica(r->router, js->board->gen, &js->lease)) {
            if (!js->lease.behind) {
                js->on_replica = true;
                return js->lease.conn;
            }
            pg_router_release(r->router, &js->lease, false);
        }
        struct timespec pause = {0, 20 * 1000000L}; /* it replays within milliseconds, as a rule */
        nanosleep(&pause, NULL);
    }
    memset(&js->lease, 0, sizeof js->lease);
    return js->primary;
}

static void source_close(rb_source_t *s, PGconn *c, bool failed)
{
    job_source_t *js = (job_source_t *)s;
    if (js->lease.node && c == js->lease.conn)
        pg_router_release(js->r->router, &js->lease, failed);
}

static void run_job(rebuilder_t *r, job_t *job)
{
    redis_conn_t *rc = redis_acquire(r->redis);
    if (!rc)
        return;
    PGconn *pg = pg_pool_acquire(r->primary, 5000);
    if (!pg) {
        redis_release(r->redis, rc, false);
        return;
    }
    /* Reads that found the window cold while it was being loaded asked again: a window
     * loaded since needs nothing (rebuilding it would empty it for everyone). */
    bool ready = false;
    if (rb_window_ready(rc, job->board.gen, job->day, &ready) != RB_OK || ready) {
        redis_release(r->redis, rc, !ready);
        pg_pool_release(r->primary, pg, false);
        return;
    }
    rb_rebuild_t done;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    job_source_t src = {{source_open, source_close}, r, &job->board, pg, {0}, false};
    rb_status_t st = rb_rebuild_from(rc, &src.base, &job->board, job->day, &done);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (st == RB_OK && !done.busy && !done.pg_failed && !done.lost)
        log_info(NULL, "redis window rebuilt: board=%s day=%lld players=%lld ms=%ld", job->board.id,
                 (long long)job->day, (long long)done.players, ms);
    if (st != RB_OK)
        redis_release(r->redis, rc, true);
    else
        redis_discard(r->redis, rc); /* it carries the rebuild's long timeout */
    pg_pool_release(r->primary, pg, st == RB_OK && done.pg_failed && !src.on_replica);
}

/* Probe Redis; after an outage, mark every window cold before readers trust it again. The
 * writer commits without Redis while the pool is down (never after it reconnected, which sets
 * "recovering"), so whatever it left out is older than this and is read by every later rebuild. */
static void watch_outage(rebuilder_t *r)
{
    redis_conn_t *rc = redis_acquire(r->redis); /* a reconnect after an outage sets "recovering" */
    if (!rc)
        return;
    rb_status_t st = RB_OK;
    unsigned long outages = 0;
    if (redis_recovering(r->redis, &outages)) {
        st = rb_forget_all_loaded(rc);
        if (st == RB_OK) {
            redis_mark_trusted(r->redis, outages);
            log_info(NULL, "redis came back: every window marked cold, to be reloaded from postgres");
        }
    }
    redis_release(r->redis, rc, st == RB_DOWN); /* RB_AGAIN: still recovering, tried next second */
}

static void *rebuilder_main(void *arg)
{
    rebuilder_t *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        if (r->n_queued == 0) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&r->wake, &r->lock, &until);
        }
        pthread_mutex_unlock(&r->lock);
        watch_outage(r);
        pthread_mutex_lock(&r->lock);
        if (r->stopping || r->n_queued == 0)
            continue;
        job_t job = r->queue[0];
        memmove(r->queue, r->queue + 1, (r->n_queued - 1) * sizeof *r->queue);
        r->n_queued--;
        pthread_mutex_unlock(&r->lock);
        if (redis_trusted(r->redis))
            run_job(r, &job);
        board_clear(&job.board);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

rebuilder_t *rebuilder_start(pg_pool_t *primary, pg_router_t *router, redis_pool_t *redis)
{
    if (!redis)
        return NULL;
    rebuilder_t *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    r->primary = primary;
    r->router = router;
    r->redis = redis;
    if (pthread_create(&r->thread, NULL, rebuilder_main, r) != 0) {
        log_error(NULL, "cannot start the rebuilder thread");
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->wake);
        free(r);
        return NULL;
    }
    return r;
}

void rebuilder_stop(rebuilder_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    for (size_t i = 0; i < r->n_queued; i++)
        board_clear(&r->queue[i].board);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->wake);
    free(r);
}

void rebuilder_request(rebuilder_t *r, const board_t *b, int64_t day)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    bool queued = false;
    for (size_t i = 0; i < r->n_queued; i++)
        if (r->queue[i].board.gen == b->gen && r->queue[i].day == day)
            queued = true;
    if (!queued && r->n_queued < QUEUE_MAX) {
        board_copy(&r->queue[r->n_queued].board, b);
        r->queue[r->n_queued].day = day;
        r->n_queued++;
        pthread_cond_signal(&r->wake);
    }
    pthread_mutex_unlock(&r->lock);
}
