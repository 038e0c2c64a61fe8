/*
 * operator_test.c: the routes operators use, end to end. A real PostgreSQL, a real xero-sim
 * (delivering signed webhooks), the orchestrator with its scheduler on, and one replica of
 * each domain service:
 *   - organisations made, listed and read through the API (the one connected here too);
 *   - the mappings of a record, by local or Xero id;
 *   - pausing a connection: no scheduled run, no realtime push, no step of its runs, webhook
 *     events kept; after the resume all of it goes;
 *   - cancelling a run, with no step under way and with one; a canceled push gives its records
 *     back to the outbox; a cancel asked for before a crash is honoured at the restart;
 *   - a conflict ignored is not raised again until a side changes the record;
 *   - the list of runs refuses `connection=`, and /sync takes every entity it documents.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

#define KEY "operator-webhook-key-0123456789abcdef"

static xst_engine *E;
static char ORG[40], CONN[40], TENANT[40];
static char *ORCH_ENV[16];

/* api calls the orchestrator and checks the status; returns the reply's JSON (new). */
static json_t *api(const char *method, const char *path, const char *body, long want)
{
    xst_http r = xst_engine_api(E, method, path, body);
    if (r.status != want) {
        fprintf(stderr, "%s %s: %ld %s\n", method, path, r.status, r.body);
    }
    assert_int_equal(r.status, want);
    json_t *j = json_incref(r.json);
    xst_http_free(&r);
    return j;
}

/* api_error calls the orchestrator and checks it answers the error status/code naming field. */
static void api_error(const char *method, const char *path, const char *body, long status,
                      const char *code, const char *field)
{
    xst_http r = xst_engine_api(E, method, path, body);
    assert_true(xst_http_error_is(&r, status, code, NULL));
    if (field != NULL) {
        const char *f =
            json_string_value(json_object_get(json_object_get(r.json, "error"), "field"));
        if (f == NULL || strcmp(f, field) != 0) {
            fprintf(stderr, "%s %s: field %s, not %s: %s\n", method, path, f ? f : "(none)", field,
                    r.body);
        }
        assert_non_null(f);
        assert_string_equal(f, field);
    }
    xst_http_free(&r);
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* One statement on the engine's database with n parameters: its first value (new), or as a
 * number. */
#define sqls(...) xst_engine_sqlf(E, __VA_ARGS__)
#define sqll(...) xst_engine_sql_longf(E, __VA_ARGS__)

/* sim_field reads field of Xero contact xid at the simulator (new, or NULL). */
static char *sim_field(const char *xid, const char *field)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", TENANT, xid);
    json_t *j = xst_engine_sim_json(E, "GET", path, NULL);
    json_t *c = json_array_get(json_object_get(j, "Contacts"), 0);
    const char *v = json_string_value(json_object_get(c != NULL ? c : j, field));
    char *out = v != NULL ? strdup(v) : NULL;
    json_decref(j);
    return out;
}

static bool wait_sim(const char *xid, const char *field, const char *want, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    for (;;) {
        char *v = sim_field(xid, field);
        bool ok = v != NULL && strcmp(v, want) == 0;
        free(v);
        if (ok) {
            return true;
        }
        if (xst_now_ms() > end) {
            return false;
        }
        usleep(100000);
    }
}

/* wait_sql waits until query q (one parameter, a) answers want. */
static bool wait_sql(const char *q, const char *a, long want, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    while (xst_now_ms() < end) {
        if (sqll(q, 1, a) == want) {
            return true;
        }
        usleep(100000);
    }
    fprintf(stderr, "%s (%s) is %ld, not %ld\n", q, a, sqll(q, 1, a), want);
    return false;
}

static void sim_edit(const char *xid, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", TENANT, xid);
    json_decref(xst_engine_sim_json(E, "POST", path, body));
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/webhooks/flush", "{\"timeout_ms\":5000}"));
}

static void sim_latency(int ms)
{
    char body[96];
    snprintf(body, sizeof(body), "{\"latency\":{\"fixed_ms\":%d,\"jitter_ms\":0}}", ms);
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/config", body));
}

static void settle(void)
{
    if (!xst_engine_settle(E, 60000)) {
        fail_msg("the engine did not settle");
    }
}

