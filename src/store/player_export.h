/*
 * store/player_export.h — all that rankd holds about one player (API.md, "Import and export"),
 * for a request for their data: every standing on every board and window (a closed window's from
 * its archive, with the rank it closed with) and every logged submission, read in one statement,
 * so from one snapshot.
 */
#ifndef RANKD_STORE_PLAYER_EXPORT_H
#define RANKD_STORE_PLAYER_EXPORT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/must_use.h"

/*
 * Append the PlayerExport object of `player` (len bytes, a valid player id) to `out`, read on `c`
 * (the primary). A standing a moderator hid is flagged "hidden":true when `moderator` (an admin's
 * export); the player's own shows it as any other (a shadow ban). False with PostgreSQL's message
 * in err (for the log, not the client) when the statement failed; `out` is then as it was.
 */
MUST_USE bool player_export_render(PGconn *c, const char *player, size_t len, bool moderator, buf_t *out, char *err,
                                   size_t errlen);

#endif
