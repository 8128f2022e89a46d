/* cache/rank_tier.c — the in-process rank tier; the design and its invariants are in rank_tier.h. */
#include "cache/rank_tier.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/notice.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/clock.h"

/* Transactions heard while a window loads are kept up to this many bytes; past it the load is
 * begun again (a load that slow would replay too much anyway). */
#define QUEUE_BYTES_MAX (64u << 20)
/* A window whose load failed is asked for again after this. (One that alone exceeds the budget
 * is not asked for again until it changes: see too_big.) */
#define FAILED_RETRY_MS 1000

typedef struct {
    int64_t seq;
    char *text; /* owned: its W lines */
    size_t len;
} heard_t;

typedef struct tier_window {
    struct tier_window *next;
    int64_t gen, day;
    pthread_rwlock_t lock;
    /* under lock */
    bool ready;            /* ix holds the window as of transaction `applied` */
    bool want_load;        /* a loader should (re)load it */
    bool loading;          /* a loader took it (token) and has not installed it yet */
    uint64_t token;        /* bumped by every reload asked: an install of an older load is dropped */
    int64_t retry_ms;      /* not asked for again before (a failed load) */
    bool too_big;          /* alone over the budget: not loaded again, whatever reads or reconnects,
                            * until the window changes wholesale ("P": an import may have made it
                            * smaller; writes only add players, a deletion's D takes one out) */
    rank_index_t *ix;      /* owned; NULL unless ready */
    int64_t applied;
    heard_t *queue;        /* heard while loading, in the order heard */
    size_t n_queue, cap_queue, queue_bytes;
    int64_t part_seq;      /* the transaction whose parts are being gathered, 0: none */
    int parts_seen, parts_total;
    buf_t parts;
    size_t bytes;          /* ri_bytes(ix) as last counted into the tier's total */
    /* any thread */
    _Atomic int64_t acked; /* the highest number this instance's own commits took */
    _Atomic int64_t last_read_ms;
} tier_window_t;

struct rank_tier {
    size_t budget;
    int stale_ms;                /* the longest the tier answers without having heard it is current */
    pthread_rwlock_t map;        /* the list of windows */
    tier_window_t *windows;
    pthread_mutex_t kick_mu;     /* the loader's wake-up */
    pthread_cond_t kick_cv;
    bool kicked;
    atomic_bool listening;       /* the listener is connected: loads and answers need it */
    _Atomic int64_t caught_up_ms; /* monotonic ms before which every commit is heard (a heartbeat's
                                   * sending, heard back: rank_tier_caught_up); 0: never */
    atomic_bool over_budget;     /* the stream grew a window past the budget: the loader enforces it */
    atomic_size_t bytes;
    atomic_ullong loads, reloads, evictions, too_big, answered, missed, stale;
    atomic_ullong load_failures, loads_dropped;
    _Atomic int64_t last_load_ms, last_load_players;
};

/* Writers first: readers come without pause on a busy instance, and with glibc's default
 * (readers first) the stream's writes or a window's removal could wait for ever. No thread takes
 * a read lock it holds again, so this cannot deadlock. */
static void rwlock_init(pthread_rwlock_t *l)
{
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(l, &a);
    pthread_rwlockattr_destroy(&a);
}

rank_tier_t *rank_tier_new(size_t budget, int stale_ms)
{
    if (budget == 0)
        return NULL;
    rank_tier_t *t = xcalloc(1, sizeof *t);
    t->budget = budget;
    t->stale_ms = stale_ms;
    rwlock_init(&t->map);
    pthread_mutex_init(&t->kick_mu, NULL);
    pthread_cond_init(&t->kick_cv, NULL);
    return t;
}

static void queue_clear(tier_window_t *w)
{
    for (size_t i = 0; i < w->n_queue; i++)
        free(w->queue[i].text);
    w->n_queue = 0;
    w->queue_bytes = 0;
}

static void window_free(tier_window_t *w)
{
    queue_clear(w);
    free(w->queue);
    ri_free(w->ix);
    buf_free(&w->parts);
    pthread_rwlock_destroy(&w->lock);
    free(w);
}

