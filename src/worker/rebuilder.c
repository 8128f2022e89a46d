/*
 * worker/rebuilder.c — checks Redis windows against PostgreSQL, and reloads those that are
 * cold or missed a write.
 *
 * One thread, one queue of (board, window) requests guarded by a mutex and
 * a condition variable. The thread pops a request, releases the lock, and
 * only then talks to Redis and PostgreSQL, so a request never blocks a
 * reader. A request for a ready window that this instance has not checked since its start or
 * Redis's last outage compares the window's mark in Redis (the number up to which every
 * changing transaction was applied, store/redis_board.h) with its number in PostgreSQL,
 * Redis first: a mark that reaches PostgreSQL's, once the writers in flight have landed (up to
 * SETTLE_MS), makes the window trusted (redis_window_verified); one that stays behind (a Redis
 * restored from an older snapshot, a failover, a writer that died after its commit), or that
 * is ahead (PostgreSQL lost commits in a failover), has the window rebuilt. A cold window is
 * rebuilt. Every second the thread also pings Redis (a restart seen by no command is an outage
 * too), marks cold, for every instance, the windows this instance committed changes to that
 * Redis did not take (redis_unapplied), and trusts Redis again after an outage once that is done.
 */
#include "worker/rebuilder.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/window.h"
#include "obs/log.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "util/alloc.h"

#define QUEUE_MAX 256
/* How long a window's Redis mark may stay behind PostgreSQL's for writers in flight (committed,
 * their Redis update on its way) before the window counts as having missed a write: longer than
 * an update may wait out a migrating slot (redis_conn.c TRYAGAIN_MAX_MS) and its command timeout. */
#define SETTLE_MS 6000
/* ... unless the mark stood still this long: updates in flight land within milliseconds, and
 * one waiting out a migrating slot is not lost (its window is then rebuilt needlessly, safely). */
#define STALL_MS 500

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
    atomic_ullong verified;    /* windows whose marks were found equal */
    atomic_ullong behind;      /* windows found to miss writes (or to be ahead of PostgreSQL), rebuilt */
    atomic_ullong rebuilt;     /* windows loaded */
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

/* The rebuilder is stopping: a load under way ends at its next chunk. */
static bool source_cancelled(rb_source_t *s)
{
    rebuilder_t *r = ((job_source_t *)s)->r;
    pthread_mutex_lock(&r->lock);
    bool stopping = r->stopping;
    pthread_mutex_unlock(&r->lock);
    return stopping;
}

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

static void pause_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

typedef enum { MARK_EQUAL, MARK_BEHIND, MARK_AHEAD, MARK_COLD, MARK_FAILED } mark_check_t;

/* Compare a ready window's mark in Redis with its number in PostgreSQL (the primary: a replica
 * may not have every commit). Redis is read first, so a commit it has, PostgreSQL has too. */
