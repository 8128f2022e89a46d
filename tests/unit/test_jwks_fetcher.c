/*
 * tests/unit/test_jwks_fetcher.c — the issuers' key sets kept fresh (worker/jwks_fetcher.h), with
 * a stand-in fetch and a clock the test moves: the first fetch, the refresh at the answer's
 * max-age (and its bounds), a rotation found through an unknown kid (rate-limited), an outage
 * that keeps the cached keys working and shows in /readyz and /metrics, and the retries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "config/config.h"
#include "jwt_sign.h"
#include "util/buf.h"
#include "worker/jwks_fetcher.h"

#define T0 1800000000000LL /* ms */
#define ISS "https://idp.test/game"

static int64_t now_ms = T0;
static int64_t test_now(void)
{
    return now_ms;
}

/* The stand-in provider: what it answers next. */
static struct {
    char *doc;       /* NULL: the fetch fails */
    int max_age_s;   /* -1: no Cache-Control */
    int calls;
} idp;

static bool fake_fetch(void *arg, const char *url, char **body, size_t *len, int *max_age_s, char *why, size_t n)
{
    (void)arg;
    assert_string_equal(url, "https://idp.test/jwks.json");
    idp.calls++;
    if (idp.doc == NULL) {
        snprintf(why, n, "Failed to connect to idp.test port 443: Connection refused");
        return false;
    }
    *body = strdup(idp.doc);
    *len = strlen(idp.doc);
    *max_age_s = idp.max_age_s;
    return true;
}

static EVP_PKEY *k1, *k2, *k3;

static void serve(EVP_PKEY *a, const char *kid_a, EVP_PKEY *b, const char *kid_b, int max_age)
{
    json_t *doc = json_pack("{s:[]}", "keys");
    json_array_append_new(json_object_get(doc, "keys"), jwk_of(a, kid_a));
    if (b)
        json_array_append_new(json_object_get(doc, "keys"), jwk_of(b, kid_b));
    free(idp.doc);
    idp.doc = json_dumps(doc, JSON_COMPACT);
    idp.max_age_s = max_age;
    json_decref(doc);
}

static void outage(void)
{
    free(idp.doc);
    idp.doc = NULL;
}

static char *token(EVP_PKEY *k, const char *alg, const char *kid)
{
    return sign(k, alg, kid,
                json_pack("{s:s,s:s,s:s,s:I}", "iss", ISS, "aud", "game", "sub", "p1", "exp",
                          (json_int_t)(now_ms / 1000 + 600)));
}

/* The verdict on a token signed by `k` under `kid`. */
static jwt_refusal_t verdict(jwks_t *j, EVP_PKEY *k, const char *alg, const char *kid)
{
    char *t = token(k, alg, kid);
    jwt_result_t res;
    jwks_verdict_t v = jwks_verify(j, t, strlen(t), now_ms / 1000, &res);
    free(t);
    assert_int_not_equal(v, JWKS_NOT_MINE);
    bool ok = v == JWKS_VALID;
    assert_int_equal(ok, res.refusal == JWT_OK);
    if (ok)
        assert_string_equal(res.player, "p1");
    return res.refusal;
}

static rankd_config_t cfg;
static config_issuer_t issuer = {.issuer = ISS, .audience = "game", .jwks_url = "https://idp.test/jwks.json",
                                 .player_claim = "sub", .clock_skew_s = -1};

static jwks_t *start(void)
{
    cfg.issuers = &issuer;
    cfg.n_issuers = 1;
    cfg.issuer_clock_skew_s = 60;
    jwks_options_t opt = {.fetch = fake_fetch, .now_ms = test_now, .no_thread = true};
    idp.calls = 0;
    now_ms = T0;
    return jwks_start(&cfg, &opt);
}

