/* sync.c: the sync core (see sync.h). */
#include "engine/sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xs/json.h"

static const char *const policy_names[] = {"last_write_wins", "local_wins", "xero_wins", "manual",
                                           "merge"};

const char *xs_policy_name(xs_policy p)
{
    return (unsigned)p < 5 ? policy_names[p] : "unknown";
}

xs_err xs_policy_parse(const char *name, xs_policy *out)
{
    for (int i = 0; name != NULL && i < 5; i++) {
        if (strcmp(name, policy_names[i]) == 0) {
            *out = (xs_policy)i;
            return XS_OK;
        }
    }
    return XS_EINVAL;
}

const char *xs_sync_action_name(xs_sync_action a)
{
    static const char *const n[] = {"none", "to_local", "to_xero", "both", "hold"};
    return (unsigned)a < 5 ? n[a] : "unknown";
}

char *xs_sync_canonical_text(const json_t *rec)
{
    return xs_json_dump(rec, XS_JSON_COMPACT | XS_JSON_SORT_KEYS);
}

void xs_sync_checksum(const json_t *rec, char out[2 * XS_SHA256_LEN + 1])
{
    char *text = xs_sync_canonical_text(rec);
    xs_sha256_hex(text != NULL ? text : "", text != NULL ? strlen(text) : 0, out);
    free(text);
}

bool xs_sync_raw_sum(const char *entity, const char *raw, size_t n, char out[2 * XS_SHA256_LEN + 1])
{
    out[0] = '\0';
    char key[96];
    int k = snprintf(key, sizeof(key), "xero-sync raw v" XS_SYNC_CANON_VERSION " %s", entity);
    uint8_t mac[XS_SHA256_LEN];
    if (k < 0 || (size_t)k >= sizeof(key) || xs_hmac_sha256(key, (size_t)k, raw, n, mac) != XS_OK) {
        return false;
    }
    xs_hex_encode(mac, sizeof(mac), out);
    return true;
}

bool xs_sync_is_empty(const json_t *v)
{
    size_t len = 1;
    return v == NULL || json_is_null(v) || (xs_json_string_value(v, &len) != NULL && len == 0) ||
           (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_object(v) && json_object_size(v) == 0);
}

/* same compares two values, absent reading as null. */
static bool same(const json_t *a, const json_t *b)
{
    if (a == NULL || json_is_null(a)) {
        return b == NULL || json_is_null(b);
    }
    if (b == NULL || json_is_null(b)) {
        return false;
    }
    return xs_json_equal(a, b);
}

/* same_record compares two records field by field (a missing key is null). */
static bool same_record(const json_t *a, const json_t *b)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v)
    {
        if (!same(v, json_object_get(b, k))) {
            return false;
        }
    }
    json_object_foreach((json_t *)b, k, v)
    {
        if (json_object_get(a, k) == NULL && !json_is_null(v)) {
            return false;
        }
    }
    return true;
}

/* settle resolves a whole-record conflict by a policy other than merge. */
static xs_sync_action settle(xs_policy p, xs_time local_at, xs_time xero_at)
{
    switch (p) {
    case XS_POLICY_LOCAL_WINS:
        return XS_SYNC_TO_XERO;
    case XS_POLICY_XERO_WINS:
        return XS_SYNC_TO_LOCAL;
    case XS_POLICY_MANUAL:
        return XS_SYNC_HOLD;
    default:
        return local_at > xero_at ? XS_SYNC_TO_XERO : XS_SYNC_TO_LOCAL;
    }
}

/* written tells whether the local side wrote field k since the base was agreed (edits). */
static bool written(const xs_sync_edits *edits, const char *k)
{
    json_t *at = edits != NULL ? json_object_get(edits->fields, k) : NULL;
    return json_is_integer(at) && json_integer_value(at) > edits->since;
}

/* field_at is when the local side last wrote field k: its own time when known, else local_at
 * (the row's). */
static xs_time field_at(const xs_sync_edits *edits, const char *k, xs_time local_at)
{
    json_t *at = edits != NULL ? json_object_get(edits->fields, k) : NULL;
    return json_is_integer(at) && json_integer_value(at) > 0 ? json_integer_value(at) : local_at;
}

/* rewritten tells whether the local side wrote a field of local since the base that it holds
 * otherwise than Xero (a value put back: it reads as the base's, yet it is a later write). */
static bool rewritten(const json_t *local, const json_t *xero, const xs_sync_edits *edits)
{
    const char *k;
    json_t *v;
    json_object_foreach(edits != NULL ? (json_t *)edits->fields : NULL, k, v)
    {
        json_t *l = json_object_get(local, k);
        if (l != NULL && written(edits, k) && !same(l, json_object_get(xero, k))) {
            return true;
        }
    }
    return false;
}

