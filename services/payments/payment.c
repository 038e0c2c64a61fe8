/*
 * payment.c: the payment entity. Payments against invoices and bills, in two-way sync between
 * Xero and app.payments (docs/MAPPING.md).
 *
 * Canonical payment: invoice (the local invoice's id; the domain layer translates it to and
 * from Xero's InvoiceID through the invoice mappings), account_code (the bank account, or an
 * account that takes payments), date ("YYYY-MM-DD"), amount (2 places), currency_rate (6
 * places), reference, status (AUTHORISED or DELETED) and payment_type (Xero's: ACCRECPAYMENT,
 * ACCPAYPAYMENT, ...; never sent).
 *
 * Xero never edits a payment (xs_entity_info.immutable): a local status DELETED, or a deleted
 * row, deletes it in Xero; any other local edit of a payment in Xero is refused clearly or
 * becomes delete-and-create, by the connection's "edits" setting. A new payment is checked
 * before the call against what is known here: its invoice AUTHORISED, its amount above zero
 * and within the invoice's amount due, its account a bank account (or one taking payments)
 * of the chart of accounts when the chart is mirrored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payment.h"
#include "xs/json.h"
#include "xs/uuid.h"

static const char *const TEXT[][2] = {
    /* canonical, Xero */
    {"reference", "Reference"},
    {"status", "Status"},
    {"payment_type", "PaymentType"},
};
#define NTEXT (sizeof(TEXT) / sizeof(TEXT[0]))

static const char *const STATUSES[] = {"AUTHORISED", "DELETED", NULL};
static const char *const TYPES[] = {
    "ACCRECPAYMENT",       "ACCPAYPAYMENT",        "ARCREDITPAYMENT",
    "APCREDITPAYMENT",     "AROVERPAYMENTPAYMENT", "ARPREPAYMENTPAYMENT",
    "APPREPAYMENTPAYMENT", "APOVERPAYMENTPAYMENT", NULL};

/* lower_uuid writes id in lower case into out, or "" when it is not a UUID. */
static void lower_uuid(const char *id, char out[XS_ID_MAX])
{
    out[0] = '\0';
    if (id != NULL && xs_uuid_valid(id)) {
        for (size_t i = 0; i < 36; i++) {
            out[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] - 'A' + 'a' : id[i]);
        }
        out[36] = '\0';
    }
}

/* canonical builds the canonical payment from an object keyed by Xero's names (xero; its
 * invoice is then Xero's InvoiceID) or the canonical ones, checking what app.payments
 * requires; why (XS_DOMAIN_WHY_MAX bytes) says what is wrong when it returns NULL. */
static json_t *canonical(const json_t *in, bool xero, char *why)
{
    json_t *rec = json_object();
    for (size_t i = 0; i < NTEXT; i++) {
        json_object_set_new(rec, TEXT[i][0], xs_domain_text(in, TEXT[i][xero ? 1 : 0]));
    }
    json_t *amount = xs_domain_amount(in, xero ? "Amount" : "amount", 2, why);
    json_t *rate = amount != NULL
                       ? xs_domain_amount(in, xero ? "CurrencyRate" : "currency_rate", 6, why)
                       : NULL;
    if (amount == NULL || rate == NULL) {
        json_decref(amount);
        json_decref(rec);
        return NULL;
    }
    json_object_set_new(rec, "amount", amount);
    json_object_set_new(rec, "currency_rate", rate);
    const char *dk = xero ? "Date" : "date";
    json_t *d = xs_domain_date(in, dk);
    json_object_set_new(rec, "date", d);
    json_object_set_new(rec, "account_code",
                        xero ? xs_domain_text(json_object_get(in, "Account"), "Code")
                             : xs_domain_text(in, "account_code"));
    char inv[XS_ID_MAX];
    lower_uuid(xero ? xs_json_str_or(json_object_get(in, "Invoice"), "InvoiceID", NULL)
                    : xs_json_str_or(in, "invoice", NULL),
               inv);
    json_object_set_new(rec, "invoice", inv[0] != '\0' ? json_string(inv) : json_null());
    if (json_is_null(json_object_get(rec, "status"))) {
        json_object_set_new(rec, "status", json_string("AUTHORISED"));
    }
    const char *status = xs_json_str_or(rec, "status", NULL);
    const char *type = xs_json_str_or(rec, "payment_type", NULL);
    if (inv[0] == '\0') {
        snprintf(why, XS_DOMAIN_WHY_MAX, "a payment needs its invoice (%s)",
                 xero ? "Invoice.InvoiceID" : "invoice: the id of a local invoice");
    } else if (json_is_null(json_object_get(rec, "amount"))) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "a payment needs its amount");
    } else if (json_is_null(d)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "a payment needs its date (YYYY-MM-DD)");
    } else if (!xs_domain_one_of(status, STATUSES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "status must be AUTHORISED or DELETED, not %.20s", status);
    } else if (type != NULL && !xs_domain_one_of(type, TYPES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "unknown payment type %.30s", type);
    } else {
        return rec;
    }
    json_decref(rec);
    return NULL;
}

