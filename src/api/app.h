/*
 * api/app.h — what every handler reaches: configuration, stores, writer.
 *
 * Built once at start and read-only afterwards, but for `live`, an atomic pointer a reload
 * (SIGHUP) swaps; the parts it points to (pools, caches, writer) do their own locking.
 */
#ifndef RANKD_API_APP_H
#define RANKD_API_APP_H

#include <jansson.h>
#include <stdatomic.h>

#include "cache/board_cache.h"
#include "cache/board_catalog.h"
#include "config/config.h"
#include "core/rank_style.h"
#include "http/dispatch.h"
#include "http/request.h"
#include "store/pg_pool.h"
#include "store/redis.h"
#include "worker/rebuilder.h"
#include "worker/writer.h"
#include "util/must_use.h"

/* Exports running (api/export.c): a slot each, and a wait for the last at shutdown. */
typedef struct exports exports_t;
exports_t *exports_new(void);
/* True when none is running any more within `timeout_ms`. */
MUST_USE bool exports_wait(exports_t *e, int timeout_ms);
void exports_free(exports_t *e);
/* For /metrics: running now; since start, sent whole and ended early. */
void exports_counts(exports_t *e, int *running, unsigned long long *finished, unsigned long long *cut);

/* Imports running (api/import.c): a slot each, and a wait for the last at shutdown. */
typedef struct imports imports_t;
imports_t *imports_new(void);
/* True when none is running any more within `timeout_ms`. */
MUST_USE bool imports_wait(imports_t *m, int timeout_ms);
void imports_free(imports_t *m);
/* For /metrics: running now; since start, committed and failed. */
void imports_counts(imports_t *m, int *running, unsigned long long *committed, unsigned long long *failed);

typedef struct app {
    const rankd_config_t *cfg;
    struct pg_router *router;  /* every PostgreSQL node; reads and writes pick theirs through it */
    pg_pool_t *primary;        /* the router's primary pool, for jobs that keep to the primary */
    redis_pool_t *redis;       /* NULL without Redis */
    rebuilder_t *rebuilder;    /* NULL without Redis */
    struct mark_watch *mark_watch; /* sees the numbers heard reach Redis's marks (worker/mark_watch.h); NULL without Redis */
    writer_t *writer;
    struct joiner *joiner;  /* tournament joins, committed in groups (worker/joiner.h) */
    struct events *events;  /* the end-of-window events' sender (worker/events.h); NULL: none */
    struct analyzer *analyzer; /* told the rows written, analyzes what grew (worker/analyzer.h); NULL: none */
    board_cache_t *boards;
    board_catalog_t *catalog;  /* every board known: reads go on from it while no PostgreSQL node answers */
    struct metrics *metrics;
    struct l1 *l1;             /* NULL when the response cache is off */
    struct rank_tier *tier;    /* the in-process rank tier; NULL when cache.rank_tier is 0 (off) */
    struct redis_pipe *pipe;   /* pipelined Redis reads; NULL without Redis */
    struct offload *offload;   /* threads for PostgreSQL reads of suspended requests */
    struct offload *admin;     /* one thread for operator jobs (view refresh, Redis rebuild), in turn */
    struct offload *encoder;   /* one thread compressing large answers off the event loop */
    struct turns *cold_turns;  /* reads of a window being loaded into Redis: one at a time */
    struct refresher *refresher; /* the upkeep jobs; NULL when refresh.interval_s is 0 */
    struct prober *prober;       /* what the probes say of Redis and the views, gathered each second */
    struct jwks *jwks;           /* the trusted issuers' keys (worker/jwks_fetcher.h); NULL: no auth.issuers */
    /* The HTTP server, for its counts in /metrics: NULL until it stands. */
    _Atomic(struct http_server *) http;
    exports_t *exports;          /* board exports streaming now (at most a few per instance) */
    struct live_hub *live_hub;   /* the live streams (api/live.h); NULL when live.max_listeners is 0 */
    imports_t *imports;          /* board imports running now (at most one per instance) */
    ratelimit_t *limits;         /* per-client token buckets */
    ratelimit_t *auth_failures;  /* per-address buckets of wrong keys (always on; its RL_READ kind) */
    struct player_auth *player_auth; /* player tokens' sources, cache and revocations (api/player_auth.h) */
    ratelimit_t *player_writes;  /* per-player buckets of player-token writes (limits.player_writes_per_s;
                                  * its RL_WRITE kind) */
    ratelimit_t *idem_keys;      /* per-key buckets of idempotency keys (limits.idempotency_keys_per_client;
                                  * its RL_READ kind) */
    /* What SIGHUP reloads (keys, CORS origins, limits, log level): cfg until the first reload.
     * Read with one atomic load, used within the call that loaded it (api/reload.c). */
    _Atomic(const rankd_config_t *) live;
    struct retired_cfg *retired; /* configurations reloads replaced, freed a minute later */
} app_t;

