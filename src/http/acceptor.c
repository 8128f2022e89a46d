/* http/acceptor.c — accept connections, look at their first request, and hand them to
 * libmicrohttpd (see acceptor.h). */
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

#include "config/config.h"
#include "http/proxy_header.h"
#include "http/request_head.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/netaddr.h"

#define PROXY_TIMEOUT_MS 5000 /* a load balancer writes its header with its first packet */
#define LINGER_MS 2000        /* after a refusal, how long its client's last bytes are read */
#define SNOOZE_MS 50          /* a head that poll called readable with nothing new: looked at again then */
#define WAITING_MAX 65536     /* connections held at most, whatever http.max_connections says */
#define ACCEPTS_PER_TURN 256  /* accepted before the others are looked at again */
#define DRAINS_PER_TURN 16    /* reads of a lingering connection before the others are */
#define LAST_LINGER_MS 1000   /* at close: how long the clients of the last answers are waited for */
#define ACCEPTS_AT_CLOSE 4096 /* at close: queued connections looked at, at most */

typedef enum {
    WAIT_PROXY, /* for its PROXY header */
    WAIT_HEAD,  /* for its first request's head */
    LINGER,     /* answered and half-closed: what the client still sends is read and dropped, so
                 * that the close is a FIN after the answer, not a reset that may destroy it */
} stage_t;

/* A connection not handed over yet. */
typedef struct {
    int fd;
    stage_t stage;
    struct sockaddr_storage client; /* the peer, or the client a PROXY header named */
    socklen_t client_len;
    int64_t deadline_ms;
    int64_t snooze_until_ms; /* WAIT_HEAD: not polled for input before then (0: polled) */
    size_t have;  /* WAIT_PROXY: header bytes read so far, in buf; WAIT_HEAD: bytes seen at the
                   * last peek (SO_RCVLOWAT is one past them) */
    uint8_t *buf; /* WAIT_PROXY: PROXY_HEADER_MAX bytes, owned; else NULL */
} pending_t;

struct acceptor {
    int listen_fd;
    int stop_fd; /* an eventfd: written once to end the thread */
    acceptor_opts_t opts;
    acceptor_stats_t *stats;
    bool running;
    pthread_t thread;
    struct MHD_Daemon *daemon;
    /* The thread's own: */
    pending_t *pending; /* opts.max_waiting of them, n_pending in use */
    size_t n_pending;
    char peek[REQUEST_HEAD_MAX + 1]; /* a first request's head as peeked at */
    time_t refused_logged; /* when a refused connection was last logged */
    unsigned long refused; /* since then */
    time_t bad_logged;     /* when a connection without a good PROXY header was last logged */
    unsigned long bad;     /* since then */
    const char *bad_why;   /* the last one's reason */
    time_t heads_logged;   /* when a refused first request was last logged */
    unsigned long heads;   /* since then */
    time_t capped_logged;  /* when a connection over the waiting caps was last logged */
    unsigned long capped;  /* since then */
    time_t untrusted_logged; /* when a peer outside http.trusted_proxies was last logged */
    unsigned long untrusted; /* since then */
};

acceptor_t *acceptor_listen(const struct sockaddr_in *addr, int backlog, const acceptor_opts_t *opts,
                            acceptor_stats_t *stats, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create the listening socket: %s", strerror(errno));
        return NULL;
    }
    int on = 1, send_buffer = opts->send_buffer;
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
    a->opts = *opts;
    if (a->opts.max_waiting < 1)
        a->opts.max_waiting = 1;
    if (a->opts.max_waiting > WAITING_MAX) /* each is polled and scanned: a bound on a turn's work */
        a->opts.max_waiting = WAITING_MAX;
    a->stats = stats;
    a->pending = xcalloc((size_t)a->opts.max_waiting, sizeof *a->pending);
    return a;
}

/* Once a second at most: "<what>: N connection(s) since the last such line". */
static void log_now_and_then(time_t *logged, unsigned long *count, const char *what, const char *last)
{
    (*count)++;
    time_t now = time(NULL);
    if (now == *logged)
        return;
    if (last)
        log_warn(NULL, "%s: %lu connection(s) since the last such line (the last: %s)", what, *count, last);
    else
        log_warn(NULL, "%s: %lu connection(s) since the last such line", what, *count);
    *logged = now;
    *count = 0;
}

