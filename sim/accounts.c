/*
 * accounts.c: the chart of accounts. Codes and names are unique; a bank account needs a
 * bank account number; Class follows Type; system accounts cannot be archived or deleted; an
 * account used by a document cannot be deleted (archive it instead). GET /Accounts is not
 * paged, as in Xero.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "kinds.h"
#include "store.h"
#include "util.h"

static const char *const acct_status[3] = {"ACTIVE", "ARCHIVED", "DELETED"};

static const struct {
    const char *type;
    const char *cls;
} type_classes[] = {
    {"BANK", "ASSET"},          {"CURRENT", "ASSET"},       {"CURRLIAB", "LIABILITY"},
    {"DEPRECIATN", "EXPENSE"},  {"DIRECTCOSTS", "EXPENSE"}, {"EQUITY", "EQUITY"},
    {"EXPENSE", "EXPENSE"},     {"FIXED", "ASSET"},         {"INVENTORY", "ASSET"},
    {"LIABILITY", "LIABILITY"}, {"NONCURRENT", "ASSET"},    {"OTHERINCOME", "REVENUE"},
    {"OVERHEADS", "EXPENSE"},   {"PREPAYMENT", "ASSET"},    {"REVENUE", "REVENUE"},
    {"SALES", "REVENUE"},       {"TERMLIAB", "LIABILITY"},  {"PAYG", "LIABILITY"},
};

static const char *class_of(const char *type)
{
    for (size_t i = 0; i < sizeof(type_classes) / sizeof(type_classes[0]); i++) {
        if (strcmp(type, type_classes[i].type) == 0) {
            return type_classes[i].cls;
        }
    }
    return NULL;
}

static json_t *account_render(sim_tenant *t, const sim_rec *r, const sim_render_opts *o)
{
    (void)t;
    (void)o;
    const sim_account *a = (const sim_account *)r;
    const char *v[A_NSTR];
    sim__strs_load(&a->s, v, A_NSTR);
    json_t *j = json_object();
    json_object_set_new_nocheck(j, "AccountID", sim__json_uuid(&r->id));
    json_object_set_new_nocheck(j, "Code", json_string_nocheck(v[A_CODE]));
    json_object_set_new_nocheck(j, "Name", json_string_nocheck(v[A_NAME]));
    json_object_set_new_nocheck(j, "Status", json_string_nocheck(acct_status[a->status]));
    json_object_set_new_nocheck(j, "Type", json_string_nocheck(v[A_TYPE]));
    json_object_set_new_nocheck(j, "TaxType", json_string_nocheck(v[A_TAXTYPE]));
    if (v[A_DESCRIPTION][0] != '\0') {
        json_object_set_new_nocheck(j, "Description", json_string_nocheck(v[A_DESCRIPTION]));
    }
    const char *cls = class_of(v[A_TYPE]);
    if (cls != NULL) {
        json_object_set_new_nocheck(j, "Class", json_string_nocheck(cls));
    }
    if (v[A_SYSTEM][0] != '\0') {
        json_object_set_new_nocheck(j, "SystemAccount", json_string_nocheck(v[A_SYSTEM]));
    }
    json_object_set_new_nocheck(j, "EnablePaymentsToAccount", json_boolean(a->enable_payments));
    json_object_set_new_nocheck(j, "ShowInExpenseClaims", json_boolean(a->expense_claims));
    if (strcmp(v[A_TYPE], "BANK") == 0) {
        json_object_set_new_nocheck(j, "BankAccountNumber", json_string_nocheck(v[A_BANKNUMBER]));
        json_object_set_new_nocheck(j, "BankAccountType",
                                    json_string(v[A_BANKTYPE][0] ? v[A_BANKTYPE] : "BANK"));
        json_object_set_new_nocheck(j, "CurrencyCode", json_string_nocheck(v[A_CURRENCY]));
    } else {
        json_object_set_new_nocheck(j, "BankAccountType", json_string(""));
    }
    json_object_set_new_nocheck(j, "ReportingCode", json_string_nocheck(v[A_REPORTING]));
    if (v[A_REPORTINGNAME][0] != '\0') {
        json_object_set_new_nocheck(j, "ReportingCodeName",
                                    json_string_nocheck(v[A_REPORTINGNAME]));
    }
    json_object_set_new_nocheck(j, "HasAttachments", json_false());
    json_object_set_new_nocheck(j, "UpdatedDateUTC", sim__json_xero_date(r->updated));
    json_object_set_new_nocheck(j, "AddToWatchlist", json_boolean(a->watchlist));
    return j;
}

typedef struct acct_plan {
    sim_account *existing;
    sim_strs s;
    uint8_t status;
    bool enable_payments, expense_claims, watchlist;
} acct_plan;

static void acct_plan_free(void *pp)
{
    acct_plan *p = pp;
    if (p != NULL) {
        sim__strs_free(&p->s);
        free(p);
    }
}

static xs_err acct_plan_make(sim_batch *b, const json_t *item, sim_rec *existing, void **out,
                             json_t *errors, char *why)
{
    sim_tenant *t = b->t;
    sim_account *ex = (sim_account *)existing;
    const char *path = b->path;
    acct_plan *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return XS_ENOMEM;
    }
    p->existing = ex;
    const char *vals[A_NSTR];
    if (ex != NULL) {
        sim__strs_load(&ex->s, vals, A_NSTR);
        p->status = ex->status;
        p->enable_payments = ex->enable_payments;
        p->expense_claims = ex->expense_claims;
        p->watchlist = ex->watchlist;
    } else {
        for (int i = 0; i < A_NSTR; i++) {
            vals[i] = "";
        }
        p->status = SIM_AS_ACTIVE;
    }
    static const struct {
        const char *key;
        unsigned slot;
        size_t max;
    } sf[] = {{"Code", A_CODE, 10},
              {"Name", A_NAME, 150},
              {"Type", A_TYPE, 20},
              {"Description", A_DESCRIPTION, 4000},
              {"BankAccountNumber", A_BANKNUMBER, 50},
              {"BankAccountType", A_BANKTYPE, 20},
              {"CurrencyCode", A_CURRENCY, 3},
              {"TaxType", A_TAXTYPE, 50},
              {"ReportingCode", A_REPORTING, 50}};
    xs_err e;
    const char *sv;
    bool present;
    for (size_t k = 0; k < sizeof(sf) / sizeof(sf[0]); k++) {
        if ((e = sim__get_str(item, sf[k].key, path, &sv, &present, why)) != XS_OK) {
            goto fail;
        }
        if (!present) {
            continue;
        }
        if (sim__utf8_len(sv) > sf[k].max) {
            sim__err(errors, "%s must not be longer than %zu characters.", sf[k].key, sf[k].max);
            continue;
        }
        vals[sf[k].slot] = sv;
    }
    if ((e = sim__get_bool(item, "EnablePaymentsToAccount", path, &p->enable_payments, &present,
                           why)) != XS_OK) {
        goto fail;
    }
    if ((e = sim__get_bool(item, "ShowInExpenseClaims", path, &p->expense_claims, &present, why)) !=
        XS_OK) {
        goto fail;
    }
    if ((e = sim__get_bool(item, "AddToWatchlist", path, &p->watchlist, &present, why)) != XS_OK) {
        goto fail;
    }
    if ((e = sim__get_str(item, "Status", path, &sv, &present, why)) != XS_OK) {
        goto fail;
    }
    if (present) {
        int k = -1;
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(sv, acct_status[i]) == 0) {
                k = i;
            }
        }
        if (k < 0) {
            sim__err(errors, "Status must be ACTIVE or ARCHIVED.");
        } else if (ex == NULL && k != SIM_AS_ACTIVE) {
            sim__err(errors, "An account is created ACTIVE.");
        } else if (ex != NULL && k != ex->status) {
            if (ex->status == SIM_AS_DELETED) {
                sim__err(errors, "This account has been deleted.");
            } else if (vals[A_SYSTEM][0] != '\0') {
                sim__err(errors, "System accounts cannot be archived or deleted.");
            } else if (k == SIM_AS_DELETED && ex->uses > 0) {
                sim__err(errors, "This account cannot be deleted as it has been used in "
                                 "transactions; archive it instead.");
            } else {
                p->status = (uint8_t)k;
            }
        }
    }
    /* rules */
    if (vals[A_NAME][0] == '\0') {
        sim__err(errors, "Please enter a Name.");
    }
    const char *cls = class_of(vals[A_TYPE]);
    if (vals[A_TYPE][0] == '\0') {
        sim__err(errors, "Please select a Type.");
    } else if (cls == NULL) {
        sim__err(errors, "'%s' is not a valid account Type.", vals[A_TYPE]);
    } else if (ex != NULL && strcmp(vals[A_TYPE], sim__strs_get(&ex->s, A_TYPE)) != 0 &&
               (vals[A_SYSTEM][0] != '\0' || ex->uses > 0)) {
        sim__err(errors, "The Type of this account cannot be changed.");
    }
    bool bank = strcmp(vals[A_TYPE], "BANK") == 0;
    if (bank) {
        if (vals[A_BANKNUMBER][0] == '\0') {
            sim__err(errors, "Please enter a Bank Account Number.");
        }
        if (vals[A_BANKTYPE][0] == '\0') {
            vals[A_BANKTYPE] = "BANK";
        } else if (strcmp(vals[A_BANKTYPE], "BANK") != 0 &&
                   strcmp(vals[A_BANKTYPE], "CREDITCARD") != 0 &&
                   strcmp(vals[A_BANKTYPE], "PAYPAL") != 0) {
            sim__err(errors, "BankAccountType must be BANK, CREDITCARD or PAYPAL.");
        }
        if (vals[A_CURRENCY][0] == '\0') {
            vals[A_CURRENCY] = t->currency;
        } else if (!sim__currency_ok(vals[A_CURRENCY])) {
            sim__err(errors, "The currency %s is not enabled for this organisation.",
                     vals[A_CURRENCY]);
        }
    } else if (vals[A_CODE][0] == '\0') {
        sim__err(errors, "Please enter a Code.");
    }
    if (vals[A_TAXTYPE][0] == '\0') {
        vals[A_TAXTYPE] = cls != NULL && strcmp(cls, "REVENUE") == 0   ? "OUTPUT2"
                          : cls != NULL && strcmp(cls, "EXPENSE") == 0 ? "INPUT2"
                                                                       : "NONE";
    } else if (sim__taxrate(vals[A_TAXTYPE]) == NULL) {
        sim__err(errors, "The TaxType code '%s' does not exist.", vals[A_TAXTYPE]);
    }
    char key[600];
    if (vals[A_CODE][0] != '\0' &&
        (ex == NULL || !sim__norm_eq(vals[A_CODE], sim__strs_get(&ex->s, A_CODE)))) {
        uint32_t other = sim__account_by_code(t, vals[A_CODE]);
        snprintf(key, sizeof(key), "code:");
        sim__norm_key(vals[A_CODE], key + 5, sizeof(key) - 5);
        if (other != SIM_NONE || json_object_get(b->codes, key) != NULL) {
            sim__err(errors, "Please enter a unique Code.");
        } else {
            json_object_set_new_nocheck(b->codes, key, json_true());
        }
    }
    if (vals[A_NAME][0] != '\0' &&
        (ex == NULL || !sim__norm_eq(vals[A_NAME], sim__strs_get(&ex->s, A_NAME)))) {
        uint32_t other = sim__account_by_name(t, vals[A_NAME]);
        snprintf(key, sizeof(key), "name:");
        sim__norm_key(vals[A_NAME], key + 5, sizeof(key) - 5);
        if (other != SIM_NONE || json_object_get(b->codes, key) != NULL) {
            sim__err(errors, "Please enter a unique Name.");
        } else {
            json_object_set_new_nocheck(b->codes, key, json_true());
        }
    }
    if (json_array_size(errors) == 0 && (e = sim__strs_build(&p->s, vals, A_NSTR)) != XS_OK) {
        goto fail;
    }
    *out = p;
    return XS_OK;
