/* worker/importer.c — lines to rows to COPY; see importer.h. */
#include "store/pg_error.h"
#include "worker/importer.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "core/window.h"
#include "obs/log.h"
#include "store/pg_pool.h"
#include "store/redis_board.h"
#include "util/alloc.h"
#include "util/buf.h"

#define COPY_FLUSH (256 * 1024) /* bytes of COPY text sent at once */
/* The players' filter: 2^27 bits (16 MiB), 4 probes each. A million players leave about one
 * chance in twenty of a false "seen before"; ten million make one certain. Either way the only
 * cost is PostgreSQL's check, which is exact. */
#define SEEN_BITS_LOG2 27
#define SEEN_PROBES 4

struct importer {
    store_import_t *im;
    import_rules_t rules;
    char line[IMPORT_LINE_MAX];
    size_t line_len;
    bool line_too_long; /* the current line passed IMPORT_LINE_MAX: refused at its end */
    long line_no;       /* lines begun */
    long rows;
    unsigned long long bytes;
    buf_t copy;
    EVP_MD_CTX *digest;
    uint64_t *seen;     /* the players' Bloom filter */
    bool maybe_repeats; /* a player's probes were all set already: perhaps named twice */
    bool failed;
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Add a player to the filter; true when every probe was set before (seen, or a false match). */
static bool seen_before(uint64_t *seen, const char *player)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then mixed into two independent hashes */
    for (const unsigned char *p = (const unsigned char *)player; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    uint64_t h1 = mix64(h), h2 = mix64(h ^ 0x9e3779b97f4a7c15ULL) | 1;
    bool all = true;
    for (int i = 0; i < SEEN_PROBES; i++) {
        uint64_t bit = (h1 + (uint64_t)i * h2) & ((1ULL << SEEN_BITS_LOG2) - 1);
        uint64_t mask = 1ULL << (bit & 63);
        all = all && (seen[bit >> 6] & mask);
        seen[bit >> 6] |= mask;
    }
    return all;
}

importer_t *importer_new(store_import_t *im, const import_rules_t *rules)
{
    importer_t *x = xcalloc(1, sizeof *x);
    x->im = im;
    x->rules = *rules;
    buf_init(&x->copy);
    buf_reserve(&x->copy, COPY_FLUSH + IMPORT_LINE_MAX * 2);
    x->seen = xcalloc((1ULL << SEEN_BITS_LOG2) / 64, sizeof *x->seen); /* untouched pages cost nothing */
    x->digest = EVP_MD_CTX_new();
    if (!x->digest || EVP_DigestInit_ex(x->digest, EVP_sha256(), NULL) != 1) {
        importer_free(x);
        return NULL;
    }
    return x;
}

static bool flush(importer_t *x, import_error_t *err)
{
    bool ok = store_import_send(x->im, x->copy.data, x->copy.len, err);
    buf_reset(&x->copy);
    return ok;
}

/* One whole line (its bytes in x->line). */
static bool take_line(importer_t *x, import_error_t *err)
{
    long no = ++x->line_no;
    if (x->line_too_long) {
        err->status = 400;
        err->code = "invalid_argument";
        err->field = "line";
        err->line = no;
        snprintf(err->message, sizeof err->message, "line %ld is longer than %d bytes", no, IMPORT_LINE_MAX);
        return false;
    }
    import_row_t row;
    import_row_error_t bad;
    switch (import_row_parse(&x->rules, x->line, x->line_len, no, &row, &bad)) {
    case IMPORT_ROW_SKIP:
        return true;
    case IMPORT_ROW_BAD:
        err->status = 400;
        err->code = "invalid_argument";
        err->field = bad.field;
        err->line = no;
        snprintf(err->message, sizeof err->message, "line %ld: %s", no, bad.message);
        return false;
    case IMPORT_ROW_OK:
        break;
    }
    if (!x->maybe_repeats && seen_before(x->seen, row.player))
        x->maybe_repeats = true;
    import_row_copy_line(&x->copy, no, &row);
    import_row_clear(&row);
    x->rows++;
    return x->copy.len < COPY_FLUSH || flush(x, err);
}

bool importer_feed(importer_t *x, const char *data, size_t len, import_error_t *err)
{
    if (x->failed)
        return false;
    x->bytes += len;
    EVP_DigestUpdate(x->digest, data, len);
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (!x->line_too_long && x->line_len + take <= sizeof x->line) {
            memcpy(x->line + x->line_len, data, take);
            x->line_len += take;
        } else {
            x->line_too_long = true;
        }
        if (!nl)
            break;
        bool ok = take_line(x, err);
        x->line_len = 0;
        x->line_too_long = false;
        if (!ok) {
            x->failed = true;
            return false;
        }
        data = nl + 1;
        len -= take + 1;
    }
    return true;
}