/* Hand `fd` to libmicrohttpd as a connection from `addr`. */
static void hand_over(acceptor_t *a, int fd, const struct sockaddr *addr, socklen_t len)
{
    /* On failure (the connection limits) libmicrohttpd closes the socket itself; the client
     * sees the connection close. */
    if (MHD_add_connection(a->daemon, fd, addr, len) != MHD_YES)
        log_now_and_then(&a->refused_logged, &a->refused, "connection limit reached, closed", NULL);
}

/* Close a connection that did not begin with a good PROXY header; logged at most once a second. */
static void refuse_header(acceptor_t *a, int fd, const char *why)
{
    close(fd);
    a->bad_why = why;
    log_now_and_then(&a->bad_logged, &a->bad, "http.proxy_protocol is on, closed", a->bad_why);
}

/* With proxy_protocol: whether `peer` may send a PROXY header (see acceptor_opts_t.live). */
static bool may_send_proxy_header(const acceptor_t *a, const struct sockaddr_storage *peer)
{
    const rankd_config_t *live = a->opts.live ? atomic_load(a->opts.live) : NULL;
    if (!live || live->n_trusted_proxies == 0)
        return true;
    netaddr_t addr;
    return netaddr_from_sockaddr((const struct sockaddr *)peer, &addr) &&
           netaddr_in_any(live->trusted_nets, live->n_trusted_proxies, &addr);
}

/* Close a connection from a peer that may not send a PROXY header, unread; logged at most once
 * a second, with the peer. */
static void refuse_untrusted(acceptor_t *a, int fd, const struct sockaddr_storage *peer)
{
    close(fd);
    char who[NETADDR_TEXT_MAX] = "?";
    netaddr_t addr;
    if (netaddr_from_sockaddr((const struct sockaddr *)peer, &addr))
        netaddr_format(&addr, who);
    log_now_and_then(&a->untrusted_logged, &a->untrusted,
                     "http.proxy_protocol is on and the peer is not one of http.trusted_proxies, closed unread", who);
}

static void drop_pending(acceptor_t *a, size_t i)
{
    free(a->pending[i].buf);
    a->pending[i] = a->pending[--a->n_pending];
    atomic_store(&a->stats->waiting, (int)a->n_pending);
}

/* Close pending connection i, and count it as closed while waiting. */
static void close_pending(acceptor_t *a, size_t i)
{
    close(a->pending[i].fd);
    drop_pending(a, i);
    atomic_fetch_add(&a->stats->closed_waiting, 1);
}

/* Whether two clients count as one address for the per-address cap (netaddr_same_limit: an
 * IPv6 client's /64 is one address, an IPv4-mapped one is its IPv4 address). */
static bool same_address(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
    netaddr_t a, b;
    return netaddr_from_sockaddr((const struct sockaddr *)x, &a) &&
           netaddr_from_sockaddr((const struct sockaddr *)y, &b) && netaddr_same_limit(&a, &b);
}

/* Whether pending connection i's client already has its share of connections held here, waiting
 * for their first request or lingering after a refusal (i among them). */
static bool over_address_cap(const acceptor_t *a, size_t i)
{
    int cap = a->opts.max_waiting_per_address;
    if (cap <= 0)
        return false;
    int n = 0;
    for (size_t j = 0; j < a->n_pending; j++)
        n += a->pending[j].stage != WAIT_PROXY && same_address(&a->pending[j].client, &a->pending[i].client);
    return n > cap;
}

/* SO_RCVLOWAT: poll says a socket is readable once this many bytes have arrived (Linux), so a
 * head that is not whole yet is looked at again when more of it came, not at every poll. */
static void set_lowat(int fd, size_t bytes)
{
    int v = bytes > 1 ? (int)bytes : 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) != 0) /* not seen on Linux: polls more often */
        log_debug(NULL, "SO_RCVLOWAT %d: %s", v, strerror(errno));
}

/* Count, log now and then, and send the JSON answer to a refused first request on `fd`; false
 * when it could not be sent. A new connection's send buffer is empty: the answer fits. */