/* Route ids; api_route() fills one, api_handle() runs it. */
typedef enum {
    R_NONE = 0,
    R_HEALTHZ,
    R_READYZ,
    R_BOARDS,
    R_BOARD,
    R_ENTRIES,
    R_PLAYERS,
    R_PLAYER,
    R_AROUND,
    R_SCORES,
    R_SCORES_BATCH,
    R_BATCH,
    R_STATS,
    R_WINDOWS,
    R_STANDINGS,
    R_ACTIVITY,
    R_ADMIN_REFRESH,
    R_ADMIN_REBUILD,
    R_METRICS,
    R_OPENAPI,
    R_DASHBOARD,      /* /dashboard/ */
    R_DASHBOARD_ROOT, /* /dashboard: a redirect to /dashboard/ */
    R_DASHBOARD_FILE, /* /dashboard/{file}: the file's name in route_t.board */
    R_EXPORT,         /* /v1/leaderboards/{board}/export */
    R_PLAYER_EXPORT,  /* /v1/players/{player}/export */
    R_IMPORT,         /* /v1/leaderboards/{board}/import */
    R_ADMIN_VERIFY_TIER, /* /v1/admin/verify-tier */
    R_RANK_OF_SCORE,  /* /v1/leaderboards/{board}/rank */
    R_JOIN,           /* /v1/leaderboards/{board}/players/{player}/join */
    R_ATTEMPTS,       /* /v1/leaderboards/{board}/players/{player}/attempts */
    R_COHORT,         /* /v1/leaderboards/{board}/players/{player}/cohort */
    R_COHORT_ENTRIES, /* /v1/leaderboards/{board}/cohorts/{cohort}/entries: the cohort in route_t.player */
    R_EVENT,          /* /v1/events/{id}: the id in route_t.player */
    R_PLAYER_TOKENS,  /* /v1/players/{player}/tokens */
    R_HIDE,           /* /v1/leaderboards/{board}/players/{player}/hide (POST hides, DELETE restores) */
    R_HIDDEN,         /* /v1/leaderboards/{board}/hidden */
    R_FLAGGED,        /* /v1/leaderboards/{board}/flagged */
    R_LIVE,           /* /v1/leaderboards/{board}/live: the board's top as Server-Sent Events */
    R_PLAYER_LIVE,    /* /v1/leaderboards/{board}/players/{player}/live: a player's rank and neighbours */
    R_COUNT,
} route_id_t;

/* Route name for logs and metrics labels. */
const char *api_route_name(route_id_t id);
/* The path of a route as the OpenAPI document writes it ("/v1/leaderboards/{board}"), and the
 * methods it answers besides HEAD and OPTIONS ("GET, POST"); NULL for R_NONE and R_COUNT. */
const char *api_route_path(route_id_t id);
const char *api_route_methods(route_id_t id);

/* A matched route (http/dispatch.h): its id is a route_id_t. */
typedef http_route_t route_t;

