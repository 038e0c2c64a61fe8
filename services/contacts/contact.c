/*
 * contact.c: the contact entity. How a Xero Contact and a row of app.contacts become the same
 * canonical record (docs/MAPPING.md), and how rows are read, matched and written.
 *
 * Canonical contact: name, first_name, last_name, email, contact_number, account_number,
 * tax_number, status, default_currency (text or null), phones [{type, number, area_code,
 * country_code}] and addresses [{type, line1..line4, city, region, postal_code, country,
 * attention_to}], empty entries dropped, in a fixed order of type.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contact.h"
#include "xs/json.h"

static const char *const TEXT[][2] = {
    /* canonical, Xero */
    {"name", "Name"},
    {"first_name", "FirstName"},
    {"last_name", "LastName"},
    {"email", "EmailAddress"},
    {"contact_number", "ContactNumber"},
    {"account_number", "AccountNumber"},
    {"tax_number", "TaxNumber"},
};
#define NTEXT (sizeof(TEXT) / sizeof(TEXT[0]))

static const char *const PHONE[][2] = {
    {"number", "PhoneNumber"},
    {"area_code", "PhoneAreaCode"},
    {"country_code", "PhoneCountryCode"},
};
static const char *const PHONE_TYPES[] = {"DEFAULT", "DDI", "MOBILE", "FAX", NULL};

static const char *const ADDRESS[][2] = {
    {"line1", "AddressLine1"},     {"line2", "AddressLine2"}, {"line3", "AddressLine3"},
    {"line4", "AddressLine4"},     {"city", "City"},          {"region", "Region"},
    {"postal_code", "PostalCode"}, {"country", "Country"},    {"attention_to", "AttentionTo"},
};
static const char *const ADDRESS_TYPES[] = {"POBOX", "STREET", NULL};

#define NPHONE   (sizeof(PHONE) / sizeof(PHONE[0]))
#define NADDRESS (sizeof(ADDRESS) / sizeof(ADDRESS[0]))

static const char *const STATUSES[] = {"ACTIVE", "ARCHIVED", "GDPRREQUEST", NULL};

static int type_rank(const char *t, const char *const *order)
{
    for (int i = 0; order[i] != NULL; i++) {
        if (t != NULL && strcmp(t, order[i]) == 0) {
            return i;
        }
    }
    return 100;
}

/* sub_list reads a list of phones or addresses (keyed by from: Xero's names when xero, else
 * the canonical ones) into the canonical list: entries with no value dropped, one per type,
 * in type order. */
static json_t *sub_list(const json_t *in, const char *type_key, const char *const (*fields)[2],
                        size_t nfields, const char *const *types, bool xero)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(in, i, e)
    {
        if (!json_is_object(e)) {
            continue;
        }
        json_t *c = json_object();
        bool any = false;
        for (size_t f = 0; f < nfields; f++) {
            json_t *v = xs_domain_text(e, fields[f][xero ? 1 : 0]);
            any |= !json_is_null(v);
            json_object_set_new(c, fields[f][0], v);
        }
        json_t *type = xs_domain_text(e, xero ? type_key : "type");
        if (!any || json_is_null(type)) {
            json_decref(c);
            json_decref(type);
            continue;
        }
        json_object_set_new(c, "type", type);
        /* One entry per type: the later one wins, as in Xero. */
        size_t j;
        json_t *o;
        bool replaced = false;
        json_array_foreach(out, j, o)
        {
            if (strcmp(xs_json_str_or(o, "type", ""), xs_json_string_value(type, NULL)) == 0) {
                json_array_set(out, j, c);
                replaced = true;
                break;
            }
        }
        if (!replaced) {
            json_array_append(out, c);
        }
        json_decref(c);
    }
    /* Sort by type order (few entries: insertion sort). */
    size_t n = json_array_size(out);
    for (size_t a = 1; a < n; a++) {
        for (size_t b = a; b > 0; b--) {
            json_t *x = json_array_get(out, b - 1), *y = json_array_get(out, b);
            int rx = type_rank(xs_json_str_or(x, "type", ""), types);
            int ry = type_rank(xs_json_str_or(y, "type", ""), types);
            if (rx < ry || (rx == ry && strcmp(xs_json_str_or(x, "type", ""),
                                               xs_json_str_or(y, "type", "")) <= 0)) {
                break;
            }
            json_incref(x);
            json_array_set(out, b - 1, y);
            json_array_set_new(out, b, x);
        }
    }
    return out;
}

