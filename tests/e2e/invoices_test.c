/*
 * invoices_test.c: invoices and bills in two-way sync, end to end (a real PostgreSQL,
 * xero-sim, the orchestrator, xs-auth, xs-contacts, xs-invoices and xs-payments over nng):
 *   - a full run imports every invoice with its lines, each total equal to the simulator's to
 *     the cent and each 4-place unit amount exactly, linked to its local contact;
 *   - a new local contact with a new invoice, written in one transaction by the host
 *     application, reaches the simulator contact first, and the invoice names it;
 *   - an invoice pushed alone whose contact is not in Xero is "blocked on" it: the run pushes
 *     the contact, then the invoice; one pulled whose contact was never pulled makes the run
 *     fetch the contact, then the invoice;
 *   - a status change Xero forbids (AUTHORISED back to DRAFT, anything to PAID) fails that
 *     invoice with a clear error and sends nothing for it; an allowed one (AUTHORISED to
 *     VOIDED) reaches Xero;
 *   - a line edited on its own is a change of its invoice, pushed.
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
#include "harness.h"
#include "xs/json.h"
#include "xs/money.h"

static xst_engine *E;
static char *ORG;
static char CONN[40], TENANT[40];

static json_t *sim_json(const char *method, const char *path, const char *body)
{
    return xst_engine_sim_json(E, method, path, body);
}

static char *sql(const char *q, int n, ...)
{
    const char *p[4] = {0};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < 4; i++) {
        p[i] = va_arg(ap, const char *);
    }
    va_end(ap);
    return xst_engine_sql(E, q, n, p);
}

static long sql_long(const char *q, int n, ...)
{
    const char *p[4] = {0};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < 4; i++) {
        p[i] = va_arg(ap, const char *);
    }
    va_end(ap);
    return xst_engine_sql_long(E, q, n, p);
}

static long count_of(const json_t *run, const char *entity, const char *dir, const char *key)
{
    return (long)json_integer_value(json_object_get(
        json_object_get(json_object_get(json_object_get(run, "counts"), entity), dir), key));
}

static void expect_status(json_t *run, const char *want)
{
    const char *st = json_string_value(json_object_get(run, "status"));
    if (st == NULL || strcmp(st, want) != 0) {
        char *t = xs_json_dump(run, XS_JSON_PRETTY);
        fprintf(stderr, "%s\n", t);
        free(t);
    }
    assert_string_equal(st, want);
}

/* xero_invoices is every invoice of the simulator, as the API gives them with unitdp=4. */
static json_t *xero_invoices(void)
{
    json_t *all = json_array();
    for (int page = 1;; page++) {
        char path[200];
        snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices?page=%d&pageSize=1000&unitdp=4",
                 TENANT, page);
        json_t *j = sim_json("GET", path, NULL);
        json_t *list = json_object_get(j, "Invoices");
        size_t n = json_array_size(list);
        json_array_extend(all, list);
        json_decref(j);
        if (n < 1000) {
            return all;
        }
    }
}

static json_t *xero_invoice(const char *xid)
{
    char path[200];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices/%s?unitdp=4", TENANT, xid);
    json_t *j = sim_json("GET", path, NULL);
    json_t *inv = json_incref(json_array_get(json_object_get(j, "Invoices"), 0));
    json_decref(j);
    return inv;
}

/* money_text writes v (a decimal, an integer or a string) with places places. */
static void money_text(const json_t *v, int places, char out[XS_MONEY_TEXT_MAX])
{
    xs_money m = xs_money_zero();
    if (v != NULL && !json_is_null(v)) {
        assert_int_equal(xs_json_to_money(v, &m), XS_OK);
    }
    assert_int_equal(xs_money_format(m, places, out), XS_OK);
}

