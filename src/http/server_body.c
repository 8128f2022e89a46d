/*
 * http/server_body.c — a request's body: received into a buffer charged to its address, or fed
 * to a route's consumer through a pipe, or refused.
 *
 * A body over its limit, or over its address's budget, is answered at once on the socket
 * (server_send.c, answer_mid_body) and the rest of it is read and dropped, up to DROP_MAX, so
 * that the close does not reset the connection and take the answer with it.
 */
#include <stdint.h>

#include "http/body_pipe.h"
#include "http/server_conn.h"
#include "obs/log.h"

#define BODY_RESERVE_MAX 65535 /* bytes reserved ahead on a Content-Length (64 KiB with the NUL) */
#define DROP_MAX (16 * 1024 * 1024) /* body bytes past the limit read and dropped after the 413 */

/* Drop body bytes after a 413; false once DROP_MAX of them went by (a chunked body may never end). */
bool drop_body(conn_ctx_t *cx, size_t *upload_data_size)
{
    cx->dropped += *upload_data_size;
    *upload_data_size = 0;
    if (cx->dropped <= DROP_MAX)
        return true;
    log_req_warn(&cx->req, "%s %s: a body over %zu bytes went on past %d more; closing", cx->method, cx->path,
             cx->limit, DROP_MAX);
    return false;
}

/* Answer the error in cx->req while the body still arrives, and drop the rest of the body (the
 * connection is then closed); false when libmicrohttpd is to close it now. */
bool refuse_mid_body(conn_ctx_t *cx, struct MHD_Connection *conn, size_t *upload_data_size)
{
    cx->phase = CONN_REFUSED;
    if (!answer_mid_body(cx, conn)) {
        log_req_warn(&cx->req, "%s %s: the %d could not be sent; closing", cx->method, cx->path, cx->req.status);
        return false;
    }
    account_answer(cx);
    return drop_body(cx, upload_data_size);
}

/* The body crossed its limit (a chunked one: a declared length was checked in early_checks). API.md:
 * 413 at once, and the connection closed. */
bool refuse_body(conn_ctx_t *cx, struct MHD_Connection *conn, size_t *upload_data_size)
{
    http_error(&cx->req, 413, "payload_too_large", NULL, "the body is larger than %zu bytes", cx->limit);
    return refuse_mid_body(cx, conn, upload_data_size);
}

/*
 * Room in cx->body for `more` bytes, charged to the client's address. With a Content-Length the
 * buffer is its exact size (the first bytes reserve at most 64 KiB: a length declared alone
 * makes rankd hold little), never the next power of two (a 2 MiB body once took 4 MiB); a
 * chunked body doubles up to its limit. False when the address has no budget left for it.
 */
bool grow_body(conn_ctx_t *cx, size_t more)
{
    size_t need = cx->body.len + more + 1;
    if (need <= cx->body.cap)
        return true;
    size_t cap;
    if (cx->declared > 0)
        cap = cx->body.cap == 0 && cx->declared > BODY_RESERVE_MAX ? BODY_RESERVE_MAX + 1 : (size_t)cx->declared + 1;
    else
        cap = cx->body.cap ? cx->body.cap * 2 : 256;
    if (cap < need)
        cap = need;
    if (cap > cx->limit + 1 && need <= cx->limit + 1)
        cap = cx->limit + 1;
    if (!addr_budget_take(cx->server->bodies, cx->req.limit_addr, cap - cx->body.cap))
        return false;
    cx->body_charged += cap - cx->body.cap;
    buf_reserve_total(&cx->body, cap);
    return true;
}

#define BODY_PIPE_BYTES (1024 * 1024) /* bytes of a streamed body held between the socket and its consumer */

/* A stream_body route's headers passed: its consumer starts now, before the body comes. True when
 * it refused (the answer is in cx->req). */
bool start_body_pipe(conn_ctx_t *cx, struct MHD_Connection *conn)
{
    http_req_t *req = &cx->req;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_param, req);
    cx->params_collected = true;
    req->content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    req->idem_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    req->body_pipe = http_body_pipe_new(BODY_PIPE_BYTES);
    const http_server_deps_t *deps = &cx->server->deps;
    if (deps->api.stream_start(deps->api.app, &cx->rt, req) == 0)
        return false;
    http_body_pipe_release(req->body_pipe); /* no consumer took it */
    req->body_pipe = NULL;
    return true;
}

/* Body bytes of a stream_body route: into its pipe, the connection suspended while the pipe is
 * full (its consumer resumes it), the limit held as for any body. */
enum MHD_Result feed_pipe(conn_ctx_t *cx, struct MHD_Connection *conn, const char *data, size_t *size)
{
    http_body_pipe_t *p = cx->req.body_pipe;
    if (cx->piped + *size > cx->limit) {
        http_body_pipe_abort(p);
        return refuse_body(cx, conn, size) ? MHD_YES : MHD_NO;
    }
    size_t took = http_body_pipe_offer(p, data, *size);
    cx->piped += took;
    *size -= took;
    if (*size == 0)
        return MHD_YES;
    /* Suspended before the consumer may wake it: it may read at once. */
    MHD_suspend_connection(conn);
    if (!http_body_pipe_wait_room(p, resume_connection, cx))
        MHD_resume_connection(conn); /* room already: libmicrohttpd calls again with the rest */
    return MHD_YES;
}
