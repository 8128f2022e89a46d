/* util/arena.c — a request's bump allocator, and jansson parsing into one. */
#include "util/arena.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/alloc.h"

#define ALIGN 16
#define MIN_CHUNK 1024
/* A body parses into 10 to 20 times its size (a 100-item scores:batch of 6.5 KB into about
 * 70 KB, one submission of 66 bytes into about 1.2 KB): the first chunk is sized for that. */
#define PARSE_FACTOR 16
/* A larger body parses into the heap: the arena keeps every block jansson frees during the
 * parse (its growing string buffers), several times a large body's size. */
#define PARSE_ARENA_MAX 65536

struct arena_chunk {
    arena_chunk_t *next;
    size_t cap, off;       /* bytes of data, and the first free one */
    alignas(ALIGN) unsigned char data[];
};

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

void arena_init(arena_t *a)
{
    a->chunks = NULL;
    a->used = 0;
    a->held = 0;
    a->next_chunk = 0;
}

void *arena_alloc(arena_t *a, size_t n)
{
    if (n > SIZE_MAX / 4)
        abort(); /* no request asks for that much: a caller's arithmetic went wrong */
    n = round_up(n ? n : 1);
    arena_chunk_t *c = a->chunks;
    if (!c || c->cap - c->off < n) {
        /* Each chunk at least doubles the last: a growing parse takes a handful of chunks. */
        size_t cap = c ? c->cap * 2 : MIN_CHUNK;
        if (a->next_chunk > cap)
            cap = round_up(a->next_chunk);
        a->next_chunk = 0;
        if (cap < n)
            cap = n;
        arena_chunk_t *nc = xmalloc(sizeof *nc + cap);
        nc->next = c;
        nc->cap = cap;
        nc->off = 0;
        a->chunks = c = nc;
        a->held += cap;
    }
    void *p = c->data + c->off;
    c->off += n;
    a->used += n;
    return p;
}

void arena_clear(arena_t *a)
{
    arena_chunk_t *c = a->chunks;
    while (c) {
        arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    arena_init(a);
}

/* ---------------------------------------------------------------- jansson */

/* Every jansson block starts with a header saying where it came from, so that json_delete
 * (which may run on any thread, after the parse) frees heap blocks and leaves arena ones. */
typedef struct {
    uint64_t from;
    uint64_t pad;          /* keeps the block 16-byte aligned */
} block_header_t;

#define FROM_HEAP 0x70616568U  /* "heap" */
#define FROM_ARENA 0x616e6572U /* "rena" */

/* The arena of the parse running on this thread, NULL outside arena_json_loadb. Per thread,
 * never shared: only the thread that set it reads it. */
static _Thread_local arena_t *parse_arena;
/* Set once by arena_json_install, before any other thread starts; read-only afterwards. */
static bool installed;

static void *json_block_alloc(size_t n)
{
    block_header_t *h;
    if (n > SIZE_MAX - sizeof *h)
        return NULL;
    if (parse_arena) {
        h = arena_alloc(parse_arena, sizeof *h + n);
        h->from = FROM_ARENA;
    } else {
        h = malloc(sizeof *h + n);
        if (!h)
            return NULL; /* jansson reports out of memory itself */
        h->from = FROM_HEAP;
    }
    return h + 1;
}

static void json_block_free(void *p)
{
    if (!p)
        return;
    block_header_t *h = (block_header_t *)p - 1;
    if (h->from == FROM_HEAP)
        free(h);
    else if (h->from != FROM_ARENA)
        abort(); /* not a block of ours: memory is corrupt */
}

void arena_json_install(void)
{
    json_set_alloc_funcs(json_block_alloc, json_block_free);
    installed = true;
}

char *json_text_dup(const json_t *v, size_t flags)
{
    size_t n = json_dumpb(v, NULL, 0, flags);
    if (n == 0)
        return NULL;
    char *text = xmalloc(n + 1);
    if (json_dumpb(v, text, n, flags) != n) {
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

json_t *arena_json_loadb(arena_t *a, const char *text, size_t len, size_t flags, json_error_t *err)
{
    if (installed && len <= PARSE_ARENA_MAX) {
        /* Room for the whole parse in one chunk, also when the request's parameters took one
         * already. */
        if (!a->chunks || a->chunks->cap - a->chunks->off < len * PARSE_FACTOR)
            a->next_chunk = len * PARSE_FACTOR;
        parse_arena = a;
    }
    json_t *v = json_loadb(text, len, flags, err);
    parse_arena = NULL;
    a->next_chunk = 0; /* a parse that fit in the chunk there was leaves no size for later ones */
    return v;
}
