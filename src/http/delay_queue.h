/*
 * http/delay_queue.h — calls made later, in the order of their due times, on a thread of the
 * queue's own.
 *
 * The server parks a refusal here (a 429 to a client that keeps sending past its limit): its
 * connection suspended, it is resumed when its time comes, so that a client that ignores
 * Retry-After gets at most one refusal per connection per pause instead of as many as it can
 * send. The clock is the monotonic one (util/clock.h).
 */
#ifndef RANKD_HTTP_DELAY_QUEUE_H
#define RANKD_HTTP_DELAY_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "util/must_use.h"

typedef struct delay_queue delay_queue_t;
typedef void (*delay_fn)(void *arg);

/* A queue and its thread; NULL when the thread cannot be started. */
MUST_USE delay_queue_t *delay_queue_start(void);
/* Call fn(arg) on the queue's thread at monotonic time `due_ms` (at once if past). */
void delay_queue_push(delay_queue_t *q, int64_t due_ms, delay_fn fn, void *arg);
/* Call every waiting fn now (a shutdown answers what it parked); later pushes are called at once. */
void delay_queue_flush(delay_queue_t *q);
/* Calls waiting now. */
size_t delay_queue_waiting(delay_queue_t *q);
/* Flush, stop the thread and free the queue. */
void delay_queue_stop(delay_queue_t *q);

#endif