static void same_money(const json_t *x, const char *xk, const json_t *l, const char *lk, int places,
                       const char *xid)
{
    char a[XS_MONEY_TEXT_MAX], b[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(x, xk), places, a);
    money_text(json_object_get(l, lk), places, b);
    if (strcmp(a, b) != 0) {
        fail_msg("invoice %s: %s is %s in Xero, %s here", xid, xk, a, b);
    }
}

/* local_invoice is the local invoice linked to Xero invoice xid with its lines and its
 * contact's Xero id (new JSON), or NULL. */
static json_t *local_invoice(const char *xid)
{
    char *t = sql("SELECT json_build_object('type', i.type, 'status', i.status, 'number', "
                  "i.invoice_number, 'sub_total', i.sub_total::text, 'total_tax', "
                  "i.total_tax::text, 'total', i.total::text, 'amount_due', i.amount_due::text, "
                  "'amount_paid', i.amount_paid::text, 'date', to_char(i.date, 'YYYY-MM-DD'), "
                  "'contact_xero', (SELECT c.xero_id::text FROM sync.mappings c WHERE c.entity = "
                  "'contact' AND c.local_id = i.contact_id), 'lines', (SELECT "
                  "coalesce(json_agg(json_build_object('quantity', l.quantity::text, "
                  "'unit_amount', l.unit_amount::text, 'line_amount', l.line_amount::text, "
                  "'tax_amount', l.tax_amount::text, 'description', l.description) ORDER BY "
                  "l.position), '[]') FROM app.invoice_lines l WHERE l.invoice_id = i.id))::text "
                  "FROM app.invoices i JOIN sync.mappings m ON m.local_id = i.id AND m.entity = "
                  "'invoice' WHERE m.xero_id = $1",
                  1, xid);
    json_t *j = t != NULL ? xs_json_parse(t, strlen(t), NULL) : NULL;
    free(t);
    return j;
}

static void expect_invoice_mirrored(const json_t *x)
{
    const char *xid = json_string_value(json_object_get(x, "InvoiceID"));
    json_t *l = local_invoice(xid);
    if (l == NULL) {
        fail_msg("invoice %s is not here", xid);
    }
    assert_string_equal(json_string_value(json_object_get(l, "type")),
                        json_string_value(json_object_get(x, "Type")));
    assert_string_equal(json_string_value(json_object_get(l, "status")),
                        json_string_value(json_object_get(x, "Status")));
    const char *cx = json_string_value(json_object_get(json_object_get(x, "Contact"), "ContactID"));
    assert_non_null(json_string_value(json_object_get(l, "contact_xero")));
    assert_string_equal(json_string_value(json_object_get(l, "contact_xero")), cx);
    same_money(x, "SubTotal", l, "sub_total", 2, xid);
    same_money(x, "TotalTax", l, "total_tax", 2, xid);
    same_money(x, "Total", l, "total", 2, xid);
    same_money(x, "AmountDue", l, "amount_due", 2, xid);
    same_money(x, "AmountPaid", l, "amount_paid", 2, xid);
    json_t *xl = json_object_get(x, "LineItems"), *ll = json_object_get(l, "lines");
    assert_int_equal(json_array_size(ll), json_array_size(xl));
    size_t i;
    json_t *li;
    json_array_foreach(xl, i, li)
    {
        json_t *lo = json_array_get(ll, i);
        same_money(li, "Quantity", lo, "quantity", 4, xid);
        same_money(li, "UnitAmount", lo, "unit_amount", 4, xid);
        same_money(li, "LineAmount", lo, "line_amount", 2, xid);
        same_money(li, "TaxAmount", lo, "tax_amount", 2, xid);
    }
    json_decref(l);
}

static void settle(void)
{
    if (!xst_engine_settle(E, 60000)) {
        fail_msg("the engine did not settle");
    }
}

/* last_push_run is the newest push run (new), finished. */
static json_t *last_push_run(void)
{
    char *id =
        sql("SELECT id FROM sync.runs WHERE mode = 'push' ORDER BY created_at DESC LIMIT 1", 0);
    assert_non_null(id);
    json_t *run = xst_engine_wait_run(E, id, 60000);
    free(id);
    return run;
}