/* pick returns the mapped contact at offset (local and Xero ids). */
static void pick(int offset, char lid[40], char xid[40])
{
    xst_engine_mapped(E, "contact", offset, lid, xid);
}

/* run_get reads run id (new). */
static json_t *run_get(const char *id)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/runs/%s", id);
    return api("GET", path, NULL, 200);
}

/* wait_run_steps waits until run id has `running` steps running (and is not over). */
static bool wait_running(const char *id, long running, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    json_t *last = NULL;
    while (xst_now_ms() < end) {
        json_decref(last);
        last = run_get(id);
        long n =
            (long)json_integer_value(json_object_get(json_object_get(last, "steps"), "running"));
        const char *st = str(last, "status");
        bool live = strcmp(st, "queued") == 0 || strcmp(st, "running") == 0;
        if (live && n == running) {
            json_decref(last);
            return true;
        }
        usleep(50000);
    }
    char *text = json_dumps(last, JSON_COMPACT);
    fprintf(stderr, "run %s never had %ld steps running while live; last seen: %s\n", id, running,
            text != NULL ? text : "?");
    free(text);
    json_decref(last);
    return false;
}

static void conn_path(char *buf, size_t cap, const char *tail)
{
    snprintf(buf, cap, "/v1/connections/%s%s", CONN, tail);
}

/* start_sync starts a run (body) on CONN and returns its id into id. */
static void start_sync(const char *body, char id[40])
{
    char path[128];
    conn_path(path, sizeof(path), "/sync");
    json_t *r = api("POST", path, body, 202);
    snprintf(id, 40, "%s", str(r, "id"));
    json_decref(r);
}

static void pause_conn(bool pause)
{
    char path[128];
    conn_path(path, sizeof(path), pause ? "/pause" : "/resume");
    json_t *c = api("POST", path, NULL, 200);
    assert_string_equal(str(c, "status"), pause ? "paused" : "active");
    assert_string_equal(str(c, "id"), CONN);
    json_decref(c);
}

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    E = xst_engine_new("operator");
    char url[256];
    snprintf(url, sizeof(url), "XS_SIM_WEBHOOK_URL=%s/v1/webhooks/xero", E->api);
    char *sim_env[] = {"XS_SIM_TENANTS=1",
                       url,
                       "XS_SIM_WEBHOOK_KEY=" KEY,
                       "XS_SIM_WEBHOOK_DELAY=100ms",
                       "XS_SIM_LIMIT_MINUTE=100000",
                       "XS_SIM_LIMIT_DAY=10000000",
                       "XS_SIM_LIMIT_CONCURRENT=1000",
                       NULL};
    xst_engine_start_sim(E, sim_env);
    char *orch_env[] = {"XS_XERO_WEBHOOK_KEY=" KEY,
                        "XS_SCHEDULER=true",
                        "XS_SCHEDULE_INCREMENTAL_EVERY=2s",
                        "XS_SCHEDULE_JITTER=0",
                        "XS_WEBHOOK_POLL_EVERY=0",
                        "XS_PUSH_DELAY=2s",
                        "XS_PUSH_POLL=500ms",
                        "XS_STEP_BACKOFF=200ms",
                        "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=10000000",
                        NULL};
    memcpy(ORCH_ENV, orch_env, sizeof(orch_env));
    xst_engine_start_orchestrator(E, ORCH_ENV);
    xst_engine_start_services(E);
    /* The organisation is made through the API, then connected as any other. */
    xst_http r = xst_engine_api(E, "POST", "/v1/organisations", "{\"name\":\"Operators Ltd\"}");
    if (r.status != 201) {
        xst_die("POST /v1/organisations: %ld %s", r.status, r.body);
    }
    snprintf(ORG, sizeof(ORG), "%s", str(r.json, "id"));
    xst_http_free(&r);
    xst_http cb = xst_engine_connect(E, ORG);
    if (cb.status != 200) {
        xst_die("connect: %ld %s", cb.status, cb.body);
    }
    json_t *c0 = json_array_get(json_object_get(cb.json, "connections"), 0);
    snprintf(CONN, sizeof(CONN), "%s", str(c0, "id"));
    snprintf(TENANT, sizeof(TENANT), "%s", str(c0, "tenant_id"));
    xst_http_free(&cb);
    /* The scheduler's initial import. */
    if (!wait_sql("SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND mode = 'full' AND "
                  "status = 'succeeded'",
                  CONN, 1, 120000)) {
        xst_die("the initial import did not succeed");
    }
    /* Xero's intent-to-receive check, after which the simulator delivers events. */
    json_t *itr = xst_engine_sim_json(E, "POST", "/_sim/webhooks/itr", "{\"count\":4}");
    if (!json_is_true(json_object_get(itr, "ok"))) {
        xst_die("intent to receive failed");
    }
    json_decref(itr);
    /* Contacts in Xero to link, brought by a full run. */
    char path[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    json_decref(xst_engine_sim_json(E, "POST", path, "{\"contacts\":40,\"seed\":5}"));
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 120000);
    if (strcmp(str(run, "status"), "succeeded") != 0 ||
        xst_engine_sql_long(E, "SELECT count(*) FROM sync.mappings WHERE entity = 'contact'", 0,
                            NULL) < 20) {
        xst_die("the contacts were not imported");
    }
    json_decref(run);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return xst_engine_free(E) == 0 ? 0 : -1;
}

