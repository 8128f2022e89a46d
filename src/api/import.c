/*
 * api/import.c — POST /v1/leaderboards/{board}/import (API.md, "Import and export").
 *
 * The body is streamed: at the request's headers the server hands it to api_import_start(),
 * which checks what it can without I/O (the board's id, mode, Content-Type, the key) and starts
 * a thread of the import's own. That thread reads the body from the connection's pipe as it
 * arrives (http/body_pipe.h: the connection is suspended while the pipe is full), feeds the rows
 * to COPY (worker/importer.h), merges them once the body ended (store/import.h), marks the
 * window's Redis copy cold and has the rebuilder load it again in the background (reads go to
 * PostgreSQL meanwhile, exact at once), and drops this instance's cached answers; other
 * instances hear the notice.
 * When the body has ended the handler waits for the thread, suspended (http_pending_t). At most
 * IMPORTS_MAX imports run at once per instance.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "cache/l1.h"
#include "cache/rank_tier.h"
#include "core/ids.h"
#include "core/window.h"
#include "http/body_pipe.h"
#include "obs/log.h"
#include "store/import.h"
#include "store/pg_pool.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/clock.h"
#include "worker/analyzer.h"
#include "worker/importer.h"

#define IMPORTS_MAX 1           /* imports running at once on one instance */
#define READ_CHUNK (64 * 1024)  /* bytes taken from the pipe at once */

struct imports {
    pthread_mutex_t mu;
    pthread_cond_t done;
    int running;
    unsigned long long committed, failed;
};

imports_t *imports_new(void)
{
    imports_t *m = xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->done, NULL);
    return m;
}

void imports_free(imports_t *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->done);
    free(m);
}

bool imports_wait(imports_t *m, int timeout_ms)
{
    struct timespec until = clock_deadline_ms(timeout_ms);
    pthread_mutex_lock(&m->mu);
    while (m->running > 0 && pthread_cond_timedwait(&m->done, &m->mu, &until) == 0) {
    }
    bool none = m->running == 0;
    pthread_mutex_unlock(&m->mu);
    return none;
}

void imports_counts(imports_t *m, int *running, unsigned long long *committed, unsigned long long *failed)
{
    pthread_mutex_lock(&m->mu);
    *running = m->running;
    *committed = m->committed;
    *failed = m->failed;
    pthread_mutex_unlock(&m->mu);
}

/* One import: the thread's work and, once done, its answer. Held by the thread and by the
 * request (as its pending answer); freed by the last to let go. */
typedef struct {
    http_pending_t base;
    pthread_mutex_t mu;
    int holds;
    bool done;
    void (*wake)(void *arg);
    void *wake_arg;
    app_t *app;
    http_body_pipe_t *pipe; /* the thread's hold */
    char board[BOARD_ID_MAX + 1];
    import_mode_t mode;
    import_format_t format;
    char *scoped_key;       /* owned: "<presenting key's tag> <key>", or NULL */
    /* the answer */
    int status;
    char *answer;           /* owned JSON of a 200 */
    import_error_t err;
} import_job_t;

static void job_release(import_job_t *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->holds == 0;
    pthread_mutex_unlock(&j->mu);
    if (!last)
        return;
    http_body_pipe_release(j->pipe);
    pthread_mutex_destroy(&j->mu);
    free(j->scoped_key);
    free(j->answer);
    free(j);
}

static void pending_start(http_pending_t *p, void (*wake)(void *), void *arg)
{
    import_job_t *j = (import_job_t *)p;
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    if (!done) {
        j->wake = wake;
        j->wake_arg = arg;
    }
    pthread_mutex_unlock(&j->mu);
    if (done)
        wake(arg);
}

static int pending_finish(http_pending_t *p, http_req_t *req)
{
    import_job_t *j = (import_job_t *)p;
    if (j->status == 200) {
        buf_reset(&req->out);
        buf_puts(&req->out, j->answer);
        return http_ok(req, 200);
    }
    if (j->status == 503)
        req->retry_after = 1;
    http_error(req, j->status, j->err.code ? j->err.code : "internal", j->err.field, "%s", j->err.message);
    if (j->err.line > 0) { /* API.md: the error object names the row's line */
        req->out.len -= 2; /* "}}" */
        buf_printf(&req->out, ",\"line\":%ld}}", j->err.line);
    }
    return req->status;
}

static void pending_release(http_pending_t *p)
{
    job_release((import_job_t *)p);
}

/* The thread is done: the answer is set; wake the connection if it waits. */
static void complete(import_job_t *j)
{
    pthread_mutex_lock(&j->mu);
    j->done = true;
    void (*wake)(void *) = j->wake;
    void *arg = j->wake_arg;
    j->wake = NULL;
    pthread_mutex_unlock(&j->mu);
    if (wake)
        wake(arg);
}

