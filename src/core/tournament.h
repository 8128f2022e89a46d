/*
 * core/tournament.h — a tournament board's rules: when its slots open and close, who may play,
 * how often. Pure: no I/O, no clock (every instant is passed in).
 *
 * A slot is either one-off, [start_at, end_at), on a board that never resets (its one window is
 * named by start_at's date), or recurring: the first duration_s of each of the board's windows.
 * A submission outside its window's slot is refused (not_active); players join a slot (its
 * window), and attempts are counted per player per slot (API.md, "Competitions").
 */
#ifndef RANKD_CORE_TOURNAMENT_H
#define RANKD_CORE_TOURNAMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/board.h"
#include "core/window.h"
#include "util/must_use.h"

#define TOURNAMENT_CATEGORY_MAX 64
#define TOURNAMENT_PLAYERS_MAX 100000000 /* max_players above this is refused */
#define TOURNAMENT_ATTEMPTS_MAX 1000000
#define TOURNAMENT_ADD_MAX 1000          /* attempts an admin adds at once */
/* The longest a one-off slot may last: ten years. */
#define TOURNAMENT_SPAN_MAX_MS (3660LL * 86400000LL)

typedef struct {
    bool on;               /* the board is a tournament; every other field is 0 when not */
    bool once;             /* a one-off slot [start_ms, end_ms); else recurring (duration_s) */
    int64_t start_ms;
    int64_t end_ms;
    int64_t duration_s;
    int64_t max_players;   /* 0: no cap */
    int64_t max_attempts;  /* 0: unlimited */
    bool join_required;
    char category[TOURNAMENT_CATEGORY_MAX + 1]; /* "" when none */
} tournament_t;

/* A slot: the window it belongs to, and when it opens and closes. */
typedef struct {
    int64_t day;
    int64_t opens_ms;
    int64_t closes_ms;
} tournament_slot_t;

typedef enum { SLOT_UPCOMING = 0, SLOT_ACTIVE = 1, SLOT_ENDED = 2 } slot_state_t;

/* The rule of a board's windows: a one-off tournament names its one window by start_at's date. */
window_rule_t tournament_window_rule(const tournament_t *t, board_reset_t reset);

/* The slot of the board's window starting on `day`. */
tournament_slot_t tournament_slot_of_day(const tournament_t *t, board_reset_t reset, int64_t day);

/* The slot that is active at `now_ms`, else the next one to open, else (a one-off slot that has
 * closed) the last one; *state says which. */
tournament_slot_t tournament_slot_at(const tournament_t *t, board_reset_t reset, int64_t now_ms, slot_state_t *state);

/* Whether a submission received at `ms` into the window starting on `day` falls in its slot. */
bool tournament_accepts(const tournament_t *t, board_reset_t reset, int64_t day, int64_t ms);

/* Whether this tournament keeps a row per player and slot (joins, attempts or a cap to count). */
bool tournament_counts_entrants(const tournament_t *t);

/* Whether its slot count (players) is kept in PostgreSQL (a join is required or there is a
 * cap); else its players are the window's scored players. */
bool tournament_counts_slot(const tournament_t *t);

/* Check a definition against the board's reset period; NULL when valid, else the name of the
 * field at fault ("tournament.duration_s") with a message into msg (msg_len bytes). */
const char *tournament_check(const tournament_t *t, board_reset_t reset, char *msg, size_t msg_len);

/* "upcoming", "active", "ended"; false for any other name. */
const char *tournament_state_name(slot_state_t s);
MUST_USE bool tournament_state_parse(const char *s, slot_state_t *out);

/* True when two definitions are the same. */
bool tournament_same(const tournament_t *a, const tournament_t *b);

#endif
