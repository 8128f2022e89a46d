/*
 * api/router.c — maps (method, path) to a handler, in API.md's order of
 * checks: route (404), method (405 + Allow), then the caller's role
 * (401/403). Body size and content type are checked by the HTTP layer,
 * syntax and existence by the handlers.
 */
#include "api/app.h"

#include <string.h>

#include "core/ids.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "util/clock.h"

typedef struct {
    route_id_t id;
    const char *path;  /* as the OpenAPI document writes it */
    const char *allow;
    role_t get, post, patch, del; /* ROLE_NONE where the method is not allowed... */
    bool has_get, has_post, has_patch, has_del;
} route_spec_t;

#define GET_ONLY "GET, HEAD, OPTIONS"
static const route_spec_t specs[] = {
    [R_HEALTHZ] = {R_HEALTHZ, "/healthz", GET_ONLY, ROLE_NONE, 0, 0, 0, true, false, false, false},
    [R_READYZ] = {R_READYZ, "/readyz", GET_ONLY, ROLE_NONE, 0, 0, 0, true, false, false, false},
    [R_BOARDS] = {R_BOARDS, "/v1/leaderboards", "GET, HEAD, POST, OPTIONS", ROLE_READ, ROLE_ADMIN, 0, 0, true, true,
                  false, false},
    [R_BOARD] = {R_BOARD, "/v1/leaderboards/{board}", "GET, HEAD, PATCH, DELETE, OPTIONS", ROLE_READ, 0, ROLE_ADMIN,
                 ROLE_ADMIN, true, false, true, true},
    [R_ENTRIES] = {R_ENTRIES, "/v1/leaderboards/{board}/entries", GET_ONLY, ROLE_READ, 0, 0, 0, true, false, false,
                   false},
    [R_PLAYERS] = {R_PLAYERS, "/v1/leaderboards/{board}/players", GET_ONLY, ROLE_READ, 0, 0, 0, true, false, false,
                   false},
    [R_PLAYER] = {R_PLAYER, "/v1/leaderboards/{board}/players/{player}", "GET, HEAD, DELETE, OPTIONS", ROLE_READ, 0, 0,
                  ROLE_ADMIN, true, false, false, true},
    [R_AROUND] = {R_AROUND, "/v1/leaderboards/{board}/players/{player}/around", GET_ONLY, ROLE_READ, 0, 0, 0, true,
                  false, false, false},
    [R_SCORES] = {R_SCORES, "/v1/leaderboards/{board}/scores", "POST, OPTIONS", 0, ROLE_WRITE, 0, 0, false, true,
                  false, false},
    [R_SCORES_BATCH] = {R_SCORES_BATCH, "/v1/scores:batch", "POST, OPTIONS", 0, ROLE_WRITE, 0, 0, false, true, false,
                        false},
    [R_BATCH] = {R_BATCH, "/v1/batch", "POST, OPTIONS", 0, ROLE_READ, 0, 0, false, true, false, false},
    [R_STATS] = {R_STATS, "/v1/leaderboards/{board}/stats", GET_ONLY, ROLE_READ, 0, 0, 0, true, false, false, false},
    [R_WINDOWS] = {R_WINDOWS, "/v1/leaderboards/{board}/windows", GET_ONLY, ROLE_READ, 0, 0, 0, true, false, false,
                   false},
    [R_STANDINGS] = {R_STANDINGS, "/v1/players/{player}/standings", GET_ONLY, ROLE_READ, 0, 0, 0, true, false, false,
                     false},
    [R_ACTIVITY] = {R_ACTIVITY, "/v1/leaderboards/{board}/activity", GET_ONLY, ROLE_READ, 0, 0, 0, true, false, false,
                    false},
    [R_ADMIN_REFRESH] = {R_ADMIN_REFRESH, "/v1/admin/refresh", "POST, OPTIONS", 0, ROLE_ADMIN, 0, 0, false, true,
                         false, false},
    [R_ADMIN_REBUILD] = {R_ADMIN_REBUILD, "/v1/admin/rebuild-cache", "POST, OPTIONS", 0, ROLE_ADMIN, 0, 0, false, true,
                         false, false},
    [R_METRICS] = {R_METRICS, "/metrics", GET_ONLY, ROLE_NONE, 0, 0, 0, true, false, false, false},
    [R_OPENAPI] = {R_OPENAPI, "/v1/openapi.json", GET_ONLY, ROLE_NONE, 0, 0, 0, true, false, false, false},
    [R_DASHBOARD] = {R_DASHBOARD, "/dashboard/", GET_ONLY, ROLE_NONE, 0, 0, 0, true, false, false, false},
    [R_DASHBOARD_ROOT] = {R_DASHBOARD_ROOT, "/dashboard", GET_ONLY, ROLE_NONE, 0, 0, 0, true, false, false, false},
    [R_DASHBOARD_FILE] = {R_DASHBOARD_FILE, "/dashboard/{file}", GET_ONLY, ROLE_NONE, 0, 0, 0, true, false, false,
                          false},
    [R_EXPORT] = {R_EXPORT, "/v1/leaderboards/{board}/export", GET_ONLY, ROLE_ADMIN, 0, 0, 0, true, false, false,
                  false},
    [R_PLAYER_EXPORT] = {R_PLAYER_EXPORT, "/v1/players/{player}/export", GET_ONLY, ROLE_ADMIN, 0, 0, 0, true, false,
                         false, false},
    [R_IMPORT] = {R_IMPORT, "/v1/leaderboards/{board}/import", "POST, OPTIONS", 0, ROLE_ADMIN, 0, 0, false, true, false,
                  false},
    [R_ADMIN_VERIFY_TIER] = {R_ADMIN_VERIFY_TIER, "/v1/admin/verify-tier", "POST, OPTIONS", 0, ROLE_ADMIN, 0, 0, false,
                             true, false, false},
    [R_RANK_OF_SCORE] = {R_RANK_OF_SCORE, "/v1/leaderboards/{board}/rank", GET_ONLY, ROLE_READ, 0, 0, 0, true, false,
                         false, false},
    [R_JOIN] = {R_JOIN, "/v1/leaderboards/{board}/players/{player}/join", "POST, OPTIONS", 0, ROLE_WRITE, 0, 0, false,
                true, false, false},
    [R_ATTEMPTS] = {R_ATTEMPTS, "/v1/leaderboards/{board}/players/{player}/attempts", "POST, OPTIONS", 0, ROLE_ADMIN, 0,
                    0, false, true, false, false},
    [R_COHORT] = {R_COHORT, "/v1/leaderboards/{board}/players/{player}/cohort", GET_ONLY, ROLE_READ, 0, 0, 0, true, false,
                  false, false},
    [R_COHORT_ENTRIES] = {R_COHORT_ENTRIES, "/v1/leaderboards/{board}/cohorts/{cohort}/entries", GET_ONLY, ROLE_READ, 0,
                          0, 0, true, false, false, false},
    [R_EVENT] = {R_EVENT, "/v1/events/{id}", GET_ONLY, ROLE_ADMIN, 0, 0, 0, true, false, false, false},
    [R_PLAYER_TOKENS] = {R_PLAYER_TOKENS, "/v1/players/{player}/tokens", "POST, DELETE, OPTIONS", 0, ROLE_WRITE, 0,
                         ROLE_ADMIN, false, true, false, true},
    [R_HIDE] = {R_HIDE, "/v1/leaderboards/{board}/players/{player}/hide", "POST, DELETE, OPTIONS", 0, ROLE_ADMIN, 0,
                ROLE_ADMIN, false, true, false, true},
    [R_HIDDEN] = {R_HIDDEN, "/v1/leaderboards/{board}/hidden", GET_ONLY, ROLE_ADMIN, 0, 0, 0, true, false, false,
                  false},
    [R_FLAGGED] = {R_FLAGGED, "/v1/leaderboards/{board}/flagged", GET_ONLY, ROLE_ADMIN, 0, 0, 0, true, false, false,
                   false},
    [R_LIVE] = {R_LIVE, "/v1/leaderboards/{board}/live", GET_ONLY, ROLE_READ, 0, 0, 0, true, false, false, false},
    [R_PLAYER_LIVE] = {R_PLAYER_LIVE, "/v1/leaderboards/{board}/players/{player}/live", GET_ONLY, ROLE_READ, 0, 0, 0,
                       true, false, false, false},
};
_Static_assert(sizeof specs / sizeof *specs == R_COUNT, "a route without its spec");

