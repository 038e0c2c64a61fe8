/*
 * banktx.c: the bank transaction entity. Xero's bank transactions (spend and receive money,
 * overpayments, prepayments, transfers) mirrored read-only into app.bank_transactions
 * (docs/MAPPING.md): pulled, never pushed; a local edit is overwritten by Xero's version when
 * the transaction next changes there.
 *
 * Canonical bank transaction: type, contact (the contact's Xero id), bank_account_code, date
 * ("YYYY-MM-DD"), reference, status, currency_code, line_amount_types (text or null),
 * sub_total, total_tax, total (decimal text with 2 places, or null), is_reconciled, and
 * line_items [{description, quantity, unit_amount, account_code, tax_type, tax_amount,
 * line_amount}] in Xero's order, quantities and unit amounts with 4 places (the pull asks for
 * unitdp=4), other amounts with 2. The local row holds the local contact's id; the contact's
 * Xero id is read through its mapping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banktx.h"
#include "xs/json.h"
#include "xs/uuid.h"

static const char *const TYPES[] = {"RECEIVE",
                                    "SPEND",
                                    "RECEIVE-OVERPAYMENT",
                                    "RECEIVE-PREPAYMENT",
                                    "SPEND-OVERPAYMENT",
                                    "SPEND-PREPAYMENT",
                                    "RECEIVE-TRANSFER",
                                    "SPEND-TRANSFER",
                                    NULL};
static const char *const STATUSES[] = {"AUTHORISED", "DELETED", "VOIDED", NULL};
static const char *const LINE_AMOUNT_TYPES[] = {"Exclusive", "Inclusive", "NoTax", NULL};

/* The text fields read from a local row, in COLS order after the id and organisation. */
static const char *const TEXT[][2] = {
    {"type", "Type"},
    {"contact", NULL},
    {"bank_account_code", NULL},
    {"date", NULL},
    {"reference", "Reference"},
    {"status", "Status"},
    {"currency_code", "CurrencyCode"},
    {"line_amount_types", "LineAmountTypes"},
    {"sub_total", "SubTotal"},
    {"total_tax", "TotalTax"},
    {"total", "Total"},
};
#define NTEXT  (sizeof(TEXT) / sizeof(TEXT[0]))
#define NMONEY 3 /* the last three of TEXT */

/* A line's fields: canonical, Xero, places (0 for text). */
static const xs_domain_field LINE[] = {
    {"description", "Description", 0}, {"quantity", "Quantity", 4},
    {"unit_amount", "UnitAmount", 4},  {"account_code", "AccountCode", 0},
    {"tax_type", "TaxType", 0},        {"tax_amount", "TaxAmount", 2},
    {"line_amount", "LineAmount", 2},
};
#define NLINE (sizeof(LINE) / sizeof(LINE[0]))

/* check verifies what app.bank_transactions requires of a canonical record, so that no record
 * Xero sends can make a page's write fail; false with a reason in why. */
static bool check(const json_t *rec, char *why)
{
    const char *type = xs_json_str_or(rec, "type", NULL);
    const char *status = xs_json_str_or(rec, "status", NULL);
    const char *cur = xs_json_str_or(rec, "currency_code", NULL);
    const char *lat = xs_json_str_or(rec, "line_amount_types", NULL);
    if (!xs_domain_one_of(type, TYPES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "unknown Type %.30s", type != NULL ? type : "(none)");
    } else if (!xs_domain_one_of(status, STATUSES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "Status must be AUTHORISED, DELETED or VOIDED, not %.20s",
                 status);
    } else if (cur != NULL &&
               (strlen(cur) != 3 || strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "CurrencyCode must be an ISO 4217 code, not %.20s", cur);
    } else if (lat != NULL && !xs_domain_one_of(lat, LINE_AMOUNT_TYPES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "unknown LineAmountTypes %.20s", lat);
    } else {
        return true;
    }
    return false;
}

static json_t *read_xero(const json_t *x, char *why)
{
    json_t *r = json_object();
    for (size_t i = 0; i < NTEXT - NMONEY; i++) {
        if (TEXT[i][1] != NULL) {
            json_object_set_new(r, TEXT[i][0], xs_domain_text(x, TEXT[i][1]));
        }
    }
    for (size_t i = NTEXT - NMONEY; i < NTEXT; i++) {
        json_t *v = xs_domain_amount(x, TEXT[i][1], 2, why);
        if (v == NULL) {
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, TEXT[i][0], v);
    }
    if (json_is_null(json_object_get(r, "status"))) {
        json_object_set_new(r, "status", json_string("AUTHORISED"));
    }
    const char *cid = xs_json_str_or(json_object_get(x, "Contact"), "ContactID", NULL);
    json_object_set_new(r, "contact",
                        cid != NULL && xs_uuid_valid(cid) ? json_string(cid) : json_null());
    json_object_set_new(r, "bank_account_code",
                        xs_domain_text(json_object_get(x, "BankAccount"), "Code"));
    json_object_set_new(r, "date", xs_domain_date(x, "Date"));
    json_object_set_new(r, "is_reconciled",
                        json_boolean(json_is_true(json_object_get(x, "IsReconciled"))));
    json_t *ls = xs_domain_lines(json_object_get(x, "LineItems"), LINE, NLINE, true, why);
    if (ls == NULL || !check(r, why)) {
        json_decref(ls);
        json_decref(r);
        return NULL;
    }
    json_object_set_new(r, "line_items", ls);
    return r;
}

