/*
 * metrics_test.c: GET /metrics end to end (a real PostgreSQL, xero-sim, the orchestrator and
 * one replica of each domain service over nng; issue 20, "Metrics"):
 *   - the route takes an API key or a scrape-only key (XS_METRICS_KEYS) as a bearer token,
 *     and nothing else; a scrape-only key opens no other route;
 *   - scraped during a full run and after it, the text passes Prometheus' own checker
 *     (`promtool check metrics`, which scripts/install-deps extracts from Debian's prometheus
 *     package), and the figures agree with what the runs report of themselves (GET
 *     /v1/runs/{id}: records by entity, direction and outcome, steps done, runs ended) and
 *     with the calls the simulator answered (its control API), by endpoint and status;
 *   - the gauges read at the scrape: live replicas, the outbox (depth and age of its oldest
 *     change), conflicts pending, the budget's headroom;
 *   - webhook events received, stored and finished with (by result), and their lag;
 *   - token refreshes, and a refresh Xero refuses, as xs-auth counts them.
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
#include "xs/crypto.h"
#include "xs/json.h"

#ifndef XS_PROMTOOL
#define XS_PROMTOOL "promtool"
#endif

#define SCRAPE_KEY  "scrape-only-key-0123456789abcdef"
#define WEBHOOK_KEY "webhook-key-metrics-0123456789abcdef"

static xst_engine *E;
static char *ORG;
static char CONN[40], TENANT[40];

static char *const ORCH_ENV[] = {"XS_SCHEDULER=false",
                                 "XS_METRICS_KEYS= other-scrape-key-0123456789, " SCRAPE_KEY,
                                 "XS_PULL_PAGE_SIZE=20",
                                 "XS_PULL_PAGES_PER_STEP=2",
                                 "XS_STEP_BACKOFF=50ms",
                                 "XS_STEP_BACKOFF_MAX=500ms",
                                 "XS_XERO_WEBHOOK_KEY=" WEBHOOK_KEY,
                                 NULL};

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("metrics");
    xst_engine_start_sim(E, NULL);
    xst_engine_start_orchestrator(E, ORCH_ENV);
    xst_engine_start_services(E);
    ORG = xst_engine_connected(E, "Metrics Ltd", CONN, TENANT);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ORG);
    return xst_engine_free(E) == 0 ? 0 : -1;
}

/* get_with does GET path at the orchestrator with `Authorization: <auth>` (NULL: none). */
static xst_http get_with(const char *path, const char *auth)
{
    char url[512], hdr[256];
    snprintf(url, sizeof(url), "%s%s", E->api, path);
    snprintf(hdr, sizeof(hdr), "Authorization: %s", auth != NULL ? auth : "");
    const char *hdrs[] = {hdr, NULL};
    return xst_http_do("GET", url, NULL, auth != NULL ? hdrs : NULL, 30000);
}

/* scrape returns the text of GET /metrics with the scrape-only key (new), checked to be a
 * 200 of the exposition format's content type. */
static char *scrape(void)
{
    xst_http r = get_with("/metrics", "Bearer " SCRAPE_KEY);
    if (r.status != 200) {
        fail_msg("GET /metrics: %ld %s", r.status, r.body);
    }
    char *text = r.body;
    r.body = NULL;
    xst_http_free(&r);
    return text;
}

/* promtool_check runs `promtool check metrics` on text: it parses the exposition format and
 * lints names, types, HELP and units; any finding fails. */
static void promtool_check(const char *text)
{
    if (access(XS_PROMTOOL, X_OK) != 0) {
        fail_msg("promtool not found at %s: run scripts/install-deps, then cmake again",
                 XS_PROMTOOL);
    }
    char in[] = "/tmp/xs-metrics-XXXXXX";
    int fd = mkstemp(in);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", XS_PROMTOOL, in);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[8192] = "";
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    unlink(in);
    if (rc != 0 || n > 0) {
        fail_msg("promtool check metrics (exit %d):\n%s\n--- the text:\n%s", rc, out, text);
    }
}

