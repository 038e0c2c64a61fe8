/* http_test.c: tests of the HTTP server, with libcurl as the client. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "xs/clock.h"
#include "xs/http.h"
#include "xs/json.h"

#define ROUTE_PRIVATE 0x1u
#define MAX_BODY      4096

/* ---------------------------------------------------------------------------------------- */
/* handlers */

/* What the handlers share with the test. */
typedef struct world {
    atomic_int slow_running;
    atomic_bool release; /* lets /v1/block return */
    atomic_int handled;
} world;

static void h_run(xs_http_req *req, void *arg)
{
    (void)arg;
    xs_http_reply_json(req, 200,
                       json_pack("{s:s, s:s, s:s}", "id", xs_http_req_param(req, "id"), "path",
                                 xs_http_req_path(req), "method", xs_http_req_method(req)));
}

static void h_echo(xs_http_req *req, void *arg)
{
    (void)arg;
    size_t len;
    const char *body = xs_http_req_body(req, &len);
    char n[32];
    snprintf(n, sizeof(n), "%zu", len);
    xs_http_add_header(req, "X-Body-Len", n);
    /* The body is NUL-terminated beyond its length. */
    xs_http_add_header(req, "X-Terminated", body[len] == '\0' ? "yes" : "no");
    xs_http_reply(req, 200, "application/octet-stream", body, len);
}

static void h_files(xs_http_req *req, void *arg)
{
    (void)arg;
    const char *rest = xs_http_req_param(req, "*");
    xs_http_reply(req, 200, "text/plain", rest, strlen(rest));
}

static void h_query(xs_http_req *req, void *arg)
{
    (void)arg;
    static const char *const keys[] = {"a", "b", "flag", "c", "d", "k x", "plus", "missing"};
    json_t *o = json_object();
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = xs_http_req_query(req, keys[i]);
        json_object_set_new(o, keys[i], v != NULL ? json_string(v) : json_null());
    }
    xs_http_reply_json(req, 200, o);
}

static void h_headers(xs_http_req *req, void *arg)
{
    (void)arg;
    const char *a = xs_http_req_header(req, "x-custom");
    const char *b = xs_http_req_header(req, "X-CUSTOM");
    const char *c = xs_http_req_header(req, "X-Absent");
    xs_http_reply_json(req, 200,
                       json_pack("{s:s?, s:s?, s:s?}", "lower", a, "upper", b, "absent", c));
}

static void h_json_echo(xs_http_req *req, void *arg)
{
    (void)arg;
    json_t *v;
    if (xs_http_req_json(req, &v) != XS_OK) {
        return;
    }
    xs_http_reply_json(req, 201, v);
}

static void h_private(xs_http_req *req, void *arg)
{
    (void)arg;
    xs_http_reply(req, 200, "text/plain", "secret stuff", 12);
}

static void h_noreply(xs_http_req *req, void *arg)
{
    (void)req;
    (void)arg;
}

static void h_drop(xs_http_req *req, void *arg)
{
    (void)arg;
    xs_http_reply_drop(req, false);
}

static void h_reset(xs_http_req *req, void *arg)
{
    (void)arg;
    xs_http_reply_drop(req, true);
}

static void h_truncated(xs_http_req *req, void *arg)
{
    (void)arg;
    char body[10000];
    memset(body, 'T', sizeof(body));
    xs_http_reply_truncated(req, 200, "text/plain", body, sizeof(body), 100);
}

static void h_slow(xs_http_req *req, void *arg)
{
    world *w = arg;
    atomic_fetch_add(&w->slow_running, 1);
    const char *ms = xs_http_req_query(req, "ms");
    xs_clock_sleep_ms(ms != NULL ? atoi(ms) : 200);
    atomic_fetch_add(&w->handled, 1);
    xs_http_reply(req, 200, "text/plain", "slept", 5);
    atomic_fetch_sub(&w->slow_running, 1);
}

static void h_block(xs_http_req *req, void *arg)
{
    world *w = arg;
    atomic_fetch_add(&w->slow_running, 1);
    int64_t end = xs_clock_mono_ms() + 10000;
    while (!atomic_load(&w->release) && xs_clock_mono_ms() < end) {
        xs_clock_sleep_ms(5);
    }
    xs_http_reply(req, 200, "text/plain", "released", 8);
    atomic_fetch_sub(&w->slow_running, 1);
}

static void h_double(xs_http_req *req, void *arg)
{
    (void)arg;
    xs_http_reply(req, 202, "text/plain", "first", 5);
    xs_http_reply(req, 200, "text/plain", "second", 6);
    xs_http_reply_drop(req, true);
}

static void h_headers_out(xs_http_req *req, void *arg)
{
    (void)arg;
    xs_http_add_header(req, "X-Good", "yes");
    xs_http_add_header(req, "X-Evil", "a\r\nInjected: 1");
    xs_http_add_header(req, "Bad Name", "x");
    xs_http_reply(req, 200, NULL, NULL, 0);
}

static void h_any(xs_http_req *req, void *arg)
{
    (void)arg;
    const char *m = xs_http_req_method(req);
    xs_http_reply(req, 200, "text/plain", m, strlen(m));
}

static void h_root(xs_http_req *req, void *arg)
{
    (void)arg;
    xs_http_reply_error(req, 418, "teapot", "pot", "short and %s", "stout");
}

static void h_bad_utf8(xs_http_req *req, void *arg)
{
    (void)arg;
    xs_http_reply_error(req, 422, "invalid", "name", "bad name \"%s\"", "caf\xe9");
}

static bool before(xs_http_req *req, const xs_http_route *route, void *arg)
{
    (void)arg;
    if ((route->flags & ROUTE_PRIVATE) == 0) {
        return true;
    }
    const char *auth = xs_http_req_header(req, "Authorization");
    if (auth != NULL && strcmp(auth, "Bearer good") == 0) {
        return true;
    }
    if (auth != NULL && strcmp(auth, "Bearer silent") == 0) {
        return false; /* refuses without replying: the client gets 500 */
    }
    xs_http_reply_error(req, 401, "unauthorised", NULL, "who are you?");
    return false;
}

