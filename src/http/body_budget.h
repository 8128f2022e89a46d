/*
 * http/body_budget.h — the bytes of request bodies being read, per client address.
 *
 * A body is buffered whole before its handler runs (at most http.batch_body_limit). Without a
 * bound per address, one client with its 256 connections could make rankd hold half a
 * gigabyte of bodies it sends slowly. Each connection charges its address for the buffer it
 * grows and gives it back when the request ends; past the budget the body is refused.
 */
#ifndef RANKD_HTTP_BODY_BUDGET_H
#define RANKD_HTTP_BODY_BUDGET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct body_budget body_budget_t;

/* At most `per_address` bytes per address (0: no limit, and NULL is returned). */
body_budget_t *body_budget_new(size_t per_address);
void body_budget_free(body_budget_t *b);
/* Charge `addr` `bytes` more; false (nothing charged) past its budget. NULL budget: true. */
bool body_budget_take(body_budget_t *b, const char *addr, size_t bytes);
/* Give back what take() charged. */
void body_budget_give(body_budget_t *b, const char *addr, size_t bytes);
/* The addresses charged now, and the bytes charged to them in all (metrics). */
size_t body_budget_addresses(body_budget_t *b);
size_t body_budget_bytes(body_budget_t *b);

#endif
