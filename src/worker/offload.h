/*
 * worker/offload.h — a few threads that run blocking work (PostgreSQL reads) for requests
 * whose connections are suspended, so that libmicrohttpd's event-loop threads never wait on
 * a database. Jobs run in arrival order; with every thread busy they queue.
 */
#ifndef RANKD_WORKER_OFFLOAD_H
#define RANKD_WORKER_OFFLOAD_H

#include <stddef.h>

#include "util/workq.h"
#include "util/must_use.h"

typedef struct offload offload_t;

/* A job: run(job) is called once on a pool thread; it owns `job` from then on. */
typedef struct offload_job {
    void (*run)(struct offload_job *job);
    workq_item_t link;        /* the pool's */
} offload_job_t;

/* Start `threads` threads (at least 1); NULL when none could start. */
MUST_USE offload_t *offload_start(int threads);
/* Queue a job (never blocks). */
void offload_submit(offload_t *o, offload_job_t *job);
/* Run what is queued, stop the threads, free the pool. */
void offload_stop(offload_t *o);

#endif
