/* tests/unit/test_request_head.c — a connection's first request head, as the acceptor checks it
 * before libmicrohttpd (which would answer the bad ones with HTML of its own); a later request's
 * parsed fields, and the answers to what the library refuses itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/request_head.h"

/* The verdict on s whole, and on every prefix of it: a prefix is NEED_MORE, or already the
 * same refusal (a bad line is refused as soon as it ends), or OK once the head has ended (a body
 * may follow it) and from then on. */
static head_status_t check(const char *s, head_verdict_t *v)
{
    size_t n = strlen(s);
    head_status_t whole = request_head_check(s, n, v);
    bool ended = false;
    for (size_t k = 0; k < n; k++) {
        head_verdict_t pv;
        head_status_t st = request_head_check(s, k, &pv);
        if (st == HEAD_BAD) {
            assert_int_equal(whole, HEAD_BAD);
            assert_int_equal(pv.status, v->status);
        } else if (st == HEAD_OK) {
            assert_int_equal(whole, HEAD_OK);
            ended = true;
        } else {
            assert_false(ended);
        }
    }
    return whole;
}

static void refused(const char *s, int status, const char *field, const char *words)
{
    head_verdict_t v;
    assert_int_equal(check(s, &v), HEAD_BAD);
    assert_int_equal(v.status, status);
    if (field)
        assert_string_equal(v.field, field);
    else
        assert_null(v.field);
    assert_non_null(strstr(v.message, words));
}

static void accepted(const char *s)
{
    head_verdict_t v;
    assert_int_equal(check(s, &v), HEAD_OK);
}

