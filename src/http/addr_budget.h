/*
 * http/addr_budget.h — bytes held for each client address, under a cap per address.
 *
 * The server keeps two: the request bodies being read (a body is buffered whole before its
 * handler runs, at most http.batch_body_limit) and the large answers not yet read by their
 * clients (http.response_bytes_per_ip). Without a bound per address, one client with all its
 * connections could make rankd hold gigabytes that it sends, or reads, slowly. A connection
 * charges its address for what it holds and gives it back when its request ends.
 */
#ifndef RANKD_HTTP_ADDR_BUDGET_H
#define RANKD_HTTP_ADDR_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include "util/must_use.h"

typedef struct addr_budget addr_budget_t;

/* At most `per_address` bytes per address (0: no limit, and NULL is returned). */
addr_budget_t *addr_budget_new(size_t per_address);
void addr_budget_free(addr_budget_t *b);
/* Charge `addr` `bytes` more; false (nothing charged) past its budget. An address that holds
 * nothing is always charged, whatever the size: one request of any size goes through. NULL
 * budget: true. */
MUST_USE bool addr_budget_take(addr_budget_t *b, const char *addr, size_t bytes);
/* Give back what take() charged. */
void addr_budget_give(addr_budget_t *b, const char *addr, size_t bytes);
/* Whether `addr` holds its whole budget already. NULL budget: false. */
bool addr_budget_full(addr_budget_t *b, const char *addr);
/* The addresses charged now, and the bytes charged to them in all (metrics). */
size_t addr_budget_addresses(addr_budget_t *b);
size_t addr_budget_bytes(addr_budget_t *b);

#endif
