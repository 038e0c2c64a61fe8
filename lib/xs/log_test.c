/* log_test.c: the JSON lines log.c writes, read back through pipes and sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "xs/clock.h"
#include "xs/log.h"

/* A log writing into a pipe, and what has been read back from it. */
struct cap {
    int rd;
    int wr;
    xs_log *log;
    char *buf;
    size_t len;
    size_t cap;
};

static void cap_append(struct cap *c, const char *p, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        size_t want = (c->len + n + 1) * 2;
        char *nb = realloc(c->buf, want);
        assert_non_null(nb);
        c->buf = nb;
        c->cap = want;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    c->buf[c->len] = '\0';
}

static int cap_setup(void **state)
{
    struct cap *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    c->rd = fds[0];
    c->wr = fds[1];
    assert_int_equal(fcntl(c->rd, F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(xs_log_create(&c->log, "xs-test", XS_LOG_DEBUG, c->wr), XS_OK);
    *state = c;
    return 0;
}

static int cap_teardown(void **state)
{
    struct cap *c = *state;
    xs_log_destroy(c->log);
    close(c->rd);
    close(c->wr);
    free(c->buf);
    free(c);
    return 0;
}

/* cap_drain reads everything the pipe holds now. */
static void cap_drain(struct cap *c)
{
    char tmp[4096];
    for (;;) {
        ssize_t n = read(c->rd, tmp, sizeof(tmp));
        if (n > 0) {
            cap_append(c, tmp, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        return;
    }
}

/* cap_lines drains the pipe and returns every line as parsed JSON (new array), failing the
 * test unless each line is a complete JSON object followed by a newline. */
static json_t *cap_lines(struct cap *c)
{
    cap_drain(c);
    json_t *arr = json_array();
    assert_non_null(arr);
    size_t start = 0;
    for (size_t i = 0; i < c->len; i++) {
        if (c->buf[i] != '\n') {
            continue;
        }
        json_error_t jerr;
        json_t *obj = json_loadb(c->buf + start, i - start, 0, &jerr);
        if (obj == NULL || !json_is_object(obj)) {
            fail_msg("line is not a JSON object (%s): %.*s", jerr.text, (int)(i - start),
                     c->buf + start);
        }
        json_array_append_new(arr, obj);
        start = i + 1;
    }
    assert_int_equal(start, c->len); /* no partial line at the end */
    c->len = 0;
    return arr;
}

/* only_line returns the single line written since the last read (new). */
static json_t *only_line(struct cap *c)
{
    json_t *arr = cap_lines(c);
    assert_int_equal(json_array_size(arr), 1);
    json_t *obj = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return obj;
}

static const char *str_field(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || !json_is_string(v)) {
        fail_msg("field %s is missing or not a string", key);
    }
    return json_string_value(v);
}

static void test_create_errors(void **state)
{
    (void)state;
    xs_log *log = (xs_log *)&log; /* any non-NULL value, to see it is left alone */
    xs_log *const before = log;
    assert_int_equal(xs_log_create(NULL, "svc", XS_LOG_INFO, 2), XS_EINVAL);
    assert_int_equal(xs_log_create(&log, NULL, XS_LOG_INFO, 2), XS_EINVAL);
    assert_int_equal(xs_log_create(&log, "svc", (xs_log_level)-1, 2), XS_EINVAL);
    assert_int_equal(xs_log_create(&log, "svc", (xs_log_level)4, 2), XS_EINVAL);
    assert_int_equal(xs_log_create(&log, "svc", XS_LOG_INFO, -1), XS_EINVAL);
    assert_int_equal(xs_log_create(&log, "bad\xff", XS_LOG_INFO, 2), XS_EINVAL);
    assert_ptr_equal(log, before);
    xs_log_destroy(NULL);

    /* The service name is copied. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char name[] = "svc-a";
    assert_int_equal(xs_log_create(&log, name, XS_LOG_INFO, fds[1]), XS_OK);
    name[4] = 'b';
    xs_log_info(log, "x", NULL);
    xs_log_destroy(log);
    char buf[512];
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\"service\":\"svc-a\""));
    close(fds[0]);
    close(fds[1]);
}

static void test_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        xs_log_level level;
    } ok[] = {
        {"debug", XS_LOG_DEBUG}, {"info", XS_LOG_INFO},   {"warn", XS_LOG_WARN},
        {"error", XS_LOG_ERROR}, {"INFO", XS_LOG_INFO},   {"Warn", XS_LOG_WARN},
        {"ERROR", XS_LOG_ERROR}, {"DeBuG", XS_LOG_DEBUG},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        xs_log_level l = (xs_log_level)99;
        assert_int_equal(xs_log_level_parse(ok[i].text, &l), XS_OK);
        assert_int_equal(l, ok[i].level);
    }
    static const char *bad[] = {"", "warning", "fatal", "trace", " info", "info ", "inf", "0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xs_log_level l = (xs_log_level)99;
        assert_int_equal(xs_log_level_parse(bad[i], &l), XS_EINVAL);
        assert_int_equal(l, 99);
    }
    xs_log_level l;
    assert_int_equal(xs_log_level_parse(NULL, &l), XS_EINVAL);
    assert_int_equal(xs_log_level_parse("info", NULL), XS_EINVAL);
}

static void test_enabled(void **state)
{
    (void)state;
    xs_log *log = NULL;
    assert_int_equal(xs_log_create(&log, "svc", XS_LOG_WARN, 2), XS_OK);
    assert_false(xs_log_enabled(log, XS_LOG_DEBUG));
    assert_false(xs_log_enabled(log, XS_LOG_INFO));
    assert_true(xs_log_enabled(log, XS_LOG_WARN));
    assert_true(xs_log_enabled(log, XS_LOG_ERROR));
    assert_false(xs_log_enabled(log, (xs_log_level)4));
    assert_false(xs_log_enabled(log, (xs_log_level)-1));
    assert_false(xs_log_enabled(NULL, XS_LOG_ERROR));
    xs_log_destroy(log);
}

static void test_line_fields(void **state)
{
    struct cap *c = *state;
    xs_time before = xs_clock_now();
    xs_log_info(c->log, "bus.listen", "{s:s, s:i, s:b, s:n}", "url", "tcp://127.0.0.1:5555", "port",
                5555, "ok", 1, "none");
    xs_time after = xs_clock_now();

    /* The fixed fields come first, in this order. */
    cap_drain(c);
    assert_true(strncmp(c->buf, "{\"ts\":\"", 7) == 0);
    const char *lvl = strstr(c->buf, "\"level\"");
    const char *svc = strstr(c->buf, "\"service\"");
    const char *pid = strstr(c->buf, "\"pid\"");
    const char *ev = strstr(c->buf, "\"event\"");
    const char *url = strstr(c->buf, "\"url\"");
    assert_true(lvl != NULL && svc > lvl && pid > svc && ev > pid && url > ev);
    assert_int_equal(c->buf[c->len - 1], '\n');
    assert_null(memchr(c->buf, '\n', c->len - 1));

    json_t *o = only_line(c);
    const char *ts = str_field(o, "ts");
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[23], 'Z');
    xs_time t = 0;
    assert_int_equal(xs_time_parse_iso(ts, &t), XS_OK);
    assert_true(t >= before && t <= after);
    assert_string_equal(str_field(o, "level"), "info");
    assert_string_equal(str_field(o, "service"), "xs-test");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), getpid());
    assert_string_equal(str_field(o, "event"), "bus.listen");
    assert_string_equal(str_field(o, "url"), "tcp://127.0.0.1:5555");
    assert_int_equal(json_integer_value(json_object_get(o, "port")), 5555);
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_true(json_is_null(json_object_get(o, "none")));
    assert_int_equal(json_object_size(o), 9);
    json_decref(o);
}

