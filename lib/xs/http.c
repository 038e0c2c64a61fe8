/*
 * http.c: the HTTP server over libmicrohttpd 0.9.75 (see http.h).
 *
 * Threads. MHD runs one thread for every connection's input and output, over epoll
 * (MHD_USE_EPOLL_INTERNAL_THREAD), so an idle or slow connection costs a descriptor and a
 * little memory, no thread. When a request's head and body are in, the access handler starts
 * a thread for its handler and suspends the connection (MHD_suspend_connection); the thread
 * runs the route, then resumes the connection, and MHD calls the access handler once more,
 * which queues the reply. So a handler may block without holding up other connections. A
 * suspended connection does not time out. xs_http_server_destroy lets no new handler start,
 * waits for those running, then stops MHD (MHD_stop_daemon, which closes every connection).
 *
 * Limits. MHD enforces the connection limits (MHD_OPTION_CONNECTION_LIMIT; at the limit it
 * stops accepting until a connection closes) and the per-address limit
 * (MHD_OPTION_PER_IP_CONNECTION_LIMIT; it accepts the surplus and closes it at once, which
 * it reports as "Server reached connection limit": those messages are counted and logged at
 * most once a second, http.connections_refused). MHD's connection timeout
 * (MHD_OPTION_CONNECTION_TIMEOUT) counts from the last byte read or written, so a client that
 * sends one header byte a second would never meet it. The header and body deadlines are
 * therefore ours: each connection is watched from MHD's start notification to its close
 * notification (watch: its descriptor and its current deadline), and a watchdog thread
 * shuts down, every WATCH_TICK_MS, the socket of a connection whose deadline has passed
 * (shutdown(2), so MHD reads the end of the stream and closes the connection itself; MHD
 * notifies the close before it closes the descriptor, and both sides hold watch_mu, so the
 * watchdog never touches a descriptor that has been reused). The deadline is the headers'
 * (header_timeout_ms) from the start of the connection and from the end of each reply, the
 * body's (body_timeout_ms) once the headers are in, and none while a handler runs or a reply
 * is written (MHD's connection timeout covers a client that stops reading). The cut
 * connections are logged once per sweep (http.cut). At start the process's descriptor limit
 * is checked against max_connections (http.fd_limit).
 *
 * Requests. MHD calls the access handler once when the headers are in, then once per piece
 * of body, then once more with no data. The body is accumulated up to max_body; a request
 * that announces a larger Content-Length gets 413 at once (the body is never read, and MHD
 * closes the connection after the reply; curl, even sending 10 MB without 100-continue,
 * reads the 413). A chunked body that grows past the limit has its buffer freed and the
 * rest read and thrown away, then gets 413 at the end: MHD 0.9.75 refuses to queue a reply
 * while a body is still arriving (MHD_queue_response returns MHD_NO there). Past
 * DISCARD_MAX thrown-away bytes the connection is closed instead. The handler runs on the
 * last call; its reply is queued when it returns.
 *
 * Paths. MHD hands the access handler a path that is already percent-decoded, where "%2F"
 * is indistinguishable from "/" and "%00" cuts the string. Routing therefore uses the raw
 * request target, which MHD gives to the URI log callback: the path is split at its raw
 * slashes and each segment decoded on its own ("%2F" stays inside its segment, "+" stays
 * "+"). Refused with 400 bad_request: a target not starting with "/", a malformed or NUL
 * escape ("%zz", "%00", also anywhere in the query), a control character after decoding,
 * and "." or ".." segments (raw or escaped), so no handler ever sees a traversal. Targets
 * longer than MAX_URI get 414, header blocks larger than MAX_HEADER_BYTES 431. These
 * refusals, and 413, go through the application's server_error hook when it has one.
 * Requests MHD rejects before any of this (a malformed request line, a request line and
 * headers beyond the connection's memory, CONN_MEMORY_LIMIT, which is kept well above both
 * limits so that this is rare) get MHD's own short HTML replies (400, 414, 431), not JSON.
 *
 * Header lines. MHD 0.9 keeps a header value only up to a NUL byte, so "Authorization: Bearer
 * <key>\0anything" would read as "Bearer <key>". Every request's header names and values
 * are checked for control characters (HTAB allowed in values), and, as MHD before 1.0 lets
 * no NUL be seen any other way, for bytes hidden behind a NUL: MHD parses the request head
 * in place in its read buffer, ending each line by overwriting its CR LF (or LF) with NULs,
 * and hands out pointers into that buffer: the head runs from the method the access handler
 * gets for MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE bytes, every header's name lies in it, and
 * the end of one header's value must be followed by one or two NULs and then the next
 * header's name (the last one's by two to four NULs and the end of the head). Any other
 * layout is refused with 400: a NUL inside a value, and obs-fold continuation lines (which
 * MHD copies out of the head; RFC 9112 lets a server refuse them). A single NUL right before
 * a bare LF reads like a CR and passes; it hides nothing. MHD 1.0 refuses NULs in headers
 * itself, and there the check is compiled out.
 *
 * Query strings. They are left to MHD (MHD_GET_ARGUMENT_KIND): keys and values are decoded,
 * "+" becoming a space and "%XX" the byte it names; an escape that is not two hex digits is
 * kept as written. "?flag" has no value and reads as "". When a key repeats, the first
 * occurrence wins. Keys are case-sensitive. (All pinned down by http_test's
 * test_query_decoding.)
 *
 * Logging. One "http.access" line per request at info level: method, raw path (never the
 * query string, never headers: they may carry secrets), status, duration_ms, response body
 * bytes and whether MHD completed it. MHD's own error messages go to the log as
 * "http.mhd" warnings.
 */
#include "xs/http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "xs/buf.h"
#include "xs/clock.h"
#include "xs/crypto.h"
#include "xs/json.h"

#define DEFAULT_MAX_BODY       (1024 * 1024)
#define DEFAULT_MAX_CONN       4096
#define DEFAULT_HEADER_TIMEOUT 10000 /* ms */
#define DEFAULT_BODY_TIMEOUT   60000 /* ms */
#define DEFAULT_IDLE_TIMEOUT   30000 /* ms */
/* Descriptors kept for everything but connections (database, bus, logs, the listener). */
#define FD_RESERVE       64
#define WATCH_TICK_MS    100
#define MAX_URI          8192        /* longest request target we route */
#define MAX_HEADER_BYTES (64 * 1024) /* largest header block we accept ("Name: value\r\n") */
/* request line + headers must fit, per connection; above MAX_URI and MAX_HEADER_BYTES so that
 * our own 414 and 431 (JSON, or the application's) answer all but absurd requests */
#define CONN_MEMORY_LIMIT (256 * 1024)
#define MAX_LOG_PATH      256
#define TRUNCATED_BLOCK   4096
/* Past max_body an oversized body is read and thrown away so the client still gets its
 * 413; beyond this many bytes the connection is closed instead. */