static void test_organisations(void **state)
{
    (void)state;
    json_t *o = api("POST", "/v1/organisations", "{\"name\":\"  Harbour Physio \\t\"}", 201);
    char id[40];
    snprintf(id, sizeof(id), "%s", str(o, "id"));
    assert_string_equal(str(o, "name"), "Harbour Physio");
    assert_non_null(str(o, "created_at"));
    assert_non_null(str(o, "updated_at"));
    assert_int_equal(json_integer_value(json_object_get(o, "connections")), 0);
    json_decref(o);
    char *stored = sqls("SELECT name FROM app.organisations WHERE id = $1", 1, id);
    assert_string_equal(stored, "Harbour Physio");
    free(stored);
    /* 200 characters of two bytes each is a name; one more is not. */
    char body[1024] = "{\"name\":\"";
    for (int i = 0; i < 200; i++) {
        strcat(body, "\xc3\xa9");
    }
    strcat(body, "\"}");
    o = api("POST", "/v1/organisations", body, 201);
    char id2[40];
    snprintf(id2, sizeof(id2), "%s", str(o, "id"));
    json_decref(o);
    body[strlen(body) - 2] = '\0';
    strcat(body, "e\"}");
    long before = sqll("SELECT count(*) FROM app.organisations", 0);
    api_error("POST", "/v1/organisations", body, 400, "invalid", "name");
    api_error("POST", "/v1/organisations", "{}", 400, "invalid", "name");
    api_error("POST", "/v1/organisations", "{\"name\":\" \\n \"}", 400, "invalid", "name");
    api_error("POST", "/v1/organisations", "{\"name\":42}", 400, "invalid", "name");
    api_error("POST", "/v1/organisations", "{\"name\":\"a\\u0001b\"}", 400, "invalid", "name");
    api_error("POST", "/v1/organisations", "[\"name\"]", 400, "invalid", NULL);
    api_error("POST", "/v1/organisations", "{\"name\":", 400, "bad_json", NULL);
    assert_int_equal(sqll("SELECT count(*) FROM app.organisations", 0), before);

    /* Newest first, each with its connections. */
    json_t *l = api("GET", "/v1/organisations", NULL, 200);
    json_t *list = json_object_get(l, "organisations");
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(str(json_array_get(list, 0), "id"), id2);
    assert_string_equal(str(json_array_get(list, 1), "id"), id);
    assert_string_equal(str(json_array_get(list, 2), "id"), ORG);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 2), "connections")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(l, "limit")), 100);
    assert_int_equal(json_integer_value(json_object_get(l, "offset")), 0);
    json_decref(l);
    l = api("GET", "/v1/organisations?limit=1&offset=1", NULL, 200);
    list = json_object_get(l, "organisations");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(str(json_array_get(list, 0), "id"), id);
    json_decref(l);
    api_error("GET", "/v1/organisations?limit=0", NULL, 400, "invalid", "limit");
    api_error("GET", "/v1/organisations?offset=-1", NULL, 400, "invalid", "offset");

    char path[96];
    snprintf(path, sizeof(path), "/v1/organisations/%s", ORG);
    o = api("GET", path, NULL, 200);
    assert_string_equal(str(o, "name"), "Operators Ltd");
    assert_int_equal(json_integer_value(json_object_get(o, "connections")), 1);
    json_decref(o);
    api_error("GET", "/v1/organisations/00000000-0000-4000-8000-000000000001", NULL, 404,
              "not_found", "id");
    api_error("GET", "/v1/organisations/nope", NULL, 400, "invalid", "id");
}

