/*
 * store/pg_error.h — the one way libpq's text reaches a log line, a message or an answer:
 * with every piece of every configured password and user info removed (util/secret_scrub.h
 * states the rule). libpq quotes what it could not use (a host name, a port), and a password
 * holding an unescaped `@` or `/` spills into those.
 *
 * The secrets are those of every connection string rankd connected with (pg_connect notes
 * each before it connects), kept for the life of the process in one locked set.
 */
#ifndef RANKD_STORE_PG_ERROR_H
#define RANKD_STORE_PG_ERROR_H

#include <stddef.h>

#include <libpq-fe.h>

/* Enough for libpq's longest useful message with its detail; more is cut (after scrubbing). */
#define PG_ERROR_MAX 1024

/* Remember the secrets of `conninfo` (a URI, key=value pairs, or a database name): its
 * password and user as libpq reads them, and its user info as written. Thread-safe. */
void pg_secrets_note(const char *conninfo);
/* Wipe what pg_secrets_note kept (at exit). */
void pg_secrets_forget(void);

/* `text` (libpq's) scrubbed into `out` (`n` bytes), trailing newlines and spaces dropped;
 * returns out. Thread-safe. */
const char *pg_scrub(const char *text, char *out, size_t n);
/* The error of `r` when it is not NULL, else of connection `c`, scrubbed into `out`. */
const char *pg_error_text(const PGconn *c, const PGresult *r, char *out, size_t n);

#endif
