/* api/admin.c — operator endpoints: view refresh, Redis rebuild, metrics. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/app.h"
#include "api/body.h"
#include "api/live.h"
#include "cache/l1.h"
#include "cache/rank_tier.h"
#include "http/server.h"
#include "core/ids.h"
#include "core/window.h"
#include "obs/metrics.h"
#include "worker/jwks_fetcher.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "store/redis_pipe.h"
#include "store/redis_board.h"
#include "store/views.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "worker/events.h"
#include "worker/mark_watch.h"
#include "worker/offload.h"
#include "worker/prober.h"
#include "worker/refresher.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Operator jobs take seconds (a view refresh) to minutes (rebuilding a big board, after
 * waiting for a rebuild already running). They run on an offload thread with the connection
 * suspended: on an event-loop thread they would stall its other connections, and the new ones
 * the acceptor keeps handing to it. One thread for them all: jobs run one after another, and
 * the read threads stay free.
 */
typedef struct {
    http_pending_t base;
    offload_job_t job;
    app_t *app;
    admin_work_t work;
    char only[BOARD_ID_MAX + 1]; /* the board asked for, "" for all */
    int64_t now_ms;
    http_req_t out;              /* the answer, written off the event loop */
    void (*wake)(void *arg);
    void *wake_arg;
} admin_op_t;

static void admin_job(offload_job_t *job)
{
    admin_op_t *op = (admin_op_t *)(void *)((char *)job - offsetof(admin_op_t, job));
    op->work(op->app, op->only[0] ? op->only : NULL, op->now_ms, &op->out);
    op->wake(op->wake_arg); /* last: the request may be finished and freed at once */
}

static void admin_start(http_pending_t *p, void (*wake)(void *), void *wake_arg)
{
    admin_op_t *op = (admin_op_t *)p;
    op->wake = wake;
    op->wake_arg = wake_arg;
    op->job.run = admin_job;
    offload_submit(op->app->admin, &op->job);
}

/* Back on the event loop: hand the answer over. */
static int admin_finish(http_pending_t *p, http_req_t *req)
{
    admin_op_t *op = (admin_op_t *)p;
    buf_t body = req->out;
    req->out = op->out.out;
    op->out.out = body;
    req->status = op->out.status;
    req->retry_after = op->out.retry_after;
    return req->status;
}

static void admin_release(http_pending_t *p)
{
    admin_op_t *op = (admin_op_t *)p;
    http_req_clear(&op->out);
    free(op);
}

/* Run `work` off the event loop (here only when its thread could not start). */
int api_run_admin(app_t *app, http_req_t *req, admin_work_t work, const char *only)
{
    if (!app->admin)
        return work(app, only, req->received_ms, req);
    admin_op_t *op = xcalloc(1, sizeof *op);
    op->base.start = admin_start;
    op->base.finish = admin_finish;
    op->base.release = admin_release;
    op->app = app;
    op->work = work;
    if (only)
        snprintf(op->only, sizeof op->only, "%s", only); /* validated: at most BOARD_ID_MAX */
    op->now_ms = req->received_ms;
    http_req_init(&op->out);
    req->pending = &op->base;
    return 0;
}

static int refresh_views(app_t *app, const char *only, int64_t now_ms, http_req_t *req)
{
    (void)only;
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c)
        return http_unavailable(req, "the database");
    view_refresh_t done[VIEWS_MAX];
    size_t n = 0;
    const views_refresh_opts_t o = {.timeout_s = app->cfg->refresh_timeout_s, .now_ms = now_ms,
                                    .grace_ms = window_archive_grace_ms(app->cfg->pg_statement_timeout_ms)};
    views_status_t st = views_refresh(c, &o, done, &n);
    if (st == VIEWS_DONE) /* this instance's next statistics read shows this refresh (others: its notice) */
        pg_router_note_commit(app->router, c, PG_KEY_ALL);
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

int api_admin_refresh(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    int rc = body_none(req);
    if (rc)
        return rc;
    return api_run_admin(app, req, refresh_views, NULL);
}

int api_admin_boards(PGconn *c, const char *only, http_req_t *req, board_t **boards, size_t *n, q_status_t *st)
{
    *boards = NULL;
    *n = 0;
    if (only) {
        *boards = xcalloc(1, sizeof **boards);
        *st = q_board_get(c, only, &(*boards)[0]);
        *n = *st == Q_OK ? 1 : 0;
    } else {
        *st = q_board_list(c, NULL, 1000000, boards, n);
    }
    if (*st == Q_NOT_FOUND)
        return http_not_found(req, "board", "board");
    if (*st != Q_OK)
        return *st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    return 0;
}

