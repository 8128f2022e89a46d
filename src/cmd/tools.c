/*
 * cmd/tools.c — rankd's one-shot operator commands: migrate, refresh (for cron), verify and
 * rebuild-cache, export; and what they share with serve (the primary's connection, the
 * configuration file's mode).
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "core/window.h"
#include "obs/log.h"
#include "store/export.h"
#include "store/migrate.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "store/upkeep.h"
#include "store/views.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "worker/prober.h"

static const char *migrations_dir(void)
{
    const char *d = getenv("RANKD_MIGRATIONS_DIR");
    return d && *d ? d : "migrations";
}

PGconn *cmd_connect_primary(const rankd_config_t *cfg)
{
    char err[512];
    PGconn *c = pg_connect(cfg->pg_primary, cfg->pg_statement_timeout_ms, cfg->pg_connect_timeout_s, err, sizeof err);
    if (!c)
        fprintf(stderr, "rankd: cannot connect to the primary: %s\n", err);
    return c;
}

/* The configuration file holds keys and passwords: say so when every user of the machine may read
 * it (the environment is the other place for them). */
void cmd_warn_if_config_exposed(const rankd_config_t *cfg)
{
    struct stat st;
    if (!cfg->path || stat(cfg->path, &st) != 0 || !(st.st_mode & (S_IROTH | S_IWOTH)))
        return;
    log_warn(NULL, "%s: every user of this machine may %s it (mode %04o), and it may hold keys and passwords; "
                   "chmod o= %s (or give the secrets in the environment)",
             cfg->path, (st.st_mode & S_IWOTH) ? "change" : "read", (unsigned)(st.st_mode & 07777), cfg->path);
}

int cmd_migrate(const rankd_config_t *cfg, const char *what)
{
    if (strcmp(what, "up") != 0 && strcmp(what, "status") != 0 && strcmp(what, "verify") != 0)
        return 2;
    PGconn *c = cmd_connect_primary(cfg);
    if (!c)
        return 1;
    int rc = strcmp(what, "up") == 0       ? migrate_up(c, migrations_dir(), stdout)
             : strcmp(what, "status") == 0 ? migrate_status(c, migrations_dir(), stdout)
                                           : migrate_verify(c, migrations_dir(), stdout);
    PQfinish(c);
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
    PGconn *c = cmd_connect_primary(cfg);
    if (!c)
        return 1;
    /* An operator's check of a window of millions reads it whole: the serving statement timeout
     * (postgres.statement_timeout_ms) is not its bound. */
    if (!pg_unbounded_statements(c))
        fprintf(stderr, "rankd: cannot lift the statement timeout; a large window's check may time out\n");
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
        size_t n_days = window_hot_days(board_window_rule(&boards[i]), boards[i].created_ms, clock_wall_ms(), days);
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

int cmd_verify(const rankd_config_t *cfg, const char *board)
{
    return each_window(cfg, board, CHECK_VERIFY);
}

int cmd_rebuild_cache(const rankd_config_t *cfg, const char *board)
{
    return each_window(cfg, board, CHECK_REBUILD);
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

int cmd_refresh(const rankd_config_t *cfg, const char *view, const char *older)
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
    PGconn *c = cmd_connect_primary(cfg);
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
int cmd_export(const rankd_config_t *cfg, const char *board, const char *window, const char *format,
               const char *rank_style, const char *path)
{
    export_format_t fmt = EXPORT_CSV;
    rank_style_t style;
    if (!board || (format && !export_format_parse(format, &fmt)) || !rank_style_parse(rank_style, &style)) {
        fprintf(stderr, "rankd: export needs --board B, --format csv or ndjson if any, and --rank-style ordinal, "
                        "competition or dense if any\n");
        return 2;
    }
    PGconn *c = cmd_connect_primary(cfg);
    if (!c)
        return 1;
    board_t b;
    if (q_board_get(c, board, &b) != Q_OK) {
        fprintf(stderr, "rankd: board %s not found\n", board);
        PQfinish(c);
        return 1;
    }
    int64_t day = 0;
    window_status_t ws = window_resolve(board_window_rule(&b), b.created_ms, config_retention_windows(cfg, b.id), clock_wall_ms(),
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
    export_cursor_t *x = export_open(c, gen, day, fmt, style, 0, &archived, err, sizeof err);
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
