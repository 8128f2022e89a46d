/*
 * worker/write_steps.c — steps 2 to 4 of a batch's transaction: lock, read, write, commit.
 *
 * Each is one round trip (a pipeline): the boards share-locked, the windows and players locked
 * in sorted order, the standings (and a tournament's entrants and slots) read; then, after the
 * fold, one statement writes the standings, counters, log, forgotten keys and drafts, with the
 * competitions', rank buckets' and notice statements and the COMMIT behind it.
 */
#include "worker/write_batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/order.h"
#include "core/window.h"
#include "store/pg_pipeline.h"
#include "store/pg_router.h"
#include "store/write_sql.h"
#include "util/alloc.h"

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

/* Step 2 and 3: group items per player, lock, read the current standings. */
step_t lock_and_read(PGconn *c, batch_t *bt, bool begin)
{
    size_t m = 0;
    for (size_t i = 0; i < bt->n; i++)
        if (batch_pending(bt, i) && bt->dup_of[i] < 0)
            bt->order[m++] = i;
    if (m == 0) {
        if (!begin)
            return STEP_OK;
        PGresult *r = PQexec(c, "BEGIN");
        step_t st = step_check(c, r, "begin");
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
    /* Token writes on boards with client rules: their log rows, read under the players' locks. */
    pg_arrays_t cs;
    const char *cp[5];
    bool client = client_rules_params(bt, &cs, cp);
    const char *bp[1], *lp[1], *ap[2], *ep[3], *sp[2];
    pg_arrays_close(&bs, bp);
    pg_arrays_close(&ls, lp);
    pg_arrays_close(&as, ap);
    pg_arrays_close(&es, ep);
    pg_arrays_close(&ss, sp);
    /* Generic plans that probe primary keys (ws_tx_settings_sql). */
    enum { READS = 6, I_BOARDS = 2, I_ARCHIVED = 5 }; /* the statements before the reads */
    size_t n_reads = READS + n_windows, n_stmts = n_reads + (entrants ? 1 : 0) + (slots ? 2 : 0) + (client ? 1 : 0);
    size_t i_client = client ? n_stmts - 1 : 0;
    size_t i_entrants = entrants ? n_reads : 0, i_slots = slots ? n_reads + (entrants ? 1 : 0) + 1 : 0;
    pg_stmt_t *stmts = xcalloc(n_stmts, sizeof *stmts);
    stmts[0] = (pg_stmt_t){"BEGIN", 0, NULL, NULL};
    stmts[1] = (pg_stmt_t){ws_tx_settings_sql, 0, NULL, WS_TX_SETTINGS};
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
    if (client)
        stmts[i_client] = (pg_stmt_t){ws_client_sql, 5, cp, WS_CLIENT};
    PGresult **res = xcalloc(n_stmts, sizeof *res);
    int first = begin ? 0 : 1;
    pg_pipeline_run(c, stmts + first, (int)n_stmts - first, res + first);
    pg_arrays_free(&bs);
    pg_arrays_free(&ls);
    pg_arrays_free(&as);
    pg_arrays_free(&es);
    pg_arrays_free(&ss);
    if (client)
        pg_arrays_free(&cs);
    for (size_t w = 0; w < n_windows; w++)
        pg_arrays_free(&wr[w].players);
    free(wr);
    free(stmts);
    step_t st = STEP_OK;
    const char *what[READS] = {"begin", "settings", "board check", "window locks", "player locks", "archived windows"};
    for (size_t i = (size_t)first; i < n_stmts; i++)
        if (st == STEP_OK)
            st = step_check(c, res[i], i < READS ? what[i] : i < n_reads ? "read standings"
                                       : client && i == i_client ? "client rules" : "tournament entrants");
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
                gr->hidden = strcmp(PQgetvalue(r, row, 6), "t") == 0;
                if (PQgetisnull(r, row, 3))
                    continue; /* hidden, with no hidden standing of this window yet */
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
        if (client) /* before the tournament's gate: a flagged submission is no attempt */
            client_rules_gate(bt, res[i_client]);
        tournament_gate(bt, m);
    }
    for (size_t i = (size_t)first; i < n_stmts; i++)
        if (res[i])
            PQclear(res[i]);
    free(res);
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

/* A hidden player's changed standings (ws_hidden_write_sql); false when there is none. From
 * here on a hidden group's change is no `changed`: the standings, counters' players, rank
 * buckets, notices, Redis, the tier and the caches all skip it (it is hidden_changed). */
static bool hidden_params(batch_t *bt, pg_arrays_t *as, const char **param)
{
    bool any = false;
    pg_arrays_open(as, 7);
    for (size_t g = 0; g < bt->n_groups; g++) {
        write_group_t *gr = &bt->groups[g];
        if (!gr->hidden)
            continue;
        gr->hidden_changed = gr->changed;
        gr->changed = false;
        if (!gr->hidden_changed)
            continue;
        any = true;
        pg_arr_i64(&as->a[0], gr->gen);
        pg_arr_day(&as->a[1], gr->day);
        pg_arr_text(&as->a[2], gr->player);
        pg_arr_i64(&as->a[3], gr->cur.value);
        pg_arr_i64(&as->a[4], order_sort_key(gr->board->sort, gr->cur.value));
        pg_arr_i64(&as->a[5], gr->achieved_ms);
        pg_arr_text(&as->a[6], gr->metadata);
    }
    pg_arrays_close(as, param);
    return any;
}

/* Step 4: write standings, counters and the log, forget failed keys, notify (and carry the last
 * transaction's hint), and commit: one round trip. */
step_t write_and_commit(PGconn *c, batch_t *bt)
{
    pg_arrays_t hs;
    const char *hp[7];
    bool hidden = hidden_params(bt, &hs, hp);
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
        int64_t players = 0, subs = 0, hidden_subs = 0;
        for (; h < bt->n_groups && bt->groups[h].gen == bt->groups[g].gen && bt->groups[h].day == bt->groups[g].day;
             h++) {
            players += !bt->groups[h].existed && bt->groups[h].changed;
            /* A hidden player's submissions are logged but not counted: the window's counts are
             * its visible players' (a restore adds them, store/moderation.c). */
            if (bt->groups[h].hidden)
                hidden_subs += accepted[h];
            else
                subs += accepted[h];
        }
        /* A window only hidden players wrote to still gets its counters' row (and a number): a
         * restore moves their standings into a window that has one. */
        if (subs > 0 || hidden_subs > 0) {
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
        if (!bt->fold[i].applied && !bt->flagged[i]) /* a flagged one is logged, with its rule */
            continue;
        write_item_t *it = &bt->items[i];
        pg_arr_i64(WW_ARRAY(as, LOG_GEN), it->board->gen);
        pg_arr_day(WW_ARRAY(as, LOG_DAY), it->day);
        pg_arr_text(WW_ARRAY(as, LOG_PLAYER), it->player);
        pg_arr_i64(WW_ARRAY(as, LOG_SCORE), it->score);
        pg_arr_text(WW_ARRAY(as, LOG_METADATA), it->metadata);
        pg_arr_text(WW_ARRAY(as, LOG_UPDATED), bt->fold[i].updated ? "t" : "f");
        pg_arr_i64(WW_ARRAY(as, LOG_RECEIVED_MS), it->received_ms);
        pg_arr_text(WW_ARRAY(as, LOG_AUTH_BY), it->auth_by);
        pg_arr_text(WW_ARRAY(as, LOG_CLIENT_ADDR), it->client_addr);
        pg_arr_text(WW_ARRAY(as, LOG_FLAGGED), bt->flagged[i]);
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
            char *draft = render_result(&bt->items[i], bt, i, 0, 0);
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
    pg_stmt_t stmts[10];
    PGresult *res[10] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    int k = 0, i_buckets = -1, i_recut = -1, i_notify = -1, i_lsn = -1, i_tour = -1, i_league = -1, i_hidden = -1;
    int i_hint = -1;
    stmts[k++] = (pg_stmt_t){ws_write_sql, WW_PARAMS, p, WS_WRITE};
    if (hidden)
        stmts[i_hidden = k++] = (pg_stmt_t){ws_hidden_write_sql, 7, hp, WS_HIDDEN_WRITE};
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
    /* The previous transaction's hint, heard when this one commits: no transaction of its own. */
    if (bt->carry_hint)
        stmts[i_hint = k++] = (pg_stmt_t){ws_notify_sql, 1, &bt->carry_hint, WS_NOTIFY};
    int i_commit = k++;
    stmts[i_commit] = (pg_stmt_t){"COMMIT", 0, NULL, NULL};
    if (bt->want_lsn)
        stmts[i_lsn = k++] = (pg_stmt_t){ws_wal_lsn_sql, 0, NULL, NULL};
    bt->commit_sent = true;
    pg_pipeline_run(c, stmts, k, res);
    step_t st = step_check(c, res[0], "write");
    if (st == STEP_OK && hidden)
        st = step_check(c, res[i_hidden], "hidden standings");
    if (st == STEP_OK && tour)
        st = step_check(c, res[i_tour], "tournament entrants");
    if (st == STEP_OK && league)
        st = step_check(c, res[i_league], "league cohorts");
    if (st == STEP_OK && league && PQntuples(res[i_league]) == 1)
        bt->league_placed = strtoll(PQgetvalue(res[i_league], 0, 0), NULL, 10);
    if (st == STEP_OK && count)
        st = step_check(c, res[i_buckets], "rank buckets");
    if (st == STEP_OK && recut)
        st = step_check(c, res[i_recut], "rank buckets' re-cut");
    if (st == STEP_OK && notify)
        st = step_check(c, res[i_notify], "notify");
    if (st == STEP_OK && i_hint >= 0)
        st = step_check(c, res[i_hint], "hint");
    if (st == STEP_OK)
        st = step_check(c, res[i_commit], "commit");
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
    pg_arrays_free(&hs);
    return st;
}
