/*
 * retention_test.c: old history pruned, what is still needed kept
 * (services/orchestrator/retention.h), with the orchestrator's clock moved forward.
 *
 * The orchestrator runs under libfaketime (Debian's faketime), FAKETIME="+20d" with the
 * monotonic clock left alone: its wall clock, and so its retention cut-offs, are 20 days
 * ahead of PostgreSQL's and of this test's. 20 days lies between the 7-day and the 30-day
 * periods, so what the test writes now is recent for runs (30 d) and already old for
 * processed changes and events (7 d). A row "N days old" below is N days before the
 * orchestrator's clock: written at PostgreSQL's now() + 20 d - N d. The API-call audit is
 * kept 7 days here (XS_RETAIN_API_CALLS), so what a run calls now is 20 days old to the
 * orchestrator and kept only by the budget's day window, which the database's clock measures.
 *
 * - A backlog of 20,000 old audit rows is deleted in statements of XS_RETAIN_BATCH (200)
 *   with a pause between them (the count is seen between full and empty), while a full run
 *   started in the middle of it succeeds; the run's own calls stay.
 * - Succeeded runs 35 and 60 days old go with their steps and item errors, a failed one 40
 *   days old stays and one 100 days old goes; a run not finished, one a PENDING conflict
 *   points at, one whose step holds a push claim and the only run of its kind stay whatever
 *   their age; a settled conflict outlives its run (run_id NULL). Processed changes and
 *   events go, unprocessed ones stay; events of the last day and a tenant's latest stay.
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

#define SHIFT   "20"
#define BACKLOG 20000
#define BATCH   200

static xst_engine *E;
static char TENANT[40], CONN[40];
static char *ORG;

/* faketime_lib finds libfaketime's multi-threaded library (static storage); dies when it is
 * not installed. */
static const char *faketime_lib(void)
{
    static char path[512];
    const char *dirs = XST_FAKETIME_DIRS;
    while (*dirs != '\0') {
        size_t n = strcspn(dirs, ":");
        snprintf(path, sizeof(path), "%.*s/libfaketimeMT.so.1", (int)n, dirs);
        if (access(path, R_OK) == 0) {
            return path;
        }
        dirs += n + (dirs[n] == ':');
    }
    xst_die("libfaketime is not installed (Debian package faketime): run scripts/install-deps");
}

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("retention");
    xst_engine_start_sim(E, NULL);
    static char preload[600], asan[600];
    snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", faketime_lib());
    /* An ASan build wants its runtime first among the preloaded libraries. */
    const char *given = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof(asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             given != NULL ? given : "", given != NULL && given[0] != '\0' ? ":" : "");
    char *const env[] = {preload,
                         "FAKETIME=+" SHIFT "d",
                         "FAKETIME_DONT_FAKE_MONOTONIC=1",
                         asan,
                         "XS_SCHEDULER=false",
                         "XS_RETAIN_EVERY=1s",
                         "XS_RETAIN_BATCH=200",
                         "XS_RETAIN_PAUSE=100ms",
                         "XS_RETAIN_API_CALLS=7d",
                         "XS_STEP_BACKOFF=50ms",
                         NULL};
    xst_engine_start_orchestrator(E, env);
    xst_engine_start_services(E);
    ORG = xst_engine_connected(E, "Retention Ltd", CONN, TENANT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ORG);
    return xst_engine_free(E) == 0 ? 0 : -1;
}

/* passes reads the orchestrator's retention.pruned lines (new array of their objects). */
static json_t *passes(void)
{
    FILE *f = fopen(E->orch->log_path, "r");
    assert_non_null(f);
    json_t *all = json_array();
    char line[8192];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, "\"retention.pruned\"") != NULL) {
            json_t *j = json_loads(line, 0, NULL);
            if (j != NULL) {
                json_array_append_new(all, j);
            }
        }
    }
    fclose(f);
    return all;
}

/* wait_passes waits until the orchestrator has logged n passes. */
static void wait_passes(size_t n, long ms)
{
    int64_t end = xst_now_ms() + ms;
    for (;;) {
        json_t *p = passes();
        size_t have = json_array_size(p);
        json_decref(p);
        if (have >= n) {
            return;
        }
        if (xst_now_ms() > end) {
            xst_log_dump(E->orch);
        }
        assert_true(xst_now_ms() <= end);
        usleep(100000);
    }
}

/* fresh_pass waits until a whole pass has run after this call (two more passes begin) and
 * returns the number of passes logged by then. */
