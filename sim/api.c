/*
 * api.c: the Accounting API surface shared by every kind: routing under /api.xro/2.0,
 * authorisation order (bearer, tenant, scope, rate limits, faults, latency), request bodies,
 * idempotency, batch writes with Xero's two error forms, lists and single reads.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "context.h"
#include "faults.h"
#include "fields.h"
#include "identity.h"
#include "kinds.h"
#include "limits.h"
#include "query.h"
#include "reply.h"
#include "settings.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "xs/crypto.h"

/* ------------------------------------------------------------------ JSON input */

/* ------------------------------------------------------------------ replies */

static const char not_found_text[] = "The resource you're looking for cannot be found";

/* ------------------------------------------------------------------ changes */

xs_err sim__batch_init(sim_batch *b, sim_call *c, sim_tenant *t, bool user)
{
    memset(b, 0, sizeof(*b));
    b->c = c;
    b->t = t;
    b->user = user;
    b->now = sim__now(c->s);
    const char *dp = xs_http_req_query(c->req, "unitdp");
    b->unitdp4 = dp != NULL && strcmp(dp, "4") == 0;
    b->names = json_object();
    b->numbers = json_object();
    b->paid = json_object();
    b->codes = json_object();
    if (b->names == NULL || b->numbers == NULL || b->paid == NULL || b->codes == NULL) {
        sim__batch_fini(b);
        return XS_ENOMEM;
    }
    return XS_OK;
}

void sim__batch_fini(sim_batch *b)
{
    json_decref(b->names);
    json_decref(b->numbers);
    json_decref(b->paid);
    json_decref(b->codes);
    memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------------ duplicates */

/* fingerprint records a record created from item by this request; a second creation with
 * the same content from another request is a duplicate creation. */
static void fingerprint(sim_batch *b, const sim_kind_ops *ops, const json_t *item, const sim_rec *r)
{
    char *canon = xs_json_dump(item, XS_JSON_SORT_KEYS);
    if (canon == NULL) {
        return;
    }
    size_t n = strlen(canon);
    char *buf = malloc(n + 32);
    if (buf == NULL) {
        free(canon);
        return;
    }
    int k = snprintf(buf, n + 32, "%s:", ops->plural);
    memcpy(buf + k, canon, n + 1);
    free(canon);
    char fp[2 * XS_SHA256_LEN + 1];
    xs_sha256_hex(buf, strlen(buf), fp);
    free(buf);

    char ids[XS_UUID_STR];
    xs_uuid_format(&r->id, ids);
    char *prev = sim__smap_get(&b->t->fingerprints, fp);
    if (prev != NULL) {
        /* "<first id> <request number>" */
        unsigned long long req = strtoull(prev + XS_UUID_STR, NULL, 10);
        if (req != b->c->id) {
            sim_dup d;
            memset(&d, 0, sizeof(d));
            snprintf(d.tenant, sizeof(d.tenant), "%s", b->t->ids);
            d.kind = ops->kind;
            memcpy(d.first, prev, XS_UUID_STR - 1);
            d.first[XS_UUID_STR - 1] = '\0';
            snprintf(d.dup, sizeof(d.dup), "%s", ids);
            d.first_req = req;
            d.dup_req = b->c->id;
            d.at = b->now;
            sim__stats_dup(b->c->s, &d);
        }
        return;
    }
    char *val = malloc(XS_UUID_STR + 24);
    if (val == NULL) {
        return;
    }
    snprintf(val, XS_UUID_STR + 24, "%s %llu", ids, (unsigned long long)b->c->id);
    if (sim__smap_put(&b->t->fingerprints, fp, val, NULL) != XS_OK) {
        free(val);
    }
}

/* ------------------------------------------------------------------ batch writes */

typedef struct item_state {
    json_t *item; /* borrowed */
    sim_rec *existing;
    void *plan;
    json_t *errors; /* owned */
    sim_rec *done;
} item_state;

static void post_data_invalid(sim_call *c, const char *why)
{
    char msg[400];
    snprintf(msg, sizeof(msg), "JSON for post data was invalid,%s", why);
    sim__reply_xero_error(c, 400, 14, "PostDataInvalidException", msg);
}

/* echo_normalise rewrites, in place, the values an item may send as text that Xero reads as
 * numbers or booleans (the fields sim__get_money and sim__get_bool read: "5.00", "true"),
 * as Xero writes them back: numbers and booleans, so an echoed item keeps the spec's types.
 * Anything else stays as sent. */
static void echo_normalise(json_t *v)
{
    static const char *const money[] = {"Amount",       "CurrencyRate", "DiscountAmount",
                                        "DiscountRate", "LineAmount",   "Quantity",
                                        "TaxAmount",    "UnitAmount",   NULL};
    static const char *const flags[] = {"AddToWatchlist",
                                        "EnablePaymentsToAccount",
                                        "IncludeInEmails",
                                        "IsReconciled",
                                        "SentToContact",
                                        "ShowInExpenseClaims",
                                        NULL};
    size_t i;
    json_t *x;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            echo_normalise(x);
        }
        return;
    }
    const char *k;
    json_object_foreach(v, k, x)
    {
        const char *txt = xs_json_string_value(x, NULL);
        if (txt == NULL) {
            echo_normalise(x);
            continue;
        }
        json_t *as_read = NULL;
        for (i = 0; money[i] != NULL && as_read == NULL; i++) {
            as_read = strcmp(k, money[i]) == 0 ? xs_json_decimal(txt) : NULL;
        }
        for (i = 0; flags[i] != NULL && as_read == NULL; i++) {
            if (strcmp(k, flags[i]) == 0 &&
                (strcasecmp(txt, "true") == 0 || strcasecmp(txt, "false") == 0)) {
                as_read = json_boolean(strcasecmp(txt, "true") == 0);
            }
        }
        if (as_read != NULL) {
            json_object_set_new(v, k, as_read); /* replaces x: the iteration is unaffected */
        }
    }
}

