/*
 * budget_charge_test.c: the rate budget charges what steps used (issue 23, "Steps that make no
 * Xero call spend the budget"), end to end against xero-sim with an app budget of APP calls a
 * WINDOW_MS window. A full run's scans walk local records and mostly find nothing to send:
 * they run holding no permit, one that meets records to send hands them to a step that holds
 * permits, and the permits a step held but did not use go back. So the run finishes in the
 * time its calls need (ceil(calls / APP) windows at most, where charging a permit per scan
 * takes at least one window more), GET /metrics shows as many permits charged as the
 * simulator answered calls, and the record the scan met is in Xero. A step that holds no
 * permit makes no call and asks xs-auth for no access token (its debug log counts them).
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

#include "engine.h"
#include "xs/json.h"

#define APP       3
#define WINDOW_MS 6000

static xst_engine *E;
static xst_proc *AUTH;
static char *ORG;
static char CONN[40], TENANT[40];

static int setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    E = xst_engine_new("budget_charge");
    /* No realtime push starts during the test: the record made locally goes in the run. */
    xst_engine_start_app_bound(E, 1, APP, WINDOW_MS);
    /* xs-auth's log (the harness runs every process at debug: svc.request per request) */
    for (int i = 0; i < E->nprocs && AUTH == NULL; i++) {
        AUTH = strcmp(E->procs[i]->name, "auth-1") == 0 ? E->procs[i] : NULL;
    }
    assert_non_null(AUTH);
    ORG = xst_engine_connected(E, "Charge Co", CONN, TENANT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int bad = xst_engine_free(E);
    free(ORG);
    return bad == 0 ? 0 : -1;
}

/* metric reads the sample `series` (name and labels exactly as written) of GET /metrics; -1
 * when absent. */
static long metric(const char *series)
{
    xst_http r = xst_engine_api(E, "GET", "/metrics", NULL);
    assert_int_equal(r.status, 200);
    long v = -1;
    size_t n = strlen(series);
    for (const char *line = r.body; line != NULL && *line != '\0';) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            v = atol(line + n + 1);
            break;
        }
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    xst_http_free(&r);
    return v;
}

/* token_gets counts the token.get requests xs-auth answered so far (its log). */
static long token_gets(void)
{
    char *log = xst_slurp(AUTH->log_path);
    assert_non_null(log);
    long n = 0;
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        n += strstr(line, "\"event\":\"svc.request\"") != NULL &&
             strstr(line, "\"type\":\"token.get\"") != NULL;
    }
    free(log);
    return n;
}

static void test_no_call_no_charge(void **state)
{
    (void)state;
    long gets0 = token_gets();
    /* A local contact Xero does not have: the contacts' scan meets it. */
    char *lid = xst_engine_sqlf(
        E, "INSERT INTO app.contacts (organisation_id, name) VALUES ($1, $2) RETURNING id", 2, ORG,
        "Scanned Pty Ltd");
    assert_non_null(lid);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 240000);
    assert_true(xst_run_status_is(run, "succeeded"));
    const char *rid = json_string_value(json_object_get(run, "id"));
    long calls = xst_engine_sql_longf(
        E, "SELECT count(*) FROM sync.api_calls WHERE run_id = $1 AND step_id IS NOT NULL", 1, rid);
    long took = xst_engine_sql_longf(E,
                                     "SELECT (extract(epoch FROM finished_at - started_at) * "
                                     "1000)::bigint FROM sync.runs WHERE id = $1",
                                     1, rid);
    /* The run's scan steps without permits, and with (those whose input says "calls"). */
    long scans[2];
    for (int with = 0; with < 2; with++) {
        scans[with] = xst_engine_sql_longf(E,
                                           "SELECT count(*) FROM sync.run_steps WHERE run_id = $1 "
                                           "AND kind = 'scan' AND (input ? 'calls') = $2::boolean",
                                           2, rid, with ? "true" : "false");
    }
    long free_scans = scans[0], sent = scans[1];
    fprintf(stderr, "calls %ld, scans %ld without permits and %ld with, took %ld ms\n", calls,
            free_scans, sent, took);
    /* Every pushed entity's scan (contact, invoice, payment, document) went without permits;
     * the contacts' met the new contact and went on in one that held them. */
    assert_true(free_scans >= 4);
    assert_int_equal(sent, 1);
    assert_true(free_scans >= APP); /* charged a permit each, they would cost a window more */
    assert_true(calls >= APP);
    /* The run took the windows its calls need, not one more. */
    long need = (calls + APP - 1) / APP * WINDOW_MS;
    assert_true(took < need);
    /* Every permit charged was a call the simulator answered; the rest went back. */
    assert_int_equal(metric("xs_budget_permits_total{outcome=\"charged\"}"), calls);
    assert_true(metric("xs_budget_permits_total{outcome=\"returned\"}") >= 0);
    assert_int_equal(metric("xs_steps_unpermitted_total{kind=\"scan\"}"), free_scans);
    /* A token was asked for each attempt of a step that held permits, none for the others. */
    long attempts = xst_engine_sql_longf(
        E, "SELECT sum(attempts) FROM sync.run_steps WHERE run_id = $1", 1, rid);
    long gets = token_gets() - gets0;
    fprintf(stderr, "token.get %ld for %ld step attempts, %ld of them without permits\n", gets,
            attempts, free_scans);
    assert_int_equal(gets, attempts - free_scans);
    /* The permits came from the app budget shared through PostgreSQL (XS_BUDGET_SHARED, on by
     * default): the ledger never counted more than APP in a window (with its margin and a
     * chunk's time to live, a sixtieth of the window). */
    char span[24], lim[24];
    snprintf(span, sizeof(span), "%d", WINDOW_MS + 50 + WINDOW_MS / 60);
    snprintf(lim, sizeof(lim), "%d", APP);
    assert_true(xst_engine_sql_longf(E, "SELECT count(*) FROM sync.app_budget_grants", 0) > 0);
    assert_int_equal(
        xst_engine_sql_longf(E,
                             "SELECT count(*) FROM sync.app_budget_grants g WHERE (SELECT "
                             "sum(h.permits - h.returned) FROM sync.app_budget_grants h WHERE "
                             "h.granted_at <= g.granted_at AND h.granted_at > g.granted_at - "
                             "$1::bigint * interval '1 millisecond') > $2::int",
                             2, span, lim),
        0);
    /* The contact the scan met is in Xero. */
    char *xid = xst_engine_sqlf(E,
                                "SELECT xero_id::text FROM sync.mappings WHERE connection_id = $1 "
                                "AND entity = 'contact' AND local_id = $2",
                                2, CONN, lid);
    assert_non_null(xid);
    free(xid);
    free(lid);
    json_decref(run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_call_no_charge),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
