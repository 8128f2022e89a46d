/*
 * loadtest/mhd_fixed.c — the HTTP-layer ceiling for a rank read: libmicrohttpd with the
 * daemon flags rankd uses (internal polling thread, epoll, turbo, a thread pool), answering
 * every request with one prepared response (200, Content-Type: application/json, the bytes
 * of BODY_FILE). No parsing, no allocation per request, no I/O but the socket.
 *
 *   gcc -O2 -o mhd_fixed loadtest/mhd_fixed.c -lmicrohttpd
 *   ./mhd_fixed PORT BODY_FILE [THREADS]      listens on 127.0.0.1:PORT until SIGTERM/SIGINT
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    static int seen; /* any non-NULL marker */
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    /* The first call only announces the headers: a response queued then makes libmicrohttpd
     * 0.9.75 close the connection after it (Connection: close). Answer on the next call, as
     * rankd does, so that the connection is kept alive. */
    if (*con_cls == NULL) {
        *con_cls = &seen;
        return MHD_YES;
    }
    if (*upload_data_size) { /* a request body: swallow it, answer at the end */
        *upload_data_size = 0;
        return MHD_YES;
    }
    return MHD_queue_response(conn, MHD_HTTP_OK, (struct MHD_Response *)cls);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT BODY_FILE [THREADS]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    unsigned threads = argc > 3 ? (unsigned)atoi(argv[3]) : 1;
    if (port <= 0 || port > 65535 || threads < 1) {
        fprintf(stderr, "mhd_fixed: bad port or thread count\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    static char body[1 << 20];
    size_t len = fread(body, 1, sizeof body, f);
    fclose(f);

    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
    if (!resp || MHD_add_response_header(resp, "Content-Type", "application/json") != MHD_YES) {
        fprintf(stderr, "mhd_fixed: cannot prepare the response\n");
        return 1;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's threads inherit the mask */

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_TURBO, (uint16_t)port, NULL, NULL,
        answer, resp, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd_fixed: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    fprintf(stderr, "mhd_fixed: 127.0.0.1:%d, %zu-byte body, %u thread(s)\n", port, len, threads);
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    return 0;
}
