/*
 * invoices_test.c: invoices, bills and their payments in two-way sync, end to end (a real
 * PostgreSQL, xero-sim, the orchestrator, xs-auth, xs-contacts, xs-invoices and xs-payments over
 * nng):
 *   - a full run imports 5,000 contacts, 20,000 invoices with their lines and 10,000 payments:
 *     each invoice's totals equal to the simulator's to the cent, each 4-place unit amount
 *     exactly, each linked to its local contact, each payment to its invoice;
 *   - a new local contact with a new invoice, written in one transaction by the host
 *     application, reaches the simulator contact first, and the invoice names it;
 *   - an invoice pushed alone whose contact is not in Xero is "blocked on" it: the run pushes
 *     the contact, then the invoice; one pulled whose contact was never pulled makes the run
 *     fetch the contact, then the invoice;
 *   - a status change Xero forbids (AUTHORISED back to DRAFT, anything to PAID) fails that
 *     invoice with a clear error and sends nothing for it; an allowed one (AUTHORISED to
 *     VOIDED) reaches Xero;
 *   - a line edited on its own is a change of its invoice, pushed;
 *   - payments: imported to the cent, each linked to its invoice; a new one reaches Xero, and
 *     the invoice's amount due follows; one above the amount due, or against an invoice that
 *     takes none, is refused before the call; Xero never edits a payment, so an edit fails
 *     clearly, or with the "edits" setting at recreate is deleted and made again in Xero; a
 *     local delete (a status DELETED, or the row gone) deletes it in Xero;
 *   - a new contact, its invoice and a payment, written in one transaction, reach Xero in
 *     that order;
 *   - REST: /v1/invoices and /v1/payments validate, name the field at fault, and reach Xero;
 *   - the two-phase import (settings import.invoice.months): a full run reads the invoices of
 *     the last N months and every AUTHORISED one, and no others.
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
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "harness.h"
#include "xs/json.h"
#include "xs/money.h"

/* A run ended with the status wanted (the run printed when not). */
#define expect_status(run, want) assert_true(xst_run_status_is((run), (want)))

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

/* xero_all is every record of kind ("Invoices", "Payments") in the simulator, as the API
 * gives them with extra parameters ("&unitdp=4", or ""). */
static json_t *xero_all(const char *kind, const char *extra)
{
    json_t *all = json_array();
    for (int page = 1;; page++) {
        char path[200];
        snprintf(path, sizeof(path), "/_sim/tenants/%s/%s?page=%d&pageSize=1000%s", TENANT, kind,
                 page, extra);
        json_t *j = sim_json("GET", path, NULL);
        json_t *list = json_object_get(j, kind);
        size_t n = json_array_size(list);
        json_array_extend(all, list);
        json_decref(j);
        if (n < 1000) {
            return all;
        }
    }
}

/* xero_one is the simulator's record xid of kind (new). */
static json_t *xero_one(const char *kind, const char *xid, const char *extra)
{
    char path[200];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/%s/%s%s", TENANT, kind, xid, extra);
    json_t *j = sim_json("GET", path, NULL);
    json_t *one = json_incref(json_array_get(json_object_get(j, kind), 0));
    json_decref(j);
    return one;
}

static json_t *xero_invoices(void)
{
    return xero_all("Invoices", "&unitdp=4");
}

static json_t *xero_invoice(const char *xid)
{
    return xero_one("Invoices", xid, "?unitdp=4");
}

static json_t *xero_payments(void)
{
    return xero_all("Payments", "");
}

