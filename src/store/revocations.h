/*
 * store/revocations.h — the revocation of players' tokens in PostgreSQL
 * (player_token_revocations, migrations/0024_player_tokens.sql).
 *
 * A revocation stores the instant before which the player's tokens are refused (the latest one
 * kept) and, in the same transaction, NOTIFYs rankd_revoke with "<ms> <player>", so that every
 * instance's listener hears it once it commits. A listener loads the whole table whenever it
 * starts listening: a notice missed while it was not is not missed for good.
 */
#ifndef RANKD_STORE_REVOCATIONS_H
#define RANKD_STORE_REVOCATIONS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/q_status.h"
#include "util/must_use.h"

#define REVOCATIONS_CHANNEL "rankd_revoke"

/* Revoke `player`'s tokens issued before `now_ms`; *at gets the instant stored (a later one
 * already there stays). */
MUST_USE q_status_t q_revoke_player_tokens(PGconn *c, const char *player, int64_t now_ms, int64_t *at);
/* The SQL a transaction that deletes players runs to revoke them too: $1 the instant, $2 a text
 * array of player ids; it notifies as q_revoke_player_tokens does. */
extern const char q_revoke_players_sql[];
/* Every stored revocation, each given to each(arg, player, len, ms). */
MUST_USE q_status_t q_revocations_load(PGconn *c, void (*each)(void *arg, const char *player, size_t len, int64_t ms),
                                       void *arg);
/* Parse a notice's payload "<ms> <player>": false when it is not one. */
MUST_USE bool revocation_notice_parse(const char *payload, int64_t *ms, const char **player, size_t *len);

#endif
