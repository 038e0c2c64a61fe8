/*
 * webhooks_test.c: the receiver of Xero's webhooks, POST /v1/webhooks/xero, against the
 * simulator's real delivery and against deliveries made here.
 *
 * - Intent to receive: the simulator's own check (empty batches, some signed with another
 *   key) passes the first time.
 * - A contact made in Xero by a person reaches the inbox (sync.webhook_events) as a CONTACT
 *   event of the connection's tenant, delivered and signed by the simulator, and then the
 *   application: a webhook run fetches it by id (one call) and the event is done.
 * - The same contact edited in Xero and here at once, in different fields: both edits end
 *   on both sides (the webhook run and the outbox's push, under the policy).
 * - An invoice whose contact is not here yet, named alone by an event: the run fetches the
 *   contact too, first, and links both.
 * - Refused with 401 and an empty body, nothing stored: no signature, another key's, the same
 *   JSON written with other bytes, a body cut short, a signature that is not base64.
 * - The previous key (a rotation) is taken; a delivery sent twice is stored once; an event of
 *   a tenant with no connection is kept as ignored; a signed body that is no batch is 400.
 * - The connection's stats show what its webhooks brought.
 * - The inbox held by another session (PostgreSQL too slow): 503 within Xero's 5 s, nothing
 *   stored; sent again, stored. A megabyte of events in one delivery: all stored, in time.
 * - 10,000 events in 100 deliveries about 200 contacts: all answered in time and stored, and
 *   fetched by a few runs in a few calls.
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

#include <libpq-fe.h>

#include "engine.h"
#include "xs/crypto.h"

#define KEY      "webhook-key-current-0123456789abcdef"
#define KEY_PREV "webhook-key-previous-abcdef0123456789"

static xst_engine *E;
static char TENANT[40], CONN[40];

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("hooks");
    char url[256];
    snprintf(url, sizeof(url), "XS_SIM_WEBHOOK_URL=%s/v1/webhooks/xero", E->api);
    char *sim_env[] = {url, "XS_SIM_WEBHOOK_KEY=" KEY, "XS_SIM_WEBHOOK_DELAY=100ms", NULL};
    xst_engine_start_sim(E, sim_env);
    char *orch_env[] = {"XS_XERO_WEBHOOK_KEY=" KEY, "XS_XERO_WEBHOOK_KEY_PREVIOUS=" KEY_PREV,
                        "XS_SCHEDULER=false", NULL};
    xst_engine_start_orchestrator(E, orch_env);
    xst_engine_start_services(E);
    free(xst_engine_connected(E, "Hooks Ltd", CONN, TENANT));
    /* The initial import: local changes are pushed only once it is done. */
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 60000);
    if (strcmp(json_string_value(json_object_get(run, "status")), "succeeded") != 0) {
        xst_die("the initial import did not succeed");
    }
    json_decref(run);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return xst_engine_free(E) == 0 ? 0 : -1;
}

/* signature writes the base64 HMAC-SHA256 of body under key into sig. */
static void signature(const char *key, const char *body, char *sig, size_t cap)
{
    uint8_t mac[XS_SHA256_LEN];
    assert_int_equal(xs_hmac_sha256(key, strlen(key), body, strlen(body), mac), XS_OK);
    char *b64 = NULL;
    assert_int_equal(xs_base64_encode(mac, sizeof(mac), &b64), XS_OK);
    snprintf(sig, cap, "%s", b64);
    free(b64);
}

/* deliver POSTs body to the receiver with signature sig (NULL: none) and returns the status,
 * checking that the answer has no body. */
static long deliver(const char *body, const char *sig)
{
    char url[256], header[128];
    snprintf(url, sizeof(url), "%s/v1/webhooks/xero", E->api);
    snprintf(header, sizeof(header), "x-xero-signature: %s", sig != NULL ? sig : "");
    const char *headers[] = {"Content-Type: application/json", sig != NULL ? header : NULL, NULL};
    xst_http r = xst_http_do("POST", url, body, headers, 5000);
    long st = r.status;
    assert_int_equal(r.len, 0);
    xst_http_free(&r);
    return st;
}

