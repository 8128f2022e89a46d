/* util/buf.c — growable byte buffer with JSON string escaping. */
#include "util/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

void buf_init(buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(buf_t *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_reserve(buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0';
}

void buf_reserve_total(buf_t *b, size_t cap)
{
    if (cap <= b->cap)
        return;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0';
}

void buf_append(buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_putc(buf_t *b, char c)
{
    if (b->len + 2 > b->cap) /* the byte and the terminator */
        buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    /* Format straight into the free space, which almost always suffices; only a longer
     * result is formatted a second time, once the space is there. */
    buf_reserve(b, 64);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n <= 0) {
        b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        buf_reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* The number of decimal digits of v, by comparisons (Redis's digits10). */
static size_t decimal_width(uint64_t v)
{
    if (v < 10)
        return 1;
    if (v < 100)
        return 2;
    if (v < 1000)
        return 3;
    if (v < 1000000000000ULL) {
        if (v < 100000000ULL) {
            if (v < 1000000)
                return v < 10000 ? 4 : 5 + (v >= 100000);
            return 7 + (v >= 10000000ULL);
        }
        if (v < 10000000000ULL)
            return 9 + (v >= 1000000000ULL);
        return 11 + (v >= 100000000000ULL);
    }
    return 12 + decimal_width(v / 1000000000000ULL);
}

size_t u64_digits(char *out, uint64_t v)
{
    /* Two digits per division, from the back, as Redis's ull2string does: a rank or a score
     * takes half the divisions of a digit at a time. */
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                   "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                   "8081828384858687888990919293949596979899";
    size_t n = decimal_width(v);
    size_t i = n;
    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        out[--i] = pairs[d + 1];
        out[--i] = pairs[d];
    }
    if (v >= 10) {
        out[--i] = pairs[v * 2 + 1];
        out[--i] = pairs[v * 2];
    } else {
        out[--i] = (char)('0' + v);
    }
    return n;
}

size_t i64_text(char out[21], int64_t v)
{
    size_t n = 0;
    if (v < 0)
        out[n++] = '-';
    n += u64_digits(out + n, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
    out[n] = '\0';
    return n;
}

void buf_i64(buf_t *b, int64_t v)
{
    char tmp[21];
    buf_append(b, tmp, i64_text(tmp, v));
}

void buf_double(buf_t *b, double v)
{
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    buf_puts(b, tmp);
}

/* The length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 when it is not one. s[0] is 0x80 or above. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

void buf_json_str(buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_reserve(b, n + 2);
    buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\')
            continue;
        if (c >= 0x80) {
            size_t len = utf8_sequence((const unsigned char *)s + i, n - i);
            if (len) {
                i += len - 1;
                continue;
            }
        }
        buf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': buf_append(b, "\\\"", 2); break;
        case '\\': buf_append(b, "\\\\", 2); break;
        case '\n': buf_append(b, "\\n", 2); break;
        case '\r': buf_append(b, "\\r", 2); break;
        case '\t': buf_append(b, "\\t", 2); break;
        default: {
            /* A control character, DEL, or a byte that is not UTF-8 (as the code point of the
             * same number): the text stays valid UTF-8 and shows which byte was there. */
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, esc, 6);
        }
        }
    }
    buf_append(b, s + run, n - run);
    buf_putc(b, '"');
}

void buf_json_key(buf_t *b, const char *key)
{
    buf_json_str(b, key, strlen(key));
    buf_putc(b, ':');
}

char *buf_steal(buf_t *b, size_t *len)
{
    if (!b->data)
        buf_reserve(b, 0);
    char *p = b->data;
    if (len)
        *len = b->len;
    buf_init(b);
    return p;
}