static void test_mappings(void **state)
{
    (void)state;
    settle();
    char lid[40], xid[40], path[256];
    pick(3, lid, xid);
    snprintf(path, sizeof(path), "/v1/mappings?entity=contact&local_id=%s", lid);
    json_t *r = api("GET", path, NULL, 200);
    json_t *list = json_object_get(r, "mappings");
    assert_int_equal(json_array_size(list), 1);
    json_t *m = json_array_get(list, 0);
    assert_string_equal(str(m, "connection_id"), CONN);
    assert_string_equal(str(m, "entity"), "contact");
    assert_string_equal(str(m, "local_id"), lid);
    assert_string_equal(str(m, "xero_id"), xid);
    assert_string_equal(str(m, "status"), "linked");
    assert_non_null(str(m, "last_synced_at"));
    assert_non_null(str(m, "xero_updated_at"));
    assert_non_null(str(m, "created_at"));
    assert_true(json_is_null(json_object_get(m, "conflict_id")));
    assert_true(json_integer_value(json_object_get(m, "sync_version")) >= 1);
    json_decref(r);
    snprintf(path, sizeof(path), "/v1/mappings?entity=contact&xero_id=%s&connection_id=%s", xid,
             CONN);
    r = api("GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r, "mappings")), 1);
    assert_string_equal(str(json_array_get(json_object_get(r, "mappings"), 0), "local_id"), lid);
    json_decref(r);
    /* Another connection, another entity, or an unknown record: none. */
    snprintf(path, sizeof(path),
             "/v1/mappings?entity=contact&local_id=%s&connection_id=00000000-0000-4000-8000-"
             "000000000002",
             lid);
    r = api("GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r, "mappings")), 0);
    json_decref(r);
    snprintf(path, sizeof(path), "/v1/mappings?entity=invoice&local_id=%s", lid);
    r = api("GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r, "mappings")), 0);
    json_decref(r);

    api_error("GET", "/v1/mappings?local_id=00000000-0000-4000-8000-000000000003", NULL, 400,
              "invalid", "entity");
    api_error("GET", "/v1/mappings?entity=widget&local_id=00000000-0000-4000-8000-000000000003",
              NULL, 400, "invalid", "entity");
    api_error("GET", "/v1/mappings?entity=contact", NULL, 400, "invalid", "local_id");
    snprintf(path, sizeof(path), "/v1/mappings?entity=contact&local_id=%s&xero_id=%s", lid, xid);
    api_error("GET", path, NULL, 400, "invalid", "xero_id");
    api_error("GET", "/v1/mappings?entity=contact&local_id=12", NULL, 400, "invalid", "local_id");
    snprintf(path, sizeof(path), "/v1/mappings?entity=contact&xero_id=%s&connection_id=x", xid);
    api_error("GET", path, NULL, 400, "invalid", "connection_id");
}

static void test_pause_and_resume(void **state)
{
    (void)state;
    settle();
    char path[256], lid[40], xid[40], lid2[40], xid2[40];
    pick(5, lid, xid);
    pick(6, lid2, xid2);
    /* A full run under way, one slow call at a time. */
    sim_latency(700);
    char run[40];
    start_sync("{\"mode\":\"full\"}", run);
    assert_true(wait_running(run, 1, 20000));
    pause_conn(true);
    pause_conn(true); /* again: still paused, 200 */
    conn_path(path, sizeof(path), "");
    json_t *c = api("GET", path, NULL, 200);
    assert_string_equal(str(c, "status"), "paused");
    json_decref(c);
    c = api("GET", "/v1/connections?status=paused", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(c, "connections")), 1);
    json_decref(c);
    conn_path(path, sizeof(path), "/stats");
    c = api("GET", path, NULL, 200);
    assert_string_equal(str(c, "status"), "paused");
    json_decref(c);
    /* Still connected: xs-auth hands out its token (the step under way needs it to finish), as
     * the check shows, with a refresh forced. */
    conn_path(path, sizeof(path), "/check?force_refresh=true");
    c = api("POST", path, NULL, 200);
    assert_string_equal(str(c, "status"), "paused");
    assert_true(json_is_true(json_object_get(c, "tenant_connected")));
    assert_true(json_is_true(json_object_get(c, "refreshed")));
    json_decref(c);
    conn_path(path, sizeof(path), "/sync");
    api_error("POST", path, "{\"mode\":\"incremental\"}", 409, "paused", "id");
    conn_path(path, sizeof(path), "/sync/entity");
    char body[256];
    snprintf(body, sizeof(body), "{\"entity\":\"contact\",\"xero_id\":\"%s\"}", xid2);
    api_error("POST", path, body, 409, "paused", "id");

    /* The step under way finishes (what it reads meanwhile it brings); nothing else of the
     * connection runs from here. */
    assert_true(wait_running(run, 0, 20000));
    char *since = sqls("SELECT now()::text", 0);
    /* A local change and a change in Xero (which sends its webhook) while paused. */
    free(sqls("UPDATE app.contacts SET email = 'paused.local@example.com' WHERE id = $1", 1, lid));
    sim_edit(xid2, "{\"LastName\":\"EditedInXeroWhilePaused\"}");
    assert_true(wait_sql("SELECT count(*) FROM sync.webhook_events WHERE resource_id = $1", xid2, 1,
                         10000));
    json_t *r0 = run_get(run);
    usleep(3500000); /* past the incremental schedule (2 s), the push delay and its poll */
    json_t *r1 = run_get(run);
    assert_string_equal(str(r1, "status"), "running");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r1, "steps"), "done")),
                     json_integer_value(json_object_get(json_object_get(r0, "steps"), "done")));
    assert_true(json_integer_value(json_object_get(json_object_get(r1, "steps"), "pending")) > 0);
    json_decref(r0);
    json_decref(r1);
    assert_int_equal(sqll("SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND "
                          "created_at > $2::timestamptz",
                          2, CONN, since),
                     0);
    assert_int_equal(sqll("SELECT count(*) FROM sync.changes WHERE local_id = $1 AND "
                          "processed_at IS NULL",
                          1, lid),
                     1);
    assert_int_equal(sqll("SELECT count(*) FROM sync.webhook_events WHERE resource_id = $1 AND "
                          "status = 'pending'",
                          1, xid2),
                     1);
    char *v = sim_field(xid, "EmailAddress");
    assert_true(v == NULL || strcmp(v, "paused.local@example.com") != 0);
    free(v);
    v = sqls("SELECT coalesce(last_name, '') FROM app.contacts WHERE id = $1", 1, lid2);
    assert_string_not_equal(v, "EditedInXeroWhilePaused");
    free(v);

    /* Resumed: the run goes on, the change leaves, the webhook becomes a run. */
    sim_latency(0);
    pause_conn(false);
    pause_conn(false); /* again: still active, 200 */
    json_t *done = xst_engine_wait_run(E, run, 60000);
    assert_string_equal(str(done, "status"), "succeeded");
    json_decref(done);
    assert_true(wait_sim(xid, "EmailAddress", "paused.local@example.com", 20000));
    assert_true(wait_sql("SELECT count(*) FROM app.contacts WHERE id = $1 AND last_name = "
                         "'EditedInXeroWhilePaused'",
                         lid2, 1, 20000));
    assert_int_equal(sqll("SELECT count(*) FROM sync.webhook_events WHERE resource_id = $1 AND "
                          "status = 'done'",
                          1, xid2),
                     1);
    assert_true(sqll("SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND created_at > "
                     "$2::timestamptz AND mode = 'entity' AND trigger = 'webhook'",
                     2, CONN, since) >= 1);
    free(since);

    /* Only an active or paused connection pauses or resumes. */
    free(sqls("UPDATE sync.connections SET status = 'needs_reauth' WHERE id = $1", 1, CONN));
    conn_path(path, sizeof(path), "/pause");
    api_error("POST", path, NULL, 409, "conflict", "id");
    conn_path(path, sizeof(path), "/resume");
    api_error("POST", path, NULL, 409, "conflict", "id");
    free(sqls("UPDATE sync.connections SET status = 'active' WHERE id = $1", 1, CONN));
    api_error("POST", "/v1/connections/00000000-0000-4000-8000-000000000004/pause", NULL, 404,
              "not_found", "id");
    api_error("POST", "/v1/connections/zzz/resume", NULL, 400, "invalid", "id");
}

