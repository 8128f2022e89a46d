/* cache/board_catalog.c — the boards this instance knows, sorted by id; see board_catalog.h. */
#include "cache/board_catalog.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/clock.h"

typedef struct {
    board_t b;
    int64_t confirmed_ms; /* monotonic: when PostgreSQL last gave this definition */
} known_t;

typedef struct {
    int64_t gen;
    int64_t at_ms;
} tombstone_t;

struct board_catalog {
    pthread_mutex_t lock;
    int64_t max_lag_ms, tombstone_ms;
    known_t *items; /* sorted by id (strcmp) */
    size_t n, cap;
    tombstone_t *dead;
    size_t n_dead, cap_dead;
    int64_t contact_ms; /* the latest confirmation of anything; -1 none */
    int64_t list_ms;    /* when the last full list was begun; -1 none */
    unsigned long long fallbacks;
};

board_catalog_t *board_catalog_new(int64_t max_lag_ms, int64_t tombstone_ms)
{
    board_catalog_t *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->max_lag_ms = max_lag_ms;
    c->tombstone_ms = tombstone_ms;
    c->contact_ms = -1;
    c->list_ms = -1;
    return c;
}

static void free_items(known_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        board_clear(&items[i].b);
    free(items);
}

void board_catalog_free(board_catalog_t *c)
{
    if (!c)
        return;
    free_items(c->items, c->n);
    free(c->dead);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Under lock: the index of the first entry whose id is >= `id` (or > with `after`). */
static size_t lower_bound(const board_catalog_t *c, const char *id, bool after)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->items[mid].b.id, id);
        if (cmp < 0 || (after && cmp == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Under lock: whether generation `gen` was deleted lately (older tombstones go). */
static bool is_dead(board_catalog_t *c, int64_t gen, int64_t now)
{
    bool dead = false;
    size_t k = 0;
    for (size_t i = 0; i < c->n_dead; i++) {
        if (now - c->dead[i].at_ms > c->tombstone_ms)
            continue;
        dead = dead || c->dead[i].gen == gen;
        c->dead[k++] = c->dead[i];
    }
    c->n_dead = k;
    return dead;
}

/* Under lock: whether an entry confirmed at `ms` may still be served. */
static bool fresh(const board_catalog_t *c, int64_t ms)
{
    return ms >= 0 && ms >= c->contact_ms - c->max_lag_ms;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const known_t *)a)->b.id, ((const known_t *)b)->b.id);
}

void board_catalog_install(board_catalog_t *c, const board_t *boards, size_t n, int64_t begun_ms)
{
    known_t *fresh_items = xcalloc(n ? n : 1, sizeof *fresh_items);
    for (size_t i = 0; i < n; i++) {
        board_copy(&fresh_items[i].b, &boards[i]);
        fresh_items[i].confirmed_ms = begun_ms;
    }
    qsort(fresh_items, n, sizeof *fresh_items, by_id); /* sorted already by the query; cheap */
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&c->lock);
    if (begun_ms < c->list_ms) {
        /* A list begun before the one installed already: it may hold a board deleted between
         * the two, whose notice this instance may not have heard. */
        pthread_mutex_unlock(&c->lock);
        free_items(fresh_items, n);
        return;
    }
    /* Kept from before: what was confirmed after the list was read (a board created here
     * meanwhile); left out: generations deleted meanwhile. Entries move, nothing is copied. */
    size_t keep = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i].confirmed_ms > begun_ms)
            keep++;
    known_t *merged = xcalloc(n + keep ? n + keep : 1, sizeof *merged);
    size_t m = 0, a = 0, o = 0;
    known_t *old = c->items;
    size_t n_old = c->n;
    while (a < n || o < n_old) {
        int cmp = a == n ? 1 : o == n_old ? -1 : strcmp(fresh_items[a].b.id, old[o].b.id);
        known_t *take;
        if (cmp > 0 && old[o].confirmed_ms <= begun_ms) {
            o++; /* not in the list, nothing newer said it exists: gone */
            continue;
        }
        if (cmp > 0) {
            take = &old[o++];
        } else if (cmp == 0 && old[o].confirmed_ms > begun_ms) {
            take = &old[o++]; /* newer than the list's: keep ours */
            a++;
        } else {
            take = &fresh_items[a++];
            if (cmp == 0)
                o++;
        }
        if (is_dead(c, take->b.gen, now))
            continue;
        merged[m] = *take;
        memset(&take->b, 0, sizeof take->b); /* moved: cleared below as empty */
        m++;
    }
    c->items = merged;
    c->n = m;
    c->cap = n + keep ? n + keep : 1;
    if (begun_ms > c->contact_ms)
        c->contact_ms = begun_ms;
    c->list_ms = begun_ms;
    pthread_mutex_unlock(&c->lock);
    free_items(fresh_items, n); /* what was not moved: deleted or superseded */
    free_items(old, n_old);
}

