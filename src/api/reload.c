/*
 * api/reload.c — SIGHUP (API.md, "Signals"): keys, rate limits, CORS origins and the log level
 * from the same file and environment, without dropping a connection.
 *
 * The new configuration is loaded whole, or refused whole (its errors logged as
 * file:line:column; the running one stays). Readers take the live configuration with one atomic
 * load and use it within the call that took it; a configuration replaced is freed a minute
 * later, long after any such call ended. Only the thread that waits for signals runs a reload.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/player_auth.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/clock.h"

#define RETIRE_AFTER_MS 60000

struct retired_cfg {
    rankd_config_t *cfg;
    int64_t at_ms;
    struct retired_cfg *next;
};

/* Free what was replaced more than RETIRE_AFTER_MS ago (all of it when `all`). */
static void free_retired(app_t *app, bool all)
{
    struct retired_cfg **pp = &app->retired;
    int64_t now = clock_mono_ms();
    while (*pp) {
        struct retired_cfg *r = *pp;
        if (all || now - r->at_ms >= RETIRE_AFTER_MS) {
            *pp = r->next;
            config_free(r->cfg);
            free(r);
        } else {
            pp = &r->next;
        }
    }
}

/* Settings a reload leaves alone that the file now changes: say so, once per reload. */
static void warn_restart_only(const rankd_config_t *was, const rankd_config_t *now)
{
    struct {
        const char *name;
        bool differs;
    } keys[] = {
        {"listen", strcmp(was->listen_host, now->listen_host) != 0 || was->listen_port != now->listen_port},
        {"worker_threads", was->worker_threads != now->worker_threads},
        {"postgres", strcmp(was->pg_primary, now->pg_primary) != 0 || was->n_pg_replicas != now->n_pg_replicas},
        {"redis.url", strcmp(was->redis_url ? was->redis_url : "", now->redis_url ? now->redis_url : "") != 0},
        {"redis.read_from", was->redis_read_from != now->redis_read_from},
        {"auth.cursor_secret", strcmp(was->cursor_secret, now->cursor_secret) != 0 ||
                                   strcmp(was->cursor_secret_previous ? was->cursor_secret_previous : "",
                                          now->cursor_secret_previous ? now->cursor_secret_previous : "") != 0},
        {"auth.public_reads", was->public_reads != now->public_reads},
        {"limits.strong_concurrency", was->limit_strong_concurrency != now->limit_strong_concurrency ||
                                          was->limit_strong_wait_ms != now->limit_strong_wait_ms},
        {"cache.max_bytes", was->cache_max_bytes != now->cache_max_bytes},
        {"cache.rank_tier", was->rank_tier_bytes != now->rank_tier_bytes},
        {"http.cache_max_age", was->cache_max_age != now->cache_max_age},
        {"http.body_limit", was->body_limit != now->body_limit || was->batch_body_limit != now->batch_body_limit},
        {"http.connection_timeout_s", was->connection_timeout_s != now->connection_timeout_s},
        {"http.proxy_protocol", was->proxy_protocol != now->proxy_protocol},
        {"http.max_response_bytes_in_flight", was->max_response_bytes_in_flight != now->max_response_bytes_in_flight ||
                                                  was->response_bytes_per_ip != now->response_bytes_per_ip},
        {"http.send_timeout_s", was->send_timeout_s != now->send_timeout_s},
        {"http.send_buffer_bytes", was->send_buffer_bytes != now->send_buffer_bytes},
        {"development", was->development != now->development},
        {"auth.metrics_auth", was->metrics_auth != now->metrics_auth},
        {"refresh.interval_s", was->refresh_interval_s != now->refresh_interval_s},
        {"retention", was->retention_windows != now->retention_windows ||
                          was->retention_log_months != now->retention_log_months ||
                          was->n_retention_board_windows != now->n_retention_board_windows},
        {"writer.max_batch", was->writer_max_batch != now->writer_max_batch},
        {"writer.gather_us", was->writer_gather_us != now->writer_gather_us},
        {"auth.issuers", !config_issuers_equal(was, now)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (keys[i].differs)
            log_warn(NULL, "reload: %s changed in %s; it takes effect at the next restart", keys[i].name, now->path);
}

bool api_reload(app_t *app)
{
    const rankd_config_t *cur = atomic_load(&app->live);
    /* The file's errors as log lines (JSON), each with its file:line:column, not as plain text
     * in the middle of the log. */
    char *errs = NULL;
    size_t errs_len = 0;
    FILE *ef = open_memstream(&errs, &errs_len);
    rankd_config_t *next = config_load(cur->path, ef ? ef : stderr);
    /* app->cfg: the configuration the server started with, whose listener and development run. */
    if (next && config_check_secrets_under(next, app->cfg, ef ? ef : stderr) != 0) {
        config_free(next);
        next = NULL;
    }
    if (ef) {
        fclose(ef);
        for (char *line = errs, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            if (*line)
                log_error(NULL, "reload: %s", line);
        }
        free(errs);
    }
    if (!next) {
        log_error(NULL, "reload of %s refused: the errors above; the running configuration stays", cur->path);
        return false;
    }
    warn_restart_only(app->cfg, next);
    log_set_level(next->log_level);
    /* Keys before limits: in between, a request holds the new keys under the old limits, never
     * an old key's refusal charged to its address under the new ones. */
    atomic_store(&app->live, next);
    ratelimit_configure(app->limits, next->limit_reads_per_s, next->limit_writes_per_s, next->limit_strong_reads_per_s,
                        next->limit_burst);
    ratelimit_configure(app->auth_failures, next->limit_failed_auths_per_s, 0, 0,
                        AUTH_FAILURES_BURST_S * next->limit_failed_auths_per_s);
    api_idem_keys_configure(app->idem_keys, next->limit_idempotency_keys_per_client);
    ratelimit_configure(app->player_writes, 0, next->limit_player_writes_per_s, 0, next->limit_player_burst);
    /* Secrets may have changed: a token verified under one that went must be verified again. */
    player_auth_forget_verified(app->player_auth);
    if (cur != app->cfg) { /* the one main() loaded lives until exit */
        struct retired_cfg *r = xcalloc(1, sizeof *r);
        r->cfg = (rankd_config_t *)cur;
        r->at_ms = clock_mono_ms();
        r->next = app->retired;
        app->retired = r;
    }
    free_retired(app, false);
    log_info(NULL, "reloaded %s: %zu keys, %zu CORS origins, %zu trusted proxies, limits %d reads/s and %d writes/s "
             "(burst %d), log level %s", next->path, next->n_keys, next->n_cors_origins, next->n_trusted_proxies,
             next->limit_reads_per_s, next->limit_writes_per_s, next->limit_burst, log_level_name(next->log_level));
    return true;
}

void api_reload_free(app_t *app)
{
    free_retired(app, true);
    const rankd_config_t *live = atomic_load(&app->live);
    if (live && live != app->cfg)
        config_free((rankd_config_t *)live);
    atomic_store(&app->live, app->cfg);
}
