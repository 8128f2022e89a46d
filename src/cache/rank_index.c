/* cache/rank_index.c — one window's standings in rank order; see rank_index.h. */
#include "cache/rank_index.h"

#include <stdlib.h>
#include <string.h>

#include "core/board.h"
#include "util/alloc.h"

/* Entries per block: a memmove of at most 3 KiB per change, and blocks few enough (about
 * 10,000 for a million players) that the tree over them stays in cache. */
#define RI_BLOCK 128
/* A load fills blocks this far, leaving room for the writes that follow. */
#define RI_LOAD_FILL (RI_BLOCK * 7 / 8)

/* A player's standing, allocated once per change of its metadata: the id, then the metadata. */
typedef struct ri_player {
    struct ri_player *next; /* the hash chain */
    int64_t sort_key;
    int64_t achieved_ms;
    uint32_t hash;
    uint16_t metadata_len;
    uint8_t id_len;
    bool has_metadata;
    char data[];
} ri_player_t;

_Static_assert(PLAYER_ID_MAX <= UINT8_MAX, "ri_player_t.id_len holds a player id's length");
_Static_assert(METADATA_MAX <= UINT16_MAX, "ri_player_t.metadata_len holds metadata's length");

/* An entry of a block: the position inline, so a search compares numbers before it follows
 * the pointer to the id. */
typedef struct {
    int64_t sort_key;
    int64_t achieved_ms;
    ri_player_t *p;
} ri_slot_t;

typedef struct {
    uint32_t n;
    uint32_t starts; /* slots that start a sort key (differ from the one before them on the board) */
    ri_slot_t s[RI_BLOCK];
} ri_block_t;

struct rank_index {
    ri_block_t **blocks;
    size_t nb, cap;
    int64_t *tree;     /* Fenwick tree over the blocks' counts, 1-based, nb + 1 long (cap + 1 allocated) */
    int64_t *dtree;    /* the same over the blocks' `starts`: distinct sort keys before a block */
    ri_player_t **tab; /* the players by id */
    size_t tab_size;   /* a power of two */
    int64_t count;
    size_t player_bytes;
};

/* ---------------------------------------------------------------- the players' hash */

static uint32_t id_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static ri_player_t **find_link(const rank_index_t *ix, const char *id, size_t len, uint32_t h)
{
    ri_player_t **l = &ix->tab[h & (ix->tab_size - 1)];
    for (; *l; l = &(*l)->next)
        if ((*l)->hash == h && (*l)->id_len == len && memcmp((*l)->data, id, len) == 0)
            return l;
    return l;
}

static void tab_grow(rank_index_t *ix)
{
    size_t size = ix->tab_size * 2;
    ri_player_t **tab = xcalloc(size, sizeof *tab);
    for (size_t i = 0; i < ix->tab_size; i++) {
        for (ri_player_t *p = ix->tab[i], *next; p; p = next) {
            next = p->next;
            p->next = tab[p->hash & (size - 1)];
            tab[p->hash & (size - 1)] = p;
        }
    }
    free(ix->tab);
    ix->tab = tab;
    ix->tab_size = size;
}

/* Allocation overhead counted per player (malloc's header, rounding). */
#define RI_MALLOC_OVERHEAD 16

static size_t player_size(size_t id_len, size_t md_len)
{
    return sizeof(ri_player_t) + id_len + md_len;
}

/* ---------------------------------------------------------------- the tree over blocks */

static void fenwick_add(int64_t *tree, size_t nb, size_t b, int64_t d)
{
    for (size_t i = b + 1; i <= nb; i += i & (~i + 1))
        tree[i] += d;
}

static int64_t fenwick_prefix(const int64_t *tree, size_t b)
{
    int64_t s = 0;
    for (size_t i = b; i > 0; i -= i & (~i + 1))
        s += tree[i];
    return s;
}