static const xs_http_route routes[] = {
    {"GET", "/", h_root, 0},
    {"GET", "/v1/runs/{id}", h_run, 0},
    {"PUT", "/v1/runs/{id}", h_run, 0},
    {"GET", "/v1/runs/{id}/steps/{step}", h_run, 0},
    {"POST", "/v1/echo", h_echo, 0},
    {"GET", "/v1/files/*", h_files, 0},
    {"GET", "/v1/query", h_query, 0},
    {"GET", "/v1/headers", h_headers, 0},
    {"POST", "/v1/json", h_json_echo, 0},
    {"GET", "/v1/private", h_private, ROUTE_PRIVATE},
    {"GET", "/v1/noreply", h_noreply, 0},
    {"GET", "/v1/drop", h_drop, 0},
    {"GET", "/v1/reset", h_reset, 0},
    {"GET", "/v1/truncated", h_truncated, 0},
    {"GET", "/v1/slow", h_slow, 0},
    {"GET", "/v1/block", h_block, 0},
    {"GET", "/v1/double", h_double, 0},
    {"GET", "/v1/headers-out", h_headers_out, 0},
    {"*", "/v1/any", h_any, 0},
    {"GET", "/v1/bad-utf8", h_bad_utf8, 0},
};

/* ---------------------------------------------------------------------------------------- */
/* fixture */

typedef struct fixture {
    world w;
    xs_http_server *srv;
    uint16_t port;
    FILE *logf;
    xs_log *log;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    f->logf = tmpfile();
    if (f->logf == NULL ||
        xs_log_create(&f->log, "http_test", XS_LOG_DEBUG, fileno(f->logf)) != XS_OK) {
        return -1;
    }
    xs_http_opts o = {
        .max_body = MAX_BODY,
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .before = before,
        .arg = &f->w,
        .log = f->log,
        .idle_timeout_ms = 10000,
    };
    if (xs_http_server_create(&f->srv, &o) != XS_OK) {
        return -1;
    }
    f->port = xs_http_server_port(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    xs_http_server_destroy(f->srv);
    xs_log_destroy(f->log);
    fclose(f->logf);
    free(f);
    return 0;
}

/* log_has tells whether anything logged so far into lf contains needle. */
static bool log_has(FILE *lf, const char *needle)
{
    fflush(lf);
    rewind(lf);
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof(line), lf) != NULL) {
        found = strstr(line, needle) != NULL;
    }
    fseek(lf, 0, SEEK_END);
    return found;
}

/* log_open makes a debug log into a new temporary file (*lf); log_close frees both. */
static xs_log *log_open(FILE **lf)
{
    xs_log *log = NULL;
    *lf = tmpfile();
    assert_non_null(*lf);
    assert_int_equal(xs_log_create(&log, "http_test", XS_LOG_DEBUG, fileno(*lf)), XS_OK);
    return log;
}

static void log_close(xs_log *log, FILE *lf)
{
    xs_log_destroy(log);
    fclose(lf);
}

/* ---------------------------------------------------------------------------------------- */
/* the client */

typedef struct resp {
    CURLcode rc;
    long status;
    char *body;
    size_t len;
    char headers[8192];
    size_t hlen;
} resp;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    resp *r = ud;
    size_t add = size * n;
    char *b = realloc(r->body, r->len + add + 1);
    if (b == NULL) {
        return 0;
    }
    memcpy(b + r->len, p, add);
    r->body = b;
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    resp *r = ud;
    size_t add = size * n;
    if (r->hlen + add < sizeof(r->headers)) {
        memcpy(r->headers + r->hlen, p, add);
        r->hlen += add;
        r->headers[r->hlen] = '\0';
    }
    return add;
}

/* resp_header finds a response header (case-insensitive name) and copies its value. */
static bool resp_header(const resp *r, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    for (const char *line = r->headers; *line != '\0';) {
        const char *eol = strstr(line, "\r\n");
        size_t n = eol != NULL ? (size_t)(eol - line) : strlen(line);
        if (n > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') {
                v++;
            }
            snprintf(out, size, "%.*s", (int)(n - (size_t)(v - line)), v);
            return true;
        }
        line += n;
        if (*line != '\0') {
            line += 2;
        }
    }
    return false;
}

typedef struct chunked_src {
    size_t left;
} chunked_src;

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    chunked_src *s = ud;
    size_t k = size * n < s->left ? size * n : s->left;
    if (k > 1000) {
        k = 1000;
    }
    memset(buf, 'c', k);
    s->left -= k;
    return k;
}

typedef struct call {
    const char *method;
    const char *target;
    const void *body;
    size_t len;
    const char *headers[4];
    bool chunked; /* send `len` bytes chunked instead of body */
    long timeout_ms;
} call;

/* do_call runs one request against the server on port and fills r (free r->body). */
static void do_call(uint16_t port, const call *c, resp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *h = curl_easy_init();
    if (h == NULL) {
        r->rc = CURLE_FAILED_INIT; /* no cmocka assert here: client threads call this too */
        return;
    }
    char url[65536];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, c->target);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms > 0 ? c->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    struct curl_slist *hl = NULL;
    for (size_t i = 0; i < 4 && c->headers[i] != NULL; i++) {
        hl = curl_slist_append(hl, c->headers[i]);
    }
    chunked_src src = {c->len};
    if (c->chunked) {
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
    } else if (c->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->len);
    }
    if (strcmp(c->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(c->method, "GET") != 0 || c->body != NULL) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
}

/* get_port is do_call for a plain GET to the server on port. */
static void get_port(uint16_t port, const char *target, resp *r)
{
    call c = {.method = "GET", .target = target};
    do_call(port, &c, r);
}

/* get is do_call for a plain GET. */
static void get(fixture *f, const char *target, resp *r)
{
    call c = {.method = "GET", .target = target};
    do_call(f->port, &c, r);
}

/* json_of parses a reply body (exits the test on failure). */
static json_t *json_of(const resp *r)
{
    json_t *v = xs_json_parse(r->body != NULL ? r->body : "", r->len, NULL);
    assert_non_null(v);
    return v;
}

/* error_code checks r is a JSON error and returns its code (static copy). */
static const char *error_code(const resp *r)
{
    static char code[64];
    json_t *v = json_of(r);
    json_t *err = json_object_get(v, "error");
    assert_true(json_is_object(err));
    assert_true(json_is_string(json_object_get(err, "message")));
    snprintf(code, sizeof(code), "%s", json_string_value(json_object_get(err, "code")));
    json_decref(v);
    return code;
}

/* ---------------------------------------------------------------------------------------- */
/* tests */

