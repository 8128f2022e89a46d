/* store/rb_read.c — the replies of the read scripts (store/redis_board.c), parsed into entries:
 * pure, so that every shape a reply may take is tested without a Redis. */
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "util/alloc.h"
#include "store/redis_board.h"

/* One entry of a run from its member M (LEN bytes) into out: false when it is not what rankd
 * wrote. */
static bool parse_entry(const char *m, size_t len, int64_t rank, const board_t *b, entries_t *out)
{
    if (len <= ORDER_PREFIX_LEN)
        return false;
    /* The position ends at the space before the metadata (LUA_MEMBER), or with the member. */
    const char *sp = memchr(m + ORDER_PREFIX_LEN, ' ', len - ORDER_PREFIX_LEN);
    size_t pos_len = sp ? (size_t)(sp - m) : len;
    order_pos_t pos;
    if (!order_member_decode((const unsigned char *)m, pos_len, &pos))
        return false;
    const char *md = sp ? sp + 1 : NULL;
    size_t md_len = sp ? len - pos_len - 1 : 0;
    if (sp && md_len == 0)
        return false;
    entries_push(out, rank, pos.player, pos.player_len, order_score(b->sort, pos.sort_key), pos.sort_key,
                 pos.achieved_ms, md, md_len);
    return true;
}

/* The length of the member that starts packed run P's bytes [at, len) (LUA_PACK): up to the
 * first NUL byte past its prefix, or the end. */
static size_t packed_member_len(const char *p, size_t at, size_t len)
{
    if (len - at <= ORDER_PREFIX_LEN)
        return len - at;
    const char *nul = memchr(p + at + ORDER_PREFIX_LEN, '\0', len - at - ORDER_PREFIX_LEN);
    return nul ? (size_t)(nul - (p + at)) : len - at;
}

/* How many members run R holds: a packed string's, an array's; 0 for anything else. */
static size_t run_members(const redisReply *r)
{
    if (r->type == REDIS_REPLY_ARRAY)
        return r->elements;
    if (r->type != REDIS_REPLY_STRING)
        return 0;
    size_t n = 0, len = r->len;
    for (size_t at = 0; at < len; n++)
        at += packed_member_len(r->str, at, len) + 1;
    return n;
}

/* Every entry of run R, ranked from RANK0 + 1, into out: false when one is not what rankd
 * wrote. */
static bool parse_run(const redisReply *r, int64_t rank0, const board_t *b, entries_t *out)
{
    if (r->type == REDIS_REPLY_STRING) {
        int64_t rank = rank0 + 1;
        for (size_t at = 0, len = r->len; at < len; rank++) {
            size_t n = packed_member_len(r->str, at, len);
            if (!parse_entry(r->str + at, n, rank, b, out))
                return false;
            at += n + 1;
            if (at == len)
                return false; /* a NUL that ends the string: no member follows it */
        }
        return true;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t j = 0; j < r->elements; j++) {
        const redisReply *m = r->element[j];
        if (m->type != REDIS_REPLY_STRING || !parse_entry(m->str, m->len, rank0 + 1 + (int64_t)j, b, out))
            return false;
    }
    return true;
}

/* A styled reply's counts (LUA_STYLED_TAIL): per run, the sort key of its first entry and the
 * count that entry's rank starts from in the read's style. */
typedef struct {
    const redisReply *counts; /* one integer per run */
    const int64_t *first_key; /* per run */
    size_t runs;
} run_counts_t;

static bool before_in_reply(void *arg, rank_style_t style, int64_t sk, int64_t *out)
{
    (void)style; /* the script counted in the read's style */
    const run_counts_t *rc = arg;
    for (size_t j = 0; j < rc->runs; j++) {
        if (rc->first_key[j] == sk) {
            *out = rc->counts->element[j]->integer;
            return true;
        }
    }
    return false; /* a group no run starts: not what the script returns */
}

/* Whether a styled reply's last element is its counts: an array of one integer per run. */
static bool counts_shape(const redisReply *r)
{
    if (r->elements < 2 || r->elements % 2 != 0)
        return false;
    const redisReply *c = r->element[r->elements - 1];
    if (c->type != REDIS_REPLY_ARRAY || c->elements != (r->elements - 2) / 2)
        return false;
    for (size_t j = 0; j < c->elements; j++)
        if (c->element[j]->type != REDIS_REPLY_INTEGER)
            return false;
    return true;
}

