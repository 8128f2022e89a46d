/*
 * config/config.c — load rankd's YAML configuration and its RANKD_* overrides.
 *
 * Every setting is one row of config_keys[] below (as Redis's static_configs[]
 * and PgBouncer's bouncer_params[]): its dotted YAML name, type, bounds,
 * default, environment variable and the field it fills. Loading is four
 * passes over that one table: defaults (each written in the same text syntax
 * as the environment variable, and parsed by the same code), the YAML file,
 * the environment, then the checks that span keys. A YAML section ("http",
 * "auth", ...) is nothing but the common prefix of some rows' names, so a
 * new key is a new row and nothing else. List items with fields of their own
 * (auth.keys, boards) are parsed by the same code against two small tables of
 * the same shape.
 *
 * The file goes through libyaml's document loader so that every node keeps
 * its position: errors print as "file:line:column: message" (1-based) and
 * environment errors as "RANKD_X: message". Loading never stops at the first
 * error; it reports all of them and then returns NULL. Values of secret keys
 * (bearer keys, cursor secret, connection strings, the Redis URL with its
 * password) are never echoed in a message, and are wiped when freed.
 *
 * The loaded configuration is immutable; config_key_role() and
 * config_cors_allowed() only read it, so any thread may call them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* explicit_bzero */
#endif

#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <yaml.h>

#include "config/secret_policy.h"
#include "util/arena.h"
#include "util/hostport.h"
#include "util/redis_url.h"

