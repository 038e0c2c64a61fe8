/*
 * jobs_test.c: the jobs domain end to end (a real PostgreSQL, xero-sim with its XPM v3.1
 * routes, the orchestrator and every domain service over nng, and a small webhook receiver
 * standing for the host application):
 *   - a full run mirrors XPM's jobs into app.jobs and links XPM's clients to local contacts by
 *     e-mail, then name; an ambiguous client and one with no match stay unmatched and listed;
 *   - a job entering a mapped state ("Waiting on Client") makes one job.needs_documents event,
 *     also when the pull step is retried (a scripted 500 on job.api/current) and when a run is
 *     repeated; leaving it (to Completed, so no longer current: read with job.api/get) makes
 *     one job.documents_done; each state change is in the job's history;
 *   - each event reaches the webhook with a valid signature, again after the receiver
 *     answered 500, and never while the connection's XPM is disabled; without
 *     XS_JOB_WEBHOOK_SECRET no webhook_url is taken;
 *   - the counters of xs-jobs in GET /metrics;
 *   - the REST routes (jobs, one job with its history, the event feed, XPM clients) and their
 *     validation;
 *   - a connection without xpm.enabled has no job step and makes no XPM call; one whose grant
 *     lacks the XPM scope fails its job step with the message telling to re-authorise.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

/* A run ended with the status wanted (the run printed when not). */
#define expect_status(run, want) assert_true(xst_run_status_is((run), (want)))

#define SECRET      "job-webhook-secret-0123456789"
#define MAPPED      "Waiting on Client"
#define XPM         "/practicemanager/v3.1"
#define EP_CURRENT  "GET " XPM "/job.api/current"
#define EP_GET      "GET " XPM "/job.api/get/{jobNumber}"
#define EP_CLIENTS  "GET " XPM "/client.api/list"
#define RUN_WAIT_MS 120000

static xst_engine *E;
static char *ORG;
static char CONN[40], TENANT[40];
static char JOB_ALPHA[32], JOB_GAMMA[32];

/* ------------------------------------------------------------ the webhook receiver */

#define HOOKS_MAX 64

/* What the receiver got: each POST's body, signature and event id, and how it answered. */
static struct {
    pthread_mutex_t mu;
    struct hook {
        char *body;
        char sig[128], event[64];
        int answered;
    } got[HOOKS_MAX];
    int n;
    int fail_next; /* answer 500 to this many more deliveries */
    bool fail_all; /* answer 500 to every delivery */
} R = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct MHD_Daemon *RECEIVER;
static char HOOK_URL[128];

/* A POST's body as it arrives. */
typedef struct upload {
    char *data;
    size_t len;
} upload;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    upload *u = *con_cls;
    if (u == NULL) {
        *con_cls = calloc(1, sizeof(upload));
        return *con_cls != NULL ? MHD_YES : MHD_NO;
    }
    if (*size > 0) {
        char *p = realloc(u->data, u->len + *size + 1);
        if (p == NULL) {
            return MHD_NO;
        }
        memcpy(p + u->len, data, *size);
        u->len += *size;
        p[u->len] = '\0';
        u->data = p;
        *size = 0;
        return MHD_YES;
    }
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Xero-Sync-Signature");
    const char *ev = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Xero-Sync-Event-Id");
    pthread_mutex_lock(&R.mu);
    int status = 200;
    if (R.fail_all || R.fail_next > 0) {
        status = 500;
        R.fail_next -= R.fail_next > 0;
    }
    if (R.n < HOOKS_MAX) {
        struct hook *h = &R.got[R.n++];
        h->body = u->data != NULL ? u->data : strdup("");
        u->data = NULL;
        snprintf(h->sig, sizeof(h->sig), "%s", sig != NULL ? sig : "");
        snprintf(h->event, sizeof(h->event), "%s", ev != NULL ? ev : "");
        h->answered = status;
    }
    pthread_mutex_unlock(&R.mu);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    upload *u = *con_cls;
    if (u != NULL) {
        free(u->data);
        free(u);
    }
}

/* hooks_count is how many deliveries the receiver got. */
static int hooks_count(void)
{
    pthread_mutex_lock(&R.mu);
    int n = R.n;
    pthread_mutex_unlock(&R.mu);
    return n;
}

