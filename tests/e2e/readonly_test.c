/*
 * readonly_test.c: the read-only mirrors, end to end (a real PostgreSQL, xero-sim, the
 * orchestrator, xs-auth, xs-contacts, xs-invoices and xs-payments over nng). The chart of
 * accounts, mirrored from Xero into app.accounts by xs-invoices:
 *   - a full run mirrors every account field for field, in one call;
 *   - an incremental run picks up an account renamed and one archived in Xero, and overwrites
 *     a local edit of an account (the mirror is read-only: nothing is ever written to Xero);
 *   - an account deleted in Xero (which then lists it no more) is marked DELETED by the next
 *     full run, and only by a full one;
 *   - the "types" setting limits the pull to some account types, and is validated.
 * Bank transactions, mirrored into app.bank_transactions by xs-payments:
 *   - a full run mirrors every transaction to the cent, lines with 4-place quantities and unit
 *     amounts included, each linked to its local contact and bank account code;
 *   - a change in Xero (deleted) arrives with the next incremental run.
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

static xst_engine *E;
static char *ORG;
static char CONN[40], TENANT[40];

static json_t *sim_json(const char *method, const char *path, const char *body)
{
    return xst_engine_sim_json(E, method, path, body);
}

/* xero_accounts is the simulator's list as the API gives it (ACTIVE and ARCHIVED). */
static json_t *xero_accounts(void)
{
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Accounts", TENANT);
    json_t *j = sim_json("GET", path, NULL);
    json_t *list = json_incref(json_object_get(j, "Accounts"));
    json_decref(j);
    return list;
}

static long pull_count(const json_t *run, const char *entity, const char *key)
{
    return (long)json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(run, "counts"), entity), "pull"), key));
}

static long account_count(const json_t *run, const char *key)
{
    return pull_count(run, "account", key);
}

static void expect_succeeded(json_t *run)
{
    const char *st = json_string_value(json_object_get(run, "status"));
    if (st == NULL || strcmp(st, "succeeded") != 0) {
        char *t = xs_json_dump(run, XS_JSON_PRETTY);
        fprintf(stderr, "%s\n", t);
        free(t);
    }
    assert_string_equal(st, "succeeded");
}

/* local_of returns the local account linked to Xero account xid, as the canonical fields
 * (a JSON object, new), or NULL. */
static json_t *local_of(const char *xid)
{
    const char *p[] = {xid};
    char *t = xst_engine_sql(E,
                             "SELECT json_build_object('Code', a.code, 'Name', a.name, 'Type', "
                             "a.type, 'BankAccountNumber', a.bank_account_number, 'Status', "
                             "a.status, 'CurrencyCode', a.currency_code, 'TaxType', a.tax_type, "
                             "'Class', a.class, 'Description', a.description, "
                             "'EnablePaymentsToAccount', a.enable_payments)::text FROM "
                             "app.accounts a JOIN sync.mappings m ON m.local_id = a.id AND "
                             "m.entity = 'account' WHERE m.xero_id = $1",
                             1, p);
    json_t *j = t != NULL ? xs_json_parse(t, strlen(t), NULL) : NULL;
    free(t);
    return j;
}

/* same_text compares a Xero text field with the local one ("" and absent read as null). */
static void same_text(const json_t *x, const json_t *l, const char *field)
{
    const char *a = json_string_value(json_object_get(x, field));
    const char *b = json_string_value(json_object_get(l, field));
    if (a != NULL && a[0] == '\0') {
        a = NULL;
    }
    if ((a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0)) {
        fail_msg("%s: Xero has \"%s\", the mirror \"%s\"", field, a ? a : "(null)",
                 b ? b : "(null)");
    }
}

static void expect_mirrored(const json_t *x)
{
    const char *xid = json_string_value(json_object_get(x, "AccountID"));
    json_t *l = local_of(xid);
    if (l == NULL) {
        fail_msg("account %s is not mirrored", xid);
    }
    static const char *const fields[] = {"Code",        "Name",    "Type",  "BankAccountNumber",
                                         "Status",      "TaxType", "Class", "Description",
                                         "CurrencyCode"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        /* Xero gives CurrencyCode for bank accounts only */
        if (strcmp(fields[i], "CurrencyCode") != 0 || json_object_get(x, "CurrencyCode") != NULL) {
            same_text(x, l, fields[i]);
        }
    }
    assert_int_equal(json_is_true(json_object_get(x, "EnablePaymentsToAccount")),
                     json_is_true(json_object_get(l, "EnablePaymentsToAccount")));
    json_decref(l);
}