static const char *const route_names[R_COUNT] = {
    [R_NONE] = "unmatched", [R_HEALTHZ] = "healthz", [R_READYZ] = "readyz", [R_BOARDS] = "boards",
    [R_BOARD] = "board", [R_ENTRIES] = "entries", [R_PLAYERS] = "players", [R_PLAYER] = "player",
    [R_AROUND] = "around", [R_SCORES] = "scores", [R_SCORES_BATCH] = "scores_batch", [R_BATCH] = "batch",
    [R_STATS] = "stats", [R_WINDOWS] = "windows", [R_STANDINGS] = "standings", [R_ACTIVITY] = "activity", [R_ADMIN_REFRESH] = "admin_refresh",
    [R_ADMIN_REBUILD] = "admin_rebuild", [R_METRICS] = "metrics", [R_OPENAPI] = "openapi",
    [R_DASHBOARD] = "dashboard", [R_DASHBOARD_ROOT] = "dashboard_root", [R_DASHBOARD_FILE] = "dashboard_file",
    [R_EXPORT] = "export", [R_PLAYER_EXPORT] = "player_export", [R_IMPORT] = "import", [R_ADMIN_VERIFY_TIER] = "admin_verify_tier", [R_RANK_OF_SCORE] = "rank_of_score",
    [R_JOIN] = "join", [R_ATTEMPTS] = "attempts", [R_COHORT] = "cohort", [R_COHORT_ENTRIES] = "cohort_entries",
    [R_EVENT] = "event", [R_PLAYER_TOKENS] = "player_tokens", [R_HIDE] = "hide", [R_HIDDEN] = "hidden",
    [R_FLAGGED] = "flagged", [R_LIVE] = "live",
    [R_PLAYER_LIVE] = "player_live",
};

