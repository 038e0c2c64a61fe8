/*
 * practice_test.c: the practice-management half of the product together (issue 22), with the
 * real processes (PostgreSQL, xero-sim with its Files and XPM APIs, the orchestrator and every
 * domain service over nng): an organisation connected with XPM's scope mirrors its practice's
 * jobs (one event when a job enters a "needs documents" state) and pushes a document into
 * Xero Files; then it is disconnected while a full run's XPM call is held in the simulator:
 * the run ends canceled (its document step never runs), neither xs-jobs nor xs-files calls
 * Xero for it again, a document added afterwards stays unsent and a job moved afterwards makes
 * no event, and both services stay live and stop cleanly on SIGTERM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

/* A run ended with the status wanted (the run printed when not). */
#define expect_status(run, want) assert_true(xst_run_status_is((run), (want)))

#define BOUNDARY "xs-practice-boundary"
#define MAPPED   "Waiting on Client"

static xst_engine *E;
static char *ORG;
static char CONN[40], TENANT[40], JOB[32];

/* xpm posts body to the simulator's XPM control route rest of the tenant; its reply (new). */
static json_t *xpm(const char *rest, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/xpm%s?tenant=%s", rest, TENANT);
    return xst_engine_sim_json(E, "POST", path, body);
}

/* move_job moves XPM job number to state, as a person in the practice would. */
static void move_job(const char *number, const char *state)
{
    char rest[96], body[128];
    snprintf(rest, sizeof(rest), "/jobs/%s/state", number);
    snprintf(body, sizeof(body), "{\"state\":\"%s\"}", state);
    json_decref(xpm(rest, body));
}

/* upload posts a text document named name to the organisation; its id (new). */
static char *upload(const char *name, const char *text)
{
    char body[2048], url[256];
    snprintf(body, sizeof(body),
             "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"organisation_id\"\r\n\r\n"
             "%s\r\n--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"file\"; "
             "filename=\"%s\"\r\nContent-Type: text/plain\r\n\r\n%s\r\n--" BOUNDARY "--\r\n",
             ORG, name, text);
    snprintf(url, sizeof(url), "%s/v1/documents", E->api);
    const char *hdr[] = {"Authorization: Bearer " XST_API_KEY,
                         "Content-Type: multipart/form-data; boundary=" BOUNDARY, NULL};
    xst_http r = xst_http_do("POST", url, body, hdr, 30000);
    if (r.status != 201) {
        fail_msg("POST /v1/documents: %ld %s", r.status, r.body);
    }
    char *id = strdup(xs_json_str_or(r.json, "id", ""));
    xst_http_free(&r);
    return id;
}

/* events counts the job events of type of the organisation's job number JOB. */
static long events(const char *type)
{
    return xst_engine_sql_longf(E,
                                "SELECT count(*) FROM app.job_events v JOIN app.jobs j ON j.id = "
                                "v.job_id WHERE j.number = $1 AND v.type = $2 AND "
                                "v.organisation_id = $3",
                                3, JOB, type, ORG);
}

static long sim_calls(void)
{
    xst_http r = xst_engine_simctl(E, "GET", "/_sim/stats", NULL);
    long n = (long)json_integer_value(json_object_get(r.json, "calls_total"));
    xst_http_free(&r);
    return n;
}