static char *rendered(jwks_t *j, bool metrics)
{
    static buf_t b;
    buf_free(&b);
    buf_init(&b);
    if (metrics)
        jwks_render_metrics(j, &b);
    else
        jwks_render_ready(j, &b);
    return b.data;
}

static void has(const char *text, const char *want)
{
    if (text == NULL || strstr(text, want) == NULL)
        fail_msg("wanted\n  %s\nin\n%s", want, text ? text : "(nothing)");
}

static void test_first_fetch_and_refresh_at_max_age(void **state)
{
    (void)state;
    serve(k1, "a", NULL, NULL, 120);
    jwks_t *j = start();
    assert_string_equal(jwks_state(j), "degraded"); /* before any fetch */
    assert_int_equal(verdict(j, k1, "RS256", "a"), JWT_UNKNOWN_KEY); /* no keys yet */
    assert_int_equal(jwks_run_due(j), 1);
    assert_int_equal(verdict(j, k1, "RS256", "a"), JWT_OK);
    assert_string_equal(jwks_state(j), "ok");
    assert_int_equal(jwks_run_due(j), 0); /* nothing due */
    now_ms += 119 * 1000;
    assert_int_equal(jwks_run_due(j), 0);
    now_ms += 1000;
    serve(k2, "b", NULL, NULL, 120); /* rotated at the refresh */
    assert_int_equal(jwks_run_due(j), 1);
    assert_int_equal(verdict(j, k2, "RS256", "b"), JWT_OK);
    assert_int_equal(verdict(j, k1, "RS256", "a"), JWT_UNKNOWN_KEY);
    has(rendered(j, true), "rankd_jwks_fetches_total{issuer=\"" ISS "\"} 2\n");
    has(rendered(j, true), "rankd_jwks_keys{issuer=\"" ISS "\"} 1\n");
    has(rendered(j, true), "rankd_issuer_tokens_verified_total{issuer=\"" ISS "\"} 2\n");
    jwks_stop(j);
}

static void test_max_age_is_bounded(void **state)
{
    (void)state;
    struct { int max_age, want_s; } cases[] = {{5, 60}, {0, 60}, {-1, 3600}, {1000000, 86400}, {600, 600}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        serve(k1, "a", NULL, NULL, cases[i].max_age);
        jwks_t *j = start();
        assert_int_equal(jwks_run_due(j), 1);
        now_ms += (int64_t)cases[i].want_s * 1000 - 1;
        assert_int_equal(jwks_run_due(j), 0);
        now_ms += 1;
        assert_int_equal(jwks_run_due(j), 1);
        jwks_stop(j);
    }
}

