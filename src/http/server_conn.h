/*
 * http/server_conn.h — what the files of the HTTP server share, and nothing outside them uses:
 * the server itself, one request's state on its connection, and each file's part.
 *
 * libmicrohttpd calls on_request (server.c) again and again for one request: with its headers
 * (server_checks.c), with each piece of its body (server_body.c), once it is whole
 * (server_admit.c runs it, or parks it while it waits), and after each suspension; its answer
 * is built (server_response.c) and queued (server_send.c). The phase below says where a request
 * is. This header includes nothing of those files' own (server.h names http_server_t too: the
 * same typedef, which C11 allows twice), so that no two of them include each other.
 */
#ifndef RANKD_HTTP_SERVER_CONN_H
#define RANKD_HTTP_SERVER_CONN_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/acceptor.h"
#include "http/addr_budget.h"
#include "http/delay_queue.h"
#include "http/dispatch.h"
#include "http/request.h"
#include "http/send_watch.h"
#include "http/server_deps.h"
#include "http/stream.h"
#include "util/buf.h"
#include "util/encoding.h"

typedef struct http_server http_server_t;

/* The server (server.h), as every file of it sees it. */
struct http_server {
    struct MHD_Daemon *daemon;
    acceptor_t *acceptor;     /* NULL once draining closed it */
    acceptor_stats_t acceptor_stats; /* what it did, for /metrics: outlives it */
    http_server_deps_t deps;
    atomic_int in_flight;
    atomic_bool draining;     /* after SIGTERM: close each connection after its response */
    atomic_int strong_in_flight; /* consistency=strong reads running (limits.strong_concurrency) */
    atomic_int strong_waiting;   /* strong reads suspended until a slot frees (limits.strong_wait_ms) */
    atomic_int room_waiting;     /* reads suspended until answers in flight free room (ROOM_WAIT_MS) */
    atomic_ullong room_refused;  /* reads refused with 503 because that room did not come */
    send_watch_t *sends;      /* answers being sent: their bytes and deadline */
    addr_budget_t *answers;   /* their bytes per client address (http.response_bytes_per_ip) */
    delay_queue_t *delays;    /* refusals held back before they are sent (http.refusal_delay_ms) */
    atomic_ullong refusals_delayed;
    atomic_uint_fast64_t next_id;
    uint32_t id_prefix;
    char cache_control[128];  /* of successful reads; fixed by the configuration */
    char cache_public[128];   /* of those that need no key whatever the configuration (the OpenAPI
                               * document, the dashboard's files) */
    addr_budget_t *bodies;    /* request body bytes per client address (http.body_bytes_per_ip) */
    stream_writer_t *stream_writer; /* the sockets of streams taken from libmicrohttpd (live) */
    pthread_mutex_t streams_mu; /* guards the four below */
    http_stream_t **streams;    /* answers being streamed, each with the server's hold */
    int *stream_fds;            /* and its connection's socket, valid until the request ends */
    size_t n_streams, cap_streams;
    bool streams_cut;           /* draining: streams are cut, a late one at once */
    pthread_mutex_t requests_mu; /* guards the list below (server_drain.c) */
    struct conn_ctx *requests;   /* every request in flight, what a drain's deadline may cut */
    atomic_int cut_open;         /* requests cut and not yet ended */
};

/* Where a request is in its life on the connection; on_request is called again in each. */
typedef enum {
    CONN_RECEIVING, /* headers checked; the body (if any) arriving */
    CONN_REFUSED,   /* the body crossed its limit: the 413 is sent, the rest is dropped */
    CONN_WAITING,   /* suspended until req.pending is done */
    CONN_DELAYED,   /* a refusal written, the connection suspended until its pause is over */
    CONN_STRONG_WAIT, /* a strong read over limits.strong_concurrency, suspended until it tries again */
    CONN_ROOM_WAIT, /* a read while answers in flight fill their budget, suspended until it tries again */
    CONN_ANSWERED,  /* a response is queued: anything more of the body is ignored */
} conn_phase_t;

/* Where a request stands on the wire, for a drain's deadline (server_drain.c): only one whose
 * bytes are still coming or going is cut, never one whose work is under way. Set on its own
 * thread, read and cut by the drain's; atomic. */
typedef enum {
    WIRE_RECEIVING,     /* the request (its headers, its body) is still arriving */
    WIRE_WORKING,       /* the request is whole: its work runs, its answer is not queued yet */
    WIRE_SENDING,       /* its answer is queued: only its client's reading is left */
    WIRE_CUT_RECEIVING, /* cut at the drain's deadline while receiving */
    WIRE_CUT_SENDING,   /* cut at the drain's deadline while sending */
} conn_wire_t;

