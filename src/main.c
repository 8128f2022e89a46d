/*
 * main.c — rankd's command line: serve, migrate, verify, rebuild-cache,
 * config check, version.
 *
 * `serve` builds the application once (pools, caches, writer, rebuilder,
 * HTTP server), then waits for SIGTERM/SIGINT in the main thread with every
 * other thread's signals blocked, and drains in-flight requests before
 * exiting 0.
 */
#include <inttypes.h>
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "api/app.h"
#include "config/config.h"
#include "core/window.h"
#include "http/server.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "store/export.h"
#include "store/migrate.h"
#include "store/pg_deadline.h"
#include "store/pg_router.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "store/redis_sentinel.h"
#include "store/redis_pipe.h"
#include "store/upkeep.h"
#include "store/views.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/heap.h"
#include "util/arena.h"
#include "worker/prober.h"
#include "worker/listener.h"
#include "worker/offload.h"
#include "worker/refresher.h"
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

static int usage(void)
{
    fprintf(stderr,
            "usage: rankd serve [-c FILE]\n"
            "       rankd migrate up|status|verify [-c FILE]\n"
            "       rankd refresh [--view NAME] [--if-older-than 60s] [-c FILE]\n"
            "       rankd verify [--board B] [-c FILE]\n"
            "       rankd rebuild-cache [--board B] [-c FILE]\n"
            "       rankd export --board B [--window W] [--format csv|ndjson] [FILE|-] [-c FILE]\n"
            "       rankd config check [-c FILE]\n"
            "       rankd config gen-key      (a random key or secret: 32 bytes, base64url)\n"
            "       rankd version\n"
            "       rankd routes              (the routes this binary serves, one per line: METHODS PATH)\n");
    return 2;
}

/* 32 bytes from OpenSSL's generator, base64url without padding (43 characters): a bearer key or
 * cursor secret no one can guess. */
static int gen_key(void)
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        fprintf(stderr, "rankd: the random generator failed\n");
        return 1;
    }
    unsigned char text[4 * ((sizeof raw + 2) / 3) + 1];
    int n = EVP_EncodeBlock(text, raw, (int)sizeof raw);
    OPENSSL_cleanse(raw, sizeof raw);
    while (n > 0 && text[n - 1] == '=')
        text[--n] = '\0';
    for (int i = 0; i < n; i++)
        text[i] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
    printf("%s\n", (const char *)text);
    OPENSSL_cleanse(text, sizeof text);
    return 0;
}

static const char *migrations_dir(void)
{
    const char *d = getenv("RANKD_MIGRATIONS_DIR");
    return d && *d ? d : "migrations";
}

static PGconn *connect_primary(const rankd_config_t *cfg)
{
    char err[512];
    PGconn *c = pg_connect(cfg->pg_primary, cfg->pg_statement_timeout_ms, cfg->pg_connect_timeout_s, err, sizeof err);
    if (!c)
        fprintf(stderr, "rankd: cannot connect to the primary: %s\n", err);
    return c;
}

/* ---------------------------------------------------------------- serve */

/* The configuration file holds keys and passwords: say so when every user of the machine may read
 * it (the environment is the other place for them). */