/* What the answer names besides the counts. */
typedef struct {
    int64_t started_ms; /* monotonic */
    const char *board;
    int64_t day;
} answer_ctx_t;

static char *render_answer(const import_counts_t *counts, void *arg)
{
    const answer_ctx_t *a = arg;
    buf_t o;
    buf_init(&o);
    importer_render(&o, a->board, a->day, counts, clock_mono_ms() - a->started_ms);
    size_t len;
    return buf_steal(&o, &len);
}

/* Read the whole body into the import; false with err set (the body ended early, or a row). */
static bool read_body(import_job_t *j, importer_t *x)
{
    char *chunk = xmalloc(READ_CHUNK);
    bool ok = true;
    for (;;) {
        ssize_t n = http_body_pipe_read(j->pipe, chunk, READ_CHUNK);
        if (n < 0) {
            j->err = (import_error_t){.status = 400, .code = "invalid_argument"};
            snprintf(j->err.message, sizeof j->err.message, "the body ended before its end");
            ok = false;
            break;
        }
        if (n == 0) {
            ok = importer_end(x, &j->err);
            break;
        }
        if (!importer_feed(x, chunk, (size_t)n, &j->err)) {
            ok = false;
            break;
        }
    }
    free(chunk);
    if (!ok)
        http_body_pipe_give_up(j->pipe); /* the rest of the body is read and dropped */
    return ok;
}

/* The import, on its own thread: the answer into j. */
static void run(import_job_t *j)
{
    app_t *app = j->app;
    const rankd_config_t *cfg = app->cfg;
    int64_t started = clock_mono_ms();
    char err[256];
    PGconn *c = pg_connect(cfg->pg_primary, cfg->pg_statement_timeout_ms, cfg->pg_connect_timeout_s, err, sizeof err);
    if (!c) {
        log_warn(NULL, "import into %s: cannot connect to the primary: %s", j->board, err);
        j->err = (import_error_t){.status = 503, .code = "unavailable"};
        snprintf(j->err.message, sizeof j->err.message, "the primary database is unavailable");
        http_body_pipe_give_up(j->pipe);
        return;
    }
    board_t b;
    q_status_t qs = q_board_get(c, j->board, &b);
    if (qs != Q_OK) {
        j->err = (import_error_t){.status = qs == Q_NOT_FOUND ? 404 : 503,
                                  .code = qs == Q_NOT_FOUND ? "not_found" : "unavailable", .field = NULL};
        snprintf(j->err.message, sizeof j->err.message, qs == Q_NOT_FOUND ? "board not found"
                                                                          : "the primary database is unavailable");
        http_body_pipe_give_up(j->pipe);
        PQfinish(c);
        return;
    }
    if (b.tournament.on || b.league.on) {
        /* Rows would skip the slot, the joins, the attempts and the cap, or a league's cohorts
         * (docs/api.md). */
        j->err = (import_error_t){.status = 409, .code = "conflict", .field = NULL};
        snprintf(j->err.message, sizeof j->err.message, "a %s board takes submissions only: an import would skip its rules",
                 b.tournament.on ? "tournament" : "league");
        board_clear(&b);
        http_body_pipe_give_up(j->pipe);
        PQfinish(c);
        return;
    }
    int64_t now = clock_wall_ms();
    int64_t day = window_start_day(board_window_rule(&b), now);
    import_rules_t rules;
    importer_rules(&rules, &b, day, now, j->format);
    /* A client that sends nothing for http.send_timeout_s ends the import's transaction. */
    store_import_t *im = store_import_begin(c, &b, day, j->mode, now, (int64_t)cfg->send_timeout_s * 1000, &j->err);
    importer_t *x = im ? importer_new(im, &rules) : NULL;
    import_result_t result = IMPORT_FAILED;
    import_counts_t counts;
    char *answer = NULL;
    if (!x)
        http_body_pipe_give_up(j->pipe);
    if (x && read_body(j, x)) {
        char digest[65], request[128];
        importer_digest(x, digest);
        snprintf(request, sizeof request, "import mode=%s format=%s sha256=%s",
                 j->mode == IMPORT_REPLACE ? "replace" : "submit", j->format == IMPORT_NDJSON ? "ndjson" : "csv",
                 digest);
        import_key_t key = {j->scoped_key, request};
        answer_ctx_t actx = {started, b.id, day};
        result = store_import_finish(im, j->scoped_key ? &key : NULL, app->cfg->rank_bucket_rows, render_answer,
                                     &actx, &counts, &answer, &j->err);
        if (result == IMPORT_DONE && !answer)
            answer = render_answer(&counts, &actx);
    }
    importer_free(x);
    store_import_end(im);
    if (result == IMPORT_DONE) {
        /* Replicas answer the board's reads once they replayed the commit; Redis holds the
         * import (or the window is cold); then this instance's cached answers go. */
        int64_t committed = clock_mono_ms();
        pg_router_note_commit(app->router, c, b.gen);
        redis_conn_t *rc = app->redis ? redis_acquire(app->redis) : NULL;
        bool told = importer_publish(c, rc, &b, day);
        if (rc)
            redis_release(app->redis, rc, !told);
        if (app->rebuilder) /* loaded again in the background, not waited for */
            rebuilder_request(app->rebuilder, &b, day);
        l1_invalidate(app->l1, b.gen, day, NULL, NULL, true);
        rank_tier_committed(app->tier, b.gen, day, counts.seq, NULL, 0); /* answered after its reload */
        analyzer_note(app->analyzer, (uint64_t)(counts.created + counts.updated));
        log_info(NULL, "import into %s: %ld rows in %lld ms (%lld after the commit)", b.id, counts.rows,
                 (long long)(clock_mono_ms() - started), (long long)(clock_mono_ms() - committed));
    }
    if (result != IMPORT_FAILED) {
        j->status = 200;
        j->answer = answer;
    } else {
        free(answer);
        j->status = j->err.status ? j->err.status : 500;
    }
    board_clear(&b);
    PQfinish(c);
}