void board_catalog_put(board_catalog_t *c, const board_t *b)
{
    known_t e;
    board_copy(&e.b, b);
    int64_t now = clock_mono_ms();
    e.confirmed_ms = now;
    board_t old = {0};
    pthread_mutex_lock(&c->lock);
    bool dead = is_dead(c, b->gen, now);
    if (!dead) {
        size_t i = lower_bound(c, b->id, false);
        if (i < c->n && strcmp(c->items[i].b.id, b->id) == 0) {
            old = c->items[i].b; /* this definition, or one the board's re-creation replaced */
            c->items[i] = e;
        } else {
            if (c->n == c->cap) {
                c->cap = c->cap ? c->cap * 2 : 64;
                c->items = xrealloc(c->items, c->cap * sizeof *c->items);
            }
            memmove(&c->items[i + 1], &c->items[i], (c->n - i) * sizeof *c->items);
            c->items[i] = e;
            c->n++;
        }
        c->contact_ms = now;
    }
    pthread_mutex_unlock(&c->lock);
    board_clear(dead ? &e.b : &old);
}

/* Under lock: remove entry i, handing its board to `out`. */
static void remove_at(board_catalog_t *c, size_t i, board_t *out)
{
    *out = c->items[i].b;
    memmove(&c->items[i], &c->items[i + 1], (c->n - i - 1) * sizeof *c->items);
    c->n--;
}

void board_catalog_forget_gen(board_catalog_t *c, int64_t gen)
{
    int64_t now = clock_mono_ms();
    board_t old = {0};
    pthread_mutex_lock(&c->lock);
    if (!is_dead(c, gen, now)) {
        if (c->n_dead == c->cap_dead) {
            c->cap_dead = c->cap_dead ? c->cap_dead * 2 : 16;
            c->dead = xrealloc(c->dead, c->cap_dead * sizeof *c->dead);
        }
        c->dead[c->n_dead++] = (tombstone_t){gen, now};
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->items[i].b.gen == gen) {
            remove_at(c, i, &old);
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    board_clear(&old);
}

void board_catalog_forget_id(board_catalog_t *c, const char *id, int64_t asked_ms)
{
    int64_t gen = 0;
    pthread_mutex_lock(&c->lock);
    size_t i = lower_bound(c, id, false);
    /* One confirmed after the lookup began (created here meanwhile) is not the one it missed. */
    if (i < c->n && strcmp(c->items[i].b.id, id) == 0 && c->items[i].confirmed_ms <= asked_ms)
        gen = c->items[i].b.gen;
    pthread_mutex_unlock(&c->lock);
    if (gen)
        board_catalog_forget_gen(c, gen);
}

bool board_catalog_get(board_catalog_t *c, const char *id, board_t *out)
{
    bool hit = false;
    pthread_mutex_lock(&c->lock);
    size_t i = lower_bound(c, id, false);
    if (i < c->n && strcmp(c->items[i].b.id, id) == 0 && fresh(c, c->items[i].confirmed_ms)) {
        board_copy(out, &c->items[i].b);
        hit = true;
        c->fallbacks++;
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

bool board_catalog_list(board_catalog_t *c, const char *after, size_t limit, board_t **out, size_t *n, bool *more)
{
    *out = NULL;
    *n = 0;
    *more = false;
    pthread_mutex_lock(&c->lock);
    bool ok = fresh(c, c->list_ms);
    if (ok) {
        size_t i = lower_bound(c, after, true);
        size_t k = c->n - i < limit ? c->n - i : limit;
        *out = xcalloc(k ? k : 1, sizeof **out);
        for (size_t j = 0; j < k; j++)
            board_copy(&(*out)[j], &c->items[i + j].b); /* a page: at most 1000 */
        *n = k;
        *more = i + k < c->n;
        c->fallbacks++;
    }
    pthread_mutex_unlock(&c->lock);
    return ok;
}

void board_catalog_stats(board_catalog_t *c, board_catalog_stats_t *out)
{
    pthread_mutex_lock(&c->lock);
    out->boards = c->n;
    out->complete = fresh(c, c->list_ms);
    out->fallbacks = c->fallbacks;
    pthread_mutex_unlock(&c->lock);
}
