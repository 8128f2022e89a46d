/* store/pg_error.c — libpq's text, scrubbed of every configured secret (see pg_error.h). */
#include "store/pg_error.h"

#include <pthread.h>
#include <string.h>

#include "util/secret_scrub.h"

/* Shared by every thread that logs: noted at each connect, read at each message. */
static struct {
    pthread_mutex_t lock;
    secret_set_t known;
} secrets = {PTHREAD_MUTEX_INITIALIZER, {NULL, 0, 0}};

void pg_secrets_note(const char *conninfo)
{
    if (!conninfo)
        return;
    secret_set_t found;
    secret_set_init(&found);
    secret_set_add_uri(&found, conninfo);
    /* What libpq itself reads: key=value pairs, quoted values, ?password=, percent-decoded. */
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "password") == 0)
            secret_set_add(&found, o->val, strlen(o->val), false);
        else if (strcmp(o->keyword, "user") == 0)
            secret_set_add(&found, o->val, strlen(o->val), true);
    }
    if (opts) {
        for (PQconninfoOption *o = opts; o->keyword; o++)
            if (o->val)
                explicit_bzero(o->val, strlen(o->val));
        PQconninfoFree(opts);
    }
    pthread_mutex_lock(&secrets.lock);
    for (size_t i = 0; i < found.n; i++)
        secret_set_add(&secrets.known, found.v[i].text, found.v[i].len, found.v[i].whole);
    pthread_mutex_unlock(&secrets.lock);
    secret_set_clear(&found);
}

void pg_secrets_forget(void)
{
    pthread_mutex_lock(&secrets.lock);
    secret_set_clear(&secrets.known);
    pthread_mutex_unlock(&secrets.lock);
}

const char *pg_scrub(const char *text, char *out, size_t n)
{
    if (n == 0)
        return out;
    pthread_mutex_lock(&secrets.lock);
    secret_scrub(&secrets.known, text ? text : "", out, n);
    pthread_mutex_unlock(&secrets.lock);
    size_t k = strlen(out);
    while (k && (out[k - 1] == '\n' || out[k - 1] == ' ' || out[k - 1] == '\r'))
        out[--k] = '\0';
    return out;
}

const char *pg_error_text(const PGconn *c, const PGresult *r, char *out, size_t n)
{
    const char *text = r ? PQresultErrorMessage(r) : c ? PQerrorMessage(c) : "no connection";
    return pg_scrub(text, out, n);
}
