/* api.h: the orchestrator's REST API (api.c): the table of routes, health, the API keys and
 * the system routes. Above every module of routes. */
#ifndef ORCH_API_H
#define ORCH_API_H

#include <stdbool.h>
#include <stddef.h>

#include "orch.h"
#include "xs/err.h"
#include "xs/http.h"

/* Route flags (xs_http_route.flags). */
#define ORCH_ROUTE_PUBLIC 0x1u /* no API key needed */

/* orch_api_routes returns the REST routes (static) and their count through *n. */
const xs_http_route *orch_api_routes(size_t *n);

/* orch_api_authorised is the HTTP `before` hook: it lets public routes through and otherwise
 * requires "Authorization: Bearer <key>" with one of the configured keys (401 otherwise). */
bool orch_api_authorised(xs_http_req *req, const xs_http_route *route, void *arg);

/* orch_api_keys_parse splits XS_API_KEYS (comma-separated, each at least 16 characters) into
 * o->api_key_sums. XS_ECONFIG with a message in err (160 bytes) when a key is too short. */
xs_err orch_api_keys_parse(orch *o, const char *text, char *err);

#endif
