/*
 * api/scores.c — score submission, one at a time or in scores:batch.
 *
 * Everything a submission can get wrong is checked here, before the writer
 * is called: ids, the score's type and range, metadata, the board's bounds,
 * the idempotency key. The writer then applies the valid ones in one
 * transaction and each answer goes out only after that commit.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/app.h"
#include "api/body.h"
#include "core/ids.h"
#include "core/window.h"
#include "obs/metrics.h"
#include "util/alloc.h"
#include "worker/analyzer.h"

#define BATCH_MAX 1000

typedef struct {
    write_item_t item;
    char *metadata;  /* owned */
    char *request;   /* owned canonical request */
    char *scoped_key; /* owned: the idempotency key as stored, "<presenting key's tag> <key>", or NULL */
    char *auth_by;   /* owned: what authorised it (api_auth_label), for the log's audit */
    char *client_addr; /* owned: the client's address, for the log's audit */
    board_t board;   /* owned copy */
    bool has_board;
    json_t *error;   /* error object for this item, or NULL */
} slot_t;

/* Canonical request an idempotency key is bound to. */
static char *canonical(const char *player, int64_t score, const char *metadata)
{
    buf_t b;
    buf_init(&b);
    buf_puts(&b, "{\"player_id\":");
    buf_json_str(&b, player, strlen(player));
    buf_puts(&b, ",\"score\":");
    buf_i64(&b, score);
    if (metadata) {
        buf_puts(&b, ",\"metadata\":");
        buf_puts(&b, metadata);
    }
    buf_putc(&b, '}');
    return buf_steal(&b, NULL);
}

/* Validate one submission object against its board; 0 or the error written into req. */
static int validate(http_req_t *req, json_t *obj, const char *const *allowed, slot_t *s, const char **player)
{
    int rc;
    json_t *pv = json_object_get(obj, "player_id");
    if ((rc = body_only(req, obj, allowed)))
        return rc;
    if (!pv || !json_is_string(pv) || !id_player_valid(json_string_value(pv), json_string_length(pv)))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    *player = json_string_value(pv);
    if ((rc = body_score(req, json_object_get(obj, "score"), "score", &s->item.score)))
        return rc;
    json_t *md = json_object_get(obj, "metadata");
    if ((rc = body_metadata(req, json_is_null(md) ? NULL : md, &s->metadata)))
        return rc;
    return 0;
}

int api_score_bounds(http_req_t *req, const board_t *b, int64_t score)
{
    if (b->has_min_score && score < b->min_score)
        return http_error(req, 400, "invalid_argument", "score", "score %lld is below this board's min_score %lld",
                          (long long)score, (long long)b->min_score);
    if (b->has_max_score && score > b->max_score)
        return http_error(req, 400, "invalid_argument", "score", "score %lld is above this board's max_score %lld",
                          (long long)score, (long long)b->max_score);
    return 0;
}

/* API.md: an idempotency key is scoped to the board and the presenting key. The key's tag
 * (req->client, a digest's first bytes: the key itself is never stored) goes before it, with a
 * space, which no idempotency key holds. */
/* What authorised req, as the submission log records it (API.md, "Player tokens"): the key's
 * name, or the token's issuer and subject. Owned by the caller. */
static char *auth_label(const http_req_t *req)
{
    buf_t b;
    buf_init(&b);
    if (req->player)
        buf_printf(&b, "token:%s:%s", req->player->issuer, req->player->subject);
    else if (req->key_name[0])
        buf_printf(&b, "key:%s", req->key_name);
    else
        buf_puts(&b, "none");
    return buf_steal(&b, NULL);
}

static void fill_item(slot_t *s, const char *player, const char *key, const http_req_t *req)
{
    const char *client = req->client;
    int64_t received_ms = req->received_ms;
    s->auth_by = auth_label(req);
    s->client_addr = xstrdup(req->addr);
    s->item.auth_by = s->auth_by;
    s->item.client_addr = s->client_addr;
    if (key) {
        size_t n = strlen(client) + 1 + strlen(key) + 1;
        s->scoped_key = xmalloc(n);
        snprintf(s->scoped_key, n, "%s %s", client, key);
    }
    s->item.board = &s->board;
    s->item.day = window_start_day(board_window_rule(&s->board), received_ms);
    s->item.player = player;
    s->item.metadata = s->metadata;
    s->item.idem_key = s->scoped_key;
    s->request = canonical(player, s->item.score, s->metadata);
    s->item.request = s->request;
    s->item.received_ms = received_ms;
}

