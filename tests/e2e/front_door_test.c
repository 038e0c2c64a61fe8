/*
 * front_door_test.c: the orchestrator's HTTP front door under abuse, with its default limits
 * unless a test says otherwise.
 *
 * - A thousand idle connections from one address (127.0.0.2; every address of 127/8 is this
 *   machine), some of them sending half a request: /health and an authorised REST call from
 *   127.0.0.1 still answer at once, the per-address limit closes the attacker's surplus as
 *   soon as it is accepted, and the connections it held are closed at the header deadline.
 * - A thousand idle connections from twenty addresses, each under the per-address limit: all
 *   are held, and /health and the REST API still answer at once.
 * - A request whose head or body trickles in is cut at its deadline although bytes keep
 *   coming (so no idle timeout would ever fire); a handler that runs longer than both is not;
 *   a kept-alive connection left idle is closed at the header deadline.
 * - Header values with a NUL (which the HTTP library would cut the value at) or a control
 *   character are refused with 400; an API key counts only whole.
 * - The dashboard's files (/ui/) are served without a key but hold no data: the routes behind
 *   them still want the key, and no other origin is let in (no CORS), nor may a page frame
 *   them; each file comes with its media type, ETag and the headers that keep it to itself.
 *   The dashboard in a real browser is tests/e2e/ui_test.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

/* XS_HTTP_MAX_CONNECTIONS_PER_IP's default, and XS_HTTP_HEADER_TIMEOUT's. */
#define PER_IP         64
#define HEADER_TIMEOUT 10000
/* What "at once" means for a reply while the flood is held. */
#define PROMPT_MS 2000
#define FLOOD     1000

static xst_engine *E;

static int setup(void **state)
{
    (void)state;
    long fds = xst_fd_limit_raise();
    if (fds < 2 * FLOOD + 200) {
        xst_die("this test holds %d connections and may open only %ld descriptors", 2 * FLOOD, fds);
    }
    E = xst_engine_new("front");
    xst_engine_start_orchestrator(E, NULL);
    xst_engine_start_services(E);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return xst_engine_free(E) == 0 ? 0 : -1;
}

/* answers_promptly checks that /health (200: every domain live) and an authorised REST call
 * answer within PROMPT_MS, from 127.0.0.1. */
static void answers_promptly(const char *when)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/health", E->api);
    int64_t t0 = xst_now_ms();
    xst_http h = xst_http_do("GET", url, NULL, NULL, PROMPT_MS);
    int64_t took = xst_now_ms() - t0;
    if (h.status != 200) {
        fprintf(stderr, "%s: /health answered %ld after %lld ms\n", when, h.status,
                (long long)took);
    }
    assert_int_equal(h.status, 200);
    xst_http_free(&h);
    snprintf(url, sizeof(url), "%s/v1/connections", E->api);
    const char *auth[] = {"Authorization: Bearer " XST_API_KEY, NULL};
    t0 = xst_now_ms();
    xst_http r = xst_http_do("GET", url, NULL, auth, PROMPT_MS);
    took = xst_now_ms() - t0;
    if (r.status != 200) {
        fprintf(stderr, "%s: GET /v1/connections answered %ld after %lld ms\n", when, r.status,
                (long long)took);
    }
    assert_int_equal(r.status, 200);
    assert_non_null(json_object_get(r.json, "connections"));
    xst_http_free(&r);
}

/* open_from opens n connections to the API from address from into fds; the first `half` of
 * them send half a request (a request line and one header, never the blank line). */
static void open_from(const char *from, int *fds, int n, int half)
{
    static const char partial[] = "GET /health HTTP/1.1\r\nHost: front\r\n";
    for (int i = 0; i < n; i++) {
        fds[i] = xst_tcp_open(from, E->api_port);
        if (fds[i] < 0) {
            fail_msg("connection %d from %s: %s", i, from, strerror(errno));
        }
        if (i < half) {
            assert_int_equal(send(fds[i], partial, sizeof(partial) - 1, MSG_NOSIGNAL),
                             (ssize_t)(sizeof(partial) - 1));
        }
    }
}