static void test_no_fields_and_levels(void **state)
{
    struct cap *c = *state;
    static const char *names[] = {"debug", "info", "warn", "error"};
    xs_log_debug(c->log, "a.debug", NULL);
    xs_log_info(c->log, "a.info", NULL);
    xs_log_warn(c->log, "a.warn", NULL);
    xs_log_error(c->log, "a.error", NULL);
    json_t *arr = cap_lines(c);
    assert_int_equal(json_array_size(arr), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *o = json_array_get(arr, i);
        assert_int_equal(json_object_size(o), 5);
        assert_string_equal(str_field(o, "level"), names[i]);
    }
    json_decref(arr);

    /* A NULL event is written as an empty one. */
    xs_log_info(c->log, NULL, NULL);
    json_t *o = only_line(c);
    assert_string_equal(str_field(o, "event"), "");
    json_decref(o);
}

static void test_filtering(void **state)
{
    struct cap *c = *state;
    xs_log *log = NULL;
    assert_int_equal(xs_log_create(&log, "filtered", XS_LOG_WARN, c->wr), XS_OK);
    xs_log_debug(log, "x.debug", "{s:i}", "n", 1);
    xs_log_info(log, "x.info", "{s:i}", "n", 2);
    xs_log_warn(log, "x.warn", "{s:i}", "n", 3);
    xs_log_error(log, "x.error", "{s:i}", "n", 4);
    xs_log_write(log, (xs_log_level)7, "x.bogus", "{s:i}", "n", 5);
    xs_log_write(log, (xs_log_level)-1, "x.bogus", "{s:i}", "n", 6);
    /* A bad format on a line below the threshold writes nothing either. */
    xs_log_debug(log, "x.bad", "{s:");
    json_t *arr = cap_lines(c);
    assert_int_equal(json_array_size(arr), 2);
    assert_string_equal(str_field(json_array_get(arr, 0), "event"), "x.warn");
    assert_string_equal(str_field(json_array_get(arr, 1), "event"), "x.error");
    assert_string_equal(str_field(json_array_get(arr, 0), "service"), "filtered");
    json_decref(arr);
    xs_log_destroy(log);

    assert_int_equal(xs_log_create(&log, "quiet", XS_LOG_ERROR, c->wr), XS_OK);
    xs_log_warn(log, "y.warn", NULL);
    arr = cap_lines(c);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    xs_log_destroy(log);
}