static void slot_clear(slot_t *s)
{
    free(s->metadata);
    free(s->request);
    free(s->scoped_key);
    free(s->auth_by);
    free(s->client_addr);
    if (s->has_board)
        board_clear(&s->board);
    if (s->error)
        json_decref(s->error);
    free(s->item.response);
}

/* ---------------------------------------------------------------- queued submissions */

/*
 * One request's submissions while they wait for the writer: the parsed body
 * (player ids point into it), a slot per item, and the job handed over.
 */
typedef struct {
    http_pending_t base;
    app_t *app;
    write_job_t job;
    json_t *body;
    slot_t *slots;
    size_t n;              /* items in the request */
    write_item_t *items;   /* the valid ones, handed to the writer */
    size_t *item_of;       /* slot -> index in items */
    size_t n_items;
    bool batch;            /* scores:batch: answer a results array */
    void (*wake)(void *arg);
    void *wake_arg;
} submission_t;

static void job_done(write_job_t *job)
{
    submission_t *sub = job->arg;
    sub->wake(sub->wake_arg);
}

static void submission_start(http_pending_t *p, void (*wake)(void *), void *wake_arg)
{
    submission_t *sub = (submission_t *)p;
    sub->wake = wake;
    sub->wake_arg = wake_arg;
    sub->job.items = sub->items;
    sub->job.n = sub->n_items;
    sub->job.done = job_done;
    sub->job.arg = sub;
    writer_enqueue(sub->app->writer, &sub->job);
}

static void submission_release(http_pending_t *p)
{
    submission_t *sub = (submission_t *)p;
    writer_items_clear(sub->items, sub->n_items);
    for (size_t i = 0; i < sub->n; i++)
        slot_clear(&sub->slots[i]);
    free(sub->slots);
    free(sub->items);
    free(sub->item_of);
    json_decref(sub->body);
    free(sub);
}

/* Write one item's outcome as an error object into `o`. */
static void render_item_error(buf_t *o, const write_item_t *w)
{
    http_req_t one;
    http_req_init(&one);
    http_error(&one, w->status, w->err_code, w->err_field, "%s", w->err_message);
    buf_append(o, one.out.data, one.out.len);
    http_req_clear(&one);
}

static int submission_finish(http_pending_t *p, http_req_t *req)
{
    submission_t *sub = (submission_t *)p;
    uint64_t written = 0;
    for (size_t i = 0; i < sub->n_items; i++) {
        const write_item_t *it = &sub->items[i];
        written += it->status == 200;
        metrics_add(sub->app->metrics, METRIC_SUBMISSIONS, it->status == 200);
        /* the tournament's refusals: 409 with a code of their own (a plain conflict is "conflict") */
        bool refused = it->status == 409 && it->err_code && strcmp(it->err_code, "conflict") != 0;
        metrics_add(sub->app->metrics, METRIC_TOURNAMENT_REFUSED, refused);
        if (refused && strcmp(it->err_code, "tournament_full") == 0)
            metrics_add(sub->app->metrics, METRIC_TOURNAMENT_FULL, 1);
    }
    analyzer_note(sub->app->analyzer, written); /* statistics follow the tables the writes grew */
    if (!sub->batch) {
        const write_item_t *it = &sub->items[0];
        if (it->status == 200) {
            buf_puts(&req->out, it->response);
            return http_ok(req, 200);
        }
        if (it->status == 503)
            req->retry_after = 1;
        return http_error(req, it->status, it->err_code, it->err_field, "%s", it->err_message);
    }
    /* Every item unavailable (the primary down) and none stored: the whole batch may be sent
     * again. A 503 with Retry-After says so, where a 200 of errors would invite no retry. Some
     * unavailable: the 200 of results, with a Retry-After for the items to send again. */
    size_t unavailable = 0;
    for (size_t i = 0; i < sub->n; i++)
        unavailable += !sub->slots[i].error && sub->items[sub->item_of[i]].status == 503
                       && !sub->items[sub->item_of[i]].maybe_stored;
    if (unavailable == sub->n) {
        req->retry_after = 1;
        return http_unavailable(req, "the database");
    }
    if (unavailable > 0)
        req->retry_after = 1;
    buf_puts(&req->out, "{\"results\":[");
    for (size_t i = 0; i < sub->n; i++) {
        if (i)
            buf_putc(&req->out, ',');
        if (sub->slots[i].error) {
            char *e = json_text_dup(sub->slots[i].error, JSON_COMPACT | JSON_PRESERVE_ORDER);
            buf_puts(&req->out, e ? e : "{\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}");
            free(e);
            continue;
        }
        const write_item_t *w = &sub->items[sub->item_of[i]];
        if (w->status == 200)
            buf_puts(&req->out, w->response);
        else
            render_item_error(&req->out, w);
    }
    buf_puts(&req->out, "]}");
    return http_ok(req, 200);
}

