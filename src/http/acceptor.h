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

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>

struct MHD_Daemon;
typedef struct acceptor acceptor_t;

/*
 * Bind and listen on `addr`; NULL with a message in `err` (an address in use, say). With
 * `proxy_protocol`, each connection must begin with a PROXY protocol header (v1 or v2) within
 * 5 s, and is handed over as a connection from the client the header names; one without it is
 * closed (logged at most once a second). `send_buffer` > 0 fixes each connection's kernel send
 * buffer at that many bytes (SO_SNDBUF); 0 leaves it to the kernel's autotuning.
 */
acceptor_t *acceptor_listen(const struct sockaddr_in *addr, int backlog, bool proxy_protocol, int send_buffer,
                            char *err, size_t errlen);

/* Start the thread handing accepted connections to `daemon` (started with
 * MHD_USE_NO_LISTEN_SOCKET and MHD_USE_ITC); false when it cannot start. */
bool acceptor_start(acceptor_t *a, struct MHD_Daemon *daemon);

/* Stop the thread and close the socket: from here on connections are refused. Frees `a`
 * (NULL is fine). Call before MHD_stop_daemon(). */
void acceptor_close(acceptor_t *a);

#endif