#define DISCARD_MAX ((size_t)64 * 1024 * 1024)

typedef struct kv {
    char *name;
    char *value;
} kv;

/* A connection's deadline, from MHD's start notification to its close notification. */
typedef struct watch {
    struct watch *prev, *next;
    int fd;
    int64_t deadline; /* monotonic ms; 0: none */
    bool body;        /* the deadline is the body's, else the headers' */
} watch;

struct xs_http_server {
    struct MHD_Daemon *daemon;
    uint16_t port;
    size_t max_body;
    int64_t header_ms, body_ms;
    /* handler threads (mu): how many run; none starts once stopping */
    pthread_mutex_t mu;
    pthread_cond_t idle;
    pthread_attr_t detached;
    unsigned handlers;
    bool stopping;
    /* the watchdog (watch_mu): the watched connections and the thread cutting them */
    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;
    watch *watches;
    pthread_t watchdog;
    bool watchdog_started;
    bool watch_stop;
    /* connections MHD refused for a limit, not yet logged (see on_mhd_log) */
    atomic_llong refused;
    atomic_llong refused_logged_ms;
    const xs_http_route *routes;
    size_t nroutes;
    xs_http_handler fallback;
    bool (*before)(xs_http_req *req, const xs_http_route *route, void *arg);
    bool (*server_error)(xs_http_req *req, int status, void *arg);
    void *arg;
    xs_log *log;
};

struct xs_http_req {
    xs_http_server *srv;
    struct MHD_Connection *conn;
    watch *watch; /* the connection's, or NULL */
    int64_t t0;
    bool started;           /* the access handler has seen the request */
    bool handling;          /* a handler thread has it (the connection is suspended) */
    atomic_bool handled;    /* that thread is done: the reply can be queued */
    char method[24];        /* copy, truncated: for the access log after MHD is done */
    const char *mhd_method; /* MHD's, valid while the request is being handled */
    char *raw_path;         /* request target up to '?', as received */
    char *path;             /* decoded */
    char *segbuf;           /* decoded segments, NUL-separated */
    char **segs;
    size_t *seg_off; /* offset of each segment within path */
    size_t nsegs;
    int uri_status;        /* 0, or the status refusing the target (400, 414) */
    const char *uri_error; /* why */
    xs_buf body;
    bool body_too_big;
    size_t discarded; /* body bytes thrown away after body_too_big */
    const xs_http_route *route;
    kv *params;
    size_t nparams;
    kv *headers; /* for the reply */
    size_t nheaders;
    /* the reply */
    bool replied;
    bool drop;
    bool reset;
    int status;
    struct MHD_Response *resp;
    size_t resp_bytes; /* body bytes the reply sends */
    bool queued;
};

/* ---------------------------------------------------------------------------------------- */
/* request targets */

/* decode_segment percent-decodes n bytes at s into out (room for n + 1) and NUL-terminates;
 * false for a malformed escape, a NUL, or a control character. */
static bool decode_segment(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) {
                return false;
            }
            int hi = xs_hex_digit(s[i + 1]), lo = xs_hex_digit(s[i + 2]);
            if (hi < 0 || lo < 0) {
                return false;
            }
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

/* has_nul_escape tells whether s holds "%00". */
static bool has_nul_escape(const char *s)
{
    return strstr(s, "%00") != NULL;
}

/* parse_target splits and decodes the request target into req; on a target it refuses it
 * sets req->uri_status and uri_error. false only when out of memory. */
static bool parse_target(xs_http_req *req, const char *uri)
{
    size_t ulen = strlen(uri);
    const char *q = strchr(uri, '?');
    size_t plen = q != NULL ? (size_t)(q - uri) : ulen;
    req->raw_path = strndup(uri, plen);
    if (req->raw_path == NULL) {
        return false;
    }
    if (ulen > MAX_URI) {
        req->uri_status = 414;
        req->uri_error = "request target too long";
        return true;
    }
    if (plen == 0 || uri[0] != '/') {
        req->uri_status = 400;
        req->uri_error = "request target must be an absolute path";
        return true;
    }
    if (has_nul_escape(uri)) {
        req->uri_status = 400;
        req->uri_error = "NUL byte in request target";
        return true;
    }
    size_t nsegs = 0;
    for (size_t i = 0; i < plen; i++) {
        nsegs += uri[i] == '/';
    }
    if (plen == 1) {
        nsegs = 0; /* "/" has no segments */
    }
    req->path = malloc(plen + 1);
    req->segbuf = malloc(plen + 1);
    req->segs = calloc(nsegs + 1, sizeof(*req->segs));
    req->seg_off = calloc(nsegs + 1, sizeof(*req->seg_off));
    if (req->path == NULL || req->segbuf == NULL || req->segs == NULL || req->seg_off == NULL) {
        return false;
    }
    size_t po = 0, so = 0;
    const char *p = uri + 1;
    const char *end = uri + plen;
    for (size_t k = 0; k < nsegs; k++) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t n = slash != NULL ? (size_t)(slash - p) : (size_t)(end - p);
        char *seg = req->segbuf + so;
        if (!decode_segment(p, n, seg)) {
            req->uri_status = 400;
            req->uri_error = "malformed escape or control character in path";
            return true;
        }
        if (strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0) {
            req->uri_status = 400;
            req->uri_error = "dot segment in path";
            return true;
        }
        size_t dn = strlen(seg);
        req->path[po++] = '/';
        req->seg_off[k] = po;
        memcpy(req->path + po, seg, dn);
        po += dn;
        req->segs[k] = seg;
        so += dn + 1;
        p += n + 1;
    }
    if (nsegs == 0) {
        req->path[po++] = '/';
    }
    req->path[po] = '\0';
    req->seg_off[nsegs] = po;
    req->nsegs = nsegs;
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* routes */

/* pattern_next returns the next segment of a pattern (after a '/') and its length. */
static const char *pattern_next(const char *p, size_t *n)
{
    const char *slash = strchr(p, '/');
    *n = slash != NULL ? (size_t)(slash - p) : strlen(p);
    return p;
}

/* route_valid checks a route's pattern: "/" then segments; "{name}" whole segments; "*"
 * only as the last segment. */
static bool route_valid(const xs_http_route *r)
{
    if (r->method == NULL || r->pattern == NULL || r->handler == NULL || r->pattern[0] != '/') {
        return false;
    }
    if (strcmp(r->pattern, "/") == 0) {
        return true;
    }
    const char *p = r->pattern + 1;
    for (;;) {
        size_t n;
        pattern_next(p, &n);
        bool last = p[n] == '\0';
        if (n == 0) {
            return false;
        }
        if (memchr(p, '*', n) != NULL && !(n == 1 && last)) {
            return false;
        }
        if (p[0] == '{' && (n < 3 || p[n - 1] != '}' || memchr(p + 1, '{', n - 2) != NULL ||
                            memchr(p + 1, '}', n - 2) != NULL)) {
            return false;
        }
        if (last) {
            return true;
        }
        p += n + 1;
    }
}

