/* worker/writer.c — one transaction per batch of submissions; see writer.h for the design. */
#include "worker/writer.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/l1.h"
#include "core/ids.h"
#include "core/notice.h"
#include "core/order.h"
#include "core/score.h"
#include "core/window.h"
#include "obs/log.h"
#include "store/pg_deadline.h"
#include "store/pg_error.h"
#include "store/pg_pipeline.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "store/write_sql.h"
#include "worker/write_fold.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/buf.h"

#define MAX_ATTEMPTS 3
/* Past MAX_ATTEMPTS, a batch whose window an import holds is run again until this long after its
 * first try: the import holds the window's lock for the whole of its merge (seconds for a
 * million rows), and a submission that arrives meanwhile waits for it (API.md), not refused.
 * Any other lock held that long (an archive under way) still gets the 503. */
#define IMPORT_WAIT_MAX_MS 60000

/* Jobs are taken until their items reach this many (writer.max_batch, at most 4000): one
 * statement's arrays stay reasonable. One job is always taken whole. */
#define GROUP_MAX_ITEMS 4000

struct writer {
    pg_pool_t *primary;        /* the writer's own: its connections hold the prepared statements */
    pg_router_t *router;       /* whether the primary is up; the LSNs replicas must reach */
    redis_pool_t *redis;
    rebuilder_t *rebuilder;
    l1_t *l1;
    rank_tier_t *tier;         /* NULL: off */
    size_t max_batch;          /* submissions per transaction at most */
    int lock_timeout_ms;       /* each statement's lock waits, on the writer's connections */
    int rank_bucket_rows;      /* a rank bucket's least size; a batch changing as many of a window re-cuts it */

    workq_t queue;
    atomic_bool closed;        /* shutting down: new jobs are answered 503 at once */
    atomic_size_t queued;      /* submissions enqueued and not yet taken into a transaction */
    atomic_ullong batches;     /* transactions run */
    atomic_ullong league_placed; /* players placed in league cohorts by committed transactions */
    atomic_llong last_batch_ms; /* how long the last one took, up to its answers */
    pthread_t thread;
};

static void *writer_main(void *arg);

writer_t *writer_new(pg_pool_t *primary, pg_router_t *router, redis_pool_t *redis, rebuilder_t *rebuilder, l1_t *l1,
                     rank_tier_t *tier, size_t max_batch, int rank_bucket_rows)
{
    writer_t *w = xcalloc(1, sizeof *w);
    w->tier = tier;
    w->rank_bucket_rows = rank_bucket_rows < 2 ? 2 : rank_bucket_rows;
    w->router = router;
    w->max_batch = max_batch < 1 ? 1 : max_batch > GROUP_MAX_ITEMS ? GROUP_MAX_ITEMS : max_batch;
    w->primary = primary;
    /* Half the statement timeout: a wait for a lock (a player's deletion, an archive of the
     * window a late submission writes to) is tried again before anything is cancelled. */
    w->lock_timeout_ms = pg_pool_statement_timeout_ms(primary) / 2;
    pg_pool_on_connect(primary, write_sql_prepare, &w->lock_timeout_ms);
    w->redis = redis;
    w->rebuilder = rebuilder;
    w->l1 = l1;
    workq_init(&w->queue);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        log_error(NULL, "cannot start the writer thread");
        abort();
    }
    return w;
}

void writer_free(writer_t *w)
{
    if (!w)
        return;
    workq_stop(&w->queue);
    pthread_join(w->thread, NULL);
    workq_destroy(&w->queue);
    free(w);
}

void writer_close(writer_t *w)
{
    atomic_store(&w->closed, true);
}

/* A job that slips in just after writer_close is still committed: the queue is drained
 * before the writer stops. */
void writer_enqueue(writer_t *w, write_job_t *job)
{
    if (atomic_load(&w->closed)) {
        for (size_t i = 0; i < job->n; i++)
            if (job->items[i].status == 0)
                write_item_fail(&job->items[i], 503, "unavailable", NULL, "the server is shutting down");
        job->done(job);
        return;
    }
    atomic_fetch_add(&w->queued, job->n);
    workq_push(&w->queue, &job->link);
}

void writer_stats(writer_t *w, writer_stats_t *out)
{
    out->queued = w ? atomic_load(&w->queued) : 0;
    out->batches = w ? atomic_load(&w->batches) : 0;
    out->last_batch_ms = w ? atomic_load(&w->last_batch_ms) : 0;
    out->league_placed = w ? atomic_load(&w->league_placed) : 0;
}

static write_job_t *job_of(workq_item_t *item)
{
    return item ? WORKQ_OWNER(item, write_job_t, link) : NULL;
}

/* Commit a group of jobs as one batch and answer each. */
static void run_group(writer_t *w, write_job_t *jobs)
{
    size_t total = 0;
    for (write_job_t *j = jobs; j; j = job_of(j->link.next))
        total += j->n;
    atomic_fetch_sub(&w->queued, total);
    int64_t t0 = clock_mono_ms();
    write_item_t *all = xcalloc(total ? total : 1, sizeof *all);
    size_t k = 0;
    for (write_job_t *j = jobs; j; j = job_of(j->link.next))
        for (size_t i = 0; i < j->n; i++)
            all[k++] = j->items[i];
    if (total)
        writer_submit(w, all, total);
    /* Counted before the answers go: a client that reads /metrics after its answer sees its batch. */
    atomic_fetch_add(&w->batches, 1);
    atomic_store(&w->last_batch_ms, clock_mono_ms() - t0);
    k = 0;
    write_job_t *j = jobs;
    while (j) {
        for (size_t i = 0; i < j->n; i++)
            j->items[i] = all[k++]; /* the responses move to the job's items */
        write_job_t *next = job_of(j->link.next); /* done() may free the job */
        j->done(j);
        j = next;
    }
    free(all);
    if (total) {
        char what[64];
        snprintf(what, sizeof what, "write batch of %zu submissions", total);
        q_log_if_slow(NULL, what, t0); /* its transaction ran on the primary */
    }
}

static size_t job_items(const workq_item_t *item)
{
    return WORKQ_OWNER(item, const write_job_t, link)->n;
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    workq_item_t *jobs;
    while ((jobs = workq_take(&w->queue, w->max_batch, job_items)) != NULL)
        run_group(w, job_of(jobs));
    return NULL; /* stopped, and nothing left to commit */
}

void writer_items_clear(write_item_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].response);
        items[i].response = NULL;
    }
}

/* ---------------------------------------------------------------- per-batch state */

/* A capped tournament slot the batch may admit new entrants to: its count, locked until the
 * commit (ws_slots_lock_sql). */
typedef struct {
    int64_t gen;
    int64_t day;
    int64_t entrants;
} t_slot_t;

typedef struct {
    write_item_t *items;
    size_t n;
    size_t *order;        /* item indices sorted by (gen, day, player, arrival) */
    int *group_of;        /* item -> group index, -1 for items not applied */
    bool *replay;         /* item answered from a stored key or a duplicate in the batch */
    bool *key_new;        /* item inserted its idempotency key */
    int *dup_of;          /* item -> earlier item with the same key in this batch, or -1 */
    write_fold_t *fold;   /* what folding did to each item */
    write_group_t *groups;
    size_t n_groups;
    int *initial_status;  /* statuses the caller set (validation), restored on a retry */
    char **draft;         /* item -> owned draft of an answer committed but never stored, else NULL */
    bool want_lsn;        /* read the primary's WAL position after the commit (replicas serve reads) */
    int rank_bucket_rows; /* the writer's: a window with as many changed standings is re-cut */
    uint64_t commit_lsn;  /* that position, 0 when not read */
    bool commit_sent;     /* the COMMIT went out: a broken connection leaves the outcome unknown */
    int64_t *rank;        /* item -> the rank its answer reports (0: unknown) */
    int64_t *prev_rank;   /* item -> its previous_rank: the rank just before it, -1 none (null), 0 unknown */
    t_slot_t *slots;      /* the capped tournament slots locked, n_slots of them */
    size_t n_slots;
    int64_t league_placed; /* players the batch placed in league cohorts */
} batch_t;

static char *render(const write_item_t *it, const batch_t *bt, size_t i, int64_t rank, int64_t prev_rank);

static void batch_init(batch_t *bt, write_item_t *items, size_t n)
{
    memset(bt, 0, sizeof *bt);
    bt->initial_status = xcalloc(n, sizeof *bt->initial_status);
    for (size_t i = 0; i < n; i++)
        bt->initial_status[i] = items[i].status;
    bt->items = items;
    bt->n = n;
    bt->order = xcalloc(n, sizeof *bt->order);
    bt->group_of = xcalloc(n, sizeof *bt->group_of);
    bt->replay = xcalloc(n, sizeof *bt->replay);
    bt->key_new = xcalloc(n, sizeof *bt->key_new);
    bt->dup_of = xcalloc(n, sizeof *bt->dup_of);
    bt->fold = xcalloc(n, sizeof *bt->fold);
    bt->groups = xcalloc(n, sizeof *bt->groups);
    bt->draft = xcalloc(n, sizeof *bt->draft);
    bt->rank = xcalloc(n, sizeof *bt->rank);
    bt->prev_rank = xcalloc(n, sizeof *bt->prev_rank);
    bt->slots = xcalloc(n, sizeof *bt->slots);
}

static void batch_reset(batch_t *bt)
{
    for (size_t i = 0; i < bt->n_groups; i++)
        free(bt->groups[i].stored_md);
    bt->n_groups = 0;
    bt->n_slots = 0;
    bt->league_placed = 0;
    bt->commit_lsn = 0;
    bt->commit_sent = false;
    for (size_t i = 0; i < bt->n; i++) {
        bt->group_of[i] = -1;
        bt->replay[i] = bt->key_new[i] = false;
        bt->fold[i] = (write_fold_t){0};
        bt->dup_of[i] = -1;
        bt->items[i].status = bt->initial_status[i];
        free(bt->items[i].response);
        bt->items[i].response = NULL;
        free(bt->draft[i]);
        bt->draft[i] = NULL;
    }
}

static void batch_free(batch_t *bt)
{
    for (size_t i = 0; i < bt->n_groups; i++)
        free(bt->groups[i].stored_md);
    free(bt->initial_status);
    free(bt->order);
    free(bt->group_of);
    free(bt->replay);
    free(bt->key_new);
    free(bt->dup_of);
    free(bt->fold);
    free(bt->groups);
    free(bt->slots);
    for (size_t i = 0; i < bt->n; i++)
        free(bt->draft[i]);
    free(bt->draft);
    free(bt->rank);
    free(bt->prev_rank);
}

/* Items still to be decided in this attempt (validation failures were set by the caller). */
static bool pending(const batch_t *bt, size_t i)
{
    return bt->items[i].status == 0 && !bt->replay[i];
}

/* ---------------------------------------------------------------- SQL helpers */

typedef enum { STEP_OK, STEP_RETRY, STEP_FAIL } step_t;

