/*
 * core/ids.h — validation of the names clients send: board ids, player ids,
 * idempotency keys, request ids, and the plain-decimal query parameters.
 *
 * Pure functions over (pointer, length) so that percent-decoded path
 * segments, which may hold NUL bytes, are judged by every byte.
 */
#ifndef RANKD_CORE_IDS_H
#define RANKD_CORE_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/must_use.h"

/* ^[a-z0-9][a-z0-9_-]{0,63}$ */
bool id_board_valid(const char *s, size_t n);
/* 1-64 bytes of [A-Za-z0-9_.:@-], not made only of dots. */
bool id_player_valid(const char *s, size_t n);
/* 1-128 bytes of 0x21-0x7E. */
bool id_idempotency_key_valid(const char *s, size_t n);

/* The rules above as a client reads them in a 400's message. */
#define ID_BOARD_RULE "a board id is 1 to 64 characters of a-z, 0-9, _ and -, the first a letter or a digit"
#define ID_PLAYER_RULE "a player id is 1 to 64 characters of A-Z, a-z, 0-9, _ . : @ and -, not only dots"
#define ID_IDEMPOTENCY_KEY_RULE "an Idempotency-Key is 1 to 128 printable ASCII characters (0x21-0x7E), no spaces"
/* 1-64 bytes of 0x21-0x7E. */
bool id_request_id_valid(const char *s, size_t n);

/*
 * Percent-decode `in[0..n)` once into `out` (room for n bytes). Returns
 * false on a malformed escape ("%", "%4", "%zz"). `*out_len` gets the length.
 */
MUST_USE bool id_percent_decode(const char *in, size_t n, char *out, size_t *out_len);

/*
 * Parse a query parameter made only of decimal digits (no sign, space,
 * exponent or hex) whose value is at most `max`. False otherwise.
 */
MUST_USE bool param_parse_uint(const char *s, uint64_t max, uint64_t *out);

/*
 * The 64-bit key of the transaction advisory lock that serializes every
 * change to one player's standings on one board generation (FNV-1a).
 */
int64_t id_player_lock_key(int64_t gen, const char *player);

#endif