_Static_assert(sizeof(role_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(log_level_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(metrics_auth_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(board_sort_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(board_op_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(board_reset_t) == sizeof(int), "enum fields are written as int");

#define KEY_MIN_BYTES 16
#define KEY_MAX_BYTES 256
#define WHY_MAX 256 /* room for one error message */

/* ------------------------------------------------------------------------
 * Allocation: out of memory aborts.
 * ------------------------------------------------------------------------ */

static void *cfg_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

static void *cfg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        abort();
    return q;
}

static char *cfg_strndup(const char *s, size_t n)
{
    char *p = cfg_calloc(n + 1, 1);
    memcpy(p, s, n);
    return p;
}

static char *cfg_strdup(const char *s)
{
    return cfg_strndup(s, strlen(s));
}

/* Free a string; a secret's bytes are wiped first. */
static void free_str(char *s, bool secret)
{
    if (s != NULL && secret)
        explicit_bzero(s, strlen(s));
    free(s);
}

static void list_push(char ***v, size_t *n, char *s)
{
    *v = cfg_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = s;
}

static void list_free(char ***v, size_t *n, bool secret)
{
    for (size_t i = 0; i < *n; i++)
        free_str((*v)[i], secret);
    free(*v);
    *v = NULL;
    *n = 0;
}

/* ------------------------------------------------------------------------
 * The key table.
 * ------------------------------------------------------------------------ */

typedef enum {
    T_INT,    /* int, decimal within [min, max] */
    T_SIZE,   /* size_t, decimal within [min, max] */
    T_SCORE,  /* int64_t within [min, max], with a has_ flag at off2 */
    T_BOOL,   /* true | false */
    T_ENUM,   /* an enum field, named by `parse` */
    T_STR,    /* char *, byte length within [min, max] (max 0: no limit), then `check` */
    T_LISTEN, /* host:port into char *host (off) and int port (off2) */
    T_LIST,   /* char ** (off) and size_t count (off2); items as T_STR; `sep` in env */
    T_KEYS,   /* auth.keys: a list of {key, role} */
    T_ADDKEY, /* environment only: add one bearer key of role `min` */
    T_BOARDS, /* boards: a list of board definitions */
    T_JSON,   /* a YAML mapping stored as compact JSON object text */
} conf_type_t;

#define F_SECRET 0x1u   /* never echo the value; wipe it when freed */
#define F_NULLABLE 0x2u /* "" (or YAML null) stores NULL */
#define F_ENV_ONLY 0x4u /* no YAML key, only the environment variable */
#define F_REQUIRED 0x8u /* T_STR: must be set by the file or the environment */

typedef bool (*enum_parse_fn)(const char *s, int *out);
typedef bool (*str_check_fn)(const char *s, char *why, size_t whylen);

typedef struct conf_key {
    const char *name;     /* dotted YAML path, e.g. "http.body_limit" */
    conf_type_t type;
    unsigned flags;
    long long min, max;   /* bounds of a number, or of a string's length */
    const char *def;      /* default, in environment syntax; NULL: none */
    int (*def_fn)(void);  /* computed default of a T_INT */
    const char *env;      /* RANKD_... or NULL */
    size_t off;           /* target field */
    size_t off2;          /* second field: port, count or has_ flag */
    char sep;             /* T_LIST: item separator in the environment */
    enum_parse_fn parse;  /* T_ENUM */
    const char *choices;  /* T_ENUM: the names, for messages */
    str_check_fn check;   /* T_STR, T_LIST items: extra validation */
} conf_key_t;

#define FIELD(base, off, type) ((type *)(void *)((char *)(base) + (off)))

/* --- enum parsers --- */

static bool parse_names(const char *const *names, size_t n, const char *s, int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (names[i] != NULL && strcmp(names[i], s) == 0) {
            *out = (int)i;
            return true;
        }
    }
    return false;
}

static bool parse_log_level(const char *s, int *out)
{
    static const char *const names[] = {
        [LOG_DEBUG] = "debug", [LOG_INFO] = "info", [LOG_WARN] = "warn", [LOG_ERROR] = "error"};
    return parse_names(names, sizeof names / sizeof names[0], s, out);
}

static bool parse_metrics_auth(const char *s, int *out)
{
    static const char *const names[] = {[METRICS_AUTH_NONE] = "none", [METRICS_AUTH_ADMIN] = "admin"};
    return parse_names(names, sizeof names / sizeof names[0], s, out);
}

static bool parse_read_from(const char *s, int *out)
{
    static const char *const names[] = {[REDIS_READ_MASTER] = "master", [REDIS_READ_REPLICAS] = "replicas"};
    return parse_names(names, sizeof names / sizeof names[0], s, out);
}

static bool parse_replica_policy(const char *s, int *out)
{
    static const char *const names[] = {[POLICY_ROUND_ROBIN] = "round_robin",
                                        [POLICY_LEAST_CONNECTIONS] = "least_connections",
                                        [POLICY_WEIGHTED] = "weighted"};
    return parse_names(names, sizeof names / sizeof names[0], s, out);
}

static const char *const role_names[] = {
    [ROLE_NONE] = NULL, [ROLE_READ] = "read", [ROLE_WRITE] = "write", [ROLE_ADMIN] = "admin"};

static bool parse_role(const char *s, int *out)
{
    return parse_names(role_names, sizeof role_names / sizeof role_names[0], s, out);
}

static bool parse_sort(const char *s, int *out)
{
    board_sort_t v;
    if (!board_sort_parse(s, &v))
        return false;
    *out = (int)v;
    return true;
}

static bool parse_op(const char *s, int *out)
{
    board_op_t v;
    if (!board_op_parse(s, &v))
        return false;
    *out = (int)v;
    return true;
}

static bool parse_reset(const char *s, int *out)
{
    board_reset_t v;
    if (!board_reset_parse(s, &v))
        return false;
    *out = (int)v;
    return true;
}

/* --- string checks --- */

/* A copy of `s` safe to echo in a message: non-printables as '?', long values cut. */
static const char *shown(const char *s, char *buf, size_t n)
{
    size_t len = strlen(s), max = n - 4, i;
    for (i = 0; i < len && i < max; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (i < len) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* What the Redis pool and pipe will parse (util/redis_url). */
static bool check_redis_url(const char *s, char *why, size_t n)
{
    redis_url_t u;
    if (redis_url_parse(s, &u))
        return true;
    snprintf(why, n, "expected redis://[:password@]host:port/db, redis+cluster://[:password@]host:port[,host:port...] "
                     "or redis+sentinel://[:password@]host:port[,host:port...]/master-name[/db]");
    return false;
}

/* What libpq will read as the database to connect to (pg_connect passes it as dbname with
 * expand_dbname): a URI, key=value pairs, or a bare database name. libpq's own message quotes the
 * part it could not read, which may be a piece of the password (and a password may hold quotes
 * itself): only what it says before its first quote is kept (an error about a secret never
 * echoes it). */
static bool check_conninfo(const char *s, char *why, size_t n)
{
    bool expanded = strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0 || strchr(s, '=');
    if (!expanded)
        return true;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(s, &err);
    if (opts) {
        PQconninfoFree(opts);
        return true;
    }
    char said[120];
    size_t k = 0;
    for (const char *p = err ? err : "out of memory"; *p && *p != '"' && k + 1 < sizeof said; p++)
        if (*p >= 0x20 && *p < 0x7f)
            said[k++] = *p;
    while (k > 0 && (said[k - 1] == ' ' || said[k - 1] == ':'))
        k--;
    said[k] = '\0';
    PQfreemem(err);
    snprintf(why, n, "not a connection string libpq can read (%s); expected postgresql://user:password@host:port/db "
             "or key=value pairs", said);
    return false;
}

/* "*" or an origin as browsers send it: scheme://host[:port], no path. */
static bool check_weight(const char *s, char *why, size_t n)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || v < 1 || v > 1000) {
        char sb[40];
        snprintf(why, n, "expected a weight from 1 to 1000, got \"%s\"", shown(s, sb, sizeof sb));
        return false;
    }
    return true;
}

static bool check_board_id(const char *s, char *why, size_t n);

/* "board=N": how many closed windows that board keeps (0 = all). */
static bool check_board_windows(const char *s, char *why, size_t n)
{
    const char *eq = strchr(s, '=');
    char id[BOARD_ID_MAX + 2];
    size_t idlen = eq ? (size_t)(eq - s) : 0;
    char *end = NULL;
    long v = eq ? strtol(eq + 1, &end, 10) : -1;
    if (idlen > 0 && idlen <= BOARD_ID_MAX) {
        memcpy(id, s, idlen);
        id[idlen] = '\0';
    }
    if (!eq || idlen == 0 || idlen > BOARD_ID_MAX || !check_board_id(id, why, n) || eq[1] < '0' || eq[1] > '9' ||
        *end != '\0' || v < 0 || v > 100000) {
        char sb[40];
        snprintf(why, n, "expected board=windows (a board id, then 0 to 100000), got \"%s\"", shown(s, sb, sizeof sb));
        return false;
    }
    return true;
}

static bool check_cidr(const char *s, char *why, size_t n)
{
    netaddr_cidr_t c;
    if (netaddr_cidr_parse(s, &c))
        return true;
    char sb[64];
    snprintf(why, n, "expected an address or a CIDR block (10.0.0.0/8, fd00::/8), got \"%s\"", shown(s, sb, sizeof sb));
    return false;
}

static bool check_origin(const char *s, char *why, size_t n)
{
    const char *p = s, *sep, *host;
    size_t hl;
    int port;
    char sb[64];
    if (strcmp(s, "*") == 0)
        return true;
    sep = strstr(s, "://");
    if (sep == NULL || sep == s || !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        goto bad;
    for (; p < sep; p++)
        if (!(is_alnum(*p) || *p == '+' || *p == '-' || *p == '.'))
            goto bad;
    if (!hostport_split(sep + 3, strlen(sep + 3), false, &host, &hl, &port))
        goto bad;
    return true;
bad:
    snprintf(why, n, "expected \"*\" or scheme://host[:port], got \"%s\"", shown(s, sb, sizeof sb));
    return false;
}

/* Bearer keys: printable ASCII without spaces. */
static bool check_key_chars(const char *s, char *why, size_t n)
{
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
            snprintf(why, n, "must be printable ASCII without spaces (0x21-0x7E)");
            return false;
        }
    }
    return true;
}

/* ^[a-z0-9][a-z0-9_-]{0,63}$ (core/ids.c has the same rule for requests). */
static bool check_board_id(const char *s, char *why, size_t n)
{
    size_t len = strlen(s);
    bool ok = len >= 1 && len <= BOARD_ID_MAX && (is_digit(s[0]) || (s[0] >= 'a' && s[0] <= 'z'));
    for (size_t i = 1; ok && i < len; i++)
        ok = is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' || s[i] == '-';
    if (!ok) {
        char sb[80];
        snprintf(why, n, "expected 1 to 64 of [a-z0-9_-] starting with [a-z0-9], got \"%s\"",
                 shown(s, sb, sizeof sb));
    }
    return ok;
}

/* --- computed defaults --- */

/* The CPUs this process may run on (taskset, cgroup cpusets), not every CPU online: more
 * event-loop threads than cores only makes them preempt one another. */
static int online_cpus(void)
{
    cpu_set_t set;
    long n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n < 1)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 64 ? 64 : (int)n;
}

/* --- the tables --- */

#define CFG(f) offsetof(rankd_config_t, f)
#define BRD(f) offsetof(config_board_t, f)
#define KEY(f) offsetof(config_key_t, f)

#define INT_KEY(nm, lo, hi, dflt, ev, field) \
    {.name = nm, .type = T_INT, .min = lo, .max = hi, .def = dflt, .env = ev, .off = CFG(field)}
#define SIZE_KEY(nm, lo, hi, dflt, ev, field) \
    {.name = nm, .type = T_SIZE, .min = lo, .max = hi, .def = dflt, .env = ev, .off = CFG(field)}

static const conf_key_t config_keys[] = {
    {.name = "development", .type = T_BOOL, .def = "false", .env = "RANKD_DEVELOPMENT", .off = CFG(development)},
    {.name = "listen", .type = T_LISTEN, .def = "127.0.0.1:8080", .env = "RANKD_LISTEN",
     .off = CFG(listen_host), .off2 = CFG(listen_port)},
    {.name = "worker_threads", .type = T_INT, .min = 1, .max = 64, .def_fn = online_cpus,
     .env = "RANKD_WORKER_THREADS", .off = CFG(worker_threads)},
    {.name = "log_level", .type = T_ENUM, .def = "info", .env = "RANKD_LOG_LEVEL", .off = CFG(log_level),
     .parse = parse_log_level, .choices = "debug, info, warn, error"},

    SIZE_KEY("http.body_limit", 1024, 67108864, "65536", "RANKD_BODY_LIMIT", body_limit),
    SIZE_KEY("http.batch_body_limit", 1024, 268435456, "2097152", "RANKD_BATCH_BODY_LIMIT", batch_body_limit),
    SIZE_KEY("http.batch_response_limit", 65536, 268435456, "4194304", "RANKD_BATCH_RESPONSE_LIMIT",
             batch_response_limit),
    SIZE_KEY("http.body_bytes_per_ip", 0, 68719476736, "33554432", "RANKD_BODY_BYTES_PER_IP", body_bytes_per_ip),
    INT_KEY("http.refusal_delay_ms", 0, 10000, "1000", "RANKD_REFUSAL_DELAY_MS", refusal_delay_ms),
    INT_KEY("http.connection_timeout_s", 1, 3600, "30", NULL, connection_timeout_s),
    INT_KEY("http.max_connections", 1, 1000000, "4096", "RANKD_MAX_CONNECTIONS", max_connections),
    INT_KEY("http.max_connections_per_ip", 0, 1000000, "64", "RANKD_MAX_CONNECTIONS_PER_IP", max_connections_per_ip),
    SIZE_KEY("http.max_response_bytes_in_flight", 0, 68719476736, "268435456", "RANKD_MAX_RESPONSE_BYTES_IN_FLIGHT",
             max_response_bytes_in_flight),
    SIZE_KEY("http.response_bytes_per_ip", 0, 68719476736, "16777216", "RANKD_RESPONSE_BYTES_PER_IP",
             response_bytes_per_ip),
    INT_KEY("http.send_timeout_s", 1, 3600, "60", "RANKD_SEND_TIMEOUT_S", send_timeout_s),
    INT_KEY("http.send_buffer_bytes", 0, 67108864, "262144", "RANKD_SEND_BUFFER_BYTES", send_buffer_bytes),
    INT_KEY("http.cache_max_age", 0, 86400, "1", NULL, cache_max_age),
    INT_KEY("http.s_maxage", 0, 31536000, "0", "RANKD_HTTP_S_MAXAGE", s_maxage),
    INT_KEY("http.stale_while_revalidate", 0, 31536000, "0", "RANKD_HTTP_STALE_WHILE_REVALIDATE",
            stale_while_revalidate),
    SIZE_KEY("cache.max_bytes", 0, 68719476736, "67108864", "RANKD_CACHE_BYTES", cache_max_bytes),
    {.name = "http.cors_origins", .type = T_LIST, .min = 1, .def = "", .env = "RANKD_CORS_ORIGINS",
     .off = CFG(cors_origins), .off2 = CFG(n_cors_origins), .sep = ',', .check = check_origin},
    {.name = "http.proxy_protocol", .type = T_BOOL, .def = "false", .env = "RANKD_PROXY_PROTOCOL",
     .off = CFG(proxy_protocol)},
    {.name = "http.trusted_proxies", .type = T_LIST, .min = 1, .def = "", .env = "RANKD_TRUSTED_PROXIES",
     .off = CFG(trusted_proxies), .off2 = CFG(n_trusted_proxies), .sep = ',', .check = check_cidr},

    {.name = "postgres.primary", .type = T_STR, .flags = F_SECRET | F_REQUIRED, .min = 1,
     .env = "RANKD_POSTGRES_PRIMARY", .off = CFG(pg_primary), .check = check_conninfo},
    {.name = "postgres.replicas", .type = T_LIST, .flags = F_SECRET, .min = 1, .def = "",
     .env = "RANKD_POSTGRES_REPLICAS", .off = CFG(pg_replicas), .off2 = CFG(n_pg_replicas), .sep = ';',
     .check = check_conninfo},
    INT_KEY("postgres.pool_size", 1, 256, "8", NULL, pg_pool_size),
    INT_KEY("postgres.statement_timeout_ms", 1, 600000, "5000", NULL, pg_statement_timeout_ms),
    INT_KEY("postgres.connect_timeout_s", 1, 300, "5", NULL, pg_connect_timeout_s),
    INT_KEY("postgres.pool_wait_ms", 1, 60000, "1000", NULL, pg_pool_wait_ms),
    {.name = "postgres.replica_policy", .type = T_ENUM, .def = "round_robin", .env = "RANKD_POSTGRES_REPLICA_POLICY",
     .off = CFG(pg_replica_policy), .parse = parse_replica_policy,
     .choices = "round_robin, least_connections, weighted"},
    {.name = "postgres.replica_weights", .type = T_LIST, .min = 1, .def = "", .env = "RANKD_POSTGRES_REPLICA_WEIGHTS",
     .off = CFG(pg_replica_weights), .off2 = CFG(n_pg_replica_weights), .sep = ',', .check = check_weight},
    INT_KEY("postgres.max_lag_ms", 1, 3600000, "5000", "RANKD_POSTGRES_MAX_LAG_MS", pg_max_lag_ms),
    INT_KEY("postgres.health_interval_ms", 20, 60000, "1000", "RANKD_POSTGRES_HEALTH_INTERVAL_MS",
            pg_health_interval_ms),
    INT_KEY("postgres.unhealthy_after", 1, 100, "2", NULL, pg_unhealthy_after),
    INT_KEY("postgres.healthy_after", 1, 100, "2", NULL, pg_healthy_after),
    INT_KEY("postgres.breaker_failures", 1, 1000, "3", NULL, pg_breaker_failures),
    INT_KEY("postgres.breaker_cooldown_ms", 1, 600000, "2000", NULL, pg_breaker_cooldown_ms),
    INT_KEY("postgres.slow_statement_ms", 0, 3600000, "500", "RANKD_POSTGRES_SLOW_STATEMENT_MS", pg_slow_statement_ms),

    {.name = "redis.url", .type = T_STR, .flags = F_SECRET | F_NULLABLE, .env = "RANKD_REDIS_URL",
     .off = CFG(redis_url), .check = check_redis_url},
    INT_KEY("refresh.interval_s", 0, 86400, "60", "RANKD_REFRESH_INTERVAL_S", refresh_interval_s),
    INT_KEY("refresh.timeout_s", 1, 86400, "600", "RANKD_REFRESH_TIMEOUT_S", refresh_timeout_s),
    INT_KEY("refresh.rank_bucket_rows", 2, 1000000, "256", "RANKD_RANK_BUCKET_ROWS", rank_bucket_rows),
    INT_KEY("retention.windows", 0, 100000, "0", "RANKD_RETENTION_WINDOWS", retention_windows),
    {.name = "retention.board_windows", .type = T_LIST, .min = 1, .def = "", .env = "RANKD_RETENTION_BOARD_WINDOWS",
     .off = CFG(retention_board_windows), .off2 = CFG(n_retention_board_windows), .sep = ',',
     .check = check_board_windows},
    INT_KEY("retention.log_months", 0, 1200, "0", "RANKD_RETENTION_LOG_MONTHS", retention_log_months),
    INT_KEY("retention.max_clock_skew_ms", 0, 3600000, "5000", "RANKD_RETENTION_MAX_CLOCK_SKEW_MS",
            retention_max_clock_skew_ms),
    INT_KEY("limits.reads_per_s", 0, 10000000, "0", "RANKD_LIMIT_READS_PER_S", limit_reads_per_s),
    INT_KEY("limits.writes_per_s", 0, 10000000, "0", "RANKD_LIMIT_WRITES_PER_S", limit_writes_per_s),
    INT_KEY("limits.burst", 0, 10000000, "0", "RANKD_LIMIT_BURST", limit_burst),
    INT_KEY("limits.strong_reads_per_s", 0, 10000000, "0", "RANKD_LIMIT_STRONG_READS_PER_S", limit_strong_reads_per_s),
    INT_KEY("limits.strong_concurrency", 1, 100000, "8", "RANKD_LIMIT_STRONG_CONCURRENCY", limit_strong_concurrency),
    INT_KEY("limits.strong_wait_ms", 0, 60000, "1000", "RANKD_LIMIT_STRONG_WAIT_MS", limit_strong_wait_ms),
    INT_KEY("limits.failed_auths_per_s", 1, 10000000, "5", "RANKD_LIMIT_FAILED_AUTHS_PER_S", limit_failed_auths_per_s),
    INT_KEY("limits.idempotency_keys_per_client", 0, 2000000000, "0", "RANKD_LIMIT_IDEMPOTENCY_KEYS_PER_CLIENT",
            limit_idempotency_keys_per_client),
    INT_KEY("writer.max_batch", 1, 4000, "4000", "RANKD_WRITER_MAX_BATCH", writer_max_batch),
    INT_KEY("redis.connect_timeout_ms", 1, 60000, "500", NULL, redis_connect_timeout_ms),
    INT_KEY("redis.command_timeout_ms", 1, 60000, "500", NULL, redis_command_timeout_ms),
    {.name = "redis.read_from", .type = T_ENUM, .def = "master", .env = "RANKD_REDIS_READ_FROM",
     .off = CFG(redis_read_from), .parse = parse_read_from, .choices = "master, replicas"},

    {.name = "auth.public_reads", .type = T_BOOL, .def = "true", .env = "RANKD_PUBLIC_READS",
     .off = CFG(public_reads)},
    {.name = "auth.cursor_secret", .type = T_STR, .flags = F_SECRET, .min = 16, .max = 256,
     .def = "rankd-dev-cursor-secret", .env = "RANKD_CURSOR_SECRET", .off = CFG(cursor_secret)},
    {.name = "auth.cursor_secret_previous", .type = T_STR, .flags = F_SECRET | F_NULLABLE, .min = 16, .max = 256,
     .env = "RANKD_CURSOR_SECRET_PREVIOUS", .off = CFG(cursor_secret_previous)},
    {.name = "auth.metrics_auth", .type = T_ENUM, .def = "admin", .env = "RANKD_METRICS_AUTH",
     .off = CFG(metrics_auth), .parse = parse_metrics_auth, .choices = "none, admin"},
    {.name = "auth.keys", .type = T_KEYS, .off = CFG(keys), .off2 = CFG(n_keys)},
    {.name = "auth.keys", .type = T_ADDKEY, .flags = F_ENV_ONLY, .min = ROLE_ADMIN, .env = "RANKD_ADMIN_KEY"},
    {.name = "auth.keys", .type = T_ADDKEY, .flags = F_ENV_ONLY, .min = ROLE_WRITE, .env = "RANKD_WRITE_KEY"},
    {.name = "auth.keys", .type = T_ADDKEY, .flags = F_ENV_ONLY, .min = ROLE_READ, .env = "RANKD_READ_KEY"},

    {.name = "boards", .type = T_BOARDS, .off = CFG(boards), .off2 = CFG(n_boards)},
};

/* The fields of one auth.keys item. */
static const conf_key_t key_item_keys[] = {
    {.name = "auth.keys.key", .type = T_STR, .flags = F_SECRET, .min = KEY_MIN_BYTES, .max = KEY_MAX_BYTES,
     .off = KEY(key), .check = check_key_chars},
    {.name = "auth.keys.role", .type = T_ENUM, .off = KEY(role), .parse = parse_role,
     .choices = "read, write, admin"},
};

/* The fields of one boards item. */
static const conf_key_t board_keys[] = {
    {.name = "boards.id", .type = T_STR, .min = 1, .max = BOARD_ID_MAX, .off = BRD(id), .check = check_board_id},
    {.name = "boards.title", .type = T_STR, .min = 1, .max = TITLE_MAX, .off = BRD(title)},
    {.name = "boards.sort", .type = T_ENUM, .def = "desc", .off = BRD(sort), .parse = parse_sort,
     .choices = "asc, desc"},
    {.name = "boards.operator", .type = T_ENUM, .def = "best", .off = BRD(op), .parse = parse_op,
     .choices = "best, latest, sum"},
    {.name = "boards.reset", .type = T_ENUM, .def = "none", .off = BRD(reset), .parse = parse_reset,
     .choices = "none, daily, weekly, monthly"},
    {.name = "boards.metadata", .type = T_JSON, .off = BRD(metadata)},
    {.name = "boards.min_score", .type = T_SCORE, .min = SCORE_MIN, .max = SCORE_MAX, .off = BRD(min_score),
     .off2 = BRD(has_min_score)},
    {.name = "boards.max_score", .type = T_SCORE, .min = SCORE_MIN, .max = SCORE_MAX, .off = BRD(max_score),
     .off2 = BRD(has_max_score)},
};

#define N_KEYS(t) (sizeof(t) / sizeof((t)[0]))

/* ------------------------------------------------------------------------
 * Values from text: defaults and environment variables, and YAML scalars.
 * ------------------------------------------------------------------------ */

/* 0: ok; -1: not a decimal integer; -2: beyond long long. */
static int parse_decimal(const char *s, long long *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '\0')
        return -1;
    for (const char *q = p; *q; q++)
        if (!is_digit(*q))
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return -2;
    *out = v;
    return 0;
}

