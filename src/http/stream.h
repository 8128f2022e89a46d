/*
 * http/stream.h — an answer written while it is sent (API.md: exports are streamed).
 *
 * A producer thread writes bytes; libmicrohttpd reads them as the socket takes them. Between
 * the two is a buffer of at most `max_buffered` bytes: the producer waits while it is full, and
 * the connection is suspended while it is empty, so neither side polls and a slow client holds
 * no more than the buffer. The stream is shared by the two sides and freed by the last to let go:
 * the producer with http_stream_end(), the server with http_stream_release() (libmicrohttpd's
 * free callback, or the request's end when the answer never went out), and any extra hold with
 * http_stream_drop().
 *
 * A stream its producer marks takeable (a live stream, which idles for minutes between events)
 * leaves libmicrohttpd once its headers are sent: the stream writes the socket itself, from the
 * producer's thread, and a stream writer's thread (http/stream_writer.h) sends what a send left
 * over and closes the socket when the client does or the stream ends. Its connection's memory
 * pool is freed then. Such a stream is written with http_stream_offer() only.
 */
#ifndef RANKD_HTTP_STREAM_H
#define RANKD_HTTP_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "util/must_use.h"

struct MHD_Connection;
typedef struct http_stream http_stream_t;
typedef struct stream_writer stream_writer_t;

/* A new stream held by both sides. */
http_stream_t *http_stream_new(size_t max_buffered);

/* Producer, before the server has the stream: its socket may be taken from libmicrohttpd. */
void http_stream_takeable(http_stream_t *s);
/* Producer: append `len` bytes, waiting while the buffer is full. False once the reader is gone
 * (the client closed, or the server is stopping): stop producing and end the stream. */
MUST_USE bool http_stream_write(http_stream_t *s, const void *data, size_t len);
/* Producer: append all `len` bytes if they fit in the buffer now, without waiting: 1 written,
 * 0 no room (nothing written: a reader that does not keep up), -1 the reader is gone. */
MUST_USE int http_stream_offer(http_stream_t *s, const void *data, size_t len);
/* Producer: how long (ms, before monotonic `now_ms`) bytes have waited in the buffer without the
 * reader taking any: 0 when none wait. A reader that takes nothing for long does not read. */
int64_t http_stream_unread_ms(http_stream_t *s, int64_t now_ms);
/* Producer: no more bytes. `ok` false ends the answer with an error (the client sees the
 * connection close before the chunked body's end). Lets go of the producer's hold. */
void http_stream_end(http_stream_t *s, bool ok);

/* Server: one more hold (the server's own, beside libmicrohttpd's), dropped with http_stream_drop(). */
void http_stream_hold(http_stream_t *s);
void http_stream_drop(http_stream_t *s);
/* Server: the connection the answer goes to, before libmicrohttpd first reads; where a taken
 * socket is watched, and whether the body is chunked (libmicrohttpd chunks an answer of unknown
 * length to an HTTP/1.1 client). */
void http_stream_attach(http_stream_t *s, struct MHD_Connection *conn, stream_writer_t *writer, bool chunked);
/* Server: the stream writes socket `fd` (duplicated; the caller keeps and closes its own) from
 * now on, its body chunked or not, watched by `writer`. False when it could not (the stream goes
 * on as it was). http_stream_read does this at its first call for a takeable stream. */
MUST_USE bool http_stream_take_socket(http_stream_t *s, int fd, stream_writer_t *writer, bool chunked);
/* Writer's thread: the taken socket's epoll `events` (EPOLLIN, EPOLLOUT, EPOLLHUP...); `stopping`
 * closes it whatever is left. The socket is closed here, and the stream's hold on it dropped,
 * once the client is gone or all of an ended stream is sent. */
void http_stream_socket_ready(void *s, uint32_t events, bool stopping);
/* Server: libmicrohttpd's content reader (MHD_ContentReaderCallback) on `cls` = the stream. */
ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max);
/* Server: the reader is gone; lets go of the server's hold (MHD_ContentReaderFreeCallback). */
void http_stream_release(void *cls);
/* Server: whether the producer ended the answer whole (what is left is in the buffer). */
bool http_stream_ended_whole(http_stream_t *s);
/* Server: the answer is cut (shutdown): the producer's write fails from now on, and the reader,
 * woken if suspended, ends with an error at its next call, bytes still buffered or not. */
void http_stream_cancel(http_stream_t *s);

#endif