static void test_routing(void **state)
{
    fixture *f = *state;
    resp r;
    get(f, "/v1/runs/42", &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    json_t *v = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(v, "id")), "42");
    assert_string_equal(json_string_value(json_object_get(v, "path")), "/v1/runs/42");
    assert_string_equal(json_string_value(json_object_get(v, "method")), "GET");
    json_decref(v);
    free(r.body);

    /* Segments are decoded one by one: an escaped slash stays inside its parameter. */
    get(f, "/v1/runs/a%2Fb%20c+d", &r);
    assert_int_equal(r.status, 200);
    v = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(v, "id")), "a/b c+d");
    assert_string_equal(json_string_value(json_object_get(v, "path")), "/v1/runs/a/b c+d");
    json_decref(v);
    free(r.body);

    get(f, "/v1/runs/7/steps/9", &r);
    assert_int_equal(r.status, 200);
    v = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(v, "id")), "7");
    json_decref(v);
    free(r.body);

    /* An empty segment is not a parameter; a trailing slash is another path. */
    static const char *const not_found[] = {"/v1/runs/",   "/v1/runs", "/v1/runs//steps/9",
                                            "/v1/runs/1/", "/v2",      "/v1/runs/1/steps"};
    for (size_t i = 0; i < sizeof(not_found) / sizeof(not_found[0]); i++) {
        get(f, not_found[i], &r);
        if (r.status != 404) {
            fail_msg("%s gave %ld", not_found[i], r.status);
        }
        assert_string_equal(error_code(&r), "not_found");
        free(r.body);
    }

    /* A final "/ *" takes any remainder, even none. */
    static const char *const files[][2] = {{"/v1/files/a/b/c.txt", "a/b/c.txt"},
                                           {"/v1/files/", ""},
                                           {"/v1/files", ""},
                                           {"/v1/files/x%2Fy", "x/y"}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        get(f, files[i][0], &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body != NULL ? r.body : "", files[i][1]);
        free(r.body);
    }

    /* The root, and an error reply with a field. */
    get(f, "/", &r);
    assert_int_equal(r.status, 418);
    v = json_of(&r);
    json_t *err = json_object_get(v, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "teapot");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "short and stout");
    assert_string_equal(json_string_value(json_object_get(err, "field")), "pot");
    json_decref(v);
    char ct[128];
    assert_true(resp_header(&r, "content-type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    free(r.body);

    /* An error message that is not UTF-8 is still sent, made ASCII. */
    get(f, "/v1/bad-utf8", &r);
    assert_int_equal(r.status, 422);
    v = json_of(&r);
    err = json_object_get(v, "error");
    assert_string_equal(json_string_value(json_object_get(err, "message")), "bad name \"caf?\"");
    assert_string_equal(json_string_value(json_object_get(err, "field")), "name");
    json_decref(v);
    free(r.body);

    /* "*" takes any method; HEAD rides on GET routes. */
    call c = {.method = "PATCH", .target = "/v1/any"};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "PATCH");
    free(r.body);
    c = (call){.method = "HEAD", .target = "/v1/runs/5"};
    do_call(f->port, &c, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_null(r.body);
    free(r.body);
}

static void test_method_not_allowed(void **state)
{
    fixture *f = *state;
    resp r;
    call c = {.method = "DELETE", .target = "/v1/runs/1"};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(error_code(&r), "method_not_allowed");
    char allow[128];
    assert_true(resp_header(&r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET, PUT, HEAD");
    free(r.body);

    c = (call){.method = "GET", .target = "/v1/echo"};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 405);
    assert_true(resp_header(&r, "allow", allow, sizeof(allow)));
    assert_string_equal(allow, "POST");
    free(r.body);
}

static void test_body_limits(void **state)
{
    fixture *f = *state;
    resp r;
    char *big = malloc(MAX_BODY * 4);
    memset(big, 'b', MAX_BODY * 4);

    /* Exactly the limit is fine. */
    call c = {.method = "POST", .target = "/v1/echo", .body = big, .len = MAX_BODY};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, MAX_BODY);
    free(r.body);

    /* One byte over, announced by Content-Length: refused before the body is read. */
    c.len = MAX_BODY + 1;
    do_call(f->port, &c, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 413);
    assert_string_equal(error_code(&r), "body_too_large");
    free(r.body);

    /* Chunked, so no length up front: refused once it grows past the limit. */
    c = (call){.method = "POST", .target = "/v1/echo", .len = MAX_BODY * 3, .chunked = true};
    do_call(f->port, &c, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 413);
    assert_string_equal(error_code(&r), "body_too_large");
    free(r.body);

    /* Chunked within the limit arrives whole. */
    c.len = MAX_BODY - 10;
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, MAX_BODY - 10);
    free(r.body);

    /* A 100-continue client never has to send the body at all. */
    c = (call){.method = "POST",
               .target = "/v1/echo",
               .body = big,
               .len = MAX_BODY * 4,
               .headers = {"Expect: 100-continue"}};
    do_call(f->port, &c, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 413);
    free(r.body);
    free(big);

    /* The server is still well after all that. */
    get(f, "/v1/runs/ok", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
}

static void test_body_exact(void **state)
{
    fixture *f = *state;
    unsigned char bin[MAX_BODY];
    for (size_t i = 0; i < sizeof(bin); i++) {
        bin[i] = (unsigned char)((i * 31 + 7) & 0xff); /* includes NULs, CR, LF, 0xff */
    }
    resp r;
    call c = {.method = "POST",
              .target = "/v1/echo",
              .body = bin,
              .len = sizeof(bin),
              .headers = {"Content-Type: application/octet-stream"}};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, sizeof(bin));
    assert_memory_equal(r.body, bin, sizeof(bin));
    char h[32];
    assert_true(resp_header(&r, "X-Body-Len", h, sizeof(h)));
    assert_string_equal(h, "4096");
    assert_true(resp_header(&r, "X-Terminated", h, sizeof(h)));
    assert_string_equal(h, "yes");
    free(r.body);

    /* No body: "" with length 0. */
    c = (call){.method = "POST", .target = "/v1/echo", .body = "", .len = 0};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    assert_true(resp_header(&r, "X-Body-Len", h, sizeof(h)));
    assert_string_equal(h, "0");
    assert_true(resp_header(&r, "X-Terminated", h, sizeof(h)));
    assert_string_equal(h, "yes");
    free(r.body);
}

