/*
 * store/upkeep.h — the statements of the periodic upkeep on the primary: partitions of the
 * submission log made ahead, idempotency keys past their 24 hours dropped, windows archived and
 * retired, rank buckets re-cut (the SQL functions live in migrations/). What deleted boards left
 * is removed by store/purge.h.
 */
#ifndef RANKD_STORE_UPKEEP_H
#define RANKD_STORE_UPKEEP_H

#include <libpq-fe.h>

#include "store/queries.h"
#include "util/must_use.h"

/*
 * Index the log's finished months by player: each part of a month that ended more than a day
 * before `now_ms` gets an index on (board_gen, player_id), built CONCURRENTLY (writes go on), at
 * most `max_parts` per call; `*made` counts them. The month being written has none, so a write
 * pays no index entry; a player's deletion finds their rows of every finished month by index and
 * scans only the current month's one part (and the previous month's in its first day).
 */
MUST_USE q_status_t upkeep_index_log_months(PGconn *c, int64_t now_ms, int max_parts, long *made);
/* PostgreSQL's clock (clock_timestamp()) in ms since the epoch: `*ms`. */
MUST_USE q_status_t upkeep_db_clock_ms(PGconn *c, int64_t *ms);
/* Set this session's statement timeout to `ms` (a one-off session's: start-up's DDL). */
MUST_USE q_status_t upkeep_session_timeout(PGconn *c, int ms);
/* Create the log's partitions for the month of `now_ms` and the next `months_ahead`. */
MUST_USE q_status_t upkeep_ensure_partitions(PGconn *c, int64_t now_ms, int months_ahead);
/* How many months of log partitions exist after the month of `now_ms`, one after the other:
 * `*months` (-1 when the month of `now_ms` has none: writes fail). */
MUST_USE q_status_t upkeep_partitions_ahead(PGconn *c, int64_t now_ms, int *months);
/* Drop at most `batch` idempotency keys older than 25 hours (kept at least 24, API.md); `*done` how many. */
MUST_USE q_status_t upkeep_forget_old_keys(PGconn *c, int batch, long *done);
/*
 * A mark of everything the views are computed from: it changes with every accepted submission,
 * player deletion and board deletion (each rewrites or removes window_counts rows). Written
 * into `out`.
 */
MUST_USE q_status_t upkeep_write_mark(PGconn *c, char *out, size_t outlen);
/*
 * Ready a session to hold the leader lock: the server drops it (and so releases the lock) within
 * seconds of its client going silent (a crashed host, a partition), not after the operating
 * system's two-hour keepalive default.
 */
MUST_USE q_status_t upkeep_lead_session(PGconn *c);
/* Take the upkeep leader's session lock if it is free (or already ours): `*leads`. */
MUST_USE q_status_t upkeep_try_lead(PGconn *c, bool *leads);

/* A board window (gen, first day). */
typedef struct {
    int64_t gen;
    int64_t day;
} upkeep_window_t;

/* Windows of existing boards closed at `now_ms` that have rows (window_counts) and no archive
 * yet, newest first: `*out` (caller frees) and `*n`. */
MUST_USE q_status_t upkeep_unarchived(PGconn *c, int64_t now_ms, upkeep_window_t **out, size_t *n);
/* Archive one closed window (rankd_archive_window) in a transaction of its own: `*rows`
 * archived (-1 when it was already), `*ms` how long the archive took to write; a tournament's or
 * league's end-of-window event holds its top `event_standings` standings and moves. */
MUST_USE q_status_t upkeep_archive_window(PGconn *c, int64_t gen, int64_t day, int event_standings, int64_t *rows,
                                          int64_t *ms);
/* Drop at most `batch` delivered or failed end-of-window events made before `before_ms`; `*done`
 * how many. */
MUST_USE q_status_t upkeep_expire_events(PGconn *c, int64_t before_ms, int batch, long *done);

/* What retention needs of a board at the moment it runs. */
typedef struct {
    int64_t gen;
    int64_t previous;   /* its previous window: it and the current one keep their standings */
    int64_t first_kept; /* its oldest window inside retention (window_first_kept) */
} upkeep_board_t;

typedef struct {
    long windows_expired;   /* archived windows past retention, forgotten */
    long standings_deleted; /* standings rows of windows no longer read from them */
    long windows_retired;   /* windows whose standings are all gone (their counts too) */
} upkeep_retired_t;

/*
 * Retention and the live tables' cleanup for `boards`: the archive records of windows older
 * than first_kept go (their partitions next, upkeep_drop_orphans); the standings of windows
 * older than previous are deleted, `batch` rows per statement, once the window is archived
 * for longer than `guard_ms` (a read that found no archive may still be reading standings)
 * or past retention; then their window_counts rows.
 */
MUST_USE q_status_t upkeep_retire(PGconn *c, const upkeep_board_t *boards, size_t n, int64_t guard_ms, int batch,
                         upkeep_retired_t *out);
/*
 * Re-cut the rank buckets and supers of the windows whose buckets drifted from about
 * players^(1/3) standings each (at least `min_rows`), or whose supers drifted from theirs, a few
 * changes per transaction, until none is left or `budget_ms` has passed; *changes counts the
 * splits and merges (migrations/0009_rank_buckets.sql, 0010_rank_supers.sql).
 */
MUST_USE q_status_t upkeep_recut(PGconn *c, int min_rows, int budget_ms, long *changes);
/*
 * ANALYZE the tables the hot paths' plans depend on (standings, its rank buckets and supers,
 * window counters, idempotency keys, league members and cohorts, tournament entrants) whose rows changed by half or more since their last
 * statistics, and at least 1,000 rows: a table filled on a new database, before autovacuum
 * came by, or grown faster than it does. Without statistics the planner cannot tell a lookup by
 * primary key from a scan of a window (both indexes lead with board and window), and its
 * plans stay cached. The names analyzed go to the log.
 */
MUST_USE q_status_t upkeep_analyze(PGconn *c);
/* Delete tournament entrants and slots of windows before the previous one of their board (their
 * slots closed: nothing reads or checks them again), `batch` rows a statement, for at most
 * `budget_ms`; *all says whether none is left. */
MUST_USE q_status_t upkeep_drop_old_entrants(PGconn *c, int64_t now_ms, int batch, int budget_ms, bool *all);
/* Detach CONCURRENTLY and drop the archive partitions no archived window names. */
MUST_USE q_status_t upkeep_drop_orphans(PGconn *c, long *dropped);
/* Detach CONCURRENTLY and drop the log's months that end by `before_ms`, and forget the daily
 * activity of the days before it. */
MUST_USE q_status_t upkeep_drop_log_months(PGconn *c, int64_t before_ms, long *dropped);

#endif
