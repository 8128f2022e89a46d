/* tests/unit/test_player_token.c — minted player tokens (core/player_token.h): HS256 compact JWS,
 * verified under the current or the previous secret; alg none, tampering, a wrong secret, expiry,
 * a lifetime over a day and bad claims refused; another issuer's token is not ours. Also the
 * verified-token cache (cache/token_cache.h) and the revocations (cache/revocations.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cache/revocations.h"
#include "cache/token_cache.h"
#include "core/player_token.h"
#include "util/buf.h"

#define SECRET "unit-test-player-token-secret-0123456789"
#define OLD "unit-test-previous-token-secret-9876543210"
#define NOW 1795824000123LL

static const unsigned char JTI[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static token_verdict_t verify(const char *cur, const char *prev, const char *tok, int64_t now, player_claims_t *out,
                              char *why)
{
    player_token_keys_t keys = {cur, prev};
    return player_token_verify(&keys, tok, strlen(tok), now, out, why, 200);
}

static char *b64u(const void *data, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *in = data;
    char *out = calloc(1, n * 2 + 4);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = t[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = t[v & 63];
    }
    return out;
}

/* A token of `header` and `claims` (JSON texts) signed with `secret` (NULL: an empty signature). */
static char *forge(const char *header, const char *claims, const char *secret)
{
    char *h = b64u(header, strlen(header)), *c = b64u(claims, strlen(claims));
    buf_t b;
    buf_init(&b);
    buf_printf(&b, "%s.%s", h, c);
    unsigned char mac[32];
    unsigned int len = 0;
    char *s = NULL;
    if (secret) {
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)b.data, b.len, mac, &len);
        s = b64u(mac, len);
    }
    buf_printf(&b, ".%s", s ? s : "");
    free(h);
    free(c);
    free(s);
    return buf_steal(&b, NULL);
}

static void test_a_minted_token_verifies_with_its_claims(void **state)
{
    (void)state;
    const char *boards[] = {"arcade", "weekly-1"};
    char *tok = player_token_mint(SECRET, "alice", boards, 2, NOW, 600, JTI);
    assert_non_null(tok);
    assert_int_equal(strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37), 0);
    player_claims_t c;
    char why[200];
    assert_int_equal(verify(SECRET, NULL, tok, NOW + 1000, &c, why), TOKEN_VALID);
    assert_string_equal(c.player, "alice");
    assert_string_equal(c.subject, "alice");
    assert_string_equal(c.issuer, "rankd");
    assert_int_equal(c.iat_ms, NOW);
    assert_int_equal(c.exp_ms, (NOW / 1000 + 600) * 1000);
    assert_int_equal(c.n_boards, 2);
    assert_true(player_claims_allow_board(&c, "weekly-1"));
    assert_false(player_claims_allow_board(&c, "other"));
    /* The previous secret verifies too (rotation), in either place. */
    assert_int_equal(verify(OLD, SECRET, tok, NOW, &c, why), TOKEN_VALID);
    /* Expired at exp, not a millisecond later. */
    assert_int_equal(verify(SECRET, NULL, tok, c.exp_ms, &c, why), TOKEN_INVALID);
    assert_non_null(strstr(why, "expired"));
    free(tok);
    tok = player_token_mint(SECRET, "bob", NULL, 0, NOW, 60, JTI);
    assert_int_equal(verify(SECRET, NULL, tok, NOW, &c, why), TOKEN_VALID);
    assert_int_equal(c.n_boards, 0);
    assert_true(player_claims_allow_board(&c, "anything"));
    free(tok);
}

static void test_tampered_wrongly_signed_and_alg_none_tokens_are_invalid(void **state)
{
    (void)state;
    player_claims_t c;
    char why[200];
    char *tok = player_token_mint(SECRET, "alice", NULL, 0, NOW, 600, JTI);
    assert_int_equal(verify(OLD, NULL, tok, NOW, &c, why), TOKEN_INVALID);
    assert_non_null(strstr(why, "signature"));
    /* Every single byte changed in the header, the claims or the signature is refused. */
    size_t n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        if (tok[i] == '.')
            continue;
        char saved = tok[i];
        tok[i] = saved == 'A' ? 'B' : 'A';
        token_verdict_t v = verify(SECRET, NULL, tok, NOW, &c, why);
        assert_true(v != TOKEN_VALID);
        tok[i] = saved;
    }
    free(tok);
    const char *claims = "{\"iss\":\"rankd\",\"sub\":\"alice\",\"iat\":1795824000,\"exp\":1795824600,\"jti\":\"x\"}";
    char *none = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, NULL);
    assert_int_equal(verify(SECRET, NULL, none, NOW, &c, why), TOKEN_INVALID);
    assert_non_null(strstr(why, "alg"));
    free(none);
    none = forge("{\"alg\":\"none\"}", claims, SECRET);
    assert_int_equal(verify(SECRET, NULL, none, NOW, &c, why), TOKEN_INVALID);
    free(none);
    char *rs = forge("{\"alg\":\"RS256\"}", claims, SECRET);
    assert_int_equal(verify(SECRET, NULL, rs, NOW, &c, why), TOKEN_INVALID);
    free(rs);
    char *good = forge("{\"alg\":\"HS256\"}", claims, SECRET);
    assert_int_equal(verify(SECRET, NULL, good, NOW, &c, why), TOKEN_VALID);
    assert_int_equal(c.iat_ms, 1795824000000LL);
    /* No secret configured: nothing verifies. */
    assert_int_equal(verify(NULL, NULL, good, NOW, &c, why), TOKEN_INVALID);
    free(good);
}

