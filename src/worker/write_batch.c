/*
 * worker/write_batch.c — one batch's state: made once, reset before each attempt, freed; and
 * how a step judges a statement's result.
 *
 * An attempt starts from what the caller set (validation's refusals) and nothing else, so that
 * a transaction run again after a deadlock decides every item afresh.
 */
#include "worker/write_batch.h"

#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "store/pg_error.h"
#include "util/alloc.h"

void batch_init(batch_t *bt, write_item_t *items, size_t n)
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
    bt->flagged = xcalloc(n, sizeof *bt->flagged);
}

void batch_reset(batch_t *bt)
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
        bt->flagged[i] = NULL;
        bt->items[i].status = bt->initial_status[i];
        free(bt->items[i].response);
        bt->items[i].response = NULL;
        free(bt->draft[i]);
        bt->draft[i] = NULL;
    }
}

void batch_free(batch_t *bt)
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
    free(bt->flagged);
    for (size_t i = 0; i < bt->n; i++)
        free(bt->draft[i]);
    free(bt->draft);
    free(bt->rank);
    free(bt->prev_rank);
}

/* Items still to be decided in this attempt (validation failures were set by the caller). */
bool batch_pending(const batch_t *bt, size_t i)
{
    return bt->items[i].status == 0 && !bt->replay[i];
}

step_t step_check(PGconn *c, PGresult *r, const char *what)
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
