/*
 * store/queries.h — the SQL rankd runs against PostgreSQL, one function per
 * question: boards (create, get, list, patch, delete) and the ranked reads
 * of the PostgreSQL path (pages, a player, around a player, several players).
 *
 * Every read is one statement, so `total` and the entries come from one
 * snapshot. A rank on this path is 1 + the count of better positions: the
 * counts of the window's rank supers and buckets before the player's own, plus a count
 * on the (board_gen, win, sort_key, achieved_ms, player_id) index inside its bucket
 * (migrations/0009_rank_buckets.sql, 0010_rank_supers.sql): exact, in about
 * 3 players^(1/3) rows.
 * Functions return a q_status_t; Q_UNAVAILABLE means the connection broke
 * (the caller discards it), Q_RETRY a statement cancelled by a conflict that
 * another node or another try would not meet (a replica's recovery conflict,
 * a serialization failure), Q_ERROR any other failure (already logged).
 */
#ifndef RANKD_STORE_QUERIES_H
#define RANKD_STORE_QUERIES_H

#include <libpq-fe.h>
#include <stdio.h>

#include "core/order.h"
#include "core/model.h"
#include "store/pg_pool.h"
#include "store/q_status.h"
#include "util/must_use.h"

/* Boards. Outputs are owned by the caller (board_clear / free). */
MUST_USE q_status_t q_board_get(PGconn *c, const char *id, board_t *out);
/* Create `def` (gen and created_ms ignored). `*created` false when an identical board existed; Q_CONFLICT when it differs. */
MUST_USE q_status_t q_board_create(PGconn *c, const board_t *def, int64_t now_ms, board_t *out, bool *created);
/* A PATCH of a board's plausibility rules: each rule set (to its value; 0 removes it) or kept. */
typedef struct {
    bool set_per_minute;
    int32_t max_submissions_per_minute;
    bool set_rise;
    double max_rise_per_second;
} q_rules_patch_t;
/* Change title and/or metadata (NULL = keep; clear_metadata removes it), client_writes (-1 = keep, 0, 1) and the
 * client rules (`rules` NULL: keep them all). */
MUST_USE q_status_t q_board_patch(PGconn *c, const char *id, const char *title, const char *metadata, bool clear_metadata,
                         int client_writes, const q_rules_patch_t *rules, board_t *out);
/* Delete the board: its row now, every other row of its generation in the background
 * (upkeep_purge_boards); `*gen` gets the generation. */
MUST_USE q_status_t q_board_delete(PGconn *c, const char *id, int64_t *gen);
/* Boards with id > after_id (NULL = from the start), ordered by id, at most `limit` (+1 to detect more). */
MUST_USE q_status_t q_board_list(PGconn *c, const char *after_id, int limit, board_t **out, size_t *n);
/* The tournament boards after `after_id` (NULL: from the first), by id, at most `limit`; of
 * `category` only when not NULL. The caller frees *out (board_clear each). */
MUST_USE q_status_t q_board_list_tournaments(PGconn *c, const char *after_id, int limit, const char *category,
                                             board_t **out, size_t *n);
/* Players and accepted submissions of windows days[0..n) (0 for a window without any). */
MUST_USE q_status_t q_window_counts(PGconn *c, int64_t gen, const int64_t *days, size_t n, int64_t *players,
                           int64_t *submissions);
/* Players in a window (the live count). */
MUST_USE q_status_t q_window_players(PGconn *c, int64_t gen, int64_t day, int64_t *players);
/* The live counts of n windows in one round trip (a list of boards): players[i] of window
 * (gens[i], days[i]), or its tournament slot's entrants when entrants[i]; 0 for one with none. */
MUST_USE q_status_t q_windows_players(PGconn *c, const int64_t *gens, const int64_t *days, const bool *entrants,
                                      size_t n, int64_t *players);
/* The window's count of changing transactions (window_counts.seq; 0 without a row): `*seq`. */
MUST_USE q_status_t q_window_seq(PGconn *c, int64_t gen, int64_t day, int64_t *seq);
/* The same for windows (gens[i], days[i]), i < n, into seqs[i] (0 without a row). */
MUST_USE q_status_t q_window_seqs(PGconn *c, const int64_t *gens, const int64_t *days, size_t n, int64_t *seqs);

/* Ranked reads on the PostgreSQL path; `out` is filled in rank order. */
/* An offset page: from the rank bucket that holds `offset`, or, below `top_below`, from the
 * window's first standing (near the top a plain OFFSET reads fewer rows than finding a bucket). */
MUST_USE q_status_t q_page_offset(PGconn *c, const board_t *b, int64_t day, int limit, int64_t offset,
                                  int64_t top_below, entries_t *out);
MUST_USE q_status_t q_page_cursor(PGconn *c, const board_t *b, int64_t day, const order_pos_t *pos, bool backward, int limit,
                         entries_t *out);
MUST_USE q_status_t q_players(PGconn *c, const board_t *b, int64_t day, const char *const *ids, size_t n, entries_t *out);
/* The rank that positions pos[0..n) of window (b, day) have now, 1 + the standings before each,
 * into ranks[0..n), in one snapshot: the rank a write reports when Redis cannot, defined even
 * when the player's standing has since moved or gone (a concurrent deletion). */
MUST_USE q_status_t q_ranks_at(PGconn *c, const board_t *b, int64_t day, const order_pos_t *pos, size_t n,
                               int64_t *ranks);
/* How many standings of window `day` have score sort_key or a better one (out->at_or_before),
 * and the total, from the rank buckets. */
