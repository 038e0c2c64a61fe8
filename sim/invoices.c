/*
 * invoices.c: Invoices (ACCREC sales invoices and ACCPAY bills) with their line items, and
 * the line arithmetic bank transactions share.
 *
 * Arithmetic follows Xero, in exact decimals: a line's amount is Quantity x UnitAmount less
 * its discount, rounded once to cents (half away from zero); its tax is the line amount
 * times the tax rate (Exclusive) or the tax part of it (Inclusive), rounded to cents, unless
 * the client gave TaxAmount; totals add the rounded lines. Unit amounts keep 4 decimals with
 * unitdp=4 and are rounded to 2 otherwise; quantities keep 4.
 *
 * Status: created as DRAFT, SUBMITTED or AUTHORISED; DRAFT and SUBMITTED may move between
 * themselves, to AUTHORISED or to DELETED; AUTHORISED may become VOIDED only without
 * payments; PAID is reached (and left) only through payments; VOIDED and DELETED are final.
 * ACCREC numbers are unique (DELETED ones aside); ACCPAY numbers are not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "kinds.h"
#include "store.h"
#include "util.h"

static const char *const inv_types[2] = {"ACCREC", "ACCPAY"};
static const char *const inv_status_names[6] = {"DRAFT", "SUBMITTED", "AUTHORISED",
                                                "PAID",  "VOIDED",    "DELETED"};
const char *const sim__lat_names[3] = {"Exclusive", "Inclusive", "NoTax"};

int sim__lat_parse(const char *s)
{
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, sim__lat_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

xs_err sim__get_lat(const json_t *item, const char *path, int *out, bool *present, json_t *errors,
                    char *why)
{
    const char *sv;
    xs_err e = sim__get_str(item, "LineAmountTypes", path, &sv, present, why);
    if (e == XS_OK && *present) {
        *out = sim__lat_parse(sv);
        if (*out < 0) {
            sim__err(errors, "LineAmountTypes must be Exclusive, Inclusive or NoTax.");
        }
    }
    return e;
}

xs_err sim__get_rate(const json_t *item, const char *path, xs_money *out, bool *present,
                     json_t *errors, char *why)
{
    xs_err e = sim__get_money(item, "CurrencyRate", path, out, present, why);
    if (e == XS_OK && *present && (xs_money_is_negative(*out) || xs_money_is_zero(*out))) {
        sim__err(errors, "CurrencyRate must be greater than zero.");
        *out = (xs_money){0};
    }
    return e;
}

bool sim__currency_ok(const char *code)
{
    static const char *const cur[] = {"NZD", "AUD", "USD", "GBP", "EUR", "CAD",
                                      "SGD", "JPY", "HKD", "CHF", "ZAR"};
    for (size_t i = 0; i < sizeof(cur) / sizeof(cur[0]); i++) {
        if (strcmp(code, cur[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int word_index(const char *const *w, int n, const char *s)
{
    for (int i = 0; i < n; i++) {
        if (strcasecmp(w[i], s) == 0) {
            return i;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ lines */

static xs_money money_int(int64_t n)
{
    xs_money m = {n * XS_MONEY_ONE};
    return m;
}

static xs_err round_to(xs_money *m, int places)
{
    return xs_money_round(*m, places, XS_ROUND_HALF_UP, m);
}

/* line_amount computes a line's amount from quantity, unit amount and discount. */
static xs_err line_amount(sim_line *l)
{
    xs_money rate = l->has_discount_rate ? l->discount_rate : xs_money_zero();
    xs_err e = sim__money_line(l->quantity, l->unit, rate, &l->amount);
    if (e == XS_OK && l->has_discount_amount) {
        e = xs_money_sub(l->amount, l->discount_amount, &l->amount);
    }
    return e;
}

/* line_differs tells whether line l (its text values in vals) differs from base, the old
 * line it updates, in the values a person edits: Description, ItemCode, AccountCode, TaxType,
 * Quantity, UnitAmount, the discount, and LineAmount and TaxAmount when they were sent (la,
 * tax; NULL when not: then they follow from the others). */
static bool line_differs(const sim_line *l, const char *const *vals, const sim_line *base,
                         const xs_money *la, const xs_money *tax)
{
    for (unsigned f = 0; f < L_NSTR; f++) {
        if (strcmp(vals[f], sim__strs_get(&base->s, f)) != 0) {
            return true;
        }
    }
    return xs_money_cmp(l->quantity, base->quantity) != 0 ||
           xs_money_cmp(l->unit, base->unit) != 0 ||
           l->has_discount_rate != base->has_discount_rate ||
           xs_money_cmp(l->discount_rate, base->discount_rate) != 0 ||
           l->has_discount_amount != base->has_discount_amount ||
           xs_money_cmp(l->discount_amount, base->discount_amount) != 0 ||
           (la != NULL && xs_money_cmp(*la, base->amount) != 0) ||
           (tax != NULL && xs_money_cmp(*tax, base->tax) != 0);
}