void rank_tier_free(rank_tier_t *t)
{
    if (!t)
        return;
    for (tier_window_t *w = t->windows, *next; w; w = next) {
        next = w->next;
        window_free(w);
    }
    pthread_rwlock_destroy(&t->map);
    pthread_mutex_destroy(&t->kick_mu);
    pthread_cond_destroy(&t->kick_cv);
    free(t);
}

static void kick(rank_tier_t *t)
{
    pthread_mutex_lock(&t->kick_mu);
    t->kicked = true;
    pthread_cond_signal(&t->kick_cv);
    pthread_mutex_unlock(&t->kick_mu);
}

static void enforce_budget(rank_tier_t *t, int64_t keep_gen, int64_t keep_day, bool has_keep);

void rank_tier_wake(rank_tier_t *t)
{
    if (t)
        kick(t);
}

/* Under the map lock. */
static tier_window_t *find(const rank_tier_t *t, int64_t gen, int64_t day)
{
    for (tier_window_t *w = t->windows; w; w = w->next)
        if (w->gen == gen && w->day == day)
            return w;
    return NULL;
}

/* Recount the window's bytes into the tier's total. Under the window's write lock. */
static void recount(rank_tier_t *t, tier_window_t *w)
{
    size_t now = w->ix ? ri_bytes(w->ix) : 0;
    if (now >= w->bytes)
        atomic_fetch_add(&t->bytes, now - w->bytes);
    else
        atomic_fetch_sub(&t->bytes, w->bytes - now);
    w->bytes = now;
    if (atomic_load(&t->bytes) > t->budget && !atomic_exchange(&t->over_budget, true))
        kick(t); /* the loader evicts (this thread holds locks it would need) */
}

/* The window's copy can no longer be trusted: drop it and ask for a load. Under its write lock;
 * the caller kicks the loader. */
static void unready(rank_tier_t *t, tier_window_t *w)
{
    if (w->ready || w->ix)
        atomic_fetch_add(&t->reloads, 1);
    w->ready = false;
    ri_free(w->ix);
    w->ix = NULL;
    recount(t, w);
    queue_clear(w);
    w->token++;
    if (w->too_big)
        return; /* a reload would not fit either (rank_tier_window_changed clears it first) */
    w->want_load = true;
    w->retry_ms = 0;
}

/* ---------------------------------------------------------------- applying the stream */

/* Apply one transaction's W and D lines (a D: a player's deletion took the standing out); false
 * when a line is not one rankd writes (then the window must be loaded again). Under the
 * window's write lock, ready. */
static bool apply_lines(tier_window_t *w, const char *text, size_t len)
{
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0) {
            notice_change_t c;
            if (!notice_parse_change(p, n, &c) || c.gen != w->gen || c.day != w->day)
                return false;
            if (c.removed)
                (void)ri_remove(w->ix, c.player, c.player_len); /* absent already: nothing to take out */
            else
                ri_set(w->ix, c.player, c.player_len, c.new_sort_key, c.new_ms, c.metadata, c.metadata_len);
        }
        p += n + 1;
    }
    return true;
}

/* Transaction `seq` of the window, heard whole. Under the window's write lock. */
static void transaction_heard(rank_tier_t *t, tier_window_t *w, int64_t seq, const char *text, size_t len)
{
    if (!w->ready) {
        if (!w->want_load && !w->loading)
            return; /* no load to replay it on (a failed one, or too big): the next starts afresh */
        if (w->queue_bytes + len > QUEUE_BYTES_MAX) {
            unready(t, w);
            kick(t);
            return;
        }
        if (w->n_queue == w->cap_queue) {
            w->cap_queue = w->cap_queue ? w->cap_queue * 2 : 16;
            w->queue = xrealloc(w->queue, w->cap_queue * sizeof *w->queue);
        }
        char *copy = xmalloc(len + 1);
        memcpy(copy, text, len);
        copy[len] = '\0';
        w->queue[w->n_queue++] = (heard_t){seq, copy, len};
        w->queue_bytes += len;
        return;
    }
    if (seq <= w->applied)
        return; /* applied already (this instance's writer did) */
    if (seq != w->applied + 1 || !apply_lines(w, text, len)) {
        log_info(NULL, "rank tier: window %lld/%lld heard transaction %lld after %lld; loading it again",
                 (long long)w->gen, (long long)w->day, (long long)seq, (long long)w->applied);
        unready(t, w);
        kick(t);
        return;
    }
    w->applied = seq;
    recount(t, w);
}

