/*
 * orch.h: the orchestrator's one context, made in main and handed to its modules.
 */
#ifndef ORCH_H
#define ORCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto.h"
#include "replicas.h"
#include "xs/bus.h"
#include "xs/http.h"
#include "xs/pg.h"
#include "xs/proc.h"

typedef struct orch {
    xs_proc proc;            /* configuration and log */
    xs_pg_pool *pool;        /* PostgreSQL */
    xs_bus_hub *hub;         /* the bus to the domain services */
    orch_replicas *replicas; /* live replicas, from heartbeats */
    xs_http_server *http;    /* the REST API */
    char **api_keys;         /* accepted bearer keys (owned) */
    size_t napi_keys;
    int64_t bus_timeout_ms;
    atomic_bool stop;
} orch;

/* Why a bus request failed. */
typedef struct orch_call_error {
    xs_err code;     /* the service's error code, or the bus's */
    bool retryable;  /* the service says the same request may succeed later */
    bool transport;  /* no reply came (no replica, time-out) */
    char field[128]; /* the request field at fault, or "" */
    char message[4200];
} orch_call_error;

/* orch_call sends a request of `type` about connection conn (NULL: none) with body (taken
 * over) to one replica of domain and waits up to XS_BUS_TIMEOUT. On success *reply is its
 * reply (new; xs_msg_free), of the type the protocol declares. Otherwise err says why. */
xs_err orch_call(orch *o, xs_domain domain, const char *type, const char *conn, json_t *body,
                 xs_msg **reply, orch_call_error *err);

/* orch_reply_call_error answers an HTTP request with the failure err describes (see
 * proto/README.md for the mapping); auth_status is the status for XS_EAUTH (401 or 409). */
void orch_reply_call_error(xs_http_req *req, const orch_call_error *err, int auth_status);

/* connections.c: the routes for connections and the OAuth callback. */
void orch_connections_authorize(xs_http_req *req, void *arg);
void orch_oauth_callback(xs_http_req *req, void *arg);
void orch_connections_list(xs_http_req *req, void *arg);
void orch_connections_get(xs_http_req *req, void *arg);
void orch_connections_check(xs_http_req *req, void *arg);
void orch_connections_delete(xs_http_req *req, void *arg);

/* orch_event_connection takes an event.connection (borrowed) from the bus. */
void orch_event_connection(orch *o, const xs_msg *m);

/* Route flags (xs_http_route.flags). */
#define ORCH_ROUTE_PUBLIC 0x1u /* no API key needed */

/* orch_api_routes returns the REST routes (static) and their count through *n. */
const xs_http_route *orch_api_routes(size_t *n);

/* orch_api_authorised is the HTTP `before` hook: it lets public routes through and otherwise
 * requires "Authorization: Bearer <key>" with one of the configured keys (401 otherwise). */
bool orch_api_authorised(xs_http_req *req, const xs_http_route *route, void *arg);

/* orch_api_keys_parse splits XS_API_KEYS (comma-separated, each at least 16 characters) into
 * o->api_keys. XS_ECONFIG with a message in err (160 bytes) when a key is too short. */
xs_err orch_api_keys_parse(orch *o, const char *text, char *err);

#endif
