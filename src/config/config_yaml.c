/*
 * config/config_yaml.c — the configuration file: libyaml's document loader keeps every node's
 * position, so that each error prints as "file:line:column: message" (1-based); a mapping is
 * walked against a key table, and loading never stops at the first error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "config/config_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <yaml.h>

#include "auth/jwk.h"
#include "config/config.h"
#include "util/arena.h"

/* ------------------------------------------------------------------------
 * Error reporting.
 * ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) void cfg_err_at(load_ctx_t *ctx, const yaml_node_t *node,
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
__attribute__((format(printf, 3, 4))) void cfg_err_plain(load_ctx_t *ctx, const char *where,
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
    case T_SCORE:
        want = "an integer";
        break;
    case T_SIZE:
        want = "a size in bytes";
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
    /* A size may be quoted ("64 MiB"): it is text with a unit as often as a number. */
    bool numeric = k->type == T_INT || k->type == T_SCORE || k->type == T_BOOL;
    if (node->type != YAML_SCALAR_NODE || (numeric && !is_plain(node)) ||
        (is_null(node) && !(k->flags & F_NULLABLE))) {
        cfg_err_at(ctx, node, "%s: expected %s%s, got %s", k->name, want, k->type == T_ENUM ? k->choices : "",
               node_kind(node));
        return;
    }
    if (has_nul(node)) {
        cfg_err_at(ctx, node, "%s: must not contain NUL bytes", k->name);
        return;
    }
    if (!cfg_set_text(k, base, is_null(node) ? "" : scalar(node), why, sizeof why))
        cfg_err_at(ctx, node, "%s: %s", k->name, why);
}

static void set_list_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    char why[WHY_MAX];
    char **items = NULL;
    size_t n_items = 0;
    unsigned before = ctx->n_errors;
    bool secret = (k->flags & F_SECRET) != 0;

    if (node->type != YAML_SEQUENCE_NODE && !is_null(node)) {
        cfg_err_at(ctx, node, "%s: expected a list, got %s", k->name, node_kind(node));
        return;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
            yaml_node_t *item = node_at(ctx, *it);
            if (item->type != YAML_SCALAR_NODE || is_null(item)) {
                cfg_err_at(ctx, item, "%s: expected a string, got %s", k->name, node_kind(item));
            } else if (has_nul(item)) {
                cfg_err_at(ctx, item, "%s: must not contain NUL bytes", k->name);
            } else if (!cfg_check_string(k, scalar(item), why, sizeof why)) {
                cfg_err_at(ctx, item, "%s: %s", k->name, why);
            } else {
                cfg_list_push(&items, &n_items, cfg_strdup(scalar(item)));
            }
        }
    }
    if (ctx->n_errors != before) {
        cfg_list_free(&items, &n_items, secret);
        return;
    }
    cfg_free_value(k, base);
    *FIELD(base, k->off, char **) = items;
    *FIELD(base, k->off2, size_t) = n_items;
}

/* "file:line:column" of `mark` in the file being loaded, as the errors say it (malloc'd). */
char *cfg_mark_origin(const load_ctx_t *ctx, yaml_mark_t mark)
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

    cfg_free_value(k, base);
    if (is_null(node))
        return;
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_err_at(ctx, node, "%s: expected a list, got %s", k->name, node_kind(node));
        return;
    }
    first_line = cfg_calloc((size_t)(node->data.sequence.items.top - node->data.sequence.items.start),
                            sizeof *first_line);
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = node_at(ctx, *it), *key_node;
        config_key_t ck = {0};
        unsigned before = ctx->n_errors;

        if (item->type != YAML_MAPPING_NODE) {
            cfg_err_at(ctx, item, "%s: expected a mapping with key and role, got %s", k->name, node_kind(item));
            continue;
        }
        parse_mapping(ctx, config_key_item_keys, config_key_item_keys_n, item, k->name, &ck);
        key_node = map_get(ctx, item, "key");
        if (key_node == NULL)
            cfg_err_at(ctx, item, "%s: entry is missing \"key\"", k->name);
        if (map_get(ctx, item, "role") == NULL)
            cfg_err_at(ctx, item, "%s: entry is missing \"role\"", k->name);
        for (size_t i = 0; ctx->n_errors == before && i < cfg->n_keys; i++) {
            if (strcmp(cfg->keys[i].key, ck.key) == 0)
                cfg_err_at(ctx, key_node, "%s: duplicate key (first at line %zu)", k->name, first_line[i]);
        }
        if (ctx->n_errors != before) {
            cfg_free_fields(config_key_item_keys, config_key_item_keys_n, &ck);
            continue;
        }
        first_line[cfg->n_keys] = key_node->start_mark.line + 1;
        ck.origin = cfg_mark_origin(ctx, key_node->start_mark);
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
    size_t limit;  /* bytes of compact JSON at most */
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
    while (cfg_is_digit(*p))
        p++, digits = true;
    if (*p == '.') {
        *is_int = false;
        p++;
        while (cfg_is_digit(*p))
            p++, digits = true;
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        *is_int = false;
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!cfg_is_digit(*p))
            return false;
        while (cfg_is_digit(*p))
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
        cfg_err_at(m->ctx, node, "%s: must not contain NUL bytes", m->name);
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
            cfg_err_at(m->ctx, node, "%s: number out of range", m->name);
            return NULL;
        }
    }
    json_t *j = json_stringn(s, len);
    if (j == NULL)
        cfg_err_at(m->ctx, node, "%s: not valid UTF-8", m->name);
    return j;
}

