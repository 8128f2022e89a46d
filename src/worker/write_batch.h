/*
 * worker/write_batch.h — what the files of the writer share, and nothing outside them uses: the
 * writer itself, the state of one batch, and each file's steps.
 *
 * One batch is one transaction's worth of submissions (writer.h), run by writer_submit()
 * (writer.c) in steps that each have a file: they all read and fill the batch_t below. This
 * header includes nothing of those files' own (writer.h names writer_t too: the same typedef,
 * which C11 allows twice), so that no two of them include each other.
 */
#ifndef RANKD_WORKER_WRITE_BATCH_H
#define RANKD_WORKER_WRITE_BATCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "cache/l1.h"
#include "cache/rank_tier.h"
#include "store/pg_pipeline.h"
#include "store/pg_pool.h"
#include "store/pg_router.h"
#include "store/redis.h"
#include "util/workq.h"
#include "worker/rebuilder.h"
#include "worker/write_fold.h"
#include "worker/write_item.h"

typedef struct writer writer_t;

/* The writer (writer.h): its thread and writer_submit() are writer.c's; rank_groups()
 * (write_ranks.c) uses its Redis pool and rebuilder. */
struct writer {
    pg_pool_t *primary;        /* the writer's own: its connections hold the prepared statements */
    pg_router_t *router;       /* whether the primary is up; the LSNs replicas must reach */
    redis_pool_t *redis;
    rebuilder_t *rebuilder;
    l1_t *l1;
    rank_tier_t *tier;         /* NULL: off */
    size_t max_batch;          /* submissions per transaction at most */
    int64_t gather_ns;         /* how long a transaction waits for the jobs it expects; 0: never */
    int lock_timeout_ms;       /* each statement's lock waits, on the writer's connections */
    int rank_bucket_rows;      /* a rank bucket's least size; a batch changing as many of a window re-cuts it */

    workq_t queue;
    atomic_bool closed;        /* shutting down: new jobs are answered 503 at once */
    atomic_size_t queued;      /* submissions enqueued and not yet taken into a transaction */
    atomic_ullong batches;     /* transactions run */
    atomic_ullong gathers_came;    /* transactions that waited for the answered clients' next jobs, and all came */
    atomic_ullong gathers_in_vain; /* those whose wait ran out first (writer.gather_us) */
    atomic_ullong league_placed; /* players placed in league cohorts by committed transactions */
    /* The last transaction's hint (write_notice.c) not sent yet, owned; writer thread only. It
     * rides in the next transaction, or goes alone when none begins within gather_ns. */
    char *hint;
    atomic_ullong hints_carried;   /* hints sent inside the next transaction */
    atomic_ullong hints_alone;     /* hints sent in a transaction of their own */
    atomic_llong last_batch_ms; /* how long the last one took, up to its answers */
    pthread_t thread;
};

/* ---------------------------------------------------------------- per-batch state */

/* A capped tournament slot the batch may admit new entrants to: its count, locked until the
 * commit (ws_slots_lock_sql). */
typedef struct {
    int64_t gen;
    int64_t day;
    int64_t entrants;
} t_slot_t;

typedef struct {
    write_item_t *items;
    size_t n;
    size_t *order;        /* item indices sorted by (gen, day, player, arrival) */
    int *group_of;        /* item -> group index, -1 for items not applied */
    bool *replay;         /* item answered from a stored key or a duplicate in the batch */
    bool *key_new;        /* item inserted its idempotency key */
    int *dup_of;          /* item -> earlier item with the same key in this batch, or -1 */
    write_fold_t *fold;   /* what folding did to each item */
    write_group_t *groups;
    size_t n_groups;
    int *initial_status;  /* statuses the caller set (validation), restored on a retry */
    char **draft;         /* item -> owned draft of an answer committed but never stored, else NULL */
    bool want_lsn;        /* read the primary's WAL position after the commit (replicas serve reads) */
    int rank_bucket_rows; /* the writer's: a window with as many changed standings is re-cut */
    uint64_t commit_lsn;  /* that position, 0 when not read */
    bool commit_sent;     /* the COMMIT went out: a broken connection leaves the outcome unknown */
    const char *carry_hint; /* borrowed: the writer's last transaction's hint, NOTIFYd inside this one; NULL: none */
    int64_t *rank;        /* item -> the rank its answer reports (0: unknown) */
    int64_t *prev_rank;   /* item -> its previous_rank: the rank just before it, -1 none (null), 0 unknown */
    t_slot_t *slots;      /* the capped tournament slots locked, n_slots of them */
    size_t n_slots;
    int64_t league_placed; /* players the batch placed in league cohorts */
    const char **flagged; /* item -> the client rule it broke (static), logged flagged and not applied; else NULL */
} batch_t;

