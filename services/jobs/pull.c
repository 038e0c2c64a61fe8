/*
 * pull.c: a sync.pull of entity "job" (see jobs.h). A pull goes through stages, each one XPM
 * call or more, all within the step's permits (max_pages: one call each):
 *
 *   clients  client.api/list?modifiedSince=<mark> (every client in a full pull): each client
 *            linked to a local contact (store.c), the mark moved to when it was asked for
 *   list     a full pull only: job.api/list of the jobs created from XS_XPM_JOB_WINDOW_DAYS
 *            days before today up to today, a year at most a call (XPM's limit)
 *   current  job.api/current: every current job written; those current last time and not now
 *            are marked to be read again
 *   recheck  job.api/get/{number} for each of those, to learn its new state
 *
 * The cursor ({"stage", "full", and in the list stage "from": its next day}) says where the next
 * step of the same pull starts; a full pull is one whose first cursor has no "since" (the
 * orchestrator's full run). Each call's reply is written in its own transaction before the next
 * call, so a step retried (or a run repeated) reads and writes again what was already written,
 * which app.xpm_job_apply finds unchanged: no history and no event twice. Nothing is written to
 * XPM.
 */
#include <stdio.h>
#include <string.h>

#include "jobs.h"
#include "xs/json.h"

/* The stages of a pull, in order. */
enum { ST_CLIENTS, ST_LIST, ST_CURRENT, ST_RECHECK, ST_DONE };
static const char *const STAGES[] = {"clients", "list", "current", "recheck"};

/* What the clients mark leaves as a margin for XPM's clock and late changes (ms). */
#define MARK_MARGIN_MS 5000

#define MAX_PERMITS 100

#define DAY_MS 86400000LL
/* The days one job.api/list call covers: XPM refuses a range of more than a year. */
#define LIST_SLICE_DAYS 365

/* A pull step as it goes. */
typedef struct jobs_pull {
    xs_svc_ctx *ctx;
    step_req req;
    jobs_scope sc;
    const jobs_state *st;
    int stage;
    bool full;
    int64_t list_day; /* the list stage's next day (days since the epoch), 0: not begun */
    int64_t permits, calls;
    json_t *counts, *errors;
    json_t *events; /* the events the step made, by type (counted as job_events) */
    xs_xero_call last;
    const char *outcome; /* of a call that could not be used, or NULL */
    char message[XS_SVC_ERR_MAX];
} jobs_pull;

/* fail_scope fails the step for a grant without the XPM scope, calling nothing. */
static xs_err fail_scope(jobs_pull *p, json_t **reply)
{
    static const char msg[] =
        "the connection's grant lacks the XPM scope (practicemanager.read): re-authorise it "
        "with POST /v1/connections/authorize and \"xpm\": true";
    xs_svc_count(p->ctx, "job_pull_steps", (const char *const[]){"outcome", "failed", NULL}, 1);
    step_item_error(p->errors, NULL, NULL, msg);
    step_item_errors(p->ctx, &p->req, "job", p->errors);
    *reply = json_pack("{s:s, s:O, s:I, s:s}", "outcome", "failed", "counts", p->counts, "calls",
                       (json_int_t)0, "message", msg);
    return *reply != NULL ? XS_OK : XS_ENOMEM;
}

/* call makes one XPM read (a permit), audits it and sets p->outcome when its reply is not to
 * be used; on XS_OK with no outcome, resp holds the reply (free with xs_xero_resp_fini). */
