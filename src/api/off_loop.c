/*
 * api/off_loop.c — running a handler on an offload thread instead of an event loop.
 *
 * A handler that must wait on PostgreSQL or Redis and has no asynchronous path of its own
 * (board CRUD, stats, windows, standings, a board not yet in the board cache, /v1/batch,
 * /readyz, /metrics) is not run where it was routed: api_off_loop() suspends the connection
 * and runs the whole handler again on one of the offload threads, with req->off_loop set so
 * that it does its I/O there. libmicrohttpd's event-loop threads keep serving every other
 * connection meanwhile. A handler that leaves asynchronous work of its own (a read through
 * the Redis pipe, a queued write) hands it over when the connection resumes.
 */
#include <stdlib.h>

#include "api/app.h"
#include "util/alloc.h"
#include "worker/offload.h"

typedef struct {
    http_pending_t base;
    offload_job_t job;
    app_t *app;
    const route_t *rt;       /* the connection's, valid while it is suspended */
    http_req_t *req;         /* likewise; only the offload thread touches it until wake() */
    http_pending_t *inner;   /* work the handler left running, if any */
    void (*wake)(void *arg);
    void *wake_arg;
} off_loop_t;

static void off_loop_job(offload_job_t *job)
{
    off_loop_t *op = WORKQ_OWNER(job, off_loop_t, job);
    http_req_t *req = op->req;
    req->pending = NULL;
    req->off_loop = true;
    api_handle(op->app, op->rt, req);
    op->inner = req->pending;
    req->pending = &op->base;
    op->wake(op->wake_arg); /* last: the request may be finished and freed at once */
}

static void off_loop_start(http_pending_t *p, void (*wake)(void *), void *wake_arg)
{
    off_loop_t *op = (off_loop_t *)p;
    op->wake = wake;
    op->wake_arg = wake_arg;
    op->job.run = off_loop_job;
    offload_submit(op->app->offload, &op->job);
}

/* Back on the event loop: the answer is in req, or the handler's own work goes on. */
static int off_loop_finish(http_pending_t *p, http_req_t *req)
{
    off_loop_t *op = (off_loop_t *)p;
    req->off_loop = false;
    if (op->inner) {
        req->pending = op->inner; /* the server starts it, and releases it in the end */
        free(op);
        return HTTP_PENDING_AGAIN;
    }
    return req->status;
}

static void off_loop_release(http_pending_t *p)
{
    off_loop_t *op = (off_loop_t *)p;
    if (op->inner) /* the connection died before finish() handed it over */
        op->inner->release(op->inner);
    free(op);
}

bool api_on_loop(const app_t *app, const http_req_t *req)
{
    return !req->off_loop && !req->inline_only && app->offload != NULL;
}

int api_off_loop(app_t *app, const route_t *rt, http_req_t *req)
{
    off_loop_t *op = xcalloc(1, sizeof *op);
    op->base.start = off_loop_start;
    op->base.finish = off_loop_finish;
    op->base.release = off_loop_release;
    op->app = app;
    op->rt = rt;
    op->req = req;
    req->pending = &op->base;
    return HTTP_OFF_LOOP;
}