static json_t *node_to_json(meta_ctx_t *m, yaml_node_t *node)
{
    if (m->budget == 0) {
        if (!m->failed)
            cfg_err_at(m->ctx, node, "%s: longer than %zu bytes as compact JSON", m->name, m->limit);
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
                cfg_err_at(m->ctx, kn, "%s: keys must be strings, got %s", m->name, node_kind(kn));
                m->failed = true;
                continue;
            }
            if (has_nul(kn)) {
                cfg_err_at(m->ctx, kn, "%s: keys must not contain NUL bytes", m->name);
                m->failed = true;
                continue;
            }
            if ((first = earlier_key(m->ctx, node, p)) != NULL) {
                cfg_err_at(m->ctx, kn, "%s: duplicate key \"%s\" (first at line %zu)", m->name,
                       cfg_shown(scalar(kn), sb, sizeof sb), first->start_mark.line + 1);
                m->failed = true;
                continue;
            }
            json_t *v = node_to_json(m, node_at(m->ctx, p->value));
            if (v == NULL) {
                m->failed = true;
                continue;
            }
            if (json_object_set_new(obj, scalar(kn), v) != 0) {
                cfg_err_at(m->ctx, kn, "%s: key is not valid UTF-8", m->name);
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
    size_t limit = k->max > 0 ? (size_t)k->max : METADATA_MAX;
    meta_ctx_t m = {.ctx = ctx, .name = k->name, .budget = limit + 1, .limit = limit, .failed = false};

    free(*field);
    *field = NULL;
    if (is_null(node))
        return;
    if (node->type != YAML_MAPPING_NODE) {
        cfg_err_at(ctx, node, "%s: expected a mapping, got %s", k->name, node_kind(node));
        return;
    }
    json_t *obj = node_to_json(&m, node);
    if (obj != NULL && !m.failed) {
        char *text = json_text_dup(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text == NULL)
            abort();
        size_t len = strlen(text);
        if (len > limit)
            cfg_err_at(ctx, node, "%s: %zu bytes as compact JSON, at most %zu", k->name, len, limit);
        else
            *field = cfg_strdup(text);
        free(text);
    }
    json_decref(obj);
}

/* boards[].client_rules, stored as JSON text: the API's object (docs/api.md, "Plausibility
 * rules"), each rule a bound or null (off), read into the board's fields. */
static void board_rules(load_ctx_t *ctx, const conf_key_t *k, yaml_node_t *item, config_board_t *b)
{
    if (b->client_rules == NULL)
        return;
    yaml_node_t *node = map_get(ctx, item, "client_rules");
    json_t *obj = json_loads(b->client_rules, 0, NULL);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        char sb[80];
        if (strcmp(key, "max_submissions_per_minute") == 0) {
            if (!json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 1 ||
                                     json_integer_value(v) > RULE_PER_MINUTE_MAX))
                cfg_err_at(ctx, node, "%s.client_rules.max_submissions_per_minute: a whole number 1..%d, or null for none",
                           k->name, RULE_PER_MINUTE_MAX);
            else
                b->max_submissions_per_minute = json_is_null(v) ? 0 : (int32_t)json_integer_value(v);
        } else if (strcmp(key, "max_rise_per_second") == 0) {
            double d = json_is_number(v) ? json_number_value(v) : 0;
            if (!json_is_null(v) && (!json_is_number(v) || !(d > 0) || d > RULE_RISE_MAX))
                cfg_err_at(ctx, node, "%s.client_rules.max_rise_per_second: a number above 0 and at most 1e18, or null "
                           "for none", k->name);
            else
                b->max_rise_per_second = json_is_null(v) ? 0 : d;
        } else {
            cfg_err_at(ctx, node, "%s.client_rules: no rule \"%s\" (the rules are max_submissions_per_minute and "
                       "max_rise_per_second)", k->name, cfg_shown(key, sb, sizeof sb));
        }
    }
    json_decref(obj);
}