rb_status_t rb_read_parse(const rb_read_t *rd, const redisReply *r, const board_t *b, entries_t *out)
{
    if (!r)
        return RB_DOWN;
    rb_status_t st = RB_OK;
    /* A styled read but a score's ends with the counts of its runs. */
    bool styled = rd->style != RANK_ORDINAL && !rd->count_only;
    if (r->type == REDIS_REPLY_NIL) {
        st = RB_COLD;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_INTEGER ||
               (styled ? !counts_shape(r) : r->elements % 2 != 1)) {
        if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOSCRIPT", 8) != 0)
            log_error(NULL, "redis read script: unexpected reply (%.200s)",
                      r->type == REDIS_REPLY_ERROR ? r->str : "shape");
        st = RB_DOWN;
    } else {
        out->total = r->element[0]->integer;
        size_t runs_end = styled ? r->elements - 1 : r->elements, runs = (runs_end - 1) / 2;
        size_t n = 0;
        for (size_t i = 1; i + 1 < runs_end; i += 2)
            n += run_members(r->element[i + 1]);
        /* One allocation of the right size: a single player's 120 bytes stay in malloc's
         * per-thread cache, where the default 16 entries (1,920 bytes) did not. */
        entries_reserve(out, n);
        int64_t first_inline[RB_READ_INLINE];
        int64_t *first_key = runs <= RB_READ_INLINE ? first_inline : xmalloc(runs * sizeof *first_key);
        for (size_t i = 1, j = 0; st == RB_OK && i + 1 < runs_end; i += 2, j++) {
            const redisReply *rank0 = r->element[i];
            size_t at = out->n;
            if (rank0->type != REDIS_REPLY_INTEGER || !parse_run(r->element[i + 1], rank0->integer, b, out))
                st = RB_DOWN;
            else
                first_key[j] = out->n > at ? out->items[at].sort_key : INT64_MIN;
        }
        if (st != RB_OK)
            log_error(NULL, "redis read script: a member that rankd did not write");
        if (st == RB_OK && rd->by_rank)
            entries_sort_by_rank(out);
        /* The style's ranks from the ordinal ones (in rank order) and the runs' counts: a run's
         * entries are neighbours on the board; named players are runs of one. */
        run_counts_t rc = {styled ? r->element[r->elements - 1] : NULL, first_key, runs};
        if (st == RB_OK && styled && !rank_restyle(out, rd->style, !rd->by_rank, before_in_reply, &rc)) {
            log_error(NULL, "redis read script: a styled reply without the count of a rank");
            st = RB_DOWN;
        }
        if (first_key != first_inline)
            free(first_key);
    }
    if (st == RB_OK && rd->count_only)
        out->at_or_before = r->elements == 3 ? r->element[1]->integer : 0;
    if (st != RB_OK)
        entries_clear(out);
    return st;
}

rb_status_t rb_around_rank_parse(const redisReply *r, int64_t *rank, int64_t *total)
{
    *rank = -1;
    if (!r)
        return RB_DOWN;
    if (r->type == REDIS_REPLY_NIL)
        return RB_COLD;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->elements > 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        (r->elements == 2 && (r->element[1]->type != REDIS_REPLY_INTEGER || r->element[1]->integer < 0))) {
        if (r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOSCRIPT", 8) != 0)
            log_error(NULL, "redis around rank: unexpected reply (%.200s)", r->type == REDIS_REPLY_ERROR ? r->str : "shape");
        return RB_DOWN;
    }
    *total = r->element[0]->integer;
    if (r->elements == 2)
        *rank = r->element[1]->integer;
    return RB_OK;
}

rb_status_t rb_around_range_parse(const redisReply *r, size_t at, const char *player, int64_t rank, int before,
                                  const board_t *b, entries_t *out)
{
    if (!r)
        return RB_DOWN;
    /* An error (EXECABORT after a redirection, a replica that refused) or a nil EXEC: the
     * one-script read settles it. */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 + at)
        return RB_AGAIN;
    const redisReply *ready = r->element[0], *count = r->element[1], *range = r->element[2 + at];
    if (ready->type != REDIS_REPLY_INTEGER || count->type != REDIS_REPLY_INTEGER || range->type != REDIS_REPLY_ARRAY)
        return RB_AGAIN;
    if (ready->integer == 0)
        return RB_COLD;
    int64_t start = rank - before < 0 ? 0 : rank - before;
    out->total = count->integer;
    entries_reserve(out, range->elements);
    if (!parse_run(range, start, b, out)) {
        log_error(NULL, "redis around range: a member that rankd did not write");
        entries_clear(out);
        return RB_DOWN;
    }
    /* The set holds one member per player: the player at its rank in this snapshot proves that
     * the range is the one around it. */
    size_t self = (size_t)(rank - start);
    if (self >= out->n || strcmp(out->items[self].player, player) != 0) {
        entries_clear(out);
        return RB_AGAIN;
    }
    return RB_OK;
}
