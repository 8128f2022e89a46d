/* http/stream.c — an answer written while it is sent (see stream.h). */
#include "http/stream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <microhttpd.h>

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
    int holds;                   /* 2 at first: the producer's and the server's */
};

http_stream_t *http_stream_new(size_t max_buffered)
{
    http_stream_t *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->room, NULL);
    s->max = max_buffered ? max_buffered : 65536;
    s->holds = 2;
    return s;
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

/* Under s->mu: wake a reader that suspended itself for want of bytes. */
static void wake_reader(http_stream_t *s)
{
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
        if (s->len == s->max) {
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

int http_stream_offer(http_stream_t *s, const void *data, size_t len)
{
    pthread_mutex_lock(&s->mu);
    int got = s->reader_gone ? -1 : len > s->max - s->len ? 0 : 1;
    if (got == 1 && len > 0) {
        make_room(s, len);
        memcpy(s->buf + s->head + s->len, data, len);
        if (s->len == 0)
            s->waiting_ms = clock_mono_ms();
        s->len += len;
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

void http_stream_attach(http_stream_t *s, struct MHD_Connection *conn)
{
    pthread_mutex_lock(&s->mu);
    s->conn = conn;
    pthread_mutex_unlock(&s->mu);
}

ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_stream_t *s = cls;
    pthread_mutex_lock(&s->mu);
    ssize_t got;
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
    wake_reader(s);
    pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->mu);
}
