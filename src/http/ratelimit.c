/* http/ratelimit.c — see ratelimit.h. */
#include "http/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define SHARDS 64
#define CLIENT_MAX 80 /* "k" + a key's index, or "a" + an IPv6 address */

typedef struct client {
    uint64_t hash;
    char id[CLIENT_MAX];
    double tokens[RL_KINDS]; /* per rl_kind_t */
    int64_t at_ms[RL_KINDS]; /* when each was last brought up to date */
    int strikes[RL_KINDS];   /* refusals since the last request let through */
    struct client *hnext;  /* its chain */
    struct client *prev, *next; /* its shard's recency list, most recent first */
} client_t;

typedef struct {
    pthread_mutex_t lock;
    client_t **chains;
    size_t n_chains;
    client_t lru;          /* sentinel */
    size_t n;
} shard_t;

struct ratelimit {
    /* Rates and bursts, set anew by ratelimit_configure (SIGHUP): read and written under
     * `conf`, a reader-writer lock that takes never wait on each other for. */
    pthread_rwlock_t conf;
    double rate[RL_KINDS];
    double burst[RL_KINDS];
    atomic_bool active;    /* a rate is set: what the hot path asks, without the lock */
    atomic_ullong refused[RL_KINDS];
    size_t per_shard;      /* clients a shard keeps */
    shard_t shards[SHARDS];
    atomic_size_t clients;
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ^ (h >> 29);
}

ratelimit_t *ratelimit_new(double reads_per_s, double writes_per_s, double strong_per_s, int burst, size_t max_clients)
{
    ratelimit_t *rl = xcalloc(1, sizeof *rl);
    pthread_rwlock_init(&rl->conf, NULL);
    ratelimit_configure(rl, reads_per_s, writes_per_s, strong_per_s, burst);
    rl->per_shard = max_clients / SHARDS > 0 ? max_clients / SHARDS : 1;
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &rl->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->n_chains = 256;
        while (s->n_chains < rl->per_shard)
            s->n_chains *= 2;
        s->chains = xcalloc(s->n_chains, sizeof *s->chains);
        s->lru.next = s->lru.prev = &s->lru;
    }
    return rl;
}

void ratelimit_configure(ratelimit_t *rl, double reads_per_s, double writes_per_s, double strong_per_s, int burst)
{
    pthread_rwlock_wrlock(&rl->conf);
    rl->rate[RL_READ] = reads_per_s > 0 ? reads_per_s : 0;
    rl->rate[RL_WRITE] = writes_per_s > 0 ? writes_per_s : 0;
    rl->rate[RL_STRONG] = strong_per_s > 0 ? strong_per_s : 0;
    for (int k = 0; k < RL_KINDS; k++) /* no burst given: one second's worth */
        rl->burst[k] = burst > 0 ? burst : fmax(1.0, ceil(rl->rate[k]));
    atomic_store(&rl->active, rl->rate[RL_READ] > 0 || rl->rate[RL_WRITE] > 0 || rl->rate[RL_STRONG] > 0);
    pthread_rwlock_unlock(&rl->conf);
}

bool ratelimit_active(ratelimit_t *rl)
{
    return rl && atomic_load(&rl->active);
}

void ratelimit_free(ratelimit_t *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < SHARDS; i++) {
        shard_t *s = &rl->shards[i];
        for (client_t *c = s->lru.next; c != &s->lru;) {
            client_t *next = c->next;
            free(c);
            c = next;
        }
        free(s->chains);
        pthread_mutex_destroy(&s->lock);
    }
    pthread_rwlock_destroy(&rl->conf);
    free(rl);
}

static void unlink_lru(client_t *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
}

static void push_front(shard_t *s, client_t *c)
{
    c->next = s->lru.next;
    c->prev = &s->lru;
    s->lru.next->prev = c;
    s->lru.next = c;
}

/* The client's record, made (with full buckets) when absent; the least recent goes when the
 * shard is full. Shard lock held. */