static bool answer_refusal(acceptor_t *a, int fd, const head_verdict_t *v)
{
    atomic_ullong *count = v->status == 414   ? &a->stats->refused_414
                           : v->status == 431 ? &a->stats->refused_431
                           : v->status == 505 ? &a->stats->refused_505
                                              : &a->stats->refused_400;
    atomic_fetch_add(count, 1);
    char why[160];
    snprintf(why, sizeof why, "%d, %s", v->status, v->message);
    log_now_and_then(&a->heads_logged, &a->heads, "a first request libmicrohttpd could not take, answered here", why);
    char out[1024];
    size_t n = request_head_answer(v, time(NULL), out, sizeof out);
    return n > 0 && send(fd, out, n, MSG_NOSIGNAL) >= 0;
}

/* Answer a refused first request, half-close, and read what the client still sends (LINGER). */
static void refuse_head(acceptor_t *a, size_t i, const head_verdict_t *v)
{
    pending_t *p = &a->pending[i];
    if (!answer_refusal(a, p->fd, v)) {
        close_pending(a, i);
        return;
    }
    set_lowat(p->fd, 1);
    shutdown(p->fd, SHUT_WR);
    p->stage = LINGER;
    p->deadline_ms = clock_mono_ms() + LINGER_MS;
    if (over_address_cap(a, i)) { /* an address that sends bad requests fast holds no more slots */
        close(p->fd);
        drop_pending(a, i);
    }
}

/* Look at what has arrived of pending connection i's first request: hand it over when its
 * head is whole and good, answer it when it is bad, else wait for more (true: it still waits
 * for its head, at index i). `revents`: what poll said of it (0 when not polled). */
static bool peek_head(acceptor_t *a, size_t i, short revents)
{
    pending_t *p = &a->pending[i];
    ssize_t got = recv(p->fd, a->peek, sizeof a->peek, MSG_PEEK);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return true;
    if (got <= 0) { /* gone */
        close_pending(a, i);
        return false;
    }
    head_verdict_t v;
    switch (request_head_check(a->peek, (size_t)got, &v)) {
    case HEAD_NEED_MORE:
        if (revents & (POLLRDHUP | POLLHUP | POLLERR)) {
            /* The client ended its side within a head. What it sent is read first, so that
             * the close is a FIN, not a reset. */
            if (recv(p->fd, a->peek, (size_t)got, 0) < 0)
                log_debug(NULL, "a connection ended within its first request: %s", strerror(errno));
            close_pending(a, i);
            return false;
        }
        /* Readable with nothing new: the kernel may say so below SO_RCVLOWAT (under memory
         * pressure). Look again a moment later rather than spin on it. */
        p->snooze_until_ms = (size_t)got == p->have ? clock_mono_ms() + SNOOZE_MS : 0;
        p->have = (size_t)got;
        set_lowat(p->fd, p->have + 1);
        return true;
    case HEAD_BAD:
        refuse_head(a, i, &v);
        return false;
    case HEAD_OK:
    default:
        if (p->have > 0)
            set_lowat(p->fd, 1);
        hand_over(a, p->fd, (const struct sockaddr *)&p->client, p->client_len);
        drop_pending(a, i);
        return false;
    }
}

/* Pending connection i begins to wait for its first request: most have it whole already and are
 * handed over at once; one that must wait counts against its address's share of waiting. */
static void wait_head(acceptor_t *a, size_t i)
{
    pending_t *p = &a->pending[i];
    p->stage = WAIT_HEAD;
    p->have = 0;
    p->deadline_ms = clock_mono_ms() + a->opts.head_timeout_ms;
    if (peek_head(a, i, 0) && over_address_cap(a, i)) {
        log_now_and_then(&a->capped_logged, &a->capped,
                         "one address has http.max_connections_per_ip connections waiting for their first request, "
                         "closed", NULL);
        close_pending(a, i);
    }
}

/*
 * Read what has arrived of pending connection i's PROXY header. Only bytes known to be the
 * header's are taken off the socket (the parser's NEED_MORE vouches for every byte it saw), so
 * the request after it is left for libmicrohttpd.
 */