static bool check_string(const conf_key_t *k, const char *s, char *why, size_t n)
{
    long long len = (long long)strlen(s);
    if (len < k->min || (k->max > 0 && len > k->max)) {
        if (k->max > 0)
            snprintf(why, n, "must be %lld to %lld bytes long", k->min, k->max);
        else if (k->min <= 1)
            snprintf(why, n, "must not be empty");
        else
            snprintf(why, n, "must be at least %lld bytes long", k->min);
        return false;
    }
    return k->check == NULL || k->check(s, why, n);
}

/* Add one bearer key given at `origin` (an environment variable); the same key twice with the
 * same role is harmless. */
static bool add_key(rankd_config_t *cfg, const char *key, role_t role, const char *origin, char *why, size_t n)
{
    for (size_t i = 0; i < cfg->n_keys; i++) {
        if (strcmp(cfg->keys[i].key, key) == 0) {
            if (cfg->keys[i].role == role)
                return true;
            snprintf(why, n, "this key is already configured with role %s", role_names[cfg->keys[i].role]);
            return false;
        }
    }
    cfg->keys = cfg_realloc(cfg->keys, (cfg->n_keys + 1) * sizeof *cfg->keys);
    cfg->keys[cfg->n_keys] = (config_key_t){.key = cfg_strdup(key), .role = role, .origin = cfg_strdup(origin)};
    cfg->n_keys++;
    return true;
}

