/*
 * resilience_test.c: what happens when things go wrong, end to end against xero-sim:
 *   - kill -9 of the contacts service and of the orchestrator in the middle of a full run,
 *     then restart: the run completes, nothing is created twice at Xero, no edit is lost;
 *   - Xero's rate limits at Xero's ratios (time scaled down: a "minute" of one second):
 *     pushing and pulling 20,000 records draws no 429;
 *   - 5xx, hung calls, resets and lost replies are retried with back-off to a complete run;
 *   - with the scheduler on, a new connection gets its initial import by itself;
 *   - kill -9 of the invoices service while it pushes bills that all share one number (Xero
 *     keeps no bill number unique): no bill is created twice.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

/* A run ended with the status wanted (the run printed when not). */
#define expect_status(run, want) assert_true(xst_run_status_is((run), (want)))

/* A world: one engine, one organisation, one connection. */
typedef struct world {
    xst_engine *e;
    char *org;
    char conn[40], tenant[40];
    xst_proc *orch, *contacts, *invoices;
} world;

static long wsql_long(world *w, const char *q, const char *p1)
{
    const char *p[] = {p1};
    char *v = xst_engine_sql(w->e, q, p1 != NULL ? 1 : 0, p);
    long n = v != NULL ? atol(v) : -1;
    free(v);
    return n;
}

static json_t *sim_json(world *w, const char *method, const char *path, const char *body)
{
    return xst_engine_sim_json(w->e, method, path, body);
}

static long sim_contacts(world *w)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s", w->tenant);
    json_t *t = sim_json(w, "GET", path, NULL);
    long n = (long)json_integer_value(json_object_get(json_object_get(t, "counts"), "Contacts"));
    json_decref(t);
    return n;
}

static json_t *sim_stats(world *w)
{
    return sim_json(w, "GET", "/_sim/stats", NULL);
}

/* start builds a world with sim and orchestrator variables and one contacts replica. */
static void start(world *w, const char *prefix, char *const sim_env[], char *const orch_env[],
                  bool connect)
{
    memset(w, 0, sizeof(*w));
    w->e = xst_engine_new(prefix);
    xst_engine_start_sim(w->e, sim_env);
    w->orch = xst_engine_start_orchestrator(w->e, orch_env);
    xst_engine_start_service(w->e, "auth", "auth-1", NULL);
    w->contacts = xst_engine_start_service(w->e, "contacts", "contacts-1", NULL);
    /* A run syncs every enabled entity: the chart of accounts and the bank transactions come
     * with the contacts. */
    w->invoices = xst_engine_start_service(w->e, "invoices", "invoices-1", NULL);
    xst_engine_start_service(w->e, "payments", "payments-1", NULL);
    xst_engine_start_service(w->e, "files", "files-1", NULL);
    xst_engine_start_service(w->e, "jobs", "jobs-1", NULL);
    if (!xst_engine_wait_live(w->e, "contacts", 1, 20000) ||
        !xst_engine_wait_live(w->e, "files", 1, 20000) ||
        !xst_engine_wait_live(w->e, "jobs", 1, 20000) ||
        !xst_engine_wait_live(w->e, "auth", 1, 20000) ||
        !xst_engine_wait_live(w->e, "invoices", 1, 20000) ||
        !xst_engine_wait_live(w->e, "payments", 1, 20000)) {
        xst_die("the services did not come up");
    }
    w->org = xst_engine_org(w->e, "Resilient Ltd");
    xst_http t = xst_engine_simctl(w->e, "GET", "/_sim/tenants", NULL);
    snprintf(w->tenant, sizeof(w->tenant), "%s",
             json_string_value(json_object_get(json_array_get(t.json, 0), "tenantId")));
    xst_http_free(&t);
    if (connect) {
        xst_http cb = xst_engine_connect(w->e, w->org);
        if (cb.status != 200) {
            xst_die("connect: %ld %s", cb.status, cb.body);
        }
        snprintf(w->conn, sizeof(w->conn), "%s",
                 json_string_value(json_object_get(
                     json_array_get(json_object_get(cb.json, "connections"), 0), "id")));
        xst_http_free(&cb);
    }
}

static void stop(world *w)
{
    assert_int_equal(xst_engine_free(w->e), 0);
    free(w->org);
}

static void seed(world *w, int contacts)
{
    char path[128], body[96];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", w->tenant);
    snprintf(body, sizeof(body), "{\"contacts\":%d,\"seed\":5}", contacts);
    json_decref(sim_json(w, "POST", path, body));
}

static void add_locals(world *w, int n, const char *tag)
{
    char q[512];
    char count[16];
    snprintf(count, sizeof(count), "%d", n);
    snprintf(q, sizeof(q),
             "INSERT INTO app.contacts (organisation_id, name, email) SELECT $1::uuid, '%s client "
             "' || g, 'client' || g || '@%s.example' FROM generate_series(1, $2::int) g",
             tag, tag);
    const char *p[] = {w->org, count};
    free(xst_engine_sql(w->e, q, 2, p));
}

