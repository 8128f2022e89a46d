/* worker/turns.c — a short table of keys whose turn is taken, each with its waiting jobs. */
#include "worker/turns.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/alloc.h"

typedef struct {
    turns_key_t key;
    workq_item_t *head, *tail; /* waiting, not yet on the pool */
    size_t waiting;
} slot_t;

struct turns {
    offload_t *pool;
    size_t max_waiting;
    pthread_mutex_t lock; /* guards the slots */
    slot_t *slots;        /* one per key whose turn is taken; few (windows being loaded) */
    size_t n, cap;
};

turns_t *turns_new(offload_t *pool, size_t max_waiting)
{
    turns_t *t = xcalloc(1, sizeof *t);
    t->pool = pool;
    t->max_waiting = max_waiting;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void turns_free(turns_t *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->slots);
    free(t);
}

static slot_t *find(turns_t *t, turns_key_t key)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->slots[i].key.a == key.a && t->slots[i].key.b == key.b)
            return &t->slots[i];
    return NULL;
}

turns_status_t turns_submit(turns_t *t, turns_key_t key, offload_job_t *job)
{
    pthread_mutex_lock(&t->lock);
    slot_t *s = find(t, key);
    if (s) {
        turns_status_t st = TURNS_FULL;
        if (s->waiting < t->max_waiting) {
            job->link.next = NULL;
            if (s->tail)
                s->tail->next = &job->link;
            else
                s->head = &job->link;
            s->tail = &job->link;
            s->waiting++;
            st = TURNS_WAITING;
        }
        pthread_mutex_unlock(&t->lock);
        return st;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 8;
        t->slots = xrealloc(t->slots, t->cap * sizeof *t->slots);
    }
    t->slots[t->n++] = (slot_t){.key = key};
    pthread_mutex_unlock(&t->lock);
    offload_submit(t->pool, job);
    return TURNS_RUNNING;
}

void turns_end(turns_t *t, turns_key_t key)
{
    pthread_mutex_lock(&t->lock);
    slot_t *s = find(t, key);
    workq_item_t *next = s ? s->head : NULL;
    if (next) {
        s->head = next->next;
        if (!s->head)
            s->tail = NULL;
        s->waiting--;
    } else if (s) {
        *s = t->slots[--t->n]; /* the turn is free: forget the key */
    }
    pthread_mutex_unlock(&t->lock);
    if (next)
        offload_submit(t->pool, WORKQ_OWNER(next, offload_job_t, link));
}
