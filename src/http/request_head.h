/*
 * http/request_head.h — the first request of a connection, checked before libmicrohttpd reads it.
 *
 * libmicrohttpd 0.9.75 answers a request it cannot parse with an HTML page of its own, or closes
 * the connection without a word, and offers no hook to change either. API.md wants the JSON error
 * object for those too. So the acceptor (acceptor.c) peeks at a new connection's first request
 * head and answers, itself, the ones libmicrohttpd would refuse: a malformed request line (400),
 * an HTTP version other than 1.x (505), a head longer than REQUEST_HEAD_MAX (414 when the request
 * line alone is, else 431), a header line with no colon, a Content-Length that is no number or
 * says two things, a Transfer-Encoding other than chunked, or both framings at once (400: the
 * last three are how requests are smuggled past a proxy).
 *
 * A later request of a kept-alive connection reaches libmicrohttpd's parser first. The server
 * holds its parsed header fields to the same framing rules (request_head_field, at its headers),
 * and what the library refuses itself is answered with request_head_library_refusal's verdict
 * (http/library_errors.c).
 *
 * Pure code: the acceptor reads the bytes, this says what they are.
 */
#ifndef RANKD_HTTP_REQUEST_HEAD_H
#define RANKD_HTTP_REQUEST_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "util/must_use.h"

/* The longest head rankd takes, request line and headers (API.md: 8 KiB). */
#define REQUEST_HEAD_MAX 8192

typedef enum {
    HEAD_NEED_MORE, /* no whole head yet, and nothing wrong in what there is */
    HEAD_OK,        /* a whole head libmicrohttpd may take */
    HEAD_BAD,       /* refuse it: the verdict says how */
} head_status_t;

typedef struct {
    int status;          /* 400, 414, 431 or 505; 503 from request_head_unavailable(); for a request the
                          * library refused, its status (request_head_library_refusal) */
    const char *reason;  /* the status line's reason phrase */
    const char *code;    /* the error object's code: invalid_argument, or unavailable */
    const char *field;   /* the error object's field, or NULL */
    const char *message; /* what was wrong, and the rule (static) */
    int retry_after_s;   /* > 0: a Retry-After header of that many seconds */
} head_verdict_t;

/* How a request's body is framed, as its header fields so far say (request_head_field). */
typedef struct {
    bool has_length;
    const char *length; /* the first Content-Length's value, trimmed */
    size_t length_len;
    bool chunked;
} head_framing_t;

/*
 * One header field, `name` (what came before the colon) and `value` (what came after it), held
 * to the rules of the head: a name is a token (no space before the colon), a Content-Length a
 * number of at most 18 digits and one value, a Transfer-Encoding "chunked" and once. *f, zeroed
 * before a request's first field, gathers its framing. HEAD_OK, or HEAD_BAD with *v.
 */
MUST_USE head_status_t request_head_field(const char *name, size_t name_len, const char *value, size_t value_len,
                                          head_framing_t *f, head_verdict_t *v);

/* After a request's last field: both framings at once is HEAD_BAD. */
MUST_USE head_status_t request_head_framing_end(const head_framing_t *f, head_verdict_t *v);

/*
 * The verdict for a request libmicrohttpd refused itself with `status` (it says no more than
 * that): 400 the rules of the request line and header lines, 414 and 431 the 8 KiB bound, 505
 * the versions, 413 a body larger than it frames; any other status a request it could not read.
 */
head_verdict_t request_head_library_refusal(int status);

/* The API's error object for `v` into out (at most `cap` bytes, NUL-terminated); its length, or
 * 0 when cap is too small. */
size_t request_head_body(const head_verdict_t *v, char *out, size_t cap);

/*
 * Check the `len` bytes that have arrived of a connection (what follows the PROXY header, if
 * any). Give at least REQUEST_HEAD_MAX + 1 bytes when as many have arrived: a head that has not
 * ended by then is too large. On HEAD_BAD, *v says what to answer.
 */
MUST_USE head_status_t request_head_check(const char *buf, size_t len, head_verdict_t *v);

/* The verdict for a whole first request the server will not serve because it is shutting down:
 * 503 unavailable, try again in a second (on another instance, behind a load balancer). */
head_verdict_t request_head_unavailable(void);

/*
 * Write the whole answer to a refused head into out (at most `cap` bytes, NUL-terminated):
 * status line, headers (Date of `now`, Content-Type: application/json, Connection: close,
 * nosniff, no-store, and Retry-After when the verdict has one) and the API's error object. Returns its length, or 0 when cap is too small.
 */
size_t request_head_answer(const head_verdict_t *v, time_t now, char *out, size_t cap);

#endif