void rank_tier_heard(rank_tier_t *t, int64_t gen, int64_t day, int64_t seq, int part, int parts, const char *lines,
                     size_t len)
{
    if (!t)
        return;
    pthread_rwlock_rdlock(&t->map);
    tier_window_t *w = find(t, gen, day);
    if (w) {
        pthread_rwlock_wrlock(&w->lock);
        if (w->part_seq != seq) {
            /* A transaction's parts arrive together: one left unfinished was lost. */
            if (w->part_seq != 0 && w->parts_seen < w->parts_total && (w->ready || w->want_load)) {
                unready(t, w);
                kick(t);
            }
            w->part_seq = seq;
            w->parts_seen = 0;
            w->parts_total = parts;
            buf_reset(&w->parts);
        }
        (void)part; /* the parts of one transaction may come in any order: only their count matters */
        if (len) {
            if (w->parts.len)
                buf_putc(&w->parts, '\n');
            buf_append(&w->parts, lines, len);
        }
        if (++w->parts_seen == w->parts_total) {
            transaction_heard(t, w, seq, w->parts.data ? w->parts.data : "", w->parts.len);
            buf_reset(&w->parts);
        }
        pthread_rwlock_unlock(&w->lock);
    }
    pthread_rwlock_unlock(&t->map);
}

void rank_tier_committed(rank_tier_t *t, int64_t gen, int64_t day, int64_t seq, const tier_change_t *changes, size_t n)
{
    if (!t)
        return;
    pthread_rwlock_rdlock(&t->map);
    tier_window_t *w = find(t, gen, day);
    if (w) {
        pthread_rwlock_wrlock(&w->lock);
        if (atomic_load(&w->acked) < seq)
            atomic_store(&w->acked, seq);
        if (w->ready && changes && seq == w->applied + 1) {
            for (size_t i = 0; i < n; i++)
                ri_set(w->ix, changes[i].player, changes[i].player_len, changes[i].sort_key, changes[i].achieved_ms,
                       changes[i].metadata, changes[i].metadata_len);
            w->applied = seq;
            recount(t, w);
        }
        pthread_rwlock_unlock(&w->lock);
    }
    pthread_rwlock_unlock(&t->map);
}

void rank_tier_window_changed(rank_tier_t *t, int64_t gen, int64_t day)
{
    if (!t)
        return;
    pthread_rwlock_rdlock(&t->map);
    tier_window_t *w = find(t, gen, day);
    if (w) {
        pthread_rwlock_wrlock(&w->lock);
        w->too_big = false; /* it may fit now: loaded again, once */
        unready(t, w);
        pthread_rwlock_unlock(&w->lock);
    }
    pthread_rwlock_unlock(&t->map);
    if (w)
        kick(t);
}

void rank_tier_listening(rank_tier_t *t)
{
    if (!t)
        return;
    atomic_store(&t->listening, true);
    kick(t); /* the windows waiting for it load now */
}

void rank_tier_caught_up(rank_tier_t *t, int64_t sent_mono_ms)
{
    if (!t)
        return;
    int64_t was = atomic_load(&t->caught_up_ms);
    while (sent_mono_ms > was && !atomic_compare_exchange_weak(&t->caught_up_ms, &was, sent_mono_ms))
        ;
}

int64_t rank_tier_caught_up_ms(rank_tier_t *t)
{
    return t ? atomic_load(&t->caught_up_ms) : 0;
}

bool rank_tier_holds_any(rank_tier_t *t)
{
    if (!t || pthread_rwlock_tryrdlock(&t->map) != 0)
        return t != NULL; /* busy: some window is being added or dropped */
    bool any = t->windows != NULL;
    pthread_rwlock_unlock(&t->map);
    return any;
}

