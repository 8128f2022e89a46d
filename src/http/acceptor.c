/* http/acceptor.c — accept connections and hand them to libmicrohttpd (see acceptor.h). */
#include "http/acceptor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>

#include "http/proxy_header.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"

/* With the PROXY protocol: connections whose header has not arrived yet, at most this many (a
 * load balancer writes it with its first packet), for at most this long. */
#define PENDING_MAX 1024
#define HEADER_TIMEOUT_MS 5000

/* A connection waiting for its PROXY header. */
typedef struct {
    int fd;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    int64_t deadline_ms;
    size_t have;  /* header bytes read from the socket so far, in buf */
    uint8_t *buf; /* PROXY_HEADER_MAX bytes, owned */
} pending_t;

struct acceptor {
    int listen_fd;
    int stop_fd; /* an eventfd: written once to end the thread */
    bool proxy_protocol;
    bool running;
    pthread_t thread;
    struct MHD_Daemon *daemon;
    /* The thread's own: */
    pending_t *pending; /* PENDING_MAX of them, n_pending in use */
    size_t n_pending;
    time_t refused_logged; /* when a refused connection was last logged */
    unsigned long refused; /* since then */
    time_t bad_logged;     /* when a connection without a good PROXY header was last logged */
    unsigned long bad;     /* since then */
    const char *bad_why;   /* the last one's reason */
};

acceptor_t *acceptor_listen(const struct sockaddr_in *addr, int backlog, bool proxy_protocol, int send_buffer,
                            char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create the listening socket: %s", strerror(errno));
        return NULL;
    }
    int on = 1;
    char where[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &addr->sin_addr, where, sizeof where);
    /* Accepted connections inherit the listener's send buffer (and lose the kernel's autotuning). */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0
        || (send_buffer > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer) != 0)
        || bind(fd, (const struct sockaddr *)addr, sizeof *addr) != 0 || listen(fd, backlog) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", where, (unsigned)ntohs(addr->sin_port), strerror(errno));
        close(fd);
        return NULL;
    }
    int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd < 0) {
        snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    acceptor_t *a = xcalloc(1, sizeof *a);
    a->listen_fd = fd;
    a->stop_fd = stop_fd;
    a->proxy_protocol = proxy_protocol;
    if (proxy_protocol)
        a->pending = xcalloc(PENDING_MAX, sizeof *a->pending);
    return a;
}

/* Hand `fd` to libmicrohttpd as a connection from `addr`. */
static void hand_over(acceptor_t *a, int fd, const struct sockaddr *addr, socklen_t len)
{
    /* On failure (the connection limits) libmicrohttpd closes the socket itself; the client
     * sees the connection close. Logged at most once a second. */
    if (MHD_add_connection(a->daemon, fd, addr, len) != MHD_YES) {
        a->refused++;
        time_t now = time(NULL);
        if (now != a->refused_logged) {
            log_warn(NULL, "connection limit reached: %lu connection(s) closed since the last such line", a->refused);
            a->refused_logged = now;
            a->refused = 0;
        }
    }
}

/* Close a connection that did not begin with a good PROXY header; logged at most once a second. */
static void refuse_header(acceptor_t *a, int fd, const char *why)
{
    close(fd);
    a->bad++;
    a->bad_why = why;
    time_t now = time(NULL);
    if (now != a->bad_logged) {
        log_warn(NULL, "http.proxy_protocol is on: %lu connection(s) closed since the last such line (the last: %s)",
                 a->bad, a->bad_why);
        a->bad_logged = now;
        a->bad = 0;
    }
}

static void drop_pending(acceptor_t *a, size_t i)
{
    free(a->pending[i].buf);
    a->pending[i] = a->pending[--a->n_pending];
}

/*
 * Read what has arrived of pending connection i's header. Only bytes known to be the header's
 * are taken off the socket (the parser's NEED_MORE vouches for every byte it saw), so the request
 * after it is left for libmicrohttpd. False when the connection left the pending list.
 */
