/*
 * http/server.c — libmicrohttpd glue: the server started, drained and stopped, and a request's
 * life on its connection (on_request, called again in each phase, and on_completed).
 *
 * The parts of that life are files of their own sharing http/server_conn.h: the headers checked
 * (server_checks.c), the body received (server_body.c), the request admitted and run
 * (server_admit.c: room for its answer, strong reads' slots, held-back refusals), its answer
 * built (server_response.c) and queued (server_send.c), and the streamed answers a drain cuts
 * (server_streams.c).
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "http/acceptor.h"
#include "http/addr_budget.h"
#include "http/body_pipe.h"
#include "http/delay_queue.h"
#include "http/library_errors.h"
#include "http/send_watch.h"
#include "http/server_conn.h"
#include "http/stream_writer.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"

/* Keep the raw path: API.md wants each segment percent-decoded once, after splitting. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    http_req_add_param(cls, key, value);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    http_server_t *s = cls;
    conn_ctx_t *cx = *con_cls;
    if (!cx) {
        cx = xcalloc(1, sizeof *cx);
        cx->http11 = strncmp(version, "HTTP/1.", 7) == 0 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0;
        *con_cls = cx;
        atomic_fetch_add(&s->in_flight, 1);
        cx->server = s;
        clock_gettime(CLOCK_MONOTONIC, &cx->started);
        http_req_init(&cx->req);
        buf_init(&cx->body);
        size_t method_len = strnlen(method, sizeof cx->method - 1); /* a longer one is refused by name */
        memcpy(cx->method, method, method_len);
        cx->method[method_len] = '\0';
        cx->path = xstrdup(url);
        cx->req.path = cx->path;
        cx->req.received_ms = clock_wall_ms();
        bool head = strcmp(method, "HEAD") == 0;
        cx->req.head = head;
        cx->req.method = head ? "GET" : cx->method;
        set_request_id(s, conn, &cx->req);
        cx->conn = conn;
        requests_add(cx, conn); /* where a drain's deadline finds it */
        if (early_checks(cx, conn, method) ||
            (cx->rt.stream_body && strcmp(method, "POST") == 0 && start_body_pipe(cx, conn))) {
            if (delay_refusal(cx, conn))
                return MHD_YES;
            cx->phase = CONN_ANSWERED;
            return send_response(cx, conn, false);
        }
        return MHD_YES;
    }
    if (cx->phase == CONN_WAITING) {
        /* Resumed: the queued work is done, or the request has more to wait for. */
        http_req_t *req = &cx->req;
        if (req->pending->finish(req->pending, req) == HTTP_PENDING_AGAIN) {
            MHD_suspend_connection(conn);
            req->pending->start(req->pending, resume_connection, cx);
            return MHD_YES;
        }
        req->pending->release(req->pending);
        req->pending = NULL;
        if (delay_refusal(cx, conn)) /* a batch refused once its items were counted */
            return MHD_YES;
        cx->phase = CONN_ANSWERED;
        return send_response(cx, conn, false);
    }
    if (cx->phase == CONN_DELAYED) { /* the pause is over: the refusal goes out */
        cx->phase = CONN_ANSWERED;
        return send_response(cx, conn, false);
    }
    if (cx->phase == CONN_STRONG_WAIT) /* a strong read tries for a slot again */
        return admit_strong(cx, conn, false);
    if (cx->phase == CONN_ROOM_WAIT) /* a read tries for room again */
        return admit_room(cx, conn, false);
    if (cx->phase == CONN_ANSWERED) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (cx->phase == CONN_REFUSED)
            return drop_body(cx, upload_data_size) ? MHD_YES : MHD_NO;
        if (cx->req.body_pipe)
            return feed_pipe(cx, conn, upload_data, upload_data_size);
        if (cx->body.len + *upload_data_size > cx->limit)
            return refuse_body(cx, conn, upload_data_size) ? MHD_YES : MHD_NO;
        if (!grow_body(cx, *upload_data_size)) {
            cx->req.retry_after = 1;
            http_error(&cx->req, 429, "rate_limited", NULL,
                       "this address is sending more request bodies at once than http.body_bytes_per_ip allows; "
                       "send them after the answers to the others");
            return refuse_mid_body(cx, conn, upload_data_size) ? MHD_YES : MHD_NO;
        }
        buf_append(&cx->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (cx->phase == CONN_REFUSED)
        return MHD_NO; /* the body ended after its 413 went out: libmicrohttpd closes the connection */

    /* The whole request is here. */
    if (!request_work_begins(cx))
        return MHD_NO; /* cut at the drain's deadline as its last bytes came: never run */
    http_req_t *req = &cx->req;
    if (req->body_pipe && !cx->pipe_closed) {
        http_body_pipe_close(req->body_pipe);
        cx->pipe_closed = true;
    }
    cx->phase = CONN_ANSWERED;
    if (strcmp(method, "OPTIONS") == 0) {
        req->status = 204;
        return send_response(cx, conn, true);
    }
    if (!cx->params_collected)
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_param, req);
    return admit_room(cx, conn, true);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    http_server_t *s = cls;
    conn_ctx_t *cx = *con_cls;
    if (!cx)
        return;
    requests_remove(cx); /* before libmicrohttpd closes the socket */
    if (cx->req.pending) /* the connection died while its work was pending */
        cx->req.pending->release(cx->req.pending);
    if (cx->req.body_consumer) /* it ended before its handler ran */
        cx->req.body_consumer->release(cx->req.body_consumer);
    if (cx->req.body_pipe) {
        if (!cx->pipe_closed) /* the body never ended: its consumer must not take it as whole */
            http_body_pipe_abort(cx->req.body_pipe);
        http_body_pipe_release(cx->req.body_pipe);
        cx->req.body_pipe = NULL;
    }
    addr_budget_give(s->bodies, cx->req.limit_addr, cx->body_charged);
    if (cx->strong_counted)
        atomic_fetch_sub(&s->strong_in_flight, 1);
    if (cx->strong_waits) /* ended while waiting for a slot (its connection broke) */
        atomic_fetch_sub(&s->strong_waiting, 1);
    if (cx->room_waits)
        atomic_fetch_sub(&s->room_waiting, 1);
    send_watch_done(s->sends, cx->ticket); /* before libmicrohttpd closes the socket */
    if (cx->stream)
        untrack_stream(cx);
    addr_budget_give(s->answers, cx->req.limit_addr, cx->answer_charged);
    free(cx->pre_body);
    http_req_clear(&cx->req);
    buf_free(&cx->body);
    free(cx->path);
    free(cx);
    *con_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

