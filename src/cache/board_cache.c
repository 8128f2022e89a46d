/* cache/board_cache.c — a small TTL map of board definitions (open hashing). */
#include "cache/board_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"

#define SLOTS 1024
#define SLOT_DEPTH 4

typedef struct {
    bool used;
    board_t board;
    int64_t expires_ms;
} slot_t;

struct board_cache {
    pthread_mutex_t lock;
    int ttl_ms;
    slot_t slots[SLOTS][SLOT_DEPTH];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % SLOTS;
}

board_cache_t *board_cache_new(int ttl_ms)
{
    board_cache_t *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->ttl_ms = ttl_ms;
    return c;
}

void board_cache_free(board_cache_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < SLOTS; i++)
        for (int j = 0; j < SLOT_DEPTH; j++)
            if (c->slots[i][j].used)
                board_clear(&c->slots[i][j].board);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

bool board_cache_get(board_cache_t *c, const char *id, board_t *out)
{
    slot_t *row = c->slots[hash(id)];
    int64_t now = mono_ms();
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    for (int j = 0; j < SLOT_DEPTH; j++) {
        if (row[j].used && strcmp(row[j].board.id, id) == 0 && row[j].expires_ms > now) {
            board_copy(out, &row[j].board);
            hit = true;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void board_cache_put(board_cache_t *c, const board_t *b)
{
    slot_t *row = c->slots[hash(b->id)];
    board_t copy;
    board_copy(&copy, b);
    int64_t now = mono_ms();
    board_t old = {0};
    bool had_old = false;
    pthread_mutex_lock(&c->lock);
    int pick = -1;
    for (int j = 0; j < SLOT_DEPTH && pick < 0; j++)
        if (row[j].used && strcmp(row[j].board.id, b->id) == 0)
            pick = j;
    for (int j = 0; j < SLOT_DEPTH && pick < 0; j++)
        if (!row[j].used || row[j].expires_ms <= now)
            pick = j;
    if (pick < 0)
        pick = 0;
    if (row[pick].used) {
        old = row[pick].board;
        had_old = true;
    }
    row[pick].used = true;
    row[pick].board = copy;
    row[pick].expires_ms = now + c->ttl_ms;
    pthread_mutex_unlock(&c->lock);
    if (had_old)
        board_clear(&old);
}

void board_cache_forget(board_cache_t *c, const char *id)
{
    slot_t *row = c->slots[hash(id)];
    board_t old = {0};
    bool had_old = false;
    pthread_mutex_lock(&c->lock);
    for (int j = 0; j < SLOT_DEPTH; j++) {
        if (row[j].used && strcmp(row[j].board.id, id) == 0) {
            old = row[j].board;
            had_old = true;
            row[j].used = false;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (had_old)
        board_clear(&old);
}
