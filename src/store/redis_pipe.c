/* store/redis_pipe.c — a pipelined Redis connection served by one thread. */
#include "store/redis_pipe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"
#include "store/redis.h"
#include "store/redis_conn.h"
#include "store/redis_merge.h"
#include "store/resp.h"
#include "util/alloc.h"

#define PIPE_MAX 256  /* calls taken at once: commands written before their replies are read */

struct redis_pipe {
    workq_t queue;
    pthread_t thread;

    redis_url_t url;
    int connect_timeout_ms, command_timeout_ms;
    const char *const *scripts;
    size_t n_scripts;
    redis_conn_t *conn;     /* the thread's only: a context per node of a cluster */
    long long retry_at;     /* monotonic ms */
    redis_merge_args_t margs; /* the thread's: a merged command's arguments, kept for the next batch */
    buf_t text;             /* the thread's: a command's RESP text, kept for the next one */
    atomic_uint_fast64_t batches, commands, merged; /* written to Redis, for /metrics */
    atomic_uint_fast64_t redirects;
    bool from_replicas;     /* RANKD_REDIS_READ_FROM=replicas, on a cluster */
    redis_pool_t *pool;     /* told of failovers and broken connections */
    atomic_bool reconnect;  /* redis_pipe_reconnect() */
    atomic_uint_fast64_t replica_reads, replica_misses; /* reads a replica answered, or was behind for */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Open the connection (which loads the scripts on every server it connects to); false, and a
 * pause, on failure. */
static bool ensure_connected(redis_pipe_t *p)
{
    if (atomic_exchange(&p->reconnect, false) && p->conn) {
        redis_conn_free(p->conn);
        p->conn = NULL;
    }
    if (p->conn)
        return true;
    if (mono_ms() < p->retry_at)
        return false;
    p->conn = redis_conn_open(&p->url, p->connect_timeout_ms, p->command_timeout_ms, p->scripts, p->n_scripts);
    if (!p->conn)
        p->retry_at = mono_ms() + 1000;
    return p->conn != NULL;
}

/* Whether a call is a range block (redis_merge_t.tx): several commands, one transaction. */
static bool is_tx(const redis_call_t *c)
{
    return c->merge && c->merge->tx;
}

/* The key that routes a call: KEYS[1] of a script, a range block's zset, else the first argument. */
static const char *call_key(const redis_call_t *c, size_t *len)
{
    bool script = c->argc > 3 && (strcmp(c->argv[0], "EVALSHA") == 0 || strcmp(c->argv[0], "EVAL") == 0);
    int at = script ? 3 : is_tx(c) ? 2 : 1; /* a range block's zset is its argv[2] */
    if (c->argc <= at) {
        *len = 0;
        return NULL;
    }
    *len = c->argvlen ? c->argvlen[at] : strlen(c->argv[at]);
    return c->argv[at];
}

static redis_call_t *call_of(workq_item_t *item)
{
    return item ? WORKQ_OWNER(item, redis_call_t, link) : NULL;
}

/* The command of `c`, merged with the calls chained to it: its arguments (borrowed until the next
 * call) and how many. */
static int command_of(redis_pipe_t *p, const redis_call_t *c, const char ***argv, const size_t **argvlen)
{
    if (!c->merged) {
        *argv = (const char **)c->argv;
        *argvlen = c->argvlen;
        return c->argc;
    }
    size_t n = redis_merge_command(c, &p->margs);
    *argv = p->margs.argv;
    *argvlen = p->margs.argvlen;
    return (int)n;
}

/* One command of a batch: a call's (or merged calls') command, or a ROLE for replica reads. */
typedef struct {
    redis_call_t *call;   /* NULL: a ROLE */
    size_t skip;          /* replies before the one kept: a range block's +OK and QUEUED */
    int node;             /* where it was sent */
    int master;           /* a read sent to a replica: the master it stands for; else -1 */
    redisContext *ctx;    /* NULL once its node failed in this batch */
    redisReply *reply;
} pipe_cmd_t;

#define ROLES_MAX 32 /* nodes asked for their offset in one batch; more read from masters */
#define CMDS_MAX (PIPE_MAX + ROLES_MAX)

/* Append a command to `node`; false when its node cannot be reached. */
static bool append_to(redis_pipe_t *p, pipe_cmd_t *cmds, size_t *n, redis_call_t *call, int node, int master)
{
    redisContext *ctx = redis_conn_node_context(p->conn, node);
    if (!ctx)
        return false;
    bool ok;
    size_t skip = 0;
    if (call && is_tx(call)) {
        buf_reset(&p->text);
        skip = redis_merge_tx_text(call, &p->text) - 1;
        ok = redisAppendFormattedCommand(ctx, p->text.data, p->text.len) == REDIS_OK;
    } else if (call) {
        const char **argv;
        const size_t *argvlen;
        int argc = command_of(p, call, &argv, &argvlen);
        buf_reset(&p->text);
        resp_command(&p->text, argc, argv, argvlen);
        ok = redisAppendFormattedCommand(ctx, p->text.data, p->text.len) == REDIS_OK;
    } else {
        ok = redisAppendCommand(ctx, "ROLE") == REDIS_OK;
    }
    if (ok)
        cmds[(*n)++] = (pipe_cmd_t){call, skip, node, master, ctx, NULL};
    return ok;
}

/* The offset a batch's ROLE of `node` showed, or -1. */
static long long role_offset(const pipe_cmd_t *cmds, size_t n, int node, bool of_master)
{
    long long off;
    for (size_t i = 0; i < n; i++)
        if (!cmds[i].call && cmds[i].node == node)
            return redis_role_offset(cmds[i].reply, of_master, &off) ? off : -1;
    return -1;
}

static bool role_asked(const pipe_cmd_t *cmds, size_t n, int node)
{
    for (size_t i = 0; i < n; i++)
        if (!cmds[i].call && cmds[i].node == node)
            return true;
    return false;
}

/* Read the reply of every command of cmds[from..n) in order (each context's come in the order
 * its commands went); a context that fails fails its node's later commands too. */
static void read_replies(redis_pipe_t *p, pipe_cmd_t *cmds, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        void *reply = NULL;
        bool ok = true;
        for (size_t k = 0; ok && cmds[i].ctx && k < cmds[i].skip; k++) {
            ok = redisGetReply(cmds[i].ctx, &reply) == REDIS_OK;
            if (reply)
                freeReplyObject(reply);
            reply = NULL;
        }
        if (cmds[i].ctx && (!ok || redisGetReply(cmds[i].ctx, &reply) != REDIS_OK)) {
            for (size_t j = i + 1; j < n; j++)
                if (cmds[j].node == cmds[i].node)
                    cmds[j].ctx = NULL;
            redis_conn_node_failed(p->conn, cmds[i].node);
        }
        cmds[i].reply = reply;
    }
}