static void read_proxy_header(acceptor_t *a, size_t i)
{
    pending_t *p = &a->pending[i];
    ssize_t got = recv(p->fd, p->buf + p->have, PROXY_HEADER_MAX - p->have, MSG_PEEK);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (got <= 0) {
        close_pending(a, i); /* gone before its header: nothing to say */
        return;
    }
    proxy_header_t h;
    proxy_status_t st = proxy_header_parse(p->buf, p->have + (size_t)got, &h);
    if (st == PROXY_INVALID) {
        refuse_header(a, p->fd, "no PROXY protocol header, or a malformed one");
        drop_pending(a, i);
        return;
    }
    size_t take = st == PROXY_DONE ? h.header_len - p->have : (size_t)got;
    if (recv(p->fd, p->buf + p->have, take, 0) != (ssize_t)take) { /* peeked: cannot be short */
        refuse_header(a, p->fd, "the header could not be read");
        drop_pending(a, i);
        return;
    }
    p->have += take;
    if (st == PROXY_NEED_MORE)
        return;
    if (h.has_source) {
        memcpy(&p->client, &h.source, h.source_len);
        p->client_len = h.source_len;
    }
    free(p->buf);
    p->buf = NULL;
    wait_head(a, i);
}

/* A refused connection's last bytes: read and dropped until it closes or its time is up. */
static void linger(acceptor_t *a, size_t i)
{
    for (int reads = 0; reads < DRAINS_PER_TURN; reads++) {
        ssize_t got = recv(a->pending[i].fd, a->peek, sizeof a->peek, 0);
        if (got > 0)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        close(a->pending[i].fd);
        drop_pending(a, i);
        return;
    }
}

/* Pending connection i has something to read (`revents`, from poll); it may leave the list (the
 * last takes its place). */
static void advance(acceptor_t *a, size_t i, short revents)
{
    switch (a->pending[i].stage) {
    case WAIT_PROXY:
        read_proxy_header(a, i);
        break;
    case WAIT_HEAD:
        (void)peek_head(a, i, revents);
        break;
    case LINGER:
        linger(a, i);
        break;
    }
}

/* With every slot taken: a connection whose whole first request has arrived is handed over
 * (or answered) all the same; one that would have to wait is closed. */
static void accept_when_full(acceptor_t *a, int fd, const struct sockaddr_storage *peer, socklen_t len)
{
    ssize_t got = a->opts.proxy_protocol ? -1 : recv(fd, a->peek, sizeof a->peek, MSG_PEEK);
    head_verdict_t v;
    head_status_t st = got > 0 ? request_head_check(a->peek, (size_t)got, &v) : HEAD_NEED_MORE;
    if (st == HEAD_OK) {
        hand_over(a, fd, (const struct sockaddr *)peer, len);
        return;
    }
    if (st == HEAD_BAD && !answer_refusal(a, fd, &v))
        log_debug(NULL, "a refusal could not be sent: %s", strerror(errno));
    close(fd);
    atomic_fetch_add(&a->stats->closed_waiting, 1);
    log_now_and_then(&a->capped_logged, &a->capped,
                     "http.max_connections connections are waiting for their first request, closed", NULL);
}

/* Accept what is queued, at most ACCEPTS_PER_TURN (then the others get their turn); false once
 * the process is out of descriptors or memory. */
static bool accept_queued(acceptor_t *a)
{
    for (int turn = 0; turn < ACCEPTS_PER_TURN; turn++) {
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
        if (a->opts.proxy_protocol && !may_send_proxy_header(a, &peer)) {
            refuse_untrusted(a, fd, &peer);
            continue;
        }
        if (a->n_pending == (size_t)a->opts.max_waiting) {
            accept_when_full(a, fd, &peer, len);
            continue;
        }
        size_t i = a->n_pending++;
        atomic_store(&a->stats->waiting, (int)a->n_pending);
        a->pending[i] = (pending_t){.fd = fd, .client = peer, .client_len = len};
        if (a->opts.proxy_protocol) {
            a->pending[i].stage = WAIT_PROXY;
            a->pending[i].deadline_ms = clock_mono_ms() + PROXY_TIMEOUT_MS;
            a->pending[i].buf = xmalloc(PROXY_HEADER_MAX);
            read_proxy_header(a, i); /* usually there already */
        } else {
            wait_head(a, i);
        }
    }
    return true;
}

/* Close the pending connections past their deadline; the time until the next deadline or end of
 * a snooze (-1: none). */
