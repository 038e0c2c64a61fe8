/*
 * tenants_bench: many tenants on one deployment (issue 23). A private PostgreSQL cluster,
 * xero-sim with N organisations, the orchestrator and every domain service as processes; each
 * organisation connected by its own consent (one local organisation per Xero tenant, as a SaaS
 * product's customers connect). Xero's windows are shortened (--window-ms) and the app-wide
 * limit lowered (--app) so that a mass import of every tenant at once runs in minutes and is
 * bound by the app-wide limit, not by this machine.
 *
 * The mass import: the orchestrator is restarted with its scheduler on, so every connection's
 * initial import comes due at once. Measured:
 *   - how long the scheduler took to create every run;
 *   - per-tenant finish times (min/p50/max, from the restart) against the bound the app
 *     limit allows: all the calls made, at --app calls per --window-ms;
 *   - Jain's fairness index over the tenants' cumulative shares (each tenant's calls so far
 *     over its calls in all) at each tenth of the import, while every tenant still had work;
 *   - the claim's cost per step (xs_claim_duration_seconds, claimed) over the first tenth of
 *     the import, with the pending steps counted then;
 *   - 429s the simulator answered (must be 0).
 *
 * Idle polling (--idle P): the same tenants, connected and imported under limits that do not
 * bind, then left alone with incremental runs every P ms (Xero's default 15 minutes made P ms:
 * every period below is scaled by the same factor, XS_POLL_MAX_EVERY to 16 P as 4 h is to
 * 15 min). After 32 intervals of settling, over the next 32: the calls to Xero, the CPU time of
 * the engine's processes and of PostgreSQL, and the database's growth, each per tenant and
 * per hour at the real 15-minute interval (the measured rate over the scale factor).
 *
 * Usage: tenants_bench BUILD_DIR [--tenants N] [--records R] [--app A] [--window-ms W]
 *                                [--idle P]
 *   defaults: 1,000 tenants (40 with --idle), 60 records each, 1,000 calls per 10,000 ms.
 * Prints Markdown for bench/RESULTS.md.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

static long sql_long(xst_engine *e, const char *q)
{
    return xst_engine_sql_long(e, q, 0, NULL);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

/* metric_value reads a sample line "name value" of the orchestrator's /metrics (0 if absent). */
static double metric_value(xst_engine *e, const char *name)
{
    xst_http m = xst_engine_api(e, "GET", "/metrics", NULL);
    double v = 0;
    char needle[256];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *p = m.body != NULL ? strstr(m.body, needle) : NULL;
    if (p != NULL) {
        v = atof(p + strlen(needle));
    }
    xst_http_free(&m);
    return v;
}

/* sim_429s counts the 429s the simulator answered, on every endpoint. */
static long sim_429s(xst_engine *e)
{
    json_t *st = xst_engine_sim_json(e, "GET", "/_sim/stats", NULL);
    long n = 0;
    const char *ep, *code;
    json_t *m, *v;
    json_object_foreach(json_object_get(st, "by_endpoint"), ep, m)
    {
        json_object_foreach(m, code, v)
        {
            n += atoi(code) == 429 ? (long)json_integer_value(v) : 0;
        }
    }
    json_decref(st);
    return n;
}

/* connect_all makes n organisations in the simulator, records each seeded (a fifth contacts,
 * half invoices, a fifth payments, the rest bank transactions), and connects one local
 * organisation to each by its own consent. */
static void connect_all(xst_engine *e, int n, long records)
{
    int64_t t0 = xst_now_ms();
    for (int i = 0; i < n; i++) {
        char name[48], body[160], consent[128], conn[40], tenant[40];
        snprintf(name, sizeof(name), "Tenant %05d Ltd", i);
        snprintf(body, sizeof(body), "{\"name\":\"%s\",\"seed\":{\"records\":%ld,\"seed\":%d}}",
                 name, records, i + 1);
        json_t *t = xst_engine_sim_json(e, "POST", "/_sim/tenants", body);
        snprintf(consent, sizeof(consent), "{\"tenants\":[\"%s\"]}",
                 xs_json_str_or(t, "tenantId", ""));
        json_decref(t);
        json_decref(xst_engine_sim_json(e, "POST", "/_sim/consent", consent));
        free(xst_engine_connected(e, name, conn, tenant));
        if ((i + 1) % 500 == 0) {
            fprintf(stderr, "connected %d of %d (%.0f s)\n", i + 1, n,
                    (double)(xst_now_ms() - t0) / 1000.0);
        }
    }
}

