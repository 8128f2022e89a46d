/*
 * worker/jwks_source.h — the JWTs of auth.issuers as a player-token source (core/player_claims.h):
 * jwks_verify's verdict in the shape api/player_auth.c asks every source for.
 */
#ifndef RANKD_WORKER_JWKS_SOURCE_H
#define RANKD_WORKER_JWKS_SOURCE_H

#include "core/player_claims.h"

/* A token_source_fn; `ctx` is the jwks_t of worker/jwks_fetcher.h. Never waits on I/O. */
token_verdict_t jwks_token_source(void *ctx, const char *token, size_t len, int64_t now_ms, player_claims_t *out,
                                  char *why, size_t why_len);

#endif
