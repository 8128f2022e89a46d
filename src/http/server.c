/* http/server.c — libmicrohttpd glue: request lifecycle, early checks, response headers. */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cache/l1.h"
#include "http/acceptor.h"
#include "core/ids.h"
#include "http/addr_budget.h"
#include "http/delay_queue.h"
#include "util/encoding.h"
#include "http/send_watch.h"
#include "http/body_pipe.h"
#include "http/stream.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "worker/offload.h"

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
    pthread_mutex_t streams_mu; /* guards the four below */
    http_stream_t **streams;    /* answers being streamed, each with the server's hold */
    int *stream_fds;            /* and its connection's socket, valid until the request ends */
    size_t n_streams, cap_streams;
    bool streams_cut;           /* draining: streams are cut, a late one at once */
};

#define BODY_RESERVE_MAX 65535 /* bytes reserved ahead on a Content-Length (64 KiB with the NUL) */
#define DROP_MAX (16 * 1024 * 1024) /* body bytes past the limit read and dropped after the 413 */
#define HEADERS_MAX 8192               /* bytes of request line and headers (API.md) */

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

typedef struct {
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
    int64_t strong_until_ms; /* CONN_STRONG_WAIT: when it stops waiting for a slot (monotonic) */
    bool strong_waits;       /* counted in server->strong_waiting */
    int64_t room_until_ms;   /* CONN_ROOM_WAIT: when it stops waiting for room (monotonic) */
    bool room_waits;         /* counted in server->room_waiting */
    size_t answer_len;       /* bytes of the body handed to libmicrohttpd, 0 for a file's compiled-in bytes */
    send_ticket_t *ticket;   /* the answer is watched (http/send_watch.h) until the request ends */
    http_stream_t *stream;   /* a streamed answer, in server->streams, until the request ends */
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
} conn_ctx_t;

/* Keep the raw path: API.md wants each segment percent-decoded once, after splitting. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    http_req_add_param(cls, key, value);
    return MHD_YES;
}

/*
 * CORS headers (API.md). `api`: a /v1/ route, whose answers a configured CORS list may change
 * whatever the request: Vary: Origin on all of them, so that a shared cache never hands a browser
 * the variant made for a request without an Origin.
 */
static void add_cors(const http_server_deps_t *deps, struct MHD_Connection *conn, struct MHD_Response *r, bool preflight,
                     const char *allow, bool api)
{
    const rankd_config_t *live = atomic_load(deps->live);
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if ((api && live->n_cors_origins > 0) || origin)
        MHD_add_response_header(r, "Vary", "Origin");
    if (!origin || !config_cors_allowed(live, origin))
        return;
    /* "*" is answered as "*", never by reflecting the origin. */
    MHD_add_response_header(r, "Access-Control-Allow-Origin", config_cors_any(live) ? "*" : origin);
    if (preflight) {
        MHD_add_response_header(r, "Access-Control-Allow-Methods", allow ? allow : "GET, HEAD, OPTIONS");
        MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-Id");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    }
    /* API.md: every response to an allowed origin, preflights included. */
    MHD_add_response_header(r, "Access-Control-Expose-Headers",
                            "ETag, Location, Retry-After, X-Request-Id, RateLimit-Limit, RateLimit-Remaining, "
                            "RateLimit-Reset");
}

/* `sec` (Unix time) as an HTTP date, in a buffer of the calling thread valid until its next
 * call. A hot entry's Last-Modified is the same second request after request: formatted once
 * (gmtime_r and strftime were 1.2 % of a cached read). Per thread, so never shared. */
static const char *http_date(int64_t sec)
{
    static _Thread_local int64_t last = -1;
    static _Thread_local char text[40];
    if (sec != last) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = sec;
    }
    return text;
}

/*
 * Whether a read may answer 304: If-None-Match decides when present (any listed tag, any
 * variant); otherwise If-Modified-Since not older than the answer's modification time.
 */
static bool not_modified(struct MHD_Connection *conn, const char *etag, int64_t last_modified_ms)
{
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm)
        return encoding_none_match(inm, etag);
    const char *ims = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-Modified-Since");
    if (!ims || last_modified_ms <= 0)
        return false;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return false; /* not an IMF-fixdate: ignored, as RFC 9110 says */
    return (int64_t)timegm(&tm) >= last_modified_ms / 1000;
}