static void test_cancel(void **state)
{
    (void)state;
    settle();
    char path[128], run[40];
    /* No step under way: canceled at once, its pending steps never run. */
    sim_latency(700);
    start_sync("{\"mode\":\"full\"}", run);
    assert_true(wait_running(run, 1, 20000));
    pause_conn(true);
    assert_true(wait_running(run, 0, 20000));
    snprintf(path, sizeof(path), "/v1/runs/%s/cancel", run);
    json_t *r = api("POST", path, NULL, 200);
    assert_string_equal(str(r, "status"), "canceled");
    assert_non_null(str(r, "cancel_requested_at"));
    assert_non_null(str(r, "finished_at"));
    assert_string_equal(str(r, "error"), "canceled by the API");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "steps"), "pending")),
                     0);
    json_decref(r);
    api_error("POST", path, NULL, 409, "conflict", "id");
    api_error("POST", "/v1/runs/00000000-0000-4000-8000-000000000005/cancel", NULL, 404,
              "not_found", "id");
    api_error("POST", "/v1/runs/x/cancel", NULL, 400, "invalid", "id");
    long steps = sqll("SELECT count(*) FILTER (WHERE status = 'done') FROM sync.run_steps WHERE "
                      "run_id = $1",
                      1, run);
    pause_conn(false);
    usleep(1500000);
    assert_int_equal(sqll("SELECT count(*) FILTER (WHERE status = 'done') FROM sync.run_steps "
                          "WHERE run_id = $1",
                          1, run),
                     steps);
    json_t *list = api("GET", "/v1/runs?status=canceled", NULL, 200);
    assert_true(json_array_size(json_object_get(list, "runs")) >= 1);
    assert_true(json_object_get(json_array_get(json_object_get(list, "runs"), 0),
                                "cancel_requested_at") != NULL);
    json_decref(list);
    settle();

    /* A push canceled while its pull runs: the pull finishes whole, nothing is sent, and the
     * record goes back to the outbox for a later push. */
    char lid[40], xid[40];
    pick(8, lid, xid);
    sim_latency(1500);
    free(sqls("UPDATE app.contacts SET email = 'canceled.push@example.com' WHERE id = $1", 1, lid));
    start_sync("{\"mode\":\"push\"}", run); /* within XS_PUSH_DELAY: it takes the change */
    json_t *p = run_get(run);
    assert_string_equal(str(json_array_get(json_object_get(p, "phases"), 0), "op"), "pull");
    json_decref(p);
    assert_true(wait_running(run, 1, 10000));
    assert_int_equal(sqll("SELECT count(*) FROM sync.changes WHERE local_id = $1 AND "
                          "processed_at IS NULL",
                          1, lid),
                     0);
    snprintf(path, sizeof(path), "/v1/runs/%s/cancel", run);
    r = api("POST", path, NULL, 200);
    assert_string_equal(str(r, "status"), "running");
    assert_non_null(str(r, "cancel_requested_at"));
    assert_true(json_is_null(json_object_get(r, "finished_at")));
    json_decref(r);
    json_t *end = xst_engine_wait_run(E, run, 20000);
    assert_string_equal(str(end, "status"), "canceled");
    assert_int_equal(xst_run_count(end, "contact", "push", "sent"), 0);
    assert_int_equal(xst_run_count(end, "contact", "push", "updated"), 0);
    json_decref(end);
    /* The pull step was whole: done, not failed. */
    assert_int_equal(sqll("SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND kind = "
                          "'pull' AND status = 'done'",
                          1, run),
                     1);
    assert_int_equal(sqll("SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND kind = "
                          "'push' AND status = 'done'",
                          1, run),
                     0);
    sim_latency(0);
    assert_true(wait_sim(xid, "EmailAddress", "canceled.push@example.com", 20000));
    settle();

    /* A cancel asked for while a step runs, then a crash: the restart ends the run. */
    sim_latency(3000);
    start_sync("{\"mode\":\"full\"}", run);
    assert_true(wait_running(run, 1, 20000));
    snprintf(path, sizeof(path), "/v1/runs/%s/cancel", run);
    r = api("POST", path, NULL, 200);
    assert_string_equal(str(r, "status"), "running");
    json_decref(r);
    xst_proc *orch = E->orch;
    xst_kill9(orch);
    xst_engine_forget(E, orch);
    xst_proc_free(orch);
    sim_latency(0);
    xst_engine_start_orchestrator(E, ORCH_ENV);
    end = xst_engine_wait_run(E, run, 20000);
    assert_string_equal(str(end, "status"), "canceled");
    json_decref(end);
    usleep(1000000);
    assert_int_equal(sqll("SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND status IN "
                          "('pending', 'running')",
                          1, run),
                     0);
    assert_int_equal(sqll("SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND status = "
                          "'done'",
                          1, run),
                     0);
    settle();
}

