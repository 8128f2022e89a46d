/*
 * http/server_send.c — an answer queued on its connection, and counted: compressed off the event
 * loop when large, held to the answers' byte budgets, or written on the socket itself while a
 * body still arrives.
 *
 * libmicrohttpd queues a response only before the body or after its end; a refusal in between
 * is rendered as the library would send it and written directly (answer_mid_body).
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "cache/l1.h"
#include "http/library_errors.h"
#include "http/server_conn.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "util/alloc.h"
#include "worker/offload.h"

/* Count the answer in the metrics and log it. */
void account_answer(const conn_ctx_t *cx)
{
    const http_req_t *req = &cx->req;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(now.tv_sec - cx->started.tv_sec) * 1e3 + (double)(now.tv_nsec - cx->started.tv_nsec) / 1e6;
    metrics_observe(cx->server->deps.metrics, (int)cx->rt.id, req->status, ms / 1e3);
    log_req_info(req, "%s %s %d %.2fms from %s", cx->method, cx->path ? cx->path : "?", req->status, ms,
             req->addr[0] ? req->addr : "?");
}

/*
 * Compressing a large answer takes milliseconds (a 4 MiB batch, a page of 1,000 entries with
 * their metadata): it is done on the encoder thread, the connection suspended, never on an
 * event-loop thread that serves every other connection meanwhile.
 */
#define ENCODE_OFF_LOOP_MIN (64 * 1024)

typedef struct {
    http_pending_t base;
    offload_job_t job;
    conn_ctx_t *cx;
    l1_t *l1;
    encoding_t enc;
    void (*wake)(void *arg);
    void *wake_arg;
} encode_op_t;

static void encode_job(offload_job_t *job)
{
    encode_op_t *op = WORKQ_OWNER(job, encode_op_t, job);
    conn_ctx_t *cx = op->cx;
    http_req_t *req = &cx->req;
    size_t n;
    if (req->cached) /* published in the entry: every later reader has it made */
        (void)l1_encoded(op->l1, req->cached, op->enc, &n);
    else
        cx->pre_body = encoding_compress(op->enc, req->out.data, req->out.len, &cx->pre_len);
    cx->pre_enc = op->enc;
    cx->encoded_off_loop = true;
    metrics_add(cx->server->deps.metrics, METRIC_ENCODED_OFF_LOOP, 1);
    op->wake(op->wake_arg); /* last: the request may be finished at once */
}

static void encode_start(http_pending_t *p, void (*wake)(void *), void *wake_arg)
{
    encode_op_t *op = (encode_op_t *)p;
    op->wake = wake;
    op->wake_arg = wake_arg;
    op->job.run = encode_job;
    offload_submit(op->cx->server->deps.encoder, &op->job);
}

static int encode_finish(http_pending_t *p, http_req_t *req)
{
    (void)p;
    return req->status;
}

static void encode_release(http_pending_t *p)
{
    free(p);
}

/* Whether the answer in cx->req is large and to be compressed: then the encoding wanted. */
static bool wants_encoding_off_loop(conn_ctx_t *cx, struct MHD_Connection *conn, encoding_t *enc)
{
    const http_req_t *req = &cx->req;
    if (cx->encoded_off_loop || !cx->server->deps.encoder || req->status != 200 || req->static_body)
        return false;
    size_t len = req->out.len;
    if (req->cached) {
        l1_view_t v;
        l1_view(req->cached, &v);
        len = v.len;
    }
    if (len < ENCODE_OFF_LOOP_MIN)
        return false;
    *enc = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
    if (*enc == ENC_IDENTITY)
        return false;
    size_t made;
    return !req->cached || !l1_encoded_ready(req->cached, *enc, &made);
}

/*
 * A large answer about to be queued: its bytes count against http.max_response_bytes_in_flight
 * and its address's http.response_bytes_per_ip, and its connection is cut if it is not all read
 * within http.send_timeout_s. False (nothing charged) when it does not fit either budget.
 */
static bool watch_send(conn_ctx_t *cx, struct MHD_Connection *conn)
{
    http_server_t *s = cx->server;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return true; /* cannot happen for a connection being answered */
    if (!addr_budget_take(s->answers, cx->req.limit_addr, cx->answer_len))
        return false;
    cx->ticket = send_watch_begin(s->sends, ci->connect_fd, cx->answer_len);
    if (!cx->ticket) {
        addr_budget_give(s->answers, cx->req.limit_addr, cx->answer_len);
        return false;
    }
    cx->answer_charged = cx->answer_len;
    return true;
}

