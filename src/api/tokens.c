/*
 * api/tokens.c — a player's tokens: POST /v1/players/{player}/tokens mints one (a write or
 * admin key: the game's own login calls it once per session), DELETE revokes every token of the
 * player issued before now (an admin key).
 *
 * Minting is CPU only (an HMAC) and answers on the event loop. A revocation is stored in
 * PostgreSQL and announced to every instance (store/revocations.c) on an offload thread.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "api/app.h"
#include "api/body.h"
#include "api/player_auth.h"
#include "core/ids.h"
#include "core/player_token.h"
#include "core/window.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "store/revocations.h"

/* The body of a mint: ttl_s and boards, both optional (an empty body is the defaults). */
static int mint_body(http_req_t *req, int *ttl_s, const char **boards, size_t *n_boards)
{
    *ttl_s = PLAYER_TOKEN_TTL_DEFAULT_S;
    *n_boards = 0;
    if (req->body_len == 0)
        return 0;
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const allowed[] = {"ttl_s", "boards", NULL};
    if ((rc = body_only(req, obj, allowed)))
        goto done;
    json_t *ttl = json_object_get(obj, "ttl_s");
    if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
                json_integer_value(ttl) > PLAYER_TOKEN_TTL_MAX_S)) {
        rc = http_error(req, 400, "invalid_argument", "ttl_s", "ttl_s must be a whole number of seconds, 1 to %d "
                        "(a day)", PLAYER_TOKEN_TTL_MAX_S);
        goto done;
    }
    if (ttl)
        *ttl_s = (int)json_integer_value(ttl);
    json_t *bl = json_object_get(obj, "boards");
    if (bl) {
        size_t n = json_is_array(bl) ? json_array_size(bl) : 0;
        if (n < 1 || n > PLAYER_CLAIMS_BOARDS_MAX) {
            rc = http_error(req, 400, "invalid_argument", "boards", "boards must be a list of 1 to %d board ids",
                            PLAYER_CLAIMS_BOARDS_MAX);
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *b = json_array_get(bl, i);
            if (!json_is_string(b) || !id_board_valid(json_string_value(b), json_string_length(b))) {
                rc = http_error(req, 400, "invalid_argument", "boards", "boards must be a list of board ids: "
                                ID_BOARD_RULE);
                goto done;
            }
            /* The strings live in the request's arena, with the parsed body. */
            size_t len = json_string_length(b);
            char *copy = arena_alloc(&req->arena, len + 1);
            memcpy(copy, json_string_value(b), len + 1);
            boards[i] = copy;
        }
        *n_boards = n;
    }
done:
    json_decref(obj);
    return rc;
}

static int mint(app_t *app, const route_t *rt, http_req_t *req)
{
    const rankd_config_t *live = atomic_load(&app->live);
    if (!live->player_token_secret)
        return http_error(req, 409, "conflict", NULL, "this instance mints no player tokens: "
                          "auth.player_token_secret (RANKD_PLAYER_TOKEN_SECRET) is not set");
    int ttl_s;
    const char *boards[PLAYER_CLAIMS_BOARDS_MAX];
    size_t n_boards;
    int rc = mint_body(req, &ttl_s, boards, &n_boards);
    if (rc)
        return rc;
    unsigned char jti[16];
    if (RAND_bytes(jti, sizeof jti) != 1) {
        log_error(req->request_id, "no random bytes for a player token's id");
        return http_internal(req);
    }
    int64_t now = req->received_ms;
    char *token = player_token_mint(live->player_token_secret, rt->player, boards, n_boards, now, ttl_s, jti);
    if (!token)
        return http_internal(req);
    char expires[25];
    window_format_ms((now / 1000 + ttl_s) * 1000, expires);
    buf_puts(&req->out, "{\"token\":");
    buf_json_str(&req->out, token, strlen(token));
    buf_puts(&req->out, ",\"player_id\":");
    buf_json_str(&req->out, rt->player, rt->player_len);
    buf_printf(&req->out, ",\"expires_at\":\"%s\"}", expires);
    free(token);
    metrics_add(app->metrics, METRIC_PLAYER_TOKENS_MINTED, 1);
    return http_ok(req, 201);
}

static int revoke(app_t *app, http_req_t *req, const char *player)
{
    int rc = body_none(req);
    if (rc)
        return rc;
    pg_lease_t lease;
    if (!pg_router_primary(app->router, &lease))
        return http_unavailable(req, "the primary database");
    int64_t at = 0;
    q_status_t st = q_revoke_player_tokens(lease.conn, player, req->received_ms, &at);
    pg_router_release(app->router, &lease, st == Q_UNAVAILABLE);
    if (st != Q_OK)
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    /* This instance refuses them now; the others once they hear the notice. */
    revocations_note(player_auth_revocations(app->player_auth), player, strlen(player), at);
    char when[25];
    window_format_ms(at, when);
    buf_puts(&req->out, "{\"player_id\":");
    buf_json_str(&req->out, player, strlen(player));
    buf_printf(&req->out, ",\"revoked_before\":\"%s\"}", when);
    return http_ok(req, 200);
}

int api_player_tokens(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->player_bad || strlen(rt->player) != rt->player_len || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    if (strcmp(req->method, "DELETE") == 0) {
        if (api_on_loop(app, req))
            return api_off_loop(app, rt, req);
        return revoke(app, req, rt->player);
    }
    return mint(app, rt, req);
}