/* A parameter found by route_match: name points into the pattern (not NUL-terminated),
 * value into the request; both borrowed. */
typedef struct match_param {
    const char *name;
    size_t name_len;
    const char *value;
} match_param;

#define MAX_PARAMS 16

/* route_match tells whether req's path matches pattern, writing the parameters found (at
 * most MAX_PARAMS, "*" for a wildcard's remainder) and their count. */
static bool route_match(const xs_http_req *req, const char *pattern, match_param *params,
                        size_t *nparams)
{
    size_t np = 0;
    size_t k = 0;
    if (strcmp(pattern, "/") == 0) {
        *nparams = 0;
        return req->nsegs == 0;
    }
    const char *p = pattern + 1;
    for (;;) {
        size_t n;
        pattern_next(p, &n);
        bool last = p[n] == '\0';
        if (n == 1 && p[0] == '*') {
            /* The remainder, possibly empty ("/files" and "/files/" match "/files/ *"). */
            if (np < MAX_PARAMS) {
                params[np++] =
                    (match_param){"*", 1, k < req->nsegs ? req->path + req->seg_off[k] : ""};
            }
            *nparams = np;
            return true;
        }
        if (k >= req->nsegs) {
            return false;
        }
        const char *seg = req->segs[k];
        if (p[0] == '{') {
            if (seg[0] == '\0' || np >= MAX_PARAMS) {
                return false;
            }
            params[np++] = (match_param){p + 1, n - 2, seg};
        } else if (strlen(seg) != n || memcmp(seg, p, n) != 0) {
            return false;
        }
        k++;
        if (last) {
            break;
        }
        p += n + 1;
    }
    *nparams = np;
    return k == req->nsegs;
}

/* method_matches tells whether a route's method accepts the request's (HEAD rides on GET). */
static bool method_matches(const char *route_method, const char *method)
{
    return strcmp(route_method, "*") == 0 || strcmp(route_method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* keep_params copies matched parameters into req. */
static bool keep_params(xs_http_req *req, const match_param *mp, size_t n)
{
    if (n == 0) {
        return true;
    }
    req->params = calloc(n, sizeof(*req->params));
    if (req->params == NULL) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        req->params[i].name = strndup(mp[i].name, mp[i].name_len);
        req->params[i].value = strdup(mp[i].value);
        req->nparams = i + 1;
        if (req->params[i].name == NULL || req->params[i].value == NULL) {
            return false;
        }
    }
    return true;
}

/* allow_append adds method to the comma-separated list in buf unless already there. */
static void allow_append(char *buf, size_t size, const char *method)
{
    size_t mlen = strlen(method);
    for (const char *p = buf; *p != '\0';) {
        const char *comma = strstr(p, ", ");
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (n == mlen && memcmp(p, method, n) == 0) {
            return;
        }
        p += n;
        if (*p != '\0') {
            p += 2;
        }
    }
    size_t used = strlen(buf);
    if (used + mlen + 3 > size) {
        return;
    }
    snprintf(buf + used, size - used, "%s%s", used > 0 ? ", " : "", method);
}

/* dispatch finds the route for req and runs it (or the fallback, or a 404/405). */
static void dispatch(xs_http_req *req)
{
    xs_http_server *srv = req->srv;
    char allow[256] = "";
    for (size_t i = 0; i < srv->nroutes; i++) {
        const xs_http_route *r = &srv->routes[i];
        match_param mp[MAX_PARAMS];
        size_t np = 0;
        if (!route_match(req, r->pattern, mp, &np)) {
            continue;
        }
        if (!method_matches(r->method, req->mhd_method)) {
            allow_append(allow, sizeof(allow), r->method);
            continue;
        }
        if (!keep_params(req, mp, np)) {
            xs_http_reply_error(req, 500, "internal", NULL, "out of memory");
            return;
        }
        req->route = r;
        if (srv->before != NULL && !srv->before(req, r, srv->arg)) {
            return;
        }
        r->handler(req, srv->arg);
        return;
    }
    if (srv->fallback != NULL) {
        srv->fallback(req, srv->arg);
        return;
    }
    if (allow[0] != '\0') {
        if (strstr(allow, "GET") != NULL) {
            allow_append(allow, sizeof(allow), "HEAD");
        }
        xs_http_add_header(req, "Allow", allow);
        xs_http_reply_error(req, 405, "method_not_allowed", NULL, "method %s not allowed here",
                            req->method);
        return;
    }
    xs_http_reply_error(req, 404, "not_found", NULL, "no such resource");
}

/* ---------------------------------------------------------------------------------------- */
/* deadlines */

/* watch_set gives w a deadline `after` ms from now (the body's when body, else the
 * headers'), or none when after is 0. w may be NULL. */
static void watch_set(xs_http_server *srv, watch *w, int64_t after, bool body)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->watch_mu);
    w->deadline = after > 0 ? xs_clock_mono_ms() + after : 0;
    w->body = body;
    pthread_mutex_unlock(&srv->watch_mu);
}

/* on_connection is MHD's connection notification: a connection is watched from its start,
 * with the headers' deadline, until its close (MHD notifies that before closing the
 * descriptor). One that cannot be watched is shut down at once rather than left without a
 * deadline. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    xs_http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci == NULL) {
            return;
        }
        watch *w = calloc(1, sizeof(*w));
        if (w == NULL) {
            shutdown(ci->connect_fd, SHUT_RDWR);
            return;
        }
        w->fd = ci->connect_fd;
        pthread_mutex_lock(&srv->watch_mu);
        w->deadline = xs_clock_mono_ms() + srv->header_ms;
        w->next = srv->watches;
        if (w->next != NULL) {
            w->next->prev = w;
        }
        srv->watches = w;
        pthread_mutex_unlock(&srv->watch_mu);
        *socket_context = w;
        return;
    }
    watch *w = *socket_context;
    *socket_context = NULL;
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->watch_mu);
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else {
        srv->watches = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    pthread_mutex_unlock(&srv->watch_mu);
    free(w);
}

/* watchdog_main shuts down, every WATCH_TICK_MS, the connections past their deadline, until
 * watch_stop. */
static void *watchdog_main(void *arg)
{
    xs_http_server *srv = arg;
    pthread_mutex_lock(&srv->watch_mu);
    while (!srv->watch_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += WATCH_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->watch_cv, &srv->watch_mu, &ts);
        int64_t now = xs_clock_mono_ms();
        int heads = 0, bodies = 0;
        for (watch *w = srv->watches; w != NULL; w = w->next) {
            if (w->deadline != 0 && now >= w->deadline) {
                shutdown(w->fd, SHUT_RDWR);
                w->deadline = 0;
                *(w->body ? &bodies : &heads) += 1;
            }
        }
        if (heads + bodies > 0) {
            xs_log_info(srv->log, "http.cut", "{s:i, s:i}", "headers_late", heads, "body_late",
                        bodies);
        }
    }
    pthread_mutex_unlock(&srv->watch_mu);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* MHD callbacks */

