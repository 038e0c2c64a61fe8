/*
 * webhook_net_test.c: the safety net under Xero's webhooks (services/orchestrator/hookwatch.h),
 * with the scheduler running on short intervals and the simulator's real webhook delivery.
 *
 * A "pinger" invoice is saved in Xero again and again with the same values, as a person in
 * Xero would: each save is an INVOICE event, delivered and fetched, that changes nothing, so
 * the tenant's webhooks are heard and no pull finds anything they did not bring.
 *
 * - Healthy: the scheduled incremental runs leave contact and invoice out (sync.runs.entities,
 *   the simulator's GET /Contacts count) while payments are still pulled every interval; the
 *   stats say healthy and relaxed.
 * - Silent: the subscription fails and the simulator disables it (its status DISABLED); a
 *   contact made in Xero then arrives through an incremental run within the silence plus an
 *   interval or two, long before the relaxed interval; the stats say silent and normal.
 * - Missed: deliveries work again and the state is healthy; a contact made while the
 *   simulator had no URL (its event lost) is found by a poll: missed, normal polling, contact
 *   and invoice in every incremental run again, until a poll finds nothing missed: healthy.
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

#define KEY "webhook-net-key-0123456789abcdef0123"

/* The intervals (XS_SCHEDULE_INCREMENTAL_EVERY 1s): the relaxed one far longer than the
 * silence plus a few intervals, so that only the silence can bring contacts back early. */
#define POLL_EVERY_S 40
#define SILENCE_S    3

static xst_engine *E;
static char TENANT[40], CONN[40], PINGER[40];
static int64_t last_ping;

/* sim_config sets the simulator's webhook url (empty: none); deliveries need no intent to
 * receive, and a failing one is given up (the subscription disabled) after a second. */
static void sim_config(const char *url)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"webhook\":{\"url\":\"%s\",\"require_intent_to_receive\":false,"
             "\"retry_base_ms\":100,\"retry_for_ms\":1000}}",
             url);
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/config", body));
}

static void sim_to_orchestrator(void)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/webhooks/xero", E->api);
    sim_config(url);
}

/* ping saves the pinger invoice in Xero with the values it has, at most every 600 ms: an
 * INVOICE event that changes nothing here. */
static void ping(void)
{
    if (xst_now_ms() - last_ping < 600) {
        return;
    }
    last_ping = xst_now_ms();
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices/%s", TENANT, PINGER);
    json_decref(xst_engine_sim_json(E, "POST", path, "{\"Reference\":\"ping\"}"));
}

/* hooks returns the webhooks block of the connection's stats (new). */
static json_t *hooks(void)
{
    return xst_engine_stats(E, CONN, "webhooks");
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

/* wait_state pings for up to ms until the stats say state and polling, and that contacts and
 * invoices were polled; the last block (new) goes to *out when out is not NULL. */
static bool wait_state(const char *state, const char *polling, long ms, json_t **out)
{
    int64_t end = xst_now_ms() + ms;
    for (;;) {
        ping();
        json_t *w = hooks();
        bool ok = strcmp(str(w, "state"), state) == 0 && strcmp(str(w, "polling"), polling) == 0 &&
                  str(w, "polled_at")[0] != '\0';
        if (ok || xst_now_ms() > end) {
            if (!ok) {
                char *t = json_dumps(w, 0);
                fprintf(stderr, "waited for %s/%s: %s\n", state, polling, t);
                free(t);
            }
            if (out != NULL) {
                *out = w;
            } else {
                json_decref(w);
            }
            return ok;
        }
        json_decref(w);
        usleep(100000);
    }
}

/* pinging pings for ms. */
static void pinging(long ms)
{
    int64_t end = xst_now_ms() + ms;
    while (xst_now_ms() < end) {
        ping();
        usleep(100000);
    }
}

/* runs_between counts the scheduled incremental runs created after from and before to
 * (timestamps; to NULL: now) that cover entity (in) or do not (out). */
static long runs_between(const char *from, const char *to, const char *entity, bool in)
{
    return xst_engine_sql_longf(E,
                                "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND mode "
                                "= 'incremental' AND trigger = 'schedule' AND created_at > "
                                "$2::timestamptz AND created_at < coalesce($5::timestamptz, now()) "
                                "AND ($3 = ANY (entities)) = $4::boolean",
                                5, CONN, from, entity, in ? "true" : "false", to);
}

static char *db_now(void)
{
    return xst_engine_sql(E, "SELECT now()::text", 0, NULL);
}

/* logged counts the orchestrator's log lines holding both a and b. */
static int logged(const char *a, const char *b)
{
    FILE *f = fopen(E->orch->log_path, "r");
    assert_non_null(f);
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        n += strstr(line, a) != NULL && strstr(line, b) != NULL;
    }
    fclose(f);
    return n;
}

