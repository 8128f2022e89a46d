/*
 * test_pg_deadline.c — the watchdog of store/pg_deadline.c on a real socket: a connection libpq
 * starts towards a loopback listener of the test's own (no PostgreSQL: the deadline is about the
 * socket, not the protocol). Arming holds one duplicate of the socket, arming again moves the
 * deadline and holds no second one, disarming closes it, and a deadline moved nearer cuts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "obs/log.h"
#include "store/pg_deadline.h"
#include "util/clock.h"

/* Descriptors this process has open now. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

typedef struct {
    int listener, peer;
    PGconn *conn;
} link_t;

/* A libpq connection under way to a listener of ours, and our end of it. */
static void link_open(link_t *l)
{
    l->listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l->listener >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(l->listener, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l->listener, 1), 0);
    assert_int_equal(getsockname(l->listener, (struct sockaddr *)&a, &len), 0);
    char info[128];
    snprintf(info, sizeof info, "host=127.0.0.1 port=%d dbname=none user=none connect_timeout=30", ntohs(a.sin_port));
    l->conn = PQconnectStart(info);
    assert_non_null(l->conn);
    assert_true(PQsocket(l->conn) >= 0);
    l->peer = accept(l->listener, NULL, NULL);
    assert_true(l->peer >= 0);
}

static void link_close(link_t *l)
{
    PQfinish(l->conn);
    close(l->peer);
    close(l->listener);
}

/* Arming again moves the deadline on the duplicate it holds: no second one, and disarming
 * closes the one. */
static void arming_again_holds_one_duplicate(void **state)
{
    (void)state;
    link_t l;
    link_open(&l);
    int before = open_fds();
    pg_deadline_arm(l.conn, 60000);
    assert_int_equal(open_fds(), before + 1);
    pg_deadline_arm(l.conn, 60000);
    pg_deadline_arm(l.conn, 120000);
    assert_int_equal(open_fds(), before + 1);
    pg_deadline_disarm(l.conn);
    assert_int_equal(open_fds(), before);
    pg_deadline_disarm(l.conn); /* not armed: nothing */
    assert_int_equal(open_fds(), before);
    link_close(&l);
}

/* A deadline moved nearer is kept: the watchdog cuts the connection (its peer reads the end),
 * and forgets it (its duplicate closed). */
static void a_deadline_moved_nearer_cuts(void **state)
{
    (void)state;
    link_t l;
    link_open(&l);
    int before = open_fds();
    unsigned long long cuts = pg_deadline_cuts();
    pg_deadline_arm(l.conn, 600000);
    pg_deadline_arm(l.conn, 1);
    /* The cut is observed from the other end: the peer reads end of stream. Bounded at 30 s. */
    struct pollfd p = {.fd = l.peer, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 30000), 1);
    char b[64];
    ssize_t n;
    while ((n = read(l.peer, b, sizeof b)) > 0) /* libpq's startup packet, then the end */
        ;
    assert_int_equal(n, 0);
    assert_int_equal(pg_deadline_cuts(), cuts + 1);
    for (int i = 0; i < 3000 && open_fds() != before; i++) /* closed just after the shutdown */
        usleep(10000);
    assert_int_equal(open_fds(), before);
    pg_deadline_disarm(l.conn); /* cut already: nothing */
    link_close(&l);
}

/* Wait (at most 30 s) for the peer of a cut connection to read its end. */
static void peer_sees_end(int peer)
{
    struct pollfd p = {.fd = peer, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 30000), 1);
    char b[64];
    ssize_t n;
    while ((n = read(peer, b, sizeof b)) > 0)
        ;
    assert_int_equal(n, 0);
}

/* A deadline nearer than the watchdog's next look wakes it: right after a cut, the watchdog waits
 * a second (nothing else is armed); a connection armed far, then near, is cut at once, not at
 * that look. The bound is half the second the watchdog would otherwise sleep. */
static void a_nearer_deadline_wakes_the_watchdog(void **state)
{
    (void)state;
    link_t a, b;
    link_open(&a);
    link_open(&b);
    pg_deadline_arm(a.conn, 1);
    peer_sees_end(a.peer);
    int64_t t0 = clock_mono_ms();
    pg_deadline_arm(b.conn, 60000);
    pg_deadline_arm(b.conn, 1);
    peer_sees_end(b.peer);
    assert_true(clock_mono_ms() - t0 < 500);
    pg_deadline_disarm(a.conn);
    pg_deadline_disarm(b.conn);
    link_close(&a);
    link_close(&b);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arming_again_holds_one_duplicate),
        cmocka_unit_test(a_deadline_moved_nearer_cuts),
        cmocka_unit_test(a_nearer_deadline_wakes_the_watchdog),
    };
    return cmocka_run_group_tests_name("pg_deadline", tests, NULL, NULL);
}