/*
 * Match `path` and `method`: 404 (no route) or 405 (with req->allow) are
 * written into req and returned; 0 when matched. OPTIONS matches any route.
 */
MUST_USE int api_route(const char *method, const char *path, route_t *rt, http_req_t *req);

/* Check the caller's role for the route: 0, or 401/403 written into req. */
MUST_USE int api_authorize(const route_t *rt, http_req_t *req);
/* A request whose key is no configured key: counted, then drawn from its address's bucket of
 * refusals, the one of failed authentications (limits.failed_auths_per_s, whatever the other limits say), so that
 * keys cannot be guessed at full speed. Returns 0 (answer 401) or the 429 it answered. */
MUST_USE int api_auth_failed(app_t *app, http_req_t *req);
/* The burst of that bucket, in seconds' worth of limits.failed_auths_per_s (at start and reload). */
#define AUTH_FAILURES_BURST_S 4
/* The buckets of idempotency keys for limits.idempotency_keys_per_client = `n` (0: unlimited):
 * half of n at once and half of n a day after, so that a key holds at most n made within any
 * 24 hours, as long as they are kept (API.md). At start, and again at a reload with `rl`. */
ratelimit_t *api_idem_keys_new(int n);
void api_idem_keys_configure(ratelimit_t *rl, int n);
/* A write presenting `keys` idempotency keys (a batch's keyed items): 0, or the 429 written into
 * req when its key has made its limits.idempotency_keys_per_client of them. */
MUST_USE int api_idem_keys_take(app_t *app, http_req_t *req, int keys);
/* API.md: consistency=strong reads the primary, a privilege of write and admin keys: 0, or the
 * 403 written into req. */
MUST_USE int api_strong_forbidden(http_req_t *req);
/* The same at a request's headers, where a refusal is charged to its address's bucket of
 * refusals, the one of failed authentications (limits.failed_auths_per_s, whatever the other
 * limits say): a flood of strong reads without the privilege gets held-back 429s, as a flood of
 * wrong keys does. 0, or the 403 or 429 written into req. */
MUST_USE int api_strong_refused(app_t *app, http_req_t *req);
/* Take `cost` tokens of `kind` for req->client (API.md, "Rate limits"); 0, or the 429 written.
 * The verdict goes into req->ratelimit for the RateLimit-* headers. */
MUST_USE int api_rate_limit(app_t *app, http_req_t *req, rl_kind_t kind, int cost);
/* A batch at its headers: 429 when its client's bucket has not one token left, else nothing
 * taken and nothing said (its items are charged once its body is read). */
MUST_USE int api_rate_limit_peek(app_t *app, http_req_t *req, rl_kind_t kind);

/* Player tokens (api/player_auth.c). A bearer that is no configured key, judged as a player
 * token: 0 with req->player, req->role (read) and req->client ("p<player>") set; 1 when refused,
 * nothing written, the 401's message into why (the caller counts it as a wrong key); or the 503
 * written into req (revocations not loaded yet). */
MUST_USE int api_player_token(app_t *app, http_req_t *req, char *why, size_t why_len);
/* A player token on a route its read role does not cover: 0 when the route is one a token may
 * use (submissions, its own join and export), else the 403 naming the rule. */
MUST_USE int api_player_token_admit(const route_t *rt, http_req_t *req);
/* A write by req's player token (none: 0) for `player` on board `b` (a join when `join`): 0, or
 * the 403 naming the rule it breaks (its own player only, client_writes boards, its boards). */
MUST_USE int api_player_write_allowed(http_req_t *req, const board_t *b, const char *player, bool join);
/* A player token's writes, `cost` of them, drawn from its player's bucket (limits.player_writes_per_s,
 * keyed by the player, not the address): 0, or the 429 (Retry-After) written. No token: 0. */
