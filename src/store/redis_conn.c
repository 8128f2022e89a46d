/* store/redis_conn.c — a single server, Sentinel's master or a routed Redis Cluster (see redis_conn.h). */
#include "store/redis_conn.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"
#include "store/redis_reply_limit.h"
#include "util/alloc.h"
#include "util/redis_slot.h"

#define NO_NODE 0xFFFF
#define MAX_HOPS 5          /* redirections and retries of one command */
#define RETRY_MS 1000       /* a node that failed is not connected to again sooner */
#define MAP_RETRY_MS 200    /* nor the slot map read again sooner */
#define TRYAGAIN_MS 10      /* a slot in migration: wait this long, doubling up to TRYAGAIN_STEP_MS */
#define TRYAGAIN_STEP_MS 200
#define TRYAGAIN_MAX_MS 5000 /* and in all at most this long for one command: a big slot moves in seconds */
#define MAP_MAX_AGE_MS 10000 /* the map is read again this often: replicas added, a failover unseen */

typedef struct {
    char host[256];
    int port;
    redisContext *ctx;  /* NULL until needed, and after a failure */
    long long retry_at; /* monotonic ms */
    int master_of;      /* a cluster replica: its master's index (contexts send READONLY); else -1 */
} conn_node_t;

/*
 * The servers no connection of this process can reach, shared by every connection (each pool
 * member and pipe retries on its own): a server that stays down is logged when it goes, once a
 * minute while it stays down, and when it is back, not at every retry of every connection.
 */
#define DOWN_LOG_EVERY_MS 60000
#define DOWN_SERVERS_MAX 32
static struct {
    pthread_mutex_t lock;
    size_t n;
    unsigned long long failed_total; /* every failed attempt since start: a metric */
    struct down_server {
        char host[256];
        int port;
        long long since, logged; /* monotonic ms */
        unsigned long failed;    /* attempts since */
    } servers[DOWN_SERVERS_MAX];
} down_servers = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct redis_conn {
    redis_url_t url;
    int connect_timeout_ms, command_timeout_ms;
    const char *const *scripts;
    size_t n_scripts;
    conn_node_t *nodes; /* every node ever named (seeds, the map, redirections): a handful */
    size_t n_nodes;
    uint16_t *slot_node; /* Cluster only: REDIS_SLOTS node indexes, NO_NODE when unknown */
    int *masters;        /* node indexes of the masters in the last map (node 0 outside Cluster) */
    size_t n_masters;
    bool map_stale;      /* read the map again before routing */
    long long map_retry_at;
    long long map_read_at; /* monotonic ms of the map in use */
    bool broken;
    uint64_t redirects, retries;
    unsigned failovers;    /* slots whose new master was their old master's replica, since taken */
    unsigned next_replica; /* round robin over a master's replicas */
    unsigned map_changes;  /* maps read that differed from the one before */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static int node_index(redis_conn_t *c, const char *host, size_t host_len, int port)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].port == port && strlen(c->nodes[i].host) == host_len &&
            memcmp(c->nodes[i].host, host, host_len) == 0)
            return (int)i;
    if (c->n_nodes >= NO_NODE || host_len >= sizeof c->nodes[0].host)
        return -1;
    /* `host` may point into c->nodes (a node's own host, for "?" or ":port"): copied before
     * the array moves. */
    char h[sizeof c->nodes[0].host];
    memcpy(h, host, host_len);
    h[host_len] = '\0';
    c->nodes = xrealloc(c->nodes, (c->n_nodes + 1) * sizeof *c->nodes);
    conn_node_t *n = &c->nodes[c->n_nodes];
    *n = (conn_node_t){.port = port, .master_of = -1};
    memcpy(n->host, h, host_len + 1);
    return (int)c->n_nodes++;
}

