/*
 * api/read_pipeline.h — how a ranked read is answered, from its route to its bytes: one state
 * machine, in api/read_pipeline.c.
 *
 *   BOARD ──► BIND ──► CACHE ──hit──────────────────────────────► DONE
 *     │ (not in the        │ busy (another request computes it)      ▲
 *     │  board cache:      ▼                                         │
 *     │  loaded on an   PARKED ──settled: hit─────────────────────────┤
 *     │  offload thread)   │ settled: miss (claimed now)             │
 *     ▼                    ▼                                         │
 *   (error) ◄──────────  STORE ──► RENDER (and insert into L1) ──────┘
 *                                    │ nothing found, and the handler has a missing():
 *                                    ▼
 *                                 MISSING (on an offload thread) ──► DONE
 *
 * STORE reads through the Redis pipe when Redis answers the window; a cold window's read
 * then waits its turn behind the window's load (worker/turns.h), or PostgreSQL answers on an
 * offload thread; a read only PostgreSQL can answer (consistency=strong, an old window, Redis
 * down) goes to the offload threads at once. A /v1/batch item runs every state in place (it
 * is off the event loop already) and never parks.
 *
 * A handler validates what needs no board, fills a read_request_t, and hands it over with
 * read_pipeline_run(): its bind() (what needs the board: the window, a cursor's board) and
 * render() each run once, whatever the states in between waited on.
 */
#ifndef RANKD_API_READ_PIPELINE_H
#define RANKD_API_READ_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "api/app.h"
#include "core/order.h"
#include "core/rank_style.h"
#include "store/queries.h"
#include "util/buf.h"

#define READ_IDS_MAX 100

typedef enum { READ_PAGE, READ_CURSOR, READ_PLAYERS, READ_AROUND, READ_SCORE } read_kind_t;

/* What is read: a page by offset or cursor, named players, the players around one, or how many
 * standings a score would follow. */
typedef struct {
    read_kind_t kind;
    int64_t day;          /* the window; bind() sets it */
    int limit;            /* READ_PAGE, READ_CURSOR */
    int64_t offset;       /* READ_PAGE */
    order_pos_t pos;      /* READ_CURSOR: where the page starts */
    bool backward;        /* READ_CURSOR */
    const char *ids[READ_IDS_MAX]; /* READ_PLAYERS: point into `player` or `ids_text` */
    size_t n_ids;
    char player[PLAYER_ID_MAX + 1]; /* READ_AROUND's player, or READ_PLAYERS's only id */
    char *ids_text;       /* READ_PLAYERS with a list: its ids, NUL-separated (owned) */
    int before, after;    /* READ_AROUND */
    int64_t score;        /* READ_SCORE: the score whose rank is asked (entries_t.at_or_before) */
    rank_style_t style;   /* the rank numbers shown (core/rank_style.h) */
    bool strong;          /* consistency=strong: the primary answers (the pipeline sets it) */
    bool closed;          /* a window before the current one (the pipeline sets it) */
    bool league;          /* a standing on a league board: with its cohort, from PostgreSQL alone */
} read_t;

typedef struct read_request read_request_t;

struct read_request {
    route_id_t route;     /* the cache key's first part */
    read_t read;
    /* What the handler parsed that bind() needs (a cursor); the pipeline does not look at it. */
    void *parsed;
    size_t parsed_len;
    /* With the board known: check what needs it, set read.day, and write the parameters that
     * shape the answer into `key` (the rest of its cache key). 0, or the error written. */
    int (*bind)(app_t *app, http_req_t *req, const board_t *b, read_request_t *rq, buf_t *key);
    /* Render what was read into req (the status: 200, or an error such as 404). */
    int (*render)(app_t *app, http_req_t *req, const board_t *b, const read_t *r, const entries_t *e);
    /* When the read found nothing (no entry), this answers instead of render(), off the event
     * loop (it may read PostgreSQL): a hidden player's own view (api/moderation.c). NULL: render()
     * answers. */
    int (*missing)(app_t *app, http_req_t *req, const board_t *b, const read_t *r);
};

/*
 * Answer `rq` for route `rt` (its board segment not checked yet): now, or later through
 * req->pending (then 0 is returned, as from any handler that leaves work running). Takes
 * rq->read.ids_text over, and copies `parsed`.
 */
int read_pipeline_run(app_t *app, const route_t *rt, http_req_t *req, read_request_t *rq);

#endif
