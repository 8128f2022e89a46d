/*
 * cache/revocations.h — when each player's tokens were last revoked, as this instance knows it.
 *
 * An admin's revocation (DELETE /v1/players/{player}/tokens) or a player's deletion stores the
 * instant in PostgreSQL (player_token_revocations) and NOTIFYs it (channel rankd_revoke); every
 * instance's listener hears it and notes it here, and loads the whole table each time it starts
 * listening (a start, a lost connection), so nothing missed stays missed. A token of the player
 * issued before the instant is refused. Until the first load a player token cannot be judged
 * (revocations_loaded). Thread-safe (one lock: notes are rare, lookups short).
 */
#ifndef RANKD_CACHE_REVOCATIONS_H
#define RANKD_CACHE_REVOCATIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct revocations revocations_t;

revocations_t *revocations_new(void);
void revocations_free(revocations_t *r);

/* Player `player` (len bytes) had every token issued before `at_ms` revoked; a later instant
 * already noted stays. */
void revocations_note(revocations_t *r, const char *player, size_t len, int64_t at_ms);
/* The instant before which `player`'s tokens are refused, 0 when never revoked. */
int64_t revocations_before(revocations_t *r, const char *player);
/* The table has been loaded once (tokens can be judged), and how many players it holds. */
void revocations_mark_loaded(revocations_t *r);
bool revocations_loaded(revocations_t *r);
size_t revocations_count(revocations_t *r);

#endif
