/* api/live.c — live streams of a board's top (see live.h): the hub's thread and the route. */
#include "api/live.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/board.h"
#include "core/notice.h"
#include "core/rank_style.h"
#include "core/window.h"
#include "http/server.h"
#include "http/stream.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/clock.h"

/* Bytes a listener's buffer holds: two top-100 events of 1 KiB of metadata each. Its pages
 * are touched only as far as events fill it (an idle listener keeps one event's worth). */
#define LIVE_BUFFER (256 * 1024)
#define LIVE_TOP_MAX 100
#define LIVE_RETRY_MS 2000 /* the EventSource reconnection delay the first event sets */

typedef struct live_listener {
    http_stream_t *stream;      /* the hub's hold (the producer's) */
    char addr[48];              /* the client's address, for live.max_listeners_per_address */
    char last_id[64];           /* the Last-Event-ID it came back with; "" for none */
    bool fresh;                 /* has had no event yet */
    struct live_listener *next;
} live_listener_t;

typedef struct live_topic {
    char board[BOARD_ID_MAX + 1];
    int64_t gen;                /* the board generation notices name */
    char path[BOARD_ID_MAX + 96]; /* the read whose answer is streamed */
    char key[BOARD_ID_MAX + 32];  /* board, N and rank style: listeners sharing it share the topic */
    buf_t last;                 /* the last answer sent (empty: none yet) */
    char last_id[64];           /* its event id */
    int64_t seq_day, seq;       /* the last transaction number heard for the board, and its window
                                 * (-1: none heard yet) */
    bool dirty;                 /* a change was heard since the last computation */
    bool busy;                  /* the hub computes it now, outside the lock */
    bool failing;               /* its last read was refused for now (503) */
    int64_t next_ms;            /* monotonic: not computed again before this */
    live_listener_t *listeners;
    struct live_topic *next;
} live_topic_t;

struct live_hub {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
    app_t *app;
    live_opts_t o;
    live_topic_t *topics;       /* under mu */
    size_t n_listeners, n_topics;
    bool stopping;
    int64_t next_beat_ms;
    unsigned long long events, computed, dropped;
};

/* ---------------------------------------------------------------- events */

/* The text of one event: id, type and the answer as data lines (JSON bodies are one line; a line
 * break would start another data line). `retry`: the first event also sets the reconnection delay. */
static void event_text(buf_t *o, const char *id, const char *type, const char *data, size_t len, bool retry)
{
    if (retry)
        buf_printf(o, "retry: %d\n", LIVE_RETRY_MS);
    buf_printf(o, "id: %s\nevent: %s\n", id, type);
    size_t i = 0;
    do {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        buf_puts(o, "data: ");
        buf_append(o, data + i, end - i);
        buf_putc(o, '\n');
        i = end + 1;
    } while (i < len);
    buf_putc(o, '\n');
}

/* The "window" of an answer (GET …/entries), into w ("" when it has none). */
static void answer_window(const char *body, size_t len, char w[16])
{
    static const char k[] = "\"window\":\"";
    w[0] = '\0';
    const char *p = memmem(body, len, k, sizeof k - 1);
    if (!p)
        return;
    p += sizeof k - 1;
    size_t n = 0;
    while (p + n < body + len && p[n] != '"' && n < 15)
        n++;
    memcpy(w, p, n);
    w[n] = '\0';
}

/* FNV-1a of an answer: the last part of its event id. */
static uint32_t answer_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* Drop a listener: its stream ends (cut, with its socket shut, when it does not read). Under mu. */
static void listener_free(live_hub_t *h, live_listener_t *l, bool cut)
{
    if (cut) {
        http_stream_cancel(l->stream);
        http_server_cut_stream(atomic_load(&h->app->http), l->stream);
        h->dropped++;
    }
    http_stream_end(l->stream, !cut);
    h->n_listeners--;
    free(l);
}

/* Offer `text` to the listener at *pp: false when it is gone or cannot take it, and then it is
 * unlinked (*pp is its successor) and freed. Under mu. */
static bool offer(live_hub_t *h, live_listener_t **pp, const buf_t *text)
{
    live_listener_t *l = *pp;
    int got = http_stream_offer(l->stream, text->data, text->len);
    if (got == 1) {
        h->events++;
        return true;
    }
    *pp = l->next;
    listener_free(h, l, got == 0);
    return false;
}

/* A last message to a listener whose stream ends anyway: whether it fits does not matter. */
static void offer_last(live_listener_t *l, const buf_t *text)
{
    int got = http_stream_offer(l->stream, text->data, text->len);
    (void)got;
}

/* Whether two event ids name the same answer: the same window and hash, whatever number each
 * instance had heard when it computed it (a client may come back to another instance). */