/* The ETag of a 304: the one the 200 would carry (RFC 9110 15.4.5), the encoded variant's when
 * the client would get an encoded body of `identity_len` bytes. */
static void etag_not_modified(struct MHD_Connection *conn, size_t identity_len, char etag[ETAG_MAX])
{
    if (identity_len < ENCODING_MIN_BODY)
        return;
    encoding_t enc = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
    if (enc == ENC_IDENTITY)
        return;
    char variant[ETAG_MAX];
    encoding_variant_etag(etag, enc, variant);
    memcpy(etag, variant, ETAG_MAX);
}

/* `*body` (malloc'd, `*len` bytes) in the encoding the client prefers, replaced in place; the
 * encoding applied (identity when none is wanted or compressing failed). Made on the encoder
 * thread already when it is large (compress_off_loop). */
static encoding_t compress_body(conn_ctx_t *cx, struct MHD_Connection *conn, char **body, size_t *len)
{
    encoding_t enc = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
    size_t zlen = 0;
    char *z;
    if (cx->encoded_off_loop && cx->pre_enc == enc) {
        z = cx->pre_body;
        zlen = cx->pre_len;
        cx->pre_body = NULL;
    } else {
        z = enc == ENC_IDENTITY ? NULL : encoding_compress(enc, *body, *len, &zlen);
    }
    if (!z)
        return ENC_IDENTITY;
    free(*body);
    *body = z;
    *len = zlen;
    return enc;
}

static void release_cached(void *entry)
{
    l1_release(entry);
}

/* The answer to `req`, its body and headers; NULL when out of memory. */
#define STREAM_BLOCK 32768 /* bytes libmicrohttpd asks a streamed answer for at a time */

/* Cut a streamed answer (shutdown): its producer stops, and its socket is shut so that
 * libmicrohttpd ends the connection even when the client reads nothing (it would otherwise wait
 * for the socket to take more bytes until the idle timeout). Under s->streams_mu. */
static void cut_stream(http_stream_t *st, int fd)
{
    http_stream_cancel(st);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
}

/* Keep `st` (with the server's own hold) where a drain can cut it, until the request ends. */
static void track_stream(conn_ctx_t *cx, struct MHD_Connection *conn, http_stream_t *st)
{
    http_server_t *s = cx->server;
    http_stream_hold(st);
    cx->stream = st;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? ci->connect_fd : -1;
    pthread_mutex_lock(&s->streams_mu);
    if (s->n_streams == s->cap_streams) {
        s->cap_streams = s->cap_streams ? 2 * s->cap_streams : 8;
        s->streams = xrealloc(s->streams, s->cap_streams * sizeof *s->streams);
        s->stream_fds = xrealloc(s->stream_fds, s->cap_streams * sizeof *s->stream_fds);
    }
    s->streams[s->n_streams] = st;
    s->stream_fds[s->n_streams++] = fd;
    if (s->streams_cut) /* an export that began while the server drained */
        cut_stream(st, fd);
    pthread_mutex_unlock(&s->streams_mu);
}

static void untrack_stream(conn_ctx_t *cx)
{
    http_server_t *s = cx->server;
    pthread_mutex_lock(&s->streams_mu);
    for (size_t i = 0; i < s->n_streams; i++)
        if (s->streams[i] == cx->stream) {
            s->n_streams--;
            s->streams[i] = s->streams[s->n_streams];
            s->stream_fds[i] = s->stream_fds[s->n_streams];
            break;
        }
    pthread_mutex_unlock(&s->streams_mu);
    http_stream_drop(cx->stream);
    cx->stream = NULL;
}

