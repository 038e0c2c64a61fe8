/*
 * http.c: the HTTP server over libmicrohttpd 0.9.75 (see http.h).
 *
 * Threads. MHD runs one listening thread and one thread per connection
 * (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, poll() rather than
 * select() so descriptors above FD_SETSIZE work), so a handler may block without holding
 * up other connections. xs_http_server_destroy (MHD_stop_daemon) shuts the connection
 * sockets down and joins every connection thread, so it returns after handlers in progress
 * have returned.
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "xs/clock.h"
#include "xs/crypto.h"
#include "xs/json.h"

#define DEFAULT_MAX_BODY  (1024 * 1024)
#define DEFAULT_MAX_CONN  256
#define DEFAULT_TIMEOUT_S 30
#define MAX_URI           8192        /* longest request target we route */
#define MAX_HEADER_BYTES  (64 * 1024) /* largest header block we accept ("Name: value\r\n") */
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

struct xs_http_server {
    struct MHD_Daemon *daemon;
    uint16_t port;
    size_t max_body;
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
    int64_t t0;
    bool started;           /* the access handler has seen the request */
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
    char *body;
    size_t body_len;
    size_t body_cap;
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
    free(req->body);
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
    req_free(req);
}

/* on_mhd_log routes MHD's error messages to the server's log. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    xs_http_server *srv = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
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
    if (n > req->srv->max_body - req->body_len) {
        req->body_too_big = true;
        free(req->body);
        req->body = NULL;
        req->body_len = 0;
        req->body_cap = 0;
        return;
    }
    if (req->body_len + n + 1 > req->body_cap) {
        size_t cap = req->body_cap == 0 ? 4096 : req->body_cap;
        while (cap < req->body_len + n + 1) {
            cap *= 2;
        }
        char *b = realloc(req->body, cap);
        if (b == NULL) {
            req->body_too_big = true; /* cannot hold it: refuse like an oversized body */
            free(req->body);
            req->body = NULL;
            req->body_len = 0;
            req->body_cap = 0;
            return;
        }
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
    req->body[req->body_len] = '\0';
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
        if (req->uri_status != 0) {
            refuse(req, req->uri_status, req->uri_status == 414 ? "uri_too_long" : "bad_request",
                   req->uri_error);
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
    req->mhd_method = method;
    if (req->body_too_big) {
        char msg[64];
        snprintf(msg, sizeof(msg), "request body larger than %zu bytes", req->srv->max_body);
        refuse(req, 413, "body_too_large", msg);
    } else {
        dispatch(req);
    }
    return finish(req);
}

/* ---------------------------------------------------------------------------------------- */
/* server */

xs_err xs_http_server_create(xs_http_server **out, const xs_http_opts *opts)
{
    if (out == NULL || opts == NULL || (opts->routes == NULL && opts->nroutes > 0)) {
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
    srv->max_body = opts->max_body != 0 ? opts->max_body : DEFAULT_MAX_BODY;
    srv->routes = opts->routes;
    srv->nroutes = opts->nroutes;
    srv->fallback = opts->fallback;
    srv->before = opts->before;
    srv->server_error = opts->server_error;
    srv->arg = opts->arg;
    srv->log = opts->log;
    unsigned max_conn = opts->max_connections != 0 ? opts->max_connections : DEFAULT_MAX_CONN;
    unsigned timeout = opts->timeout_s != 0 ? opts->timeout_s : DEFAULT_TIMEOUT_S;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    srv->daemon = MHD_start_daemon(
        flags, opts->port, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_LIMIT, max_conn,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONN_MEMORY_LIMIT, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        xs_log_error(srv->log, "http.listen_failed", "{s:s, s:i}", "addr", addr, "port",
                     (int)opts->port);
        free(srv);
        return XS_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di != NULL ? di->port : opts->port;
    xs_log_info(srv->log, "http.listen", "{s:s, s:i}", "addr", addr, "port", (int)srv->port);
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
    MHD_stop_daemon(srv->daemon);
    free(srv);
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
        *len = req->body_len;
    }
    return req->body != NULL ? req->body : "";
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
    if (req->body_len == 0) {
        xs_http_reply_error(req, 400, "bad_json", NULL, "request body is empty");
        return XS_EPARSE;
    }
    char err[XS_JSON_ERR_MAX] = "";
    json_t *v = xs_json_parse(req->body, req->body_len, err);
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
