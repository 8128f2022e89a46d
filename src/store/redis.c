/* store/redis.c — hiredis connection pool with outage detection and script calls. */
#include "store/redis.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "obs/log.h"
#include "util/alloc.h"

/* What the pool knows of Redis. Readers trust it only when up: after an outage, until every
 * window is marked cold (redis_mark_trusted), it may hold windows that missed writes. */
typedef enum {
    REDIS_UP,
    REDIS_DOWN,       /* a connect or a command failed; connects wait for retry_at */
    REDIS_RECOVERING, /* connected again after REDIS_DOWN; not trusted yet */
} redis_health_t;

/* A window this instance found Redis to hold every write of (its mark had reached PostgreSQL's),
 * in the epoch `epoch` (the pool's outage count then), or a tombstone: one distrusted since, its
 * `distrusted` the pool's distrust count then (0: never), which a check begun before it cannot
 * undo (redis_window_verified). gen 0: an empty slot. */
typedef struct {
    int64_t gen, day;
    unsigned long epoch;
    uint64_t distrusted;
    /* The highest number a notice said a commit of the window took, the highest its Redis mark
     * was seen to reach since it was verified, and since when (monotonic ms) the first falls
     * behind the second, 0 when it does not (redis_window_heard). */
    int64_t heard_seq, confirmed_seq, pending_ms;
} verified_t;

/* A trusted window whose Redis mark has not reached a number heard this long ago is read from
 * PostgreSQL until it does (or the rebuilder has compared the two again): its writer may have
 * died between its commit and its Redis update. The cache's max-age, the contract's bound on
 * how late another instance's write may show. */
#define HEARD_LIMIT_MS 1000

/* Windows whose committed changes this instance could not apply to Redis, to be marked cold. */
#define UNAPPLIED_MAX 1024

struct redis_pool {
    pthread_mutex_t lock;
    redis_url_t url;
    int connect_timeout_ms;
    int command_timeout_ms;
    int size;
    int n_idle;
    redis_conn_t **idle;
    redis_health_t health;
    unsigned long outages; /* times the pool went REDIS_DOWN */
    long long retry_at;  /* monotonic ms before which no connect is tried (REDIS_DOWN) */
    uint64_t redirects, retries; /* taken from each connection given back */
    verified_t *verified;  /* open addressing, `cap` slots (a power of two), `used` taken */
    size_t cap, used;
    int64_t newest_day;    /* of the windows verified: far older ones are dropped when it grows */
    uint64_t distrusts;    /* windows distrusted so far (redis_window_distrust, redis_note_unapplied) */
    struct {
        int64_t gen, day;
    } unapplied[UNAPPLIED_MAX];
    size_t n_unapplied;
    bool unapplied_overflow; /* more than UNAPPLIED_MAX: every window is to be marked cold */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

redis_pool_t *redis_pool_new(const char *url, int connect_timeout_ms, int command_timeout_ms, int size)
{
    if (!url || !*url)
        return NULL;
    redis_pool_t *p = xcalloc(1, sizeof *p);
    if (!redis_url_parse(url, &p->url)) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    p->outages = 1; /* the first epoch: 0 stands for "none" (redis_call_t.epoch) */
    p->connect_timeout_ms = connect_timeout_ms;
    p->command_timeout_ms = command_timeout_ms;
    p->size = size;
    p->idle = xcalloc((size_t)size, sizeof *p->idle);
    return p;
}

void redis_pool_free(redis_pool_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_idle; i++)
        redis_conn_free(p->idle[i]);
    pthread_mutex_destroy(&p->lock);
    free(p->idle);
    free(p->verified);
    free(p);
}

static redis_conn_t *connect_one(redis_pool_t *p)
{
    return redis_conn_open(&p->url, p->connect_timeout_ms, p->command_timeout_ms, NULL, 0);
}

/* Under p->lock: Redis failed. Connections lent out may still come back working: they are
 * closed then (redis_release), so that the next use connects again and passes through
 * REDIS_RECOVERING, where the windows that missed writes are found. */
static void go_down(redis_pool_t *p)
{
    if (p->health != REDIS_DOWN)
        p->outages++;
    p->health = REDIS_DOWN;
    p->retry_at = now_ms() + 1000;
    for (int i = 0; i < p->n_idle; i++)
        redis_conn_free(p->idle[i]);
    p->n_idle = 0;
}

