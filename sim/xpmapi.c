/*
 * xpmapi.c: the XPM API v3.1 routes the engine reads, in the spec's shapes: every reply is
 * ResponseBaseDto's {"status":"OK"} with the route's list or record, and every error the
 * spec's ResponseErrorDto {"status":"ERROR","errorDescription":...} (an unknown route, like
 * the Accounting API's, is the gateway's plain-text 404; refusals before the request, 401,
 * 403 and 429, are the gateway's problem form, as for every Xero API).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xpmapi.h"
#include "context.h"
#include "faults.h"
#include "identity.h"
#include "limits.h"
#include "reply.h"
#include "util.h"
#include "xpm.h"

/* ------------------------------------------------------------------ routes */

typedef enum xpm_route_id {
    XR_JOB_CURRENT,
    XR_JOB_LIST,
    XR_JOB_GET,
    XR_JOB_CLIENT,
    XR_JOBSTATE_LIST,
    XR_CLIENT_LIST,
    XR_CLIENT_GET
} xpm_route_id;

/* The spec's security for the job and job-state routes, and for the client routes. */
static const char *const job_scopes[] = {"practicemanager", "practicemanager.read",
                                         "practicemanager.job", "practicemanager.job.read", NULL};
static const char *const client_scopes[] = {"practicemanager", "practicemanager.read",
                                            "practicemanager.client", "practicemanager.client.read",
                                            NULL};

typedef struct xpm_route {
    const char *path; /* after the prefix; with arg, the part before the {argument} */
    const char *arg;  /* the argument's name, or NULL */
    xpm_route_id id;
    const char *const *scopes;
} xpm_route;

static const xpm_route routes[] = {
    {"/job.api/current", NULL, XR_JOB_CURRENT, job_scopes},
    {"/job.api/list", NULL, XR_JOB_LIST, job_scopes},
    {"/job.api/get/", "jobNumber", XR_JOB_GET, job_scopes},
    {"/job.api/client/", "identifier", XR_JOB_CLIENT, job_scopes},
    {"/jobstate.api/list", NULL, XR_JOBSTATE_LIST, job_scopes},
    {"/client.api/list", NULL, XR_CLIENT_LIST, client_scopes},
    {"/client.api/get/", "identifier", XR_CLIENT_GET, client_scopes},
};

/* find_route matches rest against the routes (case-insensitively, as Xero's paths are) and
 * copies a route's argument into arg (cap bytes). NULL when none matches. */
static const xpm_route *find_route(const char *rest, char *arg, size_t cap)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(*routes); i++) {
        const xpm_route *r = &routes[i];
        size_t n = strlen(r->path);
        if (r->arg == NULL) {
            if (strcasecmp(rest, r->path) == 0) {
                return r;
            }
            continue;
        }
        const char *a = rest + n;
        if (strncasecmp(rest, r->path, n) == 0 && *a != '\0' && strchr(a, '/') == NULL &&
            strlen(a) < cap) {
            snprintf(arg, cap, "%s", a);
            return r;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ replies */

static const char not_found_text[] = "The resource you're looking for cannot be found";

/* reply_error sets the spec's ResponseErrorDto. */
static void reply_error(sim_call *c, int status, const char *desc)
{
    sim__reply_json(c, status, json_pack("{s:s,s:s}", "status", "ERROR", "errorDescription", desc));
}

/* The query parameters every route reads: detailed and fields. */
typedef struct xpm_query {
    bool detailed;
    const char *fields; /* comma-separated, or NULL: every field */
} xpm_query;

/* field_wanted tells whether key is one of the comma-separated names in fields (spaces
 * around a name ignored, case-insensitive). */
static bool field_wanted(const char *fields, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = fields; *p != '\0';) {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        const char *e = p;
        while (*e != '\0' && *e != ',') {
            e++;
        }
        const char *end = e;
        while (end > p && end[-1] == ' ') {
            end--;
        }
        if ((size_t)(end - p) == klen && strncasecmp(p, key, klen) == 0) {
            return true;
        }
        p = e;
    }
    return false;
}

/* project keeps only the fields asked for in a rendered record (o taken over and returned;
 * NULL passes through). */
static json_t *project(json_t *o, const xpm_query *q)
{
    if (o == NULL || q->fields == NULL) {
        return o;
    }
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(o, tmp, k, v)
    {
        if (!field_wanted(q->fields, k)) {
            json_object_del(o, k);
        }
    }
    return o;
}

/* reply_ok sets {"status":"OK", key: value} (value taken over; NULL: out of memory). */
static void reply_ok(sim_call *c, const char *key, json_t *value)
{
    if (value == NULL) {
        reply_error(c, 500, "An unexpected error occurred.");
        return;
    }
    json_t *o = json_pack("{s:s,s:o}", "status", "OK", key, value);
    if (o == NULL) {
        reply_error(c, 500, "An unexpected error occurred.");
        return;
    }
    sim__reply_json(c, 200, o);
}

/* ------------------------------------------------------------------ request values */

/* parse_day reads XPM's yyyyMMdd (eight digits, a real date) as that day's midnight UTC. */
static bool parse_day(const char *s, xs_time *out)
{
    if (s == NULL || strlen(s) != 8) {
        return false;
    }
    for (int i = 0; i < 8; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return false;
        }
    }
    char iso[16];
    snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2s", s, s + 4, s + 6);
    return xs_time_parse_iso(iso, out) == XS_OK;
}

