/*
 * store/redis_merge.h — several calls of one script as one command (the pipe's grouping).
 *
 * Pure: no I/O. The pipe groups a batch's calls (redis_merge_group), writes one command per
 * group (redis_merge_command) and hands each call its own part of the reply
 * (redis_merge_hand_out). See redis_merge_t in redis_call.h for what a script must return.
 */
#ifndef RANKD_STORE_REDIS_MERGE_H
#define RANKD_STORE_REDIS_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/redis_call.h"
#include "util/buf.h"
#include "util/must_use.h"

/* At most this many kinds of mergeable calls are looked for in a batch; the others go alone. */
#define REDIS_MERGE_OPEN 8

/* A merged command's arguments, grown as needed and kept for the next one. */
typedef struct {
    const char **argv;
    size_t *argvlen;
    size_t cap;
} redis_merge_args_t;

/* Chain every mergeable call of the list `calls` (linked by link.next) to the first call of
 * the batch it merges with: that one's `merged` starts the chain, and each call's
 * `merged_at` is its place in the merged command (0 for the first, and for a call alone). */
void redis_merge_group(redis_call_t *calls);
/* The command of `first` (a call with a chain) with the calls chained to it, into `a`
 * (pointers borrowed from the calls); returns how many arguments. */
size_t redis_merge_command(const redis_call_t *first, redis_merge_args_t *a);
/* A range block's commands (redis_merge_t.tx) for `first` and the calls chained to it, as RESP
 * text appended to `out`; returns how many replies Redis sends for them (the last, EXEC's, is
 * the one to hand out). */
size_t redis_merge_tx_text(const redis_call_t *first, buf_t *out);
/* Give each call of the chain of `first` its reply out of `reply` (borrowed: owned by the
 * caller): its element of an array, or the whole reply (an error, a nil) for every call.
 * False, and no call given anything, when an array does not hold one element per call. */
MUST_USE bool redis_merge_hand_out(redis_call_t *first, redisReply *reply);
void redis_merge_args_free(redis_merge_args_t *a);

#endif
