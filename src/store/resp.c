/* store/resp.c — a command in RESP, written by hand (see resp.h). */
#include "store/resp.h"

#include <string.h>

/* "\r\n" at p; returns the end. */
static char *crlf(char *p)
{
    p[0] = '\r';
    p[1] = '\n';
    return p + 2;
}

void resp_command(buf_t *out, int argc, const char *const *argv, const size_t *argvlen)
{
    /* Room for it all at once: "*" and "$" lines take at most 1 + 20 + 2 bytes each. */
    size_t need = 23;
    for (int i = 0; i < argc; i++)
        need += 23 + (argvlen ? argvlen[i] : strlen(argv[i])) + 2;
    buf_reserve(out, need);
    char *p = out->data + out->len;
    *p++ = '*';
    p = crlf(p + u64_digits(p, (uint64_t)(argc < 0 ? 0 : argc)));
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        *p++ = '$';
        p = crlf(p + u64_digits(p, len));
        if (len)
            memcpy(p, argv[i], len);
        p = crlf(p + len);
    }
    *p = '\0';
    out->len = (size_t)(p - out->data);
}