static void test_good_heads_pass(void **state)
{
    (void)state;
    accepted("GET /v1/leaderboards HTTP/1.1\r\nHost: x\r\n\r\n");
    accepted("GET /v1/leaderboards HTTP/1.0\r\n\r\n");
    accepted("GET /v1/leaderboards HTTP/1.2\r\nHost: x\r\n\r\n");    /* a later 1.x: taken as 1.1 */
    accepted("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");                /* an empty line before it */
    accepted("GET / HTTP/1.1\nHost: x\n\n");                            /* bare line feeds */
    accepted("get  /x  HTTP/1.1\r\nHost: x\r\n\r\n");                   /* what libmicrohttpd takes */
    accepted("GET / HTTP/1.1\r\nHost: x\r\nX-A: a,\t b \r\n\r\n");
    accepted("POST /v1/batch HTTP/1.1\r\nContent-Length: 12\r\ncontent-length:12 \r\n\r\n{\"requests\"");
    accepted("POST /v1/batch HTTP/1.1\r\nTransfer-Encoding:  Chunked\r\n\r\n5\r\n");
    accepted("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
}

static void test_request_lines(void **state)
{
    (void)state;
    refused("GARBAGE\r\n\r\n", 400, NULL, "METHOD TARGET HTTP/1.1");
    refused("GET /v1/leaderboards\r\nHost: x\r\n\r\n", 400, NULL, "METHOD TARGET");
    refused("GET /a b HTTP/1.1\r\n\r\n", 400, NULL, "METHOD TARGET");
    refused("GET / HTTQ/1.1\r\n\r\n", 400, NULL, "METHOD TARGET");
    refused("GET / HTTP/1.x\r\n\r\n", 400, NULL, "METHOD TARGET");
    refused("G(T / HTTP/1.1\r\n\r\n", 400, NULL, "METHOD TARGET");
    refused("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, NULL, "HTTP/1.0 and HTTP/1.1");
    refused("GET / HTTP/0.9\r\n\r\n", 505, NULL, "HTTP/1.0 and HTTP/1.1");
    refused("GET / HTTP/3\r\n\r\n", 505, NULL, "HTTP/1.0 and HTTP/1.1");
}

static void test_header_lines_and_framing(void **state)
{
    (void)state;
    refused("GET / HTTP/1.1\r\nHost: x\r\nBadHeaderLine\r\n\r\n", 400, "headers", "Name: value");
    refused("GET / HTTP/1.1\r\n: novalue\r\n\r\n", 400, "headers", "Name: value");
    /* what libmicrohttpd would frame otherwise than this check: a request smuggled in a body */
    refused("POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", 400, "headers", "no space before the colon");
    refused("POST / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n", 400, "headers", "no space before");
    refused("POST / HTTP/1.1\r\nContent-Length: 1\r\n 0\r\n\r\n", 400, "headers", "folded");
    refused("GET / HTTP/1.1\r\n X-A: a\r\n\r\n", 400, "headers", "folded");
    refused("GET / HTTP/1.1\r\nX(A): a\r\n\r\n", 400, "headers", "its name a token");
    refused("POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400, "Content-Length", "number of bytes");
    refused("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400, "Content-Length", "number of bytes");
    refused("POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", 400, "Content-Length", "18 digits");
    refused("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "Content-Length", "number of bytes");
    refused("POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400, "Content-Length", "one Content-Length");
    refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "Transfer-Encoding", "chunked");
    refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, "Transfer-Encoding", "chunked");
    refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
            "Transfer-Encoding", "once");
    refused("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "Transfer-Encoding",
            "not both");
}

static void test_nul_bytes(void **state)
{
    (void)state;
    static const char line[] = "GET /a\0b HTTP/1.1\r\n\r\n", header[] = "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
    head_verdict_t v;
    assert_int_equal(request_head_check(line, sizeof line - 1, &v), HEAD_BAD);
    assert_int_equal(v.status, 400);
    assert_int_equal(request_head_check(header, sizeof header - 1, &v), HEAD_BAD);
    assert_string_equal(v.field, "headers");
    assert_non_null(strstr(v.message, "NUL"));
}

static void test_sizes(void **state)
{
    (void)state;
    char *s = malloc(3 * REQUEST_HEAD_MAX);
    /* a request line past the limit, whole or not yet ended */
    int n = snprintf(s, 3 * REQUEST_HEAD_MAX, "GET /?p=%0*d HTTP/1.1\r\nHost: x\r\n\r\n", REQUEST_HEAD_MAX, 0);
    head_verdict_t v;
    assert_int_equal(request_head_check(s, (size_t)n, &v), HEAD_BAD);
    assert_int_equal(v.status, 414);
    assert_string_equal(v.field, "path");
    assert_int_equal(request_head_check(s, REQUEST_HEAD_MAX + 1, &v), HEAD_BAD);
    assert_int_equal(v.status, 414);
    assert_int_equal(request_head_check(s, REQUEST_HEAD_MAX, &v), HEAD_NEED_MORE);
    /* headers past it */
    n = snprintf(s, 3 * REQUEST_HEAD_MAX, "GET / HTTP/1.1\r\nX-Pad: %0*d\r\n\r\n", REQUEST_HEAD_MAX, 0);
    assert_int_equal(request_head_check(s, (size_t)n, &v), HEAD_BAD);
    assert_int_equal(v.status, 431);
    assert_string_equal(v.field, "headers");
    assert_int_equal(request_head_check(s, REQUEST_HEAD_MAX + 1, &v), HEAD_BAD);
    assert_int_equal(v.status, 431);
    /* a head that ends just within it passes, one byte more does not */
    const char *start = "GET / HTTP/1.1\r\nX-Pad: ", *tail = "\r\n\r\n";
    size_t pad = REQUEST_HEAD_MAX - strlen(start) - strlen(tail);
    n = snprintf(s, 3 * REQUEST_HEAD_MAX, "%s%0*d%s", start, (int)pad, 0, tail);
    assert_int_equal(n, REQUEST_HEAD_MAX);
    assert_int_equal(request_head_check(s, (size_t)n, &v), HEAD_OK);
    n = snprintf(s, 3 * REQUEST_HEAD_MAX, "%s%0*d%s", start, (int)pad + 1, 0, tail);
    assert_int_equal(request_head_check(s, (size_t)n, &v), HEAD_BAD);
    assert_int_equal(v.status, 431);
    /* endless empty lines are no way around it */
    memset(s, '\n', REQUEST_HEAD_MAX + 1);
    assert_int_equal(request_head_check(s, REQUEST_HEAD_MAX + 1, &v), HEAD_BAD);
    assert_int_equal(v.status, 414);
    free(s);
}

static void test_the_answer_is_the_json_error(void **state)
{
    (void)state;
    head_verdict_t v;
    assert_int_equal(request_head_check("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 38, &v), HEAD_BAD);
    char out[1024];
    size_t n = request_head_answer(&v, 0, out, sizeof out);
    assert_true(n > 0 && n == strlen(out));
    const char *body = strstr(out, "\r\n\r\n") + 4;
    assert_string_equal(body, "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"Content-Length must be a "
                              "number of bytes (at most 18 digits)\",\"field\":\"Content-Length\"}}");
    assert_true(strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    char want[64];
    snprintf(want, sizeof want, "Content-Length: %zu\r\n", strlen(body));
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_non_null(strstr(out, "\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n"));
    assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
    assert_int_equal(request_head_check("GET / HTTP/2.0\r\n", 16, &v), HEAD_BAD);
    assert_true(request_head_answer(&v, 0, out, sizeof out) > 0);
    assert_true(strncmp(out, "HTTP/1.1 505 HTTP Version Not Supported\r\n", 41) == 0);
    assert_null(strstr(out, "\"field\""));
    assert_int_equal(request_head_answer(&v, 0, out, 40), 0); /* too small: nothing */
}

/* A later request's fields, as libmicrohttpd parsed them: the same rules as in a head. */
static head_status_t fields(const char *const *kv, size_t n, head_verdict_t *v)
{
    head_framing_t f = {0};
    for (size_t i = 0; i < 2 * n; i += 2)
        if (request_head_field(kv[i], strlen(kv[i]), kv[i + 1], strlen(kv[i + 1]), &f, v) != HEAD_OK)
            return HEAD_BAD;
    return request_head_framing_end(&f, v);
}

static void test_parsed_fields_follow_the_rules_of_the_head(void **state)
{
    (void)state;
    head_verdict_t v;
    const char *ok[] = {"Host", "x", "Content-Length", " 12 ", "Content-Length", "12", "X-A", ""};
    assert_int_equal(fields(ok, 4, &v), HEAD_OK);
    const char *chunked[] = {"Transfer-Encoding", "Chunked"};
    assert_int_equal(fields(chunked, 1, &v), HEAD_OK);
    const char *space[] = {"Content-Length ", "44"}; /* "Content-Length : 44", as the library keeps it */
    assert_int_equal(fields(space, 1, &v), HEAD_BAD);
    assert_int_equal(v.status, 400);
    assert_string_equal(v.field, "headers");
    assert_non_null(strstr(v.message, "no space before the colon"));
    const char *empty[] = {"", "x"};
    assert_int_equal(fields(empty, 1, &v), HEAD_BAD);
    const char *two[] = {"Content-Length", "2", "content-length", "3"};
    assert_int_equal(fields(two, 2, &v), HEAD_BAD);
    assert_string_equal(v.field, "Content-Length");
    assert_non_null(strstr(v.message, "one Content-Length"));
    const char *nan[] = {"Content-Length", "1e3"};
    assert_int_equal(fields(nan, 1, &v), HEAD_BAD);
    const char *gzip[] = {"Transfer-Encoding", "gzip, chunked"};
    assert_int_equal(fields(gzip, 1, &v), HEAD_BAD);
    assert_string_equal(v.field, "Transfer-Encoding");
    const char *twice[] = {"Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked"};
    assert_int_equal(fields(twice, 2, &v), HEAD_BAD);
    const char *both[] = {"Transfer-Encoding", "chunked", "Content-Length", "3"};
    assert_int_equal(fields(both, 2, &v), HEAD_BAD);
    assert_non_null(strstr(v.message, "not both"));
}

static void test_what_the_library_refuses_gets_the_json_error(void **state)
{
    (void)state;
    static const struct {
        int status, answered;
        const char *code, *field, *words;
    } cases[] = {
        {400, 400, "invalid_argument", NULL, "Name: value"},
        {413, 413, "payload_too_large", NULL, "larger than"},
        {414, 414, "invalid_argument", "path", "longer than 8192 bytes"},
        {431, 431, "invalid_argument", "headers", "larger than 8192 bytes"},
        {505, 505, "invalid_argument", NULL, "HTTP/1.0 and HTTP/1.1"},
        {500, 500, "internal", NULL, "could not be read"},
        {417, 417, "invalid_argument", NULL, "could not be read"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        head_verdict_t v = request_head_library_refusal(cases[i].status);
        assert_int_equal(v.status, cases[i].answered);
        assert_string_equal(v.code, cases[i].code);
        if (cases[i].field)
            assert_string_equal(v.field, cases[i].field);
        else
            assert_null(v.field);
        assert_non_null(strstr(v.message, cases[i].words));
        char out[1024];
        size_t n = request_head_answer(&v, 0, out, sizeof out);
        assert_true(n > 0);
        char line[32];
        snprintf(line, sizeof line, "HTTP/1.1 %d ", cases[i].answered);
        assert_true(strncmp(out, line, strlen(line)) == 0);
        char body[512];
        assert_true(request_head_body(&v, body, sizeof body) > 0);
        assert_string_equal(strstr(out, "\r\n\r\n") + 4, body);
        assert_int_equal(request_head_body(&v, body, 10), 0); /* too small: nothing */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_heads_pass),
        cmocka_unit_test(test_request_lines),
        cmocka_unit_test(test_header_lines_and_framing),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_the_answer_is_the_json_error),
        cmocka_unit_test(test_parsed_fields_follow_the_rules_of_the_head),
        cmocka_unit_test(test_what_the_library_refuses_gets_the_json_error),
    };
    return cmocka_run_group_tests_name("request_head", tests, NULL, NULL);
}