static json_t *xero_payment(const char *xid)
{
    return xero_one("Payments", xid, "");
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

/* local_invoices is, by Xero id, the local invoices linked to Xero invoice xid (NULL: every
 * one) with their lines and their contact's Xero id (new JSON object): one query. */
static json_t *local_invoices(const char *xid)
{
    char *t = sql("SELECT coalesce(json_object_agg(m.xero_id, json_build_object('type', i.type, "
                  "'status', i.status, 'number', i.invoice_number, 'sub_total', "
                  "i.sub_total::text, 'total_tax', i.total_tax::text, 'total', i.total::text, "
                  "'amount_due', i.amount_due::text, 'amount_paid', i.amount_paid::text, 'date', "
                  "to_char(i.date, 'YYYY-MM-DD'), 'contact_xero', (SELECT c.xero_id::text FROM "
                  "sync.mappings c WHERE c.connection_id = $2 AND c.entity = 'contact' AND "
                  "c.local_id = i.contact_id), 'lines', (SELECT "
                  "coalesce(json_agg(json_build_object('quantity', l.quantity::text, "
                  "'unit_amount', l.unit_amount::text, 'line_amount', l.line_amount::text, "
                  "'tax_amount', l.tax_amount::text, 'description', l.description) ORDER BY "
                  "l.position), '[]') FROM app.invoice_lines l WHERE l.invoice_id = i.id))), "
                  "'{}')::text FROM app.invoices i JOIN sync.mappings m ON m.local_id = i.id AND "
                  "m.entity = 'invoice' WHERE m.connection_id = $2 AND ($1::uuid IS NULL OR "
                  "m.xero_id = $1::uuid)",
                  2, xid, CONN);
    json_t *j = t != NULL ? xs_json_parse(t, strlen(t), NULL) : NULL;
    free(t);
    assert_non_null(j);
    return j;
}

/* expect_invoice_mirrored: Xero's invoice x is here, as local_invoices read it (all: their
 * result for every invoice, or NULL to read this one). */
static void expect_invoice_in(const json_t *x, json_t *all)
{
    const char *xid = json_string_value(json_object_get(x, "InvoiceID"));
    json_t *mine = all != NULL ? json_incref(all) : local_invoices(xid);
    json_t *l = json_incref(json_object_get(mine, xid));
    json_decref(mine);
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

static void expect_invoice_mirrored(const json_t *x)
{
    expect_invoice_in(x, NULL);
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

/* expect_refused waits for the push of a change and expects it refused before the call: the
 * run partial, one record of entity failed, its item error saying want. */
/* expect_untouched checks that no invoice was written to Xero since posts (its count of
 * POST /Invoices) and that Xero still has invoice xid as status. */
static void expect_untouched(const char *xid, long posts, const char *status)
{
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), posts);
    json_t *x = xero_invoice(xid);
    assert_string_equal(json_string_value(json_object_get(x, "Status")), status);
    json_decref(x);
}

static void expect_refused(const char *entity, const char *want)
{
    settle();
    json_t *run = last_push_run();
    expect_status(run, "partial");
    assert_int_equal(count_of(run, entity, "push", "failed"), 1);
    const char *msg = json_string_value(
        json_object_get(json_array_get(json_object_get(run, "item_errors"), 0), "message"));
    if (msg == NULL || strstr(msg, want) == NULL) {
        char *t = xs_json_dump(run, XS_JSON_PRETTY);
        fprintf(stderr, "%s\n", t);
        free(t);
    }
    assert_non_null(msg);
    assert_non_null(strstr(msg, want));
    /* The record is named for people: an invoice by its number (else its reference, else its
     * type and date), a payment by its reference (else its amount and date); null once the
     * local record is gone. */
    json_t *ie = json_array_get(json_object_get(run, "item_errors"), 0);
    const char *lid = json_string_value(json_object_get(ie, "local_id"));
    assert_non_null(lid);
    char *name = sql(strcmp(entity, "invoice") == 0
                         ? "SELECT coalesce(invoice_number, reference, type || ' of ' || "
                           "coalesce(date::text, '?')) FROM app.invoices WHERE id = $1"
                         : "SELECT coalesce(reference, amount::text || ' on ' || date::text) FROM "
                           "app.payments WHERE id = $1",
                     1, lid);
    if (name != NULL) {
        assert_string_equal(json_string_value(json_object_get(ie, "record")), name);
        free(name);
    } else { /* deleted here: no name left to give */
        assert_true(json_is_null(json_object_get(ie, "record")));
    }
    json_decref(run);
}

static char *xero_id_of(const char *entity, const char *lid)
{
    return sql("SELECT xero_id::text FROM sync.mappings WHERE connection_id = $3 AND entity = $1 "
               "AND local_id = $2",
               3, entity, lid, CONN);
}

static int setup(void **state)
{
    (void)state;
    E = xst_engine_new("invoices");
    /* Xero's limits would make the test wait minutes; resilience_test holds to them. */
    char *sim_env[] = {"XS_SIM_LIMIT_MINUTE=100000", "XS_SIM_LIMIT_DAY=10000000",
                       "XS_SIM_LIMIT_CONCURRENT=1000", "XS_SIM_HIGH_VOLUME=100000", NULL};
    xst_engine_start_sim(E, sim_env);
    char *orch_env[] = {"XS_SCHEDULER=false", "XS_PUSH_DELAY=200ms",
                        "XS_BUDGET_TENANT_MINUTE=100000", "XS_BUDGET_TENANT_DAY=10000000", NULL};
    xst_engine_start_orchestrator(E, orch_env);
    xst_engine_start_services(E);
    ORG = xst_engine_connected(E, "Invoicing Ltd", CONN, TENANT);
    char path[160];
    snprintf(path, sizeof(path), "/_sim/tenants/%s/seed", TENANT);
    json_decref(sim_json("POST", path,
                         "{\"contacts\":5000,\"invoices\":20000,\"payments\":10000,\"seed\":11}"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ORG);
    return xst_engine_free(E) == 0 ? 0 : -1;
}

/* calls_by_entity reads the simulator's count of list reads: contacts, invoices, payments. */
static void calls_by_entity(long out[3])
{
    out[0] = xst_engine_sim_calls(E, "GET /Contacts", 0);
    out[1] = xst_engine_sim_calls(E, "GET /Invoices", 0);
    out[2] = xst_engine_sim_calls(E, "GET /Payments", 0);
}

/* expect_calls_since checks that a full pull of the seeded set (5,000 contacts, n invoices,
 * 10,000 payments) since calls_by_entity(before) took one call a page of 1,000. */
static void expect_calls_since(const long before[3], long n)
{
    long now[3];
    calls_by_entity(now);
    fprintf(stderr, "list reads: Contacts %ld, Invoices %ld, Payments %ld\n", now[0] - before[0],
            now[1] - before[1], now[2] - before[2]);
    assert_int_equal(now[0] - before[0], 5);
    assert_int_equal(now[1] - before[1], (n + 999) / 1000);
    assert_int_equal(now[2] - before[2], 10);
}

static void test_import_to_the_cent(void **state)
{
    (void)state;
    json_t *list = xero_invoices();
    size_t n = json_array_size(list);
    assert_true(n >= 20000);
    long gets[3];
    calls_by_entity(gets);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 180000);
    expect_status(run, "succeeded");
    /* The fewest calls there can be: ceil(n / 1000) for each list. The keyset cursor's
     * tie-break leaves out what the page before read of the second a page starts at. */
    expect_calls_since(gets, (long)n);
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
    json_t *all = local_invoices(NULL);
    json_array_foreach(list, i, x)
    {
        expect_invoice_in(x, all);
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
    json_decref(all);
    json_decref(list);

    /* Unchanged: a second full run writes nothing anywhere; it reads every invoice once. */
    calls_by_entity(gets);
    run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 180000);
    expect_status(run, "succeeded");
    expect_calls_since(gets, (long)n);
    assert_int_equal(count_of(run, "invoice", "pull", "unchanged"), (long)n);
    assert_int_equal(count_of(run, "invoice", "pull", "created"), 0);
    assert_int_equal(count_of(run, "invoice", "pull", "updated"), 0);
    assert_int_equal(count_of(run, "invoice", "push", "sent"), 0);
    json_decref(run);
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), 0);
}