/* The answer in cx->req does not fit the answers' budgets: a 503 instead (its bytes are freed). */
static void refuse_for_room(conn_ctx_t *cx)
{
    http_req_t *req = &cx->req;
    const rankd_config_t *cfg = cx->server->deps.cfg;
    atomic_fetch_add(&cx->server->room_refused, 1);
    if (req->cached) {
        l1_release(req->cached);
        req->cached = NULL;
    }
    req->static_body = NULL;
    req->retry_after = 1;
    http_error(req, 503, "unavailable", NULL,
               "answers not yet read by their clients hold http.response_bytes_per_ip (%zu bytes) for this "
               "address or http.max_response_bytes_in_flight (%zu bytes) on this instance; read them, then retry",
               cfg->response_bytes_per_ip, cfg->max_response_bytes_in_flight);
}

enum MHD_Result send_response(conn_ctx_t *cx, struct MHD_Connection *conn, bool preflight)
{
    encoding_t enc;
    if (!preflight && wants_encoding_off_loop(cx, conn, &enc)) {
        encode_op_t *op = xcalloc(1, sizeof *op);
        op->base.start = encode_start;
        op->base.finish = encode_finish;
        op->base.release = encode_release;
        op->cx = cx;
        op->l1 = cx->server->deps.l1;
        op->enc = enc;
        cx->req.pending = &op->base;
        cx->phase = CONN_WAITING;
        cx->conn = conn;
        MHD_suspend_connection(conn);
        op->base.start(&op->base, resume_connection, cx);
        return MHD_YES;
    }
    struct MHD_Response *r = build_response(cx, conn, preflight);
    if (!r) /* out of memory: MHD closes the connection */
        return MHD_NO;
    if (cx->answer_len >= SEND_WATCH_MIN_BYTES && conn_is_read(cx) && !watch_send(cx, conn)) {
        MHD_destroy_response(r);
        refuse_for_room(cx);
        r = build_response(cx, conn, false);
        if (!r)
            return MHD_NO;
    }
    request_sending(cx); /* a drain's deadline may cut it from here on */
    enum MHD_Result ok = http_queue_answer(conn, (unsigned)cx->req.status, r);
    MHD_destroy_response(r);
    account_answer(cx);
    return ok;
}

/* One response header as it goes on the wire (an MHD_KeyValueIterator). */
static enum MHD_Result append_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    buf_printf(cls, "%s: %s\r\n", key, value);
    return MHD_YES;
}

/* The bytes of `r` as libmicrohttpd would send them, with `body` (what `r` holds; none to a HEAD). */
static void render_response(buf_t *wire, int status, struct MHD_Response *r, const buf_t *body, bool head)
{
    const char *reason = MHD_get_reason_phrase_for((unsigned)status);
    buf_printf(wire, "HTTP/1.1 %d %s\r\n", status, reason ? reason : "");
    buf_printf(wire, "Date: %s\r\nContent-Length: %zu\r\n", http_date(time(NULL)), body->len);
    MHD_get_response_headers(r, append_header, wire);
    buf_puts(wire, "\r\n");
    if (!head)
        buf_append(wire, body->data, body->len);
}

/*
 * Send req's answer on the socket itself, the body still arriving: libmicrohttpd 0.9.75 queues a
 * response only before the body or after its end (MHD_queue_response refuses one in between), and
 * a chunked body may never end. The sending side is then shut, so that the client sees the answer
 * end with the connection; the rest of the body is still read, as a close with bytes unread would
 * reset the connection and could take the answer with it. Plain HTTP only (rankd has no TLS).
 * False when the answer could not be written whole.
 */
bool answer_mid_body(conn_ctx_t *cx, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    buf_t body, wire;
    buf_init(&body);
    buf_init(&wire);
    buf_append(&body, cx->req.out.data, cx->req.out.len); /* build_response takes req->out */
    struct MHD_Response *r = build_response(cx, conn, false);
    ssize_t sent = -1;
    if (r) {
        render_response(&wire, cx->req.status, r, &body, cx->req.head);
        MHD_destroy_response(r);
        /* A few hundred bytes into a send buffer nothing else wrote to: whole, or the peer is gone. */
        do
            sent = send(ci->connect_fd, wire.data, wire.len, MSG_NOSIGNAL);
        while (sent < 0 && errno == EINTR);
    }
    bool whole = sent >= 0 && (size_t)sent == wire.len;
    if (whole)
        shutdown(ci->connect_fd, SHUT_WR);
    buf_free(&body);
    buf_free(&wire);
    return whole;
}
