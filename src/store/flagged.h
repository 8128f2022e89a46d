/*
 * store/flagged.h — a board's flagged submissions (migrations/0026_client_rules.sql): the token
 * writes that broke one of its client rules, kept in the log unapplied, for moderation
 * (GET /v1/leaderboards/{board}/flagged).
 */
#ifndef RANKD_STORE_FLAGGED_H
#define RANKD_STORE_FLAGGED_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/q_status.h"
#include "util/must_use.h"

/* A page of them, newest first, each row: player_id, score, received_ms, window day (YYYY-MM-DD),
 * flagged (the rule), auth_by, client_addr, metadata (any of the last three may be NULL).
 * Rows strictly after the position (received_ms, player, score) in that order when `after` is
 * true. *out is the caller's to PQclear. */
MUST_USE q_status_t q_flagged_page(PGconn *c, int64_t gen, bool after, int64_t after_ms, const char *after_player,
                                   int64_t after_score, int limit, PGresult **out);

#endif