/* boards: every item a board definition; an id may appear once. */
static void set_boards_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    rankd_config_t *cfg = base;
    size_t *first_line;

    cfg_free_value(k, base);
    if (is_null(node))
        return;
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_err_at(ctx, node, "%s: expected a list, got %s", k->name, node_kind(node));
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
            cfg_err_at(ctx, item, "%s: expected a mapping with id and title, got %s", k->name, node_kind(item));
            continue;
        }
        cfg_apply_defaults(config_board_keys, config_board_keys_n, &b);
        parse_mapping(ctx, config_board_keys, config_board_keys_n, item, k->name, &b);
        board_rules(ctx, k, item, &b);
        id_node = map_get(ctx, item, "id");
        if (id_node == NULL)
            cfg_err_at(ctx, item, "%s: entry is missing \"id\"", k->name);
        if (map_get(ctx, item, "title") == NULL)
            cfg_err_at(ctx, item, "%s: entry is missing \"title\"", k->name);
        if (b.has_min_score && b.has_max_score && b.min_score > b.max_score) {
            max_node = map_get(ctx, item, "max_score");
            cfg_err_at(ctx, max_node, "%s: max_score is less than min_score", k->name);
        }
        for (size_t i = 0; b.id != NULL && id_node != NULL && i < cfg->n_boards; i++) {
            if (strcmp(cfg->boards[i].id, b.id) == 0)
                cfg_err_at(ctx, id_node, "%s: duplicate board id \"%s\" (first at line %zu)", k->name,
                       cfg_shown(b.id, sb, sizeof sb), first_line[i]);
        }
        if (ctx->n_errors != before) {
            cfg_free_fields(config_board_keys, config_board_keys_n, &b);
            continue;
        }
        first_line[cfg->n_boards] = id_node->start_mark.line + 1;
        cfg->boards = cfg_realloc(cfg->boards, (cfg->n_boards + 1) * sizeof *cfg->boards);
        cfg->boards[cfg->n_boards++] = b;
    }
    free(first_line);
}

/* auth.issuers: every item a trusted identity provider, its keys at a URL or inline (checked
 * here: a JWKS with a usable key), an issuer named once. */
