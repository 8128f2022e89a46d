/*
 * api/live.h — live streams: a board's top, and a player's rank and neighbours, pushed to clients
 * as Server-Sent Events as they change.
 *
 * GET /v1/leaderboards/{board}/live?top=N opens a stream (text/event-stream, readable by a
 * browser's EventSource): its first event is the board's top N, the body GET …/entries?limit=N
 * answers (rank_style honoured), and then one each time that answer changes. Every instance hears
 * every committed change (worker/listener.h): a board's streams are computed again when a change
 * of the board is heard, at most once per live.min_interval_ms, once for all the listeners of the
 * same stream (board, N, rank style), and sent only when the answer differs from the last one
 * sent. Each event's id is "<window>:<n>.<h>", n the last transaction number of that window
 * heard here (0 before any) and h a hash of the answer: a client that reconnects (to any
 * instance) with an id of the same window and hash as the current answer gets no event until it
 * changes; with any other id it gets the current answer at once.
 *
 * GET …/players/{player}/live?around=K is a player's stream (api/live_player.h): the answer of
 * GET …/players/{player}/around?before=K&after=K with the player's rank and score, the rank the
 * stream's previous event gave (`previous_rank`) and who moved past the player since
 * (`overtaken_by`), computed again only for the changes heard that touch it. A window's end sends
 * a `reset` event naming the new window before the new window's answer (the wall clock is looked
 * at once a second while a stream is open). A stream counts as one read a minute against its
 * client's read bucket; when the bucket has none, the stream ends with a `gone` event (429).
 *
 * Answers are read from the primary (consistency=strong): a notice arrives after its commit, and
 * Redis may not have the commit yet when it does, so a read from it could miss what was heard.
 *
 * One thread, the hub's, computes and sends: streams due wait in a queue ordered by when each may
 * go (the one that waited longest first); it reads in place, as a /v1/batch item is read (from
 * the rank tier when it holds the window and has applied every commit an earlier answer from the
 * primary could hold, else from the primary), and offers each event to each listener's buffer
 * without waiting; a listener whose buffer cannot take an event (it does not read) is dropped,
 * its connection closed. Notices reach a board's streams through a record per board: its tops are
 * marked at each numbered transaction, its players' streams by a scan of their bounds. A comment
 * line every live.heartbeat_s keeps proxies from closing idle streams, and every board's top (and
 * any stream whose read failed) is checked then too.
 */
#ifndef RANKD_API_LIVE_H
#define RANKD_API_LIVE_H

#include <stddef.h>

#include "api/app.h"

typedef struct live_hub live_hub_t;

typedef struct {
    int max_listeners;    /* on this instance at once */
    int max_per_address;  /* of them from one client address */
    int min_interval_ms;  /* between two computations of one stream */
    int heartbeat_s;      /* between two comment lines (and checks of every board's top) */
    int send_timeout_s;   /* a listener whose events wait unread this long is dropped */
} live_opts_t;

/* The hub and its thread; NULL when it cannot start. */
live_hub_t *live_hub_start(app_t *app, const live_opts_t *o);
/* At a stop: every stream ends whole (a last `retry:` hint, then the body's end), new ones are
 * refused (503), and the thread stops. */
void live_hub_close(live_hub_t *h);
/* Free a closed hub (after the listener that tells it of changes stopped). */
void live_hub_free(live_hub_t *h);
/* A notice heard from PostgreSQL (its payload's lines, worker/listener.h): the streams of the
 * boards it names are computed again. `hub` is a live_hub_t. */
void live_hub_heard(void *hub, const char *payload);

typedef struct {
    size_t listeners;           /* open now */
    size_t streams;             /* distinct (board, N, rank style) computed */
    unsigned long long events;  /* events offered to listeners, since start */
    unsigned long long computed; /* answers computed, since start */
    unsigned long long dropped; /* listeners dropped for not reading, since start */
    unsigned long long charged; /* reads taken from clients' buckets for their streams' minutes */
    unsigned long long limited; /* streams ended because their client's reads ran out */
} live_counts_t;
void live_hub_counts(live_hub_t *h, live_counts_t *out);

#endif