/* count_closed counts the connections of fds the server has closed. */
static int count_closed(const int *fds, int n)
{
    int closed = 0;
    for (int i = 0; i < n; i++) {
        closed += xst_tcp_closed(fds[i], 0);
    }
    return closed;
}

/* close_all closes n connections. */
static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        close(fds[i]);
    }
}

static void test_flood_from_one_address(void **state)
{
    (void)state;
    int *fds = calloc(FLOOD, sizeof(*fds));
    int64_t t0 = xst_now_ms();
    open_from("127.0.0.2", fds, FLOOD, 50);
    answers_promptly("1000 connections from one address");
    /* The surplus over the per-address limit is closed as soon as it is accepted. */
    int closed = count_closed(fds, FLOOD);
    for (int64_t end = xst_now_ms() + 5000; closed < FLOOD - PER_IP && xst_now_ms() < end;) {
        usleep(50000);
        closed = count_closed(fds, FLOOD);
    }
    if (closed != FLOOD - PER_IP) {
        fprintf(stderr, "%d of %d closed, expected %d\n", closed, FLOOD, FLOOD - PER_IP);
    }
    assert_int_equal(closed, FLOOD - PER_IP);
    answers_promptly("the limit's worth of connections held");
    /* Those held, idle or half sent, are closed at the header deadline. */
    while (closed < FLOOD && xst_now_ms() < t0 + HEADER_TIMEOUT + 5000) {
        usleep(100000);
        closed = count_closed(fds, FLOOD);
    }
    int64_t took = xst_now_ms() - t0;
    assert_int_equal(closed, FLOOD);
    assert_true(took >= HEADER_TIMEOUT - 500);
    answers_promptly("after the deadline");
    close_all(fds, FLOOD);
    free(fds);
}

static void test_flood_from_many_addresses(void **state)
{
    (void)state;
    enum { ADDRS = 20, EACH = FLOOD / ADDRS };
    int *fds = calloc(FLOOD, sizeof(*fds));
    for (int a = 0; a < ADDRS; a++) {
        char from[32];
        snprintf(from, sizeof(from), "127.0.0.%d", 10 + a);
        open_from(from, fds + a * EACH, EACH, 2);
    }
    usleep(500000); /* every connection accepted */
    answers_promptly("1000 connections from 20 addresses");
    /* All are held: under every limit, none is refused. */
    assert_int_equal(count_closed(fds, FLOOD), 0);
    answers_promptly("1000 connections held");
    close_all(fds, FLOOD);
    free(fds);
}

/* trickle sends text on fd one byte every `every` ms, until the server closes the
 * connection or the text ends; returns how long after `from` the server closed it (-1 when
 * it did not). */
static int64_t trickle(int fd, const char *text, long every, int64_t from)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (send(fd, p, 1, MSG_NOSIGNAL) != 1 || xst_tcp_closed(fd, every)) {
            return xst_now_ms() - from;
        }
    }
    return xst_tcp_closed(fd, 5000) ? xst_now_ms() - from : -1;
}

