/* worker/mark_watch.c — every number heard seen to reach the window's Redis mark (mark_watch.h). */
#include "worker/mark_watch.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "obs/log.h"
#include "store/redis_board.h"
#include "util/alloc.h"
#include "worker/periodic.h"

#define WATCH_INTERVAL_MS 200
/* Windows looked at per tick: the oldest first would need a sort; the table's order is fair
 * enough, and a window not looked at this tick is at the next. */
#define WATCH_MAX 256
/* A number heard this recently is left to its writer's Redis update, which lands within
 * milliseconds of the commit as a rule. */
#define WATCH_MIN_AGE_MS 50

struct mark_watch {
    redis_pool_t *redis;
    periodic_t *timer;
    atomic_uint_fast64_t looks, behind;
};

static void look(void *arg)
{
    mark_watch_t *m = arg;
    int64_t gens[WATCH_MAX], days[WATCH_MAX];
    size_t n = redis_windows_unconfirmed(m->redis, WATCH_MIN_AGE_MS, gens, days, WATCH_MAX);
    if (n == 0)
        return;
    redis_conn_t *rc = redis_acquire(m->redis);
    if (!rc)
        return;
    rb_status_t st = RB_OK;
    for (size_t i = 0; i < n && st != RB_DOWN; i++) {
        bool ready = false;
        int64_t mark = 0;
        st = rb_window_mark(rc, gens[i], days[i], &ready, &mark);
        if (st != RB_OK)
            continue;
        atomic_fetch_add_explicit(&m->looks, 1, memory_order_relaxed);
        if (ready) {
            if (redis_window_mark_seen(m->redis, gens[i], days[i], mark))
                atomic_fetch_add_explicit(&m->behind, 1, memory_order_relaxed);
        } else {
            redis_window_distrust(m->redis, gens[i], days[i]); /* marked cold by another instance */
        }
    }
    redis_release(m->redis, rc, st == RB_DOWN);
}

mark_watch_t *mark_watch_start(redis_pool_t *redis)
{
    if (!redis)
        return NULL;
    mark_watch_t *m = xcalloc(1, sizeof *m);
    m->redis = redis;
    m->timer = periodic_start(look, m, WATCH_INTERVAL_MS);
    if (!m->timer)
        log_error(NULL, "cannot start the Redis mark watcher: a change whose writer died before its Redis update "
                        "is found only by the leader's audit");
    return m;
}

void mark_watch_stop(mark_watch_t *m)
{
    if (!m)
        return;
    periodic_stop(m->timer);
    free(m);
}

void mark_watch_stats(mark_watch_t *m, uint64_t *looks, uint64_t *behind)
{
    *looks = m ? atomic_load(&m->looks) : 0;
    *behind = m ? atomic_load(&m->behind) : 0;
}