/* value reads the sample `series` (a name with its labels exactly as written, e.g.
 * xs_replicas_live{domain="auth"}); -1 when absent. */
static double value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ') {
            return atof(line + n + 1);
        }
        line = strchr(line, '\n');
        line = line != NULL ? line + 1 : NULL;
    }
    return -1;
}

/* sum adds up the samples of family name (no suffix) whose labels contain every one of
 * `with` ("label=\"value\"", NULL-terminated; may be NULL); *n counts them when not NULL. */
static double sum(const char *text, const char *name, const char *const *with, int *n)
{
    double total = 0;
    int count = 0;
    size_t nl = strlen(name);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        if (strncmp(line, name, nl) == 0 && (line[nl] == '{' || line[nl] == ' ')) {
            char buf[1024];
            snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
            bool all = true;
            for (size_t i = 0; with != NULL && with[i] != NULL; i++) {
                all = all && strstr(buf, with[i]) != NULL;
            }
            if (all) {
                total += atof(strrchr(buf, ' ') + 1);
                count++;
            }
        }
        line = end != NULL ? end + 1 : NULL;
    }
    if (n != NULL) {
        *n = count;
    }
    return total;
}

static void test_keys(void **state)
{
    (void)state;
    /* No key, a wrong key, another scheme: 401, a JSON error, WWW-Authenticate. */
    const char *bad[] = {NULL, "Bearer not-a-key-0123456789abcdef", "Basic " SCRAPE_KEY};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xst_http r = get_with("/metrics", bad[i]);
        assert_true(xst_http_error_is(&r, 401, "unauthorized", NULL));
        xst_http_free(&r);
    }
    /* Either scrape-only key (blanks around them in the variable are not part of them) and
     * the API key open /metrics, with the format's content type. */
    const char *good[] = {"Bearer " SCRAPE_KEY, "Bearer other-scrape-key-0123456789",
                          "bearer " XST_API_KEY};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        xst_http r = get_with("/metrics", good[i]);
        assert_int_equal(r.status, 200);
        assert_non_null(r.content_type);
        assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
        xst_http_free(&r);
    }
    /* A scrape-only key opens nothing else. */
    const char *others[] = {"/v1/connections", "/v1/runs"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        xst_http r = get_with(others[i], "Bearer " SCRAPE_KEY);
        assert_true(xst_http_error_is(&r, 401, "unauthorized", NULL));
        xst_http_free(&r);
        r = get_with(others[i], "Bearer " XST_API_KEY);
        assert_int_equal(r.status, 200);
        xst_http_free(&r);
    }
}

/* sim_calls is the simulator's calls by endpoint and status (new): {"GET /Contacts": {"200":
 * n}}, without the consent page, which the test itself opened. */
static json_t *sim_calls(void)
{
    json_t *st = xst_engine_sim_json(E, "GET", "/_sim/stats", NULL);
    json_t *by = json_incref(json_object_get(st, "by_endpoint"));
    json_decref(st);
    json_object_del(by, "GET /identity/connect/authorize");
    return by;
}

/* calls_agree tells whether the metrics' xs_xero_requests_total are exactly the simulator's
 * calls (every endpoint and status both ways); why not into why. */
static bool calls_agree(const char *text, const json_t *sim, char *why, size_t cap)
{
    int total_series = 0;
    sum(text, "xs_xero_requests_total", NULL, &total_series);
    int seen = 0;
    const char *ep;
    json_t *statuses;
    json_object_foreach((json_t *)sim, ep, statuses)
    {
        const char *st;
        json_t *n;
        json_object_foreach(statuses, st, n)
        {
            char series[256];
            snprintf(series, sizeof(series),
                     "xs_xero_requests_total{endpoint=\"%s\",status=\"%s\"}", ep, st);
            double v = value(text, series);
            if (v != (double)json_integer_value(n)) {
                snprintf(why, cap, "%s: %g in the metrics, %lld at the simulator", series, v,
                         (long long)json_integer_value(n));
                return false;
            }
            seen++;
        }
    }
    if (seen != total_series) {
        snprintf(why, cap, "the metrics count calls at %d endpoints and statuses, the simulator %d",
                 total_series, seen);
        return false;
    }
    return true;
}