/* echo_item copies an item of the request to answer with (new; an empty object when the
 * item is not one; NULL when out of memory): as sent, its id field (id_field) set to the nil
 * GUID unless it had one (force: always), as Xero marks an item it did not save. */
static json_t *echo_item(const json_t *item, const char *id_field, bool force)
{
    json_t *el = json_is_object(item) ? json_deep_copy(item) : json_object();
    if (el == NULL) {
        return NULL;
    }
    echo_normalise(el);
    if (force || json_object_get(el, id_field) == NULL) {
        json_object_set_new(el, id_field, json_string("00000000-0000-0000-0000-000000000000"));
    }
    return el;
}

/* error_element echoes a failed item with its validation errors. */
static json_t *error_element(const sim_kind_ops *ops, const item_state *st, bool summarize)
{
    json_t *el = echo_item(st->item, ops->id_field, false);
    if (el == NULL) {
        return NULL;
    }
    if (!summarize && ops->status_attr) {
        json_object_set_new(el, "StatusAttributeString", json_string("ERROR"));
    }
    json_object_set(el, "ValidationErrors", st->errors);
    if (ops->error_flag != NULL) {
        json_object_set_new(el, ops->error_flag, json_true());
    }
    return el;
}

void sim__write_items(sim_call *c, sim_batch *b, const sim_kind_ops *ops, json_t *body, bool is_put,
                      const char *existing_id, bool summarize)
{
    char why[256] = "";
    json_t *arr = NULL;
    if (!json_is_object(body)) {
        post_data_invalid(c, "the request body must be a JSON object.");
        return;
    }
    json_t *wrapped = json_object_get(body, ops->plural);
    if (wrapped != NULL) {
        if (!json_is_array(wrapped)) {
            snprintf(why, sizeof(why), "'%s' must be an array.", ops->plural);
            post_data_invalid(c, why);
            return;
        }
        arr = json_incref(wrapped);
    } else {
        arr = json_array();
        json_array_append(arr, body);
    }
    size_t n = json_array_size(arr);
    if (existing_id != NULL && n != 1) {
        json_decref(arr);
        sim__reply_xero_error(c, 400, 10, "ValidationException",
                              "A single record is expected when updating by id");
        return;
    }
    item_state *st = calloc(n ? n : 1, sizeof(*st));
    if (st == NULL) {
        json_decref(arr);
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        return;
    }
    sim_table *tb = &b->t->t[ops->kind];
    bool any_failed = false;
    xs_err fatal = XS_OK;

    for (size_t i = 0; i < n; i++) {
        item_state *s = &st[i];
        s->item = json_array_get(arr, i);
        s->errors = json_array();
        char path[96];
        snprintf(path, sizeof(path), "%s[%zu]", ops->plural, i);
        if (!json_is_object(s->item)) {
            snprintf(why, sizeof(why), "Unexpected value in '%s': an object is expected.", path);
            fatal = XS_EPARSE;
            break;
        }
        xs_uuid id;
        bool has_id = false;
        if (sim__get_uuid(s->item, ops->id_field, path, &id, &has_id, why) != XS_OK) {
            fatal = XS_EPARSE;
            break;
        }
        if (existing_id != NULL) {
            xs_uuid pid;
            if (!xs_uuid_parse(existing_id, &pid)) {
                sim__err(s->errors, "'%s' is not a valid %s", existing_id, ops->id_field);
            } else if (has_id && !xs_uuid_eq(&pid, &id)) {
                sim__err(s->errors, "The %s in the body does not match the one in the URL",
                         ops->id_field);
            } else {
                id = pid;
                has_id = true;
            }
        }
        if (has_id && json_array_size(s->errors) == 0) {
            s->existing = sim__table_find(tb, &id);
            char ids[XS_UUID_STR];
            xs_uuid_format(&id, ids);
            if (s->existing == NULL) {
                sim__err(s->errors, "The %s with %s %s could not be found.", ops->singular,
                         ops->id_field, ids);
            } else if (existing_id == NULL && ops->batch_refusal != NULL) {
                sim__err(s->errors, "%s", ops->batch_refusal);
            } else if (is_put) {
                sim__err(s->errors,
                         "The %s with %s %s already exists; PUT creates records, use POST to "
                         "update it.",
                         ops->singular, ops->id_field, ids);
            } else {
                for (size_t k = 0; k < i; k++) {
                    if (st[k].existing == s->existing) {
                        sim__err(s->errors,
                                 "The %s with %s %s appears more than once in this request.",
                                 ops->singular, ops->id_field, ids);
                        break;
                    }
                }
            }
        }
        if (json_array_size(s->errors) == 0) {
            snprintf(b->path, sizeof(b->path), "%s", path);
            xs_err e = ops->plan(b, s->item, s->existing, &s->plan, s->errors, why);
            if (e == XS_EPARSE) {
                fatal = XS_EPARSE;
                break;
            }
            if (e != XS_OK) {
                fatal = e;
                break;
            }
        }
        if (json_array_size(s->errors) > 0) {
            any_failed = true;
        }
    }

    if (fatal == XS_OK && summarize && any_failed) {
        json_t *err =
            json_pack("{s:i,s:s,s:s,s:[]}", "ErrorNumber", 10, "Type", "ValidationException",
                      "Message", "A validation exception occurred", "Elements");
        json_t *els = json_object_get(err, "Elements");
        for (size_t i = 0; i < n; i++) {
            if (json_array_size(st[i].errors) > 0) {
                json_array_append_new(els, error_element(ops, &st[i], true));
            }
        }
        sim__reply_json(c, 400, err);
        goto done;
    }
    if (fatal == XS_OK) {
        size_t applied = 0;
        xs_err e = XS_OK;
        for (size_t i = 0; i < n && e == XS_OK; i++) {
            item_state *s = &st[i];
            if (json_array_size(s->errors) > 0 || s->plan == NULL) {
                continue;
            }
            bool create = s->existing == NULL;
            e = ops->apply(b, s->plan, &s->done);
            if (e != XS_OK) {
                s->done = NULL;
                break;
            }
            applied++;
            if (create && !b->user) {
                fingerprint(b, ops, s->item, s->done);
            }
        }
        if (e != XS_OK && applied == 0) {
            fatal = e; /* nothing was saved: a 500 says so truthfully */
        } else if (e != XS_OK) {
            /* Some items are saved and cannot be taken back: a failure reply would make the
             * client retry and duplicate them. Report each item as summarizeErrors=false does:
             * the saved ones, and the others with the reason they were not saved. */
            for (size_t i = 0; i < n; i++) {
                if (st[i].done == NULL && json_array_size(st[i].errors) == 0) {
                    sim__err(st[i].errors,
                             "This item was not saved: the simulator failed (%s) after saving "
                             "the items before it.",
                             xs_strerror(e));
                }
            }
            summarize = false;
        }
    }
    if (fatal == XS_EPARSE) {
        post_data_invalid(c, why);
        goto done;
    }
    if (fatal != XS_OK) {
        sim__reply_problem(c, 500, "Internal Server Error", xs_strerror(fatal));
        goto done;
    }
    {
        json_t *env = sim__envelope(c);
        json_t *out = json_array();
        sim_render_opts ro = {SIM_VIEW_FULL, b->unitdp4, b->now};
        for (size_t i = 0; i < n; i++) {
            item_state *s = &st[i];
            json_t *el;
            if (s->done != NULL) {
                el = ops->render(b->t, s->done, &ro);
                if (!summarize && ops->status_attr) {
                    json_object_set_new(el, "StatusAttributeString", json_string("OK"));
                }
            } else {
                el = error_element(ops, s, false);
            }
            json_array_append_new(out, el);
        }
        json_object_set_new(env, ops->plural, out);
        sim__reply_json(c, 200, env);
    }
done:
    for (size_t i = 0; i < n; i++) {
        if (st[i].plan != NULL) {
            ops->plan_free(st[i].plan);
        }
        json_decref(st[i].errors);
    }
    free(st);
    json_decref(arr);
}

