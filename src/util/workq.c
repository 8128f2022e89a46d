/* util/workq.c — a mutex, a condition variable and an intrusive FIFO. */
#include "util/workq.h"

#include <sched.h>

void workq_init(workq_t *q)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    q->head = q->tail = NULL;
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
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
}

workq_item_t *workq_take(workq_t *q, size_t max_weight, size_t (*weight)(const workq_item_t *item))
{
    pthread_mutex_lock(&q->lock);
    while (!q->head && !q->stopping)
        pthread_cond_wait(&q->wake, &q->lock);
    workq_item_t *first = q->head, *last = first;
    if (first) {
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
    }
    pthread_mutex_unlock(&q->lock);
    return first;
}

void workq_stop(workq_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
}