/* req_free frees req and everything it owns, including a reply not yet queued; NULL and
 * half-built requests accepted. */
static void req_free(xs_http_req *req)
{
    if (req == NULL) {
        return;
    }
    if (req->resp != NULL) {
        MHD_destroy_response(req->resp);
    }
    for (size_t i = 0; i < req->nparams; i++) {
        free(req->params[i].name);
        free(req->params[i].value);
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->params);
    free(req->headers);
    xs_buf_fini(&req->body);
    free(req->seg_off);
    free(req->segs);
    free(req->segbuf);
    free(req->path);
    free(req->raw_path);
    free(req);
}

/* on_uri is MHD's URI log callback: the first look at a request, with its raw target. The
 * request object made here is freed in on_completed. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    xs_http_req *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        return NULL;
    }
    req->srv = cls;
    req->conn = conn;
    req->t0 = xs_clock_mono_ms();
    xs_buf_init(&req->body, 4096);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    req->watch = ci != NULL ? ci->socket_context : NULL;
    if (!parse_target(req, uri != NULL ? uri : "")) {
        req_free(req);
        return NULL;
    }
    return req;
}

/* log_path writes a printable copy of the raw path, capped, for the access log. */
static void log_path(const xs_http_req *req, char *buf, size_t size)
{
    const char *p = req->raw_path != NULL ? req->raw_path : "";
    size_t n = 0;
    for (; p[n] != '\0' && n + 1 < size; n++) {
        unsigned char c = (unsigned char)p[n];
        buf[n] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    buf[n] = '\0';
}

/* on_completed is MHD's completion callback: it writes the access line and frees the
 * request made in on_uri (taken). Runs for every request on_uri saw, including ones MHD
 * answered itself. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    xs_http_server *srv = cls;
    xs_http_req *req = *con_cls;
    *con_cls = NULL;
    if (req == NULL) {
        return;
    }
    int status = req->status;
    if (!req->queued && !req->drop) {
        /* A request MHD answered itself (e.g. headers too large). */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
        status = ci != NULL ? (int)ci->http_status : 0;
    }
    char path[MAX_LOG_PATH];
    log_path(req, path, sizeof(path));
    xs_log_info(srv->log, "http.access", "{s:s, s:s, s:i, s:I, s:I, s:b}", "method",
                req->method[0] != '\0' ? req->method : "-", "path", path, "status", status,
                "duration_ms", (json_int_t)(xs_clock_mono_ms() - req->t0), "bytes",
                (json_int_t)req->resp_bytes, "completed",
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    /* the next request on this connection has the headers' time from now */
    watch_set(srv, req->watch, srv->header_ms, false);
    req_free(req);
}

/* on_mhd_log routes MHD's error messages to the server's log. A connection refused for a
 * limit is counted instead, and the count logged at most once a second, so a flood of
 * connections does not become a flood of log lines. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    xs_http_server *srv = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (strncmp(msg, "Server reached connection limit", 31) == 0) {
        atomic_fetch_add(&srv->refused, 1);
        long long now = xs_clock_mono_ms(), last = atomic_load(&srv->refused_logged_ms);
        if (now - last >= 1000 &&
            atomic_compare_exchange_strong(&srv->refused_logged_ms, &last, now)) {
            long long n = atomic_exchange(&srv->refused, 0);
            xs_log_warn(srv->log, "http.connections_refused", "{s:I}", "count", (json_int_t)n);
        }
        return;
    }
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
        msg[--n] = '\0';
    }
    /* MHD's messages are plain text; keep them loggable whatever bytes they hold. */
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] >= 0x7f) {
            msg[i] = '?';
        }
    }
    xs_log_warn(srv->log, "http.mhd", "{s:s}", "message", msg);
}

/* set_reset aborts the connection's TCP stream so the peer sees a reset, not a close.
 *
 * SO_LINGER {1, 0} alone is not enough with MHD 0.9.75: on MHD_NO it calls
 * shutdown(SHUT_WR) before close(), so a FIN goes out first and the client reads an orderly
 * end of stream. Linux's connect() with AF_UNSPEC disconnects a TCP socket at once, sending
 * a RST, and leaves the descriptor valid for MHD to shut down and close as usual. The
 * linger setting stays as the fallback should the disconnect fail. */
static void set_reset(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL) {
        return;
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(ci->connect_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    connect(ci->connect_fd, &unspec, sizeof(unspec));
}

/* finish queues req's reply (a 500 when there is none) or drops the connection. */
static enum MHD_Result finish(xs_http_req *req)
{
    if (req->drop) {
        if (req->reset) {
            set_reset(req->conn);
        }
        return MHD_NO;
    }
    if (req->resp == NULL) {
        xs_log_error(req->srv->log, "http.no_reply", "{s:s, s:s}", "method", req->method, "route",
                     req->route != NULL ? req->route->pattern : "-");
        xs_http_reply_error(req, 500, "internal", NULL, "the handler sent no reply");
        if (req->resp == NULL) {
            return MHD_NO; /* out of memory */
        }
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        if (MHD_add_response_header(req->resp, req->headers[i].name, req->headers[i].value) !=
            MHD_YES) {
            xs_log_warn(req->srv->log, "http.bad_header", "{s:s}", "name", req->headers[i].name);
        }
    }
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, req->resp);
    MHD_destroy_response(req->resp);
    req->resp = NULL;
    req->queued = true;
    /* while the reply goes out, only MHD's connection timeout applies */
    watch_set(req->srv, req->watch, 0, false);
    return ret;
}

/* content_length_over tells whether the request announces a body larger than max. */
static bool content_length_over(struct MHD_Connection *conn, size_t max)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl == NULL) {
        return false;
    }
    unsigned long long v = 0;
    for (const char *p = cl; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false; /* MHD itself refuses a malformed length */
        }
        if (v > (unsigned long long)max) {
            return true;
        }
        v = v * 10 + (unsigned long long)(*p - '0');
    }
    return v > (unsigned long long)max;
}

/* add_header_bytes adds one header line's size to the total at cls. */
static enum MHD_Result add_header_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                        size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key;
    (void)value;
    *(size_t *)cls += key_size + value_size + 4; /* "Name: value\r\n" */
    return MHD_YES;
}

/* headers_over tells whether the request's header block is larger than MAX_HEADER_BYTES. */
static bool headers_over(struct MHD_Connection *conn)
{
    size_t total = 0;
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, add_header_bytes, &total);
    return total > MAX_HEADER_BYTES;
}

