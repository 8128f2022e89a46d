/* store/pg_router.c — nodes, their health, and the choice of a node per statement; see pg_router.h. */
#include "store/pg_error.h"
#include "store/pg_router.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"
#include "store/pg_deadline.h"
#include "util/alloc.h"
#include "util/clock.h"

#define NODES_MAX 33 /* the primary and up to 32 replicas */
#define HEAD_HISTORY_MIN 64 /* primary positions remembered at least */

struct pg_node {
    pg_router_t *router;
    char name[32];
    pg_node_role_t role;
    char *conninfo;
    pg_pool_t *pool;
    int weight;
    pthread_t thread;
    bool thread_started;

    /* Under router->lock. */
    pg_node_state_t state;
    int probe_fails, probe_goods;  /* in a row */
    uint64_t lsn;                  /* primary: current WAL LSN; replica: replay LSN */
    int64_t timeline;              /* primary: its timeline; replica: the one it receives; 0 unknown */
    int64_t lag_ms, lag_bytes;
    bool probed;                   /* at least once */
    pg_breaker_state_t breaker;
    int call_fails;                /* in a row */
    int64_t open_until_ms;
    bool half_open_taken;          /* the one call let through to decide */
    bool opened_by_probes;         /* opened by failed health checks (a good one may close it), not by calls */
    int in_flight;
    int current_weight;            /* smooth weighted round robin */

    atomic_ullong queries, errors, reads_routed;
};

typedef struct {
    int64_t key;
    uint64_t lsn;
    bool used;
} lsn_slot_t;

struct pg_router {
    const rankd_config_t *cfg;
    pthread_mutex_t lock;          /* guards the nodes' health fields, the LSN table, `rr` */
    pthread_cond_t stop_cond;
    pthread_cond_t probed_cond;    /* a node was probed for the first time */
    bool stopping;
    pg_node_t *nodes[NODES_MAX];   /* [0] is the primary */
    size_t n_nodes;
    unsigned rr;
    lsn_slot_t *lsns;              /* open addressing, capacity a power of two */
    size_t lsn_cap, lsn_used;
    uint64_t lsn_all;              /* the highest LSN seen for any key */
    uint64_t lsn_floor;            /* noted for PG_KEY_ALL: every key needs at least this */
    struct head_seen {
        int64_t at_ms;             /* monotonic: when the primary was first seen at `lsn` */
        uint64_t lsn;
    } *head;                       /* the primary's last WAL positions, a ring of cap_head */
    size_t cap_head, n_head, next_head;
    atomic_ullong fallback_no_replica, fallback_behind, strong_reads, behind_reads;
    int64_t primary_timeline;      /* the last the primary answered with (0: none yet) */
    void (*on_new_timeline)(void *arg); /* pg_router_on_new_timeline */
    void *on_new_timeline_arg;
};

uint64_t pg_lsn_parse(const char *text)
{
    if (!text)
        return 0;
    char *end;
    unsigned long long hi = strtoull(text, &end, 16);
    if (end == text || *end != '/')
        return 0;
    const char *lo_text = end + 1;
    unsigned long long lo = strtoull(lo_text, &end, 16);
    if (end == lo_text || *end != '\0' || hi > 0xffffffffULL || lo > 0xffffffffULL)
        return 0;
    return (uint64_t)hi << 32 | (uint64_t)lo;
}

const char *pg_node_state_name(pg_node_state_t s)
{
    switch (s) {
    case NODE_UNKNOWN: return "unknown";
    case NODE_OK: return "ok";
    case NODE_LAGGING: return "lagging";
    case NODE_DOWN: return "down";
    }
    return "unknown";
}

const char *pg_breaker_state_name(pg_breaker_state_t b)
{
    return b == BREAKER_OPEN ? "open" : b == BREAKER_HALF_OPEN ? "half_open" : "closed";
}

/* ---------------------------------------------------------------- LSNs seen, per key */

static size_t lsn_hash(int64_t key, size_t cap)
{
    uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 17) & (cap - 1);
}

/* Under r->lock. */
static lsn_slot_t *lsn_slot(pg_router_t *r, int64_t key, bool create)
{
    if (create && (r->lsn_used + 1) * 2 > r->lsn_cap) {
        size_t cap = r->lsn_cap ? r->lsn_cap * 2 : 64;
        lsn_slot_t *old = r->lsns;
        size_t old_cap = r->lsn_cap;
        r->lsns = xcalloc(cap, sizeof *r->lsns);
        r->lsn_cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (!old[i].used)
                continue;
            size_t j = lsn_hash(old[i].key, cap);
            while (r->lsns[j].used)
                j = (j + 1) & (cap - 1);
            r->lsns[j] = old[i];
        }
        free(old);
    }
    if (r->lsn_cap == 0)
        return NULL;
    for (size_t j = lsn_hash(key, r->lsn_cap);; j = (j + 1) & (r->lsn_cap - 1)) {
        if (r->lsns[j].used && r->lsns[j].key == key)
            return &r->lsns[j];
        if (!r->lsns[j].used) {
            if (!create)
                return NULL;
            r->lsns[j].used = true;
            r->lsns[j].key = key;
            r->lsn_used++;
            return &r->lsns[j];
        }
    }
}