static size_t fresh_pass(void)
{
    json_t *p = passes();
    size_t before = json_array_size(p);
    json_decref(p);
    wait_passes(before + 2, 60000);
    return before + 2;
}

/* pruned sums field over the passes from the from-th on. */
static long pruned(const char *field, size_t from)
{
    json_t *p = passes();
    long sum = 0;
    for (size_t i = from; i < json_array_size(p); i++) {
        sum += (long)json_integer_value(json_object_get(json_array_get(p, i), field));
    }
    json_decref(p);
    return sum;
}

static long count(const char *sql, const char *a)
{
    return xst_engine_sql_longf(E, sql, 1, a);
}

/* The time N days before the orchestrator's clock, as SQL over parameter $n. */
#define AGO(n) "(now() - ($" #n "::float8 - " SHIFT ") * interval '1 day')"

/* run_aged adds a run of the connection (id, new): mode, entities (a text[] literal),
 * status; it finished days ago (started a minute before), or began then and is not over. */
static char *run_aged(const char *mode, const char *entities, const char *status, const char *days)
{
    char *id =
        xst_engine_sqlf(E,
                        "INSERT INTO sync.runs (connection_id, mode, trigger, entities, "
                        "status, created_at, started_at, finished_at) VALUES ($1, $2, "
                        "'api', $3::text[], $4, " AGO(5) " - interval '1 minute', " AGO(
                            5) " - interval '1 minute', CASE WHEN $4 IN ('succeeded', "
                               "'failed', 'partial', 'canceled') THEN " AGO(5) " END) "
                                                                               "RETURNING id",
                        5, CONN, mode, entities, status, days);
    assert_non_null(id);
    return id;
}

/* steps_for gives run three finished steps and two item errors. */
static void steps_for(const char *run)
{
    free(xst_engine_sqlf(E,
                         "INSERT INTO sync.run_steps (run_id, seq, entity, kind, status, "
                         "finished_at) SELECT $1, g, 'contact', 'pull', 'done', r.finished_at FROM "
                         "generate_series(1, 3) g, sync.runs r WHERE r.id = $1",
                         1, run));
    free(xst_engine_sqlf(E,
                         "INSERT INTO sync.run_item_errors (run_id, step_id, entity, message) "
                         "SELECT $1, (SELECT min(id) FROM sync.run_steps WHERE run_id = $1), "
                         "'contact', 'refused by Xero' FROM generate_series(1, 2)",
                         1, run));
}

static long runs_with(const char *id)
{
    return count("SELECT count(*) FROM sync.runs WHERE id = $1", id);
}