/* ctl_free tells whether n bytes at s hold no control character (HTAB allowed when tab). */
static bool ctl_free(const char *s, size_t n, bool tab)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(tab && c == '\t')) || c == 0x7f) {
            return false;
        }
    }
    return true;
}

/* nuls_between tells whether the bytes from `from` up to `to` (exclusive) are between min and
 * max NULs and nothing else: the line ends MHD wrote over, with nothing hidden behind a NUL
 * (see the top of this file). The bytes are read only once their span is known to be that
 * short, so a layout other than MHD 0.9's is refused without reading far past it. */
static bool nuls_between(const char *from, const char *to, size_t min, size_t max)
{
    uintptr_t a = (uintptr_t)from, b = (uintptr_t)to;
    if (b < a + min || b > a + max) {
        return false;
    }
    for (size_t i = 0; i < (size_t)(b - a); i++) {
        if (from[i] != '\0') {
            return false;
        }
    }
    return true;
}

typedef struct head_check {
    uintptr_t head, head_end; /* the request head in MHD's read buffer (MHD 0.9) */
    const char *prev;         /* the previous header's name, */
    const char *end;          /* and the end of its value */
    const char *why;          /* the first fault, or NULL */
    const char *name;         /* the header at fault */
} head_check;

/* check_header looks at one header line (see header_fault). */
static enum MHD_Result check_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    head_check *hc = cls;
    if (!ctl_free(key, key_size, false)) {
        hc->why = "control character in a request header name";
        return MHD_NO;
    }
    hc->name = key;
    if (value != NULL && !ctl_free(value, value_size, true)) {
        hc->why = "control character in request header";
        return MHD_NO;
    }
#if MHD_VERSION < 0x01000000
    if ((uintptr_t)key < hc->head || (uintptr_t)key >= hc->head_end) {
        hc->why = "folded line in request header"; /* copied out of the head */
        return MHD_NO;
    }
    if (hc->end != NULL && !nuls_between(hc->end, key, 1, 2)) {
        hc->name = hc->prev; /* whose value hid bytes */
        hc->why = "NUL byte in request header";
        return MHD_NO;
    }
#endif
    hc->prev = key;
    hc->end = value != NULL ? value + value_size : key + key_size;
    return MHD_YES;
}

/* header_fault tells what is wrong with the request's header lines (the name at fault into
 * *name when there is one, borrowed), or NULL: a control character in a name, or in a value
 * (but HTAB), a NUL byte in a value, or a folded line. method is the access handler's (with
 * MHD 0.9, where the request head starts in the read buffer). */
static const char *header_fault(struct MHD_Connection *conn, const char *method, const char **name)
{
    head_check hc = {0, UINTPTR_MAX, NULL, NULL, NULL, NULL};
#if MHD_VERSION < 0x01000000
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (ci == NULL) {
        *name = NULL;
        return "request head unreadable";
    }
    hc.head = (uintptr_t)method;
    hc.head_end = (uintptr_t)method + ci->header_size;
#else
    (void)method;
#endif
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, check_header, &hc);
#if MHD_VERSION < 0x01000000
    /* the last value's line end, then the empty line's */
    if (hc.why == NULL && hc.end != NULL &&
        !nuls_between(hc.end, (const char *)hc.head_end, 2, 4)) {
        hc.name = hc.prev;
        hc.why = "NUL byte in request header";
    }
#endif
    *name = hc.why != NULL ? hc.name : NULL;
    return hc.why;
}

/* refuse answers an error the server produces itself: through the application's
 * server_error hook, or as JSON {"error":{"code":code,"message":msg}}. */
static void refuse(xs_http_req *req, int status, const char *code, const char *msg)
{
    xs_http_server *srv = req->srv;
    if (srv->server_error != NULL && srv->server_error(req, status, srv->arg)) {
        return;
    }
    if (!req->replied) {
        xs_http_reply_error(req, status, code, NULL, "%s", msg);
    }
}

/* body_append adds n bytes to req's body, or switches to discarding past max_body. */
static void body_append(xs_http_req *req, const char *data, size_t n)
{
    if (req->body_too_big) {
        return;
    }
    /* Past max_body, or not enough memory to hold it: refuse like an oversized body. */
    if (n > req->srv->max_body - req->body.len || xs_buf_append(&req->body, data, n) != XS_OK) {
        req->body_too_big = true;
        xs_buf_fini(&req->body);
    }
}

/* handler_main runs req's route on its own thread, then lets MHD queue the reply: it resumes
 * the connection (under mu, so after the access handler suspended it), and touches req no
 * more, since MHD may finish and free it at once. */
static void *handler_main(void *arg)
{
    xs_http_req *req = arg;
    xs_http_server *srv = req->srv;
    struct MHD_Connection *conn = req->conn;
    dispatch(req);
    atomic_store(&req->handled, true);
    pthread_mutex_lock(&srv->mu);
    MHD_resume_connection(conn);
    if (--srv->handlers == 0) {
        pthread_cond_broadcast(&srv->idle);
    }
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

/* handle starts req's handler on a thread of its own and suspends the connection until it
 * is done; 503 when no thread can be started; MHD_NO (close) once the server is stopping. */
static enum MHD_Result handle(xs_http_req *req)
{
    xs_http_server *srv = req->srv;
    pthread_mutex_lock(&srv->mu);
    if (srv->stopping) {
        pthread_mutex_unlock(&srv->mu);
        return MHD_NO;
    }
    pthread_t t;
    if (pthread_create(&t, &srv->detached, handler_main, req) != 0) {
        pthread_mutex_unlock(&srv->mu);
        xs_log_warn(srv->log, "http.no_thread", "{s:s}", "method", req->method);
        xs_http_add_header(req, "Retry-After", "1");
        refuse(req, 503, "unavailable", "the server cannot take this request now");
        return finish(req);
    }
    req->handling = true;
    MHD_suspend_connection(req->conn);
    srv->handlers++;
    pthread_mutex_unlock(&srv->mu);
    return MHD_YES;
}

/* on_access is MHD's access handler (see the top of this file for the call sequence). It
 * returns MHD_NO to close the connection: out of memory, a dropped reply, or a body beyond
 * DISCARD_MAX. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    xs_http_req *req = *con_cls;
    if (req == NULL) {
        return MHD_NO; /* on_uri ran out of memory */
    }
    if (!req->started) {
        req->started = true;
        req->conn = conn;
        req->mhd_method = method;
        snprintf(req->method, sizeof(req->method), "%s", method);
        watch_set(req->srv, req->watch, req->srv->body_ms, true);
        if (req->uri_status != 0) {
            refuse(req, req->uri_status, req->uri_status == 414 ? "uri_too_long" : "bad_request",
                   req->uri_error);
            return finish(req);
        }
        const char *hname = NULL;
        const char *fault = header_fault(conn, method, &hname);
        if (fault != NULL) {
            char msg[160];
            snprintf(msg, sizeof(msg), "%s%s%.64s", fault, hname != NULL ? " " : "",
                     hname != NULL ? hname : "");
            refuse(req, 400, "bad_request", msg);
            return finish(req);
        }
        if (headers_over(conn)) {
            char msg[64];
            snprintf(msg, sizeof(msg), "request headers larger than %d bytes", MAX_HEADER_BYTES);
            refuse(req, 431, "headers_too_large", msg);
            return finish(req);
        }
        if (content_length_over(conn, req->srv->max_body)) {
            char msg[64];
            snprintf(msg, sizeof(msg), "request body larger than %zu bytes", req->srv->max_body);
            refuse(req, 413, "body_too_large", msg);
            return finish(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!req->queued) {
            body_append(req, upload_data, n);
        }
        if (req->body_too_big) {
            /* MHD 0.9.75 cannot queue a reply while the body is still coming in. */
            req->discarded += n;
            if (req->discarded > DISCARD_MAX) {
                xs_log_warn(req->srv->log, "http.body_discard_limit", "{s:s}", "method",
                            req->method);
                return MHD_NO;
            }
        }
        return MHD_YES;
    }
    if (req->queued) {
        return MHD_YES;
    }
    if (req->handling) {
        /* resumed: the handler is done */
        return atomic_load(&req->handled) ? finish(req) : MHD_YES;
    }
    req->mhd_method = method;
    watch_set(req->srv, req->watch, 0, false);
    if (req->body_too_big) {
        char msg[64];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", req->srv->max_body);
        refuse(req, 413, "body_too_large", msg);
        return finish(req);
    }
    return handle(req);
}

