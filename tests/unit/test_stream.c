/* tests/unit/test_stream.c — a streamed answer's buffer: order, a producer held while it is full,
 * the end and its verdict, and a reader that leaves (no connection: nothing here suspends). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <microhttpd.h>
#include <pthread.h>
#include <sched.h>

#include "http/stream.h"

typedef struct {
    http_stream_t *s;
    size_t n;      /* bytes to write, in steps of 7 */
    bool ok;       /* what the last write said */
} producer_t;

static void *produce(void *arg)
{
    producer_t *p = arg;
    char chunk[7];
    p->ok = true;
    for (size_t i = 0; i < p->n && p->ok; i += sizeof chunk) {
        for (size_t k = 0; k < sizeof chunk; k++)
            chunk[k] = (char)('a' + (i + k) % 26);
        size_t len = p->n - i < sizeof chunk ? p->n - i : sizeof chunk;
        p->ok = http_stream_write(p->s, chunk, len);
    }
    http_stream_end(p->s, p->ok);
    return NULL;
}

/* A buffer of 16 bytes carries 1,000 in order: the producer waits whenever it is full, and the
 * reader, taking at most 5 at a time, sees every byte once, then the end. */
static void test_bytes_arrive_in_order_through_a_small_buffer(void **state)
{
    (void)state;
    http_stream_t *s = http_stream_new(16);
    producer_t p = {.s = s, .n = 1000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, produce, &p), 0);
    size_t got = 0;
    for (;;) {
        char buf[5];
        ssize_t n = http_stream_read(s, got, buf, sizeof buf);
        if (n == MHD_CONTENT_READER_END_OF_STREAM)
            break;
        assert_true(n >= 0 && n <= 5);
        for (ssize_t k = 0; k < n; k++)
            assert_int_equal(buf[k], (char)('a' + (got + (size_t)k) % 26));
        got += (size_t)n;
        if (n == 0)
            sched_yield(); /* no connection to suspend here: the producer is behind */
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(got, 1000);
    assert_true(p.ok);
    http_stream_release(s);
}

/* A producer that ends with an error: what was written is read, then the error. */
static void test_an_end_with_an_error_follows_the_bytes(void **state)
{
    (void)state;
    http_stream_t *s = http_stream_new(64);
    assert_true(http_stream_write(s, "abc", 3));
    http_stream_end(s, false);
    char buf[8];
    assert_int_equal(http_stream_read(s, 0, buf, sizeof buf), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(http_stream_read(s, 3, buf, sizeof buf), MHD_CONTENT_READER_END_WITH_ERROR);
    http_stream_release(s);
}

/* A reader that leaves (the client closed) frees a producer waiting on a full buffer, and its
 * writes fail from then on; the last hold frees the stream (AddressSanitizer checks). */
static void test_a_reader_that_leaves_frees_a_waiting_producer(void **state)
{
    (void)state;
    http_stream_t *s = http_stream_new(8);
    http_stream_hold(s); /* the server's own hold, as for a tracked stream */
    producer_t p = {.s = s, .n = 100};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, produce, &p), 0);
    char buf[4];
    while (http_stream_read(s, 0, buf, sizeof buf) == 0)
        sched_yield();
    http_stream_release(s); /* libmicrohttpd is done with the answer */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_false(p.ok);
    http_stream_drop(s);
}

/* Cancelled (shutdown): the answer is cut at once, bytes still buffered or not, and writes fail. */
static void test_a_cancelled_stream_ends_with_an_error(void **state)
{
    (void)state;
    http_stream_t *s = http_stream_new(8);
    assert_true(http_stream_write(s, "xy", 2));
    http_stream_cancel(s);
    assert_false(http_stream_write(s, "z", 1));
    char buf[8];
    assert_int_equal(http_stream_read(s, 0, buf, sizeof buf), MHD_CONTENT_READER_END_WITH_ERROR);
    http_stream_end(s, false);
    http_stream_release(s);
}

/* An offer (a live stream's event) goes in whole or not at all, never waits, and says why not: no
 * room (a reader that does not keep up), or the reader gone. Taken bytes make room again, and the
 * buffer's unread part is moved to its front when the event would pass its end. */
static void test_an_offer_goes_in_whole_or_not_at_all(void **state)
{
    (void)state;
    http_stream_t *s = http_stream_new(8);
    assert_int_equal(http_stream_offer(s, "abcde", 5), 1);
    assert_int_equal(http_stream_offer(s, "fghi", 4), 0); /* 4 > the 3 bytes of room: nothing written */
    char buf[8];
    assert_int_equal(http_stream_read(s, 0, buf, 3), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(http_stream_offer(s, "fghij", 5), 1); /* "de" moved to the front */
    assert_int_equal(http_stream_read(s, 0, buf, sizeof buf), 7);
    assert_memory_equal(buf, "defghij", 7);
    assert_false(http_stream_ended_whole(s));
    http_stream_end(s, true);
    assert_true(http_stream_ended_whole(s));
    assert_int_equal(http_stream_read(s, 0, buf, sizeof buf), MHD_CONTENT_READER_END_OF_STREAM);
    http_stream_release(s);

    s = http_stream_new(8);
    http_stream_release(s); /* the client left */
    assert_int_equal(http_stream_offer(s, "x", 1), -1);
    http_stream_end(s, false);
}

/* A large buffer is grown as offers need it (an idle stream does not hold its maximum), through
 * several doublings, to exactly its maximum, keeping the unread bytes in order. */
static void test_the_buffer_grows_as_offers_need_it(void **state)
{
    (void)state;
    enum { MAX = 100000, ALL = MAX + 1000 }; /* 1,000 read early, then the buffer filled to MAX */
    static char in[ALL], out[ALL];
    for (size_t i = 0; i < ALL; i++)
        in[i] = (char)('a' + i % 23);
    http_stream_t *s = http_stream_new(MAX);
    assert_int_equal(http_stream_offer(s, in, 3000), 1);
    assert_int_equal(http_stream_offer(s, in + 3000, 5000), 1);
    assert_int_equal(http_stream_read(s, 0, out, 1000), 1000);
    assert_int_equal(http_stream_offer(s, in + 8000, 20000), 1); /* 27,000 held */
    assert_int_equal(http_stream_offer(s, in + 28000, MAX - 27000 + 1), 0); /* one byte too many */
    assert_int_equal(http_stream_offer(s, in + 28000, MAX - 27000), 1);    /* to the maximum */
    assert_int_equal(http_stream_offer(s, "x", 1), 0);
    size_t got = 1000;
    while (got < ALL) {
        ssize_t n = http_stream_read(s, 0, out + got, 7777);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_memory_equal(out, in, ALL);
    http_stream_end(s, true);
    http_stream_release(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_arrive_in_order_through_a_small_buffer),
        cmocka_unit_test(test_an_end_with_an_error_follows_the_bytes),
        cmocka_unit_test(test_a_reader_that_leaves_frees_a_waiting_producer),
        cmocka_unit_test(test_a_cancelled_stream_ends_with_an_error),
        cmocka_unit_test(test_an_offer_goes_in_whole_or_not_at_all),
        cmocka_unit_test(test_the_buffer_grows_as_offers_need_it),
    };
    return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}
