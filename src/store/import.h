/*
 * store/import.h — a board's rows in by PostgreSQL's bulk path (API.md, "Import and export").
 *
 * One transaction on a connection of the import's own: the rows go by COPY into a temporary
 * table as they are read (nothing of the file is held in rankd), then a few set-based statements
 * merge them into the current window under the board's operator, in file order, log each row as
 * a submission, cut the window's rank buckets again and notify every instance. The merge holds
 * the window's lock exclusively (the one a writer takes shared for each window it writes, and an
 * archive exclusively): a submission either commits before it and is merged with, or waits and
 * applies after it. Any bad row, or a failure anywhere, rolls everything back.
 */
#ifndef RANKD_STORE_IMPORT_H
#define RANKD_STORE_IMPORT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/import_row.h"
#include "core/model.h"
#include "util/must_use.h"

typedef enum { IMPORT_SUBMIT = 0, IMPORT_REPLACE = 1 } import_mode_t;

/* "submit" or "replace"; false for anything else. */
MUST_USE bool import_mode_parse(const char *s, import_mode_t *out);

typedef struct {
    long rows;      /* rows read (each an accepted submission) */
    long created;   /* players without a standing before that have one now */
    long updated;   /* players whose standing changed */
    long unchanged; /* players of the file whose standing did not change */
    long removed;   /* standings deleted (replace mode) */
    int64_t seq;    /* the window's changing-transaction number this import took */
} import_counts_t;

/* Why an import failed: the API.md error object, with the row's line when a row is the cause. */
typedef struct {
    int status; /* 400, 404, 409, 500, 503 */
    const char *code;
    const char *field; /* static, or NULL */
    long line;         /* 1-based; 0 when no row is the cause */
    char message[256];
} import_error_t;

typedef struct store_import store_import_t;

/*
 * Begin an import of board `b`'s window `day` on `c` (the import's own connection, which it
 * holds until store_import_end), with `now_ms` for rows without achieved_at. `idle_ms` > 0 ends
 * the transaction when no rows come for that long (a stalled upload). NULL with `err` set when
 * PostgreSQL refused.
 */
MUST_USE store_import_t *store_import_begin(PGconn *c, const board_t *b, int64_t day, import_mode_t mode,
                                            int64_t now_ms, int64_t idle_ms, import_error_t *err);
/* The caller knows that no player has two rows (the importer's filter saw none): the check in
 * PostgreSQL, a pass over every row, is skipped. */
void store_import_players_once(store_import_t *im);
/* Send rows in COPY's text format (import_row_copy_line). False with `err` set on failure. */
MUST_USE bool store_import_send(store_import_t *im, const char *data, size_t len, import_error_t *err);

/* The idempotency key of an import made over HTTP: stored with the answer, in the import's
 * transaction; a key seen before answers with what it stored (or 409 for another request). */
typedef struct {
    const char *key;     /* as stored: "<presenting key's tag> <key>" */
    const char *request; /* the canonical request (mode, format, the body's digest) */
} import_key_t;

/* Renders the answer for the counts, stored with the key before the commit (malloc'd). */
typedef char *(*import_render_fn)(const import_counts_t *counts, void *arg);

typedef enum {
    IMPORT_DONE = 0,     /* committed: `out` filled, and *answer when a key was given */
    IMPORT_REPLAYED = 1, /* the key's stored answer is in *answer; nothing changed */
    IMPORT_FAILED = -1,  /* rolled back: `err` says why */
} import_result_t;

/*
 * End the COPY and merge: every row is in the window, or nothing is. `rank_bucket_rows` is the
 * smallest rank bucket (refresh.rank_bucket_rows). With `key`, `render` makes the answer stored
 * with it (*answer, malloc'd, the caller frees it).
 */
MUST_USE import_result_t store_import_finish(store_import_t *im, const import_key_t *key, int rank_bucket_rows,
                                             import_render_fn render, void *render_arg, import_counts_t *out,
                                             char **answer, import_error_t *err);
/* Roll back what is not committed and free the import; the connection is the caller's again. */
void store_import_end(store_import_t *im);

#endif