fail:
    acct_plan_free(p);
    return e;
}

static xs_err acct_apply(sim_batch *b, void *pp, sim_rec **out)
{
    acct_plan *p = pp;
    sim_tenant *t = b->t;
    sim_account *a = p->existing;
    bool create = a == NULL;
    if (create) {
        a = calloc(1, sizeof(*a));
        if (a == NULL) {
            return XS_ENOMEM;
        }
        sim__rng_uuid(&t->rng, &a->h.id);
    } else {
        sim__account_unindex(t, a);
    }
    sim__strs_free(&a->s);
    a->s = p->s;
    p->s.p = NULL;
    a->status = p->status;
    a->enable_payments = p->enable_payments;
    a->expense_claims = p->expense_claims;
    a->watchlist = p->watchlist;
    xs_err e = sim__touch(b, SIM_ACCOUNT, &a->h, create);
    if (e != XS_OK) {
        if (create) {
            sim__account_free(a);
        }
        return e;
    }
    e = sim__account_index(t, a);
    *out = &a->h;
    return e;
}

static uint32_t account_class_mask(const char *field, const char *value)
{
    if (strcasecmp(field, "Status") != 0) {
        return 0;
    }
    for (int k = 0; k < 3; k++) {
        if (strcasecmp(value, acct_status[k]) == 0) {
            return 1u << k;
        }
    }
    return 0;
}

