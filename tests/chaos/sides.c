/*
 * sides.c: both sides, read whole. Xero: every contact (archived ones too), invoice (with
 * lines, 4-place unit amounts) and payment of the tenant, through the simulator's control
 * API in pages of 1,000. Locally: every row of the organisation with its mapping, every
 * mapping of the connection, every conflict, by SQL. Lazily, for classifying a lost Xero
 * write: the simulator's call log for the tenant (with times) and the engine's stored push
 * requests (by Idempotency-Key), which say which records a write named.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"
#include "xs/json.h"

static const char *const KIND[CE_N] = {"Contacts", "Invoices", "Payments"};
static const char *const ID_FIELD[CE_N] = {"ContactID", "InvoiceID", "PaymentID"};

/* xero_all indexes every record of ent in the simulator by its id (new). */
static json_t *xero_all(chaos_world *w, chaos_ent ent)
{
    static const char *const extra[CE_N] = {"&includeArchived=true", "&unitdp=4", ""};
    json_t *all = json_object();
    for (int page = 1;; page++) {
        char path[256];
        snprintf(path, sizeof(path), "/_sim/tenants/%s/%s?page=%d&pageSize=1000%s", w->tenant,
                 KIND[ent], page, extra[ent]);
        json_t *j = xst_engine_sim_json(w->e, "GET", path, NULL);
        json_t *list = json_object_get(j, KIND[ent]);
        size_t i;
        json_t *rec;
        json_array_foreach(list, i, rec)
        {
            const char *id = json_string_value(json_object_get(rec, ID_FIELD[ent]));
            if (id != NULL) {
                json_object_set(all, id, rec);
            }
        }
        size_t n = json_array_size(list);
        json_decref(j);
        if (n < 1000) {
            return all;
        }
    }
}

/* The local rows of the organisation, by id, each with its mapping's Xero id. */
static const char *const LOCAL_SQL[CE_N] = {
    "SELECT coalesce(json_object_agg(c.id, json_build_object('name', c.name, 'email', c.email, "
    "'last_name', c.last_name, 'status', c.status, 'xero_id', m.xero_id)), '{}')::text FROM "
    "app.contacts c LEFT JOIN sync.mappings m ON m.connection_id = $2 AND m.entity = 'contact' "
    "AND m.local_id = c.id WHERE c.organisation_id = $1",
    "SELECT coalesce(json_object_agg(i.id, json_build_object('type', i.type, 'invoice_number', "
    "i.invoice_number, 'reference', i.reference, 'status', i.status, 'due_date', "
    "to_char(i.due_date, 'YYYY-MM-DD'), 'contact_id', i.contact_id, 'sub_total', "
    "i.sub_total::text, 'total_tax', i.total_tax::text, 'total', i.total::text, 'amount_due', "
    "i.amount_due::text, 'amount_paid', i.amount_paid::text, 'xero_id', m.xero_id)), "
    "'{}')::text FROM app.invoices i LEFT JOIN sync.mappings m ON m.connection_id = $2 AND "
    "m.entity = 'invoice' AND m.local_id = i.id WHERE i.organisation_id = $1",
    "SELECT coalesce(json_object_agg(p.id, json_build_object('invoice_id', p.invoice_id, "
    "'amount', p.amount::text, 'reference', p.reference, 'status', p.status, 'xero_id', "
    "m.xero_id)), '{}')::text FROM app.payments p LEFT JOIN sync.mappings m ON m.connection_id "
    "= $2 AND m.entity = 'payment' AND m.local_id = p.id WHERE p.organisation_id = $1",
};

void chaos_sides_read(chaos_world *w, chaos_sides *s)
{
    memset(s, 0, sizeof(*s));
    for (int k = 0; k < CE_N; k++) {
        s->xero[k] = xero_all(w, (chaos_ent)k);
        const char *p[] = {w->org, w->conn};
        s->local[k] = chaos_sql_json(w, LOCAL_SQL[k], 2, p);
        const char *q[] = {w->conn, chaos_ent_name((chaos_ent)k)};
        s->maps[k] = chaos_sql_json(w,
                                    "SELECT coalesce(json_object_agg(xero_id, local_id), "
                                    "'{}')::text FROM sync.mappings WHERE connection_id = $1 "
                                    "AND entity = $2",
                                    2, q);
        if (s->local[k] == NULL || s->maps[k] == NULL) {
            xst_die("cannot read the local %ss", chaos_ent_name((chaos_ent)k));
        }
    }
    const char *p[] = {w->conn};
    s->conflicts = chaos_sql_json(
        w,
        "SELECT coalesce(json_object_agg(local_id, list), '{}')::text FROM (SELECT local_id, "
        "json_agg(json_build_object('at', (extract(epoch FROM detected_at) * 1000)::bigint, "
        "'entity', entity, 'xero_id', xero_id, 'base', base, 'local', local_version, 'xero', "
        "xero_version, "
        "'merged', merged_data, 'reason', reason, 'status', status, 'policy', policy) ORDER BY "
        "detected_at) AS list FROM sync.conflicts WHERE connection_id = $1 GROUP BY local_id) t",
        1, p);
    if (s->conflicts == NULL) {
        s->conflicts = json_object();
    }
}

void chaos_sides_free(chaos_sides *s)
{
    for (int k = 0; k < CE_N; k++) {
        json_decref(s->xero[k]);
        json_decref(s->local[k]);
        json_decref(s->maps[k]);
    }
    json_decref(s->conflicts);
    json_decref(s->calls);
    json_decref(s->steps);
    memset(s, 0, sizeof(*s));
}

/* date_of writes a Xero /Date(...)/ as YYYY-MM-DD ("" when none). */
static void date_of(const json_t *v, char out[64])
{
    xs_time t;
    out[0] = '\0';
    if (json_is_string(v) && xs_time_parse_xero(json_string_value(v), &t) == XS_OK) {
        xs_time_format_date(t, out);
    }
}

