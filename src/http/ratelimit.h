/*
 * http/ratelimit.h — per-client token buckets (API.md, "Rate limits").
 *
 * Each client (a key, or an address for requests without one) has one bucket for reads and one
 * for writes: `rate` tokens a second up to `burst`, a request taking its cost (a scores:batch
 * its items). Limits are per instance. The table is bounded: each of its shards keeps its most
 * recently seen clients only, so a flood of addresses costs a fixed amount of memory (a client
 * forgotten comes back with a full bucket). The clock is the caller's: every function takes
 * `now_ms`, so tests move it at will.
 */
#ifndef RANKD_HTTP_RATELIMIT_H
#define RANKD_HTTP_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit_t;

/* RL_STRONG: consistency=strong reads, which go to the primary (API.md: a bucket of their own). */
typedef enum { RL_READ = 0, RL_WRITE = 1, RL_STRONG = 2 } rl_kind_t;
#define RL_KINDS 3

/* What a take decided, for the RateLimit-* headers and a 429's Retry-After. */
typedef struct {
    bool limited;      /* this kind has a limit (else nothing below is set) */
    bool refused;      /* over it: answer 429 */
    int limit;         /* RateLimit-Limit: the burst */
    int remaining;     /* RateLimit-Remaining: whole tokens left after this request */
    int reset_s;       /* RateLimit-Reset: seconds until the bucket is full again */
    int retry_after_s; /* Retry-After when refused: seconds until the cost is there, at least 1 */
    bool over_burst;   /* the cost is more than the burst: refused however long the client waits */
    int strikes;       /* refusals of this kind to this client since one was let through, this one included */
} rl_verdict_t;

/* A limiter; per second rates of 0 leave that kind unlimited, a burst of 0 is one second's
 * worth of its rate. It remembers at most about `max_clients` clients. */
ratelimit_t *ratelimit_new(double reads_per_s, double writes_per_s, double strong_per_s, int burst, size_t max_clients);
/* New rates and burst (a reload), for every take from now on; buckets keep their tokens (never
 * above the new burst once they refill). */
void ratelimit_configure(ratelimit_t *rl, double reads_per_s, double writes_per_s, double strong_per_s, int burst);
/* Whether any rate is set. */
bool ratelimit_active(ratelimit_t *rl);
void ratelimit_free(ratelimit_t *rl);

/* Take `cost` tokens of `kind` from `client`'s bucket at `now_ms` (nothing is taken when they
 * are not all there, and a cost above the burst is always refused). Unlimited kinds, and a NULL
 * `rl`, decide nothing (out->limited false). */
void ratelimit_take(ratelimit_t *rl, const char *client, rl_kind_t kind, int cost, int64_t now_ms, rl_verdict_t *out);

/* Whether `client`'s bucket of `kind` holds a token at `now_ms`, taking nothing: a batch, whose
 * cost is known only once its body is read, is refused at its headers when it could not pay
 * even one (so a flood of batches is not read and parsed for nothing). */
void ratelimit_peek(ratelimit_t *rl, const char *client, rl_kind_t kind, int64_t now_ms, rl_verdict_t *out);

/* Clients remembered now. */
size_t ratelimit_clients(ratelimit_t *rl);
/* Requests of `kind` refused so far. */
unsigned long long ratelimit_refused(ratelimit_t *rl, rl_kind_t kind);

#endif
