/*
 * tests/fuzz/fuzz_cursor.c — cursors, two ways. Input byte 0 even: the rest is text for
 * cursor_decode, and a text it accepts must encode back to itself. Odd: the rest makes a cursor
 * (kind, direction, generation, day, position), which must survive encode and decode unchanged,
 * and whose text with any one character changed must be refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cursor.h"

#define SECRET "fuzz-cursor-secret-0123456789"

static int64_t take64(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    for (int i = 0; i < 8 && *p < end; i++)
        v = v << 8 | *(*p)++;
    return (int64_t)v;
}

static bool same(const cursor_t *a, const cursor_t *b)
{
    return a->kind == b->kind && a->backward == b->backward && a->gen == b->gen && a->day == b->day &&
           order_pos_cmp(&a->pos, &b->pos) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *p = data + 1, *end = data + size;
    if (data[0] % 2 == 0) {
        size_t n = size - 1;
        char *text = malloc(n + 1);
        memcpy(text, p, n);
        text[n] = '\0';
        cursor_t c;
        if (cursor_decode(text, SECRET, strlen(SECRET), &c)) {
            char again[CURSOR_TEXT_MAX];
            cursor_encode(&c, SECRET, strlen(SECRET), again);
            if (strcmp(again, text) != 0)
                abort(); /* two texts for one cursor */
        }
        free(text);
        return 0;
    }
    cursor_t c;
    memset(&c, 0, sizeof c);
    c.kind = (cursor_kind_t)(1 + (p < end ? *p++ : 0) % 3);
    c.backward = p < end && (*p++ & 1);
    c.gen = take64(&p, end);
    c.day = take64(&p, end);
    int64_t sk = take64(&p, end), ms = take64(&p, end);
    size_t plen = (size_t)(end - p) > 64 ? 64 : (size_t)(end - p);
    order_pos_set(&c.pos, sk, ms, (const char *)p, plen);
    char text[CURSOR_TEXT_MAX];
    size_t n = cursor_encode(&c, SECRET, strlen(SECRET), text);
    cursor_t back;
    if (!cursor_decode(text, SECRET, strlen(SECRET), &back) || !same(&c, &back))
        abort();
    for (size_t i = 0; i < n; i++) {
        char was = text[i];
        text[i] = was == 'A' ? 'B' : 'A';
        if (cursor_decode(text, SECRET, strlen(SECRET), &back) && !same(&c, &back))
            abort(); /* a changed text decoded to another cursor */
        text[i] = was;
    }
    return 0;
}
