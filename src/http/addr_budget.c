/* http/addr_budget.c — bytes held per client address (see addr_budget.h). */
#include "http/addr_budget.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

#define BUCKETS 1024

typedef struct charge {
    char *addr;
    size_t bytes;
    struct charge *next;
} charge_t;

struct addr_budget {
    size_t per_address;
    pthread_mutex_t lock; /* guards the chains and count */
    charge_t *chains[BUCKETS];
    size_t count;
    atomic_size_t total;  /* written under the lock; read without it by addr_budget_full's fast path */
};

static size_t bucket_of(const char *addr)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % BUCKETS);
}

addr_budget_t *addr_budget_new(size_t per_address)
{
    if (per_address == 0)
        return NULL;
    addr_budget_t *b = xcalloc(1, sizeof *b);
    b->per_address = per_address;
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

void addr_budget_free(addr_budget_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        while (b->chains[i]) {
            charge_t *c = b->chains[i];
            b->chains[i] = c->next;
            free(c->addr);
            free(c);
        }
    }
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* The link to `addr`'s charge (*link NULL when it has none). Lock held. */
static charge_t **find(addr_budget_t *b, const char *addr)
{
    charge_t **pp = &b->chains[bucket_of(addr)];
    while (*pp && strcmp((*pp)->addr, addr) != 0)
        pp = &(*pp)->next;
    return pp;
}

bool addr_budget_take(addr_budget_t *b, const char *addr, size_t bytes)
{
    if (!b || bytes == 0)
        return true;
    pthread_mutex_lock(&b->lock);
    charge_t **pp = find(b, addr);
    size_t held = *pp ? (*pp)->bytes : 0;
    bool ok = held == 0 || (bytes <= b->per_address && held <= b->per_address - bytes);
    if (ok) {
        if (!*pp) {
            charge_t *c = xcalloc(1, sizeof *c);
            c->addr = xstrdup(addr);
            *pp = c;
            b->count++;
        }
        (*pp)->bytes += bytes;
        b->total += bytes;
    }
    pthread_mutex_unlock(&b->lock);
    return ok;
}

bool addr_budget_full(addr_budget_t *b, const char *addr)
{
    if (!b || atomic_load_explicit(&b->total, memory_order_relaxed) == 0)
        return false; /* every read asks: nothing held is the common case, and costs no lock */
    pthread_mutex_lock(&b->lock);
    charge_t **pp = find(b, addr);
    bool full = *pp && (*pp)->bytes >= b->per_address;
    pthread_mutex_unlock(&b->lock);
    return full;
}

void addr_budget_give(addr_budget_t *b, const char *addr, size_t bytes)
{
    if (!b || bytes == 0)
        return;
    pthread_mutex_lock(&b->lock);
    charge_t **pp = find(b, addr);
    if (*pp) {
        charge_t *c = *pp;
        b->total -= c->bytes > bytes ? bytes : c->bytes;
        c->bytes = c->bytes > bytes ? c->bytes - bytes : 0;
        if (c->bytes == 0) { /* an address that sends nothing any more costs nothing */
            *pp = c->next;
            free(c->addr);
            free(c);
            b->count--;
        }
    }
    pthread_mutex_unlock(&b->lock);
}

size_t addr_budget_bytes(addr_budget_t *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    size_t n = b->total;
    pthread_mutex_unlock(&b->lock);
    return n;
}

size_t addr_budget_addresses(addr_budget_t *b)
{
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    size_t n = b->count;
    pthread_mutex_unlock(&b->lock);
    return n;
}