/* hooks_wait waits until the receiver got at least n deliveries; false after timeout_ms. */
static bool hooks_wait(int n, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    while (xst_now_ms() < end) {
        if (hooks_count() >= n) {
            return true;
        }
        usleep(50000);
    }
    return false;
}

/* signature_ok checks a delivery's signature independently of the engine: OpenSSL's HMAC. */
static bool signature_ok(const struct hook *h)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)h->body, strlen(h->body),
         mac, &len);
    char want[80] = "sha256=";
    for (unsigned i = 0; i < len; i++) {
        snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
    }
    return len == 32 && strcmp(want, h->sig) == 0;
}

/* ------------------------------------------------------------ helpers */

#define sql_long(...) xst_engine_sql_longf(E, __VA_ARGS__)
#define sql(...)      xst_engine_sqlf(E, __VA_ARGS__)

static json_t *sim_json(const char *method, const char *path, const char *body)
{
    return xst_engine_sim_json(E, method, path, body);
}

static void dump(const json_t *j)
{
    char *t = xs_json_dump(j, XS_JSON_PRETTY);
    fprintf(stderr, "%s\n", t);
    free(t);
}

/* xpm posts to the simulator's XPM control route rest (e.g. "/jobs") of the tenant. */
static json_t *xpm(const char *rest, const char *body)
{
    char path[256];
    snprintf(path, sizeof(path), "/_sim/xpm%s?tenant=%s", rest, TENANT);
    return sim_json("POST", path, body);
}

/* move_job moves XPM job number to state, as a person in the practice would. */
static void move_job(const char *number, const char *state)
{
    char rest[96], body[128];
    snprintf(rest, sizeof(rest), "/jobs/%s/state", number);
    snprintf(body, sizeof(body), "{\"state\":\"%s\"}", state);
    json_decref(xpm(rest, body));
}

/* settings puts settings (JSON) on connection conn and expects status. */
static void settings(const char *conn, const char *body, long status)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", conn);
    xst_http r = xst_engine_api(E, "PUT", path, body);
    if (r.status != status) {
        fprintf(stderr, "PUT settings: %ld %s\n", r.status, r.body);
    }
    assert_int_equal(r.status, status);
    xst_http_free(&r);
}

/* connect_org connects a new organisation name through the OAuth flow (with the XPM scope when
 * with_xpm) and writes its connection id into conn; returns the organisation id (new). */
static char *connect_org(const char *name, bool with_xpm, char *conn)
{
    char *org = xst_engine_org(E, name);
    xst_http cb = xst_engine_connect_as(E, org, with_xpm);
    json_t *c0 = json_array_get(json_object_get(cb.json, "connections"), 0);
    if (cb.status != 200 || c0 == NULL) {
        xst_die("callback: %ld %s", cb.status, cb.body);
    }
    snprintf(conn, 40, "%s", json_string_value(json_object_get(c0, "id")));
    xst_http_free(&cb);
    return org;
}

/* events_of counts the events of type for the job numbered number. */
static long events_of(const char *number, const char *type)
{
    return sql_long("SELECT count(*) FROM app.job_events e JOIN app.jobs j ON j.id = e.job_id "
                    "WHERE j.connection_id = $1 AND j.number = $2 AND e.type = $3",
                    3, CONN, number, type);
}

static json_t *api_json(const char *path, long status)
{
    xst_http r = xst_engine_api(E, "GET", path, NULL);
    if (r.status != status) {
        fprintf(stderr, "GET %s: %ld %s\n", path, r.status, r.body);
    }
    assert_int_equal(r.status, status);
    json_t *j = json_incref(r.json);
    xst_http_free(&r);
    return j;
}

/* expect_unmatched checks GET /v1/connections/{CONN}/xpm-clients?unmatched=true: n clients,
 * each a name and its unmatched_reason in want, in order. */
static void expect_unmatched(const char *const *want, size_t n)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/xpm-clients?unmatched=true", CONN);
    json_t *l = api_json(path, 200);
    json_t *cl = json_object_get(l, "clients");
    assert_int_equal(json_array_size(cl), n);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(cl, i);
        assert_string_equal(json_string_value(json_object_get(c, "name")), want[2 * i]);
        assert_string_equal(json_string_value(json_object_get(c, "unmatched_reason")),
                            want[2 * i + 1]);
        assert_true(json_is_null(json_object_get(c, "contact_id")));
    }
    json_decref(l);
}