static client_t *client_get(ratelimit_t *rl, shard_t *s, uint64_t h, const char *id, int64_t now_ms, double burst)
{
    client_t **pp = &s->chains[h & (s->n_chains - 1)];
    for (client_t *c = *pp; c; c = c->hnext)
        if (c->hash == h && strcmp(c->id, id) == 0) {
            unlink_lru(c);
            push_front(s, c);
            return c;
        }
    if (s->n >= rl->per_shard) {
        client_t *old = s->lru.prev;
        client_t **op = &s->chains[old->hash & (s->n_chains - 1)];
        while (*op != old)
            op = &(*op)->hnext;
        *op = old->hnext;
        unlink_lru(old);
        free(old);
        s->n--;
        atomic_fetch_sub(&rl->clients, 1);
    }
    client_t *c = xcalloc(1, sizeof *c);
    c->hash = h;
    snprintf(c->id, sizeof c->id, "%s", id);
    for (int k = 0; k < RL_KINDS; k++) {
        c->tokens[k] = burst;
        c->at_ms[k] = now_ms;
    }
    c->hnext = *pp;
    *pp = c;
    push_front(s, c);
    s->n++;
    atomic_fetch_add(&rl->clients, 1);
    return c;
}

/* ratelimit_take, or with `take` false only whether the tokens are there. */
static void take_or_peek(ratelimit_t *rl, const char *client, rl_kind_t kind, int cost, int64_t now_ms, bool take,
                         rl_verdict_t *out)
{
    memset(out, 0, sizeof *out);
    if (!ratelimit_active(rl))
        return;
    pthread_rwlock_rdlock(&rl->conf);
    /* A request needs its whole cost in the bucket (API.md: over it, 429): a scores:batch of more
     * items than the burst is never let through, whatever the tokens. */
    double rate = rl->rate[kind], burst = rl->burst[kind], want = cost > 0 ? cost : 1;
    pthread_rwlock_unlock(&rl->conf);
    if (rate <= 0)
        return;
    uint64_t h = hash_id(client);
    shard_t *s = &rl->shards[h % SHARDS];
    pthread_mutex_lock(&s->lock);
    client_t *c = client_get(rl, s, h, client, now_ms, burst);
    int64_t dt = now_ms - c->at_ms[kind];
    if (dt > 0) {
        c->tokens[kind] = fmin(burst, c->tokens[kind] + rate * (double)dt / 1000.0);
        c->at_ms[kind] = now_ms;
    }
    out->refused = c->tokens[kind] < want;
    if (!out->refused && take)
        c->tokens[kind] -= want;
    if (out->refused && c->strikes[kind] < INT32_MAX)
        c->strikes[kind]++;
    else if (!out->refused && take)
        c->strikes[kind] = 0;
    out->strikes = c->strikes[kind];
    double tokens = c->tokens[kind];
    pthread_mutex_unlock(&s->lock);
    if (out->refused)
        atomic_fetch_add(&rl->refused[kind], 1);
    out->limited = true;
    out->limit = (int)burst;
    out->remaining = tokens > 0 ? (int)floor(tokens) : 0;
    out->reset_s = (int)ceil(fmax(0.0, burst - tokens) / rate);
    out->over_burst = want > burst;
    /* Over the burst, no wait is enough: the time until the bucket is full, as RateLimit-Reset. */
    double need = (out->over_burst ? burst : want) - tokens;
    out->retry_after_s = out->refused ? (int)fmax(1.0, ceil(need / rate)) : 0;
}

void ratelimit_take(ratelimit_t *rl, const char *client, rl_kind_t kind, int cost, int64_t now_ms, rl_verdict_t *out)
{
    take_or_peek(rl, client, kind, cost, now_ms, true, out);
}

void ratelimit_peek(ratelimit_t *rl, const char *client, rl_kind_t kind, int64_t now_ms, rl_verdict_t *out)
{
    take_or_peek(rl, client, kind, 1, now_ms, false, out);
}

size_t ratelimit_clients(ratelimit_t *rl)
{
    return rl ? atomic_load(&rl->clients) : 0;
}

unsigned long long ratelimit_refused(ratelimit_t *rl, rl_kind_t kind)
{
    return rl ? atomic_load(&rl->refused[kind]) : 0;
}
