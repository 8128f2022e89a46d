/* A command in RESP written by hand (store/resp.c), byte for byte against hiredis's own
 * formatting (redisFormatCommandArgv: the same bytes as redisAppendCommandArgv, which the pipe
 * used before, appends). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "store/resp.h"

/* resp_command's text, appended after `prefix`, against hiredis's. */
static void expect_as_hiredis(const char *prefix, int argc, const char **argv, const size_t *argvlen)
{
    char *want = NULL;
    int want_len = redisFormatCommandArgv(&want, argc, argv, argvlen);
    assert_true(want_len >= 0);
    buf_t b;
    buf_init(&b);
    buf_puts(&b, prefix);
    resp_command(&b, argc, argv, argvlen);
    size_t plen = strlen(prefix);
    assert_int_equal(b.len, plen + (size_t)want_len);
    assert_memory_equal(b.data, prefix, plen);
    assert_memory_equal(b.data + plen, want, (size_t)want_len);
    assert_int_equal(b.data[b.len], '\0');
    free(want);
    buf_free(&b);
}

static void test_commands_match_hiredis(void **state)
{
    (void)state;
    const char *ping[] = {"PING"};
    expect_as_hiredis("", 1, ping, NULL);
    expect_as_hiredis("", 0, ping, NULL);
    const char *get[] = {"GET", "rankd:{g1}:20000:z"};
    expect_as_hiredis("*1\r\n$4\r\nPING\r\n", 2, get, NULL); /* after another command */
    /* Binary bytes, an empty argument and a NUL inside one: their lengths say where they end. */
    const char bin[] = {'a', '\0', '\r', '\n', (char)0xff};
    const char *v[] = {"EVALSHA", "0123456789012345678901234567890123456789", "3", "", bin};
    size_t lens[] = {7, 40, 1, 0, sizeof bin};
    expect_as_hiredis("", 5, v, lens);
}

static void test_many_and_long_arguments_match_hiredis(void **state)
{
    (void)state;
    /* A merged read's 130 arguments, and lengths across every power of ten up to 100,000. */
    enum { N = 130 };
    const char *argv[N];
    size_t lens[N];
    char *big = malloc(100001);
    assert_non_null(big);
    memset(big, 'x', 100001);
    size_t widths[] = {1, 9, 10, 99, 100, 999, 1000, 9999, 10000, 99999, 100000, 100001};
    for (int i = 0; i < N; i++) {
        argv[i] = big;
        lens[i] = widths[i % (sizeof widths / sizeof *widths)];
    }
    expect_as_hiredis("", N, argv, lens);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_match_hiredis),
        cmocka_unit_test(test_many_and_long_arguments_match_hiredis),
    };
    return cmocka_run_group_tests_name("resp", tests, NULL, NULL);
}