static void test_query_decoding(void **state)
{
    fixture *f = *state;
    resp r;
    get(f,
        "/v1/query?a=1+2&b=%41%42%2b&flag&a=second&c=%zz%4&d=&k%20x=spaced&plus=%2B"
        "&b=again",
        &r);
    assert_int_equal(r.status, 200);
    json_t *v = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(v, "a")), "1 2"); /* first wins */
    assert_string_equal(json_string_value(json_object_get(v, "b")), "AB+");
    assert_string_equal(json_string_value(json_object_get(v, "flag")), "");
    assert_string_equal(json_string_value(json_object_get(v, "c")), "%zz%4"); /* kept */
    assert_string_equal(json_string_value(json_object_get(v, "d")), "");
    assert_string_equal(json_string_value(json_object_get(v, "k x")), "spaced");
    assert_string_equal(json_string_value(json_object_get(v, "plus")), "+");
    assert_true(json_is_null(json_object_get(v, "missing")));
    json_decref(v);
    free(r.body);

    /* Keys are case-sensitive. */
    get(f, "/v1/query?A=upper", &r);
    v = json_of(&r);
    assert_true(json_is_null(json_object_get(v, "a")));
    json_decref(v);
    free(r.body);
}

static void test_headers(void **state)
{
    fixture *f = *state;
    resp r;
    call c = {.method = "GET", .target = "/v1/headers", .headers = {"x-CuStOm: value 1"}};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 200);
    json_t *v = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(v, "lower")), "value 1");
    assert_string_equal(json_string_value(json_object_get(v, "upper")), "value 1");
    assert_true(json_is_null(json_object_get(v, "absent")));
    json_decref(v);
    free(r.body);

    /* Reply headers: good ones pass, ones that could split the response are refused. */
    get(f, "/v1/headers-out", &r);
    assert_int_equal(r.status, 200);
    char h[64];
    assert_true(resp_header(&r, "X-Good", h, sizeof(h)));
    assert_false(resp_header(&r, "X-Evil", h, sizeof(h)));
    assert_false(resp_header(&r, "Injected", h, sizeof(h)));
    assert_false(resp_header(&r, "Content-Type", h, sizeof(h)));
    assert_true(log_has(f->logf, "\"event\":\"http.bad_header\""));
    free(r.body);
}

static void test_json_exact(void **state)
{
    fixture *f = *state;
    const char *doc = "{\"amount\":12.50,\"tiny\":1e-7,\"n\":42,\"s\":\"x\"}";
    resp r;
    call c = {.method = "POST", .target = "/v1/json", .body = doc, .len = strlen(doc)};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(r.body, "\"amount\":12.50"));
    assert_non_null(strstr(r.body, "\"tiny\":1e-7"));
    assert_non_null(strstr(r.body, "\"n\":42"));
    char ct[64];
    assert_true(resp_header(&r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    free(r.body);

    c = (call){.method = "POST", .target = "/v1/json", .body = "{\"a\":", .len = 5};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r), "bad_json");
    free(r.body);

    c = (call){.method = "POST", .target = "/v1/json", .body = "", .len = 0};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r), "bad_json");
    free(r.body);
}

static void test_before_hook(void **state)
{
    fixture *f = *state;
    resp r;
    get(f, "/v1/private", &r);
    assert_int_equal(r.status, 401);
    assert_string_equal(error_code(&r), "unauthorised");
    free(r.body);

    call c = {.method = "GET", .target = "/v1/private", .headers = {"Authorization: Bearer good"}};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "secret stuff");
    free(r.body);

    c.headers[0] = "Authorization: Bearer silent";
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 500);
    free(r.body);

    /* Public routes pass the hook untouched. */
    get(f, "/v1/runs/1", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
}

static void test_missing_reply(void **state)
{
    fixture *f = *state;
    resp r;
    get(f, "/v1/noreply", &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 500);
    assert_string_equal(error_code(&r), "internal");
    free(r.body);
    assert_true(log_has(f->logf, "\"event\":\"http.no_reply\""));

    /* Only the first reply counts. */
    get(f, "/v1/double", &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "first");
    free(r.body);
    assert_true(log_has(f->logf, "\"event\":\"http.double_reply\""));
}

