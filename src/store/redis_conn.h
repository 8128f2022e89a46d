/*
 * store/redis_conn.h — one logical connection to Redis, whichever way Redis is deployed.
 *
 * - One server (redis://): a single hiredis context.
 * - Sentinel (redis+sentinel://): the sentinels are asked for the master's address on
 *   opening, and the server found must say it is a master (ROLE). A failover breaks the
 *   connection (the old master goes away, or turns replica and answers writes with READONLY);
 *   the caller then opens a new one, which asks the sentinels again.
 * - Redis Cluster (redis+cluster://): the slot map from CLUSTER SLOTS, a context per node
 *   opened when first needed, and every command sent to the master of its key's slot.
 *   MOVED updates the map and resends; ASK resends once to the importing node after ASKING.
 *   A node that fails is dropped and the map is read again before its slots are used.
 *
 * Not thread-safe: one thread uses a connection at a time (the pool lends them out whole).
 * A command's reply is NULL when a connection failed (then redis_conn_broken() holds); an
 * error reply (including one a redirection could not resolve) is returned as it is.
 */
#ifndef RANKD_STORE_REDIS_CONN_H
#define RANKD_STORE_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "util/must_use.h"
#include "util/redis_url.h"

typedef struct redis_conn redis_conn_t;

/*
 * Connect as `url` says (copied), or NULL (logged) when no server could be reached. Every
 * server connected to loads `scripts[0..n)` (SCRIPT LOAD), which must outlive the connection.
 */
MUST_USE redis_conn_t *redis_conn_open(const redis_url_t *url, int connect_timeout_ms, int command_timeout_ms,
                                       const char *const *scripts, size_t n_scripts);
void redis_conn_free(redis_conn_t *c);
/* Attempts to connect to a Redis server that failed, by any connection of this process, since
 * it started. */
unsigned long long redis_conn_failed_connects(void);

/* Whether a connection failed since opening (a broken one is not to be reused). */
bool redis_conn_broken(const redis_conn_t *c);
/* Failovers this connection saw (a slot's new master was its old master's replica) since the
 * last call: Redis may have lost writes, so its windows are to be rebuilt. */
unsigned redis_conn_take_failovers(redis_conn_t *c);
/* Whether this is a Redis Cluster connection. */
bool redis_conn_is_cluster(const redis_conn_t *c);
/* The command timeout of every context, now and opened later. */
void redis_conn_set_timeout(redis_conn_t *c, int timeout_ms);

/* Run a command routed by `key` (the n bytes at key; NULL: any master). The caller frees the reply. */
MUST_USE redisReply *redis_conn_argv(redis_conn_t *c, const char *key, size_t key_len, int argc, const char **argv,
                                     const size_t *argvlen);
/* The same with a hiredis format string: `key` (NUL-terminated, or NULL) routes it. */
MUST_USE redisReply *redis_conn_command(redis_conn_t *c, const char *key, const char *fmt, ...);

/* Masters, for commands that each master must run (SCAN): how many, and a command on one.
 * redis_conn_map_changes() moves when a map read differs from the last: index `master` then
 * may name another node, and a SCAN in progress must start again. */
size_t redis_conn_masters(redis_conn_t *c);
unsigned redis_conn_map_changes(const redis_conn_t *c);
MUST_USE redisReply *redis_conn_argv_on(redis_conn_t *c, size_t master, int argc, const char **argv,
                                        const size_t *argvlen);

/*
 * For the pipe, which writes many commands before reading any reply: the node that serves
 * `key` (-1 when none can be reached), that node's context (open), and what to do after a
 * reply. redis_conn_settle() takes a command's first reply from `node` (owned by the caller) and returns
 * the final one: the same, or, after a redirection or a TRYAGAIN, the reply of the command
 * sent again (the first one freed). redis_conn_node_failed() drops a node whose context
 * failed mid-batch; redis_conn_node_reload() one that lost its scripts (SCRIPT FLUSH, NOSCRIPT):
 * its next use connects at once and loads them, and the connection is not broken.
 */
int redis_conn_node(redis_conn_t *c, const char *key, size_t key_len);
redisContext *redis_conn_node_context(redis_conn_t *c, int node);
MUST_USE redisReply *redis_conn_settle(redis_conn_t *c, int node, redisReply *reply, const char *key, size_t key_len,
                                       int argc, const char **argv, const size_t *argvlen);
void redis_conn_node_failed(redis_conn_t *c, int node);
void redis_conn_node_reload(redis_conn_t *c, int node);

/*
 * Replica reads (a cluster's): a replica of master node `master`, in turn (-1 when it has none
 * that may be reachable); its context sends READONLY. redis_role_offset() takes a ROLE reply:
 * with `of_master`, a master's replication offset, else what a replica has processed while its
 * link is up (false for anything else: a "master" that has become a replica since the map was
 * read gives no offset, and the read goes to it, which redirects it). A replica whose ROLE,
 * sent before some reads, shows at least the offset
 * its master's ROLE showed after the reads were asked for, answers them with every write made
 * before (no WAIT needed).
 */
int redis_conn_replica(redis_conn_t *c, int master);
bool redis_role_offset(const redisReply *r, bool of_master, long long *offset);

/* Commands redirected (MOVED, ASK) and retried (TRYAGAIN) on this connection since the last
 * call, for /metrics: the counts are handed over and start again from zero. */
void redis_conn_take_stats(redis_conn_t *c, uint64_t *redirects, uint64_t *retries);

#endif