/* Above the simulator's high-volume mark (Xero's "not filtering efficiently") a where the
 * indexes do not answer is refused: a pull's tie-break then gives way, once a pull, to pages
 * that re-read the second they start at, and nothing is lost or failed. */
static void test_tiebreak_refused_falls_back(void **state)
{
    (void)state;
    const char *kinds[] = {"GET /Contacts", "GET /Invoices", "GET /Payments"};
    long refused[3];
    for (int k = 0; k < 3; k++) {
        refused[k] = xst_engine_sim_calls(E, kinds[k], 400);
    }
    json_t *cfg = sim_json("GET", "/_sim/config", NULL);
    json_int_t mark = json_integer_value(json_object_get(cfg, "high_volume"));
    json_decref(cfg);
    assert_true(mark > 1000);
    json_decref(sim_json("POST", "/_sim/config", "{\"high_volume\":1000}"));
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 180000);
    char back[64];
    snprintf(back, sizeof(back), "{\"high_volume\":%lld}", (long long)mark);
    json_decref(sim_json("POST", "/_sim/config", back));
    expect_status(run, "succeeded");
    long invoices =
        sql_long("SELECT count(*) FROM app.invoices WHERE organisation_id = $1", 1, ORG);
    assert_true(count_of(run, "contact", "pull", "unchanged") >= 5000);
    assert_true(count_of(run, "invoice", "pull", "unchanged") >= invoices);
    assert_true(count_of(run, "payment", "pull", "unchanged") >= 10000);
    const char *ents[] = {"contact", "invoice", "payment"};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(count_of(run, ents[k], "pull", "created"), 0);
        assert_int_equal(count_of(run, ents[k], "pull", "updated"), 0);
        assert_int_equal(count_of(run, ents[k], "pull", "failed"), 0);
        /* one refusal a list, then no more tie-breaks in that pull */
        assert_int_equal(xst_engine_sim_calls(E, kinds[k], 400) - refused[k], 1);
    }
    json_decref(run);
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
    expect_refused("invoice", "AUTHORISED to DRAFT");
    /* Nothing was sent, and Xero still has it AUTHORISED. */
    expect_untouched(xid, posts, "AUTHORISED");

    /* To PAID: refused the same way. */
    free(sql("UPDATE app.invoices SET status = 'PAID' WHERE id = $1 RETURNING id", 1, lid));
    expect_refused("invoice", "to PAID");
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), posts);

    /* A line's account code that the chart of accounts does not have: refused the same way. */
    char *draft = sql("SELECT i.id FROM app.invoices i JOIN sync.mappings m ON m.local_id = i.id "
                      "AND m.entity = 'invoice' WHERE i.status = 'DRAFT' AND EXISTS (SELECT 1 "
                      "FROM app.invoice_lines l WHERE l.invoice_id = i.id) ORDER BY i.id DESC "
                      "LIMIT 1",
                      0);
    assert_non_null(draft);
    free(sql("UPDATE app.invoice_lines SET account_code = '9Z9' WHERE id = (SELECT id FROM "
             "app.invoice_lines WHERE invoice_id = $1 ORDER BY position LIMIT 1) RETURNING id",
             1, draft));
    expect_refused("invoice", "has the code 9Z9");
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), posts);
    /* Put right, it goes. */
    free(sql("UPDATE app.invoice_lines SET account_code = '200' WHERE invoice_id = $1 AND "
             "account_code = '9Z9' RETURNING id",
             1, draft));
    settle();
    json_t *run = last_push_run();
    expect_status(run, "succeeded");
    json_decref(run);
    posts = xst_engine_sim_calls(E, "POST /Invoices", 0);
    /* A line whose amount is below zero, written into app.invoice_lines directly (the REST
     * API refuses one): refused before the call, then put right. */
    free(sql("UPDATE app.invoice_lines SET quantity = 2, unit_amount = -5 WHERE id = (SELECT id "
             "FROM app.invoice_lines WHERE invoice_id = $1 ORDER BY position LIMIT 1) RETURNING "
             "id",
             1, draft));
    expect_refused("invoice", "line 1: a line's amount (quantity x unit_amount) must not be below");
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), posts);
    free(sql("UPDATE app.invoice_lines SET unit_amount = 5 WHERE invoice_id = $1 AND unit_amount "
             "= -5 RETURNING id",
             1, draft));
    settle();
    run = last_push_run();
    expect_status(run, "succeeded");
    json_decref(run);
    posts = xst_engine_sim_calls(E, "POST /Invoices", 0);
    free(draft);

    /* AUTHORISED to VOIDED is allowed, and reaches Xero. */
    free(sql("UPDATE app.invoices SET status = 'VOIDED' WHERE id = $1 RETURNING id", 1, lid));
    settle();
    run = last_push_run();
    expect_status(run, "succeeded");
    assert_int_equal(count_of(run, "invoice", "push", "updated"), 1);
    json_decref(run);
    json_t *x = xero_invoice(xid);
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

/* local_payments is, by Xero id, the local payments linked to Xero payment xid (NULL: every
 * one) with their invoice's Xero id (new JSON object): one query. */
static json_t *local_payments(const char *xid)
{
    char *t = sql("SELECT coalesce(json_object_agg(m.xero_id, json_build_object('amount', "
                  "p.amount::text, 'status', p.status, 'account_code', p.account_code, "
                  "'invoice_xero', (SELECT i.xero_id::text FROM sync.mappings i WHERE "
                  "i.connection_id = $2 AND i.entity = 'invoice' AND i.local_id = p.invoice_id), "
                  "'date', to_char(p.date, 'YYYY-MM-DD'))), '{}')::text FROM app.payments p JOIN "
                  "sync.mappings m ON m.local_id = p.id AND m.entity = 'payment' WHERE "
                  "m.connection_id = $2 AND ($1::uuid IS NULL OR m.xero_id = $1::uuid)",
                  2, xid, CONN);
    json_t *j = t != NULL ? xs_json_parse(t, strlen(t), NULL) : NULL;
    free(t);
    assert_non_null(j);
    return j;
}