static json_t *read_xero(const json_t *x, char *why)
{
    return canonical(x, true, why);
}

/* to_xero: a new payment (an edit never gets here: see xs_entity_info.immutable). */
static json_t *to_xero(const json_t *rec, const char *xero_id, const json_t *parts)
{
    (void)xero_id;
    (void)parts;
    json_t *x = json_pack("{s:{s:s}, s:{s:s}, s:s}", "Invoice", "InvoiceID",
                          xs_json_str_or(rec, "invoice", ""), "Account", "Code",
                          xs_domain_text_or_empty(rec, "account_code"), "Date",
                          xs_json_str_or(rec, "date", ""));
    json_t *amount = xs_json_decimal(xs_json_str_or(rec, "amount", "0"));
    if (amount != NULL) {
        json_object_set_new(x, "Amount", amount);
    }
    const char *rate = xs_json_str_or(rec, "currency_rate", NULL);
    json_t *r = rate != NULL ? xs_json_decimal(rate) : NULL;
    if (r != NULL) {
        json_object_set_new(x, "CurrencyRate", r);
    }
    const char *ref = xs_json_str_or(rec, "reference", NULL);
    if (ref != NULL) {
        json_object_set_new(x, "Reference", json_string(ref));
    }
    return x;
}

/* A deletion: Xero deletes a payment by its status, one request a payment (POST
 * /Payments/{PaymentID}, xs_entity_ops.delete_one). */
static json_t *retire_item(const char *xero_id, const json_t *base, char *why)
{
    (void)why;
    if (strcmp(xs_json_str_or(base, "status", ""), "DELETED") == 0) {
        return NULL; /* already deleted in Xero */
    }
    return json_pack("{s:s, s:s}", "PaymentID", xero_id, "Status", "DELETED");
}

/* is_positive tells whether decimal text is above zero. */
static bool is_positive(const char *v)
{
    return v != NULL && v[0] != '-' && strspn(v, "0.") != strlen(v);
}

/* check_push: a new payment against what is known of its invoice and account here (the
 * check that load_local adds to the row). */
