/*
 * config/config.c — load rankd's YAML configuration and its RANKD_* overrides.
 *
 * Every setting is one row of config_keys[] (config_keys.c; as Redis's static_configs[]
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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "config/secret_policy.h"
#include "util/sha256.h"

#include "config/config_internal.h"

/* ------------------------------------------------------------------------
 * The file, the environment, the whole.
 * ------------------------------------------------------------------------ */

static void apply_env(load_ctx_t *ctx, rankd_config_t *cfg)
{
    char why[WHY_MAX];
    for (size_t i = 0; i < config_keys_n; i++) {
        const conf_key_t *k = &config_keys[i];
        const char *v = k->env ? getenv(k->env) : NULL;
        if (v == NULL)
            continue;
        ctx->given[i] = true;
        ctx->from_env[i] = true;
        if (!cfg_set_text(k, cfg, v, why, sizeof why))
            cfg_err_plain(ctx, k->env, "%s", why);
    }
}

/* One weight per replica, or none: the error points at the weights where they were given. */
static void check_weights(load_ctx_t *ctx, const rankd_config_t *cfg)
{
    if (cfg->n_pg_replica_weights == 0 || cfg->n_pg_replica_weights == cfg->n_pg_replicas)
        return;
    size_t i = (size_t)(cfg_find_key(config_keys, config_keys_n, "postgres.replica_weights") - config_keys);
#define WEIGHTS_MISMATCH "postgres.replica_weights: %zu weight(s) for %zu replica(s); give one per replica"
    if (ctx->in_file[i] && !ctx->from_env[i]) {
        yaml_node_t at = {.start_mark = ctx->mark[i]};
        cfg_err_at(ctx, &at, WEIGHTS_MISMATCH, cfg->n_pg_replica_weights, cfg->n_pg_replicas);
    }
    else
        cfg_err_plain(ctx, ctx->from_env[i] ? "RANKD_POSTGRES_REPLICA_WEIGHTS" : ctx->path, WEIGHTS_MISMATCH,
                  cfg->n_pg_replica_weights, cfg->n_pg_replicas);
#undef WEIGHTS_MISMATCH
}

/* Required keys that neither the file nor the environment tried to set. */
static void check_required(load_ctx_t *ctx, rankd_config_t *cfg)
{
    for (size_t i = 0; i < config_keys_n; i++) {
        const conf_key_t *k = &config_keys[i];
        if ((k->flags & F_REQUIRED) && !ctx->given[i] && *FIELD(cfg, k->off, char *) == NULL)
            cfg_err_plain(ctx, ctx->path, "%s is required (in the file or in %s)", k->name, k->env);
    }
}

/* Where the file or the environment gave the key `name` ("file:line:column" or the variable,
 * malloc'd), NULL when neither did. */