xs_err sim__lines_parse(sim_batch *b, const json_t *arr, const sim_line *old, uint32_t nold,
                        bool sales, bool allow_discount, sim_lines_in *out, json_t *errors,
                        char *why)
{
    sim_tenant *t = b->t;
    if (!json_is_array(arr)) {
        snprintf(why, 256, "LineItems must be an array. Path '%s.LineItems'.", b->path);
        return XS_EPARSE;
    }
    size_t n = json_array_size(arr);
    sim_line *lines = calloc(n ? n : 1, sizeof(*lines));
    if (lines == NULL) {
        return XS_ENOMEM;
    }
    uint32_t made = 0, kept = 0, added = 0;
    bool changed = false;
    xs_err e = XS_OK;
    for (size_t i = 0; i < n; i++) {
        json_t *li = json_array_get(arr, i);
        char path[192];
        snprintf(path, sizeof(path), "%s.LineItems[%zu]", b->path, i);
        if (!json_is_object(li)) {
            snprintf(why, 256, "a line item must be an object. Path '%s'.", path);
            e = XS_EPARSE;
            goto fail;
        }
        sim_line *l = &lines[made++];
        const char *vals[L_NSTR] = {"", "", "", ""};
        xs_uuid lid;
        bool has_lid = false;
        if ((e = sim__get_uuid(li, "LineItemID", path, &lid, &has_lid, why)) != XS_OK) {
            goto fail;
        }
        const sim_line *base = NULL;
        for (uint32_t k = 0; has_lid && k < nold; k++) {
            if (xs_uuid_eq(&old[k].id, &lid)) {
                base = &old[k];
            }
        }
        if (has_lid) {
            char ids[XS_UUID_STR];
            xs_uuid_format(&lid, ids);
            if (base == NULL) {
                sim__err(errors,
                         "The line item with LineItemID %s could not be found on this document.",
                         ids);
            }
            for (uint32_t k = 0; base != NULL && k + 1 < made; k++) {
                if (xs_uuid_eq(&lines[k].id, &lid)) {
                    sim__err(errors,
                             "The line item with LineItemID %s appears more than once in "
                             "LineItems.",
                             ids);
                    break;
                }
            }
        }
        if (base != NULL) {
            *l = *base;
            l->s.p = NULL;
            sim__strs_load(&base->s, vals, L_NSTR);
            kept++;
        } else {
            /* a new line, with an id of Xero's making (never the client's) */
            l->quantity = money_int(1);
            sim__rng_uuid(&t->rng, &l->id);
            added += !has_lid;
        }
        static const char *const keys[L_NSTR] = {"Description", "ItemCode", "AccountCode",
                                                 "TaxType"};
        static const size_t maxes[L_NSTR] = {4000, 30, 10, 50};
        for (int k = 0; k < L_NSTR; k++) {
            const char *v;
            bool present;
            if ((e = sim__get_str(li, keys[k], path, &v, &present, why)) != XS_OK) {
                goto fail;
            }
            if (present) {
                if (sim__utf8_len(v) > maxes[k]) {
                    sim__err(errors, "%s must not be longer than %zu characters.", keys[k],
                             maxes[k]);
                } else {
                    vals[k] = v;
                }
            }
        }
        xs_money q, u, la, tax, dr, da;
        bool has_q, has_u, has_la, has_tax, has_dr, has_da;
        if ((e = sim__get_money(li, "Quantity", path, &q, &has_q, why)) != XS_OK ||
            (e = sim__get_money(li, "UnitAmount", path, &u, &has_u, why)) != XS_OK ||
            (e = sim__get_money(li, "LineAmount", path, &la, &has_la, why)) != XS_OK ||
            (e = sim__get_money(li, "TaxAmount", path, &tax, &has_tax, why)) != XS_OK ||
            (e = sim__get_money(li, "DiscountRate", path, &dr, &has_dr, why)) != XS_OK ||
            (e = sim__get_money(li, "DiscountAmount", path, &da, &has_da, why)) != XS_OK) {
            goto fail;
        }
        if (has_q) {
            round_to(&q, 4);
            l->quantity = q;
        }
        if (has_u) {
            round_to(&u, b->unitdp4 ? 4 : 2);
            l->unit = u;
        }
        if (has_dr || has_da) {
            if (!allow_discount) {
                sim__err(errors, "Discounts are only supported on sales invoices (ACCREC).");
            }
            if (has_dr) {
                round_to(&dr, 2);
                if (xs_money_is_negative(dr) || xs_money_cmp(dr, money_int(100)) > 0) {
                    sim__err(errors, "DiscountRate must be between 0 and 100.");
                    dr = xs_money_zero();
                }
                l->discount_rate = dr;
                l->has_discount_rate = !xs_money_is_zero(dr);
            }
            if (has_da) {
                round_to(&da, 2);
                if (xs_money_is_negative(da)) {
                    sim__err(errors, "DiscountAmount must not be negative.");
                    da = xs_money_zero();
                }
                l->discount_amount = da;
                l->has_discount_amount = !xs_money_is_zero(da);
            }
        }
        if (has_la) {
            round_to(&la, 2);
            if (!has_u && base == NULL) {
                /* only a line amount: one unit of it */
                l->unit = la;
                if (!has_q) {
                    l->quantity = money_int(1);
                }
                if (l->has_discount_rate || l->has_discount_amount) {
                    sim__err(errors, "Give UnitAmount and Quantity with a discount, not only "
                                     "LineAmount.");
                }
            }
        }
        if (line_amount(l) != XS_OK) {
            sim__err(errors, "The line amount is out of range.");
            l->amount = xs_money_zero();
        } else if (has_la && xs_money_cmp(la, l->amount) != 0) {
            char a[XS_MONEY_TEXT_MAX], c[XS_MONEY_TEXT_MAX];
            xs_money_format_min(la, 2, a);
            xs_money_format_min(l->amount, 2, c);
            sim__err(errors,
                     "The LineAmount %s does not equal Quantity x UnitAmount less discount (%s).",
                     a, c);
        }
        if (has_tax) {
            round_to(&tax, 2);
            l->tax = tax;
            l->tax_given = true;
        } else if (base == NULL || has_q || has_u || has_la || has_dr || has_da) {
            l->tax_given = base != NULL && base->tax_given && !(has_q || has_u || has_la);
        }
        if (vals[L_DESCRIPTION][0] == '\0' && vals[L_ITEMCODE][0] == '\0') {
            sim__err(errors, "The description field is mandatory for each line item.");
        }
        const char *code = vals[L_ACCOUNTCODE];
        uint32_t acct = SIM_NONE;
        if (code[0] != '\0') {
            acct = sim__account_by_code(t, code);
            if (acct == SIM_NONE || sim__account_at(t, acct)->status != SIM_AS_ACTIVE) {
                sim__err(errors, "Account code '%s' is not a valid code for this document.", code);
                acct = SIM_NONE;
            }
        }
        bool tax_given_type =
            json_object_get(li, "TaxType") != NULL && !json_is_null(json_object_get(li, "TaxType"));
        if (vals[L_TAXTYPE][0] != '\0') {
            if (sim__taxrate(vals[L_TAXTYPE]) == NULL) {
                sim__err(errors,
                         "The TaxType code '%s' does not exist or cannot be used for this type "
                         "of transaction.",
                         vals[L_TAXTYPE]);
            }
        } else if (!tax_given_type || vals[L_TAXTYPE][0] == '\0') {
            const char *dflt = sales ? "OUTPUT2" : "INPUT2";
            if (acct != SIM_NONE) {
                const char *at = sim__strs_get(&sim__account_at(t, acct)->s, A_TAXTYPE);
                if (at[0] != '\0') {
                    dflt = at;
                }
            }
            vals[L_TAXTYPE] = dflt;
        }
        if (base != NULL && !changed) {
            changed = line_differs(l, vals, base, has_la ? &la : NULL, has_tax ? &tax : NULL);
        }
        if ((e = sim__strs_build(&l->s, vals, L_NSTR)) != XS_OK) {
            goto fail;
        }
    }
    out->lines = lines;
    out->n = made;
    out->kept = kept;
    out->added = added;
    out->changed = changed;
    return XS_OK;
fail:
    sim__lines_free(lines, made);
    return e;
}

