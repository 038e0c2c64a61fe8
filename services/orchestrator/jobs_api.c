/*
 * jobs_api.c: the REST routes of the jobs domain. They only read: xs-jobs writes app.jobs,
 * the history and the events (services/jobs), the orchestrator's jobhooks.c delivers the
 * events to the host application's webhook. Lists page by keyset (`after`), so a page is the
 * same however many rows come meanwhile.
 */
#include "jobs_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

#define LIST_DEFAULT  100
#define LIST_MAX      1000
#define STATE_MAX_LEN 200

/* The columns of one job, as the API shows it. */
#define JOB_SELECT                                                                                 \
    "SELECT j.id, j.organisation_id, j.connection_id, j.xpm_uuid, j.number, j.name, "              \
    "j.description, j.client_uuid, j.client_name, j.contact_id, j.state, j.type, "                 \
    "j.start_date::text, j.due_date::text, j.completed_date::text, j.needs_documents, "            \
    "sync.iso(j.created_at), sync.iso(j.updated_at) FROM app.jobs j "

/* job_json builds the API form of row i of a JOB_SELECT result (new; pg is not used). */
static json_t *job_json(xs_pg *pg, const xs_pg_res *r, int i)
{
    (void)pg;
    bool needs = false;
    xs_pg_res_bool(r, i, 15, &needs);
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:{s:s?, s:s?}, s:s?, s:s, s:s?, s:s?, s:s?, s:s?, "
        "s:b, s:s, s:s}",
        "id", xs_pg_res_get(r, i, 0), "organisation_id", xs_pg_res_get(r, i, 1), "connection_id",
        xs_pg_res_get(r, i, 2), "xpm_uuid", xs_pg_res_get(r, i, 3), "number",
        xs_pg_res_get(r, i, 4), "name", xs_pg_res_get(r, i, 5), "description",
        xs_pg_res_get(r, i, 6), "client", "uuid", xs_pg_res_get(r, i, 7), "name",
        xs_pg_res_get(r, i, 8), "contact_id", xs_pg_res_get(r, i, 9), "state",
        xs_pg_res_get(r, i, 10), "type", xs_pg_res_get(r, i, 11), "start_date",
        xs_pg_res_get(r, i, 12), "due_date", xs_pg_res_get(r, i, 13), "completed_date",
        xs_pg_res_get(r, i, 14), "needs_documents", needs, "created_at", xs_pg_res_get(r, i, 16),
        "updated_at", xs_pg_res_get(r, i, 17));
}

void orch_jobs_list(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *org = NULL, *after = NULL;
    long limit = LIST_DEFAULT;
    if (!orch_arg_uuid(req, "organisation_id", &org) || !orch_arg_uuid(req, "after", &after) ||
        !orch_arg_long(req, "limit", 1, LIST_MAX, &limit)) {
        return;
    }
    const char *state = xs_http_req_query(req, "state");
    if (state != NULL && (state[0] == '\0' || strlen(state) > STATE_MAX_LEN)) {
        xs_http_reply_error(req, 400, "invalid", "state",
                            "state must be an XPM state name of 1 to %d bytes", STATE_MAX_LEN);
        return;
    }
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    char ls[24];
    snprintf(ls, sizeof(ls), "%ld", limit);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       JOB_SELECT "WHERE ($1::uuid IS NULL OR j.organisation_id = $1::uuid) AND "
                                  "($2::text IS NULL OR j.state = $2) AND ($3::uuid IS NULL OR "
                                  "(j.number, j.id) > (SELECT a.number, a.id FROM app.jobs a "
                                  "WHERE a.id = $3::uuid)) ORDER BY j.number, j.id LIMIT $4",
                       org, state, after, ls);
    json_t *items = orch_api_rows(o, req, pg, e, r, "cannot read jobs", job_json);
    if (items != NULL) {
        orch_api_list_reply(req, items, "jobs", limit, "id");
    }
}

void orch_jobs_get(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *id = NULL;
    xs_pg *pg = orch_api_open(o, req, "the job id", &id);
    if (pg == NULL) {
        return;
    }
    xs_pg_res *r = NULL, *h = NULL;
    xs_err e = xs_pg_q(pg, &r, JOB_SELECT "WHERE j.id = $1::uuid", id);
    if (e == XS_OK) {
        e = xs_pg_q(pg, &h,
                    "SELECT from_state, to_state, sync.iso(seen_at) FROM app.job_state_changes "
                    "WHERE job_id = $1::uuid ORDER BY id",
                    id);
    }
    if (e != XS_OK) {
        orch_api_db_error(o, req, pg, "cannot read the job");
    } else if (xs_pg_res_nrows(r) == 0) {
        xs_http_reply_error(req, 404, "not_found", "id", "no job %s", id);
    } else {
        json_t *job = job_json(NULL, r, 0), *hist = json_array();
        for (int i = 0; i < xs_pg_res_nrows(h); i++) {
            json_array_append_new(hist, json_pack("{s:s?, s:s, s:s}", "from_state",
                                                  xs_pg_res_get(h, i, 0), "to_state",
                                                  xs_pg_res_get(h, i, 1), "seen_at",
                                                  xs_pg_res_get(h, i, 2)));
        }
        json_object_set_new(job, "history", hist);
        xs_http_reply_json(req, 200, job);
    }
    xs_pg_res_free(r);
    xs_pg_res_free(h);
    xs_pg_pool_release(o->pool, pg);
}

