/*
 * tests/fuzz/fuzz_proxy.c — what arrives first on a connection with http.proxy_protocol, and an
 * X-Forwarded-For header. A PROXY header is parsed as the acceptor reads it, prefix by prefix:
 * every prefix shorter than a whole header is NEED_MORE (the acceptor takes those bytes off the
 * socket as the header's), a whole header is no longer than the input, and what a prefix says
 * never changes once it is DONE or INVALID. The same bytes as an X-Forwarded-For value must name
 * an address that is the peer, or one the value spelled.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/proxy_header.h"
#include "util/netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proxy_header_t whole;
    proxy_status_t st = proxy_header_parse(data, size, &whole);
    if (st == PROXY_DONE && (whole.header_len > size || whole.header_len == 0))
        abort();
    size_t upto = st == PROXY_DONE ? whole.header_len : size;
    for (size_t k = 0; k < upto; k++) {
        proxy_header_t h;
        proxy_status_t pst = proxy_header_parse(data, k, &h);
        if (pst == PROXY_DONE)
            abort(); /* done before its own end */
        if (pst == PROXY_INVALID && st != PROXY_INVALID)
            abort(); /* refused, then taken with more bytes */
    }
    if (st == PROXY_DONE && size > whole.header_len) {
        proxy_header_t again;
        if (proxy_header_parse(data, whole.header_len, &again) != PROXY_DONE || again.header_len != whole.header_len
            || again.has_source != whole.has_source)
            abort(); /* what follows the header changed it */
    }

    char *xff = malloc(size + 1);
    memcpy(xff, data, size);
    xff[size] = '\0';
    netaddr_cidr_t trusted[2];
    netaddr_cidr_parse("10.0.0.0/8", &trusted[0]);
    netaddr_cidr_parse("fd00::/8", &trusted[1]);
    netaddr_t peer, client;
    netaddr_parse("10.0.0.1", 8, &peer);
    netaddr_forwarded_client(xff, &peer, trusted, 2, &client);
    char text[NETADDR_TEXT_MAX];
    netaddr_format(&client, text);
    netaddr_t back;
    if (!netaddr_parse(text, strlen(text), &back) || memcmp(back.bytes, client.bytes, 16) != 0)
        abort();
    free(xff);
    return 0;
}
