/*
 * api/health.c — liveness and readiness.
 *
 * Readiness is what the router last learnt of each PostgreSQL node (its health threads probe
 * them) and what the prober last learnt of Redis (a PING a second): nothing here waits on
 * anything, so the probe answers on the event loop. 200 exactly while reads can be served:
 * Redis answers, or some PostgreSQL node does.
 */
#include <inttypes.h>
#include <string.h>

#include "api/app.h"
#include "store/pg_router.h"
#include "worker/jwks_fetcher.h"
#include "worker/prober.h"

int api_health(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)app;
    (void)rt;
    buf_puts(&req->out, "{\"status\":\"ok\"}");
    return http_ok(req, 200);
}

/* A node as a dependency: a lagging replica still answers, behind. */
static const char *dependency_state(pg_node_state_t s)
{
    return s == NODE_OK ? "ok" : s == NODE_LAGGING ? "degraded" : "down";
}

int api_ready(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    pg_node_status_t nodes[33];
    size_t n = pg_router_status(app->router, nodes, sizeof nodes / sizeof *nodes);
    probe_state_t probed;
    prober_state(app->prober, &probed);
    const char *redis = probed.redis;
    bool redis_up = strcmp(redis, "ok") == 0;
    bool pg_reads = false, all = redis_up || app->redis == NULL;
    for (size_t i = 0; i < n; i++) {
        pg_reads = pg_reads || nodes[i].state == NODE_OK || nodes[i].state == NODE_LAGGING;
        all = all && nodes[i].state == NODE_OK;
    }
    bool serving = pg_reads || redis_up;
    buf_t *o = &req->out;
    /* The issuers' keys (auth.issuers): a fetch failing degrades player tokens only, never the
     * instance, whose keys and reads go on. */
    const char *jwks = jwks_state(app->jwks);
    all = all && strcmp(jwks, "degraded") != 0;
    const char *status = all ? "ok" : serving ? "degraded" : "down";
    if (!serving)
        req->retry_after = 1;
    /* API.md: the topology, pool sizes and lag are for the admin key; a load balancer needs the
     * status code alone. */
    if (req->role < ROLE_ADMIN) {
        buf_printf(o, "{\"status\":\"%s\"}", status);
        return http_ok(req, serving ? 200 : 503);
    }
    buf_printf(o, "{\"status\":\"%s\",\"dependencies\":{", status);
    for (size_t i = 0; i < n; i++)
        buf_printf(o, "\"%s\":\"%s\",", nodes[i].name, dependency_state(nodes[i].state));
    if (app->jwks != NULL)
        buf_printf(o, "\"issuer_keys\":\"%s\",", jwks);
    buf_printf(o, "\"redis\":\"%s\"},\"nodes\":[", redis);
    for (size_t i = 0; i < n; i++) {
        const pg_node_status_t *s = &nodes[i];
        buf_printf(o,
                   "%s{\"name\":\"%s\",\"role\":\"%s\",\"state\":\"%s\",\"lag_ms\":%" PRId64 ",\"lag_bytes\":%" PRId64
                   ",\"pool_in_use\":%d,\"pool_size\":%d,\"breaker\":\"%s\"}",
                   i ? "," : "", s->name, s->role == PG_NODE_PRIMARY ? "primary" : "replica",
                   s->state == NODE_UNKNOWN ? "down" : pg_node_state_name(s->state), s->lag_ms, s->lag_bytes,
                   s->pool.in_use, s->pool.size, pg_breaker_state_name(s->breaker));
    }
    buf_puts(o, "]");
    if (app->jwks != NULL) {
        buf_puts(o, ",\"issuers\":");
        jwks_render_ready(app->jwks, o);
    }
    buf_puts(o, "}");
    return http_ok(req, serving ? 200 : 503);
}
