/*
 * banktx.c: BankTransactions (spend and receive money). Created AUTHORISED into a BANK
 * account with a contact and line items; edited while not reconciled; deleted by setting
 * Status DELETED, which is final. Transfers, prepayments and overpayments come from other
 * endpoints in Xero and are only read here (seeded).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "kinds.h"
#include "store.h"
#include "util.h"

static const char *const bt_status[3] = {"AUTHORISED", "DELETED", "VOIDED"};

static json_t *banktx_render(sim_tenant *t, const sim_rec *r, const sim_render_opts *o)
{
    const sim_banktx *b = (const sim_banktx *)r;
    const char *v[B_NSTR];
    sim__strs_load(&b->s, v, B_NSTR);
    json_t *j = json_object();
    json_object_set_new_nocheck(j, "BankTransactionID", sim__json_uuid(&r->id));
    json_object_set_new_nocheck(j, "Type", json_string_nocheck(sim__bt_types[b->type]));
    if (b->contact != SIM_NONE) {
        json_object_set_new_nocheck(j, "Contact", sim__contact_ref(t, b->contact));
    }
    if (o->view == SIM_VIEW_FULL) {
        json_object_set_new_nocheck(j, "LineItems",
                                    sim__lines_render(b->lines, b->nlines, o->unitdp4));
    } else {
        json_object_set_new_nocheck(j, "LineItems", json_array());
    }
    json_object_set_new_nocheck(j, "BankAccount", sim__account_ref(t, b->bank));
    json_object_set_new_nocheck(j, "IsReconciled", json_boolean(b->reconciled));
    char buf[XS_TIME_ISO_MAX];
    sim__time_format_plain(b->date, buf);
    json_object_set_new_nocheck(j, "DateString", json_string_nocheck(buf));
    json_object_set_new_nocheck(j, "Date", sim__json_xero_date(b->date));
    json_object_set_new_nocheck(j, "Reference", json_string_nocheck(v[B_REFERENCE]));
    json_object_set_new_nocheck(j, "CurrencyCode", json_string_nocheck(v[B_CURRENCY]));
    json_object_set_new_nocheck(j, "CurrencyRate", sim__json_money_min(b->rate, 1));
    if (v[B_URL][0] != '\0') {
        json_object_set_new_nocheck(j, "Url", json_string_nocheck(v[B_URL]));
    }
    json_object_set_new_nocheck(j, "Status", json_string_nocheck(bt_status[b->status]));
    json_object_set_new_nocheck(j, "LineAmountTypes", json_string_nocheck(sim__lat_names[b->lat]));
    json_object_set_new_nocheck(j, "SubTotal", sim__json_money(b->subtotal, 2));
    json_object_set_new_nocheck(j, "TotalTax", sim__json_money(b->total_tax, 2));
    json_object_set_new_nocheck(j, "Total", sim__json_money(b->total, 2));
    json_object_set_new_nocheck(j, "UpdatedDateUTC", sim__json_xero_date(r->updated));
    json_object_set_new_nocheck(j, "HasAttachments", json_false());
    return j;
}

typedef struct bt_plan {
    sim_banktx *existing;
    sim_banktx nv; /* owned strings and lines */
    char *auto_name;
} bt_plan;

static void bt_plan_free(void *pp)
{
    bt_plan *p = pp;
    if (p != NULL) {
        sim__strs_free(&p->nv.s);
        sim__lines_free(p->nv.lines, p->nv.nlines);
        free(p->auto_name);
        free(p);
    }
}