/* merge builds the three-way merge of local and xero against base into d; fields changed on
 * both sides are settled by fallback (manual holds the whole record). */
static xs_err merge(const json_t *base, const json_t *local, const json_t *xero, xs_time local_at,
                    xs_time xero_at, const xs_sync_edits *edits, xs_policy fallback,
                    xs_sync_decision *d)
{
    json_t *out = json_object();
    json_t *fields = json_object();
    json_t *keys = json_object();
    if (out == NULL || fields == NULL || keys == NULL) {
        json_decref(out);
        json_decref(fields);
        json_decref(keys);
        return XS_ENOMEM;
    }
    const json_t *sides[] = {base, local, xero};
    for (int i = 0; i < 3; i++) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)sides[i], k, v)
        {
            json_object_set_new(keys, k, json_true());
        }
    }
    int both = 0;
    const char *k;
    json_t *unused;
    json_object_foreach(keys, k, unused)
    {
        json_t *b = base != NULL ? json_object_get(base, k) : NULL;
        json_t *l = json_object_get(local, k);
        json_t *x = json_object_get(xero, k);
        json_t *pick;
        if (same(l, x)) {
            pick = l;
        } else if (base != NULL && same(l, b) && !written(edits, k)) {
            pick = x;
            json_object_set_new(fields, k, json_string("xero"));
        } else if (base != NULL && same(x, b)) {
            pick = l;
            json_object_set_new(fields, k, json_string("local"));
        } else {
            both++;
            xs_sync_action a = settle(fallback, field_at(edits, k, local_at), xero_at);
            if (a == XS_SYNC_HOLD) {
                /* The reason names the field before the keys (which own its name) go. */
                snprintf(d->reason, sizeof(d->reason),
                         "merge: field %.40s changed on both sides; held for a person", k);
                d->action = XS_SYNC_HOLD;
                d->policy = XS_POLICY_MANUAL;
                json_decref(out);
                json_decref(fields);
                json_decref(keys);
                return XS_OK;
            }
            pick = a == XS_SYNC_TO_XERO ? l : x;
            json_object_set_new(fields, k,
                                json_string(a == XS_SYNC_TO_XERO ? "both:local" : "both:xero"));
        }
        json_object_set_new(out, k, pick != NULL ? json_incref(pick) : json_null());
    }
    json_decref(keys);
    bool to_local = !same_record(out, local), to_xero = !same_record(out, xero);
    d->action = to_local && to_xero ? XS_SYNC_BOTH
                : to_local          ? XS_SYNC_TO_LOCAL
                : to_xero           ? XS_SYNC_TO_XERO
                                    : XS_SYNC_NONE;
    d->result = out;
    d->fields = fields;
    d->policy = XS_POLICY_MERGE;
    snprintf(d->reason, sizeof(d->reason), "merged %zu fields; %d changed on both sides (%s)",
             json_object_size(fields), both, xs_policy_name(fallback));
    return XS_OK;
}

xs_err xs_sync_decide(const json_t *base, const json_t *local, const json_t *xero, xs_time local_at,
                      xs_time xero_at, xs_policy policy, xs_policy fallback, xs_sync_decision *out)
{
    return xs_sync_decide_edits(base, local, xero, local_at, xero_at, NULL, policy, fallback, out);
}

