/*
 * ledger_bench: the invoices-and-payments bars (issue 6), end to end on this machine: a
 * private PostgreSQL cluster, xero-sim, the orchestrator and every domain service as real
 * processes.
 *
 *   1. The mixed data set, no latency, no limits: C contacts, I invoices (three lines on
 *      average) and P payments seeded in the simulator, imported by one full run; then L new
 *      local invoices, each with a payment, written by the host application and pushed. The
 *      API calls used against the minimum: ceil(n/1000) a paged entity to pull (at least one
 *      call each), one for the chart of accounts, ceil(m/50) an entity to push.
 *   2. With 200 ms of latency on every call and Xero's own limits (60 calls a minute, 5 at
 *      once, 5,000 a day, unscaled): how long a full import of 250 invoices takes (a
 *      published integration reports 42.8 s), and of 20,000.
 *
 * Usage: ledger_bench BUILD_DIR [--contacts C] [--invoices I] [--payments P] [--locals L]
 * (defaults 5,000, 20,000, 10,000 and 1,000). Prints Markdown for bench/RESULTS.md.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "xs/json.h"

static const char *const PULLED[] = {"Contacts", "Accounts", "Invoices", "Payments",
                                     "BankTransactions"};
#define NPULLED 5

static long gets(xst_engine *e, const char *kind)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "GET /%s", kind);
    return xst_engine_sim_calls(e, ep, 0);
}

static long writes(xst_engine *e, const char *kind)
{
    char a[64], b[64];
    snprintf(a, sizeof(a), "PUT /%s", kind);
    snprintf(b, sizeof(b), "POST /%s", kind);
    return xst_engine_sim_calls(e, a, 0) + xst_engine_sim_calls(e, b, 0);
}

static long pages(long n)
{
    return n > 0 ? (n + 999) / 1000 : 1;
}

/* up starts an engine whose simulator runs with sim_env and an organisation connected to it;
 * the connection's id into conn, the tenant's into tenant. */
static xst_engine *up(char *const sim_env[], char *const orch_env[], char *conn, char *tenant)
{
    xst_engine *e = xst_engine_new("ledger");
    xst_engine_start_sim(e, sim_env);
    xst_engine_start_orchestrator(e, orch_env);
    xst_engine_start_services(e);
    free(xst_engine_connected(e, "Ledger Bench Ltd", conn, tenant));
    return e;
}

static void seed(xst_engine *e, const char *tenant, long c, long i, long p)
{
    char path[128], body[200];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", tenant);
    snprintf(body, sizeof(body), "{\"contacts\":%ld,\"invoices\":%ld,\"payments\":%ld,\"seed\":5}",
             c, i, p);
    json_decref(xst_engine_sim_json(e, "POST", path, body));
}

