/* worker/analyzer.c — the hot tables analyzed after they grew, on every instance (see analyzer.h). */
#include "worker/analyzer.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "obs/log.h"
#include "store/upkeep.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "worker/periodic.h"

/* Fewer rows than this since the last look cannot be half of any table upkeep_analyze would
 * analyze (it wants 1,000 changed at least): no statement is sent. */
#define ANALYZER_MIN_ROWS 1000
/* How long looks go on after one that rows prompted, whatever was written since. A backend
 * reports its tables' change counts when it goes idle, but at most once a second: a commit less
 * than a second after its last report is held until the backend's next one, which an idle
 * backend makes 10 s later (PostgreSQL 15's PGSTAT_IDLE_INTERVAL). The look the rows prompted
 * may see none of them; a second more covers the look's own interval. */
#define ANALYZER_SETTLE_MS 11000

struct analyzer {
    pg_pool_t *primary;
    periodic_t *timer;
    atomic_uint_fast64_t written; /* rows noted since the last look */
    int64_t settle_until_ms;      /* looks go on until then (clock_mono_ms; the timer's) */
    atomic_uint_fast64_t looks, failed;
};

void analyzer_note(analyzer_t *a, uint64_t rows)
{
    if (a)
        atomic_fetch_add_explicit(&a->written, rows, memory_order_relaxed);
}

/* One look (on the timer's thread): the change counts read, the tables past half analyzed. */
static void look(void *arg)
{
    analyzer_t *a = arg;
    bool prompted = atomic_load(&a->written) >= ANALYZER_MIN_ROWS;
    if (!prompted && clock_mono_ms() >= a->settle_until_ms)
        return;
    PGconn *c = pg_pool_acquire(a->primary, 1000);
    if (!c) {
        atomic_fetch_add(&a->failed, 1);
        return; /* the rows stay noted: the next look tries again */
    }
    if (prompted) {
        atomic_store(&a->written, 0);
        a->settle_until_ms = clock_mono_ms() + ANALYZER_SETTLE_MS;
    }
    atomic_fetch_add(&a->looks, 1);
    q_status_t st = upkeep_analyze(c);
    if (st != Q_OK)
        atomic_fetch_add(&a->failed, 1);
    pg_pool_release(a->primary, c, st != Q_OK);
}

analyzer_t *analyzer_start(pg_pool_t *primary, int interval_ms)
{
    if (!primary)
        return NULL;
    analyzer_t *a = xcalloc(1, sizeof *a);
    a->primary = primary;
    a->timer = periodic_start(look, a, interval_ms);
    if (!a->timer)
        log_error(NULL, "cannot start the analyzer thread: without an upkeep leader, tables that grow keep the "
                        "statistics they had");
    return a;
}

void analyzer_stop(analyzer_t *a)
{
    if (!a)
        return;
    periodic_stop(a->timer);
    free(a);
}

void analyzer_stats(analyzer_t *a, analyzer_stats_t *out)
{
    out->looks = a ? atomic_load(&a->looks) : 0;
    out->failed = a ? atomic_load(&a->failed) : 0;
}