/* jain is Jain's index of x[0..n): (sum x)^2 / (n sum x^2); 1 when all are equal. */
static double jain(const double *x, int n)
{
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        s += x[i];
        s2 += x[i] * x[i];
    }
    return s2 > 0 ? s * s / ((double)n * s2) : 1.0;
}

/* proc_stat reads process pid's parent and the CPU time (user + system, ms) it used so far;
 * false when it is gone. */
static bool proc_stat(long pid, long *ppid, double *cpu_ms)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after the command's name */
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", ppid, &ut, &st) != 3) {
        return false;
    }
    *cpu_ms = (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
    return true;
}

static double proc_cpu_ms(long pid)
{
    long ppid = 0;
    double ms = 0;
    return proc_stat(pid, &ppid, &ms) ? ms : 0;
}

/* engine_cpu_ms is the CPU time of the orchestrator and the domain services; pg_cpu_ms that of
 * the bench cluster's postmaster and its children (its backends, its background workers). */
static double engine_cpu_ms(const xst_engine *e)
{
    double ms = proc_cpu_ms(e->orch->pid);
    for (int i = 0; i < e->nprocs; i++) {
        ms += proc_cpu_ms(e->procs[i]->pid);
    }
    return ms;
}

static double pg_cpu_ms(const char *build)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/bench-pg/data/postmaster.pid", build);
    char *text = xst_slurp(path);
    long pm = text != NULL ? atol(text) : -1;
    free(text);
    if (pm <= 0) {
        return 0;
    }
    double ms = proc_cpu_ms(pm);
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        long pid = atol(de->d_name), ppid = 0;
        double used = 0;
        if (pid > 0 && proc_stat(pid, &ppid, &used) && ppid == pm) {
            ms += used;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return ms;
}

/* idle measures idle polling (see the top): connected, imported, settled, then 32 intervals
 * of poll_ms measured. */