static void test_backlog_pruned_in_batches_beside_a_run(void **state)
{
    (void)state;
    /* The orchestrator's clock is ahead by the shift: its pass says which time it used. */
    wait_passes(1, 30000);
    json_t *p = passes();
    const char *clock = json_string_value(json_object_get(json_array_get(p, 0), "clock"));
    assert_non_null(clock);
    assert_int_equal(count("SELECT ($1::timestamptz - now() BETWEEN interval '" SHIFT
                           " days' - interval '1 hour' AND interval '" SHIFT
                           " days' + interval '1 hour')::int",
                           clock),
                     1);
    json_decref(p);

    json_decref(xst_engine_sim_json(E, "POST", "/_sim/config", "{\"latency\":{\"fixed_ms\":150}}"));
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    json_decref(xst_engine_sim_json(E, "POST", path, "{\"contacts\":300,\"invoices\":100}"));

    /* 20,000 calls 23 days old: past the 7 days, and older than the budget's day. */
    char n[16];
    snprintf(n, sizeof(n), "%d", BACKLOG);
    free(xst_engine_sqlf(E,
                         "INSERT INTO sync.api_calls (at, connection_id, tenant_id, method, path, "
                         "status, duration_ms) SELECT " AGO(
                             2) " - g * interval '1 millisecond', "
                                "$1, c.tenant_id, 'GET', '/api.xro/2.0/Backlog', 200, 5 FROM "
                                "generate_series(1, $3::int) g, sync.connections c WHERE c.id = $1",
                         3, CONN, "23", n));
    static const char backlog[] =
        "SELECT count(*) FROM sync.api_calls WHERE path = '/api.xro/2.0/Backlog'";
    json_t *seen = passes();
    size_t from = json_array_size(seen);
    json_decref(seen);

    /* Deleted a batch at a time: seen part done. */
    int64_t end = xst_now_ms() + 60000;
    long left;
    while ((left = xst_engine_sql_long(E, backlog, 0, NULL)) == BACKLOG) {
        assert_true(xst_now_ms() < end);
        usleep(20000);
    }
    assert_true(left > 0);
    assert_true(left < BACKLOG);
    fprintf(stderr, "backlog: %ld of %d left when the run started\n", left, BACKLOG);

    /* A full run begun in the middle of it goes as usual. */
    char sync[128];
    snprintf(sync, sizeof(sync), "/v1/connections/%s/sync", CONN);
    xst_http r = xst_engine_api(E, "POST", sync, "{\"mode\":\"full\"}");
    assert_int_equal(r.status, 202);
    char run[40];
    snprintf(run, sizeof(run), "%s", json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    long during = xst_engine_sql_long(E, backlog, 0, NULL);
    json_t *done = xst_engine_wait_run(E, run, 120000);
    assert_string_equal(json_string_value(json_object_get(done, "status")), "succeeded");
    assert_true(xst_run_count(done, "contact", "pull", "created") >= 300);
    json_decref(done);
    fprintf(stderr, "backlog: %ld left as the run began\n", during);
    assert_true(during > 0);

    /* All of it goes, in statements of 200 rows at most. */
    while (xst_engine_sql_long(E, backlog, 0, NULL) > 0) {
        assert_true(xst_now_ms() < end);
        usleep(100000);
    }
    fresh_pass();
    assert_true(pruned("api_calls", from) >= BACKLOG);
    assert_true(pruned("statements", from) >= BACKLOG / BATCH);
    /* The run's own calls, 20 days old to the orchestrator, are in the budget's day. */
    assert_true(count("SELECT count(*) FROM sync.api_calls WHERE run_id = $1::uuid", run) > 0);
    assert_int_equal(runs_with(run), 1);
}

static void test_old_history_goes_what_is_needed_stays(void **state)
{
    (void)state;
    /* Runs of one kind (entity runs of contacts), and their latest, which stays. */
    char *latest = run_aged("entity", "{contact}", "succeeded", "20");
    char *old35 = run_aged("entity", "{contact}", "succeeded", "35");
    steps_for(old35);
    char *old60 = run_aged("entity", "{contact}", "succeeded", "60");
    char *failed20 = run_aged("entity", "{contact}", "failed", "20");
    char *failed40 = run_aged("entity", "{contact}", "failed", "40");
    char *failed100 = run_aged("entity", "{contact}", "failed", "100");
    steps_for(failed100);
    char *running = run_aged("entity", "{contact}", "running", "200");
    char *pending = run_aged("entity", "{contact}", "succeeded", "100");
    char *claimed = run_aged("entity", "{contact}", "succeeded", "100");
    char *lone = run_aged("push", "{invoice}", "succeeded", "100");
    /* A conflict waiting for a person names one; a settled one names the 60-day-old run. */
    free(xst_engine_sqlf(E,
                         "INSERT INTO sync.conflicts (connection_id, entity, local_id, policy, "
                         "status, run_id) VALUES ($1, 'contact', gen_random_uuid(), 'manual', "
                         "'PENDING', $2)",
                         2, CONN, pending));
    char *settled = xst_engine_sqlf(E,
                                    "INSERT INTO sync.conflicts (connection_id, entity, local_id, "
                                    "policy, status, resolution, resolved_at, run_id) VALUES ($1, "
                                    "'contact', gen_random_uuid(), 'manual', 'RESOLVED', "
                                    "'KEEP_LOCAL', now(), $2) RETURNING id",
                                    2, CONN, old60);
    /* A create in doubt: its step ended, its claim waits for a pull to settle it. */
    free(xst_engine_sqlf(E,
                         "WITH s AS (INSERT INTO sync.run_steps (run_id, seq, entity, kind, "
                         "status) VALUES ($2, 1, 'contact', 'push', 'done') RETURNING id) INSERT "
                         "INTO sync.push_claims (connection_id, entity, local_id, step_id, op, "
                         "sent, settled_by) SELECT $1, 'contact', gen_random_uuid(), id, 'create', "
                         "'{\"name\": \"In Doubt Ltd\"}', now() + interval '1 day' FROM s",
                         2, CONN, claimed));

    /* The outbox of an organisation with no connection (nothing drains it): handed-on
     * changes 5, 9 and 25 days old, and one never handed on, 100 days old. */
    char *org = xst_engine_org(E, "Outbox Only");
    static const char change[] =
        "INSERT INTO sync.changes (organisation_id, entity, local_id, op, changed_at, "
        "processed_at) VALUES ($1, 'contact', gen_random_uuid(), 'update', " AGO(
            2) ", CASE "
               "WHEN $3 THEN " AGO(2) " END) RETURNING id";
    char *ch5 = xst_engine_sqlf(E, change, 3, org, "5", "true");
    char *ch9 = xst_engine_sqlf(E, change, 3, org, "9", "true");
    char *ch25 = xst_engine_sqlf(E, change, 3, org, "25", "true");
    char *unsent = xst_engine_sqlf(E, change, 3, org, "100", "false");

    /* Webhook events of a tenant with no connection: done 30 days ago, ignored 40 days ago
     * (on arrival: no processed_at), one still in progress from 100 days ago, one done and
     * received an hour ago (20 days old to the orchestrator, but within Xero's day of
     * redeliveries); and another tenant's only event, 50 days old. */
    static const char event[] =
        "INSERT INTO sync.webhook_events (received_at, tenant_id, event_category, event_type, "
        "resource_id, event_date_utc, raw, status, processed_at) VALUES "
        "(coalesce($4::timestamptz, " AGO(
            2) "), $1::uuid, 'CONTACT', 'UPDATE', gen_random_uuid(), now(), '{}', $3, CASE WHEN $3 "
               "= 'done' THEN coalesce($4::timestamptz, " AGO(2) ") END) RETURNING id";
    char *quiet = xst_engine_sql(E, "SELECT gen_random_uuid()::text", 0, NULL);
    char *lonely = xst_engine_sql(E, "SELECT gen_random_uuid()::text", 0, NULL);
    char *hour = xst_engine_sql(E, "SELECT (now() - interval '1 hour')::text", 0, NULL);
    char *ev30 = xst_engine_sqlf(E, event, 4, quiet, "30", "done", NULL);
    char *ev40 = xst_engine_sqlf(E, event, 4, quiet, "40", "ignored", NULL);
    char *ev100 = xst_engine_sqlf(E, event, 4, quiet, "100", "processing", NULL);
    char *evhour = xst_engine_sqlf(E, event, 4, quiet, "0", "done", hour);
    char *evlone = xst_engine_sqlf(E, event, 4, lonely, "50", "done", NULL);

    /* Audit rows: 23 days old (past 7 days and the budget's day) and 2 hours old (20 days
     * to the orchestrator, but in the budget's day by the database's clock). */
    static const char call[] =
        "INSERT INTO sync.api_calls (at, connection_id, method, path, status) VALUES "
        "(coalesce($3::timestamptz, " AGO(2) "), $1, 'GET', '/api.xro/2.0/Aged', 200) RETURNING "
                                             "id";
    char *two_hours = xst_engine_sql(E, "SELECT (now() - interval '2 hours')::text", 0, NULL);
    char *call23 = xst_engine_sqlf(E, call, 3, CONN, "23", NULL);
    char *callday = xst_engine_sqlf(E, call, 3, CONN, "0", two_hours);

    size_t from = fresh_pass() - 2;

    /* Runs. */
    assert_int_equal(runs_with(old35), 0);
    assert_int_equal(count("SELECT count(*) FROM sync.run_steps WHERE run_id = $1", old35), 0);
    assert_int_equal(count("SELECT count(*) FROM sync.run_item_errors WHERE run_id = $1", old35),
                     0);
    assert_int_equal(runs_with(old60), 0);
    assert_int_equal(runs_with(failed100), 0);
    assert_int_equal(count("SELECT count(*) FROM sync.run_steps WHERE run_id = $1", failed100), 0);
    assert_int_equal(runs_with(latest), 1);
    assert_int_equal(runs_with(failed40), 1);
    assert_int_equal(runs_with(running), 1);
    assert_int_equal(runs_with(pending), 1);
    assert_int_equal(runs_with(claimed), 1);
    assert_int_equal(count("SELECT count(*) FROM sync.push_claims p JOIN sync.run_steps s ON s.id "
                           "= p.step_id WHERE s.run_id = $1",
                           claimed),
                     1);
    assert_int_equal(runs_with(lone), 1);
    assert_int_equal(
        count("SELECT count(*) FROM sync.conflicts WHERE id = $1 AND run_id IS NULL", settled), 1);
    /* Through the API: a pruned run is gone, the latest of its kind is there, and the
     * settled conflict names no run. */
    char path[160];
    snprintf(path, sizeof(path), "/v1/runs/%s", old35);
    xst_http r = xst_engine_api(E, "GET", path, NULL);
    assert_true(xst_http_error_is(&r, 404, "not_found", old35));
    xst_http_free(&r);
    snprintf(path, sizeof(path), "/v1/runs/%s", latest);
    r = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "succeeded");
    xst_http_free(&r);
    snprintf(path, sizeof(path), "/v1/conflicts?connection_id=%s&status=RESOLVED", CONN);
    r = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    bool found = false;
    size_t at;
    json_t *c;
    json_array_foreach(json_object_get(r.json, "conflicts"), at, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "id")), settled) == 0) {
            found = json_is_null(json_object_get(c, "run_id"));
        }
    }
    xst_http_free(&r);
    assert_true(found);
    assert_true(pruned("runs", from) >= 3);
    assert_true(pruned("run_steps", from) >= 6);
    assert_true(pruned("run_item_errors", from) >= 4);

    /* The outbox. */
    static const char has_change[] = "SELECT count(*) FROM sync.changes WHERE id = $1::bigint";
    assert_int_equal(count(has_change, ch5), 1);
    assert_int_equal(count(has_change, ch9), 0);
    assert_int_equal(count(has_change, ch25), 0);
    assert_int_equal(count(has_change, unsent), 1);

    /* The inbox. */
    static const char has_event[] =
        "SELECT count(*) FROM sync.webhook_events WHERE id = $1::bigint";
    assert_int_equal(count(has_event, ev30), 0);
    assert_int_equal(count(has_event, ev40), 0);
    assert_int_equal(count(has_event, ev100), 1);
    assert_int_equal(count(has_event, evhour), 1);
    assert_int_equal(count(has_event, evlone), 1);

    /* The audit. */
    static const char has_call[] = "SELECT count(*) FROM sync.api_calls WHERE id = $1::bigint";
    assert_int_equal(count(has_call, call23), 0);
    assert_int_equal(count(has_call, callday), 1);

    /* Once the claim is settled and the conflict resolved, those runs go too; the latest
     * of each kind, the one not finished and the 40-day-old failure still stay. */
    free(xst_engine_sqlf(E,
                         "DELETE FROM sync.push_claims p USING sync.run_steps s WHERE s.id = "
                         "p.step_id AND s.run_id = $1",
                         1, claimed));
    free(xst_engine_sqlf(E,
                         "UPDATE sync.conflicts SET status = 'RESOLVED', resolution = "
                         "'KEEP_XERO', resolved_at = now() WHERE run_id = $1",
                         1, pending));
    fresh_pass();
    assert_int_equal(runs_with(claimed), 0);
    assert_int_equal(runs_with(pending), 0);
    assert_int_equal(runs_with(latest), 1);
    assert_int_equal(runs_with(running), 1);
    assert_int_equal(runs_with(failed40), 1);
    assert_int_equal(runs_with(lone), 1);

    char *all[] = {failed20, latest,  old35,  old60,     failed40, failed100, running,
                   pending,  claimed, lone,   settled,   org,      ch5,       ch9,
                   ch25,     unsent,  quiet,  lonely,    hour,     ev30,      ev40,
                   ev100,    evhour,  evlone, two_hours, call23,   callday};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        free(all[i]);
    }
}

/* A period shorter than an hour (but 0) stops the orchestrator at start, naming it. */
static void test_a_period_under_an_hour_is_refused(void **state)
{
    (void)state;
    char *const bad[] = {"XS_RETAIN_RUNS_FAILED=30m", NULL};
    xst_proc *p =
        xst_spawn("orch-retain-30m", xst_bin("xs-orchestrator"), NULL, xst_engine_env(E, bad));
    int64_t end = xst_now_ms() + 10000;
    while (xst_alive(p) && xst_now_ms() < end) {
        usleep(20000);
    }
    assert_int_equal(xst_stop(p, 100), 2);
    assert_true(xst_log_contains(p, "config.invalid"));
    assert_true(xst_log_contains(
        p, "XS_RETAIN_RUNS_FAILED: must be 0 (kept forever) or at least 1h, got \\\"30m\\\""));
    xst_proc_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backlog_pruned_in_batches_beside_a_run),
        cmocka_unit_test(test_old_history_goes_what_is_needed_stays),
        cmocka_unit_test(test_a_period_under_an_hour_is_refused),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
