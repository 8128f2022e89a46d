/* core/ids.c — byte-exact validation of client-supplied names and numbers. */
#include "core/ids.h"

#include "core/board.h"

static bool is_lower_digit(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool id_board_valid(const char *s, size_t n)
{
    if (n < 1 || n > BOARD_ID_MAX || !is_lower_digit((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!is_lower_digit(c) && c != '_' && c != '-')
            return false;
    }
    return true;
}

bool id_player_valid(const char *s, size_t n)
{
    if (n < 1 || n > PLAYER_ID_MAX)
        return false;
    bool all_dots = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '@' || c == '-';
        if (!ok)
            return false;
        if (c != '.')
            all_dots = false;
    }
    return !all_dots;
}

static bool printable_ascii(const char *s, size_t n, size_t max)
{
    if (n < 1 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7E)
            return false;
    }
    return true;
}

bool id_idempotency_key_valid(const char *s, size_t n)
{
    return printable_ascii(s, n, IDEMPOTENCY_KEY_MAX);
}

bool id_request_id_valid(const char *s, size_t n)
{
    return printable_ascii(s, n, 64);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool id_percent_decode(const char *in, size_t n, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
            continue;
        }
        if (i + 2 >= n)
            return false;
        int hi = hex_value((unsigned char)in[i + 1]);
        int lo = hex_value((unsigned char)in[i + 2]);
        if (hi < 0 || lo < 0)
            return false;
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    *out_len = o;
    return true;
}

bool param_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > max / 10 || (v == max / 10 && d > max % 10))
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int64_t id_player_lock_key(int64_t gen, const char *player)
{
    uint64_t h = 1469598103934665603ULL;
    uint64_t g = (uint64_t)gen;
    for (int i = 0; i < 8; i++) {
        h = (h ^ (g & 0xff)) * 1099511628211ULL;
        g >>= 8;
    }
    for (const char *p = player; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (int64_t)h;
}
