/*
 * payments.c: Payments against invoices. A payment is created (never above the amount due,
 * only against an AUTHORISED invoice, into a bank account or one that allows payments) or
 * deleted, one at a time, by POSTing Status DELETED to /Payments/{PaymentID} (Xero's
 * deletePayment; a batch naming an existing payment is refused); it is never edited. The
 * invoice's AmountPaid, AmountDue and status follow every change, and its UpdatedDateUTC
 * moves (Xero sends no PAYMENT webhooks, but the invoice changes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "kinds.h"
#include "store.h"
#include "util.h"

static const char *const pay_types[2] = {"ACCRECPAYMENT", "ACCPAYPAYMENT"};
static const char *const pay_status[2] = {"AUTHORISED", "DELETED"};
static const char *const inv_status_names[6] = {"DRAFT", "SUBMITTED", "AUTHORISED",
                                                "PAID",  "VOIDED",    "DELETED"};

json_t *sim__account_ref(sim_tenant *t, uint32_t idx)
{
    json_t *o = json_object();
    if (idx == SIM_NONE) {
        return o;
    }
    const sim_account *a = sim__account_at(t, idx);
    json_object_set_new_nocheck(o, "AccountID", sim__json_uuid(&a->h.id));
    json_object_set_new_nocheck(o, "Code", json_string_nocheck(sim__strs_get(&a->s, A_CODE)));
    json_object_set_new_nocheck(o, "Name", json_string_nocheck(sim__strs_get(&a->s, A_NAME)));
    return o;
}

static json_t *payment_render(sim_tenant *t, const sim_rec *r, const sim_render_opts *o)
{
    const sim_payment *p = (const sim_payment *)r;
    json_t *j = json_object();
    json_object_set_new_nocheck(j, "PaymentID", sim__json_uuid(&r->id));
    json_object_set_new_nocheck(j, "Date", sim__json_xero_date(p->date));
    json_object_set_new_nocheck(j, "BankAmount", sim__json_money(p->bank_amount, 2));
    json_object_set_new_nocheck(j, "Amount", sim__json_money(p->amount, 2));
    json_object_set_new_nocheck(j, "Reference",
                                json_string_nocheck(sim__strs_get(&p->s, P_REFERENCE)));
    json_object_set_new_nocheck(j, "CurrencyRate", sim__json_money_min(p->rate, 1));
    json_object_set_new_nocheck(j, "PaymentType", json_string_nocheck(pay_types[p->ptype]));
    json_object_set_new_nocheck(j, "Status", json_string_nocheck(pay_status[p->status]));
    json_object_set_new_nocheck(j, "UpdatedDateUTC", sim__json_xero_date(r->updated));
    json_object_set_new_nocheck(j, "HasAccount", json_true());
    json_object_set_new_nocheck(j, "IsReconciled", json_boolean(p->reconciled));
    json_object_set_new_nocheck(j, "Account", sim__account_ref(t, p->account));
    sim_render_opts no = *o;
    no.view = SIM_VIEW_NESTED;
    json_object_set_new_nocheck(j, "Invoice",
                                sim__invoice_nested(t, sim__invoice_at(t, p->invoice), &no));
    json_object_set_new_nocheck(j, "HasValidationErrors", json_false());
    return j;
}

typedef struct pay_plan {
    sim_payment *existing;
    bool delete_it;
    uint32_t invoice, account;
    xs_time date;
    xs_money amount, rate;
    bool reconciled;
    char *reference;
} pay_plan;

static void pay_plan_free(void *pp)
{
    pay_plan *p = pp;
    if (p != NULL) {
        free(p->reference);
        free(p);
    }
}

/* claimed returns what earlier payments of this request already take from an invoice. */
static xs_money claimed(sim_batch *b, const sim_invoice *inv)
{
    char ids[XS_UUID_STR];
    xs_uuid_format(&inv->h.id, ids);
    xs_money m = {0};
    json_t *v = json_object_get(b->paid, ids);
    if (v != NULL) {
        xs_json_to_money(v, &m);
    }
    return m;
}

