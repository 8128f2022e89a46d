/*
 * tests/unit/test_jwt_verify.c — JWKs into keys and JWTs verified (auth/jwk.h, auth/jwt_verify.h):
 * keys made here with OpenSSL (RSA 2048, EC P-256, Ed25519), their JWKS written as a provider
 * publishes it, tokens signed here; every refusal of auth/jwt_verify.h by a token that has
 * exactly that fault.
 */
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

#include "auth/jwk.h"
#include "auth/jwt_verify.h"
#include "jwt_sign.h"

#define NOW 1800000000LL
#define ISS "https://idp.example.test/game"
#define AUD "game-42"

static EVP_PKEY *rsa_key, *ec_key, *ed_key, *rsa_other;

static json_t *claims(void)
{
    return json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", ISS, "aud", AUD, "sub", "player-7", "iat", (json_int_t)(NOW - 10),
                     "exp", (json_int_t)(NOW + 3600));
}

/* A key set of the given JWKs (stolen). */
static jwk_set_t *set_of(json_t *a, json_t *b, json_t *c)
{
    json_t *doc = json_pack("{s:[]}", "keys");
    json_t *keys = json_object_get(doc, "keys");
    if (a)
        json_array_append_new(keys, a);
    if (b)
        json_array_append_new(keys, b);
    if (c)
        json_array_append_new(keys, c);
    char *text = json_dumps(doc, JSON_COMPACT);
    char why[256];
    jwk_set_t *set = jwk_set_parse(text, strlen(text), why, sizeof why);
    if (set == NULL)
        fail_msg("jwk_set_parse: %s", why);
    free(text);
    json_decref(doc);
    return set;
}

static jwk_set_t *standard_set(void)
{
    return set_of(jwk_of(rsa_key, "r1"), jwk_of(ec_key, "e1"), jwk_of(ed_key, "d1"));
}


static const jwt_policy_t policy = {.issuer = ISS, .audience = AUD, .player_claim = "sub", .clock_skew_s = 60};

static jwt_result_t check(const jwk_set_t *set, const char *token, const jwt_policy_t *pol, int64_t now)
{
    jwt_result_t res;
    bool ok = jwt_verify(token, strlen(token), set, pol ? pol : &policy, now, &res);
    assert_int_equal(ok, res.refusal == JWT_OK);
    if (!ok)
        assert_non_null(res.reason);
    return res;
}

static void refused(const jwk_set_t *set, char *token, jwt_refusal_t want)
{
    jwt_result_t res = check(set, token, NULL, NOW);
    if (res.refusal != want)
        fail_msg("want %s, got %s (%s)", jwt_refusal_name(want), jwt_refusal_name(res.refusal),
                 res.reason ? res.reason : "");
    assert_null(strstr(res.reason, token)); /* no token text in the reason */
    free(token);
}

static int setup(void **state)
{
    (void)state;
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return rsa_key && rsa_other && ec_key && ed_key ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key), EVP_PKEY_free(rsa_other), EVP_PKEY_free(ec_key), EVP_PKEY_free(ed_key);
    return 0;
}

static void test_each_algorithm_verifies(void **state)
{
    (void)state;
    jwk_set_t *set = standard_set();
    assert_int_equal(set->n, 3);
    struct { EVP_PKEY *k; const char *alg, *kid; } cases[] = {
        {rsa_key, "RS256", "r1"}, {ec_key, "ES256", "e1"}, {ed_key, "EdDSA", "d1"}};
    for (size_t i = 0; i < 3; i++) {
        char *t = sign(cases[i].k, cases[i].alg, cases[i].kid, claims());
        jwt_result_t res = check(set, t, NULL, NOW);
        if (res.refusal != JWT_OK)
            fail_msg("%s: %s", cases[i].alg, res.reason);
        assert_string_equal(res.player, "player-7");
        assert_string_equal(res.subject, "player-7");
        assert_string_equal(res.issuer, ISS);
        assert_int_equal(res.expires_at, NOW + 3600);
        assert_int_equal(res.issued_at, NOW - 10);
        assert_string_equal(res.kid, cases[i].kid);
        free(t);
    }
    jwk_set_unref(set);
}