const char *api_route_name(route_id_t id)
{
    return id < R_COUNT && route_names[id] ? route_names[id] : "none";
}

const char *api_route_path(route_id_t id)
{
    return id > R_NONE && id < R_COUNT ? specs[id].path : NULL;
}

const char *api_route_methods(route_id_t id)
{
    if (id <= R_NONE || id >= R_COUNT)
        return NULL;
    const route_spec_t *s = &specs[id];
    static const char *const names[16] = {
        NULL, "GET", "POST", "GET, POST", "PATCH", "GET, PATCH", "POST, PATCH", "GET, POST, PATCH", "DELETE",
        "GET, DELETE", "POST, DELETE", "GET, POST, DELETE", "PATCH, DELETE", "GET, PATCH, DELETE",
        "POST, PATCH, DELETE", "GET, POST, PATCH, DELETE"};
    return names[s->has_get | s->has_post << 1 | s->has_patch << 2 | s->has_del << 3];
}

/* Split "/a/b/c" into at most `max` raw segments; false on an empty segment or too many. */
static int split(const char *path, const char **seg, size_t *len, int max)
{
    if (*path != '/')
        return -1;
    int n = 0;
    const char *p = path + 1;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t l = slash ? (size_t)(slash - p) : strlen(p);
        if (l == 0 || n == max)
            return -1;
        seg[n] = p;
        len[n] = l;
        n++;
        if (!slash)
            break;
        p = slash + 1;
        if (!*p)
            return -1; /* trailing slash */
    }
    return n;
}

static bool seg_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* Decode a segment into `out` (room ROUTE_SEGMENT_MAX); bad when undecodable or too long. */
static void take(const char *s, size_t n, char *out, size_t *out_len, bool *bad)
{
    char decoded[256]; /* a 64-byte id fully percent-encoded is 192 bytes */
    size_t len = 0;
    *bad = n >= sizeof decoded || !id_percent_decode(s, n, decoded, &len) || len >= ROUTE_SEGMENT_MAX;
    if (*bad)
        len = 0;
    memcpy(out, decoded, len);
    out[len] = '\0';
    *out_len = len;
}

