/*
 * http/body_pipe.h — a request body handed on while it arrives (API.md: an import's body is
 * streamed, and rankd's memory stays bounded whatever its size).
 *
 * The server writes the bytes libmicrohttpd reads from the socket; a consumer thread reads them.
 * Between the two is a buffer of at most `capacity` bytes: the consumer waits while it is empty,
 * and the connection is suspended while it is full (libmicrohttpd then stops reading the socket,
 * and TCP holds the client back), so neither side polls and a fast client cannot fill memory.
 * Shared by the two sides and freed by the last to let go (http_body_pipe_release).
 */
#ifndef RANKD_HTTP_BODY_PIPE_H
#define RANKD_HTTP_BODY_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/must_use.h"

typedef struct http_body_pipe http_body_pipe_t;

/* A new pipe, held once (the server's hold). */
MUST_USE http_body_pipe_t *http_body_pipe_new(size_t capacity);
/* One more hold (the consumer's). */
void http_body_pipe_hold(http_body_pipe_t *p);
/* One side lets go; the last frees the pipe. */
void http_body_pipe_release(http_body_pipe_t *p);

/* Server: copy in what fits of data[0..len), never waiting; the bytes taken. Once the consumer
 * gave up (http_body_pipe_failed), every byte is taken and dropped. */
size_t http_body_pipe_offer(http_body_pipe_t *p, const char *data, size_t len);
/* Server: call wake(arg) once, from the consumer's thread, when there is room again or the
 * consumer gave up. False when there is room already (offer again instead; wake is not kept). */
MUST_USE bool http_body_pipe_wait_room(http_body_pipe_t *p, void (*wake)(void *arg), void *arg);
/* Server: the body ended whole. */
void http_body_pipe_close(http_body_pipe_t *p);
/* Server: the body will not end (the connection is ending): the consumer's read fails. A wake
 * still registered is dropped, not called. */
void http_body_pipe_abort(http_body_pipe_t *p);

/* Consumer: up to `max` bytes into buf, waiting for them: the count, 0 at the body's end, -1
 * when it was aborted. */
ssize_t http_body_pipe_read(http_body_pipe_t *p, char *buf, size_t max);
/* Consumer: it reads nothing more (it failed); a server waiting for room is woken. */
void http_body_pipe_give_up(http_body_pipe_t *p);
/* Whether the consumer gave up. */
bool http_body_pipe_failed(http_body_pipe_t *p);

#endif
