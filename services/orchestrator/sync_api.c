/*
 * sync_api.c: the REST routes of syncing (docs/API.md): starting runs, reading runs and
 * statistics, conflicts and their resolution, a connection's settings, and the host
 * application's writes of local records.
 */
#include "sync_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buscall.h"
#include "engine.h"
#include "hookwatch.h"
#include "polling.h"
#include "progress.h"
#include "rest.h"
#include "runs.h"
#include "sched.h"
#include "settings.h"
#include "worker.h"
#include "xs/clock.h"
#include "xs/uuid.h"
#include "xs/json.h"
#include "engine/sync.h"

#define LIST_DEFAULT 50
#define LIST_MAX     1000

/* What a route reads of a connection (conn_row). */
typedef struct conn_state {
    char status[32];
    char org[40];
    char tenant[40];
    char limited_until[XS_TIME_ISO_MAX]; /* rate_limited_until, "" when not blocked */
    char limited_problem[16];            /* rate_limited_problem, "" with it */
} conn_state;

/* conn_row reads the connection (status, organisation, tenant, settings, rate limit) or
 * answers 404. */
static bool conn_row(orch *o, xs_http_req *req, xs_pg *pg, const char *id, conn_state *c,
                     json_t **settings)
{
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT status, organisation_id, tenant_id, settings, coalesce(last_error, ''), "
                "coalesce(sync.iso(rate_limited_until), ''), coalesce(rate_limited_problem, '') "
                "FROM sync.connections WHERE id = $1",
                id) != XS_OK) {
        orch_api_db_error(o, req, pg, "cannot read the connection");
        return false;
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        xs_http_reply_error(req, 404, "not_found", "id", "no connection %s", id);
        return false;
    }
    snprintf(c->status, sizeof(c->status), "%s", xs_pg_res_get(r, 0, 0));
    snprintf(c->org, sizeof(c->org), "%s", xs_pg_res_get(r, 0, 1));
    snprintf(c->tenant, sizeof(c->tenant), "%s", xs_pg_res_get(r, 0, 2));
    snprintf(c->limited_until, sizeof(c->limited_until), "%s", xs_pg_res_get(r, 0, 5));
    snprintf(c->limited_problem, sizeof(c->limited_problem), "%s", xs_pg_res_get(r, 0, 6));
    if (settings != NULL) {
        const char *st = xs_pg_res_get(r, 0, 3);
        *settings = xs_json_parse(st, strlen(st), NULL);
    }
    xs_pg_res_free(r);
    return true;
}

/* The columns run_row_json reads, in its order. */
#define RUN_SELECT                                                                                 \
    "SELECT id, connection_id, mode, direction, trigger, status, array_to_json(entities)::text, "  \
    "counts::text, error, sync.iso(created_at), sync.iso(started_at), sync.iso(finished_at), "     \
    "(extract(epoch FROM coalesce(finished_at, now()) - coalesce(started_at, created_at)) * "      \
    "1000)::bigint, phases::text, phase, k.rate_limited_until, k.rate_limited_problem, "           \
    "params::text, (SELECT count(*) FROM sync.api_calls a WHERE a.run_id = sync.runs.id), "        \
    "sync.iso(cancel_requested_at) FROM "                                                          \
    "sync.runs LEFT JOIN LATERAL (SELECT sync.iso(c.rate_limited_until) AS rate_limited_until, "   \
    "c.rate_limited_problem FROM sync.connections c WHERE c.id = sync.runs.connection_id AND "     \
    "sync.runs.status IN ('queued', 'running')) k ON true "

/* run_row_json makes the JSON of the run in row `row` of r (RUN_SELECT); with detail also its
 * phases, steps, item errors and failed steps (read through pg). */