/* expect_payment_in: the local payment linked to Xero's x (in all, local_payments(NULL)) has
 * its amount, status, account and invoice. */
static void expect_payment_in(const json_t *x, const json_t *all)
{
    const char *xid = json_string_value(json_object_get(x, "PaymentID"));
    json_t *l = json_object_get(all, xid);
    if (l == NULL) {
        fail_msg("payment %s is not here", xid);
    }
    same_money(x, "Amount", l, "amount", 2, xid);
    assert_string_equal(json_string_value(json_object_get(l, "status")),
                        json_string_value(json_object_get(x, "Status")));
    assert_string_equal(
        json_string_value(json_object_get(l, "invoice_xero")),
        json_string_value(json_object_get(json_object_get(x, "Invoice"), "InvoiceID")));
    const char *code = json_string_value(json_object_get(json_object_get(x, "Account"), "Code"));
    if (code != NULL && code[0] != '\0') {
        assert_string_equal(json_string_value(json_object_get(l, "account_code")), code);
    }
}

static void test_payments_imported_to_the_cent(void **state)
{
    (void)state;
    /* The import (the first test's full run) brought them. */
    json_t *list = xero_payments();
    size_t n = json_array_size(list);
    assert_true(n >= 10000);
    assert_int_equal(
        sql_long("SELECT count(*) FROM app.payments WHERE organisation_id = $1", 1, ORG), (long)n);
    size_t i;
    json_t *x;
    json_t *all = local_payments(NULL);
    json_array_foreach(list, i, x)
    {
        expect_payment_in(x, all);
    }
    json_decref(all);
    json_decref(list);
    assert_int_equal(xst_engine_sim_calls(E, "POST /Payments", 0) +
                         xst_engine_sim_calls(E, "PUT /Payments", 0),
                     0);
}

/* payable_invoice finds a local ACCREC invoice in sync, AUTHORISED, with at least 50.00 due
 * and no payment yet (free). */
static char *payable_invoice(int offset)
{
    char off[16];
    snprintf(off, sizeof(off), "%d", offset);
    return sql("SELECT i.id FROM app.invoices i JOIN sync.mappings m ON m.local_id = i.id AND "
               "m.entity = 'invoice' WHERE i.status = 'AUTHORISED' AND i.amount_due >= 50 AND "
               "i.amount_paid = 0 AND i.type = 'ACCREC' AND NOT EXISTS (SELECT 1 FROM "
               "app.payments p WHERE p.invoice_id = i.id) ORDER BY i.id OFFSET $1 LIMIT 1",
               1, off);
}

/* bank_code is the code of a bank account of the mirrored chart (free). */
static char *bank_code(void)
{
    return sql("SELECT code FROM app.accounts WHERE organisation_id = $1 AND type = 'BANK' AND "
               "status = 'ACTIVE' AND code IS NOT NULL ORDER BY code LIMIT 1",
               1, ORG);
}

static char *new_local_payment(const char *iid, const char *amount, const char *code)
{
    char *id = sql("INSERT INTO app.payments (organisation_id, invoice_id, account_code, date, "
                   "amount, reference) VALUES ($1, $2, $3, '2026-11-30', $4::numeric, 'paid by "
                   "test') RETURNING id",
                   4, ORG, iid, code, amount);
    assert_non_null(id);
    return id;
}