static char *xero_id_of(const char *entity, const char *lid)
{
    return sql("SELECT xero_id::text FROM sync.mappings WHERE entity = $1 AND local_id = $2", 2,
               entity, lid);
}

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("invoices");
    xst_engine_start_sim(E, NULL);
    char *orch_env[] = {"XS_SCHEDULER=false", "XS_PUSH_DELAY=200ms", NULL};
    xst_engine_start_orchestrator(E, orch_env);
    xst_engine_start_services(E);
    ORG = xst_engine_connected(E, "Invoicing Ltd", CONN, TENANT);
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    json_decref(sim_json("POST", path, "{\"contacts\":300,\"invoices\":1500,\"seed\":11}"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ORG);
    return xst_engine_free(E) == 0 ? 0 : -1;
}

static void test_import_to_the_cent(void **state)
{
    (void)state;
    json_t *list = xero_invoices();
    size_t n = json_array_size(list);
    assert_true(n >= 1500);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 180000);
    expect_status(run, "succeeded");
    assert_int_equal(count_of(run, "invoice", "pull", "created"), (long)n);
    assert_int_equal(count_of(run, "invoice", "pull", "failed"), 0);
    assert_int_equal(count_of(run, "invoice", "pull", "deferred"), 0);
    json_decref(run);
    assert_int_equal(
        sql_long("SELECT count(*) FROM app.invoices WHERE organisation_id = $1", 1, ORG), (long)n);
    /* Nothing was written to Xero by an import into an empty database. */
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), 0);
    size_t i;
    json_t *x;
    long lines = 0, unit4 = 0, accpay = 0;
    json_array_foreach(list, i, x)
    {
        expect_invoice_mirrored(x);
        accpay += strcmp(json_string_value(json_object_get(x, "Type")), "ACCPAY") == 0;
        size_t k;
        json_t *li;
        json_array_foreach(json_object_get(x, "LineItems"), k, li)
        {
            char u[XS_MONEY_TEXT_MAX];
            money_text(json_object_get(li, "UnitAmount"), 4, u);
            unit4 += u[strlen(u) - 1] != '0' || u[strlen(u) - 2] != '0';
            lines++;
        }
    }
    /* The data set has bills, lines with 3 or 4 places in their unit amounts, and several
     * lines an invoice; all came through exactly. */
    assert_true(accpay > 0);
    assert_true(unit4 > 0);
    assert_true(lines > (long)n);
    json_decref(list);

    /* Unchanged: a second full run writes nothing anywhere (it reads every invoice, and
     * again those of the last second a page's keyset cursor ends on). */
    run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 180000);
    expect_status(run, "succeeded");
    assert_true(count_of(run, "invoice", "pull", "unchanged") >= (long)n);
    assert_int_equal(count_of(run, "invoice", "pull", "created"), 0);
    assert_int_equal(count_of(run, "invoice", "pull", "updated"), 0);
    assert_int_equal(count_of(run, "invoice", "push", "sent"), 0);
    json_decref(run);
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), 0);
}

/* new_local_invoice inserts, as the host application does, an invoice of contact cid with
 * two lines (one with a 4-place unit amount); returns its id (free). */
static char *new_local_invoice(const char *cid, const char *reference, const char *status)
{
    /* One statement, so one transaction: the outbox sees the invoice with its lines. */
    char *id = sql("WITH i AS (INSERT INTO app.invoices (organisation_id, contact_id, type, "
                   "reference, status, date, due_date) VALUES ($1, $2, 'ACCREC', $3, $4, "
                   "'2026-11-20', '2026-12-20') RETURNING id), l AS (INSERT INTO "
                   "app.invoice_lines (organisation_id, invoice_id, position, description, "
                   "quantity, unit_amount, account_code, tax_type) SELECT $1, i.id, v.pos, v.d, "
                   "v.q, v.u, '200', 'OUTPUT2' FROM i, (VALUES (0, 'Consulting', 3, 12.3456), "
                   "(1, 'Travel', 1, 80)) AS v(pos, d, q, u) RETURNING 1) SELECT id::text FROM "
                   "i WHERE (SELECT count(*) FROM l) = 2",
                   4, ORG, cid, reference, status);
    assert_non_null(id);
    return id;
}