static void test_redaction(void **state)
{
    struct cap *c = *state;
    static const char *secret_keys[] = {
        "token",       "access_token",  "refresh_token", "id_token",    "client_secret", "Password",
        "db_password", "authorization", "Authorization", "code",        "CODE",          "key",
        "refresh",     "code_verifier", "verifier",      "cookie",      "Set-Cookie",    "api_key",
        "apikey",      "XS_API_KEYS",   "sealed_token",  "private_key",
    };
    static const char *plain_keys[] = {
        "error_code", "status_code", "key_id", "keyboard", "tenant", "url",
        "codes",      "monkey",      "err",    "reason",   "kid",    "event_type",
    };
    json_t *fields = json_object();
    for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
        json_object_set_new(fields, secret_keys[i], json_string("s3cr3t-value"));
    }
    for (size_t i = 0; i < sizeof(plain_keys) / sizeof(plain_keys[0]); i++) {
        json_object_set_new(fields, plain_keys[i], json_string("plain-value"));
    }
    json_object_set_new(fields, "password_hint", json_null());
    xs_log_info(c->log, "auth.callback", "{s:O}", "f", fields);
    json_decref(fields);

    cap_drain(c);
    assert_null(strstr(c->buf, "s3cr3t"));
    json_t *o = only_line(c);
    json_t *f = json_object_get(o, "f");
    assert_non_null(f);
    for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
        const char *v = str_field(f, secret_keys[i]);
        if (strcmp(v, "[redacted]") != 0) {
            fail_msg("field %s was not redacted", secret_keys[i]);
        }
    }
    for (size_t i = 0; i < sizeof(plain_keys) / sizeof(plain_keys[0]); i++) {
        const char *v = str_field(f, plain_keys[i]);
        if (strcmp(v, "plain-value") != 0) {
            fail_msg("field %s was redacted", plain_keys[i]);
        }
    }
    /* A null secret says nothing, so it stays null. */
    assert_true(json_is_null(json_object_get(f, "password_hint")));
    json_decref(o);
}