static bool same_answer(const char *a, const char *b)
{
    const char *ca = strchr(a, ':'), *cb = strchr(b, ':');
    const char *ha = strrchr(a, '.'), *hb = strrchr(b, '.');
    return ca && cb && ha && hb && ca - a == cb - b && memcmp(a, b, (size_t)(ca - a)) == 0 && strcmp(ha, hb) == 0;
}

/* Send the topic's answer to its listeners: all of them, or only the fresh ones. Under mu. */
static void send_answer(live_hub_t *h, live_topic_t *t, bool only_fresh)
{
    buf_t ev, first;
    buf_init(&ev);
    buf_init(&first);
    event_text(&ev, t->last_id, "top", t->last.data, t->last.len, false);
    event_text(&first, t->last_id, "top", t->last.data, t->last.len, true);
    for (live_listener_t **pp = &t->listeners; *pp;) {
        live_listener_t *l = *pp;
        bool due = l->fresh ? !same_answer(l->last_id, t->last_id) : !only_fresh;
        if (l->fresh && !due) { /* came back with this very answer's id: nothing changed */
            l->fresh = false;
            /* the reconnection delay still goes out first */
            buf_t r;
            buf_init(&r);
            buf_printf(&r, "retry: %d\n\n", LIVE_RETRY_MS);
            bool ok = offer(h, pp, &r);
            buf_free(&r);
            if (!ok)
                continue;
        } else if (due) {
            bool was_fresh = l->fresh;
            l->fresh = false;
            if (!offer(h, pp, was_fresh ? &first : &ev))
                continue;
        }
        pp = &l->next;
    }
    buf_free(&ev);
    buf_free(&first);
}

/* The topic's answer is an error (the board deleted, or a read refused): every listener gets it
 * as a `gone` event and its stream ends. Under mu. */
static void send_error(live_hub_t *h, live_topic_t *t, const buf_t *body)
{
    buf_t ev;
    buf_init(&ev);
    /* not "error": EventSource fires that name for its own connection failures too */
    event_text(&ev, t->last_id[0] ? t->last_id : "0", "gone", body->data, body->len, false);
    while (t->listeners) {
        live_listener_t *l = t->listeners;
        t->listeners = l->next;
        offer_last(l, &ev);
        listener_free(h, l, false);
    }
    buf_free(&ev);
}

/* ---------------------------------------------------------------- the hub's thread */

/* Free topics nobody listens to any more (not while computed). Under mu. */
static void reap_topics(live_hub_t *h)
{
    for (live_topic_t **pp = &h->topics; *pp;) {
        live_topic_t *t = *pp;
        if (t->listeners || t->busy) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        buf_free(&t->last);
        free(t);
        h->n_topics--;
    }
}

/* A comment line to every listener (proxies keep the stream, and one gone is found), and every
 * topic due a check. Under mu. */
static void beat(live_hub_t *h)
{
    static const buf_t comment = {.data = (char *)":\n\n", .len = 3, .cap = 0};
    for (live_topic_t *t = h->topics; t; t = t->next) {
        /* fresh ones too (a comment may come before the first event): a newcomer waiting for a
         * first answer the primary cannot give now is still kept alive, and found gone */
        for (live_listener_t **pp = &t->listeners; *pp;)
            if (offer(h, pp, &comment))
                pp = &(*pp)->next;
        t->dirty = true;
    }
}

/* Compute topic t (mu held on entry and exit, released meanwhile) and send what changed. */
static void compute(live_hub_t *h, live_topic_t *t)
{
    t->busy = true;
    t->dirty = false;
    char path[sizeof t->path];
    memcpy(path, t->path, sizeof path);
    pthread_mutex_unlock(&h->mu);
    buf_t body;
    buf_init(&body);
    int status = api_read_in_place(h->app, path, clock_wall_ms(), &body);
    pthread_mutex_lock(&h->mu);
    int64_t now = clock_mono_ms(); /* the interval counts from the read's end */
    h->computed++;
    t->busy = false;
    t->next_ms = now + h->o.min_interval_ms;
    if (status == 200 && body.len > 0) {
        char w[16];
        answer_window(body.data, body.len, w);
        char d[11] = "";
        if (t->seq_day >= 0)
            window_format_day(t->seq_day, d);
        /* The id names the answer too (a hash of it): a commit whose notice is still on its way
         * may be in an answer under the number heard before it, and an instance that heard no
         * number yet says 0; only the same answer has the same id, on any instance. */
        char id[64];
        snprintf(id, sizeof id, "%s:%" PRId64 ".%08" PRIx32, w, strcmp(d, w) == 0 ? t->seq : 0,
                 answer_hash(body.data, body.len));
        bool changed = body.len != t->last.len || memcmp(body.data, t->last.data, body.len) != 0;
        if (changed) {
            buf_reset(&t->last);
            buf_append(&t->last, body.data, body.len);
            snprintf(t->last_id, sizeof t->last_id, "%s", id);
        }
        send_answer(h, t, !changed);
    } else if (status == 404 || status == 400 || status == 403) {
        send_error(h, t, &body);
    } else {
        /* unavailable for now (the primary down): the listeners keep what they had, and the next
         * heartbeat tries again (said once, not at every try) */
        t->next_ms = now + (int64_t)h->o.heartbeat_s * 1000;
        if (!t->failing)
            log_warn(NULL, "live stream %s: its read answered %d; tried again every heartbeat", t->key, status);
        t->failing = true;
        buf_free(&body);
        return;
    }
    if (t->failing)
        log_info(NULL, "live stream %s: its read answers again", t->key);
    t->failing = false;
    buf_free(&body);
}