static void test_drop(void **state)
{
    fixture *f = *state;
    resp r;
    get(f, "/v1/drop", &r);
    assert_int_equal(r.rc, CURLE_GOT_NOTHING);
    free(r.body);
    get(f, "/v1/reset", &r);
    assert_int_equal(r.rc, CURLE_RECV_ERROR);
    free(r.body);
    get(f, "/v1/runs/still-up", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
}

static void test_truncated(void **state)
{
    fixture *f = *state;
    resp r;
    get(f, "/v1/truncated", &r);
    assert_int_equal(r.rc, CURLE_PARTIAL_FILE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 100);
    char h[32];
    assert_true(resp_header(&r, "Content-Length", h, sizeof(h)));
    assert_string_equal(h, "10000");
    free(r.body);
}

static void test_bad_targets(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {
        "/v1/files/../etc/passwd",
        "/v1/files/%2e%2e/x",
        "/v1/files/./x",
        "/v1/files/%2E",
        "/v1/runs/%00",
        "/v1/runs/a%zz",
        "/v1/runs/a%4",
        "/v1/runs/%0a",
        "/v1/query?a=%00",
        "/v1/runs/%7f",
    };
    resp r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        get(f, bad[i], &r);
        if (r.status != 400) {
            fail_msg("%s gave %ld", bad[i], r.status);
        }
        assert_string_equal(error_code(&r), "bad_request");
        free(r.body);
    }

    /* Long targets: ours (JSON) while the request fits the connection's memory (here the
     * client sends at most 64 KiB, which fits), MHD's own reply beyond. */
    enum { HUGE = 120000 };
    char *t = malloc(HUGE);
    memset(t, 'a', HUGE);
    memcpy(t, "/v1/runs/", 9);
    t[9000] = '\0';
    get(f, t, &r);
    assert_int_equal(r.status, 414);
    assert_string_equal(error_code(&r), "uri_too_long");
    free(r.body);
    t[HUGE - 1] = '\0';
    get(f, t, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 414);
    free(r.body);
    free(t);

    /* Large headers: ours (JSON) while they fit the connection's memory; see
     * test_server_error_hook for MHD's own 431 beyond. */
    char *hdr = malloc(HUGE);
    memset(hdr, 'h', HUGE);
    memcpy(hdr, "X-Big: ", 7);
    hdr[HUGE - 1] = '\0';
    call c = {.method = "GET", .target = "/v1/runs/big-header", .headers = {hdr}};
    do_call(f->port, &c, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 431);
    free(r.body);
    free(hdr);
    /* MHD's own replies still get an access line, with MHD's status. */
    int64_t end = xs_clock_mono_ms() + 2000;
    while (!log_has(f->logf, "\"status\":431") && xs_clock_mono_ms() < end) {
        xs_clock_sleep_ms(5);
    }
    assert_true(log_has(f->logf, "\"status\":431"));

    get(f, "/v1/runs/fine", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
}

static void test_access_log(void **state)
{
    fixture *f = *state;
    resp r;
    call c = {.method = "GET",
              .target = "/v1/runs/logme?token=hunter2&x=1",
              .headers = {"Authorization: Bearer sesame", "X-Api-Key: opensesame"}};
    do_call(f->port, &c, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    /* The line is written when MHD completes the request, just after the reply. */
    int64_t end = xs_clock_mono_ms() + 2000;
    while (!log_has(f->logf, "\"path\":\"/v1/runs/logme\"") && xs_clock_mono_ms() < end) {
        xs_clock_sleep_ms(5);
    }
    assert_true(log_has(f->logf, "\"event\":\"http.access\",\"method\":\"GET\",\"path\":\"/v1/runs/"
                                 "logme\",\"status\":200,\"duration_ms\":"));
    assert_true(log_has(f->logf, "\"event\":\"http.listen\""));
    assert_false(log_has(f->logf, "hunter2"));
    assert_false(log_has(f->logf, "sesame"));
    assert_false(log_has(f->logf, "token"));
}

typedef struct client {
    uint16_t port;
    const char *target;
    resp r;
} client;

static void *client_main(void *arg)
{
    client *c = arg;
    call k = {.method = "GET", .target = c->target, .timeout_ms = 20000};
    do_call(c->port, &k, &c->r);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    fixture *f = *state;
    enum { N = 50 };
    client cl[N];
    pthread_t th[N];
    int64_t t0 = xs_clock_mono_ms();
    for (int i = 0; i < N; i++) {
        cl[i] = (client){.port = f->port, .target = "/v1/slow?ms=300"};
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
    }
    int64_t took = xs_clock_mono_ms() - t0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(cl[i].r.rc, CURLE_OK);
        assert_int_equal(cl[i].r.status, 200);
        assert_string_equal(cl[i].r.body, "slept");
        free(cl[i].r.body);
    }
    /* Serially this would take 15 s. */
    assert_true(took < 6000);
}

static void test_blocked_handler_does_not_block_others(void **state)
{
    fixture *f = *state;
    atomic_store(&f->w.release, false);
    client blocked = {.port = f->port, .target = "/v1/block"};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, client_main, &blocked), 0);
    int64_t end = xs_clock_mono_ms() + 5000;
    while (atomic_load(&f->w.slow_running) == 0 && xs_clock_mono_ms() < end) {
        xs_clock_sleep_ms(5);
    }
    assert_int_equal(atomic_load(&f->w.slow_running), 1);
    for (int i = 0; i < 5; i++) {
        resp r;
        get(f, "/v1/runs/meanwhile", &r);
        assert_int_equal(r.status, 200);
        free(r.body);
    }
    assert_int_equal(atomic_load(&f->w.slow_running), 1);
    atomic_store(&f->w.release, true);
    pthread_join(th, NULL);
    assert_int_equal(blocked.r.rc, CURLE_OK);
    assert_string_equal(blocked.r.body, "released");
    free(blocked.r.body);
}

static void test_destroy_in_flight(void **state)
{
    (void)state;
    world w = {0};
    xs_http_opts o = {.routes = routes, .nroutes = sizeof(routes) / sizeof(routes[0]), .arg = &w};
    xs_http_server *srv;
    assert_int_equal(xs_http_server_create(&srv, &o), XS_OK);
    enum { N = 4 };
    client cl[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        cl[i] = (client){.port = xs_http_server_port(srv), .target = "/v1/slow?ms=400"};
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    }
    int64_t end = xs_clock_mono_ms() + 5000;
    while (atomic_load(&w.slow_running) < N && xs_clock_mono_ms() < end) {
        xs_clock_sleep_ms(5);
    }
    assert_int_equal(atomic_load(&w.slow_running), N);
    xs_http_server_destroy(srv);
    /* Destroy waited for the handlers. */
    assert_int_equal(atomic_load(&w.slow_running), 0);
    assert_int_equal(atomic_load(&w.handled), N);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        free(cl[i].r.body);
    }
}

static void test_create_errors(void **state)
{
    (void)state;
    xs_http_server *srv = NULL;
    xs_http_opts o = {.bind_addr = "not-an-address"};
    assert_int_equal(xs_http_server_create(&srv, &o), XS_EINVAL);
    o.bind_addr = "::1";
    assert_int_equal(xs_http_server_create(&srv, &o), XS_EINVAL);
    assert_int_equal(xs_http_server_create(&srv, NULL), XS_EINVAL);
    assert_int_equal(xs_http_server_create(NULL, &o), XS_EINVAL);

    static const char *const bad_patterns[] = {"",          "v1/x",   "/v1//x",  "/v1/*/x",
                                               "/v1/x*",    "/v1/{}", "/v1/{id", "/v1/{a}b}",
                                               "/v1/{a{b}", "/v1/x/"};
    for (size_t i = 0; i < sizeof(bad_patterns) / sizeof(bad_patterns[0]); i++) {
        xs_http_route r = {"GET", bad_patterns[i], h_root, 0};
        xs_http_opts ro = {.routes = &r, .nroutes = 1};
        if (xs_http_server_create(&srv, &ro) != XS_EINVAL) {
            fail_msg("pattern \"%s\" accepted", bad_patterns[i]);
        }
    }
    xs_http_route nohandler = {"GET", "/x", NULL, 0};
    xs_http_opts ro = {.routes = &nohandler, .nroutes = 1};
    assert_int_equal(xs_http_server_create(&srv, &ro), XS_EINVAL);
    ro = (xs_http_opts){.routes = NULL, .nroutes = 3};
    assert_int_equal(xs_http_server_create(&srv, &ro), XS_EINVAL);
    assert_null(srv);

    /* A port in use: XS_EIO, and MHD's own message goes to our log. */
    FILE *lf;
    xs_log *log = log_open(&lf);
    xs_http_server *a;
    xs_http_opts ok = {.log = log};
    assert_int_equal(xs_http_server_create(&a, &ok), XS_OK);
    assert_true(xs_http_server_port(a) != 0);
    ok.port = xs_http_server_port(a);
    assert_int_equal(xs_http_server_create(&srv, &ok), XS_EIO);
    assert_null(srv);
    assert_true(log_has(lf, "\"event\":\"http.listen_failed\""));
    assert_true(log_has(lf, "\"event\":\"http.mhd\""));

    /* No routes at all: everything is 404; with a fallback, the fallback answers. */
    resp r;
    call c = {.method = "GET", .target = "/anything"};
    do_call(xs_http_server_port(a), &c, &r);
    assert_int_equal(r.status, 404);
    free(r.body);
    xs_http_server_destroy(a);
    log_close(log, lf);
    xs_http_server_destroy(NULL);
    assert_int_equal(xs_http_server_port(NULL), 0);
}

