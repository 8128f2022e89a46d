/* util/sha256.c — see sha256.h. */
#include "util/sha256.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

/* Fetched once (sha256_fetch), read by every thread after: never freed, as OpenSSL's own
 * digests live as long as the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void sha256(const void *data, size_t n, unsigned char out[SHA256_BYTES])
{
    pthread_once(&sha256_once, sha256_fetch);
    if (!sha256_md || !EVP_Digest(data, n, out, NULL, sha256_md, NULL)) {
        fputs("rankd: OpenSSL cannot compute SHA-256\n", stderr);
        abort();
    }
}