static void test_redaction_nested(void **state)
{
    struct cap *c = *state;
    xs_log_warn(c->log, "http.request", "{s:{s:{s:s, s:s}, s:[{s:s}, {s:i}, [{s:s}]]}, s:{s:s}}",
                "req", "headers", "Authorization", "Bearer abc.def.ghi", "Accept", "json", "items",
                "token", "t-123", "ok", 1, "refresh_token", "r-456", "token", "whole", "object");
    cap_drain(c);
    assert_null(strstr(c->buf, "abc.def.ghi"));
    assert_null(strstr(c->buf, "t-123"));
    assert_null(strstr(c->buf, "r-456"));
    assert_null(strstr(c->buf, "object"));
    json_t *o = only_line(c);
    json_t *req = json_object_get(o, "req");
    json_t *headers = json_object_get(req, "headers");
    assert_string_equal(str_field(headers, "Authorization"), "[redacted]");
    assert_string_equal(str_field(headers, "Accept"), "json");
    json_t *items = json_object_get(req, "items");
    assert_string_equal(str_field(json_array_get(items, 0), "token"), "[redacted]");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 1), "ok")), 1);
    json_t *inner = json_array_get(json_array_get(items, 2), 0);
    assert_string_equal(str_field(inner, "refresh_token"), "[redacted]");
    /* A secret-named object is replaced whole. */
    assert_string_equal(str_field(o, "token"), "[redacted]");
    json_decref(o);
}

static void test_bad_format(void **state)
{
    struct cap *c = *state;
    static const char *bad[] = {"{s:s", "{s}", "{s:q}", "s:s}", "{s:s, s:}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xs_log_debug(c->log, "bad.format", bad[i], "k", "v", "k2", "v2");
        json_t *o = only_line(c);
        assert_string_equal(str_field(o, "level"), "error");
        assert_string_equal(str_field(o, "event"), "bad.format");
        assert_string_equal(str_field(o, "log_format"), bad[i]);
        assert_true(strlen(str_field(o, "log_error")) > 0);
        assert_null(json_object_get(o, "k"));
        json_decref(o);
    }

    /* A format that makes something other than an object. */
    xs_log_info(c->log, "bad.array", "[i, i]", 1, 2);
    json_t *o = only_line(c);
    assert_string_equal(str_field(o, "level"), "error");
    assert_string_equal(str_field(o, "log_error"), "format does not produce an object");
    assert_string_equal(str_field(o, "log_format"), "[i, i]");
    json_decref(o);

    /* A NULL string argument and a string that is not UTF-8 are caught the same way. */
    xs_log_info(c->log, "bad.null", "{s:s}", "k", (const char *)NULL);
    o = only_line(c);
    assert_string_equal(str_field(o, "level"), "error");
    json_decref(o);
    xs_log_info(c->log, "bad.utf8", "{s:s}", "k", "\xc3\x28");
    o = only_line(c);
    assert_string_equal(str_field(o, "level"), "error");
    assert_string_equal(str_field(o, "event"), "bad.utf8");
    json_decref(o);

    /* An event name that is not UTF-8 still gives a line. */
    xs_log_info(c->log, "bad\xff", "{s:i}", "n", 1);
    o = only_line(c);
    assert_string_equal(str_field(o, "level"), "error");
    assert_string_equal(str_field(o, "event"), "log.invalid_event");
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 1);
    json_decref(o);
}