/* deliver_signed signs body with key and delivers it. */
static long deliver_signed(const char *key, const char *body)
{
    char sig[128];
    signature(key, body, sig, sizeof(sig));
    return deliver(body, sig);
}

/* batch writes a delivery of one event about resource res of tenant into buf. */
static void batch(char *buf, size_t cap, const char *tenant, const char *res, const char *type)
{
    snprintf(
        buf, cap,
        "{\"events\":[{\"resourceUrl\":\"https://api.xero.com/api.xro/2.0/Contacts/%s\","
        "\"resourceId\":\"%s\",\"tenantId\":\"%s\",\"tenantType\":\"ORGANISATION\","
        "\"eventCategory\":\"CONTACT\",\"eventType\":\"%s\","
        "\"eventDateUtc\":\"2026-12-06T10:00:00.123\"}],"
        "\"firstEventSequence\":1,\"lastEventSequence\":1,\"entropy\":\"QWERTYUIOPASDFGHJKLZ\"}",
        res, res, tenant, type);
}

static long events_of(const char *res)
{
    return xst_engine_sql_longf(
        E, "SELECT count(*) FROM sync.webhook_events WHERE resource_id = $1", 1, res);
}

static void test_intent_to_receive(void **state)
{
    (void)state;
    json_t *r = xst_engine_sim_json(E, "POST", "/_sim/webhooks/itr", "{\"count\":8}");
    if (!json_is_true(json_object_get(r, "ok"))) {
        char *t = json_dumps(r, 0);
        fprintf(stderr, "intent to receive: %s\n", t);
        free(t);
    }
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
}

/* wait_sql waits up to ms for sql (one parameter) to count at least one row. */
static bool wait_sql(const char *sql, const char *p, long ms)
{
    int64_t end = xst_now_ms() + ms;
    while (xst_engine_sql_longf(E, sql, 1, p) == 0) {
        if (xst_now_ms() > end) {
            return false;
        }
        usleep(50000);
    }
    return true;
}

static void test_xero_edit_reaches_the_inbox(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts", TENANT);
    json_t *made =
        xst_engine_sim_json(E, "POST", path, "{\"Contacts\":[{\"Name\":\"Hooked Co\"}]}");
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(made, "Contacts"), 0), "ContactID"));
    assert_non_null(id);
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/webhooks/flush", "{\"timeout_ms\":5000}"));
    int64_t end = xst_now_ms() + 5000;
    while (events_of(id) == 0 && xst_now_ms() < end) {
        usleep(50000);
    }
    char *row = xst_engine_sqlf(E,
                                "SELECT tenant_id || ' ' || event_category || ' ' || event_type || "
                                "' ' || status FROM sync.webhook_events WHERE resource_id = $1",
                                1, id);
    char want[160];
    snprintf(want, sizeof(want), "%s CONTACT CREATE", TENANT);
    assert_non_null(row);
    assert_memory_equal(row, want, strlen(want));
    free(row);
    /* Then the application: a webhook run fetched it by id, and the event is done. */
    assert_true(wait_sql("SELECT count(*) FROM sync.mappings WHERE entity = 'contact' AND "
                         "xero_id = $1",
                         id, 10000));
    assert_true(wait_sql("SELECT count(*) FROM sync.webhook_events WHERE resource_id = $1 AND "
                         "status = 'done'",
                         id, 5000));
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM app.contacts c JOIN sync.mappings "
                                          "m ON m.local_id = c.id WHERE m.xero_id = $1 AND c.name "
                                          "= 'Hooked Co'",
                                          1, id),
                     1);
    assert_true(wait_sql("SELECT count(*) FROM sync.runs r WHERE trigger = 'webhook' AND "
                         "status = 'succeeded' AND connection_id = $1 AND EXISTS (SELECT 1 FROM "
                         "sync.run_steps s WHERE s.run_id = r.id AND s.kind = 'fetch')",
                         CONN, 10000));
    json_decref(made);
}

