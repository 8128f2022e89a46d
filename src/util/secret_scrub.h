/*
 * util/secret_scrub.h — removing pieces of secrets from text a library wrote (libpq's messages
 * quote what they could not use: a host name, a port, which a password with an unescaped `@`
 * or `/` spills into).
 *
 * The rule (docs/security.md, "Secrets in output"): a text is shown only once every substring
 * of SECRET_SCRUB_MIN bytes or more of a secret piece is gone from it, each maximal stretch of
 * such bytes replaced by SECRET_SCRUB_MARK. A secret piece is
 *   - a password, as written and as libpq decoded it;
 *   - a URI's user info as written: the text between `://` and the URI's last `@`, split at its
 *     first `:` into a user name and a password as written. A user name of ordinary characters
 *     (none of `@ / : %`) is removed whole only: it is no secret to PostgreSQL, which names it
 *     in its own messages, and its pieces would blank out common words ("ran" of "rankd" in
 *     "transaction"). Any other user info is scrubbed piece by piece like a password.
 * A secret shorter than SECRET_SCRUB_MIN cannot be told from ordinary text and is not removed.
 *
 * Pure code: no I/O, no locks (store/pg_error.c keeps the secrets of every connection string).
 */
#ifndef RANKD_UTIL_SECRET_SCRUB_H
#define RANKD_UTIL_SECRET_SCRUB_H

#include <stdbool.h>
#include <stddef.h>

#define SECRET_SCRUB_MIN 3
#define SECRET_SCRUB_MARK "***"

typedef struct {
    char *text;  /* owned; wiped when freed */
    size_t len;
    bool whole;  /* removed only where it stands whole (a user name), else every piece */
} secret_piece_t;

typedef struct {
    secret_piece_t *v; /* owned */
    size_t n, cap;
} secret_set_t;

void secret_set_init(secret_set_t *s);
/* Wipe and free every piece (the set is empty and usable again). */
void secret_set_clear(secret_set_t *s);
/* Add a copy of the `len` bytes at `text` (nothing when shorter than SECRET_SCRUB_MIN, or
 * already held). */
void secret_set_add(secret_set_t *s, const char *text, size_t len, bool whole);
/* Add what a URI (`scheme://…`) holds as written in its user info (see above); nothing for a
 * string that is not a URI or has no `@`. */
void secret_set_add_uri(secret_set_t *s, const char *uri);

/*
 * A URI's user info as written: `*at` and `*len` the bytes between `://` and the last `@`.
 * False when `s` is no `scheme://` URI or holds no `@` after it. The last `@`, not the first
 * libpq takes: a password with an unescaped `@` is then held whole (and a `@` further on, in a
 * query, only makes more of the text count as secret).
 */
bool secret_uri_userinfo(const char *s, const char **at, size_t *len);

/*
 * Copy `in` into `out` (`n` bytes, always terminated when n > 0) with every piece of the
 * secrets of `s` removed (see above). Returns `out`. The pieces are found in the whole of `in`
 * before anything is cut to fit, so a cut never leaves part of a piece SECRET_SCRUB_MIN long.
 */
char *secret_scrub(const secret_set_t *s, const char *in, char *out, size_t n);

#endif