/* find_account returns the first account of the list (borrowed) with field == value. */
static json_t *find_account(json_t *list, const char *field, const char *value)
{
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        const char *v = json_string_value(json_object_get(a, field));
        if (v != NULL && strcmp(v, value) == 0 && json_object_get(a, "SystemAccount") == NULL) {
            return a;
        }
    }
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("accounts");
    xst_engine_start_sim(E, NULL);
    char *orch_env[] = {"XS_SCHEDULER=false", "XS_PUSH_DELAY=200ms", NULL};
    xst_engine_start_orchestrator(E, orch_env);
    xst_engine_start_services(E);
    ORG = xst_engine_connected(E, "Ledger Ltd", CONN, TENANT);
    /* Some contacts, and bank transactions (which need them) for the second half. */
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    json_decref(sim_json("POST", path, "{\"contacts\":300,\"bank_transactions\":1500,\"seed\":9}"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ORG);
    return xst_engine_free(E) == 0 ? 0 : -1;
}

static void test_full_run_mirrors_the_chart(void **state)
{
    (void)state;
    json_t *list = xero_accounts();
    size_t n = json_array_size(list);
    assert_true(n >= 20);
    long before = xst_engine_sim_calls(E, "GET /Accounts", 0);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 120000);
    expect_succeeded(run);
    /* Xero lists accounts whole: one call. */
    assert_int_equal(xst_engine_sim_calls(E, "GET /Accounts", 0) - before, 1);
    assert_int_equal(account_count(run, "fetched"), (long)n);
    assert_int_equal(account_count(run, "created"), (long)n);
    assert_int_equal(account_count(run, "failed"), 0);
    json_decref(run);
    const char *p[] = {ORG};
    assert_int_equal(xst_engine_sql_long(
                         E, "SELECT count(*) FROM app.accounts WHERE organisation_id = $1", 1, p),
                     (long)n);
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        expect_mirrored(a);
    }
    /* A bank account keeps its number and currency. */
    json_t *bank = find_account(list, "Type", "BANK");
    assert_non_null(bank);
    assert_non_null(json_object_get(bank, "BankAccountNumber"));
    json_decref(list);

    /* Nothing changed: the mirror is unchanged. */
    run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 120000);
    expect_succeeded(run);
    assert_int_equal(account_count(run, "unchanged"), (long)n);
    assert_int_equal(account_count(run, "updated") + account_count(run, "created") +
                         account_count(run, "retired"),
                     0);
    json_decref(run);
}

static void test_incremental_follows_xero_and_overwrites_local_edits(void **state)
{
    (void)state;
    json_t *list = xero_accounts();
    json_t *rev = find_account(list, "Type", "REVENUE");
    json_t *exp = find_account(list, "Type", "EXPENSE");
    assert_non_null(rev);
    assert_non_null(exp);
    char rid[40], eid[40], path[200];
    snprintf(rid, sizeof(rid), "%s", json_string_value(json_object_get(rev, "AccountID")));
    snprintf(eid, sizeof(eid), "%s", json_string_value(json_object_get(exp, "AccountID")));
    json_decref(list);

    /* A local edit of the mirror is the host application's; it never reaches Xero. */
    const char *p[] = {eid};
    free(xst_engine_sql(E,
                        "UPDATE app.accounts a SET name = 'Edited here' FROM sync.mappings m "
                        "WHERE m.local_id = a.id AND m.xero_id = $1",
                        1, p));
    /* In Xero: one renamed, one archived. */
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Accounts/%s", TENANT, rid);
    json_decref(sim_json("POST", path, "{\"Name\":\"Consulting revenue\"}"));
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Accounts/%s/archive", TENANT, eid);
    json_decref(sim_json("POST", path, NULL));

    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", 120000);
    expect_succeeded(run);
    assert_int_equal(account_count(run, "updated"), 2);
    json_decref(run);
    list = xero_accounts();
    json_t *x = find_account(list, "AccountID", rid);
    assert_string_equal(json_string_value(json_object_get(x, "Name")), "Consulting revenue");
    expect_mirrored(x);
    x = find_account(list, "AccountID", eid);
    assert_string_equal(json_string_value(json_object_get(x, "Status")), "ARCHIVED");
    expect_mirrored(x); /* Xero's name again: the local edit is overwritten */
    json_decref(list);
    /* Nothing was ever written to Xero's accounts, and no change waits in the outbox. */
    assert_int_equal(xst_engine_sim_calls(E, "POST /Accounts", 0) +
                         xst_engine_sim_calls(E, "PUT /Accounts", 0),
                     0);
    assert_int_equal(xst_engine_sql_long(
                         E, "SELECT count(*) FROM sync.changes WHERE entity = 'account'", 0, NULL),
                     0);
}