static char *start_run(world *w, const char *mode)
{
    char path[128], body[64];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", w->conn);
    snprintf(body, sizeof(body), "{\"mode\":\"%s\"}", mode);
    xst_http r = xst_engine_api(w->e, "POST", path, body);
    if (r.status != 202) {
        fprintf(stderr, "sync: %ld %s\n", r.status, r.body);
    }
    assert_int_equal(r.status, 202);
    char *id = strdup(json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    return id;
}

static json_t *wait_run(world *w, const char *run, long timeout_ms);
/* run_to_success runs a sync of mode and expects it to succeed; the run's id (new). */
static char *run_to_success(world *w, const char *mode, long timeout_ms)
{
    char *run = start_run(w, mode);
    json_t *j = wait_run(w, run, timeout_ms);
    expect_status(j, "succeeded");
    json_decref(j);
    return run;
}

/* full_run_with_fault scripts one fault of the simulator on the contact calls of a method
 * (after `skip` such calls go through), then runs a full sync to success; the run's id. */
static char *full_run_with_fault(world *w, const char *method, const char *fault, int skip,
                                 long timeout_ms)
{
    char script[256];
    snprintf(script, sizeof(script),
             "{\"script\":[{\"method\":\"%s\",\"path\":\"/api.xro/2.0/Contacts\",\"fault\":"
             "\"%s\",\"skip\":%d,\"times\":1}]}",
             method, fault, skip);
    json_decref(sim_json(w, "POST", "/_sim/faults", script));
    return run_to_success(w, "full", timeout_ms);
}

static const char *run_status(world *w, const char *run, json_t **out)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/runs/%s", run);
    xst_http r = xst_engine_api(w->e, "GET", path, NULL);
    static char st[32];
    snprintf(st, sizeof(st), "%s",
             r.status == 200 ? json_string_value(json_object_get(r.json, "status"))
                             : "unreachable");
    if (out != NULL) {
        *out = json_incref(r.json);
    }
    xst_http_free(&r);
    return st;
}

static json_t *wait_run(world *w, const char *run, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    for (;;) {
        json_t *j = NULL;
        const char *st = run_status(w, run, &j);
        if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0 &&
            strcmp(st, "unreachable") != 0) {
            return j;
        }
        json_decref(j);
        if (xst_now_ms() > end) {
            fail_msg("run %s did not end (%s)", run, st);
        }
        usleep(100000);
    }
}

static long steps_done(world *w, const char *run)
{
    return wsql_long(w, "SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND status = 'done'",
                     run);
}

static void wait_steps(world *w, const char *run, long n, long timeout_ms)
{
    int64_t end = xst_now_ms() + timeout_ms;
    while (steps_done(w, run) < n) {
        if (xst_now_ms() > end) {
            fail_msg("run %s made no progress", run);
        }
        usleep(20000);
    }
}

/* kill -9 the contacts service and then the orchestrator mid-run; restart each; the run
 * completes with nothing doubled and every edit kept. */