/* The connection mirrors the practice's jobs and pushes a document: both domains at work. */
static void test_jobs_and_documents(void **state)
{
    (void)state;
    json_t *c = xpm("/clients", "{\"clients\":[{\"name\":\"Harbour Physio\","
                                "\"email\":\"desk@harbour.example\"}]}");
    json_decref(c);
    char path[128];
    snprintf(path, sizeof(path), "/_sim/xpm?tenant=%s", TENANT);
    json_t *all = xst_engine_sim_json(E, "GET", path, NULL);
    const char *client =
        xs_json_str_or(json_array_get(json_object_get(all, "clients"), 0), "uuid", "");
    char body[512];
    snprintf(body, sizeof(body),
             "{\"jobs\":[{\"name\":\"Annual accounts\",\"client\":\"%s\",\"state\":\"Planned\","
             "\"startDate\":\"2026-11-01\",\"dueDate\":\"2027-01-31\"}]}",
             client);
    json_decref(all);
    json_decref(xpm("/jobs", body));
    all = xst_engine_sim_json(E, "GET", path, NULL);
    snprintf(JOB, sizeof(JOB), "%s",
             xs_json_str_or(json_array_get(json_object_get(all, "jobs"), 0), "id", ""));
    json_decref(all);
    assert_true(JOB[0] != '\0');

    snprintf(path, sizeof(path), "/v1/connections/%s/settings", CONN);
    xst_http s = xst_engine_api(
        E, "PUT", path, "{\"xpm\":{\"enabled\":true,\"needs_documents\":[\"" MAPPED "\"]}}");
    assert_int_equal(s.status, 200);
    xst_http_free(&s);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 120000);
    expect_status(run, "succeeded");
    json_decref(run);
    assert_int_equal(
        xst_engine_sql_longf(E, "SELECT count(*) FROM app.jobs WHERE number = $1", 1, JOB), 1);
    move_job(JOB, MAPPED);
    run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", 120000);
    expect_status(run, "succeeded");
    json_decref(run);
    assert_int_equal(events("job.needs_documents"), 1);

    char *doc = upload("letter.txt", "Harbour Physio: engagement letter");
    for (int i = 0; i < 300 && xst_engine_sql_longf(E,
                                                    "SELECT count(*) FROM sync.document_pushes "
                                                    "WHERE document_id = $1 AND status = 'pushed'",
                                                    1, doc) == 0;
         i++) {
        usleep(100000);
    }
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.document_pushes WHERE "
                                          "document_id = $1 AND status = 'pushed'",
                                          1, doc),
                     1);
    free(doc);
    assert_true(xst_engine_settle(E, 60000));
    /* The connection's statistics count what each domain holds: documents pushed, jobs. */
    snprintf(path, sizeof(path), "/v1/connections/%s/stats", CONN);
    xst_http st = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(st.status, 200);
    json_t *ents = json_object_get(st.json, "entities");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(ents, "document"), "linked")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ents, "job"), "linked")),
                     1);
    xst_http_free(&st);
    /* And /metrics the counters xs-files reports (heartbeats carry them). */
    bool seen = false;
    for (int64_t end = xst_now_ms() + 15000; !seen && xst_now_ms() < end; usleep(200000)) {
        xst_http m = xst_engine_api(E, "GET", "/metrics", NULL);
        seen = m.body != NULL &&
               strstr(m.body, "xs_documents_total{status=\"pushed\"} 1\n") != NULL &&
               strstr(m.body, "xs_xero_requests_total{endpoint=\"POST /Files/{FolderId}\","
                              "status=\"201\"} 1\n") != NULL;
        xst_http_free(&m);
    }
    assert_true(seen);
}

