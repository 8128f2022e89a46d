/* api/health.c — liveness and readiness. */
#include <string.h>

#include "api/app.h"

int api_health(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)app;
    (void)rt;
    buf_puts(&req->out, "{\"status\":\"ok\"}");
    return http_ok(req, 200);
}

int api_ready(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    const char *pg = "down";
    PGconn *c = pg_pool_acquire(app->primary, 1000);
    if (c) {
        PGresult *r = PQexec(c, "SELECT 1");
        bool ok = pg_ok(r);
        PQclear(r);
        pg_pool_release(app->primary, c, !ok);
        pg = ok ? "ok" : "down";
    }
    const char *redis = redis_state(app->redis);
    bool pg_up = strcmp(pg, "ok") == 0;
    bool redis_up = strcmp(redis, "ok") == 0;
    bool serving = pg_up || redis_up;
    bool all = pg_up && (redis_up || app->redis == NULL);
    buf_printf(&req->out, "{\"status\":\"%s\",\"dependencies\":{\"postgres_primary\":\"%s\",\"redis\":\"%s\"}}",
               all ? "ok" : serving ? "degraded" : "down", pg, redis);
    if (!serving)
        req->retry_after = 1;
    return http_ok(req, serving ? 200 : 503);
}
