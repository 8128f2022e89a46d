/*
 * worker/listener.h — hears the writes of every instance (PostgreSQL
 * LISTEN rankd_l1) and drops the cached answers they change.
 *
 * Writers NOTIFY from inside their transaction, so a notification arrives
 * only for committed changes, whether Redis is up or not. The thread owns
 * one connection; when it loses it, notifications may have been missed,
 * so it clears the whole cache once it is listening again.
 *
 * With replicas, it also tells the router what other instances wrote: for each round of
 * notifications it reads the primary's WAL position (a notification is delivered only after
 * its commit, so that position covers it) and records it for every board named, before
 * dropping any cached answer, so that no read after the drop goes to a replica without
 * those writes.
 *
 * A window's notice ("P gen day": an import) also makes this instance check that window's Redis
 * copy against PostgreSQL before it reads it there again. A player's deletion is no such notice:
 * its "D" lines (one per window the player stood in) drop that window's cached answers and take
 * the player out of the tier's copy, as a write's "W" lines change them; the deleting instance
 * takes the player out of Redis, as a writer updates it.
 *
 * Players' token revocations (store/revocations.h, channel rankd_revoke) go into `revocations`;
 * the whole table is loaded each time it starts listening (a start, a lost connection).
 *
 * A board deletion's notice ("B gen") also takes the board out of the board catalog, which
 * answers board lookups while PostgreSQL is down: a deleted board must not come back then.
 *
 * With the rank tier on, it is the tier's stream (cache/rank_tier.h): each numbered part of a
 * transaction's changes goes to the tier before the cached answers drop; "P" reloads a window,
 * "B" drops a board's; a lost connection stops the tier's answers until it listens again. While
 * the tier holds a window, the session sends itself a heartbeat (NOTIFY on a channel of its own)
 * every heartbeat_ms: heard back, it tells the tier that every commit before its sending is in
 * (rank_tier_caught_up); one not back within 10 s means the session stalled without TCP saying
 * so, and it is made again.
 */
#ifndef RANKD_WORKER_LISTENER_H
#define RANKD_WORKER_LISTENER_H

#include "cache/board_catalog.h"
#include "cache/l1.h"
#include "cache/rank_tier.h"
#include "cache/revocations.h"
#include "store/pg_router.h"
#include "store/redis.h"
#include "util/must_use.h"

typedef struct listener listener_t;

/* Who else hears each notice, after the caches have dropped what it changed (the live streams,
 * api/live.h); a notice that may have been missed (the connection lost) is heard as "?". */
typedef struct {
    void (*heard)(void *arg, const char *payload);
    void *arg;
} listener_sink_t;

/* Start listening with a connection of its own; NULL when there is no cache (`l1`), no replica to
 * keep caught up, no board catalog to tell of deletions and no rank tier. With the tier, a
 * heartbeat every `heartbeat_ms` while it holds a window (0: none). */
MUST_USE listener_t *listener_start(const char *conninfo, int connect_timeout_s, l1_t *l1, pg_router_t *router,
                                    board_catalog_t *catalog, redis_pool_t *redis, rank_tier_t *tier,
                                    revocations_t *revocations, int heartbeat_ms, const listener_sink_t *sink);
void listener_stop(listener_t *l);

/* Apply one notification payload to `l1` (exposed for tests). */
void listener_apply(l1_t *l1, const char *payload);

#endif
