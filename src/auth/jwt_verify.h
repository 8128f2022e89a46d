/*
 * auth/jwt_verify.h — verify a JWT (RFC 7519, compact JWS) an identity provider issued to a
 * player: its signature against the provider's keys (auth/jwk.h: RS256, ES256, EdDSA), then its
 * claims against the trusted issuer's settings (auth.issuers: issuer, audience, the claim naming
 * the player, the clock skew allowed).
 *
 * Refused, each with its reason: a malformed token; alg "none" or any algorithm but the three, or
 * one the key (by its kid) does not verify; a "crit" header (no extension is understood); a key id
 * the set does not hold; a bad signature; another issuer; an audience ("aud", a string or a list)
 * without ours; no "exp", or one passed more than the skew ago; an "nbf" or "iat" further ahead
 * than the skew; no player claim, or one that is not a player id by the contract's rules
 * (core/ids.h). Pure: the caller gives the time, so tests move it at will.
 */
#ifndef RANKD_AUTH_JWT_VERIFY_H
#define RANKD_AUTH_JWT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwk.h"
#include "core/board.h"
#include "util/must_use.h"

#define JWT_TOKEN_MAX 8192   /* bytes of a token at most (the request head is 8 KiB) */
#define JWT_ISSUER_MAX 255
#define JWT_SUBJECT_MAX 255

typedef enum {
    JWT_OK = 0,
    JWT_MALFORMED,         /* not three base64url parts of JSON objects */
    JWT_ALG_REFUSED,       /* "none", an unknown algorithm, or a "crit" header */
    JWT_UNKNOWN_KEY,       /* no key of the set has its kid: the set may be stale (fetch again) */
    JWT_KEY_MISMATCH,      /* the key of that kid verifies another algorithm */
    JWT_BAD_SIGNATURE,
    JWT_WRONG_ISSUER,
    JWT_WRONG_AUDIENCE,
    JWT_EXPIRED,           /* exp passed (or missing) */
    JWT_NOT_YET_VALID,     /* nbf or iat ahead */
    JWT_NO_PLAYER,         /* the player claim is missing or not a string */
    JWT_BAD_PLAYER,        /* the player claim breaks the player-id rules */
} jwt_refusal_t;

/* What a trusted issuer's tokens must say (one auth.issuers item). */
typedef struct {
    const char *issuer;
    const char *audience;
    const char *player_claim; /* "sub" unless configured */
    int clock_skew_s;
} jwt_policy_t;

/* A verdict: no text of the token is in it but the claims named. */
typedef struct {
    jwt_refusal_t refusal;            /* JWT_OK when verified */
    const char *reason;               /* a static sentence for the 401's message; NULL when verified */
    char player[PLAYER_ID_MAX + 1];   /* the player claim */
    char issuer[JWT_ISSUER_MAX + 1];  /* "iss": verified when refusal is JWT_OK, else as the token claims it
                                       * ("" if none): which issuer a refused token said it came from */
    char subject[JWT_SUBJECT_MAX + 1]; /* "sub" ("" if none, or too long to keep) */
    int64_t issued_at;                /* "iat", seconds since the epoch; 0 when absent (a revocation then
                                       * spares none of the player's tokens) */
    int64_t expires_at;               /* "exp", seconds since the epoch */
    char kid[JWK_KID_MAX + 1];        /* the header's key id ("" if none): which key to fetch on JWT_UNKNOWN_KEY */
} jwt_result_t;

/* A token split and decoded, its signature not yet checked (jwt_parse). */
typedef struct jwt_parsed jwt_parsed_t;

/*
 * Split and decode `token` (len bytes). Returns the parts (the caller frees them with
 * jwt_parsed_free), or NULL with `res` saying why (JWT_MALFORMED, JWT_ALG_REFUSED). The parts
 * tell which issuer to ask for keys (jwt_parsed_issuer) before jwt_check.
 */
MUST_USE jwt_parsed_t *jwt_parse(const char *token, size_t len, jwt_result_t *res);
void jwt_parsed_free(jwt_parsed_t *p);
/* "iss" of the unverified claims, NULL when absent or not a string: only to pick the issuer. */
const char *jwt_parsed_issuer(const jwt_parsed_t *p);

/*
 * Verify `p` with `keys` under `policy` at `now_s` (seconds since the epoch). True when the token
 * holds; `res` gets the verdict either way.
 */
MUST_USE bool jwt_check(const jwt_parsed_t *p, const jwk_set_t *keys, const jwt_policy_t *policy, int64_t now_s,
                        jwt_result_t *res);

/* jwt_parse then jwt_check. */
MUST_USE bool jwt_verify(const char *token, size_t len, const jwk_set_t *keys, const jwt_policy_t *policy,
                         int64_t now_s, jwt_result_t *res);

/* A short name of a refusal ("expired", "wrong_audience"), for logs and metrics labels. */
const char *jwt_refusal_name(jwt_refusal_t r);

#endif
