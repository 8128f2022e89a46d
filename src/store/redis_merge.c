/* store/redis_merge.c — grouping, merging and replying for the Redis pipe (pure). */
#include "store/redis_merge.h"

#include <string.h>

#include "store/resp.h"
#include "util/alloc.h"

static redis_call_t *next_call(const redis_call_t *c)
{
    return c->link.next ? WORKQ_OWNER(c->link.next, redis_call_t, link) : NULL;
}

/* Whether b may join the command of a: the same script, the same keys. */
static bool same_head(const redis_call_t *a, const redis_call_t *b)
{
    int k = a->merge->shared;
    if (b->merge != a->merge || a->argc < k || b->argc < k)
        return false;
    for (int i = 2; i < k; i++)
        if (a->argvlen[i] != b->argvlen[i] || memcmp(a->argv[i], b->argv[i], a->argvlen[i]) != 0)
            return false;
    return true;
}

void redis_merge_group(redis_call_t *calls)
{
    redis_call_t *first[REDIS_MERGE_OPEN], *last[REDIS_MERGE_OPEN];
    size_t open = 0;
    for (redis_call_t *c = calls; c; c = next_call(c)) {
        c->merged = NULL;
        c->merged_at = 0;
        if (!c->merge)
            continue;
        size_t g = 0;
        while (g < open && !same_head(first[g], c))
            g++;
        if (g < open) {
            c->merged_at = last[g]->merged_at + 1;
            last[g]->merged = c;
            last[g] = c;
        } else if (open < REDIS_MERGE_OPEN) {
            first[open] = last[open] = c;
            open++;
        }
    }
}

size_t redis_merge_command(const redis_call_t *first, redis_merge_args_t *a)
{
    int k = first->merge->shared;
    size_t n = (size_t)k;
    for (const redis_call_t *m = first; m; m = m->merged)
        n += (size_t)(m->argc - k);
    if (n > a->cap) {
        a->cap = n > 2 * a->cap ? n : 2 * a->cap;
        a->argv = xrealloc(a->argv, a->cap * sizeof *a->argv);
        a->argvlen = xrealloc(a->argvlen, a->cap * sizeof *a->argvlen);
    }
    a->argv[0] = "EVALSHA", a->argvlen[0] = 7; /* never a range block: redis_merge_tx_text */
    a->argv[1] = first->merge->sha, a->argvlen[1] = 40;
    for (int i = 2; i < k; i++)
        a->argv[i] = first->argv[i], a->argvlen[i] = first->argvlen[i];
    size_t at = (size_t)k;
    for (const redis_call_t *m = first; m; m = m->merged)
        for (int i = k; i < m->argc; i++, at++)
            a->argv[at] = m->argv[i], a->argvlen[at] = m->argvlen[i];
    return n;
}

size_t redis_merge_tx_text(const redis_call_t *first, buf_t *out)
{
    const char *const *a = first->argv;
    const size_t *l = first->argvlen;
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const size_t multi_len[] = {5}, exec_len[] = {4};
    const char *exists[] = {"EXISTS", a[3]}, *zcard[] = {"ZCARD", a[2]};
    const size_t exists_len[] = {6, l[3]}, zcard_len[] = {5, l[2]};
    resp_command(out, 1, multi, multi_len);
    resp_command(out, 2, exists, exists_len);
    resp_command(out, 2, zcard, zcard_len);
    size_t n = 0;
    for (const redis_call_t *m = first; m; m = m->merged, n++) {
        const char *range[] = {"ZRANGE", a[2], m->argv[4], m->argv[5]};
        const size_t range_len[] = {6, l[2], m->argvlen[4], m->argvlen[5]};
        resp_command(out, 4, range, range_len);
    }
    resp_command(out, 1, exec, exec_len);
    return n + 4; /* +OK, QUEUED for each of the n + 2 commands, EXEC's array */
}

bool redis_merge_hand_out(redis_call_t *first, redisReply *reply)
{
    if (first->merge && first->merge->tx) {
        for (redis_call_t *m = first; m; m = m->merged)
            m->reply = reply; /* each reads its own range out of it (merged_at) */
        return true;
    }
    if (!first->merged) {
        first->reply = reply;
        return true;
    }
    size_t n = 0;
    for (const redis_call_t *m = first; m; m = m->merged)
        n++;
    bool each = reply->type == REDIS_REPLY_ARRAY;
    if (each && reply->elements != n)
        return false;
    for (redis_call_t *m = first; m; m = m->merged)
        m->reply = each ? reply->element[m->merged_at] : reply;
    return true;
}

void redis_merge_args_free(redis_merge_args_t *a)
{
    free(a->argv);
    free(a->argvlen);
    *a = (redis_merge_args_t){0};
}