static void *import_main(void *arg)
{
    import_job_t *j = arg;
    run(j);
    if (j->status == 0) /* it stopped before the import began */
        j->status = j->err.status ? j->err.status : 500;
    imports_t *m = j->app->imports;
    pthread_mutex_lock(&m->mu);
    m->running--;
    if (j->status == 200)
        m->committed++;
    else
        m->failed++;
    pthread_cond_broadcast(&m->done);
    pthread_mutex_unlock(&m->mu);
    complete(j);
    job_release(j);
    return NULL;
}

/* "text/csv" or "application/x-ndjson", parameters (charset) allowed. */
static bool media_type(const char *ct, import_format_t *out)
{
    if (!ct)
        return false;
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    if (n == 8 && strncasecmp(ct, "text/csv", 8) == 0)
        *out = IMPORT_CSV;
    else if (n == 20 && strncasecmp(ct, "application/x-ndjson", 20) == 0)
        *out = IMPORT_NDJSON;
    else
        return false;
    return true;
}

int api_import_start(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->board_bad || !id_board_valid(rt->board, rt->board_len))
        return http_not_found(req, "board", "board");
    bool bad = false;
    const char *mode_name = http_param(req, "mode", &bad);
    import_mode_t mode = IMPORT_SUBMIT;
    if (bad || (mode_name && !import_mode_parse(mode_name, &mode)))
        return http_bad_param(req, "mode", "mode is submit or replace");
    import_format_t format;
    if (!media_type(req->content_type, &format))
        return http_error(req, 415, "unsupported_media_type", NULL,
                          "an import's body is text/csv or application/x-ndjson");
    if (req->idem_key && !id_idempotency_key_valid(req->idem_key, strlen(req->idem_key)))
        return http_error(req, 400, "invalid_argument", "Idempotency-Key", ID_IDEMPOTENCY_KEY_RULE);
    imports_t *m = app->imports;
    if (!m)
        return http_error(req, 503, "unavailable", NULL, "imports are not served here");
    pthread_mutex_lock(&m->mu);
    bool slot = m->running < IMPORTS_MAX;
    if (slot)
        m->running++;
    pthread_mutex_unlock(&m->mu);
    if (!slot) {
        req->retry_after = 5;
        return http_error(req, 503, "unavailable", NULL, "%d import is running on this instance; try again later",
                          IMPORTS_MAX);
    }
    import_job_t *j = xcalloc(1, sizeof *j);
    j->base = (http_pending_t){.start = pending_start, .finish = pending_finish, .release = pending_release};
    pthread_mutex_init(&j->mu, NULL);
    j->holds = 2; /* the thread's and the request's */
    j->app = app;
    memcpy(j->board, rt->board, rt->board_len);
    j->mode = mode;
    j->format = format;
    if (req->idem_key) {
        size_t n = strlen(req->client) + 1 + strlen(req->idem_key) + 1;
        j->scoped_key = xmalloc(n);
        snprintf(j->scoped_key, n, "%s %s", req->client, req->idem_key);
    }
    http_body_pipe_hold(req->body_pipe);
    j->pipe = req->body_pipe;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, import_main, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_lock(&m->mu);
        m->running--;
        pthread_mutex_unlock(&m->mu);
        j->holds = 1;
        job_release(j);
        return http_error(req, 503, "unavailable", NULL, "the import could not start");
    }
    req->body_consumer = &j->base;
    return 0;
}

int api_import(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)app;
    (void)rt;
    if (!req->body_consumer) /* not started at the headers: only a POST is routed here */
        return http_error(req, 405, "method_not_allowed", NULL, "an import is a POST");
    req->pending = req->body_consumer;
    req->body_consumer = NULL;
    return 0;
}