static char *origin_of(const load_ctx_t *ctx, const char *name)
{
    size_t i = (size_t)(cfg_find_key(config_keys, config_keys_n, name) - config_keys);
    if (!ctx->given[i])
        return NULL;
    if (ctx->from_env[i] || !ctx->in_file[i])
        return cfg_strdup(config_keys[i].env);
    return cfg_mark_origin(ctx, ctx->mark[i]);
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
    cfg_apply_defaults(config_keys, config_keys_n, cfg);
    bool read_ok = cfg_load_file(&ctx, cfg);
    apply_env(&ctx, cfg);

    if (read_ok)
        check_required(&ctx, cfg);
    if (read_ok)
        check_weights(&ctx, cfg);
    cfg->cursor_secret_given =
        ctx.given[cfg_find_key(config_keys, config_keys_n, "auth.cursor_secret") - config_keys];
    cfg->cursor_secret_origin = origin_of(&ctx, "auth.cursor_secret");
    cfg->cursor_secret_previous_origin = origin_of(&ctx, "auth.cursor_secret_previous");
    cfg->player_token_secret_origin = origin_of(&ctx, "auth.player_token_secret");
    cfg->player_token_secret_previous_origin = origin_of(&ctx, "auth.previous_player_token_secret");
    /* From here on a key is its digest: the plaintext that a read of the memory could show is gone.
     * What config_check_secrets() will say of it is judged first. */
    for (size_t i = 0; i < cfg->n_keys; i++) {
        cfg->keys[i].flaw = secret_flaw(cfg->keys[i].key);
        sha256(cfg->keys[i].key, strlen(cfg->keys[i].key), cfg->keys[i].digest);
        cfg_free_str(cfg->keys[i].key, true);
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
    cfg_free_fields(config_keys, config_keys_n, cfg);
    free(cfg->trusted_nets);
    free(cfg->cursor_secret_origin);
    free(cfg->cursor_secret_previous_origin);
    free(cfg->player_token_secret_origin);
    free(cfg->player_token_secret_previous_origin);
    free(cfg->path);
    free(cfg);
}

#define GEN_KEY_HINT "generate one with `rankd config gen-key`"

unsigned config_check_secrets(const rankd_config_t *cfg, FILE *errs)
{
    return config_check_secrets_under(cfg, NULL, errs);
}

/* What the secret `s` is also used as ("auth.cursor_secret", "a write key"), NULL when nothing:
 * a secret that signs player tokens must sign nothing else, nor be a key anyone holds. */
static const char *secret_reused_as(const rankd_config_t *cfg, const char *s, bool is_previous, char *what,
                                    size_t what_len)
{
    if (cfg->cursor_secret && strcmp(cfg->cursor_secret, s) == 0)
        return "auth.cursor_secret";
    if (cfg->cursor_secret_previous && strcmp(cfg->cursor_secret_previous, s) == 0)
        return "auth.cursor_secret_previous";
    if (is_previous && cfg->player_token_secret && strcmp(cfg->player_token_secret, s) == 0)
        return "auth.player_token_secret";
    unsigned char d[SHA256_BYTES];
    sha256(s, strlen(s), d);
    const char *found = NULL;
    for (size_t i = 0; i < cfg->n_keys && !found; i++)
        if (CRYPTO_memcmp(cfg->keys[i].digest, d, sizeof d) == 0) {
            snprintf(what, what_len, "a %s key of auth.keys", config_role_names[cfg->keys[i].role]);
            found = what;
        }
    OPENSSL_cleanse(d, sizeof d);
    return found;
}

/* auth.player_token_secret and its previous one used as another secret or a key: refused even in
 * the development configuration (a key's holder could mint tokens). Returns how many printed. */
static unsigned check_player_secret_reuse(const rankd_config_t *cfg, FILE *errs)
{
    unsigned found = 0;
    const char *as;
    char what[64];
    if (cfg->player_token_secret && (as = secret_reused_as(cfg, cfg->player_token_secret, false, what, sizeof what)) != NULL) {
        fprintf(errs, "%s: auth.player_token_secret is the same as %s: it must be a secret of its own; %s\n",
                cfg->player_token_secret_origin ? cfg->player_token_secret_origin : cfg->path, as, GEN_KEY_HINT);
        found++;
    }
    if (cfg->player_token_secret_previous &&
        (as = secret_reused_as(cfg, cfg->player_token_secret_previous, true, what, sizeof what)) != NULL) {
        fprintf(errs, "%s: auth.previous_player_token_secret is the same as %s: it must be a secret of its own; %s\n",
                cfg->player_token_secret_previous_origin ? cfg->player_token_secret_previous_origin : cfg->path, as,
                GEN_KEY_HINT);
        found++;
    }
    return found;
}

unsigned config_check_secrets_under(const rankd_config_t *cfg, const rankd_config_t *running, FILE *errs)
{
    unsigned reused = check_player_secret_reuse(cfg, errs);
    /* development and listen take effect at a start only: a reload is judged by the listener
     * that runs, and is exempt only while the running server and the file are both development. */
    const rankd_config_t *judged = running ? running : cfg;
    bool exempt = cfg->development && judged->development && secret_host_is_loopback(judged->listen_host);
    if (exempt)
        return reused;
    unsigned found = reused;
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
    if (cfg->player_token_secret && (flaw = secret_flaw(cfg->player_token_secret)) != NULL) {
        fprintf(errs, "%s: auth.player_token_secret %s; %s\n", cfg->player_token_secret_origin, flaw, GEN_KEY_HINT);
        found++;
    }
    if (cfg->player_token_secret_previous && (flaw = secret_flaw(cfg->player_token_secret_previous)) != NULL) {
        fprintf(errs, "%s: auth.previous_player_token_secret %s; %s\n", cfg->player_token_secret_previous_origin,
                flaw, GEN_KEY_HINT);
        found++;
    }
    for (size_t i = 0; i < cfg->n_keys; i++) {
        if (!cfg->keys[i].flaw)
            continue;
        fprintf(errs, "%s: auth.keys: this %s key %s; %s\n", cfg->keys[i].origin, config_role_names[cfg->keys[i].role],
                cfg->keys[i].flaw, GEN_KEY_HINT);
        found++;
    }
    if (found)
        fprintf(errs, "%s: %u unsafe secret(s) outside the development configuration (`development: true` "
                      "accepts them only while listen is a loopback address)\n", cfg->path, found);
    if (found && running && cfg->development && secret_host_is_loopback(cfg->listen_host))
        fprintf(errs, "%s: development and listen take effect only at a restart: this server runs with "
                      "development: %s, listening on %s, and its new secrets are judged by that\n",
                cfg->path, running->development ? "true" : "false", running->listen_host);
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
    unsigned char given[SHA256_BYTES];
    sha256(key, strlen(key), given);
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

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool config_issuers_equal(const rankd_config_t *a, const rankd_config_t *b)
{
    if (a->n_issuers != b->n_issuers)
        return false;
    for (size_t i = 0; i < a->n_issuers; i++) {
        const config_issuer_t *x = &a->issuers[i], *y = &b->issuers[i];
        if (!same_str(x->issuer, y->issuer) || !same_str(x->audience, y->audience) ||
            !same_str(x->jwks_url, y->jwks_url) || !same_str(x->keys, y->keys) ||
            !same_str(x->player_claim, y->player_claim) || config_issuer_skew(a, i) != config_issuer_skew(b, i))
            return false;
    }
    return true;
}

int config_issuer_skew(const rankd_config_t *cfg, size_t i)
{
    return cfg->issuers[i].clock_skew_s >= 0 ? cfg->issuers[i].clock_skew_s : cfg->issuer_clock_skew_s;
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
