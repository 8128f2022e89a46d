/*
 * tests/fuzz/fuzz_jwt.c — what a player token's issuer publishes and what a client presents, as
 * rankd parses them (auth/jwk.h, auth/jwt_verify.h). Input byte 0 even: the rest is a JWKS
 * document for jwk_set_parse; a set it returns has at least one key, each of a known algorithm.
 * Odd: the rest is a bearer token verified against a fixed set (an Ed25519 key, RFC 8037's): no
 * input may be accepted without that key's signature, so every verdict must be a refusal with
 * its reason, or a token whose player is a valid player id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwk.h"
#include "auth/jwt_verify.h"
#include "core/ids.h"

static const char jwks[] = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k1\","
                           "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    char why[256];
    if (data[0] % 2 == 0) {
        jwk_set_t *set = jwk_set_parse(text, n, why, sizeof why);
        if (set != NULL) {
            if (set->n == 0)
                abort();
            for (size_t i = 0; i < set->n; i++)
                if (set->keys[i].alg == JWS_ALG_UNKNOWN || set->keys[i].pkey == NULL)
                    abort();
            jwk_set_unref(set);
        }
        return 0;
    }
    jwk_set_t *set = jwk_set_parse(jwks, strlen(jwks), why, sizeof why);
    if (set == NULL)
        abort();
    jwt_policy_t policy = {.issuer = "https://idp.test/", .audience = "game", .player_claim = "sub", .clock_skew_s = 60};
    jwt_result_t res;
    bool ok = jwt_verify(text, n, set, &policy, 1800000000, &res);
    if (ok != (res.refusal == JWT_OK) || (!ok && res.reason == NULL))
        abort();
    if (ok && !id_player_valid(res.player, strlen(res.player)))
        abort();
    jwk_set_unref(set);
    return 0;
}