static bool reply_ok(redisReply *r)
{
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* A connection attempt to host:port: its outcome into down_servers, logged as said there. */
static void note_connect(const char *host, int port, bool ok, const char *why)
{
    long long now = mono_ms();
    pthread_mutex_lock(&down_servers.lock);
    if (!ok)
        down_servers.failed_total++;
    struct down_server *d = NULL;
    for (size_t i = 0; i < down_servers.n && !d; i++)
        if (down_servers.servers[i].port == port && strcmp(down_servers.servers[i].host, host) == 0)
            d = &down_servers.servers[i];
    if (ok) {
        if (d) {
            log_info(NULL, "redis %s:%d: connected again after %lld s down and %lu failed attempts", host, port,
                     (now - d->since) / 1000, d->failed);
            *d = down_servers.servers[--down_servers.n];
        }
    } else if (!d) {
        if (down_servers.n < DOWN_SERVERS_MAX) {
            d = &down_servers.servers[down_servers.n++];
            snprintf(d->host, sizeof d->host, "%s", host);
            d->port = port;
            d->since = d->logged = now;
            d->failed = 1;
        }
        log_warn(NULL, "redis %s:%d: cannot connect: %s (retried every %d ms; said again once a minute while it "
                       "lasts)", host, port, why, RETRY_MS);
    } else if (++d->failed, now - d->logged >= DOWN_LOG_EVERY_MS) {
        d->logged = now;
        log_warn(NULL, "redis %s:%d: still cannot connect, %lu attempts in %lld s: %s", host, port, d->failed,
                 (now - d->since) / 1000, why);
    }
    pthread_mutex_unlock(&down_servers.lock);
}

unsigned long long redis_conn_failed_connects(void)
{
    pthread_mutex_lock(&down_servers.lock);
    unsigned long long n = down_servers.failed_total;
    pthread_mutex_unlock(&down_servers.lock);
    return n;
}

/* A context to host:port, authenticated, on the configured database, with the scripts loaded;
 * NULL with the reason in `why`. */
static redisContext *connect_to(redis_conn_t *c, const char *host, int port, bool load_scripts, bool readonly,
                                char *why, size_t whylen)
{
    redisContext *ctx = redis_connect_limited(host, port, tv_ms(c->connect_timeout_ms));
    if (!ctx || ctx->err) {
        snprintf(why, whylen, "%s", ctx ? ctx->errstr : "no memory");
        if (ctx)
            redisFree(ctx);
        return NULL;
    }
    redisSetTimeout(ctx, tv_ms(c->command_timeout_ms));
    bool ok = !c->url.password[0] || reply_ok(redisCommand(ctx, "AUTH %s", c->url.password));
    if (ok && c->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", c->url.db);
        ok = reply_ok(redisCommand(ctx, "SELECT %s", db));
    }
    if (ok && readonly) /* a cluster replica answers reads of its master's slots only after READONLY */
        ok = reply_ok(redisCommand(ctx, "READONLY"));
    for (size_t i = 0; ok && load_scripts && i < c->n_scripts; i++)
        ok = reply_ok(redisCommand(ctx, "SCRIPT LOAD %s", c->scripts[i]));
    if (!ok) {
        snprintf(why, whylen, "AUTH, SELECT or SCRIPT LOAD failed");
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

redisContext *redis_conn_node_context(redis_conn_t *c, int node)
{
    if (node < 0 || (size_t)node >= c->n_nodes)
        return NULL;
    conn_node_t *n = &c->nodes[node];
    if (!n->ctx && mono_ms() >= n->retry_at) {
        char why[160] = "";
        n->ctx = connect_to(c, n->host, n->port, true, n->master_of >= 0, why, sizeof why);
        note_connect(n->host, n->port, n->ctx != NULL, why);
        if (!n->ctx) {
            n->retry_at = mono_ms() + RETRY_MS;
            if (c->slot_node)
                c->map_stale = true; /* a dead master's slots go to its replica: ask the cluster */
        }
    }
    return n->ctx;
}

void redis_conn_node_reload(redis_conn_t *c, int node)
{
    if (node < 0 || (size_t)node >= c->n_nodes || !c->nodes[node].ctx)
        return;
    redisFree(c->nodes[node].ctx);
    c->nodes[node].ctx = NULL;
}

void redis_conn_node_failed(redis_conn_t *c, int node)
{
    if (node < 0 || (size_t)node >= c->n_nodes)
        return;
    conn_node_t *n = &c->nodes[node];
    if (n->ctx) {
        log_warn(NULL, "redis %s:%d: connection failed: %s", n->host, n->port, n->ctx->errstr);
        redisFree(n->ctx);
        n->ctx = NULL;
    }
    n->retry_at = mono_ms() + RETRY_MS;
    c->broken = true;
    if (c->slot_node)
        c->map_stale = true; /* its slots may have a new master by now */
}

/* "ip:port" of a CLUSTER SLOTS node (an empty ip: the node asked, `asked`). */
static int map_node(redis_conn_t *c, const redisReply *n, int asked)
{
    if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
        (n->element[0]->type != REDIS_REPLY_STRING && n->element[0]->type != REDIS_REPLY_NIL) ||
        n->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    /* nil (cluster-preferred-endpoint-type unknown-endpoint), "" or "?": the node asked */
    const char *ip = n->element[0]->type == REDIS_REPLY_STRING ? n->element[0]->str : "";
    size_t ip_len = n->element[0]->type == REDIS_REPLY_STRING ? n->element[0]->len : 0;
    if (ip_len == 0 || (ip_len == 1 && ip[0] == '?')) {
        ip = c->nodes[asked].host;
        ip_len = strlen(ip);
    }
    return node_index(c, ip, ip_len, (int)n->element[1]->integer);
}

/* Read the slot map from node `asked`; false when it cannot give one. */
static bool map_from(redis_conn_t *c, int asked)
{
    redisContext *ctx = redis_conn_node_context(c, asked);
    if (!ctx)
        return false;
    redisReply *r = redisCommand(ctx, "CLUSTER SLOTS");
    if (!r) {
        redis_conn_node_failed(c, asked);
        return false;
    }
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
    uint16_t *map = xmalloc(REDIS_SLOTS * sizeof *map);
    for (size_t s = 0; s < REDIS_SLOTS; s++)
        map[s] = NO_NODE;
    int *masters = xmalloc((r->type == REDIS_REPLY_ARRAY ? r->elements : 0) * sizeof *masters + sizeof *masters);
    size_t n_masters = 0;
    int *master_of = xmalloc((c->n_nodes + 64) * sizeof *master_of);
    size_t n_known = c->n_nodes + 64; /* nodes the map may add, each replica's master */
    for (size_t i = 0; i < n_known; i++)
        master_of[i] = -1;
    for (size_t i = 0; ok && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        ok = e->type == REDIS_REPLY_ARRAY && e->elements >= 3 && e->element[0]->type == REDIS_REPLY_INTEGER &&
             e->element[1]->type == REDIS_REPLY_INTEGER && e->element[0]->integer >= 0 &&
             e->element[0]->integer <= e->element[1]->integer && e->element[1]->integer < REDIS_SLOTS;
        int m = ok ? map_node(c, e->element[2], asked) : -1;
        ok = ok && m >= 0;
        for (long long s = ok ? e->element[0]->integer : 1; s <= (ok ? e->element[1]->integer : 0); s++)
            map[s] = (uint16_t)m;
        bool known = false;
        for (size_t k = 0; ok && k < n_masters; k++)
            known = known || masters[k] == m;
        if (ok && !known)
            masters[n_masters++] = m;
        for (size_t k = 3; ok && k < e->elements; k++) {
            int rep = map_node(c, e->element[k], asked);
            if (rep >= 0 && (size_t)rep < n_known)
                master_of[rep] = m;
        }
    }
    freeReplyObject(r);
    if (!ok) {
        log_warn(NULL, "redis %s:%d: CLUSTER SLOTS gave no usable map", c->nodes[asked].host, c->nodes[asked].port);
        free(map);
        free(masters);
        free(master_of);
        return false;
    }
    /* A slot now served by what was its master's replica: a failover, which may have lost what
     * the old master had not replicated (a resharding moves slots between masters instead). */
    bool failover = false;
    for (size_t s = 0; s < REDIS_SLOTS && !failover; s++)
        failover = c->slot_node[s] != NO_NODE && map[s] != NO_NODE && map[s] != c->slot_node[s] &&
                   c->nodes[map[s]].master_of == c->slot_node[s];
    if (failover) {
        log_warn(NULL, "redis cluster: a replica was promoted; writes its old master had not replicated may be lost");
        c->failovers++;
    }
    if (memcmp(c->slot_node, map, REDIS_SLOTS * sizeof *map) != 0 || n_masters != c->n_masters ||
        (n_masters && memcmp(masters, c->masters, n_masters * sizeof *masters) != 0))
        c->map_changes++;
    memcpy(c->slot_node, map, REDIS_SLOTS * sizeof *map);
    free(map);
    for (size_t i = 0; i < c->n_nodes; i++) {
        int was = c->nodes[i].master_of;
        c->nodes[i].master_of = i < n_known ? master_of[i] : -1;
        if ((was >= 0) != (c->nodes[i].master_of >= 0) && c->nodes[i].ctx) {
            redisFree(c->nodes[i].ctx); /* promoted or demoted: connect again, with READONLY or without */
            c->nodes[i].ctx = NULL;
        }
    }
    free(master_of);
    free(c->masters);
    c->masters = masters;
    c->n_masters = n_masters;
    c->map_stale = false;
    c->map_read_at = mono_ms();
    return true;
}

int redis_conn_replica(redis_conn_t *c, int master)
{
    if (!c->slot_node || master < 0)
        return -1;
    long long now = mono_ms();
    for (size_t k = 0; k < c->n_nodes; k++) {
        size_t i = (c->next_replica + k) % c->n_nodes;
        const conn_node_t *n = &c->nodes[i];
        if (n->master_of == master && (n->ctx || now >= n->retry_at)) {
            c->next_replica = (unsigned)(i + 1);
            return (int)i;
        }
    }
    return -1;
}

bool redis_role_offset(const redisReply *r, bool of_master, long long *offset)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING)
        return false;
    const char *role = r->element[0]->str;
    if (of_master) {
        if (strcmp(role, "master") != 0 || r->element[1]->type != REDIS_REPLY_INTEGER)
            return false;
        *offset = r->element[1]->integer;
        return true;
    }
    /* "slave", master ip, master port, link state, offset processed: only a live link counts */
    if (strcmp(role, "slave") == 0 && r->elements >= 5 && r->element[3]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[3]->str, "connected") == 0 && r->element[4]->type == REDIS_REPLY_INTEGER) {
        *offset = r->element[4]->integer;
        return true;
    }
    return false;
}

