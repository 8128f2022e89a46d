/*
 * cache/rank_index.h — one window's standings in rank order, in memory: the order-statistic
 * structure of the rank tier (cache/rank_tier.h).
 *
 * Positions are core/order.h's (sort_key, achieved_ms, player id in byte order), the order
 * Redis's members and PostgreSQL's index keep. Entries sit in blocks of at most RI_BLOCK,
 * each sorted, the blocks in order; a Fenwick tree over the blocks' counts turns a block
 * into the rank of its first entry and a rank into its block, so rank, select and a
 * position's lower bound are O(log n) with a memmove of at most one block. A second Fenwick
 * tree counts, per block, the entries that start a sort key (whose sort key differs from the
 * entry before them): the distinct sort keys before a position, for dense ranks, at the cost of
 * two comparisons per change (the changed entry and the one after it). A hash of the
 * players finds a player's position (then its entry by binary search).
 *
 * Not thread-safe: the tier guards each index with a lock of its own.
 */
#ifndef RANKD_CACHE_RANK_INDEX_H
#define RANKD_CACHE_RANK_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rank_index rank_index_t;

/* One standing as read: its strings point into the index, valid until it next changes. */
typedef struct {
    int64_t sort_key;
    int64_t achieved_ms;
    const char *player;
    size_t player_len;
    const char *metadata; /* NULL: none */
    size_t metadata_len;
} ri_entry_t;

rank_index_t *ri_new(void);
void ri_free(rank_index_t *ix);

/* Set a player's standing: a new one, or a move (metadata replaced; NULL for none). */
void ri_set(rank_index_t *ix, const char *player, size_t len, int64_t sort_key, int64_t achieved_ms,
            const char *metadata, size_t metadata_len);
/* Append a standing that sorts after every one held (a load in rank order), else ri_set. */
void ri_append(rank_index_t *ix, const char *player, size_t len, int64_t sort_key, int64_t achieved_ms,
               const char *metadata, size_t metadata_len);
/* Remove a player's standing; false when it had none. */
bool ri_remove(rank_index_t *ix, const char *player, size_t len);

int64_t ri_count(const rank_index_t *ix);
/* Bytes held: blocks, players, metadata, the hash and the tree. */
size_t ri_bytes(const rank_index_t *ix);

/* The player's 0-based rank and standing, or -1 when it holds none. */
int64_t ri_rank(const rank_index_t *ix, const char *player, size_t len, ri_entry_t *out);
/* How many standings sort before the position; *exact when one sits at it. */
int64_t ri_lower_bound(const rank_index_t *ix, int64_t sort_key, int64_t achieved_ms, const char *player, size_t len,
                       bool *exact);
/* How many distinct sort keys sort before sort_key (a dense rank's count, core/rank_style.h):
 * O(log n) and a scan of one block. */
int64_t ri_distinct_before(const rank_index_t *ix, int64_t sort_key);
/* Up to n standings from 0-based rank `from`, in rank order; how many were written. */
size_t ri_range(const rank_index_t *ix, int64_t from, size_t n, ri_entry_t *out);

/* Checks every invariant (order, counts, the hash); false at the first broken one. For tests. */
bool ri_check(const rank_index_t *ix);

#endif
