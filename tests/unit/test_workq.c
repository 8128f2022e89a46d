/* tests/unit/test_workq.c — the work queue: arrival order, weight limits, stop, many threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_takes_in_arrival_order_up_to_the_limit),
        cmocka_unit_test(test_weights_add_up_and_a_heavy_first_item_still_goes),
        cmocka_unit_test(test_stop_lets_consumers_drain_first),
        cmocka_unit_test(test_many_threads_take_every_item_once),
        cmocka_unit_test(test_a_deferring_consumer_is_sched_batch),
    };
    return cmocka_run_group_tests_name("workq", tests, NULL, NULL);
}