xs_err sim__lines_total(sim_line *lines, uint32_t n, int lat, xs_money *subtotal, xs_money *tax,
                        xs_money *total, xs_money *discount)
{
    xs_money sub = {0}, tx = {0}, tot = {0}, disc = {0};
    for (uint32_t i = 0; i < n; i++) {
        sim_line *l = &lines[i];
        if (lat == SIM_LAT_NOTAX) {
            l->tax = xs_money_zero();
        } else if (!l->tax_given) {
            const sim_taxrate *tr = sim__taxrate(sim__strs_get(&l->s, L_TAXTYPE));
            xs_money rate = tr != NULL ? tr->rate : xs_money_zero();
            xs_money prod, div = money_int(100);
            if (lat == SIM_LAT_INCLUSIVE && xs_money_add(div, rate, &div) != XS_OK) {
                return XS_ERANGE;
            }
            /* amount (2 places) x rate (at most 4) is exact at 6 places; one rounding */
            if (xs_money_mul(l->amount, rate, 6, XS_ROUND_HALF_UP, &prod) != XS_OK ||
                xs_money_div(prod, div, 2, XS_ROUND_HALF_UP, &l->tax) != XS_OK) {
                return XS_ERANGE;
            }
        }
        xs_money net = l->amount;
        if (lat == SIM_LAT_INCLUSIVE && xs_money_sub(l->amount, l->tax, &net) != XS_OK) {
            return XS_ERANGE;
        }
        if (xs_money_add(sub, net, &sub) != XS_OK || xs_money_add(tx, l->tax, &tx) != XS_OK) {
            return XS_ERANGE;
        }
        if (l->has_discount_rate || l->has_discount_amount) {
            xs_money gross, d;
            if (sim__money_line(l->quantity, l->unit, xs_money_zero(), &gross) != XS_OK ||
                xs_money_sub(gross, l->amount, &d) != XS_OK ||
                xs_money_add(disc, d, &disc) != XS_OK) {
                return XS_ERANGE;
            }
        }
    }
    if (xs_money_add(sub, tx, &tot) != XS_OK) {
        return XS_ERANGE;
    }
    *subtotal = sub;
    *tax = tx;
    *total = tot;
    *discount = disc;
    return XS_OK;
}

xs_err sim__lines_copy(const sim_line *in, uint32_t n, sim_line **out)
{
    sim_line *l = calloc(n ? n : 1, sizeof(*l));
    if (l == NULL) {
        return XS_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        l[i] = in[i];
        l[i].s.p = NULL;
        const char *vals[L_NSTR];
        sim__strs_load(&in[i].s, vals, L_NSTR);
        if (sim__strs_build(&l[i].s, vals, L_NSTR) != XS_OK) {
            sim__lines_free(l, i);
            return XS_ENOMEM;
        }
    }
    *out = l;
    return XS_OK;
}

void sim__lines_uses(sim_tenant *t, const sim_line *lines, uint32_t n, int delta)
{
    for (uint32_t i = 0; i < n; i++) {
        const char *code = sim__strs_get(&lines[i].s, L_ACCOUNTCODE);
        if (code[0] == '\0') {
            continue;
        }
        uint32_t a = sim__account_by_code(t, code);
        if (a != SIM_NONE) {
            sim_account *acc = sim__account_at(t, a);
            if (delta < 0 && acc->uses > 0) {
                acc->uses--;
            } else if (delta > 0) {
                acc->uses++;
            }
        }
    }
}

json_t *sim__lines_render(const sim_line *lines, uint32_t n, bool unitdp4)
{
    json_t *arr = json_array();
    sim_shared sh = {0};
    for (uint32_t i = 0; i < n; i++) {
        const sim_line *l = &lines[i];
        const char *v[L_NSTR];
        sim__strs_load(&l->s, v, L_NSTR);
        json_t *o = json_object();
        json_object_set_new_nocheck(o, "LineItemID", sim__json_uuid(&l->id));
        json_object_set_new_nocheck(o, "Description", sim__shared_str(&sh, v[L_DESCRIPTION]));
        json_object_set_new_nocheck(o, "Quantity", sim__json_money(l->quantity, 4));
        json_object_set_new_nocheck(o, "UnitAmount", sim__json_money(l->unit, unitdp4 ? 4 : 2));
        if (v[L_ITEMCODE][0] != '\0') {
            json_object_set_new_nocheck(o, "ItemCode", json_string_nocheck(v[L_ITEMCODE]));
        }
        if (v[L_ACCOUNTCODE][0] != '\0') {
            json_object_set_new_nocheck(o, "AccountCode", json_string_nocheck(v[L_ACCOUNTCODE]));
        }
        json_object_set_new_nocheck(o, "TaxType", sim__shared_str(&sh, v[L_TAXTYPE]));
        json_object_set_new_nocheck(o, "TaxAmount", sim__json_money(l->tax, 2));
        json_object_set_new_nocheck(o, "LineAmount", sim__json_money(l->amount, 2));
        json_object_set_new_nocheck(o, "Tracking", sim__shared_array(&sh));
        if (l->has_discount_rate) {
            json_object_set_new_nocheck(o, "DiscountRate", sim__json_money(l->discount_rate, 2));
        }
        if (l->has_discount_amount) {
            json_object_set_new_nocheck(o, "DiscountAmount",
                                        sim__json_money(l->discount_amount, 2));
        }
        json_array_append_new(arr, o);
    }
    sim__shared_fini(&sh);
    return arr;
}

/* ------------------------------------------------------------------ amounts and status */

