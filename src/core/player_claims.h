/*
 * core/player_claims.h — what a verified player token says, and the shape of a token source.
 *
 * A player token is a bearer token (a JWT) that stands for one player. Its sources are plugged
 * in one after the other (api/player_auth.c): rankd's own minted tokens (core/player_token.h),
 * and the JWTs of identity providers an operator trusts (auth.issuers). Each source is a
 * function that, given a bearer string, says that it is not its kind of token, that it is a
 * valid token of player P (issuer I, subject S, boards B, expiring at T), or that it is invalid
 * and why. Pure types: no I/O.
 */
#ifndef RANKD_CORE_PLAYER_CLAIMS_H
#define RANKD_CORE_PLAYER_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/board.h"

#define PLAYER_CLAIMS_ISSUER_MAX 255  /* bytes of an issuer (iss) kept */
#define PLAYER_CLAIMS_SUBJECT_MAX 255 /* bytes of a subject (sub) kept */
#define PLAYER_CLAIMS_BOARDS_MAX 16   /* boards a token may be limited to */
#define PLAYER_TOKEN_TEXT_MAX 4096    /* bytes of a bearer token any source looks at */

typedef struct {
    char player[PLAYER_ID_MAX + 1];             /* the player it stands for (the contract's id rules) */
    char issuer[PLAYER_CLAIMS_ISSUER_MAX + 1];  /* "rankd" for minted tokens */
    char subject[PLAYER_CLAIMS_SUBJECT_MAX + 1];
    int64_t iat_ms;                             /* issued at; 0: not said (then no revocation spares it) */
    int64_t exp_ms;                             /* expires at */
    size_t n_boards;                            /* 0: every board */
    char boards[PLAYER_CLAIMS_BOARDS_MAX][BOARD_ID_MAX + 1];
} player_claims_t;

typedef enum {
    TOKEN_NOT_MINE = 0, /* not this source's kind of token: the next source may take it */
    TOKEN_VALID = 1,    /* *out filled */
    TOKEN_INVALID = 2,  /* this source's, and refused: `why` says why (no secret, no token in it) */
} token_verdict_t;

/*
 * A token source: judge `token` (`len` bytes, not NUL-terminated necessarily) at `now_ms` (the
 * wall clock, util/clock.h's clock_wall_ms), with `ctx` the source's own state. On TOKEN_VALID
 * *out is filled; on TOKEN_INVALID a short reason goes into why (why_len bytes). Called on an
 * event loop: it must not wait on I/O (a source that fetches keys does so elsewhere and
 * answers TOKEN_INVALID, "keys not loaded", meanwhile). Revocations are not its business: the
 * caller checks them for every source.
 */
typedef token_verdict_t (*token_source_fn)(void *ctx, const char *token, size_t len, int64_t now_ms,
                                           player_claims_t *out, char *why, size_t why_len);

/* True when the claims let their player write to `board` (no list, or the board in it). */
bool player_claims_allow_board(const player_claims_t *c, const char *board);

#endif
