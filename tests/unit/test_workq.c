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

#define LONG_WINDOW_NS (30LL * 1000000000) /* a test that waited it out failed */

typedef struct {
    workq_t *q;
    workq_gather_t g;
    workq_item_t *got;
} gatherer_t;

static void *gather(void *arg)
{
    gatherer_t *t = arg;
    t->got = workq_take_gathered(t->q, 100, NULL, &t->g);
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

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Until the consumer waits for n more (at most 10 s: a gather that never starts fails, not hangs). */
static void wait_short_of(workq_t *q, size_t n)
{
    int64_t until = mono_ns() + 10LL * 1000000000;
    while (short_of(q) != n && mono_ns() < until)
        sched_yield();
    assert_int_equal(short_of(q), n);
}

/* Two answered clients' jobs expected, one other job queued before the answers went: the consumer
 * waits for both, counting each push, and takes all three at once, long before its window. */
static void test_a_gather_waits_for_what_it_expects(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    job_t jobs[4] = {{.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};
    workq_push(&q, &jobs[0].link);
    gatherer_t t = {&q, {.expect = 2, .since = workq_pushed(&q), .window_ns = LONG_WINDOW_NS}, NULL};
    int64_t t0 = mono_ns();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, gather, &t), 0);
    wait_short_of(&q, 2);
    workq_push(&q, &jobs[1].link);
    assert_int_equal(short_of(&q), 1); /* still waiting: one push does not end it */
    workq_push(&q, &jobs[2].link);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(mono_ns() - t0 < LONG_WINDOW_NS / 2); /* woken by the last push */
    int got[8];
    assert_int_equal(ids_of(t.got, got, 8), 3);
    assert_int_equal(got[2], 3);
    assert_true(t.g.waited);
    assert_int_equal(t.g.missing, 0);
    /* A client that sent again before the consumer looked counts: nothing left to wait for. */
    uint64_t since = workq_pushed(&q);
    workq_push(&q, &jobs[3].link);
    workq_gather_t g = {.expect = 1, .since = since, .window_ns = LONG_WINDOW_NS};
    assert_int_equal(ids_of(workq_take_gathered(&q, 100, NULL, &g), got, 8), 1);
    assert_false(g.waited);
    workq_destroy(&q);
}

/* Nothing more comes: the window runs out, what is queued goes, and what did not come is said. */
static void test_a_gather_in_vain_ends_with_its_window(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    job_t a = {.id = 1};
    uint64_t since = workq_pushed(&q);
    workq_push(&q, &a.link);
    workq_gather_t g = {.expect = 3, .since = since, .window_ns = 20 * 1000000};
    int64_t t0 = mono_ns();
    workq_item_t *got = workq_take_gathered(&q, 100, NULL, &g);
    assert_true(mono_ns() - t0 >= 20 * 1000000);
    int ids[4];
    assert_int_equal(ids_of(got, ids, 4), 1);
    assert_true(g.waited);
    assert_int_equal(g.missing, 2);
    /* expect 0 does not wait */
    workq_push(&q, &a.link);
    workq_gather_t none = {.expect = 0, .window_ns = LONG_WINDOW_NS};
    assert_int_equal(ids_of(workq_take_gathered(&q, 100, NULL, &none), ids, 4), 1);
    assert_false(none.waited);
    workq_destroy(&q);
}

/* Stopping ends a gather at once: shutdown does not wait out the window. */
static void test_stop_ends_a_gather(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    job_t a = {.id = 1};
    uint64_t since = workq_pushed(&q);
    workq_push(&q, &a.link);
    gatherer_t t = {&q, {.expect = 6, .since = since, .window_ns = LONG_WINDOW_NS}, NULL};
    int64_t t0 = mono_ns();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, gather, &t), 0);
    wait_short_of(&q, 5);
    workq_stop(&q);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(mono_ns() - t0 < LONG_WINDOW_NS / 2);
    int ids[4];
    assert_int_equal(ids_of(t.got, ids, 4), 1);
    assert_null(workq_take(&q, 1, NULL));
    workq_destroy(&q);
}

