/*
 * cache/board_cache.h — board definitions kept in process for a short TTL,
 * so a read served from Redis needs no PostgreSQL round trip.
 *
 * Lookups copy the board out under a mutex held only for the copy; a miss
 * is loaded by the caller outside the lock and put back. A change made by
 * this instance invalidates the entry at once; other instances see it
 * within the TTL (one second, the HTTP max-age bound). While no PostgreSQL
 * node answers, boards come from cache/board_catalog.h instead, which hears of
 * deletions.
 */
#ifndef RANKD_CACHE_BOARD_CACHE_H
#define RANKD_CACHE_BOARD_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/model.h"
#include "util/must_use.h"

typedef struct board_cache board_cache_t;

board_cache_t *board_cache_new(int ttl_ms);
void board_cache_free(board_cache_t *c);
/* Copy the cached board into `out` (caller board_clear()s it); false on a miss. */
MUST_USE bool board_cache_get(board_cache_t *c, const char *id, board_t *out);
/* Remember `b` (copied). */
void board_cache_put(board_cache_t *c, const board_t *b);
void board_cache_forget(board_cache_t *c, const char *id);

#endif
