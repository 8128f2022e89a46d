/*
 * worker/mark_watch.h — sees every number a commit took reach the window's Redis mark.
 *
 * A window this instance trusts in Redis misses a change for good when its writer, on another
 * instance, died between the commit and the Redis update (kill -9, a crash): no outage shows it,
 * and that writer sends no R notice (store/redis.h). Each commit's number comes in a notice
 * (redis_window_heard); this thread, every 200 ms, reads the marks of the trusted windows with a
 * number not yet seen reached (one EVAL each, a few per tick on a busy server) and tells the pool
 * what it found. A window whose mark stays behind a number heard more than a second ago is read
 * from PostgreSQL (redis_window_trusted), and its reads ask the rebuilder to compare the two
 * again, which rebuilds it. The leader's audit (worker/refresher.c) found such a window too, but
 * two rounds after, and only on the leader.
 */
#ifndef RANKD_WORKER_MARK_WATCH_H
#define RANKD_WORKER_MARK_WATCH_H

#include <stdint.h>

#include "store/redis.h"

typedef struct mark_watch mark_watch_t;

/* Start the thread on `redis` (NULL: none, and NULL returned). */
mark_watch_t *mark_watch_start(redis_pool_t *redis);
/* Stop it (after the look in progress) and free it; NULL is fine. */
void mark_watch_stop(mark_watch_t *m);
/* Marks read, and found behind a number heard more than a second ago. */
void mark_watch_stats(mark_watch_t *m, uint64_t *looks, uint64_t *behind);

#endif
