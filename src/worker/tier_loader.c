/* worker/tier_loader.c — loads windows into the rank tier; see tier_loader.h. */
#include "worker/tier_loader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "obs/log.h"
#include "store/pg_pool.h"
#include "store/tier_load.h"
#include "util/alloc.h"
#include "util/clock.h"

/* A load reads a window of millions in chunks; each FETCH is bounded, not the whole load. */
#define LOAD_STATEMENT_TIMEOUT_MS 60000

struct tier_loader {
    rank_tier_t *tier;
    char *conninfo;
    int connect_timeout_s;
    int64_t idle_ms;
    atomic_bool stopping;
    pthread_t thread;
};

/* A load under way: the index it fills (seen by no other thread until it is installed). */
typedef struct {
    tier_loader_t *loader;
    rank_index_t *ix;
    bool too_big; /* it passed the tier's budget: stopped there */
} load_t;

static void add_row(void *arg, const char *player, size_t player_len, int64_t sort_key, int64_t achieved_ms,
                    const char *metadata, size_t metadata_len)
{
    ri_append(((load_t *)arg)->ix, player, player_len, sort_key, achieved_ms, metadata, metadata_len);
}

/* Checked between chunks of rows: a stop, or an index already past the whole budget (the rest
 * of the scan would be thrown away). */
static bool cancelled(void *arg)
{
    load_t *load = arg;
    if (ri_bytes(load->ix) > rank_tier_budget(load->loader->tier))
        load->too_big = true;
    return load->too_big || atomic_load(&load->loader->stopping);
}

static void *loader_main(void *arg)
{
    tier_loader_t *l = arg;
    PGconn *c = NULL;
    while (!atomic_load(&l->stopping)) {
        int64_t gen, day;
        uint64_t token;
        if (!rank_tier_next_load(l->tier, 1000, clock_wall_ms(), l->idle_ms, &gen, &day, &token))
            continue;
        if (c && PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = NULL;
        }
        char err[256];
        if (!c)
            c = pg_connect(l->conninfo, LOAD_STATEMENT_TIMEOUT_MS, l->connect_timeout_s, err, sizeof err);
        if (!c) {
            log_warn(NULL, "rank tier: cannot reach the primary to load a window: %s", err);
            rank_tier_load_failed(l->tier, gen, day, token);
            continue;
        }
        int64_t started = clock_mono_ms(), seq = 0;
        rank_index_t *ix = ri_new();
        load_t load = {l, ix, false};
        tier_load_sink_t sink = {.row = add_row, .cancelled = cancelled, .arg = &load};
        q_status_t st = tier_load_window(c, gen, day, &sink, &seq);
        if (st != Q_OK) {
            if (load.too_big)
                rank_tier_load_too_big(l->tier, gen, day, token, ri_bytes(ix));
            else
                rank_tier_load_failed(l->tier, gen, day, token);
            ri_free(ix);
            continue;
        }
        rank_tier_note_load(l->tier, clock_mono_ms() - started, ri_count(ix));
        log_info(NULL, "rank tier: loaded window %lld/%lld at transaction %lld: %lld players, %zu bytes, %lld ms",
                 (long long)gen, (long long)day, (long long)seq, (long long)ri_count(ix), ri_bytes(ix),
                 (long long)(clock_mono_ms() - started));
        rank_tier_install(l->tier, gen, day, token, ix, seq);
    }
    if (c)
        PQfinish(c);
    return NULL;
}

tier_loader_t *tier_loader_start(rank_tier_t *tier, const char *conninfo, int connect_timeout_s, int64_t idle_ms)
{
    if (!tier)
        return NULL;
    tier_loader_t *l = xcalloc(1, sizeof *l);
    l->tier = tier;
    l->conninfo = xstrdup(conninfo);
    l->connect_timeout_s = connect_timeout_s;
    l->idle_ms = idle_ms;
    if (pthread_create(&l->thread, NULL, loader_main, l) != 0) {
        log_error(NULL, "cannot start the rank tier's loader");
        free(l->conninfo);
        free(l);
        return NULL;
    }
    return l;
}

void tier_loader_stop(tier_loader_t *l)
{
    if (!l)
        return;
    atomic_store(&l->stopping, true);
    rank_tier_wake(l->tier);
    pthread_join(l->thread, NULL);
    free(l->conninfo);
    free(l);
}