static int idle(const char *build, long ntenants, long records, long poll_ms)
{
    xst_engine *e = xst_engine_new("tenants-idle");
    char *sim_env[] = {"XS_SIM_TENANTS=0",
                       "XS_SIM_LIMIT_APP_MINUTE=10000000",
                       "XS_SIM_LIMIT_MINUTE=10000000",
                       "XS_SIM_LIMIT_DAY=100000000",
                       "XS_LOG_LEVEL=warn",
                       NULL};
    xst_engine_start_sim(e, sim_env);
    char every[64], max_every[64];
    snprintf(every, sizeof(every), "XS_SCHEDULE_INCREMENTAL_EVERY=%ldms", poll_ms);
    snprintf(max_every, sizeof(max_every), "XS_POLL_MAX_EVERY=%ldms", 16 * poll_ms);
    char *orch_env[] = {"XS_SCHEDULER=false",
                        "XS_LOG_LEVEL=warn",
                        "XS_BUDGET_APP_MINUTE=10000000",
                        "XS_BUDGET_TENANT_MINUTE=1000000",
                        "XS_BUDGET_TENANT_DAY=100000000",
                        every,
                        max_every,
                        "XS_SCHEDULE_JITTER=0",
                        NULL};
    xst_engine_start_orchestrator(e, orch_env);
    xst_engine_start_services(e);
    connect_all(e, (int)ntenants, records);
    if (xst_stop(e->orch, 20000) != 0) {
        xst_die("the orchestrator did not stop cleanly");
    }
    xst_proc_free(e->orch);
    orch_env[0] = "XS_SCHEDULER=true";
    xst_engine_start_orchestrator(e, orch_env);
    int64_t end = xst_now_ms() + 600000;
    while (sql_long(e, "SELECT count(*) FROM sync.runs WHERE mode = 'full' AND finished_at IS "
                       "NOT NULL") < ntenants) {
        if (xst_now_ms() > end) {
            xst_die("the imports did not end");
        }
        usleep(200000);
    }
    usleep((useconds_t)(32 * poll_ms * 1000));
    char *t0 = xst_engine_sql(e, "SELECT now()::text", 0, NULL);
    long size0 = sql_long(e, "SELECT pg_database_size(current_database())");
    double cpu_e0 = engine_cpu_ms(e), cpu_p0 = pg_cpu_ms(build);
    int64_t m0 = xst_now_ms();
    usleep((useconds_t)(32 * poll_ms * 1000));
    double secs = (double)(xst_now_ms() - m0) / 1000.0;
    double cpu_e = engine_cpu_ms(e) - cpu_e0, cpu_p = pg_cpu_ms(build) - cpu_p0;
    long size = sql_long(e, "SELECT pg_database_size(current_database())") - size0;
    const char *p[] = {t0};
    long calls = xst_engine_sql_long(e,
                                     "SELECT count(*) FROM sync.api_calls WHERE path LIKE "
                                     "'/api.xro/%' AND at >= $1::timestamptz",
                                     1, p);
    long runs = xst_engine_sql_long(e,
                                    "SELECT count(*) FROM sync.runs WHERE created_at >= "
                                    "$1::timestamptz",
                                    1, p);
    free(t0);
    /* Per tenant and real hour: the measured rate, slowed from poll_ms back to 15 minutes. */
    double per = 3600.0 / secs / (double)ntenants * ((double)poll_ms / 900000.0);
    printf("### Idle polling: %ld tenants, incremental runs every %ld ms (15 min scaled by "
           "%.0f), measured over %.0f s after %ld ms of settling\n\n",
           ntenants, poll_ms, 900000.0 / (double)poll_ms, secs, 32 * poll_ms);
    printf("| per tenant, per hour at the real 15-minute interval | value |\n|---|---|\n");
    printf("| calls to the Accounting API | %.2f |\n", (double)calls * per);
    printf("| runs | %.2f |\n", (double)runs * per);
    printf("| CPU of the engine's processes | %.1f ms |\n", cpu_e * per);
    printf("| CPU of PostgreSQL | %.1f ms |\n", cpu_p * per);
    printf("| database growth (retention keeps %s) | %.0f bytes |\n",
           "30 days of runs and calls by default", (double)size * per);
    int bad = xst_engine_free(e);
    xst_bench_stop(build, XS_BENCH_SOURCE_DIR);
    return bad != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s BUILD_DIR [--tenants N] [--records R] [--app A] [--window-ms W] "
                "[--idle P]\n",
                argv[0]);
        return 2;
    }
    long ntenants = -1, records = 60, app = 1000, window_ms = 10000, idle_ms = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (strcmp(argv[i], "--tenants") == 0) {
            ntenants = v;
        } else if (strcmp(argv[i], "--records") == 0) {
            records = v;
        } else if (strcmp(argv[i], "--app") == 0) {
            app = v;
        } else if (strcmp(argv[i], "--window-ms") == 0) {
            window_ms = v;
        } else if (strcmp(argv[i], "--idle") == 0) {
            idle_ms = v;
        } else {
            xst_die("unknown option %s", argv[i]);
        }
    }
    if (ntenants < 0) {
        ntenants = idle_ms > 0 ? 40 : 1000;
    }
    if (ntenants < 2 || records < 0 || app < 10 || window_ms < 1000 || idle_ms < 0) {
        xst_die("--tenants at least 2, --app at least 10, --window-ms at least 1000");
    }
    xst_bench_start(argv[1], XS_BENCH_SOURCE_DIR);
    if (idle_ms > 0) {
        return idle(argv[1], ntenants, records, idle_ms);
    }
    xst_engine *e = xst_engine_new("tenants");

    char s_app[48], s_win[48], o_app[48], o_win[48];
    snprintf(s_app, sizeof(s_app), "XS_SIM_LIMIT_APP_MINUTE=%ld", app);
    snprintf(s_win, sizeof(s_win), "XS_SIM_MINUTE_WINDOW=%ldms", window_ms);
    snprintf(o_app, sizeof(o_app), "XS_BUDGET_APP_MINUTE=%ld", app);
    snprintf(o_win, sizeof(o_win), "XS_BUDGET_MINUTE_WINDOW=%ldms", window_ms);
    char *sim_env[] = {"XS_SIM_TENANTS=0",  s_app, s_win, "XS_SIM_LIMIT_DAY=1000000",
                       "XS_LOG_LEVEL=warn", NULL};
    xst_engine_start_sim(e, sim_env);
    /* Xero's per-tenant limits at Xero's ratio to the window; the margin a fiftieth of it,
     * and a pull step's time a thirtieth (XS_PULL_STEP_TIME's 2 s of Xero's minute): every
     * period the budget counts is scaled alike, so the shared ledger, which counts each chunk
     * for a window, its margin and a pull step's time, weighs as it does at Xero's scale. */
    char margin[48], pull_time[48];
    snprintf(margin, sizeof(margin), "XS_BUDGET_MARGIN=%ldms", window_ms / 50);
    snprintf(pull_time, sizeof(pull_time), "XS_PULL_STEP_TIME=%ldms",
             window_ms / 30 > 1 ? window_ms / 30 : 1);
    /* Connected with the scheduler off; restarted with it on for the mass import. */
    char *orch_env[] = {"XS_SCHEDULER=false",
                        "XS_LOG_LEVEL=warn",
                        o_app,
                        o_win,
                        margin,
                        pull_time,
                        "XS_SCHEDULE_INCREMENTAL_EVERY=24h",
                        NULL};
    xst_engine_start_orchestrator(e, orch_env);
    xst_engine_start_services(e);
    int64_t c0 = xst_now_ms();
    connect_all(e, (int)ntenants, records);
    double connect_s = (double)(xst_now_ms() - c0) / 1000.0;

    /* The mass import: every connection's first full run comes due at the restart. */
    if (xst_stop(e->orch, 20000) != 0) {
        xst_die("the orchestrator did not stop cleanly");
    }
    xst_proc_free(e->orch);
    orch_env[0] = "XS_SCHEDULER=true";
    char *t0s =
        xst_engine_sql(e, "SELECT (extract(epoch FROM now()) * 1000)::bigint::text", 0, NULL);
    int64_t t0_mono = xst_now_ms();
    xst_engine_start_orchestrator(e, orch_env);

    /* The claim's cost over the first tenth of the import, with the pending steps then. */
    long total_guess = ntenants * 6;
    long bound_guess_ms = total_guess * window_ms / app;
    int64_t created_at = -1;
    double claim_sum0 = metric_value(e, "xs_claim_duration_seconds_sum{result=\"claimed\"}");
    double claim_n0 = metric_value(e, "xs_claim_duration_seconds_count{result=\"claimed\"}");
    long pending_max = 0, pending_samples = 0, pending_sum = 0;
    double claim_cost_us = -1, claim_steps = 0;
    for (;;) {
        long runs = sql_long(
            e, "SELECT count(*) FROM sync.runs WHERE trigger = 'schedule' AND mode = 'full'");
        if (created_at < 0 && runs >= ntenants) {
            created_at = xst_now_ms() - t0_mono;
        }
        long pending = sql_long(e, "SELECT count(*) FROM sync.run_steps WHERE status = 'pending'");
        if (claim_cost_us < 0) {
            pending_max = pending > pending_max ? pending : pending_max;
            pending_sum += pending;
            pending_samples++;
        }
        if (claim_cost_us < 0 && xst_now_ms() - t0_mono >= bound_guess_ms / 10) {
            double s1 = metric_value(e, "xs_claim_duration_seconds_sum{result=\"claimed\"}");
            double n1 = metric_value(e, "xs_claim_duration_seconds_count{result=\"claimed\"}");
            claim_steps = n1 - claim_n0;
            claim_cost_us = claim_steps > 0 ? (s1 - claim_sum0) * 1e6 / claim_steps : 0;
        }
        long open = sql_long(e, "SELECT count(*) FROM sync.runs WHERE status IN ('queued', "
                                "'running')");
        if (runs >= ntenants && open == 0) {
            break;
        }
        if (xst_now_ms() - t0_mono > 20 * bound_guess_ms + 600000) {
            xst_die("the import did not end (%ld runs open)", open);
        }
        usleep(500000);
    }
    long failed = sql_long(
        e, "SELECT count(*) FROM sync.runs WHERE trigger = 'schedule' AND mode = 'full' AND "
           "status <> 'succeeded'");

    /* Finish times and calls, per tenant. */
    char *rows = xst_engine_sqlf(
        e,
        "SELECT json_agg(json_build_array((extract(epoch FROM r.finished_at) * 1000)::bigint - "
        "$1::bigint, coalesce(a.n, 0))) FROM sync.runs r JOIN sync.connections c ON c.id = "
        "r.connection_id LEFT JOIN (SELECT tenant_id, count(*) AS n FROM sync.api_calls WHERE "
        "path LIKE '/api.xro/%' AND at >= to_timestamp($1::bigint / 1000.0) GROUP BY tenant_id) "
        "a ON a.tenant_id = c.tenant_id WHERE r.trigger = 'schedule'",
        1, t0s);
    json_t *per = xs_json_parse(rows, strlen(rows), NULL);
    free(rows);
    size_t n = json_array_size(per);
    long *fin = calloc(n, sizeof(long));
    long calls = 0;
    for (size_t i = 0; i < n; i++) {
        fin[i] = (long)json_integer_value(json_array_get(json_array_get(per, i), 0));
        calls += (long)json_integer_value(json_array_get(json_array_get(per, i), 1));
    }
    json_decref(per);
    qsort(fin, n, sizeof(long), cmp_long);
    double bound_s = (double)calls * (double)window_ms / (double)app / 1000.0;

    /* Cumulative shares: each tenant's calls by t over its calls in all, at each tenth of the
     * bound while no tenant had finished. */
    rows = xst_engine_sqlf(e,
                           "SELECT json_agg(json_build_array(x.i, x.ms)) FROM (SELECT dense_rank() "
                           "OVER (ORDER BY a.tenant_id) - 1 AS i, (extract(epoch FROM a.at) * "
                           "1000)::bigint - $1::bigint AS ms FROM sync.api_calls a WHERE a.path "
                           "LIKE '/api.xro/%' AND a.at >= to_timestamp($1::bigint / 1000.0)) x",
                           1, t0s);
    json_t *cl = xs_json_parse(rows, strlen(rows), NULL);
    free(rows);
    double *tot = calloc((size_t)ntenants, sizeof(double));
    double *got = calloc((size_t)ntenants, sizeof(double));
    size_t k;
    json_t *c;
    json_array_foreach(cl, k, c)
    {
        long i = (long)json_integer_value(json_array_get(c, 0));
        if (i >= 0 && i < ntenants) {
            tot[i]++;
        }
    }
    printf("### %ld tenants, %ld records each, %ld calls per %ld ms app-wide\n\n", ntenants,
           records, app, window_ms);
    printf("Connecting them (one consent each): %.0f s.\n\n", connect_s);
    /* Beside each index, the best whole calls allow: the calls made by then spread as evenly
     * as they can be over the tenants (while there are fewer calls than tenants, some have
     * none, whatever the order), with each tenant's calls in all at their mean. */
    printf("| tenth of the bound | calls by then | Jain's index of cumulative shares | best whole "
           "calls allow |\n|---|---|---|---|\n");
    double jmin = 1.0;
    int64_t last_call = 0;
    json_array_foreach(cl, k, c)
    {
        int64_t ms = (int64_t)json_integer_value(json_array_get(c, 1));
        last_call = ms > last_call ? ms : last_call;
    }
    for (int tenth = 1; tenth <= 9; tenth++) {
        double at = bound_s * 1000.0 * tenth / 10.0;
        if (at >= (double)fin[0]) {
            break;
        }
        memset(got, 0, (size_t)ntenants * sizeof(double));
        long by = 0;
        json_array_foreach(cl, k, c)
        {
            long i = (long)json_integer_value(json_array_get(c, 0));
            if (i >= 0 && i < ntenants && (double)json_integer_value(json_array_get(c, 1)) <= at &&
                tot[i] > 0) {
                got[i] += 1.0 / tot[i];
                by++;
            }
        }
        double j = jain(got, (int)ntenants);
        jmin = j < jmin ? j : jmin;
        double q = (double)(by / ntenants), r = (double)(by % ntenants), nn = (double)ntenants;
        double best =
            by > 0 ? (double)by * (double)by / (nn * (r * (q + 1) * (q + 1) + (nn - r) * q * q))
                   : 1.0;
        printf("| %d/10 (%.0f s) | %ld | %.4f | %.4f |\n", tenth, at / 1000.0, by, j, best);
    }
    json_decref(cl);
    free(tot);
    free(got);
    long sim429 = sim_429s(e);
    printf("\n| measure | value |\n|---|---|\n");
    printf("| runs created by the scheduler (all %ld) | %.1f s after the restart |\n", ntenants,
           (double)created_at / 1000.0);
    printf("| calls to the Accounting API | %ld (%.1f a tenant) |\n", calls,
           (double)calls / (double)ntenants);
    printf("| bound: calls at %ld per %.0f s | %.1f s |\n", app, (double)window_ms / 1000.0,
           bound_s);
    printf("| finish time min / p50 / max | %.1f / %.1f / %.1f s |\n", (double)fin[0] / 1000.0,
           (double)fin[n / 2] / 1000.0, (double)fin[n - 1] / 1000.0);
    printf("| last finish over the bound | %.3f |\n", (double)fin[n - 1] / 1000.0 / bound_s);
    printf("| the last call to Xero, then the last finish (local work: the runs' scans) | %.1f s, "
           "%.1f s on |\n",
           (double)last_call / 1000.0, (double)(fin[n - 1] - last_call) / 1000.0);
    printf("| Jain's index, lowest while every tenant had work | %.4f |\n", jmin);
    printf("| claim per step (first tenth; pending steps then: mean %ld, max %ld) | %.0f us over "
           "%.0f claims |\n",
           pending_samples > 0 ? pending_sum / pending_samples : 0, pending_max, claim_cost_us,
           claim_steps);
    printf("| runs not succeeded | %ld |\n| 429s answered by the simulator | %ld |\n", failed,
           sim429);
    free(fin);
    free(t0s);
    int bad = xst_engine_free(e);
    xst_bench_stop(argv[1], XS_BENCH_SOURCE_DIR);
    return bad != 0 || failed != 0 || sim429 != 0;
}
