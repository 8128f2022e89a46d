/*
 * tests/fuzz/fuzz_head.c — the first bytes of a connection, as the acceptor checks them before
 * libmicrohttpd (http/request_head.c). Whatever the bytes: the check reads none past the input,
 * a verdict once reached on a prefix (OK: the head ended; BAD: refused) holds for every longer
 * input, a refusal names a status the API documents and its answer is well-formed, and more
 * than REQUEST_HEAD_MAX bytes with no end of head are never NEED_MORE.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/request_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly `size` bytes: ASan sees any read past it. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    head_verdict_t whole;
    head_status_t st = request_head_check(buf, size, &whole);
    if (st == HEAD_NEED_MORE && size > REQUEST_HEAD_MAX)
        abort();
    if (st == HEAD_BAD) {
        if (whole.status != 400 && whole.status != 414 && whole.status != 431 && whole.status != 505)
            abort();
        char out[1024];
        size_t n = request_head_answer(&whole, 0, out, sizeof out);
        if (n == 0 || n != strlen(out) || strncmp(out, "HTTP/1.1 ", 9) != 0 || !strstr(out, "\r\n\r\n{\"error\":"))
            abort();
    }
    /* Prefixes at a few cut points (all of them would make each input quadratic). */
    for (size_t k = 0; k < size && k <= REQUEST_HEAD_MAX + 1; k += 1 + k / 8) {
        head_verdict_t v;
        head_status_t pst = request_head_check(buf, k, &v);
        if (pst != HEAD_NEED_MORE && pst != st)
            abort(); /* a verdict a longer input took back */
        if (pst == HEAD_BAD && v.status != whole.status)
            abort();
    }
    free(buf);
    return 0;
}
