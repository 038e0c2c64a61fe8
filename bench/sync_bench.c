/*
 * sync_bench: the contacts sync's bars (issue 5), end to end on this machine: a private
 * PostgreSQL cluster, xero-sim, the orchestrator, xs-auth and xs-contacts as real processes.
 *
 *   - a full pull of N contacts (default 100,000) into an empty database, no latency, no
 *     limits: records per second, by the run's own clock;
 *   - the same full pull again with nothing changed;
 *   - the API calls used against the minimum (ceil(n/1000) to pull, ceil(m/50) to push) for
 *     the mixed set: N Xero contacts and M (default 5,000) new local ones;
 *   - an incremental run after the push (it reads the pushed records back: Xero's copies
 *     are newer than the last pull), then two with nothing changed: one once the resume
 *     margin has passed (it reads again what changed in Xero in the margin before the
 *     previous run's last page), and one right after it (the bar: one call).
 *
 * Usage: sync_bench BUILD_DIR [--contacts N] [--locals M]   (BUILD_DIR: where bin/ is)
 * Prints Markdown for bench/RESULTS.md.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "engine/domain.h"
#include "xs/json.h"

static long sql_long(xst_engine *e, const char *q)
{
    char *v = xst_engine_sql(e, q, 0, NULL);
    long n = v != NULL ? atol(v) : -1;
    free(v);
    return n;
}

static long calls_on(xst_engine *e, const char *endpoint)
{
    return xst_engine_sim_calls(e, endpoint, 0);
}

/* writes: creates go by PUT, updates by POST. */
static long writes_on(xst_engine *e)
{
    return calls_on(e, "PUT /Contacts") + calls_on(e, "POST /Contacts");
}

