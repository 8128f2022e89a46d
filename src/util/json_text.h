/*
 * util/json_text.h — compact JSON text as rankd stores and returns it.
 *
 * jansson prints a real with 17 significant digits (0.1 becomes 0.10000000000000001). Stored
 * metadata is returned as its compact serialization (API.md), so a real is written with the
 * fewest digits that read back to the same double, as JavaScript and Python print it.
 */
#ifndef RANKD_UTIL_JSON_TEXT_H
#define RANKD_UTIL_JSON_TEXT_H

#include <jansson.h>
#include <stddef.h>

/* `v` as compact JSON, key order kept, reals in their shortest form; malloc'd (the caller
 * frees it), or NULL when `v` cannot be serialized. */
char *json_text_compact(const json_t *v);

/* The shortest text of the finite double `d` that reads back to it, always with a '.' or an
 * exponent (a real stays a real): 0.1, 100.0, 1e+22, 5e-324. Writes at most 32 bytes to
 * `out`; returns the length. */
size_t json_real_shortest(double d, char out[32]);

#endif
