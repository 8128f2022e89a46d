/*
 * core/score.h — the operators `best`, `latest` and `sum`, and the strict
 * reading of a score from JSON.
 *
 * Applying an operator is pure: the writer folds several submissions of one
 * player in arrival order by calling score_apply() on each in turn.
 */
#ifndef RANKD_CORE_SCORE_H
#define RANKD_CORE_SCORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/board.h"

typedef struct {
    bool exists;   /* the player has a standing */
    int64_t value; /* its score, when it exists */
} score_standing_t;

typedef enum {
    SCORE_APPLIED = 0,   /* `*next` holds the new standing; `*updated` says if it changed */
    SCORE_OVERFLOW = 1,  /* a sum would leave [SCORE_MIN, SCORE_MAX]: nothing changes */
} score_result_t;

/*
 * Apply submitted score `s` under `op`/`sort` to the standing `cur`.
 * `*updated` is true exactly when the standing is created or its value changes.
 */
score_result_t score_apply(board_op_t op, board_sort_t sort, score_standing_t cur, int64_t s,
                           score_standing_t *next, bool *updated);

/* True when `v` lies within the score range ±(2^53-1). */
bool score_in_range(int64_t v);

#endif