static route_id_t match(const char *path, route_t *rt)
{
    static const char dash[] = "/dashboard/";
    if (strncmp(path, dash, sizeof dash - 1) == 0) { /* its own page ends in '/', which split() refuses */
        const char *file = path + sizeof dash - 1;
        if (!*file)
            return R_DASHBOARD;
        if (strchr(file, '/'))
            return R_NONE;
        take(file, strlen(file), rt->board, &rt->board_len, &rt->board_bad);
        bool nul = strlen(rt->board) != rt->board_len; /* "%00" */
        return rt->board_bad || nul ? R_NONE : R_DASHBOARD_FILE;
    }
    const char *seg[6];
    size_t len[6];
    int n = split(path, seg, len, 6);
    if (n <= 0)
        return R_NONE;
    if (n == 1 && seg_is(seg[0], len[0], "healthz"))
        return R_HEALTHZ;
    if (n == 1 && seg_is(seg[0], len[0], "readyz"))
        return R_READYZ;
    if (n == 1 && seg_is(seg[0], len[0], "metrics"))
        return R_METRICS;
    if (n == 1 && seg_is(seg[0], len[0], "dashboard"))
        return R_DASHBOARD_ROOT;
    if (!seg_is(seg[0], len[0], "v1") || n < 2)
        return R_NONE;
    if (n == 2 && seg_is(seg[1], len[1], "scores:batch"))
        return R_SCORES_BATCH;
    if (n == 2 && seg_is(seg[1], len[1], "batch"))
        return R_BATCH;
    if (n == 2 && seg_is(seg[1], len[1], "openapi.json"))
        return R_OPENAPI;
    if (n == 3 && seg_is(seg[1], len[1], "admin") && seg_is(seg[2], len[2], "refresh"))
        return R_ADMIN_REFRESH;
    if (n == 3 && seg_is(seg[1], len[1], "admin") && seg_is(seg[2], len[2], "rebuild-cache"))
        return R_ADMIN_REBUILD;
    if (n == 3 && seg_is(seg[1], len[1], "admin") && seg_is(seg[2], len[2], "verify-tier"))
        return R_ADMIN_VERIFY_TIER;
    if (n == 4 && seg_is(seg[1], len[1], "players") && seg_is(seg[3], len[3], "standings")) {
        take(seg[2], len[2], rt->player, &rt->player_len, &rt->player_bad);
        return R_STANDINGS;
    }
    if (n == 3 && seg_is(seg[1], len[1], "events")) {
        take(seg[2], len[2], rt->player, &rt->player_len, &rt->player_bad);
        return R_EVENT;
    }
    if (n == 4 && seg_is(seg[1], len[1], "players") && seg_is(seg[3], len[3], "export")) {
        take(seg[2], len[2], rt->player, &rt->player_len, &rt->player_bad);
        return R_PLAYER_EXPORT;
    }
    if (n == 4 && seg_is(seg[1], len[1], "players") && seg_is(seg[3], len[3], "tokens")) {
        take(seg[2], len[2], rt->player, &rt->player_len, &rt->player_bad);
        return R_PLAYER_TOKENS;
    }
    if (!seg_is(seg[1], len[1], "leaderboards"))
        return R_NONE;
    if (n == 2)
        return R_BOARDS;
    take(seg[2], len[2], rt->board, &rt->board_len, &rt->board_bad);
    if (n == 3)
        return R_BOARD;
    if (n == 4 && seg_is(seg[3], len[3], "entries"))
        return R_ENTRIES;
    if (n == 4 && seg_is(seg[3], len[3], "scores"))
        return R_SCORES;
    if (n == 4 && seg_is(seg[3], len[3], "stats"))
        return R_STATS;
    if (n == 4 && seg_is(seg[3], len[3], "rank"))
        return R_RANK_OF_SCORE;
    if (n == 4 && seg_is(seg[3], len[3], "windows"))
        return R_WINDOWS;
    if (n == 4 && seg_is(seg[3], len[3], "activity"))
        return R_ACTIVITY;
    if (n == 4 && seg_is(seg[3], len[3], "export"))
        return R_EXPORT;
    if (n == 4 && seg_is(seg[3], len[3], "import"))
        return R_IMPORT;
    if (n == 4 && seg_is(seg[3], len[3], "hidden"))
        return R_HIDDEN;
    if (n == 4 && seg_is(seg[3], len[3], "flagged"))
        return R_FLAGGED;
    if (n == 4 && seg_is(seg[3], len[3], "live"))
        return R_LIVE;
    if (n == 6 && seg_is(seg[3], len[3], "cohorts") && seg_is(seg[5], len[5], "entries")) {
        take(seg[4], len[4], rt->player, &rt->player_len, &rt->player_bad);
        return R_COHORT_ENTRIES;
    }
    if (!seg_is(seg[3], len[3], "players"))
        return R_NONE;
    if (n == 4)
        return R_PLAYERS;
    take(seg[4], len[4], rt->player, &rt->player_len, &rt->player_bad);
    if (n == 5)
        return R_PLAYER;
    if (n == 6 && seg_is(seg[5], len[5], "around"))
        return R_AROUND;
    if (n == 6 && seg_is(seg[5], len[5], "join"))
        return R_JOIN;
    if (n == 6 && seg_is(seg[5], len[5], "attempts"))
        return R_ATTEMPTS;
    if (n == 6 && seg_is(seg[5], len[5], "cohort"))
        return R_COHORT;
    if (n == 6 && seg_is(seg[5], len[5], "hide"))
        return R_HIDE;
    if (n == 6 && seg_is(seg[5], len[5], "live"))
        return R_PLAYER_LIVE;
    return R_NONE;
}