static void test_alg_none_and_unknown_algorithms_are_refused(void **state)
{
    (void)state;
    jwk_set_t *set = standard_set();
    refused(set, sign(NULL, "none", "r1", claims()), JWT_ALG_REFUSED);
    refused(set, sign(NULL, "HS256", "r1", claims()), JWT_ALG_REFUSED);
    refused(set, sign(rsa_key, "RS512", "r1", claims()), JWT_ALG_REFUSED);
    /* An ES256 token presented under the RSA key's kid: the key decides the algorithm. */
    refused(set, sign(ec_key, "ES256", "r1", claims()), JWT_KEY_MISMATCH);
    /* An RSA signature relabelled EdDSA and pointed at the Ed25519 key. */
    refused(set, sign(rsa_key, "EdDSA", "d1", claims()), JWT_BAD_SIGNATURE);
    jwt_result_t res;
    const char *crit = "eyJhbGciOiJSUzI1NiIsImNyaXQiOlsiYjY0Il0sImI2NCI6ZmFsc2V9.e30.c2ln";
    assert_false(jwt_verify(crit, strlen(crit), set, &policy, NOW, &res));
    assert_int_equal(res.refusal, JWT_ALG_REFUSED);
    jwk_set_unref(set);
}

static void test_signatures_that_do_not_hold_are_refused(void **state)
{
    (void)state;
    jwk_set_t *set = standard_set();
    const char *algs[] = {"RS256", "ES256", "EdDSA"}, *kids[] = {"r1", "e1", "d1"};
    EVP_PKEY *keys[] = {rsa_key, ec_key, ed_key};
    for (int i = 0; i < 3; i++) {
        /* tampered claims: the signature covers the original */
        char *t = sign(keys[i], algs[i], kids[i], claims());
        char *other = sign(keys[i], algs[i], kids[i], json_pack("{s:s,s:s,s:s,s:I}", "iss", ISS, "aud", AUD, "sub",
                                                                "admin", "exp", (json_int_t)(NOW + 99999)));
        char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
        char *o1 = strchr(other, '.'), *o2 = strchr(o1 + 1, '.');
        char *forged = malloc(strlen(t) + strlen(other));
        sprintf(forged, "%.*s%.*s%s", (int)(d1 - t), t, (int)(o2 - o1), o1, d2);
        refused(set, forged, JWT_BAD_SIGNATURE);
        /* a flipped signature bit */
        size_t last = strlen(t) - 3;
        t[last] = t[last] == 'A' ? 'B' : 'A';
        refused(set, t, JWT_BAD_SIGNATURE);
        free(other);
    }
    /* signed by another RSA key under the known kid */
    refused(set, sign(rsa_other, "RS256", "r1", claims()), JWT_BAD_SIGNATURE);
    jwk_set_unref(set);
}

static void test_unknown_kid_is_its_own_refusal(void **state)
{
    (void)state;
    jwk_set_t *set = standard_set();
    char *t = sign(rsa_other, "RS256", "r2", claims());
    jwt_result_t res = check(set, t, NULL, NOW);
    assert_int_equal(res.refusal, JWT_UNKNOWN_KEY);
    assert_string_equal(res.kid, "r2"); /* what the fetcher looks for next */
    free(t);
    jwk_set_unref(set);
    /* After a rotation that brings r2, the same token holds. */
    set = set_of(jwk_of(rsa_key, "r1"), jwk_of(rsa_other, "r2"), NULL);
    t = sign(rsa_other, "RS256", "r2", claims());
    assert_int_equal(check(set, t, NULL, NOW).refusal, JWT_OK);
    free(t);
    /* No kid: verified only while one key of the algorithm is there. */
    t = sign(rsa_key, "RS256", NULL, claims());
    assert_int_equal(check(set, t, NULL, NOW).refusal, JWT_UNKNOWN_KEY);
    jwk_set_t *one = set_of(jwk_of(rsa_key, NULL), jwk_of(ec_key, "e1"), NULL);
    assert_int_equal(check(one, t, NULL, NOW).refusal, JWT_OK);
    free(t);
    jwk_set_unref(one);
    jwk_set_unref(set);
}

