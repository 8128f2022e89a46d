/*
 * util/redis_slot.h — the Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key, or of
 * the part between its first '{' and the next '}' when that part is not empty, modulo 16384.
 * Every key of a board window carries the tag {g<generation>}, so a board lives in one slot.
 */
#ifndef RANKD_UTIL_REDIS_SLOT_H
#define RANKD_UTIL_REDIS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define REDIS_SLOTS 16384

uint16_t redis_crc16(const char *s, size_t n);
/* The slot of the n bytes at key. */
unsigned redis_slot(const char *key, size_t n);

#endif