static long full_run(xst_engine *e, const char *conn)
{
    json_t *run = xst_engine_run(e, conn, "{\"mode\":\"full\"}", 3600000);
    const char *st = json_string_value(json_object_get(run, "status"));
    if (st == NULL || strcmp(st, "succeeded") != 0) {
        char *t = xs_json_dump(run, XS_JSON_PRETTY);
        xst_die("the full run ended %s: %s", st ? st : "?", t);
    }
    long ms = (long)json_integer_value(json_object_get(run, "duration_ms"));
    json_decref(run);
    return ms;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s BUILD_DIR [--contacts C] [--invoices I] [--payments P] [--locals L]\n",
                argv[0]);
        return 2;
    }
    long nc = 5000, ni = 20000, np = 10000, nl = 1000;
    for (int i = 2; i + 1 < argc; i += 2) {
        long v = atol(argv[i + 1]);
        if (strcmp(argv[i], "--contacts") == 0) {
            nc = v;
        } else if (strcmp(argv[i], "--invoices") == 0) {
            ni = v;
        } else if (strcmp(argv[i], "--payments") == 0) {
            np = v;
        } else if (strcmp(argv[i], "--locals") == 0) {
            nl = v;
        }
    }
    xst_bench_start(argv[1], XS_BENCH_SOURCE_DIR);
    int bad = 0;

    /* 1. The mixed data set, no latency, no limits. */
    {
        char hv[64];
        snprintf(hv, sizeof(hv), "XS_SIM_HIGH_VOLUME=%ld", (nc + ni + np) * 2 + 10);
        char *sim_env[] = {hv,
                           "XS_SIM_LIMIT_MINUTE=100000000",
                           "XS_SIM_LIMIT_DAY=1000000000",
                           "XS_SIM_LIMIT_CONCURRENT=100000",
                           "XS_SIM_LIMIT_APP_MINUTE=100000000",
                           "XS_LOG_LEVEL=warn",
                           NULL};
        char *orch_env[] = {"XS_SCHEDULER=false",
                            "XS_BUDGET_TENANT_MINUTE=1000000",
                            "XS_BUDGET_TENANT_DAY=100000000",
                            "XS_BUDGET_APP_MINUTE=100000000",
                            "XS_PUSH_DELAY=200ms",
                            "XS_LOG_LEVEL=warn",
                            NULL};
        char conn[40], tenant[40];
        xst_engine *e = up(sim_env, orch_env, conn, tenant);
        seed(e, tenant, nc, ni, np);
        long g0[NPULLED];
        for (int k = 0; k < NPULLED; k++) {
            g0[k] = gets(e, PULLED[k]);
        }
        long ms = full_run(e, conn);
        long used = 0;
        printf("| import of %ld contacts, %ld invoices and %ld payments | %ld ms | %.0f records/s "
               "|",
               nc, ni, np, ms, ms > 0 ? (nc + ni + np) * 1000.0 / ms : 0.0);
        for (int k = 0; k < NPULLED; k++) {
            long g = gets(e, PULLED[k]) - g0[k];
            used += g;
            printf(" %s %ld", PULLED[k], g);
        }
        long bts = xst_engine_sql_long(e, "SELECT count(*) FROM app.bank_transactions", 0, NULL);
        long accts = 1;
        long minimum = pages(nc) + accts + pages(ni) + pages(np) + pages(bts);
        printf(" | %ld calls (minimum %ld) |\n", used, minimum);
        fflush(stdout);

        /* L new local invoices of existing contacts, each with a payment, in one go. */
        char ls[24];
        snprintf(ls, sizeof(ls), "%ld", nl);
        char *org = xst_engine_sql(e, "SELECT id FROM app.organisations LIMIT 1", 0, NULL);
        const char *pp[] = {org, ls};
        long w0 = writes(e, "Invoices") + writes(e, "Payments") + writes(e, "Contacts");
        long r0 = 0;
        for (int k = 0; k < NPULLED; k++) {
            r0 += gets(e, PULLED[k]);
        }
        int64_t t0 = xst_now_ms();
        free(xst_engine_sql(
            e,
            "WITH c AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM app.contacts WHERE "
            "organisation_id = $1 AND status = 'ACTIVE'), n AS (SELECT count(*) AS n FROM c), i "
            "AS (INSERT INTO app.invoices (organisation_id, contact_id, type, reference, status, "
            "date, due_date) SELECT $1, c.id, 'ACCREC', 'bench ' || g, 'AUTHORISED', "
            "'2026-11-20', '2026-12-20' FROM generate_series(1, $2::int) g, n, c WHERE c.k = 1 + "
            "g % n.n RETURNING id), l AS (INSERT INTO app.invoice_lines (organisation_id, "
            "invoice_id, position, description, quantity, unit_amount, account_code, tax_type) "
            "SELECT $1, i.id, 0, 'Service', 2, 45.5, '200', 'OUTPUT2' FROM i RETURNING "
            "invoice_id), b AS (SELECT code FROM app.accounts WHERE organisation_id = $1 AND "
            "type = 'BANK' AND status = 'ACTIVE' AND code IS NOT NULL ORDER BY code LIMIT 1) "
            "INSERT INTO app.payments (organisation_id, invoice_id, account_code, date, amount) "
            "SELECT $1, l.invoice_id, b.code, '2026-11-25', 40 FROM l, b RETURNING 1",
            2, pp));
        if (!xst_engine_settle(e, 3600000)) {
            xst_die("the push did not settle");
        }
        int64_t took = xst_now_ms() - t0;
        long wrote = writes(e, "Invoices") + writes(e, "Payments") + writes(e, "Contacts") - w0;
        long read = -r0;
        for (int k = 0; k < NPULLED; k++) {
            read += gets(e, PULLED[k]);
        }
        long pushed = xst_engine_sql_long(e,
                                          "SELECT count(*) FROM sync.mappings m JOIN app.invoices "
                                          "i ON i.id = m.local_id WHERE i.reference LIKE 'bench %'",
                                          0, NULL);
        printf("| push of %ld new invoices, each with a payment | %lld ms | %.0f records/s | %ld "
               "writes (minimum %ld) + %ld reads |\n",
               nl, (long long)took, took > 0 ? 2 * nl * 1000.0 / took : 0.0, wrote,
               2 * ((nl + 49) / 50), read);
        long all = used + wrote + read, min_all = minimum + 2 * ((nl + 49) / 50);
        printf("| API calls for the whole mixed set | %ld used | minimum %ld | ratio %.4f |\n", all,
               min_all, (double)all / (double)min_all);
        printf("\nlocal: %ld contacts, %ld invoices (%ld lines), %ld payments; %ld of the %ld new "
               "invoices linked\n\n",
               xst_engine_sql_long(e, "SELECT count(*) FROM app.contacts", 0, NULL),
               xst_engine_sql_long(e, "SELECT count(*) FROM app.invoices", 0, NULL),
               xst_engine_sql_long(e, "SELECT count(*) FROM app.invoice_lines", 0, NULL),
               xst_engine_sql_long(e, "SELECT count(*) FROM app.payments", 0, NULL), pushed, nl);
        fflush(stdout);
        free(org);
        bad += xst_engine_free(e);
    }

    /* 2. 200 ms a call, Xero's limits. */
    const long sizes[2] = {250, ni};
    for (int s = 0; s < 2; s++) {
        char *sim_env[] = {"XS_SIM_LATENCY=200ms",
                           "XS_SIM_LIMIT_MINUTE=60",
                           "XS_SIM_LIMIT_DAY=5000",
                           "XS_SIM_LIMIT_CONCURRENT=5",
                           "XS_SIM_HIGH_VOLUME=100000",
                           "XS_LOG_LEVEL=warn",
                           NULL};
        char *orch_env[] = {"XS_SCHEDULER=false", "XS_PUSH_DELAY=200ms", "XS_LOG_LEVEL=warn", NULL};
        char conn[40], tenant[40];
        xst_engine *e = up(sim_env, orch_env, conn, tenant);
        long contacts = sizes[s] / 4 > 0 ? sizes[s] / 4 : 1;
        seed(e, tenant, contacts, sizes[s], 0);
        long calls0 = 0;
        for (int k = 0; k < NPULLED; k++) {
            calls0 += gets(e, PULLED[k]);
        }
        long ms = full_run(e, conn);
        long calls = -calls0;
        for (int k = 0; k < NPULLED; k++) {
            calls += gets(e, PULLED[k]);
        }
        printf("| import of %ld invoices (and %ld contacts), 200 ms a call, Xero's limits | %ld ms "
               "| %ld calls, %ld answered 429 |\n",
               sizes[s], contacts, ms, calls, xst_engine_sim_calls(e, "GET /Invoices", 429));
        fflush(stdout);
        bad += xst_engine_free(e);
    }
    xst_bench_stop(argv[1], XS_BENCH_SOURCE_DIR);
    return bad == 0 ? 0 : 1;
}
