/*
 * api/export.c — GET /v1/leaderboards/{board}/export (API.md, "Import and export"): every
 * standing of a window in rank order, streamed from one snapshot, as CSV or NDJSON, its ranks
 * in the rank style asked for (rank_style=, as reads take it).
 *
 * The handler runs off the event loop (api/router.c): it checks the request, opens a connection
 * of the export's own, its transaction and cursor, so that a refusal is a plain JSON error.
 * Then a producer thread fetches and writes the rows into an http_stream while libmicrohttpd
 * sends them; a slow client holds one stream buffer, one thread and one connection, never the
 * window. At most EXPORTS_MAX run at once per instance.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "core/window.h"
#include "http/stream.h"
#include "obs/log.h"
#include "store/export.h"
#include "store/pg_pool.h"
#include "util/alloc.h"
#include "util/clock.h"

#define EXPORTS_MAX 2               /* exports running at once on one instance */
#define EXPORT_BUFFER (256 * 1024)  /* bytes a stream holds between the producer and the socket */

struct exports {
    pthread_mutex_t mu;
    pthread_cond_t done; /* signalled as each producer ends */
    int running;
    unsigned long long finished, cut; /* exports sent whole; ended early (client gone, failure, shutdown) */
};

void exports_counts(exports_t *e, int *running, unsigned long long *finished, unsigned long long *cut)
{
    pthread_mutex_lock(&e->mu);
    *running = e->running;
    *finished = e->finished;
    *cut = e->cut;
    pthread_mutex_unlock(&e->mu);
}

exports_t *exports_new(void)
{
    exports_t *e = xcalloc(1, sizeof *e);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->done, NULL);
    return e;
}

bool exports_wait(exports_t *e, int timeout_ms)
{
    if (!e)
        return true;
    struct timespec until = clock_deadline_ms(timeout_ms);
    pthread_mutex_lock(&e->mu);
    while (e->running > 0 && pthread_cond_timedwait(&e->done, &e->mu, &until) == 0) {
    }
    bool none = e->running == 0;
    pthread_mutex_unlock(&e->mu);
    return none;
}

