/*
 * tests/unit/test_config.c — unit tests of config/config.c and core/board.c.
 *
 * Each test writes its YAML into a private mkdtemp() folder, loads it with
 * the RANKD_* environment cleared (then set as the test needs), and reads
 * the errors config_load printed through an open_memstream() stream, so
 * messages and their file:line:column are checked exactly. The shipped
 * config/rankd.yaml and config/rankd.example.yaml are loaded too (meson runs
 * the tests from the project root).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/sha.h>

#include "config/config.h"
#include "config/config_internal.h"
#include "config/fd_budget.h"
#include "config/secret_policy.h"
#include "core/board.h"
#include "util/redis_url.h"
#include "util/redis_slot.h"

/* What the configuration check says of an address it cannot parse. */
#define REDIS_URL_FORMS                                                                                  \
    "expected redis://[:password@]host:port/db, redis+cluster://[:password@]host:port[,host:port...] "  \
    "or redis+sentinel://[:password@]host:port[,host:port...]/master-name[/db]"

static const char *const env_vars[] = {
    "RANKD_LISTEN", "RANKD_WORKER_THREADS", "RANKD_LOG_LEVEL", "RANKD_BODY_LIMIT",
    "RANKD_BATCH_BODY_LIMIT", "RANKD_CORS_ORIGINS", "RANKD_POSTGRES_PRIMARY",
    "RANKD_POSTGRES_REPLICAS", "RANKD_REDIS_URL", "RANKD_PUBLIC_READS", "RANKD_CURSOR_SECRET",
    "RANKD_METRICS_AUTH", "RANKD_ADMIN_KEY", "RANKD_WRITE_KEY", "RANKD_READ_KEY", "RANKD_DEVELOPMENT",
    "RANKD_CURSOR_SECRET_PREVIOUS", "RANKD_RANK_TIER",
};

typedef struct {
    char dir[64];
    char path[128];
    char *errs;   /* what the last load printed */
    size_t errs_len;
} fixture_t;

static int group_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/rankd-test-config-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/rankd.yaml", f->dir);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture_t *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f->errs);
    free(f);
    return 0;
}

/* Every test starts from an empty RANKD_* environment. */
static int test_setup(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
    free(f->errs);
    f->errs = NULL;
    return 0;
}

static rankd_config_t *load_path(fixture_t *f, const char *path)
{
    free(f->errs);
    f->errs = NULL;
    FILE *errs = open_memstream(&f->errs, &f->errs_len);
    assert_non_null(errs);
    rankd_config_t *cfg = config_load(path, errs);
    fclose(errs);
    return cfg;
}

/* Write `yaml` (may hold NUL bytes when len is given) and load it. */
static rankd_config_t *load_n(void **state, const char *yaml, size_t len)
{
    fixture_t *f = *state;
    FILE *out = fopen(f->path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(yaml, 1, len, out), len);
    fclose(out);
    return load_path(f, f->path);
}

static rankd_config_t *load(void **state, const char *yaml)
{
    return load_n(state, yaml, strlen(yaml));
}

#define PRIMARY "postgres:\n  primary: \"host=127.0.0.1 dbname=rankd\"\n"
/* Two lines that keep line numbers as with PRIMARY, when the primary comes from the environment. */
#define TWO_LINES "# postgres.primary comes from\n# RANKD_POSTGRES_PRIMARY here\n"

