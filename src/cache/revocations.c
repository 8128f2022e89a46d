/* cache/revocations.c — players' token revocation instants; see revocations.h. */
#include "cache/revocations.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/board.h"
#include "util/alloc.h"

typedef struct {
    char *player; /* owned; NULL: empty */
    int64_t at_ms;
} slot_t;

struct revocations {
    pthread_mutex_t lock;
    slot_t *slots; /* open addressing, linear probing; cap a power of two */
    size_t cap, n;
    atomic_bool loaded;
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

revocations_t *revocations_new(void)
{
    revocations_t *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->cap = 64;
    r->slots = xcalloc(r->cap, sizeof *r->slots);
    return r;
}

void revocations_free(revocations_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->cap; i++)
        free(r->slots[i].player);
    free(r->slots);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* The slot of `player`, or the empty one where it would go. Under the lock. */
static slot_t *find(slot_t *slots, size_t cap, const char *player, size_t len)
{
    size_t i = hash(player, len) & (cap - 1);
    while (slots[i].player && !(strlen(slots[i].player) == len && memcmp(slots[i].player, player, len) == 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static void grow(revocations_t *r)
{
    size_t cap = r->cap * 2;
    slot_t *slots = xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < r->cap; i++)
        if (r->slots[i].player)
            *find(slots, cap, r->slots[i].player, strlen(r->slots[i].player)) = r->slots[i];
    free(r->slots);
    r->slots = slots;
    r->cap = cap;
}

void revocations_note(revocations_t *r, const char *player, size_t len, int64_t at_ms)
{
    if (len == 0 || len > PLAYER_ID_MAX)
        return;
    pthread_mutex_lock(&r->lock);
    if ((r->n + 1) * 2 > r->cap)
        grow(r);
    slot_t *s = find(r->slots, r->cap, player, len);
    if (!s->player) {
        s->player = xmalloc(len + 1);
        memcpy(s->player, player, len);
        s->player[len] = '\0';
        s->at_ms = at_ms;
        r->n++;
    } else if (at_ms > s->at_ms) {
        s->at_ms = at_ms;
    }
    pthread_mutex_unlock(&r->lock);
}

int64_t revocations_before(revocations_t *r, const char *player)
{
    size_t len = strlen(player);
    pthread_mutex_lock(&r->lock);
    slot_t *s = find(r->slots, r->cap, player, len);
    int64_t at = s->player ? s->at_ms : 0;
    pthread_mutex_unlock(&r->lock);
    return at;
}

void revocations_mark_loaded(revocations_t *r)
{
    atomic_store(&r->loaded, true);
}

bool revocations_loaded(revocations_t *r)
{
    return atomic_load(&r->loaded);
}

size_t revocations_count(revocations_t *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}