static xs_err bt_plan_make(sim_batch *b, const json_t *item, sim_rec *existing, void **out,
                           json_t *errors, char *why)
{
    sim_tenant *t = b->t;
    sim_banktx *ex = (sim_banktx *)existing;
    const char *path = b->path;
    bt_plan *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return XS_ENOMEM;
    }
    p->existing = ex;
    sim_banktx *nv = &p->nv;
    const char *vals[B_NSTR] = {"", "", ""};
    if (ex != NULL) {
        *nv = *ex;
        nv->s.p = NULL;
        nv->lines = NULL;
        nv->nlines = 0;
        sim__strs_load(&ex->s, vals, B_NSTR);
    } else {
        nv->type = 0xFF;
        nv->status = SIM_BS_AUTHORISED;
        nv->lat = SIM_LAT_EXCLUSIVE;
        nv->contact = SIM_NONE;
        nv->bank = SIM_NONE;
        nv->date = sim__day_start(b->now);
        nv->rate.units = XS_MONEY_ONE;
        vals[B_CURRENCY] = t->currency;
    }
    xs_err e;
    const char *sv;
    bool present;
    if (ex != NULL && ex->status != SIM_BS_AUTHORISED) {
        sim__err(errors, "This bank transaction is %s and cannot be modified.",
                 bt_status[ex->status]);
    } else if (ex != NULL && ex->reconciled) {
        sim__err(errors, "A reconciled bank transaction cannot be modified.");
    }
    if ((e = sim__get_str(item, "Type", path, &sv, &present, why)) != XS_OK) {
        goto fail;
    }
    if (present) {
        int k = -1;
        for (int i = 0; i < 8; i++) {
            if (strcasecmp(sv, sim__bt_types[i]) == 0) {
                k = i;
            }
        }
        if (k < 0) {
            sim__err(errors, "'%s' is not a valid bank transaction Type.", sv);
        } else if (ex != NULL && k != ex->type) {
            sim__err(errors, "The Type of a bank transaction cannot be changed.");
        } else if (ex == NULL && k != 0 && k != 3) {
            sim__err(errors, "Only RECEIVE and SPEND bank transactions can be created here.");
        } else {
            nv->type = (uint8_t)k;
        }
    } else if (ex == NULL) {
        sim__err(errors, "Type must be specified.");
    }
    json_t *cj = json_object_get(item, "Contact");
    if (cj != NULL && !json_is_null(cj)) {
        if (!json_is_object(cj)) {
            snprintf(why, 256, "Contact must be an object. Path '%s.Contact'.", path);
            e = XS_EPARSE;
            goto fail;
        }
        char cpath[192];
        snprintf(cpath, sizeof(cpath), "%s.Contact", path);
        xs_uuid cid;
        bool has_cid, has_name;
        const char *name;
        if ((e = sim__get_uuid(cj, "ContactID", cpath, &cid, &has_cid, why)) != XS_OK ||
            (e = sim__get_str(cj, "Name", cpath, &name, &has_name, why)) != XS_OK) {
            goto fail;
        }
        if (has_cid) {
            sim_rec *r = sim__table_find(&t->t[SIM_CONTACT], &cid);
            if (r == NULL) {
                sim__err(errors, "The contact could not be found.");
            } else {
                nv->contact = r->idx;
            }
        } else if (has_name && name[0] != '\0') {
            nv->contact = sim__contact_by_name(t, name, true);
            if (nv->contact == SIM_NONE) {
                p->auto_name = strdup(name);
                if (p->auto_name == NULL) {
                    e = XS_ENOMEM;
                    goto fail;
                }
            }
        }
    }
    if (ex == NULL && nv->contact == SIM_NONE && p->auto_name == NULL) {
        sim__err(errors, "A Contact must be specified for this type of transaction.");
    }
    json_t *aj = json_object_get(item, "BankAccount");
    if (aj != NULL && !json_is_null(aj)) {
        if (!json_is_object(aj)) {
            snprintf(why, 256, "BankAccount must be an object. Path '%s.BankAccount'.", path);
            e = XS_EPARSE;
            goto fail;
        }
        char apath[192];
        snprintf(apath, sizeof(apath), "%s.BankAccount", path);
        xs_uuid aid;
        bool has_aid, has_code;
        const char *code;
        if ((e = sim__get_uuid(aj, "AccountID", apath, &aid, &has_aid, why)) != XS_OK ||
            (e = sim__get_str(aj, "Code", apath, &code, &has_code, why)) != XS_OK) {
            goto fail;
        }
        uint32_t idx = SIM_NONE;
        if (has_aid) {
            sim_rec *r = sim__table_find(&t->t[SIM_ACCOUNT], &aid);
            idx = r ? r->idx : SIM_NONE;
        } else if (has_code) {
            idx = sim__account_by_code(t, code);
        }
        if (idx == SIM_NONE ||
            strcmp(sim__strs_get(&sim__account_at(t, idx)->s, A_TYPE), "BANK") != 0) {
            sim__err(errors, "The BankAccount must be an active bank account.");
        } else {
            nv->bank = idx;
        }
    } else if (ex == NULL) {
        sim__err(errors, "A BankAccount must be specified.");
    }
    xs_time d;
    if ((e = sim__get_date(item, "Date", path, &d, &present, why)) != XS_OK) {
        goto fail;
    }
    if (present) {
        nv->date = sim__day_start(d);
    }
    static const struct {
        const char *key;
        unsigned slot;
        size_t max;
    } sf[] = {
        {"Reference", B_REFERENCE, 255}, {"Url", B_URL, 2000}, {"CurrencyCode", B_CURRENCY, 3}};
    for (size_t k = 0; k < 3; k++) {
        if ((e = sim__get_str(item, sf[k].key, path, &sv, &present, why)) != XS_OK) {
            goto fail;
        }
        if (present) {
            if (sim__utf8_len(sv) > sf[k].max) {
                sim__err(errors, "%s must not be longer than %zu characters.", sf[k].key,
                         sf[k].max);
            } else if (sf[k].slot == B_CURRENCY && !sim__currency_ok(sv)) {
                sim__err(errors, "The currency %s is not enabled for this organisation.", sv);
            } else {
                vals[sf[k].slot] = sv;
            }
        }
    }
    xs_money rate;
    if ((e = sim__get_rate(item, path, &rate, &present, errors, why)) != XS_OK) {
        goto fail;
    }
    if (present && !xs_money_is_zero(rate)) {
        nv->rate = rate;
    }
    if ((e = sim__get_bool(item, "IsReconciled", path, &nv->reconciled, &present, why)) != XS_OK) {
        goto fail;
    }
    int lat;
    if ((e = sim__get_lat(item, path, &lat, &present, errors, why)) != XS_OK) {
        goto fail;
    }
    if (present && lat >= 0) {
        nv->lat = (uint8_t)lat;
    }
    if ((e = sim__get_str(item, "Status", path, &sv, &present, why)) != XS_OK) {
        goto fail;
    }
    if (present) {
        int k = -1;
        for (int i = 0; i < 3; i++) {
            if (strcasecmp(sv, bt_status[i]) == 0) {
                k = i;
            }
        }
        if (k < 0 || k == SIM_BS_VOIDED) {
            sim__err(errors, "Status must be AUTHORISED or DELETED.");
        } else if (ex == NULL && k != SIM_BS_AUTHORISED) {
            sim__err(errors, "A bank transaction is created AUTHORISED.");
        } else {
            nv->status = (uint8_t)k;
        }
    }
    bool sales = nv->type == 0;
    json_t *lj = json_object_get(item, "LineItems");
    if (lj != NULL && !json_is_null(lj)) {
        sim_lines_in li = {0};
        if ((e = sim__lines_parse(b, lj, ex ? ex->lines : NULL, ex ? ex->nlines : 0, sales, false,
                                  &li, errors, why)) != XS_OK) {
            goto fail;
        }
        nv->lines = li.lines;
        nv->nlines = li.n;
    } else {
        if ((e = sim__lines_copy(ex ? ex->lines : NULL, ex ? ex->nlines : 0, &nv->lines)) !=
            XS_OK) {
            nv->lines = NULL;
            goto fail;
        }
        nv->nlines = ex ? ex->nlines : 0;
    }
    if (nv->nlines == 0) {
        sim__err(errors, "At least one line item is required.");
    }
    for (uint32_t k = 0; k < nv->nlines; k++) {
        if (sim__strs_get(&nv->lines[k].s, L_ACCOUNTCODE)[0] == '\0') {
            sim__err(errors, "Account code '' is not a valid code for this document.");
            break;
        }
    }
    if (sim__lines_total(nv->lines, nv->nlines, nv->lat, &nv->subtotal, &nv->total_tax, &nv->total,
                         &(xs_money){0}) != XS_OK) {
        sim__err(errors, "The total is out of range.");
    }
    if (json_array_size(errors) == 0 && (e = sim__strs_build(&nv->s, vals, B_NSTR)) != XS_OK) {
        goto fail;
    }
    *out = p;
    return XS_OK;
