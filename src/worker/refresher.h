/*
 * worker/refresher.h — the periodic maintenance thread of `rankd serve`.
 *
 * Of several instances, only the upkeep leader runs the jobs (a PostgreSQL advisory lock held by
 * a session of its own; another instance takes over within about a second of its death). When
 * it begins leading and every refresh.interval_s it refreshes the materialized views when what
 * they are computed from changed since its last refresh (upkeep_write_mark; a `rankd refresh`
 * from cron running meanwhile is kept apart by an advisory lock), creates the submission
 * log's monthly partitions ahead, forgets idempotency keys older than
 * 25 hours, removes the Redis keys of windows older than the previous one,
 * and removes the log rows of deleted boards (a few partitions
 * per statement). It sleeps on a condition variable, so stopping is immediate.
 */
#ifndef RANKD_WORKER_REFRESHER_H
#define RANKD_WORKER_REFRESHER_H

#include "store/pg_pool.h"
#include "store/redis.h"

typedef struct refresher refresher_t;

/* Start the thread; NULL when interval_s is 0 (this instance never leads) or the thread cannot
 * start. `conninfo` is the primary's, for the leader's own session. */
refresher_t *refresher_start(pg_pool_t *primary, redis_pool_t *redis, int interval_s, const char *conninfo,
                             int connect_timeout_s);
/* Whether this instance leads the upkeep jobs now (false for NULL). */
bool refresher_leads(const refresher_t *r);
/* Upkeep rounds that found nothing written since the last refresh and left the views alone. */
unsigned long long refresher_unchanged_rounds(const refresher_t *r);
void refresher_stop(refresher_t *r);

#endif
