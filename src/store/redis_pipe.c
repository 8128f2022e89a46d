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
    redisContext *conn;     /* the thread's only */
    long long retry_at;     /* monotonic ms */
    redis_merge_args_t margs; /* the thread's: a merged command's arguments, kept for the next batch */
    atomic_uint_fast64_t batches, commands, merged; /* written to Redis, for /metrics */
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool command_ok(redisContext *c, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* Connect, authenticate, select, load the scripts; false (and a pause) on failure. */
static bool ensure_connected(redis_pipe_t *p)
{
    if (p->conn)
        return true;
    if (mono_ms() < p->retry_at)
        return false;
    struct timeval tv = {p->connect_timeout_ms / 1000, (p->connect_timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(p->url.host, p->url.port, tv);
    bool ok = c && !c->err;
    if (ok) {
        struct timeval ct = {p->command_timeout_ms / 1000, (p->command_timeout_ms % 1000) * 1000};
        redisSetTimeout(c, ct);
        char db[16];
        snprintf(db, sizeof db, "%d", p->url.db);
        const char *auth[] = {"AUTH", p->url.password};
        const char *sel[] = {"SELECT", db};
        ok = (!p->url.password[0] || command_ok(c, 2, auth)) && (!p->url.db || command_ok(c, 2, sel));
        for (size_t i = 0; ok && i < p->n_scripts; i++) {
            const char *load[] = {"SCRIPT", "LOAD", p->scripts[i]};
            ok = command_ok(c, 3, load);
        }
    }
    if (!ok) {
        if (c)
            redisFree(c);
        p->retry_at = mono_ms() + 1000;
        return false;
    }
    p->conn = c;
    return true;
}

static redis_call_t *call_of(workq_item_t *item)
{
    return item ? WORKQ_OWNER(item, redis_call_t, link) : NULL;
}

/* Append the command of `c`, merged with the calls chained to it; false when hiredis cannot. */
static bool append_command(redis_pipe_t *p, const redis_call_t *c)
{
    if (!c->merged)
        return redisAppendCommandArgv(p->conn, c->argc, (const char **)c->argv, c->argvlen) == REDIS_OK;
    size_t n = redis_merge_command(c, &p->margs);
    return redisAppendCommandArgv(p->conn, (int)n, p->margs.argv, p->margs.argvlen) == REDIS_OK;
}

/* Write every command (merged calls as one), then read every reply in order. */
static void run_batch(redis_pipe_t *p, redis_call_t *calls)
{
    redisReply *replies[PIPE_MAX]; /* one per command written: freed after every done() */
    redis_call_t *sent_by[PIPE_MAX];
    size_t sent = 0, merged = 0;
    for (redis_call_t *c = calls; c; c = call_of(c->link.next))
        c->reply = NULL;
    if (ensure_connected(p)) {
        redis_merge_group(calls);
        for (redis_call_t *c = calls; c && sent < PIPE_MAX; c = call_of(c->link.next)) {
            if (c->merged_at > 0)
                continue; /* in the command of the call it merged with */
            if (!append_command(p, c))
                break;
            merged += c->merged != NULL;
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
    bool broken = sent == 0 && p->conn;
    bool reload = false;
    size_t got = 0;
    while (got < sent && !broken) {
        void *reply = NULL;
        if (redisGetReply(p->conn, &reply) != REDIS_OK) {
            broken = true;
            break;
        }
        const redisReply *r = reply;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
            reload = true; /* SCRIPT FLUSH: reconnect, which loads them again */
        replies[got] = reply;
        if (!redis_merge_hand_out(sent_by[got], reply))
            log_error(NULL, "redis pipe: a merged reply does not hold one reply per call"); /* they fail as if Redis were down */
        got++;
    }
    redis_call_t *c = calls;
    while (c) {
        redis_call_t *next = call_of(c->link.next); /* done() may free the call */
        c->done(c);
        c = next;
    }
    for (size_t i = 0; i < got; i++)
        freeReplyObject(replies[i]);
    if (reload && !broken && p->conn) {
        redisFree(p->conn);
        p->conn = NULL;
    }
    if (broken && p->conn) {
        log_warn(NULL, "redis pipe: connection failed: %s", p->conn->errstr);
        redisFree(p->conn);
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
    if (p->conn)
        redisFree(p->conn);
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

void redis_pipe_submit(redis_pipe_t *p, redis_call_t *call)
{
    workq_push(&p->queue, &call->link);
}
