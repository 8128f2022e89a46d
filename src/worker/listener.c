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

#include "obs/log.h"
#include "store/pg_pool.h"
#include "util/alloc.h"

struct listener {
    pthread_t thread;
    atomic_bool stopping;
    char *conninfo;
    int connect_timeout_s;
    l1_t *l1;
};

/* One line: "W gen day old_sk|- old_ms|- new_sk new_ms player", "P gen day" or "B gen". */
static void apply_line(l1_t *l1, const char *line)
{
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
    } else if (line[0] == 'P' && sscanf(line, "P %lld %lld", &gen, &day) == 2) {
        l1_invalidate(l1, gen, day, NULL, NULL, true);
    } else if (line[0] == 'B' && sscanf(line, "B %lld", &gen) == 1) {
        l1_invalidate_board(l1, gen);
    } else {
        l1_clear(l1); /* not understood: be safe */
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

static PGconn *listen_connect(listener_t *l)
{
    char err[512];
    PGconn *c = pg_connect(l->conninfo, 0, l->connect_timeout_s, err, sizeof err);
    if (!c)
        return NULL;
    PGresult *r = PQexec(c, "LISTEN rankd_l1");
    bool ok = pg_ok(r);
    PQclear(r);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
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
                l1_clear(l->l1); /* notifications may have been missed meanwhile */
                log_info(NULL, "cache invalidation listener reconnected; cache cleared");
            }
            lost = false;
        }
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        int rc = poll(&pfd, 1, 200);
        if (rc < 0)
            continue;
        if (rc > 0 && !PQconsumeInput(c)) {
            log_warn(NULL, "cache invalidation listener lost its connection");
            PQfinish(c);
            c = NULL;
            lost = true;
            l1_clear(l->l1);
            continue;
        }
        PGnotify *n;
        while ((n = PQnotifies(c))) {
            listener_apply(l->l1, n->extra);
            PQfreemem(n);
        }
    }
    if (c)
        PQfinish(c);
    return NULL;
}

listener_t *listener_start(const char *conninfo, int connect_timeout_s, l1_t *l1)
{
    if (!l1)
        return NULL;
    listener_t *l = xcalloc(1, sizeof *l);
    l->conninfo = xstrdup(conninfo);
    l->connect_timeout_s = connect_timeout_s;
    l->l1 = l1;
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
