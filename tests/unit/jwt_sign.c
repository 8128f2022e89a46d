/* tests/unit/jwt_sign.c — what a test identity provider does: public JWKs of OpenSSL keys, and
 * compact JWS tokens signed with them (RS256, ES256, EdDSA), for the verifier's and fetcher's tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "jwt_sign.h"

void jwt_test_b64url(const unsigned char *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = al[v >> 18], out[o++] = al[(v >> 12) & 63], out[o++] = al[(v >> 6) & 63], out[o++] = al[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = al[v >> 18], out[o++] = al[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = al[v >> 18], out[o++] = al[(v >> 12) & 63], out[o++] = al[(v >> 6) & 63];
    }
    out[o] = '\0';
}

static char *b64_str(const char *s)
{
    char *out = malloc(strlen(s) * 4 / 3 + 4);
    jwt_test_b64url((const unsigned char *)s, strlen(s), out);
    return out;
}

static json_t *bn_member(EVP_PKEY *k, const char *param)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    unsigned char raw[600];
    int n = BN_bn2bin(bn, raw);
    /* EC coordinates are fixed-width (32 bytes) in a JWK */
    unsigned char padded[600];
    int width = strcmp(param, OSSL_PKEY_PARAM_EC_PUB_X) == 0 || strcmp(param, OSSL_PKEY_PARAM_EC_PUB_Y) == 0 ? 32 : n;
    memset(padded, 0, sizeof padded);
    memcpy(padded + (width - n), raw, (size_t)n);
    char text[900];
    jwt_test_b64url(padded, (size_t)width, text);
    BN_free(bn);
    return json_string(text);
}

/* The public JWK of `k` with key id `kid` (NULL: none). */
json_t *jwk_of(EVP_PKEY *k, const char *kid)
{
    json_t *j = json_object();
    if (EVP_PKEY_is_a(k, "RSA")) {
        json_object_set_new(j, "kty", json_string("RSA"));
        json_object_set_new(j, "n", bn_member(k, OSSL_PKEY_PARAM_RSA_N));
        json_object_set_new(j, "e", bn_member(k, OSSL_PKEY_PARAM_RSA_E));
    } else if (EVP_PKEY_is_a(k, "EC")) {
        json_object_set_new(j, "kty", json_string("EC"));
        json_object_set_new(j, "crv", json_string("P-256"));
        json_object_set_new(j, "x", bn_member(k, OSSL_PKEY_PARAM_EC_PUB_X));
        json_object_set_new(j, "y", bn_member(k, OSSL_PKEY_PARAM_EC_PUB_Y));
    } else {
        unsigned char raw[32];
        size_t n = sizeof raw;
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &n), 1);
        char text[64];
        jwt_test_b64url(raw, n, text);
        json_object_set_new(j, "kty", json_string("OKP"));
        json_object_set_new(j, "crv", json_string("Ed25519"));
        json_object_set_new(j, "x", json_string(text));
    }
    json_object_set_new(j, "use", json_string("sig"));
    if (kid)
        json_object_set_new(j, "kid", json_string(kid));
    return j;
}

/* A compact JWS of `claims` signed by `k` under header alg `alg` and kid `kid` (caller frees). */
char *sign(EVP_PKEY *k, const char *alg, const char *kid, json_t *claims)
{
    json_t *hdr = json_pack("{s:s,s:s}", "alg", alg, "typ", "JWT");
    if (kid)
        json_object_set_new(hdr, "kid", json_string(kid));
    char *h = json_dumps(hdr, JSON_COMPACT), *c = json_dumps(claims, JSON_COMPACT);
    char *hb = b64_str(h), *cb = b64_str(c);
    size_t in_len = strlen(hb) + 1 + strlen(cb);
    char *out = malloc(in_len + 1200);
    sprintf(out, "%s.%s", hb, cb);
    unsigned char sig[600];
    size_t sig_len = sizeof sig;
    if (k != NULL) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        const EVP_MD *d = EVP_PKEY_is_a(k, "ED25519") ? NULL : EVP_sha256();
        assert_int_equal(EVP_DigestSignInit(md, NULL, d, NULL, k), 1);
        assert_int_equal(EVP_DigestSign(md, sig, &sig_len, (unsigned char *)out, in_len), 1);
        EVP_MD_CTX_free(md);
        if (EVP_PKEY_is_a(k, "EC")) { /* DER into r || s */
            const unsigned char *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
            const BIGNUM *r, *s;
            ECDSA_SIG_get0(es, &r, &s);
            memset(sig, 0, 64);
            BN_bn2binpad(r, sig, 32);
            BN_bn2binpad(s, sig + 32, 32);
            sig_len = 64;
            ECDSA_SIG_free(es);
        }
        out[in_len] = '.';
        jwt_test_b64url(sig, sig_len, out + in_len + 1);
    } else {
        strcpy(out + in_len, ".");
    }
    free(h), free(c), free(hb), free(cb);
    json_decref(hdr);
    json_decref(claims);
    return out;
}

