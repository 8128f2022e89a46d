/*
 * store/pg_router.h — the PostgreSQL nodes rankd talks to, and which one answers a statement.
 *
 * One primary and any number of streaming replicas, each with its own pool. Writes, view
 * refreshes and consistency=strong reads go to the primary; other reads go to a replica
 * chosen by the configured policy (round_robin, least_connections, weighted) among those that
 * are healthy and have caught up with the read:
 *
 * - A health thread per node probes it every postgres.health_interval_ms: reachable, in
 *   recovery or not, its WAL position (the primary's current LSN, a replica's replay LSN) and
 *   a replica's lag in bytes and time. unhealthy_after failed probes in a row take a node out
 *   (down), a lag over max_lag_ms too (lagging); healthy_after good probes bring it back.
 * - Caught up for this read: the router keeps, per routing key (a board generation), the
 *   highest commit LSN this instance has seen for it: its own writes, and other instances'
 *   through their NOTIFY (worker/listener.c). A read goes only to a replica whose replay LSN
 *   has reached its key's LSN; one last probed behind is asked again on the read's own
 *   connection before the read gives up on it; else the primary answers (a fallback,
 *   counted). So a read never shows less than what this instance has written, or has
 *   dropped from its cache on another instance's notice. (Two reads before such a notice
 *   arrives may still meet two replicas at different positions.)
 * - Each node has a circuit breaker: breaker_failures failed calls in a row (a connection
 *   that cannot be had or that broke) open it, and calls fail at once for
 *   breaker_cooldown_ms; then one call (or a good probe) decides.
 * - With the primary down, reads go on from replicas, even one behind what this instance has
 *   seen (nothing newer can be written meanwhile); such a read is marked `behind` and kept out
 *   of every cache.
 *
 * Locking: one mutex over every node's health and breaker state and the LSN table, held for
 * a few comparisons per pick; counters are atomics; pools lock themselves.
 */
#ifndef RANKD_STORE_PG_ROUTER_H
#define RANKD_STORE_PG_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/pg_pool.h"
#include "store/q_status.h"
#include "util/buf.h"
#include "util/must_use.h"

typedef struct pg_router pg_router_t;
typedef struct pg_node pg_node_t;

/* Routing keys: a board's generation (>= 1), or one of these. */
#define PG_KEY_CATALOG 0   /* board definitions */
#define PG_KEY_ALL (-1)    /* every board: read, the highest LSN seen; noted, a floor for every key */

typedef enum { PG_NODE_PRIMARY = 0, PG_NODE_REPLICA = 1 } pg_node_role_t;
typedef enum { NODE_UNKNOWN = 0, NODE_OK, NODE_LAGGING, NODE_DOWN } pg_node_state_t;
typedef enum { BREAKER_CLOSED = 0, BREAKER_OPEN, BREAKER_HALF_OPEN } pg_breaker_state_t;

/* A connection lent for one statement (or one transaction) on one node. */
typedef struct {
    pg_node_t *node;
    PGconn *conn;
    bool behind;  /* a replica that may not have replayed this instance's last write of the key */
} pg_lease_t;

/* A node as /readyz and /metrics show it. */
typedef struct {
    char name[32];           /* postgres_primary, postgres_replica_N (N from 1, in configuration order) */
    pg_node_role_t role;
    pg_node_state_t state;
    pg_breaker_state_t breaker;
    int64_t lag_ms;
    int64_t lag_bytes;
    uint64_t lsn;
    int64_t timeline;        /* 0: unknown */
    pg_pool_stats_t pool;
    int weight;
    unsigned long long queries, errors, reads_routed;
} pg_node_status_t;

/* The router for cfg's primary and replicas (pools made, nothing connected yet). */
MUST_USE pg_router_t *pg_router_new(const rankd_config_t *cfg);
/* Start the health threads; false when one could not start. */
MUST_USE bool pg_router_start(pg_router_t *r);
/* Wait until every node has been probed once (or `timeout_ms`), so that the first readiness
 * answer and the first routing decisions rest on what the nodes said. */