static bool check_push(const json_t *base, const json_t *rec, const xs_local_row *row, char *why)
{
    (void)base;
    const json_t *c = row->check;
    const char *amount = xs_json_str_or(rec, "amount", NULL);
    const char *inv_status = xs_json_str_or(c, "invoice_status", NULL);
    const char *due = xs_json_str_or(c, "amount_due", NULL);
    const json_t *acct = json_object_get(c, "account_ok");
    xs_money a, d;
    if (strcmp(xs_json_str_or(rec, "status", ""), "AUTHORISED") != 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "a payment is made AUTHORISED in Xero, not %s",
                 xs_json_str_or(rec, "status", ""));
    } else if (!is_positive(amount)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "the amount must be above zero, not %s",
                 amount ? amount : "(none)");
    } else if (inv_status != NULL && strcmp(inv_status, "AUTHORISED") != 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "the invoice is %s: Xero takes payments only on an AUTHORISED invoice",
                 inv_status);
    } else if (due != NULL && xs_money_parse(amount, &a) == XS_OK &&
               xs_money_parse(due, &d) == XS_OK && xs_money_cmp(a, d) > 0) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "the amount %s is more than the invoice's amount due, %s",
                 amount, due);
    } else if (json_is_false(acct)) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "account %.20s is not a bank account or one that takes payments in the chart of "
                 "accounts",
                 xs_domain_text_or_empty(rec, "account_code"));
    } else {
        return true;
    }
    return false;
}

#define COLS                                                                                       \
    "p.id, p.organisation_id, p.reference, p.status, p.payment_type, p.invoice_id::text, "         \
    "p.account_code, to_char(p.date, 'YYYY-MM-DD'), p.amount::text, "                              \
    "p.currency_rate::text, " XS_DOMAIN_MS(                                                        \
        "coalesce(p.edited_at, p.updated_at)") " AS "                                              \
                                               "edited_ms, p.edited_fields::text AS "              \
                                               "edited_fields, " XS_DOMAIN_MS("p.updated_at")

/* row_rec reads a row of COLS as the canonical payment. */
static json_t *row_rec(const xs_pg_res *r, int i)
{
    json_t *row = json_object();
    xs_domain_text_cols(row, r, i, 2, TEXT, NTEXT);
    static const char *const more[] = {"invoice", "account_code", "date", "amount",
                                       "currency_rate"};
    for (int k = 0; k < 5; k++) {
        const char *v = xs_pg_res_get(r, i, 2 + (int)NTEXT + k);
        json_object_set_new(row, more[k], v != NULL ? json_string(v) : json_null());
    }
    char why[XS_DOMAIN_WHY_MAX];
    json_t *rec = canonical(row, false, why);
    json_decref(row);
    return rec;
}

/* payment_check: what a push checks a new payment against, its invoice's status and amount
 * due (unknown while the invoice has no total yet: one made here gets Xero's figures with the
 * next pull, and Xero checks the amount meanwhile), and whether its account takes payments
 * (unknown when no chart is mirrored). */
static json_t *payment_check(const xs_pg_res *r, int i)
{
    bool ok = false;
    json_t *acct = xs_pg_res_get(r, i, 3) == NULL
                       ? json_null()
                       : json_boolean(xs_pg_res_bool(r, i, 3, &ok) == XS_OK && ok);
    return json_pack("{s:s, s:s, s:o}", "invoice_status", xs_pg_res_get(r, i, 1), "amount_due",
                     xs_pg_res_get(r, i, 2), "account_ok", acct);
}

static xs_err load_local(xs_pg *pg, const char *org, const json_t *ids, xs_local_rows *out)
{
    return xs_domain_load_checked(
        pg,
        "SELECT " COLS " FROM app.payments p WHERE p.id = ANY($2::uuid[]) AND ($1::uuid IS NULL "
        "OR p.organisation_id = $1::uuid)",
        org, ids, row_rec,
        "SELECT p.id, i.status, CASE WHEN i.total > 0 THEN i.amount_due::text END, CASE WHEN NOT "
        "EXISTS (SELECT 1 FROM app.accounts a WHERE a.organisation_id = p.organisation_id) THEN "
        "NULL ELSE EXISTS (SELECT 1 FROM app.accounts a WHERE a.organisation_id = "
        "p.organisation_id AND a.code = p.account_code AND a.status = 'ACTIVE' AND (a.type = "
        "'BANK' OR a.enable_payments)) END FROM app.payments p JOIN app.invoices i ON i.id = "
        "p.invoice_id WHERE p.id = ANY($1::uuid[])",
        payment_check, out);
}