static void test_issuer_and_audience(void **state)
{
    (void)state;
    jwk_set_t *set = standard_set();
    json_t *c = claims();
    json_object_set_new(c, "iss", json_string("https://evil.example.test/game"));
    refused(set, sign(ec_key, "ES256", "e1", c), JWT_WRONG_ISSUER);
    c = claims();
    json_object_del(c, "iss");
    refused(set, sign(ec_key, "ES256", "e1", c), JWT_WRONG_ISSUER);
    c = claims();
    json_object_set_new(c, "aud", json_string("another-game"));
    refused(set, sign(ec_key, "ES256", "e1", c), JWT_WRONG_AUDIENCE);
    c = claims();
    json_object_del(c, "aud");
    refused(set, sign(ec_key, "ES256", "e1", c), JWT_WRONG_AUDIENCE);
    c = claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", "x", "y"));
    refused(set, sign(ec_key, "ES256", "e1", c), JWT_WRONG_AUDIENCE);
    c = claims();
    /* Ours, then a NUL and more: no C comparison stops short at the NUL (jansson refuses \u0000). */
    json_object_set_new(c, "aud", json_stringn(AUD "\0x", strlen(AUD) + 2));
    refused(set, sign(ec_key, "ES256", "e1", c), JWT_MALFORMED);
    c = claims();
    json_object_set_new(c, "iss", json_stringn(ISS "\0x", strlen(ISS) + 2));
    refused(set, sign(ec_key, "ES256", "e1", c), JWT_MALFORMED);
    c = claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", "x", AUD)); /* a list holding ours */
    char *t = sign(ec_key, "ES256", "e1", c);
    assert_int_equal(check(set, t, NULL, NOW).refusal, JWT_OK);
    free(t);
    jwk_set_unref(set);
}

static void test_times_with_the_stated_skew(void **state)
{
    (void)state;
    jwk_set_t *set = standard_set();
    char *t = sign(ed_key, "EdDSA", "d1", claims()); /* exp NOW+3600, iat NOW-10 */
    assert_int_equal(check(set, t, NULL, NOW + 3600 + 59).refusal, JWT_OK); /* within the 60 s skew */
    assert_int_equal(check(set, t, NULL, NOW + 3600 + 60).refusal, JWT_EXPIRED);
    jwt_policy_t strict = policy;
    strict.clock_skew_s = 0;
    assert_int_equal(check(set, t, &strict, NOW + 3599).refusal, JWT_OK);
    assert_int_equal(check(set, t, &strict, NOW + 3600).refusal, JWT_EXPIRED);
    /* iat ahead of us */
    assert_int_equal(check(set, t, NULL, NOW - 10 - 60).refusal, JWT_OK);
    assert_int_equal(check(set, t, NULL, NOW - 10 - 61).refusal, JWT_NOT_YET_VALID);
    free(t);
    json_t *c = claims();
    json_object_set_new(c, "nbf", json_integer(NOW + 120));
    t = sign(ed_key, "EdDSA", "d1", c);
    assert_int_equal(check(set, t, NULL, NOW).refusal, JWT_NOT_YET_VALID);
    assert_int_equal(check(set, t, NULL, NOW + 60).refusal, JWT_OK);
    free(t);
    c = claims();
    json_object_del(c, "exp");
    refused(set, sign(ed_key, "EdDSA", "d1", c), JWT_EXPIRED); /* a token that never expires */
    c = claims();
    json_object_set_new(c, "exp", json_string("tomorrow"));
    refused(set, sign(ed_key, "EdDSA", "d1", c), JWT_EXPIRED);
    c = claims();
    json_object_set_new(c, "exp", json_real((double)NOW + 100.5)); /* fractional NumericDate */
    t = sign(ed_key, "EdDSA", "d1", c);
    assert_int_equal(check(set, t, NULL, NOW).refusal, JWT_OK);
    free(t);
    jwk_set_unref(set);
}

static void test_player_claim(void **state)
{
    (void)state;
    jwk_set_t *set = standard_set();
    json_t *c = claims();
    json_object_del(c, "sub");
    refused(set, sign(rsa_key, "RS256", "r1", c), JWT_NO_PLAYER);
    c = claims();
    json_object_set_new(c, "sub", json_integer(7));
    refused(set, sign(rsa_key, "RS256", "r1", c), JWT_NO_PLAYER);
    const char *bad[] = {"auth0|abc", "...", "with space", "", "é",
                         "x123456789012345678901234567890123456789012345678901234567890abcd"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = claims();
        json_object_set_new(c, "sub", json_string(bad[i]));
        refused(set, sign(rsa_key, "RS256", "r1", c), JWT_BAD_PLAYER);
    }
    /* Another claim names the player when configured. */
    c = claims();
    json_object_set_new(c, "sub", json_string("auth0|abc"));
    json_object_set_new(c, "player_id", json_string("p:42"));
    char *t = sign(rsa_key, "RS256", "r1", c);
    jwt_policy_t pol = policy;
    pol.player_claim = "player_id";
    jwt_result_t res = check(set, t, &pol, NOW);
    assert_int_equal(res.refusal, JWT_OK);
    assert_string_equal(res.player, "p:42");
    assert_string_equal(res.subject, "auth0|abc");
    free(t);
    jwk_set_unref(set);
}

