/*
 * cache/rank_tier.h — the in-process rank tier: this instance's copy of its hottest windows, each
 * an order-statistic index (cache/rank_index.h), answering rank, around-me, pages (by offset or
 * cursor) and named players with no I/O. Opt-in (cache.rank_tier, a byte budget).
 *
 * The stream. Every transaction that changes a window's standings takes the window's next number
 * (window_counts.seq, under the window's row lock, so numbers follow commit order) and, inside
 * the transaction, NOTIFYs its changes headed by that number (core/notice.h; wholesale changes,
 * imports and deletions, send "P gen day"). PostgreSQL delivers notifications in commit order
 * to every listening session, Redis or not, so each instance's listener hands the tier each
 * window's changes in number order. NOTIFY was chosen over a Redis Stream (a second write per
 * batch, and lost with Redis) and over logical decoding (a replication slot per instance that
 * retains WAL while an instance is down).
 *
 * The invariants.
 * - A window is READY with `applied` = n only when its index equals the window's standings after
 *   transaction n: it was loaded from one snapshot that read the standings and the number
 *   together, then had every later number applied once, in order.
 * - A number that is not applied + 1 (a gap), a "P" for the window, a lost listener connection
 *   or a load that began before a "P" make the window LOADING: it is loaded again, and not
 *   answered from until it is READY.
 * - Read-your-writes: `acked` is the highest number this instance's own commits took for the
 *   window (the writer, an import, a deletion); the tier answers only when applied >= acked.
 *   A read that cannot be answered here goes on to Redis or PostgreSQL as before.
 * - Memory: each window's bytes are counted; past the budget the least recently read windows
 *   go first, and a window that alone exceeds the budget is not kept.
 *
 * Locking: a read-write lock over the set of windows (written only to add or drop one), then a
 * read-write lock per window (written by the stream and by an install), both preferring writers.
 * Readers (event loops) only try them: a lock held for writing makes the read a miss, answered by
 * Redis or PostgreSQL, so no event loop ever waits here. They hold both read locks while they copy
 * an answer out. Nothing waits on I/O under either; the loader's wake-up mutex is taken last.
 * - Memory: a window grown past the budget by the stream is brought back under it by the loader.
 */
#ifndef RANKD_CACHE_RANK_TIER_H
#define RANKD_CACHE_RANK_TIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/rank_index.h"
#include "core/model.h"
#include "core/order.h"
#include "core/rank_style.h"

typedef struct rank_tier rank_tier_t;

/* One changed standing of a numbered transaction (every field points into the caller's text). */
typedef struct {
    const char *player;
    size_t player_len;
    int64_t sort_key, achieved_ms;
    const char *metadata; /* NULL: none */
    size_t metadata_len;
} tier_change_t;

typedef struct {
    size_t windows, ready;
    int64_t players;
    size_t bytes, budget;
    unsigned long long loads, reloads, evictions, too_big, answered, missed;
    int64_t last_load_ms, last_load_players; /* the last load: how long, how many standings */
} rank_tier_stats_t;

/* A tier of at most `budget` bytes; NULL when budget is 0 (off). */
rank_tier_t *rank_tier_new(size_t budget);
void rank_tier_free(rank_tier_t *t);

/* ---------------------------------------------------------------- reads (any thread)
 * Each answers `out` (total and entries, ranks 1-based in how->style, as the Redis path does) and returns true,
 * or returns false when the tier cannot answer now: the window is not held (it is asked for, and
 * loaded in the background), is loading, or has not applied this instance's own writes yet.
 * now_ms: when the read arrived (which windows were read last). */
typedef struct {
    int64_t now_ms;       /* when the read arrived (which windows were read last) */
    rank_style_t style;   /* the ranks shown (core/rank_style.h) */
} tier_read_t;
bool rank_tier_page(rank_tier_t *t, const board_t *b, int64_t day, int64_t offset, int limit, const tier_read_t *how,
                    entries_t *out);
bool rank_tier_cursor(rank_tier_t *t, const board_t *b, int64_t day, const order_pos_t *pos, bool backward, int limit,
                      const tier_read_t *how, entries_t *out);
bool rank_tier_players(rank_tier_t *t, const board_t *b, int64_t day, const char *const *ids, size_t n,
                       const tier_read_t *how, entries_t *out);
bool rank_tier_around(rank_tier_t *t, const board_t *b, int64_t day, const char *player, int before, int after,
                      const tier_read_t *how, entries_t *out);

/* How many standings have score sort_key or a better one (out->at_or_before; competition: a
 * better one; dense: how many distinct better scores), and the total. */
bool rank_tier_score(rank_tier_t *t, const board_t *b, int64_t day, int64_t sort_key, const tier_read_t *how,
                     entries_t *out);

/* ---------------------------------------------------------------- the stream
 * This instance committed transaction `seq` of window (gen, day) and is about to acknowledge it.
 * With its changes (the writer), they are applied at once when seq is the next number; without
 * (an import, a deletion) the tier waits for the window's reload. */
void rank_tier_committed(rank_tier_t *t, int64_t gen, int64_t day, int64_t seq, const tier_change_t *changes,
                         size_t n);
/* The listener heard part `part` of `parts` of transaction `seq` of a window: `lines` (its W
 * lines, newline-separated, len bytes) are applied once every part is in. */
void rank_tier_heard(rank_tier_t *t, int64_t gen, int64_t day, int64_t seq, int part, int parts, const char *lines,
                     size_t len);
/* A window changed wholesale ("P"): loaded again. */
void rank_tier_window_changed(rank_tier_t *t, int64_t gen, int64_t day);
/* A board was deleted ("B"): its windows go. */
void rank_tier_board_deleted(rank_tier_t *t, int64_t gen);
/* The listener listens (connected, LISTEN done): windows may be loaded and answered from. */
void rank_tier_listening(rank_tier_t *t);
/* The listener lost its connection (notices may be lost): nothing is answered until it listens
 * again, and every window is loaded again then. */
void rank_tier_lost(rank_tier_t *t);

/* ---------------------------------------------------------------- loading (worker/tier_loader.c)
 * Wait up to wait_ms for a window to load: true with its generation, day and a token for
 * rank_tier_install. Drops windows not read for `idle_ms` meanwhile. */
bool rank_tier_next_load(rank_tier_t *t, int wait_ms, int64_t now_ms, int64_t idle_ms, int64_t *gen, int64_t *day,
                         uint64_t *token);
/* Install an index loaded from a snapshot at number `seq` (takes ix over; freed when the window
 * went, a reload was asked since the token, or it does not fit the budget). */
void rank_tier_install(rank_tier_t *t, int64_t gen, int64_t day, uint64_t token, rank_index_t *ix, int64_t seq);
/* The last load took `ms` for `players` standings (for /metrics). */
void rank_tier_note_load(rank_tier_t *t, int64_t ms, int64_t players);
/* A load failed: the window is asked for again at its next read. */
void rank_tier_load_failed(rank_tier_t *t, int64_t gen, int64_t day, uint64_t token);
/* Wake rank_tier_next_load (shutdown). */
void rank_tier_wake(rank_tier_t *t);

void rank_tier_stats(rank_tier_t *t, rank_tier_stats_t *out);

/* The window's index, held under its read lock by fn (rankd verify's comparison, tests): false
 * when the window is not READY. */
bool rank_tier_inspect(rank_tier_t *t, int64_t gen, int64_t day, void (*fn)(const rank_index_t *ix, int64_t seq, void *arg),
                       void *arg);

#endif
