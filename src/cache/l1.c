/* cache/l1.c — sharded, byte-bounded response cache with exact per-window invalidation. */
#include "cache/l1.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "util/encoding.h"
#include "util/alloc.h"

#define SHARDS 16         /* indexed by the hash's top 4 bits */
#define MIN_BUCKETS 1024  /* hash chains per shard at first; doubled to keep chains short */
#define WINDOW_BUCKETS 1024
#define ADMIT_SLOTS 8192  /* per shard */

/* An encoded body, made on the first request that asks for it. bytes == NULL: the body
 * does not compress (identity is sent). */
typedef struct {
    char *bytes;
    size_t len;
} variant_t;

struct l1_entry {
    /* What a lookup compares, first: a chain walk touches one cache line per entry. */
    uint64_t hash;
    l1_entry_t *hnext;
    size_t key_len;
    char *key;
    atomic_int refs;
    atomic_bool dead;
    l1_scope_t scope;
    char *body;
    size_t len;
    _Atomic(variant_t *) gz, br;   /* NULL until asked for; published once, then fixed */
    char etag[ETAG_MAX];
    int64_t last_modified_ms;
    int64_t expires_ms;
    size_t bytes;
    bool in_shard;             /* guarded by its shard's lock */
    l1_entry_t *lru_prev, *lru_next;
    l1_t *cache;               /* for its bytes in held_bytes when freed */
    struct window *listed_in;  /* the window listing it (holding a reference), or NULL; wlock */
    size_t listed_at;          /* its place in listed_in->items; wlock */
};

typedef struct waiter {
    void (*wake)(void *arg);
    void *arg;
    struct waiter *next;
} waiter_t;

typedef struct claim {
    uint64_t hash;
    char *key;
    size_t key_len;
    waiter_t *waiters;         /* requests parked until the claim is settled */
    struct claim *next;
} claim_t;

/* A key's last miss: its fingerprint, and when, in ticks of a sixteenth of the TTL. */
typedef struct {
    uint16_t fp;
    uint16_t tick;
} seen_t;

/* A key missed twice within an entry's lifetime (plus a tick) is admitted: a key read less often
 * than that would find its entry expired at every read, and only evict others to hold it. */
#define ADMIT_TICKS 16

typedef struct {
    pthread_mutex_t lock;
    l1_entry_t **buckets;      /* n_buckets chains (a power of two), owned */
    /* Per chain, a 16-bit Bloom filter of its entries' hashes (chain_tag), owned: a key whose bit
     * is clear is not in the chain, known without touching the chain's entries. Most lookups of
     * a read of random players miss, and each entry a walk touches is a cache miss. */
    uint16_t *tags;
    size_t n_buckets;
    l1_entry_t lru;            /* sentinel: lru.lru_next is the most recent */
    size_t bytes;
    size_t entries;
    claim_t *claims;
    /* Fingerprints of keys missed recently, one slot per hash value: a key whose
     * fingerprint is still in its slot at its next miss, missed again within an entry's
     * lifetime, is admitted. A newer key overwrites the slot, so one-hit keys (random players)
     * age out by themselves. */
    seen_t seen[ADMIT_SLOTS];
} shard_t;

typedef struct window {
    int64_t gen, day;
    uint64_t epoch;
    l1_entry_t **items;        /* each holds a reference */
    size_t n, cap;
    struct window *next;
} window_t;

struct l1 {
    shard_t shards[SHARDS];
    pthread_mutex_t wlock;     /* guards every window_t, epoch_clock and sweep_at */
    window_t *windows[WINDOW_BUCKETS];
    /* Epochs come from one clock and are never reused: a window's record can be dropped (and
     * made again) without a read that began before a write ever matching the new record. */
    uint64_t epoch_clock;
    size_t sweep_at;           /* the next chain of `windows` a sweep step visits */
    size_t shard_budget;
    /* Bytes of entries not yet freed (cached, or held by a request after their eviction), and
     * of the windows' records and lists: what the cache really holds (l1_stats). */
    atomic_size_t held_bytes, bookkeeping_bytes;
    int64_t (*now_ms)(void *arg); /* monotonic milliseconds (mono_ms unless a test sets one) */
    void *now_arg;
    int ttl_ms;
    int refresh_ms;            /* an entry this close to its expiry is computed again ahead */
    int64_t tick_ms;           /* ttl_ms / ADMIT_TICKS, at least 1: the admission's clock */
    atomic_uint_fast64_t hits, misses, inserts, invalidations, evictions, refreshes;
    atomic_uint_fast64_t parked, abandoned; /* requests that waited on a claim; claims given up */
    atomic_long claims;                     /* keys claimed now (being computed) */
};

