/*
 * worker/events.h — the sender of end-of-window events (API.md, "Competitions"): a thread that,
 * once a second, claims the events due (store/events.h: every instance runs one, SKIP LOCKED
 * keeps two from sending one event at once) and POSTs each to its webhook with libcurl, signed
 * (X-Rankd-Signature: sha256=<hex HMAC-SHA256 of the body>), within 10 s. A 2xx delivers it;
 * anything else is tried again with the same id and body, 15 s later, then twice as long each
 * time up to an hour, until 24 h after the event was made. Times follow the wall clock
 * (util/clock.h, injectable).
 */
#ifndef RANKD_WORKER_EVENTS_H
#define RANKD_WORKER_EVENTS_H

#include <stdint.h>

#include "store/pg_pool.h"

typedef struct events events_t;

typedef struct {
    uint64_t delivered;  /* events a webhook took (2xx) */
    uint64_t retried;    /* tries that failed, to be made again */
    uint64_t given_up;   /* events still refused 24 h after they were made */
} events_stats_t;

/* Start the sender on `primary` (NULL: none), looking for due events every `interval_ms`. */
events_t *events_start(pg_pool_t *primary, int interval_ms);
/* Stop it (after the try in flight, at most its 10 s) and free it; NULL is fine. */
void events_stop(events_t *e);
void events_stats(events_t *e, events_stats_t *out);

/* The delay before try number `attempts` + 1 of an event whose try `attempts` failed (pure). */
int64_t events_backoff_ms(int attempts);

#endif
