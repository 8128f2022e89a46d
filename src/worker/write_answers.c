/*
 * worker/write_answers.c — a batch's answers: rendered, stored with their idempotency keys, and
 * recovered from drafts.
 *
 * The transaction stores each keyed item's draft (its answer without the rank); once ranked, the
 * answer is stored before it is sent (the first stored wins). A replay whose batch committed but
 * whose answer was never stored gets its draft completed with the player's rank now.
 */
#include "worker/write_batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/order.h"
#include "core/window.h"
#include "store/moderation.h"
#include "store/pg_pipeline.h"
#include "store/queries.h"
#include "store/write_sql.h"
#include "util/alloc.h"
#include "util/buf.h"

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

/* An applied item whose rank neither Redis nor PostgreSQL gave: its submission is committed. */
void answer_rank_unknown(write_item_t *it)
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
char *render_result(const write_item_t *it, const batch_t *bt, size_t i, int64_t rank, int64_t prev_rank)
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

void answer_unstored(write_item_t *it)
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
    bool ok = step_check(c, r, "store answers") == STEP_OK;
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
        if (step_check(c, r, "stored answers") == STEP_OK) {
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
void recover_answers(PGconn *c, batch_t *bt)
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
            /* A hidden player (migrations/0025_moderation.sql) is answered in their own view, as
             * the writer answered them: their place among the visible players (their hidden
             * standing is in none that q_ranks_at counts, so `prev` needs no correction). */
            entry_t own;
            int64_t own_total = 0;
            bool own_view = ok && !found &&
                            q_own_view(c, first->board, day[idx[g]], it->player, RANK_ORDINAL, &own, &own_total) == Q_OK;
            if (own_view)
                free(own.metadata);
            int64_t rank = found ? found->rank : own_view ? own.rank : 0;
            char *answer = found || own_view ? draft_with_rank(bt->draft[idx[a]], rank, prev[a - g]) : NULL;
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
void remember_responses(PGconn *c, batch_t *bt)
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