static int rebuild_boards(app_t *app, const char *only, int64_t now_ms, http_req_t *req)
{
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c)
        return http_unavailable(req, "the database");
    board_t *boards;
    size_t n;
    q_status_t st;
    int rc = api_admin_boards(c, only, req, &boards, &n, &st);
    redis_conn_t *r = rc ? NULL : redis_acquire(app->redis);
    if (!rc && !r)
        rc = http_unavailable(req, "redis");
    int64_t t0 = mono_ms(), players = 0;
    bool pg_failed = false;
    for (size_t i = 0; !rc && i < n; i++) {
        int64_t days[2];
        size_t n_days = window_hot_days(board_window_rule(&boards[i]), boards[i].created_ms, now_ms, days);
        for (size_t k = 0; !rc && k < n_days; k++) {
            rb_rebuild_t done;
            rb_status_t rst = rb_rebuild_when_free(r, c, &boards[i], days[k], 30000, &done);
            pg_failed = rst == RB_OK && done.pg_failed;
            if (rst != RB_OK || pg_failed) {
                /* Never back into the pool: it carries the rebuild's 30 s timeout (redis_board.h). */
                if (pg_failed)
                    redis_discard(app->redis, r);
                else
                    redis_release(app->redis, r, true);
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
    }
    redis_discard(app->redis, r); /* it carries the rebuild's long timeout */
    pg_pool_release(app->primary, c, pg_failed || st == Q_UNAVAILABLE);
    if (!rc) {
        buf_printf(&req->out, "{\"boards\":%zu,\"players\":%" PRId64 ",\"ms\":%" PRId64 "}", n, players,
                   mono_ms() - t0);
        rc = http_ok(req, 200);
    }
    api_admin_boards_free(boards, n);
    return rc;
}

int api_admin_board_param(http_req_t *req, const char **only)
{
    int rc = body_none(req); /* a content type (415) before values (400) */
    if (rc)
        return rc;
    bool bad = false;
    *only = http_param(req, "board", &bad);
    if (bad || (*only && !id_board_valid(*only, strlen(*only))))
        return http_error(req, 400, "invalid_argument", "board", ID_BOARD_RULE);
    return 0;
}

void api_admin_boards_free(board_t *boards, size_t n)
{
    for (size_t i = 0; i < n; i++)
        board_clear(&boards[i]);
    free(boards);
}

int api_admin_rebuild(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    const char *only;
    int rc = api_admin_board_param(req, &only);
    if (rc)
        return rc;
    if (!app->redis)
        return http_unavailable(req, "redis");
    return api_run_admin(app, req, rebuild_boards, only);
}

static const char *route_label(int id)
{
    return api_route_name((route_id_t)id);
}

/* The views' ages as the prober last read them, aged since (nothing before any node answered). */
static void render_view_ages(const probe_state_t *probed, buf_t *o)
{
    if (!probed->views_known)
        return;
    double since = (double)(clock_mono_ms() - probed->gathered_ms) / 1000.0;
    buf_puts(o, "# HELP rankd_view_age_seconds Time since each materialized view was last refreshed.\n"
                "# TYPE rankd_view_age_seconds gauge\n");
    for (size_t i = 0; i < probed->n_views; i++)
        buf_printf(o, "rankd_view_age_seconds{view=\"%s\"} %.3f\n", probed->views[i].view,
                   probed->views[i].age_s + since);
}

/* Each upkeep job's runs by outcome, last success and last duration; the log's months ahead. */
static void render_upkeep_jobs(buf_t *o, const refresher_stats_t *up)
{
    buf_puts(o, "# HELP rankd_upkeep_runs_total Upkeep jobs this instance ran as the leader, by step (the job) and outcome.\n"
                "# TYPE rankd_upkeep_runs_total counter\n");
    for (int j = 0; j < UPKEEP_JOBS; j++) {
        const char *name = refresher_job_name((upkeep_job_t)j);
        buf_printf(o, "rankd_upkeep_runs_total{step=\"%s\",outcome=\"ok\"} %llu\n"
                      "rankd_upkeep_runs_total{step=\"%s\",outcome=\"failed\"} %llu\n"
                      "rankd_upkeep_runs_total{step=\"%s\",outcome=\"refused\"} %llu\n",
                   name, up->jobs[j].ok, name, up->jobs[j].failed, name, up->jobs[j].refused);
    }
    buf_puts(o, "# HELP rankd_upkeep_last_success_timestamp_seconds When each upkeep job last succeeded on this instance (0: never).\n"
                "# TYPE rankd_upkeep_last_success_timestamp_seconds gauge\n");
    for (int j = 0; j < UPKEEP_JOBS; j++)
        buf_printf(o, "rankd_upkeep_last_success_timestamp_seconds{step=\"%s\"} %.3f\n", refresher_job_name((upkeep_job_t)j),
                   (double)up->jobs[j].last_success_ms / 1000.0);
    buf_puts(o, "# HELP rankd_upkeep_last_duration_seconds How long each upkeep job's last run took.\n"
                "# TYPE rankd_upkeep_last_duration_seconds gauge\n");
    for (int j = 0; j < UPKEEP_JOBS; j++)
        buf_printf(o, "rankd_upkeep_last_duration_seconds{step=\"%s\"} %.3f\n", refresher_job_name((upkeep_job_t)j),
                   (double)up->jobs[j].last_ms / 1000.0);
    buf_printf(o, "# HELP rankd_clock_skew_ms This host's clock less PostgreSQL's, as the upkeep leader last measured it before archiving or retention (which refuse past retention.max_clock_skew_ms).\n"
                  "# TYPE rankd_clock_skew_ms gauge\nrankd_clock_skew_ms %lld\n",
               (long long)up->clock_skew_ms);
    if (up->log_months_ahead > -2) /* only the leader has a count */
        buf_printf(o, "# HELP rankd_log_partitions_ahead_months Months of submission log partitions made after the current one (-1: the current month has none); only the upkeep leader exports it.\n"
                      "# TYPE rankd_log_partitions_ahead_months gauge\nrankd_log_partitions_ahead_months %d\n",
                   up->log_months_ahead);
    if (up->purge_rows_left >= 0) /* only the leader has a count */
        buf_printf(o, "# HELP rankd_purge_rows_left Rows of deleted boards still to remove, by table (standings; submissions: their log), from their counters at the deletion; only the upkeep leader exports it.\n"
                      "# TYPE rankd_purge_rows_left gauge\nrankd_purge_rows_left{table=\"standings\"} %lld\n"
                      "rankd_purge_rows_left{table=\"submissions\"} %lld\n",
                   (long long)up->purge_rows_left, (long long)up->purge_log_left);
}

int api_metrics(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    metrics_render(app->metrics, &req->out, route_label, R_COUNT);
    /* Redis and the views as gathered in the background (worker/prober.h): no I/O here. */
    probe_state_t probed;
    prober_state(app->prober, &probed);
    render_view_ages(&probed, &req->out);
    buf_printf(&req->out, "# HELP rankd_redis_up Whether Redis answers (1), is down (0), or is not configured (-1).\n"
                          "# TYPE rankd_redis_up gauge\nrankd_redis_up %d\n",
               !app->redis ? -1 : strcmp(probed.redis, "ok") == 0 ? 1 : 0);
    buf_printf(&req->out, "# HELP rankd_redis_connect_failures_total Attempts to connect to a Redis server that "
                          "failed (retried every second while it is down).\n"
                          "# TYPE rankd_redis_connect_failures_total counter\nrankd_redis_connect_failures_total %llu\n",
               redis_conn_failed_connects());
    http_server_counts_t http;
    http_server_counts(atomic_load(&app->http), &http);
    buf_printf(&req->out, "# HELP rankd_http_body_bytes Bytes buffered for request bodies being received (bounded per address by http.body_bytes_per_ip).\n"
                          "# TYPE rankd_http_body_bytes gauge\nrankd_http_body_bytes %zu\n"
                          "# HELP rankd_http_body_addresses Client addresses with a request body being received.\n"
                          "# TYPE rankd_http_body_addresses gauge\nrankd_http_body_addresses %zu\n",
               http.body_bytes, http.body_addresses);
    /* The delay queue holds them all: held-back refusals, and reads waiting to try again. */
    size_t others = (size_t)http.strong_waiting + (size_t)http.room_waiting;
    size_t refusals_waiting = http.parked > others ? http.parked - others : 0;
    buf_printf(&req->out, "# HELP rankd_http_refusals_delayed_total 429s held back http.refusal_delay_ms before they were sent (their client kept sending past its limit).\n"
                          "# TYPE rankd_http_refusals_delayed_total counter\nrankd_http_refusals_delayed_total %llu\n"
                          "# HELP rankd_http_refusals_waiting 429s being held back now, their connections suspended.\n"
                          "# TYPE rankd_http_refusals_waiting gauge\nrankd_http_refusals_waiting %zu\n"
                          "# HELP rankd_strong_reads_waiting consistency=strong reads past limits.strong_concurrency waiting for a slot, their connections suspended.\n"
                          "# TYPE rankd_strong_reads_waiting gauge\nrankd_strong_reads_waiting %d\n",
               http.refusals_delayed, refusals_waiting, http.strong_waiting);
    buf_printf(&req->out,
                   "# HELP rankd_http_first_requests_refused_total First requests of a connection that libmicrohttpd "
                   "could not take (malformed, too large, another HTTP version), answered with the JSON error before it.\n"
                   "# TYPE rankd_http_first_requests_refused_total counter\n"
                   "rankd_http_first_requests_refused_total{status=\"400\"} %llu\n"
                   "rankd_http_first_requests_refused_total{status=\"414\"} %llu\n"
                   "rankd_http_first_requests_refused_total{status=\"431\"} %llu\n"
                   "rankd_http_first_requests_refused_total{status=\"505\"} %llu\n"
                   "# HELP rankd_http_connections_awaiting_request Connections the acceptor holds: their first request "
                   "(or PROXY header) not arrived whole yet, or lingering after a refusal.\n"
                   "# TYPE rankd_http_connections_awaiting_request gauge\nrankd_http_connections_awaiting_request %d\n"
                   "# HELP rankd_http_connections_closed_awaiting_request_total Connections closed before their first "
                   "request: over http.max_connections_per_ip or http.max_connections waiting, none within "
                   "http.connection_timeout_s, or the client gone first.\n"
                   "# TYPE rankd_http_connections_closed_awaiting_request_total counter\n"
                   "rankd_http_connections_closed_awaiting_request_total %llu\n",
                   http.first_refused_400, http.first_refused_414, http.first_refused_431, http.first_refused_505,
                   http.awaiting_request, http.closed_awaiting);
    buf_printf(&req->out, "# HELP rankd_http_response_bytes_in_flight Bytes of large answers queued and not yet read by their clients (bounded by http.max_response_bytes_in_flight).\n"
                          "# TYPE rankd_http_response_bytes_in_flight gauge\nrankd_http_response_bytes_in_flight %zu\n"
                          "# HELP rankd_http_response_addresses Client addresses with large answers not yet read (each bounded by http.response_bytes_per_ip).\n"
                          "# TYPE rankd_http_response_addresses gauge\nrankd_http_response_addresses %zu\n"
                          "# HELP rankd_http_reads_waiting_for_room Reads from an address whose unread answers fill its share, waiting for room, their connections suspended.\n"
                          "# TYPE rankd_http_reads_waiting_for_room gauge\nrankd_http_reads_waiting_for_room %d\n"
                          "# HELP rankd_http_reads_refused_for_room_total Reads answered 503 because their answer did not fit either bound.\n"
                          "# TYPE rankd_http_reads_refused_for_room_total counter\nrankd_http_reads_refused_for_room_total %llu\n"
                          "# HELP rankd_http_send_timeouts_total Connections cut because their client had not read a large answer within http.send_timeout_s.\n"
                          "# TYPE rankd_http_send_timeouts_total counter\nrankd_http_send_timeouts_total %llu\n",
               http.response_bytes, http.response_addresses, http.room_waiting, http.room_refused,
               http.send_timeouts);
    buf_printf(&req->out, "# HELP rankd_http_requests_in_flight Requests received and not yet finished (this one included).\n"
                          "# TYPE rankd_http_requests_in_flight gauge\nrankd_http_requests_in_flight %d\n",
               http.in_flight);
    if (app->exports) {
        int running;
        unsigned long long finished, cut;
        exports_counts(app->exports, &running, &finished, &cut);
        buf_printf(&req->out,
                   "# HELP rankd_exports_running Board exports streaming now (at most 2 per instance).\n"
                   "# TYPE rankd_exports_running gauge\nrankd_exports_running %d\n"
                   "# HELP rankd_exports_total Board exports that started streaming, by how they ended (whole: every row "
                   "handed to the connection; cut: the client left or was too slow, the database failed, or the "
                   "server stopped).\n"
                   "# TYPE rankd_exports_total counter\nrankd_exports_total{outcome=\"whole\"} %llu\n"
                   "rankd_exports_total{outcome=\"cut\"} %llu\n",
                   running, finished, cut);
    }
    if (app->live_hub) {
        live_counts_t lc;
        live_hub_counts(app->live_hub, &lc);
        buf_printf(&req->out,
                   "# HELP rankd_live_listeners Live streams (GET .../live) open on this instance.\n"
                   "# TYPE rankd_live_listeners gauge\nrankd_live_listeners %zu\n"
                   "# HELP rankd_live_streams Distinct live answers (board or player, N, rank style) kept current.\n"
                   "# TYPE rankd_live_streams gauge\nrankd_live_streams %zu\n"
                   "# HELP rankd_live_computed_total Live answers computed (one serves every listener of a stream).\n"
                   "# TYPE rankd_live_computed_total counter\nrankd_live_computed_total %llu\n"
                   "# HELP rankd_live_events_total Events and heartbeats handed to live listeners.\n"
                   "# TYPE rankd_live_events_total counter\nrankd_live_events_total %llu\n"
                   "# HELP rankd_live_dropped_total Live listeners dropped for not reading their events.\n"
                   "# TYPE rankd_live_dropped_total counter\nrankd_live_dropped_total %llu\n"
                   "# HELP rankd_live_reads_charged_total Reads taken from clients' buckets for a minute of a live "
                   "stream.\n"
                   "# TYPE rankd_live_reads_charged_total counter\nrankd_live_reads_charged_total %llu\n"
                   "# HELP rankd_live_rate_limited_total Live streams ended because their client's reads ran out.\n"
                   "# TYPE rankd_live_rate_limited_total counter\nrankd_live_rate_limited_total %llu\n",
                   lc.listeners, lc.streams, lc.computed, lc.events, lc.dropped, lc.charged, lc.limited);
    }
    if (app->imports) {
        int running;
        unsigned long long committed, failed;
        imports_counts(app->imports, &running, &committed, &failed);
        buf_printf(&req->out,
                   "# HELP rankd_imports_running Board imports under way now (at most 1 per instance).\n"
                   "# TYPE rankd_imports_running gauge\nrankd_imports_running %d\n"
                   "# HELP rankd_imports_total Board imports, by how they ended (committed: every row is in, or the "
                   "idempotency key's answer was replayed; failed: nothing changed).\n"
                   "# TYPE rankd_imports_total counter\nrankd_imports_total{outcome=\"committed\"} %llu\n"
                   "rankd_imports_total{outcome=\"failed\"} %llu\n",
                   running, committed, failed);
    }
    if (app->tier) {
        rank_tier_stats_t ts;
        rank_tier_stats(app->tier, &ts);
        buf_printf(&req->out,
                   "# HELP rankd_rank_tier_windows Windows the in-process rank tier holds (ready: answering; loading: "
                   "asked for or being loaded; failed: its last load failed, asked for again by a read; too_big: "
                   "alone over the budget, not loaded again until it changes; busy: being written as counted).\n"
                   "# TYPE rankd_rank_tier_windows gauge\nrankd_rank_tier_windows{state=\"ready\"} %zu\n"
                   "rankd_rank_tier_windows{state=\"loading\"} %zu\n"
                   "rankd_rank_tier_windows{state=\"failed\"} %zu\n"
                   "rankd_rank_tier_windows{state=\"too_big\"} %zu\n"
                   "rankd_rank_tier_windows{state=\"busy\"} %zu\n"
                   "# HELP rankd_rank_tier_players Standings the rank tier's ready windows hold.\n"
                   "# TYPE rankd_rank_tier_players gauge\nrankd_rank_tier_players %lld\n"
                   "# HELP rankd_rank_tier_bytes Bytes the rank tier holds (its budget is cache.rank_tier).\n"
                   "# TYPE rankd_rank_tier_bytes gauge\nrankd_rank_tier_bytes %zu\n"
                   "# HELP rankd_rank_tier_budget_bytes The rank tier's budget (cache.rank_tier).\n"
                   "# TYPE rankd_rank_tier_budget_bytes gauge\nrankd_rank_tier_budget_bytes %zu\n"
                   "# HELP rankd_rank_tier_loads_total Windows loaded into the rank tier from PostgreSQL.\n"
                   "# TYPE rankd_rank_tier_loads_total counter\nrankd_rank_tier_loads_total %llu\n"
                   "# HELP rankd_rank_tier_reloads_total Windows the tier stopped trusting and loaded again (a gap in "
                   "the stream, an import or deletion, the listener's reconnection).\n"
                   "# TYPE rankd_rank_tier_reloads_total counter\nrankd_rank_tier_reloads_total %llu\n"
                   "# HELP rankd_rank_tier_evictions_total Windows dropped from the tier: idle, or for room.\n"
                   "# TYPE rankd_rank_tier_evictions_total counter\nrankd_rank_tier_evictions_total %llu\n"
                   "# HELP rankd_rank_tier_too_big_total Windows loaded that alone exceeded the tier's budget.\n"
                   "# TYPE rankd_rank_tier_too_big_total counter\nrankd_rank_tier_too_big_total %llu\n"
                   "# HELP rankd_rank_tier_misses_total Reads the tier could not answer (the window not held, "
                   "loading, or behind this instance's own writes): Redis or PostgreSQL answered.\n"
                   "# TYPE rankd_rank_tier_misses_total counter\nrankd_rank_tier_misses_total %llu\n"
                   "# HELP rankd_rank_tier_last_load_seconds How long the last window load took (from the primary, "
                   "rankd_rank_tier_last_load_players standings).\n"
                   "# TYPE rankd_rank_tier_last_load_seconds gauge\nrankd_rank_tier_last_load_seconds %.3f\n"
                   "# HELP rankd_rank_tier_last_load_players Standings of the last window loaded.\n"
                   "# TYPE rankd_rank_tier_last_load_players gauge\nrankd_rank_tier_last_load_players %lld\n"
                   "# HELP rankd_rank_tier_load_failures_total Window loads that failed (the primary unreachable, "
                   "a statement's error); the window is asked for again at a read a second on.\n"
                   "# TYPE rankd_rank_tier_load_failures_total counter\nrankd_rank_tier_load_failures_total %llu\n"
                   "# HELP rankd_rank_tier_loads_dropped_total Window loads that finished after their window changed "
                   "(a gap, an import or deletion, the listener's reconnection) or went: loaded again, not installed.\n"
                   "# TYPE rankd_rank_tier_loads_dropped_total counter\nrankd_rank_tier_loads_dropped_total %llu\n"
                   "# HELP rankd_rank_tier_listening Whether the invalidation listener's session is up (the tier "
                   "loads and answers only then).\n"
                   "# TYPE rankd_rank_tier_listening gauge\nrankd_rank_tier_listening %d\n"
                   "# HELP rankd_rank_tier_heard_seconds Since the listener's last heartbeat heard back was sent: the "
                   "tier answers while it is at most http.cache_max_age (-1: none yet).\n"
                   "# TYPE rankd_rank_tier_heard_seconds gauge\nrankd_rank_tier_heard_seconds %.3f\n"
                   "# HELP rankd_rank_tier_stale_total Reads of a ready window the tier refused because no heartbeat "
                   "had come back within http.cache_max_age (Redis or PostgreSQL answered).\n"
                   "# TYPE rankd_rank_tier_stale_total counter\nrankd_rank_tier_stale_total %llu\n",
                   ts.ready, ts.loading, ts.failed, ts.too_big_windows,
                   ts.windows - ts.ready - ts.loading - ts.failed - ts.too_big_windows, (long long)ts.players, ts.bytes, ts.budget, ts.loads, ts.reloads,
                   ts.evictions, ts.too_big, ts.missed, (double)ts.last_load_ms / 1000.0,
                   (long long)ts.last_load_players, ts.load_failures, ts.loads_dropped, ts.listening ? 1 : 0,
                   ts.heard_ago_ms < 0 ? -1.0 : (double)ts.heard_ago_ms / 1000.0, ts.stale);
    }
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
               "# HELP rankd_l1_refreshes_total Cached answers computed again ahead of their expiry.\n"
               "# TYPE rankd_l1_refreshes_total counter\nrankd_l1_refreshes_total %llu\n"
               "# HELP rankd_l1_bytes Bytes of the answers the response cache holds (its budget is cache.max_bytes).\n"
               "# TYPE rankd_l1_bytes gauge\nrankd_l1_bytes %zu\n"
               "# HELP rankd_l1_held_bytes Bytes of cached answers not yet freed (evicted ones still being sent included), and the cache's bookkeeping.\n"
               "# TYPE rankd_l1_held_bytes gauge\nrankd_l1_held_bytes %zu\n"
               "# HELP rankd_l1_entries Answers held by the response cache.\n"
               "# TYPE rankd_l1_entries gauge\nrankd_l1_entries %zu\n"
               "# HELP rankd_l1_inserts_total Answers put in the response cache.\n"
               "# TYPE rankd_l1_inserts_total counter\nrankd_l1_inserts_total %llu\n"
               "# HELP rankd_l1_claims Answers being computed now by one request for the others that ask the same.\n"
               "# TYPE rankd_l1_claims gauge\nrankd_l1_claims %zu\n"
               "# HELP rankd_l1_parked_total Reads that waited for another request computing the same answer.\n"
               "# TYPE rankd_l1_parked_total counter\nrankd_l1_parked_total %llu\n"
               "# HELP rankd_l1_claims_abandoned_total Answers whose computing request gave up (its read failed or its client left); their waiters compute them again.\n"
               "# TYPE rankd_l1_claims_abandoned_total counter\nrankd_l1_claims_abandoned_total %llu\n",
               (unsigned long long)l1.hits, (unsigned long long)l1.misses, (unsigned long long)l1.invalidations,
               (unsigned long long)l1.evictions, (unsigned long long)l1.refreshes, l1.bytes,
               l1.held_bytes + l1.bookkeeping_bytes, l1.entries, (unsigned long long)l1.inserts, l1.claims, (unsigned long long)l1.parked,
               (unsigned long long)l1.abandoned);
    uint64_t batches, commands, merged;
    redis_pipe_stats(app->pipe, &batches, &commands, &merged);
    buf_printf(&req->out,
               "# HELP rankd_redis_pipe_batches_total Writes of pipelined Redis reads (replies read in order).\n"
               "# TYPE rankd_redis_pipe_batches_total counter\nrankd_redis_pipe_batches_total %llu\n"
               "# HELP rankd_redis_pipe_commands_total Redis commands sent through the pipeline (a merged one carries several reads).\n"
               "# TYPE rankd_redis_pipe_commands_total counter\nrankd_redis_pipe_commands_total %llu\n"
               "# HELP rankd_redis_pipe_merged_total Pipelined commands that carried the reads of several requests.\n"
               "# TYPE rankd_redis_pipe_merged_total counter\nrankd_redis_pipe_merged_total %llu\n",
               (unsigned long long)batches, (unsigned long long)commands, (unsigned long long)merged);
    uint64_t redirects, retries;
    redis_pool_stats(app->redis, &redirects, &retries);
    buf_printf(&req->out,
               "# HELP rankd_redis_redirects_total Redis Cluster commands sent again to the node a MOVED or ASK named.\n"
               "# TYPE rankd_redis_redirects_total counter\nrankd_redis_redirects_total %llu\n"
               "# HELP rankd_redis_tryagain_total Redis Cluster commands retried after TRYAGAIN (their slot was migrating).\n"
               "# TYPE rankd_redis_tryagain_total counter\nrankd_redis_tryagain_total %llu\n",
               (unsigned long long)(redirects + redis_pipe_redirects(app->pipe)), (unsigned long long)retries);
    uint64_t replica_reads, replica_behind;
    redis_pipe_replica_stats(app->pipe, &replica_reads, &replica_behind);
    buf_printf(&req->out,
               "# HELP rankd_redis_replica_reads_total Rank reads a Redis replica answered (redis.read_from: replicas).\n"
               "# TYPE rankd_redis_replica_reads_total counter\nrankd_redis_replica_reads_total %llu\n"
               "# HELP rankd_redis_replica_behind_total Rank reads sent again to the master: its replica had not caught up.\n"
               "# TYPE rankd_redis_replica_behind_total counter\nrankd_redis_replica_behind_total %llu\n",
               (unsigned long long)replica_reads, (unsigned long long)replica_behind);
    board_catalog_stats_t cat;
    board_catalog_stats(app->catalog, &cat);
    buf_printf(&req->out,
               "# HELP rankd_board_catalog_boards Board definitions kept to answer reads while no PostgreSQL node can.\n"
               "# TYPE rankd_board_catalog_boards gauge\nrankd_board_catalog_boards %zu\n"
               "# HELP rankd_board_catalog_complete Whether they include a full list recent enough to list boards from (1) or not (0).\n"
               "# TYPE rankd_board_catalog_complete gauge\nrankd_board_catalog_complete %d\n"
               "# HELP rankd_board_catalog_fallbacks_total Board lookups and list pages answered from them, PostgreSQL being unavailable.\n"
               "# TYPE rankd_board_catalog_fallbacks_total counter\nrankd_board_catalog_fallbacks_total %llu\n",
               cat.boards, cat.complete ? 1 : 0, cat.fallbacks);
    pg_router_metrics(app->router, &req->out);
    jwks_render_metrics(app->jwks, &req->out);
    metrics_render_heap(&req->out);
    metrics_render_process(&req->out);
    refresher_stats_t up;
    refresher_stats(app->refresher, &up);
    buf_printf(&req->out,
               "# HELP rankd_upkeep_leader Whether this instance runs the upkeep jobs (view refresh, partitions, archives, retention).\n"
               "# TYPE rankd_upkeep_leader gauge\nrankd_upkeep_leader %d\n"
               "# HELP rankd_views_unchanged_rounds_total Upkeep rounds that found nothing written and left the views alone.\n"
               "# TYPE rankd_views_unchanged_rounds_total counter\nrankd_views_unchanged_rounds_total %llu\n"
               "# HELP rankd_rollovers_total Board windows this instance saw begin (and warmed).\n"
               "# TYPE rankd_rollovers_total counter\nrankd_rollovers_total %llu\n"
               "# HELP rankd_windows_archived_total Closed windows this instance archived.\n"
               "# TYPE rankd_windows_archived_total counter\nrankd_windows_archived_total %llu\n"
               "# HELP rankd_last_archive_ms How long writing the last archive took.\n"
               "# TYPE rankd_last_archive_ms gauge\nrankd_last_archive_ms %lld\n"
               "# HELP rankd_retention_partitions_dropped_total Archive and log partitions retention detached and dropped.\n"
               "# TYPE rankd_retention_partitions_dropped_total counter\nrankd_retention_partitions_dropped_total %llu\n"
               "# HELP rankd_rank_bucket_recuts_total PostgreSQL rank buckets and supers this instance split or merged.\n"
               "# TYPE rankd_rank_bucket_recuts_total counter\nrankd_rank_bucket_recuts_total %llu\n",
               refresher_leads(app->refresher) ? 1 : 0, up.unchanged_rounds, up.rollovers, up.archived,
               up.last_archive_ms, up.partitions_dropped, up.rank_bucket_recuts);
    render_upkeep_jobs(&req->out, &up);
    rebuilder_stats_t rs;
    rebuilder_stats(app->rebuilder, &rs);
    buf_printf(&req->out,
               "# HELP rankd_redis_windows_verified_total Redis windows whose mark was found to reach PostgreSQL's (then trusted until the next outage).\n"
               "# TYPE rankd_redis_windows_verified_total counter\nrankd_redis_windows_verified_total %llu\n"
               "# HELP rankd_redis_windows_behind_total Redis windows found to miss committed changes (or to be ahead of PostgreSQL), then rebuilt.\n"
               "# TYPE rankd_redis_windows_behind_total counter\nrankd_redis_windows_behind_total %llu\n"
               "# HELP rankd_redis_windows_rebuilt_total Redis windows this instance loaded from PostgreSQL.\n"
               "# TYPE rankd_redis_windows_rebuilt_total counter\nrankd_redis_windows_rebuilt_total %llu\n"
               "# HELP rankd_redis_audit_windows_lost_total Hot windows the leader's Redis audit found to miss a committed change (or to be ahead of PostgreSQL), marked cold.\n"
               "# TYPE rankd_redis_audit_windows_lost_total counter\nrankd_redis_audit_windows_lost_total %llu\n",
               rs.verified, rs.behind, rs.rebuilt, up.redis_audit_lost);
    uint64_t mark_looks, marks_late;
    mark_watch_stats(app->mark_watch, &mark_looks, &marks_late);
    buf_printf(&req->out,
               "# HELP rankd_redis_mark_looks_total Redis window marks read to see a commit's number (heard in its notice) reached.\n"
               "# TYPE rankd_redis_mark_looks_total counter\nrankd_redis_mark_looks_total %llu\n"
               "# HELP rankd_redis_marks_late_total Of those, marks found behind a number heard more than a second before (the window then read from PostgreSQL).\n"
               "# TYPE rankd_redis_marks_late_total counter\nrankd_redis_marks_late_total %llu\n",
               (unsigned long long)mark_looks, (unsigned long long)marks_late);
    writer_stats_t ws;
    writer_stats(app->writer, &ws);
    buf_printf(&req->out,
               "# HELP rankd_writer_queue_submissions Submissions waiting for the writer's next transaction.\n"
               "# TYPE rankd_writer_queue_submissions gauge\nrankd_writer_queue_submissions %zu\n"
               "# HELP rankd_writer_batches_total Write transactions run (each commits every submission queued when it began).\n"
               "# TYPE rankd_writer_batches_total counter\nrankd_writer_batches_total %llu\n"
               "# HELP rankd_writer_gathers_total Write transactions that first waited for the clients the last one answered (writer.gather_us): all came, or the wait ran out first (in_vain).\n"
               "# TYPE rankd_writer_gathers_total counter\nrankd_writer_gathers_total{outcome=\"came\"} %llu\n"
               "rankd_writer_gathers_total{outcome=\"in_vain\"} %llu\n"
               "# HELP rankd_writer_last_batch_ms How long the writer's last transaction took (its answers not included).\n"
               "# TYPE rankd_writer_last_batch_ms gauge\nrankd_writer_last_batch_ms %lld\n"
               "# HELP rankd_league_placements_total Players placed in a league's cohort by their first standing of a window.\n"
               "# TYPE rankd_league_placements_total counter\nrankd_league_placements_total %llu\n"
               "# HELP rankd_writer_hints_total Second notices of a transaction's changes, sent after its Redis update: inside the writer's next transaction (carried), or in one of their own (alone).\n"
               "# TYPE rankd_writer_hints_total counter\nrankd_writer_hints_total{how=\"carried\"} %llu\n"
               "rankd_writer_hints_total{how=\"alone\"} %llu\n",
               ws.queued, ws.batches, ws.gathers_came, ws.gathers_in_vain, ws.last_batch_ms,
               ws.league_placed, ws.hints_carried, ws.hints_alone);
    events_stats_t es;
    events_stats(app->events, &es);
    buf_printf(&req->out,
               "# HELP rankd_events_delivered_total End-of-window events a webhook took (2xx) from this instance.\n"
               "# TYPE rankd_events_delivered_total counter\nrankd_events_delivered_total %llu\n"
               "# HELP rankd_events_retried_total Tries of end-of-window events that failed, to be made again.\n"
               "# TYPE rankd_events_retried_total counter\nrankd_events_retried_total %llu\n"
               "# HELP rankd_events_given_up_total End-of-window events still refused 24 h after they were made.\n"
               "# TYPE rankd_events_given_up_total counter\nrankd_events_given_up_total %llu\n",
               (unsigned long long)es.delivered, (unsigned long long)es.retried, (unsigned long long)es.given_up);
    buf_printf(&req->out,
               "# HELP rankd_rate_limited_total Requests refused with 429 by the per-client limits.\n"
               "# TYPE rankd_rate_limited_total counter\n"
               "rankd_rate_limited_total{kind=\"read\"} %llu\nrankd_rate_limited_total{kind=\"write\"} %llu\n"
               "# HELP rankd_rate_limit_clients Clients whose buckets this instance remembers.\n"
               "# TYPE rankd_rate_limit_clients gauge\nrankd_rate_limit_clients %zu\n",
               ratelimit_refused(app->limits, RL_READ), ratelimit_refused(app->limits, RL_WRITE),
               ratelimit_clients(app->limits));
    buf_puts(&req->out, "# HELP rankd_build_info rankd version.\n# TYPE rankd_build_info gauge\n"
                        "rankd_build_info{version=\"" RANKD_VERSION "\"} 1\n");
    req->content_type_out = "text/plain; version=0.0.4; charset=utf-8";
    return http_ok(req, 200);
}