static json_t *run_row_json(xs_pg *pg, const xs_pg_res *r, int row, bool detail)
{
    const char *id = xs_pg_res_get(r, row, 0);
    const char *ct = xs_pg_res_get(r, row, 7), *et = xs_pg_res_get(r, row, 6);
    json_t *raw = xs_json_parse(ct, strlen(ct), NULL);
    json_t *totals = json_object();
    const char *ent;
    json_t *dirs;
    json_object_foreach(raw, ent, dirs)
    {
        json_t *pl = json_object_get(dirs, "pull"), *ps = json_object_get(dirs, "push");
#define N(o, k) (json_integer_value(json_object_get((o), (k))))
        json_t *t = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "processed",
            N(pl, "fetched") + N(ps, "sent") + N(ps, "unchanged") + N(ps, "skipped"), "created",
            N(pl, "created") + N(ps, "created"), "updated",
            N(pl, "updated") + N(ps, "updated") + N(ps, "retired"), "unchanged",
            N(pl, "unchanged") + N(ps, "unchanged"), "failed", N(pl, "failed") + N(ps, "failed"),
            "conflicts", N(pl, "conflicts"), "skipped", N(pl, "skipped") + N(ps, "skipped"));
#undef N
        json_object_set_new(t, "pull", pl != NULL ? json_incref(pl) : json_object());
        json_object_set_new(t, "push", ps != NULL ? json_incref(ps) : json_object());
        json_object_set_new(totals, ent, t);
    }
    json_decref(raw);
    int64_t dur = 0;
    xs_pg_res_int(r, row, 12, &dur);
    json_t *out = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s?, s:s, s:s?, s:s?, s:I}", "id",
        xs_pg_res_get(r, row, 0), "connection_id", xs_pg_res_get(r, row, 1), "mode",
        xs_pg_res_get(r, row, 2), "direction", xs_pg_res_get(r, row, 3), "trigger",
        xs_pg_res_get(r, row, 4), "status", xs_pg_res_get(r, row, 5), "entities",
        xs_json_parse(et, strlen(et), NULL), "counts", totals, "error", xs_pg_res_get(r, row, 8),
        "created_at", xs_pg_res_get(r, row, 9), "started_at", xs_pg_res_get(r, row, 10),
        "finished_at", xs_pg_res_get(r, row, 11), "duration_ms", (json_int_t)dur);
    const char *cancel = xs_pg_res_get(r, row, 19);
    json_object_set_new(out, "cancel_requested_at",
                        cancel != NULL ? json_string(cancel) : json_null());
    /* A run not over whose tenant the rate budget blocks by the day limit waits for that. */
    const char *until = xs_pg_res_get(r, row, 15), *problem = xs_pg_res_get(r, row, 16);
    if (until != NULL && problem != NULL) {
        json_object_set_new(out, "waiting",
                            json_pack("{s:s, s:s, s:s}", "reason", "rate_limited", "problem",
                                      problem, "until", until));
    }
    /* How far it has come, entity by entity, and the calls to Xero it made so far. */
    const char *pt = xs_pg_res_get(r, row, 13), *mt = xs_pg_res_get(r, row, 17);
    json_t *phases = xs_json_parse(pt, strlen(pt), NULL);
    json_t *params = xs_json_parse(mt, strlen(mt), NULL);
    int64_t phase = 0, calls = 0;
    xs_pg_res_int(r, row, 14, &phase);
    xs_pg_res_int(r, row, 18, &calls);
    json_object_set_new(out, "progress",
                        orch_progress_json(phases, (int)phase, xs_pg_res_get(r, row, 5), params));
    json_object_set_new(out, "api_calls", json_integer(calls));
    json_decref(params);
    if (detail) {
        size_t i;
        json_t *ph;
        json_array_foreach(phases, i, ph)
        {
            json_object_del(ph, "ids"); /* can be thousands */
        }
        json_object_set_new(out, "phases", json_incref(phases));
        json_object_set_new(out, "phase", json_integer(phase));
        xs_pg_res *s = NULL;
        if (xs_pg_q(pg, &s,
                    "SELECT count(*), count(*) FILTER (WHERE status = 'done'), count(*) FILTER "
                    "(WHERE status = 'pending'), count(*) FILTER (WHERE status = 'running'), "
                    "count(*) FILTER (WHERE status = 'failed'), coalesce(sum(attempts), 0) FROM "
                    "sync.run_steps WHERE run_id = $1",
                    id) == XS_OK) {
            int64_t v[6] = {0};
            for (int k = 0; k < 6; k++) {
                xs_pg_res_int(s, 0, k, &v[k]);
            }
            json_object_set_new(out, "steps",
                                json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "total",
                                          (json_int_t)v[0], "done", (json_int_t)v[1], "pending",
                                          (json_int_t)v[2], "running", (json_int_t)v[3], "failed",
                                          (json_int_t)v[4], "attempts", (json_int_t)v[5]));
        }
        xs_pg_res_free(s);
        json_t *errs = json_array();
        if (xs_pg_q(pg, &s,
                    /* The record's name: the local one, found through the run's connection's
                     * mapping when the error has only the Xero id. */
                    "SELECT e.entity, e.local_id, e.xero_id, e.message, sync.iso(e.created_at), "
                    "sync.record_label(e.entity, coalesce(e.local_id, (SELECT m.local_id FROM "
                    "sync.mappings m JOIN sync.runs r ON r.connection_id = m.connection_id WHERE "
                    "r.id = e.run_id AND m.entity = e.entity AND m.xero_id = e.xero_id))) FROM "
                    "sync.run_item_errors e WHERE e.run_id = $1 ORDER BY e.id LIMIT 100",
                    id) == XS_OK) {
            for (int k = 0; k < xs_pg_res_nrows(s); k++) {
                json_array_append_new(
                    errs,
                    json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s}", "entity", xs_pg_res_get(s, k, 0),
                              "local_id", xs_pg_res_get(s, k, 1), "xero_id", xs_pg_res_get(s, k, 2),
                              "record", xs_pg_res_get(s, k, 5), "message", xs_pg_res_get(s, k, 3),
                              "at", xs_pg_res_get(s, k, 4)));
            }
        }
        xs_pg_res_free(s);
        json_object_set_new(out, "item_errors", errs);
        if (xs_pg_q(pg, &s,
                    "SELECT kind, entity, error FROM sync.run_steps WHERE run_id = $1 AND status = "
                    "'failed' ORDER BY id LIMIT 20",
                    id) == XS_OK) {
            json_t *fs = json_array();
            for (int k = 0; k < xs_pg_res_nrows(s); k++) {
                json_array_append_new(
                    fs, json_pack("{s:s, s:s, s:s?}", "kind", xs_pg_res_get(s, k, 0), "entity",
                                  xs_pg_res_get(s, k, 1), "error", xs_pg_res_get(s, k, 2)));
            }
            json_object_set_new(out, "failed_steps", fs);
        }
        xs_pg_res_free(s);
    }
    json_decref(phases);
    return out;
}

/* run_list_json makes the JSON of the run in row `row` of r as a list shows it. */
static json_t *run_list_json(xs_pg *pg, const xs_pg_res *r, int row)
{
    return run_row_json(pg, r, row, false);
}

/* run_json reads run id in the API's form (new; NULL when there is none, or on a database
 * error). */
static json_t *run_json(xs_pg *pg, const char *id, bool detail)
{
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r, RUN_SELECT "WHERE id = $1", id) != XS_OK || xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        return NULL;
    }
    json_t *out = run_row_json(pg, r, 0, detail);
    xs_pg_res_free(r);
    return out;
}

/* start_run creates a run in its own transaction and answers 202 with it. */
static void start_run(orch *o, xs_http_req *req, xs_pg *pg, const char *conn, const char *mode,
                      const json_t *entities, const json_t *ids)
{
    char run[40] = "";
    xs_err e = xs_pg_begin(pg);
    if (e == XS_OK) {
        e = orch_run_create(o, pg, conn, mode, "api", entities, ids, run);
    }
    if (e == XS_OK) {
        e = xs_pg_commit(pg);
    }
    if (e != XS_OK) {
        xs_pg_rollback(pg);
        orch_api_db_error(o, req, pg, "cannot start the run");
        return;
    }
    orch_executors_wake(o);
    json_t *r = run_json(pg, run, false);
    xs_http_add_header(req, "Location", "/v1/runs");
    xs_http_reply_json(req, 202, r);
}