static submission_t *submission_new(app_t *app, json_t *body, size_t n, bool batch)
{
    submission_t *sub = xcalloc(1, sizeof *sub);
    sub->base.start = submission_start;
    sub->base.finish = submission_finish;
    sub->base.release = submission_release;
    sub->app = app;
    sub->body = body;
    sub->n = n;
    sub->batch = batch;
    sub->slots = xcalloc(n, sizeof *sub->slots);
    sub->items = xcalloc(n, sizeof *sub->items);
    sub->item_of = xcalloc(n, sizeof *sub->item_of);
    return sub;
}

/* Hand the submission to the writer, or answer now when nothing is left to write. */
static int submission_queue(submission_t *sub, http_req_t *req)
{
    if (sub->n_items == 0) {
        int rc = submission_finish(&sub->base, req);
        submission_release(&sub->base);
        return rc;
    }
    req->pending = &sub->base;
    return 0;
}

int api_scores(app_t *app, const route_t *rt, http_req_t *req)
{
    if (rt->board_bad || !id_board_valid(rt->board, rt->board_len))
        return http_error(req, 400, "invalid_argument", "board", ID_BOARD_RULE);
    if (req->idem_key && !id_idempotency_key_valid(req->idem_key, strlen(req->idem_key)))
        return http_error(req, 400, "invalid_argument", "Idempotency-Key", ID_IDEMPOTENCY_KEY_RULE);
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const allowed[] = {"player_id", "score", "metadata", NULL};
    submission_t *sub = submission_new(app, obj, 1, false);
    slot_t *s = &sub->slots[0];
    const char *player = NULL;
    if ((rc = validate(req, obj, allowed, s, &player)) || (rc = api_load_board(app, rt, req, &s->board))) {
        submission_release(&sub->base);
        return rc;
    }
    s->has_board = true;
    if ((rc = api_player_write_allowed(req, &s->board, player, false)) ||
        (rc = api_score_bounds(req, &s->board, s->item.score))) {
        submission_release(&sub->base);
        return rc;
    }
    if ((rc = api_idem_keys_take(app, req, req->idem_key ? 1 : 0))) {
        submission_release(&sub->base);
        return rc;
    }
    fill_item(s, player, req->idem_key, req);
    sub->items[0] = s->item;
    sub->n_items = 1;
    return submission_queue(sub, req);
}

/* Turn the error written into `scratch` into an item's error object. */
static json_t *take_error(http_req_t *scratch)
{
    json_t *v = json_loadb(scratch->out.data, scratch->out.len, 0, NULL);
    buf_reset(&scratch->out);
    return v;
}