/* runs_sums adds up, over every run that ended, the records of its counts by entity,
 * direction and outcome (into records: "entity/dir/outcome" -> n), its steps done, and how
 * many ended (with steps). */
static void runs_sums(json_t *records, long *steps_done, long *runs_ended)
{
    xst_http r = xst_engine_api(E, "GET", "/v1/runs?limit=1000", NULL);
    assert_int_equal(r.status, 200);
    *steps_done = 0;
    *runs_ended = 0;
    size_t i;
    json_t *run;
    json_array_foreach(json_object_get(r.json, "runs"), i, run)
    {
        const char *status = xs_json_str_or(run, "status", "");
        assert_true(strcmp(status, "queued") != 0 && strcmp(status, "running") != 0);
        char path[128];
        snprintf(path, sizeof(path), "/v1/runs/%s", xs_json_str_or(run, "id", ""));
        xst_http one = xst_engine_api(E, "GET", path, NULL);
        assert_int_equal(one.status, 200);
        json_t *steps = json_object_get(one.json, "steps");
        *steps_done += (long)json_integer_value(json_object_get(steps, "done"));
        *runs_ended += json_integer_value(json_object_get(steps, "total")) > 0;
        const char *entity;
        json_t *c;
        json_object_foreach(json_object_get(one.json, "counts"), entity, c)
        {
            static const char *const dirs[] = {"pull", "push"};
            static const char *const outcomes[] = {"created", "updated", "unchanged", "failed",
                                                   "conflicts"};
            for (size_t d = 0; d < 2; d++) {
                for (size_t o = 0; o < 5; o++) {
                    long n = xst_run_count(one.json, entity, dirs[d], outcomes[o]);
                    if (n == 0) {
                        continue;
                    }
                    char key[96];
                    snprintf(key, sizeof(key), "%s/%s/%s", entity, dirs[d], outcomes[o]);
                    json_t *cur = json_object_get(records, key);
                    json_object_set_new(records, key,
                                        json_integer((cur ? json_integer_value(cur) : 0) + n));
                }
            }
        }
        xst_http_free(&one);
    }
    xst_http_free(&r);
}

