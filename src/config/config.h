/*
 * config/config.h — rankd's configuration: one YAML file plus RANKD_*
 * environment overrides, which win over the file.
 *
 * Every key is described once, in the key table of config.c (name, type,
 * bounds, default, environment variable); parsing, validation, the
 * environment overrides and `rankd config check` all follow from it.
 * Errors name the YAML node as file:line:column.
 */
#ifndef RANKD_CONFIG_H
#define RANKD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/board.h"
#include "util/netaddr.h"

typedef enum { ROLE_NONE = 0, ROLE_READ = 1, ROLE_WRITE = 2, ROLE_ADMIN = 3 } role_t;
typedef enum { METRICS_AUTH_NONE = 0, METRICS_AUTH_ADMIN = 1 } metrics_auth_t;
/* Where the pipe sends rank reads in a Redis Cluster: masters only, or caught-up replicas. */
typedef enum { REDIS_READ_MASTER = 0, REDIS_READ_REPLICAS = 1 } redis_read_from_t;
typedef enum { POLICY_ROUND_ROBIN = 0, POLICY_LEAST_CONNECTIONS = 1, POLICY_WEIGHTED = 2 } replica_policy_t;
typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level_t;

typedef struct {
    char *key;                /* while loading only: NULL (wiped) once config_load() returns */
    role_t role;
    unsigned char digest[32]; /* SHA-256 of key: what a presented key is compared with */
    char *origin;             /* where it was given: "file:line:column" or the environment variable */
    const char *flaw;         /* secret_flaw() of the key, judged before it was wiped; NULL: fine */
    char *name;               /* what the audit of submissions calls it (auth.keys[].name), or NULL */
} config_key_t;

/* A trusted identity provider (auth.issuers): its JWTs name players (auth/jwt_verify.h, and
 * worker/jwks_fetcher.h for its keys). */
typedef struct {
    char *issuer;       /* the "iss" its tokens carry, compared byte for byte */
    char *audience;     /* an "aud" its tokens must hold */
    char *jwks_url;     /* https, or http on a loopback address; NULL when keys are inline */
    char *keys;         /* an inline JWKS document as compact JSON text; NULL with jwks_url */
    char *player_claim; /* the claim naming the player, "sub" by default */
    int clock_skew_s;   /* seconds of leeway on exp, nbf and iat; -1: auth.clock_skew_s */
} config_issuer_t;

/* A board declared in the configuration: created at start if absent. */
typedef struct {
    char *id;
    char *title;
    board_sort_t sort;
    board_op_t op;
    board_reset_t reset;
    char *metadata;   /* compact JSON object text, or NULL */
    bool has_min_score;
    int64_t min_score;
    bool has_max_score;
    int64_t max_score;
    bool client_writes;                 /* player tokens may submit and join (API.md) */
    char *client_rules;                 /* its client_rules as compact JSON text, or NULL */
    int32_t max_submissions_per_minute; /* read from client_rules when the file was loaded; 0: off */
    double max_rise_per_second;         /* likewise */
} config_board_t;

