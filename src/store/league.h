/*
 * store/league.h — a league board's cohorts in PostgreSQL (migrations/0019_leagues.sql): which
 * cohort holds a player in a window, and one cohort's entries ranked among themselves.
 * Placing and settling are the writer's and the archiver's (rankd_league_place, rankd_league_settle).
 */
#ifndef RANKD_STORE_LEAGUE_H
#define RANKD_STORE_LEAGUE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/model.h"
#include "core/rank_style.h"
#include "store/q_status.h"
#include "util/must_use.h"

/* A move a settled window made: the player's tier before and after it (tier indexes). */
typedef struct {
    char player[PLAYER_ID_MAX + 1];
    int from, to;
} league_move_t;

/* One cohort of a window. */
typedef struct {
    int cohort;
    int tier;            /* index into the board's tiers */
    int64_t players;     /* its players with a standing in the window */
    entries_t entries;   /* the page asked for, `rank` being the cohort rank in the style asked */
    bool settled;        /* the window's moves are made */
    league_move_t *moves; /* when settled: the cohort's players that changed tier, best first (owned) */
    size_t n_moves;
} league_cohort_t;

void league_cohort_init(league_cohort_t *c);
void league_cohort_clear(league_cohort_t *c);

/* The cohort of `player` in window `day` of board gen `gen`: Q_OK with *cohort, or Q_NOT_FOUND. */
MUST_USE q_status_t q_league_cohort_of(PGconn *c, int64_t gen, int64_t day, const char *player, int *cohort);
/* Cohort `cohort` of window `day`: its tier, players, and entries offset+1 .. offset+limit in
 * cohort rank order, from the window's standings or, once it is archived, its archive. Q_NOT_FOUND
 * when the window has no such cohort. */
MUST_USE q_status_t q_league_cohort(PGconn *c, const board_t *b, int64_t day, int cohort, rank_style_t style,
                                    int64_t limit, int64_t offset, league_cohort_t *out);

/* The cohort, tier and cohort rank (in `style`) of standing `e` (read in this snapshot) into e;
 * e->cohort stays 0 when the player has no cohort in window `day`. */
MUST_USE q_status_t q_league_standing(PGconn *c, const board_t *b, int64_t day, rank_style_t style, entry_t *e);

#endif
