/* log.c: JSON-line structured logging. */
#include "xs/log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "xs/clock.h"

struct xs_log {
    char *service;
    xs_log_level min;
    int fd;
    pid_t pid;
    pthread_mutex_t mu;
};

static const char *level_names[] = {"debug", "info", "warn", "error"};

xs_err xs_log_create(xs_log **out, const char *service, xs_log_level min, int fd)
{
    if (out == NULL || service == NULL || min < XS_LOG_DEBUG || min > XS_LOG_ERROR || fd < 0) {
        return XS_EINVAL;
    }
    /* A service name jansson refuses (not UTF-8) would make every line fail to build. */
    json_t *check = json_string(service);
    if (check == NULL) {
        return XS_EINVAL;
    }
    json_decref(check);
    xs_log *log = calloc(1, sizeof(*log));
    if (log == NULL) {
        return XS_ENOMEM;
    }
    log->service = strdup(service);
    if (log->service == NULL) {
        free(log);
        return XS_ENOMEM;
    }
    log->min = min;
    log->fd = fd;
    log->pid = getpid();
    pthread_mutex_init(&log->mu, NULL);
    *out = log;
    return XS_OK;
}

void xs_log_destroy(xs_log *log)
{
    if (log == NULL) {
        return;
    }
    pthread_mutex_destroy(&log->mu);
    free(log->service);
    free(log);
}

xs_err xs_log_level_parse(const char *text, xs_log_level *out)
{
    if (text == NULL || out == NULL) {
        return XS_EINVAL;
    }
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (xs_log_level)i;
            return XS_OK;
        }
    }
    return XS_EINVAL;
}

int xs_log_enabled(const xs_log *log, xs_log_level level)
{
    return log != NULL && level >= log->min && level <= XS_LOG_ERROR;
}

/* is_secret_key tells whether a field name looks like it would hold a secret. */
static int is_secret_key(const char *key)
{
    static const char *needles[] = {"token",   "secret",   "password", "authorization", "apikey",
                                    "api_key", "verifier", "cookie",   "sealed",        "private"};
    for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++) {
        if (strcasestr(key, needles[i]) != NULL) {
            return 1;
        }
    }
    /* Exact names that are secrets in OAuth but too short to search for inside others. */
    return strcasecmp(key, "code") == 0 || strcasecmp(key, "key") == 0 ||
           strcasecmp(key, "refresh") == 0;
}

/* redact replaces, in place, the values of secret-looking keys anywhere inside v. */
static void redact(json_t *v)
{
    const char *key;
    json_t *val;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, key, val)
        {
            if (is_secret_key(key) && !json_is_null(val)) {
                json_object_set_new(v, key, json_string("[redacted]"));
            } else {
                redact(val);
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, val)
        {
            redact(val);
        }
    }
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return; /* nowhere left to report a failing log sink */
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* write_line writes obj and a newline to the log's fd with one write(2), so lines from
 * other logs or processes sharing the fd cannot split it (pipes keep writes of up to
 * PIPE_BUF bytes whole; O_APPEND files keep any write whole). */
static void write_line(xs_log *log, const json_t *obj)
{
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII;
    char small[1024];
    char *buf = small;
    size_t len = json_dumpb(obj, small, sizeof(small) - 1, flags);
    if (len == 0) {
        return;
    }
    if (len > sizeof(small) - 1) {
        buf = malloc(len + 1);
        if (buf == NULL || json_dumpb(obj, buf, len, flags) != len) {
            free(buf);
            return;
        }
    }
    buf[len] = '\n';
    pthread_mutex_lock(&log->mu);
    write_all(log->fd, buf, len + 1);
    pthread_mutex_unlock(&log->mu);
    if (buf != small) {
        free(buf);
    }
}

void xs_log_write(xs_log *log, xs_log_level level, const char *event, const char *fmt, ...)
{
    if (!xs_log_enabled(log, level)) {
        return;
    }
    json_t *line = NULL;
    json_error_t jerr;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        line = json_vpack_ex(&jerr, 0, fmt, ap);
        va_end(ap);
        if (line != NULL && !json_is_object(line)) {
            json_decref(line);
            line = NULL;
            snprintf(jerr.text, sizeof(jerr.text), "format does not produce an object");
        }
        if (line == NULL) {
            /* Keep the event; say what went wrong with its fields. */
            line = json_pack("{s:s, s:s}", "log_error", jerr.text, "log_format", fmt);
            level = XS_LOG_ERROR;
        }
    } else {
        line = json_object();
    }
    if (line == NULL) {
        return;
    }
    redact(line);

    json_t *ev = json_string(event != NULL ? event : "");
    if (ev == NULL) {
        /* An event name that is not UTF-8 must not cost the line. */
        json_object_set_new(line, "log_error", json_string("event is not valid UTF-8"));
        level = XS_LOG_ERROR;
        ev = json_string("log.invalid_event");
    }
    char ts[XS_TIME_ISO_MAX];
    xs_time_format_iso(xs_clock_now(), ts);
    /* The fixed fields go first in the output, ahead of the caller's. */
    json_t *head = json_pack("{s:s, s:s, s:s, s:I, s:o}", "ts", ts, "level", level_names[level],
                             "service", log->service, "pid", (json_int_t)log->pid, "event", ev);
    if (head == NULL) {
        json_decref(line);
        return;
    }
    json_object_update_missing(head, line);
    json_decref(line);
    write_line(log, head);
    json_decref(head);
}
