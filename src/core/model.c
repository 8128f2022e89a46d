/* core/model.c — ownership helpers for boards and entry lists. */
#include "core/model.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"

void board_clear(board_t *b)
{
    free(b->title);
    free(b->metadata);
    free(b->webhook_url);
    free(b->webhook_secret);
    league_clear(&b->league);
    b->title = NULL;
    b->metadata = NULL;
    b->webhook_url = NULL;
    b->webhook_secret = NULL;
}

void board_copy(board_t *dst, const board_t *src)
{
    *dst = *src;
    dst->title = src->title ? xstrdup(src->title) : NULL;
    dst->metadata = src->metadata ? xstrdup(src->metadata) : NULL;
    dst->webhook_url = src->webhook_url ? xstrdup(src->webhook_url) : NULL;
    dst->webhook_secret = src->webhook_secret ? xstrdup(src->webhook_secret) : NULL;
    league_copy(&dst->league, &src->league);
}

static bool str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

size_t board_differences(const board_t *a, const board_t *b, char *out, size_t outlen)
{
    const struct {
        const char *name;
        bool differs;
    } fields[] = {
        {"id", strcmp(a->id, b->id) != 0},
        {"title", !str_eq(a->title, b->title)},
        {"sort", a->sort != b->sort},
        {"operator", a->op != b->op},
        {"reset", a->reset != b->reset},
        {"metadata", !str_eq(a->metadata, b->metadata)},
        {"min_score", a->has_min_score != b->has_min_score || (a->has_min_score && a->min_score != b->min_score)},
        {"max_score", a->has_max_score != b->has_max_score || (a->has_max_score && a->max_score != b->max_score)},
        {"tournament", !tournament_same(&a->tournament, &b->tournament)},
        {"cohorts", !league_same(&a->league, &b->league)},
        {"webhook", !str_eq(a->webhook_url, b->webhook_url)}, /* the secret is never read back */
        {"client_writes", a->client_writes != b->client_writes},
    };
    size_t n = 0, used = 0;
    if (outlen)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (!fields[i].differs)
            continue;
        if (outlen > used) {
            int w = snprintf(out + used, outlen - used, "%s%s", n ? ", " : "", fields[i].name);
            used += w > 0 ? (size_t)w : 0;
        }
        n++;
    }
    return n;
}

bool board_same_definition(const board_t *a, const board_t *b)
{
    return board_differences(a, b, NULL, 0) == 0;
}

void entries_init(entries_t *e)
{
    e->total = 0;
    e->modified_ms = 0;
    e->at_or_before = 0;
    e->items = NULL;
    e->n = 0;
    e->cap = 0;
}

void entries_clear(entries_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->items[i].metadata);
    free(e->items);
    entries_init(e);
}

void entries_reserve(entries_t *e, size_t n)
{
    if (e->cap - e->n >= n)
        return;
    e->cap = e->n + n;
    e->items = xrealloc(e->items, e->cap * sizeof *e->items);
}

static int by_rank(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

void entries_sort_by_rank(entries_t *e)
{
    if (e->n > 1)
        qsort(e->items, e->n, sizeof *e->items, by_rank);
}

entry_t *entries_push(entries_t *e, int64_t rank, const char *player, size_t player_len, int64_t score,
                      int64_t sort_key, int64_t achieved_ms, const char *metadata, size_t metadata_len)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->items = xrealloc(e->items, e->cap * sizeof *e->items);
    }
    entry_t *x = &e->items[e->n++];
    x->rank = rank;
    if (player_len > PLAYER_ID_MAX)
        player_len = PLAYER_ID_MAX;
    memcpy(x->player, player, player_len);
    x->player[player_len] = '\0';
    x->player_len = player_len;
    x->score = score;
    x->sort_key = sort_key;
    x->achieved_ms = achieved_ms;
    x->metadata = metadata ? xstrndup(metadata, metadata_len) : NULL;
    return x;
}
