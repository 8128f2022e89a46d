/*
 * api/flagged.c — GET /v1/leaderboards/{board}/flagged (an admin's): the submissions made with a
 * player token that broke one of the board's client rules (API.md, "Plausibility rules"), kept
 * in the log unapplied, newest first, paged with a cursor as /windows is.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/window.h"
#include "store/flagged.h"
#include "store/pg_router.h"

#define FLAGGED_LIMIT_MAX 1000

typedef struct {
    int64_t gen;
    bool after;
    const cursor_t *cursor;
    int limit;
    PGresult *rows; /* the page, owned */
} flagged_args_t;

static q_status_t page_on(PGconn *c, void *arg)
{
    flagged_args_t *a = arg;
    if (a->rows) { /* tried on another node before */
        PQclear(a->rows);
        a->rows = NULL;
    }
    return q_flagged_page(c, a->gen, a->after, a->after ? a->cursor->pos.sort_key : 0,
                          a->after ? a->cursor->pos.player : NULL, a->after ? a->cursor->pos.achieved_ms : 0, a->limit,
                          &a->rows);
}

/* A text column as a JSON string, or null. */
static void text_or_null(buf_t *o, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        buf_puts(o, "null");
    else
        buf_json_str(o, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

int api_flagged(app_t *app, const route_t *rt, http_req_t *req)
{
    bool bad = false;
    uint64_t limit = 25;
    const char *lim = http_param(req, "limit", &bad);
    const char *cur = http_param(req, "cursor", &bad);
    cursor_t cursor;
    const char *secret = app->cfg->cursor_secret;
    if (bad)
        return http_bad_param(req, NULL, "limit and cursor must each be given at most once");
    if (lim && (!param_parse_uint(lim, FLAGGED_LIMIT_MAX, &limit) || limit < 1))
        return http_bad_param(req, "limit", "limit must be a whole number 1..1000");
    if (cur && (!cursor_decode_rotated(cur, secret, app->cfg->cursor_secret_previous, &cursor) ||
                cursor.kind != CURSOR_FLAGGED || cursor.backward))
        return http_bad_param(req, "cursor", "cursor is not one this route gave: pass next_cursor as it came");
    board_t b;
    int rc = api_load_board(app, rt, req, &b);
    if (rc)
        return rc;
    if (cur && cursor.gen != b.gen) {
        board_clear(&b);
        return http_bad_param(req, "cursor", "cursor was given by another board");
    }
    flagged_args_t a = {b.gen, cur != NULL, cur ? &cursor : NULL, (int)limit + 1, NULL};
    bool behind = false;
    q_status_t st = pg_router_read_run(app->router, b.gen, req->strong, page_on, &a, &behind);
    if (st != Q_OK) {
        if (a.rows)
            PQclear(a.rows);
        board_clear(&b);
        return st == Q_UNAVAILABLE ? http_unavailable(req, "the database") : http_internal(req);
    }
    PGresult *r = a.rows;
    int n = PQntuples(r);
    bool more = n > (int)limit;
    int shown = more ? (int)limit : n;
    buf_t *o = &req->out;
    buf_puts(o, "{\"board\":");
    buf_json_str(o, b.id, strlen(b.id));
    buf_puts(o, ",\"flagged\":[");
    for (int i = 0; i < shown; i++) {
        char at[25];
        window_format_ms(strtoll(PQgetvalue(r, i, 2), NULL, 10), at);
        buf_puts(o, i ? ",{\"player_id\":" : "{\"player_id\":");
        buf_json_str(o, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
        buf_printf(o, ",\"score\":%s,\"received_at\":\"%s\",\"window\":\"%s\",\"rule\":", PQgetvalue(r, i, 1), at,
                   PQgetvalue(r, i, 3));
        text_or_null(o, r, i, 4);
        buf_puts(o, ",\"auth_by\":");
        text_or_null(o, r, i, 5);
        buf_puts(o, ",\"client_addr\":");
        text_or_null(o, r, i, 6);
        if (!PQgetisnull(r, i, 7)) {
            buf_puts(o, ",\"metadata\":");
            buf_puts(o, PQgetvalue(r, i, 7));
        }
        buf_putc(o, '}');
    }
    buf_puts(o, "],\"next_cursor\":");
    if (more) {
        int last = shown - 1;
        cursor_t next = {.kind = CURSOR_FLAGGED, .gen = b.gen};
        const char *player = PQgetvalue(r, last, 0);
        order_pos_set(&next.pos, strtoll(PQgetvalue(r, last, 2), NULL, 10), strtoll(PQgetvalue(r, last, 1), NULL, 10),
                      player, strlen(player));
        char text[CURSOR_TEXT_MAX];
        cursor_encode(&next, secret, strlen(secret), text);
        buf_printf(o, "\"%s\"}", text);
    } else {
        buf_puts(o, "null}");
    }
    PQclear(r);
    board_clear(&b);
    (void)behind; /* an admin's moderation list: never cached */
    return http_ok(req, 200);
}