static void claim(sim_batch *b, const sim_invoice *inv, xs_money amount)
{
    char ids[XS_UUID_STR];
    xs_uuid_format(&inv->h.id, ids);
    xs_money m = claimed(b, inv);
    xs_money_add(m, amount, &m);
    json_object_set_new_nocheck(b->paid, ids, xs_json_money(m, 6));
}

static xs_err pay_plan_make(sim_batch *b, const json_t *item, sim_rec *existing, void **out,
                            json_t *errors, char *why)
{
    sim_tenant *t = b->t;
    const char *path = b->path;
    pay_plan *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return XS_ENOMEM;
    }
    p->existing = (sim_payment *)existing;
    p->invoice = p->account = SIM_NONE;
    xs_err e;
    const char *sv;
    bool present;
    if ((e = sim__get_str(item, "Status", path, &sv, &present, why)) != XS_OK) {
        goto fail;
    }
    if (p->existing != NULL) {
        if (!present || strcasecmp(sv, "DELETED") != 0) {
            sim__err(errors, "A payment cannot be edited; it can only be deleted (set Status to "
                             "DELETED) and created again.");
        } else if (p->existing->status == SIM_PS_DELETED) {
            sim__err(errors, "This payment has already been deleted.");
        } else {
            p->delete_it = true;
        }
        *out = p;
        return XS_OK;
    }
    if (present && strcasecmp(sv, "AUTHORISED") != 0) {
        sim__err(errors, "A payment is created AUTHORISED; Status %s is not valid here.", sv);
    }
    static const char *const others[] = {"CreditNote", "Prepayment", "Overpayment"};
    for (int k = 0; k < 3; k++) {
        json_t *o = json_object_get(item, others[k]);
        if (o != NULL && !json_is_null(o)) {
            sim__err(errors, "Payments against a %s are not supported by this simulator.",
                     others[k]);
        }
    }

    /* the invoice */
    json_t *ij = json_object_get(item, "Invoice");
    char ipath[192];
    snprintf(ipath, sizeof(ipath), "%s.Invoice", path);
    xs_uuid iid;
    bool has_iid = false, has_inum = false;
    const char *inum = NULL;
    if (ij != NULL && !json_is_null(ij)) {
        if (!json_is_object(ij)) {
            snprintf(why, 256, "Invoice must be an object. Path '%s'.", ipath);
            e = XS_EPARSE;
            goto fail;
        }
        if ((e = sim__get_uuid(ij, "InvoiceID", ipath, &iid, &has_iid, why)) != XS_OK ||
            (e = sim__get_str(ij, "InvoiceNumber", ipath, &inum, &has_inum, why)) != XS_OK) {
            goto fail;
        }
    }
    if (!has_iid && !has_inum &&
        (e = sim__get_str(item, "InvoiceNumber", path, &inum, &has_inum, why)) != XS_OK) {
        goto fail;
    }
    if (has_iid) {
        sim_rec *r = sim__table_find(&t->t[SIM_INVOICE], &iid);
        if (r == NULL) {
            char ids[XS_UUID_STR];
            xs_uuid_format(&iid, ids);
            sim__err(errors, "The invoice with InvoiceID %s could not be found.", ids);
        } else {
            p->invoice = r->idx;
        }
    } else if (has_inum && inum[0] != '\0') {
        p->invoice = sim__invoice_by_number(t, inum);
        if (p->invoice == SIM_NONE) {
            sim__err(errors, "The invoice with InvoiceNumber %s could not be found.", inum);
        }
    } else {
        sim__err(errors, "An Invoice (InvoiceID or InvoiceNumber) must be specified.");
    }

    /* the account */
    json_t *aj = json_object_get(item, "Account");
    char apath[192];
    snprintf(apath, sizeof(apath), "%s.Account", path);
    xs_uuid aid;
    bool has_aid = false, has_code = false;
    const char *code = NULL;
    if (aj != NULL && !json_is_null(aj)) {
        if (!json_is_object(aj)) {
            snprintf(why, 256, "Account must be an object. Path '%s'.", apath);
            e = XS_EPARSE;
            goto fail;
        }
        if ((e = sim__get_uuid(aj, "AccountID", apath, &aid, &has_aid, why)) != XS_OK ||
            (e = sim__get_str(aj, "Code", apath, &code, &has_code, why)) != XS_OK) {
            goto fail;
        }
    }
    if (!has_aid && !has_code &&
        (e = sim__get_str(item, "Code", path, &code, &has_code, why)) != XS_OK) {
        goto fail;
    }
    if (has_aid) {
        sim_rec *r = sim__table_find(&t->t[SIM_ACCOUNT], &aid);
        p->account = r != NULL ? r->idx : SIM_NONE;
    } else if (has_code && code[0] != '\0') {
        p->account = sim__account_by_code(t, code);
    }
    if (!has_aid && !(has_code && code[0] != '\0')) {
        sim__err(errors, "An Account (AccountID or Code) must be specified.");
    } else if (p->account == SIM_NONE) {
        sim__err(errors, "The Account could not be found.");
    } else {
        const sim_account *a = sim__account_at(t, p->account);
        if (a->status != SIM_AS_ACTIVE) {
            sim__err(errors, "The Account %s is archived.", sim__strs_get(&a->s, A_CODE));
        } else if (strcmp(sim__strs_get(&a->s, A_TYPE), "BANK") != 0 && !a->enable_payments) {
            sim__err(errors,
                     "Account %s is not a bank account and does not allow payments to be made "
                     "to it.",
                     sim__strs_get(&a->s, A_CODE));
        }
    }

    /* values */
    bool has_amount;
    if ((e = sim__get_money(item, "Amount", path, &p->amount, &has_amount, why)) != XS_OK) {
        goto fail;
    }
    if (!has_amount) {
        sim__err(errors, "Amount must be specified.");
    } else {
        xs_money_round(p->amount, 2, XS_ROUND_HALF_UP, &p->amount);
        if (xs_money_is_negative(p->amount) || xs_money_is_zero(p->amount)) {
            sim__err(errors, "Payment amount must be greater than zero.");
        }
    }
    bool has_date;
    if ((e = sim__get_date(item, "Date", path, &p->date, &has_date, why)) != XS_OK) {
        goto fail;
    }
    p->date = sim__day_start(has_date ? p->date : b->now);
    bool has_rate;
    if ((e = sim__get_money(item, "CurrencyRate", path, &p->rate, &has_rate, why)) != XS_OK) {
        goto fail;
    }
    const char *ref = "";
    bool has_ref;
    if ((e = sim__get_str(item, "Reference", path, &ref, &has_ref, why)) != XS_OK ||
        (e = sim__get_bool(item, "IsReconciled", path, &p->reconciled, &present, why)) != XS_OK) {
        goto fail;
    }
    if (sim__utf8_len(ref) > 255) {
        sim__err(errors, "Reference must not be longer than 255 characters.");
    }
    p->reference = strdup(ref);
    if (p->reference == NULL) {
        e = XS_ENOMEM;
        goto fail;
    }

    if (p->invoice != SIM_NONE) {
        sim_invoice *inv = sim__invoice_at(t, p->invoice);
        if (!has_rate) {
            p->rate = inv->rate;
        }
        if (inv->status != SIM_IS_AUTHORISED) {
            sim__err(errors,
                     "Payments can only be made against AUTHORISED invoices; this invoice is %s.",
                     inv_status_names[inv->status]);
        } else if (has_amount) {
            xs_money left;
            xs_money_sub(inv->amount_due, claimed(b, inv), &left);
            if (xs_money_cmp(p->amount, left) > 0) {
                sim__err(errors, "Payment amount exceeds the amount outstanding on this document.");
            } else if (json_array_size(errors) == 0) {
                claim(b, inv, p->amount);
            }
        }
    }
    *out = p;
    return XS_OK;
