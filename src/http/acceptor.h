/*
 * http/acceptor.h — the listening socket, and the thread that accepts on it and hands each
 * connection to libmicrohttpd (MHD_add_connection).
 *
 * libmicrohttpd 0.9.75 can stop listening only through MHD_quiesce_daemon(), which with a
 * thread pool and epoll races the workers' own removal of the listening socket from their
 * epoll sets and then aborts the process ("Failed to remove listen FD from epoll set"). At
 * SIGTERM that abort would drop in-flight writes. Owning the socket, rankd stops accepting
 * by closing it, and libmicrohttpd never touches a listening socket.
 */
#ifndef RANKD_HTTP_ACCEPTOR_H
#define RANKD_HTTP_ACCEPTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include "util/must_use.h"

struct MHD_Daemon;
struct rankd_config;
typedef struct acceptor acceptor_t;

typedef struct {
    /* Each connection must begin with a PROXY protocol header (v1 or v2) within 5 s, and is
     * handed over as a connection from the client the header names; one without it is closed
     * (logged at most once a second). */
    bool proxy_protocol;
    /* With proxy_protocol: the configuration whose http.trusted_proxies names the peers that may
     * send a PROXY header (the live one: a reload changes the list). When it names any, a
     * connection from another peer is closed unread (logged at most once a second), as nginx
     * believes a header only from set_real_ip_from: anyone else could pick the address their
     * requests are limited and logged as. NULL, or an empty list: every peer may. */
    _Atomic(const struct rankd_config *) *live;
    /* > 0: each connection's kernel send buffer, fixed at that many bytes (SO_SNDBUF); 0 leaves
     * it to the kernel's autotuning. */
    int send_buffer;
    /* Connections waiting for their first request (or PROXY header), at most this many in all
     * and this many from one client address (0: no such bound), each for at most
     * head_timeout_ms: past them a connection is closed. */
    int max_waiting;
    int max_waiting_per_address;
    int head_timeout_ms;
} acceptor_opts_t;

/* What the acceptor did, for /metrics: its owner's, shared with the acceptor's thread. */
typedef struct acceptor_stats {
    atomic_ullong refused_400, refused_414, refused_431, refused_505; /* first requests answered here */
    atomic_ullong closed_waiting; /* connections closed while waiting: a cap, or no request in time */
    atomic_int waiting;           /* connections waiting for their first request now */
} acceptor_stats_t;

/*
 * Bind and listen on `addr`; NULL with a message in `err` (an address in use, say).
 *
 * Each connection's first request head is checked (http/request_head.h) before libmicrohttpd
 * reads it, so that a request libmicrohttpd would answer with an HTML page of its own gets the
 * API's JSON error instead, written here; the connection then closes. Nothing of a good request
 * is taken off the socket (it is peeked at): libmicrohttpd reads it whole. `stats` (the
 * caller's, zeroed) must outlive the acceptor.
 */
acceptor_t *acceptor_listen(const struct sockaddr_in *addr, int backlog, const acceptor_opts_t *opts,
                            acceptor_stats_t *stats, char *err, size_t errlen);

/* Start the thread handing accepted connections to `daemon` (started with
 * MHD_USE_NO_LISTEN_SOCKET and MHD_USE_ITC); false when it cannot start. */
MUST_USE bool acceptor_start(acceptor_t *a, struct MHD_Daemon *daemon);

/* Stop the thread and close the socket: from here on connections are refused. A connection
 * whose whole first request had arrived, still held here or queued in the backlog, is answered
 * 503 unavailable with Retry-After: 1 (not reset); one without a request yet is closed. Waits
 * up to a second for those clients to close after their answers. Frees `a` (NULL is fine).
 * Call before MHD_stop_daemon(). */
void acceptor_close(acceptor_t *a);

#endif
