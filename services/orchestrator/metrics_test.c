/*
 * metrics_test.c: the orchestrator's counters and their text (metrics.c), and the sums of the
 * counters replicas report in heartbeats (replicas.c): a restarted or forgotten replica never
 * makes a sum go backwards. The text's format itself is checked by promtool in e2e_metrics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "replicas.h"
#include "xs/json.h"

/* page_text writes m's families and returns the text (new). */
static char *page_text(orch_metrics *m)
{
    orch_metrics_page *p = orch_metrics_page_new();
    assert_non_null(p);
    orch_metrics_page_write(m, p);
    size_t len = 0;
    char *text = orch_metrics_page_take(p, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void assert_has(const char *text, const char *line)
{
    if (strstr(text, line) == NULL) {
        fail_msg("no \"%s\" in:\n%s", line, text);
    }
}

static void test_counts_and_text(void **state)
{
    (void)state;
    orch_metrics *m = NULL;
    assert_int_equal(orch_metrics_create(&m), XS_OK);
    char *t = page_text(m);
    /* Families without labels are there at 0 from the start; each has HELP and TYPE. */
    assert_has(t, "# TYPE xs_runs_total counter\n");
    assert_has(t, "# HELP xs_runs_total ");
    assert_has(t, "\nxs_webhook_events_received_total 0\n");
    assert_has(t, "\nxs_budget_wait_seconds_bucket{le=\"+Inf\"} 0\n");
    assert_has(t, "\nxs_budget_wait_seconds_count 0\n");
    assert_null(strstr(t, "\nxs_runs_total{"));
    free(t);

    orch_metrics_run_ended(m, "full", "api", "succeeded");
    orch_metrics_run_ended(m, "full", "api", "succeeded");
    orch_metrics_run_ended(m, "push", "realtime", "partial");
    orch_metrics_step(m, "pull", "contact", "done", 40);
    orch_metrics_step(m, "pull", "contact", "done", 1500);
    orch_metrics_step(m, "pull", "contact", "retry", 200000);
    orch_metrics_budget_wait(m, 75);
    t = page_text(m);
    assert_has(t, "\nxs_runs_total{mode=\"full\",trigger=\"api\",status=\"succeeded\"} 2\n");
    assert_has(t, "\nxs_runs_total{mode=\"push\",trigger=\"realtime\",status=\"partial\"} 1\n");
    assert_has(t, "\nxs_steps_total{kind=\"pull\",entity=\"contact\",outcome=\"done\"} 2\n");
    assert_has(t, "\nxs_steps_total{kind=\"pull\",entity=\"contact\",outcome=\"retry\"} 1\n");
    assert_has(t, "\nxs_budget_wait_seconds_bucket{le=\"0.05\"} 0\n");
    assert_has(t, "\nxs_budget_wait_seconds_bucket{le=\"0.1\"} 1\n");
    assert_has(t, "\nxs_budget_wait_seconds_sum 0.075\n");
    free(t);
    /* The claim's histogram counts microseconds and shows seconds. */
    orch_metrics_claim(m, true, 180);
    orch_metrics_claim(m, true, 2000);
    orch_metrics_claim(m, false, 90);
    t = page_text(m);
    assert_has(t, "\nxs_claim_duration_seconds_bucket{result=\"claimed\",le=\"0.0001\"} 0\n");
    assert_has(t, "\nxs_claim_duration_seconds_bucket{result=\"claimed\",le=\"0.00025\"} 1\n");
    assert_has(t, "\nxs_claim_duration_seconds_bucket{result=\"claimed\",le=\"0.0025\"} 2\n");
    assert_has(t, "\nxs_claim_duration_seconds_sum{result=\"claimed\"} 0.00218\n");
    assert_has(t, "\nxs_claim_duration_seconds_count{result=\"none\"} 1\n");
    free(t);
    orch_metrics_destroy(m);
}

static void test_histogram_series(void **state)
{
    (void)state;
    orch_metrics *m = NULL;
    assert_int_equal(orch_metrics_create(&m), XS_OK);
    orch_metrics_step(m, "push", "invoice", "done", 40);
    orch_metrics_step(m, "push", "invoice", "failed", 1500);
    orch_metrics_step(m, "push", "invoice", "done", 200000);
    char *t = page_text(m);
    /* The duration's series are by kind and entity only: outcomes share one. */
    assert_has(t, "\nxs_step_duration_seconds_bucket{kind=\"push\",entity=\"invoice\","
                  "le=\"0.05\"} 1\n");
    assert_has(t, "\nxs_step_duration_seconds_bucket{kind=\"push\",entity=\"invoice\","
                  "le=\"2.5\"} 2\n");
    assert_has(t, "\nxs_step_duration_seconds_bucket{kind=\"push\",entity=\"invoice\","
                  "le=\"120\"} 2\n");
    assert_has(t, "\nxs_step_duration_seconds_bucket{kind=\"push\",entity=\"invoice\","
                  "le=\"+Inf\"} 3\n");
    assert_has(t, "\nxs_step_duration_seconds_sum{kind=\"push\",entity=\"invoice\"} 201.54\n");
    assert_has(t, "\nxs_step_duration_seconds_count{kind=\"push\",entity=\"invoice\"} 3\n");
    free(t);
    orch_metrics_destroy(m);
}

static void test_records_and_webhooks(void **state)
{
    (void)state;
    orch_metrics *m = NULL;
    assert_int_equal(orch_metrics_create(&m), XS_OK);
    json_t *counts = json_pack("{s:i, s:i, s:i, s:i, s:s}", "created", 7, "updated", 0, "conflicts",
                               2, "fetched", 9, "failed", "x");
    orch_metrics_records(m, "contact", "pull", counts);
    orch_metrics_records(m, "contact", "pull", counts);
    json_decref(counts);
    orch_metrics_webhooks_received(m, 5, 3);
    orch_metrics_webhook_processed(m, "run", 300);
    orch_metrics_webhook_processed(m, "known", 20);
    char *t = page_text(m);
    assert_has(t, "\nxs_records_total{entity=\"contact\",direction=\"pull\",outcome=\"created\"} "
                  "14\n");
    assert_has(t, "\nxs_records_total{entity=\"contact\",direction=\"pull\",outcome=\"conflicts\"} "
                  "4\n");
    /* Zeros, counts the registry does not take (fetched) and non-numbers are left out. */
    assert_null(strstr(t, "outcome=\"updated\""));
    assert_null(strstr(t, "outcome=\"fetched\""));
    assert_null(strstr(t, "outcome=\"failed\""));
    assert_has(t, "\nxs_webhook_events_received_total 5\n");
    assert_has(t, "\nxs_webhook_events_stored_total 3\n");
    assert_has(t, "\nxs_webhook_events_processed_total{result=\"run\"} 1\n");
    assert_has(t, "\nxs_webhook_lag_seconds_bucket{le=\"0.25\"} 1\n");
    assert_has(t, "\nxs_webhook_lag_seconds_bucket{le=\"0.5\"} 2\n");
    assert_has(t, "\nxs_webhook_lag_seconds_sum 0.32\n");
    free(t);
    /* A NULL registry counts nothing and does not fail. */
    orch_metrics_step(NULL, "pull", "contact", "done", 1);
    orch_metrics_destroy(m);
}

static void test_escaping(void **state)
{
    (void)state;
    orch_metrics_page *p = orch_metrics_page_new();
    orch_metrics_page_family(p, "xs_x", "gauge", "a help with \\ and\nline");
    const char *l[] = {"a", "q\"b\\c\nd", "b", "", NULL};
    orch_metrics_page_sample(p, "xs_x", l, 0.25);
    orch_metrics_page_sample(p, "xs_x", NULL, 12345678901.0);
    size_t len = 0;
    char *t = orch_metrics_page_take(p, &len);
    assert_string_equal(t, "# HELP xs_x a help with \\\\ and\\nline\n"
                           "# TYPE xs_x gauge\n"
                           "xs_x{a=\"q\\\"b\\\\c\\nd\",b=\"\"} 0.25\n"
                           "xs_x 12345678901\n");
    free(t);
}

/* beat makes a heartbeat of replica rid (pid, started) reporting n GET /Contacts calls. */
static xs_msg beat(json_t **body, const char *rid, int pid, const char *started, long n,
                   bool stopping)
{
    *body = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:b, s:[{s:s, s:{s:s, "
                      "s:s}, s:I}, {s:s, s:I}]}",
                      "service", "contacts", "domain", "contacts", "replica", rid, "pid", pid,
                      "version", "0", "started_at", started, "workers", 1, "busy", 0, "handled", 0,
                      "failed", 0, "stopping", stopping, "counters", "name", "xero_requests",
                      "labels", "endpoint", "GET /Contacts", "status", "200", "value",
                      (json_int_t)n, "name", "token_refreshes", "value", (json_int_t)1);
    xs_msg m;
    memset(&m, 0, sizeof(m));
    m.body = *body;
    return m;
}

/* contacts_calls reads the summed GET /Contacts 200 calls. */
static long contacts_calls(orch_replicas *r)
{
    json_t *sums = orch_replicas_counters(r);
    long n = -1;
    const char *k;
    json_t *s;
    json_object_foreach(sums, k, s)
    {
        if (strcmp(xs_json_str_or(s, "name", ""), "xero_requests") == 0) {
            assert_string_equal(xs_json_str_or(json_object_get(s, "labels"), "endpoint", ""),
                                "GET /Contacts");
            n = (long)json_integer_value(json_object_get(s, "value"));
        }
    }
    json_decref(sums);
    return n;
}

static void observe(orch_replicas *r, const char *rid, int pid, const char *started, long n,
                    int64_t now)
{
    json_t *body = NULL;
    xs_msg m = beat(&body, rid, pid, started, n, false);
    assert_int_equal(orch_replicas_observe(r, &m, now), XS_OK);
    json_decref(body);
}

static void test_replica_sums(void **state)
{
    (void)state;
    orch_replicas *r = NULL;
    assert_int_equal(orch_replicas_create(&r, 100), XS_OK);
    assert_int_equal(contacts_calls(r), -1);
    observe(r, "a", 10, "2026-01-01T00:00:00Z", 5, 1000);
    observe(r, "b", 11, "2026-01-01T00:00:00Z", 7, 1000);
    assert_int_equal(contacts_calls(r), 12);
    /* The last value of each replica counts, not the sum of its heartbeats. */
    observe(r, "a", 10, "2026-01-01T00:00:00Z", 9, 1100);
    assert_int_equal(contacts_calls(r), 16);
    /* a starts again under the same id: its 9 are kept, its new count adds to them. */
    observe(r, "a", 12, "2026-01-01T00:05:00Z", 1, 1200);
    assert_int_equal(contacts_calls(r), 9 + 7 + 1);
    /* b falls silent and is forgotten after 30 intervals: its 7 stay in the sum. a was
     * silent as long, and forgotten too, but it is the same run heard again: its 1 is not
     * counted twice. */
    observe(r, "a", 12, "2026-01-01T00:05:00Z", 2, 5000);
    assert_int_equal(orch_replicas_live(r, XS_BUS_DOMAIN_CONTACTS, 5000), 1);
    assert_int_equal(contacts_calls(r), 9 + 7 + 2);
    /* A counter without labels sums too; malformed samples are skipped. */
    json_t *body = json_pack(
        "{s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:i, s:b, s:[{s:s, "
        "s:i}, {s:i}, {s:s, s:s}, {s:s, s:i, s:i}]}",
        "service", "contacts", "domain", "contacts", "replica", "c", "pid", 3, "version", "0",
        "started_at", "2026-01-01T00:00:00Z", "workers", 1, "busy", 0, "handled", 0, "failed", 0,
        "stopping", false, "counters", "name", "token_refreshes", "value", 4, "value", 1, "name",
        "token_refreshes", "value", "x", "name", "token_refreshes", "labels", 3, "value", 1);
    xs_msg m;
    memset(&m, 0, sizeof(m));
    m.body = body;
    assert_int_equal(orch_replicas_observe(r, &m, 5000), XS_OK);
    json_decref(body);
    json_t *sums = orch_replicas_counters(r);
    json_t *tr = json_object_get(sums, "token_refreshes\x1f{}");
    assert_non_null(tr);
    /* a (1, and 1 before its restart), b (1, forgotten) and c (4). */
    assert_int_equal(json_integer_value(json_object_get(tr, "value")), 1 + 1 + 1 + 4);
    json_decref(sums);
    orch_replicas_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_and_text),      cmocka_unit_test(test_histogram_series),
        cmocka_unit_test(test_records_and_webhooks), cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_replica_sums),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