/* pending_conflicts counts the PENDING conflicts of local record lid. */
static long pending_conflicts(const char *lid)
{
    return sqll("SELECT count(*) FROM sync.conflicts WHERE local_id = $1 AND status = 'PENDING'", 1,
                lid);
}

/* pending_conflict_id waits for a PENDING conflict of lid and writes its id into cid. */
static void pending_conflict_id(const char *lid, char cid[40])
{
    if (!wait_sql("SELECT count(*) FROM sync.conflicts WHERE local_id = $1 AND status = "
                  "'PENDING'",
                  lid, 1, 20000)) {
        /* What each side holds, to tell a lost edit from a merge. */
        char *v = sqls("SELECT concat_ws(' | ', c.first_name, c.last_name, m.base::text, "
                       "(SELECT string_agg(status || ':' || coalesce(resolution, ''), ',') FROM "
                       "sync.conflicts WHERE local_id = c.id)) FROM app.contacts c JOIN "
                       "sync.mappings m ON m.local_id = c.id WHERE c.id = $1",
                       1, lid);
        char *xid = sqls("SELECT xero_id FROM sync.mappings WHERE local_id = $1", 1, lid);
        char *xf = sim_field(xid, "FirstName"), *xl = sim_field(xid, "LastName");
        fail_msg("no PENDING conflict for %s; local: %s; Xero: %s %s", lid, v, xf, xl);
    }
    char *id =
        sqls("SELECT id FROM sync.conflicts WHERE local_id = $1 AND status = 'PENDING'", 1, lid);
    snprintf(cid, 40, "%s", id);
    free(id);
}

