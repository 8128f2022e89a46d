/*
 * cache/token_cache.h — player tokens verified already, so that a request with a token costs
 * about what a request with a key does (API.md: a token is verified once, then found by its
 * digest until it expires).
 *
 * Keyed by the SHA-256 of the token's text (the token itself is not kept), bounded: a fixed
 * number of slots, each hash value one slot, a newer token taking an older one's place. An entry
 * is found only before its exp; revocations are checked by the caller at every use
 * (cache/revocations.h), so a revoked token's entry is never trusted. Thread-safe (striped
 * locks); cleared whole when the secrets or issuers change (a reload).
 */
#ifndef RANKD_CACHE_TOKEN_CACHE_H
#define RANKD_CACHE_TOKEN_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/player_claims.h"

typedef struct token_cache token_cache_t;

/* A cache of `slots` entries at most (rounded up to a power of two; 0: none kept). Free with
 * token_cache_free. */
token_cache_t *token_cache_new(size_t slots);
void token_cache_free(token_cache_t *tc);

/* The claims of the token whose digest is `digest`, when cached and not expired at `now_ms`:
 * true and *out filled. */
bool token_cache_get(token_cache_t *tc, const unsigned char digest[32], int64_t now_ms, player_claims_t *out);
/* Keep `claims` for the token of `digest` until claims->exp_ms. */
void token_cache_put(token_cache_t *tc, const unsigned char digest[32], const player_claims_t *claims);
/* Forget every entry (a reload changed what verifies). */
void token_cache_clear(token_cache_t *tc);

#endif
