/* cache/token_cache.c — verified player tokens by digest; see token_cache.h. */
#include "cache/token_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define STRIPES 64

typedef struct {
    unsigned char digest[32];
    player_claims_t claims;
} entry_t;

struct token_cache {
    size_t mask;                    /* slots - 1 */
    entry_t **slots;                /* NULL: empty; each owned */
    pthread_mutex_t locks[STRIPES]; /* slot i under locks[i % STRIPES] */
};

token_cache_t *token_cache_new(size_t slots)
{
    token_cache_t *tc = xcalloc(1, sizeof *tc);
    size_t n = 1;
    while (n < slots)
        n <<= 1;
    tc->mask = slots ? n - 1 : 0;
    tc->slots = slots ? xcalloc(n, sizeof *tc->slots) : NULL;
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&tc->locks[i], NULL);
    return tc;
}

void token_cache_free(token_cache_t *tc)
{
    if (!tc)
        return;
    token_cache_clear(tc);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&tc->locks[i]);
    free(tc->slots);
    free(tc);
}

static size_t slot_of(const token_cache_t *tc, const unsigned char digest[32])
{
    size_t h;
    memcpy(&h, digest, sizeof h); /* a SHA-256: its bytes are as good a hash as any */
    return h & tc->mask;
}

bool token_cache_get(token_cache_t *tc, const unsigned char digest[32], int64_t now_ms, player_claims_t *out)
{
    if (!tc || !tc->slots)
        return false;
    size_t i = slot_of(tc, digest);
    pthread_mutex_t *m = &tc->locks[i % STRIPES];
    bool found = false;
    pthread_mutex_lock(m);
    entry_t *e = tc->slots[i];
    if (e && memcmp(e->digest, digest, 32) == 0 && now_ms < e->claims.exp_ms) {
        *out = e->claims;
        found = true;
    }
    pthread_mutex_unlock(m);
    return found;
}

void token_cache_put(token_cache_t *tc, const unsigned char digest[32], const player_claims_t *claims)
{
    if (!tc || !tc->slots)
        return;
    size_t i = slot_of(tc, digest);
    pthread_mutex_t *m = &tc->locks[i % STRIPES];
    pthread_mutex_lock(m);
    entry_t *e = tc->slots[i];
    if (!e)
        e = tc->slots[i] = xmalloc(sizeof *e);
    memcpy(e->digest, digest, 32);
    e->claims = *claims;
    pthread_mutex_unlock(m);
}

void token_cache_clear(token_cache_t *tc)
{
    if (!tc || !tc->slots)
        return;
    for (size_t i = 0; i <= tc->mask; i++) {
        pthread_mutex_t *m = &tc->locks[i % STRIPES];
        pthread_mutex_lock(m);
        free(tc->slots[i]);
        tc->slots[i] = NULL;
        pthread_mutex_unlock(m);
    }
}
