/* store/export.c — every standing of one window, in rank order, from one snapshot (see export.h). */
#include "store/export.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/window.h"
#include "store/pg_error.h"
#include "util/alloc.h"

#define FETCH_ROWS 2000 /* rows a FETCH brings: about 200 KB of text for 100-byte metadata */

struct export_cursor {
    PGconn *conn;
    export_format_t fmt;
    bool header_done;
    bool done;
};

bool export_format_parse(const char *s, export_format_t *fmt)
{
    if (strcmp(s, "csv") == 0)
        *fmt = EXPORT_CSV;
    else if (strcmp(s, "ndjson") == 0)
        *fmt = EXPORT_NDJSON;
    else
        return false;
    return true;
}

const char *export_format_type(export_format_t fmt)
{
    return fmt == EXPORT_CSV ? "text/csv; charset=utf-8" : "application/x-ndjson";
}

/* Run `sql` with no rows expected; false with the message in err. */
static bool run(PGconn *c, const char *sql, int n, const char *const *params, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        pg_error_text(NULL, r, err, errlen);
    PQclear(r);
    return ok;
}

/* The columns of an export in `style`, its rank first: the position in the tie-break order (ordinal), or a
 * window over the sort key alone, which the rows' order (sort key first) already serves: rank()
 * gives ties the best rank and skips (competition), dense_rank() does not skip. A styled column
 * is followed by the ordinal one, unread: PostgreSQL 15 evaluates it last, over the index's
 * order, and so knows the rows still come in the tie-break order; without it, a window over the
 * sort key alone is followed by a sort of every tie group (EXPLAIN: Incremental Sort). */
static const char *select_list(rank_style_t style)
{
#define ORDINAL_RANK "row_number() OVER (ORDER BY sort_key, achieved_ms, player_id)"
    switch (style) {
    case RANK_COMPETITION: return "rank() OVER (ORDER BY sort_key), player_id, score, achieved_ms, metadata, " ORDINAL_RANK;
    case RANK_DENSE: return "dense_rank() OVER (ORDER BY sort_key), player_id, score, achieved_ms, metadata, " ORDINAL_RANK;
    case RANK_ORDINAL: break;
    }
    return ORDINAL_RANK ", player_id, score, achieved_ms, metadata";
#undef ORDINAL_RANK
}

export_cursor_t *export_open(PGconn *c, int64_t gen, int64_t day, export_format_t fmt, rank_style_t style,
                             int64_t idle_ms, bool *archived, char *err, size_t errlen)
{
    char g[24], d[11], idle[80];
    snprintf(g, sizeof g, "%" PRId64, gen);
    window_format_day(day, d);
    const char *params[2] = {g, d};
    snprintf(idle, sizeof idle, "SET idle_in_transaction_session_timeout = %" PRId64, idle_ms);
    if (!run(c, idle, 0, NULL, err, errlen) ||
        !run(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err, errlen))
        return NULL;
    /* In the transaction's snapshot: a window archived by then is read from its archive, whose
     * ranks were fixed when it closed (and which outlives the standings' retention). */
    PGresult *r = PQexecParams(c,
                               "SELECT EXISTS (SELECT 1 FROM archived_windows WHERE board_gen = $1 AND win = $2)",
                               2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        pg_error_text(NULL, r, err, errlen);
        PQclear(r);
        PQclear(PQexec(c, "ROLLBACK"));
        return NULL;
    }
    *archived = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    /* An archive keeps its ordinal ranks (in the tie-break order, as it closed); another style
     * ranks its rows in that order by their sort keys (the archive_order index). */
    char sql[400];
    if (*archived && style == RANK_ORDINAL)
        snprintf(sql, sizeof sql, "DECLARE rankd_export NO SCROLL CURSOR FOR SELECT rank, player_id, score, achieved_ms,"
                                  " metadata FROM archive WHERE board_gen = $1 AND win = $2 ORDER BY rank, player_id");
    else
        snprintf(sql, sizeof sql, "DECLARE rankd_export NO SCROLL CURSOR FOR SELECT %s FROM %s"
                                  " WHERE board_gen = $1 AND win = $2 ORDER BY sort_key, achieved_ms, player_id",
                 select_list(style), *archived ? "archive" : "standings");
    if (!run(c, sql, 2, params, err, errlen)) {
        PQclear(PQexec(c, "ROLLBACK"));
        return NULL;
    }
    export_cursor_t *x = xcalloc(1, sizeof *x);
    x->conn = c;
    x->fmt = fmt;
    return x;
}

/* RFC 4180: a field with a comma, a quote or a line break goes in quotes, its quotes doubled. */
static void csv_field(buf_t *o, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        buf_puts(o, s);
        return;
    }
    buf_putc(o, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            buf_putc(o, '"');
        buf_putc(o, *p);
    }
    buf_putc(o, '"');
}

static void render_row(const export_cursor_t *x, PGresult *r, int i, buf_t *o)
{
    const char *player = PQgetvalue(r, i, 1);
    char at[25];
    window_format_ms(strtoll(PQgetvalue(r, i, 3), NULL, 10), at);
    bool has_metadata = !PQgetisnull(r, i, 4);
    if (x->fmt == EXPORT_CSV) {
        buf_puts(o, PQgetvalue(r, i, 0));
        buf_putc(o, ',');
        csv_field(o, player);
        buf_putc(o, ',');
        buf_puts(o, PQgetvalue(r, i, 2));
        buf_putc(o, ',');
        buf_append(o, at, 24);
        buf_putc(o, ',');
        if (has_metadata)
            csv_field(o, PQgetvalue(r, i, 4));
        buf_puts(o, "\r\n");
        return;
    }
    /* An Entry of API.md, one per line (metadata is stored as compact JSON: no line break). */
    buf_puts(o, "{\"rank\":");
    buf_puts(o, PQgetvalue(r, i, 0));
    buf_puts(o, ",\"player_id\":");
    buf_json_str(o, player, (size_t)PQgetlength(r, i, 1));
    buf_puts(o, ",\"score\":");
    buf_puts(o, PQgetvalue(r, i, 2));
    buf_puts(o, ",\"achieved_at\":\"");
    buf_append(o, at, 24);
    buf_putc(o, '"');
    if (has_metadata) {
        buf_puts(o, ",\"metadata\":");
        buf_puts(o, PQgetvalue(r, i, 4));
    }
    buf_puts(o, "}\n");
}

int export_next(export_cursor_t *x, buf_t *out, char *err, size_t errlen)
{
    if (x->fmt == EXPORT_CSV && !x->header_done)
        buf_puts(out, "rank,player_id,score,achieved_at,metadata\r\n");
    x->header_done = true;
    if (x->done)
        return 0;
    char sql[64];
    snprintf(sql, sizeof sql, "FETCH %d FROM rankd_export", FETCH_ROWS);
    PGresult *r = PQexec(x->conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        pg_error_text(NULL, r, err, errlen);
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
        render_row(x, r, i, out);
    PQclear(r);
    if (n < FETCH_ROWS)
        x->done = true;
    return n;
}

void export_close(export_cursor_t *x)
{
    if (!x)
        return;
    PQclear(PQexec(x->conn, "ROLLBACK")); /* read only: nothing to keep */
    free(x);
}
