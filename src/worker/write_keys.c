/*
 * worker/write_keys.c — step 1 of a batch's transaction: its idempotency keys claimed.
 *
 * Keys are inserted before any player is locked, in (gen, key) order so that concurrent
 * batches take them in one order; a key committed before makes its item a replay (the stored
 * answer, a draft to complete, or 409), a key in flight elsewhere waits for that transaction,
 * and a key twice in one batch answers like its first occurrence.
 */
#include "worker/write_batch.h"

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "store/pg_pipeline.h"
#include "store/write_sql.h"
#include "util/alloc.h"

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
step_t claim_keys(PGconn *c, batch_t *bt)
{
    /* Sorted by (gen, key, position): duplicates inside the batch sit together and follow the
     * first occurrence; the keys are then inserted in (gen, key) order, so that concurrent
     * batches lock them in one order. O(n log n) for the batch's up to 4,000 items. */
    key_ref_t *refs = xcalloc(bt->n ? bt->n : 1, sizeof *refs);
    size_t n_refs = 0;
    for (size_t i = 0; i < bt->n; i++)
        if (batch_pending(bt, i) && bt->items[i].idem_key)
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
    step_t st = step_check(c, r, "key claim");
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
        st = step_check(c, r, "key lookup");
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
