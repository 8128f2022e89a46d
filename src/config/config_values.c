/*
 * config/config_values.c — a setting's value from text: defaults (written in the tables in the
 * environment's syntax), environment variables and YAML scalars all go through cfg_set_text;
 * and the values freed, secrets wiped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* explicit_bzero */
#endif

#include "config/config_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "util/hostport.h"

/* ------------------------------------------------------------------------
 * Allocation: out of memory aborts.
 * ------------------------------------------------------------------------ */

void *cfg_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

void *cfg_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        abort();
    return q;
}

char *cfg_strndup(const char *s, size_t n)
{
    char *p = cfg_calloc(n + 1, 1);
    memcpy(p, s, n);
    return p;
}

char *cfg_strdup(const char *s)
{
    return cfg_strndup(s, strlen(s));
}

/* Free a string; a secret's bytes are wiped first. */
void cfg_free_str(char *s, bool secret)
{
    if (s != NULL && secret)
        explicit_bzero(s, strlen(s));
    free(s);
}

void cfg_list_push(char ***v, size_t *n, char *s)
{
    *v = cfg_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = s;
}

void cfg_list_free(char ***v, size_t *n, bool secret)
{
    for (size_t i = 0; i < *n; i++)
        cfg_free_str((*v)[i], secret);
    free(*v);
    *v = NULL;
    *n = 0;
}

/* ------------------------------------------------------------------------
 * Values from text: defaults and environment variables, and YAML scalars.
 * ------------------------------------------------------------------------ */

/* 0: ok; -1: not a decimal integer; -2: beyond long long. */
static int cfg_parse_decimal(const char *s, long long *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '\0')
        return -1;
    for (const char *q = p; *q; q++)
        if (!cfg_is_digit(*q))
            return -1;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return -2;
    *out = v;
    return 0;
}

int cfg_parse_size(const char *s, long long *out)
{
    /* The units, each 1024-based whatever its spelling (nginx's k is 1024; Redis's bare k is
     * 1000, its kb 1024: one rule here, the larger). */
    static const struct {
        const char *name;
        int shift;
    } units[] = {
        {"", 0},   {"b", 0},   {"k", 10},  {"kb", 10}, {"kib", 10}, {"m", 20},  {"mb", 20},
        {"mib", 20}, {"g", 30}, {"gb", 30}, {"gib", 30}, {"t", 40}, {"tb", 40}, {"tib", 40},
    };
    const char *p = s;
    bool negative = *p == '-';
    if (negative)
        p++;
    if (!cfg_is_digit(*p))
        return -1;
    bool overflow = false;
    unsigned long long v = 0;
    for (; cfg_is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > ((unsigned long long)LLONG_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    if (*p == ' ' && p[1] != '\0') /* one space between the number and its unit */
        p++;
    int shift = -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0] && shift < 0; i++)
        if (strcasecmp(p, units[i].name) == 0)
            shift = units[i].shift;
    if (shift < 0)
        return -1;
    if (overflow || negative || v > ((unsigned long long)LLONG_MAX >> shift))
        return -2;
    *out = (long long)(v << shift);
    return 0;
}

/* `v` as the largest unit that divides it ("64 MiB"), into buf; "" when it is under a KiB or
 * no unit divides it. */
static const char *size_shown(long long v, char *buf, size_t n)
{
    static const char *const names[] = {"KiB", "MiB", "GiB", "TiB"};
    buf[0] = '\0';
    for (int i = 3; i >= 0; i--) {
        long long unit = 1LL << (10 * (i + 1));
        if (v >= unit && v % unit == 0) {
            snprintf(buf, n, "%lld %s", v / unit, names[i]);
            break;
        }
    }
    return buf;
}

bool cfg_check_string(const conf_key_t *k, const char *s, char *why, size_t n)
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
bool cfg_add_key(rankd_config_t *cfg, const char *key, int role, const char *origin, char *why, size_t n)
{
    for (size_t i = 0; i < cfg->n_keys; i++) {
        if (strcmp(cfg->keys[i].key, key) == 0) {
            if ((int)cfg->keys[i].role == role)
                return true;
            snprintf(why, n, "this key is already configured with role %s", config_role_names[cfg->keys[i].role]);
            return false;
        }
    }
    cfg->keys = cfg_realloc(cfg->keys, (cfg->n_keys + 1) * sizeof *cfg->keys);
    cfg->keys[cfg->n_keys] = (config_key_t){.key = cfg_strdup(key), .role = (role_t)role, .origin = cfg_strdup(origin)};
    cfg->n_keys++;
    return true;
}

void cfg_free_value(const conf_key_t *k, void *base)
{
    bool secret = (k->flags & F_SECRET) != 0;
    switch (k->type) {
    case T_STR:
    case T_LISTEN:
    case T_JSON:
        cfg_free_str(*FIELD(base, k->off, char *), secret);
        *FIELD(base, k->off, char *) = NULL;
        break;
    case T_LIST:
        cfg_list_free(FIELD(base, k->off, char **), FIELD(base, k->off2, size_t), secret);
        break;
    case T_KEYS: {
        config_key_t **keys = FIELD(base, k->off, config_key_t *);
        size_t *nk = FIELD(base, k->off2, size_t);
        for (size_t i = 0; i < *nk; i++) {
            cfg_free_fields(config_key_item_keys, config_key_item_keys_n, &(*keys)[i]);
            free((*keys)[i].origin);
        }
        free(*keys);
        *keys = NULL;
        *nk = 0;
        break;
    }
    case T_ISSUERS: {
        config_issuer_t **issuers = FIELD(base, k->off, config_issuer_t *);
        size_t *ni = FIELD(base, k->off2, size_t);
        for (size_t i = 0; i < *ni; i++)
            cfg_free_fields(config_issuer_keys, config_issuer_keys_n, &(*issuers)[i]);
        free(*issuers);
        *issuers = NULL;
        *ni = 0;
        break;
    }
    case T_BOARDS: {
        config_board_t **boards = FIELD(base, k->off, config_board_t *);
        size_t *nb = FIELD(base, k->off2, size_t);
        for (size_t i = 0; i < *nb; i++)
            cfg_free_fields(config_board_keys, config_board_keys_n, &(*boards)[i]);
        free(*boards);
        *boards = NULL;
        *nb = 0;
        break;
    }
    default:
        break;
    }
}

