/*
 * api/live_player.h — what a player's live stream knows between two of its events (api/live.c).
 *
 * GET …/players/{player}/live?around=K sends the player's rank, score and the K players on either
 * side each time they change, with the rank of the stream's previous event and the players that
 * moved past the player since (`overtaken_by`). Who moved past is known from the change notices
 * every instance hears (core/notice.h): each numbered W line of the player's window gives a
 * standing's position before and after, and the player's own position is known from the last
 * answer and from the player's own W lines. A notice also says whether a change can touch the
 * stream at all: only one that crosses the player's position or lands between the first and the
 * last position the last answer showed does (a new player far behind changes `total` alone, which
 * the next event carries).
 *
 * Not locked: the hub holds its lock around every call.
 */
#ifndef RANKD_API_LIVE_PLAYER_H
#define RANKD_API_LIVE_PLAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/board.h"
#include "core/notice.h"
#include "core/order.h"
#include "util/buf.h"

#define LIVE_OVERTAKERS_MAX 100 /* named in one event; more are counted in none */

typedef struct {
    char player[PLAYER_ID_MAX + 1];
    board_sort_t sort;
    bool placed;                 /* the player's position below is known */
    order_pos_t pos;             /* the player's position in the window */
    bool bounded;                /* first and last below are the last answer's */
    order_pos_t first, last;     /* the last answer's first and last entries' positions */
    order_pos_t passed[LIVE_OVERTAKERS_MAX]; /* players that moved past it since the last event,
                                              * at their latest positions heard */
    size_t n_passed;
    int64_t sent_rank;           /* the player's rank in the stream's last event; 0: none */
} live_player_t;

/* A numbered change of the player's window, heard: note who moved past the player, follow the
 * player's own moves. True when it can change the stream's answer. */
bool live_player_heard(live_player_t *p, const notice_change_t *c);

/* The event for an answer. `around` is the body of GET …/players/{player}/around (status 200),
 * or NULL when the player has no standing in the window, and then `page` is the body of
 * GET …/entries?limit=1 (the window and its total). Appends the event's data to *out: the answer
 * with "player", "rank", "score", "previous_rank" and "overtaken_by" before its own members (the
 * rank and score null and the entries empty without a standing). When `sent` the event goes out:
 * its rank becomes the previous one, and the players named are forgotten. False when the answer
 * cannot be read (no entry for the player, or not JSON). *rank: the player's rank in it (0: none). */
bool live_player_event(live_player_t *p, const char *around, size_t around_len, const char *page, size_t page_len,
                       buf_t *out, int64_t *rank);
/* The event made last went out (see live_player_event). */
void live_player_sent(live_player_t *p, int64_t rank);

/* The sort keys a change must reach (its old or new key, or the range between them) for
 * live_player_heard to find it touches the stream: [*lo, *hi], from the first entry shown to the
 * last with the player's own place; empty (*lo > *hi) while the player has no standing (then only
 * the player's own change touches it). A cheap first test for a scan of many streams. */
void live_player_bounds(const live_player_t *p, int64_t *lo, int64_t *hi);

#endif