static void *hub_main(void *arg)
{
    live_hub_t *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        int64_t now = clock_mono_ms();
        if (now >= h->next_beat_ms) {
            beat(h);
            h->next_beat_ms = now + (int64_t)h->o.heartbeat_s * 1000;
        }
        live_topic_t *due = NULL;
        int64_t wake_at = h->next_beat_ms;
        for (live_topic_t *t = h->topics; t; t = t->next) {
            bool fresh = false;
            for (live_listener_t *l = t->listeners; l && !fresh; l = l->next)
                fresh = l->fresh;
            if (t->busy || !t->listeners)
                continue;
            if (fresh && t->last.len > 0 && !t->dirty) { /* a newcomer: the answer in hand */
                send_answer(h, t, true);
                continue;
            }
            if (!(t->dirty || fresh))
                continue;
            if (now >= t->next_ms) { /* the one due longest first: a busy board starves none */
                if (!due || t->next_ms < due->next_ms)
                    due = t;
            } else if (t->next_ms < wake_at) {
                wake_at = t->next_ms;
            }
        }
        reap_topics(h);
        if (due) {
            compute(h, due);
            continue;
        }
        struct timespec ts = clock_deadline_ms((int)(wake_at - now > 0 ? wake_at - now : 1));
        pthread_cond_timedwait(&h->wake, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---------------------------------------------------------------- from the listener */

void live_hub_heard(void *hub, const char *payload)
{
    live_hub_t *h = hub;
    bool any = false;
    pthread_mutex_lock(&h->mu);
    for (const char *p = h->topics ? payload : ""; *p;) { /* no stream open: nothing to read */
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        int64_t gen = 0, day = 0, seq = 0;
        int part, parts;
        long long g = 0;
        if (p[0] == 'S' && notice_parse_seq(p, len, &gen, &day, &seq, &part, &parts)) {
            /* a transaction's number for one window: its W and D lines follow, and change nothing
             * more here (an un-numbered W or D line is a hint sent again after Redis took it) */
        } else if ((p[0] == 'P' || p[0] == 'R' || p[0] == 'B') && sscanf(p + 1, " %lld", &g) == 1) {
            gen = g; /* a window changed wholesale (an import), or Redis missed it; a board deleted */
        } else if (p[0] != 'V' && p[0] != 'W' && p[0] != 'D') {
            gen = -1; /* not understood, or notices lost ("?"): every stream is checked */
        }
        for (live_topic_t *t = h->topics; t && gen != 0; t = t->next) {
            if (gen > 0 && t->gen != gen)
                continue;
            t->dirty = true;
            any = true;
            if (seq > 0 && day >= t->seq_day) {
                if (day > t->seq_day)
                    t->seq = 0;
                t->seq_day = day;
                if (seq > t->seq)
                    t->seq = seq;
            }
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    if (any)
        pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
}

/* ---------------------------------------------------------------- start and stop */

live_hub_t *live_hub_start(app_t *app, const live_opts_t *o)
{
    live_hub_t *h = xcalloc(1, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->wake, NULL);
    h->app = app;
    h->o = *o;
    h->next_beat_ms = clock_mono_ms() + (int64_t)o->heartbeat_s * 1000;
    if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
        log_error(NULL, "cannot start the live streams' thread");
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
    }
    return h;
}

void live_hub_close(live_hub_t *h)
{
    if (!h)
        return;
    /* Each stream ends whole (a last reconnection hint, then the body's end) before the thread
     * is joined: a read it waits on must not hold the streams open into the drain. A topic read
     * meanwhile finds no listeners when it takes the lock back. */
    buf_t bye;
    buf_init(&bye);
    buf_printf(&bye, "retry: %d\n\n", LIVE_RETRY_MS);
    pthread_mutex_lock(&h->mu);
    bool joined = h->stopping;
    h->stopping = true;
    for (live_topic_t *t = h->topics; t; t = t->next)
        while (t->listeners) {
            live_listener_t *l = t->listeners;
            t->listeners = l->next;
            offer_last(l, &bye);
            listener_free(h, l, false);
        }
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    buf_free(&bye);
    if (!joined)
        pthread_join(h->thread, NULL);
    pthread_mutex_lock(&h->mu);
    reap_topics(h);
    pthread_mutex_unlock(&h->mu);
}

void live_hub_free(live_hub_t *h)
{
    if (!h)
        return;
    live_hub_close(h);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void live_hub_counts(live_hub_t *h, live_counts_t *out)
{
    *out = (live_counts_t){0};
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    out->listeners = h->n_listeners;
    out->streams = h->n_topics;
    out->events = h->events;
    out->computed = h->computed;
    out->dropped = h->dropped;
    pthread_mutex_unlock(&h->mu);
}

/* ---------------------------------------------------------------- the route */

/* A new listener of (board, top, style): its stream (the server's hold) into *out. 0, or the
 * status of a limit it passes (503 for this instance's, 429 for its address's), or 1 when the
 * hub is stopping. */
static int add_listener(live_hub_t *h, const board_t *b, int top, rank_style_t style, const http_req_t *req,
                        http_stream_t **out)
{
    char key[sizeof ((live_topic_t *)0)->key];
    snprintf(key, sizeof key, "%s %d %s", b->id, top, rank_style_name(style));
    pthread_mutex_lock(&h->mu);
    if (h->stopping || h->n_listeners >= (size_t)h->o.max_listeners) {
        bool stopping = h->stopping;
        pthread_mutex_unlock(&h->mu);
        return stopping ? 1 : 503;
    }
    size_t same = 0;
    live_topic_t *topic = NULL;
    for (live_topic_t *t = h->topics; t; t = t->next) {
        if (!topic && strcmp(t->key, key) == 0 && t->gen == b->gen)
            topic = t;
        for (live_listener_t *l = t->listeners; l; l = l->next)
            same += strcmp(l->addr, req->limit_addr) == 0;
    }
    if (same >= (size_t)h->o.max_per_address) {
        pthread_mutex_unlock(&h->mu);
        return 429;
    }
    if (!topic) {
        topic = xcalloc(1, sizeof *topic);
        snprintf(topic->board, sizeof topic->board, "%s", b->id);
        snprintf(topic->key, sizeof topic->key, "%s", key);
        topic->gen = b->gen;
        topic->seq_day = -1;
        snprintf(topic->path, sizeof topic->path,
                 "/v1/leaderboards/%s/entries?limit=%d&rank_style=%s&consistency=strong", b->id, top,
                 rank_style_name(style));
        buf_init(&topic->last);
        topic->next = h->topics;
        h->topics = topic;
        h->n_topics++;
    }
    live_listener_t *l = xcalloc(1, sizeof *l);
    l->stream = http_stream_new(LIVE_BUFFER);
    snprintf(l->addr, sizeof l->addr, "%s", req->limit_addr);
    if (req->last_event_id)
        snprintf(l->last_id, sizeof l->last_id, "%s", req->last_event_id);
    l->fresh = true;
    l->next = topic->listeners;
    topic->listeners = l;
    h->n_listeners++;
    *out = l->stream;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

int api_live(app_t *app, const route_t *rt, http_req_t *req)
{
    uint64_t top = 10;
    rank_style_t style;
    int rc = api_param_uint(req, "top", 1, LIVE_TOP_MAX, 10, &top);
    if (rc || (rc = api_param_rank_style(req, &style)))
        return rc;
    board_t b;
    if ((rc = api_load_board(app, rt, req, &b)))
        return rc;
    req->content_type_out = "text/event-stream";
    if (req->head) { /* the headers of a stream, without opening one */
        board_clear(&b);
        return http_ok(req, 200);
    }
    if (!app->live_hub) {
        board_clear(&b);
        return http_error(req, 503, "unavailable", NULL, "live streams are off on this instance (live.max_listeners: 0)");
    }
    http_stream_t *st = NULL;
    int limit = add_listener(app->live_hub, &b, (int)top, style, req, &st);
    board_clear(&b);
    if (limit == 503 || limit == 1) {
        req->content_type_out = NULL;
        req->retry_after = limit == 1 ? 1 : 5;
        return http_error(req, 503, "unavailable", NULL, "%s",
                          limit == 1 ? "this instance is stopping: open the stream on another"
                                     : "this instance holds as many live streams as it may (live.max_listeners): "
                                       "try again later");
    }
    if (limit == 429) {
        req->content_type_out = NULL;
        req->retry_after = 5;
        return http_error(req, 429, "rate_limited", NULL,
                          "this address holds as many live streams as it may (live.max_listeners_per_address)");
    }
    req->stream = st; /* the server's hold: libmicrohttpd's once the answer is queued */
    return http_ok(req, 200);
}
