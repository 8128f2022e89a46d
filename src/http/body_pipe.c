/* http/body_pipe.c — a bounded byte queue from the event loop to a consumer thread. */
#include "http/body_pipe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct http_body_pipe {
    pthread_mutex_t mu;
    pthread_cond_t readable;
    char *ring;
    size_t cap, head, len; /* the bytes are ring[head .. head+len) modulo cap */
    bool closed, aborted, gave_up;
    void (*wake)(void *arg); /* the server's, waiting for room */
    void *wake_arg;
    int holds;
};

http_body_pipe_t *http_body_pipe_new(size_t capacity)
{
    http_body_pipe_t *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->readable, NULL);
    p->ring = xmalloc(capacity);
    p->cap = capacity;
    p->holds = 1;
    return p;
}

void http_body_pipe_hold(http_body_pipe_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->holds++;
    pthread_mutex_unlock(&p->mu);
}

void http_body_pipe_release(http_body_pipe_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    bool last = --p->holds == 0;
    pthread_mutex_unlock(&p->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->readable);
    free(p->ring);
    free(p);
}

size_t http_body_pipe_offer(http_body_pipe_t *p, const char *data, size_t len)
{
    pthread_mutex_lock(&p->mu);
    if (p->gave_up || p->aborted) {
        pthread_mutex_unlock(&p->mu);
        return len;
    }
    size_t took = 0;
    while (took < len && p->len < p->cap) {
        /* The room after the bytes: up to the ring's end, or up to head once they wrapped. */
        size_t tail = (p->head + p->len) % p->cap;
        size_t run = tail >= p->head ? p->cap - tail : p->head - tail;
        if (run > len - took)
            run = len - took;
        memcpy(p->ring + tail, data + took, run);
        p->len += run;
        took += run;
    }
    if (took > 0)
        pthread_cond_signal(&p->readable);
    pthread_mutex_unlock(&p->mu);
    return took;
}

bool http_body_pipe_wait_room(http_body_pipe_t *p, void (*wake)(void *arg), void *arg)
{
    pthread_mutex_lock(&p->mu);
    bool full = p->len == p->cap && !p->gave_up && !p->aborted;
    if (full) {
        p->wake = wake;
        p->wake_arg = arg;
    }
    pthread_mutex_unlock(&p->mu);
    return full;
}

/* The registered wake, taken (called by the caller outside the lock). */
static void (*take_wake(http_body_pipe_t *p, void **arg))(void *)
{
    void (*wake)(void *) = p->wake;
    *arg = p->wake_arg;
    p->wake = NULL;
    return wake;
}

void http_body_pipe_close(http_body_pipe_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->closed = true;
    pthread_cond_signal(&p->readable);
    pthread_mutex_unlock(&p->mu);
}

void http_body_pipe_abort(http_body_pipe_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->aborted = true;
    p->wake = NULL; /* the connection is ending: nothing to resume */
    pthread_cond_signal(&p->readable);
    pthread_mutex_unlock(&p->mu);
}

ssize_t http_body_pipe_read(http_body_pipe_t *p, char *buf, size_t max)
{
    pthread_mutex_lock(&p->mu);
    while (p->len == 0 && !p->closed && !p->aborted)
        pthread_cond_wait(&p->readable, &p->mu);
    if (p->aborted) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    size_t n = 0;
    while (n < max && p->len > 0) {
        size_t run = p->cap - p->head;
        if (run > p->len)
            run = p->len;
        if (run > max - n)
            run = max - n;
        memcpy(buf + n, p->ring + p->head, run);
        p->head = (p->head + run) % p->cap;
        p->len -= run;
        n += run;
    }
    void *arg = NULL;
    void (*wake)(void *) = n > 0 ? take_wake(p, &arg) : NULL;
    pthread_mutex_unlock(&p->mu);
    if (wake)
        wake(arg);
    return (ssize_t)n;
}

void http_body_pipe_give_up(http_body_pipe_t *p)
{
    void *arg;
    pthread_mutex_lock(&p->mu);
    p->gave_up = true;
    p->len = 0;
    void (*wake)(void *) = take_wake(p, &arg);
    pthread_mutex_unlock(&p->mu);
    if (wake)
        wake(arg);
}

bool http_body_pipe_failed(http_body_pipe_t *p)
{
    pthread_mutex_lock(&p->mu);
    bool failed = p->gave_up || p->aborted;
    pthread_mutex_unlock(&p->mu);
    return failed;
}
