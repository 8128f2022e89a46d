/* store/rb_bucket.c — which bucket of a window's player hash holds a player (see rb_bucket.h). */
#include "store/rb_bucket.h"

#include <stdint.h>

#include "util/buf.h"

size_t rb_player_bucket(const char *player, size_t len, char *out)
{
    uint32_t h = 0;
    for (size_t i = 0; i < len; i++)
        h = (h * 31 + (unsigned char)player[i]) % 1000003;
    size_t n = u64_digits(out, h % 16384);
    out[n] = '\0';
    return n;
}
