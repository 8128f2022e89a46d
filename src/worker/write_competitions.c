/*
 * worker/write_competitions.c — what a batch owes a board's competition: a tournament's gate and
 * entrants, a league's cohorts.
 *
 * The gate refuses, before the fold, what a tournament's rules refuse (API.md, "Competitions"),
 * from entrant rows and slot counts read under the players' and the slots' locks; the entrant
 * rows, the slots' counts and the league placements the batch earned are written with it
 * (ws_tournament_sql, ws_league_sql).
 */
#include "worker/write_batch.h"

#include <stdlib.h>

#include "core/score.h"
#include "core/tournament.h"
#include "store/pg_pipeline.h"
#include "util/alloc.h"

/* Whether group `gr`'s board keeps a tournament entrant row per player and slot. */
bool keeps_entrants(const write_group_t *gr)
{
    return tournament_counts_entrants(&gr->board->tournament);
}

/* Whether the batch may give new entrants places in group `gr`'s slot: a capped tournament that
 * requires no join (where one is required, the join gives the place). */
bool admits_entrants(const write_group_t *gr)
{
    const tournament_t *t = &gr->board->tournament;
    return t->on && !t->join_required && t->max_players > 0;
}

static t_slot_t *slot_of(batch_t *bt, int64_t gen, int64_t day)
{
    for (size_t s = 0; s < bt->n_slots; s++)
        if (bt->slots[s].gen == gen && bt->slots[s].day == day)
            return &bt->slots[s];
    return NULL;
}

/*
 * Refuse what a tournament's rules refuse (API.md, "Competitions"), before the fold: a
 * submission received outside its window's slot (not_active), without the join the board
 * requires (not_joined), past the player's attempts in the slot (attempts_exhausted), or of a
 * new entrant to a full slot (tournament_full). The entrant rows and the slots' counts were read
 * under the players' locks and the slots' row locks, so no race passes a cap. Items in arrival
 * order per player (bt->order[0..m)); a refused item leaves its group, as one in an archived
 * window does, and its idempotency key is forgotten with the other failed items'.
 */
void tournament_gate(batch_t *bt, size_t m)
{
    for (size_t g = 0; g < bt->n_groups; g++)
        bt->groups[g].t_cur = bt->groups[g].cur;
    for (size_t k = 0; k < m; k++) {
        size_t i = bt->order[k];
        if (bt->group_of[i] < 0)
            continue;
        write_item_t *it = &bt->items[i];
        const tournament_t *t = &it->board->tournament;
        if (!t->on)
            continue;
        write_group_t *gr = &bt->groups[bt->group_of[i]];
        const char *code = NULL, *msg = NULL;
        if (!tournament_accepts(t, it->board->reset, it->day, it->received_ms)) {
            code = "not_active";
            msg = "this submission was received outside the tournament's slot (see the board's opens_at and closes_at)";
        } else if (!tournament_counts_entrants(t)) {
            /* open to all, as often as they like */
        } else if (t->join_required && !gr->t_joined) {
            code = "not_joined";
            msg = "this tournament takes submissions from players who joined its slot only"
                  " (POST /v1/leaderboards/{board}/players/{player}/join)";
        } else if (t->max_attempts > 0 && gr->t_attempts + gr->t_passed >= t->max_attempts + gr->t_extra) {
            code = "attempts_exhausted";
            msg = "the player has used every attempt this tournament's slot allows";
        } else if (admits_entrants(gr) && !gr->t_entrant && !gr->t_admitted) {
            t_slot_t *s = slot_of(bt, gr->gen, gr->day);
            if (!s || s->entrants >= t->max_players) {
                code = "tournament_full";
                msg = "the tournament's slot has as many players as its max_players";
            } else {
                s->entrants++;
                gr->t_admitted = true;
            }
        }
        if (code) {
            write_item_fail(it, 409, code, NULL, msg);
            bt->group_of[i] = -1;
            continue;
        }
        /* An item the fold will refuse (a sum past the score range) is no attempt: the standing
         * is followed here as the fold will leave it. A new entrant's first item never overflows
         * (one score is within range), so no place is given to one that will be refused. */
        score_standing_t next;
        bool updated;
        if (score_apply(it->board->op, it->board->sort, gr->t_cur, it->score, &next, &updated) == SCORE_OVERFLOW)
            continue;
        if (updated)
            gr->t_cur = next;
        gr->t_passed++;
    }
}

/* ws_tournament_sql's parameters: each tournament entrant's attempts (its items applied), and
 * each capped slot's new entrants (admitted by the gate, with an item applied); false when the
 * batch has none. */
bool tournament_params(const batch_t *bt, pg_arrays_t *as, const char **param)
{
    pg_arrays_open(as, 7);
    int64_t *applied = xcalloc(bt->n_groups ? bt->n_groups : 1, sizeof *applied);
    for (size_t i = 0; i < bt->n; i++)
        if (bt->fold[i].applied && bt->group_of[i] >= 0)
            applied[bt->group_of[i]]++;
    bool any = false;
    for (size_t g = 0; g < bt->n_groups; g++) {
        const write_group_t *gr = &bt->groups[g];
        if (!keeps_entrants(gr) || applied[g] == 0)
            continue;
        pg_arr_i64(&as->a[0], gr->gen);
        pg_arr_day(&as->a[1], gr->day);
        pg_arr_text(&as->a[2], gr->player);
        pg_arr_i64(&as->a[3], applied[g]);
        any = true;
    }
    for (size_t s = 0; s < bt->n_slots; s++) {
        int64_t added = 0;
        for (size_t g = 0; g < bt->n_groups; g++)
            added += bt->groups[g].gen == bt->slots[s].gen && bt->groups[g].day == bt->slots[s].day &&
                     bt->groups[g].t_admitted && applied[g] > 0;
        if (added == 0)
            continue;
        pg_arr_i64(&as->a[4], bt->slots[s].gen);
        pg_arr_day(&as->a[5], bt->slots[s].day);
        pg_arr_i64(&as->a[6], added);
        any = true;
    }
    free(applied);
    pg_arrays_close(as, param);
    return any;
}

/* ws_league_sql's parameters: each league board's player whose first standing of a window the
 * batch writes, in arrival order (placed first come, first served); false when there is none. */
bool league_params(const batch_t *bt, pg_arrays_t *as, const char **param)
{
    pg_arrays_open(as, 3);
    bool *seen = xcalloc(bt->n_groups ? bt->n_groups : 1, sizeof *seen);
    bool any = false;
    for (size_t i = 0; i < bt->n; i++) {
        if (!bt->fold[i].applied || bt->group_of[i] < 0 || seen[bt->group_of[i]])
            continue;
        const write_group_t *gr = &bt->groups[bt->group_of[i]];
        seen[bt->group_of[i]] = true;
        if (!gr->board->league.on || gr->existed || !gr->changed)
            continue;
        pg_arr_i64(&as->a[0], gr->gen);
        pg_arr_day(&as->a[1], gr->day);
        pg_arr_text(&as->a[2], gr->player);
        any = true;
    }
    free(seen);
    pg_arrays_close(as, param);
    return any;
}
