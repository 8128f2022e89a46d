/* store/tournament.c — a tournament's joins, attempts and places in PostgreSQL. */
#include "store/tournament.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/window.h"
#include "store/pg_pipeline.h"
#include "store/pg_pool.h"
#include "store/queries.h"
#include "store/write_sql.h"
#include "util/alloc.h"

static PGresult *exec(PGconn *c, const char *sql, int n, const char *const *params)
{
    return PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The failed statement's status, the transaction rolled back: Q_RETRY for a lock that was not had
 * (a deadlock, the lock timeout), which the caller runs again. */
static q_status_t batch_failed(PGconn *c, PGresult *r, const char *what)
{
    const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    bool retry = code && (strcmp(code, "40P01") == 0 || strcmp(code, "55P03") == 0);
    q_status_t st = r ? q_failed(c, r, what) : Q_UNAVAILABLE; /* q_failed frees r */
    PQclear(PQexec(c, "ROLLBACK"));
    return retry && st == Q_ERROR ? Q_RETRY : st;
}

/* Whether items[i] is the first of the batch for its (board, window, player). */
static const tj_item_t *earlier_same(const tj_item_t *items, size_t i)
{
    for (size_t k = 0; k < i; k++)
        if (items[k].board->gen == items[i].board->gen && items[k].day == items[i].day &&
            strcmp(items[k].player, items[i].player) == 0)
            return &items[k];
    return NULL;
}

typedef struct {
    int64_t gen, day, entrants, added;
} slot_count_t;

static int cmp_slot(const void *a, const void *b)
{
    const slot_count_t *x = a, *y = b;
    if (x->gen != y->gen)
        return (x->gen > y->gen) - (x->gen < y->gen);
    return (x->day > y->day) - (x->day < y->day);
}

q_status_t q_tournament_join_batch(PGconn *c, tj_item_t *items, size_t n)
{
    if (n == 0)
        return Q_OK;
    /* The first round trip: BEGIN, the locks, the entrant rows. */
    pg_arrays_t gs, ls, ss, es;
    pg_arrays_open(&gs, 1);
    pg_arrays_open(&ls, 1);
    pg_arrays_open(&ss, 2);
    pg_arrays_open(&es, 3);
    uint64_t *keys = xcalloc(n, sizeof *keys);
    slot_count_t *slots = xcalloc(n, sizeof *slots);
    size_t n_slots = 0;
    for (size_t i = 0; i < n; i++) {
        const tj_item_t *it = &items[i];
        bool gen_seen = false;
        for (size_t k = 0; k < i && !gen_seen; k++)
            gen_seen = items[k].board->gen == it->board->gen;
        if (!gen_seen)
            pg_arr_i64(&gs.a[0], it->board->gen);
        keys[i] = (uint64_t)id_player_lock_key(it->board->gen, it->player);
        if (!earlier_same(items, i)) {
            pg_arr_i64(&es.a[0], it->board->gen);
            pg_arr_day(&es.a[1], it->day);
            pg_arr_text(&es.a[2], it->player);
        }
        bool slot_seen = false;
        for (size_t s = 0; s < n_slots && !slot_seen; s++)
            slot_seen = slots[s].gen == it->board->gen && slots[s].day == it->day;
        if (!slot_seen && tournament_counts_slot(&it->board->tournament))
            slots[n_slots++] = (slot_count_t){it->board->gen, it->day, 0, 0};
    }
    /* Made and locked in (gen, day) order, as the writer does (its groups are sorted so): a
     * slot row another transaction is inserting blocks this one's insert, so arrival order
     * could deadlock against it. */
    qsort(slots, n_slots, sizeof *slots, cmp_slot);
    for (size_t s = 0; s < n_slots; s++) {
        pg_arr_i64(&ss.a[0], slots[s].gen);
        pg_arr_day(&ss.a[1], slots[s].day);
    }
    /* In the writer's order (worker/write_steps.c): no deadlock between joins and submissions. */
    qsort(keys, n, sizeof *keys, cmp_u64);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || keys[i] != keys[i - 1])
            pg_arr_i64(&ls.a[0], (int64_t)keys[i]);
    free(keys);
    const char *gp[1], *lp[1], *sp[2], *ep[3];
    pg_arrays_close(&gs, gp);
    pg_arrays_close(&ls, lp);
    pg_arrays_close(&ss, sp);
    pg_arrays_close(&es, ep);
    pg_stmt_t first[6] = {
        {"BEGIN", 0, NULL, NULL},
        {ws_boards_sql, 1, gp, NULL},
        {ws_lock_sql, 1, lp, NULL},
        {ws_slots_make_sql, 2, sp, NULL},
        {ws_slots_lock_sql, 2, sp, NULL},
        {ws_entrants_sql, 3, ep, NULL},
    };
    PGresult *res[6] = {NULL};
    pg_pipeline_run(c, first, 6, res);
    pg_arrays_free(&gs);
    pg_arrays_free(&ls);
    pg_arrays_free(&ss);
    pg_arrays_free(&es);
    static const char *const what[6] = {"begin", "tournament boards", "tournament player locks", "tournament slots",
                                        "tournament slots", "tournament entrants"};
    q_status_t st = Q_OK;
    for (int i = 0; i < 6 && st == Q_OK; i++) {
        if (!res[i] || !pg_ok(res[i])) {
            st = batch_failed(c, res[i], what[i]);
            res[i] = NULL; /* freed */
        }
    }
    if (st != Q_OK) {
        for (int i = 0; i < 6; i++)
            PQclear(res[i]);
        free(slots);
        return st;
    }
    for (int row = 0; row < PQntuples(res[4]); row++)
        for (size_t s = 0; s < n_slots; s++)
            if (slots[s].gen == strtoll(PQgetvalue(res[4], row, 0), NULL, 10) &&
                slots[s].day == strtoll(PQgetvalue(res[4], row, 1), NULL, 10))
                slots[s].entrants = strtoll(PQgetvalue(res[4], row, 2), NULL, 10);
    /* Each item in arrival order. */
    pg_arrays_t us, cs;
    pg_arrays_open(&us, 4);
    pg_arrays_open(&cs, 3);
    bool writes = false;
    for (size_t i = 0; i < n; i++) {
        tj_item_t *it = &items[i];
        const tournament_t *t = &it->board->tournament;
        bool alive = false;
        for (int row = 0; row < PQntuples(res[1]) && !alive; row++)
            alive = strtoll(PQgetvalue(res[1], row, 0), NULL, 10) == it->board->gen;
        if (!alive) {
            it->outcome = TJ_GONE;
            continue;
        }
        const tj_item_t *before = earlier_same(items, i);
        if (before) { /* the same player twice in the batch: as the first one left it */
            it->outcome = before->outcome == TJ_JOINED ? TJ_AGAIN : before->outcome;
            it->joined_ms = before->joined_ms;
            continue;
        }
        bool had = false, place = false;
        int64_t joined = 0;
        for (int row = 0; row < PQntuples(res[5]) && !had; row++) {
            PGresult *r = res[5];
            if (strtoll(PQgetvalue(r, row, 0), NULL, 10) != it->board->gen ||
                strtoll(PQgetvalue(r, row, 1), NULL, 10) != it->day || strcmp(PQgetvalue(r, row, 2), it->player) != 0)
                continue;
            had = true;
            if (!PQgetisnull(r, row, 3))
                joined = strtoll(PQgetvalue(r, row, 3), NULL, 10);
            place = !PQgetisnull(r, row, 3) || strtoll(PQgetvalue(r, row, 4), NULL, 10) > 0;
        }
        if (had && joined) {
            it->outcome = TJ_AGAIN;
            it->joined_ms = joined;
            continue;
        }
        slot_count_t *slot = NULL;
        for (size_t s = 0; s < n_slots && !slot; s++)
            if (slots[s].gen == it->board->gen && slots[s].day == it->day)
                slot = &slots[s];
        /* A player who scored already, where no join is required, holds a place. */
        if (slot && !place) {
            if (t->max_players > 0 && slot->entrants + slot->added >= t->max_players) {
                it->outcome = TJ_FULL;
                continue;
            }
            slot->added++;
        }
        it->outcome = TJ_JOINED;
        it->joined_ms = it->at_ms;
        pg_arr_i64(&us.a[0], it->board->gen);
        pg_arr_day(&us.a[1], it->day);
        pg_arr_text(&us.a[2], it->player);
        pg_arr_i64(&us.a[3], it->at_ms);
        writes = true;
    }
    for (size_t s = 0; s < n_slots; s++) {
        if (slots[s].added == 0)
            continue;
        pg_arr_i64(&cs.a[0], slots[s].gen);
        pg_arr_day(&cs.a[1], slots[s].day);
        pg_arr_i64(&cs.a[2], slots[s].added);
    }
    for (int i = 0; i < 6; i++)
        PQclear(res[i]);
    free(slots);
    /* The second round trip: the rows and the counts, COMMIT. */
    const char *up[4], *cp[3];
    pg_arrays_close(&us, up);
    pg_arrays_close(&cs, cp);
    pg_stmt_t second[3] = {
        {"INSERT INTO tournament_entrants AS t (board_gen, win, player_id, joined_ms)"
         " SELECT * FROM unnest($1::bigint[], $2::date[], $3::text[], $4::bigint[])"
         " ON CONFLICT (board_gen, win, player_id) DO UPDATE SET joined_ms = EXCLUDED.joined_ms",
         4, up, NULL},
        {"UPDATE tournament_slots s SET entrants = s.entrants + u.n"
         " FROM unnest($1::bigint[], $2::date[], $3::bigint[]) AS u(g, w, n) WHERE s.board_gen = u.g AND s.win = u.w",
         3, cp, NULL},
        {"COMMIT", 0, NULL, NULL},
    };
    PGresult *res2[3] = {NULL};
    int from = writes ? 0 : 2; /* nothing joined: the COMMIT alone ends the locks */
    pg_pipeline_run(c, second + from, 3 - from, res2 + from);
    pg_arrays_free(&us);
    pg_arrays_free(&cs);
    static const char *const what2[3] = {"tournament joins", "tournament slots", "commit"};
    for (int i = from; i < 3; i++) {
        if (st == Q_OK && (!res2[i] || !pg_ok(res2[i]))) {
            st = batch_failed(c, res2[i], what2[i]);
            res2[i] = NULL;
        }
        PQclear(res2[i]);
    }
    return st;
}

