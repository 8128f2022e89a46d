/*
 * core/player_token.h — rankd's own player tokens: compact JWS (RFC 7515) with HS256, signed
 * with auth.player_token_secret.
 *
 * Claims: iss "rankd", sub (the player id), iat (seconds, with milliseconds as a fraction: a
 * revocation at a millisecond spares tokens minted after it in the same second), exp (whole
 * seconds), jti (16 random bytes, base64url) and, when limited, boards (board ids). The header
 * is {"alg":"HS256","typ":"JWT"}. Verification takes the current secret and the previous one
 * (rotation), refuses any other alg (none included), a bad signature, an expired token and
 * claims that break the contract's id rules. Pure: OpenSSL's HMAC and jansson, no I/O.
 */
#ifndef RANKD_CORE_PLAYER_TOKEN_H
#define RANKD_CORE_PLAYER_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/player_claims.h"

#define PLAYER_TOKEN_ISSUER "rankd"
#define PLAYER_TOKEN_TTL_MAX_S 86400  /* a day (API.md) */
#define PLAYER_TOKEN_TTL_DEFAULT_S 3600

/*
 * A token for `player` (valid id), limited to boards[0..n_boards) (0: every board), issued at
 * `now_ms` for `ttl_s` seconds, signed with `secret`; `jti` is 16 random bytes. Returns a
 * NUL-terminated string the caller frees, or NULL when out of range (n_boards above
 * PLAYER_CLAIMS_BOARDS_MAX).
 */
char *player_token_mint(const char *secret, const char *player, const char *const *boards, size_t n_boards,
                        int64_t now_ms, int ttl_s, const unsigned char jti[16]);

/* The secrets a verification accepts: current first, then previous (either NULL: none). */
typedef struct {
    const char *current;
    const char *previous;
} player_token_keys_t;

/*
 * Judge `token` (len bytes) as a token_source_fn does, `ctx` being a player_token_keys_t: not
 * rankd's (not a JWS, or its iss is not "rankd"), valid (claims into *out, issuer "rankd",
 * subject = player), or invalid with the reason in why.
 */
token_verdict_t player_token_verify(void *ctx, const char *token, size_t len, int64_t now_ms, player_claims_t *out,
                                    char *why, size_t why_len);

#endif