redis_conn_t *redis_acquire(redis_pool_t *p)
{
    if (!p)
        return NULL;
    pthread_mutex_lock(&p->lock);
    if (p->n_idle > 0) {
        redis_conn_t *c = p->idle[--p->n_idle];
        pthread_mutex_unlock(&p->lock);
        return c;
    }
    if (p->health == REDIS_DOWN && now_ms() < p->retry_at) {
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    pthread_mutex_unlock(&p->lock);

    redis_conn_t *c = connect_one(p);
    pthread_mutex_lock(&p->lock);
    if (!c) {
        go_down(p);
    } else if (p->health == REDIS_DOWN) {
        p->health = REDIS_RECOVERING;
        log_info(NULL, "redis reachable again");
    }
    pthread_mutex_unlock(&p->lock);
    return c;
}

/* Take what connection `c` counted and saw into the pool; the caller holds p->lock. */
static void take_from(redis_pool_t *p, redis_conn_t *c)
{
    uint64_t redirects, retries;
    redis_conn_take_stats(c, &redirects, &retries);
    p->redirects += redirects;
    p->retries += retries;
    if (redis_conn_take_failovers(c) && p->health != REDIS_DOWN) {
        /* As after an outage: what Redis holds may miss acknowledged writes, and no window is
         * trusted until its mark is checked again. Counted also while recovering: a cleanup
         * under way must not mark Redis trusted over it. */
        p->outages++;
        p->health = REDIS_RECOVERING;
    }
}

void redis_release(redis_pool_t *p, redis_conn_t *c, bool failed)
{
    if (!p || !c)
        return;
    bool broken = redis_conn_broken(c);
    pthread_mutex_lock(&p->lock);
    take_from(p, c);
    /* While down, even a working connection is closed (see go_down). */
    if (failed || broken || p->health == REDIS_DOWN || p->n_idle >= p->size) {
        if (failed || broken) {
            if (p->health != REDIS_DOWN)
                log_warn(NULL, "redis marked down: %s", broken ? "a connection failed" : "command failed");
            go_down(p);
        }
        pthread_mutex_unlock(&p->lock);
        redis_conn_free(c);
        return;
    }
    p->idle[p->n_idle++] = c;
    pthread_mutex_unlock(&p->lock);
}

void redis_discard(redis_pool_t *p, redis_conn_t *c)
{
    if (p && c) {
        pthread_mutex_lock(&p->lock);
        take_from(p, c); /* a failover a rebuild saw counts too */
        pthread_mutex_unlock(&p->lock);
    }
    redis_conn_free(c);
}

void redis_pool_failover(redis_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->n_idle; i++)
        redis_conn_free(p->idle[i]);
    p->n_idle = 0;
    p->outages++;
    if (p->health == REDIS_UP)
        p->health = REDIS_RECOVERING;
    pthread_mutex_unlock(&p->lock);
}

void redis_pool_stats(redis_pool_t *p, uint64_t *redirects, uint64_t *retries)
{
    *redirects = *retries = 0;
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    *redirects = p->redirects;
    *retries = p->retries;
    pthread_mutex_unlock(&p->lock);
}

bool redis_recovering(redis_pool_t *p, unsigned long *outages)
{
    if (!p)
        return false;
    pthread_mutex_lock(&p->lock);
    bool r = p->health == REDIS_RECOVERING;
    if (outages)
        *outages = p->outages;
    pthread_mutex_unlock(&p->lock);
    return r;
}

void redis_mark_trusted(redis_pool_t *p, unsigned long outages)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    /* An outage that began during the caller's cleanup may have missed writes it did not see. */
    if (p->health == REDIS_RECOVERING && p->outages == outages)
        p->health = REDIS_UP;
    pthread_mutex_unlock(&p->lock);
}

bool redis_trusted(redis_pool_t *p)
{
    if (!p)
        return false;
    pthread_mutex_lock(&p->lock);
    bool t = p->health == REDIS_UP;
    pthread_mutex_unlock(&p->lock);
    return t;
}

bool redis_down(redis_pool_t *p)
{
    if (!p)
        return false;
    pthread_mutex_lock(&p->lock);
    bool d = p->health == REDIS_DOWN;
    pthread_mutex_unlock(&p->lock);
    return d;
}

const char *redis_state(redis_pool_t *p)
{
    if (!p)
        return "disabled";
    redis_conn_t *c = redis_acquire(p);
    if (!c)
        return "down";
    /* Every master: in a cluster, one that does not answer leaves its boards' slots unserved. */
    size_t n = redis_conn_masters(c);
    bool ok = n > 0;
    for (size_t m = 0; ok && m < n; m++) {
        const char *ping[] = {"PING"};
        redisReply *r = redis_conn_argv_on(c, m, 1, ping, NULL);
        ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
    }
    redis_release(p, c, !ok);
    return ok ? "ok" : "down";
}

void redis_script_init(redis_script_t *s)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s->source, strlen(s->source), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
}