static void call(jobs_pull *p, const xs_xpm_ask *ask, xs_xero_resp *resp)
{
    xs_xero *x = p->ctx->wstate;
    xs_err e = xs_xero_xpm_get(x, ask, resp, &p->last);
    step_audit(p->ctx, &p->req, &p->last);
    p->calls++;
    p->outcome = step_call_outcome(e, p->last.status, false);
    bool refused = e == XS_OK && xs_xero_xpm_refused(resp, p->message, sizeof(p->message));
    if (e != XS_OK) {
        snprintf(p->message, sizeof(p->message), "%s",
                 p->last.error[0] != '\0' ? p->last.error : "XPM did not answer");
    } else if (p->outcome == NULL && refused) {
        p->outcome = "failed";
    }
    if (p->last.status == 403) {
        snprintf(p->message, sizeof(p->message),
                 "XPM refused the read (403): the tenant is no longer connected, or the "
                 "connection's grant lacks the XPM scope; re-authorise it with POST "
                 "/v1/connections/authorize and \"xpm\": true");
    }
    if (p->outcome != NULL) {
        xs_xero_resp_fini(resp);
    }
}

/* valid_jobs keeps of XPM's jobs (borrowed) those with a uuid and a number (new array), each
 * other one an item error. */
static json_t *valid_jobs(jobs_pull *p, const json_t *jobs)
{
    json_t *out = json_array();
    size_t i;
    const json_t *j;
    json_array_foreach(jobs, i, j)
    {
        const char *uuid = xs_json_str_or(j, "uuid", ""), *num = xs_json_str_or(j, "id", "");
        if (uuid[0] == '\0' || strlen(uuid) > 64 || num[0] == '\0' || strlen(num) > 64) {
            char why[160];
            snprintf(why, sizeof(why), "XPM job %.64s has no uuid or number", num);
            step_item_error(p->errors, NULL, NULL, why);
            step_count(p->counts, "failed", 1);
            continue;
        }
        json_array_append(out, (json_t *)j);
    }
    return out;
}

/* write_jobs writes the jobs of member key of a reply; false (the step fails) when the database
 * did. */
static bool write_jobs(jobs_pull *p, const json_t *body, const char *key, bool current)
{
    json_t *jobs = json_object_get(body, key);
    json_t *one = NULL;
    if (json_is_object(jobs)) {
        one = json_pack("[O]", jobs);
        jobs = one;
    } else if (!json_is_array(jobs)) {
        jobs = one = json_array();
    }
    json_t *ok = valid_jobs(p, jobs);
    step_count(p->counts, "fetched", (json_int_t)json_array_size(jobs));
    xs_err e = jobs_store_jobs(p->ctx->pg, &p->sc, ok, current, p->counts, p->events);
    json_decref(ok);
    json_decref(one);
    if (e != XS_OK) {
        step_db_fail(p->ctx, e, "cannot write the jobs");
        return false;
    }
    return true;
}

/* stage_clients reads the clients changed since the mark; false when the step stops. */
static bool stage_clients(jobs_pull *p)
{
    char mark[XS_TIME_ISO_MAX] = "", next[XS_TIME_ISO_MAX];
    if (!p->full && jobs_store_clients_mark(p->ctx->pg, p->sc.conn, mark) != XS_OK) {
        step_db_fail(p->ctx, XS_EDB, "cannot read the clients' mark");
        return false;
    }
    xs_time_format_iso_seconds(xs_clock_now() - MARK_MARGIN_MS, next);
    xs_xpm_ask ask = {.what = XS_XPM_CLIENTS,
                      .bearer = p->req.bearer,
                      .tenant_id = p->req.tenant_id,
                      .modified_since = mark[0] != '\0' ? mark : NULL};
    xs_xero_resp resp;
    call(p, &ask, &resp);
    if (p->outcome != NULL) {
        return false;
    }
    json_t *clients = json_object_get(resp.json, "clients");
    if (!json_is_array(clients)) {
        clients = NULL;
    }
    json_t *none = clients == NULL ? json_array() : NULL;
    xs_err e =
        jobs_store_clients(p->ctx->pg, &p->sc, clients != NULL ? clients : none, next, p->counts);
    json_decref(none);
    xs_xero_resp_fini(&resp);
    if (e != XS_OK) {
        step_db_fail(p->ctx, e, "cannot write the clients");
        return false;
    }
    return true;
}

