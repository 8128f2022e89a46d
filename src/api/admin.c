/* api/admin.c — operator endpoints: view refresh, Redis rebuild, metrics. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/app.h"
#include "cache/l1.h"
#include "core/ids.h"
#include "core/window.h"
#include "obs/metrics.h"
#include "store/queries.h"
#include "store/redis_pipe.h"
#include "store/redis_board.h"
#include "store/views.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int api_admin_refresh(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c)
        return http_unavailable(req, "the database");
    view_refresh_t done[VIEWS_MAX];
    size_t n = 0;
    views_status_t st = views_refresh(c, NULL, 0, done, &n);
    pg_pool_release(app->primary, c, st == VIEWS_FAILED);
    if (st == VIEWS_FAILED)
        return http_internal(req);
    if (st == VIEWS_BUSY) {
        buf_puts(&req->out, "{\"skipped\":\"another refresh is running\"}");
        return http_ok(req, 200);
    }
    buf_puts(&req->out, "{\"refreshed\":[");
    for (size_t i = 0; i < n; i++)
        buf_printf(&req->out, "%s{\"view\":\"%s\",\"rows\":%" PRId64 ",\"ms\":%" PRId64 "}", i ? "," : "",
                   done[i].view, done[i].rows, done[i].ms);
    buf_puts(&req->out, "]}");
    return http_ok(req, 200);
}

int api_admin_rebuild(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    bool bad = false;
    const char *only = http_param(req, "board", &bad);
    if (bad || (only && !id_board_valid(only, strlen(only))))
        return http_error(req, 400, "invalid_argument", "board", "invalid board id");
    if (!app->redis)
        return http_unavailable(req, "redis");
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c)
        return http_unavailable(req, "the database");
    board_t *boards = NULL;
    size_t n = 0;
    q_status_t st;
    if (only) {
        boards = calloc(1, sizeof *boards);
        st = q_board_get(c, only, &boards[0]);
        n = st == Q_OK ? 1 : 0;
    } else {
        st = q_board_list(c, NULL, 1000000, &boards, &n);
    }
    int rc = 0;
    if (st == Q_NOT_FOUND)
        rc = http_not_found(req, "board", "board");
    else if (st != Q_OK)
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    redisContext *r = rc ? NULL : redis_acquire(app->redis);
    if (!rc && !r)
        rc = http_unavailable(req, "redis");
    int64_t t0 = mono_ms(), players = 0;
    bool pg_failed = false;
    for (size_t i = 0; !rc && i < n; i++) {
        rb_rebuild_t done;
        int64_t day = window_start_day(boards[i].reset, req->received_ms);
        rb_status_t rst = rb_rebuild_when_free(r, c, &boards[i], day, 30000, &done);
        pg_failed = rst == RB_OK && done.pg_failed;
        if (rst != RB_OK || pg_failed) {
            redis_release(app->redis, r, !pg_failed);
            r = NULL;
            rc = http_unavailable(req, pg_failed ? "the database" : "redis");
        } else if (done.busy || done.lost) {
            req->retry_after = 1;
            rc = http_error(req, 503, "unavailable", NULL, "%s",
                            done.busy ? "another rebuild of the board has run for over 30 s; try again when it is done"
                                      : "redis was flushed or restarted during the rebuild; try again");
        }
        players += done.players;
    }
    redis_discard(app->redis, r); /* it carries the rebuild's long timeout */
    pg_pool_release(app->primary, c, pg_failed || st == Q_UNAVAILABLE);
    if (!rc) {
        buf_printf(&req->out, "{\"boards\":%zu,\"players\":%" PRId64 ",\"ms\":%" PRId64 "}", n, players,
                   mono_ms() - t0);
        rc = http_ok(req, 200);
    }
    for (size_t i = 0; i < n; i++)
        board_clear(&boards[i]);
    free(boards);
    return rc;
}

static const char *route_label(int id)
{
    return api_route_name((route_id_t)id);
}

int api_metrics(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    metrics_render(app->metrics, &req->out, route_label, R_COUNT);
    buf_printf(&req->out, "# HELP rankd_redis_up Whether Redis answers (1), is down (0), or is not configured (-1).\n"
                          "# TYPE rankd_redis_up gauge\nrankd_redis_up %d\n",
               !app->redis ? -1 : strcmp(redis_state(app->redis), "ok") == 0 ? 1 : 0);
    l1_stats_t l1;
    l1_stats(app->l1, &l1);
    buf_printf(&req->out,
               "# HELP rankd_l1_hits_total Reads answered from the in-process response cache.\n"
               "# TYPE rankd_l1_hits_total counter\nrankd_l1_hits_total %llu\n"
               "# HELP rankd_l1_misses_total Cacheable reads that had to be computed.\n"
               "# TYPE rankd_l1_misses_total counter\nrankd_l1_misses_total %llu\n"
               "# HELP rankd_l1_invalidations_total Cached answers dropped because a write changed them.\n"
               "# TYPE rankd_l1_invalidations_total counter\nrankd_l1_invalidations_total %llu\n"
               "# HELP rankd_l1_evictions_total Cached answers dropped for room.\n"
               "# TYPE rankd_l1_evictions_total counter\nrankd_l1_evictions_total %llu\n"
               "# HELP rankd_l1_bytes Bytes held by the response cache.\n"
               "# TYPE rankd_l1_bytes gauge\nrankd_l1_bytes %zu\n"
               "# HELP rankd_l1_entries Answers held by the response cache.\n"
               "# TYPE rankd_l1_entries gauge\nrankd_l1_entries %zu\n",
               (unsigned long long)l1.hits, (unsigned long long)l1.misses, (unsigned long long)l1.invalidations,
               (unsigned long long)l1.evictions, l1.bytes, l1.entries);
    uint64_t batches, commands;
    redis_pipe_stats(app->pipe, &batches, &commands);
    buf_printf(&req->out,
               "# HELP rankd_redis_pipe_batches_total Writes of pipelined Redis reads (replies read in order).\n"
               "# TYPE rankd_redis_pipe_batches_total counter\nrankd_redis_pipe_batches_total %llu\n"
               "# HELP rankd_redis_pipe_commands_total Redis reads sent through the pipeline.\n"
               "# TYPE rankd_redis_pipe_commands_total counter\nrankd_redis_pipe_commands_total %llu\n",
               (unsigned long long)batches, (unsigned long long)commands);
    buf_puts(&req->out, "# HELP rankd_build_info rankd version.\n# TYPE rankd_build_info gauge\n"
                        "rankd_build_info{version=\"" RANKD_VERSION "\"} 1\n");
    req->content_type_out = "text/plain; version=0.0.4; charset=utf-8";
    return http_ok(req, 200);
}
