/*
 * account.c: the account entity. Xero's chart of accounts mirrored read-only into
 * app.accounts (docs/MAPPING.md): pulled, never pushed; a local edit is overwritten by
 * Xero's version at the next change there. Xero lists accounts whole (no pages) and never
 * lists a deleted one, so a full pull marks the linked accounts it no longer lists DELETED.
 *
 * Canonical account: code, name, type, bank_account_number, status, currency_code, tax_type,
 * class, description (text or null) and enable_payments (true or false).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "xs/json.h"

static const char *const TEXT[][2] = {
    /* canonical, Xero */
    {"code", "Code"},
    {"name", "Name"},
    {"type", "Type"},
    {"bank_account_number", "BankAccountNumber"},
    {"status", "Status"},
    {"currency_code", "CurrencyCode"},
    {"tax_type", "TaxType"},
    {"class", "Class"},
    {"description", "Description"},
};
#define NTEXT (sizeof(TEXT) / sizeof(TEXT[0]))

static const char *const STATUSES[] = {"ACTIVE", "ARCHIVED", "DELETED", NULL};
static const char *const CLASSES[] = {"ASSET", "EQUITY", "EXPENSE", "LIABILITY", "REVENUE", NULL};

static bool all_in(const char *s, const char *chars)
{
    return s != NULL && s[0] != '\0' && strspn(s, chars) == strlen(s);
}

/* canonical builds the canonical account from an object keyed by Xero's names (xero) or the
 * canonical ones, checking what app.accounts requires, so that no record Xero sends can make
 * a page's write fail; why (XS_DOMAIN_WHY_MAX bytes) says what is wrong when it returns NULL. */
static json_t *canonical(const json_t *in, bool xero, char *why)
{
    json_t *rec = json_object();
    for (size_t i = 0; i < NTEXT; i++) {
        json_object_set_new(rec, TEXT[i][0], xs_domain_text(in, TEXT[i][xero ? 1 : 0]));
    }
    json_t *pay = json_object_get(in, xero ? "EnablePaymentsToAccount" : "enable_payments");
    json_object_set_new(rec, "enable_payments", json_boolean(json_is_true(pay)));
    const char *name = xs_json_str_or(rec, "name", NULL);
    const char *type = xs_json_str_or(rec, "type", NULL);
    const char *cur = xs_json_str_or(rec, "currency_code", NULL);
    const char *cls = xs_json_str_or(rec, "class", NULL);
    if (json_is_null(json_object_get(rec, "status"))) {
        json_object_set_new(rec, "status", json_string("ACTIVE"));
    }
    const char *status = xs_json_str_or(rec, "status", NULL);
    if (name == NULL) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "an account needs a name");
    } else if (!all_in(type, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "account %.80s has no readable Type", name);
    } else if (!xs_domain_one_of(status, STATUSES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "account %.80s: Status must be ACTIVE, ARCHIVED or DELETED, not %.20s", name,
                 status);
    } else if (cur != NULL && (strlen(cur) != 3 || !all_in(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "account %.80s: CurrencyCode must be an ISO 4217 code, not %.20s", name, cur);
    } else if (cls != NULL && !xs_domain_one_of(cls, CLASSES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "account %.80s: unknown Class %.20s", name, cls);
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

#define COLS                                                                                       \
    "id, organisation_id, code, name, type, bank_account_number, status, currency_code, "          \
    "tax_type, class, description, enable_payments, " XS_DOMAIN_MS("updated_at")

/* row_rec reads a row of COLS as the canonical account. */
static json_t *row_rec(const xs_pg_res *r, int i)
{
    json_t *row = json_object();
    xs_domain_text_cols(row, r, i, 2, TEXT, NTEXT);
    bool pay = false;
    xs_pg_res_bool(r, i, 2 + (int)NTEXT, &pay);
    json_object_set_new(row, "enable_payments", json_boolean(pay));
    char why[XS_DOMAIN_WHY_MAX];
    json_t *rec = canonical(row, false, why);
    json_decref(row);
    return rec;
}

static xs_err load_local(xs_pg *pg, const char *org, const json_t *ids, xs_local_rows *out)
{
    return xs_domain_load_rows(pg,
                               "SELECT " COLS " FROM app.accounts WHERE id = ANY($2::uuid[]) AND "
                               "($1::uuid IS NULL OR organisation_id = $1::uuid)",
                               org, ids, row_rec, out);
}

/* The columns of app.accounts the sync writes, each from its canonical field. */
static const xs_domain_col COLUMNS[] = {
    {"code", "code", "text", NULL},
    {"name", "name", "text", NULL},
    {"type", "type", "text", NULL},
    {"bank_account_number", "bank_account_number", "text", NULL},
    {"status", "status", "text", NULL},
    {"currency_code", "currency_code", "text", NULL},
    {"tax_type", "tax_type", "text", NULL},
    {"class", "class", "text", NULL},
    {"description", "description", "text", NULL},
    {"enable_payments", "enable_payments", "boolean", NULL},
};
static const xs_domain_table TABLE = {"app.accounts", "a", COLUMNS,
                                      sizeof(COLUMNS) / sizeof(COLUMNS[0])};

static xs_err retire_missing(xs_pg *pg, const char *org, const char *conn, const json_t *seen,
                             const json_t *types, int *n)
{
    *n = 0;
    char *arr = xs_domain_uuid_array(seen);
    if (arr == NULL) {
        return XS_EINVAL;
    }
    char *tt = types != NULL ? xs_json_dump(types, 0) : NULL;
    xs_pg_res *r = NULL;
    xs_err e = xs_pg_q(
        pg, &r,
        "UPDATE app.accounts a SET status = 'DELETED' FROM sync.mappings m WHERE m.connection_id "
        "= $2 AND m.entity = 'account' AND m.local_id = a.id AND a.organisation_id = $1 AND "
        "a.status <> 'DELETED' AND NOT (m.xero_id = ANY($3::uuid[])) AND ($4::jsonb IS NULL OR "
        "a.type IN (SELECT jsonb_array_elements_text($4::jsonb))) RETURNING a.id",
        org, conn, arr, tt);
    free(arr);
    free(tt);
    if (e != XS_OK) {
        return e;
    }
    *n = xs_pg_res_nrows(r);
    xs_pg_res_free(r);
    return XS_OK;
}

const xs_entity_ops account_ops = {
    .info = &xs_entity_table[XS_ENTITY_ACCOUNT],
    .xero_path = "/api.xro/2.0/Accounts",
    .id_field = "AccountID",
    .ids_param = false,
    .xero_list = "Accounts",
    .analyze = "app.accounts (id, organisation_id, code, type, updated_at)",
    .pull_query = NULL,
    .unpaged = true,
    .type_field = "Type",
    .read_xero = read_xero,
    .load_local = load_local,
    .columns = &TABLE,
    .retire_missing = retire_missing,
};