static void test_deleted_in_xero_is_marked_by_a_full_run(void **state)
{
    (void)state;
    /* A new, unused account, mirrored, then deleted in Xero. */
    char path[200];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Accounts", TENANT);
    json_t *made =
        sim_json("PUT", path, "{\"Code\":\"481\",\"Name\":\"Short-lived\",\"Type\":\"EXPENSE\"}");
    const char *xid = json_string_value(
        json_object_get(json_array_get(json_object_get(made, "Accounts"), 0), "AccountID"));
    assert_non_null(xid);
    char id[40];
    snprintf(id, sizeof(id), "%s", xid);
    json_decref(made);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", 120000);
    expect_succeeded(run);
    assert_int_equal(account_count(run, "created"), 1);
    json_decref(run);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Accounts/%s/delete", TENANT, id);
    json_decref(sim_json("POST", path, NULL));
    json_t *list = xero_accounts();
    assert_null(find_account(list, "AccountID", id)); /* Xero lists it no more */
    json_decref(list);

    const char *p[] = {id};
    const char *q = "SELECT a.status FROM app.accounts a JOIN sync.mappings m ON m.local_id = "
                    "a.id WHERE m.xero_id = $1";
    /* An incremental run cannot see a deletion; a full one, which reads the whole list, does. */
    run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", 120000);
    expect_succeeded(run);
    json_decref(run);
    char *st = xst_engine_sql(E, q, 1, p);
    assert_string_equal(st, "ACTIVE");
    free(st);
    run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 120000);
    expect_succeeded(run);
    assert_int_equal(account_count(run, "retired"), 1);
    json_decref(run);
    st = xst_engine_sql(E, q, 1, p);
    assert_string_equal(st, "DELETED");
    free(st);
    /* Every other account is as Xero lists it. */
    list = xero_accounts();
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        expect_mirrored(a);
    }
    json_decref(list);
}

static void test_types_limit_the_pull(void **state)
{
    (void)state;
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", CONN);
    /* Validated: only a typed entity, only Type names. */
    xst_http r = xst_engine_api(E, "PUT", path, "{\"types\":{\"contact\":[\"BANK\"]}}");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "types.contact"));
    xst_http_free(&r);
    r = xst_engine_api(E, "PUT", path, "{\"types\":{\"account\":[\"bank\"]}}");
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "types.account"));
    xst_http_free(&r);
    r = xst_engine_api(E, "PUT", path, "{\"types\":{\"account\":[]}}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    r = xst_engine_api(E, "PUT", path, "{\"types\":{\"account\":[\"BANK\",\"REVENUE\"]}}");
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
    r = xst_engine_api(E, "GET", path, NULL);
    assert_int_equal(r.status, 200);
    json_t *eff = json_object_get(
        json_object_get(json_object_get(json_object_get(r.json, "effective"), "entities"),
                        "account"),
        "types");
    assert_int_equal(json_array_size(eff), 2);
    xst_http_free(&r);

    json_t *list = xero_accounts();
    long want = 0;
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        const char *t = json_string_value(json_object_get(a, "Type"));
        want += strcmp(t, "BANK") == 0 || strcmp(t, "REVENUE") == 0;
    }
    json_decref(list);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 120000);
    expect_succeeded(run);
    assert_int_equal(account_count(run, "fetched"), want);
    /* The accounts of other types are not gone: a filtered list says nothing about them. */
    assert_int_equal(account_count(run, "retired"), 0);
    json_decref(run);
    assert_int_equal(xst_engine_sql_long(E,
                                         "SELECT count(*) FROM app.accounts WHERE type = "
                                         "'EXPENSE' AND status <> 'DELETED' AND name <> "
                                         "'Short-lived'",
                                         0, NULL) > 0,
                     1);
}

