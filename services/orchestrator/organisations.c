/*
 * organisations.c: the REST routes of the host application's organisations. An organisation
 * is what connects Xero tenants (POST /v1/connections/authorize names it); these routes make
 * one and read them, each with its count of connections not disconnected.
 */
#include "organisations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
#define ORG_NAME_MAX 200 /* characters */

/* The columns of one organisation, as the API shows it. */
#define ORG_SELECT                                                                                 \
    "SELECT o.id, o.name, sync.iso(o.created_at), sync.iso(o.updated_at), (SELECT count(*) FROM "  \
    "sync.connections c WHERE c.organisation_id = o.id AND c.status <> 'disconnected') FROM "      \
    "app.organisations o "

/* org_json builds the API form of row i of an ORG_SELECT result (new; pg is not used). */
static json_t *org_json(xs_pg *pg, const xs_pg_res *r, int i)
{
    (void)pg;
    int64_t n = 0;
    xs_pg_res_int(r, i, 4, &n);
    return json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", xs_pg_res_get(r, i, 0), "name",
                     xs_pg_res_get(r, i, 1), "created_at", xs_pg_res_get(r, i, 2), "updated_at",
                     xs_pg_res_get(r, i, 3), "connections", (json_int_t)n);
}

/* reply_org answers `status` with organisation id read through pg (given back here), 404 when
 * there is none. */
static void reply_org(orch *o, xs_http_req *req, xs_pg *pg, const char *id, int status)
{
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, ORG_SELECT "WHERE o.id = $1", id);
    if (e != XS_OK) {
        orch_api_db_error(o, req, pg, "cannot read the organisation");
    } else if (xs_pg_res_nrows(r) == 0) {
        xs_http_reply_error(req, 404, "not_found", "id", "no organisation %s", id);
    } else {
        xs_http_reply_json(req, status, org_json(NULL, r, 0));
    }
    xs_pg_res_free(r);
    xs_pg_pool_release(o->pool, pg);
}

/* is_space tells whether c is white space a name is trimmed of. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* name_read reads the body's name, trimmed, into out (cap bytes): false, having answered 400
 * itself, when it is missing, not a string, empty once trimmed, longer than ORG_NAME_MAX
 * characters, or holds a control character. */
static bool name_read(xs_http_req *req, const json_t *in, char *out, size_t cap)
{
    size_t len = 0;
    const char *s = xs_json_string_value(json_object_get(in, "name"), &len);
    if (s == NULL) {
        xs_http_reply_error(req, 400, "invalid", "name", "name is required: a string");
        return false;
    }
    while (len > 0 && is_space(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_space(s[len - 1])) {
        len--;
    }
    size_t chars = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            xs_http_reply_error(req, 400, "invalid", "name",
                                "name must not hold control characters");
            return false;
        }
        chars += (c & 0xC0) != 0x80; /* each UTF-8 sequence's first byte */
    }
    if (chars == 0 || chars > ORG_NAME_MAX || len >= cap) {
        xs_http_reply_error(req, 400, "invalid", "name",
                            "name must be from 1 to %d characters, white space around it aside",
                            ORG_NAME_MAX);
        return false;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

void orch_organisations_create(xs_http_req *req, void *arg)
{
    orch *o = arg;
    json_t *in = NULL;
    if (!orch_api_object(req, &in)) {
        return;
    }
    char name[ORG_NAME_MAX * 4 + 1];
    bool ok = name_read(req, in, name, sizeof(name));
    json_decref(in);
    if (!ok) {
        return;
    }
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r, "INSERT INTO app.organisations (name) VALUES ($1) RETURNING id", name) !=
        XS_OK) {
        orch_api_db_error(o, req, pg, "cannot store the organisation");
        xs_pg_pool_release(o->pool, pg);
        return;
    }
    char id[40];
    snprintf(id, sizeof(id), "%s", xs_pg_res_get(r, 0, 0));
    xs_pg_res_free(r);
    xs_log_info(o->proc.log, "organisation.created", "{s:s}", "organisation", id);
    reply_org(o, req, pg, id, 201);
}

void orch_organisations_list(xs_http_req *req, void *arg)
{
    orch *o = arg;
    long limit = LIST_DEFAULT, offset = 0;
    if (!orch_arg_long(req, "limit", 1, LIST_MAX, &limit) ||
        !orch_arg_long(req, "offset", 0, 100000000, &offset)) {
        return;
    }
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    char ls[24], os[24];
    snprintf(ls, sizeof(ls), "%ld", limit);
    snprintf(os, sizeof(os), "%ld", offset);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(
        pg, &r, ORG_SELECT "ORDER BY o.created_at DESC, o.id DESC LIMIT $1 OFFSET $2", ls, os);
    json_t *items = orch_api_rows(o, req, pg, e, r, "cannot read organisations", org_json);
    if (items != NULL) {
        xs_http_reply_json(req, 200,
                           json_pack("{s:o, s:i, s:i}", "organisations", items, "limit", (int)limit,
                                     "offset", (int)offset));
    }
}

void orch_organisations_get(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = NULL;
    xs_pg *pg = orch_api_open(o, req, "the organisation id", &id);
    if (pg != NULL) {
        reply_org(o, req, pg, id, 200);
    }
}
