/*
 * http/dispatch.h — how the HTTP server reaches the API: the route a request matched, the checks
 * at its headers, and its handler. The API fills one at start (api_dispatch); the server calls
 * nothing else of it, so that http/ depends on no file of api/ (which builds on http/).
 */
#ifndef RANKD_HTTP_DISPATCH_H
#define RANKD_HTTP_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "http/request.h"

/* Room for a decoded id segment: ids are at most 64 bytes (API.md); a longer segment is
 * marked bad, which handlers refuse as they refuse an invalid id. Small enough that a
 * request's context stays under 1 KB, an allocation glibc serves without consolidating. */
#define ROUTE_SEGMENT_MAX 128

/* A matched route. */
typedef struct http_route {
    int id;                /* the API's route id: its handler, and the metrics label */
    char board[ROUTE_SEGMENT_MAX]; /* decoded path segment (validated by the handler) */
    size_t board_len;
    bool board_bad;        /* undecodable, or longer than any id */
    char player[ROUTE_SEGMENT_MAX];
    size_t player_len;
    bool player_bad;
    role_t role;           /* role the method needs */
    bool batch_body;       /* body limit is the batch limit */
    bool stream_body;      /* the body is handed on while it arrives (an import): import limit */
} http_route_t;

typedef struct http_dispatch {
    void *app; /* the first argument of each call */
    /* Match `method` and `path`: 0, or the 404 or 405 (with req->allow) written into req.
     * OPTIONS matches any route. */
    int (*route)(void *app, const char *method, const char *path, http_route_t *rt, http_req_t *req);
    /* At the headers, once req->role, req->client and req->addr are known (a role < 0 is a key
     * that is no configured key): the caller's role and rate limits. 0 to read the body, else the
     * 401, 403 or 429 written into req. */
    int (*admit)(void *app, const http_route_t *rt, const char *method, http_req_t *req);
    /* consistency=strong, before its first try: 0, or the 403 (or 429) written into req. */
    int (*strong_refused)(void *app, http_req_t *req);
    /* consistency=strong, with a slot taken: its own bucket's token; 0, or the 429 written. */
    int (*strong_limit)(void *app, http_req_t *req);
    /* A stream_body route, at its headers (parameters, Content-Type and Idempotency-Key known):
     * start the consumer of req->body_pipe, taking a hold of it. 0, or the refusal written. */
    int (*stream_start)(void *app, const http_route_t *rt, http_req_t *req);
    /* Run the route with its body: the status, or a pending answer (req->pending). */
    int (*handle)(void *app, const http_route_t *rt, http_req_t *req);
} http_dispatch_t;

#endif