void sim__contact_count(sim_tenant *t, uint32_t contact, int type, int delta)
{
    if (contact == SIM_NONE) {
        return;
    }
    sim_contact *c = sim__contact_at(t, contact);
    uint32_t *n = type == SIM_ACCREC ? &c->n_accrec : &c->n_accpay;
    if (delta < 0 && *n > 0) {
        (*n)--;
    } else if (delta > 0) {
        (*n)++;
    }
}

static bool counted(uint8_t status)
{
    return status != SIM_IS_DELETED && status != SIM_IS_VOIDED;
}

void sim__invoice_recalc(sim_tenant *t, sim_invoice *inv)
{
    xs_money paid = {0};
    xs_time last = SIM_NO_TIME;
    for (uint32_t k = 0; k < inv->payments.n; k++) {
        const sim_payment *p = sim__payment_at(t, inv->payments.v[k]);
        if (p->status != SIM_PS_AUTHORISED) {
            continue;
        }
        xs_money_add(paid, p->amount, &paid);
        if (p->date > last) {
            last = p->date;
        }
    }
    inv->amount_paid = paid;
    switch (inv->status) {
    case SIM_IS_AUTHORISED:
    case SIM_IS_PAID:
        xs_money_sub(inv->total, paid, &inv->amount_due);
        if (inv->status == SIM_IS_AUTHORISED && xs_money_is_zero(inv->amount_due) &&
            (!xs_money_is_zero(paid) || xs_money_is_zero(inv->total))) {
            inv->status = SIM_IS_PAID;
            inv->fully_paid = last != SIM_NO_TIME ? last : inv->date;
        } else if (inv->status == SIM_IS_PAID && !xs_money_is_zero(inv->amount_due)) {
            inv->status = SIM_IS_AUTHORISED;
            inv->fully_paid = SIM_NO_TIME;
        }
        break;
    case SIM_IS_DRAFT:
    case SIM_IS_SUBMITTED:
        inv->amount_due = inv->total;
        break;
    default:
        inv->amount_due = xs_money_zero();
        break;
    }
}

/* ------------------------------------------------------------------ rendering */

static void set_date(json_t *o, const char *key, const char *skey, xs_time t)
{
    if (t == SIM_NO_TIME) {
        return;
    }
    if (skey != NULL) {
        char buf[XS_TIME_ISO_MAX];
        sim__time_format_plain(t, buf);
        json_object_set_new_nocheck(o, skey, json_string_nocheck(buf));
    }
    json_object_set_new_nocheck(o, key, sim__json_xero_date(t));
}

json_t *sim__payment_brief(sim_tenant *t, const sim_payment *p)
{
    (void)t;
    json_t *o = json_object();
    json_object_set_new_nocheck(o, "PaymentID", sim__json_uuid(&p->h.id));
    set_date(o, "Date", NULL, p->date);
    json_object_set_new_nocheck(o, "Amount", sim__json_money(p->amount, 2));
    const char *ref = sim__strs_get(&p->s, P_REFERENCE);
    if (ref[0] != '\0') {
        json_object_set_new_nocheck(o, "Reference", json_string(ref));
    }
    json_object_set_new_nocheck(o, "CurrencyRate", sim__json_money_min(p->rate, 1));
    json_object_set_new_nocheck(o, "HasAccount", json_false());
    json_object_set_new_nocheck(o, "HasValidationErrors", json_false());
    return o;
}

json_t *sim__invoice_nested(sim_tenant *t, const sim_invoice *inv, const sim_render_opts *o)
{
    (void)o;
    const char *v[I_NSTR];
    sim__strs_load(&inv->s, v, I_NSTR);
    sim_shared sh = {0};
    json_t *j = json_object();
    json_object_set_new_nocheck(j, "Type", json_string_nocheck(inv_types[inv->type]));
    json_object_set_new_nocheck(j, "InvoiceID", sim__json_uuid(&inv->h.id));
    json_object_set_new_nocheck(j, "InvoiceNumber", sim__shared_str(&sh, v[I_NUMBER]));
    if (v[I_REFERENCE][0] != '\0') {
        json_object_set_new_nocheck(j, "Reference", json_string_nocheck(v[I_REFERENCE]));
    }
    json_object_set_new_nocheck(j, "Payments", sim__shared_array(&sh));
    json_object_set_new_nocheck(j, "CreditNotes", sim__shared_array(&sh));
    json_object_set_new_nocheck(j, "Prepayments", sim__shared_array(&sh));
    json_object_set_new_nocheck(j, "Overpayments", sim__shared_array(&sh));
    json_object_set_new_nocheck(j, "AmountDue", sim__json_money(inv->amount_due, 2));
    json_object_set_new_nocheck(j, "AmountPaid", sim__json_money(inv->amount_paid, 2));
    json_object_set_new_nocheck(j, "HasErrors", json_false());
    json_object_set_new_nocheck(j, "IsDiscounted", json_false());
    json_object_set_new_nocheck(j, "Contact", sim__contact_ref(t, inv->contact));
    set_date(j, "Date", "DateString", inv->date);
    json_object_set_new_nocheck(j, "Status", json_string_nocheck(inv_status_names[inv->status]));
    json_object_set_new_nocheck(j, "LineAmountTypes",
                                json_string_nocheck(sim__lat_names[inv->lat]));
    json_object_set_new_nocheck(j, "LineItems", sim__shared_array(&sh));
    json_object_set_new_nocheck(j, "SubTotal", sim__json_money(inv->subtotal, 2));
    json_object_set_new_nocheck(j, "TotalTax", sim__json_money(inv->total_tax, 2));
    json_object_set_new_nocheck(j, "Total", sim__json_money(inv->total, 2));
    json_object_set_new_nocheck(j, "CurrencyCode", sim__shared_str(&sh, v[I_CURRENCY]));
    sim__shared_fini(&sh);
    return j;
}