static void test_scrape_during_and_after_a_run(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    json_decref(
        xst_engine_sim_json(E, "POST", path, "{\"contacts\":120,\"invoices\":40,\"seed\":5}"));
    /* Slow replies, so the run is seen under way. */
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/config", "{\"latency\":{\"fixed_ms\":150}}"));
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", CONN);
    xst_http r = xst_engine_api(E, "POST", path, "{\"mode\":\"full\"}");
    assert_int_equal(r.status, 202);
    char run_id[40];
    snprintf(run_id, sizeof(run_id), "%s", xs_json_str_or(r.json, "id", ""));
    xst_http_free(&r);

    /* During the run: it is counted as running, steps have ended, the text is valid. */
    char *during = NULL;
    int64_t end = xst_now_ms() + 60000;
    for (;;) {
        assert_true(xst_now_ms() < end);
        during = scrape();
        const char *running[] = {"mode=\"full\"", "trigger=\"api\"", "status=\"running\"", NULL};
        const char *done[] = {"outcome=\"done\"", NULL};
        if (sum(during, "xs_runs_active", running, NULL) == 1 &&
            sum(during, "xs_steps_total", done, NULL) >= 2) {
            break;
        }
        free(during);
        usleep(50000);
    }
    promtool_check(during);
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/config", "{\"latency\":{\"fixed_ms\":0}}"));
    json_t *run = xst_engine_wait_run(E, run_id, 120000);
    assert_string_equal(xs_json_str_or(run, "status", ""), "succeeded");
    json_decref(run);
    assert_true(xst_engine_settle(E, 30000));

    /* After it: the domain services' counters arrive with their next heartbeats. */
    json_t *sim = sim_calls();
    char why[512] = "";
    char *after = NULL;
    end = xst_now_ms() + 5000;
    for (;;) {
        after = scrape();
        if (calls_agree(after, sim, why, sizeof(why))) {
            break;
        }
        free(after);
        if (xst_now_ms() > end) {
            fail_msg("Xero calls: %s", why);
        }
        usleep(100000);
    }
    json_decref(sim);
    promtool_check(after);

    /* Counters never go back: the figures seen during the run are at most those after. */
    const char *done[] = {"outcome=\"done\"", NULL};
    assert_true(sum(during, "xs_steps_total", done, NULL) <=
                sum(after, "xs_steps_total", done, NULL));
    assert_true(sum(during, "xs_xero_requests_total", NULL, NULL) <=
                sum(after, "xs_xero_requests_total", NULL, NULL));

    /* The runs' own counts: records, steps done, runs ended. */
    json_t *records = json_object();
    long steps_done = 0, runs_ended = 0;
    runs_sums(records, &steps_done, &runs_ended);
    assert_true(json_object_size(records) > 0);
    int nrec = 0;
    sum(after, "xs_records_total", NULL, &nrec);
    assert_int_equal(nrec, (int)json_object_size(records));
    const char *key;
    json_t *n;
    json_object_foreach(records, key, n)
    {
        char ent[32], dir[8], out[16], series[160];
        assert_int_equal(sscanf(key, "%31[^/]/%7[^/]/%15s", ent, dir, out), 3);
        snprintf(series, sizeof(series),
                 "xs_records_total{entity=\"%s\",direction=\"%s\",outcome=\"%s\"}", ent, dir, out);
        if (value(after, series) != (double)json_integer_value(n)) {
            fail_msg("%s: %g in the metrics, %lld in the runs", series, value(after, series),
                     (long long)json_integer_value(n));
        }
    }
    json_decref(records);
    assert_true(value(after, "xs_records_total{entity=\"contact\",direction=\"pull\","
                             "outcome=\"created\"}") >= 120);
    assert_int_equal((long)sum(after, "xs_steps_total", done, NULL), steps_done);
    assert_int_equal((long)sum(after, "xs_runs_total", NULL, NULL), runs_ended);
    const char *full_ok[] = {"mode=\"full\"", "trigger=\"api\"", "status=\"succeeded\"", NULL};
    assert_true(sum(after, "xs_runs_total", full_ok, NULL) >= 1);
    assert_int_equal((long)sum(after, "xs_runs_active", NULL, NULL), 0);
    /* Every step that ended has its duration observed. */
    assert_int_equal((long)sum(after, "xs_step_duration_seconds_count", NULL, NULL),
                     (long)sum(after, "xs_steps_total", NULL, NULL));
    /* xs-auth counted its refreshes (none yet: the token of the consent is fresh), and no
     * failure. */
    assert_int_equal((long)value(after, "xs_token_refreshes_total"),
                     xst_engine_sql_long(E, "SELECT sum(refresh_count) FROM sync.grants", 0, NULL));
    assert_int_equal((long)sum(after, "xs_token_refresh_failures_total", NULL, NULL), 0);
    free(during);
    free(after);
}