static struct MHD_Response *build_response(conn_ctx_t *cx, struct MHD_Connection *conn, bool preflight)
{
    http_req_t *req = &cx->req;
    const http_server_deps_t *deps = &cx->server->deps;
    size_t len = 0;
    char *body = buf_steal(&req->out, &len);
    char etag[ETAG_MAX] = "";
    encoding_t enc = ENC_IDENTITY;
    bool reads = req->cacheable && req->status == 200;
    struct MHD_Response *r = NULL;
    bool persistent = false; /* the bytes are the program's own, held by nobody */
    bool streamed = false;   /* the bytes come from a producer as they are sent */
    if (req->stream && req->status == 200) {
        http_stream_t *st = req->stream;
        req->stream = NULL;
        free(body);
        body = NULL;
        len = 0;
        http_stream_attach(st, conn);
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, http_stream_read, st, http_stream_release);
        if (!r) {
            http_stream_release(st);
            return NULL;
        }
        track_stream(cx, conn, st);
        streamed = true;
    } else if (reads && req->cached) {
        /* A cached answer: its ETag was computed once, each encoding is made once (l1_encoded),
         * and the bytes are shared by reference. */
        l1_view_t v;
        l1_view(req->cached, &v);
        memcpy(etag, v.etag, sizeof etag); /* both ETAG_MAX, NUL-terminated */
        req->last_modified_ms = v.last_modified_ms;
        const char *bytes = v.body;
        size_t n = v.len;
        if (not_modified(conn, etag, req->last_modified_ms)) {
            req->status = 304;
            etag_not_modified(conn, n, etag);
            n = 0;
        } else if (n >= ENCODING_MIN_BODY) {
            enc = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
            size_t zn = 0;
            const char *z = enc == ENC_IDENTITY ? NULL : l1_encoded(deps->l1, req->cached, enc, &zn);
            if (z) {
                bytes = z;
                n = zn;
                char variant[ETAG_MAX];
                encoding_variant_etag(v.etag, enc, variant);
                memcpy(etag, variant, sizeof etag);
            } else {
                enc = ENC_IDENTITY;
            }
        }
        l1_hold(req->cached); /* the response's reference, dropped when MHD is done with the bytes */
        r = MHD_create_response_from_buffer_with_free_callback_cls(n, (void *)bytes, release_cached, req->cached);
        free(body);
        body = NULL;
        len = n;
        if (!r) {
            l1_release(req->cached);
            return NULL;
        }
    } else if (reads && req->static_body) {
        const http_static_t *sb = req->static_body;
        memcpy(etag, sb->etag, sizeof etag);
        const char *bytes = sb->body;
        size_t n = sb->len;
        if (not_modified(conn, etag, req->last_modified_ms)) {
            req->status = 304;
            encoding_t want = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
            if (want != ENC_IDENTITY && sb->enc_body[want])
                memcpy(etag, sb->enc_etag[want], sizeof etag);
            n = 0;
        } else {
            enc = encoding_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
            if (enc != ENC_IDENTITY && sb->enc_body[enc]) {
                bytes = sb->enc_body[enc];
                n = sb->enc_len[enc];
                memcpy(etag, sb->enc_etag[enc], sizeof etag);
            } else {
                enc = ENC_IDENTITY;
            }
        }
        r = MHD_create_response_from_buffer(n, (void *)bytes, MHD_RESPMEM_PERSISTENT);
        free(body);
        body = NULL;
        len = n;
        persistent = true;
        if (!r)
            return NULL;
    } else if (reads) {
        /* The tag names the identity bytes; an encoded body carries its variant's tag. */
        encoding_etag(body, len, etag);
        if (not_modified(conn, etag, req->last_modified_ms)) {
            req->status = 304;
            etag_not_modified(conn, len, etag);
        } else if (len >= ENCODING_MIN_BODY) {
            enc = compress_body(cx, conn, &body, &len);
            if (enc != ENC_IDENTITY) {
                char variant[ETAG_MAX];
                encoding_variant_etag(etag, enc, variant);
                memcpy(etag, variant, sizeof etag);
            }
        }
    }
    /* Other answers of 1024 bytes or more (/metrics, batches, admin calls) are compressed too
     * (API.md: every compressible response), without a tag. */
    bool compressible = !reads && req->status == 200 && len >= ENCODING_MIN_BODY;
    if (compressible)
        enc = compress_body(cx, conn, &body, &len);
    if (!r) {
        if (req->status == 204 || req->status == 304)
            len = 0;
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(body);
            return NULL;
        }
    }
    cx->answer_len = req->head || persistent ? 0 : len;
    if (reads)
        MHD_add_response_header(r, "ETag", etag);
    if (reads || compressible) {
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
        if (enc != ENC_IDENTITY)
            MHD_add_response_header(r, "Content-Encoding", encoding_name(enc));
    }
    if (len || streamed || (req->head && req->content_type_out)) /* a HEAD names what the GET sends */
        MHD_add_response_header(r, "Content-Type", req->content_type_out ? req->content_type_out : "application/json");
    if (req->disposition[0])
        MHD_add_response_header(r, "Content-Disposition", req->disposition);
    if (req->last_modified_ms > 0)
        MHD_add_response_header(r, "Last-Modified", http_date(req->last_modified_ms / 1000));
    MHD_add_response_header(r, "X-Request-Id", req->client_request_id[0] ? req->client_request_id : req->request_id);
    /* API.md: on every answer, so that no browser takes a JSON body for a page or a script. */
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (reads) {
        MHD_add_response_header(r, "Cache-Control",
                                cx->rt.role == ROLE_NONE ? cx->server->cache_public : cx->server->cache_control);
    } else {
        MHD_add_response_header(r, "Cache-Control", "no-store");
    }
    if (req->location[0])
        MHD_add_response_header(r, "Location", req->location);
    if (req->security_policy) {
        MHD_add_response_header(r, "Content-Security-Policy", req->security_policy);
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    if (req->allow && (req->status == 405 || preflight))
        MHD_add_response_header(r, "Allow", req->allow);
    if (req->ratelimit.limited) {
        char v[16];
        snprintf(v, sizeof v, "%d", req->ratelimit.limit);
        MHD_add_response_header(r, "RateLimit-Limit", v);
        snprintf(v, sizeof v, "%d", req->ratelimit.remaining);
        MHD_add_response_header(r, "RateLimit-Remaining", v);
        snprintf(v, sizeof v, "%d", req->ratelimit.reset_s);
        MHD_add_response_header(r, "RateLimit-Reset", v);
    }
    if (req->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", req->retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    add_cors(deps, conn, r, preflight, req->allow, cx->path && strncmp(cx->path, "/v1/", 4) == 0);
    /* A 413's body may still be on its way (API.md: the connection is closed). */
    /* A held-back refusal closes its connection too: its client pays a new one for the next try. */
    if (atomic_load(&cx->server->draining) || req->status == 413 || cx->delayed)
        MHD_add_response_header(r, "Connection", "close");
    return r;
}

/* Count the answer in the metrics and log it. */
static void account_answer(const conn_ctx_t *cx)
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

static void resume_connection(void *arg);
static bool is_read(const conn_ctx_t *cx);

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

static enum MHD_Result send_response(conn_ctx_t *cx, struct MHD_Connection *conn, bool preflight)
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
    if (cx->answer_len >= SEND_WATCH_MIN_BYTES && is_read(cx) && !watch_send(cx, conn)) {
        MHD_destroy_response(r);
        refuse_for_room(cx);
        r = build_response(cx, conn, false);
        if (!r)
            return MHD_NO;
    }
    enum MHD_Result ok = MHD_queue_response(conn, (unsigned)cx->req.status, r);
    MHD_destroy_response(r);
    account_answer(cx);
    return ok;
}