static void warn_if_config_exposed(const rankd_config_t *cfg)
{
    struct stat st;
    if (!cfg->path || stat(cfg->path, &st) != 0 || !(st.st_mode & (S_IROTH | S_IWOTH)))
        return;
    log_warn(NULL, "%s: every user of this machine may %s it (mode %04o), and it may hold keys and passwords; "
                   "chmod o= %s (or give the secrets in the environment)",
             cfg->path, (st.st_mode & S_IWOTH) ? "change" : "read", (unsigned)(st.st_mode & 07777), cfg->path);
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

static int serve(rankd_config_t *cfg)
{
    if (!cfg->cursor_secret_given) {
        /* The built-in one is in the source: anyone could sign cursors for this deployment. */
        log_error(NULL, "%s: auth.cursor_secret is not set; give one of your own (the same on every instance), "
                        "in the file or in RANKD_CURSOR_SECRET", cfg->path);
        return 1;
    }
    warn_if_config_exposed(cfg);
    forbid_core_dumps();
    heap_configure();
    /* Each connection is a descriptor: take what the system allows, and keep the connection
     * limit under it (accept would fail first otherwise, and slow clients could fill it). */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nofile) != 0)
            getrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
        (rlim_t)cfg->max_connections + 256 > nofile.rlim_cur) {
        int fit = nofile.rlim_cur > 512 ? (int)(nofile.rlim_cur - 256) : (int)nofile.rlim_cur / 2;
        log_warn(NULL, "http.max_connections %d does not fit the %llu descriptors allowed: %d", cfg->max_connections,
                 (unsigned long long)nofile.rlim_cur, fit);
        cfg->max_connections = fit;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    PGconn *c = connect_primary(cfg);
    if (!c)
        return 1;
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
            log_error(NULL, "cannot read the primary's WAL position: %s", PQerrorMessage(c));
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
    app.l1 = l1_new(cfg->cache_max_bytes, cfg->cache_max_age * 1000);
    /* A definition is served while no node answers when confirmed within two refresher lists (or
     * 5 min) of PostgreSQL's last answer; a deleted one stays refused longer than any statement. */
    int64_t list_every_ms = (int64_t)cfg->refresh_interval_s * 1000;
    int64_t stmt_ms = (int64_t)cfg->pg_statement_timeout_ms;
    app.catalog = board_catalog_new(2 * list_every_ms > 300000 ? 2 * list_every_ms : 300000,
                                    4 * stmt_ms > 600000 ? 4 * stmt_ms : 600000);
    listener_t *listener =
        listener_start(cfg->pg_primary, cfg->pg_connect_timeout_s, app.l1, app.router, app.catalog);
    /* The writer has a connection of its own too: it holds the writer's prepared statements. */
    pg_pool_t *write_pg = pg_pool_new(cfg->pg_primary, 1, cfg->pg_statement_timeout_ms, cfg->pg_connect_timeout_s);
    app.writer = writer_new(write_pg, app.router, app.redis, app.rebuilder, app.l1, (size_t)cfg->writer_max_batch,
                            cfg->rank_bucket_rows);
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
    app.metrics = metrics_new();
    atomic_store(&app.live, cfg);
    app.limits = ratelimit_new(cfg->limit_reads_per_s, cfg->limit_writes_per_s, cfg->limit_strong_reads_per_s,
                               cfg->limit_burst, 100000);
    app.auth_failures = ratelimit_new(cfg->limit_failed_auths_per_s, 0, 0,
                                      AUTH_FAILURES_BURST_S * cfg->limit_failed_auths_per_s, 100000);
    app.idem_keys = api_idem_keys_new(cfg->limit_idempotency_keys_per_client);
    /* Last: at a reset it renders responses through the whole application. */
    refresher_opts_t ro = {app.primary, app.redis, cfg, app.rebuilder, warm_top, &app, app.catalog};
    refresher_t *refresher = refresher_start(&ro);
    app.refresher = refresher;
    app.prober = prober_start(app.router, app.redis, 1000);

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
        /* Answer what is in flight, writer and Redis pipe still running; then refuse new
         * writes (503) and wait again. The daemon stops only when no connection is
         * suspended: libmicrohttpd cannot stop with one. */
        http_server_drain(srv, 10000);
        writer_close(app.writer);
        int left = http_server_drain(srv, 10000);
        if (left > 0) {
            /* Their work may still complete and touch freed state: leave at once.
             * Nothing acknowledged is lost; those clients see the connection close. */
            log_error(NULL, "exiting with %d requests still in flight", left); /* flushes pending lines */
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
        log_info(NULL, "stopped");
    }
    redis_sentinel_watch_stop(sentinel_watch);
    redis_pipe_stop(app.pipe); /* it hands reads of cold windows to the offload threads */
    offload_stop(app.offload);
    offload_stop(app.admin);
    offload_stop(app.encoder);
    turns_free(app.cold_turns);
    prober_stop(app.prober);
    refresher_stop(refresher);
    listener_stop(listener);
    rebuilder_stop(app.rebuilder);
    pg_pool_free(rebuild_pg);
    writer_free(app.writer);
    pg_pool_free(write_pg);
    board_cache_free(app.boards);
    board_catalog_free(app.catalog);
    exports_free(app.exports);
    ratelimit_free(app.limits);
    ratelimit_free(app.auth_failures);
    ratelimit_free(app.idem_keys);
    api_reload_free(&app);
    metrics_free(app.metrics);
    l1_free(app.l1);
    redis_pool_free(app.redis);
    pg_router_free(app.router);
    log_buffering_stop();
    return rc;
}