/* ------------------------------------------------------------ setup */

static int setup(void **state)
{
    (void)state;
    uint16_t port = xst_free_port();
    RECEIVER = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, port, NULL, NULL, on_request, NULL,
                                MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    if (RECEIVER == NULL) {
        xst_die("cannot start the webhook receiver");
    }
    snprintf(HOOK_URL, sizeof(HOOK_URL), "http://127.0.0.1:%u/hooks/jobs", (unsigned)port);
    E = xst_engine_new("jobs");
    xst_engine_start_sim(E, NULL);
    char *orch_env[] = {"XS_SCHEDULER=false", "XS_JOB_WEBHOOK_SECRET=" SECRET, NULL};
    xst_engine_start_orchestrator(E, orch_env);
    xst_engine_start_services(E);
    ORG = connect_org("Harbour Accountants", true, CONN);
    char *t = sql("SELECT tenant_id FROM sync.connections WHERE id = $1", 1, CONN);
    snprintf(TENANT, sizeof(TENANT), "%s", t);
    free(t);
    /* The host application's contacts the clients are matched against. */
    const char *ins = "INSERT INTO app.contacts (organisation_id, name, email) VALUES ($1, $2, $3)";
    free(sql(ins, 3, ORG, "Alpha Holdings", "Alpha@Example.com"));
    free(sql(ins, 3, ORG, "Beta Bakery", NULL));
    free(sql(ins, 3, ORG, "Gamma Group", "one@gamma.example"));
    free(sql(ins, 3, ORG, "Gamma  group", "two@gamma.example"));
    /* XPM: four clients, three jobs. */
    json_t *cl =
        xpm("/clients", "{\"clients\":["
                        "{\"name\":\"Alpha Holdings Limited\",\"email\":\"alpha@example.com\"},"
                        "{\"name\":\"Beta Bakery\",\"email\":\"orders@beta.example\"},"
                        "{\"name\":\"Gamma Group\"},"
                        "{\"name\":\"Delta Dairy\",\"email\":\"delta@example.com\"}]}");
    json_t *list = json_object_get(cl, "clients");
    assert_int_equal(json_array_size(list), 4);
    char body[1024];
    snprintf(
        body, sizeof(body),
        "{\"jobs\":[{\"name\":\"Alpha annual accounts\",\"client\":\"%s\",\"state\":\"Planned\"},"
        "{\"name\":\"Beta GST return\",\"client\":\"%s\",\"state\":\"In Progress\"},"
        "{\"name\":\"Gamma tax return\",\"client\":\"%s\",\"state\":\"" MAPPED "\"}]}",
        json_string_value(json_object_get(json_array_get(list, 0), "uuid")),
        json_string_value(json_object_get(json_array_get(list, 1), "uuid")),
        json_string_value(json_object_get(json_array_get(list, 2), "uuid")));
    json_t *jobs = xpm("/jobs", body);
    json_t *jl = json_object_get(jobs, "jobs");
    assert_int_equal(json_array_size(jl), 3);
    snprintf(JOB_ALPHA, sizeof(JOB_ALPHA), "%s",
             json_string_value(json_object_get(json_array_get(jl, 0), "id")));
    snprintf(JOB_GAMMA, sizeof(JOB_GAMMA), "%s",
             json_string_value(json_object_get(json_array_get(jl, 2), "id")));
    json_decref(cl);
    json_decref(jobs);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ORG);
    int bad = xst_engine_free(E);
    MHD_stop_daemon(RECEIVER);
    for (int i = 0; i < R.n; i++) {
        free(R.got[i].body);
    }
    return bad == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ tests */

static void test_xpm_settings_are_checked(void **state)
{
    (void)state;
    settings(CONN, "{\"xpm\":{\"needs_documents\":[\"\"]}}", 400);
    settings(CONN, "{\"xpm\":{\"webhook_url\":\"ftp://example.com\"}}", 400);
    /* Only jobs here: the other entities have their own tests. */
    char body[512];
    snprintf(body, sizeof(body),
             "{\"entities\":[\"job\"],\"xpm\":{\"enabled\":true,\"needs_documents\":[\"" MAPPED
             "\"],\"webhook_url\":\"%s\"}}",
             HOOK_URL);
    settings(CONN, body, 200);
}

