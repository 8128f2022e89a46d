/* store/pg_deadline.c — see pg_deadline.h. */
#include "store/pg_deadline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"

typedef struct armed {
    PGconn *conn;
    int fd;              /* a duplicate of the connection's socket, ours to shut down and close */
    int64_t deadline_ms;
    struct armed *next;
} armed_t;

/*
 * The armed connections, shared by every thread that runs statements and the watchdog: a list
 * under one lock (few are armed at once: one per connection in use). The watchdog starts with
 * the first arming and lives as long as the process.
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* on CLOCK_MONOTONIC (made so when the watchdog starts) */
    armed_t *list;
    bool started;
    int64_t wake_ms; /* when the watchdog looks next (it looks at least once a second) */
    unsigned long long cuts;
} dl = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, false, 0, 0};

/* Under dl.lock: wake the watchdog only for a deadline before its next look. Deadlines are a
 * statement timeout away (seconds) and it looks every second: most armings wake nobody (a wakeup
 * was two of a lone write's transaction's syscalls and a context switch, twice per batch). */
static void wake_if_sooner(int64_t deadline_ms)
{
    if (deadline_ms < dl.wake_ms)
        pthread_cond_signal(&dl.changed);
}

/* Under dl.lock: take the connections past their deadline out of the list, as a list of their
 * own; *next = when the watchdog must look again. */
static armed_t *take_expired(int64_t now, int64_t *next)
{
    armed_t *cut = NULL;
    *next = now + 1000;
    for (armed_t **pp = &dl.list; *pp;) {
        armed_t *a = *pp;
        if (a->deadline_ms <= now) {
            *pp = a->next;
            a->next = cut;
            cut = a;
            dl.cuts++;
            continue;
        }
        if (a->deadline_ms < *next)
            *next = a->deadline_ms;
        pp = &a->next;
    }
    return cut;
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&dl.lock);
    for (;;) {
        int64_t next;
        armed_t *cut = take_expired(clock_mono_ms(), &next);
        if (cut) {
            pthread_mutex_unlock(&dl.lock);
            /* Outside the lock: shutting the socket down (through our own duplicate, never a
             * number libpq may have closed and the process reused) ends the blocked call. */
            while (cut) {
                armed_t *a = cut;
                cut = a->next;
                shutdown(a->fd, SHUT_RDWR);
                close(a->fd);
                log_warn(NULL, "a PostgreSQL call outlasted its deadline: its connection was cut");
                free(a);
            }
            pthread_mutex_lock(&dl.lock);
            continue; /* armings made meanwhile signalled nobody: look again before waiting */
        }
        /* The next look, read by the armings (wake_if_sooner), is set under the lock it waits
         * with: an arming either comes before and is in `next`, or after and signals. The
         * condition's clock is the monotonic one: a wall clock set back never lengthens a wait. */
        dl.wake_ms = next;
        int64_t left = next - clock_mono_ms();
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (left > 0 ? left : 1) / 1000;
        until.tv_nsec += (long)((left > 0 ? left : 1) % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&dl.changed, &dl.lock, &until);
    }
    return NULL;
}

void pg_deadline_arm(PGconn *c, int ms)
{
    int64_t deadline_ms = clock_mono_ms() + ms;
    pthread_mutex_lock(&dl.lock);
    for (armed_t *a = dl.list; a; a = a->next) {
        if (a->conn == c) { /* armed already, still in the same use: its duplicate holds */
            a->deadline_ms = deadline_ms;
            wake_if_sooner(deadline_ms);
            pthread_mutex_unlock(&dl.lock);
            return;
        }
    }
    pthread_mutex_unlock(&dl.lock);
    int fd = PQsocket(c) >= 0 ? fcntl(PQsocket(c), F_DUPFD_CLOEXEC, 0) : -1;
    if (fd < 0)
        return; /* no socket (a broken connection): its calls fail at once */
    armed_t *a = xcalloc(1, sizeof *a);
    a->conn = c;
    a->fd = fd;
    a->deadline_ms = deadline_ms;
    pthread_mutex_lock(&dl.lock);
    if (!dl.started) {
        /* Nobody waits on the condition yet (nor was it signalled: wake_ms is 0): made again on
         * the monotonic clock the watchdog's waits count in. */
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_destroy(&dl.changed);
        pthread_cond_init(&dl.changed, &ca);
        pthread_condattr_destroy(&ca);
        pthread_t t;
        if (pthread_create(&t, NULL, watchdog_main, NULL) == 0) {
            pthread_detach(t);
            dl.started = true;
        }
    }
    a->next = dl.list;
    dl.list = a;
    wake_if_sooner(deadline_ms);
    pthread_mutex_unlock(&dl.lock);
}

void pg_deadline_disarm(PGconn *c)
{
    pthread_mutex_lock(&dl.lock);
    for (armed_t **pp = &dl.list; *pp; pp = &(*pp)->next) {
        if ((*pp)->conn == c) {
            armed_t *a = *pp;
            *pp = a->next;
            pthread_mutex_unlock(&dl.lock);
            close(a->fd);
            free(a);
            return;
        }
    }
    pthread_mutex_unlock(&dl.lock);
}

/* The deadline of one statement (pg_deadline_arm_statement): set once at start, read by every
 * thread that runs statements, hence atomic. */
static _Atomic int statement_ms = 0;

void pg_deadline_set_statement_ms(int ms)
{
    statement_ms = ms;
}

void pg_deadline_arm_statement(PGconn *c, int statements)
{
    int ms = statement_ms;
    if (ms > 0)
        pg_deadline_arm(c, ms * (statements > 0 ? statements : 1));
}

unsigned long long pg_deadline_cuts(void)
{
    pthread_mutex_lock(&dl.lock);
    unsigned long long n = dl.cuts;
    pthread_mutex_unlock(&dl.lock);
    return n;
}
