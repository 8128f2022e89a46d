/* worker/joiner.c — tournament joins, committed in groups (worker/joiner.h). */
#include "worker/joiner.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "obs/log.h"
#include "store/pg_deadline.h"
#include "store/write_sql.h"
#include "util/alloc.h"

/* Joins a transaction takes at most: its arrays stay small, its locks short. */
#define JOIN_BATCH_MAX 500

/* A group that lost a lock (a deadlock, the lock timeout) is run again this many times. */
#define JOIN_ATTEMPTS 3

struct joiner {
    pg_pool_t *primary;
    pg_router_t *router;
    int lock_timeout_ms;       /* each statement's lock waits, on the joiner's connections */
    int64_t gather_ns;         /* as the writer's (writer.gather_us) */
    workq_t queue;
    atomic_bool closed;
    pthread_t thread;
};

static join_job_t *job_of(workq_item_t *item)
{
    return item ? WORKQ_OWNER(item, join_job_t, link) : NULL;
}

/* Commit one group of joins and answer each; returns how many, and in *answered_at the queue's
 * count of pushes before the first answer went. */
static size_t run_group(joiner_t *j, join_job_t *jobs, uint64_t *answered_at)
{
    size_t n = 0;
    for (join_job_t *x = jobs; x; x = job_of(x->link.next))
        n++;
    tj_item_t *items = xcalloc(n, sizeof *items);
    size_t k = 0;
    for (join_job_t *x = jobs; x; x = job_of(x->link.next))
        items[k++] = x->item;
    q_status_t st = Q_UNAVAILABLE;
    PGconn *c = pg_router_primary_usable(j->router) ? pg_pool_acquire(j->primary, 1000) : NULL;
    if (c) {
        /* A primary that stops answering must not hold the joins (and shutdown) for good. */
        for (int attempt = 0; attempt < JOIN_ATTEMPTS && (attempt == 0 || st == Q_RETRY); attempt++) {
            pg_deadline_arm_statement(c, 2);
            st = q_tournament_join_batch(c, items, n);
            pg_deadline_disarm(c);
        }
        /* Replicas answer the boards' reads once they replayed these joins: one WAL position,
         * noted for each board joined. */
        for (size_t i = 0; st == Q_OK && i < n; i++) {
            bool first = items[i].outcome == TJ_JOINED;
            for (size_t p = 0; p < i && first; p++)
                first = !(items[p].outcome == TJ_JOINED && items[p].board->gen == items[i].board->gen);
            if (first)
                pg_router_note_commit(j->router, c, items[i].board->gen);
        }
        pg_pool_release(j->primary, c, st == Q_UNAVAILABLE || st == Q_ERROR);
    }
    *answered_at = workq_pushed(&j->queue);
    k = 0;
    join_job_t *x = jobs;
    while (x) {
        x->item = items[k++];
        x->failed = st != Q_OK;
        join_job_t *next = job_of(x->link.next); /* done() may free the job */
        x->done(x);
        x = next;
    }
    free(items);
    return n;
}

static void *joiner_main(void *arg)
{
    joiner_t *j = arg;
    workq_pace_t pace = {0};
    size_t answered = 0;
    uint64_t answered_at = 0;
    for (;;) {
        /* Players joining in a closed loop share a transaction, as the writer's clients do. */
        workq_gather_t g = {.since = answered_at, .window_ns = j->gather_ns};
        if (j->gather_ns > 0)
            g.expect = workq_pace_expect(&pace, answered, answered);
        workq_item_t *jobs = workq_take_gathered(&j->queue, JOIN_BATCH_MAX, NULL, &g);
        if (!jobs)
            break;
        workq_pace_after(&pace, &g);
        answered = run_group(j, job_of(jobs), &answered_at);
    }
    return NULL;
}

joiner_t *joiner_new(pg_pool_t *primary, pg_router_t *router, int gather_us)
{
    joiner_t *j = xcalloc(1, sizeof *j);
    j->gather_ns = gather_us > 0 ? (int64_t)gather_us * 1000 : 0;
    j->primary = primary;
    j->router = router;
    /* Half the statement timeout, as the writer's: a lock wait fails on its own, and is retried. */
    j->lock_timeout_ms = pg_pool_statement_timeout_ms(primary) / 2;
    pg_pool_on_connect(primary, write_sql_prepare, &j->lock_timeout_ms);
    workq_init(&j->queue);
    if (pthread_create(&j->thread, NULL, joiner_main, j) != 0) {
        log_error(NULL, "cannot start the joiner thread");
        abort();
    }
    return j;
}

void joiner_close(joiner_t *j)
{
    atomic_store(&j->closed, true);
}

void joiner_free(joiner_t *j)
{
    if (!j)
        return;
    workq_stop(&j->queue);
    pthread_join(j->thread, NULL);
    workq_destroy(&j->queue);
    free(j);
}

void joiner_enqueue(joiner_t *j, join_job_t *job)
{
    if (atomic_load(&j->closed)) {
        job->failed = true;
        job->done(job);
        return;
    }
    workq_push(&j->queue, &job->link);
}