static void test_full_run_mirrors_jobs_and_links_clients(void **state)
{
    (void)state;
    pthread_mutex_lock(&R.mu);
    R.fail_next = 1; /* the first delivery fails: it must come again */
    pthread_mutex_unlock(&R.mu);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", RUN_WAIT_MS);
    expect_status(run, "succeeded");
    assert_true(xst_run_count(run, "job", "pull", "fetched") >= 3);
    json_decref(run);
    assert_int_equal(sql_long("SELECT count(*) FROM app.jobs WHERE connection_id = $1", 1, CONN),
                     3);
    /* First sight in a mapped state counts as entering it: one event. */
    assert_int_equal(events_of(JOB_GAMMA, "job.needs_documents"), 1);
    assert_int_equal(events_of(JOB_ALPHA, "job.needs_documents"), 0);
    assert_int_equal(sql_long("SELECT count(*) FROM app.jobs WHERE connection_id = $1 AND "
                              "needs_documents",
                              1, CONN),
                     1);
    /* Clients: Alpha by e-mail (its name differs), Beta by name (its e-mail differs). */
    assert_int_equal(sql_long("SELECT count(*) FROM app.xpm_clients x JOIN app.contacts c ON "
                              "c.id = x.contact_id WHERE x.connection_id = $1 AND x.matched_by = "
                              "'email' AND c.name = 'Alpha Holdings'",
                              1, CONN),
                     1);
    assert_int_equal(sql_long("SELECT count(*) FROM app.xpm_clients x JOIN app.contacts c ON "
                              "c.id = x.contact_id WHERE x.connection_id = $1 AND x.matched_by = "
                              "'name' AND c.name = 'Beta Bakery'",
                              1, CONN),
                     1);
    /* Gamma: two local contacts have its name, so none is chosen; listed with why. */
    expect_unmatched((const char *const[]){"Delta Dairy", "no_match", "Gamma Group", "ambiguous"},
                     2);
    /* The job follows its client's link. */
    assert_int_equal(sql_long("SELECT count(*) FROM app.jobs j JOIN app.contacts c ON c.id = "
                              "j.contact_id WHERE j.number = $1 AND c.name = 'Alpha Holdings'",
                              1, JOB_ALPHA),
                     1);
    /* The event reached the receiver, signed, after one answer of 500. */
    assert_true(hooks_wait(2, 20000));
    pthread_mutex_lock(&R.mu);
    assert_int_equal(R.got[0].answered, 500);
    assert_int_equal(R.got[1].answered, 200);
    assert_string_equal(R.got[0].event, R.got[1].event);
    assert_string_equal(R.got[0].body, R.got[1].body);
    assert_true(signature_ok(&R.got[1]));
    json_t *ev = xs_json_parse(R.got[1].body, strlen(R.got[1].body), NULL);
    pthread_mutex_unlock(&R.mu);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "job.needs_documents");
    json_t *job = json_object_get(ev, "job");
    assert_string_equal(json_string_value(json_object_get(job, "number")), JOB_GAMMA);
    assert_string_equal(json_string_value(json_object_get(job, "state")), MAPPED);
    assert_string_equal(json_string_value(json_object_get(ev, "connection_id")), CONN);
    assert_string_equal(json_string_value(json_object_get(ev, "organisation_id")), ORG);
    assert_true(json_is_null(json_object_get(job, "contact_id"))); /* Gamma is ambiguous */
    json_decref(ev);
    assert_int_equal(sql_long("SELECT count(*) FROM app.job_events WHERE delivered_at IS NOT NULL "
                              "AND attempts = 2",
                              0),
                     1);
}

