/*
 * store/moderation.h — an admin's hiding of a player on a board (migrations/0025_moderation.sql):
 * the player's standings of the board's live windows move to hidden_standings, which no ranking
 * counts, and back on a restore. Each window a hide or a restore changes takes its next number
 * and notifies it as a write does (core/notice.h): a hide as a deletion (S and D lines), a
 * restore as a new standing (S and W lines), so that every instance's Redis copy, rank tier and
 * cached answers follow exactly as they follow deletions and writes.
 */
#ifndef RANKD_STORE_MODERATION_H
#define RANKD_STORE_MODERATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/model.h"
#include "core/rank_style.h"
#include "store/q_status.h"
#include "util/must_use.h"

/* A live window a hide or a restore changed. */
typedef struct {
    int64_t day;
    int64_t seq;           /* the change's number among the window's changing transactions */
    int64_t version;       /* hide: the tombstone version; restore: the standing's new version (Redis) */
    int64_t sort_key, achieved_ms; /* the position the standing left (hide) or took (restore) */
    char *metadata;        /* restore: the standing's metadata (owned), NULL when none */
} q_moved_t;

/* Free `n` moved windows and the array. */
void q_moved_free(q_moved_t *m, size_t n);

/*
 * Hide `player` on board `gen` at `now_ms`, with `reason` (NULL: none): their standings of every
 * window not archived leave the ranking (window counters, rank buckets; each window notified
 * with its S and D lines) for hidden_standings. Archived windows keep them. Waits at most
 * `lock_wait_ms` for an archive or an import of the board (Q_RETRY, rolled back). Q_CONFLICT:
 * already hidden; Q_NOT_FOUND: the player has no standing on the board, live or archived.
 * `*out` (caller frees with q_moved_free, even on failure) lists the `*n` windows changed.
 */
MUST_USE q_status_t q_player_hide(PGconn *c, int64_t gen, const char *player, const char *reason, int64_t now_ms,
                                  int lock_wait_ms, q_moved_t **out, size_t *n);

/*
 * Show `player` on board `gen` again: each hidden standing of a window not archived goes back to
 * `standings` with a new version (each window notified with its S and W lines, counters and rank
 * buckets counting it again), at the place its score and achieved time give, scores submitted
 * while hidden included. A hidden standing of a window archived meanwhile stays in
 * hidden_standings (the archive, made while the player was hidden, is final).
 * Q_NOT_FOUND: not hidden. Otherwise as q_player_hide.
 */
MUST_USE q_status_t q_player_restore(PGconn *c, int64_t gen, const char *player, int lock_wait_ms, q_moved_t **out,
                                     size_t *n);

/* One hidden player of a board. */
typedef struct {
    char *player;     /* owned */
    int64_t hidden_ms;
    char *reason;     /* owned, NULL when none */
} q_hidden_t;

/* The hidden players of board `gen` in (hidden_at, player) order after (`after_ms`, `after_player`)
 * (`after_player` NULL: from the first), at most `limit`: `*out` (caller frees with
 * q_hidden_free) and `*n`. */
MUST_USE q_status_t q_hidden_list(PGconn *c, int64_t gen, int64_t after_ms, const char *after_player, int limit,
                                  q_hidden_t **out, size_t *n);
void q_hidden_free(q_hidden_t *h, size_t n);

/*
 * A hidden player's own view of window `day` (a shadow ban: they still see themselves): their
 * hidden standing into `*out` (its metadata owned: the caller frees it), ranked among the
 * visible players as if they stood with them: ordinal, 1 + the visible standings before its
 * place; competition, 1 + those of a better score; dense, 1 + the better distinct scores.
 * `*total` counts the visible players and them. One snapshot. Q_NOT_FOUND: no hidden standing
 * in the window.
 */
MUST_USE q_status_t q_own_view(PGconn *c, const board_t *b, int64_t day, const char *player, rank_style_t style,
                               entry_t *out, int64_t *total);

/* The same view of the players around them: up to `before` visible standings above their place,
 * them, up to `after` below, each ranked in `style` as the own view ranks (the visible ones after
 * their place one lower, in competition and dense when their score is better: in dense only
 * when no visible standing holds it), `out->total` the visible players and them. One snapshot.
 * Q_NOT_FOUND: no hidden standing in the window. */
MUST_USE q_status_t q_own_around(PGconn *c, const board_t *b, int64_t day, const char *player, int before, int after,
                                 rank_style_t style, entries_t *out);

/* Whether `player` is hidden on board `gen` (`*hidden`), and when (`*hidden_ms`). */
MUST_USE q_status_t q_player_hidden(PGconn *c, int64_t gen, const char *player, bool *hidden, int64_t *hidden_ms);

#endif
