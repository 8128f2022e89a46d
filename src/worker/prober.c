/* worker/prober.c — the probes' state, gathered once a second (see prober.h). */
#include "worker/prober.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"

struct prober {
    pg_router_t *router;
    redis_pool_t *redis;
    int interval_ms;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock; /* guards state and stop */
    pthread_cond_t wake;
    bool stop;
    probe_state_t state;
};

typedef struct {
    view_age_t ages[PROBER_VIEWS_MAX];
    size_t n;
} views_args_t;

static q_status_t views_on(PGconn *c, void *arg)
{
    views_args_t *a = arg;
    return views_ages(c, a->ages, PROBER_VIEWS_MAX, &a->n);
}

/* One round, outside the lock: the I/O; then the state replaced under it. */
static void gather(prober_t *p)
{
    probe_state_t next = {.redis = redis_state(p->redis)};
    views_args_t a = {.n = 0};
    bool behind = false;
    if (pg_router_read_run(p->router, 0, false, views_on, &a, &behind) == Q_OK) {
        next.views_known = true;
        memcpy(next.views, a.ages, a.n * sizeof *a.ages);
        next.n_views = a.n;
    }
    next.gathered_ms = clock_mono_ms();
    pthread_mutex_lock(&p->lock);
    if (!next.views_known) { /* no node answered this round: the last ages known, aging on */
        next.views_known = p->state.views_known;
        memcpy(next.views, p->state.views, sizeof next.views);
        next.n_views = p->state.n_views;
        for (size_t i = 0; i < next.n_views; i++)
            next.views[i].age_s += (double)(next.gathered_ms - p->state.gathered_ms) / 1000.0;
    }
    p->state = next;
    pthread_mutex_unlock(&p->lock);
}

static void *prober_main(void *arg)
{
    prober_t *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += p->interval_ms / 1000;
        until.tv_nsec += (long)(p->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0)
            ;
        if (p->stop)
            break;
        pthread_mutex_unlock(&p->lock);
        gather(p);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

prober_t *prober_start(pg_router_t *router, redis_pool_t *redis, int interval_ms)
{
    prober_t *p = xcalloc(1, sizeof *p);
    p->router = router;
    p->redis = redis;
    p->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_condattr_destroy(&ca);
    gather(p);
    p->running = pthread_create(&p->thread, NULL, prober_main, p) == 0;
    if (!p->running)
        log_error(NULL, "cannot start the probe thread: /readyz and /metrics keep the state of the start");
    return p;
}

void prober_state(prober_t *p, probe_state_t *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->state;
    pthread_mutex_unlock(&p->lock);
    if (redis_down(p->redis)) /* a failure requests met is news the next PING would only confirm */
        out->redis = "down";
}

void prober_stop(prober_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    if (p->running)
        pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