static void test_entering_a_mapped_state_once_despite_a_retried_step(void **state)
{
    (void)state;
    move_job(JOB_ALPHA, MAPPED);
    long failed_before = xst_engine_sim_calls(E, EP_CURRENT, 500);
    json_decref(sim_json("POST", "/_sim/faults",
                         "{\"script\":[{\"path\":\"" XPM "/job.api/current\",\"fault\":\"500\","
                         "\"times\":1}]}"));
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", RUN_WAIT_MS);
    expect_status(run, "succeeded");
    json_decref(run);
    xst_http d = xst_engine_simctl(E, "DELETE", "/_sim/faults", NULL);
    xst_http_free(&d);
    /* The fault hit, the step ran again, and the job entered the state once. */
    assert_int_equal(xst_engine_sim_calls(E, EP_CURRENT, 500) - failed_before, 1);
    assert_int_equal(events_of(JOB_ALPHA, "job.needs_documents"), 1);
    /* A run repeated reads the same: nothing new. */
    run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", RUN_WAIT_MS);
    expect_status(run, "succeeded");
    json_decref(run);
    /* The host application removes the second Gamma: a full run matches every client again,
     * and Gamma's job follows its client to the one contact left. */
    free(sql("DELETE FROM app.contacts WHERE name = 'Gamma  group'", 0));
    run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", RUN_WAIT_MS);
    expect_status(run, "succeeded");
    json_decref(run);
    assert_int_equal(sql_long("SELECT count(*) FROM app.jobs j JOIN app.contacts c ON c.id = "
                              "j.contact_id WHERE j.number = $1 AND c.name = 'Gamma Group'",
                              1, JOB_GAMMA),
                     1);
    assert_int_equal(events_of(JOB_ALPHA, "job.needs_documents"), 1);
    assert_int_equal(events_of(JOB_GAMMA, "job.needs_documents"), 1);
    assert_int_equal(events_of(JOB_ALPHA, "job.documents_done"), 0);
    assert_true(hooks_wait(3, 20000));
}

static void test_leaving_a_mapped_state_once_with_history(void **state)
{
    (void)state;
    move_job(JOB_ALPHA, "Completed");
    long gets = xst_engine_sim_calls(E, EP_GET, 200);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", RUN_WAIT_MS);
    expect_status(run, "succeeded");
    json_decref(run);
    /* No longer current: read by its number to learn where it went. */
    assert_true(xst_engine_sim_calls(E, EP_GET, 200) - gets >= 1);
    assert_int_equal(events_of(JOB_ALPHA, "job.documents_done"), 1);
    run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", RUN_WAIT_MS);
    expect_status(run, "succeeded");
    json_decref(run);
    assert_int_equal(events_of(JOB_ALPHA, "job.documents_done"), 1);
    assert_int_equal(events_of(JOB_ALPHA, "job.needs_documents"), 1);
    /* The route: the job, its state and its whole history. */
    char *id = sql("SELECT id FROM app.jobs WHERE number = $1", 1, JOB_ALPHA);
    char path[128];
    snprintf(path, sizeof(path), "/v1/jobs/%s", id);
    json_t *job = api_json(path, 200);
    free(id);
    assert_string_equal(json_string_value(json_object_get(job, "state")), "Completed");
    assert_false(json_is_true(json_object_get(job, "needs_documents")));
    json_t *h = json_object_get(job, "history");
    assert_int_equal(json_array_size(h), 3);
    assert_true(json_is_null(json_object_get(json_array_get(h, 0), "from_state")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "to_state")),
                        "Planned");
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 1), "to_state")),
                        MAPPED);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 2), "from_state")),
                        MAPPED);
    assert_string_equal(json_string_value(json_object_get(json_array_get(h, 2), "to_state")),
                        "Completed");
    json_decref(job);
    /* Every event delivered, each signed; the done event last. */
    assert_true(hooks_wait(4, 20000));
    pthread_mutex_lock(&R.mu);
    for (int i = 0; i < R.n; i++) {
        assert_true(signature_ok(&R.got[i]));
    }
    json_t *last = xs_json_parse(R.got[R.n - 1].body, strlen(R.got[R.n - 1].body), NULL);
    pthread_mutex_unlock(&R.mu);
    assert_string_equal(json_string_value(json_object_get(last, "type")), "job.documents_done");
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "job"), "state")),
                        "Completed");
    json_decref(last);
}

