/* util/hostport.c — host and port, for the configuration and for Redis URLs. */
#include "util/hostport.h"

#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool hostport_port(const char *s, size_t n, int *port)
{
    if (n == 0 || n > 5)
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *port = v;
    return true;
}

bool hostport_split(const char *s, size_t n, bool need_port, const char **host, size_t *host_len, int *port)
{
    const char *rest;
    size_t hl;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL || close == s + 1)
            return false;
        *host = s + 1;
        hl = (size_t)(close - s - 1);
        for (size_t i = 0; i < hl; i++) {
            char c = (*host)[i];
            if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
                return false;
        }
        rest = close + 1;
    } else {
        const char *colon = memchr(s, ':', n);
        hl = colon ? (size_t)(colon - s) : n;
        *host = s;
        if (hl == 0)
            return false;
        for (size_t i = 0; i < hl; i++) {
            char c = s[i];
            if (!(is_alnum(c) || c == '.' || c == '-' || c == '_'))
                return false;
        }
        rest = s + hl;
    }
    *host_len = hl;
    size_t rl = n - (size_t)(rest - s);
    if (rl == 0) {
        *port = 0;
        return !need_port;
    }
    if (rest[0] != ':')
        return false;
    return hostport_port(rest + 1, rl - 1, port);
}
