/* tests/unit/test_workq.c — the work queue: arrival order, weight limits, stop, many threads, gathering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "util/workq.h"

typedef struct {
    int id;
    size_t weight;
    int taken; /* how many times a consumer got it */
    workq_item_t link;
} job_t;

static size_t job_weight(const workq_item_t *item)
{
    return WORKQ_OWNER(item, const job_t, link)->weight;
}

static int ids_of(workq_item_t *list, int *out, int max)
{
    int n = 0;
    for (; list && n < max; list = list->next)
        out[n++] = WORKQ_OWNER(list, job_t, link)->id;
    return n;
}

static void test_takes_in_arrival_order_up_to_the_limit(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    job_t jobs[5];
    for (int i = 0; i < 5; i++) {
        jobs[i] = (job_t){.id = i, .weight = 1};
        workq_push(&q, &jobs[i].link);
    }
    int got[8];
    assert_int_equal(ids_of(workq_take(&q, 2, NULL), got, 8), 2);
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 1);
    assert_int_equal(ids_of(workq_take(&q, 10, NULL), got, 8), 3);
    assert_int_equal(got[0], 2);
    assert_int_equal(got[2], 4);
    workq_stop(&q);
    assert_null(workq_take(&q, 10, NULL));
    workq_destroy(&q);
}

static void test_weights_add_up_and_a_heavy_first_item_still_goes(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    job_t jobs[4] = {{.id = 0, .weight = 50}, {.id = 1, .weight = 30}, {.id = 2, .weight = 30}, {.id = 3, .weight = 500}};
    for (int i = 0; i < 4; i++)
        workq_push(&q, &jobs[i].link);
    int got[8];
    assert_int_equal(ids_of(workq_take(&q, 100, job_weight), got, 8), 2); /* 50 + 30; + 30 would pass 100 */
    assert_int_equal(ids_of(workq_take(&q, 100, job_weight), got, 8), 1); /* 30; + 500 would pass */
    assert_int_equal(got[0], 2);
    assert_int_equal(ids_of(workq_take(&q, 100, job_weight), got, 8), 1); /* 500 alone, over the limit */
    assert_int_equal(got[0], 3);
    workq_destroy(&q);
}

static void test_stop_lets_consumers_drain_first(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    job_t a = {.id = 1, .weight = 1}, b = {.id = 2, .weight = 1};
    workq_push(&q, &a.link);
    workq_push(&q, &b.link);
    workq_stop(&q);
    int got[4];
    assert_int_equal(ids_of(workq_take(&q, 1, NULL), got, 4), 1);
    assert_int_equal(ids_of(workq_take(&q, 1, NULL), got, 4), 1);
    assert_int_equal(got[0], 2);
    assert_null(workq_take(&q, 1, NULL));
    workq_destroy(&q);
}

#define PRODUCERS 4
#define CONSUMERS 3
#define PER_PRODUCER 20000

typedef struct {
    workq_t *q;
    job_t *jobs;
} side_t;

static void *produce(void *arg)
{
    side_t *s = arg;
    for (int i = 0; i < PER_PRODUCER; i++)
        workq_push(s->q, &s->jobs[i].link);
    return NULL;
}

static void *consume(void *arg)
{
    workq_t *q = arg;
    workq_item_t *list;
    while ((list = workq_take(q, 7, NULL)) != NULL)
        for (workq_item_t *it = list, *next; it; it = next) {
            next = it->next;
            WORKQ_OWNER(it, job_t, link)->taken++; /* each job reaches one consumer only */
        }
    return NULL;
}