/* usable answers 409 itself when the connection cannot sync now: code needs_reauth, paused
 * or conflict (disconnected). */
static bool usable(xs_http_req *req, const char *status)
{
    if (strcmp(status, "active") == 0) {
        return true;
    }
    bool reauth = strcmp(status, "needs_reauth") == 0, paused = strcmp(status, "paused") == 0;
    xs_http_reply_error(req, 409,
                        reauth   ? "needs_reauth"
                        : paused ? "paused"
                                 : "conflict",
                        "id", "the connection is %s%s", status,
                        reauth   ? ": connect it again with POST /v1/connections/authorize"
                        : paused ? ": resume it with POST /v1/connections/{id}/resume"
                                 : "");
    return false;
}

/* conn_lend lends a route a pooled connection (returned; xs_pg_pool_release) and reads
 * connection id into *c and, when settings is not NULL, *settings (new); with active, the
 * connection must also be usable now. NULL, having answered and given the database
 * connection back itself, when any of that fails. */
static xs_pg *conn_lend(orch *o, xs_http_req *req, const char *id, conn_state *c, json_t **settings,
                        bool active)
{
    xs_pg *pg = orch_api_pg(o, req);
    if (pg != NULL &&
        (!conn_row(o, req, pg, id, c, settings) || (active && !usable(req, c->status)))) {
        xs_pg_pool_release(o->pool, pg);
        pg = NULL;
    }
    return pg;
}

/* id_json_route is a route on the record of path parameter {id} with a JSON body (in,
 * borrowed); a database connection it lends goes into *lent, for with_id_json to give back. */
typedef void id_json_route(orch *o, xs_http_req *req, const char *id, json_t *in, xs_pg **lent);

/* with_id_json runs route once {id} and the body are read (answering 400 itself when either
 * is bad), then gives back what route lent and the body. */
static void with_id_json(xs_http_req *req, orch *o, id_json_route *route)
{
    const char *id = NULL;
    json_t *in = NULL;
    if (!orch_api_id_json(req, &id, &in)) {
        return;
    }
    xs_pg *pg = NULL;
    route(o, req, id, in, &pg);
    if (pg != NULL) {
        xs_pg_pool_release(o->pool, pg);
    }
    json_decref(in);
}

/* sync_start starts a run of a connection: POST /v1/connections/{id}/sync. */
static void sync_start(orch *o, xs_http_req *req, const char *id, json_t *in, xs_pg **lent)
{
    const char *mode = xs_json_str_or(in, "mode", NULL);
    json_t *entities = json_object_get(in, "entities");
    if (!json_is_object(in) || mode == NULL ||
        (strcmp(mode, "full") != 0 && strcmp(mode, "incremental") != 0 &&
         strcmp(mode, "push") != 0)) {
        xs_http_reply_error(req, 400, "invalid", "mode", "mode must be full, incremental or push");
        return;
    }
    if (entities != NULL) {
        size_t i;
        json_t *v;
        bool ok = json_is_array(entities) && json_array_size(entities) > 0;
        json_array_foreach(entities, i, v)
        {
            ok = ok && xs_entity_find(xs_json_string_value(v, NULL)) != NULL;
        }
        if (!ok) {
            xs_http_reply_error(req, 400, "invalid", "entities",
                                "entities must be a non-empty array of entity names");
            return;
        }
    }
    conn_state c;
    xs_pg *pg = *lent = conn_lend(o, req, id, &c, NULL, true);
    if (pg == NULL) {
        return;
    }
    if (strcmp(mode, "push") == 0) {
        char run[40] = "";
        if (orch_drain(o, pg, c.org, id, run) != XS_OK) {
            orch_api_db_error(o, req, pg, "cannot drain the outbox");
            return;
        }
        if (run[0] == '\0') {
            json_t *none = json_object();
            start_run(o, req, pg, id, "push", NULL, none);
            json_decref(none);
        } else {
            xs_http_reply_json(req, 202, run_json(pg, run, false));
        }
        return;
    }
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT id FROM sync.runs WHERE connection_id = $1 AND mode = $2 AND status IN "
                "('queued', 'running') LIMIT 1",
                id, mode) == XS_OK &&
        xs_pg_res_nrows(r) > 0) {
        xs_http_reply_error(req, 409, "conflict", "mode",
                            "a %s run of this connection is already "
                            "under way: %s",
                            mode, xs_pg_res_get(r, 0, 0));
        xs_pg_res_free(r);
        return;
    }
    xs_pg_res_free(r);
    start_run(o, req, pg, id, mode, entities, NULL);
}

void orch_api_sync(xs_http_req *req, void *arg)
{
    with_id_json(req, arg, sync_start);
}

/* sync_entity_start starts a run of one record: POST /v1/connections/{id}/sync/entity. */
static void sync_entity_start(orch *o, xs_http_req *req, const char *id, json_t *in, xs_pg **lent)
{
    const char *entity = xs_json_str_or(in, "entity", NULL);
    const char *lid = xs_json_str_or(in, "local_id", NULL);
    const char *xid = xs_json_str_or(in, "xero_id", NULL);
    const xs_entity_info *info = xs_entity_find(entity);
    if (info == NULL) {
        xs_http_reply_error(req, 400, "invalid", "entity", "entity must be an entity name");
        return;
    }
    if ((lid == NULL) == (xid == NULL)) {
        xs_http_reply_error(req, 400, "invalid", lid != NULL ? "xero_id" : "local_id",
                            "give exactly one of local_id and xero_id");
        return;
    }
    if (!xs_uuid_valid(lid != NULL ? lid : xid)) {
        xs_http_reply_error(req, 400, "invalid", lid != NULL ? "local_id" : "xero_id",
                            "%s must be a UUID", lid != NULL ? "local_id" : "xero_id");
        return;
    }
    if ((lid != NULL && !info->push) || (xid != NULL && !info->pull)) {
        xs_http_reply_error(req, 400, "invalid", lid != NULL ? "local_id" : "xero_id",
                            "%s records are not synced in that direction", entity);
        return;
    }
    conn_state c;
    xs_pg *pg = *lent = conn_lend(o, req, id, &c, NULL, true);
    if (pg == NULL) {
        return;
    }
    json_t *ids = json_pack("{s:s, s:s?, s:s?}", "entity", entity, "local_id", lid, "xero_id", xid);
    start_run(o, req, pg, id, "entity", NULL, ids);
    json_decref(ids);
}

