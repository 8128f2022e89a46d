/*
 * http/server_drain.c — the requests in flight, and what a drain's deadline cuts of them.
 *
 * Every request is in one list from libmicrohttpd's first call to its completion, with its
 * connection's socket and where it stands on the wire (conn_wire_t). When a drain's deadline
 * comes, a request whose bytes are still coming (a body sent a byte a second) or going (an
 * answer its client does not read) has its socket shut down, as a send deadline does
 * (http/send_watch.h): libmicrohttpd then ends it, and its completion logs what was cut. A
 * request whose work is under way (a submission in the writer's queue) is never cut: it
 * finishes and is answered. A cut request had not been answered, so nothing acknowledged is
 * lost; one cut while its body arrived never reached its handler.
 *
 * The list's lock is taken twice per request, uncontended but for the drain's one walk; the
 * socket is shut under it, and a request leaves the list (on_completed) before libmicrohttpd
 * closes that socket, so a descriptor the drain shuts is never another connection's.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

#include "http/server_conn.h"
#include "obs/log.h"

/* Put cx (its first call, on its connection's thread) in the server's list. */
void requests_add(conn_ctx_t *cx, struct MHD_Connection *conn)
{
    http_server_t *s = cx->server;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    cx->fd = ci ? ci->connect_fd : -1;
    atomic_init(&cx->wire, WIRE_RECEIVING);
    pthread_mutex_lock(&s->requests_mu);
    cx->prev_request = NULL;
    cx->next_request = s->requests;
    if (s->requests)
        s->requests->prev_request = cx;
    s->requests = cx;
    pthread_mutex_unlock(&s->requests_mu);
}

/* Take cx out of the list (its completion, before its socket is closed), and log it when the
 * drain cut it: what it was doing, and how far it had got. */
void requests_remove(conn_ctx_t *cx)
{
    http_server_t *s = cx->server;
    pthread_mutex_lock(&s->requests_mu);
    if (cx->prev_request)
        cx->prev_request->next_request = cx->next_request;
    else
        s->requests = cx->next_request;
    if (cx->next_request)
        cx->next_request->prev_request = cx->prev_request;
    pthread_mutex_unlock(&s->requests_mu);
    int wire = atomic_load(&cx->wire);
    const char *path = cx->path ? cx->path : "?", *addr = cx->req.addr[0] ? cx->req.addr : "?";
    if (wire == WIRE_CUT_RECEIVING) {
        char of[32] = "a chunked body";
        if (cx->declared > 0)
            snprintf(of, sizeof of, "%" PRIu64, cx->declared);
        log_req_warn(&cx->req, "%s %s from %s: cut at the drain's deadline while its body was still arriving "
                     "(%zu bytes of %s); nothing of it was stored", cx->method, path, addr,
                     cx->body.len + (size_t)cx->piped, of);
    } else if (wire == WIRE_CUT_SENDING) {
        char size[40] = ""; /* 0: a file's compiled-in bytes, or a HEAD's answer */
        if (cx->answer_len > 0)
            snprintf(size, sizeof size, " (%zu bytes)", cx->answer_len);
        log_req_warn(&cx->req, "%s %s from %s: cut at the drain's deadline while its client was still reading its %d "
                     "answer%s", cx->method, path, addr, cx->req.status, size);
    }
    if (wire == WIRE_CUT_RECEIVING || wire == WIRE_CUT_SENDING)
        atomic_fetch_sub(&s->cut_open, 1);
}

/* The request is whole and its work is to begin: false when the drain cut it first (its
 * connection is then to be closed, its handler never run). */
bool request_work_begins(conn_ctx_t *cx)
{
    int receiving = WIRE_RECEIVING;
    return atomic_compare_exchange_strong(&cx->wire, &receiving, WIRE_WORKING);
}

/* The answer is about to be queued: from here on only its client's reading is left. */
void request_sending(conn_ctx_t *cx)
{
    int was = atomic_load(&cx->wire);
    while (was != WIRE_CUT_RECEIVING && was != WIRE_CUT_SENDING &&
           !atomic_compare_exchange_weak(&cx->wire, &was, WIRE_SENDING))
        ;
}

/*
 * The drain's deadline: shut the socket of every request still receiving or sending, and log
 * how many; the number cut. Each ends once libmicrohttpd sees its socket shut (a suspended one
 * when it is resumed), and logs itself then (requests_remove).
 */
int requests_cut(http_server_t *s)
{
    int receiving = 0, sending = 0;
    pthread_mutex_lock(&s->requests_mu);
    for (conn_ctx_t *cx = s->requests; cx; cx = cx->next_request) {
        int was = WIRE_RECEIVING;
        bool cut = atomic_compare_exchange_strong(&cx->wire, &was, WIRE_CUT_RECEIVING);
        if (cut)
            receiving++;
        else if (was == WIRE_SENDING && atomic_compare_exchange_strong(&cx->wire, &was, WIRE_CUT_SENDING))
            cut = true, sending++;
        if (!cut)
            continue;
        atomic_fetch_add(&s->cut_open, 1);
        if (cx->fd >= 0)
            shutdown(cx->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&s->requests_mu);
    if (receiving + sending > 0)
        log_warn(NULL, "the drain's deadline: connections cut: %d with a request still arriving, %d with an answer its "
                 "client is not reading (requests whose work is under way are left to finish)", receiving, sending);
    return receiving + sending;
}
