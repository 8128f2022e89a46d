/* store/pg_pipeline.c — array parameters and pipelined statements; see pg_pipeline.h. */
#include "store/pg_pipeline.h"

#include <assert.h>

#include "core/window.h"

void pg_arr_text(buf_t *b, const char *s)
{
    if (b->len > 1)
        buf_putc(b, ',');
    if (!s) {
        buf_puts(b, "NULL");
        return;
    }
    buf_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *p);
    }
    buf_putc(b, '"');
}

void pg_arr_i64(buf_t *b, int64_t v)
{
    if (b->len > 1)
        buf_putc(b, ',');
    buf_i64(b, v); /* a number needs no quotes */
}

void pg_arr_day(buf_t *b, int64_t day)
{
    char d[11];
    window_format_day(day, d);
    pg_arr_text(b, d);
}

void pg_arrays_open(pg_arrays_t *as, int n)
{
    assert(n <= PG_ARRAYS_MAX);
    as->n = n;
    for (int i = 0; i < n; i++) {
        buf_init(&as->a[i]);
        buf_putc(&as->a[i], '{');
    }
}

void pg_arrays_close(pg_arrays_t *as, const char **params)
{
    for (int i = 0; i < as->n; i++) {
        buf_putc(&as->a[i], '}');
        params[i] = as->a[i].data;
    }
}

void pg_arrays_free(pg_arrays_t *as)
{
    for (int i = 0; i < as->n; i++)
        buf_free(&as->a[i]);
}

/* pg_pipeline_run, or with `prepare` pg_pipeline_prepare. */
static void pipeline(PGconn *c, const pg_stmt_t *stmts, int n, PGresult **out, bool prepare)
{
    for (int i = 0; i < n; i++)
        out[i] = NULL;
    if (!PQenterPipelineMode(c))
        return;
    bool sent = true;
    for (int i = 0; i < n && sent; i++)
        sent = (prepare          ? PQsendPrepare(c, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL)
                : stmts[i].name ? PQsendQueryPrepared(c, stmts[i].name, stmts[i].nparams, stmts[i].params, NULL, NULL, 0)
                                : PQsendQueryParams(c, stmts[i].sql, stmts[i].nparams, NULL, stmts[i].params, NULL, NULL,
                                                    0)) == 1;
    sent = sent && PQpipelineSync(c) == 1;
    for (int i = 0; i < n && sent; i++) {
        out[i] = PQgetResult(c);
        if (!out[i])
            break;
        PGresult *end = PQgetResult(c); /* each statement's results end with NULL */
        if (end)
            PQclear(end);
    }
    PGresult *r;
    while (sent && (r = PQgetResult(c))) {
        bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (sync)
            break;
    }
    PQexitPipelineMode(c);
}

void pg_pipeline_run(PGconn *c, const pg_stmt_t *stmts, int n, PGresult **out)
{
    pipeline(c, stmts, n, out, false);
}

void pg_pipeline_prepare(PGconn *c, const pg_stmt_t *stmts, int n, PGresult **out)
{
    pipeline(c, stmts, n, out, true);
}
