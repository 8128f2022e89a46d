/* tests/unit/test_netaddr.c — addresses, CIDR blocks, X-Forwarded-For, and the PROXY header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "http/proxy_header.h"
#include "util/netaddr.h"

static netaddr_t addr(const char *s)
{
    netaddr_t a;
    assert_true(netaddr_parse(s, strlen(s), &a));
    return a;
}

static void formats_as(const netaddr_t *a, const char *want)
{
    char out[NETADDR_TEXT_MAX];
    netaddr_format(a, out);
    assert_string_equal(out, want);
}

static void test_addresses_parse_and_format(void **state)
{
    (void)state;
    netaddr_t a = addr("192.0.2.7");
    formats_as(&a, "192.0.2.7");
    a = addr("[2001:db8::1]");
    formats_as(&a, "2001:db8::1");
    a = addr("::ffff:10.1.2.3"); /* the same client, as an IPv6 socket reports it */
    formats_as(&a, "10.1.2.3");
    /* Every digit count of an octet, as inet_ntop writes them. */
    const char *v4[] = {"0.0.0.0", "255.255.255.255", "10.0.100.9", "1.20.199.250"};
    for (size_t i = 0; i < sizeof v4 / sizeof *v4; i++) {
        a = addr(v4[i]);
        formats_as(&a, v4[i]);
    }
    netaddr_t bad;
    assert_false(netaddr_parse("", 0, &bad));
    assert_false(netaddr_parse("192.0.2", 7, &bad));
    assert_false(netaddr_parse("256.0.0.1", 9, &bad));
    assert_false(netaddr_parse("example.com", 11, &bad));
    assert_false(netaddr_parse("192.0.2.7:80", 12, &bad));
}

static void test_cidr_blocks_match_their_addresses_only(void **state)
{
    (void)state;
    netaddr_cidr_t c;
    assert_true(netaddr_cidr_parse("10.0.0.0/8", &c));
    netaddr_t in = addr("10.200.3.4"), out = addr("11.0.0.1"), mapped = addr("::ffff:10.9.9.9");
    assert_true(netaddr_cidr_contains(&c, &in));
    assert_true(netaddr_cidr_contains(&c, &mapped));
    assert_false(netaddr_cidr_contains(&c, &out));

    assert_true(netaddr_cidr_parse("10.1.2.3/8", &c)); /* host bits are ignored */
    assert_true(netaddr_cidr_contains(&c, &in));

    assert_true(netaddr_cidr_parse("192.0.2.128/25", &c));
    netaddr_t hi = addr("192.0.2.200"), lo = addr("192.0.2.100");
    assert_true(netaddr_cidr_contains(&c, &hi));
    assert_false(netaddr_cidr_contains(&c, &lo));

    assert_true(netaddr_cidr_parse("127.0.0.1", &c)); /* one address */
    netaddr_t lb = addr("127.0.0.1"), other = addr("127.0.0.2");
    assert_true(netaddr_cidr_contains(&c, &lb));
    assert_false(netaddr_cidr_contains(&c, &other));

    assert_true(netaddr_cidr_parse("fd00::/8", &c));
    netaddr_t v6 = addr("fd12::5"), v6out = addr("fe80::1");
    assert_true(netaddr_cidr_contains(&c, &v6));
    assert_false(netaddr_cidr_contains(&c, &v6out));
    assert_false(netaddr_cidr_contains(&c, &in));

    assert_true(netaddr_cidr_parse("0.0.0.0/0", &c)); /* every IPv4 address, no IPv6 one */
    assert_true(netaddr_cidr_contains(&c, &out));
    assert_false(netaddr_cidr_contains(&c, &v6));

    const char *bad[] = {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/-1", "fd00::/129", "10.0.0/8", "x/8",
                         "10.0.0.0/8/8", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(netaddr_cidr_parse(bad[i], &c));
}

static void test_the_forwarded_client_is_the_first_untrusted_hop_from_the_right(void **state)
{
    (void)state;
    netaddr_cidr_t trusted[2];
    assert_true(netaddr_cidr_parse("10.0.0.0/8", &trusted[0]));
    assert_true(netaddr_cidr_parse("192.168.1.1", &trusted[1]));
    netaddr_t peer = addr("10.0.0.5"), client;

    netaddr_forwarded_client("203.0.113.9", &peer, trusted, 2, &client);
    formats_as(&client, "203.0.113.9");
    /* What the client wrote itself is left of what the proxies added: never believed. */
    netaddr_forwarded_client("1.1.1.1, 203.0.113.9, 192.168.1.1", &peer, trusted, 2, &client);
    formats_as(&client, "203.0.113.9");
    netaddr_forwarded_client("1.1.1.1,203.0.113.9,10.3.3.3", &peer, trusted, 2, &client);
    formats_as(&client, "203.0.113.9");
    /* Every hop trusted: the leftmost. */
    netaddr_forwarded_client("10.1.1.1, 10.2.2.2", &peer, trusted, 2, &client);
    formats_as(&client, "10.1.1.1");
    /* Garbage: the last trusted address before it. */
    netaddr_forwarded_client("203.0.113.9, unknown", &peer, trusted, 2, &client);
    formats_as(&client, "10.0.0.5");
    netaddr_forwarded_client("junk, 192.168.1.1", &peer, trusted, 2, &client);
    formats_as(&client, "192.168.1.1");
    netaddr_forwarded_client("", &peer, trusted, 2, &client);
    formats_as(&client, "10.0.0.5");
    netaddr_forwarded_client(" , 2001:db8::7 ,", &peer, trusted, 2, &client);
    formats_as(&client, "2001:db8::7");
}

/* A parse of the whole of `s` (n bytes), and of each shorter prefix: NEED_MORE for every one. */
static proxy_status_t parse_whole(const uint8_t *s, size_t n, proxy_header_t *h)
{
    for (size_t k = 0; k < n; k++) {
        proxy_header_t partial;
        proxy_status_t st = proxy_header_parse(s, k, &partial);
        if (st != PROXY_NEED_MORE)
            return st;
    }
    return proxy_header_parse(s, n, h);
}

static void source_is(const proxy_header_t *h, const char *want_addr, unsigned want_port)
{
    assert_true(h->has_source);
    netaddr_t a;
    assert_true(netaddr_from_sockaddr((const struct sockaddr *)&h->source, &a));
    formats_as(&a, want_addr);
    unsigned port = h->source.ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)&h->source)->sin_port)
                                                   : ntohs(((const struct sockaddr_in6 *)&h->source)->sin6_port);
    assert_int_equal(port, want_port);
}