static void free_fields(const conf_key_t *table, size_t n, void *base);

static void free_value(const conf_key_t *k, void *base)
{
    bool secret = (k->flags & F_SECRET) != 0;
    switch (k->type) {
    case T_STR:
    case T_LISTEN:
    case T_JSON:
        free_str(*FIELD(base, k->off, char *), secret);
        *FIELD(base, k->off, char *) = NULL;
        break;
    case T_LIST:
        list_free(FIELD(base, k->off, char **), FIELD(base, k->off2, size_t), secret);
        break;
    case T_KEYS: {
        config_key_t **keys = FIELD(base, k->off, config_key_t *);
        size_t *nk = FIELD(base, k->off2, size_t);
        for (size_t i = 0; i < *nk; i++) {
            free_fields(key_item_keys, N_KEYS(key_item_keys), &(*keys)[i]);
            free((*keys)[i].origin);
        }
        free(*keys);
        *keys = NULL;
        *nk = 0;
        break;
    }
    case T_BOARDS: {
        config_board_t **boards = FIELD(base, k->off, config_board_t *);
        size_t *nb = FIELD(base, k->off2, size_t);
        for (size_t i = 0; i < *nb; i++)
            free_fields(board_keys, N_KEYS(board_keys), &(*boards)[i]);
        free(*boards);
        *boards = NULL;
        *nb = 0;
        break;
    }
    default:
        break;
    }
}

static void free_fields(const conf_key_t *table, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++)
        free_value(&table[i], base);
}

/*
 * Set the field of `k` in `base` from `text` (NUL-terminated). On failure
 * leaves the field as it was and writes the reason to `why`.
 */
static bool set_text(const conf_key_t *k, void *base, const char *text, char *why, size_t n)
{
    char sb[64];
    long long v = 0;
    int r;

    switch (k->type) {
    case T_INT:
    case T_SIZE:
    case T_SCORE:
        r = parse_decimal(text, &v);
        if (r == -1) {
            snprintf(why, n, "expected an integer, got \"%s\"", shown(text, sb, sizeof sb));
            return false;
        }
        if (r == -2 || v < k->min || v > k->max) {
            snprintf(why, n, "%s is out of range (%lld..%lld)", shown(text, sb, sizeof sb), k->min, k->max);
            return false;
        }
        if (k->type == T_INT)
            *FIELD(base, k->off, int) = (int)v;
        else if (k->type == T_SIZE)
            *FIELD(base, k->off, size_t) = (size_t)v;
        else {
            *FIELD(base, k->off, int64_t) = (int64_t)v;
            *FIELD(base, k->off2, bool) = true;
        }
        return true;

    case T_BOOL:
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
            snprintf(why, n, "expected true or false, got \"%s\"", shown(text, sb, sizeof sb));
            return false;
        }
        *FIELD(base, k->off, bool) = text[0] == 't';
        return true;

    case T_ENUM: {
        int e;
        if (!k->parse(text, &e)) {
            snprintf(why, n, "expected one of %s, got \"%s\"", k->choices, shown(text, sb, sizeof sb));
            return false;
        }
        *FIELD(base, k->off, int) = e;
        return true;
    }

    case T_STR: {
        char **field = FIELD(base, k->off, char *);
        if ((k->flags & F_NULLABLE) && text[0] == '\0') {
            free_str(*field, k->flags & F_SECRET);
            *field = NULL;
            return true;
        }
        if (!check_string(k, text, why, n))
            return false;
        free_str(*field, k->flags & F_SECRET);
        *field = cfg_strdup(text);
        return true;
    }

    case T_LISTEN: {
        const char *host;
        size_t hl;
        int port;
        if (!hostport_split(text, strlen(text), true, &host, &hl, &port)) {
            snprintf(why, n, "expected host:port (or [address]:port) with a port of 1..65535, got \"%s\"",
                     shown(text, sb, sizeof sb));
            return false;
        }
        free(*FIELD(base, k->off, char *));
        *FIELD(base, k->off, char *) = cfg_strndup(host, hl);
        *FIELD(base, k->off2, int) = port;
        return true;
    }

    case T_LIST: {
        char **items = NULL;
        size_t n_items = 0;
        const char *p = text;
        for (;;) {
            const char *end = strchr(p, k->sep);
            size_t len = end ? (size_t)(end - p) : strlen(p);
            const char *s = p, *e = p + len;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e > s) {
                char *item = cfg_strndup(s, (size_t)(e - s));
                if (!check_string(k, item, why, n)) {
                    free_str(item, k->flags & F_SECRET);
                    list_free(&items, &n_items, k->flags & F_SECRET);
                    return false;
                }
                list_push(&items, &n_items, item);
            }
            if (end == NULL)
                break;
            p = end + 1;
        }
        free_value(k, base);
        *FIELD(base, k->off, char **) = items;
        *FIELD(base, k->off2, size_t) = n_items;
        return true;
    }

    case T_ADDKEY:
        /* the same rules as a key in the file: key_item_keys[0] */
        if (!check_string(&key_item_keys[0], text, why, n))
            return false;
        return add_key(base, text, (role_t)k->min, k->env, why, n);

    case T_KEYS:
    case T_BOARDS:
    case T_JSON:
        break;
    }
    abort(); /* the table gave a text default to a YAML-only type */
}