/* wait_logged pings for up to ms until the orchestrator logged n lines holding a and b. */
static bool wait_logged(const char *a, const char *b, int n, long ms)
{
    int64_t end = xst_now_ms() + ms;
    while (logged(a, b) < n) {
        if (xst_now_ms() > end) {
            return false;
        }
        ping();
        usleep(100000);
    }
    return true;
}

/* made_in_xero makes a contact named name in Xero, as a person would, and returns its id
 * (new). */
static char *made_in_xero(const char *name)
{
    char path[128], body[256];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts", TENANT);
    snprintf(body, sizeof(body), "{\"Contacts\":[{\"Name\":\"%s\"}]}", name);
    json_t *made = xst_engine_sim_json(E, "POST", path, body);
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(made, "Contacts"), 0), "ContactID"));
    assert_non_null(id);
    char *copy = strdup(id);
    json_decref(made);
    return copy;
}

static long linked(const char *xero_id)
{
    return xst_engine_sql_longf(
        E, "SELECT count(*) FROM sync.mappings WHERE entity = 'contact' AND xero_id = $1::uuid", 1,
        xero_id);
}

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("hooknet");
    char url[256];
    snprintf(url, sizeof(url), "XS_SIM_WEBHOOK_URL=%s/v1/webhooks/xero", E->api);
    char *sim_env[] = {url,
                       "XS_SIM_WEBHOOK_KEY=" KEY,
                       "XS_SIM_WEBHOOK_DELAY=100ms",
                       "XS_SIM_WEBHOOK_REQUIRE_ITR=false",
                       "XS_SIM_LIMIT_MINUTE=100000",
                       "XS_SIM_LIMIT_DAY=1000000",
                       NULL};
    xst_engine_start_sim(E, sim_env);
    char poll[64], silence[64];
    snprintf(poll, sizeof(poll), "XS_WEBHOOK_POLL_EVERY=%ds", POLL_EVERY_S);
    snprintf(silence, sizeof(silence), "XS_WEBHOOK_SILENCE=%ds", SILENCE_S);
    /* No adaptive back-off (sched_test has it): every poll here is the webhook rule's. */
    char *orch_env[] = {"XS_XERO_WEBHOOK_KEY=" KEY,
                        "XS_POLL_MAX_EVERY=0",
                        "XS_SCHEDULE_INCREMENTAL_EVERY=1s",
                        "XS_SCHEDULE_JITTER=0",
                        "XS_WEBHOOK_DELAY=100ms",
                        poll,
                        silence,
                        "XS_BUDGET_TENANT_MINUTE=100000",
                        "XS_BUDGET_TENANT_DAY=1000000",
                        NULL};
    xst_engine_start_orchestrator(E, orch_env);
    xst_engine_start_services(E);
    free(xst_engine_connected(E, "Net Ltd", CONN, TENANT));
    /* The scheduler's initial import. */
    int64_t end = xst_now_ms() + 60000;
    while (xst_engine_sql_longf(E,
                                "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND mode "
                                "= 'full' AND status = 'succeeded'",
                                1, CONN) == 0) {
        if (xst_now_ms() > end) {
            xst_die("the initial import did not succeed");
        }
        usleep(100000);
    }
    /* The pinger: an invoice (its events are fetched from /Invoices, so /Contacts is read only
     * by the contact pulls the test counts). */
    char *cid = made_in_xero("Pinger Co");
    char path[128], body[512];
    snprintf(body, sizeof(body),
             "{\"Invoices\":[{\"Type\":\"ACCREC\",\"Contact\":{\"ContactID\":\"%s\"},"
             "\"Status\":\"DRAFT\",\"Reference\":\"ping\",\"LineItems\":[{\"Description\":"
             "\"Ping\",\"Quantity\":1,\"UnitAmount\":10}]}]}",
             cid);
    free(cid);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices", TENANT);
    json_t *inv = xst_engine_sim_json(E, "POST", path, body);
    const char *iid = json_string_value(
        json_object_get(json_array_get(json_object_get(inv, "Invoices"), 0), "InvoiceID"));
    if (iid == NULL) {
        xst_die("the pinger invoice was not made");
    }
    snprintf(PINGER, sizeof(PINGER), "%s", iid);
    json_decref(inv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return xst_engine_free(E) == 0 ? 0 : -1;
}

