/*
 * util/step_pace.h — how much one step of a long job takes on (rows, blocks) so that each
 * statement stays within the statement timeout whatever the table's size and the server's load:
 * a step that timed out makes the next ones half as big (down to a floor), and steps that take
 * under a quarter of the timeout make them twice as big again (up to a ceiling). Pure: the caller
 * times its steps and says what happened. Not locked: one thread owns a pace.
 */
#ifndef RANKD_UTIL_STEP_PACE_H
#define RANKD_UTIL_STEP_PACE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t size;    /* what the next step takes on */
    int64_t floor;   /* never less (at least 1) */
    int64_t ceiling; /* never more */
} step_pace_t;

/* A pace that begins at `start`, kept within [floor, ceiling] (a floor below 1 is 1). */
void step_pace_init(step_pace_t *p, int64_t start, int64_t floor, int64_t ceiling);
/* The step just run timed out: the next is half as big. False when it was at the floor already
 * (nothing smaller to try: the caller gives up until its next round). */
bool step_pace_timed_out(step_pace_t *p);
/* The step just run succeeded in `took_ms` under a statement timeout of `timeout_ms` (0: none):
 * twice as big next time when it took under a quarter of the timeout (always without one). */
void step_pace_took(step_pace_t *p, int64_t took_ms, int timeout_ms);

#endif