static mark_check_t check_mark(rebuilder_t *r, redis_conn_t *rc, PGconn *pg, const job_t *job, int64_t *redis_seq,
                               int64_t *pg_seq)
{
    bool ready = false;
    if (rb_window_mark(rc, job->board.gen, job->day, &ready, redis_seq) != RB_OK)
        return MARK_FAILED;
    if (!ready)
        return MARK_COLD;
    if (q_window_seq(pg, job->board.gen, job->day, pg_seq) != Q_OK)
        return MARK_FAILED;
    if (*redis_seq > *pg_seq)
        return MARK_AHEAD;
    /* Writers that committed before the read above update Redis right after: wait for them while
     * the mark moves (up to SETTLE_MS), not once it has stood still for STALL_MS (a Redis that
     * lost updates never gets them). */
    for (long waited = 0, still = 0; *redis_seq < *pg_seq && waited < SETTLE_MS && still < STALL_MS;
         waited += 20, still += 20) {
        pause_ms(20);
        int64_t before = *redis_seq;
        if (rb_window_mark(rc, job->board.gen, job->day, &ready, redis_seq) != RB_OK)
            return MARK_FAILED;
        if (!ready)
            return MARK_COLD;
        if (*redis_seq != before)
            still = 0;
    }
    (void)r;
    return *redis_seq >= *pg_seq ? MARK_EQUAL : MARK_BEHIND;
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
    redis_check_t check;
    redis_check_begin(r->redis, &check);
    int64_t redis_seq = 0, pg_seq = 0;
    mark_check_t mark = check_mark(r, rc, pg, job, &redis_seq, &pg_seq);
    if (mark == MARK_FAILED) {
        bool pg_down = PQstatus(pg) != CONNECTION_OK;
        redis_release(r->redis, rc, redis_conn_broken(rc));
        pg_pool_release(r->primary, pg, pg_down);
        return;
    }
    if (mark == MARK_EQUAL) {
        /* Reads that found the window unchecked asked again meanwhile: nothing to load. */
        redis_window_verified(r->redis, job->board.gen, job->day, &check, redis_seq);
        atomic_fetch_add(&r->verified, 1);
        redis_release(r->redis, rc, false);
        pg_pool_release(r->primary, pg, false);
        return;
    }
    if (mark != MARK_COLD) {
        atomic_fetch_add(&r->behind, 1);
        char win[11];
        window_format_day(job->day, win);
        log_warn(NULL, "redis window %s: board=%s window=%s: redis applied changes up to %lld, postgres has %lld;"
                       " rebuilding it",
                 mark == MARK_BEHIND ? "missed writes" : "is ahead of postgres (a failover lost commits)",
                 job->board.id, win, (long long)redis_seq, (long long)pg_seq);
    }
    rb_rebuild_t done;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    job_source_t src = {{source_open, source_close, source_cancelled}, r, &job->board, pg, {0}, false};
    rb_status_t st = rb_rebuild_from(rc, &src.base, &job->board, job->day, &done);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (st == RB_OK && !done.busy && !done.pg_failed && !done.lost && !done.cancelled) {
        char win[11];
        window_format_day(job->day, win);
        log_info(NULL, "redis window rebuilt: board=%s window=%s players=%lld ms=%ld", job->board.id, win,
                 (long long)done.players, ms);
        redis_window_verified(r->redis, job->board.gen, job->day, &check, 0);
        atomic_fetch_add(&r->rebuilt, 1);
    }
    if (st == RB_DOWN)
        redis_release(r->redis, rc, true);
    else if (st != RB_OK) /* refused (a slot migrating): this window waits for the next request */
        redis_release(r->redis, rc, false);
    else
        redis_discard(r->redis, rc); /* it carries the rebuild's long timeout */
    pg_pool_release(r->primary, pg, st == RB_OK && done.pg_failed && !src.on_replica);
}

/* Mark cold, for every instance, the windows this instance committed changes to that Redis did
 * not take, and end any rebuild of them under way (it may have read before those commits).
 * False when Redis failed. */
static bool forget_unapplied(rebuilder_t *r, redis_conn_t *rc)
{
    int64_t gens[64], days[64];
    bool overflow = false;
    size_t n = redis_unapplied(r->redis, gens, days, 64, &overflow);
    rb_status_t st = RB_OK;
    if (overflow) { /* too many to name: every window */
        st = rb_forget_all_loaded(rc);
        if (st == RB_OK)
            log_warn(NULL, "redis missed the changes of many windows: every window marked cold");
    }
    size_t done = 0;
    for (; done < n && st == RB_OK; done++)
        st = rb_forget_window(rc, gens[done], days[done]);
    if (st != RB_OK && done > 0)
        done--; /* the last one failed */
    if (done > 0 || (overflow && st == RB_OK)) {
        redis_unapplied_done(r->redis, gens, days, done, overflow && st == RB_OK);
        if (done > 0)
            log_info(NULL, "redis did not take committed changes of %zu window(s): marked cold", done);
    }
    return st != RB_DOWN;
}

/* Each second: ping Redis (a restart no command saw is an outage too: a new epoch), mark cold the
 * windows it missed changes of, and after an outage trust it again once that is done. Windows
 * are then trusted one by one as their marks are checked (run_job). */
static void watch_outage(rebuilder_t *r)
{
    redis_conn_t *rc = redis_acquire(r->redis); /* a reconnect after an outage sets "recovering" */
    if (!rc)
        return;
    unsigned long outages = 0;
    bool recovering = redis_recovering(r->redis, &outages);
    redisReply *ping = redis_conn_command(rc, NULL, "PING");
    bool ok = ping && ping->type != REDIS_REPLY_ERROR;
    if (ping)
        freeReplyObject(ping);
    ok = ok && forget_unapplied(r, rc);
    if (ok && recovering) {
        redis_mark_trusted(r->redis, outages);
        log_info(NULL, "redis came back: its windows are trusted again one by one, once their marks are checked");
    }
    redis_release(r->redis, rc, !ok);
}

void rebuilder_stats(rebuilder_t *r, rebuilder_stats_t *out)
{
    *out = (rebuilder_stats_t){0};
    if (!r)
        return;
    out->verified = atomic_load(&r->verified);
    out->behind = atomic_load(&r->behind);
    out->rebuilt = atomic_load(&r->rebuilt);
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
