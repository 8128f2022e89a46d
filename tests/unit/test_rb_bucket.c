/* The bucket of a player's hash entry: known values of the formula, and a bucket in range for
 * any bytes. Every writer and reader computes it here; a change of the formula would make
 * readers look for players in buckets the writers of an older version wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/rb_bucket.h"

static void test_known_values(void **state)
{
    (void)state;
    char out[16];
    rb_player_bucket("", 0, out);
    assert_string_equal(out, "0");
    rb_player_bucket("a", 1, out); /* 97 */
    assert_string_equal(out, "97");
    rb_player_bucket("ab", 2, out); /* 97 * 31 + 98 = 3105 */
    assert_string_equal(out, "3105");
    /* Past the modulus: h grows beyond 1000003 within four bytes, then wraps. */
    uint32_t h = 0;
    const char *id = "player-000123";
    for (const char *p = id; *p; p++)
        h = (h * 31 + (unsigned char)*p) % 1000003;
    char want[16];
    snprintf(want, sizeof want, "%u", h % 16384);
    rb_player_bucket(id, strlen(id), out);
    assert_string_equal(out, want);
}

static void test_every_bucket_is_in_range(void **state)
{
    (void)state;
    /* Any bytes (NUL and 0xff too) and any length up to twice an id's: a bucket below 16384. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char id[129], out[16];
    for (size_t len = 0; len <= 128; len++) {
        for (int round = 0; round < 50; round++) {
            for (size_t i = 0; i < len; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                id[i] = (char)(x >> 24);
            }
            size_t n = rb_player_bucket(id, len, out);
            assert_int_equal(n, strlen(out));
            long b = strtol(out, NULL, 10);
            assert_true(b >= 0 && b < 16384);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_every_bucket_is_in_range),
    };
    return cmocka_run_group_tests_name("rb_bucket", tests, NULL, NULL);
}
