/* util/json_text.c — compact JSON text with shortest reals; see json_text.h. */
#include "util/json_text.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/arena.h"
#include "util/buf.h"

size_t json_real_shortest(double d, char out[32])
{
    /* The fewest significant digits that read back exactly (17 always do). */
    char sci[32];
    int digits = 1;
    for (; digits < 17; digits++) {
        snprintf(sci, sizeof sci, "%.*e", digits - 1, d);
        if (strtod(sci, NULL) == d)
            break;
    }
    snprintf(sci, sizeof sci, "%.*e", digits - 1, d);
    int exp10 = atoi(strchr(sci, 'e') + 1);
    /* Positional between 1e-4 and 1e16, as Python's repr: 100.0, 0.0001, 1.5. */
    if (exp10 < -4 || exp10 >= 16)
        return (size_t)snprintf(out, 32, "%s", sci);
    int decimals = digits - 1 - exp10;
    int n = snprintf(out, 32, "%.*f", decimals > 0 ? decimals : 0, d);
    if (!strchr(out, '.'))
        n += snprintf(out + n, 32 - (size_t)n, ".0");
    return (size_t)n;
}

/* Whether the number token at `s` (up to `end`) is a real: it has a fraction or an exponent. */
static bool is_real_token(const char *s, const char *end)
{
    for (; s < end; s++)
        if (*s == '.' || *s == 'e' || *s == 'E')
            return true;
    return false;
}

char *json_text_compact(const json_t *v)
{
    char *text = json_text_dup(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return NULL;
    /* Rewrite each real token outside strings; everything else is copied as jansson wrote it. */
    buf_t o;
    buf_init(&o);
    bool in_string = false;
    for (const char *p = text; *p;) {
        if (in_string) {
            if (*p == '\\' && p[1]) {
                buf_append(&o, p, 2);
                p += 2;
                continue;
            }
            in_string = *p != '"';
            buf_append(&o, p++, 1);
            continue;
        }
        if (*p == '"') {
            in_string = true;
            buf_append(&o, p++, 1);
            continue;
        }
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            const char *end = p;
            while (*end && strchr("+-0123456789.eE", *end))
                end++;
            double d = strtod(p, NULL);
            if (is_real_token(p, end) && isfinite(d)) {
                char num[32];
                buf_append(&o, num, json_real_shortest(d, num));
            } else {
                buf_append(&o, p, (size_t)(end - p));
            }
            p = end;
            continue;
        }
        buf_append(&o, p++, 1);
    }
    free(text);
    size_t len = 0;
    return buf_steal(&o, &len);
}
