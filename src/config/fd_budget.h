/*
 * config/fd_budget.h — client connections and live listeners under the process's descriptor
 * limit.
 *
 * Each connection libmicrohttpd holds is a descriptor, and so is each live stream's socket once
 * the stream has taken it (http/stream.c): libmicrohttpd no longer counts those, so
 * http.max_connections alone does not bound the descriptors. Either limit past RLIMIT_NOFILE
 * (less room for PostgreSQL and Redis connections, files, the listening sockets) is lowered to
 * it; the two together past it are not (a listener was a connection first, and a load of mostly
 * streams or mostly requests uses one limit, not both), but the operator is told: when both fill,
 * accept() fails, for every client at once.
 */
#ifndef RANKD_CONFIG_FD_BUDGET_H
#define RANKD_CONFIG_FD_BUDGET_H

#include <stdbool.h>

/* Descriptors kept for everything but clients' sockets. */
#define FD_BUDGET_RESERVED 256

typedef struct {
    int max_connections;    /* what http.max_connections may be */
    int max_listeners;      /* what live.max_listeners may be */
    bool shrunk;            /* either was lowered */
    bool shared;            /* both together may pass the limit */
    unsigned long long room;/* descriptors for clients' sockets */
} fd_budget_t;

/* The two limits as configured, each lowered to the room `nofile` descriptors leave for clients'
 * sockets (nofile 0: no limit). */
fd_budget_t fd_budget_fit(unsigned long long nofile, int max_connections, int max_listeners);

#endif