/* ------------------------------------------------------------------ lists */

static bool query_true(sim_call *c, const char *name)
{
    const char *v = xs_http_req_query(c->req, name);
    return v != NULL && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

/* query_int reads an integer parameter: dflt, with *given false, when it is absent or not
 * a number (Xero ignores such values); a number too large for int64 reads as INT64_MAX (or
 * INT64_MIN), for the caller to refuse or clamp. */
static int64_t query_int(sim_call *c, const char *name, int64_t dflt, bool *given)
{
    const char *v = xs_http_req_query(c->req, name);
    *given = false;
    if (v == NULL || v[0] == '\0') {
        return dflt;
    }
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end != '\0' || end == v) {
        return dflt;
    }
    *given = true;
    return x; /* strtoll saturates at LLONG_MAX / LLONG_MIN on overflow */
}

static void free_list(char **l, size_t n);

/* split_list splits a comma-separated query value into trimmed, unquoted items: *out (new,
 * NULL when there are none) and *n. XS_ENOMEM with *out NULL and *n 0: no item is ever
 * dropped silently, which would widen a filter. */
static xs_err split_list(const char *v, char ***list, size_t *n)
{
    *list = NULL;
    *n = 0;
    if (v == NULL || v[0] == '\0') {
        return XS_OK;
    }
    size_t cap = 1;
    for (const char *p = v; *p; p++) {
        cap += *p == ',';
    }
    char **out = calloc(cap, sizeof(*out));
    if (out == NULL) {
        return XS_ENOMEM;
    }
    const char *p = v;
    while (*p != '\0' || p == v) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len > 0 && (isspace((unsigned char)*p) || *p == '"')) {
            p++;
            len--;
        }
        while (len > 0 && (isspace((unsigned char)p[len - 1]) || p[len - 1] == '"')) {
            len--;
        }
        if (len > 0) {
            out[*n] = strndup(p, len);
            if (out[*n] == NULL) {
                free_list(out, *n);
                *n = 0;
                return XS_ENOMEM;
            }
            (*n)++;
        }
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    *list = out;
    return XS_OK;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i]);
    }
    free(l);
}

static uint32_t find_by_key(sim_tenant *t, const sim_kind_ops *ops, const char *key)
{
    xs_uuid id;
    if (xs_uuid_parse(key, &id)) {
        sim_rec *r = sim__table_find(&t->t[ops->kind], &id);
        return r != NULL ? r->idx : SIM_NONE;
    }
    if (ops->kind == SIM_CONTACT) {
        return sim__contact_by_number(t, key);
    }
    if (ops->kind == SIM_INVOICE) {
        return sim__invoice_by_number(t, key);
    }
    if (ops->kind == SIM_ACCOUNT) {
        return sim__account_by_code(t, key);
    }
    return SIM_NONE;
}

/* One page of a list being written (see xs_json_dump_items). */
typedef struct page_items {
    sim_tenant *t;
    const sim_kind_ops *ops;
    const uint32_t *idx;
    const sim_render_opts *ro;
} page_items;

/* page_item renders record i of the page (new). */
static json_t *page_item(size_t i, void *arg)
{
    const page_items *p = arg;
    return p->ops->render(p->t, p->t->t[p->ops->kind].recs[p->idx[i]], p->ro);
}