fail:
    pay_plan_free(p);
    return e;
}

static xs_err pay_apply(sim_batch *b, void *pp, sim_rec **out)
{
    pay_plan *p = pp;
    sim_tenant *t = b->t;
    xs_err e;
    if (p->existing != NULL) {
        sim_payment *py = p->existing;
        py->status = SIM_PS_DELETED;
        if ((e = sim__touch(b, SIM_PAYMENT, &py->h, false)) != XS_OK) {
            return e;
        }
        sim_invoice *inv = sim__invoice_at(t, py->invoice);
        sim__invoice_recalc(t, inv);
        if ((e = sim__touch(b, SIM_INVOICE, &inv->h, false)) != XS_OK) {
            return e;
        }
        *out = &py->h;
        return XS_OK;
    }
    sim_payment *py = calloc(1, sizeof(*py));
    if (py == NULL) {
        return XS_ENOMEM;
    }
    const char *vals[P_NSTR] = {p->reference};
    if ((e = sim__strs_build(&py->s, vals, P_NSTR)) != XS_OK) {
        free(py);
        return e;
    }
    sim_invoice *inv = sim__invoice_at(t, p->invoice);
    sim__rng_uuid(&t->rng, &py->h.id);
    py->invoice = p->invoice;
    py->account = p->account;
    py->date = p->date;
    py->amount = p->amount;
    py->bank_amount = p->amount;
    py->rate = p->rate;
    py->reconciled = p->reconciled;
    py->status = SIM_PS_AUTHORISED;
    py->ptype = inv->type == SIM_ACCREC ? 0 : 1;
    if ((e = sim__touch(b, SIM_PAYMENT, &py->h, true)) != XS_OK) {
        sim__payment_free(py);
        return e;
    }
    if ((e = sim__idxlist_add(&inv->payments, py->h.idx)) != XS_OK) {
        return e;
    }
    sim__account_at(t, py->account)->uses++;
    sim__invoice_recalc(t, inv);
    if ((e = sim__touch(b, SIM_INVOICE, &inv->h, false)) != XS_OK) {
        return e;
    }
    *out = &py->h;
    return XS_OK;
}

