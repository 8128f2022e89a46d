/* http/stream.c — an answer written while it is sent (see stream.h). */
#include "http/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <microhttpd.h>

#include "http/stream_writer.h"
#include "util/alloc.h"
#include "util/clock.h"

struct http_stream {
    pthread_mutex_t mu;
    pthread_cond_t room;         /* signalled when the reader took bytes or left */
    char *buf;                   /* cap bytes, owned, grown as needed up to max and let go when
                                  * all is read; [head, head + len) unread */
    size_t max, cap, head, len;
    int64_t waiting_ms;          /* monotonic: since when bytes wait with none taken (0: none wait) */
    struct MHD_Connection *conn; /* set by the server before the first read */
    bool suspended;              /* the reader found nothing and waits for a resume */
    bool ended, ok;              /* the producer is done, and how */
    bool reader_gone;            /* the connection is done with the answer, or cancelled */
    bool cancelled;              /* cut by the server (shutdown): nothing more is served */
    int holds;                   /* 2 at first: the producer's and the server's; +1 while taken */
    /* Taken from libmicrohttpd (http_stream_take_socket): the stream writes its socket itself. */
    bool takeable;               /* the producer allows it (a live stream) */
    stream_writer_t *writer;     /* where a taken socket is watched (set with the connection) */
    bool chunked;                /* the body is chunked (HTTP/1.1): each write is framed */
    bool taken;                  /* libmicrohttpd let go of the connection: the socket is ours */
    int fd;                      /* the taken socket, -1 when not taken or closed */
    size_t slot;                 /* its place in the writer */
};

http_stream_t *http_stream_new(size_t max_buffered)
{
    http_stream_t *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->room, NULL);
    s->max = max_buffered ? max_buffered : 65536;
    s->holds = 2;
    s->fd = -1;
    return s;
}

void http_stream_takeable(http_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->takeable = true;
    pthread_mutex_unlock(&s->mu);
}

/* Drop one hold under s->mu (which it releases); the last frees the stream. */
static void let_go_locked(http_stream_t *s)
{
    bool last = --s->holds == 0;
    pthread_mutex_unlock(&s->mu);
    if (!last)
        return;
    pthread_cond_destroy(&s->room);
    pthread_mutex_destroy(&s->mu);
    free(s->buf);
    free(s);
}

/* Under s->mu: room for `len` more bytes at the buffer's end (len at most max - s->len): the
 * unread part moved to its front when it would not fit behind it, then the buffer grown. */
static void make_room(http_stream_t *s, size_t len)
{
    if (s->head + s->len + len <= s->cap)
        return;
    if (s->head > 0) {
        memmove(s->buf, s->buf + s->head, s->len);
        s->head = 0;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + len)
            cap *= 2;
        s->cap = cap < s->max ? cap : s->max;
        s->buf = xrealloc(s->buf, s->cap);
    }
}

/* Under s->mu: a taken stream's buffer sent as far as its socket takes it; the writer is asked
 * to say when it takes more (or, once all is sent of an ended stream, to close it). A send that
 * fails means the client is gone: the socket is shut, and the writer closes it. */
static void flush_locked(http_stream_t *s)
{
    while (s->len > 0 && s->fd >= 0) {
        ssize_t n = send(s->fd, s->buf + s->head, s->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            s->head += (size_t)n;
            s->len -= (size_t)n;
            s->waiting_ms = s->len ? clock_mono_ms() : 0;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            stream_writer_want_out(s->writer, s->fd, s, true);
            return;
        }
        s->reader_gone = true;
        shutdown(s->fd, SHUT_RDWR); /* the writer hears it and closes */
        return;
    }
    if (s->len == 0 && s->buf) { /* an idle stream holds no buffer */
        free(s->buf);
        s->buf = NULL;
        s->cap = 0;
        s->head = 0;
    }
    /* All is sent of an ended stream: the writer's thread closes it now (the kernel still sends
     * what it holds). Its own read side shut wakes the thread; a wait for room (EPOLLOUT) would
     * never come while a client that stopped reading keeps the socket's buffer full. */
    if (s->fd >= 0 && s->len == 0 && s->ended)
        shutdown(s->fd, SHUT_RD);
}