void sim__list(sim_call *c, sim_tenant *t, const sim_kind_ops *ops, const char *id)
{
    sim_render_opts ro = {SIM_VIEW_FULL, false, sim__now(c->s)};
    const char *dp = xs_http_req_query(c->req, "unitdp");
    ro.unitdp4 = dp != NULL && strcmp(dp, "4") == 0;

    if (id != NULL) {
        uint32_t idx = find_by_key(t, ops, id);
        if (idx == SIM_NONE) {
            sim__reply_text(c, 404, not_found_text);
            return;
        }
        json_t *env = sim__envelope(c);
        json_t *arr = json_array();
        json_array_append_new(arr, ops->render(t, t->t[ops->kind].recs[idx], &ro));
        json_object_set_new(env, ops->plural, arr);
        sim__reply_json(c, 200, env);
        return;
    }

    sim_query q;
    memset(&q, 0, sizeof(q));
    q.ops = ops;
    q.t = t;
    q.now = ro.now;
    bool given_page = false, given_size = false;
    int64_t page = query_int(c, "page", 0, &given_page);
    int64_t size = query_int(c, "pageSize", SIM_PAGE_DEFAULT, &given_size);
    if (ops->paged && given_page && page > SIM_PAGE_LAST) {
        /* Xero's page is a 32-bit integer: a larger one cannot be a page, past the end or not */
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "The value '%.40s' is not valid for page. Page must be a number from 1 to %lld.",
                 xs_http_req_query(c->req, "page"), (long long)SIM_PAGE_LAST);
        sim__reply_xero_error(c, 400, 16, "QueryParseException", msg);
        return;
    }
    if (ops->paged && (given_page || given_size)) {
        q.page = page < 1 ? 1 : page;
        q.page_size = size < 1 ? SIM_PAGE_DEFAULT : (size > SIM_PAGE_MAX ? SIM_PAGE_MAX : size);
    }
    const char *ims = xs_http_req_header(c->req, "If-Modified-Since");
    if (ims != NULL) {
        xs_time at;
        if (xs_time_parse_iso(ims, &at) == XS_OK || sim__time_parse_http(ims, &at) == XS_OK) {
            q.has_ims = true;
            q.ims = at;
            sim__stats_count(c->s, "ims_used");
        } else {
            /* Xero silently ignores a date it cannot read: the whole set comes back */
            sim__stats_count(c->s, "ims_ignored");
        }
    }
    char why[256] = "";
    q.mask = ops->default_mask;
    if (ops->has_archive && query_true(c, "includeArchived")) {
        q.mask = ops->all_mask;
    }
    const char *where = xs_http_req_query(c->req, "where");
    if (where != NULL && where[0] != '\0') {
        q.where = sim__where_parse(ops, where, why);
        if (q.where == NULL) {
            sim__reply_xero_error(c, 400, 16, "QueryParseException", why);
            return;
        }
        if (sim__where_class_constrained(q.where)) {
            q.mask = ops->all_mask;
        }
    }
    q.order = xs_http_req_query(c->req, "order");
    size_t nids = 0, ncids = 0, nstats = 0;
    char **ids = NULL, **cids = NULL, **stats = NULL;
    bool bad = false;
    /* every list is read whole or the request fails: a filter that lost its list would
     * return records the client did not ask for */
    /* IDs only where Xero's spec has it (Contacts, Invoices); elsewhere, as any unknown
     * parameter, it is ignored */
    bool oom = (ops->kind == SIM_CONTACT || ops->kind == SIM_INVOICE) &&
               split_list(xs_http_req_query(c->req, "IDs"), &ids, &nids) != XS_OK;
    if (!oom && ops->kind == SIM_INVOICE) {
        oom = split_list(xs_http_req_query(c->req, "ContactIDs"), &cids, &ncids) != XS_OK ||
              split_list(xs_http_req_query(c->req, "InvoiceNumbers"), &q.numbers, &q.nnumbers) !=
                  XS_OK ||
              split_list(xs_http_req_query(c->req, "Statuses"), &stats, &nstats) != XS_OK;
    }
    if (!oom && nids > 0) {
        q.ids = calloc(nids, sizeof(*q.ids));
        oom = q.ids == NULL;
        for (size_t i = 0; !oom && i < nids; i++) {
            if (!xs_uuid_parse(ids[i], &q.ids[i])) {
                snprintf(why, sizeof(why), "'%s' is not a valid value for IDs (a GUID)", ids[i]);
                bad = true;
                break;
            }
        }
        q.nids = oom ? 0 : nids;
    }
    if (!oom && !bad && ncids > 0) {
        q.contact_ids = calloc(ncids, sizeof(*q.contact_ids));
        oom = q.contact_ids == NULL;
        for (size_t i = 0; !oom && i < ncids; i++) {
            if (!xs_uuid_parse(cids[i], &q.contact_ids[i])) {
                snprintf(why, sizeof(why), "'%s' is not a valid value for ContactIDs (a GUID)",
                         cids[i]);
                bad = true;
                break;
            }
        }
        q.ncontact_ids = oom ? 0 : ncids;
    }
    if (oom) {
        sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        goto out;
    }
    if (ops->kind == SIM_INVOICE) {
        if (nstats > 0) {
            uint32_t m = 0;
            for (size_t i = 0; i < nstats; i++) {
                m |= ops->class_mask("Status", stats[i]);
            }
            q.mask &= m;
        }
    }
    if (ops->kind == SIM_CONTACT) {
        const char *st = xs_http_req_query(c->req, "searchTerm");
        if (st != NULL && st[0] != '\0') {
            q.search = st;
        }
    }
    bool summary = query_true(c, "summaryOnly");
    if (bad) {
        sim__reply_xero_error(c, 400, 16, "QueryParseException", why);
        goto out;
    }
    sim_result res = {0};
    xs_err e = sim__query_run(&q, &res, c->set.high_volume, why);
    if (e == XS_EUNSUPPORTED) {
        char lower[32], msg[400];
        size_t k = 0;
        for (; ops->plural[k] != '\0' && k + 1 < sizeof(lower); k++) {
            lower[k] = (char)tolower((unsigned char)ops->plural[k]);
        }
        lower[k] = '\0';
        snprintf(msg, sizeof(msg),
                 "Your request is not filtering %s efficiently, given the extremely high volume "
                 "for this organisation. Please check "
                 "https://developer.xero.com/documentation/api/efficient-data-retrieval for "
                 "more details.",
                 lower);
        sim__reply_text(c, 400, msg);
        goto out;
    }
    if (e != XS_OK) {
        sim__reply_xero_error(c, 400, 16, "QueryParseException", why);
        goto out;
    }
    ro.view = summary ? SIM_VIEW_SUMMARY
                      : (q.page == 0 && ops->kind == SIM_INVOICE && q.nids == 0 && q.nnumbers == 0
                             ? SIM_VIEW_UNPAGED
                             : SIM_VIEW_FULL);
    json_t *env = sim__envelope(c);
    if (q.page > 0) {
        int64_t pages = (res.total + q.page_size - 1) / q.page_size;
        json_object_set_new(env, "pagination",
                            json_pack("{s:I,s:I,s:I,s:I}", "page", (json_int_t)q.page, "pageSize",
                                      (json_int_t)q.page_size, "pageCount", (json_int_t)pages,
                                      "itemCount", (json_int_t)res.total));
    }
    /* Written record by record, each tree released before the next is made, so the
     * allocator reuses one record's memory for the next. As one tree of a thousand records
     * a page spent four times as long in malloc and free: the freed chunks of a thousand
     * trees were coalesced, the heap trimmed, and its pages faulted in again next time. */
    json_t *arr = json_array();
    json_object_set_new(env, ops->plural, arr);
    page_items items = {t, ops, res.idx, &ro};
    char *body = xs_json_dump_items(env, XS_JSON_COMPACT, arr, res.n, page_item, &items);
    json_decref(env);
    free(res.idx);
    sim__reply_json_text(c, 200, body);