static void h_fallback(xs_http_req *req, void *arg)
{
    (void)arg;
    char text[128];
    snprintf(text, sizeof(text), "fallback %s %s %s", xs_http_req_method(req),
             xs_http_req_path(req), xs_http_req_route(req) == NULL ? "noroute" : "route");
    xs_http_reply(req, 299, "text/plain", text, strlen(text));
}

static void test_fallback(void **state)
{
    (void)state;
    xs_http_route only = {"GET", "/known", h_any, 0};
    xs_http_opts o = {.routes = &only, .nroutes = 1, .fallback = h_fallback};
    xs_http_server *srv;
    assert_int_equal(xs_http_server_create(&srv, &o), XS_OK);
    resp r;
    call c = {.method = "GET", .target = "/unknown/p%41th"};
    do_call(xs_http_server_port(srv), &c, &r);
    assert_int_equal(r.status, 299);
    assert_string_equal(r.body, "fallback GET /unknown/pAth noroute");
    free(r.body);
    c = (call){.method = "POST", .target = "/known", .body = "x", .len = 1};
    do_call(xs_http_server_port(srv), &c, &r);
    assert_int_equal(r.status, 299);
    assert_string_equal(r.body, "fallback POST /known noroute");
    free(r.body);
    xs_http_server_destroy(srv);
}

/* h_refusal answers the server's own refusals for targets under /mine, and leaves the rest to
 * the server's JSON. */
static bool h_refusal(xs_http_req *req, int status, void *arg)
{
    atomic_int *calls = arg;
    atomic_fetch_add(calls, 1);
    const char *raw = xs_http_req_raw_path(req);
    if (strncmp(raw, "/mine", 5) != 0) {
        return false;
    }
    char text[96];
    snprintf(text, sizeof(text), "mine %d %s %.20s", status, xs_http_req_method(req), raw);
    xs_http_add_header(req, "X-Mine", "yes");
    xs_http_reply(req, status, "text/plain", text, strlen(text));
    return true;
}