static void test_kill9_mid_run(void **state)
{
    (void)state;
    world w;
    char *sim_env[] = {"XS_SIM_LATENCY=40ms", "XS_SIM_LIMIT_MINUTE=100000",
                       "XS_SIM_LIMIT_DAY=10000000", "XS_SIM_LIMIT_CONCURRENT=1000", NULL};
    char *orch_env[] = {"XS_SCHEDULER=false",
                        "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=10000000",
                        "XS_STEP_BACKOFF=100ms",
                        "XS_BUS_TIMEOUT=10s",
                        "XS_PULL_PAGE_SIZE=200",
                        "XS_PULL_PAGES_PER_STEP=2",
                        "XS_PUSH_DELAY=200ms",
                        NULL};
    start(&w, "kill9", sim_env, orch_env, true);
    seed(&w, 3000);
    add_locals(&w, 1500, "k9");
    char *run = start_run(&w, "full");

    /* Mid-pull: kill the only contacts replica, then bring it back. */
    wait_steps(&w, run, 4, 60000);
    xst_kill9(w.contacts);
    xst_engine_forget(w.e, w.contacts);
    xst_proc_free(w.contacts);
    usleep(300000);
    w.contacts = xst_engine_start_service(w.e, "contacts", "contacts-1b", NULL);

    /* An edit on each side while the run goes on. */
    char *lid = NULL;
    {
        const char *p[] = {w.org};
        lid = xst_engine_sql(w.e,
                             "SELECT id FROM app.contacts WHERE organisation_id = $1 AND name = "
                             "'k9 client 7'",
                             1, p);
    }
    free(xst_engine_sql(w.e,
                        "UPDATE app.contacts SET last_name = 'EditedDuringRun' WHERE name = "
                        "'k9 client 7'",
                        0, NULL));

    /* Mid-push: kill the orchestrator, then start it again. The local records go out through
     * the run's scan or, once the contacts are imported, through the realtime push run of the
     * outbox that holds them (whichever comes first; the other finds them sent). */
    int64_t end = xst_now_ms() + 120000;
    while (wsql_long(&w,
                     "SELECT count(*) FROM sync.run_steps s JOIN sync.runs r ON r.id = s.run_id "
                     "WHERE r.connection_id = (SELECT connection_id FROM sync.runs WHERE id = $1) "
                     "AND s.kind IN ('scan', 'push') AND s.status = 'done' AND "
                     "coalesce((s.result->'counts'->>'sent')::int, 0) > 0",
                     run) < 3) {
        if (xst_now_ms() > end) {
            json_t *j = NULL;
            run_status(&w, run, &j);
            char *t = xs_json_dump(j, XS_JSON_PRETTY);
            fprintf(stderr, "run: %s\n", t);
            free(t);
            json_decref(j);
            fail_msg("the run did not reach its push phase");
        }
        usleep(20000);
    }
    xst_kill9(w.orch);
    xst_engine_forget(w.e, w.orch);
    xst_proc_free(w.orch);
    w.orch = xst_engine_start_orchestrator(w.e, orch_env);
    assert_true(xst_engine_wait_live(w.e, "contacts", 1, 20000));

    json_t *j = wait_run(&w, run, 180000);
    expect_status(j, "succeeded");
    json_decref(j);
    /* Let the realtime push of the edit settle. */
    end = xst_now_ms() + 30000;
    while (wsql_long(&w,
                     "SELECT count(*) FROM sync.runs WHERE status IN ('queued', 'running') OR "
                     "EXISTS (SELECT 1 FROM sync.changes WHERE processed_at IS NULL)",
                     NULL) > 0 &&
           xst_now_ms() < end) {
        usleep(100000);
    }
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL), 4500);
    assert_int_equal(
        wsql_long(&w, "SELECT count(*) FROM sync.mappings WHERE entity = 'contact'", NULL), 4500);
    assert_int_equal(sim_contacts(&w), 4500);
    json_t *st = sim_stats(&w);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "duplicates"), "total")), 0);
    json_decref(st);
    /* The local edit reached Xero. */
    const char *p[] = {lid};
    char *xid = xst_engine_sql(w.e, "SELECT xero_id FROM sync.mappings WHERE local_id = $1", 1, p);
    assert_non_null(xid);
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", w.tenant, xid);
    end = xst_now_ms() + 20000;
    for (;;) {
        json_t *c = sim_json(&w, "GET", path, NULL);
        json_t *one = json_array_get(json_object_get(c, "Contacts"), 0);
        const char *ln = json_string_value(json_object_get(one != NULL ? one : c, "LastName"));
        bool ok = ln != NULL && strcmp(ln, "EditedDuringRun") == 0;
        json_decref(c);
        if (ok) {
            break;
        }
        assert_true(xst_now_ms() < end);
        usleep(200000);
    }
    free(xid);
    free(lid);
    free(run);
    stop(&w);
}

static long sim_count(world *w, const char *kind)
{
    char path[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s", w->tenant);
    json_t *t = sim_json(w, "GET", path, NULL);
    long n = (long)json_integer_value(json_object_get(json_object_get(t, "counts"), kind));
    json_decref(t);
    return n;
}

static void test_kill9_while_pushing_bills(void **state)
{
    (void)state;
    world w;
    char *sim_env[] = {"XS_SIM_LATENCY=60ms", "XS_SIM_LIMIT_MINUTE=100000",
                       "XS_SIM_LIMIT_DAY=10000000", "XS_SIM_LIMIT_CONCURRENT=1000", NULL};
    char *orch_env[] = {"XS_SCHEDULER=false",
                        "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=10000000",
                        "XS_STEP_BACKOFF=100ms",
                        "XS_BUS_TIMEOUT=10s",
                        "XS_PUSH_DELAY=200ms",
                        NULL};
    start(&w, "kill9bills", sim_env, orch_env, true);
    seed(&w, 100);
    free(run_to_success(&w, "full", 120000));
    long before = sim_count(&w, "Invoices");
    /* 1,000 bills of one (active: Xero takes none for an archived contact) supplier, every
     * one numbered "BILL-1" as suppliers do (each its own delivery, so none is the double of
     * another). */
    free(xst_engine_sql(
        w.e,
        "WITH c AS (SELECT id FROM app.contacts WHERE organisation_id = $1 AND status = "
        "'ACTIVE' ORDER BY id LIMIT 1), "
        "i AS (INSERT INTO app.invoices (organisation_id, contact_id, type, invoice_number, "
        "reference, status, date, due_date) SELECT $1, c.id, 'ACCPAY', 'BILL-1', 'delivery ' "
        "|| g, 'AUTHORISED', '2026-11-01'::date + (g % 28), '2026-12-15' FROM c, "
        "generate_series(1, 1000) g "
        "RETURNING id) INSERT INTO app.invoice_lines (organisation_id, invoice_id, position, "
        "description, quantity, unit_amount, account_code, tax_type) SELECT $1, i.id, 0, 'Stock', "
        "1, 10.5, '400', 'INPUT2' FROM i RETURNING 1",
        1, (const char *[]){w.org}));
    /* Mid-push: kill the only invoices replica, then bring it back. */
    int64_t end = xst_now_ms() + 60000;
    while (wsql_long(&w,
                     "SELECT count(*) FROM sync.run_steps WHERE kind = 'push' AND entity = "
                     "'invoice' AND status = 'done'",
                     NULL) < 3) {
        assert_true(xst_now_ms() < end);
        usleep(10000);
    }
    xst_kill9(w.invoices);
    xst_engine_forget(w.e, w.invoices);
    xst_proc_free(w.invoices);
    usleep(300000);
    w.invoices = xst_engine_start_service(w.e, "invoices", "invoices-1b", NULL);
    end = xst_now_ms() + 120000;
    while (wsql_long(&w,
                     "SELECT (SELECT count(*) FROM sync.runs WHERE status IN ('queued', "
                     "'running')) + (SELECT count(*) FROM sync.changes WHERE processed_at IS NULL)",
                     NULL) > 0) {
        assert_true(xst_now_ms() < end);
        usleep(100000);
    }
    /* Every bill once in Xero, each linked once here. */
    if (sim_count(&w, "Invoices") - before != 1000) {
        char *t = xst_engine_sql(
            w.e,
            "SELECT json_agg(json_build_object('mode', mode, 'status', status, 'error', error, "
            "'counts', counts, 'steps', (SELECT json_agg(json_build_object('kind', s.kind, "
            "'entity', s.entity, 'status', s.status, 'attempts', s.attempts, 'error', s.error, "
            "'result', s.result->'counts')) FROM sync.run_steps s WHERE s.run_id = r.id AND "
            "s.entity = 'invoice')))::text FROM sync.runs r",
            0, NULL);
        fprintf(stderr, "runs: %s\n", t);
        free(t);
    }
    assert_int_equal(sim_count(&w, "Invoices") - before, 1000);
    assert_int_equal(wsql_long(&w,
                               "SELECT count(DISTINCT m.xero_id) FROM sync.mappings m JOIN "
                               "app.invoices i ON i.id = m.local_id WHERE m.entity = 'invoice' "
                               "AND i.type = 'ACCPAY' AND i.invoice_number = 'BILL-1'",
                               NULL),
                     1000);
    assert_int_equal(
        wsql_long(&w, "SELECT count(*) FROM sync.runs WHERE status NOT IN ('succeeded')", NULL), 0);
    json_t *st = sim_stats(&w);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "duplicates"), "total")), 0);
    json_decref(st);
    stop(&w);
}