int api_route(const char *method, const char *path, route_t *rt, http_req_t *req)
{
    memset(rt, 0, sizeof *rt);
    rt->id = match(path, rt);
    if (rt->id == R_NONE)
        return http_error(req, 404, "not_found", NULL, "no such resource");
    const route_spec_t *s = &specs[rt->id];
    req->allow = s->allow;
    rt->batch_body = rt->id == R_SCORES_BATCH || rt->id == R_BATCH;
    rt->stream_body = rt->id == R_IMPORT;
    if (strcmp(method, "OPTIONS") == 0) {
        rt->role = ROLE_NONE;
        return 0;
    }
    if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) && s->has_get)
        rt->role = s->get;
    else if (strcmp(method, "POST") == 0 && s->has_post)
        rt->role = s->post;
    else if (strcmp(method, "PATCH") == 0 && s->has_patch)
        rt->role = s->patch;
    else if (strcmp(method, "DELETE") == 0 && s->has_del)
        rt->role = s->del;
    else
        return http_error(req, 405, "method_not_allowed", NULL, "method %s is not allowed here",
                          strlen(method) <= 16 ? method : "given");
    return 0;
}

static const char *kind_name(rl_kind_t kind)
{
    return kind == RL_READ ? "reads" : kind == RL_WRITE ? "writes" : "strong reads";
}

int api_strong_forbidden(http_req_t *req)
{
    if (!req->strong || req->role >= ROLE_WRITE)
        return 0;
    return http_error(req, 403, "permission_denied", "consistency",
                      "consistency=strong reads the primary and is for write and admin keys only; read without it");
}

int api_rate_limit(app_t *app, http_req_t *req, rl_kind_t kind, int cost)
{
    ratelimit_take(app->limits, req->client, kind, cost, clock_bucket_ms(), &req->ratelimit);
    if (!req->ratelimit.refused)
        return 0;
    /* Over the burst no wait is enough: no Retry-After that could never be honoured (API.md). */
    req->retry_after = req->ratelimit.over_burst ? 0 : req->ratelimit.retry_after_s;
    if (req->ratelimit.over_burst)
        return http_error(req, 429, "rate_limited", NULL,
                          "%d items are more than this client's burst of %d %s: send batches of at most %d", cost,
                          req->ratelimit.limit, kind_name(kind), req->ratelimit.limit);
    return http_error(req, 429, "rate_limited", NULL, "over the limit of %s for this client; retry in %d s",
                      kind_name(kind), req->retry_after);
}

