/*
 * loadtest/send_floor.c — what this machine's kernel charges for one live event, with no rankd:
 * one thread sends events of B bytes to L loopback TCP sockets, round robin, at R events a second
 * (0: as fast as it can), each with one send(), as rankd's live hub does; another process, on the
 * other CPU, reads them all with epoll, as a client holding L streams would (the cheapest such
 * client: C, no parsing). Prints the events delivered a second and the CPU each side spent per
 * event: the floor under any design of the hub's sends (docs/capacity.md §8).
 *
 *   cc -O2 -Wall -Wextra -o send_floor loadtest/send_floor.c
 *   ./send_floor [--sockets 20000] [--rate 0] [--bytes 700] [--seconds 5] [--burst 97]
 *                [--sender-cpu 0] [--reader-cpu 1]
 *
 * --burst K: events go to K sockets back to back, then the next K (a top-10 stream's listeners
 * receive one answer together); with --rate, a millisecond's share of events is sent at the top
 * of each millisecond. A send that finds its socket full (or takes part of an event) is counted,
 * not retried.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    long sockets, rate, bytes, seconds, burst;
    int sender_cpu, reader_cpu;
} opts_t;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        die("sched_setaffinity");
}

/* The reader: L connections to port, every byte read until the sender closes them; its CPU
 * (µs) and bytes written to fd out when done. */
static void reader(const opts_t *o, int port, int out)
{
    pin(o->reader_cpu);
    int ep = epoll_create1(0);
    if (ep < 0)
        die("epoll_create1");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (long i = 0; i < o->sockets; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
            die("connect");
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll_ctl");
    }
    long open = o->sockets;
    int64_t bytes = 0, cpu0 = -1;
    static char buf[65536];
    struct epoll_event evs[256];
    while (open > 0) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        if (cpu0 < 0)
            cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID); /* from the first event: connecting is not counted */
        for (int i = 0; i < n; i++) {
            ssize_t r = recv(evs[i].data.fd, buf, sizeof buf, 0);
            if (r > 0) {
                bytes += r;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) { /* the sender closed it */
                close(evs[i].data.fd);
                open--;
            }
        }
    }
    int64_t report[2] = {(now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / 1000, bytes};
    if (write(out, report, sizeof report) != (ssize_t)sizeof report)
        die("write");
    exit(0);
}

static long arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", argv[*i]);
        exit(2);
    }
    return strtol(argv[++*i], NULL, 10);
}

int main(int argc, char **argv)
{
    opts_t o = {20000, 0, 700, 5, 97, 0, 1};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sockets")) o.sockets = arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--rate")) o.rate = arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--bytes")) o.bytes = arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--seconds")) o.seconds = arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--burst")) o.burst = arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--sender-cpu")) o.sender_cpu = (int)arg(argc, argv, &i);
        else if (!strcmp(argv[i], "--reader-cpu")) o.reader_cpu = (int)arg(argc, argv, &i);
        else {
            fprintf(stderr, "usage: see the head of loadtest/send_floor.c\n");
            return 2;
        }
    }
    if (o.sockets < 1 || o.bytes < 1 || o.seconds < 1 || o.burst < 1 || o.rate < 0)
        return fprintf(stderr, "send_floor: every value must be positive\n"), 2;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)o.sockets + 64 > rl.rlim_cur)
        return fprintf(stderr, "send_floor: %ld sockets need more descriptors than %lu\n", o.sockets,
                       (unsigned long)rl.rlim_cur), 2;

    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 4096) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0)
        die("listen");
    int pipefd[2];
    if (pipe(pipefd) != 0)
        die("pipe");
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        close(pipefd[0]);
        reader(&o, ntohs(a.sin_port), pipefd[1]);
    }
    close(pipefd[1]);
    pin(o.sender_cpu);
    int *fds = malloc(sizeof *fds * (size_t)o.sockets);
    char *event = malloc((size_t)o.bytes);
    if (!fds || !event)
        die("malloc");
    memset(event, 'x', (size_t)o.bytes);
    event[o.bytes - 1] = '\n';
    for (long i = 0; i < o.sockets; i++) {
        fds[i] = accept(ls, NULL, NULL);
        if (fds[i] < 0)
            die("accept");
        int one = 1;
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as rankd's sockets */
    }

    int64_t sent = 0, full = 0, partial = 0, bytes_sent = 0, late_ms = 0, next = 0;
    int64_t wall0 = now_ns(CLOCK_MONOTONIC), cpu0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    int64_t end = wall0 + o.seconds * 1000000000LL, tick = wall0;
    long per_ms = o.rate > 0 ? (o.rate + 999) / 1000 : o.burst;
    while (now_ns(CLOCK_MONOTONIC) < end) {
        if (o.rate > 0) { /* the millisecond's share at its top; a tick found already past is late */
            int64_t t = now_ns(CLOCK_MONOTONIC);
            if (t < tick) {
                struct timespec ts = {0, (long)(tick - t)};
                nanosleep(&ts, NULL);
            } else if (t - tick > 1000000) {
                late_ms++;
            }
            tick += 1000000;
        }
        for (long k = 0; k < per_ms; k++, next = (next + 1) % o.sockets) {
            ssize_t n = send(fds[next], event, (size_t)o.bytes, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n == (ssize_t)o.bytes)
                sent++;
            else if (n > 0) /* the socket took part: not an event delivered */
                partial++;
            else if (errno == EAGAIN || errno == EWOULDBLOCK)
                full++;
            else
                die("send");
            if (n > 0)
                bytes_sent += n;
        }
    }
    double wall_s = (double)(now_ns(CLOCK_MONOTONIC) - wall0) / 1e9;
    double sender_us = (double)(now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0) / 1e3;
    for (long i = 0; i < o.sockets; i++)
        close(fds[i]);
    int64_t report[2] = {0, 0};
    if (read(pipefd[0], report, sizeof report) != (ssize_t)sizeof report)
        die("read");
    waitpid(child, NULL, 0);
    printf("sockets=%ld rate=%ld bytes=%ld burst=%ld seconds=%.2f\n", o.sockets, o.rate, o.bytes, o.burst, wall_s);
    printf("events_per_s=%.0f full=%lld partial=%lld late_ms=%lld\n", (double)sent / wall_s, (long long)full,
           (long long)partial, (long long)late_ms);
    printf("sender_cpu_pct=%.0f sender_us_per_event=%.2f\n", sender_us / wall_s / 1e4,
           sent ? sender_us / (double)sent : 0);
    printf("reader_cpu_pct=%.0f reader_us_per_event=%.2f reader_bytes_ok=%s\n",
           (double)report[0] / wall_s / 1e4, sent ? (double)report[0] / (double)sent : 0,
           report[1] == bytes_sent ? "yes" : "no");
    return 0;
}
