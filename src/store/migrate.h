/*
 * store/migrate.h — numbered SQL migrations: apply, list, verify.
 *
 * Files named NNNN_name.sql in the migrations directory are applied in
 * order, each in its own transaction, and recorded in schema_migrations
 * with a SHA-256 checksum. One runner at a time: `up` holds a session
 * advisory lock, so a second runner waits and then finds nothing to do.
 */
#ifndef RANKD_STORE_MIGRATE_H
#define RANKD_STORE_MIGRATE_H

#include <libpq-fe.h>
#include <stdio.h>
#include "util/must_use.h"

/* Each returns the process exit code (0 = success) after reporting to `out`. */
MUST_USE int migrate_up(PGconn *c, const char *dir, FILE *out);
MUST_USE int migrate_status(PGconn *c, const char *dir, FILE *out);
MUST_USE int migrate_verify(PGconn *c, const char *dir, FILE *out);

#endif
