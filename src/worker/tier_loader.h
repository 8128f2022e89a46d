/*
 * worker/tier_loader.h — the thread that loads windows into the rank tier (cache/rank_tier.h)
 * from the primary (store/tier_load.h), one at a time, and drops the windows no read asked for
 * within the idle time.
 */
#ifndef RANKD_WORKER_TIER_LOADER_H
#define RANKD_WORKER_TIER_LOADER_H

#include <stdint.h>

#include "cache/rank_tier.h"

typedef struct tier_loader tier_loader_t;

/* NULL when tier is NULL (off) or the thread cannot start. */
tier_loader_t *tier_loader_start(rank_tier_t *tier, const char *conninfo, int connect_timeout_s, int64_t idle_ms);
void tier_loader_stop(tier_loader_t *l);

#endif
