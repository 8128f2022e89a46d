/* util/step_pace.c — a step's size that halves on a timeout and doubles when quick; see step_pace.h. */
#include "util/step_pace.h"

void step_pace_init(step_pace_t *p, int64_t start, int64_t floor, int64_t ceiling)
{
    p->floor = floor < 1 ? 1 : floor;
    p->ceiling = ceiling < p->floor ? p->floor : ceiling;
    p->size = start < p->floor ? p->floor : start > p->ceiling ? p->ceiling : start;
}

bool step_pace_timed_out(step_pace_t *p)
{
    if (p->size <= p->floor)
        return false;
    p->size = p->size / 2 < p->floor ? p->floor : p->size / 2;
    return true;
}

void step_pace_took(step_pace_t *p, int64_t took_ms, int timeout_ms)
{
    /* A quarter: a step twice as big takes about twice as long, and still leaves room for a
     * busier server. */
    if (timeout_ms > 0 && took_ms * 4 >= timeout_ms)
        return;
    p->size = p->size > p->ceiling / 2 ? p->ceiling : p->size * 2;
}