void exports_free(exports_t *e)
{
    if (!e)
        return;
    pthread_cond_destroy(&e->done);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

/* A slot among EXPORTS_MAX; false when all are taken. */
static bool take_slot(exports_t *e)
{
    pthread_mutex_lock(&e->mu);
    bool ok = e->running < EXPORTS_MAX;
    if (ok)
        e->running++;
    pthread_mutex_unlock(&e->mu);
    return ok;
}

typedef enum { EXPORT_NOT_STARTED, EXPORT_WHOLE, EXPORT_CUT } export_end_t;

static void give_slot(exports_t *e, export_end_t end)
{
    pthread_mutex_lock(&e->mu);
    e->running--;
    if (end == EXPORT_WHOLE)
        e->finished++;
    else if (end == EXPORT_CUT)
        e->cut++;
    pthread_cond_broadcast(&e->done);
    pthread_mutex_unlock(&e->mu);
}

typedef struct {
    exports_t *exports;
    PGconn *conn;          /* owned */
    export_cursor_t *cur;  /* owned, on conn */
    http_stream_t *stream; /* the producer's hold */
    buf_t first;           /* rows fetched before the answer was sent */
    char request_id[22];
} producer_t;

static void *produce(void *arg)
{
    producer_t *p = arg;
    bool ok = http_stream_write(p->stream, p->first.data, p->first.len);
    buf_free(&p->first);
    buf_t rows;
    buf_init(&rows);
    char err[256] = "";
    int n = 1;
    while (ok && n > 0) {
        buf_reset(&rows);
        n = export_next(p->cur, &rows, err, sizeof err);
        if (n < 0) {
            log_error(p->request_id, "export failed after its first rows: %s", err);
            ok = false;
        } else if (rows.len > 0) {
            ok = http_stream_write(p->stream, rows.data, rows.len); /* false: the client left */
        }
    }
    buf_free(&rows);
    http_stream_end(p->stream, ok && n == 0);
    export_close(p->cur);
    PQfinish(p->conn);
    give_slot(p->exports, ok && n == 0 ? EXPORT_WHOLE : EXPORT_CUT);
    free(p);
    return NULL;
}

/* A successful answer's type and file name (an error stays JSON, with no file name). */
static void name_answer(http_req_t *req, export_format_t fmt, const char *board, const char *day)
{
    req->content_type_out = export_format_type(fmt);
    /* Board ids are [A-Za-z0-9_.:@-] (API.md): nothing to escape in the quoted file name. */
    snprintf(req->disposition, sizeof req->disposition, "attachment; filename=\"%s-%s.%s\"", board, day,
             fmt == EXPORT_CSV ? "csv" : "ndjson");
}

int api_export(app_t *app, const route_t *rt, http_req_t *req)
{
    bool bad = false;
    const char *f = http_param(req, "format", &bad);
    export_format_t fmt = EXPORT_CSV;
    if (bad || (f && !export_format_parse(f, &fmt)))
        return http_bad_param(req, "format", bad ? "format must be given once" : "format must be csv or ndjson");
    rank_style_t style;
    int rc = api_param_window_syntax(req);
    if (rc || (rc = api_param_rank_style(req, &style)))
        return rc;
    board_t b;
    if ((rc = api_load_board(app, rt, req, &b)))
        return rc;
    int64_t day = 0;
    if ((rc = api_param_window(app, req, &b, &day))) {
        board_clear(&b);
        return rc;
    }
    char d[11];
    window_format_day(day, d);
    if (req->head) { /* the headers of an export, without opening one */
        name_answer(req, fmt, b.id, d);
        board_clear(&b);
        return http_ok(req, 200);
    }
    if (!take_slot(app->exports)) {
        board_clear(&b);
        req->retry_after = 5;
        return http_error(req, 503, "unavailable", NULL, "%d exports are running on this instance; try again later",
                          EXPORTS_MAX);
    }
    char err[256];
    PGconn *c = pg_connect(app->cfg->pg_primary, app->cfg->pg_statement_timeout_ms, app->cfg->pg_connect_timeout_s,
                           err, sizeof err);
    bool archived = false;
    /* a client that takes longer than http.send_timeout_s to read one fetch's rows ends the
     * export: the snapshot would hold back vacuum for as long as it dawdles */
    int64_t idle_ms = (int64_t)app->cfg->send_timeout_s * 1000;
    export_cursor_t *cur = c ? export_open(c, b.gen, day, fmt, style, idle_ms, &archived, err, sizeof err) : NULL;
    buf_t first;
    buf_init(&first);
    if (cur && export_next(cur, &first, err, sizeof err) < 0) {
        export_close(cur);
        cur = NULL;
    }
    if (!cur) {
        log_error(req->request_id, "export of board %s cannot start: %s", b.id, err);
        buf_free(&first);
        bool down = !c || PQstatus(c) != CONNECTION_OK; /* else the statement failed: not a retry's matter */
        if (c)
            PQfinish(c);
        give_slot(app->exports, EXPORT_NOT_STARTED);
        board_clear(&b);
        return down ? http_unavailable(req, "the database") : http_internal(req);
    }
    producer_t *p = xcalloc(1, sizeof *p);
    p->exports = app->exports;
    p->conn = c;
    p->cur = cur;
    p->stream = http_stream_new(EXPORT_BUFFER);
    p->first = first;
    memcpy(p->request_id, req->request_id, sizeof p->request_id);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    http_stream_t *stream = p->stream; /* p is the producer's from here on */
    bool started = pthread_create(&t, &attr, produce, p) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        log_error(req->request_id, "export of board %s: cannot start its thread", b.id);
        http_stream_release(p->stream); /* the server's hold */
        http_stream_end(p->stream, false);
        buf_free(&p->first);
        export_close(cur);
        PQfinish(c);
        free(p);
        give_slot(app->exports, EXPORT_NOT_STARTED);
        board_clear(&b);
        return http_unavailable(req, "an export thread");
    }
    req->stream = stream; /* the server's hold: libmicrohttpd's once the answer is queued */
    name_answer(req, fmt, b.id, d);
    log_info(req->request_id, "export of board %s window %s (%s) started", b.id, d, archived ? "archive" : "standings");
    board_clear(&b);
    return http_ok(req, 200);
}