/* Read the slot map from any node that answers: connected ones first, then the others. */
static bool load_map(redis_conn_t *c)
{
    /* Not more often than this, whatever the outcome: until a failover completes, the map
     * names a master that does not answer, and every command would read it again. */
    if (mono_ms() < c->map_retry_at)
        return false;
    c->map_retry_at = mono_ms() + MAP_RETRY_MS;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < c->n_nodes; i++)
            if ((pass == 0) == (c->nodes[i].ctx != NULL) && map_from(c, (int)i))
                return true;
    return false;
}

int redis_conn_node(redis_conn_t *c, const char *key, size_t key_len)
{
    if (!c->slot_node) /* one server, or the master the sentinels named (not always node 0) */
        return c->n_masters ? c->masters[0] : 0;
    if (c->map_stale || mono_ms() - c->map_read_at > MAP_MAX_AGE_MS)
        (void)load_map(c);
    if (!key)
        return c->n_masters ? c->masters[0] : -1;
    unsigned slot = redis_slot(key, key_len);
    if (c->slot_node[slot] == NO_NODE && load_map(c) == false)
        return -1;
    return c->slot_node[slot] == NO_NODE ? -1 : c->slot_node[slot];
}

/* Send a formatted command to `node` (after ASKING when asked to) and read its reply. */
static redisReply *exec_on(redis_conn_t *c, int node, bool asking, const char *cmd, size_t len)
{
    redisContext *ctx = redis_conn_node_context(c, node);
    if (!ctx) {
        c->broken = true;
        return NULL;
    }
    void *r = NULL;
    if ((asking && redisAppendCommand(ctx, "ASKING") != REDIS_OK) ||
        redisAppendFormattedCommand(ctx, cmd, len) != REDIS_OK)
        goto failed;
    if (asking) {
        if (redisGetReply(ctx, &r) != REDIS_OK)
            goto failed;
        freeReplyObject(r);
        r = NULL;
    }
    if (redisGetReply(ctx, &r) != REDIS_OK)
        goto failed;
    return r;
failed:
    redis_conn_node_failed(c, node);
    return NULL;
}

