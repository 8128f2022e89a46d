/*
 * cache/l1.h — the in-process response cache.
 *
 * Rendered read responses (identity, and gzip and Brotli once asked for; their ETag)
 * keyed by the canonical request, so a hot read costs a hash lookup and a
 * reference count. Bounded in bytes (least recently used goes first) and
 * by age: no entry outlives the HTTP max-age.
 *
 * Invalidation is exact per board window. Each entry remembers the span of
 * positions it shows and the window's total; a standing that moves from
 * position o to n changes the entry's bytes only if the total changes or o
 * and n do not both lie on the same side of that span. Each window also
 * has an epoch bumped by every invalidating write: a response computed
 * from a store read that began before the write is not inserted
 * (l1_window_epoch() before the read, l1_insert() compares).
 *
 * Locking: 16 shards, each a mutex over its hash chains and LRU list, held
 * for pointer work only; a separate mutex over the per-window lists. The
 * only nesting is window lock, then shard lock. Misses on one key are
 * computed once: the first request claims the key; the others park (their
 * connections suspended, no thread blocked) and are woken when it settles.
 */
#ifndef RANKD_CACHE_L1_H
#define RANKD_CACHE_L1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/order.h"
#include "util/encoding.h"
#include "util/must_use.h"

typedef struct l1 l1_t;
typedef struct l1_entry l1_entry_t;

/* What an entry shows of its window, for invalidation. */
typedef struct {
    int64_t gen;
    int64_t day;
    int64_t total;
    bool has_span;         /* false when it shows no entry */
    order_pos_t first;     /* smallest position shown */
    order_pos_t last;      /* largest position shown */
} l1_scope_t;

/* A read-only view of an entry's bytes; valid while the entry is held. */
typedef struct {
    const char *body;
    size_t len;
    const char *etag;
    int64_t last_modified_ms;
} l1_view_t;

/* A cache of at most `max_bytes` whose entries live `ttl_ms`; NULL when max_bytes or ttl_ms is 0 (disabled). */
l1_t *l1_new(size_t max_bytes, int ttl_ms);
void l1_free(l1_t *c);
/* Read expiries from now_ms(arg) instead of CLOCK_MONOTONIC (tests move time themselves).
 * Call before the cache is used; the clock must never go back. */
void l1_use_clock(l1_t *c, int64_t (*now_ms)(void *arg), void *arg);

typedef enum {
    L1_MISS_CLAIMED = 0,  /* compute it, then l1_insert() or l1_abandon() */
    L1_MISS_BUSY = 1,     /* another request is computing it right now: see l1_wait() */
    L1_MISS_UNCACHED = 2, /* compute it without caching: the key is not (yet) worth keeping */
} l1_miss_t;

/*
 * Look `key` up; never blocks on anything but the shard's lock. On a hit
 * returns a held entry (release with l1_release()); on a miss returns NULL
 * and says what to do in *miss. A key is admitted only when it was asked
 * for before, recently: reads of a million different players, each once,
 * would otherwise churn the cache and evict the hot pages. An entry in the
 * last fifth of its life is a miss (L1_MISS_CLAIMED) for the one read that
 * refreshes it, and a hit for every other read until it is replaced.
 */
l1_entry_t *l1_get(l1_t *c, const char *key, size_t key_len, l1_miss_t *miss);

/* Admit `key` on its next miss, as if it had been asked for before: a response rendered ahead
 * of its readers (a new window's top page at a reset). */
void l1_expect(l1_t *c, const char *key, size_t key_len);

/*
 * Park until the request computing `key` settles it: wake(arg) is called
 * (from the settling thread) once it inserts or abandons. Returns false,
 * without parking, when the key is no longer claimed: look it up again now.
 */
MUST_USE bool l1_wait(l1_t *c, const char *key, size_t key_len, void (*wake)(void *arg), void *arg);

/* The window's current epoch, to be read before the store read behind a response. */
uint64_t l1_window_epoch(l1_t *c, int64_t gen, int64_t day);

/*
 * Insert the response for a claimed key; `body` is copied. Returns the
 * entry, held for the caller. When the window
 * changed since `epoch` the response may be stale: the entry then answers
 * this one request and is not kept.
 */
l1_entry_t *l1_insert(l1_t *c, const char *key, size_t key_len, const l1_scope_t *scope, uint64_t epoch,
                      const char *body, size_t len, int64_t last_modified_ms);
/* Give up a claim without inserting (the read failed). */
void l1_abandon(l1_t *c, const char *key, size_t key_len);

void l1_view(const l1_entry_t *e, l1_view_t *out);
/*
 * The entry's body in `enc` (ENC_GZIP or ENC_BR), compressed by the first request that
 * asks for it and kept with the entry for every later one: a hot read compresses
 * nothing. NULL when the body is too small or does not compress: send identity. The
 * bytes live as long as the entry; hold it.
 */
const char *l1_encoded(l1_t *c, l1_entry_t *e, encoding_t enc, size_t *len);
/* Whether the entry's variant in `enc` is made already (then l1_encoded returns at once). */
bool l1_encoded_ready(const l1_entry_t *e, encoding_t enc, size_t *len);
void l1_hold(l1_entry_t *e);
void l1_release(l1_entry_t *e);

/*
 * A standing in window (gen, day) moved from `old_pos` (NULL: it is new) to
 * `new_pos` (NULL: removed); `total_changed` when the window gained or lost a
 * player. Drops exactly the entries whose bytes this can change.
 */
void l1_invalidate(l1_t *c, int64_t gen, int64_t day, const order_pos_t *old_pos, const order_pos_t *new_pos,
                   bool total_changed);
/* Drop every entry of a board generation (patch, delete). */
void l1_invalidate_board(l1_t *c, int64_t gen);
/* Drop everything (invalidations may have been missed). */
void l1_clear(l1_t *c);

typedef struct {
    uint64_t hits, misses, inserts, invalidations, evictions, refreshes;
    uint64_t parked;    /* requests that waited on another's claim of their key */
    uint64_t abandoned; /* claims given up without an insert (the read failed, or its client left) */
    size_t claims;      /* keys claimed now: being computed by one request for the others */
    size_t bytes, entries;
    size_t windows;  /* windows with a record (an epoch, a list of entries) */
    size_t listed;   /* entry references in those lists, dead ones included */
    size_t held_bytes;        /* entries not yet freed: cached, or held by requests after their eviction */
    size_t bookkeeping_bytes; /* the windows' records and lists (counted against the budget) */
} l1_stats_t;
void l1_stats(l1_t *c, l1_stats_t *out);

#endif
