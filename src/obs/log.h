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

#define log_debug(rid, ...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, rid, __VA_ARGS__); } while (0)
#define log_info(rid, ...) do { if (log_enabled(LOG_INFO)) log_write(LOG_INFO, rid, __VA_ARGS__); } while (0)
#define log_warn(rid, ...) do { if (log_enabled(LOG_WARN)) log_write(LOG_WARN, rid, __VA_ARGS__); } while (0)
#define log_error(rid, ...) do { if (log_enabled(LOG_ERROR)) log_write(LOG_ERROR, rid, __VA_ARGS__); } while (0)

#endif