void rank_tier_lost(rank_tier_t *t)
{
    if (!t)
        return;
    atomic_store(&t->listening, false);
    pthread_rwlock_rdlock(&t->map);
    for (tier_window_t *w = t->windows; w; w = w->next) {
        pthread_rwlock_wrlock(&w->lock);
        unready(t, w);
        w->part_seq = 0;
        buf_reset(&w->parts);
        pthread_rwlock_unlock(&w->lock);
    }
    pthread_rwlock_unlock(&t->map);
    kick(t);
}

/* Unlink and free windows for which drop(w, arg) holds. Under the map's write lock. */
static void drop_where(rank_tier_t *t, bool (*drop)(const tier_window_t *w, const void *arg), const void *arg)
{
    for (tier_window_t **l = &t->windows; *l;) {
        tier_window_t *w = *l;
        if (!drop(w, arg)) {
            l = &w->next;
            continue;
        }
        *l = w->next;
        atomic_fetch_sub(&t->bytes, w->bytes);
        window_free(w);
    }
}

static bool of_gen(const tier_window_t *w, const void *arg)
{
    return w->gen == *(const int64_t *)arg;
}

void rank_tier_board_deleted(rank_tier_t *t, int64_t gen)
{
    if (!t)
        return;
    pthread_rwlock_wrlock(&t->map);
    drop_where(t, of_gen, &gen);
    pthread_rwlock_unlock(&t->map);
}

/* ---------------------------------------------------------------- loading */

static bool idle(const tier_window_t *w, const void *arg)
{
    return atomic_load(&w->last_read_ms) < *(const int64_t *)arg;
}

bool rank_tier_next_load(rank_tier_t *t, int wait_ms, int64_t now_ms, int64_t idle_ms, int64_t *gen, int64_t *day,
                         uint64_t *token)
{
    for (int round = 0; round < 2; round++) {
        bool found = false;
        pthread_rwlock_rdlock(&t->map);
        /* A load must begin after the listener listens: what commits after its snapshot is then
         * heard. */
        for (tier_window_t *w = t->windows; w && !found; w = w->next) {
            pthread_rwlock_wrlock(&w->lock);
            /* Listening checked under the window's lock: rank_tier_lost clears it before it takes
             * any, so a window taken here is either loaded while listening or made unready (and
             * its token moved on) by the loss after. */
            if (w->want_load && atomic_load(&t->listening)) {
                w->want_load = false;
                w->loading = true;
                *gen = w->gen, *day = w->day, *token = w->token;
                found = true;
            }
            pthread_rwlock_unlock(&w->lock);
        }
        pthread_rwlock_unlock(&t->map);
        if (found) {
            atomic_fetch_add(&t->loads, 1);
            return true;
        }
        if (round == 1)
            break;
        if (atomic_load(&t->over_budget))
            enforce_budget(t, 0, 0, false);
        int64_t before = now_ms - idle_ms;
        bool any_idle = false;
        pthread_rwlock_rdlock(&t->map);
        for (tier_window_t *w = t->windows; w && !any_idle; w = w->next)
            any_idle = idle(w, &before);
        pthread_rwlock_unlock(&t->map);
        if (any_idle) {
            pthread_rwlock_wrlock(&t->map);
            size_t had = 0, has = 0;
            for (tier_window_t *w = t->windows; w; w = w->next)
                had++;
            drop_where(t, idle, &before);
            for (tier_window_t *w = t->windows; w; w = w->next)
                has++;
            atomic_fetch_add(&t->evictions, had - has);
            pthread_rwlock_unlock(&t->map);
        }
        pthread_mutex_lock(&t->kick_mu);
        if (!t->kicked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&t->kick_cv, &t->kick_mu, &ts);
        }
        t->kicked = false;
        pthread_mutex_unlock(&t->kick_mu);
    }
    return false;
}