static void limit_key_is(const char *a, const char *want)
{
    netaddr_t n = addr(a);
    char out[NETADDR_LIMIT_MAX];
    netaddr_limit_key(&n, out);
    assert_string_equal(out, want);
}

static void test_limits_count_an_ipv6_64_as_one_address(void **state)
{
    (void)state;
    limit_key_is("192.0.2.7", "192.0.2.7");
    limit_key_is("::ffff:192.0.2.7", "192.0.2.7"); /* mapped: the IPv4 address itself */
    limit_key_is("2001:db8:1:2::7", "2001:db8:1:2::/64");
    limit_key_is("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64");
    limit_key_is("ffff:ffff:ffff:ffff:1:2:3:4", "ffff:ffff:ffff:ffff::/64"); /* the longest */
    limit_key_is("::1", "::/64");
    netaddr_t a = addr("2001:db8:1:2::7"), b = addr("2001:db8:1:2:8000::1"), c = addr("2001:db8:1:3::7");
    assert_true(netaddr_same_limit(&a, &b));
    assert_false(netaddr_same_limit(&a, &c));
    netaddr_t v4 = addr("192.0.2.7"), mapped = addr("::ffff:192.0.2.7"), next = addr("192.0.2.8");
    assert_true(netaddr_same_limit(&v4, &mapped));
    assert_false(netaddr_same_limit(&v4, &next)); /* IPv4 addresses share nothing: one each */
    netaddr_t low = addr("::1"); /* in ::/64 with every mapped address, but not one of them */
    assert_false(netaddr_same_limit(&low, &v4));
}

static void test_proxy_v1_lines(void **state)
{
    (void)state;
    proxy_header_t h;
    const char *l4 = "PROXY TCP4 203.0.113.9 10.0.0.1 51000 8080\r\nGET / HTTP/1.1\r\n";
    size_t hl = strlen("PROXY TCP4 203.0.113.9 10.0.0.1 51000 8080\r\n");
    assert_int_equal(parse_whole((const uint8_t *)l4, hl, &h), PROXY_DONE);
    assert_int_equal(h.header_len, hl);
    source_is(&h, "203.0.113.9", 51000);
    /* The request after it changes nothing. */
    assert_int_equal(proxy_header_parse((const uint8_t *)l4, strlen(l4), &h), PROXY_DONE);
    assert_int_equal(h.header_len, hl);

    const char *l6 = "PROXY TCP6 2001:db8::9 2001:db8::1 443 8080\r\n";
    assert_int_equal(parse_whole((const uint8_t *)l6, strlen(l6), &h), PROXY_DONE);
    source_is(&h, "2001:db8::9", 443);

    const char *unknown = "PROXY UNKNOWN whatever follows\r\n";
    assert_int_equal(parse_whole((const uint8_t *)unknown, strlen(unknown), &h), PROXY_DONE);
    assert_false(h.has_source);
    assert_int_equal(h.header_len, strlen(unknown));

    const char *bad[] = {
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 203.0.113.9 10.0.0.1 51000\r\n",
        "PROXY TCP4 2001:db8::9 10.0.0.1 1 2\r\n",
        "PROXY TCP4 203.0.113.9 10.0.0.1 51000 8080 extra\r\n",
        "PROXY TCP4  203.0.113.9 10.0.0.1 51000 8080\r\n",
        "PROXY TCP4 203.0.113.9 10.0.0.1 70000 8080\r\n",
        "PROXY TCP5 203.0.113.9 10.0.0.1 1 2\r\n",
        "PROXY TCP4 203.0.113.9 10.0.0.1 1 2\n",
        "PROXY TCP4 203.0.113.9 10.0.0.1 1 2\r\r",
        "proxy TCP4 203.0.113.9 10.0.0.1 1 2\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(proxy_header_parse((const uint8_t *)bad[i], strlen(bad[i]), &h), PROXY_INVALID);
    /* No CRLF within 107 bytes: not a v1 line, however long it goes on. */
    char longline[200];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "PROXY ", 6);
    assert_int_equal(proxy_header_parse((const uint8_t *)longline, 106, &h), PROXY_NEED_MORE);
    assert_int_equal(proxy_header_parse((const uint8_t *)longline, 107, &h), PROXY_INVALID);
}

