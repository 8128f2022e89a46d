/* api/player_auth.c — player tokens as credentials; see player_auth.h. */
#include "api/player_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/app.h"
#include "core/player_token.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/sha256.h"

typedef struct {
    const char *name;
    token_source_fn fn;
    void *ctx;
} source_t;

struct player_auth {
    app_t *app;
    source_t sources[PLAYER_AUTH_SOURCES_MAX];
    size_t n_sources;   /* written before serving only */
    token_cache_t *verified;
    revocations_t *revocations;
};

/* rankd's own tokens, with the secrets of the running configuration (a reload may change them;
 * a replaced configuration lives on a minute, longer than this call). */
static token_verdict_t minted_source(void *ctx, const char *token, size_t len, int64_t now_ms, player_claims_t *out,
                                     char *why, size_t why_len)
{
    app_t *app = ctx;
    const rankd_config_t *live = atomic_load(&app->live);
    player_token_keys_t keys = {live->player_token_secret, live->player_token_secret_previous};
    if (!keys.current && !keys.previous)
        return TOKEN_NOT_MINE; /* this instance mints and takes none */
    return player_token_verify(&keys, token, len, now_ms, out, why, why_len);
}

player_auth_t *player_auth_new(app_t *app)
{
    player_auth_t *pa = xcalloc(1, sizeof *pa);
    pa->app = app;
    pa->verified = token_cache_new(PLAYER_AUTH_CACHE_SLOTS);
    pa->revocations = revocations_new();
    player_auth_add_source(pa, "minted", minted_source, app);
    return pa;
}

void player_auth_free(player_auth_t *pa)
{
    if (!pa)
        return;
    token_cache_free(pa->verified);
    revocations_free(pa->revocations);
    free(pa);
}

bool player_auth_add_source(player_auth_t *pa, const char *name, token_source_fn fn, void *ctx)
{
    if (pa->n_sources == PLAYER_AUTH_SOURCES_MAX)
        return false;
    pa->sources[pa->n_sources++] = (source_t){name, fn, ctx};
    return true;
}

void player_auth_forget_verified(player_auth_t *pa)
{
    token_cache_clear(pa->verified);
}

revocations_t *player_auth_revocations(player_auth_t *pa)
{
    return pa->revocations;
}

/* A refused token: its reason for the 401 (never the token). */
static int token_refused(app_t *app, char *why, size_t why_len, const char *reason)
{
    metrics_add(app->metrics, METRIC_PLAYER_TOKENS_REFUSED, 1);
    snprintf(why, why_len, "%s", reason);
    return 1;
}

int api_player_token(app_t *app, http_req_t *req, char *out_why, size_t out_why_len)
{
    player_auth_t *pa = app->player_auth;
    size_t len = req->bearer ? strlen(req->bearer) : 0;
    if (!pa || len == 0 || len > PLAYER_TOKEN_TEXT_MAX)
        return token_refused(app, out_why, out_why_len, "invalid API key");
    int64_t now = clock_wall_ms();
    unsigned char digest[SHA256_BYTES];
    sha256(req->bearer, len, digest);
    player_claims_t claims;
    char why[200] = "";
    token_verdict_t v = TOKEN_NOT_MINE;
    if (token_cache_get(pa->verified, digest, now, &claims)) {
        v = TOKEN_VALID;
    } else {
        for (size_t i = 0; i < pa->n_sources && v == TOKEN_NOT_MINE; i++)
            v = pa->sources[i].fn(pa->sources[i].ctx, req->bearer, len, now, &claims, why, sizeof why);
        if (v == TOKEN_VALID)
            token_cache_put(pa->verified, digest, &claims);
    }
    OPENSSL_cleanse(digest, sizeof digest);
    if (v == TOKEN_NOT_MINE)
        return token_refused(app, out_why, out_why_len, "invalid API key");
    if (v == TOKEN_INVALID) {
        char msg[256];
        snprintf(msg, sizeof msg, "invalid player token: %s", why);
        return token_refused(app, out_why, out_why_len, msg);
    }
    if (!revocations_loaded(pa->revocations)) { /* cannot tell a revoked token yet: not a 401 */
        req->retry_after = 1;
        return http_error(req, 503, "unavailable", NULL,
                          "player tokens are checked against revocations, not loaded yet; retry in 1 s");
    }
    int64_t revoked = revocations_before(pa->revocations, claims.player);
    if (revoked > 0 && claims.iat_ms < revoked)
        return token_refused(app, out_why, out_why_len,
                             "invalid player token: the player's tokens were revoked after it was issued");
    player_claims_t *kept = arena_alloc(&req->arena, sizeof *kept);
    *kept = claims;
    req->player = kept;
    req->role = ROLE_READ;
    req->key_presented = true;
    metrics_add(app->metrics, METRIC_PLAYER_TOKENS_ACCEPTED, 1);
    /* Its limits count the player (a NAT of players is not one bucket), never the token's text. */
    snprintf(req->client, sizeof req->client, "p%s", claims.player);
    return 0;
}

