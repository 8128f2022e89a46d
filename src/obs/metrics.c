/* obs/metrics.c — lock-free counters and histograms, rendered for Prometheus. */
#include "obs/metrics.h"

#include <stdatomic.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>

#include "util/alloc.h"
#include "util/heap.h"

static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define N_BOUNDS (sizeof bounds / sizeof *bounds)

typedef struct {
    atomic_uint_fast64_t by_class[5];       /* 1xx..5xx */
    atomic_uint_fast64_t buckets[N_BOUNDS]; /* not cumulative; summed when rendered */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
} route_metrics_t;

struct metrics {
    route_metrics_t routes[METRICS_ROUTES_MAX];
    atomic_uint_fast64_t counters[METRIC_COUNTERS];
};

static const char *const counter_names[METRIC_COUNTERS][2] = {
    {"rankd_submissions_total", "Submissions accepted and committed."},
    {"rankd_reads_redis_total", "Ranked reads answered from Redis."},
    {"rankd_reads_postgres_total", "Ranked reads answered from PostgreSQL."},
    {"rankd_reads_tier_total", "Ranked reads answered from the in-process rank tier (cache.rank_tier)."},
    {"rankd_redis_cold_reads_total", "Reads that found a Redis window cold."},
    {"rankd_redis_cold_waits_total", "Reads of a cold window that waited their turn behind another read of it."},
    {"rankd_http_unavailable_total", "Requests answered 503 (a store down or busy): the 5xx the API documents."},
    {"rankd_http_encoded_off_loop_total", "Large answers compressed on the encoder thread, not on an event loop."},
    {"rankd_auth_failures_total", "Requests whose key is no configured key (answered 401, or 429 when throttled)."},
    {"rankd_auth_throttled_total", "Requests with a wrong key, or strong reads without the privilege, refused 429: their "
                                   "address was refused too often (limits.failed_auths_per_s)."},
    {"rankd_strong_forbidden_total", "consistency=strong reads without a write or admin key (answered 403, or 429 when "
                                     "throttled)."},
    {"rankd_player_tokens_accepted_total", "Requests authenticated by a player token (minted, or of a trusted issuer)."},
    {"rankd_player_tokens_refused_total", "Requests whose bearer was neither a key nor a valid, unrevoked player token "
                                          "(answered 401, or 429 when throttled)."},
    {"rankd_player_tokens_minted_total", "Player tokens minted by POST /v1/players/{player}/tokens."},
    {"rankd_tournament_joins_total", "Joins that took a place in a tournament's slot."},
    {"rankd_tournament_joins_again_total", "Joins of a player who had joined the slot already (answered as the first)."},
    {"rankd_tournament_full_total", "Joins, and new players' submissions, refused 409 tournament_full."},
    {"rankd_tournament_refusals_total", "Submissions a tournament's rules refused (409 not_active, not_joined, "
                                        "attempts_exhausted, tournament_full)."},
};

metrics_t *metrics_new(void)
{
    return xcalloc(1, sizeof(metrics_t));
}

void metrics_free(metrics_t *m)
{
    free(m);
}