/* ---------------------------------------------------------------------------------------- */
/* server */

/* fd_capped returns max connections, or fewer when the process may not open that many
 * descriptors besides FD_RESERVE for everything else (saying so in the log). */
static unsigned fd_capped(unsigned max, xs_log *log)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= (rlim_t)max + FD_RESERVE) {
        return max;
    }
    unsigned fit = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE)
                                                : (unsigned)(rl.rlim_cur / 2);
    xs_log_warn(log, "http.fd_limit", "{s:i, s:I, s:i}", "max_connections", (int)max, "fd_limit",
                (json_int_t)rl.rlim_cur, "using", (int)fit);
    return fit > 0 ? fit : 1;
}

/* server_free frees srv once MHD is stopped; its locks and attributes must be made. */
static void server_free(xs_http_server *srv)
{
    pthread_attr_destroy(&srv->detached);
    pthread_cond_destroy(&srv->idle);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->watch_cv);
    pthread_mutex_destroy(&srv->watch_mu);
    while (srv->watches != NULL) {
        watch *w = srv->watches;
        srv->watches = w->next;
        free(w);
    }
    free(srv);
}

/* watchdog_stop stops the watchdog thread, if it runs. */
static void watchdog_stop(xs_http_server *srv)
{
    if (!srv->watchdog_started) {
        return;
    }
    pthread_mutex_lock(&srv->watch_mu);
    srv->watch_stop = true;
    pthread_cond_signal(&srv->watch_cv);
    pthread_mutex_unlock(&srv->watch_mu);
    pthread_join(srv->watchdog, NULL);
    srv->watchdog_started = false;
}

xs_err xs_http_server_create(xs_http_server **out, const xs_http_opts *opts)
{
    if (out == NULL || opts == NULL || (opts->routes == NULL && opts->nroutes > 0) ||
        opts->header_timeout_ms < 0 || opts->body_timeout_ms < 0 || opts->idle_timeout_ms < 0) {
        return XS_EINVAL;
    }
    for (size_t i = 0; i < opts->nroutes; i++) {
        if (!route_valid(&opts->routes[i])) {
            xs_log_error(opts->log, "http.bad_route", "{s:s}", "pattern",
                         opts->routes[i].pattern != NULL ? opts->routes[i].pattern : "(null)");
            return XS_EINVAL;
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(opts->port)};
    const char *addr = opts->bind_addr != NULL ? opts->bind_addr : "127.0.0.1";
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        return XS_EINVAL;
    }
    xs_http_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return XS_ENOMEM;
    }
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        free(srv);
        return XS_ENOMEM;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&srv->mu, NULL) != 0 || pthread_cond_init(&srv->idle, NULL) != 0 ||
        pthread_mutex_init(&srv->watch_mu, NULL) != 0 ||
        pthread_cond_init(&srv->watch_cv, &ca) != 0 || pthread_attr_init(&srv->detached) != 0 ||
        pthread_attr_setdetachstate(&srv->detached, PTHREAD_CREATE_DETACHED) != 0) {
        /* (glibc's initialisers cannot fail for these attributes) */
        pthread_condattr_destroy(&ca);
        free(srv);
        return XS_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    srv->max_body = opts->max_body != 0 ? opts->max_body : DEFAULT_MAX_BODY;
    srv->header_ms =
        opts->header_timeout_ms != 0 ? opts->header_timeout_ms : DEFAULT_HEADER_TIMEOUT;
    srv->body_ms = opts->body_timeout_ms != 0 ? opts->body_timeout_ms : DEFAULT_BODY_TIMEOUT;
    int64_t idle_ms = opts->idle_timeout_ms != 0 ? opts->idle_timeout_ms : DEFAULT_IDLE_TIMEOUT;
    srv->routes = opts->routes;
    srv->nroutes = opts->nroutes;
    srv->fallback = opts->fallback;
    srv->before = opts->before;
    srv->server_error = opts->server_error;
    srv->arg = opts->arg;
    srv->log = opts->log;
    unsigned max_conn =
        fd_capped(opts->max_connections != 0 ? opts->max_connections : DEFAULT_MAX_CONN, srv->log);
    unsigned idle_s = (unsigned)((idle_ms + 999) / 1000);
    if (pthread_create(&srv->watchdog, NULL, watchdog_main, srv) != 0) {
        server_free(srv);
        return XS_ENOMEM;
    }
    srv->watchdog_started = true;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    srv->daemon = MHD_start_daemon(
        flags, opts->port, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        opts->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY_LIMIT, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        xs_log_error(srv->log, "http.listen_failed", "{s:s, s:i}", "addr", addr, "port",
                     (int)opts->port);
        watchdog_stop(srv);
        server_free(srv);
        return XS_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di != NULL ? di->port : opts->port;
    xs_log_info(srv->log, "http.listen", "{s:s, s:i, s:i, s:i}", "addr", addr, "port",
                (int)srv->port, "max_connections", (int)max_conn, "max_connections_per_ip",
                (int)opts->max_connections_per_ip);
    *out = srv;
    return XS_OK;
}

uint16_t xs_http_server_port(const xs_http_server *srv)
{
    return srv != NULL ? srv->port : 0;
}

void xs_http_server_destroy(xs_http_server *srv)
{
    if (srv == NULL) {
        return;
    }
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    while (srv->handlers > 0) {
        pthread_cond_wait(&srv->idle, &srv->mu);
    }
    pthread_mutex_unlock(&srv->mu);
    watchdog_stop(srv);
    MHD_stop_daemon(srv->daemon);
    server_free(srv);
}

/* ---------------------------------------------------------------------------------------- */
/* the request */

const char *xs_http_req_method(const xs_http_req *req)
{
    return req->mhd_method;
}

const char *xs_http_req_path(const xs_http_req *req)
{
    return req->path != NULL ? req->path : "";
}

const char *xs_http_req_raw_path(const xs_http_req *req)
{
    return req->raw_path != NULL ? req->raw_path : "";
}

const char *xs_http_req_param(const xs_http_req *req, const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < req->nparams; i++) {
        if (strcmp(req->params[i].name, name) == 0) {
            return req->params[i].value;
        }
    }
    return NULL;
}