/* The least recently read window other than `keep` that holds bytes, or NULL. Under the map lock. */
static tier_window_t *coldest(const rank_tier_t *t, const tier_window_t *keep)
{
    tier_window_t *c = NULL;
    for (tier_window_t *w = t->windows; w; w = w->next)
        if (w != keep && w->bytes > 0 && (!c || atomic_load(&w->last_read_ms) < atomic_load(&c->last_read_ms)))
            c = w;
    return c;
}

static bool is_window(const tier_window_t *w, const void *arg)
{
    return w == arg;
}

/* Window `w` alone needs `bytes`, more than the budget: drop what it holds and remember it, so
 * that no read loads it again (a scan of the primary each time, thrown away) until it changes
 * wholesale. Under its write lock (or the map's). */
static void mark_too_big(rank_tier_t *t, tier_window_t *w, size_t bytes)
{
    log_warn(NULL, "rank tier: window %lld/%lld needs %s%zu bytes, more than cache.rank_tier (%zu): not kept, and not"
                   " loaded again until it changes (an import, a deletion) or the budget grows (a restart)",
             (long long)w->gen, (long long)w->day, w->ix ? "" : "more than ", bytes, t->budget);
    ri_free(w->ix);
    w->ix = NULL;
    w->ready = false;
    w->loading = false;
    recount(t, w);
    queue_clear(w);
    w->too_big = true;
    w->want_load = false;
    w->token++;
    w->retry_ms = 0;
    atomic_fetch_add(&t->too_big, 1);
}

/* Past the budget: a window alone larger than the budget is not kept (the others stay); then
 * the least recently read windows go, `keep` (the one just loaded, when not NULL) last of all. */
static void enforce_budget(rank_tier_t *t, int64_t keep_gen, int64_t keep_day, bool has_keep)
{
    atomic_store(&t->over_budget, false);
    if (atomic_load(&t->bytes) <= t->budget)
        return;
    pthread_rwlock_wrlock(&t->map); /* excludes every window lock: no reader holds one */
    for (tier_window_t *w = t->windows; w; w = w->next)
        if (w->bytes > t->budget)
            mark_too_big(t, w, w->bytes);
    tier_window_t *keep = has_keep ? find(t, keep_gen, keep_day) : NULL, *c;
    while (atomic_load(&t->bytes) > t->budget && (c = coldest(t, keep))) {
        drop_where(t, is_window, c);
        atomic_fetch_add(&t->evictions, 1);
    }
    pthread_rwlock_unlock(&t->map);
}

void rank_tier_install(rank_tier_t *t, int64_t gen, int64_t day, uint64_t token, rank_index_t *ix, int64_t seq)
{
    pthread_rwlock_rdlock(&t->map);
    tier_window_t *w = find(t, gen, day);
    bool kept = false;
    if (w) {
        pthread_rwlock_wrlock(&w->lock);
        if (w->token == token && !w->want_load) {
            w->loading = false;
            ri_free(w->ix);
            w->ix = ix;
            w->applied = seq;
            w->ready = true;
            kept = true;
            /* What was heard while it loaded, in order; what the snapshot holds is skipped. */
            for (size_t i = 0; i < w->n_queue && w->ready; i++) {
                heard_t *h = &w->queue[i];
                if (h->seq <= w->applied)
                    continue;
                if (h->seq != w->applied + 1 || !apply_lines(w, h->text, h->len)) {
                    unready(t, w);
                    kick(t);
                    break;
                }
                w->applied = h->seq;
            }
            queue_clear(w);
            recount(t, w);
        }
        pthread_rwlock_unlock(&w->lock);
    }
    pthread_rwlock_unlock(&t->map);
    if (!kept) {
        /* Asked for again while it loaded (a gap, a P, a lost listener), or gone: its next load
         * is queued already, if any. */
        atomic_fetch_add(&t->loads_dropped, 1);
        log_info(NULL, "rank tier: the load of window %lld/%lld was overtaken (the window changed or went meanwhile)",
                 (long long)gen, (long long)day);
        ri_free(ix);
    } else {
        enforce_budget(t, gen, day, true);
    }
}

