/* tests/unit/test_step_pace.c — a step halves on a timeout down to its floor, and doubles back
 * up to its ceiling when quick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/step_pace.h"

static void test_a_timeout_halves_down_to_the_floor(void **state)
{
    (void)state;
    step_pace_t p;
    step_pace_init(&p, 5000, 1, 5000);
    assert_true(step_pace_timed_out(&p));
    assert_int_equal(p.size, 2500);
    int shrinks = 1;
    while (step_pace_timed_out(&p))
        shrinks++;
    assert_int_equal(p.size, 1);
    assert_int_equal(shrinks, 12); /* 5000 -> 2500 -> ... -> 2 -> 1 */
    assert_false(step_pace_timed_out(&p));
    assert_int_equal(p.size, 1);
}

static void test_quick_steps_grow_back_to_the_ceiling_and_slow_ones_stay(void **state)
{
    (void)state;
    step_pace_t p;
    step_pace_init(&p, 8, 1, 5000);
    step_pace_took(&p, 25, 100); /* a quarter of the timeout: not quick */
    assert_int_equal(p.size, 8);
    step_pace_took(&p, 24, 100);
    assert_int_equal(p.size, 16);
    for (int i = 0; i < 20; i++)
        step_pace_took(&p, 0, 100);
    assert_int_equal(p.size, 5000);
    step_pace_took(&p, 0, 0); /* no timeout: quick, but never past the ceiling */
    assert_int_equal(p.size, 5000);
}

static void test_the_start_is_kept_within_its_bounds(void **state)
{
    (void)state;
    step_pace_t p;
    step_pace_init(&p, 0, 0, 10);
    assert_int_equal(p.floor, 1);
    assert_int_equal(p.size, 1);
    step_pace_init(&p, 50, 4, 10);
    assert_int_equal(p.size, 10);
    step_pace_init(&p, 5, 8, 2);
    assert_int_equal(p.ceiling, 8);
    assert_int_equal(p.size, 8);
    assert_false(step_pace_timed_out(&p));
    step_pace_init(&p, 6, 4, 100);
    assert_true(step_pace_timed_out(&p)); /* 3 is under the floor: the floor */
    assert_int_equal(p.size, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_timeout_halves_down_to_the_floor),
        cmocka_unit_test(test_quick_steps_grow_back_to_the_ceiling_and_slow_ones_stay),
        cmocka_unit_test(test_the_start_is_kept_within_its_bounds),
    };
    return cmocka_run_group_tests_name("step_pace", tests, NULL, NULL);
}