typedef struct rankd_config {
    char *path;              /* file the configuration came from */

    char *listen_host;       /* "127.0.0.1" */
    int listen_port;         /* 8080 */
    int worker_threads;      /* 1..64, default: number of cores */
    log_level_t log_level;

    size_t body_limit;        /* bytes, default 65536 */
    size_t batch_body_limit;  /* bytes, default 2 MiB */
    size_t import_body_limit; /* bytes of an import's streamed body, default 1 GiB */
    size_t batch_response_limit; /* bytes of a /v1/batch answer at most, default 4 MiB */
    size_t body_bytes_per_ip; /* request body bytes buffered per client address at most, 0 = no limit; 32 MiB */
    int refusal_delay_ms;     /* a 429 to a client refused REFUSALS_BEFORE_DELAY times in a row waits this
                               * long before it is sent; 0 = never; default 1000 */
    int connection_timeout_s; /* idle keep-alive timeout, default 30 */
    size_t max_response_bytes_in_flight; /* bytes of large answers not yet sent, in all, 0 = no limit; 256 MiB */
    size_t response_bytes_per_ip; /* the same, per client address, 0 = no limit; 16 MiB */
    int send_timeout_s;       /* a large answer not read within it has its connection cut; default 60 */
    size_t send_buffer_bytes; /* each connection's kernel send buffer (SO_SNDBUF), 0 = the kernel's autotuning;
                               * default 256 KiB */
    int max_connections;      /* open connections at most, default 4096 */
    int max_connections_per_ip; /* from one address at most, 0 = no limit; default 64 */
    int cache_max_age;        /* seconds in Cache-Control, default 1 */
    int s_maxage;             /* s-maxage on public reads, for shared caches; 0 = omitted */
    int stale_while_revalidate; /* stale-while-revalidate on public reads; 0 = omitted */
    size_t cache_max_bytes;   /* L1 response cache budget, 0 = off; default 64 MiB */
    size_t rank_tier_bytes;   /* the in-process rank tier's budget, 0 = off (the default) */
    char **cors_origins;      /* "*" allows every origin */
    size_t n_cors_origins;
    bool proxy_protocol;      /* every connection begins with a PROXY protocol header; default false */
    char **trusted_proxies;   /* CIDRs whose X-Forwarded-For is believed; default none */
    size_t n_trusted_proxies;
    netaddr_cidr_t *trusted_nets; /* trusted_proxies parsed, n_trusted_proxies of them */

    char *pg_primary;         /* libpq conninfo or URI */
    char *pg_listener;        /* the same server's, for the LISTEN session (NULL: pg_primary) */
    char **pg_replicas;
    size_t n_pg_replicas;
    int pg_pool_size;         /* connections per node, default 8 */
    int pg_statement_timeout_ms; /* default 5000 */
    int pg_connect_timeout_s;    /* default 5 */
    int pg_pool_wait_ms;         /* longest wait for a pooled connection before 503, default 1000 */
    replica_policy_t pg_replica_policy; /* how reads pick among caught-up replicas */
    char **pg_replica_weights;   /* "3", "1": one per replica (weighted policy), or none */
    size_t n_pg_replica_weights;
    int pg_max_lag_ms;           /* a replica further behind leaves the rotation, default 5000 */
    int pg_health_interval_ms;   /* each node is probed this often, default 1000 */
    int pg_unhealthy_after;      /* failed probes in a row that take a node out, default 2 */
    int pg_healthy_after;        /* good probes in a row that bring it back, default 2 */
    int pg_breaker_failures;     /* failed calls in a row that open a node's breaker, default 3 */
    int pg_breaker_cooldown_ms;
    int pg_slow_statement_ms;    /* statements at least this slow are logged, 0 = none; default 500 */  /* calls fail at once this long before one probe decides, default 2000 */

    int refresh_interval_s;   /* background view refresh period, 0 = only on demand; default 60 */
    int refresh_timeout_s;    /* statement timeout of one view's refresh; default 600 */
    int rank_bucket_rows;     /* fewest standings a PostgreSQL rank bucket aims at; default 256 */
    int retention_windows;    /* closed windows a board keeps, 0 = all; default 0 */
    char **retention_board_windows; /* "board=N": that board's own retention.windows */
    size_t n_retention_board_windows;
    int retention_log_months; /* months of the submission log kept, 0 = all; default 0 */
    int retention_max_clock_skew_ms; /* archive and retention refuse past this clock difference with
                                      * PostgreSQL's; 0 = never check; default 5000 */
    int limit_reads_per_s;    /* per client and instance, 0 = unlimited (the default) */
    int limit_writes_per_s;   /* per client and instance, 0 = unlimited (the default) */
    int limit_burst;          /* bucket size, 0 = one second's worth of the rate */
    int limit_strong_reads_per_s; /* consistency=strong reads per client and instance, a bucket of
                                   * their own; 0 = unlimited (the default) */
    int limit_strong_concurrency; /* strong reads running at once per instance; default 8 */
    int limit_strong_wait_ms;     /* how long one past that cap waits for a slot before its 503; default 1000 */
    int limit_failed_auths_per_s; /* wrong keys per address and instance, whatever the other limits
                                   * (a burst of four seconds' worth); default 5 */
    int limit_idempotency_keys_per_client; /* idempotency keys one key makes within 24 h per instance,
                                            * 0 = unlimited (the default) */
    int writer_max_batch;     /* submissions per write transaction at most, 1..4000; default 4000 */
    int writer_gather_us;     /* µs a write transaction waits for the answered clients' next jobs; 0..100000, default 2000 */
    int live_max_listeners;   /* live streams (Server-Sent Events) open at once, 0 = none; default 20000 */
    int live_max_listeners_per_address; /* of them from one client address; default 100 */
    int live_min_interval_ms; /* a stream's answer is computed at most this often; default 100 */
    int live_heartbeat_s;     /* a comment line on every stream this often, and each answer checked; default 15 */
    int events_standings_limit; /* standings (and league moves) an end-of-window event holds; default 1000 */
    int events_keep_days;       /* days a delivered or failed event is kept; default 30 */

    char *redis_url;          /* NULL or "" = no Redis */
    int redis_connect_timeout_ms; /* default 500 */
    int redis_command_timeout_ms; /* default 500 */
    redis_read_from_t redis_read_from; /* default master */

    bool public_reads;        /* default true */
    bool development;         /* the development configuration: published and short secrets are
                               * accepted while listen is a loopback address; default false */
    char *cursor_secret;      /* HMAC key for cursors */
    char *cursor_secret_origin;          /* where it was given ("file:line:column", a variable), or NULL */
    char *cursor_secret_previous_origin; /* likewise for cursor_secret_previous */
    bool cursor_secret_given; /* by the file or RANKD_CURSOR_SECRET, not the built-in default */
    char *cursor_secret_previous; /* the secret before a rotation, still accepted on cursors; NULL: none */
    char *player_token_secret;           /* HMAC key of minted player tokens; NULL: none minted or accepted */
    char *player_token_secret_previous;  /* the one before a rotation, still accepted; NULL: none */
    char *player_token_secret_origin;          /* where each was given, or NULL */
    char *player_token_secret_previous_origin;
    int limit_player_writes_per_s; /* writes with a player token, per player and instance; 0 = unlimited */
    int limit_player_burst;        /* that bucket's size, 0 = one second's worth */
    metrics_auth_t metrics_auth;
    config_key_t *keys;
    size_t n_keys;
    config_issuer_t *issuers; /* auth.issuers: identity providers whose player tokens are trusted */
    size_t n_issuers;
    int issuer_clock_skew_s;  /* auth.clock_skew_s: leeway on their tokens' times, default 60 */

    config_board_t *boards;
    size_t n_boards;
} rankd_config_t;

