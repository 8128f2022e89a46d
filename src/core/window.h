/*
 * core/window.h — reset windows and timestamps, in UTC.
 *
 * A window is identified by its start date; `none` boards have a single window,
 * 1970-01-01 (a one-off tournament's: its start_at's date, window_rule_t). Weeks
 * start on Monday. All instants are milliseconds
 * since the Unix epoch; dates are days since the epoch (civil calendar
 * arithmetic after Howard Hinnant's days_from_civil).
 */
#ifndef RANKD_CORE_WINDOW_H
#define RANKD_CORE_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/board.h"
#include "util/must_use.h"

#define MS_PER_DAY 86400000LL

/* Days since 1970-01-01 of the civil date y-m-d, and back. */
int64_t window_days_from_civil(int64_t y, unsigned m, unsigned d);
void window_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/* A board's windows: its reset period, and the day a board that never resets names its one
 * window by (0, 1970-01-01, for every board but a one-off tournament: core/tournament.h). */
typedef struct {
    board_reset_t reset;
    int64_t none_day;
} window_rule_t;
#define WINDOW_RULE(reset) ((window_rule_t){(reset), 0})

/* First day (days since epoch) of the window containing instant `ms`. */
int64_t window_start_day(window_rule_t rule, int64_t ms);
/* First day of the window after / before the one starting on `start_day`; next is -1 for `none`. */
int64_t window_next_day(window_rule_t rule, int64_t start_day);
int64_t window_prev_day(window_rule_t rule, int64_t start_day);
/* True when the window starting on `day` is the current or the previous one at `now_ms`: the
 * windows Redis holds (older ones are read from PostgreSQL and never loaded into Redis). */
bool window_is_hot(window_rule_t rule, int64_t day, int64_t now_ms);
/* The windows Redis holds of a board created at `created_ms`, at `now_ms`: the current one and,
 * when it resets and existed then, the previous one. Fills out[] and returns how many (1 or 2). */
size_t window_hot_days(window_rule_t rule, int64_t created_ms, int64_t now_ms, int64_t out[2]);
/* True when `day` can start a window of this reset period. */
bool window_is_start(window_rule_t rule, int64_t day);

/* "YYYY-MM-DD" of a day; `out` has room for 11 bytes. */
void window_format_day(int64_t day, char out[11]);
/* Parse a strict "YYYY-MM-DD" that names a real calendar date. */
MUST_USE bool window_parse_day(const char *s, int64_t *day);

/* RFC 3339 UTC with milliseconds, "2026-11-21T20:00:00.123Z"; `out` has room for 25 bytes. */
void window_format_ms(int64_t ms, char out[25]);
/* Parse an RFC 3339 instant of `n` bytes ("2026-11-21T20:00:00Z", fractions of a second to
 * 9 digits, cut to the millisecond, "Z" or an offset "+hh:mm"/"-hh:mm") into ms since the epoch. */
MUST_USE bool window_parse_ms(const char *s, size_t n, int64_t *ms);

typedef enum {
    WINDOW_OK = 0,
    WINDOW_MALFORMED = 1, /* 400: not current/previous/a date, or not a window start */
    WINDOW_ABSENT = 2,    /* 404: a well-formed date naming no existing window */
} window_status_t;

/*
 * The oldest window that still exists at `now_ms` for a board created at `created_ms` that keeps
 * `keep_closed` closed windows (0 = all): older ones are past retention.
 */
/* How long after its end a closed window is archived: a submission received before the reset
 * has twice the statement timeout, and 5 s, to commit. Until then Redis answers its reads. */
int64_t window_archive_grace_ms(int statement_timeout_ms);
int64_t window_first_kept(window_rule_t rule, int64_t created_ms, int keep_closed, int64_t now_ms);

/*
 * Resolve a `window=` parameter (NULL means "current") for a board created at `created_ms` that
 * keeps `keep_closed` closed windows (0 = all), at instant `now_ms`, to the window's first day.
 */
MUST_USE window_status_t window_resolve(window_rule_t rule, int64_t created_ms, int keep_closed, int64_t now_ms,
                               const char *param, int64_t *day);

#endif
