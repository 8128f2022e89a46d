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

#include "obs/log.h"
#include "util/alloc.h"

struct acceptor {
    int listen_fd;
    int stop_fd; /* an eventfd: written once to end the thread */
    bool running;
    pthread_t thread;
    struct MHD_Daemon *daemon;
    time_t refused_logged; /* the thread's: when a refused connection was last logged */
    unsigned long refused; /* since then */
};

acceptor_t *acceptor_listen(const struct sockaddr_in *addr, int backlog, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create the listening socket: %s", strerror(errno));
        return NULL;
    }
    int on = 1;
    char where[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &addr->sin_addr, where, sizeof where);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0
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
    return a;
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
        /* On failure (the connection limit) libmicrohttpd closes the socket itself; the client
         * sees the connection close. Logged at most once a second. */
        if (MHD_add_connection(a->daemon, fd, (const struct sockaddr *)&peer, len) != MHD_YES) {
            a->refused++;
            time_t now = time(NULL);
            if (now != a->refused_logged) {
                log_warn(NULL, "connection limit reached: %lu connection(s) closed since the last such line", a->refused);
                a->refused_logged = now;
                a->refused = 0;
            }
        }
    }
}

static void *acceptor_main(void *arg)
{
    acceptor_t *a = arg;
    struct pollfd fds[2] = {{.fd = a->listen_fd, .events = POLLIN}, {.fd = a->stop_fd, .events = POLLIN}};
    for (;;) {
        int n = poll(fds, 2, -1);
        if (n < 0 && errno != EINTR) { /* ENOMEM: try again rather than stop accepting for good */
            log_error(NULL, "poll on the listening socket failed: %s", strerror(errno));
            poll(&fds[1], 1, 100);
        }
        if (n <= 0)
            continue;
        if (fds[1].revents)
            break;
        if (fds[0].revents && !accept_queued(a))
            poll(&fds[1], 1, 100); /* retry in 100 ms rather than spin on a socket still readable */
    }
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
    close(a->listen_fd);
    close(a->stop_fd);
    free(a);
}