/* A v2 header: signature, version/command, family/transport, length, then `body`. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t n)
{
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(n >> 8);
    out[15] = (uint8_t)n;
    if (n)
        memcpy(out + 16, body, n);
    return 16 + n;
}

static void test_proxy_v2_headers(void **state)
{
    (void)state;
    uint8_t buf[PROXY_HEADER_MAX + 64];
    proxy_header_t h;
    /* TCP over IPv4, with a TLV after the addresses (skipped). */
    uint8_t in4[12 + 7] = {203, 0, 113, 9, 10, 0, 0, 1, 0xC7, 0x38, 0x1F, 0x90, 0x04, 0x00, 0x04, 1, 2, 3, 4};
    size_t n = v2(buf, 0x21, 0x11, in4, sizeof in4);
    assert_int_equal(parse_whole(buf, n, &h), PROXY_DONE);
    assert_int_equal(h.header_len, n);
    source_is(&h, "203.0.113.9", 51000);

    uint8_t in6[36] = {0x20, 0x01, 0x0d, 0xb8, [15] = 9, [16] = 0x20, [17] = 0x01, [31] = 1, [32] = 0x01, [33] = 0xBB};
    n = v2(buf, 0x21, 0x21, in6, sizeof in6);
    assert_int_equal(parse_whole(buf, n, &h), PROXY_DONE);
    source_is(&h, "2001:db8::9", 443);

    /* LOCAL (a health check of the proxy's own): the peer stands. */
    n = v2(buf, 0x20, 0x00, NULL, 0);
    assert_int_equal(parse_whole(buf, n, &h), PROXY_DONE);
    assert_false(h.has_source);
    assert_int_equal(h.header_len, 16);
    /* UNIX sockets and datagrams name no address rankd can use. */
    uint8_t unix_body[216] = {0};
    n = v2(buf, 0x21, 0x31, unix_body, sizeof unix_body);
    assert_int_equal(parse_whole(buf, n, &h), PROXY_DONE);
    assert_false(h.has_source);
    n = v2(buf, 0x21, 0x12, in4, 12);
    assert_int_equal(parse_whole(buf, n, &h), PROXY_DONE);
    assert_false(h.has_source);

    /* Malformed: version 1 in the v2 format, an unknown command, a family's addresses cut short,
     * an unknown family, a header past the limit. */
    n = v2(buf, 0x11, 0x11, in4, 12);
    assert_int_equal(proxy_header_parse(buf, n, &h), PROXY_INVALID);
    n = v2(buf, 0x22, 0x11, in4, 12);
    assert_int_equal(proxy_header_parse(buf, n, &h), PROXY_INVALID);
    n = v2(buf, 0x21, 0x11, in4, 8);
    assert_int_equal(proxy_header_parse(buf, n, &h), PROXY_INVALID);
    n = v2(buf, 0x21, 0x21, in6, 20);
    assert_int_equal(proxy_header_parse(buf, n, &h), PROXY_INVALID);
    n = v2(buf, 0x21, 0x41, in4, 12);
    assert_int_equal(proxy_header_parse(buf, n, &h), PROXY_INVALID);
    buf[14] = (uint8_t)((PROXY_HEADER_MAX - 15) >> 8);
    buf[15] = (uint8_t)(PROXY_HEADER_MAX - 15);
    assert_int_equal(proxy_header_parse(buf, 16, &h), PROXY_INVALID);
    /* A signature that goes wrong part way. */
    memcpy(buf, "\r\n\r\n\0\r\nQUIX\n", 12);
    assert_int_equal(proxy_header_parse(buf, 12, &h), PROXY_INVALID);
    assert_int_equal(proxy_header_parse(buf, 0, &h), PROXY_NEED_MORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_addresses_parse_and_format),
        cmocka_unit_test(test_cidr_blocks_match_their_addresses_only),
        cmocka_unit_test(test_the_forwarded_client_is_the_first_untrusted_hop_from_the_right),
        cmocka_unit_test(test_limits_count_an_ipv6_64_as_one_address),
        cmocka_unit_test(test_proxy_v1_lines),
        cmocka_unit_test(test_proxy_v2_headers),
    };
    return cmocka_run_group_tests_name("netaddr", tests, NULL, NULL);
}