/* Write every command (merged calls as one) to the node that serves its key, or to one of its
 * replicas, then read every reply in order; then send again to the master what a replica
 * behind it answered, and follow a cluster's redirections. */
static void run_batch(redis_pipe_t *p, redis_call_t *calls)
{
    pipe_cmd_t cmds[CMDS_MAX + PIPE_MAX]; /* the batch's, then the reads sent again to masters */
    redis_call_t *routed[PIPE_MAX];
    int route[PIPE_MAX];
    size_t n = 0, n_routed = 0, merged = 0, roles = 0;
    for (redis_call_t *c = calls; c; c = call_of(c->link.next))
        c->reply = NULL;
    if (ensure_connected(p)) {
        redis_merge_group(calls);
        unsigned long epoch = p->pool ? redis_epoch(p->pool) : 0;
        /* Route first: reading the slot map again may close contexts, none of them in use yet. */
        for (redis_call_t *c = calls; c && n_routed < PIPE_MAX; c = call_of(c->link.next)) {
            if (c->merged_at > 0)
                continue; /* in the command of the call it merged with */
            if (c->epoch != 0 && c->epoch != epoch)
                continue; /* trusted before an outage that began since: it fails unsent */
            size_t key_len;
            const char *key = call_key(c, &key_len);
            route[n_routed] = redis_conn_node(p->conn, key, key_len);
            routed[n_routed++] = c;
        }
        for (size_t i = 0; i < n_routed; i++) {
            redis_call_t *c = routed[i];
            int node = route[i], replica = p->from_replicas ? redis_conn_replica(p->conn, node) : -1;
            if (replica >= 0 && roles + !role_asked(cmds, n, node) + !role_asked(cmds, n, replica) > ROLES_MAX)
                replica = -1;
            /* The master's offset is asked after the read was, the replica's just before it. */
            size_t before = n;
            if (replica >= 0 && !role_asked(cmds, n, node) && !append_to(p, cmds, &n, NULL, node, -1))
                replica = -1;
            if (replica >= 0 && !role_asked(cmds, n, replica) && !append_to(p, cmds, &n, NULL, replica, -1))
                replica = -1;
            roles += n - before;
            bool ok = replica >= 0 ? append_to(p, cmds, &n, c, replica, node) : append_to(p, cmds, &n, c, node, -1);
            if (!ok)
                continue; /* its node cannot be reached: it fails, as if Redis were down */
            merged += c->merged != NULL;
        }
        if (n) {
            atomic_fetch_add_explicit(&p->batches, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&p->commands, n, memory_order_relaxed);
            atomic_fetch_add_explicit(&p->merged, merged, memory_order_relaxed);
        }
    }
    /* Every reply is read before any call completes: each done() wakes an event loop, which
     * would otherwise take the CPU back after every reply. */
    read_replies(p, cmds, 0, n);
    /* A replica answers only when it had every write its master had when the batch went out. */
    size_t batch = n;
    uint64_t from_replicas = 0;
    for (size_t i = 0; i < batch; i++) {
        if (cmds[i].master < 0)
            continue;
        long long r_off = role_offset(cmds, batch, cmds[i].node, false);
        long long m_off = role_offset(cmds, batch, cmds[i].master, true);
        if (cmds[i].reply && r_off >= 0 && m_off >= 0 && r_off >= m_off) {
            from_replicas++;
            continue;
        }
        if (cmds[i].reply)
            freeReplyObject(cmds[i].reply);
        cmds[i].reply = NULL;
        cmds[i].ctx = NULL;
        (void)append_to(p, cmds, &n, cmds[i].call, cmds[i].master, -1); /* its reply stands for this one */
    }
    read_replies(p, cmds, batch, n);
    atomic_fetch_add_explicit(&p->replica_reads, from_replicas, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->replica_misses, n - batch, memory_order_relaxed);
    /* Then, with no reply pending on any context, what a cluster redirected is sent again. */
    for (size_t i = 0; i < n; i++) {
        redisReply *r = cmds[i].reply;
        if (!cmds[i].call || (i < batch && cmds[i].master >= 0 && !r))
            continue; /* a ROLE, or a replica's answer that a master's replaces */
        /* A range block that met a redirection fails (EXECABORT): its reader falls back to the
         * one-script read, which follows it. */
        if (r && r->type == REDIS_REPLY_ERROR && !is_tx(cmds[i].call)) {
            size_t key_len;
            const char *key = call_key(cmds[i].call, &key_len);
            const char **argv;
            const size_t *argvlen;
            int argc = command_of(p, cmds[i].call, &argv, &argvlen);
            r = redis_conn_settle(p->conn, cmds[i].node, r, key, key_len, argc, argv, argvlen);
            if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
                redis_conn_node_reload(p->conn, cmds[i].node); /* SCRIPT FLUSH: a new context loads them again */
            cmds[i].reply = r;
        }
        if (r && !redis_merge_hand_out(cmds[i].call, r))
            log_error(NULL, "redis pipe: a merged reply does not hold one reply per call"); /* they fail as if Redis were down */
    }
    redis_call_t *c = calls;
    while (c) {
        redis_call_t *next = call_of(c->link.next); /* done() may free the call */
        c->done(c);
        c = next;
    }
    for (size_t i = 0; i < n; i++)
        if (cmds[i].reply)
            freeReplyObject(cmds[i].reply);
    uint64_t redirects, retries;
    redis_conn_take_stats(p->conn, &redirects, &retries);
    atomic_fetch_add_explicit(&p->redirects, redirects, memory_order_relaxed);
    /* Readers alone may see a failover or a restart: the pool begins a new epoch, in which each
     * window is trusted again once its mark is checked. */
    if (p->conn && p->pool && (redis_conn_take_failovers(p->conn) > 0 || redis_conn_broken(p->conn)))
        redis_pool_failover(p->pool);
    /* A cluster finds its nodes again by its slot map; one server is connected to again from
     * the start, so that Sentinel is asked where the master is now. */
    if (p->conn && redis_conn_broken(p->conn) && !redis_conn_is_cluster(p->conn)) {
        redis_conn_free(p->conn);
        p->conn = NULL;
        p->retry_at = mono_ms() + 1000;
    }
}