/* canonical builds the canonical contact from an object keyed by Xero's names (xero) or the
 * canonical ones; why (XS_DOMAIN_WHY_MAX bytes) says what is wrong when it returns NULL. */
static json_t *canonical(const json_t *in, bool xero, char *why)
{
    json_t *rec = json_object();
    for (size_t i = 0; i < NTEXT; i++) {
        json_object_set_new(rec, TEXT[i][0], xs_domain_text(in, TEXT[i][xero ? 1 : 0]));
    }
    if (json_is_null(json_object_get(rec, "name"))) {
        snprintf(why, XS_DOMAIN_WHY_MAX, "a contact needs a name");
        json_decref(rec);
        return NULL;
    }
    json_t *st = xs_domain_text(in, xero ? "ContactStatus" : "status");
    if (json_is_null(st)) {
        json_decref(st);
        st = json_string("ACTIVE");
    }
    if (!xs_domain_one_of(xs_json_string_value(st, NULL), STATUSES)) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "status must be ACTIVE, ARCHIVED or GDPRREQUEST, not %.40s",
                 xs_json_string_value(st, NULL));
        json_decref(st);
        json_decref(rec);
        return NULL;
    }
    json_object_set_new(rec, "status", st);
    json_t *cur = xs_domain_text(in, xero ? "DefaultCurrency" : "default_currency");
    const char *c = xs_json_string_value(cur, NULL);
    if (c != NULL && (strlen(c) != 3 || strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)) {
        snprintf(why, XS_DOMAIN_WHY_MAX,
                 "default_currency must be an ISO 4217 code such as NZD, not %.20s", c);
        json_decref(cur);
        json_decref(rec);
        return NULL;
    }
    json_object_set_new(rec, "default_currency", cur);
    json_object_set_new(rec, "phones",
                        sub_list(json_object_get(in, xero ? "Phones" : "phones"), "PhoneType",
                                 PHONE, NPHONE, PHONE_TYPES, xero));
    json_object_set_new(rec, "addresses",
                        sub_list(json_object_get(in, xero ? "Addresses" : "addresses"),
                                 "AddressType", ADDRESS, NADDRESS, ADDRESS_TYPES, xero));
    return rec;
}

static json_t *read_xero(const json_t *x, char *why)
{
    return canonical(x, true, why);
}

/* sub_to_xero writes a canonical list back in Xero's names, with an empty entry for every
 * type the record does not have (so a removed phone is cleared in Xero). */
static json_t *sub_to_xero(const json_t *list, const char *type_key, const char *const (*fields)[2],
                           size_t nfields, const char *const *types)
{
    json_t *out = json_array();
    for (size_t t = 0; types[t] != NULL; t++) {
        const json_t *have = NULL;
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e)
        {
            if (strcmp(xs_json_str_or(e, "type", ""), types[t]) == 0) {
                have = e;
            }
        }
        json_t *o = json_pack("{s:s}", type_key, types[t]);
        for (size_t f = 0; f < nfields; f++) {
            json_object_set_new(o, fields[f][1],
                                json_string(xs_domain_text_or_empty(have, fields[f][0])));
        }
        json_array_append_new(out, o);
    }
    return out;
}

static json_t *to_xero(const json_t *rec, const char *xero_id, const json_t *parts)
{
    (void)parts;
    json_t *x = json_object();
    if (xero_id != NULL) {
        json_object_set_new(x, "ContactID", json_string(xero_id));
    }
    for (size_t i = 0; i < NTEXT; i++) {
        json_object_set_new(x, TEXT[i][1], json_string(xs_domain_text_or_empty(rec, TEXT[i][0])));
    }
    json_object_set_new(x, "ContactStatus", json_string(xs_json_str_or(rec, "status", "ACTIVE")));
    const char *cur = xs_json_str_or(rec, "default_currency", NULL);
    if (cur != NULL) {
        json_object_set_new(x, "DefaultCurrency", json_string(cur));
    }
    json_object_set_new(
        x, "Phones",
        sub_to_xero(json_object_get(rec, "phones"), "PhoneType", PHONE, NPHONE, PHONE_TYPES));
    json_object_set_new(x, "Addresses",
                        sub_to_xero(json_object_get(rec, "addresses"), "AddressType", ADDRESS,
                                    NADDRESS, ADDRESS_TYPES));
    return x;
}

