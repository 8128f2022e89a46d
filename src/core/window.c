/* core/window.c — UTC calendar arithmetic for reset windows and timestamps. */
#include "core/window.h"

#include <stdio.h>
#include <string.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int64_t window_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void window_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

/* Monday-based weekday: 0 = Monday; 1970-01-01 was a Thursday (3). */
static int64_t weekday(int64_t day)
{
    return ((day + 3) % 7 + 7) % 7;
}

int64_t window_start_day(window_rule_t rule, int64_t ms)
{
    int64_t day = floor_div(ms, MS_PER_DAY);
    switch (rule.reset) {
    case RESET_NONE:
        return rule.none_day;
    case RESET_DAILY:
        return day;
    case RESET_WEEKLY:
        return day - weekday(day);
    case RESET_MONTHLY: {
        int64_t y;
        unsigned m, d;
        window_civil_from_days(day, &y, &m, &d);
        return window_days_from_civil(y, m, 1);
    }
    }
    return 0;
}

int64_t window_next_day(window_rule_t rule, int64_t start)
{
    switch (rule.reset) {
    case RESET_NONE:
        return -1;
    case RESET_DAILY:
        return start + 1;
    case RESET_WEEKLY:
        return start + 7;
    case RESET_MONTHLY: {
        int64_t y;
        unsigned m, d;
        window_civil_from_days(start, &y, &m, &d);
        return m == 12 ? window_days_from_civil(y + 1, 1, 1) : window_days_from_civil(y, m + 1, 1);
    }
    }
    return -1;
}

int64_t window_prev_day(window_rule_t rule, int64_t start)
{
    switch (rule.reset) {
    case RESET_NONE:
        return rule.none_day;
    case RESET_DAILY:
        return start - 1;
    case RESET_WEEKLY:
        return start - 7;
    case RESET_MONTHLY: {
        int64_t y;
        unsigned m, d;
        window_civil_from_days(start, &y, &m, &d);
        return m == 1 ? window_days_from_civil(y - 1, 12, 1) : window_days_from_civil(y, m - 1, 1);
    }
    }
    return 0;
}

bool window_is_start(window_rule_t rule, int64_t day)
{
    return window_start_day(rule, day * MS_PER_DAY) == day;
}

/* Write `v` as exactly `n` decimal digits (the low ones). */
static void put_digits(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        out[i] = (char)('0' + v % 10);
}

void window_format_day(int64_t day, char out[11])
{
    int64_t y;
    unsigned m, d;
    window_civil_from_days(day, &y, &m, &d);
    put_digits(out, (unsigned)(y < 0 ? 0 : y > 9999 ? 9999 : y), 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    out[10] = '\0';
}

static bool digits(const char *s, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool window_parse_day(const char *s, int64_t *day)
{
    unsigned y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return false;
    int64_t z = window_days_from_civil(y, m, d);
    int64_t yy;
    unsigned mm, dd;
    window_civil_from_days(z, &yy, &mm, &dd);
    if (mm != m || dd != d) /* 2026-02-30 */
        return false;
    *day = z;
    return true;
}

void window_format_ms(int64_t ms, char out[25])
{
    /* The entries of a page mostly share their day, or two when the page straddles a midnight
     * (UTC): on boards that never reset, weekly and monthly ones, and the load test's 24 hours
     * of times. The texts of the two days used last are kept per thread (never shared), and the
     * calendar arithmetic is done once per day, not once per entry. */
    static _Thread_local int64_t days[2] = {INT64_MIN, INT64_MIN};
    static _Thread_local char texts[2][11];
    static _Thread_local unsigned older; /* the slot used less recently: a new day replaces it */
    int64_t day = floor_div(ms, MS_PER_DAY);
    int64_t in_day = ms - day * MS_PER_DAY;
    unsigned slot = day == days[0] ? 0 : day == days[1] ? 1 : 2;
    if (slot == 2) {
        slot = older;
        window_format_day(day, texts[slot]);
        days[slot] = day;
    }
    older = slot ^ 1;
    memcpy(out, texts[slot], 10);
    out[10] = 'T';
    put_digits(out + 11, (unsigned)(in_day / 3600000), 2);
    out[13] = ':';
    put_digits(out + 14, (unsigned)(in_day / 60000 % 60), 2);
    out[16] = ':';
    put_digits(out + 17, (unsigned)(in_day / 1000 % 60), 2);
    out[19] = '.';
    put_digits(out + 20, (unsigned)(in_day % 1000), 3);
    out[23] = 'Z';
    out[24] = '\0';
}

bool window_parse_ms(const char *s, size_t n, int64_t *ms)
{
    if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return false;
    unsigned h, mi, se;
    if (!digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se) || h > 23 || mi > 59 || se > 59)
        return false;
    char day_text[11];
    memcpy(day_text, s, 10);
    day_text[10] = '\0';
    int64_t day;
    if (!window_parse_day(day_text, &day))
        return false;
    size_t i = 19;
    int64_t frac_ms = 0;
    if (i < n && s[i] == '.') {
        size_t k = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
            if (k < 3)
                frac_ms = frac_ms * 10 + (s[i] - '0');
        if (k == 0 || k > 9)
            return false;
        for (; k < 3; k++)
            frac_ms *= 10;
    }
    int64_t offset_min = 0;
    if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z')) {
        offset_min = 0;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        unsigned oh, om;
        if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_min = ((int64_t)oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    } else {
        return false;
    }
    *ms = day * MS_PER_DAY + (((int64_t)h * 60 + mi - offset_min) * 60 + se) * 1000 + frac_ms;
    return true;
}

int64_t window_first_kept(window_rule_t rule, int64_t created_ms, int keep_closed, int64_t now_ms)
{
    int64_t first = window_start_day(rule, created_ms);
    if (rule.reset == RESET_NONE || keep_closed <= 0)
        return first;
    int64_t day = window_start_day(rule, now_ms);
    for (int i = 0; i < keep_closed && day > first; i++)
        day = window_prev_day(rule, day);
    return day > first ? day : first;
}

window_status_t window_resolve(window_rule_t rule, int64_t created_ms, int keep_closed, int64_t now_ms,
                               const char *param, int64_t *day)
{
    int64_t current = window_start_day(rule, now_ms);
    int64_t first = window_first_kept(rule, created_ms, keep_closed, now_ms);
    if (!param || strcmp(param, "current") == 0) {
        *day = current;
        return WINDOW_OK;
    }
    int64_t want;
    if (strcmp(param, "previous") == 0) {
        if (rule.reset == RESET_NONE)
            return WINDOW_ABSENT;
        want = window_prev_day(rule, current);
    } else {
        if (!window_parse_day(param, &want) || !window_is_start(rule, want))
            return WINDOW_MALFORMED;
    }
    if (want < first || want > current)
        return WINDOW_ABSENT;
    *day = want;
    return WINDOW_OK;
}

size_t window_hot_days(window_rule_t rule, int64_t created_ms, int64_t now_ms, int64_t out[2])
{
    out[0] = window_start_day(rule, now_ms);
    if (rule.reset == RESET_NONE || window_prev_day(rule, out[0]) < window_start_day(rule, created_ms))
        return 1;
    out[1] = window_prev_day(rule, out[0]);
    return 2;
}

bool window_is_hot(window_rule_t rule, int64_t day, int64_t now_ms)
{
    int64_t cur = window_start_day(rule, now_ms);
    return day == cur || (rule.reset != RESET_NONE && day == window_prev_day(rule, cur));
}

int64_t window_archive_grace_ms(int statement_timeout_ms)
{
    return 2 * (int64_t)statement_timeout_ms + 5000;
}
