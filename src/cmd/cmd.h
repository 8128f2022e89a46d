/*
 * cmd/cmd.h — rankd's commands, each the body of one `rankd <command>` (main.c parses the
 * command line and calls it): serve (cmd/serve.c), and the one-shot operator commands
 * (cmd/tools.c). Each returns the process's exit status.
 */
#ifndef RANKD_CMD_CMD_H
#define RANKD_CMD_CMD_H

#include <libpq-fe.h>

#include "config/config.h"

/* Serve until SIGTERM or SIGINT; 0 after a clean drain. */
int cmd_serve(rankd_config_t *cfg);

/* rankd migrate up|status|verify (`what`); 2 for another word. */
int cmd_migrate(const rankd_config_t *cfg, const char *what);
/* rankd refresh [--view NAME] [--if-older-than D]: `view` and `older` may be NULL. */
int cmd_refresh(const rankd_config_t *cfg, const char *view, const char *older);
/* rankd verify / rebuild-cache [--board B] (`board` NULL: every board). */
int cmd_verify(const rankd_config_t *cfg, const char *board);
int cmd_rebuild_cache(const rankd_config_t *cfg, const char *board);
/* rankd import --board B [--mode M] [--format F] [FILE|-]. */
int cmd_import(const rankd_config_t *cfg, const char *board, const char *mode, const char *format, const char *file);
/* rankd export --board B [--window W] [--format F] [--rank-style S] [FILE|-]. */
int cmd_export(const rankd_config_t *cfg, const char *board, const char *window, const char *format,
               const char *rank_style, const char *file);

/* The primary, for a command (NULL, said on stderr, when it does not answer). */
PGconn *cmd_connect_primary(const rankd_config_t *cfg);
/* Warn when every user of the machine may read the configuration file (it may hold keys). */
void cmd_warn_if_config_exposed(const rankd_config_t *cfg);

#endif
