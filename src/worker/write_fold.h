/*
 * worker/write_fold.h — the pure part of a write transaction: which submissions of a batch
 * touch the same standing, and what each does to it.
 *
 * A batch may hold several submissions for one (board, window, player). They are grouped
 * (one group per standing, locked and read once), then folded in arrival order with
 * score_apply: the standing after each, whether it changed, and what the answer reports.
 */
#ifndef RANKD_WORKER_WRITE_FOLD_H
#define RANKD_WORKER_WRITE_FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/score.h"
#include "worker/write_item.h"

/* One (board, window, player) touched by the batch, with its standing. */
typedef struct {
    int64_t gen;
    int64_t day;
    const char *player;
    const board_t *board;
    bool existed;          /* had a standing before the batch */
    int64_t old_value;     /* that standing, for cache invalidation */
    int64_t old_achieved_ms;
    score_standing_t cur;  /* standing as the fold goes on: set to the stored one before folding */
    int64_t achieved_ms;
    const char *metadata;  /* borrowed from the item that set it, or from `stored_md` */
    char *stored_md;       /* owned copy of the metadata read from PostgreSQL */
    bool changed;          /* a change of a standing others see (after write_and_commit's start) */
    bool hidden;           /* the player is hidden on the board (migrations/0025_moderation.sql): the
                            * standing read and written is its hidden one, which no ranking counts */
    bool hidden_changed;   /* hidden: the fold changed the hidden standing (`changed` is then false) */
    int64_t version;
    int64_t window_seq;    /* the batch's number among the window's changing transactions; 0 none */
    int64_t rank;
    int64_t prev_rank;     /* the rank its standing had just before the batch; 0 unknown (or none) */
    /* On a tournament board that keeps entrants (core/tournament.h): the player's entrant row
     * for this slot as read under the player's lock, and what the batch's gate did. */
    bool t_entrant;        /* holds a place: joined, or a submission accepted before */
    bool t_joined;
    int64_t t_attempts;    /* accepted submissions before the batch */
    int64_t t_extra;       /* attempts an admin added */
    int64_t t_passed;      /* the batch's items the gate let through */
    score_standing_t t_cur; /* the standing as the gate's items leave it (the fold's, ahead of it) */
    bool t_admitted;       /* a new entrant the gate gave a place (counted if one of its items applies) */
} write_group_t;

/* What folding did to one submission. */
typedef struct {
    bool applied;          /* accepted (it goes to the log) */
    bool updated;          /* it changed the standing */
    bool had_prev;         /* a standing existed before it */
    int64_t prev;          /* that standing's score */
    int64_t prev_achieved_ms; /* and its achieved time: with the score, its place (previous_rank) */
    int64_t after;         /* the score after it */
    int64_t achieved_ms;   /* the standing's achieved time after it */
} write_fold_t;

/* Sort order[0..m) (indices of items) by (board generation, window, player, arrival) and give
 * each item its group: groups[g] for g < the returned count, in that order (each zeroed but
 * for its key); group_of[item] = g. O(m log m). */
size_t write_group_items(const write_item_t *items, size_t *order, size_t m, int *group_of, write_group_t *groups);

/* Fold items[0..n) with group_of[i] >= 0 into their groups, in arrival order: out[i] says what
 * item i did. A sum past the score range fails the item (400) and leaves its standing as it
 * was. */
void write_fold(write_item_t *items, size_t n, const int *group_of, write_group_t *groups, write_fold_t *out);

/* Give an item its error answer (the strings are static). */
void write_item_fail(write_item_t *it, int status, const char *code, const char *field, const char *message);

#endif
