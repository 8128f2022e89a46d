/* http/stream_writer.c — the thread that watches taken streams' sockets (see stream_writer.h). */
#include "http/stream_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/clock.h"

#define EVENTS_PER_WAIT 256
#define WAIT_MS 100 /* how soon the thread sees a stop */
#define SWEEP_MS 1000 /* how often ended streams are looked at for their linger */

typedef struct {
    void *arg;
    size_t *slot;     /* the stream's record of its index here, kept right when entries move */
    int64_t ended_ms; /* monotonic: when its producer ended it (0: not yet) */
} watched_t;

struct stream_writer {
    stream_writer_ready_fn ready;
    int linger_ms;
    int64_t next_sweep_ms; /* the thread's own */
    int ep;
    pthread_t thread;
    atomic_bool stopping;
    pthread_mutex_t mu; /* guards the three below */
    watched_t *watched;
    size_t n, cap;
    bool closed; /* no more watches: the writer is stopping */
};

/* Close the ended streams whose clients did not take the rest within the linger. Only this
 * thread closes (and so frees) a watched stream: the arguments gathered stay valid. */
static void sweep(stream_writer_t *w, int64_t now)
{
    void **late = NULL;
    size_t n_late = 0, cap = 0;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n; i++) {
        if (w->watched[i].ended_ms == 0 || now - w->watched[i].ended_ms < w->linger_ms)
            continue;
        if (n_late == cap) {
            cap = cap ? 2 * cap : 16;
            late = xrealloc(late, cap * sizeof *late);
        }
        late[n_late++] = w->watched[i].arg;
    }
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < n_late; i++)
        w->ready(late[i], EPOLLHUP, false);
    free(late);
}

static void *writer_main(void *arg)
{
    stream_writer_t *w = arg;
    struct epoll_event ev[EVENTS_PER_WAIT];
    while (!atomic_load(&w->stopping)) {
        int n = epoll_wait(w->ep, ev, EVENTS_PER_WAIT, WAIT_MS);
        for (int i = 0; i < n; i++)
            w->ready(ev[i].data.ptr, ev[i].events, false);
        if (n < 0 && errno != EINTR) { /* not expected (EBADF, EINVAL): the sweep and stop go on */
            struct timespec pause = {0, WAIT_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
        int64_t now = clock_mono_ms();
        if (now >= w->next_sweep_ms) {
            sweep(w, now);
            w->next_sweep_ms = now + (w->linger_ms < SWEEP_MS ? w->linger_ms : SWEEP_MS);
        }
    }
    return NULL;
}

stream_writer_t *stream_writer_start(stream_writer_ready_fn ready, int linger_ms)
{
    stream_writer_t *w = xcalloc(1, sizeof *w);
    w->ready = ready;
    w->linger_ms = linger_ms > 0 ? linger_ms : 1;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    pthread_mutex_init(&w->mu, NULL);
    if (w->ep < 0 || pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        int e = errno;
        if (w->ep >= 0)
            close(w->ep);
        pthread_mutex_destroy(&w->mu);
        free(w);
        errno = e;
        return NULL;
    }
    return w;
}

size_t stream_writer_count(stream_writer_t *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    size_t n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void stream_writer_stop(stream_writer_t *w, int flush_ms)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->closed = true;
    pthread_mutex_unlock(&w->mu);
    int64_t until = clock_mono_ms() + flush_ms;
    while (stream_writer_count(w) > 0 && clock_mono_ms() < until) {
        struct timespec pause = {0, 5 * 1000000L};
        nanosleep(&pause, NULL);
    }
    atomic_store(&w->stopping, true);
    pthread_join(w->thread, NULL);
    /* What is left did not flush in time (a client that does not read): cut. Each close takes
     * its entry out (unwatch), so the last one is taken until none is left. */
    for (;;) {
        pthread_mutex_lock(&w->mu);
        void *arg = w->n ? w->watched[w->n - 1].arg : NULL;
        pthread_mutex_unlock(&w->mu);
        if (!arg)
            break;
        w->ready(arg, 0, true);
    }
    close(w->ep);
    free(w->watched);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

bool stream_writer_watch(stream_writer_t *w, int fd, void *arg, size_t *slot)
{
    pthread_mutex_lock(&w->mu);
    if (w->closed) {
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = arg};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->watched = xrealloc(w->watched, w->cap * sizeof *w->watched);
    }
    *slot = w->n;
    w->watched[w->n++] = (watched_t){arg, slot, 0};
    pthread_mutex_unlock(&w->mu);
    return true;
}

void stream_writer_ended(stream_writer_t *w, const size_t *slot)
{
    pthread_mutex_lock(&w->mu);
    if (*slot < w->n && w->watched[*slot].ended_ms == 0)
        w->watched[*slot].ended_ms = clock_mono_ms();
    pthread_mutex_unlock(&w->mu);
}

void stream_writer_want_out(stream_writer_t *w, int fd, void *arg, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = arg};
    (void)epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev); /* it fails only for a socket being closed */
}

void stream_writer_unwatch(stream_writer_t *w, int fd, size_t *slot)
{
    (void)epoll_ctl(w->ep, EPOLL_CTL_DEL, fd, NULL);
    pthread_mutex_lock(&w->mu);
    size_t i = *slot;
    if (i < w->n) {
        w->watched[i] = w->watched[--w->n];
        if (i < w->n)
            *w->watched[i].slot = i;
    }
    pthread_mutex_unlock(&w->mu);
}
