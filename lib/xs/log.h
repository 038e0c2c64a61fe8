/*
 * log.h: structured logs, one JSON object per line.
 *
 * Every line carries "ts" (UTC, ISO 8601 with milliseconds), "level", "service", "pid",
 * "event" (a stable dotted name such as "bus.listen"), and the caller's fields. Fields are
 * given as a jansson json_pack() format for an object, so a log line is never assembled
 * with printf. Values of fields whose name suggests a secret (token, secret, password,
 * authorization, key, verifier, code, cookie) are replaced by "[redacted]" as a last line
 * of defence; callers still must not pass secrets.
 *
 * A log is safe to use from many threads; each line is written with one write(2).
 */
#ifndef XS_LOG_H
#define XS_LOG_H

#include "xs/err.h"

typedef enum xs_log_level {
    XS_LOG_DEBUG = 0,
    XS_LOG_INFO = 1,
    XS_LOG_WARN = 2,
    XS_LOG_ERROR = 3,
} xs_log_level;

typedef struct xs_log xs_log;

/* xs_log_create makes a log for process `service` writing to file descriptor fd (not
 * taken over; usually 2) and dropping lines below min. service is copied. */
xs_err xs_log_create(xs_log **out, const char *service, xs_log_level min, int fd);

/* xs_log_destroy frees log; NULL is accepted. */
void xs_log_destroy(xs_log *log);

/* xs_log_level_parse reads "debug", "info", "warn" or "error". */
xs_err xs_log_level_parse(const char *text, xs_log_level *out);

/* xs_log_enabled tells whether a line at level would be written. */
int xs_log_enabled(const xs_log *log, xs_log_level level);

/* xs_log_write writes one line. fmt is a json_pack() format producing an object (for
 * example "{s:s, s:i}"), or NULL for no fields. log may be NULL (nothing is written). A
 * bad format is itself logged as an error line rather than lost. */
void xs_log_write(xs_log *log, xs_log_level level, const char *event, const char *fmt, ...);

#define xs_log_debug(log, event, ...) xs_log_write((log), XS_LOG_DEBUG, (event), __VA_ARGS__)
#define xs_log_info(log, event, ...)  xs_log_write((log), XS_LOG_INFO, (event), __VA_ARGS__)
#define xs_log_warn(log, event, ...)  xs_log_write((log), XS_LOG_WARN, (event), __VA_ARGS__)
#define xs_log_error(log, event, ...) xs_log_write((log), XS_LOG_ERROR, (event), __VA_ARGS__)

#endif
