/* config/secret_policy.c — what makes a bearer key or a cursor secret unsafe to serve with. */
#include "config/secret_policy.h"

#include <arpa/inet.h>
#include <math.h>
#include <string.h>
#include <strings.h>

/*
 * Every key and secret rankd's own files show: config/rankd.yaml (the development one),
 * config/rankd.example.yaml, the README, and the built-in development cursor secret. Anyone
 * who read the repository knows them.
 */
static const char *const published[] = {
    "dev-admin-key-change-me",
    "dev-write-key-change-me",
    "dev-read-key-change-me",
    "dev-cursor-secret-change-me",
    "example-admin-key-change-me",
    "example-write-key-change-me",
    "example-read-key-change-me",
    "change-me-to-a-long-random-string",
    "the-secret-before-the-rotation",
    "generate-one-with-rankd-config-gen-key",
    "rankd-dev-cursor-secret",
};

/*
 * A random value of SECRET_MIN_BYTES bytes written in hex (the weakest common encoding) is
 * estimated at about 110 bits; base64url of `gen-key` at about 200. Below this, the value is
 * made of few distinct characters.
 */
#define ENTROPY_MIN_BITS 96.0
/* A stretch this long seen twice ("passwordpassword"), or one of consecutive characters
 * ("abcdef", "654321"): about 1 in 10,000 for 64 random hex digits, never for gen-key's. */
#define PATTERN_RUN 6

double secret_entropy_bits(const char *s, size_t len)
{
    unsigned counts[256] = {0};
    for (size_t i = 0; i < len; i++)
        counts[(unsigned char)s[i]]++;
    double bits = 0;
    for (int c = 0; c < 256; c++) {
        if (counts[c] == 0)
            continue;
        double p = (double)counts[c] / (double)len;
        bits -= (double)counts[c] * log2(p);
    }
    return bits;
}

/* A run of PATTERN_RUN characters each one above (or each one below) the one before. */
static bool has_sequence(const char *s, size_t len)
{
    size_t up = 1, down = 1;
    for (size_t i = 1; i < len; i++) {
        int d = (unsigned char)s[i] - (unsigned char)s[i - 1];
        up = d == 1 ? up + 1 : 1;
        down = d == -1 ? down + 1 : 1;
        if (up >= PATTERN_RUN || down >= PATTERN_RUN)
            return true;
    }
    return false;
}

/* A stretch of PATTERN_RUN bytes found again later (the value repeats itself). */
static bool has_repeat(const char *s, size_t len)
{
    for (size_t i = 0; i + PATTERN_RUN <= len; i++)
        for (size_t j = i + 1; j + PATTERN_RUN <= len; j++)
            if (memcmp(s + i, s + j, PATTERN_RUN) == 0)
                return true;
    return false;
}

const char *secret_flaw(const char *s)
{
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++)
        if (strcmp(s, published[i]) == 0)
            return "is published in rankd's README or example files";
    size_t len = strlen(s);
    if (len < SECRET_MIN_BYTES)
        return "is shorter than 32 bytes";
    if (secret_entropy_bits(s, len) < ENTROPY_MIN_BITS)
        return "has too little entropy (too few distinct characters)";
    if (has_repeat(s, len) || has_sequence(s, len))
        return "has too little entropy (it repeats itself or runs through consecutive characters)";
    return NULL;
}

bool secret_host_is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    struct in6_addr v6;
    if (inet_pton(AF_INET6, host, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return false;
}
