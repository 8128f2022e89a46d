/*
 * config/secret_policy.h — what makes a bearer key or a cursor secret unsafe to serve with.
 *
 * Outside the development configuration rankd refuses keys and secrets that anyone could know
 * (the published ones of the README and the example files), that are short, or that repeat
 * themselves. Pure functions: no I/O, no state.
 */
#ifndef RANKD_CONFIG_SECRET_POLICY_H
#define RANKD_CONFIG_SECRET_POLICY_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes a production key or secret has at least (`rankd config gen-key` prints 43). */
#define SECRET_MIN_BYTES 32

/*
 * Why `s` is unsafe as a key or secret, as a phrase that completes "the value ..." and never
 * quotes it ("is published in rankd's README or example files"); NULL when it is fine.
 * The phrase is static.
 */
const char *secret_flaw(const char *s);

/* Estimated bits of entropy of `s` from its byte frequencies (Shannon, times its length). */
double secret_entropy_bits(const char *s, size_t len);

/* Whether `host` (an address or "localhost", as `listen` gives it) reaches only this machine. */
bool secret_host_is_loopback(const char *host);

#endif
