/*
 * store/tier_load.h — a window's standings for the rank tier (cache/rank_tier.h): every standing
 * in rank order and the number of the last transaction that changed the window, from one
 * snapshot, so that the tier can go on from that number with the notices that follow.
 */
#ifndef RANKD_STORE_TIER_LOAD_H
#define RANKD_STORE_TIER_LOAD_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/q_status.h"
#include "util/must_use.h"

typedef struct {
    /* Each standing, in rank order (its strings valid during the call). */
    void (*row)(void *arg, const char *player, size_t player_len, int64_t sort_key, int64_t achieved_ms,
                const char *metadata, size_t metadata_len);
    /* Asked between chunks: true stops the load (Q_UNAVAILABLE). NULL: never. */
    bool (*cancelled)(void *arg);
    void *arg;
} tier_load_sink_t;

/* Read window (gen, day) on the primary connection c into sink; *seq: window_counts.seq as of
 * the same snapshot (0 when nothing was ever committed to it). */
MUST_USE q_status_t tier_load_window(PGconn *c, int64_t gen, int64_t day, const tier_load_sink_t *sink, int64_t *seq);

#endif
