/*
 * auth/jwt_verify.c — a compact JWS split, decoded (jansson) and verified (OpenSSL EVP), then its
 * claims held to the issuer's policy; auth/jwt_verify.h lists what is refused and why.
 */
#include "auth/jwt_verify.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "core/ids.h"
#include "util/alloc.h"

struct jwt_parsed {
    json_t *header;
    json_t *claims;
    const char *signing_input; /* header.payload, as sent: what the signature covers */
    size_t signing_len;
    unsigned char *sig;
    size_t sig_len;
    jws_alg_t alg;
    const char *kid; /* in header, or NULL */
};

const char *jwt_refusal_name(jwt_refusal_t r)
{
    static const char *const names[] = {
        [JWT_OK] = "ok",
        [JWT_MALFORMED] = "malformed",
        [JWT_ALG_REFUSED] = "alg_refused",
        [JWT_UNKNOWN_KEY] = "unknown_key",
        [JWT_KEY_MISMATCH] = "key_mismatch",
        [JWT_BAD_SIGNATURE] = "bad_signature",
        [JWT_WRONG_ISSUER] = "wrong_issuer",
        [JWT_WRONG_AUDIENCE] = "wrong_audience",
        [JWT_EXPIRED] = "expired",
        [JWT_NOT_YET_VALID] = "not_yet_valid",
        [JWT_NO_PLAYER] = "no_player",
        [JWT_BAD_PLAYER] = "bad_player",
    };
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : "unknown";
}

static bool refuse(jwt_result_t *res, jwt_refusal_t why, const char *reason)
{
    res->refusal = why;
    res->reason = reason;
    return false;
}

/* A base64url part decoded as a JSON object, or NULL. */
static json_t *decode_object(const char *s, size_t n)
{
    unsigned char *raw = xmalloc(n * 3 / 4 + 1);
    long len = jwk_b64url_decode(s, n, raw);
    json_t *obj = NULL;
    if (len > 0) {
        obj = json_loadb((const char *)raw, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
        if (obj != NULL && !json_is_object(obj)) {
            json_decref(obj);
            obj = NULL;
        }
    }
    free(raw);
    return obj;
}

void jwt_parsed_free(jwt_parsed_t *p)
{
    if (p == NULL)
        return;
    json_decref(p->header);
    json_decref(p->claims);
    free(p->sig);
    free(p);
}

jwt_parsed_t *jwt_parse(const char *token, size_t len, jwt_result_t *res)
{
    memset(res, 0, sizeof *res);
    if (len == 0 || len > JWT_TOKEN_MAX) {
        refuse(res, JWT_MALFORMED, "the token is empty or longer than 8192 bytes");
        return NULL;
    }
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    const char *end = token + len;
    if (dot1 == NULL || dot2 == NULL || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)) != NULL) {
        refuse(res, JWT_MALFORMED, "the token is not a JWT (three base64url parts separated by dots)");
        return NULL;
    }
    jwt_parsed_t *p = xcalloc(1, sizeof *p);
    p->header = decode_object(token, (size_t)(dot1 - token));
    if (p->header == NULL) {
        refuse(res, JWT_MALFORMED, "the token's header is not base64url of a JSON object");
        goto fail;
    }
    /* The claims before the header is judged: a refusal then still says which issuer the token
     * claims, so that its issuer's source answers for it (a 401 with the reason) and counts it. */
    p->claims = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (p->claims == NULL) {
        refuse(res, JWT_MALFORMED, "the token's claims are not base64url of a JSON object");
        goto fail;
    }
    const char *claimed = jwt_parsed_issuer(p);
    if (claimed != NULL && strlen(claimed) <= JWT_ISSUER_MAX)
        snprintf(res->issuer, sizeof res->issuer, "%s", claimed);
    const char *alg = json_string_value(json_object_get(p->header, "alg"));
    if (alg == NULL) {
        refuse(res, JWT_MALFORMED, "the token's header names no algorithm (alg)");
        goto fail;
    }
    p->alg = jws_alg_parse(alg);
    if (p->alg == JWS_ALG_UNKNOWN) {
        refuse(res, JWT_ALG_REFUSED,
               strcmp(alg, "none") == 0 || strcmp(alg, "None") == 0 || strcmp(alg, "NONE") == 0
                   ? "an unsigned token (alg none) is refused"
                   : "the token's algorithm is none of RS256, ES256 and EdDSA");
        goto fail;
    }
    if (json_object_get(p->header, "crit") != NULL) {
        refuse(res, JWT_ALG_REFUSED, "the token's header has critical extensions (crit), which rankd does not know");
        goto fail;
    }
    const json_t *kid = json_object_get(p->header, "kid");
    if (kid != NULL) {
        if (!json_is_string(kid) || json_string_length(kid) > JWK_KID_MAX ||
            strlen(json_string_value(kid)) != json_string_length(kid)) {
            refuse(res, JWT_MALFORMED, "the token's key id (kid) is not a string of at most 128 bytes");
            goto fail;
        }
        p->kid = json_string_value(kid);
        snprintf(res->kid, sizeof res->kid, "%s", p->kid);
    }
    size_t sig_chars = (size_t)(end - dot2 - 1);
    p->sig = xmalloc(sig_chars * 3 / 4 + 1);
    long sig_len = jwk_b64url_decode(dot2 + 1, sig_chars, p->sig);
    if (sig_len <= 0) {
        refuse(res, JWT_MALFORMED, "the token's signature is empty or not base64url");
        goto fail;
    }
    p->sig_len = (size_t)sig_len;
    p->signing_input = token;
    p->signing_len = (size_t)(dot2 - token);
    return p;