void orch_api_sync_entity(xs_http_req *req, void *arg)
{
    with_id_json(req, arg, sync_entity_start);
}

/* list_args reads the query arguments the list routes share: connection_id as a UUID, status
 * as one of statuses, and limit, written into ls as text. `connection`, a name once taken for
 * connection_id, is refused rather than ignored: a list of every connection's records is not
 * what its caller meant. False once it has answered 400 itself. */
static bool list_args(xs_http_req *req, const char *const *statuses, const char **conn,
                      const char **status, char ls[16])
{
    long limit = LIST_DEFAULT;
    if (xs_http_req_query(req, "connection") != NULL) {
        xs_http_reply_error(req, 400, "invalid", "connection",
                            "connection is not an argument of this route: use connection_id");
        return false;
    }
    if (!orch_arg_uuid(req, "connection_id", conn) ||
        !orch_arg_enum(req, "status", statuses, status) ||
        !orch_arg_long(req, "limit", 1, LIST_MAX, &limit)) {
        return false;
    }
    snprintf(ls, 16, "%ld", limit);
    return true;
}

void orch_api_runs(xs_http_req *req, void *arg)
{
    orch *o = arg;
    static const char *const statuses[] = {"queued",  "running",  "succeeded", "failed",
                                           "partial", "canceled", NULL};
    const char *conn = NULL, *status = NULL;
    char ls[16];
    if (!list_args(req, statuses, &conn, &status, ls)) {
        return;
    }
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       RUN_SELECT "WHERE ($1::uuid IS NULL OR connection_id = $1::uuid) AND "
                                  "($2::text IS NULL OR status = $2) ORDER BY created_at DESC, id "
                                  "LIMIT $3",
                       conn, status, ls);
    json_t *runs = orch_api_rows(o, req, pg, e, r, "cannot list runs", run_list_json);
    if (runs != NULL) {
        xs_http_reply_json(req, 200, json_pack("{s:o}", "runs", runs));
    }
}

void orch_api_run(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = NULL;
    xs_pg *pg = orch_api_open(o, req, "id", &id);
    if (pg == NULL) {
        return;
    }
    json_t *r = run_json(pg, id, true);
    xs_pg_pool_release(o->pool, pg);
    if (r == NULL) {
        xs_http_reply_error(req, 404, "not_found", "id", "no run %s", id);
        return;
    }
    xs_http_reply_json(req, 200, r);
}

void orch_api_run_cancel(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = NULL;
    xs_pg *pg = orch_api_open(o, req, "id", &id);
    if (pg == NULL) {
        return;
    }
    bool waiting = false;
    char status[16] = "";
    orch_run_end end = {0};
    xs_err e = xs_pg_begin(pg);
    if (e == XS_OK) {
        e = orch_run_cancel(pg, id, &waiting, status, &end);
    }
    if (e == XS_OK) {
        e = xs_pg_commit(pg);
    }
    if (e != XS_OK) {
        xs_pg_rollback(pg);
        if (e == XS_ENOTFOUND) {
            xs_http_reply_error(req, 404, "not_found", "id", "no run %s", id);
        } else if (e == XS_ESTATE) {
            xs_http_reply_error(req, 409, "conflict", "id", "run %s has ended already: %s", id,
                                status);
        } else {
            orch_api_db_error(o, req, pg, "cannot cancel the run");
        }
        xs_pg_pool_release(o->pool, pg);
        return;
    }
    orch_run_end_count(o, &end);
    xs_log_info(o->proc.log, waiting ? "run.cancel_requested" : "run.canceled", "{s:s, s:s}", "run",
                id, "at", "api");
    json_t *r = run_json(pg, id, true);
    xs_pg_pool_release(o->pool, pg);
    if (r == NULL) {
        xs_http_reply_error(req, 500, "internal", NULL, "cannot read the run");
        return;
    }
    xs_http_reply_json(req, 200, r);
}

/* webhook_state is what the inbox holds of tenant's Xero webhooks (new): events received in
 * the last day, waiting, ignored, and when the last one came; NULL when it cannot be read. */
static json_t *webhook_state(xs_pg *pg, const char *tenant)
{
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT count(*) FILTER (WHERE received_at > now() - interval '1 day'), count(*) "
                "FILTER (WHERE status IN ('pending', 'processing')), count(*) FILTER (WHERE "
                "status = 'ignored' AND received_at > now() - interval '1 day'), "
                "sync.iso(max(received_at)) FROM sync.webhook_events WHERE tenant_id = $1",
                tenant) != XS_OK) {
        return NULL;
    }
    int64_t day = 0, waiting = 0, ignored = 0;
    xs_pg_res_int(r, 0, 0, &day);
    xs_pg_res_int(r, 0, 1, &waiting);
    xs_pg_res_int(r, 0, 2, &ignored);
    json_t *out = json_pack("{s:I, s:I, s:I, s:s?}", "received_last_day", (json_int_t)day,
                            "waiting", (json_int_t)waiting, "ignored_last_day", (json_int_t)ignored,
                            "last_received", xs_pg_res_get(r, 0, 3));
    xs_pg_res_free(r);
    return out;
}

/* The local records of each entity not yet sent to Xero for a connection ($1, of organisation
 * $2): changes still in the outbox (sync.changes), and those the outbox already handed to a
 * push run not over that has not sent them yet: the ids of its push phases still to come, of
 * its current phase from where its pending window starts (a window's step sends from `from`
 * on), those of pending steps of their own (requeued, or of the other kind of write), and
 * those gathered for such steps (params.again). */
