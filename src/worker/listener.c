/* worker/listener.c — LISTEN rankd_l1 and invalidate the response cache. */
#include "worker/listener.h"

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/notice.h"
#include "obs/log.h"
#include "store/pg_pool.h"
#include "store/revocations.h"
#include "util/alloc.h"
#include "util/clock.h"

/* A heartbeat that has not come back after this long means the session stalled without TCP
 * telling (keepalives take ~25 s, and a proxy that holds the bytes answers them): it is dropped
 * and made again. */
#define HEARTBEAT_LOST_MS 10000

struct listener {
    pthread_t thread;
    atomic_bool stopping;
    char *conninfo;
    int connect_timeout_s;
    l1_t *l1;               /* NULL without a response cache */
    pg_router_t *router;
    board_catalog_t *catalog; /* NULL: none */
    redis_pool_t *redis;      /* NULL: none */
    rank_tier_t *tier;        /* NULL: none */
    revocations_t *revocations; /* players' token revocations, kept current; NULL: none */
    int heartbeat_ms;         /* a heartbeat this often while the tier holds a window; 0: none */
    /* this thread's own */
    char channel[48];         /* the session's own channel, for its heartbeats */
    int64_t hb_sent_ms;       /* monotonic ms the heartbeat in flight was sent; 0: none */
    int64_t hb_last_ms;       /* when the last one was sent */
    listener_sink_t sink;     /* heard: NULL for none */
};

/* One line: "W gen day old_sk|- old_ms|- new_sk new_ms player", "D gen day sk ms player" (a
 * player's deletion), "P gen day", "R gen day" (Redis missed a commit), "B gen", or "V" (a view
 * refresh). */
static void apply_line(l1_t *l1, const char *line)
{
    notice_change_t d;
    if (line[0] == 'D') {
        if (notice_parse_change(line, strlen(line), &d) && d.removed) {
            /* Every answer of the window shows its total, which fell: each goes (those after the
             * player's position also showed ranks that moved up), and only the window's. */
            order_pos_t o;
            order_pos_set(&o, d.old_sort_key, d.old_ms, d.player, d.player_len);
            l1_invalidate(l1, d.gen, d.day, &o, NULL, true);
        } else {
            l1_clear(l1); /* not understood: be safe */
        }
        return;
    }
    long long gen = 0, day = 0, nsk = 0, nms = 0;
    char osk[24], oms[24], player[PLAYER_ID_MAX + 1];
    if (line[0] == 'W' && sscanf(line, "W %lld %lld %23s %23s %lld %lld %64s", &gen, &day, osk, oms, &nsk, &nms,
                                 player) == 7) {
        order_pos_t o, n;
        bool existed = strcmp(osk, "-") != 0;
        order_pos_set(&n, nsk, nms, player, strlen(player));
        if (existed)
            order_pos_set(&o, strtoll(osk, NULL, 10), strtoll(oms, NULL, 10), player, strlen(player));
        l1_invalidate(l1, gen, day, existed ? &o : NULL, &n, !existed);
    } else if ((line[0] == 'P' || line[0] == 'R') && sscanf(line + 1, " %lld %lld", &gen, &day) == 2) {
        /* R: an answer read from Redis since the change's W lines were heard lacks it. */
        l1_invalidate(l1, gen, day, NULL, NULL, true);
    } else if (line[0] == 'B' && sscanf(line, "B %lld", &gen) == 1) {
        l1_invalidate_board(l1, gen);
    } else if (line[0] == 'S') {
        /* a transaction's number, for the rank tier (feed_tier) */
    } else if (strcmp(line, "V") == 0) {
        /* The views were refreshed: cached statistics expire with their max-age, and replicas
         * behind the refresh are kept from reads by note_boards (every board). */
    } else {
        l1_clear(l1); /* not understood: be safe */
    }
}

/* The board generation a line names ("W gen …", "D gen …", "P gen …", "B gen"), 0 when none. */
static int64_t line_gen(const char *line)
{
    long long gen = 0;
    if ((line[0] == 'W' || line[0] == 'D' || line[0] == 'P' || line[0] == 'R' || line[0] == 'B' || line[0] == 'S') &&
        sscanf(line + 1, " %lld", &gen) == 1 && gen > 0)
        return gen;
    return 0;
}