/* Xero's limits, a minute scaled to a second: 20,000 records each way, no 429. */
static void test_rate_limits_at_xero_ratios(void **state)
{
    (void)state;
    world w;
    char *sim_env[] = {"XS_SIM_LIMIT_CONCURRENT=5", "XS_SIM_LIMIT_MINUTE=60",
                       "XS_SIM_MINUTE_WINDOW=1s",   "XS_SIM_LIMIT_DAY=5000",
                       "XS_SIM_DAY_WINDOW=24m",     "XS_SIM_LIMIT_APP_MINUTE=10000",
                       "XS_SIM_LATENCY=5ms",        NULL};
    char *orch_env[] = {"XS_SCHEDULER=false",         "XS_BUDGET_TENANT_CONCURRENT=5",
                        "XS_BUDGET_TENANT_MINUTE=60", "XS_BUDGET_MINUTE_WINDOW=1s",
                        "XS_BUDGET_TENANT_DAY=5000",  "XS_BUDGET_DAY_WINDOW=24m",
                        "XS_BUDGET_MARGIN=50ms",      "XS_EXECUTORS=8",
                        "XS_PUSH_DELAY=200ms",        NULL};
    start(&w, "ratelimit", sim_env, orch_env, true);
    seed(&w, 10000);
    add_locals(&w, 10000, "rl");
    int64_t t0 = xst_now_ms();
    char *run = start_run(&w, "full");
    json_t *j = wait_run(&w, run, 240000);
    int64_t took = xst_now_ms() - t0;
    expect_status(j, "succeeded");
    json_decref(j);
    assert_int_equal(sim_contacts(&w), 20000);
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL), 20000);
    json_t *st = sim_stats(&w);
    json_t *limited = json_object_get(st, "rate_limited");
    fprintf(stderr, "20,000 records in %lld ms; calls %lld; 429s %lld\n", (long long)took,
            (long long)json_integer_value(json_object_get(st, "calls_total")),
            (long long)json_integer_value(json_object_get(limited, "total")));
    assert_int_equal(json_integer_value(json_object_get(limited, "total")), 0);
    json_t *mif = json_object_get(json_object_get(st, "max_in_flight"), "tenants");
    assert_true(json_integer_value(json_object_get(mif, w.tenant)) <= 5);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "duplicates"), "total")), 0);
    json_decref(st);
    /* The audit saw every call, none of them a 429. */
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM sync.api_calls WHERE status = 429", NULL),
                     0);
    free(run);
    stop(&w);
}

/* impatient_contacts replaces the contacts replica with one that waits only 1 s for Xero
 * (set through its environment, so hangs and slow writes outlast it), then connects. */
