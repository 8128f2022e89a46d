/*
 * cmd/import.c — `rankd import`: the import of POST /v1/leaderboards/{board}/import (API.md)
 * without the HTTP server. The same transaction (store/import.h); running instances learn of it
 * by its notice, and the window's Redis copy is marked cold here (the first read reloads it). On
 * a terminal it shows its
 * progress once a second.
 */
#include "cmd/cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "core/window.h"
#include "store/import.h"
#include "store/queries.h"
#include "store/redis_board.h"
#include "store/upkeep.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/clock.h"
#include "worker/importer.h"

#define READ_CHUNK (64 * 1024)

/* "1,234,567 rows, 812,000 rows/s, 41 % (ETA 3 s)" over the same line of the terminal. */
static void show_progress(const importer_t *x, int64_t started_ms, off_t size, bool last)
{
    double s = (double)(clock_mono_ms() - started_ms) / 1000.0;
    long rows = importer_rows(x);
    double rate = s > 0 ? rows / s : 0;
    fprintf(stderr, "\r%ld rows, %.0f rows/s", rows, rate);
    if (size > 0 && !last) {
        double done = (double)importer_bytes(x) / (double)size;
        fprintf(stderr, ", %.0f %% (ETA %.0f s)", done * 100, done > 0 ? s / done - s : 0);
    }
    fprintf(stderr, last ? "\n" : "   ");
}

/* Feed the whole of `in` to the importer. */
static bool read_all(FILE *in, importer_t *x, off_t size, bool progress, import_error_t *err)
{
    char *chunk = xmalloc(READ_CHUNK);
    int64_t started = clock_mono_ms(), shown = started;
    bool ok = true;
    size_t n;
    while (ok && (n = fread(chunk, 1, READ_CHUNK, in)) > 0) {
        ok = importer_feed(x, chunk, n, err);
        if (progress && clock_mono_ms() - shown >= 1000) {
            shown = clock_mono_ms();
            show_progress(x, started, size, false);
        }
    }
    if (ok && ferror(in)) {
        err->status = 400;
        err->code = "invalid_argument";
        snprintf(err->message, sizeof err->message, "cannot read the file: %s", strerror(errno));
        ok = false;
    }
    ok = ok && importer_end(x, err);
    if (progress && shown != started)
        show_progress(x, started, size, true);
    free(chunk);
    return ok;
}

static void print_error(const char *board, const import_error_t *err)
{
    if (err->line > 0)
        fprintf(stderr, "rankd: import into %s refused at line %ld (field %s): %s\n", board, err->line,
                err->field ? err->field : "-", err->message);
    else
        fprintf(stderr, "rankd: import into %s failed: %s\n", board, err->message);
}

static bool parse_format(const char *format, const char *path, import_format_t *out)
{
    *out = IMPORT_CSV;
    if (format)
        return strcmp(format, "csv") == 0 || (strcmp(format, "ndjson") == 0 && (*out = IMPORT_NDJSON, true));
    size_t n = path ? strlen(path) : 0;
    if ((n > 7 && strcmp(path + n - 7, ".ndjson") == 0) || (n > 6 && strcmp(path + n - 6, ".jsonl") == 0))
        *out = IMPORT_NDJSON;
    return true;
}

int cmd_import(const rankd_config_t *cfg, const char *board, const char *mode_name, const char *format,
               const char *path)
{
    import_mode_t mode = IMPORT_SUBMIT;
    import_format_t fmt;
    if (!board || (mode_name && !import_mode_parse(mode_name, &mode)) || !parse_format(format, path, &fmt)) {
        fprintf(stderr, "rankd: import needs --board B, and --mode submit|replace and --format csv|ndjson if any\n");
        return 2;
    }
    bool from_file = path && strcmp(path, "-") != 0;
    FILE *in = from_file ? fopen(path, "r") : stdin;
    if (!in) {
        fprintf(stderr, "rankd: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct stat st;
    off_t size = from_file && fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : 0;
    PGconn *c = cmd_connect_primary(cfg);
    if (!c) {
        if (from_file)
            fclose(in);
        return 1;
    }
    int status = 1;
    board_t b;
    if (q_board_get(c, board, &b) != Q_OK) {
        fprintf(stderr, "rankd: board %s not found\n", board);
        PQfinish(c);
        if (from_file)
            fclose(in);
        return 1;
    }
    if (b.tournament.on || b.league.on) {
        fprintf(stderr, "rankd: board %s is a %s: it takes submissions only (an import would skip its rules)\n",
                board, b.tournament.on ? "tournament" : "league");
        board_clear(&b);
        PQfinish(c);
        if (from_file)
            fclose(in);
        return 1;
    }
    int64_t started = clock_mono_ms(), now = clock_wall_ms();
    int64_t day = window_start_day(board_window_rule(&b), now);
    import_rules_t rules;
    importer_rules(&rules, &b, day, now, fmt);
    import_error_t err = {0};
    store_import_t *im = store_import_begin(c, &b, day, mode, now, 0, &err);
    importer_t *x = im ? importer_new(im, &rules) : NULL;
    import_counts_t counts;
    char *answer = NULL;
    bool ok = x && read_all(in, x, size, isatty(STDERR_FILENO), &err);
    if (ok)
        ok = store_import_finish(im, NULL, cfg->rank_bucket_rows, NULL, NULL, &counts, &answer, &err) ==
             IMPORT_DONE;
    importer_free(x);
    store_import_end(im);
    if (!ok) {
        if (err.message[0] == '\0')
            snprintf(err.message, sizeof err.message, "the import could not start");
        print_error(board, &err);
    } else {
        /* No read finds Redis's old copy of the window from here on. */
        redis_pool_t *rp = NULL;
        redis_conn_t *rc = NULL;
        if (cfg->redis_url && *cfg->redis_url) {
            rb_init();
            rp = redis_pool_new(cfg->redis_url, cfg->redis_connect_timeout_ms, 60000, 1);
            rc = rp ? redis_acquire(rp) : NULL;
        }
        if (rp && !rc)
            fprintf(stderr, "rankd: cannot reach Redis: running instances find its copy of the window behind\n");
        bool told = importer_publish(c, rc, &b, day);
        if (rc && !told)
            fprintf(stderr, "rankd: Redis's copy of the window could not be marked cold: running instances find "
                            "it behind\n");
        if (rc)
            redis_release(rp, rc, !told);
        redis_pool_free(rp);
        /* The tables it grew get their statistics now (as an instance's analyzer does after its
         * writes): plans made before would treat the window as the small one it was. */
        if (upkeep_analyze(c) != Q_OK)
            fprintf(stderr, "rankd: the tables the import grew could not be analyzed: autovacuum will\n");
        buf_t o;
        buf_init(&o);
        importer_render(&o, b.id, day, &counts, clock_mono_ms() - started);
        printf("%s\n", o.data);
        buf_free(&o);
        status = 0;
    }
    free(answer);
    board_clear(&b);
    PQfinish(c);
    if (from_file)
        fclose(in);
    return status;
}