/* "MOVED <slot> <host>:<port>" or "ASK …": the node it names, or -1 when `r` is neither. */
static int redirect_target(redis_conn_t *c, const redisReply *r, int asked, bool *ask, unsigned *slot)
{
    const char *s = r->str;
    size_t skip;
    if (strncmp(s, "MOVED ", 6) == 0)
        skip = 6, *ask = false;
    else if (strncmp(s, "ASK ", 4) == 0)
        skip = 4, *ask = true;
    else
        return -1;
    char *end;
    unsigned long v = strtoul(s + skip, &end, 10);
    if (*end != ' ' || v >= REDIS_SLOTS)
        return -1;
    const char *addr = end + 1;
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return -1;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    *slot = (unsigned)v;
    if (colon == addr) /* no host: the node that answered */
        return node_index(c, c->nodes[asked].host, strlen(c->nodes[asked].host), (int)port);
    return node_index(c, addr, (size_t)(colon - addr), (int)port);
}

static bool is_error(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0;
}

/* Follow `r`, the reply of `node`, while it redirects (or, when `wait`, asks to try again). */
static redisReply *follow(redis_conn_t *c, int node, redisReply *r, const char *key, size_t key_len, const char *cmd,
                          size_t len, bool wait)
{
    /* Redirections are bounded by hops; waits for a migrating slot by time, not by their number:
     * a command given up on during a migration made its caller count an outage. */
    long waited_ms = 0, pause_ms = TRYAGAIN_MS;
    for (int hop = 0; c->slot_node && r && r->type == REDIS_REPLY_ERROR && hop < MAX_HOPS; hop++) {
        bool ask = false;
        unsigned slot;
        int next = redirect_target(c, r, node, &ask, &slot);
        if (next >= 0) {
            c->redirects++;
            if (!ask && c->slot_node[slot] != NO_NODE && c->nodes[next].master_of == c->slot_node[slot]) {
                log_warn(NULL, "redis cluster: slot %u moved to its master's replica %s:%d (a failover); writes "
                               "not replicated before it may be lost", slot, c->nodes[next].host, c->nodes[next].port);
                c->failovers++;
            }
            if (!ask) {
                c->slot_node[slot] = (uint16_t)next;
                c->map_stale = true; /* a slot moved: others may have (a resharding, a failover) */
            }
        } else if (wait && is_error(r, "TRYAGAIN") && waited_ms < TRYAGAIN_MAX_MS) {
            /* A slot in migration holds some of the command's keys: they move within moments. */
            c->retries++;
            struct timespec ts = {0, pause_ms * 1000000L};
            nanosleep(&ts, NULL);
            waited_ms += pause_ms;
            pause_ms = pause_ms * 2 > TRYAGAIN_STEP_MS ? TRYAGAIN_STEP_MS : pause_ms * 2;
            hop--; /* not a redirection */
            next = redis_conn_node(c, key, key_len);
        } else {
            break;
        }
        freeReplyObject(r);
        if (next < 0)
            return NULL;
        node = next;
        r = exec_on(c, node, ask, cmd, len);
    }
    return r;
}