typedef struct query_find {
    const char *name;
    const char *value;
    bool found;
} query_find;

/* query_iter finds the first query argument named qf->name (stops there). */
static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    (void)key_size;
    (void)value_size;
    query_find *qf = cls;
    if (key != NULL && strcmp(key, qf->name) == 0) {
        qf->value = value != NULL ? value : "";
        qf->found = true;
        return MHD_NO; /* first wins */
    }
    return MHD_YES;
}

const char *xs_http_req_query(const xs_http_req *req, const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    query_find qf = {name, NULL, false};
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, query_iter, &qf);
    return qf.found ? qf.value : NULL;
}

const char *xs_http_req_header(const xs_http_req *req, const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *xs_http_req_body(const xs_http_req *req, size_t *len)
{
    if (len != NULL) {
        *len = req->body.len;
    }
    return req->body.p != NULL ? req->body.p : "";
}

const xs_http_route *xs_http_req_route(const xs_http_req *req)
{
    return req->route;
}

xs_err xs_http_req_json(xs_http_req *req, json_t **out)
{
    if (out == NULL) {
        return XS_EINVAL;
    }
    if (req->body.len == 0) {
        xs_http_reply_error(req, 400, "bad_json", NULL, "request body is empty");
        return XS_EPARSE;
    }
    char err[XS_JSON_ERR_MAX] = "";
    json_t *v = xs_json_parse(req->body.p, req->body.len, err);
    if (v == NULL) {
        xs_http_reply_error(req, 400, "bad_json", NULL, "%s", err[0] != '\0' ? err : "bad JSON");
        return XS_EPARSE;
    }
    *out = v;
    return XS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* the reply */

/* header_ok tells whether s can go into a header line as it is. */
static bool header_ok(const char *s, bool name)
{
    if (s == NULL || (name && s[0] == '\0')) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '\r' || *p == '\n' || *p == 0x7f || (*p < 0x20 && *p != '\t') ||
            (name && (*p == ':' || *p == ' ' || *p == '\t'))) {
            return false;
        }
    }
    return true;
}

void xs_http_add_header(xs_http_req *req, const char *name, const char *value)
{
    if (!header_ok(name, true) || !header_ok(value, false)) {
        xs_log_warn(req->srv->log, "http.bad_header", "{s:s}", "name",
                    name != NULL && header_ok(name, true) ? name : "(invalid)");
        return;
    }
    kv *h = realloc(req->headers, (req->nheaders + 1) * sizeof(*h));
    if (h == NULL) {
        return;
    }
    req->headers = h;
    char *n = strdup(name), *v = strdup(value);
    if (n == NULL || v == NULL) {
        free(n);
        free(v);
        return;
    }
    req->headers[req->nheaders++] = (kv){n, v};
}

/* reply_begin tells whether req may still be replied to, and says why not in the log. */
static bool reply_begin(xs_http_req *req)
{
    if (req->replied || req->drop) {
        xs_log_error(req->srv->log, "http.double_reply", "{s:s}", "method", req->method);
        return false;
    }
    return true;
}

/* reply_set records resp (taken) as req's reply. */
static void reply_set(xs_http_req *req, int status, const char *ctype, struct MHD_Response *resp,
                      size_t bytes)
{
    if (status < 100 || status > 599) {
        xs_log_error(req->srv->log, "http.bad_status", "{s:i}", "status", status);
        status = 500;
    }
    if (ctype != NULL) {
        if (!header_ok(ctype, false) ||
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES) {
            xs_log_warn(req->srv->log, "http.bad_header", "{s:s}", "name", "Content-Type");
        }
    }
    req->resp = resp;
    req->status = status;
    req->resp_bytes = bytes;
    req->replied = true;
}

void xs_http_reply(xs_http_req *req, int status, const char *ctype, const void *body, size_t len)
{
    if (!reply_begin(req)) {
        return;
    }
    if (body == NULL) {
        len = 0;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        return; /* finish() answers 500 */
    }
    reply_set(req, status, ctype, resp, len);
}

void xs_http_reply_json(xs_http_req *req, int status, json_t *body)
{
    if (body == NULL) {
        xs_http_reply(req, status, NULL, NULL, 0);
        return;
    }
    char *text = xs_json_dump(body, XS_JSON_COMPACT);
    json_decref(body);
    if (text == NULL) {
        xs_http_reply(req, 500, "application/json", "{\"error\":{\"code\":\"internal\"}}", 29);
        return;
    }
    xs_http_reply(req, status, "application/json", text, strlen(text));
    free(text);
}

void xs_http_reply_error(xs_http_req *req, int status, const char *code, const char *field,
                         const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt != NULL ? fmt : "", ap);
    va_end(ap);
    json_t *text = json_string(msg);
    if (text == NULL) {
        /* Not UTF-8 (a message quoting raw input, or cut inside a character): keep ASCII. */
        for (char *p = msg; *p != '\0'; p++) {
            if ((unsigned char)*p >= 0x80) {
                *p = '?';
            }
        }
        text = json_string(msg);
    }
    json_t *err = json_pack("{s:s, s:o*}", "code", code != NULL ? code : "error", "message", text);
    if (err != NULL && field != NULL) {
        json_object_set_new(err, "field", json_string(field));
    }
    json_t *body = err != NULL ? json_pack("{s:o}", "error", err) : NULL;
    if (body == NULL) {
        /* Only when out of memory (or code is not UTF-8): still an error reply. */
        xs_http_reply(req, status, "application/json", "{\"error\":{\"code\":\"internal\"}}", 29);
        return;
    }
    xs_http_reply_json(req, status, body);
}

void xs_http_reply_drop(xs_http_req *req, bool reset)
{
    if (!reply_begin(req)) {
        return;
    }
    req->drop = true;
    req->reset = reset;
    req->replied = true;
}