static json_t *invoice_render(sim_tenant *t, const sim_rec *r, const sim_render_opts *o)
{
    const sim_invoice *inv = (const sim_invoice *)r;
    if (o->view == SIM_VIEW_NESTED) {
        return sim__invoice_nested(t, inv, o);
    }
    const char *v[I_NSTR];
    sim__strs_load(&inv->s, v, I_NSTR);
    bool summary = o->view == SIM_VIEW_SUMMARY;
    sim_shared sh = {0};
    json_t *j = json_object();
    json_object_set_new_nocheck(j, "Type", json_string_nocheck(inv_types[inv->type]));
    json_object_set_new_nocheck(j, "InvoiceID", sim__json_uuid(&r->id));
    json_object_set_new_nocheck(j, "InvoiceNumber", sim__shared_str(&sh, v[I_NUMBER]));
    json_object_set_new_nocheck(j, "Reference", sim__shared_str(&sh, v[I_REFERENCE]));
    if (!summary) {
        json_t *pays = NULL;
        for (uint32_t k = 0; k < inv->payments.n; k++) {
            const sim_payment *p = sim__payment_at(t, inv->payments.v[k]);
            if (p->status == SIM_PS_AUTHORISED) {
                pays = pays != NULL ? pays : json_array();
                json_array_append_new(pays, sim__payment_brief(t, p));
            }
        }
        json_object_set_new_nocheck(j, "Payments", pays != NULL ? pays : sim__shared_array(&sh));
        json_object_set_new_nocheck(j, "CreditNotes", sim__shared_array(&sh));
        json_object_set_new_nocheck(j, "Prepayments", sim__shared_array(&sh));
        json_object_set_new_nocheck(j, "Overpayments", sim__shared_array(&sh));
    }
    json_object_set_new_nocheck(j, "AmountDue", sim__json_money(inv->amount_due, 2));
    json_object_set_new_nocheck(j, "AmountPaid", sim__json_money(inv->amount_paid, 2));
    json_object_set_new_nocheck(j, "AmountCredited", sim__json_money(xs_money_zero(), 2));
    json_object_set_new_nocheck(j, "CurrencyRate", sim__json_money_min(inv->rate, 1));
    json_object_set_new_nocheck(j, "IsDiscounted",
                                json_boolean(!xs_money_is_zero(inv->total_discount)));
    json_object_set_new_nocheck(j, "HasAttachments", json_false());
    json_object_set_new_nocheck(j, "HasErrors", json_false());
    json_object_set_new_nocheck(j, "Contact", sim__contact_ref(t, inv->contact));
    set_date(j, "Date", "DateString", inv->date);
    set_date(j, "DueDate", "DueDateString", inv->due);
    set_date(j, "ExpectedPaymentDate", NULL, inv->expected);
    set_date(j, "PlannedPaymentDate", NULL, inv->planned);
    if (v[I_BRANDING][0] != '\0') {
        json_object_set_new_nocheck(j, "BrandingThemeID", json_string_nocheck(v[I_BRANDING]));
    }
    json_object_set_new_nocheck(j, "Status", json_string_nocheck(inv_status_names[inv->status]));
    json_object_set_new_nocheck(j, "LineAmountTypes",
                                json_string_nocheck(sim__lat_names[inv->lat]));
    if (o->view == SIM_VIEW_FULL) {
        json_object_set_new_nocheck(j, "LineItems",
                                    sim__lines_render(inv->lines, inv->nlines, o->unitdp4));
    }
    json_object_set_new_nocheck(j, "SubTotal", sim__json_money(inv->subtotal, 2));
    json_object_set_new_nocheck(j, "TotalTax", sim__json_money(inv->total_tax, 2));
    json_object_set_new_nocheck(j, "Total", sim__json_money(inv->total, 2));
    if (!xs_money_is_zero(inv->total_discount)) {
        json_object_set_new_nocheck(j, "TotalDiscount", sim__json_money(inv->total_discount, 2));
    }
    json_object_set_new_nocheck(j, "UpdatedDateUTC", sim__json_xero_date(r->updated));
    json_object_set_new_nocheck(j, "CurrencyCode", sim__shared_str(&sh, v[I_CURRENCY]));
    set_date(j, "FullyPaidOnDate", NULL, inv->fully_paid);
    json_object_set_new_nocheck(j, "SentToContact", json_boolean(inv->sent_to_contact));
    if (v[I_URL][0] != '\0') {
        json_object_set_new_nocheck(j, "Url", json_string_nocheck(v[I_URL]));
    }
    sim__shared_fini(&sh);
    return j;
}

/* ------------------------------------------------------------------ planning */

typedef struct inv_plan {
    sim_invoice *existing;
    sim_invoice nv; /* the new state: scalars, owned strings, owned lines */
    bool lines_set;
    char *auto_name; /* a contact to find or create by name at apply time */
    bool number_auto;
} inv_plan;

static void inv_plan_free(void *pp)
{
    inv_plan *p = pp;
    if (p == NULL) {
        return;
    }
    sim__strs_free(&p->nv.s);
    if (p->lines_set) {
        sim__lines_free(p->nv.lines, p->nv.nlines);
    }
    free(p->auto_name);
    free(p);
}

/* resolve_contact reads a {ContactID | ContactNumber | Name} reference. */
static xs_err resolve_contact(sim_batch *b, const json_t *cj, const char *path, uint32_t *idx,
                              char **auto_name, json_t *errors, char *why)
{
    sim_tenant *t = b->t;
    if (!json_is_object(cj)) {
        snprintf(why, 256, "Contact must be an object. Path '%s.Contact'.", path);
        return XS_EPARSE;
    }
    char cpath[192];
    snprintf(cpath, sizeof(cpath), "%s.Contact", path);
    xs_uuid id;
    bool has_id, has_num, has_name;
    const char *num, *name;
    xs_err e;
    if ((e = sim__get_uuid(cj, "ContactID", cpath, &id, &has_id, why)) != XS_OK ||
        (e = sim__get_str(cj, "ContactNumber", cpath, &num, &has_num, why)) != XS_OK ||
        (e = sim__get_str(cj, "Name", cpath, &name, &has_name, why)) != XS_OK) {
        return e;
    }
    *idx = SIM_NONE;
    if (has_id) {
        sim_rec *r = sim__table_find(&t->t[SIM_CONTACT], &id);
        if (r == NULL) {
            char ids[XS_UUID_STR];
            xs_uuid_format(&id, ids);
            sim__err(errors, "The contact with ContactID %s could not be found.", ids);
            return XS_OK;
        }
        *idx = r->idx;
        return XS_OK;
    }
    if (has_num && num[0] != '\0') {
        *idx = sim__contact_by_number(t, num);
        if (*idx == SIM_NONE) {
            sim__err(errors, "The contact with ContactNumber %s could not be found.", num);
        }
        return XS_OK;
    }
    if (has_name && name[0] != '\0') {
        *idx = sim__contact_by_name(t, name, true);
        if (*idx == SIM_NONE) {
            if (sim__utf8_len(name) > 255) {
                sim__err(errors, "Name must not be longer than 255 characters.");
                return XS_OK;
            }
            *auto_name = strdup(name);
            return *auto_name != NULL ? XS_OK : XS_ENOMEM;
        }
        return XS_OK;
    }
    sim__err(errors, "A Contact must be specified for this type of transaction.");
    return XS_OK;
}

