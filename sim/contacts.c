/*
 * contacts.c: Contacts as Xero keeps them. Name is unique among active contacts
 * (case-insensitively, ignoring extra white space); IsCustomer and IsSupplier are derived
 * from the contact's invoices; Balances are computed from its authorised invoices; every
 * full read carries both address types and all four phone types, empty or not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "kinds.h"
#include "store.h"
#include "util.h"

static const char *const contact_status_names[] = {"ACTIVE", "ARCHIVED", "GDPRREQUEST"};
static const char *const tax_number_types[] = {"SSN", "EIN", "ITIN", "ATIN"};
static const char *const lat_names[] = {"EXCLUSIVE", "INCLUSIVE", "NONE"};

/* Top-level string fields: JSON name, slot, maximum length. */
typedef struct strfield {
    const char *name;
    unsigned slot;
    size_t max;
} strfield;

static const strfield contact_strs[] = {
    {"ContactNumber", C_NUMBER, 50},
    {"AccountNumber", C_ACCOUNTNUMBER, 50},
    {"Name", C_NAME, 255},
    {"FirstName", C_FIRST, 255},
    {"LastName", C_LAST, 255},
    {"CompanyNumber", C_COMPANYNUMBER, 50},
    {"EmailAddress", C_EMAIL, 255},
    {"BankAccountDetails", C_BANKDETAILS, 255},
    {"TaxNumber", C_TAXNUMBER, 50},
    {"DefaultCurrency", C_CURRENCY, 3},
    {"SalesDefaultAccountCode", C_SALESACCT, 10},
    {"PurchasesDefaultAccountCode", C_PURCHACCT, 10},
};

/* Website is read-only in the Accounting API (the spec marks it readOnly; Xero says it is
 * entered in Xero itself), so only a change made as a Xero user, through /_sim, sets it. */
static const strfield contact_user_strs[] = {
    {"Website", C_WEBSITE, 255},
};

static const strfield addr_fields[SIM_ADDR_FIELDS] = {
    {"AddressLine1", 0, 500}, {"AddressLine2", 1, 500}, {"AddressLine3", 2, 500},
    {"AddressLine4", 3, 500}, {"City", 4, 255},         {"Region", 5, 255},
    {"PostalCode", 6, 50},    {"Country", 7, 50},       {"AttentionTo", 8, 255},
};
static const char *const addr_types[2] = {"POBOX", "STREET"};

static const strfield phone_fields[SIM_PHONE_FIELDS] = {
    {"PhoneNumber", 0, 50}, {"PhoneAreaCode", 1, 10}, {"PhoneCountryCode", 2, 20}};
static const char *const phone_types[4] = {"DEFAULT", "DDI", "MOBILE", "FAX"};
/* the order Xero lists phones in */
static const int phone_order[4] = {0, 1, 3, 2};

static const char *const currencies[] = {"NZD", "AUD", "USD", "GBP", "EUR", "CAD",
                                         "SGD", "JPY", "HKD", "CHF", "ZAR", NULL};