static void tree_add(rank_index_t *ix, size_t b, int64_t d)
{
    fenwick_add(ix->tree, ix->nb, b, d);
}

/* Standings in blocks [0, b). */
static int64_t tree_prefix(const rank_index_t *ix, size_t b)
{
    return fenwick_prefix(ix->tree, b);
}

/* A block's `starts` changed by d. */
static void starts_add(rank_index_t *ix, size_t b, int64_t d)
{
    if (d == 0)
        return;
    ix->blocks[b]->starts = (uint32_t)((int64_t)ix->blocks[b]->starts + d);
    fenwick_add(ix->dtree, ix->nb, b, d);
}

/* Whether slot i of block b starts a sort key: the first standing, or a sort key other than the
 * one before it (the block's previous slot, or the previous block's last; blocks past the first
 * are never empty). */
static bool slot_starts(const rank_index_t *ix, size_t b, uint32_t i)
{
    const ri_block_t *blk = ix->blocks[b];
    if (i > 0)
        return blk->s[i].sort_key != blk->s[i - 1].sort_key;
    if (b == 0)
        return true;
    const ri_block_t *prev = ix->blocks[b - 1];
    return prev->s[prev->n - 1].sort_key != blk->s[0].sort_key;
}

static uint32_t count_starts(const rank_index_t *ix, size_t b)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < ix->blocks[b]->n; i++)
        n += slot_starts(ix, b, i);
    return n;
}

/* Both trees from the blocks' counts, after blocks were split, merged or dropped: the `starts`
 * of blocks [from, to) are counted again first (the others kept theirs). */
static void tree_build_from(rank_index_t *ix, size_t from, size_t to)
{
    for (size_t b = from; b < to && b < ix->nb; b++)
        ix->blocks[b]->starts = count_starts(ix, b);
    for (size_t i = 1; i <= ix->nb; i++) {
        ix->tree[i] = ix->blocks[i - 1]->n;
        ix->dtree[i] = ix->blocks[i - 1]->starts;
    }
    for (size_t i = 1; i <= ix->nb; i++) {
        size_t j = i + (i & (~i + 1));
        if (j <= ix->nb) {
            ix->tree[j] += ix->tree[i];
            ix->dtree[j] += ix->dtree[i];
        }
    }
}

/* The block holding 0-based rank r (< count), and r's offset in it. */
static size_t tree_find(const rank_index_t *ix, int64_t r, uint32_t *off)
{
    size_t pos = 0, step = 1;
    while (step * 2 <= ix->nb)
        step *= 2;
    for (; step; step /= 2) {
        if (pos + step <= ix->nb && ix->tree[pos + step] <= r) {
            pos += step;
            r -= ix->tree[pos];
        }
    }
    *off = (uint32_t)r;
    return pos;
}

static void blocks_reserve(rank_index_t *ix, size_t n)
{
    if (n <= ix->cap)
        return;
    size_t cap = ix->cap ? ix->cap * 2 : 16;
    while (cap < n)
        cap *= 2;
    ix->blocks = xrealloc(ix->blocks, cap * sizeof *ix->blocks);
    ix->tree = xrealloc(ix->tree, (cap + 1) * sizeof *ix->tree);
    ix->dtree = xrealloc(ix->dtree, (cap + 1) * sizeof *ix->dtree);
    ix->cap = cap;
}

/* A new empty block at index b; the tree is rebuilt by the caller. */
static ri_block_t *block_insert(rank_index_t *ix, size_t b)
{
    blocks_reserve(ix, ix->nb + 1);
    memmove(&ix->blocks[b + 1], &ix->blocks[b], (ix->nb - b) * sizeof *ix->blocks);
    ri_block_t *blk = xmalloc(sizeof *blk);
    blk->n = 0;
    blk->starts = 0;
    ix->blocks[b] = blk;
    ix->nb++;
    return blk;
}

