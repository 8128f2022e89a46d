/*
 * store/q_status.h — how a PostgreSQL call ended: the answer of every q_* function
 * (store/queries.h) and of the reads the router runs (store/pg_router.h).
 */
#ifndef RANKD_STORE_Q_STATUS_H
#define RANKD_STORE_Q_STATUS_H

typedef enum { Q_OK = 0, Q_NOT_FOUND, Q_CONFLICT, Q_UNAVAILABLE, Q_ERROR, Q_RETRY } q_status_t;

#endif
