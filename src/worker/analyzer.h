/*
 * worker/analyzer.h — statistics kept fresh by whoever writes, leader or not (issue 49 item 15).
 *
 * The hot statements run as generic plans (store/queries.c, store/write_sql.c), which PostgreSQL
 * plans once from the statistics of the moment: planned on a table that grew from nothing with no
 * ANALYZE since, a lookup by key becomes a scan of the window, and a first bulk load turns
 * quadratic. The upkeep leader analyzes each second, but an instance with refresh.interval_s: 0
 * (the cron setup of the docs) never leads, and a deployment may have no leader at all. So every
 * instance runs this thread too: the writer and the import tell it how many rows they wrote
 * (analyzer_note, lock-free); once a second, when at least a thousand were written since its last
 * look, it runs upkeep_analyze on a connection of its own (and goes on looking each second for
 * 11 s after, for PostgreSQL reports a busy backend's counts up to 10 s late): ANALYZE of each
 * hot table whose rows changed by half since its last statistics (so about once per doubling, a few dozen times over a
 * first load of millions), off the write path.
 */
#ifndef RANKD_WORKER_ANALYZER_H
#define RANKD_WORKER_ANALYZER_H

#include <stdint.h>

#include "store/pg_pool.h"

typedef struct analyzer analyzer_t;

typedef struct {
    uint64_t looks;  /* times it looked at the tables' change counts */
    uint64_t failed; /* looks or ANALYZEs that failed (PostgreSQL down, a timeout) */
} analyzer_stats_t;

/* Start the thread on `primary` (NULL: none, and NULL returned). Looks each `interval_ms`. */
analyzer_t *analyzer_start(pg_pool_t *primary, int interval_ms);
/* `rows` rows were written to the hot tables (submissions committed, rows imported); NULL is fine. */
void analyzer_note(analyzer_t *a, uint64_t rows);
/* Stop it (after an ANALYZE in progress) and free it; NULL is fine. */
void analyzer_stop(analyzer_t *a);
void analyzer_stats(analyzer_t *a, analyzer_stats_t *out);

#endif
