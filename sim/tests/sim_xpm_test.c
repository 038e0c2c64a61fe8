/*
 * sim_xpm_test.c: xero-sim's Xero Practice Manager API v3.1: every route (job.api current,
 * list, get, client; jobstate.api/list; client.api list and get) in the spec's shapes, the
 * date range of job.api/list, client.api/list's modifiedSince, detailed and fields, the
 * scopes and the checks before them (token, tenant), the rate limits shared with the
 * Accounting API, injected faults on XPM paths, the /_sim/xpm control routes (all or nothing,
 * a job moved between states, reset), the XS_SIM_SEED_XPM_CLIENTS seeding, and garbage input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simtest.h"

#define XPM "/practicemanager/v3.1"

/* xpm_get calls the XPM API with t's token and tenant. */
static st_reply xpm_call(st_sim *t, const char *method, const char *path)
{
    char auth[4200], ten[80], full[8192];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t->token);
    snprintf(ten, sizeof(ten), "xero-tenant-id: %s", t->tenant);
    const char *h[] = {auth, ten, "Accept: application/json", NULL};
    snprintf(full, sizeof(full), XPM "%s", path);
    return st_req(t, method, full, NULL, h, 0);
}

static st_reply xpm_get(st_sim *t, const char *path)
{
    return xpm_call(t, "GET", path);
}

/* ctl_xpm calls /_sim/xpm<rest>?tenant=<t's tenant> and checks its status. */
static json_t *ctl_xpm(st_sim *t, const char *method, const char *rest, const char *body, long want)
{
    char path[512];
    snprintf(path, sizeof(path), "/_sim/xpm%s?tenant=%s", rest, t->tenant);
    return st_ctl(t, method, path, body, want);
}

/* error_is checks the spec's ResponseErrorDto with that status. */
static void error_is(st_reply *r, long status)
{
    assert_int_equal(r->status, status);
    assert_non_null(r->json);
    assert_string_equal(st_str(r->json, "status"), "ERROR");
    assert_true(strlen(st_str(r->json, "errorDescription")) > 0);
    assert_int_equal(json_object_size(r->json), 2);
}

/* list_of returns the reply's list under key after checking {"status":"OK", key: [...]}. */
static json_t *list_of(st_reply *r, const char *key)
{
    assert_int_equal(r->status, 200);
    assert_non_null(r->json);
    assert_string_equal(st_str(r->json, "status"), "OK");
    json_t *a = json_object_get(r->json, key);
    assert_true(json_is_array(a));
    return a;
}

/* practice starts a simulator connected with the practicemanager scope, with two clients and
 * three jobs (J000001 Planned and J000003 Completed for Ann, J000002 Review for Bob). The
 * clients' uuids go to ann and bob. */
static st_sim *practice(char ann[64], char bob[64])
{
    st_sim *t = st_start(NULL);
    st_connect_scope(t, "offline_access practicemanager");
    json_t *r =
        ctl_xpm(t, "POST", "/clients",
                "{\"clients\":[{\"name\":\"Ann Smith\",\"email\":\"ann@example.com\","
                "\"phone\":\"021 555\"},{\"name\":\"Bob Ltd\",\"email\":\"bob@example.com\"}]}",
                200);
    snprintf(ann, 64, "%s", st_str(st_path(r, "clients.0"), "uuid"));
    snprintf(bob, 64, "%s", st_str(st_path(r, "clients.1"), "uuid"));
    assert_int_equal(strlen(ann), 36);
    json_decref(r);
    char body[1024];
    snprintf(
        body, sizeof(body),
        "{\"jobs\":[{\"name\":\"Accounts 2024\",\"client\":\"%s\",\"type\":\"Annual Accounts\","
        "\"startDate\":\"2024-07-01\",\"dueDate\":\"2024-09-30\",\"budget\":1500.5},"
        "{\"name\":\"GST\",\"client\":{\"uuid\":\"%s\"},\"state\":\"review\"},"
        "{\"name\":\"Tax 2023\",\"client\":\"%s\",\"state\":\"Completed\"}]}",
        ann, bob, ann);
    r = ctl_xpm(t, "POST", "/jobs", body, 200);
    assert_string_equal(st_str(st_path(r, "jobs.0"), "id"), "J000001");
    assert_string_equal(st_str(st_path(r, "jobs.2"), "id"), "J000003");
    json_decref(r);
    return t;
}