static void test_unknown_kid_fetches_again_rate_limited(void **state)
{
    (void)state;
    serve(k1, "a", NULL, NULL, 3600);
    jwks_t *j = start();
    assert_int_equal(jwks_run_due(j), 1);
    serve(k1, "a", k2, "b", 3600); /* the provider rotates: b signs new tokens */
    /* Within 30 s of the last fetch: no fetch, counted as limited. */
    now_ms += 29 * 1000;
    assert_int_equal(verdict(j, k2, "RS256", "b"), JWT_UNKNOWN_KEY);
    assert_int_equal(jwks_run_due(j), 0);
    has(rendered(j, true), "rankd_jwks_kid_refetches_limited_total{issuer=\"" ISS "\"} 1\n");
    now_ms += 1000;
    assert_int_equal(verdict(j, k2, "RS256", "b"), JWT_UNKNOWN_KEY); /* asks for a fetch */
    assert_int_equal(verdict(j, k3, "RS256", "made-up"), JWT_UNKNOWN_KEY); /* already asked: no second */
    assert_int_equal(jwks_run_due(j), 1);
    assert_int_equal(verdict(j, k2, "RS256", "b"), JWT_OK);
    assert_int_equal(verdict(j, k1, "RS256", "a"), JWT_OK);
    has(rendered(j, true), "rankd_jwks_kid_refetches_total{issuer=\"" ISS "\"} 1\n");
    /* A flood of made-up kids right after: one fetch per 30 s at most. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(verdict(j, k3, "RS256", "made-up"), JWT_UNKNOWN_KEY);
    assert_int_equal(jwks_run_due(j), 0);
    has(rendered(j, true), "rankd_jwks_kid_refetches_limited_total{issuer=\"" ISS "\"} 101\n");
    has(rendered(j, true), "rankd_issuer_tokens_refused_total{reason=\"unknown_key\"} 103\n");
    assert_int_equal(idp.calls, 2);
    jwks_stop(j);
}

static void test_outage_keeps_cached_keys(void **state)
{
    (void)state;
    serve(k3, "c", NULL, NULL, 60);
    jwks_t *j = start();
    assert_int_equal(jwks_run_due(j), 1);
    outage();
    now_ms += 60 * 1000;
    assert_int_equal(jwks_run_due(j), 1); /* fails */
    assert_int_equal(verdict(j, k3, "RS256", "c"), JWT_OK); /* the cached key works on */
    assert_string_equal(jwks_state(j), "degraded");
    char *ready = rendered(j, false);
    has(ready, "\"state\":\"degraded\",\"keys\":1,\"keys_age_s\":60,");
    has(ready, "\"detail\":\"1 keys, 60 s old, in use; last fetch failed: Failed to connect to idp.test port 443: "
               "Connection refused\"");
    char *m = rendered(j, true);
    has(m, "rankd_jwks_fetch_failures_total{issuer=\"" ISS "\"} 1\n");
    has(m, "rankd_jwks_last_fetch_failed{issuer=\"" ISS "\"} 1\n");
    has(m, "rankd_jwks_keys_age_seconds{issuer=\"" ISS "\"} 60\n");
    /* Retries after 5 s, then 10 s, ... */
    now_ms += 4999;
    assert_int_equal(jwks_run_due(j), 0);
    now_ms += 1;
    assert_int_equal(jwks_run_due(j), 1);
    now_ms += 9999;
    assert_int_equal(jwks_run_due(j), 0);
    now_ms += 1;
    assert_int_equal(jwks_run_due(j), 1);
    /* A document with no usable key is a failure too: the cached keys stay. */
    free(idp.doc);
    idp.doc = strdup("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}");
    now_ms += 20000;
    assert_int_equal(jwks_run_due(j), 1);
    assert_int_equal(verdict(j, k3, "RS256", "c"), JWT_OK);
    has(rendered(j, false), "last fetch failed: no usable key among its 1");
    /* Back: ok again. */
    serve(k3, "c", NULL, NULL, 60);
    now_ms += 60000;
    assert_int_equal(jwks_run_due(j), 1);
    assert_string_equal(jwks_state(j), "ok");
    has(rendered(j, false), "\"state\":\"ok\",\"keys\":1,\"keys_age_s\":0,\"last_error\":null");
    jwks_stop(j);
}

static void test_no_keys_yet_refuses_and_says_so(void **state)
{
    (void)state;
    outage();
    jwks_t *j = start();
    assert_int_equal(jwks_run_due(j), 1);
    assert_int_equal(verdict(j, k1, "RS256", "a"), JWT_UNKNOWN_KEY);
    assert_string_equal(jwks_state(j), "degraded");
    has(rendered(j, false), "\"state\":\"down\",\"keys\":0,\"keys_age_s\":-1,");
    has(rendered(j, false), "no keys yet: its tokens are refused");
    jwks_stop(j);
}