static long bt_count(const json_t *run, const char *key)
{
    return pull_count(run, "bank_transaction", key);
}

/* xero_bank_transactions is the simulator's whole list (every page, unit amounts to 4 places). */
static json_t *xero_bank_transactions(void)
{
    json_t *all = json_array();
    for (int page = 1;; page++) {
        char path[200];
        snprintf(path, sizeof(path),
                 "/_sim/tenants/%s/BankTransactions?page=%d&pageSize=1000&unitdp=4", TENANT, page);
        json_t *j = sim_json("GET", path, NULL);
        json_t *list = json_object_get(j, "BankTransactions");
        size_t n = json_array_size(list);
        json_array_extend(all, list);
        json_decref(j);
        if (n < 1000) {
            break;
        }
    }
    return all;
}

/* money_text writes a Xero amount (a decimal) with `places` places, for comparison. */
static void money_text(const json_t *v, int places, char *buf)
{
    xs_money m;
    if (v == NULL || json_is_null(v)) {
        snprintf(buf, XS_MONEY_TEXT_MAX, "(null)");
        return;
    }
    assert_int_equal(xs_json_to_money(v, &m), XS_OK);
    assert_int_equal(xs_money_format(m, places, buf), XS_OK);
}

static void same_money(const json_t *x, const char *xfield, const json_t *l, const char *lfield,
                       int places, const char *what)
{
    char a[XS_MONEY_TEXT_MAX], b[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(x, xfield), places, a);
    const char *lv = json_string_value(json_object_get(l, lfield));
    snprintf(b, sizeof(b), "%s", lv != NULL ? lv : "(null)");
    if (strcmp(a, b) != 0) {
        fail_msg("%s %s: Xero %s, the mirror %s", what, xfield, a, b);
    }
}