static void set_request_id(http_server_t *s, struct MHD_Connection *conn, http_req_t *req)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    req->client_request_id[0] = '\0';
    if (given && id_request_id_valid(given, strlen(given)))
        snprintf(req->client_request_id, sizeof req->client_request_id, "%s", given);
    /* <8 hex digits of the instance>-<12 of the sequence>, formatted by hand (every request). */
    static const char hex[] = "0123456789abcdef";
    uint64_t n = atomic_fetch_add(&s->next_id, 1);
    char *p = req->request_id;
    for (int i = 7; i >= 0; i--)
        *p++ = hex[(s->id_prefix >> (4 * i)) & 0xf];
    *p++ = '-';
    for (int i = 11; i >= 0; i--)
        *p++ = hex[(n >> (4 * i)) & 0xf];
    *p = '\0';
}

static void authenticate(const http_server_deps_t *deps, struct MHD_Connection *conn, http_req_t *req)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    req->role = deps->cfg->public_reads ? ROLE_READ : ROLE_NONE;
    if (!auth)
        return;
    req->key_presented = true;
    role_t role = ROLE_NONE;
    int index = -1;
    /* One configuration for both: a reload in between would index another file's keys. */
    const rankd_config_t *live = atomic_load(deps->live);
    if (strncasecmp(auth, "Bearer ", 7) == 0)
        role = config_key_role(live, auth + 7, &index);
    req->role = role; /* an invalid key is refused even where reads are public */
    if (role == ROLE_NONE)
        req->role = (role_t)-1;
    else { /* the key's digest, not its place in the file: a reload may reorder the keys */
        const unsigned char *d = live->keys[index].digest;
        snprintf(req->client, sizeof req->client, "k%02x%02x%02x%02x%02x%02x%02x%02x", d[0], d[1], d[2], d[3], d[4],
                 d[5], d[6], d[7]);
    }
}

