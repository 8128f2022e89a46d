/*
 * store/write_sql.h — the SQL of the writer's transaction (worker/writer.c and its write_*.c), one text each:
 * idempotency keys claimed and looked up, boards locked, the batch's standings read, the one
 * write and its rank buckets' counts, the cache-invalidation notice, and the answers stored after the commit. The
 * statements of every batch are prepared on each of the writer's connections.
 */
#ifndef RANKD_STORE_WRITE_SQL_H
#define RANKD_STORE_WRITE_SQL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include "util/must_use.h"

/* Names of the prepared statements (write_sql_prepare). */
#define WS_BOARDS "rankd_w_boards"
#define WS_LOCK "rankd_w_lock"
#define WS_READ "rankd_w_read"
#define WS_ARCHIVED "rankd_w_archived"
#define WS_WRITE "rankd_w_write"
#define WS_NOTIFY "rankd_w_notify"
#define WS_NOTIFY_SEQ "rankd_w_notify_seq"
#define WS_BUCKETS "rankd_w_buckets"
#define WS_WINDOW_LOCK "rankd_w_window_lock"
#define WS_RECUT "rankd_w_recut"
#define WS_ENTRANTS "rankd_w_entrants"
#define WS_SLOTS_MAKE "rankd_w_slots_make"
#define WS_SLOTS_LOCK "rankd_w_slots_lock"
#define WS_TOURNAMENT "rankd_w_tournament"
#define WS_LEAGUE "rankd_w_league"
#define WS_HIDDEN_WRITE "rankd_w_hidden_write"
#define WS_CLIENT "rankd_w_client"
#define WS_TX_SETTINGS "rankd_w_tx_settings"
#define WS_ASYNC_COMMIT "rankd_w_async_commit"

/* League boards' first standings of a window placed in cohorts (migrations/0019_leagues.sql):
 * $1 bigint[] gens, $2 date[] days, $3 text[] players, in the batch's order. */
extern const char ws_league_sql[];
/* Token writes on boards with client rules (migrations/0026_client_rules.sql), read under the
 * players' locks: $1 gens, $2 players, $3 since_ms, $4 lim (int), $5 want_prev (bool). Rows
 * ('r', gen, player, ms, 0): the received_ms of the pair's newest `lim` token submissions
 * (accepted or flagged) after since_ms; ('p', gen, player, ms, score): its last accepted token
 * submission, where want_prev. Both through the log's partial index of token rows. */
extern const char ws_client_sql[];
/* The settings of the writer's transaction, first in it (no parameters). */
extern const char ws_tx_settings_sql[];
/* Boards of the batch, locked against deletion: $1 bigint[] of generations. */
extern const char ws_boards_sql[];
/* The archive lock of each window of the batch, shared: $1 bigint[] gens, $2 date[] days. */
extern const char ws_window_lock_sql[];
/* Of the batch's windows, those archived already: $1 gens, $2 days (after ws_window_lock_sql). */
extern const char ws_archived_sql[];
/* One transaction-scoped advisory lock per (board, player) key: $1 bigint[]. */
extern const char ws_lock_sql[];
/* One window's standings of the batch's players: $1 gen, $2 day, $3 text[]; the last column
 * says whether the player is hidden (then the standing, if any, is its hidden one). A join on the ids:
 * with statistics (the upkeep leader makes them as a table grows, upkeep_analyze) a lookup by
 * primary key per id; planned without any, it hashes the window, once per batch. A subquery
 * per id with a LIMIT was tried: without statistics PostgreSQL 15 may walk the rank index for
 * each id instead (a tie in its estimates), which made a first load of 100,000 players on a
 * new database 14 x slower (loadtest/scale.sh fresh_bulk: 147 s against 10 s). */
extern const char ws_read_sql[];
/* A hidden player's changed standings (migrations/0025_moderation.sql): $1 gens, $2 days,
 * $3 players, $4 scores, $5 sort keys, $6 achieved_ms, $7 metadata; upserted into
 * hidden_standings, which no ranking, counter, bucket or notice counts. */
extern const char ws_hidden_write_sql[];
/* The batch's one write: folded standings, window counters, the log, forgotten keys, and the
 * drafts of keyed answers (all but the rank, known only after the commit): a replay finds the
 * draft if this instance never stores the answer. WW_PARAMS array parameters, each an array of
 * one column, numbered by the WW_ names below: the statement's text and the writer's filling
 * both use the names, so a column added to one cannot shift the others. */
extern const char ws_write_sql[];
/* The standings the batch changed, one element each. */
#define WW_ST_GEN 1
#define WW_ST_DAY 2
#define WW_ST_PLAYER 3
#define WW_ST_SCORE 4
#define WW_ST_SORT_KEY 5
#define WW_ST_ACHIEVED_MS 6
#define WW_ST_METADATA 7
/* Each window's counters: players arrived and submissions accepted. */
#define WW_CNT_GEN 8
#define WW_CNT_DAY 9
#define WW_CNT_PLAYERS 10
#define WW_CNT_SUBMISSIONS 11
/* The log: one element per accepted submission. */
#define WW_LOG_GEN 12
#define WW_LOG_DAY 13
#define WW_LOG_PLAYER 14
#define WW_LOG_SCORE 15
#define WW_LOG_METADATA 16
#define WW_LOG_UPDATED 17
#define WW_LOG_RECEIVED_MS 18
/* Idempotency keys of failed items, forgotten. */
#define WW_FORGET_GEN 19
#define WW_FORGET_KEY 20
/* Drafts of the answers of new keys. */
#define WW_DRAFT_GEN 21
#define WW_DRAFT_KEY 22
#define WW_DRAFT_TEXT 23
/* The log's audit (migrations/0024_player_tokens.sql): what authorised each submission and the
 * client's address, one element per accepted submission as the log's others. */