/* The file loads; anything printed is a failure. */
static rankd_config_t *load_ok(void **state, const char *yaml)
{
    fixture_t *f = *state;
    rankd_config_t *cfg = load(state, yaml);
    if (cfg == NULL || f->errs_len != 0)
        fail_msg("unexpected errors:\n%s", f->errs);
    return cfg;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* The load failed and printed `msg` (a leading "@" stands for the file's path). */
static void expect_error(void **state, const char *msg)
{
    fixture_t *f = *state;
    char want[512];
    if (msg[0] == '@')
        snprintf(want, sizeof want, "%s%s", f->path, msg + 1);
    else
        snprintf(want, sizeof want, "%s", msg);
    if (f->errs == NULL || strstr(f->errs, want) == NULL)
        fail_msg("expected error\n  %s\ngot\n%s", want, f->errs ? f->errs : "(nothing)");
}

/* A file with one error: it fails, and prints exactly `msg` and nothing else. */
static void expect_only_error(void **state, const char *yaml, const char *msg)
{
    fixture_t *f = *state;
    rankd_config_t *cfg = load(state, yaml);
    if (cfg != NULL)
        fail_msg("loaded, expected: %s\n--- yaml:\n%s", msg, yaml);
    expect_error(state, msg);
    if (count_lines(f->errs) != 1)
        fail_msg("expected one error, got\n%s", f->errs);
}

/* ------------------------------------------------------------------------ */

static void test_board_names(void **state)
{
    (void)state;
    board_sort_t s;
    board_op_t o;
    board_reset_t r;

    assert_true(board_sort_parse("desc", &s) && s == SORT_DESC);
    assert_true(board_sort_parse("asc", &s) && s == SORT_ASC);
    assert_false(board_sort_parse("Desc", &s));
    assert_false(board_sort_parse("", &s));
    assert_false(board_sort_parse(NULL, &s));
    assert_true(board_op_parse("best", &o) && o == OP_BEST);
    assert_true(board_op_parse("latest", &o) && o == OP_LATEST);
    assert_true(board_op_parse("sum", &o) && o == OP_SUM);
    assert_false(board_op_parse("max", &o));
    assert_true(board_reset_parse("none", &r) && r == RESET_NONE);
    assert_true(board_reset_parse("daily", &r) && r == RESET_DAILY);
    assert_true(board_reset_parse("weekly", &r) && r == RESET_WEEKLY);
    assert_true(board_reset_parse("monthly", &r) && r == RESET_MONTHLY);
    assert_false(board_reset_parse("weekly ", &r));

    assert_string_equal(board_sort_name(SORT_DESC), "desc");
    assert_string_equal(board_sort_name(SORT_ASC), "asc");
    assert_string_equal(board_op_name(OP_BEST), "best");
    assert_string_equal(board_op_name(OP_LATEST), "latest");
    assert_string_equal(board_op_name(OP_SUM), "sum");
    assert_string_equal(board_reset_name(RESET_NONE), "none");
    assert_string_equal(board_reset_name(RESET_DAILY), "daily");
    assert_string_equal(board_reset_name(RESET_WEEKLY), "weekly");
    assert_string_equal(board_reset_name(RESET_MONTHLY), "monthly");
    assert_string_equal(board_reset_name((board_reset_t)42), "?");
    assert_string_equal(board_sort_name((board_sort_t)-1), "?");
    assert_string_equal(board_op_name((board_op_t)3), "?");
}

static void test_defaults(void **state)
{
    fixture_t *f = *state;
    rankd_config_t *cfg = load_ok(state, PRIMARY);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    assert_string_equal(cfg->path, f->path);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_int_equal(cfg->worker_threads, cpus < 1 ? 1 : cpus > 64 ? 64 : cpus);
    assert_int_equal(cfg->log_level, LOG_INFO);
    assert_int_equal(cfg->body_limit, 65536);
    assert_int_equal(cfg->batch_body_limit, 2097152);
    assert_int_equal(cfg->connection_timeout_s, 30);
    assert_int_equal(cfg->cache_max_age, 1);
    assert_int_equal(cfg->n_cors_origins, 0); /* API.md: no cross-origin reads unless configured */
    assert_false(cfg->proxy_protocol);
    assert_int_equal(cfg->n_trusted_proxies, 0);
    assert_string_equal(cfg->pg_primary, "host=127.0.0.1 dbname=rankd");
    assert_int_equal(cfg->n_pg_replicas, 0);
    assert_int_equal(cfg->pg_pool_size, 8);
    assert_int_equal(cfg->pg_statement_timeout_ms, 5000);
    assert_int_equal(cfg->pg_connect_timeout_s, 5);
    assert_int_equal(cfg->pg_pool_wait_ms, 1000);
    assert_int_equal(cfg->pg_replica_policy, POLICY_ROUND_ROBIN);
    assert_int_equal(cfg->n_pg_replica_weights, 0);
    assert_int_equal(cfg->pg_max_lag_ms, 5000);
    assert_int_equal(cfg->pg_health_interval_ms, 1000);
    assert_int_equal(cfg->pg_unhealthy_after, 2);
    assert_int_equal(cfg->pg_healthy_after, 2);
    assert_int_equal(cfg->pg_breaker_failures, 3);
    assert_int_equal(cfg->pg_breaker_cooldown_ms, 2000);
    assert_null(cfg->redis_url);
    assert_int_equal(cfg->redis_connect_timeout_ms, 500);
    assert_int_equal(cfg->redis_command_timeout_ms, 500);
    assert_int_equal(cfg->writer_max_batch, 4000);
    assert_int_equal(cfg->writer_gather_us, 2000);
    assert_true(cfg->public_reads);
    assert_string_equal(cfg->cursor_secret, "rankd-dev-cursor-secret");
    assert_int_equal(cfg->metrics_auth, METRICS_AUTH_ADMIN);
    assert_int_equal(cfg->n_keys, 0);
    assert_int_equal(cfg->n_boards, 0);
    config_free(cfg);
}

static void test_every_key(void **state)
{
    /* every key, none at its default */
    rankd_config_t *cfg = load_ok(state,
        "listen: \"0.0.0.0:9090\"\n"
        "worker_threads: 3\n"
        "log_level: debug\n"
        "http:\n"
        "  body_limit: 1024\n"
        "  batch_body_limit: 268435456\n"
        "  connection_timeout_s: 3600\n"
        "  cache_max_age: 0\n"
        "  s_maxage: 600\n"
        "  stale_while_revalidate: 30\n"
        "  cors_origins: [\"https://game.example\", \"http://localhost:3000\"]\n"
        "postgres:\n"
        "  primary: postgresql://rankd@db1:5432/rankd\n"
        "  replicas:\n"
        "    - \"host=db2 port=5432\"\n"
        "    - \"host=db3 port=5432\"\n"
        "  pool_size: 256\n"
        "  statement_timeout_ms: 600000\n"
        "  connect_timeout_s: 300\n"
        "redis:\n"
        "  url: \"redis://:s3cret@cache.local:6379/2\"\n"
        "  connect_timeout_ms: 1\n"
        "  command_timeout_ms: 60000\n"
        "writer:\n"
        "  max_batch: 1\n"
        "auth:\n"
        "  public_reads: false\n"
        "  cursor_secret: '0123456789abcdef'\n"
        "  metrics_auth: none\n"
        "  keys:\n"
        "    - {key: \"admin-key-0123456789\", role: admin}\n"
        "    - key: \"write-key-0123456789\"\n"
        "      role: write\n"
        "    - key: read-key-0123456789~!\n"
        "      role: read\n"
        "boards:\n"
        "  - id: b1\n"
        "    title: One\n");
    assert_string_equal(cfg->listen_host, "0.0.0.0");
    assert_int_equal(cfg->listen_port, 9090);
    assert_int_equal(cfg->worker_threads, 3);
    assert_int_equal(cfg->log_level, LOG_DEBUG);
    assert_int_equal(cfg->body_limit, 1024);
    assert_int_equal(cfg->batch_body_limit, 268435456);
    assert_int_equal(cfg->connection_timeout_s, 3600);
    assert_int_equal(cfg->cache_max_age, 0);
    assert_int_equal(cfg->s_maxage, 600);
    assert_int_equal(cfg->stale_while_revalidate, 30);
    assert_int_equal(cfg->n_cors_origins, 2);
    assert_string_equal(cfg->cors_origins[0], "https://game.example");
    assert_string_equal(cfg->cors_origins[1], "http://localhost:3000");
    assert_string_equal(cfg->pg_primary, "postgresql://rankd@db1:5432/rankd");
    assert_int_equal(cfg->n_pg_replicas, 2);
    assert_string_equal(cfg->pg_replicas[0], "host=db2 port=5432");
    assert_string_equal(cfg->pg_replicas[1], "host=db3 port=5432");
    assert_int_equal(cfg->pg_pool_size, 256);
    assert_int_equal(cfg->pg_statement_timeout_ms, 600000);
    assert_int_equal(cfg->pg_connect_timeout_s, 300);
    assert_string_equal(cfg->redis_url, "redis://:s3cret@cache.local:6379/2");
    assert_int_equal(cfg->redis_connect_timeout_ms, 1);
    assert_int_equal(cfg->redis_command_timeout_ms, 60000);
    assert_int_equal(cfg->writer_max_batch, 1);
    assert_false(cfg->public_reads);
    assert_string_equal(cfg->cursor_secret, "0123456789abcdef");
    assert_int_equal(cfg->metrics_auth, METRICS_AUTH_NONE);
    assert_int_equal(cfg->n_keys, 3);
    /* Only the digests are kept once loaded. */
    const char *want[] = {"admin-key-0123456789", "write-key-0123456789", "read-key-0123456789~!"};
    for (int i = 0; i < 3; i++) {
        unsigned char d[32];
        SHA256((const unsigned char *)want[i], strlen(want[i]), d);
        assert_null(cfg->keys[i].key);
        assert_memory_equal(cfg->keys[i].digest, d, sizeof d);
    }
    assert_int_equal(cfg->keys[0].role, ROLE_ADMIN);
    assert_int_equal(cfg->keys[1].role, ROLE_WRITE);
    assert_int_equal(cfg->keys[2].role, ROLE_READ);
    assert_int_equal(cfg->n_boards, 1);
    assert_string_equal(cfg->boards[0].id, "b1");
    assert_string_equal(cfg->boards[0].title, "One");
    assert_int_equal(cfg->boards[0].sort, SORT_DESC);
    assert_int_equal(cfg->boards[0].op, OP_BEST);
    assert_int_equal(cfg->boards[0].reset, RESET_NONE);
    assert_null(cfg->boards[0].metadata);
    assert_false(cfg->boards[0].has_min_score);
    assert_false(cfg->boards[0].has_max_score);
    config_free(cfg);
}

static void test_empty_sections_and_file(void **state)
{
    /* Sections left empty (everything commented out) are fine. */
    rankd_config_t *cfg = load_ok(state,
        "http:\nredis:\n  url:\nauth:\n  keys:\nboards: ~\n" PRIMARY
        "  replicas:\n");
    assert_null(cfg->redis_url);
    assert_int_equal(cfg->n_keys, 0);
    assert_int_equal(cfg->n_boards, 0);
    assert_int_equal(cfg->n_pg_replicas, 0);
    config_free(cfg);

    /* An empty file with the primary in the environment. */
    setenv("RANKD_POSTGRES_PRIMARY", "host=envdb", 1);
    cfg = load_ok(state, "# nothing\n");
    assert_string_equal(cfg->pg_primary, "host=envdb");
    config_free(cfg);

    unsetenv("RANKD_POSTGRES_PRIMARY");
    expect_only_error(state, "",
        "@: postgres.primary is required (in the file or in RANKD_POSTGRES_PRIMARY)");
    expect_only_error(state, "listen: \"127.0.0.1:1\"\n", "@: postgres.primary is required");
}

static void test_unknown_keys(void **state)
{
    expect_only_error(state,
        PRIMARY
        "http:\n"
        "  body_limit: 2048\n"
        "  body_limt: 2048\n",
        "@:5:3: unknown key \"body_limt\" in http\n");
    expect_only_error(state, PRIMARY "\n\nlisten_port: 80\n", "@:5:1: unknown key \"listen_port\"\n");
    /* long or odd keys are echoed cut short and with '?' for non-printables */
    expect_only_error(state, PRIMARY "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789: 1\n",
        "@:3:1: unknown key \"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwx...\"\n");
    expect_only_error(state, PRIMARY "\"tab\\there\": 1\n", "@:3:1: unknown key \"tab?here\"\n");
    expect_only_error(state, PRIMARY "auth:\n    public: true\n", "@:4:5: unknown key \"public\" in auth\n");
    expect_only_error(state, PRIMARY "boards:\n  - id: a\n    title: A\n    colour: red\n",
        "@:6:5: unknown key \"colour\" in boards\n");
    expect_only_error(state, PRIMARY "boards:\n  - id: a\n    title: A\n    client_rules: {max_submissions_per_minute: 0}\n",
        "@:6:19: boards.client_rules.max_submissions_per_minute: a whole number 1..60000, or null for none\n");
    expect_only_error(state, PRIMARY "boards:\n  - id: a\n    title: A\n    client_rules: {max_rise_per_second: -1}\n",
        "@:6:19: boards.client_rules.max_rise_per_second: a number above 0 and at most 1e18, or null for none\n");
    expect_only_error(state, PRIMARY "boards:\n  - id: a\n    title: A\n    client_rules: {max_rise: 1}\n",
        "@:6:19: boards.client_rules: no rule \"max_rise\" (the rules are max_submissions_per_minute and "
        "max_rise_per_second)\n");
    expect_only_error(state, PRIMARY "auth:\n  keys:\n  - {key: \"0123456789abcdef\", role: read, note: x}\n",
        "@:5:43: unknown key \"note\" in auth.keys\n");
    /* a section name is not a key, and a key is not a section */
    expect_only_error(state, PRIMARY "http: 5\n", "@:3:7: http: expected a mapping, got a scalar\n");
    expect_only_error(state, PRIMARY "listen:\n  host: x\n", "@:4:3: listen: expected a string, got a mapping\n");
    expect_only_error(state, PRIMARY "[1]: 2\n", "@:3:1: expected a key, got a list\n");
    setenv("RANKD_POSTGRES_PRIMARY", "host=env", 1);
    expect_only_error(state, "- 1\n- 2\n", "@:1:1: expected a mapping at the top level, got a list\n");
    expect_only_error(state, "just text\n", "@:1:1: expected a mapping at the top level, got a scalar\n");
}

static void test_bad_types(void **state)
{
    fixture_t *f = *state;
    setenv("RANKD_POSTGRES_PRIMARY", "host=env", 1);
    rankd_config_t *cfg = load(state,
        TWO_LINES
        "worker_threads: 1.5\n"                 /* 3 */
        "log_level: loud\n"                     /* 4 */
        "http:\n"
        "  body_limit: [65536]\n"               /* 6 */
        "  batch_body_limit: abc\n"             /* 7 */
        "  connection_timeout_s: true\n"        /* 8 */
        "  cache_max_age: [1]\n"                /* 9 */
        "  cors_origins: \"*\"\n"               /* 10 */
        "postgres:\n"
        "  pool_size: 99999999999999999999999\n"  /* 12 */
        "  statement_timeout_ms: 1e3\n"         /* 13 */
        "  connect_timeout_s: 0x10\n"           /* 14 */
        "  replicas: [[a]]\n"                   /* 15 */
        "auth:\n"
        "  public_reads: yes\n"                 /* 17 */
        "  metrics_auth: Admin\n"               /* 18 */
        "  keys: {key: x}\n"                    /* 19 */
        "boards: {id: x}\n"                     /* 20 */
        "redis:\n"
        "  connect_timeout_ms: ~\n"             /* 22 */
        "  command_timeout_ms: -1\n");          /* 23 */
    assert_null(cfg);
    expect_error(state, "@:3:17: worker_threads: expected an integer, got \"1.5\"\n");
    expect_error(state, "@:4:12: log_level: expected one of debug, info, warn, error, got \"loud\"\n");
    expect_error(state, "@:6:15: http.body_limit: expected a size in bytes, got a list\n");
    expect_error(state, "@:7:21: http.batch_body_limit: expected a size in bytes (a whole number, optionally with a "
                        "unit: B, k, m, g, t or KiB, MiB, GiB, TiB, all 1024-based, e.g. 64MiB), got \"abc\"\n");
    expect_error(state, "@:8:25: http.connection_timeout_s: expected an integer, got \"true\"\n");
    expect_error(state, "@:9:18: http.cache_max_age: expected an integer, got a list\n");
    expect_error(state, "@:10:17: http.cors_origins: expected a list, got a quoted string\n");
    expect_error(state, "@:12:14: postgres.pool_size: 99999999999999999999999 is out of range (1..256)\n");
    expect_error(state, "@:13:25: postgres.statement_timeout_ms: expected an integer, got \"1e3\"\n");
    expect_error(state, "@:14:22: postgres.connect_timeout_s: expected an integer, got \"0x10\"\n");
    expect_error(state, "@:15:14: postgres.replicas: expected a string, got a list\n");
    expect_error(state, "@:17:17: auth.public_reads: expected true or false, got \"yes\"\n");
    expect_error(state, "@:18:17: auth.metrics_auth: expected one of none, admin, got \"Admin\"\n");
    expect_error(state, "@:19:9: auth.keys: expected a list, got a mapping\n");
    expect_error(state, "@:20:9: boards: expected a list, got a mapping\n");
    expect_error(state, "@:22:23: redis.connect_timeout_ms: expected an integer, got null\n");
    expect_error(state, "@:23:23: redis.command_timeout_ms: -1 is out of range (1..60000)\n");
    assert_int_equal(count_lines(f->errs), 17);
    unsetenv("RANKD_POSTGRES_PRIMARY");

    expect_only_error(state, PRIMARY "auth:\n  public_reads: \"true\"\n",
        "@:4:17: auth.public_reads: expected true or false, got a quoted string\n");
    expect_only_error(state, PRIMARY "auth:\n  public_reads: True\n",
        "@:4:17: auth.public_reads: expected true or false, got \"True\"\n");
    expect_only_error(state, PRIMARY "worker_threads: +4\n",
        "@:3:17: worker_threads: expected an integer, got \"+4\"\n");
    expect_only_error(state, PRIMARY "worker_threads:\n",
        "@:3:16: worker_threads: expected an integer, got null\n");
    expect_only_error(state, "postgres:\n  primary: ~\n",
        "@:2:12: postgres.primary: expected a string, got null\n");
    expect_only_error(state, "postgres:\n  primary: \"\"\n", "@:2:12: postgres.primary: must not be empty\n");
}

static void test_bounds(void **state)
{
    static const struct {
        const char *yaml;
        const char *msg;
    } bad[] = {
        {"worker_threads: 0\n", "@:3:17: worker_threads: 0 is out of range (1..64)\n"},
        {"worker_threads: 65\n", "@:3:17: worker_threads: 65 is out of range (1..64)\n"},
        {"http:\n  body_limit: 1023\n", "@:4:15: http.body_limit: 1023 is out of range (1024..67108864, 64 MiB)\n"},
        {"http:\n  body_limit: 67108865\n", "http.body_limit: 67108865 is out of range"},
        {"http:\n  batch_body_limit: 268435457\n", "http.batch_body_limit: 268435457 is out of range"},
        {"http:\n  connection_timeout_s: 3601\n", "(1..3600)"},
        {"http:\n  cache_max_age: -1\n", "http.cache_max_age: -1 is out of range (0..86400)"},
        {"http:\n  cache_max_age: 86401\n", "http.cache_max_age: 86401 is out of range"},
        {"postgres:\n  pool_size: 0\n", "postgres.pool_size: 0 is out of range (1..256)"},
        {"postgres:\n  statement_timeout_ms: 600001\n", "(1..600000)"},
        {"postgres:\n  connect_timeout_s: 301\n", "(1..300)"},
        {"redis:\n  connect_timeout_ms: 60001\n", "redis.connect_timeout_ms: 60001 is out of range (1..60000)"},
        {"redis:\n  command_timeout_ms: 0\n", "redis.command_timeout_ms: 0 is out of range"},
        {"writer:\n  max_batch: 0\n", "@:4:14: writer.max_batch: 0 is out of range (1..4000)\n"},
        {"writer:\n  max_batch: 4001\n", "writer.max_batch: 4001 is out of range"},
        {"writer:\n  gather_us: -1\n", "@:4:14: writer.gather_us: -1 is out of range (0..100000)\n"},
        {"writer:\n  gather_us: 100001\n", "writer.gather_us: 100001 is out of range"},
        {"auth:\n  cursor_secret: \"0123456789abcde\"\n",
         "@:4:18: auth.cursor_secret: must be 16 to 256 bytes long\n"},
        {"auth:\n  keys:\n    - {key: \"0123456789abcde\", role: read}\n",
         "@:5:13: auth.keys.key: must be 16 to 256 bytes long\n"},
        {"auth:\n  keys:\n    - {key: \"0123456789 abcdef\", role: read}\n",
         "@:5:13: auth.keys.key: must be printable ASCII without spaces (0x21-0x7E)\n"},
        {"auth:\n  keys:\n    - {key: \"0123456789abcdef\u00e9\", role: read}\n",
         "auth.keys.key: must be printable ASCII without spaces"},
        {"listen: \"127.0.0.1:0\"\n", "listen: expected host:port (or [address]:port) with a port of 1..65535, got \"127.0.0.1:0\""},
        {"listen: \"127.0.0.1:65536\"\n", "got \"127.0.0.1:65536\""},
        {"listen: \"127.0.0.1\"\n", "got \"127.0.0.1\""},
        {"listen: \":8080\"\n", "got \":8080\""},
        {"listen: \"::1:8080\"\n", "got \"::1:8080\""},
        {"listen: \"[::1]\"\n", "got \"[::1]\""},
        {"listen: \"host name:80\"\n", "got \"host name:80\""},
        {"http:\n  cors_origins: [\"https://a.example/\"]\n",
         "@:4:18: http.cors_origins: expected \"*\" or scheme://host[:port], got \"https://a.example/\"\n"},
        {"http:\n  cors_origins: [\"a.example\"]\n", "got \"a.example\""},
        {"http:\n  cors_origins: [\"\"]\n", "@:4:18: http.cors_origins: must not be empty\n"},
        {"postgres:\n  replicas: [\"\"]\n", "@:4:14: postgres.replicas: must not be empty\n"},
        {"postgres:\n  replica_policy: random\n",
         "@:4:19: postgres.replica_policy: expected one of round_robin, least_connections, weighted, got \"random\"\n"},
        {"postgres:\n  replicas: [\"host=a\", \"host=b\"]\n  replica_weights: [\"3\"]\n",
         "@:5:20: postgres.replica_weights: 1 weight(s) for 2 replica(s); give one per replica\n"},
        {"postgres:\n  replicas: [\"host=a\"]\n  replica_weights: [\"0\"]\n",
         "@:5:21: postgres.replica_weights: expected a weight from 1 to 1000, got \"0\"\n"},
        {"postgres:\n  max_lag_ms: 0\n", "postgres.max_lag_ms"},
        {"postgres:\n  health_interval_ms: 5\n", "postgres.health_interval_ms"},
        {"retention:\n  windows: -1\n", "@:4:12: retention.windows: -1 is out of range (0..100000)\n"},
        {"retention:\n  log_months: 1201\n", "retention.log_months: 1201 is out of range (0..1200)"},
        {"retention:\n  board_windows: [\"Daily=3\"]\n",
         "@:4:19: retention.board_windows: expected board=windows (a board id, then 0 to 100000), got \"Daily=3\"\n"},
        {"retention:\n  board_windows: [\"daily\"]\n", "got \"daily\""},
        {"retention:\n  board_windows: [\"daily=\"]\n", "got \"daily=\""},
        {"retention:\n  board_windows: [\"daily=-1\"]\n", "got \"daily=-1\""},
        {"retention:\n  board_windows: [\"daily=100001\"]\n", "got \"daily=100001\""},
        {"retention:\n  board_windows: [\"=3\"]\n", "got \"=3\""},
        {"retention:\n  board_windows: [\"daily=3x\"]\n", "got \"daily=3x\""},
    };
    char yaml[512];
    setenv("RANKD_POSTGRES_PRIMARY", "host=env", 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(yaml, sizeof yaml, TWO_LINES "%s", bad[i].yaml);
        expect_only_error(state, yaml, bad[i].msg);
    }
    unsetenv("RANKD_POSTGRES_PRIMARY");

    rankd_config_t *cfg = load_ok(state, PRIMARY
        "worker_threads: 64\n"
        "listen: \"[::1]:1\"\n"
        "http:\n  body_limit: 67108864\n  cache_max_age: 86400\n"
        "  cors_origins: [\"capacitor://localhost\", \"http://[::1]:8000\", \"https://a.example:443\"]\n"
        "auth:\n  cursor_secret: \"" /* 256 bytes */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\n");
    assert_int_equal(cfg->worker_threads, 64);
    assert_string_equal(cfg->listen_host, "::1");
    assert_int_equal(cfg->listen_port, 1);
    assert_int_equal(cfg->body_limit, 67108864);
    assert_int_equal(cfg->cache_max_age, 86400);
    assert_int_equal(cfg->n_cors_origins, 3);
    assert_int_equal(strlen(cfg->cursor_secret), 256);
    config_free(cfg);

    cfg = load_ok(state, PRIMARY "retention:\n  windows: 12\n  log_months: 6\n"
                         "  board_windows: [\"daily=30\", \"daily-2=0\", \"weekly_1=100000\"]\n");
    assert_int_equal(cfg->retention_log_months, 6);
    assert_int_equal(config_retention_windows(cfg, "daily"), 30);
    assert_int_equal(config_retention_windows(cfg, "daily-2"), 0); /* its own: keep all */
    assert_int_equal(config_retention_windows(cfg, "weekly_1"), 100000);
    assert_int_equal(config_retention_windows(cfg, "dail"), 12); /* a prefix is another board */
    assert_int_equal(config_retention_windows(cfg, "daily-"), 12);
    config_free(cfg);

    cfg = load_ok(state, PRIMARY "worker_threads: 1\nlisten: \"localhost:65535\"\n");
    assert_int_equal(cfg->worker_threads, 1);
    assert_string_equal(cfg->listen_host, "localhost");
    assert_int_equal(cfg->listen_port, 65535);
    config_free(cfg);
}

static void test_duplicate_keys(void **state)
{
    expect_only_error(state, PRIMARY "listen: \"a:1\"\nlisten: \"b:2\"\n",
        "@:4:1: duplicate key \"listen\" (first at line 3)\n");
    expect_only_error(state, PRIMARY "http:\n  body_limit: 2048\n  body_limit: 4096\n",
        "@:5:3: duplicate key \"body_limit\" (first at line 4)\n");
    expect_only_error(state, "postgres:\n  primary: a\npostgres:\n  pool_size: 2\n",
        "@:3:1: duplicate key \"postgres\" (first at line 1)\n");
    expect_only_error(state, PRIMARY "auth:\n  keys:\n"
        "    - {key: \"0123456789abcdef\", role: read}\n"
        "    - {key: \"0123456789abcdef\", role: admin}\n",
        "@:6:13: auth.keys: duplicate key (first at line 5)\n");
    expect_only_error(state, PRIMARY "auth:\n  keys:\n"
        "    - {key: \"0123456789abcdef\", role: read, role: write}\n",
        "@:5:45: duplicate key \"role\" (first at line 5)\n");
    expect_only_error(state, PRIMARY "boards:\n"
        "  - {id: demo, title: A}\n"
        "  - {id: other, title: B}\n"
        "  - {id: demo, title: C}\n",
        "@:6:10: boards: duplicate board id \"demo\" (first at line 4)\n");
    expect_only_error(state, PRIMARY "boards:\n  - id: demo\n    title: A\n    metadata:\n      a: 1\n      a: 2\n",
        "@:8:7: boards.metadata: duplicate key \"a\" (first at line 7)\n");
}

/* The size parser itself: every unit, the space, and each way a size is not one. */
static void test_size_parser(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long want;
    } good[] = {
        {"0", 0}, {"1", 1}, {"1024", 1024}, {"1B", 1}, {"1b", 1}, {"1k", 1024}, {"1K", 1024}, {"1kb", 1024},
        {"1KB", 1024}, {"1KiB", 1024}, {"1kib", 1024}, {"64m", 64LL << 20}, {"64MiB", 64LL << 20},
        {"64 MiB", 64LL << 20}, {"64 mb", 64LL << 20}, {"2g", 2LL << 30}, {"2GiB", 2LL << 30}, {"1t", 1LL << 40},
        {"1TiB", 1LL << 40}, {"0k", 0}, {"007k", 7 << 10}, {"8388607TiB", 8388607LL << 40},
        {"9223372036854775807", 9223372036854775807LL},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        long long v = -1;
        if (cfg_parse_size(good[i].text, &v) != 0 || v != good[i].want)
            fail_msg("%s: got %lld, want %lld", good[i].text, v, good[i].want);
    }
    static const char *const garbage[] = {
        "", " ", "k", "MiB", "1.5g", "1,024", "+1k", "1e3", "0x10", "64XB", "64 ", " 64", "64  MiB", "64\tMiB",
        "64MiBs", "64 M i B", "64kk", "64iB", "1 B B", "-", "-k",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        long long v = 0;
        if (cfg_parse_size(garbage[i], &v) != -1)
            fail_msg("\"%s\" read as a size", garbage[i]);
    }
    static const char *const out_of_range[] = {
        "-1", "-1k", "-0", "9223372036854775808", "99999999999999999999999", "8388608TiB", "8589934592GiB",
        "17179869184TiB",
    };
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++) {
        long long v = 0;
        if (cfg_parse_size(out_of_range[i], &v) != -2)
            fail_msg("\"%s\" not refused as out of range", out_of_range[i]);
    }
}

/* Issue 49 item 7: every size setting takes KiB/MiB/GiB/TiB and k/m/g/t (all 1024-based, as nginx
 * reads them; an optional B, and one space before the unit), in the file and the environment. */
static void test_sizes(void **state)
{
    fixture_t *f = *state;
    rankd_config_t *cfg = load_ok(state,
        PRIMARY
        "http:\n"
        "  body_limit: 64k\n"
        "  batch_body_limit: 2MiB\n"
        "  import_body_limit: 1g\n"
        "  batch_response_limit: 4 MiB\n"
        "  body_bytes_per_ip: 32mb\n"
        "  max_response_bytes_in_flight: \"256MiB\"\n"
        "  response_bytes_per_ip: 16M\n"
        "  send_buffer_bytes: 256KiB\n"
        "cache:\n"
        "  max_bytes: 64MiB\n"
        "  rank_tier: 1TiB\n");
    assert_int_equal(cfg->body_limit, 65536);
    assert_int_equal(cfg->batch_body_limit, 2097152);
    assert_int_equal(cfg->import_body_limit, 1073741824);
    assert_int_equal(cfg->batch_response_limit, 4194304);
    assert_int_equal(cfg->body_bytes_per_ip, 33554432);
    assert_int_equal(cfg->max_response_bytes_in_flight, 268435456);
    assert_int_equal(cfg->response_bytes_per_ip, 16777216);
    assert_int_equal(cfg->send_buffer_bytes, 262144);
    assert_int_equal(cfg->cache_max_bytes, 67108864);
    assert_int_equal(cfg->rank_tier_bytes, 1099511627776ULL);
    config_free(cfg);

    /* The environment, as the issue wrote it. */
    setenv("RANKD_RANK_TIER", "64MiB", 1);
    setenv("RANKD_BODY_LIMIT", "1024B", 1);
    cfg = load_ok(state, PRIMARY);
    assert_int_equal(cfg->rank_tier_bytes, 67108864);
    assert_int_equal(cfg->body_limit, 1024);
    config_free(cfg);
    unsetenv("RANKD_BODY_LIMIT");

    /* Garbage, fractions, negatives, overflow and bounds: each named where it was given. */
    static const struct {
        const char *yaml;
        const char *msg;
    } bad[] = {
        {"cache:\n  max_bytes: 64XB\n", "@:4:14: cache.max_bytes: expected a size in bytes"},
        {"cache:\n  max_bytes: 1.5g\n", "@:4:14: cache.max_bytes: expected a size in bytes"},
        {"cache:\n  max_bytes: 64  MiB\n", "@:4:14: cache.max_bytes: expected a size in bytes"},
        {"cache:\n  max_bytes: MiB\n", "@:4:14: cache.max_bytes: expected a size in bytes"},
        {"cache:\n  max_bytes: +1k\n", "@:4:14: cache.max_bytes: expected a size in bytes"},
        {"cache:\n  max_bytes: -1k\n", "@:4:14: cache.max_bytes: -1k is out of range (0..68719476736, 64 GiB)\n"},
        {"cache:\n  max_bytes: 65GiB\n", "@:4:14: cache.max_bytes: 65GiB is out of range (0..68719476736, 64 GiB)\n"},
        {"cache:\n  max_bytes: 99999999999999999999\n", "cache.max_bytes: 99999999999999999999 is out of range"},
        {"cache:\n  max_bytes: 17179869184TiB\n", "cache.max_bytes: 17179869184TiB is out of range"},
        {"http:\n  body_limit: 1023B\n", "@:4:15: http.body_limit: 1023B is out of range (1024..67108864, 64 MiB)\n"},
        {"http:\n  send_buffer_bytes: 65m\n", "http.send_buffer_bytes: 65m is out of range (0..67108864, 64 MiB)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, PRIMARY "%s", bad[i].yaml);
        expect_only_error(state, yaml, bad[i].msg);
    }
    setenv("RANKD_RANK_TIER", "64 M i B", 1);
    expect_only_error(state, PRIMARY, "RANKD_RANK_TIER: expected a size in bytes");
    setenv("RANKD_RANK_TIER", "2TiB", 1);
    expect_only_error(state, PRIMARY, "RANKD_RANK_TIER: 2TiB is out of range (0..1099511627776, 1 TiB)\n");
    unsetenv("RANKD_RANK_TIER");
    (void)f;
}

static void test_env_overrides(void **state)
{
    setenv("RANKD_LISTEN", "10.0.0.1:7000", 1);
    setenv("RANKD_WORKER_THREADS", "5", 1);
    setenv("RANKD_LOG_LEVEL", "error", 1);
    setenv("RANKD_BODY_LIMIT", "4096", 1);
    setenv("RANKD_BATCH_BODY_LIMIT", "8192", 1);
    setenv("RANKD_CORS_ORIGINS", " https://a.example , http://b.example:8080,,", 1);
    setenv("RANKD_POSTGRES_PRIMARY", "host=env-primary", 1);
    setenv("RANKD_POSTGRES_REPLICAS", "host=r1 port=1; host=r2 port=2 ;", 1);
    setenv("RANKD_REDIS_URL", "redis://:pw@env-redis:6379/3", 1);
    setenv("RANKD_PUBLIC_READS", "false", 1);
    setenv("RANKD_CURSOR_SECRET", "env-cursor-secret-0123", 1);
    setenv("RANKD_METRICS_AUTH", "admin", 1);
    setenv("RANKD_ADMIN_KEY", "env-admin-key-0123456", 1);
    setenv("RANKD_WRITE_KEY", "env-write-key-0123456", 1);
    setenv("RANKD_READ_KEY", "file-read-key-0123456", 1); /* same key, same role: no error */

    rankd_config_t *cfg = load_ok(state,
        "listen: \"127.0.0.1:8080\"\nworker_threads: 2\nlog_level: debug\n"
        "http:\n  body_limit: 2048\n  batch_body_limit: 2048\n  cors_origins: [\"*\"]\n"
        "postgres:\n  primary: host=file\n  replicas: [host=file-replica]\n"
        "redis:\n  url: \"redis://file:6379/0\"\n"
        "auth:\n  public_reads: true\n  cursor_secret: file-cursor-secret-0123\n  metrics_auth: none\n"
        "  keys:\n    - {key: file-read-key-0123456, role: read}\n");
    assert_string_equal(cfg->listen_host, "10.0.0.1");
    assert_int_equal(cfg->listen_port, 7000);
    assert_int_equal(cfg->worker_threads, 5);
    assert_int_equal(cfg->log_level, LOG_ERROR);
    assert_int_equal(cfg->body_limit, 4096);
    assert_int_equal(cfg->batch_body_limit, 8192);
    assert_int_equal(cfg->n_cors_origins, 2);
    assert_string_equal(cfg->cors_origins[0], "https://a.example");
    assert_string_equal(cfg->cors_origins[1], "http://b.example:8080");
    assert_string_equal(cfg->pg_primary, "host=env-primary");
    assert_int_equal(cfg->n_pg_replicas, 2);
    assert_string_equal(cfg->pg_replicas[0], "host=r1 port=1");
    assert_string_equal(cfg->pg_replicas[1], "host=r2 port=2");
    assert_string_equal(cfg->redis_url, "redis://:pw@env-redis:6379/3");
    assert_false(cfg->public_reads);
    assert_string_equal(cfg->cursor_secret, "env-cursor-secret-0123");
    assert_int_equal(cfg->metrics_auth, METRICS_AUTH_ADMIN);
    assert_int_equal(cfg->n_keys, 3);
    assert_int_equal(config_key_role(cfg, "file-read-key-0123456", NULL), ROLE_READ);
    assert_int_equal(config_key_role(cfg, "env-admin-key-0123456", NULL), ROLE_ADMIN);
    assert_int_equal(config_key_role(cfg, "env-write-key-0123456", NULL), ROLE_WRITE);
    config_free(cfg);

    /* An empty list from the environment empties the file's list. */
    setenv("RANKD_CORS_ORIGINS", "", 1);
    setenv("RANKD_POSTGRES_REPLICAS", "", 1);
    cfg = load_ok(state, PRIMARY "  replicas: [a]\n");
    assert_int_equal(cfg->n_cors_origins, 0);
    assert_int_equal(cfg->n_pg_replicas, 0);
    assert_false(config_cors_allowed(cfg, "https://a.example"));
    config_free(cfg);
}

static void test_env_redis_empty(void **state)
{
    setenv("RANKD_REDIS_URL", "", 1);
    rankd_config_t *cfg = load_ok(state, PRIMARY "redis:\n  url: \"redis://127.0.0.1:6380/0\"\n");
    assert_null(cfg->redis_url);
    config_free(cfg);

    unsetenv("RANKD_REDIS_URL");
    cfg = load_ok(state, PRIMARY "redis:\n  url: \"\"\n");
    assert_null(cfg->redis_url);
    config_free(cfg);
    cfg = load_ok(state, PRIMARY "redis:\n  url: ~\n");
    assert_null(cfg->redis_url);
    config_free(cfg);
}

static void test_env_errors(void **state)
{
    fixture_t *f = *state;
    setenv("RANKD_BODY_LIMIT", "64kk", 1);
    setenv("RANKD_BATCH_BODY_LIMIT", "100", 1);
    setenv("RANKD_PUBLIC_READS", "1", 1);
    setenv("RANKD_METRICS_AUTH", "everyone", 1);
    setenv("RANKD_LISTEN", "8080", 1);
    setenv("RANKD_WORKER_THREADS", "", 1);
    setenv("RANKD_LOG_LEVEL", "INFO", 1);
    setenv("RANKD_CORS_ORIGINS", "https://ok.example,bad", 1);
    setenv("RANKD_CURSOR_SECRET", "short-secret", 1);
    setenv("RANKD_ADMIN_KEY", "tiny", 1);
    setenv("RANKD_WRITE_KEY", "has a space in the key", 1);
    setenv("RANKD_REDIS_URL", "redis://:hunter2@host/0", 1);
    setenv("RANKD_POSTGRES_PRIMARY", "", 1);

    rankd_config_t *cfg = load(state, PRIMARY "worker_threads: 0\n");
    assert_null(cfg);
    expect_error(state, "@:3:17: worker_threads: 0 is out of range (1..64)\n");
    expect_error(state, "RANKD_BODY_LIMIT: expected a size in bytes");
    expect_error(state, "got \"64kk\"\n");
    expect_error(state, "RANKD_BATCH_BODY_LIMIT: 100 is out of range (1024..268435456, 256 MiB)\n");
    expect_error(state, "RANKD_PUBLIC_READS: expected true or false, got \"1\"\n");
    expect_error(state, "RANKD_METRICS_AUTH: expected one of none, admin, got \"everyone\"\n");
    expect_error(state, "RANKD_LISTEN: expected host:port");
    expect_error(state, "RANKD_WORKER_THREADS: expected an integer, got \"\"\n");
    expect_error(state, "RANKD_LOG_LEVEL: expected one of debug, info, warn, error, got \"INFO\"\n");
    expect_error(state, "RANKD_CORS_ORIGINS: expected \"*\" or scheme://host[:port], got \"bad\"\n");
    expect_error(state, "RANKD_CURSOR_SECRET: must be 16 to 256 bytes long\n");
    expect_error(state, "RANKD_ADMIN_KEY: must be 16 to 256 bytes long\n");
    expect_error(state, "RANKD_WRITE_KEY: must be printable ASCII without spaces (0x21-0x7E)\n");
    expect_error(state, "RANKD_REDIS_URL: " REDIS_URL_FORMS "\n");
    expect_error(state, "RANKD_POSTGRES_PRIMARY: must not be empty\n");
    assert_int_equal(count_lines(f->errs), 14);
    /* secrets are never echoed */
    assert_null(strstr(f->errs, "hunter2"));
    assert_null(strstr(f->errs, "short-secret"));
    assert_null(strstr(f->errs, "tiny"));

    /* one key with two roles */
    test_setup(state);
    setenv("RANKD_ADMIN_KEY", "same-key-0123456789", 1);
    setenv("RANKD_READ_KEY", "same-key-0123456789", 1);
    expect_only_error(state, PRIMARY, "RANKD_READ_KEY: this key is already configured with role admin\n");
}

static void test_redis_url(void **state)
{
    static const char *const good[] = {
        "redis://127.0.0.1:6380/0", "redis://localhost:6379/15", "redis://:p%40ss:w@rd@h:1/0",
        "redis://[::1]:6379/1", "redis://cache-1.internal:65535/123",
        "redis+cluster://127.0.0.1:7000", "redis+cluster://:pw@a:7000,b:7001,[::1]:7002",
        "redis+sentinel://s1:26379,s2:26379/mymaster", "redis+sentinel://:pw@s1:26379/mymaster/3",
    };
    static const char *const bad[] = {
        "127.0.0.1:6379", "redis://127.0.0.1/0", "redis://127.0.0.1:6379", "redis://127.0.0.1:6379/",
        "redis://127.0.0.1:0/0", "redis://h:6379/x", "redis://user:pw@h:6379/0", "redis://:@h:6379/0",
        "rediss://h:6379/0", "redis://:6379/0", "redis://h:6379/0/1", "redis://h:6379/-1",
        "redis+cluster://a:7000/0", "redis+cluster://a:7000,", "redis+cluster://a:7000,,b:7001", "redis+cluster://",
        "redis+cluster://a", "redis://a:1,b:2/0", "redis+sentinel://s1:26379", "redis+sentinel://s1:26379/",
        "redis+sentinel://s1:26379/m/x", "redis+sentinel://s1:26379/m/1/2",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setenv("RANKD_REDIS_URL", good[i], 1);
        rankd_config_t *cfg = load_ok(state, PRIMARY);
        assert_string_equal(cfg->redis_url, good[i]);
        config_free(cfg);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("RANKD_REDIS_URL", bad[i], 1);
        expect_only_error(state, PRIMARY, "RANKD_REDIS_URL: " REDIS_URL_FORMS "\n");
    }
    unsetenv("RANKD_REDIS_URL");
    expect_only_error(state, PRIMARY "redis:\n  url: \"redis://:secretpw@h/0\"\n",
        "@:4:8: redis.url: " REDIS_URL_FORMS "\n");
    assert_null(strstr(((fixture_t *)*state)->errs, "secretpw"));
}

static void test_key_roles(void **state)
{
    setenv("RANKD_READ_KEY", "env-read-key-0123456", 1);
    rankd_config_t *cfg = load_ok(state, PRIMARY "auth:\n  keys:\n"
        "    - {key: admin-key-0123456789, role: admin}\n"
        "    - {key: write-key-0123456789, role: write}\n"
        "    - {key: read-key-01234567890, role: read}\n");
    assert_int_equal(config_key_role(cfg, "admin-key-0123456789", NULL), ROLE_ADMIN);
    assert_int_equal(config_key_role(cfg, "write-key-0123456789", NULL), ROLE_WRITE);
    assert_int_equal(config_key_role(cfg, "read-key-01234567890", NULL), ROLE_READ);
    assert_int_equal(config_key_role(cfg, "env-read-key-0123456", NULL), ROLE_READ);
    assert_int_equal(config_key_role(cfg, "admin-key-012345678", NULL), ROLE_NONE);   /* prefix */
    assert_int_equal(config_key_role(cfg, "admin-key-01234567890", NULL), ROLE_NONE); /* longer */
    assert_int_equal(config_key_role(cfg, "admin-key-0123456788", NULL), ROLE_NONE);  /* last byte */
    assert_int_equal(config_key_role(cfg, "Admin-key-0123456789", NULL), ROLE_NONE);  /* first byte */
    assert_int_equal(config_key_role(cfg, "", NULL), ROLE_NONE);
    assert_int_equal(config_key_role(cfg, NULL, NULL), ROLE_NONE);
    assert_int_equal(config_key_role(NULL, "admin-key-0123456789", NULL), ROLE_NONE);
    int index = 99;
    assert_int_equal(config_key_role(cfg, "write-key-0123456789", &index), ROLE_WRITE);
    assert_int_equal(cfg->keys[index].role, ROLE_WRITE);
    assert_int_equal(index, 1);
    assert_int_equal(config_key_role(cfg, "write-key-0123456788", &index), ROLE_NONE);
    assert_int_equal(index, -1);
    config_free(cfg);

    /* missing fields, bad role */
    fixture_t *f = *state;
    unsetenv("RANKD_READ_KEY");
    cfg = load(state, PRIMARY "auth:\n  keys:\n"
        "    - {role: admin}\n"
        "    - {key: write-key-0123456789}\n"
        "    - {key: write-key-0123456789, role: root}\n"
        "    - write-key-0123456789\n");
    assert_null(cfg);
    expect_error(state, "@:5:7: auth.keys: entry is missing \"key\"\n");
    expect_error(state, "@:6:7: auth.keys: entry is missing \"role\"\n");
    expect_error(state, "@:7:41: auth.keys.role: expected one of read, write, admin, got \"root\"\n");
    expect_error(state, "@:8:7: auth.keys: expected a mapping with key and role, got a scalar\n");
    assert_int_equal(count_lines(f->errs), 4);
    assert_null(strstr(f->errs, "write-key-0123456789"));
}

static void test_cors(void **state)
{
    rankd_config_t *cfg = load_ok(state, PRIMARY); /* the default: no origin */
    assert_false(config_cors_allowed(cfg, "https://anything.example"));
    assert_false(config_cors_any(cfg));
    config_free(cfg);

    cfg = load_ok(state, PRIMARY "http:\n  cors_origins: [\"*\"]\n");
    assert_true(config_cors_allowed(cfg, "https://anything.example"));
    assert_true(config_cors_allowed(cfg, "null"));
    assert_true(config_cors_any(cfg));
    assert_false(config_cors_allowed(cfg, NULL));
    assert_false(config_cors_allowed(NULL, "https://a.example"));
    config_free(cfg);

    cfg = load_ok(state, PRIMARY "http:\n  cors_origins:\n    - https://Game.Example\n    - http://localhost:3000\n");
    assert_true(config_cors_allowed(cfg, "https://game.example"));
    assert_true(config_cors_allowed(cfg, "HTTPS://GAME.EXAMPLE"));
    assert_true(config_cors_allowed(cfg, "http://localhost:3000"));
    assert_false(config_cors_allowed(cfg, "http://localhost:3001"));
    assert_false(config_cors_allowed(cfg, "http://game.example"));
    assert_false(config_cors_allowed(cfg, "https://game.example.evil"));
    assert_false(config_cors_allowed(cfg, "https://game.example/"));
    assert_false(config_cors_allowed(cfg, ""));
    config_free(cfg);

    cfg = load_ok(state, PRIMARY "http:\n  cors_origins: []\n");
    assert_int_equal(cfg->n_cors_origins, 0);
    assert_false(config_cors_allowed(cfg, "https://game.example"));
    config_free(cfg);

    setenv("RANKD_CORS_ORIGINS", "https://a.example,*", 1);
    cfg = load_ok(state, PRIMARY "http:\n  cors_origins: []\n");
    assert_true(config_cors_allowed(cfg, "https://zzz.example"));
    config_free(cfg);
}

static void test_boards(void **state)
{
    rankd_config_t *cfg = load_ok(state, PRIMARY
        "boards:\n"
        "  - id: demo\n"
        "    title: \"Demo\"\n"
        "    sort: asc\n"
        "    operator: sum\n"
        "    reset: monthly\n"
        "    metadata:\n"
        "      z_first: 1\n"
        "      str: \"quoted 42\"\n"
        "      plain: hello world\n"
        "      num_str: '7'\n"
        "      neg: -12\n"
        "      big: 9223372036854775807\n"
        "      real: 1.5\n"
        "      yes: true\n"
        "      no: false\n"
        "      nothing: ~\n"
        "      also_null: null\n"
        "      quoted_true: \"true\"\n"
        "      nested: {a: [1, \"two\", {b: null}], c: {}}\n"
        "      list: []\n"
        "      unicode: \"h\\u00e9 \\\"q\\\" / \\\\\"\n"
        "      exp: -2.5e3\n"
        "    min_score: -9007199254740991\n"
        "    max_score: 9007199254740991\n"
        "  - id: 0speed_run-2\n"
        "    title: \"Speedrun times (ms)\"\n"
        "    sort: asc\n"
        "    operator: latest\n"
        "    reset: daily\n"
        "    min_score: 1\n"
        "    metadata: {}\n"
        "  - id: w\n"
        "    title: W\n"
        "    reset: weekly\n"
        "    max_score: 0\n"
        "    metadata: ~\n");
    assert_int_equal(cfg->n_boards, 3);
    config_board_t *b = &cfg->boards[0];
    assert_string_equal(b->id, "demo");
    assert_string_equal(b->title, "Demo");
    assert_int_equal(b->sort, SORT_ASC);
    assert_int_equal(b->op, OP_SUM);
    assert_int_equal(b->reset, RESET_MONTHLY);
    assert_string_equal(b->metadata,
        "{\"z_first\":1,\"str\":\"quoted 42\",\"plain\":\"hello world\",\"num_str\":\"7\",\"neg\":-12,"
        "\"big\":9223372036854775807,\"real\":1.5,\"yes\":true,\"no\":false,\"nothing\":null,"
        "\"also_null\":null,\"quoted_true\":\"true\",\"nested\":{\"a\":[1,\"two\",{\"b\":null}],\"c\":{}},"
        "\"list\":[],\"unicode\":\"h\xc3\xa9 \\\"q\\\" / \\\\\",\"exp\":-2500.0}");
    assert_true(b->has_min_score);
    assert_true(b->min_score == SCORE_MIN);
    assert_true(b->has_max_score);
    assert_true(b->max_score == SCORE_MAX);

    b = &cfg->boards[1];
    assert_string_equal(b->id, "0speed_run-2");
    assert_string_equal(b->title, "Speedrun times (ms)");
    assert_int_equal(b->sort, SORT_ASC);
    assert_int_equal(b->op, OP_LATEST);
    assert_int_equal(b->reset, RESET_DAILY);
    assert_string_equal(b->metadata, "{}");
    assert_true(b->has_min_score && b->min_score == 1);
    assert_false(b->has_max_score);

    b = &cfg->boards[2];
    assert_int_equal(b->sort, SORT_DESC);
    assert_int_equal(b->op, OP_BEST);
    assert_int_equal(b->reset, RESET_WEEKLY);
    assert_null(b->metadata);
    assert_false(b->has_min_score);
    assert_true(b->has_max_score && b->max_score == 0);
    config_free(cfg);

    /* min_score == max_score is allowed */
    cfg = load_ok(state, PRIMARY "boards:\n  - {id: x, title: X, min_score: 5, max_score: 5}\n");
    assert_int_equal(cfg->boards[0].min_score, 5);
    config_free(cfg);
}

static void test_board_errors(void **state)
{
    fixture_t *f = *state;
    char big[2048];
    int n;

    rankd_config_t *cfg = load(state, PRIMARY
        "boards:\n"
        "  - id: Demo\n"                          /* 4 */
        "    title: A\n"
        "  - id: ok\n"                            /* 6 */
        "    title: \"\"\n"                        /* 7 */
        "    sort: up\n"                          /* 8 */
        "    operator: max\n"                     /* 9 */
        "    reset: yearly\n"                     /* 10 */
        "  - title: no id\n"                      /* 11 */
        "  - id: notitle\n"                       /* 12 */
        "  - id: scores\n"                        /* 13 */
        "    title: S\n"
        "    min_score: 10\n"
        "    max_score: 9\n"                      /* 16 */
        "  - id: range\n"
        "    title: R\n"
        "    min_score: -9007199254740992\n"      /* 19 */
        "    max_score: 1.0\n"                    /* 20 */
        "  - id: meta\n"
        "    title: M\n"
        "    metadata: [1, 2]\n"                  /* 23 */
        "  - id: meta2\n"
        "    title: M\n"
        "    metadata: {a: 99999999999999999999, [x]: 1, b: 1e999}\n"  /* 26 */
        "  - id: a-very-long-board-id-that-goes-on-and-on-and-on-past-sixty-four-b\n" /* 27 */
        "    title: T\n"
        "  - just a string\n");                   /* 29 */
    assert_null(cfg);
    expect_error(state, "@:4:9: boards.id: expected 1 to 64 of [a-z0-9_-] starting with [a-z0-9], got \"Demo\"\n");
    expect_error(state, "@:7:12: boards.title: must be 1 to 200 bytes long\n");
    expect_error(state, "@:8:11: boards.sort: expected one of asc, desc, got \"up\"\n");
    expect_error(state, "@:9:15: boards.operator: expected one of best, latest, sum, got \"max\"\n");
    expect_error(state, "@:10:12: boards.reset: expected one of none, daily, weekly, monthly, got \"yearly\"\n");
    expect_error(state, "@:11:5: boards: entry is missing \"id\"\n");
    expect_error(state, "@:12:5: boards: entry is missing \"title\"\n");
    expect_error(state, "@:16:16: boards: max_score is less than min_score\n");
    expect_error(state, "@:19:16: boards.min_score: -9007199254740992 is out of range "
                        "(-9007199254740991..9007199254740991)\n");
    expect_error(state, "@:20:16: boards.max_score: expected an integer, got \"1.0\"\n");
    expect_error(state, "@:23:15: boards.metadata: expected a mapping, got a list\n");
    expect_error(state, "@:26:19: boards.metadata: number out of range\n");
    expect_error(state, "@:26:41: boards.metadata: keys must be strings, got a list\n");
    expect_error(state, "@:26:52: boards.metadata: number out of range\n");
    expect_error(state, "@:27:9: boards.id: must be 1 to 64 bytes long\n");
    expect_error(state, "@:29:5: boards: expected a mapping with id and title, got a scalar\n");
    assert_int_equal(count_lines(f->errs), 16);

    /* metadata: 1024 bytes of compact JSON pass, 1025 do not */
    n = snprintf(big, sizeof big, PRIMARY "boards:\n  - id: m\n    title: M\n    metadata: {k: \"%0*d\"}\n",
                 1024 - 8, 0); /* {"k":"..."} is 8 bytes + the string */
    assert_true(n > 0 && (size_t)n < sizeof big);
    cfg = load_ok(state, big);
    assert_int_equal(strlen(cfg->boards[0].metadata), 1024);
    config_free(cfg);
    snprintf(big, sizeof big, PRIMARY "boards:\n  - id: m\n    title: M\n    metadata: {k: \"%0*d\"}\n", 1024 - 7, 0);
    expect_only_error(state, big, "@:6:15: boards.metadata: 1025 bytes as compact JSON, at most 1024\n");

    /* aliases: a cycle and an exponential expansion end as "too long", not a hang */
    expect_only_error(state, PRIMARY "boards:\n  - id: m\n    title: M\n    metadata: &m {a: *m}\n",
        "boards.metadata: longer than 1024 bytes as compact JSON\n");
    cfg = load(state, PRIMARY
        "boards:\n  - id: m\n    title: M\n    metadata:\n"
        "      a: &a [1, 1, 1, 1, 1, 1, 1, 1]\n"
        "      b: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
        "      c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n"
        "      d: [*c, *c, *c, *c, *c, *c, *c, *c]\n");
    assert_null(cfg);
    expect_error(state, "boards.metadata: longer than 1024 bytes as compact JSON\n");
    assert_int_equal(count_lines(f->errs), 1);
}

static void test_yaml_errors(void **state)
{
    fixture_t *f = *state;
    rankd_config_t *cfg = load(state, PRIMARY "http:\n  body_limit: [1, 2\nlisten: x\n");
    assert_null(cfg);
    expect_error(state, "@:5:7: did not find expected ',' or ']' (while parsing a flow sequence at line 4)\n");
    assert_int_equal(count_lines(f->errs), 1);

    expect_only_error(state, PRIMARY "listen: \"a:1\n", "@:4:1: found unexpected end of stream");
    expect_only_error(state, PRIMARY "listen: *nothing\n", "@:3:9: found undefined alias");
    expect_only_error(state, PRIMARY "---\nlisten: \"a:1\"\n", "@:4:1: only one YAML document is allowed\n");
    expect_only_error(state, PRIMARY "listen: \"\\0:1\"\n", "@:3:9: listen: must not contain NUL bytes\n");
    expect_only_error(state, PRIMARY "boards:\n  - id: m\n    title: M\n    metadata: {\"a\\0b\": 1}\n",
        "@:6:16: boards.metadata: keys must not contain NUL bytes\n");
    expect_only_error(state, PRIMARY "boards:\n  - id: m\n    title: M\n    metadata: {a: \"x\\0\"}\n",
        "@:6:19: boards.metadata: must not contain NUL bytes\n");
    cfg = load_n(state, "listen: \"\xff\xfe\"\n", 14);
    assert_null(cfg);
    expect_error(state, "@: invalid leading UTF-8 octet at byte 9\n");

    /* a missing file, and no file at all */
    cfg = load_path(f, "/nonexistent/rankd.yaml");
    assert_null(cfg);
    assert_string_equal(f->errs, "/nonexistent/rankd.yaml: cannot open: No such file or directory\n");
    FILE *sink = fopen("/dev/null", "w");
    assert_non_null(sink);
    assert_null(config_load(NULL, sink));
    fclose(sink);
    config_free(NULL);
}

static void test_shipped_files(void **state)
{
    fixture_t *f = *state;
    rankd_config_t *cfg = load_path(f, "config/rankd.yaml");
    if (cfg == NULL)
        fail_msg("config/rankd.yaml:\n%s", f->errs);
    assert_string_equal(cfg->listen_host, "127.0.0.1");
    assert_int_equal(cfg->listen_port, 8080);
    assert_string_equal(cfg->pg_primary, "host=127.0.0.1 port=5433 dbname=rankd user=rankd");
    assert_string_equal(cfg->redis_url, "redis://127.0.0.1:6380/0");
    assert_true(cfg->public_reads);
    assert_string_equal(cfg->cursor_secret, "dev-cursor-secret-change-me");
    assert_int_equal(config_key_role(cfg, "dev-admin-key-change-me", NULL), ROLE_ADMIN);
    assert_int_equal(config_key_role(cfg, "dev-write-key-change-me", NULL), ROLE_WRITE);
    assert_int_equal(cfg->n_boards, 2);
    assert_string_equal(cfg->boards[0].id, "arcade");
    assert_string_equal(cfg->boards[0].title, "Arcade high scores");
    assert_int_equal(cfg->boards[0].sort, SORT_DESC);
    assert_int_equal(cfg->boards[0].op, OP_BEST);
    assert_int_equal(cfg->boards[0].reset, RESET_NONE);
    assert_false(cfg->boards[0].has_min_score);
    assert_string_equal(cfg->boards[1].id, "speedrun");
    assert_string_equal(cfg->boards[1].title, "Speedrun times (ms)");
    assert_int_equal(cfg->boards[1].sort, SORT_ASC);
    assert_int_equal(cfg->boards[1].op, OP_BEST);
    assert_int_equal(cfg->boards[1].reset, RESET_WEEKLY);
    assert_true(cfg->boards[1].has_min_score && cfg->boards[1].min_score == 1);
    assert_false(cfg->boards[1].has_max_score);
    config_free(cfg);

    cfg = load_path(f, "config/rankd.example.yaml");
    if (cfg == NULL)
        fail_msg("config/rankd.example.yaml:\n%s", f->errs);
    assert_int_equal(cfg->n_keys, 3);
    assert_int_equal(cfg->n_boards, 1);
    assert_string_equal(cfg->boards[0].metadata, "{\"game\":\"demo\",\"season\":1,\"ranked\":true}");
    /* Its cursor secret and its three keys are published: served as they are, all four refused. */
    FILE *sink = fopen("/dev/null", "w");
    assert_non_null(sink);
    assert_int_equal(config_check_secrets(cfg, sink), 4);
    config_free(cfg);
    /* The development configuration keeps its convenient keys on loopback. */
    cfg = load_path(f, "config/rankd.yaml");
    assert_non_null(cfg);
    assert_true(cfg->development);
    assert_int_equal(config_check_secrets(cfg, sink), 0);
    config_free(cfg);
    fclose(sink);
}

/* The parts of a Redis address as the pool and the pipe connect to them (the same parser as
 * test_redis_url's configuration check). */
static void test_redis_url_parts(void **state)
{
    (void)state;
    redis_url_t u;
    assert_true(redis_url_parse("redis://127.0.0.1:6379/0", &u));
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");
    assert_true(redis_url_parse("redis://:s3cret@cache.internal:6380/127", &u));
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.db, 127);
    assert_true(redis_url_parse("redis://:p@ss@h:1/1", &u)); /* the last @ ends the password */
    assert_string_equal(u.password, "p@ss");
    /* Issue 49 item 4: an unescaped '/' or '@' in a Redis password is read as meant (nothing of it
     * reaches a host name a connect error would name). */
    assert_true(redis_url_parse("redis://:ab12/S3c@ret@h:1/0", &u));
    assert_string_equal(u.password, "ab12/S3c@ret");
    assert_string_equal(u.host, "h");
    assert_true(redis_url_parse("redis://[::1]:7000/2", &u)); /* the pool's old parser cut it at the first ':' */
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_true(redis_url_parse("redis://h:1/999999999", &u));
    assert_int_equal(u.db, 999999999);
    const char *bad[] = {"", "redis://", "http://h:1/0", "redis://h:1", "redis://h/0", "redis://h:1/", "redis://h:0/0",
                         "redis://h:65536/0", "redis://h:1/x", "redis://h:1/-1", "redis://h:1/1234567890",
                         "redis://:@h:1/0", "redis://pw@h:1/0", "redis://:1/0", "redis://[]:1/0", "redis://[::1/0",
                         "redis://h_ost!:1/0", "redis://h:1/0/1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (redis_url_parse(bad[i], &u))
            fail_msg("accepted %s", bad[i]);
    char long_host[300];
    memset(long_host, 'a', sizeof long_host);
    memcpy(long_host, "redis://", 8);
    snprintf(long_host + 280, 20, ":1/0");
    assert_false(redis_url_parse(long_host, &u));

    assert_true(redis_url_parse("redis://h:1/0", &u));
    assert_int_equal(u.kind, REDIS_URL_SINGLE);
    assert_int_equal(u.n_addrs, 1);
    assert_true(redis_url_parse("redis+cluster://:pw@a:7000,b:7001,[::1]:7002", &u));
    assert_int_equal(u.kind, REDIS_URL_CLUSTER);
    assert_int_equal(u.n_addrs, 3);
    assert_string_equal(u.addrs[0].host, "a");
    assert_int_equal(u.addrs[1].port, 7001);
    assert_string_equal(u.addrs[2].host, "::1");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 0);
    assert_true(redis_url_parse("redis+sentinel://s1:26379,s2:26380/my-master/4", &u));
    assert_int_equal(u.kind, REDIS_URL_SENTINEL);
    assert_int_equal(u.n_addrs, 2);
    assert_string_equal(u.master, "my-master");
    assert_int_equal(u.db, 4);
    assert_true(redis_url_parse("redis+sentinel://s1:26379/m", &u));
    assert_int_equal(u.db, 0);
    char many[400] = "redis+cluster://h:1";
    for (int i = 0; i < REDIS_URL_ADDRS_MAX; i++) /* one address too many */
        strcat(many, ",h:2");
    assert_false(redis_url_parse(many, &u));
}

/* Redis Cluster's own examples (cluster-spec: "123456789" has CRC16 0x31C3) and its hash tags. */
static void test_redis_slot(void **state)
{
    (void)state;
    assert_int_equal(redis_crc16("123456789", 9), 0x31C3);
    assert_int_equal(redis_slot("foo", 3), 12182);
    assert_int_equal(redis_slot("{user1000}.following", 20), redis_slot("user1000", 8));
    assert_int_equal(redis_slot("foo{}{bar}", 10), redis_slot("foo{}{bar}", 10) % REDIS_SLOTS);
    assert_int_equal(redis_slot("foo{}{bar}", 10), redis_crc16("foo{}{bar}", 10) % REDIS_SLOTS); /* empty tag: whole key */
    assert_int_equal(redis_slot("foo{{bar}}zap", 13), redis_slot("{bar", 4));                      /* first { to next } */
    assert_int_equal(redis_slot("foo{bar}{zap}", 13), redis_slot("bar", 3));
    assert_int_equal(redis_slot("rankd:{g7}:20000:z4", 19), redis_slot("rankd:{g7}:20000:h4:9", 20));
    assert_int_equal(redis_slot("{", 1), redis_crc16("{", 1) % REDIS_SLOTS);
}

/* What secret_flaw() refuses: published values, short ones, and those that repeat themselves. */
static void test_secret_flaws(void **state)
{
    (void)state;
    /* gen-key's shape (43 base64url characters of 32 random bytes), and 32 random bytes in hex */
    assert_null(secret_flaw("q3Jx9_VbT0kLw2ZpQe7HnYc4-RfUa8MdGs1oXiB6tE5"));
    assert_null(secret_flaw("9f2c47e1b0a35d68c4e29f7a1b3d0c5e8a7f6b2d4c1e0f3a9b8d7c6e5f4a3b2c"));
    const char *published[] = {"dev-admin-key-change-me", "example-read-key-change-me", "rankd-dev-cursor-secret",
                               "change-me-to-a-long-random-string", "dev-cursor-secret-change-me"};
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++)
        assert_string_equal(secret_flaw(published[i]), "is published in rankd's README or example files");
    assert_string_equal(secret_flaw("q3Jx9_VbT0kLw2ZpQe7HnYc4-RfUa8M"), "is shorter than 32 bytes"); /* 31 */
    assert_non_null(secret_flaw("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_non_null(secret_flaw("abababababababababababababababababababab"));
    assert_non_null(secret_flaw("passwordpasswordpasswordpassword"));
    assert_non_null(secret_flaw("Xq7-key-rankd-production-Xq7-key-rankd-production")); /* repeats a stretch */
    assert_non_null(secret_flaw("abcdefghijklmnopqrstuvwxyzABCDEFGH"));                 /* a run */
    assert_non_null(secret_flaw("ZY9876543210qwertyuiopasdfghjklzxcv"));                /* a run down */
    assert_true(secret_entropy_bits("aaaa", 4) == 0.0);
    assert_true(secret_entropy_bits("ab", 2) == 2.0);
    assert_true(secret_host_is_loopback("127.0.0.1") && secret_host_is_loopback("127.1.2.3"));
    assert_true(secret_host_is_loopback("::1") && secret_host_is_loopback("localhost"));
    assert_false(secret_host_is_loopback("0.0.0.0") || secret_host_is_loopback("::"));
    assert_false(secret_host_is_loopback("10.0.0.1") || secret_host_is_loopback("rankd.internal"));
}

#define GOOD_SECRET "q3Jx9_VbT0kLw2ZpQe7HnYc4-RfUa8MdGs1oXiB6tE5"
#define GOOD_KEY "Lm4nB7vC1xZ9aS2dF6gH0jK3lP8oI5uY-tR_eW1qN7m"

/* What config_check_secrets() prints for a loaded file; the count it returned in *found. */
static char *secret_findings(void **state, const char *yaml, unsigned *found)
{
    rankd_config_t *cfg = load_ok(state, yaml);
    char *out = NULL;
    size_t len = 0;
    FILE *errs = open_memstream(&out, &len);
    assert_non_null(errs);
    *found = config_check_secrets(cfg, errs);
    fclose(errs);
    config_free(cfg);
    return out;
}

/* Outside the development configuration every unsafe secret is named by where it was given,
 * never shown; a development configuration is let through on loopback only. */
static void test_unsafe_secrets(void **state)
{
    fixture_t *f = *state;
    static const char body[] =
        PRIMARY
        "auth:\n"
        "  cursor_secret: \"dev-cursor-secret-change-me\"\n"
        "  keys:\n"
        "    - {key: \"example-admin-key-change-me\", role: admin}\n"
        "    - {key: \"" GOOD_KEY "\", role: write}\n"
        "    - {key: \"a-read-key-of-31-bytes-0123456\", role: read}\n";
    unsigned found;
    char *out = secret_findings(state, body, &found);
    assert_int_equal(found, 3);
    char want[512];
    snprintf(want, sizeof want, "%s:4:18: auth.cursor_secret is published in rankd's README or example files; "
             "generate one with `rankd config gen-key`\n", f->path);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "%s:6:13: auth.keys: this admin key is published", f->path);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "%s:8:13: auth.keys: this read key is shorter than 32 bytes", f->path);
    assert_non_null(strstr(out, want));
    assert_null(strstr(out, "write key"));
    assert_null(strstr(out, "change-me"));  /* no value is ever shown */
    assert_null(strstr(out, "0123456"));
    free(out);

    /* The development configuration on loopback takes them all; anywhere else it does not. */
    char dev[1024];
    snprintf(dev, sizeof dev, "development: true\n%s", body);
    out = secret_findings(state, dev, &found);
    assert_int_equal(found, 0);
    free(out);
    snprintf(dev, sizeof dev, "development: true\nlisten: \"0.0.0.0:8080\"\n%s", body);
    out = secret_findings(state, dev, &found);
    assert_int_equal(found, 3);
    free(out);

    /* Issue 49 item 17: a reload is judged by the listener that runs (development and listen
     * take effect at a restart only). */
    snprintf(dev, sizeof dev, "development: true\n%s", body);
    rankd_config_t *file_dev = load_ok(state, dev);
    snprintf(dev, sizeof dev, "listen: \"0.0.0.0:8080\"\n%s", body);
    rankd_config_t *running_prod = load_ok(state, dev);
    snprintf(dev, sizeof dev, "development: true\n%s", body);
    rankd_config_t *running_dev = load_ok(state, dev);
    char *said = NULL;
    size_t said_len = 0;
    FILE *sink = open_memstream(&said, &said_len);
    assert_non_null(sink);
    assert_int_equal(config_check_secrets_under(file_dev, running_prod, sink), 3); /* the issue's case */
    assert_int_equal(config_check_secrets_under(file_dev, running_dev, sink), 0);  /* still a loopback dev server */
    assert_int_equal(config_check_secrets_under(running_prod, running_dev, sink), 3); /* the file leaves development */
    assert_int_equal(config_check_secrets_under(file_dev, NULL, sink), 0);         /* a start: the file's own */
    fclose(sink);
    assert_non_null(strstr(said, "development and listen take effect only at a restart: this server runs with "
                                 "development: false, listening on 0.0.0.0"));
    free(said);
    config_free(file_dev);
    config_free(running_prod);
    config_free(running_dev);

    /* No cursor secret, a weak previous one, and keys from the environment, named by variable. */
    setenv("RANKD_ADMIN_KEY", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1);
    setenv("RANKD_CURSOR_SECRET_PREVIOUS", "the-secret-before-the-rotation", 1);
    out = secret_findings(state, PRIMARY, &found);
    assert_int_equal(found, 3);
    assert_non_null(strstr(out, "auth.cursor_secret is not set"));
    assert_non_null(strstr(out, "RANKD_CURSOR_SECRET_PREVIOUS: auth.cursor_secret_previous is published"));
    assert_non_null(strstr(out, "RANKD_ADMIN_KEY: auth.keys: this admin key has too little entropy"));
    free(out);
    unsetenv("RANKD_ADMIN_KEY");
    unsetenv("RANKD_CURSOR_SECRET_PREVIOUS");

    /* Good ones pass. */
    out = secret_findings(state,
                          PRIMARY "auth:\n  cursor_secret: \"" GOOD_SECRET "\"\n  keys:\n    - {key: \"" GOOD_KEY
                                  "\", role: admin}\n",
                          &found);
    assert_int_equal(found, 0);
    free(out);
}