q_status_t q_tournament_add_attempts(PGconn *c, int64_t gen, int64_t day, const char *player, int64_t add,
                                     int64_t *used, int64_t *extra)
{
    char g[24], d[11], n[24];
    snprintf(g, sizeof g, "%" PRId64, gen);
    window_format_day(day, d);
    snprintf(n, sizeof n, "%" PRId64, add);
    const char *p[] = {g, d, player, n};
    /* The board's row FOR KEY SHARE: no row lands after a deletion's purge went by. */
    PGresult *r = exec(c,
                       "WITH b AS (SELECT 1 FROM boards WHERE gen = $1 FOR KEY SHARE)"
                       " INSERT INTO tournament_entrants AS t (board_gen, win, player_id, extra_attempts)"
                       " SELECT $1, $2, $3, $4 FROM b"
                       " ON CONFLICT (board_gen, win, player_id) DO UPDATE SET extra_attempts = t.extra_attempts + EXCLUDED.extra_attempts"
                       " RETURNING attempts, extra_attempts",
                       4, p);
    if (!pg_ok(r))
        return q_failed(c, r, "tournament attempts");
    q_status_t st = Q_NOT_FOUND;
    if (PQntuples(r) == 1) {
        *used = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *extra = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        st = Q_OK;
    }
    PQclear(r);
    return st;
}

q_status_t q_tournament_entrants(PGconn *c, int64_t gen, int64_t day, int64_t *n)
{
    char g[24], d[11];
    snprintf(g, sizeof g, "%" PRId64, gen);
    window_format_day(day, d);
    const char *p[] = {g, d};
    PGresult *r = exec(c, "SELECT entrants FROM tournament_slots WHERE board_gen = $1 AND win = $2", 2, p);
    if (!pg_ok(r))
        return q_failed(c, r, "tournament entrants");
    *n = PQntuples(r) == 1 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return Q_OK;
}
