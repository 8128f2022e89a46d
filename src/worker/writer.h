/*
 * worker/writer.h — applies score submissions durably, then indexes them.
 *
 * writer_submit() takes a batch of submissions (one HTTP submission, or a
 * scores:batch request) and applies them in ONE PostgreSQL transaction:
 *
 *   1. idempotency keys are inserted first (unique index): a key already
 *      committed makes its item a replay (same request: the stored answer;
 *      otherwise 409), a key in flight elsewhere waits for that transaction;
 *   2. every (board, window, player) touched is locked with a transaction
 *      advisory lock, in sorted order (no deadlock between writers);
 *   3. the current standings are read, and the operators are applied in C
 *      (core/score.h), folding several submissions of one player in arrival
 *      order; a `sum` overflow fails that item only;
 *   4. one statement upserts the folded standings (each with a new version),
 *      appends every accepted submission to the log, bumps the per-window
 *      counters and forgets the keys of failed items; then COMMIT.
 *
 * Only after the commit is Redis updated (version-checked, so a late update
 * never overwrites a newer one) and the answers rendered, with each player's
 * new rank. The batch shape is what a group-commit queue will hand over, so
 * batching submissions of many connections needs no change here.
 */
#ifndef RANKD_WORKER_WRITER_H
#define RANKD_WORKER_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "store/model.h"
#include "store/pg_pool.h"
#include "store/redis.h"
#include "worker/rebuilder.h"

typedef struct {
    /* input, borrowed from the caller for the duration of writer_submit() */
    const board_t *board;
    int64_t day;              /* window, chosen from received_ms */
    const char *player;
    int64_t score;
    const char *metadata;     /* compact JSON object, or NULL */
    const char *idem_key;     /* NULL when none */
    const char *request;      /* canonical request, compared on replay */
    int64_t received_ms;

    /* output */
    int status;               /* 200, or the HTTP error status */
    const char *err_code;     /* static strings, for an error */
    const char *err_field;
    const char *err_message;
    char *response;           /* owned by the item: the Submit result JSON; writer_items_clear() frees it */
} write_item_t;

typedef struct writer writer_t;

writer_t *writer_new(pg_pool_t *primary, redis_pool_t *redis, rebuilder_t *rebuilder);
void writer_free(writer_t *w);

/* Apply `n` submissions; every item gets a status and, on success, a response. */
void writer_submit(writer_t *w, write_item_t *items, size_t n);

/* Free the responses of items. */
void writer_items_clear(write_item_t *items, size_t n);

#endif