static int64_t mono_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t hash_key(const char *k, size_t n)
{
    /* XXH3 mixes every bit (the shard, admission and chain bits below all need it) and reads
     * eight bytes at a time: a read's key costs it a tenth of what a byte-wise hash does. */
    return XXH3_64bits(k, n);
}

/* Bits of a key's hash: the shard takes the top 4, admission bits 31..59, chain tags 27..30,
 * chains the low ones. */
static shard_t *shard_of(l1_t *c, uint64_t h)
{
    return &c->shards[h >> 60];
}

l1_t *l1_new(size_t max_bytes, int ttl_ms)
{
    if (max_bytes == 0 || ttl_ms <= 0)
        return NULL;
    l1_t *c = xcalloc(1, sizeof *c);
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&c->shards[i].lock, NULL);
        c->shards[i].n_buckets = MIN_BUCKETS;
        c->shards[i].buckets = xcalloc(MIN_BUCKETS, sizeof *c->shards[i].buckets);
        c->shards[i].tags = xcalloc(MIN_BUCKETS, sizeof *c->shards[i].tags);
        c->shards[i].lru.lru_next = c->shards[i].lru.lru_prev = &c->shards[i].lru;
    }
    pthread_mutex_init(&c->wlock, NULL);
    c->shard_budget = max_bytes / SHARDS;
    c->ttl_ms = ttl_ms;
    c->now_ms = mono_ms;
    c->refresh_ms = ttl_ms / 5;
    c->tick_ms = ttl_ms / ADMIT_TICKS > 0 ? ttl_ms / ADMIT_TICKS : 1;
    return c;
}

static void entry_free(l1_entry_t *e)
{
    atomic_fetch_sub(&e->cache->held_bytes, e->bytes);
    free(e->key);
    free(e->body);
    variant_t *vs[2] = {atomic_load(&e->gz), atomic_load(&e->br)};
    for (int i = 0; i < 2; i++) {
        if (vs[i])
            free(vs[i]->bytes);
        free(vs[i]);
    }
    free(e);
}

void l1_hold(l1_entry_t *e)
{
    atomic_fetch_add(&e->refs, 1);
}

void l1_release(l1_entry_t *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1)
        entry_free(e);
}

/* ---------------------------------------------------------------- shards */

static void lru_unlink(l1_entry_t *e)
{
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next->lru_prev = e->lru_prev;
}

static void lru_push_front(shard_t *s, l1_entry_t *e)
{
    e->lru_next = s->lru.lru_next;
    e->lru_prev = &s->lru;
    s->lru.lru_next->lru_prev = e;
    s->lru.lru_next = e;
}

/* A hash's bit in its chain's tag: bits 27..30, clear of the shard's, admission's (31..59) and,
 * below 2^27 chains per shard, the chain index's. */
static uint16_t chain_tag(uint64_t h)
{
    return (uint16_t)(1u << ((h >> 27) & 15));
}

/* Remove `e` from its shard (lock held) and drop the shard's reference. */
static void shard_remove(shard_t *s, l1_entry_t *e)
{
    if (!e->in_shard)
        return;
    /* Unlink it, and make the chain's tag again from the entries left: a bit may stand for
     * another entry too. */
    size_t i = e->hash & (s->n_buckets - 1);
    uint16_t tag = 0;
    for (l1_entry_t **pp = &s->buckets[i]; *pp;) {
        if (*pp == e) {
            *pp = e->hnext;
            continue;
        }
        tag |= chain_tag((*pp)->hash);
        pp = &(*pp)->hnext;
    }
    s->tags[i] = tag;
    lru_unlink(e);
    e->in_shard = false;
    atomic_store(&e->dead, true);
    s->bytes -= e->bytes;
    s->entries--;
    l1_release(e);
}