/* parse_modified_since reads yyyy-MM-ddTHH:mm:ss exactly (the spec's form; UTC). */
static bool parse_modified_since(const char *s, xs_time *out)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    if (strlen(s) != sizeof(shape) - 1) {
        return false;
    }
    for (size_t i = 0; shape[i] != '\0'; i++) {
        bool ok = shape[i] == 'd' ? isdigit((unsigned char)s[i]) != 0 : s[i] == shape[i];
        if (!ok) {
            return false;
        }
    }
    return xs_time_parse_iso(s, out) == XS_OK;
}

/* ------------------------------------------------------------------ jobs */

typedef bool (*job_pick)(const sim_xpm *x, const sim_xpm_job *j, const void *arg);

/* jobs_reply answers JobListResponseDto with the jobs pick keeps, in job number order. */
static void jobs_reply(sim_call *c, const sim_xpm *x, const xpm_query *q, job_pick pick,
                       const void *arg)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < x->njobs; i++) {
        const sim_xpm_job *j = x->jobs[i];
        if (pick(x, j, arg) &&
            json_array_append_new(a, project(sim__xpm_job_json(x, j, q->detailed), q)) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    reply_ok(c, "jobs", a);
}

static bool pick_current(const sim_xpm *x, const sim_xpm_job *j, const void *arg)
{
    (void)arg;
    return !x->states[j->state].completed;
}

typedef struct day_range {
    xs_time from, until; /* created in [from, until) */
} day_range;

static bool pick_created(const sim_xpm *x, const sim_xpm_job *j, const void *arg)
{
    (void)x;
    const day_range *r = arg;
    return j->created >= r->from && j->created < r->until;
}

static bool pick_client(const sim_xpm *x, const sim_xpm_job *j, const void *arg)
{
    (void)x;
    return j->client == *(const uint32_t *)arg;
}

/* job_list serves job.api/list?from=yyyyMMdd&to=yyyyMMdd: the jobs created on those days
 * (both included, UTC), a range of at most one year, as XPM documents. */
static void job_list(sim_call *c, const sim_xpm *x, const xpm_query *q)
{
    const char *from = xs_http_req_query(c->req, "from");
    const char *to = xs_http_req_query(c->req, "to");
    day_range r;
    xs_time last;
    if (from == NULL || to == NULL) {
        reply_error(c, 400, "The from and to parameters are required (format yyyyMMdd).");
    } else if (!parse_day(from, &r.from)) {
        reply_error(c, 400, "The from parameter is not a date in the format yyyyMMdd.");
    } else if (!parse_day(to, &last)) {
        reply_error(c, 400, "The to parameter is not a date in the format yyyyMMdd.");
    } else if (last < r.from) {
        reply_error(c, 400, "The to date must not be before the from date.");
    } else {
        xs_time_fields f;
        xs_time_split(r.from, &f);
        int64_t year_later = xs_time_days_from_civil(f.year + 1, f.month, f.day) * SIM_DAY_MS;
        if (last > year_later) {
            reply_error(c, 400,
                        "The maximum date range between the from and to parameters is one year.");
            return;
        }
        r.until = last + SIM_DAY_MS;
        jobs_reply(c, x, q, pick_created, &r);
    }
}

/* ------------------------------------------------------------------ clients */

/* client_list serves client.api/list[?modifiedSince=yyyy-MM-ddTHH:mm:ss]: every client, or
 * those changed at or after that time, in creation order. */
static void client_list(sim_call *c, const sim_xpm *x, const xpm_query *q)
{
    const char *ms = xs_http_req_query(c->req, "modifiedSince");
    xs_time since = INT64_MIN;
    if (ms != NULL && !parse_modified_since(ms, &since)) {
        reply_error(c, 400,
                    "The modifiedSince parameter is not a date and time in the format "
                    "yyyy-MM-ddTHH:mm:ss.");
        return;
    }
    json_t *a = json_array();
    for (uint32_t i = 0; a != NULL && i < x->nclients; i++) {
        const sim_xpm_client *cl = x->clients[i];
        if (cl->modified >= since &&
            json_array_append_new(a, project(sim__xpm_client_json(cl, q->detailed), q)) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    reply_ok(c, "clients", a);
}

/* ------------------------------------------------------------------ the call */

/* serve answers an authorised call (tenant lock held for reading). */
static void serve(sim_call *c, const xpm_route *r, const char *arg, const sim_xpm *x)
{
    xpm_query q = {0};
    const char *d = xs_http_req_query(c->req, "detailed");
    q.detailed = d != NULL && strcasecmp(d, "true") == 0;
    q.fields = xs_http_req_query(c->req, "fields");
    uint32_t ci = 0;
    switch (r->id) {
    case XR_JOB_CURRENT:
        jobs_reply(c, x, &q, pick_current, NULL);
        break;
    case XR_JOB_LIST:
        job_list(c, x, &q);
        break;
    case XR_JOB_GET: {
        const sim_xpm_job *j = sim__xpm_job_find(x, arg);
        if (j == NULL) {
            reply_error(c, 404, "Job not found");
        } else {
            reply_ok(c, "job", project(sim__xpm_job_json(x, j, true), &q));
        }
        break;
    }
    case XR_JOB_CLIENT:
        if (sim__xpm_client_find(x, arg, &ci) == NULL) {
            reply_error(c, 404, "Client not found");
        } else {
            jobs_reply(c, x, &q, pick_client, &ci);
        }
        break;
    case XR_JOBSTATE_LIST: {
        json_t *a = json_array();
        for (uint32_t i = 0; a != NULL && i < x->nstates; i++) {
            if (json_array_append_new(a, project(sim__xpm_state_json(&x->states[i]), &q)) != 0) {
                json_decref(a);
                a = NULL;
            }
        }
        reply_ok(c, "jobStates", a);
        break;
    }
    case XR_CLIENT_LIST:
        client_list(c, x, &q);
        break;
    case XR_CLIENT_GET: {
        const sim_xpm_client *cl = sim__xpm_client_find(x, arg, NULL);
        if (cl == NULL) {
            reply_error(c, 404, "Client not found");
        } else {
            reply_ok(c, "client", project(sim__xpm_client_json(cl, true), &q));
        }
        break;
    }
    }
}

/* pre_faults carries out the faults that end a call before its request (true: the call is
 * over). */
static bool pre_faults(sim_call *c)
{
    switch (c->fault) {
    case SIM_FAULT_500:
        reply_error(c, 500, "An unexpected error occurred.");
        return true;
    case SIM_FAULT_503:
        sim__reply_header(c, "Retry-After", "5");
        sim__reply_text(c, 503, "The Xero API is temporarily unavailable. Please try again.");
        return true;
    case SIM_FAULT_REVOKED:
        sim__revoke_all(c->s);
        sim__reply_problem(c, 401, "Unauthorized", "AuthenticationUnsuccessful");
        return true;
    case SIM_FAULT_HANG:
        /* in flight at "Xero" while the client waits; server.c then closes the connection */
        sim__hang(c->s, c->set.hang_ms);
        return true;
    case SIM_FAULT_RESET:
        return true;
    case SIM_FAULT_429:
        sim__limits_fault_429(c);
        return true;
    case SIM_FAULT_APPLIED_5XX:
        return true; /* a read: nothing to apply; sim__h_xpm answers the gateway's 504 */
    default:
        return false;
    }
}

static void xpm(sim_call *c, const char *rest)
{
    char arg[256];
    const xpm_route *r = find_route(rest, arg, sizeof(arg));
    if (r == NULL) {
        sim__reply_text(c, 404, not_found_text);
        return;
    }
    snprintf(c->endpoint, sizeof(c->endpoint), "%.12s %s%s%s%s%s", c->method, SIM_XPM_PREFIX,
             r->path, r->arg ? "{" : "", r->arg ? r->arg : "", r->arg ? "}" : "");
    /* the caller (server.c) holds world_lock for reading */
    if (!sim__auth_bearer(c) || !sim__auth_tenant(c)) {
        return;
    }
    if (!sim__scope_has(c->scope, r->scopes)) {
        sim__reply_problem(c, 401, "Unauthorized", "AuthorizationUnsuccessful");
        return;
    }
    if (!sim__limits_acquire(c)) {
        return;
    }
    c->fault = sim__fault_pick(c, "", 0, true);
    if (c->fault == SIM_FAULT_NIL_ID) {
        c->fault = SIM_FAULT_NONE; /* nothing is written: no items to mark */
    }
    if (pre_faults(c)) {
        return;
    }
    sim__latency(c, "", 0);
    if (strcmp(c->method, "GET") != 0) {
        sim__reply_method_not_allowed(c);
        return;
    }
    if (c->fault == SIM_FAULT_SLOW) {
        sim__hang(c->s, c->set.hang_ms);
    }
    sim_tenant *t = c->tenant;
    pthread_rwlock_rdlock(&t->lock);
    serve(c, r, arg, t->xpm);
    pthread_rwlock_unlock(&t->lock);
}

void sim__h_xpm(sim_call *c, const char *rest)
{
    xpm(c, rest);
    if (c->fault == SIM_FAULT_APPLIED_5XX) {
        sim__reply_gateway_timeout(c);
    }
    /* on every reply, the 404 of an unknown route included */
    sim__limits_headers(c);
    sim__limits_release(c);
}