static void test_healthy_relaxes_contact_and_invoice_polling(void **state)
{
    (void)state;
    json_t *w = NULL;
    assert_true(wait_state("healthy", "relaxed", 20000, &w));
    assert_true(strlen(str(w, "polled_at")) > 0);
    /* The next pull of them waits for the relaxed interval. */
    assert_true(strcmp(str(w, "next_poll_at"), str(w, "polled_at")) > 0);
    json_decref(w);
    assert_int_equal(logged("webhook.polling_relaxed", "\"state\":\"healthy\""), 1);

    /* The last pull of contacts has ended (its calls are counted before the window). */
    int64_t end = xst_now_ms() + 5000;
    while (xst_engine_sql_longf(E,
                                "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND "
                                "'contact' = ANY (entities) AND status IN ('queued', 'running')",
                                1, CONN) > 0) {
        assert_true(xst_now_ms() < end);
        ping();
        usleep(50000);
    }
    char *mark = db_now();
    long contacts = xst_engine_sim_calls(E, "GET /Contacts", 0);
    long payments = xst_engine_sim_calls(E, "GET /Payments", 0);
    pinging(6000);
    char *until = db_now();
    long without = runs_between(mark, until, "contact", false);
    long with = runs_between(mark, until, "contact", true);
    long invoices_in = runs_between(mark, until, "invoice", true);
    long payments_in = runs_between(mark, until, "payment", true);
    fprintf(stderr, "relaxed: %ld runs without contact, %ld with; %ld with invoice, %ld payment\n",
            without, with, invoices_in, payments_in);
    /* Incremental runs every second or two, none of them pulling contacts or invoices. */
    assert_true(without >= 2);
    assert_int_equal(with, 0);
    assert_int_equal(invoices_in, 0);
    assert_int_equal(payments_in, without);
    assert_int_equal(xst_engine_sim_calls(E, "GET /Contacts", 0), contacts);
    assert_true(xst_engine_sim_calls(E, "GET /Payments", 0) - payments >= 2);
    /* Still healthy: once per change, the log said so once. */
    assert_true(wait_state("healthy", "relaxed", 1000, NULL));
    assert_int_equal(logged("webhook.polling_relaxed", "\"state\":\"healthy\""), 1);
    free(until);
    free(mark);
}