static redisReply *run_formatted(redis_conn_t *c, const char *key, size_t key_len, const char *cmd, size_t len)
{
    int node = redis_conn_node(c, key, key_len);
    if (node < 0) {
        c->broken = true;
        return NULL;
    }
    return follow(c, node, exec_on(c, node, false, cmd, len), key, key_len, cmd, len, true);
}

redisReply *redis_conn_argv(redis_conn_t *c, const char *key, size_t key_len, int argc, const char **argv,
                            const size_t *argvlen)
{
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0)
        return NULL;
    redisReply *r = run_formatted(c, key, key_len, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

redisReply *redis_conn_command(redis_conn_t *c, const char *key, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0)
        return NULL;
    redisReply *r = run_formatted(c, key, key ? strlen(key) : 0, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

size_t redis_conn_masters(redis_conn_t *c)
{
    if (c->slot_node && (c->map_stale || mono_ms() - c->map_read_at > MAP_MAX_AGE_MS))
        (void)load_map(c);
    return c->n_masters;
}

unsigned redis_conn_map_changes(const redis_conn_t *c)
{
    return c->map_changes;
}

redisReply *redis_conn_argv_on(redis_conn_t *c, size_t master, int argc, const char **argv, const size_t *argvlen)
{
    if (master >= c->n_masters)
        return NULL;
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0)
        return NULL;
    redisReply *r = exec_on(c, c->masters[master], false, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return r;
}

redisReply *redis_conn_settle(redis_conn_t *c, int node, redisReply *reply, const char *key, size_t key_len,
                              int argc, const char **argv, const size_t *argvlen)
{
    if (!c->slot_node || !(is_error(reply, "MOVED ") || is_error(reply, "ASK ")))
        return reply;
    char *cmd = NULL;
    long long len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0)
        return reply;
    redisReply *r = follow(c, node, reply, key, key_len, cmd, (size_t)len, false);
    redisFreeCommand(cmd);
    return r;
}

/* Ask the sentinels, in order, for the master's address; connect to it if it says it is one. */
static bool open_sentinel_master(redis_conn_t *c)
{
    for (size_t i = 0; i < c->url.n_addrs; i++) {
        const redis_addr_t *s = &c->url.addrs[i];
        redisContext *sc = redis_connect_limited(s->host, s->port, tv_ms(c->connect_timeout_ms));
        if (!sc || sc->err) {
            log_warn(NULL, "redis sentinel %s:%d: %s", s->host, s->port, sc ? sc->errstr : "no memory");
            if (sc)
                redisFree(sc);
            continue;
        }
        redisSetTimeout(sc, tv_ms(c->command_timeout_ms));
        redisReply *r = redisCommand(sc, "SENTINEL get-master-addr-by-name %s", c->url.master);
        int node = -1;
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING)
            node = node_index(c, r->element[0]->str, r->element[0]->len, atoi(r->element[1]->str));
        else
            log_warn(NULL, "redis sentinel %s:%d does not know master %s", s->host, s->port, c->url.master);
        if (r)
            freeReplyObject(r);
        redisFree(sc);
        redisContext *ctx = node >= 0 ? redis_conn_node_context(c, node) : NULL;
        if (!ctx)
            continue;
        /* A sentinel may not have seen a failover yet: the server must agree it is the master. */
        redisReply *role = redisCommand(ctx, "ROLE");
        bool master = role && role->type == REDIS_REPLY_ARRAY && role->elements > 0 &&
                      role->element[0]->type == REDIS_REPLY_STRING && strcmp(role->element[0]->str, "master") == 0;
        if (role)
            freeReplyObject(role);
        if (master) {
            c->masters[0] = node;
            return true;
        }
        log_warn(NULL, "redis %s:%d, named master by sentinel %s:%d, is not a master", c->nodes[node].host,
                 c->nodes[node].port, s->host, s->port);
        redis_conn_node_failed(c, node);
    }
    return false;
}