static void test_new_contact_and_invoice_reach_xero_in_order(void **state)
{
    (void)state;
    long cposts = xst_engine_sim_calls(E, "POST /Contacts", 0);
    /* One transaction of the host application: a contact, its invoice and the lines. */
    char *out = sql("WITH c AS (INSERT INTO app.contacts (organisation_id, name, email) VALUES "
                    "($1, 'Ordering Co', 'orders@ordering.example') RETURNING id), i AS (INSERT "
                    "INTO app.invoices (organisation_id, contact_id, type, reference, status, "
                    "date, due_date) SELECT $1, c.id, 'ACCREC', 'PO-77', 'AUTHORISED', "
                    "'2026-11-21', '2026-12-21' FROM c RETURNING id), l AS (INSERT INTO "
                    "app.invoice_lines (organisation_id, invoice_id, position, description, "
                    "quantity, unit_amount, account_code, tax_type) SELECT $1, i.id, 0, "
                    "'Widgets', 2.5, 19.9875, '200', 'OUTPUT2' FROM i RETURNING 1) SELECT "
                    "(SELECT id FROM c)::text || ' ' || (SELECT id FROM i)::text || ' ' || "
                    "(SELECT count(*) FROM l)::text",
                    1, ORG);
    assert_non_null(out);
    char cid[40], iid[40];
    assert_int_equal(sscanf(out, "%39s %39s", cid, iid), 2);
    free(out);
    settle();
    json_t *run = last_push_run();
    expect_status(run, "succeeded");
    json_decref(run);
    char *cx = xero_id_of("contact", cid), *ix = xero_id_of("invoice", iid);
    assert_non_null(cx);
    assert_non_null(ix);
    assert_true(xst_engine_sim_calls(E, "POST /Contacts", 0) > cposts);
    json_t *x = xero_invoice(ix);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(x, "Contact"), "ContactID")), cx);
    assert_string_equal(json_string_value(json_object_get(x, "Status")), "AUTHORISED");
    assert_string_equal(json_string_value(json_object_get(x, "Reference")), "PO-77");
    json_t *li = json_array_get(json_object_get(x, "LineItems"), 0);
    char u[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(li, "UnitAmount"), 4, u);
    assert_string_equal(u, "19.9875"); /* 4 places, exactly */
    /* Xero's arithmetic (2.5 x 19.9875 = 49.97 rounded) comes back with the next pull. */
    json_decref(x);
    run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", 60000);
    expect_status(run, "succeeded");
    json_decref(run);
    x = xero_invoice(ix);
    expect_invoice_mirrored(x);
    json_decref(x);
    free(cx);
    free(ix);
}

static void test_push_blocked_on_its_contact(void **state)
{
    (void)state;
    /* A contact the outbox never saw (written as the engine would write it), then an invoice
     * of it written by the host: the push of the invoice alone finds no mapping for its
     * contact, so the run pushes the contact first, then the invoice. */
    char *cid = sql("WITH m AS (SELECT set_config('xs.origin', 'engine', true)) INSERT INTO "
                    "app.contacts (organisation_id, name) SELECT $1, 'Unsynced Supplier Ltd' "
                    "FROM m RETURNING id",
                    1, ORG);
    assert_non_null(cid);
    assert_int_equal(sql_long("SELECT count(*) FROM sync.changes WHERE local_id = $1", 1, cid), 0);
    char *iid = new_local_invoice(cid, "blocked-1", "DRAFT");
    settle();
    json_t *run = last_push_run();
    expect_status(run, "succeeded");
    assert_int_equal(count_of(run, "invoice", "push", "deferred"), 1);
    assert_int_equal(count_of(run, "contact", "push", "created"), 1);
    assert_int_equal(count_of(run, "invoice", "push", "created"), 1);
    json_decref(run);
    char *cx = xero_id_of("contact", cid), *ix = xero_id_of("invoice", iid);
    assert_non_null(cx);
    assert_non_null(ix);
    json_t *x = xero_invoice(ix);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(x, "Contact"), "ContactID")), cx);
    char u[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(json_array_get(json_object_get(x, "LineItems"), 0), "UnitAmount"), 4,
               u);
    assert_string_equal(u, "12.3456");
    json_decref(x);
    free(cx);
    free(ix);
    free(cid);
    free(iid);
}