static step_t check(PGconn *c, PGresult *r, const char *what)
{
    if (pg_ok(r))
        return STEP_OK;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    /* A deadlock, a serialization failure or a lock not granted within lock_timeout: the
     * transaction is run again (MAX_ATTEMPTS), then answered 503. */
    bool retry = state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0 || strcmp(state, "55P03") == 0);
    char pe[PG_ERROR_MAX];
    log_error(NULL, "submit %s failed: %s", what, pg_error_text(c, r, pe, sizeof pe));
    return retry ? STEP_RETRY : STEP_FAIL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Find the group of (gen, day, player) among groups in write_group_items order; NULL if none. */
static write_group_t *find_group(batch_t *bt, int64_t gen, int64_t day, const char *player)
{
    size_t lo = 0, hi = bt->n_groups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        write_group_t *g = &bt->groups[mid];
        int c = g->gen != gen ? (g->gen < gen ? -1 : 1) : g->day != day ? (g->day < day ? -1 : 1) : strcmp(g->player, player);
        if (c == 0)
            return g;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The first group of window (gen, day) among groups in write_group_items order (n_groups if none). */
static size_t window_first_group(const batch_t *bt, int64_t gen, int64_t day)
{
    size_t lo = 0, hi = bt->n_groups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const write_group_t *g = &bt->groups[mid];
        if (g->gen < gen || (g->gen == gen && g->day < day))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---------------------------------------------------------------- ranks read back */

static int entry_player_cmp(const void *a, const void *b)
{
    return strcmp((*(const entry_t *const *)a)->player, (*(const entry_t *const *)b)->player);
}

/* Pointers to e's entries sorted by player id, for finding each in O(log n) (caller frees). */
static const entry_t **entries_by_player(const entries_t *e)
{
    const entry_t **v = xcalloc(e->n ? e->n : 1, sizeof *v);
    for (size_t i = 0; i < e->n; i++)
        v[i] = &e->items[i];
    qsort(v, e->n, sizeof *v, entry_player_cmp);
    return v;
}

/* The entry of `player` in `sorted[0..n)` (entries_by_player), or NULL. */
static const entry_t *entry_of(const entry_t **sorted, size_t n, const char *player)
{
    entry_t key;
    snprintf(key.player, sizeof key.player, "%s", player); /* ids are at most PLAYER_ID_MAX bytes */
    const entry_t *kp = &key;
    const entry_t **found = bsearch(&kp, sorted, n, sizeof *sorted, entry_player_cmp);
    return found ? *found : NULL;
}

/* ---------------------------------------------------------------- steps */

/* An item's idempotency key, for sorting and searching: (gen, key), then its place in the batch. */
typedef struct {
    int64_t gen;
    const char *key;
    size_t i;
} key_ref_t;

static int key_ref_cmp(const void *a, const void *b)
{
    const key_ref_t *x = a, *y = b;
    if (x->gen != y->gen)
        return x->gen < y->gen ? -1 : 1;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->i < y->i ? -1 : x->i > y->i);
}

/* The batch position of key (gen, key) among `refs[0..n)` (sorted, one per key), or -1. */
static ssize_t key_find(const key_ref_t *refs, size_t n, int64_t gen, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = refs[mid].gen != gen ? (refs[mid].gen < gen ? -1 : 1) : strcmp(refs[mid].key, key);
        if (c == 0)
            return (ssize_t)refs[mid].i;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Step 1: claim idempotency keys; items whose key exists become replays or conflicts. */
static step_t claim_keys(PGconn *c, batch_t *bt)
{
    /* Sorted by (gen, key, position): duplicates inside the batch sit together and follow the
     * first occurrence; the keys are then inserted in (gen, key) order, so that concurrent
     * batches lock them in one order. O(n log n) for the batch's up to 4,000 items. */
    key_ref_t *refs = xcalloc(bt->n ? bt->n : 1, sizeof *refs);
    size_t n_refs = 0;
    for (size_t i = 0; i < bt->n; i++)
        if (pending(bt, i) && bt->items[i].idem_key)
            refs[n_refs++] = (key_ref_t){bt->items[i].board->gen, bt->items[i].idem_key, i};
    qsort(refs, n_refs, sizeof *refs, key_ref_cmp);
    size_t k = 0; /* refs[0..k): one per key, its first occurrence */
    for (size_t a = 0; a < n_refs; a++) {
        if (k > 0 && refs[k - 1].gen == refs[a].gen && strcmp(refs[k - 1].key, refs[a].key) == 0)
            bt->dup_of[refs[a].i] = (int)refs[k - 1].i;
        else
            refs[k++] = refs[a];
    }
    if (k == 0) {
        free(refs);
        return STEP_OK;
    }
    size_t *idx = xcalloc(k, sizeof *idx);
    for (size_t a = 0; a < k; a++)
        idx[a] = refs[a].i;
    pg_arrays_t as;
    pg_arrays_open(&as, 3);
    for (size_t a = 0; a < k; a++) {
        write_item_t *it = &bt->items[idx[a]];
        pg_arr_i64(&as.a[0], it->board->gen);
        pg_arr_text(&as.a[1], it->idem_key);
        pg_arr_text(&as.a[2], it->request);
    }
    const char *p[3];
    pg_arrays_close(&as, p);
    PGresult *r = PQexecParams(c,
                               ws_key_claim_sql,
                               3, NULL, p, NULL, NULL, 0);
    step_t st = check(c, r, "key claim");
    if (st == STEP_OK) {
        for (int row = 0; row < PQntuples(r); row++) {
            ssize_t i = key_find(refs, k, strtoll(PQgetvalue(r, row, 0), NULL, 10), PQgetvalue(r, row, 1));
            if (i >= 0)
                bt->key_new[i] = true;
        }
    }
    PQclear(r);
    pg_arrays_free(&as);

    /* Keys that existed: fetch what they were first used with. */
    size_t old = 0;
    for (size_t a = 0; a < k; a++)
        old += !bt->key_new[idx[a]];
    if (st == STEP_OK && old > 0) {
        pg_arrays_open(&as, 2);
        for (size_t a = 0; a < k; a++) {
            if (bt->key_new[idx[a]])
                continue;
            pg_arr_i64(&as.a[0], bt->items[idx[a]].board->gen);
            pg_arr_text(&as.a[1], bt->items[idx[a]].idem_key);
        }
        const char *q[2];
        pg_arrays_close(&as, q);
        r = PQexecParams(c,
                         ws_key_lookup_sql,
                         2, NULL, q, NULL, NULL, 0);
        st = check(c, r, "key lookup");
        for (int row = 0; st == STEP_OK && row < PQntuples(r); row++) {
            ssize_t i = key_find(refs, k, strtoll(PQgetvalue(r, row, 0), NULL, 10), PQgetvalue(r, row, 1));
            if (i < 0 || bt->key_new[i])
                continue;
            write_item_t *it = &bt->items[i];
            bt->replay[i] = true;
            if (strcmp(PQgetvalue(r, row, 2), it->request) != 0)
                write_item_fail(it, 409, "conflict", NULL, "idempotency key was used with a different request");
            else if (PQgetisnull(r, row, 3) && !PQgetisnull(r, row, 4))
                bt->draft[i] = xstrdup(PQgetvalue(r, row, 4)); /* answered after the commit */
            else if (PQgetisnull(r, row, 3))
                write_item_fail(it, 409, "conflict", NULL, "a request with this idempotency key is in progress");
            else {
                it->status = 200;
                it->response = xstrdup(PQgetvalue(r, row, 3));
            }
        }
        PQclear(r);
        pg_arrays_free(&as);
        /* A key that vanished between the two statements (its transaction rolled back): retry. */
        for (size_t a = 0; st == STEP_OK && a < k; a++)
            if (!bt->key_new[idx[a]] && !bt->replay[idx[a]])
                st = STEP_RETRY;
    }
    free(idx);
    free(refs);
    return st;
}

/* The parameters of ws_read_sql for one window of the batch. */
typedef struct {
    char gen[24];
    char day[11];
    pg_arrays_t players;   /* one array: the window's players */
    const char *params[3];
} window_read_t;

/* Whether group g is the first of its window (groups are sorted by window). */
static bool opens_window(const batch_t *bt, size_t g)
{
    return g == 0 || bt->groups[g].gen != bt->groups[g - 1].gen || bt->groups[g].day != bt->groups[g - 1].day;
}

/* Whether group `gr`'s board keeps a tournament entrant row per player and slot. */
static bool keeps_entrants(const write_group_t *gr)
{
    return tournament_counts_entrants(&gr->board->tournament);
}

/* Whether the batch may give new entrants places in group `gr`'s slot: a capped tournament that
 * requires no join (where one is required, the join gives the place). */
static bool admits_entrants(const write_group_t *gr)
{
    const tournament_t *t = &gr->board->tournament;
    return t->on && !t->join_required && t->max_players > 0;
}

static t_slot_t *slot_of(batch_t *bt, int64_t gen, int64_t day)
{
    for (size_t s = 0; s < bt->n_slots; s++)
        if (bt->slots[s].gen == gen && bt->slots[s].day == day)
            return &bt->slots[s];
    return NULL;
}

/*
 * Refuse what a tournament's rules refuse (API.md, "Competitions"), before the fold: a
 * submission received outside its window's slot (not_active), without the join the board
 * requires (not_joined), past the player's attempts in the slot (attempts_exhausted), or of a
 * new entrant to a full slot (tournament_full). The entrant rows and the slots' counts were read
 * under the players' locks and the slots' row locks, so no race passes a cap. Items in arrival
 * order per player (bt->order[0..m)); a refused item leaves its group, as one in an archived
 * window does, and its idempotency key is forgotten with the other failed items'.
 */
static void tournament_gate(batch_t *bt, size_t m)
{
    for (size_t g = 0; g < bt->n_groups; g++)
        bt->groups[g].t_cur = bt->groups[g].cur;
    for (size_t k = 0; k < m; k++) {
        size_t i = bt->order[k];
        if (bt->group_of[i] < 0)
            continue;
        write_item_t *it = &bt->items[i];
        const tournament_t *t = &it->board->tournament;
        if (!t->on)
            continue;
        write_group_t *gr = &bt->groups[bt->group_of[i]];
        const char *code = NULL, *msg = NULL;
        if (!tournament_accepts(t, it->board->reset, it->day, it->received_ms)) {
            code = "not_active";
            msg = "this submission was received outside the tournament's slot (see the board's opens_at and closes_at)";
        } else if (!tournament_counts_entrants(t)) {
            /* open to all, as often as they like */
        } else if (t->join_required && !gr->t_joined) {
            code = "not_joined";
            msg = "this tournament takes submissions from players who joined its slot only"
                  " (POST /v1/leaderboards/{board}/players/{player}/join)";
        } else if (t->max_attempts > 0 && gr->t_attempts + gr->t_passed >= t->max_attempts + gr->t_extra) {
            code = "attempts_exhausted";
            msg = "the player has used every attempt this tournament's slot allows";
        } else if (admits_entrants(gr) && !gr->t_entrant && !gr->t_admitted) {
            t_slot_t *s = slot_of(bt, gr->gen, gr->day);
            if (!s || s->entrants >= t->max_players) {
                code = "tournament_full";
                msg = "the tournament's slot has as many players as its max_players";
            } else {
                s->entrants++;
                gr->t_admitted = true;
            }
        }
        if (code) {
            write_item_fail(it, 409, code, NULL, msg);
            bt->group_of[i] = -1;
            continue;
        }
        /* An item the fold will refuse (a sum past the score range) is no attempt: the standing
         * is followed here as the fold will leave it. A new entrant's first item never overflows
         * (one score is within range), so no place is given to one that will be refused. */
        score_standing_t next;
        bool updated;
        if (score_apply(it->board->op, it->board->sort, gr->t_cur, it->score, &next, &updated) == SCORE_OVERFLOW)
            continue;
        if (updated)
            gr->t_cur = next;
        gr->t_passed++;
    }
}

/* Step 2 and 3: group items per player, lock, read the current standings. */
static step_t lock_and_read(PGconn *c, batch_t *bt, bool begin)
{
    size_t m = 0;
    for (size_t i = 0; i < bt->n; i++)
        if (pending(bt, i) && bt->dup_of[i] < 0)
            bt->order[m++] = i;
    if (m == 0) {
        if (!begin)
            return STEP_OK;
        PGresult *r = PQexec(c, "BEGIN");
        step_t st = check(c, r, "begin");
        PQclear(r);
        return st;
    }
    bt->n_groups = write_group_items(bt->items, bt->order, m, bt->group_of, bt->groups);

    /* One round trip: (BEGIN,) share-lock the boards so they cannot be deleted under
     * us, take the players' advisory locks in sorted order, read their standings. */
    pg_arrays_t bs, ls;
    pg_arrays_open(&bs, 1);
    for (size_t g = 0; g < bt->n_groups; g++)
        if (g == 0 || bt->groups[g].gen != bt->groups[g - 1].gen)
            pg_arr_i64(&bs.a[0], bt->groups[g].gen);
    uint64_t *keys = xcalloc(bt->n_groups, sizeof *keys);
    for (size_t g = 0; g < bt->n_groups; g++)
        keys[g] = (uint64_t)id_player_lock_key(bt->groups[g].gen, bt->groups[g].player);
    qsort(keys, bt->n_groups, sizeof *keys, cmp_u64);
    pg_arrays_open(&ls, 1);
    for (size_t g = 0; g < bt->n_groups; g++)
        if (g == 0 || keys[g] != keys[g - 1])
            pg_arr_i64(&ls.a[0], (int64_t)keys[g]);
    free(keys);
    /* Groups are sorted by window: one read per run of equal (gen, day). */
    size_t n_windows = 0;
    for (size_t g = 0; g < bt->n_groups; g++)
        n_windows += opens_window(bt, g);
    window_read_t *wr = xcalloc(n_windows, sizeof *wr);
    window_read_t *win = NULL;
    for (size_t g = 0, w = 0; g < bt->n_groups; g++) {
        if (opens_window(bt, g)) {
            win = &wr[w++];
            win->gen[i64_text(win->gen, bt->groups[g].gen)] = '\0';
            window_format_day(bt->groups[g].day, win->day);
            pg_arrays_open(&win->players, 1);
        }
        pg_arr_text(&win->players.a[0], bt->groups[g].player);
    }
    pg_arrays_t as;
    pg_arrays_open(&as, 2); /* the batch's windows, for the archived check */
    for (size_t g = 0; g < bt->n_groups; g++) {
        if (opens_window(bt, g)) {
            pg_arr_i64(&as.a[0], bt->groups[g].gen);
            pg_arr_day(&as.a[1], bt->groups[g].day);
        }
    }
    /* Tournaments: the players' entrant rows, and the counts of the capped slots the batch may
     * give places in, locked after the players (as a join takes them). */
    pg_arrays_t es, ss;
    pg_arrays_open(&es, 3);
    pg_arrays_open(&ss, 2);
    bool entrants = false, slots = false;
    for (size_t g = 0; g < bt->n_groups; g++) {
        const write_group_t *gr = &bt->groups[g];
        if (keeps_entrants(gr)) {
            pg_arr_i64(&es.a[0], gr->gen);
            pg_arr_day(&es.a[1], gr->day);
            pg_arr_text(&es.a[2], gr->player);
            entrants = true;
        }
        if (opens_window(bt, g) && admits_entrants(gr)) {
            pg_arr_i64(&ss.a[0], gr->gen);
            pg_arr_day(&ss.a[1], gr->day);
            slots = true;
        }
    }
    const char *bp[1], *lp[1], *ap[2], *ep[3], *sp[2];
    pg_arrays_close(&bs, bp);
    pg_arrays_close(&ls, lp);
    pg_arrays_close(&as, ap);
    pg_arrays_close(&es, ep);
    pg_arrays_close(&ss, sp);
    /* The batch statements' plans do not depend on the arrays' contents (an index lookup
     * per element): planning them again for every batch only costs time. LOCAL: the
     * window queries run after the commit keep their custom plans. */
    enum { READS = 6, I_BOARDS = 2, I_ARCHIVED = 5 }; /* the statements before the reads */
    size_t n_reads = READS + n_windows, n_stmts = n_reads + (entrants ? 1 : 0) + (slots ? 2 : 0);
    size_t i_entrants = entrants ? n_reads : 0, i_slots = slots ? n_reads + (entrants ? 1 : 0) + 1 : 0;
    pg_stmt_t *stmts = xcalloc(n_stmts, sizeof *stmts);
    stmts[0] = (pg_stmt_t){"BEGIN", 0, NULL, NULL};
    stmts[1] = (pg_stmt_t){"SET LOCAL plan_cache_mode TO force_generic_plan", 0, NULL, NULL};
    stmts[I_BOARDS] = (pg_stmt_t){ws_boards_sql, 1, bp, WS_BOARDS};
    stmts[3] = (pg_stmt_t){ws_window_lock_sql, 2, ap, WS_WINDOW_LOCK};
    stmts[4] = (pg_stmt_t){ws_lock_sql, 1, lp, WS_LOCK};
    stmts[I_ARCHIVED] = (pg_stmt_t){ws_archived_sql, 2, ap, WS_ARCHIVED};
    for (size_t w = 0; w < n_windows; w++) {
        pg_arrays_close(&wr[w].players, &wr[w].params[2]);
        wr[w].params[0] = wr[w].gen;
        wr[w].params[1] = wr[w].day;
        stmts[READS + w] = (pg_stmt_t){ws_read_sql, 3, wr[w].params, WS_READ};
    }
    if (entrants)
        stmts[i_entrants] = (pg_stmt_t){ws_entrants_sql, 3, ep, WS_ENTRANTS};
    if (slots) {
        stmts[i_slots - 1] = (pg_stmt_t){ws_slots_make_sql, 2, sp, WS_SLOTS_MAKE};
        stmts[i_slots] = (pg_stmt_t){ws_slots_lock_sql, 2, sp, WS_SLOTS_LOCK};
    }
    PGresult **res = xcalloc(n_stmts, sizeof *res);
    int first = begin ? 0 : 1;
    pg_pipeline_run(c, stmts + first, (int)n_stmts - first, res + first);
    pg_arrays_free(&bs);
    pg_arrays_free(&ls);
    pg_arrays_free(&as);
    pg_arrays_free(&es);
    pg_arrays_free(&ss);
    for (size_t w = 0; w < n_windows; w++)
        pg_arrays_free(&wr[w].players);
    free(wr);
    free(stmts);
    step_t st = STEP_OK;
    const char *what[READS] = {"begin", "plan mode", "board check", "window locks", "player locks", "archived windows"};
    for (size_t i = (size_t)first; i < n_stmts; i++)
        if (st == STEP_OK)
            st = check(c, res[i], i < READS ? what[i] : i < n_reads ? "read standings" : "tournament entrants");
    if (st == STEP_OK) {
        PGresult *br = res[I_BOARDS];
        for (size_t i = 0; i < bt->n; i++) {
            if (bt->group_of[i] < 0)
                continue;
            bool alive = false;
            for (int row = 0; row < PQntuples(br) && !alive; row++)
                alive = strtoll(PQgetvalue(br, row, 0), NULL, 10) == bt->items[i].board->gen;
            if (!alive) {
                write_item_fail(&bt->items[i], 404, "not_found", "board", "board not found");
                bt->group_of[i] = -1;
                continue;
            }
            PGresult *ar = res[I_ARCHIVED];
            for (int row = 0; row < PQntuples(ar); row++) {
                if (strtoll(PQgetvalue(ar, row, 0), NULL, 10) == bt->items[i].board->gen &&
                    strtoll(PQgetvalue(ar, row, 1), NULL, 10) == bt->items[i].day) {
                    write_item_fail(&bt->items[i], 409, "conflict", NULL,
                               "the window this submission was received in has closed and is archived");
                    bt->group_of[i] = -1;
                    break;
                }
            }
        }
        for (size_t i = READS; i < n_reads; i++) {
            PGresult *r = res[i];
            for (int row = 0; row < PQntuples(r); row++) {
                write_group_t *gr = find_group(bt, strtoll(PQgetvalue(r, row, 0), NULL, 10),
                                         strtoll(PQgetvalue(r, row, 1), NULL, 10), PQgetvalue(r, row, 2));
                if (!gr)
                    continue;
                gr->existed = true;
                gr->cur.exists = true;
                gr->cur.value = strtoll(PQgetvalue(r, row, 3), NULL, 10);
                gr->achieved_ms = strtoll(PQgetvalue(r, row, 4), NULL, 10);
                gr->old_value = gr->cur.value;
                gr->old_achieved_ms = gr->achieved_ms;
                gr->stored_md = PQgetisnull(r, row, 5) ? NULL : xstrdup(PQgetvalue(r, row, 5));
                gr->metadata = gr->stored_md;
            }
        }
        for (int row = 0; entrants && row < PQntuples(res[i_entrants]); row++) {
            PGresult *r = res[i_entrants];
            write_group_t *gr = find_group(bt, strtoll(PQgetvalue(r, row, 0), NULL, 10),
                                           strtoll(PQgetvalue(r, row, 1), NULL, 10), PQgetvalue(r, row, 2));
            if (!gr)
                continue;
            gr->t_joined = !PQgetisnull(r, row, 3);
            gr->t_attempts = strtoll(PQgetvalue(r, row, 4), NULL, 10);
            gr->t_extra = strtoll(PQgetvalue(r, row, 5), NULL, 10);
            gr->t_entrant = gr->t_joined || gr->t_attempts > 0;
        }
        for (int row = 0; slots && row < PQntuples(res[i_slots]) && bt->n_slots < bt->n; row++) {
            PGresult *r = res[i_slots];
            bt->slots[bt->n_slots++] = (t_slot_t){strtoll(PQgetvalue(r, row, 0), NULL, 10),
                                                  strtoll(PQgetvalue(r, row, 1), NULL, 10),
                                                  strtoll(PQgetvalue(r, row, 2), NULL, 10)};
        }
        tournament_gate(bt, m);
    }
    for (size_t i = (size_t)first; i < n_stmts; i++)
        if (res[i])
            PQclear(res[i]);
    free(res);
    return st;
}

/* The notice line of a changed group (core/notice.h). */
static void put_change(buf_t *line, const write_group_t *gr, bool with_metadata)
{
    notice_change_t c = {.gen = gr->gen,
                         .day = gr->day,
                         .existed = gr->existed,
                         .old_sort_key = gr->existed ? order_sort_key(gr->board->sort, gr->old_value) : 0,
                         .old_ms = gr->old_achieved_ms,
                         .new_sort_key = order_sort_key(gr->board->sort, gr->cur.value),
                         .new_ms = gr->achieved_ms,
                         .player = gr->player,
                         .player_len = strlen(gr->player),
                         .metadata = gr->metadata,
                         .metadata_len = gr->metadata ? strlen(gr->metadata) : 0};
    buf_reset(line);
    notice_put_change(line, &c, with_metadata);
}

/* Room for a part's W lines: PostgreSQL's 8000-byte NOTIFY limit, less the S line. */
#define NOTICE_PART_BYTES 7800

/*
 * Tell every instance what moved (core/notice.h), one W line per changed standing, in parts
 * under PostgreSQL's 8000-byte NOTIFY limit.
 * - `commit`: the notice sent inside the writing transaction (listeners hear it only if the
 *   transaction commits), for ws_notify_seq_sql: each window the transaction numbers (one with
 *   a submission applied) gets its own parts, an empty one when no standing of it changed, so
 *   that a listener sees every number of the window in order; the W lines carry metadata.
 *   Five arrays.
 * - else the hint sent again after the Redis update (ws_notify_sql): W lines without metadata,
 *   any windows to a part. One array.
 * False when there is nothing to send.
 */
static bool notify_params(batch_t *bt, pg_arrays_t *as, const char **param, bool commit)
{
    pg_arrays_open(as, commit ? 5 : 1);
    buf_t payload, line;
    buf_init(&payload);
    buf_init(&line);
    bool *numbered = xcalloc(bt->n_groups ? bt->n_groups : 1, sizeof *numbered);
    for (size_t i = 0; commit && i < bt->n; i++) /* the hint carries no numbers */
        if (bt->fold[i].applied && bt->group_of[i] >= 0)
            numbered[bt->group_of[i]] = true;
    size_t n = 0;
    for (size_t g = 0; g < bt->n_groups;) {
        size_t h = g;
        bool window_numbered = false;
        for (; h < bt->n_groups && bt->groups[h].gen == bt->groups[g].gen && bt->groups[h].day == bt->groups[g].day; h++)
            window_numbered |= numbered[h];
        int parts = 0;
        for (size_t k = g; k < h; k++) {
            write_group_t *gr = &bt->groups[k];
            if (!gr->changed)
                continue;
            put_change(&line, gr, commit);
            if (payload.len + line.len + 1 > NOTICE_PART_BYTES) {
                pg_arr_text(&as->a[0], payload.data);
                if (commit) {
                    pg_arr_i64(&as->a[1], gr->gen);
                    pg_arr_day(&as->a[2], gr->day);
                    pg_arr_i64(&as->a[3], ++parts);
                }
                buf_reset(&payload);
            }
            if (payload.len)
                buf_putc(&payload, '\n');
            buf_append(&payload, line.data, line.len);
            n++;
        }
        if (commit) {
            if (window_numbered && (payload.len || parts == 0)) {
                pg_arr_text(&as->a[0], payload.len ? payload.data : "");
                pg_arr_i64(&as->a[1], bt->groups[g].gen);
                pg_arr_day(&as->a[2], bt->groups[g].day);
                pg_arr_i64(&as->a[3], ++parts);
                n++;
            }
            for (int k = 0; k < parts; k++)
                pg_arr_i64(&as->a[4], parts);
            buf_reset(&payload);
        }
        g = h;
    }
    if (!commit && payload.len)
        pg_arr_text(&as->a[0], payload.data);
    free(numbered);
    buf_free(&payload);
    buf_free(&line);
    pg_arrays_close(as, param);
    return n > 0;
}

/*
 * The notice again, after the Redis update, in a transaction of its own. A NOTIFY gives
 * its transaction an xid, so its commit would wait for a WAL flush like a write: this one
 * is only a hint (the durable notice went out with the batch), so it commits without
 * waiting. One round trip.
 */
static step_t notify_changes(PGconn *c, batch_t *bt)
{
    pg_arrays_t as;
    const char *p[1];
    step_t st = STEP_OK;
    if (notify_params(bt, &as, p, false)) {
        const pg_stmt_t stmts[] = {
            {"BEGIN", 0, NULL, NULL},
            {"SET LOCAL synchronous_commit TO off", 0, NULL, NULL},
            {ws_notify_sql, 1, p, WS_NOTIFY},
            {"COMMIT", 0, NULL, NULL},
        };
        PGresult *res[4];
        pg_pipeline_run(c, stmts, 4, res);
        for (int i = 0; i < 4; i++) {
            if (st == STEP_OK)
                st = check(c, res[i], "notify");
            PQclear(res[i]);
        }
        if (st != STEP_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
            PQclear(PQexec(c, "ROLLBACK"));
    }
    pg_arrays_free(&as);
    return st;
}

/* The rank buckets' changes of the batch (ws_buckets_sql): each changed standing leaves its old
 * position (when it had one) and arrives at its new one. False when no standing changed. */
static bool bucket_params(const batch_t *bt, pg_arrays_t *as, const char **param)
{
    bool any = false;
    pg_arrays_open(as, 6);
    for (size_t g = 0; g < bt->n_groups; g++) {
        const write_group_t *gr = &bt->groups[g];
        if (!gr->changed)
            continue;
        any = true;
        for (int side = gr->existed ? 0 : 1; side < 2; side++) {
            pg_arr_i64(&as->a[0], gr->gen);
            pg_arr_day(&as->a[1], gr->day);
            pg_arr_i64(&as->a[2], order_sort_key(gr->board->sort, side ? gr->cur.value : gr->old_value));
            pg_arr_i64(&as->a[3], side ? gr->achieved_ms : gr->old_achieved_ms);
            pg_arr_text(&as->a[4], gr->player);
            pg_arr_i64(&as->a[5], side ? 1 : -1);
        }
    }
    pg_arrays_close(as, param);
    return any;
}

/* The windows of the batch with at least bt->rank_bucket_rows changed standings, for ws_recut_sql,
 * with the splits and merges each may take: two for each bucket's worth of standings changed (a
 * standing that moved leaves one bucket and grows another), and a few for the supers. False
 * when there is none. */
static bool recut_params(const batch_t *bt, pg_arrays_t *as, const char **param, char *min_rows, size_t min_len,
                         char *steps, size_t steps_len)
{
    long most = 0;
    pg_arrays_open(as, 2);
    for (size_t g = 0; g < bt->n_groups;) {
        size_t h = g;
        long changed = 0;
        for (; h < bt->n_groups && bt->groups[h].gen == bt->groups[g].gen && bt->groups[h].day == bt->groups[g].day; h++)
            changed += bt->groups[h].changed;
        if (changed >= bt->rank_bucket_rows) {
            pg_arr_i64(&as->a[0], bt->groups[g].gen);
            pg_arr_day(&as->a[1], bt->groups[g].day);
            if (changed > most)
                most = changed;
        }
        g = h;
    }
    pg_arrays_close(as, param);
    snprintf(min_rows, min_len, "%d", bt->rank_bucket_rows);
    int n = 8 + (int)(2 * most / bt->rank_bucket_rows); /* most is at most a batch's size */
    snprintf(steps, steps_len, "%d", n > 256 ? 256 : n);
    param[2] = min_rows;
    param[3] = steps;
    return most > 0;
}

/* The array of ws_write_sql's parameter WW_<name> in `as` (write_sql.h numbers them from 1). */
#define WW_ARRAY(as, name) (&(as).a[WW_##name - 1])
_Static_assert(WW_PARAMS <= PG_ARRAYS_MAX, "ws_write_sql has more parameters than pg_arrays_t holds");

/* Step 4: write standings, counters and the log, forget failed keys, notify, and commit: one round trip. */
/* ws_tournament_sql's parameters: each tournament entrant's attempts (its items applied), and
 * each capped slot's new entrants (admitted by the gate, with an item applied); false when the
 * batch has none. */
static bool tournament_params(const batch_t *bt, pg_arrays_t *as, const char **param)
{
    pg_arrays_open(as, 7);
    int64_t *applied = xcalloc(bt->n_groups ? bt->n_groups : 1, sizeof *applied);
    for (size_t i = 0; i < bt->n; i++)
        if (bt->fold[i].applied && bt->group_of[i] >= 0)
            applied[bt->group_of[i]]++;
    bool any = false;
    for (size_t g = 0; g < bt->n_groups; g++) {
        const write_group_t *gr = &bt->groups[g];
        if (!keeps_entrants(gr) || applied[g] == 0)
            continue;
        pg_arr_i64(&as->a[0], gr->gen);
        pg_arr_day(&as->a[1], gr->day);
        pg_arr_text(&as->a[2], gr->player);
        pg_arr_i64(&as->a[3], applied[g]);
        any = true;
    }
    for (size_t s = 0; s < bt->n_slots; s++) {
        int64_t added = 0;
        for (size_t g = 0; g < bt->n_groups; g++)
            added += bt->groups[g].gen == bt->slots[s].gen && bt->groups[g].day == bt->slots[s].day &&
                     bt->groups[g].t_admitted && applied[g] > 0;
        if (added == 0)
            continue;
        pg_arr_i64(&as->a[4], bt->slots[s].gen);
        pg_arr_day(&as->a[5], bt->slots[s].day);
        pg_arr_i64(&as->a[6], added);
        any = true;
    }
    free(applied);
    pg_arrays_close(as, param);
    return any;
}

/* ws_league_sql's parameters: each league board's player whose first standing of a window the
 * batch writes, in arrival order (placed first come, first served); false when there is none. */
static bool league_params(const batch_t *bt, pg_arrays_t *as, const char **param)
{
    pg_arrays_open(as, 3);
    bool *seen = xcalloc(bt->n_groups ? bt->n_groups : 1, sizeof *seen);
    bool any = false;
    for (size_t i = 0; i < bt->n; i++) {
        if (!bt->fold[i].applied || bt->group_of[i] < 0 || seen[bt->group_of[i]])
            continue;
        const write_group_t *gr = &bt->groups[bt->group_of[i]];
        seen[bt->group_of[i]] = true;
        if (!gr->board->league.on || gr->existed || !gr->changed)
            continue;
        pg_arr_i64(&as->a[0], gr->gen);
        pg_arr_day(&as->a[1], gr->day);
        pg_arr_text(&as->a[2], gr->player);
        any = true;
    }
    free(seen);
    pg_arrays_close(as, param);
    return any;
}

static step_t write_and_commit(PGconn *c, batch_t *bt)
{
    pg_arrays_t as;
    pg_arrays_open(&as, WW_PARAMS);
    /* standings */
    for (size_t g = 0; g < bt->n_groups; g++) {
        write_group_t *gr = &bt->groups[g];
        if (!gr->changed)
            continue;
        pg_arr_i64(WW_ARRAY(as, ST_GEN), gr->gen);
        pg_arr_day(WW_ARRAY(as, ST_DAY), gr->day);
        pg_arr_text(WW_ARRAY(as, ST_PLAYER), gr->player);
        pg_arr_i64(WW_ARRAY(as, ST_SCORE), gr->cur.value);
        pg_arr_i64(WW_ARRAY(as, ST_SORT_KEY), order_sort_key(gr->board->sort, gr->cur.value));
        pg_arr_i64(WW_ARRAY(as, ST_ACHIEVED_MS), gr->achieved_ms);
        pg_arr_text(WW_ARRAY(as, ST_METADATA), gr->metadata);
    }
    /* counters, per (gen, day): groups are sorted so equal windows are adjacent */
    int64_t *accepted = xcalloc(bt->n_groups ? bt->n_groups : 1, sizeof *accepted);
    for (size_t i = 0; i < bt->n; i++)
        if (bt->fold[i].applied)
            accepted[bt->group_of[i]]++;
    for (size_t g = 0; g < bt->n_groups;) {
        size_t h = g;
        int64_t players = 0, subs = 0;
        for (; h < bt->n_groups && bt->groups[h].gen == bt->groups[g].gen && bt->groups[h].day == bt->groups[g].day;
             h++) {
            players += !bt->groups[h].existed && bt->groups[h].changed;
            subs += accepted[h];
        }
        if (subs > 0) {
            pg_arr_i64(WW_ARRAY(as, CNT_GEN), bt->groups[g].gen);
            pg_arr_day(WW_ARRAY(as, CNT_DAY), bt->groups[g].day);
            pg_arr_i64(WW_ARRAY(as, CNT_PLAYERS), players);
            pg_arr_i64(WW_ARRAY(as, CNT_SUBMISSIONS), subs);
        }
        g = h;
    }
    free(accepted);
    /* the log */
    for (size_t i = 0; i < bt->n; i++) {
        if (!bt->fold[i].applied)
            continue;
        write_item_t *it = &bt->items[i];
        pg_arr_i64(WW_ARRAY(as, LOG_GEN), it->board->gen);
        pg_arr_day(WW_ARRAY(as, LOG_DAY), it->day);
        pg_arr_text(WW_ARRAY(as, LOG_PLAYER), it->player);
        pg_arr_i64(WW_ARRAY(as, LOG_SCORE), it->score);
        pg_arr_text(WW_ARRAY(as, LOG_METADATA), it->metadata);
        pg_arr_text(WW_ARRAY(as, LOG_UPDATED), bt->fold[i].updated ? "t" : "f");
        pg_arr_i64(WW_ARRAY(as, LOG_RECEIVED_MS), it->received_ms);
    }
    /* keys of failed items are not remembered */
    for (size_t i = 0; i < bt->n; i++) {
        if (bt->key_new[i] && !bt->fold[i].applied) {
            pg_arr_i64(WW_ARRAY(as, FORGET_GEN), bt->items[i].board->gen);
            pg_arr_text(WW_ARRAY(as, FORGET_KEY), bt->items[i].idem_key);
        }
    }
    /* drafts of the answers of new keys */
    for (size_t i = 0; i < bt->n; i++) {
        if (bt->key_new[i] && bt->fold[i].applied) {
            char *draft = render(&bt->items[i], bt, i, 0, 0);
            pg_arr_i64(WW_ARRAY(as, DRAFT_GEN), bt->items[i].board->gen);
            pg_arr_text(WW_ARRAY(as, DRAFT_KEY), bt->items[i].idem_key);
            pg_arr_text(WW_ARRAY(as, DRAFT_TEXT), draft);
            free(draft);
        }
    }
    const char *p[WW_PARAMS];
    pg_arrays_close(&as, p);
    pg_arrays_t bs;
    const char *bp[6];
    bool count = bucket_params(bt, &bs, bp);
    pg_arrays_t rs;
    const char *rp[4];
    char min_rows[16], steps[24];
    bool recut = false;
    if (count)
        recut = recut_params(bt, &rs, rp, min_rows, sizeof min_rows, steps, sizeof steps);
    pg_arrays_t ns;
    const char *np[5];
    bool notify = notify_params(bt, &ns, np, true);
    pg_arrays_t ts;
    const char *tp[7];
    bool tour = tournament_params(bt, &ts, tp);
    pg_arrays_t ls;
    const char *lp[3];
    bool league = league_params(bt, &ls, lp);
    /* One round trip: the write, the cache invalidation notice, the commit, and (when replicas
     * serve reads) the WAL position the commit reached, which a replica must have replayed
     * before it answers a read of these boards. */
    pg_stmt_t stmts[8];
    PGresult *res[8] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    int k = 0, i_buckets = -1, i_recut = -1, i_notify = -1, i_lsn = -1, i_tour = -1, i_league = -1;
    stmts[k++] = (pg_stmt_t){ws_write_sql, WW_PARAMS, p, WS_WRITE};
    if (tour)
        stmts[i_tour = k++] = (pg_stmt_t){ws_tournament_sql, 7, tp, WS_TOURNAMENT};
    if (league)
        stmts[i_league = k++] = (pg_stmt_t){ws_league_sql, 3, lp, WS_LEAGUE};
    if (count)
        stmts[i_buckets = k++] = (pg_stmt_t){ws_buckets_sql, 6, bp, WS_BUCKETS};
    if (recut)
        stmts[i_recut = k++] = (pg_stmt_t){ws_recut_sql, 4, rp, WS_RECUT};
    if (notify)
        stmts[i_notify = k++] = (pg_stmt_t){ws_notify_seq_sql, 5, np, WS_NOTIFY_SEQ};
    int i_commit = k++;
    stmts[i_commit] = (pg_stmt_t){"COMMIT", 0, NULL, NULL};
    if (bt->want_lsn)
        stmts[i_lsn = k++] = (pg_stmt_t){ws_wal_lsn_sql, 0, NULL, NULL};
    bt->commit_sent = true;
    pg_pipeline_run(c, stmts, k, res);
    step_t st = check(c, res[0], "write");
    if (st == STEP_OK && tour)
        st = check(c, res[i_tour], "tournament entrants");
    if (st == STEP_OK && league)
        st = check(c, res[i_league], "league cohorts");
    if (st == STEP_OK && league && PQntuples(res[i_league]) == 1)
        bt->league_placed = strtoll(PQgetvalue(res[i_league], 0, 0), NULL, 10);
    if (st == STEP_OK && count)
        st = check(c, res[i_buckets], "rank buckets");
    if (st == STEP_OK && recut)
        st = check(c, res[i_recut], "rank buckets' re-cut");
    if (st == STEP_OK && notify)
        st = check(c, res[i_notify], "notify");
    if (st == STEP_OK)
        st = check(c, res[i_commit], "commit");
    if (st == STEP_OK && i_lsn >= 0 && res[i_lsn] && PQresultStatus(res[i_lsn]) == PGRES_TUPLES_OK &&
        PQntuples(res[i_lsn]) == 1)
        bt->commit_lsn = pg_lsn_parse(PQgetvalue(res[i_lsn], 0, 0));
    for (int row = 0; st == STEP_OK && row < PQntuples(res[0]); row++) {
        int64_t gen = strtoll(PQgetvalue(res[0], row, 0), NULL, 10), day = strtoll(PQgetvalue(res[0], row, 1), NULL, 10);
        int64_t v = strtoll(PQgetvalue(res[0], row, 3), NULL, 10);
        if (PQgetisnull(res[0], row, 2)) { /* a window's number, for every group of it */
            for (size_t g = window_first_group(bt, gen, day); g < bt->n_groups && bt->groups[g].gen == gen &&
                                                               bt->groups[g].day == day; g++)
                bt->groups[g].window_seq = v;
            continue;
        }
        write_group_t *gr = find_group(bt, gen, day, PQgetvalue(res[0], row, 2));
        if (gr)
            gr->version = v;
    }
    for (int i = 0; i < k; i++)
        if (res[i])
            PQclear(res[i]);
    pg_arrays_free(&as);
    pg_arrays_free(&bs);
    if (count)
        pg_arrays_free(&rs);
    pg_arrays_free(&ns);
    pg_arrays_free(&ts);
    pg_arrays_free(&ls);
    return st;
}

static step_t simple(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    step_t st = check(c, r, sql);
    PQclear(r);
    return st;
}

/* Drop this instance's cached answers that the batch changed, before anyone is answered. */
static void invalidate_cache(writer_t *w, batch_t *bt)
{
    for (size_t g = 0; w->l1 && g < bt->n_groups; g++) {
        write_group_t *gr = &bt->groups[g];
        if (!gr->changed)
            continue;
        order_pos_t old_pos, new_pos;
        order_pos_set(&new_pos, order_sort_key(gr->board->sort, gr->cur.value), gr->achieved_ms, gr->player,
                      strlen(gr->player));
        if (gr->existed)
            order_pos_set(&old_pos, order_sort_key(gr->board->sort, gr->old_value), gr->old_achieved_ms, gr->player,
                          strlen(gr->player));
        l1_invalidate(w->l1, gr->gen, gr->day, gr->existed ? &old_pos : NULL, &new_pos, !gr->existed);
    }
}

/* ---------------------------------------------------------------- after the commit */

/* Tell the rank tier what each window's transaction number changed, before anyone is answered:
 * the tier applies it at once when it is the window's next number, and answers from the window
 * only once it holds it (read-your-writes). */
static void tell_tier(writer_t *w, const batch_t *bt)
{
    if (!w->tier)
        return;
    tier_change_t *ch = xmalloc((bt->n_groups ? bt->n_groups : 1) * sizeof *ch);
    for (size_t g = 0; g < bt->n_groups;) {
        size_t h = g, n = 0;
        for (; h < bt->n_groups && bt->groups[h].gen == bt->groups[g].gen && bt->groups[h].day == bt->groups[g].day;
             h++) {
            const write_group_t *gr = &bt->groups[h];
            if (!gr->changed)
                continue;
            ch[n++] = (tier_change_t){gr->player, strlen(gr->player), order_sort_key(gr->board->sort, gr->cur.value),
                                      gr->achieved_ms, gr->metadata, gr->metadata ? strlen(gr->metadata) : 0};
        }
        if (bt->groups[g].window_seq > 0)
            rank_tier_committed(w->tier, bt->groups[g].gen, bt->groups[g].day, bt->groups[g].window_seq, ch, n);
        g = h;
    }
    free(ch);
}

static int cmp_pos(const void *a, const void *b)
{
    return order_pos_cmp(a, b);
}

/* How many of sorted[0..n) are before `p`. */
static int64_t count_before(const order_pos_t *sorted, size_t n, const order_pos_t *p)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (order_pos_cmp(&sorted[mid], p) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int64_t)lo;
}

/* A group's place before the batch (`old`) or after it, into *p. */
static void group_pos(const write_group_t *gr, bool old, order_pos_t *p)
{
    (void)order_pos_set(p, order_sort_key(gr->board->sort, old ? gr->old_value : gr->cur.value),
                        old ? gr->old_achieved_ms : gr->achieved_ms, gr->player, strlen(gr->player)); /* ids were validated */
}

/* What the batch moved in one window (groups g..h): the places its changed standings left and
 * took, sorted. */
typedef struct {
    order_pos_t *from, *to;
    size_t n_from, n_to;
} moves_t;

static void moves_of(const batch_t *bt, size_t g, size_t h, moves_t *mv)
{
    size_t to = 0, from = 0;
    for (size_t x = g; x < h; x++) {
        to += bt->groups[x].changed;
        from += bt->groups[x].changed && bt->groups[x].existed;
    }
    /* Sized to what moved: a batch of thousands would otherwise page in and give back (madvise)
     * hundreds of kilobytes per window. */
    mv->from = xmalloc((from ? from : 1) * sizeof *mv->from);
    mv->to = xmalloc((to ? to : 1) * sizeof *mv->to);
    mv->n_from = mv->n_to = 0;
    for (size_t x = g; x < h; x++) {
        const write_group_t *gr = &bt->groups[x];
        if (!gr->changed)
            continue;
        group_pos(gr, false, &mv->to[mv->n_to++]);
        if (gr->existed)
            group_pos(gr, true, &mv->from[mv->n_from++]);
    }
    qsort(mv->to, mv->n_to, sizeof *mv->to, cmp_pos);
    qsort(mv->from, mv->n_from, sizeof *mv->from, cmp_pos);
}

static void moves_free(moves_t *mv)
{
    free(mv->from);
    free(mv->to);
}

/* The rank place `p` had before the batch, from the rank it has after it (`after`, one more
 * than the standings before it then): the standings the batch moved ahead of it were not there,
 * those it moved from ahead of it were. A place a group left is not before itself. */
static int64_t rank_before(const moves_t *mv, const order_pos_t *p, int64_t after)
{
    return after - count_before(mv->to, mv->n_to, p) + count_before(mv->from, mv->n_from, p);
}

/* Whether window group g..h changed anything in PostgreSQL (its transaction has a number). */
static bool window_changed(const batch_t *bt, size_t g)
{
    return bt->groups[g].window_seq > 0;
}

/*
 * Apply the batch to Redis, window by window, and take each group's rank: from Redis where
 * this instance trusts the window (loaded, and its mark checked since the last outage), else
 * from PostgreSQL. A window whose update did not land (Redis down or refusing it) is noted
 * (redis_note_unapplied): the rebuilder marks it cold for every instance once Redis answers.
 */
static void rank_groups(writer_t *w, PGconn *c, batch_t *bt)
{
    redis_conn_t *rc = redis_acquire(w->redis);
    for (size_t g = 0; g < bt->n_groups;) {
        size_t h = g;
        while (h < bt->n_groups && bt->groups[h].gen == bt->groups[g].gen && bt->groups[h].day == bt->groups[g].day)
            h++;
        size_t n = h - g;
        bool ranked = false, applied = false;
        if (rc) {
            rb_change_t *ch = xcalloc(n, sizeof *ch);
            size_t k = 0;
            for (size_t x = g; x < h; x++) {
                write_group_t *gr = &bt->groups[x];
                ch[k].player = gr->player;
                ch[k].sort_key = order_sort_key(gr->board->sort, gr->cur.value);
                ch[k].achieved_ms = gr->achieved_ms;
                ch[k].metadata = gr->metadata;
                /* Unchanged standings are re-sent with version 0: never applied, but ranked. */
                ch[k].version = gr->changed ? gr->version : 0;
                k++;
            }
            int64_t *ranks = xcalloc(n, sizeof *ranks), *before = xcalloc(n, sizeof *before);
            int64_t total = 0;
            bool ready = false;
            rb_status_t st = rb_apply(rc, bt->groups[g].gen, bt->groups[g].day, ch, n, bt->groups[g].window_seq, ranks,
                                      before, &total, &ready);
            applied = st == RB_OK;
            if (st == RB_DOWN) {
                redis_release(w->redis, rc, true);
                rc = NULL;
            } else if (st == RB_OK && ready && redis_window_trusted(w->redis, bt->groups[g].gen, bt->groups[g].day, NULL)) {
                bool all = true;
                for (size_t x = 0; x < n; x++)
                    all = all && ranks[x] > 0;
                if (all) {
                    moves_t mv = {0};
                    bool left = false; /* standings only ranked: their rank before is counted here */
                    for (size_t x = g; x < h && !left; x++)
                        left = bt->groups[x].existed && !bt->groups[x].changed;
                    if (left)
                        moves_of(bt, g, h, &mv);
                    for (size_t x = 0; x < n; x++) {
                        write_group_t *gr = &bt->groups[g + x];
                        gr->rank = ranks[x];
                        if (gr->existed && !gr->changed) { /* only ranked: its place is where it was */
                            order_pos_t p;
                            group_pos(gr, true, &p);
                            gr->prev_rank = rank_before(&mv, &p, ranks[x]);
                        } else {
                            gr->prev_rank = gr->existed && before[x] > 0 ? before[x] : 0; /* else prev_ranks_pg */
                        }
                    }
                    moves_free(&mv);
                    ranked = true;
                }
            } else if (st == RB_OK && w->rebuilder) { /* cold, or not checked yet since the last outage */
                rebuilder_request(w->rebuilder, bt->groups[g].board, bt->groups[g].day);
            }
            free(ranks);
            free(before);
            free(ch);
        }
        if (!applied && window_changed(bt, g))
            redis_note_unapplied(w->redis, bt->groups[g].gen, bt->groups[g].day);
        if (!ranked) {
            /* Where each standing was written: a rank even if the player was deleted since. */
            order_pos_t *pos = xcalloc(n, sizeof *pos);
            int64_t *ranks = xcalloc(n, sizeof *ranks);
            for (size_t x = 0; x < n; x++) {
                const write_group_t *gr = &bt->groups[g + x];
                (void)order_pos_set(&pos[x], order_sort_key(gr->board->sort, gr->cur.value), gr->achieved_ms,
                                    gr->player, strlen(gr->player)); /* ids were validated */
            }
            if (q_ranks_at(c, bt->groups[g].board, bt->groups[g].day, pos, n, ranks) == Q_OK)
                for (size_t x = 0; x < n; x++)
                    bt->groups[g + x].rank = ranks[x];
            free(ranks);
            free(pos);
        }
        g = h;
    }
    if (rc)
        redis_release(w->redis, rc, false);
}

/*
 * The previous rank of every group whose player held a standing and whose rank before the batch
 * is not known yet (Redis off or cold, or a newer version there already), in PostgreSQL: the rank
 * its old place has now (one statement per window), the batch's own moves taken back.
 */
static void prev_ranks_pg(PGconn *c, batch_t *bt)
{
    size_t cap = 0;
    for (size_t g = 0; g < bt->n_groups; g++)
        cap += bt->groups[g].existed && bt->groups[g].prev_rank == 0;
    if (cap == 0)
        return; /* Redis gave them all: nothing to allocate or ask */
    order_pos_t *pos = xcalloc(cap, sizeof *pos);
    size_t *idx = xcalloc(cap, sizeof *idx);
    int64_t *ranks = xcalloc(cap, sizeof *ranks);
    for (size_t g = 0; g < bt->n_groups;) {
        size_t h = g, k = 0;
        while (h < bt->n_groups && bt->groups[h].gen == bt->groups[g].gen && bt->groups[h].day == bt->groups[g].day) {
            const write_group_t *gr = &bt->groups[h];
            if (gr->existed && gr->prev_rank == 0) {
                group_pos(gr, true, &pos[k]);
                idx[k++] = h;
            }
            h++;
        }
        if (k > 0 && q_ranks_at(c, bt->groups[g].board, bt->groups[g].day, pos, k, ranks) == Q_OK) {
            moves_t mv;
            moves_of(bt, g, h, &mv);
            for (size_t x = 0; x < k; x++)
                bt->groups[idx[x]].prev_rank = rank_before(&mv, &pos[x], ranks[x]);
            moves_free(&mv);
        }
        g = h;
    }
    free(ranks);
    free(idx);
    free(pos);
}

/* Each applied item's previous_rank: its group's rank before the batch for the first, then the
 * rank the item before it (of the same player) answers with. An item whose previous rank is not
 * known is not answered with a rank either (503, as an unknown rank). */
static void prev_rank_items(batch_t *bt)
{
    int64_t *last = xcalloc(bt->n_groups ? bt->n_groups : 1, sizeof *last);
    for (size_t g = 0; g < bt->n_groups; g++)
        last[g] = bt->groups[g].existed ? bt->groups[g].prev_rank : -1;
    for (size_t i = 0; i < bt->n; i++) { /* arrival order, per player too */
        if (!bt->fold[i].applied)
            continue;
        int g = bt->group_of[i];
        bt->prev_rank[i] = bt->fold[i].had_prev ? last[g] : -1;
        if (bt->prev_rank[i] == 0)
            bt->rank[i] = 0;
        last[g] = bt->rank[i];
    }
    free(last);
}

/* Whether item i's own result (the score and time it left) is its group's final standing. */
static bool item_is_final(const batch_t *bt, size_t i)
{
    const write_group_t *gr = &bt->groups[bt->group_of[i]];
    return bt->fold[i].after == gr->cur.value && bt->fold[i].achieved_ms == gr->achieved_ms;
}

/*
 * The rank each applied item answers with, consistent with the score it reports. Most items
 * leave their player's final standing: the group's rank. An item a later one of the same player
 * moved on from (two `latest` submissions in one batch, or a `best` that did not improve on an
 * earlier item) reports its own score: its rank is that of its own position in the committed
 * window, the player's final standing set aside (PostgreSQL, one statement per window). 0 where
 * no rank could be read: that item is answered 503, never 200 with rank 0.
 */
static void rank_items(PGconn *c, batch_t *bt)
{
    size_t *odd = xcalloc(bt->n ? bt->n : 1, sizeof *odd);
    size_t m = 0;
    for (size_t i = 0; i < bt->n; i++) {
        if (!bt->fold[i].applied)
            continue;
        if (item_is_final(bt, i))
            bt->rank[i] = bt->groups[bt->group_of[i]].rank;
        else
            odd[m++] = i; /* in item order; grouped by window below */
    }
    for (size_t a = 0; a < m;) {
        const write_group_t *first = &bt->groups[bt->group_of[odd[a]]];
        order_pos_t *pos = xcalloc(m - a, sizeof *pos);
        size_t *idx = xcalloc(m - a, sizeof *idx);
        size_t k = 0;
        for (size_t b = a; b < m; b++) {
            if (odd[b] == SIZE_MAX)
                continue;
            const write_group_t *gr = &bt->groups[bt->group_of[odd[b]]];
            if (gr->gen != first->gen || gr->day != first->day)
                continue;
            const write_item_t *it = &bt->items[odd[b]];
            (void)order_pos_set(&pos[k], order_sort_key(gr->board->sort, bt->fold[odd[b]].after),
                                bt->fold[odd[b]].achieved_ms, it->player, strlen(it->player));
            idx[k++] = odd[b];
            odd[b] = SIZE_MAX; /* taken */
        }
        int64_t *ranks = xcalloc(k, sizeof *ranks);
        if (q_ranks_at(c, first->board, first->day, pos, k, ranks) == Q_OK) {
            for (size_t x = 0; x < k; x++) {
                const write_group_t *gr = &bt->groups[bt->group_of[idx[x]]];
                order_pos_t final;
                (void)order_pos_set(&final, order_sort_key(gr->board->sort, gr->cur.value), gr->achieved_ms,
                                    gr->player, strlen(gr->player));
                /* Its own final standing is not another player ahead of it. */
                bt->rank[idx[x]] = ranks[x] - (order_pos_cmp(&final, &pos[x]) < 0 ? 1 : 0);
            }
        }
        free(ranks);
        free(idx);
        free(pos);
        while (a < m && odd[a] == SIZE_MAX)
            a++;
    }
    free(odd);
}

/* An applied item whose rank neither Redis nor PostgreSQL gave: its submission is committed. */
static void answer_rank_unknown(write_item_t *it)
{
    free(it->response);
    it->response = NULL;
    write_item_fail(it, 503, "unavailable", NULL,
                    "the submission is stored but its rank could not be read: read the player's standing,"
                    " or send it again with the same idempotency key");
    it->maybe_stored = true;
}

/* The Submit result of item i (owned by the caller), with its previous_rank (-1: null). Rank 0
 * renders the draft stored with the batch, which draft_with_rank completes: its previous_rank
 * is then {"ms": the previous standing's achieved time}, the rest of that place being in the
 * draft already (previous_score, player_id). */
static char *render(const write_item_t *it, const batch_t *bt, size_t i, int64_t rank, int64_t prev_rank)
{
    buf_t b;
    buf_init(&b);
    char day[11], at[25];
    window_format_day(it->day, day);
    window_format_ms(bt->fold[i].achieved_ms, at);
    buf_puts(&b, "{\"board\":");
    buf_json_str(&b, it->board->id, strlen(it->board->id));
    buf_puts(&b, ",\"window\":\"");
    buf_puts(&b, day);
    buf_puts(&b, "\",\"player_id\":");
    buf_json_str(&b, it->player, strlen(it->player));
    buf_puts(&b, ",\"score\":");
    buf_i64(&b, bt->fold[i].after);
    buf_puts(&b, ",\"previous_score\":");
    if (bt->fold[i].had_prev)
        buf_i64(&b, bt->fold[i].prev);
    else
        buf_puts(&b, "null");
    buf_puts(&b, ",\"rank\":");
    buf_i64(&b, rank);
    buf_puts(&b, ",\"previous_rank\":");
    if (!bt->fold[i].had_prev || (rank > 0 && prev_rank < 0))
        buf_puts(&b, "null");
    else if (rank > 0)
        buf_i64(&b, prev_rank);
    else
        buf_printf(&b, "{\"ms\":%" PRId64 "}", bt->fold[i].prev_achieved_ms);
    buf_puts(&b, ",\"achieved_at\":\"");
    buf_puts(&b, at);
    buf_puts(&b, bt->fold[i].updated ? "\",\"updated\":true}" : "\",\"updated\":false}");
    return buf_steal(&b, NULL);
}

/* The markers of a draft (render with rank 0). Board and player ids cannot hold a quote, so
 * each occurs once. */
static const char draft_rank[] = ",\"rank\":0,", draft_prev[] = "\"previous_rank\":{\"ms\":",
                  draft_prev_score[] = "\"previous_score\":";

/* The place a draft's player held before its submission (previous score and achieved time);
 * false when the draft has none to complete (a first standing, or a draft of an older version). */
static bool draft_prev_place(const char *draft, int64_t *score, int64_t *ms)
{
    const char *p = strstr(draft, draft_prev), *sc = strstr(draft, draft_prev_score);
    if (!p || !sc)
        return false;
    *ms = strtoll(p + strlen(draft_prev), NULL, 10);
    *score = strtoll(sc + strlen(draft_prev_score), NULL, 10);
    return true;
}

/* A draft with its rank filled in, and its previous_rank where it has a place to complete
 * (`prev`, from draft_prev_place's place), owned; NULL when `draft` is not one. */
static char *draft_with_rank(const char *draft, int64_t rank, int64_t prev)
{
    const char *at = strstr(draft, draft_rank);
    if (!at)
        return NULL;
    buf_t b;
    buf_init(&b);
    buf_append(&b, draft, (size_t)(at - draft));
    buf_printf(&b, ",\"rank\":%" PRId64 ",", rank);
    const char *rest = at + strlen(draft_rank), *p = strstr(rest, draft_prev), *end = p ? strchr(p, '}') : NULL;
    if (end) {
        buf_append(&b, rest, (size_t)(p - rest));
        buf_printf(&b, "\"previous_rank\":%" PRId64, prev);
        rest = end + 1;
    }
    buf_puts(&b, rest);
    return buf_steal(&b, NULL);
}

/* The window a draft answers for: a replay may come after that window rolled over. */
static bool draft_window(const char *draft, int64_t *day)
{
    static const char marker[] = "\"window\":\"";
    const char *at = strstr(draft, marker);
    if (!at || strlen(at) < strlen(marker) + 10)
        return false;
    char d[11];
    memcpy(d, at + strlen(marker), 10);
    d[10] = '\0';
    return window_parse_day(d, day);
}

static void answer_unstored(write_item_t *it)
{
    free(it->response);
    it->response = NULL;
    write_item_fail(it, 503, "unavailable", NULL,
               "the submission is stored but its answer is not: send it again with the same idempotency key");
    it->maybe_stored = true;
}

/*
 * Store the answers of the keyed items idx[0..k) (status 200, response set) unless an
 * answer is stored for their key already. The first answer stored wins: a replay on
 * another instance may have completed one from its draft, or the writer of the batch
 * stored its own. Afterwards each item's response is the stored answer; an item whose
 * answer could be neither stored nor read gets 503. Runs after the commit (autocommit).
 */
static void store_answers(PGconn *c, batch_t *bt, const size_t *idx, size_t k)
{
    if (k == 0)
        return;
    pg_arrays_t as;
    pg_arrays_open(&as, 4);
    for (size_t a = 0; a < k; a++) {
        write_item_t *it = &bt->items[idx[a]];
        pg_arr_i64(&as.a[0], (int64_t)idx[a]);
        pg_arr_i64(&as.a[1], it->board->gen);
        pg_arr_text(&as.a[2], it->idem_key);
        pg_arr_text(&as.a[3], it->response);
    }
    const char *p[4];
    pg_arrays_close(&as, p);
    bool *stored = xcalloc(bt->n, sizeof *stored);
    PGresult *r = PQexecParams(c,
                               ws_store_answers_sql,
                               4, NULL, p, NULL, NULL, 0);
    bool ok = check(c, r, "store answers") == STEP_OK;
    size_t took = 0;
    for (int row = 0; ok && row < PQntuples(r); row++) {
        size_t i = (size_t)strtoull(PQgetvalue(r, row, 0), NULL, 10);
        if (i < bt->n && !stored[i])
            stored[i] = true, took++;
    }
    PQclear(r);
    if (ok && took < k) {
        /* Answers stored first elsewhere: those are the ones to send. */
        r = PQexecParams(c,
                         ws_stored_answers_sql,
                         3, NULL, p, NULL, NULL, 0);
        if (check(c, r, "stored answers") == STEP_OK) {
            for (int row = 0; row < PQntuples(r); row++) {
                size_t i = (size_t)strtoull(PQgetvalue(r, row, 0), NULL, 10);
                if (i >= bt->n || stored[i])
                    continue;
                free(bt->items[i].response);
                bt->items[i].response = xstrdup(PQgetvalue(r, row, 1));
                stored[i] = true;
            }
        }
        PQclear(r);
    }
    for (size_t a = 0; a < k; a++)
        if (!stored[idx[a]])
            answer_unstored(&bt->items[idx[a]]);
    free(stored);
    pg_arrays_free(&as);
}

typedef struct {
    const batch_t *bt;
    const int64_t *day;
} draft_order_t;

static int cmp_draft(const void *x, const void *y, void *ctx)
{
    const draft_order_t *o = ctx;
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    int64_t ga = o->bt->items[a].board->gen, gb = o->bt->items[b].board->gen;
    if (ga != gb)
        return ga < gb ? -1 : 1;
    if (o->day[a] != o->day[b])
        return o->day[a] < o->day[b] ? -1 : 1;
    return (a > b) - (a < b);
}

/*
 * Replays of submissions whose batch committed but whose answer was never stored: the
 * instance that wrote it stopped, or lost PostgreSQL, between its commit and
 * remember_responses. The draft, with the player's rank now, becomes the answer (so its
 * rank is that of the player's standing now, which later submissions may have changed).
 * One rank query per window (a PostgreSQL count: this path is rare), one statement to
 * store them all. Runs after the commit.
 */
static void recover_answers(PGconn *c, batch_t *bt)
{
    size_t m = 0;
    size_t *idx = xcalloc(bt->n, sizeof *idx);
    int64_t *day = xcalloc(bt->n, sizeof *day);
    for (size_t i = 0; i < bt->n; i++) {
        if (!bt->draft[i])
            continue;
        if (draft_window(bt->draft[i], &day[i]))
            idx[m++] = i;
        else
            write_item_fail(&bt->items[i], 409, "conflict", NULL, "the answer to this idempotency key is lost");
    }
    draft_order_t o = {bt, day};
    qsort_r(idx, m, sizeof *idx, cmp_draft, &o);
    size_t *done = xcalloc(m ? m : 1, sizeof *done);
    size_t n_done = 0;
    const char **ids = xcalloc(m ? m : 1, sizeof *ids);
    for (size_t g = 0; g < m;) {
        size_t h = g;
        const write_item_t *first = &bt->items[idx[g]];
        while (h < m && bt->items[idx[h]].board->gen == first->board->gen && day[idx[h]] == day[idx[g]])
            h++;
        for (size_t a = g; a < h; a++)
            ids[a - g] = bt->items[idx[a]].player;
        entries_t e;
        entries_init(&e);
        bool ok = q_players(c, first->board, day[idx[g]], ids, h - g, &e) == Q_OK;
        const entry_t **sorted = entries_by_player(&e);
        /* The previous places, ranked now as the writer ranks them (prev_ranks_pg). */
        order_pos_t *pos = xcalloc(h - g, sizeof *pos);
        int64_t *prev = xcalloc(h - g, sizeof *prev);
        bool *has_prev = xcalloc(h - g, sizeof *has_prev);
        for (size_t a = g; a < h; a++) {
            int64_t score = 0, ms = 0;
            const char *pl = bt->items[idx[a]].player;
            has_prev[a - g] = draft_prev_place(bt->draft[idx[a]], &score, &ms);
            (void)order_pos_set(&pos[a - g], order_sort_key(first->board->sort, score), ms, pl, strlen(pl));
        }
        ok = ok && q_ranks_at(c, first->board, day[idx[g]], pos, h - g, prev) == Q_OK;
        for (size_t a = g; a < h; a++) {
            write_item_t *it = &bt->items[idx[a]];
            const entry_t *found = ok ? entry_of(sorted, e.n, it->player) : NULL;
            if (found && has_prev[a - g]) {
                order_pos_t now;
                (void)order_pos_set(&now, found->sort_key, found->achieved_ms, it->player, strlen(it->player));
                prev[a - g] -= order_pos_cmp(&now, &pos[a - g]) < 0 ? 1 : 0;
            }
            char *answer = found ? draft_with_rank(bt->draft[idx[a]], found->rank, prev[a - g]) : NULL;
            if (answer) {
                it->status = 200;
                it->response = answer;
                done[n_done++] = idx[a];
            } else if (ok) { /* the player or the window was deleted since */
                write_item_fail(it, 409, "conflict", NULL,
                           "the answer to this idempotency key is lost and its standing no longer exists");
            } else {
                answer_unstored(it);
            }
        }
        free(has_prev);
        free(prev);
        free(pos);
        free(sorted);
        entries_clear(&e);
        g = h;
    }
    store_answers(c, bt, done, n_done);
    free(ids);
    free(done);
    free(day);
    free(idx);
}

/* Store the answers of new keys. An answer whose rank is unknown (neither Redis nor
 * PostgreSQL answered) is not stored: its item gets 503, and its retry the draft completed. */
static void remember_responses(PGconn *c, batch_t *bt)
{
    size_t k = 0;
    size_t *idx = xcalloc(bt->n ? bt->n : 1, sizeof *idx);
    for (size_t i = 0; i < bt->n; i++) {
        if (!bt->key_new[i] || !bt->fold[i].applied)
            continue;
        if (bt->rank[i] > 0)
            idx[k++] = i;
        else
            answer_unstored(&bt->items[i]);
    }
    store_answers(c, bt, idx, k);
    free(idx);
}

/* Every item not yet answered: 503, the primary cannot take it. */
static void all_unavailable(write_item_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (items[i].status == 0)
            write_item_fail(&items[i], 503, "unavailable", NULL, "the primary database is unavailable");
}

/* Replicas answer reads of the batch's boards only once they have replayed its commit. */
static void remember_lsn(writer_t *w, PGconn *c, batch_t *bt)
{
    if (!bt->want_lsn)
        return;
    int64_t last = 0;
    for (size_t g = 0; g < bt->n_groups; g++) {
        write_group_t *gr = &bt->groups[g];
        if (!gr->changed || gr->gen == last)
            continue;
        last = gr->gen;
        if (bt->commit_lsn)
            pg_router_saw_lsn(w->router, gr->gen, bt->commit_lsn);
        else /* reading it with the commit failed: ask once more */
            pg_router_note_commit(w->router, c, gr->gen);
    }
}

/* Whether an import holds one of the batch's windows (after a lock timeout, on `c` out of any
 * transaction). */
static bool import_holds(PGconn *c, const batch_t *bt)
{
    pg_arrays_t as;
    pg_arrays_open(&as, 2);
    for (size_t g = 0; g < bt->n_groups; g++) {
        if (g > 0 && bt->groups[g].gen == bt->groups[g - 1].gen && bt->groups[g].day == bt->groups[g - 1].day)
            continue;
        pg_arr_i64(&as.a[0], bt->groups[g].gen);
        pg_arr_day(&as.a[1], bt->groups[g].day);
    }
    const char *p[2];
    pg_arrays_close(&as, p);
    PGresult *r = PQexecParams(c, ws_import_held_sql, 2, NULL, p, NULL, NULL, 0);
    bool held = pg_ok(r) && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    pg_arrays_free(&as);
    return held;
}

void writer_submit(writer_t *w, write_item_t *items, size_t n)
{
    /* The primary known down (its breaker open): answer at once instead of waiting on a
     * connection that cannot be had. */
    PGconn *c = pg_router_primary_usable(w->router) ? pg_pool_acquire(w->primary, w->router ? 1000 : 2000) : NULL;
    if (!c) {
        all_unavailable(items, n);
        return;
    }
    batch_t bt;
    batch_init(&bt, items, n);
    bt.want_lsn = pg_router_has_replicas(w->router);
    bt.rank_bucket_rows = w->rank_bucket_rows;
    step_t st = STEP_FAIL;
    int64_t first_try_ms = clock_mono_ms();
    for (int attempt = 0, fresh = 0; attempt < MAX_ATTEMPTS; attempt++) {
        batch_reset(&bt);
        /* A primary that stops answering without closing must not hold the writer (and every
         * write queued behind it) for good: each attempt gets two statements' worth (the server
         * bounds the whole pipeline by its statement timeout; the rest is the network). */
        pg_deadline_disarm(c);
        pg_deadline_arm_statement(c, 2);
        /* Keys must be claimed before the players are locked; without keys,
         * BEGIN travels with the locks and reads. */
        bool keys = false;
        for (size_t i = 0; i < n && !keys; i++)
            keys = items[i].status == 0 && items[i].idem_key;
        st = keys ? simple(c, "BEGIN") : STEP_OK;
        if (st == STEP_OK && keys)
            st = claim_keys(c, &bt);
        if (st == STEP_OK)
            st = lock_and_read(c, &bt, !keys);
        if (st == STEP_OK) {
            write_fold(bt.items, bt.n, bt.group_of, bt.groups, bt.fold);
            st = write_and_commit(c, &bt);
        }
        if (st == STEP_OK)
            break;
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
        if (PQstatus(c) != CONNECTION_OK && !bt.commit_sent && !fresh) {
            /* A pooled connection that died before it was used (a restart of the primary):
             * nothing of this batch was committed, so it runs again on a new one, once. */
            pg_deadline_disarm(c);
            pg_pool_release(w->primary, c, true);
            fresh = 1;
            c = pg_pool_acquire(w->primary, 1000);
            if (!c)
                break;
            log_info(NULL, "writer: the primary's connection was lost before the commit; trying a new one");
            attempt--;
            continue;
        }
        if (st != STEP_RETRY || PQstatus(c) != CONNECTION_OK)
            break;
        if (attempt + 1 == MAX_ATTEMPTS && clock_mono_ms() - first_try_ms < IMPORT_WAIT_MAX_MS &&
            import_holds(c, &bt))
            attempt--; /* an import's merge: wait for its commit, then apply on top */
    }
    if (st != STEP_OK) {
        bool down = !c || PQstatus(c) != CONNECTION_OK;
        if (down && bt.commit_sent) {
            /* The COMMIT went out and the answer never came: the batch may have committed, and
             * then Redis misses it. Its windows are marked cold (redis_note_unapplied). */
            for (size_t g = 0; g < bt.n_groups; g++)
                if (g == 0 || bt.groups[g].gen != bt.groups[g - 1].gen || bt.groups[g].day != bt.groups[g - 1].day)
                    redis_note_unapplied(w->redis, bt.groups[g].gen, bt.groups[g].day);
        }
        for (size_t i = 0; i < n; i++) {
            if (items[i].status == 200 && bt.replay[i])
                continue;
            if (bt.draft[i]) { /* committed by an earlier batch: a retry completes it */
                answer_unstored(&items[i]);
                continue;
            }
            if (items[i].status == 0 || items[i].status == 200 || bt.fold[i].applied) {
                free(items[i].response);
                items[i].response = NULL;
                if (down) {
                    write_item_fail(&items[i], 503, "unavailable", NULL, "the primary database is unavailable");
                    items[i].maybe_stored = bt.commit_sent; /* the COMMIT's answer never came */
                } else if (st == STEP_RETRY) /* still waiting on locks after every attempt: nothing was stored */
                    write_item_fail(&items[i], 503, "unavailable", NULL, "the database is busy: try again");
                else
                    write_item_fail(&items[i], 500, "internal", NULL, "the submission could not be stored");
            }
        }
        batch_free(&bt);
        /* A failed batch closes its connection: a new one prepares the statements afresh
         * (a migration that changed a table leaves the old plans failing for good). */
        if (c) {
            pg_deadline_disarm(c);
            pg_pool_release(w->primary, c, true);
        }
        return;
    }
    pg_deadline_disarm(c);
    atomic_fetch_add(&w->league_placed, (unsigned long long)bt.league_placed);
    pg_deadline_arm_statement(c, 2); /* the ranks read back, the notices, the stored answers */
    remember_lsn(w, c, &bt);

    /* Redis first, then the caches: a reader that misses after the invalidation
     * must find the new state in Redis. Other instances dropped their entries at
     * the commit already; a second notice covers reads they served from Redis in
     * between. */
    rank_groups(w, c, &bt);
    tell_tier(w, &bt);
    invalidate_cache(w, &bt);
    if (notify_changes(c, &bt) != STEP_OK)
        log_warn(NULL, "cache invalidation notice after the Redis update failed");
    prev_ranks_pg(c, &bt);
    rank_items(c, &bt);
    prev_rank_items(&bt);
    for (size_t i = 0; i < n; i++) {
        if (!bt.fold[i].applied)
            continue;
        if (bt.rank[i] <= 0 && !bt.key_new[i]) { /* keyed ones: remember_responses */
            answer_rank_unknown(&items[i]);
            continue;
        }
        items[i].status = 200;
        items[i].response = render(&items[i], &bt, i, bt.rank[i], bt.prev_rank[i]);
    }
    recover_answers(c, &bt);
    remember_responses(c, &bt);
    /* Duplicated keys inside the batch answer like their first occurrence. */
    for (size_t i = 0; i < n; i++) {
        int j = bt.dup_of[i];
        if (j < 0 || items[i].status != 0)
            continue;
        if (strcmp(items[j].request, items[i].request) != 0)
            write_item_fail(&items[i], 409, "conflict", NULL, "idempotency key was used with a different request");
        else if (items[j].status == 200)
            items[i].status = 200, items[i].response = xstrdup(items[j].response);
        else
            write_item_fail(&items[i], items[j].status, items[j].err_code, items[j].err_field, items[j].err_message);
    }
    batch_free(&bt);
    pg_deadline_disarm(c);
    pg_pool_release(w->primary, c, false);
}
