/*
 * util/hostport.h — "host:port" and "[v6addr]:port" as the configuration and URLs write them.
 */
#ifndef RANKD_UTIL_HOSTPORT_H
#define RANKD_UTIL_HOSTPORT_H

#include <stdbool.h>
#include <stddef.h>

/* A port: 1-5 decimal digits naming 1..65535, the n bytes at s. */
bool hostport_port(const char *s, size_t n, int *port);

/*
 * Split the n bytes at s, "host:port" or "[v6addr]:port" (the port may be absent, *port = 0,
 * unless need_port). `*host` points into `s`, without brackets. Host names are
 * [A-Za-z0-9._-]; a bracketed address is [0-9A-Fa-f:.].
 */
bool hostport_split(const char *s, size_t n, bool need_port, const char **host, size_t *host_len, int *port);

#endif
