/* core/player_token.c — rankd's minted player tokens: HS256 compact JWS; see player_token.h. */
#include "core/player_token.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/ids.h"
#include "util/buf.h"

#define HS256_LEN 32
/* The header every minted token carries, base64url of {"alg":"HS256","typ":"JWT"}. */
#define HEADER_B64 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
/* An iat this far ahead of the clock is refused (hosts' clocks differ a little). */
#define IAT_SKEW_MS 60000

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding of in[0..n) appended to out. */
static void b64url_put(buf_t *out, const unsigned char *in, size_t n)
{
    size_t i = 0;
    char q[4];
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        q[0] = b64[v >> 18], q[1] = b64[(v >> 12) & 63], q[2] = b64[(v >> 6) & 63], q[3] = b64[v & 63];
        buf_append(out, q, 4);
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        q[0] = b64[v >> 18], q[1] = b64[(v >> 12) & 63];
        buf_append(out, q, 2);
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        q[0] = b64[v >> 18], q[1] = b64[(v >> 12) & 63], q[2] = b64[(v >> 6) & 63];
        buf_append(out, q, 3);
    }
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decode base64url without padding into out (cap bytes); false on a bad character, a length
 * that no encoding has, non-zero trailing bits (two texts for one value) or too little room. */
static bool b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *out_len)
{
    if (n % 4 == 1)
        return false;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
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

static void hs256(const char *secret, const char *data, size_t n, unsigned char out[HS256_LEN])
{
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)data, n, out, &len);
}

char *player_token_mint(const char *secret, const char *player, const char *const *boards, size_t n_boards,
                        int64_t now_ms, int ttl_s, const unsigned char jti[16])
{
    if (n_boards > PLAYER_CLAIMS_BOARDS_MAX || !secret || !player)
        return NULL;
    buf_t claims;
    buf_init(&claims);
    buf_puts(&claims, "{\"iss\":\"" PLAYER_TOKEN_ISSUER "\",\"sub\":");
    buf_json_str(&claims, player, strlen(player));
    /* iat with its milliseconds (see player_token.h); exp in whole seconds. */
    buf_printf(&claims, ",\"iat\":%lld.%03d,\"exp\":%lld,\"jti\":\"", (long long)(now_ms / 1000),
               (int)(now_ms % 1000), (long long)(now_ms / 1000 + ttl_s));
    b64url_put(&claims, jti, 16);
    buf_putc(&claims, '"');
    if (n_boards > 0) {
        buf_puts(&claims, ",\"boards\":[");
        for (size_t i = 0; i < n_boards; i++) {
            if (i)
                buf_putc(&claims, ',');
            buf_json_str(&claims, boards[i], strlen(boards[i]));
        }
        buf_putc(&claims, ']');
    }
    buf_putc(&claims, '}');
    buf_t tok;
    buf_init(&tok);
    buf_puts(&tok, HEADER_B64 ".");
    b64url_put(&tok, (const unsigned char *)claims.data, claims.len);
    buf_free(&claims);
    unsigned char mac[HS256_LEN];
    hs256(secret, tok.data, tok.len, mac);
    buf_putc(&tok, '.');
    b64url_put(&tok, mac, sizeof mac);
    OPENSSL_cleanse(mac, sizeof mac);
    return buf_steal(&tok, NULL);
}

