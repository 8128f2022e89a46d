/*
 * cache/board_catalog.h — every board definition this instance has learned, kept to answer
 * reads while no PostgreSQL node can (API.md, "Consistency": with the primary down, reads keep
 * being answered).
 *
 * It is fed by what PostgreSQL said: the refresher's list of every board (each
 * refresh.interval_s), a first list page that held every board, each board looked up, created
 * or patched here. A board deleted anywhere leaves it at once on this instance's own deletion,
 * on the deletion's notice (worker/listener.c) or on a lookup that no longer finds it; its
 * generation is then remembered for a while (a tombstone), so that a list or lookup read before
 * the deletion and finished after it cannot bring it back.
 *
 * How stale it may be: every board change goes through the primary, so while no node answers
 * nothing can change a board and a definition does not age. What may be missing is what changed
 * just before the outage and was not heard of: a board created by another instance since the
 * last full list (the list fallback lacks it), a title or metadata patched elsewhere within that
 * time. So a definition is served only when it was confirmed at most `max_lag_ms` before the
 * latest answer PostgreSQL gave the catalog, and the list only when a full list was.
 *
 * One mutex guards everything; copies are made outside it where the size is unbounded.
 */
#ifndef RANKD_CACHE_BOARD_CATALOG_H
#define RANKD_CACHE_BOARD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/model.h"
#include "util/must_use.h"

typedef struct board_catalog board_catalog_t;

/* `max_lag_ms`: as above; `tombstone_ms`: how long a deleted generation is refused (longer than
 * any statement that read the catalog can run). */
board_catalog_t *board_catalog_new(int64_t max_lag_ms, int64_t tombstone_ms);
void board_catalog_free(board_catalog_t *c);

/* Every board, as read by a list query begun at `begun_ms` (clock_mono_ms): replaces what was
 * known, but for boards confirmed since `begun_ms` (kept) and deleted generations (left out).
 * Copies `boards`. */
void board_catalog_install(board_catalog_t *c, const board_t *boards, size_t n, int64_t begun_ms);
/* One board as PostgreSQL just gave it (copied); ignored when its generation was deleted. */
void board_catalog_put(board_catalog_t *c, const board_t *b);
/* Board generation `gen` was deleted. */
void board_catalog_forget_gen(board_catalog_t *c, int64_t gen);
/* Board `id` does not exist (a lookup begun at `asked_ms`, clock_mono_ms, found none). */
void board_catalog_forget_id(board_catalog_t *c, const char *id, int64_t asked_ms);

/* For when PostgreSQL cannot answer: copy board `id` into `out` (caller board_clear()s it);
 * false when unknown or confirmed too long before the latest answer. */
MUST_USE bool board_catalog_get(board_catalog_t *c, const char *id, board_t *out);
/* For when PostgreSQL cannot answer: the boards with an id after `after` ("" from the first), at
 * most `limit`, in id order (byte order, as the boards table's COLLATE "C"), into a new array
 * `*out` of `*n` (caller board_clear()s each and frees it); `*more` when others follow. False when
 * no full list is known recently enough. */
MUST_USE bool board_catalog_list(board_catalog_t *c, const char *after, size_t limit, board_t **out, size_t *n, bool *more);

typedef struct {
    size_t boards;                /* definitions held */
    bool complete;                /* a full list is recent enough for board_catalog_list */
    unsigned long long fallbacks; /* lookups and list pages it answered */
} board_catalog_stats_t;
void board_catalog_stats(board_catalog_t *c, board_catalog_stats_t *out);

#endif