static void *pipe_main(void *arg)
{
    redis_pipe_t *p = arg;
    if (!workq_consumer_defers())
        log_warn(NULL, "redis pipe: cannot make the thread SCHED_BATCH; its batches stay small");
    workq_item_t *calls;
    while ((calls = workq_take(&p->queue, PIPE_MAX, NULL)) != NULL)
        run_batch(p, call_of(calls));
    return NULL;
}

redis_pipe_t *redis_pipe_start(const char *url, int connect_timeout_ms, int command_timeout_ms,
                               const char *const *scripts, size_t n_scripts, bool from_replicas, redis_pool_t *pool)
{
    if (!url || !*url)
        return NULL;
    redis_pipe_t *p = xcalloc(1, sizeof *p);
    buf_init(&p->text);
    if (!redis_url_parse(url, &p->url)) {
        free(p);
        return NULL;
    }
    p->connect_timeout_ms = connect_timeout_ms;
    p->command_timeout_ms = command_timeout_ms;
    p->scripts = scripts;
    p->n_scripts = n_scripts;
    p->from_replicas = from_replicas;
    p->pool = pool;
    workq_init(&p->queue);
    if (pthread_create(&p->thread, NULL, pipe_main, p) != 0) {
        log_error(NULL, "cannot start the redis pipe thread");
        workq_destroy(&p->queue);
        free(p);
        return NULL;
    }
    return p;
}

