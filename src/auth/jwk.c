/*
 * auth/jwk.c — JWKS documents into OpenSSL public keys (auth/jwk.h says which keys are kept).
 * Pure: no I/O, no global state; OpenSSL's EVP_PKEY_fromdata builds RSA and EC keys, the raw
 * public key call builds Ed25519 ones.
 */
#include "auth/jwk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "util/alloc.h"

jws_alg_t jws_alg_parse(const char *name)
{
    if (name == NULL)
        return JWS_ALG_UNKNOWN;
    if (strcmp(name, "RS256") == 0)
        return JWS_ALG_RS256;
    if (strcmp(name, "ES256") == 0)
        return JWS_ALG_ES256;
    if (strcmp(name, "EdDSA") == 0)
        return JWS_ALG_EDDSA;
    return JWS_ALG_UNKNOWN;
}

const char *jws_alg_name(jws_alg_t alg)
{
    switch (alg) {
    case JWS_ALG_RS256:
        return "RS256";
    case JWS_ALG_ES256:
        return "ES256";
    case JWS_ALG_EDDSA:
        return "EdDSA";
    default:
        return "unknown";
    }
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long jwk_b64url_decode(const char *in, size_t n, unsigned char *out)
{
    if (n % 4 == 1)
        return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* the unused low bits of the last character must be zero: one text per value */
        return -1;
    return (long)o;
}

/* The base64url member `name` of `jwk` decoded into a malloc'd buffer (*len bytes), or NULL. */
static unsigned char *b64_member(const json_t *jwk, const char *name, size_t *len)
{
    const json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v))
        return NULL;
    size_t n = json_string_length(v);
    if (n == 0 || n > 8192)
        return NULL;
    unsigned char *out = xmalloc(n * 3 / 4 + 1);
    long got = jwk_b64url_decode(json_string_value(v), n, out);
    if (got <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)got;
    return out;
}

static bool member_is(const json_t *jwk, const char *name, const char *want)
{
    const char *v = json_string_value(json_object_get(jwk, name));
    return v != NULL && strcmp(v, want) == 0;
}

/* A key from OSSL parameters: `type` "RSA" or "EC". NULL when OpenSSL refuses them. */
static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx != NULL && EVP_PKEY_fromdata_init(ctx) == 1 &&
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static EVP_PKEY *rsa_key(const json_t *jwk)
{
    size_t n_len = 0, e_len = 0;
    unsigned char *n = b64_member(jwk, "n", &n_len), *e = b64_member(jwk, "e", &e_len);
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    if (n == NULL || e == NULL || e_len > 8)
        goto out;
    bn_n = BN_bin2bn(n, (int)n_len, NULL);
    bn_e = BN_bin2bn(e, (int)e_len, NULL);
    if (bn_n == NULL || bn_e == NULL || BN_num_bits(bn_n) < JWK_RSA_MIN_BITS || BN_num_bits(bn_n) > 8192 ||
        !BN_is_odd(bn_e) || BN_is_one(bn_e))
        goto out;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
        goto out;
    pkey = pkey_from_params("RSA", params);
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return pkey;
}

/* Whether OpenSSL finds `pkey`'s public key valid (for EC: the point on the curve). */
static bool public_key_checks(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    bool ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static EVP_PKEY *ec_p256_key(const json_t *jwk)
{
    size_t x_len = 0, y_len = 0;
    unsigned char *x = b64_member(jwk, "x", &x_len), *y = b64_member(jwk, "y", &y_len);
    EVP_PKEY *pkey = NULL;
    if (x != NULL && y != NULL && x_len == 32 && y_len == 32) {
        unsigned char point[65];
        point[0] = 0x04; /* uncompressed: x then y */
        memcpy(point + 1, x, 32);
        memcpy(point + 33, y, 32);
        char group[] = "prime256v1";
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
            OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
            OSSL_PARAM_construct_end(),
        };
        pkey = pkey_from_params("EC", params);
        if (pkey != NULL && !public_key_checks(pkey)) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    free(x);
    free(y);
    return pkey;
}

static EVP_PKEY *ed25519_key(const json_t *jwk)
{
    size_t x_len = 0;
    unsigned char *x = b64_member(jwk, "x", &x_len);
    EVP_PKEY *pkey = NULL;
    if (x != NULL && x_len == 32)
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, x_len);
    free(x);
    return pkey;
}

