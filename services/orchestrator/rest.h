/* rest.h: what every REST route shares (rest.c): a pooled database connection, the answer to
 * a failed query, and the reading of path and query arguments. Below every module of routes. */
#ifndef ORCH_REST_H
#define ORCH_REST_H

#include <stdbool.h>

#include "orch.h"
#include "xs/http.h"
#include "xs/pg.h"

/* orch_route is the type of every route's handler (an xs_http_handler: arg is the orch), so
 * that a module declares its routes in one line. */
typedef void orch_route(xs_http_req *req, void *arg);

/* orch_api_pg lends a route a pooled connection (give it back with xs_pg_pool_release),
 * answering 503 itself and returning NULL when none is free in 5 s. */
xs_pg *orch_api_pg(orch *o, xs_http_req *req);

/* orch_api_db_error logs a failed query of pg and answers 500 with `what`. */
void orch_api_db_error(orch *o, xs_http_req *req, xs_pg *pg, const char *what);

/* Query-string arguments of the list routes. Each answers 400 naming the argument itself and
 * returns false when the value is bad; an absent argument leaves *out as it was. */
bool orch_arg_uuid(xs_http_req *req, const char *name, const char **out);
/* orch_arg_enum: one of values (NULL-terminated). */
bool orch_arg_enum(xs_http_req *req, const char *name, const char *const *values, const char **out);
/* orch_arg_long: a whole number from lo to hi. */
bool orch_arg_long(xs_http_req *req, const char *name, long lo, long hi, long *out);

#endif
