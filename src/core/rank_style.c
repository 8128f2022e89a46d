/* core/rank_style.c — rank numbers in each style; see rank_style.h. */
#include "core/rank_style.h"

#include <stddef.h>
#include <string.h>

static const char *const names[] = {[RANK_ORDINAL] = "ordinal", [RANK_COMPETITION] = "competition",
                                    [RANK_DENSE] = "dense"};

bool rank_style_parse(const char *s, rank_style_t *out)
{
    *out = RANK_ORDINAL;
    if (!s)
        return true;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (rank_style_t)i;
            return true;
        }
    }
    return false;
}

const char *rank_style_name(rank_style_t style)
{
    return names[style];
}

bool rank_restyle(entries_t *e, rank_style_t style, bool adjacent, rank_before_fn before, void *arg)
{
    if (style == RANK_ORDINAL)
        return true;
    for (size_t i = 0; i < e->n; i++) {
        entry_t *x = &e->items[i];
        entry_t *prev = i > 0 ? &e->items[i - 1] : NULL;
        if (prev && prev->sort_key == x->sort_key) {
            x->rank = prev->rank; /* a tie: the group's rank */
            continue;
        }
        if (prev && adjacent) {
            /* The first of its group, right after the group before it on the board. */
            x->rank = style == RANK_COMPETITION ? x->rank : prev->rank + 1;
            continue;
        }
        int64_t n;
        if (!before(arg, style, x->sort_key, &n))
            return false;
        x->rank = n + 1;
    }
    return true;
}
