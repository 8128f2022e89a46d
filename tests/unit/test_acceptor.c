/* tests/unit/test_acceptor.c — what the acceptor does with connections still waiting when it
 * closes: over real loopback sockets, with no thread started (so every connection sits in the
 * backlog, as one does that arrives between the thread's last turn and the close): a whole
 * request is answered 503, a bad one its refusal, one not whole (or none) gets nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/acceptor.h"

/* A loopback address with a port free a moment ago. */
static struct sockaddr_in free_address(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof addr;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return addr;
}

/* A client connected to addr that has sent `what` (may be ""). Reads time out after 5 s. */
static int client(const struct sockaddr_in *addr, const char *what)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (const struct sockaddr *)addr, sizeof *addr), 0);
    size_t n = strlen(what);
    assert_int_equal(send(fd, what, n, MSG_NOSIGNAL), (ssize_t)n);
    return fd;
}

/* Everything the server sends on fd until it closes: the bytes, and whether the end was a FIN
 * (true) or a reset. */
static bool read_to_end(int fd, char *out, size_t cap)
{
    size_t have = 0;
    for (;;) {
        ssize_t got = recv(fd, out + have, cap - 1 - have, 0);
        if (got > 0) {
            have += (size_t)got;
            continue;
        }
        out[have] = '\0';
        return got == 0;
    }
}

static void *close_acceptor(void *a)
{
    acceptor_close(a);
    return NULL;
}

static void closes_with(bool proxy_protocol, const char *prefix)
{
    struct sockaddr_in addr = free_address();
    acceptor_opts_t opts = {.proxy_protocol = proxy_protocol, .max_waiting = 16, .head_timeout_ms = 1000};
    acceptor_stats_t stats = {0};
    char err[200];
    acceptor_t *a = acceptor_listen(&addr, 64, &opts, &stats, err, sizeof err);
    assert_non_null(a);
    char whole[512], half[256];
    snprintf(whole, sizeof whole, "%sPOST /v1/leaderboards/b/scores HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
             prefix);
    snprintf(half, sizeof half, "%sGET /v1/leaderboards HT", prefix);
    char bad[256];
    snprintf(bad, sizeof bad, "%sGET /v1/leaderboards HTTP/2.0\r\nHost: x\r\n\r\n", prefix);
    int sent_whole = client(&addr, whole), sent_half = client(&addr, half), sent_nothing = client(&addr, "");
    int sent_bad = client(&addr, bad);

    /* Closed on a thread of its own, as its clients close only once they have their answers. */
    pthread_t closer;
    assert_int_equal(pthread_create(&closer, NULL, close_acceptor, a), 0);
    char got[2048];
    assert_true(read_to_end(sent_whole, got, sizeof got)); /* the answer, then a FIN: no reset */
    assert_non_null(strstr(got, "HTTP/1.1 503 Service Unavailable\r\n"));
    assert_non_null(strstr(got, "\r\nRetry-After: 1\r\n"));
    assert_non_null(strstr(got, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(got, "{\"error\":{\"code\":\"unavailable\",\"message\":\"the server is shutting down"));
    close(sent_whole);
    assert_true(read_to_end(sent_bad, got, sizeof got)); /* a bad head gets its refusal, as always */
    assert_non_null(strstr(got, "HTTP/1.1 505 "));
    close(sent_bad);
    read_to_end(sent_half, got, sizeof got); /* closed, reset or not, without a word */
    assert_string_equal(got, "");
    read_to_end(sent_nothing, got, sizeof got);
    assert_string_equal(got, "");
    close(sent_half);
    close(sent_nothing);
    assert_int_equal(pthread_join(closer, NULL), 0);

    /* The listening socket is closed: a new connection is refused. */
    int late = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_not_equal(connect(late, (const struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(errno, ECONNREFUSED);
    close(late);
}

static void test_a_whole_request_in_the_backlog_gets_503_at_close(void **state)
{
    (void)state;
    closes_with(false, "");
}

static void test_behind_a_proxy_header_too(void **state)
{
    (void)state;
    closes_with(true, "PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_whole_request_in_the_backlog_gets_503_at_close),
        cmocka_unit_test(test_behind_a_proxy_header_too),
    };
    return cmocka_run_group_tests_name("acceptor", tests, NULL, NULL);
}
