/*
 * sim_invoices_test.c: xero-sim's Invoices, Payments, Accounts and BankTransactions: totals
 * from lines in exact decimals (4-place unit amounts, quantities, discounts, Exclusive,
 * Inclusive, NoTax), ACCREC number uniqueness and ACCPAY non-uniqueness, every status
 * transition allowed and refused, line items (stable LineItemIDs, updated in place, replaced,
 * locked by payments), payments (created, never above the amount due, deleted one at a time
 * by POST /Payments/{PaymentID}, never edited or deleted in a batch) with the invoice
 * following, the list filters, and the CurrencyRate and LineAmountTypes checks invoices and
 * bank transactions share.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simtest.h"
#include "xs/json.h"

static st_sim *t;
static char contact_id[64];

static int setup(void **state)
{
    (void)state;
    t = st_start(NULL);
    st_connect(t);
    st_reply r = st_api(t, "PUT", "/Contacts", "{\"Name\":\"Customer One\"}", NULL);
    snprintf(contact_id, sizeof(contact_id), "%s",
             st_str(st_path(r.json, "Contacts.0"), "ContactID"));
    st_reply_free(&r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_stop(t);
    return 0;
}

/* put_invoice creates one invoice from a JSON object text (the contact is added) and returns
 * the reply. */
static st_reply put_invoice(const char *fields, const char *query)
{
    char body[4096], path[128];
    snprintf(body, sizeof(body), "{\"Invoices\":[{\"Contact\":{\"ContactID\":\"%s\"},%s}]}",
             contact_id, fields);
    snprintf(path, sizeof(path), "/Invoices%s", query ? query : "");
    return st_api(t, "PUT", path, body, NULL);
}

static json_t *inv0(st_reply *r)
{
    if (r->status != 200) {
        fprintf(stderr, "%ld %s\n", r->status, r->body);
    }
    assert_int_equal(r->status, 200);
    return st_path(r->json, "Invoices.0");
}

static void assert_money(json_t *v, const char *want)
{
    if (!st_money_eq(v, want)) {
        char *txt = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
        fprintf(stderr, "want %s, got %s\n", want, txt ? txt : "(missing)");
        free(txt);
        fail();
    }
}

