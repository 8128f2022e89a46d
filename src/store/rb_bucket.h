/*
 * store/rb_bucket.h — which bucket of a window's player hash holds a player.
 *
 * The window's player hash is split into buckets (KEYS[2] .. n, n < 16384) so that each
 * stays small enough for Redis's compact listpack encoding: about 35 bytes per player
 * instead of about 100 in one big hash. The scripts look a player up only by a name the
 * command gives, so the bucket is computed here, in C, and sent along; members found by a
 * range carry their metadata and need no lookup (redis_board.c, LUA_MEMBER).
 */
#ifndef RANKD_STORE_RB_BUCKET_H
#define RANKD_STORE_RB_BUCKET_H

#include <stddef.h>

/* The bucket of a player's hash entry, in decimal into out (at least 6 bytes); returns its
 * length: h = (h * 31 + byte) % 1000003 over the id's bytes, then h % 16384. */
size_t rb_player_bucket(const char *player, size_t len, char *out);

#endif
