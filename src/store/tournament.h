/*
 * store/tournament.h — a tournament's joins, attempts and places in PostgreSQL
 * (migrations/0018_tournaments.sql). The writer checks and counts submissions in its own
 * transaction (worker/writer.c, store/write_sql.c); these are the calls of the routes.
 */
#ifndef RANKD_STORE_TOURNAMENT_H
#define RANKD_STORE_TOURNAMENT_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/model.h"
#include "store/q_status.h"
#include "util/must_use.h"

typedef enum { TJ_JOINED, TJ_AGAIN, TJ_FULL, TJ_GONE } tj_outcome_t;

/* Join `player` to board `b`'s slot of window `day` at `now_ms`: *outcome, and the join's instant
 * (*joined_ms: now_ms, or the first join's when joined again). */
MUST_USE q_status_t q_tournament_join(PGconn *c, const board_t *b, int64_t day, const char *player, int64_t now_ms,
                                      tj_outcome_t *outcome, int64_t *joined_ms);

/* Give `player` `add` more attempts in window `day`'s slot: *used (accepted submissions) and
 * *extra (every attempt added so far) after it; Q_NOT_FOUND when the board is gone. */
MUST_USE q_status_t q_tournament_add_attempts(PGconn *c, int64_t gen, int64_t day, const char *player, int64_t add,
                                              int64_t *used, int64_t *extra);

/* The entrants counted in window `day`'s slot (0 when none joined yet). */
MUST_USE q_status_t q_tournament_entrants(PGconn *c, int64_t gen, int64_t day, int64_t *n);

#endif