static int find_word(const char *const *words, size_t n, const char *w)
{
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(words[i], w) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ rendering */

/* set_str sets key to the string v; an empty v shares the record's empty string. */
static void set_str(sim_shared *sh, json_t *o, const char *key, const char *v)
{
    json_object_set_new_nocheck(o, key, sim__shared_str(sh, v));
}

/* set_str_if sets key to v unless v is empty. */
static void set_str_if(json_t *o, const char *key, const char *v)
{
    if (v[0] != '\0') {
        json_object_set_new_nocheck(o, key, json_string_nocheck(v));
    }
}

json_t *sim__contact_ref(sim_tenant *t, uint32_t idx)
{
    json_t *o = json_object();
    if (idx == SIM_NONE) {
        return o;
    }
    const sim_contact *c = sim__contact_at(t, idx);
    sim_shared sh = {0};
    json_object_set_new_nocheck(o, "ContactID", sim__json_uuid(&c->h.id));
    set_str_if(o, "ContactNumber", sim__strs_get(&c->s, C_NUMBER));
    set_str(&sh, o, "Name", sim__strs_get(&c->s, C_NAME));
    json_object_set_new_nocheck(o, "Addresses", sim__shared_array(&sh));
    json_object_set_new_nocheck(o, "Phones", sim__shared_array(&sh));
    json_object_set_new_nocheck(o, "ContactGroups", sim__shared_array(&sh));
    json_object_set_new_nocheck(o, "ContactPersons", sim__shared_array(&sh));
    json_object_set_new_nocheck(o, "HasValidationErrors", json_false());
    sim__shared_fini(&sh);
    return o;
}

static json_t *balances(sim_tenant *t, const sim_contact *c, xs_time now)
{
    xs_money out[2] = {{0}, {0}}, over[2] = {{0}, {0}};
    xs_time today = sim__day_start(now);
    for (uint32_t k = 0; k < c->invoices.n; k++) {
        const sim_invoice *inv = sim__invoice_at(t, c->invoices.v[k]);
        if (inv->status != SIM_IS_AUTHORISED) {
            continue;
        }
        int side = inv->type == SIM_ACCREC ? 0 : 1;
        xs_money_add(out[side], inv->amount_due, &out[side]);
        if (inv->due != SIM_NO_TIME && inv->due < today) {
            xs_money_add(over[side], inv->amount_due, &over[side]);
        }
    }
    /* Built directly rather than with json_pack, which parses its format and checks every
     * key again for each of the thousand contacts in a page. */
    static const char *const sides[2] = {"AccountsReceivable", "AccountsPayable"};
    json_t *b = json_object();
    for (int side = 0; side < 2; side++) {
        json_t *o = json_object();
        json_object_set_new_nocheck(o, "Outstanding", sim__json_money(out[side], 2));
        json_object_set_new_nocheck(o, "Overdue", sim__json_money(over[side], 2));
        json_object_set_new_nocheck(b, sides[side], o);
    }
    return b;
}

static json_t *contact_render(sim_tenant *t, const sim_rec *r, const sim_render_opts *o)
{
    const sim_contact *c = (const sim_contact *)r;
    if (o->view == SIM_VIEW_NESTED) {
        return sim__contact_ref(t, r->idx);
    }
    const char *v[C_NSTR];
    sim__strs_load(&c->s, v, C_NSTR);
    sim_shared sh = {0};
    json_t *j = json_object();
    json_object_set_new_nocheck(j, "ContactID", sim__json_uuid(&r->id));
    set_str_if(j, "ContactNumber", v[C_NUMBER]);
    set_str_if(j, "AccountNumber", v[C_ACCOUNTNUMBER]);
    set_str(&sh, j, "ContactStatus", contact_status_names[c->status]);
    set_str(&sh, j, "Name", v[C_NAME]);
    set_str_if(j, "FirstName", v[C_FIRST]);
    set_str_if(j, "LastName", v[C_LAST]);
    set_str_if(j, "CompanyNumber", v[C_COMPANYNUMBER]);
    set_str_if(j, "EmailAddress", v[C_EMAIL]);
    set_str(&sh, j, "BankAccountDetails", v[C_BANKDETAILS]);
    set_str_if(j, "TaxNumber", v[C_TAXNUMBER]);
    if (c->tax_number_type >= 0) {
        set_str(&sh, j, "TaxNumberType", tax_number_types[c->tax_number_type]);
    }
    if (o->view != SIM_VIEW_SUMMARY) {
        json_t *addrs = json_array();
        for (int k = 1; k >= 0; k--) { /* STREET, then POBOX */
            json_t *a = json_object();
            set_str(&sh, a, "AddressType", addr_types[k]);
            unsigned base = k == 0 ? C_ADDR0 : C_ADDR1;
            for (int f = 0; f < SIM_ADDR_FIELDS; f++) {
                const char *val = v[base + addr_fields[f].slot];
                if (f >= 4 && f <= 7) {
                    set_str(&sh, a, addr_fields[f].name, val);
                } else {
                    set_str_if(a, addr_fields[f].name, val);
                }
            }
            json_array_append_new(addrs, a);
        }
        json_object_set_new_nocheck(j, "Addresses", addrs);
        json_t *phones = json_array();
        for (int k = 0; k < 4; k++) {
            int p = phone_order[k];
            json_t *ph = json_object();
            set_str(&sh, ph, "PhoneType", phone_types[p]);
            for (int f = 0; f < SIM_PHONE_FIELDS; f++) {
                set_str(&sh, ph, phone_fields[f].name,
                        v[C_PHONE0 + p * SIM_PHONE_FIELDS + phone_fields[f].slot]);
            }
            json_array_append_new(phones, ph);
        }
        json_object_set_new_nocheck(j, "Phones", phones);
    }
    json_object_set_new_nocheck(j, "UpdatedDateUTC", sim__json_xero_date(r->updated));
    json_object_set_new_nocheck(j, "ContactGroups", sim__shared_array(&sh));
    json_object_set_new_nocheck(j, "IsSupplier", json_boolean(c->n_accpay > 0));
    json_object_set_new_nocheck(j, "IsCustomer", json_boolean(c->n_accrec > 0));
    set_str_if(j, "DefaultCurrency", v[C_CURRENCY]);
    if (c->sales_lat >= 0) {
        set_str(&sh, j, "SalesDefaultLineAmountType", lat_names[c->sales_lat]);
    }
    if (c->purch_lat >= 0) {
        set_str(&sh, j, "PurchasesDefaultLineAmountType", lat_names[c->purch_lat]);
    }
    set_str_if(j, "SalesDefaultAccountCode", v[C_SALESACCT]);
    set_str_if(j, "PurchasesDefaultAccountCode", v[C_PURCHACCT]);
    set_str_if(j, "Website", v[C_WEBSITE]);
    if (o->view != SIM_VIEW_SUMMARY) {
        json_object_set_new_nocheck(j, "SalesTrackingCategories", sim__shared_array(&sh));
        json_object_set_new_nocheck(j, "PurchasesTrackingCategories", sim__shared_array(&sh));
        json_t *persons = c->npersons > 0 ? json_array() : sim__shared_array(&sh);
        for (uint8_t k = 0; k < c->npersons; k++) {
            const sim_person *p = &c->persons[k];
            json_t *pj = json_object();
            set_str_if(pj, "FirstName", p->first ? p->first : "");
            set_str_if(pj, "LastName", p->last ? p->last : "");
            set_str_if(pj, "EmailAddress", p->email ? p->email : "");
            json_object_set_new_nocheck(pj, "IncludeInEmails", json_boolean(p->include));
            json_array_append_new(persons, pj);
        }
        json_object_set_new_nocheck(j, "ContactPersons", persons);
        json_object_set_new_nocheck(j, "Balances", balances(t, c, o->now));
    }
    json_object_set_new_nocheck(j, "HasAttachments", json_false());
    json_object_set_new_nocheck(j, "HasValidationErrors", json_false());
    sim__shared_fini(&sh);
    return j;
}

/* ------------------------------------------------------------------ planning */

typedef struct contact_plan {
    sim_contact *existing;
    sim_strs s; /* the full new text fields (owned) */
    uint8_t status;
    int8_t tnt, slat, plat;
    bool persons_set;
    sim_person *persons;
    uint8_t npersons;
} contact_plan;

static void persons_free(sim_person *p, uint8_t n)
{
    for (uint8_t i = 0; i < n; i++) {
        free(p[i].first);
        free(p[i].last);
        free(p[i].email);
    }
    free(p);
}

static void contact_plan_free(void *pp)
{
    contact_plan *p = pp;
    if (p == NULL) {
        return;
    }
    sim__strs_free(&p->s);
    persons_free(p->persons, p->npersons);
    free(p);
}

static bool email_ok(const char *e)
{
    const char *at = strchr(e, '@');
    if (at == NULL || at == e || strchr(at + 1, '@') != NULL || strchr(e, ' ') != NULL) {
        return false;
    }
    const char *dot = strrchr(at, '.');
    return dot != NULL && dot > at + 1 && dot[1] != '\0';
}

/* read_strs applies the string fields of obj described by fields to vals (slot + base). */
static xs_err read_strs(const json_t *obj, const strfield *fields, size_t n, unsigned base,
                        const char *path, const char **vals, json_t *errors, char *why)
{
    for (size_t i = 0; i < n; i++) {
        const char *v;
        bool present;
        if (sim__get_str(obj, fields[i].name, path, &v, &present, why) != XS_OK) {
            return XS_EPARSE;
        }
        if (!present) {
            continue;
        }
        if (sim__utf8_len(v) > fields[i].max) {
            sim__err(errors, "%s must not be longer than %zu characters.", fields[i].name,
                     fields[i].max);
            continue;
        }
        vals[base + fields[i].slot] = v;
    }
    return XS_OK;
}

/* A list of a contact's typed parts (Addresses, Phones): each element's type picks the group
 * of fields that the element replaces entirely. */
typedef struct part_list {
    const char *key;          /* the list's key: "Addresses" */
    const char *noun;         /* one element: "an address" */
    const char *type_key;     /* the element's key naming its type: "AddressType" */
    const char *const *types; /* the types, in the order of their groups of fields */
    size_t ntypes;            /* how many types */
    const char *alias;        /* another name of types[0] (NULL: none) */
    const char *bad_type;     /* the validation error of an unknown type */
    const strfield *fields;   /* one group's fields */
    size_t nfields;           /* how many fields a group has */
    unsigned base;            /* the slot of the first group's first field */
} part_list;

/* A contact's typed parts, in the order they are read. */
static const part_list parts[] = {
    {.key = "Addresses",
     .noun = "an address",
     .type_key = "AddressType",
     .types = addr_types,
     .ntypes = 2,
     .bad_type = "AddressType must be POBOX or STREET.",
     .fields = addr_fields,
     .nfields = SIM_ADDR_FIELDS,
     .base = C_ADDR0},
    {.key = "Phones",
     .noun = "a phone",
     .type_key = "PhoneType",
     .types = phone_types,
     .ntypes = 4,
     .alias = "OFFICE",
     .bad_type = "PhoneType must be DEFAULT, DDI, MOBILE or FAX.",
     .fields = phone_fields,
     .nfields = SIM_PHONE_FIELDS,
     .base = C_PHONE0},
};

/* read_parts reads list l of item (at path) into vals as read_strs does, an element's group
 * blanked first; XS_EPARSE (why set) when the list or an element is not the JSON it must be. */
static xs_err read_parts(const json_t *item, const part_list *l, const char *path,
                         const char **vals, json_t *errors, char *why)
{
    json_t *list = json_object_get(item, l->key);
    if (list == NULL || json_is_null(list)) {
        return XS_OK;
    }
    if (!json_is_array(list)) {
        snprintf(why, 256, "%s must be an array. Path '%s.%s'.", l->key, path, l->key);
        return XS_EPARSE;
    }
    size_t i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        char apath[192];
        snprintf(apath, sizeof(apath), "%s.%s[%zu]", path, l->key, i);
        if (!json_is_object(a)) {
            snprintf(why, 256, "%s must be an object. Path '%s'.", l->noun, apath);
            return XS_EPARSE;
        }
        const char *type;
        bool present;
        xs_err e = sim__get_str(a, l->type_key, apath, &type, &present, why);
        if (e != XS_OK) {
            return e;
        }
        int k = present ? find_word(l->types, l->ntypes, type) : -1;
        if (present && k < 0 && l->alias != NULL && strcasecmp(type, l->alias) == 0) {
            k = 0;
        }
        if (k < 0) {
            sim__err(errors, "%s", l->bad_type);
            continue;
        }
        unsigned base = l->base + (unsigned)k * (unsigned)l->nfields;
        for (size_t f = 0; f < l->nfields; f++) {
            vals[base + f] = "";
        }
        if ((e = read_strs(a, l->fields, l->nfields, base, apath, vals, errors, why)) != XS_OK) {
            return e;
        }
    }
    return XS_OK;
}

