/*
 * core/cursor.h — opaque, tamper-proof page cursors.
 *
 * A cursor is the position of a page's boundary entry plus what it belongs
 * to (listing kind, board generation, window day) and its direction,
 * serialized, signed with HMAC-SHA-256 (truncated to 128 bits) under the
 * configured cursor secret, and base64url-encoded. Any change to a byte,
 * a truncation, or a cursor of another board, window or listing fails
 * cursor_decode() or the caller's identity check.
 */
#ifndef RANKD_CORE_CURSOR_H
#define RANKD_CORE_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/order.h"
#include "util/must_use.h"

typedef enum {
    CURSOR_ENTRIES = 1, /* a board window's ranked entries */
    CURSOR_BOARDS = 2,  /* the list of boards; pos.player holds the boundary id */
    CURSOR_WINDOWS = 3, /* a board's windows; pos.sort_key holds the boundary day */
    CURSOR_HIDDEN = 4,  /* a board's hidden players: pos.achieved_ms their hidden_at, pos.player the id */
    CURSOR_FLAGGED = 5, /* a board's flagged submissions: pos.sort_key the received ms, achieved_ms the score, player */
} cursor_kind_t;

typedef struct {
    cursor_kind_t kind;
    bool backward;  /* page before the position (prev_cursor) */
    int64_t gen;    /* board generation, 0 for CURSOR_BOARDS */
    int64_t day;    /* window day, 0 when not a window listing */
    order_pos_t pos;
} cursor_t;

/* Room for any encoded cursor, NUL included. */
#define CURSOR_TEXT_MAX 192

/* Encode `c` into `out` (CURSOR_TEXT_MAX bytes), NUL-terminated; returns the length. */
size_t cursor_encode(const cursor_t *c, const char *secret, size_t secret_len, char *out);

/* Decode and authenticate `text`; false when malformed, truncated or forged. */
MUST_USE bool cursor_decode(const char *text, const char *secret, size_t secret_len, cursor_t *out);

/* cursor_decode() under `secret`, or else under `previous` (NULL or "": none), so that cursors
 * given out before the secret rotated still read while the instances change over. */
MUST_USE bool cursor_decode_rotated(const char *text, const char *secret, const char *previous, cursor_t *out);

#endif