/* invoice_has_payments tells whether inv has a payment allocated to it: an amount paid, or
 * any payment not deleted. */
static bool invoice_has_payments(sim_tenant *t, const sim_invoice *inv)
{
    if (!xs_money_is_zero(inv->amount_paid)) {
        return true;
    }
    for (uint32_t k = 0; k < inv->payments.n; k++) {
        if (sim__payment_at(t, inv->payments.v[k])->status != SIM_PS_DELETED) {
            return true;
        }
    }
    return false;
}

static xs_err inv_plan_make(sim_batch *b, const json_t *item, sim_rec *existing, void **out,
                            json_t *errors, char *why)
{
    sim_tenant *t = b->t;
    sim_invoice *ex = (sim_invoice *)existing;
    const char *path = b->path;
    inv_plan *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return XS_ENOMEM;
    }
    p->existing = ex;
    sim_invoice *nv = &p->nv;
    const char *vals[I_NSTR] = {"", "", "", "", ""};
    if (ex != NULL) {
        *nv = *ex;
        nv->s.p = NULL;
        nv->payments.v = NULL;
        sim__strs_load(&ex->s, vals, I_NSTR);
    } else {
        nv->type = 0xFF;
        nv->status = SIM_IS_DRAFT;
        nv->lat = SIM_LAT_EXCLUSIVE;
        nv->contact = SIM_NONE;
        nv->date = sim__day_start(b->now);
        nv->due = nv->expected = nv->planned = nv->fully_paid = SIM_NO_TIME;
        nv->rate = money_int(1);
        nv->lines = NULL;
        nv->nlines = 0;
        vals[I_CURRENCY] = t->currency;
    }
    bool has_payments = ex != NULL && invoice_has_payments(t, ex);
    bool locked_change = false;
    sim_lines_in li = {0};
    bool lines_sent = false;
    xs_err e;
    const char *sv;
    bool present;

    /* Type */
    if ((e = sim__get_str(item, "Type", path, &sv, &present, why)) != XS_OK) {
        goto fail;
    }
    if (present) {
        int k = word_index(inv_types, 2, sv);
        if (k < 0) {
            sim__err(errors, "Invoice Type must be ACCREC or ACCPAY (credit notes, prepayments "
                             "and overpayments have their own endpoints).");
        } else if (ex != NULL && k != ex->type) {
            sim__err(errors, "The Type of an invoice cannot be changed.");
        } else {
            nv->type = (uint8_t)k;
        }
    } else if (ex == NULL) {
        sim__err(errors, "Invoice Type must be specified.");
    }
    bool sales = nv->type == SIM_ACCREC;

    /* Contact */
    json_t *cj = json_object_get(item, "Contact");
    if (cj != NULL && !json_is_null(cj)) {
        uint32_t idx = SIM_NONE;
        size_t before = json_array_size(errors);
        if ((e = resolve_contact(b, cj, path, &idx, &p->auto_name, errors, why)) != XS_OK) {
            goto fail;
        }
        if (json_array_size(errors) == before) {
            if (idx != SIM_NONE && sim__contact_at(t, idx)->status != SIM_CS_ACTIVE &&
                (ex == NULL || idx != ex->contact)) {
                sim__err(errors,
                         "The contact %s is archived; transactions cannot be created for "
                         "archived contacts.",
                         sim__strs_get(&sim__contact_at(t, idx)->s, C_NAME));
            }
            if (ex != NULL && (idx != ex->contact || p->auto_name != NULL)) {
                locked_change = true;
            }
            nv->contact = idx;
        }
    } else if (ex == NULL) {
        sim__err(errors, "A Contact must be specified for this type of transaction.");
    }

    /* text */
    static const struct {
        const char *key;
        unsigned slot;
        size_t max;
    } sf[] = {{"InvoiceNumber", I_NUMBER, 255},
              {"Reference", I_REFERENCE, 255},
              {"Url", I_URL, 2000},
              {"CurrencyCode", I_CURRENCY, 3},
              {"BrandingThemeID", I_BRANDING, 36}};
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
        if (sf[k].slot == I_CURRENCY) {
            if (!sim__currency_ok(sv)) {
                sim__err(errors, "The currency %s is not enabled for this organisation.", sv);
                continue;
            }
            if (ex != NULL && strcmp(sv, vals[I_CURRENCY]) != 0) {
                locked_change = true;
            }
        }
        vals[sf[k].slot] = sv;
    }

    /* dates, rate, flags */
    static const struct {
        const char *key;
        size_t off;
    } df[] = {{"Date", offsetof(sim_invoice, date)},
              {"DueDate", offsetof(sim_invoice, due)},
              {"ExpectedPaymentDate", offsetof(sim_invoice, expected)},
              {"PlannedPaymentDate", offsetof(sim_invoice, planned)}};
    for (size_t k = 0; k < sizeof(df) / sizeof(df[0]); k++) {
        xs_time tv;
        if ((e = sim__get_date(item, df[k].key, path, &tv, &present, why)) != XS_OK) {
            goto fail;
        }
        if (present) {
            xs_time *dst = (xs_time *)((char *)nv + df[k].off);
            if (k == 0 && ex != NULL && sim__day_start(tv) != ex->date) {
                locked_change = true;
            }
            *dst = sim__day_start(tv);
        }
    }
    xs_money rate;
    if ((e = sim__get_rate(item, path, &rate, &present, errors, why)) != XS_OK) {
        goto fail;
    }
    if (present) {
        if (!xs_money_is_zero(rate)) {
            if (ex != NULL && xs_money_cmp(rate, ex->rate) != 0) {
                locked_change = true;
            }
            nv->rate = rate;
        }
    } else if (ex == NULL && strcmp(vals[I_CURRENCY], t->currency) != 0) {
        nv->rate = money_int(1);
    }
    if ((e = sim__get_bool(item, "SentToContact", path, &nv->sent_to_contact, &present, why)) !=
        XS_OK) {
        goto fail;
    }
    int lat;
    if ((e = sim__get_lat(item, path, &lat, &present, errors, why)) != XS_OK) {
        goto fail;
    }
    if (present && lat >= 0) {
        if (ex != NULL && lat != ex->lat) {
            locked_change = true;
        }
        nv->lat = (uint8_t)lat;
    }

    /* lines */
    json_t *lj = json_object_get(item, "LineItems");
    if (lj != NULL && !json_is_null(lj)) {
        if ((e = sim__lines_parse(b, lj, ex ? ex->lines : NULL, ex ? ex->nlines : 0, sales, sales,
                                  &li, errors, why)) != XS_OK) {
            goto fail;
        }
        nv->lines = li.lines;
        nv->nlines = li.n;
        p->lines_set = true;
        lines_sent = true;
    } else {
        /* a private copy: totals below may recompute tax without touching the record */
        sim_line *copy = NULL;
        if ((e = sim__lines_copy(ex ? ex->lines : NULL, ex ? ex->nlines : 0, &copy)) != XS_OK) {
            nv->lines = NULL;
            nv->nlines = 0;
            goto fail;
        }
        nv->lines = copy;
        p->lines_set = true;
    }

    /* status */
    uint8_t from = ex != NULL ? ex->status : 0xFF;
    uint8_t to = ex != NULL ? ex->status : SIM_IS_DRAFT;
    if ((e = sim__get_str(item, "Status", path, &sv, &present, why)) != XS_OK) {
        goto fail;
    }
    if (present) {
        int k = word_index(inv_status_names, 6, sv);
        if (k < 0) {
            sim__err(errors, "Status must be DRAFT, SUBMITTED, AUTHORISED, VOIDED or DELETED.");
        } else {
            to = (uint8_t)k;
        }
    }
    if (ex == NULL) {
        if (to != SIM_IS_DRAFT && to != SIM_IS_SUBMITTED && to != SIM_IS_AUTHORISED) {
            sim__err(errors, "An invoice can only be created as DRAFT, SUBMITTED or AUTHORISED.");
        }
    } else if (from == SIM_IS_DELETED || from == SIM_IS_VOIDED) {
        sim__err(errors, "Invoice not of valid status for modification. It is %s, which is final.",
                 inv_status_names[from]);
    } else if (to != from) {
        if (to == SIM_IS_PAID) {
            sim__err(errors, "An invoice becomes PAID when payments cover it; its Status cannot "
                             "be set to PAID.");
        } else if (from == SIM_IS_PAID) {
            sim__err(errors, "Invoice not of valid status for modification. A PAID invoice "
                             "cannot change status while its payments stand.");
        } else if (from == SIM_IS_AUTHORISED) {
            if (to == SIM_IS_VOIDED) {
                if (has_payments) {
                    sim__err(errors, "This document cannot be voided as it has a payment or "
                                     "credit note allocated to it.");
                }
            } else if (to == SIM_IS_DELETED) {
                sim__err(errors, "An AUTHORISED invoice cannot be deleted; void it instead.");
            } else {
                sim__err(errors, "An AUTHORISED invoice cannot be returned to %s.",
                         inv_status_names[to]);
            }
        } else if (to == SIM_IS_VOIDED) {
            sim__err(errors,
                     "Only an AUTHORISED invoice can be voided; a %s invoice can be "
                     "deleted instead.",
                     inv_status_names[from]);
        }
    }
    if (has_payments) {
        /* lines sent without their LineItemID replace the old ones: a deletion and an
         * addition, refused like any change of a line */
        if (lines_sent && (li.added > 0 || li.kept < ex->nlines || li.changed)) {
            locked_change = true;
        }
        if (locked_change) {
            sim__err(errors, "This document cannot be edited as it has a payment or credit note "
                             "allocated to it.");
        }
    }
    nv->status = to;

    /* the document as a whole */
    if (nv->type <= SIM_ACCPAY) {
        if (to == SIM_IS_SUBMITTED || to == SIM_IS_AUTHORISED) {
            if (nv->nlines == 0) {
                sim__err(errors, "At least one line item is required to %s an invoice.",
                         to == SIM_IS_SUBMITTED ? "submit" : "authorise");
            }
            for (uint32_t k = 0; k < nv->nlines; k++) {
                if (sim__strs_get(&nv->lines[k].s, L_ACCOUNTCODE)[0] == '\0') {
                    sim__err(errors, "Account code '' is not a valid code for this document.");
                    break;
                }
            }
        }
        if (sim__lines_total(nv->lines, nv->nlines, nv->lat, &nv->subtotal, &nv->total_tax,
                             &nv->total, &nv->total_discount) != XS_OK) {
            sim__err(errors, "The invoice total is out of range.");
        } else if (xs_money_is_negative(nv->total) && to != SIM_IS_DRAFT && to != SIM_IS_DELETED) {
            sim__err(errors, "The invoice total cannot be negative.");
        }
        const char *num = vals[I_NUMBER];
        if (sales && num[0] != '\0' &&
            (ex == NULL || !sim__norm_eq(num, sim__strs_get(&ex->s, I_NUMBER)))) {
            char key[512];
            sim__norm_key(num, key, sizeof(key));
            uint32_t other = sim__invoice_by_number(t, num);
            if ((other != SIM_NONE && (ex == NULL || other != ex->h.idx)) ||
                json_object_get(b->numbers, key) != NULL) {
                sim__err(errors, "Invoice # must be unique.");
            } else if (json_array_size(errors) == 0) {
                json_object_set_new_nocheck(b->numbers, key, json_true());
            }
        }
        p->number_auto = sales && ex == NULL && num[0] == '\0';
    }
    if (ex == NULL && nv->due == SIM_NO_TIME) {
        nv->due = nv->date + 30 * SIM_DAY_MS;
    }
    if (json_array_size(errors) == 0) {
        if ((e = sim__strs_build(&nv->s, vals, I_NSTR)) != XS_OK) {
            goto fail;
        }
    }
    *out = p;
    return XS_OK;