static void test_payments_pushed_and_checked(void **state)
{
    (void)state;
    char *code = bank_code();
    assert_non_null(code);
    char *iid = payable_invoice(0);
    assert_non_null(iid);
    char *ixid = xero_id_of("invoice", iid);
    char *due = sql("SELECT amount_due::text FROM app.invoices WHERE id = $1", 1, iid);
    long posts =
        xst_engine_sim_calls(E, "POST /Payments", 0) + xst_engine_sim_calls(E, "PUT /Payments", 0);

    /* Above the amount due: refused before the call. */
    char over[64];
    xs_money d, one = {0}, sum;
    assert_int_equal(xs_money_parse(due, &d), XS_OK);
    assert_int_equal(xs_money_parse("0.01", &one), XS_OK);
    xs_money_add(d, one, &sum);
    xs_money_format(sum, 2, over);
    char *bad = new_local_payment(iid, over, code);
    expect_refused("payment", "more than the invoice's amount due");
    assert_int_equal(xst_engine_sim_calls(E, "POST /Payments", 0) +
                         xst_engine_sim_calls(E, "PUT /Payments", 0),
                     posts);
    free(sql("DELETE FROM app.payments WHERE id = $1 RETURNING id", 1, bad));
    settle();
    free(bad);
    /* Zero or below, written into app.payments directly (the REST API refuses them): refused
     * before the call as well. */
    static const char *const not_above_zero[] = {"0.00", "-5.00"};
    for (size_t i = 0; i < 2; i++) {
        bad = new_local_payment(iid, not_above_zero[i], code);
        expect_refused("payment", "the amount must be above zero");
        free(sql("DELETE FROM app.payments WHERE id = $1 RETURNING id", 1, bad));
        settle();
        free(bad);
    }
    assert_int_equal(xst_engine_sim_calls(E, "POST /Payments", 0) +
                         xst_engine_sim_calls(E, "PUT /Payments", 0),
                     posts);

    /* Within it: made in Xero, exactly, and the invoice's amount due follows. */
    long gets = xst_engine_sim_calls(E, "GET /Payments", 0);
    char *pid = new_local_payment(iid, "12.34", code);
    settle();
    json_t *run = last_push_run();
    expect_status(run, "succeeded");
    assert_int_equal(count_of(run, "payment", "push", "created"), 1);
    /* A new payment conflicts with nothing in Xero: its push run reads no payments first. */
    size_t i;
    json_t *ph;
    json_array_foreach(json_object_get(run, "phases"), i, ph)
    {
        assert_false(strcmp(json_string_value(json_object_get(ph, "op")), "pull") == 0 &&
                     strcmp(json_string_value(json_object_get(ph, "entity")), "payment") == 0);
    }
    assert_int_equal(xst_engine_sim_calls(E, "GET /Payments", 0), gets);
    json_decref(run);
    char *pxid = xero_id_of("payment", pid);
    assert_non_null(pxid);
    json_t *x = xero_payment(pxid);
    char a[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(x, "Amount"), 2, a);
    assert_string_equal(a, "12.34");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(x, "Invoice"), "InvoiceID")), ixid);
    json_decref(x);
    run = xst_engine_run(E, CONN, "{\"mode\":\"incremental\"}", 60000);
    expect_status(run, "succeeded");
    json_decref(run);
    x = xero_invoice(ixid);
    expect_invoice_mirrored(x); /* amount paid 12.34, amount due 12.34 less */
    json_decref(x);

    /* Xero never edits a payment: an edit fails clearly, by default. */
    free(sql("UPDATE app.payments SET amount = 20.00 WHERE id = $1 RETURNING id", 1, pid));
    expect_refused("payment", "never changes a payment");
    x = xero_payment(pxid);
    money_text(json_object_get(x, "Amount"), 2, a);
    assert_string_equal(a, "12.34");
    json_decref(x);

    /* With edits.payment = recreate: deleted in Xero and made again with the new amount. */
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", CONN);
    xst_http put = xst_engine_api(E, "PUT", path, "{\"edits\":{\"payment\":\"recreate\"}}");
    assert_int_equal(put.status, 200);
    xst_http_free(&put);
    put = xst_engine_api(E, "PUT", path, "{\"edits\":{\"contact\":\"recreate\"}}");
    assert_int_equal(put.status, 400);
    xst_http_free(&put);
    free(sql("UPDATE app.payments SET amount = 20.50 WHERE id = $1 RETURNING id", 1, pid));
    settle();
    run = last_push_run();
    expect_status(run, "succeeded");
    assert_int_equal(count_of(run, "payment", "push", "retired"), 1);
    assert_int_equal(count_of(run, "payment", "push", "created"), 1);
    json_decref(run);
    x = xero_payment(pxid);
    assert_string_equal(json_string_value(json_object_get(x, "Status")), "DELETED");
    json_decref(x);
    char *pxid2 = xero_id_of("payment", pid);
    assert_non_null(pxid2);
    assert_string_not_equal(pxid2, pxid);
    x = xero_payment(pxid2);
    money_text(json_object_get(x, "Amount"), 2, a);
    assert_string_equal(a, "20.50");
    assert_string_equal(json_string_value(json_object_get(x, "Status")), "AUTHORISED");
    json_decref(x);

    /* A local delete deletes it in Xero: by status, and by removing the row. */
    free(sql("UPDATE app.payments SET status = 'DELETED' WHERE id = $1 RETURNING id", 1, pid));
    settle();
    x = xero_payment(pxid2);
    assert_string_equal(json_string_value(json_object_get(x, "Status")), "DELETED");
    json_decref(x);
    char *iid2 = payable_invoice(0);
    assert_non_null(iid2);
    char *pid2 = new_local_payment(iid2, "5.00", code);
    settle();
    char *pxid3 = xero_id_of("payment", pid2);
    assert_non_null(pxid3);
    free(sql("DELETE FROM app.payments WHERE id = $1 RETURNING id", 1, pid2));
    settle();
    x = xero_payment(pxid3);
    assert_string_equal(json_string_value(json_object_get(x, "Status")), "DELETED");
    json_decref(x);
    free(code);
    free(iid);
    free(ixid);
    free(due);
    free(pid);
    free(pxid);
    free(pxid2);
    free(iid2);
    free(pid2);
    free(pxid3);
}

/* new_chain writes, as the engine would (the outbox never sees them), a contact named name and
 * an AUTHORISED invoice of it (one line: 10 at 9.50), giving their ids. */
static void new_chain(const char *name, const char *reference, char cid[40], char iid[40])
{
    char *out = sql(
        "WITH m AS (SELECT set_config('xs.origin', 'engine', true)), c AS (INSERT INTO "
        "app.contacts (organisation_id, name) SELECT $1, $2 FROM m RETURNING id), i AS "
        "(INSERT INTO app.invoices (organisation_id, contact_id, type, reference, status, date, "
        "due_date) SELECT $1, c.id, 'ACCREC', $3, 'AUTHORISED', '2026-11-22', "
        "'2026-12-22' FROM c RETURNING id), l AS (INSERT INTO app.invoice_lines "
        "(organisation_id, invoice_id, position, description, quantity, unit_amount, "
        "account_code, tax_type) SELECT $1, i.id, 0, 'Chains', 10, 9.5, '200', 'OUTPUT2' FROM i "
        "RETURNING 1) SELECT (SELECT id FROM c)::text || ' ' || (SELECT id FROM i)::text || ' ' "
        "|| (SELECT count(*) FROM l)::text",
        3, ORG, name, reference);
    assert_non_null(out);
    assert_int_equal(sscanf(out, "%39s %39s", cid, iid), 2);
    free(out);
}