static const char UNSENT_SQL[] =
    "WITH r AS (SELECT id, phase, phases, params FROM sync.runs WHERE connection_id = $1 AND "
    "status IN ('queued', 'running')), ids AS (SELECT p.v->>'entity' AS entity, i.v AS local_id "
    "FROM r, jsonb_array_elements(r.phases) WITH ORDINALITY AS p(v, n), "
    "jsonb_array_elements_text(coalesce(p.v->'ids', '[]')) AS i(v) WHERE p.v->>'op' = 'push' AND "
    "p.n - 1 > r.phase UNION SELECT s.entity, i.v FROM r JOIN sync.run_steps s ON s.run_id = "
    "r.id AND s.phase = r.phase AND s.kind = 'push' AND s.status IN ('pending', 'running'), "
    "jsonb_array_elements_text(CASE WHEN s.input ? 'from' THEN coalesce(r.phases->r.phase->'ids', "
    "'[]') ELSE coalesce(s.input->'local_ids', '[]') END) WITH ORDINALITY AS i(v, n) WHERE NOT "
    "s.input ? 'from' OR i.n - 1 >= (s.input->>'from')::bigint UNION SELECT "
    "r.phases->r.phase->>'entity', i.v FROM r, "
    "jsonb_array_elements_text(coalesce(r.params->'again'->(r.phase::text)->'ids', '[]')) AS "
    "i(v) UNION SELECT entity, local_id::text FROM sync.changes WHERE organisation_id = $2 AND "
    "processed_at IS NULL) SELECT entity, count(*) FROM ids WHERE entity IS NOT NULL GROUP BY "
    "entity";

/* waiting_state is the work of connection conn (organisation org) not done yet (new): runs
 * queued and running, their pending steps, the local changes not yet sent, and what each
 * entity has not sent into *unsent (new: entity -> count); NULL when it cannot be read. */
static json_t *waiting_state(xs_pg *pg, const char *conn, const char *org, json_t **unsent)
{
    xs_pg_res *r = NULL;
    *unsent = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT count(*) FILTER (WHERE r.status = 'queued'), count(*) FILTER (WHERE "
                "r.status = 'running'), coalesce(sum((SELECT count(*) FROM sync.run_steps s WHERE "
                "s.run_id = r.id AND s.status = 'pending')), 0) FROM sync.runs r WHERE "
                "r.connection_id = $1 AND r.status IN ('queued', 'running')",
                conn) != XS_OK) {
        return NULL;
    }
    int64_t queued = 0, running = 0, steps = 0, changes = 0;
    xs_pg_res_int(r, 0, 0, &queued);
    xs_pg_res_int(r, 0, 1, &running);
    xs_pg_res_int(r, 0, 2, &steps);
    xs_pg_res_free(r);
    if (xs_pg_q(pg, &r, UNSENT_SQL, conn, org) != XS_OK) {
        return NULL;
    }
    *unsent = json_object();
    for (int i = 0; i < xs_pg_res_nrows(r); i++) {
        int64_t n = 0;
        xs_pg_res_int(r, i, 1, &n);
        json_object_set_new(*unsent, xs_pg_res_get(r, i, 0), json_integer(n));
        changes += n;
    }
    xs_pg_res_free(r);
    return json_pack("{s:I, s:I, s:I, s:I}", "runs_queued", (json_int_t)queued, "runs_running",
                     (json_int_t)running, "steps_pending", (json_int_t)steps, "local_changes",
                     (json_int_t)changes);
}