static xs_err contact_plan_make(sim_batch *b, const json_t *item, sim_rec *existing, void **out,
                                json_t *errors, char *why)
{
    sim_tenant *t = b->t;
    sim_contact *ex = (sim_contact *)existing;
    contact_plan *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return XS_ENOMEM;
    }
    p->existing = ex;
    p->status = ex ? ex->status : SIM_CS_ACTIVE;
    p->tnt = ex ? ex->tax_number_type : -1;
    p->slat = ex ? ex->sales_lat : -1;
    p->plat = ex ? ex->purch_lat : -1;
    const char *vals[C_NSTR];
    if (ex != NULL) {
        sim__strs_load(&ex->s, vals, C_NSTR);
    } else {
        for (int i = 0; i < C_NSTR; i++) {
            vals[i] = "";
        }
    }
    const char *path = b->path;
    xs_err e = read_strs(item, contact_strs, sizeof(contact_strs) / sizeof(contact_strs[0]), 0,
                         path, vals, errors, why);
    if (e == XS_OK && b->user) {
        e = read_strs(item, contact_user_strs,
                      sizeof(contact_user_strs) / sizeof(contact_user_strs[0]), 0, path, vals,
                      errors, why);
    }
    if (e != XS_OK) {
        goto fail;
    }
    const char *sv;
    bool present;
    if ((e = sim__get_str(item, "ContactStatus", path, &sv, &present, why)) != XS_OK) {
        goto fail;
    }
    if (present) {
        int k = find_word(contact_status_names, 3, sv);
        if (k < 0) {
            sim__err(errors, "ContactStatus must be ACTIVE, ARCHIVED or GDPRREQUEST.");
        } else {
            p->status = (uint8_t)k;
        }
    }
    if ((e = sim__get_str(item, "TaxNumberType", path, &sv, &present, why)) != XS_OK) {
        goto fail;
    }
    if (present) {
        int k = find_word(tax_number_types, 4, sv);
        if (k < 0) {
            sim__err(errors, "TaxNumberType must be SSN, EIN, ITIN or ATIN.");
        } else {
            p->tnt = (int8_t)k;
        }
    }
    const char *latkeys[2] = {"SalesDefaultLineAmountType", "PurchasesDefaultLineAmountType"};
    for (int k = 0; k < 2; k++) {
        if ((e = sim__get_str(item, latkeys[k], path, &sv, &present, why)) != XS_OK) {
            goto fail;
        }
        if (present) {
            int w = find_word(lat_names, 3, sv);
            if (w < 0) {
                sim__err(errors, "%s must be INCLUSIVE, EXCLUSIVE or NONE.", latkeys[k]);
            } else if (k == 0) {
                p->slat = (int8_t)w;
            } else {
                p->plat = (int8_t)w;
            }
        }
    }

    for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        if ((e = read_parts(item, &parts[k], path, vals, errors, why)) != XS_OK) {
            goto fail;
        }
    }
    json_t *persons = json_object_get(item, "ContactPersons");
    if (persons != NULL && !json_is_null(persons)) {
        if (!json_is_array(persons)) {
            snprintf(why, 256, "ContactPersons must be an array. Path '%s.ContactPersons'.", path);
            e = XS_EPARSE;
            goto fail;
        }
        if (json_array_size(persons) > 5) {
            sim__err(errors, "A contact can have at most 5 contact persons.");
        } else {
            p->persons_set = true;
            p->persons = calloc(json_array_size(persons) + 1, sizeof(*p->persons));
            if (p->persons == NULL) {
                e = XS_ENOMEM;
                goto fail;
            }
            size_t i;
            json_t *pj;
            json_array_foreach(persons, i, pj)
            {
                char ppath[192];
                snprintf(ppath, sizeof(ppath), "%s.ContactPersons[%zu]", path, i);
                if (!json_is_object(pj)) {
                    snprintf(why, 256, "a contact person must be an object. Path '%s'.", ppath);
                    e = XS_EPARSE;
                    goto fail;
                }
                const char *f = "", *l = "", *m = "";
                bool pf, pl, pm, inc = false, pi;
                if ((e = sim__get_str(pj, "FirstName", ppath, &f, &pf, why)) != XS_OK ||
                    (e = sim__get_str(pj, "LastName", ppath, &l, &pl, why)) != XS_OK ||
                    (e = sim__get_str(pj, "EmailAddress", ppath, &m, &pm, why)) != XS_OK ||
                    (e = sim__get_bool(pj, "IncludeInEmails", ppath, &inc, &pi, why)) != XS_OK) {
                    goto fail;
                }
                sim_person *sp = &p->persons[p->npersons++];
                sp->first = strdup(pf ? f : "");
                sp->last = strdup(pl ? l : "");
                sp->email = strdup(pm ? m : "");
                sp->include = pi && inc;
                if (sp->first == NULL || sp->last == NULL || sp->email == NULL) {
                    e = XS_ENOMEM;
                    goto fail;
                }
                if (pm && m[0] != '\0' && !email_ok(m)) {
                    sim__err(errors, "Email address must be valid.");
                }
            }
        }
    }

    /* rules */
    const char *name = vals[C_NAME];
    if (name[0] == '\0') {
        sim__err(errors, "The contact name must be specified.");
    }
    if (vals[C_EMAIL][0] != '\0' && !email_ok(vals[C_EMAIL])) {
        sim__err(errors, "Email address must be valid.");
    }
    if (vals[C_CURRENCY][0] != '\0' && find_word(currencies, 11, vals[C_CURRENCY]) < 0) {
        sim__err(errors, "The currency %s is not enabled for this organisation.", vals[C_CURRENCY]);
    }
    for (int k = 0; k < 2; k++) {
        const char *code = vals[k == 0 ? C_SALESACCT : C_PURCHACCT];
        if (code[0] != '\0' && sim__account_by_code(t, code) == SIM_NONE) {
            sim__err(errors, "Account code '%s' is not a valid code.", code);
        }
    }
    char key[1024];
    sim__norm_key(name, key, sizeof(key));
    bool renamed = ex == NULL || !sim__norm_eq(sim__strs_get(&ex->s, C_NAME), name);
    bool activating = ex != NULL && ex->status != SIM_CS_ACTIVE && p->status == SIM_CS_ACTIVE;
    if (name[0] != '\0' && p->status == SIM_CS_ACTIVE && (renamed || activating)) {
        uint32_t other = sim__contact_by_name(t, name, true);
        bool taken = other != SIM_NONE && (ex == NULL || other != ex->h.idx);
        if (taken || json_object_get(b->names, key) != NULL) {
            sim__err(errors,
                     "The contact name %s is already assigned to another contact. The contact "
                     "name must be unique across all active contacts.",
                     name);
        }
    }
    if (json_array_size(errors) == 0) {
        if (name[0] != '\0' && p->status == SIM_CS_ACTIVE) {
            json_object_set_new_nocheck(b->names, key, json_true());
        }
        e = sim__strs_build(&p->s, vals, C_NSTR);
        if (e == XS_ETOOBIG) {
            sim__err(errors, "A text field is too long.");
            e = XS_OK;
        } else if (e != XS_OK) {
            goto fail;
        }
    }
    *out = p;
    return XS_OK;
