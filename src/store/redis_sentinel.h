/*
 * store/redis_sentinel.h — following Sentinel's +switch-master.
 *
 * With redis+sentinel://, a failover is usually seen as a broken connection (the old master
 * died) or a READONLY error on the next write (it was turned into a replica). But the old master
 * may live on as a replica, with writes it never replicated dropped, and answer reads without
 * them while nothing is written. So a thread subscribes to +switch-master on the sentinels (one
 * at a time, the next one when it fails) and, for our master's name, calls `on_switch`, which
 * puts the pool into recovery and makes the pipe connect again: every window is rebuilt.
 */
#ifndef RANKD_STORE_REDIS_SENTINEL_H
#define RANKD_STORE_REDIS_SENTINEL_H

#include "util/must_use.h"

typedef struct redis_sentinel_watch redis_sentinel_watch_t;

/* Watch the sentinels of `url` (a redis+sentinel:// address); NULL for any other address. */
MUST_USE redis_sentinel_watch_t *redis_sentinel_watch_start(const char *url, int connect_timeout_ms,
                                                            void (*on_switch)(void *arg), void *arg);
/* Stop the thread (it may be blocked reading: its socket is shut down) and free the watch. */
void redis_sentinel_watch_stop(redis_sentinel_watch_t *w);

#endif