static void test_pull_blocked_on_its_contact(void **state)
{
    (void)state;
    /* Made in Xero: a contact and its invoice. A run that pulls invoices only meets an
     * invoice whose contact was never pulled: it fetches the contact, then the invoice. */
    char path[200];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Contacts", TENANT);
    json_t *c = sim_json("PUT", path, "{\"Name\":\"Made In Xero Ltd\"}");
    const char *cx = json_string_value(json_object_get(c, "ContactID"));
    if (cx == NULL) {
        cx = json_string_value(
            json_object_get(json_array_get(json_object_get(c, "Contacts"), 0), "ContactID"));
    }
    assert_non_null(cx);
    char body[600];
    snprintf(body, sizeof(body),
             "{\"Type\":\"ACCPAY\",\"Contact\":{\"ContactID\":\"%s\"},\"InvoiceNumber\":\"B-1\","
             "\"Status\":\"AUTHORISED\",\"Date\":\"2026-11-25\",\"DueDate\":\"2026-12-25\","
             "\"LineItems\":[{\"Description\":\"Paper\",\"Quantity\":4,\"UnitAmount\":2.5,"
             "\"AccountCode\":\"400\",\"TaxType\":\"INPUT2\"}]}",
             cx);
    snprintf(path, sizeof(path), "/_sim/tenants/%s/Invoices", TENANT);
    json_t *inv = sim_json("PUT", path, body);
    const char *ix = json_string_value(json_object_get(inv, "InvoiceID"));
    if (ix == NULL) {
        ix = json_string_value(
            json_object_get(json_array_get(json_object_get(inv, "Invoices"), 0), "InvoiceID"));
    }
    assert_non_null(ix);
    json_t *run =
        xst_engine_run(E, CONN, "{\"mode\":\"incremental\",\"entities\":[\"invoice\"]}", 60000);
    expect_status(run, "succeeded");
    assert_int_equal(count_of(run, "invoice", "pull", "deferred"), 1);
    assert_int_equal(count_of(run, "contact", "pull", "created"), 1);
    assert_true(count_of(run, "invoice", "pull", "created") >= 1);
    json_decref(run);
    json_t *x = xero_invoice(ix);
    expect_invoice_mirrored(x);
    json_decref(x);
    json_decref(inv);
    json_decref(c);
}

