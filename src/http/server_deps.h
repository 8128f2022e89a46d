/*
 * http/server_deps.h — what the HTTP server works with (http/server.h starts it with them).
 *
 * A header of its own so that the server's files can share its state (http/server_conn.h, which
 * holds these by value) without including server.h, whose module is server.c's.
 */
#ifndef RANKD_HTTP_SERVER_DEPS_H
#define RANKD_HTTP_SERVER_DEPS_H

#include <stdatomic.h>

#include "config/config.h"
#include "http/dispatch.h"

struct l1;
struct metrics;
struct offload;

/* What the server works with; each part outlives it. */
typedef struct {
    const rankd_config_t *cfg;             /* as started: address, limits, timeouts */
    _Atomic(const rankd_config_t *) *live; /* what SIGHUP swaps: keys, CORS origins, trusted proxies */
    struct metrics *metrics;
    struct l1 *l1;           /* the response cache; NULL when it is off */
    struct offload *encoder; /* a thread compressing large answers off the event loop; NULL: none */
    http_dispatch_t api;
} http_server_deps_t;

#endif