/* ---------------------------------------------------------------- verify and rebuild-cache */

typedef enum { CHECK_VERIFY, CHECK_REBUILD } check_t;

static int each_window(const rankd_config_t *cfg, const char *only, check_t what)
{
    bool with_redis = cfg->redis_url && *cfg->redis_url;
    if (!with_redis && what == CHECK_REBUILD) {
        fprintf(stderr, "rankd: no Redis is configured\n");
        return 1;
    }
    PGconn *c = connect_primary(cfg);
    if (!c)
        return 1;
    redis_pool_t *rp = NULL;
    redis_conn_t *rc = NULL;
    if (with_redis) {
        rb_init();
        rp = redis_pool_new(cfg->redis_url, cfg->redis_connect_timeout_ms, 60000, 1);
        rc = redis_acquire(rp);
        if (!rc) {
            fprintf(stderr, "rankd: cannot reach Redis\n");
            redis_pool_free(rp);
            PQfinish(c);
            return 1;
        }
    }
    board_t *boards = NULL;
    size_t n = 0;
    int status = 0;
    if (only) {
        boards = xcalloc(1, sizeof *boards);
        q_status_t st = q_board_get(c, only, &boards[0]);
        if (st == Q_OK)
            n = 1;
        else {
            fprintf(stderr, "rankd: board %s not found\n", only);
            status = 1;
        }
    } else if (q_board_list(c, NULL, 1000000, &boards, &n) != Q_OK) {
        status = 1;
    }
    long diffs = 0;
    for (size_t i = 0; i < n && status == 0; i++) {
        int64_t days[2];
        size_t n_days = window_hot_days(boards[i].reset, boards[i].created_ms, clock_wall_ms(), days);
        for (size_t k = 0; k < n_days && status == 0; k++) {
            int64_t day = days[k];
            char d[11];
            window_format_day(day, d);
            if (what == CHECK_VERIFY) {
                /* PostgreSQL's rank buckets against its standings, then Redis against PostgreSQL. */
                long diff = q_rank_buckets_check(c, &boards[i], day, stdout);
                if (diff >= 0 && rc) {
                    long in_redis = rb_verify(rc, c, &boards[i], day, stdout);
                    diff = in_redis < 0 ? in_redis : diff + in_redis;
                }
                if (diff < 0) {
                    fprintf(stderr, "rankd: verify of %s window %s failed\n", boards[i].id, d);
                    status = 1;
                }
                diffs += diff > 0 ? diff : 0;
            } else {
                rb_rebuild_t done;
                rb_status_t rst = rb_rebuild_when_free(rc, c, &boards[i], day, 30000, &done);
                if (rst != RB_OK || done.pg_failed || done.lost) {
                    fprintf(stderr, "rankd: rebuild of %s window %s failed\n", boards[i].id, d);
                    status = 1;
                } else if (done.busy) {
                    fprintf(stderr,
                            "rankd: another rebuild of %s window %s has run for over 30 s; try again when it is done\n",
                            boards[i].id, d);
                    status = 1;
                } else {
                    printf("rebuilt %s window %s: %" PRId64 " players\n", boards[i].id, d, done.players);
                }
            }
        }
    }
    if (what == CHECK_VERIFY && status == 0) {
        printf("%ld difference(s) across %zu board(s)\n", diffs, n);
        status = diffs ? 1 : 0;
    }
    for (size_t i = 0; i < n; i++)
        board_clear(&boards[i]);
    free(boards);
    if (rc) {
        redis_release(rp, rc, false);
        redis_pool_free(rp);
    }
    PQfinish(c);
    return status;
}

/* ---------------------------------------------------------------- refresh */

/* "90", "90s", "5m", "1h" -> seconds; -1 when malformed. */
static int64_t parse_duration(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return v;
    if (strcmp(end, "m") == 0)
        return v * 60;
    if (strcmp(end, "h") == 0)
        return v * 3600;
    return -1;
}

