/*
 * http/server.h — the HTTP front: libmicrohttpd with an epoll thread pool.
 *
 * Each worker thread runs its own epoll loop; a request's handler runs on
 * the worker that owns its connection. The server checks what can be
 * checked from the headers alone (route, method, key, body size) before a
 * body is read, so an oversized body is refused with 413 unread.
 */
#ifndef RANKD_HTTP_SERVER_H
#define RANKD_HTTP_SERVER_H

#include <stddef.h>

#include "api/app.h"

typedef struct http_server http_server_t;

/* Listen and serve; NULL with a message in `err` on failure. */
http_server_t *http_server_start(app_t *app, char *err, size_t errlen);

/*
 * Stop accepting connections and wait up to `timeout_ms` for in-flight
 * requests to be answered; each connection is closed after its answer.
 * Returns the number still in flight. May be called more than once.
 */
int http_server_drain(http_server_t *s, int timeout_ms);

/* Close every connection and free the server. */
void http_server_stop(http_server_t *s);

#endif