int api_rate_limit_peek(app_t *app, http_req_t *req, rl_kind_t kind)
{
    ratelimit_peek(app->limits, req->client, kind, clock_bucket_ms(), &req->ratelimit);
    if (!req->ratelimit.refused) {
        memset(&req->ratelimit, 0, sizeof req->ratelimit); /* not charged: the items are, later */
        return 0;
    }
    req->retry_after = req->ratelimit.retry_after_s;
    return http_error(req, 429, "rate_limited", NULL, "over the limit of %s for this client; retry in %d s",
                      kind_name(kind), req->retry_after);
}

#define IDEM_KEYS_DAY_S 86400.0

static void idem_keys_rate(int n, double *per_s, int *burst)
{
    *per_s = n > 0 ? (double)n / 2.0 / IDEM_KEYS_DAY_S : 0;
    *burst = n > 0 ? (n + 1) / 2 : 0;
}

ratelimit_t *api_idem_keys_new(int n)
{
    double per_s;
    int burst;
    idem_keys_rate(n, &per_s, &burst);
    return ratelimit_new(per_s, 0, 0, burst, 10000);
}

void api_idem_keys_configure(ratelimit_t *rl, int n)
{
    double per_s;
    int burst;
    idem_keys_rate(n, &per_s, &burst);
    ratelimit_configure(rl, per_s, 0, 0, burst);
}

int api_idem_keys_take(app_t *app, http_req_t *req, int keys)
{
    if (keys == 0 || !ratelimit_active(app->idem_keys))
        return 0;
    rl_verdict_t v;
    ratelimit_take(app->idem_keys, req->client, RL_READ, keys, clock_bucket_ms(), &v);
    if (!v.refused)
        return 0;
    int n = atomic_load(&app->live)->limit_idempotency_keys_per_client;
    req->retry_after = v.over_burst ? 0 : v.retry_after_s;
    if (v.over_burst)
        return http_error(req, 429, "rate_limited", "Idempotency-Key",
                          "%d idempotency keys are more than this key may make at once (half of "
                          "limits.idempotency_keys_per_client, %d): send fewer keyed items per batch", keys, n);
    return http_error(req, 429, "rate_limited", "Idempotency-Key",
                      "this key has made limits.idempotency_keys_per_client (%d) idempotency keys within 24 hours on "
                      "this instance; retry in %d s, or submit without one", n, req->retry_after);
}

/* Draw one refusal from the address's bucket of refusals (wrong keys, strong reads without the
 * privilege): 0 while it has some, else the 429 written into req, held back past a few strikes. */
static int refusal_take(app_t *app, http_req_t *req, const char *what)
{
    char who[sizeof req->limit_addr + 1];
    snprintf(who, sizeof who, "a%s", req->limit_addr);
    rl_verdict_t v;
    ratelimit_take(app->auth_failures, who, RL_READ, 1, clock_bucket_ms(), &v);
    if (!v.refused)
        return 0;
    metrics_add(app->metrics, METRIC_AUTH_THROTTLED, 1);
    if (v.strikes == 1) /* once per run of refusals; never the key */
        log_req_warn(req, "%s from %s are over their limit (limits.failed_auths_per_s): refused for %d s", what,
                     req->addr, v.retry_after_s);
    req->ratelimit = v; /* its RateLimit-* headers, and refusals held back past a few strikes */
    req->retry_after = v.retry_after_s;
    return http_error(req, 429, "rate_limited", NULL, "too many %s from this address; retry in %d s", what,
                      req->retry_after);
}

int api_auth_failed(app_t *app, http_req_t *req)
{
    metrics_add(app->metrics, METRIC_AUTH_FAILED, 1);
    return refusal_take(app, req, "failed authentications");
}

int api_strong_refused(app_t *app, http_req_t *req)
{
    if (!req->strong || req->role >= ROLE_WRITE)
        return 0;
    metrics_add(app->metrics, METRIC_STRONG_FORBIDDEN, 1);
    int throttled = refusal_take(app, req, "strong reads without a write or admin key");
    return throttled ? throttled : api_strong_forbidden(req);
}

