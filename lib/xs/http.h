/*
 * http.h: the HTTP server, over libmicrohttpd. Used by the orchestrator (REST API, OAuth
 * callback, webhooks, metrics) and by xero-sim.
 *
 * Requests are matched against a table of routes; the whole body (up to a limit) is read
 * before the handler runs, so a handler sees the raw bytes exactly as received (webhook
 * signatures are computed over them). One thread reads and writes every connection; each
 * request whose head and body are in runs its handler on a thread of its own, so a handler
 * may block, and a connection that is idle or sends slowly costs no thread. A handler answers
 * by calling exactly one xs_http_reply* function; if it calls none, the client gets a 500.
 * Errors the server itself produces (400 on a refused request target or header, 404, 405,
 * 413, 414, 431, 503) are JSON: {"error":{"code":"...","message":"..."}}, unless the
 * application renders them itself (xs_http_opts.server_error). Only requests whose request
 * line and headers exceed the connection's memory (256 KiB) get libmicrohttpd's own short
 * HTML replies.
 *
 * The front door's limits: at most max_connections open connections, at most
 * max_connections_per_ip of them from one client address (the surplus is closed as soon as
 * it is accepted); a request's line and headers must be in within header_timeout_ms of the
 * connection's start or of its previous reply (so an idle kept-alive connection is closed
 * then too), its body within body_timeout_ms of its headers, whatever bytes trickle in
 * meanwhile; a connection on which nothing moves for idle_timeout_ms is closed (a client
 * that stops reading its reply). A header value holding a control character or a NUL byte
 * is refused with 400.
 */
#ifndef XS_HTTP_H
#define XS_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs/err.h"
#include "xs/log.h"

typedef struct xs_http_server xs_http_server;
typedef struct xs_http_req xs_http_req;

/* A handler; arg is xs_http_opts.arg. */
typedef void (*xs_http_handler)(xs_http_req *req, void *arg);

typedef struct xs_http_route {
    const char *method;      /* "GET", "POST", "PUT", "PATCH", "DELETE", or "*" for any */
    const char *pattern;     /* "/v1/runs/{id}": "{name}" matches one non-empty path segment;
                                a final "*" segment ("/files/" followed by "*") matches any
                                remainder, even empty, read as the parameter "*" */
    xs_http_handler handler; /* called with the request */
    unsigned flags;          /* the application's own marks (e.g. "public"); see `before` */
} xs_http_route;

typedef struct xs_http_opts {
    const char *bind_addr;       /* IPv4 address to bind; NULL: "127.0.0.1" */
    uint16_t port;               /* 0: a free port (read it with xs_http_server_port) */
    size_t max_body;             /* larger request bodies get 413; 0: 1 MiB */
    unsigned max_connections;    /* 0: 4096; fewer when the fd limit is lower (http.fd_limit) */
    const xs_http_route *routes; /* borrowed; must outlive the server */
    size_t nroutes;
    /* The front door's other limits (see the top of this file): connections from one client
     * address (0: no limit); the headers', the body's and the idle deadlines in ms (0: 10 s,
     * 60 s and 30 s; the idle one rounded up to whole seconds). */
    unsigned max_connections_per_ip;
    int64_t header_timeout_ms, body_timeout_ms, idle_timeout_ms;
    /* Called for a request no route matches (by path or method), instead of the JSON
     * 404/405; NULL for the defaults. */
    xs_http_handler fallback;
    /* Called before a matched route's handler; return false after replying to stop there
     * (e.g. 401). NULL: none. */
    bool (*before)(xs_http_req *req, const xs_http_route *route, void *arg);
    /* Called for an error the server produces before any route runs, so an application can
     * answer it in its own shape (xero-sim answers like Xero under /api.xro/2.0): 400 (a
     * request target or header it refuses), 413 (a body over max_body), 414 (a target over
     * 8 KiB), 431 (request headers over 64 KiB) and 503 (no thread could be started for the
     * handler). Reply with one xs_http_reply* and return true, or return false without
     * replying for the default JSON error. The request has its method, headers, query and
     * xs_http_req_raw_path, but no body, and no decoded path when the target was refused.
     * NULL: the default JSON errors. */
    bool (*server_error)(xs_http_req *req, int status, void *arg);
    void *arg;   /* handed to every handler */
    xs_log *log; /* borrowed, may be NULL: one access line per request */
} xs_http_opts;

