/* An import's rows (core/import_row.c) and the pipe its body comes through (http/body_pipe.c):
 * each row read and judged as a submission would be, a bad one named by its field; a CSV header
 * only on line 1; COPY's text escapes; the pipe's ring through wraps, its end and its abort. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/import_row.h"
#include "core/window.h"
#include "http/body_pipe.h"

#define NOW 1764000000000LL /* 2025-11-24T16:00:00Z */

static import_rules_t rules(import_format_t f)
{
    return (import_rules_t){.format = f, .has_min_score = true, .min_score = -10, .has_max_score = true,
                            .max_score = 1000000, .window_start_ms = NOW - 86400000LL, .now_ms = NOW};
}

static import_row_status_t parse(import_format_t f, const char *line, long no, import_row_t *row,
                                 import_row_error_t *err)
{
    import_rules_t r = rules(f);
    return import_row_parse(&r, line, strlen(line), no, row, err);
}

/* The field a bad line is refused by. */
static const char *refused(import_format_t f, const char *line)
{
    import_row_t row;
    import_row_error_t err;
    if (parse(f, line, 2, &row, &err) != IMPORT_ROW_BAD) {
        import_row_clear(&row);
        return "accepted";
    }
    return err.field;
}

static void test_csv_rows_and_their_fields(void **state)
{
    (void)state;
    import_row_t row;
    import_row_error_t err;
    assert_int_equal(parse(IMPORT_CSV, "p1,42", 2, &row, &err), IMPORT_ROW_OK);
    assert_string_equal(row.player, "p1");
    assert_int_equal(row.score, 42);
    assert_false(row.has_achieved);
    assert_null(row.metadata);
    assert_int_equal(parse(IMPORT_CSV, "p.2:x@y,-10,2025-11-24T15:00:00.5Z,\"{\"\"a\"\": [1, \"\"b,c\"\"]}\"\r", 2,
                           &row, &err),
                     IMPORT_ROW_OK);
    assert_int_equal(row.score, -10);
    assert_true(row.has_achieved);
    assert_int_equal(row.achieved_ms, NOW - 3600000 + 500);
    assert_string_equal(row.metadata, "{\"a\":[1,\"b,c\"]}");
    import_row_clear(&row);
    assert_int_equal(parse(IMPORT_CSV, "p3,7,,", 2, &row, &err), IMPORT_ROW_OK); /* empty fields: none */
    assert_false(row.has_achieved);
    assert_null(row.metadata);
    assert_int_equal(parse(IMPORT_CSV, "   ", 5, &row, &err), IMPORT_ROW_SKIP);
}

static void test_a_header_only_on_the_first_line(void **state)
{
    (void)state;
    import_row_t row;
    import_row_error_t err;
    assert_int_equal(parse(IMPORT_CSV, "player_id,score,achieved_at,metadata", 1, &row, &err), IMPORT_ROW_SKIP);
    assert_int_equal(parse(IMPORT_CSV, "player_id,score", 1, &row, &err), IMPORT_ROW_SKIP);
    assert_int_equal(parse(IMPORT_CSV, "player_id,points", 1, &row, &err), IMPORT_ROW_BAD);
    assert_string_equal(err.field, "line");
    assert_int_equal(parse(IMPORT_CSV, "player_id,score", 2, &row, &err), IMPORT_ROW_BAD); /* a row: bad score */
    assert_string_equal(err.field, "score");
}

