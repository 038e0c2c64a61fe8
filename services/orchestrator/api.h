/* api.h: the orchestrator's REST API (api.c): the table of routes, health, the API keys and
 * the system routes. Above every module of routes. */
#ifndef ORCH_API_H
#define ORCH_API_H

#include <stdbool.h>
#include <stddef.h>

#include "orch.h"
#include "xs/crypto.h"
#include "xs/err.h"
#include "xs/http.h"

/* Route flags (xs_http_route.flags). */
#define ORCH_ROUTE_PUBLIC  0x1u /* no API key needed */
#define ORCH_ROUTE_METRICS 0x2u /* a scrape-only key (XS_METRICS_KEYS) opens it too */

/* orch_api_routes returns the REST routes (static) and their count through *n. */
const xs_http_route *orch_api_routes(size_t *n);

/* orch_api_authorised is the HTTP `before` hook: it lets public routes through and otherwise
 * requires "Authorization: Bearer <key>" with one of the API keys, or for a route marked
 * ORCH_ROUTE_METRICS one of the scrape-only keys too (401 otherwise). */
bool orch_api_authorised(xs_http_req *req, const xs_http_route *route, void *arg);

/* orch_api_keys_parse splits the value of variable `var` (comma-separated keys, each at least
 * 16 characters; blanks around a key ignored) into the SHA-256 of each: *sums (new, free with
 * free()) and *n. XS_ECONFIG with a message naming var in err (160 bytes) when a key is too
 * short or, unless optional, none is given; XS_ENOMEM. */
xs_err orch_api_keys_parse(const char *var, const char *text, bool optional,
                           uint8_t (**sums)[XS_SHA256_LEN], size_t *n, char *err);

#endif
