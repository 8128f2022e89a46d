/*
 * obs/metrics.h — Prometheus metrics: request counts and latencies per
 * route, and counters of what the stores did.
 *
 * One metrics_t is shared by every thread; it holds only C11 atomics, so
 * recording never takes a lock and never blocks a request.
 */
#ifndef RANKD_OBS_METRICS_H
#define RANKD_OBS_METRICS_H

#include <stdint.h>

#include "util/buf.h"

typedef struct metrics metrics_t;

typedef enum {
    METRIC_SUBMISSIONS = 0,   /* submissions accepted */
    METRIC_REDIS_READS,       /* reads answered from Redis */
    METRIC_PG_READS,          /* reads answered from PostgreSQL */
    METRIC_TIER_READS,        /* reads answered from the in-process rank tier */
    METRIC_REDIS_COLD,        /* reads that found a window cold */
    METRIC_COLD_WAITS,        /* of those, reads that waited for another read of the window */
    METRIC_HTTP_UNAVAILABLE,  /* requests answered 503 */
    METRIC_ENCODED_OFF_LOOP,  /* large answers compressed on the encoder thread */
    METRIC_AUTH_FAILED,       /* requests with a key that is no configured key */
    METRIC_AUTH_THROTTLED,    /* of those and of strong reads refused, 429: their address was refused too often */
    METRIC_STRONG_FORBIDDEN,  /* consistency=strong reads without a write or admin key */
    METRIC_PLAYER_TOKENS_ACCEPTED, /* requests authenticated by a player token */
    METRIC_PLAYER_TOKENS_REFUSED,  /* requests whose bearer was neither a key nor a valid player token */
    METRIC_PLAYER_TOKENS_MINTED,   /* player tokens minted (POST /v1/players/{player}/tokens) */
    METRIC_TOURNAMENT_JOINED, /* joins that took a place in a tournament's slot */
    METRIC_TOURNAMENT_JOINED_AGAIN, /* joins of a player who had joined already */
    METRIC_TOURNAMENT_FULL,   /* joins refused: the slot was full */
    METRIC_TOURNAMENT_REFUSED, /* submissions a tournament's rules refused (not_active, not_joined, ...) */
    METRIC_COUNTERS,
} metric_counter_t;

#define METRICS_ROUTES_MAX 32

metrics_t *metrics_new(void);
void metrics_free(metrics_t *m);

/* Record one answered request on route `route` (< METRICS_ROUTES_MAX). */
void metrics_observe(metrics_t *m, int route, int status, double seconds);
void metrics_add(metrics_t *m, metric_counter_t which, uint64_t n);

/* Render the text exposition format; route_name(i) names route i for i < n_routes. */
void metrics_render(metrics_t *m, buf_t *out, const char *(*route_name)(int), int n_routes);
/* Append the allocator's view of the heap (bytes in use, bytes free but kept): what RSS is made
 * of, so a growing RSS can be told apart as a leak or as fragmentation. Nothing where the C
 * library cannot say, or under AddressSanitizer (its own allocator serves malloc). */
void metrics_render_heap(buf_t *out);
/* Append Prometheus's standard process series (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds),
 * from /proc; a series /proc cannot give is left out. */
void metrics_render_process(buf_t *out);

#endif
