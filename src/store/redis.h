/*
 * store/redis.h — connections to Redis and the Lua scripts run on it.
 *
 * A small pool of connections (store/redis_conn.h: one server, Sentinel's master or a Redis
 * Cluster) with connect and command timeouts. After
 * a failure the pool stays "down" for a second before trying again, so a
 * dead Redis costs requests nothing but a flag check. When Redis answers
 * again after being down, what it holds may be gone or stale: see
 * redis_trusted() below.
 */
#ifndef RANKD_STORE_REDIS_H
#define RANKD_STORE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>
#include "util/must_use.h"
#include "store/redis_conn.h"
#include "util/redis_url.h"

typedef struct redis_pool redis_pool_t;

typedef struct {
    const char *source;
    char sha[41];
} redis_script_t;


/* A pool for `url`; NULL when url is NULL or empty (no Redis configured). */
MUST_USE redis_pool_t *redis_pool_new(const char *url, int connect_timeout_ms, int command_timeout_ms, int size);
void redis_pool_free(redis_pool_t *pool);

/* Borrow a connection, or NULL when Redis is down or not configured. */
MUST_USE redis_conn_t *redis_acquire(redis_pool_t *pool);
/* Close a borrowed connection that is fine but was changed (a longer timeout): Redis stays up. */
void redis_discard(redis_pool_t *pool, redis_conn_t *c);
/* Give it back; `failed` (or a connection that broke) closes it and marks Redis down for a moment. */
void redis_release(redis_pool_t *pool, redis_conn_t *c, bool failed);

/*
 * After an outage (a failed connect or command, even a single timeout) the
 * pool is down, and writes made meanwhile are missing from Redis. When Redis
 * answers again the pool is "recovering" until redis_mark_trusted(): the
 * rebuilder marks every window cold first. Readers use Redis only while
 * redis_trusted().
 */
/* Whether the pool is recovering; *outages (may be NULL) counts the outages so far, for
 * redis_mark_trusted(), which trusts Redis again only if no outage began since. */
bool redis_recovering(redis_pool_t *pool, unsigned long *outages);
void redis_mark_trusted(redis_pool_t *pool, unsigned long outages);
bool redis_trusted(redis_pool_t *pool);
/* Whether the pool is down now (a connect or command failed, no connect since): what the
 * requests found, without asking Redis anything. */
bool redis_down(redis_pool_t *pool);
/* A failover happened (Sentinel said so): as after an outage, Redis is not trusted until every
 * window is rebuilt, and the idle connections, to the old master, are closed. */
void redis_pool_failover(redis_pool_t *pool);
/*
 * Windows trusted. A window's ready key says it was loaded once; it does not say Redis still
 * holds every write since (a restart from an older snapshot, a failover, a writer that died
 * between its commit and its Redis update). Reads use Redis for a window only once this
 * instance compared the window's mark in Redis with its number in PostgreSQL
 * (worker/rebuilder.c), in the current epoch: every outage or failover begins a new one.
 */
/* The current epoch (the outages counted so far). */
unsigned long redis_epoch(redis_pool_t *pool);
/* Whether Redis is up and window (gen, day) was verified in the current epoch (`*epoch`, may be
 * NULL: the epoch it was asked in). */
bool redis_window_trusted(redis_pool_t *pool, int64_t gen, int64_t day, unsigned long *epoch);
/* Where a check of a window's mark began: the epoch, and the count of windows distrusted. */
typedef struct {
    unsigned long epoch;
    uint64_t distrusts;
} redis_check_t;
/* Note where a check begins (before it reads Redis's mark or PostgreSQL's number). */
void redis_check_begin(redis_pool_t *pool, redis_check_t *out);
/* Record that the window's mark (`mark`, 0 when not read) had reached PostgreSQL's, as checked
 * from `check` (ignored when an outage began since, or the window was distrusted since: a commit
 * another instance could not apply to Redis, heard during a rebuild that read PostgreSQL before
 * it). */
void redis_window_verified(redis_pool_t *pool, int64_t gen, int64_t day, const redis_check_t *check, int64_t mark);
/*
 * Numbers heard. Every commit that changes a window NOTIFYs the number it took (an S line); each
 * instance's listener tells the pool (redis_window_heard), and a watcher (worker/mark_watch.c)
 * reads the window's Redis mark until it is seen to reach it (redis_window_mark_seen). A trusted
 * window whose mark has not reached a number heard more than a second ago is not trusted until
 * it does: its writer may have died between its commit and its Redis update (kill -9), which no
 * outage and no R notice reveals.
 */
void redis_window_heard(redis_pool_t *pool, int64_t gen, int64_t day, int64_t seq);
/* Up to `max` trusted windows with a number heard at least `min_age_ms` ago that their mark was
 * not seen to reach, into gens/days. Returns how many. */
size_t redis_windows_unconfirmed(redis_pool_t *pool, int min_age_ms, int64_t *gens, int64_t *days, size_t max);
/* The window's Redis mark was read at `mark`. True when it is still behind a number heard more
 * than a second ago (the window is then not trusted). */
bool redis_window_mark_seen(redis_pool_t *pool, int64_t gen, int64_t day, int64_t mark);
/* The window is not to be trusted any more (found behind, marked cold, or a commit of it that
 * an instance could not apply to Redis: an `R` notice), nor by a check begun before now. */
void redis_window_distrust(redis_pool_t *pool, int64_t gen, int64_t day);
/* A committed change of window (gen, day) did not reach Redis (down, refused, or the commit's
 * outcome unknown): the window is distrusted, and the rebuilder marks it cold for every instance
 * (redis_unapplied) as soon as Redis answers. */
void redis_note_unapplied(redis_pool_t *pool, int64_t gen, int64_t day);
/* Up to `max` of those windows into gens/days; `*overflow` when more were noted than kept (then
 * every window is to be marked cold). Returns how many. */
size_t redis_unapplied(redis_pool_t *pool, int64_t *gens, int64_t *days, size_t max, bool *overflow);
/* Every window is to be marked cold, and none trusted until checked again (a PostgreSQL failover:
 * Redis may hold commits the new primary never had, and the numbers marks are compared by start
 * again from where it was). */
void redis_distrust_all(redis_pool_t *pool);
/* Forget those windows (marked cold now), and the overflow with `overflow`. */
void redis_unapplied_done(redis_pool_t *pool, const int64_t *gens, const int64_t *days, size_t n, bool overflow);

/* Redis Cluster commands redirected (MOVED, ASK) and retried (TRYAGAIN) on the pool's connections. */
void redis_pool_stats(redis_pool_t *pool, uint64_t *redirects, uint64_t *retries);
/* "ok" or "down" for /readyz; NULL pool → "disabled". */
const char *redis_state(redis_pool_t *pool);

/* Compute a script's SHA1 (call once at start). */
void redis_script_init(redis_script_t *s);

/*
 * Run `script` with argv[0..nkeys) as KEYS and the rest as ARGV (binary
 * safe), on the node of KEYS[1]'s slot. Returns the reply, which the caller
 * frees with freeReplyObject(); NULL on a connection failure (then release
 * with failed = true). A Redis error reply is returned as REDIS_REPLY_ERROR.
 */
MUST_USE redisReply *redis_run(redis_conn_t *c, const redis_script_t *script, int nkeys, int argc, const char *const *argv,
                      const size_t *argvlen);

#endif