fail:
    bt_plan_free(p);
    return e;
}

static xs_err bt_apply(sim_batch *b, void *pp, sim_rec **out)
{
    bt_plan *p = pp;
    sim_tenant *t = b->t;
    sim_banktx *bt = p->existing;
    sim_banktx *nv = &p->nv;
    xs_err e;
    uint32_t contact = nv->contact;
    if (p->auto_name != NULL && (e = sim__contact_auto(b, p->auto_name, &contact)) != XS_OK) {
        return e;
    }
    bool create = bt == NULL;
    if (create) {
        bt = calloc(1, sizeof(*bt));
        if (bt == NULL) {
            return XS_ENOMEM;
        }
        sim__rng_uuid(&t->rng, &bt->h.id);
    } else {
        sim__lines_uses(t, bt->lines, bt->nlines, -1);
        sim__lines_free(bt->lines, bt->nlines);
        sim__strs_free(&bt->s);
        if (bt->contact != contact && bt->contact != SIM_NONE) {
            sim__idxlist_del(&sim__contact_at(t, bt->contact)->banktx, bt->h.idx);
        }
    }
    sim_rec h = bt->h;
    uint32_t old_contact = create ? SIM_NONE : bt->contact;
    *bt = *nv;
    bt->h = h;
    bt->contact = contact;
    nv->s.p = NULL;
    nv->lines = NULL;
    nv->nlines = 0;
    sim__lines_uses(t, bt->lines, bt->nlines, 1);
    if ((e = sim__touch(b, SIM_BANKTX, &bt->h, create)) != XS_OK) {
        if (create) {
            sim__banktx_free(bt);
        }
        return e;
    }
    if (contact != SIM_NONE && contact != old_contact) {
        sim__idxlist_add(&sim__contact_at(t, contact)->banktx, bt->h.idx);
    }
    *out = &bt->h;
    return XS_OK;
}

