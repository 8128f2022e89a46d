/*
 * core/notice.h — the lines of the change notices every instance hears (NOTIFY rankd_l1).
 *
 *   W gen day old_sk|- old_ms|- new_sk new_ms player[ metadata]
 *       a standing that changed ("-" for a new one); the metadata (compact JSON, no spaces
 *       needed to find its start: ids hold none) rides in the notice sent inside the writing
 *       transaction, and is left out of the hint sent again after the Redis update.
 *   S gen day seq part parts
 *       the head of one part of a writing transaction's changes to one window: the window's
 *       number (window_counts.seq) that transaction took, and which of its `parts` notices
 *       this is. The W lines after it, up to the next S, are that part's.
 *   D gen day sk ms player
 *       a standing removed from that position (a player's deletion). Inside the deleting
 *       transaction it follows the window's S line (a numbered change, as W lines are); sent
 *       again after the Redis update, and for a closed window's archive, it stands alone.
 *   P gen day   a window changed wholesale (an import)
 *   R gen day   a committed change of the window that its instance could not apply to Redis
 *               (Redis down or refusing it for that instance alone): every instance reads the
 *               window from PostgreSQL until its rebuilder has compared the two again
 *   B gen       a board deleted
 *   V           the views were refreshed
 */
#ifndef RANKD_CORE_NOTICE_H
#define RANKD_CORE_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/must_use.h"

typedef struct {
    int64_t gen, day;
    bool removed;              /* a D line: the standing at old_* went (new_* and metadata unset) */
    bool existed;              /* false: a new standing (old_* unset) */
    int64_t old_sort_key, old_ms;
    int64_t new_sort_key, new_ms;
    const char *player;        /* points into the line */
    size_t player_len;
    const char *metadata;      /* points into the line; NULL: none (or not carried) */
    size_t metadata_len;
} notice_change_t;

/* Append a W line (no newline) for `c`, its metadata only when `with_metadata`; a D line when
 * c->removed. */
void notice_put_change(buf_t *out, const notice_change_t *c, bool with_metadata);
/* Parse a W or D line of `len` bytes (no newline). */
MUST_USE bool notice_parse_change(const char *line, size_t len, notice_change_t *out);
/* Parse an S line of `len` bytes. */
MUST_USE bool notice_parse_seq(const char *line, size_t len, int64_t *gen, int64_t *day, int64_t *seq, int *part,
                               int *parts);

#endif