static void impatient_contacts(world *w, const char *name)
{
    xst_proc *c = w->contacts;
    assert_int_equal(xst_stop(c, 10000), 0);
    xst_engine_forget(w->e, c);
    xst_proc_free(c);
    char *fast[] = {"XS_XERO_TIMEOUT=1s", NULL};
    w->contacts = xst_engine_start_service(w->e, "contacts", name, fast);
    assert_true(xst_engine_wait_live(w->e, "contacts", 1, 20000));
    xst_http cb = xst_engine_connect(w->e, w->org);
    assert_int_equal(cb.status, 200);
    snprintf(w->conn, sizeof(w->conn), "%s",
             json_string_value(json_object_get(
                 json_array_get(json_object_get(cb.json, "connections"), 0), "id")));
    xst_http_free(&cb);
}

/* 5xx, hangs past the time-out, resets and lost replies: retried with back-off to the end. */
static void test_faults_are_retried(void **state)
{
    (void)state;
    world w;
    char *sim_env[] = {"XS_SIM_FAULTS=500=0.08,503=0.08,hang=0.03,reset=0.04,lost=0.04",
                       "XS_SIM_HANG=3s",
                       "XS_SIM_SEED=7",
                       "XS_SIM_LIMIT_MINUTE=100000",
                       "XS_SIM_LIMIT_DAY=10000000",
                       "XS_SIM_LIMIT_CONCURRENT=1000",
                       NULL};
    char *orch_env[] = {"XS_SCHEDULER=false", "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=10000000", "XS_STEP_BACKOFF=50ms",
                        "XS_STEP_BACKOFF_MAX=400ms", "XS_STEP_MAX_ATTEMPTS=30",
                        /* pages of 50: some 30 reads as well as the 12 writes, so that at
                         * these rates well over 10 calls meet a fault */
                        "XS_PULL_PAGE_SIZE=50", NULL};
    start(&w, "faults", sim_env, orch_env, false);
    impatient_contacts(&w, "contacts-f");
    seed(&w, 1500);
    add_locals(&w, 600, "fl");
    char *run = start_run(&w, "full");
    json_t *j = wait_run(&w, run, 240000);
    expect_status(j, "succeeded");
    json_t *steps = json_object_get(j, "steps");
    /* Retries happened, and were spaced out. */
    assert_true(json_integer_value(json_object_get(steps, "attempts")) >
                json_integer_value(json_object_get(steps, "total")));
    if (wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL) != 2100) {
        char *t = xs_json_dump(j, XS_JSON_PRETTY);
        fprintf(stderr, "%s\n", t);
        free(t);
    }
    json_decref(j);
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL), 2100);
    assert_int_equal(sim_contacts(&w), 2100);
    json_t *st = sim_stats(&w);
    json_t *f = json_object_get(st, "faults");
    long injected = 0;
    const char *k;
    json_t *v;
    json_object_foreach(f, k, v)
    {
        injected += (long)json_integer_value(v);
    }
    fprintf(stderr, "faults injected: %ld\n", injected);
    assert_true(injected > 10);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "duplicates"), "total")), 0);
    json_decref(st);
    assert_true(wsql_long(&w,
                          "SELECT count(*) FROM sync.api_calls WHERE status >= 500 OR status IS "
                          "NULL",
                          NULL) > 0);
    free(run);
    stop(&w);
}

/* start_paged starts a world without limits that pulls pages of 100 contacts, four pages a
 * step; latency ("60ms") is the simulator's for each call, or NULL for none. */
static void start_paged(world *w, const char *name, const char *latency)
{
    char lat[64];
    snprintf(lat, sizeof(lat), "XS_SIM_LATENCY=%s", latency != NULL ? latency : "0ms");
    char *sim_env[] = {lat, "XS_SIM_LIMIT_MINUTE=100000", "XS_SIM_LIMIT_DAY=10000000",
                       "XS_SIM_LIMIT_CONCURRENT=1000", NULL};
    char *orch_env[] = {"XS_SCHEDULER=false",
                        "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=10000000",
                        "XS_STEP_BACKOFF=50ms",
                        "XS_PULL_PAGE_SIZE=100",
                        "XS_PULL_PAGES_PER_STEP=4",
                        NULL};
    start(w, name, sim_env, orch_env, true);
}

static void test_pull_step_reads_pages_ahead(void **state)
{
    (void)state;
    world w;
    start_paged(&w, "ahead", NULL);
    seed(&w, 1000);
    char *run = full_run_with_fault(&w, "GET", "503", 5, 60000);
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL), 1000);
    assert_int_equal(
        wsql_long(&w, "SELECT count(DISTINCT xero_id) FROM sync.mappings WHERE entity = 'contact'",
                  NULL),
        1000);
    /* Every page once (P of them: ten, and the re-read of a page's last second the keyset
     * costs), and the one that failed, in steps of four pages: 4, then 1 and the failed one,
     * then the rest by four. Each step's reply counts its own calls. */
    const char *calls_q = "SELECT count(*) FROM sync.api_calls WHERE run_id = $1 AND method = "
                          "'GET' AND path LIKE '/api.xro/2.0/Contacts?%' AND status = 200";
    long pages = wsql_long(&w, calls_q, run);
    assert_true(pages >= 10 && pages <= 11);
    assert_int_equal(wsql_long(&w,
                               "SELECT count(*) FROM sync.api_calls WHERE run_id = $1 AND status = "
                               "503",
                               run),
                     1);
    const char *steps_q = "SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND entity = "
                          "'contact' AND kind = 'pull'";
    assert_int_equal(wsql_long(&w, steps_q, run), 2 + (pages - 5 + 3) / 4);
    assert_int_equal(wsql_long(&w,
                               "SELECT sum((result->>'calls')::int) FROM sync.run_steps WHERE "
                               "run_id = $1 AND entity = 'contact' AND kind = 'pull' AND status = "
                               "'done'",
                               run),
                     pages + 1);
    assert_int_equal(wsql_long(&w,
                               "SELECT sum((result->'counts'->>'created')::int) FROM "
                               "sync.run_steps WHERE run_id = $1 AND entity = 'contact' AND kind "
                               "= 'pull'",
                               run),
                     1000);
    /* The step that met the 503 wrote its first page and handed the second on. */
    assert_int_equal(wsql_long(&w,
                               "SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND entity "
                               "= 'contact' AND kind = 'pull' AND (result->>'calls')::int = 2 AND "
                               "(result->'counts'->>'fetched')::int = 100 AND result ? 'next' AND "
                               "(result->'call'->>'status')::int = 503",
                               run),
                     1);
    free(run);
    stop(&w);
}