/* Under s->mu: wake a reader that suspended itself for want of bytes. */
static void wake_reader(http_stream_t *s)
{
    if (s->fd >= 0) {
        flush_locked(s);
        return;
    }
    if (s->suspended && s->conn) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

bool http_stream_write(http_stream_t *s, const void *data, size_t len)
{
    const char *p = data;
    pthread_mutex_lock(&s->mu);
    while (len > 0 && !s->reader_gone) {
        if (s->len >= s->max) {
            pthread_cond_wait(&s->room, &s->mu);
            continue;
        }
        size_t n = s->max - s->len;
        if (n > len)
            n = len;
        make_room(s, n);
        memcpy(s->buf + s->head + s->len, p, n);
        if (s->len == 0)
            s->waiting_ms = clock_mono_ms();
        s->len += n;
        p += n;
        len -= n;
        wake_reader(s);
    }
    bool ok = !s->reader_gone;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* Under s->mu: append `len` bytes (room made for them: at most max - s->len). */
static void append_locked(http_stream_t *s, const void *data, size_t len)
{
    if (len == 0)
        return;
    make_room(s, len);
    memcpy(s->buf + s->head + s->len, data, len);
    if (s->len == 0)
        s->waiting_ms = clock_mono_ms();
    s->len += len;
}

int http_stream_offer(http_stream_t *s, const void *data, size_t len)
{
    pthread_mutex_lock(&s->mu);
    /* A taken socket's chunked body: libmicrohttpd no longer frames the chunks. */
    char head[24];
    size_t head_len = s->taken && s->chunked && len > 0 ? (size_t)snprintf(head, sizeof head, "%zx\r\n", len) : 0;
    size_t need = len + head_len + (head_len ? 2 : 0);
    /* len may pass max by a chunk's frame (take_locked): the room left is then none */
    int got = s->reader_gone ? -1 : s->len >= s->max || need > s->max - s->len ? 0 : 1;
    if (got == 1 && len > 0) {
        append_locked(s, head, head_len);
        append_locked(s, data, len);
        if (head_len)
            append_locked(s, "\r\n", 2);
        wake_reader(s);
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}

int64_t http_stream_unread_ms(http_stream_t *s, int64_t now_ms)
{
    pthread_mutex_lock(&s->mu);
    int64_t ms = s->len && s->waiting_ms ? now_ms - s->waiting_ms : 0;
    pthread_mutex_unlock(&s->mu);
    return ms > 0 ? ms : 0;
}

void http_stream_end(http_stream_t *s, bool ok)
{
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    s->ok = ok;
    if (s->fd >= 0)
        stream_writer_ended(s->writer, &s->slot); /* what its client does not read goes in time */
    if (s->fd >= 0 && !ok) {
        s->reader_gone = true; /* cut: the client sees the body end before its last chunk */
        shutdown(s->fd, SHUT_RDWR);
    } else if (s->fd >= 0 && s->chunked) {
        if (s->len + 5 <= s->max)
            append_locked(s, "0\r\n\r\n", 5);
        else
            shutdown(s->fd, SHUT_RDWR); /* no room for the last chunk: it does not read anyway */
    }
    wake_reader(s);
    let_go_locked(s);
}

void http_stream_hold(http_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->holds++;
    pthread_mutex_unlock(&s->mu);
}

void http_stream_drop(http_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    let_go_locked(s);
}

void http_stream_attach(http_stream_t *s, struct MHD_Connection *conn, stream_writer_t *writer, bool chunked)
{
    pthread_mutex_lock(&s->mu);
    s->conn = conn;
    s->writer = writer;
    s->chunked = chunked;
    pthread_mutex_unlock(&s->mu);
}

/* Under s->mu: the socket `fd` (libmicrohttpd's, which it is about to close) is the stream's
 * own from now on, duplicated: what is buffered goes out at once, a chunk of its own. */
static bool take_locked(http_stream_t *s, int fd)
{
    int mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (mine < 0)
        return false;
    if (!stream_writer_watch(s->writer, mine, s, &s->slot)) {
        close(mine);
        return false;
    }
    /* libmicrohttpd may have corked the socket for the body it expected after the headers. */
    int off = 0, on = 1;
    (void)setsockopt(mine, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    (void)setsockopt(mine, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    s->fd = mine;
    s->taken = true;
    s->holds++; /* the socket's, let go when the writer's thread closes it */
    s->conn = NULL;
    s->suspended = false;
    if (s->len > 0 && s->chunked) {
        char head[24];
        size_t head_len = (size_t)snprintf(head, sizeof head, "%zx\r\n", s->len);
        char *framed = xmalloc(head_len + s->len + 2);
        memcpy(framed, head, head_len);
        memcpy(framed + head_len, s->buf + s->head, s->len);
        memcpy(framed + head_len + s->len, "\r\n", 2);
        free(s->buf);
        s->buf = framed;
        s->head = 0;
        s->len += head_len + 2;
        s->cap = s->len;
    }
    flush_locked(s);
    return true;
}

bool http_stream_take_socket(http_stream_t *s, int fd, stream_writer_t *writer, bool chunked)
{
    pthread_mutex_lock(&s->mu);
    s->writer = writer;
    s->chunked = chunked;
    bool taken = !s->reader_gone && !s->ended && take_locked(s, fd);
    pthread_mutex_unlock(&s->mu);
    return taken;
}

void http_stream_socket_ready(void *arg, uint32_t events, bool stopping)
{
    http_stream_t *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->fd < 0) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    bool gone = stopping || s->reader_gone || (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP));
    if (!gone && (events & EPOLLIN)) { /* an event stream's client sends nothing more but its close */
        char sink[256];
        /* A few reads a call: one client that keeps sending must not keep this thread from the
         * others (its socket, still readable, comes back at the next wait). */
        for (int reads = 0; reads < 16; reads++) {
            ssize_t n = recv(s->fd, sink, sizeof sink, MSG_DONTWAIT);
            if (n > 0 || (n < 0 && errno == EINTR))
                continue;
            gone = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
            break;
        }
    }
    if (!gone && (events & EPOLLOUT))
        flush_locked(s);
    gone = gone || s->reader_gone;
    if (!gone && !(s->ended && s->len == 0)) {
        if (s->len == 0 && (events & EPOLLOUT))
            stream_writer_want_out(s->writer, s->fd, s, false);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    stream_writer_unwatch(s->writer, s->fd, &s->slot);
    close(s->fd);
    s->fd = -1;
    s->reader_gone = true;
    s->len = 0;
    s->head = 0;
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
    pthread_cond_broadcast(&s->room);
    let_go_locked(s);
}

ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_stream_t *s = cls;
    pthread_mutex_lock(&s->mu);
    ssize_t got;
    /* One ended already is left to libmicrohttpd: it sends the rest and the last chunk itself. */
    if (s->takeable && s->writer && s->conn && !s->taken && !s->cancelled && !s->reader_gone && !s->ended) {
        /* The headers are sent (libmicrohttpd asks for the body only then): the socket is the
         * stream's from here, and libmicrohttpd, told the body failed, frees the connection
         * without shutting the socket (MHD_USE_TURBO) and closes only its own descriptor. */
        struct MHD_Connection *conn = s->conn;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci && take_locked(s, ci->connect_fd)) {
            pthread_mutex_unlock(&s->mu);
            /* A connection closed from a content reader waits for its next socket event to be
             * freed, and a taken socket gives libmicrohttpd none: its descriptor would stay open
             * until the idle timeout. One with a timeout of its own is looked at on every turn
             * of its thread's loop (at the latest a second from now), and freed then. */
            MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)1);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    if (s->cancelled) {
        got = MHD_CONTENT_READER_END_WITH_ERROR; /* the server is stopping: cut, even mid-buffer */
    } else if (s->len > 0) {
        size_t n = s->len < max ? s->len : max;
        memcpy(buf, s->buf + s->head, n);
        s->head += n;
        s->len -= n;
        s->waiting_ms = s->len ? clock_mono_ms() : 0; /* the reader took some: the wait starts again */
        if (s->len == 0) { /* all sent: an idle stream (a live listener between events) holds none */
            s->head = 0;
            free(s->buf);
            s->buf = NULL;
            s->cap = 0;
        }
        pthread_cond_signal(&s->room);
        got = (ssize_t)n;
    } else if (s->ended) {
        got = s->ok ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    } else {
        /* Nothing yet: suspended until the producer writes (microhttpd.h: returning 0 goes with
         * MHD_suspend_connection, or libmicrohttpd asks again at once). Both under s->mu, so the
         * producer's resume cannot come before this suspend. (No connection: a unit test.) */
        if (s->conn) {
            s->suspended = true;
            MHD_suspend_connection(s->conn);
        }
        got = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return got;
}

void http_stream_release(void *cls)
{
    http_stream_t *s = cls;
    pthread_mutex_lock(&s->mu);
    if (!s->taken) /* a taken socket outlives libmicrohttpd's connection */
        s->reader_gone = true;
    s->suspended = false; /* libmicrohttpd is done with the connection: nothing to resume */
    pthread_cond_broadcast(&s->room);
    let_go_locked(s);
}

bool http_stream_ended_whole(http_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    bool whole = s->ended && s->ok;
    pthread_mutex_unlock(&s->mu);
    return whole;
}

void http_stream_cancel(http_stream_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->reader_gone = true;
    s->cancelled = true;
    if (s->fd >= 0)
        shutdown(s->fd, SHUT_RDWR); /* the writer's thread hears it and closes the socket */
    wake_reader(s);
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->mu);
}
