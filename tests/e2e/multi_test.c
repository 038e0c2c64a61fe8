/*
 * multi_test.c: two orchestrators against one database (issue 23, "No single point of
 * failure"; docs/ARCHITECTURE.md, "Several orchestrators"). The domain services dial both
 * (XS_BUS_URL lists both buses). The 256 shards split between them (GET /health, "leases"); a
 * mass import of TENANTS tenants, its runs asked for alternately through either one's REST
 * API, runs under an app-wide limit low enough that it takes tens of seconds; one orchestrator
 * is killed with SIGKILL in the middle of it, steps of it in flight. Within XS_LEASE_TTL and a
 * few seconds the other holds every shard; the steps the dead one left running are run again
 * once no domain service can still be working on them (not before twice XS_BUS_TIMEOUT plus
 * 15 s after they started), and every run finishes. Then the chaos suite's checks, for each tenant:
 * nothing twice in Xero (nor at the simulator's count of duplicate creations), nothing twice
 * locally, every record linked both ways (nothing lost), no stuck run, an empty outbox; and
 * zero 429s at the simulator. Last, an orchestrator that joins gets half the shards, and one
 * that stops cleanly gives its shards back at once.
 *
 * Both are given the simulator's whole app limit (XS_BUDGET_APP_MINUTE): they take its permits
 * from one ledger in PostgreSQL (the shared app budget, appbudget.h), so together they never
 * exceed it whoever runs what, and the survivor has all of it after the kill.
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

#include "chaos.h"
#include "engine.h"
#include "xs/json.h"

#define TENANTS       20
#define XERO_RECORDS  12 /* contacts made in Xero per tenant, before its import */
#define LOCAL_RECORDS 4  /* contacts made locally per tenant, pushed by its import */
#define SEED          23 /* the chaos checks' marker: names start "CHX23-" */
#define TTL_MS        6000
/* A step left running is run again no sooner than this after it started (twice
 * XS_BUS_TIMEOUT plus 15 s): nobody can still be working on it by then. */
#define INFLIGHT_MS 25000

/* The simulator: APP_CALLS calls per WINDOW for the whole app. */
static char *const SIM_ENV[] = {"XS_SIM_LIMIT_APP_MINUTE=10", "XS_SIM_MINUTE_WINDOW=2s",
                                "XS_SIM_LIMIT_MINUTE=60", "XS_SIM_LATENCY=400ms", NULL};

/* Each orchestrator: half the app's calls, the same window (a margin of 200 ms each side). */
static char *const ORCH_ENV[] = {"XS_SCHEDULER=false",
                                 "XS_LEASE_TTL=6s",
                                 "XS_BUS_TIMEOUT=5s",
                                 "XS_BUDGET_APP_MINUTE=10",
                                 "XS_BUDGET_MINUTE_WINDOW=2s",
                                 "XS_BUDGET_MARGIN=200ms",
                                 "XS_BUDGET_TENANT_MINUTE=30",
                                 "XS_BUDGET_TENANT_CONCURRENT=2",
                                 "XS_STEP_BACKOFF=100ms",
                                 "XS_STEP_BACKOFF_MAX=1s",
                                 "XS_PUSH_DELAY=100ms",
                                 "XS_PUSH_POLL=200ms",
                                 "XS_PULL_PAGE_SIZE=4",
                                 "XS_PULL_PAGES_PER_STEP=1",
                                 NULL};

typedef struct tenant {
    char *org;
    char conn[40], tenant[40], run[40];
} tenant;

static tenant T[TENANTS];

/* health returns GET /health of the orchestrator at base (new), or NULL when it does not
 * answer. */
static json_t *health(const char *base)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/health", base);
    xst_http h = xst_http_do("GET", url, NULL, NULL, 5000);
    json_t *j = h.json != NULL ? json_incref(h.json) : NULL;
    xst_http_free(&h);
    return j;
}

/* owned is how many shards the orchestrator at base says it acts for (-1: no answer). */
static long owned(const char *base)
{
    json_t *h = health(base);
    long n = h != NULL
                 ? (long)json_integer_value(json_object_get(json_object_get(h, "leases"), "shards"))
                 : -1;
    json_decref(h);
    return n;
}

/* wait_owned waits up to timeout_ms until the orchestrators at a and b (b may be NULL: a
 * alone) own na and nb shards; how long it took (ms), or -1. */
static long wait_owned(const char *a, long na, const char *b, long nb, long timeout_ms)
{
    int64_t t0 = xst_now_ms();
    while (xst_now_ms() - t0 < timeout_ms) {
        if (owned(a) == na && (b == NULL || owned(b) == nb)) {
            return (long)(xst_now_ms() - t0);
        }
        usleep(100000);
    }
    return -1;
}

