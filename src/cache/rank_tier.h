/*
 * cache/rank_tier.h — the in-process rank tier: this instance's copy of its hottest windows, each
 * an order-statistic index (cache/rank_index.h), answering rank, around-me, pages (by offset or
 * cursor) and named players with no I/O. Opt-in (cache.rank_tier, a byte budget).
 *
 * The stream. Every transaction that changes a window's standings takes the window's next number
 * (window_counts.seq, under the window's row lock, so numbers follow commit order) and, inside
 * the transaction, NOTIFYs its changes headed by that number (core/notice.h: a W line per changed
 * standing, a D line per standing a player's deletion took out; an import, a wholesale change,
 * sends "P gen day"). PostgreSQL delivers notifications in commit order
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
 * - Bounded staleness: another instance's writes arrive only through the listener's session. It
 *   sends itself a heartbeat (a NOTIFY on a channel of its own) and, when it hears it back,
 *   every commit before its sending has been handed over (one queue, in commit order). A read
 *   is answered only while the last heartbeat heard back was sent less than `stale_ms` ago
 *   (the response cache's max-age): a session that stalls silently (TCP keepalives take ~25 s to
 *   tell) makes reads go to Redis within that bound, until the heartbeats come back.
 *   A read that cannot be answered here goes on to Redis or PostgreSQL as before.
 * - Memory: each window's bytes are counted; past the budget the least recently read windows
 *   go first, and a window that alone exceeds the budget is not kept, and not loaded again (a
 *   scan of the primary, thrown away) until it changes wholesale ("P"): writes only add players.
 *   The budget is set at start-up.
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
    size_t too_big_windows; /* held as too big: not loaded again until they change */
    size_t loading;         /* asked for, or being loaded */
    size_t failed;          /* their last load failed: asked for again at a read past its retry time */
    unsigned long long load_failures; /* loads that failed (the primary unreachable, a statement's error) */
    unsigned long long loads_dropped; /* loads finished after their window changed or went: not installed */
    int64_t players;
    size_t bytes, budget;
    unsigned long long loads, reloads, evictions, too_big, answered, missed;
    unsigned long long stale;  /* reads of a ready window refused: nothing proved it current lately */
    bool listening;            /* the listener's session is up (loads and answers need it) */
    int64_t heard_ago_ms;      /* since the last heartbeat heard back was sent; -1: none yet */
    int64_t last_load_ms, last_load_players; /* the last load: how long, how many standings */
} rank_tier_stats_t;

/* A tier of at most `budget` bytes; NULL when budget is 0 (off). It answers only while it has
 * heard, less than `stale_ms` ago, that it holds every commit (0: no such bound). */
rank_tier_t *rank_tier_new(size_t budget, int stale_ms);
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
 * (a deletion, an import) the window answers again once it applied seq from the stream (a
 * deletion's D lines) or loaded past it (an import's P). */
void rank_tier_committed(rank_tier_t *t, int64_t gen, int64_t day, int64_t seq, const tier_change_t *changes,
                         size_t n);
/* The listener heard part `part` of `parts` of transaction `seq` of a window: `lines` (its W
 * and D lines, newline-separated, len bytes) are applied once every part is in. */
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
/* The listener heard back a heartbeat it sent at monotonic `sent_mono_ms` (a NOTIFY to itself:
 * notices come in commit order, so every commit before then has been handed to the tier). */
void rank_tier_caught_up(rank_tier_t *t, int64_t sent_mono_ms);
/* The monotonic ms before which every commit has been applied (the last heartbeat heard back
 * was sent then); 0: none yet, or no tier. */
int64_t rank_tier_caught_up_ms(rank_tier_t *t);
/* Whether the tier holds any window (heartbeats are worth sending); true when busy. */
bool rank_tier_holds_any(rank_tier_t *t);

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
/* The tier's budget in bytes (a load past it stops: rank_tier_load_too_big). */
size_t rank_tier_budget(const rank_tier_t *t);
/* A load stopped when the index reached `bytes`, more than the budget: the window is remembered
 * too big (as an install that did not fit is). */
void rank_tier_load_too_big(rank_tier_t *t, int64_t gen, int64_t day, uint64_t token, size_t bytes);
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
