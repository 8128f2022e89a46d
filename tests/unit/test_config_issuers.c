/*
 * tests/unit/test_config_issuers.c — auth.issuers and auth.clock_skew_s (config/config.h): every
 * field, the defaults, and each refusal at its file:line:column with the reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

static char path[] = "/tmp/rankd-test-issuers-XXXXXX";
static char *errs;
static size_t errs_len;

#define PRIMARY "postgres:\n  primary: \"host=127.0.0.1 dbname=rankd\"\n"
/* An Ed25519 JWKS (RFC 8037's example key). */
#define ED_JWKS "{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": \"k1\", " \
                "\"x\": \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}"

static rankd_config_t *load(const char *yaml)
{
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    fputs(yaml, out);
    fclose(out);
    free(errs);
    errs = NULL;
    FILE *e = open_memstream(&errs, &errs_len);
    rankd_config_t *cfg = config_load(path, e);
    fclose(e);
    return cfg;
}

static void expect_error(const char *yaml, const char *want)
{
    rankd_config_t *cfg = load(yaml);
    char full[512];
    snprintf(full, sizeof full, "%s%s", want[0] == ':' ? path : "", want);
    if (cfg != NULL || errs == NULL || strstr(errs, full) == NULL)
        fail_msg("expected\n  %s\ngot\n%s", full, errs ? errs : "(loaded)");
    config_free(cfg);
}

static void test_issuers_load(void **state)
{
    (void)state;
    rankd_config_t *cfg = load(PRIMARY
        "auth:\n"
        "  clock_skew_s: 30\n"
        "  issuers:\n"
        "    - issuer: https://securetoken.google.com/my-game\n"
        "      audience: my-game\n"
        "      jwks_url: https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com\n"
        "    - issuer: https://idp.test/\n"
        "      audience: game\n"
        "      player_claim: player_id\n"
        "      clock_skew_s: 0\n"
        "      keys: " ED_JWKS "\n"
        "    - issuer: local\n"
        "      audience: game\n"
        "      jwks_url: http://127.0.0.1:8089/jwks.json\n"
        "    - issuer: local6\n"
        "      audience: game\n"
        "      jwks_url: \"http://[::1]:8089/jwks\"\n");
    if (cfg == NULL)
        fail_msg("%s", errs);
    assert_int_equal(cfg->n_issuers, 4);
    assert_int_equal(cfg->issuer_clock_skew_s, 30);
    assert_string_equal(cfg->issuers[0].issuer, "https://securetoken.google.com/my-game");
    assert_string_equal(cfg->issuers[0].audience, "my-game");
    assert_non_null(strstr(cfg->issuers[0].jwks_url, "securetoken@system"));
    assert_null(cfg->issuers[0].keys);
    assert_string_equal(cfg->issuers[0].player_claim, "sub");
    assert_int_equal(config_issuer_skew(cfg, 0), 30); /* the global one */
    assert_null(cfg->issuers[1].jwks_url);
    assert_non_null(strstr(cfg->issuers[1].keys, "\"kty\":\"OKP\""));
    assert_string_equal(cfg->issuers[1].player_claim, "player_id");
    assert_int_equal(config_issuer_skew(cfg, 1), 0);
    assert_true(config_issuers_equal(cfg, cfg));
    rankd_config_t *none = load(PRIMARY);
    assert_non_null(none);
    assert_false(config_issuers_equal(cfg, none));
    assert_true(config_issuers_equal(none, none));
    config_free(none);
    config_free(cfg);

    cfg = load(PRIMARY);
    assert_non_null(cfg);
    assert_int_equal(cfg->n_issuers, 0);
    assert_int_equal(cfg->issuer_clock_skew_s, 60); /* the default */
    config_free(cfg);
}

static void test_issuer_refusals(void **state)
{
    (void)state;
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      jwks_url: http://idp.example.com/jwks\n",
                 ":7:17: auth.issuers.jwks_url: must be https://: plain http:// is accepted for a loopback host only");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      jwks_url: ftp://x/jwks\n",
                 ":7:17: auth.issuers.jwks_url: must be an https:// URL");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      jwks_url: https://u:p@x/jwks\n",
                 ":7:17: auth.issuers.jwks_url: must name a host, and no user or password");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      jwks_url: http://127.0.0.1.evil.test/\n",
                 ":7:17: auth.issuers.jwks_url: must be https://");
    expect_error(PRIMARY "auth:\n  issuers:\n    - audience: b\n      jwks_url: https://x/\n",
                 ":5:7: auth.issuers: entry is missing \"issuer\"");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      jwks_url: https://x/\n",
                 ":5:7: auth.issuers: entry is missing \"audience\"");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n",
                 ":5:7: auth.issuers: entry has neither \"jwks_url\" nor \"keys\"");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      jwks_url: https://x/\n"
                 "      keys: " ED_JWKS "\n",
                 ":8:13: auth.issuers: give jwks_url or keys, not both");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      keys: {\"keys\": []}\n",
                 ":7:13: auth.issuers: keys: no usable key among its 0");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      keys: [1]\n",
                 ":7:13: auth.issuers.keys: expected a mapping, got a list");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      jwks_url: https://x/\n"
                 "    - issuer: a\n      audience: c\n      jwks_url: https://y/\n",
                 ":8:15: auth.issuers: duplicate issuer \"a\" (first at line 5)");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      jwks_url: https://x/\n"
                 "      scope: x\n",
                 ":8:7: unknown key \"scope\" in auth.issuers");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: a\n      audience: b\n      jwks_url: https://x/\n"
                 "      clock_skew_s: 3601\n",
                 ":8:21: auth.issuers.clock_skew_s:");
    expect_error(PRIMARY "auth:\n  clock_skew_s: -1\n", ":4:17: auth.clock_skew_s:");
    expect_error(PRIMARY "auth:\n  issuers:\n    - issuer: rankd\n      audience: b\n      jwks_url: https://x/\n",
                 ":5:15: auth.issuers: issuer \"rankd\" is the issuer of rankd's own player tokens");
    expect_error(PRIMARY "auth:\n  issuers: yes\n", ":4:12: auth.issuers: expected a list, got a scalar");
}

static int setup(void **state)
{
    (void)state;
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    free(errs);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issuers_load),
        cmocka_unit_test(test_issuer_refusals),
    };
    return cmocka_run_group_tests_name("config_issuers", tests, setup, teardown);
}