void rank_tier_note_load(rank_tier_t *t, int64_t ms, int64_t players)
{
    atomic_store(&t->last_load_ms, ms);
    atomic_store(&t->last_load_players, players);
}

size_t rank_tier_budget(const rank_tier_t *t)
{
    return t ? t->budget : 0;
}

void rank_tier_load_too_big(rank_tier_t *t, int64_t gen, int64_t day, uint64_t token, size_t bytes)
{
    pthread_rwlock_rdlock(&t->map);
    tier_window_t *w = find(t, gen, day);
    if (w) {
        pthread_rwlock_wrlock(&w->lock);
        if (w->token == token && !w->want_load)
            mark_too_big(t, w, bytes);
        pthread_rwlock_unlock(&w->lock);
    }
    pthread_rwlock_unlock(&t->map);
}

void rank_tier_load_failed(rank_tier_t *t, int64_t gen, int64_t day, uint64_t token)
{
    pthread_rwlock_rdlock(&t->map);
    tier_window_t *w = find(t, gen, day);
    if (w) {
        pthread_rwlock_wrlock(&w->lock);
        if (w->token == token && !w->want_load) {
            w->loading = false;
            queue_clear(w);
            w->retry_ms = atomic_load(&w->last_read_ms) + FAILED_RETRY_MS;
        }
        atomic_fetch_add(&t->load_failures, 1);
        pthread_rwlock_unlock(&w->lock);
    }
    pthread_rwlock_unlock(&t->map);
}

/* ---------------------------------------------------------------- reads */

/* Ask for a window a read found missing, or whose load failed (its retry time passed): a load.
 * Never waits: an event loop calls it; when the locks are busy, a later read asks again. */
static void ask_for(rank_tier_t *t, int64_t gen, int64_t day, int64_t now_ms)
{
    if (pthread_rwlock_trywrlock(&t->map) != 0)
        return;
    tier_window_t *w = find(t, gen, day);
    if (!w) {
        /* Its load starts after this, so it holds every commit before. */
        w = xcalloc(1, sizeof *w);
        w->gen = gen;
        w->day = day;
        rwlock_init(&w->lock);
        buf_init(&w->parts);
        w->want_load = true;
        w->token = 1;
        atomic_store(&w->last_read_ms, now_ms);
        w->next = t->windows;
        t->windows = w;
    } else if (!w->ready && !w->want_load && !w->loading && w->retry_ms != 0 && now_ms >= w->retry_ms) {
        w->want_load = true; /* the map's write lock excludes every window lock */
        w->token++;
        w->retry_ms = 0;
    }
    pthread_rwlock_unlock(&t->map);
    kick(t);
}

/* A read's hold on a window: both read locks, released by end_read. Never waits (event loops
 * call it): a lock held for writing (the stream applying a transaction, a window loaded in or
 * dropped, a check digesting it) makes the read a miss, answered by Redis or PostgreSQL. */
static tier_window_t *begin_read(rank_tier_t *t, int64_t gen, int64_t day, int64_t now_ms)
{
    if (!atomic_load(&t->listening) || pthread_rwlock_tryrdlock(&t->map) != 0) {
        atomic_fetch_add(&t->missed, 1);
        return NULL;
    }
    /* Heard nothing that proves it current for longer than a cached answer may be old (the
     * listener's session stalled, or is slow): Redis answers, until a heartbeat comes back. The
     * window is still asked for and kept. */
    bool stale = t->stale_ms > 0 && clock_mono_ms() - atomic_load(&t->caught_up_ms) > t->stale_ms;
    tier_window_t *w = find(t, gen, day);
    bool ask = !w;
    if (w) {
        atomic_store(&w->last_read_ms, now_ms);
        if (pthread_rwlock_tryrdlock(&w->lock) == 0) {
            if (w->ready && w->applied >= atomic_load(&w->acked) && !stale) {
                atomic_fetch_add(&t->answered, 1);
                return w;
            }
            if (w->ready && stale)
                atomic_fetch_add(&t->stale, 1);
            ask = !w->ready && !w->want_load && !w->loading && w->retry_ms != 0 && now_ms >= w->retry_ms;
            pthread_rwlock_unlock(&w->lock);
        }
    }
    pthread_rwlock_unlock(&t->map);
    atomic_fetch_add(&t->missed, 1);
    if (ask)
        ask_for(t, gen, day, now_ms);
    return NULL;
}

