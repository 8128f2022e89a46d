/*
 * worker/turns.h — jobs that share a key take turns on an offload pool.
 *
 * Reads of a Redis window that is being loaded go to PostgreSQL, and each
 * costs a count over the window; several at once starve the load itself (a
 * 1M-player window loaded five times slower under random reads). Jobs with
 * the same key (the window) therefore run one at a time, in arrival order,
 * while jobs of other keys run beside them on the same pool.
 */
#ifndef RANKD_WORKER_TURNS_H
#define RANKD_WORKER_TURNS_H

#include <stdint.h>

#include "worker/offload.h"
#include "util/must_use.h"

typedef struct turns turns_t;

typedef struct {
    int64_t a, b;
} turns_key_t;

typedef enum {
    TURNS_RUNNING, /* the job went to the pool at once */
    TURNS_WAITING, /* queued behind the key's running job */
    TURNS_FULL,    /* max_waiting jobs of the key wait already: not taken, run it elsewhere */
} turns_status_t;

/* Jobs of one key beyond `max_waiting` waiting are refused (TURNS_FULL). */
MUST_USE turns_t *turns_new(offload_t *pool, size_t max_waiting);
/* Free the table; every job must have ended its turn. */
void turns_free(turns_t *t);
/* Run `job` on the pool now if no job of `key` holds the turn, else after those queued. */
MUST_USE turns_status_t turns_submit(turns_t *t, turns_key_t key, offload_job_t *job);
/* The running job of `key` is done with its turn (call it from the job, once): the next
 * one of that key goes to the pool. */
void turns_end(turns_t *t, turns_key_t key);

#endif