fail:
    jwt_parsed_free(p);
    return NULL;
}

/* The text of JSON string `v`, or NULL when it is no string or holds a NUL (which would make a
 * C comparison stop short: "game\u0000x" is not "game"). */
static const char *plain_string(const json_t *v)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return NULL;
    return json_string_value(v);
}

const char *jwt_parsed_issuer(const jwt_parsed_t *p)
{
    return plain_string(json_object_get(p->claims, "iss"));
}

/* JWS's ES256 signature is r || s, 32 bytes each; OpenSSL verifies DER. Returns the DER length
 * written into `der` (room for 80 bytes), 0 when the signature is not 64 bytes. */
static int es256_der(const unsigned char *sig, size_t len, unsigned char *der)
{
    if (len != 64)
        return 0;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    int n = 0;
    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* es owns them now */
        unsigned char *out = der;
        n = i2d_ECDSA_SIG(es, &out);
        if (n < 0)
            n = 0;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return n;
}

static bool signature_holds(const jwt_parsed_t *p, const jwk_key_t *key)
{
    unsigned char der[80];
    const unsigned char *sig = p->sig;
    size_t sig_len = p->sig_len;
    if (key->alg == JWS_ALG_ES256) {
        int n = es256_der(p->sig, p->sig_len, der);
        if (n == 0)
            return false;
        sig = der;
        sig_len = (size_t)n;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = false;
    if (md != NULL) {
        const EVP_MD *digest = key->alg == JWS_ALG_EDDSA ? NULL : EVP_sha256(); /* Ed25519 hashes itself */
        ok = EVP_DigestVerifyInit(md, NULL, digest, NULL, key->pkey) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)p->signing_input, p->signing_len) == 1;
    }
    EVP_MD_CTX_free(md);
    return ok;
}

/* A NumericDate claim: false when absent (*present false) or not a finite number. */
static bool numeric_date(const json_t *claims, const char *name, bool *present, int64_t *out)
{
    const json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (v == NULL)
        return true;
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    if (!isfinite(d) || d < -9.2e18 || d > 9.2e18)
        return false;
    *out = (int64_t)floor(d);
    return true;
}

static bool audience_holds(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return plain_string(aud) != NULL && strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return false;
    size_t i;
    const json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (plain_string(v) != NULL && strcmp(json_string_value(v), want) == 0)
            return true;
    }
    return false;
}