static void test_contact_invoice_payment_in_one_go(void **state)
{
    (void)state;
    char *code = bank_code();
    assert_non_null(code);
    /* A new contact and invoice; then, by the host, a payment of that invoice. The push of
     * the payment alone is blocked on its invoice, whose push is blocked on its contact: the
     * run pushes the contact, the invoice, then the payment. */
    char cid[40], iid[40];
    new_chain("Chain Co", "CHAIN-1", cid, iid);
    char *pid = new_local_payment(iid, "30.00", code);
    settle();
    json_t *run = last_push_run();
    expect_status(run, "succeeded");
    assert_int_equal(count_of(run, "contact", "push", "created"), 1);
    assert_int_equal(count_of(run, "invoice", "push", "created"), 1);
    assert_int_equal(count_of(run, "payment", "push", "created"), 1);
    json_decref(run);
    char *cx = xero_id_of("contact", cid), *ix = xero_id_of("invoice", iid),
         *px = xero_id_of("payment", pid);
    assert_non_null(cx);
    assert_non_null(ix);
    assert_non_null(px);
    json_t *x = xero_payment(px);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(x, "Invoice"), "InvoiceID")), ix);
    json_decref(x);
    x = xero_invoice(ix);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(x, "Contact"), "ContactID")), cx);
    char paid[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(x, "AmountPaid"), 2, paid);
    assert_string_equal(paid, "30.00");
    json_decref(x);
    free(cx);
    free(ix);
    free(px);
    free(pid);

    /* The same go with a payment above the invoice's total: the invoice's totals come from
     * Xero's reply to its push, so the payment is refused before the call, in that run. */
    new_chain("Chain Two", "CHAIN-2", cid, iid);
    long pays =
        xst_engine_sim_calls(E, "POST /Payments", 0) + xst_engine_sim_calls(E, "PUT /Payments", 0);
    pid = new_local_payment(iid, "500.00", code);
    expect_refused("payment", "more than the invoice's amount due");
    assert_int_equal(xst_engine_sim_calls(E, "POST /Payments", 0) +
                         xst_engine_sim_calls(E, "PUT /Payments", 0),
                     pays);
    ix = xero_id_of("invoice", iid);
    assert_non_null(ix);
    x = xero_invoice(ix);
    char total[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(x, "Total"), 2, total);
    json_decref(x);
    char *local = sql(
        "SELECT total::text || ' ' || amount_due::text FROM app.invoices WHERE id = $1", 1, iid);
    char want[2 * XS_MONEY_TEXT_MAX + 2];
    snprintf(want, sizeof(want), "%s %s", total, total);
    assert_string_equal(local, want);
    free(local);
    /* Kept as the base too: nothing of that invoice is pushed again. */
    long posts = xst_engine_sim_calls(E, "POST /Invoices", 0);
    json_t *full = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 180000);
    assert_int_equal(count_of(full, "invoice", "push", "sent"), 0);
    json_decref(full);
    assert_int_equal(xst_engine_sim_calls(E, "POST /Invoices", 0), posts);
    free(sql("DELETE FROM app.payments WHERE id = $1 RETURNING id", 1, pid));
    settle();
    free(ix);
    free(pid);
    free(code);
}

/* api_error_field posts body to path and expects status with the error naming field, and,
 * when says is not NULL, a message holding it. */
static void api_error_field(const char *path, const char *body, long status, const char *field,
                            const char *says)
{
    xst_http r = xst_engine_api(E, "POST", path, body);
    if (r.status != status) {
        fprintf(stderr, "%s %s: %ld %s\n", path, body, r.status, r.body);
    }
    assert_int_equal(r.status, status);
    json_t *err = json_object_get(r.json, "error");
    const char *f = json_string_value(json_object_get(err, "field"));
    if (f == NULL) {
        f = json_string_value(json_object_get(r.json, "field"));
    }
    const char *msg = json_string_value(json_object_get(err, "message"));
    if (f == NULL || strcmp(f, field) != 0 ||
        (says != NULL && (msg == NULL || strstr(msg, says) == NULL))) {
        fprintf(stderr, "%s %s: %s\n", path, body, r.body);
    }
    assert_non_null(f);
    assert_string_equal(f, field);
    if (says != NULL) {
        assert_non_null(msg);
        assert_non_null(strstr(msg, says));
    }
    xst_http_free(&r);
}

/* invoice_line_error posts an invoice of contact cid with one line (its JSON members) and
 * expects 400 naming field, the message holding says. */
static void invoice_line_error(const char *cid, const char *line, const char *field,
                               const char *says)
{
    char body[1200];
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"type\":\"ACCREC\",\"contact\":\"%s\",\"lines\":[{"
             "\"description\":\"x\",%s}]}",
             ORG, cid, line);
    api_error_field("/v1/invoices", body, 400, field, says);
}

/* payment_error posts a payment of invoice iid with more members (JSON) and expects 400
 * naming field, the message holding says. */
static void payment_error(const char *iid, const char *code, const char *more, const char *field,
                          const char *says)
{
    char body[1200];
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"invoice\":\"%s\",\"account_code\":\"%s\",\"date\":"
             "\"2026-12-02\",%s}",
             ORG, iid, code, more);
    api_error_field("/v1/payments", body, 400, field, says);
}

