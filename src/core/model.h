/*
 * core/model.h — the domain records every layer passes around: boards and ranked
 * entries, whichever store (Redis or PostgreSQL) produced them. No I/O.
 */
#ifndef RANKD_CORE_MODEL_H
#define RANKD_CORE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/board.h"
#include "core/league.h"
#include "core/tournament.h"
#include "core/window.h"

typedef struct {
    char id[BOARD_ID_MAX + 1];
    int64_t gen;          /* generation: differs for a board re-created under the same id */
    char *title;          /* owned */
    board_sort_t sort;
    board_op_t op;
    board_reset_t reset;
    char *metadata;       /* owned compact JSON object, or NULL */
    bool has_min_score;
    int64_t min_score;
    bool has_max_score;
    int64_t max_score;
    int64_t created_ms;
    tournament_t tournament; /* tournament.on: a tournament board (core/tournament.h) */
    league_t league;         /* league.on: a league board of cohorts and tiers (core/league.h) */
    char *webhook_url;       /* owned, or NULL: where its end-of-window events go (API.md) */
    char *webhook_secret;    /* owned, or NULL: set only in a definition being created; never read back */
    bool client_writes;      /* player tokens may submit and join here (API.md); false: server-only */
} board_t;

/* The rule of a board's windows (core/window.h). */
static inline window_rule_t board_window_rule(const board_t *b)
{
    return tournament_window_rule(&b->tournament, b->reset);
}

/* Free what a board owns (not the struct itself). */
void board_clear(board_t *b);
/* Deep copy `src` into `dst` (which owns nothing yet). */
void board_copy(board_t *dst, const board_t *src);
/* True when two definitions agree on everything a client may set at creation. */
bool board_same_definition(const board_t *a, const board_t *b);
/* How many of those fields differ; their names, comma-separated, into out (outlen bytes). */
size_t board_differences(const board_t *a, const board_t *b, char *out, size_t outlen);

typedef struct {
    int64_t rank;         /* 1-based */
    char player[PLAYER_ID_MAX + 1];
    size_t player_len;
    int64_t score;
    int64_t sort_key;
    int64_t achieved_ms;
    char *metadata;       /* owned, or NULL */
    /* A league standing's cohort (0: none or not asked: set only by q_league_standing), its tier
     * (an index into the board's tiers) and its rank among the cohort. */
    int cohort;
    int tier;
    int64_t cohort_rank;
} entry_t;

typedef struct {
    int64_t total;        /* players in the window */
    int64_t modified_ms;  /* when the window last changed: 0 unless read from its archive */
    int64_t at_or_before; /* a score's read (GET …/rank?score=): standings with that score or better */
    entry_t *items;       /* owned */
    size_t n;
    size_t cap;
} entries_t;

void entries_init(entries_t *e);
void entries_clear(entries_t *e);
/* Make room for `n` more entries at once (a reply's count is known before its entries). */
void entries_reserve(entries_t *e, size_t n);
/* Sort the entries by rank (named players' answers come in the order asked). */
void entries_sort_by_rank(entries_t *e);
/* Append an entry (copies player and metadata); returns it. */
entry_t *entries_push(entries_t *e, int64_t rank, const char *player, size_t player_len, int64_t score,
                      int64_t sort_key, int64_t achieved_ms, const char *metadata, size_t metadata_len);

#endif