redisReply *redis_run(redis_conn_t *c, const redis_script_t *script, int nkeys, int argc, const char *const *argv,
                      const size_t *argvlen)
{
    int n = argc + 3;
    const char **av = xmalloc(sizeof(char *) * (size_t)n);
    size_t *al = xmalloc(sizeof(size_t) * (size_t)n);
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = script->sha;
    al[1] = 40;
    av[2] = nk;
    al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = argvlen[i];
    }
    const char *key = nkeys > 0 ? argv[0] : NULL;
    size_t key_len = nkeys > 0 ? argvlen[0] : 0;
    redisReply *r = redis_conn_argv(c, key, key_len, n, av, al);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        av[0] = "EVAL";
        al[0] = 4;
        av[1] = script->source;
        al[1] = strlen(script->source);
        r = redis_conn_argv(c, key, key_len, n, av, al);
    }
    free(av);
    free(al);
    return r;
}

/* ---------------------------------------------------------------- windows trusted */

unsigned long redis_epoch(redis_pool_t *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    unsigned long e = p->outages;
    pthread_mutex_unlock(&p->lock);
    return e;
}

static size_t slot_of(int64_t gen, int64_t day, size_t cap)
{
    uint64_t h = (uint64_t)gen * 0x9e3779b97f4a7c15ULL ^ (uint64_t)day * 0xc2b2ae3d27d4eb4fULL;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

/* Under p->lock: the slot of (gen, day), or the empty slot where it would go. */
static verified_t *find_verified(redis_pool_t *p, int64_t gen, int64_t day)
{
    for (size_t i = slot_of(gen, day, p->cap);; i = (i + 1) & (p->cap - 1)) {
        verified_t *v = &p->verified[i];
        if (v->gen == 0 || (v->gen == gen && v->day == day))
            return v;
    }
}

bool redis_window_trusted(redis_pool_t *p, int64_t gen, int64_t day, unsigned long *epoch)
{
    if (!p)
        return false;
    pthread_mutex_lock(&p->lock);
    if (epoch)
        *epoch = p->outages;
    bool t = p->health == REDIS_UP && p->cap > 0;
    if (t) {
        const verified_t *v = find_verified(p, gen, day);
        t = v->gen == gen && v->epoch == p->outages &&
            !(v->pending_ms != 0 && now_ms() - v->pending_ms > HEARD_LIMIT_MS);
    }
    pthread_mutex_unlock(&p->lock);
    return t;
}

/* Under p->lock: whether a verified window may still be read: within about two months of the
 * newest one (older ones are never current or previous), or a board's only window (day 0, a
 * board that never resets). */
static bool worth_keeping(const redis_pool_t *p, const verified_t *v)
{
    return v->day == 0 || v->day >= p->newest_day - 70;
}

/* Under p->lock: whether the table keeps `v` when it grows: a window verified in this epoch, or
 * distrusted (a check under way when it was must still find it), and worth keeping. */
static bool keeps(const redis_pool_t *p, const verified_t *v)
{
    return (v->epoch == p->outages || v->distrusted != 0) && worth_keeping(p, v);
}

/* Under p->lock: the table again, at a size for what is worth keeping (keeps). */
static void regrow(redis_pool_t *p)
{
    size_t keep = 0;
    for (size_t i = 0; i < p->cap; i++)
        keep += p->verified[i].gen != 0 && keeps(p, &p->verified[i]);
    size_t cap = 64;
    while (cap < 4 * (keep + 1))
        cap *= 2;
    verified_t *old = p->verified;
    size_t old_cap = p->cap;
    p->verified = xcalloc(cap, sizeof *p->verified);
    p->cap = cap;
    p->used = 0;
    for (size_t i = 0; i < old_cap; i++) {
        const verified_t *v = &old[i];
        if (v->gen != 0 && keeps(p, v)) {
            *find_verified(p, v->gen, v->day) = *v;
            p->used++;
        }
    }
    free(old);
}

void redis_check_begin(redis_pool_t *p, redis_check_t *out)
{
    *out = (redis_check_t){0, 0};
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    out->epoch = p->outages;
    out->distrusts = p->distrusts;
    pthread_mutex_unlock(&p->lock);
}

/* Under p->lock: the slot of (gen, day), taken if it was free (the table grown first if need be). */
static verified_t *take_slot(redis_pool_t *p, int64_t gen, int64_t day)
{
    if (day > p->newest_day)
        p->newest_day = day;
    if (p->cap == 0 || 2 * (p->used + 1) > p->cap)
        regrow(p);
    verified_t *v = find_verified(p, gen, day);
    if (v->gen == 0) {
        p->used++;
        *v = (verified_t){gen, day, 0, 0, 0, 0, 0};
    }
    return v;
}

void redis_window_verified(redis_pool_t *p, int64_t gen, int64_t day, const redis_check_t *check, int64_t mark)
{
    if (!p || gen == 0)
        return;
    pthread_mutex_lock(&p->lock);
    /* An outage that began since the check, or a distrust of the window heard since (a commit
     * another instance could not apply to Redis, say), and it proves nothing now. */
    verified_t *v = check->epoch == p->outages ? take_slot(p, gen, day) : NULL;
    if (v && v->distrusted <= check->distrusts) {
        v->epoch = check->epoch;
        if (mark > v->confirmed_seq)
            v->confirmed_seq = mark;
        /* Numbers heard during the check may lie past what it compared: to be seen reached. */
        v->pending_ms = v->heard_seq > v->confirmed_seq ? now_ms() : 0;
    }
    pthread_mutex_unlock(&p->lock);
}

/* Under p->lock: window (gen, day) is not trusted, and no check begun before now may trust it. */
static void distrust_locked(redis_pool_t *p, int64_t gen, int64_t day)
{
    verified_t *v = take_slot(p, gen, day);
    v->epoch = p->outages - 1; /* a tombstone: linear probing needs the slot */
    v->distrusted = ++p->distrusts;
}

void redis_window_distrust(redis_pool_t *p, int64_t gen, int64_t day)
{
    if (!p || gen == 0)
        return;
    pthread_mutex_lock(&p->lock);
    distrust_locked(p, gen, day);
    pthread_mutex_unlock(&p->lock);
}

void redis_window_heard(redis_pool_t *p, int64_t gen, int64_t day, int64_t seq)
{
    if (!p || gen == 0)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->cap > 0) {
        verified_t *v = find_verified(p, gen, day);
        if (v->gen == gen && seq > v->heard_seq) {
            v->heard_seq = seq;
            if (seq > v->confirmed_seq && v->pending_ms == 0)
                v->pending_ms = now_ms();
        }
    }
    pthread_mutex_unlock(&p->lock);
}

