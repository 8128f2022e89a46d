/* store/migrate.c — the migration runner behind `rankd migrate`. */
#include "store/migrate.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "store/pg_error.h"
#include "store/pg_pool.h"
#include "util/alloc.h"

#define MIGRATION_LOCK 0x72616e6b /* "rank" */

typedef struct {
    char name[256];
    char version[5];
    char *sql;
    char checksum[65];
} migration_t;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const migration_t *)a)->name, ((const migration_t *)b)->name);
}

static bool is_migration(const char *n)
{
    size_t len = strlen(n);
    if (len < 10 || strcmp(n + len - 4, ".sql") != 0 || n[4] != '_')
        return false;
    for (int i = 0; i < 4; i++)
        if (n[i] < '0' || n[i] > '9')
            return false;
    return true;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = xmalloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    fclose(f);
    s[got] = '\0';
    return s;
}

/* Load the migration files of `dir`, sorted; NULL (and a message) on error. */
static migration_t *load(const char *dir, size_t *n, FILE *out)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(out, "rankd: cannot open migrations directory %s\n", dir);
        return NULL;
    }
    migration_t *m = NULL;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_migration(e->d_name))
            continue;
        m = xrealloc(m, (*n + 1) * sizeof *m);
        migration_t *x = &m[(*n)++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", e->d_name);
        memcpy(x->version, e->d_name, 4);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        x->sql = read_file(path);
        if (!x->sql)
            x->sql = xstrdup("");
        unsigned char md[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)x->sql, strlen(x->sql), md);
        for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
            snprintf(x->checksum + 2 * i, 3, "%02x", md[i]);
    }
    closedir(d);
    if (*n)
        qsort(m, *n, sizeof *m, by_name);
    return m ? m : xcalloc(1, sizeof *m);
}

static void unload(migration_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].sql);
    free(m);
}

static bool exec_ok(PGconn *c, const char *sql, FILE *out)
{
    PGresult *r = PQexec(c, sql);
    bool ok = pg_ok(r);
    char pe[PG_ERROR_MAX];
    if (!ok)
        fprintf(out, "rankd: %s\n", pg_error_text(c, r, pe, sizeof pe));
    PQclear(r);
    return ok;
}

static bool ensure_table(PGconn *c, FILE *out)
{
    return exec_ok(c,
                   "SET client_min_messages = warning;"
                   "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, name text NOT NULL,"
                   " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                   out);
}

/* Applied migrations: version -> checksum; NULL result on error. */
static PGresult *applied(PGconn *c, FILE *out)
{
    PGresult *r = PQexec(c, "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version");
    if (!pg_ok(r)) {
        char pe[PG_ERROR_MAX];
        fprintf(out, "rankd: %s\n", pg_error_text(c, r, pe, sizeof pe));
        PQclear(r);
        return NULL;
    }
    return r;
}

static int find_applied(const PGresult *r, const char *version)
{
    for (int i = 0; i < PQntuples(r); i++)
        if (strcmp(PQgetvalue(r, i, 0), version) == 0)
            return i;
    return -1;
}

int migrate_up(PGconn *c, const char *dir, FILE *out)
{
    size_t n;
    migration_t *m = load(dir, &n, out);
    if (!m)
        return 1;
    int rc = 1;
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_lock(%d)", MIGRATION_LOCK);
    if (!ensure_table(c, out) || !exec_ok(c, lock, out))
        goto done;
    PGresult *r = applied(c, out);
    if (!r)
        goto unlock;
    int done_count = 0;
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (find_applied(r, m[i].version) >= 0)
            continue;
        if (!exec_ok(c, "BEGIN", out)) {
            rc = 1;
            break;
        }
        bool ok = exec_ok(c, m[i].sql, out);
        if (ok) {
            const char *p[] = {m[i].version, m[i].name, m[i].checksum};
            PGresult *ins = PQexecParams(c, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                         3, NULL, p, NULL, NULL, 0);
            ok = pg_ok(ins);
            char pe[PG_ERROR_MAX];
            if (!ok)
                fprintf(out, "rankd: %s\n", pg_error_text(c, ins, pe, sizeof pe));
            PQclear(ins);
        }
        if (ok && exec_ok(c, "COMMIT", out)) {
            fprintf(out, "applied %s\n", m[i].name);
            done_count++;
        } else {
            exec_ok(c, "ROLLBACK", out);
            fprintf(out, "rankd: migration %s failed; nothing of it was applied\n", m[i].name);
            rc = 1;
        }
    }
    if (rc == 0)
        fprintf(out, "%d migration(s) applied, schema is up to date\n", done_count);
    PQclear(r);
unlock:
    snprintf(lock, sizeof lock, "SELECT pg_advisory_unlock(%d)", MIGRATION_LOCK);
    exec_ok(c, lock, out);
done:
    unload(m, n);
    return rc;
}

int migrate_status(PGconn *c, const char *dir, FILE *out)
{
    size_t n;
    migration_t *m = load(dir, &n, out);
    if (!m)
        return 1;
    int rc = 1;
    PGresult *r = NULL;
    if (ensure_table(c, out) && (r = applied(c, out))) {
        rc = 0;
        for (size_t i = 0; i < n; i++) {
            int row = find_applied(r, m[i].version);
            if (row >= 0)
                fprintf(out, "applied  %s  %s\n", m[i].name, PQgetvalue(r, row, 3));
            else
                fprintf(out, "pending  %s\n", m[i].name);
        }
        PQclear(r);
    }
    unload(m, n);
    return rc;
}

int migrate_verify(PGconn *c, const char *dir, FILE *out)
{
    size_t n;
    migration_t *m = load(dir, &n, out);
    if (!m)
        return 1;
    int rc = 1;
    PGresult *r = NULL;
    if (ensure_table(c, out) && (r = applied(c, out))) {
        rc = 0;
        for (int row = 0; row < PQntuples(r); row++) {
            const migration_t *f = NULL;
            for (size_t i = 0; i < n; i++)
                if (strcmp(m[i].version, PQgetvalue(r, row, 0)) == 0)
                    f = &m[i];
            if (!f) {
                fprintf(out, "missing  %s: applied but its file is gone\n", PQgetvalue(r, row, 1));
                rc = 1;
            } else if (strcmp(f->checksum, PQgetvalue(r, row, 2)) != 0) {
                fprintf(out, "changed  %s: checksum differs from the applied file\n", f->name);
                rc = 1;
            } else {
                fprintf(out, "ok       %s\n", f->name);
            }
        }
        PQclear(r);
    }
    unload(m, n);
    return rc;
}