static int refresh(const rankd_config_t *cfg, const char *view, const char *older)
{
    int64_t older_s = 0;
    if (view && !views_known(view)) {
        fprintf(stderr, "rankd: unknown view %s (window_stats, window_histograms, daily_activity)\n", view);
        return 1;
    }
    if (older && (older_s = parse_duration(older)) < 0) {
        fprintf(stderr, "rankd: --if-older-than takes a duration such as 60s, 5m or 1h\n");
        return 1;
    }
    PGconn *c = connect_primary(cfg);
    if (!c)
        return 1;
    /* The log's months ahead too: with refresh.interval_s 0 no instance leads, and this (cron) is
     * the upkeep that runs. */
    if (upkeep_ensure_partitions(c, clock_wall_ms(), 3) != Q_OK)
        fprintf(stderr, "rankd: cannot make the log's partitions ahead\n");
    view_refresh_t done[VIEWS_MAX];
    size_t n = 0;
    const views_refresh_opts_t o = {.only = view, .if_older_than_s = older_s, .timeout_s = cfg->refresh_timeout_s,
                                    .now_ms = clock_wall_ms(),
                                    .grace_ms = window_archive_grace_ms(cfg->pg_statement_timeout_ms)};
    views_status_t st = views_refresh(c, &o, done, &n);
    PQfinish(c);
    if (st == VIEWS_BUSY) {
        printf("skipped: another refresh is running\n");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (done[i].skipped)
            printf("%s: skipped, refreshed less than %s ago\n", done[i].view, older);
        else if (done[i].failed)
            printf("%s: failed (see the log)\n", done[i].view);
        else
            printf("%s: %" PRId64 " rows in %" PRId64 " ms\n", done[i].view, done[i].rows, done[i].ms);
    }
    return st == VIEWS_DONE ? 0 : 1;
}

/* ---------------------------------------------------------------- export */

/* `rankd export`: the export of GET /v1/leaderboards/{board}/export (API.md) into `path` ("-" or
 * NULL: standard output), without the HTTP server. A file is written whole or removed. */