static bool has_job(json_t *jobs, const char *number)
{
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        if (strcmp(st_str(j, "id"), number) == 0) {
            return true;
        }
    }
    return false;
}

static void test_jobs_and_states(void **state)
{
    (void)state;
    char ann[64], bob[64];
    st_sim *t = practice(ann, bob);

    st_reply r = xpm_get(t, "/jobstate.api/list");
    json_t *states = list_of(&r, "jobStates");
    const char *want[] = {"Planned", "In Progress", "Waiting on Client", "Review", "Completed"};
    assert_int_equal(json_array_size(states), 5);
    for (size_t i = 0; i < 5; i++) {
        json_t *s = json_array_get(states, i);
        assert_string_equal(st_str(s, "name"), want[i]);
        assert_int_equal(strlen(st_str(s, "uuid")), 36);
        assert_int_equal(json_object_size(s), 2);
    }
    st_reply_free(&r);

    /* current: not completed */
    r = xpm_get(t, "/job.api/current");
    json_t *jobs = list_of(&r, "jobs");
    assert_int_equal(json_array_size(jobs), 2);
    assert_true(has_job(jobs, "J000001") && has_job(jobs, "J000002"));
    json_t *j1 = json_array_get(jobs, 0);
    assert_string_equal(st_str(j1, "state"), "Planned");
    assert_string_equal(st_str(j1, "type"), "Annual Accounts");
    assert_string_equal(st_str(j1, "startDate"), "2024-07-01T00:00:00");
    assert_string_equal(st_str(j1, "dueDate"), "2024-09-30T00:00:00");
    assert_null(json_object_get(j1, "completedDate"));
    assert_true(st_money_eq(json_object_get(j1, "budget"), "1500.50"));
    assert_string_equal(st_str(st_path(j1, "client"), "uuid"), ann);
    assert_string_equal(st_str(st_path(j1, "client"), "name"), "Ann Smith");
    assert_null(json_object_get(j1, "tasks")); /* not detailed */
    assert_string_equal(st_str(json_array_get(jobs, 1), "state"), "Review");
    st_reply_free(&r);
    r = xpm_get(t, "/job.api/current?detailed=true");
    assert_true(json_is_array(st_path(list_of(&r, "jobs"), "0.tasks")));
    st_reply_free(&r);

    /* get: detailed; case-insensitive number; an unknown one is the spec's error */
    r = xpm_get(t, "/job.api/get/j000003");
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(r.json, "status"), "OK");
    json_t *job = json_object_get(r.json, "job");
    assert_string_equal(st_str(job, "id"), "J000003");
    assert_string_equal(st_str(job, "state"), "Completed");
    assert_int_equal(strlen(st_str(job, "completedDate")), 19);
    assert_true(json_is_array(json_object_get(job, "milestones")));
    assert_int_equal(strncmp(st_str(job, "webUrl"), "https://", 8), 0);
    st_reply_free(&r);
    r = xpm_get(t, "/job.api/get/J999999");
    error_is(&r, 404);
    st_reply_free(&r);

    /* client/{uuid}: every job of the client, completed ones too */
    char path[256];
    snprintf(path, sizeof(path), "/job.api/client/%s", ann);
    r = xpm_get(t, path);
    jobs = list_of(&r, "jobs");
    assert_int_equal(json_array_size(jobs), 2);
    assert_true(has_job(jobs, "J000001") && has_job(jobs, "J000003"));
    st_reply_free(&r);
    r = xpm_get(t, "/job.api/client/00000000-0000-4000-8000-000000000001");
    error_is(&r, 404);
    st_reply_free(&r);
    r = xpm_get(t, "/job.api/client/not-a-uuid");
    error_is(&r, 404);
    st_reply_free(&r);

    /* fields: only those named */
    r = xpm_get(t, "/job.api/current?fields=id,%20State");
    j1 = json_array_get(list_of(&r, "jobs"), 0);
    assert_int_equal(json_object_size(j1), 2);
    assert_string_equal(st_str(j1, "id"), "J000001");
    assert_string_equal(st_str(j1, "state"), "Planned");
    st_reply_free(&r);

    /* unknown routes are the gateway's 404; other methods 405 */
    r = xpm_get(t, "/job.api/staff/x");
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "The resource you're looking for cannot be found");
    st_reply_free(&r);
    r = xpm_get(t, "/job.api/get/");
    assert_int_equal(r.status, 404);
    st_reply_free(&r);
    r = xpm_call(t, "POST", "/job.api/current");
    assert_int_equal(r.status, 405);
    st_reply_free(&r);
    char v[64];
    r = xpm_get(t, "/JOB.API/CURRENT");
    assert_int_equal(r.status, 200);
    assert_non_null(st_header(&r, "X-MinLimit-Remaining", v, sizeof(v)));
    assert_non_null(st_header(&r, "Xero-Correlation-Id", v, sizeof(v)));
    st_reply_free(&r);
    st_stop(t);
}

