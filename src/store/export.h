/*
 * store/export.h — every standing of one window, in rank order, from one snapshot (API.md,
 * "Import and export"): a closed window from its archive, any other from its standings.
 *
 * The rows come through a cursor a few thousand at a time, so a window of millions never sits in
 * memory; the connection is the caller's and carries the export's transaction until
 * export_close().
 */
#ifndef RANKD_STORE_EXPORT_H
#define RANKD_STORE_EXPORT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/rank_style.h"
#include "util/buf.h"
#include "util/must_use.h"

typedef enum { EXPORT_CSV, EXPORT_NDJSON } export_format_t;

typedef struct export_cursor export_cursor_t;

/* "csv" or "ndjson" into *fmt; false for anything else. */
MUST_USE bool export_format_parse(const char *s, export_format_t *fmt);
/* The media type of a format's body. */
const char *export_format_type(export_format_t fmt);

/*
 * Begin a repeatable-read, read-only transaction on `c` and open the window's rows (board
 * generation `gen`, window `day`), ranked in `style` (core/rank_style.h: a window function over
 * the same ordered scan). NULL with a message in err (for the log, not the client) when
 * the database refused; the transaction is then rolled back. `archived` says where rows come from.
 * The snapshot holds back vacuum while it lasts, so PostgreSQL ends the transaction when it sits
 * idle between two fetches for more than `idle_ms` (a reader too slow to take one fetch's rows):
 * the next export_next() then fails; 0 sets no limit. The setting stays on the connection, which
 * is the export's.
 */
MUST_USE export_cursor_t *export_open(PGconn *c, int64_t gen, int64_t day, export_format_t fmt, rank_style_t style,
                                      int64_t idle_ms, bool *archived, char *err, size_t errlen);
/* Append the next rows to `out` (CSV's header line before the first): the rows appended, 0 once
 * every row was given, -1 when the database failed (message in err). */
MUST_USE int export_next(export_cursor_t *x, buf_t *out, char *err, size_t errlen);
/* End the transaction and free the cursor; the connection is the caller's again. */
void export_close(export_cursor_t *x);

#endif
