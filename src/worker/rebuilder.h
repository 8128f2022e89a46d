/*
 * worker/rebuilder.h — a background thread that reloads cold Redis windows
 * from PostgreSQL.
 *
 * Readers that find a window cold answer from PostgreSQL and call
 * rebuilder_request(); requests for a window already queued are folded.
 * The thread also notices Redis coming back after an outage and marks every
 * window cold, since what Redis holds then may be stale or gone. No lock is
 * held while talking to Redis or PostgreSQL. With replicas, a window is read from one that has
 * replayed the primary's position as of after the window was cleared (rb_rebuild_from), never
 * from one behind it; else from the rebuilder's own connection to the primary.
 */
#ifndef RANKD_WORKER_REBUILDER_H
#define RANKD_WORKER_REBUILDER_H

#include <stdint.h>

#include "core/model.h"
#include "store/pg_pool.h"
#include "store/pg_router.h"
#include "store/redis.h"
#include "util/must_use.h"

typedef struct rebuilder rebuilder_t;

/* `primary`: a pool of the rebuilder's own; `router`: the replicas a window may load from. */
MUST_USE rebuilder_t *rebuilder_start(pg_pool_t *primary, pg_router_t *router, redis_pool_t *redis);
/* Stop the thread and free everything (pending requests are dropped). */
void rebuilder_stop(rebuilder_t *r);
/* Ask for window `day` of board `b` (copied) to be reloaded. Never blocks on I/O. */
void rebuilder_request(rebuilder_t *r, const board_t *b, int64_t day);

#endif