fail:
    contact_plan_free(p);
    return e;
}

static xs_err contact_apply(sim_batch *b, void *pp, sim_rec **out)
{
    contact_plan *p = pp;
    sim_tenant *t = b->t;
    sim_contact *c = p->existing;
    bool create = c == NULL;
    if (create) {
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            return XS_ENOMEM;
        }
        sim__rng_uuid(&t->rng, &c->h.id);
    } else {
        sim__contact_unindex(t, c);
    }
    sim__strs_free(&c->s);
    c->s = p->s;
    p->s.p = NULL;
    c->status = p->status;
    c->tax_number_type = p->tnt;
    c->sales_lat = p->slat;
    c->purch_lat = p->plat;
    if (p->persons_set) {
        persons_free(c->persons, c->npersons);
        c->persons = p->persons;
        c->npersons = p->npersons;
        p->persons = NULL;
        p->npersons = 0;
    }
    xs_err e = sim__touch(b, SIM_CONTACT, &c->h, create);
    if (e != XS_OK) {
        if (create) {
            sim__contact_free(c);
        }
        return e;
    }
    e = sim__contact_index(t, c);
    *out = &c->h;
    return e;
}

xs_err sim__contact_auto(sim_batch *b, const char *name, uint32_t *out)
{
    uint32_t idx = sim__contact_by_name(b->t, name, true);
    if (idx != SIM_NONE) {
        *out = idx;
        return XS_OK;
    }
    sim_contact *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return XS_ENOMEM;
    }
    const char *vals[C_NSTR];
    for (int i = 0; i < C_NSTR; i++) {
        vals[i] = "";
    }
    vals[C_NAME] = name;
    c->status = SIM_CS_ACTIVE;
    c->tax_number_type = c->sales_lat = c->purch_lat = -1;
    sim__rng_uuid(&b->t->rng, &c->h.id);
    xs_err e = sim__strs_build(&c->s, vals, C_NSTR);
    if (e == XS_OK) {
        e = sim__touch(b, SIM_CONTACT, &c->h, true);
    }
    if (e != XS_OK) {
        sim__contact_free(c);
        return e;
    }
    e = sim__contact_index(b->t, c);
    *out = c->h.idx;
    return e;
}