static void test_xero_and_local_edits_race(void **state)
{
    (void)state;
    /* The same contact edited in Xero (a webhook run brings it) and here (the outbox pushes
     * it) at once, in different fields: the policy (last write wins, field by field) keeps
     * both, on both sides. */
    char *xid = xst_engine_sql(E,
                               "SELECT m.xero_id::text FROM sync.mappings m JOIN app.contacts c ON "
                               "c.id = m.local_id WHERE c.name = 'Hooked Co'",
                               0, NULL);
    assert_non_null(xid);
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts/%s", TENANT, xid);
    json_decref(xst_engine_sim_json(E, "POST", path, "{\"FirstName\":\"FromXero\"}"));
    free(xst_engine_sqlf(E,
                         "UPDATE app.contacts c SET email = 'local@hooked.nz' FROM sync.mappings m "
                         "WHERE m.local_id = c.id AND m.xero_id = $1::uuid RETURNING c.id::text",
                         1, xid));
    assert_true(wait_sql("SELECT count(*) FROM app.contacts c JOIN sync.mappings m ON m.local_id = "
                         "c.id WHERE m.xero_id = $1::uuid AND c.first_name = 'FromXero' AND "
                         "c.email = 'local@hooked.nz'",
                         xid, 20000));
    if (!xst_engine_settle(E, 20000)) {
        char *d = xst_engine_sql(E,
                                 "SELECT string_agg(mode || '/' || trigger || '/' || status || '/' "
                                 "|| coalesce(error, ''), ' ; ') FROM sync.runs WHERE status IN "
                                 "('queued', 'running')",
                                 0, NULL);
        char *ch = xst_engine_sql(E,
                                  "SELECT count(*)::text || ' changes' FROM sync.changes WHERE "
                                  "processed_at IS NULL",
                                  0, NULL);
        fprintf(stderr, "not settled: %s | %s\n", d, ch);
        free(d);
        free(ch);
        fail();
    }
    int64_t end = xst_now_ms() + 10000;
    for (;;) {
        json_t *got = xst_engine_sim_json(E, "GET", path, NULL);
        json_t *c = json_array_get(json_object_get(got, "Contacts"), 0);
        bool both = c != NULL &&
                    strcmp(json_string_value(json_object_get(c, "FirstName")) != NULL
                               ? json_string_value(json_object_get(c, "FirstName"))
                               : "",
                           "FromXero") == 0 &&
                    strcmp(json_string_value(json_object_get(c, "EmailAddress")) != NULL
                               ? json_string_value(json_object_get(c, "EmailAddress"))
                               : "",
                           "local@hooked.nz") == 0;
        json_decref(got);
        if (both) {
            break;
        }
        assert_true(xst_now_ms() < end);
        usleep(100000);
    }
    free(xid);
}

/* The echo of the engine's own push: Xero's event about the version the push wrote is done
 * without a call (no webhook run fetches it). */
static void test_echo_of_own_push_costs_no_call(void **state)
{
    (void)state;
    assert_true(xst_engine_settle(E, 20000));
    char *xid = xst_engine_sql(E,
                               "SELECT m.xero_id::text FROM sync.mappings m JOIN app.contacts c ON "
                               "c.id = m.local_id WHERE c.name = 'Hooked Co'",
                               0, NULL);
    assert_non_null(xid);
    char *t0 = xst_engine_sql(E, "SELECT now()::text", 0, NULL);
    free(xst_engine_sqlf(E,
                         "UPDATE app.contacts c SET email = 'echo@hooked.nz' FROM sync.mappings m "
                         "WHERE m.local_id = c.id AND m.xero_id = $1::uuid RETURNING c.id::text",
                         1, xid));
    /* Pushed; then Xero's event about it arrives and is done. */
    assert_true(wait_sql("SELECT count(*) FROM sync.mappings WHERE xero_id = $1::uuid AND "
                         "base->>'email' = 'echo@hooked.nz'",
                         xid, 10000));
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/webhooks/flush", "{\"timeout_ms\":5000}"));
    char q[400];
    snprintf(q, sizeof(q),
             "SELECT count(*) FROM sync.webhook_events WHERE resource_id = $1::uuid AND "
             "received_at > '%s'::timestamptz AND status = 'done'",
             t0);
    assert_true(wait_sql(q, xid, 10000));
    assert_true(xst_engine_settle(E, 20000));
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.runs WHERE trigger = "
                                          "'webhook' AND created_at > $1::timestamptz",
                                          1, t0),
                     0);
    free(t0);
    free(xid);
}