static void test_gauges(void **state)
{
    (void)state;
    char *t = scrape();
    assert_int_equal((long)value(t, "xs_metrics_database_up"), 1);
    const char *domains[] = {"auth", "contacts", "invoices", "payments"};
    for (size_t i = 0; i < 4; i++) {
        char series[96];
        snprintf(series, sizeof(series), "xs_replicas_live{domain=\"%s\"}", domains[i]);
        assert_int_equal((long)value(t, series), 1);
    }
    /* The budget of the tenant that made calls: some left this minute and today. */
    char series[160];
    snprintf(series, sizeof(series), "xs_budget_remaining{scope=\"day\",tenant=\"%s\"}", TENANT);
    assert_true(value(t, series) > 0);
    snprintf(series, sizeof(series), "xs_budget_remaining{scope=\"minute\",tenant=\"%s\"}", TENANT);
    assert_true(value(t, series) >= 0);
    assert_true(value(t, "xs_budget_app_remaining") > 0);
    assert_int_equal((long)value(t, "xs_conflicts_pending{entity=\"contact\"}"), 0);
    assert_int_equal((long)value(t, "xs_outbox_pending{entity=\"contact\"}"), 0);
    assert_int_equal((long)value(t, "xs_outbox_oldest_age_seconds{entity=\"contact\"}"), 0);
    free(t);

    /* Changes waiting in the outbox: counted, and aged from the oldest. They are written
     * straight into sync.changes for an organisation without a connection, which nothing
     * drains (a write to app.contacts would notify the realtime push, which finds no
     * connection to give them to and marks them processed). */
    char *other = xst_engine_org(E, "Unconnected Ltd");
    const char *p[] = {other};
    free(xst_engine_sql(E,
                        "INSERT INTO sync.changes (organisation_id, entity, local_id, op, "
                        "changed_at) SELECT $1::uuid, 'contact', gen_random_uuid(), 'insert', "
                        "now() - g * interval '100 seconds' FROM generate_series(1, 3) g",
                        1, p));
    t = scrape();
    assert_int_equal((long)value(t, "xs_outbox_pending{entity=\"contact\"}"),
                     xst_engine_sql_long(E,
                                         "SELECT count(*) FROM sync.changes WHERE processed_at IS "
                                         "NULL AND entity = 'contact'",
                                         0, NULL));
    assert_int_equal((long)value(t, "xs_outbox_pending{entity=\"contact\"}"), 3);
    double age = value(t, "xs_outbox_oldest_age_seconds{entity=\"contact\"}");
    assert_true(age >= 300.0 && age < 330.0);
    assert_int_equal((long)value(t, "xs_outbox_pending{entity=\"invoice\"}"), 0);
    promtool_check(t);
    free(t);
    free(other);
}

/* deliver signs a delivery of one CONTACT event about Xero contact res, dated at, and posts
 * it to the receiver, which must take it. */
static void deliver(const char *res, const char *at)
{
    char body[1024];
    snprintf(
        body, sizeof(body),
        "{\"events\":[{\"resourceUrl\":\"https://api.xero.com/api.xro/2.0/Contacts/%s\","
        "\"resourceId\":\"%s\",\"tenantId\":\"%s\",\"tenantType\":\"ORGANISATION\","
        "\"eventCategory\":\"CONTACT\",\"eventType\":\"UPDATE\",\"eventDateUtc\":\"%s\"}],"
        "\"firstEventSequence\":1,\"lastEventSequence\":1,\"entropy\":\"QWERTYUIOPASDFGHJKLZ\"}",
        res, res, TENANT, at);
    uint8_t mac[XS_SHA256_LEN];
    assert_int_equal(xs_hmac_sha256(WEBHOOK_KEY, strlen(WEBHOOK_KEY), body, strlen(body), mac),
                     XS_OK);
    char *b64 = NULL;
    assert_int_equal(xs_base64_encode(mac, sizeof(mac), &b64), XS_OK);
    char url[256], sig[128];
    snprintf(url, sizeof(url), "%s/v1/webhooks/xero", E->api);
    snprintf(sig, sizeof(sig), "x-xero-signature: %s", b64);
    free(b64);
    const char *headers[] = {"Content-Type: application/json", sig, NULL};
    xst_http r = xst_http_do("POST", url, body, headers, 5000);
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
}

