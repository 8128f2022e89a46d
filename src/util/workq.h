/*
 * util/workq.h — a queue of work between threads.
 *
 * Producers push items; consumer threads take what is queued, in arrival
 * order and up to a limit, and sleep while there is nothing. Items are
 * intrusive (a workq_item_t inside the caller's struct), so a push never
 * allocates and the queue never owns or frees an item. Stopping wakes every
 * consumer; they drain what is left, then get NULL.
 */
#ifndef RANKD_UTIL_WORKQ_H
#define RANKD_UTIL_WORKQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct workq_item {
    struct workq_item *next; /* the queue's while queued; links a taken list after */
} workq_item_t;

typedef struct {
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t wake;
    workq_item_t *head, *tail;
    size_t n_items;      /* queued */
    size_t gather_short; /* items a gathering consumer still waits for; 0 when none does */
    bool stopping;
} workq_t;

/* The struct that holds `item` as its member `field`. */
#define WORKQ_OWNER(item, type, field) ((type *)(void *)((char *)(item) - offsetof(type, field)))

void workq_init(workq_t *q);
/* Free the queue's lock; no thread may be using it any more. */
void workq_destroy(workq_t *q);
/*
 * Called by a consumer thread on itself: it becomes SCHED_BATCH, which the scheduler never lets
 * preempt a running thread when a push wakes it. An event loop that pushes then goes on through
 * every request it has ready, and the consumer takes them all at once when the loop waits:
 * one Redis round trip for many requests instead of a few, and far fewer context switches
 * when both share a CPU (on a CPU of its own it still runs at once). Its share of the CPU is
 * unchanged. False when the kernel refused (the thread then runs as before).
 */
bool workq_consumer_defers(void);
/* Queue an item and wake one consumer; never blocks on I/O. */
void workq_push(workq_t *q, workq_item_t *item);
/*
 * Wait until something is queued or the queue stops, then take items in arrival order while
 * their weights add up to at most max_weight (the first one always; `weight` NULL counts 1
 * per item). Returns them as a list linked by `next`, or NULL once stopped and empty.
 */
workq_item_t *workq_take(workq_t *q, size_t max_weight, size_t (*weight)(const workq_item_t *item));
/*
 * workq_take, gathering first: once something is queued, when fewer than `expect` more items
 * than were queued on entry are there, wait up to `gather_ns` for them (or for the queue to
 * stop) before taking. One consumer at a time may gather. Producers wake it once, when the last
 * item it waits for arrives, not at every push. `expect` 0 or `gather_ns` 0 is workq_take.
 * `*missing` (may be NULL) is set to how many of those it waited for had not come when
 * `gather_ns` ran out (0 when all came, or it did not wait).
 */
workq_item_t *workq_take_gathered(workq_t *q, size_t max_weight, size_t (*weight)(const workq_item_t *item),
                                  size_t expect, int64_t gather_ns, size_t *missing);
/* Wake every consumer: they take what is still queued, then get NULL. */
void workq_stop(workq_t *q);

#endif