/* add_created adds a job for client created at the given time. */
static void add_created(st_sim *t, const char *client, const char *number, const char *created)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"name\":\"Job %s\",\"client\":\"%s\",\"created\":\"%s\"}", number,
             number, client, created);
    json_decref(ctl_xpm(t, "POST", "/jobs", body, 200));
}

static size_t listed(st_sim *t, const char *query, const char *expect_first)
{
    char path[256];
    snprintf(path, sizeof(path), "/job.api/list?%s", query);
    st_reply r = xpm_get(t, path);
    json_t *jobs = list_of(&r, "jobs");
    size_t n = json_array_size(jobs);
    if (expect_first != NULL) {
        assert_string_equal(st_str(json_array_get(jobs, 0), "id"), expect_first);
    }
    st_reply_free(&r);
    return n;
}

static void test_job_list_date_range(void **state)
{
    (void)state;
    char ann[64], bob[64];
    st_sim *t = practice(ann, bob);
    add_created(t, ann, "A-1", "2024-03-01T00:00:00Z");
    add_created(t, ann, "A-2", "2024-03-01T23:59:59Z");
    add_created(t, bob, "A-3", "2024-03-02T08:00:00Z");
    add_created(t, bob, "A-4", "2025-03-02T08:00:00Z");

    /* by creation day, both ends included, completed jobs too */
    assert_int_equal(listed(t, "from=20240301&to=20240301", "A-1"), 2);
    assert_int_equal(listed(t, "from=20240301&to=20240302", "A-1"), 3);
    assert_int_equal(listed(t, "from=20240302&to=20240302", "A-3"), 1);
    assert_int_equal(listed(t, "from=20240201&to=20240229", NULL), 0);
    /* at most one year: from 2024-03-02 to 2025-03-02 is one */
    assert_int_equal(listed(t, "from=20240302&to=20250302", "A-3"), 2);

    const char *bad[] = {"to=20240301",
                         "from=20240301",
                         "",
                         "from=2024-03-01&to=20240302",
                         "from=20240301&to=2024030",
                         "from=20240231&to=20240301",
                         "from=20241301&to=20241302",
                         "from=2024030x&to=20240302",
                         "from=20240302&to=20240301",
                         "from=20240301&to=20250302",
                         "from=&to=",
                         NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        char path[256];
        snprintf(path, sizeof(path), "/job.api/list?%s", bad[i]);
        st_reply r = xpm_get(t, path);
        error_is(&r, 400);
        st_reply_free(&r);
    }
    st_stop(t);
}

