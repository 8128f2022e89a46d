/* tests/unit/test_json_text.c — compact JSON text with shortest reals (metadata as stored). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/json_text.h"

static void real_is(double d, const char *want)
{
    char out[32];
    size_t n = json_real_shortest(d, out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    assert_true(strtod(out, NULL) == d);
}

static void test_reals_take_the_fewest_digits_that_read_back(void **state)
{
    (void)state;
    real_is(0.1, "0.1");
    real_is(100.0, "100.0");
    real_is(1.5, "1.5");
    real_is(-0.0, "-0.0");
    real_is(0.0001, "0.0001");
    real_is(0.00001, "1e-05");
    real_is(1e16, "1e+16");
    real_is(1e15, "1000000000000000.0");
    real_is(1e22, "1e+22");
    real_is(5e-324, "5e-324");
    real_is(1.7976931348623157e308, "1.7976931348623157e+308");
    real_is(0.30000000000000004, "0.30000000000000004");
    real_is(123456789012345680.0, "1.2345678901234568e+17");
    real_is(-2.5e-7, "-2.5e-07");
}

static char *compact_of(const char *json)
{
    json_error_t err;
    json_t *v = json_loads(json, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    assert_non_null(v);
    char *text = json_text_compact(v);
    json_decref(v);
    assert_non_null(text);
    return text;
}

static void compact_is(const char *json, const char *want)
{
    char *text = compact_of(json);
    assert_string_equal(text, want);
    free(text);
}

static void test_compact_text_keeps_order_strings_and_integers(void **state)
{
    (void)state;
    compact_is("{ \"b\" : 0.1, \"a\" : [1e2, -0, 1.50, 7] }", "{\"b\":0.1,\"a\":[100.0,0,1.5,7]}");
    /* Numbers inside strings, escapes and a quote after a backslash are left as they are. */
    compact_is("{\"s\":\"0.10000000000000001 \\\" 1e2\",\"t\":\"\\\\\",\"n\":0.10000000000000001}",
               "{\"s\":\"0.10000000000000001 \\\" 1e2\",\"t\":\"\\\\\",\"n\":0.1}");
    compact_is("{\"big\":9007199254740993,\"neg\":-12,\"e\":{}}", "{\"big\":9007199254740993,\"neg\":-12,\"e\":{}}");
    compact_is("{\"u\":\"caf\\u00e9\",\"z\":\"a\\u0000b\"}", "{\"u\":\"caf\xc3\xa9\",\"z\":\"a\\u0000b\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reals_take_the_fewest_digits_that_read_back),
        cmocka_unit_test(test_compact_text_keeps_order_strings_and_integers),
    };
    return cmocka_run_group_tests_name("json_text", tests, NULL, NULL);
}