out:
    sim__where_free(q.where);
    free(q.ids);
    free(q.contact_ids);
    free_list(ids, nids);
    free_list(cids, ncids);
    free_list(q.numbers, q.nnumbers);
    free_list(stats, nstats);
}

/* ------------------------------------------------------------------ idempotency */

/*
 * The cache: a hash from key to entry (lookups are O(1)), which owns every entry, and the
 * finished entries also in a queue in the order they finished, so expiry looks only at the
 * oldest ones. With a fixed TTL that is expiry order; after the TTL is shortened at run time,
 * an entry behind a longer-lived one waits for it in memory, but a lookup never uses an
 * expired entry (it drops it).
 */
typedef struct sim_idem idem_ent;
struct sim_idem {
    char method[8];
    char *key; /* owned copy, to remove it from the map on expiry */
    char *url;
    uint8_t body_sha[XS_SHA256_LEN];
    bool done;
    int status;
    char *body;
    char ctype[48];
    xs_time expires;
    idem_ent *prev, *next; /* the expiry queue (finished entries only) */
};

void sim__idem_free(void *p)
{
    idem_ent *e = p;
    if (e != NULL) {
        free(e->key);
        free(e->url);
        free(e->body);
        free(e);
    }
}

/* idem_drop removes a finished entry from the queue and the map, and frees it (idem_mu
 * held). */
static void idem_drop(sim_tenant *t, idem_ent *e)
{
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        t->idem_first = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        t->idem_last = e->prev;
    }
    sim__smap_del(&t->idem, e->key);
    sim__idem_free(e);
}

/* idem_expire drops the finished entries at the head of the queue whose time is up
 * (idem_mu held). */
static void idem_expire(sim_tenant *t, xs_time now)
{
    while (t->idem_first != NULL && t->idem_first->expires <= now) {
        idem_drop(t, t->idem_first);
    }
}

/* idem_find returns the live entry for key (borrowed), or NULL (idem_mu held). */
static idem_ent *idem_find(sim_tenant *t, const char *key, xs_time now)
{
    idem_ent *e = sim__smap_get(&t->idem, key);
    if (e != NULL && e->done && e->expires <= now) {
        idem_drop(t, e); /* expired, still queued behind a longer-lived entry */
        return NULL;
    }
    return e;
}

typedef enum { IDEM_PROCEED, IDEM_REPLAYED, IDEM_REFUSED } idem_result;

/* idem_begin looks the key up: a new key is registered as in progress; a finished request
 * with the same method, URL and body is replayed; anything else is refused. */
static idem_result idem_begin(sim_call *c, sim_tenant *t, const char *key, const char *body,
                              size_t len)
{
    /* the URL as far as it changes what a write does: path and the write parameters */
    char url[700];
    const char *se = xs_http_req_query(c->req, "summarizeErrors");
    const char *dp = xs_http_req_query(c->req, "unitdp");
    snprintf(url, sizeof(url), "%s?summarizeErrors=%s&unitdp=%s", c->path, se ? se : "",
             dp ? dp : "");
    uint8_t sha[XS_SHA256_LEN];
    xs_sha256(body, len, sha);
    xs_time now = sim__now(c->s);
    pthread_mutex_lock(&c->s->idem_mu);
    idem_expire(t, now);
    idem_ent *e = idem_find(t, key, now);
    idem_result r = IDEM_PROCEED;
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e != NULL) {
            snprintf(e->method, sizeof(e->method), "%s", c->method);
            e->key = strdup(key);
            e->url = strdup(url);
            memcpy(e->body_sha, sha, sizeof(sha));
            t->idem_free = sim__idem_free; /* the tenant frees what is left of the cache */
            if (e->key == NULL || e->url == NULL ||
                sim__smap_put(&t->idem, key, e, NULL) != XS_OK) {
                sim__idem_free(e);
                e = NULL;
            }
        }
        if (e == NULL) {
            /* without a record the key could not protect a retry: say so, apply nothing */
            sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
            r = IDEM_REFUSED;
        }
    } else if (strcmp(e->method, c->method) != 0 || strcmp(e->url, url) != 0 ||
               memcmp(e->body_sha, sha, sizeof(sha)) != 0) {
        sim__reply_problem(c, 400, "Bad Request",
                           "The Idempotency-Key has already been used for a different request "
                           "(method, URL or body differ).");
        sim__stats_count(c->s, "idem_conflict");
        r = IDEM_REFUSED;
    } else if (!e->done) {
        sim__reply_problem(c, 409, "Conflict",
                           "A request with this Idempotency-Key is still being processed.");
        sim__stats_count(c->s, "idem_conflict");
        r = IDEM_REFUSED;
    } else {
        c->status = e->status;
        c->text = strdup(e->body != NULL ? e->body : "");
        c->ctype = strstr(e->ctype, "json") ? "application/json; charset=utf-8"
                                            : "text/plain; charset=utf-8";
        sim__stats_count(c->s, "idem_replay");
        r = IDEM_REPLAYED;
    }
    pthread_mutex_unlock(&c->s->idem_mu);
    return r;
}