/* A record Xero sends again byte for byte is known unchanged by its raw sum, without being
 * parsed; one sent as other text is read in full and its new sum kept; a garbled page is
 * refused whole and read again, both while records are parsed (the import) and while most
 * are known (the re-pull). */
static void test_records_known_by_their_text(void **state)
{
    (void)state;
    world w;
    start_paged(&w, "known", NULL);
    seed(&w, 1000);
    const char *garbled_q = "SELECT count(*) FROM sync.api_calls WHERE run_id = $1 AND method = "
                            "'GET' AND status = 200 AND error LIKE 'reply is not valid JSON: %'";
    /* The 6th GET, a page the helper thread reads ahead, comes garbled. */
    char *run = full_run_with_fault(&w, "GET", "garbled", 5, 60000);
    assert_int_equal(wsql_long(&w, garbled_q, run), 1);
    free(run);
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL), 1000);
    /* Every mapping keeps its record's raw sum, and what that text reads as: the base. */
    assert_int_equal(wsql_long(&w,
                               "SELECT count(*) FROM sync.mappings WHERE entity = 'contact' AND "
                               "xero_raw_sum ~ '^[0-9a-f]{64}$' AND xero_raw_checksum = "
                               "base_checksum",
                               NULL),
                     1000);
    /* One sum made stale (as if Xero had sent the record as other text last time), and one
     * record's memo and base checksum both set to a value no text reads as: only a record
     * known by its sum can keep that. */
    char *stale = xst_engine_sql(w.e,
                                 "SELECT xero_id FROM sync.mappings WHERE entity = 'contact' "
                                 "ORDER BY xero_id LIMIT 1",
                                 0, NULL);
    char *trusted = xst_engine_sql(w.e,
                                   "SELECT xero_id FROM sync.mappings WHERE entity = 'contact' "
                                   "ORDER BY xero_id DESC LIMIT 1",
                                   0, NULL);
    char *real =
        xst_engine_sql(w.e, "SELECT xero_raw_sum FROM sync.mappings WHERE xero_id = $1::uuid", 1,
                       (const char *const[]){stale});
    assert_int_equal(wsql_long(&w,
                               "WITH u AS (UPDATE sync.mappings SET xero_raw_sum = repeat('0', 64) "
                               "WHERE xero_id = $1::uuid RETURNING 1) SELECT count(*) FROM u",
                               stale),
                     1);
    assert_int_equal(wsql_long(&w,
                               "WITH u AS (UPDATE sync.mappings SET base_checksum = 'trusted', "
                               "xero_raw_checksum = 'trusted' WHERE xero_id = $1::uuid RETURNING "
                               "1) SELECT count(*) FROM u",
                               trusted),
                     1);
    /* The re-pull, its 6th GET garbled too. */
    run = full_run_with_fault(&w, "GET", "garbled", 5, 60000);
    assert_int_equal(wsql_long(&w, garbled_q, run), 1);
    assert_int_equal(wsql_long(&w,
                               "SELECT coalesce(sum((result->'counts'->>'created')::int + "
                               "(result->'counts'->>'updated')::int), -1) FROM sync.run_steps "
                               "WHERE run_id = $1 AND entity = 'contact' AND kind = 'pull'",
                               run),
                     0);
    assert_true(wsql_long(&w,
                          "SELECT sum((result->'counts'->>'unchanged')::int) FROM sync.run_steps "
                          "WHERE run_id = $1 AND entity = 'contact' AND kind = 'pull'",
                          run) >= 1000);
    free(run);
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL), 1000);
    /* The stale sum was read in full and its sum kept again; the other was not read. */
    char *now =
        xst_engine_sql(w.e, "SELECT xero_raw_sum FROM sync.mappings WHERE xero_id = $1::uuid", 1,
                       (const char *const[]){stale});
    assert_string_equal(now, real);
    assert_int_equal(wsql_long(&w,
                               "SELECT count(*) FROM sync.mappings WHERE xero_id = $1::uuid AND "
                               "base_checksum = 'trusted'",
                               trusted),
                     1);
    /* Fetched by its id (an entity run), the record is known the same way. */
    char path[160], body[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync/entity", w.conn);
    snprintf(body, sizeof(body), "{\"entity\":\"contact\",\"xero_id\":\"%s\"}", trusted);
    xst_http r = xst_engine_api(w.e, "POST", path, body);
    assert_int_equal(r.status, 202);
    json_t *one = wait_run(&w, json_string_value(json_object_get(r.json, "id")), 60000);
    expect_status(one, "succeeded");
    assert_int_equal(wsql_long(&w,
                               "SELECT sum((result->'counts'->>'unchanged')::int) FROM "
                               "sync.run_steps WHERE run_id = $1::uuid AND kind = 'fetch'",
                               json_string_value(json_object_get(one, "id"))),
                     1);
    json_decref(one);
    xst_http_free(&r);
    assert_int_equal(wsql_long(&w,
                               "SELECT count(*) FROM sync.mappings WHERE xero_id = $1::uuid AND "
                               "base_checksum = 'trusted'",
                               trusted),
                     1);
    json_t *st = sim_stats(&w);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "duplicates"), "total")), 0);
    json_decref(st);
    free(now);
    free(real);
    free(stale);
    free(trusted);
    stop(&w);
}