/* Disconnected while a job step is held in Xero: everything of it stops, nothing else does. */
static void test_disconnect_stops_both_domains(void **state)
{
    (void)state;
    /* The run's first XPM read (its clients) is held (XS_SIM_HANG), so a job step is under way
     * when the connection is disconnected. */
    xst_http f = xst_engine_simctl(E, "POST", "/_sim/faults",
                                   "{\"script\":[{\"method\":\"GET\",\"path\":\"/practicemanager/"
                                   "v3.1/client.api/list\",\"fault\":\"slow\",\"times\":1}]}");
    assert_int_equal(f.status, 200);
    xst_http_free(&f);
    char path[128];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", CONN);
    /* Only the two domains' entities: the tenant's minute of budget, spent by the runs before,
     * does not hold the run's first steps back for long. */
    xst_http r =
        xst_engine_api(E, "POST", path, "{\"mode\":\"full\",\"entities\":[\"job\",\"document\"]}");
    assert_int_equal(r.status, 202);
    char run[40];
    snprintf(run, sizeof(run), "%s", xs_json_str_or(r.json, "id", ""));
    xst_http_free(&r);
    bool held = false;
    for (int i = 0; i < 1800 && !held; i++) {
        held = xst_engine_sql_longf(E,
                                    "SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND "
                                    "entity = 'job' AND status = 'running'",
                                    1, run) == 1;
        if (!held) {
            usleep(50000);
        }
    }
    if (!held) {
        char *steps = xst_engine_sqlf(E,
                                      "SELECT string_agg(concat_ws(' ', entity, kind, status, "
                                      "error), E'\\n' ORDER BY id) FROM sync.run_steps WHERE "
                                      "run_id = $1",
                                      1, run);
        fail_msg("no job step of run %s under way; its steps:\n%s", run,
                 steps != NULL ? steps : "(none)");
    }

    snprintf(path, sizeof(path), "/v1/connections/%s", CONN);
    r = xst_engine_api(E, "DELETE", path, NULL);
    if (r.status != 200) {
        fail_msg("DELETE %s: %ld %s", path, r.status, r.body);
    }
    assert_string_equal(xs_json_str_or(r.json, "status", ""), "disconnected");
    xst_http_free(&r);

    /* The run ends canceled once the held step is back; no document step of it ran. */
    json_t *done = xst_engine_wait_run(E, run, 60000);
    expect_status(done, "canceled");
    json_decref(done);
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.run_steps WHERE run_id = $1 "
                                          "AND entity = 'document' AND status IN ('running', "
                                          "'done')",
                                          1, run),
                     0);
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.runs WHERE connection_id = "
                                          "$1 AND status IN ('queued', 'running')",
                                          1, CONN),
                     0);

    /* Afterwards: a new document and a job that moves on. Nothing reaches Xero or the feed. */
    long calls = sim_calls();
    long done_events = events("job.documents_done");
    char *doc = upload("late.txt", "Harbour Physio: a letter after the disconnect");
    move_job(JOB, "In Progress");
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", CONN);
    r = xst_engine_api(E, "POST", path, "{\"mode\":\"incremental\"}");
    assert_int_equal(r.status, 409);
    xst_http_free(&r);
    sleep(4);
    assert_true(xst_engine_settle(E, 30000));
    assert_int_equal(sim_calls(), calls);
    assert_int_equal(events("job.documents_done"), done_events);
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.document_pushes WHERE "
                                          "document_id = $1",
                                          1, doc),
                     0);
    free(doc);

    /* Both services are still live, and stop cleanly (teardown checks every exit code). */
    assert_true(xst_engine_wait_live(E, "files", 1, 10000));
    assert_true(xst_engine_wait_live(E, "jobs", 1, 10000));
    char url[256];
    snprintf(url, sizeof(url), "%s/health", E->api);
    xst_http h = xst_http_do("GET", url, NULL, NULL, 10000);
    assert_int_equal(h.status, 200);
    xst_http_free(&h);
}

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("practice");
    char *const sim[] = {"XS_SIM_TENANTS=1", "XS_SIM_HANG=3s", NULL};
    xst_engine_start_sim(E, sim);
    xst_engine_start_orchestrator(E, NULL);
    xst_engine_start_services(E);
    ORG = xst_engine_org(E, "Harbour Accounting");
    xst_http cb = xst_engine_connect_as(E, ORG, true);
    json_t *c0 = json_array_get(json_object_get(cb.json, "connections"), 0);
    if (cb.status != 200 || c0 == NULL) {
        fail_msg("connect: %ld %s", cb.status, cb.body);
    }
    snprintf(CONN, sizeof(CONN), "%s", xs_json_str_or(c0, "id", ""));
    snprintf(TENANT, sizeof(TENANT), "%s", xs_json_str_or(c0, "tenant_id", ""));
    xst_http_free(&cb);
    /* The initial import the scheduler starts, out of the way first. */
    assert_true(xst_engine_settle(E, 120000));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ORG);
    return xst_engine_free(E) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_and_documents),
        cmocka_unit_test(test_disconnect_stops_both_domains),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
