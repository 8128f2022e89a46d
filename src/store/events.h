/*
 * store/events.h — end-of-window events in PostgreSQL (migrations/0020_events.sql): one read
 * for GET /v1/events/{id}, and the sender's claim of a due event and its outcome.
 */
#ifndef RANKD_STORE_EVENTS_H
#define RANKD_STORE_EVENTS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/q_status.h"
#include "util/must_use.h"

typedef struct {
    char id[64];
    char state[16];      /* pending, delivered, failed */
    int attempts;
    int64_t created_ms;
    int64_t next_ms;
    int64_t delivered_ms; /* 0: not delivered */
    int last_status;      /* the last try's HTTP status; 0: none */
    char *last_error;     /* owned, or NULL */
    char *body;           /* owned: the JSON sent */
    char *url;            /* owned (a claim only) */
    char *secret;         /* owned (a claim only) */
} event_t;

void event_init(event_t *e);
void event_clear(event_t *e);

/* Event `id`: Q_OK, or Q_NOT_FOUND. */
MUST_USE q_status_t q_event_get(PGconn *c, const char *id, event_t *out);
/* Claim the most overdue pending event (due at `now_ms`; another sender skips it): its try is
 * counted and it is due again `lease_ms` later, should this sender stop before telling how the
 * try went. Q_NOT_FOUND when none is due. */
MUST_USE q_status_t q_event_claim(PGconn *c, int64_t now_ms, int64_t lease_ms, event_t *out);
/* How a claimed event's try went: delivered (status 2xx), or due again at `next_ms`, or failed
 * for good; `status` 0 when no answer came, `error` NULL when none. */
MUST_USE q_status_t q_event_tried(PGconn *c, const char *id, const char *state, int status, const char *error,
                                  int64_t now_ms, int64_t next_ms);

#endif