typedef struct conn_ctx {
    http_server_t *server;
    http_route_t rt;
    http_req_t req;
    buf_t body;
    size_t limit;
    uint64_t declared;  /* Content-Length, 0 when absent or unreadable */
    conn_phase_t phase;
    size_t dropped;     /* body bytes dropped past the limit (CONN_REFUSED) */
    size_t body_charged; /* what `body` charged its address in server->bodies */
    bool encoded_off_loop; /* the answer's compression was done on the encoder thread */
    bool strong_counted;   /* counted in server->strong_in_flight until the request ends */
    bool delayed;          /* its refusal was held back (http.refusal_delay_ms) */
    bool framing_refused;  /* refused for its framing (server_checks.c): its answer closes the connection */
    int64_t strong_until_ms; /* CONN_STRONG_WAIT: when it stops waiting for a slot (monotonic) */
    bool strong_waits;       /* counted in server->strong_waiting */
    int64_t room_until_ms;   /* CONN_ROOM_WAIT: when it stops waiting for room (monotonic) */
    bool room_waits;         /* counted in server->room_waiting */
    size_t answer_len;       /* bytes of the body handed to libmicrohttpd, 0 for a file's compiled-in bytes */
    send_ticket_t *ticket;   /* the answer is watched (http/send_watch.h) until the request ends */
    http_stream_t *stream;   /* a streamed answer, in server->streams, until the request ends */
    bool http11;             /* the request is HTTP/1.1: an answer of unknown length is chunked */
    size_t answer_charged;   /* what the answer charged its address in server->answers */
    encoding_t pre_enc;    /* then: the encoding of pre_body, for an answer not cached */
    char *pre_body;        /* owned, pre_len bytes; NULL when it did not compress */
    size_t pre_len;
    uint64_t piped;        /* body bytes handed to req.body_pipe */
    bool pipe_closed;      /* the body ended whole and its pipe was closed */
    bool params_collected; /* the query's parameters are in req (a stream_body route, at its headers) */
    struct MHD_Connection *conn;
    struct timespec started;
    char method[16];
    char *path;
    int fd;                 /* the connection's socket, valid until the request ends */
    atomic_int wire;        /* a conn_wire_t */
    struct conn_ctx *prev_request, *next_request; /* in server->requests */
} conn_ctx_t;

/* ---------------------------------------------------------------- each file's part */

/* server.c: one query argument into the request (an MHD_KeyValueIterator). */
enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value);

/* server_checks.c: the request's id, and what its headers alone decide. */
void set_request_id(http_server_t *s, struct MHD_Connection *conn, http_req_t *req);
bool early_checks(conn_ctx_t *cx, struct MHD_Connection *conn, const char *method);

/* server_body.c: the body received into cx->body or a route's pipe, or refused. */
bool drop_body(conn_ctx_t *cx, size_t *upload_data_size);
bool refuse_mid_body(conn_ctx_t *cx, struct MHD_Connection *conn, size_t *upload_data_size);
bool refuse_body(conn_ctx_t *cx, struct MHD_Connection *conn, size_t *upload_data_size);
bool grow_body(conn_ctx_t *cx, size_t more);
bool start_body_pipe(conn_ctx_t *cx, struct MHD_Connection *conn);
enum MHD_Result feed_pipe(conn_ctx_t *cx, struct MHD_Connection *conn, const char *data, size_t *size);

/* server_admit.c: a whole request admitted and run, or suspended while it waits. */
void resume_connection(void *arg);
bool conn_is_read(const conn_ctx_t *cx);
bool delay_refusal(conn_ctx_t *cx, struct MHD_Connection *conn);
enum MHD_Result admit_room(conn_ctx_t *cx, struct MHD_Connection *conn, bool first);
enum MHD_Result admit_strong(conn_ctx_t *cx, struct MHD_Connection *conn, bool first);

/* server_response.c: the answer's body and headers. */
const char *http_date(int64_t sec);
struct MHD_Response *build_response(conn_ctx_t *cx, struct MHD_Connection *conn, bool preflight);

/* server_send.c: the answer queued (or written while the body still arrives), and counted. */
enum MHD_Result send_response(conn_ctx_t *cx, struct MHD_Connection *conn, bool preflight);
void account_answer(const conn_ctx_t *cx);
bool answer_mid_body(conn_ctx_t *cx, struct MHD_Connection *conn);

/* server_drain.c: the requests in flight, and what a drain's deadline cuts. */
void requests_add(conn_ctx_t *cx, struct MHD_Connection *conn);
void requests_remove(conn_ctx_t *cx);
bool request_work_begins(conn_ctx_t *cx);
void request_sending(conn_ctx_t *cx);
int requests_cut(http_server_t *s);

/* server_streams.c: streamed answers kept where a drain can cut them. */
void track_stream(conn_ctx_t *cx, struct MHD_Connection *conn, http_stream_t *st);
void untrack_stream(conn_ctx_t *cx);
void cancel_streams(http_server_t *s, bool all);

#endif