static void test_totals_exact(void **state)
{
    (void)state;
    /* Exclusive, 15% GST: 3 x 19.99 = 59.97; tax 8.9955 -> 9.00 (half up) */
    st_reply r = put_invoice("\"Type\":\"ACCREC\",\"LineItems\":[{\"Description\":\"Widget\","
                             "\"Quantity\":3,\"UnitAmount\":19.99,\"AccountCode\":\"200\"}]",
                             NULL);
    json_t *i = inv0(&r);
    assert_money(json_object_get(i, "SubTotal"), "59.97");
    assert_money(json_object_get(i, "TotalTax"), "9.00");
    assert_money(json_object_get(i, "Total"), "68.97");
    assert_money(json_object_get(i, "AmountDue"), "68.97");
    assert_string_equal(st_str(st_path(i, "LineItems.0"), "TaxType"), "OUTPUT2");
    assert_money(st_path(i, "LineItems.0.LineAmount"), "59.97");
    assert_string_equal(st_str(i, "Status"), "DRAFT");
    assert_string_equal(st_str(i, "LineAmountTypes"), "Exclusive");
    assert_non_null(strstr(st_str(i, "InvoiceNumber"), "INV-"));
    /* decimals are written as JSON numbers with their places */
    assert_non_null(strstr(r.body, "\"Total\":68.97"));
    assert_non_null(strstr(r.body, "\"Quantity\":3.0000"));
    st_reply_free(&r);

    /* four-place unit amounts with unitdp=4: 2.5 x 10.1234 = 25.3085 -> 25.31 */
    r = put_invoice("\"Type\":\"ACCREC\",\"LineItems\":[{\"Description\":\"Fine\","
                    "\"Quantity\":2.5,\"UnitAmount\":10.1234,\"AccountCode\":\"200\"}]",
                    "?unitdp=4");
    i = inv0(&r);
    assert_money(st_path(i, "LineItems.0.UnitAmount"), "10.1234");
    assert_non_null(strstr(r.body, "\"UnitAmount\":10.1234"));
    assert_money(st_path(i, "LineItems.0.LineAmount"), "25.31");
    assert_money(json_object_get(i, "TotalTax"), "3.80"); /* 25.31 x 0.15 = 3.7965 */
    assert_money(json_object_get(i, "Total"), "29.11");
    char path[128];
    snprintf(path, sizeof(path), "/Invoices/%s", st_str(i, "InvoiceID"));
    st_reply_free(&r);
    /* read back without unitdp: shown with 2 places; with it: exact */
    r = st_api(t, "GET", path, NULL, NULL);
    assert_non_null(strstr(r.body, "\"UnitAmount\":10.12,"));
    st_reply_free(&r);
    strcat(path, "?unitdp=4");
    r = st_api(t, "GET", path, NULL, NULL);
    assert_non_null(strstr(r.body, "\"UnitAmount\":10.1234"));
    st_reply_free(&r);
    /* without unitdp=4 the unit amount is rounded on the way in: 10.12 x 2.5 = 25.30 */
    r = put_invoice("\"Type\":\"ACCREC\",\"LineItems\":[{\"Description\":\"Coarse\","
                    "\"Quantity\":2.5,\"UnitAmount\":10.1234,\"AccountCode\":\"200\"}]",
                    NULL);
    assert_money(st_path(inv0(&r), "LineItems.0.LineAmount"), "25.30");
    st_reply_free(&r);

    /* discount 12.5% on 4 x 12.50 = 50.00 -> 43.75; quantities with 4 places:
     * 1.3333 x 3.00 = 3.9999 -> 4.00; TotalDiscount 6.25 */
    r = put_invoice("\"Type\":\"ACCREC\",\"LineItems\":["
                    "{\"Description\":\"Disc\",\"Quantity\":4,\"UnitAmount\":\"12.50\","
                    "\"DiscountRate\":12.5,\"AccountCode\":\"200\"},"
                    "{\"Description\":\"Frac\",\"Quantity\":1.3333,\"UnitAmount\":3,"
                    "\"AccountCode\":\"200\",\"TaxType\":\"NONE\"}]",
                    NULL);
    i = inv0(&r);
    assert_money(st_path(i, "LineItems.0.LineAmount"), "43.75");
    assert_money(st_path(i, "LineItems.0.DiscountRate"), "12.50");
    assert_money(st_path(i, "LineItems.1.LineAmount"), "4.00");
    assert_money(st_path(i, "LineItems.1.TaxAmount"), "0.00");
    assert_money(json_object_get(i, "SubTotal"), "47.75");
    assert_money(json_object_get(i, "TotalTax"), "6.56"); /* 43.75 x 0.15 = 6.5625 */
    assert_money(json_object_get(i, "Total"), "54.31");
    assert_money(json_object_get(i, "TotalDiscount"), "6.25");
    assert_true(json_is_true(json_object_get(i, "IsDiscounted")));
    st_reply_free(&r);

    /* Inclusive: 115.00 including 15% is 100.00 + 15.00; 10.00 incl. is 8.70 + 1.30 */
    r = put_invoice("\"Type\":\"ACCREC\",\"LineAmountTypes\":\"Inclusive\",\"LineItems\":["
                    "{\"Description\":\"A\",\"Quantity\":1,\"UnitAmount\":115,\"AccountCode\":"
                    "\"200\"},{\"Description\":\"B\",\"Quantity\":1,\"UnitAmount\":10,"
                    "\"AccountCode\":\"200\"}]",
                    NULL);
    i = inv0(&r);
    assert_money(st_path(i, "LineItems.0.TaxAmount"), "15.00");
    assert_money(st_path(i, "LineItems.1.TaxAmount"), "1.30");
    assert_money(json_object_get(i, "SubTotal"), "108.70");
    assert_money(json_object_get(i, "TotalTax"), "16.30");
    assert_money(json_object_get(i, "Total"), "125.00");
    st_reply_free(&r);

    /* NoTax; a LineAmount alone; an explicit TaxAmount kept */
    r = put_invoice("\"Type\":\"ACCPAY\",\"LineAmountTypes\":\"NoTax\",\"LineItems\":["
                    "{\"Description\":\"Only amount\",\"LineAmount\":99.95,\"AccountCode\":"
                    "\"429\"}]",
                    NULL);
    i = inv0(&r);
    assert_money(json_object_get(i, "TotalTax"), "0.00");
    assert_money(json_object_get(i, "Total"), "99.95");
    assert_money(st_path(i, "LineItems.0.Quantity"), "1");
    st_reply_free(&r);
    r = put_invoice("\"Type\":\"ACCPAY\",\"LineItems\":[{\"Description\":\"Manual tax\","
                    "\"Quantity\":1,\"UnitAmount\":100,\"TaxAmount\":14.99,\"AccountCode\":"
                    "\"429\"}]",
                    NULL);
    assert_money(json_object_get(inv0(&r), "TotalTax"), "14.99");
    st_reply_free(&r);
    /* a LineAmount contradicting Quantity x UnitAmount is refused */
    r = put_invoice("\"Type\":\"ACCREC\",\"LineItems\":[{\"Description\":\"Bad\",\"Quantity\":2,"
                    "\"UnitAmount\":10,\"LineAmount\":25,\"AccountCode\":\"200\"}]",
                    NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* a line without a description, an unknown account or tax type */
    r = put_invoice("\"Type\":\"ACCREC\",\"LineItems\":[{\"Quantity\":1,\"UnitAmount\":1,"
                    "\"AccountCode\":\"999\",\"TaxType\":\"BOGUS\"}]",
                    "?summarizeErrors=false");
    i = inv0(&r);
    assert_string_equal(st_str(i, "StatusAttributeString"), "ERROR");
    assert_int_equal(json_array_size(json_object_get(i, "ValidationErrors")), 3);
    st_reply_free(&r);
}

static void test_numbers(void **state)
{
    (void)state;
    const char *line = "\"LineItems\":[{\"Description\":\"x\",\"Quantity\":1,\"UnitAmount\":50,"
                       "\"AccountCode\":\"200\"}]";
    char f[512];
    snprintf(f, sizeof(f), "\"Type\":\"ACCREC\",\"InvoiceNumber\":\"SALE-77\",%s", line);
    st_reply r = put_invoice(f, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = put_invoice(f, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(st_path(r.json, "Elements.0.ValidationErrors.0"), "Message"),
                        "Invoice # must be unique.");
    st_reply_free(&r);
    /* case and spacing do not make it different */
    snprintf(f, sizeof(f), "\"Type\":\"ACCREC\",\"InvoiceNumber\":\" sale-77\",%s", line);
    r = put_invoice(f, NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* ACCPAY numbers are not unique: the same bill twice is two bills, and a duplicate */
    json_decref(st_ctl(t, "POST", "/_sim/stats/reset", NULL, 200));
    snprintf(f, sizeof(f),
             "\"Type\":\"ACCPAY\",\"InvoiceNumber\":\"SUP-1\",\"Status\":\"AUTHORISED\",%s", line);
    r = put_invoice(f, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = put_invoice(f, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Invoices?where=InvoiceNumber%3D%3D%22SUP-1%22", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "Invoices")), 2);
    st_reply_free(&r);
    json_t *st = st_ctl(t, "GET", "/_sim/stats", NULL, 200);
    assert_int_equal(json_integer_value(st_path(st, "duplicates.by_kind.Invoices")), 1);
    json_decref(st);
    /* GET by number (ACCREC), and the InvoiceNumbers filter */
    r = st_api(t, "GET", "/Invoices/SALE-77", NULL, NULL);
    assert_string_equal(st_str(inv0(&r), "InvoiceNumber"), "SALE-77");
    char id[64], line_id[64], path[128];
    snprintf(id, sizeof(id), "%s", st_str(inv0(&r), "InvoiceID"));
    snprintf(line_id, sizeof(line_id), "%s",
             st_str(st_path(inv0(&r), "LineItems.0"), "LineItemID"));
    st_reply_free(&r);
    r = st_api(t, "GET", "/Invoices?InvoiceNumbers=SALE-77,NOPE-1", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "Invoices")), 1);
    st_reply_free(&r);
    /* an update naming a LineItemID changes that line and keeps its id; lines left out go */
    char body[512];
    snprintf(body, sizeof(body),
             "{\"LineItems\":[{\"LineItemID\":\"%s\",\"Quantity\":3},{\"Description\":\"new\","
             "\"Quantity\":1,\"UnitAmount\":1,\"AccountCode\":\"200\"}]}",
             line_id);
    snprintf(path, sizeof(path), "/Invoices/%s", id);
    r = st_api(t, "POST", path, body, NULL);
    json_t *i = inv0(&r);
    assert_int_equal(json_array_size(json_object_get(i, "LineItems")), 2);
    assert_string_equal(st_str(st_path(i, "LineItems.0"), "LineItemID"), line_id);
    assert_string_equal(st_str(st_path(i, "LineItems.0"), "Description"), "x");
    assert_money(st_path(i, "LineItems.0.LineAmount"), "150.00");
    assert_money(json_object_get(i, "SubTotal"), "151.00");
    st_reply_free(&r);
}

/* set_status POSTs a status change; returns the HTTP status. */
static long set_status(const char *id, const char *status)
{
    char path[128], body[128];
    snprintf(path, sizeof(path), "/Invoices/%s", id);
    snprintf(body, sizeof(body), "{\"Status\":\"%s\"}", status);
    st_reply r = st_api(t, "POST", path, body, NULL);
    long s = r.status;
    st_reply_free(&r);
    return s;
}

static void new_invoice(const char *status, char id[64])
{
    char f[512];
    snprintf(f, sizeof(f),
             "\"Type\":\"ACCREC\",\"Status\":\"%s\",\"LineItems\":[{\"Description\":\"x\","
             "\"Quantity\":1,\"UnitAmount\":100,\"AccountCode\":\"200\"}]",
             status);
    st_reply r = put_invoice(f, NULL);
    snprintf(id, 64, "%s", st_str(inv0(&r), "InvoiceID"));
    st_reply_free(&r);
}

static void test_transitions(void **state)
{
    (void)state;
    char id[64];
    /* created as DRAFT, SUBMITTED or AUTHORISED only */
    const char *bad_new[] = {"PAID", "VOIDED", "DELETED"};
    for (int k = 0; k < 3; k++) {
        char f[256];
        snprintf(f, sizeof(f), "\"Type\":\"ACCREC\",\"Status\":\"%s\"", bad_new[k]);
        st_reply r = put_invoice(f, NULL);
        assert_int_equal(r.status, 400);
        st_reply_free(&r);
    }
    /* DRAFT -> SUBMITTED -> DRAFT -> AUTHORISED -> VOIDED; nothing after VOIDED */
    new_invoice("DRAFT", id);
    assert_int_equal(set_status(id, "PAID"), 400);
    assert_int_equal(set_status(id, "VOIDED"), 400);
    assert_int_equal(set_status(id, "SUBMITTED"), 200);
    assert_int_equal(set_status(id, "DRAFT"), 200);
    assert_int_equal(set_status(id, "AUTHORISED"), 200);
    assert_int_equal(set_status(id, "DRAFT"), 400);
    assert_int_equal(set_status(id, "SUBMITTED"), 400);
    assert_int_equal(set_status(id, "DELETED"), 400);
    assert_int_equal(set_status(id, "PAID"), 400);
    assert_int_equal(set_status(id, "VOIDED"), 200);
    assert_int_equal(set_status(id, "AUTHORISED"), 400);
    assert_int_equal(set_status(id, "DRAFT"), 400);
    assert_int_equal(set_status(id, "DELETED"), 400);
    char path[128];
    snprintf(path, sizeof(path), "/Invoices/%s", id);
    st_reply r = st_api(t, "POST", path, "{\"Reference\":\"too late\"}", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    r = st_api(t, "GET", path, NULL, NULL);
    assert_money(json_object_get(inv0(&r), "AmountDue"), "0.00");
    st_reply_free(&r);
    /* DRAFT -> DELETED and SUBMITTED -> DELETED; DELETED is final */
    new_invoice("DRAFT", id);
    assert_int_equal(set_status(id, "DELETED"), 200);
    assert_int_equal(set_status(id, "DRAFT"), 400);
    new_invoice("SUBMITTED", id);
    assert_int_equal(set_status(id, "DELETED"), 200);
    assert_int_equal(set_status(id, "SUBMITTED"), 400);
    /* AUTHORISED needs account codes on every line and at least one line */
    st_reply x = put_invoice("\"Type\":\"ACCREC\",\"Status\":\"AUTHORISED\",\"LineItems\":"
                             "[{\"Description\":\"no code\",\"Quantity\":1,\"UnitAmount\":1}]",
                             NULL);
    assert_int_equal(x.status, 400);
    st_reply_free(&x);
    x = put_invoice("\"Type\":\"ACCREC\",\"Status\":\"AUTHORISED\"", NULL);
    assert_int_equal(x.status, 400);
    st_reply_free(&x);
    /* the Type never changes */
    new_invoice("DRAFT", id);
    snprintf(path, sizeof(path), "/Invoices/%s", id);
    r = st_api(t, "POST", path, "{\"Type\":\"ACCPAY\"}", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* an AUTHORISED invoice without payments may still be edited */
    assert_int_equal(set_status(id, "AUTHORISED"), 200);
    r = st_api(t, "POST", path,
               "{\"LineItems\":[{\"Description\":\"more\",\"Quantity\":2,\"UnitAmount\":100,"
               "\"AccountCode\":\"200\"}]}",
               NULL);
    assert_money(json_object_get(inv0(&r), "Total"), "230.00");
    assert_money(json_object_get(inv0(&r), "AmountDue"), "230.00");
    st_reply_free(&r);
}

static st_reply pay(const char *invoice_id, const char *amount, const char *query)
{
    char body[512], path[64];
    snprintf(body, sizeof(body),
             "{\"Payments\":[{\"Invoice\":{\"InvoiceID\":\"%s\"},\"Account\":{\"Code\":\"090\"},"
             "\"Date\":\"2024-03-01\",\"Amount\":%s,\"Reference\":\"r\"}]}",
             invoice_id, amount);
    snprintf(path, sizeof(path), "/Payments%s", query ? query : "");
    return st_api(t, "PUT", path, body, NULL);
}

/* delete_payment POSTs {"Status":"DELETED"} to /Payments/{pid}; returns the HTTP status. */
static long delete_payment(const char *pid)
{
    char path[128];
    snprintf(path, sizeof(path), "/Payments/%s", pid);
    st_reply r = st_api(t, "POST", path, "{\"Status\":\"DELETED\"}", NULL);
    long status = r.status;
    if (status == 200) {
        assert_string_equal(st_str(st_path(r.json, "Payments.0"), "Status"), "DELETED");
    }
    st_reply_free(&r);
    return status;
}

/* assert_invoice_paid reads the invoice at path and checks its Status, AmountPaid, AmountDue
 * and how many payments it lists. */
static void assert_invoice_paid(const char *path, const char *status, const char *paid,
                                const char *due, size_t npay)
{
    st_reply r = st_api(t, "GET", path, NULL, NULL);
    json_t *i = inv0(&r);
    assert_string_equal(st_str(i, "Status"), status);
    assert_money(json_object_get(i, "AmountPaid"), paid);
    assert_money(json_object_get(i, "AmountDue"), due);
    assert_int_equal(json_array_size(json_object_get(i, "Payments")), npay);
    st_reply_free(&r);
}

static void test_payments(void **state)
{
    (void)state;
    char id[64], path[128];
    new_invoice("AUTHORISED", id); /* 115.00 */
    snprintf(path, sizeof(path), "/Invoices/%s", id);
    /* more than due is refused */
    st_reply r = pay(id, "115.01", NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(st_path(r.json, "Elements.0.ValidationErrors.0"), "Message"),
                        "Payment amount exceeds the amount outstanding on this document.");
    st_reply_free(&r);
    /* a part payment */
    r = pay(id, "15.00", NULL);
    assert_int_equal(r.status, 200);
    json_t *p = st_path(r.json, "Payments.0");
    char pid[64];
    snprintf(pid, sizeof(pid), "%s", st_str(p, "PaymentID"));
    assert_string_equal(st_str(p, "PaymentType"), "ACCRECPAYMENT");
    assert_string_equal(st_str(p, "Status"), "AUTHORISED");
    assert_money(st_path(p, "Invoice.AmountDue"), "100.00");
    st_reply_free(&r);
    assert_invoice_paid(path, "AUTHORISED", "15.00", "100.00", 1);
    /* with a payment: lines are locked, voiding refused, the reference may change */
    r = st_api(t, "POST", path,
               "{\"LineItems\":[{\"Description\":\"y\",\"Quantity\":1,\"UnitAmount\":1,"
               "\"AccountCode\":\"200\"}]}",
               NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    assert_int_equal(set_status(id, "VOIDED"), 400);
    r = st_api(t, "POST", path, "{\"Reference\":\"paid in part\"}", NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    /* two payments in one request that together exceed the amount due: the second fails */
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"Payments\":[{\"Invoice\":{\"InvoiceID\":\"%s\"},\"Account\":{\"Code\":\"090\"},"
             "\"Amount\":60},{\"Invoice\":{\"InvoiceID\":\"%s\"},\"Account\":{\"Code\":\"090\"},"
             "\"Amount\":60}]}",
             id, id);
    r = st_api(t, "PUT", "/Payments?summarizeErrors=false", body, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(st_path(r.json, "Payments.0"), "StatusAttributeString"), "OK");
    assert_string_equal(st_str(st_path(r.json, "Payments.1"), "StatusAttributeString"), "ERROR");
    st_reply_free(&r);
    /* the rest: PAID, with FullyPaidOnDate */
    r = pay(id, "40", NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = st_api(t, "GET", path, NULL, NULL);
    json_t *i = inv0(&r);
    assert_string_equal(st_str(i, "Status"), "PAID");
    assert_money(json_object_get(i, "AmountDue"), "0.00");
    assert_non_null(json_object_get(i, "FullyPaidOnDate"));
    st_reply_free(&r);
    assert_int_equal(set_status(id, "AUTHORISED"), 400);
    /* paying a PAID invoice is refused */
    r = pay(id, "1", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* a payment is never edited ... */
    char ppath[128];
    snprintf(ppath, sizeof(ppath), "/Payments/%s", pid);
    r = st_api(t, "POST", ppath, "{\"Amount\":10}", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* ... only deleted: the invoice goes back to AUTHORISED with 15.00 due */
    r = st_api(t, "POST", ppath, "{\"Status\":\"DELETED\"}", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(st_path(r.json, "Payments.0"), "Status"), "DELETED");
    st_reply_free(&r);
    r = st_api(t, "POST", ppath, "{\"Status\":\"DELETED\"}", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    assert_invoice_paid(path, "AUTHORISED", "100.00", "15.00", 2);
    /* deleted payments stay listed with Status DELETED */
    r = st_api(t, "GET", "/Payments?where=Status%3D%3D%22DELETED%22", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "Payments")), 1);
    st_reply_free(&r);
    /* no payments against drafts or into a revenue account */
    char draft[64];
    new_invoice("DRAFT", draft);
    r = pay(draft, "1", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    snprintf(body, sizeof(body),
             "{\"Invoice\":{\"InvoiceID\":\"%s\"},\"Account\":{\"Code\":\"200\"},\"Amount\":1}",
             id);
    r = st_api(t, "PUT", "/Payments", body, NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* the contact's balance and IsCustomer follow */
    char cpath[128];
    snprintf(cpath, sizeof(cpath), "/Contacts/%s", contact_id);
    r = st_api(t, "GET", cpath, NULL, NULL);
    json_t *c = st_path(r.json, "Contacts.0");
    assert_true(json_is_true(json_object_get(c, "IsCustomer")));
    assert_non_null(st_path(c, "Balances.AccountsReceivable.Outstanding"));
    st_reply_free(&r);
}

/* line_ids copies the LineItemIDs of invoice i's lines into ids (n at most 8). */
static size_t line_ids(json_t *i, char ids[8][64])
{
    json_t *lines = json_object_get(i, "LineItems");
    size_t n = json_array_size(lines);
    assert_true(n <= 8);
    for (size_t k = 0; k < n; k++) {
        const char *id = st_str(json_array_get(lines, k), "LineItemID");
        assert_int_equal(strlen(id), 36);
        assert_string_not_equal(id, "00000000-0000-0000-0000-000000000000");
        snprintf(ids[k], 64, "%s", id);
    }
    return n;
}

/* assert_new_id checks that id is none of ids[0..n). */
static void assert_new_id(const char *id, char ids[8][64], size_t n)
{
    for (size_t k = 0; k < n; k++) {
        assert_string_not_equal(id, ids[k]);
    }
}

/* assert_line_ids reads the invoice at path and checks its lines' ids are want[0..n) and its
 * SubTotal is subtotal. */
static void assert_line_ids(const char *path, char want[8][64], size_t n, const char *subtotal)
{
    char got[8][64];
    st_reply r = st_api(t, "GET", path, NULL, NULL);
    assert_int_equal(line_ids(inv0(&r), got), n);
    for (size_t k = 0; k < n; k++) {
        assert_string_equal(got[k], want[k]);
    }
    assert_money(json_object_get(inv0(&r), "SubTotal"), subtotal);
    st_reply_free(&r);
}

/* first_error returns the first validation message of a 400 ValidationException. */
static const char *first_error(st_reply *r)
{
    assert_int_equal(r->status, 400);
    return st_str(st_path(r->json, "Elements.0.ValidationErrors.0"), "Message");
}

static void test_line_items(void **state)
{
    (void)state;
    st_reply r = put_invoice(
        "\"Type\":\"ACCREC\",\"LineItems\":["
        "{\"Description\":\"A\",\"Quantity\":1,\"UnitAmount\":10,\"AccountCode\":\"200\"},"
        "{\"Description\":\"B\",\"Quantity\":2,\"UnitAmount\":20,\"AccountCode\":\"200\"},"
        "{\"Description\":\"C\",\"Quantity\":3,\"UnitAmount\":30,\"AccountCode\":\"200\"}]",
        NULL);
    char ids[8][64], now[8][64], path[128], body[2048];
    assert_int_equal(line_ids(inv0(&r), ids), 3);
    assert_string_not_equal(ids[0], ids[1]);
    assert_string_not_equal(ids[1], ids[2]);
    snprintf(path, sizeof(path), "/Invoices/%s", st_str(inv0(&r), "InvoiceID"));
    st_reply_free(&r);
    assert_line_ids(path, ids, 3, "140.00"); /* every reply carries the same ids */

    /* C changed in place, a new line D, A unchanged; B left out is deleted; the reply's
     * order is the order sent */
    snprintf(body, sizeof(body),
             "{\"LineItems\":[{\"LineItemID\":\"%s\",\"UnitAmount\":31},"
             "{\"Description\":\"D\",\"Quantity\":1,\"UnitAmount\":4,\"AccountCode\":"
             "\"200\"},{\"LineItemID\":\"%s\"}]}",
             ids[2], ids[0]);
    r = st_api(t, "POST", path, body, NULL);
    json_t *i = inv0(&r);
    assert_int_equal(line_ids(i, now), 3);
    assert_string_equal(now[0], ids[2]);
    assert_string_equal(now[2], ids[0]);
    assert_new_id(now[1], ids, 3);
    assert_string_equal(st_str(st_path(i, "LineItems.0"), "Description"), "C");
    assert_money(st_path(i, "LineItems.0.LineAmount"), "93.00");
    assert_string_equal(st_str(st_path(i, "LineItems.1"), "Description"), "D");
    assert_string_equal(st_str(st_path(i, "LineItems.2"), "Description"), "A");
    assert_money(json_object_get(i, "SubTotal"), "107.00");
    st_reply_free(&r);
    assert_line_ids(path, now, 3, "107.00");
    memcpy(ids, now, sizeof(ids));

    /* an id that is not a line of this invoice (B's, deleted), or one sent twice: an item
     * validation error, and nothing changes */
    r = put_invoice("\"Type\":\"ACCREC\",\"LineItems\":[{\"Description\":\"other\","
                    "\"Quantity\":1,\"UnitAmount\":1}]",
                    NULL);
    char other_line[64];
    snprintf(other_line, sizeof(other_line), "%s",
             st_str(st_path(inv0(&r), "LineItems.0"), "LineItemID"));
    st_reply_free(&r);
    snprintf(body, sizeof(body), "{\"LineItems\":[{\"LineItemID\":\"%s\",\"Quantity\":5}]}",
             other_line);
    r = st_api(t, "POST", path, body, NULL);
    char want[256];
    snprintf(want, sizeof(want),
             "The line item with LineItemID %s could not be found on this document.", other_line);
    assert_string_equal(first_error(&r), want);
    st_reply_free(&r);
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "?summarizeErrors=false");
    r = st_api(t, "POST", path, body, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(inv0(&r), "StatusAttributeString"), "ERROR");
    assert_string_equal(st_str(st_path(inv0(&r), "ValidationErrors.0"), "Message"), want);
    st_reply_free(&r);
    *strchr(path, '?') = '\0';
    snprintf(body, sizeof(body),
             "{\"LineItems\":[{\"LineItemID\":\"%s\"},{\"LineItemID\":\"%s\",\"Quantity\":2}]}",
             ids[0], ids[0]);
    r = st_api(t, "POST", path, body, NULL);
    snprintf(want, sizeof(want),
             "The line item with LineItemID %s appears more than once in LineItems.", ids[0]);
    assert_string_equal(first_error(&r), want);
    st_reply_free(&r);
    /* a new invoice cannot bring ids of its own */
    snprintf(body, sizeof(body),
             "\"Type\":\"ACCREC\",\"LineItems\":[{\"LineItemID\":\"%s\",\"Description\":"
             "\"copy\",\"Quantity\":1,\"UnitAmount\":1}]",
             ids[0]);
    r = put_invoice(body, NULL);
    snprintf(want, sizeof(want),
             "The line item with LineItemID %s could not be found on this document.", ids[0]);
    assert_string_equal(first_error(&r), want);
    st_reply_free(&r);
    assert_line_ids(path, ids, 3, "107.00");

    /* lines sent again without their ids replace every line: new ids */
    r = st_api(t, "POST", path,
               "{\"LineItems\":[{\"Description\":\"C\",\"Quantity\":3,\"UnitAmount\":31,"
               "\"AccountCode\":\"200\"}]}",
               NULL);
    assert_int_equal(line_ids(inv0(&r), now), 1);
    assert_new_id(now[0], ids, 3);
    st_reply_free(&r);
    /* an update without LineItems leaves the lines alone */
    r = st_api(t, "POST", path, "{\"Reference\":\"lines stay\"}", NULL);
    assert_int_equal(line_ids(inv0(&r), ids), 1);
    assert_string_equal(ids[0], now[0]);
    st_reply_free(&r);
}

/* with_ids writes the lines of invoice reply i back as a LineItems body, every line as read
 * (ids included); the line at change (or none, -1) gets Quantity qty (and loses the amounts
 * that follow from it); the line at drop (or none) is left out; extra (or NULL) is
 * appended, except "no ids", which takes every LineItemID out instead. */
static void with_ids(json_t *i, int change, const char *qty, int drop, const char *extra, char *out,
                     size_t cap)
{
    json_t *lines = json_deep_copy(json_object_get(i, "LineItems"));
    if (extra != NULL && strcmp(extra, "no ids") == 0) {
        size_t k;
        json_t *l;
        json_array_foreach(lines, k, l)
        {
            json_object_del(l, "LineItemID");
        }
        extra = NULL;
    }
    if (change >= 0) {
        json_t *l = json_array_get(lines, (size_t)change);
        json_object_set_new(l, "Quantity", json_string(qty));
        json_object_del(l, "LineAmount"); /* they follow from the quantity */
        json_object_del(l, "TaxAmount");
    }
    if (drop >= 0) {
        json_array_remove(lines, (size_t)drop);
    }
    if (extra != NULL) {
        json_array_append_new(lines, json_loads(extra, 0, NULL));
    }
    json_t *b = json_pack("{s:o}", "LineItems", lines);
    char *txt = xs_json_dump(b, XS_JSON_COMPACT);
    snprintf(out, cap, "%s", txt);
    free(txt);
    json_decref(b);
}

static void test_lines_of_paid_invoice(void **state)
{
    (void)state;
    st_reply r = put_invoice(
        "\"Type\":\"ACCREC\",\"Status\":\"AUTHORISED\",\"Reference\":\"R\",\"LineItems\":["
        "{\"Description\":\"A\",\"Quantity\":1,\"UnitAmount\":100,\"AccountCode\":\"200\"},"
        "{\"Description\":\"B\",\"Quantity\":2,\"UnitAmount\":\"12.5\",\"AccountCode\":"
        "\"200\",\"DiscountRate\":10}]",
        NULL);
    char id[64], path[128], ids[8][64], now[8][64];
    snprintf(id, sizeof(id), "%s", st_str(inv0(&r), "InvoiceID"));
    snprintf(path, sizeof(path), "/Invoices/%s", id);
    assert_int_equal(line_ids(inv0(&r), ids), 2);
    st_reply_free(&r);
    r = pay(id, "10", NULL);
    assert_int_equal(r.status, 200);
    char pid[64];
    snprintf(pid, sizeof(pid), "%s", st_str(st_path(r.json, "Payments.0"), "PaymentID"));
    st_reply_free(&r);
    st_reply got = st_api(t, "GET", path, NULL, NULL);
    json_t *cur = inv0(&got);
    const char *locked =
        "This document cannot be edited as it has a payment or credit note allocated to it.";

    /* the same lines without their LineItemIDs are replacements: refused */
    r = st_api(t, "POST", path,
               "{\"LineItems\":[{\"Description\":\"A\",\"Quantity\":1,\"UnitAmount\":100,"
               "\"AccountCode\":\"200\"},{\"Description\":\"B\",\"Quantity\":2,"
               "\"UnitAmount\":\"12.5\",\"AccountCode\":\"200\",\"DiscountRate\":10}]}",
               NULL);
    assert_string_equal(first_error(&r), locked);
    st_reply_free(&r);
    char body[4096];
    with_ids(cur, -1, NULL, -1, "no ids", body, sizeof(body)); /* as read, amounts and all */
    r = st_api(t, "POST", path, body, NULL);
    assert_string_equal(first_error(&r), locked);
    st_reply_free(&r);
    /* with their ids and unchanged values (as read, every field): accepted, same ids */
    with_ids(cur, -1, NULL, -1, NULL, body, sizeof(body));
    r = st_api(t, "POST", path, body, NULL);
    assert_int_equal(line_ids(inv0(&r), now), 2);
    assert_string_equal(now[0], ids[0]);
    assert_string_equal(now[1], ids[1]);
    assert_money(json_object_get(inv0(&r), "AmountPaid"), "10.00");
    st_reply_free(&r);
    /* only the ids: the values stay, accepted */
    snprintf(body, sizeof(body),
             "{\"LineItems\":[{\"LineItemID\":\"%s\"},{\"LineItemID\":\"%s\"}]}", ids[0], ids[1]);
    r = st_api(t, "POST", path, body, NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    /* a changed value, a line left out, a line added, a changed LineAmount or TaxAmount:
     * refused */
    with_ids(cur, 1, "3", -1, NULL, body, sizeof(body));
    r = st_api(t, "POST", path, body, NULL);
    assert_string_equal(first_error(&r), locked);
    st_reply_free(&r);
    with_ids(cur, -1, NULL, 0, NULL, body, sizeof(body));
    r = st_api(t, "POST", path, body, NULL);
    assert_string_equal(first_error(&r), locked);
    st_reply_free(&r);
    with_ids(cur, -1, NULL, -1,
             "{\"Description\":\"C\",\"Quantity\":1,\"UnitAmount\":1,\"AccountCode\":\"200\"}",
             body, sizeof(body));
    r = st_api(t, "POST", path, body, NULL);
    assert_string_equal(first_error(&r), locked);
    st_reply_free(&r);
    const char *edits[] = {"\"Description\":\"A2\"", "\"AccountCode\":\"260\"",
                           "\"TaxType\":\"NONE\"",   "\"ItemCode\":\"SKU\"",
                           "\"DiscountRate\":5",     "\"TaxAmount\":14.99",
                           "\"UnitAmount\":99"};
    for (size_t k = 0; k < sizeof(edits) / sizeof(edits[0]); k++) {
        snprintf(body, sizeof(body),
                 "{\"LineItems\":[{\"LineItemID\":\"%s\",%s},"
                 "{\"LineItemID\":\"%s\"}]}",
                 ids[1], edits[k], ids[0]);
        r = st_api(t, "POST", path, body, NULL);
        if (r.status != 400) {
            fprintf(stderr, "edit %s: %ld %s\n", edits[k], r.status, r.body);
        }
        assert_string_equal(first_error(&r), locked);
        st_reply_free(&r);
    }
    /* the same values in another order: no line changes, the order sent is kept */
    snprintf(body, sizeof(body),
             "{\"LineItems\":[{\"LineItemID\":\"%s\",\"TaxAmount\":3.38,\"LineAmount\":22.50},"
             "{\"LineItemID\":\"%s\"}]}",
             ids[1], ids[0]);
    r = st_api(t, "POST", path, body, NULL);
    assert_int_equal(line_ids(inv0(&r), now), 2);
    assert_string_equal(now[0], ids[1]);
    assert_string_equal(now[1], ids[0]);
    assert_money(json_object_get(inv0(&r), "Total"), "140.88");
    st_reply_free(&r);
    /* Reference and DueDate may change; the date may not */
    r = st_api(t, "POST", path, "{\"Reference\":\"R2\",\"DueDate\":\"2031-01-31\"}", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(inv0(&r), "Reference"), "R2");
    assert_string_equal(st_str(inv0(&r), "DueDateString"), "2031-01-31T00:00:00");
    assert_int_equal(line_ids(inv0(&r), now), 2);
    st_reply_free(&r);
    r = st_api(t, "POST", path, "{\"Date\":\"2030-01-01\"}", NULL);
    assert_string_equal(first_error(&r), locked);
    st_reply_free(&r);
    /* an Idempotency-Key'd update replays without touching the lines again */
    const char *k[] = {"Idempotency-Key: paid-lines-1", NULL};
    with_ids(cur, -1, NULL, -1, NULL, body, sizeof(body));
    r = st_api(t, "POST", path, body, k);
    st_api_replayed(t, &r, "POST", path, body, k);
    st_reply_free(&r);
    /* once the payment is deleted the lines may be replaced again */
    assert_int_equal(delete_payment(pid), 200);
    r = st_api(t, "POST", path,
               "{\"LineItems\":[{\"Description\":\"A\",\"Quantity\":1,\"UnitAmount\":100,"
               "\"AccountCode\":\"200\"}]}",
               NULL);
    assert_int_equal(line_ids(inv0(&r), now), 1);
    assert_string_not_equal(now[0], ids[0]);
    st_reply_free(&r);
    st_reply_free(&got);
}

static void test_payment_delete(void **state)
{
    (void)state;
    char id[64], path[128], p1[64], p2[64], pp1[128], body[512];
    new_invoice("AUTHORISED", id); /* 115.00 */
    snprintf(path, sizeof(path), "/Invoices/%s", id);
    st_reply r = pay(id, "15", NULL);
    snprintf(p1, sizeof(p1), "%s", st_str(st_path(r.json, "Payments.0"), "PaymentID"));
    st_reply_free(&r);
    r = pay(id, "20", NULL);
    snprintf(p2, sizeof(p2), "%s", st_str(st_path(r.json, "Payments.0"), "PaymentID"));
    st_reply_free(&r);
    snprintf(pp1, sizeof(pp1), "/Payments/%s", p1);

    /* a batch cannot delete a payment, by PUT or POST, summarised or not */
    const char *batch = "A payment cannot be changed in a batch: payments are never edited, and "
                        "are deleted one at a time with POST /Payments/{PaymentID} and the body "
                        "{\"Status\":\"DELETED\"}.";
    snprintf(body, sizeof(body), "{\"Payments\":[{\"PaymentID\":\"%s\",\"Status\":\"DELETED\"}]}",
             p1);
    r = st_api(t, "POST", "/Payments", body, NULL);
    assert_string_equal(first_error(&r), batch);
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Payments", body, NULL);
    assert_string_equal(first_error(&r), batch);
    st_reply_free(&r);
    r = st_api(t, "POST", "/Payments?summarizeErrors=false", body, NULL);
    assert_int_equal(r.status, 200);
    json_t *e = st_path(r.json, "Payments.0");
    assert_string_equal(st_str(e, "StatusAttributeString"), "ERROR");
    assert_string_equal(st_str(st_path(e, "ValidationErrors.0"), "Message"), batch);
    st_reply_free(&r);
    r = st_api(t, "GET", pp1, NULL, NULL);
    assert_string_equal(st_str(st_path(r.json, "Payments.0"), "Status"), "AUTHORISED");
    st_reply_free(&r);

    /* POST /Payments/{PaymentID}, in the spec example's wrapped form, with a key: the
     * deleted payment comes back with its invoice as it now stands */
    const char *k[] = {"Idempotency-Key: delete-payment-1", NULL};
    const char *wrapped = "{\"Payments\":[{\"Status\":\"DELETED\"}]}";
    r = st_api(t, "POST", pp1, wrapped, k);
    assert_int_equal(r.status, 200);
    json_t *p = st_path(r.json, "Payments.0");
    assert_int_equal(json_array_size(json_object_get(r.json, "Payments")), 1);
    assert_string_equal(st_str(p, "PaymentID"), p1);
    assert_string_equal(st_str(p, "Status"), "DELETED");
    assert_money(st_path(p, "Invoice.AmountPaid"), "20.00");
    assert_money(st_path(p, "Invoice.AmountDue"), "95.00");
    /* the same request again: the recorded reply, byte for byte, not "already deleted" */
    st_api_replayed(t, &r, "POST", pp1, wrapped, k);
    st_reply_free(&r);
    /* without the key: a second deletion is an error */
    r = st_api(t, "POST", pp1, "{\"Status\":\"DELETED\"}", NULL);
    assert_string_equal(first_error(&r), "This payment has already been deleted.");
    st_reply_free(&r);
    assert_invoice_paid(path, "AUTHORISED", "20.00", "95.00", 1);

    /* paid in full, then a payment deleted: back to AUTHORISED with what is due */
    r = pay(id, "95", NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = st_api(t, "GET", path, NULL, NULL);
    assert_string_equal(st_str(inv0(&r), "Status"), "PAID");
    st_reply_free(&r);
    assert_int_equal(delete_payment(p2), 200);
    assert_invoice_paid(path, "AUTHORISED", "95.00", "20.00", 1);
    r = st_api(t, "GET", path, NULL, NULL);
    assert_null(json_object_get(inv0(&r), "FullyPaidOnDate"));
    st_reply_free(&r);
}

static void test_invoice_lists(void **state)
{
    (void)state;
    /* paged reads carry line items, unpaged ones do not (as in Xero) */
    st_reply r = st_api(t, "GET", "/Invoices?page=1", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(st_path(r.json, "Invoices.0.LineItems"));
    size_t n = json_array_size(json_object_get(r.json, "Invoices"));
    st_reply_free(&r);
    r = st_api(t, "GET", "/Invoices", NULL, NULL);
    assert_null(st_path(r.json, "Invoices.0.LineItems"));
    assert_int_equal(json_array_size(json_object_get(r.json, "Invoices")), n);
    st_reply_free(&r);
    /* Statuses and where Type */
    r = st_api(t, "GET", "/Invoices?Statuses=DRAFT,SUBMITTED", NULL, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r.json, "Invoices"), i, v)
    {
        assert_true(strcmp(st_str(v, "Status"), "DRAFT") == 0 ||
                    strcmp(st_str(v, "Status"), "SUBMITTED") == 0);
    }
    assert_true(json_array_size(json_object_get(r.json, "Invoices")) > 0);
    st_reply_free(&r);
    r = st_api(t, "GET",
               "/Invoices?where=Type%3D%3D%22ACCPAY%22%20AND%20Status%3D%3D%22AUTHORISED%22", NULL,
               NULL);
    json_array_foreach(json_object_get(r.json, "Invoices"), i, v)
    {
        assert_string_equal(st_str(v, "Type"), "ACCPAY");
        assert_string_equal(st_str(v, "Status"), "AUTHORISED");
    }
    assert_true(json_array_size(json_object_get(r.json, "Invoices")) >= 2);
    st_reply_free(&r);
    /* ContactIDs */
    char path[200];
    snprintf(path, sizeof(path), "/Invoices?page=1&ContactIDs=%s", contact_id);
    r = st_api(t, "GET", path, NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "Invoices")), n);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Invoices?ContactIDs=11111111-2222-3333-4444-555555555555", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "Invoices")), 0);
    st_reply_free(&r);
    /* a numeric where */
    r = st_api(t, "GET", "/Invoices?where=Total%3E%3D1000", NULL, NULL);
    json_array_foreach(json_object_get(r.json, "Invoices"), i, v)
    {
        assert_true(!st_money_eq(json_object_get(v, "Total"), "0"));
    }
    st_reply_free(&r);
    /* an invoice naming an unknown contact by name creates it */
    r = st_api(t, "PUT", "/Invoices",
               "{\"Type\":\"ACCPAY\",\"Contact\":{\"Name\":\"Brand New Supplier\"},"
               "\"LineItems\":[{\"Description\":\"x\",\"Quantity\":1,\"UnitAmount\":5,"
               "\"AccountCode\":\"429\"}]}",
               NULL);
    assert_int_equal(r.status, 200);
    st_reply_free(&r);
    r = st_api(t, "GET", "/Contacts?where=Name%3D%3D%22Brand%20New%20Supplier%22", NULL, NULL);
    json_t *c = st_path(r.json, "Contacts.0");
    assert_non_null(c);
    assert_true(json_is_true(json_object_get(c, "IsSupplier")));
    st_reply_free(&r);
}

static void test_accounts(void **state)
{
    (void)state;
    st_reply r = st_api(t, "GET", "/Accounts", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.json, "Accounts")) >= 20);
    assert_null(json_object_get(r.json, "pagination"));
    st_reply_free(&r);
    r = st_api(t, "GET", "/Accounts?where=Type%3D%3D%22BANK%22", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "Accounts")), 2);
    assert_string_equal(st_str(st_path(r.json, "Accounts.0"), "Class"), "ASSET");
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Accounts",
               "{\"Code\":\"201\",\"Name\":\"Online Sales\",\"Type\":\"SALES\"}", NULL);
    assert_int_equal(r.status, 200);
    json_t *a = st_path(r.json, "Accounts.0");
    assert_string_equal(st_str(a, "TaxType"), "OUTPUT2");
    assert_string_equal(st_str(a, "Class"), "REVENUE");
    char path[128];
    snprintf(path, sizeof(path), "/Accounts/%s", st_str(a, "AccountID"));
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Accounts", "{\"Code\":\"201\",\"Name\":\"Other\",\"Type\":\"SALES\"}",
               NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(st_str(st_path(r.json, "Elements.0.ValidationErrors.0"), "Message"),
                        "Please enter a unique Code.");
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Accounts", "{\"Code\":\"202\",\"Name\":\"sales\",\"Type\":\"SALES\"}",
               NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    r = st_api(t, "PUT", "/Accounts", "{\"Name\":\"Bank Two\",\"Type\":\"BANK\"}", NULL);
    assert_int_equal(r.status, 400); /* a bank account needs its number */
    st_reply_free(&r);
    /* archive and restore, delete unused; a used account cannot be deleted */
    r = st_api(t, "POST", path, "{\"Status\":\"ARCHIVED\"}", NULL);
    assert_string_equal(st_str(st_path(r.json, "Accounts.0"), "Status"), "ARCHIVED");
    st_reply_free(&r);
    r = st_api(t, "DELETE", path, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(st_path(r.json, "Accounts.0"), "Status"), "DELETED");
    st_reply_free(&r);
    r = st_api(t, "GET", "/Accounts/200", NULL, NULL);
    snprintf(path, sizeof(path), "/Accounts/%s",
             st_str(st_path(r.json, "Accounts.0"), "AccountID"));
    st_reply_free(&r);
    r = st_api(t, "DELETE", path, NULL, NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* system accounts cannot be archived */
    r = st_api(t, "GET", "/Accounts/610", NULL, NULL);
    snprintf(path, sizeof(path), "/Accounts/%s",
             st_str(st_path(r.json, "Accounts.0"), "AccountID"));
    st_reply_free(&r);
    r = st_api(t, "POST", path, "{\"Status\":\"ARCHIVED\"}", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
}

/* put_spend creates one SPEND bank transaction of 57.50 for fuel from bank account 090 with
 * more fields (JSON object members) and returns the reply. */
static st_reply put_spend(const char *fields, const char *query)
{
    char body[1024], path[128];
    snprintf(body, sizeof(body),
             "{\"BankTransactions\":[{\"Type\":\"SPEND\",\"Contact\":{\"ContactID\":\"%s\"},"
             "\"BankAccount\":{\"Code\":\"090\"},%s,\"LineItems\":[{\"Description\":\"Fuel\","
             "\"Quantity\":1,\"UnitAmount\":57.50,\"AccountCode\":\"493\"}]}]}",
             contact_id, fields);
    snprintf(path, sizeof(path), "/BankTransactions%s", query ? query : "");
    return st_api(t, "PUT", path, body, NULL);
}

/* test_rate_and_amount_types: CurrencyRate must be greater than zero and LineAmountTypes one
 * of the three, on invoices and bank transactions alike. */
static void test_rate_and_amount_types(void **state)
{
    (void)state;
    const char *rate_error = "CurrencyRate must be greater than zero.";
    const char *lat_error = "LineAmountTypes must be Exclusive, Inclusive or NoTax.";
    st_reply r = put_invoice("\"Type\":\"ACCREC\",\"CurrencyCode\":\"USD\",\"CurrencyRate\":0,"
                             "\"LineAmountTypes\":\"Gross\"",
                             "?summarizeErrors=false");
    st_assert_errors(inv0(&r), rate_error, lat_error);
    st_reply_free(&r);
    r = put_invoice("\"Type\":\"ACCREC\",\"CurrencyCode\":\"USD\",\"CurrencyRate\":0.61,"
                    "\"LineAmountTypes\":\"notax\"",
                    NULL);
    json_t *i = inv0(&r);
    assert_money(json_object_get(i, "CurrencyRate"), "0.61");
    assert_string_equal(st_str(i, "LineAmountTypes"), "NoTax");
    st_reply_free(&r);
    r = put_spend("\"CurrencyRate\":-1,\"LineAmountTypes\":\"x\"", "?summarizeErrors=false");
    assert_int_equal(r.status, 200);
    st_assert_errors(st_path(r.json, "BankTransactions.0"), rate_error, lat_error);
    st_reply_free(&r);
}

static void test_bank_transactions(void **state)
{
    (void)state;
    st_reply r = put_spend("\"LineAmountTypes\":\"Inclusive\"", NULL);
    assert_int_equal(r.status, 200);
    json_t *b = st_path(r.json, "BankTransactions.0");
    assert_money(json_object_get(b, "Total"), "57.50");
    assert_money(json_object_get(b, "TotalTax"), "7.50");
    assert_money(json_object_get(b, "SubTotal"), "50.00");
    assert_string_equal(st_str(b, "Status"), "AUTHORISED");
    assert_string_equal(st_str(st_path(b, "BankAccount"), "Code"), "090");
    char path[128];
    snprintf(path, sizeof(path), "/BankTransactions/%s", st_str(b, "BankTransactionID"));
    st_reply_free(&r);
    r = st_api(t, "GET", "/BankTransactions?page=1", NULL, NULL);
    assert_int_equal(json_integer_value(st_path(r.json, "pagination.itemCount")), 1);
    st_reply_free(&r);
    /* a bank transaction into a non-bank account is refused */
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"Type\":\"RECEIVE\",\"Contact\":{\"ContactID\":\"%s\"},\"BankAccount\":{\"Code\":"
             "\"200\"},\"LineItems\":[{\"Description\":\"x\",\"Quantity\":1,\"UnitAmount\":1,"
             "\"AccountCode\":\"260\"}]}",
             contact_id);
    r = st_api(t, "PUT", "/BankTransactions", body, NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
    /* its lines follow the invoices' LineItemID rules */
    r = st_api(t, "GET", path, NULL, NULL);
    char line_id[64];
    snprintf(line_id, sizeof(line_id), "%s",
             st_str(st_path(r.json, "BankTransactions.0.LineItems.0"), "LineItemID"));
    assert_int_equal(strlen(line_id), 36);
    st_reply_free(&r);
    snprintf(body, sizeof(body), "{\"LineItems\":[{\"LineItemID\":\"%s\",\"UnitAmount\":60}]}",
             line_id);
    r = st_api(t, "POST", path, body, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(st_str(st_path(r.json, "BankTransactions.0.LineItems.0"), "LineItemID"),
                        line_id);
    assert_money(st_path(r.json, "BankTransactions.0.Total"), "60.00");
    st_reply_free(&r);
    r = st_api(t, "POST", path,
               "{\"LineItems\":[{\"LineItemID\":\"11111111-2222-3333-4444-555555555555\","
               "\"Description\":\"x\",\"Quantity\":1,\"UnitAmount\":1,\"AccountCode\":\"493\"}]}",
               NULL);
    assert_string_equal(first_error(&r), "The line item with LineItemID "
                                         "11111111-2222-3333-4444-555555555555 could not be found "
                                         "on this document.");
    st_reply_free(&r);
    r = st_api(t, "POST", path, "{\"Status\":\"DELETED\"}", NULL);
    assert_string_equal(st_str(st_path(r.json, "BankTransactions.0"), "Status"), "DELETED");
    st_reply_free(&r);
    r = st_api(t, "POST", path, "{\"Reference\":\"after delete\"}", NULL);
    assert_int_equal(r.status, 400);
    st_reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_totals_exact),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_transitions),
        cmocka_unit_test(test_payments),
        cmocka_unit_test(test_line_items),
        cmocka_unit_test(test_lines_of_paid_invoice),
        cmocka_unit_test(test_payment_delete),
        cmocka_unit_test(test_invoice_lists),
        cmocka_unit_test(test_accounts),
        cmocka_unit_test(test_bank_transactions),
        cmocka_unit_test(test_rate_and_amount_types),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