#define WW_LOG_AUTH_BY 24
#define WW_LOG_CLIENT_ADDR 25
/* The client rule a logged submission broke (migrations/0026_client_rules.sql): NULL for an
 * accepted one; a flagged one is logged and not applied. */
#define WW_LOG_FLAGGED 26
#define WW_PARAMS 26
/* The rank buckets' and supers' counts (migrations/0010_rank_supers.sql): $1 gens, $2 days,
 * $3 sort keys, $4 achieved_ms, $5 players, $6 deltas (-1 where a standing left, +1 where it arrived). Sent
 * after ws_write_sql, which locked the windows' counters and made sure each has its first
 * bucket and super: a statement of its own, so that it sees them as a re-cut that held those
 * locks left them. A player's deletion sends it too, after locking the same counters. */
extern const char ws_buckets_sql[];
/* Re-cut the rank buckets of the windows a large batch changed, in its own transaction, after
 * ws_buckets_sql (migrations/0017: rankd_rank_buckets_recut until the window is in shape, at
 * most $4 splits and merges a window, towards buckets of rankd_rank_bucket_target(players, $3)):
 * ranks read from PostgreSQL right after a bulk load find buckets of their size, not one the load
 * grew to thousands of standings while the upkeep leader's re-cut (a fifth of each second)
 * catches up. $1 gens, $2 days; returns the changes made. */
extern const char ws_recut_sql[];
/* Tournaments (migrations/0018_tournaments.sql). The entrant rows of the batch's players on
 * tournament boards, read under the players' advisory locks: $1 gens, $2 days, $3 players;
 * returns gen, day number, player, joined_ms, attempts, extra_attempts. */
extern const char ws_entrants_sql[];
/* The slot rows of $1 gens, $2 days made where missing (for boards that still exist: a deleted
 * board's purge has no row to find later), in that order, which must be (gen, day) order; then
 * locked in order (ws_slots_lock_sql returns gen, day number, entrants): a writer that admits new
 * entrants to a capped slot holds its count until it commits, as a join does. */
extern const char ws_slots_make_sql[];
extern const char ws_slots_lock_sql[];
/* The batch's entrants and slots: $1 gens, $2 days, $3 players, $4 attempts to add (an entrant
 * row made where missing), then $5 gens, $6 days, $7 new entrants to add to their slots. */
extern const char ws_tournament_sql[];
/* Notify every instance's listener: $1 text[] of payloads (each under 8000 bytes). */
extern const char ws_notify_sql[];
/* The transaction it is in commits without waiting for the WAL's flush (no parameters). */
extern const char ws_async_commit_sql[];
/* The notices sent inside the writing transaction (core/notice.h): $1 text[] the parts' W lines,
 * $2 bigint[] gens, $3 date[] days, $4 int[] part, $5 int[] parts; each part is headed by its S
 * line, which carries the number the transaction took for the window (read after ws_write_sql
 * set it: the window's row is this transaction's until it commits). */
extern const char ws_notify_seq_sql[];
/* An import holds this advisory lock of each window it merges into (with the window's archive
 * lock), for its whole transaction: `g` and `w` are SQL expressions of the generation and the
 * window's date. */
#define WS_IMPORT_LOCK_KEY(g, w) "hashtextextended('rankd import ' || (" g ") || ' ' || ((" w ") - DATE '1970-01-01'), 0)"
/* Whether an import holds one of the windows $1 gens, $2 days (run outside a transaction: the
 * shared locks it tries are let go as it ends). */
extern const char ws_import_held_sql[];
/* The WAL position the commit needs replicas to reach (PG_COMMITTED_LSN_SQL), read in the
 * committing round trip. */
extern const char ws_wal_lsn_sql[];
/* Claim idempotency keys: $1 gens, $2 keys, $3 requests; returns the keys this batch inserted. */
extern const char ws_key_claim_sql[];
/* What keys that already existed were first used with: $1 gens, $2 keys. */
extern const char ws_key_lookup_sql[];
/* Store the answers of new keys: $1 item indexes, $2 gens, $3 keys, $4 answers; returns the indexes stored. */
extern const char ws_store_answers_sql[];
/* Answers another writer stored first: $1 indexes, $2 gens, $3 keys. */
extern const char ws_stored_answers_sql[];

/* Prepare the batch statements on a new writer connection (a pg_pool_on_connect hook;
 * `arg`, when not NULL, points to the lock timeout in ms to set on it); false, with the error
 * logged, when one cannot be. */
MUST_USE bool write_sql_prepare(PGconn *c, void *arg);

#endif
