/*
 * worker/writer.h — applies score submissions durably, then indexes them.
 *
 * Group commit. HTTP threads never wait on PostgreSQL for a write: a
 * handler validates its submissions, wraps them in a write_job_t and hands
 * it to writer_enqueue(); the connection is suspended (libmicrohttpd
 * suspend/resume) and the HTTP thread goes back to serving others. One
 * writer thread takes EVERY job queued at that moment and commits them all
 * in one transaction, so the batch grows with the load by itself: a lone
 * submission is committed at once, a thousand waiting ones share one
 * fdatasync. One thread, taking jobs in queue order, also keeps each
 * player's submissions in their order of arrival across batches. After the
 * commit and the Redis update, each job's done() runs, and only then is its
 * answer sent.
 *
 * writer_submit() is the transaction itself, for a batch of items:
 *
 *   1. idempotency keys are inserted first (unique index): a key already
 *      committed makes its item a replay (same request: the stored answer, or
 *      its draft completed with the rank of the moment when the answer was
 *      never stored; otherwise 409), a key in flight elsewhere waits for that
 *      transaction;
 *   2. the boards are share-locked (a deleted board answers 404), and every
 *      (board, player) touched is locked with a transaction advisory lock,
 *      in sorted order (no deadlock between writers or instances);
 *   3. the current standings are read, and the operators are applied in C
 *      (core/score.h), folding several submissions of one player in arrival
 *      order; a `sum` overflow fails that item only;
 *   4. one statement upserts the folded standings (each with a new version),
 *      appends every accepted submission to the log, bumps the per-window
 *      counters, forgets the keys of failed items and stores the draft of
 *      each keyed answer (all but the rank); then COMMIT.
 *
 * Only after the commit is Redis updated (version-checked, so a late update
 * never overwrites a newer one) and the answers rendered, with each player's
 * new rank. Keyed answers are stored before they are sent; one that cannot be
 * stored is answered 503, and its retry gets the completed draft.
 */
#ifndef RANKD_WORKER_WRITER_H
#define RANKD_WORKER_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/l1.h"
#include "cache/rank_tier.h"
#include "core/model.h"
#include "store/pg_pool.h"
#include "store/pg_router.h"
#include "store/redis.h"
#include "util/workq.h"
#include "worker/rebuilder.h"
#include "worker/write_item.h"
#include "util/must_use.h"


typedef struct writer writer_t;

/* A unit of queued work: the items of one HTTP request. */
typedef struct write_job {
    write_item_t *items;       /* borrowed until done() */
    size_t n;
    /* Called on the writer thread once every item has its result. */
    void (*done)(struct write_job *job);
    void *arg;                 /* for done() */
    workq_item_t link;         /* the writer's queue */
} write_job_t;

/* Start the writer thread. `primary` is a pool for the writer alone (its connections get the
 * writer's prepared statements); the caller frees it after writer_free(). `router` says when
 * the primary is down (writes then answer 503 at once) and learns each commit's WAL position
 * (replicas answer reads of a board only once they have replayed it). A transaction takes
 * queued jobs up to `max_batch` submissions (1..4000), and always at least one job whole. When
 * the last transaction answered two jobs or more, the next one waits up to `gather_us` (0: never)
 * for as many new jobs to arrive after its answers: clients that wait for their answers send
 * again, and one transaction takes them all instead of every other one (writer.gather_us; after
 * a wait that ran out, 1, 2, 4 ... 64 of those transactions go without). A transaction that
 * changes `rank_bucket_rows` (refresh.rank_bucket_rows) standings or more of a window re-cuts that
 * window's rank buckets before it commits (ws_recut_sql). */
MUST_USE writer_t *writer_new(pg_pool_t *primary, pg_router_t *router, redis_pool_t *redis, rebuilder_t *rebuilder, l1_t *l1,
                              rank_tier_t *tier, size_t max_batch, int gather_us, int rank_bucket_rows);
/* Commit what is queued, stop the thread, free the writer. */
void writer_free(writer_t *w);

/* From now on answer new jobs 503 at once (shutdown); queued ones are still committed. */
void writer_close(writer_t *w);

/* Queue a job; its done() is called from the writer thread (or at once, 503, once closed). Never blocks on I/O. */
void writer_enqueue(writer_t *w, write_job_t *job);

/* Apply `n` submissions in one transaction (the writer thread's step; also usable directly). */
void writer_submit(writer_t *w, write_item_t *items, size_t n);

typedef struct {
    size_t queued;             /* submissions waiting for a transaction */
    unsigned long long batches; /* transactions run so far */
    unsigned long long gathers_came; /* of them, those that waited for the clients answered last, and all came */
    unsigned long long gathers_in_vain; /* those that waited for them the whole writer.gather_us */
    long long last_batch_ms;    /* how long the last one took, answers included */
    unsigned long long league_placed; /* players placed in a league's cohort (first standings) */
    unsigned long long hints_carried; /* hints (a transaction's changes again, after Redis) sent inside the next transaction */
    unsigned long long hints_alone;   /* hints sent in a transaction of their own */
} writer_stats_t;
/* What the writer is doing (zeros for NULL); for /metrics. */
void writer_stats(writer_t *w, writer_stats_t *out);

/* Free the responses of items. */
void writer_items_clear(write_item_t *items, size_t n);

#endif