static void block_remove(rank_index_t *ix, size_t b)
{
    free(ix->blocks[b]);
    memmove(&ix->blocks[b], &ix->blocks[b + 1], (ix->nb - b - 1) * sizeof *ix->blocks);
    ix->nb--;
}

/* ---------------------------------------------------------------- positions */

static int cmp_pos(const ri_slot_t *s, int64_t sk, int64_t ms, const char *id, size_t len)
{
    if (s->sort_key != sk)
        return s->sort_key < sk ? -1 : 1;
    if (s->achieved_ms != ms)
        return s->achieved_ms < ms ? -1 : 1;
    size_t n = s->p->id_len < len ? s->p->id_len : len;
    int c = memcmp(s->p->data, id, n);
    if (c)
        return c < 0 ? -1 : 1;
    return s->p->id_len == len ? 0 : s->p->id_len < len ? -1 : 1;
}

/* The block a position belongs in: the last whose first entry is at or before it (the
 * first block when none is). nb > 0. */
static size_t find_block(const rank_index_t *ix, int64_t sk, int64_t ms, const char *id, size_t len)
{
    size_t lo = 0, hi = ix->nb; /* the answer lies in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        const ri_block_t *blk = ix->blocks[mid];
        if (blk->n > 0 && cmp_pos(&blk->s[0], sk, ms, id, len) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The first slot of blk at or after the position. */
static uint32_t slot_lower(const ri_block_t *blk, int64_t sk, int64_t ms, const char *id, size_t len)
{
    uint32_t lo = 0, hi = blk->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cmp_pos(&blk->s[mid], sk, ms, id, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The slot after slot i of block b on the board (which may be one past a block's end when i
 * is its last): false when there is none. */
static bool next_slot(const rank_index_t *ix, size_t b, uint32_t i, size_t *nb_out, uint32_t *ni_out)
{
    if (i + 1 < ix->blocks[b]->n) {
        *nb_out = b, *ni_out = i + 1;
        return true;
    }
    if (b + 1 < ix->nb && ix->blocks[b + 1]->n > 0) {
        *nb_out = b + 1, *ni_out = 0;
        return true;
    }
    return false;
}

static void slot_insert(rank_index_t *ix, ri_player_t *p)
{
    if (ix->nb == 0) {
        block_insert(ix, 0);
        tree_build_from(ix, 0, 1);
    }
    const char *id = p->data;
    size_t b = find_block(ix, p->sort_key, p->achieved_ms, id, p->id_len);
    ri_block_t *blk = ix->blocks[b];
    uint32_t i = slot_lower(blk, p->sort_key, p->achieved_ms, id, p->id_len);
    if (blk->n == RI_BLOCK) { /* split in halves, then insert into the half it belongs in */
        size_t split = b;
        ri_block_t *right = block_insert(ix, b + 1);
        blk = ix->blocks[b];
        uint32_t half = RI_BLOCK / 2;
        memcpy(right->s, &blk->s[half], (RI_BLOCK - half) * sizeof *blk->s);
        right->n = RI_BLOCK - half;
        blk->n = half;
        if (i > half) {
            i -= half;
            blk = right;
            b++;
        }
        memmove(&blk->s[i + 1], &blk->s[i], (blk->n - i) * sizeof *blk->s);
        blk->s[i] = (ri_slot_t){p->sort_key, p->achieved_ms, p};
        blk->n++;
        /* The new slot and the one after it are in the two halves or the block after them. */
        tree_build_from(ix, split, split + 3);
    } else {
        /* Only the new slot and the one after it may change whether they start a sort key. */
        size_t nb_next = b;
        uint32_t ni_next = i;
        bool has_next = i < blk->n || (b + 1 < ix->nb && ix->blocks[b + 1]->n > 0);
        if (i == blk->n && has_next)
            nb_next = b + 1, ni_next = 0;
        bool next_was = has_next && slot_starts(ix, nb_next, ni_next);
        memmove(&blk->s[i + 1], &blk->s[i], (blk->n - i) * sizeof *blk->s);
        blk->s[i] = (ri_slot_t){p->sort_key, p->achieved_ms, p};
        blk->n++;
        tree_add(ix, b, 1);
        if (nb_next == b && has_next)
            ni_next++;
        starts_add(ix, b, slot_starts(ix, b, i));
        if (has_next)
            starts_add(ix, nb_next, (int64_t)slot_starts(ix, nb_next, ni_next) - next_was);
    }
    ix->count++;
}

static void slot_remove(rank_index_t *ix, const ri_player_t *p)
{
    size_t b = find_block(ix, p->sort_key, p->achieved_ms, p->data, p->id_len);
    ri_block_t *blk = ix->blocks[b];
    uint32_t i = slot_lower(blk, p->sort_key, p->achieved_ms, p->data, p->id_len);
    /* i < blk->n and blk->s[i].p == p: the hash and the blocks hold the same players. The slot
     * after it may change whether it starts a sort key. */
    bool was = slot_starts(ix, b, i);
    size_t nb_next = b;
    uint32_t ni_next = 0;
    bool has_next = next_slot(ix, b, i, &nb_next, &ni_next);
    bool next_was = has_next && slot_starts(ix, nb_next, ni_next);
    memmove(&blk->s[i], &blk->s[i + 1], (blk->n - i - 1) * sizeof *blk->s);
    blk->n--;
    ix->count--;
    if (nb_next == b && has_next)
        ni_next--;
    /* A block that ran low merges into a neighbour with room: blocks stay at least a quarter
     * full on average whatever the churn (a split leaves two halves, so no merge undoes it). */
    size_t left = b + 1 < ix->nb ? b : b - 1, right = left + 1; /* b and a neighbour */
    if (ix->nb > 1 && ix->blocks[left]->n + ix->blocks[right]->n <= RI_BLOCK / 2) {
        ri_block_t *l = ix->blocks[left], *r = ix->blocks[right];
        memcpy(&l->s[l->n], r->s, r->n * sizeof *r->s);
        l->n += r->n;
        block_remove(ix, right);
        tree_build_from(ix, left, left + 2); /* the merged block and the one after it */
    } else if (blk->n == 0 && ix->nb > 1) {
        block_remove(ix, b);
        tree_build_from(ix, b, b + 1); /* the block that followed the emptied one */
    } else {
        tree_add(ix, b, -1);
        starts_add(ix, b, -(int64_t)was);
        if (has_next)
            starts_add(ix, nb_next, (int64_t)slot_starts(ix, nb_next, ni_next) - next_was);
    }
}

/* ---------------------------------------------------------------- the interface */

rank_index_t *ri_new(void)
{
    rank_index_t *ix = xcalloc(1, sizeof *ix);
    ix->tab_size = 64;
    ix->tab = xcalloc(ix->tab_size, sizeof *ix->tab);
    blocks_reserve(ix, 1);
    return ix;
}

void ri_free(rank_index_t *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->tab_size; i++) {
        for (ri_player_t *p = ix->tab[i], *next; p; p = next) {
            next = p->next;
            free(p);
        }
    }
    for (size_t b = 0; b < ix->nb; b++)
        free(ix->blocks[b]);
    free(ix->blocks);
    free(ix->tree);
    free(ix->dtree);
    free(ix->tab);
    free(ix);
}

static ri_player_t *player_new(const char *id, size_t len, uint32_t h, int64_t sk, int64_t ms, const char *md,
                               size_t md_len)
{
    ri_player_t *p = xmalloc(player_size(len, md ? md_len : 0));
    p->next = NULL;
    p->sort_key = sk;
    p->achieved_ms = ms;
    p->hash = h;
    p->id_len = (uint8_t)len;
    p->has_metadata = md != NULL;
    p->metadata_len = md ? (uint16_t)md_len : 0;
    memcpy(p->data, id, len);
    if (md)
        memcpy(p->data + len, md, md_len);
    return p;
}

void ri_set(rank_index_t *ix, const char *player, size_t len, int64_t sort_key, int64_t achieved_ms,
            const char *metadata, size_t metadata_len)
{
    uint32_t h = id_hash(player, len);
    ri_player_t **link = find_link(ix, player, len, h);
    ri_player_t *old = *link;
    if (old) {
        slot_remove(ix, old);
        *link = old->next;
        ix->player_bytes -= player_size(old->id_len, old->metadata_len) + RI_MALLOC_OVERHEAD;
        free(old);
    } else if ((size_t)ix->count + 1 > ix->tab_size) {
        tab_grow(ix);
        link = find_link(ix, player, len, h);
    }
    ri_player_t *p = player_new(player, len, h, sort_key, achieved_ms, metadata, metadata_len);
    p->next = *link;
    *link = p;
    ix->player_bytes += player_size(len, p->metadata_len) + RI_MALLOC_OVERHEAD;
    slot_insert(ix, p);
}

void ri_append(rank_index_t *ix, const char *player, size_t len, int64_t sort_key, int64_t achieved_ms,
               const char *metadata, size_t metadata_len)
{
    uint32_t h = id_hash(player, len);
    ri_block_t *last = ix->nb ? ix->blocks[ix->nb - 1] : NULL;
    if (*find_link(ix, player, len, h) || (last && last->n > 0 &&
                                            cmp_pos(&last->s[last->n - 1], sort_key, achieved_ms, player, len) >= 0)) {
        ri_set(ix, player, len, sort_key, achieved_ms, metadata, metadata_len);
        return;
    }
    if ((size_t)ix->count + 1 > ix->tab_size)
        tab_grow(ix);
    ri_player_t **link = find_link(ix, player, len, h);
    ri_player_t *p = player_new(player, len, h, sort_key, achieved_ms, metadata, metadata_len);
    *link = p;
    ix->player_bytes += player_size(len, p->metadata_len) + RI_MALLOC_OVERHEAD;
    bool starts = !last || last->n == 0 || last->s[last->n - 1].sort_key != sort_key;
    if (!last || last->n >= RI_LOAD_FILL) {
        /* A block at the end: its tree nodes sum the nodes below them (no rebuild). */
        last = block_insert(ix, ix->nb);
        size_t i = ix->nb;
        ix->tree[i] = ix->dtree[i] = 0;
        for (size_t j = i - 1, stop = i - (i & (~i + 1)); j > stop; j -= j & (~j + 1)) {
            ix->tree[i] += ix->tree[j];
            ix->dtree[i] += ix->dtree[j];
        }
    }
    last->s[last->n++] = (ri_slot_t){sort_key, achieved_ms, p};
    tree_add(ix, ix->nb - 1, 1);
    if (starts)
        starts_add(ix, ix->nb - 1, 1);
    ix->count++;
}

bool ri_remove(rank_index_t *ix, const char *player, size_t len)
{
    ri_player_t **link = find_link(ix, player, len, id_hash(player, len));
    ri_player_t *p = *link;
    if (!p)
        return false;
    slot_remove(ix, p);
    *link = p->next;
    ix->player_bytes -= player_size(p->id_len, p->metadata_len) + RI_MALLOC_OVERHEAD;
    free(p);
    return true;
}

int64_t ri_count(const rank_index_t *ix)
{
    return ix->count;
}

size_t ri_bytes(const rank_index_t *ix)
{
    return sizeof *ix + ix->nb * (sizeof(ri_block_t) + RI_MALLOC_OVERHEAD) + ix->cap * sizeof *ix->blocks +
           2 * (ix->cap + 1) * sizeof *ix->tree + ix->tab_size * sizeof *ix->tab + ix->player_bytes;
}

static void fill(const ri_slot_t *s, ri_entry_t *out)
{
    const ri_player_t *p = s->p;
    *out = (ri_entry_t){p->sort_key, p->achieved_ms, p->data, p->id_len,
                        p->has_metadata ? p->data + p->id_len : NULL, p->metadata_len};
}

int64_t ri_rank(const rank_index_t *ix, const char *player, size_t len, ri_entry_t *out)
{
    const ri_player_t *p = *find_link(ix, player, len, id_hash(player, len));
    if (!p)
        return -1;
    size_t b = find_block(ix, p->sort_key, p->achieved_ms, p->data, p->id_len);
    uint32_t i = slot_lower(ix->blocks[b], p->sort_key, p->achieved_ms, p->data, p->id_len);
    if (out)
        fill(&ix->blocks[b]->s[i], out);
    return tree_prefix(ix, b) + i;
}

int64_t ri_lower_bound(const rank_index_t *ix, int64_t sort_key, int64_t achieved_ms, const char *player, size_t len,
                       bool *exact)
{
    *exact = false;
    if (ix->count == 0)
        return 0;
    size_t b = find_block(ix, sort_key, achieved_ms, player, len);
    const ri_block_t *blk = ix->blocks[b];
    uint32_t i = slot_lower(blk, sort_key, achieved_ms, player, len);
    if (i < blk->n)
        *exact = cmp_pos(&blk->s[i], sort_key, achieved_ms, player, len) == 0;
    return tree_prefix(ix, b) + i;
}

int64_t ri_distinct_before(const rank_index_t *ix, int64_t sort_key)
{
    if (ix->count == 0)
        return 0;
    /* The sort keys of the standings before the first one at or after sort_key: those that
     * start a sort key, in the blocks before (the tree) and in the block (a scan of it). */
    size_t b = find_block(ix, sort_key, INT64_MIN, "", 0);
    uint32_t i = slot_lower(ix->blocks[b], sort_key, INT64_MIN, "", 0);
    int64_t n = fenwick_prefix(ix->dtree, b);
    for (uint32_t j = 0; j < i; j++)
        n += slot_starts(ix, b, j);
    return n;
}

size_t ri_range(const rank_index_t *ix, int64_t from, size_t n, ri_entry_t *out)
{
    if (from < 0 || from >= ix->count || n == 0)
        return 0;
    uint32_t off;
    size_t b = tree_find(ix, from, &off);
    size_t k = 0;
    for (; b < ix->nb && k < n; b++, off = 0)
        for (uint32_t i = off; i < ix->blocks[b]->n && k < n; i++)
            fill(&ix->blocks[b]->s[i], &out[k++]);
    return k;
}

bool ri_check(const rank_index_t *ix)
{
    int64_t seen = 0;
    const ri_slot_t *prev = NULL;
    for (size_t b = 0; b < ix->nb; b++) {
        const ri_block_t *blk = ix->blocks[b];
        if (tree_prefix(ix, b + 1) - tree_prefix(ix, b) != blk->n || (blk->n == 0 && ix->nb > 1))
            return false;
        if (blk->starts != count_starts(ix, b) ||
            fenwick_prefix(ix->dtree, b + 1) - fenwick_prefix(ix->dtree, b) != blk->starts)
            return false;
        for (uint32_t i = 0; i < blk->n; i++) {
            const ri_slot_t *s = &blk->s[i];
            if (s->sort_key != s->p->sort_key || s->achieved_ms != s->p->achieved_ms)
                return false;
            if (prev && cmp_pos(prev, s->sort_key, s->achieved_ms, s->p->data, s->p->id_len) >= 0)
                return false;
            if (*find_link(ix, s->p->data, s->p->id_len, s->p->hash) != s->p)
                return false;
            prev = s;
            seen++;
        }
    }
    int64_t hashed = 0;
    for (size_t i = 0; i < ix->tab_size; i++)
        for (const ri_player_t *p = ix->tab[i]; p; p = p->next)
            hashed++;
    return seen == ix->count && hashed == ix->count;
}
