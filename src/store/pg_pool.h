/*
 * store/pg_pool.h — a bounded pool of libpq connections to one PostgreSQL node.
 *
 * Connections are opened lazily, up to the pool size, outside the pool's
 * lock; each is set to UTC, the configured statement timeout and no
 * parallel plans (a parallel scan loses to the index on 2 cores). A caller
 * that finds the pool exhausted waits on a condition variable, bounded. An
 * idle connection the server has closed meanwhile (a restart, a failover)
 * is noticed when it is next lent, and replaced.
 */
#ifndef RANKD_STORE_PG_POOL_H
#define RANKD_STORE_PG_POOL_H

#include <stdbool.h>
#include <libpq-fe.h>
#include "util/must_use.h"

typedef struct pg_pool pg_pool_t;

/* A pool for `conninfo` (copied). Never fails; connecting happens on acquire. */
MUST_USE pg_pool_t *pg_pool_new(const char *conninfo, int size, int statement_timeout_ms, int connect_timeout_s);
void pg_pool_free(pg_pool_t *pool);
/* The statement timeout its connections get (postgres.statement_timeout_ms). */
int pg_pool_statement_timeout_ms(const pg_pool_t *pool);
/*
 * Run `prepare` on every connection the pool opens from now on, before lending it (to
 * prepare statements, say); when it returns false the connection is closed and the acquire
 * fails. Set it before the first acquire.
 */
void pg_pool_on_connect(pg_pool_t *pool, bool (*prepare)(PGconn *conn, void *arg), void *arg);

/*
 * Borrow a connection, waiting up to `wait_ms` for one to be free. Returns
 * NULL when the node cannot be reached or the wait ran out. The caller gives
 * it back with pg_pool_release() exactly once.
 */
MUST_USE PGconn *pg_pool_acquire(pg_pool_t *pool, int wait_ms);
/* The same; `*timed_out` tells a pool that stayed busy (the node may be fine) from a node that
 * could not be reached. */
MUST_USE PGconn *pg_pool_acquire_why(pg_pool_t *pool, int wait_ms, bool *timed_out);

/* Return a connection; a broken one (or `discard`) is closed instead of kept. */
void pg_pool_release(pg_pool_t *pool, PGconn *conn, bool discard);

typedef struct {
    int size;
    int open;                          /* idle or lent */
    int in_use;                        /* lent */
    unsigned long long wait_timeouts;  /* acquires that found no free connection in time */
    unsigned long long stale;          /* idle connections found closed by the server */
} pg_pool_stats_t;

void pg_pool_stats(pg_pool_t *pool, pg_pool_stats_t *out);
/* Close every idle connection (the node was found down: they are dead or soon will be). */
void pg_pool_close_idle(pg_pool_t *pool);

/* False when `conn` is broken or the server has closed it (checked without blocking). */
MUST_USE bool pg_conn_alive(PGconn *conn);

/* Open a standalone connection with the pool's settings (for the CLI); NULL and a message on failure. */
MUST_USE PGconn *pg_connect(const char *conninfo, int statement_timeout_ms, int connect_timeout_s, char *err, size_t errlen);

/* True when `res` is a successful result; otherwise false. Does not free. */
MUST_USE bool pg_ok(const PGresult *res);
/* Lift the statement timeout on `c` (an operator's command that reads whole windows). */
MUST_USE bool pg_unbounded_statements(PGconn *c);

#endif