static void test_routes(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "/v1/jobs?organisation_id=%s&state=Completed", ORG);
    json_t *l = api_json(path, 200);
    json_t *jobs = json_object_get(l, "jobs");
    assert_int_equal(json_array_size(jobs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(jobs, 0), "number")),
                        JOB_ALPHA);
    json_decref(l);
    /* Pages by keyset. */
    snprintf(path, sizeof(path), "/v1/jobs?organisation_id=%s&limit=2", ORG);
    l = api_json(path, 200);
    assert_int_equal(json_array_size(json_object_get(l, "jobs")), 2);
    const char *after = json_string_value(json_object_get(l, "next_after"));
    assert_non_null(after);
    snprintf(path, sizeof(path), "/v1/jobs?organisation_id=%s&limit=2&after=%s", ORG, after);
    json_decref(l);
    l = api_json(path, 200);
    assert_int_equal(json_array_size(json_object_get(l, "jobs")), 1);
    assert_true(json_is_null(json_object_get(l, "next_after")));
    json_decref(l);
    /* The feed, in id order, from an id on. */
    snprintf(path, sizeof(path), "/v1/job-events?organisation_id=%s", ORG);
    l = api_json(path, 200);
    json_t *ev = json_object_get(l, "events");
    assert_int_equal(json_array_size(ev), 3);
    const char *types[] = {"job.needs_documents", "job.needs_documents", "job.documents_done"};
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(json_string_value(json_object_get(json_array_get(ev, i), "type")),
                            types[i]);
    }
    json_int_t first = json_integer_value(json_object_get(json_array_get(ev, 0), "id"));
    json_decref(l);
    snprintf(path, sizeof(path), "/v1/job-events?organisation_id=%s&after=%lld", ORG,
             (long long)first);
    l = api_json(path, 200);
    assert_int_equal(json_array_size(json_object_get(l, "events")), 2);
    json_decref(l);
    /* Unmatched clients, listed with why (Gamma's ambiguity is gone). */
    expect_unmatched((const char *const[]){"Delta Dairy", "no_match"}, 1);
    snprintf(path, sizeof(path), "/v1/connections/%s/xpm-clients", CONN);
    l = api_json(path, 200);
    assert_int_equal(json_array_size(json_object_get(l, "clients")), 4);
    json_decref(l);
    /* The counters of xs-jobs, summed by the orchestrator (heartbeats carry them). */
    bool seen = false;
    for (int64_t end = xst_now_ms() + 15000; !seen && xst_now_ms() < end; usleep(200000)) {
        xst_http m = xst_engine_api(E, "GET", "/metrics", NULL);
        seen = m.body != NULL &&
               strstr(m.body, "xs_job_events_total{type=\"job.needs_documents\"} 2") != NULL &&
               strstr(m.body, "xs_job_events_total{type=\"job.documents_done\"} 1") != NULL &&
               strstr(m.body, "xs_job_pull_steps_total{outcome=\"retry\"} 1") != NULL &&
               strstr(m.body, "xs_xero_requests_total{endpoint=\"GET "
                              "/practicemanager/v3.1/job.api/get/{id}\",status=\"200\"}") != NULL;
        xst_http_free(&m);
    }
    assert_true(seen);
    /* Bad input: a clear error, nothing else. */
    json_decref(api_json("/v1/jobs?limit=0", 400));
    json_decref(api_json("/v1/jobs?organisation_id=nope", 400));
    json_decref(api_json("/v1/jobs/not-a-uuid", 400));
    json_decref(api_json("/v1/jobs/00000000-0000-4000-8000-000000000000", 404));
    json_decref(api_json("/v1/job-events?after=-1", 400));
    snprintf(path, sizeof(path), "/v1/connections/%s/xpm-clients?unmatched=maybe", CONN);
    json_decref(api_json(path, 400));
    json_decref(api_json("/v1/connections/00000000-0000-4000-8000-000000000000/xpm-clients", 404));
}

static void test_no_delivery_while_xpm_is_disabled(void **state)
{
    (void)state;
    /* An event the receiver refuses stays undelivered ... */
    pthread_mutex_lock(&R.mu);
    R.fail_all = true;
    pthread_mutex_unlock(&R.mu);
    int before = hooks_count();
    move_job(JOB_GAMMA, "Review");
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", RUN_WAIT_MS);
    expect_status(run, "succeeded");
    json_decref(run);
    assert_int_equal(events_of(JOB_GAMMA, "job.documents_done"), 1);
    assert_true(hooks_wait(before + 1, 20000));
    /* ... and, once XPM is disabled, is tried no more, though it is due. */
    char body[256];
    snprintf(body, sizeof(body), "{\"xpm\":{\"enabled\":false}}");
    settings(CONN, body, 200);
    usleep(500000);
    int stopped = hooks_count();
    free(sql("UPDATE app.job_events SET next_attempt_at = now() WHERE delivered_at IS NULL", 0));
    sleep(3);
    assert_int_equal(hooks_count(), stopped);
    /* Enabled again: delivered. */
    pthread_mutex_lock(&R.mu);
    R.fail_all = false;
    pthread_mutex_unlock(&R.mu);
    settings(CONN, "{\"xpm\":{\"enabled\":true}}", 200);
    assert_true(hooks_wait(stopped + 1, 20000));
    int64_t end = xst_now_ms() + 10000;
    while (xst_now_ms() < end &&
           sql_long("SELECT count(*) FROM app.job_events WHERE delivered_at IS NULL", 0) > 0) {
        usleep(100000);
    }
    assert_int_equal(sql_long("SELECT count(*) FROM app.job_events WHERE delivered_at IS NULL", 0),
                     0);
}