/* wait_live waits until the orchestrator at base sees a live replica of every domain. */
static void wait_live(const char *base)
{
    int64_t end = xst_now_ms() + 20000;
    while (xst_now_ms() < end) {
        json_t *h = health(base);
        bool ok = h != NULL && strcmp(xs_json_str_or(h, "status", ""), "ok") == 0;
        json_decref(h);
        if (ok) {
            return;
        }
        usleep(100000);
    }
    fail_msg("the orchestrator at %s does not see every domain", base);
}

/* sim_post calls the simulator's control API and dies unless it answered 200 or 201. */
static json_t *sim_post(xst_engine *e, const char *method, const char *path, const char *body)
{
    return xst_engine_sim_json(e, method, path, body);
}

/* tenant_make makes tenant i: an organisation in the simulator with XERO_RECORDS marked
 * contacts, a local organisation with LOCAL_RECORDS marked contacts, and their connection. */
static void tenant_make(xst_engine *e, int i)
{
    char body[256], path[160], name[64];
    snprintf(body, sizeof(body), "{\"name\":\"Multi %d\"}", i);
    json_t *t = sim_post(e, "POST", "/_sim/tenants", body);
    snprintf(T[i].tenant, sizeof(T[i].tenant), "%s", xs_json_str_or(t, "tenantId", ""));
    json_decref(t);
    assert_int_equal(strlen(T[i].tenant), 36);
    for (int k = 0; k < XERO_RECORDS; k++) {
        snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts", T[i].tenant);
        snprintf(body, sizeof(body), "{\"Name\":\"CHX%d-X%d-%d\"}", SEED, i, k);
        json_decref(sim_post(e, "PUT", path, body));
    }
    snprintf(body, sizeof(body), "{\"tenants\":[\"%s\"]}", T[i].tenant);
    json_decref(sim_post(e, "POST", "/_sim/consent", body));
    snprintf(name, sizeof(name), "Multi Ltd %d", i);
    T[i].org = xst_engine_org(e, name);
    for (int k = 0; k < LOCAL_RECORDS; k++) {
        snprintf(name, sizeof(name), "CHX%d-L%d-%d", SEED, i, k);
        free(xst_engine_sqlf(e, "INSERT INTO app.contacts (organisation_id, name) VALUES ($1, $2)",
                             2, T[i].org, name));
    }
    xst_http cb = xst_engine_connect(e, T[i].org);
    assert_int_equal(cb.status, 200);
    json_t *c0 = json_array_get(json_object_get(cb.json, "connections"), 0);
    snprintf(T[i].conn, sizeof(T[i].conn), "%s", xs_json_str_or(c0, "id", ""));
    assert_string_equal(xs_json_str_or(c0, "tenant_id", ""), T[i].tenant);
    xst_http_free(&cb);
}

/* holder_of is the lease holder of connection conn's shard (its tenant's; new). */
static char *holder_of(xst_engine *e, const char *conn)
{
    return xst_engine_sqlf(
        e,
        "SELECT holder FROM sync.shard_leases WHERE shard = sync.shard_of((SELECT "
        "tenant_id FROM sync.connections WHERE id = $1)) AND expires_at > now()",
        1, conn);
}

/* check_tenant runs the chaos suite's checks for tenant i; the failures they count. */
static long check_tenant(xst_engine *e, int i)
{
    chaos_world w;
    memset(&w, 0, sizeof(w));
    w.opt.seed = SEED;
    w.e = e;
    w.org = T[i].org;
    snprintf(w.conn, sizeof(w.conn), "%s", T[i].conn);
    snprintf(w.tenant, sizeof(w.tenant), "%s", T[i].tenant);
    chaos_ledger_init(&w.L);
    w.results = json_object();
    chaos_check(&w);
    long bad = 0;
    const char *k;
    json_t *v;
    json_object_foreach(w.results, k, v)
    {
        if (json_integer_value(v) != 0) {
            fprintf(stderr, "tenant %d (%s): %s = %lld\n", i, T[i].tenant, k,
                    (long long)json_integer_value(v));
            bad += (long)json_integer_value(v);
        }
    }
    /* Nothing lost: as many contacts here as in Xero, all of them. */
    long local = xst_engine_sql_longf(
        e, "SELECT count(*) FROM app.contacts WHERE organisation_id = $1", 1, T[i].org);
    assert_int_equal(local, XERO_RECORDS + LOCAL_RECORDS);
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s", T[i].tenant);
    json_t *st = xst_engine_sim_json(e, "GET", path, NULL);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "counts"), "Contacts")),
                     XERO_RECORDS + LOCAL_RECORDS);
    json_decref(st);
    json_decref(w.results);
    chaos_ledger_fini(&w.L);
    return bad;
}