/* A JSON object from the base64url text in[0..n), or NULL. The caller decrefs. */
static json_t *b64url_json(const char *in, size_t n)
{
    if (n == 0 || n > PLAYER_TOKEN_TEXT_MAX)
        return NULL;
    unsigned char raw[PLAYER_TOKEN_TEXT_MAX];
    size_t len = 0;
    if (!b64url_decode(in, n, raw, sizeof raw, &len))
        return NULL;
    json_t *v = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static token_verdict_t refuse(char *why, size_t why_len, const char *reason)
{
    snprintf(why, why_len, "%s", reason);
    return TOKEN_INVALID;
}

/* The claims past the signature into *out: TOKEN_VALID, or TOKEN_INVALID with why. */
static token_verdict_t read_claims(json_t *payload, int64_t now_ms, player_claims_t *out, char *why, size_t why_len)
{
    json_t *sub = json_object_get(payload, "sub"), *exp = json_object_get(payload, "exp");
    json_t *iat = json_object_get(payload, "iat"), *boards = json_object_get(payload, "boards");
    if (!json_is_string(sub) || !id_player_valid(json_string_value(sub), json_string_length(sub)))
        return refuse(why, why_len, "its sub is not a player id (" ID_PLAYER_RULE ")");
    if (!json_is_integer(exp))
        return refuse(why, why_len, "its exp is not a whole number of seconds");
    if (!json_is_number(iat) || !isfinite(json_number_value(iat)) || json_number_value(iat) < 0 ||
        json_number_value(iat) > 1e11)
        return refuse(why, why_len, "its iat is not a time");
    int64_t exp_s = json_integer_value(exp);
    if (exp_s <= 0 || exp_s > (int64_t)1e11)
        return refuse(why, why_len, "its exp is not a time");
    int64_t iat_ms = llround(json_number_value(iat) * 1000.0);
    int64_t exp_ms = exp_s * 1000;
    if (now_ms >= exp_ms)
        return refuse(why, why_len, "it has expired");
    if (iat_ms > now_ms + IAT_SKEW_MS)
        return refuse(why, why_len, "it is issued in the future");
    if (exp_ms - iat_ms > ((int64_t)PLAYER_TOKEN_TTL_MAX_S + 1) * 1000)
        return refuse(why, why_len, "it lives longer than a day");
    memset(out, 0, sizeof *out);
    if (boards) {
        size_t n = json_is_array(boards) ? json_array_size(boards) : 0;
        if (n < 1 || n > PLAYER_CLAIMS_BOARDS_MAX)
            return refuse(why, why_len, "its boards is not a list of 1 to 16 board ids");
        for (size_t i = 0; i < n; i++) {
            json_t *b = json_array_get(boards, i);
            if (!json_is_string(b) || !id_board_valid(json_string_value(b), json_string_length(b)))
                return refuse(why, why_len, "its boards is not a list of 1 to 16 board ids");
            snprintf(out->boards[i], sizeof out->boards[i], "%s", json_string_value(b));
        }
        out->n_boards = n;
    }
    snprintf(out->player, sizeof out->player, "%s", json_string_value(sub));
    snprintf(out->subject, sizeof out->subject, "%s", json_string_value(sub));
    snprintf(out->issuer, sizeof out->issuer, "%s", PLAYER_TOKEN_ISSUER);
    out->iat_ms = iat_ms;
    out->exp_ms = exp_ms;
    return TOKEN_VALID;
}

token_verdict_t player_token_verify(void *ctx, const char *token, size_t len, int64_t now_ms, player_claims_t *out,
                                    char *why, size_t why_len)
{
    const player_token_keys_t *keys = ctx;
    if (len == 0 || len > PLAYER_TOKEN_TEXT_MAX)
        return TOKEN_NOT_MINE;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
        return TOKEN_NOT_MINE; /* not a compact JWS */
    json_t *payload = b64url_json(d1 + 1, (size_t)(d2 - d1 - 1));
    json_t *iss = payload ? json_object_get(payload, "iss") : NULL;
    /* The issuer picks the source only; nothing of the payload is believed before the signature. */
    if (!json_is_string(iss) || strcmp(json_string_value(iss), PLAYER_TOKEN_ISSUER) != 0) {
        json_decref(payload);
        return TOKEN_NOT_MINE;
    }
    token_verdict_t v = TOKEN_INVALID;
    json_t *header = b64url_json(token, (size_t)(d1 - token));
    json_t *alg = header ? json_object_get(header, "alg") : NULL;
    unsigned char sig[HS256_LEN + 1], mac[HS256_LEN];
    size_t sig_len = 0;
    if (!header) {
        refuse(why, why_len, "its header is not base64url of a JSON object");
    } else if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0) {
        refuse(why, why_len, "its alg is not HS256 (rankd's tokens are HS256 only; none is never accepted)");
    } else if (json_object_get(header, "crit")) {
        refuse(why, why_len, "its header has crit extensions rankd does not know");
    } else if (!b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), sig, sizeof sig, &sig_len) ||
               sig_len != HS256_LEN) {
        refuse(why, why_len, "its signature is not an HS256 signature");
    } else {
        bool good = false;
        const char *secrets[2] = {keys ? keys->current : NULL, keys ? keys->previous : NULL};
        for (int i = 0; i < 2; i++) {
            if (!secrets[i] || !secrets[i][0])
                continue;
            hs256(secrets[i], token, (size_t)(d2 - token), mac);
            good |= CRYPTO_memcmp(mac, sig, HS256_LEN) == 0;
        }
        OPENSSL_cleanse(mac, sizeof mac);
        if (!good)
            refuse(why, why_len, "its signature does not verify");
        else
            v = read_claims(payload, now_ms, out, why, why_len);
    }
    json_decref(header);
    json_decref(payload);
    return v;
}

bool player_claims_allow_board(const player_claims_t *c, const char *board)
{
    if (c->n_boards == 0)
        return true;
    for (size_t i = 0; i < c->n_boards; i++)
        if (strcmp(c->boards[i], board) == 0)
            return true;
    return false;
}