void orch_api_stats(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = orch_param_uuid(req, "id", "id");
    conn_state c;
    json_t *settings = NULL;
    xs_pg *pg = id != NULL ? conn_lend(o, req, id, &c, &settings, false) : NULL;
    if (pg == NULL) {
        return;
    }
    json_t *unsent = NULL;
    json_t *waiting = waiting_state(pg, id, c.org, &unsent);
    if (waiting == NULL) {
        orch_api_db_error(o, req, pg, "cannot read the connection's waiting work");
        xs_pg_pool_release(o->pool, pg);
        return;
    }
    json_t *entities = json_object();
    size_t n;
    const xs_entity_info *all = xs_entities(&n);
    for (size_t i = 0; i < n; i++) {
        xs_pg_res *r = NULL;
        if (xs_pg_q(pg, &r,
                    "SELECT CASE $2 WHEN 'document' THEN (SELECT count(*) FROM "
                    "sync.document_pushes WHERE connection_id = $1 AND status = 'pushed') WHEN "
                    "'job' THEN (SELECT count(*) FROM app.jobs WHERE connection_id = $1) ELSE "
                    "(SELECT count(*) FROM sync.mappings WHERE connection_id = $1 AND entity = "
                    "$2) END, (SELECT count(*) FROM sync.conflicts WHERE connection_id = $1 "
                    "AND entity = $2 AND status = 'PENDING'), (SELECT sync.iso(max(finished_at)) "
                    "FROM sync.runs WHERE connection_id = $1 AND status = 'succeeded' AND $2 = "
                    "ANY(entities)), (SELECT sync.iso(high_water) FROM sync.cursors WHERE "
                    "connection_id = $1 AND entity = $2)",
                    id, all[i].name) != XS_OK) {
            continue;
        }
        int64_t linked = 0, conflicts = 0;
        xs_pg_res_int(r, 0, 0, &linked);
        xs_pg_res_int(r, 0, 1, &conflicts);
        int64_t pending = json_integer_value(json_object_get(unsent, all[i].name));
        json_object_set_new(entities, all[i].name,
                            json_pack("{s:I, s:I, s:s?, s:s?, s:I}", "linked", (json_int_t)linked,
                                      "conflicts_pending", (json_int_t)conflicts, "last_success",
                                      xs_pg_res_get(r, 0, 2), "high_water", xs_pg_res_get(r, 0, 3),
                                      "outbox_pending", (json_int_t)pending));
        xs_pg_res_free(r);
    }
    /* The last day's runs: how many records failed against how many were processed. */
    int64_t processed = 0, failed = 0, runs = 0, runs_failed = 0;
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r,
                "SELECT counts::text, status FROM sync.runs WHERE connection_id = $1 AND "
                "created_at > now() - interval '1 day' ORDER BY created_at DESC LIMIT 5000",
                id) == XS_OK) {
        for (int i = 0; i < xs_pg_res_nrows(r); i++) {
            const char *ct = xs_pg_res_get(r, i, 0);
            json_t *counts = xs_json_parse(ct, strlen(ct), NULL);
            const char *ent;
            json_t *dirs;
            json_object_foreach(counts, ent, dirs)
            {
                json_t *pl = json_object_get(dirs, "pull"), *ps = json_object_get(dirs, "push");
                processed += json_integer_value(json_object_get(pl, "fetched")) +
                             json_integer_value(json_object_get(ps, "sent"));
                failed += json_integer_value(json_object_get(pl, "failed")) +
                          json_integer_value(json_object_get(ps, "failed"));
            }
            json_decref(counts);
            runs++;
            runs_failed += strcmp(xs_pg_res_get(r, i, 1), "failed") == 0;
        }
    }
    xs_pg_res_free(r);
    int64_t calls = 0, calls_err = 0, calls_429 = 0;
    if (xs_pg_q(pg, &r,
                "SELECT count(*), count(*) FILTER (WHERE status IS NULL OR status >= 400), "
                "count(*) FILTER (WHERE status = 429) FROM sync.api_calls WHERE connection_id = "
                "$1 AND at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
                id) == XS_OK) {
        xs_pg_res_int(r, 0, 0, &calls);
        xs_pg_res_int(r, 0, 1, &calls_err);
        xs_pg_res_int(r, 0, 2, &calls_429);
    }
    xs_pg_res_free(r);
    json_t *hooks = webhook_state(pg, c.tenant);
    orch_hookwatch watch;
    bool watched = hooks != NULL && orch_hookwatch_read(o, pg, id, settings, &watch) == XS_OK;
    if (watched) {
        orch_hookwatch_put(&watch, hooks);
    }
    json_t *polling = orch_poll_json(o, pg, id, settings, watched ? &watch : NULL);
    json_decref(settings);
    /* The holder's budget of the tenant, whichever orchestrator is asked (engine.h). */
    json_t *budget = orch_engine_budget_json(o, pg, c.tenant);
    xs_pg_pool_release(o->pool, pg);
    char rate[32];
    /* The rate as an exact decimal with 4 places, from integers. */
    int64_t bp = processed > 0 ? (failed * 1000000 + processed / 2) / processed : 0;
    snprintf(rate, sizeof(rate), "%lld.%04lld", (long long)(bp / 1000000),
             (long long)((bp % 1000000) / 100));
    json_t *out = json_pack("{s:s, s:s, s:o, s:{s:I, s:I, s:I, s:I, s:o}, s:{s:I, s:I, s:I}, s:o}",
                            "id", id, "status", c.status, "entities", entities, "last_day", "runs",
                            (json_int_t)runs, "runs_failed", (json_int_t)runs_failed, "processed",
                            (json_int_t)processed, "failed", (json_int_t)failed, "error_rate",
                            xs_json_decimal(rate), "api_calls_today", "total", (json_int_t)calls,
                            "errors", (json_int_t)calls_err, "rate_limited", (json_int_t)calls_429,
                            "budget", budget != NULL ? budget : json_object());
    json_object_set_new(out, "webhooks", hooks != NULL ? hooks : json_object());
    json_object_set_new(out, "polling", polling != NULL ? polling : json_object());
    json_object_set_new(out, "waiting", waiting);
    json_object_set_new(out, "rate_limited_until",
                        c.limited_until[0] != '\0' ? json_string(c.limited_until) : json_null());
    json_object_set_new(out, "rate_limited_problem",
                        c.limited_problem[0] != '\0' ? json_string(c.limited_problem)
                                                     : json_null());
    json_decref(unsent);
    xs_http_reply_json(req, 200, out);
}

/* conflict_json makes the API form of the conflict in row i of r (orch_api_conflicts). */
static json_t *conflict_json(xs_pg *pg, const xs_pg_res *r, int i)
{
    (void)pg;
    json_t *v[4];
    int cols[4] = {5, 6, 7, 13};
    for (int k = 0; k < 4; k++) {
        const char *t = xs_pg_res_get(r, i, cols[k]);
        v[k] = t != NULL ? xs_json_parse(t, strlen(t), NULL) : json_null();
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:o, s:o, s:o, s:s, s:s, s:s?, s:s?, "
                     "s:s?, s:o, s:s?, s:s, s:s?}",
                     "id", xs_pg_res_get(r, i, 0), "connection_id", xs_pg_res_get(r, i, 1),
                     "entity", xs_pg_res_get(r, i, 2), "local_id", xs_pg_res_get(r, i, 3),
                     "xero_id", xs_pg_res_get(r, i, 4), "record", xs_pg_res_get(r, i, 17), "base",
                     v[0], "local", v[1], "xero", v[2], "policy", xs_pg_res_get(r, i, 8), "status",
                     xs_pg_res_get(r, i, 9), "resolution", xs_pg_res_get(r, i, 10), "resolved_by",
                     xs_pg_res_get(r, i, 11), "resolved_at", xs_pg_res_get(r, i, 12), "merged",
                     v[3], "reason", xs_pg_res_get(r, i, 14), "detected_at",
                     xs_pg_res_get(r, i, 15), "run_id", xs_pg_res_get(r, i, 16));
}

void orch_api_conflicts(xs_http_req *req, void *arg)
{
    orch *o = arg;
    static const char *const statuses[] = {"PENDING", "RESOLVED", "IGNORED", NULL};
    const char *conn = NULL, *status = NULL;
    const char *entity = xs_http_req_query(req, "entity");
    char ls[16];
    if (!list_args(req, statuses, &conn, &status, ls)) {
        return;
    }
    if (entity != NULL && xs_entity_find(entity) == NULL) {
        xs_http_reply_error(req, 400, "invalid", "entity", "unknown entity");
        return;
    }
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(
        pg, &r,
        "SELECT id, connection_id, entity, local_id, xero_id, base::text, local_version::text, "
        "xero_version::text, policy, status, resolution, resolved_by, sync.iso(resolved_at), "
        "merged_data::text, reason, sync.iso(detected_at), run_id, sync.record_label(entity, "
        "local_id) FROM sync.conflicts WHERE "
        "($1::uuid IS NULL OR connection_id = $1::uuid) AND ($2::text IS NULL OR status = $2) AND "
        "($3::text IS NULL OR entity = $3) ORDER BY detected_at DESC LIMIT $4",
        conn, status, entity, ls);
    json_t *list = orch_api_rows(o, req, pg, e, r, "cannot list conflicts", conflict_json);
    if (list != NULL) {
        xs_http_reply_json(req, 200, json_pack("{s:o}", "conflicts", list));
    }
}