/* Defaults are written in the table as text; a default that fails is a bug. */
static void apply_defaults(const conf_key_t *table, size_t n, void *base)
{
    char why[WHY_MAX];
    for (size_t i = 0; i < n; i++) {
        const conf_key_t *k = &table[i];
        if (k->def_fn != NULL) {
            *FIELD(base, k->off, int) = k->def_fn();
        } else if (k->def != NULL && !set_text(k, base, k->def, why, sizeof why)) {
            fprintf(stderr, "rankd: bad built-in default for %s: %s\n", k->name, why);
            abort();
        }
    }
}

/* ------------------------------------------------------------------------
 * Error reporting.
 * ------------------------------------------------------------------------ */

typedef struct {
    FILE *errs;
    const char *path;
    unsigned n_errors;
    yaml_document_t *doc;
    bool given[N_KEYS(config_keys)]; /* the file or the environment set config_keys[i] */
    yaml_mark_t mark[N_KEYS(config_keys)];  /* where the file gave config_keys[i] (the document is freed after) */
    bool in_file[N_KEYS(config_keys)];
    bool from_env[N_KEYS(config_keys)];           /* the environment set it last */
} load_ctx_t;

__attribute__((format(printf, 3, 4))) static void err_at(load_ctx_t *ctx, const yaml_node_t *node,
                                                         const char *fmt, ...)
{
    va_list ap;
    fprintf(ctx->errs, "%s:%zu:%zu: ", ctx->path, node->start_mark.line + 1, node->start_mark.column + 1);
    va_start(ap, fmt);
    vfprintf(ctx->errs, fmt, ap);
    va_end(ap);
    fputc('\n', ctx->errs);
    ctx->n_errors++;
}

/* An error with no position: "where: message". */
__attribute__((format(printf, 3, 4))) static void err_plain(load_ctx_t *ctx, const char *where,
                                                            const char *fmt, ...)
{
    va_list ap;
    fprintf(ctx->errs, "%s: ", where);
    va_start(ap, fmt);
    vfprintf(ctx->errs, fmt, ap);
    va_end(ap);
    fputc('\n', ctx->errs);
    ctx->n_errors++;
}

/* ------------------------------------------------------------------------
 * Values from YAML nodes.
 * ------------------------------------------------------------------------ */

static yaml_node_t *node_at(load_ctx_t *ctx, int index)
{
    return yaml_document_get_node(ctx->doc, index);
}

static const char *scalar(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

static bool is_plain(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* A YAML null: an empty or "~"/"null" plain scalar. */
static bool is_null(const yaml_node_t *node)
{
    if (!is_plain(node))
        return false;
    const char *s = scalar(node);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static const char *node_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        if (is_null(node))
            return "null";
        return is_plain(node) ? "a scalar" : "a quoted string";
    default:
        return "nothing";
    }
}

static bool has_nul(const yaml_node_t *node)
{
    return memchr(node->data.scalar.value, 0, node->data.scalar.length) != NULL;
}

/* The key node of an earlier pair of `map` whose key equals `pair`'s, or NULL. */
static yaml_node_t *earlier_key(load_ctx_t *ctx, const yaml_node_t *map, const yaml_node_pair_t *pair)
{
    const yaml_node_t *kn = node_at(ctx, pair->key);
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
        yaml_node_t *other = node_at(ctx, p->key);
        if (other->type == YAML_SCALAR_NODE && other->data.scalar.length == kn->data.scalar.length &&
            memcmp(other->data.scalar.value, kn->data.scalar.value, kn->data.scalar.length) == 0)
            return other;
    }
    return NULL;
}

/* Value node of `name` in mapping `map`, or NULL. */
static yaml_node_t *map_get(load_ctx_t *ctx, const yaml_node_t *map, const char *name)
{
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node_at(ctx, p->key);
        if (kn->type == YAML_SCALAR_NODE && strcmp(scalar(kn), name) == 0 && !has_nul(kn))
            return node_at(ctx, p->value);
    }
    return NULL;
}

static void parse_mapping(load_ctx_t *ctx, const conf_key_t *table, size_t n, yaml_node_t *map,
                          const char *prefix, void *base);

/* Set a scalar-typed key from a scalar node. */
static void set_scalar_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    char why[WHY_MAX];
    const char *want;

    switch (k->type) {
    case T_INT:
    case T_SIZE:
    case T_SCORE:
        want = "an integer";
        break;
    case T_BOOL:
        want = "true or false";
        break;
    case T_ENUM:
        want = "one of ";
        break;
    default:
        want = "a string";
        break;
    }
    bool numeric = k->type == T_INT || k->type == T_SIZE || k->type == T_SCORE || k->type == T_BOOL;
    if (node->type != YAML_SCALAR_NODE || (numeric && !is_plain(node)) ||
        (is_null(node) && !(k->flags & F_NULLABLE))) {
        err_at(ctx, node, "%s: expected %s%s, got %s", k->name, want, k->type == T_ENUM ? k->choices : "",
               node_kind(node));
        return;
    }
    if (has_nul(node)) {
        err_at(ctx, node, "%s: must not contain NUL bytes", k->name);
        return;
    }
    if (!set_text(k, base, is_null(node) ? "" : scalar(node), why, sizeof why))
        err_at(ctx, node, "%s: %s", k->name, why);
}

static void set_list_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    char why[WHY_MAX];
    char **items = NULL;
    size_t n_items = 0;
    unsigned before = ctx->n_errors;
    bool secret = (k->flags & F_SECRET) != 0;

    if (node->type != YAML_SEQUENCE_NODE && !is_null(node)) {
        err_at(ctx, node, "%s: expected a list, got %s", k->name, node_kind(node));
        return;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
            yaml_node_t *item = node_at(ctx, *it);
            if (item->type != YAML_SCALAR_NODE || is_null(item)) {
                err_at(ctx, item, "%s: expected a string, got %s", k->name, node_kind(item));
            } else if (has_nul(item)) {
                err_at(ctx, item, "%s: must not contain NUL bytes", k->name);
            } else if (!check_string(k, scalar(item), why, sizeof why)) {
                err_at(ctx, item, "%s: %s", k->name, why);
            } else {
                list_push(&items, &n_items, cfg_strdup(scalar(item)));
            }
        }
    }
    if (ctx->n_errors != before) {
        list_free(&items, &n_items, secret);
        return;
    }
    free_value(k, base);
    *FIELD(base, k->off, char **) = items;
    *FIELD(base, k->off2, size_t) = n_items;
}