/* A lost read-ahead connection costs only time: the page it was to check is parsed whole,
 * and the next page opens the connection again. Its backends are killed all through a
 * re-pull (60 ms a call, so the run lasts). */
static void test_read_ahead_connection_lost(void **state)
{
    (void)state;
    world w;
    start_paged(&w, "lost", "60ms");
    seed(&w, 1000);
    char *run = run_to_success(&w, "full", 60000);
    free(run);
    run = start_run(&w, "full");
    long killed = 0;
    int64_t end = xst_now_ms() + 60000;
    for (;;) {
        killed += wsql_long(&w,
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                            "application_name = 'xs-contacts read-ahead'",
                            NULL);
        const char *st = run_status(&w, run, NULL);
        if (strcmp(st, "queued") != 0 && strcmp(st, "running") != 0) {
            break;
        }
        assert_true(xst_now_ms() < end);
        usleep(20000);
    }
    fprintf(stderr, "read-ahead connections killed: %ld\n", killed);
    assert_true(killed >= 2);
    json_t *j = wait_run(&w, run, 1000);
    expect_status(j, "succeeded");
    json_decref(j);
    assert_int_equal(wsql_long(&w,
                               "SELECT coalesce(sum((result->'counts'->>'created')::int + "
                               "(result->'counts'->>'updated')::int + "
                               "(result->'counts'->>'failed')::int), -1) FROM sync.run_steps "
                               "WHERE run_id = $1 AND entity = 'contact' AND kind = 'pull'",
                               run),
                     0);
    free(run);
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL), 1000);
    assert_int_equal(wsql_long(&w,
                               "SELECT count(*) FROM sync.mappings WHERE entity = 'contact' AND "
                               "xero_raw_checksum = base_checksum",
                               NULL),
                     1000);
    stop(&w);
}

/* A pull step asks for no new page after XS_PULL_STEP_TIME, so a push of the same entity
 * never waits long behind it: with 200 ms a call and 500 ms a step, no step makes more than
 * three calls, however many pages it may read. */
static void test_pull_step_time(void **state)
{
    (void)state;
    world w;
    char *sim_env[] = {"XS_SIM_LATENCY=200ms", "XS_SIM_LIMIT_MINUTE=100000",
                       "XS_SIM_LIMIT_DAY=10000000", "XS_SIM_LIMIT_CONCURRENT=1000", NULL};
    char *orch_env[] = {"XS_SCHEDULER=false",
                        "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=10000000",
                        "XS_PULL_PAGE_SIZE=100",
                        "XS_PULL_PAGES_PER_STEP=8",
                        "XS_PULL_STEP_TIME=500ms",
                        NULL};
    start(&w, "steptime", sim_env, orch_env, true);
    seed(&w, 1000);
    char *run = run_to_success(&w, "full", 60000);
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL), 1000);
    long pages = wsql_long(&w,
                           "SELECT count(*) FROM sync.api_calls WHERE run_id = $1 AND method = "
                           "'GET' AND path LIKE '/api.xro/2.0/Contacts?%'",
                           run);
    assert_true(pages >= 10);
    long most = wsql_long(&w,
                          "SELECT max((result->>'calls')::int) FROM sync.run_steps WHERE run_id = "
                          "$1 AND entity = 'contact' AND kind = 'pull'",
                          run);
    assert_true(most >= 2 && most <= 3);
    assert_true(wsql_long(&w,
                          "SELECT count(*) FROM sync.run_steps WHERE run_id = $1 AND entity = "
                          "'contact' AND kind = 'pull'",
                          run) >= (pages + 2) / 3);
    free(run);
    stop(&w);
}

/* A push that Xero is slow to apply: the service gives up waiting and the step is sent
 * again with the same Idempotency-Key while Xero is still applying the first; Xero answers
 * 409, which is a reason to wait and ask again, never a failed item. */
