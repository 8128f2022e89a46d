/* tests/unit/test_secret_scrub.c — no piece of a configured password or user info survives in
 * libpq's text (util/secret_scrub.h, store/pg_error.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/pg_error.h"
#include "store/pg_pool.h"
#include "util/secret_scrub.h"

static const char *scrubbed(const secret_set_t *s, const char *in)
{
    static char out[512];
    return secret_scrub(s, in, out, sizeof out);
}

static void test_every_piece_of_a_password_goes(void **state)
{
    (void)state;
    secret_set_t s;
    secret_set_init(&s);
    secret_set_add(&s, "ab12/S3cretTail", 15, false);
    /* Whole, a piece, pieces split at a separator, each three bytes or more. */
    assert_string_equal(scrubbed(&s, "pw ab12/S3cretTail."), "pw ***.");
    assert_string_equal(scrubbed(&s, "invalid integer value \"ab12\" for connection option \"port\""),
                        "invalid integer value \"***\" for connection option \"port\"");
    assert_string_equal(scrubbed(&s, "host \"S3cretTail@127.0.0.1\""), "host \"***@127.0.0.1\"");
    assert_string_equal(scrubbed(&s, "x=Tai y=ab"), "x=*** y=ab"); /* 3 bytes go; 2 stay */
    /* Two pieces side by side are one stretch. */
    assert_string_equal(scrubbed(&s, "[ab1Tail]"), "[***]");
    /* Nothing of it: the text as it was. */
    assert_string_equal(scrubbed(&s, "connection refused"), "connection refused");
    secret_set_clear(&s);
    assert_int_equal(s.n, 0);
}

static void test_a_plain_user_name_goes_only_whole(void **state)
{
    (void)state;
    secret_set_t s;
    secret_set_init(&s);
    secret_set_add(&s, "rankd", 5, true);
    assert_string_equal(scrubbed(&s, "password authentication failed for user \"rankd\""),
                        "password authentication failed for user \"***\"");
    assert_string_equal(scrubbed(&s, "current transaction is aborted"), "current transaction is aborted");
    /* Known as a password too: then every piece. */
    secret_set_add(&s, "rankd", 5, false);
    assert_int_equal(s.n, 1);
    assert_string_equal(scrubbed(&s, "transaction"), "t***saction");
    /* Too short to tell from text: kept out of the set. */
    secret_set_add(&s, "ab", 2, false);
    assert_int_equal(s.n, 1);
    secret_set_clear(&s);
}

static void test_a_uris_user_info_as_written(void **state)
{
    (void)state;
    const char *at;
    size_t n;
    assert_true(secret_uri_userinfo("postgresql://rankd:pw@S3cretTail@127.0.0.1/rankd", &at, &n));
    assert_int_equal(n, strlen("rankd:pw@S3cretTail"));
    assert_memory_equal(at, "rankd:pw@S3cretTail", n);
    assert_true(secret_uri_userinfo("postgres://u:ab12/xyz@h:5432/db", &at, &n));
    assert_memory_equal(at, "u:ab12/xyz", n);
    assert_false(secret_uri_userinfo("postgresql://h:5432/db", &at, &n));
    assert_false(secret_uri_userinfo("host=h password=p@q", &at, &n));
    assert_false(secret_uri_userinfo("://u:p@h", &at, &n));

    /* A plain user whole, the password as written piece by piece. */
    secret_set_t s;
    secret_set_init(&s);
    secret_set_add_uri(&s, "postgresql://rankd:pw@S3cretTail@127.0.0.1/rankd");
    assert_int_equal(s.n, 2);
    assert_string_equal(scrubbed(&s, "could not translate host name \"S3cretTail@127.0.0.1\" to address"),
                        "could not translate host name \"***@127.0.0.1\" to address");
    assert_string_equal(scrubbed(&s, "role \"rankd\"; a transaction"), "role \"***\"; a transaction");
    secret_set_clear(&s);
    /* A user part that holds a separator: user and password cannot be told, all of it in pieces. */
    secret_set_add_uri(&s, "postgresql://ran@kdS3cret:x@h/db");
    assert_int_equal(s.n, 1);
    assert_string_equal(scrubbed(&s, "host \"kdS3cret:x@h\""), "host \"***@h\"");
    secret_set_clear(&s);
    /* No '@': nothing. */
    secret_set_add_uri(&s, "postgresql://h/db");
    assert_int_equal(s.n, 0);
}

static void test_a_cut_never_leaves_a_piece(void **state)
{
    (void)state;
    secret_set_t s;
    secret_set_init(&s);
    secret_set_add(&s, "S3cretTail", 10, false);
    char out[12];
    /* The piece is found in the whole text before anything is cut. */
    secret_scrub(&s, "abcdefgS3cretTail", out, sizeof out);
    assert_string_equal(out, "abcdefg***");
    secret_scrub(&s, "abcdefghijS3cretTail", out, sizeof out);
    assert_string_equal(out, "abcdefghij*");
    char none[1] = {'x'};
    secret_scrub(&s, "S3cret", none, 1);
    assert_int_equal(none[0], '\0');
    secret_set_clear(&s);
}

/* libpq's own messages for the malformed URIs, as pg_connect hands them on. */
static void test_libpq_connect_errors_carry_no_piece(void **state)
{
    (void)state;
    char err[PG_ERROR_MAX];
    /* A '/' in the password: no user info for libpq, "ab12" its port. */
    PGconn *c = pg_connect("postgresql://rankd:ab12/S3cretTail@127.0.0.1:5432/rankd", 1000, 1, err, sizeof err);
    assert_null(c);
    assert_non_null(strstr(err, "for connection option \"port\""));
    assert_null(strstr(err, "ab12"));
    /* An '@' in the password: the rest of it taken for the host. */
    c = pg_connect("postgresql://rankd:pw@S3cretTail@127.0.0.1:1/rankd", 1000, 1, err, sizeof err);
    assert_null(c);
    assert_null(strstr(err, "S3cret"));
    assert_null(strstr(err, "Tail"));
    /* Every later message of any connection is scrubbed of what was noted. */
    char out[128];
    assert_string_equal(pg_scrub("server said: ab12 and retTa\n", out, sizeof out), "server said: *** and ***");
    pg_secrets_note("host=127.0.0.1 user=svc password='k=v w@x'");
    assert_string_equal(pg_scrub("quoted \"k=v w@x\" by svc", out, sizeof out), "quoted \"***\" by ***");
    /* ?password= of a URI, percent-decoded as libpq reads it. */
    pg_secrets_note("postgresql://h/db?password=Zq%40Zq9");
    assert_string_equal(pg_scrub("Zq@Zq9", out, sizeof out), "***");
    pg_secrets_forget();
    assert_string_equal(pg_scrub("ab12", out, sizeof out), "ab12");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_piece_of_a_password_goes),
        cmocka_unit_test(test_a_plain_user_name_goes_only_whole),
        cmocka_unit_test(test_a_uris_user_info_as_written),
        cmocka_unit_test(test_a_cut_never_leaves_a_piece),
        cmocka_unit_test(test_libpq_connect_errors_carry_no_piece),
    };
    return cmocka_run_group_tests_name("secret_scrub", tests, NULL, NULL);
}