/* xs_http_server_create starts serving. XS_EIO when the address cannot be bound. */
xs_err xs_http_server_create(xs_http_server **out, const xs_http_opts *opts);

/* xs_http_server_port returns the port the server listens on. */
uint16_t xs_http_server_port(const xs_http_server *srv);

/* xs_http_server_destroy stops accepting, waits for handlers in progress, and frees srv.
 * NULL accepted. */
void xs_http_server_destroy(xs_http_server *srv);

/* --- the request (all strings borrowed from req, valid until the handler returns) --- */
const char *xs_http_req_method(const xs_http_req *req);
/* xs_http_req_path returns the path without the query string, percent-decoded. */
const char *xs_http_req_path(const xs_http_req *req);
/* xs_http_req_raw_path returns the request target up to '?' exactly as received (not
 * decoded), also for a target the server refused; "" when there is none. */
const char *xs_http_req_raw_path(const xs_http_req *req);
/* xs_http_req_param returns a "{name}" path parameter, or NULL. */
const char *xs_http_req_param(const xs_http_req *req, const char *name);
/* xs_http_req_query returns a decoded query-string argument ("" for "?flag"), or NULL. */
const char *xs_http_req_query(const xs_http_req *req, const char *name);
/* xs_http_req_header returns a request header (case-insensitive name), or NULL. */
const char *xs_http_req_header(const xs_http_req *req, const char *name);
/* xs_http_req_body returns the raw body (NUL-terminated for convenience; "" when none). */
const char *xs_http_req_body(const xs_http_req *req, size_t *len);
/* xs_http_req_route returns the matched route, or NULL in the fallback handler. */
const xs_http_route *xs_http_req_route(const xs_http_req *req);

/* xs_http_req_json parses the body with xs_json_parse into *out (new). On a missing or
 * malformed body it replies 400 {"error":{"code":"bad_json",...}} itself and returns
 * XS_EPARSE: the handler then just returns. */
xs_err xs_http_req_json(xs_http_req *req, json_t **out);

/* --- the reply: call exactly one xs_http_reply* per request --- */

/* xs_http_add_header adds a header to the coming reply (name and value are copied). */
void xs_http_add_header(xs_http_req *req, const char *name, const char *value);

/* xs_http_reply sends status with body (len bytes, copied; may be NULL with len 0) and,
 * when ctype is not NULL, a Content-Type. */
void xs_http_reply(xs_http_req *req, int status, const char *ctype, const void *body, size_t len);

/* xs_http_reply_json sends status with body serialised by xs_json_dump (decimals exact);
 * body is taken over (stolen); NULL sends no body. */
void xs_http_reply_json(xs_http_req *req, int status, json_t *body);

/* xs_http_reply_error sends {"error":{"code":code,"message":<formatted>,"field":field}};
 * field may be NULL (then omitted). */
void xs_http_reply_error(xs_http_req *req, int status, const char *code, const char *field,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* xs_http_reply_drop closes the connection without a reply; with reset, the peer sees a TCP
 * reset instead of an orderly close. (The simulator's faults.) */
void xs_http_reply_drop(xs_http_req *req, bool reset);

/* xs_http_reply_truncated announces len bytes of body but sends only the first `sent`, then
 * closes the connection. (The simulator's faults.) */
void xs_http_reply_truncated(xs_http_req *req, int status, const char *ctype, const void *body,
                             size_t len, size_t sent);

/* One part of a multipart/form-data body (xs_http_multipart): its form field's name, its
 * file name and content type when it has them (else NULL), and its bytes. The strings are new
 * (freed by xs_http_multipart_free); data points into the body parsed (borrowed). */
typedef struct xs_http_part {
    char *name, *filename, *ctype;
    const char *data;
    size_t len;
} xs_http_part;

#define XS_HTTP_PARTS_MAX 16

/* xs_http_multipart parses body (len bytes) of content type ctype (the request's
 * Content-Type: multipart/form-data with its boundary) into parts (XS_HTTP_PARTS_MAX) and *n.
 * XS_EPARSE with why (256 bytes) for anything else: another type, no boundary, a part without
 * its headers or name, a body not ended by the closing boundary, more parts than
 * XS_HTTP_PARTS_MAX. On failure nothing is left to free. */
xs_err xs_http_multipart(const char *ctype, const char *body, size_t len, xs_http_part *parts,
                         size_t *n, char *why);

/* xs_http_multipart_free frees what n parts hold; NULL-safe. */
void xs_http_multipart_free(xs_http_part *parts, size_t n);

#endif