/* begin_read for an answer: the window held, and out->total set; NULL when the tier is off or
 * cannot answer. */
static tier_window_t *begin_answer(rank_tier_t *t, const board_t *b, int64_t day, const tier_read_t *how,
                                   entries_t *out)
{
    tier_window_t *w = t ? begin_read(t, b->gen, day, how->now_ms) : NULL;
    if (w)
        out->total = ri_count(w->ix);
    return w;
}

static void end_read(rank_tier_t *t, tier_window_t *w)
{
    pthread_rwlock_unlock(&w->lock);
    pthread_rwlock_unlock(&t->map);
}

static void push(entries_t *out, const board_t *b, int64_t rank, const ri_entry_t *e)
{
    entries_push(out, rank, e->player, e->player_len, order_score(b->sort, e->sort_key), e->sort_key, e->achieved_ms,
                 e->metadata, e->metadata_len);
}

/* Entries of 0-based ranks [from, from + n) into out. */
static void push_range(entries_t *out, const board_t *b, const rank_index_t *ix, int64_t from, int64_t n)
{
    ri_entry_t chunk[64];
    if (n > 0)
        entries_reserve(out, (size_t)n);
    while (n > 0) {
        size_t got = ri_range(ix, from, n < 64 ? (size_t)n : 64, chunk);
        if (got == 0)
            break;
        for (size_t i = 0; i < got; i++)
            push(out, b, from + 1 + (int64_t)i, &chunk[i]);
        from += (int64_t)got;
        n -= (int64_t)got;
    }
}

/* A style's count from the index: the standings before the tie group of sk (competition), or
 * the distinct sort keys before it (dense). */
static bool before_in_index(void *arg, rank_style_t style, int64_t sk, int64_t *out)
{
    bool exact;
    *out = style == RANK_DENSE ? ri_distinct_before(arg, sk) : ri_lower_bound(arg, sk, INT64_MIN, "", 0, &exact);
    return true;
}

/* The read's last step, under the window's lock: its style's ranks, then the locks let go. */
static bool end_styled(rank_tier_t *t, tier_window_t *w, entries_t *out, const tier_read_t *how, bool adjacent)
{
    bool ok = rank_restyle(out, how->style, adjacent, before_in_index, w->ix);
    end_read(t, w);
    return ok;
}

bool rank_tier_page(rank_tier_t *t, const board_t *b, int64_t day, int64_t offset, int limit, const tier_read_t *how,
                    entries_t *out)
{
    tier_window_t *w = begin_answer(t, b, day, how, out);
    if (!w)
        return false;
    push_range(out, b, w->ix, offset, limit);
    return end_styled(t, w, out, how, true);
}

bool rank_tier_cursor(rank_tier_t *t, const board_t *b, int64_t day, const order_pos_t *pos, bool backward, int limit,
                      const tier_read_t *how, entries_t *out)
{
    tier_window_t *w = begin_answer(t, b, day, how, out);
    if (!w)
        return false;
    bool exact;
    int64_t c = ri_lower_bound(w->ix, pos->sort_key, pos->achieved_ms, pos->player, pos->player_len, &exact);
    if (!backward) {
        push_range(out, b, w->ix, c + exact, limit);
    } else if (c > 0) {
        int64_t a = c - limit > 0 ? c - limit : 0;
        push_range(out, b, w->ix, a, c - a);
    }
    return end_styled(t, w, out, how, true);
}

bool rank_tier_players(rank_tier_t *t, const board_t *b, int64_t day, const char *const *ids, size_t n,
                       const tier_read_t *how, entries_t *out)
{
    tier_window_t *w = begin_answer(t, b, day, how, out);
    if (!w)
        return false;
    for (size_t i = 0; i < n; i++) {
        ri_entry_t e;
        int64_t r = ri_rank(w->ix, ids[i], strlen(ids[i]), &e);
        if (r >= 0)
            push(out, b, r + 1, &e);
    }
    entries_sort_by_rank(out);
    return end_styled(t, w, out, how, false);
}

