/*
 * cmd/serve.c — `rankd serve`: builds the application once (pools, caches, writer, rebuilder,
 * HTTP server), then waits for SIGTERM/SIGINT in the main thread with every other thread's
 * signals blocked, and drains in-flight requests before exiting 0. SIGHUP reloads.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "api/app.h"
#include "api/live.h"
#include "api/player_auth.h"
#include "config/fd_budget.h"
#include "http/server.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "store/pg_deadline.h"
#include "store/pg_error.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "store/redis_pipe.h"
#include "store/redis_sentinel.h"
#include "store/upkeep.h"
#include "util/clock.h"
#include "util/heap.h"
#include "worker/analyzer.h"
#include "worker/jwks_source.h"
#include "worker/mark_watch.h"
#include "worker/events.h"
#include "worker/joiner.h"
#include "worker/jwks_fetcher.h"
#include "worker/prober.h"
#include "worker/listener.h"
#include "worker/offload.h"
#include "worker/refresher.h"
#include "worker/tier_loader.h"
#include "worker/turns.h"

/* The next of `sigs` to arrive (-1 when waiting fails). Once a minute meanwhile, hand the pages
 * the allocator holds free back to the system (util/heap.c): over days of caches churning that
 * is resident memory no one uses (loadtest/soak.sh). */
static int wait_signal(const sigset_t *sigs)
{
    for (;;) {
        struct timespec minute = {60, 0};
        int sig = sigtimedwait(sigs, NULL, &minute);
        if (sig > 0)
            return sig;
        if (errno == EAGAIN)
            heap_release();
        else if (errno != EINTR)
            return -1;
    }
}

/* A core dump of a serving process holds its keys, secrets and players' data: none is written,
 * and no other process of the same user may attach to read them. */
static void forbid_core_dumps(void)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        log_warn(NULL, "cannot turn core dumps off: %s", strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        log_warn(NULL, "cannot mark the process undumpable: %s", strerror(errno));
}

/*
 * Create the boards the configuration declares. One that exists already with another definition
 * (a PATCH changed its title, say) is left as it is: the database wins, and a warning names the
 * fields that differ. False only when PostgreSQL fails.
 */
static bool declare_boards(const rankd_config_t *cfg, PGconn *c)
{
    for (size_t i = 0; i < cfg->n_boards; i++) {
        const config_board_t *d = &cfg->boards[i];
        board_t def = {0}, got;
        snprintf(def.id, sizeof def.id, "%s", d->id);
        def.title = d->title;
        def.sort = d->sort;
        def.op = d->op;
        def.reset = d->reset;
        def.metadata = d->metadata;
        def.has_min_score = d->has_min_score;
        def.min_score = d->min_score;
        def.has_max_score = d->has_max_score;
        def.max_score = d->max_score;
        def.client_writes = d->client_writes;
        def.max_submissions_per_minute = d->max_submissions_per_minute;
        def.max_rise_per_second = d->max_rise_per_second;
        bool created = false;
        q_status_t st = q_board_create(c, &def, clock_wall_ms(), &got, &created);
        if (st == Q_CONFLICT) {
            char fields[128] = "?";
            if (q_board_get(c, d->id, &got) == Q_OK) {
                board_differences(&def, &got, fields, sizeof fields);
                board_clear(&got);
            }
            log_warn(NULL, "%s: board %s is declared with another %s than the database's; the database's stands "
                           "(change the file to match, or the board with PATCH)", cfg->path, d->id, fields);
            continue;
        }
        if (st != Q_OK)
            return false;
        if (created)
            log_info(NULL, "created declared board %s", d->id);
        board_clear(&got);
    }
    return true;
}

/* Sentinel moved the master: nothing Redis holds is trusted until rebuilt (redis_sentinel.h). */
static void redis_switched(void *arg)
{
    app_t *app = arg;
    redis_pool_failover(app->redis);
    redis_pipe_reconnect(app->pipe);
}