redis_conn_t *redis_conn_open(const redis_url_t *url, int connect_timeout_ms, int command_timeout_ms,
                              const char *const *scripts, size_t n_scripts)
{
    redis_conn_t *c = xcalloc(1, sizeof *c);
    c->url = *url;
    c->connect_timeout_ms = connect_timeout_ms;
    c->command_timeout_ms = command_timeout_ms;
    c->scripts = scripts;
    c->n_scripts = n_scripts;
    bool ok = false;
    switch (url->kind) {
    case REDIS_URL_SINGLE:
        c->masters = xcalloc(1, sizeof *c->masters);
        c->n_masters = 1;
        ok = node_index(c, url->host, strlen(url->host), url->port) == 0 && redis_conn_node_context(c, 0);
        break;
    case REDIS_URL_SENTINEL:
        c->masters = xcalloc(1, sizeof *c->masters);
        c->n_masters = 1;
        ok = open_sentinel_master(c);
        break;
    case REDIS_URL_CLUSTER:
        c->slot_node = xmalloc(REDIS_SLOTS * sizeof *c->slot_node);
        for (size_t s = 0; s < REDIS_SLOTS; s++)
            c->slot_node[s] = NO_NODE;
        for (size_t i = 0; i < url->n_addrs; i++)
            (void)node_index(c, url->addrs[i].host, strlen(url->addrs[i].host), url->addrs[i].port);
        ok = load_map(c);
        break;
    }
    if (!ok) {
        redis_conn_free(c);
        return NULL;
    }
    c->broken = false; /* a seed or a sentinel that did not answer is not this connection's failure */
    return c;
}

void redis_conn_free(redis_conn_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].ctx)
            redisFree(c->nodes[i].ctx);
    free(c->nodes);
    free(c->slot_node);
    free(c->masters);
    free(c);
}

bool redis_conn_broken(const redis_conn_t *c)
{
    return c->broken;
}

unsigned redis_conn_take_failovers(redis_conn_t *c)
{
    unsigned n = c->failovers;
    c->failovers = 0;
    return n;
}

bool redis_conn_is_cluster(const redis_conn_t *c)
{
    return c->slot_node != NULL;
}

void redis_conn_set_timeout(redis_conn_t *c, int timeout_ms)
{
    c->command_timeout_ms = timeout_ms;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].ctx)
            redisSetTimeout(c->nodes[i].ctx, tv_ms(timeout_ms));
}

void redis_conn_take_stats(redis_conn_t *c, uint64_t *redirects, uint64_t *retries)
{
    *redirects = c ? c->redirects : 0;
    *retries = c ? c->retries : 0;
    if (c)
        c->redirects = c->retries = 0;
}
