/*
 * http/request.h — a request as the API layer sees it, independent of
 * libmicrohttpd, so that /v1/batch can run its inner GETs through the same
 * handlers: method, raw path, decoded query parameters, body, the caller's
 * role, and the response being built (status, JSON body, a few headers).
 *
 * Handlers return the HTTP status they produced. http_error() writes the
 * JSON error object of API.md and returns its status, so a validation
 * failure is one line: `return http_error(req, 400, ...)`.
 */
#ifndef RANKD_HTTP_REQUEST_H
#define RANKD_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/player_claims.h"
#include "http/ratelimit.h"
#include "util/arena.h"
#include "util/buf.h"

typedef struct {
    char *name;   /* percent-decoded, in the request's arena */
    char *value;  /* percent-decoded, in the request's arena; NULL when malformed */
} http_param_t;

/*
 * Work a handler leaves running when it returns (a queued write): the
 * server suspends the connection, calls start() with a wake() to call when
 * the work is done (from any thread), and on resumption calls finish() to
 * render the answer; release() frees it in every case.
 */
struct http_req;

/* finish() may return this instead of a status: suspend again and call start() again. */
#define HTTP_PENDING_AGAIN (-1)

typedef struct http_pending {
    void (*start)(struct http_pending *p, void (*wake)(void *arg), void *wake_arg);
    int (*finish)(struct http_pending *p, struct http_req *req);
    void (*release)(struct http_pending *p);
} http_pending_t;

/* Bytes that never change while the process runs (a compiled-in file), with their ETag and
 * each encoding made once: sent as they are, copied nowhere. A NULL encoding is not offered. */
typedef struct http_static {
    const char *body;
    size_t len;
    char etag[32];               /* ETAG_MAX */
    const char *enc_body[3];     /* by encoding_t: [0] unused (identity is `body`), gzip, br */
    size_t enc_len[3];
    char enc_etag[3][32];
} http_static_t;

typedef struct http_req {
    /* request */
    const char *method;       /* "GET" for HEAD too; see `head` */
    bool head;
    const char *path;         /* raw, not decoded */
    http_param_t *params;     /* in `arena` */
    size_t n_params, cap_params;
    const char *body;
    size_t body_len;
    const char *content_type; /* NULL when absent */
    const char *idem_key;     /* Idempotency-Key header, NULL when absent */
    const char *last_event_id; /* Last-Event-ID header (a live stream's reconnection), NULL when absent */
    struct http_body_pipe *body_pipe; /* a stream_body route's body, handed on as it arrives (the
                                       * server's hold, released when the request ends) */
    struct http_pending *body_consumer; /* what reads body_pipe: the handler makes it the pending
                                         * answer; released with the request if it never did */
    role_t role;              /* what the caller may do */
    bool key_presented;
    const char *bearer;       /* the credentials after "Bearer " (libmicrohttpd's, for the request), or NULL */
    const player_claims_t *player; /* a verified player token's claims (in `arena`, or the outer
                                    * request's for a /v1/batch item); NULL for a key or none */
    char key_name[80];        /* the key's name for the audit of submissions (auth.keys[].name, its
                               * variable, or "k" and its digest's first bytes); "" for none */
    bool player_charged;      /* its player's bucket of writes was charged (once, whatever reruns) */
    char client[80];          /* who the rate limits count: "k<key index>" or "a<address>" */
    char addr[48];            /* the client's address: the peer, or whom a trusted proxy names */
    char limit_addr[48];      /* what per-address limits count it as: itself, or an IPv6 one's /64
                               * (netaddr_limit_key) */
    char request_id[22];         /* the server's own id for the request */
    char client_request_id[65];  /* the client's X-Request-Id when valid, else "": echoed instead */
    int64_t received_ms;
    bool strong;              /* consistency=strong */
    bool tier_first;          /* a strong read the rank tier may answer: it has applied every change
                               * this instance heard (a live stream's read: api/live.c) */
    bool tier_answered;       /* the rank tier answered it */
    bool inline_only;         /* answer before returning (no pending work): a /v1/batch item */
    bool off_loop;            /* running on a thread that may wait on PostgreSQL or Redis */
    bool warm;                /* rendered ahead of its readers (a rollover): cache it on this first miss */
    arena_t arena;            /* the parameters and the parsed JSON body live here until http_req_clear */

    /* response */
    http_pending_t *pending;  /* set by a handler whose answer comes later */
    struct l1_entry *cached;  /* held L1 entry holding the answer's bytes (instead of `out`) */
    int status;
    buf_t out;                /* JSON body; empty for 204 */
    char location[160];
    const char *allow;        /* Allow header for 405 / OPTIONS */
    int retry_after;          /* seconds, 0 = none */
    rl_verdict_t ratelimit;   /* the RateLimit-* headers, when a limit applied */
    bool cacheable;           /* a successful read */
    int64_t last_modified_ms; /* Last-Modified, 0 = none */
    const char *content_type_out; /* NULL = application/json */
    const char *security_policy;  /* Content-Security-Policy of a page, NULL for none */
    const http_static_t *static_body; /* the answer's bytes when they are static (instead of `out`) */
    struct http_stream *stream;   /* the answer's bytes as a producer writes them (instead of `out`):
                                   * the server's hold, released by http_req_clear unless handed on */
    char disposition[160];        /* Content-Disposition, "" for none */
} http_req_t;

void http_req_init(http_req_t *req);
/* Free what the request owns (its arena with the parameters, the response body). */
void http_req_clear(http_req_t *req);

/* Add a parameter from raw (still encoded) name and value. */
void http_req_add_param(http_req_t *req, const char *raw_name, const char *raw_value);
/* Parse "a=1&b=2" (raw) into parameters. */
void http_req_parse_query(http_req_t *req, const char *query);

/*
 * Look up a parameter. Returns NULL when absent. Sets *bad when it is
 * present twice or malformed (its value cannot be percent-decoded).
 */
const char *http_param(const http_req_t *req, const char *name, bool *bad);

/* Write the error object and return `status`. `field` may be NULL. */
int http_error(http_req_t *req, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Standard errors. */
int http_not_found(http_req_t *req, const char *field, const char *what);
/* 400 invalid_argument for parameter `name`; the message states the rule it broke. */
int http_bad_param(http_req_t *req, const char *name, const char *rule_fmt, ...) __attribute__((format(printf, 3, 4)));
int http_unavailable(http_req_t *req, const char *what);
int http_internal(http_req_t *req);

/* Set a 200 (or other) status with the body already rendered into req->out. */
int http_ok(http_req_t *req, int status);

#endif