void cfg_free_fields(const conf_key_t *table, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++)
        cfg_free_value(&table[i], base);
}

/*
 * Set the field of `k` in `base` from `text` (NUL-terminated). On failure
 * leaves the field as it was and writes the reason to `why`.
 */
bool cfg_set_text(const conf_key_t *k, void *base, const char *text, char *why, size_t n)
{
    char sb[64];
    long long v = 0;
    int r;

    switch (k->type) {
    case T_SIZE: {
        char mb[32];
        r = cfg_parse_size(text, &v);
        if (r == -1) {
            snprintf(why, n, "expected a size in bytes (a whole number, optionally with a unit: B, k, m, g, t or "
                             "KiB, MiB, GiB, TiB, all 1024-based, e.g. 64MiB), got \"%s\"", cfg_shown(text, sb, sizeof sb));
            return false;
        }
        if (r == -2 || v < k->min || v > k->max) {
            size_shown(k->max, mb, sizeof mb);
            snprintf(why, n, "%s is out of range (%lld..%lld%s%s)", cfg_shown(text, sb, sizeof sb), k->min, k->max,
                     mb[0] ? ", " : "", mb);
            return false;
        }
        *FIELD(base, k->off, size_t) = (size_t)v;
        return true;
    }

    case T_INT:
    case T_SCORE:
        r = cfg_parse_decimal(text, &v);
        if (r == -1) {
            snprintf(why, n, "expected an integer, got \"%s\"", cfg_shown(text, sb, sizeof sb));
            return false;
        }
        if (r == -2 || v < k->min || v > k->max) {
            snprintf(why, n, "%s is out of range (%lld..%lld)", cfg_shown(text, sb, sizeof sb), k->min, k->max);
            return false;
        }
        if (k->type == T_INT) {
            *FIELD(base, k->off, int) = (int)v;
        } else {
            *FIELD(base, k->off, int64_t) = (int64_t)v;
            *FIELD(base, k->off2, bool) = true;
        }
        return true;

    case T_BOOL:
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
            snprintf(why, n, "expected true or false, got \"%s\"", cfg_shown(text, sb, sizeof sb));
            return false;
        }
        *FIELD(base, k->off, bool) = text[0] == 't';
        return true;

    case T_ENUM: {
        int e;
        if (!k->parse(text, &e)) {
            snprintf(why, n, "expected one of %s, got \"%s\"", k->choices, cfg_shown(text, sb, sizeof sb));
            return false;
        }
        *FIELD(base, k->off, int) = e;
        return true;
    }

    case T_STR: {
        char **field = FIELD(base, k->off, char *);
        if ((k->flags & F_NULLABLE) && text[0] == '\0') {
            cfg_free_str(*field, k->flags & F_SECRET);
            *field = NULL;
            return true;
        }
        if (!cfg_check_string(k, text, why, n))
            return false;
        cfg_free_str(*field, k->flags & F_SECRET);
        *field = cfg_strdup(text);
        return true;
    }

    case T_LISTEN: {
        const char *host;
        size_t hl;
        int port;
        if (!hostport_split(text, strlen(text), true, &host, &hl, &port)) {
            snprintf(why, n, "expected host:port (or [address]:port) with a port of 1..65535, got \"%s\"",
                     cfg_shown(text, sb, sizeof sb));
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
                if (!cfg_check_string(k, item, why, n)) {
                    cfg_free_str(item, k->flags & F_SECRET);
                    cfg_list_free(&items, &n_items, k->flags & F_SECRET);
                    return false;
                }
                cfg_list_push(&items, &n_items, item);
            }
            if (end == NULL)
                break;
            p = end + 1;
        }
        cfg_free_value(k, base);
        *FIELD(base, k->off, char **) = items;
        *FIELD(base, k->off2, size_t) = n_items;
        return true;
    }

    case T_ADDKEY:
        /* the same rules as a key in the file: config_key_item_keys[0] */
        if (!cfg_check_string(&config_key_item_keys[0], text, why, n))
            return false;
        return cfg_add_key(base, text, (role_t)k->min, k->env, why, n);

    case T_KEYS:
    case T_BOARDS:
    case T_JSON:
    case T_ISSUERS:
        break;
    }
    abort(); /* the table gave a text default to a YAML-only type */
}

/* Defaults are written in the table as text; a default that fails is a bug. */
void cfg_apply_defaults(const conf_key_t *table, size_t n, void *base)
{
    char why[WHY_MAX];
    for (size_t i = 0; i < n; i++) {
        const conf_key_t *k = &table[i];
        if (k->def_fn != NULL) {
            *FIELD(base, k->off, int) = k->def_fn();
        } else if (k->def != NULL && !cfg_set_text(k, base, k->def, why, sizeof why)) {
            fprintf(stderr, "rankd: bad built-in default for %s: %s\n", k->name, why);
            abort();
        }
    }
}