int api_player_token_admit(const route_t *rt, http_req_t *req)
{
    const player_claims_t *c = req->player;
    bool get = strcmp(req->method, "GET") == 0;
    bool post = strcmp(req->method, "POST") == 0;
    switch (rt->id) {
    case R_SCORES:
    case R_SCORES_BATCH:
        if (post)
            return 0; /* each submission's player and board are checked by its handler */
        break;
    case R_JOIN:
        if (!post)
            break;
        if (rt->player_bad || strlen(rt->player) != rt->player_len || strcmp(rt->player, c->player) != 0)
            return http_error(req, 403, "permission_denied", NULL,
                              "a player token joins tournaments only as its own player");
        return 0;
    case R_PLAYER_EXPORT:
        if (!get)
            break;
        if (rt->player_bad || strlen(rt->player) != rt->player_len || strcmp(rt->player, c->player) != 0)
            return http_error(req, 403, "permission_denied", NULL,
                              "a player token exports only its own player's data");
        return 0;
    default:
        break;
    }
    return http_error(req, 403, "permission_denied", NULL,
                      "a player token may read, submit its own player's scores, join tournaments as its player "
                      "and export its own data; this needs a %s key",
                      rt->role >= ROLE_ADMIN ? "admin" : "write");
}

int api_player_write_limit(app_t *app, http_req_t *req, int cost)
{
    if (!req->player || !ratelimit_active(app->player_writes))
        return 0;
    req->player_charged = true;
    rl_verdict_t v;
    char who[PLAYER_ID_MAX + 2];
    snprintf(who, sizeof who, "p%s", req->player->player);
    ratelimit_take(app->player_writes, who, RL_WRITE, cost, clock_bucket_ms(), &v);
    if (!v.refused)
        return 0;
    req->ratelimit = v;
    req->retry_after = v.over_burst ? 0 : v.retry_after_s;
    if (v.over_burst)
        return http_error(req, 429, "rate_limited", NULL,
                          "%d items are more than a player's burst of %d writes (limits.player_burst): send at most %d",
                          cost, v.limit, v.limit);
    return http_error(req, 429, "rate_limited", NULL,
                      "over this player's limit of writes with a player token (limits.player_writes_per_s); retry in %d s",
                      req->retry_after);
}

int api_player_write_allowed(http_req_t *req, const board_t *b, const char *player, bool join)
{
    const player_claims_t *c = req->player;
    if (!c)
        return 0;
    if (strcmp(player, c->player) != 0)
        return http_error(req, 403, "permission_denied", "player_id",
                          join ? "a player token joins tournaments only as its own player"
                               : "a player token submits only its own player's scores");
    if (!b->client_writes)
        return http_error(req, 403, "permission_denied", "board",
                          "board %s is server-only (client_writes is false): a player token writes only to boards "
                          "whose client_writes is true",
                          b->id);
    if (!player_claims_allow_board(c, b->id))
        return http_error(req, 403, "permission_denied", "board",
                          "this player token is limited to its own list of boards, and %s is not in it", b->id);
    return 0;
}
