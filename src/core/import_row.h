/*
 * core/import_row.h — one row of an import (API.md, "Import and export"), read and judged.
 *
 * A CSV row is `player_id,score[,achieved_at[,metadata]]` (RFC 4180 quoting, so metadata's
 * commas and quotes travel as "…""…"); an NDJSON row is one object with those members. Each is
 * checked as a submission would be (ids, the score's range and the board's bounds, metadata, and
 * achieved_at inside the current window and not in the future), so that the rows that reach
 * PostgreSQL are all good and a bad one is named by its field. Pure: no I/O.
 */
#ifndef RANKD_CORE_IMPORT_ROW_H
#define RANKD_CORE_IMPORT_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/board.h"
#include "util/buf.h"
#include "util/must_use.h"

typedef enum { IMPORT_CSV = 0, IMPORT_NDJSON = 1 } import_format_t;

/* What every row of one import is held to. */
typedef struct {
    import_format_t format;
    bool has_min_score, has_max_score;
    int64_t min_score, max_score;
    int64_t window_start_ms; /* achieved_at at or after this */
    int64_t now_ms;          /* and not after this */
} import_rules_t;

typedef struct {
    char player[PLAYER_ID_MAX + 1];
    int64_t score;
    bool has_achieved;
    int64_t achieved_ms;
    char *metadata; /* owned compact JSON object, or NULL; import_row_clear() frees it */
} import_row_t;

/* Why a row was refused: the field (static) and a sentence for the error object. */
typedef struct {
    const char *field;
    char message[200];
} import_row_error_t;

typedef enum {
    IMPORT_ROW_OK = 0,    /* `row` filled */
    IMPORT_ROW_SKIP = 1,  /* a blank line, or the CSV header (checked): no row */
    IMPORT_ROW_BAD = 2,   /* `err` filled */
} import_row_status_t;

/* Read line `line_no` (1-based; its bytes without the line end, a trailing CR dropped here). A
 * CSV header is accepted on line 1 only, naming a prefix of the columns in order. */
MUST_USE import_row_status_t import_row_parse(const import_rules_t *rules, const char *line, size_t n, long line_no,
                                              import_row_t *row, import_row_error_t *err);
void import_row_clear(import_row_t *row);

/* Append `row` to `out` as one line of PostgreSQL's COPY text format: line, player_id, score,
 * achieved_ms and metadata (\N when absent), tab-separated. */
void import_row_copy_line(buf_t *out, long line_no, const import_row_t *row);

#endif
