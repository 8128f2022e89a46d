/*
 * core/board.h — a board's fixed rules: sort order, operator, reset period.
 *
 * Pure definitions and parsers shared by configuration, the API and the
 * stores; no I/O. Every code path names these rules through this header so
 * that "desc", "best" and "weekly" mean one thing everywhere.
 */
#ifndef RANKD_CORE_BOARD_H
#define RANKD_CORE_BOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include "util/must_use.h"

/* Largest score magnitude: exact in a JSON double and in Redis. */
#define SCORE_MAX ((int64_t)9007199254740991LL) /* 2^53 - 1 */
#define SCORE_MIN (-SCORE_MAX)

#define BOARD_ID_MAX 64
#define PLAYER_ID_MAX 64
#define METADATA_MAX 1024
#define IDEMPOTENCY_KEY_MAX 128
#define TITLE_MAX 200
/* The bounds of a board's client rules when set (API.md, "Plausibility rules"). */
#define RULE_PER_MINUTE_MAX 60000
#define RULE_RISE_MAX 1e18

typedef enum { SORT_DESC = 0, SORT_ASC = 1 } board_sort_t;
typedef enum { OP_BEST = 0, OP_LATEST = 1, OP_SUM = 2 } board_op_t;
typedef enum { RESET_NONE = 0, RESET_DAILY = 1, RESET_WEEKLY = 2, RESET_MONTHLY = 3 } board_reset_t;

/* Parse a rule's name; false when the name is not one of the allowed values. */
MUST_USE bool board_sort_parse(const char *s, board_sort_t *out);
MUST_USE bool board_op_parse(const char *s, board_op_t *out);
MUST_USE bool board_reset_parse(const char *s, board_reset_t *out);

/* The canonical lowercase name of a rule (static storage). */
const char *board_sort_name(board_sort_t s);
const char *board_op_name(board_op_t o);
const char *board_reset_name(board_reset_t r);

#endif