/* The contact's Xero id through its mapping on any of the organisation's connections. */
#define COLS                                                                                       \
    "b.id, b.organisation_id, b.type, (SELECT m.xero_id::text FROM sync.mappings m WHERE "         \
    "m.entity = 'contact' AND m.local_id = b.contact_id LIMIT 1), b.bank_account_code, "           \
    "to_char(b.date, 'YYYY-MM-DD'), b.reference, b.status, b.currency_code, "                      \
    "b.line_amount_types, b.sub_total::text, b.total_tax::text, b.total::text, "                   \
    "b.line_items::text, b.is_reconciled, " XS_DOMAIN_MS("b.updated_at")

/* row_rec reads a row of COLS as the canonical bank transaction. */
static json_t *row_rec(const xs_pg_res *r, int i)
{
    json_t *rec = json_object();
    xs_domain_text_cols(rec, r, i, 2, TEXT, NTEXT);
    const char *lt = xs_pg_res_get(r, i, 2 + (int)NTEXT);
    json_t *stored = lt != NULL ? xs_json_parse(lt, strlen(lt), NULL) : NULL;
    char why[XS_DOMAIN_WHY_MAX];
    json_t *ls = xs_domain_lines(stored, LINE, NLINE, false, why);
    json_decref(stored);
    if (ls == NULL) {
        json_decref(rec);
        return NULL;
    }
    json_object_set_new(rec, "line_items", ls);
    bool rc = false;
    xs_pg_res_bool(r, i, 3 + (int)NTEXT, &rc);
    json_object_set_new(rec, "is_reconciled", json_boolean(rc));
    return rec;
}

static xs_err load_local(xs_pg *pg, const char *org, const json_t *ids, xs_local_rows *out)
{
    return xs_domain_load_rows(pg,
                               "SELECT " COLS " FROM app.bank_transactions b WHERE b.id = "
                               "ANY($2::uuid[]) AND ($1::uuid IS NULL OR b.organisation_id = "
                               "$1::uuid)",
                               org, ids, row_rec, out);
}

/* The local contact linked to the record's Xero contact on one of the organisation's
 * connections, if there is one and it is still there (else no contact). */
#define CONTACT_OF                                                                                 \
    "(SELECT c.id FROM sync.mappings m JOIN sync.connections k ON k.id = m.connection_id JOIN "    \
    "app.contacts c ON c.id = m.local_id AND c.organisation_id = $1 WHERE k.organisation_id = $1 " \
    "AND m.entity = 'contact' AND m.xero_id = r.contact LIMIT 1)"

/* The columns of app.bank_transactions the sync writes, each from its canonical field. */
static const xs_domain_col COLUMNS[] = {
    {"type", "type", "text", NULL},
    {"contact_id", "contact", "uuid", CONTACT_OF},
    {"bank_account_code", "bank_account_code", "text", NULL},
    {"date", "date", "date", NULL},
    {"reference", "reference", "text", NULL},
    {"status", "status", "text", NULL},
    {"currency_code", "currency_code", "text", NULL},
    {"line_amount_types", "line_amount_types", "text", NULL},
    {"sub_total", "sub_total", "numeric", NULL},
    {"total_tax", "total_tax", "numeric", NULL},
    {"total", "total", "numeric", NULL},
    {"line_items", "line_items", "jsonb", NULL},
    {"is_reconciled", "is_reconciled", "boolean", NULL},
};
static const xs_domain_table TABLE = {"app.bank_transactions", "b", COLUMNS,
                                      sizeof(COLUMNS) / sizeof(COLUMNS[0])};

const xs_entity_ops bank_transaction_ops = {
    .info = &xs_entity_table[XS_ENTITY_BANK_TRANSACTION],
    .xero_path = "/api.xro/2.0/BankTransactions",
    .id_field = "BankTransactionID",
    .ids_param = false,
    .xero_list = "BankTransactions",
    .analyze = "app.bank_transactions (id, organisation_id, date, updated_at)",
    .pull_query = "unitdp=4",
    .type_field = "Type",
    .read_xero = read_xero,
    .load_local = load_local,
    .columns = &TABLE,
};