static void test_slow_push_waits_for_its_key(void **state)
{
    (void)state;
    world w;
    char *sim_env[] = {"XS_SIM_HANG=2500ms", "XS_SIM_LIMIT_MINUTE=100000",
                       "XS_SIM_LIMIT_DAY=10000000", "XS_SIM_LIMIT_CONCURRENT=1000", NULL};
    char *orch_env[] = {"XS_SCHEDULER=false",
                        "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=10000000",
                        "XS_STEP_BACKOFF=100ms",
                        "XS_STEP_BACKOFF_MAX=400ms",
                        "XS_STEP_MAX_ATTEMPTS=30",
                        NULL};
    start(&w, "slowpush", sim_env, orch_env, false);
    impatient_contacts(&w, "contacts-s");
    add_locals(&w, 120, "sp");
    char *run = full_run_with_fault(&w, "POST", "slow", 0, 120000);
    assert_int_equal(sim_contacts(&w), 120);
    assert_int_equal(
        wsql_long(&w, "SELECT count(*) FROM sync.mappings WHERE entity = 'contact'", NULL), 120);
    json_t *st = sim_stats(&w);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "faults"), "slow")), 1);
    assert_true(
        json_integer_value(json_object_get(json_object_get(st, "idempotency"), "conflicts")) >= 1);
    assert_true(
        json_integer_value(json_object_get(json_object_get(st, "idempotency"), "replays")) >= 1);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "duplicates"), "total")), 0);
    json_decref(st);
    free(run);
    stop(&w);
}

/* With the scheduler on, connecting is all it takes: the initial import starts by itself. */
static void test_scheduler_starts_the_initial_import(void **state)
{
    (void)state;
    world w;
    /* No window: the full runs at XS_SCHEDULE_FULL_AT itself (sched_test spreads them). */
    char *orch_env[] = {"XS_SCHEDULER=true", "XS_SCHEDULE_JITTER=0", "XS_SCHEDULE_FULL_WINDOW=0",
                        NULL};
    start(&w, "scheduler", NULL, orch_env, false);
    seed(&w, 250);
    xst_http cb = xst_engine_connect(w.e, w.org);
    assert_int_equal(cb.status, 200);
    xst_http_free(&cb);
    int64_t end = xst_now_ms() + 60000;
    while (wsql_long(&w,
                     "SELECT count(*) FROM sync.runs WHERE mode = 'full' AND trigger = "
                     "'schedule' AND status = 'succeeded'",
                     NULL) < 1) {
        assert_true(xst_now_ms() < end);
        usleep(200000);
    }
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM app.contacts", NULL), 250);
    /* Both schedules are durable, the next full one at 02:00 UTC. */
    assert_int_equal(wsql_long(&w, "SELECT count(*) FROM sync.schedules", NULL), 2);
    assert_int_equal(wsql_long(&w,
                               "SELECT count(*) FROM sync.schedules WHERE kind = 'full' AND "
                               "to_char(next_run_at AT TIME ZONE 'UTC', 'HH24:MI') = '02:00' AND "
                               "next_run_at > now()",
                               NULL),
                     1);
    assert_int_equal(wsql_long(&w,
                               "SELECT count(*) FROM sync.schedules WHERE kind = 'incremental' AND "
                               "next_run_at > now() + interval '14 minutes'",
                               NULL),
                     1);
    /* XS_SCHEDULE_FULL_AT changed while the orchestrator was down: the next full run moves to
     * the new time when it starts again, not after the old time has fired. */
    assert_int_equal(xst_stop(w.e->orch, 20000), 0);
    xst_proc_free(w.e->orch);
    char *later[] = {"XS_SCHEDULER=true", "XS_SCHEDULE_JITTER=0", "XS_SCHEDULE_FULL_WINDOW=0",
                     "XS_SCHEDULE_FULL_AT=04:30", NULL};
    xst_engine_start_orchestrator(w.e, later);
    end = xst_now_ms() + 10000;
    while (wsql_long(&w,
                     "SELECT count(*) FROM sync.schedules WHERE kind = 'full' AND "
                     "to_char(next_run_at AT TIME ZONE 'UTC', 'HH24:MI') = '04:30' AND "
                     "next_run_at > now()",
                     NULL) < 1) {
        assert_true(xst_now_ms() < end);
        usleep(100000);
    }
    stop(&w);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (getenv("XST_ONLY") != NULL) {
        cmocka_set_test_filter(getenv("XST_ONLY")); /* one test, by name (a glob) */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_are_retried),
        cmocka_unit_test(test_pull_step_reads_pages_ahead),
        cmocka_unit_test(test_records_known_by_their_text),
        cmocka_unit_test(test_read_ahead_connection_lost),
        cmocka_unit_test(test_pull_step_time),
        cmocka_unit_test(test_slow_push_waits_for_its_key),
        cmocka_unit_test(test_scheduler_starts_the_initial_import),
        cmocka_unit_test(test_kill9_mid_run),
        cmocka_unit_test(test_kill9_while_pushing_bills),
        cmocka_unit_test(test_rate_limits_at_xero_ratios),
    };
    return xst_result(cmocka_run_group_tests(tests, NULL, NULL));
}