http_server_t *http_server_start(const http_server_deps_t *deps, char *err, size_t errlen)
{
    const rankd_config_t *cfg = deps->cfg;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->listen_port);
    const char *host = strcmp(cfg->listen_host, "localhost") == 0 ? "127.0.0.1" : cfg->listen_host;
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(err, errlen, "listen address %s is not an IPv4 address", cfg->listen_host);
        return NULL;
    }
    if (!library_errors_init()) {
        snprintf(err, errlen, "cannot find libmicrohttpd's MHD_queue_response");
        return NULL;
    }
    http_server_t *s = xcalloc(1, sizeof *s);
    /* A connection waits for its first request in the acceptor under the bounds libmicrohttpd
     * puts on one that sends it slowly: the same counts, and its idle timeout. */
    acceptor_opts_t opts = {.proxy_protocol = cfg->proxy_protocol, .live = deps->live, .send_buffer = cfg->send_buffer_bytes,
                            .max_waiting = cfg->max_connections, .max_waiting_per_address = cfg->max_connections_per_ip,
                            .head_timeout_ms = cfg->connection_timeout_s * 1000};
    acceptor_t *acceptor = acceptor_listen(&addr, 1024, &opts, &s->acceptor_stats, err, errlen);
    if (!acceptor) {
        free(s);
        return NULL;
    }
    s->deps = *deps;
    pthread_mutex_init(&s->streams_mu, NULL);
    pthread_mutex_init(&s->requests_mu, NULL);
    /* Never less than one body of the largest kind (and its NUL): that one is always taken. */
    size_t largest = (cfg->batch_body_limit > cfg->body_limit ? cfg->batch_body_limit : cfg->body_limit) + 1;
    s->bodies = addr_budget_new(cfg->body_bytes_per_ip == 0           ? 0
                                : cfg->body_bytes_per_ip < largest ? largest
                                                                    : cfg->body_bytes_per_ip);
    s->delays = delay_queue_start();
    s->sends = send_watch_start(cfg->max_response_bytes_in_flight, (int64_t)cfg->send_timeout_s * 1000);
    s->answers = addr_budget_new(cfg->response_bytes_per_ip);
    if ((s->stream_writer = stream_writer_start(http_stream_socket_ready, (int)cfg->send_timeout_s * 1000)) == NULL) /* streams then stay in libmicrohttpd */
        log_warn(NULL, "cannot start the stream writer thread: live streams keep their connections' memory");
    if (!s->delays || !s->sends) {
        stream_writer_stop(s->stream_writer, 0);
        snprintf(err, errlen, "cannot start the delay and send-deadline threads");
        acceptor_close(acceptor);
        if (s->delays)
            delay_queue_stop(s->delays);
        send_watch_stop(s->sends);
        addr_budget_free(s->answers);
        addr_budget_free(s->bodies);
        free(s);
        return NULL;
    }
    s->acceptor = acceptor;
    /* Shared caches may keep public reads only: a private one answers a key's holder alone. */
    int n = snprintf(s->cache_public, sizeof s->cache_public, "public, max-age=%d", cfg->cache_max_age);
    if (cfg->s_maxage > 0)
        n += snprintf(s->cache_public + n, sizeof s->cache_public - (size_t)n, ", s-maxage=%d", cfg->s_maxage);
    if (cfg->stale_while_revalidate > 0)
        snprintf(s->cache_public + n, sizeof s->cache_public - (size_t)n, ", stale-while-revalidate=%d",
                 cfg->stale_while_revalidate);
    if (cfg->public_reads)
        memcpy(s->cache_control, s->cache_public, sizeof s->cache_control);
    else
        snprintf(s->cache_control, sizeof s->cache_control, "private, max-age=%d", cfg->cache_max_age);
    if (getrandom(&s->id_prefix, sizeof s->id_prefix, 0) != sizeof s->id_prefix)
        s->id_prefix = (uint32_t)getpid();
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME
                     | MHD_USE_NO_LISTEN_SOCKET; /* the acceptor hands connections over */
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                                 MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->worker_threads,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
                                 /* A slow client (headers a byte at a time) holds a connection until
                                  * it times out: many from one address must not keep others out. */
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->max_connections_per_ip,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
                                 /* Per connection: request headers and response headers. libmicrohttpd
                                  * zeroes the whole area between requests; the default 32 KiB made that
                                  * memset 6 % of a cached read. 16 KiB still takes 8 KiB of headers. */
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
                                 MHD_OPTION_END);
    if (!s->daemon || !acceptor_start(acceptor, s->daemon)) {
        snprintf(err, errlen, "cannot start serving on %s:%d", cfg->listen_host, cfg->listen_port);
        acceptor_close(acceptor);
        if (s->daemon)
            MHD_stop_daemon(s->daemon);
        stream_writer_stop(s->stream_writer, 0);
        delay_queue_stop(s->delays);
        send_watch_stop(s->sends);
        addr_budget_free(s->answers);
        addr_budget_free(s->bodies);
        free(s);
        return NULL;
    }
    return s;
}

