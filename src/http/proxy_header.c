/* http/proxy_header.c — the PROXY protocol header, versions 1 and 2 (see proxy_header.h). */
#include "http/proxy_header.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "util/hostport.h"

static const uint8_t v2_signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
#define V1_MAX 107 /* "PROXY TCP6 " + two full IPv6 addresses + two ports + CRLF */

/* One space-separated field of a v1 line: [p, end) up to the next space. */
static bool v1_field(const char **p, const char *end, const char **field, size_t *n)
{
    const char *s = *p;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    const char *e = sp ? sp : end;
    if (e == s)
        return false;
    *field = s;
    *n = (size_t)(e - s);
    *p = sp ? sp + 1 : end;
    return true;
}

static bool v1_address(int family, const char *s, size_t n, void *out)
{
    char text[INET6_ADDRSTRLEN];
    if (n >= sizeof text)
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    return inet_pton(family, text, out) == 1;
}

/* "PROXY TCP4|TCP6 src dst sport dport" (the CRLF stripped), or "PROXY UNKNOWN ...". */
static proxy_status_t parse_v1_line(const char *line, size_t n, proxy_header_t *out)
{
    const char *p = line + 6, *end = line + n; /* after "PROXY " */
    const char *proto, *src, *dst, *sport, *dport;
    size_t lproto, lsrc, ldst, lsport, ldport;
    if (!v1_field(&p, end, &proto, &lproto))
        return PROXY_INVALID;
    if (lproto == 7 && memcmp(proto, "UNKNOWN", 7) == 0)
        return PROXY_DONE; /* the rest of the line says nothing to believe */
    bool v6 = lproto == 4 && memcmp(proto, "TCP6", 4) == 0;
    if (!v6 && !(lproto == 4 && memcmp(proto, "TCP4", 4) == 0))
        return PROXY_INVALID;
    if (!v1_field(&p, end, &src, &lsrc) || !v1_field(&p, end, &dst, &ldst) || !v1_field(&p, end, &sport, &lsport)
        || !v1_field(&p, end, &dport, &ldport) || p != end)
        return PROXY_INVALID;
    int sp, dp;
    if (!hostport_port(sport, lsport, &sp) || !hostport_port(dport, ldport, &dp))
        return PROXY_INVALID;
    memset(&out->source, 0, sizeof out->source);
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&out->source;
        struct in6_addr unused;
        if (!v1_address(AF_INET6, src, lsrc, &s6->sin6_addr) || !v1_address(AF_INET6, dst, ldst, &unused))
            return PROXY_INVALID;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)sp);
        out->source_len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&out->source;
        struct in_addr unused;
        if (!v1_address(AF_INET, src, lsrc, &s4->sin_addr) || !v1_address(AF_INET, dst, ldst, &unused))
            return PROXY_INVALID;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)sp);
        out->source_len = sizeof *s4;
    }
    out->has_source = true;
    return PROXY_DONE;
}

static proxy_status_t parse_v1(const uint8_t *buf, size_t len, proxy_header_t *out)
{
    size_t scan = len < V1_MAX ? len : V1_MAX;
    for (size_t i = 0; i < scan; i++) {
        if (buf[i] == '\r') {
            if (i + 1 == len)
                return PROXY_NEED_MORE;
            if (buf[i + 1] != '\n')
                return PROXY_INVALID;
            out->header_len = i + 2;
            return parse_v1_line((const char *)buf, i, out);
        }
        if (buf[i] < 0x20 || buf[i] > 0x7e)
            return PROXY_INVALID;
    }
    return len < V1_MAX ? PROXY_NEED_MORE : PROXY_INVALID;
}

static proxy_status_t parse_v2(const uint8_t *buf, size_t len, proxy_header_t *out)
{
    if (len < 16)
        return PROXY_NEED_MORE;
    unsigned version = buf[12] >> 4, command = buf[12] & 0x0f;
    unsigned family = buf[13] >> 4, transport = buf[13] & 0x0f;
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if (version != 2 || command > 1 || 16 + body > PROXY_HEADER_MAX)
        return PROXY_INVALID;
    if (len < 16 + body)
        return PROXY_NEED_MORE;
    out->header_len = 16 + body;
    if (command == 0 || transport != 1) /* LOCAL, or not a stream: the peer stands */
        return PROXY_DONE;
    const uint8_t *a = buf + 16;
    memset(&out->source, 0, sizeof out->source);
    if (family == 1) {
        if (body < 12)
            return PROXY_INVALID;
        struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&out->source;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a, 4);
        memcpy(&s4->sin_port, a + 8, 2);
        out->source_len = sizeof *s4;
        out->has_source = true;
    } else if (family == 2) {
        if (body < 36)
            return PROXY_INVALID;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&out->source;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
        memcpy(&s6->sin6_port, a + 32, 2);
        out->source_len = sizeof *s6;
        out->has_source = true;
    } else if (family == 3) {
        if (body < 216)
            return PROXY_INVALID;
    } else if (family != 0) {
        return PROXY_INVALID;
    }
    return PROXY_DONE;
}

proxy_status_t proxy_header_parse(const uint8_t *buf, size_t len, proxy_header_t *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return PROXY_NEED_MORE;
    size_t n = len < 12 ? len : 12;
    if (memcmp(buf, v2_signature, n) == 0)
        return len < 12 ? PROXY_NEED_MORE : parse_v2(buf, len, out);
    n = len < 6 ? len : 6;
    if (memcmp(buf, "PROXY ", n) == 0)
        return len < 6 ? PROXY_NEED_MORE : parse_v1(buf, len, out);
    return PROXY_INVALID;
}