/* The chain that holds (or would hold) hash `h`. Shard lock held. */
static l1_entry_t **chain(shard_t *s, uint64_t h)
{
    return &s->buckets[h & (s->n_buckets - 1)];
}

/* Whether the chain of hash `h` may hold it (false: it does not). Shard lock held. */
static bool chain_may_hold(const shard_t *s, uint64_t h)
{
    return (s->tags[h & (s->n_buckets - 1)] & chain_tag(h)) != 0;
}

/* The link that points at the entry for `key` (*result NULL when absent). Shard lock held. */
static l1_entry_t **find_entry(shard_t *s, uint64_t h, const char *key, size_t n)
{
    l1_entry_t **pp = chain(s, h);
    while (*pp && !((*pp)->hash == h && (*pp)->key_len == n && memcmp((*pp)->key, key, n) == 0))
        pp = &(*pp)->hnext;
    return pp;
}

/* Double the chain table once there are more entries than chains. Shard lock held. */
static void maybe_grow(shard_t *s)
{
    if (s->entries <= s->n_buckets)
        return;
    size_t n = s->n_buckets * 2;
    l1_entry_t **b = xcalloc(n, sizeof *b);
    uint16_t *tags = xcalloc(n, sizeof *tags);
    for (size_t i = 0; i < s->n_buckets; i++) {
        l1_entry_t *e = s->buckets[i];
        while (e) {
            l1_entry_t *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            tags[e->hash & (n - 1)] |= chain_tag(e->hash);
            e = next;
        }
    }
    free(s->buckets);
    free(s->tags);
    s->buckets = b;
    s->tags = tags;
    s->n_buckets = n;
}

/* Admission: whether the key of hash h missed recently (see seen_t), recording this miss. Shard
 * lock held. */
static bool seen_before(const l1_t *c, shard_t *s, uint64_t h, int64_t now)
{
    /* Bits 31..59: clear of the shard's (60..63) and of the chains' (the low ones). */
    seen_t *slot = &s->seen[(h >> 31) % ADMIT_SLOTS];
    uint16_t fp = (uint16_t)(h >> 44) | 1; /* never 0, the empty slot */
    uint16_t tick = (uint16_t)(now / c->tick_ms);
    /* Modulo 2^16 ticks: a key last seen a whole turn ago (4096 TTLs) may be admitted early. */
    bool recent = slot->fp == fp && (uint16_t)(tick - slot->tick) <= ADMIT_TICKS;
    slot->fp = fp;
    slot->tick = tick;
    return recent;
}

static claim_t **find_claim(shard_t *s, uint64_t h, const char *key, size_t n)
{
    claim_t **pp = &s->claims;
    while (*pp && !((*pp)->hash == h && (*pp)->key_len == n && memcmp((*pp)->key, key, n) == 0))
        pp = &(*pp)->next;
    return pp;
}

/* Remove a claim (shard lock held); returns its waiters, to be woken once the locks are released. */
static waiter_t *drop_claim(shard_t *s, uint64_t h, const char *key, size_t n)
{
    claim_t **pp = find_claim(s, h, key, n);
    waiter_t *w = NULL;
    if (*pp) {
        claim_t *cl = *pp;
        *pp = cl->next;
        w = cl->waiters;
        free(cl->key);
        free(cl);
    }
    return w;
}

static void wake_all(waiter_t *w)
{
    while (w) {
        waiter_t *next = w->next;
        w->wake(w->arg);
        free(w);
        w = next;
    }
}

/* Claim `key` for the caller (shard lock held, no claim on it yet). */
static void add_claim(shard_t *s, uint64_t h, const char *key, size_t n)
{
    claim_t *cl = xcalloc(1, sizeof *cl);
    cl->hash = h;
    cl->key = xstrndup(key, n);
    cl->key_len = n;
    cl->next = s->claims;
    s->claims = cl;
}

