/*
 * worker/joiner.h — tournament joins, committed in groups.
 *
 * A join is a write: one transaction and one fsync each would cap joins far below submissions
 * (a third of their rate, measured). As the writer does for submissions, one thread takes every
 * join queued at that moment and commits them in one transaction (q_tournament_join_batch), then
 * calls each job's done(); HTTP threads never wait (the connection is suspended meanwhile).
 */
#ifndef RANKD_WORKER_JOINER_H
#define RANKD_WORKER_JOINER_H

#include <stdbool.h>

#include "store/pg_pool.h"
#include "store/pg_router.h"
#include "store/tournament.h"
#include "util/must_use.h"
#include "util/workq.h"

typedef struct joiner joiner_t;

/* One join request. */
typedef struct join_job {
    tj_item_t item;            /* its board is borrowed until done() */
    bool failed;               /* out: the transaction failed (503): nothing was joined */
    void (*done)(struct join_job *job); /* on the joiner's thread, once item holds its outcome */
    void *arg;
    workq_item_t link;
} join_job_t;

/* Start the thread; `primary`: a pool of its own (the caller frees it after joiner_free). A
 * transaction waits up to `gather_us` for the players it answered to join again, as the writer's
 * (writer.gather_us). */
MUST_USE joiner_t *joiner_new(pg_pool_t *primary, pg_router_t *router, int gather_us);
/* Answer 503 from now on; what is queued is still committed. */
void joiner_close(joiner_t *j);
/* Commit what is queued, stop the thread, free the joiner. */
void joiner_free(joiner_t *j);
/* Queue a join; done() is called on the joiner's thread (at once, failed, once closed). */
void joiner_enqueue(joiner_t *j, join_job_t *job);

#endif
