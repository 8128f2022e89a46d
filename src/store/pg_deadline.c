/* store/pg_deadline.c — see pg_deadline.h. */
#include "store/pg_deadline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"

typedef struct armed {
    PGconn *conn;
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
    pthread_cond_t changed;
    armed_t *list;
    bool started;
    unsigned long long cuts;
} dl = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, false, 0};

static void *watchdog_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&dl.lock);
    for (;;) {
        int64_t now = clock_mono_ms(), next = now + 1000;
        for (armed_t **pp = &dl.list; *pp;) {
            armed_t *a = *pp;
            if (a->deadline_ms <= now) {
                /* The blocked call sees the connection end; the fd stays the caller's to close. */
                shutdown(PQsocket(a->conn), SHUT_RDWR);
                log_warn(NULL, "a PostgreSQL call on %s:%s outlasted its deadline: connection cut",
                         PQhost(a->conn) ? PQhost(a->conn) : "?", PQport(a->conn) ? PQport(a->conn) : "?");
                dl.cuts++;
                *pp = a->next;
                free(a);
                continue;
            }
            if (a->deadline_ms < next)
                next = a->deadline_ms;
            pp = &a->next;
        }
        struct timespec until = clock_deadline_ms((int)(next - now));
        pthread_cond_timedwait(&dl.changed, &dl.lock, &until);
    }
    return NULL;
}

void pg_deadline_arm(PGconn *c, int ms)
{
    armed_t *a = xcalloc(1, sizeof *a);
    a->conn = c;
    a->deadline_ms = clock_mono_ms() + ms;
    pthread_mutex_lock(&dl.lock);
    if (!dl.started) {
        pthread_t t;
        if (pthread_create(&t, NULL, watchdog_main, NULL) == 0) {
            pthread_detach(t);
            dl.started = true;
        }
    }
    a->next = dl.list;
    dl.list = a;
    pthread_cond_signal(&dl.changed);
    pthread_mutex_unlock(&dl.lock);
}

void pg_deadline_disarm(PGconn *c)
{
    pthread_mutex_lock(&dl.lock);
    for (armed_t **pp = &dl.list; *pp; pp = &(*pp)->next) {
        if ((*pp)->conn == c) {
            armed_t *a = *pp;
            *pp = a->next;
            free(a);
            break;
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