l1_entry_t *l1_get(l1_t *c, const char *key, size_t n, l1_miss_t *miss)
{
    uint64_t h = hash_key(key, n);
    shard_t *s = shard_of(c, h);
    int64_t now = c->now_ms(c->now_arg);
    pthread_mutex_lock(&s->lock);
    l1_entry_t *e = chain_may_hold(s, h) ? *find_entry(s, h, key, n) : NULL;
    if (e && e->expires_ms > now) {
        /* Refresh ahead: the first read in the last fifth of an entry's life computes it
         * again while every other read still hits. Left to expire, a hot key parks all of its
         * readers behind one store read each time (once a second at the default max-age). */
        if (e->expires_ms - now <= c->refresh_ms && !*find_claim(s, h, key, n)) {
            add_claim(s, h, key, n);
            atomic_fetch_add(&c->claims, 1);
            pthread_mutex_unlock(&s->lock);
            *miss = L1_MISS_CLAIMED;
            atomic_fetch_add(&c->refreshes, 1);
            return NULL;
        }
        l1_hold(e);
        lru_unlink(e);
        lru_push_front(s, e);
        pthread_mutex_unlock(&s->lock);
        atomic_fetch_add(&c->hits, 1);
        return e;
    }
    /* An expired entry stays until the insert that replaces it (or the LRU) removes it, with the
     * window lock that its removal takes (l1_insert). */
    if (*find_claim(s, h, key, n)) {
        *miss = L1_MISS_BUSY;
    } else {
        if (!seen_before(c, s, h, now) && !e) {
            *miss = L1_MISS_UNCACHED;
        } else {
            add_claim(s, h, key, n);
            atomic_fetch_add(&c->claims, 1);
            *miss = L1_MISS_CLAIMED;
        }
    }
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&c->misses, 1);
    return NULL;
}

void l1_expect(l1_t *c, const char *key, size_t n)
{
    uint64_t h = hash_key(key, n);
    shard_t *s = shard_of(c, h);
    int64_t now = c->now_ms(c->now_arg);
    pthread_mutex_lock(&s->lock);
    seen_before(c, s, h, now);
    pthread_mutex_unlock(&s->lock);
}

bool l1_wait(l1_t *c, const char *key, size_t n, void (*wake)(void *arg), void *arg)
{
    uint64_t h = hash_key(key, n);
    shard_t *s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    claim_t *cl = *find_claim(s, h, key, n);
    if (cl) {
        waiter_t *w = xcalloc(1, sizeof *w);
        w->wake = wake;
        w->arg = arg;
        w->next = cl->waiters;
        cl->waiters = w;
        atomic_fetch_add(&c->parked, 1);
    }
    pthread_mutex_unlock(&s->lock);
    return cl != NULL;
}

void l1_abandon(l1_t *c, const char *key, size_t n)
{
    uint64_t h = hash_key(key, n);
    shard_t *s = shard_of(c, h);
    pthread_mutex_lock(&s->lock);
    bool had = *find_claim(s, h, key, n) != NULL;
    waiter_t *w = drop_claim(s, h, key, n);
    pthread_mutex_unlock(&s->lock);
    if (had) {
        atomic_fetch_sub(&c->claims, 1);
        atomic_fetch_add(&c->abandoned, 1);
    }
    wake_all(w);
}

/* ---------------------------------------------------------------- windows */

static window_t *window_get(l1_t *c, int64_t gen, int64_t day, bool create)
{
    size_t b = (size_t)((uint64_t)gen * 31 + (uint64_t)day) % WINDOW_BUCKETS;
    window_t *w = c->windows[b];
    while (w && !(w->gen == gen && w->day == day))
        w = w->next;
    if (!w && create) {
        w = xcalloc(1, sizeof *w);
        atomic_fetch_add(&c->bookkeeping_bytes, sizeof *w);
        w->gen = gen;
        w->day = day;
        w->epoch = ++c->epoch_clock;
        w->next = c->windows[b];
        c->windows[b] = w;
    }
    return w;
}

/*
 * One step of the sweep, under wlock, with every operation that takes it: the next chain of
 * windows loses its references to entries evicted or expired since, and the windows left with
 * nothing listed go. So what invalidation keeps stays within a bounded distance of what the
 * cache holds, however many windows pass through it (every window a NOTIFY names, for days).
 */
