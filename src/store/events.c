/* store/events.c — end-of-window events in PostgreSQL (see events.h). */
#include "store/events.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg_pool.h"
#include "store/queries.h"
#include "util/alloc.h"

void event_init(event_t *e)
{
    memset(e, 0, sizeof *e);
}

void event_clear(event_t *e)
{
    free(e->last_error);
    free(e->body);
    free(e->url);
    free(e->secret);
    event_init(e);
}

static int64_t col_i64(const PGresult *r, int col)
{
    return PQgetisnull(r, 0, col) ? 0 : strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

q_status_t q_event_get(PGconn *c, const char *id, event_t *out)
{
    const char *p[] = {id};
    PGresult *r = PQexecParams(c,
                               "SELECT id, state, attempts, created_ms, next_ms, delivered_ms, last_status, last_error, body"
                               " FROM events WHERE id = $1",
                               1, NULL, p, NULL, NULL, 0);
    if (!pg_ok(r))
        return q_failed(c, r, "event get");
    q_status_t st = PQntuples(r) == 1 ? Q_OK : Q_NOT_FOUND;
    if (st == Q_OK) {
        snprintf(out->id, sizeof out->id, "%s", PQgetvalue(r, 0, 0));
        snprintf(out->state, sizeof out->state, "%s", PQgetvalue(r, 0, 1));
        out->attempts = (int)col_i64(r, 2);
        out->created_ms = col_i64(r, 3);
        out->next_ms = col_i64(r, 4);
        out->delivered_ms = col_i64(r, 5);
        out->last_status = (int)col_i64(r, 6);
        out->last_error = PQgetisnull(r, 0, 7) ? NULL : xstrdup(PQgetvalue(r, 0, 7));
        out->body = xstrdup(PQgetvalue(r, 0, 8));
    }
    PQclear(r);
    return st;
}

q_status_t q_event_claim(PGconn *c, int64_t now_ms, int64_t lease_ms, event_t *out)
{
    char now[24], lease[24];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(lease, sizeof lease, "%" PRId64, lease_ms);
    const char *p[] = {now, lease};
    PGresult *r = PQexecParams(c,
                               "UPDATE events e SET attempts = e.attempts + 1, next_ms = $1::bigint + $2::bigint"
                               " FROM (SELECT id FROM events WHERE state = 'pending' AND next_ms <= $1::bigint"
                               "       ORDER BY next_ms LIMIT 1 FOR UPDATE SKIP LOCKED) d"
                               " WHERE e.id = d.id RETURNING e.id, e.attempts, e.created_ms, e.url, e.secret, e.body",
                               2, NULL, p, NULL, NULL, 0);
    if (!pg_ok(r))
        return q_failed(c, r, "event claim");
    q_status_t st = PQntuples(r) == 1 ? Q_OK : Q_NOT_FOUND;
    if (st == Q_OK) {
        snprintf(out->id, sizeof out->id, "%s", PQgetvalue(r, 0, 0));
        out->attempts = (int)col_i64(r, 1);
        out->created_ms = col_i64(r, 2);
        out->url = xstrdup(PQgetvalue(r, 0, 3));
        out->secret = xstrdup(PQgetvalue(r, 0, 4));
        out->body = xstrdup(PQgetvalue(r, 0, 5));
    }
    PQclear(r);
    return st;
}

q_status_t q_event_tried(PGconn *c, const char *id, const char *state, int status, const char *error, int64_t now_ms,
                         int64_t next_ms)
{
    char st_text[16], now[24], next[24];
    snprintf(st_text, sizeof st_text, "%d", status);
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(next, sizeof next, "%" PRId64, next_ms);
    const char *p[] = {id, state, status > 0 ? st_text : NULL, error, now, next};
    PGresult *r = PQexecParams(c,
                               "UPDATE events SET state = $2, last_status = $3::int, last_error = $4,"
                               " delivered_ms = CASE WHEN $2 = 'delivered' THEN $5::bigint END, next_ms = $6::bigint"
                               " WHERE id = $1",
                               6, NULL, p, NULL, NULL, 0);
    if (!pg_ok(r))
        return q_failed(c, r, "event outcome");
    PQclear(r);
    return Q_OK;
}
