/*
 * svc.h: the runtime of a domain service (xs-auth, xs-contacts, xs-invoices, xs-payments).
 *
 * xs_svc_main is a whole main(): it starts the process (xs_proc), connects to PostgreSQL and
 * checks the schema version, dials the orchestrator's bus, runs XS_WORKERS worker threads,
 * publishes heartbeats, and stops cleanly on SIGTERM: workers finish the request in hand,
 * a last heartbeat says "stopping", everything is closed, and the exit code is 0.
 *
 * A worker receives a request, decodes it with the proto codec (a malformed or unknown one
 * is answered with an error reply, never a crash), dispatches it to the service's handler for
 * its type, and sends the handler's reply body under the type the protocol declares (a body
 * the declaration refuses becomes an XS_EPROTO error reply: it is a bug in the handler, and
 * it is logged). Each worker has its own PostgreSQL connection, re-established when lost.
 * An init returning XS_ECONFIG, like check_config, stops the process with exit code 2.
 * Every service answers sys.ping.
 */
#ifndef XS_SVC_H
#define XS_SVC_H

#include <jansson.h>
#include <stdbool.h>

#include "proto.h"
#include "xs/bus.h"
#include "xs/err.h"
#include "xs/pg.h"
#include "xs/proc.h"
#include "xs/xero.h"

#define XS_SVC_ERR_MAX 1024

/* A replica's counters (svc.c): what it did since it started, which every heartbeat carries
 * whole (field "counters") for the orchestrator to sum across replicas (GET /metrics). */
typedef struct xs_svc_counters xs_svc_counters;

/* At most this many distinct counters (a name with its label values) a replica keeps; a new
 * one beyond them is not counted (svc.counters_full, logged once). */
#define XS_SVC_COUNTERS_MAX 256
/* A counter has at most this many labels (more are not kept). */
#define XS_SVC_LABELS_MAX 3

/* What a handler gets: one per worker thread, reused across requests. */
typedef struct xs_svc_ctx {
    const xs_proc *proc;       /* configuration and log (borrowed) */
    xs_pg *pg;                 /* this worker's database connection (borrowed) */
    void *state;               /* the service's own state, from its init (borrowed) */
    void *wstate;              /* this worker's own state, from worker_init (borrowed) */
    const char *replica;       /* this replica's id */
    const char *service;       /* "contacts" */
    xs_bus_node *node;         /* for publishing events (borrowed) */
    xs_svc_counters *counters; /* this replica's counters (borrowed; xs_svc_count) */
    char err[XS_SVC_ERR_MAX];  /* the failure message set by xs_svc_fail */
    char field[128];           /* the request field at fault, set by xs_svc_fail_field */
    bool retryable;            /* set by xs_svc_fail */
    int64_t calls;             /* calls to Xero this request made (xs_svc_count_call) */
} xs_svc_ctx;

/* A handler answers one request. On success it returns XS_OK and sets *reply to the reply's
 * body (new reference; an object). On failure it returns an error, best through xs_svc_fail
 * so the error reply carries a message. */
typedef xs_err (*xs_svc_handler)(xs_svc_ctx *ctx, const xs_msg *req, json_t **reply);

typedef struct xs_svc_route {
    const char *type; /* a request type declared in proto.c */
    xs_svc_handler fn;
} xs_svc_route;

typedef struct xs_svc_def {
    const char *name;     /* "xs-contacts": the binary */
    const char *service;  /* "contacts": in heartbeats and replies */
    unsigned procmask;    /* XS_PROC_CONTACTS */
    xs_bus_domain domain; /* the bus domain it serves */
    const xs_svc_route *routes;
    size_t nroutes;
    const char *usage; /* --help paragraph */
    /* check_config validates what the configuration table cannot (a key's encoding, say)
     * right after the configuration is loaded: XS_ECONFIG with one line naming the variable
     * in err (XS_CONFIG_ERR_MAX bytes) stops the process with exit code 2. May be NULL. */
    xs_err (*check_config)(const xs_proc *proc, char *err);
    /* init makes the service's state once at start, after configuration and database are
     * ready (pg is borrowed for the call only); fini frees it; both may be NULL. */
    xs_err (*init)(const xs_proc *proc, xs_pg *pg, void **state);
    void (*fini)(void *state);
    /* worker_init makes one worker's own state (ctx->wstate) before it takes requests, e.g.
     * an HTTP client with its keep-alive connections; worker_fini frees it. May be NULL. */
    xs_err (*worker_init)(void *state, void **wstate);
    void (*worker_fini)(void *wstate);
    /* json_arena serves each request inside a JSON arena (xs_json_arena_begin): the
     * handlers keep no JSON value beyond their request. */
    bool json_arena;
} xs_svc_def;

/* xs_svc_main runs the service described by def and returns the process exit code. */
int xs_svc_main(const xs_svc_def *def, int argc, char **argv);

/* xs_svc_fail records why a request failed in ctx and returns code, so a handler can write
 * `return xs_svc_fail(ctx, XS_EINVAL, false, "contact %s has no name", id);`. */
xs_err xs_svc_fail(xs_svc_ctx *ctx, xs_err code, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* xs_svc_fail_field is xs_svc_fail naming the request field at fault (copied). */
xs_err xs_svc_fail_field(xs_svc_ctx *ctx, xs_err code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* xs_svc_publish publishes an event of `type` about connection conn (may be NULL) with body
 * (taken over). A body its declaration refuses is logged and dropped: events are never
 * durable. */
void xs_svc_publish(xs_svc_ctx *ctx, const char *type, const char *conn, json_t *body);

/* xs_svc_count adds n to this replica's counter `name` with `labels`: pairs of a label's name
 * and its value, NULL-terminated (borrowed; copied when the counter is new). The set of names
 * and label values a service counts must be small and fixed: every one travels in each
 * heartbeat. */
void xs_svc_count(xs_svc_ctx *ctx, const char *name, const char *const *labels, int64_t n);

/* xs_svc_count_call counts one call to Xero (borrowed): xero_requests{endpoint, status} (the
 * endpoint named by xs_xero_endpoint; status the HTTP status, or "error" when no reply came)
 * and, for a 429, xero_rate_limited{problem} (X-Rate-Limit-Problem: minute, day,
 * appminute, concurrent, or "unknown"), and in ctx->calls, the request's own count. Every call
 * a service makes to Xero passes here with its audit. The runtime puts that count in the
 * reply of a step (its "calls", the higher of it and the handler's own) and in an error reply
 * to one, so the orchestrator's budget charges what was used, 0 when nothing was. */
void xs_svc_count_call(xs_svc_ctx *ctx, const xs_xero_call *call);

/* xs_svc_xero_worker gives a worker its own Xero client made with opts (its own keep-alive
 * connections), as its *wstate; xs_svc_xero_worker_fini frees it (a worker_fini). */
xs_err xs_svc_xero_worker(const xs_xero_opts *opts, void **wstate);
void xs_svc_xero_worker_fini(void *wstate);

#endif