/*
 * Load the configuration from `path` (it must exist) and apply RANKD_*
 * overrides from the environment. On success returns a config the caller
 * frees with config_free(). On failure returns NULL after printing each
 * error as "file:line:column: message" (or "RANKD_X: message") to `errs`.
 */
rankd_config_t *config_load(const char *path, FILE *errs);

void config_free(rankd_config_t *cfg);

/*
 * Outside the development configuration (`development: true` while `listen` is a loopback
 * address), every unsafe secret (config/secret_policy.h) and a missing cursor secret, each
 * printed to `errs` as "where: field: why" with how to generate a good one. Returns how many
 * it printed: `serve`, `config check` and a reload refuse the configuration when it is not 0.
 */
unsigned config_check_secrets(const rankd_config_t *cfg, FILE *errs);
/* The same for a reload of `cfg` into a server started with `running` (NULL: cfg itself):
 * development and listen take effect only at a restart, so the listener judged is the running
 * one, and the exemption holds only when `running` and `cfg` both say development (a file that
 * turns development off has its secrets judged now). */
unsigned config_check_secrets_under(const rankd_config_t *cfg, const rankd_config_t *running, FILE *errs);

/* Role of a presented bearer key, ROLE_NONE if unknown, and in *index (when not NULL) which of
 * cfg->keys it is (-1 if none): its SHA-256 is compared with every key's by CRYPTO_memcmp, so the
 * time taken says nothing of how close a guess came. */
role_t config_key_role(const rankd_config_t *cfg, const char *key, int *index);

/* The clock skew allowed on issuer `i`'s tokens: its own clock_skew_s, else auth.clock_skew_s. */
int config_issuer_skew(const rankd_config_t *cfg, size_t i);
/* Whether `a` and `b` trust the same issuers the same way (a reload says when they differ: the
 * issuers are read at start only). */
bool config_issuers_equal(const rankd_config_t *a, const rankd_config_t *b);

/* How many closed windows `board` keeps (retention.board_windows, else retention.windows); 0 = all. */
int config_retention_windows(const rankd_config_t *cfg, const char *board);

/* True when `origin` is allowed by cors_origins. */
bool config_cors_allowed(const rankd_config_t *cfg, const char *origin);
/* True when cors_origins allows every origin ("*"). */
bool config_cors_any(const rankd_config_t *cfg);

#endif
