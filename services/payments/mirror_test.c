/*
 * mirror_test.c: how the read-only entities read Xero's records (account.c, banktx.c): every
 * field into the canonical form, amounts exact to their places, and every record the local
 * table could not hold refused alone, with a reason (what is wrong with an amount: too many
 * places, not a number, out of range), rather than failing a page's write. And the domain
 * layer's check of an amount the host application gives (xs_domain_check_amount).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../invoices/account.h"
#include "banktx.h"
#include "xs/json.h"

#define UUID_A "6f0c3c1e-9a3b-4c55-8c1a-1d2e3f405060"
#define UUID_C "0d1e2f30-4152-4637-8899-aabbccddeeff"

static json_t *parse(const char *text)
{
    char err[XS_JSON_ERR_MAX];
    json_t *j = xs_json_parse(text, strlen(text), err);
    if (j == NULL) {
        fail_msg("bad test JSON: %s", err);
    }
    return j;
}

/* read runs xs_domain_from_xero on text; returns the canonical record (new) or NULL with why. */
static json_t *read_rec(const xs_entity_ops *ops, const char *text, char why[XS_DOMAIN_WHY_MAX],
                        xs_err *e)
{
    json_t *x = parse(text);
    json_t *rec = NULL;
    char id[XS_ID_MAX];
    xs_time at = 0;
    why[0] = '\0';
    *e = xs_domain_from_xero(ops, x, &rec, id, &at, why);
    json_decref(x);
    if (*e == XS_OK) {
        assert_non_null(rec);
        assert_true(at > 0);
    } else {
        assert_null(rec);
        assert_true(why[0] != '\0');
    }
    return rec;
}

/* expect_refusals reads each bad[i][0], which must be refused with a reason naming bad[i][1]. */
static void expect_refusals(const xs_entity_ops *ops, const char *const (*bad)[2], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char why[XS_DOMAIN_WHY_MAX];
        xs_err e;
        assert_null(read_rec(ops, bad[i][0], why, &e));
        assert_int_equal(e, XS_EPARSE);
        if (strstr(why, bad[i][1]) == NULL) {
            fail_msg("case %zu: \"%s\" does not name %s", i, why, bad[i][1]);
        }
    }
}

static void expect_str(const json_t *rec, const char *key, const char *want)
{
    const json_t *v = json_object_get(rec, key);
    if (want == NULL) {
        assert_true(json_is_null(v));
    } else {
        assert_string_equal(json_string_value(v), want);
    }
}

static void test_account_fields(void **state)
{
    (void)state;
    char why[XS_DOMAIN_WHY_MAX];
    xs_err e;
    json_t *rec = read_rec(&account_ops,
                           "{\"AccountID\":\"" UUID_A "\",\"Code\":\"090\",\"Name\":\" Business "
                           "Bank \",\"Type\":\"BANK\",\"BankAccountNumber\":\"0102030405\","
                           "\"Status\":\"ACTIVE\",\"CurrencyCode\":\"NZD\",\"TaxType\":\"NONE\","
                           "\"Class\":\"ASSET\",\"Description\":\"\","
                           "\"EnablePaymentsToAccount\":false,"
                           "\"UpdatedDateUTC\":\"/Date(1573755038314+0000)/\"}",
                           why, &e);
    assert_int_equal(e, XS_OK);
    expect_str(rec, "code", "090");
    expect_str(rec, "name", "Business Bank"); /* trimmed */
    expect_str(rec, "type", "BANK");
    expect_str(rec, "bank_account_number", "0102030405");
    expect_str(rec, "status", "ACTIVE");
    expect_str(rec, "currency_code", "NZD");
    expect_str(rec, "class", "ASSET");
    expect_str(rec, "description", NULL); /* empty is null */
    assert_true(json_is_false(json_object_get(rec, "enable_payments")));
    json_decref(rec);

    /* No Status reads as ACTIVE; no currency for a non-bank account. */
    rec = read_rec(&account_ops,
                   "{\"AccountID\":\"" UUID_A "\",\"Code\":\"200\",\"Name\":\"Sales\",\"Type\":"
                   "\"REVENUE\",\"EnablePaymentsToAccount\":true,\"UpdatedDateUTC\":"
                   "\"2024-05-01T10:00:00\"}",
                   why, &e);
    assert_int_equal(e, XS_OK);
    expect_str(rec, "status", "ACTIVE");
    expect_str(rec, "currency_code", NULL);
    assert_true(json_is_true(json_object_get(rec, "enable_payments")));
    json_decref(rec);
}

