/*
 * util/alloc.h — allocation that never returns NULL.
 *
 * Out of memory is not a condition rankd can serve through; like Redis's
 * zmalloc, these abort instead of threading NULL through every caller.
 * Whatever they return is freed with free().
 */
#ifndef RANKD_UTIL_ALLOC_H
#define RANKD_UTIL_ALLOC_H

#include <stddef.h>
#include <stdlib.h> /* free() */

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
