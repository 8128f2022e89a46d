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
    atomic_uint_fast64_t batches, commands, merged; /* written to Redis, for /metrics */
    atomic_uint_fast64_t redirects;
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
    if (p->conn)
        return true;
    if (mono_ms() < p->retry_at)
        return false;
    p->conn = redis_conn_open(&p->url, p->connect_timeout_ms, p->command_timeout_ms, p->scripts, p->n_scripts);
    if (!p->conn)
        p->retry_at = mono_ms() + 1000;
    return p->conn != NULL;
}

/* The key that routes a call: KEYS[1] of a script, else the first argument. */
static const char *call_key(const redis_call_t *c, size_t *len)
{
    bool script = c->argc > 3 && (strcmp(c->argv[0], "EVALSHA") == 0 || strcmp(c->argv[0], "EVAL") == 0);
    int at = script ? 3 : 1;
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

/* Write every command (merged calls as one) to the node that serves its key, then read every
 * reply in order, following a cluster's redirections. */
static void run_batch(redis_pipe_t *p, redis_call_t *calls)
{
    redisReply *replies[PIPE_MAX]; /* one per command written: freed after every done() */
    redis_call_t *sent_by[PIPE_MAX];
    redisContext *ctx_of[PIPE_MAX]; /* NULL once its node failed in this batch */
    int node_of[PIPE_MAX];
    size_t sent = 0, merged = 0;
    for (redis_call_t *c = calls; c; c = call_of(c->link.next))
        c->reply = NULL;
    if (ensure_connected(p)) {
        redis_merge_group(calls);
        for (redis_call_t *c = calls; c && sent < PIPE_MAX; c = call_of(c->link.next)) {
            if (c->merged_at > 0)
                continue; /* in the command of the call it merged with */
            size_t key_len;
            const char *key = call_key(c, &key_len);
            int node = redis_conn_node(p->conn, key, key_len);
            redisContext *ctx = redis_conn_node_context(p->conn, node);
            const char **argv;
            const size_t *argvlen;
            int argc = command_of(p, c, &argv, &argvlen);
            if (!ctx || redisAppendCommandArgv(ctx, argc, argv, argvlen) != REDIS_OK)
                continue; /* its node cannot be reached: it fails, as if Redis were down */
            merged += c->merged != NULL;
            node_of[sent] = node;
            ctx_of[sent] = ctx;
            sent_by[sent++] = c;
        }
        if (sent) {
            atomic_fetch_add_explicit(&p->batches, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&p->commands, sent, memory_order_relaxed);
            atomic_fetch_add_explicit(&p->merged, merged, memory_order_relaxed);
        }
    }
    /* Every reply is read before any call completes: each done() wakes an event loop, which
     * would otherwise take the CPU back after every reply. */
    redisReply *raw[PIPE_MAX];
    for (size_t i = 0; i < sent; i++) {
        void *reply = NULL;
        if (ctx_of[i] && redisGetReply(ctx_of[i], &reply) != REDIS_OK) {
            for (size_t j = i + 1; j < sent; j++)
                if (node_of[j] == node_of[i])
                    ctx_of[j] = NULL;
            redis_conn_node_failed(p->conn, node_of[i]);
        }
        raw[i] = reply;
    }
    /* Then, with no reply pending on any context, what a cluster redirected is sent again. */
    size_t got = 0;
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = raw[i];
        if (r && r->type == REDIS_REPLY_ERROR) {
            size_t key_len;
            const char *key = call_key(sent_by[i], &key_len);
            const char **argv;
            const size_t *argvlen;
            int argc = command_of(p, sent_by[i], &argv, &argvlen);
            r = redis_conn_settle(p->conn, node_of[i], r, key, key_len, argc, argv, argvlen);
            if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
                redis_conn_node_failed(p->conn, node_of[i]); /* SCRIPT FLUSH: a new context loads them again */
        }
        if (!r)
            continue;
        replies[got++] = r;
        if (!redis_merge_hand_out(sent_by[i], r))
            log_error(NULL, "redis pipe: a merged reply does not hold one reply per call"); /* they fail as if Redis were down */
    }
    redis_call_t *c = calls;
    while (c) {
        redis_call_t *next = call_of(c->link.next); /* done() may free the call */
        c->done(c);
        c = next;
    }
    for (size_t i = 0; i < got; i++)
        freeReplyObject(replies[i]);
    uint64_t redirects, retries;
    redis_conn_take_stats(p->conn, &redirects, &retries);
    atomic_fetch_add_explicit(&p->redirects, redirects, memory_order_relaxed);
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
                               const char *const *scripts, size_t n_scripts)
{
    if (!url || !*url)
        return NULL;
    redis_pipe_t *p = xcalloc(1, sizeof *p);
    if (!redis_url_parse(url, &p->url)) {
        free(p);
        return NULL;
    }
    p->connect_timeout_ms = connect_timeout_ms;
    p->command_timeout_ms = command_timeout_ms;
    p->scripts = scripts;
    p->n_scripts = n_scripts;
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

void redis_pipe_submit(redis_pipe_t *p, redis_call_t *call)
{
    workq_push(&p->queue, &call->link);
}
