/*
 * worker/writer.c — the writer thread, and the course of one batch; see writer.h for the design.
 *
 * The thread takes every job queued at that moment as one batch (run_group), and
 * writer_submit() runs it: the transaction's steps, run again after a deadlock or a lock
 * timeout (for as long as an import's merge holds one of its windows), then, once committed,
 * Redis, the caches and the answers, in that order. Each step is a file of its own sharing
 * write_batch.h: write_keys.c (step 1, the idempotency keys), write_steps.c (steps 2 to 4:
 * locks, reads, the write and the commit), write_competitions.c (tournaments' gate and
 * entrants, leagues' cohorts), write_notice.c (what every instance is told), write_ranks.c
 * (Redis, and each answer's rank and previous rank), write_answers.c (the answers rendered and
 * stored, and those of committed drafts recovered).
 */
#include "worker/writer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/l1.h"
#include "core/order.h"
#include "obs/log.h"
#include "store/pg_deadline.h"
#include "store/pg_pipeline.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "store/write_sql.h"
#include "worker/write_batch.h"
#include "worker/write_fold.h"
#include "util/alloc.h"
#include "util/clock.h"

#define MAX_ATTEMPTS 3
/* Past MAX_ATTEMPTS, a batch whose window an import holds is run again until this long after its
 * first try: the import holds the window's lock for the whole of its merge (seconds for a
 * million rows), and a submission that arrives meanwhile waits for it (API.md), not refused.
 * Any other lock held that long (an archive under way) still gets the 503. */
#define IMPORT_WAIT_MAX_MS 60000

/* Jobs are taken until their items reach this many (writer.max_batch, at most 4000): one
 * statement's arrays stay reasonable. One job is always taken whole. */
#define GROUP_MAX_ITEMS 4000

static void *writer_main(void *arg);

writer_t *writer_new(pg_pool_t *primary, pg_router_t *router, redis_pool_t *redis, rebuilder_t *rebuilder, l1_t *l1,
                     rank_tier_t *tier, size_t max_batch, int gather_us, int rank_bucket_rows)
{
    writer_t *w = xcalloc(1, sizeof *w);
    w->tier = tier;
    w->rank_bucket_rows = rank_bucket_rows < 2 ? 2 : rank_bucket_rows;
    w->router = router;
    w->max_batch = max_batch < 1 ? 1 : max_batch > GROUP_MAX_ITEMS ? GROUP_MAX_ITEMS : max_batch;
    w->gather_ns = gather_us > 0 ? (int64_t)gather_us * 1000 : 0;
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
    out->gathers_came = w ? atomic_load(&w->gathers_came) : 0;
    out->gathers_in_vain = w ? atomic_load(&w->gathers_in_vain) : 0;
    out->last_batch_ms = w ? atomic_load(&w->last_batch_ms) : 0;
    out->league_placed = w ? atomic_load(&w->league_placed) : 0;
    out->hints_carried = w ? atomic_load(&w->hints_carried) : 0;
    out->hints_alone = w ? atomic_load(&w->hints_alone) : 0;
}

static write_job_t *job_of(workq_item_t *item)
{
    return item ? WORKQ_OWNER(item, write_job_t, link) : NULL;
}

/* Commit a group of jobs as one batch and answer each; returns how many jobs it answered, in
 * *items how many submissions they held, and in *answered_at the queue's count of pushes just
 * before the first answer went (a client answered may send again before this returns). */
static size_t run_group(writer_t *w, write_job_t *jobs, size_t *items, uint64_t *answered_at)
{
    size_t total = 0, n_jobs = 0;
    for (write_job_t *j = jobs; j; j = job_of(j->link.next), n_jobs++)
        total += j->n;
    *items = total;
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
    *answered_at = workq_pushed(&w->queue);
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
    return n_jobs;
}

static size_t job_items(const workq_item_t *item)
{
    return WORKQ_OWNER(item, const write_job_t, link)->n;
}

/* A transaction of this many submissions or more is not followed by a gather: its fixed cost
 * (about 1 ms of PostgreSQL, one Redis call) is already 4 us or less a submission, and a wait
 * to double it only delays every answer in it. Lone POSTs from a game's servers come in groups
 * of tens, as many as write at once. */
#define GATHER_ENOUGH_ITEMS 256

