/*
 * orch.h: the orchestrator's one context, made in main and handed to its modules.
 */
#ifndef ORCH_H
#define ORCH_H

#include <stdatomic.h>
#include <stddef.h>

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