static void test_bad_csv_rows_name_their_field(void **state)
{
    (void)state;
    assert_string_equal(refused(IMPORT_CSV, "bad id,1"), "player_id");
    assert_string_equal(refused(IMPORT_CSV, "...,1"), "player_id");
    assert_string_equal(refused(IMPORT_CSV, ",1"), "player_id");
    assert_string_equal(refused(IMPORT_CSV, "p"), "score");
    assert_string_equal(refused(IMPORT_CSV, "p,"), "score");
    assert_string_equal(refused(IMPORT_CSV, "p,1.0"), "score");
    assert_string_equal(refused(IMPORT_CSV, "p,+1"), "score");
    assert_string_equal(refused(IMPORT_CSV, "p,-11"), "score");      /* under min_score */
    assert_string_equal(refused(IMPORT_CSV, "p,1000001"), "score");  /* over max_score */
    assert_string_equal(refused(IMPORT_CSV, "p,99999999999999999"), "score");
    assert_string_equal(refused(IMPORT_CSV, "p,1,2025-11-24"), "achieved_at");
    assert_string_equal(refused(IMPORT_CSV, "p,1,2025-11-24T16:00:00.001Z"), "achieved_at"); /* future */
    assert_string_equal(refused(IMPORT_CSV, "p,1,2025-11-23T15:59:59Z"), "achieved_at");     /* before the window */
    assert_string_equal(refused(IMPORT_CSV, "p,1,2025-11-24T17:00:00+02:00"), "accepted");  /* 15:00Z */
    assert_string_equal(refused(IMPORT_CSV, "p,1,,[1]"), "metadata");
    assert_string_equal(refused(IMPORT_CSV, "p,1,,\"{\"\"a\"\":1\""), "metadata"); /* quoted, not JSON */
    assert_string_equal(refused(IMPORT_CSV, "p,1,,{\"a\":1}"), "line");                /* a quote unquoted */
    assert_string_equal(refused(IMPORT_CSV, "p,1,,,x"), "line");
    assert_string_equal(refused(IMPORT_CSV, "p,\"1"), "line");
    assert_string_equal(refused(IMPORT_CSV, "p,1\"x\""), "line");
    char big[1200] = "p,1,,\"{\"\"k\"\":\"\"";
    memset(big + strlen(big), 'x', 1060);
    strcpy(big + strlen(big), "\"\"}\"");
    assert_string_equal(refused(IMPORT_CSV, big), "metadata"); /* over 1024 bytes */
}

static void test_ndjson_rows(void **state)
{
    (void)state;
    import_row_t row;
    import_row_error_t err;
    assert_int_equal(parse(IMPORT_NDJSON, "{\"player_id\":\"p\",\"score\":5,\"metadata\":{\"z\":1,\"a\":0.1}}", 2,
                           &row, &err),
                     IMPORT_ROW_OK);
    assert_int_equal(row.score, 5);
    assert_string_equal(row.metadata, "{\"z\":1,\"a\":0.1}");
    import_row_clear(&row);
    assert_int_equal(parse(IMPORT_NDJSON, "{\"player_id\":\"p\",\"score\":5,\"achieved_at\":null,\"metadata\":null}",
                           2, &row, &err),
                     IMPORT_ROW_OK);
    assert_string_equal(refused(IMPORT_NDJSON, "[1]"), "line");
    assert_string_equal(refused(IMPORT_NDJSON, "{\"player_id\":\"p\",\"score\":5,\"x\":1}"), "line");
    assert_string_equal(refused(IMPORT_NDJSON, "{\"player_id\":\"p\",\"score\":5,\"score\":6}"), "line");
    assert_string_equal(refused(IMPORT_NDJSON, "{\"player_id\":5,\"score\":5}"), "player_id");
    assert_string_equal(refused(IMPORT_NDJSON, "{\"player_id\":\"p\",\"score\":\"5\"}"), "score");
    assert_string_equal(refused(IMPORT_NDJSON, "{\"player_id\":\"p\",\"score\":5.0}"), "score");
    assert_string_equal(refused(IMPORT_NDJSON, "{\"player_id\":\"p\",\"score\":5,\"achieved_at\":1}"), "achieved_at");
    assert_string_equal(refused(IMPORT_NDJSON, "{\"player_id\":\"p\",\"score\":5,\"metadata\":[]}"), "metadata");
}

static void test_copy_lines_escape_what_copy_reads(void **state)
{
    (void)state;
    import_row_t row = {.player = "p", .score = -3, .has_achieved = true, .achieved_ms = 12};
    row.metadata = strdup("{\"a\":\"x\\ty\\\\z\"}");
    buf_t b;
    buf_init(&b);
    import_row_copy_line(&b, 7, &row);
    assert_string_equal(b.data, "7\tp\t-3\t12\t{\"a\":\"x\\\\ty\\\\\\\\z\"}\n");
    import_row_clear(&row);
    buf_reset(&b);
    import_row_t bare = {.player = "q", .score = 1};
    import_row_copy_line(&b, 8, &bare);
    assert_string_equal(b.data, "8\tq\t1\t\\N\t\\N\n");
    buf_free(&b);
}

