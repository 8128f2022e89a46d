/*
 * worker/periodic.h — a thread that calls one function at a fixed interval until it is stopped:
 * the loop that the events' sender and the analyzer share. The interval is measured on the
 * monotonic clock from the end of one call to the start of the next; a stop wakes the sleep at
 * once and waits for a call in progress to return.
 */
#ifndef RANKD_WORKER_PERIODIC_H
#define RANKD_WORKER_PERIODIC_H

#include "util/must_use.h"

typedef struct periodic periodic_t;

/* Start a thread calling tick(arg) now, then every `interval_ms` (1000 when not positive);
 * NULL when the thread cannot start. `arg` must outlive periodic_stop. */
MUST_USE periodic_t *periodic_start(void (*tick)(void *arg), void *arg, int interval_ms);
/* Stop the thread (after the call in progress) and free it; NULL is fine. */
void periodic_stop(periodic_t *p);

#endif
