/*
 * api/tier_verify.c — POST /v1/admin/verify-tier[?board=]: this instance's rank tier checked
 * against PostgreSQL, window by window (cache/rank_tier.h).
 *
 * Each window the tier holds is compared at one transaction number: the digest of its standings
 * in rank order (player, position, metadata) as the tier holds them at number n, against the
 * same digest of the primary's standings read in one snapshot whose number is n too. While
 * writes move the window on, the two are read again (the tier catches up within a notice's
 * delivery); a window that never meets its snapshot within the tries is reported as unsettled,
 * not as wrong. Runs on the admin thread: it reads PostgreSQL.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/app.h"
#include "cache/rank_tier.h"
#include "core/window.h"
#include "obs/log.h"
#include "store/pg_pool.h"
#include "store/queries.h"
#include "store/tier_load.h"
#include "util/alloc.h"
#include "util/buf.h"

#define TRIES 50      /* readings of a window whose number moves */
#define TRY_GAP_US 20000

typedef struct {
    EVP_MD_CTX *md;
    int64_t players;
} digest_t;

static void digest_begin(digest_t *d)
{
    d->md = EVP_MD_CTX_new();
    d->players = 0;
    if (d->md)
        EVP_DigestInit_ex(d->md, EVP_sha256(), NULL);
}

/* One standing into the digest: the id, its position, and its metadata when it has any. */
static void digest_row(void *arg, const char *player, size_t player_len, int64_t sort_key, int64_t achieved_ms,
                       const char *metadata, size_t metadata_len)
{
    digest_t *d = arg;
    int64_t head[3] = {sort_key, achieved_ms, metadata ? (int64_t)metadata_len : -1};
    if (d->md) {
        EVP_DigestUpdate(d->md, player, player_len);
        EVP_DigestUpdate(d->md, "", 1);
        EVP_DigestUpdate(d->md, head, sizeof head);
        if (metadata)
            EVP_DigestUpdate(d->md, metadata, metadata_len);
    }
    d->players++;
}

/* The digest's bytes (32) into out; frees the context. False when hashing was not possible. */
static bool digest_end(digest_t *d, unsigned char out[32])
{
    unsigned int n = 0;
    bool ok = d->md && EVP_DigestFinal_ex(d->md, out, &n) == 1 && n == 32;
    EVP_MD_CTX_free(d->md);
    d->md = NULL;
    return ok;
}

typedef struct {
    digest_t d;
    int64_t seq;
} held_t;

static void digest_index(const rank_index_t *ix, int64_t seq, void *arg)
{
    held_t *h = arg;
    h->seq = seq;
    ri_entry_t chunk[256];
    for (int64_t from = 0;;) {
        size_t n = ri_range(ix, from, 256, chunk);
        for (size_t i = 0; i < n; i++)
            digest_row(&h->d, chunk[i].player, chunk[i].player_len, chunk[i].sort_key, chunk[i].achieved_ms,
                       chunk[i].metadata, chunk[i].metadata_len);
        if (n < 256)
            break;
        from += (int64_t)n;
    }
}

typedef enum { TV_AGREES, TV_DIFFERS, TV_UNSETTLED, TV_NOT_HELD, TV_FAILED } tv_outcome_t;

static const char *const outcome_names[] = {"agrees", "differs", "unsettled", "not_held", "failed"};

/* One window: the tier's digest and PostgreSQL's at the same number. */
static tv_outcome_t verify_window(app_t *app, PGconn *c, int64_t gen, int64_t day, int64_t *seq, int64_t *players)
{
    for (int t = 0; t < TRIES; t++) {
        held_t held;
        digest_begin(&held.d);
        bool is_held = rank_tier_inspect(app->tier, gen, day, digest_index, &held);
        unsigned char mine[32], theirs[32];
        bool ok = digest_end(&held.d, mine);
        if (!is_held)
            return TV_NOT_HELD;
        digest_t pg;
        digest_begin(&pg);
        tier_load_sink_t sink = {.row = digest_row, .cancelled = NULL, .arg = &pg};
        int64_t pg_seq = 0;
        q_status_t st = tier_load_window(c, gen, day, &sink, &pg_seq);
        ok = digest_end(&pg, theirs) && ok;
        if (st != Q_OK || !ok)
            return TV_FAILED;
        *seq = held.seq;
        *players = held.d.players;
        if (pg_seq == held.seq) {
            if (memcmp(mine, theirs, 32) == 0 && pg.players == held.d.players)
                return TV_AGREES;
            log_error(NULL, "rank tier: window %" PRId64 "/%" PRId64 " at transaction %" PRId64
                            " holds %" PRId64 " standings, PostgreSQL %" PRId64 ", and they differ",
                      gen, day, held.seq, held.d.players, pg.players);
            return TV_DIFFERS;
        }
        usleep(TRY_GAP_US); /* the window moved between the two readings */
    }
    return TV_UNSETTLED;
}

static int verify_tier(app_t *app, const char *only, int64_t now_ms, http_req_t *req)
{
    PGconn *c = pg_pool_acquire(app->primary, 2000);
    if (!c)
        return http_unavailable(req, "the database");
    board_t *boards;
    size_t n;
    q_status_t st;
    int rc = api_admin_boards(c, only, req, &boards, &n, &st);
    bool failed = false;
    size_t counts[5] = {0};
    buf_t windows;
    buf_init(&windows);
    for (size_t i = 0; !rc && i < n; i++) {
        int64_t days[2];
        size_t n_days = window_hot_days(board_window_rule(&boards[i]), boards[i].created_ms, now_ms, days);
        for (size_t k = 0; k < n_days; k++) {
            int64_t seq = 0, players = 0;
            tv_outcome_t o = verify_window(app, c, boards[i].gen, days[k], &seq, &players);
            counts[o]++;
            failed |= o == TV_FAILED;
            if (o == TV_NOT_HELD)
                continue;
            char win[11];
            window_format_day(days[k], win);
            buf_printf(&windows, "%s{\"board\":\"%s\",\"window\":\"%s\",\"seq\":%" PRId64 ",\"players\":%" PRId64
                                 ",\"outcome\":\"%s\"}",
                       windows.len ? "," : "", boards[i].id, win, seq, players, outcome_names[o]);
        }
    }
    pg_pool_release(app->primary, c, failed || st == Q_UNAVAILABLE);
    if (!rc) {
        buf_printf(&req->out, "{\"windows\":[%s],\"agrees\":%zu,\"differs\":%zu,\"unsettled\":%zu,\"failed\":%zu}",
                   windows.data ? windows.data : "", counts[TV_AGREES], counts[TV_DIFFERS], counts[TV_UNSETTLED],
                   counts[TV_FAILED]);
        rc = http_ok(req, 200);
    }
    buf_free(&windows);
    api_admin_boards_free(boards, n);
    return rc;
}

int api_admin_verify_tier(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    const char *only;
    int rc = api_admin_board_param(req, &only);
    if (rc)
        return rc;
    if (!app->tier)
        return http_error(req, 409, "conflict", NULL, "the rank tier is off on this instance (cache.rank_tier)");
    return api_run_admin(app, req, verify_tier, only);
}