/* Drop the window's references to entries evicted or expired since they were listed. wlock held. */
static void drop_dead(window_t *w)
{
    size_t keep = 0;
    for (size_t i = 0; i < w->n; i++) {
        l1_entry_t *e = w->items[i];
        if (atomic_load(&e->dead)) {
            e->listed_in = NULL;
            l1_release(e);
        } else {
            e->listed_at = keep;
            w->items[keep++] = e;
        }
    }
    w->n = keep;
}

/* Take `e` off its window's list at once (wlock held): the list's last entry takes its place,
 * and the list's reference goes. An evicted entry is then freed as soon as no request holds it,
 * not when a sweep comes by. */
static void unlist(l1_entry_t *e)
{
    window_t *w = e->listed_in;
    if (!w)
        return;
    l1_entry_t *last = w->items[--w->n];
    w->items[e->listed_at] = last;
    last->listed_at = e->listed_at;
    e->listed_in = NULL;
    l1_release(e);
}

static void sweep_step(l1_t *c)
{
    window_t **pp = &c->windows[c->sweep_at];
    c->sweep_at = (c->sweep_at + 1) % WINDOW_BUCKETS;
    while (*pp) {
        window_t *w = *pp;
        drop_dead(w);
        if (w->n == 0) {
            *pp = w->next;
            atomic_fetch_sub(&c->bookkeeping_bytes, sizeof *w + w->cap * sizeof *w->items);
            free(w->items);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

uint64_t l1_window_epoch(l1_t *c, int64_t gen, int64_t day)
{
    pthread_mutex_lock(&c->wlock);
    sweep_step(c);
    uint64_t e = window_get(c, gen, day, true)->epoch;
    pthread_mutex_unlock(&c->wlock);
    return e;
}

/* Kill an entry listed in a window (wlock held): out of its shard, and the window's reference dropped. */
static void kill_listed(l1_t *c, l1_entry_t *e)
{
    e->listed_in = NULL;
    if (!atomic_load(&e->dead)) {
        shard_t *s = shard_of(c, e->hash);
        pthread_mutex_lock(&s->lock);
        shard_remove(s, e);
        pthread_mutex_unlock(&s->lock);
        atomic_fetch_add(&c->invalidations, 1);
    }
    l1_release(e);
}

/* -1 above the span, 0 inside, +1 below. */
static int side(const l1_scope_t *sc, const order_pos_t *p)
{
    if (order_pos_cmp(p, &sc->first) < 0)
        return -1;
    if (order_pos_cmp(p, &sc->last) > 0)
        return 1;
    return 0;
}

static bool affected(const l1_scope_t *sc, const order_pos_t *o, const order_pos_t *n, bool total_changed)
{
    if (total_changed)
        return true;
    if (!sc->has_span)
        return false;
    if (!o || !n)
        return true;
    int so = side(sc, o), sn = side(sc, n);
    return !(so == sn && so != 0);
}

void l1_invalidate(l1_t *c, int64_t gen, int64_t day, const order_pos_t *old_pos, const order_pos_t *new_pos,
                   bool total_changed)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->wlock);
    sweep_step(c);
    /* No record: nothing of it is cached, and a read of it in flight took its epoch from a
     * record since dropped, which its insert will not find again (l1_insert). */
    window_t *w = window_get(c, gen, day, false);
    if (!w) {
        pthread_mutex_unlock(&c->wlock);
        return;
    }
    w->epoch = ++c->epoch_clock;
    size_t keep = 0;
    for (size_t i = 0; i < w->n; i++) {
        l1_entry_t *e = w->items[i];
        if (atomic_load(&e->dead) || affected(&e->scope, old_pos, new_pos, total_changed)) {
            kill_listed(c, e);
        } else {
            e->listed_at = keep;
            w->items[keep++] = e;
        }
    }
    w->n = keep;
    pthread_mutex_unlock(&c->wlock);
}

static void clear_windows(l1_t *c, bool all, int64_t gen)
{
    pthread_mutex_lock(&c->wlock);
    for (size_t b = 0; b < WINDOW_BUCKETS; b++) {
        for (window_t *w = c->windows[b]; w; w = w->next) {
            if (!all && w->gen != gen)
                continue;
            w->epoch = ++c->epoch_clock;
            for (size_t i = 0; i < w->n; i++)
                kill_listed(c, w->items[i]);
            w->n = 0;
        }
    }
    pthread_mutex_unlock(&c->wlock);
}

void l1_invalidate_board(l1_t *c, int64_t gen)
{
    if (c)
        clear_windows(c, false, gen);
}

void l1_clear(l1_t *c)
{
    if (c)
        clear_windows(c, true, 0);
}

/* Drop least recently used entries while the shard is over its budget (its share of
 * cache.max_bytes less its share of the windows' bookkeeping), never `keep` (an entry of this
 * shard, just inserted or grown). The window lock and the shard's lock are held. */
static void evict_over_budget(l1_t *c, shard_t *s, const l1_entry_t *keep)
{
    size_t bk = atomic_load(&c->bookkeeping_bytes) / SHARDS;
    size_t budget = c->shard_budget > bk ? c->shard_budget - bk : 0;
    while (s->bytes > budget && s->lru.lru_prev != keep && s->lru.lru_prev != &s->lru) {
        l1_entry_t *victim = s->lru.lru_prev;
        unlist(victim);
        shard_remove(s, victim);
        atomic_fetch_add(&c->evictions, 1);
    }
}

/* ---------------------------------------------------------------- insert */

l1_entry_t *l1_insert(l1_t *c, const char *key, size_t n, const l1_scope_t *scope, uint64_t epoch, const char *body,
                      size_t len, int64_t last_modified_ms)
{
    uint64_t h = hash_key(key, n);
    shard_t *s = shard_of(c, h);

    /* Build outside every lock: copying and hashing are the expensive part. Encoded bodies
     * are made when a client first asks for one (l1_encoded): most entries of a cache in
     * front of clients that never ask would otherwise carry two unused copies. */
    l1_entry_t *e = xcalloc(1, sizeof *e);
    atomic_init(&e->refs, 1); /* the caller's */
    e->hash = h;
    e->key = xstrndup(key, n);
    e->key_len = n;
    e->scope = *scope;
    e->body = xmalloc(len ? len : 1);
    memcpy(e->body, body, len);
    e->len = len;
    encoding_etag(body, len, e->etag);
    e->last_modified_ms = last_modified_ms;
    e->expires_ms = c->now_ms(c->now_arg) + c->ttl_ms;
    e->bytes = sizeof *e + n + len;
    e->cache = c;
    atomic_fetch_add(&c->held_bytes, e->bytes);

    pthread_mutex_lock(&c->wlock);
    sweep_step(c);
    window_t *w = window_get(c, scope->gen, scope->day, true);
    bool fresh = w->epoch == epoch;
    if (fresh) {
        if (w->n == w->cap) /* drop entries evicted or expired since, before growing */
            drop_dead(w);
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 16;
            atomic_fetch_add(&c->bookkeeping_bytes, (cap - w->cap) * sizeof *w->items);
            w->cap = cap;
            w->items = xrealloc(w->items, w->cap * sizeof *w->items);
        }
        l1_hold(e); /* the window's */
        e->listed_in = w;
        e->listed_at = w->n;
        w->items[w->n++] = e;
    }
    pthread_mutex_lock(&s->lock);
    if (fresh) {
        l1_entry_t **pp = find_entry(s, h, key, n);
        if (*pp) { /* the entry it replaces: expired, or a racing insert of the same key */
            l1_entry_t *old = *pp;
            unlist(old);
            shard_remove(s, old);
        }
        l1_hold(e); /* the shard's */
        e->in_shard = true;
        e->hnext = *chain(s, h);
        *chain(s, h) = e;
        s->tags[h & (s->n_buckets - 1)] |= chain_tag(h);
        lru_push_front(s, e);
        s->bytes += e->bytes;
        s->entries++;
        maybe_grow(s);
        evict_over_budget(c, s, e);
    }
    bool claimed = *find_claim(s, h, key, n) != NULL;
    waiter_t *waiters = drop_claim(s, h, key, n);
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&c->wlock);
    if (claimed)
        atomic_fetch_sub(&c->claims, 1);
    wake_all(waiters);
    if (fresh)
        atomic_fetch_add(&c->inserts, 1);
    return e;
}