static void test_many_threads_take_every_item_once(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    static job_t jobs[PRODUCERS * PER_PRODUCER];
    memset(jobs, 0, sizeof jobs);
    pthread_t p[PRODUCERS], c[CONSUMERS];
    side_t sides[PRODUCERS];
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(pthread_create(&c[i], NULL, consume, &q), 0);
    for (int i = 0; i < PRODUCERS; i++) {
        sides[i] = (side_t){&q, jobs + i * PER_PRODUCER};
        assert_int_equal(pthread_create(&p[i], NULL, produce, &sides[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    workq_stop(&q);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(c[i], NULL);
    for (size_t i = 0; i < sizeof jobs / sizeof *jobs; i++)
        assert_int_equal(jobs[i].taken, 1);
    workq_destroy(&q);
}

static void *defer_and_report(void *arg)
{
    int *policy = arg;
    struct sched_param sp;
    *policy = workq_consumer_defers() && pthread_getschedparam(pthread_self(), policy, &sp) == 0 ? *policy : -1;
    return NULL;
}

/* The consumer alone becomes SCHED_BATCH (no privilege needed); the thread that started it
 * keeps its policy. */
static void test_a_deferring_consumer_is_sched_batch(void **state)
{
    (void)state;
    int policy = -2, mine = -2;
    struct sched_param sp;
    assert_int_equal(pthread_getschedparam(pthread_self(), &mine, &sp), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, defer_and_report, &policy), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(policy, SCHED_BATCH);
    int after = -2;
    assert_int_equal(pthread_getschedparam(pthread_self(), &after, &sp), 0);
    assert_int_equal(after, mine);
}

/* ---------------------------------------------------------------- gathering */

typedef struct {
    workq_t *q;
    size_t expect;
    int64_t gather_ns;
    workq_item_t *got;
    size_t missing;
} gatherer_t;

static void *gather(void *arg)
{
    gatherer_t *g = arg;
    g->got = workq_take_gathered(g->q, 100, NULL, g->expect, g->gather_ns, &g->missing);
    return NULL;
}

/* How many items the gathering consumer still waits for, read under the queue's lock. */
static size_t short_of(workq_t *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->gather_short;
    pthread_mutex_unlock(&q->lock);
    return n;
}

static void wait_short_of(workq_t *q, size_t n)
{
    while (short_of(q) != n)
        sched_yield();
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One item queued on entry and three expected: the consumer waits for the three, counting
 * each push, and takes all four at once. */
static void test_a_gather_waits_for_what_it_expects(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    job_t jobs[4] = {{.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};
    workq_push(&q, &jobs[0].link);
    gatherer_t g = {&q, 3, 30LL * 1000000000, NULL, 99};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, gather, &g), 0);
    wait_short_of(&q, 3);
    workq_push(&q, &jobs[1].link);
    assert_int_equal(short_of(&q), 2); /* still waiting: one push does not end it */
    workq_push(&q, &jobs[2].link);
    workq_push(&q, &jobs[3].link);
    assert_int_equal(pthread_join(t, NULL), 0);
    int got[8];
    assert_int_equal(ids_of(g.got, got, 8), 4);
    assert_int_equal(got[3], 4);
    assert_int_equal(g.missing, 0);
    assert_int_equal(short_of(&q), 0); /* pushes signal as before once it is done */
    workq_destroy(&q);
}

/* Nothing more comes: the window runs out, what is queued goes, and what did not come is said. */
static void test_a_gather_in_vain_ends_with_its_window(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    job_t a = {.id = 1};
    workq_push(&q, &a.link);
    size_t missing = 99;
    int64_t t0 = mono_ns();
    workq_item_t *got = workq_take_gathered(&q, 100, NULL, 2, 20 * 1000000, &missing);
    assert_true(mono_ns() - t0 >= 20 * 1000000);
    int ids[4];
    assert_int_equal(ids_of(got, ids, 4), 1);
    assert_int_equal(missing, 2);
    /* expect 0 does not wait, and nothing is missing */
    workq_push(&q, &a.link);
    got = workq_take_gathered(&q, 100, NULL, 0, 30LL * 1000000000, &missing);
    assert_int_equal(ids_of(got, ids, 4), 1);
    assert_int_equal(missing, 0);
    workq_destroy(&q);
}

/* Stopping ends a gather at once: shutdown does not wait out the window. */
static void test_stop_ends_a_gather(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    job_t a = {.id = 1};
    workq_push(&q, &a.link);
    gatherer_t g = {&q, 5, 30LL * 1000000000, NULL, 99};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, gather, &g), 0);
    wait_short_of(&q, 5);
    workq_stop(&q);
    assert_int_equal(pthread_join(t, NULL), 0);
    int ids[4];
    assert_int_equal(ids_of(g.got, ids, 4), 1);
    assert_null(workq_take(&q, 1, NULL));
    workq_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_takes_in_arrival_order_up_to_the_limit),
        cmocka_unit_test(test_weights_add_up_and_a_heavy_first_item_still_goes),
        cmocka_unit_test(test_stop_lets_consumers_drain_first),
        cmocka_unit_test(test_many_threads_take_every_item_once),
        cmocka_unit_test(test_a_deferring_consumer_is_sched_batch),
        cmocka_unit_test(test_a_gather_waits_for_what_it_expects),
        cmocka_unit_test(test_a_gather_in_vain_ends_with_its_window),
        cmocka_unit_test(test_stop_ends_a_gather),
    };
    return cmocka_run_group_tests_name("workq", tests, NULL, NULL);
}
