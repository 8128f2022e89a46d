/* core/cursor.c — cursor serialization, HMAC signing and base64url. */
#include "core/cursor.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define CURSOR_VERSION 1
#define MAC_LEN 16
/* version, kind, direction, gen, day, sort_key, achieved_ms, id length, id, mac */
#define RAW_MAX (3 + 8 * 4 + 1 + PLAYER_ID_MAX + MAC_LEN)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void put64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
}

static int64_t get64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    return (int64_t)u;
}

static void mac(const unsigned char *data, size_t n, const char *secret, size_t secret_len,
                unsigned char out[MAC_LEN])
{
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int full_len = 0;
    HMAC(EVP_sha256(), secret, (int)secret_len, data, n, full, &full_len);
    memcpy(out, full, MAC_LEN);
}

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Strict decoding: no padding, and unused trailing bits must be zero. */
static bool b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *out_len)
{
    if (n % 4 == 1)
        return false;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return false;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return false;
    *out_len = o;
    return true;
}

size_t cursor_encode(const cursor_t *c, const char *secret, size_t secret_len, char *out)
{
    unsigned char raw[RAW_MAX];
    size_t n = 0;
    raw[n++] = CURSOR_VERSION;
    raw[n++] = (unsigned char)c->kind;
    raw[n++] = c->backward ? 1 : 0;
    put64(raw + n, c->gen);
    n += 8;
    put64(raw + n, c->day);
    n += 8;
    put64(raw + n, c->pos.sort_key);
    n += 8;
    put64(raw + n, c->pos.achieved_ms);
    n += 8;
    raw[n++] = (unsigned char)c->pos.player_len;
    memcpy(raw + n, c->pos.player, c->pos.player_len);
    n += c->pos.player_len;
    mac(raw, n, secret, secret_len, raw + n);
    n += MAC_LEN;
    return b64_encode(raw, n, out);
}

bool cursor_decode(const char *text, const char *secret, size_t secret_len, cursor_t *out)
{
    size_t tn = strlen(text);
    unsigned char raw[RAW_MAX];
    size_t n;
    if (tn == 0 || tn >= CURSOR_TEXT_MAX || !b64_decode(text, tn, raw, sizeof raw, &n))
        return false;
    if (n < 3 + 32 + 1 + MAC_LEN)
        return false;
    size_t body = n - MAC_LEN;
    unsigned char want[MAC_LEN];
    mac(raw, body, secret, secret_len, want);
    if (CRYPTO_memcmp(want, raw + body, MAC_LEN) != 0)
        return false;
    if (raw[0] != CURSOR_VERSION || raw[1] < CURSOR_ENTRIES || raw[1] > CURSOR_HIDDEN || raw[2] > 1)
        return false;
    size_t idlen = raw[35];
    if (36 + idlen != body || idlen > PLAYER_ID_MAX)
        return false;
    out->kind = (cursor_kind_t)raw[1];
    out->backward = raw[2] == 1;
    out->gen = get64(raw + 3);
    out->day = get64(raw + 11);
    return order_pos_set(&out->pos, get64(raw + 19), get64(raw + 27), (const char *)raw + 36, idlen);
}

bool cursor_decode_rotated(const char *text, const char *secret, const char *previous, cursor_t *out)
{
    if (cursor_decode(text, secret, strlen(secret), out))
        return true;
    return previous && previous[0] && cursor_decode(text, previous, strlen(previous), out);
}