int api_authorize(const route_t *rt, http_req_t *req)
{
    if (req->role >= rt->role)
        return 0;
    if (req->player)
        return api_player_token_admit(rt, req);
    if (!req->key_presented)
        return http_error(req, 401, "unauthenticated", NULL, "an API key is required");
    return http_error(req, 403, "permission_denied", NULL, "this key may not do that");
}

/* Routes whose handlers wait on PostgreSQL or Redis with no asynchronous path of their own. */
static bool route_waits(const route_t *rt, const http_req_t *req)
{
    switch (rt->id) {
    case R_BOARDS:
    case R_BOARD:
    case R_BATCH:
    case R_STATS:
    case R_WINDOWS:
    case R_STANDINGS:
    case R_ACTIVITY:
    case R_EXPORT:
    case R_PLAYER_EXPORT:
    case R_ATTEMPTS:
    case R_COHORT:
    case R_COHORT_ENTRIES:
    case R_EVENT:
    case R_HIDE:
    case R_HIDDEN:
    case R_FLAGGED:
    case R_LIVE:
    case R_PLAYER_LIVE: return true;
    /* A large batch is parsed where it is run: a 2 MiB body takes milliseconds to parse, and
     * on the event loop it would be parsed again off it when its board is not cached. */
    case R_SCORES_BATCH: return req->body_len >= 16384;
    case R_PLAYER: return strcmp(req->method, "DELETE") == 0;
    default: return false; /* ranked reads and writes: only a board missing from the cache waits */
    }
}

int api_handle(app_t *app, const route_t *rt, http_req_t *req)
{
    if (route_waits(rt, req) && api_on_loop(app, req))
        return api_off_loop(app, rt, req);
    switch (rt->id) {
    case R_HEALTHZ: return api_health(app, rt, req);
    case R_READYZ: return api_ready(app, rt, req);
    case R_BOARDS: return api_boards(app, rt, req);
    case R_BOARD: return api_board(app, rt, req);
    case R_ENTRIES: return api_entries(app, rt, req);
    case R_PLAYERS: return api_players(app, rt, req);
    case R_PLAYER: return api_player(app, rt, req);
    case R_AROUND: return api_around(app, rt, req);
    case R_SCORES: return api_scores(app, rt, req);
    case R_SCORES_BATCH: return api_scores_batch(app, rt, req);
    case R_BATCH: return api_batch(app, rt, req);
    case R_STATS: return api_stats(app, rt, req);
    case R_WINDOWS: return api_windows(app, rt, req);
    case R_STANDINGS: return api_standings(app, rt, req);
    case R_ACTIVITY: return api_activity(app, rt, req);
    case R_ADMIN_REFRESH: return api_admin_refresh(app, rt, req);
    case R_ADMIN_REBUILD: return api_admin_rebuild(app, rt, req);
    case R_ADMIN_VERIFY_TIER: return api_admin_verify_tier(app, rt, req);
    case R_RANK_OF_SCORE: return api_rank_of_score(app, rt, req);
    case R_JOIN: return api_join(app, rt, req);
    case R_ATTEMPTS: return api_attempts(app, rt, req);
    case R_COHORT: return api_cohort(app, rt, req);
    case R_COHORT_ENTRIES: return api_cohort_entries(app, rt, req);
    case R_EVENT: return api_event(app, rt, req);
    case R_PLAYER_TOKENS: return api_player_tokens(app, rt, req);
    case R_HIDE: return api_player_hide(app, rt, req);
    case R_HIDDEN: return api_hidden(app, rt, req);
    case R_FLAGGED: return api_flagged(app, rt, req);
    case R_LIVE: return api_live(app, rt, req);
    case R_PLAYER_LIVE: return api_player_live(app, rt, req);
    case R_METRICS: return api_metrics(app, rt, req);
    case R_OPENAPI: return api_openapi(app, rt, req);
    case R_DASHBOARD:
    case R_DASHBOARD_FILE: return api_dashboard(app, rt, req);
    case R_DASHBOARD_ROOT: return api_dashboard_root(app, rt, req);
    case R_EXPORT: return api_export(app, rt, req);
    case R_PLAYER_EXPORT: return api_player_export(app, rt, req);
    case R_IMPORT: return api_import(app, rt, req);
    case R_NONE:
    case R_COUNT: break;
    }
    return http_error(req, 404, "not_found", NULL, "no such resource");
}

