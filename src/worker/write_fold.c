/* worker/write_fold.c — grouping and folding a write batch's submissions (pure). */
#include "worker/write_fold.h"

#include <stdlib.h>
#include <string.h>

static int cmp_key(const write_item_t *a, const write_item_t *b)
{
    if (a->board->gen != b->board->gen)
        return a->board->gen < b->board->gen ? -1 : 1;
    if (a->day != b->day)
        return a->day < b->day ? -1 : 1;
    return strcmp(a->player, b->player);
}

static int cmp_order(const void *x, const void *y, void *ctx)
{
    const write_item_t *items = ctx;
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    int c = cmp_key(&items[a], &items[b]);
    if (c)
        return c;
    return (a > b) - (a < b);
}

size_t write_group_items(const write_item_t *items, size_t *order, size_t m, int *group_of, write_group_t *groups)
{
    qsort_r(order, m, sizeof *order, cmp_order, (void *)items);
    size_t n_groups = 0;
    for (size_t a = 0; a < m; a++) {
        const write_item_t *it = &items[order[a]];
        if (n_groups == 0 || cmp_key(it, &items[order[a - 1]]) != 0) {
            write_group_t *g = &groups[n_groups++];
            memset(g, 0, sizeof *g);
            g->gen = it->board->gen;
            g->day = it->day;
            g->player = it->player;
            g->board = it->board;
        }
        group_of[order[a]] = (int)n_groups - 1;
    }
    return n_groups;
}

void write_fold(write_item_t *items, size_t n, const int *group_of, write_group_t *groups, write_fold_t *out)
{
    for (size_t a = 0; a < n; a++) {
        if (group_of[a] < 0)
            continue;
        /* Items are visited in arrival order overall, which is arrival order per group too. */
        write_item_t *it = &items[a];
        write_group_t *g = &groups[group_of[a]];
        score_standing_t next;
        bool updated;
        out[a].had_prev = g->cur.exists;
        out[a].prev = g->cur.value;
        out[a].prev_achieved_ms = g->achieved_ms;
        if (score_apply(it->board->op, it->board->sort, g->cur, it->score, &next, &updated) == SCORE_OVERFLOW) {
            write_item_fail(it, 400, "invalid_argument", "score", "the sum would leave the score range");
            continue;
        }
        if (updated) {
            g->cur = next;
            g->achieved_ms = it->received_ms;
            g->metadata = it->metadata;
            g->changed = true;
        }
        out[a].applied = true;
        out[a].updated = updated;
        out[a].after = g->cur.value;
        out[a].achieved_ms = g->achieved_ms;
    }
}

void write_item_fail(write_item_t *it, int status, const char *code, const char *field, const char *message)
{
    it->status = status;
    it->err_code = code;
    it->err_field = field;
    it->err_message = message;
}
