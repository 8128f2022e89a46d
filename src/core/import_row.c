/* core/import_row.c — reading and judging one import row (pure). */
#include "core/import_row.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/order.h"
#include "core/score.h"
#include "core/window.h"
#include "util/json_text.h"

/* The CSV columns, in their order. */
static const char *const columns[] = {"player_id", "score", "achieved_at", "metadata"};
#define COLUMNS 4

static import_row_status_t bad(import_row_error_t *err, const char *field, const char *message)
{
    err->field = field;
    snprintf(err->message, sizeof err->message, "%s", message);
    return IMPORT_ROW_BAD;
}

static import_row_status_t check_score(const import_rules_t *r, int64_t score, import_row_t *row,
                                       import_row_error_t *err)
{
    if (!score_in_range(score))
        return bad(err, "score", "score must be an integer within ±(2^53-1)");
    if (r->has_min_score && score < r->min_score) {
        err->field = "score";
        snprintf(err->message, sizeof err->message, "score is below this board's min_score %lld", (long long)r->min_score);
        return IMPORT_ROW_BAD;
    }
    if (r->has_max_score && score > r->max_score) {
        err->field = "score";
        snprintf(err->message, sizeof err->message, "score is above this board's max_score %lld", (long long)r->max_score);
        return IMPORT_ROW_BAD;
    }
    row->score = score;
    return IMPORT_ROW_OK;
}

static import_row_status_t check_player(const char *s, size_t n, import_row_t *row, import_row_error_t *err)
{
    if (!id_player_valid(s, n))
        return bad(err, "player_id", ID_PLAYER_RULE);
    memcpy(row->player, s, n);
    row->player[n] = '\0';
    return IMPORT_ROW_OK;
}

static import_row_status_t check_achieved(const import_rules_t *r, const char *s, size_t n, import_row_t *row,
                                          import_row_error_t *err)
{
    int64_t ms;
    if (!window_parse_ms(s, n, &ms))
        return bad(err, "achieved_at", "achieved_at must be an RFC 3339 instant, as 2026-11-21T20:00:00.000Z");
    if (ms > r->now_ms)
        return bad(err, "achieved_at", "achieved_at is in the future");
    if (ms < r->window_start_ms)
        return bad(err, "achieved_at", "achieved_at is before the board's current window");
    row->has_achieved = true;
    row->achieved_ms = ms;
    return IMPORT_ROW_OK;
}

static import_row_status_t check_metadata(const json_t *v, import_row_t *row, import_row_error_t *err)
{
    if (!json_is_object(v))
        return bad(err, "metadata", "metadata must be a JSON object");
    char *text = json_text_compact(v);
    if (!text)
        return bad(err, "metadata", "metadata cannot be serialized");
    if (strlen(text) > METADATA_MAX) {
        free(text);
        return bad(err, "metadata", "metadata is larger than 1024 bytes");
    }
    row->metadata = text;
    return IMPORT_ROW_OK;
}

static import_row_status_t metadata_text(const char *s, size_t n, import_row_t *row, import_row_error_t *err)
{
    json_error_t je;
    json_t *v = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (!v)
        return bad(err, "metadata", "metadata must be a JSON object");
    import_row_status_t st = check_metadata(v, row, err);
    json_decref(v);
    return st;
}

/* Split a CSV line into at most COLUMNS fields (quotes undone into `store`); the count, or -1
 * when the quoting is broken, -2 when there are too many fields. */
static int csv_fields(const char *s, size_t n, char *store, const char *field[COLUMNS], size_t len[COLUMNS])
{
    int count = 0;
    size_t i = 0, w = 0;
    for (;;) {
        if (count == COLUMNS)
            return -2;
        field[count] = store + w;
        size_t start = w;
        if (i < n && s[i] == '"') {
            for (i++;; i++) {
                if (i == n)
                    return -1;
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        store[w++] = '"';
                        i++;
                        continue;
                    }
                    i++;
                    break;
                }
                store[w++] = s[i];
            }
            if (i < n && s[i] != ',')
                return -1;
        } else {
            for (; i < n && s[i] != ','; i++) {
                if (s[i] == '"')
                    return -1;
                store[w++] = s[i];
            }
        }
        len[count++] = w - start;
        store[w++] = '\0';
        if (i == n)
            return count;
        i++; /* the comma */
    }
}

