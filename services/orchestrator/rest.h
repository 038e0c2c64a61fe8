/* rest.h: what every REST route shares (rest.c): a pooled database connection, the answer to
 * a failed query, the reading of the JSON body and of path and query arguments. Below every
 * module of routes. */
#ifndef ORCH_REST_H
#define ORCH_REST_H

#include <stdbool.h>

#include "orch.h"
#include "xs/http.h"
#include "xs/json.h"
#include "xs/pg.h"

/* orch_route is the type of every route's handler (an xs_http_handler: arg is the orch), so
 * that a module declares its routes in one line. */
typedef void orch_route(xs_http_req *req, void *arg);

/* orch_api_pg lends a route a pooled connection (give it back with xs_pg_pool_release),
 * answering 503 itself and returning NULL when none is free in 5 s. */
xs_pg *orch_api_pg(orch *o, xs_http_req *req);

/* orch_api_db_error logs a failed query of pg and answers 500 with `what`. */
void orch_api_db_error(orch *o, xs_http_req *req, xs_pg *pg, const char *what);

/* orch_row_json makes the API form of row i of r (new; NULL leaves the row out), reading more
 * through pg when it needs to. */
typedef json_t *orch_row_json(xs_pg *pg, const xs_pg_res *r, int i);

/* orch_api_rows ends a list route's query, whose result e and r are (r taken over), and gives
 * pg back: the array of row() of every row (new), or NULL once it has answered 500 with
 * `what` itself because the query failed. */
json_t *orch_api_rows(orch *o, xs_http_req *req, xs_pg *pg, xs_err e, xs_pg_res *r,
                      const char *what, orch_row_json *row);

/* orch_api_list_reply answers a keyset-paged list route: items (taken) under key, the limit,
 * and next_after: the last item's id_key when the page is full (the next page's `after`),
 * else null. */
void orch_api_list_reply(xs_http_req *req, json_t *items, const char *key, long limit,
                         const char *id_key);

/* orch_api_object reads the request's body as a JSON object into *in (new): false, having
 * answered 400 itself (and left *in NULL), when it is not one. */
bool orch_api_object(xs_http_req *req, json_t **in);

/* orch_param_uuid returns path parameter `name` (borrowed from req) when it is a UUID;
 * otherwise it answers 400 ("<label> must be a UUID") itself and returns NULL. */
const char *orch_param_uuid(xs_http_req *req, const char *name, const char *label);

/* orch_api_open begins a route on the record of path parameter {id}: the id (*id, borrowed
 * from req; the 400 names it `label`, as orch_param_uuid) and a pooled connection, returned
 * (give it back with xs_pg_pool_release). NULL, having answered 400 or 503 itself, when
 * either fails. */
xs_pg *orch_api_open(orch *o, xs_http_req *req, const char *label, const char **id);

/* orch_api_id_json reads path parameter {id} as a UUID (*id, borrowed from req) and then the
 * request's JSON body (*in, new): false, having answered 400 itself, when either fails. */
bool orch_api_id_json(xs_http_req *req, const char **id, json_t **in);

/* Query-string arguments of the list routes. Each answers 400 naming the argument itself and
 * returns false when the value is bad; an absent argument leaves *out as it was. */
bool orch_arg_uuid(xs_http_req *req, const char *name, const char **out);
/* orch_arg_enum: one of values (NULL-terminated). */
bool orch_arg_enum(xs_http_req *req, const char *name, const char *const *values, const char **out);
/* orch_arg_long: a whole number from lo to hi. */
bool orch_arg_long(xs_http_req *req, const char *name, long lo, long hi, long *out);

#endif