static void test_rfc3339_instants(void **state)
{
    (void)state;
    int64_t ms;
    const char *s = "1970-01-01T00:00:00Z";
    assert_true(window_parse_ms(s, strlen(s), &ms));
    assert_int_equal(ms, 0);
    s = "2026-11-21T20:00:00.123456789Z";
    assert_true(window_parse_ms(s, strlen(s), &ms));
    char out[25];
    window_format_ms(ms, out);
    assert_string_equal(out, "2026-11-21T20:00:00.123Z");
    s = "2026-11-21T20:00:00-01:30";
    assert_true(window_parse_ms(s, strlen(s), &ms));
    window_format_ms(ms, out);
    assert_string_equal(out, "2026-11-21T21:30:00.000Z");
    const char *bad[] = {"2026-11-21", "2026-11-21T20:00:00", "2026-02-30T00:00:00Z", "2026-11-21T24:00:00Z",
                         "2026-11-21T20:00:00.Z", "2026-11-21T20:00:00+0100", "2026-11-21 20:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(window_parse_ms(bad[i], strlen(bad[i]), &ms));
}

/* ---------------------------------------------------------------- the body's pipe */

typedef struct {
    http_body_pipe_t *p;
    unsigned long long sum, n;
    int end; /* 0 the end, -1 aborted */
} reader_t;

static void *read_all(void *arg)
{
    reader_t *r = arg;
    char buf[7];
    ssize_t n;
    while ((n = http_body_pipe_read(r->p, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++, r->n++)
            r->sum += (unsigned char)buf[i] * (r->n % 251 + 1);
    r->end = (int)n;
    return NULL;
}

static int woken;
static void wake(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&woken, 1, __ATOMIC_SEQ_CST);
}

static void test_the_pipe_carries_every_byte_in_order_through_wraps(void **state)
{
    (void)state;
    http_body_pipe_t *p = http_body_pipe_new(10); /* small: the ring wraps all the time */
    http_body_pipe_hold(p);
    reader_t r = {.p = p};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_all, &r), 0);
    unsigned long long want = 0, at = 0;
    char data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (char)(i * 31 + 7);
    for (int round = 0; round < 50; round++) {
        size_t off = 0;
        while (off < sizeof data) {
            size_t took = http_body_pipe_offer(p, data + off, sizeof data - off);
            for (size_t i = 0; i < took; i++, at++)
                want += (unsigned char)data[off + i] * (at % 251 + 1);
            off += took;
            if (took == 0 && http_body_pipe_wait_room(p, wake, NULL))
                while (__atomic_load_n(&woken, __ATOMIC_SEQ_CST) == 0) {
                }
            __atomic_store_n(&woken, 0, __ATOMIC_SEQ_CST);
        }
    }
    http_body_pipe_close(p);
    pthread_join(t, NULL);
    assert_int_equal(r.end, 0);
    assert_int_equal(r.n, 50000);
    assert_int_equal(r.sum, want);
    http_body_pipe_release(p);
    http_body_pipe_release(p);
}

static void test_an_aborted_pipe_fails_its_reader_and_a_consumer_that_gives_up_drops_bytes(void **state)
{
    (void)state;
    http_body_pipe_t *p = http_body_pipe_new(4);
    http_body_pipe_hold(p);
    assert_int_equal(http_body_pipe_offer(p, "abcdef", 6), 4);
    assert_true(http_body_pipe_wait_room(p, wake, NULL));
    http_body_pipe_give_up(p); /* the consumer failed: the server is woken, and every byte is taken */
    assert_int_equal(__atomic_load_n(&woken, __ATOMIC_SEQ_CST), 1);
    assert_true(http_body_pipe_failed(p));
    assert_int_equal(http_body_pipe_offer(p, "ghijkl", 6), 6);
    assert_false(http_body_pipe_wait_room(p, wake, NULL));
    http_body_pipe_release(p);
    http_body_pipe_release(p);

    p = http_body_pipe_new(4);
    http_body_pipe_hold(p);
    assert_int_equal(http_body_pipe_offer(p, "ab", 2), 2);
    http_body_pipe_abort(p); /* the connection ended mid-body */
    char buf[4];
    assert_int_equal(http_body_pipe_read(p, buf, sizeof buf), -1);
    http_body_pipe_release(p);
    http_body_pipe_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_rows_and_their_fields),
        cmocka_unit_test(test_a_header_only_on_the_first_line),
        cmocka_unit_test(test_bad_csv_rows_name_their_field),
        cmocka_unit_test(test_ndjson_rows),
        cmocka_unit_test(test_copy_lines_escape_what_copy_reads),
        cmocka_unit_test(test_rfc3339_instants),
        cmocka_unit_test(test_the_pipe_carries_every_byte_in_order_through_wraps),
        cmocka_unit_test(test_an_aborted_pipe_fails_its_reader_and_a_consumer_that_gives_up_drops_bytes),
    };
    return cmocka_run_group_tests_name("import_row", tests, NULL, NULL);
}
