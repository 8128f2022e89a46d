/*
 * util/buf.h — a growable byte buffer for rendering responses and SQL
 * parameters.
 *
 * A buf_t owns its bytes; buf_free() releases them, buf_steal() hands them
 * to the caller (who frees them). The data is always NUL-terminated so it
 * can be passed where a C string is expected.
 */
#ifndef RANKD_UTIL_BUF_H
#define RANKD_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buf_t;

void buf_init(buf_t *b);
void buf_free(buf_t *b);
void buf_reset(buf_t *b);
void buf_reserve(buf_t *b, size_t extra);
/* Room for exactly `cap` bytes in all (the NUL included), when it has less: no doubling. */
void buf_reserve_total(buf_t *b, size_t cap);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_putc(buf_t *b, char c);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_i64(buf_t *b, int64_t v);
/* Write v in decimal at out (20 bytes at most, no NUL); returns the number of digits.
 * By hand: printf's machinery costs more than the digits on the hot path. */
size_t u64_digits(char *out, uint64_t v);
/* Write v in decimal, with its sign, and a NUL at out (21 bytes at most); returns the length. */
size_t i64_text(char out[21], int64_t v);
/* Append a finite double in its shortest round-tripping form (JSON number). */
void buf_double(buf_t *b, double v);
/* Append `s` as a quoted JSON string, escaping what JSON requires, DEL, and every byte that is not
 * part of well-formed UTF-8 (as \u00XX), so that the text is always valid UTF-8. */
void buf_json_str(buf_t *b, const char *s, size_t n);
/* Append "key": (a JSON member name with its colon), comma-separated by the caller. */
void buf_json_key(buf_t *b, const char *key);
/* Hand the bytes to the caller (free() them); the buffer is left empty. */
char *buf_steal(buf_t *b, size_t *len);

#endif