static int expire_pending(acceptor_t *a)
{
    int64_t now = clock_mono_ms(), next = -1;
    for (size_t i = 0; i < a->n_pending;) {
        pending_t *p = &a->pending[i];
        if (p->deadline_ms <= now) {
            if (p->stage == WAIT_PROXY) {
                refuse_header(a, p->fd, "no whole header within 5 s");
                drop_pending(a, i);
            } else if (p->stage == WAIT_HEAD) {
                close_pending(a, i); /* as libmicrohttpd closes an idle connection: no answer */
            } else {
                close(p->fd);
                drop_pending(a, i);
            }
            continue;
        }
        int64_t due = p->snooze_until_ms > now && p->snooze_until_ms < p->deadline_ms ? p->snooze_until_ms
                                                                                      : p->deadline_ms;
        if (next < 0 || due - now < next)
            next = due - now;
        i++;
    }
    return (int)next;
}

static void *acceptor_main(void *arg)
{
    acceptor_t *a = arg;
    size_t cap = 2 + (size_t)a->opts.max_waiting;
    struct pollfd *fds = xcalloc(cap, sizeof *fds);
    for (;;) {
        int timeout = expire_pending(a);
        int64_t now = clock_mono_ms();
        fds[0] = (struct pollfd){.fd = a->listen_fd, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = a->stop_fd, .events = POLLIN};
        size_t watched = a->n_pending; /* the pending list changes as they are read */
        for (size_t i = 0; i < watched; i++) {
            bool snoozing = a->pending[i].snooze_until_ms > now;
            fds[2 + i] = (struct pollfd){.fd = a->pending[i].fd, .events = snoozing ? POLLRDHUP : POLLIN | POLLRDHUP};
        }
        int n = poll(fds, 2 + watched, timeout);
        if (n < 0 && errno != EINTR) { /* ENOMEM: try again rather than stop accepting for good */
            log_error(NULL, "poll on the listening socket failed: %s", strerror(errno));
            poll(&fds[1], 1, 100);
        }
        if (n < 0)
            continue;
        if (fds[1].revents)
            break;
        /* From the end: reading one may move the last pending connection into its place. A
         * snooze that has ended is a look again without poll's word. */
        now = clock_mono_ms();
        for (size_t i = watched; i-- > 0;) {
            pending_t *p = &a->pending[i];
            if (fds[2 + i].revents) {
                advance(a, i, fds[2 + i].revents);
            } else if (p->snooze_until_ms != 0 && p->snooze_until_ms <= now) {
                p->snooze_until_ms = 0;
                advance(a, i, 0);
            }
        }
        if (fds[0].revents && !accept_queued(a))
            poll(&fds[1], 1, 100); /* retry in 100 ms rather than spin on a socket still readable */
    }
    free(fds);
    return NULL;
}

#define CLOSE_SCRATCH (PROXY_HEADER_MAX + REQUEST_HEAD_MAX + 1)
#define CLOSE_DRAIN_MAX 65536 /* at close: bytes read off an answered socket before lingering */

/*
 * At close: whether the whole head of the first request on `fd` has arrived; *v says what to
 * answer it (503, or the refusal of a bad head). `taken` bytes of a PROXY header were taken off
 * the socket already (the pending connection's buffer); `proxy_first`: the connection begins
 * with one. Peeked: nothing more is taken. `scratch` holds CLOSE_SCRATCH bytes.
 */
static bool head_arrived(int fd, bool proxy_first, const uint8_t *taken, size_t n_taken, char *scratch,
                         head_verdict_t *v)
{
    if (n_taken > 0)
        memcpy(scratch, taken, n_taken);
    ssize_t got = recv(fd, scratch + n_taken, CLOSE_SCRATCH - n_taken, MSG_PEEK);
    if (got <= 0)
        return false;
    size_t len = n_taken + (size_t)got, skip = 0;
    if (proxy_first) {
        proxy_header_t h;
        if (proxy_header_parse((const uint8_t *)scratch, len, &h) != PROXY_DONE)
            return false;
        skip = h.header_len;
    }
    switch (request_head_check(scratch + skip, len - skip, v)) {
    case HEAD_NEED_MORE: return false;
    case HEAD_BAD: return true; /* its refusal, as at any time */
    case HEAD_OK: break;
    }
    *v = request_head_unavailable();
    return true;
}

/* At close: answer `fd`'s request as `v` says, take what the client sent off the socket (up to
 * CLOSE_DRAIN_MAX bytes: the linger reads the rest, within its time) and half-close it, so that
 * its close is a FIN after the answer; false (and `fd` closed) when it could not be answered. */