static json_t *retire_item(const char *xero_id, const json_t *base, char *why)
{
    (void)why;
    if (strcmp(xs_json_str_or(base, "status", ""), "ARCHIVED") == 0) {
        return NULL; /* already archived in Xero */
    }
    return json_pack("{s:s, s:s}", "ContactID", xero_id, "ContactStatus", "ARCHIVED");
}

#define COLS                                                                                       \
    "id, organisation_id, name, first_name, last_name, email, contact_number, account_number, "    \
    "tax_number, phones::text, addresses::text, status, default_currency, " XS_DOMAIN_MS(          \
        "coalesce(edited_at, updated_at)") " AS edited_ms, edited_fields::text AS "                \
                                           "edited_fields, " XS_DOMAIN_MS("updated_at")

/* row_rec reads a row of COLS as the canonical contact. */
static json_t *row_rec(const xs_pg_res *r, int i)
{
    json_t *row = json_object();
    xs_domain_text_cols(row, r, i, 2, TEXT, NTEXT);
    const char *ph = xs_pg_res_get(r, i, 9), *ad = xs_pg_res_get(r, i, 10);
    json_object_set_new(row, "phones", xs_json_parse(ph, strlen(ph), NULL));
    json_object_set_new(row, "addresses", xs_json_parse(ad, strlen(ad), NULL));
    json_object_set_new(row, "status", json_string(xs_pg_res_get(r, i, 11)));
    const char *cur = xs_pg_res_get(r, i, 12);
    json_object_set_new(row, "default_currency", cur != NULL ? json_string(cur) : json_null());
    char why[XS_DOMAIN_WHY_MAX];
    json_t *rec = canonical(row, false, why);
    json_decref(row);
    return rec;
}

static xs_err load_local(xs_pg *pg, const char *org, const json_t *ids, xs_local_rows *out)
{
    return xs_domain_load_rows(pg,
                               "SELECT " COLS " FROM app.contacts WHERE id = ANY($2::uuid[]) AND "
                               "($1::uuid IS NULL OR organisation_id = $1::uuid)",
                               org, ids, row_rec, out);
}

static xs_err list_ids(xs_pg *pg, const char *org, const char *conn, const char *after, int limit,
                       json_t **out, char *last)
{
    return xs_domain_list_ids(pg, "app.contacts", "contact", org, conn, after, limit, out, last);
}

/* Matching reads only the contacts this connection has not linked (sync.unlinked_contacts,
 * migration 0008). When they are few, the page's keys are joined with them alone; when they
 * are many (a first sync of a large existing database), each key is looked up in its index
 * and the linked rows are dropped, as the set would cost more to read than the lookups. With
 * none, nothing is asked at all: an import into an empty database, or an organisation already
 * in sync, matches nothing. Both forms check sync.mappings too, so a row the set still holds
 * for a contact linked meanwhile is never matched. */
#define FEW_UNLINKED 4000

