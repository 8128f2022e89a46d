/*
 * worker/prober.h — what /readyz and /metrics say of Redis and of the views, gathered by a
 * thread of its own once a second.
 *
 * The probes answer on the event loop from this state, never queued behind user reads on the
 * offload threads, and no request to them makes rankd ping Redis or query PostgreSQL: a
 * backed-up pool cannot make a load balancer drop a healthy instance, and anyone scraping
 * /metrics in a loop costs nothing but the rendering. (PostgreSQL nodes' states come from the
 * router's own health threads: already in memory.)
 */
#ifndef RANKD_WORKER_PROBER_H
#define RANKD_WORKER_PROBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/pg_router.h"
#include "store/redis.h"
#include "store/views.h"

#define PROBER_VIEWS_MAX 8

typedef struct prober prober_t;

typedef struct {
    const char *redis;          /* redis_state(): "ok", "down" or "disabled" (a static string) */
    bool views_known;           /* false until a PostgreSQL node answered the views' ages */
    view_age_t views[PROBER_VIEWS_MAX]; /* as of `gathered_ms` */
    size_t n_views;
    int64_t gathered_ms;        /* monotonic ms of the last round */
} probe_state_t;

/* Gather once, then start the thread that gathers again every `interval_ms`. Never NULL. */
prober_t *prober_start(pg_router_t *router, redis_pool_t *redis, int interval_ms);
/* A copy of the last round's state; Redis "down" at once when requests found it down since. */
void prober_state(prober_t *p, probe_state_t *out);
/* Stop the thread and free `p` (NULL is fine). */
void prober_stop(prober_t *p);

#endif