/* "file:line:column" of `mark` in the file being loaded, as the errors say it (malloc'd). */
static char *mark_origin(const load_ctx_t *ctx, yaml_mark_t mark)
{
    char origin[PATH_MAX + 48];
    snprintf(origin, sizeof origin, "%s:%zu:%zu", ctx->path, mark.line + 1, mark.column + 1);
    return cfg_strdup(origin);
}

/* auth.keys: every item a {key, role} mapping; a key may appear once. */
static void set_keys_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    rankd_config_t *cfg = base;
    size_t *first_line;

    free_value(k, base);
    if (is_null(node))
        return;
    if (node->type != YAML_SEQUENCE_NODE) {
        err_at(ctx, node, "%s: expected a list, got %s", k->name, node_kind(node));
        return;
    }
    first_line = cfg_calloc((size_t)(node->data.sequence.items.top - node->data.sequence.items.start),
                            sizeof *first_line);
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = node_at(ctx, *it), *key_node;
        config_key_t ck = {0};
        unsigned before = ctx->n_errors;

        if (item->type != YAML_MAPPING_NODE) {
            err_at(ctx, item, "%s: expected a mapping with key and role, got %s", k->name, node_kind(item));
            continue;
        }
        parse_mapping(ctx, key_item_keys, N_KEYS(key_item_keys), item, k->name, &ck);
        key_node = map_get(ctx, item, "key");
        if (key_node == NULL)
            err_at(ctx, item, "%s: entry is missing \"key\"", k->name);
        if (map_get(ctx, item, "role") == NULL)
            err_at(ctx, item, "%s: entry is missing \"role\"", k->name);
        for (size_t i = 0; ctx->n_errors == before && i < cfg->n_keys; i++) {
            if (strcmp(cfg->keys[i].key, ck.key) == 0)
                err_at(ctx, key_node, "%s: duplicate key (first at line %zu)", k->name, first_line[i]);
        }
        if (ctx->n_errors != before) {
            free_fields(key_item_keys, N_KEYS(key_item_keys), &ck);
            continue;
        }
        first_line[cfg->n_keys] = key_node->start_mark.line + 1;
        ck.origin = mark_origin(ctx, key_node->start_mark);
        cfg->keys = cfg_realloc(cfg->keys, (cfg->n_keys + 1) * sizeof *cfg->keys);
        cfg->keys[cfg->n_keys++] = ck;
    }
    free(first_line);
}

/* --- metadata: a YAML mapping as compact JSON --- */

typedef struct {
    load_ctx_t *ctx;
    const char *name;
    size_t budget; /* nodes left: every node costs at least one byte of JSON */
    bool failed;
} meta_ctx_t;

static json_t *json_checked(json_t *j)
{
    if (j == NULL)
        abort();
    return j;
}

/* A YAML-core integer or float in plain style: [-+]?digits[.digits][e[-+]digits]. */
static bool looks_numeric(const char *s, bool *is_int)
{
    const char *p = s;
    bool digits = false;
    *is_int = true;
    if (*p == '-' || *p == '+')
        p++;
    while (is_digit(*p))
        p++, digits = true;
    if (*p == '.') {
        *is_int = false;
        p++;
        while (is_digit(*p))
            p++, digits = true;
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        *is_int = false;
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!is_digit(*p))
            return false;
        while (is_digit(*p))
            p++;
    }
    return *p == '\0';
}

static json_t *scalar_to_json(meta_ctx_t *m, yaml_node_t *node)
{
    const char *s = scalar(node);
    size_t len = node->data.scalar.length;
    bool is_int;

    if (has_nul(node)) {
        err_at(m->ctx, node, "%s: must not contain NUL bytes", m->name);
        return NULL;
    }
    if (is_plain(node)) {
        if (is_null(node))
            return json_checked(json_null());
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
            return json_checked(json_true());
        if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
            return json_checked(json_false());
        if (looks_numeric(s, &is_int)) {
            errno = 0;
            if (is_int) {
                long long v = strtoll(s, NULL, 10);
                if (errno != ERANGE)
                    return json_checked(json_integer(v));
            } else {
                double d = strtod(s, NULL);
                if (errno != ERANGE && isfinite(d))
                    return json_checked(json_real(d));
            }
            err_at(m->ctx, node, "%s: number out of range", m->name);
            return NULL;
        }
    }
    json_t *j = json_stringn(s, len);
    if (j == NULL)
        err_at(m->ctx, node, "%s: not valid UTF-8", m->name);
    return j;
}

static json_t *node_to_json(meta_ctx_t *m, yaml_node_t *node)
{
    if (m->budget == 0) {
        if (!m->failed)
            err_at(m->ctx, node, "%s: longer than %d bytes as compact JSON", m->name, METADATA_MAX);
        m->failed = true;
        return NULL;
    }
    m->budget--;

    switch (node->type) {
    case YAML_SCALAR_NODE:
        return scalar_to_json(m, node);

    case YAML_SEQUENCE_NODE: {
        json_t *arr = json_checked(json_array());
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
            json_t *v = node_to_json(m, node_at(m->ctx, *it));
            if (v == NULL)
                m->failed = true;
            else if (json_array_append_new(arr, v) != 0)
                abort();
        }
        return arr;
    }

    case YAML_MAPPING_NODE: {
        json_t *obj = json_checked(json_object());
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = node_at(m->ctx, p->key), *first;
            char sb[64];
            if (kn->type != YAML_SCALAR_NODE) {
                err_at(m->ctx, kn, "%s: keys must be strings, got %s", m->name, node_kind(kn));
                m->failed = true;
                continue;
            }
            if (has_nul(kn)) {
                err_at(m->ctx, kn, "%s: keys must not contain NUL bytes", m->name);
                m->failed = true;
                continue;
            }
            if ((first = earlier_key(m->ctx, node, p)) != NULL) {
                err_at(m->ctx, kn, "%s: duplicate key \"%s\" (first at line %zu)", m->name,
                       shown(scalar(kn), sb, sizeof sb), first->start_mark.line + 1);
                m->failed = true;
                continue;
            }
            json_t *v = node_to_json(m, node_at(m->ctx, p->value));
            if (v == NULL) {
                m->failed = true;
                continue;
            }
            if (json_object_set_new(obj, scalar(kn), v) != 0) {
                err_at(m->ctx, kn, "%s: key is not valid UTF-8", m->name);
                m->failed = true;
            }
        }
        return obj;
    }

    default:
        m->failed = true;
        return NULL;
    }
}

static void set_json_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    char **field = FIELD(base, k->off, char *);
    meta_ctx_t m = {.ctx = ctx, .name = k->name, .budget = METADATA_MAX + 1, .failed = false};

    free(*field);
    *field = NULL;
    if (is_null(node))
        return;
    if (node->type != YAML_MAPPING_NODE) {
        err_at(ctx, node, "%s: expected a mapping, got %s", k->name, node_kind(node));
        return;
    }
    json_t *obj = node_to_json(&m, node);
    if (obj != NULL && !m.failed) {
        char *text = json_text_dup(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text == NULL)
            abort();
        size_t len = strlen(text);
        if (len > METADATA_MAX)
            err_at(ctx, node, "%s: %zu bytes as compact JSON, at most %d", k->name, len, METADATA_MAX);
        else
            *field = cfg_strdup(text);
        free(text);
    }
    json_decref(obj);
}

