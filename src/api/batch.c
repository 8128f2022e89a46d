/*
 * api/batch.c — POST /v1/batch: up to 50 GET reads in one round trip.
 *
 * Each inner path is routed and run through the same handlers as a real
 * GET, with the outer request's role, so its body is byte for byte what the
 * GET would return. A path that is not a GET /v1/… read is that item's 400.
 */
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/body.h"
#include "cache/l1.h"
#include "util/alloc.h"

#define BATCH_READS_MAX 50

/* Whether a batched path asks for consistency=strong (read as run_one reads it). */
static bool path_is_strong(const char *path)
{
    const char *q = strchr(path, '?');
    if (!q)
        return false;
    http_req_t r;
    http_req_init(&r);
    http_req_parse_query(&r, q + 1);
    bool bad = false;
    const char *cons = http_param(&r, "consistency", &bad);
    bool strong = cons && strcmp(cons, "strong") == 0;
    http_req_clear(&r);
    return strong;
}

static void run_one(app_t *app, http_req_t *outer, const char *path, http_req_t *sub)
{
    http_req_init(sub);
    sub->role = outer->role;
    sub->key_presented = outer->key_presented;
    sub->player = outer->player;
    sub->received_ms = outer->received_ms;
    sub->inline_only = true;
    sub->off_loop = true; /* /v1/batch runs off the event loop (see route_waits) */
    sub->warm = outer->warm;
    sub->tier_first = outer->tier_first;
    memcpy(sub->request_id, outer->request_id, sizeof sub->request_id);
    memcpy(sub->client_request_id, outer->client_request_id, sizeof sub->client_request_id);
    const char *q = strchr(path, '?');
    char *p = q ? xstrndup(path, (size_t)(q - path)) : xstrdup(path);
    if (q)
        http_req_parse_query(sub, q + 1);
    bool bad_strong = false;
    const char *cons = http_param(sub, "consistency", &bad_strong);
    sub->strong = cons && strcmp(cons, "strong") == 0;
    sub->path = p;
    route_t rt;
    if (strncmp(p, "/v1/", 4) != 0) {
        http_error(sub, 400, "invalid_argument", "path", "only GET /v1/ reads can be batched");
    } else if (api_route("GET", p, &rt, sub) != 0 || rt.id == R_BATCH) {
        http_error(sub, 400, "invalid_argument", "path", "only GET /v1/ reads can be batched");
    } else if (rt.id == R_EXPORT || rt.id == R_PLAYER_EXPORT) { /* streamed, or an admin's single answer */
        http_error(sub, 400, "invalid_argument", "path", "exports cannot be batched: GET them one by one");
    } else if (rt.id == R_LIVE || rt.id == R_PLAYER_LIVE) {
        http_error(sub, 400, "invalid_argument", "path", "live streams cannot be batched: GET them one by one");
    } else if (api_authorize(&rt, sub) == 0 && api_strong_forbidden(sub) == 0) {
        api_handle(app, &rt, sub);
    }
    sub->path = NULL;
    free(p);
}

/* A run item's answer body: its bytes (in *body, unless NULL) and their length (0: none). */
static size_t item_body(const http_req_t *sub, const char **body)
{
    const char *p = NULL;
    size_t n = 0;
    if (sub->cached) {
        l1_view_t v;
        l1_view(sub->cached, &v);
        p = v.body, n = v.len;
    } else if (sub->static_body) { /* GET /v1/openapi.json */
        p = sub->static_body->body, n = sub->static_body->len;
    } else {
        p = sub->out.data, n = sub->out.len;
    }
    if (body)
        *body = p;
    return n;
}

void api_warm_top(app_t *app, const char *board, int64_t now_ms)
{
    http_req_t outer;
    http_req_init(&outer);
    outer.role = ROLE_READ;
    outer.received_ms = now_ms;
    snprintf(outer.request_id, sizeof outer.request_id, "warm");
    char path[96];
    snprintf(path, sizeof path, "/v1/leaderboards/%s/entries", board); /* ids are [a-z0-9_-] */
    http_req_t sub;
    outer.warm = true;
    run_one(app, &outer, path, &sub);
    http_req_clear(&sub);
    http_req_clear(&outer);
}

