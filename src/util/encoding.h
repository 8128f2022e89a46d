/*
 * util/encoding.h — what makes a read cheap to repeat: strong ETags derived
 * from the identity body, If-None-Match, Accept-Encoding negotiation, and
 * gzip (zlib) / Brotli compression of bodies of 1024 bytes or more.
 *
 * Encoded variants carry the identity ETag with "-gz" or "-br" appended
 * inside the quotes, and any variant's tag satisfies If-None-Match.
 */
#ifndef RANKD_UTIL_ENCODING_H
#define RANKD_UTIL_ENCODING_H

#include <stdbool.h>
#include <stddef.h>

#define ENCODING_MIN_BODY 1024
#define ETAG_MAX 32

typedef enum { ENC_IDENTITY = 0, ENC_GZIP = 1, ENC_BR = 2 } encoding_t;

/* The strong ETag of `body` ("\"<16 hex>\""), into `out` (ETAG_MAX bytes). */
void encoding_etag(const char *body, size_t len, char out[ETAG_MAX]);
/* The ETag of an encoded variant of the body whose identity tag is `etag`. */
void encoding_variant_etag(const char *etag, encoding_t enc, char out[ETAG_MAX]);

/* True when an If-None-Match header value names `etag` or one of its variants (or is "*"). */
bool encoding_none_match(const char *header, const char *etag);

/* The best encoding an Accept-Encoding header allows: br, then gzip, else identity. */
encoding_t encoding_negotiate(const char *accept_encoding);

/* Compress `in`; returns a malloc'd buffer (caller frees) and its length, or NULL on failure. */
char *encoding_compress(encoding_t enc, const char *in, size_t len, size_t *out_len);

const char *encoding_name(encoding_t enc);

#endif