bool jwt_check(const jwt_parsed_t *p, const jwk_set_t *keys, const jwt_policy_t *policy, int64_t now_s,
               jwt_result_t *res)
{
    res->refusal = JWT_OK;
    res->reason = NULL;
    res->player[0] = res->subject[0] = '\0';
    res->issued_at = res->expires_at = 0;
    bool kid_known = false;
    const jwk_key_t *key = keys ? jwk_set_find(keys, p->kid, p->alg, &kid_known) : NULL;
    if (key == NULL) {
        if (kid_known && p->kid != NULL)
            return refuse(res, JWT_KEY_MISMATCH, "the token's algorithm is not the one its key (kid) verifies");
        return refuse(res, JWT_UNKNOWN_KEY,
                      p->kid ? "the token's key (kid) is none of its issuer's keys"
                             : "the token names no key (kid) and its issuer has not exactly one key for its algorithm");
    }
    if (!signature_holds(p, key))
        return refuse(res, JWT_BAD_SIGNATURE, "the token's signature does not verify");

    /* Signed: the claims are the issuer's own from here on. */
    const char *iss = jwt_parsed_issuer(p);
    if (iss == NULL || strcmp(iss, policy->issuer) != 0)
        return refuse(res, JWT_WRONG_ISSUER, "the token's issuer (iss) is not the trusted issuer of its key");
    snprintf(res->issuer, sizeof res->issuer, "%s", iss);
    const char *sub = plain_string(json_object_get(p->claims, "sub"));
    if (sub != NULL && strlen(sub) <= JWT_SUBJECT_MAX)
        snprintf(res->subject, sizeof res->subject, "%s", sub);
    if (!audience_holds(json_object_get(p->claims, "aud"), policy->audience))
        return refuse(res, JWT_WRONG_AUDIENCE, "the token's audience (aud) is not this issuer's configured audience");

    bool present;
    int64_t exp = 0, nbf = 0, iat = 0;
    int64_t skew = policy->clock_skew_s > 0 ? policy->clock_skew_s : 0;
    if (!numeric_date(p->claims, "exp", &present, &exp) || !present)
        return refuse(res, JWT_EXPIRED, "the token has no expiry (exp); rankd accepts only tokens that expire");
    res->expires_at = exp;
    if (now_s >= exp + skew)
        return refuse(res, JWT_EXPIRED, "the token has expired (exp)");
    if (!numeric_date(p->claims, "nbf", &present, &nbf))
        return refuse(res, JWT_MALFORMED, "the token's nbf is not a number");
    if (present && nbf > now_s + skew)
        return refuse(res, JWT_NOT_YET_VALID, "the token is not valid yet (nbf)");
    if (!numeric_date(p->claims, "iat", &present, &iat))
        return refuse(res, JWT_MALFORMED, "the token's iat is not a number");
    if (present && iat > now_s + skew)
        return refuse(res, JWT_NOT_YET_VALID, "the token was issued in the future (iat)");
    res->issued_at = present ? iat : 0;

    const json_t *pl = json_object_get(p->claims, policy->player_claim ? policy->player_claim : "sub");
    if (!json_is_string(pl))
        return refuse(res, JWT_NO_PLAYER, "the token lacks the claim that names its player (player_claim)");
    const char *player = json_string_value(pl);
    size_t plen = json_string_length(pl);
    if (!id_player_valid(player, plen))
        return refuse(res, JWT_BAD_PLAYER,
                      "the token's player claim is no player id: " ID_PLAYER_RULE);
    memcpy(res->player, player, plen);
    res->player[plen] = '\0';
    return true;
}

bool jwt_verify(const char *token, size_t len, const jwk_set_t *keys, const jwt_policy_t *policy, int64_t now_s,
                jwt_result_t *res)
{
    jwt_parsed_t *p = jwt_parse(token, len, res);
    if (p == NULL)
        return false;
    bool ok = jwt_check(p, keys, policy, now_s, res);
    jwt_parsed_free(p);
    return ok;
}