static void ignore(const char *cid)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/conflicts/%s/resolve", cid);
    api_error("POST", path, "{\"resolution\":\"IGNORED\",\"data\":{}}", 400, "invalid", "data");
    json_t *r = api("POST", path, "{\"resolution\":\"IGNORED\",\"by\":\"ops@example.com\"}", 200);
    assert_string_equal(str(r, "status"), "IGNORED");
    assert_string_equal(str(r, "resolution"), "IGNORED");
    json_decref(r);
    api_error("POST", path, "{\"resolution\":\"IGNORED\"}", 409, "conflict", NULL);
}

static void test_conflict_ignored(void **state)
{
    (void)state;
    settle();
    char path[256], lid[40], xid[40], cid[40];
    conn_path(path, sizeof(path), "/settings");
    json_decref(api("PUT", path, "{\"conflict_policy\":{\"contact\":\"manual\"}}", 200));
    pick(11, lid, xid);
    /* Both sides edited the same field while paused: a conflict once resumed. A step under
     * way at the pause finishes first (a pull that brought Xero's edit here before the local
     * one would make them one after the other, not a conflict), so the edits wait for it. */
    pause_conn(true);
    assert_true(wait_sql("SELECT count(*) FROM sync.run_steps s JOIN sync.runs r ON r.id = "
                         "s.run_id WHERE r.connection_id = $1 AND s.status = 'running'",
                         CONN, 0, 20000));
    sim_edit(xid, "{\"LastName\":\"XeroSide\"}");
    free(sqls("UPDATE app.contacts SET last_name = 'LocalSide' WHERE id = $1", 1, lid));
    pause_conn(false);
    pending_conflict_id(lid, cid);
    snprintf(path, sizeof(path), "/v1/mappings?entity=contact&local_id=%s", lid);
    json_t *m = api("GET", path, NULL, 200);
    json_t *m0 = json_array_get(json_object_get(m, "mappings"), 0);
    assert_string_equal(str(m0, "status"), "conflict");
    assert_string_equal(str(m0, "conflict_id"), cid);
    json_decref(m);
    settle();
    ignore(cid);
    char *v = sqls("SELECT status || '/' || resolution || '/' || resolved_by FROM sync.conflicts "
                   "WHERE id = $1",
                   1, cid);
    assert_string_equal(v, "IGNORED/IGNORED/ops@example.com");
    free(v);

    /* Not raised again: a fetch of the record, a full run (whose scan would send the local
     * version), and a while for the scheduled runs; nothing sent either way. */
    conn_path(path, sizeof(path), "/sync/entity");
    char body[256];
    snprintf(body, sizeof(body), "{\"entity\":\"contact\",\"xero_id\":\"%s\"}", xid);
    json_t *run = api("POST", path, body, 202);
    json_t *end = xst_engine_wait_run(E, str(run, "id"), 20000);
    assert_int_equal(xst_run_count(end, "contact", "pull", "conflicts"), 0);
    assert_int_equal(xst_run_count(end, "contact", "pull", "skipped"), 1);
    json_decref(end);
    json_decref(run);
    end = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 60000);
    assert_string_equal(str(end, "status"), "succeeded");
    json_decref(end);
    usleep(2500000);
    settle();
    assert_int_equal(pending_conflicts(lid), 0);
    /* Each side kept its own. */
    assert_true(wait_sim(xid, "LastName", "XeroSide", 1000));
    v = sqls("SELECT coalesce(last_name, '') FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_equal(v, "LocalSide");
    free(v);

    /* A new local edit raises it again. */
    free(sqls("UPDATE app.contacts SET first_name = 'LocalAgain' WHERE id = $1", 1, lid));
    pending_conflict_id(lid, cid);
    settle();
    v = sim_field(xid, "FirstName");
    assert_true(v == NULL || strcmp(v, "LocalAgain") != 0);
    free(v);
    /* Ignored once more, then a new edit in Xero raises it again too. */
    ignore(cid);
    sim_edit(xid, "{\"LastName\":\"XeroAgain\"}");
    pending_conflict_id(lid, cid);
    v = sqls("SELECT coalesce(last_name, '') FROM app.contacts WHERE id = $1", 1, lid);
    assert_string_not_equal(v, "XeroAgain");
    free(v);
    conn_path(path, sizeof(path), "/settings");
    json_decref(api("PUT", path, "{\"conflict_policy\":{\"contact\":\"last_write_wins\"}}", 200));
}