static xs_err match(xs_pg *pg, const char *org, const char *conn, const xs_match_item *items,
                    size_t nitems, const json_t *keys, xs_match_pairs *out)
{
    static const char *const key_col[] = {"contact_number", "email_key", "name_key"};
    static const char *const names[] = {"contact_number", "email", "name"};
    xs_pg_res *r = NULL;
    char limit[24];
    snprintf(limit, sizeof(limit), "%d", FEW_UNLINKED + 1);
    xs_err e = xs_pg_q(pg, &r,
                       "SELECT count(*) FROM (SELECT 1 FROM sync.unlinked_contacts WHERE "
                       "connection_id = $1 LIMIT $2::int) s",
                       conn, limit);
    if (e != XS_OK) {
        return e;
    }
    int64_t unlinked = 0;
    e = xs_pg_res_int(r, 0, 0, &unlinked);
    xs_pg_res_free(r);
    if (e != XS_OK) {
        return e;
    }
    if (unlinked == 0) {
        return XS_OK;
    }
    bool few = unlinked <= FEW_UNLINKED;
    char sql[4096];
    size_t n = (size_t)snprintf(
        sql, sizeof(sql),
        "WITH x AS MATERIALIZED (SELECT r.xero_id, r.contact_number, lower(r.email) AS email_key, "
        "sync.normalise_name(r.name) AS name_key FROM jsonb_to_recordset($3::jsonb) AS r(xero_id "
        "text, contact_number text, email text, name text))%s, m AS (",
        few ? ", c AS MATERIALIZED (SELECT c.id, c.contact_number, c.email_key, c.name_key FROM "
              "sync.unlinked_contacts u JOIN app.contacts c ON c.id = u.contact_id AND "
              "c.organisation_id = $1 WHERE u.connection_id = $2)"
            : "");
    int parts = 0;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        for (int p = 0; p < 3; p++) {
            const char *name = xs_json_string_value(k, NULL);
            if (name == NULL || strcmp(name, names[p]) != 0) {
                continue;
            }
            n += (size_t)snprintf(sql + n, sizeof(sql) - n,
                                  "%sSELECT x.xero_id, c.id, '%s' FROM x JOIN %s ON c.%s = x.%s",
                                  parts > 0 ? " UNION ALL " : "", names[p],
                                  few ? "c" : "app.contacts c", key_col[p], key_col[p]);
            if (!few) {
                n += (size_t)snprintf(sql + n, sizeof(sql) - n, " AND c.organisation_id = $1");
            }
            parts++;
        }
    }
    if (parts == 0) {
        return XS_OK;
    }
    snprintf(sql + n, sizeof(sql) - n,
             ") SELECT m.* FROM m WHERE NOT EXISTS (SELECT 1 FROM sync.mappings s WHERE "
             "s.connection_id = $2 AND s.entity = 'contact' AND s.local_id = m.id)");
    json_t *flat = json_array();
    for (i = 0; i < nitems; i++) {
        const json_t *rec = items[i].rec;
        json_array_append_new(
            flat, json_pack("{s:s, s:O, s:O, s:O}", "xero_id", items[i].xero_id, "contact_number",
                            json_object_get(rec, "contact_number"), "email",
                            json_object_get(rec, "email"), "name", json_object_get(rec, "name")));
    }
    char *text = xs_json_dump(flat, 0);
    json_decref(flat);
    e = text != NULL ? xs_pg_q(pg, &r, sql, org, conn, text) : XS_ENOMEM;
    free(text);
    if (e != XS_OK) {
        return e;
    }
    for (int row = 0; e == XS_OK && row < xs_pg_res_nrows(r); row++) {
        if (!xs_match_pairs_add(out, xs_pg_res_get(r, row, 0), xs_pg_res_get(r, row, 1),
                                xs_pg_res_get(r, row, 2))) {
            e = XS_ENOMEM;
        }
    }
    xs_pg_res_free(r);
    return e;
}

/* The columns of app.contacts the sync writes, each from its canonical field. */
static const xs_domain_col COLUMNS[] = {
    {"name", "name", "text", NULL},
    {"first_name", "first_name", "text", NULL},
    {"last_name", "last_name", "text", NULL},
    {"email", "email", "text", NULL},
    {"contact_number", "contact_number", "text", NULL},
    {"account_number", "account_number", "text", NULL},
    {"tax_number", "tax_number", "text", NULL},
    {"phones", "phones", "jsonb", NULL},
    {"addresses", "addresses", "jsonb", NULL},
    {"status", "status", "text", NULL},
    {"default_currency", "default_currency", "text", NULL},
};
static const xs_domain_table TABLE = {"app.contacts", "c", COLUMNS,
                                      sizeof(COLUMNS) / sizeof(COLUMNS[0])};