static void test_clients_and_modified_since(void **state)
{
    (void)state;
    char ann[64], bob[64];
    st_sim *t = practice(ann, bob);
    st_reply r = xpm_get(t, "/client.api/list");
    json_t *cl = list_of(&r, "clients");
    assert_int_equal(json_array_size(cl), 2);
    json_t *a = json_array_get(cl, 0);
    assert_string_equal(st_str(a, "uuid"), ann);
    assert_string_equal(st_str(a, "name"), "Ann Smith");
    assert_string_equal(st_str(a, "email"), "ann@example.com");
    assert_string_equal(st_str(a, "phone"), "021 555");
    assert_string_equal(st_str(a, "isArchived"), "No");
    assert_null(json_object_get(a, "notes"));
    st_reply_free(&r);
    r = xpm_get(t, "/client.api/list?detailed=true");
    assert_true(json_is_array(st_path(list_of(&r, "clients"), "0.relationships")));
    st_reply_free(&r);

    char path[256];
    snprintf(path, sizeof(path), "/client.api/get/%s", bob);
    r = xpm_get(t, path);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(st_path(r.json, "client"), "name"), "Bob Ltd");
    assert_true(json_is_array(st_path(r.json, "client.contacts")));
    st_reply_free(&r);
    r = xpm_get(t, "/client.api/get/00000000-0000-4000-8000-000000000001");
    error_is(&r, 404);
    st_reply_free(&r);

    /* modifiedSince: changed at or after the time (UTC) */
    json_t *clk = st_ctl(t, "POST", "/_sim/clock", "{\"advance_ms\":120000}", 200);
    char since[32];
    snprintf(since, sizeof(since), "%.19s", st_str(clk, "now"));
    json_decref(clk);
    json_decref(ctl_xpm(t, "POST", "/clients", "{\"name\":\"Carol\"}", 200));
    snprintf(path, sizeof(path), "/client.api/list?modifiedSince=%s", since);
    r = xpm_get(t, path);
    cl = list_of(&r, "clients");
    assert_int_equal(json_array_size(cl), 1);
    assert_string_equal(st_str(json_array_get(cl, 0), "name"), "Carol");
    st_reply_free(&r);
    /* Ann changes in XPM: she is modified again */
    char rest[128];
    snprintf(rest, sizeof(rest), "/clients/%s", ann);
    json_t *ch =
        ctl_xpm(t, "POST", rest, "{\"email\":\"ann@new.example.com\",\"isArchived\":true}", 200);
    assert_string_equal(st_str(st_path(ch, "client"), "isArchived"), "Yes");
    assert_string_equal(st_str(st_path(ch, "client"), "name"), "Ann Smith");
    json_decref(ch);
    r = xpm_get(t, path);
    cl = list_of(&r, "clients");
    assert_int_equal(json_array_size(cl), 2);
    assert_string_equal(st_str(json_array_get(cl, 0), "email"), "ann@new.example.com");
    st_reply_free(&r);
    r = xpm_get(t, "/client.api/list?modifiedSince=2099-01-01T00:00:00");
    assert_int_equal(json_array_size(list_of(&r, "clients")), 0);
    st_reply_free(&r);

    const char *bad[] = {"2024-01-01",
                         "2024-01-01T00:00",
                         "2024-01-01 00:00:00",
                         "2024-13-01T00:00:00",
                         "2024-01-01T00:00:00Z",
                         "yesterday",
                         "",
                         NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        char q[256], enc[128] = "";
        st_urlenc(enc, sizeof(enc), bad[i]);
        snprintf(q, sizeof(q), "/client.api/list?modifiedSince=%s", enc);
        r = xpm_get(t, q);
        error_is(&r, 400);
        st_reply_free(&r);
    }
    st_stop(t);
}

/* status_with calls path with a token for scope. */
static long status_with(st_sim *t, const char *scope, const char *path)
{
    st_connect_scope(t, scope);
    st_reply r = xpm_get(t, path);
    long st = r.status;
    if (st == 401) {
        assert_string_equal(st_str(r.json, "Detail"), "AuthorizationUnsuccessful");
    }
    st_reply_free(&r);
    return st;
}

