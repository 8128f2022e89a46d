/*
 * auth/jwk.h — JSON Web Keys (RFC 7517) as OpenSSL public keys: an identity provider's key set
 * (its JWKS document), parsed once and then shared, read-only and refcounted, by every thread
 * that verifies a token against it.
 *
 * Why OpenSSL 3's EVP with jansson, not a JOSE library: Debian 12's libjwt (1.10) and libcjose
 * (0.6) verify no EdDSA (Ed25519) signature, which the issue asks for, and rankd links libcrypto
 * and jansson already. What a JOSE library would add is the JWK decoding below and the checks
 * of auth/jwt_verify.c, both small and unit-tested to every refusal.
 *
 * Kept: RSA keys (kty RSA, n and e, 2048 bits at least) for RS256; EC keys on P-256 (kty EC,
 * crv P-256, x and y, the point checked on the curve) for ES256; OKP keys on Ed25519 (kty OKP,
 * crv Ed25519, x) for EdDSA. A key whose "use" is not "sig", whose "alg" names another algorithm
 * than its type's, or of another type or curve is skipped, not an error: providers publish
 * encryption keys in the same document.
 */
#ifndef RANKD_AUTH_JWK_H
#define RANKD_AUTH_JWK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

typedef enum { JWS_ALG_UNKNOWN = 0, JWS_ALG_RS256, JWS_ALG_ES256, JWS_ALG_EDDSA } jws_alg_t;

#define JWK_KID_MAX 128     /* bytes of a key id at most; a longer one is skipped */
#define JWK_SET_KEYS_MAX 32 /* keys kept of one document at most */
#define JWK_RSA_MIN_BITS 2048

typedef struct {
    char kid[JWK_KID_MAX + 1]; /* "" when the key has none */
    jws_alg_t alg;             /* the one algorithm this key verifies */
    EVP_PKEY *pkey;
} jwk_key_t;

/* A parsed key set: immutable once made, freed by its last jwk_set_unref. */
typedef struct jwk_set {
    atomic_int refs;
    size_t n;
    jwk_key_t keys[JWK_SET_KEYS_MAX];
    size_t skipped; /* keys of the document not kept (another use, type or curve; malformed) */
} jwk_set_t;

/* The algorithm named `name` ("RS256", "ES256", "EdDSA"), JWS_ALG_UNKNOWN for any other. */
jws_alg_t jws_alg_parse(const char *name);
const char *jws_alg_name(jws_alg_t alg);

/*
 * Parse a JWKS document (`text`, `len` bytes: {"keys":[...]}). Returns a set with one reference
 * the caller owns (jwk_set_unref), or NULL with why in `why` (not JSON, no "keys" list, no usable
 * key in it). Never echoes key material in `why`.
 */
jwk_set_t *jwk_set_parse(const char *text, size_t len, char *why, size_t whylen);
/* Another reference to `set` (not NULL); returns it. */
jwk_set_t *jwk_set_ref(jwk_set_t *set);
/* Drop one reference; the last frees the set. NULL is ignored. */
void jwk_set_unref(jwk_set_t *set);

/*
 * The key of `set` that verifies `alg` under key id `kid` (NULL: the token named none, and the
 * set must then hold exactly one key for `alg`). NULL when there is none. *kid_known (when not
 * NULL) says whether some key had that id at all, whatever its algorithm.
 */
const jwk_key_t *jwk_set_find(const jwk_set_t *set, const char *kid, jws_alg_t alg, bool *kid_known);

/*
 * Strict base64url (RFC 4648 §5, no padding, no whitespace) of `in` (n bytes) into `out` (room
 * for n * 3 / 4 + 1 bytes). Returns the decoded length, or -1 when `in` is not canonical base64url.
 */
long jwk_b64url_decode(const char *in, size_t n, unsigned char *out);

#endif