fail:
    if (!p->lines_set) {
        nv->lines = NULL;
        nv->nlines = 0;
    }
    inv_plan_free(p);
    return e;
}

static xs_err next_number(sim_tenant *t, char *buf, size_t cap)
{
    for (;;) {
        snprintf(buf, cap, "INV-%04u", t->next_inv_number++);
        if (sim__invoice_by_number(t, buf) == SIM_NONE) {
            return XS_OK;
        }
    }
}

static xs_err inv_apply(sim_batch *b, void *pp, sim_rec **out)
{
    inv_plan *p = pp;
    sim_tenant *t = b->t;
    sim_invoice *inv = p->existing;
    sim_invoice *nv = &p->nv;
    xs_err e;
    uint32_t contact = nv->contact;
    if (p->auto_name != NULL) {
        if ((e = sim__contact_auto(b, p->auto_name, &contact)) != XS_OK) {
            return e;
        }
    }
    if (p->number_auto) {
        char num[32];
        next_number(t, num, sizeof(num));
        const char *vals[I_NSTR];
        sim__strs_load(&nv->s, vals, I_NSTR);
        vals[I_NUMBER] = num;
        sim_strs ns = {NULL};
        if ((e = sim__strs_build(&ns, vals, I_NSTR)) != XS_OK) {
            return e;
        }
        sim__strs_free(&nv->s);
        nv->s = ns;
    }
    bool create = inv == NULL;
    if (create) {
        inv = calloc(1, sizeof(*inv));
        if (inv == NULL) {
            return XS_ENOMEM;
        }
        *inv = *nv;
        memset(&inv->payments, 0, sizeof(inv->payments));
        sim__rng_uuid(&t->rng, &inv->h.id);
        inv->contact = contact;
        nv->s.p = NULL;
        p->lines_set = false; /* taken over */
        inv->fully_paid = SIM_NO_TIME;
        inv->amount_paid = xs_money_zero();
        sim__invoice_recalc(t, inv);
        if ((e = sim__touch(b, SIM_INVOICE, &inv->h, true)) != XS_OK) {
            sim__invoice_free(inv);
            return e;
        }
        sim__lines_uses(t, inv->lines, inv->nlines, 1);
        if (contact != SIM_NONE) {
            sim__idxlist_add(&sim__contact_at(t, contact)->invoices, inv->h.idx);
            if (counted(inv->status)) {
                sim__contact_count(t, contact, inv->type, 1);
            }
        }
        e = sim__invoice_index(t, inv);
        *out = &inv->h;
        return e;
    }
    sim__invoice_unindex(t, inv);
    bool was_counted = counted(inv->status);
    if (contact != inv->contact) {
        if (inv->contact != SIM_NONE) {
            sim__idxlist_del(&sim__contact_at(t, inv->contact)->invoices, inv->h.idx);
            if (was_counted) {
                sim__contact_count(t, inv->contact, inv->type, -1);
            }
        }
        if (contact != SIM_NONE) {
            sim__idxlist_add(&sim__contact_at(t, contact)->invoices, inv->h.idx);
            if (was_counted) {
                sim__contact_count(t, contact, inv->type, 1);
            }
        }
        inv->contact = contact;
    }
    if (was_counted && !counted(nv->status)) {
        sim__contact_count(t, inv->contact, inv->type, -1);
    }
    sim__strs_free(&inv->s);
    inv->s = nv->s;
    nv->s.p = NULL;
    sim__lines_uses(t, inv->lines, inv->nlines, -1);
    sim__lines_free(inv->lines, inv->nlines);
    inv->lines = nv->lines;
    inv->nlines = nv->nlines;
    p->lines_set = false; /* taken over */
    sim__lines_uses(t, inv->lines, inv->nlines, 1);
    inv->status = nv->status;
    inv->lat = nv->lat;
    inv->sent_to_contact = nv->sent_to_contact;
    inv->date = nv->date;
    inv->due = nv->due;
    inv->expected = nv->expected;
    inv->planned = nv->planned;
    inv->rate = nv->rate;
    inv->subtotal = nv->subtotal;
    inv->total_tax = nv->total_tax;
    inv->total = nv->total;
    inv->total_discount = nv->total_discount;
    sim__invoice_recalc(t, inv);
    if ((e = sim__touch(b, SIM_INVOICE, &inv->h, false)) != XS_OK) {
        return e;
    }
    e = sim__invoice_index(t, inv);
    *out = &inv->h;
    return e;
}