void pg_router_saw_lsn(pg_router_t *r, int64_t key, uint64_t lsn)
{
    if (!pg_router_has_replicas(r) || lsn == 0)
        return;
    pthread_mutex_lock(&r->lock);
    if (key == PG_KEY_ALL) {
        if (r->lsn_floor < lsn)
            r->lsn_floor = lsn;
    } else {
        lsn_slot_t *s = lsn_slot(r, key, true);
        if (s->lsn < lsn)
            s->lsn = lsn;
    }
    if (r->lsn_all < lsn)
        r->lsn_all = lsn;
    pthread_mutex_unlock(&r->lock);
}

/* Under r->lock: the LSN a replica must have replayed to answer a read of `key`. */
static uint64_t lsn_needed(pg_router_t *r, int64_t key)
{
    if (key == PG_KEY_ALL)
        return r->lsn_all;
    lsn_slot_t *s = lsn_slot(r, key, false);
    return s && s->lsn > r->lsn_floor ? s->lsn : r->lsn_floor;
}

uint64_t pg_wal_lsn(PGconn *c)
{
    PGresult *res = PQexec(c, PG_COMMITTED_LSN_SQL);
    uint64_t lsn = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 ? pg_lsn_parse(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    return lsn;
}

void pg_router_note_commit(pg_router_t *r, PGconn *c, int64_t key)
{
    if (!pg_router_has_replicas(r))
        return;
    uint64_t lsn = pg_wal_lsn(c);
    char pe[PG_ERROR_MAX];
    if (lsn == 0)
        log_warn(NULL, "cannot read a commit's WAL position (%s); a lagging replica may answer key %" PRId64
                       " without it", pg_error_text(c, NULL, pe, sizeof pe), key);
    pg_router_saw_lsn(r, key, lsn);
}

/* ---------------------------------------------------------------- breaker */

/* Under r->lock: may a call go to `n` now? Takes the half-open turn when it is due. */
static bool breaker_allows(pg_node_t *n, int64_t now)
{
    switch (n->breaker) {
    case BREAKER_CLOSED: return true;
    case BREAKER_OPEN:
        if (now < n->open_until_ms)
            return false;
        log_info(NULL, "postgres %s: circuit breaker half open: one call decides", n->name);
        n->breaker = BREAKER_HALF_OPEN;
        n->half_open_taken = false;
        /* fall through */
    case BREAKER_HALF_OPEN:
        if (n->half_open_taken)
            return false;
        n->half_open_taken = true;
        return true;
    }
    return false;
}

/* Under r->lock: could a call go to `n` now (as breaker_allows, taking nothing)? */
static bool breaker_may(const pg_node_t *n, int64_t now)
{
    switch (n->breaker) {
    case BREAKER_CLOSED: return true;
    case BREAKER_OPEN: return now >= n->open_until_ms;
    case BREAKER_HALF_OPEN: return !n->half_open_taken;
    }
    return false;
}

/* Under r->lock. */
static void breaker_open(pg_node_t *n, int64_t now, const char *why)
{
    if (n->breaker != BREAKER_OPEN)
        log_warn(NULL, "postgres %s: circuit breaker open for %d ms (%s)", n->name,
                 n->router->cfg->pg_breaker_cooldown_ms, why);
    n->breaker = BREAKER_OPEN;
    n->opened_by_probes = false;
    n->open_until_ms = now + n->router->cfg->pg_breaker_cooldown_ms;
}

/* Under r->lock. */
static void breaker_result(pg_node_t *n, bool ok)
{
    if (ok) {
        if (n->breaker != BREAKER_CLOSED)
            log_info(NULL, "postgres %s: circuit breaker closed", n->name);
        n->breaker = BREAKER_CLOSED;
        n->call_fails = 0;
        return;
    }
    n->call_fails++;
    if (n->breaker == BREAKER_HALF_OPEN || n->call_fails >= n->router->cfg->pg_breaker_failures)
        breaker_open(n, clock_mono_ms(), n->breaker == BREAKER_HALF_OPEN ? "the trial call failed" : "calls failed");
}

/* ---------------------------------------------------------------- health */

/* Under r->lock: move `n` to `to`, logging the change once. */
static void set_state(pg_node_t *n, pg_node_state_t to, const char *why)
{
    if (n->state == to)
        return;
    if (to == NODE_OK)
        log_info(NULL, "postgres %s: %s -> ok", n->name, pg_node_state_name(n->state));
    else
        log_warn(NULL, "postgres %s: %s -> %s (%s)", n->name, pg_node_state_name(n->state), pg_node_state_name(to),
                 why);
    n->state = to;
}

typedef struct {
    bool in_recovery;
    uint64_t lsn;           /* current (primary) or replay (replica) */
    int64_t timeline;       /* 0: unknown */
} probe_t;

static const char probe_sql[] =
    "SELECT pg_is_in_recovery(),"
    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END";
/* The timeline: the primary's from its WAL file's name; a standby's, the one it receives, else (no
 * WAL receiver: it follows no primary now) its last restart point's. Reading a standby's WAL
 * receiver needs pg_read_all_stats (or a superuser); when nothing can be read, the timeline is
 * unknown and not compared. */
static const char timeline_sql[] =
    "SELECT CASE WHEN pg_is_in_recovery() THEN"
    " coalesce((SELECT received_tli FROM pg_stat_wal_receiver WHERE received_tli > 0),"
    " (SELECT timeline_id FROM pg_control_checkpoint()))"
    " ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END";

static bool probe(PGconn *c, probe_t *out)
{
    PGresult *res = PQexec(c, probe_sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok) {
        out->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
        out->lsn = pg_lsn_parse(PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    out->timeline = 0;
    if (ok) {
        res = PQexec(c, timeline_sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
            out->timeline = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        ok = PQstatus(c) == CONNECTION_OK;
    }
    return ok;
}

/*
 * Under r->lock: remember where the primary's WAL is now, when it moved. The ring holds more
 * positions than max_lag_ms spans at one a probe, so that a lag past it is always seen; a
 * primary found behind its last position (a failover to a node that had less) starts it again.
 */
static void head_seen(pg_router_t *r, uint64_t lsn, int64_t now)
{
    size_t last = (r->next_head + r->cap_head - 1) % r->cap_head;
    if (r->n_head > 0 && lsn < r->head[last].lsn)
        r->n_head = r->next_head = 0;
    else if (r->n_head > 0 && lsn == r->head[last].lsn)
        return;
    r->head[r->next_head].at_ms = now;
    r->head[r->next_head].lsn = lsn;
    r->next_head = (r->next_head + 1) % r->cap_head;
    if (r->n_head < r->cap_head)
        r->n_head++;
}

/*
 * Under r->lock: how long a replica at `replayed` has lacked WAL the primary had: since the
 * oldest remembered probe of the primary past that position (0 when none is). Measured against
 * the primary's own history, not the time since the replica last replayed a commit, which grows
 * on an idle primary without the replica being behind at all.
 */
static int64_t lag_since(const pg_router_t *r, uint64_t replayed, int64_t now)
{
    int64_t since = now;
    for (size_t i = 0; i < r->n_head; i++)
        if (r->head[i].lsn > replayed && r->head[i].at_ms < since)
            since = r->head[i].at_ms;
    return now - since;
}

/* Under r->lock: a good probe of `n`. */
static void probe_good(pg_node_t *n, const probe_t *p)
{
    pg_router_t *r = n->router;
    const rankd_config_t *cfg = r->cfg;
    n->probe_fails = 0;
    n->probe_goods++;
    /* A breaker the probes opened, a good probe may close; one that calls opened, only a call
     * (its half-open trial) may: the probe's own connection working says nothing of theirs. */
    if (n->breaker == BREAKER_CLOSED || n->opened_by_probes)
        breaker_result(n, true);
    int64_t now = clock_mono_ms();
    n->timeline = p->timeline;
    if (n->role == PG_NODE_PRIMARY) {
        n->lsn = p->lsn;
        n->lag_ms = n->lag_bytes = 0;
        if (p->in_recovery) { /* a standby where the primary should be: no writes there */
            n->probe_goods = 0;
            set_state(n, NODE_DOWN, "the node is in recovery, not a primary");
            return;
        }
        if (p->timeline > 0 && r->primary_timeline > 0 && p->timeline != r->primary_timeline) {
            /* A failover (libpq's multi-host string now names a promoted standby): commits the old
             * primary had and the new one lacks may have been seen (Redis applied them). */
            log_warn(NULL, "postgres %s: the primary is on timeline %lld, it was on %lld (a failover)", n->name,
                     (long long)p->timeline, (long long)r->primary_timeline);
            if (r->on_new_timeline)
                r->on_new_timeline(r->on_new_timeline_arg);
            /* A replica last seen on another timeline answers no read from now, not from its own
             * next probe: one that diverged ahead of the promoted node looks caught up by its
             * position, and a write the new primary takes before that probe would be read there
             * as missing. Its next probe on the new timeline brings it back. */
            for (size_t i = 1; i < r->n_nodes; i++) {
                pg_node_t *rep = r->nodes[i];
                if (rep->timeline > 0 && rep->timeline != p->timeline && rep->state != NODE_DOWN) {
                    char why[96];
                    snprintf(why, sizeof why, "on timeline %lld, the primary now on %lld", (long long)rep->timeline,
                             (long long)p->timeline);
                    rep->probe_goods = 0;
                    set_state(rep, NODE_DOWN, why);
                }
            }
        }
        if (p->timeline > 0)
            r->primary_timeline = p->timeline;
        head_seen(r, p->lsn, now);
    } else {
        n->lsn = p->lsn; /* as it says: a restarted standby may reopen below where it was */
        if (!p->in_recovery) { /* promoted: it no longer follows the primary */
            n->probe_goods = 0;
            set_state(n, NODE_DOWN, "the replica is not in recovery (promoted?)");
            return;
        }
        /* Only against a primary in service now: its timeline, once it fails, is what it was. */
        int64_t primary_tl = r->nodes[0]->state == NODE_OK ? r->nodes[0]->timeline : 0;
        if (p->timeline > 0 && primary_tl > 0 && p->timeline != primary_tl) {
            /* A standby that diverged at a failover (it had WAL the promoted node never got)
             * may look caught up by its position: what it holds is not the primary's. */
            n->probe_goods = 0;
            char why[96];
            snprintf(why, sizeof why, "on timeline %lld, the primary on %lld", (long long)p->timeline,
                     (long long)primary_tl);
            set_state(n, NODE_DOWN, why);
            return;
        }
        uint64_t head = r->nodes[0]->lsn;
        n->lag_bytes = head > n->lsn ? (int64_t)(head - n->lsn) : 0;
        n->lag_ms = lag_since(r, n->lsn, now);
        if (n->lag_ms > cfg->pg_max_lag_ms) {
            n->probe_goods = 0;
            set_state(n, NODE_LAGGING, "replay lag over postgres.max_lag_ms");
            return;
        }
    }
    if (n->state == NODE_UNKNOWN || n->probe_goods >= cfg->pg_healthy_after)
        set_state(n, NODE_OK, "");
}

/* Under r->lock: a failed probe of `n`. */
static void probe_failed(pg_node_t *n, const char *why)
{
    n->probe_goods = 0;
    n->timeline = 0; /* unknown until a probe answers again */
    n->probe_fails++;
    if (n->probe_fails >= n->router->cfg->pg_unhealthy_after || n->state == NODE_UNKNOWN) {
        if (n->state != NODE_DOWN) {
            breaker_open(n, clock_mono_ms(), "health checks failed");
            n->opened_by_probes = true;
        }
        set_state(n, NODE_DOWN, why);
    }
}

static void *health_main(void *arg)
{
    pg_node_t *n = arg;
    pg_router_t *r = n->router;
    const rankd_config_t *cfg = r->cfg;
    PGconn *c = NULL;
    int interval = cfg->pg_health_interval_ms;
    int connect_s = cfg->pg_connect_timeout_s < 2 ? cfg->pg_connect_timeout_s : 2;
    pthread_mutex_lock(&r->lock);
    while (!r->stopping) {
        pthread_mutex_unlock(&r->lock);
        char err[512] = "";
        probe_t p = {0};
        if (c && !pg_conn_alive(c)) {
            PQfinish(c);
            c = NULL;
        }
        if (!c)
            c = pg_connect(n->conninfo, interval * 2 > 1000 ? interval * 2 : 1000, connect_s, err, sizeof err);
        /* A probe that gets no answer is a failed probe, not a stuck health thread. */
        if (c)
            pg_deadline_arm(c, interval * 2 > 1000 ? interval * 2 : 1000);
        bool ok = c && probe(c, &p);
        if (c)
            pg_deadline_disarm(c);
        if (c && !ok) {
            pg_error_text(c, NULL, err, sizeof err);
            PQfinish(c);
            c = NULL;
        }
        pthread_mutex_lock(&r->lock);
        bool was_down = n->state == NODE_DOWN;
        if (ok)
            probe_good(n, &p);
        else
            probe_failed(n, err[0] ? err : "unreachable");
        bool now_down = n->state == NODE_DOWN;
        if (!n->probed) {
            n->probed = true;
            pthread_cond_broadcast(&r->probed_cond);
        }
        if (now_down && !was_down) {
            pthread_mutex_unlock(&r->lock);
            pg_pool_close_idle(n->pool); /* dead, or soon: the next caller gets a fresh one */
            pthread_mutex_lock(&r->lock);
        }
        if (r->stopping)
            break;
        struct timespec until = clock_deadline_ms(interval);
        while (!r->stopping && pthread_cond_timedwait(&r->stop_cond, &r->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&r->lock);
    if (c)
        PQfinish(c);
    return NULL;
}

/* ---------------------------------------------------------------- nodes */

static pg_node_t *node_new(pg_router_t *r, pg_node_role_t role, const char *conninfo, int index, int weight)
{
    const rankd_config_t *cfg = r->cfg;
    pg_node_t *n = xcalloc(1, sizeof *n);
    n->router = r;
    n->role = role;
    if (role == PG_NODE_PRIMARY)
        snprintf(n->name, sizeof n->name, "postgres_primary");
    else
        snprintf(n->name, sizeof n->name, "postgres_replica_%d", index);
    n->conninfo = xstrdup(conninfo);
    n->pool = pg_pool_new(conninfo, cfg->pg_pool_size, cfg->pg_statement_timeout_ms, cfg->pg_connect_timeout_s);
    n->weight = weight > 0 ? weight : 1;
    n->state = NODE_UNKNOWN;
    return n;
}

pg_router_t *pg_router_new(const rankd_config_t *cfg)
{
    pg_router_t *r = xcalloc(1, sizeof *r);
    r->cfg = cfg;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->stop_cond, NULL);
    pthread_cond_init(&r->probed_cond, NULL);
    size_t span = (size_t)(cfg->pg_max_lag_ms / (cfg->pg_health_interval_ms > 0 ? cfg->pg_health_interval_ms : 1)) + 8;
    r->cap_head = span > HEAD_HISTORY_MIN ? span : HEAD_HISTORY_MIN;
    r->head = xcalloc(r->cap_head, sizeof *r->head);
    r->nodes[r->n_nodes++] = node_new(r, PG_NODE_PRIMARY, cfg->pg_primary, 0, 1);
    for (size_t i = 0; i < cfg->n_pg_replicas && r->n_nodes < NODES_MAX; i++) {
        int w = i < cfg->n_pg_replica_weights ? atoi(cfg->pg_replica_weights[i]) : 1;
        r->nodes[r->n_nodes++] = node_new(r, PG_NODE_REPLICA, cfg->pg_replicas[i], (int)i + 1, w);
    }
    if (cfg->n_pg_replicas > NODES_MAX - 1)
        log_warn(NULL, "postgres.replicas: only the first %d replicas are used", NODES_MAX - 1);
    return r;
}

bool pg_router_start(pg_router_t *r)
{
    for (size_t i = 0; i < r->n_nodes; i++) {
        pg_node_t *n = r->nodes[i];
        if (pthread_create(&n->thread, NULL, health_main, n) != 0) {
            log_error(NULL, "cannot start the health check of %s", n->name);
            return false;
        }
        n->thread_started = true;
    }
    return true;
}

void pg_router_free(pg_router_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->stop_cond);
    pthread_mutex_unlock(&r->lock);
    /* Every thread first: a replica's probe reads the primary's node. */
    for (size_t i = 0; i < r->n_nodes; i++)
        if (r->nodes[i]->thread_started)
            pthread_join(r->nodes[i]->thread, NULL);
    for (size_t i = 0; i < r->n_nodes; i++) {
        pg_node_t *n = r->nodes[i];
        pg_pool_free(n->pool);
        free(n->conninfo);
        free(n);
    }
    free(r->lsns);
    free(r->head);
    pthread_cond_destroy(&r->stop_cond);
    pthread_cond_destroy(&r->probed_cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

void pg_router_wait_probed(pg_router_t *r, int timeout_ms)
{
    struct timespec until = clock_deadline_ms(timeout_ms);
    pthread_mutex_lock(&r->lock);
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < r->n_nodes; i++)
            all = all && r->nodes[i]->probed;
        if (all || pthread_cond_timedwait(&r->probed_cond, &r->lock, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&r->lock);
}

bool pg_router_has_replicas(const pg_router_t *r)
{
    return r && r->n_nodes > 1;
}

pg_pool_t *pg_router_primary_pool(pg_router_t *r)
{
    return r->nodes[0]->pool;
}

/* ---------------------------------------------------------------- leases */

/* Borrow from `n` (the caller counted it in flight); false when none could be had. */
static bool lend(pg_router_t *r, pg_node_t *n, pg_lease_t *out)
{
    out->node = n;
    bool busy = false;
    out->conn = pg_pool_acquire_why(n->pool, r->cfg->pg_pool_wait_ms, &busy);
    if (out->conn)
        return true;
    pthread_mutex_lock(&r->lock);
    n->in_flight--;
    if (!busy) /* a pool that stayed busy says nothing of the node's health */
        breaker_result(n, false);
    else if (n->breaker == BREAKER_HALF_OPEN)
        n->half_open_taken = false; /* the trial never ran: the next call is it */
    pthread_mutex_unlock(&r->lock);
    if (!busy)
        atomic_fetch_add(&n->errors, 1);
    out->node = NULL;
    return false;
}

/*
 * Under r->lock: whether calls may go to the primary. Not while its health checks say it is
 * down and none has succeeded since (a call would only wait for a connect that fails: with a
 * host that drops packets, connect_timeout_s); then the breaker decides.
 */
static bool primary_callable(pg_node_t *p, int64_t now, bool take_trial)
{
    if (p->state == NODE_DOWN && p->probe_goods == 0)
        return false;
    if (!take_trial)
        return p->breaker != BREAKER_OPEN || now >= p->open_until_ms;
    return breaker_allows(p, now);
}

void pg_router_on_new_timeline(pg_router_t *r, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&r->lock);
    r->on_new_timeline = fn;
    r->on_new_timeline_arg = arg;
    pthread_mutex_unlock(&r->lock);
}

bool pg_router_primary_usable(pg_router_t *r)
{
    if (!r)
        return true;
    pthread_mutex_lock(&r->lock);
    bool usable = primary_callable(r->nodes[0], clock_mono_ms(), false);
    pthread_mutex_unlock(&r->lock);
    return usable;
}

bool pg_router_primary(pg_router_t *r, pg_lease_t *out)
{
    pg_node_t *p = r->nodes[0];
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&r->lock);
    bool allowed = primary_callable(p, clock_mono_ms(), true);
    if (allowed)
        p->in_flight++;
    pthread_mutex_unlock(&r->lock);
    return allowed && lend(r, p, out);
}

/* Under r->lock: pick among cand[0..n) by the configured policy. */
static pg_node_t *pick(pg_router_t *r, pg_node_t **cand, size_t n)
{
    if (n == 1)
        return cand[0];
    switch (r->cfg->pg_replica_policy) {
    case POLICY_LEAST_CONNECTIONS: {
        size_t start = r->rr++ % n, best = start;
        for (size_t k = 1; k < n; k++) {
            size_t i = (start + k) % n;
            if (cand[i]->in_flight < cand[best]->in_flight)
                best = i;
        }
        return cand[best];
    }
    case POLICY_WEIGHTED: {
        /* Smooth weighted round robin: every pick adds each weight to its node's running
         * figure and takes the largest, which then gives back the total. 3:1 goes a a b a. */
        int total = 0;
        size_t best = 0;
        for (size_t i = 0; i < n; i++) {
            cand[i]->current_weight += cand[i]->weight;
            total += cand[i]->weight;
            if (cand[i]->current_weight > cand[best]->current_weight)
                best = i;
        }
        cand[best]->current_weight -= total;
        return cand[best];
    }
    case POLICY_ROUND_ROBIN:
    default: return cand[r->rr++ % n];
    }
}

/* On a replica's own connection: has it replayed `need` by now? Updates what we know. */
static bool replayed(pg_router_t *r, pg_lease_t *l, uint64_t need)
{
    PGresult *res = PQexec(l->conn, "SELECT pg_last_wal_replay_lsn()");
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    uint64_t lsn = ok ? pg_lsn_parse(PQgetvalue(res, 0, 0)) : 0;
    PQclear(res);
    if (!ok)
        return false;
    pthread_mutex_lock(&r->lock);
    l->node->lsn = lsn;
    pthread_mutex_unlock(&r->lock);
    return lsn >= need;
}

/* Count `n` in flight and lend from it (false when none could be had). */
static bool lend_counted(pg_router_t *r, pg_node_t *n, pg_lease_t *out)
{
    pthread_mutex_lock(&r->lock);
    n->in_flight++;
    pthread_mutex_unlock(&r->lock);
    return lend(r, n, out);
}

/* pg_router_read; with `replica_only`, false instead of the primary's connection. */
static bool read_lease(pg_router_t *r, int64_t key, bool strong, bool replica_only, pg_lease_t *out)
{
    memset(out, 0, sizeof *out);
    pg_node_t *primary = r->nodes[0];
    if (r->n_nodes == 1 || strong) {
        if (strong && r->n_nodes > 1)
            atomic_fetch_add(&r->strong_reads, 1);
        return pg_router_primary(r, out);
    }
    pg_node_t *healthy[NODES_MAX], *caught[NODES_MAX], *lagging[NODES_MAX];
    size_t n_healthy = 0, n_caught = 0, n_lagging = 0;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&r->lock);
    uint64_t need = lsn_needed(r, key);
    for (size_t i = 1; i < r->n_nodes; i++) {
        pg_node_t *n = r->nodes[i];
        if (!breaker_may(n, now)) /* open, or half open with its trial call under way */
            continue;
        if (n->state == NODE_OK) {
            healthy[n_healthy++] = n;
            if (n->lsn >= need)
                caught[n_caught++] = n;
        } else if (n->state == NODE_LAGGING) {
            lagging[n_lagging++] = n;
        }
    }
    /* The policy picks among every healthy replica, so that its spread holds; one last probed
     * behind this read is asked again on the read's own connection (it has usually replayed
     * since), and a caught-up one stands by in case it has not. */
    pg_node_t *chosen = NULL, *backup = NULL;
    bool recheck = false;
    if (n_healthy > 0) {
        chosen = pick(r, healthy, n_healthy);
        recheck = chosen->lsn < need;
        for (size_t i = 0; recheck && i < n_caught && !backup; i++)
            if (caught[(r->rr + i) % n_caught] != chosen)
                backup = caught[(r->rr + i) % n_caught];
    }
    bool primary_down = primary->state == NODE_DOWN ||
                        (primary->breaker == BREAKER_OPEN && now < primary->open_until_ms);
    if (!chosen && primary_down && n_lagging > 0) {
        chosen = pick(r, lagging, n_lagging); /* better late data than none while nothing can be written */
        out->behind = true;
    }
    if (chosen && chosen->breaker != BREAKER_CLOSED) {
        /* Its cool-down over: this read is the half-open trial, and the only call until it ends. */
        (void)breaker_allows(chosen, now);
        backup = NULL;
    }
    if (chosen)
        chosen->in_flight++;
    pthread_mutex_unlock(&r->lock);

    if (chosen && lend(r, chosen, out)) {
        if (!recheck || replayed(r, out, need)) {
            atomic_fetch_add(&chosen->reads_routed, 1);
            if (out->behind)
                atomic_fetch_add(&r->behind_reads, 1);
            return true;
        }
        pg_router_release(r, out, false); /* before waiting on another pool: never hold two */
        if (backup && lend_counted(r, backup, out)) {
            atomic_fetch_add(&backup->reads_routed, 1);
            return true;
        }
        if (primary_down && lend_counted(r, chosen, out)) {
            /* Behind, and the primary cannot answer either: late data beats none. */
            out->behind = true;
            atomic_fetch_add(&chosen->reads_routed, 1);
            atomic_fetch_add(&r->behind_reads, 1);
            return true;
        }
        if (!replica_only)
            atomic_fetch_add(&r->fallback_behind, 1);
    } else if (!replica_only) {
        atomic_fetch_add(&r->fallback_no_replica, 1);
    }
    out->behind = false;
    if (replica_only || !pg_router_primary(r, out))
        return false;
    atomic_fetch_add(&primary->reads_routed, 1);
    return true;
}

bool pg_router_read(pg_router_t *r, int64_t key, bool strong, pg_lease_t *out)
{
    return read_lease(r, key, strong, false, out);
}

bool pg_router_read_replica(pg_router_t *r, int64_t key, pg_lease_t *out)
{
    return pg_router_has_replicas(r) && read_lease(r, key, false, true, out);
}

void pg_router_release(pg_router_t *r, pg_lease_t *l, bool broken)
{
    if (!l->node)
        return;
    pg_node_t *n = l->node;
    broken = broken || PQstatus(l->conn) != CONNECTION_OK;
    atomic_fetch_add(&n->queries, 1);
    if (broken)
        atomic_fetch_add(&n->errors, 1);
    pg_pool_release(n->pool, l->conn, broken);
    pthread_mutex_lock(&r->lock);
    n->in_flight--;
    breaker_result(n, !broken);
    pthread_mutex_unlock(&r->lock);
    l->node = NULL;
    l->conn = NULL;
}

q_status_t pg_router_read_run(pg_router_t *r, int64_t key, bool strong, q_status_t (*fn)(PGconn *c, void *arg),
                              void *arg, bool *behind)
{
    q_status_t st = Q_UNAVAILABLE;
    for (int attempt = 0; attempt < 2 && (st == Q_UNAVAILABLE || st == Q_RETRY); attempt++) {
        pg_lease_t l;
        /* A replica cancelled the read (a conflict with recovery): the primary has none. */
        if (!pg_router_read(r, key, strong || st == Q_RETRY, &l))
            return Q_UNAVAILABLE;
        st = fn(l.conn, arg);
        if (behind)
            *behind = l.behind;
        pg_router_release(r, &l, st == Q_UNAVAILABLE);
    }
    return st == Q_RETRY ? Q_UNAVAILABLE : st;
}

/* ---------------------------------------------------------------- status and metrics */

size_t pg_router_status(pg_router_t *r, pg_node_status_t *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n_nodes && k < max; i++, k++) {
        pg_node_t *n = r->nodes[i];
        pg_node_status_t *s = &out[k];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", n->name);
        s->role = n->role;
        s->weight = n->weight;
        pthread_mutex_lock(&r->lock);
        s->state = n->state;
        s->timeline = n->timeline;
        s->breaker = n->breaker == BREAKER_OPEN && clock_mono_ms() >= n->open_until_ms ? BREAKER_HALF_OPEN : n->breaker;
        s->lag_ms = n->lag_ms;
        s->lag_bytes = n->lag_bytes;
        s->lsn = n->lsn;
        pthread_mutex_unlock(&r->lock);
        pg_pool_stats(n->pool, &s->pool);
        s->queries = atomic_load(&n->queries);
        s->errors = atomic_load(&n->errors);
        s->reads_routed = atomic_load(&n->reads_routed);
    }
    return k;
}

void pg_router_metrics(pg_router_t *r, buf_t *o)
{
    pg_node_status_t st[NODES_MAX];
    size_t n = pg_router_status(r, st, NODES_MAX);
    static const struct {
        const char *name, *type, *help;
    } series[] = {
        {"rankd_pg_node_up", "gauge", "1 while the node is in service (ok), 0 when lagging, down or not yet probed."},
        {"rankd_pg_node_state", "gauge", "The node's state: 0 unknown, 1 ok, 2 lagging, 3 down."},
        {"rankd_pg_node_breaker_state", "gauge", "The node's circuit breaker: 0 closed, 1 open, 2 half open."},
        {"rankd_pg_node_replay_lag_ms", "gauge", "How far a replica's replay is behind, in milliseconds (0 when caught up)."},
        {"rankd_pg_node_replay_lag_bytes", "gauge", "How far a replica's replay is behind the primary's WAL, in bytes."},
        {"rankd_pg_node_queries_total", "counter", "Leases of the node's connections given back (statements or transactions)."},
        {"rankd_pg_node_errors_total", "counter", "Calls on the node that could not get a connection or whose connection broke."},
        {"rankd_pg_node_reads_total", "counter", "Reads the router sent to the node."},
        {"rankd_pg_pool_in_use", "gauge", "Connections of the node's pool lent right now."},
        {"rankd_pg_pool_size", "gauge", "Connections the node's pool may hold."},
        {"rankd_pg_pool_wait_timeouts_total", "counter", "Waits for a pooled connection that ran out (answered 503)."},
        {"rankd_pg_node_timeline", "gauge", "The node's timeline (a replica's: the one it receives; 0 unknown). A replica on another than the primary's answers no read."},
    };
    for (size_t m = 0; m < sizeof series / sizeof *series; m++) {
        buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", series[m].name, series[m].help, series[m].name, series[m].type);
        for (size_t i = 0; i < n; i++) {
            const pg_node_status_t *s = &st[i];
            unsigned long long v = 0;
            switch (m) {
            case 0: v = s->state == NODE_OK; break;
            case 1: v = (unsigned long long)s->state; break;
            case 2: v = (unsigned long long)s->breaker; break;
            case 3: v = (unsigned long long)s->lag_ms; break;
            case 4: v = (unsigned long long)s->lag_bytes; break;
            case 5: v = s->queries; break;
            case 6: v = s->errors; break;
            case 7: v = s->reads_routed; break;
            case 8: v = (unsigned long long)s->pool.in_use; break;
            case 9: v = (unsigned long long)s->pool.size; break;
            case 10: v = s->pool.wait_timeouts; break;
            case 11: v = (unsigned long long)s->timeline; break;
            }
            buf_printf(o, "%s{node=\"%s\",role=\"%s\"} %llu\n", series[m].name, s->name,
                       s->role == PG_NODE_PRIMARY ? "primary" : "replica", v);
        }
    }
    buf_printf(o,
               "# HELP rankd_pg_router_primary_fallbacks_total Reads meant for a replica that the primary answered.\n"
               "# TYPE rankd_pg_router_primary_fallbacks_total counter\n"
               "rankd_pg_router_primary_fallbacks_total{reason=\"no_replica\"} %llu\n"
               "rankd_pg_router_primary_fallbacks_total{reason=\"behind\"} %llu\n"
               "# HELP rankd_pg_router_strong_reads_total consistency=strong reads (always the primary).\n"
               "# TYPE rankd_pg_router_strong_reads_total counter\nrankd_pg_router_strong_reads_total %llu\n"
               "# HELP rankd_pg_router_behind_reads_total Reads a replica answered while behind, the primary being down (never cached).\n"
               "# TYPE rankd_pg_router_behind_reads_total counter\nrankd_pg_router_behind_reads_total %llu\n",
               (unsigned long long)atomic_load(&r->fallback_no_replica),
               (unsigned long long)atomic_load(&r->fallback_behind), (unsigned long long)atomic_load(&r->strong_reads),
               (unsigned long long)atomic_load(&r->behind_reads));
}