/* boards: every item a board definition; an id may appear once. */
static void set_boards_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    rankd_config_t *cfg = base;
    size_t *first_line;

    free_value(k, base);
    if (is_null(node))
        return;
    if (node->type != YAML_SEQUENCE_NODE) {
        err_at(ctx, node, "%s: expected a list, got %s", k->name, node_kind(node));
        return;
    }
    first_line = cfg_calloc((size_t)(node->data.sequence.items.top - node->data.sequence.items.start),
                            sizeof *first_line);
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = node_at(ctx, *it), *id_node, *max_node;
        config_board_t b = {0};
        unsigned before = ctx->n_errors;
        char sb[80];

        if (item->type != YAML_MAPPING_NODE) {
            err_at(ctx, item, "%s: expected a mapping with id and title, got %s", k->name, node_kind(item));
            continue;
        }
        apply_defaults(board_keys, N_KEYS(board_keys), &b);
        parse_mapping(ctx, board_keys, N_KEYS(board_keys), item, k->name, &b);
        id_node = map_get(ctx, item, "id");
        if (id_node == NULL)
            err_at(ctx, item, "%s: entry is missing \"id\"", k->name);
        if (map_get(ctx, item, "title") == NULL)
            err_at(ctx, item, "%s: entry is missing \"title\"", k->name);
        if (b.has_min_score && b.has_max_score && b.min_score > b.max_score) {
            max_node = map_get(ctx, item, "max_score");
            err_at(ctx, max_node, "%s: max_score is less than min_score", k->name);
        }
        for (size_t i = 0; b.id != NULL && id_node != NULL && i < cfg->n_boards; i++) {
            if (strcmp(cfg->boards[i].id, b.id) == 0)
                err_at(ctx, id_node, "%s: duplicate board id \"%s\" (first at line %zu)", k->name,
                       shown(b.id, sb, sizeof sb), first_line[i]);
        }
        if (ctx->n_errors != before) {
            free_fields(board_keys, N_KEYS(board_keys), &b);
            continue;
        }
        first_line[cfg->n_boards] = id_node->start_mark.line + 1;
        cfg->boards = cfg_realloc(cfg->boards, (cfg->n_boards + 1) * sizeof *cfg->boards);
        cfg->boards[cfg->n_boards++] = b;
    }
    free(first_line);
}

static void set_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    switch (k->type) {
    case T_LIST:
        set_list_node(ctx, k, base, node);
        break;
    case T_KEYS:
        set_keys_node(ctx, k, base, node);
        break;
    case T_BOARDS:
        set_boards_node(ctx, k, base, node);
        break;
    case T_JSON:
        set_json_node(ctx, k, base, node);
        break;
    case T_ADDKEY:
        abort(); /* environment only; find_key never returns it */
    default:
        set_scalar_node(ctx, k, base, node);
        break;
    }
}

static const conf_key_t *find_key(const conf_key_t *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!(table[i].flags & F_ENV_ONLY) && strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

/* True when `name` is a section: the prefix of some key's dotted name. */
static bool is_section(const conf_key_t *table, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (!(table[i].flags & F_ENV_ONLY) && strncmp(table[i].name, name, len) == 0 && table[i].name[len] == '.')
            return true;
    return false;
}

/*
 * Walk mapping `map` whose keys are named relative to `prefix` (NULL at the
 * top level), setting the fields of `base` that `table` names.
 */
static void parse_mapping(load_ctx_t *ctx, const conf_key_t *table, size_t n, yaml_node_t *map,
                          const char *prefix, void *base)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = node_at(ctx, p->key), *vn = node_at(ctx, p->value), *first;
        char full[160], sb[64];
        const conf_key_t *k;

        if (kn->type != YAML_SCALAR_NODE) {
            err_at(ctx, kn, "expected a key, got %s", node_kind(kn));
            continue;
        }
        if ((first = earlier_key(ctx, map, p)) != NULL) {
            err_at(ctx, kn, "duplicate key \"%s\" (first at line %zu)", shown(scalar(kn), sb, sizeof sb),
                   first->start_mark.line + 1);
            continue;
        }
        int len = snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", scalar(kn));
        if (!has_nul(kn) && len > 0 && (size_t)len < sizeof full) {
            if ((k = find_key(table, n, full)) != NULL) {
                if (table == config_keys) {
                    ctx->given[k - config_keys] = true;
                    ctx->mark[k - config_keys] = vn->start_mark;
                    ctx->in_file[k - config_keys] = true;
                }
                set_node(ctx, k, base, vn);
                continue;
            }
            if (is_section(table, n, full)) {
                if (vn->type == YAML_MAPPING_NODE)
                    parse_mapping(ctx, table, n, vn, full, base);
                else if (!is_null(vn))
                    err_at(ctx, vn, "%s: expected a mapping, got %s", full, node_kind(vn));
                continue;
            }
        }
        if (prefix != NULL)
            err_at(ctx, kn, "unknown key \"%s\" in %s", shown(scalar(kn), sb, sizeof sb), prefix);
        else
            err_at(ctx, kn, "unknown key \"%s\"", shown(scalar(kn), sb, sizeof sb));
    }
}

/* ------------------------------------------------------------------------
 * The file, the environment, the whole.
 * ------------------------------------------------------------------------ */

static void report_parser_error(load_ctx_t *ctx, const yaml_parser_t *parser)
{
    if (parser->error == YAML_MEMORY_ERROR)
        abort();
    if (parser->error == YAML_READER_ERROR) {
        err_plain(ctx, ctx->path, "%s at byte %zu", parser->problem ? parser->problem : "unreadable input",
                  parser->problem_offset);
        return;
    }
    fprintf(ctx->errs, "%s:%zu:%zu: %s", ctx->path, parser->problem_mark.line + 1,
            parser->problem_mark.column + 1, parser->problem ? parser->problem : "syntax error");
    if (parser->context != NULL)
        fprintf(ctx->errs, " (%s at line %zu)", parser->context, parser->context_mark.line + 1);
    fputc('\n', ctx->errs);
    ctx->n_errors++;
}

/* Parse the YAML file into `cfg`. False when it could not be read at all. */
static bool load_file(load_ctx_t *ctx, rankd_config_t *cfg)
{
    yaml_parser_t parser;
    yaml_document_t doc, next;
    yaml_node_t *root;
    bool read_ok = false;

    FILE *f = fopen(ctx->path, "rb");
    if (f == NULL) {
        err_plain(ctx, ctx->path, "cannot open: %s", strerror(errno));
        return false;
    }
    if (!yaml_parser_initialize(&parser))
        abort();
    yaml_parser_set_input_file(&parser, f);

    if (!yaml_parser_load(&parser, &doc)) {
        report_parser_error(ctx, &parser);
        goto out;
    }
    read_ok = true;
    ctx->doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root != NULL) {
        if (root->type == YAML_MAPPING_NODE)
            parse_mapping(ctx, config_keys, N_KEYS(config_keys), root, NULL, cfg);
        else if (!is_null(root))
            err_at(ctx, root, "expected a mapping at the top level, got %s", node_kind(root));

        /* An empty document marks the end of the stream; anything else is a second document. */
        if (!yaml_parser_load(&parser, &next)) {
            report_parser_error(ctx, &parser);
            read_ok = false;
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&next);
            if (r2 != NULL)
                err_at(ctx, r2, "only one YAML document is allowed");
            yaml_document_delete(&next);
        }
    }
    yaml_document_delete(&doc);
    ctx->doc = NULL;
out:
    yaml_parser_delete(&parser);
    fclose(f);
    return read_ok;
}

static void apply_env(load_ctx_t *ctx, rankd_config_t *cfg)
{
    char why[WHY_MAX];
    for (size_t i = 0; i < N_KEYS(config_keys); i++) {
        const conf_key_t *k = &config_keys[i];
        const char *v = k->env ? getenv(k->env) : NULL;
        if (v == NULL)
            continue;
        ctx->given[i] = true;
        ctx->from_env[i] = true;
        if (!set_text(k, cfg, v, why, sizeof why))
            err_plain(ctx, k->env, "%s", why);
    }
}