void metrics_observe(metrics_t *m, int route, int status, double seconds)
{
    if (!m || route < 0 || route >= METRICS_ROUTES_MAX)
        return;
    route_metrics_t *r = &m->routes[route];
    int cls = status / 100 - 1;
    if (cls >= 0 && cls < 5)
        atomic_fetch_add_explicit(&r->by_class[cls], 1, memory_order_relaxed);
    if (status == 503)
        atomic_fetch_add_explicit(&m->counters[METRIC_HTTP_UNAVAILABLE], 1, memory_order_relaxed);
    for (size_t i = 0; i < N_BOUNDS; i++) {
        if (seconds <= bounds[i]) {
            atomic_fetch_add_explicit(&r->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void metrics_add(metrics_t *m, metric_counter_t which, uint64_t n)
{
    if (m)
        atomic_fetch_add_explicit(&m->counters[which], n, memory_order_relaxed);
}

void metrics_render(metrics_t *m, buf_t *o, const char *(*route_name)(int), int n_routes)
{
    buf_puts(o, "# HELP rankd_http_requests_total HTTP requests answered, by route and status class.\n"
                "# TYPE rankd_http_requests_total counter\n");
    for (int i = 0; i < n_routes && i < METRICS_ROUTES_MAX; i++) /* 0: no route matched */
        for (int c = 0; c < 5; c++) {
            uint64_t v = atomic_load(&m->routes[i].by_class[c]);
            if (v)
                buf_printf(o, "rankd_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n", route_name(i), c + 1,
                           (unsigned long long)v);
        }
    buf_puts(o, "# HELP rankd_http_request_duration_seconds Time from request headers to response, by route.\n"
                "# TYPE rankd_http_request_duration_seconds histogram\n");
    for (int i = 0; i < n_routes && i < METRICS_ROUTES_MAX; i++) /* 0: no route matched */ {
        route_metrics_t *r = &m->routes[i];
        uint64_t count = atomic_load(&r->count);
        if (!count)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < N_BOUNDS; b++) {
            cum += atomic_load(&r->buckets[b]);
            buf_printf(o, "rankd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", route_name(i),
                       bounds[b], (unsigned long long)cum);
        }
        buf_printf(o, "rankd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", route_name(i),
                   (unsigned long long)count);
        buf_printf(o, "rankd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_name(i),
                   (double)atomic_load(&r->sum_us) / 1e6);
        buf_printf(o, "rankd_http_request_duration_seconds_count{route=\"%s\"} %llu\n", route_name(i),
                   (unsigned long long)count);
    }
    for (int c = 0; c < METRIC_COUNTERS; c++)
        buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_names[c][0], counter_names[c][1],
                   counter_names[c][0], counter_names[c][0], (unsigned long long)atomic_load(&m->counters[c]));
}

void metrics_render_heap(buf_t *out)
{
    size_t in_use, kept;
    if (!heap_stats(&in_use, &kept))
        return; /* a sanitizer's allocator serves malloc and says nothing */
    buf_printf(out,
               "# HELP rankd_heap_in_use_bytes Heap bytes allocated and not freed (mmapped blocks included).\n"
               "# TYPE rankd_heap_in_use_bytes gauge\nrankd_heap_in_use_bytes %zu\n"
               "# HELP rankd_heap_free_bytes Heap bytes freed but kept resident by the allocator.\n"
               "# TYPE rankd_heap_free_bytes gauge\nrankd_heap_free_bytes %zu\n",
               in_use, kept);
}

/* Seconds since the epoch at which the system booted (/proc/stat "btime"), 0 when unknown. */
static long long boot_time_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    long long bt = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    fclose(f);
    return bt;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the descriptor opendir itself holds */
}

void metrics_render_process(buf_t *out)
{
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    char stat[1024];
    size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f)
        fclose(f);
    stat[n] = '\0';
    /* Fields after the command name, which may hold spaces and parentheses: from the last ')'. */
    const char *p = strrchr(stat, ')');
    unsigned long utime = 0, stime = 0;
    unsigned long long start_ticks = 0;
    long rss_pages = 0;
    bool ok = p && ticks > 0 &&
              sscanf(p + 2, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %lu %lu %*s %*s %*s %*s %*s %*s %llu %*s %ld",
                     &utime, &stime, &start_ticks, &rss_pages) == 4;
    if (ok) {
        buf_printf(out,
                   "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                   "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                   "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                   "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lld\n",
                   (double)(utime + stime) / (double)ticks, (long long)rss_pages * page);
        long long boot = boot_time_s();
        if (boot > 0)
            buf_printf(out,
                       "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                       "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                       (double)boot + (double)start_ticks / (double)ticks);
    }
    long fds = count_fds();
    if (fds >= 0)
        buf_printf(out,
                   "# HELP process_open_fds Number of open file descriptors.\n"
                   "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n", fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        buf_printf(out,
                   "# HELP process_max_fds Maximum number of open file descriptors.\n"
                   "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
}