static void test_refused(void **state)
{
    (void)state;
    const char *res = "6f0a7e4c-1111-4aaa-8bbb-000000000001";
    char body[1024], other[1100], sig[128];
    batch(body, sizeof(body), TENANT, res, "UPDATE");
    signature(KEY, body, sig, sizeof(sig));
    assert_int_equal(deliver(body, NULL), 401);
    assert_int_equal(deliver_signed("some-other-key", body), 401);
    assert_int_equal(deliver(body, "not base64 at all"), 401);
    /* The same JSON in other bytes: a space after the first brace. */
    snprintf(other, sizeof(other), "{ %s", body + 1);
    assert_int_equal(deliver(other, sig), 401);
    /* Cut short. */
    snprintf(other, sizeof(other), "%.*s", (int)strlen(body) - 10, body);
    assert_int_equal(deliver(other, sig), 401);
    assert_int_equal(events_of(res), 0);
}

static void test_stored_once_with_either_key(void **state)
{
    (void)state;
    const char *res = "6f0a7e4c-1111-4aaa-8bbb-000000000002";
    char body[1024];
    batch(body, sizeof(body), TENANT, res, "UPDATE");
    assert_int_equal(deliver_signed(KEY, body), 200);
    assert_int_equal(deliver_signed(KEY, body), 200); /* Xero sends it again */
    assert_int_equal(deliver_signed(KEY_PREV, body), 200);
    assert_int_equal(events_of(res), 1);
    /* An empty batch, as intent to receive sends: taken, nothing stored. */
    assert_int_equal(deliver_signed(KEY, "{\"events\":[],\"firstEventSequence\":0,"
                                         "\"lastEventSequence\":0,\"entropy\":\"X\"}"),
                     200);
}

static void test_unknown_tenant_and_bad_batches(void **state)
{
    (void)state;
    const char *res = "6f0a7e4c-1111-4aaa-8bbb-000000000003";
    char body[1024];
    batch(body, sizeof(body), "0a0b0c0d-2222-4ccc-8ddd-000000000009", res, "CREATE");
    assert_int_equal(deliver_signed(KEY, body), 200);
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.webhook_events WHERE "
                                          "resource_id = $1 AND status = 'ignored'",
                                          1, res),
                     1);
    assert_true(xst_log_contains(E->orch, "webhook.unknown_tenant"));
    /* A category the engine does not sync, of a connected tenant: stored, then ignored. */
    const char *note = "6f0a7e4c-1111-4aaa-8bbb-000000000006";
    char credit[1024];
    snprintf(
        credit, sizeof(credit),
        "{\"events\":[{\"resourceUrl\":\"https://api.xero.com/api.xro/2.0/CreditNotes/%s\","
        "\"resourceId\":\"%s\",\"tenantId\":\"%s\",\"tenantType\":\"ORGANISATION\","
        "\"eventCategory\":\"CREDITNOTE\",\"eventType\":\"CREATE\","
        "\"eventDateUtc\":\"2025-12-02T00:44:09.923\"}],"
        "\"firstEventSequence\":76,\"lastEventSequence\":76,\"entropy\":\"FXNGWLCCGVANWHKILRUB\"}",
        note, note, TENANT);
    assert_int_equal(deliver_signed(KEY, credit), 200);
    assert_true(wait_sql("SELECT count(*) FROM sync.webhook_events WHERE resource_id = $1 AND "
                         "status = 'ignored'",
                         note, 5000));
    /* Signed, but no batch of events; or an event without its tenant: 400, nothing stored. */
    assert_int_equal(deliver_signed(KEY, "{\"events\":"), 400);
    const char *res2 = "6f0a7e4c-1111-4aaa-8bbb-000000000004";
    batch(body, sizeof(body), "not-a-tenant", res2, "CREATE");
    assert_int_equal(deliver_signed(KEY, body), 400);
    assert_int_equal(events_of(res2), 0);
}

