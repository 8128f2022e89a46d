/* worker/jwks_source.c — issuer JWTs as a player-token source (see jwks_source.h). */
#include "worker/jwks_source.h"

#include <stdio.h>
#include <string.h>

#include "worker/jwks_fetcher.h"

token_verdict_t jwks_token_source(void *ctx, const char *token, size_t len, int64_t now_ms, player_claims_t *out,
                                  char *why, size_t why_len)
{
    jwt_result_t r;
    switch (jwks_verify(ctx, token, len, now_ms / 1000, &r)) {
    case JWKS_NOT_MINE:
        return TOKEN_NOT_MINE;
    case JWKS_INVALID:
        snprintf(why, why_len, "%s", r.reason ? r.reason : "refused");
        return TOKEN_INVALID;
    case JWKS_VALID:
        break;
    }
    memset(out, 0, sizeof *out);
    snprintf(out->player, sizeof out->player, "%s", r.player);
    snprintf(out->issuer, sizeof out->issuer, "%s", r.issuer);
    snprintf(out->subject, sizeof out->subject, "%s", r.subject);
    out->iat_ms = r.issued_at * 1000;
    out->exp_ms = r.expires_at * 1000;
    out->n_boards = 0; /* an issuer's token may write to every client_writes board */
    return TOKEN_VALID;
}