/* One JWK into `out`; false when it is not a key kept (auth/jwk.h). */
static bool parse_key(const json_t *jwk, jwk_key_t *out)
{
    if (!json_is_object(jwk))
        return false;
    const json_t *use = json_object_get(jwk, "use");
    if (use != NULL && !member_is(jwk, "use", "sig"))
        return false;
    const json_t *kid = json_object_get(jwk, "kid");
    if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) > JWK_KID_MAX ||
                        strlen(json_string_value(kid)) != json_string_length(kid)))
        return false;
    jws_alg_t alg;
    if (member_is(jwk, "kty", "RSA")) {
        alg = JWS_ALG_RS256;
    } else if (member_is(jwk, "kty", "EC") && member_is(jwk, "crv", "P-256")) {
        alg = JWS_ALG_ES256;
    } else if (member_is(jwk, "kty", "OKP") && member_is(jwk, "crv", "Ed25519")) {
        alg = JWS_ALG_EDDSA;
    } else {
        return false;
    }
    /* A key that names its algorithm verifies that one only (RFC 7517 §4.4). */
    const json_t *named = json_object_get(jwk, "alg");
    if (named != NULL && jws_alg_parse(json_string_value(named)) != alg)
        return false;
    EVP_PKEY *pkey = alg == JWS_ALG_RS256 ? rsa_key(jwk) : alg == JWS_ALG_ES256 ? ec_p256_key(jwk) : ed25519_key(jwk);
    if (pkey == NULL)
        return false;
    snprintf(out->kid, sizeof out->kid, "%s", kid ? json_string_value(kid) : "");
    out->alg = alg;
    out->pkey = pkey;
    return true;
}

jwk_set_t *jwk_set_parse(const char *text, size_t len, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        snprintf(why, whylen, "not a JSON document (%s, at byte %d)", jerr.text, jerr.position);
        return NULL;
    }
    const json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys)) {
        snprintf(why, whylen, "not a JWKS document: it has no \"keys\" list");
        json_decref(doc);
        return NULL;
    }
    jwk_set_t *set = xcalloc(1, sizeof *set);
    atomic_init(&set->refs, 1);
    size_t i;
    const json_t *jwk;
    json_array_foreach(keys, i, jwk)
    {
        if (set->n < JWK_SET_KEYS_MAX && parse_key(jwk, &set->keys[set->n]))
            set->n++;
        else
            set->skipped++;
    }
    json_decref(doc);
    if (set->n == 0) {
        snprintf(why, whylen,
                 "no usable key among its %zu: rankd verifies RSA (2048 bits at least, RS256), EC P-256 (ES256) "
                 "and OKP Ed25519 (EdDSA) signing keys",
                 set->skipped);
        jwk_set_unref(set);
        return NULL;
    }
    return set;
}

jwk_set_t *jwk_set_ref(jwk_set_t *set)
{
    atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
    return set;
}

void jwk_set_unref(jwk_set_t *set)
{
    if (set == NULL || atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < set->n; i++)
        EVP_PKEY_free(set->keys[i].pkey);
    free(set);
}

const jwk_key_t *jwk_set_find(const jwk_set_t *set, const char *kid, jws_alg_t alg, bool *kid_known)
{
    const jwk_key_t *found = NULL;
    size_t for_alg = 0;
    bool known = false;
    for (size_t i = 0; i < set->n; i++) {
        const jwk_key_t *k = &set->keys[i];
        if (kid != NULL) {
            if (strcmp(k->kid, kid) != 0)
                continue;
            known = true;
            if (k->alg == alg)
                found = k;
        } else if (k->alg == alg) {
            found = k;
            for_alg++;
        }
    }
    if (kid_known != NULL)
        *kid_known = kid == NULL || known;
    if (kid == NULL && for_alg != 1)
        return NULL; /* no kid: only a single candidate is unambiguous */
    return found;
}