static uint32_t banktx_class_mask(const char *field, const char *value)
{
    if (strcasecmp(field, "Status") == 0) {
        for (int k = 0; k < 3; k++) {
            if (strcasecmp(value, bt_status[k]) == 0) {
                uint32_t m = 0;
                for (int ty = 0; ty < 8; ty++) {
                    m |= 1u << (ty * 3 + k);
                }
                return m;
            }
        }
        return 0;
    }
    if (strcasecmp(field, "Type") == 0) {
        for (int ty = 0; ty < 8; ty++) {
            if (strcasecmp(value, sim__bt_types[ty]) == 0) {
                return 0x7u << (ty * 3);
            }
        }
    }
    return 0;
}

static const char *const banktx_fields[] = {
    "BankTransactionID", "Type",  "Contact",        "LineItems",       "BankAccount",
    "IsReconciled",      "Date",  "DateString",     "Reference",       "CurrencyCode",
    "CurrencyRate",      "Url",   "Status",         "LineAmountTypes", "SubTotal",
    "TotalTax",          "Total", "UpdatedDateUTC", "HasAttachments",  NULL};

const sim_kind_ops sim__banktx_ops = {
    .kind = SIM_BANKTX,
    .plural = "BankTransactions",
    .id_field = "BankTransactionID",
    .singular = "bank transaction",
    .fields = banktx_fields,
    .class_fields = {"Status", "Type", NULL},
    .paged = true,
    .has_archive = false,
    .error_flag = NULL,
    .status_attr = true,
    .render = banktx_render,
    .plan = bt_plan_make,
    .apply = bt_apply,
    .plan_free = bt_plan_free,
    .class_mask = banktx_class_mask,
    .all_mask = 0xFFFFFF,
    .default_mask = 0xFFFFFF,
};
