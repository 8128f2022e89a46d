/*
 * config/config_internal.h — what the files of config/ share, and nothing outside it uses:
 * the key tables (config_keys.c), values from text (config_values.c), the YAML walk
 * (config_yaml.c), and loading them in order (config.c).
 */
#ifndef RANKD_CONFIG_CONFIG_INTERNAL_H
#define RANKD_CONFIG_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <yaml.h>

/* The loaded configuration (config/config.h, which the files of config/ include themselves:
 * this header names it only, so that it includes nothing of config.h's module). */
struct rankd_config;

#define KEY_MIN_BYTES 16
#define KEY_MAX_BYTES 256
#define WHY_MAX 256 /* room for one error message */

/* Allocation: out of memory aborts. */
void *cfg_calloc(size_t count, size_t size);
void *cfg_realloc(void *p, size_t n);
char *cfg_strndup(const char *s, size_t n);
char *cfg_strdup(const char *s);
/* Free a string; a secret's bytes are wiped first. */
void cfg_free_str(char *s, bool secret);
void cfg_list_push(char ***v, size_t *n, char *s);
void cfg_list_free(char ***v, size_t *n, bool secret);

/* A setting: one row of a key table. */
typedef enum {
    T_INT,    /* int, decimal within [min, max] */
    T_SIZE,   /* size_t, a size in bytes within [min, max]: a whole number, optionally with a unit
               * (cfg_parse_size) */
    T_SCORE,  /* int64_t within [min, max], with a has_ flag at off2 */
    T_BOOL,   /* true | false */
    T_ENUM,   /* an enum field, named by `parse` */
    T_STR,    /* char *, byte length within [min, max] (max 0: no limit), then `check` */
    T_LISTEN, /* host:port into char *host (off) and int port (off2) */
    T_LIST,   /* char ** (off) and size_t count (off2); items as T_STR; `sep` in env */
    T_KEYS,   /* auth.keys: a list of {key, role} */
    T_ADDKEY, /* environment only: add one bearer key of role `min` */
    T_BOARDS, /* boards: a list of board definitions */
    T_JSON,   /* a YAML mapping stored as compact JSON object text (max: its bytes, 0: METADATA_MAX) */
    T_ISSUERS, /* auth.issuers: a list of trusted identity providers */
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

/* The tables (config_keys.c): every setting, the fields of an auth.keys item, of a boards item. */
#define CONFIG_KEYS_MAX 160 /* config_keys_n at most (a compile-time check says when to raise it) */
extern const conf_key_t config_keys[];
extern const size_t config_keys_n;
extern const conf_key_t config_key_item_keys[];
extern const size_t config_key_item_keys_n;
extern const conf_key_t config_board_keys[];
extern const size_t config_board_keys_n;
extern const conf_key_t config_issuer_keys[];
extern const size_t config_issuer_keys_n;
#define CONFIG_ISSUERS_MAX 16
#define CONFIG_ISSUER_KEYS_BYTES 65536 /* an inline JWKS as compact JSON at most */
/* The roles' names, by role_t (ROLE_NONE, 0, has none). */
extern const char *const config_role_names[4];
static inline bool cfg_is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static inline bool cfg_is_alnum(char c)
{
    return cfg_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
/* A copy of `s` safe to echo in a message, into buf (n bytes): non-printables as ?, long values cut. */
const char *cfg_shown(const char *s, char *buf, size_t n);
/* The row of `table` the file may name `name` (not an environment-only one), or NULL. */
const conf_key_t *cfg_find_key(const conf_key_t *table, size_t n, const char *name);

/* Values from text (config_values.c). */
/* A size in bytes: digits, then optionally one space and a unit, one of B, k, kb, KiB, m, mb,
 * MiB, g, gb, GiB, t, tb, TiB (any case; every one 1024-based). 0: *out set; -1: not a size
 * (garbage, a fraction, a sign other than '-'); -2: a negative one, or past LLONG_MAX. */
int cfg_parse_size(const char *s, long long *out);
bool cfg_check_string(const conf_key_t *k, const char *s, char *why, size_t n);
/* Add bearer key `key` of role `role` (a role_t) given at `origin`; false with the reason. */
bool cfg_add_key(struct rankd_config *cfg, const char *key, int role, const char *origin, char *why, size_t n);
/* Set the field of `k` in `base` from `text`; false with the reason in `why`. */
bool cfg_set_text(const conf_key_t *k, void *base, const char *text, char *why, size_t n);
void cfg_apply_defaults(const conf_key_t *table, size_t n, void *base);
void cfg_free_fields(const conf_key_t *table, size_t n, void *base);
/* Free the value of `k` in `base` (a secret's wiped), leaving the field empty. */
void cfg_free_value(const conf_key_t *k, void *base);

/* One load: where errors go, and what the file and the environment gave. */
typedef struct {
    FILE *errs;
    const char *path;
    unsigned n_errors;
    yaml_document_t *doc;
    bool given[CONFIG_KEYS_MAX]; /* the file or the environment set config_keys[i] */
    yaml_mark_t mark[CONFIG_KEYS_MAX];  /* where the file gave config_keys[i] (the document is freed after) */
    bool in_file[CONFIG_KEYS_MAX];
    bool from_env[CONFIG_KEYS_MAX];           /* the environment set it last */
} load_ctx_t;

/* Errors, counted in ctx (config_yaml.c): at a node's file:line:column, or "where: message". */
__attribute__((format(printf, 3, 4))) void cfg_err_at(load_ctx_t *ctx, const yaml_node_t *node, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) void cfg_err_plain(load_ctx_t *ctx, const char *where, const char *fmt, ...);
/* "file:line:column" of a mark (malloc'd). */
char *cfg_mark_origin(const load_ctx_t *ctx, yaml_mark_t mark);
/* Parse the YAML file into `cfg`. False when it could not be read at all. */
bool cfg_load_file(load_ctx_t *ctx, struct rankd_config *cfg);

#endif