static void test_account_refusals(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"{\"AccountID\":\"" UUID_A
         "\",\"Type\":\"BANK\",\"UpdatedDateUTC\":\"2024-05-01T10:00:00\"}",
         "name"},
        {"{\"AccountID\":\"" UUID_A "\",\"Name\":\"X\",\"Type\":\"bank\",\"UpdatedDateUTC\":"
         "\"2024-05-01T10:00:00\"}",
         "Type"},
        {"{\"AccountID\":\"" UUID_A "\",\"Name\":\"X\",\"Type\":\"BANK\",\"Status\":\"GONE\","
         "\"UpdatedDateUTC\":\"2024-05-01T10:00:00\"}",
         "Status"},
        {"{\"AccountID\":\"" UUID_A "\",\"Name\":\"X\",\"Type\":\"BANK\",\"CurrencyCode\":\"nzd\","
         "\"UpdatedDateUTC\":\"2024-05-01T10:00:00\"}",
         "CurrencyCode"},
        {"{\"AccountID\":\"" UUID_A "\",\"Name\":\"X\",\"Type\":\"BANK\",\"Class\":\"MAGIC\","
         "\"UpdatedDateUTC\":\"2024-05-01T10:00:00\"}",
         "Class"},
        {"{\"AccountID\":\"" UUID_A "\",\"Name\":\"X\",\"Type\":\"BANK\"}", "UpdatedDateUTC"},
    };
    expect_refusals(&account_ops, bad, sizeof(bad) / sizeof(bad[0]));
}

#define BT_HEAD                                                                                    \
    "{\"BankTransactionID\":\"" UUID_A "\",\"Type\":\"SPEND\",\"Contact\":{\"ContactID\":"         \
    "\"" UUID_C "\",\"Name\":\"Acme\"},\"BankAccount\":{\"AccountID\":\"" UUID_A "\",\"Code\":"    \
    "\"090\"},\"Date\":\"/Date(1714521600000+0000)/\",\"Reference\":\"INV 7\",\"Status\":"         \
    "\"VOIDED\",\"CurrencyCode\":\"NZD\",\"LineAmountTypes\":\"Exclusive\","                       \
    "\"UpdatedDateUTC\":\"/Date(1714525200000+0000)/\",\"IsReconciled\":true,"

static void test_bank_transaction_fields(void **state)
{
    (void)state;
    char why[XS_DOMAIN_WHY_MAX];
    xs_err e;
    json_t *rec = read_rec(&bank_transaction_ops,
                           BT_HEAD "\"SubTotal\":100.10,\"TotalTax\":15.02,\"Total\":115.12,"
                                   "\"LineItems\":[{\"Description\":\"Paper\",\"Quantity\":3.0000,"
                                   "\"UnitAmount\":33.3667,\"AccountCode\":\"429\",\"TaxType\":"
                                   "\"INPUT2\",\"TaxAmount\":15.02,\"LineAmount\":100.10}]}",
                           why, &e);
    assert_int_equal(e, XS_OK);
    expect_str(rec, "type", "SPEND");
    expect_str(rec, "contact", UUID_C);
    expect_str(rec, "bank_account_code", "090");
    expect_str(rec, "date", "2024-05-01");
    expect_str(rec, "reference", "INV 7");
    expect_str(rec, "status", "VOIDED");
    expect_str(rec, "line_amount_types", "Exclusive");
    expect_str(rec, "sub_total", "100.10");
    expect_str(rec, "total_tax", "15.02");
    expect_str(rec, "total", "115.12");
    assert_true(json_is_true(json_object_get(rec, "is_reconciled")));
    json_t *l = json_array_get(json_object_get(rec, "line_items"), 0);
    expect_str(l, "description", "Paper");
    expect_str(l, "quantity", "3.0000");
    expect_str(l, "unit_amount", "33.3667"); /* four places, exactly */
    expect_str(l, "account_code", "429");
    expect_str(l, "tax_amount", "15.02");
    expect_str(l, "line_amount", "100.10");
    json_decref(rec);

    /* Integers and amounts with fewer places are written with their places. */
    rec = read_rec(&bank_transaction_ops,
                   BT_HEAD "\"SubTotal\":100,\"TotalTax\":0,\"Total\":100.5,\"LineItems\":[]}", why,
                   &e);
    assert_int_equal(e, XS_OK);
    expect_str(rec, "sub_total", "100.00");
    expect_str(rec, "total_tax", "0.00");
    expect_str(rec, "total", "100.50");
    assert_int_equal(json_array_size(json_object_get(rec, "line_items")), 0);
    json_decref(rec);
}