static void test_malformed_tokens(void **state)
{
    (void)state;
    jwk_set_t *set = standard_set();
    const char *bad[] = {"", "abc", "a.b", "a.b.c.d", "!!!.e30.c2ln", "e30.e30.c2ln", /* no alg */
                         "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",                    /* claims not JSON */
                         "eyJhbGciOiJSUzI1NiJ9.WzFd.c2ln",                           /* claims a list */
                         "eyJhbGciOiJSUzI1NiJ9.e30.",                                /* no signature */
                         "eyJhbGciOiJSUzI1NiJ9=.e30.c2ln",                           /* padding */
                         "eyJhbGciOiJSUzI1NiJ9.e30.c2l"};                            /* non-canonical tail */
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        jwt_result_t res;
        assert_false(jwt_verify(bad[i], strlen(bad[i]), set, &policy, NOW, &res));
        if (res.refusal != JWT_MALFORMED)
            fail_msg("%s: %s", bad[i], jwt_refusal_name(res.refusal));
    }
    jwk_set_unref(set);
}

static void test_jwks_documents(void **state)
{
    (void)state;
    char why[256];
    assert_null(jwk_set_parse("nope", 4, why, sizeof why));
    assert_non_null(strstr(why, "not a JSON document"));
    assert_null(jwk_set_parse("{}", 2, why, sizeof why));
    assert_non_null(strstr(why, "no \"keys\" list"));
    /* Only keys rankd cannot use: an encryption key, a P-384 key, an RSA key of 1024 bits, HMAC. */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    json_t *enc = jwk_of(rsa_key, "enc");
    json_object_set_new(enc, "use", json_string("enc"));
    json_t *ec384 = json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-384", "x", "AAAA", "y", "AAAA");
    json_t *doc = json_pack("{s:[o,o,o,{s:s,s:s}]}", "keys", enc, ec384, jwk_of(small, "small"), "kty", "oct", "k",
                            "c2VjcmV0");
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_null(jwk_set_parse(text, strlen(text), why, sizeof why));
    assert_non_null(strstr(why, "no usable key among its 4"));
    free(text);
    /* With one usable key besides: kept, the rest counted as skipped. */
    json_array_append_new(json_object_get(doc, "keys"), jwk_of(ec_key, "e1"));
    /* An EC point off the curve is skipped too. */
    json_t *off = jwk_of(ec_key, "off");
    json_object_set_new(off, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    json_array_append_new(json_object_get(doc, "keys"), off);
    /* A key whose alg names another algorithm than its type's. */
    json_t *lying = jwk_of(ed_key, "lying");
    json_object_set_new(lying, "alg", json_string("RS256"));
    json_array_append_new(json_object_get(doc, "keys"), lying);
    text = json_dumps(doc, JSON_COMPACT);
    jwk_set_t *set = jwk_set_parse(text, strlen(text), why, sizeof why);
    assert_non_null(set);
    assert_int_equal(set->n, 1);
    assert_int_equal(set->skipped, 6);
    assert_string_equal(set->keys[0].kid, "e1");
    assert_int_equal(set->keys[0].alg, JWS_ALG_ES256);
    jwk_set_t *again = jwk_set_ref(set);
    jwk_set_unref(set);
    jwk_set_unref(again);
    free(text);
    json_decref(doc);
    EVP_PKEY_free(small);
    EVP_PKEY_free(p384);
}

static void test_base64url_is_strict(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(jwk_b64url_decode("aGk", 3, out), 2);
    assert_memory_equal(out, "hi", 2);
    assert_int_equal(jwk_b64url_decode("-_8", 3, out), 2);
    assert_int_equal(jwk_b64url_decode("aGk=", 4, out), -1);
    assert_int_equal(jwk_b64url_decode("aGl", 3, out), -1); /* non-zero unused bits */
    assert_int_equal(jwk_b64url_decode("a", 1, out), -1);
    assert_int_equal(jwk_b64url_decode("a+/b", 4, out), -1);
    assert_int_equal(jwk_b64url_decode("", 0, out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_algorithm_verifies),
        cmocka_unit_test(test_alg_none_and_unknown_algorithms_are_refused),
        cmocka_unit_test(test_signatures_that_do_not_hold_are_refused),
        cmocka_unit_test(test_unknown_kid_is_its_own_refusal),
        cmocka_unit_test(test_issuer_and_audience),
        cmocka_unit_test(test_times_with_the_stated_skew),
        cmocka_unit_test(test_player_claim),
        cmocka_unit_test(test_malformed_tokens),
        cmocka_unit_test(test_jwks_documents),
        cmocka_unit_test(test_base64url_is_strict),
    };
    return cmocka_run_group_tests_name("jwt_verify", tests, setup, teardown);
}