static void test_server_error_hook(void **state)
{
    (void)state;
    atomic_int calls = 0;
    xs_http_route only = {"*", "/mine/*", h_any, 0};
    xs_http_opts o = {.max_body = MAX_BODY,
                      .routes = &only,
                      .nroutes = 1,
                      .server_error = h_refusal,
                      .arg = &calls};
    xs_http_server *srv;
    assert_int_equal(xs_http_server_create(&srv, &o), XS_OK);
    uint16_t port = xs_http_server_port(srv);
    resp r;
    char h[16];
    char *big = malloc(MAX_BODY * 4);
    memset(big, 'b', MAX_BODY * 4);

    /* a body over max_body, announced */
    call c = {.method = "POST", .target = "/mine/up", .body = big, .len = MAX_BODY + 1};
    do_call(port, &c, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "mine 413 POST /mine/up");
    assert_true(resp_header(&r, "X-Mine", h, sizeof(h)));
    free(r.body);
    /* a body over max_body, chunked: refused at the end, through the hook too */
    c = (call){.method = "POST", .target = "/mine/up", .len = MAX_BODY * 3, .chunked = true};
    do_call(port, &c, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.body, "mine 413 POST /mine/up");
    free(r.body);
    /* a target too long: the hook still sees the raw path */
    char *t = malloc(10000);
    memset(t, 'a', 9999);
    memcpy(t, "/mine/", 6);
    t[9999] = '\0';
    c = (call){.method = "GET", .target = t};
    do_call(port, &c, &r);
    assert_int_equal(r.status, 414);
    assert_string_equal(r.body, "mine 414 GET /mine/aaaaaaaaaaaaaa");
    free(r.body);
    free(t);
    /* a refused target, raw as sent */
    c = (call){.method = "GET", .target = "/mine/%2e%2e/x"};
    do_call(port, &c, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body, "mine 400 GET /mine/%2e%2e/x");
    free(r.body);
    /* headers over 64 KiB */
    enum { BIG_HEADER = 100000, HUGE_HEADER = 300000 };
    char *hdr = malloc(HUGE_HEADER);
    memset(hdr, 'h', HUGE_HEADER);
    memcpy(hdr, "X-Big: ", 7);
    hdr[BIG_HEADER] = '\0';
    c = (call){.method = "GET", .target = "/mine/h", .headers = {hdr}};
    do_call(port, &c, &r);
    assert_int_equal(r.status, 431);
    assert_string_equal(r.body, "mine 431 GET /mine/h");
    free(r.body);
    /* the hook declines elsewhere: the JSON errors */
    c = (call){.method = "GET", .target = "/other", .headers = {hdr}};
    do_call(port, &c, &r);
    assert_int_equal(r.status, 431);
    assert_string_equal(error_code(&r), "headers_too_large");
    free(r.body);
    c = (call){.method = "PUT", .target = "/other", .body = big, .len = MAX_BODY + 1};
    do_call(port, &c, &r);
    assert_int_equal(r.status, 413);
    assert_string_equal(error_code(&r), "body_too_large");
    free(r.body);
    c = (call){.method = "GET", .target = "/other/%00"};
    do_call(port, &c, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(error_code(&r), "bad_request");
    free(r.body);
    int seen = atomic_load(&calls);
    assert_int_equal(seen, 8);
    /* beyond the connection's memory MHD answers itself, without the hook */
    hdr[BIG_HEADER] = 'h';
    hdr[HUGE_HEADER - 1] = '\0';
    c = (call){.method = "GET", .target = "/mine/h", .headers = {hdr}};
    do_call(port, &c, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 431);
    assert_null(strstr(r.body != NULL ? r.body : "", "mine"));
    free(r.body);
    assert_int_equal(atomic_load(&calls), seen);
    /* ordinary requests are untouched */
    get_port(port, "/mine/ok", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "GET");
    free(r.body);
    free(hdr);
    free(big);
    xs_http_server_destroy(srv);
}

/* raw sends a request (a literal, NULs and all; it should ask for Connection: close) to the
 * fixture's server and returns the reply (new). */
#define RAW(f, lit) xst_raw_http((f)->port, lit, sizeof(lit) - 1, 5000)

/* raw_refused checks a raw reply is 400 bad_request with a message holding what. */
static void raw_refused(xst_http *r, const char *what)
{
    assert_true(xst_http_error_is(r, 400, "bad_request", what));
    xst_http_free(r);
}

/* raw_custom checks a raw reply is 200 from /v1/headers with X-Custom read as want. */
static void raw_custom(xst_http *r, const char *want)
{
    if (r->status != 200) {
        fprintf(stderr, "expected 200, got %ld %s\n", r->status, r->body);
    }
    assert_int_equal(r->status, 200);
    assert_string_equal(json_string_value(json_object_get(r->json, "lower")), want);
    xst_http_free(r);
}

#define HEAD "GET /v1/headers HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"

static void test_header_bytes(void **state)
{
    fixture *f = *state;
    /* What passes: spaces around the value, bare LF line ends, an empty value, bytes above
     * ASCII (obs-text), a tab. */
    xst_http r = RAW(f, HEAD "X-Custom:   spaced  \r\n\r\n");
    raw_custom(&r, "spaced  ");
    r = RAW(f, "GET /v1/headers HTTP/1.1\nHost: t\nX-Custom: bare lf\nConnection: close\n\n");
    raw_custom(&r, "bare lf");
    r = RAW(f, HEAD "X-Empty:\r\nX-Custom: after empty\r\n\r\n");
    raw_custom(&r, "after empty");
    r = RAW(f, HEAD "X-Custom: caf\xc3\xa9\tand tab\r\n\r\n");
    raw_custom(&r, "caf\xc3\xa9\tand tab");

    /* A NUL anywhere in a value: in the middle of the head, in its last header, right
     * before the line end; even in a value that is empty up to it. */
    r = RAW(f, HEAD "X-Custom: a\0b\r\nX-Other: 1\r\n\r\n");
    raw_refused(&r, "NUL byte in request header X-Custom");
    r = RAW(f, HEAD "X-Other: 1\r\nX-Custom: a\0b\r\n\r\n");
    raw_refused(&r, "NUL byte in request header X-Custom");
    r = RAW(f, HEAD "X-Custom: a\0\r\nX-Other: 1\r\n\r\n");
    raw_refused(&r, "X-Custom");
    r = RAW(f, HEAD "X-Custom:\0hidden\r\n\r\n");
    raw_refused(&r, "X-Custom");
    /* A folded (obs-fold) line. */
    r = RAW(f, HEAD "X-Custom: a\r\n b\r\nX-Other: 1\r\n\r\n");
    raw_refused(&r, "folded line in request header X-Custom");
    /* Control characters: in a value (a lone CR, ESC, DEL), in a name. */
    r = RAW(f, HEAD "X-Custom: a\rb\r\n\r\n");
    raw_refused(&r, "control character in request header X-Custom");
    r = RAW(f, HEAD "X-Custom: \x1b[31mred\r\n\r\n");
    raw_refused(&r, "control character in request header X-Custom");
    r = RAW(f, HEAD "X-Custom: a\x7f\r\n\r\n");
    raw_refused(&r, "control character in request header X-Custom");
    r = RAW(f, HEAD "X-C\x01ustom: a\r\n\r\n");
    raw_refused(&r, "control character in a request header name");
    /* The server goes on. */
    resp ok;
    get(f, "/v1/runs/fine", &ok);
    assert_int_equal(ok.status, 200);
    free(ok.body);
}

/* closed_count counts the connections of fds the server has closed. */
static int closed_count(const int *fds, int n)
{
    int closed = 0;
    for (int i = 0; i < n; i++) {
        closed += xst_tcp_closed(fds[i], 0);
    }
    return closed;
}

/* wait_closed waits up to ms until at least want of fds are closed; returns how many are. */
static int wait_closed(const int *fds, int n, int want, int64_t ms)
{
    int64_t end = xs_clock_mono_ms() + ms;
    int closed = closed_count(fds, n);
    while (closed < want && xs_clock_mono_ms() < end) {
        xs_clock_sleep_ms(20);
        closed = closed_count(fds, n);
    }
    return closed;
}

static void test_limits_and_deadlines(void **state)
{
    (void)state;
    enum { PER_IP = 4, N = 10, DEADLINE = 600 };
    FILE *lf;
    xs_log *log = log_open(&lf);
    world w = {0};
    xs_http_opts o = {.routes = routes,
                      .nroutes = sizeof(routes) / sizeof(routes[0]),
                      .arg = &w,
                      .log = log,
                      .max_connections_per_ip = PER_IP,
                      .header_timeout_ms = DEADLINE,
                      .body_timeout_ms = DEADLINE,
                      .idle_timeout_ms = 30000};
    xs_http_server *srv;
    assert_int_equal(xs_http_server_create(&srv, &o), XS_OK);
    uint16_t port = xs_http_server_port(srv);

    /* One address's surplus is closed at once; the others' requests go on. */
    int fds[N];
    int64_t t0 = xs_clock_mono_ms();
    for (int i = 0; i < N; i++) {
        fds[i] = xst_tcp_open("127.0.0.2", port);
        assert_true(fds[i] >= 0);
    }
    assert_int_equal(wait_closed(fds, N, N - PER_IP, DEADLINE / 2), N - PER_IP);
    resp r;
    get_port(port, "/v1/runs/meanwhile", &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    /* The ones held, idle, are closed at the header deadline. */
    assert_int_equal(wait_closed(fds, N, N, DEADLINE + 1000), N);
    int64_t took = xs_clock_mono_ms() - t0;
    assert_true(took >= DEADLINE - 50);
    for (int i = 0; i < N; i++) {
        close(fds[i]);
    }

    /* Headers trickling in, a byte every 50 ms: cut at the deadline although bytes come. */
    static const char head[] = "GET /v1/runs/slow HTTP/1.1\r\nHost: t\r\nX-Slow: "
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int fd = xst_tcp_open(NULL, port);
    t0 = xs_clock_mono_ms();
    size_t sent = 0;
    while (sent < sizeof(head) - 1 && !xst_tcp_closed(fd, 50)) {
        send(fd, head + sent++, 1, MSG_NOSIGNAL);
    }
    took = xs_clock_mono_ms() - t0;
    close(fd);
    assert_true(sent < sizeof(head) - 1);
    assert_true(took >= DEADLINE - 50 && took <= DEADLINE + 500);

    /* A body trickling in after whole headers: cut at the body's deadline. */
    static const char post[] = "POST /v1/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n";
    fd = xst_tcp_open(NULL, port);
    assert_int_equal(send(fd, post, sizeof(post) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(post) - 1));
    t0 = xs_clock_mono_ms();
    sent = 0;
    while (sent < 100 && !xst_tcp_closed(fd, 50)) {
        send(fd, "x", 1, MSG_NOSIGNAL);
        sent++;
    }
    took = xs_clock_mono_ms() - t0;
    close(fd);
    assert_true(sent < 100);
    assert_true(took >= DEADLINE - 50 && took <= DEADLINE + 500);

    /* A handler may run past both deadlines: they do not count while it runs. */
    get_port(port, "/v1/slow?ms=1500", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "slept");
    free(r.body);

    xs_http_server_destroy(srv);
    assert_true(log_has(lf, "\"event\":\"http.connections_refused\""));
    assert_true(log_has(lf, "\"event\":\"http.cut\""));
    assert_true(log_has(lf, "\"body_late\":1"));
    log_close(log, lf);
}

static void test_fd_limit(void **state)
{
    (void)state;
    struct rlimit was, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
    low = was;
    low.rlim_cur = 300;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    FILE *lf;
    xs_log *log = log_open(&lf);
    xs_http_opts o = {.log = log};
    xs_http_server *srv;
    assert_int_equal(xs_http_server_create(&srv, &o), XS_OK);
    xs_http_server_destroy(srv);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
    /* 4096 by default, 300 - 64 that fit */
    assert_true(log_has(lf, "\"event\":\"http.fd_limit\",\"max_connections\":4096,"
                            "\"fd_limit\":300,\"using\":236"));
    assert_true(log_has(lf, "\"max_connections\":236"));
    log_close(log, lf);
}

/* test_multipart: a well-formed form parses to its parts; garbage, every truncation of it and
 * every flipped byte of its structure are refused or parsed without a crash. */
static void test_multipart(void **state)
{
    (void)state;
    static const char ct[] = "multipart/form-data; boundary=\"XyZ\"";
    static const char body[] =
        "--XyZ\r\nContent-Disposition: form-data; name=\"organisation_id\"\r\n"
        "\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
        "filename=\"a b.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\0\r\n"
        "x\r\n--XyZ--\r\n";
    size_t blen = sizeof(body) - 1;
    xs_http_part parts[XS_HTTP_PARTS_MAX];
    size_t n = 0;
    char why[256];
    assert_int_equal(xs_http_multipart(ct, body, blen, parts, &n, why), XS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(parts[0].name, "organisation_id");
    assert_null(parts[0].filename);
    assert_int_equal(parts[0].len, 3);
    assert_memory_equal(parts[0].data, "abc", 3);
    assert_string_equal(parts[1].name, "file");
    assert_string_equal(parts[1].filename, "a b.pdf");
    assert_string_equal(parts[1].ctype, "application/pdf");
    assert_int_equal(parts[1].len, 8);
    assert_memory_equal(parts[1].data, "%PDF\0\r\nx", 8);
    xs_http_multipart_free(parts, n);

    static const struct {
        const char *ct, *body;
    } bad[] = {
        {"application/json", "{}"},
        {"multipart/form-data", "--\r\n"},
        {"multipart/form-data; boundary=", "--\r\n"},
        {"multipart/form-data; boundary=\"open", "--open\r\n"},
        {"multipart/form-data; boundary=b", "no boundary here"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: attachment; name=f\r\n\r\nx\r\n--b--"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"f\r\n\r\nx\r\n--b--"},
        {"multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=f\r\n\r\nno end"},
        {"multipart/form-data; boundary=b", "--bX"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        xs_err e = xs_http_multipart(bad[i].ct, bad[i].body, strlen(bad[i].body), parts, &n, why);
        if (e != XS_EPARSE || n != 0 || why[0] == '\0') {
            fail_msg("case %zu parsed (%s)", i, xs_strerror(e));
        }
    }
    /* Every truncation short of the closing boundary is refused. */
    size_t closing = (size_t)((const char *)memmem(body, blen, "--XyZ--", 7) - body);
    for (size_t cut = 0; cut < closing + 7; cut++) {
        char *copy = malloc(cut + 1);
        memcpy(copy, body, cut);
        xs_err e = xs_http_multipart(ct, copy, cut, parts, &n, why);
        free(copy);
        if (e != XS_EPARSE || n != 0) {
            fail_msg("a body cut at %zu parsed", cut);
        }
    }
    /* Flipping any byte never crashes; what parses has at most the parts the body holds. */
    for (size_t i = 0; i < blen; i++) {
        char copy[sizeof(body)];
        memcpy(copy, body, sizeof(body));
        copy[i] ^= 0x5a;
        if (xs_http_multipart(ct, copy, blen, parts, &n, why) == XS_OK) {
            assert_true(n <= 2);
            xs_http_multipart_free(parts, n);
        }
    }
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_before_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocked_handler_does_not_block_others, setup,
                                        teardown),
        cmocka_unit_test(test_destroy_in_flight),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_server_error_hook),
        cmocka_unit_test_setup_teardown(test_header_bytes, setup, teardown),
        cmocka_unit_test(test_limits_and_deadlines),
        cmocka_unit_test(test_fd_limit),
        cmocka_unit_test(test_multipart),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