size_t redis_windows_unconfirmed(redis_pool_t *p, int min_age_ms, int64_t *gens, int64_t *days, size_t max)
{
    if (!p)
        return 0;
    size_t n = 0;
    pthread_mutex_lock(&p->lock);
    long long now = now_ms();
    for (size_t i = 0; i < p->cap && n < max; i++) {
        const verified_t *v = &p->verified[i];
        if (v->gen != 0 && v->epoch == p->outages && v->pending_ms != 0 && now - v->pending_ms >= min_age_ms) {
            gens[n] = v->gen;
            days[n++] = v->day;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

bool redis_window_mark_seen(redis_pool_t *p, int64_t gen, int64_t day, int64_t mark)
{
    if (!p || gen == 0)
        return false;
    bool late = false;
    pthread_mutex_lock(&p->lock);
    if (p->cap > 0) {
        verified_t *v = find_verified(p, gen, day);
        if (v->gen == gen && mark > v->confirmed_seq) {
            v->confirmed_seq = mark;
            /* The mark moved: what it has not reached yet was heard since (about: numbers come in
             * order, and a gap would have stopped it). */
            v->pending_ms = v->heard_seq > mark ? now_ms() : 0;
        }
        late = v->gen == gen && v->pending_ms != 0 && now_ms() - v->pending_ms > HEARD_LIMIT_MS;
    }
    pthread_mutex_unlock(&p->lock);
    return late;
}

void redis_note_unapplied(redis_pool_t *p, int64_t gen, int64_t day)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    bool known = false;
    for (size_t i = 0; i < p->n_unapplied && !known; i++)
        known = p->unapplied[i].gen == gen && p->unapplied[i].day == day;
    if (!known) {
        if (p->n_unapplied < UNAPPLIED_MAX) {
            p->unapplied[p->n_unapplied].gen = gen;
            p->unapplied[p->n_unapplied].day = day;
            p->n_unapplied++;
        } else {
            p->unapplied_overflow = true;
        }
    }
    if (gen != 0)
        distrust_locked(p, gen, day);
    pthread_mutex_unlock(&p->lock);
}

void redis_distrust_all(redis_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->unapplied_overflow = true;
    p->outages++;
    if (p->health == REDIS_UP)
        p->health = REDIS_RECOVERING;
    pthread_mutex_unlock(&p->lock);
}

size_t redis_unapplied(redis_pool_t *p, int64_t *gens, int64_t *days, size_t max, bool *overflow)
{
    *overflow = false;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    size_t n = p->n_unapplied < max ? p->n_unapplied : max;
    for (size_t i = 0; i < n; i++) {
        gens[i] = p->unapplied[i].gen;
        days[i] = p->unapplied[i].day;
    }
    *overflow = p->unapplied_overflow;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void redis_unapplied_done(redis_pool_t *p, const int64_t *gens, const int64_t *days, size_t n, bool overflow)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < p->n_unapplied; i++) {
            if (p->unapplied[i].gen == gens[k] && p->unapplied[i].day == days[k]) {
                p->unapplied[i] = p->unapplied[--p->n_unapplied];
                break;
            }
        }
    }
    if (overflow)
        p->unapplied_overflow = false;
    pthread_mutex_unlock(&p->lock);
}
