/*
 * http/proxy_header.h — the PROXY protocol header (versions 1 and 2) a load balancer writes at
 * the start of each connection to name the client it carries (haproxy.org's proxy-protocol.txt).
 *
 * Pure code: the acceptor (acceptor.c) reads the bytes, this says what they are.
 */
#ifndef RANKD_HTTP_PROXY_HEADER_H
#define RANKD_HTTP_PROXY_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "util/must_use.h"

/* The longest header rankd takes: a v1 line is at most 107 bytes; a v2 header is 16 bytes and
 * its addresses (at most 216) and TLVs, which HAProxy keeps to a few hundred bytes. */
#define PROXY_HEADER_MAX 4096

typedef enum {
    PROXY_NEED_MORE, /* a header so far: every byte given belongs to it */
    PROXY_INVALID,   /* not a PROXY header, or a malformed one: close the connection */
    PROXY_DONE,      /* a whole header, header_len bytes */
} proxy_status_t;

typedef struct {
    size_t header_len;
    /* The client's address and port when the header names one (v1 TCP4/TCP6, v2 PROXY of
     * INET/INET6); false for v1 UNKNOWN, v2 LOCAL (the proxy's own health checks) and v2 UNIX
     * or unspecified families, where the connection's peer stands. */
    bool has_source;
    struct sockaddr_storage source;
    socklen_t source_len;
} proxy_header_t;

/* What the first `len` bytes of a connection are. On PROXY_DONE, *out describes the header. */
MUST_USE proxy_status_t proxy_header_parse(const uint8_t *buf, size_t len, proxy_header_t *out);

#endif
