/* http/request_head.c — a connection's first request head, checked (see request_head.h). */
#include "http/request_head.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static head_status_t bad(head_verdict_t *v, int status, const char *field, const char *message)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {{400, "Bad Request"}, {413, "Content Too Large"}, {414, "URI Too Long"},
                   {431, "Request Header Fields Too Large"}, {500, "Internal Server Error"},
                   {505, "HTTP Version Not Supported"}};
    v->status = status;
    v->reason = "Bad Request";
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            v->reason = reasons[i].reason;
    v->code = "invalid_argument";
    v->field = field;
    v->message = message;
    v->retry_after_s = 0;
    return HEAD_BAD;
}

/* RFC 9110's tchar: what a method and a header name are made of. A table: every header name of
 * every request goes through it (request_head_field). */
static const bool tchars[256] = {
    ['0' ... '9'] = true, ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['!'] = true, ['#'] = true, ['$'] = true,
    ['%'] = true, ['&'] = true, ['\''] = true, ['*'] = true, ['+'] = true, ['-'] = true, ['.'] = true, ['^'] = true,
    ['_'] = true, ['`'] = true, ['|'] = true, ['~'] = true,
};

static bool is_tchar(unsigned char c)
{
    return tchars[c];
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The next run of bytes other than SP in [*p, end), *p moved past it and past the spaces after
 * it; its length (0: none left). */
static size_t next_word(const char **p, const char *end, const char **word)
{
    *word = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    size_t n = (size_t)(*p - *word);
    while (*p < end && **p == ' ')
        (*p)++;
    return n;
}

#define LINE_RULE "the request line must be METHOD TARGET HTTP/1.1"

static head_status_t check_request_line(const char *s, size_t n, head_verdict_t *v)
{
    if (memchr(s, '\0', n))
        return bad(v, 400, NULL, LINE_RULE);
    const char *p = s, *end = s + n, *method, *target, *version;
    size_t mlen = next_word(&p, end, &method);
    size_t tlen = next_word(&p, end, &target);
    size_t vlen = next_word(&p, end, &version);
    if (mlen == 0 || tlen == 0 || vlen == 0 || p != end)
        return bad(v, 400, NULL, LINE_RULE);
    for (size_t i = 0; i < mlen; i++)
        if (!is_tchar((unsigned char)method[i]))
            return bad(v, 400, NULL, LINE_RULE);
    if (vlen < 6 || memcmp(version, "HTTP/", 5) != 0)
        return bad(v, 400, NULL, LINE_RULE);
    if (vlen == 8 && version[5] == '1' && version[6] == '.' && is_digit(version[7]))
        return HEAD_OK;
    /* HTTP/2.0, HTTP/0.9, HTTP/3: a version, not ours */
    if ((vlen == 6 && is_digit(version[5])) || (vlen == 8 && is_digit(version[5]) && version[6] == '.' && is_digit(version[7])))
        return bad(v, 505, NULL, "this server speaks HTTP/1.0 and HTTP/1.1");
    return bad(v, 400, NULL, LINE_RULE);
}

/* [*s, *s + *n) without the spaces and tabs at either end. */
static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

#define HEADER_RULE "a header line must be Name: value, its name a token with no space before the colon"

/*
 * RFC 9112 5.1 and 5.2: a space before the colon, and a line folded onto the previous one, are
 * refused (400), as is a NUL anywhere. libmicrohttpd reads "Content-Length : 5" as another
 * header and joins a folded value on without a space, so taking either here would let the two
 * disagree on where a request ends: a request smuggled inside another's body.
 */
static head_status_t check_header_line(const char *s, size_t n, head_framing_t *f, head_verdict_t *v)
{
    if (memchr(s, '\0', n))
        return bad(v, 400, "headers", "a header line must not hold a NUL byte");
    if (s[0] == ' ' || s[0] == '\t')
        return bad(v, 400, "headers", "a header line must not be folded onto the one before it");
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return bad(v, 400, "headers", HEADER_RULE);
    return request_head_field(s, (size_t)(colon - s), colon + 1, n - (size_t)(colon - s) - 1, f, v);
}

head_status_t request_head_field(const char *name, size_t name_len, const char *value, size_t value_len,
                                 head_framing_t *f, head_verdict_t *v)
{
    if (name_len == 0)
        return bad(v, 400, "headers", HEADER_RULE);
    for (size_t i = 0; i < name_len; i++)
        if (!is_tchar((unsigned char)name[i]))
            return bad(v, 400, "headers", HEADER_RULE);
    trim(&value, &value_len);
    if (name_is(name, name_len, "Content-Length")) {
        bool number = value_len > 0 && value_len <= 18;
        for (size_t i = 0; number && i < value_len; i++)
            number = is_digit(value[i]);
        if (!number)
            return bad(v, 400, "Content-Length", "Content-Length must be a number of bytes (at most 18 digits)");
        if (f->has_length && (value_len != f->length_len || memcmp(value, f->length, value_len) != 0))
            return bad(v, 400, "Content-Length", "a request has one Content-Length");
        f->has_length = true;
        f->length = value;
        f->length_len = value_len;
    } else if (name_is(name, name_len, "Transfer-Encoding")) {
        if (f->chunked || !name_is(value, value_len, "chunked"))
            return bad(v, 400, "Transfer-Encoding", "Transfer-Encoding must be chunked, once, or absent");
        f->chunked = true;
    }
    return HEAD_OK;
}

head_status_t request_head_check(const char *buf, size_t len, head_verdict_t *v)
{
    size_t pos = 0;
    while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n')) /* empty lines before it are ignored */
        pos++;
    bool first = true;
    head_framing_t f = {0};
    for (;;) {
        const char *nl = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
        if (!nl || (size_t)(nl - buf) >= REQUEST_HEAD_MAX) {
            if (len <= REQUEST_HEAD_MAX && !nl)
                return HEAD_NEED_MORE;
            if (first)
                return bad(v, 414, "path", "the request line is longer than 8192 bytes");
            return bad(v, 431, "headers", "the request headers are larger than 8192 bytes");
        }
        size_t end = (size_t)(nl - buf), n = end - pos;
        if (n > 0 && buf[end - 1] == '\r')
            n--;
        const char *line = buf + pos;
        pos = end + 1;
        if (first) {
            first = false;
            if (check_request_line(line, n, v) != HEAD_OK)
                return HEAD_BAD;
            continue;
        }
        if (n == 0) /* the head's end */
            return request_head_framing_end(&f, v);
        if (check_header_line(line, n, &f, v) != HEAD_OK)
            return HEAD_BAD;
    }
}

head_status_t request_head_framing_end(const head_framing_t *f, head_verdict_t *v)
{
    if (f->has_length && f->chunked)
        return bad(v, 400, "Transfer-Encoding",
                   "a request is framed by Content-Length or by Transfer-Encoding: chunked, not both");
    return HEAD_OK;
}

head_verdict_t request_head_library_refusal(int status)
{
    head_verdict_t v;
    switch (status) {
    case 400:
        (void)bad(&v, 400, NULL, LINE_RULE ", each header line Name: value, a Content-Length a number of bytes, "
                                 "and a chunked body well framed");
        break;
    case 413:
        (void)bad(&v, 413, NULL, "the body is larger than this server takes");
        v.code = "payload_too_large";
        break;
    case 414: (void)bad(&v, 414, "path", "the request line is longer than 8192 bytes"); break;
    case 431: (void)bad(&v, 431, "headers", "the request headers are larger than 8192 bytes"); break;
    case 505: (void)bad(&v, 505, NULL, "this server speaks HTTP/1.0 and HTTP/1.1"); break;
    case 500:
        (void)bad(&v, 500, NULL, "the request could not be read");
        v.code = "internal";
        break;
    default:
        (void)bad(&v, 400, NULL, "the request could not be read");
        v.status = status;
        break;
    }
    return v;
}

size_t request_head_body(const head_verdict_t *v, char *out, size_t cap)
{
    int b = snprintf(out, cap, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"%s%s%s}}", v->code, v->message,
                     v->field ? ",\"field\":\"" : "", v->field ? v->field : "", v->field ? "\"" : "");
    return b < 0 || (size_t)b >= cap ? 0 : (size_t)b;
}

head_verdict_t request_head_unavailable(void)
{
    return (head_verdict_t){.status = 503,
                            .reason = "Service Unavailable",
                            .code = "unavailable",
                            .message = "the server is shutting down; try again",
                            .retry_after_s = 1};
}

size_t request_head_answer(const head_verdict_t *v, time_t now, char *out, size_t cap)
{
    struct tm tm;
    char date[40];
    if (!gmtime_r(&now, &tm) || strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        return 0;
    char body[512];
    size_t b = request_head_body(v, body, sizeof body);
    if (b == 0)
        return 0;
    char retry[40] = "";
    if (v->retry_after_s > 0)
        snprintf(retry, sizeof retry, "Retry-After: %d\r\n", v->retry_after_s);
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     "%sConnection: close\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\r\n%s",
                     v->status, v->reason, date, (int)b, retry, body);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}
