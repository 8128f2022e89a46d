/* http/library_errors.c — libmicrohttpd's own error answers, in the API's JSON (see the header). */
#include "http/library_errors.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "http/request_head.h"
#include "obs/log.h"

typedef enum MHD_Result (*queue_fn)(struct MHD_Connection *, unsigned int, struct MHD_Response *);

/* libmicrohttpd's MHD_queue_response: written once, under `resolved`, before any thread reads it. */
static queue_fn library_queue;
static pthread_once_t resolved = PTHREAD_ONCE_INIT;

static void resolve(void)
{
    /* The next definition after the program's: the library's (POSIX's way to hold a function's
     * address in a data pointer). */
    *(void **)&library_queue = dlsym(RTLD_NEXT, "MHD_queue_response");
}

bool library_errors_init(void)
{
    pthread_once(&resolved, resolve);
    if (!library_queue)
        log_error(NULL, "libmicrohttpd's MHD_queue_response cannot be found: %s", dlerror());
    return library_queue != NULL;
}

enum MHD_Result http_queue_answer(struct MHD_Connection *c, unsigned int status, struct MHD_Response *r)
{
    return library_queue(c, status, r);
}

#define DRAIN_MAX 65536 /* bytes of the refused request taken off the socket before the close */

/*
 * Answer the request the library refused with `status` on its socket, as the acceptor answers a
 * first request: the JSON error, "Connection: close", then the sending side shut. What has
 * arrived of the request is read and dropped (never waited for), so that the close leaves
 * little unread: a close with bytes unread resets the connection, and may take the answer with
 * it. False when the answer could not be written.
 */
static bool refuse_on_socket(struct MHD_Connection *connection, unsigned int status)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    head_verdict_t v = request_head_library_refusal((int)status);
    char out[1024];
    size_t n = request_head_answer(&v, time(NULL), out, sizeof out);
    ssize_t sent;
    do /* a few hundred bytes, after the connection's last answer was sent whole */
        sent = n ? send(ci->connect_fd, out, n, MSG_NOSIGNAL) : -1;
    while (sent < 0 && errno == EINTR);
    if (sent != (ssize_t)n)
        return false;
    shutdown(ci->connect_fd, SHUT_WR);
    char scratch[4096];
    ssize_t got;
    for (size_t drained = 0; drained < DRAIN_MAX &&
                             (got = recv(ci->connect_fd, scratch, sizeof scratch, MSG_DONTWAIT)) > 0;)
        drained += (size_t)got;
    log_debug(NULL, "a later request of a kept-alive connection the HTTP library refused: %d in JSON", v.status);
    return true;
}

/*
 * The program's MHD_queue_response, which the library's own calls reach (see the header). An
 * answer of rankd's goes on unchanged. For a page of the library's, the JSON error is written on
 * the socket first, its sending side shut; the page is then queued as the library asked, so that
 * the library goes on exactly as after any refusal of its own (returning MHD_NO here instead
 * would make it close the connection and free its memory pool under callers that still read
 * it), and its page, sent after the shutdown, never leaves: the send fails and the library closes
 * the connection. (Queueing a JSON answer in the page's place would not do: after a bad
 * Content-Length, libmicrohttpd 0.9.75 sends a queued answer's head twice.)
 */
enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
                                   struct MHD_Response *response)
{
    pthread_once(&resolved, resolve);
    if (!library_queue)
        return MHD_NO; /* cannot happen once the server started: library_errors_init said so */
    if (status_code >= 400 && !MHD_get_response_header(response, "X-Request-Id"))
        (void)refuse_on_socket(connection, status_code); /* else its page goes, as before */
    return library_queue(connection, status_code, response);
}
