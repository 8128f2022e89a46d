/*
 * worker/importer.h — an import's bytes, as they come, into its COPY (store/import.h).
 *
 * The bytes are cut into lines, each line read and judged as a row (core/import_row.h) and
 * written in COPY's text format into a buffer sent to PostgreSQL whenever it fills: memory stays
 * at one line and one buffer whatever the file's size. The first bad row ends the import with its
 * line and field. The body's SHA-256 is kept for the idempotency key's request, and a Bloom
 * filter of the players seen (a fixed 16 MiB) tells, in the common case, that no player has two
 * rows, which spares PostgreSQL a pass over the rows (store_import_players_once).
 */
#ifndef RANKD_WORKER_IMPORTER_H
#define RANKD_WORKER_IMPORTER_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "core/import_row.h"
#include "core/model.h"
#include "store/import.h"
#include "store/redis.h"
#include "util/buf.h"
#include "util/must_use.h"

#define IMPORT_LINE_MAX 8192 /* bytes of one line: a row with 1 KiB of metadata, escaped, fits */

typedef struct importer importer_t;

/* Feed `im` (the caller's, which it outlives) rows judged by `rules`. */
MUST_USE importer_t *importer_new(store_import_t *im, const import_rules_t *rules);
/* The next bytes. False once the import failed (`err` set): feed nothing more. */
MUST_USE bool importer_feed(importer_t *x, const char *data, size_t len, import_error_t *err);
/* The input ended: its last line, and what is buffered, go to PostgreSQL. */
MUST_USE bool importer_end(importer_t *x, import_error_t *err);
/* Rows read so far, and bytes. */
long importer_rows(const importer_t *x);
unsigned long long importer_bytes(const importer_t *x);
/* The SHA-256 of every byte fed, in lowercase hex (after importer_end). */
void importer_digest(importer_t *x, char hex[65]);
void importer_free(importer_t *x);

/* The rules of a row for board `b`'s window `day` at `now_ms`. */
void importer_rules(import_rules_t *out, const board_t *b, int64_t day, int64_t now_ms, import_format_t format);

/* The answer of API.md: {"board","window","rows","created","updated","unchanged","removed","ms"}. */
void importer_render(buf_t *out, const char *board_id, int64_t day, const import_counts_t *counts, int64_t ms);

/*
 * After the commit: the window's Redis copy is marked cold (`rc`; NULL: no Redis), so that no
 * read finds the old one from here on: reads go to PostgreSQL, whose ranks are exact at once, and
 * the first asks a rebuilder to load the window again (a million standings take seconds). Then a
 * second notice on `c` drops what other instances cached from Redis in between. False when Redis
 * could not be told (every instance's rebuilder still finds the window behind, by its number).
 */
MUST_USE bool importer_publish(PGconn *c, redis_conn_t *rc, const board_t *b, int64_t day);

#endif