MUST_USE q_status_t q_score(PGconn *c, const board_t *b, int64_t day, int64_t sort_key, entries_t *out);
/* How many standings of window `day` sort before sort key sort_key (distinct: how many distinct
 * sort keys), from its archive when `closed` and archived: a rank style's count (core/rank_style.h). */
MUST_USE q_status_t q_rank_before(PGconn *c, const board_t *b, int64_t day, bool closed, bool distinct, int64_t sort_key,
                                  int64_t *out);
/* A read-only snapshot for several reads that must agree (a page and its rank style's counts):
 * begin, then end (committed when ok, else rolled back; an error reply of the end is returned). */
MUST_USE q_status_t q_snapshot_begin(PGconn *c);
q_status_t q_snapshot_end(PGconn *c, bool ok);
MUST_USE q_status_t q_around(PGconn *c, const board_t *b, int64_t day, const char *player, int before, int after,
                    entries_t *out);

/* A read of a closed window's archive (q_archive_read): what to read, as for the functions above. */
typedef enum { QA_PAGE, QA_CURSOR, QA_PLAYERS, QA_AROUND, QA_SCORE } q_archive_kind_t;
typedef struct {
    q_archive_kind_t kind;
    int limit;
    int64_t offset;
    const order_pos_t *pos;
    bool backward;
    const char *const *ids;
    size_t n_ids;
    const char *player;
    int before, after;
    int64_t sort_key; /* QA_SCORE */
} q_archive_read_t;

/*
 * Read closed window `day` from its archive into `out` (ranks as stored, rank order). `*archived`
 * is false when the window is not archived yet: read `standings` then, which still hold it
 * (the leader deletes a window's standings only after archiving it). Around a player who is
 * absent leaves `out` empty.
 */
MUST_USE q_status_t q_archive_read(PGconn *c, const board_t *b, int64_t day, const q_archive_read_t *rd, entries_t *out,
                          bool *archived);

/* A window a player's deletion changed. */
typedef struct {
    int64_t day;
    bool archived;   /* a closed window's archive lost its row (neither Redis nor the tier holds it) */
    bool stood;      /* a live window lost its standing (else only its log rows went) */
    int64_t seq;     /* live: the deletion's number among the window's changing transactions */
    int64_t version; /* stood: the tombstone version, for Redis */
    int64_t sort_key, achieved_ms; /* stood or archived: the position it left */
} q_deleted_t;

/* Remove a player's standings and submissions from every window, then from the archives (the
 * ranks below it move up; a second transaction, once the player's lock is released);
 * Q_NOT_FOUND if it had no standing and no archived row. Each transaction first waits at most
 * `lock_wait_ms` for an archive of the board to end (one holds the board for minutes): Q_RETRY
 * when it did not, that transaction rolled back (a retry does the rest). `*out` (caller frees,
 * even on failure) lists the `*n` windows it changed: the live windows whose number moved, then
 * the archives it left. Every listener hears each window's change (core/notice.h, D lines). */
MUST_USE q_status_t q_player_delete(PGconn *c, int64_t gen, const char *player, int lock_wait_ms, q_deleted_t **out,
                                    size_t *n);

/* Inside a transaction that changes a player's rows on board `gen` (text): take the board's
 * archive lock shared, then (with `imports`) each window's import lock shared, each waited for
 * `wait_ms` at most; Q_RETRY (rolled back) when one was held all that time, any other failure
 * rolled back too (a player's deletion, hide and restore; store/moderation.c). */
MUST_USE q_status_t q_board_locks_shared(PGconn *c, const char *gen, int wait_ms, bool imports, const char *what);

/* Log statements that take `ms` or longer (0: none), with their name, node and duration. */
void q_set_slow_ms(int ms);
/* Log `what`, begun at monotonic `started_ms` on `c` (NULL: the primary), when it was slow. */
void q_log_if_slow(PGconn *c, const char *what, int64_t started_ms);

/* The status of failed statement `r` on `c` (frees `r`, logs `what` and the error). */
MUST_USE q_status_t q_failed(PGconn *c, PGresult *r, const char *what);

/* Tell every instance's listener (channel rankd_l1) what changed: one payload line. */
MUST_USE q_status_t q_notify(PGconn *c, const char *payload);
/* Tell every instance that committed changes of windows (gens[i], days[i]) did not reach Redis
 * from this one (`R gen day` lines, core/notice.h): another instance that reaches Redis must not
 * read them there until its rebuilder has compared them again. */
MUST_USE q_status_t q_notify_unapplied(PGconn *c, const int64_t *gens, const int64_t *days, size_t n);

/* Compare the rank buckets of board `b`'s window `day` with its standings, one line to `out`
 * per bucket whose count is wrong; the number of such buckets, or -1 when the check failed. */
long q_rank_buckets_check(PGconn *c, const board_t *b, int64_t day, FILE *out);



/* One board where a player stands in the current window (q_player_standings). */
typedef struct {
    char board[BOARD_ID_MAX + 1];
    int64_t gen;          /* the board's generation */
    int64_t day;
    int64_t total;
    entry_t entry;        /* entry.metadata owned */
    league_t league;      /* a league board's tiers (owned); .on false on any other board */
} standing_row_t;

/*
 * Every board's current window (as of `now_ms`) where `player` stands, ordered by board id; when
 * `own` (the player's own token asks) also where a moderator hid them, ranked among the visible
 * players with `total` counting them (their own view), but not on league boards. `*rows` is freed
 * by the caller with q_standings_free().
 */
MUST_USE q_status_t q_player_standings(PGconn *c, const char *player, int64_t now_ms, bool own, standing_row_t **rows,
                                       size_t *n);
void q_standings_free(standing_row_t *rows, size_t n);
#endif