/* xpm_day writes day (days since the epoch) as XPM's yyyyMMdd into buf (9 bytes). */
static void xpm_day(int64_t day, char *buf)
{
    char iso[XS_TIME_ISO_MAX];
    xs_time_format_date(day * DAY_MS, iso);
    snprintf(buf, 9, "%.4s%.2s%.2s", iso, iso + 5, iso + 8);
}

/* stage_list reads the jobs created in the window (a full pull): from list_day to today, a
 * slice of at most LIST_SLICE_DAYS a call (XPM allows a year at most); *more says slices are
 * left for the next step (list_day the first). */
static bool stage_list(jobs_pull *p, bool *more)
{
    int64_t today = xs_clock_now() / DAY_MS;
    if (p->list_day == 0) {
        p->list_day = today - p->st->window_days;
    }
    while (p->list_day <= today) {
        if (p->calls >= p->permits) {
            *more = true;
            return true;
        }
        int64_t last =
            p->list_day + LIST_SLICE_DAYS - 1 < today ? p->list_day + LIST_SLICE_DAYS - 1 : today;
        char f[9], t[9];
        xpm_day(p->list_day, f);
        xpm_day(last, t);
        xs_xpm_ask ask = {.what = XS_XPM_JOBS_LIST,
                          .bearer = p->req.bearer,
                          .tenant_id = p->req.tenant_id,
                          .from = f,
                          .to = t};
        xs_xero_resp resp;
        call(p, &ask, &resp);
        if (p->outcome != NULL) {
            return false;
        }
        bool ok = write_jobs(p, resp.json, "jobs", false);
        xs_xero_resp_fini(&resp);
        if (!ok) {
            return false;
        }
        p->list_day = last + 1;
    }
    return true;
}

/* stage_current reads the current jobs. */
static bool stage_current(jobs_pull *p)
{
    xs_xpm_ask ask = {
        .what = XS_XPM_JOBS_CURRENT, .bearer = p->req.bearer, .tenant_id = p->req.tenant_id};
    xs_xero_resp resp;
    call(p, &ask, &resp);
    if (p->outcome != NULL) {
        return false;
    }
    bool ok = write_jobs(p, resp.json, "jobs", true);
    xs_xero_resp_fini(&resp);
    return ok;
}

/* stage_recheck reads again, one call each while permits last, the jobs that left the current
 * list; *more says some are still to read. */
static bool stage_recheck(jobs_pull *p, bool *more)
{
    json_t *nums = NULL;
    *more = false;
    int64_t left = p->permits - p->calls;
    if (jobs_store_rechecks(p->ctx->pg, p->sc.conn, left + 1, &nums) != XS_OK) {
        step_db_fail(p->ctx, XS_EDB, "cannot read the jobs to read again");
        return false;
    }
    bool ok = true;
    size_t i;
    json_t *n;
    json_array_foreach(nums, i, n)
    {
        if (p->calls >= p->permits) {
            *more = true;
            break;
        }
        const char *number = json_string_value(n);
        xs_xpm_ask ask = {.what = XS_XPM_JOB,
                          .bearer = p->req.bearer,
                          .tenant_id = p->req.tenant_id,
                          .number = number};
        xs_xero_resp resp;
        call(p, &ask, &resp);
        if (p->outcome != NULL && p->last.status == 404) {
            /* XPM no longer has it (deleted): its last state stays, read no more. */
            p->outcome = NULL;
            step_count(p->counts, "skipped", 1);
            if (jobs_store_recheck_drop(p->ctx->pg, p->sc.conn, number) != XS_OK) {
                step_db_fail(p->ctx, XS_EDB, "cannot mark a job read");
                ok = false;
                break;
            }
            continue;
        }
        if (p->outcome != NULL) {
            ok = false;
            break;
        }
        ok = write_jobs(p, resp.json, "job", false);
        xs_xero_resp_fini(&resp);
        if (!ok) {
            break;
        }
    }
    json_decref(nums);
    return ok;
}