/* conflict_resolve settles conflict {id}: POST /v1/conflicts/{id}/resolve. */
static void conflict_resolve(orch *o, xs_http_req *req, const char *id, json_t *in, xs_pg **lent)
{
    const char *res = xs_json_str_or(in, "resolution", NULL);
    if (!json_is_object(in) || res == NULL ||
        (strcmp(res, "KEEP_LOCAL") != 0 && strcmp(res, "KEEP_XERO") != 0 &&
         strcmp(res, "MERGED") != 0 && strcmp(res, "IGNORED") != 0)) {
        xs_http_reply_error(req, 400, "invalid", "resolution",
                            "resolution must be KEEP_LOCAL, KEEP_XERO, MERGED or IGNORED");
        return;
    }
    json_t *data = json_object_get(in, "data");
    if ((strcmp(res, "MERGED") == 0) != json_is_object(data)) {
        xs_http_reply_error(req, 400, "invalid", "data",
                            strcmp(res, "MERGED") == 0
                                ? "MERGED needs data: the record to keep on both sides"
                                : "data goes only with MERGED");
        return;
    }
    const char *by = xs_json_str_or(in, "by", "api");
    xs_pg *pg = *lent = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    xs_pg_res *r = NULL;
    if (xs_pg_q(pg, &r, "SELECT connection_id, entity FROM sync.conflicts WHERE id = $1", id) !=
        XS_OK) {
        orch_api_db_error(o, req, pg, "cannot read the conflict");
        return;
    }
    if (xs_pg_res_nrows(r) == 0) {
        xs_pg_res_free(r);
        xs_http_reply_error(req, 404, "not_found", "id", "no conflict %s", id);
        return;
    }
    char conn[40], entity[32];
    snprintf(conn, sizeof(conn), "%s", xs_pg_res_get(r, 0, 0));
    snprintf(entity, sizeof(entity), "%s", xs_pg_res_get(r, 0, 1));
    xs_pg_res_free(r);
    const xs_entity_info *info = xs_entity_find(entity);
    xs_bus_domain d = XS_BUS_DOMAIN_NONE;
    if (info == NULL || xs_bus_domain_parse(info->domain, &d) != XS_OK) {
        xs_http_reply_error(req, 409, "conflict", "id", "entity %s is not synced", entity);
        return;
    }
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "entity", entity, "conflict_id", id,
                             "resolution", res, "by", by);
    if (data != NULL) {
        json_object_set(body, "data", data);
    }
    xs_msg *rep = orch_call_http(o, req, d, "sync.resolve", conn, body, 409);
    if (rep == NULL) {
        return;
    }
    json_t *out =
        json_pack("{s:s, s:O, s:O}", "id", id, "status", json_object_get(rep->body, "status"),
                  "resolution", json_object_get(rep->body, "resolution"));
    /* What now differs from Xero's side goes there at once. */
    if (json_is_true(json_object_get(rep->body, "push"))) {
        conn_state c;
        if (conn_row(o, req, pg, conn, &c, NULL) && strcmp(c.status, "active") == 0) {
            char run[40] = "";
            if (orch_drain(o, pg, c.org, conn, run) == XS_OK && run[0] != '\0') {
                json_object_set_new(out, "run_id", json_string(run));
            }
        }
    }
    xs_msg_free(rep);
    xs_http_reply_json(req, 200, out);
}

void orch_api_conflict_resolve(xs_http_req *req, void *arg)
{
    with_id_json(req, arg, conflict_resolve);
}

void orch_api_settings_get(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = orch_param_uuid(req, "id", "id");
    conn_state c;
    json_t *settings = NULL;
    xs_pg *pg = id != NULL ? conn_lend(o, req, id, &c, &settings, false) : NULL;
    if (pg == NULL) {
        return;
    }
    xs_pg_pool_release(o->pool, pg);
    json_t *eff = json_object();
    size_t n;
    const xs_entity_info *all = xs_entities(&n);
    for (size_t i = 0; i < n; i++) {
        json_t *e = orch_settings_for_step(settings, all[i].name);
        json_object_set_new(e, "enabled",
                            json_boolean(orch_settings_entity_enabled(settings, all[i].name)));
        if (json_object_get(e, "matching") == NULL) {
            json_t *keys = json_array();
            for (size_t k = 0; all[i].match_keys != NULL && all[i].match_keys[k] != NULL; k++) {
                json_array_append_new(keys, json_string(all[i].match_keys[k]));
            }
            json_object_set_new(e, "matching", keys);
        }
        if (all[i].typed && json_object_get(e, "types") == NULL) {
            json_object_set_new(e, "types", json_null()); /* every type */
        }
        json_object_set_new(eff, all[i].name, e);
    }
    int64_t every = 0, unused = 0;
    int at = 0, unused_at = 0;
    bool inc = orch_settings_schedule(settings, "incremental", o->incremental_every_ms,
                                      o->full_at_minutes, &every, &unused_at);
    bool full = orch_settings_schedule(settings, "full", o->incremental_every_ms,
                                       o->full_at_minutes, &unused, &at);
    char hhmm[24];
    snprintf(hhmm, sizeof(hhmm), "%02d:%02d", at / 60, at % 60);
    json_t *sched =
        json_pack("{s:{s:b, s:s}, s:{s:b, s:I}}", "full", "enabled", full, "at", hhmm,
                  "incremental", "enabled", inc, "every_minutes", (json_int_t)(every / 60000));
    /* The documents' folder and XPM's settings, through their defaults. */
    char folder[160];
    snprintf(folder, sizeof(folder), "%s Uploads", o->app_name);
    const json_t *xpm = json_object_get(settings, "xpm");
    json_t *needs = json_object_get(xpm, "needs_documents");
    const char *hook = xs_json_str_or(xpm, "webhook_url", NULL);
    json_t *files = json_pack("{s:s}", "folder",
                              xs_json_str_or(json_object_get(settings, "files"), "folder", folder));
    json_t *xpm_eff = json_pack(
        "{s:b, s:o, s:s?}", "enabled", orch_settings_xpm_enabled(settings), "needs_documents",
        json_is_array(needs) ? json_incref(needs) : json_array(), "webhook_url", hook);
    if (json_object_get(xpm_eff, "webhook_url") == NULL) {
        json_object_set_new(xpm_eff, "webhook_url", json_null());
    }
    xs_http_reply_json(req, 200,
                       json_pack("{s:s, s:o, s:{s:o, s:o, s:o, s:o}}", "id", id, "settings",
                                 settings, "effective", "entities", eff, "schedule", sched, "files",
                                 files, "xpm", xpm_eff));
}