bool importer_end(importer_t *x, import_error_t *err)
{
    if (x->failed)
        return false;
    if ((x->line_len > 0 || x->line_too_long) && !take_line(x, err)) {
        x->failed = true;
        return false;
    }
    x->line_len = 0;
    if (!flush(x, err)) {
        x->failed = true;
        return false;
    }
    if (!x->maybe_repeats)
        store_import_players_once(x->im);
    return true;
}

long importer_rows(const importer_t *x)
{
    return x->rows;
}

unsigned long long importer_bytes(const importer_t *x)
{
    return x->bytes;
}

void importer_digest(importer_t *x, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    if (copy && EVP_MD_CTX_copy_ex(copy, x->digest) == 1 && EVP_DigestFinal_ex(copy, md, &n) == 1 && n == 32) {
        for (unsigned i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
    } else {
        hex[0] = '\0';
    }
    EVP_MD_CTX_free(copy);
}

void importer_free(importer_t *x)
{
    if (!x)
        return;
    buf_free(&x->copy);
    free(x->seen);
    EVP_MD_CTX_free(x->digest);
    free(x);
}

void importer_rules(import_rules_t *out, const board_t *b, int64_t day, int64_t now_ms, import_format_t format)
{
    memset(out, 0, sizeof *out);
    out->format = format;
    out->has_min_score = b->has_min_score;
    out->min_score = b->min_score;
    out->has_max_score = b->has_max_score;
    out->max_score = b->max_score;
    out->window_start_ms = day * MS_PER_DAY;
    out->now_ms = now_ms;
}

void importer_render(buf_t *out, const char *board_id, int64_t day, const import_counts_t *counts, int64_t ms)
{
    char d[11];
    window_format_day(day, d);
    buf_puts(out, "{\"board\":");
    buf_json_str(out, board_id, strlen(board_id));
    buf_printf(out,
               ",\"window\":\"%s\",\"rows\":%ld,\"created\":%ld,\"updated\":%ld,\"unchanged\":%ld,\"removed\":%ld,"
               "\"ms\":%lld}",
               d, counts->rows, counts->created, counts->updated, counts->unchanged, counts->removed, (long long)ms);
}

static bool notify_again(PGconn *c, const board_t *b, int64_t day)
{
    char notice[64];
    snprintf(notice, sizeof notice, "P %lld %lld", (long long)b->gen, (long long)day);
    const char *p[] = {notice};
    PGresult *r = PQexecParams(c, "SELECT pg_notify('rankd_l1', $1)", 1, NULL, p, NULL, NULL, 0);
    bool ok = pg_ok(r);
    char pe[PG_ERROR_MAX];
    if (!ok)
        log_warn(NULL, "the import's second notice failed: %s", pg_error_text(c, r, pe, sizeof pe));
    PQclear(r);
    return ok;
}

bool importer_publish(PGconn *c, redis_conn_t *rc, const board_t *b, int64_t day)
{
    bool told = rc == NULL || rb_forget_window(rc, b->gen, day) == RB_OK;
    if (!told)
        log_warn(NULL, "import into %s: Redis's copy of the window could not be marked cold", b->id);
    (void)notify_again(c, b, day);
    return told;
}