/* run_full starts a run and waits; returns its duration in ms by the run's own clock. */
static long run_and_wait(xst_engine *e, const char *conn, const char *mode, json_t **out)
{
    char path[160], body[64];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync", conn);
    snprintf(body, sizeof(body), "{\"mode\":\"%s\"}", mode);
    xst_http r = xst_engine_api(e, "POST", path, body);
    if (r.status != 202) {
        xst_die("sync %s: %ld %s", mode, r.status, r.body);
    }
    char run[40];
    snprintf(run, sizeof(run), "%s", json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    snprintf(path, sizeof(path), "/v1/runs/%s", run);
    for (;;) {
        xst_http g = xst_engine_api(e, "GET", path, NULL);
        const char *st = json_string_value(json_object_get(g.json, "status"));
        if (st != NULL && strcmp(st, "queued") != 0 && strcmp(st, "running") != 0) {
            if (strcmp(st, "succeeded") != 0) {
                xst_die("run %s ended %s: %s", run, st, g.body);
            }
            long ms = (long)json_integer_value(json_object_get(g.json, "duration_ms"));
            if (out != NULL) {
                *out = json_incref(g.json);
            }
            xst_http_free(&g);
            return ms;
        }
        xst_http_free(&g);
        usleep(50000);
    }
}

static void settle(xst_engine *e)
{
    for (int i = 0; i < 6000; i++) {
        /* One statement, so one snapshot: a drain commits its push run and marks its changes
         * processed together, and two queries could see neither. */
        if (sql_long(e, "SELECT (SELECT count(*) FROM sync.runs WHERE status IN ('queued', "
                        "'running')) + (SELECT count(*) FROM sync.changes WHERE processed_at IS "
                        "NULL)") == 0) {
            return;
        }
        usleep(100000);
    }
    xst_die("the engine did not settle");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BUILD_DIR [--contacts N] [--locals M]\n", argv[0]);
        return 2;
    }
    long n = 100000, m = 5000;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--contacts") == 0) {
            n = atol(argv[i + 1]);
        } else if (strcmp(argv[i], "--locals") == 0) {
            m = atol(argv[i + 1]);
        }
    }
    xst_bench_start(argv[1], XS_BENCH_SOURCE_DIR);

    xst_engine *e = xst_engine_new("bench");
    char hv[64];
    snprintf(hv, sizeof(hv), "XS_SIM_HIGH_VOLUME=%ld", n * 2 + 10);
    char *sim_env[] = {hv,
                       "XS_SIM_LIMIT_MINUTE=100000000",
                       "XS_SIM_LIMIT_DAY=1000000000",
                       "XS_SIM_LIMIT_CONCURRENT=100000",
                       "XS_SIM_LIMIT_APP_MINUTE=100000000",
                       "XS_LOG_LEVEL=warn",
                       NULL};
    xst_engine_start_sim(e, sim_env);
    /* XS_BENCH_LOG_LEVEL=debug keeps the orchestrator's and the services' timing events
     * (sync.pull_timing, ...) in their logs under BUILD_DIR/test-logs. */
    char level[64];
    snprintf(level, sizeof(level), "XS_LOG_LEVEL=%.40s",
             getenv("XS_BENCH_LOG_LEVEL") != NULL ? getenv("XS_BENCH_LOG_LEVEL") : "warn");
    char *quiet[] = {level, NULL};
    char *orch_env[] = {"XS_SCHEDULER=false",
                        "XS_BUDGET_TENANT_MINUTE=1000000",
                        "XS_BUDGET_TENANT_DAY=100000000",
                        "XS_BUDGET_APP_MINUTE=100000000",
                        "XS_PUSH_DELAY=200ms",
                        level,
                        NULL};
    xst_engine_start_orchestrator(e, orch_env);
    xst_engine_start_service(e, "auth", "auth-1", quiet);
    xst_engine_start_service(e, "contacts", "contacts-1", quiet);
    xst_engine_start_service(e, "invoices", "invoices-1", quiet); /* the chart of accounts */
    xst_engine_start_service(e, "payments", "payments-1", quiet); /* bank transactions */
    if (!xst_engine_wait_live(e, "contacts", 1, 30000) ||
        !xst_engine_wait_live(e, "invoices", 1, 30000) ||
        !xst_engine_wait_live(e, "payments", 1, 30000)) {
        xst_die("services did not start");
    }
    char *org = xst_engine_org(e, "Bench Ltd");
    xst_http t = xst_engine_simctl(e, "GET", "/_sim/tenants", NULL);
    char tenant[40];
    snprintf(tenant, sizeof(tenant), "%s",
             json_string_value(json_object_get(json_array_get(t.json, 0), "tenantId")));
    xst_http_free(&t);
    char path[200], body[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", tenant);
    snprintf(body, sizeof(body), "{\"contacts\":%ld,\"seed\":3}", n);
    xst_http s = xst_engine_simctl(e, "POST", path, body);
    if (s.status != 200) {
        xst_die("seed: %ld %s", s.status, s.body);
    }
    xst_http_free(&s);
    xst_http cb = xst_engine_connect(e, org);
    if (cb.status != 200) {
        xst_die("connect: %ld", cb.status);
    }
    char conn[40];
    snprintf(conn, sizeof(conn), "%s",
             json_string_value(json_object_get(
                 json_array_get(json_object_get(cb.json, "connections"), 0), "id")));
    xst_http_free(&cb);

    /* 1. A full pull into an empty database. */
    long g0 = calls_on(e, "GET /Contacts");
    long ms = run_and_wait(e, conn, "full", NULL);
    long gets = calls_on(e, "GET /Contacts") - g0;
    printf("| full pull of %ld contacts into an empty database | %ld ms | %.0f records/s | %ld "
           "calls (minimum %ld) |\n",
           n, ms, ms > 0 ? n * 1000.0 / ms : 0.0, gets, (n + 999) / 1000);
    fflush(stdout);

    /* 2. The same again, nothing changed. */
    g0 = calls_on(e, "GET /Contacts");
    ms = run_and_wait(e, conn, "full", NULL);
    printf("| full pull of %ld contacts, nothing changed | %ld ms | %.0f records/s | %ld calls |\n",
           n, ms, ms > 0 ? n * 1000.0 / ms : 0.0, calls_on(e, "GET /Contacts") - g0);
    fflush(stdout);

    /* 3. The mixed set: M new local contacts pushed (the outbox, through push runs). */
    char q[400], mm[24];
    snprintf(mm, sizeof(mm), "%ld", m);
    snprintf(q, sizeof(q),
             "INSERT INTO app.contacts (organisation_id, name, email) SELECT $1::uuid, 'Bench "
             "client ' || g, 'bench' || g || '@client.example' FROM generate_series(1, $2::int) g");
    const char *pp[] = {org, mm};
    g0 = calls_on(e, "GET /Contacts");
    long p0 = writes_on(e);
    int64_t t0 = xst_now_ms();
    free(xst_engine_sql(e, q, 2, pp));
    settle(e);
    int64_t took = xst_now_ms() - t0;
    long posts = writes_on(e) - p0, gets2 = calls_on(e, "GET /Contacts") - g0;
    printf("| push of %ld new local contacts | %lld ms | %.0f records/s | %ld writes (minimum "
           "%ld) + %ld reads |\n",
           m, (long long)took, took > 0 ? m * 1000.0 / took : 0.0, posts, (m + 49) / 50, gets2);
    long used = gets + posts, minimum = (n + 999) / 1000 + (m + 49) / 50;
    printf("| API calls for the mixed set (%ld pulled, %ld pushed) | %ld used | minimum %ld | "
           "ratio %.4f |\n",
           n, m, used + gets2, minimum, (double)(used + gets2) / (double)minimum);

    /* 4. Incremental after the push: Xero's copies of the pushed records are newer than the
     * last pull, so this one reads them back (and finds them unchanged). */
    g0 = calls_on(e, "GET /Contacts");
    ms = run_and_wait(e, conn, "incremental", NULL);
    printf("| incremental run after the push (reads the %ld pushed records back) | %ld ms | | %ld "
           "call(s) (minimum %ld) |\n",
           m, ms, calls_on(e, "GET /Contacts") - g0, (m + 999) / 1000);

    /* 5. Incremental, nothing changed, once the resume margin after run 4 has passed: it
     * reads once more what changed in Xero in the margin before run 4 read its last page
     * (XS_DOMAIN_RESUME_MARGIN_MS: Xero's clock, late commits), here the tail of the push,
     * and finds it unchanged. */
    usleep((XS_DOMAIN_RESUME_MARGIN_MS + 1000) * 1000);
    g0 = calls_on(e, "GET /Contacts");
    ms = run_and_wait(e, conn, "incremental", NULL);
    printf("| incremental run, nothing changed (re-reads what changed in the margin before run 4) "
           "| %ld ms | | %ld call(s) |\n",
           ms, calls_on(e, "GET /Contacts") - g0);
    /* 6. Incremental, nothing changed since run 5 (which began past the margin): the bar. */
    g0 = calls_on(e, "GET /Contacts");
    ms = run_and_wait(e, conn, "incremental", NULL);
    printf("| incremental run, nothing changed | %ld ms | | %ld call(s) |\n", ms,
           calls_on(e, "GET /Contacts") - g0);
    /* 7. A tenth of them edited in Xero, then a full pull (last: Xero's clock, as the simulator
     * keeps it, gives each edit its own millisecond, so the edits reach seconds past the pull
     * and the next incremental run reads them once more): the edited records are read,
     * decided and written, the others known by their text. */
    long edited = n / 10;
    snprintf(path, sizeof(path), "/_sim/tenants/%s/touch", tenant);
    snprintf(body, sizeof(body), "{\"kind\":\"Contacts\",\"count\":%ld,\"seed\":4}", edited);
    s = xst_engine_simctl(e, "POST", path, body);
    if (s.status != 200) {
        xst_die("touch: %ld %s", s.status, s.body);
    }
    xst_http_free(&s);
    g0 = calls_on(e, "GET /Contacts");
    ms = run_and_wait(e, conn, "full", NULL);
    printf("| full pull of %ld contacts, %ld of them edited in Xero | %ld ms | %.0f records/s | "
           "%ld calls |\n",
           n, edited, ms, ms > 0 ? n * 1000.0 / ms : 0.0, calls_on(e, "GET /Contacts") - g0);
    fflush(stdout);
    printf("\nlocal contacts: %ld, linked: %ld\n", sql_long(e, "SELECT count(*) FROM app.contacts"),
           sql_long(e, "SELECT count(*) FROM sync.mappings WHERE entity = 'contact'"));
    free(org);
    int bad = xst_engine_free(e);
    xst_bench_stop(argv[1], XS_BENCH_SOURCE_DIR);
    return bad == 0 ? 0 : 1;
}