static import_row_status_t parse_csv(const import_rules_t *r, const char *line, size_t n, long line_no,
                                     import_row_t *row, import_row_error_t *err)
{
    char store[2 * METADATA_MAX + 256];
    if (n >= sizeof store / 2)
        return bad(err, "line", "the line is longer than a row can be");
    const char *f[COLUMNS];
    size_t len[COLUMNS];
    int k = csv_fields(line, n, store, f, len);
    if (k == -2)
        return bad(err, "line", "a row has at most 4 fields: player_id,score,achieved_at,metadata");
    if (k < 0)
        return bad(err, "line", "the line's quoting is broken (a quoted field is \"…\", a quote inside it \"\")");
    if (line_no == 1 && len[0] == strlen(columns[0]) && memcmp(f[0], columns[0], len[0]) == 0) {
        for (int i = 1; i < k; i++)
            if (len[i] != strlen(columns[i]) || memcmp(f[i], columns[i], len[i]) != 0)
                return bad(err, "line", "a header row names player_id,score[,achieved_at[,metadata]] in that order");
        if (k < 2)
            return bad(err, "line", "a header row names player_id,score[,achieved_at[,metadata]] in that order");
        return IMPORT_ROW_SKIP;
    }
    if (k < 2)
        return bad(err, "score", "a row needs player_id,score");
    import_row_status_t st = check_player(f[0], len[0], row, err);
    if (st != IMPORT_ROW_OK)
        return st;
    int64_t score;
    if (!order_score_parse(f[1], len[1], &score)) /* an integer within the score range, as Redis prints one */
        return bad(err, "score", "score must be an integer within ±(2^53-1)");
    if ((st = check_score(r, score, row, err)) != IMPORT_ROW_OK)
        return st;
    if (k > 2 && len[2] > 0 && (st = check_achieved(r, f[2], len[2], row, err)) != IMPORT_ROW_OK)
        return st;
    if (k > 3 && len[3] > 0 && (st = metadata_text(f[3], len[3], row, err)) != IMPORT_ROW_OK)
        return st;
    return IMPORT_ROW_OK;
}

static import_row_status_t parse_ndjson(const import_rules_t *r, const char *line, size_t n, import_row_t *row,
                                        import_row_error_t *err)
{
    json_error_t je;
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return bad(err, "line", "a line must be one JSON object");
    }
    import_row_status_t st = IMPORT_ROW_OK;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        bool known = false;
        for (int i = 0; i < COLUMNS; i++)
            known = known || strcmp(key, columns[i]) == 0;
        if (!known) {
            st = bad(err, "line", "a row's members are player_id, score, achieved_at and metadata");
            break;
        }
    }
    json_t *p = json_object_get(o, "player_id"), *sc = json_object_get(o, "score");
    json_t *at = json_object_get(o, "achieved_at"), *md = json_object_get(o, "metadata");
    if (st == IMPORT_ROW_OK) {
        if (!json_is_string(p) || strlen(json_string_value(p)) != json_string_length(p))
            st = bad(err, "player_id", ID_PLAYER_RULE);
        else
            st = check_player(json_string_value(p), json_string_length(p), row, err);
    }
    if (st == IMPORT_ROW_OK) {
        if (!json_is_integer(sc))
            st = bad(err, "score", "score must be an integer within ±(2^53-1)");
        else
            st = check_score(r, (int64_t)json_integer_value(sc), row, err);
    }
    if (st == IMPORT_ROW_OK && at && !json_is_null(at)) {
        if (!json_is_string(at))
            st = bad(err, "achieved_at", "achieved_at must be an RFC 3339 instant, as 2026-11-21T20:00:00.000Z");
        else
            st = check_achieved(r, json_string_value(at), json_string_length(at), row, err);
    }
    if (st == IMPORT_ROW_OK && md && !json_is_null(md))
        st = check_metadata(md, row, err);
    json_decref(o);
    return st;
}

import_row_status_t import_row_parse(const import_rules_t *rules, const char *line, size_t n, long line_no,
                                     import_row_t *row, import_row_error_t *err)
{
    memset(row, 0, sizeof *row);
    if (n > 0 && line[n - 1] == '\r')
        n--;
    bool blank = true;
    for (size_t i = 0; i < n && blank; i++)
        blank = line[i] == ' ' || line[i] == '\t';
    if (blank)
        return IMPORT_ROW_SKIP;
    import_row_status_t st = rules->format == IMPORT_NDJSON ? parse_ndjson(rules, line, n, row, err)
                                                            : parse_csv(rules, line, n, line_no, row, err);
    if (st != IMPORT_ROW_OK)
        import_row_clear(row);
    return st;
}

void import_row_clear(import_row_t *row)
{
    free(row->metadata);
    row->metadata = NULL;
}

/* COPY's text format: a backslash, a tab, a line feed or a carriage return in a value is escaped. */
static void copy_text(buf_t *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': buf_puts(out, "\\\\"); break;
        case '\t': buf_puts(out, "\\t"); break;
        case '\n': buf_puts(out, "\\n"); break;
        case '\r': buf_puts(out, "\\r"); break;
        default: buf_putc(out, *s);
        }
    }
}

void import_row_copy_line(buf_t *out, long line_no, const import_row_t *row)
{
    buf_i64(out, line_no);
    buf_putc(out, '\t');
    buf_puts(out, row->player); /* an id holds none of COPY's special bytes */
    buf_putc(out, '\t');
    buf_i64(out, row->score);
    buf_putc(out, '\t');
    if (row->has_achieved)
        buf_i64(out, row->achieved_ms);
    else
        buf_puts(out, "\\N");
    buf_putc(out, '\t');
    if (row->metadata)
        copy_text(out, row->metadata);
    else
        buf_puts(out, "\\N");
    buf_putc(out, '\n');
}