MUST_USE int api_player_write_limit(app_t *app, http_req_t *req, int cost);
/* POST (mint) and DELETE (revoke) /v1/players/{player}/tokens (api/tokens.c). */
int api_player_tokens(app_t *app, const route_t *rt, http_req_t *req);

/* Run a matched, authorized route with its body; returns the status. */
int api_handle(app_t *app, const route_t *rt, http_req_t *req);
/* The calls through which the HTTP server reaches the API (http/dispatch.h). */
http_dispatch_t api_dispatch(app_t *app);

/* Handlers, one file per resource. */
int api_health(app_t *app, const route_t *rt, http_req_t *req);
int api_ready(app_t *app, const route_t *rt, http_req_t *req);
int api_boards(app_t *app, const route_t *rt, http_req_t *req);
int api_board(app_t *app, const route_t *rt, http_req_t *req);
int api_entries(app_t *app, const route_t *rt, http_req_t *req);
int api_players(app_t *app, const route_t *rt, http_req_t *req);
int api_player(app_t *app, const route_t *rt, http_req_t *req);
/* DELETE /v1/leaderboards/{board}/players/{player} (api/player_delete.c). */
int api_player_delete(app_t *app, const route_t *rt, http_req_t *req);
/* api/moderation.c: hide a player on a board (POST) or show them again (DELETE); the list. */
int api_player_hide(app_t *app, const route_t *rt, http_req_t *req);
int api_hidden(app_t *app, const route_t *rt, http_req_t *req);
/*
 * A hidden player's own view (a shadow ban: they still see themselves): when `player` is hidden
 * on board `b`, their standing of window `day` ranked among the visible players in `style`
 * (store/moderation.h, q_own_view) rendered into req as a Standing, with "hidden":true when
 * `flagged` (the admin's view), never cached, and `*hidden` set; 404 player_id when they have no
 * standing in that window. Not hidden: `*hidden` false and nothing written (0); so too when no
 * PostgreSQL node answers (the read goes on as any other's). Reads PostgreSQL (the router's read,
 * caught up with the board): call it off the event loop. A player token's read of its own
 * player answers with this, unflagged, where the read found no standing (a shadow ban).
 */
int api_own_view(app_t *app, http_req_t *req, const board_t *b, int64_t day, const char *player, rank_style_t style,
                 bool flagged, bool *hidden);
/* The same for the players around them (GET …/players/{player}/around): `{"board","window","total",
 * "entries"}` of q_own_around, their own entry with "hidden":true when `flagged`. */
int api_own_around(app_t *app, http_req_t *req, const board_t *b, int64_t day, const char *player, int before,
                   int after, rank_style_t style, bool flagged, bool *hidden);
int api_around(app_t *app, const route_t *rt, http_req_t *req);
int api_scores(app_t *app, const route_t *rt, http_req_t *req);
int api_scores_batch(app_t *app, const route_t *rt, http_req_t *req);
int api_batch(app_t *app, const route_t *rt, http_req_t *req);
/* SIGHUP: load the configuration file and environment again and take its keys, CORS origins,
 * limits and log level; an invalid one is refused whole (logged). Run by one thread only. */
bool api_reload(app_t *app);
/* Free what reloads left (at exit). */
void api_reload_free(app_t *app);

/* Render board `board`'s top page (GET …/entries, as clients ask for it) into the response
 * cache as of `now_ms`: a reset's first readers find it there. Runs where it may wait on I/O. */
void api_warm_top(app_t *app, const char *board, int64_t now_ms);
/* GET `path` (a /v1/ read, with its query) answered in place on this thread, as a /v1/batch item
 * is, for a caller with a write key (who may ask for consistency=strong): its status, and its body
 * appended to `body`. With `tier_first`, a strong read is answered by the rank tier when it holds
 * the window (the tier has applied every change this instance heard before the call: a live
 * stream's read); *from_tier says whether it did. */
