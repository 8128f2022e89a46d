/*
 * loadtest/stall_probe.c — pauses of a CPU itself, to tell them from pauses of a server.
 *
 * A SCHED_FIFO thread pinned to CPU sleeps 10 ms at a time; a wake-up much later than asked
 * means the CPU ran nothing of ours: the hypervisor paused the virtual CPU, or the kernel
 * kept it with interrupts off. No server or load generator on that CPU can answer meanwhile,
 * so a scenario's max latency that matches such a pause is the machine's, not the server's.
 * Not free: 100 wake-ups a second on each CPU cost nginx 3-4 % of its requests/s here (and
 * 13-15 % at a 2 ms period), so run.sh starts it only with --pauses.
 *
 *   gcc -O2 -o stall_probe loadtest/stall_probe.c
 *   ./stall_probe CPU THRESHOLD_MS     until SIGTERM: one line "EPOCH_SECONDS LATE_MS" per pause
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CPU THRESHOLD_MS\n", argv[0]);
        return 2;
    }
    int cpu = atoi(argv[1]);
    double threshold = atof(argv[2]) / 1e3;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        perror("sched_setaffinity");
        return 1;
    }
    struct sched_param prio = {.sched_priority = 50};
    if (sched_setscheduler(0, SCHED_FIFO, &prio) != 0)
        fprintf(stderr, "stall_probe: no SCHED_FIFO (%s): a busy CPU's own scheduling shows as pauses too\n",
                "not root?");
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct timespec nap = {0, 10000000};
    double last = clock_s(CLOCK_MONOTONIC);
    while (!stop) {
        nanosleep(&nap, NULL);
        double t = clock_s(CLOCK_MONOTONIC);
        double late = t - last - 0.010;
        if (late > threshold)
            printf("%.3f %.1f\n", clock_s(CLOCK_REALTIME), late * 1e3);
        last = t;
    }
    return 0;
}