static void test_fixed_fields_win(void **state)
{
    struct cap *c = *state;
    xs_log_info(c->log, "real.event", "{s:s, s:s, s:s, s:i, s:s, s:s}", "level", "fake", "event",
                "fake", "service", "fake", "pid", -5, "ts", "fake", "extra", "kept");
    json_t *o = only_line(c);
    assert_string_equal(str_field(o, "level"), "info");
    assert_string_equal(str_field(o, "event"), "real.event");
    assert_string_equal(str_field(o, "service"), "xs-test");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), getpid());
    assert_string_not_equal(str_field(o, "ts"), "fake");
    assert_string_equal(str_field(o, "extra"), "kept");
    json_decref(o);
}

static void test_escaping(void **state)
{
    struct cap *c = *state;
    xs_log_info(c->log, "esc", "{s:s, s:s}", "name", "Caf\xc3\xa9 \"quoted\"\n\ttab", "q",
                "{\"inject\":1}");
    cap_drain(c);
    /* Only ASCII goes out, and the one newline ends the line. */
    for (size_t i = 0; i < c->len; i++) {
        assert_true((unsigned char)c->buf[i] < 0x80);
    }
    assert_ptr_equal(strchr(c->buf, '\n'), c->buf + c->len - 1);
    json_t *o = only_line(c);
    assert_string_equal(str_field(o, "name"), "Caf\xc3\xa9 \"quoted\"\n\ttab");
    assert_string_equal(str_field(o, "q"), "{\"inject\":1}");
    assert_null(json_object_get(o, "inject"));
    json_decref(o);
}

static void test_long_line(void **state)
{
    struct cap *c = *state;
    size_t n = 20000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) {
        big[i] = (char)('a' + i % 26);
    }
    big[n] = '\0';
    xs_log_info(c->log, "big", "{s:s}", "blob", big);
    json_t *o = only_line(c);
    assert_string_equal(str_field(o, "blob"), big);
    json_decref(o);

    /* Lengths around the size of log.c's stack buffer. */
    for (size_t len = 900; len < 1100; len++) {
        big[len] = '\0';
        xs_log_info(c->log, "edge", "{s:s}", "blob", big);
        o = only_line(c);
        assert_int_equal(strlen(str_field(o, "blob")), len);
        json_decref(o);
        big[len] = (char)('a' + len % 26);
    }
    free(big);
}

static void test_null_log(void **state)
{
    (void)state;
    xs_log_write(NULL, XS_LOG_ERROR, "x", "{s:s}", "a", "b");
    xs_log_error(NULL, "x", NULL);
    xs_log_error(NULL, "x", "{bad");
    assert_false(xs_log_enabled(NULL, XS_LOG_ERROR));
}

static void test_write_failure_is_silent(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    xs_log *log = NULL;
    assert_int_equal(xs_log_create(&log, "svc", XS_LOG_DEBUG, fd), XS_OK);
    xs_log_info(log, "x", "{s:i}", "n", 1); /* write(2) fails with EBADF */
    xs_log_destroy(log);
    close(fd);
}

