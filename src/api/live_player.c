/* api/live_player.c — a player's live stream between two events (see live_player.h). */
#include "api/live_player.h"

#include <inttypes.h>
#include <jansson.h>
#include <string.h>

#include "core/window.h"

/* An entry's position (its score, achieved_at and player_id); false when it has none. */
static bool entry_pos(const live_player_t *p, json_t *e, order_pos_t *out)
{
    json_t *score = json_object_get(e, "score"), *at = json_object_get(e, "achieved_at"),
           *id = json_object_get(e, "player_id");
    int64_t ms;
    if (!json_is_integer(score) || !json_is_string(at) || !json_is_string(id) ||
        !window_parse_ms(json_string_value(at), json_string_length(at), &ms))
        return false;
    return order_pos_set(out, order_sort_key(p->sort, (int64_t)json_integer_value(score)), ms,
                         json_string_value(id), json_string_length(id));
}

static bool is_player(const live_player_t *p, const char *id, size_t len)
{
    return len == strlen(p->player) && memcmp(id, p->player, len) == 0;
}

/* Where the player moved past in p->passed, or n_passed. */
static size_t passed_find(const live_player_t *p, const char *id, size_t len)
{
    size_t i = 0;
    while (i < p->n_passed && !(p->passed[i].player_len == len && memcmp(p->passed[i].player, id, len) == 0))
        i++;
    return i;
}

bool live_player_heard(live_player_t *p, const notice_change_t *c)
{
    if (!p->placed) /* no standing: only the player's own first one is news (a total alone is not) */
        return is_player(p, c->player, c->player_len) && !c->removed;
    order_pos_t old = {0}, now = {0};
    bool had = c->existed || c->removed;
    if (had && !order_pos_set(&old, c->old_sort_key, c->old_ms, c->player, c->player_len))
        return true;
    if (!c->removed && !order_pos_set(&now, c->new_sort_key, c->new_ms, c->player, c->player_len))
        return true;
    if (is_player(p, c->player, c->player_len)) {
        if (c->removed)
            p->placed = false;
        else
            p->pos = now;
        return true;
    }
    bool was_ahead = had && order_pos_cmp(&old, &p->pos) < 0;
    bool is_ahead = !c->removed && order_pos_cmp(&now, &p->pos) < 0;
    size_t i = passed_find(p, c->player, c->player_len);
    if (i < p->n_passed) {
        if (c->removed) /* gone: it passes no one */
            p->passed[i] = p->passed[--p->n_passed];
        else
            p->passed[i] = now;
    } else if (is_ahead && !was_ahead && p->n_passed < LIVE_OVERTAKERS_MAX) {
        p->passed[p->n_passed++] = now;
    }
    if (was_ahead != is_ahead) /* the player's rank moved */
        return true;
    /* a position shown, or one that lands among them */
    bool in_old = had && p->bounded && order_pos_cmp(&old, &p->first) >= 0 && order_pos_cmp(&old, &p->last) <= 0;
    bool in_new = !c->removed && p->bounded && order_pos_cmp(&now, &p->first) >= 0 && order_pos_cmp(&now, &p->last) <= 0;
    return !p->bounded || in_old || in_new;
}

/* Append `v`, a JSON value of the answer, as it is written (an integer or null here). */
static void put_int_or_null(buf_t *o, json_t *v)
{
    if (json_is_integer(v))
        buf_printf(o, "%" PRId64, (int64_t)json_integer_value(v));
    else
        buf_puts(o, "null");
}

bool live_player_event(live_player_t *p, const char *around, size_t around_len, const char *page, size_t page_len,
                       buf_t *out, int64_t *rank)
{
    *rank = 0;
    const char *body = around ? around : page;
    size_t len = around ? around_len : page_len;
    json_t *doc = body && len > 1 && body[0] == '{' ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *entries = json_object_get(doc, "entries");
    if (!json_is_array(entries)) {
        json_decref(doc);
        return false;
    }
    json_t *mine = NULL;
    size_t n = around ? json_array_size(entries) : 0;
    for (size_t i = 0; i < n && !mine; i++) {
        json_t *id = json_object_get(json_array_get(entries, i), "player_id");
        if (json_is_string(id) && is_player(p, json_string_value(id), json_string_length(id)))
            mine = json_array_get(entries, i);
    }
    order_pos_t pos;
    if (around && (!mine || !entry_pos(p, mine, &pos) || !entry_pos(p, json_array_get(entries, 0), &p->first) ||
                   !entry_pos(p, json_array_get(entries, n - 1), &p->last))) {
        json_decref(doc);
        return false;
    }
    p->bounded = around != NULL;
    /* The answer's place is the one notices are compared with from now on: a notice heard before
     * the read and applied above is in it too, and one after it moves it on. */
    p->placed = around != NULL;
    if (around) {
        p->pos = pos;
        json_t *r = json_object_get(mine, "rank");
        *rank = json_is_integer(r) ? (int64_t)json_integer_value(r) : 0;
    }
    buf_puts(out, "{\"player\":");
    buf_json_str(out, p->player, strlen(p->player));
    buf_puts(out, ",\"rank\":");
    put_int_or_null(out, json_object_get(mine, "rank"));
    buf_puts(out, ",\"score\":");
    put_int_or_null(out, json_object_get(mine, "score"));
    buf_puts(out, ",\"previous_rank\":");
    if (p->sent_rank > 0)
        buf_printf(out, "%" PRId64, p->sent_rank);
    else
        buf_puts(out, "null");
    buf_puts(out, ",\"overtaken_by\":[");
    size_t named = 0;
    for (size_t i = 0; i < p->n_passed; i++) {
        /* still ahead (one that passed and fell behind again passed no one) */
        if (around && order_pos_cmp(&p->passed[i], &p->pos) >= 0)
            continue;
        if (named++)
            buf_putc(out, ',');
        buf_json_str(out, p->passed[i].player, p->passed[i].player_len);
    }
    buf_putc(out, ']');
    if (around) { /* the answer's own members follow */
        buf_putc(out, ',');
        buf_append(out, around + 1, around_len - 1);
    } else {
        buf_puts(out, ",\"board\":");
        json_t *b = json_object_get(doc, "board"), *w = json_object_get(doc, "window");
        buf_json_str(out, json_string_value(b) ? json_string_value(b) : "", json_string_length(b));
        buf_puts(out, ",\"window\":");
        buf_json_str(out, json_string_value(w) ? json_string_value(w) : "", json_string_length(w));
        buf_puts(out, ",\"total\":");
        put_int_or_null(out, json_object_get(doc, "total"));
        buf_puts(out, ",\"entries\":[]}");
    }
    json_decref(doc);
    return true;
}

void live_player_bounds(const live_player_t *p, int64_t *lo, int64_t *hi)
{
    if (!p->placed || !p->bounded) {
        *lo = 1, *hi = 0;
        return;
    }
    *lo = p->first.sort_key < p->pos.sort_key ? p->first.sort_key : p->pos.sort_key;
    *hi = p->last.sort_key > p->pos.sort_key ? p->last.sort_key : p->pos.sort_key;
}

void live_player_sent(live_player_t *p, int64_t rank)
{
    p->sent_rank = rank;
    p->n_passed = 0;
}