/* settings_put stores a connection's settings: PUT /v1/connections/{id}/settings. */
static void settings_put(orch *o, xs_http_req *req, const char *id, json_t *in, xs_pg **lent)
{
    char field[128] = "", why[256] = "";
    if (orch_settings_validate(in, field, why) != XS_OK) {
        xs_http_reply_error(req, 400, "invalid", field, "%s", why);
        return;
    }
    const char *hook = xs_json_str_or(json_object_get(in, "xpm"), "webhook_url", NULL);
    if (hook != NULL && o->jobhook.secret == NULL) {
        xs_http_reply_error(req, 400, "invalid", "xpm.webhook_url",
                            "xpm.webhook_url needs XS_JOB_WEBHOOK_SECRET set on the orchestrator: "
                            "job events are signed with it");
        return;
    }
    conn_state c;
    json_t *settings = NULL;
    xs_pg *pg = *lent = conn_lend(o, req, id, &c, &settings, false);
    if (pg == NULL) {
        return;
    }
    json_t *merged = orch_settings_merge(settings, in);
    char *text = xs_json_dump(merged, 0);
    xs_err e = xs_pg_q(pg, NULL, "UPDATE sync.connections SET settings = $2::jsonb WHERE id = $1",
                       id, text);
    free(text);
    if (e == XS_OK && json_object_get(in, "schedule") != NULL) {
        e = orch_schedule_reset(o, pg, id, merged);
    }
    if (e != XS_OK) {
        orch_api_db_error(o, req, pg, "cannot store the settings");
    } else {
        xs_log_info(o->proc.log, "settings.changed", "{s:s}", "connection", id);
        xs_http_reply_json(req, 200, json_pack("{s:s, s:O}", "id", id, "settings", merged));
    }
    json_decref(settings);
    json_decref(merged);
}

void orch_api_settings_put(xs_http_req *req, void *arg)
{
    with_id_json(req, arg, settings_put);
}

/* local_write sends the host application's record to the domain service of entity. */
static void local_write(orch *o, xs_http_req *req, const char *entity, const char *id)
{
    json_t *in = NULL;
    if (!orch_api_object(req, &in)) {
        return;
    }
    const char *org = xs_json_str_or(in, "organisation_id", NULL);
    if ((id == NULL || org != NULL) && !xs_uuid_valid(org)) {
        xs_http_reply_error(req, 400, "invalid", "organisation_id",
                            "organisation_id must be the UUID of an organisation");
        json_decref(in);
        return;
    }
    json_t *record = json_deep_copy(in);
    json_object_del(record, "organisation_id");
    json_object_del(record, "id");
    json_t *body =
        json_pack("{s:s, s:o, s:b}", "entity", entity, "record", record, "partial", id != NULL);
    if (org != NULL) {
        json_object_set_new(body, "organisation_id", json_string(org));
    }
    if (id != NULL) {
        json_object_set_new(body, "id", json_string(id));
    }
    json_decref(in);
    const xs_entity_info *info = xs_entity_find(entity);
    xs_bus_domain d = XS_BUS_DOMAIN_NONE;
    xs_bus_domain_parse(info->domain, &d);
    xs_msg *rep = orch_call_http(o, req, d, "local.upsert", NULL, body, 409);
    if (rep == NULL) {
        return;
    }
    bool created = json_is_true(json_object_get(rep->body, "created"));
    json_t *out = json_pack("{s:O, s:O}", "id", json_object_get(rep->body, "id"), "record",
                            json_object_get(rep->body, "record"));
    xs_msg_free(rep);
    xs_http_reply_json(req, created ? 201 : 200, out);
}

/* The host application's records the REST API writes (docs/API.md): each collection's path and
 * the entity it holds. POST on the path creates a record, PATCH on path/{id} updates one. */
static const struct local_collection {
    const char *path;
    const char *entity;
} local_collections[] = {
    {"/v1/contacts", "contact"},
    {"/v1/invoices", "invoice"},
    {"/v1/payments", "payment"},
};

/* local_entity returns the entity of the collection route pattern is on (NULL: none). */
static const char *local_entity(const char *pattern)
{
    for (size_t i = 0; i < sizeof(local_collections) / sizeof(local_collections[0]); i++) {
        size_t n = strlen(local_collections[i].path);
        if (strncmp(pattern, local_collections[i].path, n) == 0 &&
            (pattern[n] == '\0' || pattern[n] == '/')) {
            return local_collections[i].entity;
        }
    }
    return NULL;
}

void orch_api_local_write(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const xs_http_route *route = xs_http_req_route(req);
    const char *entity = route != NULL ? local_entity(route->pattern) : NULL;
    if (entity == NULL) {
        xs_log_error(o->proc.log, "api.no_local_collection", "{s:s}", "pattern",
                     route != NULL ? route->pattern : "");
        xs_http_reply_error(req, 500, "internal", NULL, "no local records on this route");
        return;
    }
    const char *id = NULL;
    if (strcmp(route->method, "PATCH") == 0 && (id = orch_param_uuid(req, "id", "id")) == NULL) {
        return;
    }
    local_write(o, req, entity, id);
}
