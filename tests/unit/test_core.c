/*
 * tests/unit/test_core.c — unit tests of the pure modules: core/ids,
 * core/order, core/score, core/window, core/cursor and util/buf.
 *
 * The expectations come from the API contract (docs: "Names and values",
 * "Ordering", "Operators", "Windows") and the module headers, not from the
 * implementation. Randomized tests use a fixed-seed PRNG so that every run
 * checks the same cases; calendar results are checked against the C
 * library's gmtime_r() as an independent oracle.
 */
#include <setjmp.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/board.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/notice.h"
#include "core/order.h"
#include "core/rank_style.h"
#include "core/score.h"
#include "core/tournament.h"
#include "core/league.h"
#include "core/window.h"
#include "util/buf.h"
#include "util/sha256.h"

/* ------------------------------------------------------------------ */
/* helpers                                                              */
/* ------------------------------------------------------------------ */

/* Fail with a message that names the case (useful inside loops). */
#define CHECK(cond, ...)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            print_error("CHECK(%s) failed: ", #cond);                                                        \
            print_error(__VA_ARGS__);                                                                        \
            print_error("\n");                                                                               \
            fail();                                                                                          \
        }                                                                                                    \
    } while (0)

/* A string literal as (pointer, length), embedded NULs included. */
#define LIT(s) (s), (sizeof(s) - 1)

/* splitmix64: a small PRNG, seeded per test so each test is reproducible alone. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
    rng_state = seed;
}

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint64_t rng_below(uint64_t n)
{
    return rng_next() % n;
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
    if (span == 0)
        return (int64_t)rng_next();
    return (int64_t)((uint64_t)lo + rng_below(span));
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static bool is_b64url(char c)
{
    return c != '\0' && strchr(B64URL, c) != NULL;
}

/* ------------------------------------------------------------------ */
/* ids: board ids                                                       */
/* ------------------------------------------------------------------ */

static void test_board_id_valid(void **state)
{
    (void)state;
    assert_true(id_board_valid(LIT("a")));
    assert_true(id_board_valid(LIT("0")));
    assert_true(id_board_valid(LIT("9lives")));
    assert_true(id_board_valid(LIT("weekly-top_10")));
    assert_true(id_board_valid(LIT("a_")));
    assert_true(id_board_valid(LIT("a-")));
    assert_true(id_board_valid(LIT("z--__--9")));

    char s[80];
    memset(s, 'a', sizeof s);
    assert_true(id_board_valid(s, 1));
    assert_true(id_board_valid(s, 63));
    assert_true(id_board_valid(s, 64));   /* 1 + 63 */
    assert_false(id_board_valid(s, 65));  /* one too many */
    assert_false(id_board_valid(s, 80));
    s[0] = '7';
    memset(s + 1, '_', sizeof s - 1);
    assert_true(id_board_valid(s, 64));
    assert_false(id_board_valid(s, 65));
}

static void test_board_id_invalid(void **state)
{
    (void)state;
    assert_false(id_board_valid("", 0));
    assert_false(id_board_valid(LIT("_a")));   /* leading '_' */
    assert_false(id_board_valid(LIT("-a")));   /* leading '-' */
    assert_false(id_board_valid(LIT("_")));
    assert_false(id_board_valid(LIT("-")));
    assert_false(id_board_valid(LIT("A")));    /* uppercase */
    assert_false(id_board_valid(LIT("Top")));
    assert_false(id_board_valid(LIT("toP")));
    assert_false(id_board_valid(LIT("a.b")));
    assert_false(id_board_valid(LIT(".")));
    assert_false(id_board_valid(LIT("..")));
    assert_false(id_board_valid(LIT("a b")));
    assert_false(id_board_valid(LIT("a/b")));
    assert_false(id_board_valid(LIT("a:b")));
    assert_false(id_board_valid(LIT("a@b")));
    assert_false(id_board_valid(LIT("a%2f")));
    assert_false(id_board_valid(LIT("caf\xc3\xa9")));  /* UTF-8 */
    assert_false(id_board_valid(LIT("\xff")));
    assert_false(id_board_valid(LIT("ab\0cd")));       /* NUL inside the length */
    assert_false(id_board_valid(LIT("\0ab")));
    assert_false(id_board_valid(LIT("ab\0")));
    /* Characters just outside the allowed ranges. */
    const char edge[] = {'`', '{', '/', ':', '^', '@', '[', ','};
    for (size_t i = 0; i < sizeof edge; i++) {
        char one[2] = {edge[i], 0};
        char two[3] = {'a', edge[i], 0};
        CHECK(!id_board_valid(one, 1), "first byte 0x%02x", (unsigned char)edge[i]);
        CHECK(!id_board_valid(two, 2), "second byte 0x%02x", (unsigned char)edge[i]);
    }
    /* Every byte value: exactly [a-z0-9] may start, [a-z0-9_-] may follow. */
    for (int c = 0; c < 256; c++) {
        char one[1] = {(char)c};
        char two[2] = {'x', (char)c};
        bool start_ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        bool rest_ok = start_ok || c == '_' || c == '-';
        CHECK(id_board_valid(one, 1) == start_ok, "first byte 0x%02x", c);
        CHECK(id_board_valid(two, 2) == rest_ok, "second byte 0x%02x", c);
    }
}

/* ------------------------------------------------------------------ */
/* ids: player ids                                                      */
/* ------------------------------------------------------------------ */

static void test_player_id_valid(void **state)
{
    (void)state;
    assert_true(id_player_valid(LIT("a")));
    assert_true(id_player_valid(LIT("Z")));
    assert_true(id_player_valid(LIT("0")));
    assert_true(id_player_valid(LIT("_")));
    assert_true(id_player_valid(LIT("-")));
    assert_true(id_player_valid(LIT(":")));
    assert_true(id_player_valid(LIT("@")));
    assert_true(id_player_valid(LIT("a.")));
    assert_true(id_player_valid(LIT(".a")));
    assert_true(id_player_valid(LIT("..a")));
    assert_true(id_player_valid(LIT("...-")));
    assert_true(id_player_valid(LIT("Player_1.eu:west@host-2")));

    char s[80];
    memset(s, 'P', sizeof s);
    assert_true(id_player_valid(s, 64));
    assert_false(id_player_valid(s, 65));
    memset(s, '.', sizeof s);
    s[63] = 'x';
    assert_true(id_player_valid(s, 64)); /* 63 dots and a letter */
    assert_false(id_player_valid(s, 63)); /* 63 dots only */
}

static void test_player_id_invalid(void **state)
{
    (void)state;
    assert_false(id_player_valid("", 0));
    assert_false(id_player_valid(LIT(".")));
    assert_false(id_player_valid(LIT("..")));
    assert_false(id_player_valid(LIT("...")));
    char dots[64];
    memset(dots, '.', sizeof dots);
    assert_false(id_player_valid(dots, 64));
    assert_false(id_player_valid(LIT("a b")));
    assert_false(id_player_valid(LIT("a/b")));
    assert_false(id_player_valid(LIT("a%b")));
    assert_false(id_player_valid(LIT("a+b")));
    assert_false(id_player_valid(LIT("a,b")));
    assert_false(id_player_valid(LIT("a\"b")));
    assert_false(id_player_valid(LIT("a\\b")));
    assert_false(id_player_valid(LIT("caf\xc3\xa9")));
    assert_false(id_player_valid(LIT("ab\0cd"))); /* NUL inside the length */
    assert_false(id_player_valid(LIT("\0")));
    assert_false(id_player_valid(LIT(".\0")));
    /* Every byte value, alone and after a letter. */
    for (int c = 0; c < 256; c++) {
        char one[1] = {(char)c};
        char two[2] = {'x', (char)c};
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == ':' || c == '@' || c == '-';
        CHECK(id_player_valid(one, 1) == (ok && c != '.'), "byte 0x%02x alone", c);
        CHECK(id_player_valid(two, 2) == ok, "byte 0x%02x after a letter", c);
    }
}

/* ------------------------------------------------------------------ */
/* ids: idempotency keys and request ids                                */
/* ------------------------------------------------------------------ */

static void test_idempotency_key(void **state)
{
    (void)state;
    char s[200];
    memset(s, 'k', sizeof s);
    assert_false(id_idempotency_key_valid(s, 0));
    assert_true(id_idempotency_key_valid(s, 1));
    assert_true(id_idempotency_key_valid(s, 128));
    assert_false(id_idempotency_key_valid(s, 129));
    assert_true(id_idempotency_key_valid(LIT("!")));   /* 0x21 */
    assert_true(id_idempotency_key_valid(LIT("~")));   /* 0x7E */
    assert_true(id_idempotency_key_valid(LIT("a/b?c=\"d\"{}")));
    assert_false(id_idempotency_key_valid(LIT(" ")));  /* 0x20 */
    assert_false(id_idempotency_key_valid(LIT("a b")));
    assert_false(id_idempotency_key_valid(LIT("\x7f"))); /* DEL */
    assert_false(id_idempotency_key_valid(LIT("\x80")));
    assert_false(id_idempotency_key_valid(LIT("ab\0cd")));
    assert_false(id_idempotency_key_valid(LIT("ab\t")));
    for (int c = 0; c < 256; c++) {
        char two[2] = {'k', (char)c};
        CHECK(id_idempotency_key_valid(two, 2) == (c >= 0x21 && c <= 0x7E), "byte 0x%02x", c);
    }
}

static void test_request_id(void **state)
{
    (void)state;
    char s[100];
    memset(s, 'r', sizeof s);
    assert_false(id_request_id_valid(s, 0));
    assert_true(id_request_id_valid(s, 1));
    assert_true(id_request_id_valid(s, 64));
    assert_false(id_request_id_valid(s, 65));
    assert_true(id_request_id_valid(LIT("!~")));
    assert_false(id_request_id_valid(LIT("req id")));
    assert_false(id_request_id_valid(LIT("req\0id")));
    assert_false(id_request_id_valid(LIT("req\x7f")));
    assert_false(id_request_id_valid(LIT("req\n")));
    for (int c = 0; c < 256; c++) {
        char one[1] = {(char)c};
        CHECK(id_request_id_valid(one, 1) == (c >= 0x21 && c <= 0x7E), "byte 0x%02x", c);
    }
}

/* ------------------------------------------------------------------ */
/* ids: percent decoding                                                */
/* ------------------------------------------------------------------ */

static bool pdecode(const char *in, size_t n, char *out, size_t *len)
{
    *len = (size_t)-1;
    return id_percent_decode(in, n, out, len);
}

