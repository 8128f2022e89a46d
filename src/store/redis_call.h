/*
 * store/redis_call.h — one call to Redis as the pipe (store/redis_pipe.h) takes it, and how
 * calls of one script merge into one command (store/redis_merge.h): the types both speak of.
 */
#ifndef RANKD_STORE_REDIS_CALL_H
#define RANKD_STORE_REDIS_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <hiredis/hiredis.h>

#include "util/workq.h"

/*
 * How calls of one script merge: the calls' commands are EVALSHA sha numkeys
 * keys... args...; those sharing argv[2 .. shared) (numkeys and the keys) become
 * EVALSHA `sha` argv[2 .. shared) followed by each call's args in order. The
 * script `sha` must return an array holding, in the same order, exactly the
 * reply each call's own command would have had (or a single reply, an error
 * or nil, that then stands for every call).
 */
typedef struct redis_merge {
    const char *sha;  /* the merged script's SHA1 (40 hex digits); NULL for a range block */
    int shared;       /* leading arguments the calls must have in common, argv[0..2) excepted */
    /* A range block instead of a script: each call is {"ZRANGE", "", zset, ready key, start,
     * stop} (shared = 4: the zset and its ready key), and the calls sharing them go out as one
     * transaction: MULTI, EXISTS ready, ZCARD zset, each call's ZRANGE zset start stop, EXEC.
     * Every call is handed the whole EXEC reply: {ready, count, the first call's range, the
     * second's, ...}, its own range at element 2 + merged_at (redis_merge_tx_text). */
    bool tx;
} redis_merge_t;

typedef struct redis_call {
    int argc;
    const char *const *argv;      /* borrowed until done() */
    const size_t *argvlen;
    const redis_merge_t *merge;   /* NULL: always sent alone */
    /* Set before done(): NULL when Redis could not be reached. The pipe owns it and frees it
     * once done() returns: done() takes what it needs. */
    redisReply *reply;
    void (*done)(struct redis_call *call); /* on the pipe's thread */
    void *arg;
    /* The pool's epoch (redis_epoch) in which its caller decided to ask Redis; a call of an
     * earlier epoch than the pool's now fails unsent (reply NULL), as if Redis were down: the
     * window it reads has not been checked since the outage. 0: not checked. */
    unsigned long epoch;
    workq_item_t link;            /* the pipe's */
    struct redis_call *merged;    /* the pipe's: the next call of its merged command */
    unsigned merged_at;           /* the pipe's: its place in that command (0: first, or alone) */
} redis_call_t;

#endif
