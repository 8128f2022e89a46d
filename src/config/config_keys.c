/*
 * config/config_keys.c — every setting rankd has, one row each (as Redis's static_configs[] and
 * PgBouncer's bouncer_params[]): its dotted YAML name, type, bounds, default, environment
 * variable and the field it fills; with the parsers of its names and the checks of its text.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getaffinity */
#endif

#include "config/config_internal.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "config/config.h"
#include "util/hostport.h"
#include "util/redis_url.h"
#include "util/secret_scrub.h"

_Static_assert(sizeof(role_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(log_level_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(metrics_auth_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(board_sort_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(board_op_t) == sizeof(int), "enum fields are written as int");
_Static_assert(sizeof(board_reset_t) == sizeof(int), "enum fields are written as int");

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

const char *const config_role_names[4] = {
    [ROLE_NONE] = NULL, [ROLE_READ] = "read", [ROLE_WRITE] = "write", [ROLE_ADMIN] = "admin"};

static bool parse_role(const char *s, int *out)
{
    return parse_names(config_role_names, sizeof config_role_names / sizeof config_role_names[0], s, out);
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
const char *cfg_shown(const char *s, char *buf, size_t n)
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

/*
 * A URI libpq reads other than it was meant: an '@' or '/' left unescaped in a user name or a
 * password makes libpq take the rest of the password for the host or the port, and quote it in
 * its connection errors. In a URI only one '@' may stand, before the first '/' past the scheme
 * (util/secret_scrub.h's user info as written, up to the last '@'). Nothing of `s` is echoed.
 */
static bool uri_as_meant(const char *s, char *why, size_t n)
{
    const char *ui;
    size_t len;
    if (!secret_uri_userinfo(s, &ui, &len) || (!memchr(ui, '@', len) && !memchr(ui, '/', len)))
        return true;
    snprintf(why, n, "a connection string libpq would misread: percent-encode each '@' and '/' in the user name and "
                     "password (and database name): '@' as %%40, '/' as %%2F, e.g. postgresql://user:p%%40ss%%2Fw@host/db");
    return false;
}

/* Every port libpq was given is digits (a list: comma-separated, an empty one the default). */
static bool ports_are_numbers(const PQconninfoOption *opts)
{
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "port") != 0 || !o->val)
            continue;
        for (const char *p = o->val; *p; p++)
            if (!(*p >= '0' && *p <= '9') && *p != ',' && *p != ' ')
                return false;
    }
    return true;
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
    if (!uri_as_meant(s, why, n))
        return false;
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(s, &err);
    if (opts) {
        bool ports = ports_are_numbers(opts);
        PQconninfoFree(opts);
        if (!ports)
            snprintf(why, n, "a connection string whose port is not a number; a '@' or '/' in a password must be "
                             "percent-encoded: '@' as %%40, '/' as %%2F");
        return ports;
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
        snprintf(why, n, "expected a weight from 1 to 1000, got \"%s\"", cfg_shown(s, sb, sizeof sb));
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
        snprintf(why, n, "expected board=windows (a board id, then 0 to 100000), got \"%s\"", cfg_shown(s, sb, sizeof sb));
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
    snprintf(why, n, "expected an address or a CIDR block (10.0.0.0/8, fd00::/8), got \"%s\"", cfg_shown(s, sb, sizeof sb));
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
        if (!(cfg_is_alnum(*p) || *p == '+' || *p == '-' || *p == '.'))
            goto bad;
    if (!hostport_split(sep + 3, strlen(sep + 3), false, &host, &hl, &port))
        goto bad;
    return true;
bad:
    snprintf(why, n, "expected \"*\" or scheme://host[:port], got \"%s\"", cfg_shown(s, sb, sizeof sb));
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
    bool ok = len >= 1 && len <= BOARD_ID_MAX && (cfg_is_digit(s[0]) || (s[0] >= 'a' && s[0] <= 'z'));
    for (size_t i = 1; ok && i < len; i++)
        ok = cfg_is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' || s[i] == '-';
    if (!ok) {
        char sb[80];
        snprintf(why, n, "expected 1 to 64 of [a-z0-9_-] starting with [a-z0-9], got \"%s\"",
                 cfg_shown(s, sb, sizeof sb));
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

/* Printable ASCII (0x21-0x7E, and space inside): an issuer, an audience or a claim's name, compared
 * byte for byte with a token's, and echoed in /readyz. */
static bool check_printable(const char *s, char *why, size_t n)
{
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7E) {
            snprintf(why, n, "must be printable ASCII");
            return false;
        }
    }
    return true;
}

/* Whether `host` (len bytes, IPv6 without its brackets) is a loopback name or address. */
static bool host_is_loopback(const char *host, size_t len)
{
    char h[64];
    if (len == 0 || len >= sizeof h)
        return false;
    memcpy(h, host, len);
    h[len] = '\0';
    if (strcasecmp(h, "localhost") == 0)
        return true;
    unsigned char a[16];
    if (inet_pton(AF_INET, h, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, h, a) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return memcmp(a, one, 16) == 0;
    }
    return false;
}

/* auth.issuers.jwks_url: where a provider's keys are fetched must be authenticated (https), so
 * that nobody on the path can swap them for keys of their own; plain http only to this host
 * (a stand-in provider in development and tests). */
static bool check_jwks_url(const char *s, char *why, size_t n)
{
    bool tls = strncasecmp(s, "https://", 8) == 0;
    if (!tls && strncasecmp(s, "http://", 7) != 0) {
        snprintf(why, n, "must be an https:// URL (the keys that sign player tokens must come authenticated)");
        return false;
    }
    const char *auth = s + (tls ? 8 : 7);
    size_t alen = strcspn(auth, "/?#");
    if (alen == 0 || memchr(auth, '@', alen) != NULL) {
        snprintf(why, n, "must name a host, and no user or password");
        return false;
    }
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p > 0x7E) {
            snprintf(why, n, "must not contain spaces or non-ASCII bytes");
            return false;
        }
    if (tls)
        return true;
    const char *host = auth;
    size_t hlen;
    if (*host == '[') {
        const char *close = memchr(host, ']', alen);
        if (close == NULL) {
            snprintf(why, n, "has an unclosed [ in its host");
            return false;
        }
        host++;
        hlen = (size_t)(close - host);
    } else {
        const char *colon = memchr(host, ':', alen);
        hlen = colon ? (size_t)(colon - host) : alen;
    }
    if (!host_is_loopback(host, hlen)) {
        snprintf(why, n, "must be https://: plain http:// is accepted for a loopback host only (localhost, "
                         "127.0.0.0/8, [::1]), where nobody on the path could swap the keys");
        return false;
    }
    return true;
}

#define CFG(f) offsetof(rankd_config_t, f)
#define BRD(f) offsetof(config_board_t, f)
#define KEY(f) offsetof(config_key_t, f)

#define INT_KEY(nm, lo, hi, dflt, ev, field) \
    {.name = nm, .type = T_INT, .min = lo, .max = hi, .def = dflt, .env = ev, .off = CFG(field)}
#define SIZE_KEY(nm, lo, hi, dflt, ev, field) \
    {.name = nm, .type = T_SIZE, .min = lo, .max = hi, .def = dflt, .env = ev, .off = CFG(field)}

const conf_key_t config_keys[] = {
    {.name = "development", .type = T_BOOL, .def = "false", .env = "RANKD_DEVELOPMENT", .off = CFG(development)},
    {.name = "listen", .type = T_LISTEN, .def = "127.0.0.1:8080", .env = "RANKD_LISTEN",
     .off = CFG(listen_host), .off2 = CFG(listen_port)},
    {.name = "worker_threads", .type = T_INT, .min = 1, .max = 64, .def_fn = online_cpus,
     .env = "RANKD_WORKER_THREADS", .off = CFG(worker_threads)},
    {.name = "log_level", .type = T_ENUM, .def = "info", .env = "RANKD_LOG_LEVEL", .off = CFG(log_level),
     .parse = parse_log_level, .choices = "debug, info, warn, error"},

    SIZE_KEY("http.body_limit", 1024, 67108864, "65536", "RANKD_BODY_LIMIT", body_limit),
    SIZE_KEY("http.batch_body_limit", 1024, 268435456, "2097152", "RANKD_BATCH_BODY_LIMIT", batch_body_limit),
    SIZE_KEY("http.import_body_limit", 1024, 68719476736, "1073741824", "RANKD_IMPORT_BODY_LIMIT", import_body_limit),
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
    SIZE_KEY("http.send_buffer_bytes", 0, 67108864, "262144", "RANKD_SEND_BUFFER_BYTES", send_buffer_bytes),
    INT_KEY("http.cache_max_age", 0, 86400, "1", NULL, cache_max_age),
    INT_KEY("http.s_maxage", 0, 31536000, "0", "RANKD_HTTP_S_MAXAGE", s_maxage),
    INT_KEY("http.stale_while_revalidate", 0, 31536000, "0", "RANKD_HTTP_STALE_WHILE_REVALIDATE",
            stale_while_revalidate),
    SIZE_KEY("cache.max_bytes", 0, 68719476736, "67108864", "RANKD_CACHE_BYTES", cache_max_bytes),
    SIZE_KEY("cache.rank_tier", 0, 1099511627776, "0", "RANKD_RANK_TIER", rank_tier_bytes),
    {.name = "http.cors_origins", .type = T_LIST, .min = 1, .def = "", .env = "RANKD_CORS_ORIGINS",
     .off = CFG(cors_origins), .off2 = CFG(n_cors_origins), .sep = ',', .check = check_origin},
    {.name = "http.proxy_protocol", .type = T_BOOL, .def = "false", .env = "RANKD_PROXY_PROTOCOL",
     .off = CFG(proxy_protocol)},
    {.name = "http.trusted_proxies", .type = T_LIST, .min = 1, .def = "", .env = "RANKD_TRUSTED_PROXIES",
     .off = CFG(trusted_proxies), .off2 = CFG(n_trusted_proxies), .sep = ',', .check = check_cidr},

    {.name = "postgres.primary", .type = T_STR, .flags = F_SECRET | F_REQUIRED, .min = 1,
     .env = "RANKD_POSTGRES_PRIMARY", .off = CFG(pg_primary), .check = check_conninfo},
    {.name = "postgres.listener", .type = T_STR, .flags = F_SECRET | F_NULLABLE, .min = 1,
     .env = "RANKD_POSTGRES_LISTENER", .off = CFG(pg_listener), .check = check_conninfo},
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
    INT_KEY("limits.player_writes_per_s", 0, 10000000, "0", "RANKD_LIMIT_PLAYER_WRITES_PER_S",
            limit_player_writes_per_s),
    INT_KEY("limits.player_burst", 0, 10000000, "0", "RANKD_LIMIT_PLAYER_BURST", limit_player_burst),
    INT_KEY("limits.failed_auths_per_s", 1, 10000000, "5", "RANKD_LIMIT_FAILED_AUTHS_PER_S", limit_failed_auths_per_s),
    INT_KEY("limits.idempotency_keys_per_client", 0, 2000000000, "0", "RANKD_LIMIT_IDEMPOTENCY_KEYS_PER_CLIENT",
            limit_idempotency_keys_per_client),
    INT_KEY("writer.max_batch", 1, 4000, "4000", "RANKD_WRITER_MAX_BATCH", writer_max_batch),
    INT_KEY("writer.gather_us", 0, 100000, "2000", "RANKD_WRITER_GATHER_US", writer_gather_us),
    INT_KEY("live.max_listeners", 0, 1000000, "20000", "RANKD_LIVE_MAX_LISTENERS", live_max_listeners),
    INT_KEY("live.max_listeners_per_address", 1, 1000000, "100", "RANKD_LIVE_MAX_LISTENERS_PER_ADDRESS",
            live_max_listeners_per_address),
    INT_KEY("live.min_interval_ms", 10, 60000, "100", "RANKD_LIVE_MIN_INTERVAL_MS", live_min_interval_ms),
    INT_KEY("live.heartbeat_s", 1, 300, "15", "RANKD_LIVE_HEARTBEAT_S", live_heartbeat_s),
    INT_KEY("events.standings_limit", 1, 1000000, "1000", "RANKD_EVENTS_STANDINGS_LIMIT", events_standings_limit),
    INT_KEY("events.keep_days", 1, 3650, "30", "RANKD_EVENTS_KEEP_DAYS", events_keep_days),
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
    {.name = "auth.player_token_secret", .type = T_STR, .flags = F_SECRET | F_NULLABLE, .min = 16, .max = 256,
     .env = "RANKD_PLAYER_TOKEN_SECRET", .off = CFG(player_token_secret)},
    {.name = "auth.previous_player_token_secret", .type = T_STR, .flags = F_SECRET | F_NULLABLE, .min = 16,
     .max = 256, .env = "RANKD_PREVIOUS_PLAYER_TOKEN_SECRET", .off = CFG(player_token_secret_previous)},
    {.name = "auth.metrics_auth", .type = T_ENUM, .def = "admin", .env = "RANKD_METRICS_AUTH",
     .off = CFG(metrics_auth), .parse = parse_metrics_auth, .choices = "none, admin"},
    {.name = "auth.keys", .type = T_KEYS, .off = CFG(keys), .off2 = CFG(n_keys)},
    {.name = "auth.keys", .type = T_ADDKEY, .flags = F_ENV_ONLY, .min = ROLE_ADMIN, .env = "RANKD_ADMIN_KEY"},
    {.name = "auth.keys", .type = T_ADDKEY, .flags = F_ENV_ONLY, .min = ROLE_WRITE, .env = "RANKD_WRITE_KEY"},
    {.name = "auth.keys", .type = T_ADDKEY, .flags = F_ENV_ONLY, .min = ROLE_READ, .env = "RANKD_READ_KEY"},

    {.name = "auth.issuers", .type = T_ISSUERS, .off = CFG(issuers), .off2 = CFG(n_issuers)},
    INT_KEY("auth.clock_skew_s", 0, 3600, "60", "RANKD_CLOCK_SKEW_S", issuer_clock_skew_s),

    {.name = "boards", .type = T_BOARDS, .off = CFG(boards), .off2 = CFG(n_boards)},
};

/* The fields of one auth.keys item. */
const conf_key_t config_key_item_keys[] = {
    {.name = "auth.keys.key", .type = T_STR, .flags = F_SECRET, .min = KEY_MIN_BYTES, .max = KEY_MAX_BYTES,
     .off = KEY(key), .check = check_key_chars},
    {.name = "auth.keys.role", .type = T_ENUM, .off = KEY(role), .parse = parse_role,
     .choices = "read, write, admin"},
    {.name = "auth.keys.name", .type = T_STR, .flags = F_NULLABLE, .min = 1, .max = 64, .off = KEY(name),
     .check = check_key_chars},
};

/* The fields of one boards item. */
const conf_key_t config_board_keys[] = {
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
    {.name = "boards.client_writes", .type = T_BOOL, .def = "false", .off = BRD(client_writes)},
    {.name = "boards.client_rules", .type = T_JSON, .off = BRD(client_rules)},
};

/* The fields of one auth.issuers item. */
#define ISS(f) offsetof(config_issuer_t, f)
const conf_key_t config_issuer_keys[] = {
    {.name = "auth.issuers.issuer", .type = T_STR, .min = 1, .max = 255, .off = ISS(issuer), .check = check_printable},
    {.name = "auth.issuers.audience", .type = T_STR, .min = 1, .max = 255, .off = ISS(audience),
     .check = check_printable},
    {.name = "auth.issuers.jwks_url", .type = T_STR, .min = 1, .max = 2048, .off = ISS(jwks_url),
     .check = check_jwks_url},
    {.name = "auth.issuers.keys", .type = T_JSON, .max = CONFIG_ISSUER_KEYS_BYTES, .off = ISS(keys)},
    {.name = "auth.issuers.player_claim", .type = T_STR, .min = 1, .max = 64, .def = "sub", .off = ISS(player_claim),
     .check = check_printable},
    {.name = "auth.issuers.clock_skew_s", .type = T_INT, .min = 0, .max = 3600, .off = ISS(clock_skew_s)},
};

#define N_KEYS(t) (sizeof(t) / sizeof((t)[0]))
_Static_assert(N_KEYS(config_keys) <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX in config_internal.h");
const size_t config_keys_n = N_KEYS(config_keys);
const size_t config_key_item_keys_n = N_KEYS(config_key_item_keys);
const size_t config_board_keys_n = N_KEYS(config_board_keys);
const size_t config_issuer_keys_n = N_KEYS(config_issuer_keys);

const conf_key_t *cfg_find_key(const conf_key_t *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!(table[i].flags & F_ENV_ONLY) && strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