xs_err xs_sync_decide_edits(const json_t *base, const json_t *local, const json_t *xero,
                            xs_time local_at, xs_time xero_at, const xs_sync_edits *edits,
                            xs_policy policy, xs_policy fallback, xs_sync_decision *out)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(local) || !json_is_object(xero) ||
        (base != NULL && !json_is_object(base)) || fallback == XS_POLICY_MERGE ||
        (edits != NULL && edits->fields != NULL && !json_is_object(edits->fields))) {
        return XS_EINVAL;
    }
    bool local_changed = base == NULL || !same_record(local, base) || rewritten(local, xero, edits);
    bool xero_changed = base == NULL || !same_record(xero, base);
    if (!local_changed && !xero_changed) {
        out->action = XS_SYNC_NONE;
        out->result = json_incref((json_t *)base);
        snprintf(out->reason, sizeof(out->reason), "unchanged");
        return XS_OK;
    }
    if (same_record(local, xero)) {
        out->action = XS_SYNC_NONE;
        out->result = json_incref((json_t *)xero);
        snprintf(out->reason, sizeof(out->reason), "both sides hold the same data");
        return XS_OK;
    }
    if (!local_changed) {
        out->action = XS_SYNC_TO_LOCAL;
        out->result = json_incref((json_t *)xero);
        snprintf(out->reason, sizeof(out->reason), "changed in Xero");
        return XS_OK;
    }
    if (!xero_changed) {
        out->action = XS_SYNC_TO_XERO;
        out->result = json_incref((json_t *)local);
        snprintf(out->reason, sizeof(out->reason), "changed locally");
        return XS_OK;
    }
    out->conflict = true;
    if (policy == XS_POLICY_MERGE) {
        return merge(base, local, xero, local_at, xero_at, edits, fallback, out);
    }
    if (policy == XS_POLICY_LAST_WRITE_WINS) {
        /* The last write of each field wins: a field one side changed keeps that change
         * (a whole record taken from the newer side would undo the other side's edits, and
         * carry back a status Xero has moved on from), a field both changed takes the newer
         * side's value. */
        xs_err e =
            merge(base, local, xero, local_at, xero_at, edits, XS_POLICY_LAST_WRITE_WINS, out);
        if (e == XS_OK) {
            out->policy = XS_POLICY_LAST_WRITE_WINS;
            char why[sizeof(out->reason)];
            snprintf(why, sizeof(why), "%s", out->reason);
            snprintf(out->reason, sizeof(out->reason), "field by field: %.140s", why);
        }
        return e;
    }
    out->policy = policy;
    out->action = settle(policy, local_at, xero_at);
    if (out->action == XS_SYNC_TO_LOCAL) {
        out->result = json_incref((json_t *)xero);
    } else if (out->action == XS_SYNC_TO_XERO) {
        out->result = json_incref((json_t *)local);
    }
    const char *why =
        out->action == XS_SYNC_HOLD ? "held for a person"
        : out->action == XS_SYNC_TO_XERO
            ? (policy == XS_POLICY_LAST_WRITE_WINS ? "the local change is newer" : "local wins")
            : (policy == XS_POLICY_LAST_WRITE_WINS ? "the Xero change is newer" : "Xero wins");
    snprintf(out->reason, sizeof(out->reason), "changed on both sides: %s (%s)", why,
             xs_policy_name(policy));
    return XS_OK;
}

void xs_sync_decision_fini(xs_sync_decision *d)
{
    if (d == NULL) {
        return;
    }
    json_decref(d->result);
    json_decref(d->fields);
    memset(d, 0, sizeof(*d));
}

json_t *xs_sync_fill_empty(const json_t *local, const json_t *xero)
{
    json_t *out = json_deep_copy(local);
    if (out == NULL) {
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)xero, k, v)
    {
        if (xs_sync_is_empty(json_object_get(out, k)) && !xs_sync_is_empty(v)) {
            json_object_set_new(out, k, json_deep_copy(v));
        }
    }
    return out;
}

/* The entities, in dependency order. Only those whose domain service syncs them are here. */
static const char *const contact_keys[] = {"contact_number", "email", "name", NULL};

static const char *const invoice_keys[] = {"invoice_number", NULL};

const xs_entity_info xs_entity_table[XS_ENTITY_COUNT] = {
    [XS_ENTITY_CONTACT] = {"contact", "contacts", true, true, contact_keys, false},
    [XS_ENTITY_ACCOUNT] = {"account", "invoices", true, false, NULL, true},
    [XS_ENTITY_INVOICE] = {"invoice", "invoices", true, true, invoice_keys, true, false, true},
    [XS_ENTITY_PAYMENT] = {"payment", "payments", true, true, NULL, false, true},
    [XS_ENTITY_BANK_TRANSACTION] = {"bank_transaction", "payments", true, false, NULL, true},
    /* Pulled from Xero Practice Manager by xs-jobs, when the connection enables XPM. */
    [XS_ENTITY_JOB] = {"job", "jobs", true, false, NULL, false},
    /* Pushed to Xero Files by xs-files, after the contacts and invoices it is attached to. */
    [XS_ENTITY_DOCUMENT] = {"document", "files", false, true, NULL, false},
};

const xs_entity_info *xs_entities(size_t *n)
{
    *n = XS_ENTITY_COUNT;
    return xs_entity_table;
}

const xs_entity_info *xs_entity_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < XS_ENTITY_COUNT; i++) {
        if (strcmp(xs_entity_table[i].name, name) == 0) {
            return &xs_entity_table[i];
        }
    }
    return NULL;
}

int xs_entity_types_check(const json_t *types)
{
    if (!json_is_array(types) || json_array_size(types) < 1 || json_array_size(types) > 16) {
        return 1;
    }
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        const char *s = xs_json_string_value(t, NULL);
        if (s == NULL || s[0] == '\0' || strlen(s) > 32 ||
            strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ-") != strlen(s)) {
            return 2;
        }
    }
    return 0;
}

bool xs_entity_match_key_valid(const xs_entity_info *e, const char *key)
{
    for (size_t i = 0; e != NULL && e->match_keys != NULL && e->match_keys[i] != NULL; i++) {
        if (key != NULL && strcmp(e->match_keys[i], key) == 0) {
            return true;
        }
    }
    return false;
}
