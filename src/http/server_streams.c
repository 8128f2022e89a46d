/*
 * http/server_streams.c — the streamed answers under way (exports), kept where a drain can cut
 * them.
 *
 * Each holds the server's reference and its socket until its request ends; a drain cuts them
 * all, and one that begins while the server drains is cut at once.
 */
#include <pthread.h>
#include <sys/socket.h>

#include "http/server.h"
#include "http/server_conn.h"
#include "util/alloc.h"

/* Cut a streamed answer (shutdown): its producer stops, and its socket is shut so that
 * libmicrohttpd ends the connection even when the client reads nothing (it would otherwise wait
 * for the socket to take more bytes until the idle timeout). Under s->streams_mu. */
static void cut_stream(http_stream_t *st, int fd)
{
    http_stream_cancel(st);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/* Keep `st` (with the server's own hold) where a drain can cut it, until the request ends. */
void track_stream(conn_ctx_t *cx, struct MHD_Connection *conn, http_stream_t *st)
{
    http_server_t *s = cx->server;
    http_stream_hold(st);
    cx->stream = st;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? ci->connect_fd : -1;
    pthread_mutex_lock(&s->streams_mu);
    if (s->n_streams == s->cap_streams) {
        s->cap_streams = s->cap_streams ? 2 * s->cap_streams : 8;
        s->streams = xrealloc(s->streams, s->cap_streams * sizeof *s->streams);
        s->stream_fds = xrealloc(s->stream_fds, s->cap_streams * sizeof *s->stream_fds);
    }
    s->streams[s->n_streams] = st;
    s->stream_fds[s->n_streams++] = fd;
    if (s->streams_cut && !http_stream_ended_whole(st)) /* an export that began while the server drained */
        cut_stream(st, fd);
    pthread_mutex_unlock(&s->streams_mu);
}

void untrack_stream(conn_ctx_t *cx)
{
    http_server_t *s = cx->server;
    pthread_mutex_lock(&s->streams_mu);
    for (size_t i = 0; i < s->n_streams; i++)
        if (s->streams[i] == cx->stream) {
            s->n_streams--;
            s->streams[i] = s->streams[s->n_streams];
            s->stream_fds[i] = s->stream_fds[s->n_streams];
            break;
        }
    pthread_mutex_unlock(&s->streams_mu);
    http_stream_drop(cx->stream);
    cx->stream = NULL;
}

void http_server_cut_stream(http_server_t *s, http_stream_t *st)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->streams_mu);
    for (size_t i = 0; i < s->n_streams; i++)
        if (s->streams[i] == st) /* tracked: its socket is still this request's */
            cut_stream(st, s->stream_fds[i]);
    pthread_mutex_unlock(&s->streams_mu);
}

/* Streamed answers still going (exports): their producers stop, and a suspended one is resumed
 * to end with an error, so that the client sees an incomplete body (libmicrohttpd cannot stop
 * with a connection suspended, and a slow reader must not hold a shutdown). At the drain's start
 * (`all` false) an answer its producer already ended whole (a live stream closed at the stop)
 * keeps going: its last bytes are its clean end; at the server's stop every one is cut. */
void cancel_streams(http_server_t *s, bool all)
{
    pthread_mutex_lock(&s->streams_mu);
    s->streams_cut = true;
    for (size_t i = 0; i < s->n_streams; i++)
        if (all || !http_stream_ended_whole(s->streams[i]))
            cut_stream(s->streams[i], s->stream_fds[i]);
    pthread_mutex_unlock(&s->streams_mu);
}
