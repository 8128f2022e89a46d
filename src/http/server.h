/*
 * http/server.h — the HTTP front: libmicrohttpd with an epoll thread pool.
 *
 * Each worker thread runs its own epoll loop; a request's handler runs on
 * the worker that owns its connection. The server checks what can be
 * checked from the headers alone (route, method, key, body size) before a
 * body is read, so an oversized body is refused with 413 unread.
 */
#ifndef RANKD_HTTP_SERVER_H
#define RANKD_HTTP_SERVER_H

#include <stddef.h>

#include "http/server_deps.h"

typedef struct http_server http_server_t;

/* Listen and serve; NULL with a message in `err` on failure. */
http_server_t *http_server_start(const http_server_deps_t *deps, char *err, size_t errlen);

/* What the server counts, for /metrics: a snapshot. */
typedef struct {
    int in_flight;                        /* requests received and not yet finished */
    size_t body_bytes, body_addresses;    /* request bodies being received (http.body_bytes_per_ip) */
    unsigned long long refusals_delayed;  /* 429s held back http.refusal_delay_ms, since start */
    size_t parked;                        /* connections suspended in the delay queue now */
    int strong_waiting;                   /* strong reads waiting for a slot */
    int room_waiting;                     /* reads waiting for answers in flight to free room */
    unsigned long long room_refused;      /* reads refused 503 because that room did not come */
    size_t response_bytes, response_addresses; /* large answers not yet read by their clients */
    unsigned long long send_timeouts;     /* connections cut for not reading an answer in time */
    unsigned long long first_refused_400, first_refused_414, first_refused_431, first_refused_505;
    int awaiting_request;                 /* connections the acceptor holds */
    unsigned long long closed_awaiting;   /* connections closed before their first request */
} http_server_counts_t;

/* The counts of `s` into *out (all zero when s is NULL: not started). */
void http_server_counts(const http_server_t *s, http_server_counts_t *out);

/*
 * Stop accepting connections and wait up to `timeout_ms` for in-flight
 * requests to be answered; each connection is closed after its answer.
 * At the deadline, a request still arriving (a body sent slowly) or whose
 * answer its client is not reading has its connection cut (and logged);
 * one whose work is under way is left to finish. Returns the number still
 * in flight: requests whose work has not finished. May be called more than once.
 */
int http_server_drain(http_server_t *s, int timeout_ms);

/* Close every connection and free the server. */
void http_server_stop(http_server_t *s);
/* Cut the streamed answer `st` now if it is still on its way (a live listener that does not
 * read): its socket is shut, and libmicrohttpd ends the request. */
struct http_stream;
void http_server_cut_stream(http_server_t *s, struct http_stream *st);

#endif
