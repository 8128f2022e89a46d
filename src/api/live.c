/* api/live.c — live streams of a board's top (see live.h): the hub's thread and the route. */
#include "api/live.h"
#include "api/live_player.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/rank_tier.h"
#include "core/board.h"
#include "core/ids.h"
#include "core/model.h"
#include "core/notice.h"
#include "core/rank_style.h"
#include "core/window.h"
#include "http/ratelimit.h"
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
#define LIVE_AROUND_MAX 50
#define LIVE_RETRY_MS 2000 /* the EventSource reconnection delay the first event sets */
#define LIVE_READ_MS 60000 /* a stream counts as one read this often (API.md, "Rate limits") */
#define LIVE_CATCH_UP_MS 2000 /* how long a resumed stream waits for this instance to hear what
                               * the instance it left had sent */

typedef struct live_listener {
    http_stream_t *stream;      /* the hub's hold (the producer's) */
    char addr[48];              /* the client's address, for live.max_listeners_per_address */
    char client[80];            /* whose read bucket it draws on (http_req_t.client) */
    int64_t paid_ms;            /* the buckets' clock: its reads are paid up to here */
    char last_id[64];           /* the Last-Event-ID it came back with; "" for none */
    bool fresh;                 /* has had no event yet */
    int64_t hold_ms;            /* monotonic: until then a first answer older than its
                                 * Last-Event-ID's (another instance's, further on) is held back */
    unsigned beat_slot;         /* the second of each heartbeat its comment goes out in */
    struct live_listener *next;
} live_listener_t;

typedef struct live_topic {
    char board[BOARD_ID_MAX + 1];
    int64_t gen;                /* the board generation notices name */
    window_rule_t rule;         /* the board's windows */
    char path[BOARD_ID_MAX + PLAYER_ID_MAX + 128]; /* the read whose answer is streamed */
    char key[BOARD_ID_MAX + PLAYER_ID_MAX + 40];   /* board, player, N and rank style: listeners
                                                    * sharing it share the topic */
    int style;                  /* its rank style (rank_style_t) */
    live_player_t *pl;          /* a player's stream (its own; NULL: a board's top) */
    unsigned beat_slot;         /* the second of each heartbeat it is checked in */
    buf_t last;                 /* the last answer sent, as compared (empty: none yet) */
    buf_t event;                /* the last event's data (a player's: the answer with its extras) */
    char last_id[64];           /* its event id */
    char window[16];            /* its window ("": none yet) */
    int64_t answer_seq;         /* the answer in hand holds that window's commits up to this number
                                 * (heard before it was read; 0: none known) */
    int64_t day;                /* that window's first day (-1: none yet) */
    int64_t reset_ms;           /* wall clock: the window ends then (0: never, or unknown) */
    struct live_board *b;       /* its board's notices reach it through this */
    size_t slot;                /* its place in b->tops or b->watch */
    size_t heap_at;             /* its place in the hub's queue; NOT_QUEUED when not there */
    int64_t due_ms;             /* monotonic: when it may go, in the queue */
    bool dirty;                 /* a change was heard since the last computation */
    bool busy;                  /* the hub computes it now, outside the lock */
    bool failing;               /* its last read was refused for now (503) */
    bool has_fresh;             /* a listener may still wait for its first event */
    int64_t primary_ms;         /* monotonic: when its last answer read from the primary ended (0:
                                 * none since one from the tier). The rank tier answers again only
                                 * once it has applied every commit before then: the primary's
                                 * answer may hold commits not heard yet, and an event never goes back */
    int64_t next_ms;            /* monotonic: not computed again before this */
    live_listener_t *listeners;
    struct live_topic *next;
    struct live_topic *key_next; /* the next of the same slot of by_key */
} live_topic_t;

#define NOT_QUEUED SIZE_MAX

/* A player's stream as a scan of a board's changes sees it (live_player_bounds): a change whose
 * sort keys do not reach [lo, hi] and that is not the player's own passes it by unread. */
typedef struct {
    int64_t lo, hi;
    int64_t day;                /* its window's first day (-1: not known yet: any) */
    uint32_t who;               /* a hash of its player's id */
    live_topic_t *t;
} live_watch_t;