/* cursor_json is the cursor of the step that goes on at stage (new). */
static json_t *cursor_json(const jobs_pull *p, int stage)
{
    json_t *c = json_pack("{s:i, s:s, s:b}", "page", 1, "stage", STAGES[stage], "full", p->full);
    if (c != NULL && stage == ST_LIST && p->list_day > 0) {
        char day[9];
        xpm_day(p->list_day, day);
        json_object_set_new(c, "from", json_string(day));
    }
    return c;
}

/* list_day_read reads a cursor's yyyyMMdd into days since the epoch; false when it is not
 * one. */
static bool list_day_read(const char *s, int64_t *day)
{
    int y, m, d;
    char tail;
    if (strlen(s) != 8 || sscanf(s, "%4d%2d%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 ||
        d < 1 || d > 31) {
        return false;
    }
    *day = xs_time_days_from_civil(y, m, d);
    return true;
}

/* pull_read decodes the request into p; false (the request failed) when it is malformed. */
static bool pull_read(jobs_pull *p, xs_svc_ctx *ctx, const xs_msg *msg)
{
    const json_t *b = msg->body;
    p->ctx = ctx;
    p->st = ctx->state;
    p->req = (step_req){.msg = msg,
                        .conn = msg->conn,
                        .org = xs_json_str_or(b, "organisation_id", NULL),
                        .tenant_id = xs_json_str_or(b, "tenant_id", NULL),
                        .bearer = xs_json_str_or(b, "access_token", NULL),
                        .run_id = xs_json_str_or(b, "run_id", NULL)};
    if (xs_json_get_int(b, "step_id", &p->req.step_id) != XS_OK) {
        p->req.step_id = 0;
    }
    snprintf(p->req.step, sizeof(p->req.step), "%lld", (long long)p->req.step_id);
    if (strcmp(xs_json_str_or(b, "entity", ""), "job") != 0) {
        xs_svc_fail_field(ctx, XS_EINVAL, "entity", "the jobs service pulls only entity job");
        return false;
    }
    if (p->req.conn == NULL || p->req.conn[0] == '\0' || p->req.org == NULL) {
        xs_svc_fail_field(ctx, XS_EINVAL, "connection", "a job pull needs its connection");
        return false;
    }
    p->permits = 1;
    xs_json_get_int(b, "max_pages", &p->permits);
    if (p->permits < 1 || p->permits > MAX_PERMITS) {
        xs_svc_fail_field(ctx, XS_EINVAL, "max_pages", "max_pages must be 1 to %d", MAX_PERMITS);
        return false;
    }
    const json_t *cur = json_object_get(b, "cursor");
    const char *stage = xs_json_str_or(cur, "stage", NULL);
    p->full = stage == NULL ? xs_json_str_or(cur, "since", NULL) == NULL
                            : json_is_true(json_object_get(cur, "full"));
    p->stage = stage == NULL ? ST_CLIENTS : -1;
    for (int i = 0; stage != NULL && i < ST_DONE; i++) {
        if (strcmp(stage, STAGES[i]) == 0) {
            p->stage = i;
        }
    }
    if (p->stage < 0) {
        xs_svc_fail_field(ctx, XS_EINVAL, "cursor.stage",
                          "stage must be clients, list, current or recheck");
        return false;
    }
    const char *from = xs_json_str_or(cur, "from", NULL);
    if (from != NULL && !list_day_read(from, &p->list_day)) {
        xs_svc_fail_field(ctx, XS_EINVAL, "cursor.from", "from must be a day as yyyyMMdd");
        return false;
    }
    const json_t *xpm = json_object_get(json_object_get(b, "settings"), "xpm");
    const char *hook = xs_json_str_or(xpm, "webhook_url", "");
    p->sc = (jobs_scope){.conn = p->req.conn,
                         .org = p->req.org,
                         .mapped = json_object_get(xpm, "needs_documents"),
                         .webhook = hook[0] != '\0'};
    return true;
}

/* pull_reply answers the step: its outcome when its first call could not be used, else done,
 * going on (next) at the stage it stopped at, or finished (resume). */
static xs_err pull_reply(jobs_pull *p, bool failed_db, json_t **reply)
{
    step_item_errors(p->ctx, &p->req, "job", p->errors);
    if (failed_db) {
        return XS_EDB;
    }
    if (p->outcome != NULL && p->calls <= 1) {
        xs_err e =
            step_outcome_reply(p->outcome, json_incref(p->counts), &p->last, p->message, reply);
        if (e == XS_OK) {
            json_object_set_new(*reply, "calls", json_integer(p->calls));
        }
        return e;
    }
    if (p->outcome != NULL && strcmp(p->outcome, "retry") != 0 &&
        strcmp(p->outcome, "token_rejected") != 0) {
        /* Refused after others were written: the step fails with XPM's reason. */
        *reply = json_pack("{s:s, s:O, s:o, s:I, s:s}", "outcome", "failed", "counts", p->counts,
                           "call", step_call_json(&p->last), "calls", (json_int_t)p->calls,
                           "message", p->message);
        return *reply != NULL ? XS_OK : XS_ENOMEM;
    }
    *reply = json_pack("{s:s, s:O, s:o, s:I}", "outcome", "done", "counts", p->counts, "call",
                       step_call_json(&p->last), "calls", (json_int_t)p->calls);
    if (*reply == NULL) {
        return XS_ENOMEM;
    }
    if (p->stage < ST_DONE) {
        /* Written up to the stage before: the next step of the pull starts there. */
        json_object_set_new(*reply, "next", cursor_json(p, p->stage));
    } else {
        char iso[XS_TIME_ISO_MAX];
        xs_time_format_iso(((xs_clock_now() - MARK_MARGIN_MS) / 1000) * 1000, iso);
        json_object_set_new(*reply, "resume", json_string(iso));
    }
    return XS_OK;
}

xs_err jobs_handle_pull(xs_svc_ctx *ctx, const xs_msg *msg, json_t **reply)
{
    jobs_pull p;
    memset(&p, 0, sizeof(p));
    if (!pull_read(&p, ctx, msg)) {
        return XS_EINVAL;
    }
    p.counts = step_counts_new(STEP_PULL_COUNTS);
    p.errors = json_array();
    p.events = json_object();
    bool scope = false;
    xs_err e = jobs_store_has_xpm_scope(ctx->pg, p.sc.conn, &scope);
    if (e != XS_OK) {
        e = step_db_fail(ctx, e, "cannot read the connection's grant");
    } else if (!scope) {
        e = fail_scope(&p, reply);
    } else {
        bool ok = true, more = false;
        while (ok && p.stage < ST_DONE && p.calls < p.permits) {
            switch (p.stage) {
            case ST_CLIENTS:
                ok = stage_clients(&p);
                break;
            case ST_LIST:
                ok = !p.full || stage_list(&p, &more);
                break;
            case ST_CURRENT:
                ok = stage_current(&p);
                break;
            default:
                ok = stage_recheck(&p, &more);
                break;
            }
            if (ok && !more) {
                p.stage++;
            }
            if (more) {
                break;
            }
        }
        const char *o = p.outcome != NULL ? p.outcome : (ok ? "done" : "error");
        xs_svc_count(ctx, "job_pull_steps", (const char *const[]){"outcome", o, NULL}, 1);
        const char *type;
        json_t *n;
        json_object_foreach(p.events, type, n)
        {
            xs_svc_count(ctx, "job_events", (const char *const[]){"type", type, NULL},
                         json_integer_value(n));
        }
        e = pull_reply(&p, !ok && p.outcome == NULL, reply);
    }
    json_decref(p.counts);
    json_decref(p.errors);
    json_decref(p.events);
    return e;
}
