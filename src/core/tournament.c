/* core/tournament.c — tournament slots: when a board's slots open and close. */
#include "core/tournament.h"

#include <stdio.h>
#include <string.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

window_rule_t tournament_window_rule(const tournament_t *t, board_reset_t reset)
{
    window_rule_t rule = WINDOW_RULE(reset);
    if (t->on && t->once)
        rule.none_day = floor_div(t->start_ms, MS_PER_DAY);
    return rule;
}

tournament_slot_t tournament_slot_of_day(const tournament_t *t, board_reset_t reset, int64_t day)
{
    window_rule_t rule = tournament_window_rule(t, reset);
    if (t->once)
        return (tournament_slot_t){rule.none_day, t->start_ms, t->end_ms};
    int64_t opens = day * MS_PER_DAY, closes = opens + t->duration_s * 1000;
    int64_t next = window_next_day(rule, day);
    /* A month shorter than duration_s closes its slot at its end. */
    if (next >= 0 && closes > next * MS_PER_DAY)
        closes = next * MS_PER_DAY;
    return (tournament_slot_t){day, opens, closes};
}

tournament_slot_t tournament_slot_at(const tournament_t *t, board_reset_t reset, int64_t now_ms, slot_state_t *state)
{
    window_rule_t rule = tournament_window_rule(t, reset);
    tournament_slot_t s = tournament_slot_of_day(t, reset, window_start_day(rule, now_ms));
    if (now_ms < s.opens_ms) {
        *state = SLOT_UPCOMING;
    } else if (now_ms < s.closes_ms) {
        *state = SLOT_ACTIVE;
    } else if (t->once || window_next_day(rule, s.day) < 0) {
        *state = SLOT_ENDED;
    } else {
        *state = SLOT_UPCOMING;
        s = tournament_slot_of_day(t, reset, window_next_day(rule, s.day));
    }
    return s;
}

bool tournament_accepts(const tournament_t *t, board_reset_t reset, int64_t day, int64_t ms)
{
    if (!t->on)
        return true;
    tournament_slot_t s = tournament_slot_of_day(t, reset, day);
    return ms >= s.opens_ms && ms < s.closes_ms;
}

bool tournament_counts_entrants(const tournament_t *t)
{
    return t->on && (t->join_required || t->max_players > 0 || t->max_attempts > 0);
}

bool tournament_counts_slot(const tournament_t *t)
{
    return t->on && (t->join_required || t->max_players > 0);
}

/* The longest recurring slot of a reset period, in seconds (a month's: 31 days, cut at the
 * month's end by tournament_slot_of_day). */
static int64_t period_s(board_reset_t reset)
{
    switch (reset) {
    case RESET_DAILY:
        return 86400;
    case RESET_WEEKLY:
        return 7 * 86400;
    case RESET_MONTHLY:
        return 31 * 86400;
    case RESET_NONE:
        break;
    }
    return 0;
}

const char *tournament_check(const tournament_t *t, board_reset_t reset, char *msg, size_t msg_len)
{
    if (!t->on)
        return NULL;
    if (t->once) {
        if (reset != RESET_NONE) {
            snprintf(msg, msg_len, "a one-off slot (start_at, end_at) needs a board with reset none;"
                                   " a board that resets takes duration_s, a slot at each reset");
            return "tournament.start_at";
        }
        if (t->end_ms <= t->start_ms) {
            snprintf(msg, msg_len, "end_at must be after start_at");
            return "tournament.end_at";
        }
        if (t->end_ms - t->start_ms > TOURNAMENT_SPAN_MAX_MS) {
            snprintf(msg, msg_len, "a one-off slot lasts at most 3660 days");
            return "tournament.end_at";
        }
    } else {
        int64_t most = period_s(reset);
        if (most == 0) {
            snprintf(msg, msg_len, "a recurring slot (duration_s) opens at each reset: the board's reset must be"
                                   " daily, weekly or monthly; a board with reset none takes start_at and end_at");
            return "tournament.duration_s";
        }
        if (t->duration_s < 1 || t->duration_s > most) {
            snprintf(msg, msg_len, "duration_s must be 1 to %lld (the board's reset period)", (long long)most);
            return "tournament.duration_s";
        }
    }
    if (t->max_players < 0 || t->max_players > TOURNAMENT_PLAYERS_MAX) {
        snprintf(msg, msg_len, "max_players must be 1 to %d", TOURNAMENT_PLAYERS_MAX);
        return "tournament.max_players";
    }
    if (t->max_attempts < 0 || t->max_attempts > TOURNAMENT_ATTEMPTS_MAX) {
        snprintf(msg, msg_len, "max_attempts must be 1 to %d", TOURNAMENT_ATTEMPTS_MAX);
        return "tournament.max_attempts";
    }
    return NULL;
}

static const char *const state_names[] = {"upcoming", "active", "ended"};

const char *tournament_state_name(slot_state_t s)
{
    return state_names[s];
}

bool tournament_state_parse(const char *s, slot_state_t *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (slot_state_t)i;
            return true;
        }
    return false;
}

bool tournament_same(const tournament_t *a, const tournament_t *b)
{
    return a->on == b->on && a->once == b->once && a->start_ms == b->start_ms && a->end_ms == b->end_ms &&
           a->duration_s == b->duration_s && a->max_players == b->max_players && a->max_attempts == b->max_attempts &&
           a->join_required == b->join_required && strcmp(a->category, b->category) == 0;
}