/* Each limit fits the descriptors allowed, and two that do not fit together are said (before,
 * live streams' taken sockets were not weighed: 4096 connections and 20000 listeners started
 * under a limit of 8192 without a word). */
static void test_fd_budget(void **state)
{
    (void)state;
    fd_budget_t b = fd_budget_fit(1048576, 4096, 20000); /* fits: unchanged */
    assert_false(b.shrunk);
    assert_false(b.shared);
    assert_int_equal(b.max_connections, 4096);
    assert_int_equal(b.max_listeners, 20000);
    b = fd_budget_fit(0, 4096, 20000); /* no limit */
    assert_false(b.shrunk);
    assert_false(b.shared);
    b = fd_budget_fit(8192, 4096, 20000); /* room 7936: the listeners lowered, and the two shared */
    assert_true(b.shrunk);
    assert_true(b.shared);
    assert_int_equal(b.room, 7936);
    assert_int_equal(b.max_connections, 4096);
    assert_int_equal(b.max_listeners, 7936);
    b = fd_budget_fit(8192, 4096, 1000); /* both fit together */
    assert_false(b.shrunk);
    assert_false(b.shared);
    b = fd_budget_fit(8192, 7000, 1000); /* each fits, not both */
    assert_false(b.shrunk);
    assert_true(b.shared);
    b = fd_budget_fit(1024, 4096, 0); /* live streams off: nothing shared */
    assert_true(b.shrunk);
    assert_false(b.shared);
    assert_int_equal(b.max_connections, 768);
    assert_int_equal(b.max_listeners, 0);
    b = fd_budget_fit(100, 4096, 20000); /* a tiny limit: half of it for everything else */
    assert_int_equal(b.max_connections, 50);
    assert_int_equal(b.max_listeners, 50);
    b = fd_budget_fit(1, 10, 10);
    assert_int_equal(b.max_connections, 1);
    assert_int_equal(b.max_listeners, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_url_parts),
        cmocka_unit_test(test_fd_budget),
        cmocka_unit_test(test_redis_slot),
        cmocka_unit_test_setup(test_board_names, test_setup),
        cmocka_unit_test_setup(test_defaults, test_setup),
        cmocka_unit_test_setup(test_every_key, test_setup),
        cmocka_unit_test_setup(test_empty_sections_and_file, test_setup),
        cmocka_unit_test_setup(test_unknown_keys, test_setup),
        cmocka_unit_test_setup(test_bad_types, test_setup),
        cmocka_unit_test_setup(test_bounds, test_setup),
        cmocka_unit_test_setup(test_duplicate_keys, test_setup),
        cmocka_unit_test(test_size_parser),
        cmocka_unit_test_setup(test_sizes, test_setup),
        cmocka_unit_test_setup(test_env_overrides, test_setup),
        cmocka_unit_test_setup(test_env_redis_empty, test_setup),
        cmocka_unit_test_setup(test_env_errors, test_setup),
        cmocka_unit_test_setup(test_redis_url, test_setup),
        cmocka_unit_test_setup(test_key_roles, test_setup),
        cmocka_unit_test_setup(test_cors, test_setup),
        cmocka_unit_test_setup(test_boards, test_setup),
        cmocka_unit_test_setup(test_board_errors, test_setup),
        cmocka_unit_test_setup(test_yaml_errors, test_setup),
        cmocka_unit_test_setup(test_shipped_files, test_setup),
        cmocka_unit_test(test_secret_flaws),
        cmocka_unit_test_setup(test_unsafe_secrets, test_setup),
    };
    return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