/* idem_finish stores the reply of a request that registered key; with keep false (or a
 * 5xx reply) it forgets the key instead, so the same request sent again runs again. */
static void idem_finish(sim_call *c, sim_tenant *t, const char *key, bool keep)
{
    char *body = NULL;
    if (c->json != NULL) {
        body = xs_json_dump(c->json, XS_JSON_COMPACT);
        /* from now on the reply is the recorded text, so a replay is byte-identical */
        json_decref(c->json);
        c->json = NULL;
        free(c->text);
        c->text = body != NULL ? strdup(body) : NULL;
        c->ctype = "application/json; charset=utf-8";
    } else if (c->text != NULL) {
        body = strdup(c->text);
    }
    pthread_mutex_lock(&c->s->idem_mu);
    idem_ent *e = sim__smap_get(&t->idem, key);
    if (e != NULL && !e->done) {
        if (c->status >= 500 || !keep) {
            /* a failure (or a write Xero did not save) is not recorded: the retry runs again */
            sim__idem_free(sim__smap_del(&t->idem, key));
            free(body);
        } else {
            e->done = true;
            e->status = c->status;
            e->body = body;
            snprintf(e->ctype, sizeof(e->ctype), "%s", c->ctype ? c->ctype : "");
            e->expires = sim__now(c->s) + c->set.idem_ttl_ms;
            e->prev = t->idem_last;
            if (t->idem_last != NULL) {
                t->idem_last->next = e;
            } else {
                t->idem_first = e;
            }
            t->idem_last = e;
        }
    } else {
        free(body);
    }
    pthread_mutex_unlock(&c->s->idem_mu);
}

bool sim__api_admit(sim_call *c, const char *const *scopes)
{
    if (!sim__auth_bearer(c) || !sim__auth_tenant(c)) {
        return false;
    }
    if (!sim__scope_has(c->scope, scopes)) {
        sim__reply_problem(c, 401, "Unauthorized", "AuthorizationUnsuccessful");
        return false;
    }
    return sim__limits_acquire(c);
}

bool sim__api_faults(sim_call *c, bool is_get, const char *body, size_t blen, bool *nil_id)
{
    c->fault = sim__fault_pick(c, is_get ? "" : body, is_get ? 0 : blen, true);
    /* nil_id is a fault only for a write with items, known once the body is read */
    *nil_id = c->fault == SIM_FAULT_NIL_ID;
    if (*nil_id) {
        c->fault = SIM_FAULT_NONE;
    }
    switch (c->fault) {
    case SIM_FAULT_500:
        sim__reply_xero_error(c, 500, 500, "UnknownErrorException",
                              "An error occurred in Xero. Check the API Status page "
                              "http://status.developer.xero.com for current service status.");
        return false;
    case SIM_FAULT_503:
        sim__reply_header(c, "Retry-After", "5");
        sim__reply_text(c, 503, "The Xero API is temporarily unavailable. Please try again.");
        return false;
    case SIM_FAULT_REVOKED:
        sim__revoke_all(c->s);
        sim__reply_problem(c, 401, "Unauthorized", "AuthenticationUnsuccessful");
        return false;
    case SIM_FAULT_HANG:
        /* the call stays in flight at "Xero" while the client waits; then server.c closes
         * the connection without a reply */
        sim__hang(c->s, c->set.hang_ms);
        return false;
    case SIM_FAULT_RESET:
        return false; /* server.c resets the connection; nothing was applied */
    case SIM_FAULT_429:
        sim__limits_fault_429(c);
        return false;
    case SIM_FAULT_APPLIED_5XX:
        if (is_get) {
            return false; /* nothing to apply: sim__api_finish answers 504 */
        }
        break;
    default:
        break;
    }
    sim__latency(c, is_get ? "" : body, is_get ? 0 : blen);
    return true;
}

void sim__api_finish(sim_call *c)
{
    if (c->fault == SIM_FAULT_APPLIED_5XX) {
        /* the backend did its work (and recorded its Idempotency-Key with its real reply);
         * the gateway timed out waiting for it */
        sim__reply_gateway_timeout(c);
    }
    /* on every reply, the 404 of an unknown resource or path included */
    sim__limits_headers(c);
    sim__limits_release(c);
}

/* slow_apply carries out a slow fault on a write about to be applied: Xero is slow to apply
 * it, and its key is already taken, so a client that gives up and sends it again meanwhile
 * is told it is still being processed (409). */
static void slow_apply(sim_call *c)
{
    if (c->fault == SIM_FAULT_SLOW) {
        sim__hang(c->s, c->set.hang_ms);
    }
}