/* The streams of one board (generation): what its notices reach. */
typedef struct live_board {
    int64_t gen;
    int64_t seq_day, seq;       /* the last transaction number heard whole for the board, and its
                                 * window (-1: none heard yet) */
    int64_t part_day, part_seq; /* a transaction whose notice came in parts, and how many came: */
    int parts_seen;             /* the rank tier applies it at its last part, and so does the hub */
    live_topic_t **tops;        /* its top-N streams */
    size_t n_tops, cap_tops;
    live_watch_t *watch;        /* its players' streams */
    size_t n_watch, cap_watch;
    struct live_board *next;
} live_board_t;

/* How many listeners one client address holds (live.max_listeners_per_address). */
typedef struct addr_count {
    char addr[48];
    size_t n;
    struct addr_count *next;
} addr_count_t;
#define ADDR_BUCKETS 1024
#define TOPIC_BUCKETS 4096

struct live_hub {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
    app_t *app;
    live_opts_t o;
    live_topic_t *topics;       /* under mu */
    addr_count_t *by_addr[ADDR_BUCKETS]; /* under mu */
    live_topic_t *by_key[TOPIC_BUCKETS]; /* the same topics by key: a newcomer finds its own */
    live_board_t *boards;       /* the boards streamed */
    live_topic_t **heap;        /* the queue: topics due a computation (or a newcomer's answer),
                                 * a binary min-heap by key */
    size_t n_heap, cap_heap;
    size_t n_listeners, n_topics;
    bool stopping;
    int64_t next_beat_ms;       /* the next second of the heartbeat: a slice of the listeners beats */
    unsigned beat_round;        /* seconds of heartbeats so far */
    unsigned beat_slots_given;  /* listeners and topics given a slot so far */
    int64_t next_second_ms;     /* the once-a-second look: resets, topics without listeners */
    unsigned long long events, computed, dropped, charged, limited;
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

/* The count of listeners from `addr`: its slot (NULL when none and not `make`). Under mu. */
static addr_count_t **addr_slot(live_hub_t *h, const char *addr, bool make)
{
    addr_count_t **pp = &h->by_addr[answer_hash(addr, strlen(addr)) % ADDR_BUCKETS];
    while (*pp && strcmp((*pp)->addr, addr) != 0)
        pp = &(*pp)->next;
    if (!*pp && make) {
        *pp = xcalloc(1, sizeof **pp);
        snprintf((*pp)->addr, sizeof (*pp)->addr, "%s", addr);
    }
    return *pp ? pp : NULL;
}

/* ---------------------------------------------------------------- the queue
 * Topics due a computation wait in a binary min-heap by key, the later of when they were marked
 * and when their interval ends: the one that waited longest goes first, and a busy board starves
 * none. Under mu. */

static void heap_put(live_hub_t *h, size_t i, live_topic_t *t)
{
    h->heap[i] = t;
    t->heap_at = i;
}

static void heap_up(live_hub_t *h, size_t i)
{
    live_topic_t *t = h->heap[i];
    while (i > 0 && h->heap[(i - 1) / 2]->due_ms > t->due_ms) {
        heap_put(h, i, h->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_put(h, i, t);
}

static void heap_down(live_hub_t *h, size_t i)
{
    live_topic_t *t = h->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n_heap)
            break;
        if (c + 1 < h->n_heap && h->heap[c + 1]->due_ms < h->heap[c]->due_ms)
            c++;
        if (h->heap[c]->due_ms >= t->due_ms)
            break;
        heap_put(h, i, h->heap[c]);
        i = c;
    }
    heap_put(h, i, t);
}

/* Take t out of the queue (if it is there). */
static void unqueue(live_hub_t *h, live_topic_t *t)
{
    size_t i = t->heap_at;
    if (i == NOT_QUEUED)
        return;
    t->heap_at = NOT_QUEUED;
    live_topic_t *last = h->heap[--h->n_heap];
    if (i == h->n_heap)
        return;
    heap_put(h, i, last);
    heap_down(h, i);
    heap_up(h, last->heap_at);
}

/* Queue t to go at `due_ms` (monotonic), unless it is queued already. */
static void queue_at(live_hub_t *h, live_topic_t *t, int64_t due_ms)
{
    if (t->heap_at != NOT_QUEUED)
        return;
    if (h->n_heap == h->cap_heap) {
        h->cap_heap = h->cap_heap ? 2 * h->cap_heap : 64;
        h->heap = xrealloc(h->heap, h->cap_heap * sizeof *h->heap);
    }
    t->due_ms = due_ms;
    heap_put(h, h->n_heap++, t);
    heap_up(h, t->heap_at);
}

/* A change was heard for t: computed again once its interval allows. */
static void mark(live_hub_t *h, live_topic_t *t, int64_t now)
{
    t->dirty = true;
    queue_at(h, t, t->next_ms > now ? t->next_ms : now);
}

/* ---------------------------------------------------------------- the boards' streams */

static live_board_t *board_find(live_hub_t *h, int64_t gen)
{
    live_board_t *b = h->boards;
    while (b && b->gen != gen)
        b = b->next;
    return b;
}

/* A player's stream as the scan sees it, again (after its answer or its player's move). */
static void watch_refresh(live_topic_t *t)
{
    live_watch_t *e = &t->b->watch[t->slot];
    live_player_bounds(t->pl, &e->lo, &e->hi);
    e->day = t->day;
}

/* File t under its board's streams (made when it is the board's first). */
static void board_add(live_hub_t *h, live_topic_t *t)
{
    live_board_t *b = board_find(h, t->gen);
    if (!b) {
        b = xcalloc(1, sizeof *b);
        b->gen = t->gen;
        b->seq_day = -1;
        b->next = h->boards;
        h->boards = b;
    }
    t->b = b;
    if (!t->pl) {
        if (b->n_tops == b->cap_tops) {
            b->cap_tops = b->cap_tops ? 2 * b->cap_tops : 4;
            b->tops = xrealloc(b->tops, b->cap_tops * sizeof *b->tops);
        }
        t->slot = b->n_tops;
        b->tops[b->n_tops++] = t;
        return;
    }
    if (b->n_watch == b->cap_watch) {
        b->cap_watch = b->cap_watch ? 2 * b->cap_watch : 16;
        b->watch = xrealloc(b->watch, b->cap_watch * sizeof *b->watch);
    }
    t->slot = b->n_watch;
    b->watch[b->n_watch++] = (live_watch_t){.t = t, .who = answer_hash(t->pl->player, strlen(t->pl->player))};
    watch_refresh(t);
}

/* Take t from its board's streams (the board goes with its last). */
static void board_remove(live_hub_t *h, live_topic_t *t)
{
    live_board_t *b = t->b;
    if (!t->pl) {
        b->tops[t->slot] = b->tops[--b->n_tops];
        b->tops[t->slot]->slot = t->slot;
    } else {
        b->watch[t->slot] = b->watch[--b->n_watch];
        b->watch[t->slot].t->slot = t->slot;
    }
    if (b->n_tops || b->n_watch)
        return;
    live_board_t **pp = &h->boards;
    while (*pp != b)
        pp = &(*pp)->next;
    *pp = b->next;
    free(b->tops);
    free(b->watch);
    free(b);
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
    addr_count_t **slot = addr_slot(h, l->addr, false), *a = slot ? *slot : NULL;
    if (a && --a->n == 0) {
        *slot = a->next;
        free(a);
    }
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

/* Whether newcomer l, back with an id of the window t's answer shows but with a transaction
 * number this instance has not heard yet (it left another instance that had), must wait: the
 * answer in hand may be older than the last event it had. It waits LIVE_CATCH_UP_MS at most. */
static bool held_back(const live_listener_t *l, const live_topic_t *t, int64_t now)
{
    const char *colon = strrchr(l->last_id, ':');
    size_t wlen = colon ? (size_t)(colon - l->last_id) : 0;
    if (!colon || now >= l->hold_ms || wlen != strlen(t->window) || memcmp(l->last_id, t->window, wlen) != 0)
        return false;
    /* The number the answer in hand was read after, not the last heard: one heard while it was
     * being read may not be in it. */
    return strtoll(colon + 1, NULL, 10) > t->answer_seq;
}

/* Send the topic's answer to its listeners: all of them, or only the fresh ones. `reset`, when
 * not NULL, is a reset event's data the others get first (the window changed). Under mu. */
static void send_answer(live_hub_t *h, live_topic_t *t, bool only_fresh, const buf_t *reset)
{
    int64_t now = clock_mono_ms();
    bool held = false;
    const char *type = t->pl ? "player" : "top";
    buf_t ev, first;
    buf_init(&ev);
    buf_init(&first);
    if (reset)
        event_text(&ev, t->last_id, "reset", reset->data, reset->len, false);
    event_text(&ev, t->last_id, type, t->event.data, t->event.len, false);
    event_text(&first, t->last_id, type, t->event.data, t->event.len, true);
    for (live_listener_t **pp = &t->listeners; *pp;) {
        live_listener_t *l = *pp;
        bool due = l->fresh ? !same_answer(l->last_id, t->last_id) : !only_fresh;
        if (l->fresh && due && held_back(l, t, now)) {
            held = true;
            pp = &l->next;
            continue;
        }
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
    t->has_fresh = held; /* each had its first event, or is gone, or is held back */
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
        live_topic_t **kp = &h->by_key[answer_hash(t->key, strlen(t->key)) % TOPIC_BUCKETS];
        while (*kp != t)
            kp = &(*kp)->key_next;
        *kp = t->key_next;
        unqueue(h, t);
        board_remove(h, t);
        buf_free(&t->last);
        buf_free(&t->event);
        free(t->pl);
        free(t);
        h->n_topics--;
    }
}

/* Whether listener l's client still has a read for each minute its stream has been open: one is
 * taken from its bucket per minute; when none is there, the stream ends with a `gone` event
 * (429 rate_limited), and false. Under mu. */
static bool pay(live_hub_t *h, live_listener_t *l, int64_t now_b)
{
    while (now_b - l->paid_ms >= LIVE_READ_MS) {
        rl_verdict_t v;
        ratelimit_take(h->app->limits, l->client, RL_READ, 1, now_b, &v);
        if (v.refused) {
            static const char why[] = "{\"error\":{\"code\":\"rate_limited\",\"message\":\"this client's reads "
                                      "ran out: a live stream counts as one read a minute\"}}";
            buf_t ev;
            buf_init(&ev);
            event_text(&ev, "0", "gone", why, sizeof why - 1, false);
            offer_last(l, &ev);
            buf_free(&ev);
            h->limited++;
            return false;
        }
        h->charged += v.limited;
        l->paid_ms += LIVE_READ_MS;
    }
    return true;
}

/* A comment line to every listener (proxies keep the stream, and one gone is found), the reads
 * its minutes cost, a listener whose events waited unread for http.send_timeout_s dropped, and a
 * check of every board's top and of every stream whose read failed (a player's stream is
 * computed again only for a change that touches it). Each listener and topic has its second of
 * the heartbeat (`slot`, one of live.heartbeat_s): a beat of 20,000 listeners at once is 20,000
 * sends, 200 ms during which no event goes out; one second's slice is a fifteenth of it. Under mu. */
static void beat(live_hub_t *h, int64_t now, unsigned slot)
{
    static const buf_t comment = {.data = (char *)":\n\n", .len = 3, .cap = 0};
    bool limits = ratelimit_active(h->app->limits);
    int64_t now_b = clock_bucket_ms();
    for (live_topic_t *t = h->topics; t; t = t->next) {
        /* fresh ones too (a comment may come before the first event): a newcomer waiting for a
         * first answer the primary cannot give now is still kept alive, and found gone */
        for (live_listener_t **pp = &t->listeners; *pp;) {
            live_listener_t *l = *pp;
            if (l->beat_slot != slot) {
                pp = &l->next;
            } else if (http_stream_unread_ms(l->stream, now) >= (int64_t)h->o.send_timeout_s * 1000) {
                *pp = l->next;
                listener_free(h, l, true); /* its connection cut, as when its buffer is full */
            } else if (limits && !pay(h, l, now_b)) {
                *pp = l->next;
                listener_free(h, l, false);
            } else if (offer(h, pp, &comment)) {
                pp = &l->next;
            }
        }
        if (t->beat_slot == slot && (!t->pl || t->failing))
            mark(h, t, now);
    }
}

/* A player's stream has no standing to show: the window's page of one (its window and total).
 * The page's path is the stream's read's board; into *body, its status returned. */
static int read_page(live_hub_t *h, const char *board, int style, bool tier_first, buf_t *body, bool *from_tier)
{
    char path[BOARD_ID_MAX + 96];
    snprintf(path, sizeof path, "/v1/leaderboards/%s/entries?limit=1&rank_style=%s&consistency=strong", board,
             rank_style_name((rank_style_t)style));
    return api_read_in_place(h->app, path, clock_wall_ms(), tier_first, body, from_tier);
}

/* Compute topic t (mu held on entry and exit, released meanwhile) and send what changed. */
static void compute(live_hub_t *h, live_topic_t *t)
{
    t->busy = true;
    t->dirty = false;
    char path[sizeof t->path], board[sizeof t->board];
    memcpy(path, t->path, sizeof path);
    memcpy(board, t->board, sizeof board);
    int style = t->style;
    bool tier_first = !t->primary_ms || rank_tier_caught_up_ms(h->app->tier) > t->primary_ms;
    /* The last number heard before the read: the read holds at least its commits (the listener
     * hands a notice to the rank tier and the caches before it tells the hub). One heard during
     * the read may be missing from it, so the id and the newcomers' wait use this one. */
    int64_t heard_seq = t->b->seq, heard_day = t->b->seq_day;
    pthread_mutex_unlock(&h->mu);
    buf_t body, page;
    buf_init(&body);
    buf_init(&page);
    bool from_tier = false;
    int status = api_read_in_place(h->app, path, clock_wall_ms(), tier_first, &body, &from_tier);
    /* a player without a standing in the window: its page tells the window and the total */
    bool standing = true;
    if (t->pl && status == 404 && memmem(body.data, body.len, "\"player_id\"", 11)) {
        standing = false;
        status = read_page(h, board, style, tier_first, &page, &from_tier);
    }
    pthread_mutex_lock(&h->mu);
    int64_t now = clock_mono_ms(); /* the interval counts from the read's end */
    t->primary_ms = from_tier ? 0 : now;
    h->computed++;
    t->busy = false;
    t->next_ms = now + h->o.min_interval_ms;
    const buf_t *answer = standing ? &body : &page;
    buf_t event;
    buf_init(&event);
    int64_t rank = 0;
    if (status == 200 && answer->len > 0 && t->pl &&
        !live_player_event(t->pl, standing ? body.data : NULL, body.len, page.data, page.len, &event, &rank)) {
        log_warn(NULL, "live stream %s: an answer it cannot read", t->key);
        status = 500;
    }
    if (status == 200 && answer->len > 0) {
        char w[16];
        answer_window(answer->data, answer->len, w);
        char d[11] = "";
        if (heard_day >= 0)
            window_format_day(heard_day, d);
        int64_t seq = strcmp(d, w) == 0 ? heard_seq : 0;
        /* What is compared: a board's top as it is; a player's answer around them, or, without a
         * standing, the event itself (its window and total). */
        const buf_t *core = t->pl && standing ? &body : t->pl ? &event : &body;
        /* The id names the answer too (a hash of it): a commit whose notice is still on its way
         * may be in an answer under the number heard before it, and an instance that heard no
         * number yet says 0; only the same answer has the same id, on any instance. */
        char id[64];
        snprintf(id, sizeof id, "%s:%" PRId64 ".%08" PRIx32, w, seq,
                 answer_hash(core->data, core->len));
        bool changed = core->len != t->last.len || memcmp(core->data, t->last.data, core->len) != 0;
        buf_t reset;
        buf_init(&reset);
        if (changed && t->window[0] && strcmp(t->window, w) != 0) { /* a new window: named first */
            buf_puts(&reset, "{\"board\":");
            buf_json_str(&reset, t->board, strlen(t->board));
            buf_puts(&reset, ",\"window\":");
            buf_json_str(&reset, w, strlen(w));
            buf_puts(&reset, ",\"previous_window\":");
            buf_json_str(&reset, t->window, strlen(t->window));
            buf_putc(&reset, '}');
        }
        if (changed) {
            buf_reset(&t->last);
            buf_append(&t->last, core->data, core->len);
            buf_reset(&t->event);
            if (t->pl)
                buf_append(&t->event, event.data, event.len);
            else
                buf_append(&t->event, body.data, body.len);
            snprintf(t->last_id, sizeof t->last_id, "%s", id);
            if (t->pl)
                live_player_sent(t->pl, rank);
        }
        if (strcmp(t->window, w) != 0) {
            snprintf(t->window, sizeof t->window, "%s", w);
            int64_t day;
            t->day = window_parse_day(w, &day) ? day : -1;
            int64_t next = t->day >= 0 ? window_next_day(t->rule, t->day) : -1;
            t->reset_ms = next >= 0 ? next * MS_PER_DAY : 0;
        }
        t->answer_seq = seq;
        if (t->pl)
            watch_refresh(t);
        send_answer(h, t, !changed, reset.len ? &reset : NULL);
        buf_free(&reset);
    } else if (status == 404 || status == 400 || status == 403) {
        send_error(h, t, answer);
    } else {
        /* unavailable for now (the primary down): the listeners keep what they had, and the next
         * heartbeat tries again (said once, not at every try) */
        t->next_ms = now + (int64_t)h->o.heartbeat_s * 1000;
        if (!t->failing)
            log_warn(NULL, "live stream %s: its read answered %d; tried again every heartbeat", t->key, status);
        t->failing = true;
        goto out;
    }
    if (t->failing)
        log_info(NULL, "live stream %s: its read answers again", t->key);
    t->failing = false;
out:
    buf_free(&event);
    buf_free(&body);
    buf_free(&page);
}

/* Once a second: a window that ended is news without a write (the wall clock is looked at here:
 * a test's clock moves without a signal), a newcomer held back may have waited long enough, and
 * topics nobody listens to go. Under mu. */
static void each_second(live_hub_t *h, int64_t now)
{
    int64_t wall = clock_wall_ms();
    for (live_topic_t *t = h->topics; t; t = t->next) {
        if (t->reset_ms > 0 && wall >= t->reset_ms) {
            t->reset_ms = 0;
            mark(h, t, now);
        }
        if (t->has_fresh && t->last.len > 0) /* a newcomer held back: its wait may be over, and
                                              * the answer in hand may be the one it waits past */
            mark(h, t, now);
    }
    reap_topics(h);
}

static void *hub_main(void *arg)
{
    live_hub_t *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        int64_t now = clock_mono_ms();
        if (now >= h->next_beat_ms) {
            beat(h, now, h->beat_round++ % (unsigned)h->o.heartbeat_s);
            h->next_beat_ms = now + 1000;
        }
        if (now >= h->next_second_ms) {
            each_second(h, now);
            h->next_second_ms = now + 1000;
        }
        live_topic_t *t = h->n_heap ? h->heap[0] : NULL;
        if (t && t->due_ms <= now) {
            unqueue(h, t);
            if (!t->listeners)
                continue;
            if (t->has_fresh && t->last.len > 0 && !t->dirty) { /* a newcomer: the answer in hand */
                send_answer(h, t, true, NULL);
                continue;
            }
            if (!(t->dirty || t->has_fresh))
                continue;
            if (now < t->next_ms) { /* marked while it was computed: its interval runs again */
                queue_at(h, t, t->next_ms);
                continue;
            }
            compute(h, t);
            continue;
        }
        int64_t wake_at = h->next_beat_ms < h->next_second_ms ? h->next_beat_ms : h->next_second_ms;
        if (t && t->due_ms < wake_at)
            wake_at = t->due_ms;
        struct timespec ts = clock_deadline_ms((int)(wake_at - now > 0 ? wake_at - now : 1));
        pthread_cond_timedwait(&h->wake, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---------------------------------------------------------------- from the listener */

/* A numbered change of board b's window, heard: the players' streams it touches are due. The
 * scan reads each stream's bounds only; a deletion (rare) is shown to every one of them, since a
 * player deleted far ahead may have been among those who passed one. Under mu. */
static bool heard_change(live_hub_t *h, live_board_t *b, const notice_change_t *c, int64_t now)
{
    bool had = c->existed || c->removed, any = false;
    /* the keys it passed through: a new standing came from behind everyone */
    int64_t lo = c->removed ? c->old_sort_key : c->new_sort_key, hi = had ? lo : INT64_MAX;
    if (had && c->old_sort_key < lo)
        lo = c->old_sort_key;
    if (had && c->old_sort_key > hi)
        hi = c->old_sort_key;
    uint32_t who = answer_hash(c->player, c->player_len);
    for (size_t i = 0; i < b->n_watch; i++) {
        live_watch_t *e = &b->watch[i];
        if ((e->day >= 0 && e->day != c->day) || (!c->removed && e->who != who && (hi < e->lo || lo > e->hi)))
            continue;
        live_topic_t *t = e->t;
        if (live_player_heard(t->pl, c)) {
            mark(h, t, now);
            any = true;
        }
        watch_refresh(t);
    }
    return any;
}

void live_hub_heard(void *hub, const char *payload)
{
    live_hub_t *h = hub;
    bool any = false;
    int64_t s_gen = 0, s_day = -1; /* the last S line's window: the W and D lines after it are its */
    pthread_mutex_lock(&h->mu);
    int64_t now = clock_mono_ms();
    for (const char *p = h->topics ? payload : ""; *p;) { /* no stream open: nothing to read */
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        int64_t gen = 0, day = 0, seq = 0;
        int part, parts;
        long long g = 0;
        notice_change_t c;
        live_board_t *b;
        if (p[0] == 'S' && notice_parse_seq(p, len, &gen, &day, &seq, &part, &parts)) {
            /* a transaction's number for one window: the board's tops are computed again; its
             * players' streams wait for the W and D lines that follow (an un-numbered W or D line
             * is a hint sent again after Redis took it, and is not read) */
            s_gen = gen, s_day = day;
            if ((b = board_find(h, gen))) {
                if (seq != b->part_seq || day != b->part_day) {
                    b->part_seq = seq;
                    b->part_day = day;
                    b->parts_seen = 0;
                }
                if (++b->parts_seen >= parts) { /* heard whole: in the tier and the caches now */
                    if (day > b->seq_day) {
                        b->seq_day = day;
                        b->seq = 0;
                    }
                    if (day == b->seq_day && seq > b->seq)
                        b->seq = seq;
                }
                for (size_t i = 0; i < b->n_tops; i++)
                    mark(h, b->tops[i], now);
                any |= b->n_tops > 0;
            }
        } else if ((p[0] == 'W' || p[0] == 'D') && notice_parse_change(p, len, &c)) {
            if (c.gen == s_gen && c.day == s_day && (b = board_find(h, c.gen)))
                any |= heard_change(h, b, &c, now);
        } else if ((p[0] == 'P' || p[0] == 'R' || p[0] == 'B') && sscanf(p + 1, " %lld", &g) == 1) {
            /* a window changed wholesale (an import), or Redis missed it; a board deleted */
            if ((b = board_find(h, g))) {
                for (size_t i = 0; i < b->n_tops; i++)
                    mark(h, b->tops[i], now);
                for (size_t i = 0; i < b->n_watch; i++)
                    mark(h, b->watch[i].t, now);
                any = true;
            }
        } else if (p[0] != 'V' && p[0] != 'W' && p[0] != 'D') {
            /* not understood, or notices lost ("?"): every stream is checked */
            for (live_topic_t *t = h->topics; t; t = t->next)
                mark(h, t, now);
            any = true;
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
    h->next_beat_ms = clock_mono_ms() + 1000;
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
    free(h->heap);
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
    out->charged = h->charged;
    out->limited = h->limited;
    pthread_mutex_unlock(&h->mu);
}

/* ---------------------------------------------------------------- the route */

/* A new listener of (board, player, N, style), `player` NULL for the board's top: its stream (the
 * server's hold) into *out. 0, or the status of a limit it passes (503 for this instance's, 429
 * for its address's), or 1 when the hub is stopping. */
static int add_listener(live_hub_t *h, const board_t *b, const char *player, int n, rank_style_t style,
                        const http_req_t *req, http_stream_t **out)
{
    char key[sizeof ((live_topic_t *)0)->key];
    snprintf(key, sizeof key, "%s %s %d %s", b->id, player ? player : "", n, rank_style_name(style));
    pthread_mutex_lock(&h->mu);
    if (h->stopping || h->n_listeners >= (size_t)h->o.max_listeners) {
        bool stopping = h->stopping;
        pthread_mutex_unlock(&h->mu);
        return stopping ? 1 : 503;
    }
    addr_count_t **slot = addr_slot(h, req->limit_addr, false);
    if (slot && (*slot)->n >= (size_t)h->o.max_per_address) {
        pthread_mutex_unlock(&h->mu);
        return 429;
    }
    live_topic_t *topic = NULL, **slot_t = &h->by_key[answer_hash(key, strlen(key)) % TOPIC_BUCKETS];
    for (live_topic_t *t = *slot_t; t && !topic; t = t->key_next)
        if (strcmp(t->key, key) == 0 && t->gen == b->gen)
            topic = t;
    if (!topic) {
        topic = xcalloc(1, sizeof *topic);
        topic->beat_slot = h->beat_slots_given++ % (unsigned)h->o.heartbeat_s;
        snprintf(topic->board, sizeof topic->board, "%s", b->id);
        snprintf(topic->key, sizeof topic->key, "%s", key);
        topic->gen = b->gen;
        topic->rule = board_window_rule(b);
        topic->style = (int)style;
        topic->day = -1;
        if (player) {
            topic->pl = xcalloc(1, sizeof *topic->pl);
            snprintf(topic->pl->player, sizeof topic->pl->player, "%s", player);
            topic->pl->sort = b->sort;
            snprintf(topic->path, sizeof topic->path,
                     "/v1/leaderboards/%s/players/%s/around?before=%d&after=%d&rank_style=%s&consistency=strong",
                     b->id, player, n, n, rank_style_name(style));
        } else {
            snprintf(topic->path, sizeof topic->path,
                     "/v1/leaderboards/%s/entries?limit=%d&rank_style=%s&consistency=strong", b->id, n,
                     rank_style_name(style));
        }
        buf_init(&topic->last);
        buf_init(&topic->event);
        topic->heap_at = NOT_QUEUED;
        board_add(h, topic);
        topic->next = h->topics;
        h->topics = topic;
        topic->key_next = *slot_t;
        *slot_t = topic;
        h->n_topics++;
    }
    live_listener_t *l = xcalloc(1, sizeof *l);
    l->beat_slot = h->beat_slots_given++ % (unsigned)h->o.heartbeat_s;
    l->stream = http_stream_new(LIVE_BUFFER);
    http_stream_takeable(l->stream); /* out of libmicrohttpd once its headers are sent: no pool held */
    snprintf(l->addr, sizeof l->addr, "%s", req->limit_addr);
    snprintf(l->client, sizeof l->client, "%s", req->client);
    l->paid_ms = clock_bucket_ms(); /* its first minute was paid by the request that opened it */
    if (req->last_event_id)
        snprintf(l->last_id, sizeof l->last_id, "%s", req->last_event_id);
    l->fresh = true;
    l->hold_ms = clock_mono_ms() + LIVE_CATCH_UP_MS;
    l->next = topic->listeners;
    topic->listeners = l;
    topic->has_fresh = true;
    (*addr_slot(h, l->addr, true))->n++;
    h->n_listeners++;
    *out = l->stream;
    /* the answer in hand goes at once; without one, it is computed when its interval allows */
    int64_t now = clock_mono_ms();
    if (topic->last.len > 0 && !topic->dirty) {
        unqueue(h, topic);
        queue_at(h, topic, now);
    } else {
        queue_at(h, topic, topic->next_ms > now ? topic->next_ms : now);
    }
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

/* Open a stream of `player` (NULL: the board's top) once its parameters were read. */
static int open_stream(app_t *app, const route_t *rt, http_req_t *req, const char *player, int n, rank_style_t style)
{
    board_t b;
    int rc;
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
    int limit = add_listener(app->live_hub, &b, player, n, style, req, &st);
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

int api_live(app_t *app, const route_t *rt, http_req_t *req)
{
    uint64_t top = 10;
    rank_style_t style;
    int rc = api_param_uint(req, "top", 1, LIVE_TOP_MAX, 10, &top);
    if (rc || (rc = api_param_rank_style(req, &style)))
        return rc;
    return open_stream(app, rt, req, NULL, (int)top, style);
}

int api_player_live(app_t *app, const route_t *rt, http_req_t *req)
{
    uint64_t around = 5;
    rank_style_t style;
    int rc;
    if (rt->player_bad || !id_player_valid(rt->player, rt->player_len))
        return http_error(req, 400, "invalid_argument", "player_id", ID_PLAYER_RULE);
    if ((rc = api_param_uint(req, "around", 0, LIVE_AROUND_MAX, 5, &around)) || (rc = api_param_rank_style(req, &style)))
        return rc;
    char player[PLAYER_ID_MAX + 1];
    memcpy(player, rt->player, rt->player_len); /* validated: at most PLAYER_ID_MAX bytes */
    player[rt->player_len] = '\0';
    return open_stream(app, rt, req, player, (int)around, style);
}