static bool answer_at_close(int fd, const head_verdict_t *v, char *scratch)
{
    char out[1024];
    size_t n = request_head_answer(v, time(NULL), out, sizeof out);
    if (n == 0 || send(fd, out, n, MSG_NOSIGNAL) < 0) {
        close(fd);
        return false;
    }
    ssize_t got;
    for (size_t drained = 0; drained < CLOSE_DRAIN_MAX && (got = recv(fd, scratch, CLOSE_SCRATCH, 0)) > 0;)
        drained += (size_t)got;
    shutdown(fd, SHUT_WR);
    return true;
}

/* Read and drop what the clients of `fds` (answered, half-closed) still send until each closes
 * or LAST_LINGER_MS have passed, then close them all. */
static void linger_all(int *fds, size_t n, char *scratch)
{
    struct pollfd *polled = xcalloc(n ? n : 1, sizeof *polled);
    int64_t deadline = clock_mono_ms() + LAST_LINGER_MS;
    for (int64_t now = clock_mono_ms(); n > 0 && now < deadline; now = clock_mono_ms()) {
        for (size_t i = 0; i < n; i++)
            polled[i] = (struct pollfd){.fd = fds[i], .events = POLLIN | POLLRDHUP};
        if (poll(polled, n, (int)(deadline - now)) < 0 && errno != EINTR)
            break;
        for (size_t i = n; i-- > 0;) {
            if (!polled[i].revents)
                continue;
            ssize_t got = recv(fds[i], scratch, CLOSE_SCRATCH, 0);
            if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
                continue;
            close(fds[i]);
            fds[i] = fds[--n];
        }
    }
    while (n > 0)
        close(fds[--n]);
    free(polled);
}

/*
 * At close, with the thread stopped: a connection whose whole first request has arrived, held
 * here (its PROXY header read or not) or still queued in the backlog, is answered 503 with
 * Retry-After rather than reset by the close of the listening socket (its client sent it before
 * the server stopped accepting, and may retry it elsewhere at once); a bad head gets its
 * refusal, as at any time. One still waiting for its request is closed, as
 * libmicrohttpd closes an idle connection; one lingering after a refusal lingers on. Closes the
 * listening socket.
 */
static void answer_the_waiting(acceptor_t *a)
{
    char *scratch = xmalloc(CLOSE_SCRATCH);
    int *lingering = xcalloc(a->n_pending + ACCEPTS_AT_CLOSE, sizeof *lingering);
    size_t n_lingering = 0, n_answered = 0, n_closed = 0;
    for (size_t k = 0; k < a->n_pending + ACCEPTS_AT_CLOSE; k++) {
        int fd;
        bool whole;
        head_verdict_t v;
        if (k < a->n_pending) {
            pending_t *p = &a->pending[k];
            fd = p->fd;
            if (p->stage == LINGER) {
                lingering[n_lingering++] = fd;
                continue;
            }
            /* WAIT_PROXY: the header's first bytes are in p->buf, the rest in the socket. */
            bool in_header = p->stage == WAIT_PROXY;
            whole = head_arrived(fd, in_header, in_header ? p->buf : NULL, in_header ? p->have : 0, scratch, &v);
        } else {
            struct sockaddr_storage peer;
            socklen_t len = sizeof peer;
            fd = accept4(a->listen_fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
                continue;
            if (fd < 0)
                break;
            /* A peer that may not send a PROXY header gets no word, at close as at any time. */
            whole = (!a->opts.proxy_protocol || may_send_proxy_header(a, &peer)) &&
                    head_arrived(fd, a->opts.proxy_protocol, NULL, 0, scratch, &v);
        }
        if (!whole) {
            close(fd);
            n_closed++;
        } else if (answer_at_close(fd, &v, scratch)) {
            lingering[n_lingering++] = fd;
            n_answered++;
        }
    }
    while (a->n_pending > 0) /* their descriptors are closed or lingering */
        drop_pending(a, a->n_pending - 1);
    close(a->listen_fd); /* what connects from here on is refused by the kernel */
    if (n_answered + n_closed > 0)
        log_info(NULL, "stopped accepting: %zu connection(s) whose request had arrived answered (503), %zu closed",
                 n_answered, n_closed);
    linger_all(lingering, n_lingering, scratch);
    free(lingering);
    free(scratch);
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
    answer_the_waiting(a);
    free(a->pending);
    close(a->stop_fd);
    free(a);
}
