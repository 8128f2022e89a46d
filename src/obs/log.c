/* obs/log.c — JSON-lines logging to stderr, one write(2) per line. */
#include "obs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/window.h"
#include "util/buf.h"

static log_level_t min_level = LOG_INFO; /* written once at start */

void log_set_level(log_level_t level)
{
    min_level = level;
}

bool log_enabled(log_level_t level)
{
    return level >= min_level;
}

static const char *level_name(log_level_t level)
{
    switch (level) {
    case LOG_DEBUG: return "debug";
    case LOG_INFO: return "info";
    case LOG_WARN: return "warn";
    case LOG_ERROR: return "error";
    }
    return "info";
}

void log_write(log_level_t level, const char *request_id, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;

    struct timeval tv;
    gettimeofday(&tv, NULL);
    char ts[25];
    window_format_ms((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, ts);

    buf_t b;
    buf_init(&b);
    buf_puts(&b, "{\"ts\":\"");
    buf_puts(&b, ts);
    buf_puts(&b, "\",\"level\":\"");
    buf_puts(&b, level_name(level));
    buf_putc(&b, '"');
    if (request_id) {
        buf_puts(&b, ",\"request_id\":");
        buf_json_str(&b, request_id, strlen(request_id));
    }
    buf_puts(&b, ",\"msg\":");
    buf_json_str(&b, msg, (size_t)n);
    buf_puts(&b, "}\n");
    ssize_t w = write(STDERR_FILENO, b.data, b.len);
    (void)w; /* nowhere left to report a failed log write */
    buf_free(&b);
}