static void test_scopes_and_order(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    const char *jobs = "/job.api/current", *clients = "/client.api/list";
    const char *states = "/jobstate.api/list";
    assert_int_equal(status_with(t, "offline_access accounting.contacts", jobs), 401);
    assert_int_equal(status_with(t, "practicemanager.job.read", jobs), 200);
    assert_int_equal(status_with(t, "practicemanager.job.read", states), 200);
    assert_int_equal(status_with(t, "practicemanager.job.read", clients), 401);
    assert_int_equal(status_with(t, "practicemanager.job", jobs), 200);
    assert_int_equal(status_with(t, "practicemanager.client.read", clients), 200);
    assert_int_equal(status_with(t, "practicemanager.client", clients), 200);
    assert_int_equal(status_with(t, "practicemanager.client", jobs), 401);
    assert_int_equal(status_with(t, "practicemanager.read", jobs), 200);
    assert_int_equal(status_with(t, "practicemanager.read", clients), 200);
    assert_int_equal(status_with(t, "practicemanager", clients), 200);

    /* the token first, then the tenant */
    char good[64];
    snprintf(good, sizeof(good), "%s", t->tenant);
    snprintf(t->tenant, sizeof(t->tenant), "00000000-0000-4000-8000-000000000009");
    st_reply r = xpm_get(t, jobs);
    assert_int_equal(r.status, 403);
    assert_string_equal(st_str(r.json, "Detail"), "AuthenticationUnsuccessful");
    st_reply_free(&r);
    snprintf(t->token, sizeof(t->token), "not-a-token");
    r = xpm_get(t, jobs);
    assert_int_equal(r.status, 401);
    st_reply_free(&r);
    snprintf(t->tenant, sizeof(t->tenant), "%s", good);
    r = xpm_get(t, jobs);
    assert_int_equal(r.status, 401);
    st_reply_free(&r);
    /* the consent page says what the XPM scopes allow */
    char q[512];
    snprintf(
        q, sizeof(q),
        "/identity/connect/authorize?response_type=code&client_id=xero-sim-client&"
        "redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A9%%2Fcallback&scope=practicemanager.job.read&"
        "state=s");
    const char *h[] = {"Accept: text/html", NULL};
    r = st_req(t, "GET", q, NULL, h, 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "View your Practice Manager job data"));
    st_reply_free(&r);
    st_stop(t);
}

static void test_limits_and_faults(void **state)
{
    (void)state;
    st_sim *t = st_start(NULL);
    t->fresh = true;
    st_connect_scope(t, "offline_access accounting.settings practicemanager.read");
    /* the same per-tenant minute counter as the Accounting API */
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"limits\":{\"minute\":2}}", 200));
    st_reply r = st_api(t, "GET", "/Accounts", NULL, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = xpm_get(t, "/jobstate.api/list");
    assert_int_equal(r.status, 200);
    char v[64];
    assert_string_equal(st_header(&r, "X-MinLimit-Remaining", v, sizeof(v)), "0");
    st_reply_free(&r);
    r = xpm_get(t, "/jobstate.api/list");
    assert_int_equal(r.status, 429);
    assert_string_equal(st_header(&r, "X-Rate-Limit-Problem", v, sizeof(v)), "minute");
    assert_non_null(st_header(&r, "Retry-After", v, sizeof(v)));
    st_reply_free(&r);
    r = st_api(t, "GET", "/Accounts", NULL, NULL);
    assert_int_equal(r.status, 429);
    st_reply_free(&r);
    json_decref(st_ctl(t, "POST", "/_sim/config", "{\"limits\":{\"minute\":1000000}}", 200));

    /* scripted faults on XPM paths */
    json_decref(st_ctl(t, "POST", "/_sim/faults",
                       "{\"script\":[{\"path\":\"" XPM "/job.api\",\"fault\":\"500\",\"times\":1},"
                       "{\"path\":\"" XPM "/client.api\",\"fault\":\"503\",\"times\":1},"
                       "{\"path\":\"" XPM "/jobstate.api\",\"fault\":\"applied_5xx\",\"times\":1},"
                       "{\"path\":\"" XPM "/job.api\",\"fault\":\"reset\",\"times\":1},"
                       "{\"path\":\"" XPM "/job.api\",\"fault\":\"429\",\"times\":1}]}",
                       200));
    r = xpm_get(t, "/job.api/current");
    error_is(&r, 500);
    st_reply_free(&r);
    r = xpm_get(t, "/client.api/list");
    assert_int_equal(r.status, 503);
    assert_non_null(st_header(&r, "Retry-After", v, sizeof(v)));
    st_reply_free(&r);
    r = xpm_get(t, "/jobstate.api/list");
    assert_int_equal(r.status, 504);
    assert_int_equal((int)json_integer_value(json_object_get(r.json, "Status")), 504);
    st_reply_free(&r);
    r = xpm_get(t, "/job.api/current");
    assert_int_equal(r.status, 0);
    st_reply_free(&r);
    r = xpm_get(t, "/job.api/current");
    assert_int_equal(r.status, 429);
    st_reply_free(&r);
    r = xpm_get(t, "/job.api/current");
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    json_t *stats = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    char *dump = json_dumps(stats, 0);
    assert_non_null(strstr(dump, "GET " XPM "/job.api/current"));
    free(dump);
    json_decref(stats);
    st_stop(t);
}

