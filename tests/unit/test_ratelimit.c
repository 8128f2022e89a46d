/* tests/unit/test_ratelimit.c — per-client token buckets, on a clock the test moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "http/ratelimit.h"

static rl_verdict_t take(ratelimit_t *rl, const char *who, rl_kind_t kind, int cost, int64_t now)
{
    rl_verdict_t v;
    ratelimit_take(rl, who, kind, cost, now, &v);
    return v;
}

static void test_a_burst_then_the_rate(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(10, 0, 0, 5, 1000); /* 10 reads/s, bursts of 5; writes unlimited */
    int64_t t = 1000000;
    for (int i = 0; i < 5; i++) {
        rl_verdict_t v = take(rl, "a1", RL_READ, 1, t);
        assert_true(v.limited && !v.refused);
        assert_int_equal(v.limit, 5);
        assert_int_equal(v.remaining, 4 - i);
    }
    rl_verdict_t v = take(rl, "a1", RL_READ, 1, t);
    assert_true(v.refused);
    assert_int_equal(v.retry_after_s, 1); /* 0.1 s away, rounded up to a whole second */
    assert_int_equal(v.reset_s, 1);
    assert_true(take(rl, "a1", RL_READ, 1, t + 99).refused); /* 0.99 of a token */
    assert_false(take(rl, "a1", RL_READ, 1, t + 100).refused);         /* one token back */
    assert_true(take(rl, "a1", RL_READ, 1, t + 100).refused);
    /* Another client, and the other kind, are untouched. */
    assert_false(take(rl, "a2", RL_READ, 1, t + 100).refused);
    assert_false(take(rl, "a1", RL_WRITE, 1000, t + 100).limited);
    /* Idle for long: full again, never beyond the burst. */
    v = take(rl, "a1", RL_READ, 1, t + 3600000);
    assert_false(v.refused);
    assert_int_equal(v.remaining, 4);
    ratelimit_free(rl);
}

static void test_a_cost_is_taken_whole_or_not_at_all(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(0, 100, 0, 200, 1000);
    int64_t t = 5000;
    assert_false(take(rl, "k0", RL_WRITE, 150, t).refused);
    rl_verdict_t v = take(rl, "k0", RL_WRITE, 100, t); /* 50 left: refused, nothing taken */
    assert_true(v.refused);
    assert_int_equal(v.remaining, 50);
    assert_int_equal(v.retry_after_s, 1); /* 50 more at 100/s */
    assert_false(take(rl, "k0", RL_WRITE, 50, t).refused);
    v = take(rl, "k0", RL_WRITE, 201, t + 10000); /* more than the burst: refused even when full */
    assert_true(v.refused);
    assert_true(v.over_burst);
    assert_int_equal(v.remaining, 200);
    assert_int_equal(v.retry_after_s, 1); /* as RateLimit-Reset: at least 1 */
    v = take(rl, "k0", RL_WRITE, 100, t + 10000); /* and it took nothing */
    assert_false(v.refused);
    assert_false(v.over_burst);
    assert_int_equal(v.remaining, 100);
    v = take(rl, "k0", RL_WRITE, 300, t + 10000);
    assert_true(v.refused && v.over_burst);
    assert_int_equal(v.retry_after_s, 1); /* 100 to refill at 100/s */
    assert_false(take(rl, "k0", RL_WRITE, 200, t + 11000).refused); /* exactly the burst passes */
    ratelimit_free(rl);
}

static void test_no_burst_means_one_second_and_no_rates_no_limiter(void **state)
{
    (void)state;
    ratelimit_t *none = ratelimit_new(0, 0, 0, 10, 1000);
    assert_false(ratelimit_active(none));
    assert_false(take(none, "x", RL_READ, 1, 0).limited);
    ratelimit_configure(none, 1, 0, 0, 1); /* a reload sets a limit */
    assert_true(ratelimit_active(none));
    assert_false(take(none, "x", RL_READ, 1, 0).refused);
    assert_true(take(none, "x", RL_READ, 1, 0).refused);
    ratelimit_configure(none, 0, 0, 0, 0); /* and takes it away */
    assert_false(take(none, "x", RL_READ, 1, 0).limited);
    ratelimit_free(none);
    rl_verdict_t v;
    ratelimit_take(NULL, "x", RL_READ, 1, 0, &v);
    assert_false(v.limited || v.refused);
    ratelimit_t *rl = ratelimit_new(3, 0, 0, 0, 1000);
    assert_int_equal(take(rl, "x", RL_READ, 1, 0).limit, 3);
    ratelimit_free(rl);
}

static void test_the_table_keeps_a_bounded_number_of_clients(void **state)
{
    (void)state;
    ratelimit_t *rl = ratelimit_new(1, 1, 0, 1, 64 * 4); /* 4 clients per shard */
    char who[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(who, sizeof who, "a10.0.%d.%d", i / 256, i % 256);
        assert_false(take(rl, who, RL_READ, 1, i).refused);
    }
    assert_true(ratelimit_clients(rl) <= 64 * 4);
    /* The most recent are still remembered: their bucket is empty. */
    assert_true(take(rl, who, RL_READ, 1, 99999).refused);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_burst_then_the_rate),
        cmocka_unit_test(test_a_cost_is_taken_whole_or_not_at_all),
        cmocka_unit_test(test_no_burst_means_one_second_and_no_rates_no_limiter),
        cmocka_unit_test(test_the_table_keeps_a_bounded_number_of_clients),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