static void test_forbidden_transitions_fail_clearly(void **state)
{
    (void)state;
    /* An AUTHORISED invoice without payments, in sync. */
    char *lid = sql("SELECT i.id FROM app.invoices i JOIN sync.mappings m ON m.local_id = i.id "
                    "AND m.entity = 'invoice' WHERE i.status = 'AUTHORISED' AND i.amount_paid = "
                    "0 ORDER BY i.id LIMIT 1",
                    0);
    assert_non_null(lid);
    char *xid = xero_id_of("invoice", lid);
    long posts = xst_engine_sim_calls(E, "POST /Invoices", 0);
    free(sql("UPDATE app.invoices SET status = 'DRAFT' WHERE id = $1 RETURNING id", 1, lid));
    settle();
    json_t *run = last_push_run();
    expect_status(run, "partial");
    assert_int_equal(count_of(run, "invoice", "push", "failed"), 1);
    const char *msg = json_string_value(
        json_object_get(json_array_get(json_object_get(run, "item_errors"), 0), "message"));
    if (msg == NULL || strstr(msg, "AUTHORISED to DRAFT") == NULL) {
        char *t = xs_json_dump(run, XS_JSON_PRETTY);
        fprintf(stderr, "%s\n", t);
        free(t);
    }
    assert_non_null(msg);
    assert_non_null(strstr(msg, "AUTHORISED to DRAFT"));
    json_decref(run);
    /* Nothing was sent, and Xero still has it AUTHORISED. */
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), posts);
    json_t *x = xero_invoice(xid);
    assert_string_equal(json_string_value(json_object_get(x, "Status")), "AUTHORISED");
    json_decref(x);

    /* To PAID: refused the same way. */
    free(sql("UPDATE app.invoices SET status = 'PAID' WHERE id = $1 RETURNING id", 1, lid));
    settle();
    run = last_push_run();
    expect_status(run, "partial");
    msg = json_string_value(
        json_object_get(json_array_get(json_object_get(run, "item_errors"), 0), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "to PAID"));
    json_decref(run);
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), posts);

    /* AUTHORISED to VOIDED is allowed, and reaches Xero. */
    free(sql("UPDATE app.invoices SET status = 'VOIDED' WHERE id = $1 RETURNING id", 1, lid));
    settle();
    run = last_push_run();
    expect_status(run, "succeeded");
    assert_int_equal(count_of(run, "invoice", "push", "updated"), 1);
    json_decref(run);
    x = xero_invoice(xid);
    assert_string_equal(json_string_value(json_object_get(x, "Status")), "VOIDED");
    json_decref(x);
    free(lid);
    free(xid);
}

static void test_a_line_edit_is_an_invoice_change(void **state)
{
    (void)state;
    char *lid = sql("SELECT i.id FROM app.invoices i JOIN sync.mappings m ON m.local_id = i.id "
                    "AND m.entity = 'invoice' WHERE i.status = 'DRAFT' AND i.type = 'ACCREC' AND "
                    "EXISTS (SELECT 1 FROM app.invoice_lines l WHERE l.invoice_id = i.id) ORDER "
                    "BY i.id LIMIT 1",
                    0);
    assert_non_null(lid);
    char *before = sql("SELECT updated_at::text FROM app.invoices WHERE id = $1", 1, lid);
    free(sql("UPDATE app.invoice_lines SET quantity = 7.25, unit_amount = 3.0001 WHERE id = "
             "(SELECT id FROM app.invoice_lines WHERE invoice_id = $1 ORDER BY position LIMIT 1) "
             "RETURNING id",
             1, lid));
    char *after = sql("SELECT updated_at::text FROM app.invoices WHERE id = $1", 1, lid);
    assert_string_not_equal(before, after);
    settle();
    json_t *run = last_push_run();
    expect_status(run, "succeeded");
    assert_int_equal(count_of(run, "invoice", "push", "updated"), 1);
    json_decref(run);
    char *xid = xero_id_of("invoice", lid);
    json_t *x = xero_invoice(xid);
    json_t *li = json_array_get(json_object_get(x, "LineItems"), 0);
    char q[XS_MONEY_TEXT_MAX], u[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(li, "Quantity"), 4, q);
    money_text(json_object_get(li, "UnitAmount"), 4, u);
    assert_string_equal(q, "7.2500");
    assert_string_equal(u, "3.0001");
    json_decref(x);
    free(before);
    free(after);
    free(lid);
    free(xid);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_to_the_cent),
        cmocka_unit_test(test_new_contact_and_invoice_reach_xero_in_order),
        cmocka_unit_test(test_push_blocked_on_its_contact),
        cmocka_unit_test(test_pull_blocked_on_its_contact),
        cmocka_unit_test(test_forbidden_transitions_fail_clearly),
        cmocka_unit_test(test_a_line_edit_is_an_invoice_change),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
