/* rest.c: what every REST route shares (see rest.h). */
#include "rest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

xs_pg *orch_api_pg(orch *o, xs_http_req *req)
{
    xs_pg *pg = NULL;
    if (xs_pg_pool_acquire(o->pool, 5000, &pg) != XS_OK) {
        xs_http_add_header(req, "Retry-After", "5");
        xs_http_reply_error(req, 503, "unavailable", NULL, "the database is not available");
        return NULL;
    }
    return pg;
}

void orch_api_db_error(orch *o, xs_http_req *req, xs_pg *pg, const char *what)
{
    xs_log_error(o->proc.log, "db.query_failed", "{s:s, s:s}", "what", what, "error",
                 xs_pg_error(pg));
    xs_http_reply_error(req, 500, "internal", NULL, "%s", what);
}

json_t *orch_api_rows(orch *o, xs_http_req *req, xs_pg *pg, xs_err e, xs_pg_res *r,
                      const char *what, orch_row_json *row)
{
    json_t *list = NULL;
    if (e != XS_OK) {
        orch_api_db_error(o, req, pg, what);
    } else {
        list = json_array();
        for (int i = 0; i < xs_pg_res_nrows(r); i++) {
            json_t *one = row(pg, r, i);
            if (one != NULL) {
                json_array_append_new(list, one);
            }
        }
    }
    xs_pg_res_free(r);
    xs_pg_pool_release(o->pool, pg);
    return list;
}

bool orch_api_object(xs_http_req *req, json_t **in)
{
    if (xs_http_req_json(req, in) != XS_OK) {
        return false;
    }
    if (!json_is_object(*in)) {
        xs_http_reply_error(req, 400, "invalid", NULL, "the body must be a JSON object");
        json_decref(*in);
        *in = NULL;
        return false;
    }
    return true;
}

const char *orch_param_uuid(xs_http_req *req, const char *name, const char *label)
{
    const char *id = xs_http_req_param(req, name);
    if (!xs_uuid_valid(id)) {
        xs_http_reply_error(req, 400, "invalid", name, "%s must be a UUID", label);
        return NULL;
    }
    return id;
}

xs_pg *orch_api_open(orch *o, xs_http_req *req, const char *label, const char **id)
{
    *id = orch_param_uuid(req, "id", label);
    return *id != NULL ? orch_api_pg(o, req) : NULL;
}

bool orch_api_id_json(xs_http_req *req, const char **id, json_t **in)
{
    *id = orch_param_uuid(req, "id", "id");
    return *id != NULL && xs_http_req_json(req, in) == XS_OK;
}

bool orch_arg_uuid(xs_http_req *req, const char *name, const char **out)
{
    const char *v = xs_http_req_query(req, name);
    if (v == NULL) {
        return true;
    }
    if (!xs_uuid_valid(v)) {
        xs_http_reply_error(req, 400, "invalid", name, "%s must be a UUID", name);
        return false;
    }
    *out = v;
    return true;
}

bool orch_arg_enum(xs_http_req *req, const char *name, const char *const *values, const char **out)
{
    const char *v = xs_http_req_query(req, name);
    if (v == NULL) {
        return true;
    }
    size_t n = 0;
    for (; values[n] != NULL; n++) {
        if (strcmp(v, values[n]) == 0) {
            *out = values[n];
            return true;
        }
    }
    char list[512];
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof(list); i++) {
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
                              i == 0       ? ""
                              : i + 1 == n ? " or "
                                           : ", ",
                              values[i]);
    }
    xs_http_reply_error(req, 400, "invalid", name, "%s must be %s", name, list);
    return false;
}

bool orch_arg_long(xs_http_req *req, const char *name, long lo, long hi, long *out)
{
    const char *v = xs_http_req_query(req, name);
    if (v == NULL) {
        return true;
    }
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || n < lo || n > hi) {
        xs_http_reply_error(req, 400, "invalid", name, "%s must be from %ld to %ld", name, lo, hi);
        return false;
    }
    *out = n;
    return true;
}

void orch_api_list_reply(xs_http_req *req, json_t *items, const char *key, long limit,
                         const char *id_key)
{
    json_t *last = json_array_get(items, json_array_size(items) - 1);
    json_t *next = (long)json_array_size(items) == limit && last != NULL
                       ? json_incref(json_object_get(last, id_key))
                       : json_null();
    xs_http_reply_json(
        req, 200,
        json_pack("{s:o, s:i, s:o}", key, items, "limit", (int)limit, "next_after", next));
}