/* One weight per replica, or none: the error points at the weights where they were given. */
static void check_weights(load_ctx_t *ctx, const rankd_config_t *cfg)
{
    if (cfg->n_pg_replica_weights == 0 || cfg->n_pg_replica_weights == cfg->n_pg_replicas)
        return;
    size_t i = (size_t)(find_key(config_keys, N_KEYS(config_keys), "postgres.replica_weights") - config_keys);
#define WEIGHTS_MISMATCH "postgres.replica_weights: %zu weight(s) for %zu replica(s); give one per replica"
    if (ctx->in_file[i] && !ctx->from_env[i]) {
        yaml_node_t at = {.start_mark = ctx->mark[i]};
        err_at(ctx, &at, WEIGHTS_MISMATCH, cfg->n_pg_replica_weights, cfg->n_pg_replicas);
    }
    else
        err_plain(ctx, ctx->from_env[i] ? "RANKD_POSTGRES_REPLICA_WEIGHTS" : ctx->path, WEIGHTS_MISMATCH,
                  cfg->n_pg_replica_weights, cfg->n_pg_replicas);
#undef WEIGHTS_MISMATCH
}

/* Required keys that neither the file nor the environment tried to set. */
static void check_required(load_ctx_t *ctx, rankd_config_t *cfg)
{
    for (size_t i = 0; i < N_KEYS(config_keys); i++) {
        const conf_key_t *k = &config_keys[i];
        if ((k->flags & F_REQUIRED) && !ctx->given[i] && *FIELD(cfg, k->off, char *) == NULL)
            err_plain(ctx, ctx->path, "%s is required (in the file or in %s)", k->name, k->env);
    }
}

/* Where the file or the environment gave the key `name` ("file:line:column" or the variable,
 * malloc'd), NULL when neither did. */
static char *origin_of(const load_ctx_t *ctx, const char *name)
{
    size_t i = (size_t)(find_key(config_keys, N_KEYS(config_keys), name) - config_keys);
    if (!ctx->given[i])
        return NULL;
    if (ctx->from_env[i] || !ctx->in_file[i])
        return cfg_strdup(config_keys[i].env);
    return mark_origin(ctx, ctx->mark[i]);
}

/*
 * Returns a configuration owned by the caller (free with config_free), or
 * NULL after printing every error to `errs` (stderr when NULL).
 */
rankd_config_t *config_load(const char *path, FILE *errs)
{
    load_ctx_t ctx = {.errs = errs ? errs : stderr, .path = path, .n_errors = 0, .doc = NULL, .given = {0}};
    if (path == NULL) {
        fprintf(ctx.errs, "rankd: no configuration file given\n");
        return NULL;
    }

    rankd_config_t *cfg = cfg_calloc(1, sizeof *cfg);
    cfg->path = cfg_strdup(path);
    apply_defaults(config_keys, N_KEYS(config_keys), cfg);
    bool read_ok = load_file(&ctx, cfg);
    apply_env(&ctx, cfg);

    if (read_ok)
        check_required(&ctx, cfg);
    if (read_ok)
        check_weights(&ctx, cfg);
    cfg->cursor_secret_given =
        ctx.given[find_key(config_keys, N_KEYS(config_keys), "auth.cursor_secret") - config_keys];
    cfg->cursor_secret_origin = origin_of(&ctx, "auth.cursor_secret");
    cfg->cursor_secret_previous_origin = origin_of(&ctx, "auth.cursor_secret_previous");
    /* From here on a key is its digest: the plaintext that a read of the memory could show is gone.
     * What config_check_secrets() will say of it is judged first. */
    for (size_t i = 0; i < cfg->n_keys; i++) {
        cfg->keys[i].flaw = secret_flaw(cfg->keys[i].key);
        SHA256((const unsigned char *)cfg->keys[i].key, strlen(cfg->keys[i].key), cfg->keys[i].digest);
        free_str(cfg->keys[i].key, true);
        cfg->keys[i].key = NULL;
    }
    cfg->trusted_nets = cfg_calloc(cfg->n_trusted_proxies + 1, sizeof *cfg->trusted_nets);
    for (size_t i = 0; i < cfg->n_trusted_proxies; i++)
        if (!netaddr_cidr_parse(cfg->trusted_proxies[i], &cfg->trusted_nets[i]))
            ctx.n_errors++; /* cannot happen: check_cidr refused it, with its message */

    if (ctx.n_errors > 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Frees everything config_load allocated; secrets are wiped. NULL is a no-op. */
void config_free(rankd_config_t *cfg)
{
    if (cfg == NULL)
        return;
    free_fields(config_keys, N_KEYS(config_keys), cfg);
    free(cfg->trusted_nets);
    free(cfg->cursor_secret_origin);
    free(cfg->cursor_secret_previous_origin);
    free(cfg->path);
    free(cfg);
}

#define GEN_KEY_HINT "generate one with `rankd config gen-key`"

unsigned config_check_secrets(const rankd_config_t *cfg, FILE *errs)
{
    if (cfg->development && secret_host_is_loopback(cfg->listen_host))
        return 0;
    unsigned found = 0;
    if (!cfg->cursor_secret_given) {
        fprintf(errs, "%s: auth.cursor_secret is not set (the built-in one is published); %s\n", cfg->path,
                GEN_KEY_HINT);
        found++;
    }
    const char *flaw;
    if (cfg->cursor_secret_given && (flaw = secret_flaw(cfg->cursor_secret)) != NULL) {
        fprintf(errs, "%s: auth.cursor_secret %s; %s\n", cfg->cursor_secret_origin, flaw, GEN_KEY_HINT);
        found++;
    }
    if (cfg->cursor_secret_previous && (flaw = secret_flaw(cfg->cursor_secret_previous)) != NULL) {
        fprintf(errs, "%s: auth.cursor_secret_previous %s; %s\n", cfg->cursor_secret_previous_origin, flaw,
                GEN_KEY_HINT);
        found++;
    }
    for (size_t i = 0; i < cfg->n_keys; i++) {
        if (!cfg->keys[i].flaw)
            continue;
        fprintf(errs, "%s: auth.keys: this %s key %s; %s\n", cfg->keys[i].origin, role_names[cfg->keys[i].role],
                cfg->keys[i].flaw, GEN_KEY_HINT);
        found++;
    }
    if (found)
        fprintf(errs, "%s: %u unsafe secret(s) outside the development configuration (`development: true` "
                      "accepts them only while listen is a loopback address)\n", cfg->path, found);
    return found;
}

/* ------------------------------------------------------------------------
 * Queries on a loaded configuration.
 * ------------------------------------------------------------------------ */

role_t config_key_role(const rankd_config_t *cfg, const char *key, int *index)
{
    if (index)
        *index = -1;
    if (cfg == NULL || key == NULL)
        return ROLE_NONE;
    unsigned char given[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, strlen(key), given);
    /* Every key is compared, and the best role chosen without a branch on the outcome. */
    unsigned best = ROLE_NONE;
    int which = -1;
    for (size_t i = 0; i < cfg->n_keys; i++) {
        unsigned role = (unsigned)cfg->keys[i].role;
        unsigned take = (unsigned)(CRYPTO_memcmp(cfg->keys[i].digest, given, sizeof given) == 0) & (unsigned)(role > best);
        unsigned mask = 0u - take;
        best = (role & mask) | (best & ~mask);
        which = (int)(((unsigned)i & mask) | ((unsigned)which & ~mask));
    }
    OPENSSL_cleanse(given, sizeof given);
    if (index)
        *index = which;
    return (role_t)best;
}

bool config_cors_allowed(const rankd_config_t *cfg, const char *origin)
{
    if (cfg == NULL || origin == NULL)
        return false;
    for (size_t i = 0; i < cfg->n_cors_origins; i++) {
        const char *o = cfg->cors_origins[i];
        if (strcmp(o, "*") == 0 || strcasecmp(o, origin) == 0)
            return true;
    }
    return false;
}

bool config_cors_any(const rankd_config_t *cfg)
{
    for (size_t i = 0; cfg && i < cfg->n_cors_origins; i++)
        if (strcmp(cfg->cors_origins[i], "*") == 0)
            return true;
    return false;
}

int config_retention_windows(const rankd_config_t *cfg, const char *board)
{
    size_t len = strlen(board);
    for (size_t i = 0; i < cfg->n_retention_board_windows; i++) {
        const char *item = cfg->retention_board_windows[i];
        if (strncmp(item, board, len) == 0 && item[len] == '=')
            return atoi(item + len + 1);
    }
    return cfg->retention_windows;
}
