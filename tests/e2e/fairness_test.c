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
    char all[OTHERS + 1][40], hog[40], (*conns)[40] = all + 1;
    xst_engine_connect_tenants(e, OTHERS + 1, "Org", all);
    snprintf(hog, sizeof(hog), "%s", all[0]);
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

/* Full runs of contacts and invoices for TURN_TENANTS tenants at once under an app-wide budget
 * of TURN_APP calls a TURN_WINDOW_MS window: the claim's round gives each tenant a turn in
 * turn, a round of them takes TURN_TENANTS / TURN_APP windows (8 s), and while the app's window
 * is spent a step that needs no permit is looked for only among the next 16 connections of the
 * round. */
#define TURN_TENANTS   40
#define TURN_APP       10
#define TURN_WINDOW_MS 2000
/* How soon a scan that needs no permit starts after the pull before it ended: on the executor
 * that ran the pull, at once (the machine may be loaded). */
#define FOLLOW_BOUND_MS 1500

/* A step that makes no call (a full run's scan after each pull, walking local records) does not
 * spend its tenant's turn in the round: it runs at once after the pull that made it ready,
 * outside the round. When it took the tenant's turn, the tenant made no call that round, and
 * in a mass import calls stopped being shared in step. */
static void test_scan_does_not_spend_a_turn(void **state)
{
    (void)state;
    xst_engine *e = xst_engine_new("turns");
    xst_engine_start_app_bound(e, TURN_TENANTS, TURN_APP, TURN_WINDOW_MS);
    char conns[TURN_TENANTS][40];
    xst_engine_connect_tenants(e, TURN_TENANTS, "Turn", conns);
    char runs[TURN_TENANTS][40];
    for (int i = 0; i < TURN_TENANTS; i++) {
        char path[128];
        snprintf(path, sizeof(path), "/v1/connections/%s/sync", conns[i]);
        xst_http r = xst_engine_api(e, "POST", path,
                                    "{\"mode\":\"full\",\"entities\":[\"contact\",\"invoice\"]}");
        assert_int_equal(r.status, 202);
        snprintf(runs[i], sizeof(runs[i]), "%s", xs_json_str_or(r.json, "id", ""));
        xst_http_free(&r);
    }
    for (int i = 0; i < TURN_TENANTS; i++) {
        json_decref(xst_engine_wait_run(e, runs[i], 180000));
    }
    /* Each scan that held no permit (its first pass; the input says no "calls"), and how long
     * after its run's pull of the entity ended it started. */
    static const char GAPS[] =
        "SELECT concat_ws(' ', count(*), coalesce(max(g), 0), coalesce(percentile_disc(0.5) "
        "WITHIN GROUP (ORDER BY g), 0)) FROM (SELECT (extract(epoch FROM s.started_at - (SELECT "
        "max(p.finished_at) FROM sync.run_steps p WHERE p.run_id = s.run_id AND p.entity = "
        "s.entity AND p.kind = 'pull')) * 1000)::bigint AS g FROM sync.run_steps s WHERE s.kind "
        "= 'scan' AND NOT (s.input ? 'calls') AND EXISTS (SELECT 1 FROM sync.run_steps p WHERE "
        "p.run_id = s.run_id AND p.entity = s.entity AND p.kind = 'pull')) x";
    char *row = xst_engine_sql(e, GAPS, 0, NULL);
    assert_non_null(row);
    long n = 0, max = -1, median = -1;
    assert_int_equal(sscanf(row, "%ld %ld %ld", &n, &max, &median), 3);
    free(row);
    long took =
        xst_engine_sql_long(e,
                            "SELECT (extract(epoch FROM max(finished_at) - min(started_at)) "
                            "* 1000)::bigint FROM sync.runs",
                            0, NULL);
    fprintf(stderr,
            "%ld scans without permits started %ld ms (median) and %ld ms (max) after "
            "their pulls; the runs took %ld ms\n",
            n, median, max, took);
    /* Every run scanned its contacts and its invoices after pulling them. */
    assert_int_equal(n, 2 * TURN_TENANTS);
    /* The budget bound: the runs took rounds of the tenants, each longer than the bound. */
    assert_true(took > 2 * FOLLOW_BOUND_MS);
    assert_true(max < FOLLOW_BOUND_MS);
    assert_int_equal(xst_engine_free(e), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_tenant_does_not_block_others),
        cmocka_unit_test(test_scan_does_not_spend_a_turn),
    };
    return xst_result(cmocka_run_group_tests(tests, NULL, NULL));
}