void l1_view(const l1_entry_t *e, l1_view_t *out)
{
    out->body = e->body;
    out->len = e->len;
    out->etag = e->etag;
    out->last_modified_ms = e->last_modified_ms;
}

bool l1_encoded_ready(const l1_entry_t *e, encoding_t enc, size_t *len)
{
    if (enc != ENC_GZIP && enc != ENC_BR)
        return false;
    variant_t *v = atomic_load_explicit(enc == ENC_GZIP ? &e->gz : &e->br, memory_order_acquire);
    if (v)
        *len = v->len;
    return v != NULL;
}

const char *l1_encoded(l1_t *c, l1_entry_t *e, encoding_t enc, size_t *len)
{
    if (e->len < ENCODING_MIN_BODY || (enc != ENC_GZIP && enc != ENC_BR))
        return NULL;
    _Atomic(variant_t *) *slot = enc == ENC_GZIP ? &e->gz : &e->br;
    variant_t *v = atomic_load_explicit(slot, memory_order_acquire);
    if (!v) {
        /* Two requests may compress at once; the first to publish wins, the other's copy
         * is dropped. The entry's bytes are read-only, so no lock is needed to read them. */
        variant_t *made = xcalloc(1, sizeof *made);
        made->bytes = encoding_compress(enc, e->body, e->len, &made->len);
        if (!made->bytes)
            made->len = 0;
        variant_t *none = NULL;
        if (atomic_compare_exchange_strong_explicit(slot, &none, made, memory_order_acq_rel, memory_order_acquire)) {
            v = made;
            shard_t *s = shard_of(c, e->hash);
            size_t more = sizeof *made + made->len;
            atomic_fetch_add(&c->held_bytes, more);
            pthread_mutex_lock(&c->wlock); /* evictions take entries off their windows' lists */
            pthread_mutex_lock(&s->lock);
            e->bytes += more;
            if (e->in_shard) { /* the budget counts it from now on */
                s->bytes += more;
                evict_over_budget(c, s, e);
            }
            pthread_mutex_unlock(&s->lock);
            pthread_mutex_unlock(&c->wlock);
        } else {
            free(made->bytes);
            free(made);
            v = none;
        }
    }
    if (!v->bytes)
        return NULL;
    *len = v->len;
    return v->bytes;
}