/* PostgreSQL failed over (the primary is on a new timeline): Redis may hold commits the new primary
 * never had, and the windows' numbers start again from where it was: every window is marked cold. */
static void postgres_switched(void *arg)
{
    app_t *app = arg;
    redis_distrust_all(app->redis);
}

/* Before serving: an upgrade from an older key layout leaves keys nothing reads; delete them
 * once per Redis (Redis down now: they wait for the next start). */
static void forget_old_redis_layout(redis_pool_t *redis)
{
    redis_conn_t *rc = redis_acquire(redis);
    if (!rc)
        return;
    rb_status_t st = rb_forget_old_layout(rc);
    if (st != RB_OK)
        log_warn(NULL, "could not delete the keys of the old Redis layout");
    redis_release(redis, rc, st == RB_DOWN);
}

/* The refresher's warm-up at a reset: a board's top page into this instance's response cache. */
static void warm_top(void *arg, const char *board, int64_t now_ms)
{
    api_warm_top(arg, board, now_ms);
}

int cmd_serve(rankd_config_t *cfg)
{
    if (!cfg->cursor_secret_given) {
        /* The built-in one is in the source: anyone could sign cursors for this deployment. */
        log_error(NULL, "%s: auth.cursor_secret is not set; give one of your own (the same on every instance), "
                        "in the file or in RANKD_CURSOR_SECRET", cfg->path);
        return 1;
    }
    cmd_warn_if_config_exposed(cfg);
    forbid_core_dumps();
    heap_configure();
    /* Each connection is a descriptor, and so is each live stream's taken socket: take what the
     * system allows, and keep both limits under it (accept would fail first otherwise, and slow
     * clients could fill it). */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
            getrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY) {
        fd_budget_t fit = fd_budget_fit((unsigned long long)nofile.rlim_cur, cfg->max_connections, cfg->live_max_listeners);
        if (fit.shrunk)
            log_warn(NULL,
                     "http.max_connections %d or live.max_listeners %d does not fit the %llu descriptors allowed: "
                     "%d and %d (raise the limit: LimitNOFILE= under systemd, ulimit -n)",
                     cfg->max_connections, cfg->live_max_listeners, (unsigned long long)nofile.rlim_cur,
                     fit.max_connections, fit.max_listeners);
        if (fit.shared)
            log_warn(NULL,
                     "http.max_connections %d and live.max_listeners %d together pass the %llu descriptors allowed "
                     "(%llu for clients): when both fill, new connections fail; raise the limit to %llu "
                     "(LimitNOFILE= under systemd, ulimit -n)",
                     fit.max_connections, fit.max_listeners, (unsigned long long)nofile.rlim_cur, fit.room,
                     (unsigned long long)fit.max_connections + (unsigned long long)fit.max_listeners + FD_BUDGET_RESERVED);
        cfg->max_connections = fit.max_connections;
        cfg->live_max_listeners = fit.max_listeners;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    PGconn *c = cmd_connect_primary(cfg);
    if (!c)
        return 1;
    /* This connection is start-up's alone: making the log's partitions is DDL (up to 33 tables a
     * month), not a read, and a short postgres.statement_timeout_ms must not stop start-up. */
    if (upkeep_session_timeout(c, cfg->pg_statement_timeout_ms > 60000 ? cfg->pg_statement_timeout_ms : 60000) !=
        Q_OK) /* then under the configured timeout, as before (logged) */
        log_warn(NULL, "making the log's partitions under postgres.statement_timeout_ms");
    bool ok = upkeep_ensure_partitions(c, clock_wall_ms(), 3) == Q_OK;
    if (!ok)
        log_error(NULL, "cannot prepare partitions (did `rankd migrate up` run?)");
    ok = ok && declare_boards(cfg, c);
    app_t app = {0};
    app.cfg = cfg;
    app.router = pg_router_new(cfg);
    /* Replicas answer board reads only once they have what start-up wrote (declared boards). */
    if (ok && pg_router_has_replicas(app.router)) {
        uint64_t lsn = pg_wal_lsn(c);
        if (lsn == 0) {
            char pe[PG_ERROR_MAX];
            log_error(NULL, "cannot read the primary's WAL position: %s", pg_error_text(c, NULL, pe, sizeof pe));
            ok = false;
        }
        pg_router_saw_lsn(app.router, PG_KEY_ALL, lsn);
    }
    PQfinish(c);
    if (!ok || !pg_router_start(app.router)) {
        pg_router_free(app.router);
        return 1;
    }

    rb_init();
    q_set_slow_ms(cfg->pg_slow_statement_ms);
    /* No call on a PostgreSQL connection waits longer than its statement timeout and 2 s. */
    pg_deadline_set_statement_ms(cfg->pg_statement_timeout_ms + 2000);
    pg_router_wait_probed(app.router, cfg->pg_connect_timeout_s * 1000 + 1000);
    app.primary = pg_router_primary_pool(app.router);
    app.redis = redis_pool_new(cfg->redis_url, cfg->redis_connect_timeout_ms, cfg->redis_command_timeout_ms,
                               cfg->worker_threads * 2 + 2);
    forget_old_redis_layout(app.redis);
    pg_router_on_new_timeline(app.router, postgres_switched, &app);
    /* The rebuilder has a connection of its own: when Redis is cold every read falls back to
     * the primary's pool, and the rebuild that ends that must not queue behind them. */
    pg_pool_t *rebuild_pg = pg_pool_new(cfg->pg_primary, 1, cfg->pg_statement_timeout_ms, cfg->pg_connect_timeout_s);
    app.rebuilder = rebuilder_start(rebuild_pg, app.router, app.redis);
    app.mark_watch = mark_watch_start(app.redis);
    app.l1 = l1_new(cfg->cache_max_bytes, cfg->cache_max_age * 1000);
    /* A definition is served while no node answers when confirmed within two refresher lists (or
     * 5 min) of PostgreSQL's last answer; a deleted one stays refused longer than any statement. */
    int64_t list_every_ms = (int64_t)cfg->refresh_interval_s * 1000;
    int64_t stmt_ms = (int64_t)cfg->pg_statement_timeout_ms;
    app.catalog = board_catalog_new(2 * list_every_ms > 300000 ? 2 * list_every_ms : 300000,
                                    4 * stmt_ms > 600000 ? 4 * stmt_ms : 600000);
    /* The tier answers only while it knows it is no older than a cached answer may be
     * (http.cache_max_age, at least 1 s); the listener's heartbeats tell it, three per bound. */
    int tier_stale_ms = cfg->cache_max_age > 0 ? cfg->cache_max_age * 1000 : 1000;
    app.tier = rank_tier_new(cfg->rank_tier_bytes, tier_stale_ms);
    /* A window no read asked for in five minutes leaves the tier. */
    tier_loader_t *tier_loader = tier_loader_start(app.tier, cfg->pg_primary, cfg->pg_connect_timeout_s, 300000);
    /* Player tokens' sources and revocations: the listener keeps the revocations current. */
    app.player_auth = player_auth_new(&app);
    /* The live streams: idle until a client opens one; the listener tells them of changes. */
    live_opts_t lo = {cfg->live_max_listeners, cfg->live_max_listeners_per_address, cfg->live_min_interval_ms,
                      cfg->live_heartbeat_s, cfg->send_timeout_s};
    app.live_hub = cfg->live_max_listeners > 0 ? live_hub_start(&app, &lo) : NULL;
    listener_sink_t live_sink = {live_hub_heard, app.live_hub};
    listener_t *listener = listener_start(cfg->pg_listener && cfg->pg_listener[0] ? cfg->pg_listener : cfg->pg_primary,
                                          cfg->pg_connect_timeout_s, app.l1, app.router, app.catalog, app.redis, app.tier,
                                          player_auth_revocations(app.player_auth), tier_stale_ms / 3,
                                          app.live_hub ? &live_sink : NULL);
    /* The writer has a connection of its own too: it holds the writer's prepared statements. */
    pg_pool_t *write_pg = pg_pool_new(cfg->pg_primary, 1, cfg->pg_statement_timeout_ms, cfg->pg_connect_timeout_s);
    app.writer = writer_new(write_pg, app.router, app.redis, app.rebuilder, app.l1, app.tier, (size_t)cfg->writer_max_batch,
                            cfg->writer_gather_us, cfg->rank_bucket_rows);
    pg_pool_t *join_pg = pg_pool_new(cfg->pg_primary, 1, cfg->pg_statement_timeout_ms, cfg->pg_connect_timeout_s);
    app.joiner = joiner_new(join_pg, app.router, cfg->writer_gather_us);
    const char *scripts[RB_SCRIPTS_MAX];
    size_t n_scripts = rb_script_sources(scripts, RB_SCRIPTS_MAX);
    app.pipe = redis_pipe_start(cfg->redis_url, cfg->redis_connect_timeout_ms, cfg->redis_command_timeout_ms, scripts,
                                n_scripts, cfg->redis_read_from == REDIS_READ_REPLICAS, app.redis);
    redis_sentinel_watch_t *sentinel_watch =
        redis_sentinel_watch_start(cfg->redis_url, cfg->redis_connect_timeout_ms, redis_switched, &app);
    /* PostgreSQL reads of ranked requests run here, never on an event-loop thread; fewer
     * threads than pooled connections keeps some for everything else. */
    int readers = cfg->pg_pool_size > 1 ? cfg->pg_pool_size - 1 : 1;
    app.offload = offload_start(readers > 4 ? 4 : readers);
    app.admin = offload_start(1);
    app.encoder = offload_start(1);
    /* Beyond 64 reads waiting on one cold window, the next go to the shared threads. */
    app.cold_turns = app.pipe && app.offload ? turns_new(app.offload, 64) : NULL;
    app.boards = board_cache_new(1000);
    app.exports = exports_new();
    app.imports = imports_new();
    app.metrics = metrics_new();
    atomic_store(&app.live, cfg);
    app.limits = ratelimit_new(cfg->limit_reads_per_s, cfg->limit_writes_per_s, cfg->limit_strong_reads_per_s,
                               cfg->limit_burst, 100000);
    app.auth_failures = ratelimit_new(cfg->limit_failed_auths_per_s, 0, 0,
                                      AUTH_FAILURES_BURST_S * cfg->limit_failed_auths_per_s, 100000);
    app.idem_keys = api_idem_keys_new(cfg->limit_idempotency_keys_per_client);
    app.player_writes = ratelimit_new(0, cfg->limit_player_writes_per_s, 0, cfg->limit_player_burst, 100000);
    /* Last: at a reset it renders responses through the whole application. */
    refresher_opts_t ro = {app.primary, app.redis, cfg, app.rebuilder, warm_top, &app, app.catalog};
    refresher_t *refresher = refresher_start(&ro);
    app.refresher = refresher;
    app.prober = prober_start(app.router, app.redis, 1000);
    app.jwks = jwks_start(cfg, NULL); /* auth.issuers: their keys fetched off the event loop */
    if (app.jwks && !player_auth_add_source(app.player_auth, "issuers", jwks_token_source, app.jwks))
        log_error(NULL, "cannot take the tokens of auth.issuers: they are refused");
    app.events = events_start(app.primary, 1000);
    app.analyzer = analyzer_start(app.primary, 1000);

    char err[256];
    http_server_deps_t deps = {.cfg = cfg, .live = &app.live, .metrics = app.metrics, .l1 = app.l1,
                               .encoder = app.encoder, .api = api_dispatch(&app)};
    http_server_t *srv = http_server_start(&deps, err, sizeof err);
    atomic_store(&app.http, srv); /* its counts, in /metrics */
    int rc = 0;
    if (!srv) {
        log_error(NULL, "%s", err);
        rc = 1;
    } else {
        log_info(NULL, "rankd %s serving on http://%s:%d with %d worker threads, redis %s", RANKD_VERSION,
                 cfg->listen_host, cfg->listen_port, cfg->worker_threads, app.redis ? "on" : "off");
        if (!log_buffering_start())
            log_warn(NULL, "cannot start the log flusher thread: request lines are written one by one");
        int sig = 0;
        while ((sig = wait_signal(&sigs)) == SIGHUP)
            api_reload(&app); /* keys, limits, CORS origins, log level; connections stay */
        log_info(NULL, "signal %d: draining in-flight requests", sig);
        live_hub_close(app.live_hub); /* streams end whole, with a reconnection hint, before the drain */
        /* Answer what is in flight, writer and Redis pipe still running; then refuse new
         * writes (503) and wait again. The daemon stops only when no connection is
         * suspended: libmicrohttpd cannot stop with one. At each deadline the requests
         * still arriving or whose answers are not being read are cut (nothing of theirs
         * was acknowledged), so a slow client never holds the stop; the exit is 0. */
        http_server_drain(srv, 10000);
        writer_close(app.writer);
        joiner_close(app.joiner);
        int left = http_server_drain(srv, 10000);
        if (left > 0) {
            /* Their work (a write in the writer's transaction, a read waiting on PostgreSQL)
             * may still complete and touch freed state: leave at once. Nothing acknowledged
             * is lost, but such a write may or may not be committed: a failure. */
            log_error(NULL, "exiting with %d requests still in flight, their work under way", left); /* flushes pending lines */
            _exit(1);
        }
        atomic_store(&app.http, NULL);
        http_server_stop(srv); /* exports still streaming were cut at the drain */
        if (!exports_wait(app.exports, 10000)) {
            /* A producer still waits on PostgreSQL (a fetch, up to its statement timeout): it
             * would outlive what it uses. */
            log_error(NULL, "exiting with an export still fetching its rows");
            _exit(1);
        }
        if (!imports_wait(app.imports, 10000)) {
            /* Its transaction is rolled back as the process ends: nothing of it is kept. */
            log_error(NULL, "exiting with an import still running");
            _exit(1);
        }
        log_info(NULL, "stopped");
    }
    redis_sentinel_watch_stop(sentinel_watch);
    redis_pipe_stop(app.pipe); /* it hands reads of cold windows to the offload threads */
    offload_stop(app.offload);
    offload_stop(app.admin);
    offload_stop(app.encoder);
    turns_free(app.cold_turns);
    prober_stop(app.prober);
    jwks_stop(app.jwks);
    events_stop(app.events);
    analyzer_stop(app.analyzer);
    refresher_stop(refresher);
    listener_stop(listener);
    live_hub_free(app.live_hub);
    tier_loader_stop(tier_loader);
    mark_watch_stop(app.mark_watch);
    rebuilder_stop(app.rebuilder);
    pg_pool_free(rebuild_pg);
    writer_free(app.writer);
    pg_pool_free(write_pg);
    joiner_free(app.joiner);
    pg_pool_free(join_pg);
    board_cache_free(app.boards);
    board_catalog_free(app.catalog);
    exports_free(app.exports);
    imports_free(app.imports);
    ratelimit_free(app.limits);
    ratelimit_free(app.auth_failures);
    ratelimit_free(app.idem_keys);
    ratelimit_free(app.player_writes);
    player_auth_free(app.player_auth);
    api_reload_free(&app);
    metrics_free(app.metrics);
    l1_free(app.l1);
    rank_tier_free(app.tier);
    redis_pool_free(app.redis);
    pg_router_free(app.router);
    log_buffering_stop();
    return rc;
}
