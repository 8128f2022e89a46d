/*
 * http/stream_writer.h — one thread that watches the sockets of streams taken from
 * libmicrohttpd (http_stream_take_socket: live streams, once their headers are sent).
 *
 * A live listener idles for minutes between events; inside libmicrohttpd each one keeps its
 * connection's whole memory pool (16 KiB, zeroed, so resident). Taken out, it costs its stream
 * and a socket. The thread tells a stream when its socket can take the bytes a send left over,
 * and when the client closed, so that the stream closes the socket on this thread: its last
 * event cannot race a close. Registered entries are the streams themselves; the writer never
 * frees one (the stream's own socket hold does, in the `ready` call that closes it).
 */
#ifndef RANKD_HTTP_STREAM_WRITER_H
#define RANKD_HTTP_STREAM_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stream_writer stream_writer_t;

/* What the thread calls for a watched socket's epoll `events` (EPOLLIN, EPOLLOUT, EPOLLHUP...),
 * with the entry's `arg`; `stopping`: close it whatever is left (http_stream_socket_ready). */
typedef void (*stream_writer_ready_fn)(void *arg, uint32_t events, bool stopping);

/* A running writer thread calling `ready`, or NULL (errno: epoll or the thread failed). A stream
 * its producer ended whose client has not read the rest `linger_ms` later is closed (its `ready`
 * called with EPOLLHUP): a client that stops reading would otherwise keep its socket and its
 * buffer for as long as it stays connected. */
stream_writer_t *stream_writer_start(stream_writer_ready_fn ready, int linger_ms);
/* Wait up to `flush_ms` for the streams still open to end and flush (they were ended by their
 * producers), then close the sockets of those left, stop the thread and free the writer. */
void stream_writer_stop(stream_writer_t *w, int flush_ms);

/* Watch `fd` for `arg` (its reads and its close; its room when `out`). False when the writer is
 * stopping or epoll refused. `slot` is the entry's own, set here, given back to unwatch. */
bool stream_writer_watch(stream_writer_t *w, int fd, void *arg, size_t *slot);
/* The stream at `slot` was ended by its producer: it lingers `linger_ms` at most from now. */
void stream_writer_ended(stream_writer_t *w, const size_t *slot);
/* Ask (or stop asking) to hear when `fd` can take more bytes. */
void stream_writer_want_out(stream_writer_t *w, int fd, void *arg, bool out);
/* Forget `fd` (before its close); `slot` is the one watch was given (kept right as entries
 * move). Called on the writer's thread, or by stream_writer_stop's caller once it has stopped. */
void stream_writer_unwatch(stream_writer_t *w, int fd, size_t *slot);
/* Streams whose sockets are watched now. */
size_t stream_writer_count(stream_writer_t *w);

#endif
