/*
 * worker/write_rules.c — the plausibility rules of a board for the submissions made with a player
 * token (API.md, "Plausibility rules"), applied by the writer under the players' locks.
 *
 * A batch that holds no token write on a board with rules pays nothing here (no statement, one
 * pass over its items): keyed writes are a game server's, trusted. Otherwise one more statement
 * rides in the lock-and-read round trip (ws_client_sql): each (board, player)'s recent token
 * submissions and its last accepted one, from the log, which every instance writes: the rules hold
 * across instances, and the players' advisory locks keep two writers from judging the same player
 * at once. The gate then judges the batch's token writes in arrival order, each seeing the
 * batch's earlier ones: an item that breaks a rule is answered 422 `implausible`, is not applied,
 * and is logged with the rule's name (write_and_commit).
 */
#include "worker/write_batch.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define MINUTE_MS 60000

/* Whether item i is a token write the gate judges. */
static bool judged(const batch_t *bt, size_t i)
{
    const write_item_t *it = &bt->items[i];
    return it->client && bt->group_of[i] >= 0 && board_has_client_rules(it->board);
}

/* The first judged item of (gen, player) at or before `i`, so that each pair is asked once. */
static bool first_of_pair(const batch_t *bt, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (judged(bt, j) && bt->items[j].board->gen == bt->items[i].board->gen &&
            strcmp(bt->items[j].player, bt->items[i].player) == 0)
            return false;
    return true;
}

bool client_rules_params(const batch_t *bt, pg_arrays_t *as, const char **param)
{
    bool any = false;
    for (size_t i = 0; i < bt->n && !any; i++)
        any = judged(bt, i);
    if (!any)
        return false;
    pg_arrays_open(as, 5);
    for (size_t i = 0; i < bt->n; i++) {
        if (!judged(bt, i) || !first_of_pair(bt, i))
            continue;
        const write_item_t *it = &bt->items[i];
        int64_t since = it->received_ms; /* the pair's earliest item: its minute reaches furthest back */
        for (size_t j = i + 1; j < bt->n; j++)
            if (judged(bt, j) && bt->items[j].board->gen == it->board->gen && strcmp(bt->items[j].player, it->player) == 0 &&
                bt->items[j].received_ms < since)
                since = bt->items[j].received_ms;
        pg_arr_i64(&as->a[0], it->board->gen);
        pg_arr_text(&as->a[1], it->player);
        pg_arr_i64(&as->a[2], since - MINUTE_MS);
        /* Only whether the minute holds the rule's number matters: no more rows than that. */
        pg_arr_i64(&as->a[3], it->board->max_submissions_per_minute);
        pg_arr_text(&as->a[4], it->board->max_rise_per_second > 0 ? "t" : "f");
    }
    pg_arrays_close(as, param);
    return true;
}

/* The rise of `score` over `prev` on board b, in the board's direction: for `sum` the score
 * itself is what the standing rises by. */
static double rise_of(const board_t *b, int64_t score, int64_t prev)
{
    double d = b->op == OP_SUM ? (double)score : (double)score - (double)prev;
    return b->sort == SORT_DESC ? d : -d;
}

void client_rules_gate(batch_t *bt, PGresult *r)
{
    bool *passed = xcalloc(bt->n ? bt->n : 1, sizeof *passed);
    for (size_t i = 0; i < bt->n; i++) {
        if (!judged(bt, i))
            continue;
        write_item_t *it = &bt->items[i];
        const board_t *b = it->board;
        int64_t t = it->received_ms;
        int64_t count = 0, prev_ms = 0, prev_score = 0;
        bool has_prev = false;
        for (int row = 0; r && row < PQntuples(r); row++) {
            if (strtoll(PQgetvalue(r, row, 1), NULL, 10) != b->gen || strcmp(PQgetvalue(r, row, 2), it->player) != 0)
                continue;
            int64_t ms = strtoll(PQgetvalue(r, row, 3), NULL, 10);
            if (PQgetvalue(r, row, 0)[0] == 'r')
                count += ms > t - MINUTE_MS;
            else if (!has_prev || ms > prev_ms) {
                has_prev = true;
                prev_ms = ms;
                prev_score = strtoll(PQgetvalue(r, row, 4), NULL, 10);
            }
        }
        /* The batch's earlier token writes of the pair, judged already: each counts in the
         * minute, and the last one passed is the previous accepted. */
        for (size_t j = 0; j < i; j++) {
            const write_item_t *o = &bt->items[j];
            if (!o->client || o->board->gen != b->gen || strcmp(o->player, it->player) != 0 || (!passed[j] && !bt->flagged[j]))
                continue;
            count += o->received_ms > t - MINUTE_MS;
            if (passed[j] && (!has_prev || o->received_ms >= prev_ms)) {
                has_prev = true;
                prev_ms = o->received_ms;
                prev_score = o->score;
            }
        }
        const char *rule = NULL, *msg = NULL;
        if (b->max_submissions_per_minute > 0 && count >= b->max_submissions_per_minute) {
            rule = "max_submissions_per_minute";
            msg = "implausible: this player has made as many submissions on this board in the last minute as its "
                  "client_rules.max_submissions_per_minute allows; the submission is kept for moderation, not applied";
        } else if (b->max_rise_per_second > 0 && has_prev) {
            double rise = rise_of(b, it->score, prev_score);
            double secs = t > prev_ms ? (double)(t - prev_ms) / 1000.0 : 0;
            if (rise > 0 && rise > b->max_rise_per_second * secs) {
                rule = "max_rise_per_second";
                msg = "implausible: the score rose faster since this player's previous accepted submission than this "
                      "board's client_rules.max_rise_per_second allows; the submission is kept for moderation, not applied";
            }
        }
        if (!rule) {
            passed[i] = true;
            continue;
        }
        write_item_fail(it, 422, "implausible", NULL, msg);
        bt->flagged[i] = rule;
        bt->group_of[i] = -1;
    }
    free(passed);
}
