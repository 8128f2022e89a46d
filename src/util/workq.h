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
    uint64_t pushed;     /* items pushed so far */
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
/* Items pushed so far: a gathering consumer counts from here (workq_gather_t.since). */
uint64_t workq_pushed(workq_t *q);

/* What a consumer gathers before it takes (workq_take_gathered), and how it went. */
typedef struct {
    size_t expect;     /* items to wait for, pushed since `since`; 0: do not wait */
    uint64_t since;    /* workq_pushed() when the consumer answered those it expects to send again */
    int64_t window_ns; /* the longest wait */
    int64_t idle_ns;   /* > 0: give up when nothing is queued for this long (then NULL, `idled`) */
    bool waited;       /* out: it waited (fewer had been pushed when something was queued) */
    size_t missing;    /* out: of `expect`, how many had not come when it stopped waiting */
    bool idled;        /* out: nothing was queued within idle_ns (NULL returned, the queue still runs) */
} workq_gather_t;

/*
 * workq_take, gathering first: once something is queued, when fewer than g->expect items have
 * been pushed since g->since, wait up to g->window_ns for the rest (or for the queue to stop)
 * before taking. For a queue with one consumer: producers wake it once, when the last item it
 * waits for arrives, not at every push, and no other consumer is woken meanwhile. With
 * g->idle_ns, NULL with g->idled set when nothing is queued that long (NULL without it: stopped).
 */
workq_item_t *workq_take_gathered(workq_t *q, size_t max_weight, size_t (*weight)(const workq_item_t *item),
                                  workq_gather_t *g);

/* When a consumer gathers: two answered or more, and not again soon after a wait in vain. */
typedef struct {
    size_t enough;    /* a take whose items weighed this much or more is not followed by a wait (0: no bound) */
    unsigned skip;    /* takes left that do not gather */
    unsigned backoff; /* how many skip after the next wait in vain (1, 2, 4 ... WORKQ_BACKOFF_MAX) */
} workq_pace_t;
#define WORKQ_BACKOFF_MAX 64
/* How many to wait for before the next take, having answered `answered` jobs weighing `weight`:
 * `answered` when two or more, lighter than `enough` and not skipping (one client alone never
 * waits; a take already that heavy shares its fixed cost finely, and waiting only delays it),
 * else 0. */
size_t workq_pace_expect(workq_pace_t *p, size_t answered, size_t weight);
/* After a take: a wait whose window ran out before all came doubles the takes that go without. */
void workq_pace_after(workq_pace_t *p, const workq_gather_t *g);

/* Wake every consumer: they take what is still queued, then get NULL. */
void workq_stop(workq_t *q);

#endif