/* How long a drain waits for the requests it cut to end: libmicrohttpd ends one as soon as its
 * thread sees the socket shut, but one suspended (a body's pipe full) only once it is resumed. */
#define CUT_WAIT_MS 1000

int http_server_drain(http_server_t *s, int timeout_ms)
{
    atomic_store(&s->draining, true);
    cancel_streams(s, false);
    delay_queue_flush(s->delays); /* the refusals held back go out now */
    /* New connections are refused from here on; the requests that had arrived are answered
     * (this may wait up to a second for those clients to close). */
    acceptor_close(s->acceptor);
    s->acceptor = NULL;
    for (int waited = 0; waited < timeout_ms && atomic_load(&s->in_flight) > 0; waited += 5)
        usleep(5000);
    /* The deadline: a request still arriving or whose answer is not being read is cut, and
     * ends as soon as libmicrohttpd sees its socket shut; those whose work is under way are
     * left to finish. */
    if (atomic_load(&s->in_flight) > 0 && requests_cut(s) > 0)
        for (int waited = 0; waited < CUT_WAIT_MS && atomic_load(&s->cut_open) > 0; waited += 5)
            usleep(5000);
    return atomic_load(&s->in_flight);
}

void http_server_stop(http_server_t *s)
{
    if (!s)
        return;
    acceptor_close(s->acceptor);
    delay_queue_stop(s->delays); /* resumes what it held: none stays suspended past here */
    cancel_streams(s, true);
    MHD_stop_daemon(s->daemon);
    stream_writer_stop(s->stream_writer, 1000); /* live streams ended by their hub flush, or are cut */
    send_watch_stop(s->sends); /* after the daemon: every answer's request has ended */
    addr_budget_free(s->answers);
    addr_budget_free(s->bodies);
    free(s->streams);
    free(s->stream_fds);
    pthread_mutex_destroy(&s->streams_mu);
    pthread_mutex_destroy(&s->requests_mu);
    free(s);
}

void http_server_counts(const http_server_t *s, http_server_counts_t *out)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return;
    /* The fields are atomic or locked by their owners; `s` itself is not changed. */
    http_server_t *m = (http_server_t *)s;
    out->in_flight = atomic_load(&m->in_flight);
    out->body_bytes = addr_budget_bytes(m->bodies);
    out->body_addresses = addr_budget_addresses(m->bodies);
    out->refusals_delayed = atomic_load(&m->refusals_delayed);
    out->parked = delay_queue_waiting(m->delays);
    out->strong_waiting = atomic_load(&m->strong_waiting);
    out->room_waiting = atomic_load(&m->room_waiting);
    out->room_refused = atomic_load(&m->room_refused);
    out->response_bytes = send_watch_bytes(m->sends);
    out->response_addresses = addr_budget_addresses(m->answers);
    out->send_timeouts = send_watch_cut(m->sends);
    const acceptor_stats_t *acc = &m->acceptor_stats;
    out->first_refused_400 = atomic_load(&acc->refused_400);
    out->first_refused_414 = atomic_load(&acc->refused_414);
    out->first_refused_431 = atomic_load(&acc->refused_431);
    out->first_refused_505 = atomic_load(&acc->refused_505);
    out->awaiting_request = atomic_load(&acc->waiting);
    out->closed_awaiting = atomic_load(&acc->closed_waiting);
}