static void test_one_write_per_line(void **state)
{
    (void)state;
    /* On a SOCK_SEQPACKET socket each write(2) arrives as one message, so every message must
     * be exactly one whole line. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    xs_log *log = NULL;
    assert_int_equal(xs_log_create(&log, "svc", XS_LOG_DEBUG, sv[0]), XS_OK);
    xs_log_info(log, "one", "{s:i}", "n", 1);
    xs_log_warn(log, "two", NULL);
    xs_log_error(log, "three", "{bad");
    for (int i = 0; i < 3; i++) {
        char msg[4096];
        ssize_t n = recv(sv[1], msg, sizeof(msg), MSG_DONTWAIT);
        assert_true(n > 1);
        assert_int_equal(msg[n - 1], '\n');
        assert_null(memchr(msg, '\n', (size_t)n - 1));
        json_t *o = json_loadb(msg, (size_t)n - 1, 0, NULL);
        assert_non_null(o);
        json_decref(o);
    }
    char msg[16];
    assert_int_equal(recv(sv[1], msg, sizeof(msg), MSG_DONTWAIT), -1);
    xs_log_destroy(log);
    close(sv[0]);
    close(sv[1]);
}

#define N_THREADS 8
#define N_LINES   2000

struct writer {
    xs_log *log;
    int id;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < N_LINES; i++) {
        xs_log_info(w->log, "load.line", "{s:i, s:i, s:s}", "thread", w->id, "seq", i, "pad",
                    "0123456789012345678901234567890123456789");
    }
    return NULL;
}

struct reader {
    int fd;
    char *buf;
    size_t len;
    size_t cap;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    char tmp[65536];
    for (;;) {
        ssize_t n = read(r->fd, tmp, sizeof(tmp));
        if (n == 0) {
            return NULL;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return NULL;
        }
        if (r->len + (size_t)n > r->cap) {
            size_t want = (r->len + (size_t)n) * 2;
            char *nb = realloc(r->buf, want);
            if (nb == NULL) {
                return NULL;
            }
            r->buf = nb;
            r->cap = want;
        }
        memcpy(r->buf + r->len, tmp, (size_t)n);
        r->len += (size_t)n;
    }
}

/* run_concurrent has N_THREADS threads write N_LINES each into one pipe, through one shared
 * log (shared true) or a log per thread, and checks every line arrives whole and in each
 * thread's order. */
static void run_concurrent(bool shared)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct reader r = {.fd = fds[0]};
    pthread_t rt;
    assert_int_equal(pthread_create(&rt, NULL, reader_main, &r), 0);

    struct writer w[N_THREADS];
    pthread_t wt[N_THREADS];
    xs_log *one = NULL;
    if (shared) {
        assert_int_equal(xs_log_create(&one, "load", XS_LOG_INFO, fds[1]), XS_OK);
    }
    for (int i = 0; i < N_THREADS; i++) {
        w[i].id = i;
        w[i].log = one;
        if (!shared) {
            assert_int_equal(xs_log_create(&w[i].log, "load", XS_LOG_INFO, fds[1]), XS_OK);
        }
        assert_int_equal(pthread_create(&wt[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(pthread_join(wt[i], NULL), 0);
        if (!shared) {
            xs_log_destroy(w[i].log);
        }
    }
    xs_log_destroy(one);
    close(fds[1]);
    assert_int_equal(pthread_join(rt, NULL), 0);
    close(fds[0]);

    int next[N_THREADS] = {0};
    size_t lines = 0;
    size_t start = 0;
    for (size_t i = 0; i < r.len; i++) {
        if (r.buf[i] != '\n') {
            continue;
        }
        json_t *o = json_loadb(r.buf + start, i - start, 0, NULL);
        if (o == NULL) {
            fail_msg("torn line: %.*s", (int)(i - start), r.buf + start);
        }
        int t = (int)json_integer_value(json_object_get(o, "thread"));
        int seq = (int)json_integer_value(json_object_get(o, "seq"));
        assert_true(t >= 0 && t < N_THREADS);
        assert_int_equal(seq, next[t]);
        next[t]++;
        json_decref(o);
        lines++;
        start = i + 1;
    }
    assert_int_equal(start, r.len);
    assert_int_equal(lines, N_THREADS * N_LINES);
    free(r.buf);
}

static void test_concurrent_shared_log(void **state)
{
    (void)state;
    run_concurrent(true);
}

static void test_concurrent_logs_one_fd(void **state)
{
    (void)state;
    run_concurrent(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_enabled),
        cmocka_unit_test_setup_teardown(test_line_fields, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_no_fields_and_levels, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_filtering, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_redaction, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_redaction_nested, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_bad_format, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_fixed_fields_win, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_escaping, cap_setup, cap_teardown),
        cmocka_unit_test_setup_teardown(test_long_line, cap_setup, cap_teardown),
        cmocka_unit_test(test_null_log),
        cmocka_unit_test(test_write_failure_is_silent),
        cmocka_unit_test(test_one_write_per_line),
        cmocka_unit_test(test_concurrent_shared_log),
        cmocka_unit_test(test_concurrent_logs_one_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