int api_read_in_place(app_t *app, const char *path, int64_t now_ms, bool tier_first, buf_t *body, bool *from_tier);
int api_stats(app_t *app, const route_t *rt, http_req_t *req);
int api_live(app_t *app, const route_t *rt, http_req_t *req);
int api_player_live(app_t *app, const route_t *rt, http_req_t *req);
int api_windows(app_t *app, const route_t *rt, http_req_t *req);
int api_standings(app_t *app, const route_t *rt, http_req_t *req);
int api_activity(app_t *app, const route_t *rt, http_req_t *req);
int api_admin_refresh(app_t *app, const route_t *rt, http_req_t *req);
int api_admin_rebuild(app_t *app, const route_t *rt, http_req_t *req);
int api_admin_verify_tier(app_t *app, const route_t *rt, http_req_t *req);
int api_rank_of_score(app_t *app, const route_t *rt, http_req_t *req);
/* An optional whole-number parameter min..max (dflt when absent) into *out: 0, or the 400 written. */
MUST_USE int api_param_uint(http_req_t *req, const char *name, uint64_t min, uint64_t max, uint64_t dflt,
                            uint64_t *out);
/* rank_style= (core/rank_style.h): 0, or the 400 (field rank_style) written into req. */
int api_param_rank_style(http_req_t *req, rank_style_t *out);
/* 0, or the 400 (field "score") written into req when the board's min_score/max_score refuse it. */
int api_score_bounds(http_req_t *req, const board_t *b, int64_t score);
/* An operator job (`only`: the board asked for, or NULL for all) run on the admin thread with the
 * connection suspended (api/admin.c); its answer is written into `out`. */
typedef int (*admin_work_t)(app_t *app, const char *only, int64_t now_ms, http_req_t *out);
int api_run_admin(app_t *app, http_req_t *req, admin_work_t work, const char *only);
/* The board `only`, or every board (only NULL), read on c for an operator job: 0, or the error
 * written into req. *boards (n of them, board_clear each, then free) is set either way. */
int api_admin_boards(PGconn *c, const char *only, http_req_t *req, board_t **boards, size_t *n, q_status_t *st);
void api_admin_boards_free(board_t *boards, size_t n);
/* An operator job's request: no body, and an optional `board=` (*only, NULL for all). 0, or the
 * error written into req. */
int api_admin_board_param(http_req_t *req, const char **only);
int api_metrics(app_t *app, const route_t *rt, http_req_t *req);
int api_openapi(app_t *app, const route_t *rt, http_req_t *req);
int api_dashboard(app_t *app, const route_t *rt, http_req_t *req);
int api_dashboard_root(app_t *app, const route_t *rt, http_req_t *req);
int api_export(app_t *app, const route_t *rt, http_req_t *req);
/* POST …/import at its headers (the body not read yet): start the import's thread on
 * req->body_pipe; 0, or the refusal written. The handler, once the body ended, waits for it. */
MUST_USE int api_import_start(app_t *app, const route_t *rt, http_req_t *req);
int api_import(app_t *app, const route_t *rt, http_req_t *req);
int api_player_export(app_t *app, const route_t *rt, http_req_t *req);

/*
 * A handler's return when it moved itself off the event loop (api_off_loop): not a status,
 * the answer comes later through req->pending.
 */
#define HTTP_OFF_LOOP 1

/* True when this thread must not wait on I/O: an event loop (with offload threads to go to). */
bool api_on_loop(const app_t *app, const http_req_t *req);
/* Run the route's handler again on an offload thread, the connection suspended; returns HTTP_OFF_LOOP. */
int api_off_loop(app_t *app, const route_t *rt, http_req_t *req);

/*
 * Shared by handlers (api/boards.c): the board named by the route, or 400/404/503 written into
 * req. On an event loop a board not in the board cache moves the handler off the loop
 * (HTTP_OFF_LOOP): the handler returns that as it returns an error, and runs again there.
 */
