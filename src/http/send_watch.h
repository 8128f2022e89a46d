/*
 * http/send_watch.h — answers on their way to clients: the bytes they hold, and a deadline to
 * be read by.
 *
 * A built answer stays in memory until its client has read it. Two hundred clients that ask
 * for big answers and read them a byte at a time would otherwise hold gigabytes, as long as
 * they like. Every answer large enough not to fit at once in a socket's buffer is watched from
 * the moment it is queued until libmicrohttpd is done with it:
 * - its bytes count against a budget (http.max_response_bytes_in_flight): one that does not fit
 *   is not sent (the server answers 503 instead);
 * - its connection is shut down when the answer is not all sent within http.send_timeout_s
 *   (libmicrohttpd then ends the request, and send_watch_done is called as for any other).
 * The watcher's own thread keeps the deadlines; the clock is the monotonic one (util/clock.h).
 */
#ifndef RANKD_HTTP_SEND_WATCH_H
#define RANKD_HTTP_SEND_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/must_use.h"

typedef struct send_watch send_watch_t;
typedef struct send_ticket send_ticket_t;

/* Answers of this many bytes or more are watched; smaller ones go out in one send. */
#define SEND_WATCH_MIN_BYTES (16 * 1024)

/* A watcher for a budget of `max_bytes` (0: no budget) and answers that must be read within
 * `timeout_ms`; NULL when its thread cannot be started. */
MUST_USE send_watch_t *send_watch_start(size_t max_bytes, int64_t timeout_ms);

/* An answer of `bytes` about to be queued on socket `fd`: watched until send_watch_done().
 * NULL (nothing taken) when it does not fit the budget: answers in flight plus this one past
 * it (one answer alone always fits). The ticket belongs to the watcher; the caller hands it
 * back exactly once. */
send_ticket_t *send_watch_begin(send_watch_t *w, int fd, size_t bytes);

/* libmicrohttpd is done with the answer (sent, or its connection ended): its bytes are given
 * back and the ticket freed. Must come before the socket is closed (libmicrohttpd's completion
 * callback does), so that the watcher never shuts down a reused descriptor. NULL is fine. */
void send_watch_done(send_watch_t *w, send_ticket_t *t);

/* For /metrics: bytes of watched answers now, and connections cut at their deadline so far. */
size_t send_watch_bytes(send_watch_t *w);
uint64_t send_watch_cut(send_watch_t *w);

/* Stop the thread and free the watcher (tickets still out are freed with it: call after the
 * HTTP daemon has stopped). NULL is fine. */
void send_watch_stop(send_watch_t *w);

#endif