/* Send the pending hint alone on `c` (NULL: the primary cannot be had), and drop it. */
static step_t send_hint(writer_t *w, PGconn *c)
{
    step_t st = c ? notify_hint(c, w->hint) : STEP_FAIL;
    if (st == STEP_OK)
        atomic_fetch_add(&w->hints_alone, 1);
    else /* the caches' entries still expire within http.cache_max_age */
        log_warn(NULL, "cache invalidation notice after the Redis update failed");
    free(w->hint);
    w->hint = NULL;
    return st;
}

/* The pending hint alone, on a connection of its own: no transaction began to carry it. */
static void send_hint_alone(writer_t *w)
{
    PGconn *c = pg_router_primary_usable(w->router) ? pg_pool_acquire(w->primary, 1000) : NULL;
    if (c)
        pg_deadline_arm_statement(c, 1);
    step_t st = send_hint(w, c);
    if (c) {
        pg_deadline_disarm(c);
        pg_pool_release(w->primary, c, st != STEP_OK);
    }
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    workq_pace_t pace = {.enough = GATHER_ENOUGH_ITEMS};
    size_t answered = 0, answered_items = 0; /* jobs the last transaction answered, and their submissions */
    uint64_t answered_at = 0;
    for (;;) {
        /* Wait for the clients just answered to send again (writer.gather_us), unless the queue
         * already holds a whole transaction: then waiting only delays it. */
        workq_gather_t g = {.since = answered_at, .window_ns = w->gather_ns};
        if (w->gather_ns > 0 && atomic_load(&w->queued) < w->max_batch)
            g.expect = workq_pace_expect(&pace, answered, answered_items);
        /* A pending hint waits as long as a gather may for a transaction to ride in. */
        if (w->hint)
            g.idle_ns = w->gather_ns;
        workq_item_t *jobs = workq_take_gathered(&w->queue, w->max_batch, job_items, &g);
        if (!jobs && g.idled) {
            send_hint_alone(w);
            continue;
        }
        if (!jobs)
            break;
        workq_pace_after(&pace, &g);
        if (g.waited)
            atomic_fetch_add(g.missing == 0 ? &w->gathers_came : &w->gathers_in_vain, 1);
        answered = run_group(w, job_of(jobs), &answered_items, &answered_at);
    }
    if (w->hint)
        send_hint_alone(w);
    return NULL; /* stopped, and nothing left to commit */
}

void writer_items_clear(write_item_t *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].response);
        items[i].response = NULL;
    }
}

static step_t simple(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    step_t st = step_check(c, r, sql);
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
    bt.carry_hint = w->hint;
    bt.want_lsn = pg_router_has_replicas(w->router);
    bt.rank_bucket_rows = w->rank_bucket_rows;
    step_t st = STEP_FAIL;
    int64_t first_try_ms = clock_mono_ms();
    for (int attempt = 0, fresh = 0; attempt < MAX_ATTEMPTS; attempt++) {
        batch_reset(&bt);
        /* A primary that stops answering without closing must not hold the writer (and every
         * write queued behind it) for good: each attempt gets two statements' worth (the server
         * bounds the whole pipeline by its statement timeout; the rest is the network). */
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
            if (items[i].status == 0 || items[i].status == 200 || bt.fold[i].applied || bt.flagged[i]) {
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
    atomic_fetch_add(&w->league_placed, (unsigned long long)bt.league_placed);
    pg_deadline_arm_statement(c, 2); /* again: the ranks read back, the notices, the stored answers */
    remember_lsn(w, c, &bt);

    if (w->hint) { /* the last transaction's hint went out with this one's commit */
        atomic_fetch_add(&w->hints_carried, 1);
        free(w->hint);
        w->hint = NULL;
    }
    /* Redis first, then the caches: a reader that misses after the invalidation
     * must find the new state in Redis. Other instances dropped their entries at
     * the commit already; a second notice (the hint) covers reads they served from
     * Redis in between: it rides in the next transaction, or goes alone when none
     * begins within writer.gather_us (writer_main), or at once when that is 0. */
    rank_groups(w, c, &bt);
    tell_tier(w, &bt);
    invalidate_cache(w, &bt);
    w->hint = notify_hint_take(&bt);
    if (w->hint && w->gather_ns == 0)
        (void)send_hint(w, c); /* a failure is logged: the answers do not wait on a hint */
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
        items[i].response = render_result(&items[i], &bt, i, bt.rank[i], bt.prev_rank[i]);
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
