/*
 * core/order.h — the one ordering rule every code path shares.
 *
 * A standing's position is (sort_key, achieved_ms, player_id), all
 * ascending: sort_key is the score for `asc` boards and its negation for
 * `desc` boards, so "better" is always "smaller" and one index order serves
 * every board. Ties fall to the earlier achieved_ms, then to the player id
 * in byte order (memcmp).
 *
 * The Redis encoding of a position is a sorted-set score and a member that
 * sort the same way: the score is the sort key (exact in a double, as every
 * score lies within ±(2^53-1)), and the member, which Redis orders by memcmp
 * among equal scores, is the sort key offset by 2^63, then achieved_ms offset
 * by 2^62 (8 bytes each, big-endian), then the player id bytes. Comparing
 * scores first keeps Redis's skip-list walks on numbers rather than on member
 * bytes; the sort key repeated in the member lets a range be read without
 * WITHSCORES (Redis formats each score as text, the reader parses it back: a
 * fifth of an around read's cost in Redis), and among equal scores it is the
 * same 8 bytes, so the order is unchanged.
 */
#ifndef RANKD_CORE_ORDER_H
#define RANKD_CORE_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/board.h"
#include "util/must_use.h"

#define ORDER_PREFIX_LEN 16
#define ORDER_MEMBER_MAX (ORDER_PREFIX_LEN + PLAYER_ID_MAX)

typedef struct {
    int64_t sort_key;
    int64_t achieved_ms;
    char player[PLAYER_ID_MAX + 1];
    size_t player_len;
} order_pos_t;

/* The sort key of `score` on a board of `sort` order. */
int64_t order_sort_key(board_sort_t sort, int64_t score);
/* The score a sort key stands for (inverse of order_sort_key). */
int64_t order_score(board_sort_t sort, int64_t sort_key);

/* True when score `a` is strictly better than `b` under `sort`. */
bool order_score_better(board_sort_t sort, int64_t a, int64_t b);

/* <0, 0, >0 as `a` ranks above, with, below `b`. */
int order_pos_cmp(const order_pos_t *a, const order_pos_t *b);

/* Fill a position; false if the player id is too long (never for a validated id, which every
 * caller passes: hence no MUST_USE). */
bool order_pos_set(order_pos_t *p, int64_t sort_key, int64_t achieved_ms, const char *player, size_t len);

/* Encode a position's Redis member into `out` (ORDER_MEMBER_MAX bytes); returns its length.
 * Its score is p->sort_key. */
size_t order_member_encode(const order_pos_t *p, unsigned char *out);
/* Decode a Redis member; false if it is not one rankd wrote (too short or long, or a sort key
 * outside the score range). */
MUST_USE bool order_member_decode(const unsigned char *m, size_t n, order_pos_t *out);

/* Parse a Redis score reply ("-12", "9007199254740991") back into a sort key; false when it
 * is not an integer within the score range. */
MUST_USE bool order_score_parse(const char *s, size_t n, int64_t *sort_key);

#endif
