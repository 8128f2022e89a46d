/*
 * http/server_admit.c — a whole request admitted and run, or suspended while it waits: for room
 * for its answer, for a strong read's slot, or to send a refusal held back.
 *
 * A waiting request holds no thread: its connection is suspended and parked on the delay
 * thread (http/delay_queue.h), which resumes it when it is to try again; on_request then sees
 * its phase and goes on here.
 */
#include <string.h>

#include "http/server_conn.h"
#include "obs/log.h"
#include "util/clock.h"

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

bool delay_refusal(conn_ctx_t *cx, struct MHD_Connection *conn)
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
void resume_connection(void *arg)
{
    conn_ctx_t *cx = arg;
    MHD_resume_connection(cx->conn);
}

static enum MHD_Result run_request(conn_ctx_t *cx, struct MHD_Connection *conn);

/* How long a read waits for answers in flight to free room before its 503, and how often it
 * looks again (as strong reads wait for a slot). */
#define ROOM_WAIT_MS 1000
#define ROOM_RETRY_MS 10

/* Reads: GETs of the API and /v1/batch, whose answers may be large; never the probes, /metrics
 * or the dashboard (their answers are the operators', and are never held back). */
bool conn_is_read(const conn_ctx_t *cx)
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
enum MHD_Result admit_room(conn_ctx_t *cx, struct MHD_Connection *conn, bool first)
{
    http_server_t *s = cx->server;
    http_req_t *req = &cx->req;
    bool room = !conn_is_read(cx) || !addr_budget_full(s->answers, req->limit_addr);
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
enum MHD_Result admit_strong(conn_ctx_t *cx, struct MHD_Connection *conn, bool first)
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
    req->last_event_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
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