/* An idle bound: nothing queued within it gives NULL and `idled` (the queue still runs: what
 * comes later is taken); something already queued is taken at once; a stop is no idleness. */
static void test_an_idle_bound_gives_up_when_nothing_comes(void **state)
{
    (void)state;
    workq_t q;
    workq_init(&q);
    workq_gather_t g = {.idle_ns = 20 * 1000000};
    int64_t t0 = mono_ns();
    assert_null(workq_take_gathered(&q, 100, NULL, &g));
    assert_true(mono_ns() - t0 >= 20 * 1000000);
    assert_true(g.idled);
    job_t a = {.id = 1};
    workq_push(&q, &a.link);
    workq_gather_t h = {.idle_ns = LONG_WINDOW_NS};
    t0 = mono_ns();
    int ids[4];
    assert_int_equal(ids_of(workq_take_gathered(&q, 100, NULL, &h), ids, 4), 1);
    assert_true(mono_ns() - t0 < LONG_WINDOW_NS / 2);
    assert_false(h.idled);
    gatherer_t t = {&q, {.idle_ns = LONG_WINDOW_NS}, NULL};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, gather, &t), 0);
    workq_stop(&q);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_null(t.got);
    assert_false(t.g.idled);
    workq_destroy(&q);
}

/* The pace: one answered never gathers; a wait that ran out makes 1, 2, 4 ... 64 takes go
 * without; one where all came resets it; a take that did not wait changes nothing. */
static void test_the_pace_backs_off_after_waits_in_vain(void **state)
{
    (void)state;
    workq_pace_t p = {0};
    assert_int_equal(workq_pace_expect(&p, 1, 1), 0);
    assert_int_equal(workq_pace_expect(&p, 5, 5), 5);
    workq_gather_t in_vain = {.waited = true, .missing = 1}, came = {.waited = true}, none = {0};
    unsigned want[] = {1, 2, 4, 8, 16, 32, 64, 64};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        workq_pace_after(&p, &in_vain);
        for (unsigned k = 0; k < want[i]; k++) {
            assert_int_equal(workq_pace_expect(&p, 1, 1), 0); /* one answered: not a skipped take */
            assert_int_equal(workq_pace_expect(&p, 4, 4), 0);
        }
        assert_int_equal(workq_pace_expect(&p, 4, 4), 4);
    }
    workq_pace_after(&p, &none);
    assert_int_equal(workq_pace_expect(&p, 3, 3), 3);
    workq_pace_after(&p, &came);
    workq_pace_after(&p, &in_vain);
    assert_int_equal(workq_pace_expect(&p, 3, 3), 0); /* backed off by one again, not 128 */
    assert_int_equal(workq_pace_expect(&p, 3, 3), 3);
}

/* A take that weighed `enough` or more is not followed by a wait, however many it answered. */
static void test_the_pace_does_not_gather_after_a_heavy_take(void **state)
{
    (void)state;
    workq_pace_t p = {.enough = 256};
    assert_int_equal(workq_pace_expect(&p, 32, 32), 32);
    assert_int_equal(workq_pace_expect(&p, 32, 255), 32);
    assert_int_equal(workq_pace_expect(&p, 16, 1600), 0);
    assert_int_equal(workq_pace_expect(&p, 2, 256), 0);
    assert_int_equal(workq_pace_expect(&p, 1, 1), 0);
    workq_pace_t unbounded = {0};
    assert_int_equal(workq_pace_expect(&unbounded, 16, 1600), 16);
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
        cmocka_unit_test(test_an_idle_bound_gives_up_when_nothing_comes),
        cmocka_unit_test(test_the_pace_backs_off_after_waits_in_vain),
        cmocka_unit_test(test_the_pace_does_not_gather_after_a_heavy_take),
    };
    return cmocka_run_group_tests_name("workq", tests, NULL, NULL);
}
