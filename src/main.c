/*
 * main.c — rankd's command line: which command, with which options; the commands themselves
 * are in cmd/ (serve, migrate, refresh, verify, rebuild-cache, import, export), config check and
 * gen-key here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "api/app.h"
#include "cmd/cmd.h"
#include "obs/log.h"
#include "store/pg_error.h"
#include "util/clock.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: rankd serve [-c FILE]\n"
            "       rankd migrate up|status|verify [-c FILE]\n"
            "       rankd refresh [--view NAME] [--if-older-than 60s] [-c FILE]\n"
            "       rankd verify [--board B] [-c FILE]\n"
            "       rankd rebuild-cache [--board B] [-c FILE]\n"
            "       rankd import --board B [--mode submit|replace] [--format csv|ndjson] [FILE|-] [-c FILE]\n"
            "       rankd export --board B [--window W] [--format csv|ndjson] [--rank-style ordinal|competition|dense]\n"
            "                    [FILE|-] [-c FILE]\n"
            "       rankd config check [-c FILE]\n"
            "       rankd config gen-key      (a random key or secret: 32 bytes, base64url)\n"
            "       rankd version\n"
            "       rankd routes              (the routes this binary serves, one per line: METHODS PATH)\n");
    return 2;
}

/* 32 bytes from OpenSSL's generator, base64url without padding (43 characters): a bearer key or
 * cursor secret no one can guess. */
static int gen_key(void)
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        fprintf(stderr, "rankd: the random generator failed\n");
        return 1;
    }
    unsigned char text[4 * ((sizeof raw + 2) / 3) + 1];
    int n = EVP_EncodeBlock(text, raw, (int)sizeof raw);
    OPENSSL_cleanse(raw, sizeof raw);
    while (n > 0 && text[n - 1] == '=')
        text[--n] = '\0';
    for (int i = 0; i < n; i++)
        text[i] = text[i] == '+' ? '-' : text[i] == '/' ? '_' : text[i];
    printf("%s\n", (const char *)text);
    OPENSSL_cleanse(text, sizeof text);
    return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    arena_json_install(); /* before any jansson value exists */
    const char *config_path = "config/rankd.yaml";
    const char *board = NULL, *view = NULL, *older = NULL, *window = NULL, *format = NULL, *mode = NULL;
    const char *rank_style = NULL;
    const char *words[4] = {0};
    int n_words = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strcmp(argv[i], "--board") == 0 && i + 1 < argc)
            board = argv[++i];
        else if (strcmp(argv[i], "--window") == 0 && i + 1 < argc)
            window = argv[++i];
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            mode = argv[++i];
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
            format = argv[++i];
        else if (strcmp(argv[i], "--rank-style") == 0 && i + 1 < argc)
            rank_style = argv[++i];
        else if (strcmp(argv[i], "-") == 0 && n_words < 4)
            words[n_words++] = argv[i];
        else if (strcmp(argv[i], "--view") == 0 && i + 1 < argc)
            view = argv[++i];
        else if (strcmp(argv[i], "--if-older-than") == 0 && i + 1 < argc)
            older = argv[++i];
        else if (argv[i][0] == '-' || n_words == 4)
            return usage();
        else
            words[n_words++] = argv[i];
    }
    if (n_words == 0)
        return usage();
    const char *cmd = words[0];
    if (strcmp(cmd, "version") == 0) {
        printf("rankd %s\n", RANKD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "routes") == 0) { /* what this binary serves: "METHODS PATH" per route */
        for (route_id_t id = R_NONE + 1; id < R_COUNT; id++)
            printf("%s %s\n", api_route_methods(id), api_route_path(id));
        return 0;
    }
    if (strcmp(cmd, "config") == 0 && n_words == 2 && strcmp(words[1], "gen-key") == 0)
        return gen_key();
    bool check_only = strcmp(cmd, "config") == 0;
    if (check_only && (n_words != 2 || strcmp(words[1], "check") != 0))
        return usage();
    rankd_config_t *cfg = config_load(config_path, stderr);
    if (!cfg)
        return 1;
    log_set_level(cfg->log_level);
    /* Test-only (README, "Testing"): a clock the tests move, to cross a reset at will. */
    const char *test_clock = getenv("RANKD_TEST_CLOCK_FILE");
    if (test_clock && *test_clock) {
        if (!clock_test_follow(test_clock)) {
            fprintf(stderr, "rankd: cannot follow the test clock %s\n", test_clock);
            config_free(cfg);
            return 1;
        }
        log_warn(NULL, "the wall clock follows the test clock in %s (RANKD_TEST_CLOCK_FILE): not for production",
                 test_clock);
    }
    int rc;
    if (check_only) {
        cmd_warn_if_config_exposed(cfg);
        rc = config_check_secrets(cfg, stderr) == 0 ? 0 : 1;
        if (rc == 0)
            printf("%s: ok\n", config_path);
    } else if (strcmp(cmd, "serve") == 0 && n_words == 1) {
        rc = config_check_secrets(cfg, stderr) == 0 ? cmd_serve(cfg) : 1;
    } else if (strcmp(cmd, "migrate") == 0 && n_words == 2) {
        rc = cmd_migrate(cfg, words[1]);
        if (rc == 2)
            rc = usage();
    } else if (strcmp(cmd, "refresh") == 0 && n_words == 1) {
        rc = cmd_refresh(cfg, view, older);
    } else if (strcmp(cmd, "verify") == 0 && n_words == 1) {
        rc = cmd_verify(cfg, board);
    } else if (strcmp(cmd, "rebuild-cache") == 0 && n_words == 1) {
        rc = cmd_rebuild_cache(cfg, board);
    } else if (strcmp(cmd, "import") == 0 && n_words <= 2) {
        rc = cmd_import(cfg, board, mode, format, n_words == 2 ? words[1] : NULL);
    } else if (strcmp(cmd, "export") == 0 && n_words <= 2) {
        rc = cmd_export(cfg, board, window, format, rank_style, n_words == 2 ? words[1] : NULL);
    } else {
        rc = usage();
    }
    config_free(cfg);
    pg_secrets_forget(); /* wiped as the configuration's secrets are */
    return rc;
}