static bool lookup_key(const json_t *rec, const char *message, char *key)
{
    if (strstr(message, "is already assigned to another contact") == NULL) {
        return false;
    }
    snprintf(key, XS_DOMAIN_WHY_MAX, "%s", xs_domain_text_or_empty(rec, "name"));
    return key[0] != '\0';
}

static char *lookup_query(const json_t *keys)
{
    size_t cap = 64;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        cap += 2 * json_string_length(k) + 16;
    }
    char *q = malloc(cap);
    if (q == NULL) {
        return NULL;
    }
    size_t n = 0;
    json_array_foreach(keys, i, k)
    {
        n += (size_t)snprintf(q + n, cap - n, "%sName==\"", i > 0 ? " OR " : "");
        for (const char *c = xs_json_string_value(k, NULL); *c; c++) {
            if (*c == '"' || *c == '\\') {
                q[n++] = '\\';
            }
            q[n++] = *c;
        }
        q[n++] = '"';
        q[n] = '\0';
    }
    return q;
}

static xs_err validate(const json_t *in, const json_t *current, bool partial, json_t **rec,
                       char *field, char *why)
{
    if (!json_is_object(in)) {
        snprintf(field, XS_DOMAIN_WHY_MAX, "record");
        snprintf(why, XS_DOMAIN_WHY_MAX, "the record must be a JSON object");
        return XS_EINVAL;
    }
    static const char *const known[] = {"name",       "first_name",     "last_name",
                                        "email",      "contact_number", "account_number",
                                        "tax_number", "status",         "default_currency",
                                        "phones",     "addresses",      NULL};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        if (!xs_domain_one_of(k, known)) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "%.200s", k);
            snprintf(why, XS_DOMAIN_WHY_MAX, "unknown field %.200s", k);
            return XS_EINVAL;
        }
        bool list = strcmp(k, "phones") == 0 || strcmp(k, "addresses") == 0;
        if (list ? !(json_is_array(v) || json_is_null(v))
                 : !(json_is_null(v) || xs_json_string_value(v, NULL) != NULL)) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "%.200s", k);
            snprintf(why, XS_DOMAIN_WHY_MAX, "%.200s must be %s", k,
                     list ? "an array" : "a string or null");
            return XS_EINVAL;
        }
        size_t len = 0;
        if (xs_json_string_value(v, &len) != NULL && len > (strcmp(k, "name") == 0 ? 255 : 500)) {
            snprintf(field, XS_DOMAIN_WHY_MAX, "%.200s", k);
            snprintf(why, XS_DOMAIN_WHY_MAX, "%.200s is too long", k);
            return XS_EINVAL;
        }
    }
    const char *email = xs_json_str_or(in, "email", NULL);
    if (email != NULL && email[0] != '\0' &&
        (strchr(email, '@') == NULL || strchr(email, ' ') != NULL)) {
        snprintf(field, XS_DOMAIN_WHY_MAX, "email");
        snprintf(why, XS_DOMAIN_WHY_MAX, "email must be an e-mail address");
        return XS_EINVAL;
    }
    static const char *const fields[][2] = {
        {"name", "name"}, {"status", "status"}, {"currency", "default_currency"}, {NULL, NULL}};
    return xs_domain_merged(in, current, partial, canonical, fields, rec, field, why);
}

const xs_entity_ops contact_ops = {
    .info = &xs_entity_table[XS_ENTITY_CONTACT],
    .xero_path = "/api.xro/2.0/Contacts",
    .id_field = "ContactID",
    .ids_param = true,
    .xero_list = "Contacts",
    .analyze = "app.contacts (id, organisation_id, contact_number, account_number, email_key, "
               "name_key, updated_at)",
    .pull_query = "includeArchived=true",
    .table = "app.contacts",
    .read_xero = read_xero,
    .to_xero = to_xero,
    .retire_item = retire_item,
    .load_local = load_local,
    .list_ids = list_ids,
    .match = match,
    .columns = &TABLE,
    .create_linked = true, /* its columns are its fields: a pull creates rows with mappings */
    .lookup_key = lookup_key,
    .lookup_query = lookup_query,
    .validate = validate,
};