void pg_router_wait_probed(pg_router_t *r, int timeout_ms);
/* Stop the health threads and close every pool. */
void pg_router_free(pg_router_t *r);

bool pg_router_has_replicas(const pg_router_t *r);
/* The primary's pool, for the jobs that keep their own connections (refresher, admin). */
pg_pool_t *pg_router_primary_pool(pg_router_t *r);
const char *pg_node_state_name(pg_node_state_t s);
const char *pg_breaker_state_name(pg_breaker_state_t b);

/*
 * Lend a connection of the primary. False at once while the primary is known down (its health
 * checks failed and none has succeeded since) or its breaker is open; false too when no
 * connection could be had within postgres.pool_wait_ms.
 */
MUST_USE bool pg_router_primary(pg_router_t *r, pg_lease_t *out);
/* False while pg_router_primary would fail at once (the primary down, or its breaker open). */
bool pg_router_primary_usable(pg_router_t *r);
/* Call fn(arg) (on a health thread, under the router's lock: it must not call the router) when the
 * primary answers on another timeline than before: a failover, after which what was read of the
 * old primary (Redis's copy) may hold commits the new one never had. */
void pg_router_on_new_timeline(pg_router_t *r, void (*fn)(void *arg), void *arg);
/* Lend a connection for a read of `key` (see above); `strong` reads the primary. */
MUST_USE bool pg_router_read(pg_router_t *r, int64_t key, bool strong, pg_lease_t *out);
/* The same, from a replica only (none caught up: false, where pg_router_read lends the primary). */
MUST_USE bool pg_router_read_replica(pg_router_t *r, int64_t key, pg_lease_t *out);
/* Give a lease back. `broken`: its connection failed (discarded, and counted by the breaker). */
void pg_router_release(pg_router_t *r, pg_lease_t *lease, bool broken);

/*
 * Run a read: fn(conn, arg) on a connection pg_router_read lends. When the connection broke
 * (Q_UNAVAILABLE) the read runs once more on a fresh lease, perhaps of another node.
 * `*behind` (may be NULL) tells that the answer came from a replica possibly behind.
 */
MUST_USE q_status_t pg_router_read_run(pg_router_t *r, int64_t key, bool strong, q_status_t (*fn)(PGconn *c, void *arg),
                              void *arg, bool *behind);

/* Remember that `key` was written at `lsn` (its reads wait for a replica that has replayed it). */
void pg_router_saw_lsn(pg_router_t *r, int64_t key, uint64_t lsn);
/*
 * After a commit on `c` (a primary connection): read the primary's WAL position and remember it
 * for `key`. Does nothing without replicas. When the position cannot be read (the connection
 * broke right after the commit) it says so in the log: a lagging replica may then answer
 * `key` without that commit until it replays it.
 */
void pg_router_note_commit(pg_router_t *r, PGconn *c, int64_t key);
/*
 * The WAL position a replica must reach to hold every commit the primary has acknowledged:
 * the flush position (a synchronous commit returns once flushed; a replica can never pass
 * it, while the insert position also counts records not yet sent, a read's page pruning say),
 * or with synchronous_commit off the insert position (an acknowledged commit may not be
 * flushed yet).
 */
#define PG_COMMITTED_LSN_SQL                                                                     \
    "SELECT CASE WHEN current_setting('synchronous_commit') = 'off' THEN pg_current_wal_insert_lsn()" \
    " ELSE pg_current_wal_flush_lsn() END"
/* That position on the primary `c` is connected to; 0 when it cannot be read. */
MUST_USE uint64_t pg_wal_lsn(PGconn *c);
/* "16/B374D848" -> its 64-bit value; 0 when malformed. */
uint64_t pg_lsn_parse(const char *text);

/* Every node's state, primary first; at most `max`. Returns how many were filled. */
size_t pg_router_status(pg_router_t *r, pg_node_status_t *out, size_t max);
/* Append the router's Prometheus series. */
void pg_router_metrics(pg_router_t *r, buf_t *out);

#endif
