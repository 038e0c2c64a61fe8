/*
 * fairness_test.c: one busy tenant does not hold up the others (issue 23, "One busy tenant
 * blocks all others"). A tenant with hundreds of single-record runs queued, its minute budget
 * spent, owns every one of the oldest pending steps; the claim goes round the connections with
 * ready work, so the other tenants' one-call runs queued after them start within moments
 * instead of waiting for the busy tenant's budget to come back.
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
#include "xs/json.h"

#define HOG_RUNS 600
#define OTHERS   40
/* How soon another tenant's run must start (it needs one call; the machine may be loaded). */
#define START_BOUND_MS 5000

/* Five calls a minute per tenant: the busy tenant spends its minute at once and then waits
 * most of it, holding hundreds of pending steps. */
static char *const ORCH_ENV[] = {"XS_SCHEDULER=false", "XS_BUDGET_TENANT_MINUTE=5",
                                 "XS_BUDGET_TENANT_BURST=5", NULL};

/* entity_run queues a one-record run on conn (a fetch of a Xero id) and returns its id. */
static void entity_run(xst_engine *e, const char *conn, char id[40])
{
    char path[128], body[160];
    char *xid = xst_engine_sql(e, "SELECT gen_random_uuid()", 0, NULL);
    snprintf(path, sizeof(path), "/v1/connections/%s/sync/entity", conn);
    snprintf(body, sizeof(body), "{\"entity\":\"contact\",\"xero_id\":\"%s\"}", xid);
    free(xid);
    xst_http r = xst_engine_api(e, "POST", path, body);
    if (r.status != 202) {
        fail_msg("POST %s: %ld %s", path, r.status, r.body);
    }
    snprintf(id, 40, "%s", xs_json_str_or(r.json, "id", ""));
    xst_http_free(&r);
}

static void test_busy_tenant_does_not_block_others(void **state)
{
    (void)state;
    xst_engine *e = xst_engine_new("fair");
    char tenants_env[32];
    snprintf(tenants_env, sizeof(tenants_env), "XS_SIM_TENANTS=%d", OTHERS + 1);
    char *const sim_env[] = {tenants_env, NULL};
    xst_engine_start_sim(e, sim_env);
    xst_engine_start_orchestrator(e, ORCH_ENV);
    xst_engine_start_services(e);
    /* Each organisation connects its own Xero tenant: each has its own budget. */
    json_t *tenants = xst_engine_sim_json(e, "GET", "/_sim/tenants", NULL);
    assert_int_equal(json_array_size(tenants), OTHERS + 1);
    char hog[40], conns[OTHERS][40], tenant[40];
    for (int i = 0; i <= OTHERS; i++) {
        char name[32], consent[96];
        snprintf(name, sizeof(name), "Org %d Ltd", i);
        snprintf(consent, sizeof(consent), "{\"tenants\":[\"%s\"]}",
                 xs_json_str_or(json_array_get(tenants, (size_t)i), "tenantId", ""));
        json_decref(xst_engine_sim_json(e, "POST", "/_sim/consent", consent));
        free(xst_engine_connected(e, name, i == 0 ? hog : conns[i - 1], tenant));
    }
    json_decref(tenants);
    assert_int_equal(
        xst_engine_sql_long(e, "SELECT count(DISTINCT tenant_id) FROM sync.connections", 0, NULL),
        OTHERS + 1);

    char id[40];
    for (int i = 0; i < HOG_RUNS; i++) {
        entity_run(e, hog, id);
    }
    /* The busy tenant's budget is spent, and its steps fill the front of the queue. */
    const char *hp[] = {hog};
    int64_t end = xst_now_ms() + 20000;
    while (xst_engine_sql_long(e,
                               "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND "
                               "status NOT IN ('queued', 'running')",
                               1, hp) < 5) {
        assert_true(xst_now_ms() < end);
        usleep(50000);
    }

    char runs[OTHERS][40];
    for (int i = 0; i < OTHERS; i++) {
        entity_run(e, conns[i], runs[i]);
    }
    for (int i = 0; i < OTHERS; i++) {
        const char *p[] = {runs[i]};
        int64_t until = xst_now_ms() + 30000;
        while (xst_engine_sql_long(e,
                                   "SELECT count(*) FROM sync.runs WHERE id = $1 AND "
                                   "finished_at IS NOT NULL",
                                   1, p) == 0) {
            if (xst_now_ms() > until) {
                char *steps = xst_engine_sql(
                    e,
                    "SELECT json_agg(json_build_object('run', r.status, 'step', s.status, "
                    "'kind', s.kind, 'attempts', s.attempts, 'not_before', s.not_before, "
                    "'error', s.error))::text FROM sync.runs r LEFT JOIN sync.run_steps s ON "
                    "s.run_id = r.id WHERE r.id = $1",
                    1, p);
                fail_msg("tenant %d's run did not end: %s", i, steps);
            }
            usleep(50000);
        }
        long waited = xst_engine_sql_long(e,
                                          "SELECT (extract(epoch FROM started_at - created_at) "
                                          "* 1000)::bigint FROM sync.runs WHERE id = $1",
                                          1, p);
        if (waited > START_BOUND_MS) {
            fail_msg("tenant %d's one-call run waited %ld ms to start", i, waited);
        }
    }
    /* The scenario held: the busy tenant still had most of its runs waiting. */
    long left = xst_engine_sql_long(
        e,
        "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND status IN ('queued', "
        "'running')",
        1, hp);
    assert_true(left > HOG_RUNS - 50);
    /* Each claim is timed (xs_claim_duration_seconds): at least one per run that ran. */
    xst_http m = xst_engine_api(e, "GET", "/metrics", NULL);
    assert_int_equal(m.status, 200);
    const char *c = strstr(m.body, "\nxs_claim_duration_seconds_count{result=\"claimed\"} ");
    assert_non_null(c);
    assert_true(atol(c + strlen("\nxs_claim_duration_seconds_count{result=\"claimed\"} ")) >=
                OTHERS + 5);
    xst_http_free(&m);
    assert_int_equal(xst_engine_free(e), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_tenant_does_not_block_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
