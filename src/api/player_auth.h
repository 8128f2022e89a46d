/*
 * api/player_auth.h — player tokens as credentials: which sources judge a bearer token, the
 * cache of verified ones, the revocations, and what a token may do (API.md, "Player tokens").
 *
 * A bearer string that is no configured key is offered to each token source in turn
 * (core/player_claims.h): rankd's minted tokens first (core/player_token.h, signed with
 * auth.player_token_secret or the previous one), then any source added with
 * player_auth_add_source (the JWTs of auth.issuers). The first source that claims it decides.
 * A valid token is cached by its digest until its exp (cache/token_cache.h), so a request with a
 * token costs about what one with a key does; every use checks the player's revocation instant
 * (cache/revocations.h). Verification runs on the event loop: sources must not wait on I/O.
 */
#ifndef RANKD_API_PLAYER_AUTH_H
#define RANKD_API_PLAYER_AUTH_H

#include <stdbool.h>

#include "cache/revocations.h"
#include "cache/token_cache.h"
#include "core/model.h"
#include "core/player_claims.h"
#include "http/request.h"
#include "util/must_use.h"

#define PLAYER_AUTH_SOURCES_MAX 8
#define PLAYER_AUTH_CACHE_SLOTS 16384 /* verified tokens kept at most (about 1.7 KB each, allocated as used: 28 MB at most) */

typedef struct player_auth player_auth_t;

/* A registry with the minted source (its secrets read from `live`, the running configuration, at
 * each verification). Free with player_auth_free. */
struct app;
player_auth_t *player_auth_new(struct app *app);
void player_auth_free(player_auth_t *pa);
/* Add a source after those there, `name` (static) for logs; false when full. Before serving. */
bool player_auth_add_source(player_auth_t *pa, const char *name, token_source_fn fn, void *ctx);
/* A reload changed secrets or issuers: what was verified is verified again. */
void player_auth_forget_verified(player_auth_t *pa);
/* The revocations the listener keeps current. */
revocations_t *player_auth_revocations(player_auth_t *pa);

#endif