static void set_issuers_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    rankd_config_t *cfg = base;

    cfg_free_value(k, base);
    if (is_null(node))
        return;
    if (node->type != YAML_SEQUENCE_NODE) {
        cfg_err_at(ctx, node, "%s: expected a list, got %s", k->name, node_kind(node));
        return;
    }
    if (node->data.sequence.items.top - node->data.sequence.items.start > CONFIG_ISSUERS_MAX) {
        cfg_err_at(ctx, node, "%s: at most %d issuers", k->name, CONFIG_ISSUERS_MAX);
        return;
    }
    size_t first_line[CONFIG_ISSUERS_MAX];
    for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++) {
        yaml_node_t *item = node_at(ctx, *it), *iss_node, *url_node, *keys_node;
        config_issuer_t iss = {0};
        unsigned before = ctx->n_errors;
        char sb[80], why[WHY_MAX];

        if (item->type != YAML_MAPPING_NODE) {
            cfg_err_at(ctx, item, "%s: expected a mapping with issuer, audience and jwks_url or keys, got %s",
                       k->name, node_kind(item));
            continue;
        }
        cfg_apply_defaults(config_issuer_keys, config_issuer_keys_n, &iss);
        iss.clock_skew_s = -1; /* auth.clock_skew_s unless given */
        parse_mapping(ctx, config_issuer_keys, config_issuer_keys_n, item, k->name, &iss);
        iss_node = map_get(ctx, item, "issuer");
        url_node = map_get(ctx, item, "jwks_url");
        keys_node = map_get(ctx, item, "keys");
        if (iss_node == NULL)
            cfg_err_at(ctx, item, "%s: entry is missing \"issuer\" (the iss its tokens carry)", k->name);
        if (map_get(ctx, item, "audience") == NULL)
            cfg_err_at(ctx, item, "%s: entry is missing \"audience\" (an aud its tokens must hold; for Firebase, the "
                       "project id)", k->name);
        /* "rankd" names rankd's own minted tokens (auth.player_token_secret): a provider's tokens
         * claiming it would be judged as those. */
        if (iss.issuer != NULL && iss_node != NULL && strcmp(iss.issuer, "rankd") == 0)
            cfg_err_at(ctx, iss_node, "%s: issuer \"rankd\" is the issuer of rankd's own player tokens; a "
                       "provider's must differ", k->name);
        if (url_node != NULL && keys_node != NULL)
            cfg_err_at(ctx, keys_node, "%s: give jwks_url or keys, not both", k->name);
        else if (url_node == NULL && keys_node == NULL)
            cfg_err_at(ctx, item, "%s: entry has neither \"jwks_url\" nor \"keys\": where are its signing keys?",
                       k->name);
        if (ctx->n_errors == before && iss.keys != NULL) {
            jwk_set_t *set = jwk_set_parse(iss.keys, strlen(iss.keys), why, sizeof why);
            if (set == NULL)
                cfg_err_at(ctx, keys_node, "%s: keys: %s", k->name, why);
            jwk_set_unref(set);
        }
        for (size_t i = 0; iss.issuer != NULL && iss_node != NULL && i < cfg->n_issuers; i++) {
            if (strcmp(cfg->issuers[i].issuer, iss.issuer) == 0)
                cfg_err_at(ctx, iss_node, "%s: duplicate issuer \"%s\" (first at line %zu)", k->name,
                           cfg_shown(iss.issuer, sb, sizeof sb), first_line[i]);
        }
        if (ctx->n_errors != before) {
            cfg_free_fields(config_issuer_keys, config_issuer_keys_n, &iss);
            continue;
        }
        first_line[cfg->n_issuers] = iss_node->start_mark.line + 1;
        cfg->issuers = cfg_realloc(cfg->issuers, (cfg->n_issuers + 1) * sizeof *cfg->issuers);
        cfg->issuers[cfg->n_issuers++] = iss;
    }
}

static void set_node(load_ctx_t *ctx, const conf_key_t *k, void *base, yaml_node_t *node)
{
    switch (k->type) {
    case T_ISSUERS:
        set_issuers_node(ctx, k, base, node);
        break;
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
        abort(); /* environment only; cfg_find_key never returns it */
    default:
        set_scalar_node(ctx, k, base, node);
        break;
    }
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
            cfg_err_at(ctx, kn, "expected a key, got %s", node_kind(kn));
            continue;
        }
        if ((first = earlier_key(ctx, map, p)) != NULL) {
            cfg_err_at(ctx, kn, "duplicate key \"%s\" (first at line %zu)", cfg_shown(scalar(kn), sb, sizeof sb),
                   first->start_mark.line + 1);
            continue;
        }
        int len = snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", prefix ? "." : "", scalar(kn));
        if (!has_nul(kn) && len > 0 && (size_t)len < sizeof full) {
            if ((k = cfg_find_key(table, n, full)) != NULL) {
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
                    cfg_err_at(ctx, vn, "%s: expected a mapping, got %s", full, node_kind(vn));
                continue;
            }
        }
        if (prefix != NULL)
            cfg_err_at(ctx, kn, "unknown key \"%s\" in %s", cfg_shown(scalar(kn), sb, sizeof sb), prefix);
        else
            cfg_err_at(ctx, kn, "unknown key \"%s\"", cfg_shown(scalar(kn), sb, sizeof sb));
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
        cfg_err_plain(ctx, ctx->path, "%s at byte %zu", parser->problem ? parser->problem : "unreadable input",
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
bool cfg_load_file(load_ctx_t *ctx, rankd_config_t *cfg)
{
    yaml_parser_t parser;
    yaml_document_t doc, next;
    yaml_node_t *root;
    bool read_ok = false;

    FILE *f = fopen(ctx->path, "rb");
    if (f == NULL) {
        cfg_err_plain(ctx, ctx->path, "cannot open: %s", strerror(errno));
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
            parse_mapping(ctx, config_keys, config_keys_n, root, NULL, cfg);
        else if (!is_null(root))
            cfg_err_at(ctx, root, "expected a mapping at the top level, got %s", node_kind(root));

        /* An empty document marks the end of the stream; anything else is a second document. */
        if (!yaml_parser_load(&parser, &next)) {
            report_parser_error(ctx, &parser);
            read_ok = false;
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&next);
            if (r2 != NULL)
                cfg_err_at(ctx, r2, "only one YAML document is allowed");
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