static void test_silence_brings_polling_back(void **state)
{
    (void)state;
    /* The receiver unreachable: the simulator retries for a second, then disables the
     * subscription, as Xero does after a day. */
    sim_config("http://127.0.0.1:9/v1/webhooks/xero");
    int64_t end = xst_now_ms() + 10000;
    for (;;) {
        ping();
        json_t *s = xst_engine_sim_json(E, "GET", "/_sim/webhooks", NULL);
        bool off = strcmp(str(s, "status"), "DISABLED") == 0;
        json_decref(s);
        if (off) {
            break;
        }
        assert_true(xst_now_ms() < end);
        usleep(100000);
    }
    /* A contact made in Xero now has no webhook: polling must bring it. */
    int64_t t0 = xst_now_ms();
    char *quiet = made_in_xero("Quiet Co");
    while (linked(quiet) == 0) {
        ping();
        /* the silence, then an interval or two; the relaxed interval is far longer */
        assert_true(xst_now_ms() - t0 < (SILENCE_S + 5) * 1000);
        usleep(100000);
    }
    fprintf(stderr, "silent: the contact came after %lld ms\n", (long long)(xst_now_ms() - t0));
    assert_true(xst_engine_sql_longf(E,
                                     "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND "
                                     "mode = 'incremental' AND trigger = 'schedule' AND 'contact' "
                                     "= ANY (entities) AND (counts -> 'contact' -> 'pull' ->> "
                                     "'created')::int >= 1",
                                     1, CONN) >= 1);
    assert_true(wait_state("silent", "normal", 2000, NULL));
    assert_true(wait_logged("webhook.polling_normal", "\"state\":\"silent\"", 1, 3000));
    /* Normal polling: contacts in the scheduled runs again. */
    char *mark = db_now();
    pinging(3000);
    assert_true(runs_between(mark, NULL, "contact", true) >= 1);
    assert_int_equal(runs_between(mark, NULL, "contact", false), 0);
    free(mark);
    free(quiet);
}

static void test_a_missed_change_brings_polling_back(void **state)
{
    (void)state;
    /* Deliveries work again (the subscription re-enabled): healthy once a poll has found
     * nothing missed (the last one found Quiet Co, which no webhook brought). */
    sim_to_orchestrator();
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/webhooks/enable", "{}"));
    assert_true(wait_state("healthy", "relaxed", 15000, NULL));
    assert_true(wait_logged("webhook.polling_relaxed", "\"state\":\"healthy\"", 2, 3000));

    /* A contact made while the simulator had no URL: its event is lost; the pinger's go on. */
    sim_config("");
    char *sneaky = made_in_xero("Sneaky Co");
    sim_to_orchestrator();
    pinging(1500);
    assert_int_equal(linked(sneaky), 0);
    assert_true(wait_state("healthy", "relaxed", 1000, NULL));
    /* A poll finds it: an incremental run asked for through the API. */
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", 20000);
    assert_true(xst_run_count(run, "contact", "pull", "created") >= 1);
    json_decref(run);
    assert_int_equal(linked(sneaky), 1);
    json_t *w = NULL;
    assert_true(wait_state("missed", "normal", 1000, &w));
    assert_true(strcmp(str(w, "next_poll_at"), "") != 0);
    json_decref(w);
    /* The scheduler sees it at its next incremental run: polling normal, said once, and the
     * contacts pulled again; then that poll found nothing missed: healthy and relaxed. */
    assert_true(wait_logged("webhook.polling_normal", "\"state\":\"missed\"", 1, 5000));
    assert_true(wait_state("healthy", "relaxed", 10000, NULL));
    assert_true(wait_logged("webhook.polling_relaxed", "\"state\":\"healthy\"", 3, 3000));
    pinging(1500);
    assert_int_equal(logged("webhook.polling_normal", "\"state\":\"missed\""), 1);
    assert_int_equal(logged("webhook.polling_relaxed", "\"state\":\"healthy\""), 3);
    assert_true(xst_engine_sql_longf(E,
                                     "SELECT count(*) FROM sync.runs WHERE connection_id = $1 AND "
                                     "mode = 'incremental' AND trigger = 'schedule' AND 'contact' "
                                     "= ANY (entities) AND 'invoice' = ANY (entities) AND "
                                     "created_at > (SELECT max(created_at) FROM sync.runs WHERE "
                                     "connection_id = $1 AND trigger = 'api')",
                                     1, CONN) >= 1);
    free(sneaky);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy_relaxes_contact_and_invoice_polling),
        cmocka_unit_test(test_silence_brings_polling_back),
        cmocka_unit_test(test_a_missed_change_brings_polling_back),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