static xs_err list_ids(xs_pg *pg, const char *org, const char *conn, const char *after, int limit,
                       json_t **out, char *last)
{
    return xs_domain_list_ids(pg, "app.payments", "payment", org, conn, after, limit, out, last);
}

/* The columns of app.payments the sync writes, each from its canonical field. */
static const xs_domain_col COLUMNS[] = {
    {"invoice_id", "invoice", "uuid", NULL},
    {"account_code", "account_code", "text", NULL},
    {"date", "date", "date", NULL},
    {"amount", "amount", "numeric", NULL},
    {"currency_rate", "currency_rate", "numeric", NULL},
    {"reference", "reference", "text", NULL},
    {"status", "status", "text", NULL},
    {"payment_type", "payment_type", "text", NULL},
};
static const xs_domain_table TABLE = {"app.payments", "p", COLUMNS,
                                      sizeof(COLUMNS) / sizeof(COLUMNS[0])};

static xs_err validate(const json_t *in, const json_t *current, bool partial, json_t **rec,
                       char *field, char *why)
{
    if (!json_is_object(in)) {
        snprintf(field, XS_DOMAIN_WHY_MAX, "record");
        snprintf(why, XS_DOMAIN_WHY_MAX, "the record must be a JSON object");
        return XS_EINVAL;
    }
    static const char *const known[] = {"invoice",       "account_code", "date",   "amount",
                                        "currency_rate", "reference",    "status", NULL};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        if (!xs_domain_one_of(k, known)) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "%.200s", k);
            snprintf(why, XS_DOMAIN_WHY_MAX,
                     strcmp(k, "payment_type") == 0 ? "%.200s is Xero's" : "unknown field %.200s",
                     k);
            return XS_EINVAL;
        }
        bool number = strcmp(k, "amount") == 0 || strcmp(k, "currency_rate") == 0;
        if (number ? !(json_is_null(v) || xs_json_is_decimal(v) || json_is_integer(v) ||
                       json_is_string(v))
                   : !(json_is_null(v) || xs_json_string_value(v, NULL) != NULL)) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "%.200s", k);
            snprintf(why, XS_DOMAIN_WHY_MAX, "%.200s must be %s", k,
                     number ? "a number" : "a string or null");
            return XS_EINVAL;
        }
    }
    /* Caught here rather than by the push's check_push, which keeps the same rules for rows
     * the host application writes into app.payments itself. */
    static const xs_domain_field amounts[] = {{"amount", "Amount", 2},
                                              {"currency_rate", "CurrencyRate", 6}};
    for (size_t i = 0; i < 2; i++) {
        if (xs_domain_check_amount(in, amounts[i].name, amounts[i].places, XS_DOMAIN_POSITIVE,
                                   why) != XS_OK) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "%s", amounts[i].name);
            return XS_EINVAL;
        }
    }
    static const char *const fields[][2] = {
        {"invoice", "invoice"}, {"amount", "amount"}, {"currency_rate", "currency_rate"},
        {"date", "date"},       {"status", "status"}, {NULL, NULL}};
    return xs_domain_merged(in, current, partial, canonical, fields, rec, field, why);
}

static const xs_entity_ref REFS[] = {{"invoice", "invoice"}, {NULL, NULL}};

const xs_entity_ops payment_ops = {
    .info = &xs_entity_table[XS_ENTITY_PAYMENT],
    .xero_path = "/api.xro/2.0/Payments",
    .id_field = "PaymentID",
    .ids_param = false,
    .xero_list = "Payments",
    .analyze = "app.payments (id, organisation_id, invoice_id, updated_at)",
    .delete_one = true,
    .table = "app.payments",
    .retired_status = "DELETED",
    .refs = REFS,
    .read_xero = read_xero,
    .to_xero = to_xero,
    .retire_item = retire_item,
    .load_local = load_local,
    .list_ids = list_ids,
    .columns = &TABLE,
    .check_push = check_push,
    .validate = validate,
};