static void test_slow_requests_cut_at_their_deadlines(void **state)
{
    (void)state;
    /* Short deadlines, and an idle timeout that a trickle never meets. */
    assert_int_equal(xst_stop(E->orch, 10000), 0);
    xst_proc_free(E->orch);
    E->orch = NULL;
    char *short_deadlines[] = {"XS_HTTP_HEADER_TIMEOUT=2s", "XS_HTTP_BODY_TIMEOUT=2s",
                               "XS_HTTP_IDLE_TIMEOUT=30s", NULL};
    xst_engine_start_orchestrator(E, short_deadlines);
    assert_true(xst_engine_wait_live(E, "contacts", 1, 20000));
    assert_true(xst_engine_wait_live(E, "auth", 1, 20000));

    /* Headers, a byte every 100 ms: cut at 2 s although bytes keep coming. */
    char head[400] = "GET /health HTTP/1.1\r\nHost: front\r\nX-Slow: ";
    memset(head + strlen(head), 'a', 300);
    int fd = xst_tcp_open("127.0.0.3", E->api_port);
    assert_true(fd >= 0);
    int64_t cut = trickle(fd, head, 100, xst_now_ms());
    close(fd);
    fprintf(stderr, "trickled headers cut after %lld ms\n", (long long)cut);
    assert_true(cut >= 1800 && cut <= 3500);

    /* A body, a byte every 100 ms after whole headers: cut 2 s after them. */
    char req[300];
    snprintf(req, sizeof(req),
             "POST /v1/system/ping HTTP/1.1\r\nHost: front\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n",
             XST_API_KEY);
    fd = xst_tcp_open("127.0.0.3", E->api_port);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    char body[201];
    memset(body, ' ', 200);
    body[200] = '\0';
    cut = trickle(fd, body, 100, xst_now_ms());
    close(fd);
    fprintf(stderr, "trickled body cut after %lld ms\n", (long long)cut);
    assert_true(cut >= 1800 && cut <= 3500);

    /* A handler may take longer than both deadlines. */
    xst_http r = xst_engine_api(E, "POST", "/v1/system/ping",
                                "{\"domain\":\"contacts\",\"count\":1,\"delay_ms\":3000}");
    assert_int_equal(r.status, 200);
    assert_int_equal(json_integer_value(json_object_get(r.json, "answered")), 1);
    xst_http_free(&r);

    /* A kept-alive connection left idle after its reply is closed at the header deadline. */
    static const char one[] = "GET /health HTTP/1.1\r\nHost: front\r\n\r\n";
    fd = xst_tcp_open("127.0.0.3", E->api_port);
    assert_true(fd >= 0);
    assert_int_equal(send(fd, one, sizeof(one) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(one) - 1));
    char buf[4096];
    assert_true(recv(fd, buf, sizeof(buf), 0) > 0); /* the reply */
    int64_t t0 = xst_now_ms();
    assert_false(xst_tcp_closed(fd, 1000));
    assert_true(xst_tcp_closed(fd, 4000));
    int64_t idle = xst_now_ms() - t0;
    close(fd);
    assert_true(idle >= 1500 && idle <= 3500);
    answers_promptly("after the slow requests");
}

/* raw_get sends a GET of path with extra header lines (len bytes, which may hold a NUL, each
 * line ending in CR LF) and returns the reply (new). */
static xst_http raw_get(const char *path, const char *extra, size_t extra_len)
{
    char req[1024];
    int n =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: front\r\nConnection: close\r\n", path);
    memcpy(req + n, extra, extra_len);
    n += (int)extra_len;
    memcpy(req + n, "\r\n", 2);
    return xst_raw_http(E->api_port, req, (size_t)n + 2, 5000);
}

/* RAW_GET is raw_get with the extra lines a string literal, NULs and all. */
#define RAW_GET(path, lit) raw_get(path, lit, sizeof(lit) - 1)

/* KEY_LINE is the Authorization header with the API key, without its line end. */
#define KEY_LINE "Authorization: Bearer " XST_API_KEY

/* expect_refused checks a reply is 400 bad_request naming what it refused. */
static void expect_refused(xst_http *r, const char *what)
{
    assert_true(xst_http_error_is(r, 400, "bad_request", what));
    xst_http_free(r);
}

