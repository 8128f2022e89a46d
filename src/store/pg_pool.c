/* store/pg_pool.c — lazily-filled, bounded libpq connection pool. */
#include "store/pg_error.h"
#include "store/pg_pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"

struct pg_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    char *conninfo;
    int size;
    int statement_timeout_ms;
    int connect_timeout_s;
    int open;        /* connections in existence, idle or lent */
    int n_idle;
    unsigned long long wait_timeouts; /* acquires that found no free connection in time */
    unsigned long long stale;         /* idle connections found closed by the server */
    PGconn **idle;   /* stack of idle connections */
    bool (*on_connect)(PGconn *conn, void *arg);
    void *on_connect_arg;
};

pg_pool_t *pg_pool_new(const char *conninfo, int size, int statement_timeout_ms, int connect_timeout_s)
{
    pg_pool_t *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->conninfo = xstrdup(conninfo);
    p->size = size;
    p->statement_timeout_ms = statement_timeout_ms;
    p->connect_timeout_s = connect_timeout_s;
    p->idle = xcalloc((size_t)size, sizeof *p->idle);
    return p;
}

int pg_pool_statement_timeout_ms(const pg_pool_t *p)
{
    return p->statement_timeout_ms;
}

void pg_pool_on_connect(pg_pool_t *p, bool (*prepare)(PGconn *conn, void *arg), void *arg)
{
    p->on_connect = prepare;
    p->on_connect_arg = arg;
}

void pg_pool_free(pg_pool_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_idle; i++)
        PQfinish(p->idle[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p->idle);
    free(p->conninfo);
    free(p);
}

bool pg_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

PGconn *pg_connect(const char *conninfo, int statement_timeout_ms, int connect_timeout_s, char *err, size_t errlen)
{
    char timeout[16], user_timeout[16], app[32];
    snprintf(app, sizeof app, "rankd/%d", (int)getpid()); /* who did what, in pg_stat_activity and view_refreshes */
    snprintf(timeout, sizeof timeout, "%d", connect_timeout_s);
    /* A node that stops answering without closing (its host gone, packets dropped) must fail a
     * statement within a bound the server's statement_timeout cannot give: TCP gives up on
     * unacknowledged data after tcp_user_timeout, and keepalives notice an idle dead peer.
     * Before dbname, so that a conninfo setting them wins. */
    snprintf(user_timeout, sizeof user_timeout, "%d", statement_timeout_ms + 5000);
    const char *keys[] = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                          "dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {"1", "10", "5", "3", user_timeout, conninfo, timeout, app, NULL};
    pg_secrets_note(conninfo); /* before libpq can say anything about it */
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        pg_error_text(c, NULL, err, errlen);
        PQfinish(c);
        return NULL;
    }
    char setup[256];
    snprintf(setup, sizeof setup,
             "SET statement_timeout = %d; SET TIME ZONE 'UTC'; SET max_parallel_workers_per_gather = 0",
             statement_timeout_ms);
    PGresult *r = PQexec(c, setup);
    bool ok = pg_ok(r);
    if (!ok)
        pg_error_text(c, r, err, errlen);
    PQclear(r);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

bool pg_conn_alive(PGconn *c)
{
    if (PQstatus(c) != CONNECTION_OK)
        return false;
    /* An idle connection has nothing to read: anything readable is the server's goodbye (a
     * terminated backend's error message, then EOF; libpq would take the message for a notice
     * and keep calling the connection OK until the EOF is read). */
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    return poll(&pfd, 1, 0) == 0;
}

void pg_pool_stats(pg_pool_t *p, pg_pool_stats_t *out)
{
    pthread_mutex_lock(&p->lock);
    out->size = p->size;
    out->open = p->open;
    out->in_use = p->open - p->n_idle;
    out->wait_timeouts = p->wait_timeouts;
    out->stale = p->stale;
    pthread_mutex_unlock(&p->lock);
}

void pg_pool_close_idle(pg_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    int n = p->n_idle;
    PGconn *idle[n > 0 ? n : 1];
    memcpy(idle, p->idle, (size_t)n * sizeof *idle);
    p->open -= n;
    p->n_idle = 0;
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < n; i++)
        PQfinish(idle[i]);
}

PGconn *pg_pool_acquire(pg_pool_t *p, int wait_ms)
{
    return pg_pool_acquire_why(p, wait_ms, NULL);
}

PGconn *pg_pool_acquire_why(pg_pool_t *p, int wait_ms, bool *timed_out)
{
    if (timed_out)
        *timed_out = false;
    struct timespec deadline = clock_deadline_ms(wait_ms);

    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->n_idle > 0) {
            PGconn *c = p->idle[--p->n_idle];
            pthread_mutex_unlock(&p->lock);
            if (pg_conn_alive(c))
                return c;
            /* The server closed it (a restart, a failover): the other idle ones went with it. */
            PQfinish(c);
            pthread_mutex_lock(&p->lock);
            p->open--;
            p->stale++;
            pthread_mutex_unlock(&p->lock);
            pg_pool_close_idle(p);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        if (p->open < p->size) {
            p->open++;
            pthread_mutex_unlock(&p->lock);
            char err[512];
            PGconn *c = pg_connect(p->conninfo, p->statement_timeout_ms, p->connect_timeout_s, err, sizeof err);
            if (c && (!p->on_connect || p->on_connect(c, p->on_connect_arg)))
                return c;
            if (c) {
                char pe[PG_ERROR_MAX];
                snprintf(err, sizeof err, "preparing the new connection failed: %s",
                         pg_error_text(c, NULL, pe, sizeof pe));
                PQfinish(c);
            }
            log_warn(NULL, "postgres connect failed: %s", err);
            pthread_mutex_lock(&p->lock);
            p->open--;
            pthread_cond_signal(&p->freed);
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        if (pthread_cond_timedwait(&p->freed, &p->lock, &deadline) == ETIMEDOUT) {
            p->wait_timeouts++;
            if (timed_out)
                *timed_out = true;
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
    }
}

void pg_pool_release(pg_pool_t *p, PGconn *c, bool discard)
{
    if (!c)
        return;
    bool broken = discard || PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) != PQTRANS_IDLE ||
                  PQpipelineStatus(c) != PQ_PIPELINE_OFF;
    if (broken)
        PQfinish(c);
    pthread_mutex_lock(&p->lock);
    if (broken)
        p->open--;
    else
        p->idle[p->n_idle++] = c;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

bool pg_unbounded_statements(PGconn *c)
{
    PGresult *r = PQexec(c, "SET statement_timeout = 0");
    bool ok = pg_ok(r);
    PQclear(r);
    return ok;
}
