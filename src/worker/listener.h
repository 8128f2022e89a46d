/*
 * worker/listener.h — hears the writes of every instance (PostgreSQL
 * LISTEN rankd_l1) and drops the cached answers they change.
 *
 * Writers NOTIFY from inside their transaction, so a notification arrives
 * only for committed changes, whether Redis is up or not. The thread owns
 * one connection; when it loses it, notifications may have been missed,
 * so it clears the whole cache once it is listening again.
 */
#ifndef RANKD_WORKER_LISTENER_H
#define RANKD_WORKER_LISTENER_H

#include "cache/l1.h"

typedef struct listener listener_t;

/* Start listening with a connection of its own; NULL when `l1` is NULL (no cache). */
listener_t *listener_start(const char *conninfo, int connect_timeout_s, l1_t *l1);
void listener_stop(listener_t *l);

/* Apply one notification payload to `l1` (exposed for tests). */
void listener_apply(l1_t *l1, const char *payload);

#endif
