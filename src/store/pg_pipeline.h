/*
 * store/pg_pipeline.h — what a batch of statements needs from libpq: array parameters
 * built as PostgreSQL array literals (one text parameter carries a whole column of a
 * batch, for unnest), and several statements sent in one round trip (pipeline mode).
 */
#ifndef RANKD_STORE_PG_PIPELINE_H
#define RANKD_STORE_PG_PIPELINE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "util/buf.h"

/* Array parameters of one statement at most: the batch write has the most. */
#define PG_ARRAYS_MAX 26

typedef struct {
    buf_t a[PG_ARRAYS_MAX];
    int n;
} pg_arrays_t;

/* Start `n` empty array literals. */
void pg_arrays_open(pg_arrays_t *as, int n);
/* Close them and point params[0..n) at their text (owned by `as` until pg_arrays_free). */
void pg_arrays_close(pg_arrays_t *as, const char **params);
void pg_arrays_free(pg_arrays_t *as);
/* Append one element: NULL or a quoted, escaped string; a number; a date (days since epoch). */
void pg_arr_text(buf_t *b, const char *s);
void pg_arr_i64(buf_t *b, int64_t v);
void pg_arr_day(buf_t *b, int64_t day);

/* One statement of a pipeline: prepared on the connection under `name` when set, else `sql`
 * parsed and planned on the spot. */
typedef struct {
    const char *sql;
    int nparams;
    const char *const *params;
    const char *name;
} pg_stmt_t;

/*
 * Send `n` statements in one round trip (libpq pipeline mode) and collect one result each
 * into out[] (the caller PQclear()s them; NULL where none came back). After a failed
 * statement the rest report PGRES_PIPELINE_ABORTED.
 */
void pg_pipeline_run(PGconn *c, const pg_stmt_t *stmts, int n, PGresult **out);
/* Prepare `n` statements (each one's name, sql and nparams) in one round trip; out[] as above. */
void pg_pipeline_prepare(PGconn *c, const pg_stmt_t *stmts, int n, PGresult **out);

#endif