static void test_invoice_brings_its_contact(void **state)
{
    (void)state;
    /* The simulator's own deliveries off: only the event made here names anything. */
    json_decref(xst_engine_sim_json(E, "POST", "/_sim/config", "{\"webhook\":{\"url\":\"\"}}"));
    char path[128];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts", TENANT);
    json_t *c = xst_engine_sim_json(E, "POST", path, "{\"Contacts\":[{\"Name\":\"Late Co\"}]}");
    const char *cid = json_string_value(
        json_object_get(json_array_get(json_object_get(c, "Contacts"), 0), "ContactID"));
    assert_non_null(cid);
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"Invoices\":[{\"Type\":\"ACCREC\",\"Contact\":{\"ContactID\":\"%s\"},"
             "\"Status\":\"DRAFT\",\"LineItems\":[{\"Description\":\"Hooks\","
             "\"Quantity\":1,\"UnitAmount\":10}]}]}",
             cid);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices", TENANT);
    json_t *inv = xst_engine_sim_json(E, "POST", path, body);
    const char *iid = json_string_value(
        json_object_get(json_array_get(json_object_get(inv, "Invoices"), 0), "InvoiceID"));
    if (iid == NULL) {
        char *t = json_dumps(inv, 0);
        fprintf(stderr, "invoice: %s\n", t);
        free(t);
    }
    assert_non_null(iid);
    assert_int_equal(
        xst_engine_sql_longf(E, "SELECT count(*) FROM sync.mappings WHERE xero_id = $1", 1, cid),
        0);
    /* Xero names only the invoice. */
    snprintf(
        body, sizeof(body),
        "{\"events\":[{\"resourceUrl\":\"https://api.xero.com/api.xro/2.0/Invoices/%s\","
        "\"resourceId\":\"%s\",\"tenantId\":\"%s\",\"tenantType\":\"ORGANISATION\","
        "\"eventCategory\":\"INVOICE\",\"eventType\":\"CREATE\","
        "\"eventDateUtc\":\"2026-12-06T10:00:01.000\"}],"
        "\"firstEventSequence\":2,\"lastEventSequence\":2,\"entropy\":\"ZXCVBNMASDFGHJKLQWER\"}",
        iid, iid, TENANT);
    assert_int_equal(deliver_signed(KEY, body), 200);
    assert_true(wait_sql("SELECT count(*) FROM app.invoices i JOIN sync.mappings mi ON "
                         "mi.local_id = i.id AND mi.entity = 'invoice' JOIN sync.mappings mc ON "
                         "mc.local_id = i.contact_id AND mc.entity = 'contact' WHERE mi.xero_id = "
                         "$1",
                         iid, 15000));
    assert_int_equal(xst_engine_sql_longf(E,
                                          "SELECT count(*) FROM sync.mappings WHERE entity = "
                                          "'contact' AND xero_id = $1",
                                          1, cid),
                     1);
    json_decref(c);
    json_decref(inv);
}

static void test_stats_show_webhooks(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "/v1/connections/%s/stats", CONN);
    int64_t end = xst_now_ms() + 5000;
    json_t *w = NULL;
    for (;;) {
        xst_http r = xst_engine_api(E, "GET", path, NULL);
        assert_int_equal(r.status, 200);
        json_decref(w);
        w = json_incref(json_object_get(r.json, "webhooks"));
        xst_http_free(&r);
        if (json_integer_value(json_object_get(w, "waiting")) == 0 || xst_now_ms() > end) {
            break;
        }
        usleep(100000);
    }
    /* the simulator's contact event, the event sent with either key, the invoice's */
    assert_true(json_integer_value(json_object_get(w, "received_last_day")) >= 3);
    assert_int_equal(json_integer_value(json_object_get(w, "waiting")), 0);
    assert_non_null(json_string_value(json_object_get(w, "last_received")));
    /* Events heard, and no incremental pull found anything they had not brought (none ran:
     * the scheduler is off here, so no pull is scheduled either). */
    assert_string_equal(json_string_value(json_object_get(w, "state")), "healthy");
    assert_string_equal(json_string_value(json_object_get(w, "polling")), "relaxed");
    assert_true(json_is_null(json_object_get(w, "polled_at")));
    assert_true(json_is_null(json_object_get(w, "next_poll_at")));
    json_decref(w);
}