/* Which bucket a call draws on at its headers, or -1 for none (probes, metrics, the documents,
 * and the batches, which take one token per item once their body is read). */
static int limit_kind(const route_t *rt, const char *method)
{
    switch (rt->id) {
    case R_HEALTHZ:
    case R_READYZ:
    case R_METRICS:
    case R_OPENAPI:
    case R_DASHBOARD:
    case R_DASHBOARD_FILE:
    case R_SCORES_BATCH:
    case R_BATCH:
        return -1;
    default:
        return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ? RL_READ : RL_WRITE;
    }
}

/* Who the rate limits count: the key when one was presented, else the address. */
static void client_of(http_req_t *req)
{
    if (!req->client[0])
        snprintf(req->client, sizeof req->client, "a%s", req->limit_addr);
}

static int dispatch_route(void *arg, const char *method, const char *path, http_route_t *rt, http_req_t *req)
{
    app_t *app = arg;
    int status = api_route(method, path, rt, req);
    if (status == 0 && rt->id == R_METRICS && app->cfg->metrics_auth == METRICS_AUTH_ADMIN &&
        strcmp(method, "OPTIONS") != 0)
        rt->role = ROLE_ADMIN;
    return status;
}

static int dispatch_admit(void *arg, const http_route_t *rt, const char *method, http_req_t *req)
{
    app_t *app = arg;
    bool batch = rt->id == R_BATCH || rt->id == R_SCORES_BATCH;
    int kind = limit_kind(rt, method);
    char why[256] = "invalid API key";
    /* No key: perhaps a player token (its refusals are a wrong key's, below, with its reason). */
    if ((int)req->role < 0 && req->bearer && api_player_token(app, req, why, sizeof why) > 1)
        return req->status;
    if ((int)req->role < 0) {
        /* Guesses draw on their address's read bucket: a wrong key is no way around the limits
         * (probes and /metrics stay unlimited, whatever key they carry). */
        if (ratelimit_active(app->limits) && (kind >= 0 || batch)) {
            client_of(req);
            if (api_rate_limit(app, req, RL_READ, 1) != 0)
                return req->status;
        }
        if (api_auth_failed(app, req) == 0)
            http_error(req, 401, "unauthenticated", NULL, "%s", why);
        return req->status;
    }
    if (api_authorize(rt, req) != 0)
        return req->status;
    /* A player token's writes draw on its player's bucket too (a batch: per item, once read). */
    if (req->player && kind == RL_WRITE && api_player_write_limit(app, req, 1) != 0)
        return req->status;
    if (!ratelimit_active(app->limits))
        return 0;
    client_of(req);
    if (kind >= 0)
        return api_rate_limit(app, req, (rl_kind_t)kind, 1);
    /* A batch that could not pay one item is refused before its body is read and parsed. */
    if (batch)
        return api_rate_limit_peek(app, req, rt->id == R_BATCH ? RL_READ : RL_WRITE);
    return 0;
}

static int dispatch_strong_refused(void *arg, http_req_t *req)
{
    return api_strong_refused(arg, req);
}

static int dispatch_strong_limit(void *arg, http_req_t *req)
{
    app_t *app = arg;
    if (!ratelimit_active(app->limits))
        return 0;
    client_of(req);
    return api_rate_limit(app, req, RL_STRONG, 1);
}

static int dispatch_stream_start(void *arg, const http_route_t *rt, http_req_t *req)
{
    return api_import_start(arg, rt, req);
}

static int dispatch_handle(void *arg, const http_route_t *rt, http_req_t *req)
{
    return api_handle(arg, rt, req);
}

http_dispatch_t api_dispatch(app_t *app)
{
    return (http_dispatch_t){.app = app,
                             .route = dispatch_route,
                             .admit = dispatch_admit,
                             .strong_refused = dispatch_strong_refused,
                             .strong_limit = dispatch_strong_limit,
                             .stream_start = dispatch_stream_start,
                             .handle = dispatch_handle};
}