void l1_stats(l1_t *c, l1_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->inserts = atomic_load(&c->inserts);
    out->invalidations = atomic_load(&c->invalidations);
    out->evictions = atomic_load(&c->evictions);
    out->refreshes = atomic_load(&c->refreshes);
    out->parked = atomic_load(&c->parked);
    out->abandoned = atomic_load(&c->abandoned);
    long claims = atomic_load(&c->claims);
    out->claims = claims > 0 ? (size_t)claims : 0;
    out->held_bytes = atomic_load(&c->held_bytes);
    out->bookkeeping_bytes = atomic_load(&c->bookkeeping_bytes);
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].lock);
        out->bytes += c->shards[i].bytes;
        out->entries += c->shards[i].entries;
        pthread_mutex_unlock(&c->shards[i].lock);
    }
    pthread_mutex_lock(&c->wlock);
    for (size_t b = 0; b < WINDOW_BUCKETS; b++)
        for (window_t *w = c->windows[b]; w; w = w->next) {
            out->windows++;
            out->listed += w->n;
        }
    pthread_mutex_unlock(&c->wlock);
}

void l1_use_clock(l1_t *c, int64_t (*now_ms)(void *arg), void *arg)
{
    if (!c)
        return;
    c->now_ms = now_ms;
    c->now_arg = arg;
}

void l1_free(l1_t *c)
{
    if (!c)
        return;
    l1_clear(c);
    for (size_t b = 0; b < WINDOW_BUCKETS; b++) {
        window_t *w = c->windows[b];
        while (w) {
            window_t *next = w->next;
            free(w->items);
            free(w);
            w = next;
        }
    }
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &c->shards[i];
        while (s->lru.lru_next != &s->lru)
            shard_remove(s, s->lru.lru_next);
        while (s->claims) {
            claim_t *cl = s->claims;
            s->claims = cl->next;
            wake_all(cl->waiters);
            free(cl->key);
            free(cl);
        }
        free(s->buckets);
        free(s->tags);
        pthread_mutex_destroy(&s->lock);
    }
    pthread_mutex_destroy(&c->wlock);
    free(c);
}