/* ------------------------------------------------------------------ classes */

static uint32_t contact_class_mask(const char *field, const char *value)
{
    if (strcasecmp(field, "ContactStatus") != 0) {
        return 0;
    }
    int k = find_word(contact_status_names, 3, value);
    return k < 0 ? 0 : 1u << k;
}

static const char *const contact_fields[] = {"ContactID",
                                             "ContactNumber",
                                             "AccountNumber",
                                             "ContactStatus",
                                             "Name",
                                             "FirstName",
                                             "LastName",
                                             "CompanyNumber",
                                             "EmailAddress",
                                             "BankAccountDetails",
                                             "TaxNumber",
                                             "TaxNumberType",
                                             "Addresses",
                                             "Phones",
                                             "UpdatedDateUTC",
                                             "ContactGroups",
                                             "IsSupplier",
                                             "IsCustomer",
                                             "DefaultCurrency",
                                             "SalesDefaultLineAmountType",
                                             "PurchasesDefaultLineAmountType",
                                             "SalesDefaultAccountCode",
                                             "PurchasesDefaultAccountCode",
                                             "Website",
                                             "ContactPersons",
                                             "Balances",
                                             "HasAttachments",
                                             "HasValidationErrors",
                                             NULL};

const sim_kind_ops sim__contact_ops = {
    .kind = SIM_CONTACT,
    .plural = "Contacts",
    .id_field = "ContactID",
    .singular = "contact",
    .fields = contact_fields,
    .class_fields = {"ContactStatus", NULL, NULL},
    .paged = true,
    .has_archive = true,
    .error_flag = "HasValidationErrors",
    .status_attr = true,
    .render = contact_render,
    .plan = contact_plan_make,
    .apply = contact_apply,
    .plan_free = contact_plan_free,
    .class_mask = contact_class_mask,
    .all_mask = 0x7,
    .default_mask = 0x1,
};