/* One request header's values (an MHD_KeyValueIterator): X-Forwarded-For, joined with commas. */
static enum MHD_Result gather_forwarded(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    buf_t *xff = cls;
    if (strcasecmp(key, "X-Forwarded-For") == 0 && value) {
        if (xff->len > 0)
            buf_puts(xff, ",");
        buf_puts(xff, value);
    }
    return MHD_YES;
}

/*
 * The client's address into req->addr: the connection's peer (the client a PROXY header named,
 * with http.proxy_protocol), or, when that peer is one of http.trusted_proxies, the client its
 * X-Forwarded-For names (read from the right, past the trusted hops).
 */
static void client_address(const http_server_deps_t *deps, struct MHD_Connection *conn, http_req_t *req)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    netaddr_t peer;
    if (!ci || !ci->client_addr || !netaddr_from_sockaddr(ci->client_addr, &peer)) {
        snprintf(req->addr, sizeof req->addr, "?");
        snprintf(req->limit_addr, sizeof req->limit_addr, "?");
        return;
    }
    /* The live list: a reload may add or remove a proxy. */
    const rankd_config_t *live = atomic_load(deps->live);
    netaddr_t client = peer;
    if (live->n_trusted_proxies > 0 && netaddr_in_any(live->trusted_nets, live->n_trusted_proxies, &peer)) {
        buf_t xff;
        buf_init(&xff);
        MHD_get_connection_values(conn, MHD_HEADER_KIND, gather_forwarded, &xff);
        if (xff.len > 0)
            netaddr_forwarded_client(xff.data, &peer, live->trusted_nets, live->n_trusted_proxies, &client);
        buf_free(&xff);
    }
    _Static_assert(sizeof req->addr >= NETADDR_TEXT_MAX, "room for an address");
    netaddr_format(&client, req->addr);
    _Static_assert(sizeof req->limit_addr >= NETADDR_LIMIT_MAX, "room for a limit key");
    netaddr_limit_key(&client, req->limit_addr);
}

/* One query argument's bytes in the request line, "key=value&" (an MHD_KeyValueIterator). */
static enum MHD_Result count_argument(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? 1 + strlen(value) : 0) + 1;
    return MHD_YES;
}

/* The request line's length, as near as libmicrohttpd lets it be known: the method, the path,
 * the query as its arguments (kept raw: no_unescape) and "HTTP/1.1" (any other version is that
 * long, or refused before). */
static size_t request_line_size(struct MHD_Connection *conn, const char *method, const char *path)
{
    size_t query = 0;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_argument, &query);
    return strlen(method) + 1 + strlen(path) + query + 1 + 8;
}

