/*
 * util/netaddr.h — IP addresses and CIDR blocks, for the trusted-proxy list and the client
 * address rankd names in rate limits and logs.
 *
 * Every address is held as 16 bytes: an IPv4 address as its IPv4-mapped IPv6 form
 * (::ffff:a.b.c.d), so that one comparison serves both families and "10.0.0.0/8" matches a
 * peer the kernel reports either way.
 */
#ifndef RANKD_UTIL_NETADDR_H
#define RANKD_UTIL_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
    uint8_t bytes[16];
} netaddr_t;

typedef struct {
    netaddr_t net;  /* bits past the prefix are zero */
    unsigned bits;  /* prefix length over the 16 bytes (an IPv4 /8 is 104) */
} netaddr_cidr_t;

/* The longest text netaddr_format writes, NUL included. */
#define NETADDR_TEXT_MAX 46

/* An address, "192.0.2.1" or "2001:db8::1" (brackets allowed around IPv6), the n bytes at s. */
bool netaddr_parse(const char *s, size_t n, netaddr_t *out);

/* "a.b.c.d/N" (N 0..32), "v6/N" (N 0..128) or a bare address (a block of one). */
bool netaddr_cidr_parse(const char *s, netaddr_cidr_t *out);

/* An AF_INET or AF_INET6 socket address; false for any other family. */
bool netaddr_from_sockaddr(const struct sockaddr *sa, netaddr_t *out);

bool netaddr_cidr_contains(const netaddr_cidr_t *c, const netaddr_t *a);

/* True when one of the n blocks contains a. */
bool netaddr_in_any(const netaddr_cidr_t *blocks, size_t n, const netaddr_t *a);

/* The usual text: dotted quad for an IPv4-mapped address, RFC 5952 otherwise. */
void netaddr_format(const netaddr_t *a, char out[NETADDR_TEXT_MAX]);

/* The longest text netaddr_limit_key writes, NUL included ("xxxx:xxxx:xxxx:xxxx::/64"). */
#define NETADDR_LIMIT_MAX 48

/*
 * What per-address limits count an address as: an IPv4 address as itself, an IPv6 address as
 * its /64 ("2001:db8:1:2::/64"). One subscriber is usually given a whole /64, and a client with
 * 2^64 addresses must not get 2^64 shares of a limit.
 */
void netaddr_limit_key(const netaddr_t *a, char out[NETADDR_LIMIT_MAX]);
/* True when a and b count as one address for those limits. */
bool netaddr_same_limit(const netaddr_t *a, const netaddr_t *b);

/*
 * The client an X-Forwarded-For list names, when the connection's peer is a trusted proxy: the
 * list read from its right end, skipping the addresses of trusted proxies, the first one left
 * that is not trusted. When an item is not an address, the hop that added it cannot be believed,
 * and the client is the last trusted address before it (the peer, at worst). `xff` is the
 * header's values in order, joined with commas. Writes the client into *client.
 */
void netaddr_forwarded_client(const char *xff, const netaddr_t *peer, const netaddr_cidr_t *trusted,
                              size_t n_trusted, netaddr_t *client);

#endif