/* expect_bt_mirrored checks one Xero bank transaction against its local row, to the cent. */
static void expect_bt_mirrored(const json_t *x)
{
    const char *xid = json_string_value(json_object_get(x, "BankTransactionID"));
    const char *p[] = {xid};
    char *t = xst_engine_sql(
        E,
        "SELECT json_build_object('type', b.type, 'status', b.status, 'reference', b.reference, "
        "'currency_code', b.currency_code, 'line_amount_types', b.line_amount_types, 'date', "
        "to_char(b.date, 'YYYY-MM-DD'), 'sub_total', b.sub_total::text, 'total_tax', "
        "b.total_tax::text, 'total', b.total::text, 'is_reconciled', b.is_reconciled, "
        "'bank_account_code', b.bank_account_code, 'contact_xero_id', (SELECT cm.xero_id::text "
        "FROM sync.mappings cm WHERE cm.entity = 'contact' AND cm.local_id = b.contact_id), "
        "'lines', b.line_items)::text FROM app.bank_transactions b JOIN sync.mappings m ON "
        "m.local_id = b.id AND m.entity = 'bank_transaction' WHERE m.xero_id = $1",
        1, p);
    if (t == NULL) {
        fail_msg("bank transaction %s is not mirrored", xid);
    }
    json_t *l = xs_json_parse(t, strlen(t), NULL);
    free(t);
    assert_non_null(l);
    assert_string_equal(json_string_value(json_object_get(l, "type")),
                        json_string_value(json_object_get(x, "Type")));
    assert_string_equal(json_string_value(json_object_get(l, "status")),
                        json_string_value(json_object_get(x, "Status")));
    same_money(x, "SubTotal", l, "sub_total", 2, xid);
    same_money(x, "TotalTax", l, "total_tax", 2, xid);
    same_money(x, "Total", l, "total", 2, xid);
    const char *ds = json_string_value(json_object_get(x, "DateString"));
    assert_non_null(ds);
    assert_memory_equal(json_string_value(json_object_get(l, "date")), ds, 10);
    assert_int_equal(json_is_true(json_object_get(l, "is_reconciled")),
                     json_is_true(json_object_get(x, "IsReconciled")));
    const char *code =
        json_string_value(json_object_get(json_object_get(x, "BankAccount"), "Code"));
    const char *lcode = json_string_value(json_object_get(l, "bank_account_code"));
    assert_true((code == NULL || code[0] == '\0') ? lcode == NULL
                                                  : lcode != NULL && strcmp(code, lcode) == 0);
    const char *cid =
        json_string_value(json_object_get(json_object_get(x, "Contact"), "ContactID"));
    const char *lcid = json_string_value(json_object_get(l, "contact_xero_id"));
    if (cid != NULL) {
        if (lcid == NULL || strcmp(cid, lcid) != 0) {
            fail_msg("bank transaction %s: contact %s not linked (%s)", xid, cid,
                     lcid ? lcid : "none");
        }
    }
    json_t *xl = json_object_get(x, "LineItems"), *ll = json_object_get(l, "lines");
    assert_int_equal(json_array_size(ll), json_array_size(xl));
    size_t i;
    json_t *li;
    json_array_foreach(xl, i, li)
    {
        json_t *lo = json_array_get(ll, i);
        same_money(li, "Quantity", lo, "quantity", 4, xid);
        same_money(li, "UnitAmount", lo, "unit_amount", 4, xid);
        same_money(li, "TaxAmount", lo, "tax_amount", 2, xid);
        same_money(li, "LineAmount", lo, "line_amount", 2, xid);
        const char *xd = json_string_value(json_object_get(li, "Description"));
        const char *ld = json_string_value(json_object_get(lo, "description"));
        if (xd != NULL && xd[0] != '\0') {
            assert_non_null(ld);
            assert_string_equal(ld, xd);
        }
    }
    json_decref(l);
}

static void test_bank_transactions_mirror_to_the_cent(void **state)
{
    (void)state;
    json_t *list = xero_bank_transactions();
    size_t n = json_array_size(list);
    assert_true(n >= 1500);
    long before = xst_engine_sim_calls(E, "GET /BankTransactions", 0);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 180000);
    expect_succeeded(run);
    /* Fetched: every one, and again those a page's keyset cursor reads twice (the records of
     * its last second); stored: each exactly once. */
    assert_true(bt_count(run, "fetched") >= (long)n);
    /* (the accounts tests' runs before this one imported them already) */
    assert_true(bt_count(run, "created") + bt_count(run, "unchanged") >= (long)n);
    assert_int_equal(bt_count(run, "failed"), 0);
    const char *po[] = {ORG};
    assert_int_equal(
        xst_engine_sql_long(
            E, "SELECT count(*) FROM app.bank_transactions WHERE organisation_id = $1", 1, po),
        (long)n);
    assert_int_equal(xst_engine_sql_long(E,
                                         "SELECT count(*) FROM sync.mappings WHERE entity = "
                                         "'bank_transaction'",
                                         0, NULL),
                     (long)n);
    /* Pages of 1000: the minimum number of calls, plus at most the keyset's re-read. */
    long calls = xst_engine_sim_calls(E, "GET /BankTransactions", 0) - before;
    assert_true(calls >= (long)((n + 999) / 1000) && calls <= (long)((n + 999) / 1000) + 1);
    json_decref(run);
    size_t i;
    json_t *x;
    long with_unit4 = 0;
    json_array_foreach(list, i, x)
    {
        expect_bt_mirrored(x);
        size_t k;
        json_t *li;
        json_array_foreach(json_object_get(x, "LineItems"), k, li)
        {
            char u[XS_MONEY_TEXT_MAX];
            money_text(json_object_get(li, "UnitAmount"), 4, u);
            with_unit4 += u[strlen(u) - 1] != '0' || u[strlen(u) - 2] != '0';
        }
    }
    /* The data set has unit amounts with 3 or 4 places, and they came through exactly. */
    assert_true(with_unit4 > 0);

    /* Deleted in Xero: the next incremental run brings it. */
    const char *xid = NULL;
    json_array_foreach(list, i, x)
    {
        if (!json_is_true(json_object_get(x, "IsReconciled")) &&
            strcmp(json_string_value(json_object_get(x, "Status")), "AUTHORISED") == 0) {
            xid = json_string_value(json_object_get(x, "BankTransactionID"));
            break;
        }
    }
    assert_non_null(xid);
    char path[200], id[40];
    snprintf(id, sizeof(id), "%s", xid);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/BankTransactions/%s/delete", TENANT, id);
    json_decref(sim_json("POST", path, NULL));
    json_decref(list);
    run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", 120000);
    expect_succeeded(run);
    assert_int_equal(bt_count(run, "updated"), 1);
    json_decref(run);
    const char *p[] = {id};
    char *st =
        xst_engine_sql(E,
                       "SELECT b.status FROM app.bank_transactions b JOIN sync.mappings m ON "
                       "m.local_id = b.id WHERE m.xero_id = $1",
                       1, p);
    assert_string_equal(st, "DELETED");
    free(st);
    /* Read-only: never written to Xero. */
    assert_int_equal(xst_engine_sim_calls(E, "POST /BankTransactions", 0) +
                         xst_engine_sim_calls(E, "PUT /BankTransactions", 0),
                     0);
}