bool sim__idem_open(sim_call *c, sim_tenant *t, const char *body, size_t blen, bool *on)
{
    *on = false;
    const char *idem = xs_http_req_header(c->req, "Idempotency-Key");
    if (idem == NULL) {
        slow_apply(c);
        return true;
    }
    if (strlen(idem) > SIM_IDEM_KEY_MAX || idem[0] == '\0') {
        sim__reply_problem(c, 400, "Bad Request",
                           "The Idempotency-Key header must be 1 to 128 characters.");
        return false;
    }
    snprintf(c->idem, sizeof(c->idem), "%s", idem);
    if (idem_begin(c, t, idem, body, blen) != IDEM_PROCEED) {
        return false;
    }
    *on = true;
    slow_apply(c);
    return true;
}

void sim__idem_close(sim_call *c, sim_tenant *t, bool keep)
{
    idem_finish(c, t, c->idem, keep);
}

/* ------------------------------------------------------------------ nil_id */

/* nil_reply answers a write as a hostile Xero answers one it did not save: 200, and every
 * item of the request as sent, with its id the nil GUID, StatusAttributeString OK (where
 * the kind's schema has it) and an UpdatedDateUTC of now. Nothing is applied. It returns false,
 * replying nothing, when the body holds no items (not JSON, not an object, or the plural not an
 * array of objects): the call then proceeds as usual. */
static bool nil_reply(sim_call *c, const sim_kind_ops *ops, const char *body, size_t len)
{
    json_t *doc = len > 0 ? xs_json_parse(body, len, NULL) : NULL;
    json_t *wrapped = json_object_get(doc, ops->plural);
    json_t *out = json_array();
    bool ok = json_is_object(doc) && (wrapped == NULL || json_is_array(wrapped)) && out != NULL;
    size_t n = !ok ? 0 : wrapped != NULL ? json_array_size(wrapped) : 1;
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *item = wrapped != NULL ? json_array_get(wrapped, i) : doc;
        json_t *el = json_is_object(item) ? echo_item(item, ops->id_field, true) : NULL;
        ok = el != NULL;
        if (ok) {
            if (ops->status_attr) {
                json_object_set_new(el, "StatusAttributeString", json_string("OK"));
            }
            /* stamped as a saved record is, so only its id tells it was not saved */
            json_object_set_new(el, "UpdatedDateUTC", sim__json_xero_date(sim__now(c->s)));
            json_array_append_new(out, el);
        }
    }
    if (ok) {
        json_t *env = sim__envelope(c);
        json_object_set_new(env, ops->plural, out);
        sim__reply_json(c, 200, env);
    } else {
        json_decref(out);
    }
    json_decref(doc);
    return ok;
}

/* ------------------------------------------------------------------ routing */

static const char *const scopes_contacts_r[] = {"accounting.contacts", "accounting.contacts.read",
                                                NULL};
static const char *const scopes_contacts_w[] = {"accounting.contacts", NULL};
static const char *const scopes_inv_r[] = {"accounting.transactions",
                                           "accounting.transactions.read", "accounting.invoices",
                                           "accounting.invoices.read", NULL};
static const char *const scopes_inv_w[] = {"accounting.transactions", "accounting.invoices", NULL};
static const char *const scopes_pay_r[] = {"accounting.transactions",
                                           "accounting.transactions.read", "accounting.payments",
                                           "accounting.payments.read", NULL};
static const char *const scopes_pay_w[] = {"accounting.transactions", "accounting.payments", NULL};
static const char *const scopes_bt_r[] = {"accounting.transactions", "accounting.transactions.read",
                                          "accounting.banktransactions",
                                          "accounting.banktransactions.read", NULL};
static const char *const scopes_bt_w[] = {"accounting.transactions", "accounting.banktransactions",
                                          NULL};
static const char *const scopes_set_r[] = {"accounting.settings", "accounting.settings.read", NULL};
static const char *const scopes_set_w[] = {"accounting.settings", NULL};

typedef struct resource {
    const char *name;
    const sim_kind_ops *ops; /* NULL: Organisation */
    const char *const *read, *const *write;
} resource;

static const resource *find_resource(const char *seg, size_t len)
{
    static resource res[6];
    static bool init;
    if (!init) {
        res[0] = (resource){"Contacts", &sim__contact_ops, scopes_contacts_r, scopes_contacts_w};
        res[1] = (resource){"Invoices", &sim__invoice_ops, scopes_inv_r, scopes_inv_w};
        res[2] = (resource){"Payments", &sim__payment_ops, scopes_pay_r, scopes_pay_w};
        res[3] = (resource){"Accounts", &sim__account_ops, scopes_set_r, scopes_set_w};
        res[4] = (resource){"BankTransactions", &sim__banktx_ops, scopes_bt_r, scopes_bt_w};
        res[5] = (resource){"Organisation", NULL, scopes_set_r, scopes_set_w};
        init = true;
    }
    for (size_t i = 0; i < 6; i++) {
        if (strlen(res[i].name) == len && strncasecmp(res[i].name, seg, len) == 0) {
            return &res[i];
        }
    }
    return NULL;
}

static void organisation(sim_call *c, sim_tenant *t)
{
    json_t *env = sim__envelope(c);
    char created[XS_TIME_XERO_MAX];
    xs_time_format_xero(t->created, created);
    json_t *org = json_pack(
        "{s:s,s:s,s:s,s:s,s:b,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[],s:[],s:[]}",
        "OrganisationID", t->ids, "APIKey", "", "Name", t->name, "LegalName", t->name, "PaysTax", 1,
        "Version", "NZ", "OrganisationType", "COMPANY", "BaseCurrency", t->currency, "CountryCode",
        "NZ", "IsDemoCompany", "false", "OrganisationStatus", "ACTIVE", "FinancialYearEndDay", "31",
        "FinancialYearEndMonth", "3", "SalesTaxBasis", "PAYMENTS", "ShortCode", t->short_code,
        "CreatedDateUTC", created, "Addresses", "Phones", "ExternalLinks");
    json_object_set_new(org, "IsDemoCompany", json_false());
    json_object_set_new(org, "FinancialYearEndDay", json_integer(31));
    json_object_set_new(org, "FinancialYearEndMonth", json_integer(3));
    json_t *arr = json_array();
    json_array_append_new(arr, org);
    json_object_set_new(env, "Organisations", arr);
    sim__reply_json(c, 200, env);
}