static void test_issuers_and_inline_keys(void **state)
{
    (void)state;
    /* A second issuer with inline keys: never fetched, verified at once. */
    json_t *doc = json_pack("{s:[o]}", "keys", jwk_of(k2, "inline"));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    config_issuer_t two[2] = {issuer, {.issuer = "local", .audience = "game", .keys = text, .player_claim = "sub",
                                       .clock_skew_s = 0}};
    rankd_config_t c = {.issuers = two, .n_issuers = 2, .issuer_clock_skew_s = 60};
    jwks_options_t opt = {.fetch = fake_fetch, .now_ms = test_now, .no_thread = true};
    outage();
    idp.calls = 0;
    jwks_t *j = jwks_start(&c, &opt);
    char *t = sign(k2, "RS256", "inline",
                   json_pack("{s:s,s:s,s:s,s:I}", "iss", "local", "aud", "game", "sub", "p2", "exp",
                             (json_int_t)(now_ms / 1000 + 60)));
    jwt_result_t res;
    assert_int_equal(jwks_verify(j, t, strlen(t), now_ms / 1000, &res), JWKS_VALID);
    assert_string_equal(res.player, "p2");
    assert_string_equal(res.issuer, "local");
    assert_int_equal(res.expires_at, now_ms / 1000 + 60);
    free(t);
    assert_int_equal(jwks_run_due(j), 1); /* only the URL one */
    /* An issuer nobody trusts. */
    t = sign(k2, "RS256", "inline",
             json_pack("{s:s,s:s,s:s,s:I}", "iss", "https://evil.test", "aud", "game", "sub", "p2", "exp",
                       (json_int_t)(now_ms / 1000 + 60)));
    assert_int_equal(jwks_verify(j, t, strlen(t), now_ms / 1000, &res), JWKS_NOT_MINE); /* another source's */
    assert_int_equal(res.refusal, JWT_WRONG_ISSUER);
    free(t);
    /* Not a JWT at all (a wrong API key): nobody's token here either. */
    assert_int_equal(jwks_verify(j, "not-a-key-at-all", 16, now_ms / 1000, &res), JWKS_NOT_MINE);
    /* alg none claiming a trusted issuer: this source's, refused, and counted. */
    t = sign(NULL, "none", "inline",
             json_pack("{s:s,s:s,s:s,s:I}", "iss", "local", "aud", "game", "sub", "p2", "exp",
                       (json_int_t)(now_ms / 1000 + 60)));
    assert_int_equal(jwks_verify(j, t, strlen(t), now_ms / 1000, &res), JWKS_INVALID);
    assert_int_equal(res.refusal, JWT_ALG_REFUSED);
    assert_string_equal(res.issuer, "local");
    free(t);
    has(rendered(j, false), "{\"issuer\":\"local\",\"state\":\"ok\",\"keys\":1,\"keys_age_s\":0,\"last_error\":null,"
                            "\"detail\":\"1 keys, 0 s old (inline)\"}");
    has(rendered(j, true), "rankd_issuer_tokens_refused_total{reason=\"wrong_issuer\"} 0\n");
    has(rendered(j, true), "rankd_issuer_tokens_refused_total{reason=\"alg_refused\"} 1\n");
    jwks_stop(j);
    free(text);
    assert_null(jwks_start(&(rankd_config_t){.n_issuers = 0}, &opt));
    assert_int_equal(jwks_verify(NULL, "a.b.c", 5, 0, &res), JWKS_NOT_MINE);
    assert_string_equal(jwks_state(NULL), "disabled");
}

static int setup(void **state)
{
    (void)state;
    k1 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    k2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    k3 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    return k1 && k2 && k3 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(k1), EVP_PKEY_free(k2), EVP_PKEY_free(k3);
    free(idp.doc);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_fetch_and_refresh_at_max_age),
        cmocka_unit_test(test_max_age_is_bounded),
        cmocka_unit_test(test_unknown_kid_fetches_again_rate_limited),
        cmocka_unit_test(test_outage_keeps_cached_keys),
        cmocka_unit_test(test_no_keys_yet_refuses_and_says_so),
        cmocka_unit_test(test_issuers_and_inline_keys),
    };
    return cmocka_run_group_tests_name("jwks_fetcher", tests, setup, teardown);
}
