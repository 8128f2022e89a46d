/*
 * worker/write_ranks.c — after the commit: the batch applied to Redis, and the rank and previous
 * rank each answer reports.
 *
 * Ranks come from Redis where this instance trusts the window, else from PostgreSQL (one
 * statement per window). A previous rank is the rank the player's old place had just before
 * the batch: the rank that place has now, with the batch's own moves taken back (rank_before),
 * so that no second read before the write is needed.
 */
#include "worker/write_batch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/order.h"
#include "obs/log.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "util/alloc.h"

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
 * (redis_note_unapplied): the rebuilder marks it cold for every instance once Redis answers,
 * and until then an R notice keeps every instance that still reaches Redis from reading it there.
 */
void rank_groups(writer_t *w, PGconn *c, batch_t *bt)
{
    redis_conn_t *rc = redis_acquire(w->redis);
    int64_t *missed_gens = NULL, *missed_days = NULL;
    size_t n_missed = 0;
    for (size_t g = 0; g < bt->n_groups;) {
        size_t h = g;
        while (h < bt->n_groups && bt->groups[h].gen == bt->groups[g].gen && bt->groups[h].day == bt->groups[g].day)
            h++;
        size_t n = h - g;
        /* Hidden players' groups (migrations/0025_moderation.sql) are nothing of Redis's: their
         * rank is their own view's, the rank their place has among the visible players, which
         * PostgreSQL counts below. `vis` maps the visible ones. */
        size_t *vis = xcalloc(n, sizeof *vis), nv = 0;
        for (size_t x = g; x < h; x++)
            if (!bt->groups[x].hidden)
                vis[nv++] = x;
        bool ranked = false, applied = false;
        if (rc) {
            rb_change_t *ch = xcalloc(nv ? nv : 1, sizeof *ch);
            for (size_t k = 0; k < nv; k++) {
                write_group_t *gr = &bt->groups[vis[k]];
                ch[k].player = gr->player;
                ch[k].sort_key = order_sort_key(gr->board->sort, gr->cur.value);
                ch[k].achieved_ms = gr->achieved_ms;
                ch[k].metadata = gr->metadata;
                /* Unchanged standings are re-sent with version 0: never applied, but ranked. */
                ch[k].version = gr->changed ? gr->version : 0;
            }
            int64_t *ranks = xcalloc(nv ? nv : 1, sizeof *ranks), *before = xcalloc(nv ? nv : 1, sizeof *before);
            int64_t total = 0;
            bool ready = false;
            rb_status_t st = rb_apply(rc, bt->groups[g].gen, bt->groups[g].day, ch, nv, bt->groups[g].window_seq, ranks,
                                      before, &total, &ready);
            applied = st == RB_OK;
            if (st == RB_DOWN) {
                redis_release(w->redis, rc, true);
                rc = NULL;
            } else if (st == RB_OK && ready && redis_window_trusted(w->redis, bt->groups[g].gen, bt->groups[g].day, NULL)) {
                bool all = true;
                for (size_t x = 0; x < nv; x++)
                    all = all && ranks[x] > 0;
                if (all) {
                    moves_t mv = {0};
                    bool left = false; /* standings only ranked: their rank before is counted here */
                    for (size_t k = 0; k < nv && !left; k++)
                        left = bt->groups[vis[k]].existed && !bt->groups[vis[k]].changed;
                    if (left)
                        moves_of(bt, g, h, &mv);
                    for (size_t x = 0; x < nv; x++) {
                        write_group_t *gr = &bt->groups[vis[x]];
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
        if (!applied && window_changed(bt, g) && w->redis) {
            redis_note_unapplied(w->redis, bt->groups[g].gen, bt->groups[g].day);
            if (!missed_gens) {
                missed_gens = xcalloc(bt->n_groups, sizeof *missed_gens);
                missed_days = xcalloc(bt->n_groups, sizeof *missed_days);
            }
            missed_gens[n_missed] = bt->groups[g].gen;
            missed_days[n_missed++] = bt->groups[g].day;
        }
        if (!ranked || nv < n) {
            /* Where each standing was written: a rank even if the player was deleted since. A
             * hidden one's place is in no standing: 1 + the visible standings before it. */
            order_pos_t *pos = xcalloc(n, sizeof *pos);
            size_t *idx = xcalloc(n, sizeof *idx);
            int64_t *ranks = xcalloc(n, sizeof *ranks);
            size_t k = 0;
            for (size_t x = g; x < h; x++) {
                const write_group_t *gr = &bt->groups[x];
                if (ranked && !gr->hidden)
                    continue;
                (void)order_pos_set(&pos[k], order_sort_key(gr->board->sort, gr->cur.value), gr->achieved_ms,
                                    gr->player, strlen(gr->player)); /* ids were validated */
                idx[k++] = x;
            }
            if (q_ranks_at(c, bt->groups[g].board, bt->groups[g].day, pos, k, ranks) == Q_OK)
                for (size_t x = 0; x < k; x++)
                    bt->groups[idx[x]].rank = ranks[x];
            free(ranks);
            free(idx);
            free(pos);
        }
        free(vis);
        g = h;
    }
    if (rc)
        redis_release(w->redis, rc, false);
    if (n_missed > 0 && q_notify_unapplied(c, missed_gens, missed_days, n_missed) != Q_OK)
        log_warn(NULL, "writer: could not tell the other instances that Redis missed %zu window(s) of a commit; "
                       "they may read them from Redis until this instance reaches it again", n_missed);
    free(missed_gens);
    free(missed_days);
}

/*
 * The previous rank of every group whose player held a standing and whose rank before the batch
 * is not known yet (Redis off or cold, or a newer version there already), in PostgreSQL: the rank
 * its old place has now (one statement per window), the batch's own moves taken back.
 */
void prev_ranks_pg(PGconn *c, batch_t *bt)
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
void prev_rank_items(batch_t *bt)
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
void rank_items(PGconn *c, batch_t *bt)
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
                /* Its own final standing is not another player ahead of it (a hidden one's is in
                 * no standing PostgreSQL counts). */
                bt->rank[idx[x]] = ranks[x] - (!gr->hidden && order_pos_cmp(&final, &pos[x]) < 0 ? 1 : 0);
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