MUST_USE int api_load_board(app_t *app, const route_t *rt, http_req_t *req, board_t *out);
/* The same for board `id` (validated), without moving anything: HTTP_OFF_LOOP when it would wait. */
MUST_USE int api_find_board(app_t *app, const char *id, bool may_wait, http_req_t *req, board_t *out);
/* Resolve the window= parameter of a read on board `b`; 0, or the 400/404 written into req. */
/* The window= parameter's syntax only, checked before the board is looked up; 0 or the 400 written. */
MUST_USE int api_param_window_syntax(http_req_t *req);
MUST_USE int api_param_window(const app_t *app, http_req_t *req, const board_t *b, int64_t *day);
/* Render a Standing object (Entry + board, window, total, top_percent). */
void api_render_standing(buf_t *o, const char *board_id, int64_t day, int64_t total, const entry_t *e);
/* Render a Board object into req->out, as req->role may see it. True when it holds what only an
 * admin may see (a webhook's URL): the answer is then no cache's to keep (Cache-Control: no-store). */
bool api_render_board(app_t *app, http_req_t *req, const board_t *b, int64_t players);

/* Tournaments (api/tournaments.c). The `tournament` object of a board's creation, checked
 * against its reset: 0 (out->on false when absent) or the error written. */
MUST_USE int api_tournament_body(http_req_t *req, json_t *obj, board_reset_t reset, tournament_t *out);
/* A tournament board's fields of the Board object (nothing for another board). */
void api_render_tournament(buf_t *o, const board_t *b, int64_t now_ms);
/* Leagues (api/leagues.c). The `cohorts` and `tiers` of a board's creation (`tournament`: the
 * body made it a tournament), checked: 0, or the 400 written. */
MUST_USE int api_league_body(http_req_t *req, json_t *obj, bool tournament, league_t *out);
/* A league board's fields of the Board object (nothing for another board). */
void api_render_league(buf_t *o, const board_t *b);
/* A player's cohort, cohort_rank and tier added to the Standing object just rendered into o (its
 * closing brace reopened); nothing when `e` has no cohort in league `l`. */
void api_render_cohort_standing(buf_t *o, const league_t *l, const entry_t *e);
int api_cohort(app_t *app, const route_t *rt, http_req_t *req);
int api_cohort_entries(app_t *app, const route_t *rt, http_req_t *req);
/* End-of-window events (api/events.c). A board's `webhook` at its creation (only a tournament's
 * or a league's), into def->webhook_url and webhook_secret (borrowed from obj): 0, or the 400. */
MUST_USE int api_webhook_body(http_req_t *req, json_t *obj, board_t *def);
/* A board's webhook in the Board object: `{"configured":true}`, with its URL for `role` admin
 * alone (a URL may carry a token or user info). True when the URL was written: such an answer is
 * an admin's alone, and no cache may keep it. */
bool api_render_webhook(buf_t *o, const board_t *b, role_t role);
int api_event(app_t *app, const route_t *rt, http_req_t *req);
/* GET /v1/leaderboards/{board}/flagged: the board's flagged token submissions (api/flagged.c). */
int api_flagged(app_t *app, const route_t *rt, http_req_t *req);
/* An Entry object. */
void api_render_entry(buf_t *o, const entry_t *e);
/* The window whose players a Board object counts: a tournament's current or next slot's. */
int64_t api_tournament_players_day(const board_t *b, int64_t now_ms);
/* The board list's kind=tournament, state= and category= filters. */
typedef struct {
    bool on;
    bool has_state;
    slot_state_t state;
    char category[TOURNAMENT_CATEGORY_MAX + 1];
} tournament_filter_t;
MUST_USE int api_tournament_filter(http_req_t *req, tournament_filter_t *f);
bool api_tournament_matches(const tournament_filter_t *f, const board_t *b, int64_t now_ms);
int api_join(app_t *app, const route_t *rt, http_req_t *req);
int api_attempts(app_t *app, const route_t *rt, http_req_t *req);

#endif