static uint32_t payment_class_mask(const char *field, const char *value)
{
    if (strcasecmp(field, "Status") == 0) {
        for (int k = 0; k < 2; k++) {
            if (strcasecmp(value, pay_status[k]) == 0) {
                return (1u << k) | (1u << (2 + k));
            }
        }
        return 0;
    }
    if (strcasecmp(field, "PaymentType") == 0) {
        for (int k = 0; k < 2; k++) {
            if (strcasecmp(value, pay_types[k]) == 0) {
                return 0x3u << (2 * k);
            }
        }
        return 0;
    }
    return 0;
}

static const char *const payment_fields[] = {"PaymentID",
                                             "Date",
                                             "BankAmount",
                                             "Amount",
                                             "Reference",
                                             "CurrencyRate",
                                             "PaymentType",
                                             "Status",
                                             "UpdatedDateUTC",
                                             "HasAccount",
                                             "IsReconciled",
                                             "Account",
                                             "Invoice",
                                             "HasValidationErrors",
                                             NULL};

const sim_kind_ops sim__payment_ops = {
    .kind = SIM_PAYMENT,
    .plural = "Payments",
    .id_field = "PaymentID",
    .singular = "payment",
    .fields = payment_fields,
    .class_fields = {"Status", "PaymentType", NULL},
    .paged = true,
    .has_archive = false,
    .error_flag = "HasValidationErrors",
    .status_attr = true,
    /* Xero documents deletion only as deletePayment, POST /Payments/{PaymentID} */
    .batch_refusal = "A payment cannot be changed in a batch: payments are never edited, and "
                     "are deleted one at a time with POST /Payments/{PaymentID} and the body "
                     "{\"Status\":\"DELETED\"}.",
    .render = payment_render,
    .plan = pay_plan_make,
    .apply = pay_apply,
    .plan_free = pay_plan_free,
    .class_mask = payment_class_mask,
    .all_mask = 0xF,
    .default_mask = 0xF,
};