/* event_json builds the API form of row i of an event query (new). */
static json_t *event_json(xs_pg *pg, const xs_pg_res *r, int i)
{
    (void)pg;
    int64_t id = 0, attempts = 0;
    xs_pg_res_int(r, i, 0, &id);
    xs_pg_res_int(r, i, 10, &attempts);
    return json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:{s:b, s:s?, s:I, s:s?}}", "id",
        (json_int_t)id, "type", xs_pg_res_get(r, i, 1), "organisation_id", xs_pg_res_get(r, i, 2),
        "connection_id", xs_pg_res_get(r, i, 3), "job_id", xs_pg_res_get(r, i, 4), "number",
        xs_pg_res_get(r, i, 5), "state", xs_pg_res_get(r, i, 6), "created_at",
        xs_pg_res_get(r, i, 7), "contact_id", xs_pg_res_get(r, i, 8), "webhook", "enabled",
        strcmp(xs_pg_res_get(r, i, 9), "t") == 0, "delivered_at", xs_pg_res_get(r, i, 11),
        "attempts", (json_int_t)attempts, "last_error", xs_pg_res_get(r, i, 12));
}

void orch_job_events_list(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *org = NULL;
    long limit = LIST_DEFAULT, after = 0;
    if (!orch_arg_uuid(req, "organisation_id", &org) ||
        !orch_arg_long(req, "after", 0, 0x7fffffffffffffffL, &after) ||
        !orch_arg_long(req, "limit", 1, LIST_MAX, &limit)) {
        return;
    }
    xs_pg *pg = orch_api_pg(o, req);
    if (pg == NULL) {
        return;
    }
    char ls[24], as[24];
    snprintf(ls, sizeof(ls), "%ld", limit);
    snprintf(as, sizeof(as), "%ld", after);
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r,
                       "SELECT e.id, e.type, e.organisation_id, e.connection_id, e.job_id, "
                       "j.number, e.state, sync.iso(e.created_at), j.contact_id, e.webhook, "
                       "e.attempts, sync.iso(e.delivered_at), e.last_error FROM app.job_events e "
                       "JOIN app.jobs j ON j.id = e.job_id WHERE ($1::uuid IS NULL OR "
                       "e.organisation_id = $1::uuid) AND e.id > $2::bigint ORDER BY e.id LIMIT "
                       "$3",
                       org, as, ls);
    json_t *items = orch_api_rows(o, req, pg, e, r, "cannot read job events", event_json);
    if (items != NULL) {
        orch_api_list_reply(req, items, "events", limit, "id");
    }
}

/* client_json builds the API form of row i of a client query (new). */
static json_t *client_json(xs_pg *pg, const xs_pg_res *r, int i)
{
    (void)pg;
    return json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s}", "uuid", xs_pg_res_get(r, i, 0),
                     "name", xs_pg_res_get(r, i, 1), "email", xs_pg_res_get(r, i, 2), "contact_id",
                     xs_pg_res_get(r, i, 3), "matched_by", xs_pg_res_get(r, i, 4),
                     "unmatched_reason", xs_pg_res_get(r, i, 5), "updated_at",
                     xs_pg_res_get(r, i, 6));
}

void orch_xpm_clients_list(xs_http_req *req, void *arg)
{
    orch *o = arg;
    const char *conn = NULL, *unmatched = xs_http_req_query(req, "unmatched");
    if (unmatched != NULL && strcmp(unmatched, "true") != 0 && strcmp(unmatched, "false") != 0) {
        xs_http_reply_error(req, 400, "invalid", "unmatched", "unmatched must be true or false");
        return;
    }
    xs_pg *pg = orch_api_open(o, req, "the connection id", &conn);
    if (pg == NULL) {
        return;
    }
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(pg, &r, "SELECT 1 FROM sync.connections WHERE id = $1::uuid", conn);
    if (e == XS_OK && xs_pg_res_nrows(r) == 0) {
        xs_http_reply_error(req, 404, "not_found", "id", "no connection %s", conn);
        xs_pg_res_free(r);
        xs_pg_pool_release(o->pool, pg);
        return;
    }
    xs_pg_res_free(r);
    r = NULL;
    if (e == XS_OK) {
        e = xs_pg_q(pg, &r,
                    "SELECT xpm_uuid, name, email, contact_id, CASE WHEN contact_id IS NOT NULL "
                    "THEN matched_by END, CASE WHEN contact_id IS NULL THEN coalesce("
                    "unmatched_reason, 'no_match') END, sync.iso(updated_at) FROM "
                    "app.xpm_clients WHERE connection_id = $1::uuid AND ($2::text IS DISTINCT "
                    "FROM 'true' OR contact_id IS NULL) ORDER BY name, xpm_uuid",
                    conn, unmatched);
    }
    json_t *items = orch_api_rows(o, req, pg, e, r, "cannot read XPM clients", client_json);
    if (items != NULL) {
        xs_http_reply_json(req, 200,
                           json_pack("{s:s, s:o}", "connection_id", conn, "clients", items));
    }
}
