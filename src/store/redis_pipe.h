/*
 * store/redis_pipe.h — one connection to Redis shared by every reader,
 * pipelined.
 *
 * A blocking call per request spends the request's time waiting on the
 * loopback round trip; Redis itself answers far more commands when they
 * arrive together. Readers hand a prepared command to redis_pipe_submit()
 * and suspend; one thread takes every command queued at that moment,
 * writes them all, reads every reply, then completes each call. The
 * batch grows with the load: a lone command goes out at once. The thread is
 * SCHED_BATCH (workq_consumer_defers): when it shares a CPU with an event
 * loop, a reader's push does not hand it that CPU at once; the loop first
 * goes through every request it has ready, and the batch holds them all
 * (about 5 commands per round trip before, 24 after, in the load test's
 * rank scenario, where rankd and Redis share one CPU).
 * On a new connection the thread loads the read scripts, so EVALSHA finds
 * them; a failed connection fails the calls in hand (their reply is NULL)
 * and the thread retries no more than once a second.
 *
 * Calls that name a redis_merge_t and share its leading arguments go out as
 * one command when several are in a batch: a script's fixed cost (its call,
 * the keys it checks for all) is then paid once for all of them.
 */
#ifndef RANKD_STORE_REDIS_PIPE_H
#define RANKD_STORE_REDIS_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "store/redis.h"
#include "store/redis_call.h"
#include "util/workq.h"
#include "util/must_use.h"

typedef struct redis_pipe redis_pipe_t;


/* Start the pipe thread for `url`, loading `scripts[0..n)` on every new connection; NULL without a
 * URL. With `from_replicas`, a cluster's reads go to a replica of their master that has caught
 * up with it (redis_conn.h), and to the master when none has. A failover its connection sees (a
 * MOVED to a master's replica) or a connection that broke (a restart) is reported to `pool`
 * (redis_pool_failover, may be NULL): what Redis holds is checked again before it is trusted. */
MUST_USE redis_pipe_t *redis_pipe_start(const char *url, int connect_timeout_ms, int command_timeout_ms,
                                        const char *const *scripts, size_t n_scripts, bool from_replicas,
                                        redis_pool_t *pool);
/* Complete what is queued (failing it if Redis is unreachable), stop the thread, free the pipe. */
void redis_pipe_stop(redis_pipe_t *p);
/* Queue a call; never blocks on I/O. */
void redis_pipe_submit(redis_pipe_t *p, redis_call_t *call);
/* How many batches (one write, replies read in order) and commands went to Redis so far, and how
 * many of those commands were merged from several calls. */
void redis_pipe_stats(redis_pipe_t *p, uint64_t *batches, uint64_t *commands, uint64_t *merged);
/* Connect again before the next batch (Sentinel named a new master). Any thread. */
void redis_pipe_reconnect(redis_pipe_t *p);
/* Redis Cluster commands the pipe sent again after a redirection (MOVED, ASK). */
uint64_t redis_pipe_redirects(redis_pipe_t *p);
/* Reads a replica answered, and reads sent again to the master because the replica was behind. */
void redis_pipe_replica_stats(redis_pipe_t *p, uint64_t *answered, uint64_t *behind);

#endif
