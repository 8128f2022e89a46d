/*
 * store/upkeep.h — the statements of the periodic upkeep on the primary: partitions of the
 * submission log made ahead, idempotency keys past their 24 hours dropped, and the log rows of
 * deleted boards removed a few partitions per statement (the SQL functions live in migrations/).
 */
#ifndef RANKD_STORE_UPKEEP_H
#define RANKD_STORE_UPKEEP_H

#include <libpq-fe.h>

#include "store/queries.h"

/* Create the log's partitions for this month and the next `months_ahead`. */
q_status_t upkeep_ensure_partitions(PGconn *c, int months_ahead);
/* Drop idempotency keys older than 25 hours (kept at least 24, API.md). */
q_status_t upkeep_forget_old_keys(PGconn *c);
/*
 * A mark of everything the views are computed from: it changes with every accepted submission,
 * player deletion and board deletion (each rewrites or removes window_counts rows). Written
 * into `out`.
 */
q_status_t upkeep_write_mark(PGconn *c, char *out, size_t outlen);
/*
 * Ready a session to hold the leader lock: the server drops it (and so releases the lock) within
 * seconds of its client going silent (a crashed host, a partition), not after the operating
 * system's two-hour keepalive default.
 */
q_status_t upkeep_lead_session(PGconn *c);
/* Take the upkeep leader's session lock if it is free (or already ours): `*leads`. */
q_status_t upkeep_try_lead(PGconn *c, bool *leads);
/* One step of removing deleted boards' log rows: at most `parts` leaf partitions; `*done` how many. */
q_status_t upkeep_purge_log(PGconn *c, int parts, long *done);

#endif