static void test_control(void **state)
{
    (void)state;
    char ann[64], bob[64];
    st_sim *t = practice(ann, bob);
    /* moving a job: completedDate follows the completed state */
    json_t *j = ctl_xpm(t, "POST", "/jobs/J000001/state", "{\"state\":\"waiting on client\"}", 200);
    assert_string_equal(st_str(st_path(j, "job"), "state"), "Waiting on Client");
    assert_null(st_path(j, "job.completedDate"));
    json_decref(j);
    j = ctl_xpm(t, "POST", "/jobs/J000001/state", "{\"state\":\"Completed\"}", 200);
    assert_int_equal(strlen(st_str(st_path(j, "job"), "completedDate")), 19);
    json_decref(j);
    st_reply r = xpm_get(t, "/job.api/current");
    assert_false(has_job(list_of(&r, "jobs"), "J000001"));
    st_reply_free(&r);
    j = ctl_xpm(t, "POST", "/jobs/J000001/state", "{\"state\":\"In Progress\"}", 200);
    assert_null(st_path(j, "job.completedDate"));
    json_decref(j);
    json_decref(ctl_xpm(t, "POST", "/jobs/J000001/state", "{\"state\":\"Done\"}", 400));
    json_decref(ctl_xpm(t, "POST", "/jobs/J000001/state", "{}", 400));
    json_decref(ctl_xpm(t, "POST", "/jobs/J000404/state", "{\"state\":\"Review\"}", 404));

    /* all or nothing: a bad item adds nothing */
    char body[512];
    snprintf(body, sizeof(body),
             "{\"jobs\":[{\"name\":\"Fine\",\"client\":\"%s\"},{\"name\":\"No client\"}]}", ann);
    json_t *e = ctl_xpm(t, "POST", "/jobs", body, 400);
    assert_non_null(strstr(st_str(st_path(e, "error"), "message"), "jobs[1]"));
    json_decref(e);
    json_decref(
        ctl_xpm(t, "POST", "/clients", "{\"clients\":[{\"name\":\"A\"},{\"email\":\"x\"}]}", 400));
    const char *bad_jobs[] = {
        "{\"name\":\"x\",\"client\":\"00000000-0000-4000-8000-000000000001\"}",
        "{\"name\":\"\",\"client\":\"%s\"}",
        "{\"name\":\"x\",\"client\":\"%s\",\"state\":\"Nope\"}",
        "{\"name\":\"x\",\"client\":\"%s\",\"id\":\"J000001\"}",
        "{\"name\":\"x\",\"client\":\"%s\",\"id\":\"a b\"}",
        "{\"name\":\"x\",\"client\":\"%s\",\"startDate\":\"soon\"}",
        "{\"name\":\"x\",\"client\":\"%s\",\"startDate\":\"2024-02-01\",\"dueDate\":\"2024-01-"
        "01\"}",
        "{\"name\":\"x\",\"client\":\"%s\",\"budget\":\"lots\"}",
        "{\"name\":5,\"client\":\"%s\"}",
        "{\"jobs\":{}}",
        "[1]",
        "{\"name\":\"x\",\"client\":\"%s\"",
        NULL};
    for (size_t i = 0; bad_jobs[i] != NULL; i++) {
        snprintf(body, sizeof(body), bad_jobs[i], ann);
        json_decref(ctl_xpm(t, "POST", "/jobs", body, 400));
    }
    json_t *all = ctl_xpm(t, "GET", "", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(all, "jobs")), 3);
    assert_int_equal(json_array_size(json_object_get(all, "clients")), 2);
    assert_int_equal(json_array_size(json_object_get(all, "jobStates")), 5);
    assert_true(json_is_true(st_path(all, "jobStates.4.completed")));
    assert_true(strlen(st_str(st_path(all, "jobs.0"), "created")) > 0);
    json_decref(all);
    /* a job number given explicitly is kept; the sequence passes it */
    snprintf(body, sizeof(body), "{\"name\":\"n\",\"client\":\"%s\",\"id\":\"J000004\"}", ann);
    json_decref(ctl_xpm(t, "POST", "/jobs", body, 200));
    snprintf(body, sizeof(body), "{\"name\":\"m\",\"client\":\"%s\"}", ann);
    j = ctl_xpm(t, "POST", "/jobs", body, 200);
    assert_string_equal(st_str(st_path(j, "jobs.0"), "id"), "J000005");
    json_decref(j);

    /* the tenant is required and must exist */
    json_decref(st_ctl(t, "GET", "/_sim/xpm", NULL, 400));
    json_decref(st_ctl(t, "GET", "/_sim/xpm?tenant=nope", NULL, 404));
    json_decref(ctl_xpm(t, "POST", "/clients/00000000-0000-4000-8000-000000000001", "{}", 404));
    json_decref(ctl_xpm(t, "POST", "/nothing", "{}", 404));

    /* reset clears */
    json_decref(st_ctl(t, "POST", "/_sim/reset", NULL, 200));
    all = ctl_xpm(t, "GET", "", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(all, "jobs")), 0);
    assert_int_equal(json_array_size(json_object_get(all, "clients")), 0);
    json_decref(all);
    st_stop(t);
}