/* entity_run starts an entity run (POST /v1/connections/{id}/sync/entity) and waits for it;
 * returns the HTTP status, and the finished run in *run (new) on 202. */
static long entity_run(const char *body, json_t **run)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/sync/entity", CONN);
    xst_http r = xst_engine_api(E, "POST", path, body);
    long status = r.status;
    *run = NULL;
    if (status == 202) {
        *run = xst_engine_wait_run(E, json_string_value(json_object_get(r.json, "id")), 60000);
    }
    xst_http_free(&r);
    return status;
}

/* fetch_one runs an entity run for Xero record xid of entity and expects it to read just that
 * record. */
static void fetch_one(const char *entity, const char *xid)
{
    char body[200];
    snprintf(body, sizeof(body), "{\"entity\":\"%s\",\"xero_id\":\"%s\"}", entity, xid);
    json_t *run = NULL;
    assert_int_equal(entity_run(body, &run), 202);
    expect_succeeded(run);
    assert_int_equal(pull_count(run, entity, "fetched"), 1);
    json_decref(run);
}

/* One record by its Xero id: Xero's Accounts and BankTransactions take no IDs parameter, so
 * the fetch asks with where=<id>==Guid("..."); a read-only record cannot be sent by local id. */
static void test_one_record_by_xero_id(void **state)
{
    (void)state;
    json_t *accts = xero_accounts();
    fetch_one("account", json_string_value(json_object_get(json_array_get(accts, 3), "AccountID")));
    expect_mirrored(json_array_get(accts, 3));
    json_decref(accts);
    json_t *bts = xero_bank_transactions();
    fetch_one("bank_transaction",
              json_string_value(json_object_get(json_array_get(bts, 11), "BankTransactionID")));
    expect_bt_mirrored(json_array_get(bts, 11));
    json_decref(bts);

    char body[200];
    json_t *run = NULL;
    char *lid = xst_engine_sql(E, "SELECT id FROM app.accounts LIMIT 1", 0, NULL);
    snprintf(body, sizeof(body), "{\"entity\":\"account\",\"local_id\":\"%s\"}", lid);
    free(lid);
    assert_int_equal(entity_run(body, &run), 400);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_run_mirrors_the_chart),
        cmocka_unit_test(test_incremental_follows_xero_and_overwrites_local_edits),
        cmocka_unit_test(test_deleted_in_xero_is_marked_by_a_full_run),
        cmocka_unit_test(test_types_limit_the_pull),
        cmocka_unit_test(test_bank_transactions_mirror_to_the_cent),
        cmocka_unit_test(test_one_record_by_xero_id),
    };
    int rc = xst_result(cmocka_run_group_tests(tests, setup, teardown));
    curl_global_cleanup();
    return rc;
}
