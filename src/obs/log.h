/*
 * obs/log.h — structured logs: one JSON object per line on stderr.
 *
 * Each line carries a timestamp, the level, the request id when there is
 * one, and the message. The macros check the level before formatting
 * anything, so a disabled debug line costs one comparison. The level is set
 * at start and by a reload.
 */
#ifndef RANKD_OBS_LOG_H
#define RANKD_OBS_LOG_H

#include "config/config.h"

void log_set_level(log_level_t level);
/*
 * While serving: hold info and debug lines in a buffer written at least every 100 ms (a
 * thread of its own) or when full; warnings and errors still go out at once, after what
 * is pending. Stop flushes everything. False when the thread cannot start (unbuffered).
 */
bool log_buffering_start(void);
void log_buffering_stop(void);
bool log_enabled(log_level_t level);
/* "debug", "info", "warn" or "error". */
const char *log_level_name(log_level_t level);
/* Write one line; `request_id` may be NULL. */
void log_write(log_level_t level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for a request: `request_id` is the server's own id for it, which no client chooses,
 * and `client_request_id` the X-Request-Id the client sent ("" or NULL when none), logged beside
 * it as "client_request_id" so that a client cannot pass its lines off as another request's. */
void log_write_req(log_level_t level, const char *request_id, const char *client_request_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(rid, ...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, rid, __VA_ARGS__); } while (0)
#define log_info(rid, ...) do { if (log_enabled(LOG_INFO)) log_write(LOG_INFO, rid, __VA_ARGS__); } while (0)
#define log_warn(rid, ...) do { if (log_enabled(LOG_WARN)) log_write(LOG_WARN, rid, __VA_ARGS__); } while (0)
#define log_error(rid, ...) do { if (log_enabled(LOG_ERROR)) log_write(LOG_ERROR, rid, __VA_ARGS__); } while (0)
/* A request's line: `req` is an http_req_t * (its own id and the client's). */
#define log_req_info(req, ...) \
    do { if (log_enabled(LOG_INFO)) log_write_req(LOG_INFO, (req)->request_id, (req)->client_request_id, __VA_ARGS__); } while (0)
#define log_req_warn(req, ...) \
    do { if (log_enabled(LOG_WARN)) log_write_req(LOG_WARN, (req)->request_id, (req)->client_request_id, __VA_ARGS__); } while (0)

#endif