void redis_pipe_stop(redis_pipe_t *p)
{
    if (!p)
        return;
    workq_stop(&p->queue);
    pthread_join(p->thread, NULL);
    redis_conn_free(p->conn);
    workq_destroy(&p->queue);
    redis_merge_args_free(&p->margs);
    buf_free(&p->text);
    free(p);
}

void redis_pipe_stats(redis_pipe_t *p, uint64_t *batches, uint64_t *commands, uint64_t *merged)
{
    *batches = p ? atomic_load(&p->batches) : 0;
    *commands = p ? atomic_load(&p->commands) : 0;
    *merged = p ? atomic_load(&p->merged) : 0;
}

uint64_t redis_pipe_redirects(redis_pipe_t *p)
{
    return p ? atomic_load(&p->redirects) : 0;
}

void redis_pipe_reconnect(redis_pipe_t *p)
{
    if (p)
        atomic_store(&p->reconnect, true);
}

void redis_pipe_replica_stats(redis_pipe_t *p, uint64_t *answered, uint64_t *behind)
{
    *answered = p ? atomic_load(&p->replica_reads) : 0;
    *behind = p ? atomic_load(&p->replica_misses) : 0;
}

void redis_pipe_submit(redis_pipe_t *p, redis_call_t *call)
{
    workq_push(&p->queue, &call->link);
}
