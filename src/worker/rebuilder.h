/*
 * worker/rebuilder.h — a background thread that checks Redis windows against PostgreSQL and
 * reloads those that are cold or missed a write.
 *
 * Readers that find a window cold, or not yet checked since this instance started or Redis's
 * last outage (redis_window_trusted), answer from PostgreSQL and call rebuilder_request();
 * requests for a window already queued are folded. The thread also pings Redis each second and
 * marks cold the windows whose committed changes Redis did not take (rebuilder.c says how). No lock is
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
/* Ask for window `day` of board `b` (copied) to be checked, and reloaded if cold or behind.
 * Never blocks on I/O. */
void rebuilder_request(rebuilder_t *r, const board_t *b, int64_t day);

typedef struct {
    unsigned long long verified; /* windows whose Redis mark was found to reach PostgreSQL's */
    unsigned long long behind;   /* windows found to miss changes (or to be ahead), then rebuilt */
    unsigned long long rebuilt;  /* windows loaded from PostgreSQL */
} rebuilder_stats_t;
/* What the thread did so far (zeros for NULL). */
void rebuilder_stats(rebuilder_t *r, rebuilder_stats_t *out);

#endif
