/* util/redis_slot.c — Redis Cluster key slots (see redis_slot.h). */
#include "util/redis_slot.h"

#include <string.h>

uint16_t redis_crc16(const char *s, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)s[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

unsigned redis_slot(const char *key, size_t n)
{
    const char *open = memchr(key, '{', n);
    if (open) {
        size_t rest = n - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return redis_crc16(open + 1, (size_t)(close - open - 1)) % REDIS_SLOTS;
    }
    return redis_crc16(key, n) % REDIS_SLOTS;
}