static void test_header_values_with_nul_or_controls(void **state)
{
    (void)state;
    /* The whole key, raw: 200 (the requests below differ only in what they add). */
    xst_http r = RAW_GET("/v1/connections", KEY_LINE "\r\n");
    assert_int_equal(r.status, 200);
    xst_http_free(&r);

    /* The key, a NUL, more: once read as the key alone, now refused; also as the last header
     * (the end of the head is checked too), and with the NUL right before the line's end. */
    r = RAW_GET("/v1/connections", KEY_LINE "\0anything\r\nX-After: 1\r\n");
    expect_refused(&r, "NUL byte in request header Authorization");
    r = RAW_GET("/v1/connections", KEY_LINE "\0anything\r\n");
    expect_refused(&r, "NUL byte in request header Authorization");
    r = RAW_GET("/v1/connections", KEY_LINE "\0\r\n");
    expect_refused(&r, "NUL byte");

    /* Control characters, in the key's value and in any other header; in a header name. */
    r = RAW_GET("/v1/connections", KEY_LINE "\x01\r\n");
    expect_refused(&r, "control character in request header Authorization");
    r = RAW_GET("/health", "X-Trace: a\x1b[2Jb\r\n");
    expect_refused(&r, "control character in request header X-Trace");
    r = RAW_GET("/health", "X-Trace: a\rb\r\n");
    expect_refused(&r, "control character");
    r = RAW_GET("/health", "X-Tr\x02"
                           "ce: ab\r\n");
    expect_refused(&r, "control character in a request header name");

    /* A tab is no control character in a value. */
    r = RAW_GET("/health", "X-Trace: a\tb\r\n");
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
}

static void test_api_key_counts_only_whole(void **state)
{
    (void)state;
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/connections", E->api);
    static const char *const wrong[] = {
        "Authorization: Bearer " XST_API_KEY "x",     /* the key and more */
        "Authorization: Bearer test-api-key-0123456", /* a prefix of it */
        "Authorization: Bearer x" XST_API_KEY,        /* more, then the key */
        "Authorization: Bearer",                      /* none */
    };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        const char *h[] = {wrong[i], NULL};
        xst_http r = xst_http_do("GET", url, NULL, h, 5000);
        if (r.status != 401) {
            fprintf(stderr, "%s: %ld\n", wrong[i], r.status);
        }
        assert_int_equal(r.status, 401);
        xst_http_free(&r);
    }
    /* The scheme's name is case-insensitive; the key is not. */
    static const char *const right[] = {"Authorization: Bearer " XST_API_KEY,
                                        "Authorization: bearer " XST_API_KEY,
                                        "Authorization: BEARER " XST_API_KEY};
    for (size_t i = 0; i < sizeof(right) / sizeof(right[0]); i++) {
        const char *h[] = {right[i], NULL};
        xst_http r = xst_http_do("GET", url, NULL, h, 5000);
        assert_int_equal(r.status, 200);
        xst_http_free(&r);
    }
    const char *upper[] = {"Authorization: Bearer TEST-API-KEY-0123456789ABCDEF", NULL};
    xst_http r = xst_http_do("GET", url, NULL, upper, 5000);
    assert_int_equal(r.status, 401);
    xst_http_free(&r);
}

/* get fetches path (with extra headers, NULL-terminated, may be NULL) without an API key. */
static xst_http get(const char *path, const char *const *headers)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", E->api, path);
    return xst_http_do("GET", url, NULL, headers, 5000);
}

/* expect_header checks that reply r has header name holding `has`. */
static void expect_header(const xst_http *r, const char *name, const char *has)
{
    char v[1024];
    if (xst_http_header(r, name, v, sizeof(v)) == NULL || strstr(v, has) == NULL) {
        fail_msg("header %s: want \"%s\" in it, got %s", name, has,
                 xst_http_header(r, name, v, sizeof(v)) != NULL ? v : "none");
    }
}