static void test_runs_arguments(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "/v1/runs?connection=%s", CONN);
    api_error("GET", path, NULL, 400, "invalid", "connection");
    snprintf(path, sizeof(path), "/v1/runs?connection_id=%s&limit=5", CONN);
    json_t *r = api("GET", path, NULL, 200);
    json_t *runs = json_object_get(r, "runs");
    assert_true(json_array_size(runs) >= 1);
    assert_string_equal(str(json_array_get(runs, 0), "connection_id"), CONN);
    assert_true(json_object_get(json_array_get(runs, 0), "cancel_requested_at") != NULL);
    json_decref(r);
    /* /sync takes every entity docs/API.md lists. */
    settle();
    json_t *end = xst_engine_run(E, CONN,
                                 "{\"mode\":\"incremental\",\"entities\":[\"contact\",\"invoice\","
                                 "\"payment\",\"account\",\"bank_transaction\"]}",
                                 60000);
    assert_string_equal(str(end, "status"), "succeeded");
    assert_int_equal(json_array_size(json_object_get(end, "entities")), 5);
    json_decref(end);
    conn_path(path, sizeof(path), "/sync");
    api_error("POST", path, "{\"mode\":\"incremental\",\"entities\":[\"credit_note\"]}", 400,
              "invalid", "entities");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_organisations),    cmocka_unit_test(test_mappings),
        cmocka_unit_test(test_pause_and_resume), cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_conflict_ignored), cmocka_unit_test(test_runs_arguments),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
