/*
 * util/arena.h — a request's bump allocator, and jansson parsing into one.
 *
 * A scores:batch body of 100 items is about 1,500 jansson allocations, freed one by one when
 * the request ends; in glibc they pile up in the fastbins and the next allocation of 1 KB or
 * more consolidates them all. An arena hands them out from a few large chunks and frees the
 * chunks at once. Nothing in an arena is freed before the arena is cleared.
 */
#ifndef RANKD_UTIL_ARENA_H
#define RANKD_UTIL_ARENA_H

#include <jansson.h>
#include <stddef.h>

typedef struct arena_chunk arena_chunk_t;

typedef struct {
    arena_chunk_t *chunks; /* owned; the newest first, bump-allocated from its free end */
    size_t used;           /* bytes handed out, for tests and metrics */
    size_t held;           /* bytes of the chunks */
    size_t next_chunk;     /* the next chunk's size at least (a parse's estimate), 0: none; else the
                            * first chunk is the smallest and later ones double the last */
} arena_t;

/* An empty arena: no memory until the first arena_alloc. */
void arena_init(arena_t *a);

/* `n` bytes, 16-byte aligned, valid until arena_clear(a); never NULL (aborts like xmalloc). */
void *arena_alloc(arena_t *a, size_t n);

/* Free every chunk; the arena is empty and usable again. */
void arena_clear(arena_t *a);

/*
 * Route jansson's allocations through arena_json_* (json_set_alloc_funcs). Call once, first
 * thing in main(), before any jansson value exists: a value allocated before would be freed
 * through the hook. Values made outside a parse below still come from malloc.
 */
void arena_json_install(void);

/*
 * json_loadb with every allocation of the parse, the returned tree included, taken from `a`
 * (bodies over 64 KiB, and every parse without arena_json_install(), parse into the heap).
 * The tree must still be json_decref'd, before `a` is cleared: its own nodes are not freed
 * one by one, but values added to it after the parse come from the heap.
 */
json_t *arena_json_loadb(arena_t *a, const char *text, size_t len, size_t flags, json_error_t *err);

/*
 * The compact text of `v` (jansson's dump flags), owned by the caller and freed with free();
 * NULL when `v` cannot be serialized. Use it instead of json_dumps, whose text comes from the
 * hook above and must not be passed to free().
 */
char *json_text_dup(const json_t *v, size_t flags);

/* With the hook installed, json_dumps's text must go back through the hook, not free(). */
#pragma GCC poison json_dumps

#endif