static void test_dashboard_files(void **state)
{
    (void)state;
    /* /ui goes to /ui/, whose relative links then resolve under it. */
    xst_http r = get("/ui", NULL);
    assert_int_equal(r.status, 308);
    assert_non_null(r.location);
    assert_non_null(strstr(r.location, "/ui/"));
    xst_http_free(&r);

    static const struct {
        const char *path, *ctype, *has;
    } files[] = {
        {"/ui/", "text/html; charset=utf-8", "<script type=\"module\" src=\"app.js\">"},
        {"/ui/index.html", "text/html; charset=utf-8", "<main id=\"main\""},
        {"/ui/app.js", "text/javascript; charset=utf-8", "import "},
        {"/ui/api.js", "text/javascript; charset=utf-8", "sessionStorage"},
        {"/ui/app.css", "text/css; charset=utf-8", ":root"},
        {"/ui/icon.svg", "image/svg+xml", "<svg"},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        r = get(files[i].path, NULL);
        if (r.status != 200 || strstr(r.body, files[i].has) == NULL) {
            fail_msg("%s: %ld %.200s", files[i].path, r.status, r.body);
        }
        assert_string_equal(r.content_type, files[i].ctype);
        expect_header(&r, "Content-Security-Policy", "script-src 'self'");
        expect_header(&r, "Content-Security-Policy", "frame-ancestors 'none'");
        expect_header(&r, "Content-Security-Policy", "connect-src 'self'");
        expect_header(&r, "X-Frame-Options", "DENY");
        expect_header(&r, "X-Content-Type-Options", "nosniff");
        expect_header(&r, "Referrer-Policy", "no-referrer");
        expect_header(&r, "Cache-Control", "no-cache");
        char etag[128], inm[160];
        assert_non_null(xst_http_header(&r, "ETag", etag, sizeof(etag)));
        assert_true(etag[0] == '"');
        xst_http_free(&r);
        /* The browser's copy is current: 304, no body. Another tag: the file again. */
        snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
        const char *cur[] = {inm, NULL};
        r = get(files[i].path, cur);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.len, 0);
        xst_http_free(&r);
        const char *old[] = {"If-None-Match: \"0123\"", NULL};
        r = get(files[i].path, old);
        assert_int_equal(r.status, 200);
        xst_http_free(&r);
    }
    /* Only the dashboard's own files: nothing else of the disk, under any spelling. */
    static const char *const missing[] = {"/ui/nope.js", "/ui/../README.md",
                                          "/ui/%2e%2e/etc/passwd", "/ui/ui/app.js", "/ui/APP.JS"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        r = get(missing[i], NULL);
        /* 400: the server refuses a dot segment before any route (docs/API.md). */
        if (r.status != 404 && !xst_http_error_is(&r, 400, "bad_request", "dot segment")) {
            fail_msg("%s: %ld %.200s", missing[i], r.status, r.body);
        }
        xst_http_free(&r);
    }

    /* The page holds no data: what it shows comes from routes that want the key, and another
     * origin is never allowed to read them (no CORS headers, no preflight). */
    const char *evil[] = {"Origin: http://evil.example", NULL};
    r = get("/v1/connections", evil);
    assert_int_equal(r.status, 401);
    char v[256];
    assert_null(xst_http_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
    xst_http_free(&r);
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/connections", E->api);
    const char *pre[] = {"Origin: http://evil.example", "Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: authorization", NULL};
    r = xst_http_do("OPTIONS", url, NULL, pre, 5000);
    assert_true(r.status >= 400);
    assert_null(xst_http_header(&r, "Access-Control-Allow-Origin", v, sizeof(v)));
    assert_null(xst_http_header(&r, "Access-Control-Allow-Headers", v, sizeof(v)));
    xst_http_free(&r);
}

int main(void)
{
    if (getenv("XST_ONLY") != NULL) {
        cmocka_set_test_filter(getenv("XST_ONLY")); /* one test, by name (a glob) */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flood_from_one_address),
        cmocka_unit_test(test_flood_from_many_addresses),
        cmocka_unit_test(test_header_values_with_nul_or_controls),
        cmocka_unit_test(test_api_key_counts_only_whole),
        cmocka_unit_test(test_dashboard_files),
        cmocka_unit_test(test_slow_requests_cut_at_their_deadlines),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
