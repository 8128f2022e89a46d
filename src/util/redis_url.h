/*
 * util/redis_url.h — a Redis address, as API.md writes it:
 *
 *   redis://[:password@]host:port/db                               one server
 *   redis+cluster://[:password@]host:port[,host:port…]             Redis Cluster, by its seed nodes
 *   redis+sentinel://[:password@]host:port[,host:port…]/master[/db] the master Sentinel names
 *
 * One parser for the configuration check and for the connections made from it, so that what
 * `rankd config check` accepts is what the pool and the pipe connect to.
 */
#ifndef RANKD_UTIL_REDIS_URL_H
#define RANKD_UTIL_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    REDIS_URL_SINGLE,
    REDIS_URL_CLUSTER,
    REDIS_URL_SENTINEL,
} redis_url_kind_t;

#define REDIS_URL_ADDRS_MAX 16

typedef struct {
    char host[256]; /* a name or an address (an IPv6 one without its brackets) */
    int port;
} redis_addr_t;

typedef struct {
    redis_url_kind_t kind;
    char host[256];     /* the first address (the server, for REDIS_URL_SINGLE) */
    int port;
    redis_addr_t addrs[REDIS_URL_ADDRS_MAX]; /* every address given: cluster seeds, sentinels */
    size_t n_addrs;
    char password[256]; /* empty: no AUTH (a Sentinel's own password is not supported) */
    char master[128];   /* the master's name, for REDIS_URL_SENTINEL */
    int db;             /* Redis refuses a SELECT past its own `databases`: reported on connecting;
                         * always 0 in a cluster */
} redis_url_t;

/* Parse `url` into *out; false when it is not of one of those forms (then *out is unspecified). */
bool redis_url_parse(const char *url, redis_url_t *out);

#endif
