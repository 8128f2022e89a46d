/*
 * store/rb_bucket.h — which bucket of a window's player hash holds a player, in C and in Lua.
 *
 * The window's player hash is split into buckets (KEYS[2] .. n, n < 16384) so that each
 * stays small enough for Redis's compact listpack encoding: about 35 bytes per player
 * instead of about 100 in one big hash. The bucket of a player named in a command is
 * computed in C (rb_player_bucket) and sent along: in Lua it costs more than the HGET. Only
 * members found by a range need the Lua copy (RB_LUA_BUCKET), and the two must agree on
 * every id (tests/unit/test_rb_bucket.c runs the Lua under Lua 5.1, as Redis does).
 */
#ifndef RANKD_STORE_RB_BUCKET_H
#define RANKD_STORE_RB_BUCKET_H

#include <stddef.h>

/* The bucket of a player's hash entry, in decimal into out (at least 6 bytes); returns its
 * length: h = (h * 31 + byte) % 1000003 over the id's bytes, then h % 16384. */
size_t rb_player_bucket(const char *player, size_t len, char *out);

/* The Lua function bucket(pl): the key of its bucket, `pk` (the scripts' KEYS[2]) followed by
 * the number. It takes six bytes per step, one string.byte call and one modulo for
 * 31^6 * h + ...: the same value as the byte-wise formula (every intermediate stays below
 * 2^53, exact in Lua's doubles), at about a quarter of the cost (0.7 us against 2.7 us per
 * player). */
#define RB_LUA_BUCKET                                                                \
    "local function bucket(pl)\n"                                                    \
    "  local h, n, i = 0, #pl, 1\n"                                                  \
    "  while i + 5 <= n do\n"                                                        \
    "    local a, b, c, d, e, f = string.byte(pl, i, i + 5)\n"                       \
    "    h = (h * 887503681 + a * 28629151 + b * 923521 + c * 29791 + d * 961 + e * 31 + f) % 1000003\n" \
    "    i = i + 6\n"                                                                \
    "  end\n"                                                                        \
    "  for j = i, n do h = (h * 31 + string.byte(pl, j)) % 1000003 end\n"            \
    "  return pk .. (h % 16384)\n"                                                   \
    "end\n"

#endif
