/*
 * store/purge.h — removing what a deleted board left (migrations/0015_board_purges.sql,
 * 0023_purge_progress.sql): its counters and their kin in one transaction, then its rows of every
 * table keyed by board, then its log rows, each a statement at a time that stays within the
 * statement timeout whatever the board's size and the server's load.
 *
 * A step's size follows a pace (util/step_pace.h): a step that times out is halved and the purge
 * goes on; quick steps double it back. A step's cost is what it removes, not the board's size:
 * a table's rows are taken in its primary key's order from where the last step stopped (a bitmap
 * scan would read every entry of the board at each step, and a sequential one every row removed
 * before), and a log partition is taken a range of its blocks at a time (TID range scans). No row
 * of a deleted board arrives after its deletion (writes hold the board's row FOR KEY SHARE), so
 * what a cursor went past stays gone.
 */
#ifndef RANKD_STORE_PURGE_H
#define RANKD_STORE_PURGE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/queries.h"
#include "util/must_use.h"
#include "util/step_pace.h"

/*
 * What the leader keeps from one purge step to the next (owned by one thread; purge_state_free
 * frees the keys): the paces, and where the board's table being purged was left.
 */
typedef struct {
    step_pace_t rows;   /* rows a statement removes from a board's tables */
    step_pace_t blocks; /* blocks of a log partition a statement reads */
    int timeout_ms;     /* the sessions' statement timeout (0: none): what "quick" is measured by */
    int64_t gen;        /* the board the cursor is in (0: none) */
    int table;          /* which of its tables */
    char *key[2];       /* the last key removed from it (NULL: from its first) */
} purge_state_t;

void purge_state_init(purge_state_t *s, int timeout_ms);
void purge_state_free(purge_state_t *s);

/* A deleted board whose rows are being removed (board_purges). */
typedef struct {
    int64_t gen;
} purge_board_t;

/* The deleted boards still being purged, oldest first: `*out` (caller frees) and `*n`. */
MUST_USE q_status_t purge_boards_pending(PGconn *c, purge_board_t **out, size_t *n);
/*
 * Steps of removing deleted board `gen`'s rows for at most `budget_ms`: its counters, rank
 * buckets and archive records in one transaction, then its standings, keys, activity, entrants
 * and league rows. `*done` when no row of it is left, its log's included: its Redis keys go last
 * (long after any rebuild of one of its windows that had begun before the deletion), then
 * purge_board_redis_done ends the purge. A step that timed out at its smallest is an error.
 */
MUST_USE q_status_t purge_board_step(PGconn *c, purge_state_t *s, int64_t gen, int budget_ms, bool *done);
/* Board `gen`'s Redis keys are gone (a sweep of every master found none left): its purge is over. */
MUST_USE q_status_t purge_board_redis_done(PGconn *c, int64_t gen);
/*
 * Remove deleted boards' log rows for at most `budget_ms`, a range of one partition's blocks a
 * statement (a whole partition when the pace allows), from where the last call stopped (kept in
 * log_purges): `*parts` counts the partitions finished, `*all` says none is left.
 */
MUST_USE q_status_t purge_log_step(PGconn *c, purge_state_t *s, int budget_ms, long *parts, bool *all);
/* What is left to remove, from the boards' counters at their deletion (-1: no purge knows):
 * standings rows in `*standings`, log rows in `*log`. */
MUST_USE q_status_t purge_rows_left(PGconn *c, int64_t *standings, int64_t *log);

#endif