static int export_cmd(const rankd_config_t *cfg, const char *board, const char *window, const char *format,
                      const char *path)
{
    export_format_t fmt = EXPORT_CSV;
    if (!board || (format && !export_format_parse(format, &fmt))) {
        fprintf(stderr, "rankd: export needs --board B, and --format csv or ndjson if any\n");
        return 2;
    }
    PGconn *c = connect_primary(cfg);
    if (!c)
        return 1;
    board_t b;
    if (q_board_get(c, board, &b) != Q_OK) {
        fprintf(stderr, "rankd: board %s not found\n", board);
        PQfinish(c);
        return 1;
    }
    int64_t day = 0;
    window_status_t ws = window_resolve(b.reset, b.created_ms, config_retention_windows(cfg, b.id), clock_wall_ms(),
                                        window, &day);
    int64_t gen = b.gen;
    board_clear(&b);
    if (ws != WINDOW_OK) {
        fprintf(stderr, "rankd: board %s has no window %s: --window takes current, previous or the first day of one of "
                        "its windows (YYYY-MM-DD) that retention keeps\n", board, window ? window : "current");
        PQfinish(c);
        return 1;
    }
    bool to_file = path && strcmp(path, "-") != 0;
    FILE *out = to_file ? fopen(path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "rankd: cannot write %s: %s\n", path, strerror(errno));
        PQfinish(c);
        return 1;
    }
    char err[256] = "";
    bool archived = false;
    /* no idle limit: the CLI's reader is the admin's own pipe or file */
    export_cursor_t *x = export_open(c, gen, day, fmt, 0, &archived, err, sizeof err);
    long rows = 0;
    int n = x ? 1 : -1;
    buf_t o;
    buf_init(&o);
    while (n > 0) {
        buf_reset(&o);
        n = export_next(x, &o, err, sizeof err);
        rows += n > 0 ? n : 0;
        if (n >= 0 && o.len > 0 && fwrite(o.data, 1, o.len, out) != o.len) {
            snprintf(err, sizeof err, "cannot write: %s", strerror(errno));
            n = -1;
        }
    }
    buf_free(&o);
    export_close(x);
    PQfinish(c);
    if (fflush(out) != 0 && n == 0) {
        snprintf(err, sizeof err, "cannot write: %s", strerror(errno));
        n = -1;
    }
    if (to_file && fclose(out) != 0 && n == 0) {
        snprintf(err, sizeof err, "cannot write: %s", strerror(errno));
        n = -1;
    }
    if (n < 0) {
        fprintf(stderr, "rankd: export of %s failed: %s\n", board, err);
        if (to_file)
            unlink(path);
        return 1;
    }
    char d[11];
    window_format_day(day, d);
    fprintf(stderr, "exported %s window %s: %ld rows from its %s\n", board, d, rows, archived ? "archive" : "standings");
    return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    arena_json_install(); /* before any jansson value exists */
    const char *config_path = "config/rankd.yaml";
    const char *board = NULL, *view = NULL, *older = NULL, *window = NULL, *format = NULL;
    const char *words[4] = {0};
    int n_words = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strcmp(argv[i], "--board") == 0 && i + 1 < argc)
            board = argv[++i];
        else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
            window = argv[++i];
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            format = argv[++i];
        else if (strcmp(argv[i], "-") == 0 && n_words < 4)
            words[n_words++] = argv[i];
        else if (strcmp(argv[i], "--view") == 0 && i + 1 < argc)
            view = argv[++i];
        else if (strcmp(argv[i], "--if-older-than") == 0 && i + 1 < argc)
            older = argv[++i];
        else if (argv[i][0] == '-' || n_words == 4)
            return usage();
        else
            words[n_words++] = argv[i];
    }
    if (n_words == 0)
        return usage();
    const char *cmd = words[0];
    if (strcmp(cmd, "version") == 0) {
        printf("rankd %s\n", RANKD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "routes") == 0) { /* what this binary serves: "METHODS PATH" per route */
        for (route_id_t id = R_NONE + 1; id < R_COUNT; id++)
            printf("%s %s\n", api_route_methods(id), api_route_path(id));
        return 0;
    }
    if (strcmp(cmd, "config") == 0 && n_words == 2 && strcmp(words[1], "gen-key") == 0)
        return gen_key();
    bool check_only = strcmp(cmd, "config") == 0;
    if (check_only && (n_words != 2 || strcmp(words[1], "check") != 0))
        return usage();
    rankd_config_t *cfg = config_load(config_path, stderr);
    if (!cfg)
        return 1;
    log_set_level(cfg->log_level);
    /* Test-only (README, "Testing"): a clock the tests move, to cross a reset at will. */
    const char *test_clock = getenv("RANKD_TEST_CLOCK_FILE");
    if (test_clock && *test_clock) {
        if (!clock_test_follow(test_clock)) {
            fprintf(stderr, "rankd: cannot follow the test clock %s\n", test_clock);
            config_free(cfg);
            return 1;
        }
        log_warn(NULL, "the wall clock follows the test clock in %s (RANKD_TEST_CLOCK_FILE): not for production",
                 test_clock);
    }
    int rc;
    if (check_only) {
        warn_if_config_exposed(cfg);
        rc = config_check_secrets(cfg, stderr) == 0 ? 0 : 1;
        if (rc == 0)
            printf("%s: ok\n", config_path);
    } else if (strcmp(cmd, "serve") == 0 && n_words == 1) {
        rc = config_check_secrets(cfg, stderr) == 0 ? serve(cfg) : 1;
    } else if (strcmp(cmd, "migrate") == 0 && n_words == 2) {
        PGconn *c = connect_primary(cfg);
        if (!c)
            rc = 1;
        else {
            if (strcmp(words[1], "up") == 0)
                rc = migrate_up(c, migrations_dir(), stdout);
            else if (strcmp(words[1], "status") == 0)
                rc = migrate_status(c, migrations_dir(), stdout);
            else if (strcmp(words[1], "verify") == 0)
                rc = migrate_verify(c, migrations_dir(), stdout);
            else
                rc = usage();
            PQfinish(c);
        }
    } else if (strcmp(cmd, "refresh") == 0 && n_words == 1) {
        rc = refresh(cfg, view, older);
    } else if (strcmp(cmd, "verify") == 0 && n_words == 1) {
        rc = each_window(cfg, board, CHECK_VERIFY);
    } else if (strcmp(cmd, "rebuild-cache") == 0 && n_words == 1) {
        rc = each_window(cfg, board, CHECK_REBUILD);
    } else if (strcmp(cmd, "export") == 0 && n_words <= 2) {
        rc = export_cmd(cfg, board, window, format, n_words == 2 ? words[1] : NULL);
    } else {
        rc = usage();
    }
    config_free(cfg);
    return rc;
}
