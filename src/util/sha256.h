/*
 * util/sha256.h — SHA-256 of a buffer, without OpenSSL 3's lookup of the algorithm per call.
 *
 * OpenSSL 3's one-shot SHA256() fetches the digest from its provider each time (a name lookup
 * under a lock): three times the hashing itself for a key, and a bearer key is hashed on every
 * keyed request. The digest is fetched once here and kept for the process's life.
 */
#ifndef RANKD_UTIL_SHA256_H
#define RANKD_UTIL_SHA256_H

#include <stddef.h>

#define SHA256_BYTES 32

/* out = SHA-256 of data[0..n). Any thread. Aborts if OpenSSL has no SHA-256 (a broken install). */
void sha256(const void *data, size_t n, unsigned char out[SHA256_BYTES]);

#endif