void chaos_xero_value(const json_t *x, chaos_field f, char out[64])
{
    static const char *const keys[CF_N] = {NULL,        "EmailAddress", "LastName", "ContactStatus",
                                           "Reference", "DueDate",      "Status",   "Status"};
    out[0] = '\0';
    if (x == NULL || f <= CF_CREATE || f >= CF_N) {
        return;
    }
    json_t *v = json_object_get(x, keys[f]);
    if (f == CF_DUE_DATE) {
        date_of(v, out);
    } else if (json_is_string(v)) {
        snprintf(out, 64, "%s", json_string_value(v));
    }
}

void chaos_local_value(const json_t *l, chaos_field f, char out[64])
{
    static const char *const keys[CF_N] = {NULL,        "email",    "last_name", "status",
                                           "reference", "due_date", "status",    "status"};
    out[0] = '\0';
    if (l == NULL || f <= CF_CREATE || f >= CF_N) {
        return;
    }
    json_t *v = json_object_get(l, keys[f]);
    if (json_is_string(v)) {
        snprintf(out, 64, "%s", json_string_value(v));
    }
}

/* load_calls reads the simulator's whole call log for the tenant (new array). */
static json_t *load_calls(chaos_world *w)
{
    json_t *all = json_array();
    long long since = 0;
    for (;;) {
        char path[256];
        snprintf(path, sizeof(path), "/_sim/calls?since=%lld&limit=5000&tenant=%s", since,
                 w->tenant);
        json_t *j = xst_engine_sim_json(w->e, "GET", path, NULL);
        size_t n = json_array_size(j);
        if (n > 0) {
            since = (long long)json_integer_value(json_object_get(json_array_get(j, n - 1), "seq"));
        }
        json_array_extend(all, j);
        json_decref(j);
        if (n < 5000) {
            return all;
        }
    }
}

/* load_steps maps the stored push requests by the first 47 characters of their key (the
 * call log keeps that much). */
static json_t *load_steps(chaos_world *w)
{
    const char *p[] = {w->conn};
    json_t *j = chaos_sql_json(w,
                               "SELECT coalesce(json_object_agg(left(s.idempotency_key, 47), "
                               "s.request_body), '{}')::text FROM sync.run_steps s JOIN "
                               "sync.runs r ON r.id = s.run_id WHERE r.connection_id = $1 AND "
                               "s.idempotency_key IS NOT NULL AND s.request_body IS NOT NULL",
                               1, p);
    return j != NULL ? j : json_object();
}

/* call_seen tells whether call c (a read that began after at_ms and was answered in full)
 * could have shown the engine the record, or whether (a write) it changed it; 0: neither,
 * 1: a read that saw it, 2: a write that changed it. */
static int call_role(chaos_sides *s, const json_t *c, const char *kind, const char *xero_id,
                     int64_t at_ms)
{
    const char *ep = json_string_value(json_object_get(c, "endpoint"));
    const char *method = json_string_value(json_object_get(c, "method"));
    const char *path = json_string_value(json_object_get(c, "path"));
    const char *fault = json_string_value(json_object_get(c, "fault"));
    const char *at = json_string_value(json_object_get(c, "at"));
    xs_time end;
    if (ep == NULL || method == NULL || path == NULL || at == NULL ||
        xs_time_parse_iso(at, &end) != XS_OK) {
        return 0;
    }
    const char *res = strchr(ep, '/');
    if (res == NULL || strncasecmp(res + 1, kind, strlen(kind)) != 0 || end < at_ms) {
        return 0;
    }
    bool by_id = strstr(ep, "{id}") != NULL;
    if (by_id && strcasestr(path, xero_id) == NULL) {
        return 0; /* a call about another record */
    }
    long status = (long)json_integer_value(json_object_get(c, "status"));
    if (strcmp(method, "GET") == 0) {
        int64_t start = end - json_integer_value(json_object_get(c, "ms"));
        /* a read that began before the write may have been served before it */
        return start >= at_ms && status == 200 && fault == NULL ? 1 : 0;
    }
    bool applied = fault != NULL ? chaos_fault_applied(fault) : status == 200;
    if (!applied) {
        return 0;
    }
    const char *key = json_string_value(json_object_get(c, "idempotency_key"));
    const char *body = key != NULL ? json_string_value(json_object_get(s->steps, key)) : NULL;
    if (!by_id && body != NULL && strcasestr(body, xero_id) == NULL) {
        return 0; /* a batch of other records */
    }
    return 2;
}

bool chaos_in_window(chaos_world *w, chaos_sides *s, chaos_ent ent, const char *xero_id,
                     int64_t at_ms, char why[256])
{
    if (s->calls == NULL) {
        s->calls = load_calls(w);
        s->steps = load_steps(w);
    }
    size_t i;
    json_t *c;
    json_array_foreach(s->calls, i, c)
    {
        int role = call_role(s, c, KIND[ent], xero_id, at_ms);
        if (role != 0) {
            snprintf(why, 256,
                     "the engine's first call after it that could see or change it: %s %s "
                     "at %s (status %lld%s%s)",
                     json_string_value(json_object_get(c, "method")),
                     json_string_value(json_object_get(c, "path")),
                     json_string_value(json_object_get(c, "at")),
                     (long long)json_integer_value(json_object_get(c, "status")),
                     json_object_get(c, "fault") != NULL ? ", fault " : "",
                     json_object_get(c, "fault") != NULL
                         ? json_string_value(json_object_get(c, "fault"))
                         : "");
            return role == 2;
        }
    }
    snprintf(why, 256, "the engine made no call after it that could see or change it");
    return false;
}
