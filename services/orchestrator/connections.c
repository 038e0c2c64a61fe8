/*
 * connections.c: the REST routes for Xero connections, fronting xs-auth. Connecting, the
 * OAuth callback, checking and disconnecting go to xs-auth over the bus; reading connections
 * is a query here (never a token: the token columns are not even selected).
 */
#include "connections.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buscall.h"
#include "rest.h"
#include "runs.h"
#include "sched.h"
#include "worker.h"
#include "xs/json.h"
#include "xs/uuid.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000

/* The columns of one connection, as the API shows it. */
static const char CONN_SELECT[] =
    "SELECT c.id, c.organisation_id, c.tenant_id, c.tenant_name, c.tenant_type, c.status, "
    "coalesce(c.last_error, g.last_error), sync.iso(CASE WHEN c.last_error IS NOT NULL THEN "
    "c.last_error_at ELSE g.last_error_at END), array_to_string(g.scopes, ' '), "
    "sync.iso(g.access_expires_at), sync.iso(g.last_refresh_at), g.status, g.refresh_count, "
    "sync.iso(c.connected_at), sync.iso(c.disconnected_at), sync.iso(c.created_at), "
    "sync.iso(c.updated_at), sync.iso(c.rate_limited_until), c.rate_limited_problem FROM "
    "sync.connections c LEFT JOIN sync.grants g ON g.id = c.grant_id ";

/* scopes_array splits space-separated scopes into a new array. */
static json_t *scopes_array(const char *s)
{
    json_t *a = json_array();
    while (s != NULL && *s != '\0') {
        while (*s == ' ') {
            s++;
        }
        size_t n = strcspn(s, " ");
        if (n > 0) {
            json_array_append_new(a, json_stringn(s, n));
        }
        s += n;
    }
    return a;
}

/* conn_json builds the API form of row i of a CONN_SELECT result (new; pg is not used). */
static json_t *conn_json(xs_pg *pg, const xs_pg_res *r, int i)
{
    (void)pg;
    json_t *grant = json_pack(
        "{s:s?, s:s?, s:s?, s:o}", "status", xs_pg_res_get(r, i, 11), "access_expires_at",
        xs_pg_res_get(r, i, 9), "last_refresh_at", xs_pg_res_get(r, i, 10), "refresh_count",
        xs_pg_res_get(r, i, 12) != NULL ? json_integer(atoll(xs_pg_res_get(r, i, 12)))
                                        : json_integer(0));
    return json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s, s:o, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, "
                     "s:s, s:s, s:o, s:s?, s:s?}",
                     "id", xs_pg_res_get(r, i, 0), "organisation_id", xs_pg_res_get(r, i, 1),
                     "tenant_id", xs_pg_res_get(r, i, 2), "tenant_name", xs_pg_res_get(r, i, 3),
                     "tenant_type", xs_pg_res_get(r, i, 4), "status", xs_pg_res_get(r, i, 5),
                     "scopes", scopes_array(xs_pg_res_get(r, i, 8)), "access_expires_at",
                     xs_pg_res_get(r, i, 9), "last_refresh_at", xs_pg_res_get(r, i, 10),
                     "last_error", xs_pg_res_get(r, i, 6), "last_error_at", xs_pg_res_get(r, i, 7),
                     "connected_at", xs_pg_res_get(r, i, 13), "disconnected_at",
                     xs_pg_res_get(r, i, 14), "created_at", xs_pg_res_get(r, i, 15), "updated_at",
                     xs_pg_res_get(r, i, 16), "grant", grant, "rate_limited_until",
                     xs_pg_res_get(r, i, 17), "rate_limited_problem", xs_pg_res_get(r, i, 18));
}

/* CONN_ID names the {id} path parameter in the answer when it is not a UUID. */
#define CONN_ID "the connection id"

/* relay sends body (taken over) as request `type` to xs-auth about connection id (NULL: none)
 * and answers 200 with the reply's body, plus the id when one is given; a failure is answered
 * as orch_reply_call_error does with auth_status. */
static void relay(orch *o, xs_http_req *req, const char *type, const char *id, json_t *body,
                  int auth_status)
{
    xs_msg *rep = orch_call_http(o, req, XS_BUS_DOMAIN_AUTH, type, id, body, auth_status);
    if (rep == NULL) {
        return;
    }
    json_t *out = json_incref(rep->body);
    xs_msg_free(rep);
    if (id != NULL) {
        json_object_set_new(out, "id", json_string(id));
    }
    xs_http_reply_json(req, 200, out);
}

