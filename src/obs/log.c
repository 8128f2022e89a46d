/* obs/log.c — JSON-lines logging to stderr; request lines buffered up to 100 ms while serving. */
#include "obs/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/window.h"
#include "util/buf.h"

/* Set at start and by a reload (SIGHUP) while threads log: atomic, relaxed (a line logged at
 * the old level just after a reload is fine). */
static _Atomic log_level_t min_level = LOG_INFO;

void log_set_level(log_level_t level)
{
    atomic_store_explicit(&min_level, level, memory_order_relaxed);
}

bool log_enabled(log_level_t level)
{
    return level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

const char *log_level_name(log_level_t level)
{
    switch (level) {
    case LOG_DEBUG: return "debug";
    case LOG_INFO: return "info";
    case LOG_WARN: return "warn";
    case LOG_ERROR: return "error";
    }
    return "info";
}

/*
 * Request lines (info and below) can be buffered, as web servers buffer access logs: one
 * write(2) per request costs a system call on the hot path. Warnings and errors are never
 * held back; they flush what is pending first, so lines stay in order. The buffer is the
 * one shared, locked structure here.
 */
#define PENDING_MAX 16384
#define FLUSH_MS 100

static struct {
    pthread_mutex_t lock;
    bool on;                  /* buffering enabled (rankd serve) */
    char data[PENDING_MAX];
    size_t len;
    pthread_t flusher;
    pthread_cond_t stop;
    bool stopping;
} pending = {.lock = PTHREAD_MUTEX_INITIALIZER, .stop = PTHREAD_COND_INITIALIZER};

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0 && errno != EINTR)
            return; /* nowhere left to report a failed log write */
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
    }
}

/* Lock held. */
static void flush_locked(void)
{
    write_all(pending.data, pending.len);
    pending.len = 0;
}

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&pending.lock);
    while (!pending.stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += FLUSH_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&pending.stop, &pending.lock, &until);
        flush_locked();
    }
    pending.on = false;
    flush_locked();
    pthread_mutex_unlock(&pending.lock);
    return NULL;
}

bool log_buffering_start(void)
{
    pthread_mutex_lock(&pending.lock);
    pending.stopping = false;
    bool ok = pthread_create(&pending.flusher, NULL, flusher_main, NULL) == 0;
    pending.on = ok;
    pthread_mutex_unlock(&pending.lock);
    return ok;
}

void log_buffering_stop(void)
{
    pthread_mutex_lock(&pending.lock);
    bool was_on = pending.on;
    pending.stopping = true;
    pthread_cond_signal(&pending.stop);
    pthread_mutex_unlock(&pending.lock);
    if (was_on)
        pthread_join(pending.flusher, NULL);
}

static void emit_line(log_level_t level, const char *line, size_t n)
{
    pthread_mutex_lock(&pending.lock);
    if (!pending.on || level >= LOG_WARN || n > PENDING_MAX) {
        flush_locked();
        write_all(line, n);
    } else {
        if (pending.len + n > PENDING_MAX)
            flush_locked();
        memcpy(pending.data + pending.len, line, n); /* the flusher writes it within FLUSH_MS */
        pending.len += n;
    }
    pthread_mutex_unlock(&pending.lock);
}

static void write_line(log_level_t level, const char *request_id, const char *client_request_id, const char *fmt,
                       va_list ap)
{
    char msg[2048];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
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
    buf_puts(&b, log_level_name(level));
    buf_putc(&b, '"');
    if (request_id) {
        buf_puts(&b, ",\"request_id\":");
        buf_json_str(&b, request_id, strlen(request_id));
    }
    if (client_request_id && client_request_id[0]) {
        buf_puts(&b, ",\"client_request_id\":");
        buf_json_str(&b, client_request_id, strlen(client_request_id));
    }
    buf_puts(&b, ",\"msg\":");
    buf_json_str(&b, msg, (size_t)n);
    buf_puts(&b, "}\n");
    emit_line(level, b.data, b.len);
    buf_free(&b);
}

void log_write(log_level_t level, const char *request_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(level, request_id, NULL, fmt, ap);
    va_end(ap);
}

void log_write_req(log_level_t level, const char *request_id, const char *client_request_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(level, request_id, client_request_id, fmt, ap);
    va_end(ap);
}
