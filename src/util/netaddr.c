/* util/netaddr.c — IP addresses and CIDR blocks (see netaddr.h). */
#include "util/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void from_v4(const void *in4, netaddr_t *out)
{
    memcpy(out->bytes, v4_mapped_prefix, 12);
    memcpy(out->bytes + 12, in4, 4);
}

static bool is_v4(const netaddr_t *a)
{
    return memcmp(a->bytes, v4_mapped_prefix, 12) == 0;
}

bool netaddr_parse(const char *s, size_t n, netaddr_t *out)
{
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    char text[NETADDR_TEXT_MAX];
    if (n == 0 || n >= sizeof text)
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, text, &v4) == 1) {
        from_v4(&v4, out);
        return true;
    }
    return inet_pton(AF_INET6, text, out->bytes) == 1;
}

/* Zero the bits of `a` past the first `bits`. */
static void mask(netaddr_t *a, unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        a->bytes[i] &= (uint8_t)(0xff00u >> keep);
    }
}

bool netaddr_cidr_parse(const char *s, netaddr_cidr_t *out)
{
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (!netaddr_parse(s, n, &out->net))
        return false;
    bool v4 = is_v4(&out->net) && memchr(s, ':', n) == NULL;
    unsigned max = v4 ? 32 : 128;
    unsigned bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (*p < '0' || *p > '9' || strlen(p) > 3 || (p[0] == '0' && p[1] != '\0'))
            return false;
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (*end != '\0' || v > max)
            return false;
        bits = (unsigned)v;
    }
    out->bits = v4 ? bits + 96 : bits;
    mask(&out->net, out->bits);
    return true;
}

bool netaddr_from_sockaddr(const struct sockaddr *sa, netaddr_t *out)
{
    if (sa->sa_family == AF_INET) {
        from_v4(&((const struct sockaddr_in *)(const void *)sa)->sin_addr, out);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out->bytes, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

bool netaddr_cidr_contains(const netaddr_cidr_t *c, const netaddr_t *a)
{
    netaddr_t m = *a;
    mask(&m, c->bits);
    return memcmp(m.bytes, c->net.bytes, 16) == 0;
}

bool netaddr_in_any(const netaddr_cidr_t *blocks, size_t n, const netaddr_t *a)
{
    for (size_t i = 0; i < n; i++)
        if (netaddr_cidr_contains(&blocks[i], a))
            return true;
    return false;
}

void netaddr_format(const netaddr_t *a, char out[NETADDR_TEXT_MAX])
{
    if (!is_v4(a)) {
        inet_ntop(AF_INET6, a->bytes, out, NETADDR_TEXT_MAX);
        return;
    }
    /* By hand: glibc formats an IPv4 address with sprintf, and every request names its client. */
    char *p = out;
    for (int i = 12; i < 16; i++) {
        unsigned v = a->bytes[i];
        if (v >= 100)
            *p++ = (char)('0' + v / 100);
        if (v >= 10)
            *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        *p++ = i < 15 ? '.' : '\0';
    }
}

void netaddr_limit_key(const netaddr_t *a, char out[NETADDR_LIMIT_MAX])
{
    if (is_v4(a)) {
        netaddr_format(a, out);
        return;
    }
    netaddr_t net = *a;
    mask(&net, 64);
    inet_ntop(AF_INET6, net.bytes, out, NETADDR_TEXT_MAX);
    strcat(out, "/64"); /* a /64's text is at most 21 bytes ("xxxx:xxxx:xxxx:xxxx::") */
}

bool netaddr_same_limit(const netaddr_t *a, const netaddr_t *b)
{
    if (is_v4(a) || is_v4(b))
        return memcmp(a->bytes, b->bytes, 16) == 0;
    return memcmp(a->bytes, b->bytes, 8) == 0;
}

void netaddr_forwarded_client(const char *xff, const netaddr_t *peer, const netaddr_cidr_t *trusted,
                              size_t n_trusted, netaddr_t *client)
{
    *client = *peer;
    const char *end = xff + strlen(xff);
    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        const char *a = start, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        end = start > xff ? start - 1 : xff;
        if (a == b) /* an empty item ("a,,b"): nothing said, go on */
            continue;
        netaddr_t hop;
        if (!netaddr_parse(a, (size_t)(b - a), &hop))
            return; /* garbage: the last trusted address stands */
        *client = hop;
        if (!netaddr_in_any(trusted, n_trusted, &hop))
            return;
    }
}