/* First call, headers only: route, method, key, size. True when answered already. */
static bool early_checks(conn_ctx_t *cx, struct MHD_Connection *conn, const char *method)
{
    http_req_t *req = &cx->req;
    const http_server_deps_t *deps = &cx->server->deps;
    /* API.md: request headers over 8 KiB are 431 with the JSON error. Up to the connection's
     * memory limit (16 KiB) it is this one; libmicrohttpd refuses larger ones itself (431 too,
     * with its own page: it cannot hand them over). */
    /* First: every answer's log line names its client, a 404's or a 431's too. */
    client_address(deps, conn, req);
    const union MHD_ConnectionInfo *hs = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (hs && hs->header_size > HEADERS_MAX && request_line_size(conn, method, cx->path) > HEADERS_MAX) {
        http_error(req, 414, "invalid_argument", "path", "the request line is longer than %d bytes", HEADERS_MAX);
        return true;
    }
    if (hs && hs->header_size > HEADERS_MAX) {
        http_error(req, 431, "invalid_argument", "headers", "the request headers are larger than %d bytes", HEADERS_MAX);
        return true;
    }
    if (deps->api.route(deps->api.app, method, cx->path, &cx->rt, req) != 0)
        return true;
    /* Before OPTIONS returns: a preflight's body, if any, is held to the route's limit too. */
    cx->limit = cx->rt.stream_body ? deps->cfg->import_body_limit
                : cx->rt.batch_body ? deps->cfg->batch_body_limit : deps->cfg->body_limit;
    if (strcmp(method, "OPTIONS") == 0)
        return false;
    authenticate(deps, conn, req);
    if (deps->api.admit(deps->api.app, &cx->rt, method, req) != 0)
        return true;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    uint64_t declared = 0;
    if (cl && !param_parse_uint(cl, UINT64_MAX, &declared))
        declared = 0; /* unreadable: libmicrohttpd checks it, or reads a chunked body */
    if (declared > cx->limit) {
        http_error(req, 413, "payload_too_large", NULL, "the body is larger than %zu bytes", cx->limit);
        return true;
    }
    cx->declared = declared;
    return false;
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
static bool answer_mid_body(conn_ctx_t *cx, struct MHD_Connection *conn)
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

/* Drop body bytes after a 413; false once DROP_MAX of them went by (a chunked body may never end). */
static bool drop_body(conn_ctx_t *cx, size_t *upload_data_size)
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
static bool refuse_mid_body(conn_ctx_t *cx, struct MHD_Connection *conn, size_t *upload_data_size)
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
static bool refuse_body(conn_ctx_t *cx, struct MHD_Connection *conn, size_t *upload_data_size)
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
static bool grow_body(conn_ctx_t *cx, size_t more)
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

/* How often a strong read waiting for a slot tries again. Each try resumes and suspends its
 * connection; waking one waiter when a slot frees would cost less and keep their order (not
 * built: the wait is short and strong reads are few and keyed). */
#define STRONG_RETRY_MS 10

typedef enum { STRONG_GO, STRONG_REFUSED, STRONG_WAIT } strong_admit_t;

/*
 * API.md: consistency=strong skips every cache and the replicas for the primary. Only a write or
 * admin key may ask; such reads draw on a bucket of their own (limits.strong_reads_per_s), and
 * at most limits.strong_concurrency run at once on this instance. One past the cap waits up to
 * limits.strong_wait_ms for a slot (STRONG_WAIT: the caller suspends it), then gets 503. The
 * refusal, when there is one, is written into the request.
 */
static strong_admit_t strong_admit(conn_ctx_t *cx, http_req_t *req, bool first)
{
    const http_server_deps_t *deps = &cx->server->deps;
    if (first && deps->api.strong_refused(deps->api.app, req) != 0)
        return STRONG_REFUSED;
    int cap = deps->cfg->limit_strong_concurrency;
    if (atomic_fetch_add(&cx->server->strong_in_flight, 1) >= cap) {
        atomic_fetch_sub(&cx->server->strong_in_flight, 1);
        int64_t now = clock_mono_ms();
        if (first)
            cx->strong_until_ms = now + deps->cfg->limit_strong_wait_ms;
        if (now < cx->strong_until_ms && !atomic_load(&cx->server->draining))
            return STRONG_WAIT;
        req->retry_after = 1;
        http_error(req, 503, "unavailable", NULL,
                   "%d strong reads are running on this instance (limits.strong_concurrency); retry, or read "
                   "without consistency=strong", cap);
        return STRONG_REFUSED;
    }
    if (deps->api.strong_limit(deps->api.app, req) != 0) {
        atomic_fetch_sub(&cx->server->strong_in_flight, 1);
        return STRONG_REFUSED;
    }
    cx->strong_counted = true;
    return STRONG_GO;
}

/*
 * A 429 to a client that was refused REFUSALS_BEFORE_DELAY times in a row (it ignores
 * Retry-After) waits http.refusal_delay_ms before it is sent, its connection suspended: such a
 * client gets one refusal a pause per connection instead of as many as it can send, and costs
 * the server next to nothing; the connection is closed after it. A client that honours
 * Retry-After never meets the pause.
 */
#define REFUSALS_BEFORE_DELAY 8


/* Suspend the connection in `phase` until the delay thread resumes it at monotonic `due_ms`;
 * on_request then sees the phase and goes on (a held-back refusal, a strong read or a read
 * waiting for room trying again). */
static void park_until(conn_ctx_t *cx, struct MHD_Connection *conn, conn_phase_t phase, int64_t due_ms)
{
    cx->phase = phase;
    cx->conn = conn;
    MHD_suspend_connection(conn);
    delay_queue_push(cx->server->delays, due_ms, resume_connection, cx);
}

static bool delay_refusal(conn_ctx_t *cx, struct MHD_Connection *conn)
{
    const http_req_t *req = &cx->req;
    int pause = cx->server->deps.cfg->refusal_delay_ms;
    if (pause <= 0 || req->status != 429 || !req->ratelimit.refused || req->ratelimit.strikes < REFUSALS_BEFORE_DELAY ||
        atomic_load(&cx->server->draining))
        return false;
    cx->delayed = true;
    atomic_fetch_add(&cx->server->refusals_delayed, 1);
    park_until(cx, conn, CONN_DELAYED, clock_mono_ms() + pause);
    return true;
}

/* Called by whoever finished a request's pending work, on any thread. */
static void resume_connection(void *arg)
{
    conn_ctx_t *cx = arg;
    MHD_resume_connection(cx->conn);
}

static enum MHD_Result admit_strong(conn_ctx_t *cx, struct MHD_Connection *conn, bool first);
static enum MHD_Result admit_room(conn_ctx_t *cx, struct MHD_Connection *conn, bool first);
static enum MHD_Result run_request(conn_ctx_t *cx, struct MHD_Connection *conn);

#define BODY_PIPE_BYTES (1024 * 1024) /* bytes of a streamed body held between the socket and its consumer */

/* A stream_body route's headers passed: its consumer starts now, before the body comes. True when
 * it refused (the answer is in cx->req). */
static bool start_body_pipe(conn_ctx_t *cx, struct MHD_Connection *conn)
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
static enum MHD_Result feed_pipe(conn_ctx_t *cx, struct MHD_Connection *conn, const char *data, size_t *size)
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_server_t *s = cls;
    conn_ctx_t *cx = *con_cls;
    if (!cx) {
        cx = xcalloc(1, sizeof *cx);
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

/* How long a read waits for answers in flight to free room before its 503, and how often it
 * looks again (as strong reads wait for a slot). */
#define ROOM_WAIT_MS 1000
#define ROOM_RETRY_MS 10

/* Reads: GETs of the API and /v1/batch, whose answers may be large; never the probes, /metrics
 * or the dashboard (their answers are the operators', and are never held back). */
static bool is_read(const conn_ctx_t *cx)
{
    return strncmp(cx->path, "/v1/", 4) == 0 &&
           (strcmp(cx->req.method, "GET") == 0 || strcmp(cx->path, "/v1/batch") == 0);
}

/*
 * API.md: answers not yet sent hold at most http.max_response_bytes_in_flight bytes, and those
 * of one address at most http.response_bytes_per_ip. A read from an address that holds its
 * whole share waits up to ROOM_WAIT_MS for its clients to read, suspended (holding nothing);
 * then the strong reads' own admission, then the request runs. Its answer, when large, gets
 * 503 with Retry-After if it still does not fit (send_response); a small one always goes.
 */
static enum MHD_Result admit_room(conn_ctx_t *cx, struct MHD_Connection *conn, bool first)
{
    http_server_t *s = cx->server;
    http_req_t *req = &cx->req;
    bool room = !is_read(cx) || !addr_budget_full(s->answers, req->limit_addr);
    if (!room) {
        int64_t now = clock_mono_ms();
        if (first)
            cx->room_until_ms = now + ROOM_WAIT_MS;
        if (now < cx->room_until_ms && !atomic_load(&s->draining)) {
            if (!cx->room_waits) {
                cx->room_waits = true;
                atomic_fetch_add(&s->room_waiting, 1);
            }
            park_until(cx, conn, CONN_ROOM_WAIT, now + ROOM_RETRY_MS);
            return MHD_YES;
        }
    }
    if (cx->room_waits) {
        cx->room_waits = false;
        atomic_fetch_sub(&s->room_waiting, 1);
    }
    cx->phase = CONN_ANSWERED;
    bool bad = false;
    const char *cons = http_param(req, "consistency", &bad);
    req->strong = cons && strcmp(cons, "strong") == 0 && strcmp(req->method, "GET") == 0 &&
                  strncmp(cx->path, "/v1/", 4) == 0;
    if (req->strong)
        return admit_strong(cx, conn, true);
    return run_request(cx, conn);
}

/* A strong read: run it, refuse it, or suspend it until it tries for a slot again. */
static enum MHD_Result admit_strong(conn_ctx_t *cx, struct MHD_Connection *conn, bool first)
{
    strong_admit_t admitted = strong_admit(cx, &cx->req, first);
    if ((admitted == STRONG_WAIT) != cx->strong_waits) {
        cx->strong_waits = admitted == STRONG_WAIT;
        atomic_fetch_add(&cx->server->strong_waiting, cx->strong_waits ? 1 : -1);
    }
    switch (admitted) {
    case STRONG_GO:
        cx->phase = CONN_ANSWERED;
        return run_request(cx, conn);
    case STRONG_WAIT:
        park_until(cx, conn, CONN_STRONG_WAIT, clock_mono_ms() + STRONG_RETRY_MS);
        return MHD_YES;
    case STRONG_REFUSED:
    default:
        if (delay_refusal(cx, conn)) /* one that goes on asking without the privilege */
            return MHD_YES;
        cx->phase = CONN_ANSWERED;
        return send_response(cx, conn, false);
    }
}

/* The whole request is here and may run: its handler answers now or leaves pending work. */
static enum MHD_Result run_request(conn_ctx_t *cx, struct MHD_Connection *conn)
{
    http_server_t *s = cx->server;
    http_req_t *req = &cx->req;
    req->body = cx->body.data;
    req->body_len = cx->body.len;
    req->content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    req->idem_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
    s->deps.api.handle(s->deps.api.app, &cx->rt, req);
    if (req->pending) {
        /* Suspend before starting: the work may finish, and resume us, at once. */
        cx->phase = CONN_WAITING;
        cx->conn = conn;
        MHD_suspend_connection(conn);
        req->pending->start(req->pending, resume_connection, cx);
        return MHD_YES;
    }
    if (req->status >= 500)
        log_req_warn(req, "%s %s answered %d", cx->method, cx->path, req->status);
    if (delay_refusal(cx, conn))
        return MHD_YES;
    return send_response(cx, conn, false);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    http_server_t *s = cls;
    conn_ctx_t *cx = *con_cls;
    if (!cx)
        return;
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
    /* Never less than one body of the largest kind (and its NUL): that one is always taken. */
    size_t largest = (cfg->batch_body_limit > cfg->body_limit ? cfg->batch_body_limit : cfg->body_limit) + 1;
    s->bodies = addr_budget_new(cfg->body_bytes_per_ip == 0           ? 0
                                : cfg->body_bytes_per_ip < largest ? largest
                                                                    : cfg->body_bytes_per_ip);
    s->delays = delay_queue_start();
    s->sends = send_watch_start(cfg->max_response_bytes_in_flight, (int64_t)cfg->send_timeout_s * 1000);
    s->answers = addr_budget_new(cfg->response_bytes_per_ip);
    if (!s->delays || !s->sends) {
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
        delay_queue_stop(s->delays);
        send_watch_stop(s->sends);
        addr_budget_free(s->answers);
        addr_budget_free(s->bodies);
        free(s);
        return NULL;
    }
    return s;
}

/* Streamed answers still going (exports): their producers stop, and a suspended one is resumed
 * to end with an error, so that the client sees an incomplete body (libmicrohttpd cannot stop
 * with a connection suspended, and a slow reader must not hold a shutdown). */
static void cancel_streams(http_server_t *s)
{
    pthread_mutex_lock(&s->streams_mu);
    s->streams_cut = true;
    for (size_t i = 0; i < s->n_streams; i++)
        cut_stream(s->streams[i], s->stream_fds[i]);
    pthread_mutex_unlock(&s->streams_mu);
}

int http_server_drain(http_server_t *s, int timeout_ms)
{
    atomic_store(&s->draining, true);
    cancel_streams(s);
    delay_queue_flush(s->delays); /* the refusals held back go out now */
    /* New connections are refused from here on; the requests that had arrived are answered
     * (this may wait up to a second for those clients to close). */
    acceptor_close(s->acceptor);
    s->acceptor = NULL;
    for (int waited = 0; waited < timeout_ms && atomic_load(&s->in_flight) > 0; waited += 5)
        usleep(5000);
    return atomic_load(&s->in_flight);
}

void http_server_stop(http_server_t *s)
{
    if (!s)
        return;
    acceptor_close(s->acceptor);
    delay_queue_stop(s->delays); /* resumes what it held: none stays suspended past here */
    cancel_streams(s);
    MHD_stop_daemon(s->daemon);
    send_watch_stop(s->sends); /* after the daemon: every answer's request has ended */
    addr_budget_free(s->answers);
    addr_budget_free(s->bodies);
    free(s->streams);
    free(s->stream_fds);
    pthread_mutex_destroy(&s->streams_mu);
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