static void test_rest_invoices_and_payments(void **state)
{
    (void)state;
    /* (an active one: Xero takes no invoice for an archived contact) */
    char *cid = sql("SELECT m.local_id::text FROM sync.mappings m JOIN app.contacts c ON c.id = "
                    "m.local_id WHERE m.entity = 'contact' AND c.status = 'ACTIVE' ORDER BY "
                    "m.local_id LIMIT 1",
                    0);
    char *other = xst_engine_org(E, "Someone Else Ltd");
    /* (kept out of the outbox: that organisation has no connection to push it to) */
    char *ocid = sql("WITH m AS (SELECT set_config('xs.origin', 'engine', true)) INSERT INTO "
                     "app.contacts (organisation_id, name) SELECT $1, 'Not Yours' FROM m "
                     "RETURNING id",
                     1, other);
    char body[1200];
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"type\":\"ACCREC\",\"contact\":\"%s\"}", ORG, ocid);
    api_error_field("/v1/invoices", body, 404, "contact", NULL);
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"type\":\"ACCREC\",\"contact\":\"%s\",\"total\":5}", ORG,
             cid);
    api_error_field("/v1/invoices", body, 400, "total", NULL);
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"type\":\"QUOTE\",\"contact\":\"%s\"}", ORG, cid);
    api_error_field("/v1/invoices", body, 400, "type", NULL);
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"type\":\"ACCREC\",\"contact\":\"%s\",\"date\":\"31/12/"
             "2026\"}",
             ORG, cid);
    api_error_field("/v1/invoices", body, 400, "date", NULL);
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"type\":\"ACCREC\",\"contact\":\"%s\",\"lines\":[{"
             "\"description\":\"x\",\"line_amount\":3}]}",
             ORG, cid);
    api_error_field("/v1/invoices", body, 400, "lines[0].line_amount", NULL);
    /* Money on a line: what is wrong, named. An empty unit amount was once stored as none
     * and pushed as 0.00. */
    invoice_line_error(cid, "\"unit_amount\":\"\"", "lines[0].unit_amount", "is empty");
    invoice_line_error(cid, "\"unit_amount\":\"12.34567\"", "lines[0].unit_amount",
                       "more than 4 decimal places");
    invoice_line_error(cid, "\"unit_amount\":12.34567", "lines[0].unit_amount",
                       "more than 4 decimal places");
    invoice_line_error(cid, "\"unit_amount\":\"12,50\"", "lines[0].unit_amount", "is not a number");
    invoice_line_error(cid, "\"unit_amount\":true", "lines[0].unit_amount", "is not a number");
    invoice_line_error(cid, "\"unit_amount\":1e20", "lines[0].unit_amount", "out of range");
    invoice_line_error(cid, "\"quantity\":\"\",\"unit_amount\":5", "lines[0].quantity", "is empty");
    invoice_line_error(cid, "\"quantity\":2,\"unit_amount\":-5", "lines[0].unit_amount",
                       "must not be below zero");
    invoice_line_error(cid, "\"quantity\":-2,\"unit_amount\":\"5.00\"", "lines[0].quantity",
                       "must not be below zero");
    invoice_line_error(cid, "\"unit_amount\":5,\"discount_rate\":-1", "lines[0].discount_rate",
                       "must not be negative");
    invoice_line_error(cid, "\"unit_amount\":5,\"discount_rate\":150", "lines[0].discount_rate",
                       "at most 100");
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"type\":\"ACCREC\",\"contact\":\"%s\","
             "\"currency_rate\":\"\"}",
             ORG, cid);
    api_error_field("/v1/invoices", body, 400, "currency_rate", "is empty");
    /* Each refused before anything was stored. */
    assert_int_equal(sql_long("SELECT count(*) FROM app.invoice_lines WHERE description = 'x'", 0),
                     0);

    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"type\":\"ACCREC\",\"contact\":\"%s\",\"reference\":"
             "\"REST-1\",\"status\":\"AUTHORISED\",\"date\":\"2026-12-01\",\"due_date\":\"2026-12-"
             "31\",\"lines\":[{\"description\":\"Consulting\",\"quantity\":3,\"unit_amount\":"
             "\"120.1234\",\"account_code\":\"200\",\"tax_type\":\"OUTPUT2\"}]}",
             ORG, cid);
    xst_http r = xst_engine_api(E, "POST", "/v1/invoices", body);
    if (r.status != 201) {
        fprintf(stderr, "%s\n", r.body);
    }
    assert_int_equal(r.status, 201);
    char iid[40];
    snprintf(iid, sizeof(iid), "%s", json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    settle();
    char *ix = xero_id_of("invoice", iid);
    assert_non_null(ix);
    json_t *x = xero_invoice(ix);
    char u[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(json_array_get(json_object_get(x, "LineItems"), 0), "UnitAmount"), 4,
               u);
    assert_string_equal(u, "120.1234");
    json_decref(x);
    /* PATCH: only the fields given. */
    char path[160];
    snprintf(path, sizeof(path), "/v1/invoices/%s", iid);
    r = xst_engine_api(E, "PATCH", path, "{\"reference\":\"REST-1b\"}");
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
    settle();
    x = xero_invoice(ix);
    assert_string_equal(json_string_value(json_object_get(x, "Reference")), "REST-1b");
    assert_string_equal(json_string_value(json_object_get(x, "Status")), "AUTHORISED");
    json_decref(x);

    /* A payment of it, through the API. */
    char *code = bank_code();
    snprintf(body, sizeof(body), "{\"organisation_id\":\"%s\",\"invoice\":\"%s\",\"amount\":-3}",
             ORG, iid);
    api_error_field("/v1/payments", body, 400, "amount", "must be above zero");
    payment_error(iid, code, "\"amount\":0", "amount", "must be above zero");
    payment_error(iid, code, "\"amount\":\"-0.01\"", "amount", "must be above zero");
    payment_error(iid, code, "\"amount\":\"\"", "amount", "is empty");
    payment_error(iid, code, "\"amount\":\"1.005\"", "amount", "more than 2 decimal places");
    payment_error(iid, code, "\"amount\":\"ten\"", "amount", "is not a number");
    payment_error(iid, code, "\"amount\":99999999999999", "amount", "out of range");
    payment_error(iid, code, "\"amount\":5,\"currency_rate\":0", "currency_rate",
                  "must be above zero");
    snprintf(body, sizeof(body), "{\"organisation_id\":\"%s\",\"invoice\":\"%s\",\"amount\":5}",
             ORG, iid);
    api_error_field("/v1/payments", body, 400, "date", NULL);
    payment_error(iid, code, "\"amount\":\"100.00\",\"payment_type\":\"ACCRECPAYMENT\"",
                  "payment_type", NULL);
    assert_int_equal(sql_long("SELECT count(*) FROM app.payments WHERE invoice_id = $1", 1, iid),
                     0);
    snprintf(body, sizeof(body),
             "{\"organisation_id\":\"%s\",\"invoice\":\"%s\",\"account_code\":\"%s\",\"date\":"
             "\"2026-12-02\",\"amount\":\"100.00\"}",
             ORG, iid, code);
    r = xst_engine_api(E, "POST", "/v1/payments", body);
    assert_int_equal(r.status, 201);
    char pid[40];
    snprintf(pid, sizeof(pid), "%s", json_string_value(json_object_get(r.json, "id")));
    xst_http_free(&r);
    settle();
    char *px = xero_id_of("payment", pid);
    assert_non_null(px);
    x = xero_payment(px);
    char a[XS_MONEY_TEXT_MAX];
    money_text(json_object_get(x, "Amount"), 2, a);
    assert_string_equal(a, "100.00");
    json_decref(x);
    free(px);
    free(code);
    free(ix);
    free(cid);
    free(other);
    free(ocid);
}

