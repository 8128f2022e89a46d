/*
 * util/clock.h — the clocks rankd reads: monotonic milliseconds for intervals and expiries,
 * CLOCK_REALTIME deadlines for pthread_cond_timedwait, and the wall clock that chooses
 * windows and stamps submissions (which tests may move: clock_test_follow).
 */
#ifndef RANKD_UTIL_CLOCK_H
#define RANKD_UTIL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t clock_mono_ms(void);
/* The clock that refills the rate limits' buckets: CLOCK_MONOTONIC's milliseconds, or, in a test
 * that pins it (the test clock file's third number, when not 0), that number: the buckets then
 * refill only when the test moves it, so that a test counts tokens exactly. */
int64_t clock_bucket_ms(void);
/* The CLOCK_REALTIME instant `ms` milliseconds from now (a pthread_cond_timedwait deadline). */
struct timespec clock_deadline_ms(int ms);

/* Milliseconds since the Unix epoch: CLOCK_REALTIME plus the test clock's offset (0 unless
 * clock_test_follow was called). Every instant that picks a window comes from here. */
int64_t clock_wall_ms(void);
/*
 * Test-only (RANKD_TEST_CLOCK_FILE): from now on the wall clock runs `offset` milliseconds
 * ahead of the real one, `offset` being the decimal number the file `path` holds, read again
 * whenever the file changes (a thread polls it every 10 ms). Lets a test cross midnight at
 * will. The file may hold a second number, `skew`, added too: the offset is time that passed
 * for everyone (PostgreSQL included, as far as rankd's checks go), the skew is this host's clock
 * being wrong (clock_test_offset_ms leaves it out); and a third, the rate buckets' pinned
 * clock (clock_bucket_ms). Returns false when the thread cannot start.
 */
bool clock_test_follow(const char *path);
/* The test clock's offset without its skew (0 in production): clock_wall_ms() less this is what
 * this host's clock says, to compare with another's. */
int64_t clock_test_offset_ms(void);
/* Test-only: call fn(arg) (on the follower thread) each time the test clock moves, so that a
 * thread sleeping until an instant of the wall clock (a reset) wakes for the new time at once.
 * Up to 4 watchers; false when full. Never called in production (the clock never moves). */
bool clock_test_watch(void (*fn)(void *arg), void *arg);
/* Forget a watcher (before `arg` is freed). */
void clock_test_unwatch(void (*fn)(void *arg), void *arg);

#endif
