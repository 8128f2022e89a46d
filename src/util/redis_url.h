/*
 * util/redis_url.h — redis://[:password@]host:port/db, as API.md writes a Redis address.
 *
 * One parser for the configuration check and for the connections made from it, so that what
 * `rankd config check` accepts is what the pool and the pipe connect to.
 */
#ifndef RANKD_UTIL_REDIS_URL_H
#define RANKD_UTIL_REDIS_URL_H

#include <stdbool.h>

typedef struct {
    char host[256];     /* a name or an address (an IPv6 one without its brackets) */
    char password[256]; /* empty: no AUTH */
    int port;
    int db;             /* Redis refuses a SELECT past its own `databases`: reported on connecting */
} redis_url_t;

/* Parse `url` into *out; false when it is not of that form (then *out is unspecified). */
bool redis_url_parse(const char *url, redis_url_t *out);

#endif