static void test_failover(void **state)
{
    (void)state;
    xst_engine *e = xst_engine_new("multi");
    xst_engine_add_orchestrator(e);
    xst_engine_start_sim(e, SIM_ENV);
    xst_engine_start_orchestrator(e, ORCH_ENV);
    xst_engine_start_orchestrator2(e, ORCH_ENV);
    xst_engine_start_services(e);
    wait_live(e->api2);

    /* The shards split: half each, within a few renewals. */
    assert_true(wait_owned(e->api, 128, e->api2, 128, 4 * TTL_MS) >= 0);
    json_t *h = health(e->api2);
    json_t *holders = json_object_get(json_object_get(h, "leases"), "holders");
    assert_int_equal(json_array_size(holders), 2);
    char id2[200];
    snprintf(id2, sizeof(id2), "%s",
             xs_json_str_or(json_object_get(h, "leases"), "orchestrator", ""));
    json_decref(h);

    for (int i = 0; i < TENANTS; i++) {
        tenant_make(e, i);
    }
    /* Connections in both halves. */
    int mine2 = 0;
    for (int i = 0; i < TENANTS; i++) {
        char *holder = holder_of(e, T[i].conn);
        assert_non_null(holder);
        mine2 += strcmp(holder, id2) == 0 ? 1 : 0;
        free(holder);
    }
    assert_true(mine2 > 0 && mine2 < TENANTS);

    /* The mass import: each run asked for through one orchestrator or the other, whoever holds
     * its shard. */
    for (int i = 0; i < TENANTS; i++) {
        char path[160];
        snprintf(path, sizeof(path), "/v1/connections/%s/sync", T[i].conn);
        xst_http r =
            xst_engine_api_at(i % 2 == 0 ? e->api : e->api2, "POST", path, "{\"mode\":\"full\"}");
        assert_int_equal(r.status, 202);
        snprintf(T[i].run, sizeof(T[i].run), "%s", xs_json_str_or(r.json, "id", ""));
        xst_http_free(&r);
    }
    /* Under way, not nearly done: then orchestrator 2 dies. */
    int64_t t0 = xst_now_ms();
    while (xst_now_ms() - t0 < 60000 &&
           xst_engine_sql_long(e,
                               "SELECT count(*) FROM sync.api_calls WHERE path LIKE '/api.xro/%' "
                               "AND status < 300",
                               0, NULL) < 60) {
        usleep(100000);
    }
    /* Each call takes 400 ms at the simulator: wait for steps in flight of connections whose
     * shard orchestrator 2 holds. Its executors claim only those (engine.c, claim, through
     * orch_lease_shards), so it dies with steps in flight; a claim that did not follow the
     * leases would let orchestrator 1 run them, and the test would find none left below. */
    while (xst_now_ms() - t0 < 60000 &&
           xst_engine_sql_longf(e,
                                "SELECT count(*) FROM sync.run_steps s JOIN sync.connections c ON "
                                "c.id = s.connection_id JOIN sync.shard_leases l ON l.shard = "
                                "sync.shard_of(c.tenant_id) WHERE s.status = 'running' AND "
                                "l.holder = $1",
                                1, id2) < 3) {
        usleep(20000);
    }
    long done_before = xst_engine_sql_long(
        e, "SELECT count(*) FROM sync.runs WHERE status NOT IN ('queued', 'running')", 0, NULL);
    assert_true(done_before < TENANTS);
    xst_proc *o2 = e->orch2;
    xst_kill9(o2);
    char *killed_at = xst_engine_sql(e, "SELECT now()::text", 0, NULL);
    xst_engine_forget(e, o2);
    xst_proc_free(o2);
    fprintf(stderr, "multi: orchestrator 2 killed with %ld runs of %d over\n", done_before,
            TENANTS);
    /* Its steps stay running (orchestrator 1's end within a call's time): they are run again
     * only once their domain service cannot be working on them any more. */
    usleep(3000000);
    char *orphans = xst_engine_sqlf(e,
                                    "SELECT json_object_agg(id, (extract(epoch FROM started_at) * "
                                    "1000)::bigint)::text FROM sync.run_steps WHERE status = "
                                    "'running' AND started_at < $1::timestamptz",
                                    1, killed_at);
    assert_non_null(orphans);
    json_t *left = json_loads(orphans, 0, NULL);
    assert_true(json_object_size(left) >= 1);
    fprintf(stderr, "multi: %zu steps left running by orchestrator 2: %s\n", json_object_size(left),
            orphans);
    free(orphans);
    free(killed_at);

    /* Every shard with orchestrator 1 within the lease's time and a renewal (plus the checks'
     * own poll). */
    long took = wait_owned(e->api, 256, NULL, 0, TTL_MS + TTL_MS / 3 + 3000);
    fprintf(stderr, "multi: orchestrator 1 holds every shard %ld ms after the kill\n", took);
    assert_true(took >= 0);

    /* Every run finishes, read through the survivor whichever orchestrator it was asked of. */
    for (int i = 0; i < TENANTS; i++) {
        json_t *run = xst_engine_wait_run(e, T[i].run, 240000);
        assert_true(xst_run_status_is(run, "succeeded"));
        json_decref(run);
    }
    assert_true(xst_engine_settle(e, 60000));
    /* Each step orchestrator 2 left running was done, started again no sooner than it could
     * no longer be in flight (the only start recorded after the first is the re-run's). */
    const char *sid;
    json_t *was;
    json_object_foreach(left, sid, was)
    {
        char *st = xst_engine_sqlf(e,
                                   "SELECT status || ' ' || (extract(epoch FROM started_at) * "
                                   "1000)::bigint FROM sync.run_steps WHERE id = $1::bigint",
                                   1, sid);
        assert_non_null(st);
        long long again = atoll(strchr(st, ' ') + 1);
        assert_true(strncmp(st, "done ", 5) == 0);
        assert_true(again >= (long long)json_integer_value(was) + INFLIGHT_MS);
        free(st);
    }
    json_decref(left);

    long bad = 0;
    for (int i = 0; i < TENANTS; i++) {
        bad += check_tenant(e, i);
    }
    assert_int_equal(bad, 0);
    json_t *st = xst_engine_sim_json(e, "GET", "/_sim/stats", NULL);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(st, "rate_limited"), "total")), 0);
    json_decref(st);
    assert_int_equal(
        xst_engine_sql_long(e, "SELECT count(*) FROM sync.api_calls WHERE status = 429", 0, NULL),
        0);

    /* A new orchestrator joins: it gets half. Stopped cleanly, it gives them back at once
     * (well before its leases could expire). */
    xst_engine_start_orchestrator2(e, ORCH_ENV);
    assert_true(wait_owned(e->api, 128, e->api2, 128, 4 * TTL_MS) >= 0);
    /* A connection's stats give its tenant's budget whichever orchestrator is asked: the
     * holder's own, or, from the other, the one the audit gives (as a new holder seeds it),
     * which counts no more than the holder's (that one also counts permits a step took
     * without calling). */
    h = health(e->api2);
    snprintf(id2, sizeof(id2), "%s",
             xs_json_str_or(json_object_get(h, "leases"), "orchestrator", ""));
    json_decref(h);
    for (int i = 0; i < TENANTS; i++) {
        char path[160];
        snprintf(path, sizeof(path), "/v1/connections/%s/stats", T[i].conn);
        char *holder = holder_of(e, T[i].conn);
        assert_non_null(holder);
        bool two = strcmp(holder, id2) == 0;
        free(holder);
        xst_http own = xst_engine_api_at(two ? e->api2 : e->api, "GET", path, NULL);
        xst_http other = xst_engine_api_at(two ? e->api : e->api2, "GET", path, NULL);
        assert_int_equal(own.status, 200);
        assert_int_equal(other.status, 200);
        json_t *bo = json_object_get(own.json, "budget"),
               *bx = json_object_get(other.json, "budget");
        long calls = xst_engine_sql_longf(e,
                                          "SELECT count(*) FROM sync.api_calls WHERE tenant_id = "
                                          "$1::uuid AND path LIKE '/api.xro/%'",
                                          1, T[i].tenant);
        assert_true(calls > 0);
        long limit = (long)json_integer_value(json_object_get(bx, "day_limit"));
        assert_int_equal(json_integer_value(json_object_get(bx, "day_left")), limit - calls);
        assert_true(json_integer_value(json_object_get(bo, "day_left")) <= limit - calls);
        xst_http_free(&own);
        xst_http_free(&other);
    }
    assert_int_equal(xst_stop(e->orch2, 10000), 0);
    xst_proc *o3 = e->orch2;
    xst_engine_forget(e, o3);
    xst_proc_free(o3);
    long back = wait_owned(e->api, 256, NULL, 0, TTL_MS);
    assert_true(back >= 0 && back < TTL_MS / 3 + 1500);
    assert_int_equal(
        xst_engine_sql_long(e, "SELECT count(*) FROM sync.orchestrators WHERE expires_at > now()",
                            0, NULL),
        1);

    for (int i = 0; i < TENANTS; i++) {
        free(T[i].org);
    }
    assert_int_equal(xst_engine_free(e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover),
    };
    return xst_result(cmocka_run_group_tests(tests, NULL, NULL));
}
