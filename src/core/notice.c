/* core/notice.c — the change notices' lines; see notice.h. */
#include "core/notice.h"

#include <string.h>

#include "core/board.h"

void notice_put_change(buf_t *out, const notice_change_t *c, bool with_metadata)
{
    int64_t fields[6] = {c->gen, c->day, c->old_sort_key, c->old_ms, c->new_sort_key, c->new_ms};
    buf_putc(out, c->removed ? 'D' : 'W');
    for (int f = 0; f < (c->removed ? 4 : 6); f++) {
        buf_putc(out, ' ');
        if (!c->existed && (f == 2 || f == 3))
            buf_putc(out, '-');
        else
            buf_i64(out, fields[f]);
    }
    buf_putc(out, ' ');
    buf_append(out, c->player, c->player_len);
    if (with_metadata && c->metadata && !c->removed) {
        buf_putc(out, ' ');
        buf_append(out, c->metadata, c->metadata_len);
    }
}

/* One space-separated field of [*p, end): a decimal integer, or "-" when `dash` may stand. */
static bool field_i64(const char **p, const char *end, int64_t *v, bool *dash)
{
    const char *s = *p;
    if (s >= end || *s != ' ')
        return false;
    s++;
    if (dash && s < end && *s == '-' && (s + 1 == end || s[1] == ' ')) {
        *dash = true;
        *p = s + 1;
        return true;
    }
    bool neg = s < end && *s == '-';
    if (neg)
        s++;
    if (s >= end || *s < '0' || *s > '9')
        return false;
    uint64_t u = 0;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (u > (UINT64_C(9223372036854775808) - (uint64_t)(*s - '0')) / 10)
            return false;
        u = u * 10 + (uint64_t)(*s - '0');
    }
    if (!neg && u > INT64_MAX)
        return false;
    *v = neg ? (int64_t)(0 - u) : (int64_t)u;
    *p = s;
    return true;
}

bool notice_parse_change(const char *line, size_t len, notice_change_t *out)
{
    const char *p = line + 1, *end = line + len;
    if (len < 2 || (line[0] != 'W' && line[0] != 'D'))
        return false;
    bool removed = line[0] == 'D';
    bool dash_sk = false, dash_ms = false;
    memset(out, 0, sizeof *out);
    /* A removal names the position it left, never "-". */
    if (!field_i64(&p, end, &out->gen, NULL) || !field_i64(&p, end, &out->day, NULL) ||
        !field_i64(&p, end, &out->old_sort_key, removed ? NULL : &dash_sk) ||
        !field_i64(&p, end, &out->old_ms, removed ? NULL : &dash_ms) || dash_sk != dash_ms ||
        (!removed && (!field_i64(&p, end, &out->new_sort_key, NULL) || !field_i64(&p, end, &out->new_ms, NULL))))
        return false;
    out->existed = !dash_sk;
    out->removed = removed;
    if (p >= end || *p != ' ')
        return false;
    p++;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    out->player = p;
    out->player_len = sp ? (size_t)(sp - p) : (size_t)(end - p);
    if (out->player_len == 0 || out->player_len > PLAYER_ID_MAX || (removed && sp))
        return false;
    if (sp) {
        out->metadata = sp + 1;
        out->metadata_len = (size_t)(end - sp - 1);
        if (out->metadata_len == 0)
            return false;
    }
    return true;
}

bool notice_parse_seq(const char *line, size_t len, int64_t *gen, int64_t *day, int64_t *seq, int *part, int *parts)
{
    const char *p = line + 1, *end = line + len;
    int64_t a, b;
    if (len < 2 || line[0] != 'S' || !field_i64(&p, end, gen, NULL) || !field_i64(&p, end, day, NULL) ||
        !field_i64(&p, end, seq, NULL) || !field_i64(&p, end, &a, NULL) || !field_i64(&p, end, &b, NULL) || p != end ||
        a < 1 || b < a || b > 1000000)
        return false;
    *part = (int)a;
    *parts = (int)b;
    return true;
}