void orch_connections_authorize(xs_http_req *req, void *arg)
{
    orch *o = arg;
    json_t *in = NULL;
    if (!orch_api_object(req, &in)) {
        return;
    }
    const char *org = NULL, *s = NULL;
    if (xs_json_get_str(in, "organisation_id", &org) != XS_OK || !xs_uuid_valid(org)) {
        xs_http_reply_error(req, 400, "invalid", "organisation_id",
                            "organisation_id must be the UUID of an organisation");
        goto out;
    }
    json_t *body = json_pack("{s:s}", "organisation_id", org);
    const char *names[] = {"redirect_uri", "scopes"};
    for (size_t i = 0; i < 2; i++) {
        xs_err e = xs_json_get_str(in, names[i], &s);
        if (e == XS_OK && s[0] != '\0' && strlen(s) <= 2048) {
            json_object_set_new(body, names[i], json_string(s));
        } else if (e != XS_ENOTFOUND) {
            json_decref(body);
            xs_http_reply_error(req, 400, "invalid", names[i],
                                "%s must be a non-empty string of at most 2048 bytes", names[i]);
            goto out;
        }
    }
    json_t *xpm = json_object_get(in, "xpm");
    if (xpm != NULL && !json_is_boolean(xpm)) {
        json_decref(body);
        xs_http_reply_error(req, 400, "invalid", "xpm",
                            "xpm must be true (also ask for Xero Practice Manager's scopes) or "
                            "false");
        goto out;
    }
    if (json_is_true(xpm)) {
        json_object_set_new(body, "xpm", json_true());
    }
    xs_msg *rep = orch_call_http(o, req, XS_BUS_DOMAIN_AUTH, "auth.authorize", NULL, body, 409);
    if (rep == NULL) {
        goto out;
    }
    json_t *outb = json_pack(
        "{s:O, s:O, s:O, s:O}", "authorize_url", json_object_get(rep->body, "url"),
        "state_expires_at", json_object_get(rep->body, "state_expires_at"), "redirect_uri",
        json_object_get(rep->body, "redirect_uri"), "scopes", json_object_get(rep->body, "scopes"));
    xs_msg_free(rep);
    xs_http_add_header(req, "Cache-Control", "no-store");
    xs_http_reply_json(req, 201, outb);
out:
    json_decref(in);
}

/* wants_html tells whether the request comes from a person's browser (it asks for HTML):
 * the dashboard's connect button sends the browser through Xero to the callback. */
static bool wants_html(xs_http_req *req)
{
    const char *accept = xs_http_req_header(req, "Accept");
    return accept != NULL && strstr(accept, "text/html") != NULL;
}

/* callback_to_ui completes the callback as relay does, then sends the browser back to the
 * dashboard's connections (303), saying how many tenants were connected for which
 * organisation, or why nothing was: `declined` (the person said no at Xero), `refused` (Xero
 * refused the code), `expired` (the state is unknown, expired or used), `unavailable` (xs-auth
 * or Xero could not be reached) or `failed`. body is taken over. */
static void callback_to_ui(orch *o, xs_http_req *req, json_t *body)
{
    bool declined = json_object_get(body, "error") != NULL;
    xs_msg *rep = NULL;
    orch_call_error err;
    char where[160];
    if (orch_call(o, XS_BUS_DOMAIN_AUTH, "auth.callback", NULL, body, &rep, &err) == XS_OK) {
        snprintf(where, sizeof(where), "/ui/#/connections?connected=%zu&organisation=%s",
                 json_array_size(json_object_get(rep->body, "connections")),
                 xs_json_str_or(rep->body, "organisation_id", ""));
        xs_msg_free(rep);
    } else {
        const char *why = declined                          ? "declined"
                          : err.transport || err.retryable  ? "unavailable"
                          : strcmp(err.field, "state") == 0 ? "expired"
                          : err.code == XS_EAUTH            ? "refused"
                                                            : "failed";
        xs_log_warn(o->proc.log, "oauth.callback_failed", "{s:s, s:s, s:s}", "reason", why, "code",
                    xs_err_name(err.code), "message", err.message);
        snprintf(where, sizeof(where), "/ui/#/connections?oauth_error=%s", why);
    }
    xs_http_add_header(req, "Location", where);
    xs_http_reply(req, 303, NULL, NULL, 0);
}