/* A deleted board ("B gen") leaves the catalog, so that it is not served while PostgreSQL is down. */
static void forget_deleted(board_catalog_t *catalog, const char *payload)
{
    for (const char *p = payload; *p;) {
        long long gen = 0;
        if (p[0] == 'B' && sscanf(p, "B %lld", &gen) == 1 && gen > 0)
            board_catalog_forget_gen(catalog, gen);
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
}

/* A window changed wholesale ("P gen day": an import) may have changed in PostgreSQL without its
 * Redis copy (an import made where Redis could not be reached), and one another instance could
 * not apply a commit of to Redis ("R gen day") misses it there, while this instance may still
 * reach Redis and trust the window: it reads it from PostgreSQL until the rebuilder has compared
 * the two again. A numbered change ("S gen day seq …") is a number the window's Redis mark must
 * be seen to reach (redis_window_heard). */
static void distrust_windows(redis_pool_t *redis, const char *payload)
{
    for (const char *p = payload; *p;) {
        long long gen = 0, day = 0;
        const char *nl = strchr(p, '\n');
        int64_t sgen, sday, seq;
        int part, parts;
        if ((p[0] == 'P' || p[0] == 'R') && sscanf(p + 1, " %lld %lld", &gen, &day) == 2 && gen > 0)
            redis_window_distrust(redis, gen, day);
        else if (p[0] == 'S' && notice_parse_seq(p, nl ? (size_t)(nl - p) : strlen(p), &sgen, &sday, &seq, &part, &parts))
            redis_window_heard(redis, sgen, sday, seq);
        if (!nl)
            break;
        p = nl + 1;
    }
}

/* The rank tier's part of a notice: a numbered part of a transaction's changes to one window
 * (a payload that begins with its S line: a write's W lines, a deletion's D line), windows
 * changed wholesale, boards deleted. Un-numbered W and D lines (hints sent again after the Redis
 * update, an archive's D lines) are for the response cache only. */
static void feed_tier(rank_tier_t *tier, const char *payload)
{
    if (payload[0] == 'S') {
        const char *nl = strchr(payload, '\n');
        size_t head = nl ? (size_t)(nl - payload) : strlen(payload);
        int64_t gen, day, seq;
        int part, parts;
        if (notice_parse_seq(payload, head, &gen, &day, &seq, &part, &parts)) {
            const char *body = nl ? nl + 1 : payload + head;
            rank_tier_heard(tier, gen, day, seq, part, parts, body, strlen(body));
        } else {
            rank_tier_lost(tier); /* not understood: start afresh */
            rank_tier_listening(tier);
        }
        return;
    }
    for (const char *p = payload; *p;) {
        long long gen = 0, day = 0;
        if (p[0] == 'P' && sscanf(p, "P %lld %lld", &gen, &day) == 2)
            rank_tier_window_changed(tier, gen, day);
        else if (p[0] == 'B' && sscanf(p, "B %lld", &gen) == 1)
            rank_tier_board_deleted(tier, gen);
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
}

/* Record `lsn` for every board the payload names. */
static void note_boards(pg_router_t *router, const char *payload, uint64_t lsn)
{
    for (const char *p = payload; *p;) {
        int64_t gen = line_gen(p);
        pg_router_saw_lsn(router, gen ? gen : PG_KEY_ALL, lsn);
        if (p[0] == 'B')
            pg_router_saw_lsn(router, PG_KEY_CATALOG, lsn);
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
}

void listener_apply(l1_t *l1, const char *payload)
{
    const char *p = payload;
    char line[256];
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n >= sizeof line)
            n = sizeof line - 1;
        memcpy(line, p, n);
        line[n] = '\0';
        apply_line(l1, line);
        if (!nl)
            break;
        p = nl + 1;
    }
}

static void note_revocation(void *arg, const char *player, size_t len, int64_t ms)
{
    revocations_note(arg, player, len, ms);
}

static PGconn *listen_connect(listener_t *l)
{
    char err[512];
    PGconn *c = pg_connect(l->conninfo, 0, l->connect_timeout_s, err, sizeof err);
    if (!c)
        return NULL;
    /* A channel no other session listens on (this process, this session): its heartbeats
     * reach no other instance. */
    snprintf(l->channel, sizeof l->channel, "rankd_hb_%d_%llx", (int)getpid(),
             (unsigned long long)clock_mono_ms());
    l->hb_sent_ms = l->hb_last_ms = 0;
    char sql[96];
    snprintf(sql, sizeof sql, "LISTEN rankd_l1; LISTEN " REVOCATIONS_CHANNEL "; LISTEN %s", l->channel);
    PGresult *r = PQexec(c, sql);
    bool ok = pg_ok(r);
    PQclear(r);
    /* Listening first, then the table: a revocation committed in between is in one or the other. */
    if (ok && l->revocations) {
        ok = q_revocations_load(c, note_revocation, l->revocations) == Q_OK;
        if (ok)
            revocations_mark_loaded(l->revocations);
    }
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* The connection is gone: notifications (and other instances' writes) may be missed from now. */
static void lose(listener_t *l, PGconn **c)
{
    log_warn(NULL, "cache invalidation listener lost its connection");
    PQfinish(*c);
    *c = NULL;
    rank_tier_lost(l->tier);
    if (l->l1)
        l1_clear(l->l1);
    if (l->sink.heard)
        l->sink.heard(l->sink.arg, "?");
}

/* Send a heartbeat: a NOTIFY to the session's own channel, carrying when it was sent. Its
 * answer is read by heartbeat_answers, and the notice itself comes back after every notice
 * committed before it. False when it cannot be sent. */
static bool heartbeat_send(listener_t *l, PGconn *c)
{
    int64_t now = clock_mono_ms();
    char sql[96];
    snprintf(sql, sizeof sql, "NOTIFY %s, '%lld'", l->channel, (long long)now);
    if (!PQsendQuery(c, sql))
        return false;
    l->hb_sent_ms = l->hb_last_ms = now;
    return true;
}

/* Read the heartbeat's answer when it is in (libpq keeps a query's result until it is taken);
 * false when it failed. */
static bool heartbeat_answers(PGconn *c)
{
    while (!PQisBusy(c)) {
        PGresult *r = PQgetResult(c);
        if (!r)
            return true;
        bool ok = pg_ok(r);
        if (!ok)
            log_warn(NULL, "the invalidation listener's heartbeat failed: %s", PQresultErrorMessage(r));
        PQclear(r);
        if (!ok)
            return false;
    }
    return true;
}

/* A heartbeat heard back (payload: when it was sent): everything committed before then is in. */
static void heartbeat_heard(listener_t *l, const char *payload)
{
    int64_t sent = strtoll(payload, NULL, 10);
    rank_tier_caught_up(l->tier, sent);
    if (sent == l->hb_sent_ms)
        l->hb_sent_ms = 0;
}

/* Handle every notification libpq holds: the WAL position for the boards they name first, then
 * the cached answers they drop (a read after the drop must not go to a replica without these
 * writes). False when the connection broke meanwhile. */
static bool drain(listener_t *l, PGconn *c)
{
    bool track = pg_router_has_replicas(l->router);
    for (;;) {
        PGnotify *batch[64];
        size_t nb = 0;
        PGnotify *n;
        while (nb < sizeof batch / sizeof *batch && (n = PQnotifies(c)))
            batch[nb++] = n;
        if (nb == 0)
            return true;
        /* 0 when the connection broke: the caller reconnects, which records the primary's
         * position for every board before anything is read again. */
        uint64_t lsn = track ? pg_wal_lsn(c) : 0;
        for (size_t i = 0; i < nb; i++) {
            if (strcmp(batch[i]->relname, l->channel) == 0) { /* after the notices before it */
                heartbeat_heard(l, batch[i]->extra);
                PQfreemem(batch[i]);
                continue;
            }
            if (strcmp(batch[i]->relname, REVOCATIONS_CHANNEL) == 0) { /* "<ms> <player>" */
                int64_t ms;
                const char *player;
                size_t len;
                if (l->revocations && revocation_notice_parse(batch[i]->extra, &ms, &player, &len))
                    revocations_note(l->revocations, player, len, ms);
                PQfreemem(batch[i]);
                continue;
            }
            if (track)
                note_boards(l->router, batch[i]->extra, lsn);
            if (l->catalog)
                forget_deleted(l->catalog, batch[i]->extra);
            if (l->redis) /* before the cache drops: a read after that must not refill it from Redis */
                distrust_windows(l->redis, batch[i]->extra);
            if (l->tier) /* before the cache drops too, for the same reason */
                feed_tier(l->tier, batch[i]->extra);
            if (l->l1)
                listener_apply(l->l1, batch[i]->extra);
            if (l->sink.heard) /* after the caches dropped what it changed */
                l->sink.heard(l->sink.arg, batch[i]->extra);
            PQfreemem(batch[i]);
        }
        if (PQstatus(c) != CONNECTION_OK)
            return false;
    }
}

static void *listener_main(void *arg)
{
    listener_t *l = arg;
    PGconn *c = NULL;
    bool lost = false;
    while (!atomic_load(&l->stopping)) {
        if (!c) {
            c = listen_connect(l);
            if (!c) {
                if (!lost)
                    log_warn(NULL, "cache invalidation listener cannot connect; retrying");
                lost = true;
                for (int i = 0; i < 10 && !atomic_load(&l->stopping); i++)
                    usleep(100000);
                continue;
            }
            if (lost) {
                /* Writes may have been missed too: first keep every board's reads off replicas
                 * that have not replayed everything up to now, then drop what was cached. */
                uint64_t lsn = pg_router_has_replicas(l->router) ? pg_wal_lsn(c) : 1;
                if (lsn == 0) { /* cannot tell where the primary is: not back yet */
                    PQfinish(c);
                    c = NULL;
                    for (int i = 0; i < 10 && !atomic_load(&l->stopping); i++)
                        usleep(100000);
                    continue;
                }
                pg_router_saw_lsn(l->router, PG_KEY_ALL, lsn);
                l1_clear(l->l1);
                log_info(NULL, "cache invalidation listener reconnected; cache cleared");
            }
            lost = false;
            rank_tier_listening(l->tier);
        }
        if (PQstatus(c) != CONNECTION_OK || PQsocket(c) < 0) {
            lose(l, &c);
            lost = true;
            continue;
        }
        if (l->heartbeat_ms > 0 && l->tier) {
            int64_t now = clock_mono_ms();
            if (l->hb_sent_ms && now - l->hb_sent_ms > HEARTBEAT_LOST_MS) {
                log_warn(NULL, "cache invalidation listener: its heartbeat did not come back in %d ms; reconnecting",
                         HEARTBEAT_LOST_MS);
                lose(l, &c);
                lost = true;
                continue;
            }
            /* Only while the tier holds a window: each heartbeat is a transaction (an xid). */
            if (!l->hb_sent_ms && now - l->hb_last_ms >= l->heartbeat_ms && rank_tier_holds_any(l->tier) &&
                !heartbeat_send(l, c)) {
                lose(l, &c);
                lost = true;
                continue;
            }
        }
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        int wait_ms = l->heartbeat_ms > 0 && l->heartbeat_ms / 2 < 200 ? l->heartbeat_ms / 2 : 200;
        int rc = poll(&pfd, 1, wait_ms);
        if (rc < 0)
            continue;
        if ((rc > 0 && !PQconsumeInput(c)) || !heartbeat_answers(c) || !drain(l, c)) {
            lose(l, &c);
            lost = true;
        }
    }
    if (c)
        PQfinish(c);
    return NULL;
}

listener_t *listener_start(const char *conninfo, int connect_timeout_s, l1_t *l1, pg_router_t *router,
                           board_catalog_t *catalog, redis_pool_t *redis, rank_tier_t *tier, revocations_t *revocations,
                           int heartbeat_ms, const listener_sink_t *sink)
{
    if (!l1 && !catalog && !redis && !tier && !revocations && !pg_router_has_replicas(router) && !sink)
        return NULL;
    listener_t *l = xcalloc(1, sizeof *l);
    l->conninfo = xstrdup(conninfo);
    l->connect_timeout_s = connect_timeout_s;
    l->l1 = l1;
    l->router = router;
    l->catalog = catalog;
    l->redis = redis;
    l->tier = tier;
    l->revocations = revocations;
    l->heartbeat_ms = heartbeat_ms;
    if (sink)
        l->sink = *sink;
    if (pthread_create(&l->thread, NULL, listener_main, l) != 0) {
        log_error(NULL, "cannot start the cache invalidation listener");
        free(l->conninfo);
        free(l);
        return NULL;
    }
    return l;
}

void listener_stop(listener_t *l)
{
    if (!l)
        return;
    atomic_store(&l->stopping, true);
    pthread_join(l->thread, NULL);
    free(l->conninfo);
    free(l);
}
