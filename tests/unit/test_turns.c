/* tests/unit/test_turns.c — jobs of one key run one at a time, in arrival order; keys run side by side. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "worker/turns.h"

#define KEYS 3
#define PER_KEY 40

typedef struct {
    offload_job_t job;
    turns_t *turns;
    turns_key_t key;
    int seq; /* arrival order within its key */
} job_t;

static atomic_int running[KEYS];    /* jobs of each key running now */
static atomic_int max_running[KEYS];
static atomic_int max_total;        /* jobs running now, all keys */
static atomic_int total_running;
static int order[KEYS][PER_KEY];    /* seq of the n-th job of a key to run (written under its turn) */
static int ran[KEYS];
static atomic_int finished;
static atomic_int started_open; /* jobs may go past their start: every job has been submitted */
static atomic_int gate_open;

/* Every change of the counters above is announced here, so that the test's thread and the jobs
 * wait for the state they need instead of polling it. */
static pthread_mutex_t changed_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;

static void announce(void)
{
    pthread_mutex_lock(&changed_lock);
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&changed_lock);
}

/* Wait until *v >= want, at most 10 s (a broken scheduler fails the test, never hangs it). */
static void wait_at_least(atomic_int *v, int want)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&changed_lock);
    while (atomic_load(v) < want && pthread_cond_timedwait(&changed, &changed_lock, &until) == 0)
        ;
    pthread_mutex_unlock(&changed_lock);
}

static void raise_to(atomic_int *max, int v)
{
    int seen = atomic_load(max);
    while (v > seen && !atomic_compare_exchange_weak(max, &seen, v))
        ;
}

static void run(offload_job_t *j)
{
    job_t *job = (job_t *)j;
    int k = (int)job->key.a;
    raise_to(&max_running[k], atomic_fetch_add(&running[k], 1) + 1);
    raise_to(&max_total, atomic_fetch_add(&total_running, 1) + 1);
    order[k][ran[k]++] = job->seq;
    announce();
    /* The first job of each key holds here until every job is submitted: no turn can end
     * meanwhile, whatever stalls the submitting thread. */
    wait_at_least(&started_open, 1);
    atomic_fetch_sub(&total_running, 1);
    atomic_fetch_sub(&running[k], 1);
    turns_end(job->turns, job->key);
    atomic_fetch_add(&finished, 1);
    announce();
}

static void test_one_turn_per_key_in_arrival_order(void **state)
{
    (void)state;
    offload_t *pool = offload_start(4);
    assert_non_null(pool);
    turns_t *t = turns_new(pool, PER_KEY);
    static job_t jobs[KEYS * PER_KEY];
    for (int i = 0; i < KEYS * PER_KEY; i++) {
        int k = i % KEYS;
        jobs[i] = (job_t){.job = {.run = run}, .turns = t, .key = {k, 77}, .seq = i / KEYS};
        assert_int_equal(turns_submit(t, jobs[i].key, &jobs[i].job), i < KEYS ? TURNS_RUNNING : TURNS_WAITING);
    }
    /* Every key's first job is running at once (the pool has a thread for each): keys run side
     * by side. Then they may go on. */
    wait_at_least(&total_running, KEYS);
    assert_int_equal(atomic_load(&total_running), KEYS);
    atomic_store(&started_open, 1);
    announce();
    wait_at_least(&finished, KEYS * PER_KEY);
    assert_int_equal(atomic_load(&finished), KEYS * PER_KEY);
    for (int k = 0; k < KEYS; k++) {
        assert_int_equal(atomic_load(&max_running[k]), 1);
        assert_int_equal(ran[k], PER_KEY);
        for (int n = 0; n < PER_KEY; n++)
            assert_int_equal(order[k][n], n);
    }
    assert_int_equal(atomic_load(&max_total), KEYS); /* different keys did run side by side */
    offload_stop(pool);
    turns_free(t);
}

static void wait_for_gate(offload_job_t *j)
{
    job_t *job = (job_t *)j;
    wait_at_least(&gate_open, 1);
    turns_end(job->turns, job->key);
    atomic_fetch_add(&finished, 1);
    announce();
}

static void test_waiting_beyond_the_limit_is_refused(void **state)
{
    (void)state;
    atomic_store(&finished, 0);
    offload_t *pool = offload_start(2);
    assert_non_null(pool);
    turns_t *t = turns_new(pool, 2);
    job_t jobs[4];
    turns_status_t want[4] = {TURNS_RUNNING, TURNS_WAITING, TURNS_WAITING, TURNS_FULL};
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job_t){.job = {.run = wait_for_gate}, .turns = t, .key = {5, 5}};
        assert_int_equal(turns_submit(t, jobs[i].key, &jobs[i].job), want[i]);
    }
    job_t other = {.job = {.run = wait_for_gate}, .turns = t, .key = {6, 5}};
    assert_int_equal(turns_submit(t, other.key, &other.job), TURNS_RUNNING); /* another key */
    atomic_store(&gate_open, 1);
    announce();
    wait_at_least(&finished, 4);
    assert_int_equal(atomic_load(&finished), 4); /* three of key 5 (the refused one never ran), one of 6 */
    job_t again = {.job = {.run = wait_for_gate}, .turns = t, .key = {5, 5}};
    assert_int_equal(turns_submit(t, again.key, &again.job), TURNS_RUNNING); /* the key was forgotten */
    offload_stop(pool);
    turns_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_turn_per_key_in_arrival_order),
        cmocka_unit_test(test_waiting_beyond_the_limit_is_refused),
    };
    return cmocka_run_group_tests_name("turns", tests, NULL, NULL);
}