void orch_oauth_callback(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *state = xs_http_req_query(req, "state");
    if (state == NULL || state[0] == '\0' || strlen(state) > 512) {
        xs_http_reply_error(req, 400, "invalid", "state",
                            "the callback needs the state Xero sends back");
        return;
    }
    json_t *body = json_pack("{s:s}", "state", state);
    const char *names[] = {"code", "error", "error_description"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = xs_http_req_query(req, names[i]);
        if (v != NULL && (v[0] != '\0' || i == 2)) {
            if (strlen(v) > (i == 0 ? 4096 : i == 1 ? 256 : 1024)) {
                json_decref(body);
                xs_http_reply_error(req, 400, "invalid", names[i], "%s is too long", names[i]);
                return;
            }
            json_object_set_new(body, names[i], json_string(v));
        }
    }
    if (json_object_get(body, "code") == NULL && json_object_get(body, "error") == NULL) {
        json_decref(body);
        xs_http_reply_error(req, 400, "invalid", "code", "the callback has neither code nor error");
        return;
    }
    xs_http_add_header(req, "Cache-Control", "no-store");
    if (wants_html(req)) {
        callback_to_ui(o, req, body);
        return;
    }
    relay(o, req, "auth.callback", NULL, body, 401);
}

void orch_connections_list(xs_http_req *req, void *arg)
{
    orch *o = arg;
    static const char *const statuses[] = {"active", "needs_reauth", "disconnected", "paused",
                                           NULL};
    const char *org = NULL, *status = NULL;
    long limit = LIST_DEFAULT, offset = 0;
    if (!orch_arg_uuid(req, "organisation_id", &org) ||
        !orch_arg_enum(req, "status", statuses, &status) ||
        !orch_arg_long(req, "limit", 1, LIST_MAX, &limit) ||
        !orch_arg_long(req, "offset", 0, 100000000, &offset)) {
        return;
    }
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    char sql[2048], ls[24], os[24];
    snprintf(sql, sizeof(sql),
             "%sWHERE ($1::uuid IS NULL OR c.organisation_id = $1::uuid) AND ($2::text IS NULL "
             "OR c.status = $2) ORDER BY c.created_at, c.id LIMIT $3 OFFSET $4",
             CONN_SELECT);
    snprintf(ls, sizeof(ls), "%ld", limit);
    snprintf(os, sizeof(os), "%ld", offset);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, sql, org, status, ls, os);
    json_t *items = orch_api_rows(o, req, pg, e, r, "cannot read connections", conn_json);
    if (items != NULL) {
        xs_http_reply_json(req, 200,
                           json_pack("{s:o, s:i, s:i}", "connections", items, "limit", (int)limit,
                                     "offset", (int)offset));
    }
}

/* reply_conn answers 200 with connection id read through pg (given back here), 404 when there
 * is none. */
static void reply_conn(orch *o, xs_http_req *req, xs_pg *pg, const char *id)
{
    char sql[2048];
    snprintf(sql, sizeof(sql), "%sWHERE c.id = $1", CONN_SELECT);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, sql, id);
    xs_pg_pool_release(o->pool, pg);
    if (e != XS_OK) {
        xs_http_reply_error(req, 500, "internal", NULL, "cannot read the connection");
        return;
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        xs_http_reply_error(req, 404, "not_found", "id", "no connection %s", id);
        return;
    }
    json_t *c = conn_json(NULL, r, 0);
    xs_pg_res_free(r);
    xs_http_reply_json(req, 200, c);
}

void orch_connections_get(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = NULL;
    xs_pg *pg = orch_api_open(o, req, CONN_ID, &id);
    if (pg != NULL) {
        reply_conn(o, req, pg, id);
    }
}

/* set_paused moves connection {id} to paused (pause) or back to active: an active or paused
 * one only (409 otherwise, naming its status; 404 when none), answering 200 with it. A resume
 * drains the organisation's outbox at once, so the changes kept while paused leave now; due
 * schedules and the webhook events kept fire at their next pass, and the executors wake to
 * the steps that waited. */
