/* util/workq.c — a mutex, a condition variable and an intrusive FIFO. */
#include "util/workq.h"

#include <sched.h>
#include <time.h>

void workq_init(workq_t *q)
{
    pthread_mutex_init(&q->lock, NULL);
    /* A gathering consumer's deadline is on the monotonic clock: a wall clock set back must not
     * lengthen its wait. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->wake, &ca);
    pthread_condattr_destroy(&ca);
    q->head = q->tail = NULL;
    q->pushed = 0;
    q->gather_short = 0;
    q->stopping = false;
}

void workq_destroy(workq_t *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->wake);
}

bool workq_consumer_defers(void)
{
    struct sched_param sp = {.sched_priority = 0};
    return pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp) == 0;
}

void workq_push(workq_t *q, workq_item_t *item)
{
    item->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
    q->pushed++;
    /* A consumer gathering a group is woken by the item it waits for last, not by each one. */
    if (q->gather_short == 0 || --q->gather_short == 0)
        pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

/* Take from the head while the weights fit; the caller holds the lock and something is queued. */
static workq_item_t *take_locked(workq_t *q, size_t max_weight, size_t (*weight)(const workq_item_t *item))
{
    workq_item_t *first = q->head, *last = first;
    size_t sum = weight ? weight(first) : 1;
    while (last->next) {
        size_t w = weight ? weight(last->next) : 1;
        if (sum + w > max_weight)
            break;
        sum += w;
        last = last->next;
    }
    q->head = last->next;
    if (!q->head)
        q->tail = NULL;
    last->next = NULL;
    return first;
}

workq_item_t *workq_take(workq_t *q, size_t max_weight, size_t (*weight)(const workq_item_t *item))
{
    workq_gather_t none = {0};
    return workq_take_gathered(q, max_weight, weight, &none);
}

uint64_t workq_pushed(workq_t *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t n = q->pushed;
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* CLOCK_MONOTONIC (the queue's condition variable's clock) ns from now. */
static struct timespec deadline_after(int64_t ns)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t n = (int64_t)t.tv_nsec + ns;
    t.tv_sec += (time_t)(n / 1000000000);
    t.tv_nsec = (long)(n % 1000000000);
    return t;
}

workq_item_t *workq_take_gathered(workq_t *q, size_t max_weight, size_t (*weight)(const workq_item_t *item),
                                  workq_gather_t *g)
{
    g->waited = false;
    g->missing = 0;
    g->idled = false;
    pthread_mutex_lock(&q->lock);
    if (g->idle_ns > 0 && !q->head && !q->stopping) {
        struct timespec until = deadline_after(g->idle_ns);
        while (!q->head && !q->stopping)
            if (pthread_cond_timedwait(&q->wake, &q->lock, &until) != 0)
                break;
        if (!q->head && !q->stopping) {
            g->idled = true;
            pthread_mutex_unlock(&q->lock);
            return NULL;
        }
    }
    while (!q->head && !q->stopping)
        pthread_cond_wait(&q->wake, &q->lock);
    uint64_t came = q->pushed - g->since;
    if (g->expect > came && g->window_ns > 0 && !q->stopping) {
        struct timespec until = deadline_after(g->window_ns);
        g->waited = true;
        q->gather_short = g->expect - (size_t)came;
        while (q->gather_short > 0 && !q->stopping)
            if (pthread_cond_timedwait(&q->wake, &q->lock, &until) != 0)
                break; /* the window ran out: take what came */
        g->missing = q->gather_short;
        q->gather_short = 0;
    }
    workq_item_t *first = q->head ? take_locked(q, max_weight, weight) : NULL;
    pthread_mutex_unlock(&q->lock);
    return first;
}

size_t workq_pace_expect(workq_pace_t *p, size_t answered, size_t weight)
{
    if (answered < 2 || (p->enough > 0 && weight >= p->enough))
        return 0;
    if (p->skip > 0) {
        p->skip--;
        return 0;
    }
    return answered;
}

void workq_pace_after(workq_pace_t *p, const workq_gather_t *g)
{
    if (!g->waited)
        return;
    if (g->missing == 0) {
        p->backoff = 0;
        return;
    }
    p->backoff = p->backoff == 0 ? 1 : p->backoff * 2 > WORKQ_BACKOFF_MAX ? WORKQ_BACKOFF_MAX : p->backoff * 2;
    p->skip = p->backoff;
}

void workq_stop(workq_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
}