/* accounting serves one Accounting API call (see sim__h_accounting), without the rate-limit
 * headers. */
static void accounting(sim_call *c, const char *rest)
{
    /* rest: "/Kind" or "/Kind/{key}" */
    if (rest[0] != '/') {
        sim__reply_text(c, 404, not_found_text);
        return;
    }
    const char *seg = rest + 1;
    const char *slash = strchr(seg, '/');
    size_t seglen = slash ? (size_t)(slash - seg) : strlen(seg);
    const char *key = NULL;
    char keybuf[256];
    if (slash != NULL) {
        const char *k = slash + 1;
        if (*k == '\0' || strchr(k, '/') != NULL || strlen(k) >= sizeof(keybuf)) {
            sim__reply_text(c, 404, not_found_text);
            return;
        }
        snprintf(keybuf, sizeof(keybuf), "%s", k);
        key = keybuf;
    }
    const resource *res = find_resource(seg, seglen);
    if (res == NULL) {
        sim__reply_text(c, 404, not_found_text);
        return;
    }
    bool is_get = strcmp(c->method, "GET") == 0;
    bool is_put = strcmp(c->method, "PUT") == 0;
    bool is_post = strcmp(c->method, "POST") == 0;
    bool is_delete = strcmp(c->method, "DELETE") == 0;
    snprintf(c->endpoint, sizeof(c->endpoint), "%s /%s%s", c->method, res->name,
             key ? "/{id}" : "");

    bool allowed = is_get || (res->ops != NULL && ((is_put && key == NULL) || is_post)) ||
                   (is_delete && res->ops == &sim__account_ops && key != NULL) ||
                   (is_put && res->ops == &sim__account_ops && key == NULL);
    if (res->ops == NULL && !is_get) {
        allowed = false;
    }

    /* the caller (server.c) holds world_lock for reading */
    if (!sim__api_admit(c, is_get ? res->read : res->write)) {
        return;
    }
    sim_tenant *t = c->tenant;
    size_t blen = 0;
    const char *body = xs_http_req_body(c->req, &blen);
    bool nil_id = false;
    if (!sim__api_faults(c, is_get, body, blen, &nil_id)) {
        return;
    }
    if (!allowed) {
        sim__reply_method_not_allowed(c);
        return;
    }
    if (res->ops == NULL) {
        pthread_rwlock_rdlock(&t->lock);
        organisation(c, t);
        pthread_rwlock_unlock(&t->lock);
        return;
    }
    if (is_get) {
        if (c->fault == SIM_FAULT_SLOW) {
            sim__hang(c->s, c->set.hang_ms);
        }
        /* a body on a GET (the Node SDK sends "{}") is ignored, as Xero does */
        pthread_rwlock_rdlock(&t->lock);
        sim__list(c, t, res->ops, key);
        pthread_rwlock_unlock(&t->lock);
        return;
    }

    /* writes */
    if ((int64_t)blen > c->set.max_body) {
        sim__reply_too_large(c);
        return;
    }
    bool idem_on = false;
    if (!sim__idem_open(c, t, body, blen, &idem_on)) {
        return;
    }
    if (nil_id && !is_delete && nil_reply(c, res->ops, body, blen)) {
        c->fault = SIM_FAULT_NIL_ID;
        sim__stats_fault(c->s, SIM_FAULT_NIL_ID);
        if (idem_on) {
            idem_finish(c, t, c->idem, false);
        }
        return;
    }
    if (is_delete) {
        pthread_rwlock_wrlock(&t->lock);
        sim_batch b;
        if (sim__batch_init(&b, c, t, false) == XS_OK) {
            json_t *del = json_pack("{s:s}", "Status", "DELETED");
            sim__write_items(c, &b, res->ops, del, false, key, true);
            json_decref(del);
            sim__batch_fini(&b);
        } else {
            sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
        }
        pthread_rwlock_unlock(&t->lock);
    } else {
        char err[XS_JSON_ERR_MAX];
        json_t *doc = blen > 0 ? xs_json_parse(body, blen, err) : NULL;
        if (doc == NULL) {
            char why[300];
            snprintf(why, sizeof(why), "%s", blen > 0 ? err : "the request body is empty.");
            char msg[400];
            snprintf(msg, sizeof(msg), "JSON for post data was invalid,%s", why);
            sim__reply_xero_error(c, 400, 14, "PostDataInvalidException", msg);
        } else {
            const char *se = xs_http_req_query(c->req, "summarizeErrors");
            bool summarize = !(se != NULL && strcasecmp(se, "false") == 0);
            pthread_rwlock_wrlock(&t->lock);
            sim_batch b;
            if (sim__batch_init(&b, c, t, false) == XS_OK) {
                sim__write_items(c, &b, res->ops, doc, is_put, key, summarize);
                sim__batch_fini(&b);
            } else {
                sim__reply_problem(c, 500, "Internal Server Error", "out of memory");
            }
            pthread_rwlock_unlock(&t->lock);
            json_decref(doc);
        }
    }
    if (idem_on) {
        idem_finish(c, t, c->idem, true);
    }
}

void sim__h_accounting(sim_call *c, const char *rest)
{
    accounting(c, rest);
    sim__api_finish(c);
}
