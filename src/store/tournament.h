/*
 * store/tournament.h — a tournament's joins, attempts and places in PostgreSQL
 * (migrations/0018_tournaments.sql). The writer checks and counts submissions in its own
 * transaction (worker/write_competitions.c, store/write_sql.c); these are the calls of the routes.
 */
#ifndef RANKD_STORE_TOURNAMENT_H
#define RANKD_STORE_TOURNAMENT_H

#include <libpq-fe.h>
#include <stdint.h>

#include "core/model.h"
#include "store/q_status.h"
#include "util/must_use.h"

typedef enum { TJ_JOINED, TJ_AGAIN, TJ_FULL, TJ_GONE } tj_outcome_t;

/* One join of a batch: `player` to board `board`'s slot of window `day`, asked at `at_ms`. */
typedef struct {
    const board_t *board;
    int64_t day;
    const char *player;
    int64_t at_ms;
    tj_outcome_t outcome;  /* out: JOINED, AGAIN (joined before), FULL, GONE (the board was deleted) */
    int64_t joined_ms;     /* out: when the player joined (the first join's instant when AGAIN) */
} tj_item_t;

/* Join items[0..n) in one transaction (group commit, as the writer's submissions): the boards
 * FOR KEY SHARE, the players' advisory locks (the writer's, in its order), the counted slots'
 * rows FOR UPDATE, then each item decided in order, the entrant rows and the slots' counts
 * written, COMMIT. Not Q_OK: nothing was joined. */
MUST_USE q_status_t q_tournament_join_batch(PGconn *c, tj_item_t *items, size_t n);

/* Give `player` `add` more attempts in window `day`'s slot: *used (accepted submissions) and
 * *extra (every attempt added so far) after it; Q_NOT_FOUND when the board is gone. */
MUST_USE q_status_t q_tournament_add_attempts(PGconn *c, int64_t gen, int64_t day, const char *player, int64_t add,
                                              int64_t *used, int64_t *extra);

/* The entrants counted in window `day`'s slot (0 when none joined yet). */
MUST_USE q_status_t q_tournament_entrants(PGconn *c, int64_t gen, int64_t day, int64_t *n);

#endif
