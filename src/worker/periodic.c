/* worker/periodic.c — a function called at a fixed interval on a thread of its own (see periodic.h). */
#include "worker/periodic.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "util/alloc.h"

struct periodic {
    void (*tick)(void *arg);
    void *arg;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t lock; /* guards stop */
    pthread_cond_t wake;
    bool stop;
};

static void *periodic_main(void *arg)
{
    periodic_t *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        pthread_mutex_unlock(&p->lock);
        p->tick(p->arg);
        pthread_mutex_lock(&p->lock);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += p->interval_ms / 1000;
        until.tv_nsec += (long)(p->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

periodic_t *periodic_start(void (*tick)(void *arg), void *arg, int interval_ms)
{
    periodic_t *p = xcalloc(1, sizeof *p);
    p->tick = tick;
    p->arg = arg;
    p->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&p->thread, NULL, periodic_main, p) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

void periodic_stop(periodic_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
