/* core/score.c — the three operators, applied exactly. */
#include "core/score.h"

#include "core/order.h"

bool score_in_range(int64_t v)
{
    return v >= SCORE_MIN && v <= SCORE_MAX;
}

score_result_t score_apply(board_op_t op, board_sort_t sort, score_standing_t cur, int64_t s,
                           score_standing_t *next, bool *updated)
{
    *next = cur;
    *updated = false;
    switch (op) {
    case OP_BEST:
        if (!cur.exists || order_score_better(sort, s, cur.value)) {
            next->exists = true;
            next->value = s;
            *updated = true;
        }
        return SCORE_APPLIED;
    case OP_LATEST:
        next->exists = true;
        next->value = s;
        *updated = !cur.exists || cur.value != s;
        return SCORE_APPLIED;
    case OP_SUM: {
        /* Both operands are within ±(2^53-1), so the int64 sum cannot overflow. */
        int64_t v = (cur.exists ? cur.value : 0) + s;
        if (!score_in_range(v))
            return SCORE_OVERFLOW;
        next->exists = true;
        next->value = v;
        *updated = !cur.exists || v != cur.value;
        return SCORE_APPLIED;
    }
    }
    return SCORE_APPLIED;
}