static bool read_header(acceptor_t *a, size_t i)
{
    pending_t *p = &a->pending[i];
    ssize_t got = recv(p->fd, p->buf + p->have, PROXY_HEADER_MAX - p->have, MSG_PEEK);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return true;
    if (got <= 0) {
        close(p->fd); /* gone before its header: nothing to say */
        drop_pending(a, i);
        return false;
    }
    proxy_header_t h;
    proxy_status_t st = proxy_header_parse(p->buf, p->have + (size_t)got, &h);
    if (st == PROXY_INVALID) {
        refuse_header(a, p->fd, "no PROXY protocol header, or a malformed one");
        drop_pending(a, i);
        return false;
    }
    size_t take = st == PROXY_DONE ? h.header_len - p->have : (size_t)got;
    if (recv(p->fd, p->buf + p->have, take, 0) != (ssize_t)take) { /* peeked: cannot be short */
        refuse_header(a, p->fd, "the header could not be read");
        drop_pending(a, i);
        return false;
    }
    p->have += take;
    if (st == PROXY_NEED_MORE)
        return true;
    if (h.has_source)
        hand_over(a, p->fd, (const struct sockaddr *)&h.source, h.source_len);
    else
        hand_over(a, p->fd, (const struct sockaddr *)&p->peer, p->peer_len);
    drop_pending(a, i);
    return false;
}

/* Accept everything queued; false once the process is out of descriptors or memory. */
static bool accept_queued(acceptor_t *a)
{
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept4(a->listen_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            log_warn(NULL, "accept failed: %s", strerror(errno));
            return false; /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection waits in the backlog */
        }
        if (!a->proxy_protocol) {
            hand_over(a, fd, (const struct sockaddr *)&peer, len);
            continue;
        }
        if (a->n_pending == PENDING_MAX) {
            refuse_header(a, fd, "too many connections waiting for their header");
            continue;
        }
        pending_t *p = &a->pending[a->n_pending++];
        *p = (pending_t){.fd = fd, .peer = peer, .peer_len = len,
                         .deadline_ms = clock_mono_ms() + HEADER_TIMEOUT_MS, .buf = xmalloc(PROXY_HEADER_MAX)};
        read_header(a, a->n_pending - 1); /* usually there already */
    }
}

/* Close the pending connections past their deadline; the time until the next deadline (-1: none). */
static int expire_pending(acceptor_t *a)
{
    int64_t now = clock_mono_ms(), next = -1;
    for (size_t i = 0; i < a->n_pending;) {
        if (a->pending[i].deadline_ms <= now) {
            refuse_header(a, a->pending[i].fd, "no whole header within 5 s");
            drop_pending(a, i);
            continue;
        }
        int64_t left = a->pending[i].deadline_ms - now;
        if (next < 0 || left < next)
            next = left;
        i++;
    }
    return (int)next;
}

static void *acceptor_main(void *arg)
{
    acceptor_t *a = arg;
    size_t cap = 2 + (a->proxy_protocol ? PENDING_MAX : 0);
    struct pollfd *fds = xcalloc(cap, sizeof *fds);
    for (;;) {
        int timeout = expire_pending(a);
        fds[0] = (struct pollfd){.fd = a->listen_fd, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = a->stop_fd, .events = POLLIN};
        size_t watched = a->n_pending; /* the pending list changes as they are read */
        for (size_t i = 0; i < watched; i++)
            fds[2 + i] = (struct pollfd){.fd = a->pending[i].fd, .events = POLLIN};
        int n = poll(fds, 2 + watched, timeout);
        if (n < 0 && errno != EINTR) { /* ENOMEM: try again rather than stop accepting for good */
            log_error(NULL, "poll on the listening socket failed: %s", strerror(errno));
            poll(&fds[1], 1, 100);
        }
        if (n <= 0)
            continue;
        if (fds[1].revents)
            break;
        /* From the end: reading one may move the last pending connection into its place. */
        for (size_t i = watched; i-- > 0;)
            if (fds[2 + i].revents)
                read_header(a, i);
        if (fds[0].revents && !accept_queued(a))
            poll(&fds[1], 1, 100); /* retry in 100 ms rather than spin on a socket still readable */
    }
    free(fds);
    return NULL;
}

bool acceptor_start(acceptor_t *a, struct MHD_Daemon *daemon)
{
    a->daemon = daemon;
    a->running = pthread_create(&a->thread, NULL, acceptor_main, a) == 0;
    return a->running;
}

void acceptor_close(acceptor_t *a)
{
    if (!a)
        return;
    if (a->running) {
        uint64_t one = 1;
        if (write(a->stop_fd, &one, sizeof one) != (ssize_t)sizeof one) {
            /* Cannot happen (one increment of a fresh eventfd). Going on would free the daemon
             * under a thread that may still hand it connections. */
            log_error(NULL, "cannot signal the acceptor thread: %s", strerror(errno));
            abort();
        }
        pthread_join(a->thread, NULL);
    }
    while (a->n_pending > 0) {
        close(a->pending[a->n_pending - 1].fd);
        drop_pending(a, a->n_pending - 1);
    }
    free(a->pending);
    close(a->listen_fd);
    close(a->stop_fd);
    free(a);
}
