/*
 * util/clock.h — the two clocks rankd reads: monotonic milliseconds for intervals and
 * expiries, and CLOCK_REALTIME deadlines for pthread_cond_timedwait.
 */
#ifndef RANKD_UTIL_CLOCK_H
#define RANKD_UTIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t clock_mono_ms(void);
/* The CLOCK_REALTIME instant `ms` milliseconds from now (a pthread_cond_timedwait deadline). */
struct timespec clock_deadline_ms(int ms);

#endif