/* ------------------------------------------------------------------ classes */

static uint32_t invoice_class_mask(const char *field, const char *value)
{
    if (strcasecmp(field, "Status") == 0) {
        int k = word_index(inv_status_names, 6, value);
        return k < 0 ? 0 : (1u << k) | (1u << (6 + k));
    }
    if (strcasecmp(field, "Type") == 0) {
        int k = word_index(inv_types, 2, value);
        return k < 0 ? 0 : 0x3Fu << (6 * k);
    }
    return 0;
}

static const char *const invoice_fields[] = {"Type",
                                             "InvoiceID",
                                             "InvoiceNumber",
                                             "Reference",
                                             "Payments",
                                             "CreditNotes",
                                             "Prepayments",
                                             "Overpayments",
                                             "AmountDue",
                                             "AmountPaid",
                                             "AmountCredited",
                                             "CurrencyRate",
                                             "IsDiscounted",
                                             "HasAttachments",
                                             "HasErrors",
                                             "Contact",
                                             "Date",
                                             "DueDate",
                                             "ExpectedPaymentDate",
                                             "PlannedPaymentDate",
                                             "BrandingThemeID",
                                             "Status",
                                             "LineAmountTypes",
                                             "LineItems",
                                             "SubTotal",
                                             "TotalTax",
                                             "Total",
                                             "TotalDiscount",
                                             "UpdatedDateUTC",
                                             "CurrencyCode",
                                             "FullyPaidOnDate",
                                             "SentToContact",
                                             "Url",
                                             "DateString",
                                             "DueDateString",
                                             NULL};

const sim_kind_ops sim__invoice_ops = {
    .kind = SIM_INVOICE,
    .plural = "Invoices",
    .id_field = "InvoiceID",
    .singular = "invoice",
    .fields = invoice_fields,
    .class_fields = {"Status", "Type", NULL},
    .paged = true,
    .has_archive = false,
    .error_flag = "HasErrors",
    .status_attr = true,
    .render = invoice_render,
    .plan = inv_plan_make,
    .apply = inv_apply,
    .plan_free = inv_plan_free,
    .class_mask = invoice_class_mask,
    .all_mask = 0xFFF,
    .default_mask = 0xFFF,
};
