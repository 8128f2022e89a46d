/*
 * api/events.c — end-of-window events (API.md, "Competitions"): a board's `webhook` at its
 * creation and in the Board object (that one is configured; its URL to admins only; the secret
 * is write-only), and
 * GET /v1/events/{id} (admin), an event with its delivery state. Events are made by the archiver
 * (rankd_window_event) and sent by worker/events.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/app.h"
#include "api/body.h"
#include "core/window.h"
#include "store/events.h"
#include "store/pg_router.h"

#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_SECRET_MAX 256

int api_webhook_body(http_req_t *req, json_t *obj, board_t *def)
{
    json_t *wh = json_object_get(obj, "webhook");
    def->webhook_url = def->webhook_secret = NULL;
    if (!wh || json_is_null(wh))
        return 0;
    if (!def->tournament.on && !def->league.on)
        return http_error(req, 400, "invalid_argument", "webhook",
                          "a webhook is for a tournament or a league board: its windows' closing is the event");
    const char *key;
    json_t *v;
    if (!json_is_object(wh))
        return http_error(req, 400, "invalid_argument", "webhook", "webhook must be {\"url\", \"secret\"}");
    json_object_foreach(wh, key, v) {
        if (strcmp(key, "url") != 0 && strcmp(key, "secret") != 0)
            return http_error(req, 400, "invalid_argument", "webhook", "webhook takes url and secret only");
    }
    json_t *url = json_object_get(wh, "url"), *secret = json_object_get(wh, "secret");
    const char *u = json_is_string(url) ? json_string_value(url) : NULL;
    size_t ulen = u ? json_string_length(url) : 0;
    bool scheme = u && (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0);
    const char *host = scheme ? strstr(u, "://") + 3 : NULL;
    bool ok = scheme && strlen(u) == ulen && ulen <= WEBHOOK_URL_MAX && host[0] && host[0] != '/';
    for (size_t i = 0; ok && i < ulen; i++)
        ok = (unsigned char)u[i] > 0x20 && (unsigned char)u[i] < 0x7f;
    if (!ok)
        return http_error(req, 400, "invalid_argument", "webhook.url",
                          "webhook.url must be an http or https URL of at most %d bytes, without spaces",
                          WEBHOOK_URL_MAX);
    if (!json_is_string(secret) || json_string_length(secret) < 1 || json_string_length(secret) > WEBHOOK_SECRET_MAX ||
        strlen(json_string_value(secret)) != json_string_length(secret))
        return http_error(req, 400, "invalid_argument", "webhook.secret",
                          "webhook.secret must be a string of 1 to %d bytes (the key of the events' HMAC-SHA256)",
                          WEBHOOK_SECRET_MAX);
    def->webhook_url = (char *)u; /* borrowed from the body */
    def->webhook_secret = (char *)json_string_value(secret);
    return 0;
}

bool api_render_webhook(buf_t *o, const board_t *b, role_t role)
{
    if (!b->webhook_url)
        return false;
    /* A URL may carry a token or user info: whoever is not an admin learns only that there is one. */
    bool show_url = role == ROLE_ADMIN;
    buf_puts(o, ",\"webhook\":{\"configured\":true");
    if (show_url) {
        buf_puts(o, ",\"url\":");
        buf_json_str(o, b->webhook_url, strlen(b->webhook_url));
    }
    buf_putc(o, '}');
    return show_url;
}

typedef struct {
    const char *id;
    event_t ev;
} event_args_t;

static q_status_t event_on(PGconn *c, void *arg)
{
    event_args_t *a = arg;
    event_clear(&a->ev);
    return q_event_get(c, a->id, &a->ev);
}

static void put_ms(buf_t *o, const char *name, int64_t ms, bool has)
{
    buf_printf(o, ",\"%s\":", name);
    if (!has) {
        buf_puts(o, "null");
        return;
    }
    char at[25];
    window_format_ms(ms, at);
    buf_printf(o, "\"%s\"", at);
}

int api_event(app_t *app, const route_t *rt, http_req_t *req)
{
    /* An event id as rankd makes them: ev-<generation>-<YYYYMMDD>. */
    bool ok = !rt->player_bad && rt->player_len >= 4 && rt->player_len <= 40;
    for (size_t i = 0; ok && i < rt->player_len; i++)
        ok = (rt->player[i] >= '0' && rt->player[i] <= '9') || rt->player[i] == '-' || rt->player[i] == 'e' ||
             rt->player[i] == 'v';
    if (!ok)
        return http_error(req, 400, "invalid_argument", "id", "id must be an event id (ev-...) as an event carries it");
    event_args_t a = {.id = rt->player};
    event_init(&a.ev);
    bool behind = false;
    q_status_t st = pg_router_read_run(app->router, 0, true, event_on, &a, &behind);
    int rc;
    if (st == Q_NOT_FOUND) {
        rc = http_not_found(req, "id", "event");
    } else if (st != Q_OK) {
        rc = st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    } else {
        buf_t *o = &req->out;
        buf_puts(o, "{\"id\":");
        buf_json_str(o, a.ev.id, strlen(a.ev.id));
        buf_printf(o, ",\"state\":\"%s\",\"attempts\":%d", a.ev.state, a.ev.attempts);
        put_ms(o, "created_at", a.ev.created_ms, true);
        put_ms(o, "delivered_at", a.ev.delivered_ms, a.ev.delivered_ms > 0);
        put_ms(o, "next_attempt_at", a.ev.next_ms, strcmp(a.ev.state, "pending") == 0);
        buf_puts(o, ",\"last_status\":");
        if (a.ev.last_status > 0)
            buf_printf(o, "%d", a.ev.last_status);
        else
            buf_puts(o, "null");
        buf_puts(o, ",\"last_error\":");
        if (a.ev.last_error)
            buf_json_str(o, a.ev.last_error, strlen(a.ev.last_error));
        else
            buf_puts(o, "null");
        buf_puts(o, ",\"event\":");
        buf_puts(o, a.ev.body); /* JSON, as PostgreSQL built it and as it was sent */
        buf_putc(o, '}');
        rc = http_ok(req, 200);
    }
    event_clear(&a.ev);
    return rc;
}