static void test_percent_decode_valid(void **state)
{
    (void)state;
    char out[64];
    size_t n;

    assert_true(pdecode("", 0, out, &n));
    assert_int_equal(n, 0);

    assert_true(pdecode(LIT("plain-id_1"), out, &n));
    assert_int_equal(n, 10);
    assert_memory_equal(out, "plain-id_1", 10);

    assert_true(pdecode(LIT("%2F"), out, &n));
    assert_int_equal(n, 1);
    assert_int_equal(out[0], '/');

    assert_true(pdecode(LIT("%2f"), out, &n)); /* lowercase hex */
    assert_int_equal(n, 1);
    assert_int_equal(out[0], '/');

    assert_true(pdecode(LIT("a%20b"), out, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(out, "a b", 3);

    assert_true(pdecode(LIT("%41%42%43"), out, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(out, "ABC", 3);

    /* Decoded once: "%2541" is "%41", not "A". */
    assert_true(pdecode(LIT("%2541"), out, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(out, "%41", 3);

    /* A NUL byte comes through inside the length (and the validators refuse it). */
    assert_true(pdecode(LIT("ab%00cd"), out, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(out, "ab\0cd", 5);
    assert_false(id_player_valid(out, n));

    assert_true(pdecode(LIT("%ff%Fe%aB%09"), out, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(out, "\xff\xfe\xab\x09", 4);

    /* "%2F" decodes to a slash, which no id accepts. */
    assert_true(pdecode(LIT("a%2Fb"), out, &n));
    assert_int_equal(n, 3);
    assert_false(id_player_valid(out, n));
    assert_false(id_board_valid(out, n));

    /* "." as "%2E" is still only dots after decoding. */
    assert_true(pdecode(LIT("%2E%2e"), out, &n));
    assert_int_equal(n, 2);
    assert_false(id_player_valid(out, n));

    /* The escape at the very end of the input. */
    assert_true(pdecode(LIT("abc%7e"), out, &n));
    assert_int_equal(n, 4);
    assert_memory_equal(out, "abc~", 4);

    /* Only the first n bytes are read. */
    assert_true(pdecode("ab%", 2, out, &n));
    assert_int_equal(n, 2);
}

static void test_percent_decode_malformed(void **state)
{
    (void)state;
    char out[64];
    size_t n;
    assert_false(pdecode(LIT("%"), out, &n));
    assert_false(pdecode(LIT("%4"), out, &n));
    assert_false(pdecode(LIT("%zz"), out, &n));
    assert_false(pdecode(LIT("%z1"), out, &n));  /* bad high digit */
    assert_false(pdecode(LIT("%1z"), out, &n));  /* bad low digit */
    assert_false(pdecode(LIT("%G0"), out, &n));
    assert_false(pdecode(LIT("%g0"), out, &n));
    assert_false(pdecode(LIT("%:0"), out, &n));  /* ':' follows '9' */
    assert_false(pdecode(LIT("%/0"), out, &n));  /* '/' precedes '0' */
    assert_false(pdecode(LIT("%@0"), out, &n));  /* '@' precedes 'A' */
    assert_false(pdecode(LIT("%`0"), out, &n));  /* '`' precedes 'a' */
    assert_false(pdecode(LIT("abc%"), out, &n));
    assert_false(pdecode(LIT("abc%4"), out, &n));
    assert_false(pdecode(LIT("%41%"), out, &n));
    assert_false(pdecode(LIT("%%41"), out, &n));
    assert_false(pdecode(LIT("% 41"), out, &n));
    assert_false(pdecode(LIT("%\0" "0"), out, &n));
    /* "%4" followed by a byte beyond n must not be read as its second digit. */
    assert_false(pdecode("%41", 2, out, &n));
}

/* ------------------------------------------------------------------ */
/* ids: plain decimal query parameters                                  */
/* ------------------------------------------------------------------ */

static void test_param_parse_uint_valid(void **state)
{
    (void)state;
    uint64_t v;
    v = 77;
    assert_true(param_parse_uint("0", 1000, &v));
    assert_int_equal(v, 0);
    assert_true(param_parse_uint("10", 1000, &v));
    assert_int_equal(v, 10);
    assert_true(param_parse_uint("1000", 1000, &v)); /* max itself */
    assert_int_equal(v, 1000);
    assert_true(param_parse_uint("999", 1000, &v));
    assert_int_equal(v, 999);
    assert_true(param_parse_uint("0010", 1000, &v)); /* still only digits */
    assert_int_equal(v, 10);
    assert_true(param_parse_uint("100", 100, &v));
    assert_int_equal(v, 100);
    assert_true(param_parse_uint("0", 0, &v));
    assert_int_equal(v, 0);
    assert_true(param_parse_uint("5", 5, &v));
    assert_int_equal(v, 5);
    assert_true(param_parse_uint("18446744073709551615", UINT64_MAX, &v));
    assert_true(v == UINT64_MAX);
    assert_true(param_parse_uint("18446744073709551614", UINT64_MAX, &v));
    assert_true(v == UINT64_MAX - 1);
    assert_true(param_parse_uint("9223372036854775807", INT64_MAX, &v));
    assert_true(v == (uint64_t)INT64_MAX);
}

static void test_param_parse_uint_invalid(void **state)
{
    (void)state;
    uint64_t v = 4242;
    assert_false(param_parse_uint(NULL, 1000, &v));
    assert_false(param_parse_uint("", 1000, &v));
    assert_false(param_parse_uint("1e2", 1000, &v));
    assert_false(param_parse_uint("0x10", 1000, &v));
    assert_false(param_parse_uint(" 5", 1000, &v));
    assert_false(param_parse_uint("5 ", 1000, &v));
    assert_false(param_parse_uint("-1", 1000, &v));
    assert_false(param_parse_uint("+1", 1000, &v));
    assert_false(param_parse_uint("1.0", 1000, &v));
    assert_false(param_parse_uint("1,0", 1000, &v));
    assert_false(param_parse_uint("١", 1000, &v)); /* non-ASCII digit */
    assert_false(param_parse_uint("/", 1000, &v));  /* just below '0' */
    assert_false(param_parse_uint(":", 1000, &v));  /* just above '9' */
    /* Above max. */
    assert_false(param_parse_uint("1001", 1000, &v));
    assert_false(param_parse_uint("1010", 1000, &v));
    assert_false(param_parse_uint("10000", 1000, &v));
    assert_false(param_parse_uint("101", 100, &v));
    /* (max below 9 is covered by test_param_parse_uint_small_max) */
    /* Beyond 64 bits. */
    assert_false(param_parse_uint("18446744073709551616", UINT64_MAX, &v));
    assert_false(param_parse_uint("18446744073709551620", UINT64_MAX, &v));
    assert_false(param_parse_uint("99999999999999999999", UINT64_MAX, &v));
    assert_false(param_parse_uint("9223372036854775808", INT64_MAX, &v));
    /* Failure leaves the output alone. */
    assert_int_equal(v, 4242);
}

/*
 * Every (value, max) pair up to 120, also with leading zeros: accepted
 * exactly when value <= max. Reports every wrong answer, then fails.
 */
static void test_param_parse_uint_small_max(void **state)
{
    (void)state;
    int wrong = 0;
    for (uint64_t max = 0; max <= 120; max++) {
        for (uint64_t val = 0; val <= 120; val++) {
            for (int zeros = 0; zeros < 2; zeros++) {
                char s[8];
                snprintf(s, sizeof s, zeros ? "0%llu" : "%llu", (unsigned long long)val);
                uint64_t got = 12345;
                bool ok = param_parse_uint(s, max, &got);
                if (ok != (val <= max) || (ok && got != val)) {
                    if (wrong < 12)
                        print_error("param_parse_uint(\"%s\", max=%llu) returned %s, value %llu\n", s,
                                    (unsigned long long)max, ok ? "true" : "false", (unsigned long long)got);
                    wrong++;
                }
            }
        }
    }
    CHECK(wrong == 0, "%d wrong answers", wrong);
}

/* ------------------------------------------------------------------ */
/* order: scores and sort keys                                          */
/* ------------------------------------------------------------------ */

static void test_order_sort_key(void **state)
{
    (void)state;
    const int64_t scores[] = {0, 1, -1, 42, -42, SCORE_MAX, SCORE_MIN, SCORE_MAX - 1, SCORE_MIN + 1};
    for (size_t i = 0; i < sizeof scores / sizeof scores[0]; i++) {
        int64_t s = scores[i];
        assert_true(order_sort_key(SORT_ASC, s) == s);
        assert_true(order_sort_key(SORT_DESC, s) == -s);
        assert_true(order_score(SORT_ASC, order_sort_key(SORT_ASC, s)) == s);
        assert_true(order_score(SORT_DESC, order_sort_key(SORT_DESC, s)) == s);
        /* Sort keys stay within the score range. */
        assert_true(score_in_range(order_sort_key(SORT_DESC, s)));
        assert_true(score_in_range(order_sort_key(SORT_ASC, s)));
    }
    assert_true(order_score(SORT_DESC, 5) == -5);
    assert_true(order_score(SORT_ASC, 5) == 5);
}

static void test_order_score_better(void **state)
{
    (void)state;
    /* desc: higher is better. */
    assert_true(order_score_better(SORT_DESC, 10, 9));
    assert_false(order_score_better(SORT_DESC, 9, 10));
    assert_false(order_score_better(SORT_DESC, 10, 10));
    assert_true(order_score_better(SORT_DESC, SCORE_MAX, SCORE_MIN));
    assert_true(order_score_better(SORT_DESC, 0, -1));
    /* asc: lower is better. */
    assert_true(order_score_better(SORT_ASC, 9, 10));
    assert_false(order_score_better(SORT_ASC, 10, 9));
    assert_false(order_score_better(SORT_ASC, 10, 10));
    assert_true(order_score_better(SORT_ASC, SCORE_MIN, SCORE_MAX));
    assert_true(order_score_better(SORT_ASC, -1, 0));

    /* "Better" is always "smaller sort key". */
    rng_seed(11);
    for (int i = 0; i < 10000; i++) {
        int64_t a = rng_range(SCORE_MIN, SCORE_MAX), b = i % 5 == 0 ? a : rng_range(SCORE_MIN, SCORE_MAX);
        for (int so = 0; so < 2; so++) {
            board_sort_t sort = so ? SORT_ASC : SORT_DESC;
            bool better = order_score_better(sort, a, b);
            CHECK(better == (order_sort_key(sort, a) < order_sort_key(sort, b)), "sort %d a %lld b %lld", so,
                  (long long)a, (long long)b);
        }
    }
}

/* ------------------------------------------------------------------ */
/* order: positions                                                     */
/* ------------------------------------------------------------------ */

static order_pos_t mkpos(int64_t sort_key, int64_t ms, const char *id)
{
    order_pos_t p;
    memset(&p, 0x5a, sizeof p);
    assert_true(order_pos_set(&p, sort_key, ms, id, strlen(id)));
    return p;
}

static void test_order_pos_set(void **state)
{
    (void)state;
    order_pos_t p;
    char id[PLAYER_ID_MAX + 2];
    memset(id, 'q', sizeof id);

    assert_true(order_pos_set(&p, -7, 123, id, PLAYER_ID_MAX));
    assert_true(p.sort_key == -7);
    assert_true(p.achieved_ms == 123);
    assert_int_equal(p.player_len, PLAYER_ID_MAX);
    assert_memory_equal(p.player, id, PLAYER_ID_MAX);
    assert_int_equal(p.player[PLAYER_ID_MAX], '\0');

    assert_false(order_pos_set(&p, 0, 0, id, PLAYER_ID_MAX + 1));

    assert_true(order_pos_set(&p, 1, 2, "", 0));
    assert_int_equal(p.player_len, 0);
    assert_int_equal(p.player[0], '\0');

    /* Bytes are copied as they are, NUL included. */
    assert_true(order_pos_set(&p, 1, 2, "a\0b", 3));
    assert_int_equal(p.player_len, 3);
    assert_memory_equal(p.player, "a\0b", 3);
}

static void test_order_pos_cmp_ties(void **state)
{
    (void)state;
    order_pos_t a, b;

    /* Score (sort key) first, whatever the time and id. */
    a = mkpos(-100, 999, "zzz");
    b = mkpos(-99, 0, "a");
    assert_true(order_pos_cmp(&a, &b) < 0);
    assert_true(order_pos_cmp(&b, &a) > 0);
    a = mkpos(SCORE_MIN, INT64_MAX, "z");
    b = mkpos(SCORE_MAX, INT64_MIN, "a");
    assert_true(order_pos_cmp(&a, &b) < 0);

    /* desc board: the higher score ranks above. */
    a = mkpos(order_sort_key(SORT_DESC, 50), 10, "b");
    b = mkpos(order_sort_key(SORT_DESC, 40), 1, "a");
    assert_true(order_pos_cmp(&a, &b) < 0);
    /* asc board: the lower score ranks above. */
    a = mkpos(order_sort_key(SORT_ASC, 40), 10, "b");
    b = mkpos(order_sort_key(SORT_ASC, 50), 1, "a");
    assert_true(order_pos_cmp(&a, &b) < 0);

    /* Equal score: the earlier achieved_ms ranks above, whatever the id. */
    a = mkpos(5, 1000, "zzz");
    b = mkpos(5, 1001, "a");
    assert_true(order_pos_cmp(&a, &b) < 0);
    assert_true(order_pos_cmp(&b, &a) > 0);
    a = mkpos(5, -2, "b");
    b = mkpos(5, -1, "a");
    assert_true(order_pos_cmp(&a, &b) < 0);

    /* Equal score and time: player id in byte order (memcmp). */
    a = mkpos(5, 1000, "ab");
    b = mkpos(5, 1000, "abc");
    assert_true(order_pos_cmp(&a, &b) < 0); /* a prefix ranks above */
    assert_true(order_pos_cmp(&b, &a) > 0);
    a = mkpos(5, 1000, "B");
    b = mkpos(5, 1000, "a");
    assert_true(order_pos_cmp(&a, &b) < 0); /* 'B' (0x42) < 'a' (0x61) */
    assert_true(order_pos_cmp(&b, &a) > 0);
    a = mkpos(5, 1000, "Zz");
    b = mkpos(5, 1000, "a");
    assert_true(order_pos_cmp(&a, &b) < 0);
    a = mkpos(5, 1000, "-");
    b = mkpos(5, 1000, ".");
    assert_true(order_pos_cmp(&a, &b) < 0);
    a = mkpos(5, 1000, "abd");
    b = mkpos(5, 1000, "abcz");
    assert_true(order_pos_cmp(&a, &b) > 0);

    /* Same position. */
    a = mkpos(5, 1000, "abc");
    b = mkpos(5, 1000, "abc");
    assert_int_equal(order_pos_cmp(&a, &b), 0);
    assert_int_equal(order_pos_cmp(&a, &a), 0);
}

/* The contract's order, written independently of order_pos_cmp. */
static int oracle_cmp(const order_pos_t *a, const order_pos_t *b)
{
    if (a->sort_key != b->sort_key)
        return a->sort_key < b->sort_key ? -1 : 1;
    if (a->achieved_ms != b->achieved_ms)
        return a->achieved_ms < b->achieved_ms ? -1 : 1;
    for (size_t i = 0; i < a->player_len && i < b->player_len; i++) {
        unsigned char x = (unsigned char)a->player[i], y = (unsigned char)b->player[i];
        if (x != y)
            return x < y ? -1 : 1;
    }
    return a->player_len == b->player_len ? 0 : a->player_len < b->player_len ? -1 : 1;
}

/* Redis's sorted-set order: by score, then memcmp over the common length, then the shorter first. */
static int member_cmp(int64_t as, const unsigned char *a, size_t an, int64_t bs, const unsigned char *b, size_t bn)
{
    if ((double)as != (double)bs)
        return (double)as < (double)bs ? -1 : 1;
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c != 0)
        return c;
    return an == bn ? 0 : an < bn ? -1 : 1;
}

#define NPOS 700

static void random_positions(order_pos_t *pos, size_t n)
{
    static const int64_t keys[] = {SCORE_MIN, SCORE_MIN + 1, -1, 0, 1, 2, 1000, SCORE_MAX - 1, SCORE_MAX};
    static const int64_t times[] = {
        -(INT64_C(1) << 62), -86400000, -1, 0, 1, 1700000000000, 1700000000001, INT64_MAX,
    };
    static const char alpha[] = "aAbB0z-_.:@Z9";
    for (size_t i = 0; i < n; i++) {
        int64_t sk, ms;
        uint64_t r = rng_below(4);
        if (r == 0)
            sk = keys[rng_below(sizeof keys / sizeof keys[0])];
        else if (r == 1)
            sk = rng_range(-3, 3);
        else
            sk = rng_range(SCORE_MIN, SCORE_MAX);
        /* Scores pass through either sort, as the writer computes them. */
        board_sort_t sort = rng_below(2) ? SORT_ASC : SORT_DESC;
        sk = order_sort_key(sort, order_score(sort, sk));
        r = rng_below(4);
        if (r == 0)
            ms = times[rng_below(sizeof times / sizeof times[0])];
        else if (r == 1)
            ms = rng_range(-2, 2);
        else if (r == 2)
            ms = rng_range(-(INT64_C(1) << 50), INT64_C(1) << 50);
        else
            ms = rng_range(-(INT64_C(1) << 62), INT64_MAX);
        char id[PLAYER_ID_MAX];
        size_t len;
        if (i > 0 && rng_below(4) == 0) {
            /* A prefix or an extension of an earlier id, to exercise the length rule. */
            const order_pos_t *o = &pos[rng_below(i)];
            len = o->player_len;
            memcpy(id, o->player, len);
            if (rng_below(2) && len > 1)
                len = 1 + (size_t)rng_below(len - 1);
            else
                while (len < PLAYER_ID_MAX && rng_below(2))
                    id[len++] = alpha[rng_below(sizeof alpha - 1)];
        } else {
            len = rng_below(3) == 0 ? PLAYER_ID_MAX - (size_t)rng_below(2) : 1 + (size_t)rng_below(8);
            for (size_t k = 0; k < len; k++)
                id[k] = alpha[rng_below(sizeof alpha - 1)];
        }
        assert_true(order_pos_set(&pos[i], sk, ms, id, len));
    }
}

static void test_order_member_encode_order(void **state)
{
    (void)state;
    static order_pos_t pos[NPOS];
    static unsigned char enc[NPOS][ORDER_MEMBER_MAX];
    static size_t enc_len[NPOS];

    rng_seed(20261121);
    random_positions(pos, NPOS);
    /* Force the extremes in. */
    pos[0] = mkpos(SCORE_MIN, -(INT64_C(1) << 62), "a");
    pos[1] = mkpos(SCORE_MAX, INT64_MAX, "a");
    pos[2] = mkpos(SCORE_MAX, -1, "a");
    pos[3] = mkpos(SCORE_MIN, 0, "ab");
    pos[4] = mkpos(0, 0, "abc");
    pos[5] = mkpos(0, 0, "ab");
    pos[6] = mkpos(0, 0, "B");
    pos[7] = mkpos(0, 0, "a");

    for (size_t i = 0; i < NPOS; i++) {
        enc_len[i] = order_member_encode(&pos[i], enc[i]);
        CHECK(enc_len[i] == ORDER_PREFIX_LEN + pos[i].player_len, "length of encoding %zu", i);
        order_pos_t back;
        memset(&back, 0xa5, sizeof back);
        CHECK(order_member_decode(enc[i], enc_len[i], &back), "decode of encoding %zu", i);
        char digits[32];
        int64_t sk = 1;
        snprintf(digits, sizeof digits, "%.17g", (double)pos[i].sort_key); /* as Redis prints a score */
        CHECK(order_score_parse(digits, strlen(digits), &sk) && sk == pos[i].sort_key, "score %s", digits);
        CHECK(back.sort_key == pos[i].sort_key && back.achieved_ms == pos[i].achieved_ms &&
                  back.player_len == pos[i].player_len &&
                  memcmp(back.player, pos[i].player, pos[i].player_len) == 0 &&
                  back.player[back.player_len] == '\0',
              "round trip of position %zu (sk %lld ms %lld len %zu)", i, (long long)pos[i].sort_key,
              (long long)pos[i].achieved_ms, pos[i].player_len);
        CHECK(order_pos_cmp(&back, &pos[i]) == 0, "decoded position %zu compares equal", i);
    }

    size_t ties = 0, prefix_pairs = 0;
    for (size_t i = 0; i < NPOS; i++) {
        for (size_t j = 0; j < NPOS; j++) {
            int want = oracle_cmp(&pos[i], &pos[j]);
            int got = sign(order_pos_cmp(&pos[i], &pos[j]));
            int mem = sign(member_cmp(pos[i].sort_key, enc[i], enc_len[i], pos[j].sort_key, enc[j], enc_len[j]));
            CHECK(got == want, "order_pos_cmp(%zu, %zu) = %d, contract says %d", i, j, got, want);
            CHECK(mem == want, "member order (%zu, %zu) = %d, contract says %d", i, j, mem, want);
            if (i != j && pos[i].sort_key == pos[j].sort_key && pos[i].achieved_ms == pos[j].achieved_ms)
                ties++;
            if (pos[i].player_len < pos[j].player_len &&
                memcmp(pos[i].player, pos[j].player, pos[i].player_len) == 0)
                prefix_pairs++;
        }
    }
    /* The data really exercised the tie-breakers. */
    assert_true(ties > 100);
    assert_true(prefix_pairs > 100);
}

static void test_order_member_encode_layout(void **state)
{
    (void)state;
    unsigned char m[ORDER_MEMBER_MAX];
    order_pos_t p = mkpos(0, 0, "ab");
    size_t n = order_member_encode(&p, m);
    assert_int_equal(n, 18);
    /* The sort key 0 + 2^63, then 0 + 2^62, big-endian, then the id (the sort key is also the
     * score). */
    static const unsigned char want[18] = {0x80, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 'a', 'b'};
    assert_memory_equal(m, want, 18);

    p = mkpos(SCORE_MIN, -(INT64_C(1) << 62), "x");
    n = order_member_encode(&p, m);
    /* -(2^53 - 1) + 2^63 = 0x7fe0000000000001 */
    static const unsigned char low[17] = {0x7f, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 'x'};
    assert_int_equal(n, 17);
    assert_memory_equal(m, low, 17);

    char id[PLAYER_ID_MAX];
    memset(id, 'm', sizeof id);
    assert_true(order_pos_set(&p, SCORE_MAX, INT64_MAX, id, sizeof id));
    n = order_member_encode(&p, m);
    assert_int_equal(n, ORDER_MEMBER_MAX);
    assert_memory_equal(m + ORDER_PREFIX_LEN, id, sizeof id);
}

static void test_order_member_decode_rejects(void **state)
{
    (void)state;
    unsigned char m[ORDER_MEMBER_MAX + 8];
    order_pos_t p;
    char id[PLAYER_ID_MAX + 1];
    memset(id, 'k', sizeof id);
    assert_true(order_pos_set(&p, 3, 4, id, PLAYER_ID_MAX));
    size_t n = order_member_encode(&p, m);
    assert_int_equal(n, ORDER_MEMBER_MAX);
    m[ORDER_MEMBER_MAX] = 'k';

    order_pos_t out;
    assert_true(order_member_decode(m, ORDER_MEMBER_MAX, &out));       /* longest */
    assert_int_equal(out.sort_key, 3);
    assert_int_equal(out.achieved_ms, 4);
    assert_false(order_member_decode(m, ORDER_MEMBER_MAX + 1, &out));  /* too long */
    assert_true(order_member_decode(m, ORDER_PREFIX_LEN + 1, &out));   /* shortest */
    assert_int_equal(out.player_len, 1);
    assert_false(order_member_decode(m, ORDER_PREFIX_LEN, &out));      /* no player id */
    for (size_t k = 0; k < ORDER_PREFIX_LEN; k++)
        CHECK(!order_member_decode(m, k, &out), "length %zu", k);

    /* A sort key outside the score range is not one rankd wrote. */
    const int64_t keys[] = {SCORE_MIN, SCORE_MAX, SCORE_MIN - 1, SCORE_MAX + 1, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        assert_true(order_pos_set(&p, keys[i], 4, id, 1));
        n = order_member_encode(&p, m);
        CHECK(order_member_decode(m, n, &out) == (i < 2), "sort key %lld", (long long)keys[i]);
        CHECK(i >= 2 || out.sort_key == keys[i], "sort key %lld back", (long long)keys[i]);
    }
}

static void test_order_score_parse(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_true(order_score_parse("0", 1, &v) && v == 0);
    assert_true(order_score_parse("-17", 3, &v) && v == -17);
    assert_true(order_score_parse("9007199254740991", 16, &v) && v == SCORE_MAX);
    assert_true(order_score_parse("-9007199254740991", 17, &v) && v == SCORE_MIN);
    static const char *const bad[] = {"", "-", "9007199254740992", "-9007199254740992", "1.5", "1e3",
                                      "inf", "-inf", "nan", " 1", "1 ", "+1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(!order_score_parse(bad[i], strlen(bad[i]), &v), "score '%s'", bad[i]);
}

/* ------------------------------------------------------------------ */
/* score: operators                                                     */
/* ------------------------------------------------------------------ */

static const score_standing_t NONE_YET = {false, 0};

static score_standing_t have(int64_t v)
{
    score_standing_t s = {true, v};
    return s;
}

/* Apply and check result, standing and updated flag. */
static void expect_apply(board_op_t op, board_sort_t sort, score_standing_t cur, int64_t s, int64_t want_value,
                         bool want_updated)
{
    score_standing_t next = {false, -12345};
    bool updated = !want_updated;
    score_result_t r = score_apply(op, sort, cur, s, &next, &updated);
    CHECK(r == SCORE_APPLIED, "op %d sort %d cur %d/%lld s %lld: result %d", op, sort, cur.exists,
          (long long)cur.value, (long long)s, r);
    CHECK(next.exists, "op %d sort %d cur %d/%lld s %lld: standing missing", op, sort, cur.exists,
          (long long)cur.value, (long long)s);
    CHECK(next.value == want_value, "op %d sort %d cur %d/%lld s %lld: value %lld, want %lld", op, sort,
          cur.exists, (long long)cur.value, (long long)s, (long long)next.value, (long long)want_value);
    CHECK(updated == want_updated, "op %d sort %d cur %d/%lld s %lld: updated %d, want %d", op, sort,
          cur.exists, (long long)cur.value, (long long)s, updated, want_updated);
}

static void expect_overflow(board_sort_t sort, score_standing_t cur, int64_t s)
{
    score_standing_t next = {false, -12345};
    bool updated = true;
    score_result_t r = score_apply(OP_SUM, sort, cur, s, &next, &updated);
    CHECK(r == SCORE_OVERFLOW, "sum sort %d cur %lld s %lld: result %d", sort, (long long)cur.value,
          (long long)s, r);
    /* Nothing changes. */
    CHECK(!updated, "overflow reported updated");
    CHECK(next.exists == cur.exists && (!cur.exists || next.value == cur.value), "overflow changed the standing");
}

static void test_score_best(void **state)
{
    (void)state;
    for (int so = 0; so < 2; so++) {
        board_sort_t sort = so ? SORT_ASC : SORT_DESC;
        /* First submission creates the standing. */
        expect_apply(OP_BEST, sort, NONE_YET, 10, 10, true);
        expect_apply(OP_BEST, sort, NONE_YET, 0, 0, true);
        expect_apply(OP_BEST, sort, NONE_YET, SCORE_MIN, SCORE_MIN, true);
        expect_apply(OP_BEST, sort, NONE_YET, SCORE_MAX, SCORE_MAX, true);
        /* Equal: nothing changes. */
        expect_apply(OP_BEST, sort, have(10), 10, 10, false);
        expect_apply(OP_BEST, sort, have(0), 0, 0, false);
    }
    /* desc: higher replaces, lower does not. */
    expect_apply(OP_BEST, SORT_DESC, have(10), 11, 11, true);
    expect_apply(OP_BEST, SORT_DESC, have(10), 9, 10, false);
    expect_apply(OP_BEST, SORT_DESC, have(-5), 0, 0, true);
    expect_apply(OP_BEST, SORT_DESC, have(SCORE_MIN), SCORE_MAX, SCORE_MAX, true);
    expect_apply(OP_BEST, SORT_DESC, have(SCORE_MAX), SCORE_MIN, SCORE_MAX, false);
    /* asc: lower replaces, higher does not. */
    expect_apply(OP_BEST, SORT_ASC, have(10), 9, 9, true);
    expect_apply(OP_BEST, SORT_ASC, have(10), 11, 10, false);
    expect_apply(OP_BEST, SORT_ASC, have(0), -5, -5, true);
    expect_apply(OP_BEST, SORT_ASC, have(SCORE_MAX), SCORE_MIN, SCORE_MIN, true);
    expect_apply(OP_BEST, SORT_ASC, have(SCORE_MIN), SCORE_MAX, SCORE_MIN, false);
}

static void test_score_latest(void **state)
{
    (void)state;
    for (int so = 0; so < 2; so++) {
        board_sort_t sort = so ? SORT_ASC : SORT_DESC;
        expect_apply(OP_LATEST, sort, NONE_YET, 7, 7, true);
        expect_apply(OP_LATEST, sort, NONE_YET, 0, 0, true);     /* created, even at 0 */
        expect_apply(OP_LATEST, sort, have(7), 7, 7, false);     /* same value: no change */
        expect_apply(OP_LATEST, sort, have(7), 8, 8, true);      /* worse or better, it replaces */
        expect_apply(OP_LATEST, sort, have(7), 6, 6, true);
        expect_apply(OP_LATEST, sort, have(SCORE_MAX), SCORE_MIN, SCORE_MIN, true);
        expect_apply(OP_LATEST, sort, have(SCORE_MIN), SCORE_MIN, SCORE_MIN, false);
    }
}

static void test_score_sum(void **state)
{
    (void)state;
    for (int so = 0; so < 2; so++) {
        board_sort_t sort = so ? SORT_ASC : SORT_DESC;
        expect_apply(OP_SUM, sort, NONE_YET, 5, 5, true);
        expect_apply(OP_SUM, sort, NONE_YET, 0, 0, true);        /* first submission of 0 creates */
        expect_apply(OP_SUM, sort, NONE_YET, -5, -5, true);
        expect_apply(OP_SUM, sort, have(5), 0, 5, false);        /* +0 on existing: no change */
        expect_apply(OP_SUM, sort, have(5), 3, 8, true);
        expect_apply(OP_SUM, sort, have(5), -5, 0, true);
        expect_apply(OP_SUM, sort, have(-5), -5, -10, true);

        /* Range edges: reaching them is fine, leaving them is an overflow. */
        expect_apply(OP_SUM, sort, have(SCORE_MAX - 1), 1, SCORE_MAX, true);
        expect_apply(OP_SUM, sort, have(SCORE_MIN + 1), -1, SCORE_MIN, true);
        expect_apply(OP_SUM, sort, have(SCORE_MAX), SCORE_MIN, 0, true);
        expect_apply(OP_SUM, sort, have(SCORE_MAX), 0, SCORE_MAX, false);
        expect_apply(OP_SUM, sort, NONE_YET, SCORE_MAX, SCORE_MAX, true);
        expect_apply(OP_SUM, sort, NONE_YET, SCORE_MIN, SCORE_MIN, true);
        expect_overflow(sort, have(SCORE_MAX), 1);
        expect_overflow(sort, have(1), SCORE_MAX);
        expect_overflow(sort, have(SCORE_MAX), SCORE_MAX);
        expect_overflow(sort, have(SCORE_MIN), -1);
        expect_overflow(sort, have(-1), SCORE_MIN);
        expect_overflow(sort, have(SCORE_MIN), SCORE_MIN);
    }
}

/* Folding submissions one by one matches a direct computation. */
static void test_score_fold_random(void **state)
{
    (void)state;
    rng_seed(4711);
    for (int round = 0; round < 2000; round++) {
        board_op_t op = (board_op_t)rng_below(3);
        board_sort_t sort = rng_below(2) ? SORT_ASC : SORT_DESC;
        score_standing_t cur = NONE_YET;
        for (int k = 0; k < 8; k++) {
            int64_t s = rng_below(3) == 0 ? rng_range(-3, 3) : rng_range(-1000000, 1000000);
            score_standing_t next;
            bool updated;
            assert_int_equal(score_apply(op, sort, cur, s, &next, &updated), SCORE_APPLIED);
            int64_t want;
            if (op == OP_BEST)
                want = !cur.exists ? s : (sort == SORT_DESC ? (s > cur.value ? s : cur.value)
                                                            : (s < cur.value ? s : cur.value));
            else if (op == OP_LATEST)
                want = s;
            else
                want = (cur.exists ? cur.value : 0) + s;
            CHECK(next.exists && next.value == want, "op %d round %d step %d", op, round, k);
            CHECK(updated == (!cur.exists || want != cur.value), "updated flag, op %d round %d step %d", op, round,
                  k);
            cur = next;
        }
    }
}

static void test_score_in_range(void **state)
{
    (void)state;
    assert_true(score_in_range(0));
    assert_true(score_in_range(SCORE_MAX));
    assert_true(score_in_range(SCORE_MIN));
    assert_false(score_in_range(SCORE_MAX + 1));
    assert_false(score_in_range(SCORE_MIN - 1));
    assert_false(score_in_range(INT64_MAX));
    assert_false(score_in_range(INT64_MIN));
    assert_true(SCORE_MAX == (INT64_C(1) << 53) - 1);
}

/*
 * An operator value outside the enum (a corrupted board row) must not
 * change the standing or claim an update.
 */
static void test_score_unknown_operator(void **state)
{
    (void)state;
    score_standing_t next = {false, -1};
    bool updated = true;
    assert_int_equal(score_apply((board_op_t)99, SORT_DESC, have(5), 7, &next, &updated), SCORE_APPLIED);
    assert_true(next.exists && next.value == 5);
    assert_false(updated);
    updated = true;
    assert_int_equal(score_apply((board_op_t)99, SORT_ASC, NONE_YET, 7, &next, &updated), SCORE_APPLIED);
    assert_false(next.exists);
    assert_false(updated);
}

/* ------------------------------------------------------------------ */
/* window: calendar                                                     */
/* ------------------------------------------------------------------ */

static int64_t civil(int64_t y, unsigned m, unsigned d)
{
    return window_days_from_civil(y, m, d);
}

static void test_window_known_dates(void **state)
{
    (void)state;
    assert_true(civil(1970, 1, 1) == 0);
    assert_true(civil(1969, 12, 31) == -1);
    assert_true(civil(2000, 2, 29) == 11016);
    assert_true(civil(2000, 3, 1) == 11017);
    assert_true(civil(2024, 2, 29) == 19782);
    assert_true(civil(2026, 2, 1) == 20485);
    assert_true(civil(2026, 11, 16) == 20773);
    assert_true(civil(2026, 11, 21) == 20778);
    assert_true(civil(2100, 2, 28) == 47540);
    assert_true(civil(2100, 3, 1) == 47541); /* 2100 is not a leap year */
    assert_true(civil(1600, 3, 1) == -135080);

    int64_t y;
    unsigned m, d;
    window_civil_from_days(19782, &y, &m, &d);
    assert_true(y == 2024 && m == 2 && d == 29);
    window_civil_from_days(47541, &y, &m, &d);
    assert_true(y == 2100 && m == 3 && d == 1);
    window_civil_from_days(47540, &y, &m, &d);
    assert_true(y == 2100 && m == 2 && d == 28);
    window_civil_from_days(11016, &y, &m, &d);
    assert_true(y == 2000 && m == 2 && d == 29);
    window_civil_from_days(-1, &y, &m, &d);
    assert_true(y == 1969 && m == 12 && d == 31);
    window_civil_from_days(0, &y, &m, &d);
    assert_true(y == 1970 && m == 1 && d == 1);
}

/* Every day from 1600 to 2500 (and a few far ones), against gmtime_r. */
static void test_window_civil_round_trip(void **state)
{
    (void)state;
    int64_t lo = civil(1600, 1, 1), hi = civil(2500, 12, 31);
    int64_t py = 0;
    unsigned pm = 0, pd = 0;
    for (int64_t z = lo; z <= hi; z++) {
        int64_t y;
        unsigned m, d;
        window_civil_from_days(z, &y, &m, &d);
        CHECK(civil(y, m, d) == z, "round trip of day %lld", (long long)z);
        time_t t = (time_t)(z * 86400);
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        CHECK(y == tm.tm_year + 1900LL && m == (unsigned)tm.tm_mon + 1 && d == (unsigned)tm.tm_mday,
              "day %lld: %lld-%u-%u, gmtime says %d-%d-%d", (long long)z, (long long)y, m, d, tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday);
        if (z > lo) {
            bool next_day = y == py && m == pm && d == pd + 1;
            bool next_month = y == py && m == pm + 1 && d == 1;
            bool next_year = y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31;
            CHECK(next_day || next_month || next_year, "day %lld does not follow the one before", (long long)z);
        }
        py = y;
        pm = m;
        pd = d;
    }
    /* Far away, including before year 0. */
    const int64_t far[] = {-1000000, -719468, -719469, -719528, 1000000, 2932896};
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
        int64_t y;
        unsigned m, d;
        window_civil_from_days(far[i], &y, &m, &d);
        CHECK(civil(y, m, d) == far[i], "round trip of day %lld", (long long)far[i]);
        CHECK(m >= 1 && m <= 12 && d >= 1 && d <= 31, "valid date for day %lld", (long long)far[i]);
    }
}

static int64_t ms_of(int64_t y, unsigned mo, unsigned d, unsigned h, unsigned mi, unsigned s, unsigned milli)
{
    return civil(y, mo, d) * MS_PER_DAY + h * 3600000LL + mi * 60000LL + s * 1000LL + milli;
}

static int wday_of(int64_t day) /* 0 = Sunday, as struct tm */
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    return tm.tm_wday;
}

static void test_window_start_day(void **state)
{
    (void)state;
    int64_t sat = ms_of(2026, 11, 21, 20, 0, 0, 123);
    assert_true(window_start_day(WINDOW_RULE(RESET_NONE), sat) == 0);
    assert_true(window_start_day(WINDOW_RULE(RESET_DAILY), sat) == civil(2026, 11, 21));
    assert_true(window_start_day(WINDOW_RULE(RESET_WEEKLY), sat) == civil(2026, 11, 16)); /* Saturday -> Monday */
    assert_true(window_start_day(WINDOW_RULE(RESET_MONTHLY), sat) == civil(2026, 11, 1));

    /* Monday 00:00:00.000 starts its own week; Sunday 23:59:59.999 belongs to the one before. */
    assert_true(window_start_day(WINDOW_RULE(RESET_WEEKLY), ms_of(2026, 11, 16, 0, 0, 0, 0)) == civil(2026, 11, 16));
    assert_true(window_start_day(WINDOW_RULE(RESET_WEEKLY), ms_of(2026, 11, 15, 23, 59, 59, 999)) == civil(2026, 11, 9));
    assert_true(window_start_day(WINDOW_RULE(RESET_WEEKLY), ms_of(2026, 11, 22, 23, 59, 59, 999)) == civil(2026, 11, 16));
    /* Weeks across a year end: 2027-01-01 is a Friday. */
    assert_true(window_start_day(WINDOW_RULE(RESET_WEEKLY), ms_of(2027, 1, 1, 12, 0, 0, 0)) == civil(2026, 12, 28));
    /* Epoch: 1970-01-01 was a Thursday; its week started Monday 1969-12-29. */
    assert_true(window_start_day(WINDOW_RULE(RESET_WEEKLY), 0) == civil(1969, 12, 29));
    assert_true(window_start_day(WINDOW_RULE(RESET_WEEKLY), -1) == civil(1969, 12, 29));

    /* Day boundaries, also before the epoch. */
    assert_true(window_start_day(WINDOW_RULE(RESET_DAILY), 0) == 0);
    assert_true(window_start_day(WINDOW_RULE(RESET_DAILY), -1) == -1);
    assert_true(window_start_day(WINDOW_RULE(RESET_DAILY), MS_PER_DAY - 1) == 0);
    assert_true(window_start_day(WINDOW_RULE(RESET_DAILY), MS_PER_DAY) == 1);
    assert_true(window_start_day(WINDOW_RULE(RESET_DAILY), -MS_PER_DAY) == -1);
    assert_true(window_start_day(WINDOW_RULE(RESET_DAILY), -MS_PER_DAY - 1) == -2);

    /* Month boundaries, leap Februaries. */
    assert_true(window_start_day(WINDOW_RULE(RESET_MONTHLY), ms_of(2024, 2, 29, 23, 59, 59, 999)) == civil(2024, 2, 1));
    assert_true(window_start_day(WINDOW_RULE(RESET_MONTHLY), ms_of(2024, 3, 1, 0, 0, 0, 0)) == civil(2024, 3, 1));
    assert_true(window_start_day(WINDOW_RULE(RESET_MONTHLY), ms_of(2026, 12, 31, 23, 59, 59, 999)) == civil(2026, 12, 1));
    assert_true(window_start_day(WINDOW_RULE(RESET_MONTHLY), -1) == civil(1969, 12, 1));
    assert_true(window_start_day(WINDOW_RULE(RESET_NONE), -1) == 0);
    assert_true(window_start_day(WINDOW_RULE(RESET_NONE), INT64_C(1) << 50) == 0);

    /* Random instants from 1900 to 2300, against gmtime. */
    rng_seed(777);
    for (int i = 0; i < 20000; i++) {
        int64_t ms = rng_range(ms_of(1900, 1, 1, 0, 0, 0, 0), ms_of(2300, 1, 1, 0, 0, 0, 0));
        int64_t day = ms >= 0 ? ms / MS_PER_DAY : -((-ms + MS_PER_DAY - 1) / MS_PER_DAY);
        int64_t w = window_start_day(WINDOW_RULE(RESET_WEEKLY), ms);
        CHECK(wday_of(w) == 1 && w <= day && day < w + 7, "weekly start of %lld", (long long)ms);
        CHECK(window_start_day(WINDOW_RULE(RESET_DAILY), ms) == day, "daily start of %lld", (long long)ms);
        int64_t mth = window_start_day(WINDOW_RULE(RESET_MONTHLY), ms);
        int64_t y, y2;
        unsigned m, d, m2, d2;
        window_civil_from_days(mth, &y, &m, &d);
        window_civil_from_days(day, &y2, &m2, &d2);
        CHECK(d == 1 && y == y2 && m == m2, "monthly start of %lld", (long long)ms);
        CHECK(window_start_day(WINDOW_RULE(RESET_NONE), ms) == 0, "none start of %lld", (long long)ms);
    }
}

static void test_window_next_prev(void **state)
{
    (void)state;
    /* Daily across a year end. */
    assert_true(window_next_day(WINDOW_RULE(RESET_DAILY), civil(2026, 12, 31)) == civil(2027, 1, 1));
    assert_true(window_prev_day(WINDOW_RULE(RESET_DAILY), civil(2027, 1, 1)) == civil(2026, 12, 31));
    assert_true(window_next_day(WINDOW_RULE(RESET_DAILY), civil(2024, 2, 28)) == civil(2024, 2, 29));
    assert_true(window_prev_day(WINDOW_RULE(RESET_DAILY), 0) == -1);
    /* Weekly across a year end. */
    assert_true(window_next_day(WINDOW_RULE(RESET_WEEKLY), civil(2026, 12, 28)) == civil(2027, 1, 4));
    assert_true(window_prev_day(WINDOW_RULE(RESET_WEEKLY), civil(2027, 1, 4)) == civil(2026, 12, 28));
    /* Monthly across a year end and over short months. */
    assert_true(window_next_day(WINDOW_RULE(RESET_MONTHLY), civil(2026, 12, 1)) == civil(2027, 1, 1));
    assert_true(window_prev_day(WINDOW_RULE(RESET_MONTHLY), civil(2027, 1, 1)) == civil(2026, 12, 1));
    assert_true(window_next_day(WINDOW_RULE(RESET_MONTHLY), civil(2026, 1, 1)) == civil(2026, 2, 1));
    assert_true(window_next_day(WINDOW_RULE(RESET_MONTHLY), civil(2024, 2, 1)) == civil(2024, 3, 1));
    assert_true(window_prev_day(WINDOW_RULE(RESET_MONTHLY), civil(2024, 3, 1)) == civil(2024, 2, 1));
    assert_true(window_prev_day(WINDOW_RULE(RESET_MONTHLY), civil(2100, 3, 1)) == civil(2100, 2, 1));
    assert_true(window_next_day(WINDOW_RULE(RESET_MONTHLY), civil(1969, 12, 1)) == 0);
    assert_true(window_prev_day(WINDOW_RULE(RESET_MONTHLY), 0) == civil(1969, 12, 1));
    /* none: the single window has no next one. */
    assert_true(window_next_day(WINDOW_RULE(RESET_NONE), 0) == -1);
    assert_true(window_prev_day(WINDOW_RULE(RESET_NONE), 0) == 0);

    /* next and prev are inverse over every window start from 1999 to 2101. */
    const board_reset_t resets[] = {RESET_DAILY, RESET_WEEKLY, RESET_MONTHLY};
    for (size_t r = 0; r < 3; r++) {
        int64_t s = window_start_day(WINDOW_RULE(resets[r]), ms_of(1999, 1, 1, 0, 0, 0, 0));
        int64_t end = civil(2101, 1, 1);
        int steps = 0;
        while (s < end) {
            int64_t n = window_next_day(WINDOW_RULE(resets[r]), s);
            CHECK(n > s && window_is_start(WINDOW_RULE(resets[r]), n), "next of %lld (reset %d)", (long long)s, resets[r]);
            CHECK(window_prev_day(WINDOW_RULE(resets[r]), n) == s, "prev(next(%lld)) (reset %d)", (long long)s, resets[r]);
            /* Nothing in between starts a window. */
            for (int64_t k = s + 1; k < n; k++)
                CHECK(!window_is_start(WINDOW_RULE(resets[r]), k), "day %lld inside window %lld", (long long)k, (long long)s);
            s = n;
            steps++;
        }
        assert_true(steps > 1000 || resets[r] == RESET_MONTHLY);
    }
}

/* A reset value outside the enum behaves like `none` and does not crash. */
static void test_window_unknown_reset(void **state)
{
    (void)state;
    board_reset_t bogus = (board_reset_t)99;
    assert_true(window_start_day(WINDOW_RULE(bogus), ms_of(2026, 11, 21, 20, 0, 0, 0)) == 0);
    assert_true(window_next_day(WINDOW_RULE(bogus), 0) == -1);
    assert_true(window_prev_day(WINDOW_RULE(bogus), 0) == 0);
    assert_true(window_is_start(WINDOW_RULE(bogus), 0));
    assert_false(window_is_start(WINDOW_RULE(bogus), 1));
}

static void test_window_is_start(void **state)
{
    (void)state;
    assert_true(window_is_start(WINDOW_RULE(RESET_WEEKLY), civil(2026, 11, 16)));  /* Monday */
    assert_false(window_is_start(WINDOW_RULE(RESET_WEEKLY), civil(2026, 11, 17))); /* Tuesday */
    assert_false(window_is_start(WINDOW_RULE(RESET_WEEKLY), civil(2026, 11, 21))); /* Saturday */
    assert_false(window_is_start(WINDOW_RULE(RESET_WEEKLY), civil(2026, 11, 22))); /* Sunday */
    assert_true(window_is_start(WINDOW_RULE(RESET_WEEKLY), civil(1969, 12, 29)));
    assert_true(window_is_start(WINDOW_RULE(RESET_MONTHLY), civil(2026, 11, 1)));
    assert_false(window_is_start(WINDOW_RULE(RESET_MONTHLY), civil(2026, 11, 2)));
    assert_false(window_is_start(WINDOW_RULE(RESET_MONTHLY), civil(2024, 2, 29)));
    assert_true(window_is_start(WINDOW_RULE(RESET_MONTHLY), civil(1969, 12, 1)));
    assert_true(window_is_start(WINDOW_RULE(RESET_DAILY), civil(2026, 11, 21)));
    assert_true(window_is_start(WINDOW_RULE(RESET_DAILY), -5));
    assert_true(window_is_start(WINDOW_RULE(RESET_NONE), 0));
    assert_false(window_is_start(WINDOW_RULE(RESET_NONE), 1));
    assert_false(window_is_start(WINDOW_RULE(RESET_NONE), civil(2026, 11, 16)));
    assert_false(window_is_start(WINDOW_RULE(RESET_NONE), -1));
    for (int64_t day = civil(2026, 1, 1); day < civil(2027, 1, 1); day++) {
        CHECK(window_is_start(WINDOW_RULE(RESET_WEEKLY), day) == (wday_of(day) == 1), "weekly %lld", (long long)day);
        int64_t y;
        unsigned m, d;
        window_civil_from_days(day, &y, &m, &d);
        CHECK(window_is_start(WINDOW_RULE(RESET_MONTHLY), day) == (d == 1), "monthly %lld", (long long)day);
        CHECK(window_is_start(WINDOW_RULE(RESET_DAILY), day), "daily %lld", (long long)day);
    }
}

static void test_window_is_hot(void **state)
{
    (void)state;
    int64_t now = civil(2026, 11, 23) * MS_PER_DAY + 3600000; /* a Monday, 01:00 UTC */
    assert_true(window_is_hot(WINDOW_RULE(RESET_DAILY), civil(2026, 11, 23), now));
    assert_true(window_is_hot(WINDOW_RULE(RESET_DAILY), civil(2026, 11, 22), now));
    assert_false(window_is_hot(WINDOW_RULE(RESET_DAILY), civil(2026, 11, 21), now));
    assert_true(window_is_hot(WINDOW_RULE(RESET_WEEKLY), civil(2026, 11, 23), now));
    assert_true(window_is_hot(WINDOW_RULE(RESET_WEEKLY), civil(2026, 11, 16), now));
    assert_false(window_is_hot(WINDOW_RULE(RESET_WEEKLY), civil(2026, 11, 9), now));
    assert_true(window_is_hot(WINDOW_RULE(RESET_MONTHLY), civil(2026, 11, 1), now));
    assert_true(window_is_hot(WINDOW_RULE(RESET_MONTHLY), civil(2026, 10, 1), now));
    assert_false(window_is_hot(WINDOW_RULE(RESET_MONTHLY), civil(2026, 9, 1), now));
    assert_true(window_is_hot(WINDOW_RULE(RESET_NONE), 0, now));
    /* A year boundary. */
    int64_t jan1 = civil(2027, 1, 1) * MS_PER_DAY;
    assert_true(window_is_hot(WINDOW_RULE(RESET_MONTHLY), civil(2026, 12, 1), jan1));
    assert_false(window_is_hot(WINDOW_RULE(RESET_MONTHLY), civil(2026, 11, 1), jan1));
    assert_true(window_is_hot(WINDOW_RULE(RESET_DAILY), civil(2026, 12, 31), jan1));
}

static void test_window_format_day(void **state)
{
    (void)state;
    char out[11];
    window_format_day(0, out);
    assert_string_equal(out, "1970-01-01");
    window_format_day(-1, out);
    assert_string_equal(out, "1969-12-31");
    window_format_day(civil(2026, 11, 21), out);
    assert_string_equal(out, "2026-11-21");
    window_format_day(civil(2024, 2, 29), out);
    assert_string_equal(out, "2024-02-29");
    window_format_day(civil(9999, 12, 31), out);
    assert_string_equal(out, "9999-12-31");
    window_format_day(civil(1, 1, 1), out);
    assert_string_equal(out, "0001-01-01");
}

static void test_buf_i64(void **state)
{
    (void)state;
    static const struct {
        int64_t v;
        const char *text;
    } cases[] = {{0, "0"}, {7, "7"}, {-7, "-7"}, {1000, "1000"}, {-9007199254740991, "-9007199254740991"},
                 {INT64_MAX, "9223372036854775807"}, {INT64_MIN, "-9223372036854775808"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf_t b;
        buf_init(&b);
        buf_puts(&b, "x");
        buf_i64(&b, cases[i].v);
        CHECK(strcmp(b.data + 1, cases[i].text) == 0 && b.len == strlen(cases[i].text) + 1, "buf_i64 %s", cases[i].text);
        buf_free(&b);
    }
    char out[24];
    size_t n = u64_digits(out, UINT64_MAX);
    out[n] = '\0';
    assert_string_equal(out, "18446744073709551615");
    n = u64_digits(out, 16383);
    out[n] = '\0';
    assert_string_equal(out, "16383");
    /* Each side of every power of ten: the width and the pairs, against printf. */
    uint64_t p = 1;
    for (int k = 0; k < 20; k++, p *= 10) { /* 10^0 .. 10^19; the last step wraps, unused */
        uint64_t around[] = {p - 1, p, p + 1, p <= UINT64_MAX / 2 ? 2 * p - 1 : UINT64_MAX};
        for (size_t i = 0; i < sizeof around / sizeof *around; i++) {
            char want[24];
            snprintf(want, sizeof want, "%" PRIu64, around[i]);
            n = u64_digits(out, around[i]);
            out[n] = '\0';
            assert_string_equal(out, want);
        }
    }
}

static void test_window_parse_day(void **state)
{
    (void)state;
    int64_t day = 999;
    assert_true(window_parse_day("2026-02-01", &day));
    assert_true(day == 20485);
    assert_true(window_parse_day("1970-01-01", &day));
    assert_true(day == 0);
    assert_true(window_parse_day("1969-12-31", &day));
    assert_true(day == -1);
    assert_true(window_parse_day("2024-02-29", &day));
    assert_true(day == 19782);
    assert_true(window_parse_day("2000-02-29", &day));
    assert_true(day == 11016);
    assert_true(window_parse_day("2100-02-28", &day));
    assert_true(day == 47540);
    assert_true(window_parse_day("2100-03-01", &day));
    assert_true(day == 47541);
    assert_true(window_parse_day("2026-12-31", &day));
    assert_true(window_parse_day("2026-01-31", &day));
    assert_true(window_parse_day("2026-04-30", &day));

    day = 4242;
    const char *bad[] = {
        "2026-02-30", "2026-02-29", "2023-02-29", "2100-02-29", "1900-02-29", "2026-04-31", "2026-06-31",
        "2026-09-31", "2026-11-31", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32", "2026-12-99",
        "2026-2-01",  "2026-02-1",  "2026-02-01x", "20260201",  "2026/02/01", "2026-02/01", "2026_02-01",
        "",           "current",    "previous",   "a026-02-01", "2026-0a-01", "2026-02-0a", " 026-02-01",
        "+026-02-01", "-026-02-01", "2026-02- 1", "2026-02-01 ", " 2026-02-01", "2026-02-01T00:00:00Z",
        "2026--02-01", "226-02-01", "02026-02-01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!window_parse_day(bad[i], &day), "\"%s\" accepted", bad[i]);
    assert_true(day == 4242);

    /* Format and parse are inverse for every day from 1970 to 2200. */
    for (int64_t z = 0; z <= civil(2200, 12, 31); z++) {
        char s[11];
        int64_t back;
        window_format_day(z, s);
        CHECK(window_parse_day(s, &back) && back == z, "day %lld as \"%s\"", (long long)z, s);
    }
}

/* Oracle for window_format_ms through gmtime_r. */
static void format_ms_oracle(int64_t ms, char out[96])
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int milli = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
}

static void test_window_format_ms(void **state)
{
    (void)state;
    char out[25];
    window_format_ms(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    window_format_ms(ms_of(2026, 11, 21, 20, 0, 0, 123), out);
    assert_string_equal(out, "2026-11-21T20:00:00.123Z");
    assert_int_equal(strlen(out), 24);
    window_format_ms(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    window_format_ms(1, out);
    assert_string_equal(out, "1970-01-01T00:00:00.001Z");
    window_format_ms(ms_of(2024, 2, 29, 23, 59, 59, 999), out);
    assert_string_equal(out, "2024-02-29T23:59:59.999Z");
    window_format_ms(ms_of(2000, 1, 1, 9, 5, 7, 40), out);
    assert_string_equal(out, "2000-01-01T09:05:07.040Z");
    window_format_ms(ms_of(9999, 12, 31, 23, 59, 59, 999), out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");

    rng_seed(99);
    for (int i = 0; i < 20000; i++) {
        int64_t ms = rng_range(ms_of(1900, 1, 1, 0, 0, 0, 0), ms_of(2400, 1, 1, 0, 0, 0, 0));
        char want[96];
        format_ms_oracle(ms, want);
        window_format_ms(ms, out);
        CHECK(strcmp(out, want) == 0, "ms %lld: \"%s\", want \"%s\"", (long long)ms, out, want);
    }
    /* Times among three neighbouring days, as a page's entries are: the days kept (two) are
     * hit, replaced and hit again in every order. */
    int64_t first = ms_of(2026, 11, 24, 0, 0, 0, 0);
    for (int i = 0; i < 20000; i++) {
        int64_t ms = first + rng_range(0, 3 * MS_PER_DAY - 1);
        char want[96];
        format_ms_oracle(ms, want);
        window_format_ms(ms, out);
        CHECK(strcmp(out, want) == 0, "ms %lld: \"%s\", want \"%s\"", (long long)ms, out, want);
    }
}

/* ------------------------------------------------------------------ */
/* window: resolving the window= parameter                              */
/* ------------------------------------------------------------------ */

static void expect_resolve(board_reset_t reset, int64_t created, int64_t now, const char *param,
                           window_status_t want, int64_t want_day)
{
    int64_t day = -424242;
    window_status_t st = window_resolve(WINDOW_RULE(reset), created, 0, now, param, &day);
    CHECK(st == want, "reset %d param %s: status %d, want %d", reset, param ? param : "(null)", st, want);
    if (want == WINDOW_OK)
        CHECK(day == want_day, "reset %d param %s: day %lld, want %lld", reset, param ? param : "(null)",
              (long long)day, (long long)want_day);
}

static void test_window_resolve_daily(void **state)
{
    (void)state;
    int64_t created = ms_of(2026, 11, 1, 10, 0, 0, 0);
    int64_t now = ms_of(2026, 11, 21, 20, 0, 0, 123);
    expect_resolve(RESET_DAILY, created, now, NULL, WINDOW_OK, civil(2026, 11, 21));
    expect_resolve(RESET_DAILY, created, now, "current", WINDOW_OK, civil(2026, 11, 21));
    expect_resolve(RESET_DAILY, created, now, "previous", WINDOW_OK, civil(2026, 11, 20));
    expect_resolve(RESET_DAILY, created, now, "2026-11-21", WINDOW_OK, civil(2026, 11, 21));
    expect_resolve(RESET_DAILY, created, now, "2026-11-01", WINDOW_OK, civil(2026, 11, 1)); /* creation day */
    expect_resolve(RESET_DAILY, created, now, "2026-11-10", WINDOW_OK, civil(2026, 11, 10));
    expect_resolve(RESET_DAILY, created, now, "2026-10-31", WINDOW_ABSENT, 0); /* before creation */
    expect_resolve(RESET_DAILY, created, now, "1970-01-01", WINDOW_ABSENT, 0);
    expect_resolve(RESET_DAILY, created, now, "2026-11-22", WINDOW_ABSENT, 0); /* future */
    expect_resolve(RESET_DAILY, created, now, "2099-01-01", WINDOW_ABSENT, 0);
    expect_resolve(RESET_DAILY, created, now, "garbage", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_DAILY, created, now, "", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_DAILY, created, now, "Current", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_DAILY, created, now, "PREVIOUS", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_DAILY, created, now, "current ", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_DAILY, created, now, "2026-11-1", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_DAILY, created, now, "2026-02-30", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_DAILY, created, now, "20261121", WINDOW_MALFORMED, 0);
    /* A board created today has no previous window. */
    expect_resolve(RESET_DAILY, ms_of(2026, 11, 21, 0, 0, 0, 0), now, "previous", WINDOW_ABSENT, 0);
    expect_resolve(RESET_DAILY, ms_of(2026, 11, 21, 0, 0, 0, 0), now, "current", WINDOW_OK, civil(2026, 11, 21));
    /* Created yesterday, just before midnight: previous exists. */
    expect_resolve(RESET_DAILY, ms_of(2026, 11, 20, 23, 59, 59, 999), now, "previous", WINDOW_OK,
                   civil(2026, 11, 20));
}

static void test_window_resolve_weekly(void **state)
{
    (void)state;
    int64_t created = ms_of(2026, 11, 4, 12, 0, 0, 0); /* a Wednesday; its week starts 2026-11-02 */
    int64_t now = ms_of(2026, 11, 21, 20, 0, 0, 123);  /* a Saturday; its week starts 2026-11-16 */
    expect_resolve(RESET_WEEKLY, created, now, NULL, WINDOW_OK, civil(2026, 11, 16));
    expect_resolve(RESET_WEEKLY, created, now, "current", WINDOW_OK, civil(2026, 11, 16));
    expect_resolve(RESET_WEEKLY, created, now, "previous", WINDOW_OK, civil(2026, 11, 9));
    expect_resolve(RESET_WEEKLY, created, now, "2026-11-16", WINDOW_OK, civil(2026, 11, 16));
    expect_resolve(RESET_WEEKLY, created, now, "2026-11-09", WINDOW_OK, civil(2026, 11, 9));
    expect_resolve(RESET_WEEKLY, created, now, "2026-11-02", WINDOW_OK, civil(2026, 11, 2)); /* creation week */
    expect_resolve(RESET_WEEKLY, created, now, "2026-10-26", WINDOW_ABSENT, 0); /* before creation */
    expect_resolve(RESET_WEEKLY, created, now, "2026-11-23", WINDOW_ABSENT, 0); /* future Monday */
    expect_resolve(RESET_WEEKLY, created, now, "2026-11-21", WINDOW_MALFORMED, 0); /* not a Monday */
    expect_resolve(RESET_WEEKLY, created, now, "2026-11-04", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_WEEKLY, created, now, "2026-11-22", WINDOW_MALFORMED, 0); /* Sunday */
    expect_resolve(RESET_WEEKLY, created, now, "2020-01-01", WINDOW_MALFORMED, 0); /* not a Monday, long ago */
    expect_resolve(RESET_WEEKLY, created, now, "garbage", WINDOW_MALFORMED, 0);
    /* Created this week: no previous window. */
    expect_resolve(RESET_WEEKLY, ms_of(2026, 11, 16, 0, 0, 0, 0), now, "previous", WINDOW_ABSENT, 0);
}

static void test_window_resolve_monthly(void **state)
{
    (void)state;
    int64_t created = ms_of(2026, 1, 15, 0, 0, 0, 0);
    int64_t now = ms_of(2026, 11, 21, 20, 0, 0, 123);
    expect_resolve(RESET_MONTHLY, created, now, NULL, WINDOW_OK, civil(2026, 11, 1));
    expect_resolve(RESET_MONTHLY, created, now, "previous", WINDOW_OK, civil(2026, 10, 1));
    expect_resolve(RESET_MONTHLY, created, now, "2026-01-01", WINDOW_OK, civil(2026, 1, 1));
    expect_resolve(RESET_MONTHLY, created, now, "2026-11-01", WINDOW_OK, civil(2026, 11, 1));
    expect_resolve(RESET_MONTHLY, created, now, "2025-12-01", WINDOW_ABSENT, 0);
    expect_resolve(RESET_MONTHLY, created, now, "2026-12-01", WINDOW_ABSENT, 0);
    expect_resolve(RESET_MONTHLY, created, now, "2026-11-02", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_MONTHLY, created, now, "2026-01-15", WINDOW_MALFORMED, 0);
    /* previous across a year end */
    expect_resolve(RESET_MONTHLY, created, ms_of(2027, 1, 5, 0, 0, 0, 0), "previous", WINDOW_OK,
                   civil(2026, 12, 1));
    expect_resolve(RESET_MONTHLY, ms_of(2027, 1, 1, 0, 0, 0, 0), ms_of(2027, 1, 5, 0, 0, 0, 0), "previous",
                   WINDOW_ABSENT, 0);
}

/* Retention: a board that keeps k closed windows has the current one and the k before it. */
static void test_window_retention(void **state)
{
    (void)state;
    int64_t created = ms_of(2026, 1, 15, 0, 0, 0, 0);
    int64_t now = ms_of(2026, 11, 21, 20, 0, 0, 123);
    int64_t day = 0;
    CHECK(window_first_kept(WINDOW_RULE(RESET_DAILY), created, 0, now) == civil(2026, 1, 15), "0 keeps all");
    CHECK(window_first_kept(WINDOW_RULE(RESET_DAILY), created, 2, now) == civil(2026, 11, 19), "daily, 2 kept");
    CHECK(window_first_kept(WINDOW_RULE(RESET_WEEKLY), created, 1, now) == civil(2026, 11, 9), "weekly, 1 kept");
    CHECK(window_first_kept(WINDOW_RULE(RESET_MONTHLY), created, 3, now) == civil(2026, 8, 1), "monthly, 3 kept");
    CHECK(window_first_kept(WINDOW_RULE(RESET_MONTHLY), created, 100, now) == civil(2026, 1, 1), "never before creation");
    CHECK(window_first_kept(WINDOW_RULE(RESET_NONE), created, 1, now) == 0, "none has one window");
    CHECK(window_resolve(WINDOW_RULE(RESET_DAILY), created, 2, now, "2026-11-19", &day) == WINDOW_OK && day == civil(2026, 11, 19),
          "the oldest kept");
    CHECK(window_resolve(WINDOW_RULE(RESET_DAILY), created, 2, now, "2026-11-18", &day) == WINDOW_ABSENT, "past retention: 404");
    CHECK(window_resolve(WINDOW_RULE(RESET_DAILY), created, 1, now, "previous", &day) == WINDOW_OK, "previous with 1 kept");
    CHECK(window_resolve(WINDOW_RULE(RESET_MONTHLY), created, 3, now, "2026-07-01", &day) == WINDOW_ABSENT, "monthly past");
    CHECK(window_resolve(WINDOW_RULE(RESET_MONTHLY), created, 3, now, "2026-07-02", &day) == WINDOW_MALFORMED,
          "malformed stays 400");
}

static void test_window_hot_days(void **state)
{
    (void)state;
    int64_t now = ms_of(2026, 11, 21, 20, 0, 0, 123), d[2];
    CHECK(window_hot_days(WINDOW_RULE(RESET_DAILY), ms_of(2026, 1, 1, 0, 0, 0, 0), now, d) == 2 && d[0] == civil(2026, 11, 21) &&
              d[1] == civil(2026, 11, 20), "daily: today and yesterday");
    CHECK(window_hot_days(WINDOW_RULE(RESET_DAILY), ms_of(2026, 11, 21, 0, 0, 0, 0), now, d) == 1, "made today: no previous");
    CHECK(window_hot_days(WINDOW_RULE(RESET_WEEKLY), ms_of(2026, 1, 1, 0, 0, 0, 0), now, d) == 2 && d[1] == civil(2026, 11, 9),
          "weekly");
    CHECK(window_hot_days(WINDOW_RULE(RESET_NONE), ms_of(2026, 1, 1, 0, 0, 0, 0), now, d) == 1 && d[0] == 0, "none: one window");
}

/* ---------------------------------------------------------------- tournaments */

static void test_tournament_one_off_slot(void **state)
{
    (void)state;
    tournament_t t = {.on = true, .once = true, .start_ms = ms_of(2026, 12, 1, 18, 0, 0, 0),
                      .end_ms = ms_of(2026, 12, 3, 6, 0, 0, 0)};
    window_rule_t rule = tournament_window_rule(&t, RESET_NONE);
    assert_int_equal(rule.none_day, civil(2026, 12, 1));
    /* every instant is in the one window, named by the start's date */
    assert_int_equal(window_start_day(rule, ms_of(2020, 1, 1, 0, 0, 0, 0)), civil(2026, 12, 1));
    assert_int_equal(window_start_day(rule, ms_of(2030, 1, 1, 0, 0, 0, 0)), civil(2026, 12, 1));
    assert_true(window_is_start(rule, civil(2026, 12, 1)));
    assert_false(window_is_start(rule, 0));
    assert_int_equal(window_next_day(rule, civil(2026, 12, 1)), -1);
    slot_state_t st;
    tournament_slot_t s = tournament_slot_at(&t, RESET_NONE, t.start_ms - 1, &st);
    assert_int_equal(st, SLOT_UPCOMING);
    assert_true(s.day == civil(2026, 12, 1) && s.opens_ms == t.start_ms && s.closes_ms == t.end_ms);
    tournament_slot_at(&t, RESET_NONE, t.start_ms, &st);
    assert_int_equal(st, SLOT_ACTIVE);
    tournament_slot_at(&t, RESET_NONE, t.end_ms - 1, &st);
    assert_int_equal(st, SLOT_ACTIVE);
    tournament_slot_at(&t, RESET_NONE, t.end_ms, &st);
    assert_int_equal(st, SLOT_ENDED);
    int64_t day = civil(2026, 12, 1);
    assert_false(tournament_accepts(&t, RESET_NONE, day, t.start_ms - 1));
    assert_true(tournament_accepts(&t, RESET_NONE, day, t.start_ms));
    assert_true(tournament_accepts(&t, RESET_NONE, day, t.end_ms - 1));
    assert_false(tournament_accepts(&t, RESET_NONE, day, t.end_ms));
    /* a slot before 1970 names its window by its (negative) day too */
    t.start_ms = -1;
    assert_int_equal(tournament_window_rule(&t, RESET_NONE).none_day, -1);
    /* not a tournament: every submission is in, and the rule is the plain one */
    tournament_t off = {0};
    assert_true(tournament_accepts(&off, RESET_DAILY, 5, 0));
    assert_int_equal(tournament_window_rule(&off, RESET_NONE).none_day, 0);
}

static void test_tournament_recurring_slot(void **state)
{
    (void)state;
    tournament_t t = {.on = true, .duration_s = 3600};
    int64_t d = civil(2027, 3, 10);
    slot_state_t st;
    tournament_slot_t s = tournament_slot_at(&t, RESET_DAILY, ms_of(2027, 3, 10, 0, 30, 0, 0), &st);
    assert_int_equal(st, SLOT_ACTIVE);
    assert_true(s.day == d && s.opens_ms == d * MS_PER_DAY && s.closes_ms == d * MS_PER_DAY + 3600000);
    s = tournament_slot_at(&t, RESET_DAILY, ms_of(2027, 3, 10, 1, 0, 0, 0), &st);
    assert_int_equal(st, SLOT_UPCOMING); /* closed at 01:00: the next opens tomorrow */
    assert_true(s.day == d + 1 && s.opens_ms == (d + 1) * MS_PER_DAY);
    assert_true(tournament_accepts(&t, RESET_DAILY, d, d * MS_PER_DAY + 3599999));
    assert_false(tournament_accepts(&t, RESET_DAILY, d, d * MS_PER_DAY + 3600000));
    /* a month shorter than the slot closes it at the month's end */
    t.duration_s = 31 * 86400;
    s = tournament_slot_of_day(&t, RESET_MONTHLY, civil(2027, 2, 1));
    assert_true(s.closes_ms == civil(2027, 3, 1) * MS_PER_DAY);
    s = tournament_slot_of_day(&t, RESET_MONTHLY, civil(2027, 1, 1));
    assert_true(s.closes_ms == civil(2027, 2, 1) * MS_PER_DAY);
    /* weekly: a whole week never closes between windows */
    t.duration_s = 7 * 86400;
    tournament_slot_at(&t, RESET_WEEKLY, ms_of(2027, 3, 14, 23, 59, 59, 999), &st);
    assert_int_equal(st, SLOT_ACTIVE);
}

/* A league's checks, its stored form read back, and the rule of a move (the SQL of
 * migrations/0019_leagues.sql applies the same one; tests/e2e/test_leagues.py checks it there). */
static void test_league(void **state)
{
    (void)state;
    char msg[200];
    league_tier_t tiers[LEAGUE_TIERS_MAX] = {{"bronze", 1, 0}, {"silver", 1, 1}, {"gold \"x\"", 0, 2}};
    league_t l = {.on = true, .size = 3, .n_tiers = 3, .tiers = tiers};
    assert_null(league_check(&l, msg, sizeof msg));
    char *json = league_tiers_json(&l);
    assert_string_equal(json, "[{\"name\":\"bronze\",\"promote\":1,\"relegate\":0},{\"name\":\"silver\",\"promote\":1,"
                              "\"relegate\":1},{\"name\":\"gold \\\"x\\\"\",\"promote\":0,\"relegate\":2}]");
    league_t back = {.on = true, .size = 3};
    assert_true(league_tiers_parse(json, &back));
    assert_true(league_same(&l, &back));
    free(json);
    assert_false(league_tiers_parse("[]", &back));
    assert_false(league_tiers_parse("[{\"name\":1,\"promote\":0,\"relegate\":0}]", &back));
    assert_false(league_tiers_parse("not json", &back));
    league_clear(&back);
    league_t copy;
    league_copy(&copy, &l);
    assert_true(league_same(&l, &copy) && copy.tiers != l.tiers);
    league_clear(&copy);
    /* moves: up from the top, down from the bottom, promotion first, never past the ends */
    assert_int_equal(league_next_tier(&l, 0, 1, 3), 1);
    assert_int_equal(league_next_tier(&l, 0, 3, 3), 0); /* the lowest relegates nobody */
    assert_int_equal(league_next_tier(&l, 1, 1, 3), 2);
    assert_int_equal(league_next_tier(&l, 1, 2, 3), 1);
    assert_int_equal(league_next_tier(&l, 1, 3, 3), 0);
    assert_int_equal(league_next_tier(&l, 1, 1, 1), 2); /* alone: the top and the bottom, promoted */
    assert_int_equal(league_next_tier(&l, 2, 1, 3), 2); /* nobody above the highest */
    assert_int_equal(league_next_tier(&l, 2, 2, 3), 1);
    /* the checks */
    l.size = 1;
    assert_string_equal(league_check(&l, msg, sizeof msg), "cohorts.size");
    l.size = LEAGUE_SIZE_MAX + 1;
    assert_string_equal(league_check(&l, msg, sizeof msg), "cohorts.size");
    l.size = 3;
    l.tiers[2].relegate = 4; /* 0 + 4 > 3 */
    assert_string_equal(league_check(&l, msg, sizeof msg), "tiers");
    l.tiers[2].relegate = 2;
    snprintf(l.tiers[2].name, sizeof l.tiers[2].name, "silver");
    assert_string_equal(league_check(&l, msg, sizeof msg), "tiers");
    l.n_tiers = 0;
    assert_string_equal(league_check(&l, msg, sizeof msg), "tiers");
    league_t off = {0}, off2 = {0};
    assert_true(league_same(&off, &off2));
    off2.on = true;
    assert_false(league_same(&off, &off2));
}

static void test_tournament_check(void **state)
{
    (void)state;
    char msg[200];
    tournament_t t = {.on = true, .duration_s = 86400};
    assert_null(tournament_check(&t, RESET_DAILY, msg, sizeof msg));
    t.duration_s = 86401;
    assert_string_equal(tournament_check(&t, RESET_DAILY, msg, sizeof msg), "tournament.duration_s");
    assert_null(tournament_check(&t, RESET_WEEKLY, msg, sizeof msg));
    assert_string_equal(tournament_check(&t, RESET_NONE, msg, sizeof msg), "tournament.duration_s");
    t.duration_s = 31 * 86400;
    assert_null(tournament_check(&t, RESET_MONTHLY, msg, sizeof msg));
    t = (tournament_t){.on = true, .once = true, .start_ms = 1000, .end_ms = 2000};
    assert_null(tournament_check(&t, RESET_NONE, msg, sizeof msg));
    assert_string_equal(tournament_check(&t, RESET_DAILY, msg, sizeof msg), "tournament.start_at");
    t.end_ms = 1000;
    assert_string_equal(tournament_check(&t, RESET_NONE, msg, sizeof msg), "tournament.end_at");
    t.end_ms = 1000 + TOURNAMENT_SPAN_MAX_MS + 1;
    assert_string_equal(tournament_check(&t, RESET_NONE, msg, sizeof msg), "tournament.end_at");
    t.end_ms = 2000;
    t.max_players = -1;
    assert_string_equal(tournament_check(&t, RESET_NONE, msg, sizeof msg), "tournament.max_players");
    t.max_players = 0;
    t.max_attempts = TOURNAMENT_ATTEMPTS_MAX + 1;
    assert_string_equal(tournament_check(&t, RESET_NONE, msg, sizeof msg), "tournament.max_attempts");
    tournament_t off = {0};
    assert_null(tournament_check(&off, RESET_DAILY, msg, sizeof msg));
    /* what is kept per player and slot */
    tournament_t open = {.on = true, .duration_s = 60};
    assert_false(tournament_counts_entrants(&open) || tournament_counts_slot(&open));
    open.max_attempts = 2;
    assert_true(tournament_counts_entrants(&open) && !tournament_counts_slot(&open));
    open.max_players = 5;
    assert_true(tournament_counts_slot(&open));
    tournament_t joined = {.on = true, .duration_s = 60, .join_required = true};
    assert_true(tournament_counts_entrants(&joined) && tournament_counts_slot(&joined));
    slot_state_t s;
    for (int i = 0; i < 3; i++)
        assert_true(tournament_state_parse(tournament_state_name((slot_state_t)i), &s) && s == (slot_state_t)i);
    assert_false(tournament_state_parse("over", &s));
    tournament_t a = {.on = true, .duration_s = 60}, b = a;
    assert_true(tournament_same(&a, &b));
    snprintf(b.category, sizeof b.category, "x");
    assert_false(tournament_same(&a, &b));
}

static void test_window_resolve_none(void **state)
{
    (void)state;
    int64_t created = ms_of(2026, 1, 15, 0, 0, 0, 0);
    int64_t now = ms_of(2026, 11, 21, 20, 0, 0, 123);
    expect_resolve(RESET_NONE, created, now, NULL, WINDOW_OK, 0);
    expect_resolve(RESET_NONE, created, now, "current", WINDOW_OK, 0);
    expect_resolve(RESET_NONE, created, now, "1970-01-01", WINDOW_OK, 0);
    expect_resolve(RESET_NONE, created, now, "previous", WINDOW_ABSENT, 0);
    expect_resolve(RESET_NONE, created, now, "2026-01-15", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_NONE, created, now, "2026-11-16", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_NONE, created, now, "1970-01-02", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_NONE, created, now, "garbage", WINDOW_MALFORMED, 0);
    expect_resolve(RESET_NONE, created, now, "", WINDOW_MALFORMED, 0);
}

/* ------------------------------------------------------------------ */
/* cursor                                                               */
/* ------------------------------------------------------------------ */

static const char SECRET[] = "cursor-secret-0123456789";
static const char OTHER[] = "cursor-secret-0123456780";

static cursor_t mkcursor(cursor_kind_t kind, bool backward, int64_t gen, int64_t day, int64_t sk, int64_t ms,
                         const char *id, size_t idlen)
{
    cursor_t c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.backward = backward;
    c.gen = gen;
    c.day = day;
    assert_true(order_pos_set(&c.pos, sk, ms, id, idlen));
    return c;
}

static bool cursor_equal(const cursor_t *a, const cursor_t *b)
{
    return a->kind == b->kind && a->backward == b->backward && a->gen == b->gen && a->day == b->day &&
           a->pos.sort_key == b->pos.sort_key && a->pos.achieved_ms == b->pos.achieved_ms &&
           a->pos.player_len == b->pos.player_len && memcmp(a->pos.player, b->pos.player, a->pos.player_len) == 0 &&
           b->pos.player[b->pos.player_len] == '\0';
}

static size_t encode_checked(const cursor_t *c, const char *secret, char *out)
{
    memset(out, 0x7f, CURSOR_TEXT_MAX);
    size_t n = cursor_encode(c, secret, strlen(secret), out);
    assert_true(n > 0 && n < CURSOR_TEXT_MAX);
    assert_int_equal(strlen(out), n);
    for (size_t i = 0; i < n; i++)
        CHECK(is_b64url(out[i]), "cursor byte %zu is 0x%02x", i, (unsigned char)out[i]);
    return n;
}

static void test_cursor_round_trip(void **state)
{
    (void)state;
    char id64[PLAYER_ID_MAX];
    memset(id64, 'Z', sizeof id64);
    id64[0] = '.';
    id64[63] = '@';
    const cursor_kind_t kinds[] = {CURSOR_ENTRIES, CURSOR_BOARDS, CURSOR_WINDOWS, CURSOR_HIDDEN, CURSOR_FLAGGED};
    const int64_t gens[] = {0, 1, 42, INT64_MAX, -1, INT64_MIN};
    const int64_t days[] = {0, 20778, -1, INT64_MAX, INT64_MIN};
    const int64_t keys[] = {0, SCORE_MIN, SCORE_MAX, -1, 20773};
    const int64_t times[] = {0, 1763755200123, -1, -(INT64_C(1) << 62), INT64_MAX, INT64_MIN};
    const size_t idlens[] = {0, 1, 2, 3, 63, 64};

    size_t count = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int dir = 0; dir < 2; dir++) {
            for (size_t g = 0; g < sizeof gens / sizeof gens[0]; g++) {
                for (size_t t = 0; t < sizeof times / sizeof times[0]; t++) {
                    size_t d = (g + t) % (sizeof days / sizeof days[0]);
                    size_t s = (g + 2 * t) % (sizeof keys / sizeof keys[0]);
                    size_t l = (g + t + k) % (sizeof idlens / sizeof idlens[0]);
                    cursor_t c = mkcursor(kinds[k], dir == 1, gens[g], days[d], keys[s], times[t], id64, idlens[l]);
                    char text[CURSOR_TEXT_MAX];
                    encode_checked(&c, SECRET, text);
                    cursor_t back;
                    memset(&back, 0xee, sizeof back);
                    CHECK(cursor_decode(text, SECRET, strlen(SECRET), &back), "decode of \"%s\"", text);
                    CHECK(cursor_equal(&c, &back), "round trip of \"%s\"", text);
                    /* The same cursor encodes to the same text. */
                    char again[CURSOR_TEXT_MAX];
                    encode_checked(&c, SECRET, again);
                    assert_string_equal(text, again);
                    count++;
                }
            }
        }
    }
    assert_true(count == 5 * 2 * 6 * 6);

    /* Realistic shapes of each kind. */
    cursor_t e = mkcursor(CURSOR_ENTRIES, false, 7, 20778, -1500, 1763755200123, LIT("player-1"));
    cursor_t b = mkcursor(CURSOR_BOARDS, true, 0, 0, 0, 0, LIT("weekly-top"));
    cursor_t w = mkcursor(CURSOR_WINDOWS, false, 7, 0, 20773, 0, "", 0);
    const cursor_t *all[] = {&e, &b, &w};
    for (size_t i = 0; i < 3; i++) {
        char text[CURSOR_TEXT_MAX];
        encode_checked(all[i], SECRET, text);
        cursor_t back;
        assert_true(cursor_decode(text, SECRET, strlen(SECRET), &back));
        assert_true(cursor_equal(all[i], &back));
    }

    /* Direction and kind are part of what is signed: different texts. */
    cursor_t fwd = mkcursor(CURSOR_ENTRIES, false, 7, 20778, 5, 6, LIT("p"));
    cursor_t bwd = fwd;
    bwd.backward = true;
    cursor_t other_kind = fwd;
    other_kind.kind = CURSOR_WINDOWS;
    char t1[CURSOR_TEXT_MAX], t2[CURSOR_TEXT_MAX], t3[CURSOR_TEXT_MAX];
    encode_checked(&fwd, SECRET, t1);
    encode_checked(&bwd, SECRET, t2);
    encode_checked(&other_kind, SECRET, t3);
    assert_string_not_equal(t1, t2);
    assert_string_not_equal(t1, t3);
}

static void test_cursor_tamper(void **state)
{
    (void)state;
    char id64[PLAYER_ID_MAX];
    memset(id64, 'p', sizeof id64);
    /* Id lengths 0, 1, 2 and 64 give every base64 tail (4, 2 and 0 unused bits). */
    cursor_t cs[] = {
        mkcursor(CURSOR_WINDOWS, false, 3, 0, 20773, 0, "", 0),
        mkcursor(CURSOR_ENTRIES, true, 9, 20778, -77, 1763755200123, id64, 1),
        mkcursor(CURSOR_BOARDS, false, 0, 0, 0, 0, LIT("ab")),
        mkcursor(CURSOR_ENTRIES, false, INT64_MAX, -1, SCORE_MIN, -1, id64, 64),
    };
    const char junk[] = "=+/. ~%*\x80\xff";
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        char text[CURSOR_TEXT_MAX];
        size_t n = encode_checked(&cs[ci], SECRET, text);
        cursor_t out;
        assert_true(cursor_decode(text, SECRET, strlen(SECRET), &out));

        /* Any single changed character fails. */
        for (size_t i = 0; i < n; i++) {
            char orig = text[i];
            for (size_t a = 0; a < sizeof B64URL - 1 + sizeof junk - 1; a++) {
                char c = a < sizeof B64URL - 1 ? B64URL[a] : junk[a - (sizeof B64URL - 1)];
                if (c == orig)
                    continue;
                text[i] = c;
                CHECK(!cursor_decode(text, SECRET, strlen(SECRET), &out),
                      "cursor %zu with byte %zu changed from '%c' to 0x%02x was accepted", ci, i, orig,
                      (unsigned char)c);
            }
            text[i] = orig;
        }
        assert_true(cursor_decode(text, SECRET, strlen(SECRET), &out));

        /* Any truncation fails. */
        char cut[CURSOR_TEXT_MAX];
        for (size_t len = 0; len < n; len++) {
            memcpy(cut, text, len);
            cut[len] = '\0';
            CHECK(!cursor_decode(cut, SECRET, strlen(SECRET), &out), "cursor %zu cut to %zu chars accepted", ci,
                  len);
        }
        /* Dropping a character anywhere fails. */
        for (size_t i = 0; i < n; i++) {
            memcpy(cut, text, i);
            memcpy(cut + i, text + i + 1, n - i);
            CHECK(!cursor_decode(cut, SECRET, strlen(SECRET), &out), "cursor %zu without char %zu accepted", ci, i);
        }
        /* Extensions fail. */
        const char *tails[] = {"A", "AA", "AAA", "AAAA", "=", "=="};
        for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
            char longer[CURSOR_TEXT_MAX + 8];
            snprintf(longer, sizeof longer, "%s%s", text, tails[t]);
            CHECK(!cursor_decode(longer, SECRET, strlen(SECRET), &out), "cursor %zu + \"%s\" accepted", ci,
                  tails[t]);
        }
        /* Another secret fails, in both directions. */
        assert_false(cursor_decode(text, OTHER, strlen(OTHER), &out));
        assert_false(cursor_decode(text, SECRET, strlen(SECRET) - 1, &out));
        assert_false(cursor_decode(text, "", 0, &out));
        char foreign[CURSOR_TEXT_MAX];
        encode_checked(&cs[ci], OTHER, foreign);
        assert_string_not_equal(foreign, text);
        assert_false(cursor_decode(foreign, SECRET, strlen(SECRET), &out));
        assert_true(cursor_decode(foreign, OTHER, strlen(OTHER), &out));
        assert_true(cursor_equal(&cs[ci], &out));
    }

    /* The empty secret is still a key: it only verifies what it signed. */
    char t[CURSOR_TEXT_MAX];
    encode_checked(&cs[2], "", t);
    cursor_t out;
    assert_true(cursor_decode(t, "", 0, &out));
    assert_false(cursor_decode(t, SECRET, strlen(SECRET), &out));
}

static void test_cursor_garbage(void **state)
{
    (void)state;
    cursor_t out;
    const char *bad[] = {
        "", "A", "AA", "AAA", "AAAA", "AAAAA", "AB", "not a cursor", "====", "null", "eyJ9",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "////", "++++", "AAAA====",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!cursor_decode(bad[i], SECRET, strlen(SECRET), &out), "\"%s\" accepted", bad[i]);

    /* Far too long inputs, of valid alphabet. */
    char big[400];
    for (size_t len = CURSOR_TEXT_MAX - 2; len < sizeof big; len++) {
        memset(big, 'A', len);
        big[len] = '\0';
        CHECK(!cursor_decode(big, SECRET, strlen(SECRET), &out), "%zu 'A's accepted", len);
    }
    rng_seed(31337);
    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)rng_below(200);
        for (size_t k = 0; k < len; k++)
            big[k] = rng_below(4) ? B64URL[rng_below(64)] : (char)(1 + rng_below(255));
        big[len] = '\0';
        CHECK(!cursor_decode(big, SECRET, strlen(SECRET), &out), "random text %d accepted", i);
    }
}

/*
 * Cursors that carry a valid signature but fields rankd never writes: the
 * test signs them itself with the documented format (version, kind,
 * direction, gen, day, sort_key, achieved_ms, id length, id; HMAC-SHA-256
 * truncated to 16 bytes; base64url without padding).
 */
static size_t test_b64url(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = B64URL[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = B64URL[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return o;
}

static void be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static void forge(const unsigned char *body, size_t n, char *out)
{
    unsigned char raw[256];
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int full_len = 0;
    memcpy(raw, body, n);
    assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), body, n, full, &full_len));
    memcpy(raw + n, full, 16);
    test_b64url(raw, n + 16, out);
}

static size_t forge_body(unsigned char *b, unsigned version, unsigned kind, unsigned dir, unsigned idlen_field,
                         const char *id, size_t idlen)
{
    b[0] = (unsigned char)version;
    b[1] = (unsigned char)kind;
    b[2] = (unsigned char)dir;
    be64(b + 3, 7);
    be64(b + 11, 20778);
    be64(b + 19, (uint64_t)-5);
    be64(b + 27, 1763755200123ULL);
    b[35] = (unsigned char)idlen_field;
    memcpy(b + 36, id, idlen);
    return 36 + idlen;
}

static void test_cursor_forged_fields(void **state)
{
    (void)state;
    unsigned char body[200];
    char text[400];
    cursor_t out;
    size_t n;

    /* Control: the test's own signing matches the format, so the cases below test the checks. */
    n = forge_body(body, 1, CURSOR_ENTRIES, 1, 3, "abc", 3);
    forge(body, n, text);
    assert_true(cursor_decode(text, SECRET, strlen(SECRET), &out));
    assert_true(out.kind == CURSOR_ENTRIES && out.backward && out.gen == 7 && out.day == 20778 &&
                out.pos.sort_key == -5 && out.pos.achieved_ms == 1763755200123LL && out.pos.player_len == 3 &&
                memcmp(out.pos.player, "abc", 3) == 0);
    n = forge_body(body, 1, CURSOR_WINDOWS, 0, 0, "", 0);
    forge(body, n, text);
    assert_true(cursor_decode(text, SECRET, strlen(SECRET), &out));

    /* Unknown version. */
    n = forge_body(body, 2, CURSOR_ENTRIES, 0, 3, "abc", 3);
    forge(body, n, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    n = forge_body(body, 0, CURSOR_ENTRIES, 0, 3, "abc", 3);
    forge(body, n, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    /* Unknown kinds. */
    n = forge_body(body, 1, 0, 0, 3, "abc", 3);
    forge(body, n, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    n = forge_body(body, 1, CURSOR_FLAGGED + 1, 0, 3, "abc", 3);
    forge(body, n, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    n = forge_body(body, 1, 255, 0, 3, "abc", 3);
    forge(body, n, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    /* Unknown direction. */
    n = forge_body(body, 1, CURSOR_ENTRIES, 2, 3, "abc", 3);
    forge(body, n, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    /* Id length field that disagrees with the bytes present. */
    n = forge_body(body, 1, CURSOR_ENTRIES, 0, 4, "abc", 3);
    forge(body, n, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    n = forge_body(body, 1, CURSOR_ENTRIES, 0, 2, "abc", 3);
    forge(body, n, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    /* An id longer than any player id. */
    char id[80];
    memset(id, 'x', sizeof id);
    n = forge_body(body, 1, CURSOR_ENTRIES, 0, 65, id, 65);
    forge(body, n, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    n = forge_body(body, 1, CURSOR_ENTRIES, 0, 64, id, 64);
    forge(body, n, text);
    assert_true(cursor_decode(text, SECRET, strlen(SECRET), &out));
    /* A body too short to hold the fields, correctly signed. */
    forge(body, 20, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
    forge(body, 35, text);
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));

    /* cursor_encode of a kind that does not exist does not decode. */
    cursor_t c = mkcursor(CURSOR_ENTRIES, false, 1, 2, 3, 4, LIT("p"));
    char t[CURSOR_TEXT_MAX];
    c.kind = (cursor_kind_t)0;
    encode_checked(&c, SECRET, t);
    assert_false(cursor_decode(t, SECRET, strlen(SECRET), &out));
    c.kind = (cursor_kind_t)(CURSOR_FLAGGED + 1);
    encode_checked(&c, SECRET, t);
    assert_false(cursor_decode(t, SECRET, strlen(SECRET), &out));

    /* Non-zero unused trailing bits (a second spelling of the same bytes) are refused. */
    n = forge_body(body, 1, CURSOR_WINDOWS, 0, 0, "", 0); /* 52 raw bytes: 70 chars, 4 unused bits */
    forge(body, n, text);
    size_t tl = strlen(text);
    assert_int_equal(tl, 70);
    assert_true(cursor_decode(text, SECRET, strlen(SECRET), &out));
    const char *p = strchr(B64URL, text[tl - 1]);
    assert_non_null(p);
    text[tl - 1] = B64URL[(p - B64URL) | 1];
    assert_false(cursor_decode(text, SECRET, strlen(SECRET), &out));
}

/* ------------------------------------------------------------------ */
/* util/buf                                                             */
/* ------------------------------------------------------------------ */

static void json(const char *s, size_t n, const char *want)
{
    buf_t b;
    buf_init(&b);
    buf_json_str(&b, s, n);
    CHECK(b.len == strlen(want) && strcmp(b.data, want) == 0, "json of %zu bytes: got [%s], want [%s]", n,
          b.data ? b.data : "(null)", want);
    buf_free(&b);
}

static void test_buf_basic(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);

    buf_puts(&b, "hello");
    buf_putc(&b, ' ');
    buf_append(&b, "world!!", 5);
    assert_int_equal(b.len, 11);
    assert_string_equal(b.data, "hello world");
    assert_true(b.cap > b.len);

    /* Appending nothing keeps the text. */
    buf_append(&b, NULL, 0);
    buf_puts(&b, "");
    assert_string_equal(b.data, "hello world");

    /* Growth far past the first allocation keeps every byte and the NUL. */
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    for (int i = 0; i < 5000; i++)
        buf_putc(&b, (char)('a' + i % 26));
    assert_int_equal(b.len, 5000);
    assert_int_equal(b.data[5000], '\0');
    for (int i = 0; i < 5000; i++)
        CHECK(b.data[i] == (char)('a' + i % 26), "byte %d", i);
    size_t cap = b.cap;
    buf_reset(&b);
    assert_int_equal(b.cap, cap); /* reset keeps the allocation */
    assert_string_equal(b.data, "");

    /* Embedded NULs are bytes like others. */
    buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4);

    /* reserve makes room without changing the content. */
    buf_reserve(&b, 10000);
    assert_true(b.cap >= b.len + 10000 + 1);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4);

    buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    buf_free(&b); /* twice is harmless */

    /* reset of a never-used buffer */
    buf_reset(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    /* A first append of nothing still gives a C string. */
    buf_append(&b, "", 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    buf_free(&b);
}

static void test_buf_printf(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "%d-%s", 42, "x");
    assert_string_equal(b.data, "42-x");
    assert_int_equal(b.len, 4);
    buf_printf(&b, "[%05.1f]", 3.25);
    assert_string_equal(b.data, "42-x[003.2]");
    buf_printf(&b, "%s", "");
    assert_string_equal(b.data, "42-x[003.2]");
    assert_int_equal(b.len, 11);
    /* Longer than the first allocation. */
    buf_printf(&b, "%0600d|", 7);
    assert_int_equal(b.len, 11 + 601);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(b.data[11], '0');
    assert_int_equal(b.data[11 + 599], '7');
    assert_int_equal(b.data[11 + 600], '|');
    buf_free(&b);

    buf_init(&b);
    buf_i64(&b, 0);
    buf_putc(&b, ',');
    buf_i64(&b, -1);
    buf_putc(&b, ',');
    buf_i64(&b, INT64_MAX);
    buf_putc(&b, ',');
    buf_i64(&b, INT64_MIN);
    buf_putc(&b, ',');
    buf_i64(&b, SCORE_MIN);
    assert_string_equal(b.data, "0,-1,9223372036854775807,-9223372036854775808,-9007199254740991");
    buf_free(&b);
}

static void test_buf_json(void **state)
{
    (void)state;
    json("", 0, "\"\"");
    json(LIT("plain"), "\"plain\"");
    json(LIT("a\"b"), "\"a\\\"b\"");
    json(LIT("a\\b"), "\"a\\\\b\"");
    json(LIT("\"\\\""), "\"\\\"\\\\\\\"\"");
    json(LIT("\n\r\t"), "\"\\n\\r\\t\"");
    json(LIT("\x01"), "\"\\u0001\"");
    json(LIT("a\x01z"), "\"a\\u0001z\"");
    json(LIT("\x1f"), "\"\\u001f\"");
    json(LIT("\b\f"), "\"\\u0008\\u000c\"");
    json(LIT("\x10\x1a"), "\"\\u0010\\u001a\"");
    json(LIT("nul\0inside"), "\"nul\\u0000inside\"");
    json(LIT(" ~\x7f"), "\" ~\\u007f\"");                   /* 0x20 to 0x7e pass, DEL does not */
    json(LIT("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\xc3\xa9 \xe2\x82\xac\""); /* UTF-8 passes */
    json(LIT("\xf0\x9f\x8e\xae!"), "\"\xf0\x9f\x8e\xae!\"");                 /* four bytes too */
    /* A byte that is not part of well-formed UTF-8 is escaped, so that a log line of a
     * client's bytes is valid UTF-8: a lone continuation, a lead cut short, an overlong form,
     * a surrogate, a code point past U+10FFFF, a byte no UTF-8 has. */
    json(LIT("a\x80" "b"), "\"a\\u0080b\"");
    json(LIT("\xc3"), "\"\\u00c3\"");
    json(LIT("\xe2\x82"), "\"\\u00e2\\u0082\"");
    json(LIT("\xc0\xaf"), "\"\\u00c0\\u00af\"");
    json(LIT("\xe0\x80\xaf"), "\"\\u00e0\\u0080\\u00af\"");
    json(LIT("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");
    json(LIT("\xf4\x90\x80\x80"), "\"\\u00f4\\u0090\\u0080\\u0080\"");
    json(LIT("\xff\xfe"), "\"\\u00ff\\u00fe\"");
    json(LIT("\xc3\xa9\xa9"), "\"\xc3\xa9\\u00a9\"");
    json(LIT("</script>"), "\"</script>\"");
    json(LIT("end\""), "\"end\\\"\"");
    json(LIT("\\start"), "\"\\\\start\"");

    /* Every control byte is escaped, and the output is valid to a simple reader. */
    for (int c = 0; c < 0x20; c++) {
        char in[3] = {'x', (char)c, 'y'};
        buf_t b;
        buf_init(&b);
        buf_json_str(&b, in, 3);
        for (size_t i = 0; i < b.len; i++)
            CHECK((unsigned char)b.data[i] >= 0x20, "control 0x%02x left raw", c);
        char want[16];
        if (c == '\n')
            snprintf(want, sizeof want, "\"x\\ny\"");
        else if (c == '\r')
            snprintf(want, sizeof want, "\"x\\ry\"");
        else if (c == '\t')
            snprintf(want, sizeof want, "\"x\\ty\"");
        else
            snprintf(want, sizeof want, "\"x\\u%04xy\"", c);
        CHECK(strcmp(b.data, want) == 0, "control 0x%02x: [%s], want [%s]", c, b.data, want);
        buf_free(&b);
    }

    /* A long string with escapes scattered through it, past the first allocation. */
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "{");
    buf_json_key(&b, "k\"ey");
    buf_json_str(&b, LIT("v"));
    buf_puts(&b, "}");
    assert_string_equal(b.data, "{\"k\\\"ey\":\"v\"}");
    buf_reset(&b);
    char in[1000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = i % 10 == 9 ? '"' : 'a';
    buf_json_str(&b, in, sizeof in);
    assert_int_equal(b.len, 2 + 1000 + 100);
    assert_int_equal(b.data[0], '"');
    assert_int_equal(b.data[b.len - 1], '"');
    assert_memory_equal(b.data + 1, "aaaaaaaaa\\\"aaaaaaaaa\\\"", 22);
    buf_free(&b);
}

static void test_buf_steal(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "stolen bytes");
    size_t len = 0;
    char *p = buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 12);
    assert_string_equal(p, "stolen bytes");
    /* The buffer is left empty and usable. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    buf_puts(&b, "again");
    assert_string_equal(b.data, "again");
    free(p);

    /* len may be NULL. */
    p = buf_steal(&b, NULL);
    assert_string_equal(p, "again");
    free(p);
    assert_null(b.data);
    buf_free(&b);
}

/*
 * The header promises the data is always NUL-terminated; a buffer that
 * never held a byte must hand over an empty C string.
 */
static char *heap_hold[16];

static void dirty_heap(void)
{
    /*
     * Make fresh allocations non-zero so an unterminated block shows. glibc's
     * M_PERTURB fills new blocks with ~'J' (ASan fills them with 0xbe on its
     * own); holding a few blocks of the size buf_t starts with empties the
     * per-thread cache, whose blocks skip that fill.
     */
#ifdef M_PERTURB
    mallopt(M_PERTURB, 'J');
#endif
    for (size_t i = 0; i < sizeof heap_hold / sizeof heap_hold[0]; i++) {
        heap_hold[i] = malloc(256);
        assert_non_null(heap_hold[i]);
        memset(heap_hold[i], 'J', 256);
    }
}

static void clean_heap(void)
{
    for (size_t i = 0; i < sizeof heap_hold / sizeof heap_hold[0]; i++) {
        free(heap_hold[i]);
        heap_hold[i] = NULL;
    }
#ifdef M_PERTURB
    mallopt(M_PERTURB, 0);
#endif
}

static void test_buf_steal_never_used(void **state)
{
    (void)state;
    dirty_heap();
    buf_t b;
    buf_init(&b);
    size_t len = 99;
    char *p = buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    bool empty = p[0] == '\0';
    unsigned char first = (unsigned char)p[0];
    free(p);
    clean_heap();
    CHECK(empty, "buf_steal() of a never-used buffer returned a block starting with byte 0x%02x, not \"\"", first);
}

static void test_buf_steal_after_reserve(void **state)
{
    (void)state;
    dirty_heap();
    buf_t b;
    buf_init(&b);
    buf_reserve(&b, 10);
    size_t len = 99;
    char *p = buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    bool empty = p[0] == '\0';
    unsigned char first = (unsigned char)p[0];
    free(p);
    clean_heap();
    CHECK(empty, "buf_steal() after buf_reserve() returned a block starting with byte 0x%02x, not \"\"", first);
}

static void test_buf_steal_after_empty_printf(void **state)
{
    (void)state;
    dirty_heap();
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "%s", "");
    size_t len = 99;
    char *p = buf_steal(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, 0);
    bool empty = p[0] == '\0';
    unsigned char first = (unsigned char)p[0];
    free(p);
    clean_heap();
    CHECK(empty, "buf_steal() after an empty buf_printf() returned a block starting with byte 0x%02x, not \"\"",
          first);
}

/* ------------------------------------------------------------------ */

/* ---------------------------------------------------------------- rank styles and notices */

/* Sort keys of a board, in rank order: the model the counts below are taken from. */
static const int64_t styled_board[] = {1, 1, 2, 3, 3, 3, 7, 9, 9};

static bool count_before(void *arg, rank_style_t style, int64_t sk, int64_t *out)
{
    int *calls = arg;
    (*calls)++;
    int64_t n = 0, prev = INT64_MIN;
    for (size_t i = 0; i < sizeof styled_board / sizeof *styled_board; i++) {
        if (styled_board[i] >= sk)
            break;
        n += style == RANK_COMPETITION || styled_board[i] != prev;
        prev = styled_board[i];
    }
    *out = n;
    return true;
}

static void styled_entries(entries_t *e, size_t from, size_t n)
{
    entries_init(e);
    for (size_t i = from; i < from + n; i++)
        entries_push(e, (int64_t)i + 1, "p", 1, styled_board[i], styled_board[i], 0, NULL, 0);
}

static void test_rank_styles(void **state)
{
    (void)state;
    static const int64_t competition[] = {1, 1, 3, 4, 4, 4, 7, 8, 8}, dense[] = {1, 1, 2, 3, 3, 3, 4, 5, 5};
    for (size_t from = 0; from < 9; from++) {
        for (size_t n = 1; from + n <= 9; n++) {
            for (int style = RANK_COMPETITION; style <= RANK_DENSE; style++) {
                for (int adjacent = 0; adjacent < 2; adjacent++) {
                    entries_t e;
                    styled_entries(&e, from, n);
                    int calls = 0;
                    assert_true(rank_restyle(&e, (rank_style_t)style, adjacent, count_before, &calls));
                    for (size_t i = 0; i < n; i++)
                        assert_int_equal(e.items[i].rank, (style == RANK_COMPETITION ? competition : dense)[from + i]);
                    if (adjacent)
                        assert_true(calls <= 1); /* one count for a page, whatever its size */
                    entries_clear(&e);
                }
            }
        }
    }
    rank_style_t st;
    assert_true(rank_style_parse(NULL, &st) && st == RANK_ORDINAL);
    assert_true(rank_style_parse("dense", &st) && st == RANK_DENSE);
    assert_false(rank_style_parse("", &st));
    assert_false(rank_style_parse("Dense", &st));
}

static void test_notice_lines(void **state)
{
    (void)state;
    buf_t b;
    buf_init(&b);
    notice_change_t c = {.gen = 7, .day = -3, .existed = true, .old_sort_key = -9007199254740991, .old_ms = 5,
                         .new_sort_key = 12, .new_ms = 6, .player = "a.b", .player_len = 3,
                         .metadata = "{\"x\":\"a b\"}", .metadata_len = 11};
    notice_put_change(&b, &c, true);
    notice_change_t back;
    assert_true(notice_parse_change(b.data, b.len, &back));
    assert_int_equal(back.gen, 7);
    assert_int_equal(back.day, -3);
    assert_true(back.existed);
    assert_int_equal(back.old_sort_key, -9007199254740991);
    assert_int_equal(back.new_sort_key, 12);
    assert_int_equal(back.new_ms, 6);
    assert_int_equal(back.player_len, 3);
    assert_memory_equal(back.player, "a.b", 3);
    assert_int_equal(back.metadata_len, 11);
    buf_reset(&b);
    c.existed = false;
    notice_put_change(&b, &c, false);
    assert_string_equal(b.data, "W 7 -3 - - 12 6 a.b");
    assert_true(notice_parse_change(b.data, b.len, &back) && !back.existed && !back.metadata);
    static const char *const bad[] = {"W 7 -3 - 5 12 6 a", "W 7 -3 1 2 12 6", "W x 1 2 3 4 5 p", "W 7 1 2 3 4 5 p ",
                                      "S 1 2 3 1 1", "W 1 2 3 4 5 99999999999999999999 p"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(notice_parse_change(bad[i], strlen(bad[i]), &back));
    /* A removal: the position it left, the player, nothing else (no metadata, never "-"). */
    buf_reset(&b);
    c.existed = true;
    c.removed = true;
    notice_put_change(&b, &c, true);
    assert_string_equal(b.data, "D 7 -3 -9007199254740991 5 a.b");
    assert_true(notice_parse_change(b.data, b.len, &back));
    assert_true(back.removed && back.existed && !back.metadata);
    assert_int_equal(back.gen, 7);
    assert_int_equal(back.day, -3);
    assert_int_equal(back.old_sort_key, -9007199254740991);
    assert_int_equal(back.old_ms, 5);
    assert_int_equal(back.player_len, 3);
    assert_memory_equal(back.player, "a.b", 3);
    static const char *const bad_removals[] = {"D 7 -3 - - a", "D 7 -3 1 2", "D 7 -3 1 2 a {}", "D 7 -3 1 2 12 6 a",
                                               "D 7 -3 1 2 a ", "D 7 -3 1 a"};
    for (size_t i = 0; i < sizeof bad_removals / sizeof *bad_removals; i++)
        assert_false(notice_parse_change(bad_removals[i], strlen(bad_removals[i]), &back));
    int64_t g, d, seq;
    int part, parts;
    assert_true(notice_parse_seq("S 4 20000 17 2 3", 16, &g, &d, &seq, &part, &parts));
    assert_true(g == 4 && d == 20000 && seq == 17 && part == 2 && parts == 3);
    assert_false(notice_parse_seq("S 4 20000 17 4 3", 16, &g, &d, &seq, &part, &parts));
    assert_false(notice_parse_seq("S 4 20000 17 0 3", 16, &g, &d, &seq, &part, &parts));
    buf_free(&b);
}

/* util/sha256: FIPS 180-2's vectors (the empty string, "abc", and one of two blocks), and the
 * same answer from threads racing to the first call (the digest is fetched once). */
static void hex32(const unsigned char d[SHA256_BYTES], char out[2 * SHA256_BYTES + 1])
{
    for (int i = 0; i < SHA256_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void *sha256_abc(void *arg)
{
    sha256("abc", 3, arg);
    return NULL;
}

static void test_sha256(void **state)
{
    (void)state;
    unsigned char d[SHA256_BYTES];
    char h[2 * SHA256_BYTES + 1];
    pthread_t t[4];
    unsigned char r[4][SHA256_BYTES];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, sha256_abc, r[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        hex32(r[i], h);
        assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
    sha256("", 0, d);
    hex32(d, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256(two, strlen(two), d);
    hex32(d, h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_board_id_valid),
        cmocka_unit_test(test_board_id_invalid),
        cmocka_unit_test(test_player_id_valid),
        cmocka_unit_test(test_player_id_invalid),
        cmocka_unit_test(test_idempotency_key),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_percent_decode_valid),
        cmocka_unit_test(test_percent_decode_malformed),
        cmocka_unit_test(test_param_parse_uint_valid),
        cmocka_unit_test(test_param_parse_uint_invalid),
        cmocka_unit_test(test_param_parse_uint_small_max),
        cmocka_unit_test(test_order_sort_key),
        cmocka_unit_test(test_order_score_better),
        cmocka_unit_test(test_order_pos_set),
        cmocka_unit_test(test_order_pos_cmp_ties),
        cmocka_unit_test(test_order_member_encode_order),
        cmocka_unit_test(test_order_member_encode_layout),
        cmocka_unit_test(test_order_member_decode_rejects),
        cmocka_unit_test(test_order_score_parse),
        cmocka_unit_test(test_score_best),
        cmocka_unit_test(test_score_latest),
        cmocka_unit_test(test_score_sum),
        cmocka_unit_test(test_score_fold_random),
        cmocka_unit_test(test_score_in_range),
        cmocka_unit_test(test_score_unknown_operator),
        cmocka_unit_test(test_window_known_dates),
        cmocka_unit_test(test_window_civil_round_trip),
        cmocka_unit_test(test_window_start_day),
        cmocka_unit_test(test_window_next_prev),
        cmocka_unit_test(test_window_unknown_reset),
        cmocka_unit_test(test_window_is_start),
        cmocka_unit_test(test_window_is_hot),
        cmocka_unit_test(test_window_format_day),
        cmocka_unit_test(test_buf_i64),
        cmocka_unit_test(test_window_parse_day),
        cmocka_unit_test(test_window_format_ms),
        cmocka_unit_test(test_window_resolve_daily),
        cmocka_unit_test(test_window_retention),
        cmocka_unit_test(test_window_hot_days),
        cmocka_unit_test(test_window_resolve_weekly),
        cmocka_unit_test(test_window_resolve_monthly),
        cmocka_unit_test(test_window_resolve_none),
        cmocka_unit_test(test_tournament_one_off_slot),
        cmocka_unit_test(test_tournament_recurring_slot),
        cmocka_unit_test(test_tournament_check),
        cmocka_unit_test(test_league),
        cmocka_unit_test(test_cursor_round_trip),
        cmocka_unit_test(test_cursor_tamper),
        cmocka_unit_test(test_cursor_garbage),
        cmocka_unit_test(test_cursor_forged_fields),
        cmocka_unit_test(test_buf_basic),
        cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_buf_json),
        cmocka_unit_test(test_buf_steal),
        cmocka_unit_test(test_buf_steal_never_used),
        cmocka_unit_test(test_buf_steal_after_reserve),
        cmocka_unit_test(test_buf_steal_after_empty_printf),
        cmocka_unit_test(test_rank_styles),
        cmocka_unit_test(test_notice_lines),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
