/* util/heap.h — the process's memory allocator: set up, handed back to the system, reported. */
#ifndef RANKD_UTIL_HEAP_H
#define RANKD_UTIL_HEAP_H

#include <stdbool.h>
#include <stddef.h>

/* Which allocator serves malloc: "jemalloc", "glibc" or "sanitizer". */
const char *heap_allocator(void);

/* Once, before the threads start: the allocator's settings for a server that runs for months. */
void heap_configure(void);

/* Hand the free pages the allocator keeps back to the system (called once a minute). */
void heap_release(void);

/* Bytes allocated and not freed, and bytes the allocator keeps resident beyond them. False when
 * the allocator cannot say (a sanitizer's). */
bool heap_stats(size_t *in_use, size_t *kept);

#endif