typedef struct truncated_body {
    char *data;
    size_t sent;
} truncated_body;

/* truncated_read serves the kept bytes, then fails the body so MHD closes the connection
 * short of the announced Content-Length. */
static ssize_t truncated_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    truncated_body *tb = cls;
    if (pos >= tb->sent) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = tb->sent - (size_t)pos;
    if (n > max) {
        n = max;
    }
    memcpy(buf, tb->data + pos, n);
    return (ssize_t)n;
}

/* truncated_free frees a truncated_body (taken) when MHD is done with the response. */
static void truncated_free(void *cls)
{
    truncated_body *tb = cls;
    free(tb->data);
    free(tb);
}

void xs_http_reply_truncated(xs_http_req *req, int status, const char *ctype, const void *body,
                             size_t len, size_t sent)
{
    if (!reply_begin(req)) {
        return;
    }
    if (body == NULL) {
        len = 0;
    }
    if (sent > len) {
        sent = len;
    }
    truncated_body *tb = calloc(1, sizeof(*tb));
    if (tb == NULL || (tb->data = malloc(sent + 1)) == NULL) {
        free(tb);
        return;
    }
    if (sent > 0) {
        memcpy(tb->data, body, sent);
    }
    tb->sent = sent;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(len, TRUNCATED_BLOCK, truncated_read, tb, truncated_free);
    if (resp == NULL) {
        truncated_free(tb);
        return;
    }
    reply_set(req, status, ctype, resp, sent);
}

/* --- multipart/form-data --- */

/* mp_find finds needle (n bytes) in hay (len bytes), or NULL. */
static const char *mp_find(const char *hay, size_t len, const char *needle, size_t n)
{
    for (size_t i = 0; n <= len && i <= len - n; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

/* mp_param reads parameter key of a header value (`; key="v"` or `; key=v`) into a new string,
 * or NULL when absent or malformed (*bad set for malformed). */
static char *mp_param(const char *value, const char *key, bool *bad)
{
    size_t klen = strlen(key);
    for (const char *p = strchr(value, ';'); p != NULL; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t') {
            q++;
        }
        if (strncasecmp(q, key, klen) != 0 || q[klen] != '=') {
            continue;
        }
        q += klen + 1;
        if (*q == '"') {
            const char *end = strchr(q + 1, '"');
            if (end == NULL) {
                *bad = true;
                return NULL;
            }
            return strndup(q + 1, (size_t)(end - q - 1));
        }
        size_t n = strcspn(q, "; \t");
        return n > 0 ? strndup(q, n) : NULL;
    }
    return NULL;
}

/* mp_headers reads a part's headers (h, n bytes, CRLF-separated) into *part. */
static bool mp_headers(const char *h, size_t n, xs_http_part *part, char *why)
{
    char line[1024];
    while (n > 0) {
        const char *eol = mp_find(h, n, "\r\n", 2);
        size_t ln = eol != NULL ? (size_t)(eol - h) : n;
        if (ln >= sizeof(line) || memchr(h, '\0', ln) != NULL) {
            snprintf(why, 256, "a part's header is too long or holds a NUL byte");
            return false;
        }
        memcpy(line, h, ln);
        line[ln] = '\0';
        bool bad = false;
        if (strncasecmp(line, "Content-Disposition:", 20) == 0) {
            const char *v = line + 20;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            if (strncasecmp(v, "form-data", 9) != 0 || part->name != NULL) {
                snprintf(why, 256, "a part's Content-Disposition is not form-data");
                return false;
            }
            part->name = mp_param(v, "name", &bad);
            part->filename = mp_param(v, "filename", &bad);
        } else if (strncasecmp(line, "Content-Type:", 13) == 0 && part->ctype == NULL) {
            const char *v = line + 13;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            part->ctype = strdup(v);
        }
        if (bad) {
            snprintf(why, 256, "a part's header has an unterminated quoted value");
            return false;
        }
        h += ln + (eol != NULL ? 2 : 0);
        n -= ln + (eol != NULL ? 2 : 0);
    }
    if (part->name == NULL || part->name[0] == '\0') {
        snprintf(why, 256, "a part has no form field name (Content-Disposition: form-data; name=)");
        return false;
    }
    return true;
}

void xs_http_multipart_free(xs_http_part *parts, size_t n)
{
    for (size_t i = 0; parts != NULL && i < n; i++) {
        free(parts[i].name);
        free(parts[i].filename);
        free(parts[i].ctype);
        parts[i] = (xs_http_part){0};
    }
}

xs_err xs_http_multipart(const char *ctype, const char *body, size_t len, xs_http_part *parts,
                         size_t *n, char *why)
{
    *n = 0;
    if (ctype == NULL || strncasecmp(ctype, "multipart/form-data", 19) != 0) {
        snprintf(why, 256, "the body must be multipart/form-data");
        return XS_EPARSE;
    }
    bool bad = false;
    char *b = mp_param(ctype, "boundary", &bad);
    if (b == NULL || strlen(b) < 1 || strlen(b) > 70) {
        free(b);
        snprintf(why, 256, "multipart/form-data needs a boundary of 1 to 70 characters");
        return XS_EPARSE;
    }
    char delim[80];
    size_t dn = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", b);
    free(b);
    /* The first delimiter may open the body without its CRLF. */
    const char *p = body, *end = body + len;
    if (len >= dn - 2 && memcmp(body, delim + 2, dn - 2) == 0) {
        p = body + dn - 2;
    } else {
        const char *first = mp_find(body, len, delim, dn);
        if (first == NULL) {
            snprintf(why, 256, "the body does not hold the boundary");
            return XS_EPARSE;
        }
        p = first + dn;
    }
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
            return XS_OK; /* the closing delimiter; what follows is the epilogue */
        }
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
            snprintf(why, 256, "a boundary is not followed by a line break");
            break;
        }
        p += 2;
        const char *hend = mp_find(p, (size_t)(end - p), "\r\n\r\n", 4);
        const char *next =
            hend != NULL ? mp_find(hend + 4, (size_t)(end - hend - 4), delim, dn) : NULL;
        if (hend == NULL || next == NULL) {
            snprintf(why, 256, "a part is not ended by the boundary");
            break;
        }
        if (*n >= XS_HTTP_PARTS_MAX) {
            snprintf(why, 256, "more than %d parts", XS_HTTP_PARTS_MAX);
            break;
        }
        xs_http_part *part = &parts[*n];
        *part = (xs_http_part){.data = hend + 4, .len = (size_t)(next - hend - 4)};
        (*n)++;
        if (!mp_headers(p, (size_t)(hend - p), part, why)) {
            break;
        }
        p = next + dn;
    }
    xs_http_multipart_free(parts, *n);
    *n = 0;
    return XS_EPARSE;
}