static const char *const account_fields[] = {"AccountID",
                                             "Code",
                                             "Name",
                                             "Status",
                                             "Type",
                                             "TaxType",
                                             "Description",
                                             "Class",
                                             "SystemAccount",
                                             "EnablePaymentsToAccount",
                                             "ShowInExpenseClaims",
                                             "BankAccountNumber",
                                             "BankAccountType",
                                             "CurrencyCode",
                                             "ReportingCode",
                                             "ReportingCodeName",
                                             "HasAttachments",
                                             "UpdatedDateUTC",
                                             "AddToWatchlist",
                                             NULL};

const sim_kind_ops sim__account_ops = {
    .kind = SIM_ACCOUNT,
    .plural = "Accounts",
    .id_field = "AccountID",
    .singular = "account",
    .fields = account_fields,
    .class_fields = {"Status", NULL, NULL},
    .paged = false,
    .has_archive = false,
    .error_flag = NULL,
    .status_attr = false,
    .render = account_render,
    .plan = acct_plan_make,
    .apply = acct_apply,
    .plan_free = acct_plan_free,
    .class_mask = account_class_mask,
    .all_mask = 0x7,
    .default_mask = 0x3,
};

/* ------------------------------------------------------------------ the default chart */

static const struct {
    const char *code, *name, *type, *tax, *system, *bank, *desc;
    bool payments;
} chart[] = {
    {"090", "Business Bank Account", "BANK", "NONE", "", "0201234567890001", "", false},
    {"091", "Business Savings Account", "BANK", "NONE", "", "0201234567890050", "", false},
    {"200", "Sales", "REVENUE", "OUTPUT2", "", "", "Income from any normal business activity",
     false},
    {"260", "Other Revenue", "REVENUE", "OUTPUT2", "", "", "Any other income", false},
    {"270", "Interest Income", "REVENUE", "NONE", "", "", "Interest income", false},
    {"310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT2", "", "", "Cost of goods sold", false},
    {"400", "Advertising", "OVERHEADS", "INPUT2", "", "", "Advertising", false},
    {"404", "Bank Fees", "OVERHEADS", "NONE", "", "", "Bank account service fees", false},
    {"408", "Cleaning", "OVERHEADS", "INPUT2", "", "", "Cleaning", false},
    {"412", "Consulting & Accounting", "EXPENSE", "INPUT2", "", "", "Professional services", false},
    {"429", "General Expenses", "EXPENSE", "INPUT2", "", "", "General expenses", false},
    {"433", "Insurance", "EXPENSE", "INPUT2", "", "", "Insurance", false},
    {"445", "Light, Power, Heating", "EXPENSE", "INPUT2", "", "", "Power", false},
    {"461", "Printing & Stationery", "EXPENSE", "INPUT2", "", "", "Stationery", false},
    {"469", "Rent", "EXPENSE", "INPUT2", "", "", "Rent", false},
    {"489", "Telephone & Internet", "EXPENSE", "INPUT2", "", "", "Telephone", false},
    {"493", "Travel - National", "EXPENSE", "INPUT2", "", "", "Travel", false},
    {"610", "Accounts Receivable", "CURRENT", "NONE", "DEBTORS", "", "Outstanding invoices", false},
    {"620", "Prepayments", "CURRENT", "NONE", "", "", "Prepaid expenses", true},
    {"710", "Office Equipment", "FIXED", "INPUT2", "", "", "Office equipment", false},
    {"800", "Accounts Payable", "CURRLIAB", "NONE", "CREDITORS", "", "Outstanding bills", false},
    {"820", "GST", "CURRLIAB", "NONE", "GST", "", "GST owed", false},
    {"877", "Tracking Transfers", "CURRLIAB", "NONE", "TRACKINGTRANSFERS", "", "Transfers", false},
    {"960", "Retained Earnings", "EQUITY", "NONE", "RETAINEDEARNINGS", "", "Retained earnings",
     false},
    {"970", "Owner A Funds Introduced", "EQUITY", "NONE", "", "", "Owner funds", true},
};