/* What a step of the transaction came to: go on, run the transaction again, or give up. */
typedef enum { STEP_OK, STEP_RETRY, STEP_FAIL } step_t;

/* ---------------------------------------------------------------- each file's steps */

/* write_batch.c: a batch's state, made once, reset before each attempt, freed. */
void batch_init(batch_t *bt, write_item_t *items, size_t n);
void batch_reset(batch_t *bt);
void batch_free(batch_t *bt);
/* Whether item i is still to be decided in this attempt. */
bool batch_pending(const batch_t *bt, size_t i);
/* A statement's result: ok, worth running the transaction again (a deadlock, a serialization
 * failure, a lock timeout), or failed; a failure is logged as "submit <what> failed". */
step_t step_check(PGconn *c, PGresult *r, const char *what);

/* write_keys.c, step 1: claim the items' idempotency keys. */
step_t claim_keys(PGconn *c, batch_t *bt);

/* write_steps.c, steps 2 and 3 (lock, read, the competitions' gate), then step 4 (the write
 * and the COMMIT, one round trip). */
step_t lock_and_read(PGconn *c, batch_t *bt, bool begin);
step_t write_and_commit(PGconn *c, batch_t *bt);

/* write_competitions.c: tournaments' rules and entrants, leagues' cohorts. */
bool keeps_entrants(const write_group_t *gr);
bool admits_entrants(const write_group_t *gr);
void tournament_gate(batch_t *bt, size_t m);
bool tournament_params(const batch_t *bt, pg_arrays_t *as, const char **param);
bool league_params(const batch_t *bt, pg_arrays_t *as, const char **param);

/* write_rules.c: the plausibility rules of token writes (API.md, "Plausibility rules"). Whether
 * the batch holds a pending token write on a board with rules, and then the parameters of
 * ws_client_sql (4 arrays in `as`, opened here); after its rows are read under the players'
 * locks, the gate flags the items that break a rule (422 implausible, group -1, bt->flagged). */
bool client_rules_params(const batch_t *bt, pg_arrays_t *as, const char **param);
void client_rules_gate(batch_t *bt, PGresult *r);

/* write_notice.c: what every instance hears of the batch (core/notice.h). */
bool notify_params(batch_t *bt, pg_arrays_t *as, const char **param, bool commit);
/* The batch's hint (its changes again, for after the Redis update): ws_notify_sql's array of
 * payloads, owned by the caller; NULL when no standing changed. */
char *notify_hint_take(batch_t *bt);
/* Send a hint alone, in a transaction of its own that does not wait for its WAL flush. */
step_t notify_hint(PGconn *c, const char *hint);

/* write_ranks.c, after the commit: Redis, each group's rank and previous rank, each item's. */
void rank_groups(writer_t *w, PGconn *c, batch_t *bt);
void prev_ranks_pg(PGconn *c, batch_t *bt);
void rank_items(PGconn *c, batch_t *bt);
void prev_rank_items(batch_t *bt);

/* write_answers.c: the answers, rendered, stored with their keys, recovered from drafts. */
char *render_result(const write_item_t *it, const batch_t *bt, size_t i, int64_t rank, int64_t prev_rank);
void answer_rank_unknown(write_item_t *it);
void answer_unstored(write_item_t *it);
void recover_answers(PGconn *c, batch_t *bt);
void remember_responses(PGconn *c, batch_t *bt);

#endif