int api_scores_batch(app_t *app, const route_t *rt, http_req_t *req)
{
    bool may_wait = !api_on_loop(app, req);
    json_t *obj;
    int rc = body_object(req, &obj);
    if (rc)
        return rc;
    static const char *const top[] = {"scores", NULL};
    json_t *arr = json_object_get(obj, "scores");
    if ((rc = body_only(req, obj, top))) {
        json_decref(obj);
        return rc;
    }
    if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > BATCH_MAX) {
        json_decref(obj);
        return http_error(req, 400, "invalid_argument", "scores", "scores must be an array of 1 to 1000 items");
    }
    size_t n = json_array_size(arr);
    /* API.md: a scores:batch takes one write token per item (once: not again when it is run
     * again off the event loop). */
    if (ratelimit_active(app->limits) && !req->ratelimit.limited && (rc = api_rate_limit(app, req, RL_WRITE, (int)n))) {
        json_decref(obj);
        return rc;
    }
    if (!req->player_charged && (rc = api_player_write_limit(app, req, (int)n))) {
        json_decref(obj);
        return rc;
    }
    submission_t *sub = submission_new(app, obj, n, true);
    static const char *const allowed[] = {"board", "player_id", "score", "metadata", "idempotency_key", NULL};
    http_req_t scratch;
    http_req_init(&scratch);
    int keyed = 0; /* items with an idempotency key (limits.idempotency_keys_per_client) */
    for (size_t i = 0; i < n; i++) {
        slot_t *s = &sub->slots[i];
        json_t *it = json_array_get(arr, i);
        const char *player = NULL, *key = NULL;
        route_t brt;
        memset(&brt, 0, sizeof brt);
        if (!json_is_object(it)) {
            http_error(&scratch, 400, "invalid_argument", NULL, "each item must be an object");
            s->error = take_error(&scratch);
            continue;
        }
        json_t *bv = json_object_get(it, "board");
        json_t *kv = json_object_get(it, "idempotency_key");
        if (!bv || !json_is_string(bv) || !id_board_valid(json_string_value(bv), json_string_length(bv))) {
            http_error(&scratch, 400, "invalid_argument", "board", ID_BOARD_RULE);
            s->error = take_error(&scratch);
            continue;
        }
        if (kv && (!json_is_string(kv) || !id_idempotency_key_valid(json_string_value(kv), json_string_length(kv)))) {
            http_error(&scratch, 400, "invalid_argument", "idempotency_key", ID_IDEMPOTENCY_KEY_RULE);
            s->error = take_error(&scratch);
            continue;
        }
        key = kv ? json_string_value(kv) : NULL;
        if (validate(&scratch, it, allowed, s, &player)) {
            s->error = take_error(&scratch);
            continue;
        }
        /* validate() checked the id, so it fits. */
        brt.board_len = json_string_length(bv);
        memcpy(brt.board, json_string_value(bv), brt.board_len + 1);
        int found = api_find_board(app, brt.board, may_wait, &scratch, &s->board);
        if (found == HTTP_OFF_LOOP) { /* a board to read from PostgreSQL: start again off the loop */
            http_req_clear(&scratch);
            submission_release(&sub->base);
            return api_off_loop(app, rt, req);
        }
        if (found) {
            if (scratch.status == 503) {
                http_req_clear(&scratch);
                submission_release(&sub->base);
                return http_unavailable(req, "the database");
            }
            s->error = take_error(&scratch);
            continue;
        }
        s->has_board = true;
        /* API.md: a player token's batch holds its own player's scores on boards it may write to,
         * every item, or it is refused whole, naming the rule. */
        scratch.player = req->player;
        if (api_player_write_allowed(&scratch, &s->board, player, false)) {
            int status = scratch.status;
            buf_append(&req->out, scratch.out.data, scratch.out.len);
            http_req_clear(&scratch);
            submission_release(&sub->base);
            return http_ok(req, status);
        }
        if (api_score_bounds(&scratch, &s->board, s->item.score)) {
            s->error = take_error(&scratch);
            continue;
        }
        fill_item(s, player, key, req);
        sub->item_of[i] = sub->n_items;
        sub->items[sub->n_items++] = s->item;
        keyed += key != NULL;
    }
    http_req_clear(&scratch);
    if ((rc = api_idem_keys_take(app, req, keyed))) {
        submission_release(&sub->base);
        return rc;
    }
    return submission_queue(sub, req);
}