static void test_slow_database_is_not_200(void **state)
{
    (void)state;
    const char *res = "6f0a7e4c-1111-4aaa-8bbb-000000000005";
    char body[1024];
    batch(body, sizeof(body), TENANT, res, "UPDATE");
    /* Another session holds the inbox: the events cannot be stored in time. */
    PGconn *db = PQconnectdb(E->db_url);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    PQclear(PQexec(db, "BEGIN"));
    PGresult *lk = PQexec(db, "LOCK TABLE sync.webhook_events IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(lk), PGRES_COMMAND_OK);
    PQclear(lk);
    int64_t t0 = xst_now_ms();
    assert_int_equal(deliver_signed(KEY, body), 503);
    assert_true(xst_now_ms() - t0 < 5000); /* Xero's patience */
    PQclear(PQexec(db, "ROLLBACK"));
    PQfinish(db);
    assert_int_equal(events_of(res), 0);
    /* Xero sends it again: stored. */
    assert_int_equal(deliver_signed(KEY, body), 200);
    assert_int_equal(events_of(res), 1);
}

/* allow_connections lets the engine's database take connections, or closes it and ends every
 * session the engine has (the database stopped, as far as the engine can tell). */
static void allow_connections(bool on)
{
    const char *dbname = strrchr(E->db_url, '/') + 1;
    PGconn *admin = PQconnectdb(xst_pg_admin_url());
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    /* ALTER DATABASE takes no parameters; the name comes from the harness ([a-z0-9_]). */
    char sql[256];
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS %s", dbname,
             on ? "true" : "false");
    PGresult *r = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    if (!on) {
        const char *p[] = {dbname};
        r = PQexecParams(admin,
                         "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                         "datname = $1 AND pid <> pg_backend_pid()",
                         1, NULL, p, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
    }
    PQfinish(admin);
}

/* The database gone while events arrive: never 200 (so Xero sends them again), nothing half
 * stored; once it is back, the same delivery is stored. */
static void test_database_down_is_not_200(void **state)
{
    (void)state;
    const char *res = "6f0a7e4c-1111-4aaa-8bbb-000000000007";
    char body[1024];
    batch(body, sizeof(body), TENANT, res, "UPDATE");
    allow_connections(false);
    for (int i = 0; i < 3; i++) {
        int64_t t0 = xst_now_ms();
        assert_int_equal(deliver_signed(KEY, body), 503);
        assert_true(xst_now_ms() - t0 < 5000); /* Xero's patience */
    }
    allow_connections(true);
    assert_int_equal(events_of(res), 0);
    int64_t end = xst_now_ms() + 15000;
    long st = 0;
    while ((st = deliver_signed(KEY, body)) != 200 && xst_now_ms() < end) {
        assert_int_equal(st, 503);
        usleep(200000);
    }
    assert_int_equal(st, 200);
    assert_int_equal(events_of(res), 1);
}

static void test_a_megabyte_of_events(void **state)
{
    (void)state;
    /* About a megabyte of events in one signed delivery, of a tenant with no connection. */
    size_t cap = 1100000, n = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    n += (size_t)snprintf(body + n, cap - n, "{\"events\":[");
    int count = 0;
    while (n < 1000000) {
        n += (size_t)snprintf(body + n, cap - n,
                              "%s{\"resourceUrl\":\"https://api.xero.com/api.xro/2.0/Contacts/"
                              "7a0b0c0d-3333-4ccc-8ddd-%012d\",\"resourceId\":\"7a0b0c0d-3333-"
                              "4ccc-8ddd-%012d\",\"tenantId\":\"0a0b0c0d-2222-4ccc-8ddd-"
                              "000000000010\",\"tenantType\":\"ORGANISATION\",\"eventCategory\":"
                              "\"CONTACT\",\"eventType\":\"UPDATE\",\"eventDateUtc\":"
                              "\"2026-12-06T10:00:00.000\"}",
                              count > 0 ? "," : "", count, count);
        count++;
    }
    snprintf(body + n, cap - n,
             "],\"firstEventSequence\":1,\"lastEventSequence\":%d,"
             "\"entropy\":\"MEGABYTEMEGABYTEMEGA\"}",
             count);
    int64_t t0 = xst_now_ms();
    assert_int_equal(deliver_signed(KEY, body), 200);
    assert_true(xst_now_ms() - t0 < 5000);
    assert_int_equal(xst_engine_sql_long(E,
                                         "SELECT count(*) FROM sync.webhook_events WHERE "
                                         "tenant_id = '0a0b0c0d-2222-4ccc-8ddd-000000000010'",
                                         0, NULL),
                     count);
    free(body);
}

static void test_a_burst_of_ten_thousand(void **state)
{
    (void)state;
    /* 10,000 events in 100 deliveries, about 200 contacts (50 events each): every delivery
     * answered in time, every event stored, and all of them fetched in a handful of calls. */
    long gets = xst_engine_sim_calls(E, "GET /Contacts", 0);
    long runs =
        xst_engine_sql_long(E, "SELECT count(*) FROM sync.runs WHERE trigger = 'webhook'", 0, NULL);
    size_t cap = 100 * 420 + 256;
    char *body = malloc(cap);
    assert_non_null(body);
    for (int d = 0; d < 100; d++) {
        size_t n = (size_t)snprintf(body, cap, "{\"events\":[");
        for (int k = 0; k < 100; k++) {
            int ev = d * 100 + k;
            n += (size_t)snprintf(body + n, cap - n,
                                  "%s{\"resourceUrl\":\"https://api.xero.com/api.xro/2.0/"
                                  "Contacts/x\",\"resourceId\":\"8a0b0c0d-4444-4ccc-8ddd-%012d\","
                                  "\"tenantId\":\"%s\",\"tenantType\":\"ORGANISATION\","
                                  "\"eventCategory\":\"CONTACT\",\"eventType\":\"UPDATE\","
                                  "\"eventDateUtc\":\"2026-12-06T11:%02d:%02d.%03d\"}",
                                  k > 0 ? "," : "", ev % 200, TENANT, ev / 6000, (ev / 100) % 60,
                                  ev % 1000);
        }
        snprintf(body + n, cap - n,
                 "],\"firstEventSequence\":%d,\"lastEventSequence\":%d,"
                 "\"entropy\":\"BURSTBURSTBURSTBURST\"}",
                 d * 100 + 1, d * 100 + 100);
        int64_t t0 = xst_now_ms();
        assert_int_equal(deliver_signed(KEY, body), 200);
        assert_true(xst_now_ms() - t0 < 5000);
    }
    free(body);
    assert_int_equal(xst_engine_sql_long(E,
                                         "SELECT count(*) FROM sync.webhook_events WHERE "
                                         "resource_id::text LIKE '8a0b0c0d-4444-%'",
                                         0, NULL),
                     10000);
    assert_true(wait_sql("SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END FROM "
                         "sync.webhook_events WHERE status = 'pending' AND tenant_id = $1::uuid",
                         TENANT, 20000));
    assert_true(xst_engine_settle(E, 30000));
    long made = xst_engine_sql_long(E, "SELECT count(*) FROM sync.runs WHERE trigger = 'webhook'",
                                    0, NULL) -
                runs;
    long calls = xst_engine_sim_calls(E, "GET /Contacts", 0) - gets;
    fprintf(stderr, "burst: %ld webhook runs, %ld GETs of contacts\n", made, calls);
    assert_true(made >= 1 && made <= 10);
    assert_true(calls >= 4 && calls <= 40); /* 200 records, 50 a call, in a few runs */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intent_to_receive),
        cmocka_unit_test(test_xero_edit_reaches_the_inbox),
        cmocka_unit_test(test_xero_and_local_edits_race),
        cmocka_unit_test(test_echo_of_own_push_costs_no_call),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_stored_once_with_either_key),
        cmocka_unit_test(test_unknown_tenant_and_bad_batches),
        cmocka_unit_test(test_invoice_brings_its_contact),
        cmocka_unit_test(test_stats_show_webhooks),
        cmocka_unit_test(test_slow_database_is_not_200),
        cmocka_unit_test(test_database_down_is_not_200),
        cmocka_unit_test(test_a_megabyte_of_events),
        cmocka_unit_test(test_a_burst_of_ten_thousand),
    };
    return xst_result(cmocka_run_group_tests(tests, setup, teardown));
}