static void test_webhooks(void **state)
{
    (void)state;
    /* An event about a contact we hold at a later version (known), one about a contact we do
     * not hold (its record goes into a run), and the first delivered again (not stored). */
    const char *p[] = {CONN};
    char *held = xst_engine_sql(E,
                                "SELECT xero_id FROM sync.mappings WHERE connection_id = $1 AND "
                                "entity = 'contact' LIMIT 1",
                                1, p);
    assert_non_null(held);
    deliver(held, "2020-01-01T00:00:00.000");
    deliver("0b7e2f55-3c8e-4f55-9a4c-51a3e2c1d001", "2026-12-06T10:00:00.123");
    deliver(held, "2020-01-01T00:00:00.000");
    free(held);
    char *t = NULL;
    int64_t end = xst_now_ms() + 10000;
    for (;;) {
        t = scrape();
        if (sum(t, "xs_webhook_events_processed_total", NULL, NULL) >= 2 || xst_now_ms() > end) {
            break;
        }
        free(t);
        usleep(100000);
    }
    assert_int_equal((long)value(t, "xs_webhook_events_received_total"), 3);
    assert_int_equal((long)value(t, "xs_webhook_events_stored_total"), 2);
    assert_int_equal((long)value(t, "xs_webhook_events_processed_total{result=\"known\"}"), 1);
    assert_int_equal((long)value(t, "xs_webhook_events_processed_total{result=\"run\"}"), 1);
    assert_int_equal((long)sum(t, "xs_webhook_events_processed_total", NULL, NULL), 2);
    assert_int_equal((long)value(t, "xs_webhook_lag_seconds_count"), 2);
    /* A tenant's events are gathered until the oldest has waited XS_WEBHOOK_DELAY (250 ms),
     * then taken together: the first no sooner, the second as much less as it came later (a
     * loaded machine delivers it tens of ms after). The lags are each event's, to the ms. */
    static const char LAGS[] =
        "SELECT (extract(epoch FROM processed_at - received_at) * 1000)::bigint FROM "
        "sync.webhook_events WHERE status = 'done' ORDER BY received_at, id";
    long first = xst_engine_sql_long(E, LAGS, 0, NULL);
    assert_true(first >= 250);
    long lags = xst_engine_sql_long(
        E,
        "SELECT sum((extract(epoch FROM processed_at - received_at) * 1000)::bigint) FROM "
        "sync.webhook_events WHERE status = 'done'",
        0, NULL);
    double lag_sum = value(t, "xs_webhook_lag_seconds_sum");
    assert_true(lag_sum * 1000.0 > (double)lags - 0.5 && lag_sum * 1000.0 < (double)lags + 0.5);
    assert_int_equal((long)value(t, "xs_webhook_lag_seconds_bucket{le=\"0.1\"}"),
                     xst_engine_sql_long(E,
                                         "SELECT count(*) FROM sync.webhook_events WHERE status "
                                         "= 'done' AND (extract(epoch FROM processed_at - "
                                         "received_at) * 1000)::bigint <= 100",
                                         0, NULL));
    assert_int_equal(xst_engine_sql_long(E,
                                         "SELECT count(*) FROM sync.webhook_events WHERE status "
                                         "= 'done' AND processed_at IS NOT NULL",
                                         0, NULL),
                     2);
    promtool_check(t);
    free(t);
}

/* wait_value scrapes until series reads want (10 s at most) and returns what it read last. */
static double wait_value(const char *series, double want)
{
    int64_t end = xst_now_ms() + 10000;
    for (;;) {
        char *t = scrape();
        double v = value(t, series);
        free(t);
        if (v == want || xst_now_ms() > end) {
            return v;
        }
        usleep(100000);
    }
}

static void test_token_refreshes(void **state)
{
    (void)state;
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/check?force_refresh=true", CONN);
    xst_http r = xst_engine_api(E, "POST", path, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "refreshed")));
    xst_http_free(&r);
    long stored = xst_engine_sql_long(E, "SELECT sum(refresh_count) FROM sync.grants", 0, NULL);
    assert_true(stored >= 1);
    assert_int_equal((long)wait_value("xs_token_refreshes_total", (double)stored), stored);
    /* Xero forgets every grant: the next refresh is refused, and counted so. */
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/revoke", NULL));
    r = xst_engine_api(E, "POST", path, NULL);
    assert_true(r.status >= 200);
    xst_http_free(&r);
    assert_int_equal((long)wait_value("xs_token_refresh_failures_total{reason=\"refused\"}", 1), 1);
    assert_int_equal((long)wait_value("xs_token_refreshes_total", (double)stored), stored);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_scrape_during_and_after_a_run),
        cmocka_unit_test(test_gauges),
        cmocka_unit_test(test_webhooks),
        cmocka_unit_test(test_token_refreshes), /* last: the connection then needs a person */
    };
    int rc = xst_result(cmocka_run_group_tests(tests, setup, teardown));
    curl_global_cleanup();
    return rc;
}