static void test_bad_claims_are_invalid_and_other_tokens_not_ours(void **state)
{
    (void)state;
    player_claims_t c;
    char why[200];
    static const char *const bad[] = {
        "{\"iss\":\"rankd\",\"sub\":\"a b\",\"iat\":1795824000,\"exp\":1795824600}",        /* player id */
        "{\"iss\":\"rankd\",\"sub\":\"..\",\"iat\":1795824000,\"exp\":1795824600}",
        "{\"iss\":\"rankd\",\"sub\":\"alice\",\"iat\":1795824000,\"exp\":1795924600}",      /* over a day */
        "{\"iss\":\"rankd\",\"sub\":\"alice\",\"iat\":1795924000,\"exp\":1795925600}",      /* in the future */
        "{\"iss\":\"rankd\",\"sub\":\"alice\",\"iat\":1795824000,\"exp\":1795824600.5}",    /* exp not whole */
        "{\"iss\":\"rankd\",\"sub\":\"alice\",\"exp\":1795824600}",                         /* no iat */
        "{\"iss\":\"rankd\",\"sub\":\"alice\",\"iat\":1795824000,\"exp\":1795824600,\"boards\":[]}",
        "{\"iss\":\"rankd\",\"sub\":\"alice\",\"iat\":1795824000,\"exp\":1795824600,\"boards\":[\"A!\"]}",
        "{\"iss\":\"rankd\",\"sub\":\"alice\",\"iat\":1795824000,\"exp\":1795824600,\"boards\":\"arcade\"}",
        "{\"iss\":\"rankd\",\"sub\":\"alice\",\"sub\":\"bob\",\"iat\":1795824000,\"exp\":1795824600}", /* twice */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *t = forge("{\"alg\":\"HS256\"}", bad[i], SECRET);
        token_verdict_t v = verify(SECRET, NULL, t, NOW, &c, why);
        if (i == 9)
            assert_int_equal(v, TOKEN_NOT_MINE); /* duplicate keys: not a JSON object we read */
        else
            assert_int_equal(v, TOKEN_INVALID);
        free(t);
    }
    /* Another issuer's, a key, garbage: not ours (the next source may take them). */
    char *other = forge("{\"alg\":\"RS256\"}", "{\"iss\":\"https://securetoken.google.com/x\",\"sub\":\"a\"}", NULL);
    assert_int_equal(verify(SECRET, NULL, other, NOW, &c, why), TOKEN_NOT_MINE);
    free(other);
    assert_int_equal(verify(SECRET, NULL, "test-write-key-0001", NOW, &c, why), TOKEN_NOT_MINE);
    assert_int_equal(verify(SECRET, NULL, "a.b.c", NOW, &c, why), TOKEN_NOT_MINE);
    assert_int_equal(verify(SECRET, NULL, "a.b.c.d", NOW, &c, why), TOKEN_NOT_MINE);
    assert_int_equal(verify(SECRET, NULL, "..", NOW, &c, why), TOKEN_NOT_MINE);
    assert_int_equal(verify(SECRET, NULL, "", NOW, &c, why), TOKEN_NOT_MINE);
}

static void test_the_cache_holds_a_token_until_its_exp(void **state)
{
    (void)state;
    token_cache_t *tc = token_cache_new(4);
    unsigned char d1[32] = {1}, d2[32] = {2};
    player_claims_t c = {.player = "alice", .exp_ms = 5000}, out;
    assert_false(token_cache_get(tc, d1, 0, &out));
    token_cache_put(tc, d1, &c);
    assert_true(token_cache_get(tc, d1, 4999, &out));
    assert_string_equal(out.player, "alice");
    assert_false(token_cache_get(tc, d1, 5000, &out));
    assert_false(token_cache_get(tc, d2, 0, &out));
    token_cache_clear(tc);
    assert_false(token_cache_get(tc, d1, 0, &out));
    token_cache_free(tc);
}

static void test_revocations_keep_the_latest_instant(void **state)
{
    (void)state;
    revocations_t *r = revocations_new();
    assert_false(revocations_loaded(r));
    assert_int_equal(revocations_before(r, "alice"), 0);
    revocations_note(r, "alice", 5, 100);
    revocations_note(r, "alice", 5, 50);
    assert_int_equal(revocations_before(r, "alice"), 100);
    char name[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "p%d", i);
        revocations_note(r, name, strlen(name), i + 1);
    }
    assert_int_equal(revocations_count(r), 1001);
    assert_int_equal(revocations_before(r, "p999"), 1000);
    assert_int_equal(revocations_before(r, "alice"), 100);
    revocations_mark_loaded(r);
    assert_true(revocations_loaded(r));
    revocations_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_minted_token_verifies_with_its_claims),
        cmocka_unit_test(test_tampered_wrongly_signed_and_alg_none_tokens_are_invalid),
        cmocka_unit_test(test_bad_claims_are_invalid_and_other_tokens_not_ours),
        cmocka_unit_test(test_the_cache_holds_a_token_until_its_exp),
        cmocka_unit_test(test_revocations_keep_the_latest_instant),
    };
    return cmocka_run_group_tests_name("player_token", tests, NULL, NULL);
}
