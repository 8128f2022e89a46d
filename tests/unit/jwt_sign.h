/* tests/unit/jwt_sign.h — test keys' JWKs and tokens signed with them (jwt_sign.c). */
#ifndef RANKD_TESTS_JWT_SIGN_H
#define RANKD_TESTS_JWT_SIGN_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

/* base64url without padding of `in` (n bytes) into `out` (room for n * 4 / 3 + 4). */
void jwt_test_b64url(const unsigned char *in, size_t n, char *out);
/* The public JWK of `k` (RSA, EC P-256 or Ed25519) with key id `kid` (NULL: none); a new reference. */
json_t *jwk_of(EVP_PKEY *k, const char *kid);
/* A compact JWS of `claims` (stolen) signed by `k` (NULL: an empty signature) under header
 * alg `alg` and kid `kid` (NULL: none); the caller frees it. */
char *sign(EVP_PKEY *k, const char *alg, const char *kid, json_t *claims);

#endif
