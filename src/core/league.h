/*
 * core/league.h — a league board's rules: cohorts of at most `size` players, tiers (lowest
 * first) whose top `promote` of each cohort move up and bottom `relegate` move down at each
 * reset (API.md, "Competitions"). Pure: no I/O.
 *
 * Placing, ranking within cohorts and settling a closed window's moves are PostgreSQL's
 * (migrations/0019_leagues.sql): this header holds the definition, its checks, its stored form
 * and the rule of a move, which the tests check against the SQL's.
 */
#ifndef RANKD_CORE_LEAGUE_H
#define RANKD_CORE_LEAGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/must_use.h"

#define LEAGUE_SIZE_MIN 2
#define LEAGUE_SIZE_MAX 1000
#define LEAGUE_TIERS_MAX 16
#define LEAGUE_TIER_NAME_MAX 64
/* The one tier of a league created without `tiers`. */
#define LEAGUE_DEFAULT_TIER "default"

typedef struct {
    char name[LEAGUE_TIER_NAME_MAX + 1];
    int promote;  /* the top this many of each cohort move up a tier at a reset */
    int relegate; /* the bottom this many move down */
} league_tier_t;

/* Held in every board_t (and copied with it for each write): the tiers are on the heap, so that a
 * board that is no league carries no room for them. */
typedef struct {
    bool on;      /* a league board; every other field is 0 when not */
    int size;     /* players per cohort at most */
    int n_tiers;  /* 1..LEAGUE_TIERS_MAX when on */
    league_tier_t *tiers; /* owned: n_tiers of them (LEAGUE_TIERS_MAX of room), or NULL */
} league_t;

/* Room for LEAGUE_TIERS_MAX tiers in l->tiers (freed first), none used yet. */
void league_alloc_tiers(league_t *l);
/* Free what a league owns; it is no league after. */
void league_clear(league_t *l);
/* A deep copy of src into dst (which owns nothing yet). */
void league_copy(league_t *dst, const league_t *src);

/* Check a definition; NULL when valid, else the field at fault ("tiers") with a message into msg. */
const char *league_check(const league_t *l, char *msg, size_t msg_len);

/* The tier a player of tier `tier` moves to from cohort rank `rank` (1-based, ordinal) among the
 * `players` of a cohort: up for the top `promote` (not past the highest tier), else down for the
 * bottom `relegate` (not below the lowest), else the same. */
int league_next_tier(const league_t *l, int tier, int64_t rank, int64_t players);

/* The tiers as stored (boards.tiers) and rendered: a JSON array of {"name","promote","relegate"}
 * (owned, NUL-terminated). */
char *league_tiers_json(const league_t *l);
/* Read boards.tiers' text back into l->tiers (allocated), l->n_tiers; false when it is not such an
 * array. */
MUST_USE bool league_tiers_parse(const char *json, league_t *l);

/* True when two definitions are the same. */
bool league_same(const league_t *a, const league_t *b);

#endif