int api_read_in_place(app_t *app, const char *path, int64_t now_ms, bool tier_first, buf_t *body, bool *from_tier)
{
    http_req_t outer;
    http_req_init(&outer);
    outer.role = ROLE_WRITE;
    outer.received_ms = now_ms;
    outer.tier_first = tier_first;
    snprintf(outer.request_id, sizeof outer.request_id, "live");
    http_req_t sub;
    run_one(app, &outer, path, &sub);
    const char *p;
    size_t n = item_body(&sub, &p);
    if (n)
        buf_append(body, p, n);
    int status = sub.status;
    *from_tier = sub.tier_answered;
    http_req_clear(&sub);
    http_req_clear(&outer);
    return status;
}

int api_batch(app_t *app, const route_t *rt, http_req_t *req)
{
    (void)rt;
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const top[] = {"requests", NULL};
    json_t *arr = json_object_get(obj, "requests");
    if ((rc = body_only(req, obj, top)))
        goto out;
    if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > BATCH_READS_MAX) {
        rc = http_error(req, 400, "invalid_argument", "requests", "requests must be an array of 1 to 50 items");
        goto out;
    }
    size_t n = json_array_size(arr);
    /* API.md: one read token per item. The handler runs once, off the event loop (route_waits). */
    if (ratelimit_active(app->limits) && (rc = api_rate_limit(app, req, RL_READ, (int)n)))
        goto out;
    int strong = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(arr, i);
        json_t *pv = json_is_object(it) ? json_object_get(it, "path") : NULL;
        if (!pv || !json_is_string(pv) || json_object_size(it) != 1 ||
            strlen(json_string_value(pv)) != json_string_length(pv)) {
            rc = http_error(req, 400, "invalid_argument", "requests", "each request must be {\"path\": \"/v1/...\"}");
            goto out;
        }
        strong += path_is_strong(json_string_value(pv));
    }
    /* Strong items a key may ask for draw on the strong bucket too (the others are each a 403). */
    if (strong > 0 && req->role >= ROLE_WRITE && ratelimit_active(app->limits) &&
        (rc = api_rate_limit(app, req, RL_STRONG, strong)))
        goto out;
    /* Every item is run first and only measured; the answer is then built once, at its exact
     * size. One that would pass its cap is refused without a byte of it copied (50 reads of 1,000
     * entries with their metadata could make tens of megabytes, and a client within its limit
     * may send such batches several times a second). */
    size_t cap = app->cfg->batch_response_limit;
    http_req_t *subs = xcalloc(n, sizeof *subs);
    size_t ran = 0, total = 16;
    for (; ran < n; ran++) {
        http_req_t *sub = &subs[ran];
        run_one(app, req, json_string_value(json_object_get(json_array_get(arr, ran), "path")), sub);
        total += 32 + item_body(sub, NULL);
        if (total > cap) {
            ran++;
            rc = http_error(req, 400, "invalid_argument", "requests",
                            "the answers to this batch pass %zu bytes (http.batch_response_limit) at item %zu of "
                            "%zu: send fewer requests, or smaller pages", cap, ran, n);
            goto clear;
        }
    }
    buf_reserve(&req->out, total);
    buf_puts(&req->out, "{\"responses\":[");
    for (size_t i = 0; i < n; i++) {
        const char *body;
        size_t len = item_body(&subs[i], &body);
        buf_printf(&req->out, "%s{\"status\":%d,\"body\":", i ? "," : "", subs[i].status);
        if (len)
            buf_append(&req->out, body, len);
        else
            buf_puts(&req->out, "null");
        buf_putc(&req->out, '}');
    }
    buf_puts(&req->out, "]}");
    rc = http_ok(req, 200);
clear:
    for (size_t i = 0; i < ran; i++)
        http_req_clear(&subs[i]);
    free(subs);
out:
    json_decref(obj);
    return rc;
}