static void test_two_phase_import(void **state)
{
    (void)state;
    char path[160];
    snprintf(path, sizeof(path), "/v1/connections/%s/settings", CONN);
    xst_http r = xst_engine_api(E, "PUT", path, "{\"import\":{\"invoice\":{\"months\":0}}}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    r = xst_engine_api(E, "PUT", path, "{\"import\":{\"contact\":{\"months\":3}}}");
    assert_int_equal(r.status, 400);
    xst_http_free(&r);
    r = xst_engine_api(E, "PUT", path, "{\"import\":{\"invoice\":{\"months\":3}}}");
    assert_int_equal(r.status, 200);
    xst_http_free(&r);
    /* What a full run should read now: the invoices dated in the last 3 months, and every
     * AUTHORISED one. */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int total = (tm.tm_year + 1900) * 12 + tm.tm_mon - 3;
    char from[32];
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = total / 12, m = total % 12 + 1;
    int last = days[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    snprintf(from, sizeof(from), "%04d-%02d-%02d", y, m, tm.tm_mday > last ? last : tm.tm_mday);
    xs_time cutoff = 0;
    assert_int_equal(xs_time_parse_iso(from, &cutoff), XS_OK);
    json_t *list = xero_invoices();
    long recent = 0, authorised = 0;
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x)
    {
        xs_time d = 0;
        assert_int_equal(xs_time_parse_any(json_string_value(json_object_get(x, "Date")), &d),
                         XS_OK);
        recent += d >= cutoff;
        authorised += strcmp(json_string_value(json_object_get(x, "Status")), "AUTHORISED") == 0;
    }
    long n = (long)json_array_size(list);
    json_decref(list);
    assert_true(recent > 0 && authorised > 0 && recent + authorised < n);
    json_t *run = xst_engine_run(E, CONN, "{\"mode\":\"full\"}", 180000);
    expect_status(run, "succeeded");
    long fetched = count_of(run, "invoice", "pull", "fetched");
    if (fetched < recent + authorised || fetched > recent + authorised + 20) {
        fprintf(stderr, "fetched %ld, recent %ld, authorised %ld, all %ld\n", fetched, recent,
                authorised, n);
    }
    /* (a page whose last second holds many records reads them again: a few more at most) */
    assert_true(fetched >= recent + authorised && fetched <= recent + authorised + 20);
    long filtered = 0;
    json_array_foreach(json_object_get(run, "phases"), i, x)
    {
        filtered += json_object_get(x, "filter") != NULL;
    }
    assert_int_equal(filtered, 2);
    json_decref(run);
}

/* Deleted here while Xero has it PAID: Xero can neither delete nor void it, so the push says
 * so for that invoice instead of skipping it. (Last: its payments leave the local side as
 * the engine's own write, as if never imported, so nothing deletes them in Xero.) */
static void test_paid_invoice_deleted_here_fails_clearly(void **state)
{
    (void)state;
    char *lid = sql("SELECT i.id FROM app.invoices i JOIN sync.mappings m ON m.local_id = i.id "
                    "AND m.entity = 'invoice' WHERE i.status = 'PAID' ORDER BY i.id LIMIT 1",
                    0);
    assert_non_null(lid);
    char *xid = xero_id_of("invoice", lid);
    free(sql("WITH m AS (SELECT set_config('xs.origin', 'engine', true)) DELETE FROM "
             "app.payments p USING m WHERE p.invoice_id = $1 RETURNING p.id",
             1, lid));
    long posts = xst_engine_sim_calls(E, "POST /Invoices", 0);
    free(sql("DELETE FROM app.invoices WHERE id = $1 RETURNING id", 1, lid));
    expect_refused("invoice", "can neither delete nor void a PAID invoice");
    expect_untouched(xid, posts, "PAID");
    free(lid);
    free(xid);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (getenv("XST_ONLY") != NULL) {
        cmocka_set_test_filter(getenv("XST_ONLY")); /* one test, by name (a glob) */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_to_the_cent),
        cmocka_unit_test(test_tiebreak_refused_falls_back),
        cmocka_unit_test(test_new_contact_and_invoice_reach_xero_in_order),
        cmocka_unit_test(test_push_blocked_on_its_contact),
        cmocka_unit_test(test_pull_blocked_on_its_contact),
        cmocka_unit_test(test_forbidden_transitions_fail_clearly),
        cmocka_unit_test(test_a_line_edit_is_an_invoice_change),
        cmocka_unit_test(test_payments_imported_to_the_cent),
        cmocka_unit_test(test_payments_pushed_and_checked),
        cmocka_unit_test(test_contact_invoice_payment_in_one_go),
        cmocka_unit_test(test_rest_invoices_and_payments),
        cmocka_unit_test(test_two_phase_import),
        cmocka_unit_test(test_paid_invoice_deleted_here_fails_clearly),
    };
    int rc = xst_result(cmocka_run_group_tests(tests, setup, teardown));
    curl_global_cleanup();
    return rc;
}