static void test_bank_transaction_refusals(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        /* more places than the column holds, not a number, out of range: each said */
        {BT_HEAD "\"Total\":1.005,\"LineItems\":[]}", "Total has more than 2 decimal places"},
        {BT_HEAD "\"Total\":\"lots\",\"LineItems\":[]}", "Total is not a number"},
        {BT_HEAD "\"Total\":1e15,\"LineItems\":[]}", "Total is out of range"},
        {BT_HEAD "\"Total\":1e-9,\"LineItems\":[]}", "Total has more than 2 decimal places"},
        {BT_HEAD "\"LineItems\":[{\"UnitAmount\":1.23456}]}",
         "line 1: UnitAmount has more than 4 decimal places"},
        {BT_HEAD "\"LineItems\":[7]}", "line 1"},
        {"{\"BankTransactionID\":\"" UUID_A "\",\"Type\":\"GIFT\",\"UpdatedDateUTC\":"
         "\"2024-05-01T10:00:00\"}",
         "Type"},
        {"{\"BankTransactionID\":\"" UUID_A "\",\"Type\":\"SPEND\",\"Status\":\"LOST\","
         "\"UpdatedDateUTC\":\"2024-05-01T10:00:00\"}",
         "Status"},
        {"{\"BankTransactionID\":\"" UUID_A "\",\"Type\":\"SPEND\",\"LineAmountTypes\":\"Some\","
         "\"UpdatedDateUTC\":\"2024-05-01T10:00:00\"}",
         "LineAmountTypes"},
        {"{\"BankTransactionID\":\"" UUID_A "\",\"Type\":\"SPEND\"}", "UpdatedDateUTC"},
    };
    expect_refusals(&bank_transaction_ops, bad, sizeof(bad) / sizeof(bad[0]));
}

/* An amount the host application gives: refused with what is wrong. */
static void test_amounts_given(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int places;
        xs_domain_sign sign;
        const char *why; /* "" for none */
    } cases[] = {
        {"12.5", 2, XS_DOMAIN_POSITIVE, ""},
        {"\"12.50\"", 2, XS_DOMAIN_POSITIVE, ""},
        {"null", 2, XS_DOMAIN_POSITIVE, ""},
        {"-3", 4, XS_DOMAIN_ANY_SIGN, ""},
        {"0", 2, XS_DOMAIN_NOT_NEGATIVE, ""},
        {"\"\"", 4, XS_DOMAIN_ANY_SIGN, "a is empty: give a number, or leave it out"},
        {"\"1.23\"", 1, XS_DOMAIN_ANY_SIGN, "a has more than 1 decimal places"},
        {"1.0000001", 4, XS_DOMAIN_ANY_SIGN, "a has more than 4 decimal places"},
        {"\"12,50\"", 2, XS_DOMAIN_ANY_SIGN, "a is not a number"},
        {"{}", 2, XS_DOMAIN_ANY_SIGN, "a is not a number"},
        {"10000000000000", 2, XS_DOMAIN_ANY_SIGN,
         "a is out of range (more than 9223372036854 either way)"},
        {"\"-10000000000000.5\"", 2, XS_DOMAIN_ANY_SIGN,
         "a is out of range (more than 9223372036854 either way)"},
        {"0", 2, XS_DOMAIN_POSITIVE, "a must be above zero"},
        {"\"-0.01\"", 2, XS_DOMAIN_POSITIVE, "a must be above zero"},
        {"-0.01", 2, XS_DOMAIN_NOT_NEGATIVE, "a must not be negative"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char doc[100], why[XS_DOMAIN_WHY_MAX] = "";
        snprintf(doc, sizeof(doc), "{\"a\":%s}", cases[i].text);
        json_t *in = parse(doc);
        xs_err e = xs_domain_check_amount(in, "a", cases[i].places, cases[i].sign, why);
        json_decref(in);
        if (strcmp(why, cases[i].why) != 0 || e != (why[0] == '\0' ? XS_OK : XS_EINVAL)) {
            fail_msg("%s: %s \"%s\"", cases[i].text, xs_err_name(e), why);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amounts_given),
        cmocka_unit_test(test_account_fields),
        cmocka_unit_test(test_account_refusals),
        cmocka_unit_test(test_bank_transaction_fields),
        cmocka_unit_test(test_bank_transaction_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