bool rank_tier_around(rank_tier_t *t, const board_t *b, int64_t day, const char *player, int before, int after,
                      const tier_read_t *how, entries_t *out)
{
    tier_window_t *w = begin_answer(t, b, day, how, out);
    if (!w)
        return false;
    int64_t r = ri_rank(w->ix, player, strlen(player), NULL);
    if (r >= 0) {
        int64_t a = r - before > 0 ? r - before : 0;
        push_range(out, b, w->ix, a, r + after - a + 1);
    }
    return end_styled(t, w, out, how, true);
}

bool rank_tier_score(rank_tier_t *t, const board_t *b, int64_t day, int64_t sort_key, const tier_read_t *how,
                     entries_t *out)
{
    tier_window_t *w = begin_answer(t, b, day, how, out);
    if (!w)
        return false;
    bool exact;
    /* Every position of a better or equal sort key lies before (sort_key + 1, the earliest time,
     * the smallest id): |sort_key| < 2^53, so the sum cannot overflow. Competition: of a better
     * one only (the score would share its ties' rank); dense: the distinct better ones. */
    if (how->style == RANK_DENSE)
        out->at_or_before = ri_distinct_before(w->ix, sort_key);
    else
        out->at_or_before = ri_lower_bound(w->ix, how->style == RANK_COMPETITION ? sort_key : sort_key + 1, INT64_MIN,
                                           "", 0, &exact);
    end_read(t, w);
    return true;
}

/* ---------------------------------------------------------------- the rest */

void rank_tier_stats(rank_tier_t *t, rank_tier_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!t)
        return;
    /* /metrics runs on an event loop: a window being written (or the set, being changed) is
     * counted as loading rather than waited for. */
    if (pthread_rwlock_tryrdlock(&t->map) == 0) {
        for (tier_window_t *w = t->windows; w; w = w->next) {
            out->windows++;
            if (pthread_rwlock_tryrdlock(&w->lock) != 0)
                continue;
            if (w->ready) {
                out->ready++;
                out->players += ri_count(w->ix);
            } else if (w->too_big) {
                out->too_big_windows++;
            } else if (w->want_load || w->loading) {
                out->loading++;
            } else {
                out->failed++;
            }
            pthread_rwlock_unlock(&w->lock);
        }
        pthread_rwlock_unlock(&t->map);
    }
    out->bytes = atomic_load(&t->bytes);
    out->budget = t->budget;
    out->loads = atomic_load(&t->loads);
    out->reloads = atomic_load(&t->reloads);
    out->evictions = atomic_load(&t->evictions);
    out->too_big = atomic_load(&t->too_big);
    out->answered = atomic_load(&t->answered);
    out->missed = atomic_load(&t->missed);
    out->stale = atomic_load(&t->stale);
    out->load_failures = atomic_load(&t->load_failures);
    out->loads_dropped = atomic_load(&t->loads_dropped);
    out->listening = atomic_load(&t->listening);
    int64_t caught = atomic_load(&t->caught_up_ms);
    out->heard_ago_ms = caught ? clock_mono_ms() - caught : -1;
    out->last_load_ms = atomic_load(&t->last_load_ms);
    out->last_load_players = atomic_load(&t->last_load_players);
}

bool rank_tier_inspect(rank_tier_t *t, int64_t gen, int64_t day, void (*fn)(const rank_index_t *ix, int64_t seq, void *arg),
                       void *arg)
{
    if (!t)
        return false;
    bool ok = false;
    pthread_rwlock_rdlock(&t->map);
    tier_window_t *w = find(t, gen, day);
    if (w) {
        pthread_rwlock_rdlock(&w->lock);
        if ((ok = w->ready))
            fn(w->ix, w->applied, arg);
        pthread_rwlock_unlock(&w->lock);
    }
    pthread_rwlock_unlock(&t->map);
    return ok;
}