static void test_disabled_and_unscoped_connections(void **state)
{
    (void)state;
    char conn[40];
    char *org = connect_org("Plain Books", false, conn);
    settings(conn, "{\"entities\":[\"job\",\"contact\"]}", 200);
    long xpm_calls =
        xst_engine_sim_calls(E, EP_CLIENTS, 0) + xst_engine_sim_calls(E, EP_CURRENT, 0);
    json_t *run = xst_engine_run(E, conn, "{\"mode\":\"full\"}", RUN_WAIT_MS);
    expect_status(run, "succeeded");
    /* xpm disabled: no job step at all, and no call to XPM. */
    assert_int_equal(sql_long("SELECT count(*) FROM sync.run_steps s JOIN sync.runs r ON r.id = "
                              "s.run_id WHERE r.connection_id = $1 AND s.entity = 'job'",
                              1, conn),
                     0);
    assert_int_equal(
        xst_engine_sim_calls(E, EP_CLIENTS, 0) + xst_engine_sim_calls(E, EP_CURRENT, 0), xpm_calls);
    json_decref(run);
    /* Enabled, but the grant has no XPM scope: the job step fails, telling what to do. */
    settings(conn, "{\"xpm\":{\"enabled\":true}}", 200);
    run = xst_engine_run(E, conn, "{\"mode\":\"full\"}", RUN_WAIT_MS);
    expect_status(run, "failed");
    char *t = xs_json_dump(run, 0);
    if (strstr(t, "re-authorise it with POST /v1/connections/authorize and \\\"xpm\\\": true") ==
        NULL) {
        dump(run);
        fail_msg("the run does not say how to get the XPM scope");
    }
    free(t);
    json_decref(run);
    assert_int_equal(
        xst_engine_sim_calls(E, EP_CLIENTS, 0) + xst_engine_sim_calls(E, EP_CURRENT, 0), xpm_calls);
    free(org);
}

static void test_webhook_url_needs_a_secret(void **state)
{
    (void)state;
    /* An orchestrator without XS_JOB_WEBHOOK_SECRET refuses a webhook_url: events could not be
     * signed. */
    xst_engine *e2 = xst_engine_new("jobs_nosecret");
    char *env[] = {"XS_SCHEDULER=false", NULL};
    xst_engine_start_orchestrator(e2, env);
    char path[128], body[256];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", CONN);
    snprintf(body, sizeof(body), "{\"xpm\":{\"enabled\":true,\"webhook_url\":\"%s\"}}", HOOK_URL);
    xst_http r = xst_engine_api(e2, "PUT", path, body);
    assert_true(xst_http_error_is(&r, 400, "invalid", "XS_JOB_WEBHOOK_SECRET"));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "error"), "field")),
        "xpm.webhook_url");
    xst_http_free(&r);
    assert_int_equal(xst_engine_free(e2), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xpm_settings_are_checked),
        cmocka_unit_test(test_full_run_mirrors_jobs_and_links_clients),
        cmocka_unit_test(test_entering_a_mapped_state_once_despite_a_retried_step),
        cmocka_unit_test(test_leaving_a_mapped_state_once_with_history),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_no_delivery_while_xpm_is_disabled),
        cmocka_unit_test(test_disabled_and_unscoped_connections),
        cmocka_unit_test(test_webhook_url_needs_a_secret),
    };
    int rc = xst_result(cmocka_run_group_tests(tests, setup, teardown));
    curl_global_cleanup();
    return rc;
}
