/* store/redis_sentinel.c — a thread on Sentinel's +switch-master channel (see redis_sentinel.h). */
#include "store/redis_sentinel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "obs/log.h"
#include "store/redis_reply_limit.h"
#include "util/alloc.h"
#include "util/redis_url.h"

struct redis_sentinel_watch {
    pthread_t thread;
    redis_url_t url;
    int connect_timeout_ms;
    void (*on_switch)(void *arg);
    void *arg;
    atomic_bool stopping;
    pthread_mutex_t lock;   /* guards ctx against stop() shutting its socket down */
    redisContext *ctx;
};

/* "+switch-master" payload: "<name> <old ip> <old port> <new ip> <new port>". */
static bool names_our_master(const redisReply *r, const char *master)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[2]->type != REDIS_REPLY_STRING)
        return false;
    const char *payload = r->element[2]->str;
    size_t n = strlen(master);
    return strncmp(payload, master, n) == 0 && payload[n] == ' ';
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *watch_main(void *arg)
{
    redis_sentinel_watch_t *w = arg;
    size_t next = 0;
    while (!atomic_load(&w->stopping)) {
        const redis_addr_t *s = &w->url.addrs[next++ % w->url.n_addrs];
        struct timeval tv = {w->connect_timeout_ms / 1000, (w->connect_timeout_ms % 1000) * 1000};
        redisContext *c = redis_connect_limited(s->host, s->port, tv);
        /* A sentinel that accepts and never answers must not hold the thread (nor a stop). */
        if (c && !c->err)
            redisSetTimeout(c, tv);
        redisReply *sub = c && !c->err ? redisCommand(c, "SUBSCRIBE +switch-master") : NULL;
        bool ok = sub && sub->type == REDIS_REPLY_ARRAY;
        if (sub)
            freeReplyObject(sub);
        if (!ok) {
            if (c)
                redisFree(c);
            pause_ms(1000);
            continue;
        }
        /* Messages come when they come; stop() shuts the socket, and TCP keepalive (about 30 s
         * on Linux) ends the wait on a sentinel lost without a reset. */
        struct timeval forever = {0, 0};
        redisSetTimeout(c, forever);
        redisEnableKeepAlive(c);
        pthread_mutex_lock(&w->lock);
        w->ctx = c;
        pthread_mutex_unlock(&w->lock);
        void *reply;
        while (!atomic_load(&w->stopping) && redisGetReply(c, &reply) == REDIS_OK) {
            if (names_our_master(reply, w->url.master)) {
                log_warn(NULL, "redis sentinel %s:%d: %s", s->host, s->port, ((redisReply *)reply)->element[2]->str);
                w->on_switch(w->arg);
            }
            freeReplyObject(reply);
        }
        pthread_mutex_lock(&w->lock);
        w->ctx = NULL;
        pthread_mutex_unlock(&w->lock);
        redisFree(c);
        if (!atomic_load(&w->stopping))
            pause_ms(1000);
    }
    return NULL;
}

redis_sentinel_watch_t *redis_sentinel_watch_start(const char *url, int connect_timeout_ms,
                                                   void (*on_switch)(void *arg), void *arg)
{
    redis_url_t u;
    if (!url || !redis_url_parse(url, &u) || u.kind != REDIS_URL_SENTINEL)
        return NULL;
    redis_sentinel_watch_t *w = xcalloc(1, sizeof *w);
    w->url = u;
    w->connect_timeout_ms = connect_timeout_ms;
    w->on_switch = on_switch;
    w->arg = arg;
    pthread_mutex_init(&w->lock, NULL);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        log_error(NULL, "cannot start the sentinel watch thread");
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
    }
    return w;
}

void redis_sentinel_watch_stop(redis_sentinel_watch_t *w)
{
    if (!w)
        return;
    atomic_store(&w->stopping, true);
    pthread_mutex_lock(&w->lock);
    if (w->ctx)
        shutdown(w->ctx->fd, SHUT_RDWR); /* wakes the blocked read */
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