static void set_paused(orch *o, xs_http_req *req, bool pause)
{
    const char *id = NULL;
    xs_pg *pg = orch_api_open(o, req, CONN_ID, &id);
    if (pg == NULL) {
        return;
    }
    const char *to = pause ? "paused" : "active";
    xs_pg_res *r = NULL;
    /* The row's status as it was (FOR UPDATE in the subquery: a concurrent change waits). */
    xs_err e = xs_pg_q(pg, &r,
                       "WITH was AS (SELECT id, status, organisation_id FROM sync.connections "
                       "WHERE id = $1 FOR UPDATE), u AS (UPDATE sync.connections c SET status = "
                       "$2 FROM was WHERE c.id = was.id AND was.status IN ('active', 'paused') "
                       "AND c.status <> $2 RETURNING c.id) SELECT was.status, "
                       "was.organisation_id FROM was",
                       id, to);
    if (e != XS_OK) {
        orch_api_db_error(o, req, pg, "cannot change the connection");
        xs_pg_res_free(r);
        xs_pg_pool_release(o->pool, pg);
        return;
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        xs_pg_pool_release(o->pool, pg);
        xs_http_reply_error(req, 404, "not_found", "id", "no connection %s", id);
        return;
    }
    const char *was = xs_pg_res_get(r, 0, 0);
    if (strcmp(was, "active") != 0 && strcmp(was, "paused") != 0) {
        xs_http_reply_error(req, 409, "conflict", "id",
                            "the connection is %s: only an active or "
                            "paused connection can be %s",
                            was, pause ? "paused" : "resumed");
        xs_pg_res_free(r);
        xs_pg_pool_release(o->pool, pg);
        return;
    }
    if (strcmp(was, to) != 0) {
        xs_log_info(o->proc.log, pause ? "connection.paused" : "connection.resumed", "{s:s}",
                    "connection", id);
    }
    if (!pause && orch_drain(o, pg, xs_pg_res_get(r, 0, 1), NULL, NULL) != XS_OK) {
        /* The realtime thread's poll drains them a moment later. */
        xs_log_warn(o->proc.log, "push.drain_failed", "{s:s, s:s}", "organisation",
                    xs_pg_res_get(r, 0, 1), "error", xs_pg_error(pg));
    }
    xs_pg_res_free(r);
    if (!pause) {
        orch_executors_wake(o);
    }
    reply_conn(o, req, pg, id);
}

void orch_connections_pause(xs_http_req *req, void *arg)
{
    set_paused(arg, req, true);
}

void orch_connections_resume(xs_http_req *req, void *arg)
{
    set_paused(arg, req, false);
}

void orch_connections_check(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = orch_param_uuid(req, "id", CONN_ID);
    if (id == NULL) {
        return;
    }
    const char *force = xs_http_req_query(req, "force_refresh");
    json_t *body = json_pack("{s:b}", "force_refresh",
                             force != NULL && (strcmp(force, "true") == 0 || force[0] == '\0'));
    relay(o, req, "auth.check", id, body, 409);
}

void orch_connections_delete(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = orch_param_uuid(req, "id", CONN_ID);
    if (id == NULL) {
        return;
    }
    const char *purge = xs_http_req_query(req, "purge");
    if (purge != NULL && strcmp(purge, "true") != 0 && strcmp(purge, "false") != 0) {
        xs_http_reply_error(req, 400, "invalid", "purge", "purge must be true or false");
        return;
    }
    /* Its runs stop first, every domain's: pending steps fail as canceled, and a step under
     * way, which may meet Xero's refusal once the tenant is gone, ends its run canceled when it
     * comes back. */
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    xs_err e = orch_runs_cancel_connection(o, pg, id);
    if (e != XS_OK) {
        orch_api_db_error(o, req, pg, "cannot cancel the connection's runs");
    }
    xs_pg_pool_release(o->pool, pg);
    if (e != XS_OK) {
        return;
    }
    json_t *body = json_pack("{s:b}", "purge", purge != NULL && strcmp(purge, "true") == 0);
    xs_msg *rep = orch_call_http(o, req, XS_BUS_DOMAIN_AUTH, "auth.disconnect", id, body, 409);
    if (rep == NULL) {
        return;
    }
    json_t *out = json_incref(rep->body);
    xs_msg_free(rep);
    json_object_set_new(out, "id", json_string(id));
    xs_http_reply_json(req, 200, out);
}

void orch_event_connection(orch *o, const xs_msg *m)
{
    xs_log_info(o->proc.log, "connection.status", "{s:s, s:s, s:s, s:s}", "connection",
                xs_json_str_or(m->body, "connection", ""), "tenant_id",
                xs_json_str_or(m->body, "tenant_id", ""), "status",
                xs_json_str_or(m->body, "status", ""), "reason",
                xs_json_str_or(m->body, "reason", ""));
}