xs_err sim__seed_accounts(sim_tenant *t, xs_time now)
{
    for (size_t i = 0; i < sizeof(chart) / sizeof(chart[0]); i++) {
        sim_account *a = calloc(1, sizeof(*a));
        if (a == NULL) {
            return XS_ENOMEM;
        }
        const char *vals[A_NSTR] = {0};
        vals[A_CODE] = chart[i].code;
        vals[A_NAME] = chart[i].name;
        vals[A_TYPE] = chart[i].type;
        vals[A_TAXTYPE] = chart[i].tax;
        vals[A_SYSTEM] = chart[i].system;
        vals[A_BANKNUMBER] = chart[i].bank;
        vals[A_DESCRIPTION] = chart[i].desc;
        if (strcmp(chart[i].type, "BANK") == 0) {
            vals[A_BANKTYPE] = "BANK";
            vals[A_CURRENCY] = t->currency;
        }
        a->enable_payments = chart[i].payments;
        a->status = SIM_AS_ACTIVE;
        sim__rng_uuid(&t->rng, &a->h.id);
        a->h.created = a->h.updated = now;
        a->h.cls = SIM_AS_ACTIVE;
        xs_err e = sim__strs_build(&a->s, vals, A_NSTR);
        if (e == XS_OK) {
            e = sim__table_add(&t->t[SIM_ACCOUNT], &a->h);
        }
        if (e != XS_OK) {
            sim__account_free(a);
            return e;
        }
        if ((e = sim__account_index(t, a)) != XS_OK) {
            return e;
        }
    }
    return XS_OK;
}
