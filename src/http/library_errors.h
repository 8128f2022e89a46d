/*
 * http/library_errors.h — the error answers libmicrohttpd makes itself, given the API's JSON
 * error object instead of its HTML pages.
 *
 * The acceptor answers a connection's first request the library would refuse (request_head.h);
 * a later request of a kept-alive connection reaches the library's parser first, and the
 * library answers what it cannot take (a head over its 16 KiB, HTTP/2.0, a malformed line) with
 * an HTML page of its own: libmicrohttpd 0.9.75 has no hook for those. It queues every such page
 * through its public MHD_queue_response, and calls it through its PLT, so rankd defines that
 * function (library_errors.c): the dynamic linker binds the library's calls to the program's
 * definition first. For a call carrying a page of the library's (rankd's own answers all carry
 * X-Request-Id), the JSON error of request_head_library_refusal, with the same status, is
 * written on the socket as the acceptor writes a first request's and the socket's sending side
 * shut; the page then goes to the library's function as asked, and its send fails: the library
 * closes the connection as after any refusal. rankd queues its own
 * answers with http_queue_answer, straight to the library's. tests/e2e/test_front_door.py
 * (every request of a kept-alive connection) fails if the binding ever stops working.
 */
#ifndef RANKD_HTTP_LIBRARY_ERRORS_H
#define RANKD_HTTP_LIBRARY_ERRORS_H

#include <stdbool.h>

#include <microhttpd.h>

#include "util/must_use.h"

/* Find libmicrohttpd's own MHD_queue_response, once (before the daemon starts); false when it
 * cannot be found. */
MUST_USE bool library_errors_init(void);

/* Queue rankd's own answer `r` on `c` with libmicrohttpd's function (as MHD_queue_response). */
enum MHD_Result http_queue_answer(struct MHD_Connection *c, unsigned int status, struct MHD_Response *r);

#endif
