/*
 * core/rank_style.h — the rank numbers a read shows (API.md, "Rank styles"): `ordinal`, the
 * position in the tie-break order (1, 2, 3); `competition`, ties on score share the best rank
 * and the next skips (1, 1, 3); `dense`, ties share and the next follows (1, 1, 2). Order and
 * cursors are the same in every style: only the numbers change.
 *
 * A style's rank of a standing with sort key sk is 1 + before(sk): the standings (competition)
 * or the distinct sort keys (dense) that sort before sk. order_restyle turns a read's ordinal
 * answer into another style's, asking before() once per tie group that starts the answer or
 * that is not adjacent on the board to the entry before it.
 */
#ifndef RANKD_CORE_RANK_STYLE_H
#define RANKD_CORE_RANK_STYLE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/model.h"
#include "util/must_use.h"

typedef enum { RANK_ORDINAL = 0, RANK_COMPETITION, RANK_DENSE } rank_style_t;

#define RANK_STYLE_RULE "rank_style must be ordinal, competition or dense"

/* NULL (absent) is ordinal; false for anything but the three names. */
MUST_USE bool rank_style_parse(const char *s, rank_style_t *out);
const char *rank_style_name(rank_style_t style);

/* How many standings (dense: distinct sort keys) sort strictly before sort key sk: false when it
 * could not be read. */
typedef bool (*rank_before_fn)(void *arg, rank_style_t style, int64_t sk, int64_t *out);

/*
 * Give e's entries (in rank order, ordinal ranks) the ranks of `style`. `adjacent`: the entries
 * are neighbours on the board (a page, around a player), so only the first tie group needs
 * before(); named players ask it for each new score. False when before() failed (e unchanged
 * in part: the caller answers an error).
 */
MUST_USE bool rank_restyle(entries_t *e, rank_style_t style, bool adjacent, rank_before_fn before, void *arg);

#endif