static void test_seeded(void **state)
{
    (void)state;
    const char *env[] = {"XS_SIM_SEED_RECORDS=40", "XS_SIM_SEED_XPM_CLIENTS=8", NULL};
    st_sim *t = st_start(env);
    st_connect_scope(t, "offline_access accounting.contacts practicemanager.read");
    st_reply r = xpm_get(t, "/client.api/list");
    json_t *clients = list_of(&r, "clients");
    assert_int_equal(json_array_size(clients), 8);
    st_reply c = st_api(t, "GET", "/Contacts?includeArchived=true", NULL, NULL);
    json_t *contacts = json_object_get(c.json, "Contacts");
    size_t matched = 0, i, k;
    json_t *cl, *ct;
    json_array_foreach(clients, i, cl)
    {
        json_array_foreach(contacts, k, ct)
        {
            if (strcmp(st_str(cl, "name"), st_str(ct, "Name")) == 0 &&
                strcmp(st_str(cl, "email"), st_str(ct, "EmailAddress")) == 0) {
                matched++;
                break;
            }
        }
    }
    assert_int_equal(matched, 4);
    st_reply_free(&c);
    st_reply_free(&r);
    r = xpm_get(t, "/job.api/current");
    size_t current = json_array_size(list_of(&r, "jobs"));
    st_reply_free(&r);
    json_t *all = ctl_xpm(t, "GET", "", NULL, 200);
    size_t total = json_array_size(json_object_get(all, "jobs"));
    assert_true(total >= 8 && total <= 24);
    assert_true(current > 0 && current <= total);
    json_decref(all);
    st_stop(t);
}

static void test_garbage(void **state)
{
    (void)state;
    char ann[64], bob[64];
    st_sim *t = practice(ann, bob);
    t->raw_path = true;
    const char *paths[] = {"/job.api/get/%00",
                           "/job.api/get/J000001/extra",
                           "/job.api/list?from=99999999&to=99999999",
                           "/job.api/list?from=00000101&to=00000102",
                           "/job.api/list?from=-2024010&to=20240101",
                           "/client.api/list?modifiedSince=9999-99-99T99:99:99",
                           "/client.api/list?detailed=maybe&fields=,,,",
                           "/client.api/get/%2e%2e",
                           "/job.api/client/%ff%fe",
                           "/jobstate.api/list?fields=",
                           "",
                           "/",
                           NULL};
    for (size_t i = 0; paths[i] != NULL; i++) {
        st_reply r = xpm_get(t, paths[i]);
        assert_true(r.status >= 200 && r.status < 500);
        st_reply_free(&r);
    }
    char longp[6000];
    memset(longp, 'J', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    char path[6100];
    snprintf(path, sizeof(path), "/job.api/get/%s", longp);
    st_reply r = xpm_get(t, path);
    assert_int_equal(r.status, 404);
    st_reply_free(&r);
    /* still serving */
    t->raw_path = false;
    r = xpm_get(t, "/job.api/current");
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    st_stop(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_and_states),
        cmocka_unit_test(test_job_list_date_range),
        cmocka_unit_test(test_clients_and_modified_since),
        cmocka_unit_test(test_scopes_and_order),
        cmocka_unit_test(test_limits_and_faults),
        cmocka_unit_test(test_control),
        cmocka_unit_test(test_seeded),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
