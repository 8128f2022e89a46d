/* http/delay_queue.c — calls made later, on a thread of the queue's own (see delay_queue.h). */
#include "http/delay_queue.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/alloc.h"
#include "util/clock.h"

typedef struct entry {
    int64_t due_ms;
    delay_fn fn;
    void *arg;
    struct entry *next;
} entry_t;

struct delay_queue {
    pthread_t thread;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;
    entry_t *head;        /* by due time; the same pause for all, so pushes land at the tail */
    entry_t *tail;
    size_t waiting;
    bool flushing;        /* everything due at once: a shutdown */
    bool stop;
};

/* Take the entries due by `now_ms` (all of them when flushing) off the list. Lock held. */
static entry_t *take_due(delay_queue_t *q, int64_t now_ms)
{
    entry_t *first = q->head, *last = NULL;
    for (entry_t *e = q->head; e && (q->flushing || e->due_ms <= now_ms); e = e->next) {
        last = e;
        q->waiting--;
    }
    if (!last)
        return NULL;
    q->head = last->next;
    if (!q->head)
        q->tail = NULL;
    last->next = NULL;
    return first;
}

static void *delay_main(void *arg)
{
    delay_queue_t *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        entry_t *due = take_due(q, clock_mono_ms());
        if (due) {
            /* Called outside the lock: a call may push again (or resume a connection that does). */
            pthread_mutex_unlock(&q->lock);
            while (due) {
                entry_t *next = due->next;
                due->fn(due->arg);
                free(due);
                due = next;
            }
            pthread_mutex_lock(&q->lock);
            continue;
        }
        if (q->stop)
            break;
        if (!q->head) {
            pthread_cond_wait(&q->wake, &q->lock);
        } else {
            int64_t wait = q->head->due_ms - clock_mono_ms();
            struct timespec until = clock_deadline_ms(wait > 0 ? (int)wait : 0);
            pthread_cond_timedwait(&q->wake, &q->lock, &until);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

delay_queue_t *delay_queue_start(void)
{
    delay_queue_t *q = xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    if (pthread_create(&q->thread, NULL, delay_main, q) != 0) {
        pthread_cond_destroy(&q->wake);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
    }
    return q;
}

void delay_queue_push(delay_queue_t *q, int64_t due_ms, delay_fn fn, void *arg)
{
    entry_t *e = xcalloc(1, sizeof *e);
    e->due_ms = due_ms;
    e->fn = fn;
    e->arg = arg;
    pthread_mutex_lock(&q->lock);
    /* From the tail back: entries come in due order unless the pause was shortened (a reload). */
    entry_t **at = &q->head;
    if (q->tail && q->tail->due_ms <= due_ms) {
        at = &q->tail->next;
    } else {
        while (*at && (*at)->due_ms <= due_ms)
            at = &(*at)->next;
    }
    e->next = *at;
    *at = e;
    if (!e->next)
        q->tail = e;
    q->waiting++;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

void delay_queue_flush(delay_queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->flushing = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

size_t delay_queue_waiting(delay_queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->waiting;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void delay_queue_stop(delay_queue_t *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->flushing = true;
    q->stop = true;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q);
}
